"""Tests for the endpoint_health module, run through AnsibleModule against 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from ansible.module_utils import basic

from ansible_collections.myia.genai_stack.plugins.modules import endpoint_health

TOKEN = "module-T0ken-abcdef"
QUERY_TOKEN = "$2b$12$abcdefghijklmnopqrstuv"  # a bcrypt-hash-shaped ComfyUI token


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()

    def hit(self, path: str) -> int:
        with self.lock:
            self.hits[path] = self.hits.get(path, 0) + 1
            return self.hits[path]

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class Handler(BaseHTTPRequestHandler):
    """/ok  /sleep/<ms>  /fail-first/<n>  /never  /v1/models (bearer)  /system_stats (?token=)"""

    server: Server

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        parsed = urllib.parse.urlsplit(self.path)
        path = parsed.path
        count = self.server.hit(path)
        if path == "/ok":
            self._send(200, {"status": "ok"})
        elif path.startswith("/sleep/"):
            time.sleep(int(path.rsplit("/", 1)[1]) / 1000.0)
            self._send(200, {"slept": True})
        elif path.startswith("/fail-first/"):
            ready = count > int(path.rsplit("/", 1)[1])
            self._send(200 if ready else 503, {"ready": ready})
        elif path == "/never":
            self._send(503, {"error": "engine dead"})
        elif path == "/v1/models":
            if self.headers.get("Authorization") == f"Bearer {TOKEN}":
                self._send(200, {"object": "list", "data": [{"id": "qwen3-8b"}]})
            else:
                self._send(401, {"error": "Unauthorized", "got": self.headers.get("Authorization")})
        elif path == "/system_stats":
            if dict(urllib.parse.parse_qsl(parsed.query)).get("token") == QUERY_TOKEN:
                self._send(200, {"devices": [{"type": "cuda", "index": 0}]})
            else:
                self._send(401, {"error": "Authentication required."})
        else:
            self._send(404, {"detail": "Not Found"})


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run_module(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: dict[str, Any]
) -> tuple[int, dict[str, Any], str]:
    """Run the module's main() with ``args``; return (exit code, result, raw stdout)."""
    payload = json.dumps({"ANSIBLE_MODULE_ARGS": args}).encode()
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", payload)
    if hasattr(basic, "_ANSIBLE_PROFILE"):  # ansible-core >= 2.19
        monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")
    with pytest.raises(SystemExit) as exited:
        endpoint_health.main()
    out = capsys.readouterr().out
    return int(exited.value.code or 0), json.loads(out), out


