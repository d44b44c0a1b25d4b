#!/usr/bin/env python3
"""Writes random-weight GGUF files in the exact shapes of real models, for benchmarks.

Weight values do not change how fast a kernel runs, so the files hold N(0, 0.02) weights
quantized with the `gguf` package, and a synthetic byte-level vocabulary (every byte a token, one
merge, "zz", so a prompt of N letters without a double z is N tokens) padded with filler tokens to the model's
vocabulary size. Every 2-D weight is stored in the file's type ("pure"), norms in F32.

  python3 bench/make_models.py --out ~/.cache/kinfer/bench-models --shape qwen2.5-0.5b --type Q4_0
"""
import argparse
import math
import os
import sys

import numpy as np

import gguf

SHAPES = {
    # Qwen/Qwen2.5-0.5B config.json
    "qwen2.5-0.5b": dict(arch="qwen2", hidden=896, layers=24, heads=14, kv_heads=2, ffn=4864,
                         vocab=151936, ctx=32768, theta=1000000.0, eps=1e-6, qkv_bias=True,
                         bos=151643, eos=151643, pre="qwen2", llama3_rope=None),
    # meta-llama/Llama-3.2-1B config.json
    "llama-3.2-1b": dict(arch="llama", hidden=2048, layers=16, heads=32, kv_heads=8, ffn=8192,
                         vocab=128256, ctx=131072, theta=500000.0, eps=1e-5, qkv_bias=False,
                         bos=128000, eos=128001, pre="llama-bpe",
                         llama3_rope=dict(factor=32.0, low=1.0, high=4.0, orig=8192)),
    # Qwen/Qwen3-30B-A3B config.json with 6 of its 48 layers (to fit this machine's memory):
    # the same 128 experts, top 8, expert width 768, head_dim 128, QK-norm, vocabulary.
    "qwen3-30b-a3b-6l": dict(arch="qwen3moe", hidden=2048, layers=6, heads=32, kv_heads=4,
                             head_dim=128, ffn=6144, vocab=151936, ctx=40960, theta=1000000.0,
                             eps=1e-6, qkv_bias=False, qk_norm=True, bos=151643, eos=151645,
                             pre="qwen2", llama3_rope=None,
                             moe=dict(experts=128, used=8, ffn=768)),
}

