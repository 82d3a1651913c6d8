#!/usr/bin/env python3
"""Benchmark: hf_fetch's download of one large model file against curl, and the cost of a resume.

Starts the hub stand-in (tests/standins/hfhub/hub_standin.py, its own process) serving one
repository with one LFS file of ``--size`` bytes (2 GB by default) made on the fly (never written
to disk by the server), then measures in the same run, each into a fresh folder of one
filesystem, the folder removed after each:

(a) ``curl -L`` of the file (resolve, then the CDN redirect), written to disk: the baseline;
(b) hf_fetch's download (module_utils ``hf_hub``: resolve, disk check, download with the
    sha256 computed as the bytes arrive, fsync, rename, snapshot link, tree listing, ref);
(c) ``huggingface_hub.hf_hub_download`` of the same file, for reference;
(d) a resume: a second stand-in drops the connection at 50% once; hf_fetch with ``retries=0``
    fails there, leaving ``<blob>.incomplete``; the second run (resume) is timed, and the bytes
    served by the stand-in over both runs are compared with the file's size.

Each measurement runs ``--repeat`` times (default 2); the best time is kept. Prints figures
and ratios; asserts nothing. Usage:
    .venv/bin/python bench/model_fetch_bench.py [--size 2000000000] [--repeat 2] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "collections"))
sys.path.insert(0, str(REPO))

from ansible_collections.myia.genai_stack.plugins.module_utils import hf_hub

STANDIN = REPO / "tests" / "standins" / "hfhub" / "hub_standin.py"
REPO_ID = "Bench/Big"
FILE = "model.safetensors"


class Standin:
    def __init__(self, spec: Path, *extra: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(STANDIN), "--port", "0", "--repos", str(spec), *extra],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        assert line.startswith("listening on "), line
        self.endpoint = line.removeprefix("listening on ")

    def stats(self) -> dict:
        with urllib.request.urlopen(f"{self.endpoint}/standin/stats", timeout=30) as answer:
            return json.loads(answer.read())

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def gbps(size: int, seconds: float) -> str:
    return f"{size / seconds / 1e9:.2f} GB/s"


def best(times: list[float]) -> float:
    return min(times)


def run_curl(endpoint: str, folder: Path) -> float:
    out = folder / "curl.bin"
    started = time.perf_counter()
    subprocess.run(
        ["curl", "-sSfL", "-o", str(out), f"{endpoint}/{REPO_ID}/resolve/main/{FILE}"], check=True
    )
    return time.perf_counter() - started


def run_hf_fetch(endpoint: str, cache: Path, retries: int = 3) -> tuple[float, int]:
    started = time.perf_counter()
    hub = hf_hub.Hub(endpoint, timeout=60)
    snapshot = hub.resolve(REPO_ID, "main")
    store = hf_hub.Cache(str(cache), REPO_ID)
    entries = hf_hub.plan(store, snapshot)
    hf_hub.check_disk(str(cache), hf_hub.bytes_missing(entries), hf_hub.MIB * 1024)
    fetched, _ = hf_hub.fetch(hub, store, snapshot, entries, retries=retries, retry_delay=0)
    return time.perf_counter() - started, fetched


def run_hf_hub_download(endpoint: str, cache: Path) -> float:
    script = (
        "import sys, time; from huggingface_hub import hf_hub_download; t = time.perf_counter();"
        f"hf_hub_download({REPO_ID!r}, {FILE!r}, cache_dir=sys.argv[1], endpoint=sys.argv[2]);"
        "print(time.perf_counter() - t)"
    )
    env = {**os.environ, "HF_HUB_DISABLE_PROGRESS_BARS": "1", "HF_HUB_DISABLE_TELEMETRY": "1"}
    out = subprocess.run([sys.executable, "-c", script, str(cache), endpoint], env=env,
                         capture_output=True, text=True, check=True)  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=2_000_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument(
        "--dir", help="where the files go (default: /dev/shm when it has room, else the temp dir)"
    )
    parser.add_argument("--hash-thread", choices=["auto", "on", "off"], default="auto",
                        help="hf_fetch's HASH_THREAD (auto: a thread with 4 CPUs or more)")  # fmt: skip
    args = parser.parse_args()
    hf_hub.HASH_THREAD = {"auto": None, "on": True, "off": False}[args.hash_thread]
    size = args.size
    folder = args.dir
    if folder is None:
        shm = shutil.disk_usage("/dev/shm").free if os.path.isdir("/dev/shm") else 0
        folder = "/dev/shm" if shm > 2.5 * size else tempfile.gettempdir()
    work = Path(tempfile.mkdtemp(prefix="model-fetch-bench-", dir=folder))
    spec = work / "repos.json"
    spec.write_text(json.dumps({REPO_ID: {"commits": [{"files": {
        "config.json": "{}", FILE: {"size": size, "seed": 3}}}]}}))  # fmt: skip
    print(f"file: {size} bytes ({hf_hub.human(size)}), generated on the fly by the stand-in; "
          f"written to {work}; {len(os.sched_getaffinity(0))} CPUs, hf_fetch hashes "
          f"{'in a thread' if hf_hub._hash_thread() else 'inline'}")  # fmt: skip
    block = os.urandom(hf_hub.CHUNK)
    digest, started = hashlib.sha256(), time.perf_counter()
    for _ in range(256):
        digest.update(block)
    sha = 256 * hf_hub.CHUNK / (time.perf_counter() - started)
    print(
        f"sha256 alone on this CPU: {sha / 1e9:.2f} GB/s (hf_fetch verifies every byte, curl none)"
    )

    standin = Standin(spec)
    try:
        hf_hub.Hub(standin.endpoint).resolve(REPO_ID, "main")
        results: dict[str, list[float]] = {"curl": [], "hf_fetch": [], "hf_hub_download": []}
        for _ in range(args.repeat):
            for name in results:
                folder = work / name
                folder.mkdir()
                try:
                    if name == "curl":
                        results[name].append(run_curl(standin.endpoint, folder))
                    elif name == "hf_fetch":
                        seconds, fetched = run_hf_fetch(standin.endpoint, folder)
                        assert fetched == size + 2, fetched  # the file and config.json
                        results[name].append(seconds)
                    else:
                        results[name].append(run_hf_hub_download(standin.endpoint, folder))
                finally:
                    shutil.rmtree(folder)
    finally:
        standin.stop()

    curl = best(results["curl"])
    print(f"\n(a) curl -L             {curl:7.2f} s  {gbps(size, curl)}  "
          f"(runs: {', '.join(f'{t:.2f}' for t in results['curl'])})")  # fmt: skip
    for name in ("hf_fetch", "hf_hub_download"):
        t = best(results[name])
        print(f"({'b' if name == 'hf_fetch' else 'c'}) {name:<19} {t:7.2f} s  {gbps(size, t)}  "
              f"throughput {curl / t:.2f}x curl's  "
              f"(runs: {', '.join(f'{x:.2f}' for x in results[name])})")  # fmt: skip

    # (d) a drop at 50%, then the resume
    half = size // 2
    dropping = Standin(spec, "--drop-after", str(half))
    try:
        hf_hub.Hub(dropping.endpoint).resolve(REPO_ID, "main")
        cache = work / "resume"
        first = time.perf_counter()
        try:
            run_hf_fetch(dropping.endpoint, cache, retries=0)
            raise SystemExit("the stand-in did not drop the connection")
        except hf_hub.TransferError as exc:
            first = time.perf_counter() - first
            print(f"\n(d) drop at 50%: the first run stopped after {first:.2f} s ({exc})")
        resumed, fetched = run_hf_fetch(dropping.endpoint, cache)
        served = dropping.stats()["bytes_served"]
        shutil.rmtree(cache)
    finally:
        dropping.stop()
    rest = size - half
    print(f"    resume: {resumed:.2f} s, fetched {fetched} bytes (the rest of the file: {rest}); "
          f"the stand-in served {served} bytes over both runs for a {size + 2}-byte "
          f"repository ({served / (size + 2):.3f}x)")  # fmt: skip
    print(f"    resume vs. a full fetch: {resumed / best(results['hf_fetch']):.2f}x the time "
          f"(rehashes the {hf_hub.human(half)} already there, then fetches the rest); "
          f"drop + resume: {(first + resumed) / best(results['hf_fetch']):.2f}x an "
          "uninterrupted fetch")  # fmt: skip
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
