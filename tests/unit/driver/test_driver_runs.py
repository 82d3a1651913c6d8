"""The driver against real ansible-runner runs of small local playbooks."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from genai_stack.driver import Driver, RunRequest, parse_list_hosts, run_processes
from genai_stack.events import EventKind, RunEvent
from genai_stack.locks import HostBusy
from genai_stack.project import Project, ProjectError

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
INVENTORY = HERE / "playbooks" / "hosts.yml"
MakeRequest = Callable[..., RunRequest]


def test_events_arrive_in_order_and_result_is_structured(
    driver: Driver, make_request: MakeRequest
) -> None:
    events: list[RunEvent] = []
    result = driver.run(make_request("ok"), on_event=events.append)

    assert result.status == "successful" and result.rc == 0 and result.ok
    assert result.failed_tasks == [] and result.error is None
    assert result.duration_s > 0
    assert sorted(result.hosts) == ["node-a", "node-b"]
    assert result.stats["node-a"].changed == 1 and result.stats["node-a"].skipped == 1
    assert result.stats["node-b"].ok == 3

    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    kinds = [e.kind for e in events]
    assert kinds[0] is EventKind.PLAYBOOK_START
    assert events[0].playbook == "tests/unit/driver/playbooks/ok.yml"
    assert kinds[1] is EventKind.PLAY_START and events[1].play == "A run that succeeds"
    assert kinds[-1] is EventKind.STATS and events[-1].stats is not None

    # each task starts before its host results, in playbook order
    tasks = [e.task for e in events if e.kind is EventKind.TASK_START]
    assert tasks == ["Say hello", "Report check mode", "Change something", "Skip on purpose"]
    for task in tasks:
        start = next(
            i for i, e in enumerate(events) if e.kind is EventKind.TASK_START and e.task == task
        )
        results = [i for i, e in enumerate(events) if e.host and e.task == task]
        assert len(results) == 2 and min(results) > start
    by_task = {(e.task, e.host): e for e in events if e.host}
    assert by_task[("Change something", "node-a")].kind is EventKind.CHANGED
    assert by_task[("Skip on purpose", "node-b")].kind is EventKind.SKIPPED
    assert by_task[("Say hello", "node-a")].message == "hello from node-a"
    assert by_task[("Report check mode", "node-a")].message == "check_mode=False"
    # events round-trip through plain dicts (JSON, SQLite)
    for event in events:
        assert RunEvent.from_dict(json.loads(json.dumps(event.to_dict()))) == event


def test_failed_tasks_are_reported_with_their_messages(
    driver: Driver, make_request: MakeRequest
) -> None:
    events: list[RunEvent] = []
    result = driver.run(make_request("fail"), on_event=events.append)

    assert result.status == "failed" and result.rc == 2 and not result.ok
    assert len(result.failed_tasks) == 1
    failed = result.failed_tasks[0]
    assert failed.host == "node-b" and failed.task == "Break node-b"
    assert failed.message == "node-b is broken: disk full on /var"
    assert failed.action == "ansible.builtin.fail" and not failed.unreachable
    assert result.stats["node-b"].failed == 1 and result.stats["node-a"].failed == 0
    assert result.stats["node-a"].ignored == 1
    ignored = [e for e in events if e.kind is EventKind.FAILED and e.ignored]
    assert {e.host for e in ignored} == {"node-a", "node-b"}
    assert all(e.message == "this failure is ignored" for e in ignored)
    assert "failed: [node-b] Break node-b => node-b is broken" in next(
        e.line() for e in events if e.kind is EventKind.FAILED and not e.ignored
    )


def test_limit_tags_and_check_mode_reach_ansible(driver: Driver, make_request: MakeRequest) -> None:
    events: list[RunEvent] = []
    result = driver.run(make_request("ok", limit="node-a", check=True), on_event=events.append)

    assert result.ok and list(result.stats) == ["node-a"] and result.hosts == ["node-a"]
    check = next(e for e in events if e.task == "Report check mode" and e.host)
    assert check.message == "check_mode=True"
    assert result.artifact_dir is not None
    command = json.loads((Path(result.artifact_dir) / "command").read_text())["command"]
    assert "--check" in command
    assert command[command.index("--limit") + 1] == "node-a"
    assert result.check is True and result.limit == "node-a"


def test_unknown_playbook_is_refused(driver: Driver, make_request: MakeRequest) -> None:
    with pytest.raises(ProjectError, match="unknown playbook 'nope'"):
        driver.start(RunRequest("nope"))


def test_syntax_error_is_reported(driver: Driver, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text("- hosts: all\n  tasks:\n    - ansible.builtin.nosuchmodule: {}\n")
    result = driver.run(RunRequest(str(broken), inventory=str(INVENTORY)), lock_hosts=False)
    assert result.status == "failed" and result.rc != 0
    assert result.error and "nosuchmodule" in result.error


def test_cancel_stops_a_long_pause_from_another_thread(
    driver: Driver, make_request: MakeRequest
) -> None:
    seen = threading.Event()

    def on_event(event: RunEvent) -> None:
        if event.kind is EventKind.TASK_START and event.task == "Wait a long time":
            seen.set()

    handle = driver.start(make_request("sleep"), on_event=on_event)
    assert seen.wait(60), "the pause task never started"
    time.sleep(0.5)
    # ansible-playbook and the worker running the pause, in a session of its own (setsid)
    running = run_processes(handle.run_id)
    assert len(running) >= 2 and len({os.getsid(p) for p in running}) >= 2, running
    started = time.monotonic()
    threading.Thread(target=handle.cancel).start()
    result = handle.wait(30)
    assert result is not None, "cancel did not stop the run"
    assert time.monotonic() - started < 10
    assert result.status == "canceled" and result.rc != 0
    assert result.error == "canceled on request"
    # every process of the run is gone (the worker outlived the killed ansible-playbook before),
    # and only then is the host free again
    assert run_processes(handle.run_id) == []
    assert driver.locks.holder("node-a:22") is None


def test_second_run_on_a_busy_host_is_refused(driver: Driver, make_request: MakeRequest) -> None:
    seen = threading.Event()
    handle = driver.start(
        make_request("sleep", user="alice"),
        on_event=lambda e: seen.set() if e.kind is EventKind.TASK_START else None,
    )
    try:
        assert seen.wait(60)
        with pytest.raises(HostBusy) as busy:
            driver.start(make_request("ok", limit="node-a"))
        assert busy.value.host == "node-a"
        assert handle.run_id in str(busy.value) and "alice" in str(busy.value)
        # another host is free
        other = driver.run(make_request("ok", limit="node-b"))
        assert other.ok
    finally:
        handle.cancel()
        handle.wait(30)
    assert driver.run(make_request("ok", limit="node-a")).ok


def test_artifacts_are_rotated(driver: Driver, make_request: MakeRequest) -> None:
    request = make_request("ok", limit="node-a")
    ids = [driver.run(request, lock_hosts=False).run_id for _ in range(4)]
    kept = [p.name for p in driver.artifact_runs()]
    assert len(kept) == 3 and kept == ids[-3:]
    # private data dirs never outlive their run
    assert not any(driver.private_root.iterdir())


def test_secret_vars_never_reach_command_line_artifacts_or_events(
    driver: Driver, make_request: MakeRequest
) -> None:
    secret = "s3cr3t-Token-7f1c9a0e-never-print"
    vault_password = "vault-pass-4b9e2d1c-never-print"
    events: list[RunEvent] = []
    seen_files: list[str] = []

    def on_event(event: RunEvent) -> None:
        events.append(event)
        if event.kind is EventKind.TASK_START and not seen_files:
            # while the run goes on, the secret lives in one private 0600 file
            command = json.loads((driver.artifacts_dir / event.run_id / "command").read_text())
            argv = command["command"]
            path = Path(next(a for a in argv if a.startswith("@"))[1:])
            mode = stat.S_IMODE(path.stat().st_mode)
            assert mode == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
            vault_file = Path(command["env"]["ANSIBLE_VAULT_PASSWORD_FILE"])
            assert stat.S_IMODE(vault_file.stat().st_mode) == 0o600
            seen_files.extend([str(path), str(vault_file)])

    result = driver.run(
        make_request(
            "secret",
            extra_vars={"plain_value": "visible-plain-value"},
            secret_vars={"secret_token": secret},
            vault_password=vault_password,
        ),
        on_event=on_event,
    )
    assert result.ok, result
    assert len(seen_files) == 2
    assert not any(os.path.exists(p) for p in seen_files), "secret files not deleted"

    # the playbook really received the secret (its length) and the plain var
    shown = next(e for e in events if e.task == "Show a non-secret extra var" and e.host)
    assert shown.message == f"plain=visible-plain-value length={len(secret)}"
    careless = next(e for e in events if e.task and e.task.startswith("A careless") and e.host)
    assert careless.message == "the token is ********"
    hidden = next(e for e in events if e.task == "Use the secret without logging it" and e.host)
    assert "hidden" in (hidden.message or "")
    assert not any(secret in json.dumps(e.to_dict()) for e in events)

    artifact_dir = Path(result.artifact_dir or "")
    assert (artifact_dir / "job_events").is_dir() and not (artifact_dir / "env").exists()
    found_plain = False
    for path in [*artifact_dir.rglob("*"), *driver.state_dir.rglob("*")]:
        if path.is_file():
            content = path.read_bytes()
            assert secret.encode() not in content, f"secret leaked into {path}"
            assert vault_password.encode() not in content, f"vault password leaked into {path}"
            found_plain = found_plain or b"visible-plain-value" in content
    assert found_plain, "the artifacts should still hold the non-secret values"


def test_playbooks_and_hosts_of_the_project() -> None:
    driver = Driver(Project(ROOT))
    books = driver.playbooks()
    assert books["site"] == ROOT / "site.yml"
    assert "stack_model" in books and books["stack_model"].parent == ROOT / "playbooks"
    assert driver.project.resolve_playbook("deploy") == ROOT / "site.yml"
    hosts = driver.hosts_for(RunRequest("site", inventory="inventories/demo/hosts.yml"))
    assert hosts == ["gpu-host"]
    inventory = driver.inventory("inventories/demo/hosts.yml")
    assert "gpu-host" in inventory["_meta"]["hostvars"]


def test_parse_list_hosts() -> None:
    output = """
