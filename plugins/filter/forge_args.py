from __future__ import annotations

DOCUMENTATION = r"""
name: forge_args
short_description: Render FORGE_ARGS of a Stable Diffusion WebUI Forge instance (ai-dock image)
version_added: 0.1.0
description:
  - Renders the C(FORGE_ARGS) string the ai-dock image passes to Forge's C(launch.py) for one
    instance checked by C(myia.genai_stack.forge_instances) - the user's turbo command line
    C(--ui-settings-file ... --api --api-log --listen --gpu-device-id 0 --cuda-malloc --xformers)
    plus C(--server-name) (loopback), C(--ui-config-file), C(--ckpt-dir) (the workspace's
    checkpoint folder), C(--api-auth) (always) and C(--gradio-auth), then the instance's
    C(args_extra).
  - The result holds the password; write it to a 0600 env file only (C(no_log)).
  - C(--gpu-device-id) is 0, the index of the instance's one GPU inside its container (a device
    reservation or NVIDIA_VISIBLE_DEVICES exposes only that GPU, numbered 0 by CUDA).
  - The same file provides C(forge_instances) (validate the instance list and fill in defaults),
    C(forge_env) (the env file's variables), C(forge_environment) (the non-secret compose
    environment), C(forge_credential_problems), C(forge_settings_merge) (the role's keys over a
    settings file Forge rewrote) and C(forge_endpoints) (checks for
    M(myia.genai_stack.endpoint_health)).
options:
  _input:
    description: One instance from C(forge_instances).
    type: dict
    required: true
  user:
    description: The C(--api-auth) user.
    type: str
    required: true
  password:
    description: The C(--api-auth) password.
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Check the instances
  ansible.builtin.set_fact:
    forge_turbo_checked: "{{ forge_turbo_instances | myia.genai_stack.forge_instances(defaults={'image': forge_turbo_image}) }}"

- name: Write the env file of each instance
  ansible.builtin.copy:
    dest: "/opt/genai/forge/{{ item.name }}.env"
    content: "{{ item | myia.genai_stack.forge_env(forge_turbo_api_user, forge_turbo_api_password, forge_turbo_web_token) | myia.genai_stack.to_dotenv }}"
    mode: "0600"
  loop: "{{ forge_turbo_checked }}"
  no_log: true

- name: Show a command line (masked)
  ansible.builtin.debug:
    msg: "{{ forge_turbo_checked[0] | myia.genai_stack.forge_args('forge', '***') }}"
"""

RETURN = r"""
_value:
  description: The FORGE_ARGS string.
  type: str
"""

from typing import Any

from ansible.errors import AnsibleFilterError

from ansible_collections.myia.genai_stack.plugins.module_utils import forge


def forge_instances(
    instances: list[dict[str, Any]],
    defaults: dict[str, Any] | None = None,
    variable: str = "forge_turbo_instances",
    require_sha256: bool = True,
) -> list[dict[str, Any]]:
    """Validate the instances and fill in their defaults (each gets a ``gpu_wish``)."""
    try:
        return forge.normalize(instances, defaults, variable, bool(require_sha256))
    except forge.ForgeSpecError as exc:
        raise AnsibleFilterError(str(exc)) from exc


def forge_args(instance: dict[str, Any], user: str, password: str) -> str:
    try:
        return forge.forge_args(instance, str(user), str(password))
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"forge_args: not a checked instance ({exc})") from exc


def forge_env(instance: dict[str, Any], user: str, password: str, token: str) -> dict[str, str]:
    try:
        return forge.env_file(instance, str(user), str(password), str(token))
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"forge_env: not a checked instance ({exc})") from exc


def forge_environment(instance: dict[str, Any], gpu_reservation: bool = True) -> dict[str, str]:
    try:
        return forge.environment(instance, bool(gpu_reservation))
    except (KeyError, TypeError) as exc:
        raise AnsibleFilterError(f"forge_environment: not a checked instance ({exc})") from exc


def forge_credential_problems(credentials: dict[str, Any]) -> list[str]:
    """``{'user': …, 'password': …, 'token': …}`` -> problems naming the variables, no values."""
    return forge.credential_problems(
        credentials.get("user"), credentials.get("password"), credentials.get("token")
    )


def forge_settings_merge(current_b64: str | None, managed: dict[str, Any]) -> dict[str, Any]:
    """A settings file as slurped (base64, or None) + the role's keys -> what to write."""
    return forge.merge_settings(current_b64, dict(managed or {}))


def forge_endpoints(
    instances: list[dict[str, Any]],
    user: str,
    password: str,
    token: str,
    smoke: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    return forge.endpoints(list(instances), str(user), str(password), str(token), smoke)


class FilterModule:
    def filters(self) -> dict[str, object]:
        return {
            "forge_instances": forge_instances,
            "forge_args": forge_args,
            "forge_env": forge_env,
            "forge_environment": forge_environment,
            "forge_credential_problems": forge_credential_problems,
            "forge_endpoints": forge_endpoints,
            "forge_settings_merge": forge_settings_merge,
        }
