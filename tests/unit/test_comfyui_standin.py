"""Tests of the ComfyUI + ComfyUI-Login stand-in (tests/standins/comfyui), run as a subprocess.

Each server runs from a private copy of the stand-in's ComfyUI tree (its root holds login/,
models/, input/, output/), on a free 127.0.0.1 port.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

STANDIN = Path(__file__).resolve().parents[1] / "standins" / "comfyui" / "ComfyUI"
TOKEN = "$2b$12$Jm3bU8cX4lq0bKQ1c1VY7uY0y6c7oD2Vq5GZC3Oe7k2n1gYxk6b5u"
ORIGIN = "https://comfyui.example.org"
MODELS = {
    "diffusion_models": "qwen_image_edit_fp8_e4m3fn.safetensors",
    "text_encoders": "qwen_2.5_vl_7b_fp8_scaled.safetensors",
    "vae": "qwen_image_vae.safetensors",
}
GPU_ENV = ("NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def make_root(tmp: Path, password: str | None = TOKEN + "\nadmin\n", login: bool = True) -> Path:
    root = tmp / "ComfyUI"
    shutil.copytree(STANDIN, root, ignore=shutil.ignore_patterns("__pycache__"))
    if not login:
        shutil.rmtree(root / "custom_nodes" / "ComfyUI-Login")
    for folder in ("input", "output", "temp", "login", *(f"models/{f}" for f in MODELS)):
        (root / folder).mkdir(parents=True, exist_ok=True)
    if password is not None:
        (root / "login" / "PASSWORD").write_text(password)
        (root / "login" / "PASSWORD").chmod(0o600)
    return root


def env_with(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in GPU_ENV and not k.startswith("STANDIN")}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "NVIDIA_VISIBLE_DEVICES": "2"})
    env.update(extra or {})
    return {k: v for k, v in env.items() if v is not None}


def run_once(
    root: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    command = [sys.executable, "main.py", "--listen", "127.0.0.1", "--port", str(free_port())]
    return subprocess.run(
        [*command, *args], cwd=root, env=env_with(env), capture_output=True, text=True, timeout=10
    )


@dataclass
class Server:
    process: subprocess.Popen
    port: int
    root: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def get(self, path: str, token: str | None = TOKEN, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        return requests.get(
            self.url + path, headers=headers, timeout=5, allow_redirects=False, **kwargs
        )

    def post(self, path: str, body: Any, token: str | None = TOKEN) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return requests.post(self.url + path, json=body, headers=headers, timeout=5)

    def wait_ready(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"stand-in exited early:\n{self.log.read_text()}")
            try:
                requests.get(self.url + "/standin/report", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"not ready after {timeout} s:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def start(root: Path, *args: str, env: dict[str, str] | None = None, wait: bool = True) -> Server:
    port = free_port()
    log = root.parent / f"comfyui-{port}.log"
    command = [sys.executable, "main.py", "--listen", "127.0.0.1", "--port", str(port), *args]
    with log.open("wb") as out:
        process = subprocess.Popen(
            command, cwd=root, env=env_with(env), stdout=out, stderr=subprocess.STDOUT
        )
    server = Server(process, port, root, log)
    if wait:
        server.wait_ready()
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = make_root(tmp_path_factory.mktemp("comfy"))
    for folder, name in MODELS.items():
        (root / "models" / folder / name).write_bytes(b"fake weights")
    srv = start(root, "--preview-method", "auto", env={"STANDIN_STEP_SECONDS": "0"})
    yield srv
    srv.stop()


def qwen_edit_workflow(image: str = "input.png", unet: str = MODELS["diffusion_models"]) -> dict:
    """The API form of ComfyUI's Qwen-Image-Edit template, reduced to the core nodes."""
    return {
        "1": {"class_type": "UNETLoader", "inputs": {"unet_name": unet, "weight_dtype": "default"}},
        "2": {
            "class_type": "CLIPLoader",
            "inputs": {"clip_name": MODELS["text_encoders"], "type": "qwen_image"},
        },
        "3": {"class_type": "VAELoader", "inputs": {"vae_name": MODELS["vae"]}},
        "4": {"class_type": "LoadImage", "inputs": {"image": image}},
        "5": {
            "class_type": "TextEncodeQwenImageEdit",
            "inputs": {
                "clip": ["2", 0],
                "prompt": "make it blue",
                "vae": ["3", 0],
                "image": ["4", 0],
            },
        },
        "6": {
            "class_type": "TextEncodeQwenImageEdit",
            "inputs": {"clip": ["2", 0], "prompt": "", "vae": ["3", 0], "image": ["4", 0]},
        },
        "7": {"class_type": "ModelSamplingAuraFlow", "inputs": {"model": ["1", 0], "shift": 3.0}},
        "8": {"class_type": "VAEEncode", "inputs": {"pixels": ["4", 0], "vae": ["3", 0]}},
        "9": {
            "class_type": "KSampler",
            "inputs": {
                "model": ["7", 0],
                "seed": 42,
                "steps": 4,
                "cfg": 1.0,
                "sampler_name": "euler",
                "scheduler": "simple",
                "positive": ["5", 0],
                "negative": ["6", 0],
                "latent_image": ["8", 0],
                "denoise": 1.0,
            },
        },
        "10": {"class_type": "VAEDecode", "inputs": {"samples": ["9", 0], "vae": ["3", 0]}},
        "11": {
            "class_type": "SaveImage",
            "inputs": {"images": ["10", 0], "filename_prefix": "qwen"},
        },
    }


