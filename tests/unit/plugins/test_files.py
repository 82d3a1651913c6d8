"""files: the atomic write and the read-only attribute check shared by the file-writing modules."""

from __future__ import annotations

import json
import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils import basic

from ansible_collections.myia.genai_stack.plugins.module_utils import files


@pytest.fixture
def module(monkeypatch: pytest.MonkeyPatch) -> basic.AnsibleModule:
    """A real AnsibleModule without arguments, in check mode off."""
    payload = {"ANSIBLE_MODULE_ARGS": {"_ansible_check_mode": False}}
    monkeypatch.setattr(basic, "_ANSIBLE_ARGS", json.dumps(payload).encode())
    if hasattr(basic, "_ANSIBLE_PROFILE"):  # ansible-core >= 2.19
        monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")
    return basic.AnsibleModule(argument_spec={}, supports_check_mode=True)


class Move:
    """What ``atomic_move`` was given, and the temporary file as it was at that moment."""

    def __init__(self, module: basic.AnsibleModule, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.stat: os.stat_result | None = None
        real = module.atomic_move

        def record(src: str, dest: str, **kwargs: Any) -> None:
            self.calls.append((src, dest, kwargs))
            self.stat = os.stat(src)
            real(src, dest, **kwargs)

        monkeypatch.setattr(module, "atomic_move", record)


@pytest.fixture
def move(module: basic.AnsibleModule, monkeypatch: pytest.MonkeyPatch) -> Move:
    return Move(module, monkeypatch)


def test_temporary_file_is_hidden_beside_the_target_then_renamed_over_it(
    module: basic.AnsibleModule, move: Move, tmp_path: Path
) -> None:
    target = tmp_path / "svc.env"
    files.write_atomic(module, str(target), b"KEY=value\n")
    [(src, dest, kwargs)] = move.calls
    assert os.path.dirname(src) == str(tmp_path)
    assert re.fullmatch(r"\.svc\.env\.[^/]+\.tmp", os.path.basename(src))
    assert dest == str(target)
    assert kwargs == {"unsafe_writes": False, "keep_dest_attrs": False}
    assert target.read_bytes() == b"KEY=value\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svc.env"]


def test_prefix_names_the_temporary_file_and_unsafe_writes_reaches_atomic_move(
    module: basic.AnsibleModule, move: Move, tmp_path: Path
) -> None:
    target = tmp_path / "token"
    files.write_atomic(module, str(target), b"t", prefix=".login.", unsafe_writes=True)
    [(src, _, kwargs)] = move.calls
    assert os.path.dirname(src) == str(tmp_path)
    assert re.fullmatch(r"\.login\.[^/]+\.tmp", os.path.basename(src))
    assert kwargs == {"unsafe_writes": True, "keep_dest_attrs": False}


@pytest.mark.parametrize(
    ("keep_mode", "mode_at_move"), [(None, 0o600), (False, 0o600), (True, 0o640)]
)
def test_mode_of_the_replaced_file_is_kept_only_with_keep_mode(
    module: basic.AnsibleModule,
    move: Move,
    tmp_path: Path,
    keep_mode: bool | None,
    mode_at_move: int,
) -> None:
    target = tmp_path / "svc.env"
    target.write_text("old\n")
    target.chmod(0o640)
    kwargs = {} if keep_mode is None else {"keep_mode": keep_mode}
    files.write_atomic(module, str(target), b"new\n", **kwargs)
    assert move.stat is not None and stat.S_IMODE(move.stat.st_mode) == mode_at_move
    assert target.read_text() == "new\n"


def test_owner_and_group_of_the_replaced_file_are_kept(
    module: basic.AnsibleModule, move: Move, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file away needs root")
    target = tmp_path / "svc.env"
    target.write_text("old\n")
    os.chown(target, 1234, 5678)
    files.write_atomic(module, str(target), b"new\n")
    assert move.stat is not None and (move.stat.st_uid, move.stat.st_gid) == (1234, 5678)


def test_owner_that_cannot_be_kept_does_not_stop_the_write(
    module: basic.AnsibleModule, move: Move, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chown", refuse)
    target = tmp_path / "svc.env"
    target.write_text("old\n")
    files.write_atomic(module, str(target), b"new\n")
    assert target.read_text() == "new\n" and len(move.calls) == 1


def test_a_new_file_is_0600_whatever_the_umask(module: basic.AnsibleModule, tmp_path: Path) -> None:
    target = tmp_path / "new.env"
    old = os.umask(0)
    try:
        files.write_atomic(module, str(target), b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_a_directory_that_cannot_hold_the_temporary_file_is_named(
    module: basic.AnsibleModule, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere"
    with pytest.raises(files.TempFileError) as raised:
        files.write_atomic(module, str(missing / "svc.env"), b"x")
    assert str(raised.value) == f"cannot create a file in {missing} (No such file or directory)"
    assert raised.value.directory == str(missing)
    assert raised.value.strerror == "No such file or directory"


def test_a_failed_rename_removes_the_temporary_file_and_propagates(
    module: basic.AnsibleModule, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(src: str, dest: str, **kwargs: Any) -> None:
        raise Exception("disk full")

    monkeypatch.setattr(module, "atomic_move", broken)
    target = tmp_path / "svc.env"
    target.write_text("old\n")
    with pytest.raises(Exception, match=r"^disk full$"):
        files.write_atomic(module, str(target), b"new\n")
    assert target.read_text() == "old\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svc.env"]


@pytest.mark.parametrize("check_mode", [False, True])
def test_attribute_drift_is_reported_in_diff_and_nothing_is_changed(
    module: basic.AnsibleModule, tmp_path: Path, check_mode: bool
) -> None:
    target = tmp_path / "svc.env"
    target.write_text("x")
    target.chmod(0o644)
    module.check_mode = check_mode
    args = module.load_file_common_arguments({"mode": "0600"}, path=str(target))
    diff: dict[str, Any] = {"before": {}, "after": {}}
    assert files.attributes_drift(module, args, diff) is True
    assert diff == {"before": {"mode": "0644"}, "after": {"mode": "0600"}}
    assert stat.S_IMODE(target.stat().st_mode) == 0o644
    assert module.check_mode is check_mode


def test_no_attribute_drift_is_false(module: basic.AnsibleModule, tmp_path: Path) -> None:
    target = tmp_path / "svc.env"
    target.write_text("x")
    target.chmod(0o600)
    args = module.load_file_common_arguments({"mode": "0600"}, path=str(target))
    diff: dict[str, Any] = {"before": {}, "after": {}}
    assert files.attributes_drift(module, args, diff) is False
    assert diff == {"before": {}, "after": {}}
    assert module.check_mode is False
