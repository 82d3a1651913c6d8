"""The nginx front door, checked from outside over real TLS with SNI (pytest-testinfra + sockets).

Every request goes to 127.0.0.1 with the public hostname as SNI and Host, as a client that
resolves the name to this host would send it; the echo backends say what reached them.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import time
from typing import Any

import pytest

SERVICES: list[dict[str, Any]] = json.loads(os.environ["PROXY_TEST_SERVICES"])
OVERRIDES: dict[str, dict[str, Any]] = json.loads(os.environ["PROXY_TEST_OVERRIDES"])
CA = os.environ["PROXY_TEST_CA"]
ADDRESS = os.environ["PROXY_TEST_ADDRESS"]
HTTPS = int(os.environ["PROXY_TEST_HTTPS_PORT"])
HTTP = int(os.environ["PROXY_TEST_HTTP_PORT"])
CONFIG = os.environ["PROXY_TEST_CONFIG"]
PUBLISHED = [s for s in SERVICES if s.get("hostname")]
IDS = [s["name"] for s in PUBLISHED]
BY_KIND = {s["kind"]: s for s in PUBLISHED}
MB = 1024 * 1024


def limit_mb(service: dict[str, Any]) -> int:
    return int(OVERRIDES.get(service["name"], {}).get("max_body_mb", service["max_body_mb"]))


def tls(hostname: str) -> ssl.SSLSocket:
    context = ssl.create_default_context(cafile=CA)
    raw = socket.create_connection((ADDRESS, HTTPS), timeout=10)
    return context.wrap_socket(raw, server_hostname=hostname)


class SNIConnection(http.client.HTTPSConnection):
    """HTTPS to the proxy's address, with the public hostname as SNI and Host."""

    def __init__(self, hostname: str, timeout: float = 10) -> None:
        super().__init__(hostname, HTTPS, timeout=timeout)
        self.public = hostname

    def connect(self) -> None:
        self.sock = tls(self.public)


def https(hostname: str, method: str = "GET", path: str = "/", body: bytes | None = None,
          headers: dict[str, str] | None = None, timeout: float = 10) -> http.client.HTTPResponse:  # fmt: skip
    conn = SNIConnection(hostname, timeout=timeout)
    conn.request(method, path, body=body, headers=headers or {})
    return conn.getresponse()


def echo(hostname: str, **kwargs: Any) -> dict[str, Any]:
    response = https(hostname, **kwargs)
    assert response.status == 200, (response.status, response.read()[:300])
    return json.loads(response.read())


@pytest.mark.parametrize("service", PUBLISHED, ids=IDS)
def test_each_hostname_reaches_its_backend(service: dict[str, Any]) -> None:
    got = echo(service["hostname"], path="/v1/models")
    assert got["service"] == service["name"]
    assert got["path"] == "/v1/models"


@pytest.mark.parametrize("service", PUBLISHED, ids=IDS)
def test_forwarded_headers(service: dict[str, Any]) -> None:
    headers = echo(service["hostname"], headers={"X-Forwarded-For": "203.0.113.9"})["headers"]
    public = f"{service['hostname']}:{HTTPS}"
    assert headers["host"] == public
    assert headers["x-forwarded-proto"] == "https"
    assert headers["x-forwarded-host"] == public
    # the front door is the edge: a client cannot plant its own address
    assert headers["x-forwarded-for"] == "127.0.0.1"


@pytest.mark.parametrize("service", PUBLISHED, ids=IDS)
def test_credentials_pass_through(service: dict[str, Any]) -> None:
    got = echo(
        service["hostname"],
        method="POST",
        path="/prompt?token=%242b%2412%24abc%2Fdef&x=1",
        body=b'{"prompt": {}}',
        headers={"Authorization": "Bearer s3cret-token", "Content-Type": "application/json"},
    )
    assert got["method"] == "POST"
    assert got["headers"]["authorization"] == "Bearer s3cret-token"
    assert got["query"] == {"token": ["$2b$12$abc/def"], "x": ["1"]}
    assert got["body_length"] == len(b'{"prompt": {}}')


def test_private_service_is_not_published(host: Any) -> None:
    config = host.file(CONFIG).content_string
    for service in SERVICES:
        if not service.get("hostname"):
            assert f":{service['port']}" not in config, f"{service['name']} published"
    for service in PUBLISHED:
        assert f"server_name {service['hostname']};" in config


def test_comfyui_websocket_upgrades() -> None:
    comfy = BY_KIND["comfyui"]
    sock = tls(comfy["hostname"])
    sock.sendall(
        (
            f"GET /ws?clientId=abc&token=t0k HTTP/1.1\r\nHost: {comfy['hostname']}:{HTTPS}\r\n"
            "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
        ).encode()
    )
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0].startswith("HTTP/1.1 101"), lines
    assert "sec-websocket-accept: s3pplmbitxaq9kygzzhzrbk+xoo=" in [h.lower() for h in lines]
    # the frame the backend sends after the upgrade crosses the proxy
    while len(rest) < 4:
        rest += sock.recv(4096)
    assert rest[0] == 0x81
    size, start = (rest[1], 2) if rest[1] < 126 else (int.from_bytes(rest[2:4], "big"), 4)
    while len(rest) < start + size:
        rest += sock.recv(4096)
    frame = json.loads(rest[start : start + size])
    sock.close()
    assert frame["service"] == comfy["name"] and frame["path"] == "/ws"
    assert frame["query"] == {"clientId": ["abc"], "token": ["t0k"]}
    assert frame["headers"]["upgrade"] == "websocket"


