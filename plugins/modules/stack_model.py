# Copyright: (c) 2025, genai_stack team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Documentation of the stack_model action (it runs on the controller: plugins/action)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: stack_model
short_description: Build and check the whole stack model of a host before anything changes
version_added: "0.2.0"
description:
  - Reads, on the controller, every variable the catalogue of service kinds names (each vLLM
    model, ComfyUI, each Forge instance), the client C(.env) files, the secret and, on hosts of
    C(proxy_hosts) or C(iis_hosts), the reverse proxy's; each variable is evaluated on its own,
    so an error in one names that variable.
  - Role defaults are the lowest layer, so the model sees exactly what the roles will deploy.
  - Builds the stack model (service records, checked specs per kind, the GPU plan of the whole
    host and of each kind, proxy routes, client files, ports) and fails listing every problem,
    one line each, naming the variable path and the bad value. Never a traceback.
  - Sets the fact O(fact) (C(genai_stack)), which roles, playbooks, token_sync, the proxies and
    the panel read. Changes nothing, so it runs in check mode.
author:
  - genai_stack team (@myia)
attributes:
  check_mode:
    support: full
    description: It only reads.
  diff_mode:
    support: none
    description: Nothing is changed.
  facts:
    support: full
    description: Sets the fact named by O(fact).
options:
  kinds:
    description: The service kinds to build (default all); a role run on its own builds its kind.
    type: list
    elements: str
  gpus:
    description:
      - The host's GPUs (indices, or dicts with C(index)). Default the discovered GPUs
        (C(genai_gpus_discovered)), else C(genai_gpus).
    type: list
    elements: raw
  ceiling:
    description: Highest sum of memory shares on one GPU. Default C(genai_gpu_share_ceiling), else 1.0.
    type: float
  services:
    description:
      - Service records built on another host (a proxy host that runs no service of its own
        checks its proxy against the GPU host's records). With O(kinds=[]).
    type: list
    elements: dict
  fact:
    description: Name of the fact to set; empty sets none (use the RV(model) return value).
    type: str
    default: genai_stack
"""

EXAMPLES = r"""
- name: Build and check the stack model (fails, naming every bad variable, before any change)
  myia.genai_stack.stack_model:

- name: The ComfyUI record
  ansible.builtin.debug:
    msg: "{{ genai_stack.services | selectattr('kind', 'eq', 'comfyui') | first }}"
"""

RETURN = r"""
model:
  description: The stack model.
  returned: success
  type: dict
  contains:
    services:
      description: One record per service (name, kind, source, hostname, bind_address, port,
        backend_url, gpus, health and ready paths, auth, proxy facts).
      type: list
      elements: dict
    specs:
      description: Per kind, the checked specs its role deploys.
      type: dict
    gpu_plan:
      description: The GPU plan of the host (gpus, services, waves, table).
      type: dict
    plans:
      description: Per kind, the plan of its services alone (the start order in its project).
      type: dict
    proxies:
      description: Per proxy role this host runs, its rules.
      type: dict
    clients:
      description: The client .env files (path, services, public, mode).
      type: list
      elements: dict
    ports:
      description: Every port of the host, with the variable that sets it.
      type: dict
problems:
  description: Every problem found, one per line.
  returned: failure
  type: list
  elements: str
"""
