"""How long a cancel takes: the driver's RunHandle.cancel() and Ctrl-C of `genai-stack run`.

Each cancels tests/unit/driver/playbooks/sleep.yml (this machine, local connection) one second
into its task that would wait two minutes. Measured, each the median of --runs:
  * the driver: from RunHandle.cancel() to the run's result (every process of the run stopped
    before it), and the processes of the run left after it (0 expected);
  * the CLI: from SIGINT to the exit of `genai-stack run` (rc 254, canceled).
Prints the figures; no assertion on time (tests/unit/driver's Ctrl-C test asserts the outcome
only, with a bound no load reaches).
Usage: .venv/bin/python bench/cancel_bench.py [--runs 3]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PLAYBOOKS = ROOT / "tests" / "unit" / "driver" / "playbooks"
SLEEP, HOSTS = PLAYBOOKS / "sleep.yml", PLAYBOOKS / "hosts.yml"
INTERPRETER = f"ansible_python_interpreter={sys.executable}"
TASK = "Wait a long time"

from genai_stack.driver import Driver, RunRequest, run_processes
from genai_stack.events import EventKind, RunEvent
from genai_stack.project import Project


def driver_cancel(state: Path) -> tuple[float, int, str]:
    """Seconds from cancel() to the result, the processes left then, and the run's status."""
    in_task = threading.Event()

    def on_event(event: RunEvent) -> None:
        if event.kind is EventKind.TASK_START and event.task == TASK:
            in_task.set()

    driver = Driver(Project(ROOT), state)
    request = RunRequest(str(SLEEP), inventory=str(HOSTS), extra_vars={
        "ansible_python_interpreter": sys.executable})  # fmt: skip
    handle = driver.start(request, on_event)
    in_task.wait()
    time.sleep(1)
    start = time.perf_counter()
    handle.cancel()
    result = handle.wait()
    seconds = time.perf_counter() - start
    assert result is not None
    return seconds, len(run_processes(handle.run_id)), result.status


def cli_cancel(state: Path) -> tuple[float, int]:
    """Seconds from SIGINT to the CLI's exit, and its exit code."""
    cmd = [sys.executable, "-m", "genai_stack", "--project", str(ROOT), "--state-dir", str(state),
           "-i", str(HOSTS), "--color", "never", "run", str(SLEEP), "-e", INTERPRETER]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    assert proc.stdout is not None
    for line in proc.stdout:
        if f"TASK {TASK}" in line:
            break
    time.sleep(1)
    start = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    proc.communicate()
    return time.perf_counter() - start, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    os.environ.setdefault("ANSIBLE_CONFIG", str(ROOT / "ansible.cfg"))
    # the driver's warnings say which processes a cancel left to it (ansible's own workers)
    logging.basicConfig(stream=sys.stdout, format="  driver: %(message)s")
    driver_s, cli_s = [], []
    with tempfile.TemporaryDirectory(prefix="cancel-bench-") as tmp:
        for i in range(args.runs):
            seconds, left, status = driver_cancel(Path(tmp, f"driver-{i}"))
            if status != "canceled" or left:
                print(f"driver run {i}: {status}, {left} process(es) left")
                return 1
            driver_s.append(seconds)
            seconds, rc = cli_cancel(Path(tmp, f"cli-{i}"))
            if rc != 254:
                print(f"CLI run {i}: exit code {rc}, not 254 (canceled)")
                return 1
            cli_s.append(seconds)
    for name, values in (("driver: cancel() -> result", driver_s),
                         ("CLI: Ctrl-C -> exit", cli_s)):  # fmt: skip
        print(
            f"{name}, median of {args.runs}: {statistics.median(values):.2f} s  "
            f"(runs: {', '.join(f'{x:.2f}' for x in values)}; max {max(values):.2f} s)"
        )
    print("processes of the run left after its result: 0 in every run")
    return 0


if __name__ == "__main__":
    sys.exit(main())
