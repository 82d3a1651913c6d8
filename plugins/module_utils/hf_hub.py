# Copyright: (c) 2025, genai_stack team
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hugging Face hub repositories fetched into the hub's own cache layout, resumable and verified.

Pure Python standard library (3.9+), no Ansible and no ``huggingface_hub`` import: it runs on
the target hosts, for the ``hf_fetch`` module. It speaks the hub's HTTP API as
``huggingface_hub`` does:

* :meth:`Hub.resolve`: ``GET <endpoint>/api/models/<repo>/revision/<revision>?blobs=true``
  gives the commit (``sha``), whether the repository is gated, and each file's size, git blob
  id and, for an LFS file, its sha256.
* :meth:`Hub.download`: ``GET <endpoint>/<repo>/resolve/<commit>/<path>`` (an LFS file answers
  with a redirect to its CDN; the token is sent to the hub's origin only, never to another).

The cache is laid out exactly as ``huggingface_hub`` writes it (``HF_HUB_CACHE``), so that
``snapshot_download(repo, revision=commit, local_files_only=True)`` (vLLM with
``HF_HUB_OFFLINE=1``) finds every file::

    <cache>/models--Org--Name/blobs/<etag>              the content (etag: sha256 for an LFS
                                                        file, git blob sha1 otherwise)
    <cache>/models--Org--Name/snapshots/<commit>/<path> -> ../../blobs/<etag> (relative)
    <cache>/models--Org--Name/refs/<revision>           the commit, when revision is a branch/tag
    <cache>/models--Org--Name/trees/<commit>.json       the commit's file listing (tree cache)
    <cache>/.locks/models--Org--Name/<etag>.lock        flock, as huggingface_hub's filelock

A download goes to ``blobs/<etag>.incomplete`` and resumes from its size with an HTTP ``Range``
(after a dropped connection, a killed run, a reboot); the bytes are hashed as they arrive and
the file is renamed into ``blobs/`` only when its size and hash are the hub's. A wrong hash
removes the partial file: the blobs and snapshots already there are untouched. ``refs/`` is
written last, once every file of the commit is in place, so a branch never points to a
snapshot that is not complete.

Tokens go in an ``Authorization`` header only; no error message or result holds one.
"""

from __future__ import annotations

import contextlib
import fcntl
import fnmatch
import hashlib
import http.client
import json
import os
import queue
import re
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_ENDPOINT = "https://huggingface.co"
COMMIT_RE = re.compile(r"^[0-9a-f]{40}$")
CHUNK = 1 << 20
MIB = 1 << 20
PROGRESS_EVERY = 1.0  # seconds between two progress reports of a download
#: hash in a thread of its own, overlapping the reads and writes (hashlib releases the GIL);
#: None: when the host has at least 4 CPUs to run on (with fewer, the switches cost more)
HASH_THREAD: bool | None = None
CACHEDIR_TAG = (
    "Signature: 8a477f597d28d172789f06886806bc55\n"
    "# This file is a cache directory tag created by huggingface_hub.\n"
    "# For information about cache directory tags, see:\n"
    "#\thttps://bford.info/cachedir/\n"
)
TREE_FORMAT_VERSION = 1
USER_AGENT = "myia.genai_stack-hf_fetch/1 (python-urllib)"


class HubError(Exception):
    """A failure whose message is safe to show (no token)."""


class RepoNotFound(HubError):
    pass


class RevisionNotFound(HubError):
    pass


class EntryNotFound(HubError):
    pass


class GatedRepo(HubError):
    pass


class AuthError(HubError):
    pass


class TransferError(HubError):
    """The connection dropped, stalled or could not be made: worth a retry (it resumes)."""


class IntegrityError(HubError):
    pass


class DiskSpaceError(HubError):
    def __init__(self, message: str, needed: int, free: int, margin: int, where: str) -> None:
        super().__init__(message)
        self.needed = needed
        self.free = free
        self.margin = margin
        self.where = where


def human(size: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(size) < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"  # pragma: no cover


class RemoteFile:
    """One file of a commit: its path, size, git blob id and, for an LFS file, its sha256."""

    __slots__ = ("blob_id", "path", "sha256", "size")

    def __init__(self, path: str, size: int, blob_id: str, sha256: str | None = None) -> None:
        self.path = path
        self.size = size
        self.blob_id = blob_id
        self.sha256 = sha256

    @property
    def lfs(self) -> bool:
        return self.sha256 is not None

    @property
    def etag(self) -> str:
        """The blob's name in the cache, as huggingface_hub names it."""
        return self.sha256 if self.sha256 is not None else self.blob_id

    @property
    def expected_hash(self) -> str:
        return f"sha256:{self.sha256}" if self.sha256 is not None else f"git-sha1:{self.blob_id}"

    def hasher(self):
        """A hash object fed as the content arrives; git's blob id hashes a header first."""
        if self.sha256 is not None:
            return hashlib.sha256()
        digest = hashlib.sha1()
        digest.update(b"blob %d\0" % self.size)
        return digest

    def tree_entry(self) -> dict:
        entry: dict = {"size": self.size, "blob_id": self.blob_id}
        if self.sha256 is not None:
            entry["lfs_sha256"] = self.sha256
            entry["lfs_size"] = self.size
        return entry


class Snapshot:
    """A repository resolved at a revision: the commit and its files."""

    def __init__(self, repo: str, revision: str, commit: str, gated: bool,
                 files: list[RemoteFile], tree: dict | None = None) -> None:  # fmt: skip
        self.repo = repo
        self.revision = revision
        self.commit = commit
        self.gated = gated
        self.files = files
        self.tree = tree  # every file of the commit (before any pattern), for trees/<commit>.json

    @property
    def pinned(self) -> bool:
        return bool(COMMIT_RE.match(self.revision))


def select(files: list[RemoteFile], allow_patterns: list[str] | None) -> list[RemoteFile]:
    """The files matching any of ``allow_patterns`` (fnmatch, case-sensitive, a pattern ending
    in ``/`` matches everything below: huggingface_hub's ``filter_repo_objects``)."""
    if not allow_patterns:
        return list(files)
    patterns = [p.replace("\\", "/") + ("*" if p.endswith("/") else "") for p in allow_patterns]
    return [f for f in files if any(fnmatch.fnmatchcase(f.path, p) for p in patterns)]


def repo_folder(repo: str) -> str:
    return "--".join(["models", *repo.split("/")])


def scrub(text: str, token: str | None) -> str:
    return text.replace(token, "***") if token else text


# ---- HTTP


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects; the token goes along only to the origin it was given for."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        token = getattr(req, "hub_token", None)
        if new is not None and token and _origin(newurl) == _origin(req.full_url):
            new.add_unredirected_header("Authorization", f"Bearer {token}")
            new.hub_token = token  # type: ignore[attr-defined]
        return new


class _NoRedirectHandler(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def _origin(url: str) -> tuple[str, str, int]:
    parts = urllib.parse.urlsplit(url)
    default = {"http": 80, "https": 443}.get(parts.scheme, 0)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


class Hub:
    """The hub's HTTP API at ``endpoint``, with an optional ``token``; ``timeout``: seconds
    without a byte before a request counts as stalled."""

    def __init__(self, endpoint: str = DEFAULT_ENDPOINT, token: str | None = None,
                 timeout: float = 60.0) -> None:  # fmt: skip
        self.endpoint = endpoint.rstrip("/")
        self.token = token or None
        self.timeout = timeout
        self._follow = urllib.request.build_opener(_RedirectHandler)
        self._stay = urllib.request.build_opener(_NoRedirectHandler)

    def _request(self, url: str, method: str = "GET", headers: dict | None = None,
                 follow: bool = True) -> http.client.HTTPResponse:  # fmt: skip
        request = urllib.request.Request(url, method=method, headers=dict(headers or {}))
        request.add_header("User-Agent", USER_AGENT)
        if self.token:
            request.add_unredirected_header("Authorization", f"Bearer {self.token}")
            request.hub_token = self.token  # type: ignore[attr-defined]
        opener = self._follow if follow else self._stay
        try:
            return opener.open(request, timeout=self.timeout)
        except urllib.error.HTTPError as exc:
            if not follow and 300 <= exc.code < 400:
                return exc  # type: ignore[return-value]  # the redirect itself is the answer
            raise self._http_error(exc, url) from None
        except (urllib.error.URLError, OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "reason", exc)
            raise TransferError(scrub(f"{method} {url}: {reason}", self.token)) from None

    def _http_error(self, exc: urllib.error.HTTPError, url: str) -> HubError:
        code = exc.headers.get("X-Error-Code", "") if exc.headers else ""
        message = exc.headers.get("X-Error-Message", "") if exc.headers else ""
        where = scrub(url, self.token)
        detail = f"{exc.code} {message or exc.reason} ({where})"
        if code == "RevisionNotFound":
            return RevisionNotFound(f"revision not found: {detail}")
        if code == "EntryNotFound":
            return EntryNotFound(f"file not found: {detail}")
        if code == "GatedRepo":
            return GatedRepo(f"gated repository: {detail}")
        if exc.code == 401 and message == "Invalid credentials in Authorization header":
            return AuthError(f"the token was refused: {detail}")
        if code == "RepoNotFound" or (exc.code in (401, 404) and "/api/" in url):
            return RepoNotFound(f"repository not found (or private and not readable with the "
                                f"token given): {detail}")  # fmt: skip
        if exc.code in (408, 429) or exc.code >= 500:
            return TransferError(f"the hub answered {detail}")
        return HubError(f"the hub answered {detail}")

    def model_url(self, repo: str, revision: str) -> str:
        return (
            f"{self.endpoint}/api/models/{repo}/revision/"
            f"{urllib.parse.quote(revision, safe='')}?blobs=true"
        )

    def file_url(self, repo: str, commit: str, path: str) -> str:
        return (
            f"{self.endpoint}/{repo}/resolve/{urllib.parse.quote(commit, safe='')}/"
            f"{urllib.parse.quote(path)}"
        )

    def resolve(self, repo: str, revision: str = "main") -> Snapshot:
        """The commit ``revision`` names and its files (sizes and hashes)."""
        with self._request(self.model_url(repo, revision)) as response:
            info = json.loads(response.read().decode("utf-8"))
        commit = info.get("sha")
        if not isinstance(commit, str) or not COMMIT_RE.match(commit):
            raise HubError(f"{repo}@{revision}: the hub's answer holds no commit (sha)")
        files = []
        for sibling in info.get("siblings") or []:
            lfs = sibling.get("lfs") or None
            if sibling.get("size") is None or not sibling.get("blobId"):
                raise HubError(
                    f"{repo}@{revision}: no size or blob id for {sibling.get('rfilename')}"
                )
            files.append(RemoteFile(sibling["rfilename"], int(sibling["size"]),
                                    sibling["blobId"], lfs["sha256"] if lfs else None))  # fmt: skip
        gated = info.get("gated") not in (None, False, "false")
        return Snapshot(repo, revision, commit, gated, files, tree={f.path: f for f in files})

    def check_access(self, repo: str, commit: str, path: str) -> None:
        """Whether the files can be read (a gated repository refuses without a granted token)."""
        self._request(self.file_url(repo, commit, path), method="HEAD", follow=False).close()

    def download(self, cache: Cache, snapshot: Snapshot, file: RemoteFile, retries: int = 3,
                 retry_delay: float = 1.0, progress=None) -> int:  # fmt: skip
        """Fetch ``file`` into ``cache``'s blobs (resuming a partial download); the bytes fetched.

        ``progress(file, done, fetched_now, seconds)`` is called at most once a second and when
        the file is complete. Raises :class:`IntegrityError` (partial removed) when the bytes are
        not the hub's, :class:`TransferError` when ``retries`` resumes did not complete it.
        """
        blob = cache.blob(file.etag)
        if cache.blob_ok(file):
            return 0
        url = self.file_url(snapshot.repo, snapshot.commit, file.path)
        os.makedirs(os.path.dirname(blob), exist_ok=True)
        with cache.lock(file.etag):
            if cache.blob_ok(file):  # another run finished it meanwhile
                return 0
            partial = blob + ".incomplete"
            state = _Partial(partial, file)
            failures = 0
            try:
                while state.size < file.size:
                    try:
                        self._fetch_rest(url, state, progress)
                    except TransferError:
                        failures += 1
                        if failures > retries:
                            raise
                        time.sleep(retry_delay * min(2 ** (failures - 1), 30))
            finally:
                state.digest.close()
            actual = state.digest.hexdigest()
            expected = file.sha256 if file.sha256 is not None else file.blob_id
            if state.size != file.size or actual != expected:
                os.remove(partial)
                raise IntegrityError(
                    f"{snapshot.repo}@{snapshot.commit[:12]} {file.path}: the bytes received are "
                    f"not the hub's ({file.expected_hash.split(':')[0]} {actual}, expected "
                    f"{expected}); the partial download was removed, the files already in the "
                    "cache are untouched"
                )
            _fsync(partial)
            os.replace(partial, blob)
            _fsync_dir(os.path.dirname(blob))
            return state.fetched

    def _fetch_rest(self, url: str, state: _Partial, progress) -> None:
        """Append the bytes from ``state.size`` on to the partial file, hashing them."""
        file = state.file
        headers = {"Accept-Encoding": "identity"}
        if state.size:
            headers["Range"] = f"bytes={state.size}-"
        response = self._request(url, headers=headers)
        try:
            if state.size and response.status != 206:  # the server ignored the Range
                state.restart()
            started = last = time.monotonic()
            fetched_before = state.fetched
            with open(state.path, "ab") as out:
                while True:
                    try:
                        piece = response.read(CHUNK)
                    except (OSError, http.client.HTTPException) as exc:
                        raise TransferError(
                            f"{file.path}: the connection broke after {state.size} of "
                            f"{file.size} bytes ({type(exc).__name__})"
                        ) from None
                    if not piece:
                        break
                    if state.size + len(piece) > file.size:
                        raise IntegrityError(
                            f"{file.path}: the hub sent more than {file.size} bytes"
                        )
                    out.write(piece)
                    state.add(piece)
                    now = time.monotonic()
                    if progress is not None and now - last >= PROGRESS_EVERY:
                        last = now
                        progress(file, state.size, state.fetched - fetched_before, now - started)
            if progress is not None:
                progress(
                    file, state.size, state.fetched - fetched_before, time.monotonic() - started
                )
            if state.size < file.size:
                raise TransferError(
                    f"{file.path}: the connection closed after {state.size} of {file.size} bytes"
                )
        finally:
            response.close()


class _Partial:
    """``<blob>.incomplete``: its size, the hash of its bytes, and the bytes fetched this run.
    An existing partial file is hashed first (a resume); one larger than the file is dropped."""

    def __init__(self, path: str, file: RemoteFile) -> None:
        self.path = path
        self.file = file
        self.fetched = 0
        self.digest = _Digest(file)
        self.size = 0
        if os.path.exists(path):
            if os.path.getsize(path) > file.size:
                os.remove(path)
                return
            with open(path, "rb") as done:
                for piece in iter(lambda: done.read(CHUNK), b""):
                    self.digest.update(piece)
                    self.size += len(piece)

    def add(self, piece: bytes) -> None:
        self.digest.update(piece)
        self.size += len(piece)
        self.fetched += len(piece)

    def restart(self) -> None:
        with open(self.path, "wb"):
            pass
        self.digest.close()
        self.digest = _Digest(self.file)
        self.size = 0


def _hash_thread() -> bool:
    if HASH_THREAD is not None:
        return HASH_THREAD
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # not Linux
        cpus = os.cpu_count() or 1
    return cpus >= 4


class _Digest:
    """The file's hash, fed in the download's order; in a thread of its own (``HASH_THREAD``)
    it overlaps the network and the disk instead of adding to them."""

    def __init__(self, file: RemoteFile) -> None:
        self._hash = file.hasher()
        self._queue: queue.Queue | None = None
        self._error: BaseException | None = None
        if _hash_thread():
            self._queue = queue.Queue(maxsize=16)
            self._thread = threading.Thread(target=self._run, daemon=True)
            self._thread.start()

    def _run(self) -> None:
        pieces = self._queue
        if pieces is None:  # started only with a queue
            return
        while True:
            piece = pieces.get()
            if piece is None:
                return
            try:
                self._hash.update(piece)
            except Exception as exc:  # handed back to the downloader by close()
                self._error = exc

    def update(self, piece: bytes) -> None:
        if self._queue is not None:
            self._queue.put(piece)
        else:
            self._hash.update(piece)

    def close(self) -> None:
        if self._queue is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = None
        if self._error is not None:
            raise self._error

    def hexdigest(self) -> str:
        self.close()
        return self._hash.hexdigest()


def _fsync(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: str) -> None:
    with contextlib.suppress(OSError):  # a filesystem without directory fsync
        _fsync(path)


# ---- the cache


class Cache:
    """One repository's folder in a hub cache (``HF_HUB_CACHE``), huggingface_hub's layout."""

    def __init__(self, cache_dir: str, repo: str) -> None:
        self.cache_dir = os.path.abspath(cache_dir)
        self.repo = repo
        self.storage = os.path.join(self.cache_dir, repo_folder(repo))

    def blob(self, etag: str) -> str:
        return os.path.join(self.storage, "blobs", etag)

    def partial(self, etag: str) -> str:
        return self.blob(etag) + ".incomplete"

    def pointer(self, commit: str, path: str) -> str:
        snapshots = os.path.join(self.storage, "snapshots")
        pointer = os.path.normpath(os.path.join(snapshots, commit, path))
        if not pointer.startswith(os.path.join(snapshots, commit) + os.sep):
            raise HubError(f"{self.repo}: a file path leaves its snapshot: {path!r}")
        return pointer

    def ref(self, revision: str) -> str:
        return os.path.join(self.storage, "refs", revision)

    def tree(self, commit: str) -> str:
        return os.path.join(self.storage, "trees", f"{commit}.json")

    def blob_ok(self, file: RemoteFile) -> bool:
        """The blob is there with the hub's size (its hash was checked before it got there)."""
        try:
            return os.path.getsize(self.blob(file.etag)) == file.size
        except OSError:
            return False

    def linked(self, commit: str, file: RemoteFile) -> bool:
        """The snapshot's path is a link to the file's blob (and the blob is there)."""
        pointer = self.pointer(commit, file.path)
        return (
            os.path.islink(pointer)
            and os.path.realpath(pointer) == os.path.realpath(self.blob(file.etag))
            and self.blob_ok(file)
        )

    def partial_size(self, file: RemoteFile) -> int:
        try:
            return min(os.path.getsize(self.partial(file.etag)), file.size)
        except OSError:
            return 0

    def lock(self, etag: str) -> _FileLock:
        return _FileLock(
            os.path.join(self.cache_dir, ".locks", repo_folder(self.repo), f"{etag}.lock")
        )

    # -- writes (each says whether it changed something)
    def link(self, commit: str, file: RemoteFile) -> bool:
        """``snapshots/<commit>/<path>`` -> ``../../blobs/<etag>`` (relative), as huggingface_hub."""
        if self.linked(commit, file):
            return False
        pointer = self.pointer(commit, file.path)
        os.makedirs(os.path.dirname(pointer), exist_ok=True)
        target = os.path.relpath(self.blob(file.etag), os.path.dirname(pointer))
        temporary = f"{pointer}.{os.getpid()}.link"
        if os.path.lexists(temporary):
            os.remove(temporary)
        os.symlink(target, temporary)
        os.replace(temporary, pointer)  # a wrong link or a file there is replaced at once
        return True

    def write_ref(self, revision: str, commit: str) -> bool:
        if revision == commit:
            return False
        return _write_if_changed(self.ref(revision), commit)

    def write_tree(self, snapshot: Snapshot) -> bool:
        if not snapshot.tree:
            return False
        files = {path: snapshot.tree[path].tree_entry() for path in sorted(snapshot.tree)}
        text = json.dumps({"format_version": TREE_FORMAT_VERSION, "files": files}, indent=1)
        path = self.tree(snapshot.commit)
        try:
            with open(path, encoding="utf-8") as existing:
                if json.load(existing) == json.loads(text):
                    return False
        except (OSError, ValueError):
            pass
        return _write_if_changed(path, text)

    def cached_snapshot(self, revision: str) -> Snapshot | None:
        """The snapshot of ``revision`` (a commit, or a ref this cache recorded) from the tree
        listing written when it was fetched; None when the cache cannot tell."""
        commit = revision
        if not COMMIT_RE.match(revision):
            try:
                with open(self.ref(revision), encoding="utf-8") as ref:
                    commit = ref.read().strip()
            except OSError:
                return None
        try:
            with open(self.tree(commit), encoding="utf-8") as listing:
                data = json.load(listing)
            if data.get("format_version") != TREE_FORMAT_VERSION:
                return None
            files = [
                RemoteFile(path, int(info["size"]), info["blob_id"], info.get("lfs_sha256"))
                for path, info in data["files"].items()
            ]
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return None
        return Snapshot(self.repo, revision, commit, False, files, {f.path: f for f in files})

    def write_tag(self) -> bool:
        path = os.path.join(self.cache_dir, "CACHEDIR.TAG")
        if os.path.exists(path):
            return False
        return _write_if_changed(path, CACHEDIR_TAG)


def _write_if_changed(path: str, text: str) -> bool:
    try:
        with open(path, encoding="utf-8") as existing:
            if existing.read() == text:
                return False
    except OSError:
        pass
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, path)
    return True


class _FileLock:
    """An exclusive ``flock`` on a lock file (huggingface_hub's filelock takes the same)."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd = -1

    def __enter__(self) -> _FileLock:
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc: object) -> None:
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


# ---- plan, disk, fetch


class Entry:
    """A file of the snapshot in the cache: where it goes, and what is missing of it."""

    __slots__ = ("blob", "destination", "fetched", "file", "linked", "missing", "partial")

    def __init__(self, cache: Cache, snapshot: Snapshot, file: RemoteFile) -> None:
        self.file = file
        self.destination = cache.pointer(snapshot.commit, file.path)
        self.blob = cache.blob(file.etag)
        self.linked = cache.linked(snapshot.commit, file)
        self.missing = not cache.blob_ok(file)  # its bytes must be fetched
        self.partial = cache.partial_size(file) if self.missing else 0
        self.fetched = False

    def to_dict(self) -> dict:
        return {
            "path": self.file.path,
            "size": self.file.size,
            "hash": self.file.expected_hash,
            "lfs": self.file.lfs,
            "destination": self.destination,
            "blob": self.blob,
            "missing": self.missing,
            "partial": self.partial,
            "fetched": self.fetched,
        }


def plan(cache: Cache, snapshot: Snapshot) -> list[Entry]:
    return [Entry(cache, snapshot, f) for f in snapshot.files]


def bytes_missing(entries: list[Entry]) -> int:
    """What the missing files still need (a partial download counted as done), each blob once."""
    needed: dict[str, int] = {}
    for entry in entries:
        if entry.missing:
            needed[entry.file.etag] = entry.file.size - entry.partial
    return sum(needed.values())


def existing_parent(path: str) -> str:
    path = os.path.abspath(path)
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def free_space(path: str) -> tuple[int, str]:
    """Free bytes for an unprivileged writer on ``path``'s filesystem, and the path measured
    (``path`` or its nearest existing parent)."""
    where = existing_parent(path)
    stats = os.statvfs(where)
    return stats.f_bavail * stats.f_frsize, where


def check_disk(cache_dir: str, needed: int, margin: int, what: str = "") -> dict:
    """Raise :class:`DiskSpaceError` when ``needed`` bytes plus ``margin`` do not fit in the free
    space of ``cache_dir``'s filesystem; the figures otherwise."""
    free, where = free_space(cache_dir)
    figures = {"needed": needed, "free": free, "margin": margin, "where": where}
    if needed and needed + margin > free:
        raise DiskSpaceError(
            f"not enough disk space{' for ' + what if what else ''} in {cache_dir} (filesystem "
            f"of {where}): needed {human(needed)} ({needed} bytes) plus a margin of "
            f"{human(margin)}, free {human(free)} ({free} bytes)",
            needed, free, margin, where,
        )  # fmt: skip
    return figures


def fetch(hub: Hub, cache: Cache, snapshot: Snapshot, entries: list[Entry], retries: int = 3,
          retry_delay: float = 1.0, progress=None) -> tuple[int, bool]:  # fmt: skip
    """Download what is missing, link every file into the snapshot, then the tree listing and
    the ref. (bytes fetched, whether anything was written). Stops at the first failure: what
    is complete stays, the ref is not moved."""
    fetched = 0
    written = False
    for entry in entries:
        if entry.missing and not cache.blob_ok(entry.file):
            if not written:
                written = cache.write_tag() or written
            got = hub.download(cache, snapshot, entry.file, retries, retry_delay, progress)
            fetched += got
            entry.fetched = True
            written = True
        written = cache.link(snapshot.commit, entry.file) or written
    written = cache.write_tree(snapshot) or written
    written = cache.write_ref(snapshot.revision, snapshot.commit) or written
    return fetched, written
