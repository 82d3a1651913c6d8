"""inventories/production.example as an admin finds it, and once filled in, through the first
play only (no connection: GPUs as declared, the model built on the controller).

As shipped, every placeholder is listed in one message before anything changes; filled in as the
README says, the model (GPU plan, Forge's checkpoint from the role default, the IIS certificates)
is accepted.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
EXAMPLE = ROOT / "inventories" / "production.example"
MODEL_TASK = "Build and check the stack model"


def model_play(inventory: Path, *args: str) -> dict:
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"),
        "ANSIBLE_STDOUT_CALLBACK": "ansible.posix.json",
    }
    done = subprocess.run(
        [str(BIN / "ansible-playbook"), "-i", str(inventory), "playbooks/stack_model.yml",
         "--check", "-e", "genai_discover_gpus=false", *args],
        cwd=ROOT, env=env, capture_output=True, text=True, check=False,
    )  # fmt: skip
    return json.loads(done.stdout)


def results(report: dict) -> dict[str, dict]:
    return {
        host: res
        for play in report["plays"]
        for task in play["tasks"]
        if task["task"]["name"] == MODEL_TASK
        or task["task"]["name"].startswith("Check the reverse proxy")
        for host, res in task["hosts"].items()
        if not res.get("skipped")
    }


def test_the_example_as_shipped_lists_its_placeholders() -> None:
    vault = EXAMPLE / "group_vars" / "vault.yml.example"
    found = results(model_play(EXAMPLE, "-e", f"@{vault}"))
    gpu = found["gpu-host"]
    assert gpu.get("failed")
    (line,) = [p for p in gpu["problems"] if p.startswith("placeholders of the example")]
    assert "ansible_host 'gpu-host.example.org'" in line
    assert (
        "forge_turbo_instances[0].checkpoint.sha256 '<sha256 of sd_xl_turbo_1.0_fp16.safetensors>'"
        in line
    )
    assert any("vault_genai_secret" in p and "placeholder" in p for p in gpu["problems"])
    iis = found["iis-host"]
    assert iis.get("failed") and any("<thumbprint>" in p for p in iis["problems"])


def filled_in(tmp_path: Path) -> Path:
    """inventories/production.example copied and filled in as the README says."""
    inventory = tmp_path / "production"
    shutil.copytree(EXAMPLE, inventory)  # the README's first step
    hosts = yaml.safe_load((inventory / "hosts.yml").read_text())
    children = hosts["all"]["children"]
    children["gpu_hosts"]["hosts"]["gpu-host"]["ansible_host"] = "gpu01.lab.myia.io"
    children["iis_hosts"]["hosts"]["iis-host"]["ansible_host"] = "proxy01.lab.myia.io"
    (inventory / "hosts.yml").write_text(yaml.safe_dump(hosts))
    gpu_vars = inventory / "group_vars" / "gpu_hosts.yml"
    gpu_vars.write_text(
        gpu_vars.read_text().replace("<sha256 of sd_xl_turbo_1.0_fp16.safetensors>", "ab" * 32)
    )
    iis_vars = inventory / "group_vars" / "iis_hosts.yml"
    text = iis_vars.read_text().replace(
        "<40-hex thumbprint of the *.myia.io certificate>", "A" * 40
    )
    iis_vars.write_text(text.replace("<thumbprint>", "B" * 40))
    (inventory / "group_vars" / "all").mkdir()
    (inventory / "group_vars" / "all" / "vault.yml").write_text(
        "vault_genai_secret: 7kQ2vN9xR4mT8pL3wZ6yB1cF5hJ0dG2sA9eU4iO7\nvault_iis_password: x\n"
    )
    return inventory


def test_the_example_filled_in_is_accepted(tmp_path: Path) -> None:
    found = results(model_play(filled_in(tmp_path)))
    assert not found["gpu-host"].get("failed"), found["gpu-host"].get("msg")
    assert not found["iis-host"].get("failed"), found["iis-host"].get("msg")
    model = found["gpu-host"]["model"]
    names = [s["name"] for s in model["services"]]
    assert names == [
        "qwen3-micro", "qwen3-mini", "qwen3-medium", "openai-gateway", "comfyui", "turbo", "main"
    ]  # fmt: skip
    gateway = model["specs"]["openai_gateway"][0]
    assert (gateway["port"], gateway["hostname"]) == (5100, "api.vllm.myia.io")
    assert gateway["served_model_names"] == ["qwen3-medium", "qwen3-micro", "qwen3-mini"]
    # published by IIS like the others, streamed unbuffered
    iis = found["iis-host"]["model"]["proxies"]["iis_reverse_proxy"]
    rule = next(r for r in iis if r["name"] == "openai-gateway")
    assert (rule["hostname"], rule["streaming"]) == ("api.vllm.myia.io", True)
    assert {g["index"]: g["memory_share"] for g in model["gpu_plan"]["gpus"]} == {
        0: 1.0, 1: 0.85, 2: 0.9
    }  # fmt: skip
    # every model pinned to a commit (issue #25), as "Show the GPU plan" prints it
    vllm = model["specs"]["vllm"]
    assert all(re.fullmatch(r"[0-9a-f]{40}", s["revision"] or "") for s in vllm), vllm
    table = model["gpu_plan"]["table"].splitlines()
    assert table[-4:] == ["service       model@revision"] + [
        f"{s['name']:<12}  {s['model']}@{s['revision'][:7]}" for s in vllm
    ]
    assert "unpinned" not in model["gpu_plan"]["table"]


def upstream_parse(specs: list[dict], image: str) -> list[dict]:
    """The server command the role renders for each model (``vllm_args``), parsed by the
    model's vLLM release's own ``make_arg_parser`` (from its PyPI sdist, cached by setup.sh)."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import vllm_grammar

    from genai_stack.project import Project

    vllm = Project(ROOT).module_util("vllm")
    release, _ = vllm.flag_lists(image)
    commands = [vllm.command(spec) for spec in specs]
    return vllm_grammar.parse_commands(release.lstrip("v"), commands)


