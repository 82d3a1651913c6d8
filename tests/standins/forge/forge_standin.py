"""Stand-in for the ai-dock Stable Diffusion WebUI Forge image (test double: no model, no GPU).

It starts the way ``ghcr.io/ai-dock/stable-diffusion-webui-forge`` does and speaks Forge's HTTP
API, so that a wrongly rendered environment, command line or GPU assignment makes a test fail:

* the launcher: ai-dock's init turns ``___`` into spaces and strips quotes in every variable,
  then ``supervisor-forge.sh`` runs ``launch.py $FORGE_ARGS --port $FORGE_PORT_LOCAL`` (17860):
  FORGE_ARGS is word-split and glob-expanded like an unquoted bash expansion; with
  ``XPU_TARGET=CPU`` it prepends ``--always-cpu --skip-torch-cuda-test --no-half``.
* Forge's argument parser (modules/cmd_args.py + backend/args.py): an unknown flag or a bad
  value exits 2 with argparse's message; ``--api-auth``/``--gradio-auth`` that do not split into
  ``user:password`` pairs crash at start (exit 1), as Forge's ``auth.split(":")`` does;
  ``--gradio-auth-path`` is read at start (each line's comma-separated ``user:password``
  entries), and a missing or unreadable file stops the start (exit 1).
* the GPU: the container's GPUs are NVIDIA_VISIBLE_DEVICES (then CUDA_VISIBLE_DEVICES); Forge
  sets CUDA_VISIBLE_DEVICES to ``--gpu-device-id``, an index into the visible GPUs. An index the
  container does not have fails like Forge's CUDA test (exit 1).
* the API (``--api``): /sdapi/v1/txt2img (a real PNG of the requested size, parameters echoed,
  ``info`` a JSON string), sd-models (checkpoints of ``--ckpt-dir`` and of
  ``$WORKSPACE/storage/stable_diffusion/models/ckpt``, which the image links into Forge),
  options (GET/POST, saved to ``--ui-settings-file``), cmd-flags, samplers, progress (all behind
  ``--api-auth``, as every /sdapi route of modules/api/api.py);
  /internal/ping. ``--api-auth`` is enforced like FastAPI's HTTPBasic:
  401 ``{"detail":"Not authenticated"}`` without credentials, 401 ``{"detail":"Incorrect
  username or password"}`` with wrong ones, both with ``WWW-Authenticate: Basic``.
* Caddy (unless ``caddy`` is in SUPERVISOR_NO_AUTOSTART): listens on FORGE_PORT_HOST (7860) and
  proxies to Forge; with WEB_ENABLE_AUTH (default true) a request passes with the cookie,
  ``Authorization: Bearer $WEB_TOKEN`` or ``?token=$WEB_TOKEN``, otherwise 302 to the login
  portal. WEB_USER/WEB_PASSWORD/WEB_TOKEN default to random values, like the image.

Stand-in-only knobs (environment): STANDIN_LOAD_SECONDS (float, default 0: Forge's port is not
listening meanwhile, Caddy already answers 502), STANDIN_EXIT_AFTER_LOAD=1 (after the load, a
CUDA out-of-memory traceback and exit 1, like a release that cannot load its model),
STANDIN_CADDY_BIND (default 127.0.0.1; the real
Caddy binds every interface), STANDIN_HASH_MAX_BYTES (checkpoints bigger than this get no sha256,
default 256 MiB). Stand-in-only path: GET /standin/report (no auth), the start-up report.
Standard library only.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import glob
import hashlib
import hmac
import http.client
import json
import os
import random
import secrets
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
import urllib.parse
import zlib
from collections.abc import Callable, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

FORGE_VERSION = "f2.0.1v1.10.1-previous-669-gdfdcbab6"
DEFAULT_LISTEN_PORT = 17860  # FORGE_PORT_LOCAL
DEFAULT_PROXY_PORT = 7860  # FORGE_PORT_HOST
FORGE_ROOT = "/opt/stable-diffusion-webui-forge"
CHECKPOINT_SUBDIR = "storage/stable_diffusion/models/ckpt"
CHECKPOINT_SUFFIXES = (".safetensors", ".ckpt", ".gguf")
UNRESTRICTED_GPU_VALUES = {"", "all"}
NO_GPU_VALUES = {"void", "none"}
SAMPLERS = [
    "DPM++ 2M", "DPM++ SDE", "DPM++ 2M SDE", "DPM++ 2M SDE Heun", "DPM++ 2S a", "DPM++ 3M SDE",
    "Euler a", "Euler", "LMS", "Heun", "DPM2", "DPM2 a", "DPM fast", "DPM adaptive", "Restart",
    "HeunPP2", "IPNDM", "IPNDM_V", "DEIS", "DDIM", "DDIM CFG++", "PLMS", "UniPC", "LCM",
    "DDPM",
]  # fmt: skip
OPTION_DEFAULTS: dict[str, Any] = {
    "samples_format": "png",
    "sd_model_checkpoint": None,
    "sd_checkpoint_hash": "",
    "CLIP_stop_at_last_layers": 1,
    "forge_preset": "sd",
    "sd_t2i_width": 512,
    "sd_t2i_height": 640,
    "sd_t2i_cfg": 7,
    "xl_t2i_width": 896,
    "xl_t2i_height": 1152,
    "xl_t2i_cfg": 5,
    "xl_t2i_hr_cfg": 5,
    "xl_i2i_width": 1024,
    "xl_i2i_height": 1024,
    "xl_i2i_cfg": 5,
    "forge_inference_memory": 1024,
    "forge_async_loading": "Queue",
    "forge_pin_shared_memory": "CPU",
}
TXT2IMG_DEFAULTS: dict[str, Any] = {
    "prompt": "",
    "negative_prompt": "",
    "styles": None,
    "seed": -1,
    "subseed": -1,
    "subseed_strength": 0,
    "seed_resize_from_h": -1,
    "seed_resize_from_w": -1,
    "sampler_name": None,
    "scheduler": None,
    "batch_size": 1,
    "n_iter": 1,
    "steps": 50,
    "cfg_scale": 7.0,
    "distilled_cfg_scale": 3.5,
    "width": 512,
    "height": 512,
    "restore_faces": None,
    "tiling": None,
    "denoising_strength": None,
    "override_settings": None,
    "override_settings_restore_afterwards": True,
    "enable_hr": False,
    "hr_scale": 2.0,
    "hr_upscaler": None,
    "hr_second_pass_steps": 0,
    "sampler_index": "Euler",
    "script_name": None,
    "script_args": [],
    "send_images": True,
    "save_images": False,
    "alwayson_scripts": {},
    "force_task_id": None,
    "infotext": None,
}
INT_FIELDS = ("seed", "subseed", "batch_size", "n_iter", "steps", "width", "height")
FLOAT_FIELDS = ("cfg_scale", "distilled_cfg_scale", "subseed_strength")
MAX_SIDE = 4096

JsonDict = dict[str, Any]


def log(message: str) -> None:
    print(message, flush=True)


# --------------------------------------------------------------------------------------------
# the ai-dock launcher


def aidock_env(environ: dict[str, str]) -> dict[str, str]:
    """ai-dock's init_set_envs: ``___`` becomes a space, surrounding quotes are stripped."""
    result = {}
    for key, value in environ.items():
        value = value.replace("___", " ")
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
        result[key] = value
    return result


