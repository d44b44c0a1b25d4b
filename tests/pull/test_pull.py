"""`kinfer pull` against a local server with the Hugging Face Hub's API (hub_server.py):
whole pulls, --include, idempotence, resume after a dropped connection, a server that ignores
ranges, checksum mismatches, 401 and 404, and that HF_TOKEN is sent but never to another host."""

from __future__ import annotations

import hashlib
import os
import subprocess

import pytest

from hub_server import HubServer, Repo

CONFIG = b'{"architectures": ["LlamaForCausalLM"], "hidden_size": 64}\n'
GGUF = bytes(range(256)) * 4096  # 1 MiB, LFS
SHARD = hashlib.sha256(b"seed").digest() * 20000  # 640000 bytes, LFS, in a subfolder
COMMIT = "3f1c0ffee3f1c0ffee3f1c0ffee3f1c0ffee3f1c"


def make_repo(**kw) -> Repo:
    return Repo(files={"config.json": CONFIG, "model.gguf": GGUF, "q8/shard.gguf": SHARD,
                       "README.md": b"# tiny\n"},
                lfs={"model.gguf", "q8/shard.gguf"}, commit=COMMIT, **kw)


@pytest.fixture
def hub():
    with HubServer() as server:
        yield server


def pull(kinfer_bin, hub, dest, *args, token=None, url="hf://kinfer-test/tiny"):
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_ENDPOINT")}
    env["HF_ENDPOINT"] = hub.endpoint
    if token is not None:
        env["HF_TOKEN"] = token
    return subprocess.run([str(kinfer_bin), "pull", url, "--dir", str(dest), *args], env=env,
                          capture_output=True, text=True, timeout=120)


def assert_files(dest, names):
    got = sorted(str(p.relative_to(dest)) for p in dest.rglob("*")
                 if p.is_file() and ".kinfer-pull" not in p.parts)
    assert got == sorted(names)
    repo = make_repo()
    for n in names:
        assert (dest / n).read_bytes() == repo.files[n], n


def test_pulls_every_file_with_progress_and_follows_the_cdn_redirect(kinfer_bin, hub, tmp_path):
    hub.add_repo("kinfer-test/tiny", make_repo())
    r = pull(kinfer_bin, hub, tmp_path)
    assert r.returncode == 0, r.stderr
    assert_files(tmp_path, ["README.md", "config.json", "model.gguf", "q8/shard.gguf"])
    assert "[3/4] model.gguf" in r.stderr or "model.gguf" in r.stderr
    assert f"at {COMMIT}: downloaded 4 of 4 files" in r.stderr
    # Files were asked for at the commit the model info named, not at "main".
    assert all(f"/resolve/{COMMIT}/" in q["path"] for q in hub.requests if "/resolve/" in q["path"])
    assert any(q["path"].startswith("/cdn/") for q in hub.requests)


