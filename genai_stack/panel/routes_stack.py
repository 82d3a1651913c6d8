"""The Stack page (``/``): hosts, services, their status read live, and the run form, which
posts to ``/runs`` and is shown again with its refusal; its JSON: ``/api/status``,
``/api/stack``."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.datastructures import FormData

from genai_stack import status
from genai_stack.locks import HostBusy
from genai_stack.panel.context import Panel
from genai_stack.panel.runs import NeedsConfirmation, RunRefused


def _status_json(cache: status.StatusCache) -> dict[str, Any]:
    """What /api/status answers and the Stack page holds from its first paint: the last known
    status (never waiting for a run), whether a read is under way, and the server's time."""
    value = cache.get()
    return {"status": value.to_dict() if value else None, "refreshing": cache.refreshing,
            "now": time.time()}  # fmt: skip


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


def dashboard(
    panel: Panel, request: Request, status_code: int = 200, **context: Any
) -> HTMLResponse:
    """The Stack page, with what a refused run form adds to it."""
    data = panel.stack_cache.get()
    return panel.render(
        request,
        "index.html",
        status_code,
        hosts=data["hosts"],
        stack_error=data["error"],
        playbooks=panel.manager.playbooks(),
        backups=panel.manager.backups(),
        recent=panel.history.recent(8),
        last_status=json.dumps(_status_json(panel.status_cache)),
        reading=panel.status_cache.refreshing,
        inventory=panel.config.inventory or "ansible.cfg default",
        **context,
    )


def install(app: FastAPI, panel: Panel) -> None:
    user_of, checked_form = panel.user_of, panel.checked_form
    history, manager, status_cache = panel.history, panel.manager, panel.status_cache

    @app.get("/", response_class=HTMLResponse)
    def index(request: Request) -> Response:
        if not user_of(request):
            return panel.login_redirect(request)
        return dashboard(panel, request)

    @app.post("/refresh")
    async def refresh(request: Request) -> Response:
        if not user_of(request):
            return panel.login_redirect(request)
        if await checked_form(request) is None:
            return panel.forbidden()
        panel.stack_cache.clear()
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
        data = panel.stack_cache.get()
        return JSONResponse({"hosts": [h.to_dict() for h in data["hosts"]], "error": data["error"]})

    @app.post("/runs")
    async def start_run(request: Request) -> Response:
        user = user_of(request)
        if not user:
            return panel.login_redirect(request)
        form = await checked_form(request)
        if form is None:
            return panel.forbidden()
        fields = _form_fields(form)
        try:
            run_form = manager.validate(**fields)
            run_id = await asyncio.to_thread(manager.start, run_form, user)
        except HostBusy as exc:
            holder = str(exc.holder.get("run_id") or "")
            known = bool(holder) and history.get(holder) is not None
            return await asyncio.to_thread(dashboard, panel, request, 409, error=str(exc),
                                           busy=True, busy_run=holder if known else None,
                                           form=fields)  # fmt: skip
        except RunRefused as exc:
            return await asyncio.to_thread(dashboard, panel, request, 400, error=str(exc),
                                           form=fields,
                                           needs_confirm=isinstance(exc, NeedsConfirmation))  # fmt: skip
        return RedirectResponse(f"/runs/{run_id}", status_code=303)
