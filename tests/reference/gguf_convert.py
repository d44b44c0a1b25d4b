"""Hugging Face decoder checkpoint -> GGUF, laid out like llama.cpp's
convert_hf_to_gguf.py lays it out (for the families Kinfer's fixtures use:
Llama/Mistral/Mixtral -> arch "llama", Qwen2 -> "qwen2", Qwen3 -> "qwen3",
Qwen3-MoE -> "qwen3moe", Gemma 2/3 -> "gemma2"/"gemma3", Phi-3 -> "phi3").

Family conventions followed: Gemma norm weights are stored as 1 + w (HF's
Gemma RMSNorm scales by 1 + w), no Q/K permutation, tied output; Gemma 2
soft-capping and sliding-window keys; Gemma 3 linear rope scaling for the
global layers. Mixture of experts: the router `ffn_gate_inp` stays F32 and the
experts are stacked into `ffn_{gate,up,down}_exps` [experts, rows, cols].
Phi-3: q/k/v fused into `attn_qkv`, gate/up fused into `ffn_up` (gate first),
LongRoPE factors as `rope_factors_short/long` with the attention factor and
original context length as metadata.

Written from scratch for Kinfer's test fixtures; it follows the conventions of
convert_hf_to_gguf.py (tensor names, Q/K permutation for arch llama, llama3
rope_freqs tensor, which tensors stay F32, metadata keys) but is not a copy.

Also provides the inverse used to build the GGUF reference logits:
read_gguf_as_hf_state_dict() reads a GGUF back with gguf.GGUFReader,
dequantizes every tensor with gguf.quants.dequantize and undoes the Q/K
permutation, giving an HF state dict holding exactly the values the GGUF stores.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np

import gguf

try:  # imported as a module of tests/reference or as a top-level script dir
    from . import kquants  # type: ignore
except ImportError:  # pragma: no cover
    import kquants  # type: ignore


HF_ARCH_TO_GGUF = {
    "LlamaForCausalLM": "llama",
    "MistralForCausalLM": "llama",
    "MixtralForCausalLM": "llama",
    "Qwen2ForCausalLM": "qwen2",
    "Qwen3ForCausalLM": "qwen3",
    "Qwen3MoeForCausalLM": "qwen3moe",
    "Gemma2ForCausalLM": "gemma2",
    "Gemma3ForCausalLM": "gemma3",
    "Phi3ForCausalLM": "phi3",
}
GEMMA_ARCHS = ("gemma2", "gemma3")

# output type name -> (tensor type for 2-D weights, general.file_type)
OUT_TYPES: dict[str, tuple[gguf.GGMLQuantizationType, gguf.LlamaFileType]] = {
    "f32": (gguf.GGMLQuantizationType.F32, gguf.LlamaFileType.ALL_F32),
    "f16": (gguf.GGMLQuantizationType.F16, gguf.LlamaFileType.MOSTLY_F16),
    "bf16": (gguf.GGMLQuantizationType.BF16, gguf.LlamaFileType.MOSTLY_BF16),
    "q8_0": (gguf.GGMLQuantizationType.Q8_0, gguf.LlamaFileType.MOSTLY_Q8_0),
    "q4_0": (gguf.GGMLQuantizationType.Q4_0, gguf.LlamaFileType.MOSTLY_Q4_0),
    "q4_1": (gguf.GGMLQuantizationType.Q4_1, gguf.LlamaFileType.MOSTLY_Q4_1),
    "q5_0": (gguf.GGMLQuantizationType.Q5_0, gguf.LlamaFileType.MOSTLY_Q5_0),
    "q5_1": (gguf.GGMLQuantizationType.Q5_1, gguf.LlamaFileType.MOSTLY_Q5_1),
    # Every 2-D weight is Q4_K / Q5_K / Q6_K here (no mixed recipe like
    # llama-quantize's _S/_M); the closest file-type labels are used.
    "q4_k": (gguf.GGMLQuantizationType.Q4_K, gguf.LlamaFileType.MOSTLY_Q4_K_S),
    "q5_k": (gguf.GGMLQuantizationType.Q5_K, gguf.LlamaFileType.MOSTLY_Q5_K_S),
    "q6_k": (gguf.GGMLQuantizationType.Q6_K, gguf.LlamaFileType.MOSTLY_Q6_K),
}

_LAYER_MAP = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "self_attn.q_proj.bias": "attn_q.bias",
    "self_attn.k_proj.bias": "attn_k.bias",
    "self_attn.v_proj.bias": "attn_v.bias",
    "self_attn.q_norm.weight": "attn_q_norm.weight",
    "self_attn.k_norm.weight": "attn_k_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
# Gemma's four norms per layer (post_attention_layernorm is the attention output's norm there).
_GEMMA_LAYER_MAP = dict(_LAYER_MAP)
_GEMMA_LAYER_MAP.update({
    "post_attention_layernorm.weight": "post_attention_norm.weight",
    "pre_feedforward_layernorm.weight": "ffn_norm.weight",
    "post_feedforward_layernorm.weight": "post_ffw_norm.weight",
})
_EXPERT_RE = re.compile(r"^(?:mlp|block_sparse_moe)\.experts\.(\d+)\.(\w+)\.weight$")
_EXPERT_PARTS = {"gate_proj": "ffn_gate_exps", "up_proj": "ffn_up_exps", "down_proj": "ffn_down_exps",
                 "w1": "ffn_gate_exps", "w3": "ffn_up_exps", "w2": "ffn_down_exps"}
_GLOBAL_MAP = {
    "model.embed_tokens.weight": "token_embd.weight",
    "model.norm.weight": "output_norm.weight",
    "lm_head.weight": "output.weight",
}
_LAYER_RE = re.compile(r"^model\.layers\.(\d+)\.(.+)$")


# --------------------------------------------------------------------------
# config helpers

def gguf_arch(config: dict[str, Any]) -> str:
    hf_arch = config["architectures"][0]
    if hf_arch not in HF_ARCH_TO_GGUF:
        raise NotImplementedError(f"architecture {hf_arch!r} not supported")
    return HF_ARCH_TO_GGUF[hf_arch]


def rope_params(config: dict[str, Any]) -> dict[str, Any]:
    """The rope settings of a config.json in either style: transformers-5
    `rope_parameters` (theta inside) or legacy v4 `rope_theta` + `rope_scaling`
    (with `type` as an alias of `rope_type`). Same merge as convert_hf_to_gguf."""
    params = dict(config.get("rope_parameters") or config.get("rope_scaling") or {})
    if "rope_theta" not in params and config.get("rope_theta") is not None:
        params["rope_theta"] = config["rope_theta"]
    if "rope_type" not in params and params.get("type") is not None:
        params["rope_type"] = params["type"]
    return params


def head_dim(config: dict[str, Any]) -> int:
    hd = config.get("head_dim")
    return int(hd) if hd is not None else config["hidden_size"] // config["num_attention_heads"]


def llama3_rope_factors(config: dict[str, Any]) -> np.ndarray | None:
    """The per-frequency divisors llama.cpp reads from `rope_freqs.weight`.

    Same recipe as convert_hf_to_gguf's LlamaModel.generate_extra_tensors:
    freq_i = theta^(-2i/d); wavelen = 2*pi/freq_i;
      wavelen < orig/high_freq_factor -> 1
      wavelen > orig/low_freq_factor  -> factor
      otherwise smooth = (orig/wavelen - low)/(high - low),
                factor_i = 1 / ((1 - smooth)/factor + smooth)
    llama.cpp then rotates by pos * freq_i / factor_i, which equals
    transformers' llama3 inv_freq.

    One deliberate difference: convert_hf_to_gguf reads
    original_max_position_embeddings from the *top level* of config.json
    (default 8192), while transformers reads it from the rope settings. Real
    Llama 3.x checkpoints use 8192 so both agree there; our fixture uses 32,
    so we take it from the rope settings (the value transformers uses), which
    keeps the GGUF equivalent to the HF model.
    """
    rp = rope_params(config)
    if str(rp.get("rope_type", "")).lower() != "llama3":
        return None
    base = float(rp.get("rope_theta", 10000.0))
    dim = head_dim(config)
    freqs = 1.0 / (base ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    factor = float(rp.get("factor", 8.0))
    low = float(rp.get("low_freq_factor", 1.0))
    high = float(rp.get("high_freq_factor", 4.0))
    old_ctx = float(rp.get("original_max_position_embeddings",
                           config.get("original_max_position_embeddings", 8192)))
    low_wavelen = old_ctx / low
    high_wavelen = old_ctx / high
    out = []
    for f in freqs.tolist():
        wavelen = 2 * math.pi / f
        if wavelen < high_wavelen:
            out.append(1.0)
        elif wavelen > low_wavelen:
            out.append(factor)
        else:
            smooth = (old_ctx / wavelen - low) / (high - low)
            out.append(1.0 / ((1.0 - smooth) / factor + smooth))
    return np.array(out, dtype=np.float32)


# --------------------------------------------------------------------------
# Q/K permutation (arch llama only)

def permute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    """HF rotate-half layout -> llama.cpp interleaved-pair layout.

    Rows of each head are [r_0 .. r_{d/2-1}, r_{d/2} .. r_{d-1}]; rotate-half
    pairs r_i with r_{i+d/2}. After the permutation a head's rows are
    [r_0, r_{d/2}, r_1, r_{d/2+1}, ...] so the pairs are adjacent, which is
    what ggml's normal (non-NEOX) rope rotates. Works for weights (out, in)
    and biases (out,). Same reshape/swap as convert_hf_to_gguf's
    LlamaModel.permute (called with n_head for Q and n_head_kv for K).
    """
    rows = w.shape[0]
    return (w.reshape(n_head, 2, rows // n_head // 2, *w.shape[1:])
             .swapaxes(1, 2)
             .reshape(w.shape))


def unpermute_qk(w: np.ndarray, n_head: int) -> np.ndarray:
    rows = w.shape[0]
    return (w.reshape(n_head, rows // n_head // 2, 2, *w.shape[1:])
             .swapaxes(1, 2)
             .reshape(w.shape))


# --------------------------------------------------------------------------
# names

def _layer_map(arch: str) -> dict[str, str]:
    m = _GEMMA_LAYER_MAP if arch in GEMMA_ARCHS else dict(_LAYER_MAP)
    if arch in GEMMA_ARCHS:
        return m
    m.update({"mlp.gate.weight": "ffn_gate_inp.weight",
              "block_sparse_moe.gate.weight": "ffn_gate_inp.weight",
              "self_attn.qkv_proj.weight": "attn_qkv.weight",
              "mlp.gate_up_proj.weight": "ffn_up.weight"})
    return m


def hf_to_gguf_name(hf_name: str, arch: str = "llama") -> str | None:
    if hf_name in _GLOBAL_MAP:
        return _GLOBAL_MAP[hf_name]
    m = _LAYER_RE.match(hf_name)
    lm = _layer_map(arch)
    if m and m.group(2) in lm:
        return f"blk.{m.group(1)}.{lm[m.group(2)]}"
    if hf_name.endswith("rotary_emb.inv_freq"):
        return None
    raise KeyError(f"no GGUF name for HF tensor {hf_name!r}")


def gguf_to_hf_name(gguf_name: str, arch: str = "llama", hf_arch: str = "") -> str | None:
    for k, v in _GLOBAL_MAP.items():
        if v == gguf_name:
            return k
    m = re.match(r"^blk\.(\d+)\.(.+)$", gguf_name)
    if m:
        layer, part = m.group(1), m.group(2)
        if part == "ffn_gate_inp.weight":
            moe = "block_sparse_moe" if hf_arch == "MixtralForCausalLM" else "mlp"
            return f"model.layers.{layer}.{moe}.gate.weight"
        if arch == "phi3" and part == "attn_qkv.weight":
            return f"model.layers.{layer}.self_attn.qkv_proj.weight"
        if arch == "phi3" and part == "ffn_up.weight":
            return f"model.layers.{layer}.mlp.gate_up_proj.weight"
        for k, v in (_GEMMA_LAYER_MAP if arch in GEMMA_ARCHS else _LAYER_MAP).items():
            if v == part:
                return f"model.layers.{layer}.{k}"
    if gguf_name in ("rope_freqs.weight", "rope_factors_short.weight", "rope_factors_long.weight"):
        return None
    raise KeyError(f"no HF name for GGUF tensor {gguf_name!r}")


# --------------------------------------------------------------------------
# reading an HF checkpoint directory

def load_hf_dir(hf_dir: Path) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """config.json + all safetensors (single file or index + shards) as f32
    numpy arrays (bf16/f16 upcast exactly, like convert_hf_to_gguf does)."""
    import safetensors.torch

    hf_dir = Path(hf_dir)
    config = json.loads((hf_dir / "config.json").read_text())
    index = hf_dir / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors: dict[str, np.ndarray] = {}
    for f in files:
        for name, t in safetensors.torch.load_file(str(hf_dir / f)).items():
            tensors[name] = t.float().numpy()
    return config, tensors


def _sort_key(hf_name: str) -> tuple:
    # embeddings, then layers in numeric order, then final norm and head
    if hf_name == "model.embed_tokens.weight":
        return (0, 0, "")
    m = _LAYER_RE.match(hf_name)
    if m:
        order = list(_LAYER_MAP).index(m.group(2)) if m.group(2) in _LAYER_MAP else 99
        return (1, int(m.group(1)), f"{order:03d}")
    return (2, 0, hf_name)


# --------------------------------------------------------------------------
# writing

def _quantize(data: np.ndarray, qtype: gguf.GGMLQuantizationType) -> np.ndarray:
    if qtype in (gguf.GGMLQuantizationType.Q4_K, gguf.GGMLQuantizationType.Q5_K,
                 gguf.GGMLQuantizationType.Q6_K):
        raw = kquants.quantize(data, qtype.name)
        kquants.check_roundtrip(data, qtype.name, raw)
        return raw
    return gguf.quants.quantize(data, qtype)


def _is_norm(hf_name: str) -> bool:
    return hf_name.endswith("norm.weight")


def gemma_rope(config: dict[str, Any]) -> tuple[dict[str, Any], float]:
    """Gemma: (rope settings of the global layers, rope base of the sliding ones)."""
    rp = rope_params(config)
    if "full_attention" in rp:
        return dict(rp["full_attention"]), float(rp.get("sliding_attention", {}).get("rope_theta", 1e4))
    return rp, float(config.get("rope_local_base_freq", rp.get("rope_theta", 1e4)))


def longrope_attn_factor(config: dict[str, Any]) -> float:
    rp = rope_params(config)
    if rp.get("attention_factor") is not None:
        return float(rp["attention_factor"])
    orig = int(rp.get("original_max_position_embeddings", config["original_max_position_embeddings"]))
    scale = config["max_position_embeddings"] / orig
    return 1.0 if scale <= 1.0 else math.sqrt(1 + math.log(scale) / math.log(orig))


def convert(config: dict[str, Any], tensors: dict[str, np.ndarray], out_path: Path,
            out_type: str, name: str, pooling_type: int | None = None) -> dict[str, str]:
    """Write `tensors` (HF names, f32 numpy) as a GGUF of `out_type`. `pooling_type` (llama.cpp's
    enum: 1 mean, 2 cls, 3 last) marks an embedding model, as convert_hf_to_gguf does for one.

    Returns {gguf tensor name: ggml type name} for reporting.
    """
    arch = gguf_arch(config)
    hf_arch = config["architectures"][0]
    qtype, ftype = OUT_TYPES[out_type]
    n_head = int(config["num_attention_heads"])
    n_head_kv = int(config.get("num_key_value_heads") or n_head)
    hd = head_dim(config)
    rp = rope_params(config)
    gemma = arch in GEMMA_ARCHS
    if gemma:
        rp, _ = gemma_rope(config)
    tied = bool(config.get("tie_word_embeddings", gemma))
    n_experts = int(config.get("num_experts") or config.get("num_local_experts") or 0)
    rot = int(hd * float(rp.get("partial_rotary_factor", config.get("partial_rotary_factor", 1.0))))

    writer = gguf.GGUFWriter(str(out_path), arch)  # writes general.architecture
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    writer.add_file_type(int(ftype))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    writer.add_context_length(int(config["max_position_embeddings"]))
    writer.add_embedding_length(int(config["hidden_size"]))
    writer.add_feed_forward_length(int(config["intermediate_size"]))
    writer.add_block_count(int(config["num_hidden_layers"]))
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_layer_norm_rms_eps(float(config["rms_norm_eps"]))
    writer.add_rope_freq_base(float(rp.get("rope_theta", 10000.0)))
    writer.add_rope_dimension_count(rot)
    writer.add_key_length(hd)
    writer.add_value_length(hd)
    writer.add_vocab_size(int(config["vocab_size"]))
    if pooling_type is not None:
        writer.add_pooling_type(gguf.PoolingType(pooling_type))
    # rope_type llama3 has no rope-scaling metadata in convert_hf_to_gguf: it
    # is expressed only through the rope_freqs.weight tensor below.
    if str(rp.get("rope_type", "")) == "linear":
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(rp["factor"]))
    if gemma:
        if config.get("sliding_window"):
            writer.add_sliding_window(int(config["sliding_window"]))
        default = [(i + 1) % (2 if arch == "gemma2" else 6) != 0
                   for i in range(int(config["num_hidden_layers"]))]
        types_ = [t == "sliding_attention" for t in config.get("layer_types") or []]
        if types_ and types_ != default:  # llama.cpp reads a bool per layer here
            writer.add_sliding_window_pattern(types_)
        if config.get("attn_logit_softcapping"):
            writer.add_attn_logit_softcapping(float(config["attn_logit_softcapping"]))
        if config.get("final_logit_softcapping"):
            writer.add_final_logit_softcapping(float(config["final_logit_softcapping"]))
    if n_experts:
        writer.add_expert_count(n_experts)
        writer.add_expert_used_count(int(config["num_experts_per_tok"]))
        if config.get("moe_intermediate_size"):
            writer.add_expert_feed_forward_length(int(config["moe_intermediate_size"]))
    longrope = str(rp.get("rope_type", rp.get("type", ""))) in ("longrope", "su")
    if longrope:
        orig = int(rp.get("original_max_position_embeddings", config.get("original_max_position_embeddings")))
        writer.add_rope_scaling_attn_factors(longrope_attn_factor(config))
        writer.add_rope_scaling_orig_ctx_len(orig)

    types: dict[str, str] = {}
    factors = llama3_rope_factors(config)
    if factors is not None:  # convert_hf_to_gguf emits extra tensors first
        writer.add_tensor("rope_freqs.weight", factors)
        types["rope_freqs.weight"] = "F32"
    if longrope:
        for key, gname in (("long_factor", "rope_factors_long.weight"),
                           ("short_factor", "rope_factors_short.weight")):
            writer.add_tensor(gname, np.array(rp[key], dtype=np.float32))
            types[gname] = "F32"

    def add(gname: str, data: np.ndarray, keep_f32: bool) -> None:
        t = gguf.GGMLQuantizationType.F32 if keep_f32 else qtype
        if t == gguf.GGMLQuantizationType.F32:
            writer.add_tensor(gname, data)
        elif t == gguf.GGMLQuantizationType.F16:
            writer.add_tensor(gname, data.astype(np.float16))
        else:
            raw = _quantize(data, t)
            # uint8 rows of block bytes; the writer derives the element shape
            writer.add_tensor(gname, raw, raw_dtype=t)
        types[gname] = t.name

    experts: dict[tuple[int, str], dict[int, np.ndarray]] = {}
    for hf_name in sorted(tensors, key=_sort_key):
        m = _LAYER_RE.match(hf_name)
        em = _EXPERT_RE.match(m.group(2)) if m else None
        if em:  # stacked once every expert of the layer and part is seen
            experts.setdefault((int(m.group(1)), _EXPERT_PARTS[em.group(2)]), {})[int(em.group(1))] = \
                tensors[hf_name]
            continue
        gname = hf_to_gguf_name(hf_name, arch)
        if gname is None:
            continue
        if gname == "output.weight" and tied:
            continue  # llama.cpp falls back to token_embd.weight
        data = np.ascontiguousarray(tensors[hf_name], dtype=np.float32)
        if gemma and _is_norm(hf_name):
            data = (data + np.float32(1.0)).astype(np.float32)
        if arch == "llama":
            if hf_name.endswith(("q_proj.weight", "q_proj.bias")):
                data = permute_qk(data, n_head)
            elif hf_name.endswith(("k_proj.weight", "k_proj.bias")):
                data = permute_qk(data, n_head_kv)
        add(gname, data, data.ndim <= 1 or gname.endswith(("_norm.weight", "ffn_gate_inp.weight")))
    for (layer, part), per_expert in sorted(experts.items()):
        stacked = np.ascontiguousarray(np.stack([per_expert[e] for e in range(n_experts)]),
                                       dtype=np.float32)
        add(f"blk.{layer}.{part}.weight", stacked, False)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return types


def convert_hf_dir(hf_dir: Path, out_path: Path, out_type: str, name: str) -> dict[str, str]:
    config, tensors = load_hf_dir(hf_dir)
    return convert(config, tensors, out_path, out_type, name)


# --------------------------------------------------------------------------
# reading back

def read_gguf(path: Path) -> tuple[gguf.GGUFReader, dict[str, np.ndarray], dict[str, str]]:
    """All tensors dequantized to f32, shaped like numpy (ne[1], ne[0])."""
    reader = gguf.GGUFReader(str(path))
    out: dict[str, np.ndarray] = {}
    types: dict[str, str] = {}
    for t in reader.tensors:
        shape = tuple(int(n) for n in reversed(t.shape.tolist()))
        vals = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type)
        out[t.name] = np.array(vals, dtype=np.float32, copy=True).reshape(shape)
        types[t.name] = t.tensor_type.name
    return reader, out, types


def field_value(reader: gguf.GGUFReader, key: str) -> Any:
    f = reader.fields[key]
    return f.contents()


def read_gguf_as_hf_state_dict(path: Path, config: dict[str, Any]) -> dict[str, np.ndarray]:
    """Inverse of convert(): HF-named f32 arrays holding exactly the values
    stored in the GGUF (Q/K permutation undone for arch llama, Gemma's 1 + w
    norms back to w, stacked experts split per expert)."""
    reader, tensors, _ = read_gguf(path)
    arch = field_value(reader, "general.architecture")
    hf_arch = config["architectures"][0]
    n_head = int(config["num_attention_heads"])
    n_head_kv = int(config.get("num_key_value_heads") or n_head)
    sd: dict[str, np.ndarray] = {}
    for gname, data in tensors.items():
        em = re.match(r"^blk\.(\d+)\.(ffn_gate_exps|ffn_up_exps|ffn_down_exps)\.weight$", gname)
        if em:
            mixtral = hf_arch == "MixtralForCausalLM"
            part = {"ffn_gate_exps": "w1" if mixtral else "gate_proj",
                    "ffn_up_exps": "w3" if mixtral else "up_proj",
                    "ffn_down_exps": "w2" if mixtral else "down_proj"}[em.group(2)]
            moe = "block_sparse_moe" if mixtral else "mlp"
            for e in range(data.shape[0]):
                sd[f"model.layers.{em.group(1)}.{moe}.experts.{e}.{part}.weight"] = \
                    np.ascontiguousarray(data[e])
            continue
        hf_name = gguf_to_hf_name(gname, arch, hf_arch)
        if hf_name is None:
            continue
        if arch in GEMMA_ARCHS and _is_norm(hf_name):
            data = (data - np.float32(1.0)).astype(np.float32)  # exact: 1 + w is in [0.5, 2]
        if arch == "llama":
            if gname.endswith(("attn_q.weight", "attn_q.bias")):
                data = unpermute_qk(data, n_head)
            elif gname.endswith(("attn_k.weight", "attn_k.bias")):
                data = unpermute_qk(data, n_head_kv)
        sd[hf_name] = np.ascontiguousarray(data)
    if config.get("tie_word_embeddings", arch in GEMMA_ARCHS):
        assert "lm_head.weight" not in sd
    return sd
