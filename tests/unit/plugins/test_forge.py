"""Forge instances (module_utils/forge.py, filter/forge_env.py) and the role's compose file.

The compose test renders roles/forge_turbo/templates/compose.yaml.j2 with ansible (GPU
reservations on, as on a real GPU host, and off, as in CI) and lets `docker compose config` judge.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.myia.genai_stack.plugins.filter import forge_env as filters
from ansible_collections.myia.genai_stack.plugins.module_utils import forge
from ansible_collections.myia.genai_stack.plugins.module_utils import gpu_plan as engine

ROOT = Path(__file__).resolve().parents[3]
ROLE = ROOT / "roles" / "forge_turbo"
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
SHA = "516f2ffacfc71759ab41fd8dde821f4a33ded693d2d625a1edc5fa0c30f17552"
ROLE_DEFAULTS = {
    "image": "ghcr.io/ai-dock/stable-diffusion-webui-forge:latest-cuda",
    "root_dir": "/opt/genai/forge",
    "turbo_ui_settings": DEFAULTS["forge_turbo_ui_settings"],
    "turbo_ui_config": DEFAULTS["forge_turbo_ui_config"],
}
CHECKPOINT = {
    "name": "sd_xl_turbo_1.0_fp16.safetensors",
    "url": "https://huggingface.co/stabilityai/sdxl-turbo/resolve/main/sd_xl_turbo_1.0_fp16.safetensors",
    "sha256": SHA,
}
USER, PASSWORD, TOKEN = "forge", "p4ssword-0123456789", "t0ken-0123456789abcdef"


def user_stack() -> list[dict[str, Any]]:
    """The user's two instances: turbo on GPU 1 (17861), the main Forge on GPU 0 (36525)."""
    return [
        {
            "name": "turbo",
            "port": 17861,
            "gpus": [1],
            "checkpoint": CHECKPOINT,
            "hostname": "turbo.stable-diffusion-webui-forge.myia.io",
        },
        {
            "name": "main",
            "port": 36525,
            "gpus": [0],
            "memory_share": 0.5,
            "sdxl_turbo": False,
            "settings_file": "config.json",
            "ui_config_file": "ui-config.json",
            "hostname": "stable-diffusion-webui-forge.myia.io",
        },
    ]


def checked(instances: list[dict[str, Any]] | None = None, **kw: Any) -> list[dict[str, Any]]:
    return forge.normalize(instances or user_stack(), ROLE_DEFAULTS, **kw)


def problems_of(instances: Any, **kw: Any) -> str:
    with pytest.raises(forge.ForgeSpecError) as err:
        forge.normalize(instances, ROLE_DEFAULTS, **kw)
    return str(err.value)


# ---------------------------------------------------------------------------- normalize


def test_user_stack_is_filled_in() -> None:
    turbo, main = checked()
    assert turbo["image"] == ROLE_DEFAULTS["image"] and turbo["memory_share"] == 0.3
    assert turbo["workspace"] == "/opt/genai/forge/turbo/workspace"
    assert turbo["checkpoint_dir"] == (
        "/opt/genai/forge/turbo/workspace/storage/stable_diffusion/models/ckpt"
    )
    assert turbo["settings_path"] == "/opt/genai/forge/turbo/workspace/config-turbo.json"
    assert turbo["ui_settings"]["sd_model_checkpoint"] == CHECKPOINT["name"]
    assert turbo["ui_settings"]["forge_preset"] == "xl" and turbo["ui_settings"]["xl_t2i_cfg"] == 1
    assert turbo["ui_config"]["txt2img/Sampling steps/value"] == 1
    assert main["ui_settings"] == {} and main["ui_config"] == {}
    assert turbo["gpu_wish"] == {
        "service": "turbo",
        "source": "forge_turbo_instances[0]",
        "gpus": [1],
        "memory_share": 0.3,
        "port": 17861,
        "bind_address": "127.0.0.1",
    }
    assert [p["path"] for p in turbo["ui_files"]] == [
        "/opt/genai/forge/turbo/workspace/config-turbo.json",
        "/opt/genai/forge/turbo/workspace/ui-config-turbo.json",
    ]
    assert main["ui_files"] == []  # nothing of the role's: Forge keeps its own files
    assert turbo["dirs"] == [turbo["workspace"], turbo["checkpoint_dir"]]


def test_settings_file_may_be_an_existing_one_deeper_in_the_workspace() -> None:
    stack = user_stack()
    stack[1].update(
        settings_file="stable-diffusion-webui-forge/config.json",
        ui_settings={"samples_format": "webp"},
    )
    main = checked(stack)[1]
    assert main["ui_files"] == [
        {
            "instance": "main",
            "path": "/opt/genai/forge/main/workspace/stable-diffusion-webui-forge/config.json",
            "data": {"samples_format": "webp"},
        }
    ]
    assert main["dirs"][-1] == "/opt/genai/forge/main/workspace/stable-diffusion-webui-forge"
    args = forge.forge_args(main, USER, PASSWORD).split()
    assert args[1] == "/workspace/stable-diffusion-webui-forge/config.json"


def test_the_gpu_device_id_is_the_index_inside_the_container() -> None:
    """Host GPU 1 is reserved for turbo: the container sees one GPU, CUDA device 0."""
    turbo, main = checked()
    assert turbo["gpus"] == [1] and turbo["gpu_device_id"] == 0
    assert main["gpus"] == [0] and main["gpu_device_id"] == 0


