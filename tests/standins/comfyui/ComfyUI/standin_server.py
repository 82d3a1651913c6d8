"""HTTP server of the ComfyUI stand-in: ComfyUI's routes, its origin/CORS middleware and
ComfyUI-Login's auth middleware, a prompt queue with a worker thread and a minimal WebSocket.

Middleware order follows the real server: ComfyUI's own CORS (``--enable-cors-header``) or
origin-only middleware is outermost (it answers OPTIONS itself), ComfyUI-Login's is next, then
the route. Standard library only; test double only.
"""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
import mimetypes
import os
import socket
import struct
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import standin_nodes as nodes

JsonDict = dict[str, Any]
COMFYUI_VERSION = "0.3.64"  # the release grammar_comfyui.py was read from
PYTORCH_VERSION = "2.8.0+cu128"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC11B85"
LOGIN_EXEMPT_SUFFIXES = (".css", ".css.map", ".js", ".ico")


class Reply(Exception):
    """Raised by a middleware or route to answer at once (aiohttp's web.HTTPException)."""

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        content_type: str = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.content_type = content_type
        self.headers = headers or {}


def json_reply(status: int, data: Any) -> Reply:
    return Reply(status, json.dumps(data).encode(), "application/json; charset=utf-8")


def text_reply(status: int, text: str) -> Reply:
    return Reply(status, text.encode())


@dataclass
class Settings:
    """What the server was started with (from main.py)."""

    root: str
    listen: str
    port: int
    cors: str | None
    login_enabled: bool
    token: str
    user: str | None
    gpus: list[str] | None
    vram_mib: int
    cpu: bool
    argv: list[str]
    report: JsonDict = field(default_factory=dict)


class WsClient:
    """One open WebSocket; writes are serialised."""

    def __init__(self, handler: BaseHTTPRequestHandler) -> None:
        self.handler = handler
        self.lock = threading.Lock()
        self.open = True

    def send_frame(self, opcode: int, payload: bytes) -> None:
        header = bytes([0x80 | opcode])
        size = len(payload)
        if size < 126:
            header += bytes([size])
        elif size < 65536:
            header += bytes([126]) + struct.pack(">H", size)
        else:
            header += bytes([127]) + struct.pack(">Q", size)
        with self.lock:
            if not self.open:
                return
            try:
                self.handler.wfile.write(header + payload)
                self.handler.wfile.flush()
            except OSError:
                self.open = False

    def send_json(self, data: JsonDict) -> None:
        self.send_frame(0x1, json.dumps(data).encode())


class ComfyServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, settings: Settings) -> None:
        host = settings.listen.split(",")[0]
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, settings.port), Handler, bind_and_activate=False)
        self.settings = settings
        self.folders = nodes.Folders(settings.root)
        self.lock = threading.Lock()
        self.number = 0
        self.pending: list[list[Any]] = []
        self.running: list[list[Any]] = []
        self.history: dict[str, JsonDict] = {}
        self.sockets: dict[str, WsClient] = {}
        self.work = threading.Condition(self.lock)
        self.step_seconds = float(os.environ.get("STANDIN_STEP_SECONDS", "0.1") or 0)
        self.started = time.time()
        threading.Thread(target=self._worker, name="prompt-worker", daemon=True).start()

    # queue --------------------------------------------------------------------------------
    def queue_info(self) -> JsonDict:
        return {"exec_info": {"queue_remaining": len(self.pending) + len(self.running)}}

    def broadcast(self, event: str, data: JsonDict, sid: str | None = None) -> None:
        message = {"type": event, "data": data}
        targets = [self.sockets.get(sid)] if sid else list(self.sockets.values())
        for client in targets:
            if client is not None:
                client.send_json(message)

    def enqueue(self, item: list[Any]) -> None:
        with self.work:
            self.pending.append(item)
            self.pending.sort(key=lambda entry: entry[0])
            self.work.notify()
        self.broadcast("status", {"status": self.queue_info()})

    def _worker(self) -> None:
        while True:
            with self.work:
                while not self.pending:
                    self.work.wait()
                item = self.pending.pop(0)
                self.running = [item]
            self._run(item)
            with self.lock:
                self.running = []
            self.broadcast("status", {"status": self.queue_info()})

    def _run(self, item: list[Any]) -> None:
        number, prompt_id, prompt, extra, outputs = item
        sid = extra.get("client_id")
        stamp = lambda: int(time.time() * 1000)  # noqa: E731
        messages: list[list[Any]] = [
            ["execution_start", {"prompt_id": prompt_id, "timestamp": stamp()}],
            ["execution_cached", {"nodes": [], "prompt_id": prompt_id, "timestamp": stamp()}],
        ]
        for event, data in messages:
            self.broadcast(event, data, sid)
        if self.step_seconds:
            time.sleep(self.step_seconds)
        result = nodes.execute(prompt, outputs, self.folders)
        for node_id, output in result.items():
            self.broadcast(
                "executing",
                {"node": node_id, "display_node": node_id, "prompt_id": prompt_id},
                sid,
            )
            self.broadcast(
                "executed",
                {
                    "node": node_id,
                    "display_node": node_id,
                    "output": output,
                    "prompt_id": prompt_id,
                },
                sid,
            )
        self.broadcast("executing", {"node": None, "prompt_id": prompt_id}, sid)
        success = ["execution_success", {"prompt_id": prompt_id, "timestamp": stamp()}]
        self.broadcast(success[0], success[1], sid)
        messages.append(success)
        with self.lock:
            self.history[prompt_id] = {
                "prompt": item,
                "outputs": result,
                "status": {"status_str": "success", "completed": True, "messages": messages},
                "meta": {
                    node_id: {
                        "node_id": node_id,
                        "display_node": node_id,
                        "parent_node": None,
                        "real_node_id": node_id,
                    }
                    for node_id in result
                },
            }
        del number


Route = Callable[["Handler"], None]


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    loopback = False
    for family in (socket.AF_INET, socket.AF_INET6):
        try:
            for info in socket.getaddrinfo(host, None, family, socket.SOCK_STREAM):
                if not ipaddress.ip_address(info[4][0]).is_loopback:
                    return loopback
                loopback = True
        except socket.gaierror:
            pass
    return loopback


