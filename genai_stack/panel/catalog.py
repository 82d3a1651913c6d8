"""What the panel offers to run: each playbook with one line on what it does, whether it
changes hosts (destructive), whether it asks for a confirmation, and its extra vars.

The project's playbooks the panel knows nothing about (a test project's, a site's own) are
offered as they are; the building blocks other playbooks import (``stack_model``, ``secret``,
``gpu_host``) are not offered at all.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml


@dataclass(frozen=True)
class PlaybookInfo:
    name: str
    does: str
    #: changes hosts (deploys, restarts, rewrites credentials or files)
    destructive: bool = False
    #: read-only: recorded and shown as a check, never as an apply
    read_only: bool = False
    #: the panel always runs it in check mode (status.yml expects it)
    force_check: bool = False

    @property
    def confirm(self) -> bool:
        """A confirmation is asked before it starts."""
        return self.destructive

    def label(self) -> str:
        mark = " [changes hosts]" if self.destructive else " [read-only]" if self.read_only else ""
        return f"{self.name} \u2014 {self.does}{mark}"


KNOWN: dict[str, PlaybookInfo] = {
    p.name: p
    for p in (
        PlaybookInfo(
            "validate",
            "prove every service answers its clients (health, models, chat, auth); writes a report",
            read_only=True,
        ),
        PlaybookInfo(
            "status",
            "read what runs now: health, containers, GPU memory",
            read_only=True,
            force_check=True,
        ),
        PlaybookInfo(
            "site",
            "deploy the whole stack: services, client files, reverse proxy",
            destructive=True,
        ),
        PlaybookInfo(
            "update", "roll out a change one service at a time, each health-gated", destructive=True
        ),
        PlaybookInfo(
            "restore", "put back a backup's files (pick backup_from below)", destructive=True
        ),
        PlaybookInfo(
            "rotate_tokens",
            "new secret; every credential and client .env rewritten",
            destructive=True,
        ),
        PlaybookInfo(
            "backup", "archive the configs (and the vault-encrypted secrets) on the controller"
        ),
        PlaybookInfo("logs", "tail the container logs and collect them on the controller"),
        PlaybookInfo(
            "token_sync",
            "rewrite the client .env files and prove every credential",
            destructive=True,
        ),
        PlaybookInfo(
            "reverse_proxy", "render and reload the reverse proxy (nginx or IIS)", destructive=True
        ),
    )
}
#: imported by the other playbooks, or read by a page of their own (usage: the Usage page);
#: never run on their own from the panel's run form
INTERNAL = frozenset({"stack_model", "secret", "gpu_host", "usage"})

EXTRA_VARS_MAX = 2000
_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
_TEMPLATE = re.compile(r"\{\{|\{%|\{#")
_STAMP = re.compile(r"^[A-Za-z0-9_.:+-]{1,80}$")


def info(name: str) -> PlaybookInfo:
    return KNOWN.get(name) or PlaybookInfo(name, "a playbook of this project")


def offered(names: list[str]) -> list[PlaybookInfo]:
    """The playbooks the run form lists: known ones first (in their order), then the others."""
    present = [n for n in names if n not in INTERNAL]
    known = [KNOWN[n] for n in KNOWN if n in present]
    return known + [info(n) for n in present if n not in KNOWN]


def is_read_only(name: str) -> bool:
    return info(name).read_only


class ExtraVarsError(ValueError):
    """Extra vars the panel refuses, with the reason."""


def parse_extra_vars(text: str) -> dict[str, Any]:
    """A YAML or JSON mapping (or ``key=value`` per line); no ``ansible_*`` name, no template."""
    text = text.strip()
    if not text:
        return {}
    if len(text) > EXTRA_VARS_MAX:
        raise ExtraVarsError(
            f"the extra vars are too long ({len(text)} characters, at most {EXTRA_VARS_MAX})"
        )
    data = _parse_mapping(text)
    for key, value in data.items():
        if not isinstance(key, str) or not _VAR_NAME.match(key):
            raise ExtraVarsError(f"'{key}' is not a variable name (letters, digits, _)")
        if key.startswith("ansible_"):
            raise ExtraVarsError(f"'{key}': connection variables (ansible_*) are not set here")
        if _TEMPLATE.search(json.dumps(value)):
            raise ExtraVarsError(f"'{key}': templates ({{{{ }}}}, {{% %}}) are not accepted")
    return data


def _parse_mapping(text: str) -> dict[str, Any]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if all("=" in line and ":" not in line.split("=", 1)[0] for line in lines):
        return {k.strip(): v.strip() for k, v in (line.split("=", 1) for line in lines)}
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = getattr(exc, "problem", None) or "not YAML"
        raise ExtraVarsError(f"the extra vars are not a YAML or JSON mapping ({problem})") from exc
    if not isinstance(data, dict):
        raise ExtraVarsError("the extra vars must be a mapping: name: value, one per line")
    return data


def backups(root: Path, inventories: list[Path] | None = None) -> list[str]:
    """The backup stamps that exist (``<root>/backups/<inventory>/<host>/<stamp>/``) for the
    panel's inventories (each named by its directory, as ``inventory_dir``; every inventory's
    when none is named), newest first."""
    base = root / "backups"
    if not base.is_dir():
        return []
    names = {p.parent.name if p.is_file() else p.name for p in inventories or []}
    chosen = [base / n for n in sorted(names)] if names else list(base.iterdir())
    stamps = {
        stamp.name
        for inventory in chosen
        if inventory.is_dir()
        for host in inventory.iterdir()
        if host.is_dir()
        for stamp in host.iterdir()
        if stamp.is_dir() and _STAMP.match(stamp.name)
    }
    return sorted(stamps, reverse=True)
