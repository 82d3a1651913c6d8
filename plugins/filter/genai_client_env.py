from __future__ import annotations

DOCUMENTATION = r"""
name: genai_client_env
short_description: What a client .env needs to reach every service (base URLs, credentials)
version_added: 0.1.0
description:
  - From the records of P(myia.genai_stack.genai_services#filter) and the derived credentials,
    the variables a client (the notebooks, scripts) needs, e.g. C(VLLM_BASE_URL), C(VLLM_API_KEY),
    C(VLLM_QWEN3_MINI_BASE_URL), C(COMFYUI_BASE_URL), C(COMFYUI_TOKEN), C(FORGE_BASE_URL),
    C(FORGE_USER), C(FORGE_PASSWORD), C(FORGE_WEB_TOKEN).
  - Feed it to M(myia.genai_stack.token_sync) (no_log).
options:
  _input:
    description: The service records.
    type: list
    elements: dict
    required: true
  credentials:
    description: C(vllm_api_key), C(comfyui_token), C(forge_username), C(forge_password), C(forge_web_token).
    type: dict
    required: true
  public:
    description: Base URLs through the reverse proxy (C(https://hostname)) where a record has a hostname.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Write the notebooks' .env
  myia.genai_stack.token_sync:
    files:
      - path: /srv/notebooks/.env
        values: "{{ genai_services | myia.genai_stack.genai_client_env(genai_client_credentials) }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: Variable names and values (secrets included).
  type: dict
"""

from typing import Any

from ansible_collections.myia.genai_stack.plugins.module_utils import services


def genai_client_env(
    records: list[dict[str, Any]], credentials: dict[str, Any], public: bool = False
) -> dict[str, str]:
    return services.client_env(list(records), dict(credentials), bool(public))


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"genai_client_env": genai_client_env}
