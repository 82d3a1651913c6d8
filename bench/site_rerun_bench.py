"""No-change re-run of site.yml (vLLM part) on the demo host vs a bare `docker compose up -d` + curl.

Both apply the same desired state (the demo's vLLM project, already converged) and check the same
endpoints (/health and /v1/models with the key, per model). Run after `make demo`; prints the
figures and the ratio. No assertion on time: this measures, it does not gate.
Usage: .venv/bin/python bench/site_rerun_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
PROJECT = Path("/opt/genai-demo/vllm")
BIN = Path(sys.executable).parent


def timed(cmd: list[str], **kwargs: object) -> tuple[float, subprocess.CompletedProcess[str]]:
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)  # type: ignore[call-overload]
    return time.perf_counter() - start, done


def ports() -> list[str]:
    compose = yaml.safe_load((PROJECT / "compose.yaml").read_text())
    return [s["command"][s["command"].index("--port") + 1] for s in compose["services"].values()]


def bare_compose_and_curl(key_file: Path) -> tuple[float, bool]:
    start = time.perf_counter()
    up = subprocess.run(
        ["docker", "compose", "up", "-d"], cwd=PROJECT, capture_output=True, text=True, check=False
    )
    ok = up.returncode == 0
    for port in ports():
        for path, auth in (("/health", False), ("/v1/models", True)):
            cmd = ["curl", "-fsS", "-o", "/dev/null", "--retry", "5", "--retry-connrefused"]
            if auth:  # header from a file: the key stays off the command line
                cmd += ["-H", f"@{key_file}"]
            ok &= (
                subprocess.run([*cmd, f"http://127.0.0.1:{port}{path}"], check=False).returncode
                == 0
            )
    return time.perf_counter() - start, ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    # the vLLM part of site.yml (GPU plan, secret, vllm_qwen3), the state the bare run applies
    playbook = [str(BIN / "ansible-playbook"), "site.yml", "-l", "gpu-host", "--tags", "vllm"]

    first, done = timed(playbook, cwd=ROOT, env=env)
    if done.returncode != 0:
        print(done.stdout[-3000:], done.stderr[-2000:])
        return 1
    env_file = next(PROJECT.glob("*.env")).read_text().splitlines()
    key = next(x for x in env_file if x.startswith("VLLM_API_KEY=")).split("=", 1)[1]
    header = ROOT / ".cache" / "bench-auth-header"
    header.write_text(f"Authorization: Bearer {key}\n")
    header.chmod(0o600)

    site, bare = [], []
    for _ in range(args.runs):
        seconds, done = timed(playbook, cwd=ROOT, env=env)
        changed = [line for line in done.stdout.splitlines() if "changed=" in line]
        if done.returncode != 0 or "changed=0" not in changed[-1]:
            print("site.yml re-run was not a no-change run:", changed)
            return 1
        site.append(seconds)
        seconds, ok = bare_compose_and_curl(header)
        if not ok:
            print("bare compose + curl failed")
            return 1
        bare.append(seconds)
    header.unlink()

    s, b = statistics.median(site), statistics.median(bare)
    print(f"first site.yml run (converge check): {first:.2f} s")
    print(
        f"site.yml no-change re-run, median of {args.runs}: {s:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in site)})"
    )
    print(
        f"docker compose up -d + curl loop, median of {args.runs}: {b:.2f} s  (runs: {', '.join(f'{x:.2f}' for x in bare)})"
    )
    print(f"ratio site.yml / bare: {s / b:.1f}x  ({len(ports())} models)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
