#!/usr/bin/env python3
"""Regenerate tests/fixtures/embeddings/: tiny random-weight decoder embedding models laid out as
sentence-transformers saves them, with reference embeddings computed by sentence-transformers.

Models (each a directory kinfer serves as it is):
- qwen3-embed: the Qwen3-Embedding layout as published (sentence-transformers 3.x files:
  modules.json with sentence_transformers.models.* types, 1_Pooling/config.json with
  pooling_mode_lasttoken, 2_Normalize; config.json Qwen3ForCausalLM with tied embeddings and
  is_matryoshka; weights named model.*; a byte-level BPE tokenizer whose post-processor appends
  <|endoftext|>, left padding). Also converted to GGUF (F32, qwen3.pooling_type = 3, last).
- llama-mean: what sentence-transformers 6 writes itself (Transformer + mean Pooling, no
  Normalize; a LlamaModel without LM head, weights without the model. prefix; the tokenizer
  prepends <s>).

For each: reference.json lists the texts, the token ids transformers' tokenizer gives them
(add_special_tokens=True), and the files of float32 vectors (row-major [n][hidden]):
- embeddings.f32: SentenceTransformer.encode of the texts in one batch (padded as it pads);
- pooled.f32: the same without the Normalize module (the pooled hidden states);
- for qwen3-embed, dims<N>.f32: pooled[:, :N] L2-normalized (what `dimensions` returns, as
  vLLM and OpenAI do: truncate, then normalize), and pooled_mean.f32: the mean of transformers'
  last hidden states (what --pooler-config '{"pooling_type": "MEAN"}' gives).

Run from the repo root with torch, transformers, sentence-transformers, safetensors, gguf:
    python3 tests/reference/make_embedding_fixtures.py
Deterministic (fixed seeds, single-threaded float32 CPU).
"""

from __future__ import annotations

import importlib.metadata
import json
import math
import shutil
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import gguf_convert  # noqa: E402

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers  # noqa: E402
from transformers import LlamaConfig, PreTrainedTokenizerFast, Qwen3Config  # noqa: E402
from transformers import AutoModel  # noqa: E402
from sentence_transformers import SentenceTransformer  # noqa: E402

ROOT = HERE.parent.parent
OUT = ROOT / "tests" / "fixtures" / "embeddings"

# The tokenizer's training text and the texts embedded: varied lengths, punctuation, digits,
# non-ASCII, special-token text inside a string, one text longer than a 16-token KV block.
CORPUS = [
    "The quick brown fox jumps over the lazy dog.",
    "A journey of a thousand miles begins with a single step.",
    "Kinfer serves language models on Kubernetes with one small binary.",
    "Embeddings map text to vectors; similar texts get similar vectors.",
    "What is the capital of France? Paris is the capital of France.",
    "Numbers like 42, 3.14 and 2026 appear in text too.",
    "Caf\u00e9, na\u00efve, \u00fcber and \u65e5\u672c\u8a9e are not ASCII.",
]
TEXTS = [
    "Hello",
    "The quick brown fox jumps over the lazy dog.",
    "What is the capital of France?",
    "Paris is the capital of France.",
    "caf\u00e9 \u65e5\u672c",
    "<|im_start|>user question<|im_end|>",
    "Embeddings map text to vectors; similar texts get similar vectors, and a search engine "
    "ranks documents by how close their vectors are to the query's vector.",
    "42",
]
MATRYOSHKA_DIMS = [8, 16]

MODELS = [
    dict(name="qwen3-embed", seed=701, family="qwen3", pooling="lasttoken", normalize=True,
         st_layout="v3", bos=None, eos_suffix=True, padding_side="left",
         config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                     rms_norm_eps=1e-6, max_position_embeddings=128, tie_word_embeddings=True,
                     use_sliding_window=False,
                     rope_parameters={"rope_type": "default", "rope_theta": 1000000.0}),
         gguf_pooling_type=3),
    dict(name="llama-mean", seed=702, family="llama", pooling="mean", normalize=False,
         st_layout="native", bos="<s>", eos_suffix=False, padding_side="right",
         config=dict(hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                     num_attention_heads=4, num_key_value_heads=2, rms_norm_eps=1e-5,
                     max_position_embeddings=128, tie_word_embeddings=False,
                     rope_parameters={"rope_type": "default", "rope_theta": 10000.0}),
         gguf_pooling_type=None),
]


def log(msg: str) -> None:
    print(msg, flush=True)