def test_image_tag_override_and_instance_settings() -> None:
    (one,) = checked(
        [
            {
                "name": "x",
                "port": 1,
                "gpus": [0],
                "image_tag": "v2-cuda-12.1.1-base-22.04",
                "ui_settings": {"xl_t2i_cfg": 1.5},
                "workspace": "/srv/forge/",
            }
        ]
    )
    assert one["image"] == "ghcr.io/ai-dock/stable-diffusion-webui-forge:v2-cuda-12.1.1-base-22.04"
    assert one["ui_settings"]["xl_t2i_cfg"] == 1.5 and one["ui_settings"]["forge_preset"] == "xl"
    assert one["workspace"] == "/srv/forge"


def test_settings_hash_follows_the_managed_keys_only() -> None:
    base = checked()[0]["settings_hash"]
    changed = user_stack()
    changed[0]["ui_settings"] = {"xl_t2i_cfg": 2.0}
    assert checked(changed)[0]["settings_hash"] != base
    changed = user_stack()
    changed[0]["args_extra"] = ["--no-hashing"]
    assert checked(changed)[0]["settings_hash"] == base


def test_caddy_runs_only_with_a_web_port() -> None:
    stack = user_stack()
    stack[0]["web_port"] = 17862
    turbo, main = checked(stack)
    assert "caddy" not in turbo["no_autostart"] and "sshd" in turbo["no_autostart"]
    assert "caddy" in main["no_autostart"] and "quicktunnel" in main["no_autostart"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"gpus": [0, 1]}, "forge_turbo_instances[0].gpus must list exactly one GPU index"),
        ({"gpus": []}, "missing forge_turbo_instances[0].gpus"),
        ({"memory_share": 1.5}, "forge_turbo_instances[0].memory_share 1.5 must be in (0, 1]"),
        ({"port": 36525}, "forge_turbo_instances[1].port 36525 is already used by forge_turbo_instances[0].port"),
        ({"web_port": 36525}, "forge_turbo_instances[1].port 36525 is already used by forge_turbo_instances[0].web_port"),
        ({"name": "main"}, "duplicate name, also forge_turbo_instances[0].name"),
        ({"name": "Turbo!"}, "forge_turbo_instances[0].name must be lower-case"),
        ({"args_extra": ["--bogus"]}, "args_extra[0] '--bogus' is not a flag of Forge 2.0.1v1.10.1"),
        ({"args_extra": ["--api-auth", "a:b"]}, "args_extra[0] '--api-auth' is set by the role"),
        ({"args_extra": ["--port=1"]}, "'--port' is set by the role"),
        ({"args_extra": ["--theme dark"]}, "may not hold spaces"),
        ({"checkpoint": {"name": "../x.safetensors"}}, "checkpoint.name '../x.safetensors' must be"),
        ({"checkpoint": {"name": "a.safetensors", "url": "ftp://x/a"}}, "must be an http(s):// or file:// URL"),
        ({"checkpoint": {"name": "a.safetensors", "sha256": "abc"}}, "sha256 must be 64 hexadecimal digits"),
        ({"colour": "red"}, "unknown key(s) colour"),
        ({"env": {"FORGE_ARGS": "--x"}}, "env.FORGE_ARGS is not allowed"),
        ({"image_tag": "bad tag"}, "image_tag 'bad tag' is not a valid image tag"),
        ({"settings_file": "../config.json"}, "settings_file '../config.json' must be a .json file"),
        ({"ui_config_file": "/etc/x.json"}, "ui_config_file '/etc/x.json' must be a .json file"),
        ({"bind_address": "0.0.0.0 --share"}, "bind_address '0.0.0.0 --share' is not an IP address"),
    ],
)  # fmt: skip
def test_bad_instances_name_the_variable(change: dict[str, Any], message: str) -> None:
    stack = user_stack()
    stack[0].update(change)
    assert message in problems_of(stack)


def test_every_problem_is_reported_at_once() -> None:
    stack = user_stack()
    stack[0].update(gpus=[0, 1], port=36525)
    stack[1].update(memory_share=0)
    text = problems_of(stack)
    assert text.count("\n- ") == 3


def test_a_url_needs_a_sha256_unless_nothing_is_downloaded() -> None:
    stack = user_stack()
    stack[0]["checkpoint"] = {**CHECKPOINT, "sha256": ""}
    assert "forge_turbo_instances[0].checkpoint.sha256 is required" in problems_of(stack)
    assert checked(stack, require_sha256=False)[0]["checkpoint"]["sha256"] is None


def test_empty_or_not_a_list() -> None:
    assert "must be a non-empty list" in problems_of([])
    assert "must be a mapping" in problems_of(["turbo"])


def test_role_default_instance_wants_the_checkpoint_sha256() -> None:
    """The default turbo instance downloads SDXL Turbo: without its sha256 the role refuses."""
    (instance,) = DEFAULTS["forge_turbo_instances"]
    instance = {**instance, "checkpoint": {**CHECKPOINT, "sha256": ""}}
    assert "checkpoint.sha256 is required" in problems_of([instance])
    (turbo,) = checked([{**instance, "checkpoint": CHECKPOINT}])
    assert (turbo["port"], turbo["gpus"], turbo["gpu_device_id"]) == (17861, [1], 0)


