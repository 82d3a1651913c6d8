"""The panel's runs: started through the driver, recorded in the history as they go."""

from __future__ import annotations

import dataclasses
import logging
import re
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from genai_stack.driver import Driver, DriverError
from genai_stack.events import RunEvent, RunResult
from genai_stack.panel import catalog
from genai_stack.panel.progress import Progress, cancel_account
from genai_stack.panel.store import History, RunRow
from genai_stack.runs import RunHandle, RunRequest, new_run_id, now_iso

log = logging.getLogger(__name__)

#: what a limit or tag list may contain from a form: Ansible host patterns without '@file'
LIMIT_MAX = 200
LIMIT_RE = re.compile(r"^[A-Za-z0-9_.:,!&*\[\]-]+$")
TAGS_MAX = 200
TAGS_RE = re.compile(r"^[A-Za-z0-9_,-]+$")
#: what ansible-playbook --list-hosts says when a limit matches nothing
#: the most events a run's progress is read from
EVENTS_MAX = 100_000
_NO_MATCH = ("could not match supplied host pattern", "no hosts to target", "no hosts matched")


class RunRefused(ValueError):
    """A run request the panel does not start (bad input, no hosts)."""


class NeedsConfirmation(RunRefused):
    """A playbook that changes hosts, submitted without its confirmation."""


@dataclass(frozen=True)
class RunForm:
    playbook: str
    limit: str | None
    check: bool
    tags: list[str]
    extra_vars: dict[str, Any] = field(default_factory=dict)


def _check_limit(limit: str) -> str | None:
    limit = limit.strip()
    if not limit:
        return None
    if len(limit) > LIMIT_MAX:
        raise RunRefused(f"the limit is too long ({len(limit)} characters, at most {LIMIT_MAX})")
    if limit.startswith("@"):
        raise RunRefused("the limit cannot read a file (@...): name hosts or groups")
    if not LIMIT_RE.match(limit):
        bad = sorted({c for c in limit if not LIMIT_RE.match(c)})
        raise RunRefused(
            f"the limit holds {' '.join(repr(c) for c in bad)}: it may hold host or group names "
            "and the pattern characters : , ! & * [ ]"
        )
    return limit


def _check_tags(tags: str) -> list[str]:
    tags = tags.strip().replace(" ", "")
    if len(tags) > TAGS_MAX:
        raise RunRefused(f"the tags are too long ({len(tags)} characters, at most {TAGS_MAX})")
    if tags and not TAGS_RE.match(tags):
        raise RunRefused("tags are names (letters, digits, _ and -) separated by commas")
    return [t for t in tags.split(",") if t]


def _no_host_message(limit: str | None, error: str) -> str:
    """A readable refusal for ansible's listing error (its warnings left out)."""
    if any(marker in error.lower() for marker in _NO_MATCH):
        return f"the limit '{limit or 'all'}' matches no host of the inventory"
    lines = [line for line in error.splitlines() if "[WARNING]" not in line]
    text = " ".join(line.strip() for line in lines if line.strip())
    return re.sub(r"\[ERROR\]:\s*", "", text) or error