TYPES = {
    "F16": (gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
    "BF16": (gguf.GGMLQuantizationType.BF16, gguf.LlamaFileType.MOSTLY_BF16),
    "Q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
    "Q4_0": (gguf.GGMLQuantizationType.Q4_0, gguf.LlamaFileType.MOSTLY_Q4_0),
    "Q4_1": (gguf.GGMLQuantizationType.Q4_1, gguf.LlamaFileType.MOSTLY_Q4_1),
}


def byte_tokens():
    """GPT-2's byte-to-unicode map: the 256 single-byte tokens of a byte-level BPE vocab."""
    bs = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return [chr(c) for _, c in sorted(zip(bs, cs))]


def llama3_freq_factors(s, head_dim):
    r = s["llama3_rope"]
    out = []
    for i in range(0, head_dim, 2):
        freq = 1.0 / (s["theta"] ** (i / head_dim))
        wavelen = 2 * math.pi / freq
        low_wl, high_wl = r["orig"] / r["low"], r["orig"] / r["high"]
        if wavelen < high_wl:
            out.append(1.0)
        elif wavelen > low_wl:
            out.append(r["factor"])
        else:
            smooth = (r["orig"] / wavelen - r["low"]) / (r["high"] - r["low"])
            out.append(1.0 / ((1 - smooth) / r["factor"] + smooth))
    return np.array(out, dtype=np.float32)


def write(path, shape, type_name, seed=0):
    s = SHAPES[shape]
    qtype, ftype = TYPES[type_name]
    rng = np.random.default_rng(seed)
    head_dim = s.get("head_dim", s["hidden"] // s["heads"])
    arch = s["arch"]
    moe = s.get("moe")
    w = gguf.GGUFWriter(path + ".tmp", arch)
    w.add_name(f"random-{shape}-{type_name}")
    w.add_file_type(int(ftype))
    w.add_context_length(s["ctx"])
    w.add_embedding_length(s["hidden"])
    w.add_block_count(s["layers"])
    w.add_feed_forward_length(s["ffn"])
    w.add_head_count(s["heads"])
    w.add_head_count_kv(s["kv_heads"])
    w.add_rope_freq_base(s["theta"])
    w.add_layer_norm_rms_eps(s["eps"])
    w.add_rope_dimension_count(head_dim)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    if moe:
        w.add_expert_count(moe["experts"])
        w.add_expert_used_count(moe["used"])
        w.add_expert_feed_forward_length(moe["ffn"])
    if arch == "llama":
        w.add_vocab_size(s["vocab"])

    # Tokenizer: 256 byte tokens, specials at the real ids, fillers elsewhere.
    toks = byte_tokens()
    tokens, types = [], []
    specials = {s["bos"]: "<|bos|>", s["eos"]: "<|eos|>"}
    for i in range(s["vocab"]):
        if i == 256:  # llama.cpp refuses a BPE vocab without merges: one merge, "z"+"z"
            tokens.append("zz")
            types.append(gguf.TokenType.NORMAL)
        elif i < 256:
            tokens.append(toks[i])
            types.append(gguf.TokenType.NORMAL)
        elif i in specials:
            tokens.append(specials[i])
            types.append(gguf.TokenType.CONTROL)
        else:
            tokens.append(f"<|filler_{i}|>")
            types.append(gguf.TokenType.USER_DEFINED)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(s["pre"])
    w.add_token_list(tokens)
    w.add_token_types(types)
    w.add_token_merges(["z z"])
    w.add_bos_token_id(s["bos"])
    w.add_eos_token_id(s["eos"])
    w.add_add_bos_token(arch == "llama")

    def mat(name, rows, cols):
        x = rng.standard_normal((rows, cols), dtype=np.float32) * 0.02
        data = gguf.quants.quantize(x, qtype)
        w.add_tensor(name, data, raw_dtype=qtype)

    def experts(name, rows, cols):
        # One expert's quantized bytes repeated for every expert: the values do not change the
        # speed, and quantizing 128 experts' worth of random numbers would take minutes.
        x = rng.standard_normal((rows, cols), dtype=np.float32) * 0.02
        one = gguf.quants.quantize(x, qtype)
        w.add_tensor(name, np.ascontiguousarray(np.broadcast_to(one, (moe["experts"],) + one.shape)),
                     raw_dtype=qtype)

    def vec(name, n, value=None):
        x = np.ones(n, dtype=np.float32) if value is None else value
        w.add_tensor(name, x)

    H, F = s["hidden"], s["ffn"]
    qd, kvd = s["heads"] * head_dim, s["kv_heads"] * head_dim
    mat("token_embd.weight", s["vocab"], H)
    if s["llama3_rope"]:
        vec("rope_freqs.weight", head_dim // 2, llama3_freq_factors(s, head_dim))
    for l in range(s["layers"]):
        p = f"blk.{l}."
        vec(p + "attn_norm.weight", H)
        mat(p + "attn_q.weight", qd, H)
        mat(p + "attn_k.weight", kvd, H)
        mat(p + "attn_v.weight", kvd, H)
        if s["qkv_bias"]:
            vec(p + "attn_q.bias", qd, rng.standard_normal(qd, dtype=np.float32) * 0.02)
            vec(p + "attn_k.bias", kvd, rng.standard_normal(kvd, dtype=np.float32) * 0.02)
            vec(p + "attn_v.bias", kvd, rng.standard_normal(kvd, dtype=np.float32) * 0.02)
        if s.get("qk_norm"):
            vec(p + "attn_q_norm.weight", head_dim)
            vec(p + "attn_k_norm.weight", head_dim)
        mat(p + "attn_output.weight", H, qd)
        vec(p + "ffn_norm.weight", H)
        if moe:
            # The router decides which experts run: random, F32 as llama.cpp keeps it.
            vec(p + "ffn_gate_inp.weight", None,
                rng.standard_normal((moe["experts"], H), dtype=np.float32) * 0.02)
            experts(p + "ffn_gate_exps.weight", moe["ffn"], H)
            experts(p + "ffn_up_exps.weight", moe["ffn"], H)
            experts(p + "ffn_down_exps.weight", H, moe["ffn"])
            continue
        mat(p + "ffn_gate.weight", F, H)
        mat(p + "ffn_up.weight", F, H)
        mat(p + "ffn_down.weight", H, F)
    vec("output_norm.weight", H)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(path + ".tmp", path)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--shape", choices=sorted(SHAPES), action="append", required=True)
    ap.add_argument("--type", choices=sorted(TYPES), action="append", required=True)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for shape in args.shape:
        for t in args.type:
            path = os.path.join(args.out, f"{shape}-{t}.gguf")
            if os.path.exists(path):
                print(f"have {path}", flush=True)
                continue
            print(f"writing {path}", flush=True)
            write(path, shape, t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
