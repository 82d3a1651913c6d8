"""Reading a list-of-mappings variable (vLLM models, Forge instances) the same way everywhere."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def entries(
    items: list[Any],
    variable: str,
    noun: str,
    known: Any,
    required: Any,
    base: dict[str, Any],
    problems: list[str],
) -> Iterator[tuple[int, str, str, dict[str, Any]]]:
    """Yield ``(index, where, label, entry)`` for each usable entry of ``variable``.

    ``entry`` is ``base`` overlaid with the entry's non-null keys. Entries that are not mappings
    or lack a required key are skipped; those problems, and unknown keys, go to ``problems``,
    each naming the entry (``label``) and the variable (``where``).
    """
    for i, raw in enumerate(items):
        where = f"{variable}[{i}]"
        if not isinstance(raw, dict):
            problems.append(f"{where} must be a mapping")
            continue
        label = f"{noun} '{raw.get('name', '?')}' ({where})"
        unknown = sorted(set(raw) - set(known) - set(required))
        if unknown:
            problems.append(f"{label}: unknown key(s) {', '.join(unknown)}")
        missing = [k for k in required if raw.get(k) in (None, "", [])]
        if missing:
            problems.append(f"{label}: missing {', '.join(f'{where}.{k}' for k in missing)}")
            continue
        yield i, where, label, {**base, **{k: v for k, v in raw.items() if v is not None}}
