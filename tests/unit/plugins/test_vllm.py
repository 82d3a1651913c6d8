from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

from ansible_collections.myia.genai_stack.plugins.filter.vllm_args import vllm_args
from ansible_collections.myia.genai_stack.plugins.module_utils import specs, vllm


def model(**extra: Any) -> dict[str, Any]:
    return {"name": "qwen3-mini", "model": "Qwen/Qwen3-8B-AWQ", "port": 5001, "gpus": [2],
            "gpu_memory_utilization": 0.6, **extra}  # fmt: skip


def test_defaults_are_filled_in() -> None:
    (m,) = vllm.normalize([model()], defaults={"image": "vllm/vllm-openai:v0.9.2"})
    assert m["served_model_names"] == ["qwen3-mini"]
    assert m["tensor_parallel_size"] == 1
    assert m["image"] == "vllm/vllm-openai:v0.9.2"
    assert m["gpu_wish"] == {
        "service": "qwen3-mini", "source": "vllm_qwen3_models[0]", "gpus": [2],
        "memory_share": 0.6, "tensor_parallel_size": 1, "port": 5001, "bind_address": "127.0.0.1",
        "model": "Qwen/Qwen3-8B-AWQ", "revision": None, "pinned": False,
    }  # fmt: skip
    assert m["revision"] is None and "--revision" not in vllm_args(m)


def test_model_keys_override_role_defaults() -> None:
    (m,) = vllm.normalize(
        [model(tool_call_parser="mistral")], defaults={"tool_call_parser": "hermes"}
    )
    assert m["tool_call_parser"] == "mistral"


