"""Compose engine figures (#14): cold deploy vs the GPU critical path, and needless recreations.

1. Cold deploy. The stand-ins get load times through their STANDIN_LOAD_SECONDS knob, passed by
   the roles' own per-service settings (vllm_qwen3_models[].env, forge_turbo_instances[].env,
   comfyui_qwen_auth_env) in an extra-vars file this bench writes. The demo is taken down
   (`make demo-down`), then site.yml deploys it from nothing, timed. The critical path is the
   longest chain of the stack model's global GPU plan (genai_stack.gpu_plan.services[*].after:
   the services a service waits for on a shared GPU), each link costing its load time; the
   ratio cold site.yml / critical path is printed.
2. Needless recreations. After the cold deploy, each converge below records every container of
   the demo's three compose projects before and after (docker inspect: Id, StartedAt) and prints
   the containers recreated (Id changed) against those that had to be, the restarts (same Id,
   new StartedAt), and the count of needless recreations. Converges, cumulative: a no-change
   re-run (control), (a) one vLLM model's max_model_len (only its command line changes), (b)
   playbooks/rotate_tokens.yml (the demo's secret is rotated for good), (c) one Forge instance
   on a retagged image (local/forge-standin:bench).

At the end the demo is deployed again in its normal configuration, or taken down when it was not
up at the start; the bench tag is removed. Prints figures only: no assertion on time or counts.
Usage: .venv/bin/python bench/compose_engine_bench.py [--plan-only]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from typing import Any

import yaml
from site_rerun_bench import BIN, DEMO_ROOT, PROJECTS, ROOT, profiled, slowest_tasks, timed

# Load times of the stand-ins, seconds, by service name in the GPU plan.
LOAD_SECONDS = {"qwen3-micro": 20, "qwen3-mini": 30, "qwen3-medium": 40, "comfyui": 10, "turbo": 15}
GROUP_VARS = ROOT / "playbooks" / "group_vars" / "all"
ONE_MODEL, SHORTER_LEN = "qwen3-micro", 16384  # scenario (a)
ONE_INSTANCE, BENCH_TAG = "turbo", "bench"  # scenario (c)
FORGE_IMAGE = "local/forge-standin"
VLLM = {f"vllm/{name}" for name in ("qwen3-micro", "qwen3-mini", "qwen3-medium")}
FORGE = {f"forge/{ONE_INSTANCE}"}

# (title, playbook, settings, containers that must be recreated); each converge keeps the
# settings of the ones before it, so a scenario changes one thing against the previous state.
SCENARIOS: list[tuple[str, str, dict[str, Any], set[str]]] = [
    ("no-change re-run (control)", "site.yml", {}, set()),
    (f"(a) one-model change: {ONE_MODEL} max_model_len -> {SHORTER_LEN}", "site.yml",
     {"max_model_len": SHORTER_LEN}, {f"vllm/{ONE_MODEL}"}),
    ("(b) token rotation: playbooks/rotate_tokens.yml", "playbooks/rotate_tokens.yml", {},
     VLLM | FORGE),
    (f"(c) one-service image bump: {ONE_INSTANCE} on {FORGE_IMAGE}:{BENCH_TAG}", "site.yml",
     {"forge_tag": BENCH_TAG}, FORGE),
]  # fmt: skip


class BenchError(RuntimeError):
    """A step of the bench failed; the message carries its output."""


def bench_vars(max_model_len: int | None = None, forge_tag: str | None = None) -> dict[str, Any]:
    """Extra vars: the demo's models and instances with load times, and a scenario's change."""
    models = yaml.safe_load((GROUP_VARS / "vllm_qwen3.yml").read_text())["vllm_qwen3_models"]
    forge = yaml.safe_load((GROUP_VARS / "forge_turbo.yml").read_text())["forge_turbo_instances"]
    for item in models + forge:
        item["env"] = {
            **item.get("env", {}),
            "STANDIN_LOAD_SECONDS": str(LOAD_SECONDS[item["name"]]),
        }
        if item["name"] == ONE_MODEL and max_model_len:
            item["max_model_len"] = max_model_len
        if item["name"] == ONE_INSTANCE and forge_tag:
            item["image_tag"] = forge_tag
    return {
        "vllm_qwen3_models": models,
        "forge_turbo_instances": forge,
        "comfyui_qwen_auth_env": {"STANDIN_LOAD_SECONDS": str(LOAD_SECONDS["comfyui"])},
    }


def playbook(name: str, extra: dict[str, Any] | None, env: dict[str, str]) -> tuple[float, str]:
    """Run a playbook on the demo host (extra vars from a file); fail with its output."""
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="bench-vars-") as handle:
        cmd = [str(BIN / "ansible-playbook"), name, "-l", "gpu-host"]
        if extra is not None:
            json.dump(extra, handle)
            handle.flush()
            cmd += ["-e", f"@{handle.name}"]
        seconds, done = timed(cmd, env)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(cmd)} failed:\n{done.stdout[-6000:]}\n{done.stderr[-2000:]}")
    return seconds, done.stdout


def demo_down(env: dict[str, str]) -> None:
    """`make demo-down`: the three projects taken down (files kept)."""
    done = subprocess.run(["make", "-s", "demo-down"], cwd=ROOT, env=env,
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"make demo-down failed:\n{done.stdout[-4000:]}\n{done.stderr[-2000:]}")


def gpu_plan(extra: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    """genai_stack.gpu_plan of the demo with ``extra``, from playbooks/stack_model.yml."""
    env = {**env, "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.json"}
    _, stdout = playbook("playbooks/stack_model.yml", extra, env)
    for task in json.loads(stdout)["plays"][0]["tasks"]:
        facts = task["hosts"].get("gpu-host", {}).get("ansible_facts", {})
        if "genai_stack" in facts:
            return facts["genai_stack"]["gpu_plan"]
    raise BenchError("playbooks/stack_model.yml set no genai_stack")


def critical_path(services: dict[str, Any]) -> tuple[float, list[str]]:
    """The longest chain of the plan's `after` links, each service costing its load time."""
    best: dict[str, tuple[float, list[str]]] = {}

    def chain(name: str) -> tuple[float, list[str]]:
        if name not in best:
            before = [chain(a) for a in services[name]["after"]]
            seconds, links = max(before, key=lambda c: c[0], default=(0.0, []))
            best[name] = (seconds + LOAD_SECONDS.get(name, 0), [*links, name])
        return best[name]

    return max((chain(name) for name in services), key=lambda c: c[0])


def stamp(text: str) -> float:
    """Epoch seconds of a docker timestamp (nanoseconds cut to microseconds)."""
    found = re.fullmatch(r"(.*T\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-].*)", text)
    if not found:
        raise BenchError(f"unexpected docker timestamp {text!r}")
    zone = "+00:00" if found[3] == "Z" else found[3]
    return datetime.fromisoformat(found[1] + (found[2] or ".0")[:7] + zone).timestamp()


def containers() -> dict[str, dict[str, Any]]:
    """The demo's compose containers as project/service -> Id, Created, StartedAt, Running."""
    ids: list[str] = []
    for project in PROJECTS:
        listed = subprocess.run(
            ["docker", "ps", "-aq", "--no-trunc", "--filter",
             f"label=com.docker.compose.project={project}", "--filter",
             f"label=com.docker.compose.project.working_dir={DEMO_ROOT / project}"],
            capture_output=True, text=True, check=True,
        )  # fmt: skip
        ids += listed.stdout.split()
    if not ids:
        return {}
    inspected = subprocess.run(
        ["docker", "inspect", *ids], capture_output=True, text=True, check=True
    )
    found = {}
    for item in json.loads(inspected.stdout):
        labels = item["Config"]["Labels"]
        key = f"{labels['com.docker.compose.project']}/{labels['com.docker.compose.service']}"
        found[key] = {
            "id": item["Id"],
            "created": item["Created"],
            "started": item["State"]["StartedAt"],
            "running": item["State"]["Running"],
        }
    return found


