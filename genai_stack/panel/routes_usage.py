"""The Usage page (``/usage``): the OpenAI gateway's requests, tokens and errors per day, client and
model, read from the GPU hosts by ``playbooks/usage.yml`` (:mod:`genai_stack.usage`, cached),
with one chart per client and model over the days (inline SVG drawn here: no script, no
library); its JSON: ``/api/usage``."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from markupsafe import Markup, escape

from genai_stack import usage
from genai_stack.panel.context import Panel

#: seconds a read of the hosts' usage is shown before the next page view reads them again
USAGE_TTL_S = 30.0
#: the windows the page offers (days)
WINDOWS = (1, 7, 14, 30, 90)

# the chart's geometry (px) and colours
PLOT_H, TOP, BOTTOM, LEFT = 120, 22, 34, 8
PROMPT_FILL, COMPLETION_FILL, AXIS = "#2f6fde", "#e0a030", "#c9d0da"


def _days(value: Any) -> int:
    try:
        return max(1, min(int(value), usage.MAX_DAYS))
    except (TypeError, ValueError):
        return usage.DEFAULT_DAYS


def _bar(x: float, slot: float, day: str, counts: usage.Counts, scale: float) -> str:
    """One day's bar: prompt tokens below, completion tokens above, the total written on top,
    the day and its requests under the axis."""
    width = max(slot * 0.6, 2.0)
    left = x + (slot - width) / 2
    base = TOP + PLOT_H
    prompt_h = counts.prompt_tokens * scale
    completion_h = counts.completion_tokens * scale
    middle = x + slot / 2
    title = (f"{day}: {counts.requests} requests, {counts.prompt_tokens} prompt + "
             f"{counts.completion_tokens} completion tokens, {counts.errors} errors")  # fmt: skip
    parts = [
        f'<g class="bar" data-day="{day}" data-requests="{counts.requests}" '
        f'data-prompt-tokens="{counts.prompt_tokens}" '
        f'data-completion-tokens="{counts.completion_tokens}" data-errors="{counts.errors}">',
        f"<title>{escape(title)}</title>",
        f'<rect x="{left:.1f}" y="{base - prompt_h:.1f}" width="{width:.1f}" '
        f'height="{prompt_h:.1f}" fill="{PROMPT_FILL}"/>',
        f'<rect x="{left:.1f}" y="{base - prompt_h - completion_h:.1f}" width="{width:.1f}" '
        f'height="{completion_h:.1f}" fill="{COMPLETION_FILL}"/>',
    ]
    if counts.requests or counts.tokens:
        top = base - prompt_h - completion_h - 4
        parts.append(f'<text class="tokens" x="{middle:.1f}" y="{top:.1f}" '
                     f'text-anchor="middle" font-size="11">{counts.tokens}</text>')  # fmt: skip
        parts.append(f'<text class="requests" x="{middle:.1f}" y="{base + 28}" '
                     f'text-anchor="middle" font-size="10" fill="#6b7686">'
                     f"{counts.requests} req</text>")  # fmt: skip
    parts.append(f'<text class="day" x="{middle:.1f}" y="{base + 14}" text-anchor="middle" '
                 f'font-size="10" fill="#6b7686">{day[5:]}</text>')  # fmt: skip
    parts.append("</g>")
    return "".join(parts)


def chart(series: usage.Series) -> Markup:
    """Tokens per day of one client and model, as bars (prompt and completion stacked)."""
    count = len(series.per_day)
    slot = max(14.0, min(64.0, 720.0 / count))
    width = LEFT * 2 + slot * count
    height = TOP + PLOT_H + BOTTOM
    peak = max((c.tokens for _, c in series.per_day), default=0)
    scale = PLOT_H / peak if peak else 0.0
    bars = "".join(
        _bar(LEFT + i * slot, slot, day, counts, scale)
        for i, (day, counts) in enumerate(series.per_day)
    )
    label = f"Tokens per day of {series.client} on {series.model}"
    axis = (f'<line x1="{LEFT}" y1="{TOP + PLOT_H}" x2="{width - LEFT:.1f}" '
            f'y2="{TOP + PLOT_H}" stroke="{AXIS}"/>')  # fmt: skip
    return Markup(
        f'<svg class="usage-chart" xmlns="http://www.w3.org/2000/svg" role="img" '
        f'width="{width:.0f}" height="{height}" viewBox="0 0 {width:.0f} {height}" '
        f'data-client="{escape(series.client)}" data-model="{escape(series.model)}" '
        f'aria-label="{escape(label)}"><title>{escape(label)}</title>{axis}{bars}</svg>'
    )


def usage_page(panel: Panel, request: Request, read: usage.UsageRead, days: int) -> Response:
    summary = usage.summarise(read, days)
    return panel.render(
        request,
        "usage.html",
        section="usage",
        summary=summary,
        charts=[(s, chart(s)) for s in summary.series],
        days=days,
        windows=sorted({*WINDOWS, days}),
        host_line=usage.host_line,
        legend={"prompt": PROMPT_FILL, "completion": COMPLETION_FILL},
    )


def install(app: FastAPI, panel: Panel) -> None:
    config = panel.config

    def compute() -> usage.UsageRead:
        return usage.collect(panel.driver, config.inventory, None, config.vault_password_file,
                             usage.DEFAULT_DEADLINE_S)  # fmt: skip

    cache = usage.UsageCache(USAGE_TTL_S, compute)
    app.state.usage_cache = cache

    @app.get("/usage", response_class=HTMLResponse)
    async def usage_html(request: Request, days: str = "") -> Response:
        if not panel.user_of(request):
            return panel.login_redirect(request)
        read = await asyncio.to_thread(cache.get)
        return usage_page(panel, request, read, _days(days or usage.DEFAULT_DAYS))

    @app.post("/usage/refresh")
    async def usage_refresh(request: Request) -> Response:
        if not panel.user_of(request):
            return panel.login_redirect(request)
        form = await panel.checked_form(request)
        if form is None:
            return panel.forbidden()
        await asyncio.to_thread(cache.get, True)
        days = _days(form.get("days") or usage.DEFAULT_DAYS)
        return RedirectResponse(f"/usage?days={days}", status_code=303)

    @app.get("/api/usage")
    async def usage_json(request: Request, days: str = "") -> Response:
        if not panel.user_of(request):
            return JSONResponse({"detail": "login required"}, status_code=401)
        read = await asyncio.to_thread(cache.get)
        summary = usage.summarise(read, _days(days or usage.DEFAULT_DAYS))
        return JSONResponse(summary.to_dict())
