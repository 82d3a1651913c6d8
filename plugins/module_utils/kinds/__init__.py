"""Service kinds: each kind is one module of this package, behind the :class:`Kind` interface.

A kind module (``kinds/<kind>.py``) holds everything the stack knows about its services: the
variables an admin sets, how they are read into checked specs (reusing :mod:`specs`), its HTTP
facts (health and ready paths, credential form, proxy route), the checks that prove a service
serves and refuses, and its client .env keys. It exports ``KIND``; :mod:`catalogue` finds every
kind module here, so a new kind is a new module (and its role). Pure Python, no Ansible import.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

Values = Mapping[str, Any]
Check = dict[str, Any]


@dataclass(frozen=True)
class Kind:
    """One kind of service (vLLM model, ComfyUI, Forge instance, ...)."""

    #: the record kind (``kind`` of every service record)
    name: str
    #: the role that deploys it (short name, in ``myia.genai_stack``)
    role: str
    #: the admin-facing variable that lists its services (for messages and the panel)
    variable: str
    #: every variable :attr:`read` needs; the model reads each one on its own
    variables: tuple[str, ...]
    #: variables -> checked specs (each with name, port, hostname, bind_address, gpu_wish);
    #: raises :class:`specs.SpecError`
    read: Callable[[Values], list[dict[str, Any]]]
    #: health path, ready path, credential form (auth), websocket paths, body limit, timeout
    http: dict[str, Any]
    #: endpoint_health checks proving one service serves its clients, from credentials
    checks: Callable[[dict[str, Any], Mapping[str, Any]], list[Check]]
    #: checks proving one service refuses credentials (the ones before a rotation)
    refusals: Callable[[dict[str, Any], Mapping[str, Any]], list[Check]]
    #: client .env keys for the services of this kind (records, credentials, url of a record)
    client_env: Callable[
        [list[dict[str, Any]], Mapping[str, Any], Callable[..., str]], dict[str, str]
    ]
    #: keys of the spec, beyond the record's, that the record keeps (served model names, ...)
    record_keys: tuple[str, ...] = field(default=())
    #: for a kind set by one variable per field (ComfyUI): field -> variable, for messages;
    #: otherwise a field is ``<source>.<field>`` (vllm_qwen3_models[1].port)
    fields: dict[str, str] = field(default_factory=dict)
    #: where the kind sorts among the others (deploy order, client .env, tables, the panel)
    order: int = 100
    #: the tag of its role in site.yml (``--tags``/``--skip-tags``); the kind's name by default
    tag: str = ""

    def where(self, rec: dict[str, Any], key: str) -> str:
        """The variable that sets ``key`` of a record of this kind."""
        return self.fields.get(key) or f"{rec['source']}.{key}"


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def env_name(name: str) -> str:
    return "".join(c if c.isalnum() else "_" for c in name).upper()


def check(rec: dict[str, Any], what: str, path: str, **spec: Any) -> Check:
    return {"name": f"{rec['name']}: {what}", "url": rec["backend_url"] + path, **spec}


def refuses_bearer(
    credential: str, path: str
) -> Callable[[dict[str, Any], Mapping[str, Any]], list[Check]]:
    """Refusal checks of a kind whose clients send ``credential`` as a bearer token on ``path``."""

    def refusals(rec: dict[str, Any], creds: Mapping[str, Any]) -> list[Check]:
        if not creds.get(credential):
            return []
        auth = {"type": "bearer", "token": creds[credential]}
        return [check(rec, "refuses the old credential", path, auth=auth, status=[401])]

    return refusals
