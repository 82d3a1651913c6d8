"""module_utils.kinds.openai_gateway: the OpenAI gateway read from its variables, its client keys,
its configuration file, the checks that prove it serves (and refuses), its client .env keys."""

from __future__ import annotations

import copy
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.myia.genai_stack.plugins.module_utils import (
    catalogue,
    credentials,
    services,
    specs,
    stack_model,
)
from ansible_collections.myia.genai_stack.plugins.module_utils.kinds import (
    openai_gateway as gateway,
)
from ansible_collections.myia.genai_stack.plugins.module_utils.kinds import vllm as vllm_kind

ROOT = Path(__file__).resolve().parents[3]
GPUS = [{"index": 0}, {"index": 1}, {"index": 2}]
SECRET = "s3cret-" + "x" * 25
OTHER_SECRET = "s3cret-" + "y" * 25
#: the served names, as the gateway lists them (sorted)
SERVED = ["qwen3-medium", "qwen3-micro", "qwen3-mini"]
BACKENDS = {
    "qwen3-micro": {"backend": "qwen3-micro", "url": "http://127.0.0.1:5000"},
    "qwen3-mini": {"backend": "qwen3-mini", "url": "http://127.0.0.1:5001"},
    "qwen3-medium": {"backend": "qwen3-medium", "url": "http://127.0.0.1:5002"},
}


def values(**change: Any) -> dict[str, Any]:
    """The gateway's and the vLLM models' variables of the user's stack (templates evaluated)."""
    found: dict[str, Any] = {}
    for role in ("vllm_qwen3", "openai_gateway"):
        found.update(yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()))
        found.update(yaml.safe_load((ROOT / "group_vars" / "all" / f"{role}.yml").read_text()))
    found.update(vllm_qwen3_bind_address="127.0.0.1", openai_gateway_bind_address="127.0.0.1")
    found = copy.deepcopy(found)
    found.update(change)
    return found


def problems(found: dict[str, Any]) -> list[str]:
    with pytest.raises(specs.SpecError) as err:
        gateway.read(found)
    return err.value.problems


def spec(**change: Any) -> dict[str, Any]:
    (only,) = gateway.read(values(**change))
    return only


def record(**change: Any) -> dict[str, Any]:
    return services.record("openai_gateway", spec(**change), "openai_gateway")


def bearer(key: str) -> dict[str, str]:
    return {"type": "bearer", "token": key}


TWO_CLIENTS = [{"name": "genai"}, {"name": "batch", "models": ["qwen3-mini"]}]


# --- the kind in the catalogue ------------------------------------------------------------------


def test_the_gateway_is_a_kind_between_vllm_and_comfyui() -> None:
    assert catalogue.KINDS["openai_gateway"] is gateway.KIND
    assert list(catalogue.KINDS) == ["vllm", "openai_gateway", "comfyui", "forge"]
    assert gateway.KIND.role == "openai_gateway"
    assert gateway.KIND.variable == "openai_gateway_clients"
    assert gateway.KIND.where({"source": "openai_gateway"}, "port") == "openai_gateway_port"
    assert gateway.KIND.where({"source": "openai_gateway"}, "name") == "openai_gateway_name"
    assert gateway.KIND.where({"source": "x"}, "hostname") == "openai_gateway_hostname"


def test_the_gateway_reads_the_vllm_models_and_their_role_s_defaults() -> None:
    assert set(vllm_kind.KIND.variables) <= set(gateway.KIND.variables)
    assert stack_model.roles(["openai_gateway"]) == ["vllm_qwen3", "openai_gateway", "token_sync"]
    # not the other way round: the vLLM models read none of the gateway's own variables
    assert stack_model.roles(["vllm"]) == ["vllm_qwen3", "token_sync"]
    names = stack_model.variables(["openai_gateway"])
    assert "vllm_qwen3_models" in names and "openai_gateway_clients" in names
    assert "openai_gateway_project_name" in names


# --- read: the spec -----------------------------------------------------------------------------


def test_the_spec_is_read_from_the_defaults_and_group_vars() -> None:
    assert gateway.read(values()) == [
        {
            "name": "openai-gateway",
            "source": "openai_gateway",
            "port": 5100,
            "bind_address": "127.0.0.1",
            "hostname": "api.vllm.myia.io",
            "image": "genai-openai-gateway:local",
            "base_image": "debian:bookworm-slim",
            "clients": [
                {"name": "genai", "models": None, "requests_per_minute": None,
                 "tokens_per_minute": None},
            ],
            "served_model_names": SERVED,
            "backends": BACKENDS,
        }
    ]  # fmt: skip


