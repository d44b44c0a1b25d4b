#!/usr/bin/env bash
# Checks formatting (clang-format, the repo's .clang-format) and runs clang-tidy (the repo's
# .clang-tidy, warnings as errors) over src/. Uses the asan build's compile commands (clang).
#
#   scripts/lint.sh            # check everything
#   scripts/lint.sh --fix      # rewrite formatting in place first
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files 'src/*.cc' 'src/*.h' 'tests/unit/*.cc' 'tests/unit/*.h' 'fuzz/*.cc' 'bench/*.cc')
if [[ ${1:-} == --fix ]]; then
  clang-format -i $files
fi
echo "[lint] clang-format"
clang-format --dry-run -Werror $files
if [[ ! -f build/asan/compile_commands.json ]]; then
  cmake --preset asan >/dev/null
fi
echo "[lint] clang-tidy over src/ ($(git ls-files 'src/*.cc' | wc -l) files)"
set +e
out=$(run-clang-tidy-14 -quiet -p build/asan -j "$(nproc)" "$(pwd)/src/.*\.cc$" 2>&1)
rc=$?
set -e
grep -E "(error|warning): " <<<"$out" | sort -u || true
if ((rc != 0)); then
  echo "[lint] clang-tidy found problems"
  exit 1
fi
echo "[lint] clean"
