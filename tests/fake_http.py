"""A scripted HTTP server on 127.0.0.1 for tests: ``with FakeHTTP(routes) as server: ...``.

``routes`` answers each request: a function of the :class:`Request`, or a table of paths (the
path without its query) to a :class:`Reply` or to such a function; a path the table lacks gets
``404 {"detail": "Not Found"}``. The server listens on a free port (``server.base``,
``server.port``), optionally over TLS, records every request it got (``server.requests``, and
``server.hits``: how many per path), and stops on leaving the ``with`` block.

Import it as ``from tests.fake_http import FakeHTTP, Reply`` (pyproject's pytest pythonpath puts
the repository root on sys.path), from the unit and the integration tests alike.
"""

from __future__ import annotations

import json
import socket
import ssl
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

NOT_FOUND_BODY = {"detail": "Not Found"}


@dataclass(frozen=True)
class Request:
    """One request the server got; ``count``: the how-manieth on its path, this one included."""

    method: str
    target: str  # as sent: path and query
    headers: Message
    body: bytes
    count: int

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.target).path

    @property
    def query(self) -> dict[str, str]:
        return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.target).query))


@dataclass(frozen=True)
class Reply:
    """An answer: ``body`` bytes or text as they are, anything else as JSON; sent after
    ``delay`` seconds. ``content_type`` None sends no Content-Type."""

    status: int = 200
    body: Any = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0
    content_type: str | None = "application/json"

    def encoded(self) -> bytes:
        if isinstance(self.body, bytes):
            return self.body
        if isinstance(self.body, str):
            return self.body.encode()
        return json.dumps(self.body).encode()


Route = Callable[[Request], Reply]
Routes = Route | Mapping[str, Reply | Route]


def free_port() -> int:
    """A 127.0.0.1 port nothing listens on (a connection to it is refused)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class FakeHTTP(ThreadingHTTPServer):
    """The server; a context manager that serves from a thread of its own while in use."""

    daemon_threads = True
    request_queue_size = 128

    def __init__(self, routes: Routes, tls: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes = routes
        self.scheme = "https" if tls else "http"
        if tls:
            self.socket = tls.wrap_socket(self.socket, server_side=True)
        self.requests: list[Request] = []
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def base(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    @property
    def hits(self) -> dict[str, int]:
        """How many requests each path got."""
        with self._lock:
            return dict(self._counts)

    def record(self, method: str, target: str, headers: Message, body: bytes) -> Request:
        path = urllib.parse.urlsplit(target).path
        with self._lock:
            self._counts[path] = self._counts.get(path, 0) + 1
            request = Request(method, target, headers, body, self._counts[path])
            self.requests.append(request)
        return request

    def answer(self, request: Request) -> Reply:
        if callable(self.routes):
            return self.routes(request)
        route = self.routes.get(request.path)
        if route is None:
            return Reply(404, NOT_FOUND_BODY)
        return route(request) if callable(route) else route

    def __enter__(self) -> FakeHTTP:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)


class _Handler(BaseHTTPRequestHandler):
    server: FakeHTTP

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        reply = self.server.answer(self.server.record(self.command, self.path, self.headers, body))
        if reply.delay:
            time.sleep(reply.delay)
        raw = reply.encoded()
        self.send_response(reply.status)
        if reply.content_type:
            self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(raw)))
        for key, value in reply.headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(raw)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve
