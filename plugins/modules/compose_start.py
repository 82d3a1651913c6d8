# Copyright: (c) 2026, genai_stack team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: start compose services in GPU plan order, across projects."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: compose_start
short_description: Start compose services in GPU plan order, each once the services before it are healthy
version_added: "0.2.0"
description:
  - The start side of the role C(myia.genai_stack.compose_rollout), the compose engine of the
    service roles.
  - Each service of O(projects) starts (C(docker compose up -d --no-deps)) as soon as every
    service before it (O(projects[].services)) is healthy, whichever project holds it; a service
    before it that is in none of O(projects) is not started by this call and is not waited for.
    So a chain on one GPU starts one after the other while the other chains start at once,
    with no wave waiting for the slowest service of the wave before it.
  - With O(wait), it goes on until every service runs, healthy where it has a health check.
    A service fails when its container exits, turns unhealthy, or is not healthy within
    O(projects[].timeout) from its own start; the services after it are then not started.
    Without O(wait), it starts what can start now and returns (a later call with the same
    projects and O(started) goes on).
  - C(changed) when a service was started (a new or recreated container, or one that was not
    running); a running container that C(up) leaves as it is does not count.
author:
  - genai_stack team (@myia)
attributes:
  check_mode:
    support: full
    description: Starts nothing; reports which services do not run yet.
  diff_mode:
    support: none
    description: Starting containers changes no file.
options:
  projects:
    description: The compose projects, each with the services to start.
    type: list
    elements: dict
    required: true
    suboptions:
      project_dir:
        description: The project directory (its C(compose.yaml)).
        type: path
        required: true
      services:
        description:
          - The services to start, as name to the services (in any of O(projects)) that must be
            healthy before it starts.
        type: dict
        default: {}
      timeout:
        description: Seconds each service has, from its start, to become healthy.
        type: int
        default: 300
      pull:
        description: C(up)'s C(--pull) (V(policy) passes none, so compose's C(pull_policy) holds).
        type: str
        choices: [always, missing, never, policy]
        default: policy
      remove_orphans:
        description: Remove containers of services the compose file no longer has, at its first C(up).
        type: bool
        default: false
  started:
    description:
      - Services an earlier call started this run, as project directory to service names;
        waited for, not started again.
    type: dict
    default: {}
  wait:
    description: Wait until every service is healthy or failed (see the description).
    type: bool
    default: true
  poll:
    description: Seconds between two looks at the containers.
    type: float
    default: 0.5
"""

EXAMPLES = r"""
- name: Start the models in GPU plan order and wait until every one is healthy
  myia.genai_stack.compose_start:
    projects:
      - project_dir: /opt/genai/vllm
        remove_orphans: true
        timeout: 960
        services:
          qwen3-micro: []
          qwen3-mini: [qwen3-micro]
          qwen3-medium: []
      - project_dir: /opt/genai/forge
        services:
          turbo: [qwen3-medium]
  register: started
"""

RETURN = r"""
projects:
  description: Per project, in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    project_dir:
      description: The project directory.
      type: str
    started:
      description: Services started (by this call or an earlier one, see O(started)).
      type: list
      elements: str
    healthy:
      description: Services running, healthy where they have a health check.
      type: list
      elements: str
    failed:
      description: Services that failed, with why.
      type: dict
    pending:
      description: Services not started yet (without O(wait), or in check mode).
      type: list
      elements: str
    ok:
      description: No service of the project failed.
      type: bool
"""

import os
from typing import Any

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.myia.genai_stack.plugins.module_utils.compose_start import (
    Container,
    Schedule,
    parse_ps,
    run,
)

COMPOSE = "compose.yaml"


class Docker:
    """`docker compose ps` and `up` of the module's projects."""

    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.options = {p["project_dir"]: p for p in module.params["projects"]}

    def compose(self, path: str) -> list[str]:
        return ["docker", "compose", "-f", os.path.join(path, COMPOSE)]

    def ps(self, path: str) -> dict[str, Container]:
        rc, out, err = self.module.run_command(
            [*self.compose(path), "ps", "--all", "--format", "json"], cwd=path
        )
        if rc != 0:
            self.module.fail_json(msg=f"docker compose ps failed in {path}: {err.strip()}")
        return parse_ps(out)

    def up(self, path: str, services: list[str], first: bool) -> str:
        options = self.options[path]
        argv = [*self.compose(path), "up", "--detach", "--no-deps"]
        if options["pull"] != "policy":
            argv += ["--pull", options["pull"]]
        if first and options["remove_orphans"]:
            argv.append("--remove-orphans")
        rc, _out, err = self.module.run_command([*argv, *services], cwd=path)
        return "" if rc == 0 else f"docker compose up failed: {err.strip()}"


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "projects": {
                "type": "list",
                "elements": "dict",
                "required": True,
                "options": {
                    "project_dir": {"type": "path", "required": True},
                    "services": {"type": "dict", "default": {}},
                    "timeout": {"type": "int", "default": 300},
                    "pull": {
                        "type": "str",
                        "choices": ["always", "missing", "never", "policy"],
                        "default": "policy",
                    },
                    "remove_orphans": {"type": "bool", "default": False},
                },
            },
            "started": {"type": "dict", "default": {}},
            "wait": {"type": "bool", "default": True},
            "poll": {"type": "float", "default": 0.5},
        },
        supports_check_mode=True,
    )
    projects: list[dict[str, Any]] = module.params["projects"]
    started: dict[str, list[str]] = module.params["started"]
    try:
        schedule = Schedule.of(projects)
    except (TypeError, ValueError) as exc:
        module.fail_json(msg=f"projects: {exc}")
    docker = Docker(module)
    if module.check_mode:
        result = schedule.result()
        for entry in result:
            seen = docker.ps(entry["project_dir"])
            names = [
                s.name for s in schedule.services.values() if s.project == entry["project_dir"]
            ]
            entry["pending"] = [n for n in names if seen.get(n, {}).get("state") != "running"]
        module.exit_json(changed=any(e["pending"] for e in result), projects=result)
    result = run(
        schedule,
        docker.ps,
        docker.up,
        wait=module.params["wait"],
        started=started,
        poll=module.params["poll"],
    )
    changed = any(set(e["started"]) - set(started.get(e["project_dir"]) or []) for e in result)
    failed = {name: why for e in result for name, why in e["failed"].items()}
    if failed:
        module.fail_json(
            msg="; ".join(f"{name}: {why}" for name, why in failed.items()),
            changed=changed,
            projects=result,
        )
    module.exit_json(changed=changed, projects=result)


if __name__ == "__main__":
    main()
