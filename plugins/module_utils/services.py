"""The one service model: every service of the stack as a uniform record.

Built from the role variables in group_vars (the vLLM models, ComfyUI, the Forge instances) by the
``genai_services`` filter, and read by everything that must not keep a second list: the reverse
proxy rules, the health checks of validate.yml, the client .env files, the panel.
Records hold no secret: auth says what kind of credential a client sends, not its value.
"""

from __future__ import annotations

from typing import Any

#: per kind: health path, what clients authenticate with, websocket paths, body limit, timeout
KINDS: dict[str, dict[str, Any]] = {
    "vllm": {
        "health_path": "/health",
        "ready_path": "/v1/models",
        "auth": "bearer",
        "websocket_paths": [],
        "max_body_mb": 16,
        "timeout_s": 900,
        "streaming": True,
    },
    "comfyui": {
        "health_path": "/system_stats",
        "ready_path": "/system_stats",
        "auth": "comfyui_token",
        "websocket_paths": ["/ws", "/api/ws"],
        "max_body_mb": 100,
        "timeout_s": 900,
        "streaming": False,
    },
    "forge": {
        "health_path": "/internal/ping",
        "ready_path": "/sdapi/v1/sd-models",
        "auth": "basic",
        "websocket_paths": ["/queue/join"],
        "max_body_mb": 100,
        "timeout_s": 900,
        "streaming": False,
    },
}


class ServiceModelError(ValueError):
    pass


def record(kind: str, spec: dict[str, Any], source: str) -> dict[str, Any]:
    """One uniform record from a role's service spec (needs name and port)."""
    if kind not in KINDS:
        raise ServiceModelError(f"{source}: unknown service kind '{kind}'")
    for key in ("name", "port"):
        if spec.get(key) in (None, ""):
            raise ServiceModelError(f"{source}: missing {source}.{key}")
    bind = spec.get("bind_address") or "127.0.0.1"
    reach = "127.0.0.1" if bind in ("0.0.0.0", "::") else bind
    result = {
        "name": str(spec["name"]),
        "kind": kind,
        "source": source,
        "hostname": spec.get("hostname") or None,
        "bind_address": bind,
        "port": int(spec["port"]),
        "backend_url": f"http://{reach}:{int(spec['port'])}",
        "gpus": [int(g) for g in spec.get("gpus") or []],
        "served_model_names": list(spec.get("served_model_names") or [])
        or ([str(spec["name"])] if kind == "vllm" else []),
        **KINDS[kind],
    }
    if spec.get("memory_share") not in (None, ""):
        # what the GPU plan needs; vLLM models and Forge instances get theirs from their own
        # normalizers, a single-spec service (ComfyUI) from here
        result["gpu_wish"] = {
            "service": result["name"],
            "source": str(spec.get("gpu_variable") or f"{source}.gpus"),
            "gpus": result["gpus"],
            "memory_share": float(spec["memory_share"]),
            "port": result["port"],
            "bind_address": bind,
        }
    return result


