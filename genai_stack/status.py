"""What runs now on each host, read from the hosts themselves through Ansible.

:func:`collect` runs ``playbooks/status.yml`` through the driver (check mode, read-only) on the
selected hosts, within a deadline; each host writes a JSON report (no secret) that
:func:`host_status` turns into its services' health (the checks and credentials validate.yml
uses), their containers, and its GPUs: per GPU the planned shares of the stack model beside the
memory each service really uses. A host the run could not reach is *unreachable*, never a
service failure. :class:`StatusCache` keeps the last result for a short interval and runs one
refresh at a time, whoever asks.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from genai_stack.driver import Driver, DriverError, RunRequest
from genai_stack.events import RunEvent, RunResult, first_line

#: seconds a whole status run may take (connections, checks, docker, nvidia-smi)
DEFAULT_DEADLINE_S = 90
#: seconds to connect to a host before it counts as unreachable
CONNECT_TIMEOUT_S = 10
#: the play of status.yml that reports on each GPU host
STATUS_PLAY = "Report each GPU host's services, containers and GPUs"
#: a service using at least this part of its planned memory is near its ceiling
NEAR_CEILING = 0.9
#: a host variable: this host (local connection) has no GPU; status reads the fake nvidia-smi the
#: tests use (true: tests/standins/nvidia-smi/nvidia-smi; or a path), with the GPUs it declares
FAKE_SMI_VAR = "genai_status_fake_nvidia_smi"
FAKE_SMI = Path("tests") / "standins" / "nvidia-smi" / "nvidia-smi"


@dataclass(frozen=True)
class Check:
    name: str
    url: str
    ok: bool
    status: int | None = None
    latency_ms: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class Container:
    name: str
    image: str
    status: str
    running: bool
    health: str | None
    restarts: int
    exit_code: int | None = None
    started_at: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class ServiceStatus:
    """``state``: up, down, unknown (not checked) or unreachable (its host)."""

    host: str
    name: str
    kind: str
    state: str
    reason: str = ""
    url: str = ""
    latency_ms: float | None = None
    checks: list[Check] = field(default_factory=list)
    container: Container | None = None

    @property
    def ok(self) -> bool | None:
        return {"up": True, "down": False}.get(self.state)


@dataclass(frozen=True)
class GpuUse:
    """One service's memory on one GPU: ``planned_mib`` from its share (0 when not planned
    there), ``used_mib`` from nvidia-smi's processes (None when not measured)."""

    service: str
    planned_share: float
    planned_mib: int | None
    used_mib: int | None
    planned: bool = True

    @property
    def over(self) -> bool:
        if self.used_mib is None or self.used_mib == 0:
            return False
        return not self.planned or (
            self.planned_mib is not None and self.used_mib > self.planned_mib
        )

    @property
    def level(self) -> str:
        """unmeasured, unplanned (memory on a GPU it has no share of), over (beyond its share),
        near (at least NEAR_CEILING of its share) or within."""
        if self.used_mib is None:
            return "unmeasured"
        if not self.planned:
            return "unplanned" if self.used_mib else "within"
        if self.over:
            return "over"
        if self.planned_mib and self.used_mib >= NEAR_CEILING * self.planned_mib:
            return "near"
        return "within"


