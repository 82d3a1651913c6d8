# Copyright: (c) 2025, genai_stack team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: discover the host's NVIDIA GPUs with nvidia-smi."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: gpu_facts
short_description: Discover the host's NVIDIA GPUs (index, UUID, name, memory) with nvidia-smi
version_added: "0.1.0"
description:
  - Runs C(nvidia-smi --query-gpu=index,uuid,name,memory.total,memory.used
    --format=csv,noheader,nounits) and returns one entry per GPU, memory in MiB.
  - The GPUs are returned both as RV(gpus) and as the fact C(genai_gpus_discovered), the
    input of the GPU plan (M(myia.genai_stack.stack_model)) and of the GPU roles.
  - A host without nvidia-smi, or where nvidia-smi cannot talk to the driver (C(NVIDIA-SMI has
    failed because it couldn't communicate with the NVIDIA driver), exit 9), or lists no device,
    is not a failure; the module returns an empty list, a RV(status) and a RV(reason), unless
    O(require=true).
  - Detects WSL2 (C(microsoft) in C(/proc/version)), where the driver lives on Windows and
    nvidia-smi is in C(/usr/lib/wsl/lib), which is searched after C(PATH).
  - Memory figures the driver cannot give (C([N/A]), C([Not Supported])) are returned as null.
  - The module only reads, so it runs in check mode too and never reports a change.
author:
  - genai_stack team (@myia)
attributes:
  check_mode:
    support: full
    description: Runs nvidia-smi in check mode too (it only reads).
  diff_mode:
    support: none
    description: Nothing is changed, so there is no diff.
  facts:
    support: full
    description: Sets the fact C(genai_gpus_discovered).
options:
  require:
    description:
      - Fail when no GPU is found (nvidia-smi absent, driver error, no device), with the reason.
    type: bool
    default: false
  executable:
    description:
      - Path of nvidia-smi. By default it is looked up in C(PATH), then in C(/usr/lib/wsl/lib).
    type: path
notes:
  - nvidia-smi lists GPUs by index, in PCI bus order, the order C(CUDA_VISIBLE_DEVICES),
    C(NVIDIA_VISIBLE_DEVICES) and compose C(device_ids) use for indices.
  - nvidia-smi printing something else than the expected CSV with exit code 0 fails the module
    (whatever O(require) says), naming the line, so that no GPU plan runs on a misread host.
seealso:
  - name: nvidia-smi documentation
    description: The query options of nvidia-smi.
    link: https://docs.nvidia.com/deploy/nvidia-smi/index.html
"""

EXAMPLES = r"""
- name: Discover the GPUs (an empty list on hosts without a driver)
  myia.genai_stack.gpu_facts:
  register: gpu

- name: Show them
  ansible.builtin.debug:
    msg: "{{ gpu.gpu_count }} GPUs, WSL {{ gpu.wsl }}: {{ ansible_facts.genai_gpus_discovered | map(attribute='name') }}"

- name: A GPU host must have GPUs
  myia.genai_stack.gpu_facts:
    require: true

- name: Plan the services on the discovered GPUs
  myia.genai_stack.stack_model:
    gpus: "{{ ansible_facts.genai_gpus_discovered }}"
"""

RETURN = r"""
gpus:
  description: The GPUs, in nvidia-smi's order (by index). Empty when none was found.
  returned: always
  type: list
  elements: dict
  contains:
    index:
      description: GPU index (as used by C(CUDA_VISIBLE_DEVICES) and compose C(device_ids)).
      type: int
      sample: 0
    uuid:
      description: GPU UUID.
      type: str
      sample: GPU-1b2c3d4e-aaaa-bbbb-cccc-0123456789ab
    name:
      description: Product name.
      type: str
      sample: NVIDIA GeForce RTX 3090
    memory_total_mib:
      description: Total memory in MiB; null when nvidia-smi prints C([N/A]).
      type: int
      sample: 24576
    memory_used_mib:
      description: Used memory in MiB; null when nvidia-smi prints C([N/A]).
      type: int
      sample: 1
gpu_count:
  description: Number of GPUs found.
  returned: always
  type: int
  sample: 3
status:
  description:
    - V(ok) (GPUs found), V(absent) (no nvidia-smi), V(driver_error) (nvidia-smi cannot use the
      driver), V(no_devices) (the driver lists no GPU) or V(error) (nvidia-smi failed otherwise).
  returned: always
  type: str
  sample: driver_error
reason:
  description: Why no GPU was found; empty when GPUs were found.
  returned: always
  type: str
  sample: "NVIDIA driver not usable (nvidia-smi exit 9): NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver."
wsl:
  description: Whether the host is WSL2 (C(microsoft) in C(/proc/version)).
  returned: always
  type: bool
  sample: false
nvidia_smi:
  description: Path of the nvidia-smi that was run; null when none was found.
  returned: always
  type: str
  sample: /usr/bin/nvidia-smi
summary:
  description: One line for humans.
  returned: always
  type: str
  sample: "3 GPUs: 0 NVIDIA GeForce RTX 3090 (24576 MiB), 1 NVIDIA GeForce RTX 3090 (24576 MiB), 2 NVIDIA GeForce RTX 4090 (24564 MiB)"
ansible_facts:
  description: Facts set on the host.
  returned: always
  type: dict
  contains:
    genai_gpus_discovered:
      description: Same list as RV(gpus).
      type: list
      elements: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.myia.genai_stack.plugins.module_utils import nvidia_smi

PROC_VERSION = "/proc/version"

ARGUMENT_SPEC = {
    "require": {"type": "bool", "default": False},
    "executable": {"type": "path"},
}


def read_wsl() -> bool:
    try:
        with open(PROC_VERSION, encoding="utf-8", errors="replace") as handle:
            return nvidia_smi.is_wsl(handle.read())
    except OSError:
        return False


def find_nvidia_smi(module: AnsibleModule, wsl: bool) -> tuple[str | None, str]:
    """Path of nvidia-smi, or None and why."""
    executable = module.params["executable"]
    if executable:
        if os.path.isfile(executable) and os.access(executable, os.X_OK):
            return executable, ""
        return None, f"nvidia-smi not found at {executable}"
    found = module.get_bin_path("nvidia-smi", opt_dirs=[nvidia_smi.WSL_LIB_DIR])
    if found:
        return found, ""
    if wsl:
        return None, (
            f"nvidia-smi not found in PATH nor {nvidia_smi.WSL_LIB_DIR}: on WSL2 the NVIDIA "
            "driver is installed on Windows, not in the distribution"
        )
    return None, "nvidia-smi not found in PATH: no NVIDIA driver on this host"


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    wsl = read_wsl()
    executable, reason = find_nvidia_smi(module, wsl)
    gpus: list[dict] = []
    status = nvidia_smi.ABSENT
    if executable:
        rc, stdout, stderr = module.run_command([executable, *nvidia_smi.QUERY_ARGS])
        try:
            gpus, status, reason = nvidia_smi.interpret(rc, stdout, stderr)
        except nvidia_smi.NvidiaSmiParseError as exc:
            module.fail_json(
                msg=f"cannot read the output of {executable}: {exc}",
                rc=rc,
                stdout=stdout,
                stderr=stderr,
            )
    result = {
        "changed": False,
        "gpus": gpus,
        "gpu_count": len(gpus),
        "status": status,
        "reason": reason,
        "wsl": wsl,
        "nvidia_smi": executable,
        "summary": nvidia_smi.summary(gpus),
        "ansible_facts": {"genai_gpus_discovered": gpus},
    }
    if module.params["require"] and not gpus:
        module.fail_json(msg=f"no NVIDIA GPU found and require is true: {reason}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
