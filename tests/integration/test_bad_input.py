"""Realistic admin mistakes, each stopped by the first play before anything changes on a host.

Every mistake is one host of a generated inventory (local connection, the demo's group_vars, its
own root directory); one ``ansible-playbook site.yml --check`` runs them all. For each host the
test asserts that the failure is the first play's stack model task, that the message names the
variable (path and all), that no traceback or template marker leaked, that no later play ran a
task on it, and that its root directory was never created. A control run shows the unchanged
inventory passes the same play, so the failures are the mistakes'.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MODELS = yaml.safe_load((ROOT / "group_vars/all/vllm_qwen3.yml").read_text())["vllm_qwen3_models"]
FORGE = yaml.safe_load((ROOT / "group_vars/all/forge_turbo.yml").read_text())[
    "forge_turbo_instances"
]
MODEL_TASK = "Build and check the stack model"


def models(index: int, **change: Any) -> dict[str, Any]:
    """vllm_qwen3_models with model ``index`` changed (a key set to None is removed)."""
    result = copy.deepcopy(MODELS)
    result[index].update(change)
    result[index] = {k: v for k, v in result[index].items() if v is not None}
    return {"vllm_qwen3_models": result}


def instances(**change: Any) -> dict[str, Any]:
    result = copy.deepcopy(FORGE)
    result[0].update(change)
    return {"forge_turbo_instances": result}


#: (id, host variables, what the message must say, extra groups)
MISTAKES: list[tuple[str, dict[str, Any], list[str], list[str]]] = [
    # vLLM models
    ("vllm_port_text", models(0, port="50OO"), ["vllm_qwen3_models[0].port", "'50OO'"], []),
    ("vllm_port_range", models(1, port=70000), ["vllm_qwen3_models[1].port", "70000"], []),
    ("vllm_port_twice", models(1, port=5000), ["vllm_qwen3_models[1].port", "5000"], []),
    ("vllm_name_space", models(0, name="qwen3 micro"), ["vllm_qwen3_models[0].name"], []),
    ("vllm_name_slash", models(0, name="../micro"), ["vllm_qwen3_models[0].name"], []),
    ("vllm_name_semicolon", models(2, name="m;rm -rf"), ["vllm_qwen3_models[2].name"], []),
    ("vllm_name_twice", models(1, name="qwen3-micro"), ["vllm_qwen3_models[0].name"], []),
    ("vllm_max_len_32k", models(0, max_model_len="32k"),
     ["vllm_qwen3_models[0].max_model_len", "'32k'"], []),
    ("vllm_share_over_one", models(0, gpu_memory_utilization=1.5),
     ["vllm_qwen3_models[0].gpu_memory_utilization", "1.5"], []),
    ("vllm_unknown_gpu", models(0, gpus=[7]), ["GPU 7 does not exist", "vllm_qwen3_models[0].gpus"], []),
    ("vllm_gpus_not_list", models(0, gpus="2"), ["vllm_qwen3_models[0].gpus"], []),
    ("vllm_gpu_word", models(0, gpus=["two"]), ["vllm_qwen3_models[0].gpus"], []),
    ("vllm_tp_mismatch", models(2, tensor_parallel_size=3), ["vllm_qwen3_models[2].tensor_parallel_size"], []),
    ("vllm_bind_name", models(0, bind_address="localhost"),
     ["vllm_qwen3_models[0].bind_address", "'localhost'"], []),
    ("vllm_image_empty", {"vllm_qwen3_image": ""}, ["vllm_qwen3_models[0].image", "vllm_qwen3_image"], []),
    ("vllm_image_spaces", {"vllm_qwen3_image": "vllm/vllm-openai: v0.9.2"},
     ["vllm_qwen3_image", "not a valid image reference"], []),
    ("vllm_env_key", models(0, env={"HF-HOME": "/x"}), ["vllm_qwen3_models[0].env.HF-HOME"], []),
    ("vllm_env_api_key", models(0, env={"VLLM_API_KEY": "abc"}), ["vllm_qwen3_models[0].env.VLLM_API_KEY"], []),
    ("vllm_timeout_negative", models(0, load_timeout=-5), ["vllm_qwen3_models[0].load_timeout", "-5"], []),
    ("vllm_timeout_minutes", models(0, load_timeout="20m"), ["vllm_qwen3_models[0].load_timeout", "'20m'"], []),
    ("vllm_hostname_scheme", models(0, hostname="https://micro.vllm.myia.io"),
     ["vllm_qwen3_models[0].hostname", "without a scheme"], []),
    ("vllm_hostname_twice", models(1, hostname="micro.vllm.myia.io"),
     ["vllm_qwen3_models[1]", "micro.vllm.myia.io", "already used"], []),
    ("vllm_parser_unknown", models(0, tool_call_parser="qwen"), ["vllm_qwen3_models[0].tool_call_parser", "'qwen'"], []),
    ("vllm_quantization", models(1, quantization="awq4"), ["vllm_qwen3_models[1].quantization", "'awq4'"], []),
    ("vllm_unknown_key", models(0, gpu=[2]), ["vllm_qwen3_models[0]", "unknown key(s) gpu"], []),
    ("vllm_missing_model", models(0, model=None), ["missing vllm_qwen3_models[0].model"], []),
    ("vllm_arg_newline", models(0, extra_args=["--seed 1\n--x"]), ["vllm_qwen3_models[0].extra_args[0]"], []),
    ("vllm_gpu_overbooked", models(2, gpu_memory_utilization=0.9),
     ["GPU 0: memory shares sum to 1.3", "vllm_qwen3_models[2]", "comfyui_qwen_auth_gpu"], []),
    # ComfyUI
    ("comfyui_port_text", {"comfyui_qwen_auth_port": "eighty"}, ["comfyui_qwen_auth_port", "'eighty'"], []),
    ("comfyui_port_twice", {"comfyui_qwen_auth_port": 5000}, ["comfyui_qwen_auth_port", "5000", "already used"], []),
    ("comfyui_gpu_missing", {"comfyui_qwen_auth_gpu": 9}, ["GPU 9 does not exist", "comfyui_qwen_auth_gpu"], []),
    ("comfyui_share_zero", {"comfyui_qwen_auth_gpu_memory_share": 0}, ["comfyui_qwen_auth_gpu_memory_share"], []),
    ("comfyui_hostname_space", {"comfyui_qwen_auth_hostname": "qwen image.myia.io"}, ["comfyui_qwen_auth_hostname"], []),
    ("comfyui_managed_flag", {"comfyui_qwen_auth_extra_args": ["--port=9000"]}, ["comfyui_qwen_auth_extra_args[0]"], []),
    ("comfyui_abbreviated_listen", {"comfyui_qwen_auth_extra_args": ["--lis", "0.0.0.0"]},
     ["comfyui_qwen_auth_extra_args[0] '--lis' abbreviates --listen"], []),
    ("comfyui_abbreviated_disable_nodes", {"comfyui_qwen_auth_extra_args": ["--disable-all-custom"]},
     ["comfyui_qwen_auth_extra_args[0] '--disable-all-custom' abbreviates --disable-all-custom-nodes"], []),
    ("comfyui_unknown_flag", {"comfyui_qwen_auth_extra_args": ["--no-such-flag"]},
     ["comfyui_qwen_auth_extra_args[0] '--no-such-flag' is not a flag of ComfyUI"], []),
    ("comfyui_login_branch", {"comfyui_qwen_auth_login_source": "git", "comfyui_qwen_auth_login_version": "main"},
     ["comfyui_qwen_auth_login_version 'main' is not pinned"], []),
    ("forge_stray_word", instances(args_extra=["--xformers", "stray"]),
     ["forge_turbo_instances[0].args_extra[1] 'stray' is a stray word"], []),
    ("comfyui_cors_path", {"comfyui_qwen_auth_cors_origin": "https://myia.io/app"}, ["comfyui_qwen_auth_cors_origin"], []),
    ("comfyui_model_unverified",
     {"comfyui_qwen_auth_models": [{"name": "a.safetensors", "folder": "vae", "url": "https://models.invalid/a"}]},
     ["comfyui_qwen_auth_models[0].sha256"], []),
    ("comfyui_model_folder", {"comfyui_qwen_auth_models": [{"name": "a.safetensors", "folder": "models"}]},
     ["comfyui_qwen_auth_models[0].folder"], []),
    ("comfyui_env_key", {"comfyui_qwen_auth_env": {"MY VAR": "1"}}, ["comfyui_qwen_auth_env.MY VAR"], []),
    ("comfyui_image_tag", {"comfyui_qwen_auth_image_tag": "latest version"}, ["comfyui_qwen_auth_image_tag"], []),
    ("comfyui_bind", {"comfyui_qwen_auth_bind_address": "0.0.0.0;"}, ["comfyui_qwen_auth_bind_address"], []),
    # Forge
    ("forge_port_text", instances(port="17861/tcp"), ["forge_turbo_instances[0].port"], []),
    ("forge_two_gpus", instances(gpus=[0, 1]), ["forge_turbo_instances[0].gpus"], []),
    ("forge_sha_placeholder", {"forge_turbo_checkpoint_sha256": "<sha256 of sd_xl_turbo_1.0_fp16.safetensors>",
                               "forge_turbo_checkpoint": {"name": "sd_xl_turbo_1.0_fp16.safetensors",
                                                          "url": "https://models.invalid/x",
                                                          "sha256": "<sha256 of sd_xl_turbo_1.0_fp16.safetensors>"}},
     ["forge_turbo_instances[0].checkpoint.sha256"], []),
    ("forge_image_empty", {"forge_turbo_image": ""}, ["forge_turbo_image", "empty"], []),
    ("forge_web_port_twice", instances(web_port=5002), ["forge_turbo_instances[0].web_port", "5002"], []),
    ("forge_hostname_dots", instances(hostname="turbo..myia.io"), ["forge_turbo_instances[0].hostname"], []),
    # clients, secret, stack-wide settings
    ("client_relative_path", {"token_sync_clients": [{"path": "clients/genai.env"}]}, ["token_sync_clients[0].path"], []),
    ("client_unknown_service", {"token_sync_clients": [{"path": "/srv/genai.env", "services": ["qwen3-large"]}]},
     ["token_sync_clients[0].services", "qwen3-large"], []),
    ("secret_short", {"vault_genai_secret": "hunter2"}, ["vault_genai_secret", "too short"], []),
    ("secret_placeholder", {"vault_genai_secret": "CHANGEME-48-random-letters-and-digits"},
     ["vault_genai_secret", "placeholder"], []),
    ("root_relative", {"genai_root_dir": "opt/genai"}, ["genai_root_dir", "'opt/genai'"], []),
    ("root_slash", {"genai_root_dir": "/"}, ["genai_root_dir '/' is a system directory"], []),
    ("bind_name", {"genai_bind_address": "localhost"}, ["genai_bind_address", "'localhost'"], []),
    ("panel_port_twice", {"genai_panel_port": 5001}, ["genai_panel_port", "5001"], []),
    ("project_name_space", {"forge_turbo_project_name": "forge turbo"}, ["forge_turbo_project_name"], []),
    ("gpus_not_list", {"genai_gpus": "0,1,2"}, ["genai_gpus"], []),
    ("placeholders", {"ansible_host": "gpu-host.example.org",
                      "comfyui_qwen_auth_hostname": "<the public name of ComfyUI>"},
     ["placeholders of the example inventory still to fill in: ",
      "ansible_host 'gpu-host.example.org'", "comfyui_qwen_auth_hostname '<the public name of ComfyUI>'"], []),
    ("undefined_reference", {"vllm_qwen3_models": "{{ vllm_models_of_prod }}"},
     ["vllm_qwen3_models: cannot be evaluated", "vllm_models_of_prod"], []),
    # the reverse proxy on the GPU host (nginx, pure-Linux host)
    ("proxy_no_certificate", {}, ["nginx_reverse_proxy_certificates", "no certificate"], ["proxy_hosts"]),
    ("proxy_port_twice", {"nginx_reverse_proxy_https_port": 5000,
                          "nginx_reverse_proxy_default_certificate": {"certificate": "/etc/ssl/a.pem", "key": "/etc/ssl/a.key"}},
     ["nginx_reverse_proxy_https_port", "5000"], ["proxy_hosts"]),
    ("proxy_unknown_publish", {"nginx_reverse_proxy_publish": ["qwen3-large"],
                               "nginx_reverse_proxy_default_certificate": {"certificate": "/etc/ssl/a.pem", "key": "/etc/ssl/a.key"}},
     ["nginx_reverse_proxy_publish[0]", "qwen3-large"], ["proxy_hosts"]),
]  # fmt: skip


def inventory(tmp: Path, hosts: dict[str, tuple[dict[str, Any], list[str]]]) -> Path:
    """A YAML inventory: every host local, in gpu_hosts (and its extra groups), own root dir."""
    groups: dict[str, dict[str, Any]] = {"gpu_hosts": {"hosts": {}}, "proxy_hosts": {"hosts": {}}}
    for name, (variables, extra) in hosts.items():
        groups["gpu_hosts"]["hosts"][name] = {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "genai_root_dir": str(tmp / "roots" / name),
            **variables,
        }
        for group in extra:
            groups[group]["hosts"][name] = {}
    path = tmp / "hosts.yml"
    path.write_text(yaml.safe_dump({"all": {"children": groups}}))
    return path


def run(playbook: str, inv: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
        "ANSIBLE_FORKS": "16",
    }
    cmd = [str(BIN / "ansible-playbook"), "-i", str(ROOT / "inventories/demo"), "-i", str(inv),
           playbook, *args]  # fmt: skip
    return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


@pytest.fixture(scope="module")
def site_check(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any], str]:
    tmp = tmp_path_factory.mktemp("bad-input")
    inv = inventory(tmp, {name: (variables, extra) for name, variables, _, extra in MISTAKES})
    done = run("site.yml", inv, "--check", "--diff", "-l", ",".join(m[0] for m in MISTAKES))
    assert done.returncode != 0
    return tmp, json.loads(done.stdout), done.stdout + done.stderr


def test_the_suite_has_forty_mistakes_or_more() -> None:
    assert len(MISTAKES) >= 40
    assert len({m[0] for m in MISTAKES}) == len(MISTAKES)


def test_the_unchanged_inventory_passes_the_first_play(tmp_path: Path) -> None:
    inv = inventory(tmp_path, {"control": ({}, []), "control_proxy": ({
        "nginx_reverse_proxy_default_certificate": {"certificate": "/etc/ssl/a.pem", "key": "/etc/ssl/a.key"}
    }, ["proxy_hosts"])})  # fmt: skip
    done = run("playbooks/stack_model.yml", inv, "--check", "-l", "control,control_proxy")
    assert done.returncode == 0, done.stdout[-3000:]
    stats = json.loads(done.stdout)["stats"]
    assert stats["control"]["failures"] == 0 and stats["control"]["ok"] >= 2


@pytest.mark.parametrize(
    ("host", "needles"), [(m[0], m[2]) for m in MISTAKES], ids=[m[0] for m in MISTAKES]
)
def test_each_mistake_stops_the_first_play_naming_the_variable(
    site_check: tuple[Path, dict[str, Any], str], host: str, needles: list[str]
) -> None:
    tmp, report, output = site_check
    first = report["plays"][0]
    assert first["play"]["name"] == MODEL_TASK
    results = {t["task"]["name"]: t["hosts"].get(host) for t in first["tasks"]}
    failed = results.get(MODEL_TASK)
    assert failed is not None and failed.get("failed"), f"{host} got past the stack model"
    message = failed["msg"]
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    for marker in (
        "Traceback",
        "CapturedExceptionMarker",
        "UndefinedMarker",
        "can only concatenate",
    ):
        assert marker not in message
    assert message.startswith("The stack is not valid; nothing was changed.")
    for play in report["plays"][1:]:
        ran = [t["task"]["name"] for t in play["tasks"] if host in t["hosts"]]
        assert not ran, f"{host} ran tasks of play {play['play']['name']!r}: {ran}"
    assert report["stats"][host]["failures"] == 1
    assert not (tmp / "roots" / host).exists()
    assert "Traceback" not in output


def test_update_refuses_an_unknown_service_in_the_first_play(tmp_path: Path) -> None:
    inv = inventory(tmp_path, {"upd": ({}, [])})
    done = run("playbooks/update.yml", inv, "--check", "-l", "upd",
               "-e", '{"update_services": ["qwen3-large"]}')  # fmt: skip
    report = json.loads(done.stdout)
    failed = report["plays"][0]["tasks"][1]["hosts"]["upd"]
    assert (
        failed["failed"] and "update_services" in failed["msg"] and "qwen3-large" in failed["msg"]
    )
    assert len(report["plays"]) == 1 or not any(
        "upd" in t["hosts"] for play in report["plays"][1:] for t in play["tasks"]
    )


def test_rotation_refuses_a_bad_inventory_in_the_first_play(tmp_path: Path) -> None:
    inv = inventory(tmp_path, {"rot": (models(0, port=5001), [])})
    done = run("playbooks/rotate_tokens.yml", inv, "--check", "-l", "rot")
    report = json.loads(done.stdout)
    failed = report["plays"][0]["tasks"][1]["hosts"]["rot"]
    assert failed["failed"] and "vllm_qwen3_models[0].port" in failed["msg"]
    assert not any("rot" in t["hosts"] for play in report["plays"][1:] for t in play["tasks"])
