# Copyright: (c) 2025, genai_stack team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: manage ComfyUI-Login's PASSWORD file without changing its token needlessly."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: comfyui_login_password
short_description: Manage ComfyUI-Login's PASSWORD file (bcrypt hash + user), keeping its token stable
version_added: "0.1.0"
description:
  - Manages the file C(<ComfyUI root>/login/PASSWORD) of the ComfyUI-Login custom node. Its first
    line is the bcrypt hash of the password, its second line the user name.
  - That hash B(is) ComfyUI-Login's API token (clients send C(Authorization Bearer <hash>) or
    C(?token=<hash>)). A new hash, even of the same password, has a new salt and so breaks every
    client. Like C(community.general.htpasswd), the module therefore verifies the password
    against the hash already in the file and keeps that hash while it still verifies; a new hash
    is written only when the file is missing, its first line is not a bcrypt hash, or the hash no
    longer verifies the password (the password changed).
  - When only the user name changes, the file is rewritten with the same hash (the token does
    not change).
  - The file is written atomically (a temporary file in the same directory, then a rename), so
    ComfyUI-Login never reads a partial file. It is created with mode 0600 by default.
  - ComfyUI-Login reads the file once, when ComfyUI starts; restart ComfyUI when this module
    reports RV(hash_changed) or RV(user_changed) (compare with a handler).
author:
  - genai_stack team (@myia)
attributes:
  check_mode:
    support: full
    description:
      - Reports whether the file would change and writes nothing.
      - When a new hash would be written, RV(token) is V(null) in check mode (the hash it would
        have does not exist yet); when the current hash is kept, RV(token) is that hash.
  diff_mode:
    support: full
    description:
      - Shows whether the hash and the user change, and the file's mode and owner. Never shows
        the hash or the password.
extends_documentation_fragment:
  - ansible.builtin.files
