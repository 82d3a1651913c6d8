"""compose_project: the compose engine's files, run for real through ansible-playbook.

Each test is one ansible-playbook run on localhost (local connection, this venv's python) whose
tasks call the module, with an ``ansible.builtin.find`` between calls where a test needs the
state in between (checksum, inode, mtime, mode of each file). The results come back from the ``ansible.posix.json`` callback,
by task name; the diff test reads the default callback's text, as an admin sees it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
MODULE = "myia.genai_stack.compose_project"

SECRET = "Sup3r-s3cret-API-value-4f1d"
NEW_SECRET = "An0ther-s3cret-API-value-88e2"
MODEL = "model-name-value-7c"
TOKEN = "hf_token-value-0b3a"
ENV_A = f"# managed\nAPI_KEY={SECRET}\nMODEL={MODEL}\n"
ENV_A2 = f"# managed\nAPI_KEY={NEW_SECRET}\nMODEL={MODEL}\n"
ENV_B = f"HF_TOKEN={TOKEN}\n"
COMPOSE = "services:\n  web:\n    image: busybox:1.36\n    env_file: [a.env, b.env]\n"
COMPOSE2 = "services:\n  web:\n    image: busybox:1.37\n    env_file: [a.env, b.env]\n"
FILES = ["a.env", "b.env", "compose.yaml"]


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def sha256sums(files: dict[str, str | bytes]) -> str:
    """A SHA256SUMS as sha256sum writes it."""
    return "".join(
        f"{hashlib.sha256(c.encode() if isinstance(c, str) else c).hexdigest()}  {name}\n"
        for name, c in sorted(files.items())
    )


def sha256sum_check(directory: Path) -> None:
    """An admin checks a snapshot by hand: sha256sum -c SHA256SUMS."""
    done = subprocess.run(
        ["sha256sum", "--check", "--strict", "SHA256SUMS"],
        cwd=directory,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


class Bed:
    """A project under tmp_path and the tasks that act on it."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.proj = tmp / "proj"
        self.data = tmp / "data"
        self.snap = self.proj / ".previous"
        self.directories = {str(self.data): "0711", str(self.data / "models"): "0755"}

    def args(self, **change: Any) -> dict[str, Any]:
        return {
            "project_dir": str(self.proj),
            "directories": self.directories,
            "env_files": {"a.env": ENV_A, "b.env": ENV_B},
            "compose": COMPOSE,
        } | change

    def project(self, name: str, check: bool = False, diff: bool = False, **args: Any) -> dict:
        """A call of the module; a name starting with "refused" may fail (the play goes on)."""
        task: dict[str, Any] = {"name": name, MODULE: args}
        if name.startswith("refused"):
            task["ignore_errors"] = True
        if check:
            task["check_mode"] = True
        if diff:
            task["diff"] = True
        return task

    def present(self, name: str, check: bool = False, diff: bool = False, **change: Any) -> dict:
        return self.project(name, check, diff, **self.args(**change))

    def snapshot(self, name: str, check: bool = False) -> dict:
        return self.project(
            name, check, project_dir=str(self.proj), state="snapshot", snapshot_dir=str(self.snap)
        )

    def restored(self, name: str, check: bool = False, snap: Path | None = None) -> dict:
        return self.project(
            name,
            check,
            project_dir=str(self.proj),
            state="restored",
            snapshot_dir=str(snap or self.snap),
        )

    def files(self, name: str, directory: Path | None = None) -> dict:
        """What a directory holds then (one task, cheaper than a stat per file)."""
        return {
            "name": name,
            "ansible.builtin.find": {
                "paths": str(directory or self.proj),
                "hidden": True,
                "file_type": "any",
                "get_checksum": True,
            },
        }

    def file(self, name: str, path: Path, **args: Any) -> dict:
        return {"name": name, "ansible.builtin.file": {"path": str(path), **args}}

    def play(
        self, *tasks: dict | list[dict], callback: str = "ansible.posix.json", flags: tuple = ()
    ) -> tuple[dict[str, dict[str, Any]], subprocess.CompletedProcess[str]]:
        flat = [t for item in tasks for t in (item if isinstance(item, list) else [item])]
        playbook = self.tmp / "play.yml"
        playbook.write_text(
            yaml.safe_dump(
                [
                    {
                        "hosts": "localhost",
                        "gather_facts": False,
                        "vars": {
                            "ansible_connection": "local",
                            "ansible_python_interpreter": sys.executable,
                        },
                        "tasks": flat,
                    }
                ]
            )
        )
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_STDOUT_CALLBACK": callback,
            "ANSIBLE_NOCOLOR": "1",
        }
        done = subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook), *flags],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if callback != "ansible.posix.json":
            return {}, done
        report = json.loads(done.stdout)
        results = {t["task"]["name"]: t["hosts"]["localhost"] for t in report["plays"][0]["tasks"]}
        # a failure not expected stops the play: fewer results than tasks
        assert list(results) == [t["name"] for t in flat], done.stdout + done.stderr
        return results, done

    def listing(self, directory: Path | None = None) -> list[str]:
        return sorted(os.listdir(directory or self.proj))