class Handler(BaseHTTPRequestHandler):
    server: ComfyServer
    protocol_version = "HTTP/1.1"
    server_version = "Python/3.12 aiohttp/3.12.15"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("STANDIN_ACCESS_LOG") == "1":
            super().log_message(format, *args)

    # plumbing -----------------------------------------------------------------------------
    def do_GET(self) -> None:
        self.dispatch("GET")

    def do_POST(self) -> None:
        self.dispatch("POST")

    def do_DELETE(self) -> None:
        self.dispatch("DELETE")

    def do_PUT(self) -> None:
        self.dispatch("PUT")

    def do_OPTIONS(self) -> None:
        self.dispatch("OPTIONS")

    def do_HEAD(self) -> None:
        self.dispatch("HEAD")

    @property
    def settings(self) -> Settings:
        return self.server.settings

    def dispatch(self, method: str) -> None:
        split = urllib.parse.urlsplit(self.path)
        self.route_path = urllib.parse.unquote(split.path) or "/"
        self.query = dict(urllib.parse.parse_qsl(split.query, keep_blank_values=True))
        self.extra_headers: dict[str, str] = {}
        self._body: bytes | None = None
        try:
            self.outer_middleware(method)
        except Reply as reply:
            self.send(reply)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def send(self, reply: Reply) -> None:
        self.body()  # drain an unread request body, so a kept-alive connection stays in sync
        self.send_response(reply.status)
        headers = {**reply.headers}
        if reply.status not in (101, 204, 304):
            headers.setdefault("Content-Type", reply.content_type)
            headers["Content-Length"] = str(len(reply.body))
        for name, value in {**headers, **self.extra_headers}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD" and reply.body:
            self.wfile.write(reply.body)

    def body(self) -> bytes:
        if self._body is None:
            length = int(self.headers.get("Content-Length") or 0)
            self._body = self.rfile.read(length) if length else b""
        return self._body

    def json_body(self) -> Any:
        raw = self.body()
        try:
            return json.loads(raw or b"null")
        except ValueError as exc:
            raise text_reply(
                500, "500 Internal Server Error\n\nServer got itself in trouble"
            ) from exc

    # ComfyUI's middleware: CORS (--enable-cors-header) or origin-only ---------------------
    def outer_middleware(self, method: str) -> None:
        cors = self.settings.cors
        if cors:
            self.extra_headers.update(
                {
                    "Access-Control-Allow-Origin": cors,
                    "Access-Control-Allow-Methods": "POST, GET, DELETE, PUT, OPTIONS",
                    "Access-Control-Allow-Headers": "Content-Type, Authorization",
                    "Access-Control-Allow-Credentials": "true",
                }
            )
        else:
            self.origin_only_check()
        if method == "OPTIONS":
            raise Reply(200)
        self.login_middleware()
        self.route(method)

    def origin_only_check(self) -> None:
        host = self.headers.get("Host")
        origin = self.headers.get("Origin")
        if host is None or origin is None:
            return
        host_domain: str | None = host.lower()
        parsed = urllib.parse.urlparse(origin)
        origin_domain: str | None = parsed.netloc.lower()
        host_parsed = urllib.parse.urlsplit("//" + (host_domain or ""))
        loopback = _is_loopback(host_parsed.hostname)
        if parsed.port is None:
            host_domain = host_parsed.hostname
        if host_parsed.port is None:
            origin_domain = parsed.hostname
        if loopback and host_domain and origin_domain and host_domain != origin_domain:
            print(
                f"WARNING: request with non matching host and origin {host_domain} != "
                f"{origin_domain}, returning 403",
                file=sys.stderr,
                flush=True,
            )
            raise Reply(403)

    # ComfyUI-Login's middleware ------------------------------------------------------------
    def login_middleware(self) -> None:
        settings = self.settings
        path = self.route_path
        if not settings.login_enabled:
            return
        if path == "/login" or path.endswith(LOGIN_EXEMPT_SUFFIXES) or path == "/standin/report":
            return
        cors = settings.cors
        if cors is None or cors == "*" or cors == self.headers.get("Origin"):
            authorization = self.headers.get("Authorization")
            if authorization:
                parts = authorization.split()
                if len(parts) != 2:  # `auth_type, token = header.split()` raises upstream
                    raise text_reply(
                        500, "500 Internal Server Error\n\nServer got itself in trouble"
                    )
                auth_type, token = parts
                if auth_type == "Bearer" and token == settings.token:
                    return
            if self.query.get("token") == settings.token:
                return
        if "text/html" in self.headers.get("Accept", ""):
            raise Reply(302, b"302: Found", headers={"Location": "/login"})
        raise json_reply(401, {"error": "Authentication required."})

    # routing --------------------------------------------------------------------------------
    def route(self, method: str) -> None:
        path = self.route_path
        if path == "/api" or path.startswith("/api/"):
            path = path[4:] or "/"
        if method == "HEAD":
            method = "GET"
        for pattern, methods in ROUTES:
            params = _match(pattern, path)
            if params is None:
                continue
            handler = methods.get(method)
            if handler is None:
                raise text_reply(405, "405: Method Not Allowed")
            self.params = params
            handler(self)
            return
        raise text_reply(404, "404: Not Found")

    # routes ---------------------------------------------------------------------------------
    def r_root(self) -> None:
        page = (
            "<!DOCTYPE html><html><head><title>ComfyUI</title></head>"
            "<body><div id='app'>ComfyUI (stand-in)</div></body></html>"
        )
        raise Reply(200, page.encode(), "text/html", {"Cache-Control": "no-cache"})

    def r_login_get(self) -> None:
        user = self.settings.user or ""
        wrong = self.query.get("wrong_password", "")
        page = (
            "<!DOCTYPE html><html><head><title>Login</title></head><body>"
            "<form method='POST' action='/login'>"
            f"<input type='text' name='username' value='{_html(user)}'>"
            "<input type='password' name='password'>"
            "<button type='submit'>Login</button></form>"
            + ("<p class='error'>Wrong password</p>" if wrong else "")
            + "</body></html>"
        )
        raise Reply(200, page.encode(), "text/html; charset=utf-8")

    def r_login_post(self) -> None:
        raise json_reply(
            501,
            {
                "error": "stand-in: browser log-in (bcrypt, session cookie) is not implemented; "
                "use the token"
            },
        )

    def r_logout(self) -> None:
        raise Reply(302, b"302: Found", headers={"Location": "/login"})

    def r_system_stats(self) -> None:
        settings = self.settings
        total, free = _meminfo()
        if settings.cpu:
            devices = [
                {
                    "name": "cpu",
                    "type": "cpu",
                    "index": None,
                    "vram_total": total,
                    "vram_free": free,
                    "torch_vram_total": total,
                    "torch_vram_free": free,
                }
            ]
        else:
            vram = settings.vram_mib * 1024 * 1024
            devices = [
                {
                    "name": f"cuda:{index} NVIDIA GPU {gpu} (stand-in) : cudaMallocAsync",
                    "type": "cuda",
                    "index": index,
                    "vram_total": vram,
                    "vram_free": vram - 512 * 1024 * 1024,
                    "torch_vram_total": 0,
                    "torch_vram_free": 0,
                }
                for index, gpu in enumerate(settings.gpus or ["0"])
            ][:1]
        stats = {
            "system": {
                "os": os.name if os.name != "posix" else "posix",
                "ram_total": total,
                "ram_free": free,
                "comfyui_version": COMFYUI_VERSION,
                "required_frontend_version": "1.26.13",
                "python_version": sys.version,
                "pytorch_version": PYTORCH_VERSION,
                "embedded_python": False,
                "argv": settings.argv,
            },
            "devices": devices,
        }
        raise json_reply(200, stats)

    def r_prompt_get(self) -> None:
        with self.server.lock:
            raise json_reply(200, self.server.queue_info())

    def r_prompt_post(self) -> None:
        data = self.json_body()
        if not isinstance(data, dict) or "prompt" not in data:
            error = {
                "type": "no_prompt",
                "message": "No prompt provided",
                "details": "No prompt provided",
                "extra_info": {},
            }
            raise json_reply(400, {"error": error, "node_errors": {}})
        prompt = data["prompt"]
        server = self.server
        with server.lock:
            number = server.number
            if data.get("front"):
                number = -number
            server.number += 1
        if isinstance(data.get("number"), int | float):
            number = float(data["number"])
        prompt_id = str(data.get("prompt_id") or uuid.uuid4())
        valid, error, outputs, node_errors = nodes.validate_prompt(prompt, server.folders)
        if not valid:
            print(f"invalid prompt: {error}", file=sys.stderr, flush=True)
            raise json_reply(400, {"error": error, "node_errors": node_errors})
        extra = dict(data.get("extra_data") or {})
        if "client_id" in data:
            extra["client_id"] = data["client_id"]
        server.enqueue([number, prompt_id, prompt, extra, outputs])
        raise json_reply(
            200, {"prompt_id": prompt_id, "number": number, "node_errors": node_errors}
        )

    def r_queue_get(self) -> None:
        with self.server.lock:
            raise json_reply(
                200,
                {
                    "queue_running": list(self.server.running),
                    "queue_pending": list(self.server.pending),
                },
            )

    def r_queue_post(self) -> None:
        data = self.json_body() or {}
        with self.server.lock:
            if data.get("clear"):
                self.server.pending.clear()
            for prompt_id in data.get("delete", []) or []:
                self.server.pending[:] = [p for p in self.server.pending if p[1] != prompt_id]
        raise Reply(200)

    def r_history_get(self) -> None:
        max_items = self.query.get("max_items")
        with self.server.lock:
            items = list(self.server.history.items())
        if max_items and max_items.isdigit():
            items = items[-int(max_items) :]
        raise json_reply(200, dict(items))

    def r_history_id(self) -> None:
        prompt_id = self.params["prompt_id"]
        with self.server.lock:
            entry = self.server.history.get(prompt_id)
        raise json_reply(200, {prompt_id: entry} if entry is not None else {})

    def r_history_post(self) -> None:
        data = self.json_body() or {}
        with self.server.lock:
            if data.get("clear"):
                self.server.history.clear()
            for prompt_id in data.get("delete", []) or []:
                self.server.history.pop(prompt_id, None)
        raise Reply(200)

    def r_view(self) -> None:
        filename = self.query.get("filename")
        if filename is None:
            raise text_reply(404, "404: Not Found")
        if not filename or filename[0] == "/" or ".." in filename:
            raise Reply(400)
        kind = self.query.get("type", "output")
        base = self.server.folders.by_type(kind)
        if base is None:
            raise Reply(400)
        subfolder = self.query.get("subfolder", "")
        directory = os.path.abspath(os.path.join(base, os.path.normpath(subfolder)))
        if os.path.commonpath((directory, base)) != base:
            raise Reply(403)
        path = os.path.join(directory, filename)
        if not os.path.isfile(path):
            raise Reply(404)
        with open(path, "rb") as handle:
            data = handle.read()
        content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
        raise Reply(200, data, content_type, {"Content-Disposition": f'filename="{filename}"'})

    def r_upload_image(self) -> None:
        content_type = self.headers.get("Content-Type", "")
        if not content_type.startswith("multipart/form-data"):
            raise Reply(400)
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + self.body()
        )
        fields: dict[str, str] = {}
        image: tuple[str, bytes] | None = None
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            filename = part.get_filename()
            payload = part.get_payload(decode=True) or b""
            if name == "image" and filename:
                image = (os.path.basename(filename), payload)
            elif name:
                fields[str(name)] = payload.decode(errors="replace")
        if image is None:
            raise Reply(400)
        kind = fields.get("type", "input")
        base = self.server.folders.by_type(kind) or self.server.folders.input
        subfolder = fields.get("subfolder", "")
        directory = os.path.abspath(os.path.join(base, subfolder))
        if os.path.commonpath((directory, base)) != base:
            raise Reply(400)
        os.makedirs(directory, exist_ok=True)
        name, data = image
        overwrite = fields.get("overwrite", "").lower() in ("true", "1")
        target = os.path.join(directory, name)
        if not overwrite:
            stem, ext = os.path.splitext(name)
            counter = 1
            while os.path.exists(target):
                name = f"{stem} ({counter}){ext}"
                target = os.path.join(directory, name)
                counter += 1
        with open(target, "wb") as handle:
            handle.write(data)
        raise json_reply(200, {"name": name, "subfolder": subfolder, "type": kind})

    def r_object_info(self) -> None:
        raise json_reply(200, nodes.object_info(self.server.folders))

    def r_object_info_class(self) -> None:
        raise json_reply(200, nodes.object_info(self.server.folders, self.params["node_class"]))

    def r_models(self) -> None:
        raise json_reply(200, sorted(nodes.MODEL_FOLDERS))

    def r_models_folder(self) -> None:
        folder = self.params["folder"]
        if folder not in nodes.MODEL_FOLDERS:
            raise text_reply(404, "404: Not Found")
        raise json_reply(200, self.server.folders.model_files(folder))

    def r_empty_list(self) -> None:
        raise json_reply(200, [])

    def r_features(self) -> None:
        raise json_reply(200, {"supports_preview_metadata": True, "max_upload_size": 104857600})

    def r_ok(self) -> None:
        self.body()
        raise Reply(200)

    def r_report(self) -> None:
        report = dict(self.settings.report)
        report["models"] = self.server.folders.all_models()
        report["uptime_seconds"] = round(time.time() - self.server.started, 3)
        raise json_reply(200, report)

    def r_ws(self) -> None:
        key = self.headers.get("Sec-WebSocket-Key")
        if "websocket" not in self.headers.get("Upgrade", "").lower() or not key:
            raise text_reply(
                400, 'No WebSocket UPGRADE hdr: None\n Can "Upgrade" only to "WebSocket".'
            )
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        server = self.server
        sid = self.query.get("clientId") or uuid.uuid4().hex
        client = WsClient(self)
        with server.lock:
            old = server.sockets.pop(sid, None)
            server.sockets[sid] = client
            info = server.queue_info()
        if old is not None:
            old.open = False
        client.send_json({"type": "status", "data": {"status": info, "sid": sid}})
        try:
            self._ws_read_loop(client)
        finally:
            client.open = False
            with server.lock:
                if server.sockets.get(sid) is client:
                    del server.sockets[sid]

    def _ws_read_loop(self, client: WsClient) -> None:
        while client.open:
            head = self.rfile.read(2)
            if len(head) < 2:
                return
            opcode = head[0] & 0x0F
            masked = head[1] & 0x80
            size = head[1] & 0x7F
            if size == 126:
                size = struct.unpack(">H", self.rfile.read(2))[0]
            elif size == 127:
                size = struct.unpack(">Q", self.rfile.read(8))[0]
            mask = self.rfile.read(4) if masked else b""
            payload = bytearray(self.rfile.read(size))
            if mask:
                for index in range(len(payload)):
                    payload[index] ^= mask[index % 4]
            if opcode == 0x8:  # close
                client.send_frame(0x8, bytes(payload[:2]))
                return
            if opcode == 0x9:  # ping
                client.send_frame(0xA, bytes(payload))


