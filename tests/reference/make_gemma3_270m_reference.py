#!/usr/bin/env python3
"""Records llama.cpp's tokenization and greedy continuations of the real Gemma 3 270M Q4_K_M
GGUF (scripts/fetch_gemma3_270m.sh) into tests/fixtures/gemma3-270m/llama_cpp.json, for the
test that compares Kinfer with them (tests/unit/cli/real_gemma3_test.cc).

llama.cpp is the one bench/run.py builds from the llama-cpp-python sdist into
~/.cache/kinfer/llama.cpp-<version> (built here under flock ~/.cache/kinfer/llama.cpp.lock if
missing). Its llama-server answers /tokenize and /completion (greedy: top-k 1, temperature 0).

  python3 tests/reference/make_gemma3_270m_reference.py
"""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
CACHE = Path(os.environ.get("KINFER_CACHE", Path.home() / ".cache" / "kinfer"))
OUT = ROOT / "tests" / "fixtures" / "gemma3-270m" / "llama_cpp.json"
N_PREDICT = 32

# Strings whose tokenization is recorded: plain prose, leading/inner/trailing spaces, newlines
# and tabs, digits, code, accents, CJK, emoji (byte fallback), and Gemma's control tokens as
# plain text.
TOKENIZE = [
    "Hello world",
    " Hello  world ",
    "The quick brown fox jumps over the lazy dog.",
    "line one\nline two\n\n\tindented",
    "1234567890 3.14159 -42",
    "def add(a, b):\n    return a + b\n",
    "Ünïcödé façade naïve café",
    "日本語のテキストと中文文本",
    "emoji: 🤖🚀 and ∑∫√",
    "<start_of_turn>user\nHi<end_of_turn>",
    "   ",
    "a",
]

PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village,",
    "def fibonacci(n):",
    "The three primary colors are",
    "Water boils at",
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def post(port: int, path: str, body: dict) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        return json.loads(r.read())


def llama_server() -> Path:
    sys.path.insert(0, str(ROOT / "bench"))
    import run  # bench/run.py: the shared builder
    version = run.LLAMA_CPP_PYTHON_VERSION
    server = CACHE / f"llama.cpp-{version}" / "build" / "bin" / "llama-server"
    if not server.exists():
        subprocess.run(["flock", str(CACHE / "llama.cpp.lock"), sys.executable, "-c",
                        f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import run; "
                        f"run.build_llama_cpp({version!r}, 2)"], check=True)
    return server


def main() -> int:
    model = Path(subprocess.run([str(ROOT / "scripts" / "fetch_gemma3_270m.sh")], check=True,
                                capture_output=True, text=True).stdout.strip())
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    server = llama_server()
    port = free_port()
    proc = subprocess.Popen([str(server), "-m", str(model), "--host", "127.0.0.1", "--port",
                             str(port), "-t", "2", "-c", "1024", "-np", "1", "--no-webui"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.5)
        else:
            raise RuntimeError("llama-server did not become healthy")
        tokenize = []
        for s in TOKENIZE:
            plain = post(port, "/tokenize", {"content": s, "add_special": False})["tokens"]
            special = post(port, "/tokenize", {"content": s, "add_special": True})["tokens"]
            tokenize.append({"text": s, "ids": plain, "ids_add_special": special})
        prompts = []
        for p in PROMPTS:
            ids = post(port, "/tokenize", {"content": p, "add_special": True})["tokens"]
            r = post(port, "/completion", {"prompt": ids, "n_predict": N_PREDICT, "temperature": 0,
                                           "top_k": 1, "samplers": ["top_k"], "cache_prompt": False,
                                           "return_tokens": True, "seed": 0})
            prompts.append({"prompt": p, "prompt_ids": ids, "generated_ids": r["tokens"],
                            "text": r["content"], "stop_type": r.get("stop_type")})
            print(f"{p!r} -> {r['content']!r}", flush=True)
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "model": model.name,
        "model_sha256": sha,
        "reference": f"llama.cpp from the llama-cpp-python {server.parent.parent.parent.name} sdist "
                     "(bench/run.py build), llama-server /tokenize and /completion, greedy "
                     "(samplers [top_k], top_k 1, temperature 0), 2 threads",
        "n_predict": N_PREDICT,
        "tokenize": tokenize,
        "prompts": prompts,
    }, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