def decode_png(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, size, idat = 8, (0, 0), b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    width, height = size
    assert len(zlib.decompress(idat)) == height * (1 + 3 * width)
    return width, height


# --- start-up and CLI ------------------------------------------------------------------------


def test_unknown_flag_exits_2(tmp_path: Path) -> None:
    result = run_once(make_root(tmp_path), "--enable-auth")
    assert result.returncode == 2
    assert "unrecognized arguments: --enable-auth" in result.stderr


def test_bad_choice_exits_2(tmp_path: Path) -> None:
    result = run_once(make_root(tmp_path), "--preview-method", "fancy")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_exclusive_vram_flags_exit_2(tmp_path: Path) -> None:
    result = run_once(make_root(tmp_path), "--lowvram", "--highvram")
    assert result.returncode == 2 and "not allowed with argument" in result.stderr


@pytest.mark.parametrize("password", [None, "", "\nadmin\n"], ids=["missing", "empty", "no-hash"])
def test_refuses_to_start_open_without_password(tmp_path: Path, password: str | None) -> None:
    result = run_once(make_root(tmp_path, password=password))
    assert result.returncode == 1
    assert "login/PASSWORD is missing or empty" in result.stderr
    assert "refuses to start open" in result.stderr


def test_a_release_that_cannot_load_exits_1_with_its_error(tmp_path: Path) -> None:
    result = run_once(make_root(tmp_path), env={"STANDIN_EXIT_AFTER_LOAD": "1"})
    assert result.returncode == 1 and "CUDA out of memory" in result.stderr


def test_no_gpu_and_no_cpu_flag_fails(tmp_path: Path) -> None:
    result = run_once(make_root(tmp_path), env={"NVIDIA_VISIBLE_DEVICES": "void"})
    assert result.returncode == 1 and "Found no NVIDIA driver" in result.stderr


def test_without_the_login_node_the_api_is_open(tmp_path: Path) -> None:
    srv = start(make_root(tmp_path, password=None, login=False), "--cpu")
    try:
        assert srv.get("/system_stats", token=None).status_code == 200
        report = srv.get("/standin/report", token=None).json()
        assert report["login"]["enabled"] is False and report["custom_nodes"] == []
        assert srv.get("/system_stats", token=None).json()["devices"][0]["type"] == "cpu"
    finally:
        srv.stop()


def test_disabling_custom_nodes_disables_the_login_node(tmp_path: Path) -> None:
    srv = start(make_root(tmp_path), "--disable-all-custom-nodes")
    try:
        assert srv.get("/system_stats", token=None).status_code == 200
    finally:
        srv.stop()


def test_load_delay_refuses_connections_then_serves(tmp_path: Path) -> None:
    srv = start(make_root(tmp_path), env={"STANDIN_LOAD_SECONDS": "1.5"}, wait=False)
    try:
        time.sleep(0.5)
        with pytest.raises(requests.ConnectionError):
            requests.get(srv.url + "/system_stats", timeout=1)
        srv.wait_ready()
        assert srv.get("/system_stats").status_code == 200
    finally:
        srv.stop()


def test_sigterm_stops_quickly(tmp_path: Path) -> None:
    srv = start(make_root(tmp_path))
    began = time.monotonic()
    srv.process.terminate()
    assert srv.process.wait(timeout=5) == 0
    assert time.monotonic() - began < 2


def test_report_shows_gpus_flags_and_login(server: Server) -> None:
    report = server.get("/standin/report", token=None).json()
    assert report["gpus"] == ["2"] and report["nvidia_visible_devices"] == "2"
    assert report["listen"] == "127.0.0.1" and report["port"] == server.port
    assert report["preview_method"] == "auto" and report["enable_cors_header"] is None
    assert report["login"] == {
        "enabled": True,
        "user": "admin",
        "password_file_mode": "0600",
        "node_version": "1.0.0+standin",
    }
    assert TOKEN not in json.dumps(report)
    assert report["models"]["vae"] == [MODELS["vae"]]


def test_cuda_device_flag_sets_cuda_visible_devices(tmp_path: Path) -> None:
    env = {"NVIDIA_VISIBLE_DEVICES": None, "CUDA_VISIBLE_DEVICES": None}
    srv = start(make_root(tmp_path), "--cuda-device", "1", "--lowvram", env=env)  # type: ignore[dict-item]
    try:
        report = srv.get("/standin/report", token=None).json()
        assert report["cuda_visible_devices"] == "1" and report["gpus"] == ["1"]
        assert report["vram_mode"] == "lowvram"
    finally:
        srv.stop()


# --- ComfyUI-Login auth ----------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/system_stats", "/api/system_stats", "/queue", "/history"])
def test_api_clients_without_token_get_401(server: Server, path: str) -> None:
    response = server.get(path, token=None)
    assert response.status_code == 401
    assert response.json() == {"error": "Authentication required."}


@pytest.mark.parametrize("token", ["wrong", TOKEN[:-1], TOKEN.lower()])
def test_wrong_tokens_get_401(server: Server, token: str) -> None:
    assert server.get("/system_stats", token=token).status_code == 401
    assert server.get("/system_stats", token=None, params={"token": token}).status_code == 401


def test_bearer_and_query_token_pass(server: Server) -> None:
    stats = server.get("/system_stats").json()
    assert stats["system"]["comfyui_version"] and stats["devices"][0]["type"] == "cuda"
    assert stats["system"]["argv"][0] == "main.py"
    assert server.get("/api/system_stats", token=None, params={"token": TOKEN}).status_code == 200


def test_bearer_scheme_is_case_sensitive(server: Server) -> None:
    response = server.get("/system_stats", token=None, headers={"Authorization": f"bearer {TOKEN}"})
    assert response.status_code == 401


@pytest.mark.parametrize("header", ["Bearer", f"Bearer {TOKEN} extra", "Basic"])
def test_malformed_authorization_header_gives_500(server: Server, header: str) -> None:
    assert (
        server.get("/system_stats", token=None, headers={"Authorization": header}).status_code
        == 500
    )


def test_browsers_are_redirected_to_login(server: Server) -> None:
    response = server.get("/", token=None, headers={"Accept": "text/html,application/xhtml+xml"})
    assert response.status_code == 302 and response.headers["Location"] == "/login"


def test_login_page_is_an_open_html_form(server: Server) -> None:
    response = server.get("/login", token=None, headers={"Accept": "text/html"})
    assert response.status_code == 200 and "text/html" in response.headers["Content-Type"]
    assert "<form" in response.text and "name='password'" in response.text
    assert server.get("/api/login", token=None).status_code == 401  # only /login is exempt


@pytest.mark.parametrize("path", ["/x.js", "/a/b.css", "/a.css.map", "/favicon.ico"])
def test_static_suffixes_are_exempt(server: Server, path: str) -> None:
    assert server.get(path, token=None).status_code == 404  # reaches routing: not 401


def test_token_is_read_once_at_start(tmp_path: Path) -> None:
    root = make_root(tmp_path)
    srv = start(root)
    try:
        (root / "login" / "PASSWORD").write_text("$2b$12$another-hash\nadmin\n")
        assert srv.get("/system_stats").status_code == 200
        assert srv.get("/system_stats", token="$2b$12$another-hash").status_code == 401
    finally:
        srv.stop()
    srv = start(root)
    try:
        assert srv.get("/system_stats").status_code == 401
        assert srv.get("/system_stats", token="$2b$12$another-hash").status_code == 200
    finally:
        srv.stop()


def test_origin_only_middleware_rejects_foreign_origin_on_loopback(server: Server) -> None:
    response = server.get("/system_stats", headers={"Origin": "http://evil.example"})
    assert response.status_code == 403
    same = server.get("/system_stats", headers={"Origin": f"http://127.0.0.1:{server.port}"})
    assert same.status_code == 200


def test_refused_post_keeps_a_kept_alive_connection_usable(server: Server) -> None:
    with requests.Session() as session:
        refused = session.post(server.url + "/prompt", json={"prompt": {"x": 1}}, timeout=5)
        assert refused.status_code == 401
        again = session.get(
            server.url + "/system_stats", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
        )
        assert again.status_code == 200


def test_options_passes_without_token(server: Server) -> None:
    response = requests.options(server.url + "/prompt", timeout=5)
    assert response.status_code == 200


@pytest.fixture(scope="module")
def cors_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    srv = start(make_root(tmp_path_factory.mktemp("cors")), "--enable-cors-header", ORIGIN)
    yield srv
    srv.stop()


class TestCorsOrigin:
    """--enable-cors-header <origin>: tokens count only on requests carrying that Origin."""

    def test_request_with_the_origin_still_needs_the_token(self, cors_server: Server) -> None:
        response = cors_server.get("/system_stats", token=None, headers={"Origin": ORIGIN})
        assert response.status_code == 401
        assert response.headers["Access-Control-Allow-Origin"] == ORIGIN

    def test_request_with_the_origin_and_token_passes(self, cors_server: Server) -> None:
        assert cors_server.get("/system_stats", headers={"Origin": ORIGIN}).status_code == 200

    def test_api_client_without_origin_is_refused_even_with_the_token(
        self, cors_server: Server
    ) -> None:
        assert cors_server.get("/system_stats").status_code == 401

    def test_other_origin_is_refused_even_with_the_token(self, cors_server: Server) -> None:
        response = cors_server.get("/system_stats", headers={"Origin": "https://other.example"})
        assert response.status_code == 401


def test_cors_star_keeps_token_checks_for_every_request(tmp_path: Path) -> None:
    srv = start(make_root(tmp_path), "--enable-cors-header")
    try:
        assert srv.get("/system_stats").status_code == 200
        assert srv.get("/system_stats", token=None).status_code == 401
        assert srv.get("/system_stats", headers={"Origin": ORIGIN}).status_code == 200
        assert srv.get("/system_stats").headers["Access-Control-Allow-Origin"] == "*"
    finally:
        srv.stop()


# --- ComfyUI API -----------------------------------------------------------------------------


def test_object_info_lists_the_model_files_on_disk(server: Server) -> None:
    info = server.get("/object_info").json()
    assert info["UNETLoader"]["input"]["required"]["unet_name"][0] == [MODELS["diffusion_models"]]
    assert "qwen_image" in info["CLIPLoader"]["input"]["required"]["type"][0]
    assert info["SaveImage"]["output_node"] is True
    one = server.get("/api/object_info/VAELoader").json()
    assert list(one) == ["VAELoader"]
    assert server.get("/models/vae").json() == [MODELS["vae"]]


def test_prompt_without_prompt_key(server: Server) -> None:
    response = server.post("/prompt", {"client_id": "x"})
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "no_prompt"
    assert response.json()["node_errors"] == {}


def test_prompt_with_unknown_node(server: Server) -> None:
    response = server.post("/prompt", {"prompt": {"1": {"class_type": "Nope", "inputs": {}}}})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["type"] == "missing_node_type"
    assert error["extra_info"] == {"node_id": "1", "class_type": "Nope", "node_title": "Nope"}


def test_prompt_without_outputs(server: Server) -> None:
    prompt = {"1": {"class_type": "VAELoader", "inputs": {"vae_name": MODELS["vae"]}}}
    response = server.post("/prompt", {"prompt": prompt})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "type": "prompt_no_outputs",
        "message": "Prompt has no outputs",
        "details": "",
        "extra_info": {},
    }