def test_command_line_of_the_user_medium_model() -> None:
    (m,) = vllm.normalize(
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
    (m,) = vllm.normalize([model(enable_auto_tool_choice=False, reasoning_parser="")])
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
    with pytest.raises(vllm.VllmSpecError) as err:
        vllm.normalize(models)
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
    assert tuple(sorted(standin.TOOL_CALL_PARSERS)) == vllm.TOOL_CALL_PARSERS
    assert tuple(sorted(standin.REASONING_PARSERS)) == vllm.REASONING_PARSERS

    coder = [model(tool_call_parser="qwen3_coder")]
    with pytest.raises(
        vllm.VllmSpecError, match=r"'qwen3_coder' is not supported by vLLM v0\.9\.2"
    ):
        vllm.normalize(coder, defaults={"image": "vllm/vllm-openai:v0.9.2"})
    assert vllm.normalize(coder, defaults={"image": "vllm/vllm-openai:v0.10.0"})
    glm = [model(tool_call_parser="glm4_moe")]  # 0.10.0's name for GLM-4.5; 0.34.0 calls it glm45
    assert vllm.normalize(glm, defaults={"image": "vllm/vllm-openai:v0.10.0"})
    with pytest.raises(
        vllm.VllmSpecError, match=r"whose lists apply to vllm/vllm-openai:v0\.11\.0"
    ):
        vllm.normalize(glm, defaults={"image": "vllm/vllm-openai:v0.11.0"})
    empty = [model(tool_call_parser="")]
    with pytest.raises(vllm.VllmSpecError, match="tool_call_parser is empty"):
        vllm.normalize(empty, defaults={"image": "vllm/vllm-openai:v0.9.2"})


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"name": "a b"}, "vllm_qwen3_models[0].name 'a b' must be letters, digits"),
        ({"port": "50x"}, "vllm_qwen3_models[0].port '50x' is not a port number (1-65535)"),
        ({"gpus": "2"}, "vllm_qwen3_models[0].gpus '2' must be a non-empty list of GPU indices"),
        ({"gpu_memory_utilization": 0},
         "vllm_qwen3_models[0].gpu_memory_utilization 0 must be a fraction of the GPU memory"),
        ({"load_timeout": "1h"},
         "vllm_qwen3_models[0].load_timeout '1h' must be a positive number of seconds"),
        ({"image": "Bad Image"},
         "vllm_qwen3_models[0].image (or vllm_qwen3_image) 'Bad Image' is not a valid image"),
        ({"bind_address": "any"}, "vllm_qwen3_models[0].bind_address 'any' is not an IP address"),
        ({"hostname": "https://x.io"},
         "vllm_qwen3_models[0].hostname 'https://x.io' must be a DNS name without a scheme"),
        ({"model": "Qwen/x\nevil"},
         "vllm_qwen3_models[0].model 'Qwen/x\\nevil' must be one line without control characters"),
        ({"tensor_parallel_size": "two"},
         "vllm_qwen3_models[0].tensor_parallel_size 'two' must be a positive integer (e.g. 32768, not '32k')"),
        ({"max_model_len": 0},
         "vllm_qwen3_models[0].max_model_len 0 must be a positive integer (e.g. 32768, not '32k')"),
        ({"served_model_names": "qwen"},
         "vllm_qwen3_models[0].served_model_names 'qwen' must be a list of names"),
        ({"served_model_names": [" "]},
         "vllm_qwen3_models[0].served_model_names [' '] must be a list of names"),
        ({"served_model_names": ["a\tb"]},
         "vllm_qwen3_models[0].served_model_names 'a\\tb' must be one line"),
        ({"extra_args": "--x"}, "vllm_qwen3_models[0].extra_args must be a list of arguments"),
        ({"extra_args": ["--ok", "--a\rb"]}, "vllm_qwen3_models[0].extra_args[1] '--a\\rb' must be one line"),
        ({"env": {"HF_TOKEN": "x"}}, "vllm_qwen3_models[0].env.HF_TOKEN: set by the role"),
        ({"dtype": "int4"}, "vllm_qwen3_models[0].dtype 'int4' is not supported by vLLM v0.9.2; use one of auto, bfloat16"),
        ({"reasoning_parser": "r1"},
         "vllm_qwen3_models[0].reasoning_parser 'r1' is not supported by vLLM v0.9.2; use one of deepseek_r1, granite, qwen3"),
    ],
)  # fmt: skip
def test_each_problem_names_the_model_the_path_and_the_value(
    change: dict[str, Any], problem: str
) -> None:
    with pytest.raises(vllm.VllmSpecError) as err:
        vllm.normalize([model(**change)], {"image": "vllm/vllm-openai:v0.9.2"})
    assert (
        err.value.problems[0] == f"model '{change.get('name', 'qwen3-mini')}' "
        f"(vllm_qwen3_models[0]): " + err.value.problems[0].split("): ", 1)[1]
    )
    assert any(p.split("): ", 1)[1].startswith(problem) for p in err.value.problems), (
        err.value.problems
    )


def test_the_command_line_is_exactly_what_vllm_takes() -> None:
    (m,) = vllm.normalize(
        [model(dtype="bfloat16", max_model_len=8192, served_model_names=["a", "b"],
               gpu_memory_utilization="0.50", bind_address="0.0.0.0")],
        {"image": "vllm/vllm-openai:v0.9.2"},
    )  # fmt: skip
    assert vllm.command(m) == [
        "--model", "Qwen/Qwen3-8B-AWQ", "--served-model-name", "a", "b", "--host", "0.0.0.0",
        "--port", "5001", "--tensor-parallel-size", "1", "--gpu-memory-utilization", "0.5",
        "--max-model-len", "8192", "--dtype", "bfloat16", "--enable-auto-tool-choice",
        "--tool-call-parser", "hermes", "--reasoning-parser", "qwen3",
    ]  # fmt: skip
    (plain,) = vllm.normalize(
        [model(enable_auto_tool_choice=False, reasoning_parser="", dtype="auto")], {}
    )
    assert vllm.command(plain)[-2:] == ["--gpu-memory-utilization", "0.6"]


