"""vLLM OpenAI servers (role vllm_qwen3): one service per model of vllm_qwen3_models."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from ansible_collections.myia.genai_stack.plugins.module_utils import vllm
from ansible_collections.myia.genai_stack.plugins.module_utils.kinds import (
    Check,
    Kind,
    Values,
    check,
    env_name,
    refuses_bearer,
)

_TOOL = {
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
_ASK = {"role": "user", "content": "What is the weather in Paris?"}


def read(v: Values) -> list[dict[str, Any]]:
    models = v.get("vllm_qwen3_models")
    if models in (None, "", []):
        return []
    return vllm.normalize(
        models,
        {
            "image": v.get("vllm_qwen3_image"),
            "tool_call_parser": v.get("vllm_qwen3_tool_call_parser"),
            "reasoning_parser": v.get("vllm_qwen3_reasoning_parser"),
            "load_timeout": v.get("vllm_qwen3_load_timeout"),
            "bind_address": v.get("vllm_qwen3_bind_address"),
        },
    )


def conversation(model: str) -> list[dict[str, Any]]:
    """A chat, a tool call and its result answered, with ``model``: what proves an OpenAI
    endpoint serves tool calling (vLLM's own checks and the gateway's, through it)."""
    no_think = {"enable_thinking": False}
    call = {"id": "call-validate", "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}  # fmt: skip
    chat = "/v1/chat/completions"
    return [
        {"what": "chat completion", "path": chat, "expect": {
            "body": {"model": model, "messages": [{"role": "user", "content": "Say OK."}],
                     "max_tokens": 16, "chat_template_kwargs": no_think},
            "json_path": "choices.0.message.role", "json_value": "assistant"}},
        {"what": "tool call", "path": chat, "expect": {
            "body": {"model": model, "messages": [_ASK], "tools": [_TOOL],
                     "tool_choice": "auto", "chat_template_kwargs": no_think},
            "json_path": "choices.0.message.tool_calls.0.function.name",
            "json_value": "get_weather"}},
        {"what": "tool result answered", "path": chat, "expect": {
            "body": {"model": model, "tools": [_TOOL], "chat_template_kwargs": no_think,
                     "messages": [_ASK, {"role": "assistant", "content": None, "tool_calls": [call]},
                                  {"role": "tool", "tool_call_id": "call-validate",
                                   "content": '{"temperature_c": 18}'}]},
            "json_path": "choices.0.finish_reason", "json_value": "stop"}},
    ]  # fmt: skip


def checks(rec: dict[str, Any], creds: Mapping[str, Any]) -> list[Check]:
    """/health; 401 without key; every served name listed; a chat; a tool call round trip."""
    key = creds.get("vllm_api_key")
    checks = [
        check(rec, "health", "/health"),
        check(rec, "refuses no key", "/v1/models", status=[401]),
    ]
    if not key:
        return checks
    bearer = {"type": "bearer", "token": key}
    for served in rec["served_model_names"]:
        checks.append(check(rec, f"lists {served}", "/v1/models", auth=bearer,
                            json_contains={"path": "data", "value": {"id": served}}))  # fmt: skip
    for probe in conversation(rec["served_model_names"][0]):
        checks.append(check(rec, probe["what"], probe["path"], method="POST", auth=bearer,
                            **probe["expect"]))  # fmt: skip
    return checks


def client_env(
    records: list[dict[str, Any]], creds: Mapping[str, Any], url: Callable[..., str]
) -> dict[str, str]:
    env: dict[str, str] = {
        "VLLM_BASE_URL": url(records[0]) + "/v1",
        "VLLM_MODEL": records[0]["served_model_names"][0],
    }
    for rec in records:
        env[f"VLLM_{env_name(rec['name'])}_BASE_URL"] = url(rec) + "/v1"
        env[f"VLLM_{env_name(rec['name'])}_MODEL"] = rec["served_model_names"][0]
    if creds.get("vllm_api_key"):
        env["VLLM_API_KEY"] = creds["vllm_api_key"]
    return env


KIND = Kind(
    name="vllm",
    role="vllm_qwen3",
    variable="vllm_qwen3_models",
    variables=(
        "vllm_qwen3_models",
        "vllm_qwen3_image",
        "vllm_qwen3_tool_call_parser",
        "vllm_qwen3_reasoning_parser",
        "vllm_qwen3_load_timeout",
        "vllm_qwen3_bind_address",
    ),
    read=read,
    http={
        "health_path": "/health",
        "ready_path": "/v1/models",
        "auth": "bearer",
        "websocket_paths": [],
        "max_body_mb": 16,
        "timeout_s": 900,
        "streaming": True,
    },
    checks=checks,
    refusals=refuses_bearer("vllm_api_key", "/v1/models"),
    client_env=client_env,
    record_keys=("served_model_names",),
    order=10,
)
