"""`kinfer models`, which the chart's `helm test` pod runs (the image has no curl): it lists
/v1/models, sends the first key of an --api-key-file, and fails when --expect is not listed."""

from __future__ import annotations

import json
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest


@pytest.fixture
def server():
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            ok = self.path == "/v1/models" and self.headers.get("Authorization") == "Bearer k1"
            body = json.dumps({"object": "list", "data": [{"id": "tiny", "object": "model"}]} if ok
                              else {"error": {"message": "invalid api key"}}).encode()
            self.send_response(200 if ok else 401)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    httpd = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def run(kinfer_bin, *args):
    return subprocess.run([str(kinfer_bin), "models", *args], capture_output=True, text=True,
                          timeout=30)


def test_lists_models_with_the_first_key_of_the_file(kinfer_bin, server, tmp_path):
    keys = tmp_path / "api-keys"
    keys.write_text("k1\nk2\n")
    r = run(kinfer_bin, "--url", server + "/", "--api-key-file", str(keys), "--expect", "tiny")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "tiny\n"


def test_fails_clearly_without_the_key_or_the_model(kinfer_bin, server, tmp_path):
    r = run(kinfer_bin, "--url", server)
    assert r.returncode == 1
    assert f"error: GET {server}/v1/models: HTTP 401" in r.stderr
    keys = tmp_path / "api-keys"
    keys.write_text("k1\n")
    r = run(kinfer_bin, "--url", server, "--api-key-file", str(keys), "--expect", "other")
    assert r.returncode == 1
    assert "does not list model 'other'" in r.stderr
