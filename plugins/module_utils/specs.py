"""Reading a list-of-mappings variable (vLLM models, Forge instances) the same way everywhere."""

from __future__ import annotations

import ipaddress
import re
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


class SpecError(ValueError):
    """Every problem found in a list of specs, one per line; ``problems`` keeps them apart."""

    def __init__(self, title: str, problems: list[str]) -> None:
        super().__init__(title + ":\n- " + "\n- ".join(problems))
        self.problems = problems


#: a name that is safe as a compose service name, a file name and a URL path part
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")
#: an environment variable name
ENV_KEY_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
#: a docker image reference: [registry[:port]/]path[:tag][@sha256:digest], lower-case path
IMAGE_RE = re.compile(
    r"^(?:(?:[a-zA-Z0-9-]+\.)*[a-zA-Z0-9-]+(?::[0-9]+)?/)?"
    r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[0-9a-f]{64})?$"
)
TAG_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DNS_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def name_problem(value: Any, where: str) -> str | None:
    text = str(value) if value is not None else ""
    valid = isinstance(value, (str, int)) and not isinstance(value, bool)
    if valid and NAME_RE.match(text) and ".." not in text:
        return None
    return (
        f"{where} {value!r} must be letters, digits, '.', '-' or '_' (at most 63, no '..'): "
        "it names the compose service and its files"
    )


def port_problem(value: Any, where: str) -> str | None:
    """None when ``value`` is a port number (an int, or a string holding only one)."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return f"{where} {value!r} is not a port number (1-65535)"
    text = str(value).strip()
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        return f"{where} {value!r} is not a port number (1-65535)"
    return None


def positive_int_problem(value: Any, where: str, what: str = "a positive integer") -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        return f"{where} {value!r} must be {what}"
    text = str(value).strip()
    if not text.isdigit() or int(text) <= 0:
        return f"{where} {value!r} must be {what}"
    return None


def gpus_problem(value: Any, where: str) -> str | None:
    if not isinstance(value, list) or not value:
        return f"{where} {value!r} must be a non-empty list of GPU indices"
    for gpu in value:
        if isinstance(gpu, bool) or not isinstance(gpu, (int, str)) or not str(gpu).isdigit():
            return f"{where} {value!r} must list GPU indices (0, 1, ...)"
    return None


def share_problem(value: Any, where: str) -> str | None:
    try:
        share = float(value)
    except (TypeError, ValueError):
        return f"{where} {value!r} must be a fraction of the GPU memory in (0, 1]"
    if isinstance(value, bool) or not 0.0 < share <= 1.0:
        return f"{where} {value!r} must be a fraction of the GPU memory in (0, 1]"
    return None


def env_problems(value: Any, where: str, reserved: Any = ()) -> list[str]:
    if value in (None, ""):
        return []
    if not isinstance(value, dict):
        return [f"{where} must be a mapping of environment variables"]
    problems = []
    for key, item in value.items():
        if not ENV_KEY_RE.match(str(key)):
            problems.append(f"{where}.{key}: {key!r} is not an environment variable name")
        elif str(key) in reserved:
            problems.append(f"{where}.{key}: set by the role, it cannot be overridden")
        elif isinstance(item, (dict, list)) or "\n" in str(item) or "\r" in str(item):
            problems.append(f"{where}.{key} must be one line of text")
    return problems


def image_problem(value: Any, where: str) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return f"{where} is empty: set an image reference such as vllm/vllm-openai:v0.34.0"
    if not IMAGE_RE.match(value):
        return f"{where} {value!r} is not a valid image reference (repository[:tag][@digest])"
    return None


def address_problem(value: Any, where: str) -> str | None:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return f"{where} {value!r} is not an IP address (e.g. 127.0.0.1)"
    return None


def hostname_problem(value: Any, where: str) -> str | None:
    """None for a DNS name (no scheme, no path, no port); empty means unpublished."""
    if value in (None, ""):
        return None
    text = str(value)
    if "://" in text:
        return f"{where} {value!r} must be a DNS name without a scheme (e.g. qwen.example.org)"
    labels = text.lower().rstrip(".").split(".")
    if len(text) > 253 or len(labels) < 2 or not all(_DNS_LABEL.match(x) for x in labels):
        return f"{where} {value!r} is not a DNS name (e.g. qwen.example.org)"
    return None


def text_problem(value: Any, where: str) -> str | None:
    """Values that land in command lines and config files: one line, no control character."""
    if isinstance(value, str) and any(ord(c) < 32 or c in "\x7f\u2028\u2029" for c in value):
        return f"{where} {value!r} must be one line without control characters"
    return None


#: directories of the host's own system: a root directory there would write the stack's projects
#: over the system's files (or into a pseudo filesystem)
_SYSTEM_DIRS_TEXT = """
    / /bin /boot /dev /etc /home /lib /lib32 /lib64 /libx32 /media /mnt /opt /proc /root /run
    /sbin /srv /sys /tmp /usr /usr/bin /usr/lib /usr/local /usr/sbin /usr/share /var /var/lib
    /var/log /var/tmp
"""
SYSTEM_DIRS = frozenset(_SYSTEM_DIRS_TEXT.split())
#: trees nothing of the stack may live in
SYSTEM_TREES = ("/proc/", "/sys/", "/dev/", "/run/", "/boot/", "/etc/")


def directory_problem(value: Any, where: str) -> str | None:
    """A host directory the stack owns: absolute, no '..', and neither '/' nor a system
    directory (``/``, ``/etc``, ``/usr``... and anything under /proc, /sys, /dev, /run, /boot,
    /etc)."""
    if not isinstance(value, str) or not value.startswith("/") or ".." in value.split("/"):
        return f"{where} {value!r} must be an absolute path without '..'"
    if problem := text_problem(value, where):
        return problem
    path = "/" + "/".join(p for p in value.split("/") if p not in ("", "."))
    if path in SYSTEM_DIRS or (path + "/").startswith(SYSTEM_TREES):
        return (
            f"{where} {value!r} is a system directory: the stack's projects, env files and "
            "snapshots would be written there; use a directory of its own such as /opt/genai"
        )
    return None


#: bind addresses that mean "every interface": the service is reached through the loopback
#: (ComfyUI's bare ``--listen`` binds "0.0.0.0,::"; an unset address is a wildcard too)
WILDCARD_ADDRESSES = ("", "0.0.0.0", "::", "0.0.0.0,::")
#: where a service bound to a wildcard address is reached from its own host
LOOPBACK = "127.0.0.1"


def reach_address(bind: Any) -> str:
    """Where a service bound to ``bind`` is reached from its own host (the one place that says a
    wildcard bind means 127.0.0.1): the bare address, e.g. ``::1`` (see :func:`url_host`)."""
    text = str(bind or "")
    return LOOPBACK if text in WILDCARD_ADDRESSES else text


def url_host(address: Any) -> str:
    """An address as the host part of a URL: an IPv6 literal in brackets (``[::1]``), anything
    else (an IPv4 address, a DNS name, an already bracketed literal) as it is."""
    text = str(address)
    return f"[{text}]" if ":" in text and not text.startswith("[") else text


def reach_url(bind: Any, port: Any, scheme: str = "http") -> str:
    """The base URL (no path) of a service bound to ``bind`` on ``port``, from its own host:
    ``http://127.0.0.1:8000`` for a wildcard bind, ``http://[::1]:8000`` for ``::1``."""
    return f"{scheme}://{url_host(reach_address(bind))}:{port}"
