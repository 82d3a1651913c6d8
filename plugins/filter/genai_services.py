from __future__ import annotations

DOCUMENTATION = r"""
name: genai_services
short_description: Every service of the stack as one uniform list (the one service model)
version_added: 0.1.0
description:
  - Builds, from the role variables in group_vars, one record per service (each vLLM model,
    ComfyUI, each Forge instance) with C(name), C(kind), C(hostname) (public name behind the
    reverse proxy), C(bind_address), C(port), C(backend_url), C(gpus), C(health_path),
    C(ready_path), C(auth) (C(bearer), C(comfyui_token) or C(basic)), C(websocket_paths),
    C(max_body_mb), C(timeout_s), C(streaming) and C(served_model_names).
  - The reverse proxy, the health checks, the client C(.env) files and the panel read this list;
    nothing keeps a second list of hostnames or ports.
  - Fails on a name, port or hostname used twice, naming the variables.
  - Records carry no secret.
options:
  _input:
    description: The vLLM models (C(vllm_qwen3_models)).
    type: list
    elements: dict
  comfyui:
    description: The ComfyUI service(s), each with C(name), C(port), optional C(hostname), C(bind_address), C(gpus).
    type: raw
  forge:
    description: The Forge instances (C(forge_turbo_instances)).
    type: list
    elements: dict
  variables:
    description: Names of the source variables for messages (keys C(vllm), C(comfyui), C(forge)).
    type: dict
"""

EXAMPLES = r"""
- name: List the public hostnames
  ansible.builtin.debug:
    msg: "{{ vllm_qwen3_models | myia.genai_stack.genai_services(forge=forge_turbo_instances) | map(attribute='hostname') }}"
"""

RETURN = r"""
_value:
  description: One record per service, in the order vLLM models, ComfyUI, Forge instances.
  type: list
  elements: dict
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.module_utils import services


def genai_services(
    vllm: list[dict[str, Any]] | None,
    comfyui: Any = None,
    forge: list[dict[str, Any]] | None = None,
    variables: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    try:
        return services.build({"vllm": vllm, "comfyui": comfyui, "forge": forge}, variables)
    except services.ServiceModelError as exc:
        raise AnsibleFilterError(str(exc)) from exc


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"genai_services": genai_services}