def test_the_spec_reads_each_of_its_variables() -> None:
    clients = [{"name": "a", "models": ["qwen3-mini", "qwen3-micro"],
                "requests_per_minute": "30", "tokens_per_minute": 200000}]  # fmt: skip
    got = spec(
        openai_gateway_name="gw", openai_gateway_port="5200", openai_gateway_hostname="",
        openai_gateway_bind_address="10.0.0.5", openai_gateway_image="r.example/gw:1",
        openai_gateway_base_image="debian:trixie-slim", openai_gateway_clients=clients,
    )  # fmt: skip
    assert (got["name"], got["port"], got["hostname"], got["bind_address"]) == (
        "gw", 5200, None, "10.0.0.5"
    )  # fmt: skip
    assert (got["image"], got["base_image"]) == ("r.example/gw:1", "debian:trixie-slim")
    assert got["clients"] == [
        {"name": "a", "models": ["qwen3-mini", "qwen3-micro"], "requests_per_minute": 30,
         "tokens_per_minute": 200000}
    ]  # fmt: skip


def test_every_served_name_of_every_vllm_model_is_a_backend() -> None:
    found = values()
    found["vllm_qwen3_models"][0]["served_model_names"] = ["qwen3-micro", "micro"]
    found["vllm_qwen3_models"][2]["bind_address"] = "0.0.0.0"
    (got,) = gateway.read(found)
    assert got["served_model_names"] == ["micro", "qwen3-medium", "qwen3-micro", "qwen3-mini"]
    assert got["backends"] == {
        **BACKENDS,
        "micro": {"backend": "qwen3-micro", "url": "http://127.0.0.1:5000"},
    }


def test_a_name_served_by_two_vllm_models_is_refused() -> None:
    found = values()
    found["vllm_qwen3_models"][0]["served_model_names"] = ["qwen3-micro", "qwen"]
    found["vllm_qwen3_models"][1]["served_model_names"] = ["qwen3-mini", "qwen"]
    assert problems(found) == [
        "vllm_qwen3_models[1].served_model_names: 'qwen' is also served by qwen3-micro; the "
        "OpenAI gateway routes by model name"
    ]


@pytest.mark.parametrize("enabled", [False, "false", "False", "no"])
def test_a_disabled_gateway_has_no_spec(enabled: Any) -> None:
    # not even its bad clients are checked
    assert gateway.read(values(openai_gateway_enabled=enabled, openai_gateway_clients="x")) == []


