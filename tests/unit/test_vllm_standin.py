"""Tests of the vLLM OpenAI-server stand-in (tests/standins/vllm), run as a subprocess: it must
behave like vllm/vllm-openai:v0.34.0 (vllm serve, FastAPI/pydantic errors, auth middleware,
chat shapes), read from the 0.34.0 sdist."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
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
MODULE = "vllm.entrypoints.openai.api_server"  # python -m ... (deprecated upstream)
CLI = "vllm.entrypoints.cli.main"  # the image's `vllm serve`
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


def command(port: int, args: tuple[str, ...], serve: bool) -> list[str]:
    """``vllm serve ARGS --host --port`` (the project's command after the image's entrypoint)
    or ``python -m ...api_server --host --port ARGS``."""
    where = ["--host", "127.0.0.1", "--port", str(port)]
    if serve:
        return [sys.executable, "-m", CLI, "serve", *args, *where]
    return [sys.executable, "-m", MODULE, *where, *args]


def run_once(
    *args: str, env: dict[str, str] | None = None, serve: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run the stand-in expecting it to exit by itself (a start-up failure)."""
    return subprocess.run(
        command(free_port(), args, serve),
        env=standin_env(env),
        capture_output=True,
        text=True,
        timeout=10,
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

    def post(
        self, path: str, body: Any, key: str | None = KEY, headers: dict[str, str] | None = None
    ) -> requests.Response:
        headers = dict(headers or {})
        if key:
            headers["Authorization"] = f"Bearer {key}"
        return requests.post(self.url + path, json=body, headers=headers, timeout=5)

    def output(self) -> str:
        return self.log.read_text()

    def report(self) -> dict[str, Any]:
        return dict(self.get("/standin/report").json())

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
    log_dir: Path,
    *args: str,
    env: dict[str, str] | None = None,
    wait: bool = True,
    serve: bool = False,
) -> Server:
    port = free_port()
    log = log_dir / f"standin-{port}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            command(port, args, serve), env=standin_env(env), stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(process, port, log)
    if wait:
        server.wait_ready()
    return server


