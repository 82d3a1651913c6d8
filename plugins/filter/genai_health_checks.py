from __future__ import annotations

DOCUMENTATION = r"""
name: genai_health_checks
short_description: End-to-end health checks of every service, from the one service model
version_added: 0.1.0
description:
  - Turns the records of P(myia.genai_stack.genai_services#filter) into
    M(myia.genai_stack.endpoint_health) checks that prove each service serves its clients.
  - "vLLM: C(/health), C(/v1/models) lists every served name with the key, a chat completion, a
    tool call round trip (tools give a tool call; the tool result gives an answer), 401 without
    the key."
  - "ComfyUI: C(/system_stats) with the ComfyUI-Login token, 401 without."
  - "Forge: C(/sdapi/v1/sd-models) with Basic auth (plus the Caddy C(?token=) when set), 401 without."
  - A credential left out reduces its service to the checks that need none.
options:
  _input:
    description: The service records.
    type: list
    elements: dict
    required: true
  credentials:
    description: >-
      C(vllm_api_key), C(comfyui_token), C(forge_username), C(forge_password), C(forge_web_token).
    type: dict
  refuse:
    description: >-
      Credentials every service must now refuse (those before a rotation): gives 401 checks
      with them instead of the checks above.
    type: bool
    default: false
"""

EXAMPLES = r"""
- name: Validate every service
  myia.genai_stack.endpoint_health:
    endpoints: "{{ genai_services | myia.genai_stack.genai_health_checks({'vllm_api_key': key}) }}"
    deadline: 60
"""

RETURN = r"""
_value:
  description: Endpoint checks; secrets only inside their C(auth) or C(headers).
  type: list
  elements: dict
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.module_utils import services


def genai_health_checks(
    records: list[dict[str, Any]], credentials: dict[str, Any] | None = None, refuse: bool = False
) -> list[dict[str, Any]]:
    try:
        if refuse:
            return services.refusal_checks(list(records), dict(credentials or {}))
        return services.health_checks(list(records), dict(credentials or {}))
    except KeyError as exc:
        raise AnsibleFilterError(
            f"genai_health_checks: a record lacks {exc}; build them with genai_services"
        ) from exc


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"genai_health_checks": genai_health_checks}