def split_like_bash(words: str, cwd: str = ".") -> list[str]:
    """An unquoted ``$VAR`` expansion: split on whitespace, then pathname expansion."""
    result: list[str] = []
    for word in words.split():
        if any(c in word for c in "*?["):
            matches = sorted(glob.glob(word, root_dir=cwd))
            if matches:
                result.extend(matches)
                continue
        result.append(word)
    return result


def launcher_argv(env: dict[str, str]) -> list[str]:
    """``launch.py ${PLATFORM_ARGS} $(cat /etc/forge_args.conf) --port ${LISTEN_PORT}``."""
    platform = ["--always-cpu", "--skip-torch-cuda-test", "--no-half"]
    argv = platform if env.get("XPU_TARGET", "") == "CPU" else []
    argv += split_like_bash(
        env.get("FORGE_ARGS", ""), cwd=FORGE_ROOT if Path(FORGE_ROOT).is_dir() else "."
    )
    argv += ["--port", env.get("FORGE_PORT_LOCAL") or str(DEFAULT_LISTEN_PORT)]
    return argv


# --------------------------------------------------------------------------------------------
# Forge's command line (modules/cmd_args.py, backend/args.py)


class ForgeArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr, flush=True)
        raise SystemExit(2)


def make_parser() -> ForgeArgumentParser:
    p = ForgeArgumentParser(prog="launch.py")
    add = p.add_argument
    # backend/args.py
    add("--gpu-device-id", type=int, default=None, metavar="DEVICE_ID")
    for group in (
        ("--all-in-fp32", "--all-in-fp16"),
        ("--unet-in-bf16", "--unet-in-fp16", "--unet-in-fp8-e4m3fn", "--unet-in-fp8-e5m2"),
        ("--vae-in-fp16", "--vae-in-fp32", "--vae-in-bf16"),
        ("--clip-in-fp8-e4m3fn", "--clip-in-fp8-e5m2", "--clip-in-fp16", "--clip-in-fp32"),
        ("--attention-split", "--attention-quad", "--attention-pytorch"),
        ("--force-upcast-attention", "--disable-attention-upcast"),
        ("--always-gpu", "--always-high-vram", "--always-normal-vram", "--always-low-vram",
         "--always-no-vram", "--always-cpu"),
    ):  # fmt: skip
        exclusive = p.add_mutually_exclusive_group()
        for flag in group:
            exclusive.add_argument(flag, action="store_true")
    for flag in (
        "--vae-in-cpu", "--disable-xformers", "--disable-ipex-hijack",
        "--always-offload-from-vram", "--pytorch-deterministic", "--cuda-malloc",
        "--cuda-stream", "--pin-shared-memory", "--disable-gpu-warning",
    ):  # fmt: skip
        add(flag, action="store_true")
    add("--directml", type=int, nargs="?", metavar="DIRECTML_DEVICE", const=-1)
    # modules/cmd_args.py: switches
    for flag in (
        "-f", "--update-all-extensions", "--skip-python-version-check", "--skip-torch-cuda-test",
        "--reinstall-xformers", "--reinstall-torch", "--update-check", "--test-server",
        "--log-startup", "--skip-prepare-environment", "--skip-install", "--dump-sysinfo",
        "--do-not-download-clip", "--no-half", "--no-half-vae", "--no-progressbar-hiding",
        "--allow-code", "--medvram", "--medvram-sdxl", "--lowvram", "--lowram",
        "--always-batch-cond-uncond", "--unload-gfpgan", "--upcast-sampling", "--share",
        "--enable-insecure-extension-access", "--xformers", "--force-enable-xformers",
        "--xformers-flash-attention", "--deepdanbooru", "--opt-split-attention",
        "--opt-sub-quad-attention", "--opt-split-attention-invokeai", "--opt-split-attention-v1",
        "--opt-sdp-attention", "--opt-sdp-no-mem-attention", "--disable-opt-split-attention",
        "--disable-nan-check", "--use-ipex", "--disable-model-loading-ram-optimization",
        "--listen", "--show-negative-prompt", "--hide-ui-dir-config", "--freeze-settings",
        "--gradio-debug", "--opt-channelslast", "--autolaunch", "--use-textbox-seed",
        "--disable-console-progressbars", "--enable-console-prompts", "--disable-safe-unpickle",
        "--api", "--api-log", "--nowebui", "--ui-debug-mode", "--administrator",
        "--no-gradio-queue", "--skip-version-check", "--no-hashing", "--no-download-sd-model",
        "--add-stop-route", "--api-server-stop", "--disable-all-extensions",
        "--disable-extra-extensions", "--skip-load-model-at-start",
        "--unix-filenames-sanitization", "--no-prompt-history",
        "--skip-google-blockly",
        "--controlnet-tracemalloc",  # extensions-builtin/sd_forge_controlnet/preload.py
    ):  # fmt: skip
        add(flag, action="store_true")
    add("--gradio-queue", action="store_true", default=True)
    add("--disable-tls-verify", action="store_false", default=None)
    # modules/cmd_args.py: options with a value
    for flag in (
        "--loglevel", "--data-dir", "--models-dir", "--config", "--ckpt", "--ckpt-dir",
        "--vae-dir", "--text-encoder-dir", "--gfpgan-dir", "--gfpgan-model", "--embeddings-dir",
        "--textual-inversion-templates-dir", "--hypernetwork-dir", "--localizations-dir",
        "--ngrok", "--ngrok-region", "--codeformer-models-path", "--gfpgan-models-path",
        "--esrgan-models-path", "--bsrgan-models-path", "--realesrgan-models-path",
        "--dat-models-path", "--clip-models-path", "--ui-config-file",
        "--freeze-settings-in-sections", "--freeze-specific-settings", "--ui-settings-file",
        "--gradio-auth", "--gradio-auth-path", "--gradio-img2img-tool", "--gradio-inpaint-tool",
        "--theme", "--vae-path", "--api-auth", "--device-id", "--cors-allow-origins",
        "--cors-allow-origins-regex", "--tls-keyfile", "--tls-certfile", "--server-name",
        "--subpath", "--forge-ref-a1111-home", "--controlnet-dir",
        "--controlnet-preprocessor-models-dir",
        "--lora-dir", "--lyco-dir-backcompat",  # extensions-builtin/sd_forge_lora/preload.py
        "--scunet-models-path",  # extensions-builtin/ScuNET/preload.py
        "--swinir-models-path",  # extensions-builtin/SwinIR/preload.py
    ):  # fmt: skip
        add(flag, type=str, default=None)
    for flag, default in (
        ("--max-batch-count", 16),
        ("--sub-quad-q-chunk-size", 1024),
        ("--sub-quad-kv-chunk-size", None),
        ("--sub-quad-chunk-threshold", None),
        ("--timeout-keep-alive", 30),
        ("--filenames-max-length", 128),
    ):
        add(flag, type=int, default=default)
    add("--port", type=int, default=None)
    add("--precision", type=str, choices=["full", "half", "autocast"], default="autocast")
    add("--controlnet-loglevel", default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"])  # fmt: skip
    add("--ngrok-options", type=json.loads, default={})
    add("--use-cpu", nargs="+", default=[], type=str.lower)
    add("--gradio-allowed-path", action="append", default=[])
    add("--styles-file", type=str, action="append", default=[])
    return p


def parse_auth(value: str | None, flag: str, maxsplit: int = -1) -> dict[str, str]:
    """--api-auth: ``for auth in value.split(","): user, password = auth.split(":")``;
    --gradio-auth: the same with ``split(":", 1)`` (blank entries skipped)."""
    creds: dict[str, str] = {}
    if not value:
        return creds
    for auth in value.split(","):
        if maxsplit == 1 and not auth.strip():
            continue
        parts = auth.strip().split(":", maxsplit) if maxsplit == 1 else auth.split(":")
        if len(parts) != 2:
            expected = (
                "too many values to unpack" if len(parts) > 2 else "not enough values to unpack"
            )
            raise ValueError(f"{flag}: {expected} (expected 2, got {len(parts)})")
        creds[parts[0]] = parts[1]
    return creds


def mask_argv(argv: Sequence[str]) -> list[str]:
    masked = []
    hide_next = False
    for arg in argv:
        if hide_next:
            masked.append(arg.split(":", 1)[0] + ":***" if ":" in arg else "***")
            hide_next = False
            continue
        flag = arg.split("=", 1)[0]
        if flag in ("--api-auth", "--gradio-auth"):
            if "=" in arg:
                masked.append(flag + "=***")
            else:
                masked.append(arg)
                hide_next = True
            continue
        masked.append(arg)
    return masked


# --------------------------------------------------------------------------------------------
# GPU, files, checkpoints


def gpu_view(env: dict[str, str], device_id: int | None) -> JsonDict:
    """What CUDA sees in the container, and the device Forge ends up using."""

    def parse(name: str) -> list[str] | None:
        raw = env.get(name)
        if raw is None or raw.strip().lower() in UNRESTRICTED_GPU_VALUES:
            return None
        if raw.strip().lower() in NO_GPU_VALUES:
            return []
        return [item.strip() for item in raw.split(",") if item.strip()]

    nvidia = parse("NVIDIA_VISIBLE_DEVICES")
    cuda = parse("CUDA_VISIBLE_DEVICES")
    visible = nvidia  # None: nothing restricts the GPUs
    if cuda is not None:
        if visible is None:
            visible = cuda
        else:  # CUDA_VISIBLE_DEVICES picks among the GPUs the container has (ordinals or ids)
            visible = [
                visible[int(c)] if c.isdigit() else c
                for c in cuda
                if (c.isdigit() and int(c) < len(visible)) or c in visible
            ]
    index = device_id if device_id is not None else 0
    device: str | None
    if visible is None:
        device = str(index)  # nothing restricts the GPUs: the host's index
    elif 0 <= index < len(visible):
        device = visible[index]
    else:
        device = None
    return {
        "nvidia_visible_devices": env.get("NVIDIA_VISIBLE_DEVICES"),
        "cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES"),
        "visible": visible,
        "gpu_device_id": device_id,
        # Forge: os.environ['CUDA_VISIBLE_DEVICES'] = str(args.gpu_device_id)
        "forge_cuda_visible_devices": str(device_id) if device_id is not None else None,
        "device": device,
    }


