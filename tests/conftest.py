"""Suite-wide rules.

A skipped test proves nothing: wherever the suite runs in full (``make test``, CI), a test that
skips because a tool is missing (docker, compose, chromium, openssl...) fails instead, naming
the reason. On a developer's machine without those tools, GENAI_ALLOW_SKIP=1 lets them skip.

The suite runs in pytest-xdist workers (scripts/test.sh), one work group at a time per worker:
each test file is a group, so a module's fixtures are set up once; a molecule scenario (both
distros, one instance name) and each production host are groups of their own. Groups run side by
side: every one has its own ports, names, compose projects and root directory on the shared
docker and loopback.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest
from xdist.scheduler import LoadScopeScheduling


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if (
        report.skipped
        and not hasattr(report, "wasxfail")
        and not os.environ.get("GENAI_ALLOW_SKIP")
    ):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        report.outcome = "failed"
        report.longrepr = (
            f"skipped where every test must run: {reason} "
            "(scripts/setup.sh installs what the suite needs; GENAI_ALLOW_SKIP=1 to skip locally)"
        )


def work_group(nodeid: str) -> str:
    """The xdist work unit of a test: its file; a molecule scenario (both distros, one instance
    name); one production host (the fixture's parameter id)."""
    path, _, name = nodeid.partition("::")
    param = name.partition("[")[2].rstrip("]")
    if path.endswith("tests/molecule/test_scenarios.py") and param:
        return f"molecule-{param.rsplit('-', 1)[0]}"
    if path.endswith("tests/integration/test_production_ssh.py") and param:
        return f"production-{param}"
    return path


class GroupScheduling(LoadScopeScheduling):
    """Whole work groups to one worker each (pytest-xdist's own loadgroup marks no longer reach
    its scheduler with pytest 9)."""

    def _split_scope(self, nodeid: str) -> str:
        return work_group(nodeid)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> GroupScheduling | None:
    if config.getvalue("dist") != "loadscope":
        return None
    return GroupScheduling(config, log)
