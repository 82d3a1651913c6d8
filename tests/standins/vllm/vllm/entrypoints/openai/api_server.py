"""Stand-in for vLLM v0.34.0's OpenAI-compatible API server (``vllm/vllm-openai:v0.34.0``).

Test double only: it loads no model and needs no GPU. It speaks the real server's HTTP API
(paths, auth middleware, CORS, nested error bodies, chat and completion shapes), takes the real
CLI (every option string of v0.34.0's ``make_arg_parser`` with its value count and choices, as
data read by scripts/vllm_grammar.py; the options the stand-in acts on are typed like upstream,
the others are only accepted) and reports what it was given, so that a wrongly rendered command
or GPU assignment makes a test fail. Standard library only.

Entry points, as upstream:
  ``vllm serve [model_tag] [options]`` (the image's ENTRYPOINT, vllm/entrypoints/cli/main.py):
  ``--model X`` is moved to the positional model_tag with upstream's deprecation warning, and
  the positional model is served.
  ``python3 -m vllm.entrypoints.openai.api_server [options]`` (deprecated upstream): serves
  ``--model``; a positional model_tag is parsed and ignored.

Stand-in-only knobs (environment):
  STANDIN_LOAD_SECONDS     float, default 0: simulated model load; the port is bound but not
                           listening meanwhile, so connections are refused (like vLLM).
  STANDIN_FAIL=1           after the load, /health answers 503 (engine dead) for ever.
  STANDIN_EXIT_AFTER_LOAD=1  after the load, log an engine error and exit 1.
  STANDIN_CHUNK_DELAY      float seconds, default 0: a streamed response waits this long before
                           each event after the first (a model generating slowly), so a test
                           can act mid-stream. A client that goes away mid-stream is counted
                           as vLLM counts an aborted request (request_success_total with
                           finished_reason="abort"), not as a finished one.
  STANDIN_EVENT_TIMES=1    each streamed event starts with an SSE comment line
                           ``: sent <time.monotonic_ns()>`` (clients ignore comments), so a
                           bench on this machine can time each event from its write.
Stand-in-only paths (no auth): GET /standin/report returns the start-up report;
GET /standin/requests the last 200 requests to /v1 as they came (method, path, the sha256 of
the Authorization header or null, the JSON body), so tests check what the project sent rather
than what the stand-in answered.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import json
import os
import re
import secrets
import signal
import socket
import socketserver
import sys
import threading
import time
import urllib.parse
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import FrameType
from typing import Any

VLLM_VERSION = "0.34.0"
DEFAULT_MODEL = "Qwen/Qwen3-0.6B"
DEFAULT_MAX_MODEL_LEN = 32768
DEFAULT_HOST = "0.0.0.0"  # upstream binds all interfaces when --host is unset
DEFAULT_GPU_MEMORY_UTILIZATION = 0.92  # CacheConfig.resolved_gpu_memory_utilization

# ---- data read from vLLM v0.34.0 (names only; see plugins/module_utils/grammar_vllm.py) -----

#: ModelDType, as argparse sorts its choices
DTYPES = ["auto", "bfloat16", "float", "float16", "float32", "half"]
#: QUANTIZATION_METHODS (vllm/model_executor/layers/quantization/__init__.py), in its order
QUANTIZATIONS = [
    "awq",
    "auto_awq",
    "fp8",
    "w4afp8",
    "fbgemm_fp8",
    "modelopt",
    "modelopt_fp4",
    "modelopt_mxfp8",
    "modelopt_mixed",
    "auto_gptq",
    "gptq",
    "gptq_marlin",
    "awq_marlin",
    "humming",
    "compressed-tensors",
    "experts_int8",
    "quark",
    "moe_wna16",
    "torchao",
    "inc",
    "mxfp4",
    "gpt_oss_mxfp4",
    "deepseek_v4_fp8",
    "online",
    "fp8_per_tensor",
    "fp8_per_block",
    "fp8_per_channel",
    "int8_per_channel_weight_only",
    "nvfp4_per_token",
    "mxfp8",
    "lut_b_moe",
    "mxfp4_hadamard32",
]
#: DEPRECATED_QUANTIZATION_METHODS: refused unless --allow-deprecated-quantization
DEPRECATED_QUANTIZATIONS = ["fbgemm_fp8"]
#: KV_CACHE_DTYPES (vllm/config/cache.py CacheDType), in its order
KV_CACHE_DTYPES = [
    "auto",
    "float16",
    "bfloat16",
    "fp8",
    "fp8_e4m3",
    "fp8_e5m2",
    "fp8_inc",
    "fp8_ds_mla",
    "nvfp4_ds_mla",
    "turboquant_k8v4",
    "turboquant_4bit_nc",
    "turboquant_k3v4_nc",
    "turboquant_3bit_nc",
    "octave_k3v4",
    "octave_k3v3",
    "octave_k3v3_compact",
    "ultraquant_4bit",
    "int4_per_token_head",
    "int8_per_token_head",
    "fp8_per_token_head",
    "nvfp4",
    "nvfp4_4over6",
]
#: every option string of v0.34.0's ``make_arg_parser`` by the number of values it takes (0 for a
#: switch, 1, or argparse's nargs), as read by scripts/vllm_grammar.py (grammar_vllm.RELEASES)
_UPSTREAM_FLAGS_TEXT: dict[int | str, str] = {
    0: """
        --aggregate-engine-logging --allow-credentials --allow-deprecated-quantization
        --async-scheduling --checkpoint-prepare-on-startup --cohere-is-reasoning-model
        --cudagraph-metrics --data-parallel-external-lb --data-parallel-hybrid-lb
        --data-parallel-multi-port-external-lb --dcp-q-replicate --disable-auto-tool-choice
        --disable-batch-sharded-sampling --disable-cascade-attn --disable-chunked-mm-input
        --disable-chunked-prefill --disable-cumem-allocator --disable-custom-all-reduce
        --disable-dbo --disable-elastic-ep --disable-ep-weight-filter --disable-eplb
        --disable-expert-parallel --disable-extensible-kv-cache --disable-fastapi-docs
        --disable-fault-tolerance --disable-flash-late-interaction --disable-flashinfer-autotune
        --disable-force-include-usage --disable-hc-sp --disable-hybrid-kv-cache-manager
        --disable-layerwise-nvtx-tracing --disable-log-deltas --disable-log-outputs
        --disable-log-requests --disable-log-stats --disable-logging-iteration-details
        --disable-lora --disable-mamba-cache-stochastic-rounding
        --disable-mamba-shared-prefix-checkpoint --disable-mfu-metrics
        --disable-mixed-moe-lora-format --disable-mm-embeds --disable-moe-shared-loras
        --disable-nccl-comm-suspend --disable-nccl-for-dp-synchronization --disable-offline-docs
        --disable-per-request-metrics --disable-prefix-caching --disable-prompt-embeds
        --disable-prompt-tokens-details --disable-request-id-headers
        --disable-return-routed-experts --disable-scale-out --disable-server-load-tracking
        --disable-shm-tensor-arena --disable-sleep-mode --disable-sliding-window
        --disable-ssl-refresh --disable-tokenizer-info-endpoint --disable-tower-connector-lora
        --disable-trace-replay --disable-uvicorn-access-log --enable-auto-tool-choice
        --enable-batch-sharded-sampling --enable-cascade-attn --enable-chunked-mm-input
        --enable-chunked-prefill --enable-cumem-allocator --enable-custom-all-reduce --enable-dbo
        --enable-elastic-ep --enable-ep-weight-filter --enable-eplb --enable-expert-parallel
        --enable-extensible-kv-cache --enable-fastapi-docs --enable-fault-tolerance
        --enable-flash-late-interaction --enable-flashinfer-autotune --enable-force-include-usage
        --enable-hc-sp --enable-hybrid-kv-cache-manager --enable-layerwise-nvtx-tracing
        --enable-log-deltas --enable-log-outputs --enable-log-requests
        --enable-logging-iteration-details --enable-lora --enable-mamba-cache-stochastic-rounding
        --enable-mamba-shared-prefix-checkpoint --enable-mfu-metrics --enable-mixed-moe-lora-format
        --enable-mm-embeds --enable-moe-shared-loras --enable-nccl-comm-suspend
        --enable-nccl-for-dp-synchronization --enable-offline-docs --enable-per-request-metrics
        --enable-prefix-caching --enable-prompt-embeds --enable-prompt-tokens-details
        --enable-request-id-headers --enable-return-routed-experts --enable-scale-out
        --enable-server-load-tracking --enable-shm-tensor-arena --enable-sleep-mode
        --enable-sliding-window --enable-ssl-refresh --enable-tokenizer-info-endpoint
        --enable-tower-connector-lora --enable-trace-replay --enable-uvicorn-access-log
        --enforce-eager --exclude-tools-when-tool-choice-none --fail-on-environ-validation
        --fully-sharded-loras --grpc --headless --help --interleave-mm-strings
        --jit-monitor-verbose --kv-cache-metrics --kv-sharing-fast-prefill --language-model-only
        --log-error-stack --long-prefill-token-threshold-adaptive --mm-device-do-normalize
        --mm-encoder-only --monokernel --no-allow-credentials --no-allow-deprecated-quantization
        --no-async-scheduling --no-checkpoint-prepare-on-startup --no-cohere-is-reasoning-model
        --no-cudagraph-metrics --no-data-parallel-external-lb --no-data-parallel-hybrid-lb
        --no-dcp-q-replicate --no-disable-cascade-attn --no-disable-chunked-mm-input
        --no-disable-custom-all-reduce --no-disable-fastapi-docs
        --no-disable-hybrid-kv-cache-manager --no-disable-nccl-for-dp-synchronization
        --no-disable-sliding-window --no-disable-uvicorn-access-log --no-enable-auto-tool-choice
        --no-enable-batch-sharded-sampling --no-enable-chunked-prefill --no-enable-cumem-allocator
        --no-enable-dbo --no-enable-elastic-ep --no-enable-ep-weight-filter --no-enable-eplb
        --no-enable-expert-parallel --no-enable-extensible-kv-cache --no-enable-fault-tolerance
        --no-enable-flash-late-interaction --no-enable-flashinfer-autotune
        --no-enable-force-include-usage --no-enable-hc-sp --no-enable-layerwise-nvtx-tracing
        --no-enable-log-deltas --no-enable-log-outputs --no-enable-log-requests
        --no-enable-logging-iteration-details --no-enable-lora
        --no-enable-mamba-cache-stochastic-rounding --no-enable-mamba-shared-prefix-checkpoint
        --no-enable-mfu-metrics --no-enable-mixed-moe-lora-format --no-enable-mm-embeds
        --no-enable-moe-shared-loras --no-enable-nccl-comm-suspend --no-enable-offline-docs
        --no-enable-per-request-metrics --no-enable-prefix-caching --no-enable-prompt-embeds
        --no-enable-prompt-tokens-details --no-enable-request-id-headers
        --no-enable-return-routed-experts --no-enable-scale-out --no-enable-server-load-tracking
        --no-enable-shm-tensor-arena --no-enable-sleep-mode --no-enable-ssl-refresh
        --no-enable-tokenizer-info-endpoint --no-enable-tower-connector-lora
        --no-enable-trace-replay --no-enforce-eager --no-exclude-tools-when-tool-choice-none
        --no-fail-on-environ-validation --no-fully-sharded-loras --no-interleave-mm-strings
        --no-jit-monitor-verbose --no-kv-cache-metrics --no-kv-sharing-fast-prefill
        --no-language-model-only --no-log-error-stack --no-long-prefill-token-threshold-adaptive
        --no-mm-device-do-normalize --no-mm-encoder-only --no-monokernel --no-numa-bind
        --no-ray-workers-use-nsight --no-return-sampling-mask --no-return-tokens-as-token-ids
        --no-scheduler-reserve-full-isl --no-shuffle-safetensors-files --no-skip-mm-profiling
        --no-skip-tokenizer-init --no-sleep-mode-offload-cudagraph --no-specialize-active-lora
        --no-swa-bounded-replay --no-tokens-only --no-trust-remote-code
        --no-trust-request-chat-template --no-trust-request-mm-kwargs --no-use-fp64-gumbel
        --no-use-replayssm --no-use-tqdm-on-load --numa-bind --ray-workers-use-nsight
        --return-sampling-mask --return-tokens-as-token-ids --scheduler-reserve-full-isl
        --shuffle-safetensors-files --skip-mm-profiling --skip-tokenizer-init
        --sleep-mode-offload-cudagraph --specialize-active-lora --swa-bounded-replay --tokens-only
        --trust-remote-code --trust-request-chat-template --trust-request-mm-kwargs
        --use-fp64-gumbel --use-replayssm --use-tqdm-on-load -dpe -dph -dpm -ep -h
    """,
    1: """
        --additional-config --all2all-backend --allowed-headers --allowed-local-media-path
        --allowed-methods --allowed-origins --anthropic-disabled-thinking-effort --api-server-count
        --attention-backend --attention-config --aux-output-config --block-size
        --cache-aware-admission-threshold --cache-aware-admission-window --chat-template
        --chat-template-content-format --code-revision --cohere-format --compilation-config
        --config --config-format --convert --cp-kv-cache-interleave-size
        --cpu-distributed-timeout-seconds --cpu-offload-gb --custom-histogram-buckets
        --data-parallel-address --data-parallel-backend --data-parallel-rank
        --data-parallel-rpc-port --data-parallel-size --data-parallel-size-local
        --data-parallel-start-rank --data-parallel-supervisor-port --dbo-decode-token-threshold
        --dbo-prefill-token-threshold --dcp-comm-backend --dcp-kv-cache-interleave-size
        --decode-context-parallel-size --default-chat-template-kwargs --default-mm-loras
        --device-ids --device-memory-utilization --diffusion-config
        --disable-access-log-for-endpoints --distributed-executor-backend
        --distributed-timeout-seconds --download-dir --dp-supervisor-probe-failure-threshold
        --dp-supervisor-probe-interval-s --dp-supervisor-probe-timeout-s --dp-sync-interval --dtype
        --ec-manager-config --ec-transfer-config --elastic-ep-max-dp-size --engram-config
        --eplb-config --expert-placement-strategy --fault-tolerance-config --fingerprint-mode
        --fingerprint-value --gdn-prefill-backend --generation-config --gpu-memory-utilization
        --grpc-port --h11-max-header-count --h11-max-incomplete-event-size
        --headless-client-handshake-address --hf-config-path --hf-overrides --host
        --io-processor-plugin --ir-op-priority --jit-monitor-mode --kda-decode-backend
        --kda-prefill-backend --kernel-config --kv-cache-dtype --kv-cache-memory-bytes
        --kv-cache-metrics-sample --kv-events-config --kv-offloading-backend --kv-offloading-size
        --kv-transfer-config --limit-mm-per-prompt --linear-backend --load-format --log-config-file
        --log-level --logging-config --logprobs-mode --long-prefill-token-threshold --lora-dtype
        --mamba-backend --mamba-block-size --mamba-cache-dtype --mamba-cache-mode
        --mamba-cache-philox-rounds --mamba-ssm-cache-dtype --mamba-ssu-algorithm --master-addr
        --master-port --max-cpu-loras --max-cudagraph-capture-size --max-log-len --max-logprobs
        --max-lora-cls-labels --max-lora-rank --max-loras --max-model-len --max-num-active-seqs
        --max-num-batched-tokens --max-num-inflight-kv-loads --max-num-queued-reqs
        --max-num-queued-tokens --max-num-scheduled-tokens --max-num-seqs
        --max-parallel-loading-workers --media-io-kwargs --middleware --mm-encoder-attn-backend
        --mm-encoder-attn-dtype --mm-encoder-fp8-scale-path --mm-encoder-fp8-scale-save-margin
        --mm-encoder-fp8-scale-save-path --mm-encoder-tp-mode --mm-hasher-algorithm
        --mm-ipc-gpu-memory-gb --mm-processor-cache-gb --mm-processor-cache-type
        --mm-processor-device --mm-processor-kwargs --mm-shm-cache-max-object-size-mb
        --mm-tensor-ipc --model --model-class-overrides --model-impl --model-loader-extra-config
        --moe-backend --nnodes --node-rank --num-gpu-blocks-override --offload-backend
        --offload-group-size --offload-num-in-group --offload-prefetch-step --optimization-level
        --otlp-traces-endpoint --override-generation-config --per-request-spec-decode-metrics
        --performance-mode --pipeline-parallel-size --pooler-config --port
        --prefill-context-parallel-size --prefill-schedule-interval
        --prefix-cache-retention-interval --prefix-caching-hash-algo --prefix-match-unit
        --profiler-config --pt-load-map-location --quantization --quantization-config
        --reasoning-config --reasoning-effort-map --reasoning-parser --reasoning-parser-plugin
        --renderer-num-workers --replayssm-buffer-len --response-role --revision --root-path
        --runner --safetensors-load-strategy --safetensors-prefetch-block-size
        --safetensors-prefetch-num-threads --scheduler-cls --scheduling-policy --seed
        --show-hidden-metrics-for-version --shutdown-timeout --sleep-mode-backend
        --sparse-indexer-topk-backend --spec-method --spec-model --spec-tokens --speculative-config
        --sse-keep-alive-interval --ssl-ca-certs --ssl-cert-reqs --ssl-certfile --ssl-ciphers
        --ssl-keyfile --stream-interval --structured-outputs-config --tensor-parallel-size
        --tokenizer --tokenizer-mode --tokenizer-revision --tool-call-parser --tool-parser-plugin
        --tool-server --tool-strict-level --ubatch-size --uds --uvicorn-log-level
        --video-pruning-method --video-pruning-rate --watchdog-config --watermark
        --watermark-config --weight-transfer-config --worker-cls --worker-extension-cls -ac -asc
        -cc -dc -dcp -dp -dpa -dpb -dpl -dpn -dpp -dpr -n -pcp -pp -q -r -sc -tp
    """,
    "+": """
        --allowed-media-domains --api-key --collect-detailed-traces --cpu-offload-params
        --cudagraph-capture-sizes --ignore-patterns --kv-cache-dtype-skip-layers
        --logits-processors --lora-modules --lora-target-modules --numa-bind-cpus --numa-bind-nodes
        --offload-params --served-model-name --sleep-preserve-parameter-names
    """,
    "?": """
        --hf-token
    """,
}
UPSTREAM_FLAGS: dict[str, int | str] = {
    name: arity for arity, text in _UPSTREAM_FLAGS_TEXT.items() for name in text.split()
}
#: argparse choices of v0.34.0's flags, as typed on the command line
_UPSTREAM_CHOICES_TEXT: dict[str, str] = {
    "--all2all-backend": "allgather_reducescatter deepep_high_throughput deepep_low_latency deepep_v2 flashinfer_all2allv flashinfer_nvlink_one_sided flashinfer_nvlink_two_sided moonep mori mori_high_throughput mori_low_latency naive nixl_ep pplx",
    "--anthropic-disabled-thinking-effort": "auto high low max medium none xhigh",
    "--chat-template-content-format": "auto openai string",
    "--collect-detailed-traces": "None all model worker",
    "--convert": "auto classify embed none",
    "--dcp-comm-backend": "None a2a ag_rs",
    "--dtype": "auto bfloat16 float float16 float32 half",
    "--expert-placement-strategy": "linear round_robin",
    "--fingerprint-mode": "custom full hash none",
    "--gdn-prefill-backend": "aiter_flydsl cutedsl flashinfer hip sycl triton",
    "--jit-monitor-mode": "error warn",
    "--kda-decode-backend": "auto flashinfer native triton",
    "--kda-prefill-backend": "auto flashinfer flashkda fused triton",
    "--kv-offloading-backend": "lmcache native",
    "--linear-backend": "aiter auto b12x conch cutlass deep_gemm emulation exllama fbgemm flashinfer_b12x flashinfer_cudnn flashinfer_cutedsl flashinfer_cutlass flashinfer_trtllm humming machete marlin torch triton xpu xpu_woq",
    "--log-level": "CRITICAL DEBUG ERROR INFO NOTSET WARNING",
    "--logprobs-mode": "processed_logits processed_logprobs raw_logits raw_logprobs",
    "--lora-dtype": "auto bfloat16 float16",
    "--mamba-cache-dtype": "auto bfloat16 float16 float32",
    "--mamba-cache-mode": "align none",
    "--mamba-ssm-cache-dtype": "auto bfloat16 float16 float32",
    "--mamba-ssu-algorithm": "None auto horizontal simple vertical",
    "--max-lora-rank": "1 128 16 256 32 320 512 64 8",
    "--mm-encoder-attn-dtype": "None fp8",
    "--mm-encoder-tp-mode": "data weights",
    "--mm-hasher-algorithm": "blake3 sha256 sha512",
    "--mm-processor-cache-type": "lru shm",
    "--mm-processor-device": "auto cpu cuda",
    "--mm-tensor-ipc": "direct_rpc torch_shm",
    "--moe-backend": "aiter aiter_mega_moe aiter_triton_mxfp4_bf16 aiter_triton_mxfp4_mxfp4 auto b12x batched_triton cutlass deep_gemm deep_gemm_mega_moe emulation flashinfer_b12x flashinfer_cutedsl flashinfer_cutlass flashinfer_moe_ep_cutedsl flashinfer_moe_ep_mega_deep_gemm flashinfer_trtllm flydsl hpc humming marlin rdna3 triton triton_unfused",
    "--offload-backend": "auto prefetch uva",
    "--per-request-spec-decode-metrics": "detailed none summary",
    "--performance-mode": "balanced interactivity throughput",
    "--prefix-caching-hash-algo": "sha256 sha256_cbor xxhash xxhash_cbor",
    "--runner": "auto draft generate pooling",
    "--safetensors-load-strategy": "None eager lazy prefetch torchao",
    "--scheduling-policy": "fcfs priority",
    "--sparse-indexer-topk-backend": "aiter auto cooperative deep_select flashinfer per_row persistent torch",
    "--tool-strict-level": "None auto function parameter",
    "--uvicorn-log-level": "critical debug error info trace warning",
    "--video-pruning-method": "evs vidcom2",
}
UPSTREAM_CHOICES: dict[str, tuple[str, ...]] = {
    flag: tuple(text.split()) for flag, text in _UPSTREAM_CHOICES_TEXT.items()
}
#: vLLM's tool-call parser registry (ToolParserManager.list_registered(), sorted)
_TOOL_CALL_PARSERS_TEXT = """
    apertus beam cohere_command3 cohere_command4 deepseek_v3 deepseek_v31 deepseek_v32 deepseek_v4
    deepseek_v41 dots ernie45 functiongemma gemma4 gigachat3 glm45 glm47 granite granite-20b-fc
    granite4 granite_toolcall_parser hermes hf hunyuan_a13b hy_v3 hy_v4 inkling internlm jamba
    k2_horizon kimi_k2 kimi_k3 lfm2 ling3 llama3_json llama4_json llama4_pythonic longcat mimo
    minicpm5 minimax_m2 minimax_m3 mistral muse muse_glimmer musespark olmo3 openai phi4_mini_json
    plamo3 poolside_v1 pythonic qwen3_coder qwen3_json qwen3_xml ripple seed_oss step3 step3p5
    step5 xlam zaya zaya_xml
