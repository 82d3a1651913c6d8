"""The catalogue of service kinds and the stack model built from it."""

from __future__ import annotations

import base64
import copy
import dataclasses
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.myia.genai_stack.plugins.module_utils import (
    catalogue,
    proxy_rules,
    services,
    stack_model,
)

ROOT = Path(__file__).resolve().parents[3]
GPUS = [{"index": 0}, {"index": 1}, {"index": 2}]


def defaults(role: str) -> dict[str, Any]:
    return yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text())


def stack_values(**change: Any) -> dict[str, Any]:
    """The variables of the user's stack as Ansible hands them over (templates evaluated)."""
    values: dict[str, Any] = {}
    roles = ("vllm_qwen3", "openai_gateway", "comfyui_qwen_auth", "forge_turbo")
    for role in roles:
        values.update(defaults(role))
    for name in roles:
        values.update(yaml.safe_load((ROOT / f"group_vars/all/{name}.yml").read_text()))
    values.update(
        vllm_qwen3_bind_address="127.0.0.1",
        openai_gateway_bind_address="127.0.0.1",
        comfyui_qwen_auth_bind_address="127.0.0.1",
        forge_turbo_bind_address="127.0.0.1",
        forge_turbo_root_dir="/opt/genai/forge",
        forge_turbo_ui_settings={},
        forge_turbo_ui_config={},
        genai_root_dir="/opt/genai",
        genai_panel_port=8765,
        token_sync_clients=[{"path": "/opt/genai/clients/genai.env"}],
        token_sync_secret="",
    )
    values["forge_turbo_instances"] = copy.deepcopy(values["forge_turbo_instances"])
    values["forge_turbo_instances"][0]["checkpoint"] = {
        "name": "sd_xl_turbo_1.0_fp16.safetensors",
        "url": "https://models.invalid/x",
        "sha256": "0" * 64,
    }
    values.update(change)
    return values


def problems(values: dict[str, Any], **kw: Any) -> list[str]:
    with pytest.raises(stack_model.StackModelError) as err:
        stack_model.build(values, GPUS, **kw)
    return err.value.problems


def test_the_user_stack_is_one_model() -> None:
    model = stack_model.build(stack_values(), GPUS)
    names = [r["name"] for r in model["services"]]
    assert names == [
        "qwen3-micro", "qwen3-mini", "qwen3-medium", "openai-gateway", "comfyui", "turbo"
    ]  # fmt: skip
    assert {g["index"]: g["services"] for g in model["gpu_plan"]["gpus"]} == {
        0: ["qwen3-medium", "comfyui"],
        1: ["qwen3-medium", "turbo"],
        2: ["qwen3-micro", "qwen3-mini"],
    }
    assert model["plans"]["vllm"]["services"]["qwen3-mini"]["after"] == ["qwen3-micro"]
    assert model["plans"]["comfyui"]["services"]["comfyui"]["after"] == []
    assert model["clients"][0]["services"] == names
    assert model["ports"][8188] == "comfyui_qwen_auth_port"
    assert model["ports"][5100] == "openai_gateway_port"
    assert set(model["specs"]) == {"vllm", "openai_gateway", "comfyui", "forge"}


def test_the_stack_plan_shows_each_model_pinned_or_unpinned() -> None:
    """group_vars/all pins every model to a commit; one left unpinned says so in the plan table
    that "Show the GPU plan" prints and the compose files carry."""
    model = stack_model.build(stack_values(), GPUS)
    rows = model["gpu_plan"]["table"].splitlines()
    assert rows[4:] == [
        "service       model@revision",
        "qwen3-micro   Qwen/Qwen3-1.7B-FP8@1641e6c",
        "qwen3-mini    Qwen/Qwen3-8B-AWQ@4da05a8",
        "qwen3-medium  Qwen/Qwen3-32B-AWQ@0499c3a",
    ]
    assert model["plans"]["vllm"]["table"].splitlines()[4:] == rows[4:]
    assert len(model["plans"]["comfyui"]["table"].splitlines()) == 4  # no model files: GPUs only
    values = stack_values()
    values["vllm_qwen3_models"] = copy.deepcopy(values["vllm_qwen3_models"])
    del values["vllm_qwen3_models"][1]["revision"]
    values["vllm_qwen3_models"][2]["revision"] = "main"
    rows = stack_model.build(values, GPUS)["gpu_plan"]["table"].splitlines()
    assert rows[6:] == [
        "qwen3-mini    Qwen/Qwen3-8B-AWQ (unpinned)",
        "qwen3-medium  Qwen/Qwen3-32B-AWQ@main (unpinned: not a commit)",
    ]
    assert model["plans"]["vllm"]["services"]["qwen3-mini"]["pinned"] is True


def test_a_bad_revision_fails_the_stack_model_naming_the_variable() -> None:
    values = stack_values()
    values["vllm_qwen3_models"] = copy.deepcopy(values["vllm_qwen3_models"])
    values["vllm_qwen3_models"][1]["revision"] = "main; reboot"
    values["vllm_qwen3_models"][2]["extra_args"] = ["--revision", "main"]
    found = problems(values)
    assert any(
        p.startswith("model 'qwen3-mini' (vllm_qwen3_models[1]): vllm_qwen3_models[1].revision "
                     "'main; reboot' must be a commit")
        for p in found
    ), found  # fmt: skip
    assert (
        "model 'qwen3-medium' (vllm_qwen3_models[2]): vllm_qwen3_models[2].extra_args[0] "
        "'--revision' is set by the role from vllm_qwen3_models[2].revision; remove it"
    ) in found


def test_a_gpu_filled_exactly_to_the_ceiling_fits() -> None:
    values = stack_values(comfyui_qwen_auth_gpu_memory_share=0.45)  # 0.55 + 0.45 = 1.00
    model = stack_model.build(values, GPUS)
    assert model["gpu_plan"]["gpus"][0]["memory_share"] == 1.0
    over = problems(stack_values(comfyui_qwen_auth_gpu_memory_share=0.46))
    assert any(p.startswith("GPU 0: memory shares sum to 1.01") for p in over)