def load_json_file(path: str | None, what: str) -> JsonDict:
    if not path or not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8") as handle:
        data = json.load(handle)  # a broken file stops Forge at start, as upstream
    if not isinstance(data, dict):
        raise ValueError(f"{what} {path} does not hold a JSON object")
    return data


class Checkpoints:
    """The checkpoint folders Forge scans, with A1111's title/model_name/hash fields."""

    def __init__(self, folders: list[str], hash_max: int) -> None:
        self.folders = folders
        self.hash_max = hash_max
        self._hashes: dict[tuple[str, int, float], str] = {}
        self.lock = threading.Lock()

    def _sha256(self, path: Path) -> str | None:
        stat = path.stat()
        if stat.st_size > self.hash_max:
            return None
        key = (str(path), stat.st_size, stat.st_mtime)
        with self.lock:
            if key not in self._hashes:
                digest = hashlib.sha256()
                with path.open("rb") as handle:
                    for block in iter(lambda: handle.read(1 << 20), b""):
                        digest.update(block)
                self._hashes[key] = digest.hexdigest()
            return self._hashes[key]

    def list(self) -> list[JsonDict]:
        found: dict[str, JsonDict] = {}
        for folder in self.folders:
            base = Path(folder)
            if not base.is_dir():
                continue
            for path in sorted(base.rglob("*")):
                if not path.is_file() or path.suffix.lower() not in CHECKPOINT_SUFFIXES:
                    continue
                name = str(path.relative_to(base))
                if name in found:
                    continue
                sha = self._sha256(path)
                short = sha[:10] if sha else None
                found[name] = {
                    "title": f"{name} [{short}]" if short else name,
                    "model_name": os.path.splitext(name.replace("/", "_"))[0],
                    "hash": short,
                    "sha256": sha,
                    "filename": f"{FORGE_ROOT}/models/Stable-diffusion/{name}",
                    "config": None,
                }
        return list(found.values())

    def find(self, alias: Any) -> JsonDict | None:
        if not alias:
            return None
        for item in self.list():
            names = {item["title"], item["model_name"], os.path.basename(item["filename"])}
            names |= {item["filename"].rsplit("/models/Stable-diffusion/", 1)[-1]}
            if item["hash"]:
                names |= {item["hash"], item["sha256"]}
            if str(alias) in names:
                return item
        return None


