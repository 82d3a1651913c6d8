"""Behaviour of the deployed ComfyUI + ComfyUI-Login, checked from outside (testinfra + HTTP)."""

from __future__ import annotations

import json
import os
import re
import time
from typing import Any

import pytest
import requests
import yaml

ROOT_DIR = os.environ["COMFYUI_TEST_ROOT_DIR"]
DATA_DIR = os.environ["COMFYUI_TEST_DATA_DIR"]
CONTAINER = os.environ["COMFYUI_TEST_CONTAINER"]
PORT = int(os.environ["COMFYUI_TEST_PORT"])
GPU = os.environ["COMFYUI_TEST_GPU"]
MODELS: list[dict[str, Any]] = json.loads(os.environ["COMFYUI_TEST_MODELS"])
URL = f"http://127.0.0.1:{PORT}"
BCRYPT = re.compile(r"^\$2b\$12\$[./A-Za-z0-9]{53}$")


@pytest.fixture(scope="module")
def token(host: Any) -> str:
    """The API token: line 1 of login/PASSWORD, the bcrypt hash the role wrote."""
    return host.file(f"{DATA_DIR}/login/PASSWORD").content_string.splitlines()[0]


@pytest.fixture(scope="module")
def container(host: Any) -> dict[str, Any]:
    return json.loads(host.check_output(f"docker inspect {CONTAINER}"))[0]


@pytest.fixture(scope="module")
def compose(host: Any) -> dict[str, Any]:
    return yaml.safe_load(host.file(f"{ROOT_DIR}/compose.yaml").content_string)


def test_password_file_is_private_and_holds_a_bcrypt_hash(host: Any, token: str) -> None:
    password = host.file(f"{DATA_DIR}/login/PASSWORD")
    assert password.mode == 0o600 and password.user == "root"
    assert host.file(f"{DATA_DIR}/login").mode == 0o700
    lines = password.content_string.splitlines()
    assert BCRYPT.match(token), "line 1 is not a bcrypt hash"
    assert lines[1] == "admin"


def test_no_secret_in_compose_or_container(host: Any, token: str, container: dict) -> None:
    assert token not in host.file(f"{ROOT_DIR}/compose.yaml").content_string
    assert token not in json.dumps(container)


def test_container_runs_the_rendered_command(container: dict, compose: dict) -> None:
    assert container["State"]["Running"] and container["State"]["Health"]["Status"] == "healthy"
    service = compose["services"]["comfyui"]
    assert [container["Path"], *container["Args"]] == service["entrypoint"] + service["command"]
    args = service["command"]
    assert args[args.index("--listen") + 1] == "127.0.0.1"
    assert args[args.index("--port") + 1] == str(PORT)
    assert args[args.index("--preview-method") + 1] == "auto"
    assert "--use-split-cross-attention" in args
    assert "--enable-cors-header" not in args  # default: tokens checked on every request
    assert service["entrypoint"] == ["/workspace/ComfyUI/venv/bin/python3", "main.py"]
    assert service["network_mode"] == "host" and "deploy" not in service


def test_custom_node_from_the_archive_is_mounted(host: Any, container: dict) -> None:
    node = f"{DATA_DIR}/custom_nodes/ComfyUI-Login"
    assert host.file(f"{node}/__init__.py").exists
    assert host.file(f"{node}/pyproject.toml").contains("0.0.0+molecule")
    mounts = {m["Destination"]: m["Source"] for m in container["Mounts"]}
    assert mounts["/workspace/ComfyUI/custom_nodes/ComfyUI-Login"] == node
    assert mounts["/workspace/ComfyUI/login"] == f"{DATA_DIR}/login"


def test_standin_saw_the_planned_gpu_the_login_node_and_the_models() -> None:
    report = requests.get(f"{URL}/standin/report", timeout=5).json()
    assert report["gpus"] == [GPU] and report["nvidia_visible_devices"] == GPU
    assert report["login"]["enabled"] is True
    assert report["login"]["node_version"] == "0.0.0+molecule"  # the archive's, not the image's
    assert report["login"]["password_file_mode"] == "0600"
    for model in MODELS:
        assert model["name"] in report["models"][model["folder"]]