@pytest.mark.parametrize("models", [None, "", []])
def test_a_host_without_vllm_models_has_no_gateway(models: Any) -> None:
    assert gateway.read(values(vllm_qwen3_models=models)) == []
    model = stack_model.build(
        values(vllm_qwen3_models=models), GPUS, kinds=["vllm", "openai_gateway"]
    )
    assert model["services"] == [] and model["specs"] == {"vllm": [], "openai_gateway": []}


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"openai_gateway_clients": [{"name": "a"}, {"name": "b"}, {"name": "a"}]},
         "client 'a' (openai_gateway_clients[2]): name 'a' is already used by another client"),
        ({"openai_gateway_clients": [{"name": "a", "models": ["qwen3-mini", "gpt-4", "o3"]}]},
         "openai_gateway_clients[0].models names model(s) this host does not serve: gpt-4, o3 "
         "(served: qwen3-medium, qwen3-micro, qwen3-mini)"),
        ({"openai_gateway_clients": [{"name": "a", "models": "qwen3-mini"}]},
         "openai_gateway_clients[0].models must be a non-empty list of served model names "
         "(leave it out for every model)"),
        ({"openai_gateway_clients": [{"name": "a", "models": []}]},
         "openai_gateway_clients[0].models must be a non-empty list of served model names "
         "(leave it out for every model)"),
        ({"openai_gateway_clients": [{"name": "a", "models": [3]}]},
         "openai_gateway_clients[0].models must be a non-empty list of served model names "
         "(leave it out for every model)"),
        ({"openai_gateway_clients": [{"name": "a", "requests_per_minute": 0}]},
         "openai_gateway_clients[0].requests_per_minute 0 must be a positive integer"),
        ({"openai_gateway_clients": [{"name": "a"}, {"name": "b", "tokens_per_minute": "lots"}]},
         "openai_gateway_clients[1].tokens_per_minute 'lots' must be a positive integer"),
        ({"openai_gateway_clients": [{"name": "a", "requests_per_minute": True}]},
         "openai_gateway_clients[0].requests_per_minute True must be a positive integer"),
        ({"openai_gateway_clients": [{"name": "a b"}]},
         "openai_gateway_clients[0].name 'a b' must be letters, digits, '.', '-' or '_' (at most "
         "63, no '..'): it names the compose service and its files"),
        ({"openai_gateway_clients": [{"models": ["qwen3-mini"]}]},
         "client '?' (openai_gateway_clients[0]): missing openai_gateway_clients[0].name"),
        ({"openai_gateway_clients": [{"name": "a", "rpm": 5}]},
         "client 'a' (openai_gateway_clients[0]): unknown key(s) rpm"),
        ({"openai_gateway_clients": ["a"]}, "openai_gateway_clients[0] must be a mapping"),
        ({"openai_gateway_clients": []},
         "openai_gateway_clients must be a non-empty list of {name, models, ...}"),
        ({"openai_gateway_clients": None},
         "openai_gateway_clients must be a non-empty list of {name, models, ...}"),
        ({"openai_gateway_port": 0}, "openai_gateway_port 0 is not a port number (1-65535)"),
        ({"openai_gateway_port": "51OO"}, "openai_gateway_port '51OO' is not a port number (1-65535)"),
        ({"openai_gateway_hostname": "https://api.vllm.myia.io"},
         "openai_gateway_hostname 'https://api.vllm.myia.io' must be a DNS name without a scheme "
         "(e.g. qwen.example.org)"),
        ({"openai_gateway_hostname": "api"},
         "openai_gateway_hostname 'api' is not a DNS name (e.g. qwen.example.org)"),
        ({"openai_gateway_image": ""},
         "openai_gateway_image is empty: set an image reference such as vllm/vllm-openai:v0.34.0"),
        ({"openai_gateway_base_image": "Debian:Bookworm slim"},
         "openai_gateway_base_image 'Debian:Bookworm slim' is not a valid image reference "
         "(repository[:tag][@digest])"),
        ({"openai_gateway_bind_address": "localhost"},
         "openai_gateway_bind_address 'localhost' is not an IP address (e.g. 127.0.0.1)"),
        ({"openai_gateway_name": "a/b"},
         "openai_gateway_name 'a/b' must be letters, digits, '.', '-' or '_' (at most 63, no "
         "'..'): it names the compose service and its files"),
    ],
)  # fmt: skip
def test_each_problem_is_named_with_its_variable(change: dict[str, Any], problem: str) -> None:
    assert problems(values(**change)) == [problem]


def test_every_problem_is_reported_at_once() -> None:
    clients = [{"name": "a", "models": ["nope"]}, {"name": "a", "requests_per_minute": -1}]
    found = values(openai_gateway_port="x", openai_gateway_image="", openai_gateway_clients=clients)
    assert problems(found) == [
        "openai_gateway_port 'x' is not a port number (1-65535)",
        "openai_gateway_image is empty: set an image reference such as vllm/vllm-openai:v0.34.0",
        "openai_gateway_clients[0].models names model(s) this host does not serve: nope (served: "
        "qwen3-medium, qwen3-micro, qwen3-mini)",
        "client 'a' (openai_gateway_clients[1]): name 'a' is already used by another client",
        "openai_gateway_clients[1].requests_per_minute -1 must be a positive integer",
    ]


def test_the_stack_model_names_the_gateway_s_variables() -> None:
    build = {"gpus": GPUS, "kinds": ["vllm", "openai_gateway"]}
    with pytest.raises(stack_model.StackModelError) as err:
        stack_model.build(values(openai_gateway_port=5001), **build)
    assert err.value.problems == [
        "openai_gateway_port: port 5001 is already used by vllm_qwen3_models[1].port"
    ]
    with pytest.raises(stack_model.StackModelError) as err:
        stack_model.build(values(openai_gateway_hostname="MICRO.vllm.myia.io"), **build)
    assert err.value.problems == [
        "openai_gateway_hostname: hostname 'micro.vllm.myia.io' is already used by "
        "vllm_qwen3_models[0].hostname"
    ]
    env = [{"path": "/a.env", "gateway_client": "genai"}, {"path": "/b.env", "gateway_client": "x"}]
    with pytest.raises(stack_model.StackModelError) as err:
        stack_model.build(values(token_sync_clients=env), **build)
    assert err.value.problems == [
        "token_sync_clients[1].gateway_client 'x' is not a client of openai_gateway_clients "
        "(known: genai)"
    ]


