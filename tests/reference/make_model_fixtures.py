#!/usr/bin/env python3
"""Regenerate tests/fixtures/models/: tiny random-weight decoder models.

For each model: HF checkpoint (save_pretrained), GGUF conversions in several
tensor types (tests/reference/gguf_convert.py), and reference logits for every
position of fixed token sequences, plus reference.json describing them.

Run from the repo root:  python3 tests/reference/make_model_fixtures.py
Deterministic: fixed torch/numpy seeds, single-threaded CPU float32.
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import re
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gguf_convert  # noqa: E402
import kquants  # noqa: E402

import transformers  # noqa: E402
from transformers import (  # noqa: E402
    AutoConfig,
    AutoModelForCausalLM,
    Gemma2Config,
    Gemma3TextConfig,
    LlamaConfig,
    MistralConfig,
    MixtralConfig,
    Phi3Config,
    Qwen2Config,
    Qwen3Config,
    Qwen3MoeConfig,
)

ROOT = HERE.parent.parent
OUT = ROOT / "tests" / "fixtures" / "models"

CONFIG_CLASSES = {
    "LlamaForCausalLM": LlamaConfig,
    "MistralForCausalLM": MistralConfig,
    "Qwen2ForCausalLM": Qwen2Config,
    "Qwen3ForCausalLM": Qwen3Config,
    "Gemma2ForCausalLM": Gemma2Config,
    "Gemma3ForCausalLM": Gemma3TextConfig,
    "Phi3ForCausalLM": Phi3Config,
    "Qwen3MoeForCausalLM": Qwen3MoeConfig,
    "MixtralForCausalLM": MixtralConfig,
}
TORCH_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}

SMALL_TYPES = ["f32", "f16", "q8_0", "q4_0", "q4_1"]
# Size budget (tests/fixtures must stay well under 3 MB): only `llama` keeps
# an f32 GGUF. Every GGUF reference is exact for the dequantized weights, so an
# f32 file adds only the F32-weight loader path, which llama covers. mistral's
# f16 GGUF stores its (f16) HF values exactly, qwen2's (bf16) within 2e-7.
# llama3 keeps only q8_0. The f32 conversion is still made and checked for
# every model (f32 GGUF reference == hf reference), just not kept.
NO_F32_TYPES = ["f16", "q8_0", "q4_0", "q4_1"]

MODELS = [
    dict(
        name="llama", arch="LlamaForCausalLM", seed=101,
        config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, vocab_size=96,
                    rms_norm_eps=1e-5, max_position_embeddings=64, tie_word_embeddings=False,
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        hf_dtype="float32", shards=2, gguf_types=SMALL_TYPES, seq_lens=[1, 7, 16],
    ),
    dict(
        name="mistral", arch="MistralForCausalLM", seed=202,
        config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=1, vocab_size=96,
                    rms_norm_eps=1e-5, max_position_embeddings=64, tie_word_embeddings=False,
                    sliding_window=None,
                    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
        hf_dtype="float16", shards=1, gguf_types=NO_F32_TYPES, seq_lens=[1, 7, 16],
    ),
    dict(
        name="qwen2", arch="Qwen2ForCausalLM", seed=303,
        config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, vocab_size=96,
                    rms_norm_eps=1e-6, max_position_embeddings=64, tie_word_embeddings=True,
                    use_sliding_window=False,
                    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
        hf_dtype="bfloat16", shards=1, gguf_types=NO_F32_TYPES, seq_lens=[1, 7, 16],
    ),
    dict(
        name="qwen3", arch="Qwen3ForCausalLM", seed=404,
        config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=96,
                    rms_norm_eps=1e-6, max_position_embeddings=64, tie_word_embeddings=False,
                    use_sliding_window=False,
                    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
        hf_dtype="float32", shards=1, gguf_types=NO_F32_TYPES, seq_lens=[1, 7, 16],
    ),
    dict(
        name="llama3", arch="LlamaForCausalLM", seed=505,
        config=dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                    num_attention_heads=2, num_key_value_heads=1, head_dim=128, vocab_size=96,
                    rms_norm_eps=1e-5, max_position_embeddings=256, tie_word_embeddings=True,
                    rope_parameters={"rope_type": "llama3", "rope_theta": 500000.0, "factor": 8.0,
                                     "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                     "original_max_position_embeddings": 32}),
        hf_dtype="bfloat16", shards=1, gguf_types=["q8_0"], seq_lens=[1, 7, 16, 48],
        legacy_config=True,
    ),
    # Gemma 3: sliding-window layers (window 4, rope base 1e4) and a global layer (base 1e6,
    # linear scaling x8 as in the 4B+ models), QK-norm, GELU-tanh, four norms a layer, tied.
    # Two sliding layers to a global one (real models: five) keeps the fixture small; the GGUF
    # then says so in gemma3.attention.sliding_window_pattern. query_pre_attn_scalar = head_dim:
    # the value llama.cpp assumes for GGUF (all sizes but 27B).
    dict(
        name="gemma3", arch="Gemma3ForCausalLM", seed=707,
        config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                    layer_types=["sliding_attention", "sliding_attention", "full_attention"],
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=96,
                    rms_norm_eps=1e-6, max_position_embeddings=64, sliding_window=4,
                    query_pre_attn_scalar=16, tie_word_embeddings=True,
                    rope_parameters={
                        "full_attention": {"rope_type": "linear", "rope_theta": 1000000.0,
                                           "factor": 8.0},
                        "sliding_attention": {"rope_type": "default", "rope_theta": 10000.0}}),
        hf_dtype="bfloat16", shards=1, gguf_types=["f16", "q8_0"], seq_lens=[1, 7, 16],
    ),
    # Gemma 2: alternating sliding (window 4) / global layers, attention and final soft-capping.
    dict(
        name="gemma2", arch="Gemma2ForCausalLM", seed=808,
        config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=16, vocab_size=96,
                    rms_norm_eps=1e-6, max_position_embeddings=64, sliding_window=4,
                    query_pre_attn_scalar=16, attn_logit_softcapping=1.0,
                    final_logit_softcapping=2.0, tie_word_embeddings=True,
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        hf_dtype="bfloat16", shards=1, gguf_types=["q8_0"], seq_lens=[1, 7, 16],
    ),
    # Phi-3 (Phi-4-mini style): fused qkv and gate_up, LongRoPE on 3/4 of each head, original
    # context 32 extended to 128; the 40-token sequence is past the original context, so
    # transformers rotates it with the long factors.
    dict(
        name="phi3", arch="Phi3ForCausalLM", seed=909,
        config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                    num_attention_heads=4, num_key_value_heads=2, vocab_size=96,
                    rms_norm_eps=1e-5, max_position_embeddings=128,
                    original_max_position_embeddings=32, tie_word_embeddings=False,
                    pad_token_id=0, bos_token_id=1, eos_token_id=2,
                    rope_parameters={"rope_type": "longrope", "rope_theta": 10000.0,
                                     "partial_rotary_factor": 0.75,
                                     "original_max_position_embeddings": 32,
                                     "short_factor": [1.0, 1.5, 3.0],
                                     "long_factor": [1.0, 4.0, 32.0]}),
        hf_dtype="bfloat16", shards=1, gguf_types=["q8_0"], seq_lens=[1, 7, 16, 40],
    ),
    # Qwen3-MoE: 8 experts, top 2 with renormalized weights (norm_topk_prob, as Qwen3-30B-A3B).
    dict(
        name="qwen3moe", arch="Qwen3MoeForCausalLM", seed=1010,
        config=dict(hidden_size=32, intermediate_size=64, moe_intermediate_size=32,
                    num_experts=8, num_experts_per_tok=2, norm_topk_prob=True,
                    num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                    head_dim=16, vocab_size=96, rms_norm_eps=1e-6, max_position_embeddings=64,
                    tie_word_embeddings=False, use_sliding_window=False,
                    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
        hf_dtype="bfloat16", shards=1, gguf_types=["q8_0", "q4_0"], seq_lens=[1, 7, 16],
    ),
    # Mixtral: 4 experts, top 2 (softmax over the chosen), GGUF arch llama with stacked experts.
    dict(
        name="mixtral", arch="MixtralForCausalLM", seed=1111,
        config=dict(hidden_size=32, intermediate_size=32, num_local_experts=4,
                    num_experts_per_tok=2, num_hidden_layers=2, num_attention_heads=4,
                    num_key_value_heads=2, vocab_size=96, rms_norm_eps=1e-5,
                    max_position_embeddings=64, tie_word_embeddings=False,
                    rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
        hf_dtype="float16", shards=1, gguf_types=["f16", "q8_0"], seq_lens=[1, 7, 16],
    ),
    dict(
        name="kquant", arch="LlamaForCausalLM", seed=606,
        config=dict(hidden_size=256, intermediate_size=256, num_hidden_layers=1,
                    num_attention_heads=4, num_key_value_heads=2, head_dim=64, vocab_size=64,
                    rms_norm_eps=1e-5, max_position_embeddings=64, tie_word_embeddings=True,
                    rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
        hf_dtype=None, shards=0, gguf_types=["q4_k", "q6_k"], seq_lens=[1, 7, 16],
    ),
]


def log(msg: str) -> None:
    print(msg, flush=True)


# --------------------------------------------------------------------------
# model construction

def make_config(spec):
    cfg = CONFIG_CLASSES[spec["arch"]](**spec["config"])
    cfg.architectures = [spec["arch"]]
    return cfg


def init_weights(model: torch.nn.Module, seed: int) -> None:
    """Non-degenerate random weights: N(0, <=0.1) matrices, norms ~ 1 +- 0.1,
    small nonzero biases. Tied parameters are visited once."""
    g = torch.Generator().manual_seed(seed)

    def randn(shape):
        return torch.randn(shape, generator=g, dtype=torch.float32)

    gemma = "Gemma" in type(model).__name__
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("norm.weight"):
                # Gemma's norms scale by 1 + weight
                p.copy_((0.0 if gemma else 1.0) + 0.1 * randn(p.shape))
            elif name.endswith(".bias"):
                p.copy_(0.05 * randn(p.shape))
            elif "embed_tokens" in name:
                p.copy_(0.1 * randn(p.shape))
            elif p.ndim in (2, 3):  # 3: experts stacked in memory by transformers 5
                std = min(0.1, 0.6 / math.sqrt(p.shape[-1]))
                p.copy_(std * randn(p.shape))
            else:
                raise AssertionError(f"unexpected parameter {name} {tuple(p.shape)}")


def build_model(cfg, seed: int):
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(cfg, dtype=torch.float32, attn_implementation="eager")
    init_weights(model, seed)
    model.eval()
    return model


def model_from_state_dict(cfg, sd: dict[str, np.ndarray]):
    """A transformers model holding exactly `sd` (HF checkpoint names): saved as an f32
    checkpoint and loaded with from_pretrained, which also stacks per-expert tensors the way
    transformers 5 keeps them in memory."""
    import safetensors.numpy
    tmp = Path(tempfile.mkdtemp(prefix="kinfer-sd-"))
    try:
        cfg.save_pretrained(tmp)
        safetensors.numpy.save_file({k: np.array(v, dtype=np.float32, copy=True) for k, v in sd.items()},
                                    str(tmp / "model.safetensors"), metadata={"format": "pt"})
        model, info = AutoModelForCausalLM.from_pretrained(
            tmp, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    assert not info["unexpected_keys"], info["unexpected_keys"]
    assert set(info["missing_keys"]) <= ({"lm_head.weight"} if cfg.tie_word_embeddings else set()), \
        info["missing_keys"]
    if cfg.tie_word_embeddings:
        assert model.lm_head.weight.data_ptr() == model.model.embed_tokens.weight.data_ptr()
    model.eval()
    return model


@torch.no_grad()
def router_near_ties(model, seqs: list[list[int]], rel_gap: float = 0.01) -> list[list[int]]:
    """[sequence, position] pairs where some layer's router ranks its k-th and (k+1)-th experts
    within `rel_gap` of each other (relative to the k-th probability): there an engine that
    rounds activations (8-bit, as llama.cpp and Kinfer's VNNI path do; bf16 on AMX tiles for
    BF16/F16 weights) may pick another expert,
    so its logits from that position on are not comparable with this reference."""
    k = model.config.num_experts_per_tok
    gates = [m for name, m in model.named_modules() if name.endswith((".mlp.gate", ".block_sparse_moe.gate"))]
    assert gates, "no router found"
    captured = []
    hooks = [g.register_forward_hook(lambda mod, inp, out: captured.append(
        (out[0] if isinstance(out, tuple) else out).detach())) for g in gates]
    ties = []
    try:
        for si, s in enumerate(seqs):
            captured.clear()
            model(input_ids=torch.tensor([s], dtype=torch.long), use_cache=False)
            for logits in captured:
                p = torch.softmax(logits.float().reshape(len(s), -1), dim=-1)
                top = torch.sort(p, dim=-1, descending=True).values
                gap = (top[:, k - 1] - top[:, k]) / top[:, k - 1]
                for pos in torch.nonzero(gap < rel_gap).flatten().tolist():
                    if [si, pos] not in ties:
                        ties.append([si, pos])
    finally:
        for h in hooks:
            h.remove()
    return sorted(ties)


@torch.no_grad()
def run_logits(model, seqs: list[list[int]]) -> np.ndarray:
    """Each sequence independently from position 0, batch 1; rows concatenated."""
    out = []
    for s in seqs:
        ids = torch.tensor([s], dtype=torch.long)
        logits = model(input_ids=ids, use_cache=False).logits[0]
        out.append(logits.float().numpy())
    return np.concatenate(out, axis=0).astype(np.float32)


def save_hf(model, spec, hf_dir: Path) -> None:
    if hf_dir.exists():
        shutil.rmtree(hf_dir)
    dtype = TORCH_DTYPES[spec["hf_dtype"]]
    m = model.to(dtype)
    if spec["shards"] > 1:
        # upper bound on the checkpoint size (tied weights counted twice)
        total = sum(p.numel() * p.element_size() for p in m.state_dict().values())
        # smallest shard limit giving exactly the requested number of shards
        for limit_kb in range(max(1, total // 1024 // spec["shards"]), total // 1024 + 2):
            tmp = Path(tempfile.mkdtemp())
            m.save_pretrained(tmp, max_shard_size=f"{limit_kb}KB")
            n = len(list(tmp.glob("model-*.safetensors")))
            if n == spec["shards"]:
                shutil.copytree(tmp, hf_dir)
                shutil.rmtree(tmp)
                break
            shutil.rmtree(tmp)
        else:
            raise RuntimeError("could not find a shard size giving the requested shard count")
        assert (hf_dir / "model.safetensors.index.json").is_file()
    else:
        m.save_pretrained(hf_dir)
        assert (hf_dir / "model.safetensors").is_file()
    model.to(torch.float32)


# --------------------------------------------------------------------------
# independent check: a numpy forward pass with llama.cpp semantics, reading
# the GGUF tensors directly (permuted Q/K, normal rope for arch llama, NEOX
# rope for qwen2/qwen3, rope_freqs divisors, token_embd as output if tied).

def gguf_forward(path: Path, seqs: list[list[int]]) -> np.ndarray:
    reader, t, _ = gguf_convert.read_gguf(path)
    fields = reader.fields
    fv = lambda k: gguf_convert.field_value(reader, k)  # noqa: E731
    fo = lambda k, d: fv(k) if k in fields else d  # noqa: E731
    arch = fv("general.architecture")
    n_layer = int(fv(f"{arch}.block_count"))
    n_head = int(fv(f"{arch}.attention.head_count"))
    n_kv = int(fv(f"{arch}.attention.head_count_kv"))
    hd = int(fv(f"{arch}.attention.key_length"))
    n_embd = int(fv(f"{arch}.embedding_length"))
    n_rot = int(fv(f"{arch}.rope.dimension_count"))
    base = float(fv(f"{arch}.rope.freq_base"))
    eps = float(fv(f"{arch}.attention.layer_norm_rms_epsilon"))
    n_ctx_orig = int(fo(f"{arch}.rope.scaling.original_context_length", 0))
    n_used = int(fo(f"{arch}.expert_used_count", 0))
    gemma = arch in ("gemma2", "gemma3")
    T = {k: v.astype(np.float64) for k, v in t.items()}
    scale = 1.0 / float(fo(f"{arch}.rope.scaling.factor", 1.0))
    neox = arch != "llama"
    out_w = T.get("output.weight", T["token_embd.weight"])
    # llama.cpp: gemma2 alternates sliding/global layers, gemma3 has 5 sliding to 1 global;
    # sliding layers of gemma3 rotate with base 1e4 and no scaling.
    n_swa = int(fo(f"{arch}.attention.sliding_window", 0))
    pattern = {"gemma2": 2, "gemma3": 6}.get(arch, 0)
    is_swa = [pattern > 0 and n_swa > 0 and il % pattern < pattern - 1 for il in range(n_layer)]
    if f"{arch}.attention.sliding_window_pattern" in fields:
        is_swa = [bool(b) for b in fv(f"{arch}.attention.sliding_window_pattern")]
    attn_scale = 1.0 / math.sqrt(hd)
    cap_attn = float(fo(f"{arch}.attn_logit_softcapping", 0.0))
    cap_final = float(fo(f"{arch}.final_logit_softcapping", 0.0))

    def rms(x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w

    def inv_freq(il, L):
        if is_swa[il] and arch == "gemma3":
            return 1e4 ** (-np.arange(0, n_rot, 2) / n_rot), 1.0
        ff = T.get("rope_freqs.weight", np.ones(n_rot // 2))
        mscale = 1.0
        if "rope_factors_short.weight" in T:  # Phi-3: long factors past the original context
            ff = T["rope_factors_long.weight" if L > n_ctx_orig else "rope_factors_short.weight"]
            mscale = float(fv(f"{arch}.rope.scaling.attn_factor"))
        return base ** (-np.arange(0, n_rot, 2) / n_rot) * scale / ff, mscale

    def rope(x, pos, il):  # x (L, H, hd)
        inv, mscale = inv_freq(il, len(pos))
        ang = pos[:, None] * inv[None, :]
        c, s = mscale * np.cos(ang)[:, None, :], mscale * np.sin(ang)[:, None, :]
        y = x.copy()
        if neox:
            a, b = x[..., : n_rot // 2], x[..., n_rot // 2: n_rot]
            y[..., : n_rot // 2] = a * c - b * s
            y[..., n_rot // 2: n_rot] = a * s + b * c
        else:
            a, b = x[..., 0:n_rot:2], x[..., 1:n_rot:2]
            y[..., 0:n_rot:2] = a * c - b * s
            y[..., 1:n_rot:2] = a * s + b * c
        return y

    def act(g):
        if gemma:
            return 0.5 * g * (1 + np.tanh(math.sqrt(2 / math.pi) * (g + 0.044715 * g ** 3)))
        return g / (1.0 + np.exp(-g))

    def ffn(p, h):
        if p + "ffn_gate_inp.weight" in T:
            logits = h @ T[p + "ffn_gate_inp.weight"].T
            probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
            probs /= probs.sum(axis=-1, keepdims=True)
            out = np.zeros_like(h)
            for i in range(h.shape[0]):
                top = np.argsort(-probs[i], kind="stable")[:n_used]
                w = probs[i, top] / probs[i, top].sum()
                for e, we in zip(top, w):
                    g = T[p + "ffn_gate_exps.weight"][e] @ h[i]
                    u = T[p + "ffn_up_exps.weight"][e] @ h[i]
                    out[i] += we * (T[p + "ffn_down_exps.weight"][e] @ (act(g) * u))
            return out
        if arch == "phi3":
            gu = h @ T[p + "ffn_up.weight"].T
            g, u = gu[:, : gu.shape[1] // 2], gu[:, gu.shape[1] // 2:]
        else:
            g, u = h @ T[p + "ffn_gate.weight"].T, h @ T[p + "ffn_up.weight"].T
        return (act(g) * u) @ T[p + "ffn_down.weight"].T

    res = []
    for s in seqs:
        L = len(s)
        pos = np.arange(L, dtype=np.float64)
        x = T["token_embd.weight"][np.array(s)]
        if gemma:
            x = x * math.sqrt(n_embd)
        causal = np.triu(np.full((L, L), -np.inf), k=1)
        for i in range(n_layer):
            p = f"blk.{i}."
            mask = causal.copy()
            if is_swa[i]:
                mask[np.subtract.outer(np.arange(L), np.arange(L)) >= n_swa] = -np.inf
            h = rms(x, T[p + "attn_norm.weight"])
            if p + "attn_qkv.weight" in T:
                qkv = h @ T[p + "attn_qkv.weight"].T
                q, k, v = np.split(qkv, [n_head * hd, n_head * hd + n_kv * hd], axis=1)
            else:
                q = h @ T[p + "attn_q.weight"].T + T.get(p + "attn_q.bias", 0.0)
                k = h @ T[p + "attn_k.weight"].T + T.get(p + "attn_k.bias", 0.0)
                v = h @ T[p + "attn_v.weight"].T + T.get(p + "attn_v.bias", 0.0)
            q, k, v = q.reshape(L, n_head, hd), k.reshape(L, n_kv, hd), v.reshape(L, n_kv, hd)
            if p + "attn_q_norm.weight" in T:
                q = rms(q, T[p + "attn_q_norm.weight"])
                k = rms(k, T[p + "attn_k_norm.weight"])
            q, k = rope(q, pos, i), rope(k, pos, i)
            o = np.zeros((L, n_head, hd))
            for hh in range(n_head):
                kv = hh // (n_head // n_kv)
                sc = q[:, hh, :] @ k[:, kv, :].T * attn_scale
                if cap_attn:
                    sc = cap_attn * np.tanh(sc / cap_attn)
                sc = sc + mask
                sc = np.exp(sc - sc.max(axis=-1, keepdims=True))
                sc /= sc.sum(axis=-1, keepdims=True)
                o[:, hh, :] = sc @ v[:, kv, :]
            a = o.reshape(L, n_head * hd) @ T[p + "attn_output.weight"].T
            if p + "post_attention_norm.weight" in T:
                a = rms(a, T[p + "post_attention_norm.weight"])
            x = x + a
            f = ffn(p, rms(x, T[p + "ffn_norm.weight"]))
            if p + "post_ffw_norm.weight" in T:
                f = rms(f, T[p + "post_ffw_norm.weight"])
            x = x + f
        logits = rms(x, T["output_norm.weight"]) @ out_w.T
        if cap_final:
            logits = cap_final * np.tanh(logits / cap_final)
        res.append(logits)
    return np.concatenate(res, axis=0).astype(np.float32)


def rel_max_err(a: np.ndarray, ref: np.ndarray) -> float:
    return float(np.max(np.abs(a - ref)) / np.max(np.abs(ref)))


# --------------------------------------------------------------------------

def write_logits(path: Path, logits: np.ndarray) -> None:
    np.ascontiguousarray(logits, dtype="<f4").tofile(path)


def dump_json(obj: dict) -> str:
    """Indented JSON with each token sequence on one line."""
    text = json.dumps(obj, indent=1)
    text = re.sub(r"\[\s*(\d+(?:,\s*\d+)*)\s*\]",
                  lambda m: "[" + ", ".join(re.split(r",\s*", m.group(1))) + "]", text)
    assert json.loads(text) == obj
    return text + "\n"


def legacy_config_dict(new_cfg: dict) -> dict:
    """The same model described the transformers-4 way: top-level rope_theta
    and rope_scaling {rope_type: llama3, ...}, torch_dtype instead of dtype."""
    d = {k: v for k, v in new_cfg.items() if k not in ("rope_parameters", "dtype", "transformers_version")}
    rp = dict(new_cfg["rope_parameters"])
    d["rope_theta"] = rp.pop("rope_theta")
    d["rope_scaling"] = rp
    d["torch_dtype"] = new_cfg.get("dtype", "bfloat16")
    d["transformers_version"] = "4.46.0"
    return dict(sorted(d.items()))


def make_model(spec) -> dict:
    name = spec["name"]
    mdir = OUT / name
    if mdir.exists():
        shutil.rmtree(mdir)
    mdir.mkdir(parents=True)
    log(f"== {name} ({spec['arch']})")

    cfg = make_config(spec)
    model = build_model(cfg, spec["seed"])
    vocab = cfg.vocab_size
    rng = np.random.default_rng(spec["seed"])
    seqs = [rng.integers(0, vocab, size=n).tolist() for n in spec["seq_lens"]]

    logits_files: dict[str, str] = {}
    gguf_files: dict[str, str] = {}
    qerr: dict[str, float] = {}
    checks: dict[str, float] = {}
    near_ties: dict[str, list[list[int]]] = {}

    work = Path(tempfile.mkdtemp(prefix=f"kinfer-{name}-"))
    try:
        if spec["hf_dtype"] is not None:
            hf_dir = mdir / "hf"
            save_hf(model, spec, hf_dir)
            log(f"   saved HF ({spec['hf_dtype']}, {spec['shards']} shard(s)): "
                + ", ".join(sorted(p.name for p in hf_dir.iterdir())))
            hf_model = AutoModelForCausalLM.from_pretrained(hf_dir, dtype=torch.float32,
                                                            attn_implementation="eager")
            hf_model.eval()
            ref = run_logits(hf_model, seqs)
            write_logits(mdir / "logits.hf.f32", ref)
            logits_files["hf"] = "logits.hf.f32"
            if getattr(hf_model.config, "num_experts_per_tok", None):
                # BF16/F16 checkpoints round activations to bf16 on AMX tiles (fast path).
                near_ties["hf"] = router_near_ties(hf_model, seqs)
            config_dict, tensors = gguf_convert.load_hf_dir(hf_dir)
            run_cfg = hf_model.config
        else:
            # not committed: convert straight from the in-memory f32 weights
            ref = run_logits(model, seqs)
            config_dict = model.config.to_dict()
            config_dict["architectures"] = [spec["arch"]]
            tensors = {k: v.detach().float().numpy().copy() for k, v in model.state_dict().items()}
            run_cfg = model.config
        log(f"   hf logits: shape {ref.shape}, max|logit| {np.abs(ref).max():.4f}, std {ref.std():.4f}")

        # sanity: an f32 GGUF must reproduce the HF reference (also for llama3,
        # whose f32 GGUF is not committed)
        f32_path = work / f"{name}.f32.gguf"
        gguf_convert.convert(config_dict, tensors, f32_path, "f32", name)
        sd = gguf_convert.read_gguf_as_hf_state_dict(f32_path, config_dict)
        gemma = gguf_convert.gguf_arch(config_dict) in gguf_convert.GEMMA_ARCHS
        for k, v in sd.items():
            want = tensors[k]
            if gemma and k.endswith("norm.weight"):  # stored as 1 + w: w's low bits go
                want = (want + np.float32(1)).astype(np.float32) - np.float32(1)
            assert np.array_equal(v, want), f"f32 GGUF round trip changed {k}"
        f32_ref = run_logits(model_from_state_dict(run_cfg, sd), seqs)
        d = float(np.max(np.abs(f32_ref - ref)))
        checks["f32_gguf_vs_hf_max_abs"] = d
        assert d <= 1e-6, f"{name}: f32 GGUF reference differs from HF by {d}"
        log(f"   check: f32 GGUF reference vs hf max abs diff {d:.3g}")

        # llama3: rope_freqs must reproduce transformers' inv_freq
        factors = gguf_convert.llama3_rope_factors(config_dict)
        if factors is not None:
            rp = gguf_convert.rope_params(config_dict)
            hd = gguf_convert.head_dim(config_dict)
            base_inv = 1.0 / (rp["rope_theta"] ** (np.arange(0, hd, 2, dtype=np.float64) / hd))
            hf_inv = hf_model.model.rotary_emb.inv_freq.double().numpy()
            r = float(np.max(np.abs(base_inv / factors - hf_inv) / hf_inv))
            assert r < 1e-5, f"rope_freqs do not reproduce HF inv_freq (rel err {r})"
            checks["rope_freqs_vs_hf_inv_freq_rel"] = r
            n_scaled = int(np.sum(factors == np.float32(rp["factor"])))
            n_one = int(np.sum(factors == 1.0))
            log(f"   rope_freqs: {hd // 2} factors, {n_one} == 1, {n_scaled} == factor, "
                f"{hd // 2 - n_one - n_scaled} smoothed; reproduce HF inv_freq (rel {r:.2g})")
            # the scaling must actually change the logits for these sequences
            unscaled_cfg = AutoConfig.from_pretrained(mdir / "hf")
            unscaled_cfg.rope_parameters = {"rope_type": "default", "rope_theta": rp["rope_theta"]}
            unscaled = AutoModelForCausalLM.from_pretrained(mdir / "hf", config=unscaled_cfg,
                                                            dtype=torch.float32,
                                                            attn_implementation="eager")
            diff = float(np.max(np.abs(run_logits(unscaled, seqs) - ref)))
            checks["llama3_scaling_effect_max_abs"] = diff
            log(f"   llama3 scaling changes logits by up to {diff:.4f} (vs plain rope)")
            assert diff > 1e-3, "rope scaling has no visible effect"

        for t in spec["gguf_types"]:
            gpath = mdir / f"{name}.{t}.gguf"
            types = gguf_convert.convert(config_dict, tensors, gpath, t, name)
            sd = gguf_convert.read_gguf_as_hf_state_dict(gpath, config_dict)
            g_model = model_from_state_dict(run_cfg, sd)
            g_logits = run_logits(g_model, seqs)
            if getattr(run_cfg, "num_experts_per_tok", None):
                near_ties[f"{t}.gguf"] = router_near_ties(g_model, seqs)
            write_logits(mdir / f"logits.{t}.f32", g_logits)
            key = f"{t}.gguf"
            logits_files[key] = f"logits.{t}.f32"
            gguf_files[key] = gpath.name
            qerr[key] = rel_max_err(g_logits, ref)
            # llama.cpp-semantics numpy forward on the GGUF itself
            np_err = rel_max_err(gguf_forward(gpath, seqs), g_logits)
            checks[f"numpy_llamacpp_forward_vs_{t}_rel"] = np_err
            assert np_err < 1e-4, f"{gpath.name}: numpy forward disagrees ({np_err})"
            kinds = sorted(set(types.values()))
            log(f"   {gpath.name}: {gpath.stat().st_size} bytes, tensor types {kinds}, "
                f"quantization_error {qerr[key]:.3g}, numpy-forward check {np_err:.2g}")
            if t == "f32":
                assert qerr[key] <= 1e-6 * max(1.0, float(np.abs(ref).max())), qerr[key]

        if spec.get("legacy_config"):
            legacy_dir = mdir / "hf-legacy-config"
            legacy_dir.mkdir()
            legacy = legacy_config_dict(json.loads((mdir / "hf" / "config.json").read_text()))
            (legacy_dir / "config.json").write_text(json.dumps(legacy, indent=2) + "\n")
            # transformers must read it as the same model ...
            lcfg = AutoConfig.from_pretrained(legacy_dir)
            assert lcfg.rope_parameters == hf_model.config.rope_parameters, \
                (lcfg.rope_parameters, hf_model.config.rope_parameters)
            lmodel = AutoModelForCausalLM.from_pretrained(mdir / "hf", config=lcfg, dtype=torch.float32,
                                                          attn_implementation="eager")
            d = float(np.max(np.abs(run_logits(lmodel, seqs) - ref)))
            assert d == 0.0, d
            # ... and the converter must produce the same tensors from it
            t0 = spec["gguf_types"][0]
            lpath = work / f"legacy.{t0}.gguf"
            gguf_convert.convert(legacy, tensors, lpath, t0, name)
            _, a, _ = gguf_convert.read_gguf(lpath)
            _, b, _ = gguf_convert.read_gguf(mdir / f"{name}.{t0}.gguf")
            assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
            log("   hf-legacy-config/config.json: same rope parameters, identical logits and GGUF tensors")
    finally:
        shutil.rmtree(work, ignore_errors=True)

    notes = [
        f"Random weights (seed {spec['seed']}).",
        "Logit files: raw little-endian float32, sequences concatenated in order, each [seq_len][vocab].",
        "Each sequence is run independently from position 0, batch 1, transformers eager attention, float32.",
        "'<type>.gguf' references: the same transformers model with every weight replaced by the values "
        "the GGUF stores (read with gguf.GGUFReader, gguf.quants.dequantize, llama Q/K permutation undone), "
        "so a correct f32 implementation should match them closely (expect ~1e-5 relative; not bit-exact).",
        "quantization_error: max|gguf logits - hf logits| / max|hf logits|.",
    ]
    if spec["hf_dtype"] is not None:
        notes.append(f"hf/: save_pretrained in {spec['hf_dtype']}"
                     + (f", {spec['shards']} shards + model.safetensors.index.json" if spec["shards"] > 1 else "")
                     + "; 'hf' logits come from those weights upcast to float32.")
    else:
        notes.append("HF checkpoint not committed (size); quantization_error is against the original "
                     "float32 model. K-quant blocks made by tests/reference/kquants.py.")
    if gguf_convert.gguf_arch(config_dict) == "llama":
        notes.append("GGUF arch llama: attn_q/attn_k rows permuted to interleaved rope pairs "
                     "(convert_hf_to_gguf LlamaModel.permute).")
    else:
        notes.append(f"GGUF arch {gguf_convert.gguf_arch(config_dict)}: no Q/K permutation (NEOX rope).")
    if spec.get("notes"):
        notes.append(spec["notes"])
    if spec.get("legacy_config"):
        notes.append("rope_freqs.weight holds the llama3 per-frequency divisors (original_max_position_embeddings "
                     "taken from the rope settings, 32). hf-legacy-config/config.json describes the same model "
                     "in transformers-4 style (rope_theta + rope_scaling); pair it with hf/*.safetensors.")

    ref_json = {
        "name": name,
        "architecture": spec["arch"],
        "vocab_size": vocab,
        "sequences": seqs,
        "logits": logits_files,
        "quantization_error": {k: float(f"{v:.6g}") for k, v in qerr.items()},
        "gguf_files": gguf_files,
        "hf_dtype": spec["hf_dtype"],
        "checks": {k: float(f"{v:.6g}") for k, v in checks.items()},
        **({"router_near_ties": near_ties} if near_ties else {}),
        "notes": " ".join(notes),
    }
    (mdir / "reference.json").write_text(dump_json(ref_json))
    return ref_json


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    np.random.seed(0)
    transformers.utils.logging.disable_progress_bar()
    log(f"torch {torch.__version__}, transformers {transformers.__version__}, "
        f"numpy {np.__version__}, gguf {importlib.metadata.version('gguf')}, "
        f"safetensors {importlib.metadata.version('safetensors')}")
    errs = kquants.self_test()
    log("kquants self-test (relative RMS error): " + ", ".join(f"{k} {v:.4f}" for k, v in errs.items()))
    OUT.mkdir(parents=True, exist_ok=True)
    only = set(sys.argv[1:])
    for spec in MODELS:
        if only and spec["name"] not in only:
            continue
        make_model(spec)
    total = sum(p.stat().st_size for p in OUT.rglob("*") if p.is_file())
    log(f"done: {OUT.relative_to(ROOT)} holds {total} bytes")


if __name__ == "__main__":
    main()
