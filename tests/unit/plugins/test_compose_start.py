"""compose_start's schedule (module_utils/compose_start.py) against a scripted docker.

The fake docker keeps a clock: `up` creates containers that turn healthy after their service's
load time (or fail the way the script says); `ps` shows them as `docker compose ps` would. The
tests check what was started, when, and in which order, across projects.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from test_compose_project import Bed

from ansible_collections.myia.genai_stack.plugins.module_utils import compose_start as cs


class FakeDocker:
    """Containers by (project, service); ``load``: seconds until healthy; ``fate``: what a
    service's container does instead (exited, unhealthy, never)."""

    def __init__(self, load: dict[str, float], fate: dict[str, str] | None = None) -> None:
        self.now = 0.0
        self.load = load
        self.fate = fate or {}
        self.containers: dict[str, dict[str, dict[str, Any]]] = {}
        self.ups: list[tuple[float, str, list[str], bool]] = []
        self.up_error: dict[str, str] = {}
        self.serial = 0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def run(self, name: str, project: str, state: str = "running", health: str = "") -> None:
        """A container already there before the schedule runs."""
        self.serial += 1
        self.containers.setdefault(project, {})[name] = {
            "id": f"old{self.serial}", "state": state, "health": health, "at": -1e9,
        }  # fmt: skip

    def ps(self, project: str) -> dict[str, dict[str, str]]:
        shown = {}
        for name, c in self.containers.get(project, {}).items():
            ready = self.now - c["at"] >= self.load.get(name, 0)
            state, health = c["state"], c["health"]
            fate = self.fate.get(name, "")
            if c["id"].startswith("new"):
                health = "healthy" if ready else "starting"
                if fate == "never":
                    health = "starting"
                elif ready and fate == "exited":
                    state, health = "exited", ""
                elif ready and fate == "unhealthy":
                    health = "unhealthy"
                elif fate == "crashes" and self.now - c["at"] >= self.load.get(name, 0) + 5:
                    state, health = "exited", ""
            shown[name] = {"id": c["id"], "state": state, "health": health}
        return shown

    def up(self, project: str, services: list[str], first: bool) -> str:
        self.ups.append((self.now, project, list(services), first))
        if project in self.up_error:
            return self.up_error[project]
        for name in services:
            old = self.containers.get(project, {}).get(name)
            if old and old["state"] == "running":
                continue  # up leaves a running, up-to-date container as it is
            self.serial += 1
            self.containers.setdefault(project, {})[name] = {
                "id": f"new{self.serial}", "state": "running", "health": "starting",
                "at": self.now,
            }  # fmt: skip
        return ""

    def started_at(self, name: str) -> float:
        return next(t for t, _, names, _ in self.ups if name in names)


DEMO = [
    {"project_dir": "/p/vllm", "timeout": 100,
     "services": {"micro": [], "mini": ["micro"], "medium": []}},
    {"project_dir": "/p/comfyui", "timeout": 100, "services": {"comfyui": ["medium"]}},
    {"project_dir": "/p/forge", "timeout": 100, "services": {"turbo": ["medium"]}},
]  # fmt: skip
LOAD = {"micro": 20, "mini": 30, "medium": 40, "comfyui": 10, "turbo": 15}


