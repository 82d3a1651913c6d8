"""The compose engine's GPU runtime check (compose_rollout's runtime.yml) through ansible-playbook.

The check reads the runtimes dockerd knows with community.docker.docker_host_info and fails with
compose_rollout_runtime_missing when nvidia is not one of them, before anything else runs. It
runs against this machine's dockerd (which must agree with ``docker info``), and against a fake
docker API on a unix socket (DOCKER_HOST) that lists the nvidia runtime, or not, and records
what it was asked, so that the test proves the check read /info.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socketserver
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
LABEL = "vllm_qwen3"
MISSING = (
    "docker has no nvidia runtime, so containers reserving GPUs cannot start. Apply the "
    "nvidia_runtime role first, or set vllm_qwen3_gpu_reservation=false "
    "(genai_gpu_reservation=false for every role) on hosts without GPUs."
)
INCLUDE = "Check the GPU runtime"
READ = "myia.genai_stack.compose_rollout : Read the runtimes docker knows"
CHECK = "myia.genai_stack.compose_rollout : Check docker lists the nvidia runtime"
LATER = "A later task"
RUNC = {"runc": {"path": "runc"}, "io.containerd.runc.v2": {"path": "runc"}}
NVIDIA = {**RUNC, "nvidia": {"path": "nvidia-container-runtime"}}


def run_check(tmp: Path, docker_host: str | None) -> tuple[dict[str, Any], str]:
    """runtime.yml as the service roles include it, then one more task; the json report."""
    playbook = tmp / "runtime.yml"
    playbook.write_text(
        yaml.safe_dump(
            [
                {
                    "hosts": "localhost",
                    "gather_facts": False,
                    "vars": {
                        "ansible_connection": "local",
                        "ansible_python_interpreter": sys.executable,
                    },
                    "tasks": [
                        {
                            "name": INCLUDE,
                            "ansible.builtin.include_role": {
                                "name": "myia.genai_stack.compose_rollout",
                                "tasks_from": "runtime.yml",
                            },
                            "vars": {"compose_rollout_label": LABEL},
                        },
                        {"name": LATER, "ansible.builtin.debug": {"msg": "ran"}},
                    ],
                }
            ]
        )
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("DOCKER_", "ANSIBLE_"))
    }
    env |= {
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
    }
    if docker_host:
        env["DOCKER_HOST"] = docker_host
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", "localhost,", str(playbook)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode in (0, 2), output
    return json.loads(done.stdout), output


def tasks(report: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(t["task"]["name"], t["hosts"]["localhost"]) for t in report["plays"][0]["tasks"]]


def assert_fails_with_the_message(report: dict[str, Any], output: str) -> None:
    ran = tasks(report)
    assert [name for name, _ in ran] == [INCLUDE, READ, CHECK], output  # LATER never ran
    read, check = ran[1][1], ran[2][1]
    assert not read.get("failed") and "Runtimes" in read["host_info"]
    assert "nvidia" not in read["host_info"]["Runtimes"]
    assert check["failed"] is True
    assert check["msg"] == MISSING
    stats = report["stats"]["localhost"]
    assert (stats["failures"], stats["ok"]) == (1, 2)


def assert_passes(report: dict[str, Any], output: str) -> dict[str, Any]:
    ran = tasks(report)
    assert [name for name, _ in ran] == [INCLUDE, READ, CHECK, LATER], output
    assert all(not result.get("failed") for _, result in ran), output
    assert report["stats"]["localhost"]["failures"] == 0
    return ran[1][1]["host_info"]


# --- this machine's dockerd ------------------------------------------------------------------


def real_runtimes() -> dict[str, Any]:
    if not shutil.which("docker"):
        pytest.skip("docker is not installed")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    done = subprocess.run(
        ["docker", "info", "--format", "{{json .Runtimes}}"],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"dockerd does not answer: {done.stderr.strip()}")
    return json.loads(done.stdout)


def test_against_this_dockerd_the_check_agrees_with_docker_info(tmp_path: Path) -> None:
    """Without the nvidia runtime (this machine), the play stops with the role's message."""
    runtimes = real_runtimes()
    report, output = run_check(tmp_path, None)
    if "nvidia" in runtimes:  # a GPU host: the check passes and saw what docker info lists
        assert sorted(assert_passes(report, output)["Runtimes"]) == sorted(runtimes)
    else:
        assert_fails_with_the_message(report, output)
        assert sorted(tasks(report)[1][1]["host_info"]["Runtimes"]) == sorted(runtimes)


