"""The panel's HTTP API with FastAPI's TestClient, over real ansible-runner runs.

The panel runs the playbooks of a small project made here (local connection, two hosts), which
shares the real collection's plugins/ (service model, GPU plan, HTTP checks).
"""

from __future__ import annotations

import json
import os
import re
import stat
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from genai_stack.panel import PanelConfig, create_app
from genai_stack.panel.auth import AuthConfigError, set_password
from genai_stack.project import Project
from tests.fake_http import FakeHTTP, Reply

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "correct horse battery staple"
PLAYBOOKS = {
    "quick": [
        {
            "name": "Quick",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {"name": "Say hi", "ansible.builtin.debug": {"msg": "hi {{ inventory_hostname }}"}},
                {"name": "Report check mode",
                 "ansible.builtin.debug": {"msg": "check={{ ansible_check_mode }}"}},
            ],
        }
    ],
    "broken": [
        {
            "name": "Broken",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [{"name": "Fail loudly", "ansible.builtin.fail": {"msg": "the GPU fell off"}}],
        }
    ],
    "gated": [
        {
            "name": "Gated",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {"name": "Wait for the gate",
                 "ansible.builtin.wait_for": {"path": "{{ playbook_dir }}/../gate", "timeout": 120}},
                {"name": "After the gate", "ansible.builtin.debug": {"msg": "through"}},
            ],
        }
    ],
    "changing": [
        {
            "name": "Changing",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [
                {"name": "Change something", "ansible.builtin.debug": {"msg": "changed"},
                 "changed_when": True},
                {"name": "Wait for the gate",
                 "ansible.builtin.wait_for": {"path": "{{ playbook_dir }}/../gate", "timeout": 120}},
            ],
        }
    ],
    "slow": [
        {
            "name": "Slow",
            "hosts": "all",
            "gather_facts": False,
            "tasks": [{"name": "Wait", "ansible.builtin.pause": {"seconds": 120}}],
        }
    ],
}  # fmt: skip


@pytest.fixture(scope="module")
def health_server() -> Iterator[int]:
    with FakeHTTP({"/health": Reply(200, content_type=None)}) as server:
        yield server.port


@pytest.fixture
def project(tmp_path: Path, health_server: int) -> Project:
    root = tmp_path / "project"
    (root / "playbooks").mkdir(parents=True)
    (root / "plugins").symlink_to(ROOT / "plugins")
    (root / "ansible.cfg").write_text(
        "[defaults]\ninventory = hosts.yml\nretry_files_enabled = False\n"
    )
    (root / "site.yml").write_text(yaml.safe_dump(PLAYBOOKS["quick"]))
    # the panel takes each host's stack model from the collection's own playbook
    (root / "playbooks" / "stack_model.yml").symlink_to(ROOT / "playbooks" / "stack_model.yml")
    (root / "collections").symlink_to(ROOT / "collections")
    for name, plays in PLAYBOOKS.items():
        (root / "playbooks" / f"{name}.yml").write_text(yaml.safe_dump(plays, sort_keys=False))
    common = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    models = [
        {"name": "tiny", "model": "Qwen/Qwen3-0.6B", "port": health_server, "gpus": [0],
         "gpu_memory_utilization": 0.5},
        {"name": "gone", "model": "Qwen/Qwen3-0.6B", "port": 9, "gpus": [0],
         "gpu_memory_utilization": 0.3},
    ]  # fmt: skip
    inventory = {
        "all": {
            "children": {
                "gpu_hosts": {
                    "hosts": {
                        "node-a": {
                            **common,
                            "vllm_qwen3_models": models,
                            "comfyui_qwen_auth_gpu_memory_share": 0.1,
                            "forge_turbo_instances": [],
                            "genai_gpus": [
                                {"index": 0, "name": "Test GPU", "memory_total_mib": 8192}
                            ],
                        }
                    }
                },
                "others": {"hosts": {"node-b": common}},
            }
        }
    }
    (root / "hosts.yml").write_text(yaml.safe_dump(inventory))
    return Project(root)


@pytest.fixture
def config(tmp_path: Path, project: Project) -> PanelConfig:
    cfg = PanelConfig.create(project, tmp_path / "state", tmp_path / "secrets", keep_artifacts=5)
    set_password(cfg.password_file, "admin", PASSWORD, rounds=4)
    return cfg