@dataclass(frozen=True)
class GpuStatus:
    index: int
    name: str
    memory_total_mib: int | None
    memory_used_mib: int | None
    planned_share: float
    uses: list[GpuUse] = field(default_factory=list)
    #: memory of processes that belong to no service of the stack
    other_mib: int = 0
    measured: bool = False

    @property
    def planned_mib(self) -> int | None:
        if self.memory_total_mib is None:
            return None
        return int(self.planned_share * self.memory_total_mib)

    @property
    def processes_mib(self) -> int | None:
        """Memory of the processes on this GPU (services' and others'), without what the
        driver itself holds."""
        if not self.measured:
            return None
        return sum(u.used_mib or 0 for u in self.uses) + self.other_mib

    @property
    def over(self) -> bool:
        """Real use beyond the plan: a service over its share or on a GPU not planned for it,
        or the processes on the GPU beyond the sum of its shares."""
        if any(use.over for use in self.uses):
            return True
        planned, used = self.planned_mib, self.processes_mib
        return planned is not None and used is not None and used > planned

    @property
    def level(self) -> str:
        """The GPU's worst: unmeasured, over, unplanned, near or within."""
        if not self.measured:
            return "unmeasured"
        levels = {use.level for use in self.uses}
        for level in ("over", "unplanned"):
            if level in levels:
                return level
        if self.over:  # the processes beyond the sum of the shares
            return "over"
        return "near" if "near" in levels else "within"

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["planned_mib"] = self.planned_mib
        data["processes_mib"] = self.processes_mib
        data["over"] = self.over
        data["level"] = self.level
        data["uses"] = [{**asdict(u), "over": u.over, "level": u.level} for u in self.uses]
        return data


@dataclass
class HostStatus:
    """``state``: ok, degraded (a service down), unreachable, or error (no report)."""

    name: str
    state: str
    reason: str = ""
    services: list[ServiceStatus] = field(default_factory=list)
    gpus: list[GpuStatus] = field(default_factory=list)
    gpu_status: str = ""
    gpu_reason: str = ""
    credentials_error: str = ""
    docker_error: str = ""
    #: the GPU figures come from the fake nvidia-smi (a demo host without GPU)
    gpu_fake: bool = False

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["services"] = [{**asdict(s), "ok": s.ok} for s in self.services]
        data["gpus"] = [g.to_dict() for g in self.gpus]
        return data


@dataclass
class StackStatus:
    hosts: list[HostStatus]
    checked_at: float
    duration_s: float
    run_id: str = ""
    run_status: str = ""
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "hosts": [h.to_dict() for h in self.hosts],
            "checked_at": self.checked_at,
            "duration_s": self.duration_s,
            "run_id": self.run_id,
            "run_status": self.run_status,
            "error": self.error,
        }

    def service(self, host: str, name: str) -> ServiceStatus | None:
        for view in self.hosts:
            if view.name == host:
                return next((s for s in view.services if s.name == name), None)
        return None


# -- one host's report -------------------------------------------------------------------------
def _container(data: dict[str, Any]) -> Container:
    return Container(
        name=str(data.get("name") or ""),
        image=str(data.get("image") or ""),
        status=str(data.get("status") or ""),
        running=bool(data.get("running")),
        health=data.get("health") or None,
        restarts=int(data.get("restarts") or 0),
        exit_code=data.get("exit_code"),
        started_at=data.get("started_at") or None,
        error=data.get("error") or None,
    )


def _service(
    host: str,
    rec: dict[str, Any],
    checks: list[Check],
    container: Container | None,
    report: dict[str, Any],
) -> ServiceStatus:
    name = str(rec["name"])
    base = {"host": host, "name": name, "kind": str(rec.get("kind") or ""),
            "url": str(rec.get("backend_url") or "") + str(rec.get("health_path") or ""),
            "checks": checks, "container": container}  # fmt: skip
    docker_ok = bool((report.get("docker") or {}).get("ok"))
    if container is not None and not container.running:
        reason = f"container {container.name} {container.status}"
        if container.exit_code:
            reason += f" (exit code {container.exit_code})"
        return ServiceStatus(**base, state="down", reason=reason)
    if container is None and docker_ok:
        return ServiceStatus(**base, state="down", reason="no container")
    failed = [c for c in checks if not c.ok]
    if failed:
        first = failed[0]
        detail = first.error or (f"status {first.status}" if first.status else "no answer")
        return ServiceStatus(**base, state="down", reason=f"{first.name}: {detail}")
    if not checks:
        return ServiceStatus(**base, state="unknown", reason="not checked")
    if container is not None and container.health == "unhealthy":
        return ServiceStatus(**base, state="down", reason=f"container {container.name} unhealthy")
    latency = max((c.latency_ms or 0.0) for c in checks)
    note = ""
    if report.get("credentials_error"):
        note = "checked without credentials: " + str(report["credentials_error"])
    return ServiceStatus(**base, state="up", reason=note, latency_ms=round(latency, 1))


