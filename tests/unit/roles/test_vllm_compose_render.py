"""The compose file of vllm_qwen3 with GPU reservations on, judged by `docker compose config`.

CI and the demo run with reservations off (no NVIDIA runtime), so the rendering that real GPU
hosts get is checked here: the role's template, rendered by ansible, parsed by compose itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ansible_collections.myia.genai_stack.plugins.module_utils import gpu_plan, specs, vllm

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "vllm_qwen3"


def render(tmp_path: Path, reservation: bool, models: list | None = None) -> dict:
    defaults = yaml.safe_load((ROOT / "group_vars" / "all" / "vllm_qwen3.yml").read_text())
    if models is not None:
        defaults["vllm_qwen3_models"] = models
    # what the stack model gives the role (genai_stack.specs.vllm and its plan)
    checked = vllm.normalize(defaults["vllm_qwen3_models"], {"image": "vllm/vllm-openai:v0.9.2"})
    plan = gpu_plan.plan([m["gpu_wish"] for m in checked], [0, 1, 2])
    playbook = [
        {
            "name": "Render the vllm_qwen3 compose file",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                "vllm_qwen3_gpu_reservation": reservation,
                "vllm_qwen3_models": defaults["vllm_qwen3_models"],
                "vllm_qwen3_checked": checked,
                "vllm_qwen3_plan": plan,
            },
            "tasks": [
                {
                    "ansible.builtin.template": {
                        "src": str(ROLE / "templates" / "compose.yaml.j2"),
                        "dest": str(tmp_path / "compose.yaml"),
                        "mode": "0644",
                    },
                    "vars": {
                        "vllm_qwen3_project_name": "vllm",
                        "vllm_qwen3_root_dir": str(tmp_path),
                        "vllm_qwen3_hf_cache_dir": "/opt/genai/hf-cache",
                        "vllm_qwen3_healthcheck_interval": 10,
                    },
                },
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(playbook))
    for model in defaults["vllm_qwen3_models"]:
        (tmp_path / f"{model['name']}.env").write_text("VLLM_API_KEY=x\n")
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    bindir = Path(sys.executable).parent
    done = subprocess.run(
        [str(bindir / "ansible-playbook"), "-i", "localhost,", "-c", "local",
         "-e", f"ansible_python_interpreter={sys.executable}", str(tmp_path / "play.yml")],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    config = subprocess.run(
        ["docker", "compose", "config", "--format", "json"],
        cwd=tmp_path, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert config.returncode == 0, config.stderr
    return json.loads(config.stdout)


@pytest.fixture(scope="module")
def with_reservation(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return render(tmp_path_factory.mktemp("on"), reservation=True)


def test_each_model_reserves_its_planned_gpus(with_reservation: dict) -> None:
    expected = {"qwen3-micro": ["2"], "qwen3-mini": ["2"], "qwen3-medium": ["0", "1"]}
    for name, gpus in expected.items():
        service = with_reservation["services"][name]
        devices = service["deploy"]["resources"]["reservations"]["devices"]
        assert devices == [{"driver": "nvidia", "device_ids": gpus, "capabilities": ["gpu"]}]
        assert "NVIDIA_VISIBLE_DEVICES" not in (service.get("environment") or {})


def test_user_stack_defaults(with_reservation: dict) -> None:
    services = with_reservation["services"]
    medium = services["qwen3-medium"]
    assert medium["image"] == "vllm/vllm-openai:v0.9.2"
    assert medium["ipc"] == "host" and medium["network_mode"] == "host"
    assert medium["command"][medium["command"].index("--tensor-parallel-size") + 1] == "2"
    # start order is the compose engine's (compose_start), not depends_on (which recreates dependents)
    assert [name for name, service in services.items() if "depends_on" in service] == []
    assert medium["volumes"][0]["target"] == "/root/.cache/huggingface"
    assert medium["healthcheck"]["start_period"] == "20m0s"


def test_without_reservation_gpu_ids_become_visible_devices(tmp_path: Path) -> None:
    services = render(tmp_path, reservation=False)["services"]
    assert "deploy" not in services["qwen3-medium"]
    assert services["qwen3-medium"]["environment"]["NVIDIA_VISIBLE_DEVICES"] == "0,1"
    assert services["qwen3-mini"]["environment"]["NVIDIA_VISIBLE_DEVICES"] == "2"


def test_healthcheck_reaches_each_model_where_it_binds(tmp_path: Path) -> None:
    """The URL is the checked model's reach_url (specs.reach_url, the one wildcard rule: it also
    maps '' and '0.0.0.0,::', which the template's own copy of the rule once missed)."""
    models = yaml.safe_load((ROOT / "group_vars" / "all" / "vllm_qwen3.yml").read_text())[
        "vllm_qwen3_models"
    ]
    binds = {"qwen3-micro": "::", "qwen3-mini": "0.0.0.0", "qwen3-medium": "::1"}
    for m in models:
        m["bind_address"] = binds[m["name"]]
    services = render(tmp_path, reservation=False, models=models)["services"]
    for name, bind in binds.items():
        port = next(m["port"] for m in models if m["name"] == name)
        url = "http://[::1]" if bind == "::1" else "http://127.0.0.1"
        assert f"urlopen('{url}:{port}/health'" in services[name]["healthcheck"]["test"][-1]
        assert specs.reach_url(bind, port) == f"{url}:{port}"
    template = (ROLE / "templates" / "compose.yaml.j2").read_text()
    assert "0.0.0.0" not in template and "'::'" not in template


