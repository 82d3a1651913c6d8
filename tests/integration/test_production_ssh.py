"""The admin's path to a real host, as the README's "A real GPU host" section says, word for word.

A fresh Debian 12 and 13 (local/ssh-host, built by scripts/setup.sh) runs sshd on a 127.0.0.1
port; the playbooks reach it over real SSH with a key, as the non-root user ``admin`` with
``become``, exactly as inventories/production.example says. The README's commands run with
``inventories/production`` placed in a temporary directory and the vault password file there.

The ``$EDITOR`` step overrides only what a lab must: the host's address, port and key; the
stand-in images (and ComfyUI-Login from the image); the NVIDIA repository and its key, served on
127.0.0.1 as a signed apt repository holding a small ``nvidia-container-toolkit`` package built
here (so the role's key, sources, install, daemon.json merge and CDI steps run for real); the
model download URLs, served on 127.0.0.1 with the small files' real names and checksums; and,
since every host shares this machine's docker and loopback: no GPU reservation, no docker
install or restart, a root directory, compose project names and ports of its own.

The order: the README's steps; ``--check --diff`` on the fresh host (every file shown, none
written); converge; a second run with changed=0; validate.yml; ``--check --diff`` again with no
change; a wrong checksum refused with the services still serving.
"""

from __future__ import annotations

import copy
import email.utils
import gzip
import hashlib
import json
import os
import platform
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import dotenv
import pytest
import requests
import yaml
from ssh_hosts import BIN, CACHE, ROOT, SshHost, recap, run, serve

DISTROS = ["12", "13"]
COMPOSE_BINARY = f"docker-compose-linux-{platform.machine()}"
#: the files the production inventory downloads, served under their real names
MODEL_FILES = [
    ("qwen_image_edit_fp8_e4m3fn.safetensors", "diffusion_models"),
    ("qwen_2.5_vl_7b_fp8_scaled.safetensors", "text_encoders"),
    ("qwen_image_vae.safetensors", "vae"),
    ("sd_xl_turbo_1.0_fp16.safetensors", None),
]


@pytest.fixture(scope="module")
def model_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, str]]]:
    """Small files under the real names on 127.0.0.1, with their sha256."""
    root = tmp_path_factory.mktemp("models")
    sums = {}
    for name, _ in MODEL_FILES:
        data = f"stand-in weights of {name}\n".encode() * 64
        (root / name).write_bytes(data)
        sums[name] = hashlib.sha256(data).hexdigest()
    server, url = serve(root)
    yield url, sums
    server.shutdown()


