"""The genai-stack CLI: one line per event, exit code = the playbook's rc."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from genai_stack.cli import EXIT_BUSY, main
from genai_stack.driver import Driver, RunRequest, stop_run_processes
from genai_stack.project import Project

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
PLAYBOOKS = HERE / "playbooks"
#: the bound of a wait for an outcome: only a hang reaches it, never a loaded machine (how long
#: a cancel takes is bench/cancel_bench.py's figure, not a test's)
OUTCOME_S = 240


def cli(tmp_path: Path, *args: str) -> list[str]:
    return [
        "--project", str(ROOT), "--state-dir", str(tmp_path / "state"),
        "-i", str(PLAYBOOKS / "hosts.yml"), "--color", "never", *args,
    ]  # fmt: skip


@contextlib.contextmanager
def killed_after(proc: subprocess.Popen[str], seconds: float) -> Iterator[None]:
    """Kill ``proc`` should the block outlast ``seconds``."""
    timer = threading.Timer(seconds, proc.kill)
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def interpreter() -> list[str]:
    return ["-e", f"ansible_python_interpreter={sys.executable}"]


def test_run_prints_one_line_per_event_and_exits_with_rc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(cli(tmp_path, "run", str(PLAYBOOKS / "ok.yml"), "-l", "node-a", *interpreter()))
    out = capsys.readouterr().out
    assert rc == 0
    lines = [line.split("s  ", 1)[1] for line in out.splitlines() if "s  " in line[:12]]
    assert lines[:3] == [
        "PLAYBOOK tests/unit/driver/playbooks/ok.yml",
        "PLAY A run that succeeds",
        "TASK Say hello",
    ]
    assert "ok: [node-a] Say hello" in lines
    assert "changed: [node-a] Change something" in lines
    assert "skipped: [node-a] Skip on purpose" in lines
    assert any(line.startswith("RECAP node-a: ok=3 changed=1") for line in lines)
    assert "hello from node-a" in out  # a debug task's message under its line
    assert "successful (rc=0)" in out


def test_failed_run_exits_with_the_playbook_rc(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(cli(tmp_path, "run", str(PLAYBOOKS / "fail.yml"), *interpreter()))
    out = capsys.readouterr().out
    assert rc == 2
    assert "failed: [node-b] Break node-b => node-b is broken: disk full on /var" in out
    assert "failed (ignored): [node-a] Fail but carry on" in out
    assert "failed (rc=2)" in out


def test_check_mode_and_secret_var_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "cli-secret-0d9f8e7c6b5a"
    monkeypatch.setenv("E2E_TOKEN", secret)
    rc = main(
        cli(tmp_path, "run", str(PLAYBOOKS / "secret.yml"), "--check", *interpreter(),
            "-e", "plain_value=shown", "--secret-var", "secret_token=env:E2E_TOKEN")
    )  # fmt: skip
    out = capsys.readouterr().out
    assert rc == 0, out
    assert secret not in out and "the token is ********" in out
    assert f"plain=shown length={len(secret)}" in out
    for path in (tmp_path / "state").rglob("*"):
        if path.is_file():
            assert secret.encode() not in path.read_bytes(), path
    command = next((tmp_path / "state" / "artifacts").glob("*/command"))
    assert "--check" in json.loads(command.read_text())["command"]


def test_secret_values_are_refused_on_the_command_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(cli(tmp_path, "run", "ok", "--secret-var", "token=hunter2hunter2"))
    assert rc == 2 and "not a value" in capsys.readouterr().err


def test_busy_host_exits_75(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    driver = Driver(Project(ROOT), tmp_path / "state")
    request = RunRequest(str(PLAYBOOKS / "ok.yml"), user="someone-else")
    with driver.lock_hosts(["node-a"], "20260101T000000-000000", request):
        rc = main(cli(tmp_path, "run", str(PLAYBOOKS / "ok.yml"), "-l", "node-a", *interpreter()))
    assert rc == EXIT_BUSY
    assert "host node-a is busy: run 20260101T000000-000000" in capsys.readouterr().err


def test_unknown_playbook_and_listing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(cli(tmp_path, "run", "nope")) == 2
    assert "unknown playbook 'nope'" in capsys.readouterr().err
    assert main(cli(tmp_path, "playbooks")) == 0
    out = capsys.readouterr().out
    assert "site             site.yml  (genai-stack deploy)" in out
    assert "stack_model      playbooks/stack_model.yml" in out


def test_status_reads_the_demo_inventory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rc = main(["--project", str(ROOT), "--state-dir", str(tmp_path),
               "-i", "inventories/demo/hosts.yml", "status", "--json", "--no-health"])  # fmt: skip
    assert rc == 0
    data = json.loads(capsys.readouterr().out)
    host = next(h for h in data["hosts"] if h["name"] == "gpu-host")
    assert {s["name"] for s in host["services"]} >= {"qwen3-micro", "qwen3-mini", "qwen3-medium"}
    assert host["local"] is True and host["gpus"] and host["waves"]
    assert all("api_key" not in json.dumps(s) for s in host["services"])


def test_panel_set_password(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough password\n"))
    secrets = tmp_path / "secrets"
    rc = main(["--project", str(ROOT), "panel", "--set-password", "--user", "ops",
               "--password-stdin", "--secrets-dir", str(secrets)])  # fmt: skip
    assert rc == 0
    path = secrets / "admin.bcrypt"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    user, hashed = path.read_text().strip().split(":", 1)
    assert user == "ops" and hashed.startswith("$2b$")
    assert "a long enough password" not in path.read_text()
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["--project", str(ROOT), "panel", "--set-password", "--password-stdin",
                 "--secrets-dir", str(secrets)]) == 2  # fmt: skip


def test_ctrl_c_cancels_the_run(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "genai_stack",
         *cli(tmp_path, "run", str(PLAYBOOKS / "sleep.yml"), *interpreter())],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    assert proc.stdout is not None
    out: list[str] = []
    try:
        with killed_after(proc, OUTCOME_S):  # until its long task has started
            for line in proc.stdout:
                out.append(line)
                if "TASK Wait a long time" in line:
                    break
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        with killed_after(proc, OUTCOME_S):  # until it has ended
            out.append(proc.stdout.read())
            proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        runs = [p for p in (tmp_path / "state" / "artifacts").glob("*") if p.is_dir()]
        left = {run.name: stop_run_processes(run.name) for run in runs}
    text = "".join(out)
    assert proc.returncode == 254, f"rc={proc.returncode} (-9: killed, no outcome)\n{text}"
    assert "canceled (rc=254)" in text and "canceled on request" in text
    assert len(runs) == 1 and left == {runs[0].name: []}, left  # no process of the run left
