# Copyright: (c) 2025, genai_stack team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: set KEY=value pairs in many dotenv files, atomically, reporting drift."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: token_sync
short_description: Set secret KEY=value pairs in many dotenv files atomically, reporting drift
version_added: "0.1.0"
description:
  - Makes every listed dotenv file (the services' env files, the clients' C(.env) files such as
    the notebooks') hold the given values, so that one secret reaches all its consumers in one
    task and they cannot drift apart.
  - Only the assignments whose value differs are rewritten, in place (an C(export) prefix and a
    trailing comment are kept; a key assigned several times is set everywhere, so no duplicate
    can shadow the new value); missing keys are appended; every other line and comment is kept.
    Values are quoted the way docker compose and python-dotenv read them (see
    P(myia.genai_stack.to_dotenv#filter)); a bcrypt hash with C($) survives unexpanded.
  - Each file is written atomically, a temporary file in its directory renamed over it, so a
    reader never sees a partial file. A new file is created 0600 (never readable by others, even
    for a moment) and the requested O(mode), O(owner) and O(group) are applied.
  - Every file is read and checked (keys, values, directories) before any is written, so bad
    input or a missing directory fails the task with nothing changed.
  - A symbolic link is followed and its target is written (the link stays).
  - C(changed) is true only when a value, the file's existence, or its mode or owner changed.
author:
  - genai_stack team (@myia)
attributes:
  check_mode:
    support: full
    description:
      - A drift report - says per file which keys would change and whether it would be created,
        and writes nothing.
  diff_mode:
    support: full
    description:
      - Shows each changed file with every value replaced by C(***), changed and added keys
        marked, and mode or owner changes. Never shows a value. Comments are not shown either
        (they may hold old secrets).
options:
  files:
    description: The dotenv files and the values each must hold.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: The dotenv file.
        type: path
        required: true
      values:
        description:
          - The C(KEY=value) pairs to set. Keys are letters, digits and C(_), not starting with a
            digit. Values are strings, numbers, booleans (C(true)/C(false)) or V(null) (an empty
            value).
          - B(Every value is treated as a secret) (C(no_log)), and Ansible masks each one wherever
            it appears in the result. Keep short non-secret values (ports, user names) out of
            this module; they would mask the same text in paths of the result.
        type: dict
        required: true
      create:
        description:
          - Create the file when it does not exist (its directory must exist; in check mode a
            missing directory is taken as one an earlier task creates).
          - When V(false) and the file is missing, the file is skipped (reported with
            RV(files[].skipped)), not an error - for optional consumers.
        type: bool
        default: true
      mode:
        description: Mode of this file. Defaults to O(mode).
        type: raw
      owner:
        description: Owner of this file. Defaults to O(owner).
        type: str
      group:
        description: Group of this file. Defaults to O(group).
        type: str
  mode:
    description:
      - Default mode of the files, as for M(ansible.builtin.file) (V('0600'), V(u=rw,g=r)).
      - V(null) keeps the mode of existing files and creates new ones 0600.
    type: raw
    default: "0600"
  owner:
    description: Default owner of the files (name or uid). Unset keeps the owner of an existing file.
    type: str
  group:
    description: Default group of the files (name or gid). Unset keeps the group of an existing file.
    type: str
notes:
  - Runs on the target and needs only the Python standard library.
  - Run the task with C(no_log=true) as well; the values come from secrets.
  - Docker compose reads an env file when it creates a container; after a change, recreate the
    services that use it (for example with C(community.docker.docker_compose_v2) and
    C(recreate=always) for the services listed in RV(changed_files), or a handler).
  - A file bind-mounted alone into a running container keeps showing the old content after the
    rename; bind-mount its directory instead.
seealso:
  - plugin: myia.genai_stack.derive_secret
    plugin_type: filter
  - plugin: myia.genai_stack.to_dotenv
    plugin_type: filter
  - module: myia.genai_stack.comfyui_login_password
"""

EXAMPLES = r"""
- name: One secret, every consumer
  myia.genai_stack.token_sync:
    files:
      - path: /opt/genai/vllm-medium/.env
        values:
          VLLM_API_KEY: "{{ genai_master_secret | myia.genai_stack.derive_secret('vllm-api-key') }}"
      - path: /opt/genai/forge/.env
        values:
          WEB_TOKEN: "{{ genai_master_secret | myia.genai_stack.derive_secret('forge-web-token') }}"
          FORGE_API_PASSWORD: "{{ genai_master_secret | myia.genai_stack.derive_secret('forge-password') }}"
      - path: /home/lab/notebooks/.env
        create: false  # only where the user has one
        owner: lab
        group: lab
        values:
          OPENAI_API_KEY: "{{ genai_master_secret | myia.genai_stack.derive_secret('vllm-api-key') }}"
          COMFYUI_TOKEN: "{{ comfyui_login.token }}"
  register: synced
  no_log: true

- name: Show what changed (names only; safe to print)
  ansible.builtin.debug:
    msg: "{{ synced.files | selectattr('changed') | map(attribute='keys_changed') | list }}"

- name: Drift report, nothing written
  myia.genai_stack.token_sync:
    files: "{{ genai_token_files }}"
  check_mode: true
  diff: true
  no_log: true
  register: drift
"""

RETURN = r"""
files:
  description: One result per entry of O(files), in order. Holds no value.
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The path, as given.
      type: str
      sample: /opt/genai/forge/.env
    target:
      description: The file written (the path with symbolic links resolved).
      type: str
      sample: /opt/genai/forge/.env
    changed:
      description: Whether this file changed (or would, in check mode), values, mode or owner.
      type: bool
      sample: true
    keys_changed:
      description: The keys whose value changed or that were added, in the order given.
      type: list
      elements: str
      sample: [WEB_TOKEN]
    created:
      description: The file did not exist and was (or would be) created.
      type: bool
      sample: false
    skipped:
      description: The file is missing and O(files[].create) is false; it was left alone.
      type: bool
      sample: false
changed_files:
  description: The paths (as given) of the files that changed, for restarting their consumers.
  returned: always
  type: list
  elements: str
  sample: [/opt/genai/forge/.env]
"""

import grp
import os
import pwd

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.myia.genai_stack.plugins.module_utils import dotenv, files

MASK = "***"

FILE_SPEC = {
    "path": {"type": "path", "required": True},
    "values": {"type": "dict", "required": True, "no_log": True},
    "create": {"type": "bool", "default": True},
    "mode": {"type": "raw"},
    "owner": {"type": "str"},
    "group": {"type": "str"},
}

ARGUMENT_SPEC = {
    "files": {"type": "list", "elements": "dict", "required": True, "options": FILE_SPEC},
    "mode": {"type": "raw", "default": "0600"},
    "owner": {"type": "str"},
    "group": {"type": "str"},
}


class Plan:
    """What one entry of ``files`` needs."""

    def __init__(self, entry: dict, defaults: dict) -> None:
        self.path = os.path.abspath(os.path.expanduser(entry["path"]))
        self.target = os.path.realpath(self.path)
        self.values = entry["values"]
        self.create = entry["create"]
        self.attrs = {
            key: entry[key] if entry[key] is not None else defaults[key]
            for key in ("mode", "owner", "group")
        }
        self.before = ""  # text before this entry
        self.after = ""  # text after this entry
        self.existed = False  # the file existed before this entry
        self.keys_changed: list[str] = []
        self.skipped = False
        self.changed = False
        self.attrs_drift = False  # mode, owner or group differ from the request
        self.attr_diff: dict = {"before": {}, "after": {}}


def fail(module: AnsibleModule, msg: str, results: list[dict] | None = None) -> None:
    results = results or []
    module.fail_json(
        msg=msg,
        changed=any(r["changed"] for r in results),
        files=results,
        changed_files=[r["path"] for r in results if r["changed"]],
    )


def check_values(module: AnsibleModule, plan: Plan) -> None:
    for key, value in plan.values.items():
        try:
            dotenv.check_key(key)
        except ValueError as exc:
            fail(module, f"{plan.path}: {exc}")
        if value is not None and not isinstance(value, (str, int, float, bool)):
            fail(
                module,
                f"{plan.path}: the value of {key} must be a string, number, boolean or null, "
                f"not a {type(value).__name__}",
            )


def check_owner_group(module: AnsibleModule, plan: Plan) -> None:
    """Fail before any write when the owner or group does not exist."""
    for kind, name, lookup in (
        ("user", plan.attrs["owner"], pwd.getpwnam),
        ("group", plan.attrs["group"], grp.getgrnam),
    ):
        if name is None or str(name).isdigit():
            continue
        try:
            lookup(name)
        except KeyError:
            fail(module, f"{plan.path}: no {kind} named {name!r} on the target")


def read_text(module: AnsibleModule, plan: Plan) -> str | None:
    """The current text of the target, or None when it does not exist."""
    target = plan.target
    if not os.path.lexists(target):
        return None
    if not os.path.exists(target):
        fail(module, f"{plan.path}: {target} is a symbolic link loop or a dangling link")
    if not os.path.isfile(target):
        fail(module, f"{plan.path}: {target} exists and is not a regular file")
    try:
        with open(target, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        fail(module, f"cannot read {target}: {exc.strerror}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        fail(module, f"{target} is not UTF-8 text; is it a dotenv file?")
    return None  # not reached


def check_writable(module: AnsibleModule, plan: Plan) -> None:
    directory = os.path.dirname(plan.target)
    if not os.path.isdir(directory):
        if module.check_mode:  # on a fresh host, a task before this one creates it for real
            return
        fail(module, f"cannot write {plan.path}: directory {directory} does not exist")
    if not os.access(directory, os.W_OK | os.X_OK):
        fail(module, f"cannot write {plan.path}: directory {directory} is not writable")


def write_atomic(module: AnsibleModule, plan: Plan, text: str, results: list[dict]) -> None:
    """Write ``text`` to a 0600 temporary file beside the target, then rename it over."""
    try:
        files.write_atomic(
            module, plan.target, text.encode("utf-8"), keep_mode=plan.attrs["mode"] is None
        )
    except files.TempFileError as exc:
        fail(module, f"cannot write {plan.path}: in {exc.directory}: {exc.strerror}", results)
    except Exception as exc:  # atomic_move raises plain Exception
        fail(module, f"cannot write {plan.path}: {exc}", results)


def masked(text: str, marks: dict[str, str], attrs: dict) -> str:
    """The keys of ``text`` with every value shown as ***; no comment, no value."""
    lines = [f"{key}={MASK}{marks.get(key, '')}" for key in dotenv.parse(text)]
    lines.extend(f"# {name}: {value}" for name, value in sorted(attrs.items()))
    return "\n".join(lines) + "\n" if lines else ""


def file_args(module: AnsibleModule, plan: Plan) -> dict:
    return module.load_file_common_arguments(dict(plan.attrs), path=plan.target)


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    defaults = {key: module.params[key] for key in ("mode", "owner", "group")}
    plans = [Plan(entry, defaults) for entry in module.params["files"]]

    # 1. read and check everything before writing anything; entries that share a file (or a
    #    link and its target) apply in order, each seeing the previous ones (in check mode too)
    texts: dict[str, str | None] = {}
    originals: dict[str, str | None] = {}
    for plan in plans:
        check_values(module, plan)
        check_owner_group(module, plan)
        if plan.target not in texts:
            texts[plan.target] = originals[plan.target] = read_text(module, plan)
        current = texts[plan.target]
        plan.existed = current is not None
        if current is None and not plan.create:
            plan.skipped = True
            continue
        plan.before = current or ""
        plan.after, plan.keys_changed = dotenv.update(plan.before, plan.values)
        if plan.keys_changed or current is None:
            check_writable(module, plan)
        if os.path.exists(plan.target):  # before any write: the diff shows the file as it was
            plan.attrs_drift = files.attributes_drift(
                module, file_args(module, plan), plan.attr_diff
            )
        texts[plan.target] = plan.after

    # 2. write each file that changes once, with its final text; then mode and owner
    results: list[dict] = []
    done: set[str] = set()
    for plan in plans:
        if not plan.skipped and plan.target not in done:
            done.add(plan.target)
            final = texts[plan.target]
            if (
                final is not None
                and (originals[plan.target] is None or final != originals[plan.target])
                and not module.check_mode
            ):
                write_atomic(module, plan, final, results)
        if not plan.skipped and not module.check_mode:
            module.set_fs_attributes_if_different(file_args(module, plan), False)
        plan.changed = bool(plan.keys_changed) or plan.attrs_drift
        plan.changed = plan.changed or (not plan.existed and not plan.skipped)
        results.append(
            {
                "path": plan.path,
                "target": plan.target,
                "changed": plan.changed,
                "keys_changed": plan.keys_changed,
                "created": not plan.existed and not plan.skipped,
                "skipped": plan.skipped,
            }
        )

    output: dict = {
        "changed": any(r["changed"] for r in results),
        "files": results,
        "changed_files": [r["path"] for r in results if r["changed"]],
    }
    if module._diff:
        output["diff"] = [diff_of(plan) for plan in plans if plan.changed]
    module.exit_json(**output)


def diff_of(plan: Plan) -> dict:
    current = dotenv.parse(plan.before)
    marks = {key: " (changed)" if key in current else " (added)" for key in plan.keys_changed}
    header = plan.path if plan.path == plan.target else f"{plan.path} -> {plan.target}"
    return {
        "before_header": header if plan.existed else f"{header} (absent)",
        "after_header": header,
        "before": masked(plan.before, {}, plan.attr_diff["before"]) if plan.existed else "",
        "after": masked(plan.after, marks, plan.attr_diff["after"]),
    }


if __name__ == "__main__":
    main()
