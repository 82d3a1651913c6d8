from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.filter.vllm_args import vllm_args
from ansible_collections.myia.genai_stack.plugins.filter.vllm_models import vllm_models
from ansible_collections.myia.genai_stack.plugins.module_utils import vllm


def model(**extra: Any) -> dict[str, Any]:
    return {"name": "qwen3-mini", "model": "Qwen/Qwen3-8B-AWQ", "port": 5001, "gpus": [2],
            "gpu_memory_utilization": 0.6, **extra}  # fmt: skip


def test_defaults_are_filled_in() -> None:
    (m,) = vllm_models([model()], defaults={"image": "vllm/vllm-openai:v0.9.2"})
    assert m["served_model_names"] == ["qwen3-mini"]
    assert m["tensor_parallel_size"] == 1
    assert m["image"] == "vllm/vllm-openai:v0.9.2"
    assert m["gpu_wish"] == {
        "service": "qwen3-mini", "source": "vllm_qwen3_models[0]", "gpus": [2],
        "memory_share": 0.6, "tensor_parallel_size": 1, "port": 5001, "bind_address": "127.0.0.1",
    }  # fmt: skip


def test_model_keys_override_role_defaults() -> None:
    (m,) = vllm_models([model(tool_call_parser="mistral")], defaults={"tool_call_parser": "hermes"})
    assert m["tool_call_parser"] == "mistral"


def test_command_line_of_the_user_medium_model() -> None:
    (m,) = vllm_models(
        [model(name="qwen3-medium", gpus=[0, 1], tensor_parallel_size=2, max_model_len=32768,
               quantization="awq_marlin", gpu_memory_utilization=0.9, extra_args=["--max-num-seqs", "32"])]
    )  # fmt: skip
    assert vllm_args(m) == [
        "--model", "Qwen/Qwen3-8B-AWQ", "--served-model-name", "qwen3-medium",
        "--host", "127.0.0.1", "--port", "5001", "--tensor-parallel-size", "2",
        "--gpu-memory-utilization", "0.9", "--max-model-len", "32768",
        "--quantization", "awq_marlin", "--enable-auto-tool-choice", "--tool-call-parser", "hermes",
        "--reasoning-parser", "qwen3", "--max-num-seqs", "32",
    ]  # fmt: skip


def test_tool_calling_off_drops_the_parser_and_no_key_on_command_line() -> None:
    (m,) = vllm_models([model(enable_auto_tool_choice=False, reasoning_parser="")])
    args = vllm_args(m)
    assert "--tool-call-parser" not in args and "--reasoning-parser" not in args
    assert not any("key" in a for a in args)


@pytest.mark.parametrize(
    ("models", "needles"),
    [
        ([model(), model(port=5002)], ["duplicate name", "vllm_qwen3_models[0].name"]),
        ([model(quantization="int3")], ["vllm_qwen3_models[0].quantization 'int3'"]),
        ([model(tool_call_parser="qwen")], ["tool_call_parser 'qwen'", "hermes"]),
        ([model(reasoning_parser="r2")], ["reasoning_parser 'r2'"]),
        ([model(dtype="int8")], ["dtype 'int8'"]),
        ([model(gpu_memory_utilization=1.2)], ["gpu_memory_utilization 1.2"]),
        ([{"name": "x", "model": "m", "gpus": [0], "gpu_memory_utilization": 0.5}],
         ["missing vllm_qwen3_models[0].port"]),
        ([model(gpu=[1])], ["unknown key(s) gpu"]),
        ([], ["non-empty list"]),
    ],
)  # fmt: skip
def test_bad_models_fail_naming_model_and_variable(
    models: list[dict[str, Any]], needles: list[str]
) -> None:
    with pytest.raises(AnsibleFilterError) as err:
        vllm_models(models)
    for needle in needles:
        assert needle in str(err.value)


def test_parsers_follow_the_image_release_and_the_standin_uses_the_pinned_lists() -> None:
    path = (
        Path(__file__).resolve().parents[2] / "standins/vllm/vllm/entrypoints/openai/api_server.py"
    )
    spec = importlib.util.spec_from_file_location("vllm_standin_server", path)
    assert spec and spec.loader
    standin = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = standin  # its dataclasses look their module up
    spec.loader.exec_module(standin)
    assert tuple(standin.TOOL_CALL_PARSERS) == vllm.FLAG_LISTS[vllm.PINNED]["tool_call_parser"]

    coder = [model(tool_call_parser="qwen3_coder")]
    with pytest.raises(
        AnsibleFilterError, match=r"'qwen3_coder' is not supported by vLLM v0\.9\.2"
    ):
        vllm_models(coder, defaults={"image": "vllm/vllm-openai:v0.9.2"})
    assert vllm_models(coder, defaults={"image": "vllm/vllm-openai:v0.10.0"})
    with pytest.raises(
        AnsibleFilterError, match=r"whose lists apply to vllm/vllm-openai:v0\.11\.0"
    ):
        vllm_models(coder, defaults={"image": "vllm/vllm-openai:v0.11.0"})
    empty = [model(tool_call_parser="")]
    with pytest.raises(AnsibleFilterError, match="tool_call_parser is empty"):
        vllm_models(empty, defaults={"image": "vllm/vllm-openai:v0.9.2"})
