"""What the OpenAI gateway (roles/openai_gateway/files/genai_gateway) adds in front of vLLM,
against the vLLM stand-ins (tests/standins/vllm) on 127.0.0.1, beside HAProxy as the floor.

Three paths to the same stand-ins, in one run:
  * direct: the client calls the stand-in of the model, with the backend's key;
  * gateway: ``python -m genai_gateway`` (as in its image), one client key, routing on ``model``;
  * haproxy: Debian's haproxy (one thread, like the gateway's one event loop), config generated
    here: the client key checked as a sha256 in a map file, the route taken from the body's
    ``model`` (``option http-buffer-request``, ``req.body,json_query('$.model')``), the backend
    key set, ``option http-no-delay`` (without it streamed events wait ~100 ms), keep-alive to
    the backends (``http-reuse always``).
The client is aiohttp with keep-alive connections, in this process.

Measured:
  * added latency, p50 and p99, of non-streamed chat requests sent one at a time (the paths
    interleaved in rounds, so drift in the machine's load hits each alike), against direct;
  * added delay per streamed event: a stand-in writes an event every 2 ms
    (STANDIN_CHUNK_DELAY) and stamps each with the time it wrote it (STANDIN_EVENT_TIMES: an
    SSE comment line holding time.monotonic_ns(), one clock for every process here); the client
    takes each event's delay from that write to its arrival; through a path minus direct,
    median and p99 over all the events of all the streams;
  * throughput, closed loop, 16 and 64 concurrent clients, as a ratio to direct: non-streamed
    requests (the stand-in answers at once, so every path is CPU-bound: client, proxy and
    stand-in share this machine's cores, and "direct" is only the stand-in's own ceiling, a
    stdlib thread-per-connection server whose threads fight for the GIL: a proxy that funnels
    the clients into fewer kept-alive connections can beat it) and streamed ones (25 events
    5 ms apart, ~120 ms per request: a backend that takes time per request, as a model does,
    the fair case for a gateway in front of vLLM);
  * the gateway's memory (RSS now and its peak, from /proc) after all that;
  * the machine's load average before and after (the figures are only as quiet as it was).
Prints the figures next to the issue's goals; no assertion.
Usage: .venv/bin/python bench/gateway_bench.py [--requests 2000] [--streams 60] [--seconds 4]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
STANDIN = ROOT / "tests" / "standins" / "vllm"
GATEWAY = ROOT / "roles" / "openai_gateway" / "files"
CLIENT_KEY = "bench-client-key-5d1c2b3a49f8e7d6c5b4a3928170f6e5"
BACKEND_KEY = "bench-backend-key"
# the answering model, the one writing an event every 2 ms, and a slower one for streamed load
MODELS = {"qwen3-micro": 0.0, "qwen3-paced": 0.002, "qwen3-busy": 0.005}
CHAT = {"messages": [{"role": "user", "content": "How far is the moon from the earth?"}]}
PATHS = ("direct", "haproxy", "gateway")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_listening(port: int, process: subprocess.Popen[bytes], what: str) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{what} exited with {process.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"{what} is not listening on {port}")


def haproxy_config(port: int, backends: dict[str, int], keys_map: Path) -> str:
    lines = [
        "global",
        "    nbthread 1",
        "    maxconn 4096",
        "    log stderr format raw local0 err",
        "defaults",
        "    mode http",
        "    log global",
        "    option httplog",
        "    option log-separate-errors",
        "    timeout connect 5s",
        "    timeout client 600s",
        "    timeout server 600s",
        "    option http-buffer-request",
        "    option http-no-delay",
        "    http-reuse always",
        "frontend openai",
        f"    bind 127.0.0.1:{port}",
        "    http-request set-var(txn.key) req.hdr(Authorization),regsub(^Bearer\\ ,),"
        "sha2(256),hex,lower",
        f"    http-request return status 401 content-type application/json string "
        f'\'{{"error":{{"code":"invalid_api_key"}}}}\' unless {{ var(txn.key),map({keys_map}) -m found }}',
        "    http-request set-var(txn.model) req.body,json_query('$.model')",
    ]
    models = " ".join(backends)
    lines.append(
        "    http-request return status 404 content-type application/json string "
        f'\'{{"error":{{"code":"model_not_found"}}}}\' unless {{ var(txn.model) -m str {models} }}'
    )
    for model in backends:
        lines.append(f"    use_backend {model} if {{ var(txn.model) -m str {model} }}")
    for model, backend_port in backends.items():
        lines += [
            f"backend {model}",
            f'    http-request set-header Authorization "Bearer {BACKEND_KEY}"',
            f"    server {model} 127.0.0.1:{backend_port}",
        ]
    return "\n".join(lines) + "\n"


@dataclass
class Rig:
    """The stand-ins, the gateway and haproxy, as processes."""

    directory: Path
    processes: list[subprocess.Popen[bytes]]
    backends: dict[str, int]
    gateway_port: int
    haproxy_port: int
    gateway_pid: int

    def url(self, path: str, model: str) -> str:
        port = {"direct": self.backends[model], "gateway": self.gateway_port,
                "haproxy": self.haproxy_port}[path]  # fmt: skip
        return f"http://127.0.0.1:{port}/v1/chat/completions"

    @staticmethod
    def key(path: str) -> str:
        return BACKEND_KEY if path == "direct" else CLIENT_KEY

    def stop(self) -> None:
        for process in reversed(self.processes):
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    process.kill()


def start_rig(directory: Path, haproxy: str) -> Rig:
    processes: list[subprocess.Popen[bytes]] = []
    backends: dict[str, int] = {}

    def spawn(command: list[str], env: dict[str, str], log: str) -> subprocess.Popen[bytes]:
        with (directory / log).open("wb") as out:
            process = subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)
        processes.append(process)
        return process

    try:
        for model, delay in MODELS.items():
            port = free_port()
            env = {**os.environ, "PYTHONPATH": str(STANDIN), "STANDIN_CHUNK_DELAY": str(delay),
                   "STANDIN_EVENT_TIMES": "1"}  # fmt: skip
            process = spawn(
                [
                    sys.executable,
                    "-m",
                    "vllm.entrypoints.cli.main",
                    "serve",
                    "Qwen/Qwen3-0.6B",
                    "--served-model-name",
                    model,
                    "--api-key",
                    BACKEND_KEY,
                    "--reasoning-parser",
                    "qwen3",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                env,
                f"standin-{model}.log",
            )
            backends[model] = port
            wait_listening(port, process, f"the stand-in {model}")

        gateway_port = free_port()
        config = {
            "listen": {"host": "127.0.0.1", "port": gateway_port},
            "backends": [
                {
                    "name": m,
                    "url": f"http://127.0.0.1:{p}",
                    "models": [m],
                    "api_key_env": "BENCH_BACKEND_KEY",
                }
                for m, p in backends.items()
            ],
            "clients": [
                {
                    "name": "bench",
                    "key_sha256": hashlib.sha256(CLIENT_KEY.encode()).hexdigest(),
                    "models": None,
                    "requests_per_minute": None,
                    "tokens_per_minute": None,
                }
            ],
            "usage_file": str(directory / "usage.json"),
            "usage_flush_seconds": 5,
        }
        (directory / "gateway.json").write_text(json.dumps(config))
        env = {
            **os.environ,
            "PYTHONPATH": str(GATEWAY),
            "BENCH_BACKEND_KEY": BACKEND_KEY,
            "GATEWAY_CONFIG": str(directory / "gateway.json"),
            "PYTHONDONTWRITEBYTECODE": "1",  # no __pycache__ in files/, the image's context
        }
        gateway = spawn([sys.executable, "-m", "genai_gateway"], env, "gateway.log")
        wait_listening(gateway_port, gateway, "the gateway")

        haproxy_port = free_port()
        keys_map = directory / "keys.map"
        keys_map.write_text(f"{hashlib.sha256(CLIENT_KEY.encode()).hexdigest()} bench\n")
        (directory / "haproxy.cfg").write_text(haproxy_config(haproxy_port, backends, keys_map))
        check = subprocess.run([haproxy, "-c", "-f", str(directory / "haproxy.cfg")],
                               capture_output=True, text=True)  # fmt: skip
        if check.returncode != 0:
            raise SystemExit(f"haproxy refused its configuration:\n{check.stdout}{check.stderr}")
        proxy = spawn([haproxy, "-db", "-f", str(directory / "haproxy.cfg")], dict(os.environ),
                      "haproxy.log")  # fmt: skip
        wait_listening(haproxy_port, proxy, "haproxy")
    except BaseException:
        for process in processes:
            process.kill()
        raise
    return Rig(directory, processes, backends, gateway_port, haproxy_port, gateway.pid)


# ---- measurements -----------------------------------------------------------------------------
def body(model: str, stream: bool = False) -> bytes:
    data: dict[str, object] = {"model": model, **CHAT}
    if stream:
        data["stream"] = True
    else:
        data["chat_template_kwargs"] = {"enable_thinking": False}
    return json.dumps(data).encode()


def headers(path: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {Rig.key(path)}", "Content-Type": "application/json"}


async def check_paths(rig: Rig) -> None:
    async with aiohttp.ClientSession() as session:
        for path in PATHS:
            for model in MODELS:
                async with session.post(rig.url(path, model), data=body(model),
                                        headers=headers(path)) as answer:  # fmt: skip
                    text = await answer.text()
                    if answer.status != 200 or '"chat.completion"' not in text:
                        raise SystemExit(f"{path} {model}: {answer.status} {text[:200]}")


async def latencies(rig: Rig, requests: int, rounds: int = 10) -> dict[str, list[float]]:
    """Milliseconds per non-streamed request, one at a time, the paths taking turns."""
    result: dict[str, list[float]] = {path: [] for path in PATHS}
    payload = body("qwen3-micro")
    sessions = {path: aiohttp.ClientSession() for path in PATHS}
    try:
        for _ in range(rounds):
            for path in PATHS:
                session, url, head = sessions[path], rig.url(path, "qwen3-micro"), headers(path)
                times = result[path]
                for _ in range(max(1, requests // rounds)):
                    start = time.perf_counter()
                    async with session.post(url, data=payload, headers=head) as answer:
                        await answer.read()
                    times.append((time.perf_counter() - start) * 1000)
    finally:
        for session in sessions.values():
            await session.close()
    return result


async def event_delays(session: aiohttp.ClientSession, url: str, path: str) -> list[float]:
    """Milliseconds from the backend's write of each event of a stream to its arrival here."""
    delays: list[float] = []
    async with session.post(url, data=body("qwen3-paced", stream=True),
                            headers=headers(path)) as answer:  # fmt: skip
        async for line in answer.content:
            if line.startswith(b": sent "):
                delays.append((time.monotonic_ns() - int(line[7:])) / 1e6)
    return delays


