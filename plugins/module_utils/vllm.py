"""vLLM model specs: defaults filled in, and the server command line rendered from them.

Shared by the ``vllm_models`` and ``vllm_args`` filters. Pure Python, no Ansible import.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.myia.genai_stack.plugins.module_utils import specs

#: What each vLLM release accepts for the options checked up front, by image tag. Taken from
#: the release's sources: the names registered with ``ToolParserManager.register_module`` in
#: vllm/entrypoints/openai/tool_parsers/ and ``ReasoningParserManager.register_module`` in
#: vllm/reasoning/, ``--dtype`` and ``--quantization`` choices of vllm/engine/arg_utils.py
#: (docs.vllm.ai/en/<tag>/api/...). Quantizations: the subset for Qwen3 checkpoints. An image whose
#: tag is not listed is checked against the pinned release's lists, and the message says so.
_V092_TOOL_PARSERS = (
    "deepseek_v3", "granite-20b-fc", "granite", "hermes", "internlm", "jamba", "llama3_json",
    "llama4_json", "llama4_pythonic", "minimax", "mistral", "phi4_mini_json", "pythonic", "xlam",
)  # fmt: skip
FLAG_LISTS: dict[str, dict[str, tuple[str, ...]]] = {
    "v0.9.2": {
        "tool_call_parser": _V092_TOOL_PARSERS,
        "reasoning_parser": ("deepseek_r1", "granite", "qwen3"),
        "dtype": ("auto", "half", "float16", "bfloat16", "float", "float32"),
        "quantization": (
            "awq",
            "gptq",
            "fp8",
            "awq_marlin",
            "gptq_marlin",
            "bitsandbytes",
            "gguf",
            "compressed-tensors",
        ),
    },
}
FLAG_LISTS["v0.10.0"] = {
    **FLAG_LISTS["v0.9.2"],
    "tool_call_parser": (*_V092_TOOL_PARSERS, "glm45", "hunyuan_a13b", "kimi_k2", "qwen3_coder"),
}
#: the release of the role's default image (vllm_qwen3_image)
PINNED = "v0.9.2"
DTYPES = FLAG_LISTS[PINNED]["dtype"]
QUANTIZATIONS = FLAG_LISTS[PINNED]["quantization"]
TOOL_CALL_PARSERS = FLAG_LISTS[PINNED]["tool_call_parser"]
REASONING_PARSERS = FLAG_LISTS[PINNED]["reasoning_parser"]


def flag_lists(image: Any) -> tuple[str, str]:
    """(release whose lists apply, why) for an image reference."""
    tail = str(image or "").rsplit("/", 1)[-1]
    tag = tail.split("@", 1)[0].rsplit(":", 1)[1] if ":" in tail.split("@", 1)[0] else ""
    if tag in FLAG_LISTS:
        return tag, f"vLLM {tag}"
    return PINNED, f"vLLM {PINNED}, whose lists apply to {image} (known: {', '.join(FLAG_LISTS)})"


#: keys a model may carry, with the default used when neither the model nor the role sets one
MODEL_DEFAULTS: dict[str, Any] = {
    "served_model_names": None,  # -> [name]
    "tensor_parallel_size": None,  # -> len(gpus)
    "max_model_len": None,
    "dtype": "auto",
    "quantization": None,
    "enable_auto_tool_choice": True,
    "tool_call_parser": "hermes",
    "reasoning_parser": "qwen3",
    "extra_args": [],
    "env": {},
    "image": None,
    "load_timeout": 1200,
    "bind_address": "127.0.0.1",
    "hostname": None,
}
REQUIRED = ("name", "model", "port", "gpus", "gpu_memory_utilization")


class VllmSpecError(specs.SpecError):
    pass


def _model_problems(model: dict[str, Any], where: str, label: str) -> list[str]:
    """Every value that would break the compose file, the command line or the plan."""
    problems = [
        p
        for p in (
            specs.name_problem(model["name"], f"{where}.name"),
            specs.port_problem(model["port"], f"{where}.port"),
            specs.gpus_problem(model["gpus"], f"{where}.gpus"),
            specs.share_problem(model["gpu_memory_utilization"], f"{where}.gpu_memory_utilization"),
            specs.positive_int_problem(
                model["load_timeout"], f"{where}.load_timeout", "a positive number of seconds"
            ),
            specs.image_problem(model["image"], f"{where}.image (or vllm_qwen3_image)")
            if model["image"] is not None
            else None,
            specs.address_problem(model["bind_address"], f"{where}.bind_address"),
            specs.hostname_problem(model["hostname"], f"{where}.hostname"),
            specs.text_problem(model["model"], f"{where}.model"),
        )
        if p
    ]
    for key in ("tensor_parallel_size", "max_model_len"):
        if model[key] is not None:
            problem = specs.positive_int_problem(
                model[key], f"{where}.{key}", "a positive integer (e.g. 32768, not '32k')"
            )
            if problem:
                problems.append(problem)
    names = model["served_model_names"]
    if names is not None and (
        not isinstance(names, list) or not all(isinstance(n, str) and n.strip() for n in names)
    ):
        problems.append(f"{where}.served_model_names {names!r} must be a list of names")
    elif names:
        problems += [
            p for n in names if (p := specs.text_problem(n, f"{where}.served_model_names"))
        ]
    args = model["extra_args"]
    if not isinstance(args, list):
        problems.append(f"{where}.extra_args must be a list of arguments")
    else:
        problems += [
            p
            for i, a in enumerate(args)
            if (p := specs.text_problem(a, f"{where}.extra_args[{i}]"))
        ]
    problems += specs.env_problems(model["env"], f"{where}.env", ("VLLM_API_KEY", "HF_TOKEN"))
    return [f"{label}: {p}" for p in problems]


def normalize(
    models: list[dict[str, Any]],
    defaults: dict[str, Any] | None = None,
    variable: str = "vllm_qwen3_models",
) -> list[dict[str, Any]]:
    """Return the models with every key filled in and a ``gpu_wish`` for the GPU plan.

    ``defaults`` (role-level values such as the image or the tool parser) override
    :data:`MODEL_DEFAULTS`; keys set on a model override both. Raises :class:`VllmSpecError`
    naming the model and the variable on a missing key or an unsupported value.
    """
    if not isinstance(models, list) or not models:
        raise VllmSpecError(
            "invalid vLLM models", [f"{variable} must be a non-empty list of models"]
        )
    base = {**MODEL_DEFAULTS, **{k: v for k, v in (defaults or {}).items() if v is not None}}
    problems: list[str] = []
    names: dict[str, int] = {}
    result = []
    for i, where, label, model in specs.entries(
        models, variable, "model", MODEL_DEFAULTS, REQUIRED, base, problems
    ):
        name = str(model["name"])
        if name in names:
            problems.append(f"{label}: duplicate name, also {variable}[{names[name]}].name")
        names.setdefault(name, i)
        own = _model_problems(model, where, label)
        if own:
            problems += own
            continue
        model["gpus"] = [int(g) for g in model["gpus"]]
        model["port"] = int(model["port"])
        model["load_timeout"] = int(model["load_timeout"])
        if model["tensor_parallel_size"] is None:
            model["tensor_parallel_size"] = len(model["gpus"])
        model["tensor_parallel_size"] = int(model["tensor_parallel_size"])
        if model["max_model_len"] is not None:
            model["max_model_len"] = int(model["max_model_len"])
        model["served_model_names"] = list(model["served_model_names"] or [name])
        release, which = flag_lists(model["image"])
        lists = FLAG_LISTS[release]
        for key in ("dtype", "quantization", "tool_call_parser", "reasoning_parser"):
            value = model[key]
            if value not in (None, "") and value not in lists[key]:
                problems.append(
                    f"{label}: {where}.{key} '{value}' is not supported by {which}; use one of "
                    + ", ".join(lists[key])
                )
        if model["enable_auto_tool_choice"] and model["tool_call_parser"] in (None, ""):
            problems.append(
                f"{label}: {where}.tool_call_parser is empty while enable_auto_tool_choice is on; "
                f"{which} needs one of " + ", ".join(lists["tool_call_parser"])
            )
        share = float(model["gpu_memory_utilization"])
        model["gpu_wish"] = {
            "service": name,
            "source": where,
            "gpus": model["gpus"],
            "memory_share": share,
            "tensor_parallel_size": model["tensor_parallel_size"],
            "port": int(model["port"]),
            "bind_address": model["bind_address"],
        }
        result.append(model)
    if problems:
        raise VllmSpecError("invalid vLLM models", problems)
    return result


def command(model: dict[str, Any]) -> list[str]:
    """The server arguments (compose ``command:``) for one normalized model.

    The API key is never on the command line: the env file carries ``VLLM_API_KEY``.
    """
    args = [
        "--model", str(model["model"]),
        "--served-model-name", *[str(n) for n in model["served_model_names"]],
        "--host", str(model["bind_address"]),
        "--port", str(model["port"]),
        "--tensor-parallel-size", str(model["tensor_parallel_size"]),
        "--gpu-memory-utilization", f"{float(model['gpu_memory_utilization']):g}",
    ]  # fmt: skip
    if model.get("max_model_len"):
        args += ["--max-model-len", str(model["max_model_len"])]
    if model.get("dtype") and model["dtype"] != "auto":
        args += ["--dtype", str(model["dtype"])]
    if model.get("quantization"):
        args += ["--quantization", str(model["quantization"])]
    if model.get("enable_auto_tool_choice"):
        args += ["--enable-auto-tool-choice", "--tool-call-parser", str(model["tool_call_parser"])]
    if model.get("reasoning_parser"):
        args += ["--reasoning-parser", str(model["reasoning_parser"])]
    args += [str(a) for a in model.get("extra_args") or []]
    return args


def endpoints(models: list[dict[str, Any]], api_key: str) -> list[dict[str, Any]]:
    """endpoint_health checks proving each normalized model serves clients.

    Per model: every served name listed by ``/v1/models`` with the key, and 401 without it.
    """
    checks: list[dict[str, Any]] = []
    for model in models:
        host = model["bind_address"]
        host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
        url = f"http://{host}:{model['port']}/v1/models"
        for served in model["served_model_names"]:
            checks.append(
                {
                    "name": f"{model['name']} lists {served}",
                    "url": url,
                    "auth": {"type": "bearer", "token": api_key},
                    "json_contains": {"path": "data", "value": {"id": served}},
                }
            )
        checks.append({"name": f"{model['name']} refuses no key", "url": url, "status": [401]})
    return checks