def compare(before: dict[str, Any], after: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Containers recreated (new Id, or new) and restarted (same Id, new StartedAt)."""
    recreated = {k for k, v in after.items() if k not in before or before[k]["id"] != v["id"]}
    restarted = {
        k for k, v in after.items()
        if k not in recreated and before[k]["started"] != v["started"]
    }  # fmt: skip
    return recreated, restarted


def names(keys: set[str]) -> str:
    return ", ".join(sorted(keys)) or "none"


def cold_deploy(env: dict[str, str]) -> None:
    extra = bench_vars()
    plan = gpu_plan(extra, env)
    path_seconds, chain = critical_path(plan["services"])
    demo_down(env)
    if containers():
        raise BenchError("make demo-down left demo containers")
    start = time.time()
    cold, stdout = playbook("site.yml", extra, profiled(env, 10))

    print("== 1. cold deploy vs the GPU critical path")
    print("load times (STANDIN_LOAD_SECONDS): "
          + ", ".join(f"{k} {v} s" for k, v in LOAD_SECONDS.items()))  # fmt: skip
    print("GPU plan (service: waits for): "
          + "; ".join(f"{k}: {', '.join(v['after']) or '-'}" for k, v in plan["services"].items()))  # fmt: skip
    print(f"site.yml cold (from demo-down): {cold:.2f} s")
    print(f"critical path: {path_seconds:.2f} s  ({' -> '.join(chain)})")
    print(
        f"ratio site.yml cold / critical path: {cold / path_seconds:.2f}x  (issue target <= 1.1x)"
    )
    print("container start times after the site.yml start (docker inspect Created / StartedAt):")
    for key, c in sorted(containers().items(), key=lambda kv: kv[1]["started"]):
        print(f"  {key:20} created +{stamp(c['created']) - start:6.1f} s  "
              f"started +{stamp(c['started']) - start:6.1f} s")  # fmt: skip
    print("slowest tasks of the cold run (profile_tasks):")
    for line in slowest_tasks(stdout, 10):
        print("  " + line)


def recreations(env: dict[str, str]) -> int:
    print("== 2. needless recreations (container Id changed; restarts keep the Id)")
    settings: dict[str, Any] = {}
    needless_total = 0
    for title, name, change, expected in SCENARIOS:
        settings.update(change)
        before = containers()
        seconds, _ = playbook(name, bench_vars(**settings), env)
        recreated, restarted = compare(before, containers())
        needless, missing = recreated - expected, expected - recreated
        needless_total += len(needless)
        print(f"{title}  [{name}, {seconds:.1f} s]")
        print(f"  recreated:           {names(recreated)}")
        print(f"  had to be recreated: {names(expected)}")
        print(f"  restarted (same Id): {names(restarted)}")
        if missing:
            print(f"  NOT recreated though they had to be: {names(missing)}")
        print(f"  needless recreations: {len(needless)}  {names(needless) if needless else ''}")
    print(f"needless recreations, all converges: {needless_total}  (issue target 0)")
    return needless_total


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--plan-only", action="store_true",
                        help="print the critical path of the GPU plan; deploy nothing")  # fmt: skip
    args = parser.parse_args()
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg")}
    if args.plan_only:
        seconds, chain = critical_path(gpu_plan(bench_vars(), env)["services"])
        print(f"critical path: {seconds:.2f} s  ({' -> '.join(chain)})")
        return 0

    was_up = any(c["running"] for c in containers().values())
    failed = False
    try:
        subprocess.run(["docker", "tag", f"{FORGE_IMAGE}:latest", f"{FORGE_IMAGE}:{BENCH_TAG}"],
                       check=True)  # fmt: skip
        cold_deploy(env)
        recreations(env)
    except (BenchError, subprocess.CalledProcessError) as error:
        print(f"bench failed: {error}")
        failed = True
    finally:
        try:
            if was_up:
                print("demo was up at the start: deployed again in its normal configuration")
                playbook("site.yml", None, env)
            else:
                print("demo was not up at the start: taken down again (make demo-down)")
                demo_down(env)
        except BenchError as error:
            print(f"restoring the demo failed: {error}")
            failed = True
        subprocess.run(["docker", "image", "rm", f"{FORGE_IMAGE}:{BENCH_TAG}"],
                       capture_output=True, check=False)  # fmt: skip
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
