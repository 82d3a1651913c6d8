"""The stack as the inventory describes it: hosts, their services and GPU plan.

Hosts and groups come from ``ansible-inventory --list``; services and GPU plan from the stack
model Ansible itself builds (``playbooks/stack_model.yml``, through the driver), so the panel and
the CLI show the model the roles deploy, never a second reading of group_vars. Records hold no
secret; a host whose model is refused shows the problems, each naming the variable. What runs
now (health, containers, GPU memory) is read from the hosts by :mod:`genai_stack.status`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import asdict, dataclass, field
from typing import Any

from genai_stack.driver import Driver

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
    #: the model names it serves (vLLM, the OpenAI gateway)
    served_model_names: tuple[str, ...] = ()
    #: the clients it knows by name (the OpenAI gateway)
    clients: tuple[str, ...] = ()

    @property
    def health_url(self) -> str:
        return self.backend_url + self.health_path

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["gpus"] = list(self.gpus)
        data["served_model_names"] = list(self.served_model_names)
        data["clients"] = list(self.clients)
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


def host_view(
    host: str, hostvars: dict[str, Any], groups: list[str], built: dict[str, Any] | None
) -> HostView:
    """One host's services and GPU plan from its stack model (``Driver.stack_models``)."""
    local, connection, address = _is_local(host, hostvars)
    view = HostView(host, groups, connection, address, local)
    built = built or {}
    view.problems = [str(p) for p in built.get("problems") or []]
    model = built.get("model") or {}
    for rec in model.get("services") or []:
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
                served_model_names=tuple(str(n) for n in rec.get("served_model_names") or []),
                clients=tuple(str(c["name"]) for c in rec.get("clients") or []),
            )
        )
    plan = model.get("gpu_plan") or {}
    view.gpus = [
        GpuRow(
            index=int(g["index"]),
            name=str(g.get("name") or ""),
            memory_total_mib=g.get("memory_total_mib"),
            services=tuple(g.get("services") or []),
            memory_share=float(g.get("memory_share") or 0.0),
        )
        for g in plan.get("gpus") or []
    ]
    view.waves = [list(w) for w in plan.get("waves") or []]
    view.plan_table = str(plan.get("table") or "")
    return view


def load(
    driver: Driver, inventory: str | None = None, vault_password_file: str | None = None
) -> list[HostView]:
    """Every host of the inventory, with its services and GPU plan as Ansible builds them."""
    data = driver.inventory(inventory, vault_password_file)
    hostvars: dict[str, dict[str, Any]] = (data.get("_meta") or {}).get("hostvars") or {}
    groups = _groups_of(data)
    names = sorted(set(hostvars) | set(groups))
    models = driver.stack_models(inventory, vault_password_file)
    return [host_view(h, hostvars.get(h) or {}, groups.get(h, []), models.get(h)) for h in names]
