#!/usr/bin/env python3
"""Writes random-weight GGUF files in the exact shapes of real models, for benchmarks.

Weight values do not change how fast a kernel runs, so the files hold N(0, 0.02) weights
quantized with the `gguf` package, and a synthetic byte-level vocabulary (every byte a token, one
merge, "zz", so a prompt of N letters without a double z is N tokens) padded with filler tokens to
the model's vocabulary size. Every 2-D weight is stored in the file's type ("pure"), norms in F32.

Type BF16 writes a pair holding the same weights: a Hugging Face checkpoint directory
<shape>-BF16-hf/ (config.json and model.safetensors in BF16, HF tensor names, as the hub serves
them) for Kinfer, and <shape>-BF16.gguf for llama.cpp, laid out as llama.cpp's
convert_hf_to_gguf.py lays out that checkpoint (GGUF names, Q/K rows permuted for arch llama,
norms and biases in F32: every value is the checkpoint's, exactly).

The mixed K-quant files users download (Q4_K_M, Q5_K_M, Q6_K) are not written here: bench/run.py
makes them from the F16 file with llama.cpp's own llama-quantize.

  python3 bench/make_models.py --out ~/.cache/kinfer/bench-models --shape qwen2.5-0.5b --type Q4_0
"""
import argparse
import json
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