@pytest.fixture
def bed(tmp_path: Path) -> Bed:
    return Bed(tmp_path)


def seen(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """A find result by file name: the stat of each (checksum, inode, mtime, mode...)."""
    return {Path(f["path"]).name: f for f in result["files"]}


def ident(found: dict[str, Any]) -> tuple[Any, ...]:
    """What stays the same while a file is not touched: bytes, inode, mtime, mode."""
    return (found["checksum"], found["inode"], found["mtime"], found["mode"])


def ok(result: dict[str, Any]) -> dict[str, Any]:
    assert not result.get("failed"), result
    return result


def test_present_creates_the_project_then_changes_nothing_then_only_the_changed_file(
    bed: Bed,
) -> None:
    results, done = bed.play(
        bed.present("first"),
        bed.files("before"),
        bed.present("again"),
        bed.present("new key", env_files={"a.env": ENV_A2, "b.env": ENV_B}),
        bed.files("after"),
    )
    assert done.returncode == 0, done.stdout
    first = ok(results["first"])
    assert first["changed"] is True
    assert first["written"] == FILES
    assert first["created_directories"] == [str(bed.proj), str(bed.data), str(bed.data / "models")]
    assert mode(bed.proj) == 0o750
    assert (mode(bed.data), mode(bed.data / "models")) == (0o711, 0o755)

    again = ok(results["again"])
    assert (again["changed"], again["written"], again["created_directories"]) == (False, [], [])

    new_key = ok(results["new key"])
    assert (new_key["changed"], new_key["written"], new_key["created_directories"]) == (
        True,
        ["a.env"],
        [],
    )
    before, after = seen(results["before"]), seen(results["after"])
    assert sorted(before) == sorted(after) == FILES
    assert before["a.env"]["checksum"] == sha1(ENV_A)
    assert after["a.env"]["checksum"] == sha1(ENV_A2)
    assert after["a.env"]["inode"] != before["a.env"]["inode"]  # a new file renamed over it
    assert ident(after["b.env"]) == ident(before["b.env"])
    assert ident(after["compose.yaml"]) == ident(before["compose.yaml"])

    assert (bed.proj / "a.env").read_text() == ENV_A2
    assert (bed.proj / "b.env").read_text() == ENV_B
    assert (bed.proj / "compose.yaml").read_text() == COMPOSE
    assert [mode(bed.proj / f) for f in FILES] == [0o600, 0o600, 0o644]
    assert bed.listing() == FILES  # no temporary file left


def test_present_puts_modes_back_on_unchanged_files(bed: Bed) -> None:
    results, _ = bed.play(
        bed.present("first"),
        bed.file("loosen a.env", bed.proj / "a.env", mode="0644"),
        bed.file("tighten compose", bed.proj / "compose.yaml", mode="0600"),
        bed.file("open project", bed.proj, mode="0755"),
        bed.file("open models", bed.data / "models", mode="0700"),
        bed.files("before"),
        bed.present("modes"),
        bed.files("after"),
        bed.present("again"),
    )
    modes = ok(results["modes"])
    assert (modes["changed"], modes["written"], modes["created_directories"]) == (True, [], [])
    before, after = seen(results["before"]), seen(results["after"])
    assert [before[f]["mode"] for f in FILES] == ["0644", "0600", "0600"]
    assert [after[f]["mode"] for f in FILES] == ["0600", "0600", "0644"]
    assert [after[f]["inode"] for f in FILES] == [before[f]["inode"] for f in FILES]
    assert (mode(bed.proj), mode(bed.data / "models")) == (0o750, 0o755)
    assert ok(results["again"])["changed"] is False


def test_check_mode_on_a_fresh_directory_writes_nothing_and_reports_every_file(bed: Bed) -> None:
    results, done = bed.play(bed.present("check", check=True, diff=True))
    assert done.returncode == 0, done.stdout
    check = ok(results["check"])
    assert check["changed"] is True
    assert check["written"] == FILES
    assert check["created_directories"] == [str(bed.proj), str(bed.data), str(bed.data / "models")]
    assert [(d["before"], d["after"]) for d in check["diff"]] == [
        ("(absent)\n", "(directory)\n"),
        ("(absent)\n", "(directory)\n"),
        ("(absent)\n", "(directory)\n"),
        ("", "# managed\nAPI_KEY=***\nMODEL=***\n"),
        ("", "HF_TOKEN=***\n"),
        ("", COMPOSE),
    ]
    assert bed.listing(bed.tmp) == ["play.yml"]  # nothing written, no directory created


def test_check_mode_on_an_existing_project_reports_the_change_and_keeps_the_bytes(
    bed: Bed,
) -> None:
    new_dir = bed.data / "new"
    results, _ = bed.play(
        bed.present("first"),
        bed.files("before"),
        bed.present(
            "check",
            check=True,
            diff=True,
            env_files={"a.env": ENV_A2, "b.env": ENV_B},
            compose=COMPOSE2,
            directories={**bed.directories, str(new_dir): "0755"},
        ),
        bed.files("after"),
    )
    check = ok(results["check"])
    assert check["changed"] is True
    assert check["written"] == ["a.env", "compose.yaml"]
    assert check["created_directories"] == [str(new_dir)]
    assert check["diff"] == [
        {
            "before_header": str(new_dir),
            "before": "(absent)\n",
            "after_header": str(new_dir),
            "after": "(directory)\n",
        },
        {
            "before_header": str(bed.proj / "a.env"),
            "before": "# managed\nAPI_KEY=***\nMODEL=***\n",
            "after_header": str(bed.proj / "a.env"),
            "after": "# managed\nAPI_KEY=*** (changed)\nMODEL=***\n",
        },
        {
            "before_header": str(bed.proj / "compose.yaml"),
            "before": COMPOSE,
            "after_header": str(bed.proj / "compose.yaml"),
            "after": COMPOSE2,
        },
    ]
    before, after = seen(results["before"]), seen(results["after"])
    assert sorted(after) == FILES
    assert [ident(after[f]) for f in FILES] == [ident(before[f]) for f in FILES]
    assert not new_dir.exists()
    assert (bed.proj / "a.env").read_text() == ENV_A
    assert (bed.proj / "compose.yaml").read_text() == COMPOSE


def test_the_diff_never_shows_an_env_value(bed: Bed) -> None:
    """The whole output an admin sees with -v --diff: names, marks and the compose text."""
    _, done = bed.play(
        bed.present("Write the project", diff=True),
        bed.present(
            "Change the key and the image",
            diff=True,
            env_files={"a.env": ENV_A2, "b.env": ENV_B},
            compose=COMPOSE2,
        ),
        callback="ansible.builtin.default",
        flags=("-v", "--diff"),
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    for value in (SECRET, NEW_SECRET, MODEL, TOKEN):
        assert value not in output
    lines = output.splitlines()
    # the first run: every key of each new file, none marked
    assert lines.count("+API_KEY=***") == 1 and lines.count("+HF_TOKEN=***") == 1
    assert lines.count("+MODEL=***") == 1
    # the second: the changed key marked, the unchanged one as context
    assert lines.count("-API_KEY=***") == 1
    assert lines.count("+API_KEY=*** (changed)") == 1
    assert lines.count(" MODEL=***") == 1
    assert "-MODEL=***" not in lines and "+MODEL=*** (changed)" not in lines
    # the compose file's text
    assert "+    image: busybox:1.36" in lines
    assert "-    image: busybox:1.36" in lines and "+    image: busybox:1.37" in lines


REFUSED = {
    "schema": 'services: {a: {image: busybox, ports: "x"}}\n',
    "yaml": "services: [\n  a: {image: busybox\n",
}


@pytest.mark.parametrize("kind", sorted(REFUSED))
def test_a_compose_file_docker_refuses_is_never_written(bed: Bed, kind: str) -> None:
    results, _ = bed.play(
        bed.present("first"),
        bed.files("before"),
        bed.present("refused", compose=REFUSED[kind]),
        bed.files("after"),
        bed.present("unchecked", compose=REFUSED[kind], validate=False),
    )
    refused = results["refused"]
    assert refused["failed"] is True
    prefix = f"docker compose refuses the new {bed.proj / 'compose.yaml'}, kept the old one: "
    assert refused["msg"].startswith(prefix), refused["msg"]
    if kind == "schema":
        assert re.fullmatch(
            rf"validating {re.escape(str(bed.proj))}/\.compose\.yaml\.\w+\.tmp: "
            r"services\.a\.ports must be a list",
            refused["msg"][len(prefix) :],
        ), refused["msg"]
    else:
        assert refused["msg"][len(prefix) :].startswith("yaml: "), refused["msg"]
    before, after = seen(results["before"])["compose.yaml"], seen(results["after"])["compose.yaml"]
    assert after["checksum"] == sha1(COMPOSE)
    assert ident(after) == ident(before)
    # validate=false writes what docker refused: the check above was the validation
    unchecked = ok(results["unchecked"])
    assert (unchecked["changed"], unchecked["written"]) == (True, ["compose.yaml"])
    assert (bed.proj / "compose.yaml").read_text() == REFUSED[kind]
    assert bed.listing() == FILES  # no temporary file left


def test_snapshot_keeps_exactly_the_deployed_files(bed: Bed) -> None:
    results, _ = bed.play(
        bed.present("first"),
        bed.file("not a project file", bed.proj / "notes.txt", state="touch"),
        bed.file("a directory matching *.env", bed.proj / "dir.env", state="directory"),
        bed.snapshot("check", check=True),
        bed.files("project after check"),
        bed.snapshot("snapshot"),
        bed.files("kept", bed.snap),
        bed.snapshot("again"),
        bed.present("compose changes", compose=COMPOSE2),
        bed.file("a.env leaves", bed.proj / "a.env", state="absent"),
        bed.snapshot("follows"),
        bed.snapshot("follows again"),
    )
    check = ok(results["check"])
    assert (check["changed"], check["kept"], check["removed"]) == (True, FILES, [])
    assert ".previous" not in seen(results["project after check"])

    snapshot = ok(results["snapshot"])
    assert (snapshot["changed"], snapshot["kept"], snapshot["removed"]) == (True, FILES, [])
    kept = seen(results["kept"])
    assert sorted(kept) == ["SHA256SUMS", *FILES]
    assert [kept[f]["checksum"] for f in FILES] == [sha1(ENV_A), sha1(ENV_B), sha1(COMPOSE)]
    assert [kept[f]["mode"] for f in FILES] == ["0600", "0600", "0644"]
    assert kept["SHA256SUMS"]["mode"] == "0600"

    again = ok(results["again"])
    assert (again["changed"], again["kept"], again["removed"]) == (False, FILES, [])

    follows = ok(results["follows"])
    assert (follows["changed"], follows["kept"], follows["removed"]) == (
        True,
        ["b.env", "compose.yaml"],
        ["a.env"],
    )
    follows_again = ok(results["follows again"])
    assert (follows_again["changed"], follows_again["removed"]) == (False, [])

    assert mode(bed.snap) == 0o700
    assert bed.listing(bed.snap) == ["SHA256SUMS", "b.env", "compose.yaml"]
    assert (bed.snap / "SHA256SUMS").read_text() == sha256sums(
        {"b.env": ENV_B, "compose.yaml": COMPOSE2}
    )
    sha256sum_check(bed.snap)
    assert (bed.snap / "b.env").read_text() == ENV_B
    assert (bed.snap / "compose.yaml").read_text() == COMPOSE2
    assert (mode(bed.snap / "b.env"), mode(bed.snap / "compose.yaml")) == (0o600, 0o644)


def test_restored_puts_the_snapshot_back_and_removes_what_it_did_not_hold(bed: Bed) -> None:
    results, _ = bed.play(
        bed.present("v1"),
        bed.snapshot("snapshot"),
        bed.present(
            "v2",
            env_files={"a.env": ENV_A2, "b.env": ENV_B, "c.env": "C=1\n"},
            compose=COMPOSE2,
        ),
        bed.file("not a project file", bed.proj / "notes.txt", state="touch"),
        bed.file("b.env loosened", bed.proj / "b.env", mode="0644"),
        bed.files("before check"),
        bed.restored("check", check=True),
        bed.files("after check"),
        bed.restored("restore"),
        bed.restored("again"),
    )
    check = ok(results["check"])
    assert (check["changed"], check["restored"], check["kept"], check["removed"]) == (
        True,
        True,
        FILES,
        ["c.env"],
    )
    before_check, after_check = seen(results["before check"]), seen(results["after check"])
    assert sorted(after_check) == sorted([".previous", *FILES, "c.env", "notes.txt"])
    assert {f: ident(after_check[f]) for f in after_check if f != ".previous"} == {
        f: ident(before_check[f]) for f in before_check if f != ".previous"
    }

    restore = ok(results["restore"])
    assert (restore["changed"], restore["restored"], restore["kept"], restore["removed"]) == (
        True,
        True,
        FILES,
        ["c.env"],
    )
    again = ok(results["again"])
    assert (again["changed"], again["restored"], again["removed"]) == (False, True, [])

    assert bed.listing() == [".previous", *FILES, "notes.txt"]  # notes.txt is no project file
    assert (bed.proj / "a.env").read_text() == ENV_A
    assert (bed.proj / "b.env").read_text() == ENV_B
    assert (bed.proj / "compose.yaml").read_text() == COMPOSE
    assert [mode(bed.proj / f) for f in FILES] == [0o600, 0o600, 0o644]


def test_secret_files_belong_to_the_container_user_in_the_project_and_its_snapshot(
    bed: Bed,
) -> None:
    """A credential the container reads from a file: 0600, owned by the container's uid, never
    in the diff; the snapshot and a restore keep that owner (else the service cannot read it)."""
    secret = {"turbo.gradio-auth": "forge:s3cret=value\n"}
    patterns = ["compose.yaml", "*.env", "*.gradio-auth"]
    results, _ = bed.play(
        bed.present("v1", diff=True, secret_files=secret, secret_files_owner="1000",
                    patterns=patterns),
        bed.project("snapshot", project_dir=str(bed.proj), state="snapshot",
                    snapshot_dir=str(bed.snap), patterns=patterns),
        bed.present("v2", secret_files={"turbo.gradio-auth": "forge:other\n"},
                    secret_files_owner="1000", patterns=patterns),
        bed.project("restore", project_dir=str(bed.proj), state="restored",
                    snapshot_dir=str(bed.snap), patterns=patterns),
    )  # fmt: skip
    v1 = ok(results["v1"])
    assert "turbo.gradio-auth" in v1["written"]
    assert "s3cret" not in json.dumps(v1["diff"])
    assert ok(results["snapshot"])["kept"] == [*FILES[:2], "compose.yaml", "turbo.gradio-auth"]
    assert ok(results["restore"])["changed"] is True
    for path in (bed.proj / "turbo.gradio-auth", bed.snap / "turbo.gradio-auth"):
        assert (mode(path), path.stat().st_uid, path.stat().st_gid) == (0o600, 1000, 1000), path
        assert path.read_text() == "forge:s3cret=value\n"


def test_restored_without_a_snapshot_changes_nothing(bed: Bed) -> None:
    empty = bed.tmp / "empty"
    results, _ = bed.play(
        bed.present("v1"),
        bed.file("an empty snapshot directory", empty, state="directory"),
        bed.files("before"),
        bed.restored("no snapshot"),
        bed.restored("empty snapshot", snap=empty),
        bed.files("after"),
    )
    for name in ("no snapshot", "empty snapshot"):
        result = ok(results[name])
        assert (result["changed"], result["restored"], result["kept"], result["removed"]) == (
            False,
            False,
            [],
            [],
        )
    before, after = seen(results["before"]), seen(results["after"])
    assert sorted(after) == FILES
    assert [ident(after[f]) for f in FILES] == [ident(before[f]) for f in FILES]
    assert not bed.snap.exists()


BAD_NAMES: list[tuple[str, Any]] = [
    ("sub/x.env", "X=1\n"),
    ("../x.env", "X=1\n"),
    ("/etc/x.env", "X=1\n"),
    ("", "X=1\n"),
    (".", "X=1\n"),
    ("..", "X=1\n"),
    ("x.env", 5),
]


def test_an_env_file_that_is_no_plain_file_name_is_refused(bed: Bed) -> None:
    results, _ = bed.play(
        *(
            bed.present(f"refused {i}", env_files={"ok.env": "A=1\n", name: content})
            for i, (name, content) in enumerate(BAD_NAMES)
        )
    )
    for i, (name, _) in enumerate(BAD_NAMES):
        result = results[f"refused {i}"]
        assert result["failed"] is True
        assert result["msg"] == (
            f"env_files: {name!r} must be a plain file name inside project_dir, with text"
        )
    assert bed.listing(bed.tmp) == ["play.yml"]  # refused before anything was created


def test_ready_and_snapshot_current_say_when_up_and_the_snapshot_can_be_skipped(
    bed: Bed, request: pytest.FixtureRequest
) -> None:
    """`ready`: nothing written and every service running (healthy where checked), from the real
    docker; `snapshot_current`: the snapshot already holds exactly the project's files."""
    name = f"genai-ready-{os.getpid()}"
    compose = (
        f"name: {name}\nservices:\n  idle:\n    image: local/debian:12\n"
        "    command: [sleep, infinity]\n    network_mode: none\n    env_file: [a.env, b.env]\n"
    )
    up = ["docker", "compose", "-f", str(bed.proj / "compose.yaml")]
    request.addfinalizer(
        lambda: subprocess.run([*up, "down", "-t", "0"], capture_output=True, check=False)
    )
    args = bed.args(compose=compose, snapshot_dir=str(bed.snap), report_ready=True)
    results, done = bed.play(
        bed.project("first", **args),
        bed.snapshot("keep"),
        bed.project("no container yet", **args),
    )
    assert done.returncode == 0, done.stdout
    first = ok(results["first"])
    assert (first["ready"], first["snapshot_current"]) == (False, False)  # written
    unstarted = ok(results["no container yet"])
    assert (unstarted["written"], unstarted["ready"], unstarted["snapshot_current"]) == (
        [],
        False,
        True,
    )

    subprocess.run([*up, "up", "-d"], capture_output=True, check=True)
    results, _ = bed.play(bed.project("running", **args))
    assert (results["running"]["ready"], results["running"]["snapshot_current"]) == (True, True)

    subprocess.run([*up, "stop", "-t", "0"], capture_output=True, check=True)
    (bed.snap / "b.env").chmod(0o644)
    results, _ = bed.play(bed.project("stopped", **args))
    assert (results["stopped"]["ready"], results["stopped"]["snapshot_current"]) == (False, False)

    results, _ = bed.play(
        bed.project("changed", **(args | {"env_files": {"a.env": ENV_A2, "b.env": ENV_B}}))
    )
    assert (results["changed"]["written"], results["changed"]["ready"]) == (["a.env"], False)


# A snapshot damaged on disk (issue #25: one file of vllm/.previous/ overwritten with garbage)
GARBAGE = b"\xb0\x8f\x00\xff garbage"
REFUSED_TAIL = (
    " keeps its current files. The snapshot is replaced once a version of the project is proven"
    " healthy again (apply good settings); until then a restore refuses it."
)


def put(path: Path, content: bytes | str | None) -> None:
    """Damage a file of a snapshot: new bytes, or (None) gone."""
    if content is None:
        path.unlink(missing_ok=True)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)


# how the snapshot is damaged (file name to bytes, None: removed) -> what the refusal says of it
DAMAGED: dict[str, tuple[dict[str, bytes | str | None], str]] = {
    "garbage compose": (
        {"compose.yaml": GARBAGE},
        "{snap}/compose.yaml is not UTF-8 text (byte 0xb0 at position 0)",
    ),
    "garbage env and compose": (
        {"a.env": b"A=1\n" + GARBAGE, "compose.yaml": GARBAGE},
        "{snap}/a.env is not UTF-8 text (byte 0xb0 at position 4); "
        "{snap}/compose.yaml is not UTF-8 text (byte 0xb0 at position 0)",
    ),
    "edited env": (
        {"b.env": "HF_TOKEN=\n"},
        "{snap}/b.env does not match its SHA-256 in {snap}/SHA256SUMS (changed since it was kept)",
    ),
    "lost env": ({"a.env": None}, "{snap}/a.env is listed in {snap}/SHA256SUMS but missing"),
    "stray env": ({"c.env": "C=1\n"}, "{snap}/c.env is not listed in {snap}/SHA256SUMS"),
    "garbage checksums": (
        {"SHA256SUMS": GARBAGE},
        "{snap}/SHA256SUMS is not a list of '<sha256>  <file name>' lines",
    ),
    # a snapshot kept before the checksums: checked by content
    "old, garbage env": (
        {"SHA256SUMS": None, "a.env": GARBAGE},
        "{snap}/a.env is not UTF-8 text (byte 0xb0 at position 0)",
    ),
    "old, compose docker refuses": (
        {"SHA256SUMS": None, "compose.yaml": REFUSED["schema"]},
        "docker compose refuses {snap}/compose.yaml: ",
    ),
}


def test_restored_refuses_a_damaged_snapshot_naming_the_file_and_changes_nothing(
    bed: Bed,
) -> None:
    """Every file is checked before any is put back: one that fails, and nothing is."""
    v2 = {"env_files": {"a.env": ENV_A2, "b.env": ENV_B}, "compose": COMPOSE2}
    results, _ = bed.play(bed.present("v1"), bed.snapshot("snapshot"), bed.present("v2", **v2))
    assert ok(results["snapshot"])["changed"] is True
    snaps = {}
    for case, (files, _) in DAMAGED.items():
        snaps[case] = bed.tmp / "snaps" / case.replace(" ", "-").replace(",", "")
        shutil.copytree(bed.snap, snaps[case])  # modes kept
        for name, content in files.items():
            put(snaps[case] / name, content)
    intact = bed.tmp / "snaps" / "intact"
    shutil.copytree(bed.snap, intact)

    results, _ = bed.play(
        bed.files("before"),
        *(bed.restored(f"refused {case}", snap=snap) for case, snap in snaps.items()),
        bed.restored("refused in check mode", check=True, snap=snaps["garbage compose"]),
        bed.files("after"),
        bed.restored("intact", snap=intact),
    )
    for case, (_, said) in DAMAGED.items():
        result = results[f"refused {case}"]
        snap = snaps[case]
        prefix = f"the snapshot {snap} cannot be trusted: " + said.format(snap=snap)
        assert result["msg"].startswith(prefix), result["msg"]
        assert result["msg"].endswith(f". Nothing was put back: {bed.proj}{REFUSED_TAIL}")
        assert (result["failed"], result["changed"], result["restored"]) == (True, False, False)
    assert results["refused in check mode"]["msg"] == results["refused garbage compose"]["msg"]
    # nothing of the project changed: the files of v2, not one rewritten
    before, after = seen(results["before"]), seen(results["after"])
    assert sorted(after) == [".previous", *FILES]
    assert [ident(after[f]) for f in FILES] == [ident(before[f]) for f in FILES]
    assert (after["a.env"]["checksum"], after["compose.yaml"]["checksum"]) == (
        sha1(ENV_A2),
        sha1(COMPOSE2),
    )
    # the same snapshot, undamaged, is put back
    assert ok(results["intact"])["restored"] is True
    assert (bed.proj / "a.env").read_text() == ENV_A
    assert (bed.proj / "compose.yaml").read_text() == COMPOSE


def test_a_damaged_snapshot_is_replaced_by_the_next_one(bed: Bed) -> None:
    """A damaged snapshot (and a damaged project file) blocks nothing: present rewrites the
    project file, says the snapshot is not current, and the next snapshot replaces it."""
    results, _ = bed.play(bed.present("v1"), bed.snapshot("snapshot"))
    ok(results["snapshot"])
    put(bed.snap / "compose.yaml", GARBAGE)
    put(bed.snap / "a.env", GARBAGE)
    put(bed.proj / "b.env", b"HF_TOKEN=" + GARBAGE)
    args = bed.args(snapshot_dir=str(bed.snap))
    results, done = bed.play(
        bed.project("present", diff=True, **args),
        bed.project("unchanged", **args),
        bed.snapshot("check", check=True),
        bed.files("kept before", bed.snap),
        bed.snapshot("snapshot"),
        bed.project("current", **args),
        bed.snapshot("again"),
        bed.restored("restore"),
    )
    assert done.returncode == 0, done.stdout
    present = ok(results["present"])
    assert (present["written"], present["snapshot_current"]) == (["b.env"], False)
    assert present["diff"][-1]["after"] == "HF_TOKEN=*** (changed)\n"
    unchanged = ok(results["unchanged"])
    assert (unchanged["changed"], unchanged["written"], unchanged["snapshot_current"]) == (
        False,
        [],
        False,
    )
    check = ok(results["check"])
    assert (check["changed"], check["kept"]) == (True, FILES)
    kept_before = seen(results["kept before"])
    assert kept_before["compose.yaml"]["checksum"] == hashlib.sha1(GARBAGE).hexdigest()
    snapshot = ok(results["snapshot"])
    assert (snapshot["changed"], snapshot["kept"], snapshot["removed"]) == (True, FILES, [])
    assert ok(results["current"])["snapshot_current"] is True
    assert ok(results["again"])["changed"] is False
    restore = ok(results["restore"])
    assert (restore["changed"], restore["restored"]) == (False, True)
    for name in FILES:
        assert (bed.snap / name).read_bytes() == (bed.proj / name).read_bytes(), name
    assert (bed.proj / "b.env").read_text() == ENV_B
    contents = {"a.env": ENV_A, "b.env": ENV_B, "compose.yaml": COMPOSE}
    assert (bed.snap / "SHA256SUMS").read_text() == sha256sums(contents)
    sha256sum_check(bed.snap)


def test_a_snapshot_without_checksums_is_restored_then_completed(bed: Bed) -> None:
    """A snapshot kept before SHA256SUMS: checked by content and put back; not current, so the
    next snapshot adds its SHA256SUMS (the files themselves not rewritten)."""
    args = bed.args(snapshot_dir=str(bed.snap))
    results, done = bed.play(
        bed.present("v1"),
        bed.snapshot("snapshot"),
        bed.file("an old snapshot", bed.snap / "SHA256SUMS", state="absent"),
        bed.present("v2", compose=COMPOSE2),
        bed.restored("restore"),
        bed.project("not current", **args),
        bed.files("kept before", bed.snap),
        bed.snapshot("completed"),
        bed.files("kept after", bed.snap),
        bed.project("current", **args),
    )
    assert done.returncode == 0, done.stdout
    restore = ok(results["restore"])
    assert (restore["changed"], restore["restored"], restore["kept"]) == (True, True, FILES)
    assert (bed.proj / "compose.yaml").read_text() == COMPOSE
    not_current = ok(results["not current"])
    assert (not_current["written"], not_current["snapshot_current"]) == ([], False)
    completed = ok(results["completed"])
    assert (completed["changed"], completed["kept"]) == (True, FILES)
    before, after = seen(results["kept before"]), seen(results["kept after"])
    assert [ident(after[f]) for f in FILES] == [ident(before[f]) for f in FILES]
    assert ok(results["current"])["snapshot_current"] is True
    sha256sum_check(bed.snap)