def test_all_healthy(
    server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result, _ = run_module(
        monkeypatch,
        capsys,
        {
            "endpoints": [
                {
                    "name": "ok",
                    "url": server.base + "/ok",
                    "json_path": "status",
                    "json_value": "ok",
                },
                {
                    "name": "vllm",
                    "url": server.base + "/v1/models",
                    "auth": {"type": "bearer", "token": TOKEN},
                    "json_contains": {"path": "data", "value": {"id": "qwen3-8b"}},
                },
                {
                    "name": "comfyui",
                    "url": server.base + "/system_stats",
                    "auth": {"type": "query", "value": QUERY_TOKEN},
                    "json_path": "devices.0.type",
                    "json_value": "cuda",
                },
                {"url": server.base + "/ok"},
            ]
        },
    )
    assert code == 0
    assert result["changed"] is False
    assert not result.get("failed")
    assert result["failed_endpoints"] == []
    assert result["summary"]["total"] == 4
    assert result["summary"]["ok"] == 4
    assert result["summary"]["failed"] == 0
    names = [e["name"] for e in result["endpoints"]]
    assert names == ["ok", "vllm", "comfyui", server.base + "/ok"]
    assert result["endpoints"][2]["url"] == server.base + "/system_stats?token=***"


def test_fail_message_lists_every_failed_endpoint(
    server: Server,
    closed_port: int,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, result, raw = run_module(
        monkeypatch,
        capsys,
        {
            "endpoints": [
                {"name": "fine", "url": server.base + "/ok"},
                {"name": "dead", "url": server.base + "/never"},
                {"name": "down", "url": f"http://127.0.0.1:{closed_port}/health"},
                {
                    "name": "wrong-token",
                    "url": server.base + "/v1/models",
                    "auth": {"type": "bearer", "token": "old-" + TOKEN},
                },
                {
                    "name": "wrong-model",
                    "url": server.base + "/v1/models",
                    "auth": {"type": "bearer", "token": TOKEN},
                    "json_path": "data.0.id",
                    "json_value": "qwen3-32b",
                },
            ],
            "retries": 1,
            "delay": 0.01,
        },
    )
    assert code == 1
    assert result["failed"] is True
    assert result["failed_endpoints"] == ["dead", "down", "wrong-token", "wrong-model"]
    msg = result["msg"]
    assert msg.startswith("4 of 5 endpoints failed: ")
    assert f"dead ({server.base}/never): status=503, error=status 503, expected 200" in msg
    assert f"down (http://127.0.0.1:{closed_port}/health): status=none, error=connection" in msg
    assert f"wrong-token ({server.base}/v1/models): status=401, error=status 401" in msg
    assert "wrong-model (" in msg and 'is "qwen3-8b", expected "qwen3-32b"' in msg
    assert "fine (" not in msg
    assert result["summary"] == {**result["summary"], "total": 5, "ok": 1, "failed": 4}
    assert [e["attempts"] for e in result["endpoints"]] == [1, 2, 2, 2, 2]
    assert len(result["endpoints"]) == 5
    assert TOKEN not in raw


def test_fail_on_error_false_reports_without_failing(
    server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result, _ = run_module(
        monkeypatch,
        capsys,
        {
            "endpoints": [
                {"name": "ok", "url": server.base + "/ok"},
                {"name": "dead", "url": server.base + "/never"},
            ],
            "fail_on_error": False,
        },
    )
    assert code == 0
    assert not result.get("failed")
    assert result["failed_endpoints"] == ["dead"]
    assert result["endpoints"][1]["status"] == 503


def test_check_mode_runs_the_checks(
    server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result, _ = run_module(
        monkeypatch,
        capsys,
        {"endpoints": [{"name": "ok", "url": server.base + "/ok"}], "_ansible_check_mode": True},
    )
    assert code == 0
    assert result["changed"] is False
    assert not result.get("skipped")
    assert result["endpoints"][0]["ok"] is True
    assert server.hits["/ok"] == 1


def test_defaults_and_overrides_and_deadline(
    server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result, _ = run_module(
        monkeypatch,
        capsys,
        {
            "endpoints": [
                {"name": "loading", "url": server.base + "/fail-first/3"},
                {"name": "no-retry", "url": server.base + "/fail-first/1", "deadline": 0},
                {"name": "dead", "url": server.base + "/never", "deadline": 0.8},
            ],
            "deadline": 5,
            "delay": 0.05,
            "max_delay": 0.1,
            "fail_on_error": False,
        },
    )
    assert code == 0
    loading, no_retry, dead = result["endpoints"]
    assert loading["ok"] and loading["attempts"] == 4
    assert not no_retry["ok"] and no_retry["attempts"] == 1
    assert not dead["ok"] and 0.8 <= dead["elapsed_s"] < 1.4
    assert result["summary"]["elapsed_s"] < 2


def test_concurrent_through_the_module(
    server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    endpoints = [{"name": f"svc{i}", "url": f"{server.base}/sleep/200"} for i in range(20)]
    started = time.monotonic()
    code, result, _ = run_module(monkeypatch, capsys, {"endpoints": endpoints, "max_workers": 20})
    assert code == 0
    assert time.monotonic() - started < 2.0
    assert result["summary"]["ok"] == 20


def test_secrets_never_in_output(
    server: Server, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, raw = run_module(
        monkeypatch,
        capsys,
        {
            "endpoints": [
                {
                    "name": "comfy-old",
                    "url": server.base + "/system_stats",
                    "auth": {"type": "query", "value": "wrong-" + QUERY_TOKEN},
                },
                {
                    "name": "vllm-old",
                    "url": server.base + "/v1/models",
                    "headers": {"Authorization": f"Bearer {TOKEN}x"},
                },
                {
                    "name": "vllm-old2",
                    "url": server.base + "/v1/models",
                    "auth": {"type": "bearer", "token": "old-" + TOKEN},
                },
            ]
        },
    )
    assert code == 1
    assert QUERY_TOKEN not in raw
    assert TOKEN not in raw
    assert "token=***" in raw


def test_auth_spec_is_validated(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, result, _ = run_module(
        monkeypatch,
        capsys,
        {"endpoints": [{"url": "http://127.0.0.1:9/", "auth": {"type": "bearer"}}]},
    )
    assert code == 1
    assert "token" in result["msg"]
    code, result, _ = run_module(
        monkeypatch,
        capsys,
        {"endpoints": [{"url": "http://127.0.0.1:9/", "auth": {"type": "digest", "token": "x"}}]},
    )
    assert code == 1
    assert "bearer, basic, query" in result["msg"]


def test_documentation_matches_argument_spec() -> None:
    import yaml

    doc = yaml.safe_load(endpoint_health.DOCUMENTATION)
    yaml.safe_load(endpoint_health.EXAMPLES)
    ret = yaml.safe_load(endpoint_health.RETURN)
    spec = endpoint_health.ARGUMENT_SPEC
    assert set(doc["options"]) == set(spec)
    sub_doc = doc["options"]["endpoints"]["suboptions"]
    assert set(sub_doc) == set(spec["endpoints"]["options"])
    assert set(sub_doc["auth"]["suboptions"]) == set(endpoint_health.AUTH_SPEC)
    for name, option in spec.items():
        assert doc["options"][name]["type"] == option["type"], name
        assert doc["options"][name].get("default") == option.get("default"), name
    assert set(ret) == {"endpoints", "summary", "failed_endpoints"}
