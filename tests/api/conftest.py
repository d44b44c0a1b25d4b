"""Fixtures for the API suite: real `kinfer serve` processes on free loopback ports.

The binary is build/release/src/kinfer unless KINFER_BINARY names another (the asan build runs
the same suite). Models come from ../shared (stories260K: tiny and fast) and the default model
(SmolLM2-135M-Instruct, BPE tokenizer and a real chat template) when KINFER_DEFAULT_MODEL is set.
"""
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("KINFER_SHARED_DIR") or REPO.parent / "shared")
STORIES = SHARED / "models" / "stories260K" / "stories260K.gguf"
CHATML = SHARED / "chat-templates" / "llama.cpp" / "Qwen-Qwen2.5-7B-Instruct.jinja"


def binary():
    return os.environ.get("KINFER_BINARY", str(REPO / "build" / "release" / "src" / "kinfer"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A running `kinfer serve`; stop() sends SIGTERM and returns the exit code."""

    def __init__(self, model, *args, wait_ready=True, env=None, scheme="http", verify=None):
        self.port = free_port()
        self.scheme = scheme
        self.verify = verify
        self.log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"kinfer-serve-{self.port}.log", "w+")
        cmd = [binary(), "serve", "--model", str(model), "--port", str(self.port),
               "--host", "127.0.0.1", "--drain-delay", "0.5", "--shutdown-timeout", "20", *args]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        self.url = f"{scheme}://127.0.0.1:{self.port}"
        if wait_ready:
            self.wait_ready()

    def wait_ready(self, timeout=120):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kinfer serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                r = requests.get(self.url + "/ready", timeout=2, verify=self.verify)
                if r.status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"kinfer serve not ready after {timeout}s:\n{self.output()}")

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def metrics(self, headers=None):
        r = requests.get(self.url + "/metrics", timeout=10, verify=self.verify, headers=headers)
        r.raise_for_status()
        values = {}
        for line in r.text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
        return values

    def metric(self, name, **labels):
        """Sum of a metric's series whose labels include `labels`."""
        total, found = 0.0, False
        for series, v in self.metrics().items():
            base = series.split("{")[0]
            if base != name:
                continue
            if all(f'{k}="{val}"' in series for k, val in labels.items()):
                total += v
                found = True
        return total if found else None

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture(scope="session")
def stories():
    """stories260K (GGUF, SentencePiece vocab) with a ChatML template, 4 compute threads."""
    s = Server(STORIES, "--served-model-name", "stories", "--served-model-name", "tiny",
               "--chat-template", str(CHATML), "--kv-cache-memory", "64MiB",
               "--metrics-vllm-names")
    yield s
    assert s.stop() == 0, s.output()


@pytest.fixture(scope="session")
def default_model():
    path = os.environ.get("KINFER_DEFAULT_MODEL")
    if not path:
        path = subprocess.run([str(REPO / "scripts" / "fetch_default_model.sh")], check=True,
                              capture_output=True, text=True).stdout.strip()
    s = Server(path, "--served-model-name", "smollm2", "--kv-cache-memory", "256MiB",
               "--max-model-len", "2048")
    yield s
    assert s.stop() == 0, s.output()


@pytest.fixture
def client(stories):
    import openai
    return openai.OpenAI(base_url=stories.url + "/v1", api_key="unused", max_retries=0)
