# Copyright: (c) 2025, genai_stack team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ansible module: fetch a Hugging Face hub repository at a revision into a hub cache."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: hf_fetch
short_description: Fetch a Hugging Face model repository into a hub cache, resumable and verified
version_added: "0.3.0"
description:
  - Resolves O(repo) at O(revision) through the hub's API into a commit and its files (size,
    sha256 of LFS files, git blob id of the others), then downloads what the cache at
    O(cache_dir) lacks, in C(huggingface_hub)'s own layout (C(models--Org--Name/blobs/<etag>),
    C(snapshots/<commit>/<path>) relative links to the blobs, C(refs/<revision>),
    C(trees/<commit>.json)). A service that mounts that cache as C(HF_HUB_CACHE) then starts
    with C(HF_HUB_OFFLINE=1) and never downloads (vLLM with C(--revision <commit>)).
  - Before any download, the bytes still missing are summed and compared with the free space
    of the cache's filesystem, less O(margin_mb). When they do not fit the module fails before
    any change, with the bytes needed, the bytes free and where.
  - A download resumes from its C(blobs/<etag>.incomplete) with an HTTP C(Range) request, after
    a dropped connection (up to O(retries) times in a run), a killed run or a reboot. The bytes
    are hashed as they arrive; a file reaches C(blobs/) only with the hub's size and hash.
    Bytes that are not the hub's are refused, the partial file removed; the files already in
    the cache stay as they are.
  - C(refs/<revision>) is written last, once every file of the commit is in place.
  - A gated repository needs O(token), from an account that was granted access; the token is
    sent to the hub only (not to the CDN it redirects to) and never shows in results or
    messages.
  - Needs only the Python standard library on the target host.
author:
  - genai_stack team (@myia)
attributes:
  check_mode:
    support: full
    description:
      - Resolves the revision and lists each file a real run would download, with its size and
        destination; writes nothing. Fails as a real run would on a gated repository without
        token or a disk too small.
  diff_mode:
    support: full
    description: The snapshot's files before and after, with their sizes.
options:
  repo:
    description: The model repository, C(Org/Name).
    type: str
    required: true
  revision:
    description:
      - A branch, a tag or a commit (40 hexadecimal digits). A commit pins the files; a branch
        or tag is resolved to its commit now, and C(refs/<revision>) records it.
    type: str
    default: main
  cache_dir:
    description:
      - The hub cache (C(HF_HUB_CACHE)), created if missing; the repository goes into
        C(models--Org--Name) inside it.
    type: path
    required: true
  endpoint:
    description: The hub's address (C(HF_ENDPOINT)).
    type: str
    default: https://huggingface.co
  token:
    description:
      - A Hugging Face access token (the stack keeps it in C(vault_genai_hf_token)). Needed for
        a gated or private repository.
    type: str
  allow_patterns:
    description:
      - Fetch only the files whose path matches one of these globs (C(fnmatch), case-sensitive;
        a pattern ending in C(/) matches everything below), as C(huggingface_hub)'s
        C(allow_patterns). All files when unset.
    type: list
    elements: str
  margin_mb:
    description: Free space, in MiB, that must remain on the cache's filesystem after the fetch.
    type: int
    default: 1024
  timeout:
    description: Seconds without a byte from the hub before a request counts as stalled.
    type: float
    default: 60
  retries:
    description:
      - How many times a broken or stalled download resumes in one run before the module fails
        (a later run resumes it again).
    type: int
    default: 5
  retry_delay:
    description: Seconds before the first resume; doubled at each next one (at most 30 times).
    type: float
    default: 2
  progress_file:
    description:
      - A file rewritten at least every second during a download with a JSON object (repo,
        file, bytes done and total, rate, seconds left, files done), for a task polling an
        C(async) run to show progress.
    type: path
notes:
  - The cache's files are created by the user the module runs as; run it as the user the
    service's container reads the cache with, or give that user read access.
seealso:
  - name: Hugging Face cache layout
    description: How huggingface_hub lays out its cache.
    link: https://huggingface.co/docs/huggingface_hub/guides/manage-cache
"""

EXAMPLES = r"""
- name: Fetch Qwen3-8B-AWQ at a pinned commit into the cache vLLM mounts
  myia.genai_stack.hf_fetch:
    repo: Qwen/Qwen3-8B-AWQ
    revision: 0123456789abcdef0123456789abcdef01234567
    cache_dir: /srv/genai/hf-cache
    token: "{{ vault_genai_hf_token | default(omit) }}"
    allow_patterns: ["*.json", "*.safetensors", "*.txt", "*.model"]
  register: weights

- name: Show what a run would download, without downloading (with --check --diff)
  myia.genai_stack.hf_fetch:
    repo: Qwen/Qwen3-8B-AWQ
    cache_dir: /srv/genai/hf-cache
  check_mode: true
  register: planned

- name: A long download in the background, progress read from its progress file
  myia.genai_stack.hf_fetch:
    repo: Qwen/Qwen3-32B-AWQ
    revision: main
    cache_dir: /srv/genai/hf-cache
    progress_file: /srv/genai/hf-cache/.progress-qwen3-32b.json
  async: 7200
  poll: 0
  register: fetching
