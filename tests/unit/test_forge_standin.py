"""Tests of the ai-dock Forge stand-in (tests/standins/forge), run as a subprocess on 127.0.0.1."""

from __future__ import annotations

import base64
import importlib.util
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

STANDIN_ROOT = Path(__file__).resolve().parents[1] / "standins" / "forge"
SCRIPT = STANDIN_ROOT / "forge_standin.py"
FIXTURE = STANDIN_ROOT / "fixtures" / "fake-sdxl-turbo.safetensors"
FIXTURE_SHA256 = "516f2ffacfc71759ab41fd8dde821f4a33ded693d2d625a1edc5fa0c30f17552"
USER, PASSWORD, TOKEN = "forge", "password-0123456789", "token-0123456789abcdef"
CLEAN_ENV = (
    "NVIDIA_VISIBLE_DEVICES", "CUDA_VISIBLE_DEVICES", "FORGE_ARGS", "FORGE_PORT_LOCAL",
    "FORGE_PORT_HOST", "WEB_USER", "WEB_PASSWORD", "WEB_TOKEN", "WEB_ENABLE_AUTH",
    "SUPERVISOR_NO_AUTOSTART", "WORKSPACE", "XPU_TARGET", "STANDIN_LOAD_SECONDS",
)  # fmt: skip
NO_EXTRAS = "caddy,cloudflared,jupyter,quicktunnel,serviceportal,sshd,syncthing"


