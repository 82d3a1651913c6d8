"""OpenAI's error object and status codes, as the official SDKs map them to exceptions: 400
BadRequestError, 401 AuthenticationError, 404 NotFoundError, 429 RateLimitError (with
``Retry-After``), 502/503 InternalServerError; and the server-sent event that ends a stream the
backend cut."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web


def body(message: str, kind: str, code: str | int | None, param: str | None = None) -> bytes:
    error: dict[str, Any] = {"message": message, "type": kind, "param": param, "code": code}
    return json.dumps({"error": error}).encode()


def response(
    status: int,
    message: str,
    kind: str,
    code: str | None,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> web.Response:
    return web.Response(
        status=status,
        body=body(message, kind, code, param),
        content_type="application/json",
        headers=headers,
    )


def invalid_api_key(given: bool) -> web.Response:
    if given:
        message = "Incorrect API key provided. Use the key of a client of this gateway."
    else:
        message = (
            "You didn't provide an API key. You need to provide your API key in an "
            "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
        )
    return response(401, message, "invalid_request_error", "invalid_api_key")


def model_not_found(model: str) -> web.Response:
    return response(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
    )


def bad_request(message: str, param: str | None = None) -> web.Response:
    return response(400, message, "invalid_request_error", None, param)


def unknown_url(method: str, path: str) -> web.Response:
    return response(
        404, f"Unknown request URL: {method} {path}.", "invalid_request_error", "unknown_url"
    )


def rate_limited(kind: str, client: str, limit: int, retry_after: int) -> web.Response:
    unit = "requests" if kind == "requests" else "tokens"
    return response(
        429,
        f"Rate limit reached for client {client} on {unit} per minute: limit {limit}. "
        f"Please try again in {retry_after}s.",
        kind,
        "rate_limit_exceeded",
        headers={"Retry-After": str(retry_after)},
    )


def backend_down(name: str, url: str, reason: str) -> web.Response:
    return response(
        502,
        f"The backend {name} ({url}) is unreachable: {reason}.",
        "server_error",
        "backend_unreachable",
    )


def backend_timeout(name: str, url: str, reason: str) -> web.Response:
    return response(
        503,
        f"The backend {name} ({url}) did not answer in time: {reason}.",
        "server_error",
        "backend_timeout",
    )


def stream_cut(name: str, url: str, reason: str) -> bytes:
    """The last events of a stream the backend cut: an error event, then [DONE] (as vLLM
    ends a stream that fails)."""
    message = f"The backend {name} ({url}) closed the stream before its end: {reason}."
    return b"data: " + body(message, "server_error", "backend_stream_cut") + b"\n\ndata: [DONE]\n\n"