"""
TOOL_CALL_PARSERS: list[str] = _TOOL_CALL_PARSERS_TEXT.split()
#: vLLM's reasoning parser registry (ReasoningParserManager.list_registered(), sorted)
_REASONING_PARSERS_TEXT = """
    beam cohere_command3 cohere_command4 deepseek_r1 deepseek_v3 deepseek_v4 deepseek_v41 ernie45
    gemma4 glm45 glm47 granite granite_thinking_parser hf holo2 hunyuan_a13b hy_v3 hy_v4 inkling
    k2_horizon kimi_k2 kimi_k3 ling3 mimo minicpmv minimax_m2 minimax_m2_append_think minimax_m3
    mistral muse muse_glimmer musespark nemotron_v3 olmo3 openai_gptoss plamo3 poolside_v1 qwen3
    ripple seed_oss step3 step3p5 step5 zaya
"""
REASONING_PARSERS: list[str] = _REASONING_PARSERS_TEXT.split()


GUARDED_PREFIXES = ("/v1", "/v2", "/inference", "/cohere")  # AuthenticationMiddleware
CORS_ALL_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")
CORS_SAFELISTED_HEADERS = {"Accept", "Accept-Language", "Content-Language", "Content-Type"}
ENGINE_DEAD_CLIENT_MESSAGE = "The server had an error while processing your request."
UNRESTRICTED_GPU_VALUES = {"", "all", "void", "none"}
PYDANTIC_DOCS = "https://errors.pydantic.dev/2.12/v"

JsonDict = dict[str, Any]


# --------------------------------------------------------------------------------------------
# logging (vLLM writes its log lines to stdout; tracebacks go to stderr)

_PROCESS_NAME = "MainProcess"  # vLLM names the API server process "APIServer" once it runs


def log(level: str, message: str, where: str = "entrypoints/.../api_server/entry.py") -> None:
    """Print one vLLM-style log line to stdout."""
    stamp = time.strftime("%m-%d %H:%M:%S")
    print(f"({_PROCESS_NAME} pid={os.getpid()}) {level} {stamp} [{where}] {message}", flush=True)


def uvicorn_log(level: str, message: str) -> None:
    """Print one uvicorn-style log line to stdout."""
    print(f"{level + ':':<10}{message}", flush=True)


def fail(exc_type: str, message: str, where: str = "run_server") -> int:
    """Report a start-up failure the way an uncaught Python exception does; return 1."""
    print("Traceback (most recent call last):", file=sys.stderr)
    print(f'  File "vllm/entrypoints/launchers/api_server/entry.py", in {where}', file=sys.stderr)
    print(f"{exc_type}: {message}", file=sys.stderr, flush=True)
    return 1


def pydantic_error(model: str, loc: str | None, message: str, kind: str, value: Any) -> str:
    """The text of a pydantic ValidationError with one error, as vLLM's config classes (pydantic
    dataclasses) raise it; a whole-model error (``loc`` None) shows the constructor's
    arguments, abridged here."""
    where = f"{loc}\n" if loc else ""
    shown, input_type = (
        (repr(value), type(value).__name__) if loc else ("ArgsKwargs((), {...})", "ArgsKwargs")
    )
    return (
        f"1 validation error for {model}\n{where}  {message} [type={kind}, "
        f"input_value={shown}, input_type={input_type}]\n"
        f"    For further information visit {PYDANTIC_DOCS}/{kind}"
    )


class StartupError(Exception):
    """A start-up failure: the exception type upstream raises and its message."""

    def __init__(self, exc_type: str, message: str) -> None:
        super().__init__(message)
        self.exc_type = exc_type
        self.message = message


# --------------------------------------------------------------------------------------------
# CLI


def human_readable_int(value: str) -> int:
    """``1k`` = 1000, ``1K`` = 1024, ``25.6k`` = 25600 (vllm.utils.argparse_utils)."""
    value = value.strip()
    match = re.fullmatch(r"(\d+(?:\.\d+)?)([kKmMgGtT])", value)
    if match:
        number, suffix = match.groups()
        decimal = {"k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12}
        binary = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
        if suffix in decimal:
            return int(float(number) * decimal[suffix])
        try:
            return int(number) * binary[suffix]
        except ValueError as exc:
            raise argparse.ArgumentTypeError(
                f"Decimals are not allowed with binary suffixes like {suffix}. Did you mean to "
                f"use {number}{suffix.lower()} instead?"
            ) from exc
    return int(value)


def human_readable_int_or_auto(value: str) -> int:
    """Like human_readable_int; ``-1`` or ``auto`` give -1 (fit the context to the memory)."""
    value = value.strip()
    if value == "-1" or value.lower() == "auto":
        return -1
    return human_readable_int(value)


def optional_type(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """vLLM's optional_type: "" and "None" give None, anything else ``kind(value)``."""

    def convert(value: str) -> Any:
        return None if value in ("", "None") else kind(value)

    convert.__name__ = getattr(kind, "__name__", "value")
    return convert


