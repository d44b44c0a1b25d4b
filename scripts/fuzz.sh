#!/usr/bin/env bash
# Runs the libFuzzer targets (fuzz/*_fuzz.cc), built by the asan preset (clang) beside the
# sanitized unit tests.
#
#   scripts/fuzz.sh smoke        # every target for KINFER_FUZZ_SECONDS (default 20) each: CI
#   scripts/fuzz.sh run NAME [libFuzzer args...]   # one target, as long as you like
#
# Seeds come from fuzz/corpus/<name>/ (committed, small) plus, for model parsers, real files
# from ../shared; crashes are written to build/fuzz/crashes/.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake --preset asan >/dev/null
cmake --build --preset asan -j "$(nproc)"
mkdir -p build/fuzz/crashes build/fuzz/corpus

seed_dirs() {
  local name=$1 dirs=()
  [[ -d fuzz/corpus/$name ]] && dirs+=("fuzz/corpus/$name")
  if [[ -x fuzz/seeds.sh ]]; then
    local extra
    extra=$(fuzz/seeds.sh "$name")
    [[ -n $extra ]] && dirs+=("$extra")
  fi
  printf '%s\n' "${dirs[@]}"
}

run_target() {
  local name=$1; shift
  local work=build/fuzz/corpus/$name
  mkdir -p "$work"
  mapfile -t seeds < <(seed_dirs "$name")
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    "build/asan/fuzz/$name" "$work" "${seeds[@]}" -artifact_prefix=build/fuzz/crashes/ \
    -rss_limit_mb=2048 -timeout=10 -max_len="${KINFER_FUZZ_MAX_LEN:-65536}" "$@"
}

case "${1:-smoke}" in
  smoke)
    secs=${KINFER_FUZZ_SECONDS:-20}
    for src in fuzz/*_fuzz.cc; do
      name=$(basename "$src" .cc)
      echo "[fuzz] $name for ${secs}s"
      run_target "$name" -max_total_time="$secs" -print_final_stats=0 2>&1 | tail -n 3
    done
    ;;
  run)
    shift
    run_target "$@"
    ;;
  *)
    echo "usage: scripts/fuzz.sh smoke | run NAME [libFuzzer args...]" >&2
    exit 2
    ;;
esac