def _gpus(report: dict[str, Any], containers: dict[str, str]) -> list[GpuStatus]:
    """Per GPU: the plan (shares, from the stack model) beside the real use (nvidia-smi)."""
    plan = report.get("gpu_plan") or {}
    real = (report.get("gpus") or {}).get("list") or []
    processes = (report.get("gpus") or {}).get("processes") or []
    measured = bool(real)
    real_by_index = {int(g["index"]): g for g in real}
    index_of_uuid = {str(g.get("uuid")): int(g["index"]) for g in real}
    shares: dict[int, dict[str, float]] = {}
    for name, wish in (plan.get("services") or {}).items():
        for index in wish.get("gpus") or []:
            shares.setdefault(int(index), {})[str(name)] = float(wish.get("memory_share") or 0.0)
    used: dict[int, dict[str, int]] = {}
    other: dict[int, int] = {}
    for proc in processes:
        index = index_of_uuid.get(str(proc.get("gpu_uuid")))
        if index is None:
            continue
        mib = int(proc.get("used_memory_mib") or 0)
        service = containers.get(str(proc.get("container_id") or ""))
        if service is None:
            other[index] = other.get(index, 0) + mib
        else:
            used.setdefault(index, {})
            used[index][service] = used[index].get(service, 0) + mib
    planned_gpus = {int(g["index"]): g for g in plan.get("gpus") or []}
    result = []
    for index in sorted(set(planned_gpus) | set(real_by_index) | set(shares)):
        declared = planned_gpus.get(index) or {}
        now = real_by_index.get(index) or {}
        total = now.get("memory_total_mib") or declared.get("memory_total_mib")
        mine = shares.get(index, {})
        uses = []
        for service in list(mine) + sorted(set(used.get(index, {})) - set(mine)):
            share = mine.get(service, 0.0)
            uses.append(
                GpuUse(
                    service=service,
                    planned_share=share,
                    planned_mib=int(share * total) if total else None,
                    used_mib=used.get(index, {}).get(service, 0) if measured else None,
                    planned=service in mine,
                )
            )
        result.append(
            GpuStatus(
                index=index,
                name=str(now.get("name") or declared.get("name") or ""),
                memory_total_mib=total,
                memory_used_mib=now.get("memory_used_mib") if measured else None,
                planned_share=round(sum(mine.values()), 4),
                uses=uses,
                other_mib=other.get(index, 0),
                measured=measured and index in real_by_index,
            )
        )
    return result


def host_status(name: str, report: dict[str, Any]) -> HostStatus:
    """One host's status from the JSON report status.yml wrote for it."""
    by_service: dict[str, list[Check]] = {}
    for e in report.get("endpoints") or []:
        service = str(e.get("name") or "").split(": ", 1)[0]
        by_service.setdefault(service, []).append(
            Check(
                name=str(e.get("name")),
                url=str(e.get("url") or ""),
                ok=bool(e.get("ok")),
                status=e.get("status"),
                latency_ms=e.get("latency_ms"),
                error=e.get("error"),
            )
        )
    containers = {str(c.get("service")): c for c in report.get("containers") or []}
    services = [
        _service(
            name,
            rec,
            by_service.get(str(rec["name"]), []),
            _container(containers[str(rec["name"])]) if str(rec["name"]) in containers else None,
            report,
        )
        for rec in report.get("services") or []
    ]
    gpus_report = report.get("gpus") or {}
    docker = report.get("docker") or {}
    down = [s for s in services if s.state == "down"]
    return HostStatus(
        name=name,
        state="degraded" if down else "ok",
        reason=", ".join(f"{s.name} down" for s in down),
        services=services,
        gpus=_gpus(report, {str(c.get("id")): str(c.get("service")) for c in containers.values()}),
        gpu_status=str(gpus_report.get("status") or ""),
        gpu_reason=str(gpus_report.get("reason") or gpus_report.get("processes_error") or ""),
        credentials_error=str(report.get("credentials_error") or ""),
        docker_error="" if docker.get("ok") else str(docker.get("error") or "docker not reached"),
    )


