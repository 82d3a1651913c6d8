"""Extra command-line arguments read the way the upstream program's own parser reads them.

Upstream programs (vLLM, ComfyUI, Forge) parse their command line with argparse, which reads a
list differently from a check that compares whole words: it expands an unambiguous prefix of a
long flag (ComfyUI's ``--lis 0.0.0.0`` is ``--listen 0.0.0.0``), takes ``--flag=value``, gives
each flag a fixed number of values and refuses a word no flag takes. :func:`problems` reads an
``extra_args`` list against an upstream grammar kept as data (``grammar_*`` modules, each naming
the upstream source and version it was read from) and fails closed:

* a flag must be written out in full: an abbreviation is refused, and named as the flag a role
  manages when upstream would expand it to one;
* a flag the role manages (its port, bind address, key, GPU...) is refused in any spelling;
* an unknown flag is refused with the nearest real flag;
* each flag gets exactly the number of values upstream gives it, and a value one of its choices;
* a word no flag takes (``--xformers stray``) is refused, as upstream would.

Pure Python, no Ansible import.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping

_NUMBER = re.compile(r"^-\d+$|^-\d*\.\d+$")


def bounds(arity: int | str) -> tuple[int, float]:
    """(fewest, most) values of a flag of ``arity``."""
    if isinstance(arity, int):
        return arity, arity
    return {"?": (0, 1), "+": (1, float("inf")), "*": (0, float("inf"))}[arity]


def is_flag(word: str) -> bool:
    """argparse's view: a word starting with '-' is a flag unless it is a negative number."""
    return word.startswith("-") and word != "-" and not _NUMBER.match(word)


def _values(n: float) -> str:
    if n == float("inf"):
        return "one or more values"
    return {0: "no value", 1: "one value"}.get(int(n), f"{int(n)} values")


def _arity_text(arity: int | str) -> str:
    low, high = bounds(arity)
    if low == high:
        return _values(low)
    if high == float("inf"):
        return "one or more values" if low else "any number of values"
    return "at most one value"


def problems(
    args: object,
    flags: Mapping[str, int | str],
    managed: Mapping[str, str],
    where: str,
    program: str,
    choices: Mapping[str, Iterable[str]] | None = None,
    underscores: bool = False,
    abbrev: bool = True,
) -> list[str]:
    """Every problem of ``args`` (an ``extra_args`` list) read against ``flags``.

    ``flags`` maps every option string upstream accepts to the values it takes (0 for a switch, N, or
    ``?`` zero or one, ``+`` one or more, ``*`` any); ``managed`` maps
    each flag the role sets itself (every spelling) to where its value comes from (a variable),
    or to ``never: <why>`` for a flag refused outright;
    ``choices`` maps a flag to the values upstream allows; ``underscores``: upstream reads
    ``--max_model_len`` as ``--max-model-len`` (vLLM); ``abbrev``: upstream expands prefixes of
    long flags (argparse's ``allow_abbrev``). ``where`` names the variable in messages,
    ``program`` the upstream program and version.
    """
    if not isinstance(args, list):
        return [f"{where} must be a list of arguments"]
    found: list[str] = []
    allowed = {k: tuple(v) for k, v in (choices or {}).items()}
    # the flag whose values are being read: [name, fewest, most, read so far, index]
    open_flag: list | None = None

    def close() -> None:
        if open_flag and open_flag[3] < open_flag[1]:
            found.append(
                f"{where}[{open_flag[4]}] '{open_flag[0]}' needs "
                f"{_arity_text(flags[open_flag[0]])} ({program})"
            )

    def check_choice(flag: str, value: str, i: int) -> None:
        if flag in allowed and value not in allowed[flag]:
            found.append(
                f"{where}[{i}] '{value}' is not a value of {flag} in {program}; use one of "
                + ", ".join(allowed[flag])
            )

    for i, raw in enumerate(args):
        if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
            found.append(f"{where}[{i}] {raw!r} must be a string")
            continue
        word = str(raw)
        if any(ord(c) < 32 or c in "\x7f\u2028\u2029" for c in word):
            found.append(f"{where}[{i}] {word!r} must be one line without control characters")
            continue
        if not is_flag(word):
            if open_flag is None:
                found.append(
                    f"{where}[{i}] '{word}' is a stray word: no flag before it takes a value, so "
                    f"{program} would refuse it (unrecognized arguments)"
                )
            elif open_flag[0] == "":
                pass  # the values of a flag already refused
            elif open_flag[3] >= open_flag[2]:
                found.append(
                    f"{where}[{i}] '{word}' is a stray word: {open_flag[0]} takes "
                    f"{_arity_text(flags[open_flag[0]])}, so {program} would refuse it "
                    "(unrecognized arguments)"
                )
                open_flag = None
            else:
                open_flag[3] += 1
                check_choice(open_flag[0], word, i)
            continue
        close()
        open_flag = None
        name, has_value, value = word.partition("=")
        if word == "--":
            found.append(f"{where}[{i}] '--' ends {program}'s options; remove it")
            continue
        if underscores and name.startswith("--"):
            name = "--" + name[2:].replace("_", "-")
        if name in managed:
            found.append(f"{where}[{i}] '{name}' {_managed(managed[name])}")
            open_flag = ["", 0, float("inf"), 0, i]
            continue
        if name not in flags:
            found.append(f"{where}[{i}] {_unknown(name, flags, managed, program, abbrev)}")
            open_flag = ["", 0, float("inf"), 0, i]
            continue
        low, high = bounds(flags[name])
        if has_value:
            if high == 0:
                found.append(f"{where}[{i}] '{name}' takes no value ({program}); remove '={value}'")
            else:
                check_choice(name, value, i)
            continue
        open_flag = [name, low, high, 0, i]
    close()
    return found


def _managed(source: str) -> str:
    """Why a managed flag is refused: ``never: <reason>``, or the variable its value comes from."""
    if source.startswith("never: "):
        return f"is refused: {source[len('never: ') :]}"
    return f"is set by the role from {source}; remove it"


def _unknown(
    name: str,
    flags: Mapping[str, int | str],
    managed: Mapping[str, str],
    program: str,
    abbrev: bool,
) -> str:
    expands = sorted(
        f for f in {*flags, *managed} if abbrev and name.startswith("--") and f.startswith(name)
    )
    hits = [f for f in expands if f in managed]
    if hits:
        return (
            f"'{name}' abbreviates {', '.join(hits)} ({program} expands abbreviations), which "
            + _managed(managed[hits[0]])
        )
    if expands:
        return (
            f"'{name}' is an abbreviation ({program} would read {' or '.join(expands)}); "
            "write the flag in full"
        )
    near = difflib.get_close_matches(name, list(flags), n=1, cutoff=0.6)
    hint = f"; did you mean {near[0]}?" if near else ""
    return f"'{name}' is not a flag of {program}{hint}"
