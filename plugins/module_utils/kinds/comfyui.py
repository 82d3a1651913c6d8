"""ComfyUI behind ComfyUI-Login (role comfyui_qwen_auth): one service, a variable per setting."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from ansible_collections.myia.genai_stack.plugins.module_utils import (
    argv_grammar,
    forge,
    grammar_comfyui,
    specs,
)
from ansible_collections.myia.genai_stack.plugins.module_utils.kinds import (
    Check,
    Kind,
    Values,
    check,
    refuses_bearer,
)

MODEL_FOLDERS = (
    "diffusion_models", "unet", "text_encoders", "clip", "vae", "loras", "checkpoints",
    "clip_vision", "upscale_models", "embeddings",
)  # fmt: skip
#: ComfyUI's VRAM modes (one flag each; comfyui_qwen_auth_vram_mode names one without "--")
VRAM_MODES = ("gpu-only", "highvram", "normalvram", "lowvram", "novram")
#: main.py flags the role sets itself, or that would turn ComfyUI-Login off: the variable (or the
#: reason) each one comes from. Every spelling upstream's parser expands to one is refused too.
MANAGED_FLAGS: dict[str, str] = {
    "--listen": "comfyui_qwen_auth_bind_address",
    "--port": "comfyui_qwen_auth_port",
    "--enable-cors-header": "comfyui_qwen_auth_cors_origin",
    "--cuda-device": "comfyui_qwen_auth_gpu, the GPU plan",
    "--default-device": "comfyui_qwen_auth_gpu, the GPU plan",
    "--preview-method": "comfyui_qwen_auth_preview_method",
    **{f"--{mode}": "comfyui_qwen_auth_vram_mode" for mode in VRAM_MODES},
    "--cpu": "never: ComfyUI runs on the GPU the plan gives it (comfyui_qwen_auth_gpu)",
    "--disable-all-custom-nodes": "never: it would turn ComfyUI-Login off and open the API",
    "--whitelist-custom-nodes": "never: it goes with --disable-all-custom-nodes",
    "--base-directory": "never: it would move custom_nodes away from ComfyUI-Login",
}
_ROLE = "comfyui_qwen_auth"
#: a pinned ComfyUI-Login: a 40-hex commit or a release tag (v1.2, 1.2.3), never a branch name
LOGIN_PIN_RE = re.compile(r"^(?:[0-9a-f]{40}|v?\d+(?:\.\d+)+(?:[-.][A-Za-z0-9.]+)?)$")


def _tag_twice(image: str, tag: Any, where: Callable[[str], str]) -> str | None:
    """A tag given twice: in the image reference and in image_tag."""
    if tag in (None, "") or ("@" not in image and ":" not in image.rsplit("/", 1)[-1]):
        return None
    return (
        f"{where('image_tag')} {tag!r} is given, but {where('image')} {image!r} already names "
        f"its tag or digest: keep one (a full reference in {where('image')} is enough)"
    )


def read(v: Values) -> list[dict[str, Any]]:
    """ComfyUI is one service; each of its settings is its own variable, named in messages."""

    def var(key: str) -> Any:
        return v.get(f"{_ROLE}_{key}")

    def where(key: str) -> str:
        return f"{_ROLE}_{key}"

    tag = var("image_tag")
    image = f"{var('image')}:{tag}" if tag not in (None, "") else var("image")
    problems = [
        p
        for p in (
            specs.name_problem(var("service_name"), where("service_name")),
            specs.port_problem(var("port"), where("port")),
            specs.address_problem(var("bind_address"), where("bind_address")),
            specs.hostname_problem(var("hostname"), where("hostname")),
            specs.gpus_problem([var("gpu")], where("gpu")),
            specs.share_problem(var("gpu_memory_share"), where("gpu_memory_share")),
            specs.image_problem(var("image"), where("image"))
            or _tag_twice(var("image"), tag, where)
            or (specs.image_problem(image, where("image_tag")) if tag not in (None, "") else None),
            specs.positive_int_problem(
                var("start_timeout"), where("start_timeout"), "a positive number of seconds"
            ),
        )
        if p
    ]
    problems += specs.env_problems(var("env"), where("env"), ("NVIDIA_VISIBLE_DEVICES",))
    problems += argv_grammar.problems(
        var("extra_args"),
        grammar_comfyui.FLAGS,
        MANAGED_FLAGS,
        where("extra_args"),
        f"ComfyUI {grammar_comfyui.SOURCE['version']}",
        choices=grammar_comfyui.CHOICES,
        abbrev=grammar_comfyui.ALLOW_ABBREV,
    )
    preview = var("preview_method")
    allowed = grammar_comfyui.CHOICES.get("--preview-method", ())
    if preview not in (None, "") and allowed and str(preview) not in allowed:
        problems.append(
            f"{where('preview_method')} {preview!r} is not a preview method of ComfyUI; use one of "
            + ", ".join(allowed)
        )
    vram = var("vram_mode")
    if vram not in (None, "") and vram not in VRAM_MODES:
        problems.append(
            f"{where('vram_mode')} {vram!r} must be empty or one of " + ", ".join(VRAM_MODES)
        )
    login = var("login_version")
    if (
        var("login_source") in (None, "git")
        and not LOGIN_PIN_RE.match(str(login or ""))
        and not var("login_allow_branch")
    ):
        problems.append(
            f"{where('login_version')} {login!r} is not pinned: ComfyUI-Login is the lock on "
            "ComfyUI's API, and a moving branch can change it on any run; give a 40-hex commit "
            f"or a release tag (or set {where('login_allow_branch')}: true)"
        )
    cors = var("cors_origin")
    if cors not in (None, "", "*") and not re.match(r"^https?://[^/\s]+$", str(cors)):
        problems.append(
            f"{where('cors_origin')} {cors!r} must be empty, '*' or an origin like "
            "https://<hostname> (scheme and host, no path)"
        )
    models = var("models")
    if models in (None, ""):
        models = []
    if not isinstance(models, list):
        problems.append(f"{where('models')} must be a list of model files")
        models = []
    for i, model in enumerate(models):
        at = f"{where('models')}[{i}]"
        if not isinstance(model, dict):
            problems.append(f"{at} must be a mapping with name, folder, url, sha256")
            continue
        name = model.get("name")
        if not isinstance(name, str) or not name or "/" in name or name in (".", ".."):
            problems.append(f"{at}.name {name!r} must be a file name without '/'")
        if model.get("folder") not in MODEL_FOLDERS:
            problems.append(
                f"{at}.folder {model.get('folder')!r} must be one of " + ", ".join(MODEL_FOLDERS)
            )
        sha = model.get("sha256")
        if sha not in (None, "") and not forge.SHA256_RE.match(str(sha)):
            problems.append(f"{at}.sha256 {sha!r} must be 64 hexadecimal digits")
        url = model.get("url")
        if url not in (None, "") and not re.match(r"^(https?|ftp|file)://\S+$", str(url)):
            problems.append(f"{at}.url {url!r} must be an http(s)://, ftp:// or file:// URL")
        if url not in (None, "") and sha in (None, "") and not v.get(f"{_ROLE}_allow_unverified"):
            problems.append(
                f"{at}.sha256 is required with {at}.url ({name} would be fetched unverified; "
                f"or set {_ROLE}_allow_unverified: true)"
            )
    if problems:
        raise specs.SpecError("invalid ComfyUI settings", problems)
    name = str(var("service_name"))
    gpu = int(str(var("gpu")))
    share = float(var("gpu_memory_share"))
    return [
        {
            "name": name,
            "port": int(str(var("port"))),
            "hostname": var("hostname") or None,
            "bind_address": str(var("bind_address")),
            "gpus": [gpu],
            "image": image,
            "load_timeout": int(str(var("start_timeout"))),
            "source": where("port"),
            "gpu_wish": {
                "service": name,
                "source": where("gpu"),
                "gpus": [gpu],
                "memory_share": share,
                "port": int(str(var("port"))),
                "bind_address": str(var("bind_address")),
            },
        }
    ]


def checks(rec: dict[str, Any], creds: Mapping[str, Any]) -> list[Check]:
    """401 without the token; /system_stats with it."""
    checks = [check(rec, "refuses no token", "/system_stats", status=[401])]
    if creds.get("comfyui_token"):
        auth = {"type": "bearer", "token": creds["comfyui_token"]}
        checks.append(check(rec, "system stats", "/system_stats", auth=auth, json_path="system"))
    return checks


def client_env(
    records: list[dict[str, Any]], creds: Mapping[str, Any], url: Callable[..., str]
) -> dict[str, str]:
    env = {"COMFYUI_BASE_URL": url(records[-1])}
    if creds.get("comfyui_token"):
        env["COMFYUI_TOKEN"] = creds["comfyui_token"]
    return env


KIND = Kind(
    name="comfyui",
    role="comfyui_qwen_auth",
    variable="comfyui_qwen_auth_port",
    variables=tuple(
        f"{_ROLE}_{k}"
        for k in (
            "service_name",
            "port",
            "hostname",
            "bind_address",
            "gpu",
            "gpu_memory_share",
            "image",
            "image_tag",
            "env",
            "start_timeout",
            "extra_args",
            "cors_origin",
            "models",
            "allow_unverified",
            "preview_method",
            "vram_mode",
            "login_source",
            "login_version",
            "login_allow_branch",
        )
    ),
    read=read,
    fields={
        k: f"{_ROLE}_{v}"
        for k, v in (("name", "service_name"), ("port", "port"), ("hostname", "hostname"))
    },
    http={
        "health_path": "/system_stats",
        "ready_path": "/system_stats",
        "auth": "comfyui_token",
        "websocket_paths": ["/ws", "/api/ws"],
        "max_body_mb": 100,
        "timeout_s": 900,
        "streaming": False,
    },
    checks=checks,
    refusals=refuses_bearer("comfyui_token", "/system_stats"),
    client_env=client_env,
    order=20,
)
