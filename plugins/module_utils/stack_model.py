"""The stack model: the whole stack built and checked in one call, from the inventory's variables.

:func:`build` reads every kind of :mod:`catalogue` (vLLM models, ComfyUI, Forge instances), turns
them into service records (:mod:`services`), plans the GPUs (:mod:`gpu_plan`), computes the proxy
routes of the proxies this host runs (:mod:`proxy_rules`), checks the client .env files and the
secret, and raises :class:`StackModelError` with every problem found, one line each, naming the
variable. The first play of every playbook builds it (the ``stack_model`` action) before any task
that can change a host; roles, playbooks, token_sync, the proxies and the panel read it.
Pure Python, no Ansible import.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Mapping
from typing import Any

from ansible_collections.myia.genai_stack.plugins.module_utils import (
    catalogue,
    gpu_plan,
    proxy_rules,
    services,
    specs,
)
from ansible_collections.myia.genai_stack.plugins.module_utils.credentials import (
    MIN_SECRET_LENGTH,
)

#: the reverse proxies: role -> the inventory group of the hosts it runs on, its certificate form
PROXIES: dict[str, dict[str, str]] = {
    "nginx_reverse_proxy": {"group": "proxy_hosts", "certificate_kind": "files"},
    "iis_reverse_proxy": {"group": "iis_hosts", "certificate_kind": "thumbprint"},
}
_PROXY_KEYS = ("publish", "overrides", "backend_host", "certificates", "default_certificate",
               "https_port", "http_port")  # fmt: skip
#: a compose project name
PROJECT_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
#: secrets the documentation shows as examples; never accepted as the real one
PLACEHOLDER_MARKERS = ("changeme", "change-me", "<", "example", "xxxxxxxx")
#: stack-wide variables the model checks, beside each kind's own
STACK_VARIABLES = ("genai_root_dir", "genai_bind_address", "genai_panel_port",
                   "token_sync_clients", "token_sync_secret", "update_services",
                   "ansible_host")  # fmt: skip
#: what the example inventory leaves for the admin to fill in
_PLACEHOLDER = re.compile(r"<[^<>]+>|(?:^|[./@])example\.(?:org|com|net)\b", re.IGNORECASE)


class StackModelError(ValueError):
    """Every problem found, one per line, each naming the variable."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("invalid stack:\n- " + "\n- ".join(problems))
        self.problems = problems


def variables(kinds: list[str] | None = None, groups: Any = ()) -> list[str]:
    """Every variable :func:`build` reads for ``kinds`` (default all) on a host of ``groups``."""
    names = list(STACK_VARIABLES)
    for kind in _kinds(kinds):
        names += [*kind.variables, f"{kind.role}_project_name"]
    for role, proxy in PROXIES.items():
        if proxy["group"] in groups:
            names += [f"{role}_{key}" for key in _PROXY_KEYS]
    return list(dict.fromkeys(names))


def roles(kinds: list[str] | None = None, groups: Any = ()) -> list[str]:
    """The roles whose defaults the variables of :func:`variables` fall back on."""
    scope = {kind.name for kind in _kinds(kinds)}
    read = {name for kind in _kinds(kinds) for name in kind.variables}
    # a kind may read every variable of another kind (the gateway reads the vLLM models): that
    # kind's role's defaults too; not the other way round (vLLM reads none of the gateway's own)
    names = [
        k.role
        for k in catalogue.KINDS.values()
        if k.name in scope or (k.variables and set(k.variables) <= read)
    ]
    names.append("token_sync")
    return names + [role for role, proxy in PROXIES.items() if proxy["group"] in groups]


def _kinds(names: list[str] | None) -> list[catalogue.Kind]:
    if names is None:
        return list(catalogue.KINDS.values())
    unknown = [n for n in names if n not in catalogue.KINDS]
    if unknown:
        raise StackModelError(
            [f"unknown service kind(s) {', '.join(unknown)} (known: {', '.join(catalogue.KINDS)})"]
        )
    return [catalogue.KINDS[n] for n in names]