# --- a fake docker API -----------------------------------------------------------------------


class FakeDocker:
    """A docker API on a unix socket: /_ping, /version and /info (with or without a /v1.xx
    prefix), everything else 404; every request's method and path recorded."""

    def __init__(self, socket_path: Path, runtimes: dict[str, Any]) -> None:
        self.socket_path = socket_path
        self.requests: list[str] = []
        self.answers: dict[str, Any] = {
            "/_ping": "OK",
            "/version": {
                "ApiVersion": "1.41",
                "MinAPIVersion": "1.12",
                "Version": "20.10.99-fake",
                "Os": "linux",
                "Arch": "amd64",
                "KernelVersion": "6.0.0",
            },
            "/info": {
                "ID": "FAKE:DOCKER",
                "Name": "fake-docker",
                "ServerVersion": "20.10.99-fake",
                "OperatingSystem": "Fake Linux",
                "Runtimes": runtimes,
                "DefaultRuntime": "runc",
                "Containers": 0,
                "Images": 0,
            },
        }
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def answer(self, body: bool) -> None:
                fake.requests.append(f"{self.command} {self.path}")
                path = re.sub(r"^/v1\.\d+(?=/)", "", self.path.split("?", 1)[0])
                if path not in fake.answers:
                    data, status, kind = b'{"message": "page not found"}', 404, "application/json"
                elif isinstance(fake.answers[path], str):
                    data, status, kind = fake.answers[path].encode(), 200, "text/plain"
                else:
                    data, status, kind = json.dumps(fake.answers[path]).encode(), 200, "application/json"  # fmt: skip
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Api-Version", "1.41")
                self.end_headers()
                if body:
                    self.wfile.write(data)

            def do_GET(self) -> None:
                self.answer(body=True)

            def do_HEAD(self) -> None:
                self.answer(body=False)

            def address_string(self) -> str:
                return "unix"

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = socketserver.ThreadingUnixStreamServer(str(socket_path), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeDocker:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def socket_dir(tmp_path: Path) -> Iterator[Path]:
    """tmp_path, or a shorter directory where tmp_path is too long for a unix socket."""
    if len(str(tmp_path / "docker.sock")) < 100:
        yield tmp_path
        return
    short = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    try:
        yield short
    finally:
        shutil.rmtree(short)


@pytest.mark.parametrize(
    ("runtimes", "passes"), [(NVIDIA, True), (RUNC, False)], ids=["nvidia", "runc-only"]
)
def test_against_a_fake_docker_api(
    tmp_path: Path, socket_dir: Path, runtimes: dict[str, Any], passes: bool
) -> None:
    sock = socket_dir / "docker.sock"
    with FakeDocker(sock, runtimes) as fake:
        report, output = run_check(tmp_path, f"unix://{sock}")
    if passes:
        host_info = assert_passes(report, output)
        assert host_info["Runtimes"] == NVIDIA and host_info["ID"] == "FAKE:DOCKER"
    else:
        assert_fails_with_the_message(report, output)
        assert tasks(report)[1][1]["host_info"]["ID"] == "FAKE:DOCKER"
    # the client asks the API version first (unversioned), then /info at that version
    assert fake.requests == ["GET /version", "GET /v1.41/info"], fake.requests
