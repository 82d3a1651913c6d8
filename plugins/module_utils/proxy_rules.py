"""Reverse-proxy rules computed once from the service model, rendered by every front door.

Both the IIS role (web.config per site) and the nginx role (a server per hostname) render these
rules; neither keeps its own list of hostnames, backends or limits. One rule per published service:
public hostname, backend as reachable from the proxy, websocket paths, body limit, timeout,
buffering, forwarded headers and the certificate for that hostname.

Bad input is reported all at once, each problem naming the variable to fix.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from ansible_collections.myia.genai_stack.plugins.module_utils import services, specs

#: keys a per-service override may change
OVERRIDABLE = ("backend_url", "max_body_mb", "timeout_s", "streaming", "websocket_paths")
#: certificate forms: an IIS certificate thumbprint, or nginx certificate + key files
CERTIFICATE_KINDS = ("thumbprint", "files")

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$"
)
_PATH = re.compile(r"^/[A-Za-z0-9._~/-]*$")
_THUMBPRINT = re.compile(r"^[0-9A-F]{40}$")
_ID = re.compile(r"[^a-z0-9_-]+")


class ProxyRulesError(ValueError):
    pass


#: a certificate file path that cannot end a config directive or start another
_FILE_PATH = re.compile(r"^/[A-Za-z0-9._+@/-]+$")


def _hms(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def _positive_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(value)
    except (TypeError, ValueError):
        return None
    return number if number > 0 and str(number) == str(value).strip() else None


def _bool(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    return None


def _certificate(kind: str, value: Any, where: str, problems: list[str]) -> Any:
    """The certificate in its normal form, or None after noting the problem."""
    if kind == "thumbprint":
        thumbprint = re.sub(r"[\s:]", "", str(value or "")).upper()
        if not _THUMBPRINT.match(thumbprint):
            problems.append(f"{where}: {value!r} is not a certificate thumbprint (40 hex digits)")
            return None
        return thumbprint
    if not isinstance(value, dict):
        problems.append(f"{where}: must be a dict with certificate and key (file paths)")
        return None
    files = {}
    for key in ("certificate", "key"):
        path = value.get(key)
        if not isinstance(path, str) or not path.startswith("/"):
            problems.append(f"{where}.{key}: an absolute file path is required")
            return None
        if not _FILE_PATH.match(path) or "/../" in path + "/":
            problems.append(
                f"{where}.{key}: {path!r} may hold only letters, digits and . _ - + @ / "
                "(it lands in the proxy's config as it is)"
            )
            return None
        files[key] = path
    return files


def _normalise(raw: Any, where: str, problems: list[str]) -> dict[str, Any] | None:
    """A service record with the kind's defaults filled in (records may be written by hand)."""
    if not isinstance(raw, dict):
        problems.append(f"{where}: must be a service record (dict), got {type(raw).__name__}")
        return None
    kind = raw.get("kind")
    if kind not in services.KINDS:
        problems.append(f"{where}.kind: {kind!r} is not one of {', '.join(services.KINDS)}")
        return None
    if not raw.get("name"):
        problems.append(f"{where}.name: missing")
        return None
    rec = {**services.KINDS[kind], **{k: v for k, v in raw.items() if v is not None}}
    if not rec.get("backend_url"):
        port = _positive_int(rec.get("port"))
        if port is None:
            problems.append(f"{where}: needs backend_url or port")
            return None
        rec["backend_url"] = specs.reach_url(rec.get("bind_address"), port)
    rec["hostname"] = raw.get("hostname") or None
    return rec


