"""The instance after the role: daemon.json merged (every other key kept, a backup of the old one),
the GPUs discovered from the fake nvidia-smi, the CDI spec written (pytest-testinfra)."""

from __future__ import annotations

import json
import os
from typing import Any

import pytest

GPUS: list[dict[str, Any]] = json.loads(os.environ["NVIDIA_TEST_GPUS"])
BEFORE: dict[str, Any] = json.loads(os.environ["NVIDIA_TEST_DAEMON_BEFORE"])
OPTIONS: dict[str, Any] = json.loads(os.environ["NVIDIA_TEST_DAEMON_OPTIONS"])
GPUS_FILE = os.environ["NVIDIA_TEST_GPUS_FILE"]
DAEMON_JSON = "/etc/docker/daemon.json"


@pytest.fixture(scope="module")
def daemon(host: Any) -> dict[str, Any]:
    return json.loads(host.file(DAEMON_JSON).content_string)


def backups(host: Any) -> list[str]:
    out = host.check_output("find /etc/docker -maxdepth 1 -name 'daemon.json.*~'")
    return [line for line in out.splitlines() if line]


def test_unrelated_keys_are_kept(daemon: dict[str, Any]) -> None:
    for key in ("log-driver", "data-root", "registry-mirrors"):
        assert daemon[key] == BEFORE[key], key


def test_nvidia_runtime_is_declared_and_default(daemon: dict[str, Any]) -> None:
    assert daemon["runtimes"] == {"nvidia": {"path": "nvidia-container-runtime", "args": []}}
    assert daemon["default-runtime"] == "nvidia"


def test_options_are_merged_deeply(daemon: dict[str, Any]) -> None:
    assert daemon["log-opts"] == {**BEFORE["log-opts"], **OPTIONS["log-opts"]}
    assert daemon["features"] == OPTIONS["features"]


def test_file_keeps_its_indentation_and_mode(host: Any) -> None:
    f = host.file(DAEMON_JSON)
    assert f.mode == 0o644
    lines = f.content_string.splitlines()
    assert lines[1].startswith('    "') and not lines[1].startswith("     ")  # 4 spaces kept


def test_one_backup_holds_the_previous_file(host: Any) -> None:
    found = backups(host)
    assert len(found) == 1, f"expected one backup (the idempotence run makes none): {found}"
    assert json.loads(host.file(found[0]).content_string) == BEFORE


def test_discovered_gpus_match_the_fake_nvidia_smi(host: Any) -> None:
    discovered = json.loads(host.file(GPUS_FILE).content_string)
    assert [g["index"] for g in discovered] == list(range(len(GPUS)))
    for gpu, want in zip(discovered, GPUS, strict=True):
        assert gpu["name"] == want["name"]
        assert gpu["memory_total_mib"] == want["memory_total_mib"]
        assert gpu["memory_used_mib"] == want["memory_used_mib"]
        assert gpu["uuid"].startswith("GPU-")
    assert len({g["uuid"] for g in discovered}) == len(GPUS)


def test_cdi_spec_lists_every_gpu(host: Any) -> None:
    spec = host.file("/etc/cdi/nvidia.yaml")
    assert spec.exists and spec.mode == 0o644
    text = spec.content_string
    assert "kind: nvidia.com/gpu" in text
    for index in range(len(GPUS)):
        assert f'- name: "{index}"' in text
    assert "- name: all" in text
