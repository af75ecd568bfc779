"""A local stand-in for the Hugging Face Hub, so the real ``huggingface_hub`` client code runs in the tests.

A threaded ``http.server`` on 127.0.0.1 (random port) answering what ``huggingface_hub`` 2.x calls:

- ``HEAD``/``GET /{repo}/resolve/{rev}/{file}`` with ``X-Repo-Commit``, ``ETag`` (git blob sha1, quoted),
  ``Content-Length``, ``Accept-Ranges`` and ``Range`` requests (206), and the ``X-Error-Code`` headers the client
  turns into its exceptions (``RepoNotFound``, ``RevisionNotFound``, ``EntryNotFound``);
- ``GET /api/models/{repo}[/revision/{rev}]`` (model_info: ``id``, ``sha``, ``private``, ``siblings``);
- ``POST /api/repos/create`` (409 when it exists), ``POST /api/validate-yaml`` (the README front matter is
  parsed with PyYAML), ``POST /api/models/{repo}/preupload/{rev}`` (every file "regular": no LFS/Xet) and
  ``POST /api/models/{repo}/commit/{rev}`` (NDJSON, base64 file contents).

Repos live in memory as commits (sha1 per commit, branches pointing at them). A private repo answers 401 without
a known ``Authorization: Bearer`` token, like the Hub. Switches make it misbehave: ``corrupt`` flips bytes of a
served file (consistent headers: the content itself is wrong), ``die_after`` sends that many bytes of a file and
then closes the connection and stops the whole server.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit

import yaml


@dataclass
class Repo:
    private: bool = False
    owner: str = ""
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)  # sha -> {path: content}
    branches: dict[str, str] = field(default_factory=dict)


def _blob_sha1(content: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


class FakeHub:
    def __init__(self, tokens: dict[str, str] | None = None):
        self.tokens = dict(tokens or {"hf_test_secret_token_123": "alice"})  # token -> user name
        self.repos: dict[str, Repo] = {}
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, authorization header)
        self.corrupt: set[tuple[str, str]] = set()  # (repo, file)
        self.die_after: dict[tuple[str, str], int] = {}  # (repo, file) -> bytes sent before dying
        self._lock = threading.Lock()
        self._connections: set[socket.socket] = set()
        self._counter = 0
        self.server: ThreadingHTTPServer | None = None

    # -- lifecycle -------------------------------------------------------------------------------
    def start(self) -> FakeHub:
        hub = self

        class Handler(_Handler):
            pass

        Handler.hub = hub
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Stop listening and cut the kept-alive connections too: a stopped Hub answers nothing."""
        if self.server is not None:
            server, self.server = self.server, None
            server.shutdown()
            server.server_close()
            for conn in list(self._connections):
                try:
                    conn.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # -- content ---------------------------------------------------------------------------------
    def commit(self, repo_id: str, files: dict[str, bytes], branch: str = "main", private: bool | None = None,
               message: str = "") -> str:
        """A new commit on ``branch`` with ``files`` added to (or replacing those of) its parent."""
        with self._lock:
            repo = self.repos.setdefault(repo_id, Repo(owner=repo_id.split("/")[0]))
            if private is not None:
                repo.private = private
            parent = repo.branches.get(branch)
            tree = {**(repo.commits[parent] if parent else {}), **files}
            self._counter += 1
            digest = hashlib.sha1(f"{parent}{self._counter}{message}".encode())
            for path in sorted(tree):
                digest.update(path.encode() + tree[path])
            sha = digest.hexdigest()
            repo.commits[sha] = tree
            repo.branches[branch] = sha
            return sha

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        repo = self.repos[repo_id]
        return repo.commits[repo.branches.get(revision, revision)]


