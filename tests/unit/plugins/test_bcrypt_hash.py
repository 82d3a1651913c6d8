"""bcrypt_hash filter and the bcrypt helpers of module_utils.credentials."""

from __future__ import annotations

import bcrypt
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.filter.bcrypt_hash import (
    FilterModule,
    bcrypt_hash,
)
from ansible_collections.myia.genai_stack.plugins.module_utils import credentials

PASSWORD = "correct horse battery staple $ # ' \" \\ é"
SALT = "abcdefghijklmnopqrstuu"


def test_round_trip_with_the_bcrypt_library() -> None:
    hashed = bcrypt_hash(PASSWORD, rounds=4)
    assert hashed.startswith("$2b$04$") and len(hashed) == 60
    assert bcrypt.checkpw(PASSWORD.encode(), hashed.encode())
    assert not bcrypt.checkpw(b"wrong", hashed.encode())
    assert credentials.verify_password(PASSWORD, hashed)
    assert not credentials.verify_password("wrong", hashed)


def test_default_cost_is_12_and_rounds_set_it() -> None:
    assert bcrypt_hash("pw-default-cost").startswith("$2b$12$")
    assert credentials.hash_rounds(bcrypt_hash("pw", rounds=5)) == 5


def test_random_salt_differs_fixed_salt_reproduces() -> None:
    assert bcrypt_hash("pw", rounds=4) != bcrypt_hash("pw", rounds=4)
    first = bcrypt_hash("pw", rounds=4, salt=SALT)
    assert first == bcrypt_hash("pw", rounds=4, salt=SALT)
    assert first.startswith(f"$2b$04${SALT}")
    assert first == bcrypt.hashpw(b"pw", f"$2b$04${SALT}".encode()).decode()


def test_salt_may_be_a_setting_or_a_hash_whose_cost_is_reused() -> None:
    hashed = bcrypt_hash("pw", rounds=5)
    assert bcrypt_hash("pw", salt=hashed) == hashed  # same password: same hash back
    assert bcrypt_hash("other", salt=hashed) != hashed
    assert bcrypt_hash("pw", salt=hashed[:29]) == hashed
    two_y = "$2y$" + hashed[4:]
    assert bcrypt_hash("pw", salt=two_y) == hashed  # normalised to $2b$
    with pytest.raises(AnsibleFilterError, match="disagrees"):
        bcrypt_hash("pw", rounds=6, salt=hashed)


@pytest.mark.parametrize(
    ("salt", "why"),
    [
        ("short", "22 characters"),
        ("abcdefghijklmnopqrstuv", "ending with one of"),  # low bits set in the last character
        ("abcdefghijklmnopqrst!u", "22 characters"),
        ("$2b$03$abcdefghijklmnopqrstuu", "between 4 and 31"),
    ],
)
def test_bad_salts_are_explained(salt: str, why: str) -> None:
    with pytest.raises(AnsibleFilterError, match=why):
        bcrypt_hash("pw", salt=salt)


def test_72_byte_limit_is_named_and_the_password_never_shown() -> None:
    assert bcrypt_hash("a" * 72, rounds=4)
    secret = "s3cr3t-" + "x" * 70
    with pytest.raises(AnsibleFilterError, match="72 bytes") as info:
        bcrypt_hash(secret, rounds=4)
    assert secret not in str(info.value) and "s3cr3t" not in str(info.value)
    # 36 two-byte characters are 72 bytes; 37 are too many
    assert bcrypt_hash("é" * 36, rounds=4)
    with pytest.raises(AnsibleFilterError, match="74 bytes"):
        bcrypt_hash("é" * 37, rounds=4)


@pytest.mark.parametrize(
    ("password", "rounds", "why"),
    [
        ("", 4, "empty"),
        ("a\x00b", 4, "NUL"),
        (None, 4, "must be a string"),
        (12345, 4, "must be a string"),
        ("pw", 3, "between 4 and 31"),
        ("pw", 32, "between 4 and 31"),
        ("pw", "12", "integer"),
        ("pw", True, "integer"),
    ],
)
def test_bad_input_is_refused(password: object, rounds: object, why: str) -> None:
    with pytest.raises(AnsibleFilterError, match=why):
        bcrypt_hash(password, rounds=rounds)


def test_verify_never_raises_on_garbage() -> None:
    for bad in ["", "garbage", "$2b$04$short", None, 42, bcrypt_hash("pw", rounds=4)[:-1]]:
        assert credentials.verify_password("pw", bad) is False
    assert credentials.verify_password("", bcrypt_hash("pw", rounds=4)) is False


def test_missing_bcrypt_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real_import = builtins.__import__

    def fake_import(name: str, *args: object, **kwargs: object) -> object:
        if name == "bcrypt":
            raise ImportError("No module named 'bcrypt'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(AnsibleFilterError, match="python3-bcrypt"):
        bcrypt_hash("pw", rounds=4)


def test_filter_is_registered() -> None:
    assert FilterModule().filters()["bcrypt_hash"] is bcrypt_hash