# --------------------------------------------------------------------------------------------
# PNG


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def make_png(width: int, height: int, seed: int, text: str) -> bytes:
    """An RGB PNG of the given size: a gradient that depends on the seed."""
    rng = random.Random(seed)
    shift_r, shift_b = rng.randrange(256), rng.randrange(256)
    reds = bytes((x * 255 // max(width - 1, 1) + shift_r) % 256 for x in range(width))
    blues = bytes((shift_b + x // 4) % 256 for x in range(width))
    raw = bytearray()
    row = bytearray(3 * width)
    row[0::3] = reds
    row[2::3] = blues
    for y in range(height):
        row[1::3] = bytes([y * 255 // max(height - 1, 1)]) * width
        raw += b"\x00" + row
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", ihdr)
        + png_chunk(b"tEXt", b"parameters\x00" + text.encode("latin-1", "replace"))
        + png_chunk(b"IDAT", zlib.compress(bytes(raw), 6))
        + png_chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------------------------
# state and HTTP


class HttpError(Exception):
    def __init__(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


class Forge:
    """Everything the Forge server needs, derived from argv and the environment."""

    def __init__(self, args: argparse.Namespace, argv: list[str], env: dict[str, str]) -> None:
        self.args = args
        self.argv = argv
        self.env = env
        self.api_credentials = parse_auth(args.api_auth, "--api-auth")
        self.gradio_credentials = parse_auth(args.gradio_auth, "--gradio-auth", maxsplit=1)
        if args.gradio_auth_path:
            # open() of an unreadable or missing file raises: Forge does not start (fails closed)
            with open(args.gradio_auth_path, encoding="utf8") as handle:
                for line in handle.readlines():
                    self.gradio_credentials.update(
                        parse_auth(line.strip(), "--gradio-auth-path", maxsplit=1)
                    )
        workspace = env.get("WORKSPACE", "/workspace").rstrip("/") or "/workspace"
        folders = [f"{workspace}/{CHECKPOINT_SUBDIR}"]
        if args.ckpt_dir:
            folders.insert(0, args.ckpt_dir)
        hash_max = int(float(env.get("STANDIN_HASH_MAX_BYTES") or 256 * 1024 * 1024))
        self.checkpoints = Checkpoints(folders, hash_max)
        self.settings_path = args.ui_settings_file or f"{FORGE_ROOT}/config.json"
        self.ui_config_path = args.ui_config_file or f"{FORGE_ROOT}/ui-config.json"
        self.settings = load_json_file(self.settings_path, "--ui-settings-file")
        self.ui_config = load_json_file(self.ui_config_path, "--ui-config-file")
        self.gpu = gpu_view(env, args.gpu_device_id)
        self.lock = threading.Lock()
        self.started = time.time()
        self.jobs = 0
        self.report: JsonDict = {}

    # options ---------------------------------------------------------------------------------

    def options(self) -> JsonDict:
        with self.lock:
            data = {**OPTION_DEFAULTS, **self.settings}
        if not data.get("sd_model_checkpoint"):
            first = next(iter(self.checkpoints.list()), None)
            data["sd_model_checkpoint"] = first["title"] if first else None
        return data

    def set_options(self, request: JsonDict) -> None:
        name = request.get("sd_model_checkpoint")
        if name is not None and self.checkpoints.find(name) is None:
            raise HttpError(500, "Internal Server Error")
        with self.lock:
            self.settings.update(request)
            directory = os.path.dirname(self.settings_path) or "."
            os.makedirs(directory, exist_ok=True)
            with open(self.settings_path, "w", encoding="utf-8") as handle:
                json.dump(self.settings, handle, indent=4, ensure_ascii=False)

    def cmd_flags(self) -> JsonDict:
        return {k: v for k, v in sorted(vars(self.args).items())}

    # txt2img ---------------------------------------------------------------------------------

    def txt2img(self, request: JsonDict) -> JsonDict:
        unknown_types = []
        for key in INT_FIELDS:
            value = request.get(key, TXT2IMG_DEFAULTS[key])
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or int(value) != value
            ):
                unknown_types.append(
                    {
                        "loc": ["body", key],
                        "msg": "value is not a valid integer",
                        "type": "type_error.integer",
                    }
                )
        for key in FLOAT_FIELDS:
            value = request.get(key, TXT2IMG_DEFAULTS[key])
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                unknown_types.append(
                    {
                        "loc": ["body", key],
                        "msg": "value is not a valid float",
                        "type": "type_error.float",
                    }
                )
        if unknown_types:
            raise HttpError(422, {"detail": unknown_types})
        params = {**TXT2IMG_DEFAULTS, **request}
        override = params.get("override_settings") or {}
        if not isinstance(override, dict):
            raise HttpError(
                422,
                {
                    "detail": [
                        {
                            "loc": ["body", "override_settings"],
                            "msg": "value is not a valid dict",
                            "type": "type_error.dict",
                        }
                    ]
                },
            )
        options = self.options()
        wanted = override.get("sd_model_checkpoint") or options.get("sd_model_checkpoint")
        checkpoint = self.checkpoints.find(wanted)
        if checkpoint is None:
            raise HttpError(500, "Internal Server Error")  # RuntimeError: model not found
        sampler = params.get("sampler_name") or params.get("sampler_index") or "Euler"
        if sampler not in SAMPLERS:
            raise HttpError(400, {"detail": "Sampler not found"})
        width, height = int(params["width"]), int(params["height"])
        if not 64 <= width <= MAX_SIDE or not 64 <= height <= MAX_SIDE:
            raise HttpError(500, "Internal Server Error")
        # the latent is width/8 x height/8: the image comes back rounded down to a multiple of 8
        width, height = width - width % 8, height - height % 8
        seed = int(params["seed"])
        if seed == -1:
            seed = random.randrange(2**32)
        count = int(params["batch_size"]) * int(params["n_iter"])
        if not 1 <= count <= 16:
            raise HttpError(500, "Internal Server Error")
        with self.lock:
            self.jobs += 1
        infotext = (
            f"{params['prompt']}\nSteps: {params['steps']}, Sampler: {sampler}, "
            f"Schedule type: Automatic, CFG scale: {params['cfg_scale']}, Seed: {seed}, "
            f"Size: {width}x{height}, Model hash: {checkpoint['hash']}, "
            f"Model: {checkpoint['model_name']}, Version: {FORGE_VERSION}"
        )
        images = []
        if params.get("send_images", True):
            images = [
                base64.b64encode(make_png(width, height, seed + i, infotext)).decode("ascii")
                for i in range(count)
            ]
        info = {
            "prompt": params["prompt"],
            "all_prompts": [params["prompt"]] * count,
            "negative_prompt": params["negative_prompt"],
            "all_negative_prompts": [params["negative_prompt"]] * count,
            "seed": seed,
            "all_seeds": [seed + i for i in range(count)],
            "subseed": params["subseed"],
            "all_subseeds": [params["subseed"]] * count,
            "subseed_strength": params["subseed_strength"],
            "width": width,
            "height": height,
            "sampler_name": sampler,
            "cfg_scale": params["cfg_scale"],
            "steps": params["steps"],
            "batch_size": params["batch_size"],
            "restore_faces": False,
            "face_restoration_model": None,
            "sd_model_name": checkpoint["model_name"],
            "sd_model_hash": checkpoint["hash"],
            "sd_vae_name": None,
            "sd_vae_hash": None,
            "seed_resize_from_w": params["seed_resize_from_w"],
            "seed_resize_from_h": params["seed_resize_from_h"],
            "denoising_strength": params["denoising_strength"],
            "extra_generation_params": {"Schedule type": "Automatic"},
            "index_of_first_image": 0,
            "infotexts": [infotext] * count,
            "styles": params["styles"] or [],
            "job_timestamp": time.strftime("%Y%m%d%H%M%S"),
            "clip_skip": options.get("CLIP_stop_at_last_layers", 1),
            "is_using_inpainting_conditioning": False,
            "version": FORGE_VERSION,
        }
        return {"images": images, "parameters": params, "info": json.dumps(info)}


class ForgeServer(ThreadingHTTPServer):
    daemon_threads = True
    forge: Forge

    def __init__(self, address: tuple[str, int], forge: Forge) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, ForgeHandler, bind_and_activate=False)
        self.forge = forge

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)  # no reverse DNS lookup
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class BaseHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    path_only = "/"
    query: dict[str, list[str]]
    body = b""

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def send(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        if isinstance(body, (bytes, bytearray)):
            data, ctype = bytes(body), "application/octet-stream"
        elif isinstance(body, str):
            data, ctype = body.encode("utf-8"), "text/plain; charset=utf-8"
        else:
            data, ctype = (
                json.dumps(body, separators=(",", ":")).encode("utf-8"),
                "application/json",
            )
        headers = dict(headers or {})
        ctype = headers.pop("Content-Type", ctype)
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def parse_path(self) -> None:
        parts = urllib.parse.urlsplit(self.path)
        self.path_only = parts.path or "/"
        self.query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)


class ForgeHandler(BaseHandler):
    """Forge's FastAPI app: the API (with --api), /internal/ping, the gradio page."""

    server: ForgeServer
    server_version = "uvicorn"
    sys_version = ""

    def version_string(self) -> str:
        return "uvicorn"

    def routes(self) -> dict[tuple[str, str], tuple[Callable[[], Any], bool]]:
        forge = self.server.forge
        api = bool(forge.args.api or forge.args.nowebui)
        table: dict[tuple[str, str], tuple[Callable[[], Any], bool]] = {
            ("GET", "/internal/ping"): (lambda: {}, False),
            ("GET", "/standin/report"): (lambda: forge.report, False),
        }
        if not forge.args.nowebui:
            table[("GET", "/")] = (self.page, False)
        if api:
            table.update(
                {
                    ("POST", "/sdapi/v1/txt2img"): (lambda: forge.txt2img(self.json_body()), True),
                    ("GET", "/sdapi/v1/sd-models"): (forge.checkpoints.list, True),
                    ("GET", "/sdapi/v1/options"): (forge.options, True),
                    ("POST", "/sdapi/v1/options"): (
                        lambda: forge.set_options(self.json_body()),
                        True,
                    ),
                    ("GET", "/sdapi/v1/cmd-flags"): (forge.cmd_flags, True),
                    ("GET", "/sdapi/v1/samplers"): (
                        lambda: [{"name": s, "aliases": [], "options": {}} for s in SAMPLERS],
                        True,
                    ),
                    # modules/api/api.py: every /sdapi route takes the --api-auth dependency
                    ("GET", "/sdapi/v1/progress"): (self.progress, True),
                    ("POST", "/sdapi/v1/refresh-checkpoints"): (lambda: None, True),
                }
            )
        return table

    def page(self) -> HttpError:
        forge = self.server.forge
        if forge.gradio_credentials and not self.gradio_session():
            html = "<!doctype html><html><head><title>Login</title></head><body>login</body></html>"
        else:
            html = "<!doctype html><html><head><title>Stable Diffusion</title></head><body>Forge</body></html>"
        return HttpError(200, html, {"Content-Type": "text/html; charset=utf-8"})

    def gradio_session(self) -> bool:
        return "access-token" in (self.headers.get("Cookie") or "")

    def progress(self) -> JsonDict:
        return {
            "progress": 0.0,
            "eta_relative": 0.0,
            "state": {
                "skipped": False,
                "interrupted": False,
                "stopping_generation": False,
                "job": "",
                "job_count": 0,
                "job_timestamp": "0",
                "job_no": 0,
                "sampling_step": 0,
                "sampling_steps": 0,
            },
            "current_image": None,
            "textinfo": None,
            "current_task": None,
        }

    def json_body(self) -> Any:
        try:
            return json.loads(self.body or b"null")
        except ValueError:
            raise HttpError(
                422,
                {
                    "detail": [
                        {
                            "loc": ["body", 0],
                            "msg": "Expecting value",
                            "type": "value_error.jsondecode",
                        }
                    ]
                },
            ) from None

    def check_auth(self) -> None:
        """FastAPI's HTTPBasic, then Forge's Api.auth."""
        credentials = self.server.forge.api_credentials
        if not credentials:
            return
        challenge = {"WWW-Authenticate": "Basic"}
        header = self.headers.get("Authorization") or ""
        scheme, _, param = header.partition(" ")
        if not header or scheme.lower() != "basic":
            raise HttpError(401, {"detail": "Not authenticated"}, challenge)
        try:
            user, sep, password = (
                base64.b64decode(param.strip(), validate=True).decode("ascii").partition(":")
            )
        except (binascii.Error, UnicodeDecodeError, ValueError):
            raise HttpError(
                401, {"detail": "Invalid authentication credentials"}, challenge
            ) from None
        if not sep:
            raise HttpError(401, {"detail": "Invalid authentication credentials"}, challenge)
        expected = credentials.get(user)
        if expected is None or not hmac.compare_digest(password.encode(), expected.encode()):
            raise HttpError(401, {"detail": "Incorrect username or password"}, challenge)

    def dispatch(self) -> None:
        started = time.monotonic()
        self.parse_path()
        self.body = self.read_body()
        routes = self.routes()
        route = routes.get((self.command, self.path_only))
        status = 200
        try:
            if route is None:
                if any(path == self.path_only for _, path in routes):
                    raise HttpError(405, {"detail": "Method Not Allowed"})
                raise HttpError(404, {"detail": "Not Found"})
            handler, needs_auth = route
            if needs_auth:
                self.check_auth()
            result = handler()
            if isinstance(result, HttpError):
                raise result
            self.send(200, result)
        except HttpError as exc:
            status = exc.status
            self.send(exc.status, exc.body, exc.headers)
        except Exception as exc:
            status = 500
            log(f"*** API error: {self.command}: {self.path_only} {type(exc).__name__}: {exc}")
            self.send(500, "Internal Server Error")
        if self.server.forge.args.api_log and self.path_only.startswith("/sdapi"):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S")
            log(
                f"API {stamp} {status} http/1.1 {self.command} {self.path_only} "
                f"{self.client_address[0]} {time.monotonic() - started:.4f}"
            )

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = dispatch


class CaddyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], upstream: int, env: dict[str, str]) -> None:
        super().__init__(address, CaddyHandler, bind_and_activate=False)
        self.upstream = upstream
        self.auth = env.get("WEB_ENABLE_AUTH", "true").lower() != "false"
        self.token = env["WEB_TOKEN"]
        self.cookie = env.get("CADDY_AUTH_COOKIE_NAME") or "ai_dock_token"
        port = env.get("SERVICEPORTAL_PORT_HOST") or "1111"
        address_for_login = env.get("DIRECT_ADDRESS") or "localhost"
        self.login = env.get("SERVICEPORTAL_LOGIN") or f"http://{address_for_login}:{port}/login"

    def server_bind(self) -> None:
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)


class CaddyHandler(BaseHandler):
    """The ai-dock Caddy in front of Forge: WEB_TOKEN (cookie, bearer, ?token=) or the portal."""

    server: CaddyServer

    def version_string(self) -> str:
        return "Caddy"

    def authorised(self) -> tuple[bool, bool]:
        """(passes, authenticated just now by bearer or query: set the cookie)."""
        server = self.server
        if not server.auth:
            return True, False
        token = server.token.encode()
        cookies = self.headers.get("Cookie") or ""
        for part in cookies.split(";"):
            name, _, value = part.strip().partition("=")
            if name == server.cookie and hmac.compare_digest(value.encode(), token):
                return True, False
        header = self.headers.get("Authorization") or ""
        if header.startswith("Bearer ") and hmac.compare_digest(header[7:].encode(), token):
            return True, True
        for value in self.query.get("token", []):
            if hmac.compare_digest(value.encode(), token):
                return True, True
        return False, False

    def dispatch(self) -> None:
        self.parse_path()
        body = self.read_body()
        passes, fresh = self.authorised()
        if not passes:
            self.send(302, "", {"Location": self.server.login})
            return
        extra = {}
        if fresh:
            extra["Set-Cookie"] = (
                f"{self.server.cookie}={self.server.token}; Path=/; Max-Age=604800; HttpOnly; SameSite=lax"
            )
        try:
            conn = http.client.HTTPConnection("127.0.0.1", self.server.upstream, timeout=60)
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")
            }
            headers["Host"] = self.headers.get("Host") or "localhost"
            conn.request(self.command, self.path, body=body or None, headers=headers)
            answer = conn.getresponse()
            data = answer.read()
            conn.close()
        except OSError:
            self.send(502, "", extra)
            return
        passthrough = {
            k: v
            for k, v in answer.getheaders()
            if k.lower()
            not in ("content-length", "connection", "transfer-encoding", "server", "date")
        }
        passthrough.update(extra)
        self.send(answer.status, data, passthrough)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = dispatch


