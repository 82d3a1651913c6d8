# Copyright: (c) 2026, genai_stack team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Start compose services in GPU plan order, across projects: each service as soon as every
service before it on its GPUs is healthy, not wave by wave.

The schedule only decides; reading the containers (``ps``) and starting services (``up``) are
passed in, so the module runs it on docker and the tests on a script.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: a container as `docker compose ps` shows it: id, state (running, exited...) and health
Container = Mapping[str, str]
#: a project's containers by service name
Ps = Callable[[str], Mapping[str, Container]]
#: start some services of a project: (project, services, first call for it) -> error or ""
Up = Callable[[str, list[str], bool], str]

WAITING, STARTING, HEALTHY, FAILED = "waiting", "starting", "healthy", "failed"


def parse_ps(text: str) -> dict[str, dict[str, str]]:
    """`docker compose ps --all --format json` (one object per line; an array before 2.21)."""
    text = text.strip()
    if not text:
        return {}
    found = (
        json.loads(text)
        if text.startswith("[")
        else [json.loads(line) for line in text.splitlines() if line.strip()]
    )
    return {
        str(c["Service"]): {
            "id": str(c.get("ID") or ""),
            "state": str(c.get("State") or ""),
            "health": str(c.get("Health") or ""),
        }
        for c in found
    }


def condition(container: Container | None) -> tuple[str, str]:
    """(healthy | starting | failed, why) of a started service's container."""
    if container is None:
        return FAILED, "no container"
    state, health = container.get("state", ""), container.get("health", "")
    if state == "running":
        if health == "unhealthy":
            return FAILED, "unhealthy"
        return (STARTING, "") if health == "starting" else (HEALTHY, "")
    if state == "created":
        return STARTING, ""
    return FAILED, state or "no state"


@dataclass
class Service:
    """One service to start: its project, the services it waits for, its own deadline."""

    project: str
    name: str
    after: list[str]
    timeout: float
    status: str = WAITING
    since: float = 0.0
    error: str = ""
    started: bool = False
    before: Container | None = None


@dataclass
class Schedule:
    """The services of some projects, started in order; see :func:`run`."""

    services: dict[str, Service] = field(default_factory=dict)
    projects: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, projects: Sequence[Mapping[str, Any]]) -> Schedule:
        """From the module's ``projects`` option (``services``: name to the services before it;
        ``timeout``: seconds each service has from its start until healthy)."""
        schedule = cls()
        for project in projects:
            path = str(project["project_dir"])
            schedule.projects.append(path)
            for name, after in (project.get("services") or {}).items():
                if name in schedule.services:
                    raise ValueError(
                        f"service {name!r} is in two projects: "
                        f"{schedule.services[name].project} and {path}"
                    )
                schedule.services[name] = Service(
                    project=path,
                    name=str(name),
                    after=[str(a) for a in after or []],
                    timeout=float(project.get("timeout") or 300),
                )
        return schedule

    def mark_started(self, names: Sequence[str], now: float) -> None:
        """Services an earlier call started: only waited for."""
        for name in names:
            service = self.services.get(name)
            if service is not None:
                service.status, service.since, service.started = STARTING, now, True

    def blocker(self, service: Service) -> tuple[str, str]:
        """(ready | wait | failed, the service waited for) of a waiting service. A service
        before it that is in none of the projects is not started by this run: not waited for."""
        for name in service.after:
            other = self.services.get(name)
            if other is None or other.status == HEALTHY:
                continue
            return (FAILED if other.status == FAILED else "wait"), name
        return "ready", ""

    def observe(self, seen: Mapping[str, Mapping[str, Container]], now: float) -> None:
        """Move started services on from what their containers show."""
        self.note_started(seen)
        for service in self.services.values():
            if service.status not in (STARTING, HEALTHY):
                continue  # a healthy one is watched too: it may still exit while others start
            status, why = condition(seen.get(service.project, {}).get(service.name))
            if service.status == HEALTHY and status != FAILED:
                continue
            if status == STARTING and now - service.since > service.timeout:
                status, why = FAILED, f"not healthy after {service.timeout:g}s"
            service.status, service.error = status, why

    def note_started(self, seen: Mapping[str, Mapping[str, Container]]) -> None:
        """Whether `up` started each service it was just given: a new container, or one that
        was not running (a running container `up` left alone was not started)."""
        for service in self.services.values():
            if service.before is None:
                continue
            old, now = service.before, seen.get(service.project, {}).get(service.name)
            service.started = now is not None and (
                now.get("id") != old.get("id") or old.get("state") != "running"
            )
            service.before = None

    def startable(self) -> dict[str, list[Service]]:
        """The waiting services whose services before them are all healthy, by project; those
        behind a failed one fail too."""
        ready: dict[str, list[Service]] = {}
        for service in self.services.values():
            if service.status != WAITING:
                continue
            verdict, name = self.blocker(service)
            if verdict == FAILED:
                service.status, service.error = FAILED, f"not started: {name} is not healthy"
            elif verdict == "ready":
                ready.setdefault(service.project, []).append(service)
        return ready

    def done(self) -> bool:
        return all(s.status in (HEALTHY, FAILED) for s in self.services.values())

    def result(self) -> list[dict[str, Any]]:
        """Per project: the services started, healthy, failed (with why) and not started."""
        out = []
        for path in self.projects:
            mine = [s for s in self.services.values() if s.project == path]
            failed = {s.name: s.error for s in mine if s.status == FAILED}
            out.append(
                {
                    "project_dir": path,
                    "started": [s.name for s in mine if s.started],
                    "healthy": [s.name for s in mine if s.status == HEALTHY],
                    "failed": failed,
                    "pending": [s.name for s in mine if s.status == WAITING],
                    "ok": not failed,
                }
            )
        return out


def run(
    schedule: Schedule,
    ps: Ps,
    up: Up,
    *,
    wait: bool,
    started: Mapping[str, Sequence[str]] | None = None,
    poll: float = 1.0,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[dict[str, Any]]:
    """Start every service whose services before it are healthy, then (``wait``) go on until
    every service is healthy or failed; without ``wait``, return after the first starts.
    ``started``: per project, services an earlier call started (waited for, not started again).
    """
    for names in (started or {}).values():
        schedule.mark_started(list(names), clock())
    first = set(schedule.projects)
    while True:
        seen = {path: ps(path) for path in schedule.projects}
        schedule.observe(seen, clock())
        launched = set()
        for path, services in schedule.startable().items():
            error = up(path, [s.name for s in services], path in first)
            first.discard(path)
            launched.add(path)
            for service in services:
                service.before = seen.get(path, {}).get(service.name) or {}
                service.status, service.since = STARTING, clock()
                if error:
                    service.status, service.error, service.before = FAILED, error, None
        if not wait:
            schedule.note_started({path: ps(path) for path in sorted(launched)})
            return schedule.result()
        if schedule.done():
            return schedule.result()
        if not any(s.status == STARTING for s in schedule.services.values()):
            for service in schedule.services.values():  # they wait on each other: a cycle
                if service.status == WAITING:
                    service.status, service.error = FAILED, "waits on a service that waits on it"
            return schedule.result()
        sleep(poll)
