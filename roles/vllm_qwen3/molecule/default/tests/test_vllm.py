"""Behaviour of the deployed vLLM servers, checked from outside (pytest-testinfra + HTTP)."""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

import pytest
import requests
import yaml

API_KEY = os.environ["VLLM_TEST_API_KEY"]
ROOT_DIR = os.environ["VLLM_TEST_ROOT_DIR"]
PROJECT = os.environ["VLLM_TEST_PROJECT"]
MODELS: list[dict[str, Any]] = json.loads(os.environ["VLLM_TEST_MODELS"])
IDS = [m["name"] for m in MODELS]


def base(model: dict[str, Any]) -> str:
    return f"http://127.0.0.1:{model['port']}"


def inspect(host: Any, model: dict[str, Any]) -> dict[str, Any]:
    out = host.check_output(f"docker inspect {PROJECT}-{model['name']}")
    return json.loads(out)[0]


@pytest.fixture(scope="module")
def compose(host: Any) -> dict[str, Any]:
    return yaml.safe_load(host.file(f"{ROOT_DIR}/compose.yaml").content_string)


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_container_runs_the_rendered_command(host: Any, compose: dict, model: dict) -> None:
    info = inspect(host, model)
    assert info["State"]["Running"] and info["State"]["Health"]["Status"] == "healthy"
    args = info["Config"]["Cmd"]
    assert args == compose["services"][model["name"]]["command"]
    assert args[args.index("--port") + 1] == str(model["port"])
    assert args[args.index("--host") + 1] == "127.0.0.1"
    assert "--enable-auto-tool-choice" in args
    assert args[args.index("--tool-call-parser") + 1] == "hermes"
    assert args[args.index("--reasoning-parser") + 1] == "qwen3"
    assert args[args.index("--tensor-parallel-size") + 1] == str(len(model["gpus"]))
    assert not any(API_KEY in a for a in args), "API key on the command line"
    if model.get("revision"):
        assert args[args.index("--model") : args.index("--model") + 4] == [
            "--model", model["model"], "--revision", model["revision"]
        ]  # fmt: skip
    else:
        assert "--revision" not in args


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_the_role_checked_each_model_with_its_key_and_without(model: dict) -> None:
    """What the role's own verification sent, recorded by the stand-in before this suite sends
    anything to /v1: the model list with exactly "Bearer <key>", and once with no key at all."""
    sent = requests.get(f"{base(model)}/standin/requests", timeout=5).json()
    bearer = hashlib.sha256(f"Bearer {API_KEY}".encode()).hexdigest()
    calls = [(r["method"], r["path"], r["authorization_sha256"]) for r in sent]
    assert ("GET", "/v1/models", bearer) in calls, calls
    assert ("GET", "/v1/models", None) in calls, calls
    assert {auth for _, _, auth in calls} <= {bearer, None}, "another credential was sent"


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_server_got_the_planned_gpus(model: dict) -> None:
    report = requests.get(f"{base(model)}/standin/report", timeout=5).json()
    assert report["gpus"] == [str(g) for g in model["gpus"]]
    assert report["tensor_parallel_size"] == len(model["gpus"])
    assert report["api_key_set"] is True


def test_with_reservation_off_each_model_sees_its_planned_gpus(host: Any) -> None:
    """CI has no NVIDIA runtime, so the reservation is off here (tests/unit/roles/
    test_vllm_compose_render.py renders it on and lets compose judge): each model gets exactly
    its planned GPU ids as NVIDIA_VISIBLE_DEVICES, and no device reservation."""
    rendered = yaml.safe_load(host.file(f"{ROOT_DIR}/compose.yaml").content_string)
    assert set(rendered["services"]) == {m["name"] for m in MODELS}
    for model in MODELS:
        service = rendered["services"][model["name"]]
        assert "deploy" not in service, f"{model['name']}: reservation rendered while switched off"
        wanted = ",".join(str(g) for g in model["gpus"])
        assert service["environment"]["NVIDIA_VISIBLE_DEVICES"] == wanted
        assert service["network_mode"] == "host" and service["ipc"] == "host"


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_env_file_is_private_and_holds_the_key(host: Any, model: dict) -> None:
    env = host.file(f"{ROOT_DIR}/{model['name']}.env")
    assert env.mode == 0o600
    assert f"VLLM_API_KEY={API_KEY}" in env.content_string
    assert host.file(f"{ROOT_DIR}/compose.yaml").content_string.count(API_KEY) == 0


@pytest.mark.parametrize("model", MODELS, ids=IDS)
def test_models_listed_with_the_key(model: dict) -> None:
    r = requests.get(
        f"{base(model)}/v1/models", headers={"Authorization": f"Bearer {API_KEY}"}, timeout=5
    )
    assert r.status_code == 200
    assert [d["id"] for d in r.json()["data"]] == [model["name"]]
    assert r.json()["data"][0]["root"] == model["model"]


@pytest.mark.parametrize("model", MODELS, ids=IDS)
@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong-key"}], ids=["none", "wrong"]
)
def test_api_refused_without_the_key(model: dict, headers: dict) -> None:
    r = requests.get(f"{base(model)}/v1/models", headers=headers, timeout=5)
    assert r.status_code == 401
    assert r.json() == {"error": "Unauthorized"}


def test_models_sharing_a_gpu_start_in_order(host: Any, compose: dict) -> None:
    """micro and mini share GPU 2: the compose engine starts mini once micro is healthy (the
    GPU plan's order, not compose's depends_on, which would recreate mini whenever micro is)."""
    services = compose["services"]
    assert [name for name, service in services.items() if "depends_on" in service] == []
    started = {m["name"]: inspect(host, m)["State"]["StartedAt"] for m in MODELS}
    assert started["qwen3-mini"] > started["qwen3-micro"]
