"""Stand-in for the Hugging Face hub (test double: a few small repositories on 127.0.0.1).

It speaks the parts of the hub's HTTP API that ``huggingface_hub`` (``HfApi.model_info``,
``list_repo_tree``, ``hf_hub_download``, ``snapshot_download``; ``HF_ENDPOINT`` pointing here)
and the collection's ``hf_fetch`` module use, as the real hub answers them:

* ``GET /api/models/<repo>[/revision/<rev>]`` (``?blobs=true``: sizes, ``blobId`` and ``lfs``
  ``{sha256, size, pointerSize}`` per sibling): ``id``, ``sha`` (the commit), ``gated``,
  ``siblings``... A repository it does not hold: 401 ``X-Error-Code: RepoNotFound``; a revision
  it does not know: 404 ``X-Error-Code: RevisionNotFound``.
* ``GET /api/models/<repo>/tree/<rev>[/<path>]?recursive=true``: files (``type``, ``oid``,
  ``size``, ``path``, ``lfs {oid, size, pointerSize}``) and directories.
* ``HEAD``/``GET /<repo>/resolve/<rev>/<path>``: every answer carries ``X-Repo-Commit``.
  A regular file is served there (``ETag`` its git blob sha1, ``Content-Length``, ``Range`` ->
  206 ``Content-Range``); an LFS file answers 302 with ``X-Linked-Etag`` (its sha256),
  ``X-Linked-Size`` and a ``Location`` on another origin (``http://localhost:<port>/cdn/...``,
  as the hub's CDN is: the client does not send its token there), which serves the bytes with
  ``Range`` support. A file the commit lacks: 404 ``X-Error-Code: EntryNotFound``.
* A gated repository lists its files to anyone (as the hub does) but ``resolve`` answers 401
  ``X-Error-Code: GatedRepo`` without a token, 401 ``Invalid credentials in Authorization header``
  with a token it does not know, 403 ``GatedRepo`` with a known token not granted this repo.

Repositories are built in Python (:class:`Repo`, :meth:`Repo.commit`; content as bytes or
:class:`Generated`: deterministic bytes made on the fly, so a 2 GB file is never written to
disk) or loaded from a JSON file or a directory (``--repos``, see :func:`load_repos`).

Knobs, per server or per file (:meth:`HubStandin.fault`): ``drop_after`` (close the connection
after that many body bytes, ``once`` by default), ``corrupt`` (serve wrong bytes, same length),
``rate`` (bytes per second). The server counts requests and body bytes served (``requests``,
:meth:`HubStandin.bytes_served`) so a test can tell that a resume fetched only the rest.

Run it: ``python hub_standin.py --port 8080 --repos repos.json`` (``--port 0``: a free port;
the first line printed is ``listening on http://127.0.0.1:<port>``; ``--rate``, ``--drop-after``:
the knobs for every file; ``GET /standin/stats``: the requests and bytes served so far).
Standard library only.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".ckpt", ".onnx", ".msgpack")
BLOCK = 1 << 20  # Generated content is made of 1 MiB blocks
CHUNK = 1 << 18  # bytes written per send


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n".encode()
    )


class Generated:
    """``size`` deterministic pseudo-random bytes of ``seed``, made on demand: a 1 MiB random
    block whose first 8 bytes are replaced by the block's index (no two blocks alike)."""

    def __init__(self, size: int, seed: int = 0) -> None:
        self.size = size
        self.seed = seed
        self._block = random.Random(seed).randbytes(BLOCK)
        self._sha256: str | None = None

    def block(self, index: int) -> bytes:
        return index.to_bytes(8, "little") + self._block[8:]

    def read(self, start: int, end: int) -> Iterator[bytes]:
        """The bytes [start, end), in slices of at most one block."""
        pos = start
        while pos < end:
            index, offset = divmod(pos, BLOCK)
            take = min(BLOCK - offset, end - pos)
            yield self.block(index)[offset : offset + take]
            pos += take

    @property
    def sha256(self) -> str:
        if self._sha256 is None:
            digest = hashlib.sha256()
            for piece in self.read(0, self.size):
                digest.update(piece)
            self._sha256 = digest.hexdigest()
        return self._sha256

    def bytes(self) -> bytes:
        return b"".join(self.read(0, self.size))


