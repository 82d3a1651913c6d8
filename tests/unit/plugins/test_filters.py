"""The filter plugins themselves: their registration, argument handling and error messages (the
engines behind them have their own tests)."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.filter import (
    derive_secret,
    forge_env,
    genai_client_env,
    genai_health_checks,
    genai_services,
    proxy_rules,
    reach_url,
    to_dotenv,
    vllm_args,
    vllm_endpoints,
)
from ansible_collections.myia.genai_stack.plugins.module_utils import (
    credentials,
    forge,
    gpu_plan,
    services,
    vllm,
)

FILTERS = {
    "bcrypt_hash": ["bcrypt_hash"],
    "derive_secret": ["derive_secret"],
    "forge_env": [
        "forge_env", "forge_environment", "forge_credential_problems", "forge_endpoints",
        "forge_settings_merge", "forge_secret_files",
    ],
    "genai_client_env": ["genai_client_env"],
    "genai_health_checks": ["genai_health_checks"],
    "genai_services": ["genai_services"],
    "openai_gateway_keys": ["openai_gateway_keys", "openai_gateway_config"],
    "proxy_rules": ["proxy_rules"],
    "reach_url": ["reach_url"],
    "redact_credentials": ["redact_credentials"],
    "to_dotenv": ["to_dotenv"],
    "vllm_args": ["vllm_args"],
    "vllm_endpoints": ["vllm_endpoints"],
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


# ---------------------------------------------------------------------------- forge_*

FORGE_DEFAULTS = {"image": "local/forge:test", "root_dir": "/srv/forge"}  # not forge.py's own
INSTANCE = {"name": "t", "port": 17861, "gpus": [1], "sdxl_turbo": False}
UNVERIFIED = {**INSTANCE, "checkpoint": {"name": "c.safetensors", "url": "https://x.io/c"}}


def sha_problem(variable: str) -> str:
    return (
        f"invalid Forge instances:\n- {variable}[0].checkpoint.sha256 is required with "
        f"{variable}[0].checkpoint.url: the download is verified against it (the sha256 is on the "
        "file's page of the model hub)"
    )


def test_forge_normalize_takes_every_argument() -> None:
    (unverified,) = forge.normalize([UNVERIFIED], FORGE_DEFAULTS, require_sha256=False)
    assert unverified["checkpoint"] == {**UNVERIFIED["checkpoint"], "sha256": None}
    with pytest.raises(forge.ForgeSpecError) as err:
        forge.normalize([UNVERIFIED], FORGE_DEFAULTS)
    assert str(err.value) == sha_problem("forge_turbo_instances")
    with pytest.raises(forge.ForgeSpecError) as err:
        forge.normalize([UNVERIFIED], FORGE_DEFAULTS, variable="mine")
    assert str(err.value) == sha_problem("mine")


def test_forge_filters_name_what_an_unchecked_instance_lacks() -> None:
    with pytest.raises(AnsibleFilterError) as err:
        forge_env.forge_env({"name": "x"}, "u", "p", "t")
    assert str(err.value) == (
        "forge_env: not a checked instance ('settings_file'): 'settings_file'"
    )
    with pytest.raises(AnsibleFilterError) as err:
        forge_env.forge_environment({"name": "x"})
    assert str(err.value) == "forge_environment: not a checked instance ('port'): 'port'"


def test_forge_environment_reserves_the_gpu_by_default() -> None:
    (instance,) = forge.normalize([INSTANCE], FORGE_DEFAULTS)
    assert forge_env.forge_environment(instance) == forge.environment(instance, True)
    assert forge_env.forge_environment(instance) != forge.environment(instance, False)


# ---------------------------------------------------------------------------- vllm_*

MODEL = {"name": "m", "model": "Qwen/Qwen3-8B-AWQ", "port": 5001, "gpus": [0],
         "gpu_memory_utilization": 0.5}  # fmt: skip


def test_vllm_normalize_names_the_variable() -> None:
    (m,) = vllm.normalize([MODEL], {"tool_call_parser": "mistral"})
    assert m["tool_call_parser"] == "mistral"
    with pytest.raises(vllm.VllmSpecError) as err:
        vllm.normalize([], variable="mine")
    assert str(err.value) == "invalid vLLM models:\n- mine must be a non-empty list of models"


def test_vllm_args_and_endpoints_name_the_missing_key() -> None:
    with pytest.raises(AnsibleFilterError) as err:
        vllm_args.vllm_args({})
    assert str(err.value) == (
        "vllm_args: the model lacks 'model'; pass a checked model (genai_stack.specs.vllm): 'model'"
    )
    with pytest.raises(AnsibleFilterError) as err:
        vllm_endpoints.vllm_endpoints([{}], "k")
    assert str(err.value) == (
        "vllm_endpoints: a model lacks 'bind_address'; pass checked models "
        "(genai_stack.specs.vllm): 'bind_address'"
    )


def test_vllm_endpoints_take_any_sequence_and_a_key_as_text() -> None:
    models = vllm.normalize([MODEL])
    assert vllm_endpoints.vllm_endpoints(tuple(models), 1234) == vllm.endpoints(models, "1234")


@pytest.mark.parametrize(
    ("bind", "port", "url"),
    [
        ("0.0.0.0", 8188, "http://127.0.0.1:8188"),
        ("::", "8188", "http://127.0.0.1:8188"),
        ("0.0.0.0,::", 8188, "http://127.0.0.1:8188"),  # ComfyUI's bare --listen
        ("", 8188, "http://127.0.0.1:8188"),
        ("127.0.0.1", 18188, "http://127.0.0.1:18188"),
        ("10.0.0.2", 8188, "http://10.0.0.2:8188"),
        ("::1", 8188, "http://[::1]:8188"),
    ],
)
def test_reach_url_is_the_one_rule(bind: str, port: Any, url: str) -> None:
    """The ComfyUI tasks' URL: what the service records and the Forge and vLLM checks use."""
    assert reach_url.reach_url(bind, port) == url
    record = services.record("comfyui", {"name": "c", "port": port, "bind_address": bind}, "s")
    assert record["backend_url"] == url


