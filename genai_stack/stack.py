"""The stack as the inventory describes it: hosts, their services and GPU plan, and live health.

Read from ``ansible-inventory --list`` (through the driver) and computed with the collection's
own ``plugins/module_utils`` (``services``, ``vllm``, ``forge``, ``gpu_plan``, ``http_checks``), so
the panel and the CLI show the one service model the roles deploy, never a second list.
Records hold no secret; a variable still holding a Jinja template is shown as not evaluated.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from genai_stack.driver import Driver

#: the service variables of the roles, per kind: (variable, normalize module or None)
SERVICE_VARS = {
    "vllm": ("vllm_qwen3_models", "vllm"),
    "comfyui": ("comfyui_qwen_auth_service", None),
    "forge": ("forge_turbo_instances", "forge"),
}
LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}


@dataclass(frozen=True)
class Service:
    name: str
    kind: str
    host: str
    port: int
    bind_address: str
    backend_url: str
    health_path: str
    ready_path: str
    auth: str
    hostname: str | None = None
    gpus: tuple[int, ...] = ()
    source: str = ""

    @property
    def health_url(self) -> str:
        return self.backend_url + self.health_path

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["gpus"] = list(self.gpus)
        data["health_url"] = self.health_url
        return data


@dataclass(frozen=True)
class GpuRow:
    index: int
    name: str
    memory_total_mib: int | None
    services: tuple[str, ...]
    memory_share: float

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["services"] = list(self.services)
        return data


@dataclass
class HostView:
    name: str
    groups: list[str]
    connection: str
    address: str
    local: bool
    services: list[Service] = field(default_factory=list)
    gpus: list[GpuRow] = field(default_factory=list)
    waves: list[list[str]] = field(default_factory=list)
    plan_table: str = ""
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "groups": self.groups,
            "connection": self.connection,
            "address": self.address,
            "local": self.local,
            "services": [s.to_dict() for s in self.services],
            "gpus": [g.to_dict() for g in self.gpus],
            "waves": self.waves,
            "plan_table": self.plan_table,
            "problems": self.problems,
        }


@dataclass(frozen=True)
class Health:
    host: str
    service: str
    url: str
    ok: bool | None
    status: int | None = None
    latency_ms: float | None = None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


_REFERENCE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_BARE_REFERENCE = re.compile(r"^\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}$")


def _templated(value: Any) -> bool:
    """A Jinja expression anywhere in the value (the panel does not evaluate Jinja)."""
    if isinstance(value, str):
        return "{{" in value
    if isinstance(value, dict):
        return any(_templated(v) for v in value.values())
    if isinstance(value, list):
        return any(_templated(v) for v in value)
    return False


def _explained(exc: Exception, variable: str, value: Any) -> str:
    """The collection's own message, plus why it may be the panel's doing (Jinja left as is)."""
    if _templated(value):
        return f"{exc} ({variable} holds Jinja expressions the panel does not evaluate)"
    return str(exc)


def _resolve(value: Any, context: dict[str, Any], depth: int = 0) -> Any:
    """Plain ``{{ variable }}`` references replaced by that variable, at any depth: a bare one by
    the value itself (group_vars commonly point one list at another variable), one inside a string
    by its text. Any other Jinja is left as it is."""
    if depth > 8:
        return value
    if isinstance(value, str):
        match = _BARE_REFERENCE.match(value.strip())
        if match and match.group(1) in context:
            return _resolve(context[match.group(1)], context, depth + 1)

        def text(m: re.Match[str]) -> str:
            found = context.get(m.group(1))
            scalar = isinstance(found, (str, int, float)) and not isinstance(found, bool)
            return str(_resolve(found, context, depth + 1)) if scalar else m.group(0)

        return _REFERENCE.sub(text, value)
    if isinstance(value, dict):
        return {k: _resolve(v, context, depth) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve(v, context, depth) for v in value]
    return value


def _groups_of(inventory: dict[str, Any]) -> dict[str, list[str]]:
    """host -> groups (direct and inherited), from ansible-inventory's group tree."""
    parents: dict[str, set[str]] = {}
    hosts_of: dict[str, list[str]] = {}
    for group, data in inventory.items():
        if group == "_meta" or not isinstance(data, dict):
            continue
        hosts_of[group] = list(data.get("hosts") or [])
        for child in data.get("children") or []:
            parents.setdefault(child, set()).add(group)
    result: dict[str, list[str]] = {}

    def ancestors(group: str, seen: set[str]) -> set[str]:
        found = {group}
        for parent in parents.get(group, set()) - seen:
            found |= ancestors(parent, seen | {group})
        return found

    for group, hosts in hosts_of.items():
        for host in hosts:
            result.setdefault(host, [])
            for g in ancestors(group, set()):
                if g not in result[host]:
                    result[host].append(g)
    return {h: sorted(g for g in gs if g != "all") for h, gs in result.items()}


def _is_local(host: str, hostvars: dict[str, Any]) -> tuple[bool, str, str]:
    connection = str(hostvars.get("ansible_connection") or "ssh")
    address = str(hostvars.get("ansible_host") or host)
    if connection == "local":
        return True, connection, address
    if address in LOCAL_NAMES:
        return True, connection, address
    try:
        return ipaddress.ip_address(address).is_loopback, connection, address
    except ValueError:
        return False, connection, address