def test_endpoints_list_every_served_name_and_the_refusal() -> None:
    (m,) = vllm.normalize([model(served_model_names=["a", "b"], bind_address="::")], {})
    assert vllm.endpoints([m], "key") == [
        {"name": "qwen3-mini lists a", "url": "http://127.0.0.1:5001/v1/models",
         "auth": {"type": "bearer", "token": "key"},
         "json_contains": {"path": "data", "value": {"id": "a"}}},
        {"name": "qwen3-mini lists b", "url": "http://127.0.0.1:5001/v1/models",
         "auth": {"type": "bearer", "token": "key"},
         "json_contains": {"path": "data", "value": {"id": "b"}}},
        {"name": "qwen3-mini refuses no key", "url": "http://127.0.0.1:5001/v1/models",
         "status": [401]},
    ]  # fmt: skip


def test_flag_lists_follow_the_image_tag() -> None:
    assert vllm.flag_lists("vllm/vllm-openai:v0.10.0") == ("v0.10.0", "vLLM v0.10.0")
    assert (
        vllm.flag_lists("registry:5000/vllm/vllm-openai:v0.9.2@sha256:" + "a" * 64)[0] == "v0.9.2"
    )
    release, why = vllm.flag_lists("local/vllm-standin")
    assert release == "v0.34.0" and "whose lists apply to local/vllm-standin" in why
    assert vllm.flag_lists(None)[0] == "v0.34.0"


@pytest.mark.parametrize(
    ("bind_address", "host"),
    [("0.0.0.0", "127.0.0.1"), ("::", "127.0.0.1"), ("", "127.0.0.1"),
     ("0.0.0.0,::", "127.0.0.1"), ("10.1.2.3", "10.1.2.3"), ("::1", "[::1]")],
)  # fmt: skip
def test_endpoints_reach_a_wildcard_bind_through_the_loopback(bind_address: str, host: str) -> None:
    served = {"name": "m", "port": 8000, "served_model_names": ["m"], "bind_address": bind_address}
    assert [c["url"] for c in vllm.endpoints([served], "k")] == [
        f"http://{host}:8000/v1/models"
    ] * 2


@pytest.mark.parametrize(
    ("bind_address", "url"),
    [("0.0.0.0", "http://127.0.0.1:5001"), ("::", "http://127.0.0.1:5001"),
     ("10.1.2.3", "http://10.1.2.3:5001"), ("::1", "http://[::1]:5001")],
)  # fmt: skip
def test_a_checked_model_carries_where_it_is_reached(bind_address: str, url: str) -> None:
    """The compose healthcheck reads ``reach_url``: the template holds no wildcard rule of its own
    (it once missed '' and '0.0.0.0,::', which the one rule, specs.reach_address, maps too)."""
    (m,) = vllm.normalize([model(bind_address=bind_address)], {})
    assert m["reach_url"] == url == specs.reach_url(bind_address, 5001)
    assert [c["url"] for c in vllm.endpoints([m], "k")] == [f"{url}/v1/models"] * 2


@pytest.mark.parametrize(
    ("image", "release"),
    [
        ("vllm/vllm-openai:v0.10.0@sha256:" + "a" * 64, "v0.10.0"),
        ("registry.io:5000/vllm/vllm-openai:v0.10.0", "v0.10.0"),
        ("vllm-openai:v0.10.0", "v0.10.0"),
    ],
)
def test_flag_lists_read_the_tag_before_a_digest(image: str, release: str) -> None:
    assert vllm.flag_lists(image) == (release, f"vLLM {release}")


@pytest.mark.parametrize(
    "image",
    [
        "vllm/vllm-openai@sha256:" + "a" * 64,
        "registry.io:5000/vllm/vllm-openai",
        "registry.io:5000/vllm-openai@sha256:" + "a" * 64,
        "vllm/vllm-openai:latest",
    ],
)
def test_an_image_without_a_known_tag_gets_the_pinned_lists(image: str) -> None:
    assert vllm.flag_lists(image) == (
        "v0.34.0",
        f"vLLM v0.34.0, whose lists apply to {image} (known: v0.9.2, v0.10.0, v0.34.0)",
    )


