"""One run of a playbook: what to run, its handle, and its execution in a thread of its own.

A run gets its own ansible-runner private_data_dir (removed afterwards) and its artifacts in
``<state>/artifacts/<run id>/`` (see :mod:`genai_stack.artifacts`). Its secrets reach
ansible-playbook through 0600 files deleted after the run, never its command line. When it
ends, every process it left is stopped before its hosts' lock goes (see :mod:`genai_stack.locks`).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import secrets as pysecrets
import shlex
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import ansible_runner  # type: ignore[import-untyped]

from genai_stack import artifacts
from genai_stack.events import EventCollector, EventHandler, FinishHandler, RunResult
from genai_stack.locks import RUN_MARKER, HostLock, stop_run_processes
from genai_stack.secrets import Masker, SecretFiles, secret_values

if TYPE_CHECKING:
    from genai_stack.driver import Driver

log = logging.getLogger(__name__)

#: how often (seconds) ansible-runner polls the cancel callback
CANCEL_POLL_S = 0.25


@dataclass
class RunRequest:
    """What to run. ``playbook``: a name (``validate``), a CLI verb (``deploy``) or a path.

    ``extra_vars`` reach ansible-playbook on its command line (and ansible-runner's record of
    it); ``secret_vars`` only through a 0600 file deleted after the run, and are masked in the
    events and artifacts. ``vault_password`` likewise; ``vault_password_file`` is a path.
    """

    playbook: str
    inventory: str | list[str] | None = None
    limit: str | None = None
    tags: list[str] = field(default_factory=list)
    skip_tags: list[str] = field(default_factory=list)
    extra_vars: dict[str, Any] = field(default_factory=dict)
    secret_vars: dict[str, Any] = field(default_factory=dict, repr=False)
    check: bool = False
    diff: bool = False
    verbosity: int = 0
    forks: int | None = None
    timeout: int | None = None
    vault_password_file: str | None = None
    vault_password: str | None = field(default=None, repr=False)
    user: str | None = None
    #: environment of the ansible processes, over the driver's (no secrets: it is recorded)
    env: dict[str, str] = field(default_factory=dict)


def new_run_id() -> str:
    """Sortable and unique: UTC time and 6 random hex digits."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S") + "-" + pysecrets.token_hex(3)


def now_iso() -> str:
    """The UTC time to the second, as runs record it."""
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


def vault_env(request: RunRequest, files: SecretFiles | None) -> dict[str, str]:
    """The environment that gives ansible the request's vault password; a password given as
    a value is written to ``files``."""
    if request.vault_password is not None and files is not None:
        path = files.write("vault-password", request.vault_password + "\n")
        return {"ANSIBLE_VAULT_PASSWORD_FILE": str(path)}
    if request.vault_password_file:
        return {"ANSIBLE_VAULT_PASSWORD_FILE": str(Path(request.vault_password_file).resolve())}
    return {}


class RunHandle:
    """A run in progress in its own thread: :meth:`cancel` from anywhere, :meth:`wait` for it."""

    def __init__(self, run_id: str, request: RunRequest) -> None:
        self.run_id = run_id
        self.request = request
        self.hosts: list[str] = []
        self._cancel = threading.Event()
        self._done = threading.Event()
        self._result: RunResult | None = None
        self._thread: threading.Thread | None = None

    def cancel(self) -> None:
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    @property
    def done(self) -> bool:
        return self._done.is_set()

    @property
    def result(self) -> RunResult | None:
        return self._result

    def wait(self, timeout: float | None = None) -> RunResult | None:
        self._done.wait(timeout)
        return self._result

    def _finish(self, result: RunResult) -> None:
        self._result = result
        self._done.set()


