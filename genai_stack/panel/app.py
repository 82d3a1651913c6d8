"""The web panel: server-rendered pages over the driver (FastAPI, Jinja, SSE).

Pages: ``/`` hosts, services with their health, containers and GPU memory read from the hosts
(``playbooks/status.yml``, see :mod:`genai_stack.status`, refreshed live), and the run form; ``/runs`` the
history; ``/runs/<id>`` one run with its live event stream (SSE), per-host stats and failed
tasks. Everything but ``/login`` and ``/static`` needs a session; every POST checks the CSRF
token. A run on a host that already has one is refused with HTTP 409.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.sessions import SessionMiddleware

from genai_stack import stack, status
from genai_stack.driver import Driver, DriverError
from genai_stack.events import RunEvent
from genai_stack.locks import HostBusy, pid_alive
from genai_stack.panel import auth, catalog
from genai_stack.panel.config import PanelConfig
from genai_stack.panel.runs import NeedsConfirmation, RunManager, RunRefused
from genai_stack.panel.store import History, HistoryBusy, RunRow

log = logging.getLogger(__name__)
HERE = Path(__file__).resolve().parent
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
STATUS_CLASS = {
    "successful": "ok",
    "running": "running",
    "failed": "bad",
    "error": "bad",
    "timeout": "bad",
    "canceled": "warn",
    "interrupted": "warn",
}


class Cached:
    """A value recomputed at most every ``ttl`` seconds, one computation at a time. Only the
    first read waits; a stale value is served while a background thread recomputes it."""

    def __init__(self, ttl: float, compute: Callable[[], Any]) -> None:
        self.ttl = ttl
        self.compute = compute
        self._value: Any = None
        self._at = 0.0
        self._lock = threading.Lock()
        self._refreshing = False

    def get(self) -> Any:
        with self._lock:
            if self._value is None:
                self._value, self._at = self.compute(), time.monotonic()
            elif time.monotonic() - self._at > self.ttl and not self._refreshing:
                self._refreshing = True
                threading.Thread(
                    target=self._refresh, daemon=True, name="genai-panel-stack"
                ).start()
            return self._value

    def _refresh(self) -> None:
        try:
            value = self.compute()
        finally:
            with self._lock:
                self._refreshing = False
        with self._lock:
            self._value, self._at = value, time.monotonic()

    def clear(self) -> None:
        """The next read recomputes (in the background when a value is there)."""
        with self._lock:
            self._at = 0.0


def _status_json(cache: status.StatusCache) -> dict[str, Any]:
    """What /api/status answers and the Stack page holds from its first paint: the last known
    status (never waiting for a run), whether a read is under way, and the server's time."""
    value = cache.get()
    return {"status": value.to_dict() if value else None, "refreshing": cache.refreshing,
            "now": time.time()}  # fmt: skip


def _duration(value: float | None) -> str:
    if value is None:
        return "\u2013"
    if value < 60:
        return f"{value:.1f} s"
    minutes, seconds = divmod(round(value), 60)
    return f"{minutes} min {seconds:02d} s"


def _when(value: str | None) -> Markup | str:
    """One time format: ``2025-01-02 15:47:38 UTC`` (the browser adds its local time on hover)."""
    if not value:
        return "\u2013"
    shown = value.replace("T", " ").replace("+00:00", " UTC")
    return Markup('<time datetime="{}">{}</time>').format(value, shown)