def test_vllm_parses_what_the_role_renders_for_the_example_and_the_demo(tmp_path: Path) -> None:
    example = results(model_play(filled_in(tmp_path)))["gpu-host"]["model"]["specs"]["vllm"]
    demo = results(model_play(ROOT / "inventories" / "demo"))["gpu-host"]["model"]["specs"]["vllm"]
    assert [s["image"] for s in example] == ["vllm/vllm-openai:v0.34.0"] * 3
    for specs, image in ((example, "vllm/vllm-openai:v0.34.0"), (demo, demo[0]["image"])):
        parsed = upstream_parse(specs, image)
        assert [p["ok"] for p in parsed] == [True] * len(specs), parsed
        for spec, got in zip(specs, parsed, strict=True):
            args = got["args"]
            assert args["model"] == spec["model"]
            assert args["revision"] == spec["revision"] and spec["revision"]
            assert args["served_model_name"] == spec["served_model_names"]
            assert (args["host"], args["port"]) == (spec["bind_address"], spec["port"])
            assert args["tensor_parallel_size"] == spec["tensor_parallel_size"]
            assert args["tool_call_parser"] == spec["tool_call_parser"]
            assert args["reasoning_parser"] == spec["reasoning_parser"]
            assert args["enable_auto_tool_choice"] is True
            assert "api_key" not in args or args["api_key"] is None


@pytest.mark.parametrize("release", ["0.9.2", "0.10.0", "0.34.0"])
def test_vllm_refuses_what_the_first_play_refuses(release: str) -> None:
    """The grammar data and vLLM's own parser agree: extra args the first play accepts parse,
    those it refuses for a flag or a value count do not."""
    sys.path.insert(0, str(ROOT / "scripts"))
    import vllm_grammar

    from genai_stack.project import Project

    project = Project(ROOT)
    grammar = project.module_util("vllm").RELEASES[f"v{release}"]
    extras = [["--seed", "1"], ["--max_num_seqs", "8"], ["--no-such-flag"], ["--seed"],
              ["stray", "x"], ["--enforce-eager", "yes"], ["--served-model-name", "a", "b"]]  # fmt: skip
    base = ["--model", "m", "--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
    parsed = vllm_grammar.parse_commands(release, [[*base, *extra] for extra in extras])
    refused = [
        bool(project.module_util("argv_grammar").problems(
            extra, grammar["flags"], {}, "extra_args", release,
            underscores=grammar["underscores"], abbrev=grammar["allow_abbrev"],
        ))
        for extra in extras
    ]  # fmt: skip
    assert refused == [False, False, True, True, True, True, False]
    # from 0.10.0 the parser has an optional positional model_tag: a word after a switch is taken
    # as the model (api_server then ignores it, `vllm serve` serves it): refused up front
    stray_after_switch = release == "0.9.2"
    assert [not p["ok"] for p in parsed] == [
        False,
        False,
        True,
        True,
        True,
        stray_after_switch,
        False,
    ]
