"""kinfer's tokenizers against Hugging Face `tokenizers` (and `sentencepiece`), run live.

Reference: for every tokenizer.json in ../shared/tokenizers, HF tokenizers' own encode/decode on
the same strings; for SentencePiece models and llama2.c/GGUF SentencePiece vocabularies, the
`sentencepiece` library; for GGUF byte-level vocabularies (SmolLM2, the default model, and
llama.cpp's vocab files), an HF tokenizer assembled in Python from the GGUF's own tokens and
merges with the pre-tokenizer the model's tokenizer.json uses.
"""

import json
import random

import pytest
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

from conftest import record
from corpus import hard_strings, invalid_utf8
from kinfer_cli import mismatch_report, tokenize_batch

HF_TOKENIZERS = ["llama3", "qwen3", "deepseek-v3", "mistral-7b"]


@pytest.fixture(scope="module")
def corpus(shared):
    return hard_strings(shared)


def hf_tokenizer(shared, name):
    return Tokenizer.from_file(str(shared / "tokenizers" / name / "tokenizer.json"))


def hf_encode(tok, texts, parse_special, add_special_tokens=False):
    tok.encode_special_tokens = not parse_special
    try:
        return [e.ids for e in tok.encode_batch(texts, add_special_tokens=add_special_tokens)]
    finally:
        tok.encode_special_tokens = False


@pytest.mark.parametrize("name", HF_TOKENIZERS)
def test_encode_matches_hf_tokenizers(kinfer, shared, corpus, name):
    hf = hf_tokenizer(shared, name)
    bad_bytes = invalid_utf8()
    requests = [{"text": s, "parse_special": p} for p in (True, False) for s in corpus]
    requests += [{"bytes": b, "parse_special": True} for b in bad_bytes]
    got = tokenize_batch(kinfer, shared / "tokenizers" / name / "tokenizer.json", requests)
    # Invalid UTF-8: HF (Python str) sees the text after decode('utf-8', 'replace').
    repaired = [b.decode("utf-8", "replace") for b in bad_bytes]
    want = hf_encode(hf, corpus, True) + hf_encode(hf, corpus, False) + hf_encode(hf, repaired, True)
    mismatches = [(r.get("text", r.get("bytes")), r["parse_special"], w, g["ids"])
                  for r, w, g in zip(requests, want, got) if w != g["ids"]]
    record(f"tokenizer strings compared with HF tokenizers ({name})", len(requests))
    assert not mismatches, mismatch_report(mismatches)


@pytest.mark.parametrize("name", HF_TOKENIZERS)
def test_bos_eos_follow_tokenizer_config(kinfer, shared, corpus, name):
    """add_special_tokens: tokenizer_config.json's add_bos_token/add_eos_token when present
    (what transformers' Llama-style tokenizers do), else tokenizer.json's post-processor."""
    hf = hf_tokenizer(shared, name)
    config = json.loads((shared / "tokenizers" / name / "tokenizer_config.json").read_text())
    template = hf.encode("", add_special_tokens=True).ids

    def token_id(t):
        t = t["content"] if isinstance(t, dict) else t
        return hf.token_to_id(t) if t else None

    prefix, suffix = template, []
    if "add_bos_token" in config:
        bos = token_id(config.get("bos_token"))
        prefix = [bos] if config["add_bos_token"] and bos is not None else []
    if "add_eos_token" in config:
        eos = token_id(config.get("eos_token"))
        suffix = [eos] if config["add_eos_token"] and eos is not None else []
    texts = corpus[:300]
    got = tokenize_batch(kinfer, shared / "tokenizers" / name / "tokenizer.json",
                         [{"text": s, "add_special_tokens": True, "parse_special": False}
                          for s in texts])
    want = [prefix + ids + suffix for ids in hf_encode(hf, texts, False)]
    mismatches = [(t, w, g["ids"]) for t, w, g in zip(texts, want, got) if w != g["ids"]]
    assert not mismatches, mismatch_report(mismatches)


def decode_cases(hf, corpus, seed):
    """Id lists to decode: encodings of the corpus, random ids over the whole vocab (specials
    included), and byte-level/byte-fallback tokens that split UTF-8 characters."""
    rng = random.Random(seed)
    n = hf.get_vocab_size(with_added_tokens=True)
    cases = hf_encode(hf, corpus[:800], True)
    cases += [[rng.randrange(n) for _ in range(rng.randint(1, 30))] for _ in range(400)]
    vocab = hf.get_vocab(with_added_tokens=True)
    byte_ids = [vocab[f"<0x{b:02X}>"] for b in range(256) if f"<0x{b:02X}>" in vocab]
    if byte_ids:
        for _ in range(150):
            cases.append([rng.choice(byte_ids + [vocab.get("▁a", 0), vocab.get("▁", 0)])
                          for _ in range(rng.randint(1, 12))])
        # A character split over byte tokens, then a normal token.
        cases.append([vocab["<0xE4>"], vocab["<0xBD>"], vocab["<0xA0>"], vocab.get("▁a", 0)])
        cases.append([vocab["<0xE4>"], vocab["<0xBD>"], vocab.get("▁a", 0)])
    else:
        partial = [i for t, i in vocab.items() if len(t) == 1 and 0x80 <= ord(t) < 0x100]
        for _ in range(150):
            cases.append([rng.choice(partial + cases[0][:3] if cases[0] else partial)
                          for _ in range(rng.randint(1, 12))])
    return cases


