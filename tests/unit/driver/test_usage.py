"""The OpenAI gateway's usage: usage.yml through ansible-runner on local hosts (files written by
the test, one missing, one damaged, one SSH host on a closed port), how its reports are read,
merged over the hosts and windowed in days, the CLI's table and JSON, the panel's Usage page with
its charts, and the Stack page's line for the gateway."""

from __future__ import annotations

import base64
import datetime
import json
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from genai_stack import stack, usage
from genai_stack.cli import main
from genai_stack.driver import Driver
from genai_stack.events import FailedTask, HostStats, RunResult
from genai_stack.panel import PanelConfig, create_app
from genai_stack.panel.auth import set_password
from genai_stack.project import Project

ROOT = Path(__file__).resolve().parents[3]
PASSWORD = "usage test password"
TODAY = datetime.date(2026, 12, 7)


def day(offset: int, today: datetime.date | None = None) -> str:
    """``offset`` days before today (UTC)."""
    return ((today or usage.utc_today()) - datetime.timedelta(days=offset)).isoformat()


def counts(requests: int, prompt: int, completion: int, errors: int = 0) -> dict[str, int]:
    return {"requests": requests, "prompt_tokens": prompt, "completion_tokens": completion,
            "errors": errors}  # fmt: skip


def usage_file(days: dict[str, Any], updated: str = "2026-12-07T22:00:00Z") -> bytes:
    return json.dumps({"version": 1, "updated": updated, "days": days}).encode()


def report(
    raw: bytes | None, path: str = "/opt/genai/openai-gateway/usage/usage.json"
) -> dict[str, Any]:
    """What usage.yml writes for a host whose file holds ``raw`` (None: no file)."""
    return {"host": "h", "path": path, "exists": raw is not None,
            "content_b64": base64.b64encode(raw or b"").decode(), "error": ""}  # fmt: skip


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- one file ------------------------------------------------------------------------------------
def test_a_usage_file_is_read_per_day_client_and_model() -> None:
    updated, days = usage.parse(usage_file({
        "2026-12-06": {"genai": {"qwen3-micro": counts(3, 12, 18, 1)}},
        "2026-12-07": {"genai": {"qwen3-micro": {"requests": 2}}, "batch": {"qwen3-mini": counts(1, 5, 7)}},
    }))  # fmt: skip
    assert updated == "2026-12-07T22:00:00Z"
    assert days["2026-12-06"]["genai"]["qwen3-micro"] == usage.Counts(3, 12, 18, 1)
    assert days["2026-12-07"]["genai"]["qwen3-micro"] == usage.Counts(2, 0, 0, 0)
    assert days["2026-12-07"]["batch"]["qwen3-mini"].tokens == 12


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b'{"version": 1, "days": {', "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b'{"version": 2, "days": {}}', "not a version 1 usage object"),
        (b'{"version": 1, "days": []}', "'days' is not an object"),
        (usage_file({"yesterday": {}}), "day 'yesterday' is not a date"),
        (usage_file({"2026-12-07": {"genai": []}}), "days.2026-12-07.genai is not an object"),
        (usage_file({"2026-12-07": {"genai": {"m": counts(-1, 0, 0)}}}),
         "days.2026-12-07.genai.m.requests is -1, not a count"),
        (usage_file({"2026-12-07": {"genai": {"m": {"requests": True}}}}),
         "days.2026-12-07.genai.m.requests is True"),
        (usage_file({"2026-12-07": {"genai": {"m": {"errors": "2"}}}}),
         "days.2026-12-07.genai.m.errors is '2'"),
    ],
)  # fmt: skip
def test_a_damaged_file_says_what_is_wrong(raw: bytes, message: str) -> None:
    with pytest.raises(usage.DamagedUsage, match="^" + message.replace(".", r"\.")):
        usage.parse(raw)