def test_gpu_plan_accepts_the_user_stack_and_refuses_an_overfull_gpu() -> None:
    wishes = [i["gpu_wish"] for i in checked()]
    plan = engine.plan(wishes, [0, 1, 2])
    assert plan["services"]["turbo"]["gpus"] == [1] and plan["waves"] == [["turbo", "main"]]
    stack = user_stack()
    stack[1].update(gpus=[1], memory_share=0.8)
    with pytest.raises(engine.GpuPlanError, match=r"GPU 1: memory shares sum to 1.1"):
        engine.plan([i["gpu_wish"] for i in checked(stack)], [0, 1, 2])
    with pytest.raises(engine.GpuPlanError, match="GPU 1 does not exist"):
        engine.plan(wishes, [0])


# ---------------------------------------------------------------------------- credentials


@pytest.mark.parametrize(
    ("user", "password", "token", "message"),
    [
        ("forge", "short", TOKEN, "forge_turbo_api_password must be set (from the vault) to at least 16"),
        ("forge", PASSWORD, "", "forge_turbo_web_token must be set"),
        ("for:ge", PASSWORD, TOKEN, "forge_turbo_api_user must be set to letters"),
        ("", PASSWORD, TOKEN, "forge_turbo_api_user must be set"),
        ("forge", "pass word 0123456789", TOKEN, "forge_turbo_api_password may only hold"),
        ("forge", "password:0123456789", TOKEN, "forge_turbo_api_password may only hold"),
        ("forge", "password,0123456789", TOKEN, "forge_turbo_api_password may only hold"),
        ("forge", "password___0123456789", TOKEN, "forge_turbo_api_password may only hold"),
        ("forge", PASSWORD, "token*0123456789abc", "forge_turbo_web_token may only hold"),
        ("forge", PASSWORD, PASSWORD, "forge_turbo_web_token must differ"),
    ],
)  # fmt: skip
def test_credential_problems_name_the_variable_never_the_value(
    user: str, password: str, token: str, message: str
) -> None:
    problems = filters.forge_credential_problems(
        {"user": user, "password": password, "token": token}
    )
    text = "; ".join(problems)
    assert message in text
    for secret in (password, token):
        if len(secret) > 3:
            assert secret not in text


def test_good_credentials_pass() -> None:
    creds = {"user": "forge", "password": "Ab0.-_~+/=@" + "x" * 8, "token": TOKEN}
    assert filters.forge_credential_problems(creds) == []


# ---------------------------------------------------------------------------- rendering


def test_forge_args_of_the_turbo_instance() -> None:
    turbo = checked()[0]
    assert forge.forge_args(turbo, USER, PASSWORD) == (
        "--ui-settings-file /workspace/config-turbo.json "
        "--ui-config-file /workspace/ui-config-turbo.json "
        "--ckpt-dir /workspace/storage/stable_diffusion/models/ckpt "
        "--api --api-log --listen --server-name 127.0.0.1 --gpu-device-id 0 --cuda-malloc "
        f"--xformers --api-auth {USER}:{PASSWORD} --gradio-auth-path /run/secrets/gradio-auth"
    )


def test_the_web_ui_credential_is_a_file_not_an_argument() -> None:
    """--gradio-auth-path, so `ps` does not show the UI credential (--api-auth has no file)."""
    stack = user_stack()
    stack[1].update(gradio_auth=False)
    instances = checked(stack)
    assert forge.secret_files(instances, USER, PASSWORD) == {
        f"{instances[0]['name']}.gradio-auth": f"{USER}:{PASSWORD}\n"
    }
    assert "--gradio-auth " not in forge.forge_args(instances[0], USER, PASSWORD) + " "


def test_forge_args_without_gradio_auth_and_with_extras() -> None:
    stack = user_stack()
    stack[1].update(gradio_auth=False, args_extra=["--no-half-vae", "--theme", "dark"])
    args = forge.forge_args(checked(stack)[1], USER, PASSWORD).split()
    assert "--gradio-auth-path" not in args and args[-3:] == ["--no-half-vae", "--theme", "dark"]
    assert args[args.index("--api-auth") + 1] == f"{USER}:{PASSWORD}"


def test_env_file_holds_every_secret_and_the_environment_none() -> None:
    turbo = checked()[0]
    env = filters.forge_env(turbo, USER, PASSWORD, TOKEN)
    assert set(env) == {"FORGE_ARGS", "WEB_USER", "WEB_PASSWORD", "WEB_TOKEN"}
    assert (env["WEB_USER"], env["WEB_PASSWORD"], env["WEB_TOKEN"]) == (USER, PASSWORD, TOKEN)
    public = filters.forge_environment(turbo, True)
    assert not any(PASSWORD in v or TOKEN in v for v in public.values())
    assert public["FORGE_PORT_LOCAL"] == "17861" and public["FORGE_PORT_HOST"] == "17861"
    assert public["CF_QUICK_TUNNELS"] == "false" and public["AUTO_UPDATE"] == "false"
    assert "caddy" in public["SUPERVISOR_NO_AUTOSTART"].split(",")
    assert "NVIDIA_VISIBLE_DEVICES" not in public
    assert filters.forge_environment(turbo, False)["NVIDIA_VISIBLE_DEVICES"] == "1"


def test_env_file_survives_dotenv_quoting() -> None:
    from ansible_collections.myia.genai_stack.plugins.module_utils import dotenv

    text = dotenv.render(filters.forge_env(checked()[0], USER, PASSWORD, TOKEN))
    assert "FORGE_ARGS='--ui-settings-file /workspace/config-turbo.json" in text