async def stream_delays(rig: Rig, streams: int) -> dict[str, list[float]]:
    result: dict[str, list[float]] = {path: [] for path in PATHS}
    sessions = {path: aiohttp.ClientSession() for path in PATHS}
    try:
        for _ in range(streams):
            for path in PATHS:
                url = rig.url(path, "qwen3-paced")
                result[path] += await event_delays(sessions[path], url, path)
    finally:
        for session in sessions.values():
            await session.close()
    return result


async def throughput(rig: Rig, path: str, concurrency: int, seconds: float, stream: bool) -> float:
    """Requests per second completed by ``concurrency`` clients in a closed loop."""
    model = "qwen3-busy" if stream else "qwen3-micro"
    url, payload, head = rig.url(path, model), body(model, stream), headers(path)
    done = 0
    measuring = False
    stop_at = 0.0
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < stop_at:
                async with session.post(url, data=payload, headers=head) as answer:
                    await answer.read()
                    if answer.status != 200:
                        raise SystemExit(f"{path}: {answer.status}")
                if measuring:
                    done += 1

        stop_at = time.monotonic() + seconds + 0.5
        tasks = [asyncio.create_task(worker()) for _ in range(concurrency)]
        await asyncio.sleep(0.5)  # warm-up: connections opened, pools filled
        measuring, started = True, time.monotonic()
        await asyncio.gather(*tasks)
        elapsed = time.monotonic() - started
    return done / elapsed


