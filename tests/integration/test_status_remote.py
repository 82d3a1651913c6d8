"""The panel and `genai-stack status` on the controller, reading a GPU host over real SSH.

One fresh Debian 12 host (tests/integration/ssh_hosts.py: sshd on 127.0.0.1:2350, reached as
``admin`` with ``become``, root /opt/genai-status00, ports from 22000, compose projects
status00-*) converged with site.yml: two vLLM models sharing GPU 1, ComfyUI behind ComfyUI-Login
on GPU 0, stand-in images. The host runs in this machine's pid namespace, as sshd and the
containers do on a real GPU host: the fake nvidia-smi (tests/standins/nvidia-smi) reports every
process that declares a GPU, each vLLM stand-in its ``gpu_memory_utilization`` share of the GPU,
ComfyUI the 3000 MiB its environment claims (over its 0.2 share of 8 GiB); status.yml finds
each one's container from its cgroup.

A fresh host has no python3-requests (nvidia_runtime installs it only with the NVIDIA toolkit,
skipped here), so community.docker's modules cannot run: status.yml reads the containers through
the docker CLI. The order: `genai-stack status --json`, every service up (ComfyUI with its
token), the containers read through the docker CLI, the GPUs' plan beside their use; then one
vLLM container stopped and python3-requests put on the host: the panel's /api/status reads it
down, exited, and the others up with the same containers as before, now read by community.docker's
modules; then sshd stopped: the host unreachable, well within the deadline.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import ssh_hosts
from fastapi.testclient import TestClient
from ssh_hosts import ROOT, Fleet, run

from genai_stack.panel import PanelConfig, create_app
from genai_stack.panel.auth import set_password
from genai_stack.project import Project

HOST = "status00"
PASSWORD = "status remote test password"
#: the GPUs the host declares and its fake nvidia-smi reports (scanning the processes)
GPUS = [
    {"index": 0, "name": "status GPU 0", "memory_total_mib": 8192, "memory_used_mib": 300},
    {"index": 1, "name": "status GPU 1", "memory_total_mib": 16384, "memory_used_mib": 500},
]
#: what ComfyUI's container claims on GPU 0 (its share: 0.2 of 8192 MiB)
COMFYUI_CLAIM_MIB = 3000
#: the status runs' deadline: roomy, for a machine running the suite side by side (a status run
#: of this host took 22-25 s on 2 shared cores at a load average near 5, 60 to over 120 s near 30)
DEADLINE_S = 180
#: site.yml without what this host has nothing for (no toolkit, no docker to install: it shares
#: this machine's; no Forge instance)
LIGHT = ("--skip-tags", "nvidia,forge")


def with_host_pids(real: Any) -> Any:
    """ssh_hosts.run, starting the host in this machine's pid namespace."""

    def run_host(cmd: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        if cmd[:2] == ["docker", "run"]:
            cmd = [*cmd[:2], "--pid", "host", *cmd[2:]]
        return real(cmd, **kw)

    return run_host


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    """The host, converged."""
    fleet = Fleet("status", 1, tmp_path_factory.mktemp("status-remote"), 2350, 22000)
    base = fleet.base[HOST]
    model = {"max_model_len": 4096, "env": {"STANDIN_LOAD_SECONDS": "1"}}
    fleet.host_vars[HOST].update(
        genai_gpus=[{k: g[k] for k in ("index", "name", "memory_total_mib")} for g in GPUS],
        vllm_qwen3_models=[
            {"name": "qwen3-micro", "model": "Qwen/Qwen3-1.7B-FP8", "port": base,
             "gpus": [1], "gpu_memory_utilization": 0.3, **model},
            {"name": "qwen3-mini", "model": "Qwen/Qwen3-8B-AWQ", "port": base + 1,
             "gpus": [1], "gpu_memory_utilization": 0.4, "quantization": "awq_marlin", **model},
        ],
        comfyui_qwen_auth_gpu=0,
        comfyui_qwen_auth_gpu_memory_share=0.2,
        comfyui_qwen_auth_env={"FAKE_NVIDIA_SMI_CLAIM_MIB": str(COMFYUI_CLAIM_MIB)},
    )  # fmt: skip
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(ssh_hosts, "run", with_host_pids(ssh_hosts.run))
            fleet.start()
        smi = json.dumps({"gpus": GPUS, "processes": "scan"})
        written = run(["docker", "exec", "-i", f"genai-{HOST}", "sh", "-c",
                       "cat > /etc/fake-nvidia-smi.json"], input=smi)  # fmt: skip
        assert written.returncode == 0, written.stderr
        done = fleet.ansible("site.yml", *LIGHT)
        (fleet.tmp / "site.log").write_text(done.stdout + done.stderr)
        assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
        yield fleet
    finally:
        fleet.stop()


def cli_status(fleet: Fleet) -> tuple[int, dict[str, Any], float]:
    """`genai-stack status -l HOST --json` as the admin runs it on the controller."""
    start = time.monotonic()
    done = run([sys.executable, "-m", "genai_stack", "--project", str(ROOT),
                "--state-dir", str(fleet.tmp / "state"), "-i", str(fleet.inventory),
                "status", "-l", HOST, "--json", "--deadline", str(DEADLINE_S)])  # fmt: skip
    took = time.monotonic() - start
    assert done.stdout.startswith("{"), done.stdout[-3000:] + done.stderr[-3000:]
    return done.returncode, json.loads(done.stdout), took


def services(host: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["name"]: s for s in host["services"]}


def task_outcomes(state: Path, run_id: str) -> dict[str, set[str]]:
    """What each task of a status run did on HOST (ok, skipping...; per item for a loop), from
    the run's stdout."""
    stdout = (state / "status" / "artifacts" / run_id / "stdout").read_text()
    outcomes = {}
    for block in stdout.split("\nTASK [")[1:]:
        lines = block.splitlines()
        outcomes[lines[0].split("]", 1)[0]] = {
            x.split(":")[0] for x in lines[1:] if x.split(" => ")[0].endswith(f" [{HOST}]")
        }
    return outcomes


CLI_LIST = "List the compose containers through the docker CLI (the API modules could not run)"
API_INSPECT = "Inspect the containers of the stack's services"


@pytest.fixture(scope="module")
def first(fleet: Fleet) -> dict[str, Any]:
    """The host read by the CLI, python3-requests absent from it."""
    assert fleet.hosts[HOST].in_host("python3", "-c", "import requests").returncode != 0
    rc, data, took = cli_status(fleet)
    print(f"status of {HOST} over SSH (containers through the docker CLI): {took:.1f}s")
    assert rc == 0, json.dumps(data, indent=1)[-4000:]
    outcomes = task_outcomes(fleet.tmp / "state", data["run_id"])
    assert (outcomes[API_INSPECT], outcomes[CLI_LIST]) == ({"skipping"}, {"ok"}), outcomes
    (host,) = data["hosts"]
    return host


def test_every_service_is_up_with_its_checks(first: dict[str, Any]) -> None:
    assert first["name"] == HOST and first["state"] == "ok", first
    assert first["credentials_error"] == "" and first["docker_error"] == ""
    found = services(first)
    assert set(found) == {"qwen3-micro", "qwen3-mini", "comfyui"}
    assert all(s["state"] == "up" and s["ok"] is True for s in found.values()), found
    comfy = {c["name"]: c for c in found["comfyui"]["checks"]}
    assert comfy["comfyui: system stats"]["status"] == 200  # with the token
    assert comfy["comfyui: refuses no token"]["status"] == 401
    assert found["comfyui"]["reason"] == ""  # checked with the credentials, not without
    for name in ("qwen3-micro", "qwen3-mini"):
        checks = {c["name"]: c["status"] for c in found[name]["checks"]}
        assert checks == {f"{name}: health": 200, f"{name}: refuses no key": 401,
                          f"{name}: lists {name}": 200}, checks  # fmt: skip


def test_every_container_is_read_through_the_docker_cli(first: dict[str, Any]) -> None:
    found = services(first)
    for name, project, image in (
        ("qwen3-micro", "vllm", "local/vllm-standin:latest"),
        ("qwen3-mini", "vllm", "local/vllm-standin:latest"),
        ("comfyui", "comfyui", "local/comfyui-standin:latest"),
    ):
        container = found[name]["container"]
        assert container is not None, f"{name}: no container read"
        assert container["name"] == f"{HOST}-{project}-{name}"
        state = (container["status"], container["running"], container["health"])
        assert state == ("running", True, "healthy"), container
        assert container["image"] == image and container["restarts"] == 0


def test_gpu_memory_now_beside_the_plan(first: dict[str, Any]) -> None:
    gpus = {g["index"]: g for g in first["gpus"]}
    assert set(gpus) == {0, 1} and first["gpu_status"] == "ok"
    for gpu in GPUS:
        now = gpus[gpu["index"]]
        assert now["measured"] and now["name"] == gpu["name"]
        assert now["memory_total_mib"] == gpu["memory_total_mib"]
        mine = sum(u["used_mib"] for u in now["uses"])
        # the fake's figure plus its processes (other tests' containers may claim more)
        assert now["memory_used_mib"] >= gpu["memory_used_mib"] + mine

    one = gpus[1]
    assert one["planned_share"] == 0.7 and one["planned_mib"] == int(0.7 * 16384)
    uses = {u["service"]: u for u in one["uses"]}
    assert set(uses) == {"qwen3-micro", "qwen3-mini"}
    for name, share in (("qwen3-micro", 0.3), ("qwen3-mini", 0.4)):
        use = uses[name]
        # each vLLM claims its gpu_memory_utilization of the GPU: exactly its plan, not over
        assert use["planned"] and use["planned_share"] == share
        assert use["planned_mib"] == int(share * 16384) == use["used_mib"], use
        assert use["over"] is False

    zero = gpus[0]
    (comfy,) = zero["uses"]
    assert comfy["service"] == "comfyui" and comfy["planned_share"] == 0.2
    assert comfy["planned_mib"] == int(0.2 * 8192)
    # ComfyUI's process claims 3000 MiB (a healthcheck running in its container at that moment
    # shares its environment and claims as much again): over its share, the GPU marked
    assert comfy["used_mib"] >= COMFYUI_CLAIM_MIB and comfy["used_mib"] % COMFYUI_CLAIM_MIB == 0
    assert comfy["over"] is True and zero["over"] is True


@pytest.fixture(scope="module")
def stopped(fleet: Fleet, first: dict[str, Any]) -> dict[str, Any]:
    """qwen3-mini's container stopped, python3-requests on the host (the venv's requests and its
    dependencies, where Debian's package puts them), the host read by the panel."""
    site = Path(requests.__file__).parents[1]
    for package in ("requests", "urllib3", "idna", "charset_normalizer", "certifi"):
        copied = run(["docker", "cp", str(site / package),
                      f"genai-{HOST}:/usr/lib/python3/dist-packages/{package}"])  # fmt: skip
        assert copied.returncode == 0, copied.stderr
    assert fleet.hosts[HOST].in_host("python3", "-c", "import requests").returncode == 0
    done = run(["docker", "stop", "-t", "2", f"{HOST}-vllm-qwen3-mini"])
    assert done.returncode == 0, done.stderr
    config = PanelConfig.create(Project(ROOT), fleet.tmp / "panel-state",
                                fleet.tmp / "panel-secrets", inventory=str(fleet.inventory),
                                status_deadline_s=DEADLINE_S)  # fmt: skip
    set_password(config.password_file, "admin", PASSWORD, rounds=4)
    start = time.monotonic()
    with TestClient(create_app(config), follow_redirects=False) as client:
        page = client.get("/login").text
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post("/login", data={"username": "admin", "password": PASSWORD,
                                    "csrf_token": token, "next": "/"})  # fmt: skip
        assert f'data-health="{HOST}/qwen3-mini"' in client.get("/").text
        data = client.get("/api/status", params={"wait": True}).json()["status"]
    print(f"status of {HOST} over SSH (community.docker): {time.monotonic() - start:.1f}s")
    outcomes = task_outcomes(config.state_dir, data["run_id"])
    assert "ok" in outcomes[API_INSPECT] and outcomes[CLI_LIST] == {"skipping"}, outcomes
    (host,) = data["hosts"]
    return host


def test_a_stopped_vllm_container_reads_down_on_the_panel(stopped: dict[str, Any]) -> None:
    assert stopped["state"] == "degraded" and stopped["reason"] == "qwen3-mini down", stopped
    found = services(stopped)
    mini = found["qwen3-mini"]
    assert mini["state"] == "down" and mini["ok"] is False
    assert mini["reason"].startswith(f"container {HOST}-vllm-qwen3-mini exited"), mini
    assert mini["container"]["status"] == "exited" and mini["container"]["running"] is False
    for name in ("qwen3-micro", "comfyui"):
        assert found[name]["state"] == "up", found[name]
    # the stopped model holds no memory any more; the other one still its share
    uses = {u["service"]: u for g in stopped["gpus"] for u in g["uses"] if g["index"] == 1}
    assert uses["qwen3-mini"]["used_mib"] == 0 and uses["qwen3-mini"]["over"] is False
    assert uses["qwen3-micro"]["used_mib"] == int(0.3 * 16384)


def test_the_docker_api_modules_read_what_the_cli_read(
    first: dict[str, Any], stopped: dict[str, Any]
) -> None:
    before, after = services(first), services(stopped)
    for name in ("qwen3-micro", "comfyui"):  # not touched in between
        assert after[name]["container"] == before[name]["container"]
    assert stopped["docker_error"] == ""


def test_a_host_whose_sshd_stopped_is_unreachable_within_the_deadline(fleet: Fleet) -> None:
    done = run(["docker", "stop", "-t", "2", f"genai-{HOST}"])
    assert done.returncode == 0, done.stderr
    rc, data, took = cli_status(fleet)
    print(f"status of {HOST} with sshd stopped: {took:.1f}s")
    assert rc == 1 and data["error"] is None
    (host,) = data["hosts"]
    assert host["name"] == HOST and host["state"] == "unreachable", host
    assert host["reason"] and host["services"] == []
    assert took < DEADLINE_S
