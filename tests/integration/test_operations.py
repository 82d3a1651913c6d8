"""site.yml on the demo host (local docker, stand-ins): a re-run changes nothing, --check --diff
changes nothing, client .env files match the services, rotate_tokens.yml, and update.yml refusing
bad input. validate, update rollouts and backup -> restore run in the molecule scenario
molecule/operations (the same playbooks on a Debian instance).

Runs the real playbooks with ansible-playbook against inventories/demo, moved to its own root
directory, compose project and ports by stack_vars.yml so it never touches a running demo.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest
import requests
import yaml

from genai_stack.project import Project

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
VARS = Path(__file__).with_name("stack_vars.yml")
PROJECT = Path("/opt/genai-itest/vllm")
PORTS = (25000, 25001, 25002)


def playbook(
    name: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = [str(BIN / "ansible-playbook"), name, "-l", "gpu-host", "-e", f"@{VARS}", *args]
    full_env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), **(env or {})}
    return subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, check=False)


def container_ids(project: str) -> dict[str, str]:
    out = subprocess.run(
        ["docker", "ps", "--no-trunc", "--filter",
         f"label=com.docker.compose.project={project}", "--format", "{{.Names}} {{.ID}}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return dict(line.split() for line in out.splitlines())


def secret_value(path: Path, key: str) -> str:
    """One value of a dotenv file, read with the collection's own parser."""
    return str(Project(ROOT).module_util("dotenv").parse(path.read_text())[key])


def recap(stdout: str) -> dict[str, int]:
    """The PLAY RECAP counters of gpu-host."""
    line = next(x for x in reversed(stdout.splitlines()) if x.startswith("gpu-host") and "ok=" in x)
    return {k: int(v) for k, v in (f.split("=") for f in line.split(":", 1)[1].split())}


def api_key() -> str:
    return secret_value(PROJECT / "qwen3-micro.env", "VLLM_API_KEY")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def stack() -> Iterator[None]:
    done = playbook("site.yml")
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr[-2000:]
    yield
    for project in ("itest-vllm", "itest-comfyui", "itest-forge", "itest-gateway"):  # by name
        subprocess.run(
            ["docker", "compose", "-p", project, "down", "--timeout", "2"],
            capture_output=True,
            check=False,
        )
    subprocess.run(["rm", "-rf", str(PROJECT.parent)], check=False)


def test_site_rerun_changes_nothing(stack: None) -> None:
    done = playbook("site.yml")
    assert done.returncode == 0
    assert recap(done.stdout)["changed"] == 0


