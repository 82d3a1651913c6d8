"""The reverse-proxy rules that both front doors (IIS, nginx) render from the service model."""

from __future__ import annotations

import re
from typing import Any

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.filter.genai_services import genai_services
from ansible_collections.myia.genai_stack.plugins.filter.proxy_rules import proxy_rules
from ansible_collections.myia.genai_stack.plugins.module_utils import proxy_rules as rules_module
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
            ["nginx_reverse_proxy_services[0].kind: 'sdnext' is not one of vllm, openai_gateway, comfyui, forge",
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


# ---------------------------------------------------------------------------- exact contract


def rec(name: str = "a", **change: Any) -> dict[str, Any]:
    return {"name": name, "kind": "vllm", "port": 1, "hostname": f"{name}.example.org", **change}


def compute(records: Any, **kwargs: Any) -> list[dict[str, Any]]:
    kwargs.setdefault("certificate_kind", "thumbprint")
    kwargs.setdefault("default_certificate", THUMB)
    return rules_module.compute(records, "p", **kwargs)


def problems(records: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(rules_module.ProxyRulesError) as err:
        compute(records, **kwargs)
    text = str(err.value)
    assert text.startswith("invalid reverse proxy rules:\n- "), text
    return text.split("\n- ")[1:]


@pytest.mark.parametrize(
    ("timeout_s", "hms"),
    [(59, "00:00:59"), (3600, "01:00:00"), (3661, "01:01:01"), (7200, "02:00:00")],
)
def test_timeout_as_hours_minutes_seconds(timeout_s: int, hms: str) -> None:
    (rule,) = compute([rec(timeout_s=timeout_s)])
    assert rule["timeout_hms"] == hms


@pytest.mark.parametrize(
    ("value", "streaming"),
    [(v, True) for v in ("true", "Yes", "ON", "1", True)]
    + [(v, False) for v in ("false", "No", "OFF", "0", False)],
)
def test_streaming_reads_yaml_booleans(value: Any, streaming: bool) -> None:
    (rule,) = compute([rec(streaming=value)])
    assert rule["streaming"] is streaming and rule["buffering"] is not streaming


@pytest.mark.parametrize(
    ("change", "backend_url"),
    [
        ({"bind_address": "10.0.0.5"}, "http://10.0.0.5:1"),
        ({"bind_address": "::"}, "http://127.0.0.1:1"),
        ({}, "http://127.0.0.1:1"),
        ({"backend_url": "https://10.0.0.1"}, "https://10.0.0.1:443"),
        ({"backend_url": "http://10.0.0.1"}, "http://10.0.0.1:80"),
        ({"backend_url": "http://10.0.0.1:81/"}, "http://10.0.0.1:81"),
        ({"backend_url": "http://[::1]:81"}, "http://[::1]:81"),
    ],
)
def test_backend_url_from_the_record(change: dict[str, Any], backend_url: str) -> None:
    (rule,) = compute([rec(**change)])
    assert rule["backend_url"] == backend_url
    assert rule["backend_scheme"] == backend_url.split(":", 1)[0]


def test_a_bracketed_backend_host_is_kept() -> None:
    (rule,) = compute([rec()], backend_host="[::1]")
    assert rule["backend_url"] == "http://[::1]:1" and rule["backend_host"] == "[::1]"


@pytest.mark.parametrize("url", ["http://h:99999", "http://:80"])
def test_a_backend_url_without_a_usable_host_and_port_is_refused(url: str) -> None:
    assert problems([rec(backend_url=url)]) == [
        f"p_services[0].backend_url: {url!r} is not http(s)://host:port"
    ]


@pytest.mark.parametrize(
    ("name", "rule_id"), [("My Service!", "my-service"), ("!!!", "service"), ("a_b-1", "a_b-1")]
)
def test_rule_id_is_a_lower_case_slug_of_the_name(name: str, rule_id: str) -> None:
    (rule,) = compute([{**rec(), "name": name}])
    assert rule["id"] == rule_id


@pytest.mark.parametrize(
    ("path", "kept", "regex"),
    [
        ("/", "/", "^/(/.*)?$"),
        ("/apiX/", "/apiX", "^/apiX(/.*)?$"),
        ("/Xws", "/Xws", "^/Xws(/.*)?$"),
    ],
)
def test_websocket_paths_are_kept_as_written(path: str, kept: str, regex: str) -> None:
    (rule,) = compute([rec(websocket_paths=[path, path])])
    assert rule["websockets"] == [
        {"path": kept, "regex": regex, "relative_regex": regex[0] + regex[2:]}
    ]


def test_https_port_defaults_to_443() -> None:
    (rule,) = compute([rec()])
    assert rule["public_url"] == "https://a.example.org"


def test_certificates_match_hostnames_whatever_their_case_and_final_dot() -> None:
    own = "ab" * 20
    rules = compute(
        [rec("a", hostname="a.example.org."), rec("b")],
        certificates={"A.example.org.": own, "b.example.org.": THUMB},
        default_certificate=None,
    )
    assert [(r["hostname"], r["certificate"]) for r in rules] == [
        ("a.example.org", own.upper()),
        ("b.example.org", THUMB),
    ]


def test_certificate_kind_must_be_known() -> None:
    with pytest.raises(rules_module.ProxyRulesError) as err:
        compute([rec()], certificate_kind="pem")
    assert str(err.value) == "certificate_kind must be one of ('thumbprint', 'files')"


def test_publish_must_be_a_list() -> None:
    with pytest.raises(rules_module.ProxyRulesError) as err:
        compute([rec()], publish="a")
    assert str(err.value) == "p_publish: must be a list of service names"


KNOWN = "(only backend_url, max_body_mb, timeout_s, streaming, websocket_paths)"
WS = "must be a list of paths like /ws (letters, digits, . _ ~ - /)"


@pytest.mark.parametrize(
    ("records", "kwargs", "expected"),
    [
        pytest.param(["x"], {}, ["p_services[0]: must be a service record (dict), got str"], id="not-a-dict"),
        pytest.param(
            [rec(), rec("a", port=2)], {},
            ["p_services[1]: name 'a' already used by p_services[0]"],
            id="duplicate-name",
        ),
        pytest.param([], {"overrides": [1]}, ["p_overrides: must be a dict keyed by service name"], id="overrides-list"),
        pytest.param(
            [], {"overrides": {"x": {}, "y": {}}},
            ["p_overrides['x']: 'x' is not a service of p_services (known: none)",
             "p_overrides['y']: 'y' is not a service of p_services (known: none)"],
            id="overrides-unknown",
        ),
        pytest.param(
            [rec("a"), rec("b", port=2)], {"overrides": {"x": {}}},
            ["p_overrides['x']: 'x' is not a service of p_services (known: a, b)"],
            id="overrides-unknown-names-the-known",
        ),
        pytest.param(
            [rec("a"), rec("b", port=2)], {"overrides": {"a": 1, "b": "x"}},
            ["p_overrides['a']: must be a dict", "p_overrides['b']: must be a dict"],
            id="override-not-a-dict",
        ),
        pytest.param(
            [rec()], {"overrides": {"a": {"port": 2}}},
            [f"p_overrides['a'].port: cannot be overridden {KNOWN}"],
            id="override-port",
        ),
        pytest.param(
            [], {"publish": ["a"]}, ["p_publish[0]: 'a' is not a service of p_services (known: none)"],
            id="publish-nothing",
        ),
        pytest.param(
            [rec(hostname=None)], {"publish": ["a"], "certificates": ["x"]},
            ["p_publish[0]: service 'a' has no hostname (set it in p_services[0])",
             "p_certificates: must be a dict keyed by hostname"],
            id="publish-without-hostname",
        ),
        pytest.param(
            [rec(hostname=None)], {"certificates": {"x.org": THUMB}},
            ["p_certificates['x.org']: not the hostname of a service in p_services (known: none)"],
            id="certificate-nothing-known",
        ),
        pytest.param(
            [rec("b"), rec("a", port=2)], {"certificates": {"x.org": THUMB}},
            ["p_certificates['x.org']: not the hostname of a service in p_services "
             "(known: a.example.org, b.example.org)"],
            id="certificate-unknown-host",
        ),
        pytest.param(
            [rec("a", hostname="a.example.org.")], {"certificates": {"a.example.org": THUMB, "x.org": THUMB}},
            ["p_certificates['x.org']: not the hostname of a service in p_services (known: a.example.org)"],
            id="known-hostnames-lose-their-final-dot",
        ),
        pytest.param(
            [rec("a", websocket_paths=["ws"]), rec("b", port=2, websocket_paths="/ws")], {},
            [f"p_services[0].websocket_paths: ['ws'] {WS}", f"p_services[1].websocket_paths: '/ws' {WS}"],
            id="every-bad-record",
        ),
        pytest.param(
            [rec("a"), rec("b", hostname="a.example.org", port=2), rec("c", port=3)],
            {"default_certificate": None, "certificates": {"a.example.org": THUMB}},
            ["p_services[1].hostname: 'a.example.org' already used by p_services[0]",
             "p_certificates['c.example.org']: no certificate for c.example.org (service c); "
             "set it or p_default_certificate"],
            id="rules-after-a-duplicate-hostname",
        ),
    ],
)  # fmt: skip
def test_problems_in_full(records: list[Any], kwargs: dict[str, Any], expected: list[str]) -> None:
    assert problems(records, **kwargs) == expected


@pytest.mark.parametrize(
    ("certificate", "expected"),
    [
        ("x", "p_default_certificate: must be a dict with certificate and key (file paths)"),
        (
            {"certificate": "/etc/ssl/../x.pem", "key": "/k"},
            "p_default_certificate.certificate: '/etc/ssl/../x.pem' may hold only letters, digits "
            "and . _ - + @ / (it lands in the proxy's config as it is)",
        ),
        (
            {"certificate": "/c.pem", "key": "/etc/.."},
            "p_default_certificate.key: '/etc/..' may hold only letters, digits and . _ - + @ / "
            "(it lands in the proxy's config as it is)",
        ),
    ],
)
def test_certificate_file_problems_in_full(certificate: Any, expected: str) -> None:
    assert problems([rec()], certificate_kind="files", default_certificate=certificate) == [
        expected
    ]
