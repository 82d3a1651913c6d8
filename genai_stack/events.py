"""Typed views of ansible-runner events and of a run's outcome.

ansible-runner hands every event as a loose dict (``event``, ``counter``, ``event_data``…);
:func:`event_from_runner` turns the ones a caller cares about into :class:`RunEvent` values,
:class:`EventCollector` hands them on as a run goes and keeps what its result needs, and
:class:`RunResult` is what a finished run returns. Both serialise to plain dicts (JSON, SQLite).
"""

from __future__ import annotations

import dataclasses
import enum
import logging
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from genai_stack.secrets import Masker

log = logging.getLogger(__name__)

MESSAGE_LIMIT = 4000


class EventKind(enum.StrEnum):
    PLAYBOOK_START = "playbook_start"
    PLAY_START = "play_start"
    TASK_START = "task_start"
    OK = "ok"
    CHANGED = "changed"
    FAILED = "failed"
    UNREACHABLE = "unreachable"
    SKIPPED = "skipped"
    NO_HOSTS = "no_hosts"
    ERROR = "error"
    STATS = "stats"


#: ansible-runner event names and the kind they become (ok/changed are decided by the result)
RUNNER_EVENTS: dict[str, EventKind] = {
    "playbook_on_start": EventKind.PLAYBOOK_START,
    "playbook_on_play_start": EventKind.PLAY_START,
    "playbook_on_task_start": EventKind.TASK_START,
    "playbook_on_handler_task_start": EventKind.TASK_START,
    "runner_on_ok": EventKind.OK,
    "runner_on_failed": EventKind.FAILED,
    "runner_on_unreachable": EventKind.UNREACHABLE,
    "runner_on_skipped": EventKind.SKIPPED,
    "playbook_on_no_hosts_matched": EventKind.NO_HOSTS,
    "playbook_on_stats": EventKind.STATS,
}

#: keys of playbook_on_stats, and the HostStats field each one fills
STATS_KEYS = {
    "ok": "ok",
    "changed": "changed",
    "failures": "failed",
    "dark": "unreachable",
    "skipped": "skipped",
    "rescued": "rescued",
    "ignored": "ignored",
}


@dataclass(frozen=True)
class HostStats:
    ok: int = 0
    changed: int = 0
    failed: int = 0
    unreachable: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> HostStats:
        return cls(**{k: int(data.get(k) or 0) for k in cls.__dataclass_fields__})


@dataclass(frozen=True)
class RunEvent:
    """One event of a run, in order (``seq`` is ansible-runner's counter)."""

    run_id: str
    seq: int
    kind: EventKind
    created: str = ""
    playbook: str | None = None
    play: str | None = None
    task: str | None = None
    action: str | None = None
    host: str | None = None
    message: str | None = None
    ignored: bool = False
    duration_s: float | None = None
    stats: dict[str, HostStats] | None = field(default=None, hash=False)
    runner_event: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["kind"] = self.kind.value
        if self.stats is not None:
            data["stats"] = {h: s.to_dict() for h, s in self.stats.items()}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunEvent:
        values: dict[str, Any] = {k: data.get(k) for k in cls.__dataclass_fields__ if k in data}
        values["kind"] = EventKind(str(data["kind"]))
        stats = data.get("stats")
        values["stats"] = (
            {h: HostStats.from_dict(s) for h, s in stats.items()}
            if isinstance(stats, dict)
            else None
        )
        return cls(**values)

    @property
    def detail(self) -> str | None:
        """The output worth showing under the line: a debug task's message, a failure's."""
        if not self.message:
            return None
        if self.kind in (EventKind.FAILED, EventKind.UNREACHABLE, EventKind.ERROR):
            return self.message if "\n" in self.message.strip() else None
        if self.kind in (EventKind.OK, EventKind.CHANGED) and (self.action or "").endswith("debug"):
            return self.message
        return None

    def line(self) -> str:
        """One human line: what the CLI prints and the panel shows."""
        kind = self.kind
        if kind is EventKind.PLAYBOOK_START:
            return f"PLAYBOOK {self.playbook or ''}".rstrip()
        if kind is EventKind.PLAY_START:
            return f"PLAY {self.play or ''}".rstrip()
        if kind is EventKind.TASK_START:
            return f"TASK {self.task or ''}".rstrip()
        if kind is EventKind.STATS:
            parts = []
            for host, s in sorted((self.stats or {}).items()):
                parts.append(
                    f"{host}: ok={s.ok} changed={s.changed} failed={s.failed} "
                    f"unreachable={s.unreachable} skipped={s.skipped} rescued={s.rescued} "
                    f"ignored={s.ignored}"
                )
            return "RECAP " + ("; ".join(parts) or "no hosts")
        if kind in (EventKind.NO_HOSTS, EventKind.ERROR):
            return f"{kind.value}: {self.message or ''}".rstrip()
        label = "failed (ignored)" if kind is EventKind.FAILED and self.ignored else kind.value
        text = f"{label}: [{self.host or '?'}] {self.task or ''}".rstrip()
        if self.message and kind in (EventKind.FAILED, EventKind.UNREACHABLE):
            text += f" => {first_line(self.message)}"
        return text


