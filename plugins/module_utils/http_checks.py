# Copyright: (c) 2025, genai_stack team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Concurrent HTTP endpoint checks with retries, deadlines and secret masking.

Pure Python standard library, no Ansible imports: the ``endpoint_health`` module and the
Python driver both use it. Works on Python 3.9+ (module targets) and 3.11 (controller).

One :class:`EndpointCheck` describes a request and what a healthy answer looks like; one
:class:`CheckResult` tells what happened. :func:`run_checks` runs every check concurrently.

Retry model (per check, its clock starts when the check starts):

* ``deadline > 0``: attempt, and on failure sleep then retry, until an attempt is healthy or
  ``deadline`` seconds have passed (a last attempt is made when the deadline is reached;
  each attempt's timeout is shortened so that it ends near the deadline).
* ``deadline == 0``: at most ``1 + retries`` attempts.

Between attempts the delay starts at ``delay`` and is multiplied by ``backoff_factor`` after
each failed attempt, capped at ``max_delay``. Connection errors, timeouts, TLS errors,
unexpected status codes and failed body/JSON expectations are all failures that are retried.

Body expectations (all optional, all must hold):

* ``body_contains``: a substring of the body text.
* ``json_path``: a dotted path into the JSON body, list elements by index (``data.0.id``;
  negative indexes count from the end; ``""`` is the whole document). Without ``json_value``
  the path must exist; with it, the value there must equal ``json_value`` (a string
  ``json_value`` also matches the JSON text of a number, boolean or null: ``"200"`` matches
  ``200``, ``"true"`` matches ``true``).
* ``json_contains``: ``{"path": <dotted path>, "value": <expected>}``; the value at ``path``
  must contain ``value``:

  - a string contains ``value`` as a substring;
  - a list contains an element equal to ``value``; or, for elements that are objects, an
    element having every key/value of ``value`` when ``value`` is an object
    (``{"id": "qwen3-8b"}``), or having ``value`` among its values when ``value`` is a scalar
    (``"qwen3-8b"`` matches ``[{"id": "qwen3-8b", ...}]``);
  - an object contains ``value`` as a key (scalar ``value``) or as a subset of its key/values
    (object ``value``).

Secrets (bearer tokens, basic passwords, query token values, the basic credentials' base64 form,
values of sensitive headers and URL user info) never appear in results: they are replaced by
``***`` in the URL, in error messages and in the body snippet.
"""

from __future__ import annotations

import base64
import http.client
import json
import os
import socket
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import Any

MASK = "***"
SNIPPET_LEN = 300
MIN_ATTEMPT_TIMEOUT = 0.2
DEFAULT_ACCEPT = "application/json, text/plain;q=0.9, */*;q=0.5"
USER_AGENT = "myia.genai_stack-endpoint_health/1"

AUTH_TYPES = ("bearer", "basic", "query")

# Query parameters whose values are always masked in reported URLs.
SENSITIVE_QUERY_PARAMS = frozenset(
    ("token", "access_token", "api_key", "apikey", "key", "password", "secret", "auth")
)
# Header names whose values are treated as secrets (compared lower-case).
SENSITIVE_HEADER_WORDS = ("authorization", "token", "key", "secret", "cookie", "password")

_MISSING = object()


class CheckDefinitionError(ValueError):
    """An EndpointCheck that cannot be run (bad auth block, bad method...)."""


class JsonPathError(LookupError):
    """A dotted JSON path that does not resolve in a document."""


@dataclass
class EndpointCheck:
    """One endpoint to check, and what a healthy answer looks like.

    ``auth`` is ``None`` or one of ``{"type": "bearer", "token": ...}``,
    ``{"type": "basic", "username": ..., "password": ...}``,
    ``{"type": "query", "param": "token", "value": ...}`` (``param`` defaults to ``token``).
    ``body`` is sent as JSON unless it is a ``str`` (sent as is) or ``None`` (no body).
    """

    name: str
    url: str
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    auth: dict[str, Any] | None = None
    body: Any = None
    status: list[int] = field(default_factory=lambda: [200])
    json_path: str | None = None
    json_value: Any = None
    json_contains: dict[str, Any] | None = None
    body_contains: str | None = None
    timeout: float = 10.0
    deadline: float = 0.0
    retries: int = 0
    delay: float = 1.0
    backoff_factor: float = 2.0
    max_delay: float = 10.0
    validate_certs: bool = True
    ca_path: str | None = None
    use_proxy: bool = True

    def secrets(self) -> list[str]:
        """Every secret string this check may send, longest first (for masking)."""
        found: list[str] = []
        auth = self.auth or {}
        kind = auth.get("type")
        if kind == "bearer":
            found.append(str(auth.get("token") or ""))
        elif kind == "basic":
            user = str(auth.get("username") or "")
            password = str(auth.get("password") or "")
            found.append(password)
            found.append(_b64(f"{user}:{password}"))
        elif kind == "query":
            value = str(auth.get("value") or "")
            found.append(value)
            found.append(urllib.parse.quote(value, safe=""))
            found.append(urllib.parse.quote_plus(value))
        for hname, hvalue in self.headers.items():
            if is_sensitive_header(hname):
                text = str(hvalue)
                found.append(text)
                # "Bearer abc" -> also mask "abc" on its own
                parts = text.split(None, 1)
                if len(parts) == 2:
                    found.append(parts[1])
        parsed = urllib.parse.urlsplit(self.url)
        if parsed.password:
            found.append(parsed.password)
            found.append(urllib.parse.unquote(parsed.password))
            found.append(_b64(urllib.parse.unquote(parsed.netloc.rsplit("@", 1)[0])))
        for pname, pvalue in urllib.parse.parse_qsl(parsed.query, keep_blank_values=True):
            if pname.lower() in SENSITIVE_QUERY_PARAMS:
                found.append(pvalue)
        # Ignore empty/very short strings: masking "" or "a" would mangle every message.
        unique = {s for s in found if len(s) >= 3}
        return sorted(unique, key=len, reverse=True)


@dataclass
class CheckResult:
    """What happened to one check. Safe to log: it holds no secret."""

    name: str
    url: str
    ok: bool
    status: int | None
    latency_ms: float | None
    attempts: int
    elapsed_s: float
    error: str | None
    body_snippet: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def is_sensitive_header(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in SENSITIVE_HEADER_WORDS)


def _b64(text: str) -> str:
    return base64.b64encode(text.encode("utf-8")).decode("ascii")


def mask_text(text: str, secrets: list[str]) -> str:
    """Replace every secret in ``text`` by ``***``."""
    for secret in secrets:
        if secret and secret in text:
            text = text.replace(secret, MASK)
    return text


def mask_url(url: str, secret_params: tuple[str, ...] = ()) -> str:
    """Mask user info and sensitive query values (``?token=***``) of ``url``."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = MASK + "@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        names = {p.lower() for p in secret_params} | SENSITIVE_QUERY_PARAMS
        pairs = urllib.parse.parse_qsl(query, keep_blank_values=True)
        masked = [(k, MASK if k.lower() in names else v) for k, v in pairs]
        query = urllib.parse.urlencode(masked, safe="*")
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _add_query(url: str, param: str, value: str) -> str:
    parts = urllib.parse.urlsplit(url)
    pairs = urllib.parse.parse_qsl(parts.query, keep_blank_values=True)
    pairs = [(k, v) for k, v in pairs if k != param] + [(param, value)]
    query = urllib.parse.urlencode(pairs)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))