class RunManager:
    """Starts runs (one at a time per host, through the driver's host locks) and records them.

    A writer thread saves the runs' events and ends in the history, so a locked database
    never stalls a run; meanwhile :meth:`row` and :meth:`events` serve what is not saved yet.
    A run's end that cannot be saved within ``finish_retry_s`` makes the run ``error`` (saved
    as such once the database is free again): a run never stays ``running`` after its end.
    """

    def __init__(
        self,
        driver: Driver,
        history: History,
        inventory: str | None = None,
        vault_password_file: str | None = None,
        finish_retry_s: float = 30.0,
    ) -> None:
        self.driver = driver
        self.history = history
        self.inventory = inventory
        self.vault_password_file = vault_password_file
        self.finish_retry_s = finish_retry_s
        self._active: dict[str, RunHandle] = {}
        self._pending: dict[str, list[RunEvent]] = {}
        self._ended: dict[str, tuple[RunResult, float]] = {}  # not saved yet; until when to try
        self._cancels: dict[str, str] = {}  # what a cancel stopped, said when the run ends
        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)
        self._stopping = False
        self._writer = threading.Thread(
            target=self._write_loop, name="genai-stack-history", daemon=True
        )
        self._writer.start()

    def playbooks(self) -> list[catalog.PlaybookInfo]:
        """The playbooks the panel runs, with what each does."""
        return catalog.offered(list(self.driver.playbooks()))

    def backups(self) -> list[str]:
        named = [Path(p) for p in self.driver.inventory_paths(self.inventory)]
        default = self.driver.project.configured_inventory()
        inventories = named or ([default] if default else [])
        return catalog.backups(self.driver.project.root, inventories)

    def validate(
        self,
        playbook: str,
        limit: str,
        check: bool,
        tags: str,
        extra_vars: str = "",
        confirmed: bool = True,
        backup_from: str = "",
    ) -> RunForm:
        """The form's run, or RunRefused naming what is wrong with it."""
        offered = {p.name: p for p in self.playbooks()}
        if playbook not in offered:
            raise RunRefused(f"unknown playbook '{playbook}'")
        info = offered[playbook]
        form = RunForm(
            playbook, _check_limit(limit), check or info.force_check, _check_tags(tags),
            self._extra_vars(playbook, extra_vars, backup_from.strip()),
        )  # fmt: skip
        if info.confirm and not confirmed and not form.check:
            raise NeedsConfirmation(f"{playbook} changes the hosts: confirm to run it")
        return form

    def _extra_vars(self, playbook: str, text: str, backup_from: str = "") -> dict[str, Any]:
        try:
            data = catalog.parse_extra_vars(text)
        except catalog.ExtraVarsError as exc:
            raise RunRefused(str(exc)) from exc
        if playbook == "restore":
            if backup_from:
                data["backup_from"] = backup_from
            known = self.backups()
            chosen = str(data.get("backup_from") or "")
            if not chosen:
                raise RunRefused("restore needs backup_from: pick one of the backups")
            if chosen not in known:
                raise RunRefused(f"there is no backup '{chosen}' (there are: "
                                 f"{', '.join(known) or 'none yet, run backup first'})")  # fmt: skip
        return data

    def start(self, form: RunForm, user: str) -> str:
        """Start a run; raises HostBusy (another run holds a host) or RunRefused."""
        request = RunRequest(
            playbook=form.playbook,
            inventory=self.inventory,
            limit=form.limit,
            tags=form.tags,
            check=form.check,
            extra_vars=dict(form.extra_vars),
            vault_password_file=self.vault_password_file,
            user=user,
        )
        run_id = new_run_id()
        if form.playbook == "status":  # its reports, kept with the run's state
            reports = self.driver.state_dir / "status-runs" / run_id
            request.extra_vars["status_report_dir"] = str(reports)
        try:
            hosts = self.driver.hosts_for(request)
        except DriverError as exc:
            raise RunRefused(_no_host_message(form.limit, str(exc))) from exc
        if not hosts:
            raise RunRefused(f"no host of the inventory matches '{form.limit or 'all'}'")
        lock = self.driver.lock_hosts(hosts, run_id, request)
        try:
            self.history.create(
                RunRow(
                    id=run_id,
                    playbook=form.playbook,
                    status="running",
                    started_at=now_iso(),
                    inventory=self.inventory,
                    limit=form.limit,
                    tags=",".join(form.tags) or None,
                    check=form.check,
                    user=user,
                    hosts=hosts,
                )
            )
            handle = self.driver.start(
                request,
                on_event=self._on_event,
                run_id=run_id,
                lock=lock,
                on_finish=self._on_finish,
            )
        except BaseException:
            lock.release()
            raise
        with self._lock:
            self._active[run_id] = handle
        return run_id

    def _on_event(self, event: RunEvent) -> None:
        with self._work:
            self._pending.setdefault(event.run_id, []).append(event)
            self._work.notify_all()

    def _on_finish(self, result: RunResult) -> None:
        with self._work:
            account = self._cancels.pop(result.run_id, None)
            if account and result.status == "canceled":
                result = dataclasses.replace(result, error=account[:1].upper() + account[1:])
            self._ended[result.run_id] = (result, time.monotonic() + self.finish_retry_s)
            self._active.pop(result.run_id, None)
            self._work.notify_all()

    def _final(self, result: RunResult, deadline: float) -> RunResult | None:
        """What the run's end is now: None while it may still be saved as it is."""
        if time.monotonic() < deadline:
            return None
        return dataclasses.replace(
            result,
            status="error",
            error=(
                f"the history database stayed locked by another process when the run ended "
                f"(it ended {result.status}, rc={result.rc})"
                + (f": {result.error}" if result.error else "")
            ),
        )

    def _write_loop(self) -> None:
        while True:
            with self._work:
                self._work.wait_for(lambda: self._stopping or bool(self._pending or self._ended))
                if self._stopping and not (self._pending or self._ended):
                    return
                pending = {run: list(events) for run, events in self._pending.items()}
                ended = dict(self._ended)
            saved = all([self._save(run, pending.get(run, []), ended.get(run))
                         for run in {*pending, *ended}])  # fmt: skip
            if not saved:
                with self._work:
                    if self._stopping:
                        return
                    self._work.wait(0.2)

    def _save(
        self, run_id: str, events: list[RunEvent], end: tuple[RunResult, float] | None
    ) -> bool:
        try:
            if events:
                self.history.add_events(events, retry_s=0)
                with self._work:
                    left = self._pending.get(run_id, [])[len(events) :]
                    if left:
                        self._pending[run_id] = left
                    else:
                        self._pending.pop(run_id, None)
            if end is not None:
                result = self._final(*end) or end[0]
                self.history.finish(result, retry_s=0)
                with self._work:
                    self._ended.pop(run_id, None)
            return True
        except (sqlite3.Error, RuntimeError) as exc:  # HistoryBusy, or a closed database
            log.debug("history of %s not saved yet: %s", run_id, exc)
            return False

    def row(self, run_id: str) -> RunRow | None:
        """The run as the history holds it, with its end when that is not saved yet."""
        with self._work:
            end = self._ended.get(run_id)
        row = self.history.get(run_id)
        final = self._final(*end) if end is not None else None
        if row is None or final is None:
            return row
        return dataclasses.replace(
            row,
            status=final.status,
            rc=final.rc,
            finished_at=final.finished_at,
            duration_s=final.duration_s,
            stats=final.stats,
            failed_tasks=final.failed_tasks,
            error=final.error,
        )

    def events(self, run_id: str, after: int = 0, limit: int = 1000) -> list[RunEvent]:
        """The run's events after ``after``: saved, then those not saved yet."""
        with self._work:  # read first: an event is either still here or saved before the read
            pending = [e for e in self._pending.get(run_id, []) if e.seq > after]
        stored = self.history.events(run_id, after, limit)
        seen = {e.seq for e in stored}
        merged = stored + [e for e in pending if e.seq not in seen]
        return sorted(merged, key=lambda e: e.seq)[:limit]

    def handle(self, run_id: str) -> RunHandle | None:
        with self._lock:
            return self._active.get(run_id)

    def progress(self, run_id: str, hosts: list[str]) -> Progress:
        """The run's progress from every event received so far."""
        return Progress.of(hosts, self.events(run_id, 0, EVENTS_MAX))

    def cancel(self, run_id: str) -> bool:
        """Cancel a running run; what it stops (from the events received before the cancel)
        becomes its error when it ends canceled."""
        handle = self.handle(run_id)
        if handle is None:
            return False
        row = self.history.get(run_id)
        hosts, check = (row.hosts, row.check) if row else ([], False)
        account = cancel_account(self.progress(run_id, hosts), check)
        with self._work:
            self._cancels.setdefault(run_id, account)
        handle.cancel()
        return True

    def shutdown(self, timeout: float = 15.0) -> None:
        """Cancel every active run and wait for them (the panel is stopping)."""
        with self._lock:
            handles = list(self._active.values())
        for handle in handles:
            handle.cancel()
        for handle in handles:
            handle.wait(timeout)
        with self._work:
            self._stopping = True
            self._work.notify_all()
        self._writer.join(timeout)
        with self._work:
            if self._pending or self._ended:
                log.warning("history of run(s) %s not saved: the database stayed locked",
                            ", ".join(sorted({*self._pending, *self._ended})))  # fmt: skip