playbook: x.yml

  play #1 (all): One\tTAGS: []
    pattern: ['all']
    hosts (2):
      b
      a

  play #2 (web): Two\tTAGS: []
    pattern: ['web']
    hosts (1):
      c
"""
    assert parse_list_hosts(output) == ["b", "a", "c"]


def test_a_variable_is_either_plain_or_secret(driver: Driver) -> None:
    request = RunRequest("site", extra_vars={"token": "a"}, secret_vars={"token": "bbbb"})
    with pytest.raises(ValueError, match="both plain and secret: token"):
        driver.start(request)


def test_two_inventory_names_for_one_machine_share_its_lock(driver: Driver, tmp_path: Path) -> None:
    inventory = tmp_path / "aliases.yml"
    local = {"ansible_connection": "local"}
    inventory.write_text(json.dumps({"all": {"hosts": {
        "web": {"ansible_host": "192.0.2.10", **local},
        "web-by-ip": {"ansible_host": "192.0.2.10", "ansible_port": 22, **local},
        "web-other-port": {"ansible_host": "192.0.2.10", "ansible_port": 2222, **local},
    }}}))  # fmt: skip
    request = RunRequest(str(HERE / "playbooks" / "ok.yml"), inventory=str(inventory))
    with driver.lock_hosts(["web"], "first", request):
        with pytest.raises(HostBusy) as busy:
            driver.lock_hosts(["web-by-ip"], "second", request)
        assert busy.value.host == "web-by-ip" and busy.value.holder["run_id"] == "first"
        assert "machine 192.0.2.10:22, as web" in str(busy.value)
        driver.lock_hosts(["web-other-port"], "third", request).release()
    assert driver.machines(request, ["web", "web-other-port"]) == {
        "web": "192.0.2.10:22", "web-other-port": "192.0.2.10:2222"
    }  # fmt: skip


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


_DRIVER_THAT_DIES = """
import sys, threading
from genai_stack.driver import Driver, RunRequest
from genai_stack.events import EventKind
from genai_stack.project import Project

