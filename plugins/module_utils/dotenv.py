"""Read and write dotenv files the way docker compose and python-dotenv read them.

Shared by the ``to_dotenv`` filter and the modules that write env files. Values are quoted only
when needed:

* plain values (letters, digits and ``_./:@,+=%-``) are written bare;
* anything else without ``'``, ``\\`` or a newline is single-quoted, which both compose and
  python-dotenv take literally (no ``$`` interpolation: a bcrypt hash survives);
* the rest is double-quoted with ``\\``, ``"``, ``$`` and newlines escaped.
"""

from __future__ import annotations

import re

_BARE = re.compile(r"^[A-Za-z0-9_./:@,+=%-]*$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$")
_DQ_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\", "$": "$", "'": "'"}


def check_key(key: str) -> None:
    if not isinstance(key, str) or not _KEY.match(key):
        raise ValueError(
            f"invalid dotenv key {key!r}: use letters, digits and _, not starting with a digit"
        )


def quote(value: object) -> str:
    """Return ``value`` as it must appear after ``KEY=``."""
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    if _BARE.match(text):
        return text
    if "'" not in text and "\\" not in text and "\n" not in text and "\r" not in text:
        return f"'{text}'"
    escaped = (
        text.replace("\\", "\\\\")
        .replace('"', '\\"')
        .replace("$", "\\$")
        .replace("\n", "\\n")
        .replace("\r", "\\r")
    )
    return f'"{escaped}"'


def unquote(raw: str) -> str:
    """Inverse of :func:`quote` for one value as found after ``KEY=``."""
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] == "'":
        return raw[1:-1]
    if len(raw) >= 2 and raw[0] == raw[-1] == '"':
        out: list[str] = []
        body = raw[1:-1]
        i = 0
        while i < len(body):
            char = body[i]
            if char == "\\" and i + 1 < len(body):
                nxt = body[i + 1]
                out.append(_DQ_ESCAPES.get(nxt, "\\" + nxt))
                i += 2
                continue
            out.append(char)
            i += 1
        return "".join(out)
    # bare value: an inline comment starts at " #"
    return re.split(r"\s+#", raw, maxsplit=1)[0].strip()


def parse(text: str) -> dict[str, str]:
    """Return the key/value pairs of a dotenv text (comments and blank lines ignored)."""
    values: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _LINE.match(line)
        if match:
            values[match.group(1)] = unquote(match.group(2))
    return values


def render(values: dict[str, object], header: str | None = None) -> str:
    """Render a mapping as a dotenv text, keys in the given order."""
    lines = [f"# {line}" for line in header.splitlines()] if header else []
    for key, value in values.items():
        check_key(key)
        lines.append(f"{key}={quote(value)}")
    return "\n".join(lines) + "\n"


def update(text: str, values: dict[str, object]) -> tuple[str, list[str]]:
    """Set ``values`` in an existing dotenv text, keeping every other line and comment.

    Returns the new text and the keys whose value changed (added keys included), in order.
    """
    current = parse(text)
    changed = [k for k, v in values.items() if current.get(k) != ("" if v is None else _as_text(v))]
    if not changed:
        return text, []
    pending = {k: values[k] for k in changed}
    out: list[str] = []
    for line in text.splitlines():
        match = _LINE.match(line) if not line.lstrip().startswith("#") else None
        if match and match.group(1) in pending:
            key = match.group(1)
            out.append(f"{key}={quote(pending.pop(key))}")
        else:
            out.append(line)
    for key, value in pending.items():
        check_key(key)
        out.append(f"{key}={quote(value)}")
    return "\n".join(out) + "\n", changed


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
