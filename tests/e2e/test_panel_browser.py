"""End to end: the panel served by uvicorn, driven in headless Chromium by Playwright.

Logs in, reads the demo inventory's host with its services, their health (status.yml, ComfyUI
with its token), containers and GPU pictures (plan and use, the demo's fake nvidia-smi said
plainly), reloads the Stack page with /api/status never answering (the last known state and its
age are there from the first paint), sees a run on the busy host refused, starts ``status`` on
gpu-host and watches its progress (elapsed time, task now, tasks done per host), cancels it and
reads what was stopped, then runs it to its end with the event pane followed (the page never
scrolls). Without the demo: restore from the form, refused with no backup picked, then started
in check mode with a (fake) backup picked, its backup_from read back from ansible-runner's record
of the command. Screenshots go under ``$GENAI_CACHE/artifacts`` (``.cache/artifacts``):
panel-e2e-stack.png, panel-e2e-running.png, panel-e2e.png and panel-e2e-busy.png; with
GENAI_DOCS_SCREENSHOTS=1 the Stack page and the running job also as docs/panel-stack.png and
docs/panel-run.png (the README's). Debian's chromium (/usr/bin/chromium) is the browser;
Playwright never downloads one.
"""

from __future__ import annotations

import contextlib
import json
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
from typing import Any

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
DOCS = ROOT / "docs"
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
    # read-only (always check mode from the panel) and certain to succeed on the demo inventory;
    # stack_model is imported by every playbook and no longer offered on its own
    playbook = "status"
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
            _check_gpu_pictures(host, expect)
            screenshot(page, "panel-e2e-stack.png", "panel-stack.png")
            _check_first_paint(page, panel, expect)

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

            # a run's progress, live, and a cancel that says what it stopped
            _run_and_cancel(page, playbook, expect)

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
            _check_followed(page, expect)
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
            expect(row.locator("td.mode")).to_have_text("check")  # read-only: never an apply
            expect(row.locator(".status")).to_have_text(final)
            expect(row.locator("td").last).to_have_text(re.compile(r"\d+(\.\d)? s|min"))
        finally:
            context.close()


def screenshot(page: Any, name: str, doc: str | None = None) -> None:
    """Under ARTIFACTS; with GENAI_DOCS_SCREENSHOTS=1 also as docs/<doc> (the README's)."""
    page.screenshot(path=str(ARTIFACTS / name), full_page=True)
    if doc and os.environ.get("GENAI_DOCS_SCREENSHOTS") == "1":
        DOCS.mkdir(exist_ok=True)
        page.screenshot(path=str(DOCS / doc), full_page=True)


def _check_gpu_pictures(host: Any, expect: Any) -> None:
    """One table: per GPU, per service, the planned share and the memory used over it, in
    colours with a legend; on the demo the figures are the fake nvidia-smi's, said plainly."""
    expect(host.locator("table.gpus")).to_have_count(1)
    gpu0 = host.locator('table.gpus tr[data-gpu="0"]')
    expect(gpu0.locator('.use[data-service="comfyui"] .bar .plan')).to_be_visible()
    expect(host.locator(".gpu-source.fake")).to_contain_text("fake nvidia-smi")
    expect(gpu0.locator(".gpu-name")).to_contain_text("(fake)")
    expect(gpu0.locator(".gpu-memory")).to_contain_text("used of")
    # vLLM takes its share at start (the fake gives it its --gpu-memory-utilization)
    micro = host.locator('.use[data-service="qwen3-micro"]').first
    expect(micro.locator(".use-figures")).to_contain_text(re.compile(r"[1-9][\d.]* GiB used"))
    widths = micro.locator(".bar").evaluate(
        "(b) => [b.querySelector('.plan').offsetWidth, b.querySelector('.used').offsetWidth]"
    )
    assert widths[0] > 0 and widths[1] > 0, widths  # the share drawn, the use over it
    levels = host.locator("table.gpus .use").evaluate_all("(us) => us.map((u) => u.dataset.level)")
    assert levels and set(levels) <= {"within", "near", "over", "unplanned", "other"}, levels
    for meaning in ("within plan", "near the ceiling", "over plan", "not planned on this GPU"):
        expect(host.locator(".legend")).to_contain_text(meaning)