@dataclass
class File:
    path: str
    content: bytes | Generated
    lfs: bool

    @property
    def size(self) -> int:
        return self.content.size if isinstance(self.content, Generated) else len(self.content)

    @property
    def sha256(self) -> str:
        if isinstance(self.content, Generated):
            return self.content.sha256
        return hashlib.sha256(self.content).hexdigest()

    @property
    def oid(self) -> str:
        """The git blob id: of the content, or of the LFS pointer for an LFS file."""
        if self.lfs:
            return git_blob_sha1(lfs_pointer(self.sha256, self.size))
        assert isinstance(self.content, bytes)
        return git_blob_sha1(self.content)

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.oid

    def read(self, start: int, end: int) -> Iterator[bytes]:
        if isinstance(self.content, Generated):
            yield from self.content.read(start, end)
        else:
            yield self.content[start:end]

    def sibling(self, blobs: bool) -> dict[str, Any]:
        entry: dict[str, Any] = {"rfilename": self.path}
        if blobs:
            entry |= {"size": self.size, "blobId": self.oid}
            if self.lfs:
                pointer = lfs_pointer(self.sha256, self.size)
                entry["lfs"] = {
                    "sha256": self.sha256,
                    "size": self.size,
                    "pointerSize": len(pointer),
                }
        return entry

    def tree_entry(self) -> dict[str, Any]:
        entry: dict[str, Any] = {
            "type": "file",
            "oid": self.oid,
            "size": self.size,
            "path": self.path,
        }
        if self.lfs:
            pointer = lfs_pointer(self.sha256, self.size)
            entry["size"] = self.size
            entry["lfs"] = {"oid": self.sha256, "size": self.size, "pointerSize": len(pointer)}
        return entry


@dataclass
class Commit:
    sha: str
    files: dict[str, File]
    date: str


@dataclass
class Repo:
    """A model repository: commits, branches and tags; ``gated`` with ``tokens`` allowed."""

    id: str
    gated: bool = False
    tokens: set[str] = field(default_factory=set)
    commits: dict[str, Commit] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)  # branch or tag -> commit sha

    def commit(
        self,
        files: dict[str, bytes | str | Generated],
        branch: str = "main",
        lfs: set[str] | None = None,
        tags: tuple[str, ...] = (),
    ) -> str:
        """A new commit holding exactly ``files`` (str content is UTF-8); ``branch`` and ``tags``
        point to it. LFS: the paths in ``lfs``, or by default the weight suffixes. Its sha."""
        made: dict[str, File] = {}
        for path, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            is_lfs = path in lfs if lfs is not None else path.endswith(LFS_SUFFIXES)
            made[path] = File(path, data, is_lfs)
        parent = self.refs.get(branch, "")
        description = json.dumps(
            [self.id, parent, sorted((p, f.etag, f.size) for p, f in made.items())]
        )
        sha = hashlib.sha1(description.encode()).hexdigest()
        date = time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime(1767225600 + len(self.commits)))
        self.commits[sha] = Commit(sha, made, date)
        for ref in (branch, *tags):
            self.refs[ref] = sha
        return sha

    def resolve(self, revision: str) -> Commit | None:
        sha = self.refs.get(revision, revision)
        return self.commits.get(sha)


@dataclass
class Fault:
    """What to do to a file's bytes: drop the connection after ``drop_after`` body bytes of a
    response (``once``: only the first response), serve wrong bytes (``corrupt``), at most
    ``rate`` bytes per second."""

    drop_after: int | None = None
    once: bool = True
    corrupt: bool = False
    rate: float | None = None
    dropped: int = 0