def test_a_port_as_text_still_collides_with_the_same_port_as_a_number() -> None:
    found = problems(stack_values(comfyui_qwen_auth_port="5000"))
    assert "comfyui_qwen_auth_port: port 5000 is already used by vllm_qwen3_models[0].port" in found


def test_every_kind_reports_at_once_and_comfyui_names_its_port() -> None:
    values = stack_values(comfyui_qwen_auth_port=0, forge_turbo_image="")
    values["vllm_qwen3_models"][0]["max_model_len"] = "32k"
    found = problems(values)
    assert any("vllm_qwen3_models[0].max_model_len '32k'" in p for p in found)
    assert "comfyui_qwen_auth_port 0 is not a port number (1-65535)" in found
    assert not any("comfyui_qwen_auth_gpu" in p for p in found)
    assert any("forge_turbo_image" in p and "empty" in p for p in found)


def test_a_role_builds_only_its_kind() -> None:
    model = stack_model.build(stack_values(), GPUS, kinds=["forge"])
    assert [r["name"] for r in model["services"]] == ["turbo"]
    assert stack_model.variables(["forge"]).count("forge_turbo_instances") == 1
    assert "vllm_qwen3_models" not in stack_model.variables(["forge"])


def test_a_proxy_host_checks_its_certificates() -> None:
    values = stack_values()
    found = problems(values, groups=["gpu_hosts", "proxy_hosts"])
    assert any(
        p.startswith("nginx_reverse_proxy_certificates['micro.vllm.myia.io']") for p in found
    )
    values["nginx_reverse_proxy_default_certificate"] = {
        "certificate": "/etc/ssl/a.pem",
        "key": "/etc/ssl/a.key",
    }
    model = stack_model.build(values, GPUS, groups=["proxy_hosts"])
    assert len(model["proxies"]["nginx_reverse_proxy"]) == 6


def _read_whisper(values: Any) -> list[dict[str, Any]]:
    return [
        {
            "name": s["name"],
            "port": int(s["port"]),
            "hostname": s.get("hostname"),
            "bind_address": "127.0.0.1",
            "gpus": [2],
            "source": f"whisper_servers[{i}]",
            "gpu_wish": {"service": s["name"], "source": f"whisper_servers[{i}]", "gpus": [2],
                         "memory_share": 0.05, "port": int(s["port"])},
        }
        for i, s in enumerate(values.get("whisper_servers") or [])
    ]  # fmt: skip


def test_a_new_kind_is_one_catalogue_entry(monkeypatch: pytest.MonkeyPatch) -> None:
    whisper = catalogue.Kind(
        name="whisper",
        role="whisper_server",
        variable="whisper_servers",
        variables=("whisper_servers",),
        read=_read_whisper,
        http={"health_path": "/health", "ready_path": "/v1/models", "auth": "bearer",
              "websocket_paths": [], "max_body_mb": 50, "timeout_s": 300, "streaming": False},
        checks=lambda rec, creds: [{"name": f"{rec['name']}: health",
                                    "url": rec["backend_url"] + "/health"}],
        refusals=lambda rec, creds: [],
        client_env=lambda recs, creds, url: {"WHISPER_BASE_URL": url(recs[0])},
    )  # fmt: skip
    monkeypatch.setitem(catalogue.KINDS, "whisper", whisper)
    monkeypatch.setitem(services.KINDS, "whisper", whisper.http)
    values = stack_values(
        whisper_servers=[{"name": "whisper", "port": 9100, "hostname": "whisper.myia.io"}],
        nginx_reverse_proxy_default_certificate={"certificate": "/a.pem", "key": "/a.key"},
    )
    assert "whisper_servers" in stack_model.variables()
    assert "whisper_server" in stack_model.roles()
    model = stack_model.build(values, GPUS, groups=["proxy_hosts"])
    rec = next(r for r in model["services"] if r["kind"] == "whisper")
    assert rec["backend_url"] == "http://127.0.0.1:9100"
    assert "whisper" in model["gpu_plan"]["gpus"][2]["services"]
    assert model["clients"][0]["services"][-1] == "whisper"
    assert any(r["hostname"] == "whisper.myia.io" for r in model["proxies"]["nginx_reverse_proxy"])
    assert services.health_checks([rec])[0]["url"] == "http://127.0.0.1:9100/health"
    assert services.client_env(model["services"], {})["WHISPER_BASE_URL"] == rec["backend_url"]
    values["whisper_servers"][0]["port"] = 5000
    assert any("whisper_servers[0].port" in p for p in problems(values))


@pytest.mark.parametrize(
    ("secret", "needle"),
    [("short-secret", "too short"), ("CHANGEME-48-random-letters-and-digits", "placeholder")],
)
def test_the_secret_is_checked(secret: str, needle: str) -> None:
    found = problems(stack_values(token_sync_secret=secret))
    assert any(p.startswith("vault_genai_secret") and needle in p for p in found)
    assert stack_model.build(stack_values(token_sync_secret="a" * 48), GPUS)
    assert stack_model.build(stack_values(token_sync_secret="a" * 16), GPUS)


CREDS = {
    "vllm_api_key": "k" * 24,
    "comfyui_token": "$2b$12$" + "t" * 53,
    "forge_username": "forge",
    "forge_password": "p" * 20,
    "forge_web_token": "w" * 20,
    "openai_gateway_keys": {"genai": "g" * 43},
}


def records() -> list[dict[str, Any]]:
    return stack_model.build(stack_values(), GPUS)["services"]