@pytest.fixture(scope="module")
def tool_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`vllm serve` with the project's command shape: --model first, two served names, two
    keys, auto tool choice and a reasoning parser."""
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
        serve=True,
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def plain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`python -m ...api_server` without --api-key (key from VLLM_API_KEY), without tool
    parsing; an unknown tool parser is accepted without --enable-auto-tool-choice."""
    server = start(
        tmp_path_factory.mktemp("vllm"),
        "--model",
        "Qwen/Qwen3-0.6B",
        "--tool-call-parser",
        "not-registered",
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


def error(response: requests.Response, code: int) -> dict[str, Any]:
    """The nested error object of a vLLM error response (ErrorResponse)."""
    assert response.status_code == code, response.text
    body = response.json()
    assert list(body) == ["error"] and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["code"] == code
    return dict(body["error"])


# ---- start-up failures -------------------------------------------------------------------


def test_unknown_flag_exits_2() -> None:
    # the word after the unknown flag is taken by the optional positional model_tag
    result = run_once("--model", "x", "--no-such-flag", "1")
    assert result.returncode == 2
    assert "api_server.py: error: unrecognized arguments: --no-such-flag\n" in result.stderr


def test_enable_reasoning_is_gone() -> None:
    result = run_once("--enable-reasoning", "--reasoning-parser", "qwen3")
    assert result.returncode == 2
    assert "error: unrecognized arguments: --enable-reasoning" in result.stderr


def test_abbreviations_expand_like_argparse_over_every_upstream_flag() -> None:
    # --gpu-memory-util abbreviates --gpu-memory-utilization: the value reaches CacheConfig
    expanded = run_once("--gpu-memory-util", "1.5")
    assert expanded.returncode == 1
    assert "1 validation error for CacheConfig\ngpu_memory_utilization\n" in expanded.stderr
    ambiguous = run_once("--max-num", "4", serve=True)
    assert ambiguous.returncode == 2
    assert "vllm serve: error: ambiguous option: --max-num could match" in ambiguous.stderr
    assert "--max-num-seqs" in ambiguous.stderr and "--max-num-batched-tokens" in ambiguous.stderr


def test_flags_the_standin_does_not_model_are_accepted_with_their_value_counts() -> None:
    result = run_once(
        "--enforce-eager",
        "--seed",
        "1",
        "--no-enable-prefix-caching",
        "--compilation-config.mode",
        "3",
        "-O3",
        "--limit-mm-per-prompt",
        '{"image": 0}',
        env={"STANDIN_EXIT_AFTER_LOAD": "1"},
    )
    assert result.returncode == 1, result.stderr
    assert "Engine core initialization failed" in result.stderr  # got past every check
    missing = run_once("--seed")
    assert missing.returncode == 2
    assert "error: argument --seed: expected one argument" in missing.stderr
    gone = run_once("--swap-space", "4")
    assert gone.returncode == 2 and "unrecognized arguments: --swap-space\n" in gone.stderr


def test_unknown_tool_parser_refused_at_start_with_auto_tool_choice() -> None:
    result = run_once("--enable-auto-tool-choice", "--tool-call-parser", "nonsense")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("KeyError: 'invalid tool call parser: nonsense (chose from { apertus,")
    assert ",hermes," in last and last.endswith(",zaya_xml })'")
    assert "standin-report" not in result.stdout  # refused before the port is bound
    old = run_once("--enable-auto-tool-choice", "--tool-call-parser", "minimax")  # 0.9.2's
    assert old.returncode == 1 and "invalid tool call parser: minimax" in old.stderr


def test_auto_tool_choice_without_parser_exits_1() -> None:
    result = run_once("--enable-auto-tool-choice")
    assert result.returncode == 1
    assert "TypeError: Error: --enable-auto-tool-choice requires --tool-call-parser" in (
        result.stderr
    )


def test_unknown_reasoning_parser_refused_by_the_engine_config() -> None:
    result = run_once("--reasoning-parser", "nonsense")
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith(
        "KeyError: \"Reasoning parser 'nonsense' not found. Available parsers: beam, "
    )
    assert "standin-report" in result.stdout  # after the port was bound, as upstream
    renamed = run_once("--reasoning-parser", "deepseek_r1", env={"STANDIN_EXIT_AFTER_LOAD": "1"})
    assert "Engine core initialization failed" in renamed.stderr


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--quantization", "bitsandbytes"], "Unknown quantization method: bitsandbytes. Must be"),
        (["-q", "gguf"], "Unknown quantization method: gguf."),
        (["--quantization", "fbgemm_fp8"], "set `--allow-deprecated-quantization`"),
        (["--kv-cache-dtype", "fp4"], "Invalid kv_cache_dtype: 'fp4'. Valid values are: ["),
        (["--max-model-len", "0"], "max_model_len must be a positive integer, got int: 0."),
    ],
)
def test_engine_config_refusals_exit_1(args: list[str], needle: str) -> None:
    result = run_once(*args)
    assert result.returncode == 1
    assert "pydantic_core._pydantic_core.ValidationError: 1 validation error for" in (result.stderr)
    assert needle in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["--quantization", "AWQ_Marlin"],
        ["--quantization", "fbgemm_fp8", "--allow-deprecated-quantization"],
        ["--kv-cache-dtype", "fp8_e4m3"],
        ["--max-model-len", "32k"],
        ["--max-model-len", "auto"],
        ["--dtype", "bfloat16"],
    ],
)
def test_engine_config_accepts(args: list[str]) -> None:
    result = run_once(*args, env={"STANDIN_EXIT_AFTER_LOAD": "1"})
    assert "Engine core initialization failed" in result.stderr, result.stderr


def test_dtype_keeps_its_argparse_choices() -> None:
    result = run_once("--dtype", "fp8")
    assert result.returncode == 2 and "argument --dtype: invalid choice: 'fp8'" in result.stderr