def host_view(driver: Driver, host: str, hostvars: dict[str, Any], groups: list[str]) -> HostView:
    """One host's services and GPU plan from its variables."""
    local, connection, address = _is_local(host, hostvars)
    view = HostView(host, groups, connection, address, local)
    project = driver.project
    services_mu = project.module_util("services")
    plan_mu = project.module_util("gpu_plan")
    specs: dict[str, Any] = {}
    wishes: list[dict[str, Any]] = []
    for kind, (variable, normalizer) in SERVICE_VARS.items():
        value = _resolve(hostvars.get(variable), hostvars)
        if value in (None, "", []):
            continue
        specs[kind] = value
        if normalizer is None:
            continue
        try:
            module = project.module_util(normalizer)
            if normalizer == "forge":
                normalized = module.normalize(value, None, variable, require_sha256=False)
            else:
                normalized = module.normalize(value, None, variable)
            wishes += [item["gpu_wish"] for item in normalized]
        except Exception as exc:  # the collection's own validation message
            specs.pop(kind)
            view.problems.append(_explained(exc, variable, value))
    try:
        records = services_mu.build(specs.get("vllm"), specs.get("comfyui"), specs.get("forge"))
    except Exception as exc:
        view.problems.append(_explained(exc, "the service model", specs))
        records = []
    wishes += [r["gpu_wish"] for r in records if r["kind"] == "comfyui" and "gpu_wish" in r]
    for rec in records:
        view.services.append(
            Service(
                name=str(rec["name"]),
                kind=str(rec["kind"]),
                host=host,
                port=int(rec["port"]),
                bind_address=str(rec["bind_address"]),
                backend_url=str(rec["backend_url"]),
                health_path=str(rec["health_path"]),
                ready_path=str(rec["ready_path"]),
                auth=str(rec["auth"]),
                hostname=rec.get("hostname"),
                gpus=tuple(int(g) for g in rec.get("gpus") or []),
                source=str(rec.get("source") or ""),
            )
        )
    gpus = _resolve(hostvars.get("genai_gpus"), hostvars) or []
    ceiling = _resolve(hostvars.get("genai_gpu_share_ceiling", 1.0), hostvars)
    if _templated(gpus) or _templated(ceiling):
        view.problems.append("genai_gpus is a template; GPU plan not evaluated by the panel")
    elif wishes or gpus:
        try:
            plan = plan_mu.plan(wishes, list(gpus), float(ceiling))
        except Exception as exc:
            view.problems.append(str(exc))
        else:
            view.gpus = [
                GpuRow(
                    index=int(g["index"]),
                    name=str(g.get("name") or ""),
                    memory_total_mib=g.get("memory_total_mib"),
                    services=tuple(g.get("services") or []),
                    memory_share=float(g.get("memory_share") or 0.0),
                )
                for g in plan["gpus"]
            ]
            view.waves = [list(w) for w in plan["waves"]]
            view.plan_table = str(plan["table"])
    return view


def load(
    driver: Driver, inventory: str | None = None, vault_password_file: str | None = None
) -> list[HostView]:
    """Every host of the inventory, with its services and GPU plan."""
    data = driver.inventory(inventory, vault_password_file)
    hostvars: dict[str, dict[str, Any]] = (data.get("_meta") or {}).get("hostvars") or {}
    groups = _groups_of(data)
    names = sorted(set(hostvars) | set(groups))
    # ansible-inventory leaves out the magic variables; inventory_dir is the one group_vars use
    paths = [Path(p) for p in driver.inventory_paths(inventory)]
    first = paths[0] if paths else driver.project.configured_inventory()
    magic = {"inventory_dir": str(first if first.is_dir() else first.parent)} if first else {}
    return [
        host_view(driver, h, {**magic, **(hostvars.get(h) or {})}, groups.get(h, [])) for h in names
    ]


def check_health(driver: Driver, hosts: list[HostView], timeout: float = 2.0) -> list[Health]:
    """Each service's health path, checked concurrently (http_checks), where reachable.

    Backends bind to loopback on their host, so only services of a local host are checked from
    here; a remote host's are reported as not checked (``ok`` None).
    """
    http = driver.project.module_util("http_checks")
    checks: list[Any] = []
    targets: list[Service] = []
    results: dict[tuple[str, str], Health] = {}
    for view in hosts:
        for service in view.services:
            if not view.local:
                results[(view.name, service.name)] = Health(
                    view.name, service.name, service.health_url, None,
                    error=f"backend bound to {service.bind_address} on {view.name}; "
                    "checked by validate.yml, not from the panel",
                )  # fmt: skip
                continue
            targets.append(service)
            checks.append(
                http.EndpointCheck(
                    name=f"{view.name}/{service.name}",
                    url=service.health_url,
                    timeout=timeout,
                    use_proxy=False,
                )
            )
    for service, res in zip(targets, http.run_checks(checks), strict=True):
        results[(service.host, service.name)] = Health(
            host=service.host,
            service=service.name,
            url=str(res.url),
            ok=bool(res.ok),
            status=res.status,
            latency_ms=res.latency_ms,
            error=res.error,
        )
    return [results[(v.name, s.name)] for v in hosts for s in v.services]
