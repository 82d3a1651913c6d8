"""The registry of service kinds: every module of :mod:`kinds` that exports ``KIND``.

Nothing else keeps a list of kinds: :mod:`stack_model`, :mod:`services` and the playbooks read
:data:`KINDS`. A new kind is a new module in ``kinds/`` (and its role). Pure Python, no Ansible
import.
"""

from __future__ import annotations

import importlib
import pkgutil

from ansible_collections.myia.genai_stack.plugins.module_utils import kinds
from ansible_collections.myia.genai_stack.plugins.module_utils.kinds import Kind

__all__ = ["KINDS", "Kind"]


def _discover() -> dict[str, Kind]:
    found: list[Kind] = []
    for info in pkgutil.iter_modules(kinds.__path__):
        module = importlib.import_module(f"{kinds.__name__}.{info.name}")
        kind = getattr(module, "KIND", None)
        if isinstance(kind, Kind):
            found.append(kind)
    names = [k.name for k in found]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"service kinds defined twice: {', '.join(duplicated)}")
    return {k.name: k for k in sorted(found, key=lambda k: (k.order, k.name))}


#: kind name -> its :class:`Kind`, in their order
KINDS: dict[str, Kind] = _discover()
