"""module_utils.catalogue, entry by entry: checks, refusals, client .env keys and readers in full."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.myia.genai_stack.plugins.module_utils import (
    catalogue,
    forge,
    kinds,
    specs,
    vllm,
)
from ansible_collections.myia.genai_stack.plugins.module_utils.kinds import comfyui

KINDS = catalogue.KINDS
ROOT = Path(__file__).resolve().parents[3]


def rec(name: str, port: int, **extra: Any) -> dict[str, Any]:
    return {"name": name, "backend_url": f"http://10.0.0.9:{port}", **extra}


def url(record: dict[str, Any]) -> str:
    return "https://" + record["name"] + ".test"


def basic(text: str) -> str:
    return "Basic " + base64.b64encode(text.encode()).decode()


# --- small helpers ------------------------------------------------------------------------------


def test_env_name_upper_cases_and_replaces_every_other_character() -> None:
    assert kinds.env_name("qwen3-micro.v2 é_x") == "QWEN3_MICRO_V2_É_X"


def test_where_names_the_field_variable_or_the_source_path() -> None:
    comfy, vllm_kind = KINDS["comfyui"], KINDS["vllm"]
    assert comfy.where({"source": "s"}, "port") == "comfyui_qwen_auth_port"
    assert comfy.where({"source": "s"}, "name") == "comfyui_qwen_auth_service_name"
    assert comfy.where({"source": "s"}, "gpus") == "s.gpus"
    assert vllm_kind.where({"source": "vllm_qwen3_models[1]"}, "port") == (
        "vllm_qwen3_models[1].port"
    )


# --- vLLM ---------------------------------------------------------------------------------------

TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather of a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
ASK = {"role": "user", "content": "What is the weather in Paris?"}


def test_vllm_checks_in_full() -> None:
    model = rec("m", 5000, served_model_names=["a", "b"])
    bearer = {"type": "bearer", "token": "key-1"}
    url_models = "http://10.0.0.9:5000/v1/models"
    url_chat = "http://10.0.0.9:5000/v1/chat/completions"
    no_think = {"enable_thinking": False}
    call = {
        "id": "call-validate",
        "type": "function",
        "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
    }
    assert KINDS["vllm"].checks(model, {"vllm_api_key": "key-1"}) == [
        {"name": "m: health", "url": "http://10.0.0.9:5000/health"},
        {"name": "m: refuses no key", "url": url_models, "status": [401]},
        {"name": "m: lists a", "url": url_models, "auth": bearer,
         "json_contains": {"path": "data", "value": {"id": "a"}}},
        {"name": "m: lists b", "url": url_models, "auth": bearer,
         "json_contains": {"path": "data", "value": {"id": "b"}}},
        {"name": "m: chat completion", "url": url_chat, "method": "POST", "auth": bearer,
         "body": {"model": "a", "messages": [{"role": "user", "content": "Say OK."}],
                  "max_tokens": 16, "chat_template_kwargs": no_think},
         "json_path": "choices.0.message.role", "json_value": "assistant"},
        {"name": "m: tool call", "url": url_chat, "method": "POST", "auth": bearer,
         "body": {"model": "a", "messages": [ASK], "tools": [TOOL], "tool_choice": "auto",
                  "chat_template_kwargs": no_think},
         "json_path": "choices.0.message.tool_calls.0.function.name",
         "json_value": "get_weather"},
        {"name": "m: tool result answered", "url": url_chat, "method": "POST", "auth": bearer,
         "body": {"model": "a", "tools": [TOOL], "chat_template_kwargs": no_think,
                  "messages": [ASK, {"role": "assistant", "content": None, "tool_calls": [call]},
                               {"role": "tool", "tool_call_id": "call-validate",
                                "content": '{"temperature_c": 18}'}]},
         "json_path": "choices.0.finish_reason", "json_value": "stop"},
    ]  # fmt: skip


@pytest.mark.parametrize("creds", [{}, {"vllm_api_key": ""}, {"vllm_api_key": None}])
def test_vllm_checks_without_a_key(creds: dict[str, Any]) -> None:
    assert KINDS["vllm"].checks(rec("m", 1, served_model_names=["a"]), creds) == [
        {"name": "m: health", "url": "http://10.0.0.9:1/health"},
        {"name": "m: refuses no key", "url": "http://10.0.0.9:1/v1/models", "status": [401]},
    ]


def test_vllm_refusals() -> None:
    model = rec("m", 2)
    assert KINDS["vllm"].refusals(model, {"vllm_api_key": "old"}) == [
        {"name": "m: refuses the old credential", "url": "http://10.0.0.9:2/v1/models",
         "auth": {"type": "bearer", "token": "old"}, "status": [401]},
    ]  # fmt: skip
    assert KINDS["vllm"].refusals(model, {"vllm_api_key": ""}) == []
    assert KINDS["vllm"].refusals(model, {"comfyui_token": "t"}) == []


def test_vllm_client_env_in_full() -> None:
    records = [
        rec("m-1", 1, served_model_names=["a", "x"]),
        rec("n.2", 2, served_model_names=["b"]),
    ]
    assert KINDS["vllm"].client_env(records, {"vllm_api_key": "k"}, url) == {
        "VLLM_BASE_URL": "https://m-1.test/v1",
        "VLLM_MODEL": "a",
        "VLLM_M_1_BASE_URL": "https://m-1.test/v1",
        "VLLM_M_1_MODEL": "a",
        "VLLM_N_2_BASE_URL": "https://n.2.test/v1",
        "VLLM_N_2_MODEL": "b",
        "VLLM_API_KEY": "k",
    }
    assert "VLLM_API_KEY" not in KINDS["vllm"].client_env(records, {"vllm_api_key": ""}, url)


# --- ComfyUI ------------------------------------------------------------------------------------


def test_comfyui_checks_refusals_and_env_in_full() -> None:
    comfy = KINDS["comfyui"]
    model = rec("c", 8188)
    stats = "http://10.0.0.9:8188/system_stats"
    token = {"type": "bearer", "token": "tok"}
    assert comfy.checks(model, {"comfyui_token": "tok"}) == [
        {"name": "c: refuses no token", "url": stats, "status": [401]},
        {"name": "c: system stats", "url": stats, "auth": token, "json_path": "system"},
    ]
    assert comfy.checks(model, {"comfyui_token": "", "vllm_api_key": "k"}) == [
        {"name": "c: refuses no token", "url": stats, "status": [401]},
    ]
    assert comfy.refusals(model, {"comfyui_token": "tok"}) == [
        {"name": "c: refuses the old credential", "url": stats, "auth": token, "status": [401]},
    ]
    assert comfy.refusals(model, {"vllm_api_key": "k"}) == []
    # the last record wins (there is one)
    records = [rec("a", 1), rec("b", 2)]
    assert comfy.client_env(records, {"comfyui_token": "tok"}, url) == {
        "COMFYUI_BASE_URL": "https://b.test",
        "COMFYUI_TOKEN": "tok",
    }
    assert comfy.client_env(records, {"comfyui_token": ""}, url) == {
        "COMFYUI_BASE_URL": "https://b.test"
    }


# --- Forge --------------------------------------------------------------------------------------


def test_forge_checks_in_full() -> None:
    forge_kind = KINDS["forge"]
    model = rec("t", 17861)
    models = "http://10.0.0.9:17861/sdapi/v1/sd-models"
    query = {"auth": {"type": "query", "param": "token", "value": "w"}}
    creds = {"forge_username": "u", "forge_password": "p", "forge_web_token": "w"}
    assert forge_kind.checks(model, creds) == [
        {"name": "t: refuses no credentials", "url": models, "status": [401], **query},
        {"name": "t: accepts the credentials", "url": models,
         "headers": {"Authorization": basic("u:p")}, "json_path": "", **query},
    ]  # fmt: skip
    assert forge_kind.checks(model, {"forge_username": "u", "forge_password": "p"}) == [
        {"name": "t: refuses no credentials", "url": models, "status": [401]},
        {"name": "t: accepts the credentials", "url": models,
         "headers": {"Authorization": basic("u:p")}, "json_path": ""},
    ]  # fmt: skip
    alone = [{"name": "t: refuses no credentials", "url": models, "status": [401]}]
    assert forge_kind.checks(model, {"forge_username": "u", "forge_web_token": ""}) == alone
    assert forge_kind.checks(model, {"forge_password": "p"}) == alone


def test_forge_refusals_in_full() -> None:
    forge_kind = KINDS["forge"]
    model = rec("t", 3)
    models = "http://10.0.0.9:3/sdapi/v1/sd-models"
    assert forge_kind.refusals(model, {"forge_username": "u", "forge_password": "old"}) == [
        {"name": "t: refuses the old credential", "url": models, "status": [401],
         "headers": {"Authorization": basic("u:old")}},
    ]  # fmt: skip
    assert forge_kind.refusals(model, {"forge_password": "old"})[0]["headers"] == {
        "Authorization": basic("admin:old")
    }
    assert forge_kind.refusals(model, {"forge_username": "u", "forge_password": ""}) == []


def test_forge_client_env_in_full() -> None:
    records = [rec("turbo-1", 1), rec("b", 2)]
    creds = {"forge_username": "u", "forge_password": "p", "forge_web_token": "w"}
    assert KINDS["forge"].client_env(records, creds, url) == {
        "FORGE_TURBO_1_BASE_URL": "https://turbo-1.test",
        "FORGE_B_BASE_URL": "https://b.test",
        "FORGE_BASE_URL": "https://turbo-1.test",
        "FORGE_USER": "u",
        "FORGE_PASSWORD": "p",
        "FORGE_WEB_TOKEN": "w",
    }
    assert KINDS["forge"].client_env(records[1:], {"forge_password": "p"}, url) == {
        "FORGE_B_BASE_URL": "https://b.test",
        "FORGE_BASE_URL": "https://b.test",
        "FORGE_PASSWORD": "p",
    }


# --- the ComfyUI reader -------------------------------------------------------------------------

C = "comfyui_qwen_auth"


def comfy(**change: Any) -> dict[str, Any]:
    """Valid ComfyUI variables, with ``change`` (short keys) applied."""
    values = {
        "service_name": "comfy",
        "port": 8188,
        "hostname": "c.myia.io",
        "bind_address": "10.0.0.3",
        "gpu": 2,
        "gpu_memory_share": 0.5,
        "image": "comfyui-qwen",
        "image_tag": "v1",
        "env": {"A": "1"},
        "start_timeout": 600,
        "extra_args": ["--use-split-cross-attention"],
        "cors_origin": "",
        "models": [],
        "allow_unverified": False,
        "preview_method": "auto",
        "vram_mode": "",
        "login_source": "git",
        "login_version": "69109257f4629a11ebe26cd65667536c4f8dddcb",
        "login_allow_branch": False,
    }
    values.update(change)
    return {f"{C}_{k}": v for k, v in values.items()}


def comfy_problems(**change: Any) -> list[str]:
    with pytest.raises(specs.SpecError) as err:
        KINDS["comfyui"].read(comfy(**change))
    assert str(err.value).startswith("invalid ComfyUI settings:\n- ")
    return err.value.problems


def test_comfyui_variables_and_fields() -> None:
    kind = KINDS["comfyui"]
    assert kind.variables == tuple(comfy())
    assert kind.fields == {"name": f"{C}_service_name", "port": f"{C}_port",
                           "hostname": f"{C}_hostname"}  # fmt: skip


def test_the_comfyui_spec_in_full() -> None:
    assert KINDS["comfyui"].read(comfy(port="9188", gpu="1", start_timeout="90")) == [
        {"name": "comfy", "port": 9188, "hostname": "c.myia.io", "bind_address": "10.0.0.3",
         "gpus": [1], "image": "comfyui-qwen:v1", "load_timeout": 90, "source": f"{C}_port",
         "gpu_wish": {"service": "comfy", "source": f"{C}_gpu", "gpus": [1], "memory_share": 0.5,
                      "port": 9188, "bind_address": "10.0.0.3"}},
    ]  # fmt: skip


@pytest.mark.parametrize("tag", [None, ""])
def test_without_a_tag_the_image_is_taken_as_it_is(tag: Any) -> None:
    (spec,) = KINDS["comfyui"].read(
        comfy(image="r.io:5000/comfy@sha256:" + "a" * 64, image_tag=tag)
    )
    assert spec["image"] == "r.io:5000/comfy@sha256:" + "a" * 64


@pytest.mark.parametrize(
    "image",
    ["registry.example.org:5000/comfyui-qwen:2025-06-01", "comfyui-qwen@sha256:" + "b" * 64],
)
def test_a_full_image_reference_is_one_variable_like_the_other_kinds(image: str) -> None:
    (spec,) = KINDS["comfyui"].read(comfy(image=image, image_tag=""))
    assert spec["image"] == image
    assert comfy_problems(image=image, image_tag="v2") == [
        f"{C}_image_tag 'v2' is given, but {C}_image {image!r} already names its tag or digest: "
        f"keep one (a full reference in {C}_image is enough)"
    ]


def test_comfyui_accepts_its_optional_settings() -> None:
    model = {"name": "a.safetensors", "folder": "vae", "url": "https://m.invalid/a",
             "sha256": "A" * 64}  # fmt: skip
    values = comfy(
        hostname="", env=None, cors_origin="https://c.myia.io",
        models=[model, {"name": "b", "folder": "loras", "url": "ftp://m/b", "sha256": "f" * 64},
                {"name": "c", "folder": "unet", "url": "", "sha256": ""},
                {"name": "d", "folder": "clip", "url": "file:///d"}],
        allow_unverified=True, extra_args=["--fast", "--reserve-vram", 5],
    )  # fmt: skip
    (spec,) = KINDS["comfyui"].read(values)
    assert spec["hostname"] is None
    for origin in ("*", None, "http://c:8188"):
        assert KINDS["comfyui"].read(comfy(cors_origin=origin))
    for models in (None, ""):
        assert KINDS["comfyui"].read(comfy(models=models))
    assert KINDS["comfyui"].read(comfy(env=""))


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"service_name": "a b"},
         f"{C}_service_name 'a b' must be letters, digits, '.', '-' or '_' (at most 63, no '..'): "
         "it names the compose service and its files"),
        ({"port": 0}, f"{C}_port 0 is not a port number (1-65535)"),
        ({"bind_address": "h"}, f"{C}_bind_address 'h' is not an IP address (e.g. 127.0.0.1)"),
        ({"hostname": "c"}, f"{C}_hostname 'c' is not a DNS name (e.g. qwen.example.org)"),
        ({"gpu": None}, f"{C}_gpu [None] must list GPU indices (0, 1, ...)"),
        ({"gpu_memory_share": 0},
         f"{C}_gpu_memory_share 0 must be a fraction of the GPU memory in (0, 1]"),
        ({"image": None},
         f"{C}_image is empty: set an image reference such as vllm/vllm-openai:v0.34.0"),
        ({"image": "A"}, f"{C}_image 'A' is not a valid image reference (repository[:tag][@digest])"),
        ({"image_tag": "-x"},
         f"{C}_image_tag 'comfyui-qwen:-x' is not a valid image reference "
         "(repository[:tag][@digest])"),
        ({"image": "comfyui-qwen:v1", "image_tag": "XXXX"},
         f"{C}_image_tag 'XXXX' is given, but {C}_image 'comfyui-qwen:v1' already names its tag "
         f"or digest: keep one (a full reference in {C}_image is enough)"),
        ({"start_timeout": 0}, f"{C}_start_timeout 0 must be a positive number of seconds"),
        ({"env": {"NVIDIA_VISIBLE_DEVICES": "1"}},
         f"{C}_env.NVIDIA_VISIBLE_DEVICES: set by the role, it cannot be overridden"),
        ({"extra_args": None}, f"{C}_extra_args must be a list of arguments"),
        ({"extra_args": ["--cpu-vae", "--disable-all-custom-nodes"]},
         f"{C}_extra_args[1] '--disable-all-custom-nodes' is refused: it would turn ComfyUI-Login "
         "off and open the API"),
        ({"extra_args": ["--port=1=2"]},
         f"{C}_extra_args[0] '--port' is set by the role from {C}_port; remove it"),
        ({"extra_args": ["--cpu-vae", "b\tc"]},
         f"{C}_extra_args[1] 'b\\tc' must be one line without control characters"),
        ({"extra_args": ["--lowvram"]},
         f"{C}_extra_args[0] '--lowvram' is set by the role from {C}_vram_mode; remove it"),
        ({"vram_mode": "--lowvram"},
         f"{C}_vram_mode '--lowvram' must be empty or one of gpu-only, highvram, normalvram, "
         "lowvram, novram"),
        ({"preview_method": "fast"},
         f"{C}_preview_method 'fast' is not a preview method of ComfyUI; use one of none, auto, "
         "latent2rgb, taesd"),
        ({"login_version": "main"},
         f"{C}_login_version 'main' is not pinned: ComfyUI-Login is the lock on ComfyUI's API, "
         "and a moving branch can change it on any run; give a 40-hex commit or a release tag "
         f"(or set {C}_login_allow_branch: true)"),
        ({"cors_origin": "https://c.myia.io/"},
         f"{C}_cors_origin 'https://c.myia.io/' must be empty, '*' or an origin like "
         "https://<hostname> (scheme and host, no path)"),
        ({"cors_origin": "xhttps://c"},
         f"{C}_cors_origin 'xhttps://c' must be empty, '*' or an origin like "
         "https://<hostname> (scheme and host, no path)"),
        ({"cors_origin": "https://c d"},
         f"{C}_cors_origin 'https://c d' must be empty, '*' or an origin like "
         "https://<hostname> (scheme and host, no path)"),
        ({"models": "a"}, f"{C}_models must be a list of model files"),
        ({"models": [1]}, f"{C}_models[0] must be a mapping with name, folder, url, sha256"),
        ({"models": [{"folder": "vae"}]}, f"{C}_models[0].name None must be a file name without '/'"),
        ({"models": [{"name": "", "folder": "vae"}]},
         f"{C}_models[0].name '' must be a file name without '/'"),
        ({"models": [{"name": 5, "folder": "vae"}]},
         f"{C}_models[0].name 5 must be a file name without '/'"),
        ({"models": [{"name": ".", "folder": "vae"}]},
         f"{C}_models[0].name '.' must be a file name without '/'"),
        ({"models": [{"name": "a"}]},
         f"{C}_models[0].folder None must be one of diffusion_models, unet, text_encoders, clip, "
         "vae, loras, checkpoints, clip_vision, upscale_models, embeddings"),
        ({"models": [{"name": "a", "folder": "vae", "sha256": "0" * 63 + "g"}]},
         f"{C}_models[0].sha256 '{'0' * 63}g' must be 64 hexadecimal digits"),
        ({"models": [{"name": "a", "folder": "vae", "url": "https://m/a b", "sha256": "0" * 64}]},
         f"{C}_models[0].url 'https://m/a b' must be an http(s)://, ftp:// or file:// URL"),
        ({"models": [{"name": "a", "folder": "vae", "url": "xhttp://m/a", "sha256": "0" * 64}]},
         f"{C}_models[0].url 'xhttp://m/a' must be an http(s)://, ftp:// or file:// URL"),
        ({"models": [{"name": "a", "folder": "vae", "url": "https://m/a"}]},
         f"{C}_models[0].sha256 is required with {C}_models[0].url (a would be fetched "
         f"unverified; or set {C}_allow_unverified: true)"),
        ({"models": [{"name": "a", "folder": "vae", "url": "https://m/a", "sha256": ""}]},
         f"{C}_models[0].sha256 is required with {C}_models[0].url (a would be fetched "
         f"unverified; or set {C}_allow_unverified: true)"),
    ],
)  # fmt: skip
def test_each_comfyui_problem_in_full(change: dict[str, Any], problem: str) -> None:
    assert comfy_problems(**change) == [problem]


def test_every_comfyui_problem_is_reported_at_once() -> None:
    found = comfy_problems(
        service_name="", port="x", bind_address=None, hostname="http://c", gpu="a",
        gpu_memory_share="y", image="", image_tag="t", start_timeout=None, env="e",
        extra_args=["--cuda-device", "--listen=1", "ok"], cors_origin="c",
        models=[{"name": "a/b", "folder": "f", "sha256": "s", "url": "u"}, "x"],
    )  # fmt: skip
    assert found == [
        f"{C}_service_name '' must be letters, digits, '.', '-' or '_' (at most 63, no '..'): "
        "it names the compose service and its files",
        f"{C}_port 'x' is not a port number (1-65535)",
        f"{C}_bind_address None is not an IP address (e.g. 127.0.0.1)",
        f"{C}_hostname 'http://c' must be a DNS name without a scheme (e.g. qwen.example.org)",
        f"{C}_gpu ['a'] must list GPU indices (0, 1, ...)",
        f"{C}_gpu_memory_share 'y' must be a fraction of the GPU memory in (0, 1]",
        f"{C}_image is empty: set an image reference such as vllm/vllm-openai:v0.34.0",
        f"{C}_start_timeout None must be a positive number of seconds",
        f"{C}_env must be a mapping of environment variables",
        f"{C}_extra_args[0] '--cuda-device' is set by the role from {C}_gpu, the GPU plan; "
        "remove it",
        f"{C}_extra_args[1] '--listen' is set by the role from {C}_bind_address; remove it",
        f"{C}_cors_origin 'c' must be empty, '*' or an origin like https://<hostname> (scheme "
        "and host, no path)",
        f"{C}_models[0].name 'a/b' must be a file name without '/'",
        f"{C}_models[0].folder 'f' must be one of diffusion_models, unet, text_encoders, clip, "
        "vae, loras, checkpoints, clip_vision, upscale_models, embeddings",
        f"{C}_models[0].sha256 's' must be 64 hexadecimal digits",
        f"{C}_models[0].url 'u' must be an http(s)://, ftp:// or file:// URL",
        f"{C}_models[1] must be a mapping with name, folder, url, sha256",
    ]  # fmt: skip


def test_a_bearer_refusal_presents_the_named_credential_on_the_path() -> None:
    refusals = kinds.refuses_bearer("my_token", "/p")
    assert refusals(rec("r", 7), {"my_token": "old", "vllm_api_key": "k"}) == [
        {"name": "r: refuses the old credential", "url": "http://10.0.0.9:7/p",
         "auth": {"type": "bearer", "token": "old"}, "status": [401]},
    ]  # fmt: skip
    assert refusals(rec("r", 7), {"my_token": "", "vllm_api_key": "k"}) == []
    assert refusals(rec("r", 7), {}) == []


def test_a_bad_comfyui_model_entry_does_not_hide_the_next_ones() -> None:
    assert comfy_problems(models=[1, {"name": "a", "folder": "x"}]) == [
        f"{C}_models[0] must be a mapping with name, folder, url, sha256",
        f"{C}_models[1].folder 'x' must be one of diffusion_models, unet, text_encoders, clip, "
        "vae, loras, checkpoints, clip_vision, upscale_models, embeddings",
    ]


@pytest.mark.parametrize("sha", [None, ""])
def test_a_comfyui_model_without_url_needs_no_checksum(sha: Any) -> None:
    model = {"name": "a", "folder": "vae", "url": "", "sha256": sha}
    assert KINDS["comfyui"].read(comfy(models=[model]))[0]["name"] == "comfy"


# --- the vLLM and Forge readers -----------------------------------------------------------------


@pytest.mark.parametrize("models", [None, "", []])
def test_no_vllm_model_is_no_service(models: Any) -> None:
    assert KINDS["vllm"].read({"vllm_qwen3_models": models, "vllm_qwen3_image": "x"}) == []
    assert KINDS["vllm"].read({}) == []


def test_the_vllm_role_settings_are_the_models_defaults() -> None:
    models = [{"name": "m", "model": "Qwen/Qwen3-0.6B", "port": 5000, "gpus": [0],
               "gpu_memory_utilization": 0.2}]  # fmt: skip
    values = {
        "vllm_qwen3_models": models,
        "vllm_qwen3_image": "vllm/vllm-openai:v0.10.0",
        "vllm_qwen3_tool_call_parser": "qwen3_coder",
        "vllm_qwen3_reasoning_parser": "deepseek_r1",
        "vllm_qwen3_load_timeout": 77,
        "vllm_qwen3_bind_address": "10.0.0.5",
    }
    (spec,) = KINDS["vllm"].read(values)
    assert {
        k: spec[k]
        for k in ("image", "tool_call_parser", "reasoning_parser", "load_timeout", "bind_address")
    } == {
        "image": "vllm/vllm-openai:v0.10.0",
        "tool_call_parser": "qwen3_coder",
        "reasoning_parser": "deepseek_r1",
        "load_timeout": 77,
        "bind_address": "10.0.0.5",
    }
    assert [spec] == vllm.normalize(
        [dict(models[0])],
        {"image": "vllm/vllm-openai:v0.10.0", "tool_call_parser": "qwen3_coder",
         "reasoning_parser": "deepseek_r1", "load_timeout": 77, "bind_address": "10.0.0.5"},
    )  # fmt: skip


@pytest.mark.parametrize("instances", [None, "", []])
def test_no_forge_instance_is_no_service(instances: Any) -> None:
    assert KINDS["forge"].read({"forge_turbo_instances": instances, "forge_turbo_image": 5}) == []
    assert KINDS["forge"].read({}) == []


FORGE_ROLE = {
    "image": "r.io/forge:v2",
    "root_dir": "/srv/forge",
    "memory_share": 0.25,
    "load_timeout": 66,
    "bind_address": "10.0.0.6",
    "gradio_auth": False,
    "settings_file": "s.json",
    "ui_config_file": "u.json",
}


def forge_values(**change: Any) -> dict[str, Any]:
    values = {f"forge_turbo_{k}": v for k, v in FORGE_ROLE.items()}
    values.update(
        forge_turbo_instances=[{"name": "t", "port": 17861, "gpus": [1]}],
        forge_turbo_ui_settings={"a": 1},
        forge_turbo_ui_config={"b": 2},
    )
    values.update(change)
    return values


def test_the_forge_role_settings_are_the_instances_defaults() -> None:
    (spec,) = KINDS["forge"].read(forge_values())
    own = {k: v for k, v in FORGE_ROLE.items() if k != "root_dir"}
    assert {k: spec[k] for k in (*own, "workspace", "ui_settings", "ui_config")} == {
        **own,
        "workspace": "/srv/forge/t/workspace",
        "ui_settings": {"a": 1},
        "ui_config": {"b": 2},
    }
    defaults = {**FORGE_ROLE, "turbo_ui_settings": {"a": 1}, "turbo_ui_config": {"b": 2}}
    instances = [{"name": "t", "port": 17861, "gpus": [1]}]
    assert [spec] == forge.normalize(instances, defaults, require_sha256=True)


UNVERIFIED = [{"name": "t", "port": 17861, "gpus": [1],
               "checkpoint": {"name": "a.safetensors", "url": "https://m.invalid/a"}}]  # fmt: skip


@pytest.mark.parametrize("fetch", [False, "false", 0])
def test_a_checkpoint_is_fetched_unverified_only_when_fetching_is_off(fetch: Any) -> None:
    values = forge_values(forge_turbo_instances=UNVERIFIED, forge_turbo_fetch_checkpoints=fetch)
    assert KINDS["forge"].read(values)[0]["checkpoint"] == {
        "name": "a.safetensors", "url": "https://m.invalid/a", "sha256": None
    }  # fmt: skip


@pytest.mark.parametrize("fetch", ["missing", True, "true", 1, None])
def test_while_fetching_a_checkpoint_needs_its_checksum(fetch: Any) -> None:
    values = forge_values(forge_turbo_instances=UNVERIFIED)
    if fetch != "missing":
        values["forge_turbo_fetch_checkpoints"] = fetch
    with pytest.raises(specs.SpecError) as err:
        KINDS["forge"].read(values)
    assert err.value.problems == [
        "forge_turbo_instances[0].checkpoint.sha256 is required "
        "with forge_turbo_instances[0].checkpoint.url: the download is verified against it (the "
        "sha256 is on the file's page of the model hub)"
    ]


def test_every_flag_a_role_manages_is_a_real_flag_of_its_upstream() -> None:
    """The managed lists name flags of the grammar read from upstream (a renamed or removed flag
    there must show here), and ComfyUI's VRAM modes are the role's argument_specs choices."""
    from pathlib import Path

    import yaml

    from ansible_collections.myia.genai_stack.plugins.module_utils import (
        grammar_comfyui,
        grammar_forge,
    )

    assert set(comfyui.MANAGED_FLAGS) <= set(grammar_comfyui.FLAGS)
    assert set(forge.MANAGED_FLAGS) <= set(grammar_forge.FLAGS)
    for release, grammar in vllm.RELEASES.items():
        missing = set(vllm.managed_flags("m")) - set(grammar["flags"])
        # the negative switches came with later releases; 0.9.2 has --config only on vllm serve
        newer = {"--disable-auto-tool-choice", "--no-enable-auto-tool-choice", "--config"}
        assert missing <= newer, release
    spec = Path(__file__).resolve().parents[3] / "roles/comfyui_qwen_auth/meta/argument_specs.yml"
    options = yaml.safe_load(spec.read_text())["argument_specs"]["main"]["options"]
    assert options[f"{C}_vram_mode"]["choices"] == ["", *comfyui.VRAM_MODES]
    assert options[f"{C}_preview_method"]["choices"] == list(
        grammar_comfyui.CHOICES["--preview-method"]
    )


WHISPER = """
from ansible_collections.myia.genai_stack.plugins.module_utils.kinds import Kind, check


