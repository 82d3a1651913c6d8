"""The value checks every kind shares: each problem names the variable and the value, exactly."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from ansible_collections.myia.genai_stack.plugins.module_utils import specs

W = "v[0].x"


@pytest.mark.parametrize(
    ("check", "value", "problem"),
    [
        (specs.name_problem, "qwen3-micro", None),
        (specs.name_problem, "a" * 63, None),
        (specs.name_problem, 7, None),
        (specs.name_problem, "a" * 64, "long"),
        (specs.name_problem, "a..b", "dots"),
        (specs.name_problem, "-a", "start"),
        (specs.name_problem, "a b", "space"),
        (specs.name_problem, True, "bool"),
        (specs.name_problem, None, "none"),
        (specs.port_problem, 1, None),
        (specs.port_problem, "65535", None),
        (specs.port_problem, " 80 ", None),
        (specs.port_problem, 0, "zero"),
        (specs.port_problem, 65536, "high"),
        (specs.port_problem, "80a", "text"),
        (specs.port_problem, True, "bool"),
        (specs.port_problem, 8.5, "float"),
        (specs.positive_int_problem, 1, None),
        (specs.positive_int_problem, "30", None),
        (specs.positive_int_problem, 0, "zero"),
        (specs.positive_int_problem, "-5", "negative"),
        (specs.positive_int_problem, "32k", "unit"),
        (specs.positive_int_problem, False, "bool"),
        (specs.gpus_problem, [0, "1"], None),
        (specs.gpus_problem, [], "empty"),
        (specs.gpus_problem, "0", "text"),
        (specs.gpus_problem, [True], "bool"),
        (specs.gpus_problem, ["-1"], "negative"),
        (specs.share_problem, 1, None),
        (specs.share_problem, "0.5", None),
        (specs.share_problem, 0, "zero"),
        (specs.share_problem, 1.01, "over"),
        (specs.share_problem, "half", "text"),
        (specs.share_problem, True, "bool"),
        (specs.image_problem, "vllm/vllm-openai:v0.9.2", None),
        (specs.image_problem, "registry.example.com:5000/team/app:1.0", None),
        (specs.image_problem, "app@sha256:" + "a" * 64, None),
        (specs.image_problem, "", "empty"),
        (specs.image_problem, " ", "blank"),
        (specs.image_problem, None, "none"),
        (specs.image_problem, "Upper/Case", "case"),
        (specs.image_problem, "a b", "space"),
        (specs.address_problem, "127.0.0.1", None),
        (specs.address_problem, "::1", None),
        (specs.address_problem, "localhost", "name"),
        (specs.hostname_problem, "qwen.myia.io", None),
        (specs.hostname_problem, "", None),
        (specs.hostname_problem, None, None),
        (specs.hostname_problem, "https://qwen.myia.io", "scheme"),
        (specs.hostname_problem, "localhost", "single label"),
        (specs.hostname_problem, "-a.myia.io", "dash"),
        (specs.hostname_problem, "a" * 64 + ".io", "label"),
        (specs.hostname_problem, ("a" * 60 + ".") * 5 + "io", "total"),
        (specs.text_problem, "one line", None),
        (specs.text_problem, 5, None),
        (specs.text_problem, "a\nb", "newline"),
        (specs.text_problem, "a\u2028b", "separator"),
        (specs.text_problem, "a\x7fb", "delete"),
        (specs.text_problem, "a\tb", "tab"),
    ],
)
def test_each_check(check: Any, value: Any, problem: str | None) -> None:
    found = check(value, W)
    if problem is None:
        assert found is None
    else:
        assert found is not None and found.startswith(W), found
        if check is specs.image_problem and not str(value or "").strip():
            assert "is empty" in found
        else:
            assert repr(value) in found


def test_the_messages_say_what_is_wanted() -> None:
    assert specs.port_problem("80a", W) == "v[0].x '80a' is not a port number (1-65535)"
    assert specs.positive_int_problem("32k", W, "seconds") == "v[0].x '32k' must be seconds"
    assert specs.positive_int_problem(None, W) == "v[0].x None must be a positive integer"
    assert specs.gpus_problem([], W) == "v[0].x [] must be a non-empty list of GPU indices"
    assert specs.gpus_problem(["x"], W) == "v[0].x ['x'] must list GPU indices (0, 1, ...)"
    assert specs.share_problem(2, W) == "v[0].x 2 must be a fraction of the GPU memory in (0, 1]"
    assert specs.image_problem("", W) == (
        "v[0].x is empty: set an image reference such as vllm/vllm-openai:v0.34.0"
    )
    assert specs.image_problem("A", W) == (
        "v[0].x 'A' is not a valid image reference (repository[:tag][@digest])"
    )
    assert specs.address_problem("x", W) == "v[0].x 'x' is not an IP address (e.g. 127.0.0.1)"
    assert specs.hostname_problem("http://a.io", W) == (
        "v[0].x 'http://a.io' must be a DNS name without a scheme (e.g. qwen.example.org)"
    )
    assert specs.hostname_problem("a_b.io", W) == (
        "v[0].x 'a_b.io' is not a DNS name (e.g. qwen.example.org)"
    )
    assert specs.text_problem("a\nb", W) == (
        "v[0].x 'a\\nb' must be one line without control characters"
    )
    assert specs.name_problem("a b", W) == (
        "v[0].x 'a b' must be letters, digits, '.', '-' or '_' (at most 63, no '..'): "
        "it names the compose service and its files"
    )


def test_env_problems_name_each_key() -> None:
    assert specs.env_problems(None, W) == [] and specs.env_problems("", W) == []
    assert specs.env_problems({"OK_1": "x", "_B": 2}, W) == []
    assert specs.env_problems(["A=1"], W) == ["v[0].x must be a mapping of environment variables"]
    assert specs.env_problems(
        {"1A": "x", "B-C": "y", "R": "z", "N": "a\nb", "L": [1]}, W, ("R",)
    ) == [
        "v[0].x.1A: '1A' is not an environment variable name",
        "v[0].x.B-C: 'B-C' is not an environment variable name",
        "v[0].x.R: set by the role, it cannot be overridden",
        "v[0].x.N must be one line of text",
        "v[0].x.L must be one line of text",
    ]


def test_spec_error_keeps_each_problem() -> None:
    err = specs.SpecError("invalid things", ["a", "b"])
    assert err.problems == ["a", "b"]
    assert str(err) == "invalid things:\n- a\n- b"


@pytest.mark.parametrize(
    ("check", "value", "problem"),
    [
        (specs.port_problem, Decimal(8080), "v[0].x Decimal('8080') is not a port number (1-65535)"),
        (specs.positive_int_problem, Decimal(30), "v[0].x Decimal('30') must be a positive integer"),
        (specs.gpus_problem, [Decimal(1)], "v[0].x [Decimal('1')] must list GPU indices (0, 1, ...)"),
        (specs.hostname_problem, "qwen.myia.io.", None),
        (specs.hostname_problem, "myia.io", None),
        (specs.hostname_problem, ("a" * 62 + ".") * 4 + "a" * 1, None),
        (specs.hostname_problem, ("a" * 62 + ".") * 4 + "ab", "v[0].x '" + ("a" * 62 + ".") * 4 + "ab' is not a DNS name (e.g. qwen.example.org)"),
        (specs.text_problem, "X-ray", None),
    ],
)  # fmt: skip
def test_edges_of_each_check(check: Any, value: Any, problem: str | None) -> None:
    """Only int and str count as numbers; a name of exactly 253 characters and two labels pass."""
    assert check(value, W) == problem


def test_a_carriage_return_in_an_env_value_is_refused() -> None:
    assert specs.env_problems({"A": "a\rb"}, W) == ["v[0].x.A must be one line of text"]


def entries_of(items: list[Any]) -> tuple[list[tuple[int, str, str, dict[str, Any]]], list[str]]:
    problems: list[str] = []
    found = list(
        specs.entries(items, "v", "model", ("port", "gpus"), ("name",), {"gpus": [0]}, problems)
    )
    return found, problems


def test_entries_report_every_entry_and_yield_the_usable_ones() -> None:
    found, problems = entries_of(
        [
            "x",
            {"port": 1},
            {"name": "", "zz": 1, "aa": 2},
            {"name": "a", "port": None, "gpus": [1]},
        ]
    )
    assert problems == [
        "v[0] must be a mapping",
        "model '?' (v[1]): missing v[1].name",
        "model '' (v[2]): unknown key(s) aa, zz",
        "model '' (v[2]): missing v[2].name",
    ]
    assert found == [(3, "v[3]", "model 'a' (v[3])", {"gpus": [1], "name": "a"})]


def test_entries_name_every_missing_key() -> None:
    problems: list[str] = []
    found = list(specs.entries([{"a": []}], "v", "m", (), ("name", "a", "b"), {}, problems))
    assert found == [] and problems == ["m '?' (v[0]): missing v[0].name, v[0].a, v[0].b"]


# ---------------------------------------------------------------------------- reaching a service


@pytest.mark.parametrize("bind", specs.WILDCARD_ADDRESSES)
def test_every_wildcard_bind_is_reached_through_the_loopback(bind: str) -> None:
    assert specs.reach_address(bind) == "127.0.0.1"
    assert specs.reach_url(bind, 8000) == "http://127.0.0.1:8000"


@pytest.mark.parametrize(
    ("bind", "address", "url"),
    [
        (None, "127.0.0.1", "http://127.0.0.1:8188"),
        ("127.0.0.1", "127.0.0.1", "http://127.0.0.1:8188"),
        ("10.1.2.3", "10.1.2.3", "http://10.1.2.3:8188"),
        ("::1", "::1", "http://[::1]:8188"),
        ("fd00::2", "fd00::2", "http://[fd00::2]:8188"),
        # only the exact wildcards: an address of one interface is reached as it is
        ("0.0.0.1", "0.0.0.1", "http://0.0.0.1:8188"),
        ("::0", "::0", "http://[::0]:8188"),
    ],
)
def test_any_other_bind_is_reached_as_it_is(bind: Any, address: str, url: str) -> None:
    assert specs.reach_address(bind) == address
    assert specs.reach_url(bind, 8188) == url


def test_url_host_brackets_ipv6_literals_once() -> None:
    assert specs.url_host("::1") == "[::1]"
    assert specs.url_host("[::1]") == "[::1]"
    assert specs.url_host("127.0.0.1") == "127.0.0.1"
    assert specs.url_host("backend.example.org") == "backend.example.org"
    assert specs.reach_url("::1", "443", scheme="https") == "https://[::1]:443"