@pytest.fixture(scope="module")
def toolkit_repo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """NVIDIA's repository layout (stable/deb/$(ARCH), flat, InRelease signed), on 127.0.0.1.

    It holds one nvidia-container-toolkit package: nvidia-ctk (the fake of tests/standins,
    `cdi generate` only) and an nvidia-container-runtime that only answers --version.
    """
    tmp = tmp_path_factory.mktemp("toolkit-repo")
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    pkg = tmp / "pkg"
    (pkg / "DEBIAN").mkdir(parents=True)
    (pkg / "usr" / "bin").mkdir(parents=True)
    (pkg / "DEBIAN" / "control").write_text(
        "Package: nvidia-container-toolkit\nVersion: 1.17.8-1\n"
        f"Architecture: {arch}\nMaintainer: genai_stack tests <tests@genai.invalid>\n"
        "Description: NVIDIA Container Toolkit (test package: nvidia-ctk cdi generate only)\n"
    )
    shutil.copy(
        ROOT / "tests" / "standins" / "nvidia-smi" / "nvidia-ctk", pkg / "usr/bin/nvidia-ctk"
    )
    runtime = pkg / "usr" / "bin" / "nvidia-container-runtime"
    runtime.write_text('#!/bin/sh\necho "NVIDIA Container Runtime version 1.17.8 (test)"\n')
    for path in (pkg / "usr/bin/nvidia-ctk", runtime):
        path.chmod(0o755)
    root = tmp / "root"
    repo = root / "stable" / "deb" / arch
    repo.mkdir(parents=True)
    built = run(["dpkg-deb", "--root-owner-group", "--build", str(pkg),
                 str(repo / f"nvidia-container-toolkit_1.17.8-1_{arch}.deb")])  # fmt: skip
    assert built.returncode == 0, built.stderr
    packages = subprocess.run(
        ["dpkg-scanpackages", "--multiversion", "."], cwd=repo, capture_output=True, check=True
    ).stdout
    (repo / "Packages").write_bytes(packages)
    (repo / "Packages.gz").write_bytes(gzip.compress(packages))
    sums = "".join(
        f" {hashlib.sha256((repo / n).read_bytes()).hexdigest()} {(repo / n).stat().st_size} {n}\n"
        for n in ("Packages", "Packages.gz")
    )
    (repo / "Release").write_text(
        f"Origin: genai_stack tests\nLabel: nvidia-container-toolkit\n"
        f"Date: {email.utils.formatdate(usegmt=True)}\nArchitectures: {arch}\nSHA256:\n{sums}"
    )
    gnupg = tmp / "gnupg"
    gnupg.mkdir(mode=0o700)
    env = {"GNUPGHOME": str(gnupg)}
    for argv in (
        ["gpg", "--batch", "--passphrase", "", "--quick-gen-key",
         "genai_stack test repository <repo@genai.invalid>", "rsa3072", "sign", "2d"],
        ["gpg", "--batch", "--yes", "--clearsign", "-o", str(repo / "InRelease"),
         str(repo / "Release")],
    ):  # fmt: skip
        done = run(argv, env=env)
        assert done.returncode == 0, done.stderr
    (root / "gpgkey").write_text(run(["gpg", "--armor", "--export"], env=env).stdout)
    run(["gpgconf", "--kill", "gpg-agent"], env=env)  # gpg started it; nothing outlives the test
    server, url = serve(root)
    yield url
    server.shutdown()


