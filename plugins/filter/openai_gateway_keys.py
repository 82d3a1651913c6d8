"""The OpenAI gateway filters. Each is documented in its own <name>.yml beside this file:
ansible-doc reads those when the plugin file holds no DOCUMENTATION."""

from __future__ import annotations

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.module_utils.credentials import CredentialError
from ansible_collections.myia.genai_stack.plugins.module_utils.kinds import openai_gateway


def openai_gateway_keys(secret: Any, clients: Any) -> dict[str, str]:
    try:
        return openai_gateway.keys(secret, clients)
    except (CredentialError, KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"openai_gateway_keys: {exc}") from exc


def openai_gateway_config(
    spec: dict[str, Any], secret: Any, flush_seconds: int = 5
) -> dict[str, Any]:
    try:
        return openai_gateway.config(dict(spec), secret, int(flush_seconds))
    except (CredentialError, KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"openai_gateway_config: not a checked gateway ({exc})") from exc


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {
            "openai_gateway_keys": openai_gateway_keys,
            "openai_gateway_config": openai_gateway_config,
        }