def go(docker: FakeDocker, projects: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    kwargs.setdefault("wait", True)
    return cs.run(
        cs.Schedule.of(projects), docker.ps, docker.up,
        clock=docker.clock, sleep=docker.sleep, poll=0.5, **kwargs,
    )  # fmt: skip


def by_project(result: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["project_dir"]: r for r in result}


def test_each_service_starts_once_the_services_before_it_are_healthy_across_projects() -> None:
    docker = FakeDocker(LOAD)
    result = go(docker, DEMO)
    assert docker.ups == [
        (0.0, "/p/vllm", ["micro", "medium"], True),
        (20.0, "/p/vllm", ["mini"], False),
        (40.0, "/p/comfyui", ["comfyui"], True),
        (40.0, "/p/forge", ["turbo"], True),
    ]
    assert docker.now == 55.0  # the critical path, medium then turbo: no wave waits for mini
    assert result == [
        {"project_dir": "/p/vllm", "started": ["micro", "mini", "medium"],
         "healthy": ["micro", "mini", "medium"], "failed": {}, "pending": [], "ok": True},
        {"project_dir": "/p/comfyui", "started": ["comfyui"], "healthy": ["comfyui"],
         "failed": {}, "pending": [], "ok": True},
        {"project_dir": "/p/forge", "started": ["turbo"], "healthy": ["turbo"], "failed": {},
         "pending": [], "ok": True},
    ]  # fmt: skip


def test_a_service_before_it_in_no_given_project_is_not_waited_for() -> None:
    docker = FakeDocker(LOAD)
    go(docker, [DEMO[2]])
    assert docker.ups == [(0.0, "/p/forge", ["turbo"], True)]


def test_without_wait_only_what_can_start_now_starts_and_a_later_call_goes_on() -> None:
    docker = FakeDocker(LOAD)
    first = go(docker, DEMO[:1], wait=False)
    assert docker.ups == [(0.0, "/p/vllm", ["micro", "medium"], True)]
    assert first == [
        {"project_dir": "/p/vllm", "started": ["micro", "medium"], "healthy": [], "failed": {},
         "pending": ["mini"], "ok": True},
    ]  # fmt: skip
    docker.now = 5.0
    second = go(docker, DEMO[:2], wait=False, started={"/p/vllm": first[0]["started"]})
    assert docker.ups[1:] == []  # comfyui waits on medium, mini on micro
    assert by_project(second)["/p/comfyui"]["pending"] == ["comfyui"]
    assert by_project(second)["/p/vllm"]["started"] == ["micro", "medium"]
    docker.now = 10.0
    last = go(docker, DEMO, started={"/p/vllm": ["micro", "medium"]})
    assert [(t, names) for t, _, names, _ in docker.ups[1:]] == [
        (20.0, ["mini"]),
        (40.0, ["comfyui"]),
        (40.0, ["turbo"]),
    ]
    assert docker.now == 55.0
    assert all(r["ok"] for r in last)
    assert by_project(last)["/p/vllm"]["started"] == ["micro", "mini", "medium"]


def test_a_running_container_up_leaves_alone_is_not_started() -> None:
    docker = FakeDocker({"micro": 0, "mini": 5})
    docker.run("micro", "/p/vllm")
    result = go(docker, [{"project_dir": "/p/vllm", "services": {"micro": [], "mini": ["micro"]}}])
    assert docker.ups == [(0.0, "/p/vllm", ["micro"], True), (0.5, "/p/vllm", ["mini"], False)]
    assert result[0]["started"] == ["mini"] and result[0]["healthy"] == ["micro", "mini"]


def test_a_stopped_container_started_again_counts_as_started() -> None:
    docker = FakeDocker({"micro": 1})
    docker.run("micro", "/p/vllm", state="exited")
    result = go(docker, [{"project_dir": "/p/vllm", "services": {"micro": []}}])
    assert result[0]["started"] == ["micro"] and result[0]["ok"]


@pytest.mark.parametrize(
    ("fate", "why"),
    [("exited", "exited"), ("unhealthy", "unhealthy"), ("never", "not healthy after 100s")],
)
def test_a_failed_service_stops_the_services_after_it_and_only_them(fate: str, why: str) -> None:
    docker = FakeDocker(LOAD, {"medium": fate})
    result = by_project(go(docker, DEMO))
    assert result["/p/vllm"]["failed"] == {"medium": why}
    assert result["/p/vllm"]["healthy"] == ["micro", "mini"] and not result["/p/vllm"]["ok"]
    for project, name in (("/p/comfyui", "comfyui"), ("/p/forge", "turbo")):
        assert result[project]["failed"] == {name: "not started: medium is not healthy"}
        assert result[project]["started"] == [] and not result[project]["ok"]
    assert all(names != ["comfyui"] and names != ["turbo"] for _, _, names, _ in docker.ups)


def test_a_healthy_service_that_exits_while_others_start_fails() -> None:
    docker = FakeDocker({"a": 1, "b": 20}, {"a": "crashes"})
    projects = [{"project_dir": "/p", "services": {"a": [], "b": ["a"]}}]
    result = go(docker, projects)[0]
    assert result["failed"] == {"a": "exited"} and result["healthy"] == ["b"]


def test_the_timeout_counts_from_the_service_s_own_start() -> None:
    docker = FakeDocker({"a": 8, "b": 8})
    projects = [{"project_dir": "/p", "timeout": 9, "services": {"a": [], "b": ["a"]}}]
    assert go(docker, projects)[0]["ok"]  # 16 s in all, each within its 9 s
    docker = FakeDocker({"a": 8, "b": 10})
    assert go(docker, projects)[0]["failed"] == {"b": "not healthy after 9s"}


def test_an_up_that_fails_fails_its_services_with_docker_s_words() -> None:
    docker = FakeDocker(LOAD)
    docker.up_error["/p/forge"] = "docker compose up failed: no such image"
    result = by_project(go(docker, DEMO))
    assert result["/p/forge"]["failed"] == {"turbo": "docker compose up failed: no such image"}
    assert result["/p/vllm"]["ok"] and result["/p/comfyui"]["ok"]


def test_services_waiting_on_each_other_fail_instead_of_waiting_for_ever() -> None:
    docker = FakeDocker({})
    projects = [{"project_dir": "/p", "services": {"a": ["b"], "b": ["a"], "c": []}}]
    result = go(docker, projects)[0]
    assert result["failed"] == {
        "a": "waits on a service that waits on it",
        "b": "waits on a service that waits on it",
    }
    assert result["healthy"] == ["c"]


def test_a_service_in_two_projects_is_refused() -> None:
    with pytest.raises(ValueError, match="service 'a' is in two projects: /p and /q"):
        cs.Schedule.of([
            {"project_dir": "/p", "services": {"a": []}},
            {"project_dir": "/q", "services": {"a": []}},
        ])  # fmt: skip


def test_the_default_timeout_is_300_seconds() -> None:
    schedule = cs.Schedule.of([{"project_dir": "/p", "services": {"a": None}}])
    assert (schedule.services["a"].timeout, schedule.services["a"].after) == (300.0, [])


@pytest.mark.parametrize(
    ("container", "expected"),
    [
        (None, ("failed", "no container")),
        ({"state": "running", "health": ""}, ("healthy", "")),
        ({"state": "running", "health": "healthy"}, ("healthy", "")),
        ({"state": "running", "health": "starting"}, ("starting", "")),
        ({"state": "running", "health": "unhealthy"}, ("failed", "unhealthy")),
        ({"state": "created", "health": ""}, ("starting", "")),
        ({"state": "restarting", "health": ""}, ("failed", "restarting")),
        ({"state": "exited", "health": ""}, ("failed", "exited")),
        ({}, ("failed", "no state")),
    ],
)
def test_condition(container: dict[str, str] | None, expected: tuple[str, str]) -> None:
    assert cs.condition(container) == expected


def test_parse_ps_reads_both_formats_of_compose() -> None:
    rows = [
        {"ID": "abc", "Service": "micro", "State": "running", "Health": "healthy", "Name": "x"},
        {"ID": "def", "Service": "mini", "State": "exited", "Health": ""},
    ]
    expected = {
        "micro": {"id": "abc", "state": "running", "health": "healthy"},
        "mini": {"id": "def", "state": "exited", "health": ""},
    }
    assert cs.parse_ps("\n".join(json.dumps(r) for r in rows) + "\n") == expected
    assert cs.parse_ps(json.dumps(rows)) == expected  # compose before 2.21
    assert cs.parse_ps("  \n") == {}
    assert cs.parse_ps('{"Service": "a"}') == {"a": {"id": "", "state": "", "health": ""}}


# --- the module on the real docker, through ansible-playbook ---------------------------------

SLOW = (  # healthy 3 s after its start, by its health check
    "    image: local/debian:12\n    network_mode: none\n"
    "    command: [sh, -c, 'sleep 3; touch /tmp/ok; exec sleep infinity']\n"
    "    healthcheck: {test: [CMD, test, -e, /tmp/ok], interval: 1s, retries: 30}\n"
)
DIES = (  # exits 1 after a second, never healthy
    "    image: local/debian:12\n    network_mode: none\n    command: [sh, -c, 'sleep 1; exit 1']\n"
    "    healthcheck: {test: [CMD, test, -e, /tmp/never], interval: 1s, retries: 30}\n"
)


class Projects:
    """Compose projects under tmp_path, named after this process, taken down at the end."""

    def __init__(self, tmp: Path, request: pytest.FixtureRequest) -> None:
        self.bed = Bed(tmp)
        self.tmp = tmp
        self.request = request

    def make(self, short: str, services: dict[str, str]) -> Path:
        path = self.tmp / short
        path.mkdir()
        body = "".join(f"  {name}:\n{spec}" for name, spec in services.items())
        (path / "compose.yaml").write_text(
            f"name: genai-start-{short}-{os.getpid()}\nservices:\n{body}"
        )
        down = ["docker", "compose", "-f", str(path / "compose.yaml"), "down", "-t", "0"]
        self.request.addfinalizer(lambda: subprocess.run(down, capture_output=True, check=False))
        return path

    def start(self, name: str, projects: list[dict[str, Any]], **args: Any) -> dict[str, Any]:
        task: dict[str, Any] = {"name": name, START: {"projects": projects, **args}}
        if name.startswith("refused"):
            task["ignore_errors"] = True
        if args.pop("check", False):
            task["check_mode"] = True
            del task[START]["check"]
        return task

    def inspect(self, path: Path) -> dict[str, dict[str, Any]]:
        """Each service's container (docker inspect), by service name."""
        compose = ["docker", "compose", "-f", str(path / "compose.yaml")]
        ids = subprocess.run([*compose, "ps", "-aq"], capture_output=True, text=True).stdout
        if not ids.split():
            return {}
        found = json.loads(
            subprocess.run(
                ["docker", "inspect", *ids.split()], capture_output=True, text=True, check=True
            ).stdout
        )
        return {c["Config"]["Labels"]["com.docker.compose.service"]: c for c in found}


START = "myia.genai_stack.compose_start"


@pytest.fixture
def projects(tmp_path: Path, request: pytest.FixtureRequest) -> Projects:
    return Projects(tmp_path, request)


def started_at(container: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(container["State"]["StartedAt"][:26].rstrip("Z") + "+00:00")


def test_the_module_starts_a_service_of_another_project_once_the_first_is_healthy(
    projects: Projects,
) -> None:
    a = projects.make("a", {"first": SLOW})
    b = projects.make("b", {"second": SLOW, "alone": SLOW})
    spec = [
        {"project_dir": str(a), "services": {"first": []}, "timeout": 30},
        {"project_dir": str(b), "services": {"second": ["first"], "alone": []}, "timeout": 30},
    ]
    results, done = projects.bed.play(
        projects.start("check", spec, check=True),
        projects.start("start", spec),
        projects.start("again", spec),
    )
    assert done.returncode == 0, done.stdout
    check = results["check"]
    assert check["changed"] is True
    # (the play's YAML lists the services by name)
    assert [p["pending"] for p in check["projects"]] == [["first"], ["alone", "second"]]

    start = results["start"]
    assert start["changed"] is True
    assert [(p["started"], p["healthy"], p["failed"], p["ok"]) for p in start["projects"]] == [
        (["first"], ["first"], {}, True),
        (["alone", "second"], ["alone", "second"], {}, True),
    ]
    first, later = projects.inspect(a)["first"], projects.inspect(b)
    waited = (started_at(later["second"]) - started_at(first)).total_seconds()
    at_once = abs((started_at(later["alone"]) - started_at(first)).total_seconds())
    assert waited >= 3.0, waited  # not before first was healthy
    assert at_once < 2.5, at_once  # alone waits for nothing
    again = results["again"]  # running and healthy: up leaves them, nothing started
    assert again["changed"] is False
    assert [p["started"] for p in again["projects"]] == [[], []]


def test_the_module_fails_a_service_that_exits_and_starts_none_after_it(
    projects: Projects,
) -> None:
    a = projects.make("a", {"dies": DIES})
    b = projects.make("b", {"after": SLOW})
    spec = [
        {"project_dir": str(a), "services": {"dies": []}, "timeout": 30},
        {"project_dir": str(b), "services": {"after": ["dies"]}, "timeout": 30},
    ]
    results, _ = projects.bed.play(projects.start("refused", spec))
    refused = results["refused"]
    assert refused["failed"] is True
    assert refused["msg"] == "dies: exited; after: not started: dies is not healthy"
    assert [p["ok"] for p in refused["projects"]] == [False, False]
    assert projects.inspect(b) == {}  # never created
    assert projects.inspect(a)["dies"]["State"]["ExitCode"] == 1
