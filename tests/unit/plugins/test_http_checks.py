"""Tests for plugins/module_utils/http_checks.py against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import base64
import email.message
import http.client
import json
import os
import shutil
import ssl
import subprocess
import threading
import time
import types
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.myia.genai_stack.plugins.module_utils import http_checks
from ansible_collections.myia.genai_stack.plugins.module_utils.http_checks import (
    CheckDefinitionError,
    EndpointCheck,
    JsonPathError,
    check_from_dict,
    failure_message,
    json_contains,
    json_equals,
    mask_url,
    resolve_path,
    run_check,
    run_checks,
    summarize,
)
from tests.fake_http import FakeHTTP, Reply, Request, free_port

TOKEN = "s3cr3t-Token-value"
USER = "forge"
PASSWORD = "pa55-w0rd-xyz"
MODELS = {
    "object": "list",
    "data": [
        {"id": "qwen3-8b", "object": "model", "owned_by": "vllm", "max_model_len": 32768},
        {"id": "qwen3-1.7b", "object": "model", "owned_by": "vllm", "max_model_len": 8192},
    ],
}


def answer(request: Request) -> Reply:
    """Behaviour per path:

    /ok  /sleep/<ms>  /flap (500 on odd hits)  /fail-first/<n> (503 n times, then 200)
    /never (503)  /hang (3 s)  /bearer  /basic  /query (401 unless the right credential)
    /echo (returns the request's auth header and query)  /models (vLLM /v1/models)
    /text  /long (1000 characters)  /redirect (302)  /post (echoes the JSON body)
    """
    path, query, count = request.path, request.query, request.count
    auth = request.headers.get("Authorization", "")
    if request.method == "POST":
        return Reply(
            200,
            {
                "method": "POST",
                "content_type": request.headers.get("Content-Type"),
                "received": request.body.decode(),
            },
        )
    if path == "/ok":
        return Reply(200, {"status": "ok"})
    if path.startswith("/sleep/"):
        return Reply(200, {"slept": True}, delay=int(path.rsplit("/", 1)[1]) / 1000.0)
    if path == "/flap":
        return Reply(500 if count % 2 else 200, {"count": count})
    if path.startswith("/fail-first/"):
        if count <= int(path.rsplit("/", 1)[1]):
            return Reply(503, {"error": "loading"})
        return Reply(200, {"ready": True})
    if path == "/never":
        return Reply(503, {"error": "engine dead"})
    if path == "/hang":
        return Reply(200, {}, delay=3)
    if path == "/bearer":
        scheme, _, value = auth.partition(" ")
        if scheme.lower() == "bearer" and value == TOKEN:
            return Reply(200, MODELS)
        return Reply(401, {"error": "Unauthorized"})
    if path == "/basic":
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        if auth == expected:
            return Reply(200, [{"model_name": "sd_xl_turbo"}])
        if not auth:
            return Reply(401, {"detail": "Not authenticated"}, {"WWW-Authenticate": "Basic"})
        return Reply(401, {"detail": "Incorrect username or password"})
    if path == "/query":
        if query.get("token") == TOKEN:
            return Reply(200, {"system": {"os": "posix"}, "devices": [{"type": "cuda"}]})
        return Reply(401, {"error": "Authentication required."})
    if path == "/echo":
        return Reply(401, {"you_sent": auth, "query": query})
    if path == "/models":
        return Reply(200, MODELS)
    if path == "/text":
        return Reply(200, "vllm_num_requests_running 0\nnot json")
    if path == "/long":
        return Reply(200, "x" * 1000)
    if path == "/redirect":
        return Reply(302, "", {"Location": "/login"})
    return Reply(404, {"detail": "Not Found"})


@pytest.fixture
def server() -> Iterator[FakeHTTP]:
    with FakeHTTP(answer) as srv:
        yield srv


@pytest.fixture
def tls_server(tmp_path: Path) -> Iterator[tuple[FakeHTTP, Path]]:
    """The scripted server over HTTPS with a self-signed certificate for 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
            "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with FakeHTTP(answer, tls=context) as srv:
        yield srv, cert


@pytest.fixture
def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (connection refused)."""
    return free_port()


def check(name: str, url: str, **kwargs: Any) -> EndpointCheck:
    kwargs.setdefault("timeout", 5.0)
    kwargs.setdefault("delay", 0.05)
    return EndpointCheck(name=name, url=url, **kwargs)


def assert_no_secret(*texts: Any) -> None:
    b64 = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    for text in texts:
        blob = json.dumps(text, default=str)
        for secret in (TOKEN, PASSWORD, b64):
            assert secret not in blob


# --------------------------------------------------------------------------- basics


def test_healthy_endpoint(server: FakeHTTP) -> None:
    (result,) = run_checks([check("ok", server.base + "/ok")])
    assert result.ok
    assert result.status == 200
    assert result.attempts == 1
    assert result.error is None
    assert result.latency_ms is not None and result.latency_ms >= 0
    assert result.body_snippet == '{"status": "ok"}'
    assert set(result.to_dict()) == {
        "name",
        "url",
        "ok",
        "status",
        "latency_ms",
        "attempts",
        "elapsed_s",
        "error",
        "body_snippet",
    }


def test_checks_run_concurrently(server: FakeHTTP) -> None:
    checks = [check(f"svc{i}", f"{server.base}/sleep/200") for i in range(20)]
    started = time.monotonic()
    results = run_checks(checks, max_workers=20)
    elapsed = time.monotonic() - started
    assert all(r.ok for r in results)
    assert [r.name for r in results] == [f"svc{i}" for i in range(20)]
    assert all(r.latency_ms is not None and r.latency_ms >= 190 for r in results)
    assert elapsed < 2.0, f"20 x 200 ms took {elapsed:.2f}s: checks are not concurrent"


def test_max_workers_bounds_concurrency(server: FakeHTTP) -> None:
    checks = [check(f"svc{i}", f"{server.base}/sleep/200") for i in range(4)]
    started = time.monotonic()
    results = run_checks(checks, max_workers=1)
    assert all(r.ok for r in results)
    assert time.monotonic() - started >= 0.8


def test_empty_list() -> None:
    assert run_checks([]) == []


def test_unexpected_status_404(server: FakeHTTP) -> None:
    (result,) = run_checks([check("missing", server.base + "/nope")])
    assert not result.ok
    assert result.status == 404
    assert result.error == "status 404, expected 200"
    assert "Not Found" in result.body_snippet


def test_slow_endpoint_times_out(server: FakeHTTP) -> None:
    (result,) = run_checks([check("slow", server.base + "/sleep/300", timeout=0.1)])
    assert not result.ok
    assert result.status is None
    assert result.error is not None and "timed out" in result.error


def test_connection_refused(closed_port: int) -> None:
    (result,) = run_checks([check("down", f"http://127.0.0.1:{closed_port}/health")])
    assert not result.ok
    assert result.status is None
    assert result.error == "connection refused"
    assert result.attempts == 1


def test_redirect_is_not_followed(server: FakeHTTP) -> None:
    bad, good = run_checks(
        [
            check("login", server.base + "/redirect"),
            check("login-expected", server.base + "/redirect", status=[302]),
        ]
    )
    assert not bad.ok and bad.status == 302
    assert good.ok and good.status == 302
    assert server.hits.get("/login") is None


def test_post_json_body(server: FakeHTTP) -> None:
    (result,) = run_checks(
        [
            check(
                "post",
                server.base + "/post",
                method="post",
                body={"prompt": "hi"},
                json_path="content_type",
                json_value="application/json",
            )
        ]
    )
    assert result.ok, result.error
    assert '\\"prompt\\": \\"hi\\"' in result.body_snippet


def test_tls_validation(tls_server: tuple[FakeHTTP, Path]) -> None:
    srv, cert = tls_server
    url = f"https://127.0.0.1:{srv.port}/ok"
    untrusted, unchecked, trusted = run_checks(
        [
            check("untrusted", url),
            check("unchecked", url, validate_certs=False),
            check("trusted", url, ca_path=str(cert)),
        ]
    )
    assert not untrusted.ok
    assert untrusted.status is None
    assert untrusted.error is not None and untrusted.error.startswith("TLS error: ")
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.error
    assert unchecked.ok, unchecked.error
    assert trusted.ok, trusted.error


def test_missing_ca_file_is_reported(tmp_path: Path) -> None:
    (result,) = run_checks([check("ca", "https://127.0.0.1:9/", ca_path=str(tmp_path / "no"))])
    assert not result.ok
    assert result.attempts == 0
    assert result.error is not None and result.error.startswith("invalid check:")


# --------------------------------------------------------------------------- retries


def test_retries_until_200_after_503s(server: FakeHTTP) -> None:
    (result,) = run_checks([check("loading", server.base + "/fail-first/3", retries=5)])
    assert result.ok, result.error
    assert result.attempts == 4
    assert server.hits["/fail-first/3"] == 4
    assert result.status == 200


def test_retries_exhausted(server: FakeHTTP) -> None:
    (result,) = run_checks([check("loading", server.base + "/fail-first/5", retries=2)])
    assert not result.ok
    assert result.attempts == 3
    assert result.status == 503
    assert result.error == "status 503, expected 200 (after 3 attempts)"


def test_flapping_endpoint(server: FakeHTTP) -> None:
    first = run_check(check("flap", server.base + "/flap"))
    assert not first.ok and first.status == 500
    second = run_check(check("flap", server.base + "/flap"))
    assert second.ok
    third = run_check(check("flap", server.base + "/flap", retries=1))
    assert third.ok and third.attempts == 2


def test_deadline_respected_for_never_ready(server: FakeHTTP) -> None:
    started = time.monotonic()
    (result,) = run_checks(
        [check("dead", server.base + "/never", deadline=1.0, delay=0.1, max_delay=0.3)]
    )
    elapsed = time.monotonic() - started
    assert not result.ok
    assert result.status == 503
    assert 1.0 <= elapsed < 1.6
    assert 1.0 <= result.elapsed_s < 1.6
    # 0, .1, .3, .6, .9, then the last attempt at the deadline
    assert 4 <= result.attempts <= 8
    assert result.error is not None and result.error.startswith("status 503, expected 200")


def test_deadline_respected_when_connection_refused(closed_port: int) -> None:
    (result,) = run_checks(
        [check("down", f"http://127.0.0.1:{closed_port}/", deadline=0.7, delay=0.1)]
    )
    assert not result.ok
    assert 0.7 <= result.elapsed_s < 1.2
    assert result.attempts >= 3
    assert result.error is not None and result.error.startswith("connection refused (after ")


def test_deadline_shortens_attempt_timeout(server: FakeHTTP) -> None:
    (result,) = run_checks([check("hang", server.base + "/hang", timeout=30, deadline=0.6)])
    assert not result.ok
    assert result.elapsed_s < 1.3
    assert result.error is not None and "timed out" in result.error


def test_deadline_waits_for_readiness(server: FakeHTTP) -> None:
    (result,) = run_checks(
        [check("loading", server.base + "/fail-first/4", deadline=10, delay=0.05, max_delay=0.1)]
    )
    assert result.ok
    assert result.attempts == 5
    assert result.elapsed_s < 2


def test_exponential_backoff_delays(closed_port: int) -> None:
    pauses: list[float] = []
    result = run_check(
        EndpointCheck(
            name="down",
            url=f"http://127.0.0.1:{closed_port}/",
            retries=5,
            delay=0.5,
            backoff_factor=2,
            max_delay=2,
        ),
        sleep=pauses.append,
    )
    assert result.attempts == 6
    assert pauses == [0.5, 1.0, 2.0, 2.0, 2.0]


def test_last_pause_is_cut_at_the_deadline(closed_port: int) -> None:
    now = [0.0]
    pauses: list[float] = []

    def sleep(seconds: float) -> None:
        pauses.append(round(seconds, 6))
        now[0] += seconds

    result = run_check(
        EndpointCheck(
            name="down", url=f"http://127.0.0.1:{closed_port}/", deadline=5, delay=1, max_delay=8
        ),
        clock=lambda: now[0],
        sleep=sleep,
    )
    assert pauses == [1.0, 2.0, 2.0]  # 0 -> 1 -> 3 -> 5 (cut from 4), last attempt at 5
    assert result.attempts == 4


# --------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    ("path", "auth"),
    [
        ("/bearer", {"type": "bearer", "token": TOKEN}),
        ("/basic", {"type": "basic", "username": USER, "password": PASSWORD}),
        ("/query", {"type": "query", "value": TOKEN}),
        ("/query", {"type": "query", "param": "token", "value": TOKEN}),
    ],
)
def test_auth_forms(server: FakeHTTP, path: str, auth: dict[str, str]) -> None:
    wrong = dict(auth)
    secret_key = {"bearer": "token", "basic": "password", "query": "value"}[auth["type"]]
    wrong[secret_key] = "wrong-" + auth[secret_key]
    good, bad, none = run_checks(
        [
            check("good", server.base + path, auth=auth),
            check("bad", server.base + path, auth=wrong),
            check("none", server.base + path),
        ]
    )
    assert good.ok, good.error
    for result in (bad, none):
        assert not result.ok
        assert result.status == 401
        assert result.error == "status 401, expected 200"
    assert_no_secret(good.to_dict(), bad.to_dict(), none.to_dict())
    if auth["type"] == "query":
        assert good.url == server.base + path + "?token=***"
        assert bad.url == server.base + path + "?token=***"


def test_401_expected_is_healthy(server: FakeHTTP) -> None:
    (result,) = run_checks([check("rejects", server.base + "/bearer", status=[401])])
    assert result.ok
    assert result.status == 401


def test_a_refusal_check_against_an_open_endpoint_fails(server: FakeHTTP) -> None:
    """What proves an old or missing credential is refused: a 2xx must never pass for [401]."""
    (opened,) = run_checks([check("rejects", server.base + "/ok", status=[401])])
    assert not opened.ok and opened.status == 200
    assert opened.error == "status 200, expected 401"
    (accepted,) = run_checks(
        [
            check(
                "rejects",
                server.base + "/bearer",
                status=[401],
                auth={"type": "bearer", "token": TOKEN},
            )
        ]
    )
    assert not accepted.ok and accepted.status == 200


def test_bearer_header_override(server: FakeHTTP) -> None:
    (result,) = run_checks(
        [
            check(
                "b",
                server.base + "/bearer",
                headers={"Authorization": "Bearer nope"},
                auth={"type": "bearer", "token": TOKEN},
            )
        ]
    )
    assert result.ok


def test_secrets_masked_in_url_error_and_body(server: FakeHTTP) -> None:
    results = run_checks(
        [
            check("q", server.base + "/echo", auth={"type": "query", "value": TOKEN}),
            check("b", server.base + "/echo", auth={"type": "bearer", "token": TOKEN}),
            check(
                "basic",
                server.base + "/echo",
                auth={"type": "basic", "username": USER, "password": PASSWORD},
            ),
            check("h", server.base + "/echo", headers={"X-Api-Key": TOKEN}),
            check("inline", server.base + "/echo?token=" + TOKEN + "&page=1"),
            check("userinfo", f"http://{USER}:{PASSWORD}@127.0.0.1:{server.port}/echo"),
        ]
    )
    for result in results:
        assert not result.ok and result.status == 401
        assert "***" in result.body_snippet or result.name in ("h", "userinfo")
    assert_no_secret([r.to_dict() for r in results], failure_message(results))
    by_name = {r.name: r for r in results}
    assert by_name["q"].url.endswith("/echo?token=***")
    assert by_name["inline"].url.endswith("/echo?token=***&page=1")
    assert by_name["userinfo"].url.startswith("http://***@127.0.0.1:")
    assert '"you_sent": "Bearer ***"' in by_name["b"].body_snippet


def test_secret_masked_in_timeout_error(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/x?token={TOKEN}"
    result = run_check(check("q", url, auth={"type": "query", "param": "token", "value": TOKEN}))
    assert result.error == "connection refused"
    assert result.url.endswith("?token=***")
    assert_no_secret(result.to_dict())


def test_body_snippet_truncated(server: FakeHTTP) -> None:
    checks = [check(f"s{i}", server.base + "/models", body_contains="absent") for i in range(1)]
    (result,) = run_checks(checks)
    assert not result.ok
    assert len(result.body_snippet) <= 300


# --------------------------------------------------------------------------- body checks


def test_json_path_value(server: FakeHTTP) -> None:
    ok, wrong, missing, index_error, exists, number = run_checks(
        [
            check("ok", server.base + "/models", json_path="data.0.id", json_value="qwen3-8b"),
            check("wrong", server.base + "/models", json_path="data.0.id", json_value="qwen3-32b"),
            check("missing", server.base + "/models", json_path="data.0.nope"),
            check("index", server.base + "/models", json_path="data.5.id"),
            check("exists", server.base + "/models", json_path="data.-1.id"),
            check(
                "num", server.base + "/models", json_path="data.1.max_model_len", json_value="8192"
            ),
        ]
    )
    assert ok.ok, ok.error
    assert not wrong.ok
    assert wrong.status == 200
    assert wrong.error == 'json_path \'data.0.id\' is "qwen3-8b", expected "qwen3-32b"'
    assert not missing.ok
    assert missing.error == "json_path 'data.0.nope' not found: 'nope' at data.0: no such key"
    assert not index_error.ok
    assert index_error.error is not None and "index out of range (length 2)" in index_error.error
    assert exists.ok
    assert number.ok


def test_wrong_json_value_is_retried(server: FakeHTTP) -> None:
    (result,) = run_checks(
        [
            check(
                "wrong",
                server.base + "/models",
                json_path="object",
                json_value="dict",
                retries=2,
            )
        ]
    )
    assert not result.ok
    assert result.attempts == 3
    assert result.error == 'json_path \'object\' is "list", expected "dict" (after 3 attempts)'


def test_json_contains(server: FakeHTTP) -> None:
    results = run_checks(
        [
            check(
                "subset",
                server.base + "/models",
                json_contains={"path": "data", "value": {"id": "qwen3-8b"}},
            ),
            check(
                "scalar",
                server.base + "/models",
                json_contains={"path": "data", "value": "qwen3-1.7b"},
            ),
            check(
                "absent",
                server.base + "/models",
                json_contains={"path": "data", "value": {"id": "x"}},
            ),
            check(
                "str",
                server.base + "/models",
                json_contains={"path": "data.0.id", "value": "qwen3"},
            ),
            check("key", server.base + "/models", json_contains={"path": "", "value": "object"}),
        ]
    )
    by_name = {r.name: r for r in results}
    assert by_name["subset"].ok
    assert by_name["scalar"].ok
    assert not by_name["absent"].ok
    assert by_name["absent"].error is not None
    assert 'does not contain {"id": "x"}' in by_name["absent"].error
    assert by_name["str"].ok
    assert by_name["key"].ok


def test_body_contains_and_non_json(server: FakeHTTP) -> None:
    found, absent, not_json = run_checks(
        [
            check("found", server.base + "/text", body_contains="vllm_num_requests_running"),
            check("absent", server.base + "/text", body_contains="vllm:gpu_cache"),
            check("json", server.base + "/text", json_path="x"),
        ]
    )
    assert found.ok
    assert not absent.ok and absent.error == 'body does not contain "vllm:gpu_cache"'
    assert not not_json.ok and not_json.error == "body is not valid JSON"


# --------------------------------------------------------------------------- helpers


def test_resolve_path() -> None:
    doc = {"data": [{"id": "a"}, {"id": "b"}], "n": None}
    assert resolve_path(doc, "") is doc
    assert resolve_path(doc, None) is doc
    assert resolve_path(doc, "data.1.id") == "b"
    assert resolve_path(doc, "data.-2.id") == "a"
    assert resolve_path([[1, 2]], "0.1") == 2
    assert resolve_path({"0": "zero"}, "0") == "zero"
    with pytest.raises(JsonPathError, match="not a list index"):
        resolve_path(doc, "data.x")
    with pytest.raises(JsonPathError, match="cannot index into null"):
        resolve_path(doc, "n.x")


def test_json_equals_and_contains() -> None:
    assert json_equals(200, "200")
    assert json_equals(True, "true")
    assert json_equals(None, "null")
    assert not json_equals(True, 1)
    assert not json_equals(1, True)
    assert json_equals(1.0, 1)
    assert json_contains(["a", "b"], "b")
    assert json_contains([{"id": "a", "n": 1}], {"id": "a"})
    assert not json_contains([{"id": "a", "n": 1}], {"id": "a", "n": 2})
    assert json_contains([{"id": "a"}], "a")
    assert json_contains("hello world", "lo w")
    assert json_contains({"a": 1, "b": 2}, {"b": 2})
    assert json_contains({"a": 1}, "a")
    assert not json_contains(5, 5)


def test_mask_url() -> None:
    assert mask_url("http://h/p?token=abc&x=1") == "http://h/p?token=***&x=1"
    assert mask_url("http://h/p?sig=abc", ("sig",)) == "http://h/p?sig=***"
    assert mask_url("https://u:p@h:8443/p") == "https://***@h:8443/p"
    assert mask_url("http://h/p") == "http://h/p"


def test_check_from_dict_applies_defaults() -> None:
    built = check_from_dict(
        {"url": "http://127.0.0.1:1/x?token=abc", "retries": None, "status": ["200", 204]},
        {"retries": 3, "timeout": 2.5, "validate_certs": False},
    )
    assert built.name == "http://127.0.0.1:1/x?token=***"
    assert built.retries == 3
    assert built.timeout == 2.5
    assert built.validate_certs is False
    assert built.status == [200, 204]
    with pytest.raises(CheckDefinitionError, match=r"auth\.type"):
        check_from_dict({"url": "http://x", "auth": {"type": "digest"}})
    with pytest.raises(CheckDefinitionError, match="needs a url"):
        check_from_dict({"name": "x"})
    with pytest.raises(CheckDefinitionError, match="unknown endpoint keys: colour"):
        check_from_dict({"url": "http://x", "colour": "red"})


def test_invalid_url_is_a_result_not_an_exception() -> None:
    (result,) = run_checks([EndpointCheck(name="bad", url="not a url")])
    assert not result.ok
    assert result.attempts == 0
    assert result.error is not None and result.error.startswith("invalid check:")


def test_summary_and_failure_message(server: FakeHTTP, closed_port: int) -> None:
    results = run_checks(
        [
            check("ok", server.base + "/ok"),
            check("dead", server.base + "/never"),
            check("down", f"http://127.0.0.1:{closed_port}/"),
        ]
    )
    assert summarize(results, 1.23456) == {"total": 3, "ok": 1, "failed": 2, "elapsed_s": 1.235}
    message = failure_message(results)
    assert message.startswith("2 of 3 endpoints failed: ")
    assert f"dead ({server.base}/never): status=503, error=status 503, expected 200" in message
    assert (
        f"down (http://127.0.0.1:{closed_port}/): status=none, error=connection refused" in message
    )
    assert "ok (" not in message


# --------------------------------------------------------------------------- exact contract

UA = ("User-agent", "myia.genai_stack-endpoint_health/1")
ACCEPT = ("Accept", "application/json, text/plain;q=0.9, */*;q=0.5")


def sent(**kwargs: Any) -> urllib.request.Request:
    """The request a check sends (urllib capitalizes header names as it sends them)."""
    kwargs.setdefault("url", "http://h/x")
    return http_checks._build_request(EndpointCheck(name="n", **kwargs))


@pytest.mark.parametrize(
    ("kwargs", "method", "headers", "data"),
    [
        ({}, "GET", [UA, ACCEPT], None),
        ({"method": ""}, "GET", [UA, ACCEPT], None),
        ({"method": "put", "body": {"a": 1}}, "PUT", [UA, ACCEPT, ("Content-type", "application/json")], b'{"a": 1}'),
        ({"method": "post", "body": {"a": 1}, "headers": {"content-type": "text/plain"}}, "POST", [UA, ACCEPT, ("Content-type", "text/plain")], b'{"a": 1}'),
        ({"method": "POST", "body": "é"}, "POST", [UA, ACCEPT], "é".encode()),
        ({"method": "POST", "body": bytearray(b"\x00\xff")}, "POST", [UA, ACCEPT], b"\x00\xff"),
        ({"headers": {"X-Num": 5}}, "GET", [UA, ACCEPT, ("X-num", "5")], None),
        ({"auth": {"type": "bearer", "token": "tok"}, "headers": {"authorization": "Bearer nope"}}, "GET", [UA, ACCEPT, ("Authorization", "Bearer tok")], None),
        ({"auth": {"type": "bearer"}}, "GET", [UA, ACCEPT, ("Authorization", "Bearer ")], None),
        ({"auth": {"type": "basic", "password": "pw"}}, "GET", [UA, ACCEPT, ("Authorization", "Basic " + base64.b64encode(b":pw").decode())], None),
        ({"auth": {"type": "basic", "username": "u"}}, "GET", [UA, ACCEPT, ("Authorization", "Basic " + base64.b64encode(b"u:").decode())], None),
        ({"url": "http://user@x:p%40ss@h:1/p"}, "GET", [UA, ACCEPT, ("Authorization", "Basic " + base64.b64encode(b"user@x:p@ss").decode())], None),
    ],
)  # fmt: skip
def test_the_request_sent(
    kwargs: dict[str, Any], method: str, headers: list[tuple[str, str]], data: bytes | None
) -> None:
    request = sent(**kwargs)
    assert request.get_method() == method
    assert sorted(request.header_items()) == sorted(headers)
    assert request.data == data


@pytest.mark.parametrize(
    ("url", "auth", "full_url"),
    [
        ("http://user@x:pw@h:1/p?a=1", None, "http://h:1/p?a=1"),
        ("http://h/x?a=&token=old&b=1", {"type": "query", "value": "v"}, "http://h/x?a=&b=1&token=v"),
        ("http://h/x", {"type": "query", "param": "key", "value": "v"}, "http://h/x?key=v"),
        ("http://h/x", {"type": "query"}, "http://h/x?token="),
    ],
)  # fmt: skip
def test_the_url_sent(url: str, auth: dict[str, str] | None, full_url: str) -> None:
    assert sent(url=url, auth=auth).full_url == full_url


def test_an_unknown_auth_type_is_an_invalid_check() -> None:
    result = run_check(EndpointCheck(name="n", url="http://h/x", auth={"type": "digest"}))
    assert result.error == "invalid check: auth.type must be one of bearer, basic, query"


@pytest.mark.parametrize(
    ("check", "secrets"),
    [
        (EndpointCheck(name="n", url="http://h/", auth={"type": "bearer"}), []),
        (EndpointCheck(name="n", url="http://h/", auth={"type": "bearer", "token": "abc"}), ["abc"]),
        (EndpointCheck(name="n", url="http://h/", auth={"type": "bearer", "token": "ab"}), []),
        (EndpointCheck(name="n", url="http://h/", auth={"type": "basic", "password": "pw-1"}), ["OnB3LTE=", "pw-1"]),
        (EndpointCheck(name="n", url="http://h/", auth={"type": "basic", "username": "u"}), ["dTo="]),
        (EndpointCheck(name="n", url="http://h/", auth={"type": "query"}), []),
        (EndpointCheck(name="n", url="http://h/", auth={"type": "query", "value": "a/b c+d"}), ["a%2Fb%20c%2Bd", "a%2Fb+c%2Bd", "a/b c+d"]),
        (EndpointCheck(name="n", url="http://us@er:pw@h/", headers={"Authorization": "Bearer abc def"}), ["Bearer abc def", "dXNAZXI6cHc=", "abc def"]),
        (EndpointCheck(name="n", url="http://h/", headers={"X-Trace": "visible-value"}), []),
    ],
)  # fmt: skip
def test_secrets_of_a_check_longest_first(check: EndpointCheck, secrets: list[str]) -> None:
    assert check.secrets() == secrets


@pytest.mark.parametrize(
    ("name", "sensitive"),
    [("Content-Type", False), ("X-Trace", False), ("X-Api-Key", True), ("Cookie", True)],
)
def test_sensitive_headers(name: str, sensitive: bool) -> None:
    assert http_checks.is_sensitive_header(name) is sensitive


def test_an_empty_secret_masks_nothing() -> None:
    assert http_checks.mask_text("abc", ["", "zzz"]) == "abc"


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("http://a@b:c@h/p", "http://***@h/p"),
        ("http://h/p?a=&token=t", "http://h/p?a=&token=***"),
    ],
)
def test_mask_url_edges(url: str, masked: str) -> None:
    assert mask_url(url) == masked


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("x", "'x' at <root>: no such key"),
        ("data.x", "'x' at data: not a list index"),
        ("data.2", "'2' at data: index out of range (length 2)"),
        ("data.0.id.x", "'x' at data.0.id: cannot index into str"),
        ("n.x", "'x' at n: cannot index into null"),
    ],
)
def test_json_path_errors_in_full(path: str, message: str) -> None:
    with pytest.raises(JsonPathError) as raised:
        resolve_path({"data": [{"id": "a"}, {"id": "b"}], "n": None}, path)
    assert str(raised.value) == message


def test_json_equals_compares_text_only_with_scalars() -> None:
    assert not json_equals("a", '"a"')
    assert not json_equals([1], "[1]")


def test_json_contains_never_raises_on_a_mismatched_type() -> None:
    assert json_contains("abc", 5) is False
    assert json_contains({"a": 1}, ["a"]) is False


class Weird:
    """A value JSON cannot hold, shown by its str()."""

    def __str__(self) -> str:
        return "weird"


def circular() -> list[Any]:
    loop: list[Any] = []
    loop.append(loop)
    return loop


@pytest.mark.parametrize(
    ("kwargs", "text", "why"),
    [
        ({"json_path": "a", "json_value": {"b": 1, "a": 2}}, '{"a": 1}', 'json_path \'a\' is 1, expected {"a": 2, "b": 1}'),
        ({"json_path": "a", "json_value": Weird()}, '{"a": 1}', "json_path 'a' is 1, expected \"weird\""),
        ({"json_path": "a", "json_value": circular()}, '{"a": 1}', "json_path 'a' is 1, expected [[...]]"),
        ({"json_path": "a", "json_value": "x" * 80}, '{"a": 1}', "json_path 'a' is 1, expected \"" + "x" * 76 + "..."),
        ({"json_path": "a", "json_value": "x" * 78}, '{"a": 1}', "json_path 'a' is 1, expected \"" + "x" * 78 + '"'),
        ({"json_contains": {"path": "", "value": "z"}}, '{"a": 1}', 'json_contains: value at \'<root>\' ({"a": 1}) does not contain "z"'),
    ],
)  # fmt: skip
def test_body_mismatches_are_explained_in_full(kwargs: dict[str, Any], text: str, why: str) -> None:
    check = EndpointCheck(name="n", url="http://h/", **kwargs)
    assert http_checks._check_body(check, text) == why


def test_ssl_contexts_are_shared_until_the_ca_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_checks, "_SSL_CONTEXTS", {})
    unchecked = EndpointCheck(name="n", url="https://h/", validate_certs=False)
    context = http_checks._ssl_context(unchecked)
    assert context.verify_mode == ssl.CERT_NONE and context.check_hostname is False
    assert context.protocol == ssl.PROTOCOL_TLS_CLIENT
    assert http_checks._ssl_context(unchecked) is context
    default = http_checks._ssl_context(EndpointCheck(name="n", url="https://h/"))
    assert default.verify_mode == ssl.CERT_REQUIRED and default.check_hostname is True
    made: list[str | None] = []

    def create_default_context(cafile: str | None = None) -> object:
        made.append(cafile)
        return object()

    monkeypatch.setattr(http_checks.ssl, "create_default_context", create_default_context)
    ca = tmp_path / "ca.pem"
    ca.write_text("a CA bundle\n")
    with_ca = EndpointCheck(name="n", url="https://h/", ca_path=str(ca))
    first = http_checks._ssl_context(with_ca)
    assert http_checks._ssl_context(with_ca) is first and made == [str(ca)]
    os.utime(ca, (1, 1))
    assert http_checks._ssl_context(with_ca) is not first and made == [str(ca), str(ca)]


@pytest.mark.parametrize(
    ("error", "described"),
    [
        (http.client.RemoteDisconnected("x"), "server closed the connection without a response"),
        (urllib.error.URLError(ConnectionResetError()), "connection reset by peer"),
        (OSError(5, "I/O error"), "connection error: I/O error"),
        (ValueError("bad"), "ValueError: bad"),
    ],
)
def test_errors_are_described(error: BaseException, described: str) -> None:
    assert http_checks._describe_error(error, 1.0) == described


class FakeClock:
    def __init__(self, *times: float) -> None:
        self.times = list(times)

    def __call__(self) -> float:
        return self.times.pop(0)


class Opener:
    """An opener whose ``open`` answers or raises what it is given."""

    def __init__(self, outcome: Any) -> None:
        self.outcome = outcome

    def open(self, request: Any, timeout: float) -> Any:
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome


class Response:
    def __init__(self, status: int, body: bytes | BaseException) -> None:
        self.status = status
        self.body = body

    def __enter__(self) -> Response:
        return self

    def __exit__(self, *args: object) -> None:
        pass

    def read(self) -> bytes:
        if isinstance(self.body, BaseException):
            raise self.body
        return self.body


class Unreadable:
    def read(self, *args: object) -> bytes:
        raise OSError("gone")

    def close(self) -> None:
        pass


def attempt(outcome: Any, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> Any:
    monkeypatch.setattr(http_checks, "time", types.SimpleNamespace(monotonic=FakeClock(1.0, 1.25)))
    check = EndpointCheck(name="n", url="http://h/", **kwargs)
    return http_checks._attempt(check, sent(), Opener(outcome), 5.0)


def test_an_attempt_that_fails_reports_its_latency_and_no_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = attempt(ConnectionRefusedError(), monkeypatch)
    assert (result.ok, result.status, result.latency_ms) == (False, None, 250.0)
    assert (result.error, result.body) == ("connection refused", "")


def test_a_response_cut_while_read_keeps_its_status(monkeypatch: pytest.MonkeyPatch) -> None:
    result = attempt(Response(200, ConnectionResetError()), monkeypatch)
    assert (result.ok, result.status, result.error) == (False, 200, "connection reset by peer")


def test_an_error_status_whose_body_cannot_be_read_has_an_empty_body(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    error = urllib.error.HTTPError("http://h/", 503, "down", email.message.Message(), Unreadable())
    result = attempt(error, monkeypatch)
    assert (result.ok, result.status, result.body) == (False, 503, "")
    assert result.error == "status 503, expected 200"


def test_a_healthy_attempt_in_full(monkeypatch: pytest.MonkeyPatch) -> None:
    result = attempt(Response(401, b'{"a": "\xff"}'), monkeypatch, status=[401])
    assert (result.ok, result.status, result.latency_ms) == (True, 401, 250.0)
    assert (result.error, result.body) == (None, '{"a": "\ufffd"}')


def test_every_expected_status_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    result = attempt(Response(200, b""), monkeypatch, status=[401, 403])
    assert result.ok is False and result.error == "status 200, expected 401, 403"


def test_times_are_rounded(closed_port: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        http_checks, "time", types.SimpleNamespace(monotonic=FakeClock(1.0, 1.23456))
    )
    result = run_check(
        EndpointCheck(name="n", url=f"http://127.0.0.1:{closed_port}/"),
        clock=FakeClock(10.0, 11.0, 12.34567),
    )
    assert (result.latency_ms, result.elapsed_s) == (234.6, 2.346)


def test_an_invalid_check_in_full() -> None:
    result = run_check(
        EndpointCheck(
            name="n",
            url="http://h/x?sig=ab",
            auth={"type": "query", "param": "sig", "value": "ab"},
            body=circular(),
        ),
        clock=FakeClock(10.0, 11.23456),
    )
    assert result.to_dict() == {
        "name": "n",
        "url": "http://h/x?sig=***",
        "ok": False,
        "status": None,
        "latency_ms": None,
        "attempts": 0,
        "elapsed_s": 1.235,
        "error": "invalid check: Circular reference detected",
        "body_snippet": "",
    }


def test_a_short_query_credential_is_masked_by_its_parameter(closed_port: int) -> None:
    auth = {"type": "query", "param": "sig", "value": "ab"}
    result = run_check(EndpointCheck(name="n", url=f"http://127.0.0.1:{closed_port}/", auth=auth))
    assert result.url == f"http://127.0.0.1:{closed_port}/?sig=***"


def test_only_the_user_info_is_masked_in_the_url_shown(closed_port: int) -> None:
    url = f"http://u:pw@127.0.0.1:{closed_port}/x?next=http://y"
    result = run_check(EndpointCheck(name="n", url=url))
    assert result.url == f"http://***@127.0.0.1:{closed_port}/x?next=http%3A%2F%2Fy"


@pytest.mark.parametrize("use_proxy", [True, False])
def test_use_proxy_follows_the_environment_or_goes_direct(
    server: FakeHTTP, closed_port: int, monkeypatch: pytest.MonkeyPatch, use_proxy: bool
) -> None:
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{closed_port}")
    result = run_check(check("p", server.base + "/ok", use_proxy=use_proxy))
    assert result.ok is not use_proxy
    assert result.error == ("connection refused" if use_proxy else None)


def test_no_pause_of_zero_and_a_gentle_backoff(closed_port: int) -> None:
    pauses: list[float] = []
    url = f"http://127.0.0.1:{closed_port}/"
    run_check(EndpointCheck(name="n", url=url, retries=2, delay=0), sleep=pauses.append)
    assert pauses == []
    result = run_check(
        EndpointCheck(name="n", url=url, retries=3, delay=1, backoff_factor=1.5, max_delay=9),
        sleep=pauses.append,
    )
    assert pauses == [1.0, 1.5, 2.25]
    assert result.error == "connection refused (after 4 attempts)"


def test_the_number_of_attempts_is_told_from_the_second(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/"
    result = run_check(EndpointCheck(name="n", url=url, retries=1), sleep=lambda s: None)
    assert result.error == "connection refused (after 2 attempts)"


def test_a_long_body_is_cut_to_300_characters(server: FakeHTTP) -> None:
    result = run_check(check("long", server.base + "/long", body_contains="absent"))
    assert result.body_snippet == "x" * 300


def test_checks_run_in_a_named_pool_of_at_most_16(monkeypatch: pytest.MonkeyPatch) -> None:
    pools: list[dict[str, Any]] = []
    real = http_checks.ThreadPoolExecutor

    def pool(**kwargs: Any) -> Any:
        pools.append(kwargs)
        return real(**kwargs)

    def fake_run(check: EndpointCheck) -> str:
        return threading.current_thread().name

    monkeypatch.setattr(http_checks, "ThreadPoolExecutor", pool)
    monkeypatch.setattr(http_checks, "run_check", fake_run)
    checks = [EndpointCheck(name=str(i), url="http://h/") for i in range(20)]
    names = run_checks(checks)
    assert pools == [{"max_workers": 16, "thread_name_prefix": "endpoint-check"}]
    assert all(str(n).startswith("endpoint-check") for n in names)
    assert run_checks(checks[:2], max_workers=2) != [threading.current_thread().name] * 2
    assert run_checks(checks[:2], max_workers=1) == [threading.current_thread().name] * 2


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"name": "x"}, "every endpoint needs a url"),
        ({"url": "http://x", "b": 1, "a": 2}, "unknown endpoint keys: a, b"),
        ({"url": "http://x", "auth": {"type": "digest"}}, "auth.type must be one of bearer, basic, query"),
    ],
)  # fmt: skip
def test_check_from_dict_refusals_in_full(spec: dict[str, Any], message: str) -> None:
    with pytest.raises(CheckDefinitionError) as raised:
        check_from_dict(spec)
    assert str(raised.value) == message


def test_failure_message_joins_every_failure(closed_port: int) -> None:
    url = f"http://127.0.0.1:{closed_port}/"
    results = [run_check(EndpointCheck(name=n, url=url)) for n in ("a", "b")]
    assert failure_message(results) == (
        f"2 of 2 endpoints failed: a ({url}): status=none, error=connection refused; "
        f"b ({url}): status=none, error=connection refused"
    )