def test_health_checks_prove_each_kind_with_and_without_its_credential() -> None:
    checks = {c["name"]: c for c in services.health_checks(records(), CREDS)}
    bearer = {"type": "bearer", "token": CREDS["vllm_api_key"]}
    assert checks["qwen3-micro: health"] == {
        "name": "qwen3-micro: health", "url": "http://127.0.0.1:5000/health"
    }  # fmt: skip
    assert checks["qwen3-micro: refuses no key"] == {
        "name": "qwen3-micro: refuses no key",
        "url": "http://127.0.0.1:5000/v1/models",
        "status": [401],
    }
    listed = checks["qwen3-micro: lists qwen3-micro"]
    assert listed["auth"] == bearer and listed["url"] == "http://127.0.0.1:5000/v1/models"
    assert listed["json_contains"] == {"path": "data", "value": {"id": "qwen3-micro"}}
    chat = checks["qwen3-mini: chat completion"]
    assert chat["method"] == "POST" and chat["url"] == "http://127.0.0.1:5001/v1/chat/completions"
    assert chat["body"]["model"] == "qwen3-mini" and chat["body"]["max_tokens"] == 16
    assert chat["body"]["chat_template_kwargs"] == {"enable_thinking": False}
    assert (chat["json_path"], chat["json_value"]) == ("choices.0.message.role", "assistant")
    tool = checks["qwen3-medium: tool call"]
    assert tool["body"]["tools"][0]["function"]["name"] == "get_weather"
    assert tool["body"]["tool_choice"] == "auto"
    assert tool["json_path"] == "choices.0.message.tool_calls.0.function.name"
    assert tool["json_value"] == "get_weather"
    answered = checks["qwen3-medium: tool result answered"]
    assert [m["role"] for m in answered["body"]["messages"]] == ["user", "assistant", "tool"]
    assert answered["body"]["messages"][2]["tool_call_id"] == "call-validate"
    assert (answered["json_path"], answered["json_value"]) == ("choices.0.finish_reason", "stop")
    assert checks["comfyui: refuses no token"] == {
        "name": "comfyui: refuses no token",
        "url": "http://127.0.0.1:8188/system_stats",
        "status": [401],
    }
    assert checks["comfyui: system stats"]["auth"] == {
        "type": "bearer", "token": CREDS["comfyui_token"]
    }  # fmt: skip
    assert checks["comfyui: system stats"]["json_path"] == "system"
    query = {"type": "query", "param": "token", "value": CREDS["forge_web_token"]}
    assert checks["turbo: refuses no credentials"] == {
        "name": "turbo: refuses no credentials",
        "url": "http://127.0.0.1:17861/sdapi/v1/sd-models",
        "status": [401],
        "auth": query,
    }
    accepted = checks["turbo: accepts the credentials"]
    basic = "Basic " + base64.b64encode(b"forge:" + b"p" * 20).decode()
    assert accepted["headers"] == {"Authorization": basic} and accepted["auth"] == query
    assert accepted["json_path"] == "" and "status" not in accepted
    assert checks["openai-gateway: health"] == {
        "name": "openai-gateway: health", "url": "http://127.0.0.1:5100/health",
        "json_path": "status",
    }  # fmt: skip
    assert checks["openai-gateway: refuses no key"] == {
        "name": "openai-gateway: refuses no key",
        "url": "http://127.0.0.1:5100/v1/models",
        "status": [401],
        "json_path": "error.code",
        "json_value": "invalid_api_key",
    }
    client = {"type": "bearer", "token": CREDS["openai_gateway_keys"]["genai"]}
    through = checks["openai-gateway: qwen3-medium: tool call"]
    assert through["url"] == "http://127.0.0.1:5100/v1/chat/completions"
    assert through["auth"] == client and through["body"]["model"] == "qwen3-medium"
    stream = checks["openai-gateway: qwen3-micro: streamed chat"]
    assert stream["auth"] == client and stream["body"]["stream"] is True
    assert stream["body_contains"] == "data: [DONE]"
    # vLLM: 6 per model; the gateway: 2 open, each model listed, 3 conversation probes + a stream
    assert len(checks) == 3 * 6 + (2 + 3 * (1 + 3 + 1)) + 2 + 2


def test_without_credentials_only_the_open_paths_and_the_refusals_are_checked() -> None:
    names = [c["name"] for c in services.health_checks(records(), {})]
    assert names == [
        "qwen3-micro: health", "qwen3-micro: refuses no key",
        "qwen3-mini: health", "qwen3-mini: refuses no key",
        "qwen3-medium: health", "qwen3-medium: refuses no key",
        "openai-gateway: health", "openai-gateway: refuses no key",
        "comfyui: refuses no token", "turbo: refuses no credentials",
    ]  # fmt: skip


def test_refusal_checks_present_the_old_credential_and_want_401() -> None:
    checks = services.refusal_checks(records(), CREDS)
    assert [c["name"] for c in checks] == [
        "qwen3-micro: refuses the old credential", "qwen3-mini: refuses the old credential",
        "qwen3-medium: refuses the old credential", "openai-gateway: refuses the old key of genai",
        "comfyui: refuses the old credential", "turbo: refuses the old credential",
    ]  # fmt: skip
    assert all(c["status"] == [401] for c in checks)
    assert checks[0]["auth"] == {"type": "bearer", "token": CREDS["vllm_api_key"]}
    assert checks[0]["url"] == "http://127.0.0.1:5000/v1/models"
    assert checks[3]["auth"] == {"type": "bearer", "token": CREDS["openai_gateway_keys"]["genai"]}
    assert checks[3]["url"] == "http://127.0.0.1:5100/v1/models"
    assert checks[4]["auth"] == {"type": "bearer", "token": CREDS["comfyui_token"]}
    assert checks[4]["url"] == "http://127.0.0.1:8188/system_stats"
    basic = "Basic " + base64.b64encode(b"forge:" + b"p" * 20).decode()
    assert checks[5]["headers"] == {"Authorization": basic}
    assert checks[5]["url"] == "http://127.0.0.1:17861/sdapi/v1/sd-models"
    assert services.refusal_checks(records(), {}) == []
    only_forge = services.refusal_checks(records(), {"forge_password": "x" * 20})
    assert (
        only_forge[0]["headers"]["Authorization"]
        == "Basic " + base64.b64encode(b"admin:" + b"x" * 20).decode()
    )


