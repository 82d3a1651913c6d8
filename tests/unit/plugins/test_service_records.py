"""module_utils.services: one uniform record per service, and conflicts over the whole model."""

from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.myia.genai_stack.plugins.module_utils import catalogue, services


def test_a_comfyui_record_in_full_with_its_gpu_wish() -> None:
    spec = {
        "name": "c",
        "port": "8188",
        "bind_address": "::",
        "gpus": ["0"],
        "memory_share": "0.5",
        "gpu_variable": "comfyui_qwen_auth_gpus",
    }
    assert services.record("comfyui", spec, "comfyui_qwen_auth_port") == {
        "name": "c",
        "kind": "comfyui",
        "source": "comfyui_qwen_auth_port",
        "hostname": None,
        "bind_address": "::",
        "port": 8188,
        "backend_url": "http://127.0.0.1:8188",
        "gpus": [0],
        "served_model_names": [],
        **catalogue.KINDS["comfyui"].http,
        "gpu_wish": {
            "service": "c",
            "source": "comfyui_qwen_auth_gpus",
            "gpus": [0],
            "memory_share": 0.5,
            "port": 8188,
            "bind_address": "::",
        },
    }


def test_a_vllm_record_keeps_its_address_and_served_names() -> None:
    spec = {"name": "m", "port": 5000, "bind_address": "10.0.0.2", "served_model_names": ["a"]}
    rec = services.record("vllm", spec, "vllm_qwen3_models[0]")
    assert rec["backend_url"] == "http://10.0.0.2:5000" and rec["bind_address"] == "10.0.0.2"
    assert rec["served_model_names"] == ["a"] and "gpu_wish" not in rec


@pytest.mark.parametrize("memory_share", [None, ""])
def test_without_a_memory_share_there_is_no_gpu_wish(memory_share: Any) -> None:
    spec = {"name": "c", "port": 1, "memory_share": memory_share}
    assert "gpu_wish" not in services.record("comfyui", spec, "comfyui_qwen_auth_port")


def test_the_gpu_wish_names_the_gpus_of_the_source_by_default() -> None:
    spec = {"name": "c", "port": 1, "gpus": [1], "memory_share": 0.25}
    wish = services.record("comfyui", spec, "comfy")["gpu_wish"]
    assert wish["source"] == "comfy.gpus" and wish["bind_address"] == "127.0.0.1"


@pytest.mark.parametrize(
    ("kind", "spec", "message"),
    [
        ("tgi", {"name": "a", "port": 1}, "vllm_qwen3_models[0]: unknown service kind 'tgi'"),
        (
            "vllm",
            {"name": "", "port": 1},
            "vllm_qwen3_models[0]: missing vllm_qwen3_models[0].name",
        ),
        (
            "vllm",
            {"name": "a", "port": None},
            "vllm_qwen3_models[0]: missing vllm_qwen3_models[0].port",
        ),
    ],
)
def test_record_refusals_in_full(kind: str, spec: dict[str, Any], message: str) -> None:
    with pytest.raises(services.ServiceModelError) as raised:
        services.record(kind, spec, "vllm_qwen3_models[0]")
    assert str(raised.value) == message


def test_unknown_kinds_are_all_named() -> None:
    with pytest.raises(services.ServiceModelError) as raised:
        services.build({"y": [], "x": {}})
    assert str(raised.value) == "unknown service kind(s) x, y"


def test_a_single_mapping_is_sourced_by_the_kind_variable() -> None:
    (rec,) = services.build({"comfyui": {"name": "c", "port": 8188}})
    assert rec["source"] == catalogue.KINDS["comfyui"].variable
    (rec,) = services.build({"comfyui": {"name": "c", "port": 8188}}, {"comfyui": "my_comfy"})
    assert rec["source"] == "my_comfy"


def test_every_conflict_is_reported_at_once() -> None:
    by_kind = {
        "vllm": [
            {"name": "a", "port": 1},
            {"name": "b", "port": 2, "hostname": "h.example.org"},
            {"name": "a", "port": 1, "hostname": "h.example.org"},
        ]
    }
    with pytest.raises(services.ServiceModelError) as raised:
        services.build(by_kind)
    assert str(raised.value) == (
        "invalid service model:\n"
        "- vllm_qwen3_models[2]: name 'a' already used by vllm_qwen3_models[0]\n"
        "- vllm_qwen3_models[2]: port 1 already used by vllm_qwen3_models[0]\n"
        "- vllm_qwen3_models[2]: hostname 'h.example.org' already used by vllm_qwen3_models[1]"
    )
