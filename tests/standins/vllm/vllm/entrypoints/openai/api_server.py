"""Stand-in for vLLM v0.9.2's OpenAI-compatible API server (``vllm/vllm-openai``).

Test double only: it loads no model and needs no GPU. It speaks the real server's HTTP API
(paths, auth middleware, error bodies), takes the real CLI flags (unknown ones are rejected the
way argparse rejects them) and reports what it was given, so that a wrongly rendered command or
GPU assignment makes a test fail. Standard library only.

Stand-in-only knobs (environment):
  STANDIN_LOAD_SECONDS     float, default 0: simulated model load; the port is bound but not
                           listening meanwhile, so connections are refused (like vLLM).
  STANDIN_FAIL=1           after the load, /health answers 503 (engine dead) for ever.
  STANDIN_EXIT_AFTER_LOAD=1  after the load, log an engine error and exit 1.
Stand-in-only paths (no auth): GET /standin/report returns the start-up report;
GET /standin/requests the last 200 requests to /v1 as they came (method, path, the sha256 of
the Authorization header or null, the JSON body), so tests check what the project sent rather
than what the stand-in answered.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import hmac
import json
import os
import signal
import socket
import socketserver
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

VLLM_VERSION = "0.9.2"
DEFAULT_MODEL = "Qwen/Qwen3-0.6B"
DEFAULT_MAX_MODEL_LEN = 32768
DEFAULT_HOST = "0.0.0.0"  # upstream binds all interfaces when --host is unset

DTYPES = ["auto", "half", "float16", "bfloat16", "float", "float32"]
QUANTIZATIONS = [
    "aqlm",
    "awq",
    "deepspeedfp",
    "tpu_int8",
    "fp8",
    "ptpc_fp8",
    "fbgemm_fp8",
    "modelopt",
    "modelopt_fp4",
    "marlin",
    "bitblas",
    "gguf",
    "gptq_marlin_24",
    "gptq_marlin",
    "gptq_bitblas",
    "awq_marlin",
    "gptq",
    "compressed-tensors",
    "bitsandbytes",
    "qqq",
    "hqq",
    "experts_int8",
    "neuron_quant",
    "ipex",
    "quark",
    "moe_wna16",
    "torchao",
    "auto-round",
    "None",
]
TOOL_CALL_PARSERS = [
    "deepseek_v3",
    "granite-20b-fc",
    "granite",
    "hermes",
    "internlm",
    "jamba",
    "llama3_json",
    "llama4_json",
    "llama4_pythonic",
    "minimax",
    "mistral",
    "phi4_mini_json",
    "pythonic",
    "xlam",
]
REASONING_PARSERS = ["deepseek_r1", "granite", "qwen3", "hunyuan_a13b"]
KV_CACHE_DTYPES = ["auto", "fp8", "fp8_e4m3", "fp8_e5m2"]
UVICORN_LOG_LEVELS = ["debug", "info", "warning", "error", "critical", "trace"]
UNRESTRICTED_GPU_VALUES = {"", "all", "void", "none"}

JsonDict = dict[str, Any]


# --------------------------------------------------------------------------------------------
# logging (vLLM writes its log lines to stdout; tracebacks go to stderr)


def log(level: str, message: str) -> None:
    """Print one vLLM-style log line to stdout."""
    stamp = time.strftime("%m-%d %H:%M:%S")
    print(f"{level} {stamp} [api_server.py] {message}", flush=True)


def uvicorn_log(level: str, message: str) -> None:
    """Print one uvicorn-style log line to stdout."""
    print(f"{level + ':':<10}{message}", flush=True)


def fail(exc_type: str, message: str) -> int:
    """Report a start-up failure the way an uncaught Python exception would; return 1."""
    log("ERROR", f"{exc_type}: {message}")
    print("Traceback (most recent call last):", file=sys.stderr)
    print('  File "vllm/entrypoints/openai/api_server.py", in run_server', file=sys.stderr)
    print(f"{exc_type}: {message}", file=sys.stderr, flush=True)
    return 1


# --------------------------------------------------------------------------------------------
# CLI


class FlexibleArgumentParser(argparse.ArgumentParser):
    """ArgumentParser that, like vLLM's, also accepts ``--flag_name`` for ``--flag-name``."""

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: None = None
    ) -> argparse.Namespace:
        raw = list(sys.argv[1:] if args is None else args)
        normalised: list[str] = []
        for arg in raw:
            if arg.startswith("--"):
                key, sep, value = arg.partition("=")
                normalised.append(key.replace("_", "-") + sep + value)
            else:
                normalised.append(arg)
        return super().parse_args(normalised, namespace)