def test_the_gateway_needs_no_gpu() -> None:
    model = stack_model.build(values(), GPUS, kinds=["vllm", "openai_gateway"])
    (rec,) = [r for r in model["services"] if r["kind"] == "openai_gateway"]
    assert rec["gpus"] == [] and "gpu_wish" not in rec
    assert not any("openai-gateway" in g["services"] for g in model["gpu_plan"]["gpus"])
    assert model["plans"]["openai_gateway"]["services"] == {}
    assert model["ports"][5100] == "openai_gateway_port"


# --- keys ---------------------------------------------------------------------------------------


def test_a_client_key_is_derived_from_the_secret_and_its_name() -> None:
    keys = gateway.keys(SECRET, [{"name": "genai"}, {"name": "batch"}])
    assert keys == {
        "genai": credentials.derive(SECRET, "openai-gateway-client:genai"),
        "batch": credentials.derive(SECRET, "openai-gateway-client:batch"),
    }
    assert keys == gateway.keys(SECRET, ["genai", "batch"])  # names or client entries
    assert gateway.keys(SECRET, [{"name": "genai"}]) == {"genai": keys["genai"]}  # deterministic
    assert keys["genai"] != keys["batch"]
    assert gateway.keys(OTHER_SECRET, ["genai"])["genai"] != keys["genai"]
    assert len(keys["genai"]) == 48 and keys["genai"].isalnum()


@pytest.mark.parametrize("secret", [None, ""])
def test_without_a_secret_there_is_no_key(secret: Any) -> None:
    assert gateway.keys(secret, ["genai"]) == {}


def test_no_client_no_key() -> None:
    assert gateway.keys(SECRET, None) == {} and gateway.keys(SECRET, []) == {}


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(credentials.CredentialError, match="too short"):
        gateway.keys("short", ["genai"])


# --- config -------------------------------------------------------------------------------------


def test_the_config_holds_the_address_the_backends_and_only_the_sha256_of_each_key() -> None:
    found = values(openai_gateway_clients=TWO_CLIENTS)
    found["vllm_qwen3_models"][0]["served_model_names"] = ["qwen3-micro", "micro"]
    (got,) = gateway.read(found)
    keys = gateway.keys(SECRET, ["genai", "batch"])
    config = gateway.config(got, SECRET, 7)
    assert config == {
        "listen": {"host": "127.0.0.1", "port": 5100},
        "backends": [
            {"name": "qwen3-micro", "url": "http://127.0.0.1:5000",
             "models": ["micro", "qwen3-micro"], "api_key_env": "GATEWAY_BACKEND_KEY"},
            {"name": "qwen3-medium", "url": "http://127.0.0.1:5002", "models": ["qwen3-medium"],
             "api_key_env": "GATEWAY_BACKEND_KEY"},
            {"name": "qwen3-mini", "url": "http://127.0.0.1:5001", "models": ["qwen3-mini"],
             "api_key_env": "GATEWAY_BACKEND_KEY"},
        ],
        "clients": [
            {"name": "genai", "models": None, "requests_per_minute": None,
             "tokens_per_minute": None,
             "key_sha256": hashlib.sha256(keys["genai"].encode()).hexdigest()},
            {"name": "batch", "models": ["qwen3-mini"], "requests_per_minute": None,
             "tokens_per_minute": None,
             "key_sha256": hashlib.sha256(keys["batch"].encode()).hexdigest()},
        ],
        "usage_file": "/var/lib/genai-gateway/usage.json",
        "usage_flush_seconds": 7,
    }  # fmt: skip
    dump = json.dumps(config)
    assert keys["genai"] not in dump and keys["batch"] not in dump
    assert SECRET not in dump
    assert gateway.config(got, SECRET)["usage_flush_seconds"] == 5


def test_the_config_changes_with_the_secret() -> None:
    got = spec()
    first = gateway.config(got, SECRET)["clients"][0]["key_sha256"]
    assert gateway.config(got, SECRET)["clients"][0]["key_sha256"] == first
    assert gateway.config(got, OTHER_SECRET)["clients"][0]["key_sha256"] != first


