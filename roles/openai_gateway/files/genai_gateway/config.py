"""The gateway's configuration: the JSON file named by ``GATEWAY_CONFIG`` read and checked field by
field (a bad field stops the start with a message naming it; ``__main__`` exits 2), the backend
keys resolved from the environment, and the routing table (served model name -> backend) built.

The file (written by the role ``openai_gateway``)::

    {"listen": {"host": "127.0.0.1", "port": 8100},
     "backends": [{"name": "qwen3-micro", "url": "http://127.0.0.1:8001",
                   "models": ["qwen3-micro"], "api_key_env": "GATEWAY_BACKEND_KEY"}],
     "clients": [{"name": "genai", "key_sha256": "<64 hex>", "models": null,
                  "requests_per_minute": null, "tokens_per_minute": null}],
     "usage_file": "/var/lib/genai-gateway/usage.json", "usage_flush_seconds": 5}

Two knobs come from the environment, not the file: ``GATEWAY_CONNECT_TIMEOUT`` (seconds to open a
connection to a backend, default 5) and ``GATEWAY_READ_TIMEOUT`` (seconds a backend may stay
silent while answering, default 600: a long generation without streaming).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DEFAULT_PATH = "/etc/genai-gateway/config.json"
DEFAULT_CONNECT_TIMEOUT = 5.0
DEFAULT_READ_TIMEOUT = 600.0

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")

TOP_KEYS = {"listen", "backends", "clients", "usage_file", "usage_flush_seconds"}
LISTEN_KEYS = {"host", "port"}
BACKEND_KEYS = {"name", "url", "models", "api_key_env"}
CLIENT_KEYS = {"name", "key_sha256", "models", "requests_per_minute", "tokens_per_minute"}


class ConfigError(Exception):
    """A configuration that cannot be served; the message names the field."""


@dataclass(frozen=True)
class Backend:
    """One vLLM server: where it is, the model names it serves, the key it wants."""

    name: str
    url: str  # scheme://host:port[/prefix], no trailing slash
    models: tuple[str, ...]
    api_key_env: str | None
    api_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Client:
    """A caller: its name, the sha256 of its key, the models and rates it is allowed."""

    name: str
    key_sha256: bytes = field(repr=False)  # the raw 32-byte digest
    models: frozenset[str] | None
    requests_per_minute: int | None
    tokens_per_minute: int | None

    def may_use(self, model: str) -> bool:
        return self.models is None or model in self.models


@dataclass(frozen=True)
class Config:
    """The whole checked configuration."""

    host: str
    port: int
    backends: tuple[Backend, ...]
    clients: tuple[Client, ...]
    usage_file: Path
    usage_flush_seconds: float
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    routes: Mapping[str, Backend] = field(default_factory=dict)


def load(path: str | Path, env: Mapping[str, str]) -> Config:
    """Read and check the file at ``path``; ``env`` resolves the backends' ``api_key_env``."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the configuration: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: not valid JSON: {exc}") from exc
    try:
        return parse(data, env)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc


def parse(data: Any, env: Mapping[str, str]) -> Config:
    """Check the decoded configuration and build the routing table."""
    _object(data, "the configuration", TOP_KEYS, TOP_KEYS)
    listen = data["listen"]
    _object(listen, "listen", LISTEN_KEYS, LISTEN_KEYS)
    host = listen["host"]
    if not isinstance(host, str) or not host or any(c.isspace() for c in host):
        raise ConfigError(f"listen.host: must be an address, got {host!r}")
    port = _integer(listen["port"], "listen.port", 1, 65535)

    backends_data = data["backends"]
    if not isinstance(backends_data, list) or not backends_data:
        raise ConfigError("backends: must be a non-empty list")
    backends: list[Backend] = []
    routes: dict[str, Backend] = {}
    for index, item in enumerate(backends_data):
        backend = _backend(item, f"backends[{index}]", env)
        if any(b.name == backend.name for b in backends):
            raise ConfigError(f"backends[{index}].name: {backend.name!r} is given twice")
        for model in backend.models:
            if model in routes:
                raise ConfigError(
                    f"backends[{index}].models: {model!r} is already served by backend "
                    f"{routes[model].name!r}"
                )
            routes[model] = backend
        backends.append(backend)

    clients_data = data["clients"]
    if not isinstance(clients_data, list):
        raise ConfigError("clients: must be a list")
    clients: list[Client] = []
    for index, item in enumerate(clients_data):
        client = _client(item, f"clients[{index}]", routes)
        for other in clients:
            if other.name == client.name:
                raise ConfigError(f"clients[{index}].name: {client.name!r} is given twice")
            if other.key_sha256 == client.key_sha256:
                raise ConfigError(
                    f"clients[{index}].key_sha256: the same key as client {other.name!r}"
                )
        clients.append(client)

    usage_file = data["usage_file"]
    if not isinstance(usage_file, str) or not usage_file.strip():
        raise ConfigError(f"usage_file: must be a file path, got {usage_file!r}")
    flush = data["usage_flush_seconds"]
    if isinstance(flush, bool) or not isinstance(flush, int | float) or not 0 < flush <= 3600:
        raise ConfigError(f"usage_flush_seconds: must be a number in (0, 3600], got {flush!r}")

    return Config(
        host=host,
        port=port,
        backends=tuple(backends),
        clients=tuple(clients),
        usage_file=Path(usage_file),
        usage_flush_seconds=float(flush),
        connect_timeout=_seconds(env, "GATEWAY_CONNECT_TIMEOUT", DEFAULT_CONNECT_TIMEOUT),
        read_timeout=_seconds(env, "GATEWAY_READ_TIMEOUT", DEFAULT_READ_TIMEOUT),
        routes=routes,
    )


