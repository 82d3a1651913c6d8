"""``python3 -m genai_gateway``: read the configuration (``GATEWAY_CONFIG``, default
/etc/genai-gateway/config.json; exit 2 naming the bad field), load the usage file, serve until
SIGTERM or SIGINT, writing the usage file every ``usage_flush_seconds`` when it changed; on the
signal, write it, let the requests in flight finish (up to 5 s), write it again and exit 0."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys

from aiohttp import web

from . import __version__
from .app import Gateway
from .config import DEFAULT_PATH, Config, ConfigError, load
from .usage import Usage, log, write_atomically

SHUTDOWN_SECONDS = 5.0


async def flush_every(usage: Usage, seconds: float, stop: asyncio.Event) -> None:
    """Write the usage file every ``seconds`` while it changed, until ``stop``."""
    while not stop.is_set():
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        if usage.dirty and not stop.is_set():
            data = usage.serialise()
            try:
                await asyncio.to_thread(write_atomically, usage.path, data)
            except OSError as exc:
                usage.dirty = True
                log(f"usage: cannot write {usage.path}: {exc}")


async def serve(config: Config) -> int:
    usage = Usage(config.usage_file)
    usage.load()
    gateway = Gateway(config, usage)
    runner = web.AppRunner(
        gateway.application(),
        access_log=None,
        handler_cancellation=True,  # a client that goes away cancels its backend request
        shutdown_timeout=SHUTDOWN_SECONDS,
    )
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, backlog=1024, reuse_address=True)
    try:
        await site.start()
    except OSError as exc:
        log(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}")
        await runner.cleanup()
        return 1
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    routes = ", ".join(f"{b.name} ({b.url}: {', '.join(b.models)})" for b in config.backends)
    log(
        f"{__version__} listening on http://{config.host}:{config.port}; backends: {routes}; "
        f"{len(config.clients)} clients; usage in {config.usage_file}"
    )
    flusher = asyncio.create_task(flush_every(usage, config.usage_flush_seconds, stop))
    await stop.wait()
    log("stopping: writing the usage, finishing the requests in flight")
    await flusher
    usage.flush()
    await runner.cleanup()
    usage.flush()
    log("stopped")
    return 0


def main() -> int:
    path = os.environ.get("GATEWAY_CONFIG", DEFAULT_PATH)
    try:
        config = load(path, os.environ)
    except ConfigError as exc:
        sys.stderr.write(f"genai-gateway: bad configuration: {exc}\n")
        return 2
    return asyncio.run(serve(config))


if __name__ == "__main__":
    sys.exit(main())
