"""The login page (``/login``) and ``/logout``."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from genai_stack.panel import auth
from genai_stack.panel.context import Panel


def _safe_next(target: str | None) -> str:
    """Only same-site paths after login (no open redirect)."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def install(app: FastAPI, panel: Panel) -> None:
    history, throttle = panel.history, panel.throttle

    @app.get("/login", response_class=HTMLResponse)
    def login_page(request: Request, next: str = "/") -> Response:
        if panel.user_of(request):
            return RedirectResponse(_safe_next(next), status_code=303)
        return panel.render(request, "login.html", next=_safe_next(next), error=None)

    @app.post("/login", response_class=HTMLResponse)
    async def login(request: Request) -> Response:
        form = await panel.checked_form(request)
        if form is None:
            return panel.forbidden()
        peer = request.client.host if request.client else "?"
        client = auth.client_address(peer, request.headers.get("x-forwarded-for"), panel.proxies)
        target = _safe_next(str(form.get("next") or "/"))
        user = str(form.get("username") or "")[:64]
        password = str(form.get("password") or "")
        if not throttle.attempt(client, user):
            return panel.render(request, "login.html", 429, next=target,
                                error="Too many failed logins; wait a few minutes.")  # fmt: skip
        current = panel.credentials.current()
        ok = await asyncio.to_thread(throttle.check, lambda: current.verify(user, password))
        if not ok:
            return panel.render(request, "login.html", 401, next=target,
                                error="Wrong user name or password.")  # fmt: skip
        throttle.succeeded(client, user)
        old_id = request.session.get(auth.SESSION_KEY)
        if old_id:
            history.close_session(str(old_id))
        request.session.clear()  # a new session on login (no fixation)
        request.session[auth.SESSION_KEY] = history.open_session(
            current.user, current.fingerprint, panel.config.session_max_age
        )
        request.session[auth.CSRF_KEY] = auth.new_csrf_token()
        return RedirectResponse(target, status_code=303)

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        if await panel.checked_form(request) is None:
            return panel.forbidden()
        session_id = request.session.get(auth.SESSION_KEY)
        if session_id:
            history.close_session(str(session_id))
        request.session.clear()
        return RedirectResponse("/login", status_code=303)