@dataclass
class Served:
    method: str
    path: str
    range: str | None
    status: int
    bytes: int = 0
    file: str | None = None  # "<repo>/<path>" of a file served
    authorization: bool = False


class HubStandin:
    """The hub's state and the HTTP server: ``with HubStandin(repos) as hub: hub.endpoint``."""

    def __init__(self, repos: list[Repo] | None = None, host: str = "127.0.0.1", port: int = 0,
                 cdn_host: str = "localhost") -> None:  # fmt: skip
        self.repos: dict[str, Repo] = {r.id: r for r in repos or []}
        self.host = host
        self.port = port
        self.cdn_host = cdn_host
        self.faults: dict[str, Fault] = {}  # "<repo>/<path>" or "*" -> fault
        self.requests: list[Served] = []
        self.lock = threading.Lock()
        self.server: ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    # ---- state and knobs
    def add(self, repo: Repo) -> Repo:
        self.repos[repo.id] = repo
        return repo

    def fault(self, repo: str | None = None, path: str | None = None, **knobs: Any) -> Fault:
        """Set a fault on one file (``repo`` and ``path``) or on every file (neither)."""
        key = f"{repo}/{path}" if repo else "*"
        self.faults[key] = Fault(**knobs)
        return self.faults[key]

    def clear_faults(self) -> None:
        self.faults.clear()

    def reset_counts(self) -> None:
        with self.lock:
            self.requests.clear()

    def bytes_served(self, repo: str | None = None, path: str | None = None) -> int:
        """Body bytes of files served (all, a repository's, or one file's)."""
        with self.lock:
            return sum(
                s.bytes
                for s in self.requests
                if s.file
                and (repo is None or s.file.startswith(f"{repo}/"))
                and (path is None or s.file == f"{repo}/{path}")
            )

    def file_requests(self, repo: str, path: str) -> list[Served]:
        with self.lock:
            return [s for s in self.requests if s.file == f"{repo}/{path}"]

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    # ---- server
    def start(self) -> HubStandin:
        hub = self

        class Handler(HubHandler):
            standin = hub

        server = ThreadingHTTPServer((self.host, self.port), Handler)
        server.daemon_threads = True
        server.request_queue_size = 128
        self.server = server
        self.port = server.server_address[1]
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
            self.server = None

    def __enter__(self) -> HubStandin:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Dropped(Exception):
    """The connection was closed on purpose (a fault)."""


class HubHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "hub-standin/1"
    standin: HubStandin

    def log_message(self, format: str, *args: Any) -> None:
        if os.environ.get("HUB_STANDIN_LOG"):
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    def do_GET(self) -> None:
        self.route("GET")

    def do_HEAD(self) -> None:
        self.route("HEAD")

    # ---- routing
    def route(self, method: str) -> None:
        split = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(split.query)
        parts = [urllib.parse.unquote(p) for p in split.path.split("/")[1:]]
        record = Served(method, split.path, self.headers.get("Range"), 0,
                        authorization=bool(self.headers.get("Authorization")))  # fmt: skip
        with self.standin.lock:
            self.standin.requests.append(record)
        try:
            if parts == ["standin", "stats"]:
                self.stats(record)
            elif parts[:2] == ["api", "models"]:
                self.api(record, parts[2:], query)
            elif parts[:1] == ["cdn"] and len(parts) >= 4:
                self.cdn(record, parts[1:])
            else:
                self.resolve(record, method, parts)
        except Dropped:
            self.close_connection = True
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def stats(self, record: Served) -> None:
        """Stand-in-only: the requests served so far and the body bytes of files."""
        with self.standin.lock:
            served = [vars(s).copy() for s in self.standin.requests if s is not record]
        self.json(record, {"bytes_served": sum(s["bytes"] for s in served if s["file"]),
                           "requests": served})  # fmt: skip

    def find_repo(self, parts: list[str]) -> tuple[Repo | None, list[str]]:
        for n in (2, 1):
            repo = self.standin.repos.get("/".join(parts[:n]))
            if repo is not None:
                return repo, parts[n:]
        return None, parts

    def api(self, record: Served, parts: list[str], query: dict[str, list[str]]) -> None:
        repo, rest = self.find_repo(parts)
        if repo is None:
            return self.error(record, 401, "RepoNotFound", "Repository not found")
        revision = "main"
        kind = "info"
        if rest[:1] == ["revision"] and len(rest) >= 2:
            revision = "/".join(rest[1:])
        elif rest[:1] == ["tree"] and len(rest) >= 2:
            kind, revision, rest = "tree", rest[1], rest[2:]
        elif rest:
            return self.error(record, 404, None, "Not found")
        commit = repo.resolve(revision)
        if commit is None:
            return self.error(record, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
        if kind == "tree":
            return self.json(record, self.tree(commit, "/".join(rest), query))
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        body = {
            "_id": hashlib.md5(repo.id.encode()).hexdigest()[:24],
            "id": repo.id,
            "modelId": repo.id,
            "author": repo.id.split("/")[0] if "/" in repo.id else None,
            "sha": commit.sha,
            "lastModified": commit.date,
            "createdAt": "2026-01-01T00:00:00.000Z",
            "private": False,
            "gated": "manual" if repo.gated else False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "library_name": "transformers",
            "tags": ["standin"],
            "siblings": [f.sibling(blobs) for _, f in sorted(commit.files.items())],
            "spaces": [],
            "usedStorage": sum(f.size for f in commit.files.values()),
        }
        return self.json(record, body)

    def tree(self, commit: Commit, path: str, query: dict[str, list[str]]) -> list[dict[str, Any]]:
        recursive = query.get("recursive", ["false"])[0].lower() == "true"
        prefix = f"{path.rstrip('/')}/" if path else ""
        entries: dict[str, dict[str, Any]] = {}
        for name, file in sorted(commit.files.items()):
            if not name.startswith(prefix):
                continue
            rest = name[len(prefix) :].split("/")
            for depth in range(1, len(rest)):
                folder = prefix + "/".join(rest[:depth])
                if depth == 1 or recursive:
                    entries.setdefault(folder, {"type": "directory", "oid": hashlib.sha1(
                        folder.encode()).hexdigest(), "size": 0, "path": folder})  # fmt: skip
                if not recursive:
                    break
            if len(rest) == 1 or recursive:
                entries[name] = file.tree_entry()
        return [entries[k] for k in sorted(entries)]

    def gate(self, record: Served, repo: Repo, commit: Commit | None) -> bool:
        """Whether the request may read the repository's files (an error answered if not)."""
        if not repo.gated:
            return True
        headers = {"X-Repo-Commit": commit.sha} if commit else {}
        auth = self.headers.get("Authorization", "")
        token = auth[7:] if auth.lower().startswith("bearer ") else ""
        if not token:
            message = (
                f"Access to model {repo.id} is restricted. You must have access to it and be "
                "authenticated to access it. Please log in."
            )
            self.error(record, 401, "GatedRepo", message, headers)
        elif token not in repo.tokens and not any(
            token in r.tokens for r in self.standin.repos.values()
        ):
            self.error(record, 401, None, "Invalid credentials in Authorization header", headers)
        elif token not in repo.tokens:
            message = (
                f"Access to model {repo.id} is restricted and you are not in the authorized list."
            )
            self.error(record, 403, "GatedRepo", message, headers)
        else:
            return True
        return False

    def resolve(self, record: Served, method: str, parts: list[str]) -> None:
        repo, rest = self.find_repo(parts)
        if repo is None or rest[:1] != ["resolve"] or len(rest) < 3:
            return self.error(record, 401 if repo is None else 404, "RepoNotFound" if repo is None
                              else None, "Repository not found")  # fmt: skip
        revision, path = rest[1], "/".join(rest[2:])
        commit = repo.resolve(revision)
        if commit is None:
            return self.error(record, 404, "RevisionNotFound", f"Invalid rev id: {revision}")
        if not self.gate(record, repo, commit):
            return None
        file = commit.files.get(path)
        headers = {"X-Repo-Commit": commit.sha, "Vary": "Origin, Accept-Encoding"}
        if file is None:
            return self.error(record, 404, "EntryNotFound", f"{path} does not exist", headers)
        if file.lfs:
            location = (
                f"http://{self.standin.cdn_host}:{self.standin.port}/cdn/{repo.id}/"
                f"{urllib.parse.quote(path)}?sha256={file.sha256}&expires=4102444800"
            )
            headers |= {
                "ETag": f'"{file.sha256}"',
                "X-Linked-Etag": f'"{file.sha256}"',
                "X-Linked-Size": str(file.size),
                "Location": location,
                "Content-Type": "text/plain; charset=utf-8",
            }
            body = f"Found. Redirecting to {location}".encode()
            return self.reply(record, 302, headers, body)
        headers["ETag"] = f'"{file.oid}"'
        return self.send_file(record, repo, file, headers)

    def cdn(self, record: Served, parts: list[str]) -> None:
        repo, rest = self.find_repo(parts)
        path = "/".join(rest)
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
        sha256 = query.get("sha256", [""])[0]
        file = None
        if repo is not None:
            for commit in repo.commits.values():
                candidate = commit.files.get(path)
                if candidate is not None and candidate.lfs and candidate.sha256 == sha256:
                    file = candidate
        if repo is None or file is None:
            return self.reply(
                record, 403, {"Content-Type": "application/xml"}, b"<Error>AccessDenied</Error>"
            )
        return self.send_file(record, repo, file, {"ETag": f'"{file.sha256}"'})

    # ---- answers
    def send_file(self, record: Served, repo: Repo, file: File, headers: dict[str, str]) -> None:
        record.file = f"{repo.id}/{file.path}"
        size = file.size
        start, end, status = 0, size, 200
        wanted = self.headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            first, _, last = wanted[6:].split(",")[0].strip().partition("-")
            try:
                start = int(first) if first else max(size - int(last), 0)
                end = min(int(last) + 1, size) if first and last else size
            except ValueError:
                start, end = 0, size
            if start >= size and size > 0:
                headers["Content-Range"] = f"bytes */{size}"
                return self.reply(record, 416, headers, b"")
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{size}"
        headers |= {
            "Content-Length": str(end - start),
            "Accept-Ranges": "bytes",
            "Content-Type": "application/octet-stream",
            "Content-Disposition": f'inline; filename="{file.path.rsplit("/", 1)[-1]}";',
        }
        record.status = status
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command == "HEAD":
            return
        fault = self.standin.faults.get(record.file) or self.standin.faults.get("*")
        drop_at = None
        if (
            fault is not None
            and fault.drop_after is not None
            and not (fault.once and fault.dropped)
        ):
            drop_at = fault.drop_after
        sent = 0
        began = time.monotonic()
        for piece in file.read(start, end):
            view = memoryview(piece)
            while view:
                chunk = view[:CHUNK]
                if drop_at is not None and sent + len(chunk) >= drop_at:
                    chunk = chunk[: max(drop_at - sent, 0)]
                    self.write(record, corrupted(chunk) if fault and fault.corrupt else chunk)
                    assert fault is not None
                    fault.dropped += 1
                    self.drop()
                if fault is not None and fault.corrupt:
                    self.write(record, corrupted(chunk))
                else:
                    self.write(record, chunk)
                sent += len(chunk)
                view = view[len(chunk) :]
                if fault is not None and fault.rate:
                    ahead = sent / fault.rate - (time.monotonic() - began)
                    if ahead > 0:
                        time.sleep(ahead)

    def write(self, record: Served, data: bytes | memoryview) -> None:
        if data:
            self.wfile.write(data)
            with self.standin.lock:
                record.bytes += len(data)

    def drop(self) -> None:
        """Close the connection abruptly, part-way through the body."""
        self.wfile.flush()
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)
        raise Dropped

    def error(self, record: Served, status: int, code: str | None, message: str,
              headers: dict[str, str] | None = None) -> None:  # fmt: skip
        extra = dict(headers or {})
        if code:
            extra["X-Error-Code"] = code
        extra["X-Error-Message"] = message
        extra["Content-Type"] = "application/json; charset=utf-8"
        self.reply(record, status, extra, json.dumps({"error": message}).encode())

    def json(self, record: Served, body: Any) -> None:
        data = json.dumps(body).encode()
        self.reply(record, 200, {"Content-Type": "application/json; charset=utf-8"}, data)

    def reply(self, record: Served, status: int, headers: dict[str, str], body: bytes) -> None:
        record.status = status
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)


