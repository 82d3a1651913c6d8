from __future__ import annotations

from typing import Any

import pytest

from ansible_collections.myia.genai_stack.plugins.module_utils import gpu_plan as engine

GPUS = [{"index": 0, "name": "RTX 4090"}, {"index": 1, "name": "RTX 4090"}, 2]


def wish(service: str, gpus: list[int], share: float, **extra: Any) -> dict[str, Any]:
    return {"service": service, "source": f"vllm_qwen3_models[{service}]", "gpus": gpus,
            "memory_share": share, **extra}  # fmt: skip


def user_stack() -> list[dict[str, Any]]:
    return [
        wish("micro", [2], 0.3, port=5000),
        wish("mini", [2], 0.6, port=5001),
        wish("medium", [0, 1], 0.9, tensor_parallel_size=2, port=5002),
    ]


def test_user_stack_plan_and_start_waves() -> None:
    plan = engine.plan(user_stack(), GPUS)
    assert plan["waves"] == [["micro", "medium"], ["mini"]]
    assert plan["services"]["mini"]["after"] == ["micro"]
    assert plan["services"]["medium"]["after"] == []
    by_index = {g["index"]: g for g in plan["gpus"]}
    assert by_index[2]["services"] == ["micro", "mini"]
    assert by_index[2]["memory_share"] == pytest.approx(0.9)
    assert by_index[0]["name"] == "RTX 4090"
    assert "micro (w0), mini (w1)" in plan["table"]


def test_three_services_on_one_gpu_chain() -> None:
    plan = engine.plan([wish("a", [0], 0.3), wish("b", [0], 0.3), wish("c", [0], 0.3)], GPUS)
    assert plan["waves"] == [["a"], ["b"], ["c"]]
    assert plan["services"]["c"]["after"] == ["b"]


def test_tensor_parallel_waits_for_every_gpu() -> None:
    plan = engine.plan([wish("a", [0], 0.4), wish("b", [1], 0.4), wish("c", [0, 1], 0.5)], GPUS)
    assert plan["services"]["c"]["after"] == ["a", "b"]
    assert plan["waves"] == [["a", "b"], ["c"]]


BROKEN: list[tuple[str, list[dict[str, Any]], dict[str, Any], list[str]]] = [
    ("unknown GPU index", [wish("m", [3], 0.5)], {}, ["GPU 3 does not exist", "m", ".gpus"]),
    ("negative GPU index", [wish("m", [-1], 0.5)], {}, ["GPU -1 does not exist"]),
    ("shares over 1", [wish("a", [2], 0.6), wish("b", [2], 0.5)], {},
     ["GPU 2", "sum to 1.1", "a (0.6)", "b (0.5)"]),
    ("shares over the ceiling", [wish("a", [2], 0.5), wish("b", [2], 0.45)], {"ceiling": 0.9},
     ["over the ceiling 0.9"]),
    ("tp larger than gpus", [wish("m", [0], 0.5, tensor_parallel_size=2)], {},
     ["tensor_parallel_size 2", "number of GPUs 1", "vllm_qwen3_models[m].tensor_parallel_size"]),
    ("tp smaller than gpus", [wish("m", [0, 1], 0.5, tensor_parallel_size=1)], {},
     ["tensor_parallel_size 1"]),
    ("same port twice", [wish("a", [0], 0.4, port=5000), wish("b", [1], 0.4, port=5000)], {},
     ["port 5000 is already used", "service 'b'", ".port"]),
    ("invalid port", [wish("a", [0], 0.4, port=70000)], {}, ["port 70000 is not a valid port"]),
    ("duplicate name", [wish("a", [0], 0.4), wish("a", [1], 0.4)], {}, ["name already used"]),
    ("share zero", [wish("a", [0], 0.0)], {}, ["must be in (0, 1]"]),
    ("share above one", [wish("a", [0], 1.5)], {}, ["must be in (0, 1]"]),
    ("gpu listed twice", [wish("a", [0, 0], 0.4)], {}, ["GPU listed twice"]),
    ("missing share", [{"service": "a", "source": "x[0]", "gpus": [0]}], {},
     ["memory share is required", "x[0].memory_share"]),
    ("no gpus on host", [wish("a", [0], 0.4)], {"gpus": []}, ["GPUs: none"]),
]  # fmt: skip


@pytest.mark.parametrize(
    ("case", "wishes", "kwargs", "needles"), BROKEN, ids=[b[0] for b in BROKEN]
)
def test_broken_plans_fail_naming_service_and_variable(
    case: str, wishes: list[dict[str, Any]], kwargs: dict[str, Any], needles: list[str]
) -> None:
    gpus = kwargs.get("gpus", GPUS)
    rest = {k: v for k, v in kwargs.items() if k != "gpus"}  # the parameters are shared
    with pytest.raises(engine.GpuPlanError) as err:
        engine.plan(wishes, gpus, **rest)
    for needle in needles:
        assert needle in str(err.value), f"{case}: {needle!r} not in {err.value}"