def make_arg_parser() -> FlexibleArgumentParser:
    """Build the subset of vLLM v0.9.2's ``api_server`` CLI that the stand-in understands."""
    parser = FlexibleArgumentParser(
        description="vLLM OpenAI-Compatible RESTful API server.", allow_abbrev=False
    )
    add = parser.add_argument
    # frontend
    add("--host", type=str, default=None, help="Host name (default: all interfaces).")
    add("--port", type=int, default=8000, help="Port number.")
    add("--uvicorn-log-level", type=str, default="info", choices=UVICORN_LOG_LEVELS)
    add("--disable-uvicorn-access-log", action="store_true")
    add("--allow-credentials", action="store_true")
    add("--allowed-origins", type=json.loads, default=["*"])
    add("--api-key", type=str, nargs="+", default=None, help="API key(s) required by /v1.")
    add("--chat-template", type=str, default=None)
    add("--chat-template-content-format", type=str, default="auto")
    add("--response-role", type=str, default="assistant")
    add("--root-path", type=str, default=None)
    add("--enable-auto-tool-choice", action="store_true")
    add("--tool-call-parser", type=str, default=None, choices=TOOL_CALL_PARSERS)
    add("--disable-fastapi-docs", action="store_true")
    add("--enable-request-id-headers", action="store_true")
    add("--enable-server-load-tracking", action="store_true")
    add("--disable-log-stats", action="store_true")
    add("--disable-log-requests", action="store_true")
    add("--max-log-len", type=int, default=None)
    # model / engine
    add("--model", type=str, default=DEFAULT_MODEL, help="Name or path of the model.")
    add("--served-model-name", type=str, nargs="+", default=None)
    add("--tokenizer", type=str, default=None)
    add("--revision", type=str, default=None)
    add("--trust-remote-code", action="store_true")
    add("--download-dir", type=str, default=None)
    add("--dtype", type=str, default="auto", choices=DTYPES)
    add("--max-model-len", type=int, default=None)
    add("--quantization", "-q", type=str, default=None, choices=QUANTIZATIONS)
    add("--generation-config", type=str, default="auto")
    add("--seed", type=int, default=None)
    add("--enforce-eager", action="store_true")
    add("--reasoning-parser", type=str, default="", choices=REASONING_PARSERS)
    # parallelism / cache / scheduler
    add("--tensor-parallel-size", "-tp", type=int, default=1)
    add("--pipeline-parallel-size", "-pp", type=int, default=1)
    add("--distributed-executor-backend", type=str, default=None, choices=["ray", "mp", "uni"])
    add("--gpu-memory-utilization", type=float, default=0.9)
    add("--kv-cache-dtype", type=str, default="auto", choices=KV_CACHE_DTYPES)
    add("--swap-space", type=float, default=4)
    add("--cpu-offload-gb", type=float, default=0)
    add("--block-size", type=int, default=None)
    add("--enable-prefix-caching", action=argparse.BooleanOptionalAction, default=None)
    add("--enable-chunked-prefill", action=argparse.BooleanOptionalAction, default=None)
    add("--max-num-seqs", type=int, default=None)
    add("--max-num-batched-tokens", type=int, default=None)
    return parser


def mask_argv(argv: Sequence[str]) -> list[str]:
    """Return argv with every ``--api-key`` value replaced by ``***``."""
    masked: list[str] = []
    in_key_values = False
    for arg in argv:
        flag = arg.split("=", 1)[0].replace("_", "-") if arg.startswith("--") else arg
        if flag == "--api-key":
            masked.append(arg.split("=", 1)[0] + "=***" if "=" in arg else arg)
            in_key_values = "=" not in arg
            continue
        if in_key_values and not arg.startswith("-"):
            masked.append("***")
            continue
        in_key_values = False
        masked.append(arg)
    return masked


def visible_gpus(env: dict[str, str]) -> tuple[list[str] | None, int | None]:
    """GPU list the container was given (NVIDIA_ then CUDA_VISIBLE_DEVICES), and its size.

    Returns ``(None, None)`` when nothing restricts the GPUs ("all", "void", unset).
    CUDA_VISIBLE_DEVICES, when set, further restricts what NVIDIA_VISIBLE_DEVICES exposed.
    """

    def parse(name: str) -> list[str] | None:
        raw = env.get(name)
        if raw is None or raw.strip().lower() in UNRESTRICTED_GPU_VALUES:
            return None
        return [item.strip() for item in raw.split(",") if item.strip()]

    nvidia = parse("NVIDIA_VISIBLE_DEVICES")
    cuda = parse("CUDA_VISIBLE_DEVICES")
    gpus = nvidia if nvidia is not None else cuda
    if gpus is None:
        return None, None
    count = len(cuda) if cuda is not None else len(gpus)
    return gpus, count


@dataclass
class ServerConfig:
    """Everything the running server needs, derived from argv and the environment."""

    args: argparse.Namespace
    argv: list[str]
    api_keys: list[str]
    gpus: list[str] | None
    gpu_count: int | None
    served_model_names: list[str]
    max_model_len: int
    fail_after_load: bool
    report: JsonDict = field(default_factory=dict)

    @property
    def auto_tools(self) -> bool:
        return bool(self.args.enable_auto_tool_choice and self.args.tool_call_parser)


