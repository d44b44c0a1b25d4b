#!/usr/bin/env bash
# Prints a directory of seed inputs for fuzz target $1 built from real files in ../shared
# (read-only, so small samples are copied into build/fuzz/seeds/<name>/), or nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1
shared=${KINFER_SHARED_DIR:-../shared}
out=build/fuzz/seeds/$name
mkdir -p "$out"
case "$name" in
  gguf_fuzz)
    # Headers only: the first 64 KiB of each GGUF holds its metadata and tensor directory.
    for f in "$shared"/models/stories260K/*.gguf "$shared"/tokenizer-tests/llama.cpp/ggml-vocab-bert-bge.gguf \
             tests/fixtures/models/*/*.q4_0.gguf tests/fixtures/models/*/*.q8_0.gguf \
             tests/fixtures/quant/*.gguf; do
      [[ -f $f ]] && head -c 65536 "$f" > "$out/$(basename "$f")"
    done
    ;;
  hf_config_fuzz)
    for f in tests/fixtures/models/*/hf/config.json tests/fixtures/models/*/hf-legacy-config/config.json; do
      [[ -f $f ]] && cp "$f" "$out/$(basename "$(dirname "$(dirname "$f")")")-$(basename "$(dirname "$f")").json"
    done
    ;;
  lora_adapter_fuzz)
    # Selector byte 0 + adapter_config.json + NUL + safetensors (PEFT), or 1 + a GGUF LoRA.
    for d in tests/fixtures/lora/stories_*/ tests/fixtures/lora/adapter_*/; do
      [[ -f $d/adapter_config.json ]] || continue
      { printf '\x00'; cat "$d/adapter_config.json"; printf '\x00'; cat "$d/adapter_model.safetensors"; } \
        > "$out/peft-$(basename "$d")"
    done
    for f in tests/fixtures/lora/*.gguf; do
      { printf '\x01'; cat "$f"; } > "$out/gguf-$(basename "$f")"
    done
    ;;
  safetensors_fuzz)
    for f in tests/fixtures/models/*/hf/*.safetensors; do
      [[ -f $f ]] && head -c 65536 "$f" > "$out/$(basename "$(dirname "$(dirname "$f")")")-$(basename "$f")"
    done
    ;;
  tokenizer_json_fuzz)
    # The shared tokenizer.json files cut down to a few hundred tokens and the merges among them
    # (the originals are megabytes), each with its tokenizer_config.json after a NUL byte.
    python3 - "$shared" "$out" <<'PY'
import json, pathlib, sys
shared, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
for d in sorted((shared / "tokenizers").glob("*/tokenizer.json")):
    tj = json.loads(d.read_text())
    model = tj["model"]
    keep = dict(sorted(model["vocab"].items(), key=lambda kv: kv[1])[:400])
    merges = []
    for m in model.get("merges", []):
        a, b = m.split(" ", 1) if isinstance(m, str) else m
        if a in keep and b in keep and a + b in keep:
            merges.append(m)
    model["vocab"], model["merges"] = keep, merges[:300]
    tj["added_tokens"] = tj.get("added_tokens", [])[:8]
    cfg = d.parent / "tokenizer_config.json"
    extra = b""
    if cfg.exists():
        c = json.loads(cfg.read_text())
        c.pop("chat_template", None)
        c.pop("added_tokens_decoder", None)
        extra = b"\0" + json.dumps(c).encode()
    (out / (d.parent.name + ".json")).write_bytes(json.dumps(tj).encode() + extra)
PY
    ;;
  tokenize_fuzz)
    # llama.cpp's test strings, each behind a byte that picks the tokenizer and the flags.
    python3 - "$shared" "$out" <<'PY'
import pathlib, sys
shared, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
cases = (shared / "tokenizer-tests" / "generated" / "common.inp").read_text().split("\n__ggml_vocab_test__\n")
for i, c in enumerate(cases):
    (out / f"case{i:02d}").write_bytes(bytes([i % 32]) + c.encode())
PY
    ;;
  chat_template_fuzz)
    for f in "$shared"/chat-templates/llama.cpp/*.jinja; do
      [[ -f $f ]] && cp "$f" "$out/"
    done
    ;;
  *) exit 0 ;;
esac
echo "$out"
