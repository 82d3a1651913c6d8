"""Run history in SQLite (standard library): one row per run, and its events in order."""

from __future__ import annotations

import json
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


class History:
    """Thread-safe access to the history database (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = path
        self._lock = threading.Lock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)
        path.chmod(0o600)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def create(self, row: RunRow) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT INTO runs (id, playbook, inventory, host_limit, tags, check_mode, user,"
                " hosts, status, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.id,
                    row.playbook,
                    row.inventory,
                    row.limit,
                    row.tags,
                    int(row.check),
                    row.user,
                    json.dumps(row.hosts),
                    row.status,
                    row.started_at,
                ),
            )

    def add_event(self, event: RunEvent) -> None:
        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO events (run_id, seq, kind, host, data) VALUES (?, ?, ?, ?, ?)",
                (
                    event.run_id,
                    event.seq,
                    event.kind.value,
                    event.host,
                    json.dumps(event.to_dict()),
                ),
            )

    def finish(self, result: RunResult) -> None:
        with self._tx() as db:
            db.execute(
                "UPDATE runs SET status = ?, rc = ?, finished_at = ?, duration_s = ?, stats = ?,"
                " failed_tasks = ?, error = ? WHERE id = ?",
                (
                    result.status,
                    result.rc,
                    result.finished_at,
                    result.duration_s,
                    json.dumps({h: s.to_dict() for h, s in result.stats.items()}),
                    json.dumps([t.to_dict() for t in result.failed_tasks]),
                    result.error,
                    result.run_id,
                ),
            )

    def mark_interrupted(self, keep: Callable[[RunRow], bool] = lambda row: False) -> int:
        """Runs left 'running' by a panel that stopped are not running any more (unless
        ``keep`` says they are, e.g. their host locks are still held)."""
        with self._lock:
            rows = self._db.execute("SELECT * FROM runs WHERE status = 'running'").fetchall()
        stale = [row["id"] for row in rows if not keep(_row(row))]
        with self._tx() as db:
            for run_id in stale:
                db.execute(
                    "UPDATE runs SET status = 'interrupted',"
                    " error = 'the panel stopped during the run' WHERE id = ?",
                    (run_id,),
                )
        return len(stale)

    def open_session(self, user: str, password: str, max_age: float) -> str:
        """A new session of ``user`` (``password``: the fingerprint of the password it was
        opened with); returns its id. Expired sessions are forgotten."""
        session_id = secrets.token_urlsafe(32)
        now = time.time()
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE expires < ?", (now,))
            db.execute(
                "INSERT INTO sessions (id, user, password, expires) VALUES (?, ?, ?, ?)",
                (session_id, user, password, now + max_age),
            )
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
        with self._tx() as db:
            db.execute("DELETE FROM sessions WHERE id = ?", (session_id,))

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
