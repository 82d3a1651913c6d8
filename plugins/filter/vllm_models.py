from __future__ import annotations

DOCUMENTATION = r"""
name: vllm_models
short_description: Validate vLLM model specs and fill in their defaults
version_added: 0.1.0
description:
  - Checks each model of C(vllm_qwen3_models) (required keys, unknown keys, duplicate names,
    supported dtype, quantization, tool-call and reasoning parsers, memory share) and fills in the
    defaults (served names, tensor parallel size = number of GPUs, role-level defaults).
  - Each result carries a C(gpu_wish) for M(myia.genai_stack.gpu_plan).
  - Fails with every problem found, each naming the model and the variable.
options:
  _input:
    description: The models.
    type: list
    elements: dict
    required: true
  defaults:
    description: Role-level defaults (image, tool_call_parser, load_timeout, ...).
    type: dict
  variable:
    description: The variable name used in error messages.
    type: str
    default: vllm_qwen3_models
"""

EXAMPLES = r"""
- name: Validate the models
  ansible.builtin.set_fact:
    vllm_qwen3_models_checked: "{{ vllm_qwen3_models | myia.genai_stack.vllm_models(defaults={'image': vllm_qwen3_image}) }}"
"""

RETURN = r"""
_value:
  description: The models with every key set, plus C(gpu_wish).
  type: list
  elements: dict
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.module_utils import vllm


def vllm_models(
    models: list[dict[str, Any]],
    defaults: dict[str, Any] | None = None,
    variable: str = "vllm_qwen3_models",
) -> list[dict[str, Any]]:
    try:
        return vllm.normalize(models, defaults, variable)
    except vllm.VllmSpecError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"vllm_models": vllm_models}
