"""End to end: usage that came from real requests, on the panel's Usage page in headless Chromium.

The real gateway program (roles/openai_gateway/files/genai_gateway) runs in front of the vLLM
stand-in (tests/standins/vllm), both as processes; two clients make requests with the ``openai``
SDK (plain and streamed); SIGTERM stops the gateway, which writes its usage file. The panel,
served by uvicorn on an inventory whose local GPU host has ``openai_gateway_root_dir`` at the
directory holding ``usage/usage.json``, reads that file through Ansible (usage.yml): the Stack
page gives the gateway its line, whose link leads to the Usage page, which must show each client
and model with the exact counts the gateway wrote, the requests being those made. Screenshot:
``$GENAI_CACHE/artifacts/panel-e2e-usage.png`` (and the gateway's line on the Stack page,
panel-e2e-usage-gateway-line.png).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from genai_stack.panel.auth import set_password

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("GENAI_CACHE") or ROOT / ".cache") / "artifacts"
PASSWORD = "e2e usage password not for production"
HOST = "gw-host"
MODEL = "qwen3-micro"
BACKEND_KEY = "backend-key-e2e"
#: client -> its key (the gateway holds only their sha256)
KEYS = {"genai": "sk-genai-e2e-key", "notebooks": "sk-notebooks-e2e-key"}
#: requests made per client: (streamed or not) each
MADE = {"genai": (False, False, True), "notebooks": (False,)}
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except urllib.error.HTTPError:
            return  # it answers
        except (urllib.error.URLError, OSError):
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not answer:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def start(cmd: list[str], log: Path, env: dict[str, str], url: str) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, **env}, stdout=out,
                                stderr=subprocess.STDOUT)  # fmt: skip
    wait_for(url, proc, log)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return int(proc.returncode)


def gateway_config(tmp: Path, port: int, backend_port: int) -> Path:
    config = {
        "listen": {"host": "127.0.0.1", "port": port},
        "backends": [{"name": MODEL, "url": f"http://127.0.0.1:{backend_port}", "models": [MODEL],
                      "api_key_env": "GATEWAY_BACKEND_KEY"}],
        "clients": [{"name": name, "key_sha256": hashlib.sha256(key.encode()).hexdigest(),
                     "models": None, "requests_per_minute": None, "tokens_per_minute": None}
                    for name, key in KEYS.items()],
        "usage_file": str(tmp / "gateway" / "usage" / "usage.json"),
        "usage_flush_seconds": 1,
    }  # fmt: skip
    path = tmp / "gateway-config.json"
    path.write_text(json.dumps(config))
    return path


def make_requests(base_url: str) -> None:
    """Real requests through the gateway, as its clients make them (the openai SDK)."""
    import openai

    for client, streamed in MADE.items():
        api = openai.OpenAI(base_url=base_url, api_key=KEYS[client], max_retries=0)
        for n, stream in enumerate(streamed):
            messages = [{"role": "user", "content": f"Say hello to {client}, number {n}."}]
            if stream:
                chunks = api.chat.completions.create(model=MODEL, messages=messages,  # type: ignore[call-overload]
                                                     max_tokens=16, stream=True)  # fmt: skip
                assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
            else:
                answer = api.chat.completions.create(model=MODEL, messages=messages,  # type: ignore[call-overload]
                                                     max_tokens=16)  # fmt: skip
                assert answer.usage is not None and answer.usage.completion_tokens > 0


@pytest.fixture(scope="module")
def usage_made(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """The directory holding usage/usage.json, and that file, written by the gateway stopped
    after real requests."""
    tmp = tmp_path_factory.mktemp("gateway")
    backend_port, port = free_port(), free_port()
    standin = start(
        [sys.executable, "-m", "vllm.entrypoints.openai.api_server", "--host", "127.0.0.1",
         "--port", str(backend_port), "--model", "Qwen/Qwen3-0.6B", "--served-model-name", MODEL,
         "--api-key", BACKEND_KEY],
        tmp / "vllm.log",
        {"PYTHONPATH": str(ROOT / "tests" / "standins" / "vllm"), "PYTHONDONTWRITEBYTECODE": "1"},
        f"http://127.0.0.1:{backend_port}/version",
    )  # fmt: skip
    try:
        gateway = start(
            [sys.executable, "-m", "genai_gateway"],
            tmp / "gateway.log",
            {"PYTHONPATH": str(ROOT / "roles" / "openai_gateway" / "files"),
             "GATEWAY_CONFIG": str(gateway_config(tmp, port, backend_port)),
             "GATEWAY_BACKEND_KEY": BACKEND_KEY, "PYTHONDONTWRITEBYTECODE": "1"},
            f"http://127.0.0.1:{port}/health",
        )  # fmt: skip
        try:
            make_requests(f"http://127.0.0.1:{port}/v1")
        finally:
            assert stop(gateway) == 0, (tmp / "gateway.log").read_text()[-3000:]
    finally:
        stop(standin)
    written = json.loads((tmp / "gateway" / "usage" / "usage.json").read_text())
    return tmp / "gateway", written


@pytest.fixture(scope="module")
def panel(tmp_path_factory: pytest.TempPathFactory, usage_made: tuple[Path, Any]) -> Iterator[str]:
    """The panel on an inventory whose one GPU host (local) has the gateway's usage directory."""
    tmp = tmp_path_factory.mktemp("panel")
    host = {
        "ansible_connection": "local",
        "ansible_python_interpreter": sys.executable,
        "genai_root_dir": str(tmp / "genai"),
        "openai_gateway_root_dir": str(usage_made[0]),
        "openai_gateway_port": free_port(),  # stopped: nothing answers its /health
        "genai_gpus": [{"index": 0, "name": "Test GPU", "memory_total_mib": 8192}],
        "vllm_qwen3_models": [{"name": MODEL, "model": "Qwen/Qwen3-0.6B", "port": free_port(),
                               "gpus": [0], "gpu_memory_utilization": 0.5}],
        "comfyui_qwen_auth_port": free_port(),
        "forge_turbo_instances": [],
    }  # fmt: skip
    inventory = tmp / "hosts.yml"
    inventory.write_text(
        yaml.safe_dump({"all": {"children": {"gpu_hosts": {"hosts": {HOST: host}}}}})
    )
    secrets = tmp / "secrets"
    set_password(secrets / "admin.bcrypt", "admin", PASSWORD, rounds=4)
    port = free_port()
    log = tmp / "panel.log"
    proc = start(
        [sys.executable, "-m", "genai_stack", "--project", str(ROOT), "--state-dir",
         str(tmp / "state"), "--inventory", str(inventory), "panel", "--port", str(port),
         "--secrets-dir", str(secrets)],
        log, {}, f"http://127.0.0.1:{port}/login",
    )  # fmt: skip
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        stop(proc)


