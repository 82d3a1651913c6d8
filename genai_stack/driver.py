"""Run this project's playbooks through ansible-runner, streaming typed events.

::

    driver = Driver()                       # the project found from the cwd, state in .cache/runs
    result = driver.run(RunRequest("validate", limit="gpu-host"), on_event=print)
    handle = driver.start(RunRequest("site", check=True))   # in a thread
    handle.cancel()                          # from any thread
    result = handle.wait()

The :class:`Driver` sets up the ansible processes (the project is the repository root, with
``ANSIBLE_CONFIG`` and ``ANSIBLE_COLLECTIONS_PATH`` set to its ansible.cfg and collections/),
reads the project through ansible's own commands (inventory, hosts, stack models), locks the
hosts and starts runs. A run itself: :mod:`genai_stack.runs`; its events:
:mod:`genai_stack.events`; one run at a time per host: :mod:`genai_stack.locks`. Secrets never
reach a command line or an artifact: see :mod:`genai_stack.secrets`.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from genai_stack import artifacts
from genai_stack.events import EventHandler, FinishHandler, RunResult
from genai_stack.locks import HostLock, HostLocks, machine_key, run_processes, stop_run_processes
from genai_stack.project import Project
from genai_stack.runs import RunExecution, RunHandle, RunRequest, new_run_id, vault_env
from genai_stack.secrets import SecretFiles

__all__ = [
    "Driver",
    "DriverError",
    "RunHandle",
    "RunRequest",
    "new_run_id",
    "parse_list_hosts",
    "run_processes",
    "stop_run_processes",
]

_HOSTS_LINE = re.compile(r"^\s+hosts \((\d+)\):\s*$")
#: the action of playbooks/stack_model.yml that builds and checks a host's stack model
STACK_MODEL_ACTION = "myia.genai_stack.stack_model"


class DriverError(RuntimeError):
    """A command the driver runs for itself (inventory, host listing) failed."""


@contextlib.contextmanager
def _vault(request: RunRequest) -> Iterator[dict[str, str]]:
    """The vault environment of a command the driver runs for itself, its files removed after."""
    files = SecretFiles() if request.vault_password else None
    try:
        yield vault_env(request, files)
    finally:
        if files is not None:
            files.cleanup()


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
        return stack_models_of(report)

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
        with _vault(request) as env:
            proc = self._read_only(cmd, None, timeout=120, env=env)
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
        with _vault(request) as env:
            proc = self._read_only(cmd, None, timeout=120, env=env)
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
        execution = RunExecution(self, handle, playbook, on_event, on_finish)
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
            target=execution.run, args=(lock,), name=f"genai-stack-run-{run_id}", daemon=True
        )
        handle._thread = thread
        thread.start()
        return handle

    # -- history on disk ----------------------------------------------------------------------
    def artifact_runs(self) -> list[Path]:
        """The runs whose artifacts are kept, oldest first."""
        return artifacts.kept_runs(self.artifacts_dir)


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


def stack_models_of(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Each host's stack model in an ``ansible.posix.json`` report of playbooks/stack_model.yml:
    ``{"model": ...}`` or ``{"problems": [...]}``, for the hosts that built one."""
    # the task is found by its action, whatever its name; the play's first task of that action
    # builds the GPU hosts' models, a later one only checks a proxy-only host (no service there)
    tasks = [task for play in report.get("plays") or [] for task in play.get("tasks") or []]
    ids = [
        task["task"]["id"]
        for task in tasks
        if any(
            res.get("action") == STACK_MODEL_ACTION for res in (task.get("hosts") or {}).values()
        )
    ]
    models: dict[str, dict[str, Any]] = {}
    for task in tasks:
        if not ids or task["task"]["id"] != ids[0]:
            continue
        for host, res in (task.get("hosts") or {}).items():
            if res.get("failed"):
                models[host] = {"problems": res.get("problems") or [res.get("msg", "")]}
            elif "model" in res:
                models[host] = {"model": res["model"]}
    return models
