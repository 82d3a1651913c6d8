"""The iis_reverse_proxy role without Windows: every web.config it would write, parsed as XML and
checked rule by rule per service; its validation failing before any change; the Windows playbook
judged by --syntax-check and ansible-lint.

The role's `render` entry point runs the same validation as `main` and writes each site's
web.config (the same template win_template sends to the host) on the controller.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import yaml

from ansible_collections.myia.genai_stack.plugins.filter.genai_services import genai_services
from ansible_collections.myia.genai_stack.plugins.module_utils import proxy_rules

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent
THUMB = "0123456789ABCDEF0123456789ABCDEF01234567"
TURBO = "turbo.stable-diffusion-webui-forge.myia.io"
TURBO_THUMB = "ABCDEF0123456789ABCDEF0123456789ABCDEF01"


def stack() -> dict[str, Any]:
    """The user's stack as group_vars declare it, plus ComfyUI and the Forge turbo instance."""
    models = yaml.safe_load((ROOT / "group_vars" / "all" / "vllm_qwen3.yml").read_text())
    return {
        "t_models": models["vllm_qwen3_models"]
        + [{"name": "qwen3-private", "model": "x", "port": 5009, "gpus": [0],
            "gpu_memory_utilization": 0.1}],
        "t_comfyui": {"name": "comfyui", "port": 8188, "hostname": "qwen-image-edit.myia.io"},
        "t_forge": [{"name": "forge-turbo", "port": 17861, "hostname": TURBO}],
        "iis_reverse_proxy_services": "{{ t_models | myia.genai_stack.genai_services("
        "comfyui=t_comfyui, forge=t_forge) }}",
        "iis_reverse_proxy_certificates": {TURBO: TURBO_THUMB.lower()},
        "iis_reverse_proxy_default_certificate": THUMB,
    }  # fmt: skip


def run(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROOT / "ansible.cfg"), "ANSIBLE_NOCOLOR": "1"}
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def playbook(tmp: Path, variables: dict[str, Any], tasks_from: str, hosts: str) -> Path:
    play = [{
        "name": "Apply iis_reverse_proxy",
        "hosts": hosts,
        "gather_facts": False,
        "vars": variables,
        "tasks": [{
            "name": "Run the role",
            "ansible.builtin.include_role": {
                "name": "myia.genai_stack.iis_reverse_proxy", "tasks_from": tasks_from,
            },
        }],
    }]  # fmt: skip
    path = tmp / f"{tasks_from}.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return path


def render(tmp: Path, **overrides: Any) -> subprocess.CompletedProcess[str]:
    out = tmp / "out"
    variables = {**stack(), "iis_reverse_proxy_render_dir": str(out), **overrides}
    play = playbook(tmp, variables, "render", "localhost")
    return run(str(BIN / "ansible-playbook"), "-i", "localhost,", "-c", "local",
               "-e", f"ansible_python_interpreter={sys.executable}", str(play))  # fmt: skip


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("iis")
    done = render(tmp)
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr
    return tmp / "out"


@pytest.fixture(scope="module")
def records() -> list[dict[str, Any]]:
    s = stack()
    return genai_services(s["t_models"], comfyui=s["t_comfyui"], forge=s["t_forge"])


def published(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in records if r["hostname"]]


def web_config(rendered: Path, name: str) -> ET.Element:
    return ET.parse(rendered / name / "web.config").getroot()


def rules_of(root: ET.Element) -> list[ET.Element]:
    rules = root.find("system.webServer/rewrite/rules")
    assert rules is not None and rules.get("useOriginalURLEncoding") == "false"
    assert rules[0].tag == "clear", "inherited rules must not run before ours"
    return rules.findall("rule")


def test_one_site_per_public_hostname(rendered: Path, records: list[dict[str, Any]]) -> None:
    sites = sorted(p.name for p in rendered.iterdir() if p.is_dir())
    assert sites == sorted(r["name"] for r in published(records))
    assert "qwen3-private" not in sites
    server = json.loads((rendered / "server.json").read_text())
    assert server["sites"] == [f"genai-{r['name']}" for r in published(records)]


def test_the_rules_come_from_the_stack_model_when_it_holds_them(
    tmp_path: Path, records: list[dict[str, Any]]
) -> None:
    """site.yml's first play computed this proxy's rules (genai_stack.proxies): the role takes
    them as they are rather than computing them again from the services."""
    rules = proxy_rules.compute(
        [r for r in records if r["name"] == "comfyui"], "iis_reverse_proxy",
        certificate_kind="thumbprint", default_certificate=THUMB,
    )  # fmt: skip
    done = render(tmp_path, genai_stack={"proxies": {"iis_reverse_proxy": rules}})
    assert done.returncode == 0, done.stdout[-5000:] + done.stderr
    assert sorted(p.name for p in (tmp_path / "out").iterdir() if p.is_dir()) == ["comfyui"]


