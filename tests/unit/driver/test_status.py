"""What runs now on the hosts: status.yml through ansible-runner, and how its reports are read.

The run test is real (ansible-runner, status.yml, endpoint_health, ComfyUI-Login's stand-in with
a bcrypt PASSWORD, the fake nvidia-smi), on local hosts with no docker daemon reachable (an
unreachable DOCKER_HOST) and one SSH host on a closed 127.0.0.1 port. The rest reads reports.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import bcrypt
import pytest
import requests
import yaml
from fastapi.testclient import TestClient

from ansible_collections.myia.genai_stack.plugins.filter.derive_secret import derive_secret
from genai_stack import status
from genai_stack.cli import main
from genai_stack.driver import Driver
from genai_stack.events import FailedTask, HostStats, RunResult
from genai_stack.panel import PanelConfig, create_app
from genai_stack.panel.auth import set_password
from genai_stack.project import Project

ROOT = Path(__file__).resolve().parents[3]
COMFYUI = ROOT / "tests" / "standins" / "comfyui" / "ComfyUI"
FAKE_SMI = ROOT / "tests" / "standins" / "nvidia-smi" / "nvidia-smi"
SECRET = "s3cretS3cretS3cretS3cretS3cretS3cretS3cretS3cret"
PASSWORD = "status test password"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def comfyui(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, int]]:
    """ComfyUI-Login's stand-in whose PASSWORD holds a hash of the password the stack derives."""
    root = tmp_path_factory.mktemp("comfyui") / "ComfyUI"
    shutil.copytree(COMFYUI, root, ignore=shutil.ignore_patterns("__pycache__"))
    for folder in ("input", "output", "temp", "login"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    password = derive_secret(SECRET, "comfyui-password")
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(4)).decode()
    (root / "login" / "PASSWORD").write_text(f"{hashed}\nadmin\n")
    (root / "login" / "PASSWORD").chmod(0o600)
    port = free_port()
    log = (root.parent / "comfyui.log").open("wb")
    env = {k: v for k, v in os.environ.items() if not k.startswith("STANDIN")}
    proc = subprocess.Popen(
        [sys.executable, "main.py", "--listen", "127.0.0.1", "--port", str(port)],
        cwd=root,
        env={**env, "PYTHONDONTWRITEBYTECODE": "1", "NVIDIA_VISIBLE_DEVICES": "0"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        for _ in range(200):
            try:
                requests.get(f"http://127.0.0.1:{port}/login", timeout=1)
                break
            except requests.ConnectionError:
                time.sleep(0.05)
        yield root, port
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def write_inventory(tmp: Path, comfyui: tuple[Path, int]) -> Path:
    root, port = comfyui
    smi_config = tmp / "fake-nvidia-smi.json"
    smi_config.write_text(json.dumps({
        "gpus": [{"name": "Test GPU", "memory_total_mib": 8192, "memory_used_mib": 100}],
        "processes": [{"pid": os.getpid(), "gpu_index": 0, "used_memory_mib": 3000}],
    }))  # fmt: skip
    local = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "vault_genai_secret": SECRET,
        "genai_root_dir": str(tmp / "genai"),
        "genai_gpus": [{"index": 0, "name": "Test GPU", "memory_total_mib": 8192}],
        "comfyui_qwen_auth_port": port,
        "comfyui_qwen_auth_data_dir": str(root),
        "comfyui_qwen_auth_gpu_memory_share": 0.25,
        # stopped: nothing listens on its port
        "vllm_qwen3_models": [{"name": "gone", "model": "Qwen/Qwen3-0.6B", "port": free_port(),
                               "gpus": [0], "gpu_memory_utilization": 0.5}],
        "forge_turbo_instances": [],
        "openai_gateway_enabled": False,  # status of a stopped service and a running one
    }  # fmt: skip
    far = {**local, "ansible_connection": "ssh", "ansible_host": "127.0.0.1",
           "ansible_port": free_port(), "ansible_user": "nobody"}  # fmt: skip
    inventory = {"all": {"children": {"gpu_hosts": {"hosts": {"near": local, "far": far}}}}}
    path = tmp / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    shutil.copy(FAKE_SMI, bin_dir / "nvidia-smi")
    return path


def status_driver(tmp: Path) -> Driver:
    env = {
        "PATH": f"{tmp / 'bin'}:{os.environ['PATH']}",
        "FAKE_NVIDIA_SMI_CONFIG": str(tmp / "fake-nvidia-smi.json"),
        "DOCKER_HOST": f"unix://{tmp / 'no-docker.sock'}",
    }
    return Driver(Project(ROOT), state_dir=tmp / "state", env=env)


@pytest.fixture(scope="module")
def collected(
    tmp_path_factory: pytest.TempPathFactory, comfyui: tuple[Path, int]
) -> tuple[status.StackStatus, Path]:
    tmp = tmp_path_factory.mktemp("status")
    inventory = write_inventory(tmp, comfyui)
    return status.collect(status_driver(tmp), str(inventory)), tmp


def test_comfyui_is_checked_with_its_token_as_validate_does(
    collected: tuple[status.StackStatus, Path],
) -> None:
    result, _ = collected
    comfy = result.service("near", "comfyui")
    assert comfy is not None
    checks = {c.name: c for c in comfy.checks}
    assert checks["comfyui: system stats"].status == 200  # with the token
    assert checks["comfyui: refuses no token"].status == 401
    assert comfy.state == "up" and comfy.ok is True


def test_a_stopped_service_is_down_with_the_reason(
    collected: tuple[status.StackStatus, Path],
) -> None:
    result, _ = collected
    gone = result.service("near", "gone")
    assert gone is not None and gone.state == "down"
    assert gone.reason.startswith("gone: health: ") and "refused" in gone.reason.lower()
    near = next(h for h in result.hosts if h.name == "near")
    assert near.state == "degraded" and near.reason == "gone down"
    # only GET checks: a status never prompts a model
    assert {c.name for c in gone.checks} == {"gone: health", "gone: refuses no key",
                                             "gone: lists gone"}  # fmt: skip
    assert near.docker_error  # no docker: containers not known, not invented
    assert comfy_container_unknown(result)


def comfy_container_unknown(result: status.StackStatus) -> bool:
    comfy = result.service("near", "comfyui")
    return comfy is not None and comfy.container is None


def test_an_unreachable_host_is_unreachable_not_its_services_failing(
    collected: tuple[status.StackStatus, Path],
) -> None:
    result, _ = collected
    far = next(h for h in result.hosts if h.name == "far")
    assert far.state == "unreachable" and far.reason
    assert far.services == []
    assert [h.name for h in result.hosts] == ["far", "near"]


def test_gpu_memory_now_beside_the_plan(collected: tuple[status.StackStatus, Path]) -> None:
    result, _ = collected
    near = next(h for h in result.hosts if h.name == "near")
    (gpu,) = near.gpus
    assert gpu.measured and gpu.memory_total_mib == 8192
    assert gpu.memory_used_mib == 3100  # the fake's 100 MiB plus its process's 3000
    assert gpu.other_mib == 3000  # a process of no service's container
    assert {u.service: (u.planned_share, u.planned_mib) for u in gpu.uses} == {
        "gone": (0.5, 4096),
        "comfyui": (0.25, 2048),
    }
    assert gpu.planned_share == 0.75 and gpu.over is False


def test_no_secret_reaches_the_report_or_the_artifacts(
    collected: tuple[status.StackStatus, Path], comfyui: tuple[Path, int]
) -> None:
    result, tmp = collected
    text = json.dumps(result.to_dict())
    hashed = (comfyui[0] / "login" / "PASSWORD").read_text().splitlines()[0]
    secrets = [SECRET, hashed, derive_secret(SECRET, "vllm-api-key"),
               derive_secret(SECRET, "comfyui-password")]  # fmt: skip
    artifacts = "".join(
        p.read_text(errors="replace") for p in (tmp / "state").rglob("*") if p.is_file()
    )
    assert artifacts  # the run left its (status) artifacts
    for secret in secrets:
        assert secret not in text and secret not in artifacts


def test_cli_prints_the_same_status(
    tmp_path: Path, comfyui: tuple[Path, int], capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    inventory = write_inventory(tmp_path, comfyui)
    for key, value in status_driver(tmp_path).extra_env.items():
        monkeypatch.setenv(key, value)
    rc = main(["--project", str(ROOT), "--state-dir", str(tmp_path / "state"),
               "-i", str(inventory), "status", "-l", "near", "--json"])  # fmt: skip
    data = json.loads(capsys.readouterr().out)
    assert rc == 1  # a service is down
    (near,) = data["hosts"]
    states = {s["name"]: s["state"] for s in near["services"]}
    assert states == {"gone": "down", "comfyui": "up"}
    rc = main(["--project", str(ROOT), "--state-dir", str(tmp_path / "state"),
               "-i", str(inventory), "status", "-l", "near"])  # fmt: skip
    out = capsys.readouterr().out
    assert "near: degraded (gone down)" in out
    assert "comfyui              up 2 checks" in out
    assert "gone                 DOWN (gone: health: " in out


# -- reports read without a run -----------------------------------------------------------------
def report(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "host": "h",
        "credentials_error": "",
        "services": [
            {"name": "a", "kind": "vllm", "backend_url": "http://127.0.0.1:1", "health_path": "/health"},
            {"name": "b", "kind": "comfyui", "backend_url": "http://127.0.0.1:2", "health_path": "/system_stats"},
        ],
        "gpu_plan": {
            "gpus": [{"index": 0, "memory_total_mib": 10000}, {"index": 1, "memory_total_mib": 10000}],
            "services": {"a": {"gpus": [0], "memory_share": 0.5}, "b": {"gpus": [0], "memory_share": 0.3}},
        },
        "endpoints": [
            {"name": "a: health", "url": "u", "ok": True, "status": 200, "latency_ms": 3.0},
            {"name": "b: system stats", "url": "u", "ok": True, "status": 200, "latency_ms": 5.0},
        ],
        "docker": {"ok": True, "error": ""},
        "containers": [
            {"service": "a", "id": "a" * 64, "name": "vllm-a", "image": "vllm:1", "status": "running",
             "running": True, "health": "healthy", "restarts": 2},
            {"service": "b", "id": "b" * 64, "name": "comfyui-b", "image": "comfy:1", "status": "running",
             "running": True, "health": "healthy", "restarts": 0},
        ],
        "gpus": {
            "status": "ok", "reason": "",
            "list": [{"index": 0, "uuid": "GPU-0", "name": "G", "memory_total_mib": 10000, "memory_used_mib": 7000},
                     {"index": 1, "uuid": "GPU-1", "name": "G", "memory_total_mib": 10000, "memory_used_mib": 500}],
            "processes": [
                {"pid": 1, "gpu_uuid": "GPU-0", "used_memory_mib": 5000, "container_id": "a" * 64},
                {"pid": 2, "gpu_uuid": "GPU-0", "used_memory_mib": 2000, "container_id": "b" * 64},
            ],
        },
    }  # fmt: skip
    base.update(overrides)
    return base


def test_every_service_up_with_its_container() -> None:
    host = status.host_status("h", report())
    assert host.state == "ok"
    a = host.services[0]
    assert a.state == "up" and a.container is not None
    assert (a.container.name, a.container.restarts, a.container.health) == ("vllm-a", 2, "healthy")


def test_a_stopped_container_is_down_with_its_exit_code() -> None:
    data = report()
    data["containers"][1].update(status="exited", running=False, exit_code=137, health=None)
    host = status.host_status("h", data)
    assert host.state == "degraded"
    assert host.services[1].state == "down"
    assert host.services[1].reason == "container comfyui-b exited (exit code 137)"


def test_a_service_without_container_is_down_when_docker_answers() -> None:
    host = status.host_status("h", report(containers=[]))
    assert [s.reason for s in host.services] == ["no container", "no container"]
    unknown = status.host_status("h", report(containers=[], docker={"ok": False, "error": "x"}))
    assert [s.state for s in unknown.services] == ["up", "up"]  # the checks still tell
    assert unknown.docker_error == "x"


def test_a_failed_check_names_itself() -> None:
    data = report()
    data["endpoints"][1].update(ok=False, status=401, error="status 401, expected 200")
    b = status.host_status("h", data).services[1]
    assert (b.state, b.reason) == ("down", "b: system stats: status 401, expected 200")


def test_a_service_over_its_share_marks_the_gpu() -> None:
    gpus = status.host_status("h", report()).gpus
    assert [g.index for g in gpus] == [0, 1]
    uses = {u.service: u for u in gpus[0].uses}
    assert uses["a"].used_mib == 5000 and uses["a"].planned_mib == 5000 and not uses["a"].over
    assert uses["b"].used_mib == 2000 and uses["b"].planned_mib == 3000 and not uses["b"].over
    assert gpus[0].over is False and gpus[1].over is False

    data = report()
    data["gpus"]["processes"][0]["used_memory_mib"] = 5001
    gpu = status.host_status("h", data).gpus[0]
    assert {u.service: u.over for u in gpu.uses} == {"a": True, "b": False}
    assert gpu.over is True


def test_a_service_on_a_gpu_it_was_not_planned_on_is_marked() -> None:
    data = report()
    data["gpus"]["processes"].append(
        {"pid": 3, "gpu_uuid": "GPU-1", "used_memory_mib": 100, "container_id": "b" * 64}
    )
    gpu1 = status.host_status("h", data).gpus[1]
    (use,) = gpu1.uses
    assert (use.service, use.planned, use.planned_mib, use.over) == ("b", False, 0, True)
    assert gpu1.over is True


def test_the_gpu_over_its_plan_with_other_processes() -> None:
    data = report()
    data["gpus"]["list"][0]["memory_used_mib"] = 9000  # the driver's own memory: not a process
    assert status.host_status("h", data).gpus[0].over is False
    data["gpus"]["processes"].append({"pid": 9, "gpu_uuid": "GPU-0", "used_memory_mib": 1001})
    gpu = status.host_status("h", data).gpus[0]  # 5000 + 2000 + 1001 > 0.8 of 10000
    assert gpu.other_mib == 1001 and gpu.processes_mib == 8001
    assert all(not u.over for u in gpu.uses) and gpu.over is True


def test_unmeasured_gpus_show_the_plan_only() -> None:
    host = status.host_status("h", report(gpus={"status": "absent", "reason": "no nvidia-smi",
                                                "list": [], "processes": []}))  # fmt: skip
    assert all(not g.measured and g.memory_used_mib is None for g in host.gpus)
    assert all(u.used_mib is None and not u.over for g in host.gpus for u in g.uses)
    assert host.gpu_reason == "no nvidia-smi" and not any(g.over for g in host.gpus)


def test_each_use_has_a_colour_that_means_something() -> None:
    def levels(data: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
        gpus = status.host_status("h", data).gpus
        return {u.service: u.level for u in gpus[0].uses}, [g.level for g in gpus]

    # a uses all of its share (near its ceiling), b two thirds of its share
    assert levels(report()) == ({"a": "near", "b": "within"}, ["near", "within"])
    data = report()
    data["gpus"]["processes"][0]["used_memory_mib"] = 4000
    assert levels(data) == ({"a": "within", "b": "within"}, ["within", "within"])
    data["gpus"]["processes"][1]["used_memory_mib"] = 3001
    assert levels(data) == ({"a": "within", "b": "over"}, ["over", "within"])
    data["gpus"]["processes"][1].update(used_memory_mib=100, gpu_uuid="GPU-1")
    gpus = status.host_status("h", data).gpus
    assert [(u.service, u.level) for u in gpus[1].uses] == [("b", "unplanned")]
    assert gpus[1].level == "unplanned"
    unmeasured = report(gpus={"status": "absent", "reason": "x", "list": [], "processes": []})
    assert levels(unmeasured) == ({"a": "unmeasured", "b": "unmeasured"},
                                  ["unmeasured", "unmeasured"])  # fmt: skip
    shown = status.host_status("h", report()).gpus[0].to_dict()
    assert shown["level"] == "near" and [u["level"] for u in shown["uses"]] == ["near", "within"]


def test_a_demo_host_reads_the_fake_nvidia_smi_and_a_real_host_never() -> None:
    driver = Driver(Project(ROOT), state_dir=Path("/nonexistent"))
    gpus = [{"index": 0, "name": "RTX 4090 (declared)", "memory_total_mib": 24564}]
    demo = {"ansible_connection": "local", status.FAKE_SMI_VAR: True, "genai_gpus": gpus}
    env, faked = status.fake_smi_env(
        driver, {"demo": demo, "real": {"ansible_connection": "local"}}
    )
    assert faked == {"demo"}
    assert env["PATH"].split(os.pathsep)[0] == str(FAKE_SMI.parent)
    assert env["FAKE_NVIDIA_SMI_PROCESSES"] == "scan"
    assert json.loads(env["FAKE_NVIDIA_SMI_GPUS"]) == [
        {"name": "RTX 4090 (fake)", "memory_total_mib": 24564, "memory_used_mib": 1}]  # fmt: skip
    # over SSH the controller's PATH means nothing on the host; without the variable, nothing
    remote = {**demo, "ansible_connection": "ssh"}
    assert status.fake_smi_env(driver, {"far": remote, "real": {}}) == ({}, set())


def run_result(**kwargs: Any) -> RunResult:
    return RunResult(run_id="r", playbook="status", status="failed", rc=4, started_at="",
                     finished_at="", duration_s=1.0, **kwargs)  # fmt: skip


def test_missing_reports_say_why() -> None:
    down = run_result(
        failed_tasks=[
            FailedTask("x", "Discover the GPUs", "Failed to connect\nmore", unreachable=True)
        ]
    )
    assert status.missing_host("x", down).state == "unreachable"
    assert status.missing_host("x", down).reason == "Failed to connect"
    stats = run_result(stats={"y": HostStats(unreachable=1)})
    assert status.missing_host("y", stats).state == "unreachable"
    failed = run_result(
        failed_tasks=[FailedTask("z", "Build and check the stack model", "bad port")]
    )
    assert status.missing_host("z", failed).state == "error"
    assert status.missing_host("z", failed).reason == "Build and check the stack model: bad port"
    late = run_result(error="timed out after 5s")
    late = RunResult(**{**late.__dict__, "status": "timeout"})
    assert "deadline" in status.missing_host("w", late).reason


def test_many_readers_start_one_run() -> None:
    gate = threading.Event()
    calls: list[int] = []

    def compute() -> status.StackStatus:
        calls.append(1)
        gate.wait(10)
        return status.StackStatus([], time.time(), 0.0, run_id=str(len(calls)))

    cache = status.StatusCache(60.0, compute)
    assert cache.get() is None and cache.refreshing  # nothing yet; one run started
    readers = [threading.Thread(target=cache.get, kwargs={"wait": True}) for _ in range(20)]
    for reader in readers:
        reader.start()
    gate.set()
    for reader in readers:
        reader.join(10)
    value = cache.get()
    assert value is not None and value.run_id == "1" and len(calls) == 1
    cache.clear()
    assert cache.get(wait=True).run_id == "2"  # type: ignore[union-attr]
    assert len(calls) == 2


# -- the panel ----------------------------------------------------------------------------------
@contextlib.contextmanager
def panel(
    tmp_path: Path, comfyui: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """The panel on the two-host inventory, logged in (an anonymous /api/status is refused)."""
    inventory = write_inventory(tmp_path, comfyui)
    for key, value in status_driver(tmp_path).extra_env.items():
        monkeypatch.setenv(key, value)
    config = PanelConfig.create(Project(ROOT), tmp_path / "state", tmp_path / "secrets",
                                inventory=str(inventory))  # fmt: skip
    set_password(config.password_file, "admin", PASSWORD, rounds=4)
    with TestClient(create_app(config), follow_redirects=False) as client:
        assert client.get("/api/status").status_code == 401
        page = client.get("/login").text
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post("/login", data={"username": "admin", "password": PASSWORD,
                                    "csrf_token": token, "next": "/"})  # fmt: skip
        yield client


def test_panel_serves_the_status_of_every_host(
    tmp_path: Path, comfyui: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    with panel(tmp_path, comfyui, monkeypatch) as client:
        page = client.get("/").text
        assert 'data-health="near/comfyui"' in page and 'data-gpus="near"' in page
        data = client.get("/api/status", params={"wait": True}).json()
        hosts = {h["name"]: h for h in data["status"]["hosts"]}
        assert hosts["far"]["state"] == "unreachable"
        comfy = next(s for s in hosts["near"]["services"] if s["name"] == "comfyui")
        assert comfy["state"] == "up" and comfy["ok"] is True
        runs = client.app.state.status_cache.runs  # type: ignore[attr-defined]
        for _ in range(5):  # within the interval: the same result, no new run
            assert client.get("/api/status").json()["status"]["run_id"] == data["status"]["run_id"]
        assert client.app.state.status_cache.runs == runs  # type: ignore[attr-defined]


# -- the fake nvidia-smi's processes --------------------------------------------------------------
def test_fake_nvidia_smi_reports_a_vllm_process_share_of_its_gpu(tmp_path: Path) -> None:
    claimer = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "--gpu-memory-utilization", "0.25"],
        env={**os.environ, "NVIDIA_VISIBLE_DEVICES": "1"},
    )
    env = {**os.environ, "FAKE_NVIDIA_SMI_CONFIG": str(tmp_path / "none.json"),
           "FAKE_NVIDIA_SMI_PROCESSES": "scan"}  # fmt: skip
    env.pop("FAKE_NVIDIA_SMI_GPUS", None)
    try:
        for _ in range(100):  # until the child has exec'd python with its arguments
            if b"--gpu-memory-utilization" in Path(f"/proc/{claimer.pid}/cmdline").read_bytes():
                break
            time.sleep(0.02)
        fake = [sys.executable, str(FAKE_SMI)]
        apps = subprocess.run(
            [*fake, "--query-compute-apps=pid,gpu_uuid,used_memory", "--format=csv,noheader,nounits"],
            env=env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
        gpus = subprocess.run(
            [*fake, "--query-gpu=index,uuid,memory.used", "--format=csv,noheader,nounits"],
            env=env, capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        claimer.kill()
        claimer.wait()
    uuid = {line.split(", ")[0]: line.split(", ")[1] for line in gpus.splitlines()}
    mine = [line.split(", ") for line in apps.splitlines() if line.startswith(f"{claimer.pid}, ")]
    assert mine == [[str(claimer.pid), uuid["1"], str(int(0.25 * 24576))]]
    used = {line.split(", ")[0]: int(line.split(", ")[2]) for line in gpus.splitlines()}
    assert used["1"] >= 1 + 6144  # the configured 1 MiB plus this process's share


# -- honest records: read-only playbooks change nothing and are recorded as checks ---------------
def _panel_run(client: TestClient, playbook: str, extra_vars: str = "") -> dict[str, Any]:
    page = client.get("/").text
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    response = client.post("/runs", data={"playbook": playbook, "limit": "near",
                                           "extra_vars": extra_vars, "csrf_token": token})  # fmt: skip
    assert response.status_code == 303, response.text[-3000:]
    run_id = response.headers["location"].rsplit("/", 1)[1]
    with client.stream("GET", f"/runs/{run_id}/events") as stream:
        for _ in stream.iter_lines():
            pass
    row: dict[str, Any] = client.get(f"/api/runs/{run_id}").json()
    return row


def test_validate_and_status_from_the_panel_change_nothing_and_show_as_checks(
    tmp_path: Path, comfyui: tuple[Path, int], monkeypatch: pytest.MonkeyPatch
) -> None:
    with panel(tmp_path, comfyui, monkeypatch) as client:
        # status runs from the panel (check mode, its report directory given by the panel)
        status_row = _panel_run(client, "status")
        assert status_row["status"] == "successful", status_row
        assert status_row["check"] is True
        # validate fails here (the "gone" service is down), yet changes nothing
        validate_row = _panel_run(client, "validate", "validate_deadline: 1")
        assert validate_row["status"] == "failed", validate_row
        for row in (status_row, validate_row):
            assert row["stats"]["near"]["changed"] == 0, row["stats"]
        history = client.get("/runs").text
        modes = [m.strip() for m in history.split('<td class="mode">')[1:]]
        assert len(modes) == 2 and all(m.startswith("check<") for m in modes), modes