def test_without_a_secret_the_config_lets_no_client_in() -> None:
    assert gateway.config(spec(), "")["clients"] == []


# --- checks and refusals ------------------------------------------------------------------------


def test_the_checks_with_a_key_prove_every_model_through_the_gateway() -> None:
    rec = record()
    key = gateway.keys(SECRET, ["genai"])["genai"]
    checks = gateway.checks(rec, {"openai_gateway_keys": {"genai": key}})
    probes = ["chat completion", "tool call", "tool result answered", "streamed chat"]
    assert [c["name"] for c in checks] == [
        "openai-gateway: health",
        "openai-gateway: refuses no key",
        *[f"openai-gateway: lists {m}" for m in SERVED],
        *[f"openai-gateway: {m}: {p}" for m in SERVED for p in probes],
    ]
    base = "http://127.0.0.1:5100"
    assert checks[0] == {"name": "openai-gateway: health", "url": base + "/health",
                         "json_path": "status"}  # fmt: skip
    assert checks[1] == {
        "name": "openai-gateway: refuses no key",
        "url": base + "/v1/models",
        "status": [401],
        "json_path": "error.code",
        "json_value": "invalid_api_key",
    }
    assert checks[2] == {
        "name": "openai-gateway: lists qwen3-medium",
        "url": base + "/v1/models",
        "auth": bearer(key),
        "json_contains": {"path": "data", "value": {"id": "qwen3-medium"}},
    }
    by_name = {c["name"]: c for c in checks}
    for model in SERVED:
        for probe in vllm_kind.conversation(model):
            assert by_name[f"openai-gateway: {model}: {probe['what']}"] == {
                "name": f"openai-gateway: {model}: {probe['what']}",
                "url": base + probe["path"],
                "method": "POST",
                "auth": bearer(key),
                **probe["expect"],
            }
    assert by_name["openai-gateway: qwen3-mini: streamed chat"] == {
        "name": "openai-gateway: qwen3-mini: streamed chat",
        "url": base + "/v1/chat/completions",
        "method": "POST",
        "auth": bearer(key),
        "body_contains": "data: [DONE]",
        "body": {"model": "qwen3-mini", "stream": True, "max_tokens": 8,
                 "messages": [{"role": "user", "content": "Say OK."}],
                 "chat_template_kwargs": {"enable_thinking": False}},
    }  # fmt: skip


def test_the_conversation_through_the_gateway_is_the_one_vllm_answers_itself() -> None:
    """The same chat, tool call and tool result probes as each vLLM model's own checks."""
    vllm_rec = {"name": "qwen3-mini", "backend_url": "http://127.0.0.1:5001",
                "served_model_names": ["qwen3-mini"]}  # fmt: skip
    own = {
        c["name"].split(": ", 1)[1]: c for c in vllm_kind.checks(vllm_rec, {"vllm_api_key": "k"})
    }
    through = gateway.checks(record(), {"openai_gateway_keys": {"genai": "g"}})
    through_mini = {
        c["name"].split("qwen3-mini: ", 1)[1]: c for c in through if "qwen3-mini: " in c["name"]
    }
    for what in ("chat completion", "tool call", "tool result answered"):
        mine = {k: v for k, v in through_mini[what].items() if k not in ("name", "url", "auth")}
        theirs = {k: v for k, v in own[what].items() if k not in ("name", "url", "auth")}
        assert mine == theirs


def test_removed_clients_keys_are_refused() -> None:
    removed = {"old": "o" * 48, "gone": "g" * 48}
    checks = gateway.checks(record(), {"openai_gateway_removed_keys": removed})
    assert checks[2:] == [
        {"name": "openai-gateway: refuses removed client gone",
         "url": "http://127.0.0.1:5100/v1/models", "auth": bearer("g" * 48), "status": [401]},
        {"name": "openai-gateway: refuses removed client old",
         "url": "http://127.0.0.1:5100/v1/models", "auth": bearer("o" * 48), "status": [401]},
    ]  # fmt: skip
    with_key = gateway.checks(record(), {"openai_gateway_keys": {"genai": "k"},
                                         "openai_gateway_removed_keys": removed})  # fmt: skip
    assert [c["name"] for c in with_key[:5]] == [
        "openai-gateway: health", "openai-gateway: refuses no key",
        "openai-gateway: refuses removed client gone", "openai-gateway: refuses removed client old",
        "openai-gateway: lists qwen3-medium",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "creds",
    [{}, {"openai_gateway_keys": {}}, {"openai_gateway_keys": {"genai": ""}},
     {"openai_gateway_keys": {"genai": "k"}, "openai_gateway_client": "nobody"}],
)  # fmt: skip
def test_without_a_key_only_the_open_checks_are_made(creds: dict[str, Any]) -> None:
    assert [c["name"] for c in gateway.checks(record(), creds)] == [
        "openai-gateway: health",
        "openai-gateway: refuses no key",
    ]