def memory(pid: int) -> tuple[float, float]:
    """RSS now and its peak, in MB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        fields[name] = value.split()
    return int(fields["VmRSS"][0]) / 1024, int(fields["VmHWM"][0]) / 1024


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


async def measure(rig: Rig, args: argparse.Namespace, say: Callable[[str], None]) -> None:
    await check_paths(rig)
    say(f"non-streamed chat, {args.requests} requests per path one at a time (keep-alive):")
    times = await latencies(rig, args.requests)
    p50 = {path: statistics.median(times[path]) for path in PATHS}
    p99 = {path: percentile(times[path], 0.99) for path in PATHS}
    for path in PATHS:
        extra = "" if path == "direct" else (
            f"  added: p50 {p50[path] - p50['direct']:+.3f} ms, p99 {p99[path] - p99['direct']:+.3f} ms"
        )  # fmt: skip
        say(f"  {path:8} p50 {p50[path]:.3f} ms  p99 {p99[path]:.3f} ms{extra}")
    gap = (p50["gateway"] - p50["direct"]) - (p50["haproxy"] - p50["direct"])
    say(
        f"  goal: the gateway's added p50 within 1 ms of HAProxy's: {gap:+.3f} ms -> {verdict(gap <= 1)}"
    )

    say(f"streamed chat, {args.streams} streams per path, the backend writing an event every 2 ms:")
    delays = await stream_delays(rig, args.streams)
    median = {path: statistics.median(delays[path]) for path in PATHS}
    tail = {path: percentile(delays[path], 0.99) for path in PATHS}
    for path in PATHS:
        extra = "" if path == "direct" else (
            f"  added: median {median[path] - median['direct']:+.3f} ms,"
            f" p99 {tail[path] - tail['direct']:+.3f} ms"
        )  # fmt: skip
        say(f"  {path:8} {len(delays[path])} events, write to arrival: median "
            f"{median[path]:.3f} ms  p99 {tail[path]:.3f} ms{extra}")  # fmt: skip
    added = median["gateway"] - median["direct"]
    say(f"  goal: delay added per event < 1 ms: {added:+.3f} ms -> {verdict(added < 1)}")

    say(f"throughput, closed loop, {args.seconds:g} s per point (requests/s; ratio to direct):")
    for stream in (False, True):
        kind = ("streamed, 25 events 5 ms apart (the backend takes ~120 ms per request)"
                if stream else "non-streamed, answered at once (CPU-bound on every path)")  # fmt: skip
        say(f"  {kind}:")
        for concurrency in (16, 64):
            rates = {}
            for path in PATHS:
                rates[path] = await throughput(rig, path, concurrency, args.seconds, stream)
            say(
                f"    {concurrency:3} clients: direct {rates['direct']:7.0f}"
                f"  haproxy {rates['haproxy']:7.0f} ({rates['haproxy'] / rates['direct']:.2f}x)"
                f"  gateway {rates['gateway']:7.0f} ({rates['gateway'] / rates['direct']:.2f}x)"
                f"  goal >= 0.8x: {verdict(rates['gateway'] >= 0.8 * rates['direct'])}"
            )
    rss, peak = memory(rig.gateway_pid)
    say(
        f"gateway memory: RSS {rss:.1f} MB, peak {peak:.1f} MB; goal < 100 MB: {verdict(peak < 100)}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--streams", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        raise SystemExit("haproxy is missing: bash scripts/setup.sh installs Debian's")
    version = subprocess.run([haproxy, "-v"], capture_output=True, text=True).stdout.split("\n")[0]
    import aiohttp as client_library

    print(f"machine: {os.cpu_count()} CPUs, load average {load()} (1, 5, 15 min) before")
    print(f"paths: direct; {version.split(' - ')[0]}; genai_gateway (aiohttp "
          f"{client_library.__version__}, Python {sys.version.split()[0]})")  # fmt: skip
    print("backends: vLLM stand-ins (stdlib ThreadingHTTPServer, one process per model)")
    with tempfile.TemporaryDirectory(prefix="gateway-bench-") as temporary:
        rig = start_rig(Path(temporary), haproxy)
        try:
            asyncio.run(measure(rig, args, print))
        finally:
            rig.stop()
    print(f"load average after: {load()}")
    print(
        "note: client, proxies and stand-ins share this machine's CPUs. Non-streamed "
        "throughput measures each proxy's CPU per request against a stand-in that answers at "
        "once (the stand-in is the bottleneck of 'direct'); the streamed one is what a backend "
        "taking time per request, as a model does, sees."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