def _rule(
    rec: dict[str, Any], where: str, backend_host: str | None, https_port: int, problems: list[str]
) -> dict[str, Any] | None:
    before = len(problems)
    hostname = str(rec["hostname"]).strip().lower().rstrip(".")
    if not _HOSTNAME.match(hostname):
        problems.append(f"{where}.hostname: {rec['hostname']!r} is not a DNS name")
    url = urlsplit(str(rec["backend_url"]))
    try:
        backend_port = url.port or (443 if url.scheme == "https" else 80)
    except ValueError:
        backend_port = None
    if url.scheme not in ("http", "https") or not url.hostname or backend_port is None:
        problems.append(f"{where}.backend_url: {rec['backend_url']!r} is not http(s)://host:port")
    elif url.path not in ("", "/") or url.query:
        problems.append(f"{where}.backend_url: {rec['backend_url']!r} must not carry a path")
    limits = {}
    for key in ("max_body_mb", "timeout_s"):
        limits[key] = _positive_int(rec.get(key))
        if limits[key] is None:
            problems.append(f"{where}.{key}: {rec.get(key)!r} is not a positive integer")
    streaming = _bool(rec.get("streaming", False))
    if streaming is None:
        problems.append(f"{where}.streaming: {rec.get('streaming')!r} is not a boolean")
    paths = rec.get("websocket_paths") or []
    if not isinstance(paths, list) or not all(isinstance(p, str) and _PATH.match(p) for p in paths):
        problems.append(
            f"{where}.websocket_paths: {paths!r} must be a list of paths like /ws "
            "(letters, digits, . _ ~ - /)"
        )
        paths = []
    if len(problems) > before:
        return None
    host = specs.url_host(backend_host or url.hostname)
    backend = f"{url.scheme}://{host}:{backend_port}"
    public = hostname if https_port == 443 else f"{hostname}:{https_port}"
    websockets = []
    for path in dict.fromkeys(p.rstrip("/") or "/" for p in paths):
        tail = re.escape(path.lstrip("/"))
        websockets.append(
            {
                "path": path,
                # the path itself and anything below it, query strings aside
                "regex": f"^/{tail}(/.*)?$",
                # the same, relative to the site root (IIS URL Rewrite matches without the slash)
                "relative_regex": f"^{tail}(/.*)?$",
            }
        )
    return {
        "name": str(rec["name"]),
        "id": _ID.sub("-", str(rec["name"]).lower()).strip("-") or "service",
        "kind": rec["kind"],
        "auth": rec.get("auth"),
        "hostname": hostname,
        "public_url": f"https://{public}",
        "backend_url": backend,
        "backend_scheme": url.scheme,
        "backend_host": host,
        "backend_port": backend_port,
        "health_path": rec.get("health_path"),
        "websockets": websockets,
        "websocket_paths": [w["path"] for w in websockets],
        "max_body_mb": limits["max_body_mb"],
        "max_body_bytes": limits["max_body_mb"] * 1024 * 1024,
        "timeout_s": limits["timeout_s"],
        "timeout_hms": _hms(limits["timeout_s"]),
        "streaming": streaming,
        "buffering": not streaming,
        # the backend sees the public Host (ComfyUI refuses an Origin that differs from Host)
        "preserve_host": True,
        "headers": [
            {
                "name": "X-Forwarded-Proto",
                "value": "https",
                "server_variable": "HTTP_X_FORWARDED_PROTO",
            },
            {
                "name": "X-Forwarded-Host",
                "value": public,
                "server_variable": "HTTP_X_FORWARDED_HOST",
            },
        ],
    }


