#!/usr/bin/env python3
"""Kinfer against llama.cpp on the same GGUF files and thread count, in one run.

  python3 bench/run.py                      # everything, defaults below
  python3 bench/run.py --quick              # one model, fewer rounds: a smoke run
  python3 bench/run.py --threads 2 --shapes qwen2.5-0.5b --types Q4_0 --rounds 5

What it does, with progress on stderr and the table on stdout:
  1. builds Kinfer (cmake release preset: kinfer, kinfer_bench);
  2. builds llama.cpp (llama-bench, llama-server, llama-quantize) from the llama-cpp-python
     source distribution on PyPI with bench/llama_cpp.py: -march=native, minus AMX where the CPU
     has it but the kernel does not let a process use it (nothing of it enters this repository);
  3. writes random-weight models in the shapes of Qwen2.5-0.5B and Llama-3.2-1B (bench/make_models.py)
     into ~/.cache/kinfer/bench-models: GGUFs, BF16 as a Hugging Face safetensors checkpoint for
     Kinfer and the same weights as a BF16 GGUF for llama.cpp, and Q4_K_M/Q5_K_M/Q6_K made from the
     F16 GGUF by llama.cpp's own llama-quantize;
  4. measures the machine's read bandwidth (kinfer_bench --stream-gib) after every round and
     from it the decode bound of each model: read bandwidth / bytes read per token (weights + KV
     of the context), with the median of the samples taken between that model's rounds;
  5. prefill (512-token prompt) and batch-1 decode tokens/s: kinfer_bench and llama-bench,
     alternated round by round so both see the same machine load; medians of the rounds;
  6. serving through the OpenAI API (/v1/completions, stream, ignore_eos, 128 output tokens,
     fixed prompts, a different one per request so no prefix cache answers) at 1, 4 and 16
     concurrent streams against `kinfer serve` and llama-server with the same threads, slots and
     context (Kinfer's --kv-cache-memory = llama-server's -c in f16 KV bytes), both up at once
     and alternated level by level: aggregate output tokens/s, TTFT p50/p99, inter-token
     latency p50, and each server's peak RSS (VmHWM).

Ratios are Kinfer / llama.cpp: above 1 is better for Kinfer in tokens/s, below 1 in latency and RSS.
The machine is shared: read ratios, not lone absolute numbers.
"""
import argparse
import asyncio
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import time

import llama_cpp
from child_process import die_with_parent

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.path.expanduser(os.environ.get("KINFER_BENCH_CACHE", "~/.cache/kinfer"))
LLAMA_CPP_PYTHON_VERSION = llama_cpp.VERSION
# Types made from the F16 GGUF with llama-quantize (mixed recipes, as users download them).
QUANTIZE_TYPES = {"Q4_K_M", "Q5_K_M", "Q6_K", "Q4_K_S", "Q5_K_S", "Q3_K_M", "Q2_K"}


def log(msg):
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def run(cmd, **kw):
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, **kw)


def run_build(cmd, what, **kw):
    """A build command whose [n/N] lines (ninja) become a progress line every 10% or 20 s."""
    log("$ " + " ".join(cmd))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            **kw)
    start = last_time = time.time()
    last_pct, tail = -10, []
    for line in proc.stdout:
        tail = (tail + [line])[-30:]
        if line.startswith("[") and "/" in line.split("]")[0]:
            done, total = line[1:].split("]")[0].split("/")
            pct = 100 * int(done) // max(int(total), 1)
            if pct >= last_pct + 10 or time.time() - last_time > 20:
                log(f"building {what}: {pct}% ({done}/{total} steps, {time.time() - start:.0f} s)")
                last_pct, last_time = pct, time.time()
    if proc.wait() != 0:
        sys.stderr.write("".join(tail))
        raise subprocess.CalledProcessError(proc.returncode, cmd)
    log(f"built {what} in {time.time() - start:.0f} s")


class Phases:
    """'phase 3/5: prefill and decode (12 min so far)' lines between the long steps."""

    def __init__(self, names):
        self.names, self.start, self.i = names, time.time(), 0

    def next(self, detail=""):
        name = self.names[self.i]
        self.i += 1
        took = time.time() - self.start
        log(f"phase {self.i}/{len(self.names)}: {name}{': ' + detail if detail else ''} "
            f"({took // 60:.0f} min {took % 60:.0f} s so far)")