def test_tensor_parallel_larger_than_visible_gpus_exits_1() -> None:
    result = run_once("-tp", "2", env={"NVIDIA_VISIBLE_DEVICES": "1"})
    assert result.returncode == 1
    assert (
        "World size (2) is larger than the number of available GPUs (1) in this node."
        in result.stderr
    )


def test_cuda_visible_devices_counts_when_nvidia_unset() -> None:
    result = run_once("--tensor-parallel-size", "3", env={"CUDA_VISIBLE_DEVICES": "0,1"})
    assert result.returncode == 1
    assert "World size (3) is larger than the number of available GPUs (2)" in result.stderr


@pytest.mark.parametrize(
    ("value", "needle"),
    [("1.5", "Input should be less than or equal to 1"), ("0", "Input should be greater than 0")],
)
def test_gpu_memory_utilization_out_of_range_exits_1(value: str, needle: str) -> None:
    result = run_once("--gpu-memory-utilization", value)
    assert result.returncode == 1
    assert "1 validation error for CacheConfig\ngpu_memory_utilization\n" in result.stderr
    assert needle in result.stderr


def test_exit_after_load(tmp_path: Path) -> None:
    result = run_once(env={"STANDIN_EXIT_AFTER_LOAD": "1", "STANDIN_LOAD_SECONDS": "0.1"})
    assert result.returncode == 1
    assert "Engine core initialization failed" in result.stderr


# ---- vllm serve (the image's entrypoint) --------------------------------------------------


def test_vllm_serve_moves_model_to_the_positional_model_tag(tool_server: Server) -> None:
    report = tool_server.report()
    assert report["entrypoint"] == "vllm serve"
    assert report["model"] == "Qwen/Qwen3-8B"
    assert report["argv"][:2] == ["--model", "Qwen/Qwen3-8B"]  # as the project rendered it
    warning = next(x for x in tool_server.output().splitlines() if "WARNING" in x)
    assert warning.endswith(
        "With `vllm serve`, you should provide the model as a positional argument or in a "
        "config file instead of via the `--model` option. The `--model` option will be "
        "removed in a future version."
    )
    assert "vLLM server version 0.34.0, serving model Qwen/Qwen3-8B" in tool_server.output()


def test_vllm_serve_serves_a_positional_model(tmp_path: Path) -> None:
    server = start(tmp_path, "Qwen/Qwen3-4B", "--served-model-name", "q4", serve=True)
    try:
        assert server.report()["model"] == "Qwen/Qwen3-4B"
        models = server.get("/v1/models").json()["data"]
        assert [(m["id"], m["root"]) for m in models] == [("q4", "Qwen/Qwen3-4B")]
        assert "--model" not in server.output()  # no deprecation warning
    finally:
        server.stop()


def test_vllm_serve_refuses_a_model_given_twice_and_names_without_a_model() -> None:
    both = run_once("Qwen/Qwen3-4B", "--model", "Qwen/Qwen3-8B", serve=True)
    assert both.returncode == 2
    assert "vllm: error: unrecognized arguments: Qwen/Qwen3-4B" in both.stderr
    nameless = run_once("--served-model-name", "q", serve=True)
    assert nameless.returncode == 1
    assert nameless.stderr.strip().splitlines()[-1] == (
        "ValueError: `model` should be provided as the first positional argument when using "
        "`vllm serve`. i.e. `vllm serve <model> --<arg> <value>`."
    )


def test_api_server_module_ignores_the_positional_model(tmp_path: Path) -> None:
    server = start(tmp_path, "Qwen/Qwen3-4B")
    try:
        report = server.report()
        assert report["entrypoint"] == "api_server"
        assert report["model"] == "Qwen/Qwen3-0.6B"  # the default --model
    finally:
        server.stop()