"""

RETURN = r"""
repo:
  description: The repository.
  returned: always
  type: str
  sample: Qwen/Qwen3-8B-AWQ
revision:
  description: The revision asked for.
  returned: always
  type: str
  sample: main
commit:
  description: The commit the revision names (pass it to vLLM as C(--revision)).
  returned: success
  type: str
  sample: 0123456789abcdef0123456789abcdef01234567
pinned:
  description: Whether O(revision) was a commit.
  returned: success
  type: bool
  sample: false
snapshot:
  description: The snapshot folder of the commit.
  returned: success
  type: str
  sample: /srv/genai/hf-cache/models--Qwen--Qwen3-8B-AWQ/snapshots/0123456789abcdef0123456789abcdef01234567
files:
  description: Every file selected, in the hub's order.
  returned: success
  type: list
  elements: dict
  contains:
    path:
      description: Path in the repository.
      type: str
      sample: model.safetensors
    size:
      description: Size in bytes.
      type: int
      sample: 5716148840
    hash:
      description: The hash checked, C(sha256:<hex>) (LFS files) or C(git-sha1:<hex>).
      type: str
      sample: sha256:9f8e...
    lfs:
      description: Whether the hub stores it with LFS.
      type: bool
      sample: true
    destination:
      description: Its path in the snapshot (a link to its blob).
      type: str
      sample: /srv/genai/hf-cache/models--Qwen--Qwen3-8B-AWQ/snapshots/0123.../model.safetensors
    blob:
      description: Its blob in the cache.
      type: str
      sample: /srv/genai/hf-cache/models--Qwen--Qwen3-8B-AWQ/blobs/9f8e...
    missing:
      description: Whether its bytes were missing from the cache before this run.
      type: bool
      sample: true
    partial:
      description: Bytes of an earlier, interrupted download of it (resumed from there).
      type: int
      sample: 0
    fetched:
      description: Whether this run downloaded it.
      type: bool
      sample: true
offline:
  description:
    - Whether the hub was out of reach and the cache answered instead, as it does when the
      commit (or the last commit fetched for the branch or tag) is complete there; a warning
      says so. With files missing, an unreachable hub fails the task.
  returned: success
  type: bool
  sample: false
bytes_missing:
  description: Bytes missing before this run (a partial download counted as present).
  returned: success
  type: int
  sample: 5716148840
bytes_fetched:
  description: Bytes downloaded by this run.
  returned: success
  type: int
  sample: 5716148840
disk:
  description: The disk check, in bytes.
  returned: success
  type: dict
  contains:
    needed:
      description: Bytes missing.
      type: int
    free:
      description: Free bytes on the cache's filesystem before the run.
      type: int
    margin:
      description: Bytes that must stay free (O(margin_mb)).
      type: int
    where:
      description: The path measured (O(cache_dir) or its nearest existing parent).
      type: str
  sample: {needed: 5716148840, free: 402653184000, margin: 1073741824, where: /srv/genai}
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.myia.genai_stack.plugins.module_utils import hf_hub

TOKEN_VARIABLE = "vault_genai_hf_token"

ARGUMENT_SPEC = {
    "repo": {"type": "str", "required": True},
    "revision": {"type": "str", "default": "main"},
    "cache_dir": {"type": "path", "required": True},
    "endpoint": {"type": "str", "default": hf_hub.DEFAULT_ENDPOINT},
    "token": {"type": "str", "no_log": True},
    "allow_patterns": {"type": "list", "elements": "str"},
    "margin_mb": {"type": "int", "default": 1024},
    "timeout": {"type": "float", "default": 60.0},
    "retries": {"type": "int", "default": 5},
    "retry_delay": {"type": "float", "default": 2.0},
    "progress_file": {"type": "path"},
}


def gated_message(repo: str, endpoint: str, token: str | None, error: Exception | None) -> str:
    if not token:
        return (
            f"{repo} is a gated repository on {endpoint}: its files need a Hugging Face token of "
            f"an account granted access to it. Set {TOKEN_VARIABLE} (the vault) and accept the "
            "repository's conditions on the hub with that account."
        )
    return (
        f"{repo} is a gated repository on {endpoint} and the token given ({TOKEN_VARIABLE}) has "
        f"no access to it: accept the repository's conditions on the hub with the token's "
        f"account, or use another token. ({error})"
    )


def listing(entries: list[hf_hub.Entry], present_only: bool) -> str:
    return "".join(
        f"{e.file.path} ({hf_hub.human(e.file.size)})\n"
        for e in entries
        if not present_only or (e.linked and not e.missing)
    )


