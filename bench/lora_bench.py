#!/usr/bin/env python3
"""Multi-LoRA serving: decode throughput of 16 streams spread over 4 adapters against all 16 on
the base model, in Kinfer and in llama-server serving the same GGUF LoRA files, in one run.

  python3 bench/lora_bench.py                 # Qwen2.5-0.5B Q4_0, 4 adapters of rank 16 on
                                              # every projection, 16 streams, 3 rounds
  python3 bench/lora_bench.py --targets q v   # PEFT's default targets
  python3 bench/lora_bench.py --help

  # Where AMX is usable, llama.cpp's AMX kernels need the clang build bench/llama_cpp.py makes
  # (GCC 12 drops their tile config); with a GCC-built llama-server pass --llama-args=-nr (no
  # AMX, no repacked Q4_0), which slows it. The fair run on this team's machine (2026-11-27):
  python3 bench/lora_bench.py --threads 2 --rounds 3 --max-tokens 64 --llama-server
      ~/.cache/kinfer/llama.cpp-0.3.36/build-native-clang-*/bin/llama-server   # (one line)

1. builds Kinfer (release) and llama-server (as bench/run.py, from the llama-cpp-python sdist,
   under flock ~/.cache/kinfer/llama.cpp.lock so parallel checkouts share one build);
2. writes the random-weight model (bench/make_models.py) and 4 random LoRA adapters in llama.cpp's
   GGUF LoRA format (f16, alpha = 2 * rank) into ~/.cache/kinfer/bench-models;
3. starts `kinfer serve --lora-modules lora0=... lora3=...` and `llama-server --lora ... x4
   --lora-init-without-apply` (requests pick theirs with "lora": [{"id": i, "scale": 1}]), both
   with the same threads, 16 slots and context;
4. alternates, round by round, on each server: 16 concurrent streams all on the base model, and
   16 streams spread 4 per adapter (/v1/completions, stream, 32-token prompts, --max-tokens
   ignore_eos). Decode rate = output tokens after each stream's first token / the time from
   the first stream's first token to the last stream's last token, per scenario.

Prints the medians, the ratio adapters / base per server (the issue's goal: >= 0.85 for Kinfer)
and Kinfer / llama-server. The machine is shared: compare ratios from one run, never absolute
rates across runs; the load average is printed with the results.
"""
import argparse
import asyncio
import fcntl
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as bench  # noqa: E402  (bench/run.py: builds, servers, streaming client)

CACHE = bench.CACHE
SHAPE_DIMS = {  # (hidden, ffn, layers, heads, kv_heads, arch) of bench/make_models.py's shapes
    "qwen2.5-0.5b": (896, 4864, 24, 14, 2, "qwen2"),
    "llama-3.2-1b": (2048, 8192, 16, 32, 8, "llama"),
}
TARGETS = {  # PEFT name -> (GGUF name, in, out) as functions of the shape
    "q": ("attn_q", lambda h, f, hd, nh, nkv: (h, nh * hd)),
    "k": ("attn_k", lambda h, f, hd, nh, nkv: (h, nkv * hd)),
    "v": ("attn_v", lambda h, f, hd, nh, nkv: (h, nkv * hd)),
    "o": ("attn_output", lambda h, f, hd, nh, nkv: (nh * hd, h)),
    "gate": ("ffn_gate", lambda h, f, hd, nh, nkv: (h, f)),
    "up": ("ffn_up", lambda h, f, hd, nh, nkv: (h, f)),
    "down": ("ffn_down", lambda h, f, hd, nh, nkv: (f, h)),
}


def write_adapter(path, shape, targets, rank, seed):
    import gguf
    hidden, ffn, layers, heads, kv_heads, arch = SHAPE_DIMS[shape]
    hd = hidden // heads
    rng = np.random.default_rng(seed)
    w = gguf.GGUFWriter(path, arch)
    w.add_string("general.type", "adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", float(2 * rank))
    for layer in range(layers):
        for t in targets:
            name, dims = TARGETS[t]
            n_in, n_out = dims(hidden, ffn, hd, heads, kv_heads)
            a = (rng.standard_normal((rank, n_in)) / np.sqrt(n_in)).astype(np.float16)
            b = (rng.standard_normal((n_out, rank)) * 0.01).astype(np.float16)
            w.add_tensor(f"blk.{layer}.{name}.weight.lora_a", a)
            w.add_tensor(f"blk.{layer}.{name}.weight.lora_b", b)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