def parse_reasoning_parser(value: str) -> str:
    """``none`` (any case) is the unset default, as upstream."""
    return "" if value.lower() == "none" else value


def resolve_flag(name: str) -> str | None:
    """The upstream option that ``name`` (underscores allowed) spells or abbreviates, if one."""
    name = name.split("=", 1)[0]
    if name.startswith("--"):
        name = "--" + name[2:].split(".", 1)[0].replace("_", "-")
    if name in UPSTREAM_FLAGS:
        return name
    hits = [flag for flag in UPSTREAM_FLAGS if name.startswith("--") and flag.startswith(name)]
    return hits[0] if len(hits) == 1 else None


class FlexibleArgumentParser(argparse.ArgumentParser):
    """vLLM's ArgumentParser: ``--flag_name`` is ``--flag-name``, ``-O3`` is
    ``--optimization-level 3``, ``--json-arg.key value`` is ``--json-arg '{"key": value}'``, and
    ``vllm serve --model X`` is ``vllm serve X`` (with a deprecation warning)."""

    def parse_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> argparse.Namespace:
        raw = list(sys.argv[1:] if args is None else args)
        if raw and raw[0] == "serve":
            raw = move_model_option(raw)
        normalised: list[str] = []
        for index, arg in enumerate(raw):
            if arg.startswith("--"):
                key, sep, value = arg.partition("=")
                head, dot, tail = key.partition(".")
                normalised.append(head.replace("_", "-") + dot + tail + sep + value)
            elif arg.startswith("-O") and arg != "-O":
                level = arg[3:] if arg[2] == "=" else arg[2:]
                normalised += ["--optimization-level", level]
            elif arg == "-O" and index + 1 < len(raw) and raw[index + 1] in {"0", "1", "2", "3"}:
                normalised.append("--optimization-level")
            else:
                normalised.append(arg)
        return super().parse_args(collapse_dotted(normalised), namespace)


def move_model_option(args: list[str]) -> list[str]:
    """``vllm serve ... --model X ...`` becomes ``vllm serve X ...``, as upstream does."""
    index = next((i for i, a in enumerate(args) if re.match(r"^--model(=.+|$)", a)), None)
    if index is not None:
        log(
            "WARNING",
            "With `vllm serve`, you should provide the model as a positional argument or in a "
            "config file instead of via the `--model` option. The `--model` option will be "
            "removed in a future version.",
            "utils/argparse_utils.py:330",
        )
        if args[index] == "--model":
            if index + 1 >= len(args):
                raise StartupError("IndexError", "list index out of range")
            model_tag, rest = args[index + 1], index + 2
        else:
            model_tag, rest = args[index].removeprefix("--model="), index + 1
        args = ["serve", model_tag, *args[1:index], *args[rest:]]
    if (
        len(args) > 1
        and args[1].startswith("-")
        and not any(re.match(r"^--config(=.+|$)", a) for a in args)
        and any(re.match(r"^--served[-_]model[-_]name(=.+|$)", a) for a in args)
    ):
        raise StartupError(
            "ValueError",
            "`model` should be provided as the first positional argument when using `vllm "
            "serve`. i.e. `vllm serve <model> --<arg> <value>`.",
        )
    return args


def collapse_dotted(args: list[str]) -> list[str]:
    """``--json-arg.key value`` become ``--json-arg '{"key": value}'`` (appended at the end);
    a plain flag given twice is logged as a duplicate key, as upstream."""
    kept: list[str] = []
    merged: dict[str, JsonDict] = {}
    seen: set[str] = set()
    duplicates: list[str] = []
    skip = False
    for index, arg in enumerate(args):
        if skip:
            skip = False
            continue
        if arg.startswith("--") and "." not in arg:
            name = arg.split("=", 1)[0]
            if name in seen:
                duplicates.append(name)
            seen.add(name)
            kept.append(arg)
            continue
        if arg.startswith("-") and "." in arg:
            key, value = arg, None
            if "=" in arg:
                key, value = arg.split("=", 1)
                if "." not in key:
                    kept.append(arg)
                    continue
            elif index + 1 < len(args):
                value, skip = args[index + 1], True
            else:
                kept.append(arg)
                continue
            if key.endswith("+"):
                key, value = key[:-1], json.dumps(value.split(","))
            flag, *path = key.split(".")
            try:
                parsed: Any = json.loads(value)
            except ValueError:
                try:
                    parsed = human_readable_int(value)
                except (ValueError, argparse.ArgumentTypeError):
                    parsed = value
            target = merged.setdefault(flag, {})
            for part in path[:-1]:
                target = target.setdefault(part, {})
            previous = target.get(path[-1])
            if isinstance(parsed, list) and isinstance(previous, list):
                previous += parsed
            else:
                target[path[-1]] = parsed
            continue
        kept.append(arg)
    if duplicates:
        log(
            "WARNING",
            f"Found duplicate keys {', '.join(duplicates)}",
            "utils/argparse_utils.py:495",
        )
    for flag, value in merged.items():
        kept += [flag, json.dumps(value)]
    return kept