def build(
    values: Mapping[str, Any],
    gpus: list[Any],
    ceiling: float = 1.0,
    kinds: list[str] | None = None,
    groups: Any = (),
    problems: list[str] | None = None,
    services_of_others: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """The stack model of one host, or :class:`StackModelError` listing every problem.

    ``values``: the variables of :func:`variables`, already evaluated (a missing one is None);
    ``gpus``: the host's GPUs (discovered or declared); ``groups``: the host's inventory groups
    (a proxy is checked on the hosts of its group); ``problems``: ones found before (variables
    that could not be evaluated), reported with the rest; ``services_of_others``: records built
    on another host, for a proxy host that runs no service of its own (``kinds=[]``).
    """
    problems = list(problems or [])
    scope = _kinds(kinds)
    unfilled = [
        f"{where} {value!r}"
        for name in variables(kinds, groups)
        if name != "token_sync_secret"  # never echoed; its own check names the placeholder
        for where, value in _strings(values.get(name), name)
        if _PLACEHOLDER.search(value)
    ]
    if unfilled:
        problems.append(
            "placeholders of the example inventory still to fill in: " + ", ".join(unfilled)
        )
    found: dict[str, list[dict[str, Any]]] = {}
    records: list[dict[str, Any]] = []
    for kind in scope:
        try:
            found[kind.name] = kind.read(values)
        except specs.SpecError as exc:
            problems += exc.problems
            continue
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            problems.append(f"{kind.variable}: cannot be read ({exc})")
            continue
        for spec in found[kind.name]:
            source = str(spec.get("source") or spec["gpu_wish"]["source"])
            records.append(services.record(kind.name, spec, source))

    owners: dict[str, str] = {}
    for key in ("name", "hostname"):
        owners = {}
        for rec in records:
            value = rec[key]
            if value is None:
                continue
            value = str(value).lower() if key == "hostname" else value
            where = catalogue.KINDS[rec["kind"]].where(rec, key)
            if value in owners:
                problems.append(f"{where}: {key} {value!r} is already used by {owners[value]}")
            owners.setdefault(value, where)
    for kind in scope:
        project = values.get(f"{kind.role}_project_name")
        if project is not None and not PROJECT_RE.match(str(project)):
            problems.append(
                f"{kind.role}_project_name {project!r} must be lower-case letters, digits, '-' or "
                "'_' (a compose project name)"
            )
    ports = _ports(found, records, values, groups, problems)
    published = records + [dict(r) for r in services_of_others or []]

    root = values.get("genai_root_dir")
    if root is not None and (problem := specs.directory_problem(root, "genai_root_dir")):
        problems.append(problem)
    if values.get("genai_bind_address") is not None:
        problem = specs.address_problem(values["genai_bind_address"], "genai_bind_address")
        if problem:
            problems.append(problem)
    clients = _clients(values.get("token_sync_clients"), records, problems)
    _secret(values.get("token_sync_secret"), problems)
    wanted = values.get("update_services")
    if wanted is not None and len(scope) == len(catalogue.KINDS):
        names = [r["name"] for r in records]
        unknown = [str(s) for s in wanted if s not in names] if isinstance(wanted, list) else None
        if unknown is None:
            problems.append(f"update_services {wanted!r} must be a list of service names")
        elif unknown:
            problems.append(
                f"update_services names unknown services: {', '.join(unknown)} "
                f"(known: {', '.join(names)})"
            )

    plan: dict[str, Any] = {}
    plans: dict[str, Any] = {}
    wishes = [s["gpu_wish"] for kind in scope for s in found.get(kind.name, []) if "gpu_wish" in s]
    if len(found) == len(scope):
        try:
            plan = gpu_plan.plan(wishes, list(gpus or []), float(ceiling))
            for kind in scope:
                plans[kind.name] = gpu_plan.plan(
                    [s["gpu_wish"] for s in found[kind.name] if "gpu_wish" in s],
                    list(gpus or []),
                    float(ceiling),
                )
        except gpu_plan.GpuPlanError as exc:
            problems += [p for p in exc.problems if p not in problems]

    proxies: dict[str, list[dict[str, Any]]] = {}
    for role, proxy in PROXIES.items():
        if proxy["group"] not in groups or (not scope and services_of_others is None):
            continue  # a proxy-only host whose GPU hosts have no model: its own settings only
        try:
            proxies[role] = proxy_rules.compute(
                published,
                role,
                certificate_kind=proxy["certificate_kind"],
                publish=values.get(f"{role}_publish") or None,
                overrides=values.get(f"{role}_overrides") or None,
                backend_host=values.get(f"{role}_backend_host") or None,
                certificates=values.get(f"{role}_certificates") or None,
                default_certificate=values.get(f"{role}_default_certificate") or None,
                https_port=int(values.get(f"{role}_https_port") or 443),
            )
        except proxy_rules.ProxyRulesError as exc:
            problems += str(exc).splitlines()[1:] or [str(exc)]
            problems[:] = [p[2:] if p.startswith("- ") else p for p in problems]
        except (TypeError, ValueError) as exc:
            problems.append(f"{role}: cannot compute the proxy rules ({exc})")

    if problems:
        raise StackModelError(list(dict.fromkeys(problems)))
    return {
        "services": records,
        "specs": found,
        "gpu_plan": plan,
        "plans": plans,
        "proxies": proxies,
        "clients": clients,
        "ports": ports,
        "kinds": {
            k.name: {"role": k.role, "variable": k.variable, "tag": k.tag or k.name} for k in scope
        },
    }


def _strings(value: Any, where: str) -> list[tuple[str, str]]:
    """Every string inside ``value``, with its variable path."""
    if isinstance(value, str):
        return [(where, value)]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in _strings(v, f"{where}.{k}")]
    if isinstance(value, list):
        return [s for i, v in enumerate(value) for s in _strings(v, f"{where}[{i}]")]
    return []