def test_vllm_version_flag() -> None:
    result = subprocess.run(
        [sys.executable, "-m", CLI, "--version"],
        env=standin_env(),
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert result.returncode == 0 and result.stdout.strip() == "0.34.0"


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


def test_fail_makes_health_503_and_requests_500(tmp_path: Path) -> None:
    server = start(tmp_path, env={"STANDIN_FAIL": "1"})
    try:
        assert server.get("/health").status_code == 503
        assert server.get("/version").json() == {"version": "0.34.0"}
        body = {"messages": [{"role": "user", "content": "hi"}]}
        assert error(server.post("/v1/chat/completions", body), 500) == {
            "message": "The server had an error while processing your request.",
            "type": "InternalServerError",
            "param": None,
            "code": 500,
        }
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
    report = tool_server.report()
    assert report["version"] == "0.34.0"
    assert report["gpus"] == ["0", "1"]
    assert report["served_model_names"] == ["qwen3-8b", "qwen3"]
    assert report["tool_call_parser"] == "hermes"
    assert report["enable_auto_tool_choice"] is True
    assert report["reasoning_parser"] == "qwen3"
    assert report["max_model_len"] == 16384
    assert report["api_key_set"] is True
    assert report["argv"][report["argv"].index("--api-key") + 1 :][:2] == ["***", "***"]
    output = tool_server.output()
    line = next(x for x in output.splitlines() if x.startswith("standin-report "))
    assert json.loads(line.split(" ", 1)[1]) == report
    assert "non-default args: {" in output and "'api_key': '***'" in output
    for secret in (KEY, "other-key", "env-key-ignored"):
        assert secret not in json.dumps(report)
        assert secret not in output


def test_unregistered_tool_parser_accepted_without_auto_tool_choice(plain_server: Server) -> None:
    report = plain_server.report()
    assert report["tool_call_parser"] == "not-registered"
    assert report["enable_auto_tool_choice"] is False


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
        assert permission["id"].startswith("modelperm-") and len(permission["id"]) == 26
        assert permission["object"] == "model_permission"
        assert permission["allow_sampling"] is True
        assert permission["allow_create_engine"] is False
        assert permission["organization"] == "*"
        assert permission["group"] is None
        assert permission["is_blocking"] is False


def test_api_key_with_two_keys_accepts_either_and_ignores_the_env(tool_server: Server) -> None:
    assert tool_server.get("/v1/models", key=KEY).status_code == 200
    assert tool_server.get("/v1/models", key="other-key").status_code == 200
    assert tool_server.get("/v1/models", key="env-key-ignored").status_code == 401


@pytest.mark.parametrize(
    ("header", "status"),
    [
        (f"Bearer {KEY}", 200),
        (f"bearer {KEY}", 200),  # the scheme in any case
        (f"BEARER {KEY}", 200),
        (f"Bearer {KEY} ", 200),  # trailing whitespace is not part of a header value
        (f"Bearer  {KEY}", 401),  # everything after the first space is the key
        (f"Basic {KEY}", 401),
        (KEY, 401),
        ("Bearer", 401),
    ],
)
def test_the_authorization_header_is_read_as_vllm_does(
    tool_server: Server, header: str, status: int
) -> None:
    response = requests.get(
        tool_server.url + "/v1/models", headers={"Authorization": header}, timeout=5
    )
    assert response.status_code == status


@pytest.mark.parametrize("key", [None, "wrong", "env-key-ignored"])
def test_unauthorized_body(tool_server: Server, key: str | None) -> None:
    response = tool_server.get("/v1/models", key=key)
    assert response.status_code == 401
    assert response.json() == {"error": "Unauthorized"}


@pytest.mark.parametrize(
    "path", ["/v2/rerank", "/inference/v1/generate", "/cohere/v2/chat", "/v1x"]
)
def test_every_guarded_prefix_needs_the_key(tool_server: Server, path: str) -> None:
    assert tool_server.get(path).status_code == 401
    assert tool_server.get(path, key=KEY).status_code == 404


def test_open_paths_need_no_key(tool_server: Server) -> None:
    assert tool_server.get("/health").status_code == 200
    assert tool_server.get("/ping").status_code == 200
    assert tool_server.get("/version").json() == {"version": "0.34.0"}
    assert tool_server.get("/metrics").status_code == 200
    tokens = requests.post(tool_server.url + "/tokenize", json={"prompt": "a b c"}, timeout=5)
    assert tokens.status_code == 200 and tokens.json()["count"] == 3
    options = requests.options(tool_server.url + "/v1/models", timeout=5)
    assert options.status_code == 405
    preflight = requests.options(
        tool_server.url + "/v1/models",
        headers={"Origin": "http://ui.example", "Access-Control-Request-Method": "GET"},
        timeout=5,
    )
    # no --allowed-origins: CORS is off by default from 0.34.0's frontend args
    assert (preflight.status_code, preflight.text) == (400, "Disallowed CORS origin")
    simple = requests.get(
        tool_server.url + "/v1/models",
        headers={"Authorization": f"Bearer {KEY}", "Origin": "http://ui.example"},
        timeout=5,
    )
    assert simple.status_code == 200
    assert "Access-Control-Allow-Origin" not in simple.headers


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


def test_unknown_path_and_method_are_fastapi_errors(plain_server: Server) -> None:
    response = plain_server.get("/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "Not Found"}
    wrong_method = plain_server.get("/v1/chat/completions", key="env-key")
    assert (wrong_method.status_code, wrong_method.json()) == (
        405,
        {"detail": "Method Not Allowed"},
    )


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
    assert data["id"].startswith("chatcmpl-") and len(data["id"]) == len("chatcmpl-") + 16
    assert data["object"] == "chat.completion"
    assert isinstance(data["created"], int)
    assert data["model"] == "qwen3-8b"
    assert re.fullmatch(r"vllm-0\.34\.0-[0-9a-f]{8}", data["system_fingerprint"])  # tp 1
    (choice,) = data["choices"]
    assert choice["index"] == 0
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["role"] == "assistant"
    assert message["content"] is None
    assert isinstance(message["reasoning"], str) and message["reasoning"]
    assert "reasoning_content" not in message
    (call,) = message["tool_calls"]
    assert call["id"].startswith("chatcmpl-tool-")
    assert call["type"] == "function"
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris", "metric": True}
    usage = data["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert usage["completion_tokens_details"]["reasoning_tokens"] > 0
    assert "prompt_tokens_details" not in usage


def test_plain_reply_has_reasoning_and_no_tool_calls(tool_server: Server) -> None:
    body = {
        "model": "qwen3",  # an alias: the response names the first served name
        "messages": [
            {"role": "user", "content": "hello"},
            # 0.9.2's field on a request message is still read (renamed to reasoning)
            {"role": "assistant", "content": "hi", "reasoning_content": "greet back"},
            {"role": "user", "content": "hello there"},
        ],
        "tools": [WEATHER_TOOL],
        "tool_choice": "none",
    }
    data = tool_server.post("/v1/chat/completions", body).json()
    assert data["model"] == "qwen3-8b"
    message = data["choices"][0]["message"]
    assert list(message) == ["role", "content", "refusal", "audio", "function_call", "reasoning"]
    assert message["content"] == "standin reply to: hello there"
    assert data["choices"][0]["finish_reason"] == "stop"


@pytest.mark.parametrize(
    "extra",
    [
        {"chat_template_kwargs": {"enable_thinking": False}},
        {"reasoning_effort": "none"},
        {"include_reasoning": False},
    ],
)
def test_thinking_off_drops_reasoning(tool_server: Server, extra: dict[str, Any]) -> None:
    body = {"messages": [{"role": "user", "content": "hello there"}], **extra}
    data = tool_server.post("/v1/chat/completions", body).json()
    message = data["choices"][0]["message"]
    assert message["reasoning"] is None
    assert message["content"] == "standin reply to: hello there"


def test_named_and_required_tool_choice(tool_server: Server) -> None:
    named = {"type": "function", "function": {"name": "get_weather"}}
    base = {"messages": [{"role": "user", "content": "hi"}], "tools": [WEATHER_TOOL]}
    data = tool_server.post("/v1/chat/completions", {**base, "tool_choice": named}).json()
    choice = data["choices"][0]
    assert (choice["finish_reason"], choice["message"]["content"]) == ("stop", "")
    assert choice["message"]["tool_calls"][0]["function"]["name"] == "get_weather"
    data = tool_server.post("/v1/chat/completions", {**base, "tool_choice": "required"}).json()
    assert data["choices"][0]["finish_reason"] == "tool_calls"


def test_request_id_header_names_the_completion(tool_server: Server) -> None:
    body = {"messages": [{"role": "user", "content": "hi"}]}
    response = tool_server.post("/v1/chat/completions", body, headers={"X-Request-Id": "abc"})
    assert response.json()["id"] == "chatcmpl-abc"


def test_unknown_model_404(tool_server: Server) -> None:
    body = {"model": "gpt-4", "messages": [{"role": "user", "content": "hi"}]}
    assert error(tool_server.post("/v1/chat/completions", body), 404) == {
        "message": "The model `gpt-4` does not exist. Valid aliases: qwen3-8b, qwen3.",
        "type": "NotFoundError",
        "param": "model",
        "code": 404,
    }


def test_request_validation_errors_are_nested(tool_server: Server) -> None:
    missing = error(tool_server.post("/v1/chat/completions", {"model": "qwen3"}), 400)
    assert missing == {
        "message": "1 validation error:\n  {'type': 'missing', 'loc': 'body.messages', "
        "'msg': 'Field required', 'input': '<dict of 1 items>'}",
        "type": "Bad Request",
        "param": "body.messages",
        "code": 400,
    }
    bad = requests.post(
        tool_server.url + "/v1/chat/completions",
        data=b"{not json",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
        timeout=5,
    )
    assert error(bad, 400)["message"] == (
        "1 validation error:\n  {'type': 'json_invalid', 'loc': 'body.1', 'msg': 'JSON decode "
        "error', 'input': '<dict of 0 items>', 'ctx': {'error': 'Expecting property name "
        "enclosed in double quotes'}}"
    )
    form = requests.post(
        tool_server.url + "/v1/chat/completions",
        data=b"{}",
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "text/plain"},
        timeout=5,
    )
    assert error(form, 400)["message"] == (
        "1 validation error:\n  Unsupported Media Type: Only 'application/json' is allowed"
    )


def test_tool_choice_errors_name_their_parameter(tool_server: Server) -> None:
    messages = [{"role": "user", "content": "hi"}]
    no_tools = {"messages": messages, "tool_choice": "auto"}
    assert error(tool_server.post("/v1/chat/completions", no_tools), 400) == {
        "message": "When using `tool_choice`, `tools` must be set. (parameter=tool_choice)",
        "type": "BadRequestError",
        "param": "tool_choice",
        "code": 400,
    }
    other = {"type": "function", "function": {"name": "other"}}
    unknown = {"messages": messages, "tools": [WEATHER_TOOL], "tool_choice": other}
    assert error(tool_server.post("/v1/chat/completions", unknown), 400)["message"] == (
        "The tool `other` specified in `tool_choice` does not match any of the specified "
        "`tools` (parameter=tool_choice)"
    )


def test_max_tokens_checks(tool_server: Server) -> None:
    messages = [{"role": "user", "content": "one two three"}]
    too_many = {"messages": messages, "max_tokens": 20000}
    assert error(tool_server.post("/v1/chat/completions", too_many), 400) == {
        "message": "max_tokens=20000 cannot be greater than max_model_len=16384. Please request "
        "fewer output tokens. (parameter=max_tokens, value=20000)",
        "type": "BadRequestError",
        "param": "max_tokens",
        "code": 400,
    }
    zero = {"messages": messages, "max_completion_tokens": 0}
    assert error(tool_server.post("/v1/chat/completions", zero), 400)["message"] == (
        "max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)"
    )
    clamped = {"messages": messages, "max_tokens": 16383, "chat_template_kwargs": {}}
    assert tool_server.post("/v1/chat/completions", clamped).status_code == 200
    short = {"messages": messages, "max_tokens": 2, "include_reasoning": False}
    choice = tool_server.post("/v1/chat/completions", short).json()["choices"][0]
    assert (choice["finish_reason"], choice["message"]["content"]) == ("length", "standin reply")


def test_auto_tool_choice_off_is_400(plain_server: Server) -> None:
    body: dict[str, Any] = {
        "messages": [{"role": "user", "content": "hi"}],
        "tools": [WEATHER_TOOL],
    }
    response = plain_server.post("/v1/chat/completions", body, key="env-key")
    assert error(response, 400) == {
        "message": '"auto" tool choice requires --enable-auto-tool-choice and '
        "--tool-call-parser to be set",
        "type": "BadRequestError",
        "param": None,
        "code": 400,
    }
    body["tool_choice"] = "required"
    response = plain_server.post("/v1/chat/completions", body, key="env-key")
    assert error(response, 400)["message"] == (
        'tool_choice="required" requires --tool-call-parser to be set'
    )
    body["tool_choice"] = "none"
    response = plain_server.post("/v1/chat/completions", body, key="env-key")
    assert response.status_code == 200
    assert response.json()["model"] == "Qwen/Qwen3-0.6B"
    message = response.json()["choices"][0]["message"]
    assert "tool_calls" not in message and message["reasoning"] is None


@pytest.mark.parametrize("tool_choice", ["auto", "required", None])
def test_empty_tools_fall_back_to_no_tool_choice(plain_server: Server, tool_choice: Any) -> None:
    body: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}], "tools": []}
    if tool_choice is not None:
        body["tool_choice"] = tool_choice
    response = plain_server.post("/v1/chat/completions", body, key="env-key")
    assert response.status_code == 200, response.text
    assert "tool_calls" not in response.json()["choices"][0]["message"]


