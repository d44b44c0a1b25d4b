#!/usr/bin/env bash
# Prints a directory of seed inputs for fuzz target $1 built from real files in ../shared
# (read-only, so small samples are copied into build/fuzz/seeds/<name>/), or nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
name=$1
shared=../shared
out=build/fuzz/seeds/$name
mkdir -p "$out"
case "$name" in
  gguf_fuzz)
    # Headers only: the first 64 KiB of each GGUF holds its metadata and tensor directory.
    for f in "$shared"/models/stories260K/*.gguf "$shared"/tokenizer-tests/llama.cpp/ggml-vocab-bert-bge.gguf \
             tests/fixtures/models/*/*.q4_0.gguf tests/fixtures/quant/*.gguf; do
      [[ -f $f ]] && head -c 65536 "$f" > "$out/$(basename "$f")"
    done
    ;;
  safetensors_fuzz)
    for f in tests/fixtures/models/*/hf/*.safetensors; do
      [[ -f $f ]] && head -c 65536 "$f" > "$out/$(basename "$(dirname "$(dirname "$f")")")-$(basename "$f")"
    done
    ;;
  *) exit 0 ;;
esac
echo "$out"
