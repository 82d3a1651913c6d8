"""A run's artifacts (ansible-runner's ``<state>/artifacts/<run id>/``), kept without secrets.

ansible-runner records the command line and the whole environment of a run, and its events'
output; the driver masks the run's secret values there and drops what it cannot mask.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from genai_stack.secrets import MASK, Masker, is_sensitive_env

log = logging.getLogger(__name__)


def on_status(data: dict[str, Any], artifact_dir: Path, masker: Masker) -> None:
    """ansible-runner's status handler of a run."""
    # ansible-runner writes artifacts/<id>/command (argv, cwd, the whole environment) just
    # before 'running': rewrite it at once without sensitive environment values.
    if data.get("status") == "running":
        try:
            sanitize_command(artifact_dir / "command", masker)
        except OSError:
            log.exception("cannot sanitize %s", artifact_dir / "command")


def sanitize_command(path: Path, masker: Masker) -> None:
    """Mask the sensitive environment values and the secrets of a run's ``command`` record."""
    if not path.is_file():
        return
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError:
        return
    env = data.get("env")
    if isinstance(env, dict):
        data["env"] = {k: (MASK if is_sensitive_env(k) else v) for k, v in env.items()}
    data = masker.data(data)
    fd = os.open(path, os.O_WRONLY | os.O_TRUNC | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(data, handle)


def sanitize(artifact_dir: Path, masker: Masker) -> None:
    """Once the run has ended: its command record, its events and every other file."""
    if not artifact_dir.exists():
        return
    sanitize_command(artifact_dir / "command", masker)
    for partial in (artifact_dir / "job_events").glob("*-partial.json"):
        partial.unlink(missing_ok=True)
    masker.scrub_tree(artifact_dir)


def kept_runs(artifacts_dir: Path) -> list[Path]:
    """The runs whose artifacts are kept, oldest first."""
    if not artifacts_dir.is_dir():
        return []
    return sorted(
        (p for p in artifacts_dir.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime
    )