def _check_first_paint(page: Any, panel: str, expect: Any) -> None:
    """The Stack page holds the last known state and its age from its first paint: with
    /api/status never answering, it still shows every service's health and the read's age."""
    held: list[Any] = []
    page.route("**/api/status*", lambda route: held.append(route))  # never answered
    try:
        page.goto(panel + "/")
        host = page.locator(f"#host-{HOST}")
        expect(host.locator('[data-health$="/qwen3-micro"] .text')).to_have_text(
            re.compile(r"^up ")
        )
        expect(page.locator("#status-age")).to_contain_text(
            re.compile(r"Last read of the hosts: .+ UTC \(\d+ (s|min) ago\)")
        )
        expect(host.locator('.use[data-service="qwen3-micro"]').first).to_be_visible()
    finally:
        page.unroute("**/api/status*")
        for route in held:  # those of a page gone since are handled already
            with contextlib.suppress(Exception):
                route.abort()
    page.goto(panel + "/")


def _run_and_cancel(page: Any, playbook: str, expect: Any) -> None:
    """Elapsed time, the task being run and the tasks done per host, live; a screenshot of
    the running job; then a cancel that says which task it stopped, on which host, and that
    nothing had changed."""
    page.select_option("#playbook", playbook)
    page.fill("#limit", HOST)
    page.click("#run-button")
    expect(page).to_have_url(re.compile(r"/runs/\d{8}T\d{6}-[0-9a-f]{6}$"))
    done = page.locator(f'#progress-body tr[data-host="{HOST}"] td.done')
    expect(done).to_have_text(re.compile(r"^[1-9]\d*$"), timeout=120_000)
    expect(page.locator("#current-task")).not_to_have_text("starting…")
    expect(page.locator("#run-duration-label")).to_have_text("Elapsed")
    expect(page.locator("#run-duration")).to_have_text(re.compile(r"^\d"))
    first = page.locator("#run-duration").inner_text()
    expect(page.locator("#run-duration")).not_to_have_text(first)  # it ticks
    screenshot(page, "panel-e2e-running.png", "panel-run.png")
    page.click("#cancel-form button")
    expect(page.locator("#run-status")).to_have_text("canceled", timeout=120_000)
    account = page.locator("#run-error")
    expect(account).to_have_class(re.compile(r"\bwarn\b"))
    expect(account).to_contain_text(
        re.compile(rf"^Canceled (during task '.+' on ({HOST}|no host)|after the run's last task)")
    )
    expect(account).to_contain_text("nothing was changed")
    page.goto(page.url.rsplit("/runs/", 1)[0] + "/")


def _check_followed(page: Any, expect: Any) -> None:
    """Follow mode scrolled the event pane to its end, never the page: the header stays."""
    pane = page.locator("#events")
    assert pane.evaluate("(l) => l.scrollHeight > l.clientHeight"), "the pane never filled"
    gap = pane.evaluate("(l) => l.scrollHeight - l.scrollTop - l.clientHeight")
    assert gap < 30, gap  # at its end
    assert page.evaluate("() => window.scrollY") == 0
    expect(page.locator("header.top")).to_be_in_viewport()


def _browser_login(pw: object, panel: str, tmp_path: Path) -> tuple[object, object]:
    context = pw.chromium.launch_persistent_context(  # type: ignore[attr-defined]
        str(tmp_path / "chromium-profile"),
        executable_path=str(CHROMIUM),
        headless=True,
        args=CHROMIUM_ARGS,
        viewport={"width": 1600, "height": 900},
    )
    page = context.new_page()
    page.set_default_timeout(30_000)
    page.goto(panel + "/login")
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(panel + "/")
    return context, page


