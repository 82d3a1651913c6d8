"""ComfyUI's command-line grammar (main.py), as data read from upstream's own parser.

Source: comfyanonymous/ComfyUI at SOURCE["commit"], comfy/cli_args.py (argparse, allow_abbrev on:
argparse expands any unambiguous prefix of a long flag).

Read from the snapshot GitHub serves as Comfy-Org/ComfyUI (comfyanonymous/ComfyUI's current name,
the same history): the newest commit of its default branch (master, 2025-10-12); comfy/cli_args.py
last changed at ea6cdd2631fbca6ed81b95796150c32c9a029f0d (2025-09-06). The snapshot's release tags
stop at test tags (v0.1.1113), so SOURCE["version"] is pyproject.toml's (= comfyui_version.py's).

How main.py parses: main.py calls ``comfy.options.enable_args_parsing()`` and imports
``comfy.cli_args``, which builds one ``argparse.ArgumentParser()`` (defaults: allow_abbrev=True,
add_help=True) and calls ``parser.parse_args()``: an unknown flag or a stray word makes ComfyUI
exit with status 2 ("unrecognized arguments"); nothing is ignored. (When args parsing is not
enabled, as for a program importing comfy as a library, it parses ``[]`` instead.)

Value counts: 0 is a switch (store_true), 1 one value, ``"?"`` an optional value (the flag alone
gives argparse's ``const``), ``"+"`` one or more, ``"*"`` zero or more. A value that starts with
``-`` is taken for a flag by argparse (except negative numbers, as the parser has no option that
looks like one). Mutually exclusive groups (the fp/vram/attention/cache groups) are not recorded:
two flags of one group make argparse exit with "not allowed with argument".
"""

from __future__ import annotations

SOURCE: dict[str, str] = {
    "repository": "comfyanonymous/ComfyUI",
    "commit": "a125cd84b054a57729b5eecab930ca9408719832",
    "version": "0.3.64",
    "files": "comfy/cli_args.py, comfy/options.py, main.py, pyproject.toml, comfyui_version.py",
}

#: upstream's argparse expands unambiguous prefixes of long flags (ArgumentParser allow_abbrev)
ALLOW_ABBREV: bool = True

#: comfy/cli_args.py calls parser.parse_args(): unknown flags and stray words are errors (exit 2)
IGNORES_UNKNOWN: bool = False

#: every option string -> the values it takes: 0 (a switch: store_true/store_false/store_const/
#: count), 1, "?" (nargs='?'), "+", "*", or an int N for nargs=N
FLAGS: dict[str, int | str] = {
    "--async-offload": 0,
    "--auto-launch": 0,
    "--base-directory": 1,
    "--bf16-text-enc": 0,
    "--bf16-unet": 0,
    "--bf16-vae": 0,
    "--cache-classic": 0,
    "--cache-lru": 1,  # type=int (in a mutually exclusive group with --cache-classic/--cache-none)
    "--cache-none": 0,
    "--comfy-api-base": 1,
    "--cpu": 0,
    "--cpu-vae": 0,
    "--cuda-device": 1,
    "--cuda-malloc": 0,
    "--database-url": 1,
    "--default-device": 1,
    "--default-hashing-function": 1,
    "--deterministic": 0,
    "--directml": "?",  # nargs="?", const -1 (an int)
    "--disable-all-custom-nodes": 0,
    "--disable-api-nodes": 0,
    "--disable-auto-launch": 0,
    "--disable-cuda-malloc": 0,
    "--disable-ipex-optimize": 0,
    "--disable-metadata": 0,
    "--disable-mmap": 0,
    "--disable-smart-memory": 0,
    "--disable-xformers": 0,
    "--dont-print-server": 0,
    "--dont-upcast-attention": 0,
    "--enable-compress-response-body": 0,
    "--enable-cors-header": "?",  # nargs="?", const "*"
    "--extra-model-paths-config": "+",  # nargs="+" with action="append": repeatable, each takes 1 or more
    "--fast": "*",  # nargs="*": 0 or more values
    "--force-channels-last": 0,
    "--force-fp16": 0,
    "--force-fp32": 0,
    "--force-non-blocking": 0,
    "--force-upcast-attention": 0,
    "--fp16-text-enc": 0,
    "--fp16-unet": 0,
    "--fp16-vae": 0,
    "--fp32-text-enc": 0,
    "--fp32-unet": 0,
    "--fp32-vae": 0,
    "--fp64-unet": 0,
    "--fp8_e4m3fn-text-enc": 0,
    "--fp8_e4m3fn-unet": 0,
    "--fp8_e5m2-text-enc": 0,
    "--fp8_e5m2-unet": 0,
    "--fp8_e8m0fnu-unet": 0,
    "--front-end-root": 1,  # type checks the path is an existing readable directory
    "--front-end-version": 1,
    "--gpu-only": 0,
    "--help": 0,  # argparse's own help (add_help): prints usage and exits 0
    "--highvram": 0,
    "--input-directory": 1,
    "--listen": "?",  # nargs="?", const "0.0.0.0,::"
    "--log-stdout": 0,
    "--lowvram": 0,
    "--max-upload-size": 1,
    "--mmap-torch-files": 0,
    "--multi-user": 0,
    "--normalvram": 0,
    "--novram": 0,
    "--oneapi-device-selector": 1,
    "--output-directory": 1,
    "--port": 1,
    "--preview-method": 1,
    "--preview-size": 1,
    "--quick-test-for-ci": 0,
    "--reserve-vram": 1,
    "--supports-fp8-compute": 0,
    "--temp-directory": 1,
    "--tls-certfile": 1,
    "--tls-keyfile": 1,
    "--use-flash-attention": 0,
    "--use-pytorch-cross-attention": 0,
    "--use-quad-cross-attention": 0,
    "--use-sage-attention": 0,
    "--use-split-cross-attention": 0,
    "--user-directory": 1,  # type checks the path is an existing readable directory
    "--verbose": "?",  # nargs="?", const "DEBUG"
    "--whitelist-custom-nodes": "+",  # nargs="+"
    "--windows-standalone-build": 0,
    "-h": 0,  # argparse's own help (add_help): prints usage and exits 0
}

#: flags whose value must be one of a fixed list (argparse choices), flag -> tuple of choices
CHOICES: dict[str, tuple[str, ...]] = {
    "--default-hashing-function": ("md5", "sha1", "sha256", "sha512"),
    # no argparse choices, but type=PerformanceFeature rejects any other value ("invalid PerformanceFeature value")
    "--fast": ("fp16_accumulation", "fp8_matrix_mult", "cublas_ops", "autotune"),
    # EnumAction: choices are LatentPreviewMethod's values, checked by argparse
    "--preview-method": ("none", "auto", "latent2rgb", "taesd"),
    "--verbose": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
}
