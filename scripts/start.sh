#!/usr/bin/env bash
# Quick start: installs what is missing, builds the release binary and runs the default model
# (SmolLM2-135M-Instruct, GGUF Q4_1) on this machine.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release
model="$(scripts/fetch_default_model.sh)"
exec build/release/src/kinfer generate --model "$model" --prompt-ids 1 -n 64 "$@"