def test_every_problem_is_reported_at_once() -> None:
    wishes = [wish("a", [7], 0.4, port=1), wish("b", [0], 0.4, port=1)]
    with pytest.raises(engine.GpuPlanError) as err:
        engine.plan(wishes, GPUS)
    assert "GPU 7" in str(err.value) and "port 1 is already used" in str(err.value)


def test_the_plan_is_exactly_what_admins_and_roles_read() -> None:
    plan = engine.plan(user_stack(), GPUS, ceiling=0.95)
    assert plan["table"] == (
        "GPU  name      share  services (start wave)\n"
        "0    RTX 4090  0.90   medium (w0)\n"
        "1    RTX 4090  0.90   medium (w0)\n"
        "2    -         0.90   micro (w0), mini (w1)"
    )
    assert plan["ceiling"] == 0.95
    assert plan["gpus"] == [
        {"index": 0, "name": "RTX 4090", "memory_total_mib": None, "services": ["medium"],
         "memory_share": 0.9},
        {"index": 1, "name": "RTX 4090", "memory_total_mib": None, "services": ["medium"],
         "memory_share": 0.9},
        {"index": 2, "name": "", "memory_total_mib": None, "services": ["micro", "mini"],
         "memory_share": 0.9},
    ]  # fmt: skip
    assert plan["services"] == {
        "micro": {"gpus": [2], "memory_share": 0.3, "port": 5000, "after": [], "wave": 0,
                  "source": "vllm_qwen3_models[micro]"},
        "mini": {"gpus": [2], "memory_share": 0.6, "port": 5001, "after": ["micro"], "wave": 1,
                 "source": "vllm_qwen3_models[mini]"},
        "medium": {"gpus": [0, 1], "memory_share": 0.9, "port": 5002, "after": [], "wave": 0,
                   "source": "vllm_qwen3_models[medium]"},
    }  # fmt: skip


def test_an_idle_gpu_and_a_gpu_with_its_memory_are_shown() -> None:
    gpus = [{"index": 0, "name": "A100", "memory_total_mib": 81920}, {"index": 1}]
    plan = engine.plan([wish("a", [0], 1.0)], gpus)
    assert plan["gpus"][0]["memory_total_mib"] == 81920 and plan["gpus"][0]["memory_share"] == 1.0
    assert plan["gpus"][1] == {"index": 1, "name": "", "memory_total_mib": None, "services": [],
                               "memory_share": 0}  # fmt: skip
    assert plan["table"].splitlines()[2] == "1    -     0.00   -"


def test_every_problem_is_one_line_under_one_title() -> None:
    wishes = [wish("a", [7], 0.4, port=1), wish("a", [0, 0], 1.5, port=1)]
    with pytest.raises(engine.GpuPlanError) as err:
        engine.plan(wishes, GPUS)
    lines = str(err.value).splitlines()
    assert lines[0] == "GPU plan rejected:"
    assert lines[1:] == [
        "- service 'a' (vllm_qwen3_models[a]): GPU 7 does not exist on this host (GPUs: 0, 1, 2) "
        "(vllm_qwen3_models[a].gpus)",
        "- service 'a' (vllm_qwen3_models[a]): name already used by vllm_qwen3_models[a]",
        "- service 'a' (vllm_qwen3_models[a]): port 1 is already used by service 'a' "
        "(vllm_qwen3_models[a]) (vllm_qwen3_models[a].port)",
        "- service 'a' (vllm_qwen3_models[a]): GPU listed twice in [0, 0] (vllm_qwen3_models[a].gpus)",
        "- service 'a' (vllm_qwen3_models[a]): memory share 1.5 must be in (0, 1] "
        "(vllm_qwen3_models[a])",
        "- GPU 0: memory shares sum to 3, over the ceiling 1: a (1.5), a (1.5) "
        "(vllm_qwen3_models[a], vllm_qwen3_models[a])",
    ]


# --- the engine itself (module_utils.gpu_plan), as stack_model calls it --------------------------


def engine_problems(wishes: list[dict[str, Any]], **kwargs: Any) -> list[str]:
    with pytest.raises(engine.GpuPlanError) as err:
        engine.plan(wishes, kwargs.pop("gpus", GPUS), **kwargs)
    assert str(err.value) == "GPU plan rejected:\n- " + "\n- ".join(err.value.problems)
    return err.value.problems


def test_a_wish_without_a_name_is_named_by_its_source_and_still_summed() -> None:
    wishes = [{"source": "x[0]", "gpus": [0], "memory_share": 0.6}, wish("b", [0], 0.6)]
    assert engine_problems(wishes) == [
        "x[0]: a service needs a name",
        "GPU 0: memory shares sum to 1.2, over the ceiling 1:  (0.6), b (0.6) "
        "(, vllm_qwen3_models[b])",
    ]


