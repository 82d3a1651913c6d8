"""Stable Diffusion WebUI Forge instances (ai-dock image): checked specs, FORGE_ARGS, env, checks.

Shared by the stack model and the filters of ``plugins/filter/forge_env.py``. Pure Python, no Ansible import.

How an instance maps onto the ai-dock image with host networking (every service of the stack
uses host networking and binds loopback):

* ``port`` is Forge's own port. The image's launcher (``supervisor-forge.sh``) runs
  ``launch.py $FORGE_ARGS --port $FORGE_PORT_LOCAL``, so the port is set through
  ``FORGE_PORT_LOCAL`` and never in FORGE_ARGS (a second ``--port`` would be overridden).
  ``--listen`` (kept from the user's command line) would bind 0.0.0.0; ``--server-name`` wins
  over it and binds the instance's ``bind_address`` (127.0.0.1).
* ``FORGE_PORT_HOST`` is the port of the image's Caddy proxy (WEB_TOKEN / login portal). Caddy
  binds every interface (``:port``), so it is off unless the instance sets ``web_port``; the
  image's other extras (ssh on 22, jupyter, syncthing, the service portal, Cloudflare quick
  tunnels) would also bind host ports or open tunnels and are never started.
* the checkpoints the role downloads go to the workspace's storage folder, which the image links
  into Forge's models folder; ``--ckpt-dir`` points Forge at it directly as well.
* ``--gpu-device-id`` is the GPU's index *inside* the container. The container is given exactly
  one GPU (a device reservation of the planned host GPU, or NVIDIA_VISIBLE_DEVICES when
  reservations are off), and CUDA numbers the visible GPUs from 0: the id is always 0. Forge sets
  CUDA_VISIBLE_DEVICES to this id; the host index (1 for the turbo instance) would select a GPU
  the container does not have.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any

from ansible_collections.myia.genai_stack.plugins.module_utils import (
    argv_grammar,
    grammar_forge,
    specs,
)


def _words(text: str) -> list[str]:
    return text.split()


#: where the ai-dock image expects its workspace volume
CONTAINER_WORKSPACE = "/workspace"
#: where the web UI's credential file (``--gradio-auth-path``, ``user:password``) is mounted
GRADIO_AUTH_PATH = "/run/secrets/gradio-auth"
#: the checkpoint folder of the workspace, linked into Forge's models/Stable-diffusion
CHECKPOINT_SUBDIR = "storage/stable_diffusion/models/ckpt"

#: flags the role sets itself (FORGE_ARGS, or FORGE_PORT_LOCAL for the port), and where each value
#: comes from; an instance's args_extra may not set them in any spelling
MANAGED_FLAGS: dict[str, str] = {
    "--port": "the instance's port (FORGE_PORT_LOCAL)",
    "--listen": "the instance's bind_address (--server-name)",
    "--server-name": "the instance's bind_address",
    "--api": "the role (the API is always on)",
    "--api-auth": "the derived Forge credential",
    "--gradio-auth": "the derived Forge credential (gradio_auth)",
    "--gradio-auth-path": "the derived Forge credential (gradio_auth)",
    "--ui-settings-file": "the instance's settings_file",
    "--ui-config-file": "the instance's ui_config_file",
    "--ckpt-dir": "the instance's checkpoint",
    "--gpu-device-id": "the GPU plan (the instance's gpus)",
    "--device-id": "the GPU plan (the instance's gpus)",
    "--share": "never: it would publish the instance through a gradio.live tunnel",
    "--ngrok": "never: it would publish the instance through an ngrok tunnel",
}
#: ai-dock supervisor programs that must not start with host networking
NO_AUTOSTART = (
    "caddy",
    "cloudflared",
    "jupyter",
    "quicktunnel",
    "serviceportal",
    "sshd",
    "syncthing",
)

NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
CHECKPOINT_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,200}\.(safetensors|ckpt|gguf)$")
SHA256_RE = re.compile(r"^[0-9a-fA-F]{64}$")
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
SETTINGS_FILE_RE = re.compile(r"^[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)*\.json$")
#: what a credential may hold: FORGE_ARGS is word-split and glob-expanded by the image's
#: launcher, Forge splits --api-auth on ',' and ':', and ai-dock turns '___' into a space
CREDENTIAL_RE = re.compile(r"^[A-Za-z0-9._~+/=@-]+$")
USER_RE = re.compile(r"^[A-Za-z0-9._-]+$")
MIN_SECRET_LENGTH = 16

#: environment variables the role sets itself (an instance's env may not override them)
RESERVED_ENV = frozenset(
    _words(
        """
    FORGE_ARGS FORGE_PORT_LOCAL FORGE_PORT_HOST WEB_USER WEB_PASSWORD WEB_TOKEN WEB_ENABLE_AUTH
    WORKSPACE SUPERVISOR_NO_AUTOSTART CF_QUICK_TUNNELS NVIDIA_VISIBLE_DEVICES
    CUDA_VISIBLE_DEVICES DIRECT_ADDRESS AUTO_UPDATE
    """
    )
)
#: keys an instance may carry, with the value used when neither the instance nor the role sets one
INSTANCE_DEFAULTS: dict[str, Any] = {
    "memory_share": 0.3,
    "checkpoint": None,
    "args_extra": [],
    "hostname": None,
    "image_tag": None,
    "web_port": None,
    "sdxl_turbo": True,
    "settings_file": "config-turbo.json",
    "ui_config_file": "ui-config-turbo.json",
    "ui_settings": {},
    "ui_config": {},
    "workspace": None,
    "env": {},
    "load_timeout": 900,
    "bind_address": "127.0.0.1",
    "gradio_auth": True,
}
REQUIRED = ("name", "port", "gpus")
#: role-level defaults that are not instance keys
ROLE_ONLY = ("image", "root_dir", "turbo_ui_settings", "turbo_ui_config")


class ForgeSpecError(specs.SpecError):
    pass


def _port_problem(value: Any, where: str) -> str | None:
    try:
        port = int(value)
    except (TypeError, ValueError):
        return f"{where} '{value}' is not a port number"
    if isinstance(value, bool) or not 1 <= port <= 65535 or str(port) != str(value).strip():
        return f"{where} '{value}' is not a port number (1-65535)"
    return None


def _checkpoint(raw: Any, where: str, problems: list[str], require_sha256: bool) -> dict | None:
    if raw in (None, "", {}):
        return None
    if not isinstance(raw, dict):
        problems.append(f"{where} must be a mapping with name, url, sha256")
        return None
    unknown = sorted(set(raw) - {"name", "url", "sha256"})
    if unknown:
        problems.append(f"{where}: unknown key(s) {', '.join(unknown)}")
    name = str(raw.get("name") or "")
    url = str(raw.get("url") or "")
    sha256 = str(raw.get("sha256") or "").lower()
    if not CHECKPOINT_NAME_RE.match(name):
        problems.append(
            f"{where}.name '{name}' must be a file name ending in .safetensors, .ckpt or .gguf"
        )
    if url and not re.match(r"^(https?|file)://\S+$", url):
        problems.append(f"{where}.url '{url}' must be an http(s):// or file:// URL")
    if sha256 and not SHA256_RE.match(sha256):
        problems.append(f"{where}.sha256 must be 64 hexadecimal digits")
    if url and not sha256 and require_sha256:
        problems.append(
            f"{where}.sha256 is required with {where}.url: the download is verified against it "
            "(the sha256 is on the file's page of the model hub)"
        )
    return {"name": name, "url": url or None, "sha256": sha256 or None}


def _args_problems(args: Any, where: str) -> list[str]:
    if not isinstance(args, list) or not all(isinstance(a, (str, int, float)) for a in args):
        return [f"{where} must be a list of strings"]
    unsplittable = [
        f"{where}[{i}] '{arg}': the image word-splits and glob-expands FORGE_ARGS, so "
        "arguments may not hold spaces, quotes, $, backslashes or glob characters"
        for i, arg in enumerate(map(str, args))
        if any(c.isspace() for c in arg) or any(c in arg for c in "*?[]$`\\'\"")
    ]
    return unsplittable or argv_grammar.problems(
        args,
        grammar_forge.FLAGS,
        MANAGED_FLAGS,
        where,
        f"Forge {grammar_forge.SOURCE['version']}",
        choices=grammar_forge.CHOICES,
        abbrev=grammar_forge.ALLOW_ABBREV,
    )


def normalize(
    instances: Any,
    defaults: dict[str, Any] | None = None,
    variable: str = "forge_turbo_instances",
    require_sha256: bool = True,
) -> list[dict[str, Any]]:
    """Return the instances with every key filled in, a ``gpu_wish`` for the GPU plan and the
    values the templates need.

    ``defaults`` holds role-level values: instance keys (memory_share, load_timeout, …) and
    ``image`` (repository:tag), ``root_dir``, ``turbo_ui_settings``, ``turbo_ui_config``.
    Raises :class:`ForgeSpecError` with every problem found, each naming the instance and the
    variable.
    """
    if not isinstance(instances, list) or not instances:
        raise ForgeSpecError(
            "invalid Forge instances", [f"{variable} must be a non-empty list of instances"]
        )
    role = {k: v for k, v in (defaults or {}).items() if v is not None}
    base = {**INSTANCE_DEFAULTS, **{k: v for k, v in role.items() if k in INSTANCE_DEFAULTS}}
    image = str(role.get("image", "ghcr.io/ai-dock/stable-diffusion-webui-forge:latest-cuda"))
    root_dir = str(role.get("root_dir") or "/opt/genai/forge").rstrip("/")
    problems: list[str] = []
    names: dict[str, str] = {}
    ports: dict[int, str] = {}
    result = []
    for _, where, label, inst in specs.entries(
        instances, variable, "instance", INSTANCE_DEFAULTS, REQUIRED, base, problems
    ):
        name = str(inst["name"])
        if not NAME_RE.match(name):
            problems.append(
                f"{label}: {where}.name must be lower-case letters, digits, '-' or '_' "
                "(it names the compose service and files)"
            )
        if name in names:
            problems.append(f"{label}: duplicate name, also {names[name]}.name")
        names.setdefault(name, where)

        port_keys = ["port"] + (["web_port"] if inst.get("web_port") not in (None, "") else [])
        for key in port_keys:
            problem = _port_problem(inst[key], f"{label}: {where}.{key}")
            if problem:
                problems.append(problem)
                continue
            port = int(inst[key])
            if port in ports:
                problems.append(f"{label}: {where}.{key} {port} is already used by {ports[port]}")
            ports.setdefault(port, f"{where}.{key}")
            inst[key] = port

        gpus = inst["gpus"]
        if (
            not isinstance(gpus, list)
            or len(gpus) != 1
            or isinstance(gpus[0], bool)
            or not str(gpus[0]).isdigit()
        ):
            problems.append(
                f"{label}: {where}.gpus must list exactly one GPU index (Forge runs on one GPU), "
                f"got {gpus!r}"
            )
            gpus = [0]
        inst["gpus"] = [int(g) for g in gpus]
        try:
            share = float(inst["memory_share"])
        except (TypeError, ValueError):
            share = -1.0
        if not 0.0 < share <= 1.0:
            problems.append(
                f"{label}: {where}.memory_share {inst['memory_share']!r} must be in (0, 1]"
            )
        inst["memory_share"] = share

        inst["checkpoint"] = _checkpoint(
            inst.get("checkpoint"), f"{where}.checkpoint", problems, require_sha256
        )
        problems += [
            f"{label}: {p}" for p in _args_problems(inst["args_extra"], f"{where}.args_extra")
        ]
        inst["args_extra"] = (
            [str(a) for a in inst["args_extra"]] if isinstance(inst["args_extra"], list) else []
        )

        tag = inst.get("image_tag")
        if tag not in (None, "") and not TAG_RE.match(str(tag)):
            problems.append(f"{label}: {where}.image_tag '{tag}' is not a valid image tag")
        repository = image.rsplit(":", 1)[0] if ":" in image.rsplit("/", 1)[-1] else image
        inst["image"] = f"{repository}:{tag}" if tag else image

        for key in ("settings_file", "ui_config_file"):
            value = str(inst[key])
            if not SETTINGS_FILE_RE.match(value) or ".." in value.split("/"):
                problems.append(
                    f"{label}: {where}.{key} '{value}' must be a .json file in the workspace "
                    "(a relative path without '..')"
                )
        if inst["settings_file"] == inst["ui_config_file"]:
            problems.append(f"{label}: {where}.settings_file and ui_config_file must differ")
        for key in ("ui_settings", "ui_config", "env"):
            if not isinstance(inst[key], dict):
                problems.append(f"{label}: {where}.{key} must be a mapping")
                inst[key] = {}
        for key in inst["env"]:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", str(key)) or str(key) in RESERVED_ENV:
                problems.append(
                    f"{label}: {where}.env.{key} is not allowed (set by the role or invalid)"
                )
        problems += [
            f"{label}: {p}"
            for p in (
                specs.positive_int_problem(
                    inst["load_timeout"], f"{where}.load_timeout", "a positive number of seconds"
                ),
                specs.address_problem(inst["bind_address"], f"{where}.bind_address"),
                specs.hostname_problem(inst["hostname"], f"{where}.hostname"),
                specs.image_problem(inst["image"], f"{where} image (forge_turbo_image)"),
            )
            if p
        ]
        if not specs.positive_int_problem(inst["load_timeout"], "", ""):
            inst["load_timeout"] = int(inst["load_timeout"])
        inst["sdxl_turbo"] = bool(inst["sdxl_turbo"])
        inst["gradio_auth"] = bool(inst["gradio_auth"])

        settings: dict[str, Any] = {}
        ui_config: dict[str, Any] = {}
        if inst["sdxl_turbo"]:
            settings.update(role.get("turbo_ui_settings") or {})
            ui_config.update(role.get("turbo_ui_config") or {})
        if inst["checkpoint"]:
            settings["sd_model_checkpoint"] = inst["checkpoint"]["name"]
        settings.update(inst["ui_settings"])
        ui_config.update(inst["ui_config"])
        inst["ui_settings"] = settings
        inst["ui_config"] = ui_config
        inst["settings_hash"] = hashlib.sha256(
            json.dumps([settings, ui_config], sort_keys=True, default=str).encode()
        ).hexdigest()[:16]

        inst["workspace"] = str(inst.get("workspace") or f"{root_dir}/{name}/workspace").rstrip("/")
        inst["checkpoint_dir"] = f"{inst['workspace']}/{CHECKPOINT_SUBDIR}"
        inst["settings_path"] = f"{inst['workspace']}/{inst['settings_file']}"
        inst["ui_config_path"] = f"{inst['workspace']}/{inst['ui_config_file']}"
        # a file with no key of the role's is left to Forge (e.g. a migrated instance's own)
        inst["ui_files"] = [
            {"instance": name, "path": path, "data": data}
            for path, data in (
                (inst["settings_path"], settings),
                (inst["ui_config_path"], ui_config),
            )
            if data
        ]
        parents = [f["path"].rsplit("/", 1)[0] for f in inst["ui_files"]]
        inst["dirs"] = list(dict.fromkeys([inst["workspace"], inst["checkpoint_dir"], *parents]))
        # one GPU is exposed to the container, so CUDA numbers it 0 (see the module docstring)
        inst["gpu_device_id"] = inst["gpus"].index(inst["gpus"][0])
        inst["no_autostart"] = [s for s in NO_AUTOSTART if s != "caddy" or not inst["web_port"]]
        inst["gpu_wish"] = {
            "service": name,
            "source": where,
            "gpus": inst["gpus"],
            "memory_share": share,
            "port": inst["port"],
            "bind_address": inst["bind_address"],
        }
        # where the instance is reached from its host (the compose healthcheck reads it)
        inst["reach_url"] = specs.reach_url(inst["bind_address"], inst["port"])
        result.append(inst)
    if problems:
        raise ForgeSpecError("invalid Forge instances", problems)
    return result


def credential_problems(
    user: Any,
    password: Any,
    token: Any,
    names: tuple[str, str, str] = (
        "forge_turbo_api_user",
        "forge_turbo_api_password",
        "forge_turbo_web_token",
    ),
) -> list[str]:
    """Problems with the credentials, naming the variables, never showing a value."""
    problems = []
    user_s, password_s, token_s = (str(v or "") for v in (user, password, token))
    if not USER_RE.match(user_s):
        problems.append(
            f"{names[0]} must be set to letters, digits, '.', '_' or '-' (Forge splits "
            "--api-auth on ':' and ',')"
        )
    for name, value in ((names[1], password_s), (names[2], token_s)):
        if len(value) < MIN_SECRET_LENGTH:
            problems.append(
                f"{name} must be set (from the vault) to at least {MIN_SECRET_LENGTH} characters"
            )
        elif not CREDENTIAL_RE.match(value) or "___" in value:
            problems.append(
                f"{name} may only hold letters, digits and . _ ~ + / = @ - (the image word-splits "
                "FORGE_ARGS, Forge splits --api-auth on ':' and ',', ai-dock turns '___' into a space)"
            )
    if token_s and token_s == password_s:
        problems.append(f"{names[2]} must differ from {names[1]}")
    return problems


def forge_args(instance: dict[str, Any], user: str, password: str) -> str:
    """FORGE_ARGS of a normalized instance (holds the password: env file only)."""
    args = [
        "--ui-settings-file", f"{CONTAINER_WORKSPACE}/{instance['settings_file']}",
        "--ui-config-file", f"{CONTAINER_WORKSPACE}/{instance['ui_config_file']}",
        "--ckpt-dir", f"{CONTAINER_WORKSPACE}/{CHECKPOINT_SUBDIR}",
        "--api", "--api-log",
        "--listen", "--server-name", str(instance["bind_address"]),
        "--gpu-device-id", str(instance["gpu_device_id"]),
        "--cuda-malloc", "--xformers",
        "--api-auth", f"{user}:{password}",
    ]  # fmt: skip
    if instance.get("gradio_auth"):
        # from a file (gradio_auth_file), so the UI credential is not in the process list;
        # --api-auth has no such option upstream
        args += ["--gradio-auth-path", GRADIO_AUTH_PATH]
    args += [str(a) for a in instance.get("args_extra") or []]
    return " ".join(args)


def secret_files(instances: list[dict[str, Any]], user: str, password: str) -> dict[str, str]:
    """The credential files the instances read (file name in the project directory to content):
    ``<name>.gradio-auth`` for ``--gradio-auth-path``, whose lines Forge reads as
    ``user:password`` entries (modules/initialize_util.py get_gradio_auth_creds)."""
    return {
        f"{i['name']}.gradio-auth": f"{user}:{password}\n"
        for i in instances
        if i.get("gradio_auth")
    }


def env_file(instance: dict[str, Any], user: str, password: str, token: str) -> dict[str, str]:
    """The secret part of an instance's environment (0600 env file)."""
    return {
        "FORGE_ARGS": forge_args(instance, user, password),
        "WEB_USER": user,
        "WEB_PASSWORD": password,
        "WEB_TOKEN": token,
    }


