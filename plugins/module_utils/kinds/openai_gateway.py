"""The OpenAI gateway (role openai_gateway): one OpenAI endpoint in front of every vLLM model of
the host, with one key per named client (openai_gateway_clients) and usage per client and model.

One service per host, without GPU. Each client's key is derived from the one secret and the
client's name (purpose ``openai-gateway-client:<name>``); the host stores only their sha256.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from ansible_collections.myia.genai_stack.plugins.module_utils import credentials, specs
from ansible_collections.myia.genai_stack.plugins.module_utils.kinds import (
    Check,
    Kind,
    Values,
    check,
)
from ansible_collections.myia.genai_stack.plugins.module_utils.kinds import vllm as vllm_kind

#: the keys of one openai_gateway_clients entry
CLIENT_KEYS = ("name", "models", "requests_per_minute", "tokens_per_minute")
#: the derivation purpose of a client's key (credentials.derive)
KEY_PURPOSE = "openai-gateway-client:"
#: the environment variable of the gateway's container that holds the vLLM key
BACKEND_KEY_ENV = "GATEWAY_BACKEND_KEY"
#: where the container reads its configuration and keeps its usage
CONFIG_PATH = "/etc/genai-gateway/config.json"
USAGE_DIR = "/var/lib/genai-gateway"


def read(v: Values) -> list[dict[str, Any]]:
    """One spec (the gateway of this host), or none when it is off or the host serves no model."""
    if v.get("openai_gateway_enabled") in (False, "false", "False", "no") or not v.get(
        "vllm_qwen3_models"
    ):
        return []
    problems: list[str] = []
    models = _served_models(v, problems)
    name = v.get("openai_gateway_name") or "openai-gateway"
    for problem in (
        specs.name_problem(name, "openai_gateway_name"),
        specs.port_problem(v.get("openai_gateway_port"), "openai_gateway_port"),
        specs.image_problem(v.get("openai_gateway_image"), "openai_gateway_image"),
        specs.image_problem(v.get("openai_gateway_base_image"), "openai_gateway_base_image"),
    ):
        if problem:
            problems.append(problem)
    bind = v.get("openai_gateway_bind_address") or "127.0.0.1"
    if problem := specs.address_problem(bind, "openai_gateway_bind_address"):
        problems.append(problem)
    hostname = v.get("openai_gateway_hostname") or None
    if hostname and (problem := specs.hostname_problem(hostname, "openai_gateway_hostname")):
        problems.append(problem)
    clients = _clients(v.get("openai_gateway_clients"), models, problems)
    if problems:
        raise specs.SpecError("invalid OpenAI gateway", problems)
    return [
        {
            "name": str(name),
            "source": "openai_gateway",
            "port": int(str(v["openai_gateway_port"])),
            "bind_address": bind,
            "hostname": hostname,
            "image": str(v["openai_gateway_image"]),
            "base_image": str(v["openai_gateway_base_image"]),
            "clients": clients,
            "served_model_names": sorted(models),
            "backends": models,
        }
    ]


def _served_models(v: Values, problems: list[str]) -> dict[str, dict[str, Any]]:
    """served model name -> the vLLM model that serves it (name, reach URL); a name served by
    two models is a problem (the gateway routes by name)."""
    try:
        served = vllm_kind.read(v)
    except specs.SpecError:
        return {}  # the vLLM kind names its own problems
    models: dict[str, dict[str, Any]] = {}
    for spec in served:
        for name in spec["served_model_names"]:
            if name in models:
                problems.append(
                    f"{spec['gpu_wish']['source']}.served_model_names: {name!r} is also served "
                    f"by {models[name]['backend']}; the OpenAI gateway routes by model name"
                )
                continue
            url = specs.reach_url(spec["bind_address"], spec["port"])
            models[name] = {"backend": spec["name"], "url": url}
    return models


def _rate(value: Any, where: str, problems: list[str]) -> int | None:
    if value in (None, ""):
        return None
    problem = specs.positive_int_problem(value, where)
    if problem:
        problems.append(problem)
        return None
    return int(str(value))


def _clients(raw: Any, models: Mapping[str, Any], problems: list[str]) -> list[dict[str, Any]]:
    """openai_gateway_clients: unique names, allow-lists of served models, positive rates."""
    if not isinstance(raw, list) or not raw:
        problems.append("openai_gateway_clients must be a non-empty list of {name, models, ...}")
        return []
    result: list[dict[str, Any]] = []
    seen: set[str] = set()
    for i, _where, label, entry in specs.entries(
        raw, "openai_gateway_clients", "client", CLIENT_KEYS, ("name",), {}, problems
    ):
        where = f"openai_gateway_clients[{i}]"
        name = entry["name"]
        if problem := specs.name_problem(name, f"{where}.name"):
            problems.append(problem)
            continue
        if name in seen:
            problems.append(f"{label}: name {name!r} is already used by another client")
        seen.add(name)
        allowed = entry.get("models")
        if allowed is not None:
            if (
                not isinstance(allowed, list)
                or not allowed
                or not all(isinstance(m, str) for m in allowed)
            ):
                problems.append(
                    f"{where}.models must be a non-empty list of served model names (leave it "
                    "out for every model)"
                )
                allowed = None
            elif unknown := [m for m in allowed if m not in models]:
                problems.append(
                    f"{where}.models names model(s) this host does not serve: "
                    f"{', '.join(unknown)} (served: {', '.join(sorted(models)) or 'none'})"
                )
        result.append(
            {
                "name": str(name),
                "models": list(allowed) if allowed else None,
                "requests_per_minute": _rate(
                    entry.get("requests_per_minute"), f"{where}.requests_per_minute", problems
                ),
                "tokens_per_minute": _rate(
                    entry.get("tokens_per_minute"), f"{where}.tokens_per_minute", problems
                ),
            }
        )
    return result


def keys(secret: Any, clients: Any) -> dict[str, str]:
    """Each client's key: derived from the one secret and the client's name (none without one)."""
    if not secret:
        return {}
    names = [c["name"] if isinstance(c, dict) else c for c in clients or []]
    return {str(n): credentials.derive(secret, KEY_PURPOSE + str(n)) for n in names}


def config(spec: dict[str, Any], secret: Any, flush_seconds: int = 5) -> dict[str, Any]:
    """The gateway's configuration file (roles/openai_gateway/files/genai_gateway): its address,
    one backend per vLLM model with the names it serves, each client with only the sha256 of
    its key."""
    derived = keys(secret, spec["clients"])
    backends: dict[str, dict[str, Any]] = {}
    for served, where in sorted(spec["backends"].items()):
        backend = backends.setdefault(
            where["backend"],
            {"name": where["backend"], "url": where["url"], "models": [],
             "api_key_env": BACKEND_KEY_ENV},
        )  # fmt: skip
        backend["models"].append(served)
    return {
        "listen": {"host": spec["bind_address"], "port": spec["port"]},
        "backends": list(backends.values()),
        "clients": [
            {**client, "key_sha256": hashlib.sha256(derived[client["name"]].encode()).hexdigest()}
            for client in spec["clients"]
            if client["name"] in derived
        ],
        "usage_file": f"{USAGE_DIR}/usage.json",
        "usage_flush_seconds": int(flush_seconds),
    }


def _client_key(rec: dict[str, Any], creds: Mapping[str, Any]) -> tuple[str, str] | None:
    """(client name, key) of the client a check or a client file speaks as."""
    keys = creds.get("openai_gateway_keys") or {}
    wanted = creds.get("openai_gateway_client") or ""
    names = [c["name"] for c in rec.get("clients") or []] or list(keys)
    for name in [wanted] if wanted else names:
        if keys.get(name):
            return name, str(keys[name])
    return None


def checks(rec: dict[str, Any], creds: Mapping[str, Any]) -> list[Check]:
    """/health; 401 without key; every model listed; a chat, a stream, a tool call round trip
    through the gateway; the keys of clients removed from the inventory refused."""
    result = [
        check(rec, "health", "/health", json_path="status"),
        check(
            rec,
            "refuses no key",
            "/v1/models",
            status=[401],
            json_path="error.code",
            json_value="invalid_api_key",
        ),
    ]
    for name, key in sorted((creds.get("openai_gateway_removed_keys") or {}).items()):
        auth = {"type": "bearer", "token": key}
        result.append(check(rec, f"refuses removed client {name}", "/v1/models", auth=auth,
                            status=[401]))  # fmt: skip
    client = _client_key(rec, creds)
    if client is None:
        return result
    bearer = {"type": "bearer", "token": client[1]}
    allowed = next((c["models"] for c in rec["clients"] if c["name"] == client[0]), None)
    models = allowed or rec["served_model_names"]
    for served in models:
        result.append(check(rec, f"lists {served}", "/v1/models", auth=bearer,
                            json_contains={"path": "data", "value": {"id": served}}))  # fmt: skip
    for served in models:
        for probe in vllm_kind.conversation(served):
            result.append(check(rec, f"{served}: {probe['what']}", probe["path"], method="POST",
                                auth=bearer, **probe["expect"]))  # fmt: skip
        stream = {"model": served, "stream": True, "max_tokens": 8,
                  "messages": [{"role": "user", "content": "Say OK."}],
                  "chat_template_kwargs": {"enable_thinking": False}}  # fmt: skip
        result.append(check(rec, f"{served}: streamed chat", "/v1/chat/completions",
                            method="POST", auth=bearer, body=stream,
                            body_contains="data: [DONE]"))  # fmt: skip
    return result


def refusals(rec: dict[str, Any], creds: Mapping[str, Any]) -> list[Check]:
    """Every client key of before a rotation: 401."""
    return [
        check(
            rec,
            f"refuses the old key of {name}",
            "/v1/models",
            auth={"type": "bearer", "token": key},
            status=[401],
        )
        for name, key in sorted((creds.get("openai_gateway_keys") or {}).items())
        if key
    ]


def client_env(
    records: list[dict[str, Any]], creds: Mapping[str, Any], url: Callable[..., str]
) -> dict[str, str]:
    """The names the official OpenAI SDKs read: OPENAI_BASE_URL, OPENAI_API_KEY."""
    env = {"OPENAI_BASE_URL": url(records[0]) + "/v1"}
    client = _client_key(records[0], creds)
    if client is not None:
        env["OPENAI_API_KEY"] = client[1]
    return env


KIND = Kind(
    name="openai_gateway",
    role="openai_gateway",
    variable="openai_gateway_clients",
    variables=(
        "openai_gateway_enabled",
        "openai_gateway_name",
        "openai_gateway_port",
        "openai_gateway_bind_address",
        "openai_gateway_hostname",
        "openai_gateway_image",
        "openai_gateway_base_image",
        "openai_gateway_clients",
        *vllm_kind.KIND.variables,
    ),
    read=read,
    # the OpenAI surface of the models behind it (bearer key, streams, long answers); it is
    # ready as soon as it answers /health
    http={**vllm_kind.KIND.http, "ready_path": "/health"},
    checks=checks,
    refusals=refusals,
    client_env=client_env,
    record_keys=("served_model_names", "clients", "backends", "image", "base_image"),
    fields={
        "name": "openai_gateway_name",
        "port": "openai_gateway_port",
        "hostname": "openai_gateway_hostname",
    },
    order=15,
    tag="gateway",
)
