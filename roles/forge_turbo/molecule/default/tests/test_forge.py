"""Behaviour of the deployed Forge instances, checked from outside (pytest-testinfra + HTTP)."""

from __future__ import annotations

import json
import os
import struct
import zlib
from base64 import b64decode
from typing import Any

import pytest
import requests
import yaml

USER = os.environ["FORGE_TEST_USER"]
PASSWORD = os.environ["FORGE_TEST_PASSWORD"]
TOKEN = os.environ["FORGE_TEST_TOKEN"]
ROOT_DIR = os.environ["FORGE_TEST_ROOT_DIR"]
PROJECT = os.environ["FORGE_TEST_PROJECT"]
CHECKPOINT_SHA256 = os.environ["FORGE_TEST_CHECKPOINT_SHA256"]
INSTANCES: list[dict[str, Any]] = json.loads(os.environ["FORGE_TEST_INSTANCES"])
IDS = [i["name"] for i in INSTANCES]
AUTH = (USER, PASSWORD)
SECRETS = (PASSWORD, TOKEN)


def base(instance: dict[str, Any]) -> str:
    return f"http://127.0.0.1:{instance['port']}"


def workspace(instance: dict[str, Any]) -> str:
    return f"{ROOT_DIR}/{instance['name']}/workspace"


def inspect(host: Any, instance: dict[str, Any]) -> dict[str, Any]:
    return json.loads(host.check_output(f"docker inspect {PROJECT}-{instance['name']}"))[0]


def report(instance: dict[str, Any]) -> dict[str, Any]:
    return requests.get(f"{base(instance)}/standin/report", timeout=5).json()


