"""One run at a time per machine: an exclusive ``flock`` per machine under the state directory.

A machine is ``ansible_host:port`` (see :func:`machine_key`), so two inventory names for one
machine share a lock. The CLI and the panel share the state directory, so a deploy started
from a terminal and a validate clicked in the panel refuse each other on the same machine.
A lock file records who holds it (run id, playbook, user, start time) for the refusal message.

The kernel drops a lock when the last process holding it is gone. A run's lock is also held
by a small keeper process (:meth:`HostLock.keep_for`) that lives until every process of the
run has exited: a driver killed mid-run (kill -9) leaves the machine locked while its playbook
still runs, and free once it ends. Every process of a run carries :data:`RUN_MARKER`:
:func:`run_processes` finds them, :func:`stop_run_processes` ends them.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

_SAFE = re.compile(r"[^A-Za-z0-9._-]")
#: set to the run id in the environment of every ansible process of a run. ansible-runner stops a
#: run by killing ansible-playbook's process group, but each worker runs in a session of its own
#: (ansible's WorkerProcess calls setsid): the marker finds them, even once reparented to init
RUN_MARKER = "GENAI_STACK_RUN"
#: seconds the processes of an ended run get between SIGTERM and SIGKILL
STOP_GRACE_S = 5.0


def run_processes(run_id: str) -> list[int]:
    """The live processes that carry ``run_id``'s marker (Linux /proc)."""
    marker = f"{RUN_MARKER}={run_id}".encode()
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            if marker not in Path(entry.path, "environ").read_bytes().split(b"\0"):
                continue
            if Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue  # a zombie is already gone; its parent reaps it
        except (OSError, IndexError):
            continue
        found.append(int(entry.name))
    return found


def stop_run_processes(run_id: str, grace: float = STOP_GRACE_S) -> list[int]:
    """SIGTERM every process left by ``run_id``, SIGKILL what is still there after ``grace``;
    returns the pids that were left."""
    left = run_processes(run_id)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in run_processes(run_id):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while run_processes(run_id) and time.monotonic() < deadline:
            time.sleep(0.05)
    return left


def machine_key(name: str, hostvars: Mapping[str, Any]) -> str:
    """``ansible_host:port`` of an inventory host (its name and 22 when not set as plain
    values)."""
    host = hostvars.get("ansible_host", hostvars.get("ansible_ssh_host"))
    if not isinstance(host, str) or not host.strip() or "{" in host:
        host = name
    port = hostvars.get("ansible_port", hostvars.get("ansible_ssh_port", 22))
    if not str(port).strip().isdigit():
        port = 22
    return f"{host.strip().lower()}:{int(port)}"


def pid_alive(pid: object) -> bool:
    if not isinstance(pid, int) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def keep_until_run_ends(run_id: str) -> None:
    """The keeper's body: wait for the driver to let go (it closes our stdin when the run has
    ended, or dies), then for every process of the run to exit; the locks go with us."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    sys.stdin.buffer.read()
    while run_processes(run_id):
        time.sleep(0.2)


_KEEPER = "import sys; from genai_stack.locks import keep_until_run_ends as k; k(sys.argv[1])"


class HostBusy(RuntimeError):
    """A host already has a run; ``holder`` describes that run (run_id, playbook, user...)."""

    def __init__(self, host: str, holder: dict[str, Any], machine: str | None = None) -> None:
        self.host = host
        self.machine = machine or host
        self.holder = holder
        run = holder.get("run_id") or "another run"
        what = holder.get("playbook") or "a playbook"
        who = f" by {holder['user']}" if holder.get("user") else ""
        since = f" since {holder['started_at']}" if holder.get("started_at") else ""
        other = holder.get("host")
        alias = f" (machine {machine}, as {other})" if machine and other and other != host else ""
        super().__init__(
            f"host {host}{alias} is busy: run {run} ({what}) started{who}{since} is running"
        )


def lock_file_name(host: str) -> str:
    return _SAFE.sub("_", host) + ".lock"


@dataclass
class HostLock:
    """Exclusive locks on a set of hosts, taken all or nothing; :meth:`release` is idempotent."""

    hosts: list[str]
    holder: dict[str, Any]
    _files: list[TextIO] = field(default_factory=list, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _keeper: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    def keep_for(self, run_id: str) -> None:
        """Share the locks with a keeper process that holds them until this lock is released
        or, should this process die first, until every process of ``run_id`` has exited."""
        with self._guard:
            package = str(Path(__file__).resolve().parents[1])
            path = os.environ.get("PYTHONPATH")
            env = {**os.environ, "PYTHONPATH": package + (os.pathsep + path if path else "")}
            env.pop(RUN_MARKER, None)
            self._keeper = subprocess.Popen(
                [sys.executable, "-c", _KEEPER, run_id],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                pass_fds=[handle.fileno() for handle in self._files],
                start_new_session=True,  # not stopped by a Ctrl-C or a kill of our group
                env=env,
            )

    def release(self) -> None:
        with self._guard:
            files, self._files = self._files, []
            keeper, self._keeper = self._keeper, None
        for handle in files:
            try:
                handle.seek(0)
                handle.truncate()
                handle.flush()
                # the keeper shares the open file: this unlocks it for the keeper too
                fcntl.flock(handle, fcntl.LOCK_UN)
            finally:
                handle.close()
        if keeper is not None:
            assert keeper.stdin is not None
            keeper.stdin.close()
            try:
                keeper.wait(10)
            except subprocess.TimeoutExpired:
                keeper.kill()
                keeper.wait()

    @property
    def held(self) -> bool:
        return bool(self._files)

    def __enter__(self) -> HostLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class HostLocks:
    """Factory of :class:`HostLock` over the lock files of one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    def acquire(
        self, hosts: list[str], holder: dict[str, Any], machines: Mapping[str, str] | None = None
    ) -> HostLock:
        """Lock every host's machine (``machines``: host name -> :func:`machine_key`; the name
        itself when missing) or none; raises :class:`HostBusy` naming the first busy host."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        info = {"pid": os.getpid(), "started_at": now, **holder}
        lock = HostLock(hosts=sorted(set(hosts)), holder=info)
        by_machine: dict[str, str] = {}
        for host in lock.hosts:
            by_machine.setdefault((machines or {}).get(host, host), host)
        try:
            for machine, host in sorted(by_machine.items()):
                path = self.directory / lock_file_name(machine)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                handle = os.fdopen(fd, "r+", encoding="utf-8")
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.seek(0)
                    holder_info = _parse(handle.read())
                    handle.close()
                    raise HostBusy(host, holder_info, machine) from None
                handle.seek(0)
                handle.truncate()
                handle.write(json.dumps({"host": host, "machine": machine, **info}))
                handle.flush()
                lock._files.append(handle)
        except BaseException:
            lock.release()
            raise
        return lock

    def holder(self, machine: str) -> dict[str, Any] | None:
        """Who holds ``machine`` (a :func:`machine_key`) now, or None when it is free."""
        return self._holder(self.directory / lock_file_name(machine))

    def holders(self) -> list[dict[str, Any]]:
        """Who holds each machine that is locked now."""
        if not self.directory.is_dir():
            return []
        found = (self._holder(path) for path in sorted(self.directory.glob("*.lock")))
        return [info for info in found if info is not None]

    @staticmethod
    def _holder(path: Path) -> dict[str, Any] | None:
        if not path.exists():
            return None
        with open(path, "r+", encoding="utf-8") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return _parse(handle.read())
            fcntl.flock(handle, fcntl.LOCK_UN)
            return None


def _parse(text: str) -> dict[str, Any]:
    try:
        data = json.loads(text)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}
