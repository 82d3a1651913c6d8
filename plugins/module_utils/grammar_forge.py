"""Stable Diffusion WebUI Forge's command-line grammar (launch.py / webui.py), as data read from
upstream's own parser.

Source: lllyasviel/stable-diffusion-webui-forge at SOURCE["commit"] (the newest commit of main,
2025-06-26), every file in SOURCE["files"] (argparse, allow_abbrev on: argparse expands any
unambiguous prefix of a long flag).

One parser: ``backend/args.py`` creates ``argparse.ArgumentParser()`` (defaults: allow_abbrev=True,
add_help=True) and adds the backend flags; ``modules/cmd_args.py`` imports that same ``parser``
object and adds the webui flags; ``modules/shared_cmd_options.py`` then runs every extension's
``preload.py`` (``modules/script_loading.preload_extensions``: the enabled user extensions first,
then all of ``extensions-builtin``) whose ``preload(parser)`` adds its own flags. The built-in ones
are ScuNET, SwinIR, sd_forge_controlnet and sd_forge_lora. A user-installed extension's
``preload.py`` can add more flags: those are not recorded here.

How the launched program parses: ``launch.py`` (``modules/launch_utils.py``) and several early
side parsers (``backend/args.py`` itself, ``modules/paths_internal.py``, ``modules/timer.py``,
``modules_forge/shared.py``) use ``parse_known_args`` and ignore what they do not know, but
``modules/shared_cmd_options.py`` (imported by webui.py before the UI or API starts) calls
``parser.parse_args()`` on the full parser, so an unknown flag or a stray word (``--xformers stray``)
makes Forge exit with status 2: "unrecognized arguments". Only when the environment variable
``IGNORE_CMD_ARGS_ERRORS`` is set (any value) does it use ``parse_known_args`` and ignore them.
``COMMANDLINE_ARGS`` (environment) is split with shlex and appended to sys.argv
(``modules/paths_internal.py``), so it obeys the same grammar.

Not argparse flags:

* ``--exit``: ``launch_utils.prepare_environment`` looks for the literal word in sys.argv and
  exits 0 after preparing the environment; with ``--skip-prepare-environment`` it reaches
  ``parse_args`` and is an unrecognized argument. Listed in ``LAUNCH_ONLY``, not in FLAGS.
* Some code tests sys.argv for literal flags (``--nowebui``, ``--api``, ``--ckpt``,
  ``--lowvram``/``--medvram``/``--medvram-sdxl``, the ``--forge-ref-a1111-home`` targets): an
  abbreviation that argparse accepts is not seen by those checks, and the side parsers above,
  knowing fewer flags, may expand a prefix that the full parser finds ambiguous. Write flags out
  in full.

Value counts: 0 is a switch (store_true/store_false), 1 one value (also each use of an
``action="append"`` flag, which may be repeated), ``"?"`` an optional value, ``"+"`` one or more.
Mutually exclusive groups (backend/args.py's precision/attention/vram groups) are not recorded.
"""

from __future__ import annotations

SOURCE: dict[str, str] = {
    "repository": "lllyasviel/stable-diffusion-webui-forge",
    "commit": "dfdcbab685e57677014f05a3309b48cc87383167",
    "version": "2.0.1v1.10.1",
    "files": (
        "modules/cmd_args.py, backend/args.py, extensions-builtin/ScuNET/preload.py, "
        "extensions-builtin/SwinIR/preload.py, extensions-builtin/sd_forge_controlnet/preload.py, "
        "extensions-builtin/sd_forge_lora/preload.py, modules/shared_cmd_options.py, "
        "modules/script_loading.py, modules/launch_utils.py, launch.py, webui.py, "
        "modules/paths_internal.py, modules/timer.py, modules_forge/shared.py, "
        "modules_forge/initialization.py, modules_forge/forge_version.py"
    ),
}

#: upstream's argparse expands unambiguous prefixes of long flags (ArgumentParser allow_abbrev)
ALLOW_ABBREV: bool = True

#: webui parses with parser.parse_args(): unknown flags and stray words are errors (exit 2), unless
#: the environment variable IGNORE_CMD_ARGS_ERRORS is set (then parse_known_args ignores them)
IGNORES_UNKNOWN: bool = False
IGNORE_UNKNOWN_ENV: str = "IGNORE_CMD_ARGS_ERRORS"

