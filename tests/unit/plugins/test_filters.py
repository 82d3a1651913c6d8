"""The filter plugins themselves: their registration, argument handling and error messages (the
engines behind them have their own tests)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

FILTERS = {
    "bcrypt_hash": ["bcrypt_hash"],
    "derive_secret": ["derive_secret"],
    "forge_args": [
        "forge_instances", "forge_args", "forge_env", "forge_environment",
        "forge_credential_problems", "forge_endpoints", "forge_settings_merge",
    ],
    "genai_client_env": ["genai_client_env"],
    "genai_health_checks": ["genai_health_checks"],
    "genai_services": ["genai_services"],
    "gpu_plan": ["gpu_plan"],
    "proxy_rules": ["proxy_rules"],
    "to_dotenv": ["to_dotenv"],
    "vllm_args": ["vllm_args"],
    "vllm_endpoints": ["vllm_endpoints"],
    "vllm_models": ["vllm_models"],
}  # fmt: skip


@pytest.mark.parametrize("module", sorted(FILTERS))
def test_each_filter_module_registers_exactly_its_filters(module: str) -> None:
    plugin = importlib.import_module(
        f"ansible_collections.myia.genai_stack.plugins.filter.{module}"
    )
    assert plugin.FilterModule().filters() == {
        name: getattr(plugin, name) for name in FILTERS[module]
    }


def test_every_filter_file_is_listed() -> None:
    folder = Path(__file__).resolve().parents[3] / "plugins" / "filter"
    assert sorted(p.stem for p in folder.glob("*.py")) == sorted(FILTERS)