def test_client_env_holds_every_url_and_credential() -> None:
    env = services.client_env(records(), CREDS)
    assert env == {
        "VLLM_BASE_URL": "http://127.0.0.1:5000/v1",
        "VLLM_MODEL": "qwen3-micro",
        "VLLM_QWEN3_MICRO_BASE_URL": "http://127.0.0.1:5000/v1",
        "VLLM_QWEN3_MICRO_MODEL": "qwen3-micro",
        "VLLM_QWEN3_MINI_BASE_URL": "http://127.0.0.1:5001/v1",
        "VLLM_QWEN3_MINI_MODEL": "qwen3-mini",
        "VLLM_QWEN3_MEDIUM_BASE_URL": "http://127.0.0.1:5002/v1",
        "VLLM_QWEN3_MEDIUM_MODEL": "qwen3-medium",
        "VLLM_API_KEY": CREDS["vllm_api_key"],
        "OPENAI_BASE_URL": "http://127.0.0.1:5100/v1",
        "OPENAI_API_KEY": CREDS["openai_gateway_keys"]["genai"],
        "COMFYUI_BASE_URL": "http://127.0.0.1:8188",
        "COMFYUI_TOKEN": CREDS["comfyui_token"],
        "FORGE_TURBO_BASE_URL": "http://127.0.0.1:17861",
        "FORGE_BASE_URL": "http://127.0.0.1:17861",
        "FORGE_USER": "forge",
        "FORGE_PASSWORD": CREDS["forge_password"],
        "FORGE_WEB_TOKEN": CREDS["forge_web_token"],
    }
    public = services.client_env(records(), {}, public=True)
    assert public["VLLM_BASE_URL"] == "https://micro.vllm.myia.io/v1"
    assert public["OPENAI_BASE_URL"] == "https://api.vllm.myia.io/v1"
    assert public["COMFYUI_BASE_URL"] == "https://qwen-image-edit.myia.io"
    assert public["FORGE_BASE_URL"] == "https://turbo.stable-diffusion-webui-forge.myia.io"
    secrets = ("VLLM_API_KEY", "OPENAI_API_KEY", "COMFYUI_TOKEN", "FORGE_PASSWORD")
    assert not any(k in public for k in secrets)


def test_a_record_carries_its_kind_facts_and_reachable_address() -> None:
    micro, *_, gateway, comfy, turbo = records()
    assert micro == {
        "name": "qwen3-micro", "kind": "vllm", "source": "vllm_qwen3_models[0]",
        "hostname": "micro.vllm.myia.io", "bind_address": "127.0.0.1", "port": 5000,
        "backend_url": "http://127.0.0.1:5000", "gpus": [2], "served_model_names": ["qwen3-micro"],
        "health_path": "/health", "ready_path": "/v1/models", "auth": "bearer",
        "websocket_paths": [], "max_body_mb": 16, "timeout_s": 900, "streaming": True,
    }  # fmt: skip
    assert (comfy["source"], comfy["auth"], comfy["websocket_paths"]) == (
        "comfyui_qwen_auth_port", "comfyui_token", ["/ws", "/api/ws"]
    )  # fmt: skip
    assert comfy["served_model_names"] == [] and turbo["auth"] == "basic"
    assert gateway == {
        "name": "openai-gateway", "kind": "openai_gateway", "source": "openai_gateway",
        "hostname": "api.vllm.myia.io", "bind_address": "127.0.0.1", "port": 5100,
        "backend_url": "http://127.0.0.1:5100", "gpus": [],
        "served_model_names": ["qwen3-medium", "qwen3-micro", "qwen3-mini"],
        "health_path": "/health", "ready_path": "/health", "auth": "bearer",
        "websocket_paths": [], "max_body_mb": 16, "timeout_s": 900, "streaming": True,
        "clients": [{"name": "genai", "models": None, "requests_per_minute": None,
                     "tokens_per_minute": None}],
        "backends": {
            "qwen3-micro": {"backend": "qwen3-micro", "url": "http://127.0.0.1:5000"},
            "qwen3-mini": {"backend": "qwen3-mini", "url": "http://127.0.0.1:5001"},
            "qwen3-medium": {"backend": "qwen3-medium", "url": "http://127.0.0.1:5002"},
        },
        "image": "genai-openai-gateway:local", "base_image": "debian:bookworm-slim",
    }  # fmt: skip
    wild = stack_model.build(stack_values(comfyui_qwen_auth_bind_address="0.0.0.0"), GPUS)
    assert wild["services"][4]["backend_url"] == "http://127.0.0.1:8188"


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"token_sync_clients": "x"}, "token_sync_clients must be a list of {path, services, public}"),
        ({"token_sync_clients": ["x"]},
         "token_sync_clients[0] must be a mapping with path (and services, public, mode)"),
        ({"token_sync_clients": [{"path": "rel/a.env"}]},
         "token_sync_clients[0].path 'rel/a.env' must be an absolute file path without '..'"),
        ({"token_sync_clients": [{"path": "/a/../b.env"}]},
         "token_sync_clients[0].path '/a/../b.env' must be an absolute file path without '..'"),
        ({"token_sync_clients": [{"path": "/a/"}]},
         "token_sync_clients[0].path '/a/' must be an absolute file path without '..'"),
        ({"token_sync_clients": [{"path": "/a.env"}, {"path": "//a.env"}]},
         "token_sync_clients[1].path '/a.env' is already written by token_sync_clients[0]"),
        ({"token_sync_clients": [{"path": "/a.env", "services": "turbo"}]},
         "token_sync_clients[0].services must be a list of service names"),
        ({"token_sync_clients": [{"path": "/a.env", "services": ["turbo", "x"]}]},
         "token_sync_clients[0].services names unknown service(s) x (known: qwen3-micro, "
         "qwen3-mini, qwen3-medium, openai-gateway, comfyui, turbo)"),
        ({"token_sync_clients": [{"path": "/a.env", "mode": 600}]},
         "token_sync_clients[0].mode 600 must be a quoted octal mode such as '0600'"),
        ({"token_sync_secret": 123456789012345678},
         "vault_genai_secret (token_sync_secret) must be a string"),
        ({"token_sync_secret": "a" * 15},
         "vault_genai_secret (token_sync_secret) is too short (15 characters): use at least 16 "
         "random letters and digits"),
        ({"token_sync_secret": "a" * 20 + "\n"},
         "vault_genai_secret (token_sync_secret) must be one line"),
        ({"genai_root_dir": "/opt/../etc"}, "genai_root_dir '/opt/../etc' must be an absolute path without '..'"),
        ({"genai_root_dir": 5}, "genai_root_dir 5 must be an absolute path without '..'"),
        ({"genai_bind_address": "0.0.0.0 "}, "genai_bind_address '0.0.0.0 ' is not an IP address (e.g. 127.0.0.1)"),
        ({"genai_panel_port": 8188}, "genai_panel_port: port 8188 is already used by comfyui_qwen_auth_port"),
        ({"genai_panel_port": "x"}, "genai_panel_port 'x' is not a port number (1-65535)"),
        ({"update_services": ["turbo", "nope"]},
         "update_services names unknown services: nope (known: qwen3-micro, qwen3-mini, "
         "qwen3-medium, openai-gateway, comfyui, turbo)"),
        ({"update_services": "turbo"},
         "update_services 'turbo' must be a list of service names"),
        ({"vllm_qwen3_project_name": "My-Project"},
         "vllm_qwen3_project_name 'My-Project' must be lower-case letters, digits, '-' or '_' "
         "(a compose project name)"),
        ({"comfyui_qwen_auth_hostname": "micro.vllm.myia.io"},
         "comfyui_qwen_auth_hostname: hostname 'micro.vllm.myia.io' is already used by "
         "vllm_qwen3_models[0].hostname"),
        ({"comfyui_qwen_auth_service_name": "qwen3-mini"},
         "comfyui_qwen_auth_service_name: name 'qwen3-mini' is already used by "
         "vllm_qwen3_models[1].name"),
        ({"comfyui_qwen_auth_hostname": "<the public name>"},
         "placeholders of the example inventory still to fill in: comfyui_qwen_auth_hostname "
         "'<the public name>'"),
    ],
)  # fmt: skip
def test_stack_wide_problems_are_exact(change: dict[str, Any], problem: str) -> None:
    assert problem in problems(stack_values(**change))