# ---------------------------------------------------------------------------- genai_*

CREDENTIALS = {"vllm_api_key": "k", "comfyui_token": "t"}


def records() -> list[dict[str, Any]]:
    return genai_services.genai_services(
        [{"name": "m", "port": 5001, "hostname": "m.example.org"}],
        comfyui={"name": "c", "port": 8188},
    )


def test_genai_services_names_the_variables_given() -> None:
    with pytest.raises(AnsibleFilterError) as err:
        genai_services.genai_services(
            [{"name": "a", "port": 1}, {"name": "a", "port": 2}], variables={"vllm": "mine"}
        )
    assert str(err.value) == "invalid service model:\n- mine[1]: name 'a' already used by mine[0]"


def test_genai_health_checks_without_credentials_or_refusing_them() -> None:
    recs = records()
    assert genai_health_checks.genai_health_checks(tuple(recs)) == services.health_checks(recs, {})
    assert genai_health_checks.genai_health_checks(recs, CREDENTIALS) == services.health_checks(
        recs, CREDENTIALS
    )
    assert len(services.health_checks(recs, {})) < len(services.health_checks(recs, CREDENTIALS))
    assert genai_health_checks.genai_health_checks(recs, CREDENTIALS, refuse=1) == [
        {"name": "m: refuses the old credential", "url": "http://127.0.0.1:5001/v1/models",
         "auth": {"type": "bearer", "token": "k"}, "status": [401]},
        {"name": "c: refuses the old credential", "url": "http://127.0.0.1:8188/system_stats",
         "auth": {"type": "bearer", "token": "t"}, "status": [401]},
    ]  # fmt: skip
    assert genai_health_checks.genai_health_checks(recs, None, True) == []
    with pytest.raises(AnsibleFilterError) as err:
        genai_health_checks.genai_health_checks([{}])
    assert str(err.value) == (
        "genai_health_checks: a record lacks 'kind'; build them with genai_services: 'kind'"
    )


def test_genai_client_env_reaches_the_backends_unless_public() -> None:
    recs = records()
    backend = {
        "VLLM_BASE_URL": "http://127.0.0.1:5001/v1", "VLLM_MODEL": "m",
        "VLLM_M_BASE_URL": "http://127.0.0.1:5001/v1", "VLLM_M_MODEL": "m", "VLLM_API_KEY": "k",
        "COMFYUI_BASE_URL": "http://127.0.0.1:8188", "COMFYUI_TOKEN": "t",
    }  # fmt: skip
    assert genai_client_env.genai_client_env(tuple(recs), CREDENTIALS) == backend
    assert genai_client_env.genai_client_env(recs, CREDENTIALS, public="yes") == {
        **backend,
        "VLLM_BASE_URL": "https://m.example.org/v1",
        "VLLM_M_BASE_URL": "https://m.example.org/v1",
    }


# ---------------------------------------------------------------------------- the others


def test_gpu_plan_proxy_rules_and_to_dotenv_keep_the_engine_message() -> None:
    with pytest.raises(TypeError) as raw:
        gpu_plan.plan(None, [])
    assert str(raw.value) == "'NoneType' object is not iterable"
    with pytest.raises(AnsibleFilterError) as err:
        proxy_rules.proxy_rules(records(), "x", "bogus")
    assert str(err.value) == "certificate_kind must be one of ('thumbprint', 'files')"
    with pytest.raises(AnsibleFilterError) as err:
        to_dotenv.to_dotenv([("A", "1")])
    assert str(err.value) == "to_dotenv expects a mapping"
    with pytest.raises(AnsibleFilterError) as err:
        to_dotenv.to_dotenv({"1BAD": "x"})
    assert str(err.value) == (
        "to_dotenv: invalid dotenv key '1BAD': use letters, digits and _, not starting with a digit"
    )


class EncryptedString:
    """Stands for ansible's vault value, which is no str: the filter converts it by its name."""

    def __init__(self, plain: str) -> None:
        self.plain = plain

    def __str__(self) -> str:
        return self.plain


def test_derive_secret_decrypts_a_vault_value_and_passes_anything_else_on() -> None:
    master = "m" * 32
    expected = derive_secret.derive_secret(master, "x")
    assert derive_secret.derive_secret(EncryptedString(master), "x") == expected
    for other in (None, 12345678901234567890, ["m"]):
        with pytest.raises(AnsibleFilterError) as err:
            derive_secret.derive_secret(other, "x")
        with pytest.raises(credentials.CredentialError) as raw:
            credentials.derive(other, "x", length=48, alphabet="alnum")
        assert str(err.value) == f"derive_secret: {raw.value}"


def test_forge_instances_take_the_role_defaults() -> None:
    (instance,) = forge.normalize([INSTANCE], FORGE_DEFAULTS)
    assert (instance["image"], instance["workspace"]) == (
        "local/forge:test",
        "/srv/forge/t/workspace",
    )