def missing_host(name: str, result: RunResult) -> HostStatus:
    """A selected host that wrote no report: unreachable, or why its run failed."""
    unreachable = [t for t in result.failed_tasks if t.host == name and t.unreachable]
    stats = result.stats.get(name)
    if unreachable or (stats is not None and stats.unreachable):
        message = first_line(unreachable[0].message) if unreachable else "unreachable"
        return HostStatus(name=name, state="unreachable", reason=message)
    failed = [t for t in result.failed_tasks if t.host == name]
    if failed:
        reason = f"{failed[0].task}: {first_line(failed[0].message)}"
    elif result.status == "timeout":
        reason = f"no report within the deadline ({result.error or 'timed out'})"
    else:
        reason = result.error or f"no report (run {result.status})"
    return HostStatus(name=name, state="error", reason=reason)


# -- running it --------------------------------------------------------------------------------
def status_driver(driver: Driver) -> Driver:
    """A driver for status runs: their artifacts in their own directory (a refresh every few
    seconds must not rotate away the artifacts of real runs), no host lock."""
    return Driver(driver.project, driver.state_dir / "status", keep_artifacts=3,
                  inventory=driver.default_inventory, env=driver.extra_env)  # fmt: skip


# -- the demo's fake nvidia-smi -----------------------------------------------------------------
_HOSTVARS: dict[tuple[str, ...], tuple[float, dict[str, Any]]] = {}
#: seconds the inventory's variables are kept between status runs
HOSTVARS_TTL_S = 300.0


def _hostvars(
    driver: Driver, inventory: str | None, vault_password_file: str | None
) -> dict[str, Any]:
    """Every host's variables (``ansible-inventory --list``), read at most every HOSTVARS_TTL_S;
    {} when the inventory cannot be read (the status run then says why)."""
    key = (str(inventory), str(vault_password_file), str(driver.project.root))
    cached = _HOSTVARS.get(key)
    if cached and time.monotonic() - cached[0] < HOSTVARS_TTL_S:
        return cached[1]
    try:
        data = driver.inventory(inventory, vault_password_file)
    except (DriverError, OSError, ValueError):
        return {}
    hostvars = (data.get("_meta") or {}).get("hostvars") or {}
    _HOSTVARS[key] = (time.monotonic(), hostvars)
    return dict(hostvars)


def _fake_gpus(declared: Any) -> list[dict[str, Any]]:
    """The fake's GPUs: those the host declares (genai_gpus), named as the fake's."""
    try:
        return [{"name": str(g.get("name") or "GPU").replace(" (declared)", "") + " (fake)",
                 "memory_total_mib": int(g["memory_total_mib"]), "memory_used_mib": 1}
                for g in declared or []]  # fmt: skip
    except (AttributeError, KeyError, TypeError, ValueError):
        return []


def fake_smi_env(driver: Driver, hostvars: dict[str, Any]) -> tuple[dict[str, str], set[str]]:
    """For the local hosts that set FAKE_SMI_VAR: the status run's environment that puts the
    fake nvidia-smi first in PATH (its processes scanned from /proc, as the tests do), and
    those hosts. Nothing for the others: a real host's nvidia-smi is never replaced."""
    faked = {name: hv for name, hv in hostvars.items() if isinstance(hv, dict)
             and hv.get(FAKE_SMI_VAR) not in (None, False, "", "false")
             and hv.get("ansible_connection") == "local"}  # fmt: skip
    if not faked:
        return {}, set()
    first = faked[min(faked)]
    value = first[FAKE_SMI_VAR]
    fake = driver.project.root / (FAKE_SMI if value in (True, "true", "yes") else Path(str(value)))
    env = {"PATH": f"{fake.parent}{os.pathsep}{driver.envvars()['PATH']}",
           "FAKE_NVIDIA_SMI_PROCESSES": "scan", "FAKE_NVIDIA_SMI_MODE": "ok",
           "FAKE_NVIDIA_SMI_CONFIG": str(fake.parent / "no-config.json")}  # fmt: skip
    gpus = _fake_gpus(first.get("genai_gpus"))
    if gpus:
        env["FAKE_NVIDIA_SMI_GPUS"] = json.dumps(gpus)
    return env, set(faked)