class Progress:
    """Writes the progress file (at most once a second per call site: the downloader paces it)."""

    def __init__(self, path: str | None, repo: str, total_files: int) -> None:
        self.path = path
        self.repo = repo
        self.total_files = total_files
        self.done: set[str] = set()

    def __call__(self, file: hf_hub.RemoteFile, done: int, fetched: int, seconds: float) -> None:
        if done >= file.size:
            self.done.add(file.path)
        if not self.path:
            return
        rate = fetched / seconds if seconds > 0 else 0.0
        state = {
            "repo": self.repo,
            "file": file.path,
            "done": done,
            "total": file.size,
            "rate": round(rate),
            "eta_s": round((file.size - done) / rate) if rate > 0 else None,
            "files_done": len(self.done),
            "files_total": self.total_files,
            "time": time.time(),
        }
        temporary = f"{self.path}.tmp"
        try:
            with open(temporary, "w", encoding="utf-8") as out:
                json.dump(state, out)
            os.replace(temporary, self.path)
        except OSError:
            pass  # progress is a courtesy: never a reason to fail a download


def main() -> None:
    module = AnsibleModule(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)
    params = module.params
    repo: str = params["repo"]
    token = params["token"] or None
    endpoint = params["endpoint"].rstrip("/")
    result: dict = {"changed": False, "repo": repo, "revision": params["revision"]}
    if params["margin_mb"] < 0 or params["retries"] < 0 or params["timeout"] <= 0:
        module.fail_json(msg="margin_mb and retries must be >= 0, timeout > 0", **result)

    def fail(message: str, **extra: object) -> None:
        module.fail_json(msg=hf_hub.scrub(message, token), **result, **extra)

    hub = hf_hub.Hub(endpoint, token=token, timeout=params["timeout"])
    cache = hf_hub.Cache(params["cache_dir"], repo)
    offline = None  # why the hub could not be asked, when the cache answered instead
    try:
        snapshot = hub.resolve(repo, params["revision"])
    except hf_hub.TransferError as exc:
        # the hub out of reach: a commit (or a ref recorded here) complete in the cache will do
        cached = cache.cached_snapshot(params["revision"])
        if cached is None:
            fail(f"{repo}@{params['revision']}: {exc}")
        snapshot, offline = cached, str(exc)
    except hf_hub.HubError as exc:
        fail(f"{repo}@{params['revision']}: {exc}")
    snapshot.files = hf_hub.select(snapshot.files, params["allow_patterns"])
    if not snapshot.files:
        fail(f"{repo}@{snapshot.commit}: no file matches allow_patterns {params['allow_patterns']}")
    entries = hf_hub.plan(cache, snapshot)
    result.update(commit=snapshot.commit, pinned=snapshot.pinned,
                  snapshot=os.path.join(cache.storage, "snapshots", snapshot.commit))  # fmt: skip
    missing = [e for e in entries if e.missing]
    result["offline"] = offline is not None
    if offline is not None:
        if missing or not all(e.linked for e in entries):
            fail(f"{repo}@{snapshot.commit}: the hub is out of reach ({offline}) and the cache "
                 "lacks files of this commit")  # fmt: skip
        module.warn(hf_hub.scrub(
            f"{repo}@{params['revision']}: the hub is out of reach ({offline}); commit "
            f"{snapshot.commit}, complete in the cache, is used"
            + ("" if snapshot.pinned else f" (the last commit fetched for {params['revision']})"),
            token))  # fmt: skip
    result["bytes_missing"] = hf_hub.bytes_missing(entries)
    result["bytes_fetched"] = 0
    result["files"] = [e.to_dict() for e in entries]

    if missing and snapshot.gated:
        if not token:
            fail(gated_message(repo, endpoint, token, None))
        try:
            hub.check_access(repo, snapshot.commit, missing[0].file.path)
        except (hf_hub.GatedRepo, hf_hub.AuthError) as exc:
            fail(gated_message(repo, endpoint, token, exc))
        except hf_hub.HubError as exc:
            fail(f"{repo}@{snapshot.commit}: {exc}")

    try:
        result["disk"] = hf_hub.check_disk(
            params["cache_dir"], result["bytes_missing"], params["margin_mb"] * hf_hub.MIB,
            f"{repo}@{snapshot.commit[:12]}",
        )  # fmt: skip
    except hf_hub.DiskSpaceError as exc:
        result["disk"] = {"needed": exc.needed, "free": exc.free, "margin": exc.margin,
                          "where": exc.where}  # fmt: skip
        fail(str(exc))

    if module._diff:
        result["diff"] = {
            "before_header": result["snapshot"],
            "after_header": result["snapshot"],
            "before": listing(entries, present_only=True),
            "after": listing(entries, present_only=False),
        }
    if module.check_mode:
        result["changed"] = bool(missing) or not all(e.linked for e in entries)
        module.exit_json(**result)

    progress = Progress(params["progress_file"], repo, len(entries))
    try:
        fetched, written = hf_hub.fetch(
            hub, cache, snapshot, entries, params["retries"], params["retry_delay"], progress
        )
    except hf_hub.GatedRepo as exc:
        result["files"] = [e.to_dict() for e in entries]
        fail(gated_message(repo, endpoint, token, exc))
    except (hf_hub.HubError, OSError) as exc:
        result["files"] = [e.to_dict() for e in entries]
        fail(f"{repo}@{snapshot.commit}: {exc}")
    result.update(changed=written, bytes_fetched=fetched, files=[e.to_dict() for e in entries])
    module.exit_json(**result)


if __name__ == "__main__":
    main()