def load_module() -> Any:
    spec = importlib.util.spec_from_file_location("forge_standin", SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


standin = load_module()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def turbo_args(*extra: str, auth: str = f"{USER}:{PASSWORD}", settings: str = "") -> str:
    args = [
        "--ui-settings-file", settings or "/nonexistent/config-turbo.json",
        "--api", "--api-log", "--listen", "--server-name", "127.0.0.1",
        "--gpu-device-id", "0", "--cuda-malloc", "--xformers",
    ]  # fmt: skip
    if auth:
        args += ["--api-auth", auth, "--gradio-auth", auth]
    return " ".join([*args, *extra])


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    ckpt = tmp_path / "workspace" / "storage" / "stable_diffusion" / "models" / "ckpt"
    ckpt.mkdir(parents=True)
    (ckpt / "sd_xl_turbo_1.0_fp16.safetensors").write_bytes(FIXTURE.read_bytes())
    settings = tmp_path / "workspace" / "config-turbo.json"
    settings.write_text(json.dumps({"sd_model_checkpoint": "sd_xl_turbo_1.0_fp16.safetensors"}))
    return tmp_path / "workspace"


def environment(workspace: Path | None, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLEAN_ENV}
    env.update(PYTHONDONTWRITEBYTECODE="1", SUPERVISOR_NO_AUTOSTART=NO_EXTRAS)
    if workspace is not None:
        env["WORKSPACE"] = str(workspace)
    env.update(extra)
    return env


def run_once(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run the stand-in expecting it to exit by itself (a start-up failure)."""
    env.setdefault("FORGE_PORT_LOCAL", str(free_port()))
    return subprocess.run(
        [sys.executable, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=15
    )


@dataclass
class Server:
    process: subprocess.Popen[bytes]
    port: int
    web_port: int
    log: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def web(self) -> str:
        return f"http://127.0.0.1:{self.web_port}"

    def get(self, path: str, auth: Any = (USER, PASSWORD), **kw: Any) -> requests.Response:
        return requests.get(self.url + path, auth=auth, timeout=10, **kw)

    def post(self, path: str, body: Any, auth: Any = (USER, PASSWORD)) -> requests.Response:
        return requests.post(self.url + path, json=body, auth=auth, timeout=20)

    def report(self) -> dict[str, Any]:
        return requests.get(self.url + "/standin/report", timeout=5).json()

    def output(self) -> str:
        return self.log.read_text()

    def wait_ready(self, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"stand-in exited early:\n{self.output()}")
            try:
                requests.get(self.url + "/internal/ping", timeout=1)
                return
            except requests.ConnectionError:
                time.sleep(0.05)
        raise AssertionError(f"stand-in not ready after {timeout} s:\n{self.output()}")


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Any]:
    servers: list[Server] = []

    def _start(env: dict[str, str], wait: bool = True) -> Server:
        port = int(env.setdefault("FORGE_PORT_LOCAL", str(free_port())))
        web_port = int(env.setdefault("FORGE_PORT_HOST", str(free_port())))
        log = tmp_path / f"standin-{len(servers)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [sys.executable, str(SCRIPT)], env=env, stdout=out, stderr=subprocess.STDOUT
            )
        server = Server(process, port, web_port, log)
        servers.append(server)
        if wait:
            server.wait_ready()
        return server

    yield _start
    for server in servers:
        if server.process.poll() is None:
            server.process.terminate()
            try:
                server.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                server.process.kill()


@pytest.fixture
def forge(start: Any, workspace: Path) -> Server:
    settings = str(workspace / "config-turbo.json")
    return start(
        environment(
            workspace,
            FORGE_ARGS=turbo_args(settings=settings),
            NVIDIA_VISIBLE_DEVICES="1",
            WEB_USER=USER,
            WEB_PASSWORD=PASSWORD,
            WEB_TOKEN=TOKEN,
        )
    )


def png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert zlib.crc32(kind + body) == crc
        idat += body if kind == b"IDAT" else b""
        pos += 12 + length
    width, height = struct.unpack(">II", data[16:24])
    assert len(zlib.decompress(idat)) == height * (1 + 3 * width)
    return width, height


# ---------------------------------------------------------------------------- start-up


def test_port_comes_from_forge_port_local_and_secrets_stay_out_of_the_log(forge: Server) -> None:
    report = forge.report()
    assert report["port"] == forge.port and report["server_name"] == "127.0.0.1"
    assert report["argv"][-2:] == ["--port", str(forge.port)]
    assert f"{USER}:***" in report["argv"]
    assert PASSWORD not in forge.output() and PASSWORD not in json.dumps(report)
    assert report["api_auth_users"] == [USER] and report["gradio_auth_users"] == [USER]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ("--bogus-flag", "unrecognized arguments: --bogus-flag"),
        ("--precision fast", "invalid choice: 'fast'"),
        ("--all-in-fp16 --all-in-fp32", "not allowed with argument"),
        ("--gpu-device-id one", "invalid int value: 'one'"),
    ],
)
def test_bad_forge_flags_exit_2(workspace: Path, extra: str, message: str) -> None:
    done = run_once(environment(workspace, FORGE_ARGS=turbo_args(extra)))
    assert done.returncode == 2
    assert "launch.py: error:" in done.stderr and message in done.stderr


@pytest.mark.parametrize("auth", ["forge:pa:ss", "forge"])
def test_api_auth_that_does_not_split_in_two_crashes(workspace: Path, auth: str) -> None:
    done = run_once(environment(workspace, FORGE_ARGS=turbo_args(auth=auth)))
    assert done.returncode == 1
    assert "ValueError" in done.stderr and "values to unpack" in done.stderr


def test_gradio_auth_path_is_read_at_start_and_a_missing_file_stops_forge(
    start: Any, workspace: Path, tmp_path: Path
) -> None:
    """--gradio-auth-path: each line's comma-separated user:password entries, as
    modules/initialize_util.py reads them; no file, no start (the UI is never served open)."""
    path = tmp_path / "gradio-auth"
    path.write_text(f"{USER}:{PASSWORD}\n\nother:pa:ss, third:x\n")
    args = turbo_args(auth="") + f" --api-auth {USER}:{PASSWORD} --gradio-auth-path {path}"
    server = start(environment(workspace, FORGE_ARGS=args))
    assert sorted(server.report()["gradio_auth_users"]) == sorted([USER, "other", "third"])
    path.unlink()
    done = run_once(environment(workspace, FORGE_ARGS=args))
    assert done.returncode == 1 and "FileNotFoundError" in done.stderr


def test_triple_underscore_becomes_a_space_like_ai_dock(workspace: Path) -> None:
    done = run_once(environment(workspace, FORGE_ARGS=turbo_args(auth="forge:pass___word")))
    assert done.returncode == 2 and "unrecognized arguments: word" in done.stderr


@pytest.mark.parametrize(
    ("nvidia", "device_id", "device"),
    [("1", 0, "1"), ("0,2", 1, "2"), ("GPU-abc", 0, "GPU-abc"), (None, 1, "1")],
)
def test_gpu_device_id_indexes_the_visible_gpus(
    start: Any, workspace: Path, nvidia: str | None, device_id: int, device: str
) -> None:
    args = turbo_args().replace("--gpu-device-id 0", f"--gpu-device-id {device_id}")
    env = environment(workspace, FORGE_ARGS=args)
    if nvidia is not None:
        env["NVIDIA_VISIBLE_DEVICES"] = nvidia
    gpu = start(env).report()["gpu"]
    assert gpu["device"] == device and gpu["gpu_device_id"] == device_id
    assert gpu["forge_cuda_visible_devices"] == str(device_id)


@pytest.mark.parametrize(("nvidia", "device_id"), [("1", 1), ("void", 0), ("2", 3)])
def test_a_gpu_the_container_does_not_have_fails_at_start(
    workspace: Path, nvidia: str, device_id: int
) -> None:
    """With one GPU reserved (host GPU 1), the host index is wrong: the container's GPU is 0."""
    args = turbo_args().replace("--gpu-device-id 0", f"--gpu-device-id {device_id}")
    done = run_once(environment(workspace, FORGE_ARGS=args, NVIDIA_VISIBLE_DEVICES=nvidia))
    assert done.returncode == 1 and "Torch is not able to use GPU" in done.stderr


def test_skip_torch_cuda_test_starts_without_a_gpu(start: Any, workspace: Path) -> None:
    env = environment(
        workspace, FORGE_ARGS=turbo_args("--skip-torch-cuda-test"), NVIDIA_VISIBLE_DEVICES="void"
    )
    assert start(env).report()["gpu"]["device"] is None


def test_broken_settings_file_stops_forge(workspace: Path) -> None:
    settings = workspace / "config-turbo.json"
    settings.write_text("{not json")
    done = run_once(environment(workspace, FORGE_ARGS=turbo_args(settings=str(settings))))
    assert done.returncode == 1, done.stderr
    assert "JSONDecodeError: Expecting property name enclosed in double quotes" in done.stderr


def test_a_release_that_cannot_load_exits_1_with_its_error(workspace: Path) -> None:
    done = run_once(environment(workspace, FORGE_ARGS=turbo_args(), STANDIN_EXIT_AFTER_LOAD="1"))
    assert done.returncode == 1 and "torch.OutOfMemoryError: CUDA out of memory" in done.stderr


def test_load_delay_refuses_connections_then_serves(start: Any, workspace: Path) -> None:
    env = environment(workspace, FORGE_ARGS=turbo_args(), STANDIN_LOAD_SECONDS="1.5")
    server = start(env, wait=False)
    time.sleep(0.5)
    with pytest.raises(requests.ConnectionError):
        requests.get(server.url + "/internal/ping", timeout=1)
    server.wait_ready()


def test_sigterm_stops_it_at_once(forge: Server) -> None:
    started = time.monotonic()
    forge.process.send_signal(signal.SIGTERM)
    assert forge.process.wait(timeout=5) == 0
    assert time.monotonic() - started < 3


def test_random_web_credentials_when_not_given(start: Any, workspace: Path) -> None:
    caddy = start(environment(workspace, FORGE_ARGS=turbo_args()))
    report = caddy.report()["caddy"]
    assert report["web_token_set"] is False and report["web_password_set"] is False
    assert report["web_user"] == "user"


# ---------------------------------------------------------------------------- auth


@pytest.mark.parametrize(
    "path", ["/sdapi/v1/sd-models", "/sdapi/v1/options", "/sdapi/v1/cmd-flags"]
)
def test_no_credentials_is_not_authenticated(forge: Server, path: str) -> None:
    r = forge.get(path, auth=None)
    assert r.status_code == 401 and r.text == '{"detail":"Not authenticated"}'
    assert r.headers["WWW-Authenticate"] == "Basic"
    r = forge.get(path, auth=None, headers={"Authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 401 and r.json() == {"detail": "Not authenticated"}


@pytest.mark.parametrize("auth", [(USER, "wrong-password"), ("other", PASSWORD)])
def test_wrong_credentials_are_incorrect(forge: Server, auth: tuple[str, str]) -> None:
    r = forge.get("/sdapi/v1/sd-models", auth=auth)
    assert r.status_code == 401 and r.json() == {"detail": "Incorrect username or password"}
    assert r.headers["WWW-Authenticate"] == "Basic"


def test_malformed_basic_credentials(forge: Server) -> None:
    r = forge.get("/sdapi/v1/sd-models", auth=None, headers={"Authorization": "Basic %%%"})
    assert r.status_code == 401 and r.json() == {"detail": "Invalid authentication credentials"}


def test_progress_needs_credentials_and_ping_does_not(forge: Server) -> None:
    assert forge.get("/sdapi/v1/progress", auth=None).status_code == 401
    assert forge.get("/sdapi/v1/progress").json()["state"]["job_count"] == 0
    assert forge.get("/internal/ping", auth=None).json() == {}


def test_cmd_flags_holds_the_credentials_so_it_must_be_protected(forge: Server) -> None:
    flags = forge.get("/sdapi/v1/cmd-flags").json()
    assert flags["api_auth"] == f"{USER}:{PASSWORD}" and flags["gradio_auth"] == flags["api_auth"]
    assert flags["gpu_device_id"] == 0 and flags["port"] == forge.port


def test_without_api_flag_the_api_is_not_there(start: Any, workspace: Path) -> None:
    server = start(environment(workspace, FORGE_ARGS=turbo_args().replace("--api ", "")))
    assert server.get("/sdapi/v1/sd-models").status_code == 404


def test_without_api_auth_the_api_is_open(start: Any, workspace: Path) -> None:
    server = start(environment(workspace, FORGE_ARGS=turbo_args(auth="")))
    assert server.get("/sdapi/v1/sd-models", auth=None).status_code == 200


# ---------------------------------------------------------------------------- API


def test_txt2img_returns_a_png_of_the_requested_size(forge: Server) -> None:
    body = {"prompt": "a fox", "steps": 1, "cfg_scale": 1.0, "width": 512, "height": 256,
            "sampler_name": "Euler a", "seed": 7}  # fmt: skip
    r = forge.post("/sdapi/v1/txt2img", body)
    assert r.status_code == 200, r.text
    answer = r.json()
    assert png_size(base64.b64decode(answer["images"][0])) == (512, 256)
    assert answer["parameters"]["prompt"] == "a fox" and answer["parameters"]["steps"] == 1
    assert isinstance(answer["info"], str)
    info = json.loads(answer["info"])
    assert (info["width"], info["height"], info["seed"], info["steps"]) == (512, 256, 7, 1)
    assert info["sd_model_name"] == "sd_xl_turbo_1.0_fp16"
    assert info["sd_model_hash"] == FIXTURE_SHA256[:10]


def test_txt2img_sizes_round_down_to_the_latent_grid(forge: Server) -> None:
    r = forge.post("/sdapi/v1/txt2img", {"width": 100, "height": 70, "steps": 1, "batch_size": 2})
    images = r.json()["images"]
    assert len(images) == 2 and png_size(base64.b64decode(images[1])) == (96, 64)


def test_txt2img_rejects_bad_requests(forge: Server) -> None:
    r = forge.post("/sdapi/v1/txt2img", {"width": "wide"})
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "width"]
    r = forge.post("/sdapi/v1/txt2img", {"sampler_name": "Nope"})
    assert r.status_code == 400 and r.json() == {"detail": "Sampler not found"}
    r = forge.post("/sdapi/v1/txt2img", {"override_settings": {"sd_model_checkpoint": "x.ckpt"}})
    assert r.status_code == 500


def test_sd_models_lists_the_workspace_checkpoints(forge: Server) -> None:
    (model,) = forge.get("/sdapi/v1/sd-models").json()
    assert model == {
        "title": f"sd_xl_turbo_1.0_fp16.safetensors [{FIXTURE_SHA256[:10]}]",
        "model_name": "sd_xl_turbo_1.0_fp16",
        "hash": FIXTURE_SHA256[:10],
        "sha256": FIXTURE_SHA256,
        "filename": "/opt/stable-diffusion-webui-forge/models/Stable-diffusion/"
        "sd_xl_turbo_1.0_fp16.safetensors",
        "config": None,
    }


def test_options_come_from_the_settings_file_and_are_saved_back(
    forge: Server, workspace: Path
) -> None:
    options = forge.get("/sdapi/v1/options").json()
    assert options["sd_model_checkpoint"] == "sd_xl_turbo_1.0_fp16.safetensors"
    assert forge.post("/sdapi/v1/options", {"xl_t2i_cfg": 1.5}).status_code == 200
    saved = (workspace / "config-turbo.json").read_text()
    assert json.loads(saved)["xl_t2i_cfg"] == 1.5 and '\n    "xl_t2i_cfg"' in saved
    assert forge.get("/sdapi/v1/options").json()["xl_t2i_cfg"] == 1.5
    assert forge.post("/sdapi/v1/options", {"sd_model_checkpoint": "missing"}).status_code == 500


def test_no_checkpoint_no_image(start: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    server = start(environment(empty, FORGE_ARGS=turbo_args()))
    assert server.post("/sdapi/v1/txt2img", {"steps": 1}).status_code == 500


# ---------------------------------------------------------------------------- Caddy


@pytest.fixture
def both_layers(start: Any, workspace: Path) -> Server:
    env = environment(
        workspace,
        FORGE_ARGS=turbo_args(),
        SUPERVISOR_NO_AUTOSTART="sshd,jupyter",
        WEB_USER=USER,
        WEB_PASSWORD=PASSWORD,
        WEB_TOKEN=TOKEN,
    )
    return start(env)


def test_caddy_is_off_when_not_autostarted(forge: Server) -> None:
    assert forge.report()["services"]["caddy"] is False
    with pytest.raises(requests.ConnectionError):
        requests.get(forge.web + "/", timeout=2)


def test_caddy_redirects_to_the_login_without_the_token(both_layers: Server) -> None:
    for params in ({}, {"token": "wrong"}):
        r = requests.get(
            both_layers.web + "/sdapi/v1/options", params=params, timeout=5, allow_redirects=False
        )
        assert r.status_code == 302 and r.headers["Location"].endswith("/login")


def test_both_layers_need_token_for_caddy_and_basic_for_forge(both_layers: Server) -> None:
    url = both_layers.web + "/sdapi/v1/options"
    r = requests.get(url, params={"token": TOKEN}, auth=(USER, PASSWORD), timeout=5)
    assert r.status_code == 200 and r.json()["sd_model_checkpoint"]
    assert r.cookies.get("ai_dock_token") == TOKEN
    r = requests.get(url, params={"token": TOKEN}, timeout=5)
    assert r.status_code == 401 and r.json() == {"detail": "Not authenticated"}
    # a bearer token passes Caddy but is not Basic: Forge refuses it
    r = requests.get(url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5)
    assert r.status_code == 401 and r.json() == {"detail": "Not authenticated"}
    r = requests.get(url, cookies={"ai_dock_token": TOKEN}, auth=(USER, PASSWORD), timeout=5)
    assert r.status_code == 200


def test_caddy_auth_off(start: Any, workspace: Path) -> None:
    env = environment(
        workspace, FORGE_ARGS=turbo_args(), SUPERVISOR_NO_AUTOSTART="", WEB_ENABLE_AUTH="false"
    )
    server = start(env)
    r = requests.get(server.web + "/sdapi/v1/sd-models", auth=(USER, PASSWORD), timeout=5)
    assert r.status_code == 200


def test_caddy_answers_502_while_forge_loads(start: Any, workspace: Path) -> None:
    env = environment(
        workspace,
        FORGE_ARGS=turbo_args(),
        SUPERVISOR_NO_AUTOSTART="",
        WEB_TOKEN=TOKEN,
        STANDIN_LOAD_SECONDS="3",
    )
    server = start(env, wait=False)
    deadline = time.monotonic() + 2
    while True:
        try:
            r = requests.get(server.web + "/internal/ping", params={"token": TOKEN}, timeout=1)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert r.status_code == 502


def test_caddy_and_forge_on_one_port_fails(workspace: Path) -> None:
    port = str(free_port())
    env = environment(
        workspace,
        FORGE_ARGS=turbo_args(),
        SUPERVISOR_NO_AUTOSTART="",
        FORGE_PORT_LOCAL=port,
        FORGE_PORT_HOST=port,
    )
    done = run_once(env)
    assert done.returncode == 1 and "error while attempting to bind" in done.stderr


# ---------------------------------------------------------------------------- pieces


def test_forge_args_expand_like_an_unquoted_bash_variable(tmp_path: Path) -> None:
    (tmp_path / "styles-a.csv").write_text("")
    words = standin.split_like_bash("--api  --styles-file styles-*.csv --theme [x]", cwd=tmp_path)
    assert words == ["--api", "--styles-file", "styles-a.csv", "--theme", "[x]"]


def test_ai_dock_env_strips_quotes() -> None:
    assert standin.aidock_env({"A": "'x y'", "B": '"z"', "C": "a___b"}) == {
        "A": "x y",
        "B": "z",
        "C": "a b",
    }


def test_cpu_target_prepends_the_platform_flags() -> None:
    argv = standin.launcher_argv({"XPU_TARGET": "CPU", "FORGE_ARGS": "--api"})
    assert argv == [
        "--always-cpu",
        "--skip-torch-cuda-test",
        "--no-half",
        "--api",
        "--port",
        "17860",
    ]


def test_the_standin_knows_exactly_the_flags_the_role_checks_against() -> None:
    """The stand-in's parser and the grammar read from Forge's source (grammar_forge) agree on
    every flag and on how many values each takes."""
    from ansible_collections.myia.genai_stack.plugins.module_utils import grammar_forge

    parser = standin.make_parser()
    arity = {
        s: 0 if action.nargs == 0 else 1 if action.nargs is None else action.nargs
        for action in parser._actions
        for s in action.option_strings
    }
    assert arity == grammar_forge.FLAGS
    assert {"--lora-dir", "--disable-gpu-warning", "--skip-google-blockly"} <= set(arity)
