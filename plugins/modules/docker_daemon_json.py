# Copyright: (c) 2025, genai_stack team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: merge runtimes and options into docker's daemon.json, keeping everything else."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: docker_daemon_json
short_description: Merge runtimes and options into docker's daemon.json, keeping every other key
version_added: "0.1.0"
description:
  - Reads the daemon configuration file of dockerd (C(/etc/docker/daemon.json)), merges the
    given O(runtimes) (such as C(nvidia) → C(nvidia-container-runtime)), the C(default-runtime)
    and the O(options) into it, and writes it back only when the result differs. Every key the
    module is not asked about is kept as it is.
  - This is the merge C(nvidia-ctk runtime configure --runtime=docker) does, declarative and
    idempotent, with a backup, check mode and diff. It never overwrites the file wholesale.
  - O(options) is merged deeply, objects key by key; any other value, lists included (such as
    C(registry-mirrors)), replaces the value in the file.
  - A file that is not valid JSON, whose top level is not an object, or that holds a key twice,
    is never touched; the module fails and says where the file is wrong. An empty file counts
    as C({}).
  - The file keeps its indentation (two spaces when new) and its key order; new keys come
    last. It is replaced in one rename (a temporary file beside it, synced to disk first),
    keeping its mode and owner. A new file is created with mode C(0644).
  - The module does not restart dockerd; notify a handler when RV(ignore:changed) is true.
author:
  - genai_stack team (@myia)
attributes:
  check_mode:
    support: full
    description: Reports what would change (with the diff) and writes nothing.
  diff_mode:
    support: full
    description: Shows the file's text before and after.
