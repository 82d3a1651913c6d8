"""The gateway's HTTP side (aiohttp): one OpenAI endpoint in front of the host's vLLM servers.

- ``/v1/*`` needs ``Authorization: Bearer <client key>`` (else 401 ``invalid_api_key``).
- ``GET /v1/models`` is the union of the backends' own ``/v1/models`` entries (their metadata
  untouched), limited to the models the client may use; a backend that does not answer is left
  out (``/health`` names it). ``GET /v1/models/{model}`` is that model's entry.
- Any other ``POST /v1/*`` with a JSON body naming ``model`` goes to the backend serving that
  model, same path and query, body byte for byte, the client's ``Authorization`` replaced by
  the backend's key. Unknown or not allowed model: 404 ``model_not_found``; not JSON or no
  model: 400; over a rate: 429 with ``Retry-After``; backend refusing connections: 502; backend
  too slow to connect or answer: 503; any status of the backend passes through as it is.
- ``"stream": true``: the events pass through as they arrive, each complete event written at
  once. When the client did not ask ``stream_options.include_usage``, it is added to the
  backend's request (the only time the body is re-serialised) and the usage-only last event is
  taken out of what the client gets; the usage counts either way. A backend that cuts the
  stream: the client gets an error event naming the backend, then ``data: [DONE]``. A client
  that goes away cancels the handler (aiohttp's handler cancellation), which closes the
  backend connection: vLLM aborts the request.
- ``GET /health`` and ``GET /metrics`` need no key: the backends' states (probed, cached a few
  seconds) and the Prometheus counters.

Usage is counted per UTC day, client and the model the client named, for every ``POST /v1/*``
of an authenticated client (refusals included, as errors); ``GET`` requests are not counted.
One line per request goes to stderr (client, model, status, tokens, milliseconds); keys and the
Authorization header are never logged.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from . import errors
from .auth import Authenticator, RateLimits
from .config import Backend, Client, Config
from .usage import Usage, metrics_text

HEALTH_TIMEOUT = 1.0  # seconds for one backend's /health
HEALTH_CACHE_SECONDS = 3.0  # /health and /metrics reuse a probe this long
MODELS_TIMEOUT = 5.0  # seconds for one backend's /v1/models
MAX_BODY = 64 * 1024 * 1024  # a request body (images as base64 included)
# Below uvicorn's (vLLM's server) keep-alive of 5 s, so the gateway drops an idle connection
# before the backend does and never sends a request on a connection being closed.
UPSTREAM_KEEPALIVE = 4.0

# hop-by-hop headers and those the gateway sets itself
DROP_REQUEST = frozenset(
    {
        "host",
        "authorization",
        "content-length",
        "connection",
        "keep-alive",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "expect",
        "accept-encoding",
    }
)
DROP_RESPONSE = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "content-length",
        "te",
        "trailer",
        "upgrade",
        "server",
        "date",
    }
)
USAGE_KEY = b'"usage"'
DONE = b"data: [DONE]\n\n"


class Call:
    """What one routed request came to, for the usage, the limits and the log line."""

    __slots__ = ("completion", "error", "model", "prompt", "status")

    def __init__(self) -> None:
        self.model: str | None = None
        self.status = 500
        self.error = True
        self.prompt = 0
        self.completion = 0

    def answered(self, status: int) -> None:
        self.status = status
        self.error = status >= 400


def tokens(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def printable(value: str | None) -> str:
    """A name as it goes in a log line: one word, no control characters."""
    if not value:
        return "-"
    if value.isprintable() and " " not in value and len(value) <= 200:
        return value
    return json.dumps(value[:200])


def describe(exc: BaseException) -> str:
    if isinstance(exc, aiohttp.ClientConnectorError):
        if exc.os_error.errno:
            return os.strerror(exc.os_error.errno).lower()  # "connection refused"
        return str(exc.os_error) or type(exc).__name__
    if isinstance(exc, TimeoutError):
        return str(exc) or "timed out"
    return str(exc) or type(exc).__name__


class Gateway:
    """The application and its state: routes, keys, limits, usage, the upstream pool."""

    def __init__(self, config: Config, usage: Usage) -> None:
        self.config = config
        self.usage = usage
        self.auth = Authenticator(config.clients)
        self.limits = RateLimits()
        self.in_flight = 0
        self._session: aiohttp.ClientSession | None = None
        self._health: dict[str, dict[str, Any]] = {}
        self._health_at = -HEALTH_CACHE_SECONDS
        self._health_lock = asyncio.Lock()
        self._auth_headers = {
            b.name: f"Bearer {b.api_key}" for b in config.backends if b.api_key is not None
        }

    # ---- set-up -----------------------------------------------------------------------------
    def application(self) -> web.Application:
        app = web.Application(client_max_size=MAX_BODY)
        app.router.add_get("/health", self.health)
        app.router.add_get("/metrics", self.metrics)
        app.router.add_route("*", "/v1/{tail:.*}", self.v1)
        app.on_startup.append(self._open)
        app.on_cleanup.append(self._close)
        return app

    async def _open(self, app: web.Application) -> None:
        del app
        connector = aiohttp.TCPConnector(
            limit=0, keepalive_timeout=UPSTREAM_KEEPALIVE, ttl_dns_cache=60
        )
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=self.config.connect_timeout,
            sock_read=self.config.read_timeout,
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            timeout=timeout,
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),  # never carry one client's cookies to another
        )

    async def _close(self, app: web.Application) -> None:
        del app
        if self._session is not None:
            await self._session.close()

    @property
    def session(self) -> aiohttp.ClientSession:
        assert self._session is not None, "the application has not started"
        return self._session

    # ---- logging ----------------------------------------------------------------------------
    def access(
        self,
        client: str,
        model: str | None,
        request: web.Request,
        status: int,
        started: float,
        prompt: int = 0,
        completion: int = 0,
    ) -> None:
        milliseconds = (time.perf_counter() - started) * 1000
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        sys.stderr.write(
            f"{stamp} client={client} model={printable(model)} {request.method} "
            f"{printable(request.path)} status={status} prompt_tokens={prompt} "
            f"completion_tokens={completion} ms={milliseconds:.1f}\n"
        )

    # ---- /v1 ----------------------------------------------------------------------------------
    async def v1(self, request: web.Request) -> web.StreamResponse:
        started = time.perf_counter()
        header = request.headers.get("Authorization")
        client = self.auth.client(header)
        if client is None:
            self.usage.unauthenticated += 1
            self.access("-", None, request, 401, started)
            return errors.invalid_api_key(given=header is not None)
        if request.method == "POST":
            return await self.forward(request, client, started)
        if request.method == "GET":
            path = request.path
            if path == "/v1/models":
                answer = await self.list_models(client)
                self.access(client.name, None, request, answer.status, started)
                return answer
            if path.startswith("/v1/models/"):
                model = path[len("/v1/models/") :]
                answer = await self.get_model(client, model)
                self.access(client.name, model, request, answer.status, started)
                return answer
        self.access(client.name, None, request, 404, started)
        return errors.unknown_url(request.method, request.path)

    async def forward(
        self, request: web.Request, client: Client, started: float
    ) -> web.StreamResponse:
        call = Call()
        self.in_flight += 1
        try:
            return await self._forward(request, client, call)
        except (asyncio.CancelledError, ConnectionResetError):
            call.status, call.error = 499, False  # the client went away
            raise
        finally:
            self.in_flight -= 1
            self.usage.record(client.name, call.model, call.prompt, call.completion, call.error)
            self.limits.spend(client, call.prompt + call.completion)
            self.access(
                client.name, call.model, request, call.status, started, call.prompt, call.completion
            )

    async def _forward(
        self, request: web.Request, client: Client, call: Call
    ) -> web.StreamResponse:
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            call.status = 413
            return errors.response(
                413,
                f"The request body is larger than {MAX_BODY // 1024 // 1024} MiB.",
                "invalid_request_error",
                None,
            )
        try:
            data = json.loads(body)
        except ValueError:
            call.status = 400
            return errors.bad_request(
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                "payload.)"
            )
        model = data.get("model") if isinstance(data, dict) else None
        if not isinstance(model, str) or not model:
            call.status = 400
            return errors.bad_request("you must provide a model parameter", "model")
        call.model = model
        backend = self.config.routes.get(model)
        if backend is None or not client.may_use(model):
            call.status = 404
            return errors.model_not_found(model)
        refusal = self.limits.admit(client)
        if refusal is not None:
            call.status = 429
            return errors.rate_limited(
                refusal.kind, client.name, refusal.limit, refusal.retry_after
            )

        stream = data.get("stream") is True
        strip_usage = False
        if stream:
            options = data.get("stream_options")
            if options is None or (isinstance(options, dict) and not options.get("include_usage")):
                data["stream_options"] = {**(options or {}), "include_usage": True}
                body = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
                strip_usage = True

        headers = CIMultiDict(
            (name, value)
            for name, value in request.headers.items()
            if name.lower() not in DROP_REQUEST
        )
        headers["Accept-Encoding"] = "identity"
        authorization = self._auth_headers.get(backend.name)
        if authorization is not None:
            headers["Authorization"] = authorization
        url = URL(backend.url + request.raw_path, encoded=True)
        try:
            upstream = await self.session.post(url, data=body, headers=headers)
        except TimeoutError as exc:
            call.status = 503
            return errors.backend_timeout(backend.name, backend.url, describe(exc))
        except aiohttp.ClientError as exc:
            call.status = 502
            return errors.backend_down(backend.name, backend.url, describe(exc))

        finished = False
        try:
            if stream and upstream.status == 200 and upstream.content_type == "text/event-stream":
                answer = await self.relay(request, upstream, backend, strip_usage, call)
            else:
                answer = await self.whole(upstream, backend, call)
            finished = True
            return answer
        finally:
            if finished:
                upstream.release()
            else:
                upstream.close()  # the backend sees the connection go and stops generating

    async def whole(
        self, upstream: aiohttp.ClientResponse, backend: Backend, call: Call
    ) -> web.Response:
        """A non-streamed answer: read whole, counted, passed on as it is."""
        try:
            payload = await upstream.read()
        except TimeoutError as exc:
            call.status = 503
            return errors.backend_timeout(backend.name, backend.url, describe(exc))
        except aiohttp.ClientError as exc:
            call.status = 502
            return errors.backend_down(backend.name, backend.url, describe(exc))
        call.answered(upstream.status)
        if upstream.status == 200 and USAGE_KEY in payload:
            try:
                usage = json.loads(payload).get("usage")
            except (ValueError, AttributeError):
                usage = None
            if isinstance(usage, dict):
                call.prompt = tokens(usage.get("prompt_tokens"))
                call.completion = tokens(usage.get("completion_tokens"))
        return web.Response(
            status=upstream.status, body=payload, headers=self.response_headers(upstream)
        )

    async def relay(
        self,
        request: web.Request,
        upstream: aiohttp.ClientResponse,
        backend: Backend,
        strip_usage: bool,
        call: Call,
    ) -> web.StreamResponse:
        """A stream: each complete event written as soon as it is read."""
        headers = self.response_headers(upstream)
        headers["Cache-Control"] = "no-cache"
        headers["X-Accel-Buffering"] = "no"  # nginx in front: do not buffer this response
        answer = web.StreamResponse(status=200, headers=headers)
        await answer.prepare(request)
        call.answered(200)
        content = upstream.content
        pending = b""
        ended = False
        cut: str | None = None
        while True:
            try:
                data = await content.readany()
            except (TimeoutError, aiohttp.ClientError, OSError) as exc:
                cut = describe(exc)
                break
            if not data:
                if not ended:
                    cut = "the stream ended without data: [DONE]"
                break
            if pending:
                data = pending + data
            end = data.rfind(b"\n\n")
            if end < 0:
                pending = data
                continue
            end += 2
            events, pending = data[:end], data[end:]
            if USAGE_KEY in events:
                events = self.take_usage(events, strip_usage, call)
            if events:
                ended = events.endswith(DONE)
                await answer.write(events)
        if cut is not None:
            call.error = True
            await answer.write(errors.stream_cut(backend.name, backend.url, cut))
        elif pending:
            await answer.write(pending)
        await answer.write_eof()
        return answer

    @staticmethod
    def take_usage(events: bytes, strip_usage: bool, call: Call) -> bytes:
        """Read the usage of the events holding one; drop the usage-only event if asked."""
        kept: list[bytes] = []
        for event in events.split(b"\n\n")[:-1]:
            if USAGE_KEY in event:
                data = b"\n".join(
                    line[5:] for line in event.split(b"\n") if line.startswith(b"data:")
                )
                try:
                    chunk = json.loads(data)
                except ValueError:
                    chunk = None
                if isinstance(chunk, dict) and isinstance(chunk.get("usage"), dict):
                    usage = chunk["usage"]
                    call.prompt = tokens(usage.get("prompt_tokens"))
                    call.completion = tokens(usage.get("completion_tokens"))
                    if strip_usage and chunk.get("choices") == []:
                        continue
            kept.append(event + b"\n\n")
        return b"".join(kept)

    @staticmethod
    def response_headers(upstream: aiohttp.ClientResponse) -> CIMultiDict[str]:
        return CIMultiDict(
            (name, value)
            for name, value in upstream.headers.items()
            if name.lower() not in DROP_RESPONSE
        )

    # ---- models -------------------------------------------------------------------------------
    async def backend_models(self, backend: Backend) -> tuple[list[dict[str, Any]] | None, str]:
        """The backend's /v1/models entries for the names it serves here, or None and why."""
        headers = {}
        authorization = self._auth_headers.get(backend.name)
        if authorization is not None:
            headers["Authorization"] = authorization
        try:
            async with self.session.get(
                backend.url + "/v1/models",
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=MODELS_TIMEOUT),
            ) as answer:
                if answer.status != 200:
                    return None, f"/v1/models answered {answer.status}"
                listing = await answer.json(content_type=None)
        except TimeoutError:
            return None, "timeout"
        except (aiohttp.ClientError, ValueError) as exc:
            return None, describe(exc)
        data = listing.get("data") if isinstance(listing, dict) else None
        if not isinstance(data, list):
            return None, "/v1/models answered no data list"
        return [e for e in data if isinstance(e, dict) and e.get("id") in backend.models], ""

    async def list_models(self, client: Client) -> web.Response:
        backends = [b for b in self.config.backends if any(map(client.may_use, b.models))]
        results = await asyncio.gather(*(self.backend_models(b) for b in backends))
        data = [
            entry
            for entries, _reason in results
            if entries is not None
            for entry in entries
            if client.may_use(entry["id"])
        ]
        return web.json_response({"object": "list", "data": data})

    async def get_model(self, client: Client, model: str) -> web.Response:
        backend = self.config.routes.get(model)
        if backend is None or not client.may_use(model):
            return errors.model_not_found(model)
        entries, why = await self.backend_models(backend)
        if entries is None:
            if why == "timeout":
                return errors.backend_timeout(backend.name, backend.url, why)
            return errors.backend_down(backend.name, backend.url, why)
        for entry in entries:
            if entry["id"] == model:
                return web.json_response(entry)
        return errors.model_not_found(model)

    # ---- health and metrics -----------------------------------------------------------------
    async def probe(self, backend: Backend) -> dict[str, Any]:
        error: str | None = None
        try:
            async with self.session.get(
                backend.url + "/health", timeout=aiohttp.ClientTimeout(total=HEALTH_TIMEOUT)
            ) as answer:
                await answer.read()
                if answer.status != 200:
                    error = f"/health answered {answer.status}"
        except TimeoutError:
            error = f"/health did not answer within {HEALTH_TIMEOUT:g} s"
        except aiohttp.ClientError as exc:
            error = describe(exc)
        return {
            "url": backend.url,
            "up": error is None,
            "models": list(backend.models),
            "error": error,
        }

    async def backend_states(self) -> dict[str, dict[str, Any]]:
        async with self._health_lock:
            if time.monotonic() - self._health_at >= HEALTH_CACHE_SECONDS:
                states = await asyncio.gather(*(self.probe(b) for b in self.config.backends))
                self._health = {
                    b.name: s for b, s in zip(self.config.backends, states, strict=True)
                }
                self._health_at = time.monotonic()
            return self._health

    async def health(self, request: web.Request) -> web.Response:
        del request
        states = await self.backend_states()
        status = "ok" if all(s["up"] for s in states.values()) else "degraded"
        return web.json_response({"status": status, "backends": states})

    async def metrics(self, request: web.Request) -> web.Response:
        del request
        states = await self.backend_states()
        backends = [(name, s["url"], bool(s["up"])) for name, s in states.items()]
        text = metrics_text(self.usage, backends, self.in_flight)
        return web.Response(
            body=text.encode(),
            headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"},
        )
