"""Stable Diffusion WebUI Forge (role forge_turbo): one service per instance of forge_turbo_instances."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ansible_collections.myia.genai_stack.plugins.module_utils import forge
from ansible_collections.myia.genai_stack.plugins.module_utils.kinds import (
    Check,
    Kind,
    Values,
    b64,
    check,
    env_name,
)


def read(v: Values) -> list[dict[str, Any]]:
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


def _query(creds: Mapping[str, Any]) -> dict[str, Any]:
    token = creds.get("forge_web_token")
    return {"auth": {"type": "query", "param": "token", "value": token}} if token else {}


def checks(rec: dict[str, Any], creds: Mapping[str, Any]) -> list[Check]:
    """401 without credentials; the checkpoint list with Basic auth."""
    query = _query(creds)
    checks = [check(rec, "refuses no credentials", "/sdapi/v1/sd-models", status=[401], **query)]
    user, password = creds.get("forge_username"), creds.get("forge_password")
    if user and password:
        basic = {"Authorization": "Basic " + b64(f"{user}:{password}")}
        # an instance may hold no model of the role's (its own, or none yet): the credentials
        # are proven by the answer (200 with a list), not by its content
        checks.append(check(rec, "accepts the credentials", "/sdapi/v1/sd-models", headers=basic,
                            json_path="", **query))  # fmt: skip
    return checks


def refusals(rec: dict[str, Any], creds: Mapping[str, Any]) -> list[Check]:
    if not creds.get("forge_password"):
        return []
    basic = f"{creds.get('forge_username', 'admin')}:{creds['forge_password']}"
    return [check(rec, "refuses the old credential", "/sdapi/v1/sd-models", status=[401],
                  headers={"Authorization": "Basic " + b64(basic)})]  # fmt: skip


def client_env(
    records: list[dict[str, Any]], creds: Mapping[str, Any], url: Callable[..., str]
) -> dict[str, str]:
    env = {f"FORGE_{env_name(rec['name'])}_BASE_URL": url(rec) for rec in records}
    env["FORGE_BASE_URL"] = url(records[0])
    for key, cred in (("FORGE_USER", "forge_username"), ("FORGE_PASSWORD", "forge_password"),
                      ("FORGE_WEB_TOKEN", "forge_web_token")):  # fmt: skip
        if creds.get(cred):
            env[key] = creds[cred]
    return env


KIND = Kind(
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
    read=read,
    http={
        "health_path": "/internal/ping",
        "ready_path": "/sdapi/v1/sd-models",
        "auth": "basic",
        "websocket_paths": ["/queue/join"],
        "max_body_mb": 100,
        "timeout_s": 900,
        "streaming": False,
    },
    checks=checks,
    refusals=refusals,
    client_env=client_env,
    order=30,
)