def test_every_problem_of_every_model_is_reported_under_one_title() -> None:
    models = [
        model(port="x", served_model_names=["a\tb"]),
        model(name="b", env={"VLLM_API_KEY": "k"}),
        model(name="b", tool_call_parser="", max_model_len="32k"),
    ]
    with pytest.raises(vllm.VllmSpecError) as err:
        vllm.normalize(models, {"image": "vllm/vllm-openai:v0.9.2"})
    assert err.value.problems == [
        "model 'qwen3-mini' (vllm_qwen3_models[0]): vllm_qwen3_models[0].port 'x' is not a port "
        "number (1-65535)",
        "model 'qwen3-mini' (vllm_qwen3_models[0]): vllm_qwen3_models[0].served_model_names "
        "'a\\tb' must be one line without control characters",
        "model 'b' (vllm_qwen3_models[1]): vllm_qwen3_models[1].env.VLLM_API_KEY: set by the "
        "role, it cannot be overridden",
        "model 'b' (vllm_qwen3_models[2]): duplicate name, also vllm_qwen3_models[1].name",
        "model 'b' (vllm_qwen3_models[2]): vllm_qwen3_models[2].max_model_len '32k' must be a "
        "positive integer (e.g. 32768, not '32k')",
    ]
    assert str(err.value).startswith("invalid vLLM models:\n- model 'qwen3-mini'")
    with pytest.raises(vllm.VllmSpecError) as err:
        vllm.normalize([model(tool_call_parser="")], {"image": "vllm/vllm-openai:v0.9.2"})
    assert str(err.value) == (
        "invalid vLLM models:\n- model 'qwen3-mini' (vllm_qwen3_models[0]): "
        "vllm_qwen3_models[0].tool_call_parser is empty while enable_auto_tool_choice is on; "
        "vLLM v0.9.2 needs one of " + ", ".join(vllm.RELEASES["v0.9.2"]["tool_call_parser"])
    )
    with pytest.raises(vllm.VllmSpecError) as err:
        vllm.normalize([], variable="models")
    assert str(err.value) == "invalid vLLM models:\n- models must be a non-empty list of models"


def test_numbers_given_as_text_become_integers() -> None:
    (m,) = vllm.normalize(
        [model(gpus=["0", "1"], port="5003", load_timeout="600", tensor_parallel_size="2",
               max_model_len="8192")],
        {"image": "vllm/vllm-openai:v0.9.2"},
    )  # fmt: skip
    assert m == {
        "name": "qwen3-mini", "model": "Qwen/Qwen3-8B-AWQ", "port": 5003, "gpus": [0, 1],
        "gpu_memory_utilization": 0.6, "served_model_names": ["qwen3-mini"],
        "tensor_parallel_size": 2, "max_model_len": 8192, "dtype": "auto", "quantization": None,
        "enable_auto_tool_choice": True, "tool_call_parser": "hermes", "reasoning_parser": "qwen3",
        "extra_args": [], "env": {}, "image": "vllm/vllm-openai:v0.9.2", "load_timeout": 600,
        "bind_address": "127.0.0.1", "hostname": None, "revision": None,
        "gpu_wish": {"service": "qwen3-mini", "source": "vllm_qwen3_models[0]", "gpus": [0, 1],
                     "memory_share": 0.6, "tensor_parallel_size": 2, "port": 5003,
                     "bind_address": "127.0.0.1", "model": "Qwen/Qwen3-8B-AWQ",
                     "revision": None, "pinned": False},
        "reach_url": "http://127.0.0.1:5003",
    }  # fmt: skip
    assert [type(m[k]) for k in ("port", "load_timeout", "tensor_parallel_size")] == [int] * 3


V10 = {"image": "vllm/vllm-openai:v0.10.0"}