@pytest.mark.parametrize("name", HF_TOKENIZERS)
def test_decode_and_streaming_match_hf_tokenizers(kinfer, shared, corpus, name):
    hf = hf_tokenizer(shared, name)
    cases = decode_cases(hf, corpus, seed=5)
    requests = [{"decode": ids, "skip_special_tokens": s} for s in (False, True) for ids in cases]
    got = tokenize_batch(kinfer, shared / "tokenizers" / name / "tokenizer.json", requests)
    mismatches, stream_breaks = [], []
    for r, g in zip(requests, got):
        want = hf.decode(r["decode"], skip_special_tokens=r["skip_special_tokens"])
        if want != g["text"]:
            mismatches.append((r, want, g["text"]))
        if "".join(g["deltas"]) != g["text"]:
            stream_breaks.append((r, g["deltas"], g["text"]))
    record(f"decodes compared with HF tokenizers ({name})", len(requests))
    assert not mismatches, mismatch_report(mismatches)
    assert not stream_breaks, mismatch_report(stream_breaks)


# SentencePiece vocabularies: .model files, llama2.c .bin and GGUF "llama" vocabs with the same
# pieces, against the sentencepiece library on the .model. llama2.c's run.c and llama.cpp keep
# extra whitespace, so their reference is the .model with remove_extra_whitespaces off.
SPM_CASES = [
    ("tokenizers/llama2-sentencepiece/tokenizer.model", "tokenizers/llama2-sentencepiece/tokenizer.model", True),
    ("tokenizers/llama2-sentencepiece/tokenizer.bin", "tokenizers/llama2-sentencepiece/tokenizer.model", False),
    ("models/stories260K/tok512.model", "models/stories260K/tok512.model", True),
    ("models/stories260K/tok512.bin", "models/stories260K/tok512.model", False),
    ("models/stories260K/stories260K.gguf", "models/stories260K/tok512.model", False),
]


def _varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _read_varint(buf, pos):
    n = shift = 0
    while True:
        b = buf[pos]
        pos += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, pos


def keep_extra_whitespace(model_bytes):
    """The ModelProto with normalizer_spec.remove_extra_whitespaces (field 4) set to false:
    the last occurrence of a protobuf field wins, so it is appended to the submessage."""
    out, pos = bytearray(), 0
    while pos < len(model_bytes):
        key, p = _read_varint(model_bytes, pos)
        wire = key & 7
        if wire == 2:
            n, p2 = _read_varint(model_bytes, p)
            body = model_bytes[p2:p2 + n]
            if key >> 3 == 3:
                body = body + b"\x20\x00"
            out += _varint(key) + _varint(len(body)) + body
            pos = p2 + n
        elif wire == 0:
            _, p2 = _read_varint(model_bytes, p)
            out += model_bytes[pos:p2]
            pos = p2
        elif wire == 5:
            out += model_bytes[pos:p + 4]
            pos = p + 4
        elif wire == 1:
            out += model_bytes[pos:p + 8]
            pos = p + 8
        else:
            raise ValueError("unexpected wire type")
    return bytes(out)


@pytest.mark.parametrize("path,reference,as_is", SPM_CASES, ids=[c[0] for c in SPM_CASES])
def test_sentencepiece_vocabularies_match_sentencepiece(kinfer, shared, corpus, path, reference,
                                                         as_is):
    import sentencepiece as spm
    model = (shared / reference).read_bytes()
    sp = spm.SentencePieceProcessor(model_proto=model if as_is else keep_extra_whitespace(model))
    requests = [{"text": s, "parse_special": False} for s in corpus]
    got = tokenize_batch(kinfer, shared / path, requests)
    want = [sp.encode(s) for s in corpus]
    mismatches = [(s, w, g["ids"]) for s, w, g in zip(corpus, want, got) if w != g["ids"]]
    record(f"tokenizer strings compared with sentencepiece ({path})", len(requests))
    assert not mismatches, mismatch_report(mismatches)
    dec = tokenize_batch(kinfer, shared / path, [{"decode": w} for w in want[:600]])
    dec_bad = [(w, sp.decode(w), g["text"]) for w, g in zip(want, dec) if sp.decode(w) != g["text"]]
    assert not dec_bad, mismatch_report(dec_bad)


