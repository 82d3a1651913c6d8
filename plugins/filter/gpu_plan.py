from __future__ import annotations

DOCUMENTATION = r"""
name: gpu_plan
short_description: Check every service's GPU wishes against the host's GPUs and plan the start order
version_added: 0.1.0
description:
  - Takes the GPU wishes of every service (each vLLM model, ComfyUI, Forge) and the GPUs of the
    host (discovered by M(myia.genai_stack.gpu_facts) or declared in the inventory).
  - Fails, naming the service and the variable, on an unknown GPU index, per-GPU memory shares over
    the ceiling, a tensor parallel size different from the number of GPUs, a port used twice, or
    a duplicate service name.
  - Services sharing a GPU start one after the other (start waves); the others in parallel.
options:
  _input:
    description: >-
      The wishes, each a dict with C(service), C(source) (the variable, for messages), C(gpus),
      C(memory_share), and optionally C(tensor_parallel_size), C(port), C(bind_address).
    type: list
    elements: dict
    required: true
  gpus:
    description: The host's GPUs, as indices or dicts with C(index) (and C(name), C(memory_total_mib)).
    type: list
    required: true
  ceiling:
    description: Highest allowed sum of memory shares on one GPU.
    type: float
    default: 1.0
"""

EXAMPLES = r"""
- name: Plan the GPUs
  ansible.builtin.set_fact:
    genai_gpu_plan: "{{ wishes | myia.genai_stack.gpu_plan(gpus=[0, 1, 2], ceiling=0.95) }}"
"""

RETURN = r"""
_value:
  description: The plan.
  type: dict
  contains:
    gpus:
      description: Per GPU, C(index), C(name), C(services) and the C(memory_share) sum.
    services:
      description: Per service, C(gpus), C(memory_share), C(port), C(after) (services it waits for) and C(wave).
    waves:
      description: Lists of services that start together, in order.
    table:
      description: The plan as a readable text table.
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.module_utils import gpu_plan as engine


def gpu_plan(wishes: list[dict[str, Any]], gpus: list[Any], ceiling: float = 1.0) -> dict[str, Any]:
    try:
        return engine.plan(list(wishes), list(gpus), float(ceiling))
    except engine.GpuPlanError as exc:
        raise AnsibleFilterError(str(exc)) from exc
    except (TypeError, ValueError, KeyError) as exc:
        raise AnsibleFilterError(f"gpu_plan: malformed input: {exc}") from exc


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"gpu_plan": gpu_plan}
