"""Stand-in for ComfyUI's ``main.py`` with the ComfyUI-Login custom node (test double only).

It loads no model and needs no GPU or PyTorch. It takes ComfyUI's real command line (unknown
flags exit 2, as argparse does upstream), serves ComfyUI's HTTP API (every route also under
``/api``), and, when ``custom_nodes/ComfyUI-Login`` is installed, enforces ComfyUI-Login's auth:
the token is line 1 of ``login/PASSWORD`` (the bcrypt hash string, compared as a string, so no
bcrypt is needed here), read once at start; ``Authorization: Bearer <hash>`` or ``?token=<hash>``;
checked only when ``--enable-cors-header`` is unset, ``*`` or equal to the request's Origin;
``/login`` and ``*.css``, ``*.css.map``, ``*.js``, ``*.ico`` exempt; unauthenticated requests get
302 to /login when Accept holds text/html, else 401 ``{"error": "Authentication required."}``; a
malformed Authorization header gives 500.

As upstream, the token is logged in full at INFO (``For direct API calls, use token=<hash>``), and
a PASSWORD the process cannot read (PermissionError, which upstream does not catch) makes the node
fail to import: ComfyUI then serves every route without authentication (/login still answers).

Deliberate difference: upstream, a missing PASSWORD leaves the token empty (``?token=`` passes).
The stand-in refuses to start instead (exit 1, a log line naming the file), so a deployment that
starts ComfyUI before writing PASSWORD fails its test rather than running open.

ComfyUI root = this file's directory (like upstream's folder_paths). Stand-in knobs (environment):
  STANDIN_LOAD_SECONDS   float, default 0: start-up delay before the port listens.
  STANDIN_EXIT_AFTER_LOAD=1  after that delay, a CUDA out-of-memory traceback and exit 1 (a
                         release that cannot start).
  STANDIN_STEP_SECONDS   float, default 0.1: time one prompt takes to "run".
  STANDIN_VRAM_MIB       int, default 24564: VRAM reported per GPU.
  STANDIN_ACCESS_LOG=1   log every request.
GPUs: NVIDIA_VISIBLE_DEVICES (set by the NVIDIA runtime from a compose reservation, or directly)
then CUDA_VISIBLE_DEVICES; ``--cuda-device N`` sets CUDA_VISIBLE_DEVICES=N as upstream does.
Without any GPU and without ``--cpu`` it exits 1 like a torch build that finds no CUDA device.
Stand-in-only route (no auth): GET /standin/report, what it was started with (never the token).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from types import FrameType

import standin_cli
import standin_server

ROOT = os.path.dirname(os.path.abspath(__file__))
LOGIN_NODE = "ComfyUI-Login"
UNRESTRICTED = {"", "all", "void", "none"}


class Terminated(BaseException):
    pass


def _on_signal(signum: int, frame: FrameType | None) -> None:
    del frame
    raise Terminated(signal.Signals(signum).name)


def visible_gpus(env: dict[str, str]) -> list[str] | None:
    for name in ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES"):
        raw = env.get(name)
        if raw is not None and raw.strip().lower() not in UNRESTRICTED:
            return [item.strip() for item in raw.split(",") if item.strip()]
    return None


def custom_nodes(root: str, args: object) -> list[str]:
    """Custom node packages ComfyUI would import (a directory with __init__.py)."""
    directory = os.path.join(root, "custom_nodes")
    found: list[str] = []
    if not os.path.isdir(directory):
        return found
    for name in sorted(os.listdir(directory)):
        path = os.path.join(directory, name)
        if name.startswith(".") or name == "__pycache__" or name.endswith(".disabled"):
            continue
        if not os.path.isfile(os.path.join(path, "__init__.py")):
            continue
        if getattr(args, "disable_all_custom_nodes", False) and name not in getattr(
            args, "whitelist_custom_nodes", []
        ):
            logging.info(
                f"Skipping {name} due to disable_all_custom_nodes and whitelist_custom_nodes"
            )
            continue
        found.append(name)
    return found


def node_version(path: str) -> str | None:
    """``version`` from a custom node's pyproject.toml, if any (shown in the report)."""
    try:
        with open(os.path.join(path, "pyproject.toml"), encoding="utf-8") as handle:
            for line in handle:
                key, sep, value = line.partition("=")
                if sep and key.strip() == "version":
                    return value.strip().strip("\"'")
    except OSError:
        return None
    return None


def read_password(root: str) -> tuple[str, str | None, int] | None:
    """(token, user, file mode) from login/PASSWORD, or None when missing or line 1 is empty."""
    path = os.path.join(root, "login", "PASSWORD")
    try:
        with open(path, encoding="utf-8") as handle:
            token = handle.readline().strip()
            user = handle.readline().strip() or None
        mode = os.stat(path).st_mode & 0o777
    except FileNotFoundError:
        return None
    if not token:
        return None
    return token, user, mode


