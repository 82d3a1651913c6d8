"""Credentials of the stack: derive them from the one master secret, bcrypt-hash them.

Shared by the ``derive_secret`` and ``bcrypt_hash`` filters (controller) and the
``comfyui_login_password`` module (target). Python 3.9+, standard library only; the ``bcrypt``
package is imported lazily, so derivation works where bcrypt is not installed.

Derivation (version 1), so that any other program can reproduce a credential::

    key     = master secret, UTF-8
    block_i = HMAC-SHA256(key, b"myia.genai_stack:derive_secret:v1:" + purpose (UTF-8)
                               + b"\\x00" + i as 4 bytes big-endian)     for i = 0, 1, 2 ...
    stream  = block_0 || block_1 || ...
    output  = for each byte b of the stream, if b < 256 - 256 % n: alphabet[b % n],
              until ``length`` characters (n = len(alphabet); rejection sampling, no modulo bias)
"""

from __future__ import annotations

import hashlib
import hmac
import re

DERIVATION_CONTEXT = b"myia.genai_stack:derive_secret:v1:"
MIN_SECRET_LENGTH = 16
MAX_DERIVED_LENGTH = 4096

ALPHABETS = {
    # letters and digits: safe bare in dotenv files, URLs, shells, HTTP Basic and --api-auth
    "alnum": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
    "hex": "0123456789abcdef",
    # lower-case letters and digits: user names, host-name labels
    "lower": "abcdefghijklmnopqrstuvwxyz0123456789",
    # the base64url alphabet (RFC 4648 section 5)
    "urlsafe": "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_",
}

BCRYPT_MAX_BYTES = 72
BCRYPT_MIN_ROUNDS = 4
BCRYPT_MAX_ROUNDS = 31
BCRYPT_DEFAULT_ROUNDS = 12
_B64 = "./ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
# 22 salt characters carry 132 bits for a 128-bit salt: the last one has its low 4 bits zero.
_SALT_LAST = "".join(_B64[i] for i in range(0, 64, 16))  # ".Oeu"
_SALT = re.compile(r"^[./A-Za-z0-9]{21}[" + re.escape(_SALT_LAST) + r"]$")
_SETTING = re.compile(r"^\$2[aby]\$(\d\d)\$([./A-Za-z0-9]{22})")
_HASH = re.compile(r"^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$")

BCRYPT_INSTALL_HINT = (
    "install the bcrypt Python library for this Python: the python3-bcrypt package "
    "(apt/dnf) or `pip install bcrypt`"
)


class CredentialError(ValueError):
    """A bad input; the message never contains a secret."""


class MissingBcryptError(ImportError):
    """The ``bcrypt`` library is not importable."""


# --------------------------------------------------------------------------------------------
# derivation


def _secret_text(secret: object, what: str = "secret") -> str:
    if isinstance(secret, bytes):
        try:
            return secret.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CredentialError(f"the {what} is not valid UTF-8") from exc
    if isinstance(secret, str):
        return str(secret)
    raise CredentialError(f"the {what} must be a string, got {type(secret).__name__}")


def derive(secret: object, purpose: object, length: int = 48, alphabet: str = "alnum") -> str:
    """Derive the credential for ``purpose`` from the master ``secret`` (see the module doc)."""
    text = _secret_text(secret, "master secret")
    if not text:
        raise CredentialError("the master secret is empty")
    if len(text) < MIN_SECRET_LENGTH:
        raise CredentialError(
            f"the master secret is too short ({len(text)} characters): use at least "
            f"{MIN_SECRET_LENGTH} (e.g. 32 random characters or more)"
        )
    if not isinstance(purpose, str) or not purpose:
        raise CredentialError("purpose must be a non-empty string, e.g. 'vllm-api-key'")
    if purpose != purpose.strip() or "\x00" in purpose:
        raise CredentialError(
            f"purpose {purpose!r} has leading/trailing white space or a NUL character"
        )
    if isinstance(length, bool) or not isinstance(length, int):
        raise CredentialError(f"length must be an integer, got {length!r}")
    if not 1 <= length <= MAX_DERIVED_LENGTH:
        raise CredentialError(f"length must be between 1 and {MAX_DERIVED_LENGTH}, got {length}")
    if alphabet not in ALPHABETS:
        raise CredentialError(
            f"unknown alphabet {alphabet!r}: choose one of {', '.join(sorted(ALPHABETS))}"
        )
    chars = ALPHABETS[alphabet]
    size = len(chars)
    limit = 256 - 256 % size
    key = text.encode("utf-8")
    info = DERIVATION_CONTEXT + purpose.encode("utf-8") + b"\x00"
    out: list[str] = []
    counter = 0
    while len(out) < length:
        block = hmac.new(key, info + counter.to_bytes(4, "big"), hashlib.sha256).digest()
        counter += 1
        for byte in bytearray(block):
            if byte < limit:
                out.append(chars[byte % size])
                if len(out) == length:
                    break
    return "".join(out)