@pytest.fixture
def client(config: PanelConfig) -> Iterator[TestClient]:
    with TestClient(create_app(config), follow_redirects=False) as test_client:
        yield test_client


def csrf(client: TestClient, path: str = "/") -> str:
    page = client.get(path)
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match, f"no CSRF token in {path}: {page.status_code}"
    return match.group(1)


def login(client: TestClient, password: str = PASSWORD, user: str = "admin") -> Any:
    token = csrf(client, "/login")
    return client.post(
        "/login", data={"username": user, "password": password, "csrf_token": token, "next": "/"}
    )


@pytest.fixture
def logged_in(client: TestClient) -> TestClient:
    assert login(client).status_code == 303
    return client


def start_run(client: TestClient, playbook: str, limit: str = "", check: bool = False) -> Any:
    data = {"playbook": playbook, "limit": limit, "csrf_token": csrf(client)}
    if check:
        data["check"] = "on"
    return client.post("/runs", data=data)


def follow(client: TestClient, run_id: str) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Read the run's SSE stream to its end: (events, the final run row)."""
    events: list[dict[str, Any]] = []
    end: dict[str, Any] = {}
    with client.stream("GET", f"/runs/{run_id}/events") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        kind = None
        for line in response.iter_lines():
            if line.startswith("event: "):
                kind = line[7:]
            elif line.startswith("data: "):
                data = json.loads(line[6:])
                if kind == "run-event":
                    events.append(data)
                elif kind == "end":
                    end = data
    return events, end


# -- authentication ---------------------------------------------------------------------------
def test_every_page_requires_login(client: TestClient) -> None:
    for path in ("/", "/runs", "/runs/x"):
        response = client.get(path)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")
    for path in ("/api/status", "/api/stack", "/api/runs/x", "/runs/x/events"):
        assert client.get(path).status_code == 401
    page = client.get("/login")
    assert page.status_code == 200 and 'type="password"' in page.text


def test_wrong_password_or_user_is_refused(client: TestClient) -> None:
    response = login(client, password="not the password")
    assert response.status_code == 401 and "Wrong user name or password" in response.text
    assert login(client, user="root").status_code == 401
    assert client.get("/").status_code == 303  # still not logged in
    response = login(client)
    assert response.status_code == 303 and response.headers["location"] == "/"
    assert client.get("/").status_code == 200


def test_session_cookie_and_security_headers(client: TestClient) -> None:
    response = login(client)
    cookie = response.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    page = client.get("/")
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    assert page.headers["x-frame-options"] == "DENY"
    assert page.headers["cache-control"] == "no-store"


def test_login_is_throttled(client: TestClient) -> None:
    for _ in range(5):
        assert login(client, password="wrong").status_code == 401
    assert login(client).status_code == 429


def test_logout_ends_the_session(logged_in: TestClient) -> None:
    token = csrf(logged_in)
    assert logged_in.post("/logout", data={"csrf_token": token}).status_code == 303
    assert logged_in.get("/").status_code == 303


def test_open_redirect_after_login_is_refused(client: TestClient) -> None:
    token = csrf(client, "/login")
    response = client.post(
        "/login",
        data={"username": "admin", "password": PASSWORD, "csrf_token": token,
              "next": "https://evil.example/"},
    )  # fmt: skip
    assert response.headers["location"] == "/"


def test_credentials_files_must_be_private(config: PanelConfig) -> None:
    config.password_file.chmod(0o644)
    with pytest.raises(AuthConfigError, match="chmod 600"):
        create_app(config)
    config.password_file.chmod(0o600)
    create_app(config)
    mode = stat.S_IMODE(config.session_key_file.stat().st_mode)
    assert mode == 0o600
    assert config.password_file.read_text().startswith("admin:$2b$")


# -- CSRF -------------------------------------------------------------------------------------
def test_every_post_without_csrf_token_is_forbidden(logged_in: TestClient) -> None:
    posts = [
        getattr(route, "path", "")
        for route in logged_in.app.routes  # type: ignore[attr-defined]
        if "POST" in (getattr(route, "methods", None) or ())
    ]
    assert {"/login", "/logout", "/runs", "/runs/{run_id}/cancel", "/refresh"} <= set(posts)
    for path in posts:
        url = path.replace("{run_id}", "20260101T000000-abcdef")
        assert logged_in.post(url, data={"playbook": "quick"}).status_code == 403, path
        assert (
            logged_in.post(url, data={"playbook": "quick", "csrf_token": "forged"}).status_code
            == 403
        ), path
    # nothing was started
    assert "No run yet" in logged_in.get("/runs").text


