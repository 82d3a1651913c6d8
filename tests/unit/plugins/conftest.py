"""Run the collection's modules in-process, as Ansible would run them on a host.

``run_module(module, args, check=False, diff=False)`` calls ``module.main()`` with ``args`` as its
ANSIBLE_MODULE_ARGS (in check mode, with diff) and returns a :class:`ModuleRun`: the exit code,
the JSON result and everything printed (stdout then stderr), which unpacks as
``code, result, output``. ``module_args(args, ...)`` only sets the arguments, for a test that makes
its own ``AnsibleModule``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

import pytest
from ansible.module_utils import _internal, basic


class ModuleRun(NamedTuple):
    rc: int
    result: dict[str, Any]
    output: str


SetArgs = Callable[..., None]
RunModule = Callable[..., ModuleRun]


@pytest.fixture
def module_args(monkeypatch: pytest.MonkeyPatch) -> SetArgs:
    def set_args(args: dict[str, Any], check: bool = False, diff: bool = False) -> None:
        module_args = {**args, "_ansible_check_mode": check, "_ansible_diff": diff}
        payload = json.dumps({"ANSIBLE_MODULE_ARGS": module_args}).encode()
        monkeypatch.setattr(basic, "_ANSIBLE_ARGS", payload)
        if hasattr(basic, "_ANSIBLE_PROFILE"):  # ansible-core >= 2.19
            monkeypatch.setattr(basic, "_ANSIBLE_PROFILE", "legacy")
        # as on a host: once a test in this process imported controller code, warn() would go
        # to the controller's display instead of the module's result (ansible-core >= 2.19)
        if hasattr(_internal, "is_controller"):
            monkeypatch.setattr(_internal, "is_controller", False)

    return set_args


@pytest.fixture
def run_module(module_args: SetArgs, capsys: pytest.CaptureFixture[str]) -> RunModule:
    def run(
        module: ModuleType, args: dict[str, Any], check: bool = False, diff: bool = False
    ) -> ModuleRun:
        module_args(args, check=check, diff=diff)
        with pytest.raises(SystemExit) as exited:
            module.main()
        captured = capsys.readouterr()
        return ModuleRun(
            int(exited.value.code or 0), json.loads(captured.out), captured.out + captured.err
        )

    return run
