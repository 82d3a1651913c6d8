from __future__ import annotations

DOCUMENTATION = r"""
name: derive_secret
short_description: Derive a stable per-service credential from the one master secret
version_added: 0.1.0
description:
  - The stack keeps B(one) master secret (in Ansible Vault). Every credential a service or a
    client needs (the vLLM API key, the ComfyUI-Login password, Forge's C(--api-auth) password,
    the ai-dock C(WEB_TOKEN)...) is derived from it for a named O(purpose) with HMAC-SHA256.
  - B(Deterministic) - the same secret and purpose always give the same credential, on every
    host and every run, so nothing has to be stored besides the master secret and re-running a
    play changes nothing.
  - B(Separated) - each purpose gets an independent credential; knowing one (a client's vLLM key)
    tells nothing about another or about the master secret.
  - B(Rotation) - change the master secret and every derived credential changes with it (then
    re-run the play, which rewrites every consumer). To rotate only one service, change its
    purpose string (for example V(vllm-api-key-2)).
  - "Algorithm (version 1), for reproducing a credential elsewhere: with C(key) the master
    secret in UTF-8, block C(i) (C(i) = 0, 1, ...) is
    C(HMAC-SHA256(key, 'myia.genai_stack:derive_secret:v1:' + purpose + NUL + i as 4 bytes big-endian));
    the blocks are concatenated, and each byte C(b) with C(b < 256 - 256 % n) gives the character
    C(alphabet[b % n]) (n the alphabet size; other bytes are skipped, so there is no bias) until
    O(length) characters. The Python function is
    C(ansible_collections.myia.genai_stack.plugins.module_utils.credentials.derive)."
  - Errors never contain the secret.
options:
  _input:
    description:
      - The master secret, at least 16 characters (use 32 or more random ones). It is used
        byte for byte in UTF-8, white space included.
    type: str
    required: true
  purpose:
    description:
      - What the credential is for; any non-empty string without leading or trailing white
        space. Case matters. The stack uses V(vllm-api-key), V(comfyui-password),
        V(forge-password) and V(forge-web-token).
    type: str
    required: true
  length:
    description:
      - Number of characters, 1 to 4096. The default 48 characters of V(alnum) carry 285 bits.
      - Keep ComfyUI-Login and other bcrypt passwords at 72 or fewer.
    type: int
    default: 48
  alphabet:
    description:
      - V(alnum) is C(A-Za-z0-9), safe unquoted in dotenv files, URLs, shells, HTTP Basic and
        Forge C(--api-auth user:pass).
      - V(hex) is C(0-9a-f); V(lower) is C(a-z0-9); V(urlsafe) is the base64url alphabet
        C(A-Za-z0-9-_).
    type: str
    default: alnum
    choices: [alnum, hex, lower, urlsafe]
notes:
  - Run tasks that handle the result with C(no_log=true).
seealso:
  - plugin: myia.genai_stack.bcrypt_hash
    plugin_type: filter
  - module: myia.genai_stack.token_sync
"""

EXAMPLES = r"""
- name: Every credential of the stack from the one vaulted secret
  ansible.builtin.set_fact:
    vllm_api_key: "{{ genai_master_secret | myia.genai_stack.derive_secret('vllm-api-key') }}"
    comfyui_password: "{{ genai_master_secret | myia.genai_stack.derive_secret('comfyui-password') }}"
    forge_password: "{{ genai_master_secret | myia.genai_stack.derive_secret('forge-password', length=32) }}"
    forge_web_token: "{{ genai_master_secret | myia.genai_stack.derive_secret('forge-web-token', alphabet='urlsafe') }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: The derived credential.
  type: str
  sample: 9bX2kQ7rTzP0mL4vNc8sYw1eHj6uGf3aRd5oKi2tBq7xZn0p
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.module_utils import credentials


def derive_secret(secret: object, purpose: str, length: int = 48, alphabet: str = "alnum") -> str:
    if secret is not None and not isinstance(secret, (str, bytes)):
        # Ansible Vault values (EncryptedString) and other string-likes
        secret = str(secret) if type(secret).__name__ == "EncryptedString" else secret
    try:
        return credentials.derive(secret, purpose, length=length, alphabet=alphabet)
    except credentials.CredentialError as exc:
        raise AnsibleFilterError(f"derive_secret: {exc}") from None


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"derive_secret": derive_secret}
