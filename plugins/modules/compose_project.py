# Copyright: (c) 2026, genai_stack team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: write a compose project's files in one call, keep and restore its snapshot."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: compose_project
short_description: Write a compose project's directories, env files and compose file in one call
version_added: "0.2.0"
description:
  - The file side of the role C(myia.genai_stack.compose_rollout), the compose engine of the
    service roles. One call replaces a task per directory and per file.
  - V(present) creates the O(directories), then writes the O(env_files) and the O(compose) file,
    each only when its content, mode or owner differs, and atomically (a temporary file in the
    same directory, synced to disk, renamed). The compose file is checked with
    C(docker compose config --quiet) before it replaces the old one; a file docker refuses is
    never written.
  - V(snapshot) copies the project's files (those matching O(patterns)), with their mode and
    owner, into O(snapshot_dir) (mode C(0700)) and removes the snapshot files no longer deployed,
    so that the snapshot is exactly the deployed version. Files compare byte for byte, so that
    whatever the snapshot held, a damaged file included, is replaced. Last, it writes
    C(SHA256SUMS) there (mode C(0600)), the SHA-256 of each file as C(sha256sum) writes them
    (C(sha256sum -c SHA256SUMS) in O(snapshot_dir) checks them by hand). C(SHA256SUMS) is never
    a project file.
  - V(restored) first checks every file of the snapshot, and puts nothing back when one fails.
    Each must be readable, C(compose.yaml) and C(*.env) UTF-8 text, and each must match its
    SHA-256 in C(SHA256SUMS) (a file listed there must be there, a file there must be listed).
    A snapshot without C(SHA256SUMS) (kept by an earlier release of the collection) is checked
    by content only, its C(compose.yaml) with C(docker compose config --quiet) in
    O(snapshot_dir) (see O(validate)). A snapshot that fails is refused; the task fails, naming
    each such file and the snapshot directory, and no file of O(project_dir) changes. The next
    V(snapshot), once the project's files are proven healthy again, replaces it.
  - Then V(restored) puts the snapshot's files back, atomically and with their mode and owner,
    and removes the project files the snapshot did not hold. Without a snapshot (no file and no
    C(SHA256SUMS)) it changes nothing and returns RV(restored=false).
  - The content of O(env_files) is never logged nor shown; their diff lists the variable names of
    each C(KEY=value) line, a changed value marked, never a value.
author:
  - genai_stack team (@myia)
attributes:
  check_mode:
    support: full
    description: Reports what would change (with the diff) and writes nothing.
  diff_mode:
    support: full
    description: The compose file's text before and after; env files by variable name only.
options:
  project_dir:
    description: The project directory, where O(env_files) and C(compose.yaml) are written.
    type: path
    required: true
  state:
    description: What to do, see the description.
    type: str
    choices: [present, snapshot, restored]
    default: present
  mode:
    description: Mode of O(project_dir) with O(state=present).
    type: raw
    default: "0750"
  directories:
    description:
      - Directories to create (with their parents) before the files, with O(state=present), as
        path to mode, parents first.
    type: dict
    default: {}
  owner:
    description: Owner of the O(directories) (name or uid); unset keeps the current one.
    type: str
  group:
    description: Group of the O(directories) (name or gid); unset keeps the current one.
    type: str
  env_files:
    description:
      - Env files written into O(project_dir) with O(state=present), mode C(0600), as file name to
        whole content. The contents are never logged; their diff shows variable names only.
    type: dict
    default: {}
  secret_files:
    description:
      - Files read by the containers themselves (a credential a service reads from a file rather
        than from its command line), written into O(project_dir) with O(state=present), mode
        C(0600), owned by O(secret_files_owner), as file name to whole content. Never logged nor
        shown in a diff.
    type: dict
    default: {}
  secret_files_owner:
    description: Owner and group (a uid, the user the containers run as) of the O(secret_files).
    type: str
  compose:
    description:
      - Content of C(compose.yaml), with O(state=present). Unset leaves the compose file alone.
    type: str
  validate:
    description:
      - Check a new compose file with C(docker compose config --quiet) first.
      - With O(state=restored), the C(compose.yaml) of a snapshot without C(SHA256SUMS) too.
    type: bool
    default: true
  snapshot_dir:
    description:
      - Where the snapshot is kept; required with O(state=snapshot) and O(state=restored).
      - With O(state=present), RV(snapshot_current) says whether it already holds the project's
        files and their C(SHA256SUMS).
    type: path
  report_ready:
    description:
      - With O(state=present), say in RV(ready) whether nothing was written and every service of
        the compose file has a running container, healthy where it has a health check (what
        C(docker compose up --wait) would leave as it is). Reads C(docker compose ps).
    type: bool
    default: false
  patterns:
    description: The project's files that make a version (shell patterns of file names).
    type: list
    elements: str
    default: [compose.yaml, "*.env"]
