"""The runs' pages: ``/runs`` the history, ``/runs/<id>`` one run with its live event stream
(SSE, ``/runs/<id>/events``), per-host progress and failed tasks, and its cancel button; its
JSON: ``/api/runs/<id>``."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import (
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
    StreamingResponse,
)

from genai_stack.events import RunEvent
from genai_stack.panel.context import Panel
from genai_stack.panel.runs import RunManager
from genai_stack.panel.store import RunRow


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


def _elapsed(row: RunRow) -> float | None:
    """Seconds the run has taken: its duration once ended, the time since its start before."""
    if row.duration_s is not None or not row.started_at:
        return row.duration_s
    try:
        started = dt.datetime.fromisoformat(row.started_at)
    except ValueError:
        return None
    return max(0.0, (dt.datetime.now(dt.UTC) - started).total_seconds())


def _run_context(manager: RunManager, row: RunRow) -> dict[str, Any]:
    """The run page's: the run, its events (the newest 5000), its progress and elapsed time."""
    events = manager.events(row.id, 0, 5000)
    progress = manager.progress(row.id, row.hosts)
    return {"run": row, "events": [_event_json(e) for e in events], "progress": progress,
            "progress_json": json.dumps(progress.to_dict()), "elapsed": _elapsed(row)}  # fmt: skip


async def _event_stream(
    manager: RunManager, request: Request, run_id: str, last: int
) -> AsyncIterator[str]:
    """``run-event`` per event after ``last``, then one ``end`` with the run's row once it
    has finished."""
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


def install(app: FastAPI, panel: Panel) -> None:
    user_of, manager = panel.user_of, panel.manager

    @app.get("/runs", response_class=HTMLResponse)
    def runs(request: Request) -> Response:
        if not user_of(request):
            return panel.login_redirect(request)
        return panel.render(request, "runs.html", runs=panel.history.recent(200))

    @app.get("/runs/{run_id}", response_class=HTMLResponse)
    def run_page(request: Request, run_id: str) -> Response:
        if not user_of(request):
            return panel.login_redirect(request)
        row = manager.row(run_id)
        if row is None:
            return panel.render(request, "missing.html", 404, run_id=run_id)
        return panel.render(request, "run.html", **_run_context(manager, row))

    @app.get("/api/runs/{run_id}")
    def run_json(request: Request, run_id: str) -> Response:
        if not user_of(request):
            return JSONResponse({"detail": "login required"}, status_code=401)
        row = manager.row(run_id)
        if row is None:
            return JSONResponse({"detail": "no such run"}, status_code=404)
        return JSONResponse(row.to_dict())

    @app.post("/runs/{run_id}/cancel")
    async def cancel_run(request: Request, run_id: str) -> Response:
        if not user_of(request):
            return panel.login_redirect(request)
        if await panel.checked_form(request) is None:
            return panel.forbidden()
        manager.cancel(run_id)
        return RedirectResponse(f"/runs/{run_id}", status_code=303)

    @app.get("/runs/{run_id}/events")
    async def run_events(request: Request, run_id: str, after: int = 0) -> Response:
        """Server-sent events of the run after ``after`` (or Last-Event-ID)."""
        if not user_of(request):
            return JSONResponse({"detail": "login required"}, status_code=401)
        if manager.row(run_id) is None:
            return JSONResponse({"detail": "no such run"}, status_code=404)
        last_id = request.headers.get("last-event-id")
        last = int(last_id) if last_id and last_id.isdigit() else after
        return StreamingResponse(
            _event_stream(manager, request, run_id, last),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )
