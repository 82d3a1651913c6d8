"""docker_daemon_json: merge into daemon.json, keep every other key, backup, check and diff mode."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from ansible.module_utils import basic

from ansible_collections.myia.genai_stack.plugins.modules import docker_daemon_json as mod
from tests.unit.plugins.conftest import RunModule

NVIDIA = {"name": "nvidia", "path": "nvidia-container-runtime"}
# What the user's hosts already hold, 4-space indented like many hand-written files.
EXISTING = {
    "log-driver": "json-file",
    "log-opts": {"max-size": "10m", "max-file": "3"},
    "data-root": "/srv/docker",
    "registry-mirrors": ["https://mirror.example.invalid"],
}
# What `nvidia-ctk runtime configure --runtime=docker --set-as-default` writes.
NVIDIA_CTK = '{\n    "default-runtime": "nvidia",\n    "runtimes": {\n        "nvidia": {\n            "args": [],\n            "path": "nvidia-container-runtime"\n        }\n    }\n}'


@pytest.fixture
def daemon_json(tmp_path: Path) -> Path:
    path = tmp_path / "docker" / "daemon.json"
    path.parent.mkdir()
    path.write_text(json.dumps(EXISTING, indent=4) + "\n")
    return path


def backups(path: Path) -> list[Path]:
    return sorted(
        p
        for p in path.parent.iterdir()
        if p.name.startswith("daemon.json.") and p.name.endswith("~")
    )


# --- the merge -------------------------------------------------------------------------------


def test_merge_keeps_other_keys_and_adds_the_runtime() -> None:
    merged = mod.merge(EXISTING, [{**NVIDIA, "args": []}])
    assert merged == {
        **EXISTING,
        "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}},
    }
    assert list(merged) == [*EXISTING, "runtimes"]  # new keys come last
    assert "runtimes" not in EXISTING  # the input is not changed


def test_merge_default_runtime_true_false_unset() -> None:
    on = mod.merge({}, [{**NVIDIA, "default": True}])
    assert on["default-runtime"] == "nvidia"
    assert mod.merge(on, [{**NVIDIA, "default": None}])["default-runtime"] == "nvidia"
    assert "default-runtime" not in mod.merge(on, [{**NVIDIA, "default": False}])
    other = {"default-runtime": "crun", "runtimes": {"crun": {"path": "/usr/bin/crun"}}}
    assert mod.merge(other, [{**NVIDIA, "default": False}])["default-runtime"] == "crun"


def test_merge_runtime_absent_removes_it_and_its_default() -> None:
    current = json.loads(NVIDIA_CTK) | {"log-driver": "local"}
    current["runtimes"]["crun"] = {"path": "crun"}
    merged = mod.merge(current, [{"name": "nvidia", "state": "absent"}])
    assert merged == {"runtimes": {"crun": {"path": "crun"}}, "log-driver": "local"}


def test_merge_keeps_extra_keys_of_an_existing_runtime_entry() -> None:
    current = {
        "runtimes": {"nvidia": {"path": "/old/path", "args": ["--debug"], "runtimeType": "x"}}
    }
    merged = mod.merge(current, [{**NVIDIA, "args": []}])
    assert merged["runtimes"]["nvidia"] == {
        "path": "nvidia-container-runtime",
        "args": [],
        "runtimeType": "x",
    }


def test_options_merge_deeply_and_lists_replace() -> None:
    merged = mod.merge(
        EXISTING,
        options={
            "log-opts": {"max-size": "50m"},
            "registry-mirrors": ["https://other.example.invalid"],
            "features": {"buildkit": True},
        },
    )
    assert merged["log-opts"] == {"max-size": "50m", "max-file": "3"}
    assert merged["registry-mirrors"] == ["https://other.example.invalid"]
    assert merged["features"] == {"buildkit": True}
    assert merged["data-root"] == "/srv/docker"


def test_runtimes_win_over_options() -> None:
    merged = mod.merge(
        {},
        [{**NVIDIA, "default": True}],
        {
            "default-runtime": "runc",
            "runtimes": {"nvidia": {"path": "x"}, "crun": {"path": "crun"}},
        },
    )
    assert merged["default-runtime"] == "nvidia"
    assert merged["runtimes"] == {
        "nvidia": {"path": "nvidia-container-runtime", "args": []},
        "crun": {"path": "crun"},
    }


def test_nothing_to_merge_adds_nothing() -> None:
    assert mod.merge({"a": 1}, [], {}) == {"a": 1}
    assert mod.merge({}, [{"name": "nvidia", "state": "absent"}]) == {}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        (
            '{"log-driver": "json-file",}',
            r"not valid JSON \(Expecting property name enclosed in double quotes at line 1",
        ),
        ('{"a": 1', "not valid JSON"),
        ("[1, 2]", "must hold a JSON object, not list"),
        ('{"a": 1, "a": 2}', "ambiguous: key 'a' appears twice"),
    ],
)
def test_parse_refuses_what_it_cannot_merge_safely(text: str, error: str) -> None:
    with pytest.raises(mod.DaemonJsonError, match=error):
        mod.parse(text, "daemon.json")


def test_parse_empty_file_is_an_empty_config() -> None:
    assert mod.parse("") == {} and mod.parse(" \n") == {}


def test_runtimes_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(mod.DaemonJsonError, match="'runtimes' must be an object"):
        mod.merge({"runtimes": ["nvidia"]}, [NVIDIA])


@pytest.mark.parametrize(
    ("text", "indent"),
    [
        ("{}", 2),
        ('{\n    "a": 1\n}', 4),
        ('{\n\t"a": 1\n}', "\t"),
        ('{\n  "a": {\n    "b": 1}}', 2),
    ],
)
def test_indent_detection(text: str, indent: str | int) -> None:
    assert mod.detect_indent(text) == indent


# --- the module ------------------------------------------------------------------------------


def test_module_merges_with_a_backup_then_is_idempotent(
    daemon_json: Path, run_module: RunModule
) -> None:
    before = daemon_json.read_text()
    args = {"path": str(daemon_json), "runtimes": [{**NVIDIA, "default": True}], "backup": True}
    code, result, _ = run_module(mod, args)
    assert code == 0 and result["changed"] is True and result["created"] is False
    written = json.loads(daemon_json.read_text())
    assert written == {
        **EXISTING,
        "runtimes": {"nvidia": {"path": "nvidia-container-runtime", "args": []}},
        "default-runtime": "nvidia",
    }
    assert result["config"] == written
    assert daemon_json.read_text().splitlines()[1] == '    "log-driver": "json-file",'
    assert [str(p) for p in backups(daemon_json)] == [result["backup_file"]]
    assert Path(result["backup_file"]).read_text() == before

    code, result, _ = run_module(mod, args)
    assert code == 0 and result["changed"] is False and "backup_file" not in result
    assert len(backups(daemon_json)) == 1


def test_module_keeps_the_mode_of_the_file(daemon_json: Path, run_module: RunModule) -> None:
    daemon_json.chmod(0o600)
    code, _, _ = run_module(mod, {"path": str(daemon_json), "runtimes": [NVIDIA]})
    assert code == 0 and daemon_json.stat().st_mode & 0o777 == 0o600
    assert [p.name for p in daemon_json.parent.iterdir()] == ["daemon.json"]  # no temp file left


def test_module_leaves_an_equal_file_alone_whatever_its_formatting(
    daemon_json: Path, run_module: RunModule
) -> None:
    daemon_json.write_text(NVIDIA_CTK)  # written by nvidia-ctk, keys in another order, no newline
    mtime = daemon_json.stat().st_mtime_ns
    args = {"path": str(daemon_json), "runtimes": [{**NVIDIA, "default": True}], "backup": True}
    code, result, _ = run_module(mod, args, diff=True)
    assert code == 0 and result["changed"] is False
    assert daemon_json.read_text() == NVIDIA_CTK and daemon_json.stat().st_mtime_ns == mtime
    assert result["diff"]["before"] == result["diff"]["after"] == NVIDIA_CTK
    assert backups(daemon_json) == []


def test_module_check_mode_reports_and_writes_nothing(
    daemon_json: Path, run_module: RunModule
) -> None:
    before = daemon_json.read_text()
    args = {
        "path": str(daemon_json),
        "runtimes": [NVIDIA],
        "options": {"log-opts": {"max-size": "50m"}},
        "backup": True,
    }
    code, result, _ = run_module(mod, args, check=True, diff=True)
    assert code == 0 and result["changed"] is True
    assert daemon_json.read_text() == before and backups(daemon_json) == []
    assert "backup_file" not in result
    diff = result["diff"]
    assert diff["before"] == before and diff["before_header"] == str(daemon_json)
    after = json.loads(diff["after"])
    assert after["runtimes"]["nvidia"]["path"] == "nvidia-container-runtime"
    assert after["log-opts"] == {"max-size": "50m", "max-file": "3"}
    assert diff["after"] == json.dumps(after, indent=4) + "\n"


def test_module_refuses_an_unparseable_file_and_never_overwrites_it(
    daemon_json: Path, run_module: RunModule
) -> None:
    broken = '{\n  "log-driver": "json-file",\n  "data-root": "/srv/docker"\n  "debug": true\n}\n'
    daemon_json.write_text(broken)
    args = {"path": str(daemon_json), "runtimes": [NVIDIA], "backup": True}
    code, result, _ = run_module(mod, args)
    assert code == 1 and result["failed"] is True
    assert result["msg"].startswith(
        f"{daemon_json} is not valid JSON (Expecting ',' delimiter at line 4"
    )
    assert "refusing to change it" in result["msg"]
    assert daemon_json.read_text() == broken and backups(daemon_json) == []


def test_module_creates_a_missing_file_0644(tmp_path: Path, run_module: RunModule) -> None:
    path = tmp_path / "etc" / "docker" / "daemon.json"
    args = {"path": str(path), "runtimes": [NVIDIA], "backup": True}
    code, result, _ = run_module(mod, args, diff=True)
    assert code == 0 and result["changed"] is True and result["created"] is True
    assert "backup_file" not in result
    assert path.read_text() == (
        '{\n  "runtimes": {\n    "nvidia": {\n      "path": "nvidia-container-runtime",\n'
        '      "args": []\n    }\n  }\n}\n'
    )
    assert path.stat().st_mode & 0o777 == 0o644
    assert result["diff"]["before"] == "" and result["diff"]["before_header"].endswith("(absent)")


def test_module_does_not_create_an_empty_file_or_when_told_not_to(
    tmp_path: Path, run_module: RunModule
) -> None:
    path = tmp_path / "daemon.json"
    code, result, _ = run_module(mod, {"path": str(path)})
    assert code == 0 and result["changed"] is False and not path.exists()
    code, result, _ = run_module(mod, {"path": str(path), "runtimes": [NVIDIA], "create": False})
    assert code == 0 and result["changed"] is False and not path.exists()


def test_module_merges_into_an_empty_file(tmp_path: Path, run_module: RunModule) -> None:
    path = tmp_path / "daemon.json"
    path.write_text("")
    code, result, _ = run_module(mod, {"path": str(path), "runtimes": [NVIDIA]})
    assert code == 0 and result["changed"] is True
    assert json.loads(path.read_text())["runtimes"]["nvidia"]["args"] == []


def test_module_validates_its_arguments(daemon_json: Path, run_module: RunModule) -> None:
    code, result, _ = run_module(mod, {"path": str(daemon_json), "runtimes": [{"name": "nvidia"}]})
    assert code == 1 and "path" in result["msg"]


def test_module_refuses_a_directory(tmp_path: Path, run_module: RunModule) -> None:
    code, result, _ = run_module(mod, {"path": str(tmp_path), "runtimes": [NVIDIA]})
    assert code == 1 and "not a regular file" in result["msg"]
    assert os.listdir(tmp_path) == []


def test_module_names_a_failed_write_and_keeps_the_old_file_whole(
    daemon_json: Path, monkeypatch: pytest.MonkeyPatch, run_module: RunModule
) -> None:
    def broken(self: basic.AnsibleModule, src: str, dest: str, **kwargs: Any) -> None:
        raise Exception("disk full")  # what atomic_move raises

    monkeypatch.setattr(basic.AnsibleModule, "atomic_move", broken)
    before = daemon_json.read_text()
    code, result, _ = run_module(mod, {"path": str(daemon_json), "runtimes": [NVIDIA]})
    assert code == 1 and result["msg"] == f"cannot write {daemon_json}: disk full"
    assert daemon_json.read_text() == before
    assert [p.name for p in daemon_json.parent.iterdir()] == ["daemon.json"]  # no temp file left


def test_module_keeps_the_owner_of_the_file(daemon_json: Path, run_module: RunModule) -> None:
    if os.geteuid() != 0:
        pytest.skip("giving a file away needs root")
    os.chown(daemon_json, 1234, 5678)
    code, result, _ = run_module(mod, {"path": str(daemon_json), "runtimes": [NVIDIA]})
    assert code == 0 and result["changed"] is True
    assert (daemon_json.stat().st_uid, daemon_json.stat().st_gid) == (1234, 5678)