# -- the stack ----------------------------------------------------------------------------------
def test_dashboard_shows_hosts_services_and_plan(logged_in: TestClient) -> None:
    page = logged_in.get("/").text
    assert "node-a" in page and "node-b" in page
    assert "tiny" in page and "Test GPU" in page and 'data-share="0.90"' in page  # GPU 0's plan
    # one GPU table per host (plan and use together), with the legend of its colours
    assert page.count('<table class="gpus"') == 1 and "GPUs now" not in page
    for meaning in ("within plan", "near the ceiling", "over plan", "not planned on this GPU"):
        assert meaning in page
    for name in ("quick", "broken", "slow", "site"):
        assert f'<option value="{name}"' in page
    # the services' health comes from status.yml (tests/unit/driver/test_status.py); this
    # project has none, and says so
    status = logged_in.get("/api/status", params={"wait": True}).json()["status"]
    assert status["hosts"] == [] and "no playbooks/status.yml" in status["error"]
    stack = logged_in.get("/api/stack").json()
    node_a = next(h for h in stack["hosts"] if h["name"] == "node-a")
    # sharing GPU 0: one after the other
    assert node_a["waves"] == [["tiny"], ["gone"], ["comfyui"]]


# -- runs ---------------------------------------------------------------------------------------
def test_run_streams_events_and_lands_in_history(
    logged_in: TestClient, config: PanelConfig
) -> None:
    response = start_run(logged_in, "quick", limit="node-a", check=True)
    assert response.status_code == 303, response.text
    run_id = response.headers["location"].rsplit("/", 1)[1]

    events, end = follow(logged_in, run_id)
    kinds = [e["kind"] for e in events]
    assert kinds[0] == "playbook_start" and kinds[-1] == "stats"
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert any(e["kind"] == "ok" and e["message"] == "check=True" for e in events)
    assert end["status"] == "successful" and end["rc"] == 0 and end["duration_s"] > 0
    assert end["hosts"] == ["node-a"] and end["check"] is True and end["user"] == "admin"

    row = logged_in.get(f"/api/runs/{run_id}").json()
    assert row["status"] == "successful" and row["stats"]["node-a"]["ok"] == 2
    history = logged_in.get("/runs").text
    assert run_id in history and "successful" in history
    assert re.search(r"\d+\.\d s", history), "duration missing from the history"
    page = logged_in.get(f"/runs/{run_id}").text
    assert "TASK Say hi" in page and "ok: [node-a] Say hi" in page


def test_failed_run_shows_its_failed_tasks(logged_in: TestClient) -> None:
    response = start_run(logged_in, "broken", limit="node-b")
    run_id = response.headers["location"].rsplit("/", 1)[1]
    _, end = follow(logged_in, run_id)
    assert end["status"] == "failed" and end["rc"] == 2
    assert end["failed_tasks"] == [
        {"host": "node-b", "task": "Fail loudly", "message": "the GPU fell off",
         "play": "Broken", "action": "ansible.builtin.fail", "unreachable": False}
    ]  # fmt: skip
    page = logged_in.get(f"/runs/{run_id}").text
    assert "Fail loudly" in page and "the GPU fell off" in page


def test_second_run_on_the_same_host_is_refused_with_409(
    logged_in: TestClient, config: PanelConfig
) -> None:
    response = start_run(logged_in, "slow", limit="node-a")
    assert response.status_code == 303
    slow_id = response.headers["location"].rsplit("/", 1)[1]
    try:
        busy = start_run(logged_in, "quick", limit="node-a")
        assert busy.status_code == 409
        assert "host node-a is busy" in busy.text and slow_id in busy.text
        # the whole inventory includes node-a: refused too
        assert start_run(logged_in, "quick").status_code == 409
        # another host is free
        other = start_run(logged_in, "quick", limit="node-b")
        assert other.status_code == 303
        _, end = follow(logged_in, other.headers["location"].rsplit("/", 1)[1])
        assert end["status"] == "successful"
    finally:
        token = csrf(logged_in, f"/runs/{slow_id}")
        cancel = logged_in.post(f"/runs/{slow_id}/cancel", data={"csrf_token": token})
        assert cancel.status_code == 303
    _, end = follow(logged_in, slow_id)
    assert end["status"] == "canceled"
    assert "nothing had changed before it" in end["error"], end["error"]
    assert start_run(logged_in, "quick", limit="node-a").status_code == 303