def test_prompt_naming_a_model_not_deployed_fails_validation(server: Server) -> None:
    (server.root / "input" / "input.png").write_bytes(b"\x89PNG fake")
    response = server.post("/prompt", {"prompt": qwen_edit_workflow(unet="missing.safetensors")})
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["type"] == "prompt_outputs_failed_validation"
    errors = body["node_errors"]["1"]
    assert errors["class_type"] == "UNETLoader" and errors["dependent_outputs"] == ["11"]
    assert errors["errors"][0]["type"] == "value_not_in_list"
    assert errors["errors"][0]["extra_info"]["received_value"] == "missing.safetensors"


def test_prompt_with_missing_input_and_bad_link(server: Server) -> None:
    prompt = qwen_edit_workflow()
    del prompt["9"]["inputs"]["seed"]
    prompt["10"]["inputs"]["vae"] = ["1", 0]  # a MODEL where a VAE is expected
    body = server.post("/prompt", {"prompt": prompt}).json()
    kinds = {e["type"] for entry in body["node_errors"].values() for e in entry["errors"]}
    assert kinds == {"required_input_missing", "return_type_mismatch"}


def test_prompt_runs_and_its_image_is_served(server: Server) -> None:
    upload = requests.post(
        server.url + "/upload/image",
        headers={"Authorization": f"Bearer {TOKEN}"},
        files={"image": ("edit-me.png", b"\x89PNG upload", "image/png")},
        data={"overwrite": "true"},
        timeout=5,
    )
    assert upload.status_code == 200, upload.text
    assert upload.json() == {"name": "edit-me.png", "subfolder": "", "type": "input"}
    response = server.post(
        "/prompt", {"prompt": qwen_edit_workflow("edit-me.png"), "client_id": "c1"}
    )
    assert response.status_code == 200, response.text
    queued = response.json()
    assert queued["node_errors"] == {} and isinstance(queued["number"], int)
    prompt_id = queued["prompt_id"]
    deadline = time.monotonic() + 5
    entry: dict = {}
    while time.monotonic() < deadline and not entry:
        entry = server.get(f"/history/{prompt_id}").json()
        time.sleep(0.05)
    record = entry[prompt_id]
    assert record["status"]["status_str"] == "success" and record["status"]["completed"]
    assert record["prompt"][1] == prompt_id and record["prompt"][4] == ["11"]
    image = record["outputs"]["11"]["images"][0]
    assert image["type"] == "output" and image["filename"].startswith("qwen_")
    view = server.get("/view", params=image)
    assert view.status_code == 200 and view.headers["Content-Type"] == "image/png"
    assert decode_png(view.content) == (64, 64)
    assert prompt_id in server.get("/history").json()
    assert server.get("/queue").json() == {"queue_running": [], "queue_pending": []}
    assert server.get("/view", token=None, params=image).status_code == 401