def test_endpoints_smoke_and_refusals() -> None:
    checks = filters.forge_endpoints(checked(), USER, PASSWORD, TOKEN, {"width": 256})
    by_name = {c["name"]: c for c in checks}
    smoke = by_name["turbo-txt2img"]
    assert smoke["url"] == "http://127.0.0.1:17861/sdapi/v1/txt2img" and smoke["method"] == "POST"
    assert smoke["body"]["steps"] == 1 and smoke["body"]["width"] == 256
    assert smoke["json_value"] == 256 and smoke["auth"]["type"] == "basic"
    assert by_name["turbo-no-credentials"]["json_value"] == "Not authenticated"
    assert by_name["main-wrong-credentials"]["json_value"] == "Incorrect username or password"
    assert by_name["turbo-checkpoint"]["json_contains"]["value"] == {
        "model_name": "sd_xl_turbo_1.0_fp16"
    }
    assert "main-checkpoint" not in by_name and not any("web" in n for n in by_name)
    # main has no checkpoint of the role's: no txt2img (it would fail without a model), the API
    # proven with the credentials instead
    assert "main-txt2img" not in by_name
    assert by_name["main-api"] == {
        "name": "main-api",
        "url": "http://127.0.0.1:36525/sdapi/v1/sd-models",
        "auth": {"type": "basic", "username": USER, "password": PASSWORD},
    }


def test_endpoints_through_caddy_with_a_web_port() -> None:
    stack = user_stack()
    stack[0]["web_port"] = 17862
    checks = {c["name"]: c for c in filters.forge_endpoints(checked(stack), USER, PASSWORD, TOKEN)}
    web = checks["turbo-web-token"]
    assert web["url"] == "http://127.0.0.1:17862/sdapi/v1/options"
    assert web["auth"] == {"type": "query", "param": "token", "value": TOKEN}
    assert (
        web["headers"]["Authorization"]
        == "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
    )
    assert checks["turbo-web-no-token"]["status"] == [302]


# ---------------------------------------------------------------------------- settings merge


def b64(data: Any) -> str:
    text = data if isinstance(data, str) else json.dumps(data)
    return base64.b64encode(text.encode()).decode()


def test_merge_writes_a_missing_file() -> None:
    result = filters.forge_settings_merge(None, {"xl_t2i_cfg": 1.0})
    assert result["write"] and json.loads(result["content"]) == {"xl_t2i_cfg": 1.0}
    assert result["content"].endswith("}\n") and '\n    "xl_t2i_cfg"' in result["content"]


def test_merge_keeps_what_forge_saved_and_leaves_a_matching_file_alone() -> None:
    saved = {"samples_format": "png", "xl_t2i_cfg": 1, "forge_inference_memory": 2048}
    result = filters.forge_settings_merge(b64(saved), {"xl_t2i_cfg": 1.0})
    assert not result["write"] and result["reset"] == []


def test_merge_resets_a_drifted_key() -> None:
    saved = {"xl_t2i_cfg": 7.0, "other": 1}
    result = filters.forge_settings_merge(b64(saved), {"xl_t2i_cfg": 1.0, "forge_preset": "xl"})
    assert result["write"] and result["reset"] == ["xl_t2i_cfg"]
    assert json.loads(result["content"]) == {"xl_t2i_cfg": 1.0, "other": 1, "forge_preset": "xl"}


@pytest.mark.parametrize("text", ["{broken", "[1, 2]", "\xff"])
def test_merge_replaces_a_broken_file(text: str) -> None:
    result = filters.forge_settings_merge(b64(text), {"a": 1})
    assert result["write"] and result["broken"] and json.loads(result["content"]) == {"a": 1}


def test_filter_errors_are_ansible_errors() -> None:
    from ansible.errors import AnsibleFilterError

    with pytest.raises(forge.ForgeSpecError, match="invalid Forge instances"):
        forge.normalize([{"name": "x"}])
    with pytest.raises(KeyError):
        forge.forge_args({"name": "x"}, USER, PASSWORD)
    with pytest.raises(AnsibleFilterError, match="not a checked instance"):
        filters.forge_env({"name": "x"}, USER, PASSWORD, TOKEN)


# ---------------------------------------------------------------------------- compose file