def new_writer(path, shape, type_name, ftype):
    """A GGUFWriter with the model's metadata and byte-level vocabulary."""
    s = SHAPES[shape]
    head_dim = s.get("head_dim", s["hidden"] // s["heads"])
    arch = s["arch"]
    moe = s.get("moe")
    w = gguf.GGUFWriter(path, arch)
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
    if s["llama3_rope"]:
        w.add_tensor("rope_freqs.weight", llama3_freq_factors(s, head_dim))
    return w


def finish(w, path):
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    os.replace(path + ".tmp", path)


def layout(shape):
    """(HF name, GGUF name, shape) of every tensor, in the order both files store them; shape
    (n,) is a norm (ones) or a bias; (experts, rows, cols) a mixture-of-experts stack (GGUF only:
    no HF name)."""
    s = SHAPES[shape]
    head_dim = s.get("head_dim", s["hidden"] // s["heads"])
    moe = s.get("moe")
    H, F = s["hidden"], s["ffn"]
    qd, kvd = s["heads"] * head_dim, s["kv_heads"] * head_dim
    out = [("model.embed_tokens.weight", "token_embd.weight", (s["vocab"], H))]
    for l in range(s["layers"]):
        hp, gp = f"model.layers.{l}.", f"blk.{l}."
        out.append((hp + "input_layernorm.weight", gp + "attn_norm.weight", (H,)))
        out.append((hp + "self_attn.q_proj.weight", gp + "attn_q.weight", (qd, H)))
        out.append((hp + "self_attn.k_proj.weight", gp + "attn_k.weight", (kvd, H)))
        out.append((hp + "self_attn.v_proj.weight", gp + "attn_v.weight", (kvd, H)))
        if s["qkv_bias"]:
            out.append((hp + "self_attn.q_proj.bias", gp + "attn_q.bias", (qd,)))
            out.append((hp + "self_attn.k_proj.bias", gp + "attn_k.bias", (kvd,)))
            out.append((hp + "self_attn.v_proj.bias", gp + "attn_v.bias", (kvd,)))
        if s.get("qk_norm"):
            out.append((hp + "self_attn.q_norm.weight", gp + "attn_q_norm.weight", (head_dim,)))
            out.append((hp + "self_attn.k_norm.weight", gp + "attn_k_norm.weight", (head_dim,)))
        out.append((hp + "self_attn.o_proj.weight", gp + "attn_output.weight", (H, qd)))
        out.append((hp + "post_attention_layernorm.weight", gp + "ffn_norm.weight", (H,)))
        if moe:
            # The router (F32, as llama.cpp keeps it) and the experts' stacked weights.
            E = moe["experts"]
            out.append((None, gp + "ffn_gate_inp.weight", (E, H)))
            out.append((None, gp + "ffn_gate_exps.weight", (E, moe["ffn"], H)))
            out.append((None, gp + "ffn_up_exps.weight", (E, moe["ffn"], H)))
            out.append((None, gp + "ffn_down_exps.weight", (E, H, moe["ffn"])))
            continue
        out.append((hp + "mlp.gate_proj.weight", gp + "ffn_gate.weight", (F, H)))
        out.append((hp + "mlp.up_proj.weight", gp + "ffn_up.weight", (F, H)))
        out.append((hp + "mlp.down_proj.weight", gp + "ffn_down.weight", (H, F)))
    out.append(("model.norm.weight", "output_norm.weight", (H,)))
    return out


def values(rng, name, shape):
    if name.endswith("norm.weight"):
        return np.ones(shape, dtype=np.float32)
    return rng.standard_normal(shape, dtype=np.float32) * 0.02


def write(path, shape, type_name, seed=0):
    qtype, ftype = TYPES[type_name]
    rng = np.random.default_rng(seed)
    w = new_writer(path + ".tmp", shape, type_name, ftype)
    for _, name, dims in layout(shape):
        if len(dims) == 3:
            # One expert's quantized bytes repeated for every expert: the values do not change
            # the speed, and quantizing 128 experts' worth of random numbers would take minutes.
            one = gguf.quants.quantize(values(rng, name, dims[1:]), qtype)
            w.add_tensor(name, np.ascontiguousarray(np.broadcast_to(one, (dims[0],) + one.shape)),
                         raw_dtype=qtype)
            continue
        x = values(rng, name, dims)
        if len(dims) == 1 or name.endswith("ffn_gate_inp.weight"):
            w.add_tensor(name, x)
        else:
            w.add_tensor(name, gguf.quants.quantize(x, qtype), raw_dtype=qtype)
    finish(w, path)


def to_bf16(x):
    """float32 -> bfloat16 bits (uint16), rounding to nearest even."""
    u = x.view(np.uint32)
    return ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)


def permute_qk(w, n_head):
    """HF's rotate-half rows -> the interleaved pairs of GGUF arch llama (convert_hf_to_gguf)."""
    rows = w.shape[0]
    return w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def hf_config(shape):
    s = SHAPES[shape]
    c = {
        "architectures": ["LlamaForCausalLM" if s["arch"] == "llama" else "Qwen2ForCausalLM"],
        "model_type": s["arch"], "hidden_size": s["hidden"], "intermediate_size": s["ffn"],
        "num_hidden_layers": s["layers"], "num_attention_heads": s["heads"],
        "num_key_value_heads": s["kv_heads"], "head_dim": s["hidden"] // s["heads"],
        "vocab_size": s["vocab"], "max_position_embeddings": s["ctx"],
        "rms_norm_eps": s["eps"], "rope_theta": s["theta"], "tie_word_embeddings": True,
        "hidden_act": "silu", "torch_dtype": "bfloat16", "bos_token_id": s["bos"],
        "eos_token_id": s["eos"], "attention_bias": s["qkv_bias"],
    }
    if s["llama3_rope"]:
        r = s["llama3_rope"]
        c["rope_scaling"] = {"rope_type": "llama3", "factor": r["factor"],
                             "low_freq_factor": r["low"], "high_freq_factor": r["high"],
                             "original_max_position_embeddings": r["orig"]}
    return c


def write_bf16_pair(hf_dir, gguf_path, shape, seed=0):
    """The same BF16 weights as an HF checkpoint directory and as a GGUF."""
    s = SHAPES[shape]
    if s.get("moe"):
        raise SystemExit(f"{shape}: BF16 checkpoint pairs are written for dense shapes only")
    rng = np.random.default_rng(seed)
    tensors = layout(shape)
    header, offset = {}, 0
    for hf_name, _, dims in tensors:
        n = 2 * math.prod(dims)
        header[hf_name] = {"dtype": "BF16", "shape": list(dims), "data_offsets": [offset, offset + n]}
        offset += n
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)
    tmp_dir = hf_dir + ".tmp"
    os.makedirs(tmp_dir, exist_ok=True)
    with open(os.path.join(tmp_dir, "config.json"), "w") as f:
        json.dump(hf_config(shape), f, indent=2)
    w = new_writer(gguf_path + ".tmp", shape, "BF16", gguf.LlamaFileType.MOSTLY_BF16)
    with open(os.path.join(tmp_dir, "model.safetensors"), "wb") as f:
        f.write(len(head).to_bytes(8, "little") + head)
        for hf_name, name, dims in tensors:
            bits = to_bf16(values(rng, name, dims))
            f.write(bits.tobytes())
            if s["arch"] == "llama" and ("attn_q." in name or "attn_k." in name):
                bits = permute_qk(bits, s["heads"] if "attn_q." in name else s["kv_heads"])
            if len(dims) == 1:  # norms and biases: F32 in the GGUF, the same values
                w.add_tensor(name, (bits.astype(np.uint32) << 16).view(np.float32))
            else:
                w.add_tensor(name, bits, raw_dtype=gguf.GGMLQuantizationType.BF16)
    finish(w, gguf_path)
    os.replace(tmp_dir, hf_dir)


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
            hf_dir = os.path.join(args.out, f"{shape}-{t}-hf")
            if os.path.exists(path) and (t != "BF16" or os.path.isdir(hf_dir)):
                print(f"have {path}", flush=True)
                continue
            if t == "BF16":
                print(f"writing {hf_dir} and {path} (same weights)", flush=True)
                write_bf16_pair(hf_dir, path, shape)
            else:
                print(f"writing {path}", flush=True)
                write(path, shape, t)
    return 0


if __name__ == "__main__":
    sys.exit(main())
