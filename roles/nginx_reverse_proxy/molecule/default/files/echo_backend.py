#!/usr/bin/env python3
"""Backend stand-in for the reverse proxy tests (standard library only).

Answers every request with JSON describing what reached it (service name, method, path, query,
headers, body length), so a test sees exactly what the proxy forwarded. Also:
  GET /stream        three server-sent events 0.4 s apart (is the proxy buffering?)
  GET /sleep?s=N     answers after N seconds (proxy read timeout)
  websocket paths    101 Switching Protocols, then one text frame with the JSON echo
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "genai-echo/1"
    service = "echo"
    websocket_paths: tuple[str, ...] = ()

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _drain(self) -> int:
        """Read the request body, counting its bytes (Content-Length or chunked)."""
        total = 0
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return total
                total += len(self.rfile.read(size))
                self.rfile.readline()
        left = int(self.headers.get("Content-Length") or 0)
        while left > 0:
            chunk = self.rfile.read(min(left, 1 << 20))
            if not chunk:
                break
            total += len(chunk)
            left -= len(chunk)
        return total

    def _echo(self, length: int) -> dict:
        url = urlsplit(self.path)
        return {
            "service": self.service,
            "method": self.command,
            "path": url.path,
            "query": parse_qs(url.query),
            "headers": {k.lower(): v for k, v in self.headers.items()},
            "body_length": length,
        }

    def _send(self, status: int, payload: dict) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _websocket(self, echo: dict) -> None:
        key = self.headers.get("Sec-WebSocket-Key", "")
        accept = base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()
        self.send_response(101)
        self.send_header("Upgrade", "websocket")
        self.send_header("Connection", "Upgrade")
        self.send_header("Sec-WebSocket-Accept", accept)
        self.end_headers()
        payload = json.dumps(echo).encode()
        size = len(payload)
        header = bytes([0x81, size]) if size < 126 else bytes([0x81, 126]) + size.to_bytes(2, "big")
        self.wfile.write(header + payload)
        self.wfile.flush()
        self.close_connection = True

    def handle_one(self) -> None:
        length = self._drain()
        echo = self._echo(length)
        path = echo["path"]
        if path in self.websocket_paths and "websocket" in self.headers.get("Upgrade", "").lower():
            self._websocket(echo)
        elif path == "/stream":
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(3):
                data = f"data: {json.dumps({'chunk': i, 't': time.time()})}\n\n".encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                self.wfile.flush()
                time.sleep(0.4)
            self.wfile.write(b"0\r\n\r\n")
        elif path == "/sleep":
            time.sleep(float(echo["query"].get("s", ["1"])[0]))
            self._send(200, echo)
        else:
            self._send(200, echo)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = handle_one


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--bind", default="127.0.0.1")
    parser.add_argument("--websocket", action="append", default=[])
    args = parser.parse_args()
    handler = type(
        "EchoHandler", (Handler,), {"service": args.name, "websocket_paths": tuple(args.websocket)}
    )
    server = ThreadingHTTPServer((args.bind, args.port), handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