def test_values_cannot_add_keys_or_directives(tmp_path: Path) -> None:
    """Quotes, ': ', '#', flow brackets, anchors, aliases and tags in values stay values."""
    hostile = 'Qwen/x": {evil: 1} # &a *b !tag [c]'
    note = 'a: b" # c {d} [e] &f *g !h %i'
    models = yaml.safe_load((ROOT / "group_vars" / "all" / "vllm_qwen3.yml").read_text())[
        "vllm_qwen3_models"
    ]
    models[0].update(
        model=hostile, env={"NOTE": note}, extra_args=["--chat-template", "x: y 'q' #z --a"]
    )
    config = render(tmp_path, reservation=True, models=models)
    assert set(config["services"]) == {"qwen3-micro", "qwen3-mini", "qwen3-medium"}
    micro = config["services"]["qwen3-micro"]
    assert set(micro) <= {
        "image", "container_name", "restart", "network_mode", "ipc", "command", "env_file",
        "environment", "volumes", "healthcheck", "deploy", "labels", "entrypoint", "networks",
    }  # fmt: skip
    assert micro["environment"]["NOTE"] == note
    assert micro["labels"]["io.myia.genai.model"] == hostile
    assert micro["command"][micro["command"].index("--model") + 1] == hostile
    assert micro["command"][-2:] == ["--chat-template", "x: y 'q' #z --a"]


def test_each_model_runs_its_pinned_commit(with_reservation: dict) -> None:
    """group_vars/all pins every model: --revision follows --model in each command."""
    models = yaml.safe_load((ROOT / "group_vars" / "all" / "vllm_qwen3.yml").read_text())[
        "vllm_qwen3_models"
    ]
    for m in models:
        command = with_reservation["services"][m["name"]]["command"]
        assert command[:4] == ["--model", m["model"], "--revision", m["revision"]]
        assert command.count("--revision") == 1


def test_the_plan_in_the_compose_file_shows_pinned_and_unpinned_models(tmp_path: Path) -> None:
    models = yaml.safe_load((ROOT / "group_vars" / "all" / "vllm_qwen3.yml").read_text())[
        "vllm_qwen3_models"
    ]
    del models[0]["revision"]
    models[2]["revision"] = "main"
    services = render(tmp_path, reservation=False, models=models)["services"]
    assert "--revision" not in services["qwen3-micro"]["command"]
    medium = services["qwen3-medium"]["command"]
    assert medium[medium.index("--revision") + 1] == "main"
    header = (tmp_path / "compose.yaml").read_text().split("\nname: ")[0].splitlines()
    assert header[-4:] == [
        "#   service       model@revision",
        "#   qwen3-micro   Qwen/Qwen3-1.7B-FP8 (unpinned)",
        "#   qwen3-mini    Qwen/Qwen3-8B-AWQ@" + models[1]["revision"][:7],
        "#   qwen3-medium  Qwen/Qwen3-32B-AWQ@main (unpinned: not a commit)",
    ]