def build_config(args: argparse.Namespace, argv: list[str], env: dict[str, str]) -> ServerConfig:
    keys = list(args.api_key) if args.api_key else []
    if not keys and env.get("VLLM_API_KEY"):
        keys = [env["VLLM_API_KEY"]]
    gpus, count = visible_gpus(env)
    names = list(args.served_model_name) if args.served_model_name else [args.model]
    config = ServerConfig(
        args=args,
        argv=mask_argv(argv),
        api_keys=keys,
        gpus=gpus,
        gpu_count=count,
        served_model_names=names,
        max_model_len=args.max_model_len or DEFAULT_MAX_MODEL_LEN,
        fail_after_load=env.get("STANDIN_FAIL", "") == "1",
    )
    config.report = {
        "standin": "vllm",
        "version": VLLM_VERSION,
        "model": args.model,
        "served_model_names": names,
        "host": args.host if args.host is not None else DEFAULT_HOST,
        "port": args.port,
        "gpus": gpus,
        "nvidia_visible_devices": env.get("NVIDIA_VISIBLE_DEVICES"),
        "cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES"),
        "tensor_parallel_size": args.tensor_parallel_size,
        "pipeline_parallel_size": args.pipeline_parallel_size,
        "gpu_memory_utilization": args.gpu_memory_utilization,
        "max_model_len": args.max_model_len,
        "quantization": None if args.quantization in (None, "None") else args.quantization,
        "dtype": args.dtype,
        "kv_cache_dtype": args.kv_cache_dtype,
        "max_num_seqs": args.max_num_seqs,
        "tool_call_parser": args.tool_call_parser,
        "enable_auto_tool_choice": bool(args.enable_auto_tool_choice),
        "reasoning_parser": args.reasoning_parser or None,
        "api_key_set": bool(keys),
        "argv": config.argv,
    }
    return config


# --------------------------------------------------------------------------------------------
# request helpers


def random_hex() -> str:
    return uuid.uuid4().hex


def count_words(value: Any) -> int:
    """Whitespace word count of a message content (string or list of text parts)."""
    if isinstance(value, str):
        return len(value.split())
    if isinstance(value, list):
        return sum(count_words(part.get("text", "")) for part in value if isinstance(part, dict))
    return 0


def content_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [p.get("text", "") for p in value if isinstance(p, dict)]
        return " ".join(str(p) for p in parts)
    return ""


def example_value(name: str, schema: Any) -> Any:
    """A plausible value for one JSON-schema property."""
    if not isinstance(schema, dict):
        return "example"
    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        return enum[0]
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "string")
    if kind in ("number", "integer"):
        return 1
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {}
    return "Paris" if name.lower() in ("city", "location") else "example"


def example_arguments(function: JsonDict) -> JsonDict:
    """Arguments for a tool call built from the function's JSON-schema parameters."""
    parameters = function.get("parameters")
    if not isinstance(parameters, dict):
        return {}
    properties = parameters.get("properties")
    if not isinstance(properties, dict):
        return {}
    required = parameters.get("required")
    names = [n for n in properties if not isinstance(required, list) or n in required]
    return {name: example_value(name, properties[name]) for name in names}


def validation_error(kind: str, loc: tuple[Any, ...], msg: str) -> str:
    """Message text of a FastAPI RequestValidationError, as vLLM puts it in its 400 body."""
    return str([{"type": kind, "loc": loc, "msg": msg}])


class ApiError(Exception):
    """An OpenAI-style error response (pre-0.10.1 shape)."""

    def __init__(self, message: str, err_type: str = "BadRequestError", code: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.err_type = err_type
        self.code = code

    def body(self) -> JsonDict:
        return {
            "object": "error",
            "message": self.message,
            "type": self.err_type,
            "param": None,
            "code": self.code,
        }


@dataclass
class Completion:
    """What the stand-in 'generated' for one chat request."""

    reasoning: str | None
    content: str | None
    tool_calls: list[JsonDict]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int


# --------------------------------------------------------------------------------------------
# server


class StandinServer(ThreadingHTTPServer):
    """Threading HTTP server holding the stand-in's state."""

    daemon_threads = True
    config: ServerConfig

    def __init__(self, address: tuple[str, int], config: ServerConfig) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, StandinHandler, bind_and_activate=False)
        self.config = config
        self.lock = threading.Lock()
        self.started = time.time()
        self.requests: collections.deque[JsonDict] = collections.deque(maxlen=200)
        self.counters: dict[str, float] = {
            "prompt_tokens": 0,
            "generation_tokens": 0,
            "success_stop": 0,
            "success_length": 0,
            "success_abort": 0,
        }

    def server_bind(self) -> None:
        # HTTPServer.server_bind() does a reverse DNS lookup of the host; skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def record(self, method: str, path: str, authorization: str | None, body: bytes) -> None:
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = body.decode("utf-8", "replace")
        digest = hashlib.sha256(authorization.encode()).hexdigest() if authorization else None
        with self.lock:
            self.requests.append(
                {"method": method, "path": path, "authorization_sha256": digest, "body": data}
            )

    def count(self, completion: Completion) -> None:
        with self.lock:
            self.counters["prompt_tokens"] += completion.prompt_tokens
            self.counters["generation_tokens"] += completion.completion_tokens
            key = "success_length" if completion.finish_reason == "length" else "success_stop"
            self.counters[key] += 1