def test_a_host_report_is_ok_empty_or_damaged_by_its_name() -> None:
    ok = usage.host_usage(
        "gpu-a", report(usage_file({"2026-12-07": {"c": {"m": counts(1, 2, 3)}}}))
    )
    assert ok.state == "ok" and ok.ok and ok.updated == "2026-12-07T22:00:00Z"
    assert ok.days["2026-12-07"]["c"]["m"] == usage.Counts(1, 2, 3)
    empty = usage.host_usage("gpu-b", report(None))
    assert empty.state == "empty" and empty.ok and empty.days == {}
    assert (
        empty.reason == "no usage yet (/opt/genai/openai-gateway/usage/usage.json does not exist)"
    )
    damaged = usage.host_usage("gpu-c", report(b"{half"))
    assert damaged.state == "damaged" and not damaged.ok
    assert damaged.reason.startswith(
        "/opt/genai/openai-gateway/usage/usage.json is damaged: not JSON"
    )
    assert usage.host_line(damaged).startswith("gpu-c: DAMAGED: /opt/genai/")
    unreadable = usage.host_usage(
        "gpu-d", {**report(b"x"), "content_b64": "", "error": "Permission denied"}
    )
    assert unreadable.state == "error" and "Permission denied" in unreadable.reason


def test_hosts_without_report_say_why() -> None:
    result = RunResult(
        run_id="r", playbook="usage", status="failed", rc=4, started_at="", finished_at="",
        duration_s=1.0, stats={"far": HostStats(unreachable=1), "bad": HostStats(failed=1)},
        failed_tasks=[
            FailedTask("far", "Look for the usage file", "Failed to connect to the host via ssh: refused\nmore", unreachable=True),
            FailedTask("bad", "Look for the usage file", "boom\ndetail"),
        ],
    )  # fmt: skip
    far = usage.missing_host("far", result)
    assert (far.state, far.reason) == (
        "unreachable",
        "Failed to connect to the host via ssh: refused",
    )
    bad = usage.missing_host("bad", result)
    assert (bad.state, bad.reason) == ("error", "Look for the usage file: boom")


# -- several hosts, the days asked for -----------------------------------------------------------
def read_of(*hosts: tuple[str, dict[str, Any] | None]) -> usage.UsageRead:
    found = [usage.host_usage(name, report(None if d is None else usage_file(d)))
             for name, d in hosts]  # fmt: skip
    return usage.UsageRead(found, checked_at=0.0, duration_s=1.5, run_id="run-1",
                           run_status="successful")  # fmt: skip


def two_hosts() -> usage.UsageRead:
    return read_of(
        ("gpu-a", {
            day(0, TODAY): {"genai": {"qwen3-micro": counts(3, 12, 18)}},
            day(2, TODAY): {"genai": {"qwen3-micro": counts(1, 4, 6, 1)}},
            day(7, TODAY): {"genai": {"qwen3-micro": counts(100, 100, 100)}},  # out of 7 days
        }),
        ("gpu-b", {
            day(0, TODAY): {"genai": {"qwen3-micro": counts(2, 8, 10)},
                            "batch": {"qwen3-mini": counts(5, 50, 70)}},
        }),
        ("gpu-c", None),
    )  # fmt: skip


def test_hosts_are_merged_per_day_client_and_model_within_the_days() -> None:
    summary = usage.summarise(two_hosts(), 7, TODAY)
    assert summary.days == [day(n, TODAY) for n in range(6, -1, -1)]
    assert summary.days[-1] == "2026-12-07" and summary.days[0] == "2026-12-01"
    rows = {(r.day, r.client, r.model): (r.counts, r.hosts) for r in summary.rows}
    assert rows == {
        ("2026-12-05", "genai", "qwen3-micro"): (usage.Counts(1, 4, 6, 1), ("gpu-a",)),
        ("2026-12-07", "batch", "qwen3-mini"): (usage.Counts(5, 50, 70), ("gpu-b",)),
        ("2026-12-07", "genai", "qwen3-micro"): (usage.Counts(5, 20, 28), ("gpu-a", "gpu-b")),
    }
    assert summary.total == usage.Counts(11, 74, 104, 1)
    micro = next(s for s in summary.series if s.model == "qwen3-micro")
    assert [d for d, _ in micro.per_day] == summary.days  # every day, zero on days without use
    assert [c.tokens for _, c in micro.per_day] == [0, 0, 0, 0, 10, 0, 48]
    assert micro.total == usage.Counts(6, 24, 34, 1)
    # eight days reach the day left out of seven
    assert usage.summarise(two_hosts(), 8, TODAY).total.requests == 111
    assert usage.summarise(two_hosts(), 1, TODAY).days == ["2026-12-07"]