def render(
    tmp_path: Path, reservation: bool, instances: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    instances = instances or user_stack()
    checked_instances = forge.normalize(instances, {"root_dir": str(tmp_path)})
    plan = engine.plan([i["gpu_wish"] for i in checked_instances], [0, 1, 2])
    playbook = [
        {
            "name": "Render the forge_turbo compose file",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {
                "forge_turbo_gpu_reservation": reservation,
                "forge_turbo_project_name": "forge",
                "forge_turbo_root_dir": str(tmp_path),
                "forge_turbo_shm_size": "2gb",
                "forge_turbo_healthcheck_interval": 10,
                # what the stack model gives the role (genai_stack.specs.forge and its plan)
                "forge_turbo_checked": checked_instances,
                "forge_turbo_plan": plan,
            },
            "tasks": [
                {
                    "ansible.builtin.template": {
                        "src": str(ROLE / "templates" / "compose.yaml.j2"),
                        "dest": str(tmp_path / "compose.yaml"),
                        "mode": "0644",
                    }
                },
            ],
        }
    ]
    (tmp_path / "play.yml").write_text(yaml.safe_dump(playbook))
    for instance in instances:
        (tmp_path / f"{instance['name']}.env").write_text(f"FORGE_ARGS='--api-auth {USER}:x'\n")
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


needs_compose = pytest.mark.skipif(shutil.which("docker") is None, reason="no docker CLI")


@needs_compose
def test_compose_with_gpu_reservations(tmp_path: Path) -> None:
    config = render(tmp_path, reservation=True)
    turbo, main = config["services"]["turbo"], config["services"]["main"]
    (device,) = turbo["deploy"]["resources"]["reservations"]["devices"]
    assert device["driver"] == "nvidia" and device["device_ids"] == ["1"]
    assert device["capabilities"] == ["gpu"]
    assert main["deploy"]["resources"]["reservations"]["devices"][0]["device_ids"] == ["0"]
    assert "NVIDIA_VISIBLE_DEVICES" not in turbo["environment"]
    assert turbo["network_mode"] == "host" and turbo["container_name"] == "forge-turbo"
    assert turbo["environment"]["FORGE_PORT_LOCAL"] == "17861"
    assert main["environment"]["FORGE_PORT_LOCAL"] == "36525"
    assert turbo["volumes"][0]["source"] == f"{tmp_path}/turbo/workspace"
    assert turbo["volumes"][0]["target"] == "/workspace"
    assert "17861/internal/ping" in " ".join(turbo["healthcheck"]["test"])
    assert turbo["labels"]["io.myia.genai.hostname"] == "turbo.stable-diffusion-webui-forge.myia.io"
    assert "depends_on" not in turbo and "depends_on" not in main
    text = (tmp_path / "compose.yaml").read_text()
    assert "--api-auth" not in text and "FORGE_ARGS" not in text.split("environment:", 1)[1]


@needs_compose
def test_compose_healthcheck_reaches_the_instance_where_it_binds(tmp_path: Path) -> None:
    turbo, main = user_stack()
    config = render(
        tmp_path, reservation=False,
        instances=[{**turbo, "bind_address": "0.0.0.0"}, {**main, "bind_address": "::1"}],
    )  # fmt: skip
    tests = {name: s["healthcheck"]["test"][-1] for name, s in config["services"].items()}
    assert "urlopen('http://127.0.0.1:17861/internal/ping'" in tests["turbo"]
    assert "urlopen('http://[::1]:36525/internal/ping'" in tests["main"]


@needs_compose
def test_compose_without_gpu_reservations(tmp_path: Path) -> None:
    config = render(tmp_path, reservation=False)
    for name, gpu in (("turbo", "1"), ("main", "0")):
        service = config["services"][name]
        assert "deploy" not in service
        assert service["environment"]["NVIDIA_VISIBLE_DEVICES"] == gpu


# ---------------------------------------------------------------------------- exact problems

FORGE = "Forge 2.0.1v1.10.1"
LABEL = "instance 'x' (forge_turbo_instances[0]): forge_turbo_instances[0]"
WHERE = "forge_turbo_instances[0]"
GLOB = (
    "the image word-splits and glob-expands FORGE_ARGS, so arguments may not hold spaces, "
    "quotes, $, backslashes or glob characters"
)


def problem_list(change: dict[str, Any], defaults: dict[str, Any] | None = None) -> list[str]:
    """The problems of one instance ``x`` (port 7860, GPU 0) with ``change`` applied."""
    with pytest.raises(forge.ForgeSpecError) as err:
        forge.normalize([{"name": "x", "port": 7860, "gpus": [0], **change}], defaults)
    assert str(err.value) == "invalid Forge instances:\n- " + "\n- ".join(err.value.problems)
    return err.value.problems


def one(change: dict[str, Any], defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    (instance,) = forge.normalize([{"name": "x", "port": 7860, "gpus": [0], **change}], defaults)
    return instance


@pytest.mark.parametrize(
    ("change", "problems"),
    [
        ({"port": 0}, [f"{LABEL}.port '0' is not a port number (1-65535)"]),
        ({"port": 65536}, [f"{LABEL}.port '65536' is not a port number (1-65535)"]),
        ({"port": True}, [f"{LABEL}.port 'True' is not a port number (1-65535)"]),
        ({"port": "080"}, [f"{LABEL}.port '080' is not a port number (1-65535)"]),
        (
            {"port": "x", "web_port": "y"},
            [
                f"{LABEL}.port 'x' is not a port number",
                f"{LABEL}.web_port 'y' is not a port number",
            ],
        ),
        ({"checkpoint": "abc"}, [f"{WHERE}.checkpoint must be a mapping with name, url, sha256"]),
        (
            {"checkpoint": {"b": 1, "a": 2, "name": "m.ckpt"}},
            [f"{WHERE}.checkpoint: unknown key(s) a, b"],
        ),
        (
            {"checkpoint": {"url": "https://x/y"}},
            [
                f"{WHERE}.checkpoint.name '' must be a file name ending in .safetensors, .ckpt "
                "or .gguf",
                f"{WHERE}.checkpoint.sha256 is required with {WHERE}.checkpoint.url: the download "
                "is verified against it (the sha256 is on the file's page of the model hub)",
            ],
        ),
        ({"args_extra": "--api"}, [f"{LABEL}.args_extra must be a list of strings"]),
        ({"args_extra": [{"a": 1}]}, [f"{LABEL}.args_extra must be a list of strings"]),
        (
            {"args_extra": ["dark"]},
            [
                f"{LABEL}.args_extra[0] 'dark' is a stray word: no flag before it takes a value, "
                f"so {FORGE} would refuse it (unrecognized arguments)"
            ],
        ),
        ({"args_extra": ["bad arg", "--bogus"]}, [f"{LABEL}.args_extra[0] 'bad arg': {GLOB}"]),
        (
            {"args_extra": ["--bogus"]},
            [f"{LABEL}.args_extra[0] '--bogus' is not a flag of {FORGE}"],
        ),
        (
            {"gpus": ["a"]},
            [f"{LABEL}.gpus must list exactly one GPU index (Forge runs on one GPU), got ['a']"],
        ),
        (
            {"gpus": [True]},
            [f"{LABEL}.gpus must list exactly one GPU index (Forge runs on one GPU), got [True]"],
        ),
        ({"memory_share": "abc"}, [f"{LABEL}.memory_share 'abc' must be in (0, 1]"]),
        ({"ui_settings": "x"}, [f"{LABEL}.ui_settings must be a mapping"]),
        ({"ui_config": ["x"]}, [f"{LABEL}.ui_config must be a mapping"]),
        ({"env": "x"}, [f"{LABEL}.env must be a mapping"]),
        (
            {"env": {"1BAD": 1, "BAD-KEY": 2, "WEB_TOKEN": 3}},
            [
                f"{LABEL}.env.1BAD is not allowed (set by the role or invalid)",
                f"{LABEL}.env.BAD-KEY is not allowed (set by the role or invalid)",
                f"{LABEL}.env.WEB_TOKEN is not allowed (set by the role or invalid)",
            ],
        ),
        (
            {"load_timeout": "abc"},
            [f"{LABEL}.load_timeout 'abc' must be a positive number of seconds"],
        ),
        (
            {"hostname": "bad host"},
            [f"{LABEL}.hostname 'bad host' is not a DNS name (e.g. qwen.example.org)"],
        ),
        (
            {"settings_file": "a.json", "ui_config_file": "a.json"},
            [f"{LABEL}.settings_file and ui_config_file must differ"],
        ),
        (
            {"settings_file": "x.txt"},
            [
                f"{LABEL}.settings_file 'x.txt' must be a .json file in the workspace "
                "(a relative path without '..')"
            ],
        ),
        (
            {"name": "Bad!"},
            [
                f"instance 'Bad!' ({WHERE}): {WHERE}.name must be lower-case letters, digits, "
                "'-' or '_' (it names the compose service and files)"
            ],
        ),
    ],
)
def test_each_problem_is_reported_in_full(change: dict[str, Any], problems: list[str]) -> None:
    assert problem_list(change) == problems


def test_the_highest_port_is_a_port() -> None:
    assert one({"port": 65535})["port"] == 65535


def test_an_empty_list_is_refused_in_full() -> None:
    with pytest.raises(forge.ForgeSpecError) as err:
        forge.normalize([], None, variable="my_instances")
    assert str(err.value) == (
        "invalid Forge instances:\n- my_instances must be a non-empty list of instances"
    )


def test_the_default_image_and_root_dir_apply_without_role_defaults() -> None:
    instance = one({})
    assert instance["image"] == "ghcr.io/ai-dock/stable-diffusion-webui-forge:latest-cuda"
    assert instance["workspace"] == "/opt/genai/forge/x/workspace"


def test_role_defaults_fill_instance_keys_only() -> None:
    instance = one({}, {"root_dir": "/srv/BOX/", "memory_share": 0.4, "load_timeout": None})
    assert instance["workspace"] == "/srv/BOX/x/workspace"
    assert instance["memory_share"] == 0.4 and instance["load_timeout"] == 900
    assert "root_dir" not in instance and "image_tag" in instance


@pytest.mark.parametrize(
    ("image", "tag", "expected"),
    [
        ("registry.local:5000/forge:latest", "v2", "registry.local:5000/forge:v2"),
        ("registry.local:5000/forge", "v2", "registry.local:5000/forge:v2"),
        ("registry.local:5000/forge", "", "registry.local:5000/forge"),
        ("registry.local:5000/forge:latest", None, "registry.local:5000/forge:latest"),
    ],
)
def test_image_tag_replaces_only_the_tag(image: str, tag: str | None, expected: str) -> None:
    assert one({"image_tag": tag}, {"image": image})["image"] == expected


def test_a_colon_inside_the_image_path_is_not_taken_for_a_tag() -> None:
    problems = problem_list({"image_tag": "v2"}, {"image": "ghcr.io/ns:x/img"})
    assert problems == [
        f"{LABEL} image (forge_turbo_image) 'ghcr.io/ns:x/img:v2' is not a valid image reference "
        "(repository[:tag][@digest])"
    ]


def test_values_are_converted_to_their_types() -> None:
    instance = one(
        {
            "port": "7860",
            "web_port": "7861",
            "gpus": ["1"],
            "memory_share": "1.0",
            "load_timeout": "600",
            "sdxl_turbo": 1,
            "gradio_auth": 0,
            "args_extra": ["--theme", 5, "--theme=dark=x", "--no-half"],
            "env": {"Good_key1": "x", "lower": 2},
        }
    )
    assert (instance["port"], instance["web_port"], instance["gpus"]) == (7860, 7861, [1])
    assert instance["memory_share"] == 1.0 and instance["load_timeout"] == 600
    assert instance["sdxl_turbo"] is True and instance["gradio_auth"] is False
    assert instance["args_extra"] == ["--theme", "5", "--theme=dark=x", "--no-half"]
    assert instance["env"] == {"Good_key1": "x", "lower": 2}


def test_empty_optional_values_mean_unset() -> None:
    instance = one({"web_port": "", "image_tag": "", "checkpoint": ""})
    assert instance["checkpoint"] is None and "caddy" in instance["no_autostart"]
    assert instance["image"] == "ghcr.io/ai-dock/stable-diffusion-webui-forge:latest-cuda"


def test_each_flag_takes_exactly_its_own_number_of_values() -> None:
    """--use-cpu takes one or more values, --styles-file exactly one (repeatable), a switch none:
    a word no flag takes is refused, as Forge's parse_args refuses it."""
    assert one({"args_extra": ["--use-cpu", "a", "b", "--styles-file", "s.csv"]})
    assert problem_list({"args_extra": ["--xformers", "stray"]}) == [
        f"{LABEL}.args_extra[1] 'stray' is a stray word: --xformers takes no value, so {FORGE} "
        "would refuse it (unrecognized arguments)"
    ]
    assert problem_list({"args_extra": ["--styles-file", "a.csv", "b.csv"]}) == [
        f"{LABEL}.args_extra[2] 'b.csv' is a stray word: --styles-file takes one value, so "
        f"{FORGE} would refuse it (unrecognized arguments)"
    ]
    assert problem_list({"args_extra": ["--styles-file"]}) == [
        f"{LABEL}.args_extra[0] '--styles-file' needs one value ({FORGE})"
    ]


@pytest.mark.parametrize(
    "args",
    [
        ["--skip-google-blockly"],
        ["--controlnet-loglevel", "DEBUG"],
        ["--controlnet-tracemalloc"],
        ["--lyco-dir-backcompat", "/workspace/lyco"],
        ["--scunet-models-path", "/workspace/scunet"],
        ["--swinir-models-path", "/workspace/swinir"],
    ],
)
def test_real_flags_of_the_builtin_extensions_are_accepted(args: list[str]) -> None:
    assert one({"args_extra": args})["args_extra"] == args


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--api-a", "u:p"], "'--api-a' abbreviates --api-auth ({F} expands abbreviations), "
         "which is set by the role from the derived Forge credential; remove it"),
        (["--server", "0.0.0.0"], "'--server' abbreviates --server-name ({F} expands "
         "abbreviations), which is set by the role from the instance's bind_address; remove it"),
        (["--sha"], "'--sha' abbreviates --share ({F} expands abbreviations), which is refused: "
         "it would publish the instance through a gradio.live tunnel"),
        (["--xform"], "'--xform' is an abbreviation ({F} would read --xformers or "
         "--xformers-flash-attention); write the flag in full"),
        (["--controlnet-loglevel", "LOUD"], "'LOUD' is not a value of --controlnet-loglevel in "
         "{F}; use one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        (["--xformers=yes"], "'--xformers' takes no value ({F}); remove '=yes'"),
    ],
)  # fmt: skip
def test_managed_abbreviated_and_wrong_flags_are_refused(args: list[str], problem: str) -> None:
    at = 1 if problem.startswith("'LOUD'") else 0
    assert problem_list({"args_extra": args}) == [
        f"{LABEL}.args_extra[{at}] " + problem.replace("{F}", FORGE)
    ]