def compute(
    records: Any,
    prefix: str,
    *,
    certificate_kind: str,
    publish: list[str] | None = None,
    overrides: dict[str, dict[str, Any]] | None = None,
    backend_host: str | None = None,
    certificates: dict[str, Any] | None = None,
    default_certificate: Any = None,
    https_port: int = 443,
) -> list[dict[str, Any]]:
    """One rule per published service; every problem named after the variable `<prefix>_...`."""
    if certificate_kind not in CERTIFICATE_KINDS:
        raise ProxyRulesError(f"certificate_kind must be one of {CERTIFICATE_KINDS}")
    var = {
        k: f"{prefix}_{k}"
        for k in ("services", "publish", "overrides", "certificates", "default_certificate")
    }
    problems: list[str] = []
    if not isinstance(records, list):
        raise ProxyRulesError(f"{var['services']}: must be a list of service records")
    normal: list[tuple[str, dict[str, Any]]] = []
    for i, raw in enumerate(records):
        where = f"{var['services']}[{i}]"
        rec = _normalise(raw, where, problems)
        if rec is not None:
            normal.append((where, rec))
    by_name: dict[str, tuple[str, dict[str, Any]]] = {}
    for where, rec in normal:
        name = str(rec["name"])
        if name in by_name:
            problems.append(f"{where}: name {name!r} already used by {by_name[name][0]}")
        else:
            by_name[name] = (where, rec)

    overrides = overrides or {}
    if not isinstance(overrides, dict):
        problems.append(f"{var['overrides']}: must be a dict keyed by service name")
        overrides = {}
    for name, change in overrides.items():
        where = f"{var['overrides']}[{name!r}]"
        if name not in by_name:
            problems.append(
                f"{where}: {name!r} is not a service of {var['services']} "
                f"(known: {', '.join(by_name) or 'none'})"
            )
            continue
        if not isinstance(change, dict):
            problems.append(f"{where}: must be a dict")
            continue
        for key in change:
            if key not in OVERRIDABLE:
                problems.append(
                    f"{where}.{key}: cannot be overridden (only {', '.join(OVERRIDABLE)})"
                )
        by_name[name][1].update({k: v for k, v in change.items() if k in OVERRIDABLE})

    if publish:
        if not isinstance(publish, list):
            raise ProxyRulesError(f"{var['publish']}: must be a list of service names")
        chosen = []
        for i, name in enumerate(publish):
            if name not in by_name:
                problems.append(
                    f"{var['publish']}[{i}]: {name!r} is not a service of {var['services']} "
                    f"(known: {', '.join(by_name) or 'none'})"
                )
            elif not by_name[name][1]["hostname"]:
                problems.append(
                    f"{var['publish']}[{i}]: service {name!r} has no hostname "
                    f"(set it in {by_name[name][0]})"
                )
            else:
                chosen.append(by_name[name])
    else:
        chosen = [by_name[n] for n in by_name if by_name[n][1]["hostname"]]

    rules: list[dict[str, Any]] = []
    seen: dict[str, str] = {}
    for where, rec in chosen:
        rule = _rule(rec, where, backend_host or None, int(https_port), problems)
        if rule is None:
            continue
        if rule["hostname"] in seen:
            problems.append(
                f"{where}.hostname: {rule['hostname']!r} already used by {seen[rule['hostname']]}"
            )
            continue
        seen[rule["hostname"]] = where
        rules.append(rule)

    certificates = certificates or {}
    if not isinstance(certificates, dict):
        problems.append(f"{var['certificates']}: must be a dict keyed by hostname")
        certificates = {}
    known = {str(r["hostname"]).strip().lower().rstrip(".") for _, r in normal if r["hostname"]}
    wanted = {str(h).strip().lower().rstrip("."): c for h, c in certificates.items()}
    for host in certificates:
        if str(host).strip().lower().rstrip(".") not in known:
            problems.append(
                f"{var['certificates']}[{host!r}]: not the hostname of a service in "
                f"{var['services']} (known: {', '.join(sorted(known)) or 'none'})"
            )
    default = None
    if default_certificate:
        default = _certificate(
            certificate_kind, default_certificate, var["default_certificate"], problems
        )
    for rule in rules:
        host = rule["hostname"]
        if wanted.get(host):
            rule["certificate"] = _certificate(
                certificate_kind, wanted[host], f"{var['certificates']}[{host!r}]", problems
            )
        elif default_certificate:
            rule["certificate"] = default
        else:
            problems.append(
                f"{var['certificates']}[{host!r}]: no certificate for {host} (service "
                f"{rule['name']}); set it or {var['default_certificate']}"
            )
    if problems:
        raise ProxyRulesError("invalid reverse proxy rules:\n- " + "\n- ".join(problems))
    return rules