def test_a_wish_without_a_source_is_named_by_its_service() -> None:
    assert engine_problems([{"service": "a", "gpus": [0], "memory_share": 1.5}]) == [
        "service 'a' (a): memory share 1.5 must be in (0, 1] (a)",
        "GPU 0: memory shares sum to 1.5, over the ceiling 1: a (1.5) (a)",
    ]


def test_a_missing_share_counts_as_zero() -> None:
    assert engine_problems([{"service": "a", "source": "x[0]", "gpus": [0]}]) == [
        "service 'a' (x[0]): a memory share is required (x[0].memory_share)",
        "service 'a' (x[0]): memory share 0.0 must be in (0, 1] (x[0])",
    ]


def test_port_65535_is_the_last_valid_port() -> None:
    assert engine.plan([wish("a", [0], 0.4, port=65535)], GPUS)["services"]["a"]["port"] == 65535
    assert engine_problems([wish("a", [0], 0.4, port=65536)]) == [
        "service 'a' (vllm_qwen3_models[a]): port 65536 is not a valid port "
        "(vllm_qwen3_models[a].port)"
    ]


def test_a_service_without_gpu_or_source_gets_no_share_and_its_name_as_source() -> None:
    plan = engine.plan([{"service": "cpu", "port": 6000}], GPUS)
    assert plan["services"] == {
        "cpu": {"gpus": [], "memory_share": 0.0, "port": 6000, "after": [], "wave": 0,
                "source": "cpu"},
    }  # fmt: skip
    assert plan["waves"] == [["cpu"]]


def test_share_sums_are_rounded_to_six_decimals() -> None:
    # 0.5000002 + 0.5000002 = 1.0000004, which rounds to 1.0: at the ceiling, accepted
    plan = engine.plan([wish("a", [0], 0.5000002), wish("b", [0], 0.5000002)], GPUS)
    assert plan["gpus"][0]["memory_share"] == 1.0


def test_a_sum_within_1e_9_of_the_ceiling_is_at_the_ceiling() -> None:
    # 0.999999999 + 1e-9 is 1.0 in floating point: a sum of exactly 1.0 is not over it
    plan = engine.plan([wish("a", [0], 1.0)], GPUS, ceiling=0.999999999)
    assert plan["gpus"][0]["memory_share"] == 1.0


# --- the files each model serves: pinned to a commit or not -------------------------------------

COMMIT = "4da05a8edb55c6046cce958586c33b61da07bb79"


def test_the_table_shows_each_model_pinned_or_unpinned() -> None:
    wishes = [
        wish("micro", [2], 0.3, model="Qwen/Qwen3-1.7B-FP8", revision=None, pinned=False),
        wish("mini", [2], 0.6, model="Qwen/Qwen3-8B-AWQ", revision=COMMIT, pinned=True),
        wish("medium", [0, 1], 0.5, model="Qwen/Qwen3-32B-AWQ", revision="main", pinned=False),
        wish("comfyui", [0], 0.4),  # names no model files: no row
    ]
    plan = engine.plan(wishes, GPUS)
    assert plan["table"] == (
        "GPU  name      share  services (start wave)\n"
        "0    RTX 4090  0.90   medium (w0), comfyui (w1)\n"
        "1    RTX 4090  0.50   medium (w0)\n"
        "2    -         0.90   micro (w0), mini (w1)\n"
        "service  model@revision\n"
        "micro    Qwen/Qwen3-1.7B-FP8 (unpinned)\n"
        "mini     Qwen/Qwen3-8B-AWQ@4da05a8\n"
        "medium   Qwen/Qwen3-32B-AWQ@main (unpinned: not a commit)"
    )
    assert plan["services"]["mini"] == {
        "gpus": [2], "memory_share": 0.6, "port": None, "after": ["micro"], "wave": 1,
        "source": "vllm_qwen3_models[mini]", "model": "Qwen/Qwen3-8B-AWQ", "revision": COMMIT,
        "pinned": True,
    }  # fmt: skip
    assert (plan["services"]["micro"]["revision"], plan["services"]["micro"]["pinned"]) == (
        None,
        False,
    )
    assert "model" not in plan["services"]["comfyui"]


def test_a_service_is_pinned_only_when_its_wish_says_so() -> None:
    """``pinned`` is what the kind judged (vllm.pinned: a full commit); without it a revision is
    shown as given, unpinned; an empty revision is no revision."""
    wishes = [
        wish("a", [0], 0.4, model="org/a", revision="v1.0"),
        wish("b", [1], 0.4, model="org/b", revision="", pinned=False),
    ]
    lines = engine.plan(wishes, GPUS)["table"].splitlines()
    assert lines[-3:] == [
        "service  model@revision",
        "a        org/a@v1.0 (unpinned: not a commit)",
        "b        org/b (unpinned)",
    ]