def make_tokenizer(spec) -> PreTrainedTokenizerFast:
    """A real byte-level BPE tokenizer.json trained on CORPUS, with the specials both layouts
    use and the post-processor of the family (Qwen3-Embedding appends <|endoftext|>)."""
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<s>"]
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=320, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(CORPUS, trainer)
    ids = {t: tok.token_to_id(t) for t in specials}
    if spec["eos_suffix"]:
        tok.post_processor = processors.TemplateProcessing(
            single="$A <|endoftext|>", pair="$A <|endoftext|> $B:1 <|endoftext|>:1",
            special_tokens=[("<|endoftext|>", ids["<|endoftext|>"])])
    elif spec["bos"]:
        tok.post_processor = processors.TemplateProcessing(
            single="<s> $A", pair="<s> $A <s>:1 $B:1", special_tokens=[("<s>", ids["<s>"])])
    kwargs = dict(tokenizer_object=tok, eos_token="<|endoftext|>", pad_token="<|endoftext|>",
                  padding_side=spec["padding_side"], model_max_length=128)
    if spec["bos"]:
        kwargs["bos_token"] = spec["bos"]
    return PreTrainedTokenizerFast(**kwargs)


def init_weights(model: torch.nn.Module, seed: int) -> None:
    """The same recipe as make_model_fixtures.py: N(0, <=0.1) matrices, norms ~ 1 +- 0.1."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            r = torch.randn(p.shape, generator=g, dtype=torch.float32)
            if name.endswith("norm.weight"):
                p.copy_(1.0 + 0.1 * r)
            elif "embed_tokens" in name:
                p.copy_(0.1 * r)
            elif p.ndim == 2:
                p.copy_(min(0.1, 0.6 / math.sqrt(p.shape[1])) * r)
            else:
                raise AssertionError(f"unexpected parameter {name} {tuple(p.shape)}")


def write_v3_layout(d: Path, spec, hf_tok, base_model) -> None:
    """The files of a sentence-transformers 3.x model such as Qwen3-Embedding-0.6B, written
    here: the causal-LM class name with model.* weights and tied embeddings."""
    import safetensors.torch

    cfg = base_model.config.to_dict()
    cfg["architectures"] = ["Qwen3ForCausalLM"]
    cfg["is_matryoshka"] = True
    for k in ("_name_or_path", "transformers_version"):
        cfg.pop(k, None)
    (d / "config.json").write_text(json.dumps(cfg, indent=2, sort_keys=True) + "\n")
    sd = {f"model.{k}": v.contiguous() for k, v in base_model.state_dict().items()}
    safetensors.torch.save_file(sd, str(d / "model.safetensors"), metadata={"format": "pt"})
    hf_tok.save_pretrained(d)
    modules = [
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Pooling",
         "type": "sentence_transformers.models.Pooling"},
        {"idx": 2, "name": "2", "path": "2_Normalize",
         "type": "sentence_transformers.models.Normalize"},
    ]
    (d / "modules.json").write_text(json.dumps(modules, indent=2) + "\n")
    (d / "1_Pooling").mkdir()
    pooling = {"word_embedding_dimension": cfg["hidden_size"], "pooling_mode_cls_token": False,
               "pooling_mode_mean_tokens": False, "pooling_mode_max_tokens": False,
               "pooling_mode_mean_sqrt_len_tokens": False,
               "pooling_mode_weightedmean_tokens": False, "pooling_mode_lasttoken": True,
               "include_prompt": True}
    (d / "1_Pooling" / "config.json").write_text(json.dumps(pooling, indent=4) + "\n")
    (d / "2_Normalize").mkdir()
    (d / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 128, "do_lower_case": False}, indent=4) + "\n")
    (d / "config_sentence_transformers.json").write_text(json.dumps(
        {"prompts": {"query": "Instruct: Given a web search query, retrieve relevant passages "
                              "that answer the query\nQuery:", "document": ""},
         "default_prompt_name": None, "similarity_fn_name": "cosine"}, indent=4) + "\n")


def build(spec) -> dict:
    from sentence_transformers.sentence_transformer import modules as stm

    log(f"{spec['name']}: building")
    hf_tok = make_tokenizer(spec)
    cls = {"qwen3": Qwen3Config, "llama": LlamaConfig}[spec["family"]]
    cfg = cls(vocab_size=len(hf_tok), **spec["config"])
    torch.manual_seed(spec["seed"])
    base = AutoModel.from_config(cfg, dtype=torch.float32, attn_implementation="eager")
    init_weights(base, spec["seed"])
    base.eval()

    out = OUT / spec["name"]
    shutil.rmtree(out, ignore_errors=True)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        base.save_pretrained(tmp / "base")
        hf_tok.save_pretrained(tmp / "base")
        if spec["st_layout"] == "v3":
            out.mkdir(parents=True)
            write_v3_layout(out, spec, hf_tok, base)
        else:
            t = stm.Transformer(str(tmp / "base"))
            p = stm.Pooling(cfg.hidden_size, pooling_mode=spec["pooling"])
            mods = [t, p] + ([stm.Normalize()] if spec["normalize"] else [])
            SentenceTransformer(modules=mods).save(str(out))
            (out / "README.md").unlink(missing_ok=True)  # a generated model card, not data

    # References: sentence-transformers loads the directory as a user would.
    st = SentenceTransformer(str(out), device="cpu")
    tok = st.tokenizer
    token_ids = [tok(t, add_special_tokens=True)["input_ids"] for t in TEXTS]
    emb = st.encode(TEXTS, batch_size=len(TEXTS), convert_to_numpy=True).astype(np.float32)
    pooled_model = SentenceTransformer(modules=[st[0], st[1]], device="cpu")
    pooled = pooled_model.encode(TEXTS, batch_size=len(TEXTS), convert_to_numpy=True)
    pooled = pooled.astype(np.float32)
    # One at a time too: padding in the batch must not change a vector.
    single = np.stack([st.encode([t], convert_to_numpy=True)[0] for t in TEXTS])
    batch_vs_single = float(np.max(np.abs(single - emb)))
    assert batch_vs_single < 1e-5, batch_vs_single
    if spec["normalize"]:
        assert np.allclose(np.linalg.norm(emb, axis=1), 1, atol=1e-5)
        manual = pooled / np.linalg.norm(pooled, axis=1, keepdims=True)
        assert np.allclose(manual, emb, atol=1e-6)
    else:
        assert np.array_equal(emb, pooled)

    # An independent check of the pooling: transformers' hidden states, pooled by hand.
    with torch.no_grad():
        hs = [base(torch.tensor([ids])).last_hidden_state[0].numpy() for ids in token_ids]
    by_hand = np.stack([h[-1] if spec["pooling"] == "lasttoken" else h.mean(axis=0) for h in hs])
    hand_vs_st = float(np.max(np.abs(by_hand - pooled)))
    assert hand_vs_st < 1e-5, hand_vs_st

    files = {"embeddings": "embeddings.f32", "pooled": "pooled.f32"}
    emb.tofile(out / "embeddings.f32")
    pooled.tofile(out / "pooled.f32")
    ref = {
        "name": spec["name"],
        "pooling": spec["pooling"],
        "normalize": spec["normalize"],
        "hidden_size": cfg.hidden_size,
        "texts": TEXTS,
        "token_ids": token_ids,
        "files": files,
        "checks": {"batch_vs_single_max_abs": batch_vs_single,
                   "transformers_by_hand_vs_st_max_abs": hand_vs_st},
    }
    if spec["name"] == "qwen3-embed":
        # Mean pooling of the same model, for `--pooler-config '{"pooling_type": "MEAN"}'`.
        mean = np.stack([h.mean(axis=0) for h in hs]).astype(np.float32)
        mean.tofile(out / "pooled_mean.f32")
        files["pooled_mean"] = "pooled_mean.f32"
        dims = {}
        for n in MATRYOSHKA_DIMS:
            v = pooled[:, :n]
            v = (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)
            v.tofile(out / f"dims{n}.f32")
            dims[str(n)] = f"dims{n}.f32"
        ref["dimensions"] = dims

    if spec["gguf_pooling_type"] is not None:
        config, tensors = gguf_convert.load_hf_dir(out)
        if not any(k.startswith("model.") for k in tensors):
            tensors = {f"model.{k}": v for k, v in tensors.items()}
        gguf_name = f"{spec['name']}.f32.gguf"
        gguf_convert.convert(config, tensors, out / gguf_name, "f32", spec["name"],
                             pooling_type=spec["gguf_pooling_type"])
        ref["gguf"] = gguf_name
    (out / "reference.json").write_text(json.dumps(ref, indent=1, ensure_ascii=False) + "\n")
    log(f"{spec['name']}: batch vs single {batch_vs_single:.2e}, by hand vs st {hand_vs_st:.2e}")
    return ref


def main() -> None:
    torch.set_num_threads(1)
    names = set(sys.argv[1:])
    for spec in MODELS:
        if not names or spec["name"] in names:
            build(spec)
    versions = {p: importlib.metadata.version(p) for p in
                ("torch", "transformers", "sentence-transformers", "tokenizers", "gguf", "numpy")}
    log("made with " + ", ".join(f"{k} {v}" for k, v in versions.items()))


if __name__ == "__main__":
    main()