"""

EXAMPLES = r"""
- name: Write the project (directories, env files, compose file)
  myia.genai_stack.compose_project:
    project_dir: /opt/genai/vllm
    directories:
      /opt/genai/hf-cache: "0755"
    env_files:
      qwen3-micro.env: "VLLM_API_KEY={{ key }}\n"
    compose: "{{ lookup('ansible.builtin.template', 'compose.yaml.j2') }}"

- name: Keep the deployed version
  myia.genai_stack.compose_project:
    project_dir: /opt/genai/vllm
    state: snapshot
    snapshot_dir: /opt/genai/vllm/.previous

- name: Put the kept version back
  myia.genai_stack.compose_project:
    project_dir: /opt/genai/vllm
    state: restored
    snapshot_dir: /opt/genai/vllm/.previous
  register: back
"""

RETURN = r"""
written:
  description: Names of the files (in O(project_dir)) written, or that would be in check mode.
  returned: state=present
  type: list
  elements: str
  sample: [qwen3-micro.env, compose.yaml]
created_directories:
  description: Directories that did not exist (or would not, in check mode) before the call.
  returned: state=present
  type: list
  elements: str
snapshot_current:
  description:
    - Nothing was written and O(snapshot_dir) holds exactly the project's files (bytes and mode)
      and their current C(SHA256SUMS). False for a snapshot with a damaged file or without
      checksums, which V(snapshot) then replaces.
  returned: state=present and snapshot_dir given
  type: bool
ready:
  description: Nothing was written and every service runs, healthy where it has a health check.
  returned: state=present and report_ready=true
  type: bool
kept:
  description: File names now in the snapshot (state=snapshot) or put back (state=restored).
  returned: state=snapshot or state=restored
  type: list
  elements: str
removed:
  description: File names removed from the snapshot or the project.
  returned: state=snapshot or state=restored
  type: list
  elements: str
restored:
  description:
    - Whether a snapshot was there and put back. False too, the task failing, when the snapshot
      cannot be trusted; C(msg) then names each file that failed its check.
  returned: state=restored
  type: bool
"""

import fnmatch
import hashlib
import json
import os
import re
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.myia.genai_stack.plugins.module_utils import files

COMPOSE = "compose.yaml"
# the checksums of a snapshot's files, beside them (sha256sum's format: `sha256sum -c` reads it)
MANIFEST = "SHA256SUMS"
# the files that must be UTF-8 text (the module writes every file it is given as UTF-8)
TEXT = (COMPOSE, "*.env")


def file_args(
    path: str, mode: str | None, owner: str | None = None, group: str | None = None
) -> dict[str, Any]:
    return {
        "path": path,
        "mode": mode,
        "owner": owner,
        "group": group,
        "secontext": [None, None, None],
        "attributes": None,
    }


def octal(mode: Any) -> str:
    """A mode as given in YAML: "0755", or 0755 unquoted (which reaches the module as 493)."""
    return format(mode, "04o") if isinstance(mode, int) else str(mode)


def read(path: str) -> bytes | None:
    """A file's bytes, None when there is no file; never decoded (a file may hold anything).

    Any other OSError (unreadable, a directory) is raised."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def shown(data: bytes | None) -> str | None:
    """A file's bytes as a diff shows them: UTF-8, any byte that is not as U+FFFD."""
    return None if data is None else data.decode("utf-8", errors="replace")


