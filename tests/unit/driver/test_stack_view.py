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
    assert set(by_name) == {"qwen3-micro", "qwen3-mini", "qwen3-medium", "comfyui", "turbo"}
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


def test_references_are_resolved_and_other_jinja_is_named(tmp_path: Path) -> None:
    driver = Driver(Project(ROOT))
    hostvars = {
        "inventory_dir": "/inv",
        "port_var": 9001,
        "forge_turbo_instances": [
            {"name": "a", "port": "{{ port_var }}", "gpus": [0], "checkpoint": "{{ ckpt }}"}
        ],
        "ckpt": {
            "name": "x.safetensors",
            "url": "file://{{ inventory_dir }}/x",
            "sha256": "0" * 64,
        },
        "genai_gpus": [{"index": 0, "name": "GPU", "memory_total_mib": 1000}],
    }
    view = stack.host_view(driver, "h", hostvars, [])
    assert view.problems == []
    assert [(s.name, s.port) for s in view.services] == [("a", 9001)]

    hostvars["forge_turbo_instances"][0]["port"] = "{{ port_var | int + 1 }}"
    view = stack.host_view(driver, "h", hostvars, [])
    assert view.services == []
    assert len(view.problems) == 1
    assert "forge_turbo_instances" in view.problems[0]
    assert "Jinja expressions the panel does not evaluate" in view.problems[0]
