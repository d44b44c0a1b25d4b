"""Kinfer's constrained-decoding masks against llguidance's own Python package, run live.

Reference: `llguidance` from PyPI (the same version Kinfer builds from crates.io, pinned in
tests/requirements.txt and third_party/llguidance/Cargo.lock), loading each tokenizer.json in
../shared/tokenizers through its Hugging Face tokenizer binding. Kinfer hands llguidance its own
view of the vocabulary (token bytes derived by Kinfer's tokenizer, special tokens marked, Kinfer's
EOS set), so equal masks check that view as well as the integration.

For every tokenizer and every grammar (JSON schemas, regexes, Lark, GBNF through each side's own
GBNF converter, choices), token sequences are walked through both: canonical tokenizations of
valid outputs, random walks over the allowed tokens (states a tokenizer would never reach), and
each sequence followed by a token the grammar refuses. At every step the allowed-token bitsets
must be equal, and both must accept and refuse the same tokens.
"""

import base64
import json
import random
import subprocess

import llguidance
import numpy as np
import pytest
from llguidance.gbnf_to_lark import gbnf_to_lark

from conftest import record

TOKENIZERS = ["llama3", "qwen3", "mistral-7b", "deepseek-v3"]

COMPACT = {"whitespace_flexible": False, "item_separator": ", ", "key_separator": ": "}

PERSON = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 1, "maxLength": 20},
        "age": {"type": "integer", "minimum": 0, "maximum": 150},
        "email": {"type": "string", "format": "email"},
        "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 4},
        "address": {"$ref": "#/$defs/address"},
    },
    "required": ["name", "age"],
    "additionalProperties": False,
    "$defs": {"address": {"type": "object", "properties": {
        "city": {"type": "string"}, "zip": {"type": "string", "pattern": "^[0-9]{5}$"}},
        "required": ["city"]}},
}
WEATHER_CALLS = {
    "type": "array", "minItems": 1,
    "items": {"anyOf": [
        {"type": "object", "properties": {"name": {"const": "get_weather"}, "parameters": {
            "type": "object", "properties": {"city": {"type": "string"},
                                             "unit": {"enum": ["c", "f"]}},
            "required": ["city"]}}, "required": ["name", "parameters"],
         "additionalProperties": False},
        {"type": "object", "properties": {"name": {"const": "get_time"}, "parameters": {
            "type": "object", "properties": {}}}, "required": ["name", "parameters"],
         "additionalProperties": False}]},
}
GBNF_LIST = r'''root ::= item+
item ::= "- " [a-zA-Z0-9 ,.]+ "\n"
'''
GBNF_ARITH = r'''root  ::= expr
expr  ::= term (ws [-+*/] ws term)*
term  ::= num | "(" ws expr ws ")"
num   ::= [0-9]{1,4} ("." [0-9]{1,2})?
ws    ::= [ ]?
'''

# (kind for kinfer, grammar for kinfer, grammar string for llguidance, valid texts, invalid texts)
CASES = [
    ("json_schema", json.dumps({**PERSON, "x-guidance": COMPACT}),
     llguidance.LLMatcher.grammar_from_json_schema({**PERSON, "x-guidance": COMPACT}),
     ['{"name": "Ada Lovelace", "age": 36, "tags": ["math", "poetry"]}',
      '{"name": "Bo", "age": 7, "address": {"city": "Oslo", "zip": "01234"}}'],
     ['{"name": "Bo", "age": -1}', '{"age": 3}', '{"name": "Bo", "age": 3, "x": 1}']),
    ("json_schema", json.dumps(PERSON), llguidance.LLMatcher.grammar_from_json_schema(PERSON),
     ['{ "name" : "Ada",\n  "age": 36 }'], ['{"name": 5}']),
    ("json_schema", json.dumps({**WEATHER_CALLS, "x-guidance": COMPACT}),
     llguidance.LLMatcher.grammar_from_json_schema({**WEATHER_CALLS, "x-guidance": COMPACT}),
     ['[{"name": "get_weather", "parameters": {"city": "Paris", "unit": "c"}}, '
      '{"name": "get_time", "parameters": {}}]'],
     ['[{"name": "get_wether", "parameters": {}}]', '[]']),
    ("json_object", "", llguidance.LLMatcher.grammar_from_json_schema({"type": "object"}),
     ['{"a": [1, 2.5, {"b": null}], "c": true}'], ['[1, 2]']),
    ("regex", r"(\+|00)[0-9]{2} [0-9]{3}-[0-9]{4}",
     llguidance.LLMatcher.grammar_from_regex(r"(\+|00)[0-9]{2} [0-9]{3}-[0-9]{4}"),
     ["+47 123-4567", "0049 555-0000"], ["+4 123-4567", "+47 1234567"]),
    ("lark", 'start: "Answer: " ("yes" | "no") "." /[ a-z]{0,10}/',
     llguidance.LLMatcher.grammar_from_lark('start: "Answer: " ("yes" | "no") "." /[ a-z]{0,10}/'),
     ["Answer: yes.", "Answer: no. sure"], ["Answer: maybe."]),
    ("gbnf", GBNF_LIST, llguidance.LLMatcher.grammar_from_lark(gbnf_to_lark(GBNF_LIST)),
     ["- milk\n- 2 eggs, fresh\n"], ["* milk\n"]),
    ("gbnf", GBNF_ARITH, llguidance.LLMatcher.grammar_from_lark(gbnf_to_lark(GBNF_ARITH)),
     ["(1 + 2.5) * 30", "7/8"], ["1 ++ 2", "12345"]),
]