def matches(name: str, patterns: list[str] | tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatch(name, p) for p in patterns)


def manifest(data: dict[str, bytes]) -> bytes:
    """The SHA256SUMS of files, by name: `<sha256>  <name>` lines, as sha256sum writes them."""
    return "".join(
        f"{hashlib.sha256(content).hexdigest()}  {name}\n" for name, content in sorted(data.items())
    ).encode("utf-8")


def parse_manifest(data: bytes) -> dict[str, str] | None:
    """The SHA-256 of each file name of a SHA256SUMS; None when it is not one."""
    try:
        lines = data.decode("utf-8").splitlines()
    except UnicodeDecodeError:
        return None
    sums = {}
    for line in lines:
        found = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line)
        if found is None:
            return None
        sums[found[2]] = found[1]
    return sums


def masked(text: str | None, other: str | None) -> str:
    """A dotenv text shown by variable name: a value that differs from `other`'s is marked."""
    if text is None:
        return ""

    def values(t: str | None) -> dict[str, str]:
        pairs = (
            line.split("=", 1)
            for line in (t or "").splitlines()
            if "=" in line and not line.startswith("#")
        )
        return dict(pairs)

    mine, theirs = values(text), values(other)
    lines = []
    for line in text.splitlines():
        if line.startswith("#") or "=" not in line:
            lines.append(line)
            continue
        key = line.split("=", 1)[0]
        lines.append(
            f"{key}=*** (changed)" if key in theirs and theirs[key] != mine[key] else f"{key}=***"
        )
    return "\n".join(lines) + "\n"


def project_files(directory: str, patterns: list[str]) -> list[str]:
    if not os.path.isdir(directory):
        return []
    return sorted(
        name
        for name in os.listdir(directory)
        if name != MANIFEST
        and os.path.isfile(os.path.join(directory, name))
        and matches(name, patterns)
    )


