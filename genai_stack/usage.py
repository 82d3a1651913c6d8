"""The OpenAI gateway's usage, read from the hosts themselves through Ansible.

:func:`collect` runs ``playbooks/usage.yml`` through the driver (check mode, read-only) on the
selected GPU hosts, within a deadline; each host reports its usage file (the bytes, or that there
is none yet), which :func:`host_usage` checks and reads: requests, prompt and completion tokens and
errors per UTC day, client and model. A damaged file, or a host the run could not reach, is said
for that host and never stops the others. :func:`summarise` keeps the last ``days`` days and merges
the hosts (per day, client and model, and per client and model over the days);
:func:`render_table` prints it for ``genai-stack usage``, ``Summary.to_dict`` for ``--json`` and
the panel's Usage page. The file, as the gateway writes it::

    {"version": 1, "updated": "2026-12-07T22:00:00Z",
     "days": {"2026-12-07": {"<client>": {"<model>": {"requests": 0, "prompt_tokens": 0,
                                                      "completion_tokens": 0, "errors": 0}}}}}
"""

from __future__ import annotations

import base64
import binascii
import datetime
import json
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from genai_stack.driver import Driver, RunRequest
from genai_stack.events import RunEvent, RunResult, first_line

VERSION = 1
FIELDS = ("requests", "prompt_tokens", "completion_tokens", "errors")
#: days shown when none are asked for (today, UTC, and the days before)
DEFAULT_DAYS = 7
#: the longest window asked for
MAX_DAYS = 366
#: seconds a whole usage run may take (connections, one stat and one slurp per host)
DEFAULT_DEADLINE_S = 60
#: seconds to connect to a host before it counts as unreachable
CONNECT_TIMEOUT_S = 10
#: the play of usage.yml that reports on each GPU host
USAGE_PLAY = "Read each GPU host's OpenAI gateway usage"


class DamagedUsage(ValueError):
    """A usage file that is not the documented shape; the message says where."""


@dataclass(frozen=True)
class Counts:
    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    errors: int = 0

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: Counts) -> Counts:
        return Counts(*(getattr(self, f) + getattr(other, f) for f in FIELDS))

    def to_dict(self) -> dict[str, int]:
        return {**asdict(self), "tokens": self.tokens}


#: day -> client -> model -> counts
Days = dict[str, dict[str, dict[str, Counts]]]


def _counts(value: Any, where: str) -> Counts:
    if not isinstance(value, dict):
        raise DamagedUsage(f"{where} is not an object")
    found = {}
    for name in FIELDS:
        number = value.get(name, 0)
        if isinstance(number, bool) or not isinstance(number, int) or number < 0:
            raise DamagedUsage(f"{where}.{name} is {number!r}, not a count")
        found[name] = number
    return Counts(**found)


def parse(raw: bytes) -> tuple[str, Days]:
    """The ``updated`` stamp and the days of a usage file's bytes; DamagedUsage otherwise."""
    try:
        data = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise DamagedUsage(f"not JSON ({exc})") from None
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise DamagedUsage(f"not a version {VERSION} usage object")
    days = data.get("days")
    if not isinstance(days, dict):
        raise DamagedUsage("'days' is not an object")
    result: Days = {}
    for day, clients in days.items():
        try:
            datetime.date.fromisoformat(str(day))
        except ValueError:
            raise DamagedUsage(f"day {day!r} is not a date") from None
        if not isinstance(clients, dict):
            raise DamagedUsage(f"days.{day} is not an object")
        for client, models in clients.items():
            if not isinstance(models, dict):
                raise DamagedUsage(f"days.{day}.{client} is not an object")
            for model, counts in models.items():
                where = f"days.{day}.{client}.{model}"
                result.setdefault(day, {}).setdefault(client, {})[model] = _counts(counts, where)
    return str(data.get("updated") or ""), result


@dataclass
class HostUsage:
    """``state``: ok (file read), empty (no file yet), damaged, unreachable or error (no report)."""

    name: str
    state: str
    reason: str = ""
    path: str = ""
    updated: str = ""
    days: Days = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.state in ("ok", "empty")

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "reason": self.reason,
                "path": self.path, "updated": self.updated}  # fmt: skip


def host_usage(name: str, report: dict[str, Any]) -> HostUsage:
    """One host's usage from the JSON report usage.yml wrote for it."""
    path = str(report.get("path") or "")
    if not report.get("exists"):
        return HostUsage(name, "empty", f"no usage yet ({path} does not exist)", path)
    if report.get("error"):
        return HostUsage(name, "error", f"cannot read {path}: {report['error']}", path)
    try:
        raw = base64.b64decode(str(report.get("content_b64") or ""), validate=True)
        updated, days = parse(raw)
    except (DamagedUsage, binascii.Error) as exc:
        return HostUsage(name, "damaged", f"{path} is damaged: {exc}", path)
    return HostUsage(name, "ok", "", path, updated, days)


