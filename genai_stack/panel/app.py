"""The web panel: server-rendered pages over the driver (FastAPI, Jinja, SSE).

Pages: ``/`` hosts, services with their health, containers and GPU memory read from the hosts
(``playbooks/status.yml``, see :mod:`genai_stack.status`, refreshed live), and the run form; ``/runs`` the
history; ``/runs/<id>`` one run with its live event stream (SSE), per-host stats and failed
tasks; ``/usage`` the OpenAI gateway's usage per day, client and model. Everything but
``/login`` and ``/static`` needs a session; every POST checks the CSRF token. A run on a host
that already has one is refused with HTTP 409.

Each page's routes are in their module (:mod:`~genai_stack.panel.routes_stack`,
:mod:`~genai_stack.panel.routes_runs`, :mod:`~genai_stack.panel.routes_login`,
:mod:`~genai_stack.panel.routes_usage`), over the state
they share (:class:`~genai_stack.panel.context.Panel`); this module puts them together.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from genai_stack.locks import pid_alive
from genai_stack.panel import routes_login, routes_runs, routes_stack, routes_usage
from genai_stack.panel.config import PanelConfig
from genai_stack.panel.context import HERE, Panel
from genai_stack.panel.store import HistoryBusy, RunRow

log = logging.getLogger(__name__)
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def _lifespan(panel: Panel) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    """At start, the runs a previous panel left running are marked interrupted; at stop, the
    runs under way are canceled."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holders = panel.driver.locks.holders()

        def still_locked(row: RunRow) -> bool:
            # by another live panel sharing the state dir; a dead panel's run is interrupted,
            # though its machines stay locked while its processes live (see locks.py)
            return any(info.get("run_id") == row.id and pid_alive(info.get("pid"))
                       for info in holders)  # fmt: skip

        try:
            stale = panel.history.mark_interrupted(keep=still_locked)
        except HistoryBusy as exc:
            log.warning("runs of a previous panel not checked: %s", exc)
        else:
            if stale:
                log.warning("%d run(s) of a previous panel marked interrupted", stale)
        yield
        await asyncio.to_thread(panel.manager.shutdown)
        panel.history.close()

    return lifespan


async def _history_failed(request: Request, exc: Exception) -> Response:
    if isinstance(exc, HistoryBusy):
        message = f"{exc}; try again in a moment."
    else:
        log.error("history database error on %s: %s", request.url.path, exc)
        message = (f"the run history database failed ({exc}); restart the panel: a damaged "
                   "database is set aside and a new one started")  # fmt: skip
    return HTMLResponse(message, status_code=503)


async def _security_headers(
    request: Request, call_next: Callable[[Request], Awaitable[Response]]
) -> Response:
    response = await call_next(request)
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    if not request.url.path.startswith("/static/"):
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _install_extras(app: FastAPI, panel: Panel) -> None:
    """The favicon, and the panel's own page for a path that does not exist."""

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code != 404 or request.url.path.startswith(("/api/", "/static/")):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return panel.render(request, "notfound.html", 404, path=request.url.path)


def create_app(config: PanelConfig) -> FastAPI:
    """The panel application. Raises AuthConfigError without credentials or with lax files."""
    panel = Panel(config)
    app = FastAPI(title="genai_stack panel", lifespan=_lifespan(panel), docs_url=None,
                  redoc_url=None, openapi_url=None)  # fmt: skip
    app.state.config = config
    app.state.driver = panel.driver
    app.state.history = panel.history
    app.state.manager = panel.manager
    app.state.status_cache = panel.status_cache
    app.add_exception_handler(HistoryBusy, _history_failed)
    app.add_exception_handler(sqlite3.Error, _history_failed)
    app.middleware("http")(_security_headers)
    # added last = outermost: the session is ready for everything above
    app.add_middleware(
        SessionMiddleware,
        secret_key=panel.secret_key,
        session_cookie="genai_panel",
        max_age=config.session_max_age,
        same_site="strict",
        https_only=config.https_only,
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    _install_extras(app, panel)
    routes_login.install(app, panel)
    routes_stack.install(app, panel)
    routes_runs.install(app, panel)
    routes_usage.install(app, panel)
    return app
