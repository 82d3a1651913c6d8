#!/usr/bin/env python3
"""Benchmark: myia.genai_stack.endpoint_health vs an ansible.builtin.uri loop, and readiness lag.

Starts an HTTP server on 127.0.0.1 whose 20 endpoints each answer after 200 ms, then measures in
the same run:

(a) ``ansible-playbook`` running one endpoint_health task on the 20 endpoints;
(b) ``ansible-playbook`` running the same checks as an ``ansible.builtin.uri`` loop;
    (plus a baseline playbook with one ``ansible.builtin.ping`` task: process start-up and one
    module round trip, subtracted to give "net" figures);
(c) readiness latency: endpoints that start answering 200 at a known time T (503 before) are
    checked with deadline + exponential backoff (delay 0.5 s, factor 2, max_delay 2 s); the
    server records when the first 200 was served, and the lag after T is reported. Measured
    both with the engine in-process and through the module in ansible-playbook.

Prints figures only; it asserts nothing about timing. Usage:
    .venv/bin/python bench/endpoint_health_bench.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
COLLECTIONS = REPO / "collections"
sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.myia.genai_stack.plugins.module_utils.http_checks import (
    EndpointCheck,
    run_checks,
)

N_ENDPOINTS = 20
ANSWER_DELAY_S = 0.2
BACKOFF = {"delay": 0.5, "backoff_factor": 2.0, "max_delay": 2.0}


class BenchServer(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), BenchHandler)
        self.lock = threading.Lock()
        self.ready_at: dict[str, float] = {}  # key -> monotonic time it becomes ready
        self.first_ok: dict[str, float] = {}  # key -> monotonic time of its first 200
        self.polls: dict[str, int] = {}

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class BenchHandler(BaseHTTPRequestHandler):
    """/svc/<i>: 200 after 200 ms.  /ready/<key>: 503 until its ready time, then 200."""

    server: BenchServer

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        raw = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def do_GET(self) -> None:
        if self.path.startswith("/svc/"):
            time.sleep(ANSWER_DELAY_S)
            self._send(200, {"status": "ok"})
            return
        if self.path.startswith("/ready/"):
            key = self.path.split("/", 2)[2]
            now = time.monotonic()
            with self.server.lock:
                self.server.polls[key] = self.server.polls.get(key, 0) + 1
                ready = now >= self.server.ready_at.get(key, float("inf"))
                if ready:
                    self.server.first_ok.setdefault(key, now)
            self._send(200 if ready else 503, {"ready": ready})
            return
        self._send(404, {"detail": "Not Found"})


@contextmanager
def serving() -> Iterator[BenchServer]:
    server = BenchServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def playbook(name: str, tasks: list[dict[str, Any]]) -> str:
    # JSON is YAML: no templating surprises, no YAML dependency.
    play = [{"name": name, "hosts": "localhost", "gather_facts": False, "tasks": tasks}]
    return json.dumps(play, indent=2)


def write_playbooks(workdir: Path, urls: list[str], ready_urls: list[tuple[str, str]]) -> None:
    endpoints = [{"name": f"svc{i}", "url": u} for i, u in enumerate(urls)]
    (workdir / "baseline.yml").write_text(
        playbook("baseline", [{"name": "ping", "ansible.builtin.ping": {}}])
    )
    (workdir / "module.yml").write_text(
        playbook(
            "endpoint_health",
            [
                {
                    "name": "check 20 endpoints",
                    "myia.genai_stack.endpoint_health": {"endpoints": endpoints, "timeout": 10},
                    "register": "health",
                },
                {
                    "name": "report",
                    "ansible.builtin.debug": {
                        "msg": "BENCH_MODULE_ELAPSED={{ health.summary.elapsed_s }}"
                    },
                },
            ],
        )
    )
    (workdir / "uri.yml").write_text(
        playbook(
            "uri loop",
            [
                {
                    "name": "check 20 endpoints",
                    "ansible.builtin.uri": {"url": "{{ item }}", "status_code": 200, "timeout": 10},
                    "loop": urls,
                }
            ],
        )
    )
    (workdir / "ready.yml").write_text(
        playbook(
            "readiness",
            [
                {
                    "name": "wait for readiness",
                    "myia.genai_stack.endpoint_health": {
                        "endpoints": [{"name": n, "url": u} for n, u in ready_urls],
                        "deadline": 30,
                        "timeout": 5,
                        **BACKOFF,
                    },
                }
            ],
        )
    )


def ansible_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ANSIBLE_COLLECTIONS_PATH": str(COLLECTIONS),
            "ANSIBLE_LOCALHOST_WARNING": "False",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
            "ANSIBLE_RETRY_FILES_ENABLED": "False",
            "ANSIBLE_NOCOWS": "1",
            "ANSIBLE_FORCE_COLOR": "0",
        }
    )
    env.pop("ANSIBLE_CONFIG", None)
    return env


def ansible_playbook_bin() -> str:
    local = Path(sys.executable).parent / "ansible-playbook"
    if local.exists():
        return str(local)
    found = shutil.which("ansible-playbook")
    if not found:
        sys.exit("ansible-playbook not found (run with the project's .venv/bin/python)")
    return found


def run_playbook(workdir: Path, name: str) -> tuple[float, str]:
    cmd = [
        ansible_playbook_bin(),
        "-i",
        "localhost,",
        "-c",
        "local",
        "-e",
        f"ansible_python_interpreter={sys.executable}",
        name,
    ]
    started = time.monotonic()
    proc = subprocess.run(
        cmd, cwd=workdir, env=ansible_env(), capture_output=True, text=True, check=False
    )
    elapsed = time.monotonic() - started
    if proc.returncode != 0:
        print(proc.stdout[-3000:], proc.stderr[-3000:], sep="\n", file=sys.stderr)
        sys.exit(f"{name} failed with rc={proc.returncode}")
    return elapsed, proc.stdout


def fmt(values: list[float]) -> str:
    shown = ", ".join(f"{v:.2f}" for v in values)
    return f"median {statistics.median(values):6.2f} s   (runs: {shown})"


def bench_playbooks(server: BenchServer, repeat: int) -> None:
    urls = [f"{server.base}/svc/{i}" for i in range(N_ENDPOINTS)]
    with tempfile.TemporaryDirectory(prefix="endpoint-health-bench-") as tmp:
        workdir = Path(tmp)
        write_playbooks(workdir, urls, [])
        baseline: list[float] = []
        module: list[float] = []
        module_inner: list[float] = []
        uri: list[float] = []
        run_playbook(workdir, "baseline.yml")  # warm caches (pyc, plugin loader) once
        for _ in range(repeat):
            baseline.append(run_playbook(workdir, "baseline.yml")[0])
            elapsed, out = run_playbook(workdir, "module.yml")
            module.append(elapsed)
            match = re.search(r"BENCH_MODULE_ELAPSED=([0-9.]+)", out)
            if match:
                module_inner.append(float(match.group(1)))
            uri.append(run_playbook(workdir, "uri.yml")[0])

    b, m, u = (statistics.median(x) for x in (baseline, module, uri))
    print(
        f"== (a)/(b) {N_ENDPOINTS} endpoints x {ANSWER_DELAY_S * 1000:.0f} ms, {repeat} runs each"
    )
    print(f"baseline (ping only)        {fmt(baseline)}")
    print(f"(a) endpoint_health module  {fmt(module)}")
    if module_inner:
        print(f"    inside the module        {fmt(module_inner)}  (summary.elapsed_s)")
    print(f"(b) ansible.builtin.uri loop {fmt(uri)}")
    print(f"ratio uri loop / module, wall:              {u / m:5.2f}x")
    if m - b > 0:
        print(
            f"ratio uri loop / module, net of baseline:   {(u - b) / (m - b):5.2f}x"
            f"   (net: uri {u - b:.2f} s, module {m - b:.2f} s)"
        )


def bench_readiness_engine(server: BenchServer) -> None:
    targets = [1.0, 2.5, 4.0, 7.0, 10.0]
    start = time.monotonic()
    with server.lock:
        for t in targets:
            server.ready_at[f"engine-{t}"] = start + t
    checks = [
        EndpointCheck(
            name=f"T={t}", url=f"{server.base}/ready/engine-{t}", deadline=30, timeout=5, **BACKOFF
        )
        for t in targets
    ]
    results = run_checks(checks)
    print("== (c) readiness lag, engine in-process (delay 0.5 s, factor 2, max_delay 2 s)")
    for t, result in zip(targets, results, strict=True):
        seen = server.first_ok.get(f"engine-{t}")
        lag = f"{seen - (start + t):.2f} s" if seen is not None else "never"
        print(
            f"ready at T={t:5.1f} s  noticed {lag:>8} after T   "
            f"attempts={result.attempts:2d} ok={result.ok}"
        )


def bench_readiness_module(server: BenchServer) -> None:
    targets = [3.0, 5.0, 8.0]
    with tempfile.TemporaryDirectory(prefix="endpoint-health-ready-") as tmp:
        workdir = Path(tmp)
        ready = [(f"T={t}", f"{server.base}/ready/module-{t}") for t in targets]
        write_playbooks(workdir, [], ready)
        start = time.monotonic()
        with server.lock:
            for t in targets:
                server.ready_at[f"module-{t}"] = start + t
        elapsed, _ = run_playbook(workdir, "ready.yml")
    print("== (c) readiness lag through ansible-playbook (T counted from the playbook's launch)")
    for t in targets:
        seen = server.first_ok.get(f"module-{t}")
        lag = f"{seen - (start + t):.2f} s" if seen is not None else "never"
        polls = server.polls.get(f"module-{t}", 0)
        print(f"ready at T={t:5.1f} s  noticed {lag:>8} after T   polls={polls}")
    print(f"playbook finished {elapsed - max(targets):.2f} s after the last T")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="playbook runs per variant")
    args = parser.parse_args()
    with serving() as server:
        print(f"server {server.base}, python {sys.version.split()[0]}, {ansible_playbook_bin()}")
        bench_playbooks(server, max(1, args.repeat))
        print()
        bench_readiness_engine(server)
        print()
        bench_readiness_module(server)


if __name__ == "__main__":
    main()