def test_checkpoint_is_normalized() -> None:
    checkpoint = one({"checkpoint": {"name": "m.ckpt", "sha256": SHA.upper()}})["checkpoint"]
    assert checkpoint == {"name": "m.ckpt", "url": None, "sha256": SHA}


def test_settings_hash_ignores_key_order_and_reads_any_yaml_value() -> None:
    import datetime

    first = one({"ui_settings": {"a": 1, "b": 2}})["settings_hash"]
    assert one({"ui_settings": {"b": 2, "a": 1}})["settings_hash"] == first
    assert len(first) == 16 and int(first, 16) >= 0
    dated = one({"ui_settings": {"when": datetime.date(2024, 1, 1)}})["settings_hash"]
    assert len(dated) == 16 and dated != first


def test_the_workspace_loses_only_its_trailing_slashes() -> None:
    assert one({"workspace": "/data/BOX/"})["workspace"] == "/data/BOX"


@pytest.mark.parametrize(
    ("user", "password", "token", "problems"),
    [
        ("forge", "p" * 16, "t" * 16, []),
        ("forge", "p" * 15, "t" * 16, ["forge_turbo_api_password must be set (from the vault) to at least 16 characters"]),
        ("forge", "p" * 16, "p" * 16, ["forge_turbo_web_token must differ from forge_turbo_api_password"]),
        (
            "for:ge", "p" * 16, "bad*token-xxxxxxxxxxx",
            [
                "forge_turbo_api_user must be set to letters, digits, '.', '_' or '-' (Forge splits --api-auth on ':' and ',')",
                "forge_turbo_web_token may only hold letters, digits and . _ ~ + / = @ - (the image word-splits FORGE_ARGS, Forge splits --api-auth on ':' and ',', ai-dock turns '___' into a space)",
            ],
        ),
    ],
)  # fmt: skip
def test_credential_problems_in_full(
    user: str, password: str, token: str, problems: list[str]
) -> None:
    assert forge.credential_problems(user, password, token) == problems