Route = Callable[["StandinHandler"], None]


class StandinHandler(BaseHTTPRequestHandler):
    """HTTP handler: vLLM's auth middleware in front of its routes."""

    server: StandinServer
    protocol_version = "HTTP/1.1"
    server_version = "uvicorn"
    body: bytes = b""
    path_only: str = "/"

    # ---- plumbing ---------------------------------------------------------------------------

    def version_string(self) -> str:
        return self.server_version

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        try:
            phrase = HTTPStatus(int(code)).phrase
        except ValueError:
            phrase = ""
        client = f"{self.client_address[0]}:{self.client_address[1]}"
        uvicorn_log("INFO", f'{client} - "{self.requestline}" {code} {phrase}'.rstrip())

    def log_message(self, format: str, *args: Any) -> None:
        uvicorn_log("WARNING", format % args)

    def _read_body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _send(self, status: int, body: bytes, content_type: str | None, extra: JsonDict) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        origin = self.headers.get("Origin")
        if origin:
            self.send_header("Access-Control-Allow-Origin", "*")
        for key, value in extra.items():
            self.send_header(key, str(value))
        self.end_headers()
        if self.command != "HEAD" and body:
            self.wfile.write(body)

    def send_json(self, status: int, obj: Any, extra: JsonDict | None = None) -> None:
        body = json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode()
        self._send(status, body, "application/json", extra or {})

    def send_empty(self, status: int) -> None:
        self._send(status, b"", None, {})

    def send_error_obj(self, error: ApiError) -> None:
        self.send_json(error.code, error.body())

    def json_body(self) -> JsonDict:
        """Parse the request body as a JSON object, raising 400 errors like FastAPI would."""
        try:
            data = json.loads(self.body.decode("utf-8") if self.body else "")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            pos = exc.pos if isinstance(exc, json.JSONDecodeError) else 0
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else "invalid utf-8"
            msg = validation_error("json_invalid", ("body", pos), "JSON decode error")
            raise ApiError(msg[:-2] + f", 'ctx': {{'error': {reason!r}}}}}]") from exc
        if not isinstance(data, dict):
            raise ApiError(
                validation_error(
                    "model_attributes_type",
                    ("body",),
                    "Input should be a valid dictionary or object to extract fields from",
                )
            )
        return data

    # ---- dispatch ---------------------------------------------------------------------------

    def _dispatch(self) -> None:
        self.path_only = self.path.split("?", 1)[0].split("#", 1)[0] or "/"
        try:
            self.body = self._read_body()
        except (ValueError, OSError):
            self.send_json(400, {"detail": "Invalid request body"})
            self.close_connection = True
            return
        if self.path_only.startswith("/v1"):
            self.server.record(
                self.command, self.path_only, self.headers.get("Authorization"), self.body
            )
        if not self._authorised():
            self.send_json(401, {"error": "Unauthorized"})
            return
        if self.command == "OPTIONS" and self.headers.get("Access-Control-Request-Method"):
            self._cors_preflight()
            return
        methods = ROUTES.get(self.path_only)
        if methods is None:
            self.send_json(404, {"detail": "Not Found"})
            return
        handler = methods.get(self.command)
        if handler is None:
            allow = ", ".join(sorted(methods))
            self.send_json(405, {"detail": "Method Not Allowed"}, {"Allow": allow})
            return
        try:
            handler(self)
        except ApiError as error:
            self.send_error_obj(error)

    def _authorised(self) -> bool:
        keys = self.server.config.api_keys
        if not keys or self.command == "OPTIONS" or not self.path_only.startswith("/v1"):
            return True
        # vLLM compares the header with "Bearer <key>" as a whole: case and spaces count
        presented = self.headers.get("Authorization", "").encode()
        return any(hmac.compare_digest(presented, f"Bearer {key}".encode()) for key in keys)

    def _cors_preflight(self) -> None:
        self._send(
            200,
            b"OK",
            "text/plain; charset=utf-8",
            {
                "Access-Control-Allow-Methods": "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT",
                "Access-Control-Max-Age": "600",
                "Access-Control-Allow-Headers": self.headers.get(
                    "Access-Control-Request-Headers", "*"
                ),
                "Vary": "Origin",
            },
        )

    def do_GET(self) -> None:
        self._dispatch()

    def do_POST(self) -> None:
        self._dispatch()

    def do_PUT(self) -> None:
        self._dispatch()

    def do_PATCH(self) -> None:
        self._dispatch()

    def do_DELETE(self) -> None:
        self._dispatch()

    def do_HEAD(self) -> None:
        self._dispatch()

    def do_OPTIONS(self) -> None:
        self._dispatch()

    # ---- simple routes ----------------------------------------------------------------------

    def route_health(self) -> None:
        self.send_empty(503 if self.server.config.fail_after_load else 200)

    def route_version(self) -> None:
        self.send_json(200, {"version": VLLM_VERSION})

    def route_load(self) -> None:
        self.send_json(200, {"server_load": 0})

    def route_report(self) -> None:
        self.send_json(200, self.server.config.report)

    def route_requests(self) -> None:
        with self.server.lock:
            self.send_json(200, list(self.server.requests))

    def route_metrics(self) -> None:
        name = self.server.config.served_model_names[0]
        labels = f'engine="0",model_name="{name}"'
        with self.server.lock:
            counters = dict(self.server.counters)
        lines: list[str] = []

        for metric_name, kind, text, samples in (
            ("num_requests_running", "gauge", "Number of requests in model execution batches.",
             [("", 0.0)]),
            ("num_requests_waiting", "gauge", "Number of requests waiting to be processed.",
             [("", 0.0)]),
            ("gpu_cache_usage_perc", "gauge", "GPU KV-cache usage. 1 means 100 percent usage.",
             [("", 0.0)]),
            ("prompt_tokens_total", "counter", "Number of prefill tokens processed.",
             [("", counters["prompt_tokens"])]),
            ("generation_tokens_total", "counter", "Number of generation tokens processed.",
             [("", counters["generation_tokens"])]),
            ("request_success_total", "counter", "Count of successfully processed requests.",
             [('finished_reason="stop",', counters["success_stop"]),
              ('finished_reason="length",', counters["success_length"]),
              ('finished_reason="abort",', counters["success_abort"])]),
        ):  # fmt: skip
            lines.append(f"# HELP vllm:{metric_name} {text}")
            lines.append(f"# TYPE vllm:{metric_name} {kind}")
            for extra, value in samples:
                lines.append(f"vllm:{metric_name}{{{extra}{labels}}} {float(value)}")
        body = ("\n".join(lines) + "\n").encode()
        self._send(200, body, "text/plain; version=0.0.4; charset=utf-8", {})

    def route_models(self) -> None:
        config = self.server.config
        now = int(time.time())
        data = [
            {
                "id": name,
                "object": "model",
                "created": now,
                "owned_by": "vllm",
                "root": config.args.model,
                "parent": None,
                "max_model_len": config.max_model_len,
                "permission": [
                    {
                        "id": f"modelperm-{random_hex()}",
                        "object": "model_permission",
                        "created": now,
                        "allow_create_engine": False,
                        "allow_sampling": True,
                        "allow_logprobs": True,
                        "allow_search_indices": False,
                        "allow_view": True,
                        "allow_fine_tuning": False,
                        "organization": "*",
                        "group": None,
                        "is_blocking": False,
                    }
                ],
            }
            for name in config.served_model_names
        ]
        self.send_json(200, {"object": "list", "data": data})

    def route_tokenize(self) -> None:
        request = self.json_body()
        self._check_model(request.get("model"))
        if "messages" in request:
            text = " ".join(content_text(m.get("content")) for m in self._messages(request))
        else:
            text = str(request.get("prompt", ""))
        words = text.split()
        self.send_json(
            200,
            {
                "count": len(words),
                "max_model_len": self.server.config.max_model_len,
                "tokens": [sum(w.encode()) % 151643 for w in words],
                "token_strs": None,
            },
        )

    def route_invocations(self) -> None:
        request = self.json_body()
        if "messages" in request:
            self.route_chat_completions()
        elif "prompt" in request:
            self.route_completions()
        else:
            raise ApiError("Cannot identify the request type from the body.")

    # ---- generation -------------------------------------------------------------------------

    def _check_model(self, model: Any) -> str:
        names = self.server.config.served_model_names
        if model is None or model == "":
            return names[0]
        if not isinstance(model, str) or model not in names:
            raise ApiError(f"The model `{model}` does not exist.", "NotFoundError", 404)
        return model

    def _check_engine(self) -> None:
        if self.server.config.fail_after_load:
            raise ApiError(
                "EngineCore encountered an issue. See stack trace (above) for the root cause.",
                "InternalServerError",
                500,
            )

    def _messages(self, request: JsonDict) -> list[JsonDict]:
        messages = request.get("messages")
        if messages is None:
            raise ApiError(validation_error("missing", ("body", "messages"), "Field required"))
        if not isinstance(messages, list) or not all(isinstance(m, dict) for m in messages):
            raise ApiError(
                validation_error("list_type", ("body", "messages"), "Input should be a valid list")
            )
        return messages

    def _max_tokens(self, request: JsonDict, prompt_tokens: int) -> int | None:
        max_tokens = request.get("max_completion_tokens", request.get("max_tokens"))
        if max_tokens is None:
            return None
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise ApiError(f"max_tokens must be at least 1, got {max_tokens}.")
        limit = self.server.config.max_model_len
        if prompt_tokens + max_tokens > limit:
            raise ApiError(
                f"This model's maximum context length is {limit} tokens. However, you requested "
                f"{prompt_tokens + max_tokens} tokens ({prompt_tokens} in the messages, "
                f"{max_tokens} in the completion). Please reduce the length of the messages or "
                "completion."
            )
        return max_tokens

    def _tool_choice(self, request: JsonDict) -> tuple[list[JsonDict], Any]:
        tools = request.get("tools")
        if "tool_choice" not in request and tools:
            request["tool_choice"] = "auto"
        choice = request.get("tool_choice")
        if tools is not None and (
            not isinstance(tools, list)
            or not all(
                isinstance(t, dict)
                and isinstance(t.get("function"), dict)
                and isinstance(t["function"].get("name"), str)
                for t in tools
            )
        ):
            raise ApiError(
                validation_error("missing", ("body", "tools", 0, "function"), "Field required")
            )
        tool_list: list[JsonDict] = list(tools or [])
        if choice is None or choice == "none":
            return tool_list, "none"

        def value_error(text: str) -> ApiError:
            return ApiError(validation_error("value_error", ("body",), f"Value error, {text}"))

        if not tool_list:
            raise value_error("When using `tool_choice`, `tools` must be set.")
        if isinstance(choice, dict):
            function = choice.get("function")
            name = function.get("name") if isinstance(function, dict) else None
            if not any(t["function"]["name"] == name for t in tool_list):
                raise value_error(f"Tool '{name}' has not been passed in `tools`.")
            return tool_list, choice
        if choice not in ("auto", "required"):
            raise value_error(
                f"Invalid value for `tool_choice`: {choice}! Only named tools, "
                '"none", "auto" or "required" are supported.'
            )
        if choice == "auto" and not self.server.config.auto_tools:
            raise ApiError(
                '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser '
                "to be set"
            )
        return tool_list, choice

    def _generate(self, request: JsonDict) -> Completion:
        messages = self._messages(request)
        tools, choice = self._tool_choice(request)
        prompt_tokens = sum(count_words(m.get("content")) for m in messages) + 1
        prompt_tokens += sum(len(json.dumps(t).split()) for t in tools)
        max_tokens = self._max_tokens(request, prompt_tokens)
        kwargs = request.get("chat_template_kwargs")
        thinking = not (isinstance(kwargs, dict) and kwargs.get("enable_thinking") is False)
        reasoning: str | None = None
        if self.server.config.args.reasoning_parser and thinking:
            reasoning = "The user needs an answer; this is the stand-in's deterministic reasoning."
        last = messages[-1] if messages else {}
        user_texts = [content_text(m.get("content")) for m in messages if m.get("role") == "user"]

        def call(tool: JsonDict) -> JsonDict:
            function = tool["function"]
            arguments = json.dumps(example_arguments(function), ensure_ascii=False)
            return {
                "id": f"chatcmpl-tool-{random_hex()}",
                "type": "function",
                "function": {"name": function["name"], "arguments": arguments},
            }

        tool_calls: list[JsonDict] = []
        content: str | None
        finish = "stop"
        if isinstance(choice, dict):
            name = choice["function"]["name"]
            tool_calls = [call(next(t for t in tools if t["function"]["name"] == name))]
            content = ""
        elif choice == "required":
            tool_calls = [call(tools[0])]
            content, finish = "", "tool_calls"
        elif choice == "auto" and last.get("role") != "tool":
            tool_calls = [call(tools[0])]
            content, finish = None, "tool_calls"
        else:
            if last.get("role") == "tool":
                content = "standin reply to tool result: " + content_text(last.get("content"))[:50]
            else:
                content = "standin reply to: " + (user_texts[-1][:50] if user_texts else "")
            if max_tokens is not None and len(content.split()) > max_tokens:
                content = " ".join(content.split()[:max_tokens])
                finish = "length"
        generated = (reasoning or "") + " " + (content or "")
        generated += " ".join(c["function"]["arguments"] for c in tool_calls)
        return Completion(
            reasoning=reasoning,
            content=content,
            tool_calls=tool_calls,
            finish_reason=finish,
            prompt_tokens=prompt_tokens,
            completion_tokens=max(1, len(generated.split())),
        )

    @staticmethod
    def _usage(completion: Completion) -> JsonDict:
        return {
            "prompt_tokens": completion.prompt_tokens,
            "total_tokens": completion.prompt_tokens + completion.completion_tokens,
            "completion_tokens": completion.completion_tokens,
            "prompt_tokens_details": None,
        }

    def route_chat_completions(self) -> None:
        request = self.json_body()
        model = self._check_model(request.get("model"))
        self._check_engine()
        completion = self._generate(request)
        self.server.count(completion)
        request_id = f"chatcmpl-{random_hex()}"
        created = int(time.time())
        if request.get("stream"):
            chunks = self._chat_chunks(request, request_id, created, model, completion)
            self.send_stream(chunks)
            return
        n_value = request.get("n")
        n = n_value if isinstance(n_value, int) and not isinstance(n_value, bool) else 1
        choices = [
            {
                "index": index,
                "message": {
                    "role": "assistant",
                    "reasoning_content": completion.reasoning,
                    "content": completion.content,
                    "tool_calls": completion.tool_calls,
                },
                "logprobs": None,
                "finish_reason": completion.finish_reason,
                "stop_reason": None,
            }
            for index in range(max(1, n))
        ]
        self.send_json(
            200,
            {
                "id": request_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": choices,
                "usage": self._usage(completion),
                "prompt_logprobs": None,
                "kv_transfer_params": None,
            },
        )

    def _chat_chunks(
        self, request: JsonDict, request_id: str, created: int, model: str, done: Completion
    ) -> Iterator[JsonDict]:
        def chunk(delta: JsonDict, finish: str | None = None) -> JsonDict:
            return {
                "id": request_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }

        yield chunk({"role": "assistant", "content": ""})
        if done.reasoning:
            for word in done.reasoning.split(" "):
                yield chunk({"reasoning_content": word + " "})
        for index, call in enumerate(done.tool_calls):
            function = call["function"]
            head = {"index": index, "id": call["id"], "type": "function"}
            yield chunk({"tool_calls": [head | {"function": {"name": function["name"]}}]})
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": ""}}]})
            arguments = {"arguments": function["arguments"]}
            yield chunk({"tool_calls": [{"index": index, "function": arguments}]})
        if done.content:
            words = done.content.split(" ")
            for position, word in enumerate(words):
                yield chunk({"content": word if position == 0 else " " + word})
        yield chunk({}, done.finish_reason)
        options = request.get("stream_options")
        if isinstance(options, dict) and options.get("include_usage"):
            final = chunk({})
            final["choices"] = []
            final["usage"] = self._usage(done)
            yield final

    def route_completions(self) -> None:
        request = self.json_body()
        model = self._check_model(request.get("model"))
        self._check_engine()
        prompt = request.get("prompt")
        if prompt is None:
            raise ApiError(validation_error("missing", ("body", "prompt"), "Field required"))
        text = " ".join(prompt) if isinstance(prompt, list) else str(prompt)
        prompt_tokens = max(1, len(text.split()))
        max_tokens = self._max_tokens(request, prompt_tokens)
        if max_tokens is None:
            max_tokens = 16  # the OpenAI completions default, as in vLLM
        words = ("standin completion for: " + text[:50]).split()
        finish = "length" if len(words) > max_tokens else "stop"
        output = " " + " ".join(words[:max_tokens])
        completion = Completion(None, output, [], finish, prompt_tokens, len(output.split()))
        self.server.count(completion)
        request_id = f"cmpl-{random_hex()}"
        created = int(time.time())

        def choice(text_part: str, finish_reason: str | None) -> JsonDict:
            return {
                "index": 0,
                "text": text_part,
                "logprobs": None,
                "finish_reason": finish_reason,
                "stop_reason": None,
                "prompt_logprobs": None,
            }

        def response(choices: list[JsonDict]) -> JsonDict:
            return {
                "id": request_id,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": choices,
            }

        if request.get("stream"):
            self.send_stream(
                iter([response([choice(output, None)]), response([choice("", finish)])])
            )
            return
        body = response([choice(output, finish)])
        body["usage"] = self._usage(completion)
        body["kv_transfer_params"] = None
        self.send_json(200, body)

    def send_stream(self, chunks: Iterator[JsonDict]) -> None:
        """Send server-sent events (chunked transfer encoding on HTTP/1.1), then [DONE]."""
        chunked = self.request_version == "HTTP/1.1"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()

        def write(data: bytes) -> None:
            if chunked:
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            else:
                self.wfile.write(data)
            self.wfile.flush()

        try:
            for item in chunks:
                payload = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
                write(f"data: {payload}\n\n".encode())
            write(b"data: [DONE]\n\n")
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True