def _ports(
    found: dict[str, list[dict[str, Any]]],
    records: list[dict[str, Any]],
    values: Mapping[str, Any],
    groups: Any,
    problems: list[str],
) -> dict[int, str]:
    """Every port of the host (services, Forge's web ports, the proxies, the panel): unique."""
    used: dict[int, str] = {}

    def take(port: Any, where: str) -> None:
        if port in (None, ""):
            return
        problem = specs.port_problem(port, where)
        if problem:
            problems.append(problem)
            return
        number = int(str(port))
        if number in used:
            problems.append(f"{where}: port {number} is already used by {used[number]}")
        else:
            used[number] = where

    for rec in records:
        take(rec["port"], catalogue.KINDS[rec["kind"]].where(rec, "port"))
    for spec in found.get("forge", []):
        take(spec.get("web_port"), f"{spec['gpu_wish']['source']}.web_port")
    for role, proxy in PROXIES.items():
        if proxy["group"] in groups:
            for key in ("https_port", "http_port"):
                take(values.get(f"{role}_{key}"), f"{role}_{key}")
    take(values.get("genai_panel_port"), "genai_panel_port")
    return used


def _clients(raw: Any, records: list[dict[str, Any]], problems: list[str]) -> list[dict[str, Any]]:
    """token_sync_clients: absolute paths, known services, unique files."""
    if raw in (None, ""):
        return []
    if not isinstance(raw, list):
        problems.append("token_sync_clients must be a list of {path, services, public}")
        return []
    names = [r["name"] for r in records]
    result = []
    seen: dict[str, str] = {}
    for i, client in enumerate(raw):
        where = f"token_sync_clients[{i}]"
        if not isinstance(client, dict):
            problems.append(f"{where} must be a mapping with path (and services, public, mode)")
            continue
        path = client.get("path")
        if (
            not isinstance(path, str)
            or not path.startswith("/")
            or ".." in path.split("/")
            or path.endswith("/")
            or specs.text_problem(path, "")
        ):
            problems.append(f"{where}.path {path!r} must be an absolute file path without '..'")
            continue
        path = posixpath.normpath(re.sub("/+", "/", path))  # normpath keeps a leading "//"
        if path in seen:
            problems.append(f"{where}.path {path!r} is already written by {seen[path]}")
        seen.setdefault(path, where)
        wanted = client.get("services")
        if wanted not in (None, []):
            if not isinstance(wanted, list):
                problems.append(f"{where}.services must be a list of service names")
                continue
            unknown = [str(s) for s in wanted if s not in names]
            if unknown:
                problems.append(
                    f"{where}.services names unknown service(s) {', '.join(unknown)} "
                    f"(known: {', '.join(names) or 'none'})"
                )
                continue
        chosen = client.get("gateway_client")
        gateway = [c["name"] for r in records for c in r.get("clients") or []]
        if chosen is not None and chosen not in gateway:
            problems.append(
                f"{where}.gateway_client {chosen!r} is not a client of openai_gateway_clients "
                f"(known: {', '.join(gateway) or 'none'})"
            )
        mode = client.get("mode")
        if mode is not None and not (isinstance(mode, str) and mode.isdigit() and len(mode) == 4):
            problems.append(f"{where}.mode {mode!r} must be a quoted octal mode such as '0600'")
        result.append({**client, "path": path, "services": wanted or names})
    return result


def _secret(secret: Any, problems: list[str]) -> None:
    """The one secret, when the vault holds it (empty: token_sync generates one)."""
    if secret in (None, ""):
        return
    if not isinstance(secret, str):
        problems.append("vault_genai_secret (token_sync_secret) must be a string")
        return
    if len(secret) < MIN_SECRET_LENGTH:
        problems.append(
            f"vault_genai_secret (token_sync_secret) is too short ({len(secret)} characters): "
            f"use at least {MIN_SECRET_LENGTH} random letters and digits"
        )
    elif any(marker in secret.lower() for marker in PLACEHOLDER_MARKERS):
        problems.append(
            "vault_genai_secret (token_sync_secret) still holds the documented placeholder: put "
            "48 random letters and digits in the vault, or remove it to let token_sync generate one"
        )
    elif specs.text_problem(secret, ""):
        problems.append("vault_genai_secret (token_sync_secret) must be one line")
