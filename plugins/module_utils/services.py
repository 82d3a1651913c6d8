"""The one service model: every service of the stack as a uniform record.

Built for the whole stack by :mod:`stack_model` (and from hand-written specs by the
``genai_services`` filter), and read by everything that must not keep a second list: the reverse
proxy rules, the health checks of validate.yml, the client .env files, the panel.
Records hold no secret: auth says what kind of credential a client sends, not its value.
"""

from __future__ import annotations

from typing import Any

from ansible_collections.myia.genai_stack.plugins.module_utils import catalogue, specs

#: per kind: health path, what clients authenticate with, websocket paths, body limit, timeout
KINDS: dict[str, dict[str, Any]] = {name: kind.http for name, kind in catalogue.KINDS.items()}


class ServiceModelError(ValueError):
    pass


def record(kind: str, spec: dict[str, Any], source: str) -> dict[str, Any]:
    """One uniform record from a role's service spec (needs name and port)."""
    if kind not in KINDS:
        raise ServiceModelError(f"{source}: unknown service kind '{kind}'")
    for key in ("name", "port"):
        if spec.get(key) in (None, ""):
            raise ServiceModelError(f"{source}: missing {source}.{key}")
    bind = spec.get("bind_address") or "127.0.0.1"
    result = {
        "name": str(spec["name"]),
        "kind": kind,
        "source": source,
        "hostname": spec.get("hostname") or None,
        "bind_address": bind,
        "port": int(spec["port"]),
        "backend_url": specs.reach_url(bind, int(spec["port"])),
        "gpus": [int(g) for g in spec.get("gpus") or []],
        "served_model_names": list(spec.get("served_model_names") or [])
        or (
            [str(spec["name"])] if "served_model_names" in catalogue.KINDS[kind].record_keys else []
        ),
        **KINDS[kind],
    }
    for key in catalogue.KINDS[kind].record_keys:
        if key != "served_model_names" and key in spec:
            result[key] = spec[key]
    if spec.get("memory_share") not in (None, ""):
        # what the GPU plan needs; vLLM models and Forge instances get theirs from their own
        # normalizers, a single-spec service (ComfyUI) from here
        result["gpu_wish"] = {
            "service": result["name"],
            "source": str(spec.get("gpu_variable") or f"{source}.gpus"),
            "gpus": result["gpus"],
            "memory_share": float(spec["memory_share"]),
            "port": result["port"],
            "bind_address": bind,
        }
    return result


def build(by_kind: dict[str, Any], variables: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Records from hand-written specs per kind (a list, or one mapping), in the catalogue's
    order; fails on a name, port or hostname used twice. The stack itself is built by
    :mod:`stack_model`, which checks every value first."""
    names = {name: kind.variable for name, kind in catalogue.KINDS.items()}
    names.update(variables or {})
    unknown = sorted(set(by_kind) - set(catalogue.KINDS))
    if unknown:
        raise ServiceModelError(f"unknown service kind(s) {', '.join(unknown)}")
    records: list[dict[str, Any]] = []
    for kind in catalogue.KINDS:
        specs = by_kind.get(kind)
        if not specs:
            continue
        if isinstance(specs, dict):
            records.append(record(kind, specs, names[kind]))
            continue
        for i, spec in enumerate(specs):
            records.append(record(kind, spec, f"{names[kind]}[{i}]"))
    problems = []
    for key in ("name", "port", "hostname"):
        seen: dict[Any, str] = {}
        for rec in records:
            value = rec[key]
            if value is None:
                continue
            if value in seen:
                problems.append(f"{rec['source']}: {key} {value!r} already used by {seen[value]}")
            seen[value] = rec["source"]
    if problems:
        raise ServiceModelError("invalid service model:\n- " + "\n- ".join(problems))
    return records


def health_checks(
    records: list[dict[str, Any]], credentials: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """endpoint_health checks that prove each service serves its clients, from the records.

    ``credentials``: ``vllm_api_key``, ``comfyui_token``, ``forge_username``/``forge_password``,
    ``forge_web_token`` (each optional: without it, only the open paths and the refusal are
    checked). Each kind's checks are its catalogue entry's (:mod:`catalogue`).
    """
    creds = credentials or {}
    return [c for rec in records for c in catalogue.KINDS[rec["kind"]].checks(rec, creds)]


def refusal_checks(
    records: list[dict[str, Any]], credentials: dict[str, Any]
) -> list[dict[str, Any]]:
    """Checks that each service refuses ``credentials`` (the ones before a rotation): 401."""
    return [c for rec in records for c in catalogue.KINDS[rec["kind"]].refusals(rec, credentials)]


def client_env(
    records: list[dict[str, Any]], credentials: dict[str, Any], public: bool = False
) -> dict[str, str]:
    """The variables a client .env needs (base URLs and credentials), from the records.

    ``public``: base URLs through the reverse proxy (https://hostname) where a record has one.
    """

    def url(rec: dict[str, Any]) -> str:
        return (
            f"https://{rec['hostname']}" if public and rec.get("hostname") else rec["backend_url"]
        )

    env: dict[str, str] = {}
    for name, kind in catalogue.KINDS.items():
        mine = [r for r in records if r["kind"] == name]
        if mine:
            env.update(kind.client_env(mine, credentials, url))
    return env
