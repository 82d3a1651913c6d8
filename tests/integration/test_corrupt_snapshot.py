"""A damaged snapshot never blocks a host (issue #25), through compose_rollout's deploy.yml.

One compose project of one idle container on this machine's docker, deployed as a service role
deploys it (tasks_from: deploy). A file of its last healthy version (<project>/.previous) is
overwritten with garbage, then a version that cannot turn healthy is deployed: the restore
refuses the snapshot before touching a file and the failure names the damaged file. The good
settings deployed again succeed and replace the snapshot, so that the next failure is restored.
tasks_from: restore (playbooks/update.yml) fails on such a snapshot, naming the file.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LABEL = "corrupt_snapshot"
GARBAGE = b"\xb0\x8f\x00\xff garbage"


def compose(name: str, health: list[str]) -> str:
    return yaml.safe_dump(
        {
            "name": name,
            "services": {
                "idle": {
                    "image": "local/debian:12",
                    "command": ["sleep", "infinity"],
                    "network_mode": "none",
                    "env_file": ["app.env"],
                    "stop_grace_period": "1s",
                    "healthcheck": {
                        "test": health,
                        "interval": "1s",
                        "timeout": "2s",
                        "retries": 1,
                        "start_period": "0s",
                    },
                }
            },
        }
    )


class Project:
    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.name = f"genai-corrupt-snapshot-{os.getpid()}"
        self.dir = tmp / "proj"
        self.snap = self.dir / ".previous"
        self.good = compose(self.name, ["CMD", "true"])
        self.bad = compose(self.name, ["CMD", "false"])  # unhealthy at its first check

    def deploy(self, text: str, mode: str) -> tuple[bool, dict[str, Any]]:
        """deploy.yml as a service role includes it; whether it failed, and the last result."""
        return self.run(
            "deploy.yml",
            compose_rollout_project_name=self.name,
            compose_rollout_env_files={"app.env": f"MODE={mode}\n"},
            compose_rollout_compose=text,
            compose_rollout_plan={"services": {"idle": {"after": []}}},
            compose_rollout_containers=[f"{self.name}-idle-1"],
            compose_rollout_wait_timeout=60,
        )

    def run(self, tasks_from: str, **variables: Any) -> tuple[bool, dict[str, Any]]:
        """One entry point of the role; whether the play failed, and the last task's result."""
        playbook = self.tmp / "play.yml"
        task = {
            "name": tasks_from,
            "ansible.builtin.include_role": {
                "name": "myia.genai_stack.compose_rollout",
                "tasks_from": tasks_from,
            },
            "vars": {
                "compose_rollout_label": LABEL,
                "compose_rollout_project_dir": str(self.dir),
                **variables,
            },
        }
        play = {
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                "ansible_connection": "local",
                "ansible_python_interpreter": sys.executable,
            },
            "tasks": [task],
        }
        playbook.write_text(yaml.safe_dump([play]))
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
            "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        }
        done = subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook)],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        tasks = json.loads(done.stdout)["plays"][0]["tasks"]
        return done.returncode != 0, tasks[-1]["hosts"]["localhost"]

    def health(self) -> str:
        done = subprocess.run(
            ["docker", "inspect", "-f", "{{.State.Health.Status}}", f"{self.name}-idle-1"],
            capture_output=True,
            text=True,
            check=False,
        )
        return done.stdout.strip()


@pytest.fixture
def project(tmp_path: Path) -> Iterator[Project]:
    if shutil.which("docker") is None:
        pytest.skip("docker is not installed")
    made = Project(tmp_path)
    yield made
    subprocess.run(
        ["docker", "compose", "-p", made.name, "down", "-t", "0", "--remove-orphans"],
        capture_output=True,
        check=False,
    )


def test_a_damaged_snapshot_is_refused_named_and_replaced_by_good_settings(
    project: Project,
) -> None:
    failed, result = project.deploy(project.good, "good")
    assert not failed, result
    assert (project.snap / "compose.yaml").read_text() == project.good
    assert (project.snap / "SHA256SUMS").is_file()

    # the fault: one file of the snapshot overwritten with garbage, then an update that fails
    (project.snap / "compose.yaml").write_bytes(GARBAGE)
    failed, result = project.deploy(project.bad, "bad")
    assert failed
    damaged = project.snap / "compose.yaml"
    msg = result["msg"]
    assert msg.startswith(f"{LABEL}: the new configuration did not become healthy ("), msg
    assert (
        "The previous version was not restored, the new one stays in place: "
        f"the snapshot {project.snap} cannot be trusted: "
        f"{damaged} is not UTF-8 text (byte 0xb0 at position 0). "
        f"Nothing was put back: {project.dir} keeps its current files. "
        "The snapshot is replaced once a version of the project is proven healthy again"
    ) in msg, msg
    assert (project.dir / "compose.yaml").read_text() == project.bad
    assert (project.dir / "app.env").read_text() == "MODE=bad\n"
    assert damaged.read_bytes() == GARBAGE

    # the last good settings again: deployed, proven, kept (the garbage replaced)
    failed, result = project.deploy(project.good, "good")
    assert not failed, result
    assert project.health() == "healthy"
    assert (project.snap / "compose.yaml").read_text() == project.good
    assert (project.snap / "app.env").read_text() == "MODE=good\n"

    # so the next failure is restored
    failed, result = project.deploy(project.bad, "bad")
    assert failed
    assert (
        f"Previous compose and env files restored from {project.snap}; "
        "the previous version serves again."
    ) in result["msg"], result["msg"]
    assert (project.dir / "compose.yaml").read_text() == project.good
    assert (project.dir / "app.env").read_text() == "MODE=good\n"
    assert project.health() == "healthy"


def test_restore_refuses_a_damaged_snapshot_and_fails_naming_the_file(project: Project) -> None:
    """tasks_from: restore (update.yml puts a project back with it) fails on the refusal."""
    project.snap.mkdir(parents=True)
    (project.dir / "compose.yaml").write_text(project.bad)
    (project.dir / "app.env").write_text("MODE=bad\n")
    (project.snap / "compose.yaml").write_text(project.good)
    (project.snap / "app.env").write_bytes(b"MODE=" + GARBAGE)  # a snapshot without SHA256SUMS
    failed, result = project.run("restore.yml")
    assert failed
    assert result["msg"].startswith(
        f"the snapshot {project.snap} cannot be trusted: {project.snap / 'app.env'} is not UTF-8"
        " text (byte 0xb0 at position 5). Nothing was put back"
    ), result["msg"]
    assert (project.dir / "compose.yaml").read_text() == project.bad
    assert (project.dir / "app.env").read_text() == "MODE=bad\n"