class Lab(SshHost):
    """One fresh host and the admin's copy of the production inventory for it."""

    def __init__(
        self,
        distro: str,
        tmp: Path,
        models: tuple[str, dict[str, str]],
        repo: str,
        compose: str | None = None,
    ) -> None:
        kind = "bare" if compose else "prod"
        super().__init__(
            f"genai-{kind}-{distro}", distro, (2220 if compose else 2200) + int(distro),
            Path(f"/opt/genai-{kind}-{distro}"), tmp / "id_ed25519",
            # a bare host has no docker: the role installs it
            docker=not compose,
            # the bare host and the prod host of a distro run side by side (tests/conftest.py's
            # work groups): each takes down only its own projects
            projects=[f"{kind}{distro}-{project}"
                      for project in ("vllm", "comfyui", "forge", "gateway")],
        )  # fmt: skip
        self.kind = kind
        self.repo = repo
        self.tmp = tmp
        #: a bare host has no docker: the role installs it (compose: the plugin's release URL)
        self.compose = compose
        self.base = (30050 if compose else 30000) + 100 * int(
            distro
        )  # below the ephemeral ports (32768-)
        self.inventory = tmp / "production"
        self.vault_pass = tmp / "genai-vault-pass"
        self.url, self.sums = models

    def ansible(self, playbook: str, *args: str) -> subprocess.CompletedProcess[str]:
        return run([str(BIN / "ansible-playbook"), "-i", str(self.inventory), playbook,
                    "-l", "gpu-host", *args, "--vault-password-file", str(self.vault_pass)])  # fmt: skip

    def start(self) -> None:
        self.stop()
        super().start()

    def running(self) -> Iterator[Lab]:
        """The host started and the README's steps done, for as long as the fixture lives."""
        self.start()
        try:
            self.readme_steps()
            yield self
        finally:
            self.stop()

    def readme_steps(self) -> None:
        """The README's commands, inventories/production being self.inventory."""
        shutil.copytree(ROOT / "inventories" / "production.example", self.inventory)
        self.edit()
        (self.inventory / "group_vars" / "all").mkdir(parents=True)
        vault = self.inventory / "group_vars" / "all" / "vault.yml"
        shutil.copy(self.inventory / "group_vars" / "vault.yml.example", vault)
        secret = hashlib.sha256(os.urandom(32)).hexdigest()[:48]
        vault.write_text(
            vault.read_text()
            .replace("CHANGEME-48-random-letters-and-digits", secret)
            .replace("CHANGEME-the-iis-administrator-password", "not-used-in-this-lab")
        )
        self.vault_pass.write_text(hashlib.sha256(os.urandom(32)).hexdigest() + "\n")
        self.vault_pass.chmod(0o600)
        done = run([str(BIN / "ansible-vault"), "encrypt", "--vault-password-file",
                    str(self.vault_pass), str(vault)])  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert vault.read_text().startswith("$ANSIBLE_VAULT;")

    def edit(self) -> None:
        """What the admin changes with $EDITOR: hosts.yml and group_vars/gpu_hosts.yml."""
        hosts_file = self.inventory / "hosts.yml"
        hosts = yaml.safe_load(hosts_file.read_text())
        gpu_host = hosts["all"]["children"]["gpu_hosts"]["hosts"]["gpu-host"]
        assert gpu_host["ansible_user"] == "admin" and gpu_host["ansible_become"] is True
        gpu_host.update(self.connection(self.tmp / "known_hosts"))
        hosts_file.write_text(yaml.safe_dump(hosts, sort_keys=False))

        group_file = self.inventory / "group_vars" / "gpu_hosts.yml"
        group = yaml.safe_load(group_file.read_text())
        base = self.base
        models = yaml.safe_load((ROOT / "group_vars/all/vllm_qwen3.yml").read_text())
        vllm_models = copy.deepcopy(models["vllm_qwen3_models"])
        for i, model in enumerate(vllm_models):
            model["port"] = base + i
            model["env"] = {"STANDIN_LOAD_SECONDS": "1"}
        instances = group["forge_turbo_instances"]
        instances[0]["port"], instances[1]["port"] = base + 20, base + 21
        for instance in instances:
            instance["env"] = {"STANDIN_LOAD_SECONDS": "1"}
        group.update(
            forge_turbo_checkpoint_sha256=self.sums["sd_xl_turbo_1.0_fp16.safetensors"],
            # NVIDIA's repository and key, from 127.0.0.1
            nvidia_runtime_repo_url=f"{self.repo}/stable/deb/$(ARCH)",
            nvidia_runtime_repo_key_url=f"{self.repo}/gpgkey",
            # this machine's docker, shared by every host: no NVIDIA runtime in it, never
            # started or restarted from a host; a bare host installs its own (never started: a
            # container cannot run dockerd here), compose v2's release served on 127.0.0.1
            genai_gpu_reservation=False,
            nvidia_runtime_docker_install=bool(self.compose),
            nvidia_runtime_docker_restart=False,
            nvidia_runtime_compose_plugin_url=f"{self.compose}/{COMPOSE_BINARY}",
            nvidia_runtime_compose_plugin_checksum=f"sha256:{self.compose}/checksums.txt",
            # the stand-in images
            vllm_qwen3_image="local/vllm-standin:latest",
            vllm_qwen3_pull="never",
            comfyui_qwen_auth_image="local/comfyui-standin",
            comfyui_qwen_auth_image_tag="latest",
            comfyui_qwen_auth_pull="never",
            comfyui_qwen_auth_login_source="image",
            forge_turbo_image="local/forge-standin:latest",
            forge_turbo_pull="never",
            # the model files, from 127.0.0.1 under their real names
            comfyui_qwen_auth_models=[
                {"name": n, "folder": f, "url": f"{self.url}/{n}", "sha256": self.sums[n]}
                for n, f in MODEL_FILES
                if f
            ],
            forge_turbo_checkpoint={
                "name": "sd_xl_turbo_1.0_fp16.safetensors",
                "url": f"{self.url}/sd_xl_turbo_1.0_fp16.safetensors",
                "sha256": "{{ forge_turbo_checkpoint_sha256 }}",
            },
            # one machine, many hosts: root, project names and ports of their own
            genai_root_dir=str(self.root),
            vllm_qwen3_project_name=f"{self.kind}{self.distro}-vllm",
            comfyui_qwen_auth_project_name=f"{self.kind}{self.distro}-comfyui",
            forge_turbo_project_name=f"{self.kind}{self.distro}-forge",
            openai_gateway_project_name=f"{self.kind}{self.distro}-gateway",
            openai_gateway_port=base + 40,
            # no registry here: the gateway is built from the debootstrapped Debian 12
            openai_gateway_base_image="local/debian:12",
            vllm_qwen3_models=vllm_models,
            comfyui_qwen_auth_port=base + 10,
            forge_turbo_instances=instances,
            genai_panel_port=base + 30,
            vllm_qwen3_healthcheck_interval=2,
            comfyui_qwen_auth_healthcheck_interval=2,
            forge_turbo_healthcheck_interval=2,
        )
        group_file.write_text(yaml.safe_dump(group, sort_keys=False))


