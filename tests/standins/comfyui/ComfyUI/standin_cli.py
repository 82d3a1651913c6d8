"""ComfyUI's command line (comfy/cli_args.py), for the stand-in.

Every flag of upstream ComfyUI's parser with its type, choices and mutually exclusive groups, so
that a command rendered by a role parses here exactly as it would upstream: an unknown flag (say
``--enable-auth``, which ComfyUI never had) exits 2 with argparse's message. Standard library only.
"""

from __future__ import annotations

import argparse
import os


def is_valid_directory(path: str) -> str:
    if not os.path.exists(path):
        raise argparse.ArgumentTypeError(f"The path '{path}' does not exist.")
    if not os.path.isdir(path):
        raise argparse.ArgumentTypeError(f"'{path}' is not a directory.")
    if not os.access(path, os.R_OK):
        raise argparse.ArgumentTypeError(f"You do not have read permissions for '{path}'.")
    return path


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="main.py")
    add = parser.add_argument
    add("--listen", type=str, default="127.0.0.1", metavar="IP", nargs="?", const="0.0.0.0,::")
    add("--port", type=int, default=8188)
    add("--tls-keyfile", type=str)
    add("--tls-certfile", type=str)
    add("--enable-cors-header", type=str, default=None, metavar="ORIGIN", nargs="?", const="*")
    add("--max-upload-size", type=float, default=100)
    add("--base-directory", type=str, default=None)
    add("--extra-model-paths-config", type=str, default=None, nargs="+", action="append")
    add("--output-directory", type=str, default=None)
    add("--temp-directory", type=str, default=None)
    add("--input-directory", type=str, default=None)
    add("--auto-launch", action="store_true")
    add("--disable-auto-launch", action="store_true")
    add("--cuda-device", type=int, default=None, metavar="DEVICE_ID")
    add("--default-device", type=int, default=None, metavar="DEFAULT_DEVICE_ID")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--cuda-malloc", action="store_true")
    group.add_argument("--disable-cuda-malloc", action="store_true")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--force-fp32", action="store_true")
    group.add_argument("--force-fp16", action="store_true")
    group = parser.add_mutually_exclusive_group()
    for flag in (
        "--fp32-unet",
        "--fp64-unet",
        "--bf16-unet",
        "--fp16-unet",
        "--fp8_e4m3fn-unet",
        "--fp8_e5m2-unet",
        "--fp8_e8m0fnu-unet",
    ):
        group.add_argument(flag, action="store_true")
    group = parser.add_mutually_exclusive_group()
    for flag in ("--fp16-vae", "--fp32-vae", "--bf16-vae"):
        group.add_argument(flag, action="store_true")
    add("--cpu-vae", action="store_true")
    group = parser.add_mutually_exclusive_group()
    for flag in (
        "--fp8_e4m3fn-text-enc",
        "--fp8_e5m2-text-enc",
        "--fp16-text-enc",
        "--fp32-text-enc",
        "--bf16-text-enc",
    ):
        group.add_argument(flag, action="store_true")
    add("--force-channels-last", action="store_true")
    add("--directml", type=int, nargs="?", metavar="DIRECTML_DEVICE", const=-1)
    add("--oneapi-device-selector", type=str, default=None)
    add("--disable-ipex-optimize", action="store_true")
    add("--supports-fp8-compute", action="store_true")
    add(
        "--preview-method",
        type=str,
        default="none",
        choices=["none", "auto", "latent2rgb", "taesd"],
        metavar="[none,auto,latent2rgb,taesd]",
    )
    add("--preview-size", type=int, default=512)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--cache-classic", action="store_true")
    group.add_argument("--cache-lru", type=int, default=0)
    group.add_argument("--cache-none", action="store_true")
    group = parser.add_mutually_exclusive_group()
    for flag in (
        "--use-split-cross-attention",
        "--use-quad-cross-attention",
        "--use-pytorch-cross-attention",
        "--use-sage-attention",
        "--use-flash-attention",
    ):
        group.add_argument(flag, action="store_true")
    add("--disable-xformers", action="store_true")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--force-upcast-attention", action="store_true")
    group.add_argument("--dont-upcast-attention", action="store_true")
    group = parser.add_mutually_exclusive_group()
    for flag in ("--gpu-only", "--highvram", "--normalvram", "--lowvram", "--novram", "--cpu"):
        group.add_argument(flag, action="store_true")
    add("--reserve-vram", type=float, default=None)
    add("--async-offload", action="store_true")
    add(
        "--default-hashing-function",
        type=str,
        choices=["md5", "sha1", "sha256", "sha512"],
        default="sha256",
    )
    add("--disable-smart-memory", action="store_true")
    add("--deterministic", action="store_true")
    add("--force-non-blocking", action="store_true")
    add(
        "--fast",
        nargs="*",
        type=str,
        choices=["fp16_accumulation", "fp8_matrix_mult", "cublas_ops"],
    )
    add("--mmap-torch-files", action="store_true")
    add("--disable-mmap", action="store_true")
    add("--dont-print-server", action="store_true")
    add("--quick-test-for-ci", action="store_true")
    add("--windows-standalone-build", action="store_true")
    add("--disable-metadata", action="store_true")
    add("--disable-all-custom-nodes", action="store_true")
    add("--whitelist-custom-nodes", type=str, nargs="+", default=[])
    add("--disable-api-nodes", action="store_true")
    add("--multi-user", action="store_true")
    add(
        "--verbose",
        default="INFO",
        const="DEBUG",
        nargs="?",
        choices=["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"],
    )
    add("--log-stdout", action="store_true")
    add("--front-end-version", type=str, default="comfyanonymous/ComfyUI@latest")
    add("--front-end-root", type=is_valid_directory, default=None)
    add("--user-directory", type=is_valid_directory, default=None)
    add("--enable-compress-response-body", action="store_true")
    add("--comfy-api-base", type=str, default="https://api.comfy.org")
    add("--database-url", type=str, default="sqlite:///user/comfyui.db")
    return parser


VRAM_MODES = ("gpu_only", "highvram", "normalvram", "lowvram", "novram", "cpu")


def vram_mode(args: argparse.Namespace) -> str | None:
    return next((mode for mode in VRAM_MODES if getattr(args, mode)), None)
