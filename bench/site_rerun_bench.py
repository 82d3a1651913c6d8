"""No-change re-run of the full site.yml on the demo host vs a bare `docker compose up -d` + curl.

site.yml applies the whole stack (stack model and GPU plan, secret, nvidia_runtime, the three
compose projects, token sync and its proof); the bare equivalent runs `docker compose up -d` in
each of the demo's three projects and curls every endpoint validate.yml checks (its last report).
Run after `make demo`; prints the figures, the ratio and where site.yml spends its time
(profile_tasks). No assertion on time: this measures, it does not gate.
Usage: .venv/bin/python bench/site_rerun_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO_ROOT = Path("/opt/genai-demo")
PROJECTS = ["vllm", "comfyui", "forge"]
BIN = Path(sys.executable).parent
REPORT = ROOT / "reports" / "demo" / "validate-gpu-host.json"


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done


def urls() -> list[str]:
    return [e["url"] for e in json.loads(REPORT.read_text())["endpoints"]]


def bare_compose_and_curl(projects: list[str], targets: list[str]) -> tuple[float, bool]:
    start = time.perf_counter()
    ok = True
    for project in projects:
        up = subprocess.run(
            ["docker", "compose", "up", "-d"],
            cwd=DEMO_ROOT / project,
            capture_output=True,
            text=True,
            check=False,
        )
        ok &= up.returncode == 0
    for url in targets:  # any HTTP answer counts: this measures the cost, validate.yml judges
        done = subprocess.run(
            ["curl", "-sS", "-o", "/dev/null", "--retry", "5", "--retry-connrefused", url],
            check=False,
        )
        ok &= done.returncode == 0
    return time.perf_counter() - start, ok


def profiled(env: dict[str, str], top: int = 12) -> dict[str, str]:
    """``env`` with ansible.posix.profile_tasks on, listing the ``top`` slowest tasks."""
    return {**env, "ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks",
            "PROFILE_TASKS_TASK_OUTPUT_LIMIT": str(top)}  # fmt: skip


def slowest_tasks(stdout: str, top: int = 12) -> list[str]:
    """The profile_tasks lines at the end of a run made with :func:`profiled`."""
    lines = stdout.splitlines()
    start = next((i for i, x in enumerate(lines) if re.match(r"^=+\s*$", x)), len(lines))
    return [x for x in lines[start + 1 :] if x.strip()][:top]


def profile(playbook: list[str], env: dict[str, str], top: int = 12) -> list[str]:
    """The slowest tasks of one no-change run (ansible.posix.profile_tasks)."""
    _, done = timed(playbook, profiled(env, top))
    return slowest_tasks(done.stdout, top)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    playbook = [str(BIN / "ansible-playbook"), "site.yml", "-l", "gpu-host"]
    projects = PROJECTS

    first, done = timed(playbook, env)
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-2000:])
        return 1
    validate = [str(BIN / "ansible-playbook"), "playbooks/validate.yml", "-l", "gpu-host"]
    if timed(validate, env)[1].returncode != 0:
        print("validate.yml fails on the demo: run `make demo` first")
        return 1
    targets = urls()

    site, bare = [], []
    for _ in range(args.runs):
        seconds, done = timed(playbook, env)
        recap = [line for line in done.stdout.splitlines() if "changed=" in line]
        if done.returncode != 0 or "changed=0" not in recap[-1]:
            print("site.yml re-run was not a no-change run:", recap)
            return 1
        site.append(seconds)
        seconds, ok = bare_compose_and_curl(projects, targets)
        if not ok:
            print("bare compose + curl failed")
            return 1
        bare.append(seconds)

    s, b = statistics.median(site), statistics.median(bare)
    print(f"first site.yml run (converge check): {first:.2f} s")
    print(f"site.yml no-change re-run, median of {args.runs}: {s:.2f} s  "
          f"(runs: {', '.join(f'{x:.2f}' for x in site)})")  # fmt: skip
    print(f"docker compose up -d x{len(projects)} + curl x{len(targets)}, median of {args.runs}: "
          f"{b:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in bare)})")  # fmt: skip
    print(f"ratio site.yml / bare: {s / b:.1f}x")
    print("slowest tasks of a no-change run (profile_tasks):")
    for line in profile(playbook, env):
        print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