@pytest.mark.parametrize(
    "name", ["qwen3-micro", "qwen3-mini", "qwen3-medium", "comfyui", "forge-turbo"]
)
def test_rules_per_service(rendered: Path, records: list[dict[str, Any]], name: str) -> None:
    record = next(r for r in records if r["name"] == name)
    root = web_config(rendered, name)
    rules = rules_of(root)
    names = [rule.get("name") for rule in rules]
    ws = record["websocket_paths"]
    assert names == ["genai-https-redirect"] + [
        f"genai-websocket-{i + 1}" for i in range(len(ws))
    ] + ["genai-proxy"]
    assert all(rule.get("stopProcessing") == "true" for rule in rules)

    # HTTP -> HTTPS, permanent, path and query kept
    redirect = rules[0]
    (condition,) = redirect.findall("conditions/add")
    assert (condition.get("input"), condition.get("pattern")) == ("{HTTPS}", "^OFF$")
    action = redirect.find("action")
    assert action.get("type") == "Redirect" and action.get("redirectType") == "Permanent"
    assert action.get("url") == f"https://{record['hostname']}{{REQUEST_URI}}"
    assert action.get("appendQueryString") == "false"

    # websocket paths and everything else: to the backend, with the forwarded headers
    for i, rule in enumerate(rules[1:]):
        action = rule.find("action")
        assert action.get("type") == "Rewrite"
        assert action.get("url") == f"{record['backend_url']}{{UNENCODED_URL}}"
        assert action.get("appendQueryString") == "false"  # UNENCODED_URL carries ?token=
        variables = {s.get("name"): s.get("value") for s in rule.findall("serverVariables/set")}
        assert variables == {"HTTP_X_FORWARDED_PROTO": "https",
                             "HTTP_X_FORWARDED_HOST": record["hostname"]}  # fmt: skip
        pattern = rule.find("match").get("url")
        if i < len(ws):
            path = ws[i].lstrip("/")
            assert re.match(pattern, path) and re.match(pattern, path + "/sub")
            assert not re.match(pattern, path + "x") and not re.match(pattern, "v1/models")
        else:
            assert pattern == ".*"

    limit = root.find("system.webServer/security/requestFiltering/requestLimits")
    assert int(limit.get("maxAllowedContentLength")) == record["max_body_mb"] * 1024 * 1024
    compression = root.find("system.webServer/urlCompression")
    if record["streaming"]:
        assert compression.get("doDynamicCompression") == "false"
    else:
        assert compression is None


def test_comfyui_websocket_and_upload_limit(rendered: Path) -> None:
    root = web_config(rendered, "comfyui")
    ws = root.find("system.webServer/rewrite/rules/rule[@name='genai-websocket-1']")
    assert ws.find("match").get("url") == "^ws(/.*)?$"
    limit = root.find("system.webServer/security/requestFiltering/requestLimits")
    assert limit.get("maxAllowedContentLength") == str(100 * 1024 * 1024)


def test_server_settings(rendered: Path) -> None:
    server = json.loads((rendered / "server.json").read_text())
    assert server["timeout_hms"] == "00:15:00" and server["timeout_s"] == 900
    assert server["response_buffer_limit_kb"] == 0
    assert server["server_variables"] == ["HTTP_X_FORWARDED_HOST", "HTTP_X_FORWARDED_PROTO"]
    assert server["preserve_host_header"] is True
    certificates = {r["hostname"]: r["certificate"] for r in server["rules"]}
    assert certificates[TURBO] == TURBO_THUMB
    assert certificates["qwen-image-edit.myia.io"] == THUMB


def test_overrides_and_backend_host(tmp_path: Path) -> None:
    done = render(
        tmp_path,
        iis_reverse_proxy_backend_host="localhost",
        iis_reverse_proxy_publish=["comfyui"],
        iis_reverse_proxy_overrides={"comfyui": {"max_body_mb": 250, "timeout_s": 1800}},
    )
    assert done.returncode == 0, done.stdout[-5000:]
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["comfyui", "server.json"]
    root = web_config(out, "comfyui")
    proxy = root.find("system.webServer/rewrite/rules/rule[@name='genai-proxy']/action")
    assert proxy.get("url") == "http://localhost:8188{UNENCODED_URL}"
    limit = root.find("system.webServer/security/requestFiltering/requestLimits")
    assert limit.get("maxAllowedContentLength") == str(250 * 1024 * 1024)
    assert json.loads((out / "server.json").read_text())["timeout_hms"] == "00:30:00"


