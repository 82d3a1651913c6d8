"""Run history in SQLite (standard library): one row per run, and its events in order."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genai_stack.events import FailedTask, HostStats, RunEvent, RunResult

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    playbook TEXT NOT NULL,
    inventory TEXT,
    host_limit TEXT,
    tags TEXT,
    check_mode INTEGER NOT NULL DEFAULT 0,
    user TEXT,
    hosts TEXT NOT NULL DEFAULT '[]',
    status TEXT NOT NULL,
    rc INTEGER,
    started_at TEXT NOT NULL,
    finished_at TEXT,
    duration_s REAL,
    stats TEXT NOT NULL DEFAULT '{}',
    failed_tasks TEXT NOT NULL DEFAULT '[]',
    error TEXT
);
CREATE INDEX IF NOT EXISTS runs_started ON runs (started_at);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL,
    seq INTEGER NOT NULL,
    kind TEXT NOT NULL,
    host TEXT,
    data TEXT NOT NULL,
    PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    user TEXT NOT NULL,
    password TEXT NOT NULL,
    expires REAL NOT NULL
);
"""


@dataclass
class RunRow:
    id: str
    playbook: str
    status: str
    started_at: str
    inventory: str | None = None
    limit: str | None = None
    tags: str | None = None
    check: bool = False
    user: str | None = None
    hosts: list[str] = field(default_factory=list)
    rc: int | None = None
    finished_at: str | None = None
    duration_s: float | None = None
    stats: dict[str, HostStats] = field(default_factory=dict)
    failed_tasks: list[FailedTask] = field(default_factory=list)
    error: str | None = None

    @property
    def running(self) -> bool:
        return self.status == "running"

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "playbook": self.playbook,
            "status": self.status,
            "started_at": self.started_at,
            "inventory": self.inventory,
            "limit": self.limit,
            "tags": self.tags,
            "check": self.check,
            "user": self.user,
            "hosts": self.hosts,
            "rc": self.rc,
            "finished_at": self.finished_at,
            "duration_s": self.duration_s,
            "stats": {h: s.to_dict() for h, s in self.stats.items()},
            "failed_tasks": [t.to_dict() for t in self.failed_tasks],
            "error": self.error,
        }


class HistoryBusy(RuntimeError):
    """The history database stayed locked (by another process) past the retry window."""


def _is_busy(exc: sqlite3.OperationalError) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "locked" in str(exc)


def _damaged(exc: sqlite3.DatabaseError) -> bool:
    name = getattr(exc, "sqlite_errorname", "")
    return name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB"))