def read(v):
    return [
        {"name": s["name"], "port": int(s["port"]), "hostname": s.get("hostname"),
         "bind_address": "127.0.0.1", "gpus": [2], "source": f"whisper_servers[{i}]",
         "gpu_wish": {"service": s["name"], "source": f"whisper_servers[{i}]", "gpus": [2],
                      "memory_share": 0.05, "port": int(s["port"])}}
        for i, s in enumerate(v.get("whisper_servers") or [])
    ]


KIND = Kind(
    name="whisper", role="whisper_server", variable="whisper_servers",
    variables=("whisper_servers",), read=read,
    http={"health_path": "/health", "ready_path": "/v1/models", "auth": "bearer",
          "websocket_paths": [], "max_body_mb": 50, "timeout_s": 300, "streaming": False},
    checks=lambda rec, creds: [check(rec, "health", "/health")],
    refusals=lambda rec, creds: [],
    client_env=lambda recs, creds, url: {"WHISPER_BASE_URL": url(recs[0])},
    order=40,
)
"""

PROBE = """
import json
from ansible_collections.myia.genai_stack.plugins.module_utils import catalogue, services, stack_model
model = stack_model.build(
    {"whisper_servers": [{"name": "whisper", "port": 9100, "hostname": "whisper.myia.io"}]},
    [{"index": 2, "memory_total_mib": 24576}], kinds=["whisper"],
)
rec = model["services"][0]
print(json.dumps({"kinds": list(catalogue.KINDS), "url": rec["backend_url"],
                  "checks": services.health_checks([rec]),
                  "env": services.client_env(model["services"], {})}))
"""


def test_a_new_kind_is_one_module_in_kinds(tmp_path: Path) -> None:
    """A copy of the collection with one more file, kinds/whisper.py: the registry finds it (in
    its order), and the stack model reads, plans, checks and lists it in the client .env."""
    tree = tmp_path / "ansible_collections" / "myia" / "genai_stack"
    shutil.copytree(
        ROOT / "plugins", tree / "plugins", ignore=shutil.ignore_patterns("__pycache__")
    )
    (tree / "plugins" / "module_utils" / "kinds" / "whisper.py").write_text(WHISPER)
    env = {**os.environ, "PYTHONPATH": str(tmp_path), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    assert got["kinds"] == ["vllm", "openai_gateway", "comfyui", "forge", "whisper"]
    assert got["url"] == "http://127.0.0.1:9100"
    assert got["checks"] == [{"name": "whisper: health", "url": "http://127.0.0.1:9100/health"}]
    assert got["env"] == {"WHISPER_BASE_URL": "http://127.0.0.1:9100"}