def _object(value: Any, where: str, required: set[str], allowed: set[str]) -> None:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: must be an object, got {type(value).__name__}")
    prefix = "" if where == "the configuration" else f"{where}."
    missing = sorted(required - set(value))
    if missing:
        raise ConfigError(f"{prefix}{missing[0]}: missing")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown setting")


def _integer(value: Any, where: str, low: int, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{where}: must be an integer, got {value!r}")
    if value < low or (high is not None and value > high):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise ConfigError(f"{where}: must be {bound}, got {value}")
    return value


def _name(value: Any, where: str) -> str:
    if not isinstance(value, str) or not NAME.fullmatch(value):
        raise ConfigError(
            f"{where}: must be 1-64 letters, digits, '.', '_' or '-' (not first), got {value!r}"
        )
    return value


def _models(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ConfigError(f"{where}: must be a non-empty list of model names")
    for position, model in enumerate(value):
        if not isinstance(model, str) or not model or model != model.strip():
            raise ConfigError(f"{where}[{position}]: must be a model name, got {model!r}")
        if model in value[:position]:
            raise ConfigError(f"{where}[{position}]: {model!r} is given twice")
    return tuple(value)


def _backend(item: Any, where: str, env: Mapping[str, str]) -> Backend:
    _object(item, where, BACKEND_KEYS - {"api_key_env"}, BACKEND_KEYS)
    name = _name(item["name"], f"{where}.name")
    url = item["url"]
    parts = urlsplit(url) if isinstance(url, str) else None
    if (
        parts is None
        or parts.scheme not in ("http", "https")
        or not parts.hostname
        or parts.query
        or parts.fragment
        or parts.username
    ):
        raise ConfigError(f"{where}.url: must be an http:// or https:// base URL, got {url!r}")
    try:
        parts.port  # noqa: B018 -- raises on a bad port
    except ValueError as exc:
        raise ConfigError(f"{where}.url: {exc}, got {url!r}") from exc
    models = _models(item["models"], f"{where}.models")
    key_env = item.get("api_key_env")
    key: str | None = None
    if key_env is not None:
        if not isinstance(key_env, str) or not ENV_NAME.fullmatch(key_env):
            raise ConfigError(
                f"{where}.api_key_env: must name an environment variable, got {key_env!r}"
            )
        key = env.get(key_env)
        if not key:
            raise ConfigError(f"{where}.api_key_env: the environment variable {key_env} is unset")
    return Backend(name, url.rstrip("/"), models, key_env, key)


def _client(item: Any, where: str, routes: Mapping[str, Backend]) -> Client:
    _object(item, where, CLIENT_KEYS, CLIENT_KEYS)
    name = _name(item["name"], f"{where}.name")
    digest = item["key_sha256"]
    if not isinstance(digest, str) or not SHA256_HEX.fullmatch(digest):
        raise ConfigError(f"{where}.key_sha256: must be 64 hexadecimal digits")
    models: frozenset[str] | None = None
    if item["models"] is not None:
        listed = _models(item["models"], f"{where}.models")
        for position, model in enumerate(listed):
            if model not in routes:
                raise ConfigError(
                    f"{where}.models[{position}]: {model!r} is served by no backend "
                    f"(served: {', '.join(sorted(routes))})"
                )
        models = frozenset(listed)
    rates: list[int | None] = []
    for rate in ("requests_per_minute", "tokens_per_minute"):
        value = item[rate]
        rates.append(None if value is None else _integer(value, f"{where}.{rate}", 1))
    return Client(name, bytes.fromhex(digest), models, rates[0], rates[1])


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not 0 < value <= 86400:
        raise ConfigError(f"{name}: must be a number of seconds in (0, 86400], got {raw!r}")
    return value
