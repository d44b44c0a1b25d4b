#!/usr/bin/env bash
# Quick start: installs what is missing, builds the release binary and serves the default model
# (SmolLM2-135M-Instruct, GGUF Q4_1) over the OpenAI API on http://127.0.0.1:8000.
# Extra arguments go to `kinfer serve` (e.g. --port 9000 --api-key ...).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release
model="$(scripts/fetch_default_model.sh)"
exec build/release/src/kinfer serve --model "$model" --served-model-name smollm2 \
  --kv-cache-memory 1GiB "$@"
