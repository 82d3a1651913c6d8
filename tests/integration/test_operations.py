"""The operations playbooks on a real stack: site.yml on the demo host (local docker, stand-ins),
then validate.yml, update.yml rolling back an unhealthy tag, backup.yml -> restore.yml.

Runs the real playbooks with ansible-playbook against inventories/demo, moved to its own root
directory, compose project and ports by stack_vars.yml so it never touches a running demo.
"""

from __future__ import annotations

import hashlib
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
VARS = Path(__file__).with_name("stack_vars.yml")
PROJECT = Path("/opt/genai-itest/vllm")
PORTS = (25000, 25001, 25002)


def playbook(
    name: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN / "ansible-playbook"), name, "-l", "gpu-host", "-e", f"@{VARS}", *args]
    full_env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), **(env or {})}
    return subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, check=False)


def images() -> dict[str, str]:
    out = subprocess.run(
        ["docker", "ps", "--filter", "label=com.docker.compose.project=itest-vllm",
         "--format", "{{.Names}} {{.Image}}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return dict(line.split() for line in out.splitlines())


def recap(stdout: str) -> dict[str, int]:
    """The PLAY RECAP counters of gpu-host."""
    line = next(x for x in reversed(stdout.splitlines()) if x.startswith("gpu-host") and "ok=" in x)
    return {k: int(v) for k, v in (f.split("=") for f in line.split(":", 1)[1].split())}


def api_key() -> str:
    line = next(
        x
        for x in (PROJECT / "qwen3-micro.env").read_text().splitlines()
        if x.startswith("VLLM_API_KEY=")
    )
    return line.split("=", 1)[1]


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def stack() -> Iterator[None]:
    done = playbook("site.yml")
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    yield
    for project in ("itest-vllm", "itest-comfyui", "itest-forge"):  # by name: needs no files
        subprocess.run(
            ["docker", "compose", "-p", project, "down", "--timeout", "2"],
            capture_output=True,
            check=False,
        )
    subprocess.run(["rm", "-rf", str(PROJECT.parent)], check=False)


def test_site_rerun_changes_nothing(stack: None) -> None:
    done = playbook("site.yml")
    assert done.returncode == 0
    assert recap(done.stdout)["changed"] == 0


def test_check_diff_changes_nothing(stack: None) -> None:
    before = {p.name: digest(p) for p in PROJECT.glob("*") if p.is_file()}
    done = playbook("site.yml", "--check", "--diff")
    assert done.returncode == 0, done.stdout[-3000:]
    assert {p.name: digest(p) for p in PROJECT.glob("*") if p.is_file()} == before


def test_validate_passes_and_writes_a_report(stack: None) -> None:
    done = playbook("playbooks/validate.yml")
    assert done.returncode == 0, done.stdout[-5000:]
    report = json.loads((ROOT / "reports" / "validate-gpu-host.json").read_text())
    assert report["summary"]["failed"] == 0 and report["summary"]["total"] == 22
    names = {e["name"] for e in report["endpoints"]}
    assert "qwen3-mini: tool result answered" in names
    assert "comfyui: system stats" in names
    assert "turbo: lists checkpoints" in names
    key = api_key()
    assert key not in done.stdout and key not in json.dumps(report)


def test_update_to_an_unhealthy_tag_rolls_back(stack: None) -> None:
    subprocess.run(
        ["docker", "build", "-q", "-t", "local/vllm-standin:unhealthy", "-"],
        input="FROM local/vllm-standin:latest\nENV STANDIN_FAIL=1\n",
        text=True, capture_output=True, check=True,
    )  # fmt: skip
    compose_before = digest(PROJECT / "compose.yaml")
    done = playbook(
        "playbooks/update.yml",
        "-e", "vllm_qwen3_image=local/vllm-standin:unhealthy",
        "-e", "vllm_qwen3_load_timeout=6",
    )  # fmt: skip
    assert done.returncode != 0
    assert "Rollout stopped, every vLLM model restored" in done.stdout
    assert "EngineCore" in done.stdout, "the failing container's log lines are in the message"
    assert set(images().values()) == {"local/vllm-standin:latest"}
    assert digest(PROJECT / "compose.yaml") == compose_before
    for port in PORTS:
        assert requests.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200


def test_backup_restore_round_trip(stack: None, tmp_path: Path) -> None:
    vault_pass = tmp_path / "vault-pass"
    vault_pass.write_text("itest-vault-password\n")
    vault_pass.chmod(0o600)
    env = {"ANSIBLE_VAULT_PASSWORD_FILE": str(vault_pass)}
    files = sorted(p for p in PROJECT.glob("*") if p.is_file())
    before = {p: (digest(p), p.stat().st_mode) for p in files}
    done = playbook("playbooks/backup.yml", "-e", f"backup_root={tmp_path}/backups", env=env)
    assert done.returncode == 0, done.stdout[-4000:]
    (stamp,) = (tmp_path / "backups" / "gpu-host").iterdir()
    secrets = (stamp / "secrets.tar.gz.vault").read_text()
    assert secrets.startswith("$ANSIBLE_VAULT;1.1;AES256")
    assert not (stamp / "secrets.tar.gz").exists()

    (PROJECT / "qwen3-mini.env").unlink()
    (PROJECT / "compose.yaml").write_text("damaged\n")
    done = playbook("playbooks/restore.yml", "-e", f"backup_from={stamp}", env=env)
    assert done.returncode == 0, done.stdout[-4000:]
    assert {p: (digest(p), p.stat().st_mode) for p in files} == before


def test_client_env_matches_the_services(stack: None) -> None:
    env_file = PROJECT.parent / "clients" / "genai.env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    assert values["VLLM_API_KEY"] == api_key()
    assert values["VLLM_QWEN3_MINI_BASE_URL"] == "http://127.0.0.1:25001/v1"
    r = requests.get(
        values["VLLM_BASE_URL"] + "/models",
        headers={"Authorization": f"Bearer {values['VLLM_API_KEY']}"},
        timeout=5,
    )
    assert r.status_code == 200


def test_rotate_tokens_everything_follows_and_nothing_leaks(stack: None) -> None:
    old = api_key()
    done = playbook("playbooks/rotate_tokens.yml", "-vvv")
    assert done.returncode == 0, done.stdout[-5000:]
    new = api_key()
    assert new != old
    output = done.stdout + done.stderr
    assert old not in output and new not in output, "a credential reached the -vvv output"
    env_file = PROJECT.parent / "clients" / "genai.env"
    assert f"VLLM_API_KEY={new}\n" in env_file.read_text()
    for port in PORTS:
        url = f"http://127.0.0.1:{port}/v1/models"
        assert (
            requests.get(url, headers={"Authorization": f"Bearer {old}"}, timeout=5).status_code
            == 401
        )
        assert (
            requests.get(url, headers={"Authorization": f"Bearer {new}"}, timeout=5).status_code
            == 200
        )
    done = playbook("site.yml")
    assert done.returncode == 0 and recap(done.stdout)["changed"] == 0