def b64mask(mask_bytes, nbytes):
    return base64.b64encode(bytes(mask_bytes[:nbytes])).decode("ascii")


def allowed_ids(mask_bytes, vocab):
    bits = np.unpackbits(np.frombuffer(bytes(mask_bytes), dtype=np.uint8), bitorder="little")
    return np.flatnonzero(bits[:vocab]).tolist()


@pytest.fixture(scope="module", params=TOKENIZERS)
def setup(request, kinfer, shared):
    name = request.param
    path = shared / "tokenizers" / name / "tokenizer.json"
    proc = subprocess.Popen([kinfer, "grammar", "--tokenizer", str(path), "--jsonl"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                            encoding="utf-8")
    header = json.loads(proc.stdout.readline())
    vocab, eos = header["vocab_size"], header["eos"]
    ll = llguidance.LLTokenizer(str(path), n_vocab=vocab, eos_token=eos)

    def kinfer_walk(kind, grammar, tokens):
        proc.stdin.write(json.dumps({"type": kind, "grammar": grammar, "tokens": tokens}) + "\n")
        proc.stdin.flush()
        return json.loads(proc.stdout.readline())

    yield name, vocab, ll, kinfer_walk
    proc.stdin.close()
    proc.wait(timeout=60)


def reference_walk(ll, grammar, tokens, vocab):
    m = llguidance.LLMatcher(ll, grammar, log_level=0)
    assert not m.is_error(), m.get_error()
    masks, accepted = [], 0
    for i in range(len(tokens) + 1):
        if m.is_stopped():
            break
        mask = m.compute_bitmask()
        masks.append(b64mask(mask, (vocab + 7) // 8))
        if i == len(tokens):
            break
        t = tokens[i]
        if not (mask[t // 8] >> (t % 8) & 1):
            break
        assert m.consume_token(t), m.get_error()
        accepted += 1
    return masks, accepted, m.is_stopped()


def random_walk(ll, grammar, vocab, rng, steps):
    m = llguidance.LLMatcher(ll, grammar, log_level=0)
    tokens = []
    for _ in range(steps):
        if m.is_stopped():
            break
        allowed = allowed_ids(m.compute_bitmask(), vocab)
        if not allowed:
            break
        t = rng.choice(allowed)
        assert m.consume_token(t)
        tokens.append(t)
    return tokens


def test_masks_equal_llguidance(setup):
    name, vocab, ll, kinfer_walk = setup
    rng = random.Random(1234)
    steps = 0
    for kind, kgrammar, ref_grammar, valid, invalid in CASES:
        # Tokenized as llguidance tokenizes text in the middle of an output (a SentencePiece
        # tokenizer's encode() would add its leading space).
        sequences = [ll.tokenize_str(t) for t in valid + invalid]
        sequences += [random_walk(ll, ref_grammar, vocab, rng, 30) for _ in range(2)]
        walks = {}
        for seq in list(sequences):
            # The sequence plus a token the grammar refuses there.
            walks[tuple(seq)] = w = reference_walk(ll, ref_grammar, seq, vocab)
            if w[1] == len(seq) and w[0]:
                allowed = set(allowed_ids(base64.b64decode(w[0][-1]), vocab))
                refused = [i for i in range(0, vocab, 97) if i not in allowed]
                if refused:
                    sequences.append(seq + [rng.choice(refused)])
        for seq in sequences:
            if tuple(seq) not in walks:
                walks[tuple(seq)] = reference_walk(ll, ref_grammar, seq, vocab)
            want_masks, want_accepted, want_stopped = walks[tuple(seq)]
            got = kinfer_walk(kind, kgrammar, seq)
            assert "error" not in got, got["error"]
            where = f"{name} {kind} {kgrammar[:60]!r} tokens {seq}"
            assert got["accepted"] == want_accepted, where
            assert got["terminated"] == want_stopped, where
            assert len(got["masks"]) == len(want_masks), where
            for step, (g, w) in enumerate(zip(got["masks"], want_masks)):
                if g != w:
                    gi = set(allowed_ids(base64.b64decode(g), vocab))
                    wi = set(allowed_ids(base64.b64decode(w), vocab))
                    pytest.fail(f"{where}: step {step}: kinfer allows {len(gi)} tokens, "
                                f"llguidance {len(wi)}; only kinfer: {sorted(gi - wi)[:10]}, "
                                f"only llguidance: {sorted(wi - gi)[:10]}")
            steps += len(want_masks)
        # Valid texts are accepted whole, invalid ones refused somewhere.
        for t in valid:
            ids = ll.tokenize_str(t)
            assert kinfer_walk(kind, kgrammar, ids)["accepted"] == len(ids), (name, t)
        for t in invalid:
            ids = ll.tokenize_str(t)
            got = kinfer_walk(kind, kgrammar, ids)
            assert got["accepted"] < len(ids) or not got["terminated"], (name, t)
    record(f"grammar mask steps compared with llguidance ({name})", steps)


def test_gbnf_conversion_compiles_like_llguidance(setup):
    """Kinfer's GBNF converter and llguidance's Python one accept and refuse the same texts on
    llama.cpp-style grammars (the masks above check they allow the same tokens)."""
    name, vocab, ll, kinfer_walk = setup
    for g in (GBNF_LIST, GBNF_ARITH):
        got = kinfer_walk("gbnf", g, [])
        assert "error" not in got
        assert got["allowed"][0] > 0