def test_bad_run_requests_are_refused(logged_in: TestClient) -> None:
    assert start_run(logged_in, "../../etc/passwd").status_code == 400
    assert start_run(logged_in, "quick", limit="@/etc/hosts").status_code == 400
    response = start_run(logged_in, "quick", limit="no-such-host")
    assert response.status_code == 400 and "no host" in response.text


def test_runs_left_running_by_a_dead_panel_are_marked_interrupted(config: PanelConfig) -> None:
    from genai_stack.driver import Driver, RunRequest
    from genai_stack.panel.store import History, RunRow

    history = History(config.database)
    history.create(RunRow(id="r1", playbook="quick", status="running", started_at="2026-01-01"))
    row = RunRow(id="r2", playbook="slow", status="running", started_at="2026-01-01",
                 hosts=["node-a"])  # fmt: skip
    history.create(row)
    history.close()
    # r2's host is still locked by r2 (another panel on the same state dir): left running
    driver = Driver(config.project, config.state_dir)
    lock = driver.lock_hosts(["node-a"], "r2", RunRequest("slow"))
    with lock, TestClient(create_app(config)) as test_client:
        login(test_client)
        assert test_client.get("/api/runs/r1").json()["status"] == "interrupted"
        assert test_client.get("/api/runs/r2").json()["status"] == "running"


