"""Tests of the OpenAI gateway (roles/openai_gateway/files/genai_gateway), run as the image runs
it (``python -m genai_gateway``) in front of vLLM stand-ins (tests/standins/vllm) on 127.0.0.1,
with the official ``openai`` SDK as the client (``max_retries=0``: the SDK retries 429 and 5xx).

Backends of the module's gateway: ``micro`` (a keyed stand-in with tool calls and reasoning),
``mini`` (no key, two served names, a comment line in each streamed event), ``slow`` (a stand-in
spacing its events by 50 ms), ``capture`` (an in-process server that records the raw bytes it is
sent), ``silent`` (accepts, reads, never answers a POST) and ``down`` (nothing listens). Tests
that stop, kill or time out a backend run a gateway of their own."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import openai
import pytest
import requests

from tests.unit.test_vllm_standin import Server, free_port, start

ROOT = Path(__file__).resolve().parents[2]
GATEWAY_ROOT = ROOT / "roles" / "openai_gateway" / "files"
sys.path.insert(0, str(GATEWAY_ROOT))
# no __pycache__ in the role's files/: the role copies that folder as the image's build context
sys.dont_write_bytecode, WROTE_BYTECODE = True, sys.dont_write_bytecode

from genai_gateway import auth, config, usage

sys.dont_write_bytecode = WROTE_BYTECODE

KEYS = {
    "genai": "gw-genai-3f1d0c9a7b5e4d2c8a6f0e1d2c3b4a59",
    "limited": "gw-limited-9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d",
    "rpm2": "gw-rpm2-0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    "tpm": "gw-tpm-f9e8d7c6b5a4938271605f4e3d2c1b0a",
    "probe": "gw-probe-1234567890abcdef1234567890abcdef",
}
BACKEND_KEYS = {"micro": "backend-key-micro", "slow": "backend-key-slow", "capture": "cap-key"}
BACKEND_ENV = {f"GW_KEY_{name.upper()}": key for name, key in BACKEND_KEYS.items()}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "metric": {"type": "boolean"}},
            "required": ["city", "metric"],
        },
    },
}
NO_THINKING = {"chat_template_kwargs": {"enable_thinking": False}}


def sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def wait_for(check: Callable[[], Any], what: str, timeout: float = 10) -> Any:
    """Poll ``check`` until it returns something true; fail naming ``what`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


# ---- backends that are not stand-ins ------------------------------------------------------------
CANNED = (
    b'{"id": "cmpl-capture",  "object": "chat.completion", "model": "capture-model",\n'
    b' "choices": [{"index": 0, "message": {"role": "assistant", "content": "caf\\u00e9 \xc3\xa9"},'
    b' "finish_reason": "stop"}], "usage": {"prompt_tokens": 7, "completion_tokens": 3,'
    b' "total_tokens": 10}}'
)


@dataclass
class Captured:
    method: str
    path: str
    headers: dict[str, str]  # names in lower case
    body: bytes


@dataclass
class CaptureBackend:
    """Records every request's raw bytes; answers /v1/models, /health and CANNED."""

    server: ThreadingHTTPServer
    seen: list[Captured] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"


def capture_backend() -> CaptureBackend:
    backend: CaptureBackend

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            del format, args

        def answer(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-Backend", "capture")
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            if self.path == "/v1/models":
                entry = {"id": "capture-model", "object": "model", "owned_by": "capture"}
                self.answer(200, json.dumps({"object": "list", "data": [entry]}).encode())
            else:
                self.answer(200, b"")

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            headers = {name.lower(): value for name, value in self.headers.items()}
            backend.seen.append(Captured("POST", self.path, headers, body))
            self.answer(200, CANNED)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    backend = CaptureBackend(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return backend


@dataclass
class SilentBackend:
    """Answers GET /health; reads a POST and never answers it, noting when the connection closes
    (the gateway gave up the request)."""

    sock: socket.socket
    posts: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))
    closed: threading.Semaphore = field(default_factory=lambda: threading.Semaphore(0))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.connection, args=(conn,), daemon=True).start()

    def connection(self, conn: socket.socket) -> None:
        with conn:
            data = b""
            while True:
                while b"\r\n\r\n" not in data:
                    more = conn.recv(65536)
                    if not more:
                        return
                    data += more
                head, _, data = data.partition(b"\r\n\r\n")
                if head.startswith(b"GET"):
                    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                    continue
                self.posts.release()
                while conn.recv(65536):  # hold the request until the other side closes
                    pass
                self.closed.release()
                return


def silent_backend() -> SilentBackend:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    backend = SilentBackend(sock)
    threading.Thread(target=backend.serve, daemon=True).start()
    return backend


# ---- the gateway as a process -------------------------------------------------------------------
@dataclass
class Gateway:
    process: subprocess.Popen[bytes]
    port: int
    log: Path
    config: dict[str, Any]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self, name: str = "genai", **kwargs: Any) -> openai.OpenAI:
        kwargs.setdefault("api_key", KEYS.get(name, name))
        kwargs.setdefault("timeout", 10)
        return openai.OpenAI(base_url=self.url + "/v1", max_retries=0, **kwargs)

    def get(self, path: str, key: str | None = None) -> requests.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return requests.get(self.url + path, headers=headers, timeout=10)

    def post(self, path: str, data: bytes, headers: dict[str, str]) -> requests.Response:
        return requests.post(self.url + path, data=data, headers=headers, timeout=10)

    def metrics(self) -> str:
        return self.get("/metrics").text

    def output(self) -> str:
        return self.log.read_text()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def gateway_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GATEWAY_", "GW_"))}
    env.update(BACKEND_ENV, PYTHONPATH=str(GATEWAY_ROOT), PYTHONDONTWRITEBYTECODE="1")
    env.update(extra or {})
    return env


def start_gateway(
    directory: Path, settings: dict[str, Any], env: dict[str, str] | None = None
) -> Gateway:
    port = free_port()
    settings = {"listen": {"host": "127.0.0.1", "port": port}, **settings}
    path = directory / f"gateway-{port}.json"
    path.write_text(json.dumps(settings))
    log = directory / f"gateway-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "genai_gateway"],
            env=gateway_env({"GATEWAY_CONFIG": str(path), **(env or {})}),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    gateway = Gateway(process, port, log, settings)

    def listening() -> bool:
        if process.poll() is not None:
            raise AssertionError(f"the gateway exited {process.returncode}:\n{gateway.output()}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except OSError:
            return False
        return True

    wait_for(listening, "the gateway to listen")
    return gateway


def client_entry(name: str, models: list[str] | None = None, **rates: int) -> dict[str, Any]:
    return {
        "name": name,
        "key_sha256": sha256(KEYS[name]),
        "models": models,
        "requests_per_minute": rates.get("rpm"),
        "tokens_per_minute": rates.get("tpm"),
    }


def backend_entry(name: str, url: str, models: list[str]) -> dict[str, Any]:
    key_env = f"GW_KEY_{name.upper()}" if name in BACKEND_KEYS else None
    return {"name": name, "url": url, "models": models, "api_key_env": key_env}


def micro_args() -> tuple[str, ...]:
    return (
        "--model",
        "Qwen/Qwen3-0.6B",
        "--served-model-name",
        "qwen3-micro",
        "--api-key",
        BACKEND_KEYS["micro"],
        "--max-model-len",
        "8192",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "hermes",
        "--reasoning-parser",
        "qwen3",
    )


def slow_args(name: str, key: str) -> tuple[str, ...]:
    return ("--model", "Qwen/Qwen3-0.6B", "--served-model-name", name, "--api-key", key,
            "--reasoning-parser", "qwen3")  # fmt: skip


@dataclass
class Stack:
    gateway: Gateway
    micro: Server
    mini: Server
    slow: Server
    capture: CaptureBackend
    silent: SilentBackend
    usage_file: Path


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    directory = tmp_path_factory.mktemp("gateway")
    servers = [
        start(directory, *micro_args(), serve=True, wait=False),
        start(directory, "--model", "Qwen/Qwen3-1.7B", "--served-model-name", "qwen3-mini",
              "qwen3-mini-alias", "--max-model-len", "4096", wait=False,
              env={"STANDIN_EVENT_TIMES": "1"}),  # SSE comment lines in its streams
        start(directory, *slow_args("qwen3-slow", BACKEND_KEYS["slow"]), serve=True,
              env={"STANDIN_CHUNK_DELAY": "0.05"}, wait=False),
    ]  # fmt: skip
    capture, silent = capture_backend(), silent_backend()
    usage_file = directory / "usage.json"
    gateway: Gateway | None = None
    try:
        for server in servers:
            server.wait_ready()
        micro, mini, slow = servers
        settings = {
            "backends": [
                backend_entry("micro", micro.url, ["qwen3-micro"]),
                backend_entry("mini", mini.url + "/", ["qwen3-mini", "qwen3-mini-alias"]),
                backend_entry("slow", slow.url, ["qwen3-slow"]),
                backend_entry("capture", capture.url, ["capture-model"]),
                backend_entry("silent", silent.url, ["qwen3-silent"]),
                backend_entry("down", f"http://127.0.0.1:{free_port()}", ["qwen3-down"]),
            ],
            "clients": [
                client_entry("genai"),
                client_entry("limited", ["qwen3-mini"]),
                client_entry("rpm2", rpm=2),
                client_entry("tpm", tpm=5),
                client_entry("probe"),
            ],
            "usage_file": str(usage_file),
            "usage_flush_seconds": 0.2,
        }
        gateway = start_gateway(directory, settings)
        yield Stack(gateway, micro, mini, slow, capture, silent, usage_file)
    finally:
        if gateway is not None:
            gateway.stop()
        for server in servers:
            server.stop()
        capture.server.shutdown()
        silent.sock.close()


def last_request(server: Server) -> dict[str, Any]:
    return dict(server.get("/standin/requests").json()[-1])


def abort_count(server: Server, model: str) -> float:
    prefix = (
        f'vllm:request_success_total{{model_name="{model}",engine="0",finished_reason="abort"}}'
    )
    line = next(x for x in server.get("/metrics").text.splitlines() if x.startswith(prefix))
    return float(line.rsplit(" ", 1)[1])


# ---- models -------------------------------------------------------------------------------------
def test_models_list_is_the_union_with_each_backends_metadata(stack: Stack) -> None:
    models = {m.id: m for m in stack.gateway.client().models.list()}
    # the backend that is down is left out; the two names of one backend are both there
    assert set(models) == {
        "qwen3-micro",
        "qwen3-mini",
        "qwen3-mini-alias",
        "qwen3-slow",
        "capture-model",
    }
    micro = models["qwen3-micro"].model_dump()
    assert micro["owned_by"] == "vllm"
    assert micro["root"] == "Qwen/Qwen3-0.6B"
    assert micro["max_model_len"] == 8192
    assert micro["permission"][0]["object"] == "model_permission"
    assert models["qwen3-mini-alias"].model_dump()["root"] == "Qwen/Qwen3-1.7B"
    assert models["capture-model"].owned_by == "capture"


def test_models_are_limited_to_what_the_client_may_use(stack: Stack) -> None:
    limited = stack.gateway.client("limited")
    assert [m.id for m in limited.models.list()] == ["qwen3-mini"]
    assert limited.models.retrieve("qwen3-mini").model_dump()["max_model_len"] == 4096
    with pytest.raises(openai.NotFoundError) as caught:
        limited.models.retrieve("qwen3-micro")
    assert caught.value.code == "model_not_found"
    assert stack.gateway.client().models.retrieve("qwen3-micro").id == "qwen3-micro"


# ---- chat, streams, tools -----------------------------------------------------------------------
def test_chat_is_routed_by_model_with_the_backend_key(stack: Stack) -> None:
    client = stack.gateway.client()
    answer = client.chat.completions.create(
        model="qwen3-mini-alias", messages=[{"role": "user", "content": "route me"}]
    )
    assert answer.model == "qwen3-mini"  # vLLM answers with its first served name
    assert answer.choices[0].message.content == "standin reply to: route me"
    assert answer.usage is not None and answer.usage.prompt_tokens == 3
    seen = last_request(stack.mini)
    assert seen["path"] == "/v1/chat/completions"
    assert seen["body"]["model"] == "qwen3-mini-alias"
    assert seen["authorization_sha256"] is None  # the mini backend has no key: none is sent

    answer = client.chat.completions.create(
        model="qwen3-micro", messages=[{"role": "user", "content": "keyed"}], extra_body=NO_THINKING
    )
    assert answer.choices[0].message.content == "standin reply to: keyed"
    seen = last_request(stack.micro)
    assert seen["authorization_sha256"] == sha256(f"Bearer {BACKEND_KEYS['micro']}")


def test_legacy_completions_are_routed(stack: Stack) -> None:
    answer = stack.gateway.client().completions.create(model="qwen3-micro", prompt="Once upon")
    assert answer.choices[0].text == " standin completion for: Once upon"
    assert last_request(stack.micro)["path"] == "/v1/completions"


def test_body_and_answer_pass_byte_for_byte(stack: Stack) -> None:
    raw = (
        b'{ "model" :"capture-model",\n  "messages": [{"role":"user","content":"caf\\u00e9 \xc3\xa9"}],'
        b' "tools": [], "x_unknown": {"b": 2, "a": 1}, "temperature": 0.70}'
    )
    before = len(stack.capture.seen)
    answer = stack.gateway.post(
        "/v1/chat/completions?trace=1",
        raw,
        {
            "Authorization": f"Bearer {KEYS['genai']}",
            "Content-Type": "application/json",
            "X-Request-Id": "req-42",
        },
    )
    assert answer.status_code == 200
    assert answer.content == CANNED
    assert answer.headers["X-Backend"] == "capture"
    (seen,) = stack.capture.seen[before:]
    assert seen.body == raw
    assert seen.path == "/v1/chat/completions?trace=1"
    assert seen.headers["authorization"] == f"Bearer {BACKEND_KEYS['capture']}"
    assert seen.headers["x-request-id"] == "req-42"
    assert not any(KEYS["genai"] in value for value in seen.headers.values())


def test_sdk_tool_call_round_trip_passes_tools_and_template_kwargs(stack: Stack) -> None:
    client = stack.gateway.client()
    messages: list[Any] = [{"role": "user", "content": "Weather in Paris?"}]
    answer = client.chat.completions.create(
        model="qwen3-micro",
        messages=messages,
        tools=[WEATHER_TOOL],
        tool_choice="auto",
        extra_body=NO_THINKING,
    )
    sent = last_request(stack.micro)["body"]
    assert sent["tools"] == [WEATHER_TOOL]
    assert sent["tool_choice"] == "auto"
    assert sent["chat_template_kwargs"] == {"enable_thinking": False}
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.model_dump().get("reasoning") is None  # thinking off passed through
    (call,) = choice.message.tool_calls or []
    assert call.function.name == "get_weather"
    assert json.loads(call.function.arguments)["city"]

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18 C, sunny"},
    ]
    answer = client.chat.completions.create(
        model="qwen3-micro", messages=messages, tools=[WEATHER_TOOL], extra_body=NO_THINKING
    )
    assert answer.choices[0].message.content == "standin reply to tool result: 18 C, sunny"

    thinking = client.chat.completions.create(
        model="qwen3-micro", messages=[{"role": "user", "content": "think"}]
    )
    assert thinking.choices[0].message.model_dump()["reasoning"]  # on unless turned off


def test_stream_arrives_in_chunks_and_the_added_usage_event_is_taken_out(stack: Stack) -> None:
    stream = stack.gateway.client().chat.completions.create(
        model="qwen3-micro",
        messages=[{"role": "user", "content": "stream these words"}],
        stream=True,
        extra_body=NO_THINKING,
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert text == "standin reply to: stream these words"
    assert len(chunks) == 2 + len(text.split())  # role, one per word, finish
    assert all(c.choices for c in chunks)  # no usage-only chunk
    assert all(c.usage is None for c in chunks)
    # the backend was asked for the usage all the same
    assert last_request(stack.micro)["body"]["stream_options"] == {"include_usage": True}


def test_stream_keeps_the_usage_event_when_the_client_asks(stack: Stack) -> None:
    stream = stack.gateway.client().chat.completions.create(
        model="qwen3-micro",
        messages=[{"role": "user", "content": "count me"}],
        stream=True,
        stream_options={"include_usage": True},
        extra_body=NO_THINKING,
    )
    chunks = list(stream)
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.prompt_tokens == 3
    assert last_request(stack.micro)["body"]["stream_options"] == {"include_usage": True}


def test_events_with_comment_lines_are_read_too(stack: Stack) -> None:
    """The mini stand-in starts each event with an SSE comment line: the usage event is still
    found, counted and taken out."""
    client = stack.gateway.client("limited")
    messages = [{"role": "user", "content": "comments"}]
    plain = client.chat.completions.create(model="qwen3-mini", messages=messages)
    assert plain.usage is not None
    chunks = list(
        client.chat.completions.create(model="qwen3-mini", messages=messages, stream=True)
    )
    assert all(c.choices for c in chunks)
    tokens = 2 * plain.usage.completion_tokens
    line = f'genai_gateway_completion_tokens_total{{client="limited",model="qwen3-mini"}} {tokens}'
    assert line in stack.gateway.metrics()


# ---- refusals -----------------------------------------------------------------------------------
def test_missing_wrong_and_malformed_keys_get_401(stack: Stack) -> None:
    before = stack.gateway.metrics()
    answer = stack.gateway.get("/v1/models")
    assert answer.status_code == 401
    assert answer.json() == {
        "error": {
            "message": answer.json()["error"]["message"],
            "type": "invalid_request_error",
            "param": None,
            "code": "invalid_api_key",
        }
    }
    body = b'{"model": "qwen3-micro", "messages": []}'
    assert stack.gateway.post("/v1/chat/completions", body, {}).status_code == 401

    wrong = stack.gateway.client(api_key="sk-not-a-client-key")
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.chat.completions.create(model="qwen3-micro", messages=[])
    assert caught.value.code == "invalid_api_key"
    for header in (f"Basic {KEYS['genai']}", f"Bearer  {KEYS['genai']}", "Bearer", KEYS["genai"]):
        malformed = stack.gateway.client(default_headers={"Authorization": header})
        with pytest.raises(openai.AuthenticationError):
            malformed.models.list()
    # the scheme's case does not matter (as vLLM)
    lower = stack.gateway.client(default_headers={"Authorization": f"bearer {KEYS['genai']}"})
    assert lower.models.retrieve("qwen3-mini").id == "qwen3-mini"

    def refused(text: str) -> int:
        line = next(x for x in text.splitlines() if x.startswith("genai_gateway_unauth"))
        return int(line.split()[1])

    assert refused(stack.gateway.metrics()) == refused(before) + 7
    assert KEYS["genai"] not in stack.gateway.output()
    assert "sk-not-a-client-key" not in stack.gateway.output()


def test_unknown_and_forbidden_models_get_404(stack: Stack) -> None:
    with pytest.raises(openai.NotFoundError) as caught:
        stack.gateway.client().chat.completions.create(model="gpt-4o", messages=[])
    assert caught.value.code == "model_not_found"
    assert caught.value.type == "invalid_request_error"
    assert "gpt-4o" in caught.value.message
    with pytest.raises(openai.NotFoundError) as caught:
        stack.gateway.client("limited").chat.completions.create(model="qwen3-micro", messages=[])
    assert caught.value.code == "model_not_found"
    answer = stack.gateway.get("/v1/files", KEYS["genai"])
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "unknown_url"


def test_a_body_without_json_or_model_gets_400(stack: Stack) -> None:
    headers = {"Authorization": f"Bearer {KEYS['genai']}", "Content-Type": "application/json"}
    answer = stack.gateway.post("/v1/chat/completions", b"{not json", headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "invalid_request_error"
    answer = stack.gateway.post("/v1/chat/completions", b'{"messages": []}', headers)
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "model"


def test_backend_errors_pass_through(stack: Stack) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        stack.gateway.client().chat.completions.create(
            model="qwen3-micro", messages=[{"role": "user", "content": "x"}], max_tokens=-1
        )
    assert "max_tokens" in str(caught.value.message)  # vLLM's own validation message


def test_request_rate_gets_429_with_retry_after(stack: Stack) -> None:
    client = stack.gateway.client("rpm2")
    for _ in range(2):
        client.chat.completions.create(
            model="qwen3-mini", messages=[{"role": "user", "content": "x"}]
        )
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model="qwen3-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.code == "rate_limit_exceeded"
    assert caught.value.type == "requests"
    assert 1 <= int(caught.value.response.headers["Retry-After"]) <= 60


def test_token_rate_gets_429_once_the_answers_used_it(stack: Stack) -> None:
    client = stack.gateway.client("tpm")
    first = client.chat.completions.create(
        model="qwen3-mini", messages=[{"role": "user", "content": "spend some tokens"}]
    )
    assert first.usage is not None and first.usage.total_tokens > 5
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model="qwen3-mini", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.type == "tokens"
    assert 1 <= int(caught.value.response.headers["Retry-After"]) <= 60


def test_a_backend_that_is_down_gets_502_naming_it(stack: Stack) -> None:
    with pytest.raises(openai.InternalServerError) as caught:
        stack.gateway.client().chat.completions.create(model="qwen3-down", messages=[])
    assert caught.value.status_code == 502
    assert "The backend down (http://127.0.0.1:" in caught.value.message
    assert "is unreachable: connection refused" in caught.value.message
    # the other models are still served
    stack.gateway.client().chat.completions.create(
        model="qwen3-mini", messages=[{"role": "user", "content": "still here"}]
    )


# ---- cancellation and cut streams ---------------------------------------------------------------
def test_a_client_leaving_a_stream_aborts_the_backend_request(stack: Stack) -> None:
    before = abort_count(stack.slow, "qwen3-slow")
    stream = stack.gateway.client().chat.completions.create(
        model="qwen3-slow", messages=[{"role": "user", "content": "long answer"}], stream=True
    )
    for _, _chunk in zip(range(2), stream, strict=False):
        pass
    stream.close()
    # the stand-in counts a stream whose reader went away as aborted, not finished
    wait_for(lambda: abort_count(stack.slow, "qwen3-slow") == before + 1, "the backend abort")
    wait_for(lambda: "genai_gateway_requests_in_flight 0" in stack.gateway.metrics(), "idle")


def test_a_client_leaving_a_waiting_request_closes_the_backend_connection(stack: Stack) -> None:
    with pytest.raises(openai.APITimeoutError):
        stack.gateway.client(timeout=0.5).chat.completions.create(
            model="qwen3-silent", messages=[{"role": "user", "content": "x"}]
        )
    assert stack.silent.posts.acquire(timeout=5)
    assert stack.silent.closed.acquire(timeout=5), "the gateway kept the backend request open"


def test_a_backend_killed_mid_stream_ends_the_stream_with_an_error_event(
    stack: Stack, tmp_path: Path
) -> None:
    """The first event reaches the client while the backend still generates (it is killed
    after that, and the stream was not over: a gateway holding events back fails here)."""
    doomed = start(tmp_path, *slow_args("qwen3-doomed", "doomed-key"), serve=True,
                   env={"STANDIN_CHUNK_DELAY": "0.1"})  # fmt: skip
    doomed_entry = backend_entry("doomed", doomed.url, ["qwen3-doomed"])
    doomed_entry["api_key_env"] = "GW_KEY_DOOMED"
    try:
        gateway = start_gateway(
            tmp_path,
            {
                "backends": [
                    backend_entry("micro", stack.micro.url, ["qwen3-micro"]),
                    doomed_entry,
                ],
                "clients": [client_entry("genai")],
                "usage_file": str(tmp_path / "usage.json"),
                "usage_flush_seconds": 5,
            },
            env={"GW_KEY_DOOMED": "doomed-key"},
        )
    except BaseException:
        doomed.stop()
        raise
    try:
        client = gateway.client()
        stream = client.chat.completions.create(
            model="qwen3-doomed", messages=[{"role": "user", "content": "x"}], stream=True
        )
        received = [next(stream)]
        doomed.process.kill()
        doomed.process.wait()
        with pytest.raises(openai.APIError) as caught:
            received.extend(stream)
        assert "doomed" in caught.value.message
        assert "closed the stream before its end" in caught.value.message
        assert caught.value.body["code"] == "backend_stream_cut"
        assert received[0].choices[0].delta.role == "assistant"
        # the gateway goes on serving the other model
        answer = client.chat.completions.create(
            model="qwen3-micro", messages=[{"role": "user", "content": "alive"}]
        )
        assert answer.choices[0].message.content
        health = gateway.get("/health").json()
        assert health["status"] == "degraded"
        assert health["backends"]["doomed"]["up"] is False
        assert health["backends"]["micro"]["up"] is True
        assert 'genai_gateway_errors_total{client="genai",model="qwen3-doomed"} 1' in (
            gateway.metrics()
        )
    finally:
        assert gateway.stop() == 0, gateway.output()
        doomed.stop()


def test_a_backend_too_slow_to_answer_gets_503(tmp_path: Path) -> None:
    silent = silent_backend()
    gateway = start_gateway(
        tmp_path,
        {
            "backends": [backend_entry("silent", silent.url, ["qwen3-silent"])],
            "clients": [client_entry("genai")],
            "usage_file": str(tmp_path / "usage.json"),
            "usage_flush_seconds": 5,
        },
        env={"GATEWAY_READ_TIMEOUT": "0.3"},
    )
    try:
        with pytest.raises(openai.InternalServerError) as caught:
            gateway.client().chat.completions.create(model="qwen3-silent", messages=[])
        assert caught.value.status_code == 503
        assert "silent" in caught.value.message
        assert caught.value.code == "backend_timeout"
        assert silent.closed.acquire(timeout=5)  # the gateway closed the backend connection
    finally:
        assert gateway.stop() == 0, gateway.output()
        silent.sock.close()


# ---- usage, metrics, health ---------------------------------------------------------------------
def usage_of(path: Path, client: str) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    today = time.strftime("%Y-%m-%d", time.gmtime())
    return dict(data["days"].get(today, {}).get(client, {}))


def test_usage_file_counts_requests_tokens_and_errors_streams_included(stack: Stack) -> None:
    client = stack.gateway.client("probe")
    messages = [{"role": "user", "content": "measure this"}]
    plain = client.chat.completions.create(
        model="qwen3-micro", messages=messages, extra_body=NO_THINKING
    )
    assert plain.usage is not None
    # the same request streamed without asking for usage: the gateway counts it all the same
    list(
        client.chat.completions.create(
            model="qwen3-micro", messages=messages, stream=True, extra_body=NO_THINKING
        )
    )
    with pytest.raises(openai.NotFoundError):
        client.chat.completions.create(model="no-such-model", messages=[])
    expected = {
        "qwen3-micro": {
            "requests": 2,
            "prompt_tokens": 2 * plain.usage.prompt_tokens,
            "completion_tokens": 2 * plain.usage.completion_tokens,
            "errors": 0,
        },
        "no-such-model": {"requests": 1, "prompt_tokens": 0, "completion_tokens": 0, "errors": 1},
    }
    # written within usage_flush_seconds (0.2 s) of the change
    assert wait_for(lambda: usage_of(stack.usage_file, "probe") == expected, "the usage file")
    document = json.loads(stack.usage_file.read_text())
    assert document["version"] == 1
    assert document["updated"].endswith("Z")
    metrics = stack.gateway.metrics()
    assert 'genai_gateway_requests_total{client="probe",model="qwen3-micro"} 2' in metrics
    tokens = 2 * plain.usage.completion_tokens
    assert (
        f'genai_gateway_completion_tokens_total{{client="probe",model="qwen3-micro"}} {tokens}'
        in metrics
    )
    assert 'genai_gateway_errors_total{client="probe",model="no-such-model"} 1' in metrics


def test_metrics_and_health_show_each_backend(stack: Stack) -> None:
    metrics = stack.gateway.metrics()
    assert "# TYPE genai_gateway_requests_total counter" in metrics
    assert f'genai_gateway_backend_up{{backend="micro",url="{stack.micro.url}"}} 1' in metrics
    assert 'genai_gateway_backend_up{backend="down",' in metrics
    assert next(
        x for x in metrics.splitlines() if x.startswith('genai_gateway_backend_up{backend="down"')
    ).endswith(" 0")
    health = stack.gateway.get("/health")
    assert health.status_code == 200
    document = health.json()
    assert document["status"] == "degraded"
    assert document["backends"]["micro"] == {
        "url": stack.micro.url,
        "up": True,
        "models": ["qwen3-micro"],
        "error": None,
    }
    assert document["backends"]["mini"]["models"] == ["qwen3-mini", "qwen3-mini-alias"]
    assert document["backends"]["mini"]["url"] == stack.mini.url  # trailing slash dropped
    down = document["backends"]["down"]
    assert down == {
        "url": down["url"],
        "up": False,
        "models": ["qwen3-down"],
        "error": "connection refused",
    }


def test_sigterm_writes_the_usage_and_a_restart_adds_to_it(stack: Stack, tmp_path: Path) -> None:
    usage_file = tmp_path / "state" / "usage.json"
    usage_file.parent.mkdir()
    old_day = {"genai": {"qwen3-micro": {"requests": 5, "prompt_tokens": 50,
               "completion_tokens": 60, "errors": 1}}}  # fmt: skip
    usage_file.write_text(
        json.dumps({"version": 1, "updated": "x", "days": {"2026-01-02": old_day}})
    )
    settings = {
        "backends": [backend_entry("micro", stack.micro.url, ["qwen3-micro"])],
        "clients": [client_entry("genai")],
        "usage_file": str(usage_file),
        "usage_flush_seconds": 3600,  # only the signal writes it in this test
    }
    for run in (1, 2):
        gateway = start_gateway(tmp_path, settings)
        try:
            answer = gateway.client().chat.completions.create(
                model="qwen3-micro", messages=[{"role": "user", "content": "bye"}]
            )
        finally:
            assert gateway.stop() == 0, gateway.output()
        assert answer.usage is not None
        document = json.loads(usage_file.read_text())
        assert document["days"]["2026-01-02"] == old_day
        assert usage_of(usage_file, "genai") == {
            "qwen3-micro": {
                "requests": run,
                "prompt_tokens": run * answer.usage.prompt_tokens,
                "completion_tokens": run * answer.usage.completion_tokens,
                "errors": 0,
            }
        }
        assert "stopped" in gateway.output()
    assert [p.name for p in usage_file.parent.iterdir()] == ["usage.json"]  # no temporary left


def test_a_damaged_usage_file_is_set_aside(stack: Stack, tmp_path: Path) -> None:
    usage_file = tmp_path / "usage.json"
    usage_file.write_text('{"version": 1, "days": {"2026-12-07": {"genai": []}}}')
    gateway = start_gateway(
        tmp_path,
        {
            "backends": [backend_entry("micro", stack.micro.url, ["qwen3-micro"])],
            "clients": [client_entry("genai")],
            "usage_file": str(usage_file),
            "usage_flush_seconds": 5,
        },
    )
    try:
        assert gateway.get("/health").status_code == 200
    finally:
        assert gateway.stop() == 0, gateway.output()
    (aside,) = tmp_path.glob("usage.json.bad-*")
    assert "genai" in aside.read_text()
    assert "damaged" in gateway.output() and aside.name in gateway.output()
    assert not usage_file.exists()  # nothing counted, nothing written


# ---- configuration and rates, in process ----------------------------------------------------------
def valid_settings() -> dict[str, Any]:
    return {
        "listen": {"host": "127.0.0.1", "port": 8100},
        "backends": [backend_entry("micro", "http://127.0.0.1:8001", ["qwen3-micro"])],
        "clients": [client_entry("genai")],
        "usage_file": "/var/lib/genai-gateway/usage.json",
        "usage_flush_seconds": 5,
    }


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda s: s["listen"].update(port=70000), "listen.port"),
        (lambda s: s["clients"][0].pop("key_sha256"), "clients[0].key_sha256: missing"),
        (lambda s: s["clients"][0].update(key_sha256="abc"), "clients[0].key_sha256"),
        (lambda s: s["clients"][0].update(models=["gpt-4o"]), "clients[0].models[0]"),
        (lambda s: s["clients"][0].update(requests_per_minute=0), "clients[0].requests_per_minute"),
        (lambda s: s["clients"].append(dict(s["clients"][0])), "clients[1].name"),
        (lambda s: s["backends"].append(dict(s["backends"][0], name="b")), "backends[1].models"),
        (lambda s: s["backends"][0].update(url="ftp://x"), "backends[0].url"),
        (lambda s: s["backends"][0].update(api_key_env="UNSET_VAR"), "backends[0].api_key_env"),
        (lambda s: s.update(backends=[]), "backends"),
        (lambda s: s.update(usage_flush_seconds=0), "usage_flush_seconds"),
        (lambda s: s.update(extra=1), "extra: unknown setting"),
    ],
)
def test_configuration_errors_name_the_field(change: Callable[[Any], Any], message: str) -> None:
    settings = valid_settings()
    config.parse(settings, BACKEND_ENV)  # valid as it is
    change(settings)
    with pytest.raises(config.ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")):
        config.parse(settings, BACKEND_ENV)


def test_a_bad_configuration_exits_2_naming_the_field(tmp_path: Path) -> None:
    settings = valid_settings()
    settings["listen"]["port"] = "8100"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(settings))
    result = subprocess.run(
        [sys.executable, "-m", "genai_gateway"],
        env=gateway_env({"GATEWAY_CONFIG": str(path)}),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 2
    assert "listen.port: must be an integer" in result.stderr


def test_rate_windows_slide_over_a_minute() -> None:
    now = [1000.0]
    limits = auth.RateLimits(clock=lambda: now[0])
    client = config.Client("c", b"k" * 32, None, 2, 10)
    assert limits.admit(client) is None
    now[0] += 10
    assert limits.admit(client) is None
    refusal = limits.admit(client)
    assert refusal == auth.Refusal("requests", 2, 50)  # the first leaves the window at 1060
    now[0] += 50
    assert limits.admit(client) is None  # 1060: the first has left
    limits.spend(client, 12)
    now[0] += 1
    assert limits.admit(client) == auth.Refusal("requests", 2, 9)
    now[0] += 9
    assert limits.admit(client) == auth.Refusal("tokens", 10, 50)


def test_usage_record_and_file_shape(tmp_path: Path) -> None:
    import datetime

    when = datetime.datetime(2026, 12, 7, 22, 0, tzinfo=datetime.UTC)
    store = usage.Usage(tmp_path / "u" / "usage.json", clock=lambda: when)
    store.load()
    store.record("genai", "m", 3, 4)
    store.record("genai", None, error=True)
    assert store.flush()
    assert not store.flush()  # unchanged: not written again
    assert json.loads((tmp_path / "u" / "usage.json").read_text()) == {
        "version": 1,
        "updated": "2026-12-07T22:00:00Z",
        "days": {
            "2026-12-07": {
                "genai": {
                    "m": {"requests": 1, "prompt_tokens": 3, "completion_tokens": 4, "errors": 0},
                    "-": {"requests": 1, "prompt_tokens": 0, "completion_tokens": 0, "errors": 1},
                }
            }
        },
    }