BAD_INPUT = [
    pytest.param(
        {"t_forge": [{"name": "forge-turbo", "port": 17861, "hostname": "qwen-image-edit.myia.io"}],
         "iis_reverse_proxy_certificates": {}},
        "hostname 'qwen-image-edit.myia.io' already used",
        id="duplicate-hostname",
    ),
    pytest.param(
        {"iis_reverse_proxy_default_certificate": ""},
        "iis_reverse_proxy_certificates['micro.vllm.myia.io']: no certificate",
        id="missing-thumbprint",
    ),
    pytest.param(
        {"iis_reverse_proxy_publish": ["comfyui", "sdnext"]},
        "iis_reverse_proxy_publish[1]: 'sdnext' is not a service of iis_reverse_proxy_services",
        id="publish-unknown-service",
    ),
    pytest.param(
        {"iis_reverse_proxy_overrides": {"forge": {"max_body_mb": 10}}},
        "iis_reverse_proxy_overrides['forge']: 'forge' is not a service",
        id="override-unknown-service",
    ),
    pytest.param(
        {"iis_reverse_proxy_overrides": {"comfyui": {"max_body_mb": 5000}}},
        "max_body_mb must stay under 4096 on IIS",
        id="body-limit-above-iis-maximum",
    ),
    pytest.param(
        {"iis_reverse_proxy_https_port": "https"},
        "iis_reverse_proxy_https_port",
        id="argument-spec",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("overrides", "needle"), BAD_INPUT)
def test_bad_input_fails_before_rendering(
    tmp_path: Path, overrides: dict[str, Any], needle: str
) -> None:
    done = render(tmp_path, **overrides)
    assert done.returncode != 0
    assert needle in done.stdout + done.stderr, done.stdout[-5000:]
    assert not (tmp_path / "out").exists(), "wrote files before failing"


def windows_inventory(tmp: Path) -> Path:
    """An IIS host that cannot be reached: any task that contacts it fails UNREACHABLE."""
    inventory = {"all": {"children": {"iis_hosts": {"hosts": {"iis-host": {
        "ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_connection": "psrp",
        "ansible_psrp_protocol": "http", "ansible_user": "nobody", "ansible_password": "x",
    }}}}}}  # fmt: skip
    path = tmp / "hosts.yml"
    path.write_text(yaml.safe_dump(inventory))
    return path


@pytest.mark.parametrize(("overrides", "needle"), BAD_INPUT[:2])
def test_main_fails_before_contacting_the_host(
    tmp_path: Path, overrides: dict[str, Any], needle: str
) -> None:
    play = playbook(tmp_path, {**stack(), **overrides}, "main", "iis_hosts")
    done = run(str(BIN / "ansible-playbook"), "-i", str(windows_inventory(tmp_path)), str(play))
    assert done.returncode != 0
    assert needle in done.stdout, done.stdout[-5000:]
    assert "UNREACHABLE" not in done.stdout, "validation ran after contacting the host"


def test_main_with_good_input_reaches_the_windows_tasks(tmp_path: Path) -> None:
    """The positive control of the test above: validation passes, then IIS is installed."""
    play = playbook(tmp_path, stack(), "main", "iis_hosts")
    done = run(str(BIN / "ansible-playbook"), "-i", str(windows_inventory(tmp_path)), str(play))
    assert done.returncode != 0
    tail = done.stdout[done.stdout.index("Show the published services") :]
    assert "Install IIS with the WebSocket protocol" in tail, done.stdout[-5000:]


def test_windows_playbook_syntax(tmp_path: Path) -> None:
    play = [{"name": "Reverse proxy on IIS", "hosts": "iis_hosts", "gather_facts": False,
             "roles": [{"role": "myia.genai_stack.iis_reverse_proxy"}]}]  # fmt: skip
    path = tmp_path / "reverse_proxy_iis.yml"
    path.write_text(yaml.safe_dump(play))
    done = run(str(BIN / "ansible-playbook"), "--syntax-check",
               "-i", str(windows_inventory(tmp_path)), str(path))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_ansible_lint_of_the_windows_tasks() -> None:
    done = run(str(BIN / "ansible-lint"), "--offline", "--profile", "production",
               "roles/iis_reverse_proxy")  # fmt: skip
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-3000:]