async def one_stream(port, model, prompt, max_tokens, extra):
    """bench.stream_completion with extra fields: (absolute first, absolute last, tokens)."""
    import json
    body = {"model": model, "prompt": prompt, "max_tokens": max_tokens, "temperature": 0,
            "stream": True, "ignore_eos": True, "stream_options": {"include_usage": True}, **extra}
    data = json.dumps(body).encode()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                 b"Content-Type: application/json\r\nAccept: text/event-stream\r\n"
                 b"Connection: close\r\n" + f"Content-Length: {len(data)}\r\n\r\n".encode() + data)
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode(errors="replace")
    if head.split(" ", 2)[1] != "200":
        raise RuntimeError(f"{head.splitlines()[0]}: {(await reader.read(500))!r}")
    times, usage, buf = [], None, b""
    while True:
        chunk = await reader.read(65536)
        if not chunk:
            break
        now = time.perf_counter()
        buf += chunk
        while b"\n\n" in buf:
            event, buf = buf.split(b"\n\n", 1)
            for line in event.split(b"\n"):
                line = line.strip()
                if line.endswith(b"\r"):
                    line = line[:-1]
                if b"data:" not in line:
                    continue
                payload = line[line.index(b"data:") + 5:].strip()
                if payload == b"[DONE]":
                    continue
                try:
                    j = json.loads(payload)
                except ValueError:
                    continue
                if j.get("usage"):
                    usage = j["usage"].get("completion_tokens")
                if j.get("choices") and (j["choices"][0].get("text") or
                                         j["choices"][0].get("finish_reason") is None):
                    times.append(now)
    writer.close()
    if not times:
        raise RuntimeError("stream carried no tokens")
    return times[0], times[-1], usage or len(times)


