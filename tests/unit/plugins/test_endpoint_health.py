"""Tests for the endpoint_health module, run through AnsibleModule against 127.0.0.1."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from ansible_collections.myia.genai_stack.plugins.modules import endpoint_health
from tests.fake_http import FakeHTTP, Reply, Request, free_port
from tests.unit.plugins.conftest import RunModule

TOKEN = "module-T0ken-abcdef"
QUERY_TOKEN = "$2b$12$abcdefghijklmnopqrstuv"  # a bcrypt-hash-shaped ComfyUI token


def answer(request: Request) -> Reply:
    """/ok  /sleep/<ms>  /fail-first/<n>  /never  /v1/models (bearer)  /system_stats (?token=)"""
    path = request.path
    if path == "/ok":
        return Reply(200, {"status": "ok"})
    if path.startswith("/sleep/"):
        return Reply(200, {"slept": True}, delay=int(path.rsplit("/", 1)[1]) / 1000.0)
    if path.startswith("/fail-first/"):
        ready = request.count > int(path.rsplit("/", 1)[1])
        return Reply(200 if ready else 503, {"ready": ready})
    if path == "/never":
        return Reply(503, {"error": "engine dead"})
    if path == "/v1/models":
        if request.headers.get("Authorization") == f"Bearer {TOKEN}":
            return Reply(200, {"object": "list", "data": [{"id": "qwen3-8b"}]})
        return Reply(401, {"error": "Unauthorized", "got": request.headers.get("Authorization")})
    if path == "/system_stats":
        if request.query.get("token") == QUERY_TOKEN:
            return Reply(200, {"devices": [{"type": "cuda", "index": 0}]})
        return Reply(401, {"error": "Authentication required."})
    return Reply(404, {"detail": "Not Found"})


@pytest.fixture
def server() -> Iterator[FakeHTTP]:
    with FakeHTTP(answer) as srv:
        yield srv


@pytest.fixture
def closed_port() -> int:
    return free_port()


def test_all_healthy(server: FakeHTTP, run_module: RunModule) -> None:
    code, result, _ = run_module(
        endpoint_health,
        {
            "endpoints": [
                {
                    "name": "ok",
                    "url": server.base + "/ok",
                    "json_path": "status",
                    "json_value": "ok",
                },
                {
                    "name": "vllm",
                    "url": server.base + "/v1/models",
                    "auth": {"type": "bearer", "token": TOKEN},
                    "json_contains": {"path": "data", "value": {"id": "qwen3-8b"}},
                },
                {
                    "name": "comfyui",
                    "url": server.base + "/system_stats",
                    "auth": {"type": "query", "value": QUERY_TOKEN},
                    "json_path": "devices.0.type",
                    "json_value": "cuda",
                },
                {"url": server.base + "/ok"},
            ]
        },
    )
    assert code == 0
    assert result["changed"] is False
    assert not result.get("failed")
    assert result["failed_endpoints"] == []
    assert result["summary"]["total"] == 4
    assert result["summary"]["ok"] == 4
    assert result["summary"]["failed"] == 0
    names = [e["name"] for e in result["endpoints"]]
    assert names == ["ok", "vllm", "comfyui", server.base + "/ok"]
    assert result["endpoints"][2]["url"] == server.base + "/system_stats?token=***"


def test_fail_message_lists_every_failed_endpoint(
    server: FakeHTTP,
    closed_port: int,
    run_module: RunModule,
) -> None:
    code, result, raw = run_module(
        endpoint_health,
        {
            "endpoints": [
                {"name": "fine", "url": server.base + "/ok"},
                {"name": "dead", "url": server.base + "/never"},
                {"name": "down", "url": f"http://127.0.0.1:{closed_port}/health"},
                {
                    "name": "wrong-token",
                    "url": server.base + "/v1/models",
                    "auth": {"type": "bearer", "token": "old-" + TOKEN},
                },
                {
                    "name": "wrong-model",
                    "url": server.base + "/v1/models",
                    "auth": {"type": "bearer", "token": TOKEN},
                    "json_path": "data.0.id",
                    "json_value": "qwen3-32b",
                },
            ],
            "retries": 1,
            "delay": 0.01,
        },
    )
    assert code == 1
    assert result["failed"] is True
    assert result["failed_endpoints"] == ["dead", "down", "wrong-token", "wrong-model"]
    msg = result["msg"]
    assert msg.startswith("4 of 5 endpoints failed: ")
    assert f"dead ({server.base}/never): status=503, error=status 503, expected 200" in msg
    assert f"down (http://127.0.0.1:{closed_port}/health): status=none, error=connection" in msg
    assert f"wrong-token ({server.base}/v1/models): status=401, error=status 401" in msg
    assert "wrong-model (" in msg and 'is "qwen3-8b", expected "qwen3-32b"' in msg
    assert "fine (" not in msg
    assert result["summary"] == {**result["summary"], "total": 5, "ok": 1, "failed": 4}
    assert [e["attempts"] for e in result["endpoints"]] == [1, 2, 2, 2, 2]
    assert len(result["endpoints"]) == 5
    assert TOKEN not in raw


def test_fail_on_error_false_reports_without_failing(
    server: FakeHTTP, run_module: RunModule
) -> None:
    code, result, _ = run_module(
        endpoint_health,
        {
            "endpoints": [
                {"name": "ok", "url": server.base + "/ok"},
                {"name": "dead", "url": server.base + "/never"},
            ],
            "fail_on_error": False,
        },
    )
    assert code == 0
    assert not result.get("failed")
    assert result["failed_endpoints"] == ["dead"]
    assert result["endpoints"][1]["status"] == 503


def test_check_mode_runs_the_checks(server: FakeHTTP, run_module: RunModule) -> None:
    code, result, _ = run_module(
        endpoint_health,
        {"endpoints": [{"name": "ok", "url": server.base + "/ok"}]},
        check=True,
    )
    assert code == 0
    assert result["changed"] is False
    assert not result.get("skipped")
    assert result["endpoints"][0]["ok"] is True
    assert server.hits["/ok"] == 1


def test_defaults_and_overrides_and_deadline(server: FakeHTTP, run_module: RunModule) -> None:
    code, result, _ = run_module(
        endpoint_health,
        {
            "endpoints": [
                {"name": "loading", "url": server.base + "/fail-first/3"},
                {"name": "no-retry", "url": server.base + "/fail-first/1", "deadline": 0},
                {"name": "dead", "url": server.base + "/never", "deadline": 0.8},
            ],
            "deadline": 5,
            "delay": 0.05,
            "max_delay": 0.1,
            "fail_on_error": False,
        },
    )
    assert code == 0
    loading, no_retry, dead = result["endpoints"]
    assert loading["ok"] and loading["attempts"] == 4
    assert not no_retry["ok"] and no_retry["attempts"] == 1
    assert not dead["ok"] and 0.8 <= dead["elapsed_s"] < 1.4
    assert result["summary"]["elapsed_s"] < 2


def test_concurrent_through_the_module(server: FakeHTTP, run_module: RunModule) -> None:
    endpoints = [{"name": f"svc{i}", "url": f"{server.base}/sleep/200"} for i in range(20)]
    started = time.monotonic()
    code, result, _ = run_module(endpoint_health, {"endpoints": endpoints, "max_workers": 20})
    assert code == 0
    assert time.monotonic() - started < 2.0
    assert result["summary"]["ok"] == 20


def test_secrets_never_in_output(server: FakeHTTP, run_module: RunModule) -> None:
    code, _, raw = run_module(
        endpoint_health,
        {
            "endpoints": [
                {
                    "name": "comfy-old",
                    "url": server.base + "/system_stats",
                    "auth": {"type": "query", "value": "wrong-" + QUERY_TOKEN},
                },
                {
                    "name": "vllm-old",
                    "url": server.base + "/v1/models",
                    "headers": {"Authorization": f"Bearer {TOKEN}x"},
                },
                {
                    "name": "vllm-old2",
                    "url": server.base + "/v1/models",
                    "auth": {"type": "bearer", "token": "old-" + TOKEN},
                },
            ]
        },
    )
    assert code == 1
    assert QUERY_TOKEN not in raw
    assert TOKEN not in raw
    assert "token=***" in raw


def test_auth_spec_is_validated(run_module: RunModule) -> None:
    code, result, _ = run_module(
        endpoint_health,
        {"endpoints": [{"url": "http://127.0.0.1:9/", "auth": {"type": "bearer"}}]},
    )
    assert code == 1
    assert "token" in result["msg"]
    code, result, _ = run_module(
        endpoint_health,
        {"endpoints": [{"url": "http://127.0.0.1:9/", "auth": {"type": "digest", "token": "x"}}]},
    )
    assert code == 1
    assert "bearer, basic, query" in result["msg"]


def test_documentation_matches_argument_spec() -> None:
    import yaml

    doc = yaml.safe_load(endpoint_health.DOCUMENTATION)
    yaml.safe_load(endpoint_health.EXAMPLES)
    ret = yaml.safe_load(endpoint_health.RETURN)
    spec = endpoint_health.ARGUMENT_SPEC
    assert set(doc["options"]) == set(spec)
    sub_doc = doc["options"]["endpoints"]["suboptions"]
    assert set(sub_doc) == set(spec["endpoints"]["options"])
    assert set(sub_doc["auth"]["suboptions"]) == set(endpoint_health.AUTH_SPEC)
    for name, option in spec.items():
        assert doc["options"][name]["type"] == option["type"], name
        assert doc["options"][name].get("default") == option.get("default"), name
    assert set(ret) == {"endpoints", "summary", "failed_endpoints"}
