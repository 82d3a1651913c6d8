"""The reverse-proxy rules that both front doors (IIS, nginx) render from the service model."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.filter.genai_services import genai_services
from ansible_collections.myia.genai_stack.plugins.filter.proxy_rules import proxy_rules
from tests.unit.conftest import COLLECTIONS

GROUP_VARS = COLLECTIONS.parent / "group_vars" / "all"
THUMB = "0123456789ABCDEF0123456789ABCDEF01234567"
FILES = {"certificate": "/etc/ssl/genai.pem", "key": "/etc/ssl/private/genai.key"}


def user_stack() -> list[dict[str, Any]]:
    models = yaml.safe_load((GROUP_VARS / "vllm_qwen3.yml").read_text())["vllm_qwen3_models"]
    comfy = {"name": "comfyui", "port": 8188, "hostname": "qwen-image-edit.myia.io"}
    forge = [{"name": "forge-turbo", "port": 17861,
              "hostname": "turbo.stable-diffusion-webui-forge.myia.io"}]  # fmt: skip
    return genai_services(models, comfyui=comfy, forge=forge)


def nginx(records: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    kwargs.setdefault("default_certificate", FILES)
    return proxy_rules(records, "nginx_reverse_proxy", "files", **kwargs)


def iis(records: list[dict[str, Any]], **kwargs: Any) -> list[dict[str, Any]]:
    return proxy_rules(records, "iis_reverse_proxy", "thumbprint", **kwargs)


def failure(call: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(AnsibleFilterError) as err:
        call(*args, **kwargs)
    return str(err.value)


def test_one_rule_per_service_with_hostname() -> None:
    rules = {r["name"]: r for r in nginx(user_stack())}
    assert list(rules) == ["qwen3-micro", "qwen3-mini", "qwen3-medium", "comfyui", "forge-turbo"]
    turbo = rules["forge-turbo"]
    assert turbo["hostname"] == "turbo.stable-diffusion-webui-forge.myia.io"
    assert turbo["backend_url"] == "http://127.0.0.1:17861"
    assert (turbo["backend_host"], turbo["backend_port"]) == ("127.0.0.1", 17861)
    assert turbo["public_url"] == "https://turbo.stable-diffusion-webui-forge.myia.io"
    assert turbo["websocket_paths"] == ["/queue/join"]
    assert turbo["certificate"] == FILES


def test_limits_timeouts_and_buffering_follow_the_kind() -> None:
    rules = {r["kind"]: r for r in nginx(user_stack())}
    assert rules["vllm"]["streaming"] is True and rules["vllm"]["buffering"] is False
    assert rules["comfyui"]["buffering"] is True
    assert rules["vllm"]["max_body_bytes"] == 16 * 1024 * 1024
    assert rules["comfyui"]["max_body_mb"] == 100
    assert rules["forge"]["timeout_s"] == 900 and rules["forge"]["timeout_hms"] == "00:15:00"
    assert rules["vllm"]["websockets"] == []


def test_forwarded_headers_and_host() -> None:
    (rule,) = nginx(user_stack(), publish=["comfyui"])
    assert rule["preserve_host"] is True
    assert rule["headers"] == [
        {"name": "X-Forwarded-Proto", "value": "https", "server_variable": "HTTP_X_FORWARDED_PROTO"},
        {"name": "X-Forwarded-Host", "value": "qwen-image-edit.myia.io",
         "server_variable": "HTTP_X_FORWARDED_HOST"},
    ]  # fmt: skip


def test_non_default_https_port_reaches_urls_and_headers() -> None:
    (rule,) = nginx(user_stack(), publish=["comfyui"], https_port=18443)
    assert rule["public_url"] == "https://qwen-image-edit.myia.io:18443"
    assert rule["headers"][1]["value"] == "qwen-image-edit.myia.io:18443"


@pytest.mark.parametrize(
    ("path", "matches", "misses"),
    [
        ("/ws", ["/ws", "/ws/", "/ws/x"], ["/wsx", "/api/ws", "/w"]),
        ("/queue/join", ["/queue/join", "/queue/join/1"], ["/queue/joint", "/queue"]),
        ("/a.b/", ["/a.b", "/a.b/c"], ["/aXb"]),
    ],
)
def test_websocket_regexes(path: str, matches: list[str], misses: list[str]) -> None:
    records = [{"name": "c", "kind": "comfyui", "port": 1, "hostname": "c.example.org",
                "websocket_paths": [path]}]  # fmt: skip
    (ws,) = nginx(records)[0]["websockets"]
    assert ws["path"] == path.rstrip("/")
    for url in matches:
        assert re.match(ws["regex"], url), url
        assert re.match(ws["relative_regex"], url[1:]), url
    for url in misses:
        assert not re.match(ws["regex"], url), url
        assert not re.match(ws["relative_regex"], url[1:]), url


def test_hand_written_records_get_their_kind_defaults() -> None:
    records = [
        {"name": "m", "kind": "vllm", "port": 5000, "hostname": "M.Example.org."},
        {"name": "f", "kind": "forge", "hostname": "f.example.org", "bind_address": "0.0.0.0",
         "port": 7860},
        {"name": "hidden", "kind": "vllm", "port": 5001},
    ]  # fmt: skip
    m, f = nginx(records)
    assert m["hostname"] == "m.example.org" and m["health_path"] == "/health"
    assert m["streaming"] is True and m["auth"] == "bearer"
    assert f["backend_url"] == "http://127.0.0.1:7860"
    assert f["websocket_paths"] == ["/queue/join"]


def test_publish_and_overrides() -> None:
    rules = nginx(
        user_stack(),
        publish=["forge-turbo", "qwen3-mini"],
        overrides={"forge-turbo": {"max_body_mb": 30, "timeout_s": 65, "websocket_paths": []},
                   "qwen3-mini": {"backend_url": "https://10.0.0.0:443", "streaming": "false"}},
    )  # fmt: skip
    assert [r["name"] for r in rules] == ["forge-turbo", "qwen3-mini"]
    assert rules[0]["max_body_bytes"] == 30 * 1024 * 1024
    assert rules[0]["timeout_hms"] == "00:01:05" and rules[0]["websockets"] == []
    assert rules[1]["backend_url"] == "https://10.0.0.0:443"
    assert rules[1]["buffering"] is True


@pytest.mark.parametrize(
    ("host", "expected"),
    [("localhost", "http://localhost:8188"), ("::1", "http://[::1]:8188")],
)
def test_backend_host_replaces_the_record_host(host: str, expected: str) -> None:
    (rule,) = iis(user_stack(), publish=["comfyui"], backend_host=host, default_certificate=THUMB)
    assert rule["backend_url"] == expected


def test_thumbprints_are_normalised_and_chosen_per_hostname() -> None:
    own = "ab:cd:ef:01:23:45:67:89:ab:cd:ef:01:23:45:67:89:ab:cd:ef:01"
    rules = {
        r["name"]: r
        for r in iis(
            user_stack(),
            certificates={"Turbo.Stable-Diffusion-WebUI-Forge.myia.io": own},
            default_certificate=THUMB.lower(),
        )
    }
    assert rules["forge-turbo"]["certificate"] == "ABCDEF0123456789ABCDEF0123456789ABCDEF01"
    assert rules["comfyui"]["certificate"] == THUMB


def test_nginx_certificate_per_hostname() -> None:
    own = {"certificate": "/etc/ssl/c.pem", "key": "/etc/ssl/c.key"}
    rules = {
        r["name"]: r for r in nginx(user_stack(), certificates={"qwen-image-edit.myia.io": own})
    }
    assert rules["comfyui"]["certificate"] == own
    assert rules["qwen3-micro"]["certificate"] == FILES


@pytest.mark.parametrize(
    ("call", "records", "kwargs", "needles"),
    [
        pytest.param(
            nginx,
            [{"name": "a", "kind": "vllm", "port": 1, "hostname": "h.example.org"},
             {"name": "b", "kind": "vllm", "port": 2, "hostname": "H.example.org"}],
            {},
            ["nginx_reverse_proxy_services[1].hostname: 'h.example.org' already used by "
             "nginx_reverse_proxy_services[0]"],
            id="duplicate-hostname",
        ),
        pytest.param(
            nginx,
            [{"name": "a", "kind": "vllm", "port": 1}, {"name": "a", "kind": "forge", "port": 2}],
            {},
            ["nginx_reverse_proxy_services[1]: name 'a' already used"],
            id="duplicate-name",
        ),
        pytest.param(
            iis, None, {"certificates": {"qwen-image-edit.myia.io": THUMB}},
            ["iis_reverse_proxy_certificates['micro.vllm.myia.io']: no certificate",
             "set it or iis_reverse_proxy_default_certificate"],
            id="missing-thumbprint",
        ),
        pytest.param(
            iis, None, {"default_certificate": "not-a-thumbprint"},
            ["iis_reverse_proxy_default_certificate: 'not-a-thumbprint' is not a certificate thumbprint"],
            id="bad-thumbprint",
        ),
        pytest.param(
            nginx, None, {"certificates": {"qwen-image-edit.myia.io": {"certificate": "/c.pem"}}},
            ["nginx_reverse_proxy_certificates['qwen-image-edit.myia.io'].key: an absolute file path"],
            id="certificate-without-key",
        ),
        pytest.param(
            nginx, None, {"certificates": {"qwen-image-edit.myia.io": {
                "certificate": "/c.pem; include /etc/nginx/evil.conf", "key": "/k.pem"}}},
            ["nginx_reverse_proxy_certificates['qwen-image-edit.myia.io'].certificate: "
             "'/c.pem; include /etc/nginx/evil.conf' may hold only"],
            id="certificate-path-injects-a-directive",
        ),
        pytest.param(
            nginx, None, {"certificates": {"typo.myia.io": FILES}},
            ["nginx_reverse_proxy_certificates['typo.myia.io']: not the hostname of a service"],
            id="certificate-for-unknown-hostname",
        ),
        pytest.param(
            nginx, None, {"publish": ["comfyui", "sdnext"]},
            ["nginx_reverse_proxy_publish[1]: 'sdnext' is not a service of nginx_reverse_proxy_services",
             "known: qwen3-micro, qwen3-mini, qwen3-medium, comfyui, forge-turbo"],
            id="publish-unknown-service",
        ),
        pytest.param(
            nginx,
            [{"name": "a", "kind": "vllm", "port": 1}],
            {"publish": ["a"]},
            ["nginx_reverse_proxy_publish[0]: service 'a' has no hostname"],
            id="publish-without-hostname",
        ),
        pytest.param(
            iis, None, {"default_certificate": THUMB, "overrides": {"forge": {"timeout_s": 60}}},
            ["iis_reverse_proxy_overrides['forge']: 'forge' is not a service"],
            id="override-unknown-service",
        ),
        pytest.param(
            nginx, None, {"overrides": {"comfyui": {"hostname": "x.myia.io"}}},
            ["nginx_reverse_proxy_overrides['comfyui'].hostname: cannot be overridden"],
            id="override-unknown-key",
        ),
        pytest.param(
            nginx,
            [{"name": "a", "kind": "sdnext", "port": 1}, {"kind": "vllm", "port": 2},
             {"name": "c", "kind": "vllm", "hostname": "c.example.org"}, "oops"],
            {},
            ["nginx_reverse_proxy_services[0].kind: 'sdnext' is not one of vllm, comfyui, forge",
             "nginx_reverse_proxy_services[1].name: missing",
             "nginx_reverse_proxy_services[2]: needs backend_url or port",
             "nginx_reverse_proxy_services[3]: must be a service record"],
            id="not-records",
        ),
        pytest.param(
            nginx,
            [{"name": "a", "kind": "comfyui", "hostname": "bad_host", "backend_url": "ftp://x",
              "max_body_mb": 0, "timeout_s": "soon", "websocket_paths": ["ws"], "streaming": "maybe"}],
            {},
            ["nginx_reverse_proxy_services[0].hostname: 'bad_host' is not a DNS name",
             "nginx_reverse_proxy_services[0].backend_url: 'ftp://x' is not http(s)://host:port",
             "nginx_reverse_proxy_services[0].max_body_mb: 0 is not a positive integer",
             "nginx_reverse_proxy_services[0].timeout_s: 'soon' is not a positive integer",
             "nginx_reverse_proxy_services[0].websocket_paths",
             "nginx_reverse_proxy_services[0].streaming: 'maybe' is not a boolean"],
            id="bad-values",
        ),
        pytest.param(
            nginx,
            [{"name": "a", "kind": "vllm", "hostname": "a.example.org",
              "backend_url": "http://127.0.0.1:1/v1"}],
            {},
            ["nginx_reverse_proxy_services[0].backend_url: 'http://127.0.0.1:1/v1' must not carry a path"],
            id="backend-with-path",
        ),
    ],
)  # fmt: skip
def test_bad_input_fails_naming_the_variable(
    call: Any, records: list | None, kwargs: dict, needles: list[str]
) -> None:
    message = failure(call, user_stack() if records is None else records, **kwargs)
    for needle in needles:
        assert needle in message, message


def test_every_problem_reported_at_once() -> None:
    records = [{"name": "a", "kind": "vllm", "port": 1, "hostname": "a.example.org"},
               {"name": "b", "kind": "vllm", "port": 2, "hostname": "b.example.org"}]  # fmt: skip
    message = failure(iis, records, certificates={"b.example.org": "xyz"}, publish=["a", "b", "z"])
    assert message.count("\n- ") == 3, message


def test_services_must_be_a_list() -> None:
    assert "nginx_reverse_proxy_services: must be a list" in failure(nginx, {"name": "a"})
