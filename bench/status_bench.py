"""A status refresh (playbooks/status.yml) against one validate.yml run, on 1 host and on 10.

Fresh Debian 12 hosts (tests/integration/ssh_hosts.py: sshd on 127.0.0.1:2360 and up, services
from port 48000, roots /opt/genai-sbenchNN, sharing this machine's dockerd) deploy the light
stack of the many-hosts bed (one vLLM model and ComfyUI, stand-ins), converged in one site.yml
call. Each host's fake nvidia-smi lists one GPU process per service (sshd's pid: status.yml reads
its cgroup as it would a container's), so the per-process steps cost what they would.

Measured, each the median of --runs:
  * a status refresh as the panel and `genai-stack status` make it (genai_stack.status.collect:
    ansible-runner, check mode, the reports read), on the first host, then on all of them;
  * status.yml through ansible-playbook --check, the same hosts (without the driver);
  * validate.yml through ansible-playbook, the same hosts;
  * on the first host once more with python3-requests copied in (the venv's): containers read
    by community.docker's modules (one inspection per container) instead of the docker CLI (a
    fresh host has no python3-requests, so status.yml falls back to the CLI).
  * the panel (its app through FastAPI's TestClient, on all the hosts): time to first paint,
    the Stack page served with the last known state (cold: its first load, which reads the
    inventory and the stack model, never status.yml), and time to fresh data, from "Read the
    hosts now" to the new status.
Prints the figures and the ratios, and the slowest tasks of a 1-host status.yml; no assertion on
time. Every container and root is removed at the end.
Usage: .venv/bin/python bench/status_bench.py [--hosts 10] [--runs 3]
       .venv/bin/python bench/status_bench.py --panel-only [--runs 3]   (the demo inventory)
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "bench"))

from site_rerun_bench import profiled, slowest_tasks
from ssh_hosts import BIN, Fleet, recaps, run

from genai_stack import status
from genai_stack.driver import Driver
from genai_stack.project import Project

DEMO = "inventories/demo/hosts.yml"
#: site.yml without what these hosts have nothing for (as the many-hosts bed)
LIGHT = ("--skip-tags", "nvidia,forge")


def playbook(
    fleet: Fleet, name: str, limit: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = run([str(BIN / "ansible-playbook"), "-i", str(fleet.inventory), name, "-l", limit,
                *args], env=env or {})  # fmt: skip
    counts = recaps(done.stdout)
    if done.returncode != 0 or any(c["failed"] or c["unreachable"] for c in counts.values()):
        sys.exit(f"{name} -l {limit} failed:\n{done.stdout[-4000:]}\n{done.stderr[-3000:]}")
    return done


def median(runs: int, measure: Callable[..., object], *args: object) -> tuple[float, list[float]]:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        measure(*args)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def timed(action: Callable[[], object]) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _panel_client(inventory: Path, tmp: Path) -> Any:
    from fastapi.testclient import TestClient

    from genai_stack.panel import PanelConfig, create_app
    from genai_stack.panel.auth import set_password

    config = PanelConfig.create(Project(ROOT), tmp / "panel-state", tmp / "panel-secrets",
                                inventory=str(inventory))  # fmt: skip
    set_password(config.password_file, "admin", "bench password", rounds=4)
    return TestClient(create_app(config), follow_redirects=False)


def _csrf(client: Any, path: str) -> str:
    return str(client.get(path).text.split('name="csrf_token" value="', 1)[1].split('"', 1)[0])


def _fresh_data(client: Any) -> None:
    """ "Read the hosts now", then the new status (the panel reads in the background)."""
    before = client.get("/api/status").json()["status"]["checked_at"]
    client.post("/refresh", data={"csrf_token": _csrf(client, "/")})
    while client.get("/api/status", params={"wait": True}).json()["status"]["checked_at"] == before:
        time.sleep(0.1)


def panel_figures(inventory: Path, tmp: Path, runs: int) -> dict[str, float]:
    """Time to first paint and time to fresh data through the panel, printed as they come."""
    figures: dict[str, float] = {}

    def record(what: str, values: list[float]) -> None:
        figures[what] = statistics.median(values)
        print(f"  {what:<44} {figures[what]:7.3f} s   "
              f"(runs: {', '.join(f'{v:.3f}' for v in values)})", flush=True)  # fmt: skip

    with _panel_client(inventory, tmp) as client:
        token = _csrf(client, "/login")
        client.post("/login", data={"username": "admin", "password": "bench password",
                                    "csrf_token": token, "next": "/"})  # fmt: skip
        record("first paint, cold (inventory, no status)", [timed(lambda: client.get("/"))])
        wait = {"wait": True}
        record("fresh data, cold (first status read)",
               [timed(lambda: client.get("/api/status", params=wait))])  # fmt: skip
        paints = [timed(lambda: client.get("/")) for _ in range(runs)]
        if "checked_at" not in client.get("/").text:  # the JSON the page holds
            print("  (the Stack page held no last known state)", flush=True)
        record("first paint (last known state)", paints)
        record(
            "fresh data (Read the hosts now)",
            [timed(lambda: _fresh_data(client)) for _ in range(runs)],
        )
    paint = figures["first paint (last known state)"]
    fresh = figures["fresh data (Read the hosts now)"]
    cold = figures["first paint, cold (inventory, no status)"]
    print(f"  fresh data / first paint: {fresh / paint:.0f}x; "
          f"cold first paint / first paint: {cold / paint:.0f}x", flush=True)  # fmt: skip
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10, help="hosts of the many-host figures")
    parser.add_argument("--runs", type=int, default=3, help="runs of each measure (the median)")
    parser.add_argument("--deadline", type=int, default=300,
                        help="deadline of a status refresh (the panel's: 90 s)")  # fmt: skip
    parser.add_argument("--panel-only", action="store_true",
                        help="only the panel's figures, on the demo inventory")  # fmt: skip
    args = parser.parse_args()
    if args.panel_only:
        with tempfile.TemporaryDirectory(prefix="status-bench-") as tmp:
            print(f"panel, demo inventory ({DEMO}); {args.runs} run(s) each, median", flush=True)
            panel_figures(ROOT / DEMO, Path(tmp), args.runs)
        return 0
    with tempfile.TemporaryDirectory(prefix="status-bench-") as tmp:
        fleet = Fleet("sbench", args.hosts, Path(tmp), 2360, 48000)
        one, every = fleet.names[0], ",".join(fleet.names)
        driver = Driver(Project(ROOT), Path(tmp) / "state")
        reports = Path(tmp) / "reports"
        figures: dict[str, dict[int, float]] = {}

        def collect(limit: str, hosts: int) -> None:
            result = status.collect(driver, str(fleet.inventory), limit, deadline_s=args.deadline)
            states = [h.state for h in result.hosts]
            if len(states) != hosts or set(states) != {"ok"}:  # timed, but said
                print(f"    (not every host read ok: {', '.join(sorted(states))} "
                      f"{result.error or ''})", flush=True)  # fmt: skip

        def measure(what: str, hosts: int, fn: Callable[..., object], *fn_args: object) -> None:
            value, times = median(args.runs, fn, *fn_args)
            figures.setdefault(what, {})[hosts] = value
            print(f"  {what:<34} {hosts:>2} host(s): {value:6.1f} s   "
                  f"(runs: {', '.join(f'{t:.1f}' for t in times)})", flush=True)  # fmt: skip

        print(f"load average before: {os.getloadavg()[0]:.1f}; {args.runs} run(s) each, median",
              flush=True)  # fmt: skip
        try:
            fleet.start()
            for name, host in fleet.hosts.items():
                gpus = [{"index": g["index"], "name": g["name"],
                         "memory_total_mib": g["memory_total_mib"], "memory_used_mib": 1}
                        for g in fleet.host_vars[name]["genai_gpus"]]  # fmt: skip
                smi = {"gpus": gpus, "processes": [
                    {"pid": 1, "gpu_index": gpus[-1]["index"], "used_memory_mib": 4000},
                    {"pid": 1, "gpu_index": 0, "used_memory_mib": 1000},
                ]}  # fmt: skip
                written = run(["docker", "exec", "-i", host.name, "sh", "-c",
                               "cat > /etc/fake-nvidia-smi.json"], input=json.dumps(smi))  # fmt: skip
                if written.returncode != 0:
                    sys.exit(written.stderr)
            start = time.perf_counter()
            playbook(fleet, "site.yml", every, *LIGHT)
            print(f"site.yml converge of {args.hosts} host(s): {time.perf_counter() - start:.1f} s",
                  flush=True)  # fmt: skip
            for limit, hosts in ((one, 1), (every, args.hosts)) if args.hosts > 1 else ((one, 1),):
                print(f"{hosts} host(s):", flush=True)
                measure("status refresh (collect)", hosts, collect, limit, hosts)
                measure("status.yml --check (playbook)", hosts, playbook, fleet,
                        "playbooks/status.yml", limit, "--check",
                        "-e", f"status_report_dir={reports}")  # fmt: skip
                measure("validate.yml (playbook)", hosts, playbook, fleet,
                        "playbooks/validate.yml", limit,
                        "-e", f"validate_report_dir={reports}")  # fmt: skip
            profile = playbook(fleet, "playbooks/status.yml", one, "--check", "-e",
                               f"status_report_dir={reports}", env=profiled({}, 10))  # fmt: skip
            print(f"panel, {args.hosts} host(s):", flush=True)
            panel_figures(fleet.inventory, Path(tmp), args.runs)
            import requests  # the venv's, as Debian's python3-requests would be there

            site = Path(requests.__file__).parents[1]
            for package in ("requests", "urllib3", "idna", "charset_normalizer", "certifi"):
                run(["docker", "cp", str(site / package),
                     f"{fleet.hosts[one].name}:/usr/lib/python3/dist-packages/{package}"])  # fmt: skip
            print("1 host with python3-requests (community.docker's modules):", flush=True)
            measure("status refresh, docker API", 1, collect, one, 1)
        finally:
            fleet.stop()

    refresh, validate = figures["status refresh (collect)"], figures["validate.yml (playbook)"]
    raw = figures["status.yml --check (playbook)"]
    print("ratios:")
    for hosts in sorted(refresh):
        print(f"  {hosts:>2} host(s): status refresh / validate.yml {refresh[hosts] / validate[hosts]:.2f}x, "
              f"status.yml alone / validate.yml {raw[hosts] / validate[hosts]:.2f}x, "
              f"driver overhead {refresh[hosts] - raw[hosts]:+.1f} s")  # fmt: skip
    if args.hosts > 1:
        n = args.hosts
        print(f"  {n} hosts / 1 host: status refresh {refresh[n] / refresh[1]:.2f}x, "
              f"validate.yml {validate[n] / validate[1]:.2f}x")  # fmt: skip
    api = figures["status refresh, docker API"][1]
    print(f"  1 host, docker API modules / docker CLI: {api / refresh[1]:.2f}x")
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    print("slowest tasks of a 1-host status.yml (profile_tasks):")
    for line in slowest_tasks(profile.stdout, 10):
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