def test_v0_10_0_lists_are_its_own_registries() -> None:
    """0.10.0 registers the GLM-4.5 tool parser as glm4_moe: glm45 made its server refuse to
    start; its reasoning parsers and quantizations are the release's, not 0.9.2's."""
    with pytest.raises(vllm.VllmSpecError, match="tool_call_parser 'glm45' is not supported"):
        vllm.normalize([model(tool_call_parser="glm45")], V10)
    assert vllm.normalize([model(tool_call_parser="glm4_moe")], V10)
    for parser in ("glm4_moe", "hunyuan_a13b", "mistral"):
        assert vllm.normalize([model(reasoning_parser=parser)], V10)
    for method in (
        "moe_wna16",
        "modelopt_fp4",
        "auto-round",
        "gptq_marlin_24",
        "fbgemm_fp8",
        "inc",
    ):
        assert vllm.normalize([model(quantization=method)], V10)
    with pytest.raises(
        vllm.VllmSpecError, match=r"quantization .inc. is not supported by vLLM v0\.9\.2"
    ):
        vllm.normalize([model(quantization="inc")], {"image": "vllm/vllm-openai:v0.9.2"})
    assert vllm.normalize([model(tool_call_parser="qwen3_coder")], {})  # the pinned 0.34.0


M = "vllm_qwen3_models[0]"
#: a commit of Qwen/Qwen3-8B-AWQ (the one group_vars/all pins)
COMMIT = "4da05a8edb55c6046cce958586c33b61da07bb79"


@pytest.mark.parametrize(
    ("args", "problem"),
    [
        (["--api-key", "k"], f"{M}.extra_args[0] '--api-key' is refused: the key is derived from "
         "the one secret and passed as VLLM_API_KEY; a key on the command line would bypass it and "
         "show in the process list"),
        (["--api_key", "k"], f"{M}.extra_args[0] '--api-key' is refused: the key is derived from "
         "the one secret and passed as VLLM_API_KEY; a key on the command line would bypass it and "
         "show in the process list"),
        (["--port", "9"], f"{M}.extra_args[0] '--port' is set by the role from {M}.port; remove it"),
        (["--served-model", "x"], f"{M}.extra_args[0] '--served-model' abbreviates "
         "--served-model-name (vLLM v0.34.0 expands abbreviations), which is set by the role from "
         f"{M}.served_model_names; remove it"),
        (["-tp", "2"], f"{M}.extra_args[0] '-tp' is set by the role from {M}.tensor_parallel_size; "
         "remove it"),
        (["--enable-reasoning"], f"{M}.extra_args[0] '--enable-reasoning' is not a flag of vLLM "
         "v0.34.0; did you mean --enable-prefix-caching?"),
        (["--seed"], f"{M}.extra_args[0] '--seed' needs one value (vLLM v0.34.0)"),
        (["--enforce-eager", "yes"], f"{M}.extra_args[1] 'yes' is a stray word: --enforce-eager "
         "takes no value, so vLLM v0.34.0 would refuse it (unrecognized arguments)"),
        (["--revision", COMMIT], f"{M}.extra_args[0] '--revision' is set by the role from "
         f"{M}.revision; remove it"),
        ([f"--revision={COMMIT}"], f"{M}.extra_args[0] '--revision' is set by the role from "
         f"{M}.revision; remove it"),
        (["--revis", "main"], f"{M}.extra_args[0] '--revis' abbreviates --revision (vLLM v0.34.0 "
         f"expands abbreviations), which is set by the role from {M}.revision; remove it"),
    ],
)  # fmt: skip
def test_extra_args_are_read_with_the_release_grammar(args: list[str], problem: str) -> None:
    with pytest.raises(vllm.VllmSpecError) as err:
        vllm.normalize([model(extra_args=args)], {"image": "vllm/vllm-openai:v0.34.0"})
    assert [p.split("): ", 1)[1] for p in err.value.problems] == [problem]


def test_extra_args_of_the_release_are_accepted() -> None:
    args = ["--seed", "1", "--max_num_seqs", "8", "--enable-prefix-caching", "--kv-cache-dtype",
            "fp8"]  # fmt: skip
    (m,) = vllm.normalize([model(extra_args=args)], {"image": "vllm/vllm-openai:v0.34.0"})
    assert vllm.command(m)[-len(args) :] == args
    v092 = {"image": "vllm/vllm-openai:v0.9.2"}
    assert vllm.normalize([model(extra_args=["--enable-reasoning"])], v092)