def main(argv: Sequence[str] | None = None) -> int:
    argv_list = list(sys.argv[1:] if argv is None else argv)
    args = standin_cli.make_parser().parse_args(argv_list)  # exits 2 on a bad flag
    logging.basicConfig(
        level=getattr(logging, args.verbose),
        format="%(message)s",
        stream=sys.stdout if args.log_stdout else sys.stderr,
    )
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    env = dict(os.environ)
    if args.cuda_device is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(args.cuda_device)
        env["CUDA_VISIBLE_DEVICES"] = str(args.cuda_device)
        logging.info(f"Set cuda device to: {args.cuda_device}")
    if args.tls_keyfile or args.tls_certfile:
        logging.error("stand-in: TLS (--tls-keyfile/--tls-certfile) is not supported")
        return 1

    gpus = visible_gpus(env)
    if not args.cpu and gpus is None:
        logging.error(
            "RuntimeError: Found no NVIDIA driver on your system. (stand-in: no GPU in "
            "NVIDIA_VISIBLE_DEVICES / CUDA_VISIBLE_DEVICES and no --cpu)"
        )
        return 1
    vram_mib = int(env.get("STANDIN_VRAM_MIB", "24564") or 24564)
    logging.info("Checkpoint files will always be loaded safely.")
    logging.info(f"Total VRAM {vram_mib} MB, total RAM {standin_server._meminfo()[0] // 2**20} MB")
    logging.info(f"pytorch version: {standin_server.PYTORCH_VERSION}")
    logging.info(f"Device: {'cpu' if args.cpu else 'cuda:0 NVIDIA GPU (stand-in)'}")
    logging.info(f"ComfyUI version: {standin_server.COMFYUI_VERSION}")
    logging.info("ComfyUI frontend version: 1.26.13 (stand-in)")
    logging.info(f"[Prompt Server] web root: {ROOT}/web (stand-in)")

    loaded = custom_nodes(ROOT, args)
    login_enabled = LOGIN_NODE in loaded
    login_path = os.path.join(ROOT, "custom_nodes", LOGIN_NODE)
    token, user, mode = "", None, None
    if login_enabled:
        try:
            password = read_password(ROOT)
        except PermissionError as exc:
            # upstream catches only FileNotFoundError: the node's import fails, ComfyUI's loader
            # logs it and skips the node, and ComfyUI serves without authentication
            logging.warning(f"Traceback (most recent call last):\nPermissionError: {exc}")
            logging.warning(f"Cannot import {login_path} module for custom nodes: {exc}")
            login_enabled = False
            password = ("", None, 0)
        if password is None:
            logging.error(
                f"ComfyUI-Login: {os.path.join(ROOT, 'login', 'PASSWORD')} is missing or empty; "
                "the stand-in refuses to start open (upstream would accept an empty ?token=)"
            )
            return 1
        token, user, mode = password
        if login_enabled:
            logging.info(f"For direct API calls, use token={token}")  # as upstream: INFO, in full
    logging.info("\nImport times for custom nodes:")
    for name in loaded:
        logging.info(f"   0.0 seconds: {os.path.join(ROOT, 'custom_nodes', name)}")

    delay = float(env.get("STANDIN_LOAD_SECONDS", "0") or 0)
    if delay < 0:
        logging.error(f"ValueError: STANDIN_LOAD_SECONDS must not be negative, got {delay}")
        return 1
    settings = standin_server.Settings(
        root=ROOT,
        listen=args.listen,
        port=args.port,
        cors=args.enable_cors_header,
        login_enabled=login_enabled,
        token=token,
        user=user,
        gpus=None if args.cpu else gpus,
        vram_mib=vram_mib,
        cpu=bool(args.cpu),
        argv=["main.py", *argv_list],
    )
    settings.report = {
        "standin": "comfyui",
        "version": standin_server.COMFYUI_VERSION,
        "argv": settings.argv,
        "listen": args.listen,
        "port": args.port,
        "enable_cors_header": args.enable_cors_header,
        "cuda_device": args.cuda_device,
        "preview_method": args.preview_method,
        "vram_mode": standin_cli.vram_mode(args),
        "gpus": settings.gpus,
        "nvidia_visible_devices": env.get("NVIDIA_VISIBLE_DEVICES"),
        "cuda_visible_devices": env.get("CUDA_VISIBLE_DEVICES"),
        "custom_nodes": loaded,
        "login": {
            "enabled": login_enabled,
            "user": user,
            "password_file_mode": None if mode is None else f"{mode:04o}",
            "node_version": node_version(login_path) if login_enabled else None,
        },
        "load_seconds": delay,
        "pid": os.getpid(),
    }
    server: standin_server.ComfyServer | None = None
    try:
        server = standin_server.ComfyServer(settings)
        try:
            server.server_bind()
        except OSError as exc:
            logging.error(f"OSError: {exc}")
            return 1
        time.sleep(delay)
        if env.get("STANDIN_EXIT_AFTER_LOAD") == "1":
            logging.error(
                "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.50 GiB. GPU 0 has"
                " a total capacity of 23.99 GiB of which 1.02 GiB is free."
            )
            return 1
        server.server_activate()
        shown = "127.0.0.1" if args.listen in ("0.0.0.0", "0.0.0.0,::") else args.listen
        logging.info(f"Starting server\n\nTo see the GUI go to: http://{shown}:{args.port}")
        server.serve_forever(poll_interval=0.2)
    except Terminated as signal_name:
        logging.info(f"Stopped server ({signal_name})")
    finally:
        if server is not None:
            server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
