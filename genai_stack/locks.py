"""One run at a time per host: an exclusive ``flock`` per host under the state directory.

The CLI and the panel share the state directory, so a deploy started from a terminal and a
validate clicked in the panel refuse each other on the same host, as two panel requests do.
A lock file records who holds it (run id, playbook, user, start time) for the refusal message;
the kernel drops the lock when its holder dies, so a crashed run never leaves a host locked.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

_SAFE = re.compile(r"[^A-Za-z0-9._-]")


class HostBusy(RuntimeError):
    """A host already has a run; ``holder`` describes that run (run_id, playbook, user...)."""

    def __init__(self, host: str, holder: dict[str, Any]) -> None:
        self.host = host
        self.holder = holder
        run = holder.get("run_id") or "another run"
        what = holder.get("playbook") or "a playbook"
        who = f" by {holder['user']}" if holder.get("user") else ""
        since = f" since {holder['started_at']}" if holder.get("started_at") else ""
        super().__init__(f"host {host} is busy: run {run} ({what}) started{who}{since} is running")


def lock_file_name(host: str) -> str:
    return _SAFE.sub("_", host) + ".lock"


@dataclass
class HostLock:
    """Exclusive locks on a set of hosts, taken all or nothing; :meth:`release` is idempotent."""

    hosts: list[str]
    holder: dict[str, Any]
    _files: list[TextIO] = field(default_factory=list, repr=False)
    _guard: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def release(self) -> None:
        with self._guard:
            files, self._files = self._files, []
        for handle in files:
            try:
                handle.seek(0)
                handle.truncate()
                handle.flush()
                fcntl.flock(handle, fcntl.LOCK_UN)
            finally:
                handle.close()

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

    def acquire(self, hosts: list[str], holder: dict[str, Any]) -> HostLock:
        """Lock every host or none; raises :class:`HostBusy` naming the first busy host."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        info = {"pid": os.getpid(), "started_at": now, **holder}
        lock = HostLock(hosts=sorted(set(hosts)), holder=info)
        try:
            for host in lock.hosts:
                path = self.directory / lock_file_name(host)
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
                handle = os.fdopen(fd, "r+", encoding="utf-8")
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    handle.seek(0)
                    holder_info = _parse(handle.read())
                    handle.close()
                    raise HostBusy(host, holder_info) from None
                handle.seek(0)
                handle.truncate()
                handle.write(json.dumps({"host": host, **info}))
                handle.flush()
                lock._files.append(handle)
        except BaseException:
            lock.release()
            raise
        return lock

    def holder(self, host: str) -> dict[str, Any] | None:
        """Who holds ``host`` now, or None when it is free."""
        path = self.directory / lock_file_name(host)
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