INVERT = bytes(255 - i for i in range(256))


def corrupted(chunk: bytes | memoryview) -> bytes:
    """The same length, other bytes (every byte inverted)."""
    return bytes(chunk).translate(INVERT)


def load_repos(source: str | Path) -> list[Repo]:
    """Repositories from a JSON file or a directory.

    JSON: ``{"<org>/<name>": {"gated": false, "tokens": [...], "commits": [{"branch": "main",
    "tags": [...], "files": {"<path>": "<text>" | {"text": ...} | {"size": N, "seed": S} |
    {"file": "<path on disk>"}, ...}, "lfs": [<paths>] (default: by suffix)}]}}``.
    Directory: ``<dir>/<org>/<name>/`` holds one commit's files on ``main`` (LFS by suffix);
    a file ``<dir>/<org>/<name>.gated`` makes it gated, its lines the tokens allowed.
    """
    source = Path(source)
    repos: list[Repo] = []
    if source.is_dir():
        for folder in sorted(p for p in source.glob("*/*") if p.is_dir()):
            repo_id = f"{folder.parent.name}/{folder.name}"
            gated_file = folder.with_name(f"{folder.name}.gated")
            tokens = set(gated_file.read_text().split()) if gated_file.exists() else set()
            repo = Repo(repo_id, gated=gated_file.exists(), tokens=tokens)
            files: dict[str, bytes | str | Generated] = {
                p.relative_to(folder).as_posix(): p.read_bytes()
                for p in sorted(folder.rglob("*"))
                if p.is_file()
            }
            repo.commit(files)
            repos.append(repo)
        return repos
    spec = json.loads(source.read_text())
    for repo_id, desc in spec.items():
        repo = Repo(repo_id, gated=bool(desc.get("gated")), tokens=set(desc.get("tokens", [])))
        for commit in desc.get("commits", []):
            made: dict[str, bytes | str | Generated] = {}
            for path, content in commit["files"].items():
                if isinstance(content, str):
                    made[path] = content
                elif "text" in content:
                    made[path] = content["text"]
                elif "file" in content:
                    made[path] = Path(content["file"]).read_bytes()
                else:
                    made[path] = Generated(int(content["size"]), int(content.get("seed", 0)))
            lfs = set(commit["lfs"]) if "lfs" in commit else None
            repo.commit(made, branch=commit.get("branch", "main"), lfs=lfs,
                        tags=tuple(commit.get("tags", ())))  # fmt: skip
        repos.append(repo)
    return repos


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--cdn-host", default="localhost")
    parser.add_argument("--repos", required=True, help="a JSON file or a directory")
    parser.add_argument("--rate", type=float, help="bytes per second, every file")
    parser.add_argument("--drop-after", type=int, help="drop the first file response after N bytes")
    args = parser.parse_args(argv)
    hub = HubStandin(load_repos(args.repos), host=args.host, port=args.port, cdn_host=args.cdn_host)
    if args.rate or args.drop_after:
        hub.fault(rate=args.rate, drop_after=args.drop_after)
    hub.start()
    print(f"listening on {hub.endpoint}", flush=True)
    try:
        assert hub.thread is not None
        while hub.thread.is_alive():
            hub.thread.join(1)
    except KeyboardInterrupt:
        pass
    finally:
        hub.stop()


if __name__ == "__main__":
    main()