def test_a_client_limited_to_some_models_is_checked_on_those_only() -> None:
    rec = record(openai_gateway_clients=TWO_CLIENTS)
    keys = gateway.keys(SECRET, TWO_CLIENTS)
    creds = {"openai_gateway_keys": keys, "openai_gateway_client": "batch"}
    checks = gateway.checks(rec, creds)
    assert [c["name"] for c in checks] == [
        "openai-gateway: health", "openai-gateway: refuses no key",
        "openai-gateway: lists qwen3-mini",
        "openai-gateway: qwen3-mini: chat completion", "openai-gateway: qwen3-mini: tool call",
        "openai-gateway: qwen3-mini: tool result answered",
        "openai-gateway: qwen3-mini: streamed chat",
    ]  # fmt: skip
    assert all(c["auth"] == bearer(keys["batch"]) for c in checks[2:])
    # without a chosen client: the first one, on every model
    first = gateway.checks(rec, {"openai_gateway_keys": keys})
    assert len(first) == 2 + 3 * 5 and all(c["auth"] == bearer(keys["genai"]) for c in first[2:])


def test_every_old_client_key_is_refused_after_a_rotation() -> None:
    old = {"openai_gateway_keys": {"genai": "a" * 48, "batch": "b" * 48, "none": ""}}
    assert gateway.refusals(record(), old) == [
        {"name": "openai-gateway: refuses the old key of batch",
         "url": "http://127.0.0.1:5100/v1/models", "auth": bearer("b" * 48), "status": [401]},
        {"name": "openai-gateway: refuses the old key of genai",
         "url": "http://127.0.0.1:5100/v1/models", "auth": bearer("a" * 48), "status": [401]},
    ]  # fmt: skip
    assert gateway.refusals(record(), {}) == []
    assert gateway.refusals(record(), {"vllm_api_key": "k" * 24}) == []


# --- client .env --------------------------------------------------------------------------------


def test_the_client_env_holds_the_openai_sdk_names() -> None:
    rec = record(openai_gateway_clients=TWO_CLIENTS)
    keys = gateway.keys(SECRET, TWO_CLIENTS)
    assert services.client_env([rec], {"openai_gateway_keys": keys}) == {
        "OPENAI_BASE_URL": "http://127.0.0.1:5100/v1",
        "OPENAI_API_KEY": keys["genai"],
    }
    chosen = {"openai_gateway_keys": keys, "openai_gateway_client": "batch"}
    assert services.client_env([rec], chosen, public=True) == {
        "OPENAI_BASE_URL": "https://api.vllm.myia.io/v1",
        "OPENAI_API_KEY": keys["batch"],
    }


def test_the_client_env_never_gives_another_client_s_key() -> None:
    rec = record(openai_gateway_clients=TWO_CLIENTS)
    keys = gateway.keys(SECRET, TWO_CLIENTS)
    unknown = {"openai_gateway_keys": keys, "openai_gateway_client": "nobody"}
    assert services.client_env([rec], unknown) == {"OPENAI_BASE_URL": "http://127.0.0.1:5100/v1"}
    assert services.client_env([rec], {}) == {"OPENAI_BASE_URL": "http://127.0.0.1:5100/v1"}


def test_an_unpublished_gateway_is_reached_at_its_address_even_for_public_clients() -> None:
    rec = record(openai_gateway_hostname="", openai_gateway_bind_address="0.0.0.0")
    assert gateway.client_env([rec], {}, lambda r: r["backend_url"]) == {
        "OPENAI_BASE_URL": "http://127.0.0.1:5100/v1"
    }
    assert services.client_env([rec], {}, public=True) == {
        "OPENAI_BASE_URL": "http://127.0.0.1:5100/v1"
    }
