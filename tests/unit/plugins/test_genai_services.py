from __future__ import annotations

import pytest
import yaml
from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.filter.genai_services import genai_services
from tests.unit.conftest import COLLECTIONS

GROUP_VARS = COLLECTIONS.parent / "group_vars" / "all"


def test_user_stack_records() -> None:
    models = yaml.safe_load((GROUP_VARS / "vllm_qwen3.yml").read_text())["vllm_qwen3_models"]
    comfy = {"name": "comfyui", "port": 8188, "hostname": "qwen-image-edit.myia.io", "gpus": [0]}
    forge = [{"name": "forge-turbo", "port": 17861, "gpus": [1],
              "hostname": "turbo.stable-diffusion-webui-forge.myia.io"}]  # fmt: skip
    records = genai_services(models, comfyui=comfy, forge=forge)
    by_name = {r["name"]: r for r in records}
    assert [r["kind"] for r in records] == ["vllm", "vllm", "vllm", "comfyui", "forge"]
    assert by_name["qwen3-mini"]["backend_url"] == "http://127.0.0.1:5001"
    assert by_name["qwen3-mini"]["served_model_names"] == ["qwen3-mini"]
    assert by_name["comfyui"]["websocket_paths"] == ["/ws", "/api/ws"]
    assert by_name["comfyui"]["auth"] == "comfyui_token"
    assert by_name["forge-turbo"]["auth"] == "basic"
    assert by_name["forge-turbo"]["hostname"] == "turbo.stable-diffusion-webui-forge.myia.io"


def test_wildcard_bind_is_reached_on_loopback() -> None:
    (rec,) = genai_services([{"name": "m", "port": 5000, "bind_address": "0.0.0.0"}])
    assert rec["backend_url"] == "http://127.0.0.1:5000"


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"vllm": [{"name": "a", "port": 1}, {"name": "a", "port": 2}]}, "name 'a' already used"),
        ({"vllm": [{"name": "a", "port": 1}], "forge": [{"name": "b", "port": 1}]},
         "forge_turbo_instances[0]: port 1 already used by vllm_qwen3_models[0]"),
        ({"vllm": [{"name": "a", "port": 1, "hostname": "h"}],
          "comfyui": {"name": "c", "port": 2, "hostname": "h"}}, "hostname 'h' already used"),
        ({"vllm": [{"name": "a"}]}, "missing vllm_qwen3_models[0].port"),
    ],
)  # fmt: skip
def test_conflicts_fail_naming_the_variables(kwargs: dict, needle: str) -> None:
    rest = {k: v for k, v in kwargs.items() if k != "vllm"}  # the parameters are shared
    with pytest.raises(AnsibleFilterError) as err:
        genai_services(kwargs["vllm"], **rest)
    assert needle in str(err.value)