# ---------------------------------------------------------------------------- exact rendering


def test_env_file_forge_args_carry_the_credentials() -> None:
    turbo = checked()[0]
    env = forge.env_file(turbo, USER, PASSWORD, TOKEN)
    assert env["FORGE_ARGS"] == forge.forge_args(turbo, USER, PASSWORD)


def test_environment_in_full() -> None:
    instance = {
        "port": 7860,
        "web_port": None,
        "gpus": [2, 3],
        "no_autostart": ["caddy", "sshd"],
        "env": {"EXTRA": 5},
    }
    assert forge.environment(instance, False) == {
        "AUTO_UPDATE": "false",
        "CF_QUICK_TUNNELS": "false",
        "DIRECT_ADDRESS": "127.0.0.1",
        "EXTRA": "5",
        "FORGE_PORT_HOST": "7860",
        "FORGE_PORT_LOCAL": "7860",
        "NVIDIA_VISIBLE_DEVICES": "2,3",
        "SUPERVISOR_NO_AUTOSTART": "caddy,sshd",
        "WEB_ENABLE_AUTH": "true",
        "WORKSPACE": "/workspace",
    }


def test_smoke_request_defaults_and_overrides() -> None:
    assert forge.smoke_request() == {
        "prompt": "a lighthouse on a cliff at dawn",
        "steps": 1,
        "cfg_scale": 1.0,
        "width": 512,
        "height": 512,
        "sampler_name": "Euler a",
        "seed": 1,
        "batch_size": 1,
    }
    assert forge.smoke_request({"seed": 7})["seed"] == 7