def environment(instance: dict[str, Any], gpu_reservation: bool) -> dict[str, str]:
    """The non-secret environment of an instance (compose ``environment:``)."""
    env = {
        "WORKSPACE": CONTAINER_WORKSPACE,
        "FORGE_PORT_LOCAL": str(instance["port"]),
        "FORGE_PORT_HOST": str(instance["web_port"] or instance["port"]),
        "WEB_ENABLE_AUTH": "true",
        "DIRECT_ADDRESS": "127.0.0.1",
        "CF_QUICK_TUNNELS": "false",
        "AUTO_UPDATE": "false",
        "SUPERVISOR_NO_AUTOSTART": ",".join(instance["no_autostart"]),
    }
    if not gpu_reservation:
        env["NVIDIA_VISIBLE_DEVICES"] = ",".join(str(g) for g in instance["gpus"])
    env.update({str(k): str(v) for k, v in (instance.get("env") or {}).items()})
    return dict(sorted(env.items()))


def merge_settings(current_b64: str | None, managed: dict[str, Any]) -> dict[str, Any]:
    """Merge the role's keys over a settings file Forge may have rewritten.

    ``current_b64`` is the file as ``slurp`` returns it (None when there is none). Returns
    ``write`` (the file must be written), ``content`` (the JSON to write, Forge's 4-space
    indent), ``reset`` (managed keys that had another value: Forge must restart to read them)
    and ``broken`` (the file was not a JSON object and is replaced).
    """
    current: Any = None
    broken = False
    if current_b64:
        try:
            current = json.loads(base64.b64decode(current_b64).decode("utf-8"))
        except (ValueError, UnicodeDecodeError):
            broken = True
        if current is not None and not isinstance(current, dict):
            broken, current = True, None
    current = current or {}
    merged = {**current, **managed}
    missing = current_b64 is None
    reset = sorted(k for k, v in managed.items() if k in current and current[k] != v)
    write = missing or broken or merged != current
    return {
        "write": write,
        "content": json.dumps(merged, indent=4, ensure_ascii=False) + "\n",
        "reset": reset,
        "broken": broken,
    }


