"""The panel's view of the stack: services and GPU plan from the inventory, through the
collection's own module_utils, exactly as the panel process loads them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from genai_stack import stack
from genai_stack.driver import Driver
from genai_stack.project import Project

ROOT = Path(__file__).resolve().parents[3]
MODULE_UTILS = sorted(p.stem for p in (ROOT / "plugins" / "module_utils").glob("*.py"))


def test_every_module_util_loads_in_a_fresh_interpreter() -> None:
    # the unit tests' conftest puts collections/ on sys.path; the panel process has no such help
    code = (
        "import json, sys\n"
        "from genai_stack.project import Project\n"
        "p = Project(sys.argv[1])\n"
        "print(json.dumps([p.module_util(n).__name__ for n in sys.argv[2:]]))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run(
        [sys.executable, "-c", code, str(ROOT), *MODULE_UTILS],
        capture_output=True,
        text=True,
        cwd="/",
        env=env,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert len(json.loads(out.stdout)) == len(MODULE_UTILS)


@pytest.fixture(scope="module")
def demo_view() -> stack.HostView:
    driver = Driver(Project(ROOT))
    (view,) = [h for h in stack.load(driver) if h.name == "gpu-host"]
    return view


def test_demo_inventory_shows_every_service_with_its_gpus(demo_view: stack.HostView) -> None:
    assert demo_view.problems == []
    by_name = {s.name: s for s in demo_view.services}
    assert set(by_name) == {
        "qwen3-micro", "qwen3-mini", "qwen3-medium", "openai-gateway", "comfyui", "turbo"
    }  # fmt: skip
    gateway = by_name["openai-gateway"]
    assert (gateway.gpus, gateway.clients) == ((), ("genai",))
    assert gateway.served_model_names == ("qwen3-medium", "qwen3-micro", "qwen3-mini")
    assert by_name["comfyui"].gpus == (0,)
    assert by_name["comfyui"].hostname == "qwen-image-edit.myia.io"
    assert by_name["turbo"].gpus == (1,)
    assert by_name["qwen3-medium"].gpus == (0, 1)


def test_demo_gpu_plan_places_every_service(demo_view: stack.HostView) -> None:
    placed = {g.index: set(g.services) for g in demo_view.gpus}
    assert placed == {
        0: {"qwen3-medium", "comfyui"},
        1: {"qwen3-medium", "turbo"},
        2: {"qwen3-micro", "qwen3-mini"},
    }
    share = {g.index: round(g.memory_share, 2) for g in demo_view.gpus}
    assert share == {0: 0.95, 1: 0.85, 2: 0.9}


def test_a_refused_model_is_shown_with_its_problems(tmp_path: Path) -> None:
    inventory = tmp_path / "hosts.yml"
    inventory.write_text(
        "all:\n  children:\n    gpu_hosts:\n      hosts:\n        h:\n"
        "          ansible_connection: local\n"
        "          genai_gpus: [{index: 0}, {index: 1}, {index: 2}]\n"
        "          forge_turbo_instances: [{name: a, port: '{{ 9000 + 1 }}', gpus: [1]}]\n"
        "          comfyui_qwen_auth_port: 90001\n"
    )
    (view,) = stack.load(Driver(Project(ROOT)), str(inventory))
    assert view.services == []
    assert view.problems == ["comfyui_qwen_auth_port 90001 is not a port number (1-65535)"]

    inventory.write_text(inventory.read_text().replace("90001", "9002"))
    (view,) = stack.load(Driver(Project(ROOT)), str(inventory))
    assert view.problems == []
    # Jinja is evaluated by Ansible, as the roles see it
    assert ("a", 9001) in [(s.name, s.port) for s in view.services]
