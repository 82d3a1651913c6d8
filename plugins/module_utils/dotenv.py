"""Read and write dotenv files the way docker compose and python-dotenv read them.

Shared by the ``to_dotenv`` filter and the modules that write env files. Values are quoted only
when needed:

* plain values (letters, digits and ``_./:@,+=%-``) are written bare;
* anything else without ``'``, ``\\`` or a newline is single-quoted, which both compose and
  python-dotenv take literally (no ``$`` interpolation: a bcrypt hash survives);
* the rest is double-quoted with ``\\``, ``"``, ``$`` and newlines escaped.

Every value reads back the same through python-dotenv too (the notebooks' reader), except one
holding ``'`` or ``\\`` or a line break *and* ``$``: python-dotenv keeps the ``\\$`` that compose
and sh need, and expands ``${NAME}`` even when quoted. Lines are split on ``\\n`` only, so form
feeds and Unicode line separators stay inside their value.

Reading accepts what people write by hand too: ``export`` prefixes, comments after a value,
quoted values spanning lines, repeated keys (the last wins). :func:`update` rewrites only the
assignments whose value changes and keeps every other line of the text.
"""

from __future__ import annotations

import re

_BARE = re.compile(r"^[A-Za-z0-9_./:@,+=%-]*$")
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_LINE = re.compile(r"^(\s*(?:export\s+)?)([A-Za-z_][A-Za-z0-9_.-]*)\s*=\s*(.*)$")
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
    """Inverse of :func:`quote` for one value as found after ``KEY=`` (a comment may follow)."""
    value, _, _ = _read_value(raw.strip(), [], 0)
    return value


class Entry:
    """One ``KEY=value`` assignment of a dotenv text, possibly spanning several lines."""

    __slots__ = ("comment", "first", "key", "last", "prefix", "value")

    def __init__(
        self, key: str, value: str, prefix: str, comment: str, first: int, last: int
    ) -> None:
        self.key = key
        self.value = value
        self.prefix = prefix  # leading white space and "export ", kept on rewrite
        self.comment = comment  # what followed the value on its last line (" # note"), kept
        self.first = first  # index of its first line
        self.last = last  # index of its last line (> first for a multi-line quoted value)


def _lines(text: str) -> list[str]:
    """Lines split on \\n (and \\r\\n) only, as dotenv readers do: form feeds, vertical tabs and
    Unicode line separators inside a value are part of it (str.splitlines would cut there)."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [line[:-1] if line.endswith("\r") else line for line in lines]


def entries(text: str) -> list[Entry]:
    """Every assignment of ``text`` in order, duplicates included (the last one wins)."""
    lines = _lines(text)
    found: list[Entry] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        match = None if line.lstrip().startswith("#") else _LINE.match(line)
        if not match:
            index += 1
            continue
        value, last, comment = _read_value(match.group(3), lines, index)
        found.append(Entry(match.group(2), value, match.group(1), comment, index, last))
        index = last + 1
    return found


def parse(text: str) -> dict[str, str]:
    """Return the key/value pairs of a dotenv text (comments and blank lines ignored).

    Single-quoted values are literal, double-quoted ones take backslash escapes; both may span
    lines. A ``#`` after white space ends a bare value. When a key repeats, the last one wins, as
    in docker compose and python-dotenv.
    """
    return {entry.key: entry.value for entry in entries(text)}


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
    A changed key is rewritten in place, on every line that assigns it (so a duplicate cannot
    shadow the new value), keeping its ``export`` prefix and trailing comment; new keys are
    appended. The text is returned unchanged when no value changes. CRLF line ends are kept.
    """
    for key in values:
        check_key(key)
    found = entries(text)
    current = {entry.key: entry.value for entry in found}
    changed = [k for k, v in values.items() if current.get(k) != _as_text(v)]
    if not changed:
        return text, []
    newline = "\r\n" if "\r\n" in text else "\n"
    starts = {entry.first: entry for entry in found if entry.key in changed}
    lines = _lines(text)
    out: list[str] = []
    index = 0
    while index < len(lines):
        entry = starts.get(index)
        if entry is None:
            out.append(lines[index])
            index += 1
            continue
        out.append(f"{entry.prefix}{entry.key}={quote(values[entry.key])}{entry.comment}")
        index = entry.last + 1
    present = {entry.key for entry in found}
    out.extend(f"{key}={quote(values[key])}" for key in changed if key not in present)
    return newline.join(out) + newline, changed


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _read_value(rest: str, lines: list[str], index: int) -> tuple[str, int, str]:
    """Read the value that starts with ``rest`` on line ``index`` of ``lines``.

    Returns (value, index of its last line, what follows the value on that line).
    """
    if rest[:1] in ("'", '"'):
        quote_char = rest[0]
        body = rest[1:]
        last = index
        while True:
            end = _closing_quote(body, quote_char)
            if end >= 0:
                tail = body[end + 1 :]
                if not tail.strip() or tail.lstrip().startswith("#"):
                    raw = body[:end]
                    value = raw if quote_char == "'" else _unescape(raw)
                    return value, last, tail.rstrip()
                break  # text after the closing quote: not a quoted value
            if last + 1 >= len(lines):
                break  # never closed: read the line as a bare value
            last += 1
            body += "\n" + lines[last]
    parts = re.split(r"(\s+#.*)$", rest, maxsplit=1)
    value = parts[0].strip()
    comment = parts[1] if len(parts) > 1 else ""
    return value, index, comment.rstrip()


def _closing_quote(body: str, quote_char: str) -> int:
    if quote_char == "'":
        return body.find("'")
    i = 0
    while i < len(body):
        if body[i] == "\\":
            i += 2
            continue
        if body[i] == '"':
            return i
        i += 1
    return -1


def _unescape(body: str) -> str:
    out: list[str] = []
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
