"""A run's progress read from its events: the task being run, the tasks done per host, and,
for a cancel, what was stopped (which task, on which host, whether anything had changed).

The run page shows it from its first paint; panel.js keeps it up to date from the live events
with the same rules (see ``progress`` there).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from genai_stack.events import EventKind, RunEvent

#: the kinds that end a task on a host
RESULTS = frozenset(
    {EventKind.OK, EventKind.CHANGED, EventKind.FAILED, EventKind.UNREACHABLE, EventKind.SKIPPED}
)


@dataclass
class HostProgress:
    """One host: tasks done (any result), changed, failed (not ignored); ``current``: the task
    it runs now (started, no result yet); ``out``: failed or unreachable, out of the play."""

    host: str
    done: int = 0
    changed: int = 0
    failed: int = 0
    current: str | None = None
    out: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "done": self.done, "changed": self.changed,
                "failed": self.failed, "current": self.current, "out": self.out}  # fmt: skip


@dataclass
class Progress:
    """What the events of a run say so far."""

    hosts: dict[str, HostProgress] = field(default_factory=dict)
    task: str | None = None
    tasks_started: int = 0
    finished: bool = False
    last_seq: int = 0

    @classmethod
    def of(cls, hosts: Iterable[str], events: Iterable[RunEvent]) -> Progress:
        progress = cls({h: HostProgress(h) for h in hosts})
        for event in events:
            progress.feed(event)
        return progress

    def host(self, name: str) -> HostProgress:
        return self.hosts.setdefault(name, HostProgress(name))

    def feed(self, event: RunEvent) -> None:
        self.last_seq = max(self.last_seq, event.seq)
        if event.kind is EventKind.PLAY_START:
            self.task = None
            for h in self.hosts.values():
                h.current = None
        elif event.kind is EventKind.TASK_START:
            self.task, self.tasks_started = event.task, self.tasks_started + 1
            for h in self.hosts.values():
                h.current = None if h.out else event.task
        elif event.kind in RESULTS and event.host:
            self._result(event)
        elif event.kind is EventKind.STATS:
            self.finished, self.task = True, None
            for h in self.hosts.values():
                h.current = None

    def _result(self, event: RunEvent) -> None:
        h = self.host(str(event.host))
        h.done += 1
        h.changed += event.kind is EventKind.CHANGED
        failed = event.kind is EventKind.UNREACHABLE or (
            event.kind is EventKind.FAILED and not event.ignored
        )
        h.failed += failed
        h.out = h.out or failed
        if h.current == event.task:
            h.current = None

    @property
    def changed(self) -> dict[str, int]:
        return {h.host: h.changed for h in self.hosts.values() if h.changed}

    def running_on(self) -> list[str]:
        """The hosts still running the current task."""
        return sorted(h.host for h in self.hosts.values() if h.current and h.current == self.task)

    def to_dict(self) -> dict[str, Any]:
        return {"task": self.task, "tasks_started": self.tasks_started,
                "finished": self.finished, "last_seq": self.last_seq,
                "hosts": [self.hosts[h].to_dict() for h in sorted(self.hosts)]}  # fmt: skip


def cancel_account(progress: Progress, check: bool = False) -> str:
    """What a cancel stops, from the events received before it (``check``: a check-mode run,
    whose "changed" only says what would have changed)."""
    if progress.finished:
        where = "after the run's last task (its recap had arrived)"
    elif progress.task is None:
        where = "before any task started"
    else:
        on = progress.running_on()
        hosts = ", ".join(on) if on else "no host (between two tasks)"
        where = f"during task '{progress.task}' on {hosts}"
    done = sum(h.done for h in progress.hosts.values())
    changed = progress.changed
    if check:
        would = sum(changed.values())
        changes = "a check: nothing was changed" + (
            f" ({would} task(s) would have)" if would else ""
        )
    elif changed:
        said = ", ".join(f"{host} {n} changed" for host, n in sorted(changed.items()))
        changes = f"changes had been made before it ({said}): the hosts may be half-way"
    else:
        changes = "nothing had changed before it"
    return f"canceled {where}, after {done} task result(s); {changes}"