def test_clients_are_normalised_with_their_services() -> None:
    clients = [{"path": "//srv//a.env", "services": ["turbo"], "mode": "0640"}, {"path": "/b.env"}]
    model = stack_model.build(stack_values(token_sync_clients=clients), GPUS)
    assert model["clients"] == [
        {"path": "/srv/a.env", "services": ["turbo"], "mode": "0640"},
        {"path": "/b.env", "services": ["qwen3-micro", "qwen3-mini", "qwen3-medium",
                                        "openai-gateway", "comfyui", "turbo"]},
    ]  # fmt: skip
    assert stack_model.build(stack_values(token_sync_clients=None), GPUS)["clients"] == []
    assert stack_model.build(stack_values(token_sync_clients=""), GPUS)["clients"] == []


def test_variables_and_roles_follow_the_kinds_and_groups() -> None:
    names = stack_model.variables()
    assert names[: len(stack_model.STACK_VARIABLES)] == list(stack_model.STACK_VARIABLES)
    assert "vllm_qwen3_project_name" in names and "nginx_reverse_proxy_https_port" not in names
    proxy = stack_model.variables([], ["iis_hosts"])
    assert "iis_reverse_proxy_certificates" in proxy and "vllm_qwen3_models" not in proxy
    assert stack_model.roles(["vllm"]) == ["vllm_qwen3", "token_sync"]
    assert stack_model.roles([], ["proxy_hosts"]) == ["token_sync", "nginx_reverse_proxy"]
    with pytest.raises(stack_model.StackModelError, match="unknown service kind"):
        stack_model.variables(["whisper"])


def test_a_proxy_only_host_checks_the_gpu_hosts_records() -> None:
    gpu = stack_model.build(stack_values(), GPUS)["services"]
    cert = {"certificate": "/etc/ssl/a.pem", "key": "/etc/ssl/a.key"}
    values = {"nginx_reverse_proxy_default_certificate": cert}
    model = stack_model.build(values, [], kinds=[], groups=["proxy_hosts"], services_of_others=gpu)
    assert len(model["proxies"]["nginx_reverse_proxy"]) == 6 and model["services"] == []
    # the GPU hosts have no model (they failed): the proxy host's own settings only
    alone = stack_model.build(values, [], kinds=[], groups=["proxy_hosts"])
    assert alone["proxies"] == {}
    with pytest.raises(stack_model.StackModelError) as err:
        stack_model.build({}, [], kinds=[], groups=["proxy_hosts"], services_of_others=gpu)
    assert err.value.problems[0].startswith(
        "nginx_reverse_proxy_certificates['micro.vllm.myia.io']"
    )