class Project:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.params = module.params
        self.dir: str = module.params["project_dir"]
        self.changed = False
        self.diff: list[dict[str, str]] = []

    def attrs(self, args: dict[str, Any]) -> None:
        """Set mode/owner/group; check mode only reports them."""
        if os.path.exists(args["path"]):
            diff: dict[str, Any] = {
                "before": {"path": args["path"]},
                "after": {"path": args["path"]},
            }
            self.changed = (
                self.module.set_fs_attributes_if_different(args, False, diff) or self.changed
            )

    def directory(
        self, path: str, mode: str, owner: str | None = None, group: str | None = None
    ) -> bool:
        created = not os.path.isdir(path)
        if created:
            self.changed = True
            self.diff.append(
                {
                    "before_header": path,
                    "before": "(absent)\n",
                    "after_header": path,
                    "after": "(directory)\n",
                }
            )
            if not self.module.check_mode:
                os.makedirs(path, exist_ok=True)
        self.attrs(file_args(path, mode, owner, group))
        return created

    def write(
        self, name: str, content: str, mode: str, kind: str, owner: str | None = None
    ) -> bool:
        """Write one file; ``kind`` says how its diff is shown: ``text`` in full, ``env`` by
        variable name, ``secret`` (a credential file) not at all."""
        path = os.path.join(self.dir, name)
        try:
            data = read(path)
        except OSError:
            data = None  # unreadable: written again (or the write says why it cannot be)
        # bytes compared: a file that is not UTF-8 (damaged, written by hand) is simply different
        differs = data != content.encode("utf-8")
        before = shown(data)
        if differs:
            self.changed = True
            if kind == "secret":
                self.diff.append({
                    "before_header": path, "before": "(secret)\n" if before is not None else "",
                    "after_header": path, "after": "(secret, changed)\n",
                })  # fmt: skip
            elif kind == "env":
                self.diff.append({
                    "before_header": path, "before": masked(before, None),
                    "after_header": path, "after": masked(content, before),
                })  # fmt: skip
            else:
                self.diff.append(
                    {
                        "before_header": path,
                        "before": before or "",
                        "after_header": path,
                        "after": content,
                    }
                )
            if not self.module.check_mode:
                self.replace(
                    path, content, int(mode, 8), validate=kind == "text" and self.params["validate"]
                )
        self.attrs(file_args(path, mode, owner, owner))
        return differs

    def replace(
        self,
        path: str,
        data: str | bytes,
        mode: int,
        validate: bool = False,
        owner: int | None = None,
        group: int | None = None,
    ) -> None:
        """Write ``path`` in one rename; with ``validate``, a compose file docker refuses is not."""

        def check(tmp: str) -> None:
            rc, out, err = self.module.run_command(
                ["docker", "compose", "-f", tmp, "config", "--quiet"]
            )
            if rc != 0:
                self.module.fail_json(
                    msg=f"docker compose refuses the new {path}, kept the old one: {err.strip() or out.strip()}"
                )

        try:
            files.write_atomic(
                self.module,
                path,
                data,
                mode=mode,
                owner=owner,
                group=group,
                validate=check if validate else None,
            )
        except Exception as exc:  # TempFileError, OSError, atomic_move's plain Exception
            self.module.fail_json(msg=f"cannot write {path}: {exc}")

    def present(self) -> dict[str, Any]:
        created = [self.dir] if self.directory(self.dir, octal(self.params["mode"])) else []
        for path, mode in self.params["directories"].items():
            if self.directory(path, octal(mode), self.params["owner"], self.params["group"]):
                created.append(path)
        written = [
            name
            for name, content in self.params["env_files"].items()
            if self.write(name, content, "0600", "env")
        ]
        written += [
            name
            for name, content in self.params["secret_files"].items()
            if self.write(name, content, "0600", "secret", self.params["secret_files_owner"])
        ]
        if self.params["compose"] is not None and self.write(
            COMPOSE, self.params["compose"], "0644", "text"
        ):
            written.append(COMPOSE)
        result: dict[str, Any] = {"written": written, "created_directories": created}
        if self.params["snapshot_dir"]:
            result["snapshot_current"] = not written and self.same_files(
                self.params["snapshot_dir"]
            )
        if self.params["report_ready"]:
            result["ready"] = not written and self.ready()
        return result

    def same_files(self, other_dir: str) -> bool:
        """Whether other_dir holds exactly the project's files, same bytes and mode, and their
        SHA256SUMS (a snapshot without it, or with a stale one, is taken again)."""
        patterns = self.params["patterns"]
        names = project_files(self.dir, patterns)
        if not names or names != project_files(other_dir, patterns):
            return False
        data = {}
        try:
            for name in names:
                mine, theirs = os.path.join(self.dir, name), os.path.join(other_dir, name)
                content = read(mine)
                if (
                    content is None
                    or os.stat(mine).st_mode != os.stat(theirs).st_mode
                    or content != read(theirs)
                ):
                    return False
                data[name] = content
            return read(os.path.join(other_dir, MANIFEST)) == manifest(data)
        except OSError:  # unreadable, gone meanwhile: not the same
            return False

    def ready(self) -> bool:
        """Whether every service of compose.yaml has a running container, healthy where checked."""
        compose = ["docker", "compose", "-f", os.path.join(self.dir, COMPOSE)]
        rc, services, _err = self.module.run_command(
            [*compose, "config", "--services"], cwd=self.dir
        )
        if rc != 0:
            return False
        rc, out, _err = self.module.run_command(
            [*compose, "ps", "--all", "--format", "json"], cwd=self.dir
        )
        if rc != 0:
            return False
        # compose prints one object per line (a JSON array before 2.21)
        text = out.strip()
        found = (
            json.loads(text)
            if text.startswith("[")
            else [json.loads(line) for line in text.splitlines() if line.strip()]
        )
        state = {c.get("Service"): (c.get("State"), c.get("Health") or "") for c in found}
        return all(
            state.get(name) in (("running", ""), ("running", "healthy"))
            for name in services.split()
        )

    def load(self, directory: str, names: list[str]) -> dict[str, bytes]:
        """The bytes of the project's files (to keep in the snapshot)."""
        data = {}
        for name in names:
            path = os.path.join(directory, name)
            try:
                content = read(path)
            except OSError as exc:
                self.module.fail_json(msg=f"cannot read {path}: {exc.strerror or exc}")
            if content is not None:  # gone meanwhile: not in this version
                data[name] = content
        return data

    def copy(
        self, data: dict[str, bytes], source_dir: str, target_dir: str
    ) -> tuple[list[str], list[str]]:
        """Make target_dir's project files exactly ``data`` (the bytes of source_dir's), with the
        mode and owner of source_dir's; the names kept and removed."""
        kept = sorted(data)
        removed = [n for n in project_files(target_dir, self.params["patterns"]) if n not in data]
        for name in kept:
            src, dest = os.path.join(source_dir, name), os.path.join(target_dir, name)
            stat = os.stat(src)
            bits = stat.st_mode & 0o7777
            try:
                same = os.path.isfile(dest) and read(dest) == data[name]
            except OSError:
                same = False  # unreadable: replaced
            if not same:
                self.changed = True
                if not self.module.check_mode:
                    self.replace(dest, data[name], bits, owner=stat.st_uid, group=stat.st_gid)
            # a secret file keeps its owner (the user the container reads it as)
            self.attrs(file_args(dest, oct(bits), str(stat.st_uid), str(stat.st_gid)))
        for name in removed:
            self.changed = True
            if not self.module.check_mode:
                os.unlink(os.path.join(target_dir, name))
        return kept, removed

    def snapshot(self) -> dict[str, Any]:
        snap = self.params["snapshot_dir"]
        names = project_files(self.dir, self.params["patterns"])
        if not names:
            return {"kept": [], "removed": []}
        self.directory(snap, "0700")
        if self.module.check_mode and not os.path.isdir(snap):
            return {"kept": names, "removed": []}
        data = self.load(self.dir, names)
        # whatever the snapshot holds (damaged files included) is replaced, byte for byte;
        # the checksums last: a snapshot cut short fails its verification, never restores half
        kept, removed = self.copy(data, self.dir, snap)
        sums, path = manifest(data), os.path.join(snap, MANIFEST)
        try:
            same = read(path) == sums
        except OSError:
            same = False
        if not same:
            self.changed = True
            if not self.module.check_mode:
                self.replace(path, sums, 0o600)
        return {"kept": kept, "removed": removed}

    def verify(self, snap: str, names: list[str]) -> dict[str, bytes]:
        """The bytes of the snapshot's files, each checked; fails the module, before anything
        is put back, when one cannot be trusted (naming each such file)."""
        patterns = self.params["patterns"]
        problems: list[str] = []
        data: dict[str, bytes] = {}
        sums_path = os.path.join(snap, MANIFEST)
        try:
            raw = read(sums_path)
        except OSError as exc:
            problems.append(f"{sums_path} cannot be read ({exc.strerror or exc})")
            raw = None
        sums = None if raw is None else parse_manifest(raw)
        if raw is not None and sums is None:
            problems.append(f"{sums_path} is not a list of '<sha256>  <file name>' lines")
        for name in names:
            path = os.path.join(snap, name)
            try:
                content = read(path)
                if content is None:
                    raise FileNotFoundError(2, "No such file or directory")
            except OSError as exc:
                problems.append(f"{path} cannot be read ({exc.strerror or exc})")
                continue
            data[name] = content
            if matches(name, TEXT):
                try:
                    content.decode("utf-8")
                except UnicodeDecodeError as exc:
                    problems.append(
                        f"{path} is not UTF-8 text"
                        f" (byte 0x{content[exc.start]:02x} at position {exc.start})"
                    )
                    continue
            if sums is not None and name not in sums:
                problems.append(f"{path} is not listed in {sums_path}")
            elif sums is not None and hashlib.sha256(content).hexdigest() != sums[name]:
                problems.append(
                    f"{path} does not match its SHA-256 in {sums_path} (changed since it was kept)"
                )
        for name in sorted(sums or {}):
            if name not in names and matches(name, patterns):
                problems.append(f"{os.path.join(snap, name)} is listed in {sums_path} but missing")
        # without checksums (a snapshot kept before them), docker checks what it can
        if raw is None and not problems and COMPOSE in data and self.params["validate"]:
            path = os.path.join(snap, COMPOSE)
            rc, out, err = self.module.run_command(
                ["docker", "compose", "-f", path, "config", "--quiet"], cwd=snap
            )
            if rc != 0:
                problems.append(f"docker compose refuses {path}: {err.strip() or out.strip()}")
        if problems:
            self.module.fail_json(
                restored=False,
                msg=(
                    f"the snapshot {snap} cannot be trusted: "
                    + "; ".join(problems)
                    + f". Nothing was put back: {self.dir} keeps its current files. The snapshot"
                    " is replaced once a version of the project is proven healthy again (apply"
                    " good settings); until then a restore refuses it."
                ),
            )
        return data

    def restored(self) -> dict[str, Any]:
        snap = self.params["snapshot_dir"]
        names = project_files(snap, self.params["patterns"])
        if not names and not os.path.lexists(os.path.join(snap, MANIFEST)):
            return {"kept": [], "removed": [], "restored": False}
        data = self.verify(snap, names)  # every file, before any is put back
        if not data:
            return {"kept": [], "removed": [], "restored": False}
        kept, removed = self.copy(data, snap, self.dir)
        return {"kept": kept, "removed": removed, "restored": True}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "project_dir": {"type": "path", "required": True},
            "state": {
                "type": "str",
                "choices": ["present", "snapshot", "restored"],
                "default": "present",
            },
            "mode": {"type": "raw", "default": "0750"},
            "directories": {"type": "dict", "default": {}},
            "owner": {"type": "str"},
            "group": {"type": "str"},
            "env_files": {"type": "dict", "default": {}, "no_log": True},
            "secret_files": {"type": "dict", "default": {}, "no_log": True},
            "secret_files_owner": {"type": "str", "no_log": False},  # a uid, not a secret
            "compose": {"type": "str"},
            "validate": {"type": "bool", "default": True},
            "snapshot_dir": {"type": "path"},
            "report_ready": {"type": "bool", "default": False},
            "patterns": {"type": "list", "elements": "str", "default": [COMPOSE, "*.env"]},
        },
        required_if=[
            ("state", "snapshot", ["snapshot_dir"]),
            ("state", "restored", ["snapshot_dir"]),
        ],
        supports_check_mode=True,
    )
    for option in ("env_files", "secret_files"):
        for name, content in module.params[option].items():
            if "/" in name or name in ("", ".", "..") or not isinstance(content, str):
                module.fail_json(
                    msg=f"{option}: {name!r} must be a plain file name inside project_dir, with text"
                )
    project = Project(module)
    result = getattr(project, module.params["state"])()
    if module._diff:
        result["diff"] = project.diff
    module.exit_json(changed=project.changed, **result)


if __name__ == "__main__":
    main()
