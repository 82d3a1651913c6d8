"""Usage: requests, prompt and completion tokens and errors per UTC day, client and model, kept in
memory, loaded from the usage file at start and written back to it atomically; and the same
counts since the process started, with the refusals of unauthenticated requests, as Prometheus
counters.

The usage file (read by the panel and ``genai-stack usage``)::

    {"version": 1, "updated": "2026-12-07T22:00:00Z",
     "days": {"2026-12-07": {"<client>": {"<model>": {"requests": 0, "prompt_tokens": 0,
                                                      "completion_tokens": 0, "errors": 0}}}}}

It is written whole (temporary file in the same directory, fsync, rename, fsync of the directory)
so a reader never sees half a file. A missing file is an empty usage; a file that cannot be read
as this shape is set aside as ``<file>.bad-<UTC stamp>`` and the gateway starts from empty.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

VERSION = 1
FIELDS = ("requests", "prompt_tokens", "completion_tokens", "errors")
NO_MODEL = "-"  # a request whose body names no model (400) is counted under this name
MAX_MODEL_LENGTH = 200  # a client's unknown model name is kept to this many characters

Counts = dict[str, int]
Days = dict[str, dict[str, dict[str, Counts]]]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def log(message: str) -> None:
    sys.stderr.write(f"{utc_now().strftime('%Y-%m-%dT%H:%M:%SZ')} genai-gateway: {message}\n")


class DamagedUsage(ValueError):
    """The usage file is not the documented shape."""


def check(data: Any) -> Days:
    """The ``days`` of a decoded usage file, or DamagedUsage saying what is wrong."""
    if not isinstance(data, dict) or data.get("version") != VERSION:
        raise DamagedUsage(f"not a version {VERSION} usage object")
    days = data.get("days")
    if not isinstance(days, dict):
        raise DamagedUsage("'days' is not an object")
    for day, clients in days.items():
        try:
            datetime.date.fromisoformat(day)
        except ValueError:
            raise DamagedUsage(f"day {day!r} is not a date") from None
        if not isinstance(clients, dict):
            raise DamagedUsage(f"days.{day} is not an object")
        for client, models in clients.items():
            if not isinstance(models, dict):
                raise DamagedUsage(f"days.{day}.{client} is not an object")
            for model, counts in models.items():
                if not isinstance(counts, dict):
                    raise DamagedUsage(f"days.{day}.{client}.{model} is not an object")
                for name in FIELDS:
                    value = counts.get(name, 0)
                    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                        raise DamagedUsage(f"days.{day}.{client}.{model}.{name} is {value!r}")
                unknown = sorted(set(counts) - set(FIELDS))
                if unknown:
                    raise DamagedUsage(f"days.{day}.{client}.{model}.{unknown[0]} is unknown")
                models[model] = {name: counts.get(name, 0) for name in FIELDS}
    return days


def write_atomically(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data``: a temporary file beside it, fsync, rename, fsync."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class Usage:
    """The counts, per day (the usage file) and since start (the metrics)."""

    def __init__(self, path: Path, clock: Callable[[], datetime.datetime] = utc_now) -> None:
        self.path = path
        self._clock = clock
        self.days: Days = {}
        self.dirty = False
        self.totals: dict[tuple[str, str], list[int]] = {}  # (client, model) -> FIELDS' counts
        self.unauthenticated = 0

    # ---- the file ---------------------------------------------------------------------------
    def load(self) -> None:
        """Read the usage file: missing is empty; damaged is set aside and logged."""
        try:
            raw = self.path.read_bytes()
        except FileNotFoundError:
            log(f"usage: {self.path} does not exist yet, starting from empty")
            return
        try:
            self.days = check(json.loads(raw))
        except (ValueError, UnicodeDecodeError) as exc:
            stamp = self._clock().strftime("%Y%m%dT%H%M%SZ")
            aside = self.path.with_name(f"{self.path.name}.bad-{stamp}")
            os.replace(self.path, aside)
            log(f"usage: {self.path} is damaged ({exc}); set aside as {aside}, starting empty")
            self.days = {}

    def serialise(self) -> bytes:
        """The usage file's content now; the caller writes it (clears ``dirty``)."""
        self.dirty = False
        document = {
            "version": VERSION,
            "updated": self._clock().strftime("%Y-%m-%dT%H:%M:%SZ"),
            "days": self.days,
        }
        return json.dumps(document, indent=1, sort_keys=True, ensure_ascii=False).encode()

    def flush(self) -> bool:
        """Write the file now if anything changed; True when written."""
        if not self.dirty:
            return False
        data = self.serialise()
        try:
            write_atomically(self.path, data)
        except OSError as exc:
            self.dirty = True
            log(f"usage: cannot write {self.path}: {exc}")
            return False
        return True

    # ---- counting ---------------------------------------------------------------------------
    def record(
        self,
        client: str,
        model: str | None,
        prompt_tokens: int = 0,
        completion_tokens: int = 0,
        error: bool = False,
    ) -> None:
        """One request of ``client`` naming ``model`` (None: no model named)."""
        model = NO_MODEL if not model else model[:MAX_MODEL_LENGTH]
        day = self._clock().strftime("%Y-%m-%d")
        counts = self.days.setdefault(day, {}).setdefault(client, {}).get(model)
        if counts is None:
            counts = self.days[day][client][model] = dict.fromkeys(FIELDS, 0)
        counts["requests"] += 1
        counts["prompt_tokens"] += prompt_tokens
        counts["completion_tokens"] += completion_tokens
        counts["errors"] += int(error)
        self.dirty = True
        total = self.totals.get((client, model))
        if total is None:
            total = self.totals[(client, model)] = [0, 0, 0, 0]
        total[0] += 1
        total[1] += prompt_tokens
        total[2] += completion_tokens
        total[3] += int(error)


def label(value: str) -> str:
    """A Prometheus label value, escaped."""
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def metrics_text(usage: Usage, backends: list[tuple[str, str, bool]], in_flight: int) -> str:
    """Prometheus text exposition: the counters since start, backend gauges, requests now."""
    lines: list[str] = []

    def family(name: str, kind: str, text: str) -> None:
        lines.append(f"# HELP {name} {text}")
        lines.append(f"# TYPE {name} {kind}")

    descriptions = (
        ("requests", "Requests of authenticated clients, per client and model named."),
        ("errors", "Requests answered with an error (or a stream cut), per client and model."),
        ("prompt_tokens", "Prompt tokens of the answers, per client and model."),
        ("completion_tokens", "Completion tokens of the answers, per client and model."),
    )
    ordered = sorted(usage.totals.items())
    for field, text in descriptions:
        name = f"genai_gateway_{field}_total"
        family(name, "counter", text + " Since the gateway started.")
        position = FIELDS.index(field)
        for (client, model), values in ordered:
            lines.append(
                f'{name}{{client="{label(client)}",model="{label(model)}"}} {values[position]}'
            )
    family(
        "genai_gateway_unauthenticated_requests_total",
        "counter",
        "Requests refused with 401 (no key, a malformed header or an unknown key).",
    )
    lines.append(f"genai_gateway_unauthenticated_requests_total {usage.unauthenticated}")
    family("genai_gateway_backend_up", "gauge", "1 when the backend's /health answers 200.")
    for name, url, up in backends:
        lines.append(
            f'genai_gateway_backend_up{{backend="{label(name)}",url="{label(url)}"}} {int(up)}'
        )
    family("genai_gateway_requests_in_flight", "gauge", "Requests being answered now.")
    lines.append(f"genai_gateway_requests_in_flight {in_flight}")
    return "\n".join(lines) + "\n"