# --------------------------------------------------------------------------------------------
# bcrypt


def import_bcrypt():  # returns the bcrypt module
    try:
        import bcrypt  # lazy: only bcrypt users need it
    except ImportError as exc:
        raise MissingBcryptError(
            f"the bcrypt Python library is missing: {BCRYPT_INSTALL_HINT}"
        ) from exc
    return bcrypt


def password_bytes(password: object) -> bytes:
    """Check a password for bcrypt and return its UTF-8 bytes."""
    raw = _secret_text(password, "password").encode("utf-8")
    if not raw:
        raise CredentialError("the password is empty")
    if len(raw) > BCRYPT_MAX_BYTES:
        raise CredentialError(
            f"the password is {len(raw)} bytes long (UTF-8); bcrypt uses at most "
            f"{BCRYPT_MAX_BYTES} bytes: use a password of {BCRYPT_MAX_BYTES} bytes or fewer"
        )
    if b"\x00" in raw:
        raise CredentialError("the password contains a NUL character, which bcrypt cannot hash")
    return raw


def check_rounds(rounds: object) -> int:
    if isinstance(rounds, bool) or not isinstance(rounds, int):
        raise CredentialError(f"rounds must be an integer, got {rounds!r}")
    if not BCRYPT_MIN_ROUNDS <= rounds <= BCRYPT_MAX_ROUNDS:
        raise CredentialError(
            f"rounds must be between {BCRYPT_MIN_ROUNDS} and {BCRYPT_MAX_ROUNDS}, got {rounds}"
        )
    return rounds


def bcrypt_setting(rounds: int | None = None, salt: str | None = None) -> bytes | None:
    """Return the ``$2b$NN$<22 chars>`` setting for ``salt``, or None to draw a random salt.

    ``salt`` is 22 bcrypt-base64 characters (``rounds`` applies), or a ``$2a$``/``$2b$``/``$2y$``
    setting or whole hash whose cost and salt are reused (``rounds``, if given, must agree).
    """
    if rounds is not None:
        check_rounds(rounds)
    if salt is None:
        return None
    if not isinstance(salt, str):
        raise CredentialError(f"salt must be a string, got {type(salt).__name__}")
    setting = _SETTING.match(salt)
    if setting:
        cost = int(setting.group(1))
        check_rounds(cost)
        if rounds is not None and rounds != cost:
            raise CredentialError(f"rounds={rounds} disagrees with the cost {cost} in the salt")
        body = setting.group(2)
        if body[-1] not in _SALT_LAST:
            raise CredentialError(_salt_message())
        return f"$2b${cost:02d}${body}".encode("ascii")
    if not _SALT.match(salt):
        raise CredentialError(_salt_message())
    cost = BCRYPT_DEFAULT_ROUNDS if rounds is None else rounds
    return f"$2b${cost:02d}${salt}".encode("ascii")


def _salt_message() -> str:
    return (
        "salt must be 22 characters of ./A-Za-z0-9 ending with one of "
        f"'{_SALT_LAST}' (a 128-bit bcrypt salt), or a $2b$NN$ setting or hash"
    )


def hash_password(password: object, rounds: int | None = None, salt: str | None = None) -> str:
    """bcrypt-hash ``password``; returns ``$2b$NN$`` + salt + digest (60 characters)."""
    raw = password_bytes(password)
    setting = bcrypt_setting(rounds, salt)
    bcrypt = import_bcrypt()
    if setting is None:
        setting = bcrypt.gensalt(BCRYPT_DEFAULT_ROUNDS if rounds is None else rounds, b"2b")
    try:
        return bcrypt.hashpw(raw, setting).decode("ascii")
    except ValueError as exc:  # defensive: inputs are checked above
        raise CredentialError(f"bcrypt refused the input: {exc}") from exc


def is_bcrypt_hash(value: object) -> bool:
    return isinstance(value, str) and bool(_HASH.match(value))


def hash_rounds(hashed: str) -> int | None:
    match = _HASH.match(hashed) if isinstance(hashed, str) else None
    return int(match.group(1)) if match else None


def verify_password(password: object, hashed: object) -> bool:
    """True when ``hashed`` is a well-formed bcrypt hash of ``password``; never raises on a bad hash."""
    if not is_bcrypt_hash(hashed):
        return False
    try:
        raw = password_bytes(password)
    except CredentialError:
        return False
    bcrypt = import_bcrypt()
    try:
        return bool(bcrypt.checkpw(raw, str(hashed).encode("ascii")))
    except ValueError:
        return False
