"""What every page of the panel shares: the driver, the run history and manager, the caches
of the stack and its status, the templates, and the session helpers (user, CSRF, rendering)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.datastructures import FormData

from genai_stack import stack, status
from genai_stack.driver import Driver, DriverError
from genai_stack.panel import auth, catalog
from genai_stack.panel.config import PanelConfig
from genai_stack.panel.runs import RunManager
from genai_stack.panel.store import History, RunRow

HERE = Path(__file__).resolve().parent
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


def _run_mode(row: RunRow) -> str:
    """check for a check-mode run or a read-only playbook, apply otherwise."""
    return "check" if row.check or catalog.is_read_only(row.playbook) else "apply"


def _templates() -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters["duration"] = _duration
    templates.env.filters["when"] = _when
    templates.env.globals["status_class"] = lambda s: STATUS_CLASS.get(str(s), "")
    templates.env.globals["run_mode"] = _run_mode
    return templates


class Panel:
    """The panel's state, built once per application. Raises AuthConfigError without
    credentials or with lax files."""

    def __init__(self, config: PanelConfig) -> None:
        self.config = config
        self.credentials = auth.CredentialsFile(config.password_file)
        self.secret_key = auth.session_key(config.session_key_file)
        config.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.driver = Driver(config.project, config.state_dir, keep_artifacts=config.keep_artifacts,
                             inventory=config.inventory)  # fmt: skip
        self.history = History(config.database)
        self.manager = RunManager(self.driver, self.history, config.inventory,
                                  config.vault_password_file,
                                  finish_retry_s=config.history_retry_s)  # fmt: skip
        self.throttle = auth.LoginThrottle()
        self.proxies = config.proxy_networks
        self.templates = _templates()
        self.stack_cache = Cached(20.0, self._load_stack)
        # one status.yml run at a time, whatever the number of browsers polling
        self.status_cache = status.StatusCache(config.status_ttl_s, self._collect_status)

    def _load_stack(self) -> dict[str, Any]:
        try:
            hosts = stack.load(self.driver, self.config.inventory, self.config.vault_password_file)
            return {"hosts": hosts, "error": None}
        except (DriverError, OSError, ValueError) as exc:
            return {"hosts": [], "error": str(exc)}

    def _collect_status(self) -> status.StackStatus:
        config = self.config
        return status.collect(self.driver, config.inventory, None, config.vault_password_file,
                              config.status_deadline_s)  # fmt: skip

    # -- requests ---------------------------------------------------------------------------
    def user_of(self, request: Request) -> str | None:
        """The user of the request's session, if the server still holds that session."""
        if not hasattr(request.state, "user"):
            session_id = request.session.get(auth.SESSION_KEY)
            request.state.user = (
                self.history.session_user(str(session_id), self.credentials.current().fingerprint)
                if session_id
                else None
            )
        return request.state.user  # type: ignore[no-any-return]

    @staticmethod
    def csrf_token(request: Request) -> str:
        token = request.session.get(auth.CSRF_KEY)
        if not token:
            token = auth.new_csrf_token()
            request.session[auth.CSRF_KEY] = token
        return str(token)

    @staticmethod
    async def checked_form(request: Request) -> FormData | None:
        """The POSTed form when its CSRF token (field or header) matches the session's."""
        form = await request.form()
        given = form.get(auth.CSRF_FIELD) or request.headers.get(auth.CSRF_HEADER)
        expected = request.session.get(auth.CSRF_KEY)
        if not auth.tokens_match(expected, given if isinstance(given, str) else None):
            return None
        return form

    @staticmethod
    def login_redirect(request: Request) -> RedirectResponse:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(f"/login?next={quote(target)}", status_code=303)

    @staticmethod
    def forbidden() -> HTMLResponse:
        return HTMLResponse("CSRF token missing or invalid", status_code=403)

    def render(
        self, request: Request, name: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        context.setdefault("user", self.user_of(request))
        context.setdefault("section", "stack" if name == "index.html" else "runs")
        context["csrf_token"] = self.csrf_token(request)
        return self.templates.TemplateResponse(request, name, context, status_code=status_code)
