#!/usr/bin/env bash
# Packs what tests/cuda/device_check.sh needs on a GPU machine that cannot build Kinfer (no
# Debian -dev packages, no network): the `cuda` build's binaries, stripped, with the shared
# libraries they need beyond glibc/libstdc++, the test models, the bench scripts, the gguf
# wheel and llama.cpp's source (from the llama-cpp-python sdist bench/run.py uses).
#
#   tests/cuda/bundle.sh DEST      # after: cmake --build --preset cuda --target kinfer \
#                                  #   kinfer_bench cuda_tests engine_tests
set -euo pipefail
cd "$(dirname "$0")/../.."
dest=${1:?usage: bundle.sh DEST}
build=build/cuda
shared=${KINFER_SHARED_DIR:-$(realpath ../shared)}
rm -rf "$dest" && mkdir -p "$dest"/{bin,lib/cxx,models,fixtures,bench,whl}
for b in src/kinfer bench/kinfer_bench tests/unit/cuda_tests tests/unit/engine_tests \
  tests/unit/model_tests; do
  strip -o "$dest/bin/$(basename $b)" "$build/$b"
done
# Libraries outside the C runtime and the C++ standard library (which the GPU image has).
ldd "$dest"/bin/* | awk '/=> \//{print $3}' | sort -u |
  grep -vE '/(libc|libm|libdl|librt|libpthread|libresolv|libnss_[a-z]*|libutil|libgcc_s|libstdc\+\+|ld-linux)[.-]' |
  while read -r lib; do cp -L "$lib" "$dest/lib/"; done
# The C++ runtime, for an image whose own is older than the one we built with.
cp -L "$(g++ -print-file-name=libstdc++.so.6)" "$(g++ -print-file-name=libgcc_s.so.1)" \
  "$dest/lib/cxx/"
strip --strip-unneeded "$dest"/lib/*.so* "$dest"/lib/cxx/* 2>/dev/null || true
cp "$shared/models/stories260K/stories260K.gguf" "$dest/models/"
cp -r tests/fixtures/models "$dest/fixtures/"  # every family's, for model_tests too
cp bench/run.py bench/child_process.py bench/make_models.py bench/cuda_bench.py "$dest/bench/"
cp tests/cuda/device_check.sh "$dest/"
python3 -m pip download -q --no-deps --only-binary=:all: -d "$dest/whl" "gguf==0.19.0"
version=$(sed -n 's/^LLAMA_CPP_PYTHON_VERSION = "\(.*\)"/\1/p' bench/run.py)
sdist="$HOME/.cache/kinfer/sdist/llama_cpp_python-$version.tar.gz"
if [[ -f $sdist ]]; then
  tmp=$(mktemp -d)
  tar xzf "$sdist" -C "$tmp" "llama_cpp_python-$version/vendor/llama.cpp"
  src="$tmp/llama_cpp_python-$version/vendor/llama.cpp"
  # What a CUDA build of llama-bench and llama-server reads; docs, models, tests, web UI and
  # other backends stay behind (4 MB compressed instead of 70).
  rm -rf "$src"/{docs,models,examples,tests,benches,media,.github,conversion,scripts,gguf-py}
  find "$src/tools/ui" -mindepth 1 -maxdepth 1 ! -name CMakeLists.txt ! -name scripts \
    -exec rm -rf {} +
  find "$src/ggml/src" -maxdepth 1 -type d -name 'ggml-*' ! -name ggml-cpu ! -name ggml-cuda \
    -exec rm -rf {} +
  tar cJf "$dest/llama.cpp-src.tar.xz" -C "$(dirname "$src")" llama.cpp
  rm -rf "$tmp"
fi
du -sh "$dest" "$dest"/*
