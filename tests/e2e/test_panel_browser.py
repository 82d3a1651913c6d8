"""End to end: the panel served by uvicorn, driven in headless Chromium by Playwright.

Logs in, reads the demo inventory's host with its services, their health (status.yml, ComfyUI
with its token), containers and GPUs against the plan, starts
``validate`` (``gpu_plan`` when the project has no validate.yml yet) on gpu-host, watches the
events arrive over SSE and the result appear, sees a second run on the busy host refused, and
saves screenshots under ``$GENAI_CACHE/artifacts`` (``.cache/artifacts``): panel-e2e-stack.png,
panel-e2e.png and panel-e2e-busy.png. Debian's chromium (/usr/bin/chromium) is the browser;
Playwright never downloads one.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from genai_stack.driver import Driver, RunRequest
from genai_stack.panel.auth import set_password
from genai_stack.project import Project

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[2]
INVENTORY = "inventories/demo/hosts.yml"
HOST = "gpu-host"
PASSWORD = "e2e password not for production"
ARTIFACTS = Path(os.environ.get("GENAI_CACHE") or ROOT / ".cache") / "artifacts"
#: as the machine notes say: without the background-networking flags Chromium keeps trying
#: to reach Google's hosts, which this machine's closed network refuses
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(), reason="Debian's chromium is not installed (apt-get install chromium)"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def panel(tmp_path: Path) -> Iterator[str]:
    """The panel's base URL; its state directory is tmp_path/state."""
    secrets = tmp_path / "secrets"
    set_password(secrets / "admin.bcrypt", "admin", PASSWORD)
    port = free_port()
    log = (tmp_path / "panel.log").open("w")
    proc = subprocess.Popen(
        [
            sys.executable, "-m", "genai_stack",
            "--project", str(ROOT),
            "--state-dir", str(tmp_path / "state"),
            "--inventory", INVENTORY,
            "panel", "--port", str(port), "--secrets-dir", str(secrets),
        ],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(base + "/login", timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    "the panel did not start:\n" + (tmp_path / "panel.log").read_text()
                )
            time.sleep(0.3)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


def answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code in (200, 401)
    except requests.RequestException:
        return False


@pytest.fixture(scope="module")
def demo() -> Iterator[None]:
    """The demo stack as `make demo` deploys it; taken down after the test unless it ran before."""
    was_up = answers("http://127.0.0.1:5000/health") and answers(
        "http://127.0.0.1:8188/system_stats"
    )
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "site.yml", "-l", HOST],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    yield
    for project in () if was_up else ("vllm", "comfyui", "forge"):
        subprocess.run(
            ["docker", "compose", "-p", project, "down", "--timeout", "2"],
            capture_output=True,
            check=False,
        )


