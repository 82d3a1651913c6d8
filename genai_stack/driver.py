"""Run this project's playbooks through ansible-runner, streaming typed events.

::

    driver = Driver()                       # the project found from the cwd, state in .cache/runs
    result = driver.run(RunRequest("validate", limit="gpu-host"), on_event=print)
    handle = driver.start(RunRequest("site", check=True))   # in a thread
    handle.cancel()                          # from any thread
    result = handle.wait()

Each run gets its own ansible-runner private_data_dir (removed afterwards) and its artifacts in
``<state>/artifacts/<run id>/``, rotated to the newest ``keep_artifacts``. The project is the
repository root (``project_dir``), with ``ANSIBLE_CONFIG`` and ``ANSIBLE_COLLECTIONS_PATH`` set to
its ansible.cfg and collections/. Secrets never reach a command line or an artifact: see
:mod:`genai_stack.secrets`. One run at a time per host: see :mod:`genai_stack.locks`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import logging
import os
import re
import secrets as pysecrets
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ansible_runner  # type: ignore[import-untyped]

from genai_stack.events import (
    EventKind,
    FailedTask,
    HostStats,
    RunEvent,
    RunResult,
    event_from_runner,
)
from genai_stack.locks import RUN_MARKER, HostLock, HostLocks, machine_key, run_processes
from genai_stack.project import Project
from genai_stack.secrets import MASK, Masker, SecretFiles, is_sensitive_env, secret_values

log = logging.getLogger(__name__)

EventHandler = Callable[[RunEvent], None]
FinishHandler = Callable[[RunResult], None]

#: how often (seconds) ansible-runner polls the cancel callback
CANCEL_POLL_S = 0.25
#: seconds the processes of an ended run get between SIGTERM and SIGKILL
STOP_GRACE_S = 5.0


def stop_run_processes(run_id: str, grace: float = STOP_GRACE_S) -> list[int]:
    """SIGTERM every process left by ``run_id``, SIGKILL what is still there after ``grace``;
    returns the pids that were left."""
    left = run_processes(run_id)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in run_processes(run_id):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, sig)
        deadline = time.monotonic() + grace
        while run_processes(run_id) and time.monotonic() < deadline:
            time.sleep(0.05)
    return left


_HOSTS_LINE = re.compile(r"^\s+hosts \((\d+)\):\s*$")


class DriverError(RuntimeError):
    """A command the driver runs for itself (inventory, host listing) failed."""


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


def _now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


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


class _Collector:
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


class Driver:
    """Runs the project's playbooks with ansible-runner."""

    def __init__(
        self,
        project: Project | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        keep_artifacts: int = 20,
        inventory: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.project = project or Project.discover()
        self.state_dir = Path(state_dir) if state_dir else self.project.default_state_dir
        self.keep_artifacts = keep_artifacts
        self.default_inventory = inventory
        self.extra_env = dict(env or {})
        self.artifacts_dir = self.state_dir / "artifacts"
        self.private_root = self.state_dir / "private"
        self.locks = HostLocks(self.state_dir / "locks")

    # -- environment -----------------------------------------------------------------------
    def envvars(self) -> dict[str, str]:
        """What every ansible process of this driver gets on top of the inherited environment."""
        bin_dir = str(Path(sys.executable).parent)
        path = os.environ.get("PATH", "")
        if bin_dir not in path.split(os.pathsep):
            path = bin_dir + os.pathsep + path if path else bin_dir
        env = {
            "ANSIBLE_CONFIG": str(self.project.ansible_cfg),
            "ANSIBLE_COLLECTIONS_PATH": str(self.project.collections_dir),
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_NOCOLOR": "1",
            "PATH": path,
        }
        env.update(self.extra_env)
        return env

    def _subprocess_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(self.envvars())
        env.update(extra or {})
        return env

    def inventory_paths(self, inventory: str | list[str] | None) -> list[str]:
        """Absolute paths of the request's inventories ([] = ansible.cfg's default)."""
        chosen = inventory if inventory is not None else self.default_inventory
        if chosen is None:
            return []
        items = [chosen] if isinstance(chosen, str) else list(chosen)
        paths = []
        for item in items:
            path = Path(item)
            if not path.is_absolute():
                path = self.project.root / path
            if not path.exists():
                raise DriverError(f"inventory not found: {item}")
            paths.append(str(path.resolve()))
        return paths

    def _inventory_args(self, inventory: str | list[str] | None) -> list[str]:
        args: list[str] = []
        for path in self.inventory_paths(inventory):
            args += ["-i", path]
        return args

    def _vault_env(self, request: RunRequest, files: SecretFiles | None) -> dict[str, str]:
        if request.vault_password is not None and files is not None:
            path = files.write("vault-password", request.vault_password + "\n")
            return {"ANSIBLE_VAULT_PASSWORD_FILE": str(path)}
        if request.vault_password_file:
            return {"ANSIBLE_VAULT_PASSWORD_FILE": str(Path(request.vault_password_file).resolve())}
        return {}

    # -- reading the project ---------------------------------------------------------------
    def playbooks(self) -> dict[str, Path]:
        return self.project.playbooks()

    def inventory(
        self,
        inventory: str | list[str] | None = None,
        vault_password_file: str | None = None,
    ) -> dict[str, Any]:
        """``ansible-inventory --list`` as JSON, with the playbooks' group_vars applied."""
        cmd = [
            "ansible-inventory",
            "--list",
            "--playbook-dir",
            str(self.project.root / "playbooks"),
        ]
        cmd += self._inventory_args(inventory)
        proc = self._read_only(cmd, vault_password_file, timeout=120)
        if proc.returncode != 0:
            raise DriverError(f"ansible-inventory failed: {proc.stderr.strip() or proc.stdout}")
        data = json.loads(proc.stdout)
        if not isinstance(data, dict):
            raise DriverError("ansible-inventory did not return a mapping")
        return data

    def _read_only(
        self,
        cmd: list[str],
        vault_password_file: str | None,
        timeout: float,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        """An ansible command that only reads (inventory, the stack model), run to its end."""
        extra = dict(env or {})
        if vault_password_file:
            extra["ANSIBLE_VAULT_PASSWORD_FILE"] = vault_password_file
        return subprocess.run(
            cmd,
            cwd=self.project.root,
            env=self._subprocess_env(extra),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def stack_models(
        self,
        inventory: str | list[str] | None = None,
        vault_password_file: str | None = None,
    ) -> dict[str, dict[str, Any]]:
        """Each host's stack model, built by Ansible itself: playbooks/stack_model.yml in check
        mode, GPUs as declared (no connection to the hosts). Per host ``{"model": ...}``, or
        ``{"problems": [...]}`` when its model is refused, each naming the variable."""
        if "stack_model" not in self.project.playbooks():
            return {}  # a project without the collection's playbooks models no service
        cmd = ["ansible-playbook", str(self.project.resolve_playbook("stack_model")), "--check",
               "-e", "genai_discover_gpus=false", *self._inventory_args(inventory)]  # fmt: skip
        proc = self._read_only(
            cmd,
            vault_password_file,
            timeout=300,
            env={"ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json"},
        )
        try:
            report = json.loads(proc.stdout)
        except json.JSONDecodeError as exc:
            raise DriverError(f"stack_model.yml failed: {proc.stderr.strip()[-2000:]}") from exc
        models: dict[str, dict[str, Any]] = {}
        for play in report.get("plays") or []:
            for task in play.get("tasks") or []:
                if task["task"]["name"] != "Build and check the stack model":
                    continue
                for host, res in (task.get("hosts") or {}).items():
                    if res.get("failed"):
                        models[host] = {"problems": res.get("problems") or [res.get("msg", "")]}
                    elif "model" in res:
                        models[host] = {"model": res["model"]}
        return models

    def hosts_for(self, request: RunRequest) -> list[str]:
        """The hosts the request's playbook would touch (``ansible-playbook --list-hosts``)."""
        playbook = self.project.resolve_playbook(request.playbook)
        cmd = ["ansible-playbook", "--list-hosts", *self._inventory_args(request.inventory)]
        if request.limit:
            cmd += ["--limit", request.limit]
        if request.tags:
            cmd += ["--tags", ",".join(request.tags)]
        if request.skip_tags:
            cmd += ["--skip-tags", ",".join(request.skip_tags)]
        if request.extra_vars:
            cmd += ["-e", json.dumps(request.extra_vars)]
        cmd.append(str(playbook))
        files = SecretFiles() if request.vault_password else None
        try:
            proc = subprocess.run(
                cmd,
                cwd=self.project.root,
                env=self._subprocess_env(self._vault_env(request, files)),
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
        finally:
            if files is not None:
                files.cleanup()
        if proc.returncode != 0:
            raise DriverError(
                f"cannot list the hosts of {playbook.name}: {proc.stderr.strip() or proc.stdout}"
            )
        return parse_list_hosts(proc.stdout)

    def machines(self, request: RunRequest, hosts: list[str]) -> dict[str, str]:
        """Each host's machine, ``ansible_host:port`` as the request's inventory sets them
        (:func:`~genai_stack.locks.machine_key`)."""
        playbook = self.project.resolve_playbook(request.playbook)
        cmd = ["ansible-inventory", "--list", "--playbook-dir", str(playbook.parent),
               *self._inventory_args(request.inventory)]  # fmt: skip
        files = SecretFiles() if request.vault_password else None
        try:
            proc = self._read_only(cmd, None, timeout=120, env=self._vault_env(request, files))
        finally:
            if files is not None:
                files.cleanup()
        if proc.returncode != 0:
            raise DriverError(f"ansible-inventory failed: {proc.stderr.strip() or proc.stdout}")
        hostvars = (json.loads(proc.stdout).get("_meta") or {}).get("hostvars") or {}
        return {host: machine_key(host, hostvars.get(host) or {}) for host in hosts}

    def lock_hosts(self, hosts: list[str], run_id: str, request: RunRequest) -> HostLock:
        """Lock the machines of ``hosts`` for ``run_id``; raises
        :class:`~genai_stack.locks.HostBusy`."""
        holder = {
            "run_id": run_id,
            "playbook": self.project.playbook_name(self.project.resolve_playbook(request.playbook)),
            "user": request.user,
        }
        return self.locks.acquire(hosts, holder, self.machines(request, hosts))

    # -- running -----------------------------------------------------------------------------
    def run(
        self,
        request: RunRequest,
        on_event: EventHandler | None = None,
        *,
        run_id: str | None = None,
        lock: HostLock | None = None,
        lock_hosts: bool = True,
    ) -> RunResult:
        """Run and wait; Ctrl-C (KeyboardInterrupt) in the calling thread cancels the run."""
        handle = self.start(request, on_event, run_id=run_id, lock=lock, lock_hosts=lock_hosts)
        try:
            while not handle.done:
                handle.wait(0.2)
        except KeyboardInterrupt:
            handle.cancel()
            handle.wait()
        result = handle.result
        assert result is not None
        return result

    def start(
        self,
        request: RunRequest,
        on_event: EventHandler | None = None,
        *,
        run_id: str | None = None,
        lock: HostLock | None = None,
        lock_hosts: bool = True,
        on_finish: FinishHandler | None = None,
    ) -> RunHandle:
        """Start a run in a thread and return its handle.

        With ``lock`` the run owns that lock and releases it when it ends; else, with
        ``lock_hosts``, the request's hosts are locked first (HostBusy raised here, nothing run).
        ``on_finish`` gets the result in the run's thread before :meth:`RunHandle.wait` returns.
        """
        run_id = run_id or new_run_id()
        playbook = self.project.resolve_playbook(request.playbook)
        both = sorted(set(request.extra_vars) & set(request.secret_vars))
        if both:
            raise ValueError(f"variables both plain and secret: {', '.join(both)}")
        handle = RunHandle(run_id, request)
        owned = lock is None and lock_hosts
        if owned:
            hosts = self.hosts_for(request)
            lock = self.lock_hosts(hosts, run_id, request)
        if lock is not None:
            try:
                lock.keep_for(run_id)  # the machines stay locked while the run's processes live
            except BaseException:
                if owned:
                    lock.release()
                raise
        handle.hosts = list(lock.hosts) if lock is not None else []
        thread = threading.Thread(
            target=self._execute,
            args=(handle, playbook, on_event, lock, on_finish),
            name=f"genai-stack-run-{run_id}",
            daemon=True,
        )
        handle._thread = thread
        thread.start()
        return handle

    def _execute(
        self,
        handle: RunHandle,
        playbook: Path,
        on_event: EventHandler | None,
        lock: HostLock | None,
        on_finish: FinishHandler | None = None,
    ) -> None:
        request = handle.request
        run_id = handle.run_id
        name = self.project.playbook_name(playbook)
        started_at = _now_iso()
        clock = time.monotonic()
        artifact_dir = self.artifacts_dir / run_id
        secret_list = secret_values(request.secret_vars)
        if request.vault_password:
            secret_list += secret_values([request.vault_password])
        masker = Masker(secret_list)
        collector = _Collector(run_id, name, masker, on_event)
        files: SecretFiles | None = None
        status, rc, error = "error", -1, None
        private = self.private_root / run_id
        try:
            if request.secret_vars or request.vault_password:
                files = SecretFiles()
            cmdline: list[str] = []
            if request.check:
                cmdline.append("--check")
            if request.diff:
                cmdline.append("--diff")
            if request.secret_vars and files is not None:
                path = files.write("secret-vars.json", json.dumps(request.secret_vars))
                cmdline += ["-e", f"@{path}"]
            env = self.envvars()
            env.update(request.env)
            env.update(self._vault_env(request, files))
            env[RUN_MARKER] = run_id
            self.artifacts_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            private.mkdir(parents=True, exist_ok=True, mode=0o700)
            inventories = self.inventory_paths(request.inventory)
            kwargs: dict[str, Any] = {
                "private_data_dir": str(private),
                "project_dir": str(self.project.root),
                "artifact_dir": str(self.artifacts_dir),
                "ident": run_id,
                "playbook": str(playbook),
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
                    "suppress_output_file": bool(masker),
                },
                "rotate_artifacts": self.keep_artifacts,
                "suppress_env_files": True,
                "quiet": True,
                "event_handler": collector,
                "cancel_callback": lambda: handle.cancel_requested,
                "status_handler": lambda data, runner_config: self._on_status(
                    data, artifact_dir, masker
                ),
                "timeout": request.timeout,
                "verbosity": request.verbosity or None,
                "forks": request.forks,
            }
            runner = ansible_runner.run(**kwargs)
            status, rc = str(runner.status), int(runner.rc if runner.rc is not None else -1)
        except Exception as exc:
            log.exception("run %s failed to run", run_id)
            status, error = "error", f"{type(exc).__name__}: {masker.text(str(exc))}"
        finally:
            # before the lock goes: the host is busy until every process of the run is gone
            left = stop_run_processes(run_id)
            if left:
                log.warning("run %s left %d process(es); stopped: %s", run_id, len(left), left)
            if files is not None:
                files.cleanup()
            try:
                self._sanitize_artifacts(artifact_dir, masker)
            except OSError:
                log.exception("cannot sanitize the artifacts of %s", run_id)
            shutil.rmtree(private, ignore_errors=True)
            if lock is not None:
                lock.release()
        if status == "canceled" or (handle.cancel_requested and status != "successful"):
            status = "canceled"
        if error is None and status != "successful":
            error = self._explain(status, rc, collector, request)
        result = RunResult(
            run_id=run_id,
            playbook=name,
            status=status,
            rc=rc,
            started_at=started_at,
            finished_at=_now_iso(),
            duration_s=round(time.monotonic() - clock, 3),
            stats=collector.host_stats(),
            failed_tasks=list(collector.failed),
            check=request.check,
            limit=request.limit,
            hosts=list(handle.hosts),
            artifact_dir=str(artifact_dir) if artifact_dir.exists() else None,
            error=error,
        )
        if on_finish is not None:
            try:
                on_finish(result)
            except Exception:
                log.exception("finish handler failed on %s", run_id)
        handle._finish(result)

    @staticmethod
    def _explain(status: str, rc: int, collector: _Collector, request: RunRequest) -> str | None:
        if status == "canceled":
            return "canceled on request"
        if status == "timeout":
            return f"timed out after {request.timeout}s"
        if collector.errors:
            return "\n".join(collector.errors)
        if collector.failed:
            return None
        tail = "\n".join(list(collector.tail)[-10:])
        return f"ansible-playbook exited with rc={rc}" + (f":\n{tail}" if tail else "")

    def _on_status(self, data: dict[str, Any], artifact_dir: Path, masker: Masker) -> None:
        # ansible-runner writes artifacts/<id>/command (argv, cwd, the whole environment) just
        # before 'running': rewrite it at once without sensitive environment values.
        if data.get("status") == "running":
            try:
                self._sanitize_command(artifact_dir / "command", masker)
            except OSError:
                log.exception("cannot sanitize %s", artifact_dir / "command")

    @staticmethod
    def _sanitize_command(path: Path, masker: Masker) -> None:
        if not path.is_file():
            return
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            return
        env = data.get("env")
        if isinstance(env, dict):
            data["env"] = {k: (MASK if is_sensitive_env(k) else v) for k, v in env.items()}
        data = masker.data(data)
        fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(data, handle)

    def _sanitize_artifacts(self, artifact_dir: Path, masker: Masker) -> None:
        if not artifact_dir.exists():
            return
        self._sanitize_command(artifact_dir / "command", masker)
        for partial in (artifact_dir / "job_events").glob("*-partial.json"):
            partial.unlink(missing_ok=True)
        masker.scrub_tree(artifact_dir)

    # -- history on disk ----------------------------------------------------------------------
    def artifact_runs(self) -> list[Path]:
        """The runs whose artifacts are kept, oldest first."""
        if not self.artifacts_dir.is_dir():
            return []
        return sorted(
            (p for p in self.artifacts_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime
        )


def parse_list_hosts(output: str) -> list[str]:
    """Host names from ``ansible-playbook --list-hosts`` output (every play, deduplicated)."""
    hosts: list[str] = []
    lines = output.splitlines()
    for i, line in enumerate(lines):
        match = _HOSTS_LINE.match(line)
        if not match:
            continue
        for entry in lines[i + 1 : i + 1 + int(match.group(1))]:
            name = entry.strip()
            if name and name not in hosts:
                hosts.append(name)
    return hosts
