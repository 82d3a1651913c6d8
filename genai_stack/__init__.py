"""Python driver of the myia.genai_stack Ansible collection: runs its playbooks through
ansible-runner (:mod:`genai_stack.driver`), a CLI (:mod:`genai_stack.cli`) and a web panel
(:mod:`genai_stack.panel`)."""

from __future__ import annotations

from genai_stack.driver import Driver, RunHandle, RunRequest
from genai_stack.events import EventKind, FailedTask, HostStats, RunEvent, RunResult
from genai_stack.locks import HostBusy
from genai_stack.project import Project

__version__ = "0.1.0"

__all__ = [
    "Driver",
    "EventKind",
    "FailedTask",
    "HostBusy",
    "HostStats",
    "Project",
    "RunEvent",
    "RunHandle",
    "RunRequest",
    "RunResult",
]