def test_the_model_lists_every_port_with_its_variable() -> None:
    values = stack_values(
        nginx_reverse_proxy_default_certificate={"certificate": "/a", "key": "/b"},
        nginx_reverse_proxy_https_port=443,
        nginx_reverse_proxy_http_port=80,
    )
    values["forge_turbo_instances"][0]["web_port"] = 17862
    model = stack_model.build(values, GPUS, groups=["proxy_hosts"])
    assert model["ports"] == {
        5000: "vllm_qwen3_models[0].port", 5001: "vllm_qwen3_models[1].port",
        5002: "vllm_qwen3_models[2].port", 5100: "openai_gateway_port",
        8188: "comfyui_qwen_auth_port",
        17861: "forge_turbo_instances[0].port", 17862: "forge_turbo_instances[0].web_port",
        443: "nginx_reverse_proxy_https_port", 80: "nginx_reverse_proxy_http_port",
        8765: "genai_panel_port",
    }  # fmt: skip
    assert model["kinds"]["comfyui"] == {
        "role": "comfyui_qwen_auth",
        "variable": "comfyui_qwen_auth_port",
        "tag": "comfyui",
    }
    # site.yml includes the kinds' roles in this order, each with its tag
    assert [(k["role"], k["tag"]) for k in model["kinds"].values()] == [
        ("vllm_qwen3", "vllm"), ("openai_gateway", "gateway"),
        ("comfyui_qwen_auth", "comfyui"), ("forge_turbo", "forge"),
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"comfyui_qwen_auth_service_name": "com fy"},
         "comfyui_qwen_auth_service_name 'com fy' must be letters, digits"),
        ({"comfyui_qwen_auth_port": "x"}, "comfyui_qwen_auth_port 'x' is not a port number (1-65535)"),
        ({"comfyui_qwen_auth_bind_address": "host"},
         "comfyui_qwen_auth_bind_address 'host' is not an IP address"),
        ({"comfyui_qwen_auth_hostname": "http://c.myia.io"},
         "comfyui_qwen_auth_hostname 'http://c.myia.io' must be a DNS name without a scheme"),
        ({"comfyui_qwen_auth_gpu": "zero"}, "comfyui_qwen_auth_gpu ['zero'] must list GPU indices"),
        ({"comfyui_qwen_auth_gpu_memory_share": 2},
         "comfyui_qwen_auth_gpu_memory_share 2 must be a fraction of the GPU memory in (0, 1]"),
        ({"comfyui_qwen_auth_image": ""}, "comfyui_qwen_auth_image is empty"),
        ({"comfyui_qwen_auth_image_tag": "a b"},
         "comfyui_qwen_auth_image_tag 'a b' is given, but comfyui_qwen_auth_image 'comfyui-qwen:latest' already names"),
        ({"comfyui_qwen_auth_start_timeout": "5m"},
         "comfyui_qwen_auth_start_timeout '5m' must be a positive number of seconds"),
        ({"comfyui_qwen_auth_env": {"A-B": "1"}},
         "comfyui_qwen_auth_env.A-B: 'A-B' is not an environment variable name"),
        ({"comfyui_qwen_auth_env": {"NVIDIA_VISIBLE_DEVICES": "1"}},
         "comfyui_qwen_auth_env.NVIDIA_VISIBLE_DEVICES: set by the role"),
        ({"comfyui_qwen_auth_extra_args": "--x"}, "comfyui_qwen_auth_extra_args must be a list of arguments"),
        ({"comfyui_qwen_auth_extra_args": ["--cpu-vae", "--cuda-device=1"]},
         "comfyui_qwen_auth_extra_args[1] '--cuda-device' is set by the role from "
         "comfyui_qwen_auth_gpu, the GPU plan; remove it"),
        ({"comfyui_qwen_auth_extra_args": ["--a\nb"]},
         "comfyui_qwen_auth_extra_args[0] '--a\\nb' must be one line without control characters"),
        ({"comfyui_qwen_auth_cors_origin": "myia.io"},
         "comfyui_qwen_auth_cors_origin 'myia.io' must be empty, '*' or an origin like "
         "https://<hostname> (scheme and host, no path)"),
        ({"comfyui_qwen_auth_models": {"a": 1}}, "comfyui_qwen_auth_models must be a list of model files"),
        ({"comfyui_qwen_auth_models": ["a"]},
         "comfyui_qwen_auth_models[0] must be a mapping with name, folder, url, sha256"),
        ({"comfyui_qwen_auth_models": [{"name": "a/b", "folder": "vae"}]},
         "comfyui_qwen_auth_models[0].name 'a/b' must be a file name without '/'"),
        ({"comfyui_qwen_auth_models": [{"name": "..", "folder": "vae"}]},
         "comfyui_qwen_auth_models[0].name '..' must be a file name without '/'"),
        ({"comfyui_qwen_auth_models": [{"name": "a", "folder": "models"}]},
         "comfyui_qwen_auth_models[0].folder 'models' must be one of diffusion_models, unet, "
         "text_encoders, clip, vae, loras, checkpoints, clip_vision, upscale_models, embeddings"),
        ({"comfyui_qwen_auth_models": [{"name": "a", "folder": "vae", "sha256": "abc"}]},
         "comfyui_qwen_auth_models[0].sha256 'abc' must be 64 hexadecimal digits"),
        ({"comfyui_qwen_auth_models": [{"name": "a", "folder": "vae", "url": "s3://b/a",
                                        "sha256": "0" * 64}]},
         "comfyui_qwen_auth_models[0].url 's3://b/a' must be an http(s)://, ftp:// or file:// URL"),
        ({"comfyui_qwen_auth_models": [{"name": "a", "folder": "vae", "url": "https://m.invalid/a"}]},
         "comfyui_qwen_auth_models[0].sha256 is required with comfyui_qwen_auth_models[0].url (a "
         "would be fetched unverified; or set comfyui_qwen_auth_allow_unverified: true)"),
    ],
)  # fmt: skip
def test_comfyui_problems_name_its_own_variables(change: dict[str, Any], problem: str) -> None:
    found = problems(stack_values(**change))
    assert any(p.startswith(problem) for p in found), found


def test_comfyui_is_read_from_its_variables() -> None:
    values = stack_values(
        comfyui_qwen_auth_image="local/comfyui", comfyui_qwen_auth_image_tag="v1",
        comfyui_qwen_auth_start_timeout="90", comfyui_qwen_auth_gpu="1",
        comfyui_qwen_auth_gpu_memory_share="0.1", comfyui_qwen_auth_port="9188",
        comfyui_qwen_auth_models=[{"name": "a", "folder": "vae", "url": "https://m.invalid/a"}],
        comfyui_qwen_auth_allow_unverified=True, comfyui_qwen_auth_cors_origin="*",
    )  # fmt: skip
    (spec,) = stack_model.build(values, GPUS)["specs"]["comfyui"]
    assert spec == {
        "name": "comfyui", "port": 9188, "hostname": "qwen-image-edit.myia.io",
        "bind_address": "127.0.0.1", "gpus": [1], "image": "local/comfyui:v1",
        "load_timeout": 90, "source": "comfyui_qwen_auth_port",
        "gpu_wish": {"service": "comfyui", "source": "comfyui_qwen_auth_gpu", "gpus": [1],
                     "memory_share": 0.1, "port": 9188, "bind_address": "127.0.0.1"},
    }  # fmt: skip
    untagged = stack_values(
        comfyui_qwen_auth_image="local/comfyui:v2", comfyui_qwen_auth_image_tag=""
    )
    assert stack_model.build(untagged, GPUS)["specs"]["comfyui"][0]["image"] == "local/comfyui:v2"
    none = stack_values(comfyui_qwen_auth_models=None, comfyui_qwen_auth_hostname="")
    (rec,) = [r for r in stack_model.build(none, GPUS)["services"] if r["kind"] == "comfyui"]
    assert rec["hostname"] is None


# --- whole messages (mutation testing, #17) -----------------------------------------------------


def test_the_error_lists_every_problem_on_its_own_line() -> None:
    err = stack_model.StackModelError(["a", "b"])
    assert str(err) == "invalid stack:\n- a\n- b" and err.problems == ["a", "b"]