class _Handler(BaseHTTPRequestHandler):
    hub: FakeHub
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):  # keep test output quiet
        pass

    def setup(self):
        super().setup()
        self.hub._connections.add(self.connection)

    def finish(self):
        self.hub._connections.discard(self.connection)
        super().finish()

    # -- helpers ---------------------------------------------------------------------------------
    def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False) -> None:
        self.send_response(status)
        headers = {"Content-Type": "application/json", **(headers or {})}
        headers.setdefault("Content-Length", str(len(body)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if not head and body:
            self.wfile.write(body)

    def _json(self, status: int, payload, headers: dict | None = None, head: bool = False) -> None:
        self._send(status, json.dumps(payload).encode(), headers, head)

    def _error(self, status: int, code: str | None, message: str, head: bool = False, **headers) -> None:
        extra = {"X-Error-Message": message, **headers}
        if code:
            extra["X-Error-Code"] = code
        self._json(status, {"error": message}, extra, head)

    def _user(self) -> str | None:
        auth = self.headers.get("authorization") or ""
        return self.hub.tokens.get(auth[7:]) if auth.lower().startswith("bearer ") else None

    def _repo(self, repo_id: str, head: bool = False, write: bool = False) -> Repo | None:
        """The repo, or None after answering as the Hub does (404 missing, 401 private without a token)."""
        repo = self.hub.repos.get(repo_id)
        user = self._user()
        auth = self.headers.get("authorization")
        if auth and user is None:
            self._error(401, None, "Invalid credentials in Authorization header", head)
            return None
        if repo is None:
            self._error(404, "RepoNotFound", "Repository not found", head)
            return None
        if (repo.private or write) and user != repo.owner:
            if user is None:
                self._error(401, "RepoNotFound", "Invalid username or password.", head)
            else:
                self._error(403 if write and not repo.private else 404, "RepoNotFound", "Repository not found",
                            head)
            return None
        return repo

    def _body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _record(self) -> None:
        self.hub.requests.append((self.command, self.path, self.headers.get("authorization")))

    # -- downloads -------------------------------------------------------------------------------
    def _resolve(self, head: bool) -> None:
        parts = urlsplit(self.path).path.lstrip("/").split("/")
        repo_id, revision, filename = "/".join(parts[:2]), unquote(parts[3]), unquote("/".join(parts[4:]))
        repo = self._repo(repo_id, head)
        if repo is None:
            return
        sha = repo.branches.get(revision, revision if revision in repo.commits else None)
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
            return
        content = repo.commits[sha].get(filename)
        if content is None:
            self._error(404, "EntryNotFound", f"{filename} does not exist on {revision}", head,
                        **{"X-Repo-Commit": sha})
            return
        if (repo_id, filename) in self.hub.corrupt:
            content = bytes(b ^ 0xFF for b in content[:64]) + content[64:]
        headers = {"Content-Type": "application/octet-stream", "X-Repo-Commit": sha,
                   "ETag": f'"{_blob_sha1(content)}"', "Accept-Ranges": "bytes"}
        status, start = 200, 0
        wanted = self.headers.get("Range")
        if wanted and wanted.startswith("bytes="):
            start = int(wanted[6:].split("-")[0] or 0)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{len(content) - 1}/{len(content)}"
        body = content[start:]
        die = self.hub.die_after.get((repo_id, filename))
        if head or die is None:
            self._send(status, body, headers, head)
            return
        self.send_response(status)
        headers["Content-Length"] = str(len(body))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(body[:die])
        self.wfile.flush()
        time.sleep(0.05)
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        threading.Thread(target=self.hub.stop, daemon=True).start()  # the whole server dies

    def _model_info(self) -> None:
        parts = urlsplit(self.path).path.split("/")  # ['', 'api', 'models', owner, name, 'revision', rev]
        repo_id = "/".join(parts[3:5])
        revision = unquote(parts[6]) if len(parts) > 6 and parts[5] == "revision" else "main"
        repo = self._repo(repo_id)
        if repo is None:
            return
        sha = repo.branches.get(revision, revision if revision in repo.commits else None)
        if sha is None:
            self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
            return
        self._json(200, {"id": repo_id, "modelId": repo_id, "sha": sha, "private": repo.private,
                         "siblings": [{"rfilename": p} for p in sorted(repo.commits[sha])]})

    # -- verbs -----------------------------------------------------------------------------------
    def do_HEAD(self):  # noqa: N802
        self._record()
        if "/resolve/" in self.path:
            self._resolve(head=True)
        else:
            self._error(404, None, "Not found", head=True)

    def do_GET(self):  # noqa: N802
        self._record()
        path = urlsplit(self.path).path
        if path.startswith("/api/models/"):
            self._model_info()
        elif "/resolve/" in path:
            self._resolve(head=False)
        else:
            self._error(404, None, "Not found")

    def do_POST(self):  # noqa: N802
        self._record()
        path = urlsplit(self.path).path
        body = self._body()
        if path == "/api/validate-yaml":
            self._validate_yaml(body)
        elif path == "/api/repos/create":
            self._create(body)
        elif path.startswith("/api/models/") and "/preupload/" in path:
            repo_id = "/".join(path.split("/")[3:5])
            if self._repo(repo_id, write=True) is not None:
                files = json.loads(body)["files"]
                self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
                                            "oid": None} for f in files]})
        elif path.startswith("/api/models/") and "/commit/" in path:
            self._commit(path, body)
        else:
            self._error(404, None, "Not found")

    def _validate_yaml(self, body: bytes) -> None:
        content = json.loads(body)["content"]
        try:
            meta = yaml.safe_load(content.split("---")[1]) if content.startswith("---") else {}
            assert isinstance(meta, dict)
        except Exception as exc:  # noqa: BLE001
            self._json(400, {"errors": [{"message": f"invalid YAML: {exc}"}], "warnings": []})
            return
        self._json(200, {"errors": [], "warnings": []})

    def _create(self, body: bytes) -> None:
        user = self._user()
        if user is None:
            self._error(401, None, "You must be authenticated to create a repo")
            return
        payload = json.loads(body)
        owner = payload.get("organization") or user
        repo_id = f"{owner}/{payload['name']}"
        if owner != user:
            self._error(403, None, f"You don't have the rights to create a model under the namespace {owner}")
            return
        if repo_id in self.hub.repos:
            self._json(409, {"error": "You already created this model repo", "url": f"{self.hub.endpoint}/{repo_id}"})
            return
        private = payload.get("private") or payload.get("visibility") == "private"
        self.hub.commit(repo_id, {".gitattributes": b"*.keras filter=lfs diff=lfs merge=lfs -text\n"},
                        private=bool(private), message="initial commit")
        self._json(200, {"url": f"{self.hub.endpoint}/{repo_id}", "name": repo_id})

    def _commit(self, path: str, body: bytes) -> None:
        parts = path.split("/")
        repo_id, branch = "/".join(parts[3:5]), unquote(parts[6])
        if self._repo(repo_id, write=True) is None:
            return
        files, summary = {}, ""
        for line in body.splitlines():
            item = json.loads(line)
            if item["key"] == "header":
                summary = item["value"].get("summary", "")
            elif item["key"] == "file":
                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
            else:
                self._error(400, None, f"unsupported commit operation {item['key']}")
                return
        sha = self.hub.commit(repo_id, files, branch=branch, message=summary)
        self._json(200, {"commitUrl": f"{self.hub.endpoint}/{repo_id}/commit/{sha}", "commitOid": sha,
                         "pullRequestUrl": None})
