"""A local HTTP server with the Hugging Face Hub's download API, for testing `kinfer pull`.

It serves what the Hub serves for a model repository:
  GET /api/models/{org}/{name}/revision/{rev}[?blobs=true]  model info: commit sha, siblings
      with sizes, git blob ids and, for LFS files, the content's sha256
  GET /{org}/{name}/resolve/{rev}/{path}  the file; LFS files answer with a 302 to a "CDN" path
      on another host name (localhost instead of 127.0.0.1), as the Hub redirects to its CDN
and honours single `Range: bytes=N-` requests. Faults are switched on per test: a connection
dropped after N bytes, a corrupted body, a private repository (401 without the right token),
and a missing repository or file (404 with the Hub's X-Error-Code header).
"""

from __future__ import annotations

import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlsplit


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass
class Repo:
    files: dict[str, bytes]
    lfs: set[str] = field(default_factory=set)  # paths stored in LFS
    commit: str = "0" * 40
    token: str | None = None  # when set, requests need "Authorization: Bearer <token>"


@dataclass
class Faults:
    drop_after: int | None = None  # close the connection after this many body bytes...
    drop_times: int = 0  # ...this many times (then serve normally)
    corrupt: set[str] = field(default_factory=set)  # paths whose body has one byte flipped
    ignore_range: bool = False  # answer 200 with the whole file to range requests
    missing: set[str] = field(default_factory=set)  # listed, but resolve answers 404


class HubServer:
    def __init__(self) -> None:
        self.repos: dict[str, Repo] = {}
        self.faults = Faults()
        self.requests: list[dict] = []  # method, path, range, authorization, host
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep pytest output clean
                pass

            def do_GET(self):  # noqa: N802 (http.server's naming)
                server._handle(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="hub", daemon=True)

    def __enter__(self) -> "HubServer":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add_repo(self, repo_id: str, repo: Repo) -> Repo:
        self.repos[repo_id] = repo
        return repo

    def resolve_requests(self) -> list[dict]:
        return [r for r in self.requests if "/resolve/" in r["path"] or "/cdn/" in r["path"]]

    # --- request handling -------------------------------------------------------------------

    def _send_json(self, h, status: int, body: dict, error_code: str | None = None) -> None:
        data = json.dumps(body).encode()
        h.send_response(status)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(data)))
        if error_code:
            h.send_header("X-Error-Code", error_code)
        h.end_headers()
        h.wfile.write(data)

    def _authorized(self, h, repo: Repo) -> bool:
        if repo.token is None:
            return True
        got = h.headers.get("Authorization")
        if got == f"Bearer {repo.token}":
            return True
        self._send_json(h, 401, {"error": "Invalid username or password."})
        return False

    def _repo(self, h, parts: list[str]) -> tuple[str, Repo | None]:
        repo_id = "/".join(parts[:2])
        repo = self.repos.get(repo_id)
        if repo is None:
            # The Hub answers 401 for an unknown repo to anonymous callers; 404 with a token.
            self._send_json(h, 404, {"error": "Repository not found"}, "RepoNotFound")
        return repo_id, repo

    def _handle(self, h) -> None:
        url = urlsplit(h.path)
        with self._lock:
            self.requests.append({
                "path": url.path, "range": h.headers.get("Range"),
                "authorization": h.headers.get("Authorization"), "host": h.headers.get("Host"),
            })
        parts = [unquote(p) for p in url.path.split("/")[1:]]
        if parts[:2] == ["api", "models"] and len(parts) >= 6 and parts[4] == "revision":
            repo_id, repo = self._repo(h, parts[2:4])
            if repo is None or not self._authorized(h, repo):
                return
            rev = "/".join(parts[5:])
            if rev not in ("main", repo.commit):
                self._send_json(h, 404, {"error": f"Invalid rev id: {rev}"}, "RevisionNotFound")
                return
            siblings = []
            for path, data in sorted(repo.files.items()):
                s = {"rfilename": path, "size": len(data), "blobId": git_blob_sha1(data)}
                if path in repo.lfs:
                    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{hashlib.sha256(data).hexdigest()}\nsize {len(data)}\n".encode()
                    s["blobId"] = git_blob_sha1(pointer)
                    s["lfs"] = {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data),
                                "pointerSize": len(pointer)}
                siblings.append(s)
            self._send_json(h, 200, {"id": repo_id, "sha": repo.commit, "siblings": siblings})
            return
        if len(parts) >= 5 and parts[2] == "resolve":
            repo_id, repo = self._repo(h, parts[:2])
            if repo is None or not self._authorized(h, repo):
                return
            rev, path = parts[3], "/".join(parts[4:])
            if rev not in ("main", repo.commit):
                self._send_json(h, 404, {"error": f"Invalid rev id: {rev}"}, "RevisionNotFound")
                return
            if path not in repo.files or path in self.faults.missing:
                self._send_json(h, 404, {"error": "Entry not found"}, "EntryNotFound")
                return
            if path in repo.lfs and h.headers.get("Host", "").startswith("127.0.0.1"):
                h.send_response(302)
                h.send_header("Location", f"http://localhost:{self.port}/cdn/{repo_id}/{path}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            self._serve_file(h, repo.files[path], path)
            return
        if parts[:1] == ["cdn"] and len(parts) >= 4:
            repo_id = "/".join(parts[1:3])
            path = "/".join(parts[3:])
            repo = self.repos.get(repo_id)
            if repo is None or path not in repo.files:
                self._send_json(h, 404, {"error": "no such object"})
                return
            self._serve_file(h, repo.files[path], path)
            return
        self._send_json(h, 404, {"error": "unknown route"})

    def _serve_file(self, h, data: bytes, path: str) -> None:
        if path in self.faults.corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        start = 0
        rng = h.headers.get("Range")
        if rng and not self.faults.ignore_range:
            if not rng.startswith("bytes=") or not rng.endswith("-"):
                self._send_json(h, 400, {"error": "only bytes=N- ranges here"})
                return
            start = int(rng[len("bytes="):-1])
            if start >= len(data):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(data)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        else:
            h.send_response(200)
        body = data[start:]
        h.send_header("Content-Length", str(len(body)))
        h.send_header("Accept-Ranges", "bytes")
        h.end_headers()
        f = self.faults
        if f.drop_after is not None and f.drop_times > 0 and len(body) > f.drop_after:
            f.drop_times -= 1
            h.wfile.write(body[: f.drop_after])
            h.wfile.flush()
            h.close_connection = True
            h.connection.shutdown(2)  # the peer sees the connection end mid-body
            return
        h.wfile.write(body)
