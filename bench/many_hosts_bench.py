"""site.yml on ten SSH hosts against one host, in the same run: a fresh converge and a no-change
re-run, with the ratios, the forks and the strategy.

Eleven fresh Debian 12 hosts (tests/integration/ssh_hosts.py: sshd on 127.0.0.1:2320-2330,
services from port 45000, roots /opt/genai-benchNN, sharing this machine's dockerd), each
deploying the light stack of the many-hosts test bed (one vLLM model and ComfyUI, stand-ins). One
host converges alone, then the ten others together in one call; then the same re-run with
nothing to change. Target of issue 15: ten hosts at most 3x one host. Prints the figures and the
slowest tasks of the ten-host converge (profile_tasks); no assertion on time. Every container
and root is removed at the end.
Usage: .venv/bin/python bench/many_hosts_bench.py [--hosts 10]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT / "bench"))

from site_rerun_bench import profiled, slowest_tasks
from ssh_hosts import BIN, Fleet, recaps, run


def setting(name: str) -> str:
    """An ansible setting as this project's ansible.cfg makes it (ansible-config dump)."""
    dump = run([str(BIN / "ansible-config"), "dump", "--format", "json"])
    found = next(x for x in json.loads(dump.stdout) if x.get("name") == name)
    return f"{found['value']} ({found['origin']})"


def timed_site(fleet: Fleet, limit: str) -> tuple[float, dict[str, dict[str, int]], str]:
    start = time.perf_counter()
    done = run([str(BIN / "ansible-playbook"), "-i", str(fleet.inventory), "site.yml",
                "-l", limit], env=profiled({}, 15))  # fmt: skip
    seconds = time.perf_counter() - start
    counts = recaps(done.stdout)
    if done.returncode != 0 or any(c["failed"] or c["unreachable"] for c in counts.values()):
        sys.exit(f"site.yml -l {limit} failed:\n{done.stdout[-4000:]}\n{done.stderr[-3000:]}")
    return seconds, counts, done.stdout


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hosts", type=int, default=10, help="hosts of the many-host runs")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="many-hosts-bench-") as tmp:
        fleet = Fleet("bench", args.hosts + 1, Path(tmp), 2320, 45000)
        one, many = fleet.names[0], ",".join(fleet.names[1:])
        n = args.hosts
        print(f"forks: {setting('DEFAULT_FORKS')}, strategy: {setting('DEFAULT_STRATEGY')}, "
              f"load average before: {os.getloadavg()[0]:.1f}", flush=True)  # fmt: skip
        try:
            fleet.start()
            one_fresh, _, one_profile = timed_site(fleet, one)
            many_fresh, _, profile = timed_site(fleet, many)
            print(f"site.yml converge (fresh hosts): 1 host {one_fresh:.1f} s, {n} hosts "
                  f"{many_fresh:.1f} s, ratio {many_fresh / one_fresh:.2f}x", flush=True)  # fmt: skip
            one_again, counts_one, _ = timed_site(fleet, one)
            many_again, counts_many, _ = timed_site(fleet, many)
        finally:
            fleet.stop()
    changed = sum(c["changed"] for c in {**counts_one, **counts_many}.values())
    print(f"site.yml no-change re-run:       1 host {one_again:.1f} s, {n} hosts "
          f"{many_again:.1f} s, ratio {many_again / one_again:.2f}x "
          f"(changed={changed} over the re-runs)")  # fmt: skip
    print(f"target: {n} hosts at most 3x one host; load average after: {os.getloadavg()[0]:.1f}")
    for hosts, stdout in ((1, one_profile), (n, profile)):
        print(f"slowest tasks of the {hosts}-host converge (profile_tasks):")
        for line in slowest_tasks(stdout, 15):
            print("  " + line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