@pytest.mark.parametrize("release", ["v0.9.2", "v0.10.0", "v0.34.0"])
def test_every_accepted_release_takes_revision(release: str) -> None:
    """--revision (one value) is in the grammar of every release the project accepts, read from
    vLLM's own parser; so the role may render it whatever the image."""
    assert vllm.RELEASES[release]["flags"]["--revision"] == 1
    image = {"image": f"vllm/vllm-openai:{release}"}
    (m,) = vllm.normalize([model(revision=COMMIT)], image)
    assert vllm.command(m)[:4] == ["--model", "Qwen/Qwen3-8B-AWQ", "--revision", COMMIT]


def test_a_pinned_model_renders_its_commit_and_tells_the_plan() -> None:
    (m,) = vllm.normalize([model(revision=COMMIT)])
    assert vllm_args(m)[:6] == [
        "--model", "Qwen/Qwen3-8B-AWQ", "--revision", COMMIT, "--served-model-name", "qwen3-mini",
    ]  # fmt: skip
    assert vllm_args(m).count("--revision") == 1
    assert (m["revision"], m["gpu_wish"]["revision"], m["gpu_wish"]["pinned"]) == (
        COMMIT, COMMIT, True
    )  # fmt: skip
    assert m["gpu_wish"]["model"] == "Qwen/Qwen3-8B-AWQ"


@pytest.mark.parametrize("revision", ["main", "v1.0", "refs/pr/12", "4da05a8", COMMIT[:39]])
def test_a_branch_tag_or_short_commit_is_passed_on_but_not_pinned(revision: str) -> None:
    (m,) = vllm.normalize([model(revision=revision)], {})
    assert vllm.command(m)[2:4] == ["--revision", revision]
    assert m["gpu_wish"]["pinned"] is False and m["gpu_wish"]["revision"] == revision


@pytest.mark.parametrize("revision", [None, ""])
def test_no_revision_renders_none(revision: str | None) -> None:
    (m,) = vllm.normalize([model(revision=revision)], {})
    assert m["revision"] is None and "--revision" not in vllm.command(m)
    assert m["gpu_wish"]["pinned"] is False


REF = (
    "must be a commit (40 hex digits, pinned) or a branch or tag name (not pinned): letters, "
    "digits, '.', '_', '-' and '/', starting with a letter or digit, not ending in '/' or '.', "
    "without '..', spaces or shell characters"
)


@pytest.mark.parametrize(
    ("revision", "problem"),
    [
        ("main branch", f"{M}.revision 'main branch' {REF}"),
        ("$(reboot)", f"{M}.revision '$(reboot)' {REF}"),
        ("v1;rm -rf /", f"{M}.revision 'v1;rm -rf /' {REF}"),
        ("`id`", f"{M}.revision '`id`' {REF}"),
        ("--trust-remote-code", f"{M}.revision '--trust-remote-code' {REF}"),
        ("a\nb", f"{M}.revision 'a\\nb' {REF}"),
        ("../main", f"{M}.revision '../main' {REF}"),
        ("refs/pr/", f"{M}.revision 'refs/pr/' {REF}"),
        ("x" * 129, f"{M}.revision '{'x' * 129}' {REF}"),
        (COMMIT.upper(), f"{M}.revision '{COMMIT.upper()}' must be in lower case, as Hugging "
         "Face writes commits"),
        (1234567, f"{M}.revision 1234567 must be text: a commit of 40 hex digits, quoted in YAML"),
        (["main"], f"{M}.revision ['main'] must be text: a commit of 40 hex digits, quoted in YAML"),
    ],
)  # fmt: skip
def test_a_bad_revision_is_refused_naming_the_variable(revision: Any, problem: str) -> None:
    with pytest.raises(vllm.VllmSpecError) as err:
        vllm.normalize([model(revision=revision)], {})
    assert err.value.problems == [f"model 'qwen3-mini' ({M}): {problem}"]
    with pytest.raises(vllm.VllmSpecError, match=r"vllm_qwen3_models\[0\]\.revision"):
        vllm.normalize([model(revision=revision)])
