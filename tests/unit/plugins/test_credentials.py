"""module_utils.credentials: the derivation as its docstring specifies it, exact refusals."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from ansible_collections.myia.genai_stack.plugins.module_utils import credentials

MASTER = "0123456789abcdef-master-secret-for-tests"
SALT = "abcdefghijklmnopqrstuu"


def reference(secret: str, purpose: str, length: int, alphabet: str) -> str:
    """The derivation written from the module docstring, for any other program to reproduce."""
    chars = credentials.ALPHABETS[alphabet]
    out: list[str] = []
    i = 0
    while len(out) < length:
        message = b"myia.genai_stack:derive_secret:v1:" + purpose.encode() + b"\x00"
        block = hmac.new(secret.encode(), message + i.to_bytes(4, "big"), hashlib.sha256)
        i += 1
        for b in block.digest():
            if b < 256 - 256 % len(chars) and len(out) < length:
                out.append(chars[b % len(chars)])
    return "".join(out)


@pytest.mark.parametrize("alphabet", sorted(credentials.ALPHABETS))
def test_every_byte_value_is_sampled_as_the_docstring_says(alphabet: str) -> None:
    """4096 characters draw on every byte value: the rejection limit is exact."""
    derived = credentials.derive(MASTER, "vllm-api-key", 4096, alphabet)
    assert derived == reference(MASTER, "vllm-api-key", 4096, alphabet)


def test_defaults_are_48_alnum_characters() -> None:
    assert credentials.derive(MASTER, "x") == reference(MASTER, "x", 48, "alnum")


def test_a_16_character_master_secret_is_long_enough() -> None:
    assert credentials.derive("s" * 16, "x", 8) == reference("s" * 16, "x", 8, "alnum")


@pytest.mark.parametrize(
    ("secret", "purpose", "kwargs", "message"),
    [
        ("", "x", {}, "the master secret is empty"),
        (
            "s" * 15,
            "x",
            {},
            "the master secret is too short (15 characters): use at least 16 "
            "(e.g. 32 random characters or more)",
        ),
        (b"\xff" * 20, "x", {}, "the master secret is not valid UTF-8"),
        (123, "x", {}, "the master secret must be a string, got int"),
        (MASTER, "", {}, "purpose must be a non-empty string, e.g. 'vllm-api-key'"),
        (
            MASTER,
            "a\x00b",
            {},
            "purpose 'a\\x00b' has leading/trailing white space or a NUL character",
        ),
        (MASTER, "x", {"length": True}, "length must be an integer, got True"),
        (MASTER, "x", {"length": 4097}, "length must be between 1 and 4096, got 4097"),
        (
            MASTER,
            "x",
            {"alphabet": "b32"},
            "unknown alphabet 'b32': choose one of alnum, hex, lower, urlsafe",
        ),
    ],
)
def test_derive_refusals_in_full(
    secret: object, purpose: object, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(credentials.CredentialError) as raised:
        credentials.derive(secret, purpose, **kwargs)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("password", "message"),
    [
        ("", "the password is empty"),
        (5, "the password must be a string, got int"),
        (b"\xff", "the password is not valid UTF-8"),
        ("a\x00b", "the password contains a NUL character, which bcrypt cannot hash"),
    ],
)
def test_password_refusals_in_full(password: object, message: str) -> None:
    with pytest.raises(credentials.CredentialError) as raised:
        credentials.password_bytes(password)
    assert str(raised.value) == message


SALT_MESSAGE = (
    "salt must be 22 characters of ./A-Za-z0-9 ending with one of '.Oeu' "
    "(a 128-bit bcrypt salt), or a $2b$NN$ setting or hash"
)


@pytest.mark.parametrize(
    ("rounds", "salt", "message"),
    [
        (None, 5, "salt must be a string, got int"),
        (None, "abcdefghijklmnopqrstuv", SALT_MESSAGE),
        (None, "$2b$10$abcdefghijklmnopqrstuv", SALT_MESSAGE),
        (32, None, "rounds must be between 4 and 31, got 32"),
    ],
)
def test_bcrypt_setting_refusals_in_full(rounds: Any, salt: Any, message: str) -> None:
    with pytest.raises(credentials.CredentialError) as raised:
        credentials.bcrypt_setting(rounds, salt)
    assert str(raised.value) == message


@pytest.mark.parametrize(
    ("rounds", "salt", "setting"),
    [
        (None, SALT, f"$2b$12${SALT}"),
        (31, SALT, f"$2b$31${SALT}"),
        (None, f"$2a$31${SALT}", f"$2b$31${SALT}"),
        (None, None, None),
    ],
)
def test_bcrypt_setting_of_a_salt(
    rounds: int | None, salt: str | None, setting: str | None
) -> None:
    expected = setting.encode() if setting else None
    assert credentials.bcrypt_setting(rounds, salt) == expected


def test_a_bcrypt_refusal_is_a_credential_error(monkeypatch: pytest.MonkeyPatch) -> None:
    class Refusing:
        @staticmethod
        def hashpw(raw: bytes, setting: bytes) -> bytes:
            raise ValueError("Invalid salt")

    monkeypatch.setattr(credentials, "import_bcrypt", lambda: Refusing)
    with pytest.raises(credentials.CredentialError) as raised:
        credentials.hash_password("pw", salt=SALT)
    assert str(raised.value) == "bcrypt refused the input: Invalid salt"


@pytest.mark.parametrize("hashed", [None, 5, "not a hash", "$2b$1x$" + "a" * 53])
def test_hash_rounds_of_anything_but_a_hash_is_none(hashed: Any) -> None:
    assert credentials.hash_rounds(hashed) is None


@pytest.mark.parametrize("cost", ["03", "99"])
def test_a_hash_bcrypt_cannot_read_verifies_nothing(cost: str) -> None:
    """Well-formed for the pattern, refused by bcrypt (cost out of range): False, no raise."""
    assert credentials.verify_password("pw", f"$2b${cost}$" + "a" * 53) is False