def tree_digest(root: Path) -> dict[str, str]:
    """Every file under ``root`` (the whole stack: projects, env files, PASSWORD, clients), but
    the usage the OpenAI gateway counts as it serves (data, not configuration)."""
    usage = root / "openai-gateway" / "usage"
    return {
        str(p.relative_to(root)): digest(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and usage not in p.parents
    }


def test_check_diff_on_the_deployed_stack_changes_nothing(stack: None) -> None:
    before = tree_digest(PROJECT.parent)
    assert len(before) > 10
    ids = {p: container_ids(p) for p in ("itest-vllm", "itest-comfyui", "itest-forge")}
    done = playbook("site.yml", "--check", "--diff")
    assert done.returncode == 0, done.stdout[-3000:]
    assert recap(done.stdout)["changed"] == 0
    assert tree_digest(PROJECT.parent) == before
    assert {p: container_ids(p) for p in ids} == ids


def test_check_diff_that_adds_removes_and_changes_services_shows_it_and_fails_nothing(
    stack: None, tmp_path: Path
) -> None:
    """One --check --diff run that adds a Forge instance (with its start-time UI files, which
    a real run restarts), removes a vLLM model and moves ComfyUI's port: each change is in the
    diff, nothing fails, no file and no container changes."""
    stack_vars = yaml.safe_load(VARS.read_text())
    models = [m for m in stack_vars["vllm_qwen3_models"] if m["name"] != "qwen3-mini"]
    instances = [*stack_vars["forge_turbo_instances"],
                 {"name": "second", "port": 27871, "gpus": [2], "memory_share": 0.05,
                  "checkpoint": "{{ forge_turbo_checkpoint }}"}]  # fmt: skip
    change = tmp_path / "change.yml"
    change.write_text(yaml.safe_dump({
        "vllm_qwen3_models": models, "forge_turbo_instances": instances,
        "comfyui_qwen_auth_port": 28198,
    }))  # fmt: skip
    before = tree_digest(PROJECT.parent)
    ids = {p: container_ids(p) for p in ("itest-vllm", "itest-comfyui", "itest-forge")}
    done = playbook("site.yml", "--check", "--diff", "-e", f"@{change}")
    assert done.returncode == 0, done.stdout[-5000:]
    assert recap(done.stdout)["failed"] == 0 and recap(done.stdout)["rescued"] == 0
    lines = done.stdout.splitlines()
    assert '+  "second":' in lines, "the new Forge instance is not in the compose diff"
    assert '-  "qwen3-mini":' in lines, "the removed vLLM model is not in the compose diff"
    assert any(x.startswith("+") and "28198" in x for x in lines), "ComfyUI's new port"
    assert tree_digest(PROJECT.parent) == before
    assert {p: container_ids(p) for p in ids} == ids


def test_check_diff_on_a_fresh_host_shows_every_file_and_writes_none(
    stack: None, tmp_path: Path
) -> None:
    fresh = tmp_path / "fresh-root"
    done = playbook("site.yml", "--check", "--diff", "-e", f"genai_root_dir={fresh}")
    assert done.returncode == 0, done.stdout[-5000:]
    assert recap(done.stdout)["failed"] == 0
    assert not fresh.exists()
    added = [line for line in done.stdout.splitlines() if line.startswith("+")]
    for project in ("itest-vllm", "itest-comfyui", "itest-forge"):
        assert f'+name: "{project}"' in added, f"no compose diff for {project}"
    assert f"{fresh}/clients/genai.env" in done.stdout


def test_update_refuses_an_unknown_service_before_any_change(stack: None) -> None:
    before = container_ids("itest-vllm")
    done = playbook("playbooks/update.yml", "-e", '{"update_services": ["qwen3-huge"]}')
    assert done.returncode != 0
    assert "update_services names unknown services: qwen3-huge" in done.stdout
    assert container_ids("itest-vllm") == before


def test_client_env_matches_the_services(stack: None) -> None:
    env_file = PROJECT.parent / "clients" / "genai.env"
    assert env_file.stat().st_mode & 0o777 == 0o600
    values = dict(line.split("=", 1) for line in env_file.read_text().splitlines() if "=" in line)
    assert values["VLLM_API_KEY"] == api_key()
    assert values["VLLM_QWEN3_MINI_BASE_URL"] == "http://127.0.0.1:25001/v1"
    r = requests.get(
        values["VLLM_BASE_URL"] + "/models",
        headers={"Authorization": f"Bearer {values['VLLM_API_KEY']}"},
        timeout=5,
    )
    assert r.status_code == 200


def test_one_openai_endpoint_serves_every_model_with_the_client_s_own_key(stack: None) -> None:
    """The client .env points the official SDK at the gateway: it lists the three models, chats,
    streams and calls a tool through it; a key it does not know is refused."""
    values = client_values()
    assert values["OPENAI_BASE_URL"] == "http://127.0.0.1:25100/v1"
    config = json.loads((PROJECT.parent / "openai-gateway" / "config.json").read_text())
    assert values["OPENAI_API_KEY"] not in json.dumps(config)  # only its hash is on the host
    assert [c["key_sha256"] for c in config["clients"]] == [
        hashlib.sha256(values["OPENAI_API_KEY"].encode()).hexdigest()
    ]
    client = openai.OpenAI(
        base_url=values["OPENAI_BASE_URL"], api_key=values["OPENAI_API_KEY"], max_retries=0
    )
    assert sorted(m.id for m in client.models.list()) == [
        "qwen3-medium", "qwen3-micro", "qwen3-mini"
    ]  # fmt: skip
    no_think = {"chat_template_kwargs": {"enable_thinking": False}}
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    tool = {"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}  # fmt: skip
    answer = client.chat.completions.create(
        model="qwen3-mini",
        messages=ask,
        tools=[tool],
        extra_body=no_think,  # type: ignore[list-item]
    )
    assert answer.choices[0].message.tool_calls[0].function.name == "get_weather"  # type: ignore[index,union-attr]
    chunks = list(client.chat.completions.create(
        model="qwen3-micro", messages=[{"role": "user", "content": "Say OK."}], stream=True,
        extra_body=no_think))  # fmt: skip
    assert len(chunks) > 1 and all(c.choices for c in chunks)  # no usage-only chunk unasked
    with pytest.raises(openai.AuthenticationError):
        openai.OpenAI(base_url=values["OPENAI_BASE_URL"], api_key="x" * 48,
                      max_retries=0).models.list()  # fmt: skip


def test_a_client_removed_from_the_inventory_is_refused_after_the_run(stack: None) -> None:
    clients_dir = PROJECT.parent / "clients"
    with_batch = {
        "openai_gateway_clients": [{"name": "genai"}, {"name": "batch", "models": ["qwen3-micro"]}],
        "token_sync_clients": [{"path": f"{clients_dir}/genai.env"},
                               {"path": f"{clients_dir}/batch.env", "gateway_client": "batch"}],
    }  # fmt: skip
    done = playbook("site.yml", "--tags", "gateway,token_sync", "-e", json.dumps(with_batch))
    assert done.returncode == 0, done.stdout[-5000:]
    batch = secret_value(clients_dir / "batch.env", "OPENAI_API_KEY")
    assert batch != client_values()["OPENAI_API_KEY"]
    url = client_values()["OPENAI_BASE_URL"]
    batch_client = openai.OpenAI(base_url=url, api_key=batch, max_retries=0)
    assert [m.id for m in batch_client.models.list()] == ["qwen3-micro"]
    with pytest.raises(openai.NotFoundError):
        batch_client.chat.completions.create(
            model="qwen3-mini", messages=[{"role": "user", "content": "hi"}])  # fmt: skip
    done = playbook("site.yml", "--tags", "gateway", "-v")
    assert done.returncode == 0, done.stdout[-5000:]
    # the deploy proved it (the check's result, shown with -v), and so does the SDK
    assert "openai-gateway: refuses removed client batch" in done.stdout
    with pytest.raises(openai.AuthenticationError):
        batch_client.models.list()
    genai = openai.OpenAI(base_url=url, api_key=client_values()["OPENAI_API_KEY"], max_retries=0)
    assert len(genai.models.list().data) == 3


def started(project: str) -> dict[str, str]:
    """Each container of a compose project -> when it last started (restart or recreation)."""
    ids = container_ids(project)
    out = subprocess.run(
        ["docker", "inspect", "--format", "{{.Name}} {{.State.StartedAt}}", *ids.values()],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return {n.lstrip("/"): t for n, t in (line.split() for line in out.splitlines())}


def client_values() -> dict[str, str]:
    return dict(
        Project(ROOT)
        .module_util("dotenv")
        .parse((PROJECT.parent / "clients" / "genai.env").read_text())
    )


def test_rotate_tokens_everything_follows_and_nothing_leaks(stack: None) -> None:
    old = client_values()
    projects = ("itest-vllm", "itest-comfyui", "itest-forge")
    before = {p: started(p) for p in projects}
    done = playbook("playbooks/rotate_tokens.yml", "-vvv")
    assert done.returncode == 0, done.stdout[-5000:]
    new = client_values()
    secrets = ("VLLM_API_KEY", "COMFYUI_TOKEN", "FORGE_PASSWORD", "FORGE_WEB_TOKEN",
               "OPENAI_API_KEY")  # fmt: skip
    for key in secrets:
        assert new[key] != old[key], f"{key} did not change"
    assert new["VLLM_API_KEY"] == api_key()
    output = done.stdout + done.stderr
    for key in secrets:
        assert old[key] not in output and new[key] not in output, f"{key} reached the -vvv output"
    # every service took its new credential by a restart (or a recreation)
    after = {p: started(p) for p in projects}
    for project in projects:
        assert set(after[project]) == set(before[project]), project
        for name, when in after[project].items():
            assert when != before[project][name], f"{name} was not restarted"

    def get(url: str, **kw: object) -> int:
        return requests.get(url, timeout=5, **kw).status_code  # type: ignore[arg-type]

    for port in PORTS:
        url = f"http://127.0.0.1:{port}/v1/models"
        assert get(url, headers={"Authorization": f"Bearer {old['VLLM_API_KEY']}"}) == 401
        assert get(url, headers={"Authorization": f"Bearer {new['VLLM_API_KEY']}"}) == 200
    gateway = new["OPENAI_BASE_URL"] + "/models"
    assert get(gateway, headers={"Authorization": f"Bearer {old['OPENAI_API_KEY']}"}) == 401
    assert get(gateway, headers={"Authorization": f"Bearer {new['OPENAI_API_KEY']}"}) == 200
    comfy = new["COMFYUI_BASE_URL"] + "/system_stats"
    assert get(comfy, headers={"Authorization": f"Bearer {old['COMFYUI_TOKEN']}"}) == 401
    assert get(comfy, headers={"Authorization": f"Bearer {new['COMFYUI_TOKEN']}"}) == 200
    forge = new["FORGE_BASE_URL"] + "/sdapi/v1/sd-models"
    assert get(forge, auth=(new["FORGE_USER"], old["FORGE_PASSWORD"])) == 401
    assert get(forge, auth=(new["FORGE_USER"], new["FORGE_PASSWORD"])) == 200
    done = playbook("site.yml")
    assert done.returncode == 0 and recap(done.stdout)["changed"] == 0


SECRET_FILE = ROOT / ".secrets" / "itest" / "genai_secret.vault"


def test_a_lost_secret_is_refused_before_any_change_then_rotated_on_purpose(stack: None) -> None:
    """No secret file on the controller while the host holds credentials: site.yml stops in its
    first plays, names the file and both ways out, and every file on the host stays byte for
    byte; rotate_tokens.yml then rotates on purpose and site.yml is clean again. With
    token_sync_lost_secret=rotate, site.yml itself makes a new secret and follows it."""
    lost = SECRET_FILE.with_suffix(".lost")
    SECRET_FILE.rename(lost)
    try:
        before = tree_digest(PROJECT.parent)
        ids = {p: container_ids(p) for p in ("itest-vllm", "itest-comfyui", "itest-forge")}
        done = playbook("site.yml")
        assert done.returncode != 0
        said = " ".join(done.stdout.split())
        assert f"The secret file {SECRET_FILE} is missing, but gpu-host already hold" in said
        assert f"{PROJECT.parent}/clients/genai.env" in said
        assert "restore the file" in said and "playbooks/rotate_tokens.yml" in said
        assert not SECRET_FILE.exists(), "a new secret was generated"
        assert tree_digest(PROJECT.parent) == before
        assert {p: container_ids(p) for p in ids} == ids
        old = client_values()
        done = playbook("playbooks/rotate_tokens.yml")
        assert done.returncode == 0, done.stdout[-5000:]
        assert SECRET_FILE.exists()
        assert client_values()["VLLM_API_KEY"] != old["VLLM_API_KEY"]
        assert client_values()["VLLM_API_KEY"] == api_key()
        done = playbook("site.yml")
        assert done.returncode == 0 and recap(done.stdout)["changed"] == 0
        # a throwaway host (the demo) rotates instead: every credential follows the new secret
        SECRET_FILE.rename(lost)
        old = client_values()
        done = playbook("site.yml", "-e", "token_sync_lost_secret=rotate")
        assert done.returncode == 0, done.stdout[-5000:]
        assert "token_sync_lost_secret is rotate: a new secret is generated" in " ".join(
            done.stdout.split()
        )
        assert SECRET_FILE.exists()
        assert client_values()["VLLM_API_KEY"] not in (old["VLLM_API_KEY"], "")
        assert client_values()["VLLM_API_KEY"] == api_key()
    finally:
        lost.unlink(missing_ok=True)


def test_site_settles_each_project_on_its_own_when_one_fails_at_the_end(
    stack: None, tmp_path: Path
) -> None:
    """site.yml starts the projects together and proves them at the end of the play: a Forge
    instance that cannot load is restored with its project alone, while the vLLM change made in
    the same run is proven and kept; the run fails naming Forge."""
    forge, vllm = PROJECT.parent / "forge", PROJECT
    forge_before = {name: digest(forge / name) for name in ("compose.yaml", "turbo.env")}
    vllm_before = digest(vllm / "compose.yaml")
    models = yaml.safe_load(VARS.read_text())["vllm_qwen3_models"]
    models[0]["max_model_len"] = 16384
    instances = yaml.safe_load(VARS.read_text())["forge_turbo_instances"]
    instances[0]["env"] = {**instances[0].get("env", {}), "STANDIN_EXIT_AFTER_LOAD": "1"}
    change = tmp_path / "change.yml"
    change.write_text(
        yaml.safe_dump({"vllm_qwen3_models": models, "forge_turbo_instances": instances})
    )
    done = playbook("site.yml", "-e", f"@{change}")
    assert done.returncode != 0, done.stdout[-5000:]
    # (turbo: restarting) from the start, or the failed checks when it crashed after its health
    # check passed once
    assert "forge_turbo: the new configuration did not become healthy (" in done.stdout
    assert "vllm_qwen3: the new configuration" not in done.stdout
    assert {name: digest(forge / name) for name in forge_before} == forge_before  # restored
    ping = requests.get(f"http://127.0.0.1:{instances[0]['port']}/internal/ping", timeout=5)
    assert ping.status_code == 200  # the previous turbo serves again
    kept = digest(vllm / "compose.yaml")
    assert kept != vllm_before and digest(vllm / ".previous" / "compose.yaml") == kept
    assert "16384" in (vllm / "compose.yaml").read_text()
    done = playbook("site.yml")  # back to the stack's own settings
    assert done.returncode == 0, done.stdout[-5000:]