def test_parallel_wrong_logins_are_checked_at_most_the_limit(
    config: PanelConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genai_stack.panel import auth

    real_checkpw = auth.bcrypt.checkpw
    calls: list[bytes] = []
    running = [0, 0]  # now, most at once
    arrived = threading.Condition()

    def checkpw(password: bytes, hashed: bytes) -> bool:
        with arrived:
            calls.append(password)
            running[0] += 1
            running[1] = max(running)
            arrived.notify_all()
            # hold each check until all 30 arrive (as they would with a racy throttle)
            arrived.wait_for(lambda: len(calls) >= 30, timeout=1.0)
            running[0] -= 1
        return real_checkpw(password, hashed)

    monkeypatch.setattr(auth.bcrypt, "checkpw", checkpw)
    app = create_app(config)
    with TestClient(app, follow_redirects=False, client=("203.0.113.9", 4000)) as attacker:
        token = csrf(attacker, "/login")
        data = {"username": "admin", "password": "guess", "csrf_token": token, "next": "/"}
        codes: list[int] = []
        threads = [
            threading.Thread(
                target=lambda: codes.append(attacker.post("/login", data=data).status_code)
            )
            for _ in range(30)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(calls) == 5 and running[1] <= 2
        assert sorted(codes) == [401] * 5 + [429] * 25
        assert login(attacker).status_code == 429  # this client is blocked, even the right password
        # the admin, from another address, is not locked out
        admin = TestClient(app, follow_redirects=False, client=("198.51.100.20", 5000))
        assert login(admin).status_code == 303 and admin.get("/").status_code == 200


def test_forwarded_for_is_honoured_only_from_trusted_proxies(config: PanelConfig) -> None:
    def attempts(proxy: str) -> tuple[list[int], int]:
        with TestClient(create_app(config), follow_redirects=False, client=(proxy, 4000)) as web:
            token = csrf(web, "/login")
            guess = {"username": "admin", "password": "guess", "csrf_token": token}
            wrong = [
                web.post(
                    "/login", headers={"X-Forwarded-For": f"198.51.100.{i}, 192.0.2.66"}, data=guess
                ).status_code
                for i in range(6)
            ]
            token = csrf(web, "/login")
            right = web.post(
                "/login",
                headers={"X-Forwarded-For": "198.51.100.200, 192.0.2.77"},
                data={"username": "admin", "password": PASSWORD, "csrf_token": token},
            ).status_code
            return wrong, right

    # an untrusted peer cannot dodge the throttle with forged headers
    assert attempts("192.0.2.10") == ([401] * 5 + [429], 429)
    # behind the configured proxy each client is itself: the attacker (192.0.2.66, appended by
    # the proxy) is throttled, the admin (192.0.2.77) is not
    config.trusted_proxies = ("192.0.2.0/28",)
    assert attempts("192.0.2.1") == ([401] * 5 + [429], 303)


def test_an_old_cookie_replayed_after_logout_is_refused(logged_in: TestClient) -> None:
    cookie = logged_in.cookies["genai_panel"]
    assert logged_in.post("/logout", data={"csrf_token": csrf(logged_in)}).status_code == 303
    logged_in.cookies.set("genai_panel", cookie)
    assert logged_in.get("/").status_code == 303
    assert logged_in.get("/api/stack").status_code == 401


def test_a_new_password_ends_every_session(logged_in: TestClient, config: PanelConfig) -> None:
    assert logged_in.get("/").status_code == 200
    set_password(config.password_file, "admin", "another long password", rounds=4)
    assert logged_in.get("/").status_code == 303
    assert login(logged_in).status_code == 401
    assert login(logged_in, password="another long password").status_code == 303
    assert logged_in.get("/").status_code == 200


# -- the history database -------------------------------------------------------------------------
def test_history_files_are_private(config: PanelConfig) -> None:
    from genai_stack.panel.store import History, RunRow

    old = os.umask(0o022)
    try:
        history = History(config.database)
        history.create(RunRow(id="r1", playbook="quick", status="running", started_at="2026"))
        files = [config.database, Path(f"{config.database}-wal"), Path(f"{config.database}-shm")]
        assert {f.name: stat.S_IMODE(f.stat().st_mode) for f in files} == {
            f.name: 0o600 for f in files
        }
        history.close()
    finally:
        os.umask(old)


@pytest.mark.parametrize("damage", ["not a database", "damaged pages"])
def test_a_damaged_history_is_set_aside_and_a_new_one_started(
    config: PanelConfig, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    import sqlite3

    config.state_dir.mkdir(parents=True)
    if damage == "not a database":
        config.database.write_bytes(b"these are not the runs you are looking for\n" * 200)
    else:
        from genai_stack.panel.store import SCHEMA

        db = sqlite3.connect(config.database)
        db.executescript(SCHEMA)
        db.executemany(
            "INSERT INTO runs (id, playbook, status, started_at) VALUES (?, 'quick', 'ok', '2026')",
            [(f"r{i}",) for i in range(2000)],
        )
        db.commit()
        db.close()
        with open(config.database, "r+b") as handle:  # every page but the schema's
            size = handle.seek(0, os.SEEK_END)
            handle.seek(4096)
            handle.write(b"\xff" * (size - 4096))
    damaged = config.database.read_bytes()
    with TestClient(create_app(config), follow_redirects=False) as web:
        assert login(web).status_code == 303
        assert web.get("/runs").status_code == 200
    aside = list(config.state_dir.glob("panel.sqlite3.damaged-*"))
    assert len(aside) == 1 and aside[0].read_bytes() == damaged
    assert "damaged" in caplog.text and aside[0].name in caplog.text


def _read_stream_in_thread(client: TestClient, run_id: str) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(follow(client, run_id)), daemon=True)
    thread.start()
    return thread, out


@pytest.mark.parametrize("released", ["after the retry window", "within the retry window"])
def test_a_locked_history_at_the_end_of_a_run(
    config: PanelConfig, project: Project, released: str
) -> None:
    import sqlite3

    from genai_stack.panel.store import History

    config.history_retry_s = 1.0 if released == "after the retry window" else 120.0
    app = create_app(config)
    with TestClient(app, follow_redirects=False) as web:
        login(web)
        response = start_run(web, "gated", limit="node-a")
        assert response.status_code == 303, response.text
        run_id = response.headers["location"].rsplit("/", 1)[1]
        reader = History(config.database)
        while not any(e.task == "Wait for the gate" for e in reader.events(run_id)):
            threading.Event().wait(0.1)
        blocker = sqlite3.connect(config.database, isolation_level=None)
        blocker.execute("BEGIN EXCLUSIVE")
        try:
            (project.root / "gate").touch()
            if released == "within the retry window":
                while app.state.manager.handle(run_id) is not None:  # the playbook has ended
                    threading.Event().wait(0.1)
                blocker.execute("ROLLBACK")
            stream, out = _read_stream_in_thread(web, run_id)
            stream.join(120)
            assert not stream.is_alive(), "the event stream never ended"
            events, end = out[0]
            # a run on a free host while the history is locked: refused with a reason
            busy = start_run(web, "quick", limit="node-b")
            if released == "after the retry window":
                assert end["status"] == "error" and "locked" in end["error"]
                assert "it ended successful" in end["error"]
                assert busy.status_code == 503 and "locked by another process" in busy.text
            else:
                assert end["status"] == "successful"
                assert busy.status_code == 303
            # no event was dropped
            assert [e["kind"] for e in events][-1] == "stats"
            assert any(e["task"] == "After the gate" for e in events)
        finally:
            blocker.close()
        # once the database is free, the history holds the run's end and all its events
        while (row := reader.get(run_id)) is None or row.status == "running":
            threading.Event().wait(0.1)
        assert row.status == end["status"]
        assert [e.seq for e in reader.events(run_id)] == [e["seq"] for e in events]
        reader.close()


def test_a_dead_panels_run_is_interrupted_but_its_host_stays_locked(config: PanelConfig) -> None:
    import subprocess

    from genai_stack.driver import Driver
    from genai_stack.panel.store import History, RunRow

    history = History(config.database)
    history.create(RunRow(id="r9", playbook="slow", status="running", started_at="2026-01-01",
                          hosts=["node-a"]))  # fmt: skip
    history.close()
    gone = subprocess.Popen(["true"])  # its pid: a panel that is no more
    gone.wait()
    # r9's processes still hold node-a (as its keeper does), its panel is gone
    driver = Driver(config.project, config.state_dir)
    lock = driver.locks.acquire(["node-a"], {"run_id": "r9", "pid": gone.pid},
                                {"node-a": "node-a:22"})  # fmt: skip
    with lock, TestClient(create_app(config), follow_redirects=False) as web:
        login(web)
        assert web.get("/api/runs/r9").json()["status"] == "interrupted"
        busy = start_run(web, "quick", limit="node-a")
        assert busy.status_code == 409 and "r9" in busy.text


# -- the run form for humans --------------------------------------------------------------------
def post_run(client: TestClient, **fields: str) -> Any:
    return client.post("/runs", data={"csrf_token": csrf(client), **fields})


def test_the_form_offers_only_runnable_playbooks_with_what_they_do(logged_in: TestClient) -> None:
    page = logged_in.get("/").text
    assert '<option value="stack_model"' not in page  # imported by the others, not run alone
    site = re.search(r'<option value="site"[^>]*>([^<]*)</option>', page)
    assert site and "deploy the whole stack" in site.group(1) and "changes hosts" in site.group(1)
    assert 'data-confirm="1"' in site.group(0)
    quick = re.search(r'<option value="quick"[^>]*>', page)
    assert quick and "data-confirm" not in quick.group(0)


def test_a_destructive_playbook_needs_its_confirmation(logged_in: TestClient) -> None:
    refused = post_run(logged_in, playbook="site", limit="node-b", tags="web")
    assert refused.status_code == 400 and "confirm" in refused.text
    assert 'name="confirmed" id="confirmed"' in refused.text and 'type="checkbox"' in refused.text
    # the refused form comes back as it was sent
    assert re.search(r'<option value="site"[^>]* selected>', refused.text)
    assert 'id="limit" placeholder="all hosts" value="node-b"' in refused.text
    assert 'id="tags" placeholder="all tasks" value="web"' in refused.text
    started = post_run(logged_in, playbook="site", limit="node-b", confirmed="on")
    assert started.status_code == 303, started.text[-2000:]
    _, end = follow(logged_in, started.headers["location"].rsplit("/", 1)[1])
    assert end["status"] == "successful"


def test_refusals_name_the_actual_problem(logged_in: TestClient) -> None:
    too_long = post_run(logged_in, playbook="quick", limit="a" * 5000)
    assert too_long.status_code == 400 and "too long (5000 characters" in too_long.text
    assert 'value="' + "a" * 5000 + '"' in too_long.text  # kept
    nothing = post_run(logged_in, playbook="quick", limit="node-z*")
    assert nothing.status_code == 400
    assert "the limit &#39;node-z*&#39; matches no host" in nothing.text
    assert "[WARNING]" not in nothing.text and "[ERROR]" not in nothing.text
    bad_char = post_run(logged_in, playbook="quick", limit="node a")
    assert "&#39; &#39;" in bad_char.text  # names the character (a space)


def test_extra_vars_are_validated_and_reach_the_run(logged_in: TestClient) -> None:
    for text, problem in [
        ("[1, 2]", "must be a mapping"),
        ("ansible_python_interpreter: /bin/sh", "connection variables"),
        ("x: \"{{ lookup('pipe', 'id') }}\"", "templates"),
        ("a" * 3000, "too long"),
    ]:
        refused = post_run(logged_in, playbook="quick", extra_vars=text)
        assert refused.status_code == 400 and problem in refused.text, (text, refused.text[-500:])
    started = post_run(logged_in, playbook="quick", limit="node-b", extra_vars="greeting: hello")
    assert started.status_code == 303
    _, end = follow(logged_in, started.headers["location"].rsplit("/", 1)[1])
    assert end["status"] == "successful"


def test_restore_takes_backup_from_among_the_backups_that_exist(
    logged_in: TestClient, project: Project
) -> None:
    (project.root / "playbooks" / "restore.yml").write_text(
        yaml.safe_dump([{"name": "Restore", "hosts": "all", "gather_facts": False, "tasks": [
            {"name": "Show", "ansible.builtin.debug": {"msg": "from={{ backup_from }}"}}]}])
    )  # fmt: skip
    # backups/<inventory>/<host>/<stamp>: this project's inventory is its root's hosts.yml
    (project.root / "backups" / project.root.name / "node-b" / "20250101T000000").mkdir(
        parents=True
    )
    (project.root / "backups" / "other" / "node-b" / "20240101T000000").mkdir(parents=True)
    page = logged_in.get("/").text
    assert '<option value="20250101T000000"' in page
    assert "20240101T000000" not in page  # another inventory's
    missing = post_run(logged_in, playbook="restore", limit="node-b", confirmed="yes")
    assert missing.status_code == 400 and "needs backup_from" in missing.text
    unknown = post_run(logged_in, playbook="restore", limit="node-b", confirmed="yes",
                       backup_from="19990101T000000")  # fmt: skip
    assert unknown.status_code == 400 and "there is no backup" in unknown.text
    started = post_run(logged_in, playbook="restore", limit="node-b", confirmed="yes",
                       backup_from="20250101T000000")  # fmt: skip
    assert started.status_code == 303, started.text[-1000:]
    events, end = follow(logged_in, started.headers["location"].rsplit("/", 1)[1])
    assert end["status"] == "successful"
    assert any(e["message"] == "from=20250101T000000" for e in events)


# -- the small things -----------------------------------------------------------------------------
def test_a_missing_page_is_the_panels_own_404(logged_in: TestClient, client: TestClient) -> None:
    page = logged_in.get("/nope")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert 'id="not-found"' in page.text and "/nope" in page.text and "Runs</a>" in page.text
    assert logged_in.get("/api/nope").json() == {"detail": "Not Found"}


def test_favicon_and_one_time_format(logged_in: TestClient) -> None:
    icon = logged_in.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/svg+xml")
    assert 'rel="icon"' in logged_in.get("/").text
    response = start_run(logged_in, "quick", limit="node-b")
    run_id = response.headers["location"].rsplit("/", 1)[1]
    follow(logged_in, run_id)
    for path in ("/runs", f"/runs/{run_id}"):
        text = logged_in.get(path).text
        assert re.search(r'<time datetime="[^"]+">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>', text)
        assert not re.search(r"\d:\d\d:\d\d [AP]M", text)


# -- a Stack page that answers at once ------------------------------------------------------------
def test_the_stack_page_never_waits_for_a_status_run(logged_in: TestClient) -> None:
    from genai_stack.status import StackStatus

    cache = logged_in.app.state.status_cache  # type: ignore[attr-defined]
    gate = threading.Event()
    first = StackStatus([], 1_700_000_000.0, 3.0)

    def slow_read() -> StackStatus:
        gate.wait(120)
        return StackStatus([], 1_700_000_100.0, 3.0)

    cache.value, cache.compute = first, slow_read
    cache.clear()  # stale: the next read starts a run that blocks until the gate opens
    try:
        page = logged_in.get("/")  # answered while status.yml "runs": it never waits for it
        assert page.status_code == 200
        last = re.search(r'id="last-status" data-json="([^"]+)"', page.text)
        assert last, "the page holds no last known status"
        held = json.loads(last.group(1).replace("&#34;", '"').replace("&quot;", '"'))
        assert held["status"]["checked_at"] == 1_700_000_000.0 and held["refreshing"] is True
        assert re.search(r'id="status-reading" class="reading">', page.text)  # shown, not hidden
        api = logged_in.get("/api/status").json()
        assert api["refreshing"] is True and api["status"]["checked_at"] == 1_700_000_000.0
        assert not gate.is_set()  # both answers came while the read was still under way
    finally:
        gate.set()
    fresh = logged_in.get("/api/status", params={"wait": True}).json()
    assert fresh["status"]["checked_at"] == 1_700_000_100.0 and fresh["refreshing"] is False


# -- run progress and what a cancel stopped -------------------------------------------------------
def _event(seq: int, kind: str, host: str | None = None, task: str | None = None) -> Any:
    from genai_stack.events import EventKind, RunEvent

    return RunEvent("r", seq, EventKind(kind), host=host, task=task)


def test_progress_counts_tasks_per_host_and_names_the_task_being_run() -> None:
    from genai_stack.panel.progress import Progress, cancel_account

    events = [_event(1, "play_start"), _event(2, "task_start", task="one"),
              _event(3, "ok", "a", "one"), _event(4, "changed", "b", "one"),
              _event(5, "task_start", task="two"), _event(6, "ok", "a", "two")]  # fmt: skip
    progress = Progress.of(["a", "b", "c"], events)
    assert progress.task == "two" and progress.tasks_started == 2
    assert [(h.host, h.done, h.changed, h.current) for h in progress.hosts.values()] == [
        ("a", 2, 0, None), ("b", 1, 1, "two"), ("c", 0, 0, "two")]  # fmt: skip
    assert progress.running_on() == ["b", "c"]
    said = cancel_account(progress)
    assert "during task 'two' on b, c" in said and "(b 1 changed)" in said
    assert "before any task" in cancel_account(Progress.of(["a"], events[:1]))
    assert "a check: nothing was changed (1 task(s) would have)" in cancel_account(progress, True)
    failed = Progress.of(["a"], [*events[:2], _event(3, "unreachable", "a", "one"),
                                 _event(4, "task_start", task="two")])  # fmt: skip
    assert failed.hosts["a"].out and failed.running_on() == []
    assert "nothing had changed" in cancel_account(failed)


def test_a_running_job_shows_its_progress_and_a_cancel_says_what_it_stopped(
    logged_in: TestClient,
) -> None:
    response = start_run(logged_in, "changing", limit="node-a")
    assert response.status_code == 303, response.text
    run_id = response.headers["location"].rsplit("/", 1)[1]
    manager = logged_in.app.state.manager  # type: ignore[attr-defined]
    while not any(e.task == "Wait for the gate" for e in manager.events(run_id)):
        threading.Event().wait(0.1)
    page = logged_in.get(f"/runs/{run_id}").text
    assert '<strong id="current-task">Wait for the gate</strong>' in page
    row = re.search(r'<tr data-host="node-a">(.*?)</tr>', page)
    assert row, "no progress row for node-a"
    assert '<td class="done">1</td><td class="changed">1</td>' in row.group(1)
    assert '<td class="current">Wait for the gate</td>' in row.group(1)
    elapsed = re.search(r'<dd id="run-duration" data-started="[^"]+">([^<]*)</dd>', page)
    assert elapsed and re.match(r"\d", elapsed.group(1)), "no elapsed time while it runs"
    assert 'id="follow" checked' in page
    token = csrf(logged_in, f"/runs/{run_id}")
    assert logged_in.post(f"/runs/{run_id}/cancel", data={"csrf_token": token}).status_code == 303
    _, end = follow(logged_in, run_id)
    assert end["status"] == "canceled"
    assert "during task 'Wait for the gate' on node-a" in end["error"], end["error"]
    assert "changes had been made before it (node-a 1 changed)" in end["error"]
    page = logged_in.get(f"/runs/{run_id}").text
    assert 'class="alert warn" id="run-error"' in page and "Wait for the gate" in page