def gguf_reference(path):
    """An HF tokenizer built from a GGUF "gpt2" vocabulary (tokens, types, merges) with the
    pre-tokenizer of the family's tokenizer.json: Digits(individual) + ByteLevel for
    smollm/starcoder/refact, ByteLevel alone for gpt-2/mpt."""
    import gguf
    r = gguf.GGUFReader(str(path))

    def strings(key):
        f = r.fields[key]
        return [bytes(f.parts[i]).decode("utf-8") for i in f.data]

    def ints(key):
        f = r.fields[key]
        return [int(f.parts[i][0]) for i in f.data]

    def scalar(key):
        f = r.fields[key]
        return bytes(f.parts[f.data[0]]).decode("utf-8")

    tokens, types = strings("tokenizer.ggml.tokens"), ints("tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ", 1)) for m in strings("tokenizer.ggml.merges")]
    pre = scalar("tokenizer.ggml.pre")
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab, merges))
    steps = [pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)]
    if pre in ("smollm", "starcoder", "refact"):
        steps.insert(0, pre_tokenizers.Digits(individual_digits=True))
    elif pre not in ("gpt-2", "mpt"):
        pytest.skip(f"no reference pre-tokenizer for '{pre}'")
    tok.pre_tokenizer = pre_tokenizers.Sequence(steps)
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty == 3])
    tok.add_tokens([AddedToken(t, special=False, normalized=False)
                    for t, ty in zip(tokens, types) if ty == 4])
    return tok


def default_model():
    """SmolLM2-135M-Instruct Q4_1 (scripts/fetch_default_model.sh puts it in the cache)."""
    import os
    path = os.environ.get("KINFER_DEFAULT_MODEL") or os.path.expanduser(
        os.path.join(os.environ.get("KINFER_CACHE", "~/.cache/kinfer"), "models",
                     "SmolLM2-135M-Instruct.Q4_1.gguf"))
    return path if os.path.exists(path) else None


def gguf_cases(shared):
    cases = []
    if default_model():
        cases.append(default_model())
    for name in ("gpt-2", "starcoder", "refact", "mpt"):
        cases.append(str(shared / "tokenizer-tests" / "llama.cpp" / f"ggml-vocab-{name}.gguf"))
    return cases


def test_default_model_is_available():
    """The default model (SmolLM2, GGUF smollm pre-tokenizer) must be part of the comparison
    (scripts/test.sh fetches it and exports KINFER_DEFAULT_MODEL)."""
    assert default_model(), "run scripts/fetch_default_model.sh"


@pytest.mark.parametrize("path", gguf_cases(__import__("conftest").shared_dir()),
                         ids=lambda p: p.rsplit("/", 1)[-1])
def test_gguf_byte_level_vocabularies_match_hf(kinfer, corpus, path):
    hf = gguf_reference(path)
    requests = [{"text": s, "parse_special": p} for p in (True, False) for s in corpus]
    got = tokenize_batch(kinfer, path, requests)
    want = hf_encode(hf, corpus, True) + hf_encode(hf, corpus, False)
    mismatches = [(r["text"], r["parse_special"], w, g["ids"])
                  for r, w, g in zip(requests, want, got) if w != g["ids"]]
    record(f"tokenizer strings compared with HF tokenizers (GGUF {path.rsplit('/', 1)[-1]})",
           len(requests))
    assert not mismatches, mismatch_report(mismatches)
    ids = want[:500]
    dec = tokenize_batch(kinfer, path, [{"decode": w} for w in ids])
    dec_bad = [(w, hf.decode(w, skip_special_tokens=False), g["text"]) for w, g in zip(ids, dec)
               if hf.decode(w, skip_special_tokens=False) != g["text"]]
    assert not dec_bad, mismatch_report(dec_bad)


@pytest.mark.parametrize("name", ["qwen3", "llama3"])
def test_cli_reads_special_token_text_as_hugging_face_does(kinfer, shared, name):
    """`kinfer tokenize --text` parses special-token text by default, as tokenizers' encode does
    (and vLLM's /tokenize); --literal reads it as plain text (encode_special_tokens=True)."""
    import json
    import subprocess
    hf = hf_tokenizer(shared, name)
    path = shared / "tokenizers" / name / "tokenizer.json"
    text = {"qwen3": "<|im_start|>user\nHi<|im_end|>", "llama3": "<|begin_of_text|>Hi<|eot_id|>"}[name]

    def cli(*flags):
        out = subprocess.run([kinfer, "tokenize", "--tokenizer", str(path), "--text", text, *flags],
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out.splitlines()[0])

    assert cli() == hf_encode(hf, [text], True)[0]
    assert cli("--literal") == hf_encode(hf, [text], False)[0]
    assert cli() != cli("--literal")