def test_endpoints_in_full() -> None:
    stack = user_stack()
    stack[0]["web_port"] = 17862
    basic = {"type": "basic", "username": USER, "password": PASSWORD}
    wrong = {"type": "basic", "username": USER, "password": PASSWORD + "-wrong"}
    auth_header = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    def refusals(name: str, base: str) -> list[dict[str, Any]]:
        return [
            {
                "name": f"{name}-no-credentials",
                "url": f"{base}/sdapi/v1/sd-models",
                "status": [401],
                "json_path": "detail",
                "json_value": "Not authenticated",
            },
            {
                "name": f"{name}-wrong-credentials",
                "url": f"{base}/sdapi/v1/sd-models",
                "status": [401],
                "auth": wrong,
                "json_path": "detail",
                "json_value": "Incorrect username or password",
            },
        ]

    turbo, main = "http://127.0.0.1:17861", "http://127.0.0.1:36525"
    assert forge.endpoints(checked(stack), USER, PASSWORD, TOKEN) == [
        {
            "name": "turbo-txt2img",
            "url": f"{turbo}/sdapi/v1/txt2img",
            "method": "POST",
            "body": forge.smoke_request(),
            "auth": basic,
            "json_path": "parameters.width",
            "json_value": 512,
            "json_contains": {"path": "images.0", "value": "iVBORw0KGgo"},
        },
        *refusals("turbo", turbo),
        {
            "name": "turbo-checkpoint",
            "url": f"{turbo}/sdapi/v1/sd-models",
            "auth": basic,
            "json_contains": {"path": "", "value": {"model_name": "sd_xl_turbo_1.0_fp16"}},
        },
        {
            "name": "turbo-web-token",
            "url": "http://127.0.0.1:17862/sdapi/v1/options",
            "auth": {"type": "query", "param": "token", "value": TOKEN},
            "headers": {"Authorization": auth_header},
            "json_path": "sd_model_checkpoint",
        },
        {
            "name": "turbo-web-no-token",
            "url": "http://127.0.0.1:17862/sdapi/v1/options",
            "headers": {"Authorization": auth_header},
            "status": [302],
        },
        {"name": "main-api", "url": f"{main}/sdapi/v1/sd-models", "auth": basic},
        *refusals("main", main),
    ]


@pytest.mark.parametrize(
    ("bind_address", "host", "address"),
    [
        ("0.0.0.0", None, "127.0.0.1"),
        ("::", None, "127.0.0.1"),
        ("", None, "127.0.0.1"),
        ("0.0.0.0,::", None, "127.0.0.1"),
        ("10.1.2.3", None, "10.1.2.3"),
        ("::1", None, "[::1]"),
        ("127.0.0.1", "192.168.1.9", "192.168.1.9"),
    ],
)
def test_endpoints_reach_a_wildcard_bind_through_loopback(
    bind_address: str, host: str | None, address: str
) -> None:
    instance = {"name": "x", "port": 7860, "bind_address": bind_address}
    checks = forge.endpoints([instance], USER, PASSWORD, TOKEN, host=host)
    assert {c["url"] for c in checks} == {f"http://{address}:7860/sdapi/v1/sd-models"}


@pytest.mark.parametrize(
    ("bind_address", "url"),
    [("0.0.0.0", "http://127.0.0.1:17861"), ("::", "http://127.0.0.1:17861"),
     ("10.1.2.3", "http://10.1.2.3:17861"), ("::1", "http://[::1]:17861")],
)  # fmt: skip
def test_a_checked_instance_carries_where_it_is_reached(bind_address: str, url: str) -> None:
    """What the compose healthcheck reads (the template holds no wildcard rule of its own)."""
    turbo, _ = checked([{**user_stack()[0], "bind_address": bind_address}, user_stack()[1]])
    assert turbo["reach_url"] == url


# ---------------------------------------------------------------------------- exact merge


def test_merge_of_a_missing_file_writes_it_even_when_empty() -> None:
    assert forge.merge_settings(None, {}) == {
        "write": True,
        "content": "{}\n",
        "reset": [],
        "broken": False,
    }


def test_merge_replaces_a_broken_file_even_with_nothing_to_set() -> None:
    result = forge.merge_settings(b64("{broken"), {})
    assert result == {"write": True, "content": "{}\n", "reset": [], "broken": True}


def test_merge_keeps_unicode_as_forge_writes_it() -> None:
    result = forge.merge_settings(b64({"a": 1}), {"prompt": "café"})
    assert result["content"] == '{\n    "a": 1,\n    "prompt": "café"\n}\n'
    assert result["broken"] is False and result["write"] is True
