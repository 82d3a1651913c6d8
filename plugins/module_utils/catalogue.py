"""The catalogue of service kinds: everything the stack knows about a kind, in one entry.

Each :class:`Kind` declares the variables an admin sets for it, how those are read into checked
service specs (normalizer and validator), the role that deploys it, its HTTP facts (health and
ready paths, credential form, proxy route), its health and refusal checks and its client .env
keys. :mod:`stack_model` builds the whole stack from these entries; nothing else keeps a list of
kinds. A new kind is one entry here plus its role. Pure Python, no Ansible import.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ansible_collections.myia.genai_stack.plugins.module_utils import (
    argv_grammar,
    forge,
    grammar_comfyui,
    specs,
    vllm,
)

Values = Mapping[str, Any]
Check = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """One kind of service (vLLM model, ComfyUI, Forge instance)."""

    #: the record kind (``kind`` of every service record)
    name: str
    #: the role that deploys it (short name, in ``myia.genai_stack``)
    role: str
    #: the admin-facing variable that lists its services (for messages and the panel)
    variable: str
    #: every variable :attr:`read` needs; the model reads each one on its own
    variables: tuple[str, ...]
    #: variables -> checked specs (each with name, port, hostname, bind_address, gpu_wish);
    #: raises :class:`specs.SpecError`
    read: Callable[[Values], list[dict[str, Any]]]
    #: health path, ready path, credential form (auth), websocket paths, body limit, timeout
    http: dict[str, Any]
    #: endpoint_health checks proving one service serves its clients, from credentials
    checks: Callable[[dict[str, Any], Mapping[str, Any]], list[Check]]
    #: checks proving one service refuses credentials (the ones before a rotation)
    refusals: Callable[[dict[str, Any], Mapping[str, Any]], list[Check]]
    #: client .env keys for the services of this kind (records, credentials, url of a record)
    client_env: Callable[
        [list[dict[str, Any]], Mapping[str, Any], Callable[..., str]], dict[str, str]
    ]
    #: keys of the spec, beyond the record's, that the record keeps (served model names, ...)
    record_keys: tuple[str, ...] = field(default=())
    #: for a kind set by one variable per field (ComfyUI): field -> variable, for messages;
    #: otherwise a field is ``<source>.<field>`` (vllm_qwen3_models[1].port)
    fields: dict[str, str] = field(default_factory=dict)

    def where(self, rec: dict[str, Any], key: str) -> str:
        """The variable that sets ``key`` of a record of this kind."""
        return self.fields.get(key) or f"{rec['source']}.{key}"


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def env_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).upper()


def _check(rec: dict[str, Any], what: str, path: str, **spec: Any) -> Check:
    return {"name": f"{rec['name']}: {what}", "url": rec["backend_url"] + path, **spec}


def _refuses_bearer(
    credential: str, path: str
) -> Callable[[dict[str, Any], Mapping[str, Any]], list[Check]]:
    """Refusal checks of a kind whose clients send ``credential`` as a bearer token on ``path``."""

    def refusals(rec: dict[str, Any], creds: Mapping[str, Any]) -> list[Check]:
        if not creds.get(credential):
            return []
        auth = {"type": "bearer", "token": creds[credential]}
        return [_check(rec, "refuses the old credential", path, auth=auth, status=[401])]

    return refusals


# --- vLLM ---------------------------------------------------------------------------------------

_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
_ASK = {"role": "user", "content": "What is the weather in Paris?"}


def _read_vllm(v: Values) -> list[dict[str, Any]]:
    models = v.get("vllm_qwen3_models")
    if models in (None, "", []):
        return []
    return vllm.normalize(
        models,
        {
            "image": v.get("vllm_qwen3_image"),
            "tool_call_parser": v.get("vllm_qwen3_tool_call_parser"),
            "reasoning_parser": v.get("vllm_qwen3_reasoning_parser"),
            "load_timeout": v.get("vllm_qwen3_load_timeout"),
            "bind_address": v.get("vllm_qwen3_bind_address"),
        },
    )


def _vllm_checks(rec: dict[str, Any], creds: Mapping[str, Any]) -> list[Check]:
    """/health; 401 without key; every served name listed; a chat; a tool call round trip."""
    key = creds.get("vllm_api_key")
    checks = [
        _check(rec, "health", "/health"),
        _check(rec, "refuses no key", "/v1/models", status=[401]),
    ]
    if not key:
        return checks
    bearer = {"type": "bearer", "token": key}
    for served in rec["served_model_names"]:
        checks.append(_check(rec, f"lists {served}", "/v1/models", auth=bearer,
                             json_contains={"path": "data", "value": {"id": served}}))  # fmt: skip
    model = rec["served_model_names"][0]
    no_think = {"enable_thinking": False}
    checks.append(_check(rec, "chat completion", "/v1/chat/completions", method="POST", auth=bearer,
        body={"model": model, "messages": [{"role": "user", "content": "Say OK."}],
              "max_tokens": 16, "chat_template_kwargs": no_think},
        json_path="choices.0.message.role", json_value="assistant"))  # fmt: skip
    checks.append(_check(rec, "tool call", "/v1/chat/completions", method="POST", auth=bearer,
        body={"model": model, "messages": [_ASK], "tools": [_TOOL],
              "tool_choice": "auto", "chat_template_kwargs": no_think},
        json_path="choices.0.message.tool_calls.0.function.name",
        json_value="get_weather"))  # fmt: skip
    call = {"id": "call-validate", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}  # fmt: skip
    checks.append(_check(rec, "tool result answered", "/v1/chat/completions", method="POST",
        auth=bearer,
        body={"model": model, "tools": [_TOOL], "chat_template_kwargs": no_think,
              "messages": [_ASK, {"role": "assistant", "content": None, "tool_calls": [call]},
                           {"role": "tool", "tool_call_id": "call-validate",
                            "content": '{"temperature_c": 18}'}]},
        json_path="choices.0.finish_reason", json_value="stop"))  # fmt: skip
    return checks


def _vllm_env(
    records: list[dict[str, Any]], creds: Mapping[str, Any], url: Callable[..., str]
) -> dict[str, str]:
    env: dict[str, str] = {
        "VLLM_BASE_URL": url(records[0]) + "/v1",
        "VLLM_MODEL": records[0]["served_model_names"][0],
    }
    for rec in records:
        env[f"VLLM_{env_name(rec['name'])}_BASE_URL"] = url(rec) + "/v1"
        env[f"VLLM_{env_name(rec['name'])}_MODEL"] = rec["served_model_names"][0]
    if creds.get("vllm_api_key"):
        env["VLLM_API_KEY"] = creds["vllm_api_key"]
    return env


# --- ComfyUI ------------------------------------------------------------------------------------

COMFYUI_MODEL_FOLDERS = (
    "diffusion_models", "unet", "text_encoders", "clip", "vae", "loras", "checkpoints",
    "clip_vision", "upscale_models", "embeddings",
)  # fmt: skip
#: ComfyUI's VRAM modes (one flag each; comfyui_qwen_auth_vram_mode names one without "--")
COMFYUI_VRAM_MODES = ("gpu-only", "highvram", "normalvram", "lowvram", "novram")
#: main.py flags the role sets itself, or that would turn ComfyUI-Login off: the variable (or the
#: reason) each one comes from. Every spelling upstream's parser expands to one is refused too.
COMFYUI_MANAGED_FLAGS: dict[str, str] = {
    "--listen": "comfyui_qwen_auth_bind_address",
    "--port": "comfyui_qwen_auth_port",
    "--enable-cors-header": "comfyui_qwen_auth_cors_origin",
    "--cuda-device": "comfyui_qwen_auth_gpu, the GPU plan",
    "--default-device": "comfyui_qwen_auth_gpu, the GPU plan",
    "--preview-method": "comfyui_qwen_auth_preview_method",
    **{f"--{mode}": "comfyui_qwen_auth_vram_mode" for mode in COMFYUI_VRAM_MODES},
    "--cpu": "never: ComfyUI runs on the GPU the plan gives it (comfyui_qwen_auth_gpu)",
    "--disable-all-custom-nodes": "never: it would turn ComfyUI-Login off and open the API",
    "--whitelist-custom-nodes": "never: it goes with --disable-all-custom-nodes",
    "--base-directory": "never: it would move custom_nodes away from ComfyUI-Login",
}
_COMFYUI = "comfyui_qwen_auth"
#: a pinned ComfyUI-Login: a 40-hex commit or a release tag (v1.2, 1.2.3), never a branch name
LOGIN_PIN_RE = re.compile(r"^(?:[0-9a-f]{40}|v?\d+(?:\.\d+)+(?:[-.][A-Za-z0-9.]+)?)$")


def _read_comfyui(v: Values) -> list[dict[str, Any]]:
    """ComfyUI is one service; each of its settings is its own variable, named in messages."""

    def var(key: str) -> Any:
        return v.get(f"{_COMFYUI}_{key}")

    def where(key: str) -> str:
        return f"{_COMFYUI}_{key}"

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
        COMFYUI_MANAGED_FLAGS,
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
    if vram not in (None, "") and vram not in COMFYUI_VRAM_MODES:
        problems.append(
            f"{where('vram_mode')} {vram!r} must be empty or one of "
            + ", ".join(COMFYUI_VRAM_MODES)
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
        if model.get("folder") not in COMFYUI_MODEL_FOLDERS:
            problems.append(
                f"{at}.folder {model.get('folder')!r} must be one of "
                + ", ".join(COMFYUI_MODEL_FOLDERS)
            )
        sha = model.get("sha256")
        if sha not in (None, "") and not forge.SHA256_RE.match(str(sha)):
            problems.append(f"{at}.sha256 {sha!r} must be 64 hexadecimal digits")
        url = model.get("url")
        if url not in (None, "") and not re.match(r"^(https?|ftp|file)://\S+$", str(url)):
            problems.append(f"{at}.url {url!r} must be an http(s)://, ftp:// or file:// URL")
        if (
            url not in (None, "")
            and sha in (None, "")
            and not v.get(f"{_COMFYUI}_allow_unverified")
        ):
            problems.append(
                f"{at}.sha256 is required with {at}.url ({name} would be fetched unverified; "
                f"or set {_COMFYUI}_allow_unverified: true)"
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


def _comfyui_checks(rec: dict[str, Any], creds: Mapping[str, Any]) -> list[Check]:
    """401 without the token; /system_stats with it."""
    checks = [_check(rec, "refuses no token", "/system_stats", status=[401])]
    if creds.get("comfyui_token"):
        auth = {"type": "bearer", "token": creds["comfyui_token"]}
        checks.append(_check(rec, "system stats", "/system_stats", auth=auth, json_path="system"))
    return checks


def _comfyui_env(
    records: list[dict[str, Any]], creds: Mapping[str, Any], url: Callable[..., str]
) -> dict[str, str]:
    env = {"COMFYUI_BASE_URL": url(records[-1])}
    if creds.get("comfyui_token"):
        env["COMFYUI_TOKEN"] = creds["comfyui_token"]
    return env


# --- Forge --------------------------------------------------------------------------------------


def _read_forge(v: Values) -> list[dict[str, Any]]:
    instances = v.get("forge_turbo_instances")
    if instances in (None, "", []):
        return []
    keys = ("image", "root_dir", "memory_share", "load_timeout", "bind_address", "gradio_auth",
            "settings_file", "ui_config_file")  # fmt: skip
    defaults = {k: v.get(f"forge_turbo_{k}") for k in keys}
    defaults["turbo_ui_settings"] = v.get("forge_turbo_ui_settings")
    defaults["turbo_ui_config"] = v.get("forge_turbo_ui_config")
    fetch = v.get("forge_turbo_fetch_checkpoints", True)
    return forge.normalize(instances, defaults, require_sha256=fetch not in (False, "false", 0))


def _forge_query(creds: Mapping[str, Any]) -> dict[str, Any]:
    token = creds.get("forge_web_token")
    return {"auth": {"type": "query", "param": "token", "value": token}} if token else {}


def _forge_checks(rec: dict[str, Any], creds: Mapping[str, Any]) -> list[Check]:
    """401 without credentials; the checkpoint list with Basic auth."""
    query = _forge_query(creds)
    checks = [_check(rec, "refuses no credentials", "/sdapi/v1/sd-models", status=[401], **query)]
    user, password = creds.get("forge_username"), creds.get("forge_password")
    if user and password:
        basic = {"Authorization": "Basic " + _b64(f"{user}:{password}")}
        # an instance may hold no model of the role's (its own, or none yet): the credentials
        # are proven by the answer (200 with a list), not by its content
        checks.append(_check(rec, "accepts the credentials", "/sdapi/v1/sd-models", headers=basic,
                             json_path="", **query))  # fmt: skip
    return checks


def _forge_refusals(rec: dict[str, Any], creds: Mapping[str, Any]) -> list[Check]:
    if not creds.get("forge_password"):
        return []
    basic = f"{creds.get('forge_username', 'admin')}:{creds['forge_password']}"
    return [_check(rec, "refuses the old credential", "/sdapi/v1/sd-models", status=[401],
                   headers={"Authorization": "Basic " + _b64(basic)})]  # fmt: skip


def _forge_env(
    records: list[dict[str, Any]], creds: Mapping[str, Any], url: Callable[..., str]
) -> dict[str, str]:
    env = {f"FORGE_{env_name(rec['name'])}_BASE_URL": url(rec) for rec in records}
    env["FORGE_BASE_URL"] = url(records[0])
    for key, cred in (("FORGE_USER", "forge_username"), ("FORGE_PASSWORD", "forge_password"),
                      ("FORGE_WEB_TOKEN", "forge_web_token")):  # fmt: skip
        if creds.get(cred):
            env[key] = creds[cred]
    return env


# --- the catalogue ------------------------------------------------------------------------------

KINDS: dict[str, Kind] = {
    kind.name: kind
    for kind in (
        Kind(
            name="vllm",
            role="vllm_qwen3",
            variable="vllm_qwen3_models",
            variables=(
                "vllm_qwen3_models",
                "vllm_qwen3_image",
                "vllm_qwen3_tool_call_parser",
                "vllm_qwen3_reasoning_parser",
                "vllm_qwen3_load_timeout",
                "vllm_qwen3_bind_address",
            ),
            read=_read_vllm,
            http={
                "health_path": "/health",
                "ready_path": "/v1/models",
                "auth": "bearer",
                "websocket_paths": [],
                "max_body_mb": 16,
                "timeout_s": 900,
                "streaming": True,
            },
            checks=_vllm_checks,
            refusals=_refuses_bearer("vllm_api_key", "/v1/models"),
            client_env=_vllm_env,
            record_keys=("served_model_names",),
        ),
        Kind(
            name="comfyui",
            role="comfyui_qwen_auth",
            variable="comfyui_qwen_auth_port",
            variables=tuple(
                f"{_COMFYUI}_{k}"
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
            read=_read_comfyui,
            fields={
                k: f"{_COMFYUI}_{v}"
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
            checks=_comfyui_checks,
            refusals=_refuses_bearer("comfyui_token", "/system_stats"),
            client_env=_comfyui_env,
        ),
        Kind(
            name="forge",
            role="forge_turbo",
            variable="forge_turbo_instances",
            variables=tuple(
                f"forge_turbo_{k}"
                for k in (
                    "instances",
                    "image",
                    "root_dir",
                    "memory_share",
                    "load_timeout",
                    "bind_address",
                    "gradio_auth",
                    "settings_file",
                    "ui_config_file",
                    "ui_settings",
                    "ui_config",
                    "fetch_checkpoints",
                )
            ),
            read=_read_forge,
            http={
                "health_path": "/internal/ping",
                "ready_path": "/sdapi/v1/sd-models",
                "auth": "basic",
                "websocket_paths": ["/queue/join"],
                "max_body_mb": 100,
                "timeout_s": 900,
                "streaming": False,
            },
            checks=_forge_checks,
            refusals=_forge_refusals,
            client_env=_forge_env,
        ),
    )
}
