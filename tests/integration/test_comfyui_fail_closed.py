"""ComfyUI-Login fails closed on the role's own path (site.yml --tags comfyui, local docker).

Upstream ComfyUI-Login catches only a missing PASSWORD: when its process may not read the file
(an image whose USER is not PASSWORD's owner), the node fails to import and ComfyUI serves its
API without authentication. The role runs the container as the owner of login/PASSWORD, so an
image built to run as nobody still gets the lock. ComfyUI-Login also logs its token in full at
every start: logs.yml collects the logs without it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
HOST_ROOT = Path("/opt/genai-itest-comfy")
PROJECT = "itest-comfy-nonroot"
PORT = 28288
IMAGE = "local/comfyui-standin:nonroot"
VARS = {
    "genai_root_dir": str(HOST_ROOT),
    "comfyui_qwen_auth_project_name": PROJECT,
    "comfyui_qwen_auth_port": PORT,
    "comfyui_qwen_auth_image": IMAGE.split(":")[0],
    "comfyui_qwen_auth_image_tag": IMAGE.split(":")[1],
    "token_sync_secret_file": "{{ inventory_dir }}/../../.secrets/itest-comfy/genai_secret.vault",
}


def playbook(name: str, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN / "ansible-playbook"), name, "-l", "gpu-host", "-e", json.dumps(VARS), *args]
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def deployed() -> Iterator[subprocess.CompletedProcess[str]]:
    """ComfyUI from an image whose USER is nobody (65534), PASSWORD root's and 0600."""
    subprocess.run(
        ["docker", "build", "-q", "-t", IMAGE, "-"],
        input="FROM local/comfyui-standin:latest\nUSER 65534:65534\n",
        text=True, check=True, capture_output=True,
    )  # fmt: skip
    done = playbook("site.yml", "--tags", "comfyui")
    yield done
    subprocess.run(["docker", "compose", "-p", PROJECT, "down", "--timeout", "2"],
                   capture_output=True, check=False)  # fmt: skip
    subprocess.run(["rm", "-rf", str(HOST_ROOT)], check=False)


def token() -> str:
    return (HOST_ROOT / "comfyui" / "ComfyUI" / "login" / "PASSWORD").read_text().splitlines()[0]


def test_an_image_running_as_another_user_still_gets_the_lock(
    deployed: subprocess.CompletedProcess[str],
) -> None:
    assert deployed.returncode == 0, deployed.stdout[-5000:]
    password = HOST_ROOT / "comfyui" / "ComfyUI" / "login" / "PASSWORD"
    assert password.stat().st_mode & 0o777 == 0o600
    user = subprocess.run(
        ["docker", "inspect", "-f", "{{.Config.User}}", f"{PROJECT}-comfyui"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    assert user == f"{password.stat().st_uid}:{password.stat().st_gid}"
    url = f"http://127.0.0.1:{PORT}/system_stats"
    assert requests.get(url, timeout=5).status_code == 401
    auth = {"Authorization": f"Bearer {token()}"}
    assert requests.get(url, headers=auth, timeout=5).status_code == 200


def test_collected_logs_hold_no_token(
    deployed: subprocess.CompletedProcess[str], tmp_path: Path
) -> None:
    assert deployed.returncode == 0
    raw = subprocess.run(["docker", "logs", f"{PROJECT}-comfyui"],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert f"use token={token()}" in raw.stdout + raw.stderr  # what the service itself logs
    done = playbook("playbooks/logs.yml", "-e", f"logs_dest={tmp_path}", "-v")
    assert done.returncode == 0, done.stdout[-3000:]
    collected = (tmp_path / f"{PROJECT}-comfyui.log").read_text()
    assert "use token=***" in collected
    assert token() not in collected
    assert token() not in done.stdout + done.stderr
