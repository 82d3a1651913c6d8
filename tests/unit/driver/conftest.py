"""Fixtures of the driver tests: real ansible-runner runs of the playbooks beside this file."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from genai_stack.driver import Driver, RunRequest
from genai_stack.project import Project

HERE = Path(__file__).resolve().parent
PLAYBOOKS = HERE / "playbooks"
INVENTORY = PLAYBOOKS / "hosts.yml"
ROOT = HERE.parents[2]


@pytest.fixture
def driver(tmp_path: Path) -> Driver:
    return Driver(Project(ROOT), state_dir=tmp_path / "state", keep_artifacts=3)


def request_for(name: str, **kwargs: Any) -> RunRequest:
    """A request for ``playbooks/<name>.yml`` on the test inventory, with this interpreter."""
    extra = dict(kwargs.pop("extra_vars", None) or {})
    extra.setdefault("ansible_python_interpreter", sys.executable)
    return RunRequest(
        playbook=str(PLAYBOOKS / f"{name}.yml"),
        inventory=str(INVENTORY),
        extra_vars=extra,
        **kwargs,
    )


@pytest.fixture
def make_request() -> Callable[..., RunRequest]:
    return request_for
