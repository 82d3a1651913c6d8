from __future__ import annotations

DOCUMENTATION = r"""
name: bcrypt_hash
short_description: bcrypt-hash a password (C($2b$)), with the bcrypt library
version_added: 0.1.0
description:
  - Returns the bcrypt hash of the password, C($2b$<cost>$<22-char salt><31-char digest>)
    (60 characters), computed by the C(bcrypt) Python library on the controller.
    C(passlib), which C(password_hash) uses, is unmaintained and breaks with bcrypt 4.1 and
    later; this filter does not need it.
  - Without O(salt) a random salt is drawn, so every call returns a different hash. Do not write
    such a hash on every run (ComfyUI-Login's API token B(is) its hash, so a new salt breaks every
    client); use the M(myia.genai_stack.comfyui_login_password) module, which keeps a hash that
    still verifies the password, or pass a fixed O(salt).
  - bcrypt uses at most 72 bytes of a password; a longer one (in UTF-8) is refused with an error
    naming the limit instead of being silently truncated. An empty password, or one holding a NUL
    character, is refused too. Error messages never contain the password.
options:
  _input:
    description: The password.
    type: str
    required: true
  rounds:
    description:
      - The cost factor (log2 of the iterations), 4 to 31. Each step doubles the time.
      - Defaults to 12, or to the cost found in O(salt) when that is a C($2b$NN$) setting.
    type: int
    default: 12
  salt:
    description:
      - A fixed salt, for a reproducible hash (tests, or a hash derived from the master secret).
      - Either 22 characters of C(./A-Za-z0-9) whose last one is one of C(.), C(O), C(e), C(u)
        (128 bits, the last character carries only 2 of them), used with O(rounds);
      - or a C($2a$), C($2b$) or C($2y$) setting (C($2b$12$) + 22 characters) or a whole hash,
        whose cost and salt are reused. Hashing a password with its own hash as the salt gives
        that hash back exactly when the password matches.
      - The result always starts with C($2b$).
    type: str
notes:
  - Needs the C(bcrypt) Python library on the controller (C(pip install bcrypt), or the
    python3-bcrypt package); any version from 3.2 on works.
  - Run the task with C(no_log=true) when the password is a secret.
seealso:
  - module: myia.genai_stack.comfyui_login_password
  - plugin: myia.genai_stack.derive_secret
    plugin_type: filter
"""

EXAMPLES = r"""
- name: Hash the ComfyUI password derived from the master secret
  ansible.builtin.set_fact:
    comfyui_password_hash: >-
      {{ genai_master_secret | myia.genai_stack.derive_secret('comfyui-password')
         | myia.genai_stack.bcrypt_hash }}
  no_log: true

- name: A reproducible hash (the salt is not a secret, the password is)
  ansible.builtin.debug:
    msg: "{{ 'hunter2-but-longer' | myia.genai_stack.bcrypt_hash(rounds=4, salt='abcdefghijklmnopqrstuu') }}"

- name: Does this hash still verify the password? (same hash back = yes)
  ansible.builtin.assert:
    that: (password | myia.genai_stack.bcrypt_hash(salt=stored_hash)) == stored_hash
  no_log: true
"""

RETURN = r"""
_value:
  description: The bcrypt hash, C($2b$NN$...), 60 characters.
  type: str
  sample: $2b$12$abcdefghijklmnopqrstuu6pcDJnLlBhWRo5hbxyKTbP0KyqmsLHGe
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.module_utils import credentials

_UNSET = object()


def bcrypt_hash(password: object, rounds: object = _UNSET, salt: str | None = None) -> str:
    try:
        return credentials.hash_password(
            password, rounds=None if rounds is _UNSET else rounds, salt=salt
        )
    except (credentials.CredentialError, credentials.MissingBcryptError) as exc:
        raise AnsibleFilterError(f"bcrypt_hash: {exc}") from None


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {"bcrypt_hash": bcrypt_hash}