def expected(
    written: dict[str, Any],
) -> tuple[dict[str, dict[str, int]], dict[str, dict[str, int]]]:
    """client -> the counts of MODEL as the gateway wrote them: over its days (one, unless the
    requests crossed midnight UTC), and on the last day."""
    days = written["days"]
    totals: dict[str, dict[str, int]] = {}
    for clients in days.values():
        for client, models in clients.items():
            mine = totals.setdefault(client, dict.fromkeys(models[MODEL], 0))
            for name, value in models[MODEL].items():
                mine[name] += value
    last = days[max(days)]
    return totals, {client: models[MODEL] for client, models in last.items()}


def test_the_usage_page_shows_the_counts_of_real_requests(
    panel: str, usage_made: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    from playwright.sync_api import expect, sync_playwright

    wrote, today = expected(usage_made[1])
    assert sorted(wrote) == sorted(MADE)
    for client, streamed in MADE.items():
        assert wrote[client]["requests"] == len(streamed) and wrote[client]["errors"] == 0
        assert wrote[client]["prompt_tokens"] > 0 and wrote[client]["completion_tokens"] > 0
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=str(CHROMIUM), headless=True,
            args=CHROMIUM_ARGS, viewport={"width": 1280, "height": 1000},
        )  # fmt: skip
        try:
            page = context.new_page()
            page.set_default_timeout(60_000)
            page.goto(panel + "/")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            expect(page).to_have_url(panel + "/")
            # the Stack page: the gateway's line, its link to the Usage page
            row = page.locator(f'tr[data-gateway="{HOST}/openai-gateway"]')
            expect(row).to_contain_text("OpenAI gateway")
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            row.screenshot(path=str(ARTIFACTS / "panel-e2e-usage-gateway-line.png"))
            row.get_by_role("link", name="usage per client and model").click()
            expect(page).to_have_url(panel + "/usage")
            _check_usage_page(page, wrote, today, expect)
            page.screenshot(path=str(ARTIFACTS / "panel-e2e-usage.png"), full_page=True)
        finally:
            context.close()


def _check_usage_page(
    page: Any, wrote: dict[str, dict[str, int]], today: dict[str, dict[str, int]], expect: Any
) -> None:
    expect(page.locator(f'[data-usage-host="{HOST}"]')).to_have_attribute("data-state", "ok")
    for client, counts in wrote.items():
        row = page.locator(f'#usage-totals tr[data-client="{client}"][data-model="{MODEL}"]')
        expect(row.locator("td.requests")).to_have_text(str(len(MADE[client])))
        expect(row.locator("td.prompt-tokens")).to_have_text(str(counts["prompt_tokens"]))
        expect(row.locator("td.completion-tokens")).to_have_text(str(counts["completion_tokens"]))
        expect(row.locator("td.errors")).to_have_text("0")
        # its chart: the last day's bar labelled with that day's tokens and requests
        last = today[client]
        bar = page.locator(f'svg.usage-chart[data-client="{client}"] g.bar').last
        expect(bar.locator("text.tokens")).to_have_text(
            str(last["prompt_tokens"] + last["completion_tokens"])
        )
        expect(bar.locator("text.requests")).to_have_text(f"{last['requests']} req")
        expect(bar).to_have_attribute("data-prompt-tokens", str(last["prompt_tokens"]))
    total = sum(len(streamed) for streamed in MADE.values())
    expect(page.locator("#usage-totals tr.total td.requests")).to_have_text(str(total))
    expect(page.locator("#usage-window")).to_contain_text(re.compile(r"\(7 days, UTC\)"))
