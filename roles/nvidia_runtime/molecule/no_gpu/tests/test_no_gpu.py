"""A host without GPU or toolkit after the role: nothing GPU-only done, daemon.json untouched."""

from __future__ import annotations

import json
import os
from typing import Any

BEFORE = os.environ["NVIDIA_TEST_DAEMON_BEFORE"]
GPUS_FILE = os.environ["NVIDIA_TEST_GPUS_FILE"]


def test_no_gpu_discovered_with_a_reason(host: Any) -> None:
    found = json.loads(host.file(GPUS_FILE).content_string)
    assert found["gpus"] == []
    assert found["status"] == "absent"
    assert "nvidia-smi not found" in found["reason"]
    assert found["declared"] is False


def test_daemon_json_is_untouched_and_not_backed_up(host: Any) -> None:
    assert host.file("/etc/docker/daemon.json").content_string == BEFORE
    assert host.check_output("find /etc/docker -maxdepth 1 -name 'daemon.json.*~'") == ""


def test_no_cdi_spec(host: Any) -> None:
    assert not host.file("/etc/cdi/nvidia.yaml").exists
    assert not host.file("/etc/cdi").exists
