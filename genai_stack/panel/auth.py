"""The panel's credentials, session key and CSRF tokens.

* The admin's credentials live in one 0600 file, ``user:<bcrypt hash>`` (htpasswd's bcrypt
  form), written by ``genai-stack panel --set-password``; the password itself is never stored.
* Sessions are signed cookies (Starlette's SessionMiddleware, itsdangerous) with a random key
  generated on first start into a 0600 file. The cookie holds a session id that the server
  keeps (the history database): logout deletes it, a new password voids every older one.
* Every form carries the session's CSRF token; every POST checks it (:func:`check_csrf`).
* Files holding secrets must not be readable by group or others: the panel refuses to start.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import os
import re
import secrets
import stat
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import bcrypt

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

USER_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
MIN_PASSWORD_LEN = 12
CSRF_KEY = "csrf"
#: the session's id in the cookie; the server keeps which ids are valid (see store.History)
SESSION_KEY = "sid"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"


class AuthConfigError(RuntimeError):
    """Credentials or key files missing, malformed or too permissive."""


@dataclass(frozen=True)
class Credentials:
    user: str
    password_hash: bytes

    def verify(self, user: str, password: str) -> bool:
        # bcrypt even on a wrong user name, so timing does not tell which one was wrong
        ok_hash = bcrypt.checkpw(password.encode("utf-8")[:72], self.password_hash)
        return ok_hash and hmac.compare_digest(user.encode("utf-8"), self.user.encode("utf-8"))

    @property
    def fingerprint(self) -> str:
        """Changes with the password: sessions opened under another one are not valid."""
        return hashlib.sha256(self.password_hash).hexdigest()[:32]


class CredentialsFile:
    """The credentials of ``path``, read again whenever the file changes (a new password)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int, int] | None = None
        self._credentials = self.current()

    def current(self) -> Credentials:
        with self._lock:
            try:
                info = self.path.stat()
                stamp = (info.st_ino, info.st_mtime_ns, info.st_size)
            except OSError:
                stamp = None
            if stamp is None or stamp != self._stamp:
                self._credentials = load_credentials(self.path)
                self._stamp = stamp
            return self._credentials


def _check_private(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise AuthConfigError(f"{path} is readable by others (mode {mode:04o}); chmod 600 it")


def _write_private(path: Path, content: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(content)
    os.replace(tmp, path)


def set_password(path: Path, user: str, password: str, rounds: int = 12) -> None:
    """Write ``user:<bcrypt hash>`` to ``path`` (0600)."""
    if not USER_RE.match(user):
        raise ValueError("user names are 1-64 letters, digits, '.', '_' or '-'")
    if len(password) < MIN_PASSWORD_LEN:
        raise ValueError(f"the password needs at least {MIN_PASSWORD_LEN} characters")
    if len(password.encode("utf-8")) > 72:
        raise ValueError("bcrypt uses at most 72 bytes of a password; choose a shorter one")
    hashed = bcrypt.hashpw(password.encode("utf-8"), bcrypt.gensalt(rounds)).decode("ascii")
    _write_private(path, f"{user}:{hashed}\n")


def load_credentials(path: Path) -> Credentials:
    if not path.is_file():
        raise AuthConfigError(
            f"no panel credentials in {path}: run `genai-stack panel --set-password` first"
        )
    _check_private(path)
    line = path.read_text(encoding="utf-8").strip()
    user, sep, hashed = line.partition(":")
    if not sep or not USER_RE.match(user) or not hashed.startswith("$2"):
        raise AuthConfigError(f"{path} must hold one line 'user:<bcrypt hash>'")
    return Credentials(user, hashed.encode("ascii"))


def session_key(path: Path) -> str:
    """The session signing key, generated (0600) on first start."""
    if not path.exists():
        try:
            path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass
        else:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(secrets.token_urlsafe(64) + "\n")
    _check_private(path)
    key = path.read_text(encoding="utf-8").strip()
    if len(key) < 32:
        raise AuthConfigError(f"{path} holds a key too short to sign sessions")
    return key


def new_csrf_token() -> str:
    return secrets.token_urlsafe(32)


def tokens_match(expected: str | None, given: str | None) -> bool:
    if not expected or not given:
        return False
    return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


class LoginThrottle:
    """Failed logins per client (``limit``) and per user name (``user_limit``) in ``window``
    seconds, and at most ``concurrent`` password checks at a time.

    :meth:`attempt` counts the attempt as failed *before* the password is checked, under the
    lock, so parallel requests cannot all slip past the limit; :meth:`succeeded` forgets the
    client's and the user's failures. A user name allows more failures than a client does: one
    attacker's address cannot lock the admin out, many addresses are still slowed down.
    """

    def __init__(
        self, limit: int = 5, window: float = 300.0, user_limit: int = 20, concurrent: int = 2
    ) -> None:
        self.limit = limit
        self.user_limit = user_limit
        self.window = window
        self._failures: dict[tuple[str, str], list[float]] = {}
        self._lock = threading.Lock()
        self._checks = threading.BoundedSemaphore(concurrent)

    def _recent(self, key: tuple[str, str], now: float) -> list[float]:
        kept = [t for t in self._failures.get(key, []) if now - t < self.window]
        self._failures[key] = kept
        return kept

    def _prune(self, now: float) -> None:
        for key in [k for k, times in self._failures.items() if not times or
                    now - times[-1] >= self.window]:  # fmt: skip
            del self._failures[key]

    def attempt(self, client: str, user: str) -> bool:
        """Count one attempt of ``client`` as ``user``; False (not to be checked) when either
        is over its limit."""
        with self._lock:
            now = time.monotonic()
            if len(self._failures) > 10_000:
                self._prune(now)
            by_client = self._recent(("client", client), now)
            by_user = self._recent(("user", user.lower()), now)
            if len(by_client) >= self.limit or len(by_user) >= self.user_limit:
                return False
            by_client.append(now)
            by_user.append(now)
            return True

    def check(self, verify: Callable[[], bool]) -> bool:
        """Run one password check, waiting while ``concurrent`` others run (bcrypt is costly)."""
        with self._checks:
            return verify()

    def succeeded(self, client: str, user: str) -> None:
        with self._lock:
            self._failures.pop(("client", client), None)
            self._failures.pop(("user", user.lower()), None)


def client_address(peer: str, forwarded_for: str | None, trusted: Sequence[IPNetwork]) -> str:
    """The client's address: the peer's, unless the peer is a trusted proxy; then the last
    address of ``X-Forwarded-For`` that is not a trusted proxy (earlier ones can be forged)."""

    def is_trusted(address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in trusted)

    if not is_trusted(peer):
        return peer
    hops = [hop.strip() for hop in (forwarded_for or "").split(",") if hop.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            return hop
    return hops[0] if hops else peer
