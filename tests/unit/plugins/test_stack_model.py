"""The catalogue of service kinds and the stack model built from it."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.myia.genai_stack.plugins.module_utils import (
    catalogue,
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
    for role in ("vllm_qwen3", "comfyui_qwen_auth", "forge_turbo"):
        values.update(defaults(role))
    for name in ("vllm_qwen3", "comfyui_qwen_auth", "forge_turbo"):
        values.update(yaml.safe_load((ROOT / f"group_vars/all/{name}.yml").read_text()))
    values.update(
        vllm_qwen3_bind_address="127.0.0.1",
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
    assert names == ["qwen3-micro", "qwen3-mini", "qwen3-medium", "comfyui", "turbo"]
    assert {g["index"]: g["services"] for g in model["gpu_plan"]["gpus"]} == {
        0: ["qwen3-medium", "comfyui"],
        1: ["qwen3-medium", "turbo"],
        2: ["qwen3-micro", "qwen3-mini"],
    }
    assert model["plans"]["vllm"]["services"]["qwen3-mini"]["after"] == ["qwen3-micro"]
    assert model["plans"]["comfyui"]["services"]["comfyui"]["after"] == []
    assert model["clients"][0]["services"] == names
    assert model["ports"][8188] == "comfyui_qwen_auth_port"
    assert set(model["specs"]) == {"vllm", "comfyui", "forge"}


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
    assert len(model["proxies"]["nginx_reverse_proxy"]) == 5


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