driver = Driver(Project(sys.argv[1]), state_dir=sys.argv[2])
request = RunRequest(sys.argv[3], inventory=sys.argv[4],
                     extra_vars={"ansible_python_interpreter": sys.executable})
started = threading.Event()
handle = driver.start(request, on_event=lambda e: e.kind is EventKind.TASK_START and started.set())
started.wait(60)
print(handle.run_id, flush=True)
threading.Event().wait()
"""


def test_a_killed_driver_leaves_the_host_locked_until_its_playbook_ends(
    driver: Driver, make_request: MakeRequest, tmp_path: Path
) -> None:
    import signal
    import subprocess
    import sys

    from genai_stack.driver import stop_run_processes

    # a command, not a pause: a pause reads the terminal that the killed driver held, and ends
    playbook = tmp_path / "long.yml"
    playbook.write_text(json.dumps([{"hosts": "node-a", "gather_facts": False, "tasks": [
        {"name": "Work a long time", "ansible.builtin.command": "sleep 120"}]}]))  # fmt: skip
    dying = subprocess.Popen(
        [sys.executable, "-c", _DRIVER_THAT_DIES, str(ROOT), str(driver.state_dir), str(playbook),
         str(INVENTORY)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    run_id = ""
    try:
        assert dying.stdout is not None
        run_id = dying.stdout.readline().strip()
        assert run_id, "the driver in the subprocess never started its run"
        deadline = time.monotonic() + 60  # bounds the waits only; nothing timed is asserted
        while not any(_cmdline(pid).startswith(b"sleep\x00120") for pid in run_processes(run_id)):
            assert time.monotonic() < deadline, "the task's command never started"
            time.sleep(0.1)
        dying.send_signal(signal.SIGKILL)  # as kill -9 of the panel
        dying.wait()
        assert run_processes(run_id), "the playbook died with its driver"
        with pytest.raises(HostBusy) as busy:
            driver.lock_hosts(["node-a"], "next", make_request("ok"))
        assert busy.value.holder["run_id"] == run_id
        stop_run_processes(run_id)  # the old run ends: the host is free again
        while True:
            try:
                driver.lock_hosts(["node-a"], "next", make_request("ok")).release()
                break
            except HostBusy:
                assert time.monotonic() < deadline + 60, "the host stayed locked"
                time.sleep(0.1)
    finally:
        dying.kill()
        dying.wait()
        if run_id:
            stop_run_processes(run_id)