# --------------------------------------------------------------------------------------------
# main


class Terminated(BaseException):
    pass


def _on_signal(signum: int, frame: FrameType | None) -> None:
    del frame
    raise Terminated(signal.Signals(signum).name)


def crash(exc_type: str, message: str) -> int:
    print("Traceback (most recent call last):", file=sys.stderr)
    print('  File "/opt/stable-diffusion-webui-forge/launch.py", in <module>', file=sys.stderr)
    print(f"{exc_type}: {message}", file=sys.stderr, flush=True)
    return 1


def services(env: dict[str, str]) -> dict[str, bool]:
    """Which ai-dock supervisor programs start (SUPERVISOR_NO_AUTOSTART, SERVERLESS)."""
    no_autostart = {
        s.strip().lower() for s in env.get("SUPERVISOR_NO_AUTOSTART", "").split(",") if s.strip()
    }
    if env.get("SERVERLESS", "").lower() == "true" and not env.get("SUPERVISOR_NO_AUTOSTART"):
        no_autostart = {
            "caddy",
            "cloudflared",
            "jupyter",
            "quicktunnel",
            "serviceportal",
            "sshd",
            "syncthing",
        }
    names = (
        "caddy",
        "cloudflared",
        "jupyter",
        "quicktunnel",
        "serviceportal",
        "sshd",
        "syncthing",
        "forge",
    )
    started = {name: name not in no_autostart for name in names}
    started["cloudflared"] = started["cloudflared"] and bool(env.get("CF_TUNNEL_TOKEN"))
    started["quicktunnel"] = (
        started["quicktunnel"] and env.get("CF_QUICK_TUNNELS", "true").lower() != "false"
    )
    return started


