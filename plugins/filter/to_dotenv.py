from __future__ import annotations

DOCUMENTATION = r"""
name: to_dotenv
short_description: Render a mapping as a dotenv file, quoted the way compose reads it
version_added: 0.1.0
description:
  - Renders C(KEY=value) lines. Plain values stay bare; values with spaces, C($), C(#) or quotes
    are single-quoted (taken literally by docker compose and python-dotenv, so a bcrypt hash with
    C($) survives); values holding C(') or newlines are double-quoted with escapes.
options:
  _input:
    description: The variables, in the order they should appear.
    type: dict
    required: true
  header:
    description: Comment lines written first (each prefixed with C(# )).
    type: str
"""

EXAMPLES = r"""
- name: Write the env file of a service
  ansible.builtin.copy:
    content: "{{ {'VLLM_API_KEY': vllm_qwen3_api_key} | myia.genai_stack.to_dotenv(header='managed by ansible') }}"
    dest: /opt/genai/vllm/micro.env
    mode: "0600"
  no_log: true
"""

RETURN = r"""
_value:
  description: The dotenv text, ending with a newline.
  type: str
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.module_utils import dotenv


def to_dotenv(values: dict[str, object], header: str | None = None) -> str:
    if not isinstance(values, dict):
        raise AnsibleFilterError("to_dotenv expects a mapping")
    try:
        return dotenv.render(dict(values), header=header)
    except ValueError as exc:
        raise AnsibleFilterError(f"to_dotenv: {exc}") from exc


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"to_dotenv": to_dotenv}
