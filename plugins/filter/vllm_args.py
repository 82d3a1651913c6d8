from __future__ import annotations

DOCUMENTATION = r"""
name: vllm_args
short_description: The vLLM OpenAI server arguments for one model
version_added: 0.1.0
description:
  - Renders the arguments of C(python3 -m vllm.entrypoints.openai.api_server) (the compose
    C(command:) of the C(vllm/vllm-openai) image) for a checked model (C(genai_stack.specs.vllm)
    of M(myia.genai_stack.stack_model)).
  - The API key is never put on the command line; the env file carries C(VLLM_API_KEY).
options:
  _input:
    description: One checked model (C(genai_stack.specs.vllm) of M(myia.genai_stack.stack_model)).
    type: dict
    required: true
"""

EXAMPLES = r"""
- name: Show the command line of each model
  ansible.builtin.debug:
    msg: "{{ item | myia.genai_stack.vllm_args | join(' ') }}"
  loop: "{{ genai_stack.specs.vllm }}"
"""

RETURN = r"""
_value:
  description: The arguments, e.g. C([--model, Qwen/Qwen3-8B-AWQ, --served-model-name, qwen3-mini, ...]).
  type: list
  elements: str
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.module_utils import vllm


def vllm_args(model: dict[str, Any]) -> list[str]:
    try:
        return vllm.command(model)
    except KeyError as exc:
        raise AnsibleFilterError(
            f"vllm_args: the model lacks {exc}; pass a checked model (genai_stack.specs.vllm)"
        ) from exc


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"vllm_args": vllm_args}