def test_second_pull_downloads_nothing(kinfer_bin, hub, tmp_path):
    hub.add_repo("kinfer-test/tiny", make_repo())
    assert pull(kinfer_bin, hub, tmp_path).returncode == 0
    hub.requests.clear()
    r = pull(kinfer_bin, hub, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "all 4 files already in" in r.stderr and "nothing to download" in r.stderr
    assert hub.resolve_requests() == []


def test_a_changed_file_is_downloaded_again(kinfer_bin, hub, tmp_path):
    hub.add_repo("kinfer-test/tiny", make_repo())
    assert pull(kinfer_bin, hub, tmp_path).returncode == 0
    (tmp_path / "config.json").write_bytes(b"{}")  # edited by hand: no longer what the repo has
    hub.requests.clear()
    r = pull(kinfer_bin, hub, tmp_path)
    assert r.returncode == 0, r.stderr
    assert "downloaded 1 of 4 files" in r.stderr
    assert (tmp_path / "config.json").read_bytes() == CONFIG


def test_include_selects_files_by_glob(kinfer_bin, hub, tmp_path):
    hub.add_repo("kinfer-test/tiny", make_repo())
    r = pull(kinfer_bin, hub, tmp_path, "--include", "*.gguf", "--include", "config.json")
    assert r.returncode == 0, r.stderr
    assert_files(tmp_path, ["config.json", "model.gguf", "q8/shard.gguf"])
    r = pull(kinfer_bin, hub, tmp_path / "none", "--include", "*.safetensors")
    assert r.returncode == 1
    assert "no file matches --include *.safetensors (the revision has 4 files)" in r.stderr


def test_resumes_within_one_run_after_a_dropped_connection(kinfer_bin, hub, tmp_path):
    hub.add_repo("kinfer-test/tiny", make_repo())
    hub.faults.drop_after, hub.faults.drop_times = 300_000, 1
    r = pull(kinfer_bin, hub, tmp_path, "--include", "model.gguf")
    assert r.returncode == 0, r.stderr
    assert "model.gguf: download interrupted at" in r.stderr and "retrying" in r.stderr
    assert_files(tmp_path, ["model.gguf"])
    # LFS files come from the CDN host; the range is asked there (and at the redirecting URL).
    ranges = [q["range"] for q in hub.requests if q["path"].startswith("/cdn/")]
    assert ranges == [None, "bytes=300000-"]


def test_an_interrupted_pull_is_resumed_by_the_next_one(kinfer_bin, hub, tmp_path):
    hub.add_repo("kinfer-test/tiny", make_repo())
    hub.faults.drop_after, hub.faults.drop_times = 100_000, 100  # every attempt dies
    r = pull(kinfer_bin, hub, tmp_path, "--include", "model.gguf")
    assert r.returncode == 1
    assert "after 4 attempts; the partial file is kept" in r.stderr
    assert "run the same command again to resume" in r.stderr
    assert not (tmp_path / "model.gguf").exists()
    partial = tmp_path / ".kinfer-pull" / "model.gguf.incomplete"
    assert partial.stat().st_size == 400_000  # four attempts of 100000 bytes each
    hub.faults.drop_times = 0
    hub.requests.clear()
    r = pull(kinfer_bin, hub, tmp_path, "--include", "model.gguf")
    assert r.returncode == 0, r.stderr
    assert "model.gguf: resuming at 390.6 KiB of 1.0 MiB" in r.stderr
    assert [q["range"] for q in hub.requests if q["path"].startswith("/cdn/")] == ["bytes=400000-"]
    assert_files(tmp_path, ["model.gguf"])


def test_a_server_that_ignores_ranges_gets_a_fresh_download(kinfer_bin, hub, tmp_path):
    hub.add_repo("kinfer-test/tiny", make_repo())
    hub.faults.drop_after, hub.faults.drop_times = 200_000, 1
    hub.faults.ignore_range = True
    r = pull(kinfer_bin, hub, tmp_path, "--include", "model.gguf")
    assert r.returncode == 0, r.stderr
    assert_files(tmp_path, ["model.gguf"])


def test_checksum_mismatch_fails_and_deletes_the_corrupt_file(kinfer_bin, hub, tmp_path):
    hub.add_repo("kinfer-test/tiny", make_repo())
    hub.faults.corrupt = {"model.gguf"}
    r = pull(kinfer_bin, hub, tmp_path, "--include", "model.gguf")
    assert r.returncode == 1
    good = hashlib.sha256(GGUF).hexdigest()
    bad = hashlib.sha256(bytes([GGUF[0] ^ 0xFF]) + GGUF[1:]).hexdigest()
    assert f"model.gguf: sha256 mismatch: expected {good}, got {bad}" in r.stderr
    assert "the download is corrupt (or the server changed the file) and was deleted" in r.stderr
    assert not (tmp_path / "model.gguf").exists()
    assert not (tmp_path / ".kinfer-pull" / "model.gguf.incomplete").exists()


def test_small_files_are_checked_against_their_git_blob_id(kinfer_bin, hub, tmp_path):
    hub.add_repo("kinfer-test/tiny", make_repo())
    hub.faults.corrupt = {"config.json"}
    r = pull(kinfer_bin, hub, tmp_path, "--include", "config.json")
    assert r.returncode == 1
    assert "config.json: git blob sha1 mismatch" in r.stderr


def test_private_repo_needs_hf_token(kinfer_bin, hub, tmp_path):
    hub.add_repo("kinfer-test/tiny", make_repo(token="hf_secret"))
    r = pull(kinfer_bin, hub, tmp_path)
    assert r.returncode == 1
    assert "401 Unauthorized" in r.stderr
    assert "set HF_TOKEN to an access token that can read it" in r.stderr
    r = pull(kinfer_bin, hub, tmp_path, token="hf_wrong")
    assert r.returncode == 1
    assert "the token in HF_TOKEN was not accepted" in r.stderr
    hub.requests.clear()
    r = pull(kinfer_bin, hub, tmp_path, token="hf_secret")
    assert r.returncode == 0, r.stderr
    assert_files(tmp_path, ["README.md", "config.json", "model.gguf", "q8/shard.gguf"])
    # The token goes to the endpoint, never to the CDN host a redirect points at.
    for q in hub.requests:
        expected = "Bearer hf_secret" if q["host"].startswith("127.0.0.1") else None
        assert q["authorization"] == expected, q


def test_missing_repo_revision_and_file_are_404s_with_clear_messages(kinfer_bin, hub, tmp_path):
    hub.add_repo("kinfer-test/tiny", make_repo())
    r = pull(kinfer_bin, hub, tmp_path, url="hf://kinfer-test/nope")
    assert r.returncode == 1
    assert "hf://kinfer-test/nope@main: listing files: 404 Not Found at" in r.stderr
    assert "Repository not found" in r.stderr and "check the repository name and revision" in r.stderr
    r = pull(kinfer_bin, hub, tmp_path, url="hf://kinfer-test/tiny@v9")
    assert r.returncode == 1
    assert "revision 'v9' not found" in r.stderr
    hub.faults.missing = {"README.md"}  # listed by the model info, gone from storage
    r = pull(kinfer_bin, hub, tmp_path, "--include", "README.md")
    assert r.returncode == 1
    assert "README.md: file not found at" in r.stderr


def test_bad_url_is_a_usage_error(kinfer_bin, hub, tmp_path):
    r = pull(kinfer_bin, hub, tmp_path, url="Qwen/Qwen2.5")
    assert r.returncode == 2
    assert "expected hf://ORG/NAME[@REVISION]" in r.stderr