def test_history_of_unknown_prompt_is_empty(server: Server) -> None:
    assert server.get("/history/does-not-exist").json() == {}


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"filename": "../etc/passwd"}, 400),
        ({"filename": "nope.png"}, 404),
        ({"filename": "x.png", "type": "secret"}, 400),
        ({"filename": "x.png", "subfolder": "../.."}, 403),
    ],
)
def test_view_rejects_bad_requests(server: Server, params: dict, status: int) -> None:
    assert server.get("/view", params=params).status_code == status


def ws_connect(server: Server, query: str) -> tuple[socket.socket, bytes]:
    key = base64.b64encode(os.urandom(16)).decode()
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    request = (
        f"GET /ws?{query} HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n"
        f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n"
    )
    sock.sendall(request.encode())
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    expected = base64.b64encode(
        hashlib.sha1((key + "258EAFA5-E914-47DA-95CA-C5AB0DC11B85").encode()).digest()
    )
    return sock, data.replace(expected, b"<accept-ok>")


def test_websocket_needs_the_token(server: Server) -> None:
    sock, head = ws_connect(server, "clientId=abc")
    sock.close()
    assert head.startswith(b"HTTP/1.1 401")


def test_websocket_with_token_sends_status(server: Server) -> None:
    sock, head = ws_connect(server, f"clientId=abc&token={TOKEN}")
    try:
        assert head.startswith(b"HTTP/1.1 101") and b"<accept-ok>" in head
        rest = head.split(b"\r\n\r\n", 1)[1]
        while len(rest) < 2:
            rest += sock.recv(4096)
        size = rest[1] & 0x7F
        offset = 2
        if size == 126:
            size, offset = struct.unpack(">H", rest[2:4])[0], 4
        while len(rest) < offset + size:
            rest += sock.recv(4096)
        message = json.loads(rest[offset : offset + size])
        assert message["type"] == "status" and message["data"]["sid"] == "abc"
        sock.sendall(bytes([0x88, 0x80]) + b"\x00\x00\x00\x00")  # masked close
    finally:
        sock.close()


