"""Credentials taken out of text that leaves a host: container logs, failure messages, reports.

Services log their own credentials: ComfyUI-Login logs its API token (the bcrypt hash of
login/PASSWORD) at INFO on every start, and a process list or a traceback can show Forge's
``--api-auth user:password``. :func:`redact` replaces every known secret, and every value shaped
like a credential whatever its origin (so logs read without the secret, as logs.yml does, are
clean too), with ``***``. Pure Python, no Ansible import.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

MASK = "***"
#: credential-shaped values: (pattern, group kept before the mask)
PATTERNS: tuple[re.Pattern[str], ...] = (
    # a bcrypt hash: ComfyUI-Login's API token
    re.compile(r"\$2[abxy]?\$\d{2}\$[./A-Za-z0-9]{53}"),
    # Authorization headers and bearer tokens
    re.compile(r"(?i)(\b(?:bearer|basic)\s+)[A-Za-z0-9._~+/=-]{8,}"),
    # key=value and key: value of anything named like a credential
    re.compile(
        r"(?i)(\b[\w.-]*(?:token|api[_-]?key|password|passwd|secret)[\w.-]*"
        r"[\"']?\s*(?:=|:)\s*[\"']?)(?!\*\*\*)[^\s\"',;&)]{8,}"
    ),
    # Forge's --api-auth / --gradio-auth user:password (also in FORGE_ARGS)
    re.compile(r"(--(?:api|gradio)-auth(?:=|\s+))\S+"),
    # credentials in a URL: scheme://user:password@host
    re.compile(r"(\b[a-z][a-z0-9+.-]*://[^/\s:@]+:)[^/\s@]+(?=@)"),
)


def redact(text: str, secrets: Iterable[object] = ()) -> str:
    """``text`` with each of ``secrets`` and every credential-shaped value replaced by ``***``."""
    for secret in sorted({str(s) for s in secrets if s not in (None, "")}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    for pattern in PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.re.groups else "") + MASK, text)
    return text