def cpu_seconds(pid):
    """User + system CPU time of a process and its threads."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_models(port, timeout=600):
    """Until GET /v1/models answers 200: both servers answer /health before the model is in."""
    import urllib.error
    import urllib.request
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.5)
    raise RuntimeError(f"port {port}: /v1/models not ready after {timeout}s")


async def scenario(port, model_for, extra_for, streams, max_tokens, first):
    ps = bench.prompts(streams, 32, first)
    res = await asyncio.gather(*(one_stream(port, model_for(i), ps[i], max_tokens, extra_for(i))
                                 for i in range(streams)))
    start = min(r[0] for r in res)
    end = max(r[1] for r in res)
    decoded = sum(r[2] - 1 for r in res)
    return decoded / (end - start), sum(r[2] for r in res)


def complete(port, model, prompt, max_tokens, extra):
    """(text, its logprobs as JSON text) of one greedy, non-streamed /v1/completions request."""
    import json
    import urllib.request
    body = json.dumps({"model": model, "prompt": prompt, "max_tokens": max_tokens,
                       "temperature": 0, "logprobs": 1, **extra}).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{port}/v1/completions", data=body,
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=600) as r:
        choice = json.loads(r.read())["choices"][0]
    return choice["text"], json.dumps(choice.get("logprobs"), sort_keys=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--model", default="qwen2.5-0.5b-Q4_0", help="<shape>-<type> of make_models")
    ap.add_argument("--adapters", type=int, default=4)
    ap.add_argument("--rank", type=int, default=16)
    ap.add_argument("--targets", nargs="+", default=list(TARGETS), choices=list(TARGETS))
    ap.add_argument("--streams", type=int, default=16)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--llama-cpp-python", default=bench.LLAMA_CPP_PYTHON_VERSION)
    ap.add_argument("--no-llama", action="store_true", help="Kinfer only")
    ap.add_argument("--llama-args", default="", help="extra llama-server flags, one string "
                    "(e.g. \"-nr\": no AMX/repacked weights where its AMX kernels crash)")
    ap.add_argument("--llama-server", help="a llama-server binary to use instead of building one "
                    "(no wait on the build lock while someone else builds llama.cpp)")
    args = ap.parse_args()
    os.makedirs(CACHE, exist_ok=True)
    bench.ensure_python_packages()
    kinfer, _ = bench.build_kinfer(args.jobs)
    llama_server = None
    if args.llama_server and not args.no_llama:
        llama_server = args.llama_server
    elif not args.no_llama:
        with open(os.path.join(CACHE, "llama.cpp.lock"), "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # one build, shared by every checkout
            _, llama_server = bench.build_llama_cpp(args.llama_cpp_python, args.jobs)
    shape, typ = args.model.rsplit("-", 1)
    path = os.path.join(CACHE, "bench-models", f"{args.model}.gguf")
    if not os.path.exists(path):
        bench.make_models([shape], [typ])
    tag = f"{shape}-r{args.rank}-{'-'.join(args.targets)}"
    adapters = []
    for i in range(args.adapters):
        p = os.path.join(CACHE, "bench-models", f"lora-{tag}-{i}.gguf")
        if not os.path.exists(p):
            bench.log(f"writing {p}")
            write_adapter(p + ".tmp", shape, args.targets, args.rank, seed=100 + i)
            os.replace(p + ".tmp", p)
        adapters.append(p)
    T, S = args.threads, args.streams
    ctx = 256
    layers, kv_heads, head_dim, _ = bench.model_shape(path)
    kv_bytes = 2 * layers * kv_heads * head_dim * 2 * ctx * S
    servers = []
    port = bench.free_port()
    servers.append(bench.Server("kinfer", [
        kinfer, "serve", "--model", path, "--host", "127.0.0.1", "--port", str(port),
        "--threads", str(T), "--max-num-seqs", str(S), "--max-model-len", str(ctx),
        "--kv-cache-memory", str(kv_bytes), "--served-model-name", "base", "--no-access-log",
        "--max-loras", str(args.adapters), "--max-lora-rank", str(args.rank),
        "--lora-modules", *[f"lora{i}={p}" for i, p in enumerate(adapters)]],
        port, os.path.join(CACHE, "bench-lora-kinfer.log")))
    if llama_server:
        port = bench.free_port()
        cmd = [llama_server, "-m", path, "--host", "127.0.0.1", "--port", str(port), "-t", str(T),
               "-np", str(S), "-c", str(ctx * S), "--cont-batching", "--no-webui", "-cram", "0",
               "--lora-init-without-apply"]
        for p in adapters:
            cmd += ["--lora", p]
        cmd += args.llama_args.split()
        servers.append(bench.Server("llama-server", cmd, port,
                                    os.path.join(CACHE, "bench-lora-llama.log")))
    A = args.adapters
    scenarios = {
        "kinfer": {
            "base": (lambda i: "base", lambda i: {}),
            "lora": (lambda i: f"lora{i % A}", lambda i: {}),
        },
        "llama-server": {
            "base": (lambda i: "base", lambda i: {}),
            "lora": (lambda i: "base", lambda i: {"lora": [{"id": i % A, "scale": 1.0}]}),
        },
    }
    results = {s.name: {"base": [], "lora": []} for s in servers}
    # Tokens per CPU-second of the server process: what other processes' load disturbs least.
    cpu_results = {s.name: {"base": [], "lora": []} for s in servers}
    try:
        for s in servers:
            s.wait_ready()
            wait_models(s.port)
        # Each server really applies the adapters: on adapter 0 the greedy tokens' logprobs
        # differ from the base model's (the adapters are random, their B non-zero; the random
        # model's greedy text itself often does not change).
        probe = bench.prompts(1, 32, 10**6)[0]
        texts = {}
        for s in servers:
            (mb, eb), (ml, el) = scenarios[s.name]["base"], scenarios[s.name]["lora"]
            base, lora = (complete(s.port, mb(0), probe, 4, eb(0)),
                          complete(s.port, ml(0), probe, 4, el(0)))
            texts[s.name] = (base[0], lora[0])
            bench.log(f"{s.name}: adapter 0 changes the greedy text: {base[0] != lora[0]}, "
                      f"its logprobs: {base[1] != lora[1]}")
            if base == lora:
                raise RuntimeError(f"{s.name} gave the base model's output for adapter 0")
        if len(texts) == 2:
            a, b = texts.values()
            bench.log(f"same greedy text on both servers: base {a[0] == b[0]}, "
                      f"adapter 0 {a[1] == b[1]}")
        load_before = os.getloadavg()
        first = 10**5
        for s in servers:  # warm-up, not counted
            for kind, (m, e) in scenarios[s.name].items():
                asyncio.run(scenario(s.port, m, e, A, 8, first))
                first += A
        for r in range(args.rounds):
            for s in servers:
                for kind, (m, e) in scenarios[s.name].items():
                    cpu0 = cpu_seconds(s.proc.pid)
                    rate, tokens = asyncio.run(scenario(s.port, m, e, S, args.max_tokens, first))
                    per_cpu = tokens / (cpu_seconds(s.proc.pid) - cpu0)
                    first += S
                    results[s.name][kind].append(rate)
                    cpu_results[s.name][kind].append(per_cpu)
                    bench.log(f"round {r + 1}: {s.name} {kind}: {rate:.1f} decode tokens/s, "
                              f"{per_cpu:.1f} tokens per CPU-second")
        load_after = os.getloadavg()
    finally:
        for s in servers:
            s.stop()

    med = {n: {k: statistics.median(v) for k, v in d.items()} for n, d in results.items()}
    cmed = {n: {k: statistics.median(v) for k, v in d.items()} for n, d in cpu_results.items()}
    print(f"# Multi-LoRA decode, {args.model}, {A} adapters (rank {args.rank}, "
          f"{'/'.join(args.targets)}, f16), {S} streams, {args.max_tokens} tokens, {T} threads, "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    print(f"load average before {load_before[0]:.2f}, after {load_after[0]:.2f} "
          f"({os.cpu_count()} CPUs); medians of {args.rounds} alternated rounds")
    if llama_server:
        print(f"llama-server: {llama_server} {args.llama_args}")
    print()
    rows = [["server", "all on base t/s", f"{S} over {A} adapters t/s", "adapters / base",
             "rounds (base | adapters)"]]
    for n, d in med.items():
        rows.append([n, bench.fmt(d["base"]), bench.fmt(d["lora"]),
                     bench.ratio(d["lora"], d["base"]),
                     " ".join(f"{x:.1f}" for x in results[n]["base"]) + " | " +
                     " ".join(f"{x:.1f}" for x in results[n]["lora"])])
    bench.print_table(rows, "decode tokens/s (wall clock, from the first stream's first token)")
    rows = [["server", "all on base", f"{S} over {A} adapters", "adapters / base",
             "rounds (base | adapters)"]]
    for n, d in cmed.items():
        rows.append([n, bench.fmt(d["base"]), bench.fmt(d["lora"]),
                     bench.ratio(d["lora"], d["base"]),
                     " ".join(f"{x:.1f}" for x in cpu_results[n]["base"]) + " | " +
                     " ".join(f"{x:.1f}" for x in cpu_results[n]["lora"])])
    bench.print_table(rows, "output tokens per CPU-second of the server (prefill included)")
    if "llama-server" in med:
        print(f"\nKinfer / llama-server, wall clock: base "
              f"{bench.ratio(med['kinfer']['base'], med['llama-server']['base'])}, with adapters "
              f"{bench.ratio(med['kinfer']['lora'], med['llama-server']['lora'])}; per CPU-second: "
              f"base {bench.ratio(cmed['kinfer']['base'], cmed['llama-server']['base'])}, with "
              f"adapters {bench.ratio(cmed['kinfer']['lora'], cmed['llama-server']['lora'])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