def _short(value: Any, limit: int = 80) -> str:
    try:
        text = json.dumps(value, sort_keys=True, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --------------------------------------------------------------------------- JSON helpers


def resolve_path(document: Any, path: str | None) -> Any:
    """Follow a dotted path (``data.0.id``) into ``document``.

    Returns the value, or raises ``JsonPathError`` naming the first segment that is missing.
    """
    if not path:
        return document
    current = document
    walked: list[str] = []
    for segment in path.split("."):
        if isinstance(current, dict):
            if segment not in current:
                raise JsonPathError(_path_error(walked, segment, "no such key"))
            current = current[segment]
        elif isinstance(current, list):
            try:
                index = int(segment)
            except ValueError:
                raise JsonPathError(_path_error(walked, segment, "not a list index")) from None
            if not -len(current) <= index < len(current):
                raise JsonPathError(
                    _path_error(walked, segment, f"index out of range (length {len(current)})")
                )
            current = current[index]
        else:
            kind = type(current).__name__ if current is not None else "null"
            raise JsonPathError(_path_error(walked, segment, f"cannot index into {kind}"))
        walked.append(segment)
    return current


def _path_error(walked: list[str], segment: str, why: str) -> str:
    at = ".".join(walked) if walked else "<root>"
    return f"'{segment}' at {at}: {why}"


def json_equals(actual: Any, expected: Any) -> bool:
    """Equality, where a string ``expected`` also matches the JSON text of a scalar."""
    if isinstance(actual, bool) != isinstance(expected, bool) and not isinstance(expected, str):
        return False  # True == 1 in Python, not in JSON
    if actual == expected:
        return True
    if isinstance(expected, str) and not isinstance(actual, (str, list, dict)):
        return json.dumps(actual) == expected
    return False


def json_contains(container: Any, expected: Any) -> bool:
    """True when ``container`` contains ``expected`` (see the module docstring)."""
    if isinstance(container, str):
        return isinstance(expected, str) and expected in container
    if isinstance(container, list):
        for item in container:
            if json_equals(item, expected):
                return True
            if isinstance(item, dict):
                if isinstance(expected, dict):
                    if _dict_subset(item, expected):
                        return True
                elif any(json_equals(v, expected) for v in item.values()):
                    return True
        return False
    if isinstance(container, dict):
        if isinstance(expected, dict):
            return _dict_subset(container, expected)
        return isinstance(expected, str) and expected in container
    return False


def _dict_subset(item: dict[str, Any], expected: dict[str, Any]) -> bool:
    return all(k in item and json_equals(item[k], v) for k, v in expected.items())


# --------------------------------------------------------------------------- HTTP


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Report 3xx as they are: following them could turn a login redirect into a 200."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[no-untyped-def]
        return None


_SSL_CONTEXTS: dict[tuple[bool, str | None, float], ssl.SSLContext] = {}
_SSL_LOCK = threading.Lock()


def _ssl_context(check: EndpointCheck) -> ssl.SSLContext:
    """A shared SSL context per (validate_certs, ca_path): building one costs ~20 ms of CPU."""
    mtime = os.path.getmtime(check.ca_path) if check.ca_path else 0.0
    key = (bool(check.validate_certs), check.ca_path, mtime)
    with _SSL_LOCK:
        context = _SSL_CONTEXTS.get(key)
        if context is None:
            if check.validate_certs:
                context = ssl.create_default_context(cafile=check.ca_path)
            else:
                context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            _SSL_CONTEXTS[key] = context
        return context


def _build_request(check: EndpointCheck) -> urllib.request.Request:
    method = (check.method or "GET").upper()
    url, userinfo = _split_userinfo(check.url)
    headers: dict[str, str] = {"User-Agent": USER_AGENT, "Accept": DEFAULT_ACCEPT}
    if userinfo is not None:  # http://user:pass@host/ -> HTTP Basic (urllib cannot send it)
        headers["Authorization"] = "Basic " + _b64(userinfo)
    headers.update({str(k): str(v) for k, v in check.headers.items()})
    data: bytes | None = None
    if check.body is not None:
        if isinstance(check.body, (bytes, bytearray)):
            data = bytes(check.body)
        elif isinstance(check.body, str):
            data = check.body.encode("utf-8")
        else:
            data = json.dumps(check.body).encode("utf-8")
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
    auth = check.auth
    if auth:
        kind = auth.get("type")
        if kind == "bearer":
            _drop_header(headers, "authorization")
            headers["Authorization"] = "Bearer " + str(auth.get("token") or "")
        elif kind == "basic":
            _drop_header(headers, "authorization")
            creds = f"{auth.get('username') or ''}:{auth.get('password') or ''}"
            headers["Authorization"] = "Basic " + _b64(creds)
        elif kind == "query":
            url = _add_query(url, str(auth.get("param") or "token"), str(auth.get("value") or ""))
        else:
            raise CheckDefinitionError(f"auth.type must be one of {', '.join(AUTH_TYPES)}")
    return urllib.request.Request(url, data=data, headers=headers, method=method)


def _split_userinfo(url: str) -> tuple[str, str | None]:
    """``http://u:p@h/x`` -> (``http://h/x``, ``"u:p"``); (url, None) without user info."""
    parts = urllib.parse.urlsplit(url)
    if "@" not in parts.netloc:
        return url, None
    userinfo, host = parts.netloc.rsplit("@", 1)
    bare = urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
    return bare, urllib.parse.unquote(userinfo)


def _drop_header(headers: dict[str, str], lowered: str) -> None:
    for key in [k for k in headers if k.lower() == lowered]:
        del headers[key]


def _describe_error(exc: BaseException, timeout: float) -> str:
    reason: Any = exc
    if isinstance(exc, urllib.error.URLError) and not isinstance(exc, urllib.error.HTTPError):
        reason = exc.reason
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return f"timed out after {timeout:g}s"
    if isinstance(reason, ssl.SSLError):
        return f"TLS error: {reason}"
    if isinstance(reason, socket.gaierror):
        return f"name resolution failed: {reason}"
    if isinstance(reason, http.client.RemoteDisconnected):
        return "server closed the connection without a response"
    if isinstance(reason, ConnectionResetError):
        return "connection reset by peer"
    if isinstance(reason, OSError) and reason.strerror:
        return f"connection error: {reason.strerror}"
    return f"{type(reason).__name__}: {reason}"


def _check_body(check: EndpointCheck, text: str) -> str | None:
    """Return why the body does not meet the check's expectations, or None."""
    if check.body_contains is not None and check.body_contains not in text:
        return f"body does not contain {_short(check.body_contains)}"
    if check.json_path is None and not check.json_contains:
        return None
    try:
        document = json.loads(text)
    except ValueError:
        return "body is not valid JSON"
    if check.json_path is not None:
        try:
            actual = resolve_path(document, check.json_path)
        except JsonPathError as exc:
            return f"json_path '{check.json_path}' not found: {exc}"
        if check.json_value is not None and not json_equals(actual, check.json_value):
            return (
                f"json_path '{check.json_path}' is {_short(actual)}, "
                f"expected {_short(check.json_value)}"
            )
    if check.json_contains:
        path = check.json_contains.get("path") or ""
        expected = check.json_contains.get("value")
        try:
            container = resolve_path(document, path)
        except JsonPathError as exc:
            return f"json_contains path '{path}' not found: {exc}"
        if not json_contains(container, expected):
            return (
                f"json_contains: value at '{path or '<root>'}' ({_short(container)}) "
                f"does not contain {_short(expected)}"
            )
    return None


@dataclass
class _Attempt:
    ok: bool
    status: int | None
    latency_ms: float
    error: str | None
    body: str


def _attempt(
    check: EndpointCheck,
    request: urllib.request.Request,
    opener: urllib.request.OpenerDirector,
    timeout: float,
) -> _Attempt:
    started = time.monotonic()
    status: int | None = None
    raw = b""
    try:
        try:
            with opener.open(request, timeout=timeout) as response:
                status = response.status
                raw = response.read()
        except urllib.error.HTTPError as exc:  # 4xx/5xx (and 3xx: redirects are not followed)
            status = exc.code
            try:
                raw = exc.read()
            except Exception:
                raw = b""
            finally:
                exc.close()
    except Exception as exc:
        latency = (time.monotonic() - started) * 1000.0
        return _Attempt(False, status, latency, _describe_error(exc, timeout), "")
    latency = (time.monotonic() - started) * 1000.0
    text = raw.decode("utf-8", errors="replace")
    if status not in check.status:
        expected = ", ".join(str(s) for s in check.status)
        return _Attempt(False, status, latency, f"status {status}, expected {expected}", text)
    why = _check_body(check, text)
    return _Attempt(why is None, status, latency, why, text)


def run_check(
    check: EndpointCheck,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> CheckResult:
    """Run one check with its retries/deadline and return a secret-free result."""
    secrets = check.secrets()
    secret_params: tuple[str, ...] = ()
    if check.auth and check.auth.get("type") == "query":
        secret_params = (str(check.auth.get("param") or "token"),)
    shown_url = mask_text(mask_url(check.url, secret_params), secrets)
    started = clock()
    try:
        request = _build_request(check)
        # Show what was requested (a query credential included), masked.
        sent = request.full_url
        if _split_userinfo(check.url)[1] is not None:
            sent = sent.replace("://", "://" + MASK + "@", 1)
        shown_url = mask_text(mask_url(sent, secret_params), secrets)
        handlers: list[urllib.request.BaseHandler] = [
            urllib.request.ProxyHandler(None if check.use_proxy else {}),
            _NoRedirect(),
        ]
        if request.type == "https":
            handlers.append(urllib.request.HTTPSHandler(context=_ssl_context(check)))
        opener = urllib.request.build_opener(*handlers)
    except (CheckDefinitionError, ValueError, OSError, ssl.SSLError) as exc:
        return CheckResult(
            name=check.name,
            url=shown_url,
            ok=False,
            status=None,
            latency_ms=None,
            attempts=0,
            elapsed_s=round(clock() - started, 3),
            error=mask_text(f"invalid check: {exc}", secrets),
        )

    deadline_at = started + check.deadline if check.deadline > 0 else None
    max_attempts = 1 + max(0, int(check.retries))
    delay = max(0.0, float(check.delay))
    attempts = 0
    while True:
        timeout = float(check.timeout)
        if deadline_at is not None:
            timeout = min(timeout, max(deadline_at - clock(), MIN_ATTEMPT_TIMEOUT))
        result = _attempt(check, request, opener, timeout)
        attempts += 1
        if result.ok:
            break
        now = clock()
        if deadline_at is not None:
            if now >= deadline_at:
                break
            pause = min(delay, deadline_at - now)
        else:
            if attempts >= max_attempts:
                break
            pause = delay
        if pause > 0:
            sleep(pause)
        delay = min(delay * max(1.0, float(check.backoff_factor)), float(check.max_delay))

    error = result.error
    if error is not None and attempts > 1:
        error = f"{error} (after {attempts} attempts)"
    body = mask_text(result.body, secrets)
    if len(body) > SNIPPET_LEN:
        body = body[:SNIPPET_LEN]
    return CheckResult(
        name=check.name,
        url=shown_url,
        ok=result.ok,
        status=result.status,
        latency_ms=round(result.latency_ms, 1),
        attempts=attempts,
        elapsed_s=round(clock() - started, 3),
        error=mask_text(error, secrets) if error is not None else None,
        body_snippet=body,
    )


def run_checks(checks: list[EndpointCheck], max_workers: int = 16) -> list[CheckResult]:
    """Run every check concurrently (at most ``max_workers`` at a time); results in order."""
    if not checks:
        return []
    workers = max(1, min(int(max_workers), len(checks)))
    if workers == 1:
        return [run_check(c) for c in checks]
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="endpoint-check") as pool:
        return list(pool.map(run_check, checks))


def check_from_dict(spec: dict[str, Any], defaults: dict[str, Any] | None = None) -> EndpointCheck:
    """Build an EndpointCheck from a plain dict (module params, driver config).

    Keys that are missing or ``None`` in ``spec`` take their value from ``defaults``, then from
    the dataclass defaults. ``name`` defaults to the (masked) URL.
    """
    merged: dict[str, Any] = {}
    for source in (defaults or {}, spec):
        for key, value in source.items():
            if value is not None:
                merged[key] = value
    if not merged.get("url"):
        raise CheckDefinitionError("every endpoint needs a url")
    known = set(EndpointCheck.__dataclass_fields__)
    unknown = sorted(set(merged) - known)
    if unknown:
        raise CheckDefinitionError(f"unknown endpoint keys: {', '.join(unknown)}")
    if not merged.get("name"):
        merged["name"] = mask_url(str(merged["url"]))
    auth = merged.get("auth")
    if auth is not None:
        auth = {k: v for k, v in dict(auth).items() if v is not None}
        if auth.get("type") not in AUTH_TYPES:
            raise CheckDefinitionError(f"auth.type must be one of {', '.join(AUTH_TYPES)}")
        merged["auth"] = auth
    if "status" in merged:
        merged["status"] = [int(s) for s in merged["status"]]
    return EndpointCheck(**merged)


def summarize(results: list[CheckResult], elapsed_s: float) -> dict[str, Any]:
    ok = sum(1 for r in results if r.ok)
    return {
        "total": len(results),
        "ok": ok,
        "failed": len(results) - ok,
        "elapsed_s": round(elapsed_s, 3),
    }


def failure_message(results: list[CheckResult]) -> str:
    """One line naming every failed endpoint with its URL, status and error."""
    failed = [r for r in results if not r.ok]
    if not failed:
        return f"all {len(results)} endpoints are healthy"
    parts = [
        f"{r.name} ({r.url}): status={r.status if r.status is not None else 'none'}, "
        f"error={r.error}"
        for r in failed
    ]
    return f"{len(failed)} of {len(results)} endpoints failed: " + "; ".join(parts)


__all__ = [
    "MASK",
    "CheckDefinitionError",
    "CheckResult",
    "EndpointCheck",
    "JsonPathError",
    "check_from_dict",
    "failure_message",
    "json_contains",
    "json_equals",
    "mask_text",
    "mask_url",
    "resolve_path",
    "run_check",
    "run_checks",
    "summarize",
]
