from __future__ import annotations

DOCUMENTATION = r"""
name: vllm_endpoints
short_description: The health checks that prove vLLM models serve their clients
version_added: 0.1.0
description:
  - For each checked model (C(genai_stack.specs.vllm) of M(myia.genai_stack.stack_model)), the
    M(myia.genai_stack.endpoint_health) checks that C(/v1/models) lists every served name when
    given the API key, and answers 401 without it.
options:
  _input:
    description: The checked models (C(genai_stack.specs.vllm) of M(myia.genai_stack.stack_model)).
    type: list
    elements: dict
    required: true
  api_key:
    description: The API key the servers were given.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Check the models
  myia.genai_stack.endpoint_health:
    endpoints: "{{ models | myia.genai_stack.vllm_endpoints(api_key=vllm_qwen3_api_key) }}"
"""

RETURN = r"""
_value:
  description: Endpoint checks for M(myia.genai_stack.endpoint_health).
  type: list
  elements: dict
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.module_utils import vllm


def vllm_endpoints(models: list[dict[str, Any]], api_key: str) -> list[dict[str, Any]]:
    try:
        return vllm.endpoints(list(models), str(api_key))
    except KeyError as exc:
        raise AnsibleFilterError(
            f"vllm_endpoints: a model lacks {exc}; pass checked models (genai_stack.specs.vllm)"
        ) from exc


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"vllm_endpoints": vllm_endpoints}
