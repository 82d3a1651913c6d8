"""Credentials never leave a host in logs or messages: module_utils.redact and its filter."""

from __future__ import annotations

import pytest

from ansible_collections.myia.genai_stack.plugins.filter.redact_credentials import (
    redact_credentials,
)
from ansible_collections.myia.genai_stack.plugins.module_utils.redact import redact

HASH = "$2b$12$" + "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0"


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        # ComfyUI-Login logs its API token at INFO on every start (login/__init__.py, load_token)
        (
            f"INFO For direct API calls, use token={HASH}",
            "INFO For direct API calls, use token=***",
        ),
        (f"seen {HASH} here", "seen *** here"),
        ("Authorization: Bearer sk-abcdefgh12345678", "Authorization: Bearer ***"),
        ("VLLM_API_KEY=Zx81kQ0aP2mN4bV6cX8zL1", "VLLM_API_KEY=***"),
        ('{"api_key": "Zx81kQ0aP2mN4bV6cX8zL1"}', '{"api_key": "***"}'),
        ("launch.py --api-auth forge:Zx81kQ0aP2mN4b --port 1", "launch.py --api-auth *** --port 1"),
        ("--gradio-auth=forge:Zx81kQ0aP2mN4b", "--gradio-auth=***"),
        ("https://user:Zx81kQ0aP2@hf.co/x", "https://user:***@hf.co/x"),
    ],
)
def test_credential_shaped_values_are_masked_without_knowing_them(line: str, shown: str) -> None:
    assert redact(line) == shown


def test_known_secrets_are_masked_wherever_they_are() -> None:
    assert (
        redact("key abcSECRETxyz in a sentence", ["SECRET", "", None])
        == "key abc***xyz in a sentence"
    )


@pytest.mark.parametrize(
    "line",
    [
        'INFO:     127.0.0.1:53422 - "GET /v1/models HTTP/1.1" 200 OK',
        "Starting server on 127.0.0.1:8188 with --use-split-cross-attention",
        "auth: enabled, tokens: 4096",
    ],
)
def test_ordinary_log_lines_are_kept(line: str) -> None:
    assert redact(line) == line


def test_the_filter_takes_any_text_and_the_secrets() -> None:
    assert redact_credentials(None) == ""
    assert redact_credentials(f"token={HASH}\nk=abc", secrets=["abc"]) == "token=***\nk=***"
