from __future__ import annotations

DOCUMENTATION = r"""
name: redact_credentials
short_description: Take every credential out of a text (container logs, failure messages)
version_added: 0.3.0
description:
  - "Replaces each value of O(secrets), and every value shaped like a credential whatever its
    origin, with C(***): bcrypt hashes (the ComfyUI-Login API token, which the node logs on
    every start), C(Bearer)/C(Basic) values, C(key=value) or C(key: value) where the key names a
    token, API key, password or secret, Forge's C(--api-auth)/C(--gradio-auth) values, and
    passwords in URLs."
  - Used by C(playbooks/logs.yml) before logs are shown or written on the controller, and by the
    compose engine for the log lines of a failed rollout.
options:
  _input:
    description: The text.
    type: str
    required: true
  secrets:
    description: Known secret values, replaced wherever they appear (empty values are ignored).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Show a container's log lines without credentials
  ansible.builtin.debug:
    msg: "{{ logs.stdout | myia.genai_stack.redact_credentials(secrets=[vllm_api_key]) }}"
"""

RETURN = r"""
_value:
  description: The text with every credential replaced by C(***).
  type: str
"""

from typing import Any

from ansible_collections.myia.genai_stack.plugins.module_utils.redact import redact


def redact_credentials(text: Any, secrets: Any = None) -> str:
    return redact(str(text if text is not None else ""), secrets or ())


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {"redact_credentials": redact_credentials}