def test_placeholders_are_looked_for_in_the_variables_of_the_kinds_and_groups_only() -> None:
    values = stack_values()
    values["vllm_qwen3_models"][1]["hostname"] = "<mini host>"
    assert [r["name"] for r in stack_model.build(values, GPUS, kinds=["forge"])["services"]] == [
        "turbo"
    ]
    values = stack_values(
        comfyui_qwen_auth_hostname="c.example.org",
        nginx_reverse_proxy_backend_host="<the GPU host>",
        iis_reverse_proxy_backend_host="<not checked here>",
    )
    found = problems(values, groups=["proxy_hosts"])
    assert found[0] == (
        "placeholders of the example inventory still to fill in: comfyui_qwen_auth_hostname "
        "'c.example.org', nginx_reverse_proxy_backend_host '<the GPU host>'"
    )


def test_a_placeholder_secret_is_named_but_never_echoed() -> None:
    secret = "<48 random letters and digits from your vault>"
    assert problems(stack_values(token_sync_secret=secret)) == [
        "vault_genai_secret (token_sync_secret) still holds the documented placeholder: put "
        "48 random letters and digits in the vault, or remove it to let token_sync generate one"
    ]


def test_a_kind_that_cannot_be_read_is_named_and_the_others_are_still_read(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def broken(values: Any) -> list[dict[str, Any]]:
        raise KeyError("boom")

    kind = catalogue.KINDS["vllm"]
    monkeypatch.setitem(catalogue.KINDS, "vllm", dataclasses.replace(kind, read=broken))
    assert problems(stack_values(comfyui_qwen_auth_port=0, forge_turbo_image="")) == [
        "vllm_qwen3_models: cannot be read ('boom')",
        "comfyui_qwen_auth_port 0 is not a port number (1-65535)",
        "instance 'turbo' (forge_turbo_instances[0]): forge_turbo_instances[0] image "
        "(forge_turbo_image) is empty: set an image reference such as vllm/vllm-openai:v0.34.0",
    ]


def test_hostnames_collide_whatever_their_case_and_names_do_not() -> None:
    values = stack_values(comfyui_qwen_auth_hostname="MINI.vllm.myia.io")
    values["vllm_qwen3_models"][0]["hostname"] = None  # a service without one is skipped
    assert problems(values) == [
        "comfyui_qwen_auth_hostname: hostname 'mini.vllm.myia.io' is already used by "
        "vllm_qwen3_models[1].hostname"
    ]
    values = stack_values(comfyui_qwen_auth_service_name="Qwen3-mini")
    names = [r["name"] for r in stack_model.build(values, GPUS)["services"]]
    assert names == [
        "qwen3-micro", "qwen3-mini", "qwen3-medium", "openai-gateway", "Qwen3-mini", "turbo"
    ]  # fmt: skip


def test_a_root_dir_on_two_lines_is_refused() -> None:
    assert problems(stack_values(genai_root_dir="/opt/genai\n/x")) == [
        "genai_root_dir '/opt/genai\\n/x' must be one line without control characters"
    ]


@pytest.mark.parametrize(
    "root",
    ["/", "//", "/etc", "/usr/", "/var/lib", "/opt", "/proc/genai", "/./etc/x", "/run/genai"],
)
def test_a_root_dir_that_is_a_system_directory_is_refused(root: str) -> None:
    assert problems(stack_values(genai_root_dir=root)) == [
        f"genai_root_dir {root!r} is a system directory: the stack's projects, env files and "
        "snapshots would be written there; use a directory of its own such as /opt/genai"
    ]


@pytest.mark.parametrize("root", ["/opt/genai", "/srv/genai", "/var/lib/genai", "/data"])
def test_a_root_dir_of_its_own_is_accepted(root: str) -> None:
    stack_model.build(stack_values(genai_root_dir=root), GPUS)


def test_every_unknown_service_to_update_is_named() -> None:
    assert problems(stack_values(update_services=["nope", "turbo", 3])) == [
        "update_services names unknown services: nope, 3 (known: qwen3-micro, qwen3-mini, "
        "qwen3-medium, openai-gateway, comfyui, turbo)"
    ]


def test_the_variables_of_a_kind_and_a_proxy_in_full() -> None:
    assert stack_model.variables(["comfyui", "comfyui"], ["gpu_hosts", "iis_hosts"]) == [
        *stack_model.STACK_VARIABLES,
        *catalogue.KINDS["comfyui"].variables,
        "comfyui_qwen_auth_project_name",
        "iis_reverse_proxy_publish", "iis_reverse_proxy_overrides",
        "iis_reverse_proxy_backend_host", "iis_reverse_proxy_certificates",
        "iis_reverse_proxy_default_certificate", "iis_reverse_proxy_https_port",
        "iis_reverse_proxy_http_port",
    ]  # fmt: skip
    assert stack_model.roles(None, ["iis_hosts", "proxy_hosts"]) == [
        "vllm_qwen3", "openai_gateway", "comfyui_qwen_auth", "forge_turbo", "token_sync",
        "nginx_reverse_proxy", "iis_reverse_proxy",
    ]  # fmt: skip


def test_unknown_kinds_are_all_named_with_the_known_ones() -> None:
    with pytest.raises(stack_model.StackModelError) as err:
        stack_model.roles(["vllm", "whisper", "tgi"])
    assert err.value.problems == [
        "unknown service kind(s) whisper, tgi (known: vllm, openai_gateway, comfyui, forge)"
    ]


def test_the_ceiling_caps_the_whole_plan_and_each_kind_s() -> None:
    model = stack_model.build(stack_values(), GPUS, ceiling="0.95")
    assert model["gpu_plan"]["ceiling"] == 0.95
    assert {k: p["ceiling"] for k, p in model["plans"].items()} == {
        "vllm": 0.95, "openai_gateway": 0.95, "comfyui": 0.95, "forge": 0.95
    }  # fmt: skip


def test_each_proxy_setting_reaches_the_proxy_rules() -> None:
    cert = {"certificate": "/c.pem", "key": "/c.key"}
    settings = {
        "publish": ["turbo", "comfyui"],
        "overrides": {"turbo": {"timeout_s": 60}},
        "backend_host": "10.9.9.9",
        "certificates": {"qwen-image-edit.myia.io": cert},
        "default_certificate": {"certificate": "/d.pem", "key": "/d.key"},
    }
    values = stack_values(
        **{f"nginx_reverse_proxy_{k}": v for k, v in settings.items()},
        nginx_reverse_proxy_https_port="8443",
    )
    model = stack_model.build(values, GPUS, groups=["proxy_hosts"])
    rules = proxy_rules.compute(
        copy.deepcopy(model["services"]), "nginx_reverse_proxy", certificate_kind="files",
        https_port=8443, **copy.deepcopy(settings),
    )  # fmt: skip
    assert model["proxies"] == {"nginx_reverse_proxy": rules}
    assert [(r["name"], r["timeout_s"], r["certificate"]) for r in rules] == [
        ("turbo", 60, {"certificate": "/d.pem", "key": "/d.key"}),
        ("comfyui", 900, cert),
    ]
    assert [(r["backend_host"], r["public_url"]) for r in rules] == [
        ("10.9.9.9", "https://turbo.stable-diffusion-webui-forge.myia.io:8443"),
        ("10.9.9.9", "https://qwen-image-edit.myia.io:8443"),
    ]


def test_an_iis_host_computes_its_own_rules_only() -> None:
    values = stack_values(iis_reverse_proxy_default_certificate="ab" * 20)
    model = stack_model.build(values, GPUS, groups=["iis_hosts"])
    assert list(model["proxies"]) == ["iis_reverse_proxy"]
    assert {r["certificate"] for r in model["proxies"]["iis_reverse_proxy"]} == {"AB" * 20}


CERT = {"certificate": "/etc/ssl/a.pem", "key": "/etc/ssl/a.key"}


def test_the_proxy_listens_on_443_by_default() -> None:
    values = stack_values(nginx_reverse_proxy_default_certificate=CERT)
    rules = stack_model.build(values, GPUS, groups=["proxy_hosts"])["proxies"][
        "nginx_reverse_proxy"
    ]
    assert rules[-1]["public_url"] == "https://turbo.stable-diffusion-webui-forge.myia.io"


def test_proxy_problems_come_after_the_others_in_full() -> None:
    values = stack_values(
        genai_panel_port="x",
        nginx_reverse_proxy_default_certificate=CERT,
        nginx_reverse_proxy_overrides={"nope": {}, "turbo": {"backend_host": "h"}},
    )
    assert problems(values, groups=["proxy_hosts"]) == [
        "genai_panel_port 'x' is not a port number (1-65535)",
        "nginx_reverse_proxy_overrides['nope']: 'nope' is not a service of "
        "nginx_reverse_proxy_services (known: qwen3-micro, qwen3-mini, qwen3-medium, "
        "openai-gateway, comfyui, turbo)",
        "nginx_reverse_proxy_overrides['turbo'].backend_host: cannot be overridden (only "
        "backend_url, max_body_mb, timeout_s, streaming, websocket_paths)",
    ]


def test_a_one_line_proxy_refusal_is_reported_as_it_is() -> None:
    values = stack_values(nginx_reverse_proxy_publish="turbo")
    assert problems(values, groups=["proxy_hosts"]) == [
        "nginx_reverse_proxy_publish: must be a list of service names"
    ]


def test_a_proxy_port_that_is_no_number_is_reported_twice() -> None:
    values = stack_values(
        nginx_reverse_proxy_default_certificate=CERT, nginx_reverse_proxy_https_port="abc"
    )
    assert problems(values, groups=["proxy_hosts"]) == [
        "nginx_reverse_proxy_https_port 'abc' is not a port number (1-65535)",
        "nginx_reverse_proxy: cannot compute the proxy rules (invalid literal for int() with "
        "base 10: 'abc')",
    ]


def test_placeholders_are_found_deep_inside_lists_and_mappings() -> None:
    values = stack_values(comfyui_qwen_auth_env={"A": "<a value>", "B": ["x", {"C": "<c>"}]})
    values["vllm_qwen3_models"][1]["hostname"] = "mini.example.com"
    assert problems(values)[0] == (
        "placeholders of the example inventory still to fill in: "
        "vllm_qwen3_models[1].hostname 'mini.example.com', comfyui_qwen_auth_env.A '<a value>', "
        "comfyui_qwen_auth_env.B[1].C '<c>'"
    )


def test_an_empty_port_is_no_port() -> None:
    values = stack_values(genai_panel_port="", nginx_reverse_proxy_default_certificate=CERT,
                          nginx_reverse_proxy_http_port="")  # fmt: skip
    model = stack_model.build(values, GPUS, groups=["proxy_hosts"])
    assert sorted(model["ports"]) == [5000, 5001, 5002, 5100, 8188, 17861]


def test_every_client_problem_is_reported_in_full() -> None:
    clients = ["x", {"path": "rel"}, {"path": "/a.env", "services": "s"},
               {"path": "/b.env", "services": ["x", "turbo", "y"]}, {"path": "/c\x7f.env"},
               {"path": "/d.env", "mode": "600"}]  # fmt: skip
    assert problems(stack_values(token_sync_clients=clients)) == [
        "token_sync_clients[0] must be a mapping with path (and services, public, mode)",
        "token_sync_clients[1].path 'rel' must be an absolute file path without '..'",
        "token_sync_clients[2].services must be a list of service names",
        "token_sync_clients[3].services names unknown service(s) x, y (known: qwen3-micro, "
        "qwen3-mini, qwen3-medium, openai-gateway, comfyui, turbo)",
        "token_sync_clients[4].path '/c\\x7f.env' must be an absolute file path without '..'",
        "token_sync_clients[5].mode '600' must be a quoted octal mode such as '0600'",
    ]


def test_a_host_without_services_knows_none() -> None:
    values = {"token_sync_clients": [{"path": "/a.env", "services": ["turbo"]}]}
    with pytest.raises(stack_model.StackModelError) as err:
        stack_model.build(values, [], kinds=[])
    assert err.value.problems == [
        "token_sync_clients[0].services names unknown service(s) turbo (known: none)"
    ]