def _install_extras(app: FastAPI, render: Callable[..., HTMLResponse]) -> None:
    """The favicon, and the panel's own page for a path that does not exist."""

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")

    @app.exception_handler(StarletteHTTPException)
    async def not_found(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code != 404 or request.url.path.startswith(("/api/", "/static/")):
            return JSONResponse({"detail": exc.detail}, status_code=exc.status_code)
        return render(request, "notfound.html", 404, path=request.url.path)


def _run_mode(row: RunRow) -> str:
    """check for a check-mode run or a read-only playbook, apply otherwise."""
    return "check" if row.check or catalog.is_read_only(row.playbook) else "apply"


def _event_json(event: RunEvent) -> dict[str, Any]:
    return {
        "seq": event.seq,
        "kind": event.kind.value,
        "host": event.host,
        "task": event.task,
        "message": event.message,
        "ignored": event.ignored,
        "created": event.created,
        "line": event.line(),
        "detail": event.detail,
    }


def _run_context(manager: RunManager, row: RunRow) -> dict[str, Any]:
    """The run page's: the run, its events (the newest 5000), its progress and elapsed time."""
    events = manager.events(row.id, 0, 5000)
    progress = manager.progress(row.id, row.hosts)
    return {"run": row, "events": [_event_json(e) for e in events], "progress": progress,
            "progress_json": json.dumps(progress.to_dict()), "elapsed": _elapsed(row)}  # fmt: skip


def _elapsed(row: RunRow) -> float | None:
    """Seconds the run has taken: its duration once ended, the time since its start before."""
    if row.duration_s is not None or not row.started_at:
        return row.duration_s
    try:
        started = dt.datetime.fromisoformat(row.started_at)
    except ValueError:
        return None
    return max(0.0, (dt.datetime.now(dt.UTC) - started).total_seconds())


def _form_fields(form: FormData) -> dict[str, Any]:
    """The run form's fields, as :meth:`RunManager.validate` takes them (and the page shows
    them again after a refusal)."""
    return {
        "playbook": str(form.get("playbook") or ""),
        "limit": str(form.get("limit") or ""),
        "check": form.get("check") in ("on", "1", "true"),
        "tags": str(form.get("tags") or ""),
        "extra_vars": str(form.get("extra_vars") or ""),
        "backup_from": str(form.get("backup_from") or ""),
        "confirmed": form.get("confirmed") in ("on", "1", "yes", "true"),
    }


def _safe_next(target: str | None) -> str:
    """Only same-site paths after login (no open redirect)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def create_app(config: PanelConfig) -> FastAPI:
    """The panel application. Raises AuthConfigError without credentials or with lax files."""
    credentials = auth.CredentialsFile(config.password_file)
    secret_key = auth.session_key(config.session_key_file)
    config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    driver = Driver(config.project, config.state_dir, keep_artifacts=config.keep_artifacts,
                    inventory=config.inventory)  # fmt: skip
    history = History(config.database)
    manager = RunManager(driver, history, config.inventory, config.vault_password_file,
                         finish_retry_s=config.history_retry_s)  # fmt: skip
    throttle = auth.LoginThrottle()
    proxies = config.proxy_networks
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["duration"] = _duration
    templates.env.filters["when"] = _when
    templates.env.globals["status_class"] = lambda s: STATUS_CLASS.get(str(s), "")
    templates.env.globals["run_mode"] = _run_mode

    def load_stack() -> dict[str, Any]:
        try:
            hosts = stack.load(driver, config.inventory, config.vault_password_file)
            return {"hosts": hosts, "error": None}
        except (DriverError, OSError, ValueError) as exc:
            return {"hosts": [], "error": str(exc)}

    stack_cache = Cached(20.0, load_stack)
    # one status.yml run at a time, whatever the number of browsers polling
    status_cache = status.StatusCache(
        config.status_ttl_s,
        lambda: status.collect(driver, config.inventory, None, config.vault_password_file,
                               config.status_deadline_s),
    )  # fmt: skip

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        holders = driver.locks.holders()

        def still_locked(row: RunRow) -> bool:
            # by another live panel sharing the state dir; a dead panel's run is interrupted,
            # though its machines stay locked while its processes live (see locks.py)
            return any(info.get("run_id") == row.id and pid_alive(info.get("pid"))
                       for info in holders)  # fmt: skip

        try:
            stale = history.mark_interrupted(keep=still_locked)
        except HistoryBusy as exc:
            log.warning("runs of a previous panel not checked: %s", exc)
        else:
            if stale:
                log.warning("%d run(s) of a previous panel marked interrupted", stale)
        yield
        await asyncio.to_thread(manager.shutdown)
        history.close()

    app = FastAPI(title="genai_stack panel", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)  # fmt: skip
    app.state.config = config
    app.state.driver = driver
    app.state.history = history
    app.state.manager = manager
    app.state.status_cache = status_cache

    @app.exception_handler(HistoryBusy)
    @app.exception_handler(sqlite3.Error)
    async def history_failed(request: Request, exc: Exception) -> Response:
        if isinstance(exc, HistoryBusy):
            message = f"{exc}; try again in a moment."
        else:
            log.error("history database error on %s: %s", request.url.path, exc)
            message = (f"the run history database failed ({exc}); restart the panel: a damaged "
                       "database is set aside and a new one started")  # fmt: skip
        return HTMLResponse(message, status_code=503)

    @app.middleware("http")
    async def security_headers(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if not request.url.path.startswith("/static/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    # added last = outermost: the session is ready for everything above
    app.add_middleware(
        SessionMiddleware,
        secret_key=secret_key,
        session_cookie="genai_panel",
        max_age=config.session_max_age,
        same_site="strict",
        https_only=config.https_only,
    )
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    # -- helpers --------------------------------------------------------------------------
    def csrf_token(request: Request) -> str:
        token = request.session.get(auth.CSRF_KEY)
        if not token:
            token = auth.new_csrf_token()
            request.session[auth.CSRF_KEY] = token
        return str(token)

    def user_of(request: Request) -> str | None:
        """The user of the request's session, if the server still holds that session."""
        if not hasattr(request.state, "user"):
            session_id = request.session.get(auth.SESSION_KEY)
            request.state.user = (
                history.session_user(str(session_id), credentials.current().fingerprint)
                if session_id
                else None
            )
        return request.state.user  # type: ignore[no-any-return]

    def login_redirect(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    async def checked_form(request: Request) -> FormData | None:
        """The POSTed form when its CSRF token (field or header) matches the session's."""
        form = await request.form()
        given = form.get(auth.CSRF_FIELD) or request.headers.get(auth.CSRF_HEADER)
        expected = request.session.get(auth.CSRF_KEY)
        if not auth.tokens_match(expected, given if isinstance(given, str) else None):
            return None
        return form

    def forbidden() -> HTMLResponse:
        return HTMLResponse("CSRF token missing or invalid", status_code=403)

    def render(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
        context.setdefault("user", user_of(request))
        context.setdefault("section", "stack" if name == "index.html" else "runs")
        context["csrf_token"] = csrf_token(request)
        return templates.TemplateResponse(request, name, context, status_code=status_code)

    _install_extras(app, render)

    def dashboard(request: Request, status_code: int = 200, **context: Any) -> HTMLResponse:
        data = stack_cache.get()
        return render(
            request,
            "index.html",
            status_code,
            hosts=data["hosts"],
            stack_error=data["error"],
            playbooks=manager.playbooks(),
            backups=manager.backups(),
            recent=history.recent(8),
            last_status=json.dumps(_status_json(status_cache)),
            reading=status_cache.refreshing,
            inventory=config.inventory or "ansible.cfg default",
            **context,
        )

    # -- login ------------------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/") -> Response:
        if user_of(request):
            return RedirectResponse(_safe_next(next), status_code=303)
        return render(request, "login.html", next=_safe_next(next), error=None)

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = await checked_form(request)
        if form is None:
            return forbidden()
        peer = request.client.host if request.client else "?"
        client = auth.client_address(peer, request.headers.get("x-forwarded-for"), proxies)
        target = _safe_next(str(form.get("next") or "/"))
        user = str(form.get("username") or "")[:64]
        password = str(form.get("password") or "")
        if not throttle.attempt(client, user):
            return render(request, "login.html", 429, next=target,
                          error="Too many failed logins; wait a few minutes.")  # fmt: skip
        current = credentials.current()
        ok = await asyncio.to_thread(throttle.check, lambda: current.verify(user, password))
        if not ok:
            return render(request, "login.html", 401, next=target,
                          error="Wrong user name or password.")  # fmt: skip
        throttle.succeeded(client, user)
        old_id = request.session.get(auth.SESSION_KEY)
        if old_id:
            history.close_session(str(old_id))
        request.session.clear()  # a new session on login (no fixation)
        request.session[auth.SESSION_KEY] = history.open_session(
            current.user, current.fingerprint, config.session_max_age
        )
        request.session[auth.CSRF_KEY] = auth.new_csrf_token()
        return RedirectResponse(target, status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        if await checked_form(request) is None:
            return forbidden()
        session_id = request.session.get(auth.SESSION_KEY)
        if session_id:
            history.close_session(str(session_id))
        request.session.clear()
        return RedirectResponse("/login", status_code=303)

    # -- pages ------------------------------------------------------------------------------
    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> Response:
        if not user_of(request):
            return login_redirect(request)
        return dashboard(request)

    @app.post("/refresh")
    async def refresh(request: Request) -> Response:
        if not user_of(request):
            return login_redirect(request)
        if await checked_form(request) is None:
            return forbidden()
        stack_cache.clear()
        status_cache.clear()
        return RedirectResponse("/", status_code=303)

    @app.get("/api/status")
    async def status_json(request: Request, wait: bool = False) -> Response:
        """The last status of every GPU host (``null`` before the first run ends); a stale one
        starts a refresh. ``wait``: wait for the refresh under way."""
        if not user_of(request):
            return JSONResponse({"detail": "login required"}, status_code=401)
        if wait:
            await asyncio.to_thread(status_cache.get, wait)
        return JSONResponse(await asyncio.to_thread(_status_json, status_cache))

    @app.get("/api/stack")
    def stack_json(request: Request) -> Response:
        if not user_of(request):
            return JSONResponse({"detail": "login required"}, status_code=401)
        data = stack_cache.get()
        return JSONResponse({"hosts": [h.to_dict() for h in data["hosts"]], "error": data["error"]})

    @app.post("/runs")
    async def start_run(request: Request) -> Response:
        user = user_of(request)
        if not user:
            return login_redirect(request)
        form = await checked_form(request)
        if form is None:
            return forbidden()
        fields = _form_fields(form)
        try:
            run_form = manager.validate(**fields)
            run_id = await asyncio.to_thread(manager.start, run_form, user)
        except HostBusy as exc:
            holder = str(exc.holder.get("run_id") or "")
            known = bool(holder) and history.get(holder) is not None
            return await asyncio.to_thread(dashboard, request, 409, error=str(exc), busy=True,
                                           busy_run=holder if known else None, form=fields)  # fmt: skip
        except RunRefused as exc:
            return await asyncio.to_thread(dashboard, request, 400, error=str(exc), form=fields,
                                           needs_confirm=isinstance(exc, NeedsConfirmation))  # fmt: skip
        return RedirectResponse(f"/runs/{run_id}", status_code=303)

    @app.get("/runs", response_class=HTMLResponse)
    def runs(request: Request) -> Response:
        if not user_of(request):
            return login_redirect(request)
        return render(request, "runs.html", runs=history.recent(200))

    def run_or_404(run_id: str) -> RunRow | None:
        return manager.row(run_id)

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str) -> Response:
        if not user_of(request):
            return login_redirect(request)
        row = run_or_404(run_id)
        if row is None:
            return render(request, "missing.html", 404, run_id=run_id)
        return render(request, "run.html", **_run_context(manager, row))

    @app.get("/api/runs/{run_id}")
    def run_json(request: Request, run_id: str) -> Response:
        if not user_of(request):
            return JSONResponse({"detail": "login required"}, status_code=401)
        row = run_or_404(run_id)
        if row is None:
            return JSONResponse({"detail": "no such run"}, status_code=404)
        return JSONResponse(row.to_dict())

    @app.post("/runs/{run_id}/cancel")
    async def cancel_run(request: Request, run_id: str) -> Response:
        if not user_of(request):
            return login_redirect(request)
        if await checked_form(request) is None:
            return forbidden()
        manager.cancel(run_id)
        return RedirectResponse(f"/runs/{run_id}", status_code=303)

    @app.get("/runs/{run_id}/events")
    async def run_events(request: Request, run_id: str, after: int = 0) -> Response:
        """Server-sent events: ``run-event`` per event after ``after`` (or Last-Event-ID),
        then one ``end`` with the run's row once it has finished."""
        if not user_of(request):
            return JSONResponse({"detail": "login required"}, status_code=401)
        if run_or_404(run_id) is None:
            return JSONResponse({"detail": "no such run"}, status_code=404)
        last_id = request.headers.get("last-event-id")
        last = int(last_id) if last_id and last_id.isdigit() else after

        async def stream() -> AsyncIterator[str]:
            nonlocal last
            idle = 0.0
            yield "retry: 2000\n\n"
            while True:
                row = await asyncio.to_thread(manager.row, run_id)
                events = await asyncio.to_thread(manager.events, run_id, last)
                for event in events:
                    last = event.seq
                    yield f"id: {event.seq}\nevent: run-event\ndata: {json.dumps(_event_json(event))}\n\n"
                if events:
                    idle = 0.0
                    continue
                if row is None or not row.running:
                    yield f"event: end\ndata: {json.dumps(row.to_dict() if row else {})}\n\n"
                    return
                if await request.is_disconnected():
                    return
                await asyncio.sleep(0.3)
                idle += 0.3
                if idle >= 15:
                    idle = 0.0
                    yield ": keepalive\n\n"

        return StreamingResponse(
            stream(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    return app
