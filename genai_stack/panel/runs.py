"""The panel's runs: started through the driver, recorded in the history as they go."""

from __future__ import annotations

import datetime as dt
import re
import threading
from dataclasses import dataclass

from genai_stack.driver import Driver, DriverError, RunHandle, RunRequest, new_run_id
from genai_stack.events import RunEvent, RunResult
from genai_stack.panel.store import History, RunRow

#: what a limit or tag list may contain from a form: Ansible host patterns without '@file'
LIMIT_RE = re.compile(r"^[A-Za-z0-9_.:,!&*\[\]-]{1,200}$")
TAGS_RE = re.compile(r"^[A-Za-z0-9_,-]{1,200}$")


class RunRefused(ValueError):
    """A run request the panel does not start (bad input, no hosts)."""


@dataclass(frozen=True)
class RunForm:
    playbook: str
    limit: str | None
    check: bool
    tags: list[str]


class RunManager:
    """Starts runs (one at a time per host, through the driver's host locks) and records them."""

    def __init__(
        self,
        driver: Driver,
        history: History,
        inventory: str | None = None,
        vault_password_file: str | None = None,
    ) -> None:
        self.driver = driver
        self.history = history
        self.inventory = inventory
        self.vault_password_file = vault_password_file
        self._active: dict[str, RunHandle] = {}
        self._lock = threading.Lock()

    def playbooks(self) -> list[str]:
        return list(self.driver.playbooks())

    def validate(self, playbook: str, limit: str, check: bool, tags: str) -> RunForm:
        if playbook not in self.driver.playbooks():
            raise RunRefused(f"unknown playbook '{playbook}'")
        limit = limit.strip()
        if limit and not LIMIT_RE.match(limit):
            raise RunRefused(
                "the limit may hold host or group names and the pattern characters : , ! & *"
            )
        tags = tags.strip().replace(" ", "")
        if tags and not TAGS_RE.match(tags):
            raise RunRefused("tags are names separated by commas")
        return RunForm(playbook, limit or None, check, [t for t in tags.split(",") if t])

    def start(self, form: RunForm, user: str) -> str:
        """Start a run; raises HostBusy (another run holds a host) or RunRefused."""
        request = RunRequest(
            playbook=form.playbook,
            inventory=self.inventory,
            limit=form.limit,
            tags=form.tags,
            check=form.check,
            vault_password_file=self.vault_password_file,
            user=user,
        )
        run_id = new_run_id()
        try:
            hosts = self.driver.hosts_for(request)
        except DriverError as exc:
            raise RunRefused(str(exc)) from exc
        if not hosts:
            raise RunRefused(f"no host of the inventory matches '{form.limit or 'all'}'")
        lock = self.driver.lock_hosts(hosts, run_id, request)
        try:
            self.history.create(
                RunRow(
                    id=run_id,
                    playbook=form.playbook,
                    status="running",
                    started_at=_now(),
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
        self.history.add_event(event)

    def _on_finish(self, result: RunResult) -> None:
        self.history.finish(result)
        with self._lock:
            self._active.pop(result.run_id, None)

    def handle(self, run_id: str) -> RunHandle | None:
        with self._lock:
            return self._active.get(run_id)

    def cancel(self, run_id: str) -> bool:
        handle = self.handle(run_id)
        if handle is None:
            return False
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


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