def test_plain_location_does_not_upgrade() -> None:
    """Upgrade headers reach only the websocket paths."""
    got = echo(BY_KIND["comfyui"]["hostname"], path="/system_stats",
               headers={"Upgrade": "websocket", "Connection": "Upgrade"})  # fmt: skip
    assert "upgrade" not in got["headers"]


@pytest.mark.parametrize("kind", ["comfyui", "forge"])
def test_large_upload_passes(kind: str) -> None:
    service = BY_KIND[kind]
    size = 20 * MB
    got = echo(service["hostname"], method="POST", path="/upload/image", body=b"\0" * size,
               headers={"Content-Type": "application/octet-stream"}, timeout=30)  # fmt: skip
    assert got["body_length"] == size


@pytest.mark.parametrize("kind", ["comfyui", "forge", "vllm"])
def test_upload_above_the_limit_is_refused(kind: str) -> None:
    """nginx answers 413 on the announced length, before reading the body."""
    service = BY_KIND[kind]
    conn = SNIConnection(service["hostname"])
    conn.putrequest("POST", "/upload/image")
    conn.putheader("Content-Type", "application/octet-stream")
    conn.putheader("Content-Length", str(limit_mb(service) * MB + 1))
    conn.endheaders()
    response = conn.getresponse()
    assert response.status == 413


def test_forge_limit_comes_from_the_override() -> None:
    assert limit_mb(BY_KIND["forge"]) == 30


def test_vllm_streams_without_buffering() -> None:
    response = https(BY_KIND["vllm"]["hostname"], path="/stream",
                     headers={"Accept": "text/event-stream"})  # fmt: skip
    assert response.status == 200
    start = time.monotonic()
    first = response.readline()
    first_at = time.monotonic() - start
    rest = response.read()
    total = time.monotonic() - start
    assert first.startswith(b"data: ")
    assert rest.count(b"data: ") == 2
    # the backend sends the events 0.4 s apart; buffered, the first would come with the last
    assert total - first_at > 0.5, (first_at, total)


def test_read_timeout_from_the_record() -> None:
    """forge-turbo's timeout_s is 2 here: a backend silent for 3 s gets a 504 after ~2 s."""
    start = time.monotonic()
    response = https(BY_KIND["forge"]["hostname"], path="/sleep?s=3")
    elapsed = time.monotonic() - start
    # 504, not the backend's 200 at 3 s; and not an immediate failure either
    assert response.status == 504
    assert elapsed > 1.5, elapsed
    assert echo(BY_KIND["comfyui"]["hostname"], path="/sleep?s=3")["path"] == "/sleep"


@pytest.mark.parametrize("service", PUBLISHED, ids=IDS)
def test_http_redirects_to_https(service: dict[str, Any]) -> None:
    conn = http.client.HTTPConnection(ADDRESS, HTTP, timeout=5)
    conn.request("GET", "/sdapi/v1/options?a=1&b=2", headers={"Host": service["hostname"]})
    response = conn.getresponse()
    assert response.status == 301
    assert response.getheader("Location") == (
        f"https://{service['hostname']}:{HTTPS}/sdapi/v1/options?a=1&b=2"
    )


@pytest.mark.parametrize("hostname", ["unknown.genai.test", ADDRESS])
def test_unknown_hostname_refused_on_https(hostname: str) -> None:
    context = ssl.create_default_context(cafile=CA)
    context.check_hostname = False
    raw = socket.create_connection((ADDRESS, HTTPS), timeout=5)
    with pytest.raises(ssl.SSLError, match=r"UNRECOGNIZED_NAME|HANDSHAKE_FAILURE|alert"):
        context.wrap_socket(raw, server_hostname=hostname).close()


def test_unknown_hostname_refused_on_http() -> None:
    conn = http.client.HTTPConnection(ADDRESS, HTTP, timeout=5)
    conn.request("GET", "/", headers={"Host": "unknown.genai.test"})
    with pytest.raises((http.client.RemoteDisconnected, ConnectionResetError)):
        conn.getresponse()


@pytest.mark.parametrize("service", PUBLISHED, ids=IDS)
def test_certificate_per_hostname(service: dict[str, Any]) -> None:
    sock = tls(service["hostname"])  # verified against the test CA and the hostname
    cert = sock.getpeercert()
    sock.close()
    names = [value for kind, value in cert["subjectAltName"] if kind == "DNS"]
    if service["kind"] == "comfyui":
        assert names == [service["hostname"]], "comfyui has its own certificate"
    else:
        assert service["hostname"] in names and "comfyui.genai.test" not in names


def test_config_file_and_nginx(host: Any) -> None:
    config = host.file(CONFIG)
    assert config.user == "root" and config.mode == 0o644
    assert "ssl_reject_handshake on;" in config.content_string
    assert host.run("nginx -t").rc == 0
    assert not host.file("/etc/nginx/sites-enabled/default").exists
    assert not host.file("/usr/sbin/policy-rc.d").exists, "install-time start policy left behind"
    # every socket nginx opens is one of the test's (never the host's ports 80 and 443)
    dump = host.run("nginx -T").stdout
    listens = {line.split()[1].rstrip(";") for line in dump.splitlines()
               if line.strip().startswith("listen ")}  # fmt: skip
    assert listens == {f"{ADDRESS}:{HTTPS}", f"{ADDRESS}:{HTTP}"}, listens
