"""Tests of the vLLM OpenAI-server stand-in (tests/standins/vllm), run as a subprocess."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

STANDIN_ROOT = Path(__file__).resolve().parents[1] / "standins" / "vllm"
MODULE = "vllm.entrypoints.openai.api_server"
KEY = "sk-test-key-123"
GPU_ENV_NAMES = ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "VLLM_API_KEY")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def standin_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in GPU_ENV_NAMES}
    env.update(PYTHONPATH=str(STANDIN_ROOT), PYTHONDONTWRITEBYTECODE="1")
    env.update(extra or {})
    return env


def run_once(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """Run the stand-in expecting it to exit by itself (a start-up failure)."""
    command = [sys.executable, "-m", MODULE, "--host", "127.0.0.1", "--port", str(free_port())]
    return subprocess.run(
        [*command, *args], env=standin_env(env), capture_output=True, text=True, timeout=10
    )


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, key: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return requests.get(self.url + path, headers=headers, timeout=5, **kwargs)

    def post(self, path: str, body: Any, key: str | None = KEY) -> requests.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return requests.post(self.url + path, json=body, headers=headers, timeout=5)

    def output(self) -> str:
        return self.log.read_text()

    def wait_ready(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"stand-in exited early:\n{self.output()}")
            try:
                requests.get(self.url + "/version", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"stand-in not ready after {timeout} s:\n{self.output()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(
    log_dir: Path, *args: str, env: dict[str, str] | None = None, wait: bool = True
) -> Server:
    port = free_port()
    log = log_dir / f"standin-{port}.log"
    command = [sys.executable, "-m", MODULE, "--host", "127.0.0.1", "--port", str(port), *args]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, env=standin_env(env), stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(process, port, log)
    if wait:
        server.wait_ready()
    return server


@pytest.fixture(scope="module")
def tool_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A stand-in with two served names, two keys, auto tool choice and a reasoning parser."""
    server = start(
        tmp_path_factory.mktemp("vllm"),
        "--model",
        "Qwen/Qwen3-8B",
        "--served-model-name",
        "qwen3-8b",
        "qwen3",
        "--api-key",
        KEY,
        "other-key",
        "--max-model-len",
        "16384",
        "--enable-auto-tool-choice",
        "--tool-call-parser",
        "hermes",
        "--reasoning-parser",
        "qwen3",
        env={"NVIDIA_VISIBLE_DEVICES": "0,1", "VLLM_API_KEY": "env-key-ignored"},
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A stand-in without --api-key (key from VLLM_API_KEY) and without tool parsing."""
    server = start(
        tmp_path_factory.mktemp("vllm"),
        "--model",
        "Qwen/Qwen3-0.6B",
        env={"VLLM_API_KEY": "env-key"},
    )
    yield server
    server.stop()


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "days": {"type": "integer"},
                "metric": {"type": "boolean"},
            },
            "required": ["city", "metric"],
        },
    },
}


# ---- start-up failures -------------------------------------------------------------------


def test_unknown_flag_exits_2() -> None:
    result = run_once("--model", "x", "--no-such-flag", "1")
    assert result.returncode == 2
    assert "api_server.py: error: unrecognized arguments: --no-such-flag 1" in result.stderr


def test_abbreviated_flag_is_rejected() -> None:
    result = run_once("--tensor-parallel", "1")
    assert result.returncode == 2


def test_unknown_tool_parser_exits_2() -> None:
    result = run_once("--enable-auto-tool-choice", "--tool-call-parser", "nonsense")
    assert result.returncode == 2
    assert "invalid choice: 'nonsense'" in result.stderr


def test_auto_tool_choice_without_parser_exits_1() -> None:
    result = run_once("--enable-auto-tool-choice")
    assert result.returncode == 1
    assert "--enable-auto-tool-choice requires --tool-call-parser" in result.stderr


def test_tensor_parallel_larger_than_visible_gpus_exits_1() -> None:
    result = run_once("-tp", "2", env={"NVIDIA_VISIBLE_DEVICES": "1"})
    assert result.returncode == 1
    assert "The number of required GPUs exceeds the total number" in result.stdout + result.stderr


def test_cuda_visible_devices_counts_when_nvidia_unset() -> None:
    result = run_once("--tensor-parallel-size", "3", env={"CUDA_VISIBLE_DEVICES": "0,1"})
    assert result.returncode == 1


@pytest.mark.parametrize("value", ["1.5", "0"])
def test_gpu_memory_utilization_out_of_range_exits_1(value: str) -> None:
    result = run_once("--gpu-memory-utilization", value)
    assert result.returncode == 1
    assert "ValueError: GPU memory utilization" in result.stderr


def test_exit_after_load(tmp_path: Path) -> None:
    result = run_once(env={"STANDIN_EXIT_AFTER_LOAD": "1", "STANDIN_LOAD_SECONDS": "0.1"})
    assert result.returncode == 1
    assert "Engine core initialization failed" in result.stderr


# ---- readiness and lifecycle --------------------------------------------------------------


def test_load_delay_refuses_connections_then_serves(tmp_path: Path) -> None:
    server = start(tmp_path, env={"STANDIN_LOAD_SECONDS": "1.0"}, wait=False)
    try:
        time.sleep(0.3)
        with pytest.raises(requests.ConnectionError):
            requests.get(server.url + "/health", timeout=1)
        server.wait_ready()
        response = server.get("/health")
        assert response.status_code == 200
        assert response.content == b""
    finally:
        server.stop()


def test_fail_makes_health_503(tmp_path: Path) -> None:
    server = start(tmp_path, env={"STANDIN_FAIL": "1"})
    try:
        assert server.get("/health").status_code == 503
        assert server.get("/version").json() == {"version": "0.9.2"}
    finally:
        server.stop()


def test_sigterm_exits_within_two_seconds(tmp_path: Path) -> None:
    server = start(tmp_path)
    began = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=2) == 0
    assert time.monotonic() - began < 2


def test_sigterm_during_load_exits_promptly(tmp_path: Path) -> None:
    server = start(tmp_path, env={"STANDIN_LOAD_SECONDS": "30"}, wait=False)
    time.sleep(0.3)
    server.process.send_signal(signal.SIGTERM)
    assert server.process.wait(timeout=2) == 0


# ---- report -------------------------------------------------------------------------------


def test_report_shows_gpus_and_never_the_key(tool_server: Server) -> None:
    report = tool_server.get("/standin/report").json()
    assert report["gpus"] == ["0", "1"]
    assert report["served_model_names"] == ["qwen3-8b", "qwen3"]
    assert report["model"] == "Qwen/Qwen3-8B"
    assert report["tool_call_parser"] == "hermes"
    assert report["enable_auto_tool_choice"] is True
    assert report["reasoning_parser"] == "qwen3"
    assert report["max_model_len"] == 16384
    assert report["api_key_set"] is True
    assert report["argv"][report["argv"].index("--api-key") + 1 :][:2] == ["***", "***"]
    output = tool_server.output()
    line = next(x for x in output.splitlines() if x.startswith("standin-report "))
    assert json.loads(line.split(" ", 1)[1]) == report
    for secret in (KEY, "other-key", "env-key-ignored"):
        assert secret not in json.dumps(report)
        assert secret not in output


# ---- auth ---------------------------------------------------------------------------------


def test_models_lists_every_served_name(tool_server: Server) -> None:
    body = tool_server.get("/v1/models", key=KEY).json()
    assert body["object"] == "list"
    assert [m["id"] for m in body["data"]] == ["qwen3-8b", "qwen3"]
    for model in body["data"]:
        assert model["object"] == "model"
        assert model["owned_by"] == "vllm"
        assert model["root"] == "Qwen/Qwen3-8B"
        assert model["parent"] is None
        assert model["max_model_len"] == 16384
        assert isinstance(model["created"], int)
        (permission,) = model["permission"]
        assert permission["id"].startswith("modelperm-")
        assert permission["object"] == "model_permission"
        assert permission["allow_sampling"] is True
        assert permission["allow_create_engine"] is False
        assert permission["organization"] == "*"
        assert permission["group"] is None
        assert permission["is_blocking"] is False


def test_second_key_accepted_and_the_header_compared_as_vllm_does(tool_server: Server) -> None:
    assert tool_server.get("/v1/models", key="other-key").status_code == 200
    for header in (f"bearer {KEY}", f"Bearer  {KEY}", f"BEARER {KEY}", f"Bearer {KEY} ", KEY):
        response = requests.get(
            tool_server.url + "/v1/models", headers={"Authorization": header}, timeout=5
        )
        assert response.status_code == 401, header


@pytest.mark.parametrize("key", [None, "wrong", "env-key-ignored"])
def test_unauthorized_body(tool_server: Server, key: str | None) -> None:
    response = tool_server.get("/v1/models", key=key)
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}


def test_open_paths_need_no_key(tool_server: Server) -> None:
    assert tool_server.get("/health").status_code == 200
    assert tool_server.get("/ping").status_code == 200
    assert tool_server.get("/version").json() == {"version": "0.9.2"}
    options = requests.options(tool_server.url + "/v1/models", timeout=5)
    assert options.status_code != 401


def test_requests_to_the_api_are_recorded_as_sent(tmp_path: Path) -> None:
    server = start(tmp_path, "--api-key", KEY)
    try:
        server.get("/health")
        server.get("/v1/models", key=None)
        server.post("/v1/chat/completions", {"model": "x", "messages": []}, key="wrong")
        recorded = server.get("/standin/requests", key=None).json()
    finally:
        server.stop()
    wrong = hashlib.sha256(b"Bearer wrong").hexdigest()
    assert recorded == [
        {"method": "GET", "path": "/v1/models", "authorization_sha256": None, "body": None},
        {"method": "POST", "path": "/v1/chat/completions", "authorization_sha256": wrong,
         "body": {"model": "x", "messages": []}},
    ]  # fmt: skip
    assert KEY not in json.dumps(recorded) and "wrong" not in json.dumps(recorded)


def test_vllm_api_key_env_used_when_flag_absent(plain_server: Server) -> None:
    assert plain_server.get("/v1/models").status_code == 401
    assert plain_server.get("/v1/models", key="wrong").status_code == 401
    body = plain_server.get("/v1/models", key="env-key").json()
    assert [m["id"] for m in body["data"]] == ["Qwen/Qwen3-0.6B"]
    assert body["data"][0]["max_model_len"] == 32768


def test_unknown_path_is_fastapi_404(plain_server: Server) -> None:
    response = plain_server.get("/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}


# ---- chat completions ---------------------------------------------------------------------


def test_tool_call_completion_shape(tool_server: Server) -> None:
    body = {
        "model": "qwen3-8b",
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [WEATHER_TOOL],
    }
    response = tool_server.post("/v1/chat/completions", body)
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["id"].startswith("chatcmpl-")
    assert data["object"] == "chat.completion"
    assert isinstance(data["created"], int)
    assert data["model"] == "qwen3-8b"
    (choice,) = data["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["role"] == "assistant"
    assert message["content"] is None
    assert isinstance(message["reasoning_content"], str)
    (call,) = message["tool_calls"]
    assert call["id"].startswith("chatcmpl-tool-")
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert isinstance(call["function"]["arguments"], str)
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris", "metric": True}
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_thinking_off_drops_reasoning(tool_server: Server) -> None:
    body = {
        "model": "qwen3",
        "messages": [{"role": "user", "content": "hello there"}],
        "chat_template_kwargs": {"enable_thinking": False},
    }
    data = tool_server.post("/v1/chat/completions", body).json()
    message = data["choices"][0]["message"]
    assert message["reasoning_content"] is None
    assert message["content"] == "standin reply to: hello there"
    assert data["choices"][0]["finish_reason"] == "stop"


def test_unknown_model_404(tool_server: Server) -> None:
    body = {"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}
    response = tool_server.post("/v1/chat/completions", body)
    assert response.status_code == 404
    assert response.json() == {
        "object": "error",
        "message": "The model `gpt-4` does not exist.",
        "type": "NotFoundError",
        "param": None,
        "code": 404,
    }


def test_missing_messages_and_bad_json_are_400(tool_server: Server) -> None:
    response = tool_server.post("/v1/chat/completions", {"model": "qwen3"})
    assert response.status_code == 400
    assert response.json()["type"] == "BadRequestError"
    assert response.json()["object"] == "error"
    bad = requests.post(
        tool_server.url + "/v1/chat/completions",
        data=b"{not json",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        timeout=5,
    )
    assert bad.status_code == 400
    assert bad.json()["code"] == 400


def test_auto_tool_choice_off_is_400(plain_server: Server) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER_TOOL]}
    response = plain_server.post("/v1/chat/completions", body, key="env-key")
    assert response.status_code == 400
    assert response.json()["message"] == (
        '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser to be set'
    )
    body["tool_choice"] = "none"
    response = plain_server.post("/v1/chat/completions", body, key="env-key")
    assert response.status_code == 200
    assert response.json()["model"] == "Qwen/Qwen3-0.6B"
    assert response.json()["choices"][0]["message"]["tool_calls"] == []


def test_streaming_and_metrics(plain_server: Server) -> None:
    before = plain_server.get("/metrics").text
    body = {"messages": [{"role": "user", "content": "stream me please"}], "stream": True}
    response = requests.post(
        plain_server.url + "/v1/chat/completions",
        json=body,
        headers={"Authorization": "Bearer env-key"},
        stream=True,
        timeout=5,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = [line for line in response.iter_lines(decode_unicode=True) if line]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "standin reply to: stream me please"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"

    def successes(metrics: str) -> float:
        prefix = 'vllm:request_success_total{finished_reason="stop",'
        line = next(x for x in metrics.splitlines() if x.startswith(prefix))
        return float(line.rsplit(" ", 1)[1])

    after = plain_server.get("/metrics").text
    assert 'vllm:num_requests_running{engine="0",model_name="Qwen/Qwen3-0.6B"} 0.0' in after
    assert successes(after) == successes(before) + 1


# ---- helpers shipped in the image ---------------------------------------------------------


def load_module(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def test_mask_argv_hides_every_key_form() -> None:
    server = load_module(
        "standin_vllm_api_server", STANDIN_ROOT / "vllm/entrypoints/openai/api_server.py"
    )
    argv = ["--api-key", "a", "b", "--port", "1", "--api_key=c", "--model", "m"]
    assert server.mask_argv(argv) == [
        "--api-key", "***", "***", "--port", "1", "--api_key=***", "--model", "m",
    ]  # fmt: skip


def test_curl_shim_exit_codes(tool_server: Server) -> None:
    curl = [sys.executable, str(STANDIN_ROOT / "standin_curl.py")]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*curl, *args], capture_output=True, text=True, timeout=10)

    assert run("-fsS", tool_server.url + "/health").returncode == 0
    assert run("-fsS", tool_server.url + "/v1/models").returncode == 22
    authorised = run("-sf", "-H", f"Authorization: Bearer {KEY}", tool_server.url + "/v1/models")
    assert authorised.returncode == 0
    assert json.loads(authorised.stdout)["object"] == "list"
    assert run("-fsS", f"http://127.0.0.1:{free_port()}/health").returncode == 7
    assert run("--bogus", tool_server.url).returncode == 2