@pytest.mark.parametrize("model", MODELS, ids=[m["name"] for m in MODELS])
def test_models_are_in_place_with_their_checksum(host: Any, model: dict) -> None:
    path = host.file(f"{DATA_DIR}/models/{model['folder']}/{model['name']}")
    assert path.exists and path.mode == 0o644
    assert path.sha256sum == model["sha256"]


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer wrong"}], ids=["no-token", "wrong-token"]
)
def test_api_clients_without_the_token_get_401(headers: dict) -> None:
    response = requests.get(f"{URL}/system_stats", headers=headers, timeout=5)
    assert response.status_code == 401
    assert response.json() == {"error": "Authentication required."}


def test_the_token_opens_the_api(token: str) -> None:
    bearer = requests.get(
        f"{URL}/system_stats", headers={"Authorization": f"Bearer {token}"}, timeout=5
    )
    assert bearer.status_code == 200 and bearer.json()["devices"][0]["type"] == "cuda"
    query = requests.get(f"{URL}/api/queue", params={"token": token}, timeout=5)
    assert query.status_code == 200 and "queue_running" in query.json()


def test_browsers_are_sent_to_the_login_page() -> None:
    response = requests.get(
        f"{URL}/", headers={"Accept": "text/html"}, timeout=5, allow_redirects=False
    )
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    page = requests.get(f"{URL}/login", headers={"Accept": "text/html"}, timeout=5)
    assert page.status_code == 200 and "<form" in page.text


def test_a_qwen_edit_prompt_runs_with_the_deployed_models(host: Any, token: str) -> None:
    auth = {"Authorization": f"Bearer {token}"}
    upload = requests.post(
        f"{URL}/upload/image",
        headers=auth,
        files={"image": ("molecule.png", b"\x89PNG molecule", "image/png")},
        data={"overwrite": "true"},
        timeout=5,
    )
    assert upload.status_code == 200, upload.text
    names = {m["folder"]: m["name"] for m in MODELS}
    prompt = {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": names["diffusion_models"], "weight_dtype": "default"}},
        "2": {"class_type": "CLIPLoader", "inputs": {"clip_name": names["text_encoders"], "type": "qwen_image"}},
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": names["vae"]}},
        "4": {"class_type": "LoadImage", "inputs": {"image": "molecule.png"}},
        "5": {"class_type": "TextEncodeQwenImageEdit", "inputs": {"clip": ["2", 0], "prompt": "blue", "vae": ["3", 0], "image": ["4", 0]}},
        "6": {"class_type": "TextEncodeQwenImageEdit", "inputs": {"clip": ["2", 0], "prompt": "", "vae": ["3", 0], "image": ["4", 0]}},
        "7": {"class_type": "VAEEncode", "inputs": {"pixels": ["4", 0], "vae": ["3", 0]}},
        "8": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["1", 0], "seed": 1, "steps": 4, "cfg": 1.0, "sampler_name": "euler",
                "scheduler": "simple", "positive": ["5", 0], "negative": ["6", 0],
                "latent_image": ["7", 0], "denoise": 1.0,
            },
        },
        "9": {"class_type": "VAEDecode", "inputs": {"samples": ["8", 0], "vae": ["3", 0]}},
        "10": {"class_type": "SaveImage", "inputs": {"images": ["9", 0], "filename_prefix": "molecule"}},
    }  # fmt: skip
    queued = requests.post(f"{URL}/prompt", json={"prompt": prompt}, headers=auth, timeout=5)
    assert queued.status_code == 200, queued.text
    prompt_id = queued.json()["prompt_id"]
    history: dict = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not history:
        history = requests.get(f"{URL}/history/{prompt_id}", headers=auth, timeout=5).json()
        time.sleep(0.1)
    image = history[prompt_id]["outputs"]["10"]["images"][0]
    view = requests.get(f"{URL}/view", params=image, headers=auth, timeout=5)
    assert view.status_code == 200 and view.content.startswith(b"\x89PNG\r\n\x1a\n")
    assert host.file(f"{DATA_DIR}/output/{image['filename']}").exists  # on the host's volume
