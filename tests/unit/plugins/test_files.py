"""files: the atomic write and the read-only attribute check shared by the file-writing modules."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils import basic

from ansible_collections.myia.genai_stack.plugins.module_utils import files
from tests.unit.plugins.conftest import SetArgs


@pytest.fixture
def module(module_args: SetArgs) -> basic.AnsibleModule:
    """A real AnsibleModule without arguments, in check mode off."""
    module_args({})
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
    ("kwargs", "mode_at_move"),
    [
        ({}, 0o600),
        ({"keep_mode": False}, 0o600),
        ({"keep_mode": True}, 0o640),
        ({"mode": 0o644}, 0o644),
        ({"mode": 0o644, "keep_mode": True}, 0o640),
    ],
)
def test_a_replaced_file_gets_the_mode_before_the_rename_or_keeps_its_own_with_keep_mode(
    module: basic.AnsibleModule,
    move: Move,
    tmp_path: Path,
    kwargs: dict[str, Any],
    mode_at_move: int,
) -> None:
    target = tmp_path / "svc.env"
    target.write_text("old\n")
    target.chmod(0o640)
    files.write_atomic(module, str(target), b"new\n", **kwargs)
    assert move.stat is not None and stat.S_IMODE(move.stat.st_mode) == mode_at_move
    assert stat.S_IMODE(target.stat().st_mode) == mode_at_move
    assert target.read_text() == "new\n"


@pytest.mark.parametrize(
    ("kwargs", "ids"),
    [
        ({}, (1234, 5678)),
        ({"owner": 1000, "group": 1001}, (1000, 1001)),
        ({"group": 1002}, (1234, 1002)),
        ({"owner": 1003}, (1003, 5678)),
    ],
)
def test_a_replaced_file_gets_the_owner_asked_for_before_the_rename_else_keeps_its_own(
    module: basic.AnsibleModule,
    move: Move,
    tmp_path: Path,
    kwargs: dict[str, Any],
    ids: tuple[int, int],
) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file away needs root")
    target = tmp_path / "svc.env"
    target.write_text("old\n")
    os.chown(target, 1234, 5678)
    files.write_atomic(module, str(target), b"new\n", **kwargs)
    assert move.stat is not None and (move.stat.st_uid, move.stat.st_gid) == ids
    assert (target.stat().st_uid, target.stat().st_gid) == ids


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


@pytest.mark.parametrize(
    ("kwargs", "mode"),
    [({}, 0o600), ({"mode": 0o644}, 0o644), ({"mode": 0o644, "keep_mode": True}, 0o644)],
)
def test_a_new_file_gets_the_mode_0600_by_default_whatever_the_umask(
    module: basic.AnsibleModule, tmp_path: Path, kwargs: dict[str, Any], mode: int
) -> None:
    target = tmp_path / "new.env"
    old = os.umask(0)
    try:
        files.write_atomic(module, str(target), b"x", **kwargs)
    finally:
        os.umask(old)
    assert stat.S_IMODE(target.stat().st_mode) == mode


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


def test_text_is_written_as_utf8(module: basic.AnsibleModule, tmp_path: Path) -> None:
    target = tmp_path / "daemon.json"
    files.write_atomic(module, str(target), '{"name": "é"}\n')
    assert target.read_bytes() == '{"name": "é"}\n'.encode()


def test_a_new_file_gets_the_owner_asked_for_and_its_mode_after_it(
    module: basic.AnsibleModule, tmp_path: Path
) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file away needs root")
    target = tmp_path / "secret"
    files.write_atomic(module, str(target), b"s\n", mode=0o4750, owner=1000, group=1001)
    found = target.stat()
    assert (found.st_uid, found.st_gid, stat.S_IMODE(found.st_mode)) == (1000, 1001, 0o4750)


@pytest.mark.parametrize("existing", [False, True])
def test_an_owner_asked_for_that_cannot_be_given_fails_the_write(
    module: basic.AnsibleModule, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, existing: bool
) -> None:
    def refuse(*args: object) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chown", refuse)
    target = tmp_path / "secret"
    if existing:
        target.write_text("old\n")
    with pytest.raises(PermissionError):
        files.write_atomic(module, str(target), b"new\n", owner=1000, group=1000)
    # refused before the rename: the old file is whole, a new one is not made
    assert sorted(p.name for p in tmp_path.iterdir()) == (["secret"] if existing else [])
    if existing:
        assert target.read_text() == "old\n"


def test_validate_sees_the_new_content_in_the_temporary_file_before_the_rename(
    module: basic.AnsibleModule, move: Move, tmp_path: Path
) -> None:
    target = tmp_path / "compose.yaml"
    target.write_text("old\n")
    seen: list[tuple[str, bytes, str]] = []

    def validate(tmp: str) -> None:
        seen.append((tmp, Path(tmp).read_bytes(), target.read_text()))

    files.write_atomic(module, str(target), b"new\n", mode=0o644, validate=validate)
    [(tmp, content, then)] = seen
    [(src, _, _)] = move.calls
    assert (tmp, content, then) == (src, b"new\n", "old\n")
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["compose.yaml"]


class Refused(Exception):
    pass


@pytest.mark.parametrize("refusal", [Refused("ports must be a list"), SystemExit(1)])
@pytest.mark.parametrize("existing", [False, True])
def test_a_refused_content_keeps_the_old_file_and_leaves_no_temporary_file(
    module: basic.AnsibleModule,
    move: Move,
    tmp_path: Path,
    refusal: BaseException,
    existing: bool,
) -> None:
    """A ``validate`` that raises, or fails the module (``fail_json`` exits), stops the write."""
    target = tmp_path / "compose.yaml"
    if existing:
        target.write_text("old\n")
        target.chmod(0o640)
        before = target.stat()

    def validate(tmp: str) -> None:
        raise refusal

    with pytest.raises(type(refusal)) as raised:
        files.write_atomic(module, str(target), b"new\n", mode=0o644, validate=validate)
    assert raised.value is refusal
    assert move.calls == []
    if existing:
        after = target.stat()
        assert target.read_text() == "old\n"
        assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)
        assert sorted(p.name for p in tmp_path.iterdir()) == ["compose.yaml"]
    else:
        assert list(tmp_path.iterdir()) == []


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
