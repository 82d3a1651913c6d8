from __future__ import annotations

DOCUMENTATION = r"""
name: reach_url
short_description: The URL a service is reached at from its own host, given its bind address
version_added: 0.1.0
description:
  - Returns C(http://<address>:<port>) (no path, no trailing slash), where the address is the one
    a client on the service's own host connects to.
  - A wildcard bind address (C(0.0.0.0), C(::), C(0.0.0.0,::) - what ComfyUI's bare C(--listen)
    binds - or an empty one) means every interface, so the service is reached through the
    loopback, C(127.0.0.1). Any other address is reached as it is.
  - An IPv6 literal is written in brackets, as URLs need it (C(http://[::1]:8188)).
  - The same rule gives the C(backend_url) of the service records
    (P(myia.genai_stack.genai_services#filter)), the health checks of vLLM and Forge
    (P(myia.genai_stack.vllm_endpoints#filter), P(myia.genai_stack.forge_endpoints#filter)) and
    the C(reach_url) of their checked specs (C(genai_stack.specs) of
    M(myia.genai_stack.stack_model)), which the compose healthchecks read.
options:
  _input:
    description: The address the service binds (C(--listen), C(--host), C(--server-name)).
    type: str
    required: true
  port:
    description: The port the service listens on.
    type: int
    required: true
  scheme:
    description: The URL scheme.
    type: str
    default: http
"""

EXAMPLES = r"""
- name: Where ComfyUI is checked from its own host
  ansible.builtin.set_fact:
    comfyui_qwen_auth_url: >-
      {{ comfyui_qwen_auth_bind_address | myia.genai_stack.reach_url(comfyui_qwen_auth_port) }}

- name: A wildcard bind is reached through the loopback (http://127.0.0.1:8188)
  ansible.builtin.debug:
    msg: "{{ '0.0.0.0' | myia.genai_stack.reach_url(8188) }}"

- name: An IPv6 address is bracketed (http://[::1]:8188)
  ansible.builtin.debug:
    msg: "{{ '::1' | myia.genai_stack.reach_url(8188) }}"
"""

RETURN = r"""
_value:
  description: The base URL, C(<scheme>://<host>:<port>), without a path.
  type: str
  sample: http://127.0.0.1:8188
"""

from typing import Any

from ansible_collections.myia.genai_stack.plugins.module_utils import specs


def reach_url(bind: Any, port: Any, scheme: str = "http") -> str:
    return specs.reach_url(bind, port, str(scheme))


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"reach_url": reach_url}