def test_login_run_validate_and_watch_it(panel: str, demo: None, tmp_path: Path) -> None:
    from playwright.sync_api import expect, sync_playwright

    state_dir = tmp_path / "state"
    # read-only and certain to succeed on the demo inventory, whether or not the demo runs
    playbook = "stack_model"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1280, "height": 900},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(30_000)

            # login required, wrong password refused, right one accepted
            page.goto(panel + "/")
            expect(page).to_have_url(re.compile(r"/login\?next=/$"))
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", "wrong password")
            page.click("button[type=submit]")
            expect(page.locator(".alert.bad")).to_contain_text("Wrong user name or password")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", PASSWORD)
            page.click("button[type=submit]")
            expect(page).to_have_url(panel + "/")

            # the host, its services with live health, the GPU plan
            host = page.locator(f"#host-{HOST}")
            expect(host).to_be_visible()
            expect(host.locator("table.services")).to_contain_text("qwen3-medium")
            expect(host.locator("table.gpus")).to_contain_text("qwen3-micro")

            # read from the host by status.yml with validate.yml's credentials: ComfyUI-Login
            # refuses a request without its token (401), the panel sends it
            health = host.locator('[data-health$="/qwen3-micro"] .text')
            expect(health).to_have_text(re.compile(r"^up "), timeout=180_000)
            comfy = host.locator('[data-health$="/comfyui"] .text')
            expect(comfy).to_have_text(re.compile(r"^up · 2 checks"))
            expect(host.locator('[data-container$="/comfyui"]')).to_contain_text("running")
            expect(host.locator("[data-host-state] .text")).to_contain_text("read at")
            expect(host.locator('.gpu-now tr[data-gpu="0"]')).to_contain_text("comfyui")
            page.screenshot(path=str(ARTIFACTS / "panel-e2e-stack.png"), full_page=True)

            # a stopped service shows down, with the reason, once the hosts are read again
            subprocess.run(["docker", "stop", "-t", "2", "vllm-qwen3-micro"], check=True,
                           capture_output=True)  # fmt: skip
            try:
                page.click("#refresh-button")
                expect(health).to_have_text(
                    re.compile(r"^down · container vllm-qwen3-micro exited"), timeout=180_000
                )
                expect(host.locator('[data-container$="/qwen3-micro"]')).to_contain_text("exited")
                expect(comfy).to_have_text(re.compile(r"^up · 2 checks"))
            finally:
                subprocess.run(["docker", "start", "vllm-qwen3-micro"], check=False,
                               capture_output=True)  # fmt: skip

            # a run from elsewhere (the CLI, say) holds the host: the panel refuses with 409
            driver = Driver(Project(ROOT), state_dir)
            other = RunRequest(playbook, limit=HOST, user="ops-cli")
            with driver.lock_hosts([HOST], "20260101T000000-c0ffee", other):
                page.select_option("#playbook", playbook)
                page.fill("#limit", HOST)
                with page.expect_response(lambda r: r.url.endswith("/runs")) as posted:
                    page.click("#run-button")
                assert posted.value.status == 409
                refusal = page.locator("#run-error")
                expect(refusal).to_contain_text(
                    f"host {HOST} is busy: run 20260101T000000-c0ffee ({playbook}) started by ops-cli"
                )
                page.screenshot(path=str(ARTIFACTS / "panel-e2e-busy.png"), full_page=True)

            # the host is free again: start the run; the page follows it live
            page.select_option("#playbook", playbook)
            page.fill("#limit", HOST)
            page.click("#run-button")
            expect(page).to_have_url(re.compile(r"/runs/\d{8}T\d{6}-[0-9a-f]{6}$"))
            run_id = page.url.rsplit("/", 1)[1]
            run = page.locator("#run")
            assert run.get_attribute("data-status") == "running", "the run ended before its page"
            rendered = page.locator("#events li").count()

            # events arrive while it runs, then the result replaces the live status
            expect(page.locator("#events li.task_start").first).to_be_visible()
            status = page.locator("#run-status")
            expect(status).to_have_text("successful", timeout=300_000)
            events = page.locator("#events li")
            assert events.count() > rendered, "no event arrived through the live stream"
            expect(page.locator("#events li.stats")).to_have_count(1)
            expect(page.locator("#events li.stats")).to_contain_text(f"{HOST}: ok=")
            expect(page.locator("#result")).to_be_visible()
            expect(page.locator("#stats-body")).to_contain_text(HOST)
            expect(page.locator("#run-duration")).to_have_text(re.compile(r"\d"))
            expect(page.locator("#failed-tasks")).to_have_text("None.")
            page.screenshot(path=str(ARTIFACTS / "panel-e2e.png"), full_page=True)
            final = status.inner_text()

            # the history lists it with its status and duration
            page.goto(panel + "/runs")
            row = page.locator("table.runs tbody tr", has_text=run_id)
            expect(row).to_contain_text(playbook)
            expect(row.locator(".status")).to_have_text(final)
            expect(row.locator("td").last).to_have_text(re.compile(r"\d+(\.\d)? s|min"))
        finally:
            context.close()