def test_the_token_is_logged_in_full_at_start_as_upstream_does(tmp_path: Path) -> None:
    """ComfyUI-Login logs ``For direct API calls, use token=<hash>`` at INFO: logs.yml must
    redact it (tests/integration/test_comfyui_fail_closed.py)."""
    srv = start(make_root(tmp_path))
    try:
        assert f"use token={TOKEN}" in srv.log.read_text()
    finally:
        srv.stop()


def test_an_unreadable_password_file_leaves_comfyui_open_as_upstream_does() -> None:
    """Upstream catches only FileNotFoundError when it reads PASSWORD: a process that may not
    read it (an image running as non-root, PASSWORD root 0600) fails to import the node and
    serves without authentication. The role runs the container as PASSWORD's owner."""
    base = Path(tempfile.mkdtemp(prefix="comfy-nonroot-", dir="/tmp"))
    try:
        base.chmod(0o755)
        root = make_root(base)
        for path in [root, *root.rglob("*")]:
            if path.is_dir():
                path.chmod(0o755)
        (root / "login" / "PASSWORD").chmod(0o600)  # root's
        port = free_port()
        log = base / "nonroot.log"
        command = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                   sys.executable, "main.py", "--listen", "127.0.0.1", "--port", str(port)]  # fmt: skip
        with log.open("wb") as out:
            process = subprocess.Popen(
                command, cwd=root, env=env_with(), stdout=out, stderr=subprocess.STDOUT
            )
        srv = Server(process, port, root, log)
        try:
            srv.wait_ready()
            assert srv.get("/system_stats", token=None).status_code == 200
            assert srv.get("/login", token=None).status_code == 200
            text = log.read_text()
            assert "Cannot import" in text and "Permission denied" in text
            assert "use token=" not in text
        finally:
            srv.stop()
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_the_standin_parses_exactly_the_grammar_the_role_checks_against() -> None:
    """The stand-in's parser and grammar_comfyui (read from ComfyUI's comfy/cli_args.py at its
    commit) agree on every flag and on how many values each takes."""
    sys.path.insert(0, str(STANDIN))
    import standin_cli

    from ansible_collections.myia.genai_stack.plugins.module_utils import grammar_comfyui

    parser = standin_cli.make_parser()
    arity = {
        s: 0 if action.nargs == 0 else 1 if action.nargs is None else action.nargs
        for action in parser._actions
        for s in action.option_strings
    }
    assert arity == grammar_comfyui.FLAGS
    assert parser.allow_abbrev is grammar_comfyui.ALLOW_ABBREV