def test_the_table_shows_every_host_day_client_and_model_with_totals() -> None:
    text = usage.render_table(usage.summarise(two_hosts(), 7, TODAY))
    assert text == (
        "OpenAI gateway usage, 2026-12-01 to 2026-12-07 (7 days, UTC)\n"
        "gpu-a: read /opt/genai/openai-gateway/usage/usage.json (updated 2026-12-07T22:00:00Z)\n"
        "gpu-b: read /opt/genai/openai-gateway/usage/usage.json (updated 2026-12-07T22:00:00Z)\n"
        "gpu-c: no usage yet (/opt/genai/openai-gateway/usage/usage.json does not exist)\n"
        "\n"
        "day         client  model        requests  prompt tokens  completion tokens  errors\n"
        "2026-12-05  genai   qwen3-micro         1              4                  6       1\n"
        "2026-12-07  batch   qwen3-mini          5             50                 70       0\n"
        "2026-12-07  genai   qwen3-micro         5             20                 28       0\n"
        "total                                  11             74                104       1\n"
        "\n"
        "per client and model, 7 days:\n"
        "  client  model        requests  prompt tokens  completion tokens  errors\n"
        "  batch   qwen3-mini          5             50                 70       0\n"
        "  genai   qwen3-micro         6             24                 34       1\n"
    )


def test_no_request_in_the_days_is_said() -> None:
    text = usage.render_table(usage.summarise(read_of(("gpu-c", None)), 7, TODAY))
    assert text.endswith(
        "gpu-c: no usage yet (/opt/genai/openai-gateway/usage/usage.json does not exist)\n\nno request in these days\n"
    )


def test_json_holds_the_window_hosts_rows_and_series() -> None:
    data = usage.summarise(two_hosts(), 7, TODAY).to_dict()
    assert data["window"] == {"from": "2026-12-01", "to": "2026-12-07", "days": 7}
    assert [(h["name"], h["state"]) for h in data["hosts"]] == [
        ("gpu-a", "ok"),
        ("gpu-b", "ok"),
        ("gpu-c", "empty"),
    ]
    assert data["rows"][-1] == {"day": "2026-12-07", "client": "genai", "model": "qwen3-micro",
                                "hosts": ["gpu-a", "gpu-b"], "requests": 5, "prompt_tokens": 20,
                                "completion_tokens": 28, "errors": 0, "tokens": 48}  # fmt: skip
    assert data["total"]["tokens"] == 178 and data["run_id"] == "run-1"
    mini = next(s for s in data["series"] if s["model"] == "qwen3-mini")
    assert mini["requests"] == 5 and len(mini["days"]) == 7 and mini["days"][-1]["tokens"] == 120
    json.dumps(data)  # serialisable as it is