class EnableDisableAction(argparse.Action):
    """A switch written ``--x``, ``--no-x`` and, for ``--enable-x``, ``--disable-x``."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        kwargs.pop("nargs", None)
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        negative = bool(option_string) and (
            option_string.startswith("--no-") or option_string == self._inverse()
        )
        setattr(namespace, self.dest, not negative)

    def _inverse(self) -> str | None:
        first = self.option_strings[0]
        for prefix, inverse in (("--enable-", "--disable-"), ("--disable-", "--enable-")):
            if first.startswith(prefix):
                return inverse + first.removeprefix(prefix)
        return None


def switch_strings(flag: str) -> list[str]:
    """The option strings upstream registers for the boolean flag ``flag``."""
    strings = [flag, "--no-" + flag[2:]]
    for prefix, inverse in (("--enable-", "--disable-"), ("--disable-", "--enable-")):
        if flag.startswith(prefix):
            strings.append(inverse + flag.removeprefix(prefix))
    return [s for s in strings if s in UPSTREAM_FLAGS]


def make_arg_parser(parser: FlexibleArgumentParser | None = None) -> FlexibleArgumentParser:
    """vLLM v0.34.0's server CLI: the options the stand-in acts on, typed like upstream, then
    every other upstream option string with its value count and choices (accepted, unused)."""
    if parser is None:
        parser = FlexibleArgumentParser(description="vLLM OpenAI-Compatible RESTful API server.")
    add = parser.add_argument

    def switch(flag: str, default: bool | None = False) -> None:
        add(*switch_strings(flag), action=EnableDisableAction, default=default)

    def choices(flag: str) -> list[str]:
        return list(UPSTREAM_CHOICES[flag])

    add("model_tag", type=str, nargs="?", help="The model tag to serve.")
    # frontend
    add("--host", type=optional_type(str), default=None, help="Host name.")
    add("--port", type=int, default=8000, help="Port number.")
    add("--uvicorn-log-level", type=str, default="info", choices=choices("--uvicorn-log-level"))
    switch("--disable-uvicorn-access-log")
    switch("--allow-credentials")
    add("--allowed-origins", type=json.loads, default=[])
    add("--allowed-methods", type=json.loads, default=["*"])
    add("--allowed-headers", type=json.loads, default=["*"])
    add("--api-key", type=optional_type(str), nargs="+", default=None)
    add("--root-path", type=optional_type(str), default=None)
    add("--chat-template", type=optional_type(str), default=None)
    add(
        "--chat-template-content-format",
        type=str,
        default="auto",
        choices=choices("--chat-template-content-format"),
    )
    add("--default-chat-template-kwargs", type=json.loads, default=None)
    add("--response-role", type=str, default="assistant")
    switch("--enable-auto-tool-choice")
    switch("--exclude-tools-when-tool-choice-none")
    add("--tool-call-parser", type=optional_type(str), default=None)
    switch("--enable-request-id-headers")
    switch("--enable-server-load-tracking")
    switch("--enable-force-include-usage")
    switch("--enable-prompt-tokens-details")
    switch("--enable-log-requests")
    switch("--enable-log-outputs")
    add("--fingerprint-mode", type=str, default="full", choices=choices("--fingerprint-mode"))
    add("--fingerprint-value", type=optional_type(str), default=None)
    # model / engine
    add("--model", type=str, default=DEFAULT_MODEL, help="Name or path of the model.")
    add("--served-model-name", type=optional_type(str), nargs="+", default=None)
    add("--max-model-len", type=optional_type(human_readable_int_or_auto), default=None)
    add("--dtype", type=str, default="auto", choices=choices("--dtype"))
    add("--quantization", "-q", type=optional_type(str), default=None)
    switch("--allow-deprecated-quantization")
    add("--kv-cache-dtype", type=str, default="auto")
    add("--reasoning-parser", type=parse_reasoning_parser, default="")
    # parallelism / cache / scheduler
    add("--tensor-parallel-size", "-tp", type=int, default=1)
    add("--pipeline-parallel-size", "-pp", type=int, default=1)
    add("--distributed-executor-backend", type=optional_type(str), default=None)
    add("--gpu-memory-utilization", type=optional_type(float), default=None)
    add("--max-num-seqs", type=optional_type(int), default=None)
    switch("--enable-prefix-caching", default=None)
    switch("--enable-chunked-prefill", default=None)
    known = {s for action in parser._actions for s in action.option_strings}
    for flag, arity in UPSTREAM_FLAGS.items():
        if flag in known:
            continue
        dest = "standin_other_" + flag.lstrip("-").replace("-", "_")
        kwargs: JsonDict = {"dest": dest, "default": None, "help": argparse.SUPPRESS}
        if arity == 0:
            kwargs["action"] = "store_true"
        else:
            if arity != 1:
                kwargs["nargs"] = arity
            if flag in UPSTREAM_CHOICES:
                kwargs["choices"] = choices(flag)
        add(flag, **kwargs)
    return parser


def mask_argv(argv: Sequence[str]) -> list[str]:
    """Return argv with every ``--api-key`` value (any spelling) replaced by ``***``."""
    masked: list[str] = []
    in_key_values = False
    for arg in argv:
        if arg.startswith("--") and resolve_flag(arg) == "--api-key":
            masked.append(arg.split("=", 1)[0] + "=***" if "=" in arg else arg)
            in_key_values = "=" not in arg
            continue
        if in_key_values and not arg.startswith("-"):
            masked.append("***")
            continue
        in_key_values = False
        masked.append(arg)
    return masked


def non_default_args(args: argparse.Namespace, parser: argparse.ArgumentParser) -> JsonDict:
    """The parsed arguments that differ from their defaults, the API key redacted."""
    defaults = vars(parser.parse_known_args([])[0])
    changed: JsonDict = {}
    for name, value in vars(args).items():
        if name in defaults and defaults[name] != value:
            shown = name.removeprefix("standin_other_")
            changed[shown] = "***" if shown in ("api_key", "hf_token") else value
    return changed


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
    entrypoint: str
    model: str
    api_keys: list[bytes]
    gpus: list[str] | None
    gpu_count: int | None
    served_model_names: list[str]
    max_model_len: int
    fingerprint: str | None
    fail_after_load: bool
    report: JsonDict = field(default_factory=dict)
    chunk_delay: float = 0.0
    event_times: bool = False

    @property
    def auto_tools(self) -> bool:
        """A tool parser runs only with --enable-auto-tool-choice (ParserManager)."""
        return bool(self.args.enable_auto_tool_choice and self.args.tool_call_parser)


def system_fingerprint(args: argparse.Namespace, model: str) -> str | None:
    """``system_fingerprint`` of the responses, per --fingerprint-mode."""
    if args.fingerprint_mode == "none":
        return None
    if args.fingerprint_mode == "custom":
        return args.fingerprint_value
    config = json.dumps(
        [model, args.dtype, args.quantization, args.max_model_len, args.kv_cache_dtype],
        sort_keys=True,
    )
    hash8 = hashlib.sha256(config.encode()).hexdigest()[:8]
    parts = [f"vllm-{VLLM_VERSION}"]
    if args.fingerprint_mode == "full":
        if args.tensor_parallel_size > 1:
            parts.append(f"tp{args.tensor_parallel_size}")
        if args.pipeline_parallel_size > 1:
            parts.append(f"pp{args.pipeline_parallel_size}")
    return "-".join([*parts, hash8])


def build_config(
    args: argparse.Namespace, argv: list[str], env: dict[str, str], entrypoint: str
) -> ServerConfig:
    # `vllm serve` serves its positional model; `python -m ...api_server` ignores it
    model = args.model_tag if entrypoint == "vllm serve" and args.model_tag else args.model
    # --api-key takes precedence over VLLM_API_KEY; empty keys are dropped
    keys = [key for key in (args.api_key or [env.get("VLLM_API_KEY")]) if key]
    gpus, count = visible_gpus(env)
    names = [n for n in args.served_model_name or [] if n] or [model]
    max_model_len = args.max_model_len
    if max_model_len is None or max_model_len == -1:
        max_model_len = DEFAULT_MAX_MODEL_LEN
    config = ServerConfig(
        args=args,
        argv=mask_argv(argv),
        entrypoint=entrypoint,
        model=model,
        api_keys=[hashlib.sha256(key.encode()).digest() for key in keys],
        gpus=gpus,
        gpu_count=count,
        served_model_names=names,
        max_model_len=max_model_len,
        fingerprint=system_fingerprint(args, model),
        fail_after_load=env.get("STANDIN_FAIL", "") == "1",
        chunk_delay=chunk_delay(env),
        event_times=env.get("STANDIN_EVENT_TIMES", "") == "1",
    )
    quantization = args.quantization.lower() if args.quantization else None
    utilization = args.gpu_memory_utilization
    config.report = {
        "standin": "vllm",
        "version": VLLM_VERSION,
        "entrypoint": entrypoint,
        "model": model,
        "served_model_names": names,
        "host": args.host if args.host is not None else DEFAULT_HOST,
        "port": args.port,
        "gpus": gpus,
        "nvidia_visible_devices": env.get("NVIDIA_VISIBLE_DEVICES"),
        "cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES"),
        "tensor_parallel_size": args.tensor_parallel_size,
        "pipeline_parallel_size": args.pipeline_parallel_size,
        "gpu_memory_utilization": DEFAULT_GPU_MEMORY_UTILIZATION
        if utilization is None
        else utilization,
        "max_model_len": args.max_model_len,
        "quantization": quantization,
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
# start-up checks


def validate_parsed_serve_args(args: argparse.Namespace) -> None:
    """vllm.entrypoints.common.cli_args.validate_parsed_serve_args (the checks modelled)."""
    if args.enable_auto_tool_choice and not args.tool_call_parser:
        raise StartupError(
            "TypeError", "Error: --enable-auto-tool-choice requires --tool-call-parser"
        )
    if args.enable_log_outputs and not args.enable_log_requests:
        raise StartupError(
            "TypeError", "Error: --enable-log-outputs requires --enable-log-requests"
        )


def validate_api_server_args(args: argparse.Namespace) -> None:
    """vllm.entrypoints.common.cli_args.validate_api_server_args: the tool parser is looked
    up in the registry only with --enable-auto-tool-choice."""
    if args.enable_auto_tool_choice and args.tool_call_parser not in TOOL_CALL_PARSERS:
        message = (
            f"invalid tool call parser: {args.tool_call_parser} "
            f"(chose from {{ {','.join(TOOL_CALL_PARSERS)} }})"
        )
        raise StartupError("KeyError", repr(message))


def check_engine_config(config: ServerConfig) -> None:
    """The checks vLLM's engine config does while it starts (EngineArgs.create_engine_config:
    ModelConfig, CacheConfig, ParallelConfig, then VllmConfig's reasoning parser)."""
    args = config.args

    def invalid(model: str, message: str) -> StartupError:
        error = pydantic_error(model, None, f"Value error, {message}", "value_error", None)
        return StartupError("pydantic_core._pydantic_core.ValidationError", error)

    quantization = args.quantization.lower() if args.quantization else None
    if quantization is not None and quantization not in QUANTIZATIONS:
        raise invalid(
            "ModelConfig",
            f"Unknown quantization method: {quantization}. Must be one of {QUANTIZATIONS}.",
        )
    if quantization in DEPRECATED_QUANTIZATIONS and not args.allow_deprecated_quantization:
        message = (
            "The quantization method %s is deprecated and will be removed in future versions "
            "of vLLM. To bypass, set `--allow-deprecated-quantization`."
        )
        raise invalid("ModelConfig", repr((message, quantization)))
    length = args.max_model_len
    if length is not None and length != -1 and length < 1:
        raise invalid(
            "ModelConfig",
            f"max_model_len must be a positive integer, got int: {length!r}. "
            "Example: max_model_len=2048",
        )
    utilization = args.gpu_memory_utilization
    if utilization is not None and not 0 < utilization <= 1:
        bound = "less than or equal to 1" if utilization > 1 else "greater than 0"
        kind = "less_than_equal" if utilization > 1 else "greater_than"
        error = pydantic_error(
            "CacheConfig", "gpu_memory_utilization", f"Input should be {bound}", kind, utilization
        )
        raise StartupError("pydantic_core._pydantic_core.ValidationError", error)
    if args.kv_cache_dtype not in KV_CACHE_DTYPES:
        error = pydantic_error(
            "CacheConfig",
            "cache_dtype",
            f"Value error, Invalid kv_cache_dtype: {args.kv_cache_dtype!r}. "
            f"Valid values are: {KV_CACHE_DTYPES}",
            "value_error",
            args.kv_cache_dtype,
        )
        raise StartupError("pydantic_core._pydantic_core.ValidationError", error)
    for name in ("pipeline_parallel_size", "tensor_parallel_size"):
        value = getattr(args, name)
        if value < 1:
            error = pydantic_error(
                "ParallelConfig",
                name,
                "Input should be greater than or equal to 1",
                "greater_than_equal",
                value,
            )
            raise StartupError("pydantic_core._pydantic_core.ValidationError", error)
    world_size = args.tensor_parallel_size * args.pipeline_parallel_size
    if (
        args.distributed_executor_backend is None
        and world_size > 1
        and config.gpu_count is not None
        and config.gpu_count < world_size
    ):
        raise invalid(
            "ParallelConfig",
            f"World size ({world_size}) is larger than the number of available GPUs "
            f"({config.gpu_count}) in this node. If this is intentional and you are using:\n"
            "- ray, set '--distributed-executor-backend ray'.\n"
            "- multiprocessing, set '--nnodes' appropriately.",
        )
    parser = args.reasoning_parser
    if parser and parser not in REASONING_PARSERS:
        message = (
            f"Reasoning parser '{parser}' not found. "
            f"Available parsers: {', '.join(REASONING_PARSERS)}"
        )
        raise StartupError("KeyError", repr(message))