class RunExecution:
    """One run of ``driver``, from ansible-runner's start to the handle's result."""

    def __init__(
        self,
        driver: Driver,
        handle: RunHandle,
        playbook: Path,
        on_event: EventHandler | None,
        on_finish: FinishHandler | None,
    ) -> None:
        self.driver = driver
        self.handle = handle
        self.request = handle.request
        self.playbook = playbook
        self.name = driver.project.playbook_name(playbook)
        self.on_finish = on_finish
        self.artifact_dir = driver.artifacts_dir / handle.run_id
        self.private_dir = driver.private_root / handle.run_id
        secret_list = secret_values(self.request.secret_vars)
        if self.request.vault_password:
            secret_list += secret_values([self.request.vault_password])
        self.masker = Masker(secret_list)
        self.collector = EventCollector(handle.run_id, self.name, self.masker, on_event)
        self.files: SecretFiles | None = None

    def run(self, lock: HostLock | None) -> None:
        """The run's thread: run the playbook, stop what it left, release ``lock``, then finish
        the handle with the result (``on_finish`` first)."""
        run_id = self.handle.run_id
        started_at, clock = now_iso(), time.monotonic()
        status, rc, error = "error", -1, None
        try:
            runner = ansible_runner.run(**self._runner_kwargs())
            status, rc = str(runner.status), int(runner.rc if runner.rc is not None else -1)
        except Exception as exc:
            log.exception("run %s failed to run", run_id)
            status, error = "error", f"{type(exc).__name__}: {self.masker.text(str(exc))}"
        finally:
            self._clean_up(lock)
        if status == "canceled" or (self.handle.cancel_requested and status != "successful"):
            status = "canceled"
        if error is None and status != "successful":
            error = self._explain(status, rc)
        result = RunResult(
            run_id=run_id,
            playbook=self.name,
            status=status,
            rc=rc,
            started_at=started_at,
            finished_at=now_iso(),
            duration_s=round(time.monotonic() - clock, 3),
            stats=self.collector.host_stats(),
            failed_tasks=list(self.collector.failed),
            check=self.request.check,
            limit=self.request.limit,
            hosts=list(self.handle.hosts),
            artifact_dir=str(self.artifact_dir) if self.artifact_dir.exists() else None,
            error=error,
        )
        if self.on_finish is not None:
            try:
                self.on_finish(result)
            except Exception:
                log.exception("finish handler failed on %s", run_id)
        self.handle._finish(result)

    def _runner_kwargs(self) -> dict[str, Any]:
        """ansible_runner.run's arguments (the run's secret files written, its dirs made)."""
        request = self.request
        if request.secret_vars or request.vault_password:
            self.files = SecretFiles()
        cmdline = self._cmdline()
        env = self._env()
        self.driver.artifacts_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.private_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        inventories = self.driver.inventory_paths(request.inventory)
        return {
            "private_data_dir": str(self.private_dir),
            "project_dir": str(self.driver.project.root),
            "artifact_dir": str(self.driver.artifacts_dir),
            "ident": self.handle.run_id,
            "playbook": str(self.playbook),
            "inventory": inventories or None,
            "limit": request.limit or None,
            "tags": ",".join(request.tags) or None,
            "skip_tags": ",".join(request.skip_tags) or None,
            "extravars": dict(request.extra_vars) or None,
            "cmdline": " ".join(shlex.quote(a) for a in cmdline) or None,
            "envvars": env,
            "settings": {
                "pexpect_timeout": CANCEL_POLL_S,
                # with secrets, no raw stdout file: events (masked) hold the output
                "suppress_output_file": bool(self.masker),
            },
            "rotate_artifacts": self.driver.keep_artifacts,
            "suppress_env_files": True,
            "quiet": True,
            "event_handler": self.collector,
            "cancel_callback": lambda: self.handle.cancel_requested,
            "status_handler": lambda data, runner_config: artifacts.on_status(
                data, self.artifact_dir, self.masker
            ),
            "timeout": request.timeout,
            "verbosity": request.verbosity or None,
            "forks": request.forks,
        }

    def _cmdline(self) -> list[str]:
        """ansible-playbook's options that ansible-runner has no argument for."""
        request = self.request
        cmdline: list[str] = []
        if request.check:
            cmdline.append("--check")
        if request.diff:
            cmdline.append("--diff")
        if request.secret_vars and self.files is not None:
            path = self.files.write("secret-vars.json", json.dumps(request.secret_vars))
            cmdline += ["-e", f"@{path}"]
        return cmdline

    def _env(self) -> dict[str, str]:
        env = self.driver.envvars()
        env.update(self.request.env)
        env.update(vault_env(self.request, self.files))
        env[RUN_MARKER] = self.handle.run_id
        return env

    def _clean_up(self, lock: HostLock | None) -> None:
        run_id = self.handle.run_id
        # before the lock goes: the host is busy until every process of the run is gone
        left = stop_run_processes(run_id)
        if left:
            log.warning("run %s left %d process(es); stopped: %s", run_id, len(left), left)
        if self.files is not None:
            self.files.cleanup()
        try:
            artifacts.sanitize(self.artifact_dir, self.masker)
        except OSError:
            log.exception("cannot sanitize the artifacts of %s", run_id)
        shutil.rmtree(self.private_dir, ignore_errors=True)
        if lock is not None:
            lock.release()

    def _explain(self, status: str, rc: int) -> str | None:
        """The error of a run that did not succeed, when ansible-runner gave none."""
        collector = self.collector
        if status == "canceled":
            return "canceled on request"
        if status == "timeout":
            return f"timed out after {self.request.timeout}s"
        if collector.errors:
            return "\n".join(collector.errors)
        if collector.failed:
            return None
        tail = "\n".join(list(collector.tail)[-10:])
        return f"ansible-playbook exited with rc={rc}" + (f":\n{tail}" if tail else "")