options:
  path:
    description: Path of the daemon configuration file.
    type: path
    default: /etc/docker/daemon.json
  runtimes:
    description:
      - OCI runtimes to declare under C(runtimes), merged into an existing entry of that name.
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: Runtime name, as used by C(docker run --runtime) and C(default-runtime).
        type: str
        required: true
      path:
        description: Runtime binary (name on dockerd's PATH or absolute path). Required when O(runtimes[].state=present).
        type: str
      args:
        description: Arguments passed to the runtime.
        type: list
        elements: str
        default: []
      default:
        description:
          - V(true) makes this runtime C(default-runtime).
          - V(false) removes C(default-runtime) when it names this runtime (dockerd falls back
            to C(runc)); a default naming another runtime is kept.
          - Unset leaves C(default-runtime) as it is.
        type: bool
      state:
        description:
          - V(absent) removes the runtime, and C(default-runtime) when it names it.
        type: str
        choices: [present, absent]
        default: present
  options:
    description:
      - Other daemon options, merged deeply into the file (C(log-opts), C(features), ...).
      - They are merged before O(runtimes), which win over a C(runtimes) or C(default-runtime)
        given here.
    type: dict
    default: {}
  backup:
    description:
      - Keep a copy of the previous file, with a timestamp in its name, when the file changes.
    type: bool
    default: false
  create:
    description:
      - Create the file (and its directory) when missing. With V(false) a missing file is left
        missing and nothing changes.
    type: bool
    default: true
notes:
  - dockerd reads the file only when it starts; restart it (or send C(SIGHUP) for the options
    it reloads, runtimes included) after a change.
seealso:
  - name: dockerd configuration file
    description: The keys of daemon.json.
    link: https://docs.docker.com/reference/cli/dockerd/#daemon-configuration-file
  - name: NVIDIA Container Toolkit, configuring docker
    description: What C(nvidia-ctk runtime configure) writes.
    link: https://docs.nvidia.com/datacenter/cloud-native/container-toolkit/latest/install-guide.html#configuring-docker
"""

EXAMPLES = r"""
- name: Declare the NVIDIA runtime, keeping every other key of daemon.json
  myia.genai_stack.docker_daemon_json:
    runtimes:
      - name: nvidia
        path: nvidia-container-runtime
    backup: true
  notify: Restart docker

- name: Make it the default runtime and add log rotation
  myia.genai_stack.docker_daemon_json:
    runtimes:
      - name: nvidia
        path: nvidia-container-runtime
        default: true
    options:
      log-driver: json-file
      log-opts: {max-size: 10m, max-file: "3"}
  notify: Restart docker

- name: Stop making nvidia the default (keeps the runtime declared)
  myia.genai_stack.docker_daemon_json:
    runtimes:
      - name: nvidia
        path: nvidia-container-runtime
        default: false

- name: Remove the NVIDIA runtime
  myia.genai_stack.docker_daemon_json:
    runtimes:
      - name: nvidia
        state: absent
"""

RETURN = r"""
path:
  description: The file.
  returned: always
  type: str
  sample: /etc/docker/daemon.json
config:
  description: The configuration after the merge (what the file holds, or would hold in check mode).
  returned: always
  type: dict
  sample:
    log-driver: json-file
    runtimes:
      nvidia: {path: nvidia-container-runtime, args: []}
    default-runtime: nvidia
backup_file:
  description: The copy of the previous file.
  returned: when O(backup=true), the file existed and changed (not in check mode)
  type: str
  sample: /etc/docker/daemon.json.12345.2025-01-31@10:00:00~
created:
  description: Whether the file did not exist before.
  returned: always
  type: bool
  sample: false
"""

import copy
import json
import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.myia.genai_stack.plugins.module_utils import files

RUNTIME_SPEC = {
    "name": {"type": "str", "required": True},
    "path": {"type": "str"},
    "args": {"type": "list", "elements": "str", "default": []},
    "default": {"type": "bool"},
    "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
}

ARGUMENT_SPEC = {
    "path": {"type": "path", "default": "/etc/docker/daemon.json"},
    "runtimes": {
        "type": "list",
        "elements": "dict",
        "default": [],
        "options": RUNTIME_SPEC,
        "required_if": [("state", "present", ("path",))],
    },
    "options": {"type": "dict", "default": {}},
    "backup": {"type": "bool", "default": False},
    "create": {"type": "bool", "default": True},
}


class DaemonJsonError(ValueError):
    """The file cannot be merged safely."""


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise DaemonJsonError(f"key {key!r} appears twice")
        result[key] = value
    return result


def parse(text: str, path: str = "daemon.json") -> dict[str, Any]:
    """The file's configuration; ``{}`` for an empty file. Raises DaemonJsonError."""
    if not text.strip():
        return {}
    try:
        data = json.loads(text, object_pairs_hook=_no_duplicates)
    except json.JSONDecodeError as exc:
        raise DaemonJsonError(
            f"{path} is not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from exc
    except DaemonJsonError as exc:
        raise DaemonJsonError(f"{path} is ambiguous: {exc}") from exc
    if not isinstance(data, dict):
        raise DaemonJsonError(f"{path} must hold a JSON object, not {type(data).__name__}")
    return data


def detect_indent(text: str) -> str | int:
    """The indentation of the file's first indented line (2 when there is none)."""
    for line in text.splitlines()[1:]:
        stripped = line.lstrip(" \t")
        if stripped and len(stripped) < len(line):
            prefix = line[: len(line) - len(stripped)]
            return "\t" if prefix.startswith("\t") else len(prefix)
    return 2


def render(config: dict[str, Any], indent: str | int = 2) -> str:
    return json.dumps(config, indent=indent, ensure_ascii=False) + "\n"


def deep_merge(base: dict[str, Any], overlay: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``overlay`` merged in: objects key by key, anything else replaced."""
    merged = copy.deepcopy(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def merge(
    current: dict[str, Any],
    runtimes: list[dict[str, Any]] | None = None,
    options: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The configuration with ``options`` then ``runtimes`` merged in (``current`` is not changed)."""
    config = deep_merge(current, options or {})
    if not runtimes:
        return config
    declared = config.get("runtimes", {})
    if not isinstance(declared, dict):
        raise DaemonJsonError(f"'runtimes' must be an object, not {type(declared).__name__}")
    declared = dict(declared)
    for runtime in runtimes:
        name = runtime["name"]
        if runtime.get("state", "present") == "absent":
            declared.pop(name, None)
            if config.get("default-runtime") == name:
                del config["default-runtime"]
            continue
        entry = declared.get(name)
        wanted = {"path": runtime["path"], "args": list(runtime.get("args") or [])}
        declared[name] = deep_merge(entry if isinstance(entry, dict) else {}, wanted)
        if runtime.get("default") is True:
            config["default-runtime"] = name
        elif runtime.get("default") is False and config.get("default-runtime") == name:
            del config["default-runtime"]
    if declared or "runtimes" in config:
        config["runtimes"] = declared
    return config


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    path = params["path"]

    exists = os.path.exists(path)
    if exists and not os.path.isfile(path):
        module.fail_json(msg=f"{path} exists and is not a regular file; refusing to change it")
    before_text = ""
    if exists:
        try:
            with open(path, encoding="utf-8") as handle:
                before_text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            module.fail_json(msg=f"cannot read {path}: {exc}")
    elif not params["create"]:
        module.exit_json(changed=False, path=path, config={}, created=False)

    try:
        current = parse(before_text, path)
        config = merge(current, params["runtimes"], params["options"])
    except DaemonJsonError as exc:
        module.fail_json(
            msg=f"{exc}; refusing to change it. Fix or remove it by hand: dockerd does not "
            "start with an invalid configuration file either.",
            path=path,
        )

    changed = config != current
    after_text = render(config, detect_indent(before_text)) if changed else before_text
    result: dict[str, Any] = {
        "changed": changed,
        "path": path,
        "config": config,
        "created": changed and not exists,
    }
    if module._diff:
        result["diff"] = {
            "before": before_text,
            "after": after_text,
            "before_header": path if exists else f"{path} (absent)",
            "after_header": path,
        }

    if changed and not module.check_mode:
        directory = os.path.dirname(path)
        if directory and not os.path.isdir(directory):
            os.makedirs(directory, mode=0o755)
        if exists and params["backup"]:
            result["backup_file"] = module.backup_local(path)
        try:
            # one rename; the file keeps its mode and owner, a new one is 0644
            files.write_atomic(module, path, after_text, mode=0o644, keep_mode=True)
        except Exception as exc:  # TempFileError, OSError, atomic_move's plain Exception
            module.fail_json(msg=f"cannot write {path}: {exc}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