@dataclass(frozen=True)
class FailedTask:
    host: str
    task: str
    message: str
    play: str | None = None
    action: str | None = None
    unreachable: bool = False

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FailedTask:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass
class RunResult:
    """What a finished run returns. ``status``: successful, failed, canceled, timeout or error."""

    run_id: str
    playbook: str
    status: str
    rc: int
    started_at: str
    finished_at: str
    duration_s: float
    stats: dict[str, HostStats] = field(default_factory=dict)
    failed_tasks: list[FailedTask] = field(default_factory=list)
    check: bool = False
    limit: str | None = None
    hosts: list[str] = field(default_factory=list)
    artifact_dir: str | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == "successful" and self.rc == 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stats"] = {h: s.to_dict() for h, s in self.stats.items()}
        data["failed_tasks"] = [t.to_dict() for t in self.failed_tasks]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunResult:
        values = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        values["stats"] = {h: HostStats.from_dict(s) for h, s in (data.get("stats") or {}).items()}
        values["failed_tasks"] = [FailedTask.from_dict(t) for t in data.get("failed_tasks") or []]
        return cls(**values)


def first_line(text: str) -> str:
    stripped = text.strip()
    return stripped.splitlines()[0] if stripped else ""


def _clip(text: str) -> str:
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"


def _as_text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(str(v) for v in value)
    return str(value)


def result_message(res: Any) -> str | None:
    """The message a task result carries: msg, else stderr/stdout, else its failed items'."""
    if not isinstance(res, dict):
        return None
    if res.get("censored"):
        return str(res["censored"])
    for key in ("msg", "message", "reason"):
        value = res.get(key)
        if value not in (None, "", []):
            return _clip(_as_text(value))
    for key in ("stderr", "stdout"):
        value = res.get(key)
        if isinstance(value, str) and value.strip():
            return _clip(value.strip())
    results = res.get("results")
    if isinstance(results, list):
        messages = [
            result_message(item)
            for item in results
            if isinstance(item, dict) and (item.get("failed") or item.get("unreachable"))
        ]
        found = [m for m in messages if m]
        if found:
            return _clip("\n".join(found))
    return None