def build(
    vllm: list[dict[str, Any]] | None = None,
    comfyui: list[dict[str, Any]] | dict[str, Any] | None = None,
    forge: list[dict[str, Any]] | None = None,
    variables: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    """Every service as a record; fails on a name, port or hostname used twice."""
    names = {
        "vllm": "vllm_qwen3_models",
        "comfyui": "comfyui_qwen_auth_service",
        "forge": "forge_turbo_instances",
    }
    names.update(variables or {})
    records: list[dict[str, Any]] = []
    for kind, specs in (("vllm", vllm), ("comfyui", comfyui), ("forge", forge)):
        if not specs:
            continue
        if isinstance(specs, dict):
            records.append(record(kind, specs, names[kind]))
            continue
        for i, spec in enumerate(specs):
            records.append(record(kind, spec, f"{names[kind]}[{i}]"))
    problems = []
    for key in ("name", "port", "hostname"):
        seen: dict[Any, str] = {}
        for rec in records:
            value = rec[key]
            if value is None:
                continue
            if value in seen:
                problems.append(f"{rec['source']}: {key} {value!r} already used by {seen[value]}")
            seen[value] = rec["source"]
    if problems:
        raise ServiceModelError("invalid service model:\n- " + "\n- ".join(problems))
    return records


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


def health_checks(
    records: list[dict[str, Any]], credentials: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """endpoint_health checks that prove each service serves its clients, from the records.

    ``credentials``: ``vllm_api_key``, ``comfyui_token``, ``forge_username``/``forge_password``,
    ``forge_web_token`` (each optional: without it, only the open paths and the refusal are
    checked). Per kind:

    * vllm: /health; /v1/models lists every served name with the key; a chat completion; a tool
      call round trip (tools -> tool_calls, then the tool result -> an answer); 401 without key.
    * comfyui: /system_stats with the token; 401 without.
    * forge: /sdapi/v1/sd-models with Basic auth; 401 without.
    """
    creds = credentials or {}
    checks: list[dict[str, Any]] = []

    def add(rec: dict[str, Any], what: str, path: str, **spec: Any) -> None:
        checks.append({"name": f"{rec['name']}: {what}", "url": rec["backend_url"] + path, **spec})

    for rec in records:
        kind = rec["kind"]
        if kind == "vllm":
            key = creds.get("vllm_api_key")
            bearer = {"type": "bearer", "token": key}
            add(rec, "health", "/health")
            add(rec, "refuses no key", "/v1/models", status=[401])
            if not key:
                continue
            for served in rec["served_model_names"]:
                add(rec, f"lists {served}", "/v1/models", auth=bearer,
                    json_contains={"path": "data", "value": {"id": served}})  # fmt: skip
            model = rec["served_model_names"][0]
            no_think = {"enable_thinking": False}
            add(rec, "chat completion", "/v1/chat/completions", method="POST", auth=bearer,
                body={"model": model, "messages": [{"role": "user", "content": "Say OK."}],
                      "max_tokens": 16, "chat_template_kwargs": no_think},
                json_path="choices.0.message.role", json_value="assistant")  # fmt: skip
            add(rec, "tool call", "/v1/chat/completions", method="POST", auth=bearer,
                body={"model": model, "messages": [_ASK], "tools": [_TOOL],
                      "tool_choice": "auto", "chat_template_kwargs": no_think},
                json_path="choices.0.message.tool_calls.0.function.name",
                json_value="get_weather")  # fmt: skip
            call = {"id": "call-validate", "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}  # fmt: skip
            add(rec, "tool result answered", "/v1/chat/completions", method="POST", auth=bearer,
                body={"model": model, "tools": [_TOOL], "chat_template_kwargs": no_think,
                      "messages": [_ASK, {"role": "assistant", "content": None, "tool_calls": [call]},
                                   {"role": "tool", "tool_call_id": "call-validate",
                                    "content": '{"temperature_c": 18}'}]},
                json_path="choices.0.finish_reason", json_value="stop")  # fmt: skip
        elif kind == "comfyui":
            token = creds.get("comfyui_token")
            add(rec, "refuses no token", "/system_stats", status=[401])
            if token:
                add(rec, "system stats", "/system_stats",
                    auth={"type": "bearer", "token": token}, json_path="system")  # fmt: skip
        elif kind == "forge":
            user, password = creds.get("forge_username"), creds.get("forge_password")
            web_token = creds.get("forge_web_token")
            query = {"type": "query", "param": "token", "value": web_token} if web_token else None
            add(rec, "refuses no credentials", "/sdapi/v1/sd-models", status=[401],
                **({"auth": query} if query else {}))  # fmt: skip
            if user and password:
                basic = f"{user}:{password}"
                add(rec, "lists checkpoints", "/sdapi/v1/sd-models",
                    headers={"Authorization": "Basic " + _b64(basic)},
                    **({"auth": query} if query else {}), json_path="0.model_name")  # fmt: skip
    return checks


def _b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def refusal_checks(
    records: list[dict[str, Any]], credentials: dict[str, Any]
) -> list[dict[str, Any]]:
    """Checks that each service refuses ``credentials`` (the ones before a rotation): 401."""
    checks: list[dict[str, Any]] = []
    for rec in records:
        kind, base = rec["kind"], rec["backend_url"]
        name = f"{rec['name']}: refuses the old credential"
        if kind == "vllm" and credentials.get("vllm_api_key"):
            auth = {"type": "bearer", "token": credentials["vllm_api_key"]}
            checks.append({"name": name, "url": base + "/v1/models", "auth": auth, "status": [401]})
        elif kind == "comfyui" and credentials.get("comfyui_token"):
            auth = {"type": "bearer", "token": credentials["comfyui_token"]}
            checks.append(
                {"name": name, "url": base + "/system_stats", "auth": auth, "status": [401]}
            )
        elif kind == "forge" and credentials.get("forge_password"):
            basic = f"{credentials.get('forge_username', 'admin')}:{credentials['forge_password']}"
            checks.append({"name": name, "url": base + "/sdapi/v1/sd-models", "status": [401],
                           "headers": {"Authorization": "Basic " + _b64(basic)}})  # fmt: skip
    return checks


def _env_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).upper()


def client_env(
    records: list[dict[str, Any]], credentials: dict[str, Any], public: bool = False
) -> dict[str, str]:
    """The variables a client .env needs (base URLs and credentials), from the records.

    ``public``: base URLs through the reverse proxy (https://hostname) where a record has one.
    """
    env: dict[str, str] = {}

    def url(rec: dict[str, Any]) -> str:
        return (
            f"https://{rec['hostname']}" if public and rec.get("hostname") else rec["backend_url"]
        )

    vllm = [r for r in records if r["kind"] == "vllm"]
    if vllm:
        env["VLLM_BASE_URL"] = url(vllm[0]) + "/v1"
        env["VLLM_MODEL"] = vllm[0]["served_model_names"][0]
        for rec in vllm:
            env[f"VLLM_{_env_name(rec['name'])}_BASE_URL"] = url(rec) + "/v1"
            env[f"VLLM_{_env_name(rec['name'])}_MODEL"] = rec["served_model_names"][0]
        if credentials.get("vllm_api_key"):
            env["VLLM_API_KEY"] = credentials["vllm_api_key"]
    for rec in (r for r in records if r["kind"] == "comfyui"):
        env["COMFYUI_BASE_URL"] = url(rec)
        if credentials.get("comfyui_token"):
            env["COMFYUI_TOKEN"] = credentials["comfyui_token"]
    forge = [r for r in records if r["kind"] == "forge"]
    for rec in forge:
        env[f"FORGE_{_env_name(rec['name'])}_BASE_URL"] = url(rec)
    if forge:
        env["FORGE_BASE_URL"] = url(forge[0])
        for key, cred in (("FORGE_USER", "forge_username"), ("FORGE_PASSWORD", "forge_password"),
                          ("FORGE_WEB_TOKEN", "forge_web_token")):  # fmt: skip
            if credentials.get(cred):
                env[key] = credentials[cred]
    return env