def missing_host(name: str, result: RunResult) -> HostUsage:
    """A selected host that wrote no report: unreachable, or why its run failed."""
    unreachable = [t for t in result.failed_tasks if t.host == name and t.unreachable]
    stats = result.stats.get(name)
    if unreachable or (stats is not None and stats.unreachable):
        message = first_line(unreachable[0].message) if unreachable else "unreachable"
        return HostUsage(name, "unreachable", message)
    failed = [t for t in result.failed_tasks if t.host == name]
    if failed:
        return HostUsage(name, "error", f"{failed[0].task}: {first_line(failed[0].message)}")
    if result.status == "timeout":
        return HostUsage(name, "error", f"no report within the deadline ({result.error})")
    return HostUsage(name, "error", result.error or f"no report (run {result.status})")


@dataclass
class UsageRead:
    """Every selected host's usage, all its days, as one run of usage.yml read it."""

    hosts: list[HostUsage]
    checked_at: float
    duration_s: float
    run_id: str = ""
    run_status: str = ""
    error: str | None = None


def usage_driver(driver: Driver) -> Driver:
    """A driver for usage runs: their artifacts in their own directory, no host lock."""
    return Driver(driver.project, driver.state_dir / "usage", keep_artifacts=3,
                  inventory=driver.default_inventory, env=driver.extra_env)  # fmt: skip


def collect(
    driver: Driver,
    inventory: str | None = None,
    limit: str | None = None,
    vault_password_file: str | None = None,
    deadline_s: int = DEFAULT_DEADLINE_S,
) -> UsageRead:
    """Run usage.yml on the selected GPU hosts and read every host's report."""
    clock = time.monotonic()
    if "usage" not in driver.project.playbooks():
        return UsageRead([], time.time(), 0.0, error="this project has no playbooks/usage.yml")
    reports = Path(tempfile.mkdtemp(prefix="genai-usage-"))
    seen: set[str] = set()

    def on_event(event: RunEvent) -> None:
        if event.host and event.play == USAGE_PLAY:
            seen.add(event.host)

    try:
        request = RunRequest(playbook="usage", inventory=inventory, limit=limit, check=True,
                             extra_vars={"usage_report_dir": str(reports)}, timeout=deadline_s,
                             vault_password_file=vault_password_file,
                             env={"ANSIBLE_TIMEOUT": str(CONNECT_TIMEOUT_S)})  # fmt: skip
        result = usage_driver(driver).run(request, on_event, lock_hosts=False)
        found = {p.stem: json.loads(p.read_text(encoding="utf-8")) for p in reports.glob("*.json")}
    finally:
        shutil.rmtree(reports, ignore_errors=True)
    names = sorted(set(found) | seen | {t.host for t in result.failed_tasks}
                   | {h for h, st in result.stats.items() if st.unreachable})  # fmt: skip
    hosts = [host_usage(n, found[n]) if n in found else missing_host(n, result) for n in names]
    error = None
    if not hosts and not result.ok:
        error = result.error or f"usage.yml {result.status} (rc={result.rc})"
    return UsageRead(hosts, time.time(), round(time.monotonic() - clock, 3), result.run_id,
                     result.status, error)  # fmt: skip


# -- the days asked for, the hosts merged -------------------------------------------------------
@dataclass(frozen=True)
class Row:
    """One day, client and model, summed over the hosts that served it."""

    day: str
    client: str
    model: str
    counts: Counts
    hosts: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"day": self.day, "client": self.client, "model": self.model,
                "hosts": list(self.hosts), **self.counts.to_dict()}  # fmt: skip


@dataclass(frozen=True)
class Series:
    """One client and model over every day of the window (zero on the days without use)."""

    client: str
    model: str
    per_day: tuple[tuple[str, Counts], ...]

    @property
    def total(self) -> Counts:
        return sum((c for _, c in self.per_day), Counts())

    def to_dict(self) -> dict[str, Any]:
        return {"client": self.client, "model": self.model, **self.total.to_dict(),
                "days": [{"day": d, **c.to_dict()} for d, c in self.per_day]}  # fmt: skip


@dataclass
class Summary:
    days: list[str]
    rows: list[Row]
    series: list[Series]
    read: UsageRead

    @property
    def total(self) -> Counts:
        return sum((r.counts for r in self.rows), Counts())

    @property
    def hosts(self) -> list[HostUsage]:
        return self.read.hosts

    def to_dict(self) -> dict[str, Any]:
        return {
            "window": {"from": self.days[0], "to": self.days[-1], "days": len(self.days)},
            "hosts": [h.to_dict() for h in self.hosts],
            "rows": [r.to_dict() for r in self.rows],
            "series": [s.to_dict() for s in self.series],
            "total": self.total.to_dict(),
            "checked_at": self.read.checked_at,
            "duration_s": self.read.duration_s,
            "run_id": self.read.run_id,
            "run_status": self.read.run_status,
            "error": self.read.error,
        }


def utc_today() -> datetime.date:
    return datetime.datetime.now(datetime.UTC).date()