def event_from_runner(run_id: str, data: dict[str, Any]) -> RunEvent | None:
    """The typed event for one ansible-runner event dict, or None for the ones not surfaced
    (verbose output, item results, host start...)."""
    name = str(data.get("event") or "")
    kind = RUNNER_EVENTS.get(name)
    event_data = data.get("event_data") or {}
    if not isinstance(event_data, dict):
        event_data = {}
    seq = int(data.get("counter") or 0)
    created = str(data.get("created") or "")
    if kind is None:
        stdout = str(data.get("stdout") or "")
        if name == "verbose" and "ERROR!" in stdout:
            return RunEvent(run_id, seq, EventKind.ERROR, created, message=_clip(stdout.strip()),
                            runner_event=name)  # fmt: skip
        return None
    res = event_data.get("res")
    message = result_message(res)
    ignored = bool(event_data.get("ignore_errors"))
    if kind is EventKind.OK and isinstance(res, dict) and res.get("changed"):
        kind = EventKind.CHANGED
    stats: dict[str, HostStats] | None = None
    if kind is EventKind.STATS:
        per_host: dict[str, dict[str, int]] = {}
        for key, field_name in STATS_KEYS.items():
            for host, count in (event_data.get(key) or {}).items():
                per_host.setdefault(str(host), {})[field_name] = int(count)
        stats = {h: HostStats.from_dict(v) for h, v in per_host.items()}
    if kind is EventKind.NO_HOSTS:
        message = "no hosts matched"
    duration = event_data.get("duration")
    return RunEvent(
        run_id=run_id,
        seq=seq,
        kind=kind,
        created=created,
        playbook=_opt(event_data.get("playbook")),
        play=_opt(event_data.get("play")),
        task=_opt(event_data.get("task"))
        or (_opt(event_data.get("name")) if kind is EventKind.TASK_START else None),
        action=_opt(event_data.get("task_action")),
        host=_opt(event_data.get("host") or event_data.get("remote_addr")),
        message=message,
        ignored=ignored,
        duration_s=float(duration) if isinstance(duration, (int, float)) else None,
        stats=stats,
        runner_event=name,
    )


def _opt(value: Any) -> str | None:
    return None if value in (None, "") else str(value)


EventHandler = Callable[[RunEvent], None]
FinishHandler = Callable[[RunResult], None]


class EventCollector:
    """Turns ansible-runner events into RunEvents, hands them on, and keeps what the result
    needs (stats, failed tasks, error lines)."""

    def __init__(
        self, run_id: str, playbook: str, masker: Masker, on_event: EventHandler | None
    ) -> None:
        self.run_id = run_id
        self.playbook = playbook
        self.masker = masker
        self.on_event = on_event
        self.events: list[RunEvent] = []
        self.stats: dict[str, HostStats] | None = None
        self.counts: dict[str, dict[str, int]] = {}
        self.failed: list[FailedTask] = []
        self.errors: list[str] = []
        self.tail: deque[str] = deque(maxlen=30)

    def __call__(self, data: dict[str, Any]) -> bool:
        if self.masker:
            masked = self.masker.data(data)
            data.clear()
            data.update(masked)
        stdout = data.get("stdout")
        if isinstance(stdout, str) and stdout.strip():
            self.tail.extend(line for line in stdout.splitlines() if line.strip())
        event = event_from_runner(self.run_id, data)
        if event is None:
            return True
        if event.kind is EventKind.PLAYBOOK_START:
            event = dataclasses.replace(event, playbook=self.playbook)
        self._record(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a caller's bug must not break the run
                log.exception("event handler failed on %s", event.kind)
        return True

    def _record(self, event: RunEvent) -> None:
        self.events.append(event)
        kind = event.kind
        if kind is EventKind.STATS:
            self.stats = event.stats
        elif kind is EventKind.ERROR and event.message:
            self.errors.append(event.message)
        elif event.host and kind in (
            EventKind.OK,
            EventKind.CHANGED,
            EventKind.FAILED,
            EventKind.UNREACHABLE,
            EventKind.SKIPPED,
        ):
            counts = self.counts.setdefault(event.host, {})
            key = "ignored" if kind is EventKind.FAILED and event.ignored else kind.value
            if kind is EventKind.CHANGED:
                counts["ok"] = counts.get("ok", 0) + 1
            counts[key] = counts.get(key, 0) + 1
            if kind in (EventKind.FAILED, EventKind.UNREACHABLE) and not event.ignored:
                self.failed.append(
                    FailedTask(
                        host=event.host,
                        task=event.task or "",
                        message=event.message or "",
                        play=event.play,
                        action=event.action,
                        unreachable=kind is EventKind.UNREACHABLE,
                    )
                )

    def host_stats(self) -> dict[str, HostStats]:
        if self.stats is not None:
            return self.stats
        return {h: HostStats.from_dict(c) for h, c in sorted(self.counts.items())}