def output(cmd, timeout=None):
    log("$ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=timeout).stdout


# ----------------------------------------------------------------------------------- setup

def ensure_python_packages():
    try:
        import gguf  # noqa: F401
        import numpy  # noqa: F401
    except ImportError:
        run([sys.executable, "-m", "pip", "install", "--quiet", "gguf", "numpy"])


def build_kinfer(jobs):
    run(["cmake", "--preset", "release"], cwd=REPO, stdout=subprocess.DEVNULL)
    run_build(["cmake", "--build", "--preset", "release", f"-j{jobs}", "--target", "kinfer",
               "kinfer_bench"], "Kinfer", cwd=REPO)
    return os.path.join(REPO, "build/release/src/kinfer"), \
        os.path.join(REPO, "build/release/bench/kinfer_bench")


def build_llama_cpp(version, jobs):
    """(llama-bench, llama-server) built for this CPU by bench/llama_cpp.py. The caller holds
    ~/.cache/kinfer/llama.cpp.lock (main() does; so does `flock <lock> python3 -c ...`)."""
    b = llama_cpp.build(version, jobs)
    return os.path.join(b["bin_dir"], "llama-bench"), os.path.join(b["bin_dir"], "llama-server")


def prebuilt_llama_cpp(bin_dir):
    """build()'s answer for a bin/ directory built earlier (by bench/llama_cpp.py or by hand)."""
    bin_dir = os.path.abspath(bin_dir)
    stamp = os.path.join(os.path.dirname(bin_dir), "kinfer-build.json")
    cpu = llama_cpp.probe_cpu()
    simd = f"prebuilt in {bin_dir}"
    if os.path.exists(stamp):
        with open(stamp) as f:
            simd = json.load(f)["simd"] + f" (prebuilt in {bin_dir})"
    else:
        cache = os.path.join(os.path.dirname(bin_dir), "CMakeCache.txt")
        if os.path.exists(cache):
            with open(cache) as f:
                keep = [l.strip() for l in f if l.startswith(("CMAKE_C_FLAGS:", "CMAKE_CXX_COMPILER:",
                                                              "GGML_NATIVE:"))]
            simd += ": " + ", ".join(keep)
    return {"bin_dir": bin_dir, "variant": "prebuilt", "simd": simd, "cpu": cpu}


def make_models(shapes, types, quantize=None):
    """[(shape, type, Kinfer's path, llama.cpp's path)]: the same weights for both (BF16: an HF
    checkpoint directory for Kinfer, its GGUF for llama.cpp); llama-quantize types from F16."""
    out = os.path.join(CACHE, "bench-models")
    direct = [t for t in types if t not in QUANTIZE_TYPES]
    if any(t in QUANTIZE_TYPES for t in types) and "F16" not in direct:
        direct.append("F16")
    cmd = [sys.executable, os.path.join(REPO, "bench/make_models.py"), "--out", out]
    for s in shapes:
        cmd += ["--shape", s]
    for t in direct:
        cmd += ["--type", t]
    run(cmd, stdout=sys.stderr)
    models = []
    for s in shapes:
        for t in types:
            path = os.path.join(out, f"{s}-{t}.gguf")
            if t in QUANTIZE_TYPES and not os.path.exists(path):
                run([quantize, os.path.join(out, f"{s}-F16.gguf"), path + ".tmp", t],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                os.replace(path + ".tmp", path)
            kinfer_path = os.path.join(out, f"{s}-{t}-hf") if t == "BF16" else path
            models.append((s, t, kinfer_path, path))
    return models


def gguf_type_mix(path):
    """"Q4_K 58%, Q6_K 30%, ..." by bytes of the 2-D weights of a GGUF."""
    import gguf
    by = {}
    for t in gguf.GGUFReader(path).tensors:
        if len(t.shape) >= 2:
            by[t.tensor_type.name] = by.get(t.tensor_type.name, 0) + int(t.n_bytes)
    total = sum(by.values())
    return ", ".join(f"{k} {100 * v / total:.0f}%" for k, v in sorted(by.items(), key=lambda x: -x[1]))


def kinfer_serve_available(kinfer):
    try:
        r = subprocess.run([kinfer, "serve", "--help"], capture_output=True, text=True, timeout=30)
        return r.returncode == 0 and "--kv-cache-memory" in (r.stdout + r.stderr)
    except (OSError, subprocess.TimeoutExpired):
        return False


# ------------------------------------------------------------------------- model numbers

def model_shape(path):
    """(layers, kv_heads, head_dim, 2-D weight bytes read per token) from the GGUF itself."""
    import gguf
    r = gguf.GGUFReader(path)
    arch = bytes(r.fields["general.architecture"].parts[-1]).decode()

    def num(key):
        f = r.fields[f"{arch}.{key}"]
        return int(f.parts[-1][0])

    layers, heads = num("block_count"), num("attention.head_count")
    kv_heads = num("attention.head_count_kv")
    head_dim = num("embedding_length") // heads
    names = {t.name for t in r.tensors}
    per_token = 0
    for t in r.tensors:
        if len(t.shape) < 2:
            continue
        if t.name == "token_embd.weight" and "output.weight" in names:
            continue  # untied: a lookup reads one row; the LM head reads output.weight
        per_token += int(t.n_bytes)
    return layers, kv_heads, head_dim, per_token


def decode_bytes_per_token(shape, context):
    layers, kv_heads, head_dim, weights = shape
    kv = 2 * layers * kv_heads * head_dim * 2 * context  # f16 keys and values read by attention
    return weights + kv


def stream_bandwidth(kinfer_bench, threads):
    j = json.loads(output([kinfer_bench, "--stream-gib", "1", "--threads", str(threads), "-r", "10"]))
    return j["read_bytes_per_s"]


def kinfer_pp_tg(kinfer_bench, path, threads, p, n):
    j = json.loads(output([kinfer_bench, "--model", path, "--threads", str(threads), "-p", str(p),
                           "-n", str(n), "-r", "1"], timeout=1800).strip().splitlines()[-1])
    kinfer_pp_tg.decode_tps_cpu = j.get("decode_tps_cpu")
    return j["prefill_tps"], j["decode_tps"]


def llama_pp_tg(llama_bench, path, threads, p, n, extra=()):
    try:
        out = output([llama_bench, "-m", path, "-t", str(threads), "-p", str(p), "-n", str(n),
                      "-r", "1", "-o", "json"] + list(extra), timeout=1800)
    except subprocess.CalledProcessError as e:
        # A crash of the peer (e.g. llama.cpp's AMX matmul on a VM, see llama_cpp.plan) costs
        # its figures of this round, not Kinfer's nor the other rows'.
        how = f"signal {-e.returncode}" if e.returncode < 0 else f"exit {e.returncode}"
        log(f"llama-bench failed ({how}) on {path}: {(e.stderr or '')[-300:]}")
        return None, None
    pp = tg = None
    for row in json.loads(out):
        if row.get("n_prompt", 0) > 0 and row.get("n_gen", 0) == 0:
            pp = row["avg_ts"]
        elif row.get("n_gen", 0) > 0 and row.get("n_prompt", 0) == 0:
            tg = row["avg_ts"]
    return pp, tg


# ------------------------------------------------------------------------------- serving

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A server process on 127.0.0.1 whose peak RSS is read from /proc before it is stopped."""

    def __init__(self, name, cmd, port, log_path):
        self.name, self.cmd, self.port = name, cmd, port
        self.log = open(log_path, "w")
        log(f"starting {name}: " + " ".join(cmd))
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=die_with_parent)

    def wait_ready(self, timeout=600):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}; see {self.log.name}")
            for path in ("/health", "/ready"):
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=2) as s:
                        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
                        head = s.recv(64).decode(errors="replace")
                        if " 200 " in head:
                            return
                except OSError:
                    pass
            time.sleep(1)
        raise RuntimeError(f"{self.name} not ready after {timeout}s; see {self.log.name}")

    def peak_rss(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return None

    def stop(self):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


async def _read_until(reader, sep):
    return await reader.readuntil(sep)


async def stream_completion(port, model, prompt, max_tokens):
    """One streamed /v1/completions request. Returns (ttft, [token arrival times], tokens)."""
    body = json.dumps({
        "model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
        "stream": True, "ignore_eos": True, "stream_options": {"include_usage": True},
    }).encode()
    t0 = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
                 b"Connection: close\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode(errors="replace")
    status = head.split(" ", 2)[1]
    if status != "200":
        rest = await reader.read(2000)
        raise RuntimeError(f"HTTP {status}: {rest[:300]!r}")
    chunked = "transfer-encoding: chunked" in head.lower()

    async def chunks():
        if not chunked:
            while True:
                data = await reader.read(65536)
                if not data:
                    return
                yield data
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                return
            data = await reader.readexactly(size)
            await reader.readexactly(2)
            yield data

    times, usage_tokens, buf = [], None, b""
    async for data in chunks():
        now = time.perf_counter()
        buf += data
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                if not line.startswith(b"data:"):
                    continue
                payload = line[5:].strip()
                if payload == b"[DONE]":
                    continue
                j = json.loads(payload)
                if j.get("usage"):
                    usage_tokens = j["usage"].get("completion_tokens")
                if j.get("choices"):
                    times.append(now)
    writer.close()
    tokens = usage_tokens if usage_tokens else len(times)
    if not times:
        raise RuntimeError("stream carried no tokens")
    return times[0] - t0, [t - t0 for t in times], tokens


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = (len(xs) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (k - lo)


def prompts(n, length, first=0):
    """Fixed prompts number first..first+n-1 of `length` single-byte tokens (letters and spaces,
    never "zz"); prompts with different numbers differ from their first block on."""
    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india",
             "juliet", "kilo", "lima", "mike", "november", "oscar", "papa", "quebec", "romeo"]
    out = []
    for i in range(first, first + n):
        text, j = f"{i} ", i
        while len(text) < length:
            text += words[j % len(words)] + " "
            j += 7
        out.append(text[:length])
    return out


async def load_test(port, model, concurrency, requests, prompt_len, max_tokens, first=0):
    ps = prompts(requests, prompt_len, first)
    queue = list(range(requests))
    results = []

    async def worker():
        while queue:
            i = queue.pop(0)
            results.append(await stream_completion(port, model, ps[i], max_tokens))

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    wall = time.perf_counter() - t0
    ttft = [r[0] for r in results]
    itl = []
    for _, times, _ in results:
        itl += [b - a for a, b in zip(times, times[1:])]
    return {
        "tokens_per_s": sum(r[2] for r in results) / wall,
        "ttft_p50": pct(ttft, 50), "ttft_p99": pct(ttft, 99),
        "itl_p50": pct(itl, 50), "itl_p99": pct(itl, 99),
    }


def serve_alternated(servers, model_name, levels, args):
    """Starts every (name, cmd, port) server, warms each, then runs each concurrency level on
    each server in turn, so that both see the same machine load. Every request of the run has a
    prompt of its own: no server answers from its prefix cache."""
    started = []
    try:
        for name, cmd, port, tag in servers:
            srv = Server(name, cmd, port, os.path.join(CACHE, f"bench-{name}-{tag}.log"))
            started.append(srv)
            srv.wait_ready()
        # One request each warms caches and lazy initialization; not counted.
        for srv in started:
            asyncio.run(load_test(srv.port, model_name, 1, 1, args.prompt_len, 8, first=10**6))
        res = {srv.name: {} for srv in started}
        first = 0
        for li, c in enumerate(levels):
            n = max(c * args.requests_per_stream, 2)
            for srv in started:
                log(f"{srv.name}: {c} streams, {n} requests (level {li + 1}/{len(levels)})")
                res[srv.name][c] = asyncio.run(load_test(srv.port, model_name, c, n,
                                                         args.prompt_len, args.max_tokens,
                                                         first=first))
                first += n
        for srv in started:
            res[srv.name]["peak_rss"] = srv.peak_rss()
        return res
    finally:
        for srv in started:
            srv.stop()


# --------------------------------------------------------------------------------- table

def fmt(v, unit=""):
    if v is None or (isinstance(v, float) and v != v):
        return "n/a"
    if unit == "ms":
        return f"{v * 1000:.1f} ms"
    if unit == "MiB":
        return f"{v / 2**20:.0f} MiB"
    if unit == "GB/s":
        return f"{v / 1e9:.1f} GB/s"
    return f"{v:.1f}"


def ratio(a, b):
    if a is None or b is None or not b or a != a or b != b:
        return "n/a"
    return f"{a / b:.2f}x"


def print_table(rows, title):
    print(f"\n## {title}\n")
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    for k, r in enumerate(rows):
        print("| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |")
        if k == 0:
            print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    sys.stdout.flush()


def _exit_on_signal(signum, _frame):
    # SIGTERM/SIGHUP (timeout, a closed terminal) unwind like Ctrl-C: the `finally` blocks stop
    # the servers this run started.
    raise SystemExit(128 + signum)


def main():
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _exit_on_signal)
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--shapes", nargs="+", default=["qwen2.5-0.5b", "llama-3.2-1b"])
    ap.add_argument("--types", nargs="+",
                    default=["F16", "BF16", "Q8_0", "Q4_0", "Q4_K_M", "Q5_K_M", "Q6_K"])
    ap.add_argument("--rounds", type=int, default=3, help="alternated rounds per tool and model")
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--serve-models", nargs="*",
                    default=["qwen2.5-0.5b-Q4_K_M", "qwen2.5-0.5b-Q4_0", "qwen2.5-0.5b-Q8_0"],
                    help="<shape>-<type> files to serve; none skips serving")
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 4, 16])
    ap.add_argument("--requests-per-stream", type=int, default=2)
    ap.add_argument("--prompt-len", type=int, default=128, help="serving prompt tokens")
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--max-model-len", type=int, default=1024)
    ap.add_argument("--jobs", type=int, default=2, help="build parallelism")
    ap.add_argument("--llama-cpp-python", default=LLAMA_CPP_PYTHON_VERSION)
    ap.add_argument("--llama-amx", choices=["auto", "off"], default="auto",
                    help="off: llama.cpp native minus AMX even where AMX is granted (the "
                         "header says which)")
    ap.add_argument("--llama-bin", help="use the llama.cpp tools already built in this bin/ "
                    "directory (no build, no lock); the header says which")
    ap.add_argument("--llama-no-repack", action="store_true",
                    help="llama.cpp without its extra buffer types (llama-bench --repack 0, "
                         "llama-server --no-repack): no AMX or interleaved-repack matmuls")
    ap.add_argument("--quick", action="store_true", help="Qwen2.5-0.5B Q4_0 only, 1 round")
    ap.add_argument("--serve-only", action="store_true", help="skip bandwidth, prefill and decode")
    args = ap.parse_args()
    if args.quick:
        args.shapes, args.types, args.rounds = ["qwen2.5-0.5b"], ["Q4_0"], 1
        args.serve_models = ["qwen2.5-0.5b-Q4_0"]
        args.requests_per_stream = 1

    os.makedirs(CACHE, exist_ok=True)
    names = ["build Kinfer", "build llama.cpp (once per version, cached)"]
    if not args.serve_only:
        names += ["write the models", "read bandwidth", "prefill and decode"]
    if args.serve_models:
        names += ["serving"]
    phases = Phases(names)
    ensure_python_packages()
    phases.next()
    kinfer, kinfer_bench = build_kinfer(args.jobs)
    phases.next()
    if args.llama_bin:
        llama = prebuilt_llama_cpp(args.llama_bin)
    else:
        llama = llama_cpp.locked_build(args.llama_cpp_python, args.jobs, amx=args.llama_amx)
    if args.llama_no_repack:
        llama["simd"] += "; run without extra buffer types (--repack 0 / --no-repack)"
    llama_bench = os.path.join(llama["bin_dir"], "llama-bench")
    llama_server = os.path.join(llama["bin_dir"], "llama-server")
    quantize = os.path.join(llama["bin_dir"], "llama-quantize")
    if not args.serve_only:
        phases.next(f"{len(args.shapes)} shapes x {len(args.types)} types")
    models = [] if args.serve_only else make_models(args.shapes, args.types, quantize)
    T = args.threads
    load = os.getloadavg()
    log(f"threads {T}; {os.cpu_count()} CPUs; load average {load}")
    header(args, T, load, llama, kinfer_bench, models)

    if args.serve_only:
        phases.next(f"{len(args.serve_models)} models x {len(args.levels)} levels")
        return serve(args, kinfer, llama_server, quantize, T)

    # This VM's bandwidth drifts by 10-20% within a run (other tenants), and a decode round is
    # a mean over its tokens, so each model's bound uses the bandwidth of its own moment: a
    # sample after every round, their median. The run's best sample gives a stricter bound too.
    phases.next()
    bw_samples = [stream_bandwidth(kinfer_bench, T)]
    log(f"read bandwidth {bw_samples[-1] / 1e9:.1f} GB/s")

    # Prefill and decode, alternated.
    rows = [["model", "size", f"prefill t/s Kinfer", "llama.cpp", "ratio", "decode t/s Kinfer",
             "llama.cpp", "ratio", "bandwidth GB/s", "bound t/s", "Kinfer/bound",
             "llama.cpp/bound", "Kinfer/best-sample bound", "Kinfer decode t/s per CPU-s",
             "its /bound"]]
    measured = []
    phases.next(f"{len(models)} models x {args.rounds} rounds x 2 tools")
    for m, (shape, typ, kpath, path) in enumerate(models):
        ms = model_shape(path)
        k_pp, k_tg, l_pp, l_tg, k_tg_cpu, bw_model = [], [], [], [], [], []
        for r in range(args.rounds):
            log(f"{shape} {typ} (model {m + 1}/{len(models)}): round {r + 1}/{args.rounds}")
            a, b = kinfer_pp_tg(kinfer_bench, kpath, T, args.prompt, args.decode)
            k_pp.append(a)
            k_tg.append(b)
            k_tg_cpu.append(getattr(kinfer_pp_tg, "decode_tps_cpu", None))
            a, b = llama_pp_tg(llama_bench, path, T, args.prompt, args.decode,
                               ["--repack", "0"] if args.llama_no_repack else [])
            l_pp.append(a)
            l_tg.append(b)
            bw_model.append(stream_bandwidth(kinfer_bench, T))
        med = lambda xs: statistics.median([x for x in xs if x is not None]) if any(
            x is not None for x in xs) else None
        kp, kt, lp, lt = med(k_pp), med(k_tg), med(l_pp), med(l_tg)
        bw_samples += bw_model
        measured.append((shape, typ, ms, kp, kt, lp, lt, med(k_tg_cpu), med(bw_model)))
        log(f"{shape} {typ}: prefill {kp} vs {lp}, decode {kt} vs {lt}, "
            f"bandwidth {med(bw_model) / 1e9:.1f} GB/s")
    best_bw = max(bw_samples)
    context = args.prompt + args.decode // 2
    for shape, typ, ms, kp, kt, lp, lt, kt_cpu, bw in measured:
        bound = bw / decode_bytes_per_token(ms, context)
        best_bound = best_bw / decode_bytes_per_token(ms, context)
        rows.append([f"{shape} {typ}", fmt(ms[3], "MiB"), fmt(kp), fmt(lp), ratio(kp, lp),
                     fmt(kt), fmt(lt), ratio(kt, lt), f"{bw / 1e9:.1f}", fmt(bound),
                     ratio(kt, bound), ratio(lt, bound), ratio(kt, best_bound), fmt(kt_cpu),
                     ratio(kt_cpu, bound)])
    print(f"\nread bandwidth (a sum over 1 GiB on {T} threads, read plainly and with software "
          f"prefetches as the decode kernels read, the fastest; each sample the best of 10 passes "
          f"each way; {len(bw_samples)} samples {', '.join(f'{b / 1e9:.1f}' for b in bw_samples)}"
          f" GB/s, best {fmt(best_bw, 'GB/s')}); decode bound = bandwidth / (2-D weight bytes + "
          f"f16 KV bytes at context {context}), with each model's bandwidth the median of the "
          f"samples taken after each of its rounds (\"bandwidth GB/s\"), and with the run's best "
          f"sample (\"best-sample bound\"). \"per CPU-s\": decode tokens x threads / Kinfer's "
          f"process CPU seconds, what it would do if each thread had its core; on a loaded "
          f"machine the bandwidth samples are low too, so its /bound can exceed 1")
    print_table(rows, f"prefill ({args.prompt}-token prompt) and decode ({args.decode} tokens, "
                      f"batch 1), median of {args.rounds} alternated rounds")
    load = os.getloadavg()
    print(f"\nload average after prefill/decode: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    mixes = [(f"{s} {t}", gguf_type_mix(p)) for s, t, _, p in models if t in QUANTIZE_TYPES]
    if mixes:
        print("\nllama-quantize's mixes (2-D weight bytes by type; K-quants need rows of 256, "
              "other tensors fall back):")
        for name, mix in mixes:
            print(f"- {name}: {mix}")

    if args.serve_models:
        phases.next(f"{len(args.serve_models)} models x {len(args.levels)} levels")
    return serve(args, kinfer, llama_server, quantize, T)


def header(args, T, load, llama, kinfer_bench, models):
    """Who ran where: the CPU, what each side compiled for, the machine's load."""
    cpu = llama["cpu"]
    k = json.loads(output([kinfer_bench, "--cpu-info"]))
    print(f"# Kinfer vs llama.cpp ({args.llama_cpp_python} sdist), {T} threads, "
          f"{time.strftime('%Y-%m-%d %H:%M')}\n")
    print(f"- CPU: {cpu['cpu']}, {os.cpu_count()} CPUs; usable: {cpu['features']}")
    print(f"- AMX: {'usable' if cpu['amx_usable'] else 'not usable'} ({cpu['amx_detail']})")
    print(f"- Kinfer: Highway target {k['kernels_target']} (chosen at run time)")
    print(f"- llama.cpp: {llama['simd']}")
    print(f"- load average at start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} "
          f"(other processes share this machine: compare ratios from one run)")
    sys.stdout.flush()


def serve(args, kinfer, llama_server, quantize, T):
    if not args.serve_models:
        return 0
    have_serve = kinfer_serve_available(kinfer)
    if not have_serve:
        log("`kinfer serve` with --kv-cache-memory is not in this build: Kinfer's serving "
            "columns are n/a")
    for name in args.serve_models:
        path = os.path.join(CACHE, "bench-models", f"{name}.gguf")
        if not os.path.exists(path):
            shape, typ = name.rsplit("-", 1)
            make_models([shape], [typ], quantize)
        ms = model_shape(path)
        layers, kv_heads, head_dim, _ = ms
        slots = max(args.levels)
        ctx = args.max_model_len
        kv_bytes = 2 * layers * kv_heads * head_dim * 2 * ctx * slots
        servers = []
        if have_serve:
            port = free_port()
            servers.append(("kinfer", [
                kinfer, "serve", "--model", path, "--host", "127.0.0.1", "--port", str(port),
                "--threads", str(T), "--max-num-seqs", str(slots), "--max-model-len", str(ctx),
                "--kv-cache-memory", str(kv_bytes), "--served-model-name", "default",
                "--no-access-log"], port, name))
        port = free_port()
        servers.append(("llama-server", [
            llama_server, "-m", path, "--host", "127.0.0.1", "--port", str(port), "-t", str(T),
            "-np", str(slots), "-c", str(ctx * slots), "--cont-batching", "--no-webui",
            "-cram", "0"] + (["--no-repack"] if args.llama_no_repack else []), port, name))
        results = serve_alternated(servers, "default", args.levels, args)
        results["llama"] = results.pop("llama-server")
        k, l = results.get("kinfer"), results["llama"]
        rows = [["streams", "out t/s Kinfer", "llama-server", "ratio", "TTFT p50 Kinfer",
                 "llama-server", "ratio", "TTFT p99 Kinfer", "llama-server", "ITL p50 Kinfer",
                 "llama-server", "ratio"]]
        for c in args.levels:
            kc = k[c] if k else {}
            lc = l[c]
            rows.append([c, fmt(kc.get("tokens_per_s")), fmt(lc["tokens_per_s"]),
                         ratio(kc.get("tokens_per_s"), lc["tokens_per_s"]),
                         fmt(kc.get("ttft_p50"), "ms"), fmt(lc["ttft_p50"], "ms"),
                         ratio(kc.get("ttft_p50"), lc["ttft_p50"]),
                         fmt(kc.get("ttft_p99"), "ms"), fmt(lc["ttft_p99"], "ms"),
                         fmt(kc.get("itl_p50"), "ms"), fmt(lc["itl_p50"], "ms"),
                         ratio(kc.get("itl_p50"), lc["itl_p50"])])
        print_table(rows, f"serving {name}: /v1/completions stream, {args.prompt_len}-token "
                          f"prompts, {args.max_tokens} tokens ignore_eos, {slots} slots x {ctx} "
                          f"context, {T} threads")
        print(f"\npeak RSS: Kinfer {fmt(k['peak_rss'] if k else None, 'MiB')}, llama-server "
              f"{fmt(l['peak_rss'], 'MiB')}, ratio {ratio(k['peak_rss'] if k else None, l['peak_rss'])}"
              f" (same {slots} x {ctx} f16 KV capacity, {fmt(kv_bytes, 'MiB')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