ROUTES: dict[str, dict[str, Route]] = {
    "/health": {"GET": StandinHandler.route_health},
    "/ping": {"GET": StandinHandler.route_health, "POST": StandinHandler.route_health},
    "/version": {"GET": StandinHandler.route_version},
    "/load": {"GET": StandinHandler.route_load},
    "/metrics": {"GET": StandinHandler.route_metrics},
    "/tokenize": {"POST": StandinHandler.route_tokenize},
    "/invocations": {"POST": StandinHandler.route_invocations},
    "/v1/models": {"GET": StandinHandler.route_models},
    "/v1/chat/completions": {"POST": StandinHandler.route_chat_completions},
    "/v1/completions": {"POST": StandinHandler.route_completions},
    "/standin/report": {"GET": StandinHandler.route_report},
    "/standin/requests": {"GET": StandinHandler.route_requests},
}


# --------------------------------------------------------------------------------------------
# main


class Terminated(BaseException):
    """Raised from the SIGTERM/SIGINT handler to stop waiting or serving."""


def _on_signal(signum: int, frame: FrameType | None) -> None:
    del frame
    raise Terminated(signal.Signals(signum).name)


def validate_parsed_serve_args(args: argparse.Namespace) -> None:
    if args.enable_auto_tool_choice and not args.tool_call_parser:
        raise TypeError("Error: --enable-auto-tool-choice requires --tool-call-parser")


