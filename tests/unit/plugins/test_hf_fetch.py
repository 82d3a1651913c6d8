"""hf_fetch: a hub repository into huggingface_hub's cache layout, resumable, verified, disk
checked first, gated repositories refused clearly; on the hub stand-in (127.0.0.1), with the
real huggingface_hub client as the judge of the cache it leaves."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from huggingface_hub import HfApi, hf_hub_download, snapshot_download
from huggingface_hub.errors import IncompleteSnapshotError

from ansible_collections.myia.genai_stack.plugins.module_utils import hf_hub
from ansible_collections.myia.genai_stack.plugins.modules import hf_fetch
from tests.standins.hfhub.hub_standin import Generated, HubStandin, Repo
from tests.unit.plugins.conftest import ModuleRun, RunModule

TOKEN = "hf_GrantedToken0123456789abcdef"
OTHER_TOKEN = "hf_NotGranted0123456789abcdef"
MB = 1_000_000

Runner = Callable[..., ModuleRun]


def tiny_files(seed: int = 1) -> dict[str, bytes | str | Generated]:
    return {
        "config.json": json.dumps({"architectures": ["Qwen3ForCausalLM"], "seed": seed}),
        "tokenizer.json": '{"model": {"type": "BPE"}}',
        "model.safetensors": Generated(3 * MB, seed),
        "extra/notes.txt": "a file in a folder\n",
    }


@pytest.fixture(scope="module")
def hub() -> Iterator[HubStandin]:
    repos = [Repo("Org/Tiny"), Repo("Org/Gated", gated=True, tokens={TOKEN}), Repo("Org/Big")]
    repos[0].commit(tiny_files())
    repos[1].commit({"config.json": "{}", "model.safetensors": Generated(MB, 7)})
    repos[2].commit({"config.json": "{}", "model.safetensors": Generated(3 * MB, 9)})
    repos.append(Repo("Other/Tiny"))  # the other knob holders get their own repositories
    repos[3].commit({"config.json": "{}"})
    with HubStandin(repos) as standin:
        yield standin


@pytest.fixture(autouse=True)
def clean_hub(request: pytest.FixtureRequest) -> Iterator[None]:
    if "hub" not in request.fixturenames:
        yield
        return
    standin: HubStandin = request.getfixturevalue("hub")
    standin.clear_faults()
    standin.reset_counts()
    yield
    standin.clear_faults()


def fresh_repo(hub: HubStandin, name: str, files: dict[str, Any] | None = None) -> Repo:
    """A repository of its own for a test that moves its branch or sets faults on it."""
    repo = hub.add(Repo(f"Test/{name}"))
    repo.commit(files or tiny_files())
    return repo


@pytest.fixture
def run(run_module: RunModule, hub: HubStandin) -> Runner:
    """hf_fetch against the stand-in (fast resumes); no token ever in its output."""

    def runner(args: dict[str, Any], **kwargs: bool) -> ModuleRun:
        full = {"endpoint": hub.endpoint, "retry_delay": 0, "timeout": 10, **args}
        ran = run_module(hf_fetch, full, **kwargs)
        for secret in (TOKEN, OTHER_TOKEN):
            assert secret not in ran.output
        return ran

    return runner


def content(hub: HubStandin, repo: str, commit: str, path: str) -> bytes:
    file = hub.repos[repo].commits[commit].files[path]
    return file.content.bytes() if isinstance(file.content, Generated) else file.content


def assert_offline_snapshot(hub: HubStandin, repo: str, commit: str, cache: Path,
                            revision: str | None = None) -> Path:  # fmt: skip
    """What vLLM does with HF_HUB_OFFLINE=1: the real client finds every file, right bytes."""
    folder = Path(snapshot_download(repo, revision=revision or commit, cache_dir=cache,
                                    local_files_only=True))  # fmt: skip
    assert folder.name == commit
    for path in hub.repos[repo].commits[commit].files:
        assert (folder / path).read_bytes() == content(hub, repo, commit, path), path
    return folder


def tree(root: Path) -> dict[str, str]:
    """Every path under root: a link's target, a file's sha256, or 'dir'."""
    found = {}
    for path in sorted(root.rglob("*")):
        key = path.relative_to(root).as_posix()
        if path.is_symlink():
            found[key] = f"-> {os.readlink(path)}"
        elif path.is_dir():
            found[key] = "dir"
        else:
            found[key] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


# ---- the stand-in is a hub for the real client


def test_real_client_accepts_the_standin_through_hf_endpoint(
    hub: HubStandin, tmp_path: Path
) -> None:
    """model_info (files_metadata) and snapshot_download through HF_ENDPOINT, in a fresh
    interpreter (huggingface_hub reads HF_ENDPOINT when imported)."""
    commit = hub.repos["Org/Tiny"].refs["main"]
    script = textwrap.dedent(f"""
        import json, sys
        from huggingface_hub import HfApi, snapshot_download
        info = HfApi().model_info("Org/Tiny", revision="main", files_metadata=True)
        siblings = {{s.rfilename: [s.size, s.blob_id, s.lfs.sha256 if s.lfs else None]
                     for s in info.siblings}}
        folder = snapshot_download("Org/Tiny", cache_dir={str(tmp_path)!r})
        print(json.dumps({{"sha": info.sha, "siblings": siblings, "folder": folder}}))
    """)
    env = {**os.environ, "HF_ENDPOINT": hub.endpoint, "HF_HUB_DISABLE_TELEMETRY": "1"}
    env.pop("HF_HUB_OFFLINE", None)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, check=True, timeout=120)  # fmt: skip
    answer = json.loads(out.stdout.strip().splitlines()[-1])
    files = hub.repos["Org/Tiny"].commits[commit].files
    assert answer["sha"] == commit
    assert answer["siblings"] == {
        p: [f.size, f.oid, f.sha256 if f.lfs else None] for p, f in files.items()
    }
    assert answer["siblings"]["model.safetensors"][2] == files["model.safetensors"].sha256
    assert Path(answer["folder"]).name == commit
    for path in files:
        assert (Path(answer["folder"]) / path).read_bytes() == content(
            hub, "Org/Tiny", commit, path
        )
    # the LFS file came from the CDN origin, without the client's Authorization
    cdn = [s for s in hub.requests if s.path.startswith("/cdn/")]
    assert [s.file for s in cdn] == ["Org/Tiny/model.safetensors"]


def test_real_client_is_refused_a_gated_file_without_token(hub: HubStandin, tmp_path: Path) -> None:
    from huggingface_hub.errors import GatedRepoError

    info = HfApi(endpoint=hub.endpoint).model_info("Org/Gated", files_metadata=True)
    assert info.gated == "manual"  # listed to anyone, as on the hub
    with pytest.raises(GatedRepoError):
        hf_hub_download("Org/Gated", "config.json", cache_dir=tmp_path, endpoint=hub.endpoint)
    path = hf_hub_download("Org/Gated", "config.json", cache_dir=tmp_path,
                           endpoint=hub.endpoint, token=TOKEN)  # fmt: skip
    assert Path(path).read_text() == "{}"


# ---- hf_fetch


def test_fetch_leaves_what_the_offline_client_finds(
    run: Runner, hub: HubStandin, tmp_path: Path
) -> None:
    cache = tmp_path / "hf-cache"
    code, result, _ = run({"repo": "Org/Tiny", "cache_dir": str(cache)})
    commit = hub.repos["Org/Tiny"].refs["main"]
    files = hub.repos["Org/Tiny"].commits[commit].files
    total = sum(f.size for f in files.values())
    assert code == 0 and result["changed"], result
    assert result["commit"] == commit and not result["pinned"]
    assert result["bytes_fetched"] == result["bytes_missing"] == total
    assert sorted((f["path"], f["size"], f["fetched"]) for f in result["files"]) == sorted(
        (p, f.size, True) for p, f in files.items()
    )
    model = next(f for f in result["files"] if f["path"] == "model.safetensors")
    assert model["hash"] == f"sha256:{files['model.safetensors'].sha256}"
    storage = cache / "models--Org--Tiny"
    assert model["blob"] == str(storage / "blobs" / files["model.safetensors"].sha256)
    assert os.readlink(storage / "snapshots" / commit / "extra" / "notes.txt") == (
        f"../../../blobs/{files['extra/notes.txt'].oid}"  # relative, git blob id: as the client
    )
    assert (storage / "refs" / "main").read_text() == commit
    assert_offline_snapshot(hub, "Org/Tiny", commit, cache)
    assert_offline_snapshot(hub, "Org/Tiny", commit, cache, revision="main")  # through refs/main
    one = hf_hub_download("Org/Tiny", "config.json", revision=commit, cache_dir=cache,
                          local_files_only=True)  # fmt: skip
    assert Path(one).read_bytes() == content(hub, "Org/Tiny", commit, "config.json")

    hub.reset_counts()
    code, again, _ = run({"repo": "Org/Tiny", "cache_dir": str(cache), "revision": commit})
    assert code == 0 and not again["changed"] and again["bytes_fetched"] == 0, again
    assert again["pinned"] and again["bytes_missing"] == 0
    assert [s.path for s in hub.requests] == [f"/api/models/Org/Tiny/revision/{commit}"]


def test_allow_patterns_and_the_tree_listing_the_client_reads(
    run: Runner, hub: HubStandin, tmp_path: Path
) -> None:
    """Only the matching files; trees/<commit>.json lists them all, so the offline client tells
    a partial snapshot from a complete one (it ignores a listing it cannot read)."""
    cache = tmp_path / "c"
    code, result, _ = run({"repo": "Org/Tiny", "cache_dir": str(cache),
                           "allow_patterns": ["*.json", "extra/"]})  # fmt: skip
    assert code == 0, result
    assert sorted(f["path"] for f in result["files"]) == [
        "config.json", "extra/notes.txt", "tokenizer.json"
    ]  # fmt: skip
    assert hub.bytes_served("Org/Tiny", "model.safetensors") == 0
    commit = result["commit"]
    folder = snapshot_download("Org/Tiny", revision=commit, cache_dir=cache, local_files_only=True,
                               allow_patterns=["*.json", "extra/"])  # fmt: skip
    assert Path(folder).name == commit
    with pytest.raises(IncompleteSnapshotError, match=r"model\.safetensors"):
        snapshot_download("Org/Tiny", revision=commit, cache_dir=cache, local_files_only=True)


@pytest.mark.parametrize("hash_thread", [False, True], ids=["hash-inline", "hash-thread"])
def test_a_dropped_connection_resumes_in_the_next_run(
    run: Runner, hub: HubStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hash_thread: bool
) -> None:
    monkeypatch.setattr(hf_hub, "HASH_THREAD", hash_thread)
    repo = fresh_repo(hub, f"Dropped-{hash_thread}")
    commit = repo.refs["main"]
    model = repo.commits[commit].files["model.safetensors"]
    hub.fault(repo.id, "model.safetensors", drop_after=MB + 12345)
    cache = tmp_path / "c"
    code, result, _ = run({"repo": repo.id, "cache_dir": str(cache), "retries": 0})
    assert code == 1 and "connection" in result["msg"] and "model.safetensors" in result["msg"]
    storage = cache / f"models--{repo.id.replace('/', '--')}"
    partial = storage / "blobs" / f"{model.sha256}.incomplete"
    assert partial.stat().st_size == MB + 12345
    assert not (storage / "blobs" / model.sha256).exists()
    assert not (storage / "refs" / "main").exists()  # no ref to an incomplete snapshot

    hub.reset_counts()
    code, result, _ = run({"repo": repo.id, "cache_dir": str(cache)})
    assert code == 0 and result["changed"], result
    assert hub.bytes_served(repo.id, "model.safetensors") == model.size - (MB + 12345)
    (get,) = hub.file_requests(repo.id, "model.safetensors")
    assert get.range == f"bytes={MB + 12345}-" and get.status == 206
    entry = next(f for f in result["files"] if f["path"] == "model.safetensors")
    assert entry["partial"] == MB + 12345 and entry["fetched"]
    blob = storage / "blobs" / model.sha256
    assert hashlib.sha256(blob.read_bytes()).hexdigest() == model.sha256
    assert not partial.exists()
    assert_offline_snapshot(hub, repo.id, commit, cache)


def test_a_dropped_connection_resumes_within_the_run(
    run: Runner, hub: HubStandin, tmp_path: Path
) -> None:
    repo = fresh_repo(hub, "DroppedOnce")
    model = repo.commits[repo.refs["main"]].files["model.safetensors"]
    hub.fault(repo.id, "model.safetensors", drop_after=2 * MB)
    code, result, _ = run({"repo": repo.id, "cache_dir": str(tmp_path)})
    assert code == 0, result
    gets = hub.file_requests(repo.id, "model.safetensors")
    assert [(g.range, g.bytes) for g in gets] == [(None, 2 * MB), (f"bytes={2 * MB}-", MB)]
    assert hub.bytes_served(repo.id, "model.safetensors") == model.size  # nothing twice
    assert_offline_snapshot(hub, repo.id, repo.refs["main"], tmp_path)


def test_wrong_bytes_are_refused_and_the_good_snapshot_kept(
    run: Runner, hub: HubStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hf_hub, "HASH_THREAD", True)  # the inline hash: the resume test
    repo = fresh_repo(hub, "Corrupt")
    good = repo.refs["main"]
    cache = tmp_path / "c"
    assert run({"repo": repo.id, "cache_dir": str(cache)})[0] == 0
    storage = cache / f"models--{repo.id.replace('/', '--')}"
    before = tree(storage)

    new = repo.commit(tiny_files(seed=2))  # main moves on; its weights are served wrong
    new_model = repo.commits[new].files["model.safetensors"]
    hub.fault(repo.id, "model.safetensors", corrupt=True)
    code, result, _ = run({"repo": repo.id, "cache_dir": str(cache)})
    assert code == 1, result
    assert "not the hub's" in result["msg"] and "model.safetensors" in result["msg"]
    assert new_model.sha256 in result["msg"]
    assert not (storage / "blobs" / f"{new_model.sha256}.incomplete").exists()
    assert not (storage / "blobs" / new_model.sha256).exists()
    after = tree(storage)
    assert {k: v for k, v in after.items() if k in before} == before  # nothing changed
    assert (storage / "refs" / "main").read_text() == good
    assert_offline_snapshot(hub, repo.id, good, cache, revision="main")  # still serves

    hub.clear_faults()
    code, result, _ = run({"repo": repo.id, "cache_dir": str(cache)})
    assert code == 0 and result["commit"] == new, result
    assert (storage / "refs" / "main").read_text() == new
    assert_offline_snapshot(hub, repo.id, new, cache, revision="main")
    assert_offline_snapshot(hub, repo.id, good, cache)


def test_a_small_disk_is_refused_before_any_byte(
    run: Runner, hub: HubStandin, tmp_path: Path
) -> None:
    mount = tmp_path / "small"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], check=True)
    try:
        cache = mount / "hf-cache"
        code, result, _ = run({"repo": "Org/Big", "cache_dir": str(cache), "margin_mb": 0})
        free = os.statvfs(mount).f_bavail * os.statvfs(mount).f_frsize
        needed = sum(f.size for f in hub.repos["Org/Big"].commits[result["commit"]].files.values())
        assert code == 1, result
        assert f"needed 2.9 MiB ({needed} bytes)" in result["msg"]
        assert f"free 2.0 MiB ({free} bytes)" in result["msg"] and str(mount) in result["msg"]
        assert result["disk"] == {"needed": needed, "free": free, "margin": 0, "where": str(mount)}
        assert hub.bytes_served("Org/Big") == 0
        assert not [s for s in hub.requests if "/resolve/" in s.path or "/cdn/" in s.path]
        assert list(mount.iterdir()) == []  # nothing written, not even the cache folder
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_the_margin_counts(run: Runner, hub: HubStandin, tmp_path: Path) -> None:
    free = os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize
    margin_mb = free // hf_hub.MIB  # the files (3 MB) fit, the margin with them does not
    code, result, _ = run({"repo": "Org/Big", "cache_dir": str(tmp_path / "c"),
                           "margin_mb": margin_mb})  # fmt: skip
    assert code == 1 and "not enough disk space" in result["msg"], result
    assert "plus a margin of" in result["msg"] and hub.bytes_served("Org/Big") == 0
    assert not (tmp_path / "c").exists()


def test_gated_repository_needs_a_granted_token(
    run: Runner, hub: HubStandin, tmp_path: Path
) -> None:
    cache = tmp_path / "c"
    code, result, _ = run({"repo": "Org/Gated", "cache_dir": str(cache)})
    assert code == 1 and result["failed"]
    assert "Org/Gated is a gated repository" in result["msg"]
    assert "vault_genai_hf_token" in result["msg"]
    assert hub.bytes_served("Org/Gated") == 0 and not cache.exists()

    code, result, _ = run({"repo": "Org/Gated", "cache_dir": str(cache), "token": OTHER_TOKEN})
    assert (
        code == 1 and "has no access" in result["msg"] and "vault_genai_hf_token" in result["msg"]
    )
    assert not cache.exists()

    hub.reset_counts()
    code, result, raw = run({"repo": "Org/Gated", "cache_dir": str(cache), "token": TOKEN})
    assert code == 0 and result["changed"], result
    assert_offline_snapshot(hub, "Org/Gated", result["commit"], cache)
    assert TOKEN not in json.dumps(result) and TOKEN not in raw
    sent = {s.path.split("/")[1]: s.authorization for s in hub.requests if s.method == "GET"}
    assert sent == {"api": True, "Org": True, "cdn": False}  # the token stays on the hub


def test_two_fetches_of_one_commit_give_identical_snapshots(
    run: Runner, hub: HubStandin, tmp_path: Path
) -> None:
    commit = hub.repos["Org/Tiny"].refs["main"]
    first, second = tmp_path / "host-a", tmp_path / "host-b"
    assert run({"repo": "Org/Tiny", "cache_dir": str(first), "revision": commit})[0] == 0
    assert run({"repo": "Org/Tiny", "cache_dir": str(second), "revision": commit})[0] == 0
    a, b = tree(first / "models--Org--Tiny"), tree(second / "models--Org--Tiny")
    assert a == b and f"snapshots/{commit}/model.safetensors" in a
    assert "refs/main" not in a  # a commit asked for: no branch recorded


def test_check_mode_lists_and_writes_nothing(run: Runner, hub: HubStandin, tmp_path: Path) -> None:
    cache = tmp_path / "c"
    code, result, _ = run({"repo": "Org/Tiny", "cache_dir": str(cache)}, check=True, diff=True)
    commit = hub.repos["Org/Tiny"].refs["main"]
    files = hub.repos["Org/Tiny"].commits[commit].files
    assert code == 0 and result["changed"] and result["bytes_fetched"] == 0, result
    assert result["bytes_missing"] == sum(f.size for f in files.values())
    snapshot = cache / "models--Org--Tiny" / "snapshots" / commit
    assert sorted((f["path"], f["size"], f["destination"], f["missing"], f["fetched"])
                  for f in result["files"]) == sorted(
        (p, f.size, str(snapshot / p), True, False) for p, f in files.items()
    )  # fmt: skip
    assert "model.safetensors (2.9 MiB)" in result["diff"]["after"]
    assert result["diff"]["before"] == ""
    assert not cache.exists() and hub.bytes_served() == 0

    assert run({"repo": "Org/Tiny", "cache_dir": str(cache)})[0] == 0
    code, result, _ = run({"repo": "Org/Tiny", "cache_dir": str(cache)}, check=True, diff=True)
    assert not result["changed"] and result["diff"]["before"] == result["diff"]["after"]


def test_progress_file_reports_bytes_rate_and_files(
    run: Runner, hub: HubStandin, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(hf_hub, "PROGRESS_EVERY", 0.0)
    progress = tmp_path / "progress.json"
    code, _, _ = run({"repo": "Org/Big", "cache_dir": str(tmp_path / "c"),
                      "progress_file": str(progress)})  # fmt: skip
    assert code == 0
    state = json.loads(progress.read_text())
    assert state["repo"] == "Org/Big" and state["done"] == state["total"]
    assert state["files_total"] == 2 and state["files_done"] == 2 and state["rate"] > 0


def test_unknown_repo_and_revision_fail_clearly(run: Runner, tmp_path: Path) -> None:
    code, result, _ = run({"repo": "Org/Nope", "cache_dir": str(tmp_path)})
    assert code == 1 and "Org/Nope" in result["msg"] and "repository not found" in result["msg"]
    code, result, _ = run({"repo": "Org/Tiny", "cache_dir": str(tmp_path), "revision": "v9"})
    assert code == 1 and "revision not found" in result["msg"] and "Org/Tiny@v9" in result["msg"]


def test_a_path_leaving_the_snapshot_is_refused(tmp_path: Path) -> None:
    cache = hf_hub.Cache(str(tmp_path), "Org/Evil")
    with pytest.raises(hf_hub.HubError, match="leaves its snapshot"):
        cache.pointer("a" * 40, "../../../etc/passwd")


def test_allow_patterns_match_as_huggingface_hub() -> None:
    from huggingface_hub.utils import filter_repo_objects

    paths = ["config.json", "a/b.json", "model-00001.safetensors", "onnx/x.onnx", "README.md"]
    files = [hf_hub.RemoteFile(p, 1, "0" * 40) for p in paths]
    for patterns in (["*.json"], ["onnx/"], ["*.safetensors", "README*"], ["a/*"]):
        ours = [f.path for f in hf_hub.select(files, patterns)]
        assert ours == list(filter_repo_objects(paths, allow_patterns=patterns)), patterns


def test_an_unreachable_hub_is_fine_when_the_commit_is_complete(
    run: Runner, hub: HubStandin, tmp_path: Path
) -> None:
    """A host cut off from the hub still converges on what it holds (pinned, or the branch as
    last fetched), with a warning; with a file missing it fails, naming why."""
    commit = hub.repos["Org/Tiny"].refs["main"]
    cache = tmp_path / "c"
    assert run({"repo": "Org/Tiny", "cache_dir": str(cache)})[0] == 0
    before = tree(cache)
    dead = "http://127.0.0.1:9"  # discard: nothing listens
    for revision in (commit, "main"):
        code, result, _ = run({"repo": "Org/Tiny", "cache_dir": str(cache), "endpoint": dead,
                               "revision": revision, "retries": 0})  # fmt: skip
        assert code == 0 and result["offline"] and not result["changed"], result
        assert result["commit"] == commit and "out of reach" in json.dumps(result["warnings"])
    assert tree(cache) == before
    code, result, _ = run({"repo": "Org/Tiny", "cache_dir": str(cache), "endpoint": dead,
                           "revision": "v2"})  # fmt: skip
    assert code == 1 and "Org/Tiny@v2" in result["msg"]  # nothing recorded for v2
    (cache / "models--Org--Tiny" / "snapshots" / commit / "config.json").unlink()
    code, result, _ = run({"repo": "Org/Tiny", "cache_dir": str(cache), "endpoint": dead,
                           "revision": commit})  # fmt: skip
    assert code == 1 and "out of reach" in result["msg"] and "lacks files" in result["msg"]