def stream(server: Server, body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    response = requests.post(
        server.url + "/v1/chat/completions",
        json={**body, "stream": True},
        headers={"Authorization": f"Bearer {key}"},
        stream=True,
        timeout=5,
    )
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/event-stream")
    events = [line for line in response.iter_lines(decode_unicode=True) if line]
    assert events[-1] == "data: [DONE]"
    return [json.loads(e.removeprefix("data: ")) for e in events[:-1]]


def test_streaming_and_metrics(plain_server: Server) -> None:
    before = plain_server.get("/metrics").text
    body = {"messages": [{"role": "user", "content": "stream me please"}]}
    chunks = stream(plain_server, body, "env-key")
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert all("tool_calls" not in c["choices"][0]["delta"] for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "standin reply to: stream me please"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["system_fingerprint"].startswith("vllm-0.34.0-")

    def successes(metrics: str) -> float:
        prefix = 'vllm:request_success_total{model_name="Qwen/Qwen3-0.6B",engine="0",'
        line = next(
            x for x in metrics.splitlines() if x.startswith(prefix + 'finished_reason="stop"')
        )
        return float(line.rsplit(" ", 1)[1])

    after = plain_server.get("/metrics").text
    assert 'vllm:num_requests_running{model_name="Qwen/Qwen3-0.6B",engine="0"} 0.0' in after
    assert 'vllm:kv_cache_usage_perc{model_name="Qwen/Qwen3-0.6B",engine="0"} 0.0' in after
    assert successes(after) == successes(before) + 1


def test_streamed_reasoning_tool_calls_and_usage(tool_server: Server) -> None:
    body = {
        "messages": [{"role": "user", "content": "Weather in Paris?"}],
        "tools": [WEATHER_TOOL],
        "stream_options": {"include_usage": True},
    }
    chunks = stream(tool_server, body, KEY)
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert all("reasoning_content" not in d for d in deltas)
    assert "".join(d.get("reasoning", "") for d in deltas).startswith("The user needs")
    calls = [d["tool_calls"][0] for d in deltas if "tool_calls" in d]
    assert calls[0]["function"] == {"name": "get_weather"} and calls[0]["index"] == 0
    assert json.loads("".join(c["function"].get("arguments", "") for c in calls[1:])) == {
        "city": "Paris",
        "metric": True,
    }
    assert [d for d in deltas if "tool_calls" in d and d["tool_calls"] == []] == []
    assert chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    usage = chunks[-1]["usage"]
    assert chunks[-1]["choices"] == [] and usage["completion_tokens_details"]["reasoning_tokens"]


def test_completions(plain_server: Server) -> None:
    response = plain_server.post("/v1/completions", {"prompt": "Say hi"}, key="env-key")
    assert response.status_code == 200, response.text
    data = response.json()
    assert data["id"].startswith("cmpl-") and data["object"] == "text_completion"
    assert data["choices"][0]["text"] == " standin completion for: Say hi"
    missing = plain_server.post("/v1/completions", {"max_tokens": 3}, key="env-key")
    assert error(missing, 400) == {
        "message": "Either prompt or prompt_embeds must be provided and non-empty. "
        "(parameter=prompt)",
        "type": "BadRequestError",
        "param": "prompt",
        "code": 400,
    }


def test_invocations_routes_by_body(plain_server: Server) -> None:
    chat = plain_server.post("/invocations", {"messages": [{"role": "user", "content": "x"}]}, None)
    assert chat.json()["object"] == "chat.completion"
    completion = plain_server.post("/invocations", {"prompt": "x"}, None)
    assert completion.json()["object"] == "text_completion"


# ---- helpers shipped in the image ---------------------------------------------------------


def load_module(name: str, path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def standin() -> Any:
    return load_module(
        "standin_vllm_api_server", STANDIN_ROOT / "vllm/entrypoints/openai/api_server.py"
    )


def test_mask_argv_hides_every_key_form(standin: Any) -> None:
    argv = ["--api-key", "a", "b", "--port", "1", "--api_key=c", "--api-k", "d", "--model", "m"]
    assert standin.mask_argv(argv) == [
        "--api-key", "***", "***", "--port", "1", "--api_key=***", "--api-k", "***", "--model", "m",
    ]  # fmt: skip


def test_reasoning_parser_none_is_unset(standin: Any) -> None:
    assert (
        standin.make_arg_parser().parse_args(["--reasoning-parser", "None"]).reasoning_parser == ""
    )


def test_the_standin_takes_exactly_the_upstream_flags_and_lists(standin: Any) -> None:
    """The stand-in's parser and the grammar read from vLLM 0.34.0's sdist (grammar_vllm) agree
    on every option string, how many values each takes, argparse's choices and the registries."""
    from ansible_collections.myia.genai_stack.plugins.module_utils import grammar_vllm

    release = grammar_vllm.RELEASES["v0.34.0"]
    parser = standin.make_arg_parser()
    arity = {
        s: 0 if action.nargs == 0 else 1 if action.nargs is None else action.nargs
        for action in parser._actions
        for s in action.option_strings
    }
    assert arity == release["flags"]
    assert {
        s: tuple(sorted(action.choices))
        for action in parser._actions
        if action.choices
        for s in action.option_strings
    } == release["choices"]
    positionals = {a.dest: a.nargs for a in parser._actions if not a.option_strings}
    assert positionals == release["positionals"]
    assert parser.allow_abbrev is release["allow_abbrev"]
    assert tuple(standin.TOOL_CALL_PARSERS) == release["tool_call_parser"]
    assert tuple(standin.REASONING_PARSERS) == release["reasoning_parser"]
    assert tuple(sorted(standin.QUANTIZATIONS)) == release["quantization"]
    assert tuple(standin.DEPRECATED_QUANTIZATIONS) == release["quantization_deprecated"]
    assert tuple(standin.DTYPES) == release["dtype"]
    assert not {"bitsandbytes", "gguf", "auto-round", "gptq_marlin_24"} & set(standin.QUANTIZATIONS)


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