@pytest.fixture(scope="module")
def compose_release(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """docker/compose's release layout on 127.0.0.1: the plugin binary and checksums.txt."""
    root = tmp_path_factory.mktemp("compose-release")
    binary = root / COMPOSE_BINARY
    shutil.copy(CACHE / "cli-plugins" / "docker-compose", binary)
    digest = hashlib.sha256(binary.read_bytes()).hexdigest()
    (root / "checksums.txt").write_text(
        f"{'f' * 64} *docker-compose-linux-aarch64\n{digest} *{COMPOSE_BINARY}\n"
    )
    server, url = serve(root)
    yield url
    server.shutdown()


@pytest.fixture(scope="module", params=DISTROS, ids=[f"bare-debian{d}" for d in DISTROS])
def bare(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    model_server: tuple[str, dict[str, str]],
    toolkit_repo: str,
    compose_release: str,
) -> Iterator[Lab]:
    """A fresh host without docker: nvidia_runtime installs the engine and compose v2."""
    yield from Lab(
        request.param, tmp_path_factory.mktemp(f"bare{request.param}"), model_server,
        toolkit_repo, compose_release,
    ).running()  # fmt: skip


def test_a_bare_host_gets_docker_and_compose_from_debian(bare: Lab) -> None:
    assert bare.in_host("sh", "-c", "command -v docker").returncode != 0
    check = bare.ansible("site.yml", "--tags", "nvidia", "--check", "--diff")
    assert check.returncode == 0, check.stdout[-6000:]
    assert bare.in_host("sh", "-c", "command -v docker").returncode != 0  # check wrote nothing
    wanted = "docker.io, docker-compose" if bare.distro == "13" else "docker.io"
    assert f"would refresh the package lists and install {wanted}" in check.stdout

    done = bare.ansible("site.yml", "--tags", "nvidia")
    assert done.returncode == 0, done.stdout[-8000:]
    engine = bare.in_host("dpkg-query", "-W", "-f=${Status}", "docker.io")
    assert engine.stdout == "install ok installed", engine.stdout + engine.stderr
    assert bare.in_host("docker", "--version").stdout.startswith("Docker version")
    compose = bare.in_host("docker", "compose", "version", "--short")
    assert compose.returncode == 0 and compose.stdout.strip().lstrip("v").startswith("2."), compose
    plugin = "/usr/local/lib/docker/cli-plugins/docker-compose"
    if bare.distro == "12":  # no compose v2 package: the release binary, its checksum checked
        served = (CACHE / "cli-plugins" / "docker-compose").read_bytes()
        got = bare.in_host("sha256sum", plugin).stdout.split()[0]
        assert got == hashlib.sha256(served).hexdigest()
    else:  # Debian 13's docker-compose package, no download
        status = bare.in_host("dpkg-query", "-W", "-f=${Status}", "docker-compose")
        assert status.stdout == "install ok installed", status.stdout + status.stderr
        assert bare.in_host("test", "-e", plugin).returncode != 0

    again = bare.ansible("site.yml", "--tags", "nvidia")
    assert again.returncode == 0, again.stdout[-5000:]
    assert recap(again.stdout)["changed"] == 0, again.stdout[-5000:]


@pytest.fixture(scope="module", params=DISTROS, ids=[f"debian{d}" for d in DISTROS])
def lab(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    model_server: tuple[str, dict[str, str]],
    toolkit_repo: str,
) -> Iterator[Lab]:
    lab_dir = tmp_path_factory.mktemp(f"lab{request.param}")
    yield from Lab(request.param, lab_dir, model_server, toolkit_repo).running()


def test_the_host_is_reached_over_ssh_as_admin_with_become(lab: Lab) -> None:
    done = run([str(BIN / "ansible"), "-i", str(lab.inventory), "gpu-host", "-m", "command",
                "-a", "id -un", "--vault-password-file", str(lab.vault_pass)])  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "root" in done.stdout  # become
    done = run([str(BIN / "ansible"), "-i", str(lab.inventory), "gpu-host", "-m", "command",
                "-a", "id -un", "-e", "ansible_become=false",
                "--vault-password-file", str(lab.vault_pass)])  # fmt: skip
    assert "admin" in done.stdout, done.stdout


def test_check_diff_on_the_fresh_host_shows_every_file_and_writes_none(lab: Lab) -> None:
    done = lab.ansible("site.yml", "--check", "--diff")
    (lab.tmp / "check-diff-fresh.log").write_text(done.stdout)  # for a human to read
    assert done.returncode == 0, done.stdout[-6000:]
    assert recap(done.stdout)["failed"] == 0
    assert lab.in_host("test", "-e", str(lab.root / "vllm")).returncode != 0
    assert not any(lab.root.iterdir()) if lab.root.exists() else True
    added = {line for line in done.stdout.splitlines() if line.startswith("+")}
    for project in ("vllm", "comfyui", "forge", "gateway"):
        assert f'+name: "prod{lab.distro}-{project}"' in added, f"no diff for {project}"
    assert f"{lab.root}/clients/genai.env" in done.stdout


def test_converge_then_nothing_changes(lab: Lab) -> None:
    done = lab.ansible("site.yml")
    assert done.returncode == 0, done.stdout[-8000:]
    again = lab.ansible("site.yml")
    assert again.returncode == 0, again.stdout[-5000:]
    assert recap(again.stdout)["changed"] == 0, again.stdout[-5000:]
    # the downloads ran for real, checked against the recorded sums
    for name, folder in MODEL_FILES:
        where = (
            lab.root / "comfyui" / "ComfyUI" / "models" / folder / name
            if folder
            else lab.root
            / "forge"
            / "turbo"
            / "workspace"
            / "storage"
            / "stable_diffusion"
            / "models"
            / "ckpt"
            / name
        )
        assert hashlib.sha256(where.read_bytes()).hexdigest() == lab.sums[name], where


def test_the_toolkit_came_from_the_signed_repository(lab: Lab) -> None:
    status = lab.in_host("dpkg-query", "-W", "-f=${Status} ${Version}", "nvidia-container-toolkit")
    assert status.stdout == "install ok installed 1.17.8-1", status.stdout + status.stderr
    sources = lab.in_host("cat", "/etc/apt/sources.list.d/nvidia-container-toolkit.list").stdout
    assert sources == (
        "deb [signed-by=/usr/share/keyrings/nvidia-container-toolkit-keyring.gpg] "
        f"{lab.repo}/stable/deb/$(ARCH) /\n"
    )
    daemon = json.loads(lab.in_host("cat", "/etc/docker/daemon.json").stdout)
    assert daemon["runtimes"]["nvidia"] == {"path": "nvidia-container-runtime", "args": []}
    cdi = lab.in_host("cat", "/etc/cdi/nvidia.yaml").stdout
    assert "kind: nvidia.com/gpu" in cdi and "name: all" in cdi


def test_validate_proves_every_service(lab: Lab) -> None:
    done = lab.ansible("playbooks/validate.yml", "-e", f"validate_report_dir={lab.tmp}")
    assert done.returncode == 0, done.stdout[-5000:]
    report = json.loads((lab.tmp / "validate-gpu-host.json").read_text())
    assert report["summary"]["failed"] == 0 and report["summary"]["total"] >= 15


def test_validate_sent_a_real_tool_call_round_trip(lab: Lab) -> None:
    """The stand-in answers any tool call: what validate.yml sent is what is checked here."""
    key = dotenv.dotenv_values(lab.root / "clients" / "genai.env")["VLLM_API_KEY"]
    bearer = hashlib.sha256(f"Bearer {key}".encode()).hexdigest()
    sent = requests.get(f"http://127.0.0.1:{lab.base}/standin/requests", timeout=5).json()
    chats = [r for r in sent if r["path"] == "/v1/chat/completions" and r["body"].get("tools")]
    assert chats and all(r["authorization_sha256"] == bearer for r in chats)
    call = next(r["body"] for r in chats if r["body"]["messages"][-1]["role"] == "user")
    answer = next(r["body"] for r in chats if r["body"]["messages"][-1]["role"] == "tool")
    function = call["tools"][0]["function"]
    assert call["tool_choice"] == "auto" and call["model"] == "qwen3-micro"
    assert function["name"] == "get_weather"
    assert function["parameters"]["required"] == ["city"]
    assert call["chat_template_kwargs"] == {"enable_thinking": False}
    asked, made, result = answer["messages"]
    assert asked == call["messages"][0] and made["role"] == "assistant"
    assert result["tool_call_id"] == made["tool_calls"][0]["id"]
    assert json.loads(made["tool_calls"][0]["function"]["arguments"]) == {"city": "Paris"}


def test_check_diff_on_the_converged_host_changes_nothing(lab: Lab) -> None:
    done = lab.ansible("site.yml", "--check", "--diff")
    assert done.returncode == 0, done.stdout[-5000:]
    assert recap(done.stdout)["changed"] == 0, done.stdout[-5000:]


def test_a_wrong_checksum_is_refused_and_the_services_keep_serving(lab: Lab) -> None:
    checkpoint = (
        lab.root / "forge" / "turbo" / "workspace" / "storage" / "stable_diffusion" / "models"
        / "ckpt" / "sd_xl_turbo_1.0_fp16.safetensors"
    )  # fmt: skip
    before = checkpoint.read_bytes()
    done = lab.ansible(
        "site.yml", "--tags", "forge", "-e", f"forge_turbo_checkpoint_sha256={'0' * 64}"
    )
    assert done.returncode != 0
    assert "checksum" in done.stdout.lower(), done.stdout[-3000:]
    assert checkpoint.read_bytes() == before
    health = requests.get(f"http://127.0.0.1:{lab.base + 20}/internal/ping", timeout=5)
    assert health.status_code == 200


def test_a_wrong_comfyui_model_checksum_is_refused_and_the_file_kept(lab: Lab) -> None:
    name, folder = MODEL_FILES[2]
    model = lab.root / "comfyui" / "ComfyUI" / "models" / folder / name
    before = model.read_bytes()
    models = [
        {"name": n, "folder": f, "url": f"{lab.url}/{n}", "sha256": "0" * 64 if n == name else s}
        for n, f in MODEL_FILES
        if f
        for s in [lab.sums[n]]
    ]
    done = lab.ansible(
        "site.yml", "--tags", "comfyui", "-e", json.dumps({"comfyui_qwen_auth_models": models})
    )
    assert done.returncode != 0
    assert "checksum" in done.stdout.lower() and name in done.stdout, done.stdout[-3000:]
    assert model.read_bytes() == before
    stats = requests.get(f"http://127.0.0.1:{lab.base + 10}/system_stats", timeout=5)
    assert stats.status_code == 401  # still serving, still closed without the token