def _html(text: str) -> str:
    return (
        text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace("'", "&#39;")
    )


def _meminfo() -> tuple[int, int]:
    total = free = 0
    try:
        with open("/proc/meminfo", encoding="ascii") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                if key == "MemTotal":
                    total = int(value.split()[0]) * 1024
                elif key == "MemAvailable":
                    free = int(value.split()[0]) * 1024
    except OSError:
        pass
    return total, free


def _match(pattern: str, path: str) -> dict[str, str] | None:
    want = pattern.strip("/").split("/")
    got = path.strip("/").split("/")
    if len(want) != len(got):
        return None
    params: dict[str, str] = {}
    for expected, actual in zip(want, got, strict=True):
        if expected.startswith("{") and expected.endswith("}"):
            if not actual:
                return None
            params[expected[1:-1]] = actual
        elif expected != actual:
            return None
    return params


H = Handler
ROUTES: list[tuple[str, dict[str, Route]]] = [
    ("/", {"GET": H.r_root}),
    ("/login", {"GET": H.r_login_get, "POST": H.r_login_post}),
    ("/logout", {"GET": H.r_logout}),
    ("/ws", {"GET": H.r_ws}),
    ("/system_stats", {"GET": H.r_system_stats}),
    ("/prompt", {"GET": H.r_prompt_get, "POST": H.r_prompt_post}),
    ("/queue", {"GET": H.r_queue_get, "POST": H.r_queue_post}),
    ("/history", {"GET": H.r_history_get, "POST": H.r_history_post}),
    ("/history/{prompt_id}", {"GET": H.r_history_id}),
    ("/view", {"GET": H.r_view}),
    ("/upload/image", {"POST": H.r_upload_image}),
    ("/object_info", {"GET": H.r_object_info}),
    ("/object_info/{node_class}", {"GET": H.r_object_info_class}),
    ("/models", {"GET": H.r_models}),
    ("/models/{folder}", {"GET": H.r_models_folder}),
    ("/embeddings", {"GET": H.r_empty_list}),
    ("/extensions", {"GET": H.r_empty_list}),
    ("/features", {"GET": H.r_features}),
    ("/interrupt", {"POST": H.r_ok}),
    ("/free", {"POST": H.r_ok}),
    ("/standin/report", {"GET": H.r_report}),
]
del H