def load_seconds(env: dict[str, str]) -> float:
    return seconds_knob(env, "STANDIN_LOAD_SECONDS")


def chunk_delay(env: dict[str, str]) -> float:
    return seconds_knob(env, "STANDIN_CHUNK_DELAY")


def seconds_knob(env: dict[str, str], name: str) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return 0.0
    value = float(raw)
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {raw!r}")
    return value


# --------------------------------------------------------------------------------------------
# request helpers


def random_uuid() -> str:
    """vllm.utils.random_uuid: 16 hex digits."""
    return f"{uuid.uuid4().int & (2**64 - 1):016x}"


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


def sanitize_message(message: str) -> str:
    """vLLM strips memory addresses, tracebacks and file paths from error messages."""
    message = re.sub(r" at 0x[0-9a-fA-F]+>", ">", message)
    message = re.sub(r'\n?\s*File "[^"]+", line \d+, in \S+(\n\s+.*)?', "", message)
    message = re.sub(r"/(?:home|usr|opt|var|tmp|root|lib|mnt|srv)(?:/[\w.\-]+)+", "<path>", message)
    if "." in message:
        message = re.sub(r"(?>/[\w\-]+)+/[\w\-]+\.\w+", "<path>", message)
    return message.strip()


class ApiError(Exception):
    """An error response: vLLM's ErrorResponse ``{"error": {message, type, param, code}}``, or
    FastAPI's own ``{"detail": ...}`` when ``detail`` is set."""

    def __init__(
        self,
        message: str,
        err_type: str = "BadRequestError",
        code: int = 400,
        param: str | None = None,
        detail: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.err_type = err_type
        self.code = code
        self.param = param
        self.detail = detail

    def body(self) -> JsonDict:
        if self.detail:
            return {"detail": self.message}
        return {
            "error": {
                "message": sanitize_message(self.message),
                "type": self.err_type,
                "param": self.param,
                "code": self.code,
            }
        }


def vllm_validation_error(
    message: str, parameter: str | None = None, value: Any = None
) -> ApiError:
    """A VLLMValidationError as the server answers it: 400 BadRequestError, its parameter as
    ``param`` and ``(parameter=..., value=...)`` appended to the message."""
    extras = []
    if parameter is not None:
        extras.append(f"parameter={parameter}")
    if value is not None:
        extras.append(f"value={value}")
    text = f"{message} ({', '.join(extras)})" if extras else message
    return ApiError(text, param=parameter)


def summarize_input(value: Any) -> Any:
    """vLLM's bounded stand-in for a validation error's ``input``."""
    if isinstance(value, str):
        return value[:200] + "...[truncated]" if len(value) > 200 else value
    if isinstance(value, list | tuple | set | frozenset | dict):
        return f"<{type(value).__name__} of {len(value)} items>"
    text = str(value)
    return text[:200] + "...[truncated]" if len(text) > 200 else text


def request_validation_error(errors: list[JsonDict | str]) -> ApiError:
    """FastAPI's RequestValidationError as vLLM answers it (400 "Bad Request", the first
    error's location as ``param``)."""
    param = None
    if errors and isinstance(errors[0], dict):
        param = ".".join(str(part) for part in errors[0]["loc"])
    lines = []
    for error in errors[:10]:
        if isinstance(error, dict):
            error = dict(error)
            error["loc"] = ".".join(str(part) for part in error["loc"])
            if "input" in error:
                error["input"] = summarize_input(error["input"])
        lines.append(f"  {str(error)[:1000]}\n")
    label = "error" if len(errors) == 1 else "errors"
    message = f"{len(errors)} validation {label}:\n" + "".join(lines)
    if len(errors) > 10:
        message += f"  ...and {len(errors) - 10} more {label}\n"
    return ApiError(message.rstrip(), "Bad Request", 400, param)


def field_error(kind: str, loc: tuple[Any, ...], msg: str, value: Any) -> JsonDict:
    return {"type": kind, "loc": loc, "msg": msg, "input": value}


def int_field(request: JsonDict, name: str, errors: list[JsonDict | str]) -> int | None:
    """Validate an optional integer field the way pydantic's lax mode does."""
    value = request.get(name)
    loc = ("body", name)
    if value is None or isinstance(value, int):
        return None if value is None else int(value)
    if isinstance(value, float):
        if value.is_integer():
            return int(value)
        errors.append(
            field_error(
                "int_from_float",
                loc,
                "Input should be a valid integer, got a number with a fractional part",
                value,
            )
        )
        return None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            errors.append(
                field_error(
                    "int_parsing",
                    loc,
                    "Input should be a valid integer, unable to parse string as an integer",
                    value,
                )
            )
            return None
    errors.append(field_error("int_type", loc, "Input should be a valid integer", value))
    return None


@dataclass
class Completion:
    """What the stand-in 'generated' for one request."""

    reasoning: str | None
    content: str | None
    tool_calls: list[JsonDict]
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int = 0


@dataclass
class ChatRequest:
    """A chat request after vLLM's pydantic validation."""

    body: JsonDict
    messages: list[JsonDict]
    tools: list[JsonDict] | None
    tool_choice: Any
    max_tokens: int | None
    max_tokens_param: str
    n: int


# --------------------------------------------------------------------------------------------
# server


class StandinServer(ThreadingHTTPServer):
    """Threading HTTP server holding the stand-in's state."""

    daemon_threads = True
    request_queue_size = 2048  # uvicorn's --backlog default (socketserver's is 5)
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
            "success_error": 0,
            "success_repetition": 0,
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

    def count(self, completion: Completion, aborted: bool = False) -> None:
        with self.lock:
            self.counters["prompt_tokens"] += completion.prompt_tokens
            self.counters["generation_tokens"] += completion.completion_tokens
            key = "success_length" if completion.finish_reason == "length" else "success_stop"
            self.counters["success_abort" if aborted else key] += 1


Route = Callable[["StandinHandler"], None]


class StandinHandler(BaseHTTPRequestHandler):
    """HTTP handler: vLLM's middlewares (auth, CORS, request ids) in front of its routes."""

    server: StandinServer
    protocol_version = "HTTP/1.1"
    server_version = "uvicorn"
    body: bytes = b""
    path_only: str = "/"

    # ---- plumbing ---------------------------------------------------------------------------

    def setup(self) -> None:
        # uvicorn serves on asyncio, whose TCP transports set TCP_NODELAY: a response's headers
        # and body, or two events of a stream, are not held back waiting for an ACK
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

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

    def header(self, name: str) -> str | None:
        """A request header without its surrounding whitespace, as h11 reads it."""
        value = self.headers.get(name)
        return None if value is None else value.strip(" \t")

    def _read_body(self) -> bytes:
        if (self.header("Transfer-Encoding") or "").lower() == "chunked":
            chunks: list[bytes] = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.header("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _cors_headers(self) -> JsonDict:
        """Starlette's CORSMiddleware on a simple (non-preflight) response."""
        origin = self.header("Origin")
        if origin is None:
            return {}
        args = self.server.config.args
        allow_all = "*" in args.allowed_origins
        headers: JsonDict = {}
        if allow_all:
            headers["Access-Control-Allow-Origin"] = "*"
        if args.allow_credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        if (allow_all and args.allow_credentials) or (
            not allow_all and origin in args.allowed_origins
        ):
            headers["Access-Control-Allow-Origin"] = origin
        headers["Vary"] = "Origin"
        return headers

    def _send(
        self, status: int, body: bytes, content_type: str | None, extra: JsonDict, cors: bool = True
    ) -> None:
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        headers = dict(extra)
        if cors:
            headers.update(self._cors_headers())
        if self.server.config.args.enable_request_id_headers:
            headers["X-Request-Id"] = self.header("X-Request-Id") or uuid.uuid4().hex
        for key, value in headers.items():
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

    def require_json(self) -> None:
        """vLLM's validate_json_request dependency."""
        media_type = (self.header("Content-Type") or "").lower().split(";", 1)[0]
        if media_type != "application/json":
            raise request_validation_error(
                ["Unsupported Media Type: Only 'application/json' is allowed"]
            )

    def raw_json(self) -> Any:
        """The body as FastAPI reads it for a JSON body parameter: parsed when the media type
        is absent, application/json or application/*+json, else left as bytes."""
        if not self.body:
            return None
        content_type = self.header("Content-Type")
        if content_type:
            media_type = content_type.lower().split(";", 1)[0].strip()
            main, _, sub = media_type.partition("/")
            if main != "application" or not (sub == "json" or sub.endswith("+json")):
                return self.body
        try:
            return json.loads(self.body)
        except json.JSONDecodeError as exc:
            raise request_validation_error(
                [
                    {
                        "type": "json_invalid",
                        "loc": ("body", exc.pos),
                        "msg": "JSON decode error",
                        "input": {},
                        "ctx": {"error": exc.msg},
                    }
                ]
            ) from exc
        except ValueError as exc:  # not UTF-8
            raise ApiError("There was an error parsing the body", detail=True) from exc

    def json_body(self) -> JsonDict:
        """The body of a JSON route: media type, JSON, then an object, as FastAPI checks."""
        data = self.raw_json()
        self.require_json()
        if data is None:
            raise request_validation_error(
                [field_error("missing", ("body",), "Field required", None)]
            )
        if not isinstance(data, dict):
            raise request_validation_error(
                [
                    field_error(
                        "model_attributes_type",
                        ("body",),
                        "Input should be a valid dictionary or object to extract fields from",
                        data,
                    )
                ]
            )
        return data

    # ---- dispatch ---------------------------------------------------------------------------

    def _dispatch(self) -> None:
        raw_path = self.path.split("?", 1)[0].split("#", 1)[0] or "/"
        self.path_only = urllib.parse.unquote(raw_path)
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
            body = json.dumps({"error": "Unauthorized"}, separators=(",", ":")).encode()
            self._send(401, body, "application/json", {}, cors=False)
            return
        if (
            self.command == "OPTIONS"
            and self.header("Origin") is not None
            and self.header("Access-Control-Request-Method") is not None
        ):
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
        """vLLM's AuthenticationMiddleware: guarded prefixes only, never OPTIONS; the scheme is
        "Bearer" in any case, the rest of the header after one space is the key."""
        keys = self.server.config.api_keys
        if not keys or self.command == "OPTIONS":
            return True
        if not self.path_only.startswith(GUARDED_PREFIXES):
            return True
        header = self.header("Authorization")
        if not header:
            return False
        scheme, _, param = header.partition(" ")
        if scheme.lower() != "bearer":
            return False
        digest = hashlib.sha256(param.encode("utf-8")).digest()
        matched = False
        for key in keys:
            matched |= secrets.compare_digest(digest, key)
        return matched

    def _cors_preflight(self) -> None:
        """Starlette's CORSMiddleware preflight answer."""
        args = self.server.config.args
        allow_all = "*" in args.allowed_origins
        explicit_origin = not allow_all or args.allow_credentials
        methods = list(CORS_ALL_METHODS) if "*" in args.allowed_methods else args.allowed_methods
        allow_all_headers = "*" in args.allowed_headers
        allowed_headers = sorted(CORS_SAFELISTED_HEADERS | set(args.allowed_headers))
        headers: JsonDict = {
            "Vary": "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
        }
        if not explicit_origin:
            headers["Access-Control-Allow-Origin"] = "*"
        headers["Access-Control-Allow-Methods"] = ", ".join(methods)
        headers["Access-Control-Max-Age"] = "600"
        if not allow_all_headers:
            headers["Access-Control-Allow-Headers"] = ", ".join(allowed_headers)
        if args.allow_credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        failures = []
        origin = self.header("Origin") or ""
        if allow_all or origin in args.allowed_origins:
            if explicit_origin:
                headers["Access-Control-Allow-Origin"] = origin
        else:
            failures.append("origin")
        if self.header("Access-Control-Request-Method") not in methods:
            failures.append("method")
        requested = self.header("Access-Control-Request-Headers")
        if allow_all_headers and requested is not None:
            headers["Access-Control-Allow-Headers"] = requested
        elif requested is not None:
            lowered = [h.lower() for h in allowed_headers]
            if any(h.strip().lower() not in lowered for h in requested.split(",")):
                failures.append("headers")
        text = "Disallowed CORS " + ", ".join(failures) if failures else "OK"
        status = 400 if failures else 200
        self._send(status, text.encode(), "text/plain; charset=utf-8", headers, cors=False)

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
        labels = f'model_name="{name}",engine="0"'
        with self.server.lock:
            counters = dict(self.server.counters)
        lines: list[str] = []
        success = [
            (f',finished_reason="{reason}"', counters[f"success_{reason}"])
            for reason in ("stop", "length", "abort", "error", "repetition")
        ]
        for metric_name, kind, text, samples in (
            ("num_requests_running", "gauge", "Number of requests in model execution batches.",
             [("", 0.0)]),
            ("num_requests_waiting", "gauge", "Number of requests waiting to be processed.",
             [("", 0.0)]),
            ("kv_cache_usage_perc", "gauge", "KV-cache usage. 1 means 100 percent usage.",
             [("", 0.0)]),
            ("prompt_tokens_total", "counter", "Number of prefill tokens processed.",
             [("", counters["prompt_tokens"])]),
            ("generation_tokens_total", "counter", "Number of generation tokens processed.",
             [("", counters["generation_tokens"])]),
            ("request_success_total", "counter", "Count of successfully processed requests.",
             success),
        ):  # fmt: skip
            lines.append(f"# HELP vllm:{metric_name} {text}")
            lines.append(f"# TYPE vllm:{metric_name} {kind}")
            for extra, value in samples:
                lines.append(f"vllm:{metric_name}{{{labels}{extra}}} {float(value)}")
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
                "root": config.model,
                "parent": None,
                "max_model_len": config.max_model_len,
                "permission": [
                    {
                        "id": f"modelperm-{random_uuid()}",
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
        """SageMaker's /invocations: the first request type the body validates as."""
        self.require_json()
        try:
            request = json.loads(self.body)
        except json.JSONDecodeError as exc:
            raise ApiError(f"JSON decode error: {exc}", "Bad Request", 400) from exc
        except ValueError as exc:  # not UTF-8
            raise ApiError(str(exc)) from exc
        if isinstance(request, dict) and isinstance(request.get("messages"), list):
            self.route_chat_completions()
        elif isinstance(request, dict):
            self.route_completions()
        else:
            raise ApiError(
                "Cannot find suitable handler for request. Expected one of: "
                "['ChatCompletionRequest', 'CompletionRequest']"
            )

    # ---- generation -------------------------------------------------------------------------

    def _check_model(self, model: Any) -> str:
        """vLLM's _check_model; responses name the first served model whatever was asked."""
        names = self.server.config.served_model_names
        if model and model not in names:
            raise ApiError(
                f"The model `{model}` does not exist. Valid aliases: {', '.join(names)}.",
                "NotFoundError",
                404,
                "model",
            )
        return names[0]

    def _check_engine(self) -> None:
        if self.server.config.fail_after_load:
            raise ApiError(ENGINE_DEAD_CLIENT_MESSAGE, "InternalServerError", 500)

    def _messages(self, request: JsonDict) -> list[JsonDict]:
        errors: list[JsonDict | str] = []
        messages = self._messages_field(request, errors)
        if errors:
            raise request_validation_error(errors)
        return messages

    @staticmethod
    def _messages_field(request: JsonDict, errors: list[JsonDict | str]) -> list[JsonDict]:
        messages = request.get("messages")
        if "messages" not in request:
            errors.append(field_error("missing", ("body", "messages"), "Field required", request))
            return []
        if not isinstance(messages, list):
            errors.append(
                field_error(
                    "list_type", ("body", "messages"), "Input should be a valid list", messages
                )
            )
            return []
        for index, message in enumerate(messages):
            if not isinstance(message, dict):
                errors.append(
                    field_error(
                        "dict_type",
                        ("body", "messages", index),
                        "Input should be a valid dictionary",
                        message,
                    )
                )
        return [m for m in messages if isinstance(m, dict)]

    @staticmethod
    def _check_tool_usage(request: JsonDict) -> JsonDict:
        """ChatCompletionRequest.check_tool_usage (a "before" validator, so it runs first):
        returns the request with ``tools`` and ``tool_choice`` as vLLM resolves them."""
        data = dict(request)
        # OpenAI treats an empty tools array like an omitted one
        if data.get("tools") == [] and not isinstance(data.get("tool_choice"), dict):
            data["tools"] = None
            if data.get("tool_choice") in ("auto", "required"):
                data["tool_choice"] = "none"
        if "tool_choice" not in data and data.get("tools"):
            data["tool_choice"] = "auto"
        choice = data.get("tool_choice")
        if choice == "none" or choice is None:
            return data
        if data.get("tools") is None:
            raise vllm_validation_error(
                "When using `tool_choice`, `tools` must be set.", "tool_choice"
            )
        if choice not in ["auto", "required"] and not isinstance(choice, dict):
            raise vllm_validation_error(
                f"Invalid value for `tool_choice`: {choice}! Only named tools, "
                '"none", "auto" or "required" are supported.',
                "tool_choice",
            )
        if isinstance(choice, dict):
            usage = 'Correct usage: `{"type": "function", "function": {"name": "my_function"}}`'
            function = choice.get("function")
            if not isinstance(function, dict):
                raise vllm_validation_error(
                    f"Invalid value for `function`: `{function}` in `tool_choice`! {usage}",
                    "tool_choice.function",
                )
            if "name" not in function:
                raise vllm_validation_error(
                    f"Expected field `name` in `function` in `tool_choice`! {usage}",
                    "tool_choice.function.name",
                )
            name = function["name"]
            if not isinstance(name, str) or len(name) == 0:
                raise vllm_validation_error(
                    f"Invalid `name` in `function`: `{name}` in `tool_choice`! {usage}",
                    "tool_choice.function.name",
                )
            try:
                found = any(tool["function"]["name"] == name for tool in data["tools"])
            except (TypeError, ValueError) as exc:  # a malformed tools list, read as upstream
                raise ApiError(str(exc)) from exc
            except Exception as exc:
                raise ApiError(str(exc), "InternalServerError", 500) from exc
            if not found:
                raise vllm_validation_error(
                    f"The tool `{name}` specified in `tool_choice` does not match any of the "
                    "specified `tools`",
                    "tool_choice",
                )
        return data

    def _chat_request(self) -> ChatRequest:
        """Parse and validate a chat request as FastAPI and ChatCompletionRequest do."""
        body = self.json_body()
        data = self._check_tool_usage(body)
        errors: list[JsonDict | str] = []
        messages = self._messages_field(data, errors)
        model = data.get("model")
        if model is not None and not isinstance(model, str):
            errors.append(
                field_error(
                    "string_type", ("body", "model"), "Input should be a valid string", model
                )
            )
        max_tokens = int_field(data, "max_tokens", errors)
        max_completion = int_field(data, "max_completion_tokens", errors)
        n = int_field(data, "n", errors)
        tools = data.get("tools")
        if tools is not None:
            if not isinstance(tools, list):
                errors.append(
                    field_error(
                        "list_type", ("body", "tools"), "Input should be a valid list", tools
                    )
                )
            else:
                for index, tool in enumerate(tools):
                    function = tool.get("function") if isinstance(tool, dict) else None
                    loc = ("body", "tools", index, "function")
                    if not isinstance(tool, dict):
                        errors.append(
                            field_error(
                                "model_type",
                                ("body", "tools", index),
                                "Input should be a valid dictionary or instance of "
                                "ChatCompletionToolsParam",
                                tool,
                            )
                        )
                    elif function is None:
                        errors.append(field_error("missing", loc, "Field required", tool))
                    elif not isinstance(function, dict) or not isinstance(
                        function.get("name"), str
                    ):
                        errors.append(
                            field_error("missing", (*loc, "name"), "Field required", function)
                        )
        if errors:
            raise request_validation_error(errors)
        if max_completion is not None:
            limit, limit_param = max_completion, "max_completion_tokens"
        else:
            limit, limit_param = max_tokens, "max_tokens"
        return ChatRequest(
            body=data,
            messages=messages,
            tools=tools,
            tool_choice=data.get("tool_choice", "none"),
            max_tokens=limit,
            max_tokens_param=limit_param,
            n=1 if n is None else n,
        )

    def _check_tool_parsing(self, choice: Any) -> None:
        """OnlineRenderer.render_chat: without a tool parser only "none" is served."""
        config = self.server.config
        if config.auto_tools or choice in (None, "none"):
            return
        if choice == "auto":
            raise ApiError(
                '"auto" tool choice requires --enable-auto-tool-choice and --tool-call-parser '
                "to be set"
            )
        if isinstance(choice, dict):
            description = f'function "{choice["function"]["name"]}"'
        else:
            description = f'"{choice}"'
        raise ApiError(f"tool_choice={description} requires --tool-call-parser to be set")

    def _max_tokens(self, requested: int | None, param: str, prompt_tokens: int) -> int:
        """The renderer's length checks, then get_max_tokens and SamplingParams' check."""
        limit = self.server.config.max_model_len
        if requested is not None and requested > limit:
            raise vllm_validation_error(
                f"{param}={requested} cannot be greater than max_model_len={limit}. "
                "Please request fewer output tokens.",
                param,
                requested,
            )
        if prompt_tokens > limit:
            raise vllm_validation_error(
                f"This model's maximum context length is {limit} tokens. However, your prompt "
                f"contains {prompt_tokens} input tokens, which exceeds this limit even without "
                "any output tokens. Please reduce the length of the input prompt.",
                "input_tokens",
                prompt_tokens,
            )
        max_tokens = limit - prompt_tokens
        if requested is not None:
            max_tokens = min(max_tokens, requested)
        if max_tokens < 1:
            raise vllm_validation_error(
                f"max_tokens must be at least 1, got {max_tokens}.", "max_tokens", max_tokens
            )
        return max_tokens

    def _thinking(self, request: JsonDict) -> bool:
        """enable_thinking as the chat template sees it: the request's chat_template_kwargs,
        then reasoning_effort, then --default-chat-template-kwargs."""
        user = request.get("chat_template_kwargs")
        user = user if isinstance(user, dict) else {}
        kwargs = dict(self.server.config.args.default_chat_template_kwargs or {})
        effort = request.get("reasoning_effort")
        if effort is not None and "enable_thinking" not in user:
            kwargs["enable_thinking"] = effort != "none"
        kwargs.update(user)
        return kwargs.get("enable_thinking") is not False

    def _generate(self, chat: ChatRequest) -> Completion:
        config = self.server.config
        request, messages, choice = chat.body, chat.messages, chat.tool_choice
        tools = list(chat.tools or [])
        prompt_tokens = sum(count_words(m.get("content")) for m in messages) + 1
        exclude = choice == "none" and config.args.exclude_tools_when_tool_choice_none
        if not exclude:
            prompt_tokens += sum(len(json.dumps(t).split()) for t in tools)
        max_tokens = self._max_tokens(chat.max_tokens, chat.max_tokens_param, prompt_tokens)
        reasoning: str | None = None
        if config.args.reasoning_parser and self._thinking(request):
            reasoning = "The user needs an answer; this is the stand-in's deterministic reasoning."
        last = messages[-1] if messages else {}
        user_texts = [content_text(m.get("content")) for m in messages if m.get("role") == "user"]

        def call(tool: JsonDict) -> JsonDict:
            function = tool["function"]
            arguments = json.dumps(example_arguments(function), ensure_ascii=False)
            return {
                "id": f"chatcmpl-tool-{random_uuid()}",
                "type": "function",
                "function": {"name": function["name"], "arguments": arguments},
            }

        tool_calls: list[JsonDict] = []
        content: str | None
        finish = "stop"
        if isinstance(choice, dict):  # a named tool: content "", finish_reason "stop"
            name = choice["function"]["name"]
            tool_calls = [call(next(t for t in tools if t["function"]["name"] == name))]
            content = ""
        elif choice == "required":
            tool_calls = [call(tools[0])]
            content, finish = "", "tool_calls"
        elif choice == "auto" and tools and last.get("role") != "tool":
            tool_calls = [call(tools[0])]
            content, finish = None, "tool_calls"
        else:
            if last.get("role") == "tool":
                content = "standin reply to tool result: " + content_text(last.get("content"))[:50]
            else:
                content = "standin reply to: " + (user_texts[-1][:50] if user_texts else "")
            if len(content.split()) > max_tokens:
                content = " ".join(content.split()[:max_tokens])
                finish = "length"
        reasoning_tokens = len(reasoning.split()) if reasoning else 0
        generated = (content or "") + " ".join(c["function"]["arguments"] for c in tool_calls)
        if request.get("include_reasoning") is False:
            reasoning = None
        return Completion(
            reasoning=reasoning,
            content=content,
            tool_calls=tool_calls,
            finish_reason=finish,
            prompt_tokens=prompt_tokens,
            completion_tokens=max(1, reasoning_tokens + len(generated.split())),
            reasoning_tokens=reasoning_tokens,
        )

    def _usage(self, completion: Completion, chat: bool) -> JsonDict:
        usage: JsonDict = {
            "prompt_tokens": completion.prompt_tokens,
            "total_tokens": completion.prompt_tokens + completion.completion_tokens,
            "completion_tokens": completion.completion_tokens,
        }
        if self.server.config.args.enable_prompt_tokens_details:
            usage["prompt_tokens_details"] = {
                "cached_tokens": 0,
                "created_cache_tokens": None,
                "multimodal_tokens": None,
            }
        reasoning_details = chat and bool(self.server.config.args.reasoning_parser)
        usage["completion_tokens_details"] = (
            {"reasoning_tokens": completion.reasoning_tokens} if reasoning_details else None
        )
        return usage

    def _request_id(self, body: JsonDict) -> str:
        header = self.header("X-Request-Id")
        if header is not None:
            return header
        given = body.get("request_id")
        return given if isinstance(given, str) else random_uuid()

    def _include_usage(self, request: JsonDict) -> tuple[bool, bool]:
        """should_include_usage: (usage chunk at the end, usage on every chunk)."""
        if self.server.config.args.enable_force_include_usage:
            return True, True
        options = request.get("stream_options")
        if not isinstance(options, dict):
            return False, False
        include = bool(options.get("include_usage"))
        return include, include and bool(options.get("continuous_usage_stats"))

    def route_chat_completions(self) -> None:
        chat = self._chat_request()
        model = self._check_model(chat.body.get("model"))
        self._check_engine()
        self._check_tool_parsing(chat.tool_choice)
        completion = self._generate(chat)
        request_id = f"chatcmpl-{self._request_id(chat.body)}"
        created = int(time.time())
        if chat.body.get("stream"):
            chunks = self._chat_chunks(chat, request_id, created, model, completion)
            self.send_stream(chunks, completion)
            return
        self.server.count(completion)
        role = self.server.config.args.response_role
        message: JsonDict = {
            "role": role,
            "content": completion.content,
            "refusal": None,
            "audio": None,
            "function_call": None,
        }
        if completion.tool_calls:  # ChatMessage leaves out an empty tool_calls list
            message["tool_calls"] = completion.tool_calls
        message["reasoning"] = completion.reasoning
        choices = [
            {
                "index": index,
                "message": message,
                "logprobs": None,
                "finish_reason": completion.finish_reason,
                "stop_reason": None,
                "token_ids": None,
                "routed_experts": None,
                "weight_versions": None,
            }
            for index in range(max(1, chat.n))
        ]
        self.send_json(
            200,
            {
                "id": request_id,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": choices,
                "service_tier": None,
                "system_fingerprint": self.server.config.fingerprint,
                "usage": self._usage(completion, chat=True),
                "prompt_logprobs": None,
                "prompt_token_ids": None,
                "prompt_text": None,
                "kv_transfer_params": None,
                "ec_transfer_params": None,
                "metrics": None,
            },
        )

    def _chat_chunks(
        self, chat: ChatRequest, request_id: str, created: int, model: str, done: Completion
    ) -> Iterator[JsonDict]:
        """The stream as vLLM serialises it (model_dump_json(exclude_unset=True)): a delta
        holds only what it sets, never an empty tool_calls list."""
        include_usage, continuous = self._include_usage(chat.body)
        fingerprint = self.server.config.fingerprint
        sent = 0

        def chunk(delta: JsonDict, finish: str | None = None, tokens: int = 1) -> JsonDict:
            nonlocal sent
            sent += tokens
            choice: JsonDict = {"index": 0, "delta": delta, "logprobs": None}
            choice["finish_reason"] = finish
            if finish is not None:
                choice["stop_reason"] = None
            choice["token_ids"] = None
            if finish is not None:
                choice["weight_versions"] = None
            body: JsonDict = {
                "id": request_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [choice],
            }
            if continuous:
                body["usage"] = {
                    "prompt_tokens": done.prompt_tokens,
                    "total_tokens": done.prompt_tokens + sent,
                    "completion_tokens": sent,
                }
                if self.server.config.args.reasoning_parser:
                    reasoning = min(sent, done.reasoning_tokens)
                    body["usage"]["completion_tokens_details"] = {"reasoning_tokens": reasoning}
                else:
                    body["usage"]["completion_tokens_details"] = None
            if finish is not None and not include_usage and fingerprint is not None:
                body["system_fingerprint"] = fingerprint
            body["kv_transfer_params"] = None
            return body

        first = chunk({"role": self.server.config.args.response_role, "content": ""}, tokens=0)
        del first["kv_transfer_params"], first["choices"][0]["token_ids"]
        first["prompt_token_ids"] = None
        first["prompt_text"] = None
        yield first
        if done.reasoning:
            for word in done.reasoning.split(" "):
                yield chunk({"reasoning": word + " "})
        for index, call in enumerate(done.tool_calls):
            function = call["function"]
            head = {"id": call["id"], "type": "function", "index": index}
            yield chunk({"tool_calls": [head | {"function": {"name": function["name"]}}]})
            arguments = {"arguments": function["arguments"]}
            yield chunk({"tool_calls": [{"index": index, "function": arguments}]})
        if done.content:
            words = done.content.split(" ")
            for position, word in enumerate(words):
                yield chunk({"content": word if position == 0 else " " + word})
        yield chunk({}, done.finish_reason, tokens=0)
        if include_usage:
            usage = {k: v for k, v in self._usage(done, chat=True).items() if v is not None}
            final: JsonDict = {
                "id": request_id,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [],
                "usage": usage,
            }
            if fingerprint is not None:
                final["system_fingerprint"] = fingerprint
            yield final

    def route_completions(self) -> None:
        body = self.json_body()
        prompt = body.get("prompt")
        embeds = body.get("prompt_embeds")
        if (prompt is None or prompt == "") and (embeds is None or embeds == []):
            raise vllm_validation_error(
                "Either prompt or prompt_embeds must be provided and non-empty.", "prompt"
            )
        errors: list[JsonDict | str] = []
        max_tokens = int_field(body, "max_tokens", errors) if "max_tokens" in body else 16
        if errors:
            raise request_validation_error(errors)
        model = self._check_model(body.get("model"))
        self._check_engine()
        text = " ".join(str(p) for p in prompt) if isinstance(prompt, list) else str(prompt or "")
        prompt_tokens = max(1, len(text.split()))
        limit = self._max_tokens(max_tokens, "max_tokens", prompt_tokens)
        words = ("standin completion for: " + text[:50]).split()
        finish = "length" if len(words) > limit else "stop"
        output = " " + " ".join(words[:limit])
        completion = Completion(None, output, [], finish, prompt_tokens, len(output.split()))
        request_id = f"cmpl-{self._request_id(body)}"
        created = int(time.time())
        fingerprint = self.server.config.fingerprint

        if body.get("stream"):
            include_usage, _ = self._include_usage(body)

            def chunk(text_part: str, finish_reason: str | None) -> JsonDict:
                choice = {
                    "index": 0,
                    "text": text_part,
                    "logprobs": None,
                    "finish_reason": finish_reason,
                    "stop_reason": None,
                    "prompt_token_ids": None,
                    "token_ids": None,
                    "weight_versions": None,
                }
                data: JsonDict = {
                    "id": request_id,
                    "object": "text_completion",
                    "created": created,
                    "model": model,
                    "choices": [choice],
                }
                if finish_reason is not None and not include_usage and fingerprint:
                    data["system_fingerprint"] = fingerprint
                data["kv_transfer_params"] = None
                return data

            chunks = [chunk(output, None), chunk("", finish)]
            if include_usage:
                usage = {
                    k: v for k, v in self._usage(completion, chat=False).items() if v is not None
                }
                final = {
                    "id": request_id,
                    "object": "text_completion",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage,
                }
                if fingerprint is not None:
                    final["system_fingerprint"] = fingerprint
                chunks.append(final)
            self.send_stream(iter(chunks), completion)
            return
        self.server.count(completion)
        choice = {
            "index": 0,
            "text": output,
            "logprobs": None,
            "finish_reason": finish,
            "stop_reason": None,
            "token_ids": None,
            "prompt_logprobs": None,
            "prompt_token_ids": None,
            "routed_experts": None,
            "weight_versions": None,
        }
        self.send_json(
            200,
            {
                "id": request_id,
                "object": "text_completion",
                "created": created,
                "model": model,
                "choices": [choice],
                "service_tier": None,
                "system_fingerprint": fingerprint,
                "usage": self._usage(completion, chat=False),
                "kv_transfer_params": None,
                "ec_transfer_params": None,
                "metrics": None,
            },
        )

    def send_stream(self, chunks: Iterator[JsonDict], completion: Completion) -> None:
        """Send server-sent events (chunked transfer encoding on HTTP/1.1), then [DONE]; count
        the request as finished once its last event is written, or as aborted if the client
        went away before (STANDIN_CHUNK_DELAY spaces the events out)."""
        chunked = self.request_version == "HTTP/1.1"
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        headers = self._cors_headers()
        if self.server.config.args.enable_request_id_headers:
            headers["X-Request-Id"] = self.header("X-Request-Id") or uuid.uuid4().hex
        for key, value in headers.items():
            self.send_header(key, str(value))
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

        delay = self.server.config.chunk_delay
        stamp = self.server.config.event_times
        counted = False
        try:
            for index, item in enumerate(chunks):
                if delay and index:
                    time.sleep(delay)
                payload = json.dumps(item, ensure_ascii=False, separators=(",", ":"))
                sent = f": sent {time.monotonic_ns()}\n" if stamp else ""
                write(f"{sent}data: {payload}\n\n".encode())
            self.server.count(completion)
            counted = True
            write(b"data: [DONE]\n\n")
            if chunked:
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            if not counted:
                self.server.count(completion, aborted=True)


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


def run_server(args: argparse.Namespace, argv: list[str], entrypoint: str) -> int:
    """vLLM's run_server: check the arguments, bind the port, build the engine config, load,
    then serve until SIGTERM."""
    global _PROCESS_NAME
    env = dict(os.environ)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    config = build_config(args, argv, env, entrypoint)
    _PROCESS_NAME = "APIServer"
    log(
        "INFO",
        f"vLLM server version {VLLM_VERSION}, serving model {config.model}",
        "entrypoints/common/startup.py:38",
    )
    parser = make_arg_parser()
    changed = non_default_args(args, parser)
    log("INFO", f"non-default args: {changed}", "entrypoints/common/startup.py:96")
    server: StandinServer | None = None
    try:
        try:
            validate_api_server_args(args)
            delay = load_seconds(env)
        except StartupError as exc:
            return fail(exc.exc_type, exc.message, "setup_server")
        except ValueError as exc:
            return fail("ValueError", str(exc))
        host = args.host if args.host is not None else DEFAULT_HOST
        server = StandinServer((host, args.port), config)
        try:
            server.server_bind()  # bound early like vLLM; not listening until loaded
        except OSError as exc:
            return fail("OSError", str(exc), "setup_server")
        config.report["port"] = server.server_port
        print("standin-report " + json.dumps(config.report, sort_keys=True), flush=True)
        try:
            check_engine_config(config)
        except StartupError as exc:
            return fail(exc.exc_type, exc.message, "build_async_engine_client")
        log("INFO", f"Loading model {config.model} (stand-in: {delay:g} s)", "standin")
        time.sleep(delay)
        if env.get("STANDIN_EXIT_AFTER_LOAD", "") == "1":
            log("ERROR", "EngineCore failed to start.", "v1/engine/core.py")
            return fail(
                "RuntimeError",
                "Engine core initialization failed. See root cause above. "
                "Failed core proc(s): {'EngineCore_DP0': 1}",
                "build_async_engine_client",
            )
        if config.fail_after_load:
            log("ERROR", "EngineCore encountered a fatal error (stand-in STANDIN_FAIL=1).")
        server.server_activate()
        log("INFO", "Supported tasks: ['generate']", "entrypoints/.../api_server/entry.py:135")
        log(
            "INFO",
            f"Starting vLLM server on http://{host}:{server.server_port}",
            "entrypoints/.../api_server/entry.py:139",
        )
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


def serve(args: argparse.Namespace, argv: list[str], entrypoint: str) -> int:
    """The checks both entry points run on the parsed arguments, then the server."""
    try:
        validate_parsed_serve_args(args)
    except StartupError as exc:
        return fail(exc.exc_type, exc.message, "validate_parsed_serve_args")
    return run_server(args, argv, entrypoint)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m vllm.entrypoints.openai.api_server``: deprecated upstream, serves --model
    (a positional model_tag is parsed and ignored)."""
    for text in (
        "`vllm.entrypoints.openai.api_server` is deprecated and will likely be unsupported in a "
        "future version. Use the corresponding function from `vllm.entrypoints.launchers` "
        "instead.",
        "The `python -m vllm.entrypoints.openai.api_server` command is deprecated and may be "
        "removed in a future release. Please use `vllm serve` instead.",
    ):
        print(f"{__file__}: DeprecationWarning: {text}", file=sys.stderr, flush=True)
    argv_list = list(sys.argv[1:] if argv is None else argv)
    args = make_arg_parser().parse_args(argv_list)  # exits 2 on a bad flag or choice
    return serve(args, argv_list, "api_server")


CLI_SUBCOMMANDS = (
    "chat",
    "complete",
    "serve",
    "launch",
    "bench",
    "collect-env",
    "download-kernels",
    "preload",
    "run-batch",
    "snapshot",
)


def cli_main(argv: Sequence[str] | None = None) -> int:
    """``vllm``: the stand-in implements ``vllm serve`` (and ``vllm --version``)."""
    argv_list = list(sys.argv[1:] if argv is None else argv)
    parser = FlexibleArgumentParser(prog="vllm", description="vLLM CLI")
    parser.add_argument("-v", "--version", action="version", version=VLLM_VERSION)
    subparsers = parser.add_subparsers(required=False, dest="subparser")
    for name in CLI_SUBCOMMANDS:
        if name == "serve":
            serve_parser = subparsers.add_parser(
                name,
                help="Launch a local OpenAI-compatible API server to serve LLM completions via "
                "HTTP.",
                usage="vllm serve [model_tag] [options]",
            )
            make_arg_parser(serve_parser)
        else:
            subparsers.add_parser(name, help=f"`vllm {name}` (not in the stand-in)")
    try:
        args = parser.parse_args(argv_list)  # moves --model to model_tag for `serve`
    except StartupError as exc:
        return fail(exc.exc_type, exc.message, "parse_args")
    if args.subparser is None:
        parser.print_help()
        return 0
    if args.subparser != "serve":
        print(f"vllm {args.subparser}: not implemented by the stand-in", file=sys.stderr)
        return 2
    return serve(args, argv_list[1:], "vllm serve")


if __name__ == "__main__":
    sys.exit(main())