# -- usage.yml run for real ----------------------------------------------------------------------
def write_inventory(tmp: Path) -> tuple[Path, dict[str, Any]]:
    """Local hosts: one with openai_gateway_root_dir set, one with only genai_root_dir (the role's
    default path), one damaged, one without a file; and an SSH host on a closed port."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    files = {
        "set": tmp / "gateway-set" / "usage" / "usage.json",
        "default": tmp / "genai-default" / "openai-gateway" / "usage" / "usage.json",
        "damaged": tmp / "gateway-damaged" / "usage" / "usage.json",
    }
    written = {
        "set": {day(0): {"genai": {"qwen3-micro": counts(3, 12, 18)}},
                day(1): {"notebooks": {"qwen3-mini": counts(2, 20, 40, 1)}}},
        "default": {day(0): {"genai": {"qwen3-micro": counts(4, 16, 24)}}},
    }  # fmt: skip
    for name, data in written.items():
        files[name].parent.mkdir(parents=True)
        files[name].write_bytes(usage_file(data))
    files["damaged"].parent.mkdir(parents=True)
    files["damaged"].write_text('{"version": 1, "days": {"')
    hosts = {
        "set": {**local, "openai_gateway_root_dir": str(tmp / "gateway-set")},
        "default": {**local, "genai_root_dir": str(tmp / "genai-default")},
        "damaged": {**local, "openai_gateway_root_dir": str(tmp / "gateway-damaged")},
        "none": {**local, "openai_gateway_root_dir": str(tmp / "nothing-here")},
        "far": {"ansible_connection": "ssh", "ansible_host": "127.0.0.1",
                "ansible_port": free_port(), "ansible_user": "nobody"},
    }  # fmt: skip
    inventory = {"all": {"children": {"gpu_hosts": {"hosts": hosts},
                                      "proxy_hosts": {"hosts": {"proxy": local}}}}}  # fmt: skip
    path = tmp / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path, written


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> tuple[usage.UsageRead, Path, Path]:
    tmp = tmp_path_factory.mktemp("usage")
    inventory, _ = write_inventory(tmp)
    driver = Driver(Project(ROOT), state_dir=tmp / "state")
    return usage.collect(driver, str(inventory)), tmp, inventory


def test_usage_yml_reads_every_gpu_host(collected: tuple[usage.UsageRead, Path, Path]) -> None:
    read, tmp, _ = collected
    hosts = {h.name: h for h in read.hosts}
    assert sorted(hosts) == ["damaged", "default", "far", "none", "set"]  # no proxy-only host
    assert hosts["set"].state == "ok"
    assert hosts["set"].path == str(tmp / "gateway-set" / "usage" / "usage.json")
    assert hosts["set"].days[day(1)]["notebooks"]["qwen3-mini"] == usage.Counts(2, 20, 40, 1)
    # the role's default, derived from genai_root_dir as the role does
    assert hosts["default"].path == str(
        tmp / "genai-default" / "openai-gateway" / "usage" / "usage.json"
    )
    assert hosts["default"].days[day(0)]["genai"]["qwen3-micro"] == usage.Counts(4, 16, 24)
    assert hosts["none"].state == "empty" and hosts["none"].reason.startswith("no usage yet")
    assert hosts["damaged"].state == "damaged"
    assert hosts["damaged"].reason.startswith(
        str(tmp / "gateway-damaged") + "/usage/usage.json is damaged: not JSON"
    )
    assert hosts["far"].state == "unreachable" and hosts["far"].reason
    assert read.error is None and read.run_id


def test_usage_yml_changes_nothing(collected: tuple[usage.UsageRead, Path, Path]) -> None:
    _, tmp, _ = collected
    assert not (tmp / "nothing-here").exists()  # a missing file is not created
    assert list((tmp / "gateway-set" / "usage").iterdir()) == [
        tmp / "gateway-set" / "usage" / "usage.json"
    ]
    assert (
        tmp / "gateway-damaged" / "usage" / "usage.json"
    ).read_text() == '{"version": 1, "days": {"'
    assert list((tmp / "state" / "usage" / "artifacts").iterdir())  # its own artifacts
    assert not (tmp / "state" / "artifacts").exists()  # none among the real runs'


def test_several_hosts_are_merged_in_the_cli_table_and_json(
    collected: tuple[usage.UsageRead, Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    _, tmp, inventory = collected
    args = ["--project", str(ROOT), "--state-dir", str(tmp / "cli-state"), "-i", str(inventory),
            "usage", "-l", "set:default:none"]  # fmt: skip
    assert main([*args, "--json"]) == 0  # every selected host read
    data = json.loads(capsys.readouterr().out)
    rows = {(r["day"], r["client"], r["model"]): r for r in data["rows"]}
    merged = rows[(day(0), "genai", "qwen3-micro")]
    assert (merged["requests"], merged["prompt_tokens"], merged["completion_tokens"]) == (7, 28, 42)
    assert merged["hosts"] == ["default", "set"]
    assert data["total"] == {"requests": 9, "prompt_tokens": 48, "completion_tokens": 82,
                             "errors": 1, "tokens": 130}  # fmt: skip
    # all hosts, one day: a damaged file and an unreachable host named, the others still
    # shown, exit code 1
    assert main([*args[:-2], "--days", "1"]) == 1
    out = capsys.readouterr().out
    assert (
        f"{day(0)}  genai   qwen3-micro         7             28                 42       0" in out
    )
    assert "notebooks" not in out  # yesterday is out of one day
    assert "none: no usage yet (" in out
    assert "damaged: DAMAGED: " in out and "far: UNREACHABLE: " in out


def test_days_out_of_range_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--project", str(ROOT), "usage", "--days", "0"]) == 2
    assert "--days must be 1 to 366" in capsys.readouterr().err


# -- the cache the panel reads through -----------------------------------------------------------
def test_many_readers_start_one_read_and_a_stale_value_is_served_while_reading() -> None:
    gate = threading.Event()
    calls: list[int] = []

    def compute() -> usage.UsageRead:
        calls.append(1)
        gate.wait(5)
        return usage.UsageRead([], time.time(), 0.0, run_id=f"run-{len(calls)}")

    cache = usage.UsageCache(0.0, compute)
    got: list[usage.UsageRead] = []
    readers = [threading.Thread(target=lambda: got.append(cache.get())) for _ in range(5)]
    for reader in readers:
        reader.start()
    time.sleep(0.2)
    gate.set()
    for reader in readers:
        reader.join(5)
    assert len(calls) == 1 and {r.run_id for r in got} == {"run-1"}
    gate.clear()
    assert cache.get().run_id == "run-1"  # stale (ttl 0): served, a read starts behind it
    assert cache.refreshing
    gate.set()
    assert cache.get(fresh=True).run_id in ("run-2", "run-3")


def test_a_failed_read_is_shown_not_raised() -> None:
    def compute() -> usage.UsageRead:
        raise RuntimeError("inventory gone")

    assert usage.UsageCache(30.0, compute).get().error == "RuntimeError: inventory gone"


# -- the panel -----------------------------------------------------------------------------------
@pytest.fixture
def logged_in(tmp_path: Path) -> Iterator[TestClient]:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(yaml.safe_dump({"all": {"children": {"gpu_hosts": {"hosts": {}}}}}))
    config = PanelConfig.create(Project(ROOT), tmp_path / "state", tmp_path / "secrets",
                                inventory=str(inventory))  # fmt: skip
    set_password(config.password_file, "admin", PASSWORD, rounds=4)
    with TestClient(create_app(config), follow_redirects=False) as client:
        client.app.state.usage_cache.compute = two_hosts_today  # type: ignore[attr-defined]
        assert client.get("/usage").status_code == 303  # login first
        assert client.get("/api/usage").status_code == 401
        page = client.get("/login").text
        token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
        client.post("/login", data={"username": "admin", "password": PASSWORD,
                                    "csrf_token": token, "next": "/"})  # fmt: skip
        yield client


def two_hosts_today() -> usage.UsageRead:
    read = two_hosts()
    shift = usage.utc_today() - TODAY  # the same usage, ending today
    for host in read.hosts:
        host.days = {
            (datetime.date.fromisoformat(d) + shift).isoformat(): c for d, c in host.days.items()
        }
    return read


def test_the_usage_page_shows_a_chart_per_client_and_model(logged_in: TestClient) -> None:
    page = logged_in.get("/usage").text
    assert '<a href="/usage" aria-current="page">Usage</a>' in page
    assert page.count('<svg class="usage-chart"') == 2
    micro = page.split('data-client="genai" data-model="qwen3-micro" aria-label=', 1)[1].split(
        "</svg>", 1
    )[0]
    assert micro.count('<g class="bar"') == 7
    today_bar = micro.split(f'data-day="{day(0)}"', 1)[1].split("</g>", 1)[0]
    assert 'data-requests="5" data-prompt-tokens="20" data-completion-tokens="28"' in today_bar
    assert (
        '<text class="tokens"' in today_bar
        and ">48</text>" in today_bar
        and ">5 req</text>" in today_bar
    )
    empty_bar = micro.split(f'data-day="{day(1)}"', 1)[1].split("</g>", 1)[0]
    assert 'class="tokens"' not in empty_bar  # a day without use has no number
    assert f">{day(0)[5:]}</text>" in micro  # the day under its bar
    row = page.split('<tr data-client="genai" data-model="qwen3-micro">', 1)[1].split("</tr>", 1)[0]
    assert '<td class="requests">6</td>' in row and '<td class="prompt-tokens">24</td>' in row
    assert '<td class="completion-tokens">34</td>' in row and '<td class="errors bad">1</td>' in row
    assert 'data-usage-host="gpu-c" data-state="empty"' in page
    assert "<script" not in page.split("<main>", 1)[1]  # the charts need no script


def test_the_usage_page_takes_its_days_and_serves_json(logged_in: TestClient) -> None:
    page = logged_in.get("/usage", params={"days": "1"}).text
    assert page.count('<g class="bar"') == 2  # one day per chart
    assert f"{day(0)} to {day(0)} (1 day, UTC)" in page
    assert logged_in.get("/usage", params={"days": "nonsense"}).status_code == 200
    data = logged_in.get("/api/usage", params={"days": "3"}).json()
    assert data["window"]["days"] == 3 and data["total"]["requests"] == 11
    runs = logged_in.app.state.usage_cache.runs  # type: ignore[attr-defined]
    token = page.split('name="csrf_token" value="', 1)[1].split('"', 1)[0]
    assert logged_in.post("/usage/refresh", data={"days": "1"}).status_code == 403  # no CSRF
    done = logged_in.post("/usage/refresh", data={"days": "1", "csrf_token": token})
    assert done.status_code == 303 and done.headers["location"] == "/usage?days=1"
    assert logged_in.app.state.usage_cache.runs == runs + 1  # type: ignore[attr-defined]


def test_the_stack_page_gives_the_gateway_its_line(
    logged_in: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from genai_stack.panel import context

    gateway = stack.Service(name="openai-gateway", kind="openai_gateway", host="gpu-a", port=5100,
                            bind_address="127.0.0.1", backend_url="http://127.0.0.1:5100",
                            health_path="/health", ready_path="/health", auth="bearer",
                            hostname="api.example.org")  # fmt: skip
    view = stack.HostView("gpu-a", ["gpu_hosts"], "local", "127.0.0.1", True, services=[gateway])
    # the Stack page's model as stack.load gives it
    monkeypatch.setattr(context.Cached, "get", lambda self: {"hosts": [view], "error": None})
    row = logged_in.get("/").text.split('data-gateway="gpu-a/openai-gateway"', 1)[1]
    row = row.split("</tr>", 1)[0]
    assert "OpenAI gateway <small>openai_gateway</small>" in row
    assert '<a href="/usage" class="gateway-usage">usage per client and model</a>' in row
    assert "OpenAI API at <code>http://127.0.0.1:5100/v1</code>" in row
    assert "api.example.org<br><small><code>/v1</code> behind the reverse proxy" in row
    assert 'data-health="gpu-a/openai-gateway"' in row  # its /health, read by status.yml
    assert "client" not in row.split("gateway-line", 1)[1].split("<a ", 1)[0]
    # a record that carries its clients and models shows how many
    record = SimpleNamespace(**{**gateway.to_dict(), "clients": ("genai", "batch"),
                                "served_model_names": ("qwen3-micro",)})  # fmt: skip
    view.services[0] = record  # type: ignore[call-overload]
    row = logged_in.get("/").text.split('data-gateway="gpu-a/openai-gateway"', 1)[1]
    assert '2 clients · 1 model · <a href="/usage"' in row.split("</tr>", 1)[0]