def test_the_run_form_asks_keeps_and_explains(panel: str, tmp_path: Path) -> None:
    """No demo needed: the form's confirmation, a refusal that keeps the input and names the
    problem, status forced to check mode, the panel's 404 page and favicon, the page's width."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        context, page = _browser_login(pw, panel, tmp_path)
        try:
            _check_run_form(page, expect)
            _check_small_things(page, panel, expect)
        finally:
            context.close()  # type: ignore[attr-defined]


def _check_run_form(page: Any, expect: Any) -> None:
    options = page.locator("#playbook option")
    names = options.evaluate_all("(os) => os.map((o) => o.value)")
    assert "stack_model" not in names and "secret" not in names and "site" in names
    page.select_option("#playbook", "site")
    expect(page.locator("#playbook-does")).to_contain_text("changes the hosts")
    # a destructive playbook asks first; dismissed, nothing starts
    asked: list[str] = []

    def dismiss(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.dismiss()

    page.once("dialog", dismiss)
    page.click("#run-button")
    page.wait_for_timeout(500)  # the page stays; nothing to wait for
    assert asked and "site" in asked[0] and page.url.endswith("/")
    # a refused form keeps its input and says what is wrong
    page.select_option("#playbook", "validate")
    page.fill("#limit", "x" * 5000)
    page.fill("#extra-vars", "validate_deadline: 5")
    page.click("#run-button")
    expect(page.locator("#run-error")).to_contain_text("the limit is too long (5000 characters")
    expect(page.locator("#limit")).to_have_value("x" * 5000)
    expect(page.locator("#extra-vars")).to_have_value("validate_deadline: 5")
    expect(page.locator("#playbook")).to_have_value("validate")
    # status is always a check from the panel; restore shows its backups
    page.select_option("#playbook", "status")
    expect(page.locator("#check")).to_be_checked()
    expect(page.locator("#check")).to_be_disabled()
    page.select_option("#playbook", "restore")
    expect(page.locator("#backup-from")).to_be_visible()


def _check_small_things(page: Any, panel: str, expect: Any) -> None:
    page.goto(panel + "/nope")
    expect(page.locator("#not-found")).to_contain_text("/nope")
    expect(page.locator("header nav")).to_contain_text("Runs")
    assert page.request.get(panel + "/favicon.ico").status == 200
    page.goto(panel + "/")
    main_width = page.locator("main").evaluate("(m) => m.getBoundingClientRect().width")
    assert main_width > 1400, main_width  # the layout uses a 1600 px wide window


def test_restore_from_the_form_sends_the_picked_backup(panel: str, tmp_path: Path) -> None:
    """No demo needed: restore with no backup picked is refused naming backup_from; with a
    backup picked in #backup-from and check mode ticked, the run reaches ansible-runner with
    ``backup_from=<stamp>`` and ``--check``. The stamp is a fake (an empty directory under the
    project's backups/, removed after), so the playbook's own check refuses it before any task
    could change the host."""
    from playwright.sync_api import expect, sync_playwright

    stamp = "19700101T000000-e2e-" + tmp_path.name[-12:]
    host_dir = ROOT / "backups" / "demo" / HOST
    made = [p for p in (ROOT / "backups", host_dir.parent, host_dir) if not p.exists()]
    (host_dir / stamp).mkdir(parents=True)
    try:
        with sync_playwright() as pw:
            context, page = _browser_login(pw, panel, tmp_path)
            try:
                run_id = _restore_from_the_form(page, stamp, expect)
                _check_restore_run(page, panel, run_id, stamp, expect)
            finally:
                context.close()  # type: ignore[attr-defined]
    finally:
        (host_dir / stamp).rmdir()
        for path in reversed(made):
            with contextlib.suppress(OSError):
                path.rmdir()
    # what the panel handed to ansible-runner: its record of the command line
    record = json.loads((tmp_path / "state" / "artifacts" / run_id / "command").read_text())
    command = record["command"]
    assert "--check" in command, command
    sent = [json.loads(command[i + 1]) for i, a in enumerate(command[:-1]) if a == "-e"]
    assert {"backup_from": stamp} in sent, command
    assert any(a.endswith("restore.yml") for a in command), command


def _restore_from_the_form(page: Any, stamp: str, expect: Any) -> str:
    """Refused without a backup (the input kept), then started with one picked; the run's id."""
    page.select_option("#playbook", "restore")
    expect(page.locator("#backup-pick")).to_be_visible()
    backups = page.locator("#backup-from option").evaluate_all("(os) => os.map((o) => o.value)")
    assert stamp in backups, backups
    page.fill("#limit", HOST)
    page.check("#check")  # check mode: no confirmation asked, nothing on the host changes
    page.select_option("#backup-from", "")
    page.click("#run-button")
    expect(page.locator("#run-error")).to_contain_text("restore needs backup_from")
    expect(page.locator("#playbook")).to_have_value("restore")
    expect(page.locator("#backup-pick")).to_be_visible()
    expect(page.locator("#check")).to_be_checked()
    page.select_option("#backup-from", stamp)
    page.click("#run-button")
    expect(page).to_have_url(re.compile(r"/runs/\d{8}T\d{6}-[0-9a-f]{6}$"))
    return str(page.url.rsplit("/", 1)[1])


def _check_restore_run(page: Any, panel: str, run_id: str, stamp: str, expect: Any) -> None:
    """The run page says restore in check mode; the run ends with the playbook refusing the
    fake backup by its stamp (it holds no configs.tar.gz)."""
    expect(page.locator("h1")).to_contain_text("restore")
    expect(page.locator("h1")).to_contain_text("check mode")
    expect(page.locator("#run-status")).not_to_have_text("running", timeout=180_000)
    row = page.request.get(f"{panel}/api/runs/{run_id}").json()
    assert row["playbook"] == "restore" and row["check"] is True and row["limit"] == HOST, row
    assert row["status"] == "failed", row
    assert stamp in json.dumps(row["failed_tasks"]), row["failed_tasks"]
