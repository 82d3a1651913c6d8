"""Ten GPU hosts in one inventory: site.yml, validate.yml and update.yml each in one call.

Ten fresh Debian 12 hosts (tests/integration/ssh_hosts.py: sshd on 127.0.0.1:2300-2309, reached
as ``admin`` with ``become``), each with its own root /opt/genai-manyNN, ports 20000 + 100 * NN (below the ephemeral ports),
compose projects manyNN-*, secret and GPU set (1 to 3 declared GPUs: a GPU plan per host). They
share this machine's dockerd. Each deploys a light stack: one vLLM model and ComfyUI (stand-ins),
no Forge instance, nothing installed (site.yml runs without the nvidia and forge tags: nothing for
them to do here), and the rollout moves the vLLM model only.

The order: site.yml on the ten with one host's model on a GPU it does not have (that host fails
in the first play, the nine others converge), then that host fixed; validate.yml in one call (a
report per host); update.yml to a new vLLM release four hosts at a time with
``genai_max_fail_percentage=0``, a host of the second batch given a release that never becomes
healthy: it is put back and serves the old release, the first two batches' other hosts run the
new one, the third batch is left untouched.
"""

from __future__ import annotations

import copy
import json
import re
import time
from collections.abc import Iterator

import dotenv
import pytest
import requests
from ssh_hosts import Fleet, recaps, run

HOSTS = 10
#: the new vLLM release the rollout moves to (the stand-in under a tag of this test's own)
NEXT = "local/vllm-standin:many-hosts-next"
OLD = "local/vllm-standin:latest"
#: the host whose model names a GPU it does not have (site.yml), and the one whose new release
#: never becomes healthy (update.yml, second batch of four)
BAD_MODEL, BAD_RELEASE = "many09", "many05"
SERIAL = 4
#: site.yml without what this bed has nothing for (no toolkit, no docker to install: the hosts
#: share this machine's; no Forge instance), to keep ten converges light
LIGHT = ("--skip-tags", "nvidia,forge")


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fleet]:
    fleet = Fleet("many", HOSTS, tmp_path_factory.mktemp("many-hosts"), 2300, 20000)
    tagged = run(["docker", "tag", OLD, NEXT])
    assert tagged.returncode == 0, tagged.stderr
    try:
        fleet.start()
        yield fleet
    finally:
        fleet.stop()
        run(["docker", "image", "rm", NEXT])  # the tag only: the image is the stand-in's


def fatal_hosts(stdout: str) -> set[str]:
    return set(re.findall(r"^fatal: \[([^\]]+)\]", stdout, re.M))


def containers(fleet: Fleet, name: str) -> dict[str, tuple[str, str]]:
    """The host's running containers: name -> (image, id)."""
    listed = run(["docker", "ps", "--filter", f"label=com.docker.compose.project={name}-vllm",
                  "--format", "{{.Names}} {{.Image}} {{.ID}}"])  # fmt: skip
    return {n: (image, cid) for n, image, cid in (x.split() for x in listed.stdout.splitlines())}


def test_site_converges_every_host_but_the_one_with_a_bad_model(fleet: Fleet) -> None:
    good = copy.deepcopy(fleet.host_vars[BAD_MODEL])
    fleet.host_vars[BAD_MODEL]["vllm_qwen3_models"][0]["gpus"] = [7]
    fleet.write_inventory()
    start = time.monotonic()
    done = fleet.ansible("site.yml", *LIGHT)
    took = time.monotonic() - start
    (fleet.tmp / "site.log").write_text(done.stdout + done.stderr)
    assert done.returncode != 0
    counts = recaps(done.stdout)
    assert set(counts) == set(fleet.names), done.stdout[-3000:]
    out = done.stdout + done.stderr  # ansible-core prints task errors on stderr
    assert fatal_hosts(out) == {BAD_MODEL}, out[-8000:]
    assert counts[BAD_MODEL]["failed"] == 1
    error = out.index(f"fatal: [{BAD_MODEL}]")
    assert "vllm_qwen3_models[0].gpus" in out[error : error + 2000], out[error : error + 2000]
    for name in fleet.names:
        if name != BAD_MODEL:
            assert counts[name]["failed"] == counts[name]["unreachable"] == 0, name
            assert counts[name]["changed"] > 0, name
    # the bad host failed before any change; the others serve
    assert not (fleet.hosts[BAD_MODEL].root / "vllm").exists()
    for name in fleet.names:
        if name != BAD_MODEL:
            health = requests.get(f"http://127.0.0.1:{fleet.base[name]}/health", timeout=5)
            assert health.status_code == 200, name
    print(f"site.yml on {HOSTS} hosts (one failing in the first play): {took:.0f} s")

    fleet.host_vars[BAD_MODEL] = good
    fleet.write_inventory()
    start = time.monotonic()
    fixed = fleet.ansible("site.yml", *LIGHT, "-l", BAD_MODEL)
    assert fixed.returncode == 0, fixed.stdout[-5000:]
    print(f"site.yml on {BAD_MODEL} once fixed: {time.monotonic() - start:.0f} s")


