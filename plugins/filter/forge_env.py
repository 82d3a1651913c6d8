"""The Forge filters. Each is documented in its own <name>.yml beside this file: ansible-doc reads
those when the plugin file holds no DOCUMENTATION."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.module_utils import forge


def forge_env(instance: dict[str, Any], user: str, password: str, token: str) -> dict[str, str]:
    try:
        return forge.env_file(instance, str(user), str(password), str(token))
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"forge_env: not a checked instance ({exc})") from exc


def forge_secret_files(instances: list[dict[str, Any]], user: str, password: str) -> dict[str, str]:
    try:
        return forge.secret_files(list(instances), str(user), str(password))
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"forge_secret_files: not checked instances ({exc})") from exc


def forge_environment(instance: dict[str, Any], gpu_reservation: bool = True) -> dict[str, str]:
    try:
        return forge.environment(instance, bool(gpu_reservation))
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"forge_environment: not a checked instance ({exc})") from exc


def forge_credential_problems(credentials: dict[str, Any]) -> list[str]:
    """``{'user': …, 'password': …, 'token': …}`` -> problems naming the variables, no values."""
    return forge.credential_problems(
        credentials.get("user"), credentials.get("password"), credentials.get("token")
    )


def forge_settings_merge(current_b64: str | None, managed: dict[str, Any]) -> dict[str, Any]:
    """A settings file as slurped (base64, or None) + the role's keys -> what to write."""
    return forge.merge_settings(current_b64, dict(managed or {}))


def forge_endpoints(
    instances: list[dict[str, Any]],
    user: str,
    password: str,
    token: str,
    smoke: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    return forge.endpoints(list(instances), str(user), str(password), str(token), smoke)


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {
            "forge_env": forge_env,
            "forge_secret_files": forge_secret_files,
            "forge_environment": forge_environment,
            "forge_credential_problems": forge_credential_problems,
            "forge_endpoints": forge_endpoints,
            "forge_settings_merge": forge_settings_merge,
        }