class History:
    """Thread-safe access to the history database (one connection, one lock).

    The database and its -wal/-shm files are 0600. A damaged database is set aside at start
    (``<name>.damaged-<UTC time>``, see :attr:`set_aside`) and a new one started. A write
    waits ``busy_timeout`` seconds for another process's lock, and is tried again for up to
    ``retry_s`` seconds before :class:`HistoryBusy` is raised.
    """

    def __init__(self, path: Path, busy_timeout: float = 0.5, retry_s: float = 2.0) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self.retry_s = retry_s
        self.set_aside: Path | None = None
        self._lock = threading.Lock()
        try:
            self._db = self._open(busy_timeout)
        except sqlite3.DatabaseError as exc:
            if not _damaged(exc):
                raise
            self.set_aside = self._set_aside()
            log.warning(
                "the history database %s is damaged (%s): kept as %s, a new empty one started",
                path, exc, self.set_aside,
            )  # fmt: skip
            self._db = self._open(busy_timeout)

    def _open(self, busy_timeout: float) -> sqlite3.Connection:
        # SQLite creates -wal and -shm with the database's mode: the database is made 0600 first
        os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        for file in self._files():
            file.chmod(0o600)
        db = sqlite3.connect(
            self.path, timeout=busy_timeout, check_same_thread=False, isolation_level=None
        )
        try:
            db.row_factory = sqlite3.Row
            check = [row[0] for row in db.execute("PRAGMA quick_check").fetchall()]
            if check != ["ok"]:
                error = sqlite3.DatabaseError("; ".join(check[:5]))
                error.sqlite_errorname = "SQLITE_CORRUPT"  # type: ignore[attr-defined]
                raise error
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(SCHEMA)
        except BaseException:
            db.close()
            raise
        for file in self._files():
            file.chmod(0o600)
        return db

    def _files(self) -> list[Path]:
        names = [self.path, Path(f"{self.path}-wal"), Path(f"{self.path}-shm")]
        return [name for name in names if name.exists()]

    def _set_aside(self) -> Path:
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        target = self.path.with_name(f"{self.path.name}.damaged-{stamp}")
        for file in self._files():
            file.rename(target.with_name(target.name + file.name[len(self.path.name) :]))
        return target

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _write(self, action: Callable[[sqlite3.Connection], object], retry_s: float | None) -> None:
        """Run ``action`` in a transaction, again while the database is locked by another
        process, for up to ``retry_s`` seconds (the default window when None)."""
        deadline = time.monotonic() + (self.retry_s if retry_s is None else retry_s)
        while True:
            try:
                with self._tx() as db:
                    action(db)
                return
            except sqlite3.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                if time.monotonic() >= deadline:
                    raise HistoryBusy(
                        f"the run history ({self.path}) is locked by another process"
                    ) from exc
            time.sleep(0.1)  # outside the lock: readers go on meanwhile

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(self, row: RunRow) -> None:
        values = (row.id, row.playbook, row.inventory, row.limit, row.tags, int(row.check),
                  row.user, json.dumps(row.hosts), row.status, row.started_at)  # fmt: skip
        self._write(
            lambda db: db.execute(
                "INSERT INTO runs (id, playbook, inventory, host_limit, tags, check_mode, user,"
                " hosts, status, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                values,
            ),
            None,
        )

    def add_events(self, events: list[RunEvent], retry_s: float | None = None) -> None:
        rows = [(e.run_id, e.seq, e.kind.value, e.host, json.dumps(e.to_dict())) for e in events]
        self._write(
            lambda db: db.executemany(
                "INSERT OR REPLACE INTO events (run_id, seq, kind, host, data) VALUES (?, ?, ?, ?, ?)",
                rows,
            ),
            retry_s,
        )

    def add_event(self, event: RunEvent) -> None:
        self.add_events([event])

    def finish(self, result: RunResult, retry_s: float | None = None) -> None:
        values = (
            result.status,
            result.rc,
            result.finished_at,
            result.duration_s,
            json.dumps({h: s.to_dict() for h, s in result.stats.items()}),
            json.dumps([t.to_dict() for t in result.failed_tasks]),
            result.error,
            result.run_id,
        )
        self._write(
            lambda db: db.execute(
                "UPDATE runs SET status = ?, rc = ?, finished_at = ?, duration_s = ?, stats = ?,"
                " failed_tasks = ?, error = ? WHERE id = ?",
                values,
            ),
            retry_s,
        )

    def mark_interrupted(self, keep: Callable[[RunRow], bool] = lambda row: False) -> int:
        """Runs left 'running' by a panel that stopped are not running any more (unless
        ``keep`` says they are, e.g. their host locks are still held)."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM runs WHERE status = 'running'").fetchall()
        stale = [row["id"] for row in rows if not keep(_row(row))]
        self._write(
            lambda db: db.executemany(
                "UPDATE runs SET status = 'interrupted',"
                " error = 'the panel stopped during the run' WHERE id = ?",
                [(run_id,) for run_id in stale],
            ),
            None,
        )
        return len(stale)

    def open_session(self, user: str, password: str, max_age: float) -> str:
        """A new session of ``user`` (``password``: the fingerprint of the password it was
        opened with); returns its id. Expired sessions are forgotten."""
        session_id = secrets.token_urlsafe(32)
        now = time.time()

        def insert(db: sqlite3.Connection) -> None:
            db.execute("DELETE FROM sessions WHERE expires < ?", (now,))
            db.execute(
                "INSERT INTO sessions (id, user, password, expires) VALUES (?, ?, ?, ?)",
                (session_id, user, password, now + max_age),
            )

        self._write(insert, None)
        return session_id

    def session_user(self, session_id: str, password: str) -> str | None:
        """The user of a session that is open, unexpired and opened with ``password``."""
        with self._lock:
            row = self._db.execute(
                "SELECT user FROM sessions WHERE id = ? AND password = ? AND expires >= ?",
                (session_id, password, time.time()),
            ).fetchone()
        return str(row["user"]) if row is not None else None

    def close_session(self, session_id: str) -> None:
        self._write(lambda db: db.execute("DELETE FROM sessions WHERE id = ?", (session_id,)), None)

    def get(self, run_id: str) -> RunRow | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        return _row(row) if row is not None else None

    def recent(self, limit: int = 100) -> list[RunRow]:
        with self._lock:
            rows = self._db.execute(
                "SELECT * FROM runs ORDER BY started_at DESC, id DESC LIMIT ?", (limit,)
            ).fetchall()
        return [_row(r) for r in rows]

    def events(self, run_id: str, after: int = 0, limit: int = 1000) -> list[RunEvent]:
        with self._lock:
            rows = self._db.execute(
                "SELECT data FROM events WHERE run_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                (run_id, after, limit),
            ).fetchall()
        return [RunEvent.from_dict(json.loads(r["data"])) for r in rows]


def _row(row: sqlite3.Row) -> RunRow:
    return RunRow(
        id=row["id"],
        playbook=row["playbook"],
        status=row["status"],
        started_at=row["started_at"],
        inventory=row["inventory"],
        limit=row["host_limit"],
        tags=row["tags"],
        check=bool(row["check_mode"]),
        user=row["user"],
        hosts=json.loads(row["hosts"] or "[]"),
        rc=row["rc"],
        finished_at=row["finished_at"],
        duration_s=row["duration_s"],
        stats={h: HostStats.from_dict(s) for h, s in json.loads(row["stats"] or "{}").items()},
        failed_tasks=[FailedTask.from_dict(t) for t in json.loads(row["failed_tasks"] or "[]")],
        error=row["error"],
    )
