#!/usr/bin/env python3
"""Kinfer's CUDA backend against llama.cpp's CUDA build on the same GPU, in one run.

  1. prefill (512-token prompt) and batch-1 decode tokens/s: `kinfer_bench --device cuda` and
     `llama-bench -ngl 99`, alternated, on random-weight GGUF files in the exact shapes of
     Qwen2.5-0.5B and Llama-3.2-1B (bench/make_models.py), F16 and Q4_0;
  2. streaming throughput at 1/16/64 concurrent streams: `kinfer serve --device cuda` and
     `llama-server -ngl 99` with the same slots and context, each level on each server in turn
     (bench/run.py's load test: /v1/completions, stream, ignore_eos).

Ratios are Kinfer / llama.cpp (above 1: Kinfer faster). llama.cpp columns are n/a when its
binaries are not given. This runs where the GPU is; nothing here builds anything.

  python3 bench/cuda_bench.py --kinfer build/cuda/src/kinfer \\
      --kinfer-bench build/cuda/bench/kinfer_bench --llama-bench .../llama-bench \\
      --llama-server .../llama-server --models ~/.cache/kinfer/bench-models
"""
import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as kb  # noqa: E402  (bench/run.py: load test, servers, tables)


def median(xs):
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    n = len(xs)
    return xs[n // 2] if n % 2 else 0.5 * (xs[n // 2 - 1] + xs[n // 2])


def kinfer_pp_tg(kinfer_bench, path, p, n):
    out = kb.output([kinfer_bench, "--model", path, "--device", "cuda", "-p", str(p), "-n", str(n),
                     "-r", "1"], timeout=600)
    j = json.loads(out.strip().splitlines()[-1])
    return j["prefill_tps"], j["decode_tps"]


def llama_pp_tg(llama_bench, path, p, n):
    out = kb.output([llama_bench, "-m", path, "-ngl", "99", "-p", str(p), "-n", str(n), "-r", "1",
                     "-o", "json"], timeout=600)
    pp = tg = None
    for row in json.loads(out):
        if row.get("n_prompt", 0) > 0 and row.get("n_gen", 0) == 0:
            pp = row["avg_ts"]
        elif row.get("n_gen", 0) > 0 and row.get("n_prompt", 0) == 0:
            tg = row["avg_ts"]
    return pp, tg


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kinfer", required=True)
    ap.add_argument("--kinfer-bench", required=True)
    ap.add_argument("--llama-bench")
    ap.add_argument("--llama-server")
    ap.add_argument("--models", required=True, help="folder of <shape>-<type>.gguf files")
    ap.add_argument("--shapes", nargs="+", default=["qwen2.5-0.5b", "llama-3.2-1b"])
    ap.add_argument("--types", nargs="+", default=["F16", "Q4_0"])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--prompt", type=int, default=512)
    ap.add_argument("--decode", type=int, default=128)
    ap.add_argument("--serve-models", nargs="*", default=["qwen2.5-0.5b-Q4_0"])
    ap.add_argument("--levels", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--requests-per-stream", type=int, default=2)
    ap.add_argument("--prompt-len", type=int, default=128)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--max-model-len", type=int, default=512)
    ap.add_argument("--json", help="write every number here too")
    args = ap.parse_args()
    have_llama = bool(args.llama_bench and os.path.exists(args.llama_bench))
    results = {"speed": {}, "serve": {}}

    rows = [["model", "prefill t/s Kinfer", "llama.cpp", "ratio", "decode t/s Kinfer", "llama.cpp",
             "ratio"]]
    for shape in args.shapes:
        for t in args.types:
            name = f"{shape}-{t}"
            path = os.path.join(args.models, f"{name}.gguf")
            if not os.path.exists(path):
                kb.log(f"missing {path}: skipped")
                continue
            kp, kt, lp, lt = [], [], [], []
            for _ in range(args.rounds):  # alternated, so both see the same machine
                try:
                    a, b = kinfer_pp_tg(args.kinfer_bench, path, args.prompt, args.decode)
                    kp.append(a), kt.append(b)
                except Exception as e:  # noqa: BLE001  report and go on
                    kb.log(f"kinfer_bench {name}: {e}")
                if have_llama:
                    try:
                        a, b = llama_pp_tg(args.llama_bench, path, args.prompt, args.decode)
                        lp.append(a), lt.append(b)
                    except Exception as e:  # noqa: BLE001
                        kb.log(f"llama-bench {name}: {e}")
            r = dict(kinfer_prefill=median(kp), kinfer_decode=median(kt),
                     llama_prefill=median(lp), llama_decode=median(lt), rounds=args.rounds)
            results["speed"][name] = r
            rows.append([name, kb.fmt(r["kinfer_prefill"]), kb.fmt(r["llama_prefill"]),
                         kb.ratio(r["kinfer_prefill"], r["llama_prefill"]),
                         kb.fmt(r["kinfer_decode"]), kb.fmt(r["llama_decode"]),
                         kb.ratio(r["kinfer_decode"], r["llama_decode"])])
    kb.print_table(rows, f"GPU prefill ({args.prompt} tokens) and decode ({args.decode} tokens, "
                         f"batch 1), median of {args.rounds} alternated rounds")

    for name in args.serve_models:
        path = os.path.join(args.models, f"{name}.gguf")
        if not os.path.exists(path):
            continue
        slots, ctx = max(args.levels), args.max_model_len
        servers = []
        port = kb.free_port()
        servers.append(("kinfer", [
            args.kinfer, "serve", "--model", path, "--device", "cuda", "--host", "127.0.0.1",
            "--port", str(port), "--max-num-seqs", str(slots), "--max-model-len", str(ctx),
            "--served-model-name", "default", "--no-access-log"], port, name))
        if args.llama_server and os.path.exists(args.llama_server):
            port = kb.free_port()
            servers.append(("llama-server", [
                args.llama_server, "-m", path, "-ngl", "99", "--host", "127.0.0.1", "--port",
                str(port), "-np", str(slots), "-c", str(ctx * slots), "--cont-batching",
                "--no-webui", "-cram", "0"], port, name))
        try:
            res = kb.serve_alternated(servers, "default", args.levels, args)
        except Exception as e:  # noqa: BLE001
            kb.log(f"serving {name}: {e}")
            continue
        results["serve"][name] = res
        k, l = res.get("kinfer", {}), res.get("llama-server", {})
        rows = [["streams", "out t/s Kinfer", "llama-server", "ratio", "TTFT p50 Kinfer",
                 "llama-server", "ITL p50 Kinfer", "llama-server"]]
        for c in args.levels:
            kc, lc = k.get(c, {}), l.get(c, {})
            rows.append([c, kb.fmt(kc.get("tokens_per_s")), kb.fmt(lc.get("tokens_per_s")),
                         kb.ratio(kc.get("tokens_per_s"), lc.get("tokens_per_s")),
                         kb.fmt(kc.get("ttft_p50"), "ms"), kb.fmt(lc.get("ttft_p50"), "ms"),
                         kb.fmt(kc.get("itl_p50"), "ms"), kb.fmt(lc.get("itl_p50"), "ms")])
        kb.print_table(rows, f"GPU serving {name}: {args.prompt_len}-token prompts, "
                             f"{args.max_tokens} tokens, {slots} slots x {ctx} context")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