def main(environ: dict[str, str] | None = None) -> int:
    given = dict(os.environ if environ is None else environ)
    env = aidock_env(given)
    env.setdefault("WEB_USER", "user")
    if not env.get("WEB_PASSWORD"):
        env["WEB_PASSWORD"] = secrets.token_urlsafe(9)[:12]
    if not env.get("WEB_TOKEN"):
        env["WEB_TOKEN"] = secrets.token_hex(16)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    argv = launcher_argv(env)
    log("Starting SD Web UI Forge...")
    log(f"Launching launch.py with arguments: {' '.join(mask_argv(argv))}")
    args = make_parser().parse_args(argv)  # exits 2 on an unknown flag or a bad value
    try:
        forge = Forge(args, argv, env)
    except (ValueError, OSError) as exc:  # bad --api-auth, a broken settings file
        return crash(type(exc).__name__, str(exc))
    gpu = forge.gpu
    no_gpu_ok = args.skip_torch_cuda_test or args.always_cpu
    if gpu["device"] is None and not no_gpu_ok:
        return crash(
            "RuntimeError",
            "Torch is not able to use GPU; add --skip-torch-cuda-test to COMMANDLINE_ARGS "
            f"variable to disable this check (visible GPUs {gpu['visible']}, "
            f"--gpu-device-id {args.gpu_device_id})",
        )
    if args.gpu_device_id is not None:
        log(f"Set device to: {args.gpu_device_id}")
    server_name = args.server_name or ("0.0.0.0" if args.listen else "127.0.0.1")
    port = args.port or (7861 if args.nowebui else 7860)
    started = services(env)
    caddy_port = int(env.get("FORGE_PORT_HOST") or DEFAULT_PROXY_PORT)
    forge.report = {
        "argv": mask_argv(argv),
        "version": FORGE_VERSION,
        "uid": os.getuid(),
        "server_name": server_name,
        "port": port,
        "listen": bool(args.listen),
        "api": bool(args.api or args.nowebui),
        "api_log": bool(args.api_log),
        "api_auth_users": sorted(forge.api_credentials),
        "gradio_auth_users": sorted(forge.gradio_credentials),
        "cmd_flags_leak": bool(forge.gradio_credentials) and not forge.api_credentials,
        "gpu": gpu,
        "cuda_malloc": bool(args.cuda_malloc),
        "xformers": bool(args.xformers),
        "ui_settings_file": forge.settings_path,
        "ui_settings": forge.settings,
        "ui_config_file": forge.ui_config_path,
        "ui_config": forge.ui_config,
        "workspace": env.get("WORKSPACE", "/workspace"),
        "checkpoint_folders": forge.checkpoints.folders,
        "services": started,
        "caddy": {
            "port": caddy_port if started["caddy"] else None,
            "web_enable_auth": env.get("WEB_ENABLE_AUTH", "true").lower() != "false",
            "web_user": env["WEB_USER"],
            # the image picks random ones when these are not set
            "web_token_set": bool(given.get("WEB_TOKEN")),
            "web_password_set": bool(given.get("WEB_PASSWORD")),
        },
    }
    servers: list[ThreadingHTTPServer] = []
    try:
        caddy: CaddyServer | None = None
        if started["caddy"]:
            caddy = CaddyServer(
                (env.get("STANDIN_CADDY_BIND") or "127.0.0.1", caddy_port), port, env
            )
            caddy.server_bind()
            caddy.server_activate()
            servers.append(caddy)
            threading.Thread(
                target=caddy.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True
            ).start()
        delay = float(env.get("STANDIN_LOAD_SECONDS") or 0)
        log(
            f"Loading {forge.settings.get('sd_model_checkpoint') or 'the default checkpoint'} (stand-in: {delay:g} s)"
        )
        time.sleep(max(delay, 0.0))
        if env.get("STANDIN_EXIT_AFTER_LOAD") == "1":
            return crash(
                "torch.OutOfMemoryError",
                "CUDA out of memory. Tried to allocate 2.50 GiB. GPU 0 has a total capacity of "
                "23.99 GiB of which 1.02 GiB is free.",
            )
        server = ForgeServer((server_name, port), forge)
        try:
            server.server_bind()
        except OSError as exc:
            return crash(
                "OSError",
                f"[Errno {exc.errno}] error while attempting to bind on address ({server_name!r}, {port}): {exc.strerror}",
            )
        server.server_activate()
        servers.append(server)
        print("standin-report " + json.dumps(forge.report, sort_keys=True), flush=True)
        log(f"Running on local URL:  http://{server_name}:{port}")
        server.serve_forever(poll_interval=0.2)
    except Terminated:
        log("Interrupted with signal 15 in <frame>")
    except OSError as exc:
        return crash("OSError", str(exc))
    finally:
        for srv in servers:
            srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