def collect(
    driver: Driver,
    inventory: str | None = None,
    limit: str | None = None,
    vault_password_file: str | None = None,
    deadline_s: int = DEFAULT_DEADLINE_S,
) -> StackStatus:
    """Run status.yml on the selected GPU hosts and read every host's report."""
    clock = time.monotonic()
    if "status" not in driver.project.playbooks():
        return StackStatus([], time.time(), 0.0, error="this project has no playbooks/status.yml")
    fake_env, faked = fake_smi_env(driver, _hostvars(driver, inventory, vault_password_file))
    reports = Path(tempfile.mkdtemp(prefix="genai-status-"))
    try:
        request = RunRequest(
            playbook="status",
            inventory=inventory,
            limit=limit,
            check=True,
            extra_vars={"status_report_dir": str(reports)},
            timeout=deadline_s,
            vault_password_file=vault_password_file,
            env={"ANSIBLE_TIMEOUT": str(CONNECT_TIMEOUT_S), **fake_env},
        )
        seen: set[str] = set()

        def on_event(event: RunEvent) -> None:
            # proxy-only hosts are in the first play only, with nothing to report
            if event.host and event.play == STATUS_PLAY:
                seen.add(event.host)

        result = status_driver(driver).run(request, on_event, lock_hosts=False)
        found: dict[str, dict[str, Any]] = {}
        for path in sorted(reports.glob("*.json")):
            found[path.stem] = json.loads(path.read_text(encoding="utf-8"))
    finally:
        shutil.rmtree(reports, ignore_errors=True)
    names = sorted(set(found) | seen | {t.host for t in result.failed_tasks}
                   | {h for h, st in result.stats.items() if st.unreachable})  # fmt: skip
    hosts = [host_status(n, found[n]) if n in found else missing_host(n, result) for n in names]
    for host in hosts:
        host.gpu_fake = host.name in faked and any(g.measured for g in host.gpus)
    error = None
    if not hosts and not result.ok:
        error = result.error or f"status.yml {result.status} (rc={result.rc})"
    return StackStatus(
        hosts=hosts,
        checked_at=time.time(),
        duration_s=round(time.monotonic() - clock, 3),
        run_id=result.run_id,
        run_status=result.status,
        error=error,
    )


class StatusCache:
    """The last :class:`StackStatus`, refreshed at most every ``ttl`` seconds, one refresh at a
    time: callers during a refresh get the last value (``wait=False``) or the refresh's."""

    def __init__(self, ttl: float, compute: Callable[[], StackStatus]) -> None:
        self.ttl = ttl
        self.compute = compute
        self.value: StackStatus | None = None
        self._at = 0.0
        self._lock = threading.Lock()
        self._running: threading.Event | None = None
        self.runs = 0

    @property
    def refreshing(self) -> bool:
        return self._running is not None

    def _refresh(self, done: threading.Event) -> None:
        try:
            value = self.compute()
        except Exception as exc:  # a failed refresh is shown, not raised into a page
            value = StackStatus([], time.time(), 0.0, error=f"{type(exc).__name__}: {exc}")
        with self._lock:
            self.value, self._at, self._running = value, time.monotonic(), None
        done.set()

    def get(self, wait: bool = False) -> StackStatus | None:
        with self._lock:
            stale = self.value is None or time.monotonic() - self._at > self.ttl
            running = self._running
            if stale and running is None:
                running = self._running = threading.Event()
                self.runs += 1
                threading.Thread(target=self._refresh, args=(running,), daemon=True,
                                 name="genai-stack-status").start()  # fmt: skip
        if wait and running is not None:
            running.wait()
        with self._lock:
            return self.value

    def clear(self) -> None:
        with self._lock:
            self._at = 0.0