def smoke_request(smoke: dict[str, Any] | None = None) -> dict[str, Any]:
    """The txt2img body of the post-deploy smoke test (SDXL Turbo: 1 step, CFG 1, 512x512)."""
    body = {
        "prompt": "a lighthouse on a cliff at dawn",
        "steps": 1,
        "cfg_scale": 1.0,
        "width": 512,
        "height": 512,
        "sampler_name": "Euler a",
        "seed": 1,
        "batch_size": 1,
    }
    body.update(smoke or {})
    return body


def endpoints(
    instances: list[dict[str, Any]],
    user: str,
    password: str,
    token: str,
    smoke: dict[str, Any] | None = None,
    host: str | None = None,
) -> list[dict[str, Any]]:
    """endpoint_health checks per instance: a txt2img smoke with the credentials (the API with
    them, for an instance without a checkpoint of the role's), the API closed without them or
    with wrong ones, and, with ``web_port``, the same through Caddy."""
    body = smoke_request(smoke)
    checks: list[dict[str, Any]] = []
    basic = {"type": "basic", "username": user, "password": password}
    for inst in instances:
        base = specs.reach_url(host or inst["bind_address"], inst["port"])
        name = inst["name"]
        # txt2img needs a checkpoint: an instance the role placed none for (its models are the
        # admin's, e.g. a migrated one) is proven to serve the API with its credentials instead
        smoke_check = (
            {
                "name": f"{name}-txt2img",
                "url": f"{base}/sdapi/v1/txt2img",
                "method": "POST",
                "body": body,
                "auth": basic,
                "json_path": "parameters.width",
                "json_value": body["width"],
                "json_contains": {"path": "images.0", "value": "iVBORw0KGgo"},
            }
            if inst.get("checkpoint")
            else {"name": f"{name}-api", "url": f"{base}/sdapi/v1/sd-models", "auth": basic}
        )
        checks += [
            smoke_check,
            {
                "name": f"{name}-no-credentials",
                "url": f"{base}/sdapi/v1/sd-models",
                "status": [401],
                "json_path": "detail",
                "json_value": "Not authenticated",
            },
            {
                "name": f"{name}-wrong-credentials",
                "url": f"{base}/sdapi/v1/sd-models",
                "status": [401],
                "auth": {"type": "basic", "username": user, "password": password + "-wrong"},
                "json_path": "detail",
                "json_value": "Incorrect username or password",
            },
        ]
        if inst.get("checkpoint"):
            checks.append(
                {
                    "name": f"{name}-checkpoint",
                    "url": f"{base}/sdapi/v1/sd-models",
                    "auth": basic,
                    "json_contains": {"path": "", "value": {"model_name": model_name(inst)}},
                }
            )
        if inst.get("web_port"):
            web = f"http://127.0.0.1:{inst['web_port']}"
            auth_header = {"Authorization": "Basic " + _b64(f"{user}:{password}")}
            checks += [
                {
                    "name": f"{name}-web-token",
                    "url": f"{web}/sdapi/v1/options",
                    "auth": {"type": "query", "param": "token", "value": token},
                    "headers": auth_header,
                    "json_path": "sd_model_checkpoint",
                },
                {
                    "name": f"{name}-web-no-token",
                    "url": f"{web}/sdapi/v1/options",
                    "headers": auth_header,
                    "status": [302],
                },
            ]
    return checks


def model_name(instance: dict[str, Any]) -> str:
    """Forge's model_name of the instance's checkpoint: the file name without extension."""
    return str(instance["checkpoint"]["name"]).rsplit(".", 1)[0]


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")