#: words launch.py looks for in sys.argv that no parser defines (see the module docstring)
LAUNCH_ONLY: dict[str, int] = {"--exit": 0}

#: every option string -> the values it takes: 0 (a switch: store_true/store_false/store_const/
#: count), 1, "?" (nargs='?'), "+", "*", or an int N for nargs=N
FLAGS: dict[str, int | str] = {
    "--add-stop-route": 0,
    "--administrator": 0,
    "--all-in-fp16": 0,  # backend/args.py
    "--all-in-fp32": 0,  # backend/args.py
    "--allow-code": 0,
    "--always-batch-cond-uncond": 0,
    "--always-cpu": 0,  # backend/args.py
    "--always-gpu": 0,  # backend/args.py
    "--always-high-vram": 0,  # backend/args.py
    "--always-low-vram": 0,  # backend/args.py
    "--always-no-vram": 0,  # backend/args.py
    "--always-normal-vram": 0,  # backend/args.py
    "--always-offload-from-vram": 0,  # backend/args.py
    "--api": 0,
    "--api-auth": 1,
    "--api-log": 0,
    "--api-server-stop": 0,
    "--attention-pytorch": 0,  # backend/args.py
    "--attention-quad": 0,  # backend/args.py
    "--attention-split": 0,  # backend/args.py
    "--autolaunch": 0,
    "--bsrgan-models-path": 1,
    "--ckpt": 1,
    "--ckpt-dir": 1,
    "--clip-in-fp16": 0,  # backend/args.py
    "--clip-in-fp32": 0,  # backend/args.py
    "--clip-in-fp8-e4m3fn": 0,  # backend/args.py
    "--clip-in-fp8-e5m2": 0,  # backend/args.py
    "--clip-models-path": 1,
    "--codeformer-models-path": 1,
    "--config": 1,
    "--controlnet-dir": 1,
    "--controlnet-loglevel": 1,  # extensions-builtin/sd_forge_controlnet/preload.py
    "--controlnet-preprocessor-models-dir": 1,
    "--controlnet-tracemalloc": 0,  # extensions-builtin/sd_forge_controlnet/preload.py
    "--cors-allow-origins": 1,
    "--cors-allow-origins-regex": 1,
    "--cuda-malloc": 0,  # backend/args.py
    "--cuda-stream": 0,  # backend/args.py
    "--dat-models-path": 1,
    "--data-dir": 1,
    "--deepdanbooru": 0,
    "--device-id": 1,
    "--directml": "?",  # backend/args.py; nargs="?", const -1 (an int)
    "--disable-all-extensions": 0,
    "--disable-attention-upcast": 0,  # backend/args.py
    "--disable-console-progressbars": 0,
    "--disable-extra-extensions": 0,
    "--disable-gpu-warning": 0,  # backend/args.py
    "--disable-ipex-hijack": 0,  # backend/args.py
    "--disable-model-loading-ram-optimization": 0,
    "--disable-nan-check": 0,
    "--disable-opt-split-attention": 0,
    "--disable-safe-unpickle": 0,
    "--disable-tls-verify": 0,  # action="store_false"
    "--disable-xformers": 0,  # backend/args.py
    "--do-not-download-clip": 0,
    "--dump-sysinfo": 0,
    "--embeddings-dir": 1,
    "--enable-console-prompts": 0,
    "--enable-insecure-extension-access": 0,
    "--esrgan-models-path": 1,
    "--filenames-max-length": 1,
    "--force-enable-xformers": 0,
    "--force-upcast-attention": 0,  # backend/args.py
    "--forge-ref-a1111-home": 1,
    "--freeze-settings": 0,
    "--freeze-settings-in-sections": 1,
    "--freeze-specific-settings": 1,
    "--gfpgan-dir": 1,
    "--gfpgan-model": 1,
    "--gfpgan-models-path": 1,
    "--gpu-device-id": 1,  # backend/args.py
    "--gradio-allowed-path": 1,  # action="append": 1 value, repeatable
    "--gradio-auth": 1,
    "--gradio-auth-path": 1,
    "--gradio-debug": 0,
    "--gradio-img2img-tool": 1,
    "--gradio-inpaint-tool": 1,
    "--gradio-queue": 0,
    "--help": 0,  # argparse's own help (add_help): prints usage and exits 0
    "--hide-ui-dir-config": 0,
    "--hypernetwork-dir": 1,
    "--listen": 0,
    "--localizations-dir": 1,
    "--log-startup": 0,
    "--loglevel": 1,
    "--lora-dir": 1,  # extensions-builtin/sd_forge_lora/preload.py
    "--lowram": 0,
    "--lowvram": 0,  # accepted, but Forge prints that it is removed (modules_forge/initialization.py)
    "--lyco-dir-backcompat": 1,  # extensions-builtin/sd_forge_lora/preload.py
    "--max-batch-count": 1,
    "--medvram": 0,  # accepted, but Forge prints that it is removed (modules_forge/initialization.py)
    "--medvram-sdxl": 0,  # accepted, but Forge prints that it is removed (modules_forge/initialization.py)
    "--models-dir": 1,
    "--ngrok": 1,
    "--ngrok-options": 1,  # type=json.loads
    "--ngrok-region": 1,
    "--no-download-sd-model": 0,
    "--no-gradio-queue": 0,
    "--no-half": 0,
    "--no-half-vae": 0,
    "--no-hashing": 0,
    "--no-progressbar-hiding": 0,
    "--no-prompt-history": 0,
    "--nowebui": 0,
    "--opt-channelslast": 0,
    "--opt-sdp-attention": 0,
    "--opt-sdp-no-mem-attention": 0,
    "--opt-split-attention": 0,
    "--opt-split-attention-invokeai": 0,
    "--opt-split-attention-v1": 0,
    "--opt-sub-quad-attention": 0,
    "--pin-shared-memory": 0,  # backend/args.py
    "--port": 1,
    "--precision": 1,
    "--pytorch-deterministic": 0,  # backend/args.py
    "--realesrgan-models-path": 1,
    "--reinstall-torch": 0,
    "--reinstall-xformers": 0,
    "--scunet-models-path": 1,  # extensions-builtin/ScuNET/preload.py
    "--server-name": 1,
    "--share": 0,
    "--show-negative-prompt": 0,
    "--skip-google-blockly": 0,
    "--skip-install": 0,
    "--skip-load-model-at-start": 0,
    "--skip-prepare-environment": 0,
    "--skip-python-version-check": 0,
    "--skip-torch-cuda-test": 0,
    "--skip-version-check": 0,
    "--styles-file": 1,  # action="append": 1 value, repeatable
    "--sub-quad-chunk-threshold": 1,
    "--sub-quad-kv-chunk-size": 1,
    "--sub-quad-q-chunk-size": 1,
    "--subpath": 1,
    "--swinir-models-path": 1,  # extensions-builtin/SwinIR/preload.py
    "--test-server": 0,
    "--text-encoder-dir": 1,
    "--textual-inversion-templates-dir": 1,
    "--theme": 1,
    "--timeout-keep-alive": 1,
    "--tls-certfile": 1,
    "--tls-keyfile": 1,
    "--ui-config-file": 1,
    "--ui-debug-mode": 0,
    "--ui-settings-file": 1,
    "--unet-in-bf16": 0,  # backend/args.py
    "--unet-in-fp16": 0,  # backend/args.py
    "--unet-in-fp8-e4m3fn": 0,  # backend/args.py
    "--unet-in-fp8-e5m2": 0,  # backend/args.py
    "--unix-filenames-sanitization": 0,
    "--unload-gfpgan": 0,
    "--upcast-sampling": 0,
    "--update-all-extensions": 0,
    "--update-check": 0,
    "--use-cpu": "+",  # nargs="+" (type=str.lower): 1 or more module names
    "--use-ipex": 0,
    "--use-textbox-seed": 0,
    "--vae-dir": 1,
    "--vae-in-bf16": 0,  # backend/args.py
    "--vae-in-cpu": 0,  # backend/args.py
    "--vae-in-fp16": 0,  # backend/args.py
    "--vae-in-fp32": 0,  # backend/args.py
    "--vae-path": 1,
    "--xformers": 0,
    "--xformers-flash-attention": 0,
    "-f": 0,  # help=SUPPRESS; lets webui.sh run as root
    "-h": 0,  # argparse's own help (add_help): prints usage and exits 0
}

#: flags whose value must be one of a fixed list (argparse choices), flag -> tuple of choices
CHOICES: dict[str, tuple[str, ...]] = {
    "--controlnet-loglevel": ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"),
    "--precision": ("full", "half", "autocast"),
}