options:
  path:
    description:
      - The PASSWORD file, usually C(<ComfyUI root>/login/PASSWORD).
      - When O(path) is an existing directory (the C(login) directory), the file C(PASSWORD) in it
        is managed.
      - A symbolic link is followed; its target is written.
      - The directory must exist (ComfyUI-Login creates C(login/) on its first start; a role can
        create it with M(ansible.builtin.file)).
    type: path
    required: true
  password:
    description:
      - The password, at most 72 bytes in UTF-8 (the bcrypt limit). Required when
        O(state=present).
      - Derive it from the master secret with P(myia.genai_stack.derive_secret#filter).
    type: str
  username:
    description:
      - The user name of the login form (line 2), on one line, without leading or trailing white
        space.
    type: str
    default: admin
  rounds:
    description:
      - bcrypt cost factor of a B(new) hash, 4 to 31.
      - A hash already in the file that verifies the password is kept whatever its cost, so
        changing O(rounds) alone changes nothing (it would change the token).
    type: int
    default: 12
  state:
    description:
      - V(present) makes the file hold a hash of O(password) and O(username).
      - V(absent) removes the file. B(Warning), ComfyUI-Login without a PASSWORD file accepts an
        empty token and lets the first visitor choose the password; stop ComfyUI or remove the
        node as well.
    type: str
    choices: [present, absent]
    default: present
  mode:
    description:
      - Permissions of the file, as for M(ansible.builtin.file) (V('0600'), V(u=rw)).
      - Defaults to V('0600') (the hash is a bearer token). V(null) keeps the mode of an
        existing file and creates a new one 0600.
    type: raw
    default: "0600"
notes:
  - Needs the C(bcrypt) Python library on the target (the python3-bcrypt package on Debian,
    Ubuntu and Fedora, or C(pip install bcrypt)); any version from 3.2 on works.
  - Returns the token, a secret. Register the result with C(no_log=true) on the task, and pass
    the token on with C(no_log=true) too.
  - Ansible masks every occurrence of a C(no_log) value in a module's result. With a very short
    password, an occurrence of it inside the returned hash would be masked too; derived
    passwords (48 characters) never are.
  - ComfyUI-Login moves a C(PASSWORD) file found in the ComfyUI root over C(login/PASSWORD) when
    it starts; the module warns when such a file exists.
  - When ComfyUI runs in a container, bind-mount the C(login) directory (or the ComfyUI root),
    not the PASSWORD file alone; a rename on the host is not seen through a single-file bind
    mount.
seealso:
  - plugin: myia.genai_stack.derive_secret
    plugin_type: filter
  - plugin: myia.genai_stack.bcrypt_hash
    plugin_type: filter
  - module: myia.genai_stack.token_sync
  - module: community.general.htpasswd
"""

EXAMPLES = r"""
- name: Set the ComfyUI-Login password from the master secret, and get the API token
  myia.genai_stack.comfyui_login_password:
    path: /opt/genai/comfyui/ComfyUI/login/PASSWORD
    password: "{{ genai_master_secret | myia.genai_stack.derive_secret('comfyui-password') }}"
    username: admin
    owner: "1000"
    group: "1000"
  register: comfyui_login
  no_log: true
  notify: Restart comfyui

- name: Write the token into the clients' env files
  myia.genai_stack.token_sync:
    files:
      - path: /home/lab/notebooks/.env
        values:
          COMFYUI_TOKEN: "{{ comfyui_login.token }}"
  no_log: true
  when: comfyui_login.token is not none  # null in check mode when a new hash would be written

- name: Check for drift only
  myia.genai_stack.comfyui_login_password:
    path: /opt/genai/comfyui/ComfyUI/login
    password: "{{ comfyui_password }}"
  check_mode: true
  no_log: true
  register: drift
"""

RETURN = r"""
path:
  description: The file managed (symbolic links and a directory O(path) resolved).
  returned: always
  type: str
  sample: /opt/genai/comfyui/ComfyUI/login/PASSWORD
token:
  description:
    - The hash in the file, which is the ComfyUI-Login API token (C(Authorization Bearer <token>)
      or C(?token=<token>)). B(A secret.)
    - V(null) when O(state=absent), and in check mode when a new hash would be written.
  returned: always
  type: str
  sample: $2b$12$abcdefghijklmnopqrstuu6pcDJnLlBhWRo5hbxyKTbP0KyqmsLHGe
hash_changed:
  description: A new hash was (or, in check mode, would be) written, so the token changed.
  returned: always
  type: bool
  sample: false
user_changed:
  description: The user name line was (or would be) changed.
  returned: always
  type: bool
  sample: false
created:
  description: The file did not exist and was (or would be) created.
  returned: always
  type: bool
  sample: false
"""

import grp
import os
import pwd
import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.myia.genai_stack.plugins.module_utils import files
from ansible_collections.myia.genai_stack.plugins.module_utils.credentials import (
    CredentialError,
    MissingBcryptError,
    check_rounds,
    hash_password,
    import_bcrypt,
    is_bcrypt_hash,
    password_bytes,
    verify_password,
)

FILE_NAME = "PASSWORD"

ARGUMENT_SPEC = {
    "path": {"type": "path", "required": True},
    "password": {"type": "str", "no_log": True},
    "username": {"type": "str", "default": "admin"},
    "rounds": {"type": "int", "default": 12},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
    "mode": {"type": "raw", "default": "0600"},
}


def resolve_path(path: str) -> str:
    path = os.path.abspath(path)
    if os.path.isdir(path):
        path = os.path.join(path, FILE_NAME)
    return os.path.realpath(path)


def read_current(module: AnsibleModule, path: str) -> bytes | None:
    if not os.path.lexists(path):
        return None
    if not os.path.isfile(path):
        module.fail_json(msg=f"{path} exists and is not a regular file", path=path)
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as exc:
        module.fail_json(msg=f"cannot read {path}: {exc.strerror}", path=path)
    return None  # not reached


def write_atomic(module: AnsibleModule, path: str, data: bytes) -> None:
    """Write ``data`` to a 0600 temporary file beside ``path``, then rename it over ``path``."""
    try:
        files.write_atomic(
            module,
            path,
            data,
            prefix=f".{FILE_NAME}.",
            keep_mode=module.params["mode"] is None,
            unsafe_writes=module.params["unsafe_writes"],
        )
    except Exception as exc:  # TempFileError, or the plain Exception of atomic_move
        module.fail_json(msg=f"cannot write {path}: {exc}", path=path)


def describe_hash(current: bytes | None, hash_ok: bool, well_formed: bool) -> str:
    if current is None:
        return "(absent)"
    if hash_ok:
        return "(bcrypt hash that verifies the password)"
    if well_formed:
        return "(bcrypt hash that does not verify the password)"
    return "(not a bcrypt hash)"


def main() -> None:
    module = AnsibleModule(
        argument_spec=ARGUMENT_SPEC,
        add_file_common_args=True,
        supports_check_mode=True,
        required_if=[("state", "present", ("password",))],
    )
    params = module.params
    path = resolve_path(params["path"])
    result = {
        "changed": False,
        "path": path,
        "token": None,
        "hash_changed": False,
        "user_changed": False,
        "created": False,
    }

    if params["state"] == "absent":
        if os.path.lexists(path):
            if os.path.isdir(path):
                module.fail_json(msg=f"{path} is a directory", **result)
            result["changed"] = True
            if module._diff:
                result["diff"] = {
                    "before_header": path,
                    "after_header": path,
                    "before": {"state": "present"},
                    "after": {"state": "absent"},
                }
            if not module.check_mode:
                try:
                    os.unlink(path)
                except OSError as exc:
                    module.fail_json(msg=f"cannot remove {path}: {exc.strerror}", **result)
        module.exit_json(**result)

    username = params["username"]
    if not username or username != username.strip() or "\n" in username or "\r" in username:
        module.fail_json(
            msg="username must be non-empty, on one line, without leading or trailing white space",
            **result,
        )
    try:
        password_bytes(params["password"])
        check_rounds(params["rounds"])
        import_bcrypt()
    except MissingBcryptError as exc:
        if module.check_mode:  # a fresh host: the role installs bcrypt first in a real run
            module.warn(f"{exc}; in check mode PASSWORD is taken as one a real run writes")
            module.exit_json(**{**result, "changed": True, "token": None})
        module.fail_json(msg=f"{exc} (the target's Python is {sys.executable})", **result)
    except CredentialError as exc:
        module.fail_json(msg=str(exc), **result)

    for kind, name, lookup in (
        ("user", params["owner"], pwd.getpwnam),
        ("group", params["group"], grp.getgrnam),
    ):
        if name is not None and not str(name).isdigit():
            try:
                lookup(name)
            except KeyError:
                module.fail_json(msg=f"no {kind} named {name!r} on the target", **result)

    directory = os.path.dirname(path)
    if (
        not os.path.isdir(directory) and not module.check_mode
    ):  # check mode: a task before creates it
        module.fail_json(
            msg=f"directory {directory} does not exist: create it first (ComfyUI-Login makes "
            "<ComfyUI root>/login on its first start)",
            **result,
        )
    stale = os.path.join(os.path.dirname(directory), FILE_NAME)
    if os.path.basename(directory) == "login" and os.path.isfile(stale):
        module.warn(
            f"{stale} exists: ComfyUI-Login moves it over {path} when ComfyUI starts; remove it"
        )

    current = read_current(module, path)
    lines = current.split(b"\n") if current is not None else []
    first = lines[0].decode("utf-8", "replace") if lines else ""
    old_hash = first.strip()
    old_user = lines[1].decode("utf-8", "replace").strip() if len(lines) > 1 else None
    well_formed = is_bcrypt_hash(old_hash)
    hash_ok = well_formed and verify_password(params["password"], old_hash)
    in_sync = (
        hash_ok
        and first == old_hash  # ComfyUI-Login's form compares the raw first line
        and old_user == username
        and not any(line.strip() for line in lines[2:])
    )
    result["created"] = current is None
    result["hash_changed"] = not hash_ok
    result["user_changed"] = old_user != username
    diff = {"before_header": path, "after_header": path, "before": {}, "after": {}}
    file_args = module.load_file_common_arguments(params, path=path)
    if current is not None:  # before any write: the diff shows the file as it was
        result["changed"] = files.attributes_drift(module, file_args, diff)

    if in_sync:
        result["token"] = old_hash
    else:
        result["changed"] = True
        diff["before"].update(
            {
                "state": "absent" if current is None else "present",
                "hash": describe_hash(current, hash_ok, well_formed),
                # a file whose first line is not a hash may hold anything: show none of it
                "user": old_user if well_formed or current is None else "(not shown)",
            }
        )
        diff["after"].update(
            {
                "state": "present",
                "hash": "(unchanged)" if hash_ok else "(new bcrypt hash)",
                "user": username,
            }
        )
        if hash_ok:
            token = old_hash
        elif module.check_mode:
            token = None
        else:
            try:
                token = hash_password(params["password"], rounds=params["rounds"])
            except CredentialError as exc:
                module.fail_json(msg=str(exc), **result)
        result["token"] = token
        if not module.check_mode:
            write_atomic(module, path, f"{token}\n{username}\n".encode())

    if not module.check_mode and os.path.exists(path):
        module.set_fs_attributes_if_different(file_args, False)
    if module._diff and result["changed"]:
        result["diff"] = diff
    module.exit_json(**result)


if __name__ == "__main__":
    main()
