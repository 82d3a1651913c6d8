# Copyright: (c) 2025, genai_stack team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action: build and check the stack model on the controller (documented in modules/stack_model)."""

from __future__ import annotations

import os
from typing import Any

from ansible.plugins.action import ActionBase

from ansible_collections.myia.genai_stack.plugins.module_utils import stack_model

_ROLES_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "roles")
_MISSING = object()


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc).strip()
    return " ".join(text.splitlines()[:2]) if text else type(exc).__name__


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _requires_connection = False
    _VALID_ARGS = frozenset(("kinds", "gpus", "ceiling", "fact", "services"))

    def _role_defaults(self, roles: list[str]) -> dict[str, Any]:
        merged: dict[str, Any] = {}
        for role in roles:
            path = os.path.join(_ROLES_DIR, role, "defaults", "main.yml")
            if os.path.isfile(path):
                merged.update(self._loader.load_from_file(path, trusted_as_template=True) or {})
        return merged

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        args = self._task.args
        kinds = args.get("kinds")
        fact = args.get("fact", "genai_stack")
        groups = list(task_vars.get("group_names") or [])
        try:
            names = stack_model.variables(kinds, groups)
            available = {**self._role_defaults(stack_model.roles(kinds, groups)), **task_vars}
        except stack_model.StackModelError as exc:
            return {**result, "failed": True, "msg": str(exc), "problems": exc.problems}
        templar = self._templar.copy_with_new_env(available_variables=available)

        problems: list[str] = []
        values: dict[str, Any] = {}
        for name in names:
            if name not in available:
                values[name] = None
                continue
            try:
                values[name] = templar.resolve_variable_expression(name)
            except Exception as exc:
                problems.append(f"{name}: cannot be evaluated: {_first_line(exc)}")
                values[name] = None

        def evaluate(name: str, default: Any) -> Any:
            if name not in available:
                return default
            try:
                return templar.resolve_variable_expression(name)
            except Exception as exc:
                problems.append(f"{name}: cannot be evaluated: {_first_line(exc)}")
                return default

        gpus = args.get("gpus")
        if gpus is None:
            gpus = evaluate("genai_gpus_discovered", None) or evaluate("genai_gpus", [])
        ceiling = args.get("ceiling")
        if ceiling is None:
            ceiling = evaluate("genai_gpu_share_ceiling", 1.0)
        try:
            ceiling = float(ceiling)
        except (TypeError, ValueError):
            problems.append(f"genai_gpu_share_ceiling {ceiling!r} must be a number such as 1.0")
            ceiling = 1.0
        if not isinstance(gpus, list):
            problems.append(f"genai_gpus {gpus!r} must be a list of GPUs ({{index: 0}}, ...)")
            gpus = []

        try:
            model = stack_model.build(
                values, gpus, ceiling, kinds, groups, problems, args.get("services")
            )
        except stack_model.StackModelError as exc:
            return {
                **result,
                "failed": True,
                "problems": exc.problems,
                "msg": "The stack is not valid; nothing was changed. Fix:\n- "
                + "\n- ".join(exc.problems),
            }
        result.update(changed=False, model=model)
        if fact:
            result["ansible_facts"] = {fact: model}
        return result
