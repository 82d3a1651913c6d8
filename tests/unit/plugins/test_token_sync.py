"""token_sync: secret KEY=value pairs in many dotenv files, atomic, drift-reporting, no leaks."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils import basic

from ansible_collections.myia.genai_stack.plugins.module_utils import dotenv
from ansible_collections.myia.genai_stack.plugins.module_utils import files as files_utils
from ansible_collections.myia.genai_stack.plugins.modules import token_sync
from tests.unit.plugins.conftest import ModuleRun, RunModule

# Awkward secrets: every value here must survive a write/read round trip and never be printed.
AWKWARD = {
    "BCRYPT": "$2b$12$abcdefghijklmnopqrstuuABCDEFGHIJKLMNOPQRSTUVWXYZ01234",
    "DOLLARS": "pa$$word-${HOME}-$(id)",
    "HASHES": "secret # not a comment #2",
    "SPACES": "  leading and trailing spaces  ",
    "DQUOTES": 'say "secret-value-dq"',
    "SQUOTES": "it's-a-secret-value",
    "MIXED": 'it\'s "both" $HOME \\ secret',
    "BACKSLASH": "C:\\secret\\path\\",
    "NEWLINES": "secret-line-1\nsecret-line-2\r\nsecret-line-3",
    "EQUALS": "secret=with=equals",
    "UNICODE": "sécret-ünïcode-値",
}

Runner = Callable[..., ModuleRun]


@pytest.fixture
def run(run_module: RunModule) -> Runner:
    """Run the module and check that no value given to it appears in its output."""

    def runner(args: dict[str, Any], **kwargs: bool) -> ModuleRun:
        ran = run_module(token_sync, args, **kwargs)
        raw = ran.output
        for entry in args.get("files", []):
            for value in entry.get("values", {}).values():
                if isinstance(value, str) and len(value) >= 6:
                    for piece in [value, *value.split()]:
                        if len(piece) >= 6:
                            assert piece not in raw, f"secret leaked: {piece!r}"
                            assert json.dumps(piece)[1:-1] not in raw
        return ran

    return runner


def files(*entries: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"files": list(entries), **top}


def test_awkward_values_round_trip(run: Runner, tmp_path: Path) -> None:
    env = tmp_path / "app.env"
    code, result, _ = run(files({"path": str(env), "values": AWKWARD}))
    assert code == 0 and result["changed"], result
    assert dotenv.parse(env.read_text()) == AWKWARD
    assert result["files"][0]["keys_changed"] == list(AWKWARD)
    assert "'$2b$12$" in env.read_text()  # single-quoted: compose does not expand it
    _, again, _ = run(files({"path": str(env), "values": AWKWARD}))
    assert not again["changed"] and again["files"][0]["keys_changed"] == []


def test_other_lines_and_comments_are_kept(run: Runner, tmp_path: Path) -> None:
    env = tmp_path / ".env"
    original = (
        "# notebooks of the lab\n"
        "BASE_URL=http://127.0.0.1:8000/v1\n"
        "export OPENAI_API_KEY=old-key-value # the vLLM key\n"
        "\n"
        "# MODEL=commented-out\n"
        "MODEL=qwen3-8b\n"
    )
    env.write_text(original)
    env.chmod(0o600)
    _, result, _ = run(
        files({"path": str(env), "values": {"OPENAI_API_KEY": "new-key-value", "TOKEN": "$2b$x"}})
    )
    assert result["files"][0]["keys_changed"] == ["OPENAI_API_KEY", "TOKEN"]
    assert env.read_text() == (
        "# notebooks of the lab\n"
        "BASE_URL=http://127.0.0.1:8000/v1\n"
        "export OPENAI_API_KEY=new-key-value # the vLLM key\n"
        "\n"
        "# MODEL=commented-out\n"
        "MODEL=qwen3-8b\n"
        "TOKEN='$2b$x'\n"
    )


def test_idempotent_and_untouched_when_in_sync(run: Runner, tmp_path: Path) -> None:
    env = tmp_path / "svc.env"
    args = files({"path": str(env), "values": {"VLLM_API_KEY": "k" * 48}})
    run(args)
    before = env.stat()
    _, result, _ = run(args)
    assert not result["changed"] and result["changed_files"] == []
    after = env.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_write_is_atomic_new_inode_no_temp_left(run: Runner, tmp_path: Path) -> None:
    env = tmp_path / "svc.env"
    env.write_text("A=1\nKEY=old-secret-1\n")
    env.chmod(0o600)
    inode = env.stat().st_ino
    run(files({"path": str(env), "values": {"KEY": "new-secret-2"}}))
    assert env.stat().st_ino != inode  # renamed over, not rewritten in place
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svc.env"]


def test_a_failed_write_leaves_the_old_file_whole(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / "svc.env"
    env.write_text("KEY=old-secret-1\n")

    def broken_move(self: basic.AnsibleModule, src: str, dest: str, **kwargs: Any) -> None:
        raise Exception("disk full")  # what atomic_move raises

    monkeypatch.setattr(basic.AnsibleModule, "atomic_move", broken_move)
    code, result, _ = run(files({"path": str(env), "values": {"KEY": "new-secret-2"}}))
    assert code == 1 and str(env) in result["msg"] and "disk full" in result["msg"]
    assert env.read_text() == "KEY=old-secret-1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["svc.env"]


def test_new_files_are_0600_and_mode_is_enforced(run: Runner, tmp_path: Path) -> None:
    new = tmp_path / "new.env"
    loose = tmp_path / "loose.env"
    loose.write_text("KEY=same-value-1\n")
    loose.chmod(0o644)
    old = os.umask(0)
    try:
        _, result, _ = run(
            files(
                {"path": str(new), "values": {"KEY": "value-1"}},
                {"path": str(loose), "values": {"KEY": "same-value-1"}},
            )
        )
    finally:
        os.umask(old)
    assert stat.S_IMODE(new.stat().st_mode) == 0o600
    assert stat.S_IMODE(loose.stat().st_mode) == 0o600
    first, second = result["files"]
    assert first["created"] and first["changed"]
    assert second["changed"] and second["keys_changed"] == []  # a mode change is a change


def test_per_file_mode_owner_group_and_null_mode(run: Runner, tmp_path: Path) -> None:
    shared = tmp_path / "shared.env"
    kept = tmp_path / "kept.env"
    kept.write_text("X=1\n")
    kept.chmod(0o640)
    entries = [
        {"path": str(shared), "values": {"A": "value-a"}, "mode": "0640"},
        {"path": str(kept), "values": {"X": "two-value"}, "mode": None},
    ]
    if os.geteuid() == 0:
        entries[0].update(owner="nobody", group="nogroup")
    run(files(*entries, mode=None))
    assert stat.S_IMODE(shared.stat().st_mode) == 0o640
    assert stat.S_IMODE(kept.stat().st_mode) == 0o640
    if os.geteuid() == 0:
        assert shared.stat().st_uid == 65534 and shared.stat().st_gid == 65534
        # the owner of a rewritten file is kept
        run(files({"path": str(shared), "values": {"A": "value-b"}, "mode": "0640"}))
        assert shared.stat().st_uid == 65534


def test_check_mode_reports_drift_and_writes_nothing(run: Runner, tmp_path: Path) -> None:
    existing = tmp_path / "existing.env"
    existing.write_text("KEY=old-secret-value\nOTHER=other-value\n")
    existing.chmod(0o600)
    missing = tmp_path / "missing.env"
    content, mtime = existing.read_bytes(), existing.stat().st_mtime_ns
    _, result, _ = run(
        files(
            # (a short value such as "1" would be masked inside paths of the result: no_log)
            {"path": str(existing), "values": {"KEY": "new-secret-value", "OTHER": "other-value"}},
            {"path": str(missing), "values": {"KEY": "new-secret-value"}},
        ),
        check=True,
    )
    assert result["changed"]
    first, second = result["files"]
    assert first["changed"] and first["keys_changed"] == ["KEY"] and not first["created"]
    assert second["changed"] and second["created"]
    assert result["changed_files"] == [str(existing), str(missing)]
    assert existing.read_bytes() == content and existing.stat().st_mtime_ns == mtime
    assert not missing.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing.env"]


def test_check_mode_in_sync_is_unchanged(run: Runner, tmp_path: Path) -> None:
    env = tmp_path / "svc.env"
    args = files({"path": str(env), "values": AWKWARD})
    run(args)
    _, result, _ = run(args, check=True, diff=True)
    assert not result["changed"] and result["diff"] == []


def test_diff_masks_every_value_and_marks_keys(run: Runner, tmp_path: Path) -> None:
    env = tmp_path / "svc.env"
    env.write_text("# old key: my-commented-secret\nBCRYPT=old-hash-secret\nKEEP=kept-secret\n")
    env.chmod(0o644)
    new_values = {**AWKWARD, "KEEP": "kept-secret"}
    _, result, raw = run(files({"path": str(env), "values": new_values}), diff=True)
    for secret in ("old-hash-secret", "kept-secret", "my-commented-secret"):
        assert secret not in raw
    (diff,) = result["diff"]
    assert diff["before"] == "BCRYPT=***\nKEEP=***\n# mode: 0644\n"
    after = diff["after"].splitlines()
    assert after[:2] == ["BCRYPT=*** (changed)", "KEEP=***"]
    assert "NEWLINES=*** (added)" in after and after[-1] == "# mode: 0600"
    assert all("=***" in line or line.startswith("# mode") for line in after)


def test_diff_of_a_new_file(run: Runner, tmp_path: Path) -> None:
    env = tmp_path / "new.env"
    _, result, _ = run(files({"path": str(env), "values": {"K": "new-secret-x"}}), diff=True)
    (diff,) = result["diff"]
    assert diff["before"] == "" and diff["before_header"].endswith("(absent)")
    assert diff["after"] == "K=*** (added)\n"


def test_symlink_is_written_through(run: Runner, tmp_path: Path) -> None:
    real_dir = tmp_path / "real"
    real_dir.mkdir()
    target = real_dir / "app.env"
    target.write_text("# kept\nKEY=old-secret-1\n")
    link = tmp_path / "link.env"
    link.symlink_to(target)
    _, result, _ = run(files({"path": str(link), "values": {"KEY": "new-secret-2"}}))
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "# kept\nKEY=new-secret-2\n"
    assert result["files"][0]["path"] == str(link)
    assert result["files"][0]["target"] == str(target)
    assert sorted(p.name for p in real_dir.iterdir()) == ["app.env"]  # temp file beside target


def test_dangling_symlink_creates_its_target(run: Runner, tmp_path: Path) -> None:
    target = tmp_path / "target.env"
    link = tmp_path / "link.env"
    link.symlink_to(target)
    _, result, _ = run(files({"path": str(link), "values": {"KEY": "value-1"}}))
    assert result["files"][0]["created"] and link.is_symlink()
    assert target.read_text() == "KEY=value-1\n"


def test_create_false_skips_a_missing_file(run: Runner, tmp_path: Path) -> None:
    env = tmp_path / "optional.env"
    _, result, _ = run(files({"path": str(env), "values": {"K": "value-1"}, "create": False}))
    assert not result["changed"] and result["files"][0]["skipped"] and not env.exists()
    env.write_text("K=old-value\n")
    env.chmod(0o600)
    _, result, _ = run(files({"path": str(env), "values": {"K": "value-1"}, "create": False}))
    assert result["changed"] and not result["files"][0]["skipped"]


def test_entries_on_the_same_file_apply_in_order(run: Runner, tmp_path: Path) -> None:
    env = tmp_path / "shared.env"
    link = tmp_path / "alias.env"
    link.symlink_to(env)
    args = files(
        {"path": str(env), "values": {"A": "value-a1", "B": "value-b"}},
        {"path": str(link), "values": {"A": "value-a2"}},
    )
    _, checked, _ = run(args, check=True)
    assert [f["keys_changed"] for f in checked["files"]] == [["A", "B"], ["A"]]
    assert [f["created"] for f in checked["files"]] == [True, False]
    _, result, _ = run(args)
    assert [f["keys_changed"] for f in result["files"]] == [["A", "B"], ["A"]]
    assert dotenv.parse(env.read_text()) == {"A": "value-a2", "B": "value-b"}


def test_missing_directory_fails_before_writing_anything(run: Runner, tmp_path: Path) -> None:
    good = tmp_path / "good.env"
    bad = tmp_path / "nowhere" / "bad.env"
    code, result, _ = run(
        files(
            {"path": str(good), "values": {"K": "value-1"}},
            {"path": str(bad), "values": {"K": "value-1"}},
        )
    )
    assert code == 1 and str(bad) in result["msg"] and "does not exist" in result["msg"]
    assert not good.exists() and not result["changed"]


def test_unwritable_directory_is_named(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = tmp_path / "svc.env"
    real_access = os.access
    monkeypatch.setattr(
        token_sync.os,
        "access",
        lambda p, mode: False if str(p) == str(tmp_path) else real_access(p, mode),
    )
    code, result, _ = run(files({"path": str(env), "values": {"K": "value-1"}}))
    assert code == 1 and str(env) in result["msg"] and "not writable" in result["msg"]


def test_mkstemp_failure_is_named(
    run: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(files_utils.tempfile, "mkstemp", refuse)
    env = tmp_path / "svc.env"
    code, result, _ = run(files({"path": str(env), "values": {"K": "value-1"}}))
    assert code == 1 and str(env) in result["msg"] and "Permission denied" in result["msg"]


@pytest.mark.parametrize(
    ("values", "why"),
    [
        ({"1BAD": "secret-val"}, "1BAD"),
        ({"BAD-KEY": "secret-val"}, "BAD-KEY"),
        ({"NESTED": {"a": "secret-val"}}, "NESTED"),
        ({"LIST": ["secret-val"]}, "LIST"),
    ],
)
def test_bad_input_fails_naming_path_and_key(
    run: Runner, tmp_path: Path, values: dict[str, Any], why: str
) -> None:
    good = tmp_path / "good.env"
    env = tmp_path / "svc.env"
    code, result, raw = run(
        files({"path": str(good), "values": {"K": "value-1"}}, {"path": str(env), "values": values})
    )
    assert code == 1 and why in result["msg"] and str(env) in result["msg"]
    assert "secret-val" not in raw
    assert not good.exists() and not env.exists()


def test_scalars_are_written_as_compose_reads_them(run: Runner, tmp_path: Path) -> None:
    env = tmp_path / "svc.env"
    run(files({"path": str(env), "values": {"PORT": 8000, "ON": True, "EMPTY": None}}))
    assert env.read_text() == "PORT=8000\nON=true\nEMPTY=\n"


def test_not_a_regular_file_or_not_text(run: Runner, tmp_path: Path) -> None:
    directory = tmp_path / "dir.env"
    directory.mkdir()
    binary = tmp_path / "binary.env"
    binary.write_bytes(b"\xff\xfe\x00")
    code, result, _ = run(files({"path": str(directory), "values": {"K": "v"}}))
    assert code == 1 and "not a regular file" in result["msg"]
    code, result, _ = run(files({"path": str(binary), "values": {"K": "v"}}))
    assert code == 1 and "UTF-8" in result["msg"]
    assert binary.read_bytes() == b"\xff\xfe\x00"


def test_invocation_hides_values(run: Runner, tmp_path: Path) -> None:
    env = tmp_path / "svc.env"
    _, result, _ = run(files({"path": str(env), "values": {"K": "super-secret-token"}}))
    logged = result["invocation"]["module_args"]["files"][0]["values"]
    assert logged == "VALUE_SPECIFIED_IN_NO_LOG_PARAMETER" or "super-secret-token" not in str(
        logged
    )


def test_unknown_owner_fails_before_writing(run: Runner, tmp_path: Path) -> None:
    good = tmp_path / "good.env"
    new = tmp_path / "new.env"
    code, result, _ = run(
        files(
            {"path": str(good), "values": {"K": "value-1"}},
            {"path": str(new), "values": {"K": "value-1"}, "owner": "no-such-user-xyz"},
        )
    )
    assert code == 1 and "no-such-user-xyz" in result["msg"] and str(new) in result["msg"]
    assert not good.exists() and not new.exists()
