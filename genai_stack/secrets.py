"""Secrets of a run: kept off command lines, environments and artifacts.

* Secret extra vars go into a 0600 JSON file in a private 0700 directory (``/dev/shm`` when it
  exists, so they never touch a disk) passed as ``-e @file``, and the directory is removed after
  the run. A vault password goes the same way, named by ``ANSIBLE_VAULT_PASSWORD_FILE``. The
  command line and the environment that ansible-runner records only hold those paths.
* ansible-runner's ``env/`` files are suppressed; every event is masked before it is written or
  handed to a caller; after the run every artifact file is scrubbed of the secret values, a
  backstop for a task that prints one (tasks handling secrets should have ``no_log: true``).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

MASK = "********"
#: values shorter than this are not masked (masking "1" or "yes" would mangle every line)
MIN_SECRET_LEN = 4
#: names of environment variables whose values never reach the recorded artifacts
SENSITIVE_ENV_WORDS = ("PASS", "SECRET", "TOKEN", "KEY", "CREDENTIAL", "AUTH", "COOKIE", "SESSION")


def secret_values(value: Any) -> list[str]:
    """Every string (and number) inside ``value``, longest first: what masking replaces."""
    found: set[str] = set()

    def walk(item: Any) -> None:
        if isinstance(item, dict):
            for sub in item.values():
                walk(sub)
        elif isinstance(item, (list, tuple, set)):
            for sub in item:
                walk(sub)
        elif isinstance(item, bool) or item is None:
            return
        else:
            text = str(item)
            if len(text) >= MIN_SECRET_LEN:
                found.add(text)

    walk(value)
    variants: set[str] = set(found)
    for text in found:
        escaped = json.dumps(text)[1:-1]  # as it appears inside JSON documents
        variants.add(escaped)
    return sorted(variants, key=len, reverse=True)


class Masker:
    """Replaces known secret values by ``********`` in text and in nested data."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets = sorted(
            {s for s in secrets if len(s) >= MIN_SECRET_LEN}, key=len, reverse=True
        )

    def __bool__(self) -> bool:
        return bool(self.secrets)

    def text(self, text: str) -> str:
        for secret in self.secrets:
            if secret in text:
                text = text.replace(secret, MASK)
        return text

    def data(self, value: Any) -> Any:
        if not self.secrets:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {
                self.data(k) if isinstance(k, str) else k: self.data(v) for k, v in value.items()
            }
        if isinstance(value, list):
            return [self.data(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.data(v) for v in value)
        return value

    def scrub_tree(self, root: Path) -> list[Path]:
        """Mask the secrets in every file under ``root``; returns the files rewritten."""
        changed: list[Path] = []
        if not self.secrets or not root.exists():
            return changed
        encoded = [(s.encode("utf-8"), MASK.encode("utf-8")) for s in self.secrets]
        for path in sorted(p for p in root.rglob("*") if p.is_file() and not p.is_symlink()):
            try:
                content = path.read_bytes()
            except OSError:
                continue
            new = content
            for secret, mask in encoded:
                new = new.replace(secret, mask)
            if new != content:
                mode = path.stat().st_mode & 0o777
                path.write_bytes(new)
                os.chmod(path, mode)
                changed.append(path)
        return changed


def is_sensitive_env(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in SENSITIVE_ENV_WORDS) and not upper.endswith(
        ("_FILE", "_PATH", "_DIR")
    )


class SecretFiles:
    """A private 0700 directory of 0600 files, removed by :meth:`cleanup` (or ``with``)."""

    def __init__(self, base: Path | None = None) -> None:
        shm = Path("/dev/shm")
        if base is None and shm.is_dir() and os.access(shm, os.W_OK):
            base = shm
        if base is not None:
            base.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.directory = Path(tempfile.mkdtemp(prefix="genai-stack-", dir=base))
        os.chmod(self.directory, 0o700)

    def write(self, name: str, content: str) -> Path:
        path = self.directory / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(content)
        return path

    def cleanup(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def __enter__(self) -> SecretFiles:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()