def check_engine_config(config: ServerConfig) -> None:
    """The checks vLLM's engine does while it starts (ValueError on failure)."""
    args = config.args
    utilization = args.gpu_memory_utilization
    if utilization > 1.0:
        raise ValueError(f"GPU memory utilization must be less than 1.0. Got {utilization}.")
    if utilization <= 0.0:
        raise ValueError(f"GPU memory utilization must be greater than 0. Got {utilization}.")
    for name in ("tensor_parallel_size", "pipeline_parallel_size"):
        if getattr(args, name) < 1:
            raise ValueError(f"{name} must be a positive integer, got {getattr(args, name)}.")
    world_size = args.tensor_parallel_size * args.pipeline_parallel_size
    if config.gpu_count is not None and world_size > config.gpu_count:
        raise ValueError(
            "The number of required GPUs exceeds the total number of available GPUs in the "
            "placement group."
        )
    if args.max_model_len is not None and args.max_model_len < 1:
        raise ValueError(f"max_model_len must be positive, got {args.max_model_len}.")


def load_seconds(env: dict[str, str]) -> float:
    raw = env.get("STANDIN_LOAD_SECONDS", "").strip()
    if not raw:
        return 0.0
    value = float(raw)
    if value < 0:
        raise ValueError(f"STANDIN_LOAD_SECONDS must not be negative, got {raw!r}")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    argv_list = list(sys.argv[1:] if argv is None else argv)
    args = make_arg_parser().parse_args(argv_list)  # exits 2 on a bad flag or choice
    env = dict(os.environ)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    try:
        validate_parsed_serve_args(args)
    except TypeError as exc:
        return fail("TypeError", str(exc))
    config = build_config(args, argv_list, env)
    log("INFO", f"vLLM API server version {VLLM_VERSION}")
    log("INFO", f"args: {mask_argv(argv_list)}")
    server: StandinServer | None = None
    try:
        try:
            delay = load_seconds(env)
        except ValueError as exc:
            return fail("ValueError", str(exc))
        host = args.host if args.host is not None else DEFAULT_HOST
        server = StandinServer((host, args.port), config)
        try:
            server.server_bind()  # bound early like vLLM; not listening until loaded
        except OSError as exc:
            return fail("OSError", str(exc))
        config.report["port"] = server.server_port
        print("standin-report " + json.dumps(config.report, sort_keys=True), flush=True)
        try:
            check_engine_config(config)
        except ValueError as exc:
            return fail("ValueError", str(exc))
        log("INFO", f"Loading model {args.model} (stand-in: {delay:g} s)")
        time.sleep(delay)
        if env.get("STANDIN_EXIT_AFTER_LOAD", "") == "1":
            log("ERROR", "EngineCore failed to start.")
            return fail("RuntimeError", "Engine core initialization failed. See root cause above.")
        if config.fail_after_load:
            log("ERROR", "EngineCore encountered a fatal error (stand-in STANDIN_FAIL=1).")
        server.server_activate()
        log("INFO", f"Starting vLLM API server 0 on http://{host}:{server.server_port}")
        uvicorn_log("INFO", f"Started server process [{os.getpid()}]")
        uvicorn_log("INFO", "Waiting for application startup.")
        uvicorn_log("INFO", "Application startup complete.")
        server.serve_forever(poll_interval=0.2)
    except Terminated:
        uvicorn_log("INFO", "Shutting down")
        uvicorn_log("INFO", "Waiting for application shutdown.")
        uvicorn_log("INFO", "Application shutdown complete.")
        uvicorn_log("INFO", f"Finished server process [{os.getpid()}]")
    finally:
        if server is not None:
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