def png_size(data: bytes) -> tuple[int, int]:
    """Check a PNG chunk by chunk (signature, CRCs, inflatable IDAT) and return its size."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks, idat = 8, [], b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        body = data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, f"bad CRC in {kind!r}"
        chunks.append(kind)
        if kind == b"IDAT":
            idat += body
        pos += 12 + length
    assert chunks[0] == b"IHDR" and chunks[-1] == b"IEND"
    width, height, depth, color = struct.unpack(">IIBB", data[16:26])
    raw = zlib.decompress(idat)
    channels = {2: 3, 6: 4, 0: 1}[color]
    assert len(raw) == height * (1 + width * channels * depth // 8)
    return width, height


@pytest.fixture(scope="module")
def compose(host: Any) -> dict[str, Any]:
    return yaml.safe_load(host.file(f"{ROOT_DIR}/compose.yaml").content_string)


@pytest.mark.parametrize("instance", INSTANCES, ids=IDS)
def test_container_runs_healthy_on_the_host_network(host: Any, instance: dict) -> None:
    info = inspect(host, instance)
    assert info["State"]["Running"] and info["State"]["Health"]["Status"] == "healthy"
    assert info["HostConfig"]["NetworkMode"] == "host"
    labels = info["Config"]["Labels"]
    assert labels["io.myia.genai.hostname"] == instance["hostname"]
    assert labels["io.myia.genai.gpus"] == str(instance["gpus"][0])


@pytest.mark.parametrize("instance", INSTANCES, ids=IDS)
def test_forge_gets_the_planned_gpu_as_device_0(instance: dict) -> None:
    """Reservation off: NVIDIA_VISIBLE_DEVICES=<planned GPU>; the container sees one GPU, which
    CUDA numbers 0, so --gpu-device-id is 0 and Forge runs on the planned host GPU."""
    gpu = report(instance)["gpu"]
    assert gpu["nvidia_visible_devices"] == str(instance["gpus"][0])
    assert gpu["visible"] == [str(instance["gpus"][0])]
    assert gpu["gpu_device_id"] == 0
    assert gpu["device"] == str(instance["gpus"][0])


@pytest.mark.parametrize("instance", INSTANCES, ids=IDS)
def test_forge_listens_on_loopback_with_the_turbo_flags(instance: dict) -> None:
    got = report(instance)
    assert got["server_name"] == "127.0.0.1" and got["port"] == instance["port"]
    assert (
        got["listen"] and got["api"] and got["api_log"] and got["cuda_malloc"] and got["xformers"]
    )
    assert got["api_auth_users"] == [USER] and got["gradio_auth_users"] == [USER]
    argv = got["argv"]
    assert argv[: argv.index("--api")] == [
        "--ui-settings-file",
        f"/workspace/{instance.get('settings_file', 'config-turbo.json')}",
        "--ui-config-file",
        f"/workspace/{instance.get('ui_config_file', 'ui-config-turbo.json')}",
        "--ckpt-dir",
        "/workspace/storage/stable_diffusion/models/ckpt",
    ]
    assert argv[-2:] == ["--port", str(instance["port"])]
    for extra in instance.get("args_extra", []):
        assert extra in argv


@pytest.mark.parametrize("instance", INSTANCES, ids=IDS)
def test_image_extras_that_would_bind_host_ports_are_off(instance: dict) -> None:
    got = report(instance)
    assert got["services"]["forge"]
    for name in ("caddy", "sshd", "jupyter", "syncthing", "serviceportal", "quicktunnel"):
        assert not got["services"][name], f"{name} would start"
    assert got["caddy"]["web_token_set"] and got["caddy"]["web_password_set"]
    assert got["caddy"]["web_user"] == USER


@pytest.mark.parametrize("instance", INSTANCES, ids=IDS)
@pytest.mark.parametrize(
    "path", ["/sdapi/v1/sd-models", "/sdapi/v1/cmd-flags", "/sdapi/v1/options"]
)
def test_api_refuses_requests_without_credentials(instance: dict, path: str) -> None:
    r = requests.get(base(instance) + path, timeout=5)
    assert r.status_code == 401
    assert r.json() == {"detail": "Not authenticated"}
    assert r.headers["WWW-Authenticate"] == "Basic"
    r = requests.get(base(instance) + path, auth=(USER, PASSWORD + "x"), timeout=5)
    assert r.status_code == 401
    assert r.json() == {"detail": "Incorrect username or password"}
    assert r.headers["WWW-Authenticate"] == "Basic"


@pytest.mark.parametrize("instance", INSTANCES, ids=IDS)
def test_progress_needs_credentials_and_ping_does_not(instance: dict) -> None:
    assert requests.get(f"{base(instance)}/sdapi/v1/progress", timeout=5).status_code == 401
    assert requests.get(f"{base(instance)}/internal/ping", timeout=5).json() == {}


@pytest.mark.parametrize("instance", INSTANCES, ids=IDS)
def test_txt2img_returns_a_png_of_the_requested_size(instance: dict) -> None:
    body = {"prompt": "a red fox", "steps": 1, "cfg_scale": 1.0, "width": 512, "height": 384,
            "sampler_name": "Euler a", "seed": 42}  # fmt: skip
    r = requests.post(f"{base(instance)}/sdapi/v1/txt2img", json=body, auth=AUTH, timeout=30)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert png_size(b64decode(answer["images"][0])) == (512, 384)
    assert answer["parameters"]["steps"] == 1 and answer["parameters"]["cfg_scale"] == 1.0
    info = json.loads(answer["info"])
    assert (info["width"], info["height"], info["seed"]) == (512, 384, 42)
    assert info["sd_model_name"] == instance["checkpoint"]["name"].rsplit(".", 1)[0]


@pytest.mark.parametrize("instance", INSTANCES, ids=IDS)
def test_checkpoint_is_verified_and_listed(host: Any, instance: dict) -> None:
    name = instance["checkpoint"]["name"]
    path = f"{workspace(instance)}/storage/stable_diffusion/models/ckpt/{name}"
    assert host.file(path).sha256sum == CHECKPOINT_SHA256
    models = requests.get(f"{base(instance)}/sdapi/v1/sd-models", auth=AUTH, timeout=5).json()
    assert {"model_name": name.rsplit(".", 1)[0], "sha256": CHECKPOINT_SHA256}.items() <= next(
        m for m in models if m["model_name"] == name.rsplit(".", 1)[0]
    ).items()


def test_turbo_instance_has_the_sdxl_turbo_settings(host: Any) -> None:
    turbo = next(i for i in INSTANCES if i["name"] == "turbo")
    on_disk = json.loads(host.file(f"{workspace(turbo)}/config-turbo.json").content_string)
    assert on_disk["sd_model_checkpoint"] == turbo["checkpoint"]["name"]
    assert on_disk["forge_preset"] == "xl" and on_disk["xl_t2i_cfg"] == 1.0
    assert (on_disk["xl_t2i_width"], on_disk["xl_t2i_height"]) == (512, 512)
    options = requests.get(f"{base(turbo)}/sdapi/v1/options", auth=AUTH, timeout=5).json()
    assert options["sd_model_checkpoint"] == turbo["checkpoint"]["name"]
    assert options["xl_t2i_cfg"] == 1.0
    ui = report(turbo)["ui_config"]
    assert ui["txt2img/Sampling steps/value"] == 1
    assert ui["txt2img/CFG Scale/value"] == 1.0
    assert ui["txt2img/Sampling method/value"] == "Euler a"
    assert (ui["txt2img/Width/value"], ui["txt2img/Height/value"]) == (512, 512)


def test_main_instance_keeps_its_own_settings(host: Any) -> None:
    main = next(i for i in INSTANCES if i["name"] == "main")
    on_disk = json.loads(host.file(f"{workspace(main)}/config.json").content_string)
    assert on_disk == {"sd_model_checkpoint": main["checkpoint"]["name"]}
    assert report(main)["ui_config"] == {}


@pytest.mark.parametrize("instance", INSTANCES, ids=IDS)
def test_workspace_files_belong_to_the_forge_user(host: Any, instance: dict) -> None:
    assert report(instance)["uid"] == 1000
    for path in (
        workspace(instance),
        f"{workspace(instance)}/{instance.get('settings_file', 'config-turbo.json')}",
    ):
        assert host.file(path).uid == 1000


@pytest.mark.parametrize("instance", INSTANCES, ids=IDS)
def test_secrets_only_in_the_private_env_file(host: Any, compose: dict, instance: dict) -> None:
    env = host.file(f"{ROOT_DIR}/{instance['name']}.env")
    assert env.mode == 0o600 and env.user == "root"
    content = env.content_string
    assert f"--api-auth {USER}:{PASSWORD}" in content
    # the web UI's credential is a file the container user reads, not an argument
    assert (
        "--gradio-auth-path /run/secrets/gradio-auth" in content and "--gradio-auth " not in content
    )
    auth = host.file(f"{ROOT_DIR}/{instance['name']}.gradio-auth")
    assert auth.mode == 0o600 and auth.uid == 1000 and auth.content_string == f"{USER}:{PASSWORD}\n"
    assert (
        auth.content_string
        == host.file(f"{ROOT_DIR}/.previous/{instance['name']}.gradio-auth").content_string
    ), "not kept with the version proven healthy"
    assert f"WEB_TOKEN={TOKEN}" in content and f"WEB_PASSWORD={PASSWORD}" in content
    text = host.file(f"{ROOT_DIR}/compose.yaml").content_string
    assert not any(secret in text for secret in SECRETS)
    service = compose["services"][instance["name"]]
    assert "FORGE_ARGS" not in service["environment"]
    info = inspect(host, instance)
    command = " ".join((info["Args"] or []) + (info["Config"]["Cmd"] or []))
    assert not any(secret in command for secret in SECRETS)


def test_reservation_off_is_rendered_as_nvidia_visible_devices(compose: dict) -> None:
    for instance in INSTANCES:
        service = compose["services"][instance["name"]]
        assert "deploy" not in service
        assert service["environment"]["NVIDIA_VISIBLE_DEVICES"] == str(instance["gpus"][0])
        assert service["environment"]["FORGE_PORT_LOCAL"] == str(instance["port"])
