#!/usr/bin/env python3
"""Records llama.cpp's tokenization and greedy continuations of the real Gemma 3 270M Q4_K_M
GGUF (scripts/fetch_gemma3_270m.sh) into tests/fixtures/gemma3-270m/llama_cpp.json, for the
test that compares Kinfer with them (tests/unit/cli/real_gemma3_test.cc).

llama.cpp is libllama as bench/run.py builds it from the llama-cpp-python sdist into
~/.cache/kinfer/llama.cpp-<version>/build (built under flock ~/.cache/kinfer/llama.cpp.lock if
missing), driven by tests/reference/llama_cpp_greedy.c: llama_tokenize, and argmax over
llama_decode's logits. Weight repacking (llama.cpp's "extra buffer types") is off: on this
machine's CPU, which advertises AMX tiles a process may not use, its AMX kernels die with SIGILL.

  python3 tests/reference/make_gemma3_270m_reference.py
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CACHE = Path(os.environ.get("KINFER_CACHE", Path.home() / ".cache" / "kinfer"))
OUT = ROOT / "tests" / "fixtures" / "gemma3-270m" / "llama_cpp.json"
N_PREDICT = 24

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
    "Water boils at",
]


def llama_cpp_client() -> list[str]:
    sys.path.insert(0, str(ROOT / "bench"))
    import run  # bench/run.py: the shared builder
    version = run.LLAMA_CPP_PYTHON_VERSION
    root = CACHE / f"llama.cpp-{version}"
    lib = root / "build" / "bin"
    if not (lib / "libllama.so").exists():
        subprocess.run(["flock", str(CACHE / "llama.cpp.lock"), sys.executable, "-c",
                        f"import sys; sys.path.insert(0, {str(ROOT / 'bench')!r}); import run; "
                        f"run.build_llama_cpp({version!r}, 2)"], check=True)
    exe = CACHE / "gemma3-reference" / "llama_cpp_greedy"
    exe.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["gcc", "-O2", "-Wall", "-o", str(exe), str(HERE / "llama_cpp_greedy.c"),
                    f"-I{root / 'src' / 'include'}", f"-I{root / 'src' / 'ggml' / 'include'}",
                    f"-L{lib}", "-lllama", "-lggml", "-lggml-base", f"-Wl,-rpath,{lib}"], check=True)
    return [str(exe)], f"llama-cpp-python {version} sdist"


def call(client: list[str], model: Path, args: list[str], stdin: str,
         margins: list[float] | None = None) -> list[int]:
    r = subprocess.run(client + [str(model)] + args, input=stdin.encode(), check=True,
                       capture_output=True, env=dict(os.environ, LLAMA_REF_MARGINS="1"))
    if margins is not None:  # "token i: id (logit), runner-up id (logit)" per generated token
        for line in r.stderr.decode().splitlines():
            if line.startswith("token "):
                best, second = (float(x.split("(")[1].rstrip(")")) for x in line.split(", "))
                margins.append(round(best - second, 4))
    return [int(t) for t in r.stdout.decode().split()]


def main() -> int:
    model = Path(subprocess.run([str(ROOT / "scripts" / "fetch_gemma3_270m.sh")], check=True,
                                capture_output=True, text=True).stdout.strip())
    sha = hashlib.sha256(model.read_bytes()).hexdigest()
    client, version = llama_cpp_client()
    tokenize = []
    for s in TOKENIZE:
        tokenize.append({"text": s, "ids": call(client, model, ["tokenize", "0"], s),
                         "ids_add_special": call(client, model, ["tokenize", "1"], s)})
    prompts = []
    for p in PROMPTS:
        ids = call(client, model, ["tokenize", "1"], p)
        margins: list[float] = []
        gen = call(client, model, ["generate", str(N_PREDICT)], " ".join(map(str, ids)), margins)
        # llama.cpp's own gap between its token and the runner-up at each step: where it is
        # small, another engine's rounding may pick the runner-up.
        prompts.append({"prompt": p, "prompt_ids": ids, "generated_ids": gen,
                        "top2_logit_margins": margins})
        print(f"{p!r} -> {gen}", flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps({
        "model": model.name,
        "model_sha256": sha,
        "reference": f"libllama from the {version} (bench/run.py build) through "
                     "tests/reference/llama_cpp_greedy.c: llama_tokenize, argmax of llama_decode's "
                     "logits, no weight repacking, 2 threads",
        "n_predict": N_PREDICT,
        "tokenize": tokenize,
        "prompts": prompts,
    }, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
