"""derive_secret filter: one master secret, a stable and separate credential per purpose."""

from __future__ import annotations

import hashlib
import hmac
import string

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.filter.derive_secret import (
    FilterModule,
    derive_secret,
)
from ansible_collections.myia.genai_stack.plugins.module_utils import credentials

MASTER = "0123456789abcdef-master-secret-for-tests"
PURPOSES = ["vllm-api-key", "comfyui-password", "forge-password", "forge-web-token"]


def test_deterministic() -> None:
    for purpose in PURPOSES:
        assert derive_secret(MASTER, purpose) == derive_secret(MASTER, purpose)


def test_known_answer_pins_the_algorithm() -> None:
    """Changing the algorithm would rotate every credential of every deployment."""
    key = MASTER.encode()
    block = hmac.new(
        key, b"myia.genai_stack:derive_secret:v1:vllm-api-key\x00\x00\x00\x00\x00", hashlib.sha256
    ).digest()
    alphabet = credentials.ALPHABETS["hex"]
    expected = "".join(alphabet[b % 16] for b in block)[:32]  # 256 % 16 == 0: nothing rejected
    assert derive_secret(MASTER, "vllm-api-key", length=32, alphabet="hex") == expected
    assert (
        derive_secret(MASTER, "vllm-api-key") == "1aCL1l3oD35QzKwafjyP6MVLPzjKGgK6euGiO1nwmfiuFelk"
    )


def test_purposes_are_separated() -> None:
    values = [derive_secret(MASTER, p) for p in PURPOSES]
    assert len(set(values)) == len(values)
    assert derive_secret(MASTER, "vllm-api-key") != derive_secret(MASTER, "VLLM-API-KEY")
    assert MASTER not in "".join(values)


def test_rotating_the_master_rotates_everything() -> None:
    other = MASTER + "-rotated"
    for purpose in PURPOSES:
        assert derive_secret(MASTER, purpose) != derive_secret(other, purpose)


@pytest.mark.parametrize("length", [1, 16, 48, 72, 100, 1000])
def test_length(length: int) -> None:
    assert len(derive_secret(MASTER, "x", length=length)) == length


def test_a_longer_credential_extends_the_shorter_one() -> None:
    assert derive_secret(MASTER, "x", length=200).startswith(derive_secret(MASTER, "x", length=48))


@pytest.mark.parametrize(
    ("alphabet", "allowed"),
    [
        ("alnum", string.ascii_letters + string.digits),
        ("hex", "0123456789abcdef"),
        ("lower", string.ascii_lowercase + string.digits),
        ("urlsafe", string.ascii_letters + string.digits + "-_"),
    ],
)
def test_alphabets(alphabet: str, allowed: str) -> None:
    value = derive_secret(MASTER, "alphabet-test", length=2000, alphabet=alphabet)
    assert set(value) <= set(allowed)
    assert len(set(value)) == len(allowed)  # every character used: no truncated alphabet


def test_alnum_is_dotenv_bare_and_bcrypt_sized() -> None:
    from ansible_collections.myia.genai_stack.plugins.module_utils import dotenv

    value = derive_secret(MASTER, "comfyui-password")
    assert dotenv.quote(value) == value
    assert len(value.encode()) <= credentials.BCRYPT_MAX_BYTES


def test_vault_like_string_and_bytes_accepted() -> None:
    class Tagged(str):
        pass

    assert derive_secret(Tagged(MASTER), "x") == derive_secret(MASTER, "x")
    assert derive_secret(MASTER.encode(), "x") == derive_secret(MASTER, "x")


@pytest.mark.parametrize(
    ("secret", "purpose", "kwargs", "why"),
    [
        ("", "x", {}, "empty"),
        ("short-secret", "x", {}, "too short"),
        (None, "x", {}, "must be a string"),
        (12345678901234567890, "x", {}, "must be a string"),
        (MASTER, "", {}, "purpose"),
        (MASTER, None, {}, "purpose"),
        (MASTER, " vllm-api-key", {}, "white space"),
        (MASTER, "x", {"length": 0}, "between 1 and"),
        (MASTER, "x", {"length": 5000}, "between 1 and"),
        (MASTER, "x", {"length": "48"}, "integer"),
        (MASTER, "x", {"alphabet": "base32"}, "unknown alphabet"),
    ],
)
def test_errors(secret: object, purpose: object, kwargs: dict[str, object], why: str) -> None:
    with pytest.raises(AnsibleFilterError, match=why) as info:
        derive_secret(secret, purpose, **kwargs)
    assert "short-secret" not in str(info.value)
    assert MASTER not in str(info.value)


def test_filter_is_registered() -> None:
    assert FilterModule().filters()["derive_secret"] is derive_secret