def test_each_host_keeps_its_own_gpu_plan_secret_and_client_file(fleet: Fleet) -> None:
    keys = set()
    for i, name in enumerate(fleet.names):
        root = fleet.hosts[name].root
        gpus = 1 + i % 3
        compose = (root / "vllm" / "compose.yaml").read_text()
        plan = [x for x in compose.splitlines() if re.match(r"#\s+\d+\s", x)]
        assert [x.split()[1] for x in plan] == [str(g) for g in range(gpus)], compose[:800]
        assert all(f"{name} GPU" in x for x in plan), plan
        assert f'NVIDIA_VISIBLE_DEVICES: "{gpus - 1}"' in compose
        client = dotenv.dotenv_values(root / "clients" / "genai.env")
        assert client["VLLM_BASE_URL"] == f"http://127.0.0.1:{fleet.base[name]}/v1"
        served = dotenv.dotenv_values(root / "vllm" / "qwen3-micro.env")
        assert served["VLLM_API_KEY"] == client["VLLM_API_KEY"], name
        keys.add(client["VLLM_API_KEY"])
    assert len(keys) == HOSTS  # a secret per host, every credential derived from its own


def test_validate_checks_every_host_in_one_call(fleet: Fleet) -> None:
    reports = fleet.tmp / "reports"
    done = fleet.ansible("playbooks/validate.yml", "-e", f"validate_report_dir={reports}")
    assert done.returncode == 0, done.stdout[-5000:]
    assert sorted(p.name for p in reports.iterdir()) == [f"validate-{n}.json" for n in fleet.names]
    for name in fleet.names:
        report = json.loads((reports / f"validate-{name}.json").read_text())
        assert report["host"] == name
        assert report["summary"]["failed"] == 0 and report["summary"]["total"] >= 8, report
        ports = {int(re.search(r":(\d+)/", e["url"])[1]) for e in report["endpoints"]}
        assert ports == {fleet.base[name], fleet.base[name] + 10}, (name, ports)


def test_update_rolls_in_batches_and_stops_at_the_batch_that_fails(fleet: Fleet) -> None:
    before = {name: containers(fleet, name) for name in fleet.names}
    assert all(image == OLD for c in before.values() for image, _ in c.values()), before
    # this host's new release never becomes healthy (its engine dies after loading)
    model = fleet.host_vars[BAD_RELEASE]["vllm_qwen3_models"][0]
    model["env"] = {**model["env"], "STANDIN_FAIL": "1"}
    model["load_timeout"] = 6
    fleet.write_inventory()
    start = time.monotonic()
    done = fleet.ansible("playbooks/update.yml", "-e", f"vllm_qwen3_image={NEXT}",
                         "-e", '{"update_services": ["qwen3-micro"]}',
                         "-e", f"genai_serial={SERIAL}", "-e", "genai_max_fail_percentage=0")  # fmt: skip
    took = time.monotonic() - start
    (fleet.tmp / "update.log").write_text(done.stdout + done.stderr)
    assert done.returncode != 0
    out = done.stdout + done.stderr
    assert fatal_hosts(out) == {BAD_RELEASE}, out[-8000:]
    error = out.index(f"fatal: [{BAD_RELEASE}]")
    assert "Rollout stopped, every service restored" in out[error:], out[error : error + 3000]
    # two batches ran the rollout play; the third never started
    assert done.stdout.count("PLAY [Roll out one service at a time") == 2, done.stdout[-5000:]
    after = {name: containers(fleet, name) for name in fleet.names}
    batches = [fleet.names[i : i + SERIAL] for i in range(0, HOSTS, SERIAL)]
    for name in batches[0] + batches[1]:
        if name != BAD_RELEASE:
            assert [image for image, _ in after[name].values()] == [NEXT], (name, after[name])
    # the failing host: put back on the old release, serving
    assert [image for image, _ in after[BAD_RELEASE].values()] == [OLD], after[BAD_RELEASE]
    health = requests.get(f"http://127.0.0.1:{fleet.base[BAD_RELEASE]}/health", timeout=5)
    assert health.status_code == 200
    # the last batch: untouched, the same containers on the old release
    for name in batches[2]:
        assert after[name] == before[name], name
    print(f"update.yml on {HOSTS} hosts, serial {SERIAL}, stopped at batch 2: {took:.0f} s")