def window(days: int, today: datetime.date | None = None) -> list[str]:
    """The last ``days`` UTC days, oldest first, today last."""
    last = today or utc_today()
    count = max(1, min(int(days), MAX_DAYS))
    return [(last - datetime.timedelta(days=n)).isoformat() for n in range(count - 1, -1, -1)]


def summarise(
    read: UsageRead, days: int = DEFAULT_DAYS, today: datetime.date | None = None
) -> Summary:
    """The window's rows per day, client and model, and one series per client and model."""
    shown = window(days, today)
    wanted = set(shown)
    merged: dict[tuple[str, str, str], tuple[Counts, tuple[str, ...]]] = {}
    for host in read.hosts:
        for day, clients in host.days.items():
            if day not in wanted:
                continue
            for client, models in clients.items():
                for model, counts in models.items():
                    total, hosts = merged.get((day, client, model), (Counts(), ()))
                    merged[(day, client, model)] = (total + counts, (*hosts, host.name))
    rows = [Row(d, c, m, counts, hosts) for (d, c, m), (counts, hosts) in sorted(merged.items())]
    pairs = sorted({(r.client, r.model) for r in rows})
    series = [
        Series(client, model, tuple(
            (day, merged.get((day, client, model), (Counts(), ()))[0]) for day in shown))
        for client, model in pairs
    ]  # fmt: skip
    return Summary(shown, rows, series, read)


# -- printed -------------------------------------------------------------------------------------
HEADINGS = ("requests", "prompt tokens", "completion tokens", "errors")


def _table(rows: list[list[str]], numeric_from: int) -> list[str]:
    """Aligned columns: text left, the columns from ``numeric_from`` right."""
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [c.rjust(w) if i >= numeric_from else c.ljust(w)
                 for i, (c, w) in enumerate(zip(row, widths, strict=True))]  # fmt: skip
        lines.append("  ".join(cells).rstrip())
    return lines


def _numbers(counts: Counts) -> list[str]:
    return [str(getattr(counts, f)) for f in FIELDS]


def host_line(host: HostUsage) -> str:
    if host.state == "ok":
        return f"{host.name}: read {host.path} (updated {host.updated or 'unknown'})"
    if host.state == "empty":
        return f"{host.name}: {host.reason}"
    return f"{host.name}: {host.state.upper()}: {host.reason}"


def render_table(summary: Summary) -> str:
    """The usage as ``genai-stack usage`` prints it: the hosts, then per day, client and model,
    then per client and model over the window, with the totals."""
    first, last = summary.days[0], summary.days[-1]
    lines = [f"OpenAI gateway usage, {first} to {last} ({len(summary.days)} days, UTC)"]
    lines += [host_line(h) for h in summary.hosts] or ["no GPU host selected"]
    if summary.read.error:
        lines.append(f"error: {summary.read.error}")
    if not summary.rows:
        lines.append("")
        lines.append("no request in these days")
        return "\n".join(lines) + "\n"
    head = ["day", "client", "model", *HEADINGS]
    body = [[r.day, r.client, r.model, *_numbers(r.counts)] for r in summary.rows]
    total = ["total", "", "", *_numbers(summary.total)]
    lines += ["", *_table([head, *body, total], 3)]
    per_pair = [["", s.client, s.model, *_numbers(s.total)] for s in summary.series]
    lines += ["", f"per client and model, {len(summary.days)} days:"]
    lines += _table([["", "client", "model", *HEADINGS], *per_pair], 3)
    return "\n".join(lines) + "\n"


# -- cached for the panel ------------------------------------------------------------------------
class UsageCache:
    """The last :class:`UsageRead`, read again at most every ``ttl`` seconds, one read at a time.
    The first read (and a ``fresh`` one) waits; a stale value is served while a thread reads."""

    def __init__(self, ttl: float, compute: Callable[[], UsageRead]) -> None:
        self.ttl = ttl
        self.compute = compute
        self.value: UsageRead | None = None
        self._at = 0.0
        self._lock = threading.Lock()  # held while a value is computed
        self._pending = threading.Lock()  # held while a background read is under way
        self.runs = 0

    @property
    def refreshing(self) -> bool:
        return self._pending.locked() or self._lock.locked()

    def _read(self) -> UsageRead:
        self.runs += 1
        try:
            value = self.compute()
        except Exception as exc:  # a failed read is shown, not raised into a page
            value = UsageRead([], time.time(), 0.0, error=f"{type(exc).__name__}: {exc}")
        self.value, self._at = value, time.monotonic()
        return value

    def _background(self) -> None:
        try:
            with self._lock:
                self._read()
        finally:
            self._pending.release()

    def get(self, fresh: bool = False) -> UsageRead:
        value = self.value
        if fresh or value is None:
            started = time.monotonic()
            with self._lock:  # one read at a time: a read that ended meanwhile is enough
                if self.value is not None and self._at >= started:
                    return self.value
                return self._read()
        stale = time.monotonic() - self._at > self.ttl
        if stale and self._pending.acquire(blocking=False):
            threading.Thread(target=self._background, daemon=True, name="genai-usage").start()
        return value
