#!/usr/bin/env bash
# The CUDA backend's checks and figures on a GPU machine, in one run, from a bundle made by
# tests/cuda/bundle.sh (binaries built elsewhere with `cmake --preset cuda`, their non-system
# libraries, the test models, the bench scripts, llama.cpp's source):
#   1. the CUDA kernel and backend tests (against the CPU kernels and backend), and the engine's
#      suite (batch invariance included) with the engine on the GPU;
#   2. `kinfer generate` greedy on the GPU and on the CPU, same text expected;
#   3. the same backend comparison on random-weight models in the benchmark shapes;
#   4. bench/cuda_bench.py: prefill/decode and serving against llama.cpp's CUDA build, which is
#      compiled here in the background meanwhile (skipped if it is not ready in time).
#
#   BUNDLE=.gpu OUT=/tmp/out bash .gpu/device_check.sh
set -u
B=$(realpath "${BUNDLE:-.gpu}")
RESULTS=${OUT:-/tmp/kinfer-gpu-out}  # gets logs.tar.gz and summary.txt (few files travel back)
OUT=/tmp/kinfer-gpu-logs
mkdir -p "$OUT" "$RESULTS"
T0=$(date +%s)
LLAMA_DEADLINE=${LLAMA_DEADLINE:-230}  # seconds after start to wait for llama.cpp at most
el() { echo $(( $(date +%s) - T0 )); }
say() { echo "[gpu +$(el)s] $*"; }
# Our binaries see the carried libraries; nothing else does (python, cmake, nvcc keep the
# image's own). The C++ runtime is carried too, used only if the image's is older.
K=/tmp/kbin && mkdir -p $K
libpath="$B/lib"
LD_LIBRARY_PATH=$libpath "$B/bin/kinfer" --version >/dev/null 2>&1 || libpath="$B/lib:$B/lib/cxx"
for b in kinfer kinfer_bench cuda_tests engine_tests model_tests; do
  printf '#!/bin/sh\nLD_LIBRARY_PATH=%s exec %s "$@"\n' "$libpath" "$B/bin/$b" > $K/$b
  chmod +x $K/$b
done
$K/kinfer --version || echo "kinfer does not start here: $(LD_LIBRARY_PATH=$libpath ldd "$B/bin/kinfer" | grep -i 'not found')"
export KINFER_BENCH_CACHE=/tmp/kinfer-bench && mkdir -p "$KINFER_BENCH_CACHE"
summary=()
result() { summary+=("$1"); say "$1"; }

nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.sm,clocks.mem --format=csv
nproc; uname -r; (ldd --version | head -1) 2>/dev/null

# The tests read their data at the absolute paths they were built with.
mkdir -p /work/shared/models/stories260K /work/cuda/tests/fixtures
cp "$B"/models/stories260K.gguf /work/shared/models/stories260K/
cp -r "$B"/fixtures/models /work/cuda/tests/fixtures/

python3 -m pip install -q --no-index --no-deps --target /tmp/site "$B"/whl/*.whl && export PYTHONPATH=/tmp/site

# --- background: llama.cpp's CUDA build (sm_90, FlashAttention kernels off to fit the time) ---
build_llama() {
  local nvcc root
  for c in "$(command -v nvcc 2>/dev/null)" /usr/local/cuda/bin/nvcc \
           /opt/torch/.venv/lib/python3*/site-packages/nvidia/cu13/bin/nvcc; do
    [[ -n $c && -x $c ]] && { nvcc=$(readlink -f "$c"); break; }
  done
  [[ -z ${nvcc:-} ]] && nvcc=$(find / -xdev -path '*/bin/nvcc' -type f 2>/dev/null | head -1)
  [[ -z ${nvcc:-} ]] && { echo "no nvcc"; return 1; }
  root=$(dirname "$(dirname "$nvcc")")
  echo "nvcc: $nvcc"; "$nvcc" --version | tail -2
  # A toolkit root CMake's FindCUDAToolkit accepts: lib64, unversioned .so names, cuBLAS.
  mkdir -p /tmp/cu/lib
  for d in "$root/lib" "$root/lib64" /opt/torch/.venv/lib/python3*/site-packages/nvidia/cu13/lib \
           /opt/torch/.venv/lib/python3*/site-packages/nvidia/cublas/lib; do
    [[ -d $d ]] && for f in "$d"/*; do ln -sf "$f" /tmp/cu/lib/ 2>/dev/null; done
  done
  for n in cublas cublasLt cudart; do
    [[ -e /tmp/cu/lib/lib$n.so ]] || ln -sf "$(ls /tmp/cu/lib/lib$n.so.* | head -1)" /tmp/cu/lib/lib$n.so
  done
  ln -sfn lib /tmp/cu/lib64
  for d in bin include nvvm; do [[ -e $root/$d ]] && ln -sfn "$root/$d" /tmp/cu/$d; done
  tar xJf "$B"/llama.cpp-src.tar.xz -C /tmp || return 1
  cmake -S /tmp/llama.cpp -B /tmp/llama-build -G Ninja -DCMAKE_BUILD_TYPE=Release \
    -DGGML_CUDA=ON -DGGML_CUDA_FA=OFF -DGGML_CUDA_NCCL=OFF -DCMAKE_CUDA_ARCHITECTURES=90 \
    -DCUDAToolkit_ROOT=/tmp/cu -DCMAKE_CUDA_COMPILER="$nvcc" -DGGML_NATIVE=ON \
    -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_UI=OFF \
    -DLLAMA_USE_PREBUILT_UI=OFF -DLLAMA_OPENSSL=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_APP=OFF \
    || return 1
  nice -n 10 cmake --build /tmp/llama-build -j 13 --target llama-bench llama-server || return 1
}
if [[ ${LLAMA:-1} == 1 ]]; then
  ( build_llama > "$OUT/llama_build.log" 2>&1; echo "rc=$?" >> "$OUT/llama_build.log" ) &
  LLAMA_PID=$!
else
  LLAMA_PID=0
fi

# --- background: the benchmark models ---
MODELS=/tmp/kinfer-models && mkdir -p $MODELS
gen_pids=()
for s in ${SHAPES-qwen2.5-0.5b llama-3.2-1b}; do
  for t in ${TYPES-F16 Q4_0}; do
    python3 "$B"/bench/make_models.py --out $MODELS --shape $s --type $t > "$OUT/gen-$s-$t.log" 2>&1 &
    gen_pids+=($!)
  done
done

# --- 1. tests on the GPU ---
say "cuda_tests (kernels and backend vs CPU)"
timeout 150 $K/cuda_tests > "$OUT/cuda_tests.log" 2>&1
grep -E "^\[  (PASSED|FAILED) |OK \]|FAILED  \]|SKIPPED|\[cuda\]|Failure|rror|Expected|Which is|actual" \
  "$OUT/cuda_tests.log" | head -80
grep -q "^\[  PASSED  \]" "$OUT/cuda_tests.log" && ! grep -q "FAILED" "$OUT/cuda_tests.log" \
  && result "cuda_tests: PASSED ($(grep -c '       OK ' "$OUT/cuda_tests.log") tests)" \
  || result "cuda_tests: FAILED (see cuda_tests.log)"

say "engine_tests with the engine on the GPU"
KINFER_TEST_DEVICE=cuda timeout 150 $K/engine_tests > "$OUT/engine_tests_gpu.log" 2>&1
grep -E "FAILED|PASSED|Failure" "$OUT/engine_tests_gpu.log" | head -20
grep -q "^\[  PASSED  \]" "$OUT/engine_tests_gpu.log" && ! grep -q "FAILED" "$OUT/engine_tests_gpu.log" \
  && result "engine_tests on cuda: PASSED ($(grep -c '       OK ' "$OUT/engine_tests_gpu.log") tests)" \
  || result "engine_tests on cuda: FAILED (see engine_tests_gpu.log)"
grep -q "KV cache on cuda" "$OUT/engine_tests_gpu.log" && say "(the engine log names the cuda backend)"

# The CPU backend on this machine's processor, against the transformers fixtures (context for
# the GPU-vs-CPU differences above).
timeout 60 $K/model_tests --gtest_filter='*Reference*' > "$OUT/model_tests_cpu.log" 2>&1
grep -E "^\[  (PASSED|FAILED)|Failure|Which is|ScaledError" "$OUT/model_tests_cpu.log" | head -20

# --- 2. kinfer generate, GPU against CPU ---
M=/work/shared/models/stories260K/stories260K.gguf
for d in cuda cpu; do
  timeout 60 $K/kinfer generate --model $M --prompt "Once upon a time" -n 200 --temperature 0 \
    --ignore-eos --device $d > "$OUT/generate_$d.txt" 2> "$OUT/generate_$d.err"
done
if cmp -s "$OUT/generate_cuda.txt" "$OUT/generate_cpu.txt" && [[ -s $OUT/generate_cpu.txt ]]; then
  result "kinfer generate stories260K, 200 greedy tokens: GPU text == CPU text"
else
  result "kinfer generate stories260K: GPU and CPU texts differ (see generate_*.txt)"
fi
tail -2 "$OUT/generate_cuda.err"

# --- 3. the backend comparison on the benchmark shapes ---
for p in "${gen_pids[@]}"; do wait "$p"; done
say "models: $(ls $MODELS | tr '\n' ' ')"
KINFER_CUDA_TEST_MODELS=$(ls $MODELS/*.gguf | tr '\n' ',') timeout 150 $K/cuda_tests \
  --gtest_filter='CudaBackend.PromptLogits*' > "$OUT/cuda_backend_shapes.log" 2>&1
grep "\[cuda\]" "$OUT/cuda_backend_shapes.log" | grep -v "stories\|fixtures"
grep -q "^\[  PASSED  \]" "$OUT/cuda_backend_shapes.log" && ! grep -q FAILED "$OUT/cuda_backend_shapes.log" \
  && result "backend vs CPU on the benchmark shapes: PASSED" \
  || result "backend vs CPU on the benchmark shapes: FAILED (see cuda_backend_shapes.log)"

# --- 4. figures ---
while (( LLAMA_PID > 0 )) && kill -0 $LLAMA_PID 2>/dev/null && (( $(el) < LLAMA_DEADLINE )); do
  sleep 5
done
LB=/tmp/llama-build/bin/llama-bench LS=/tmp/llama-build/bin/llama-server
if [[ $LLAMA_PID == 0 ]]; then
  result "llama.cpp CUDA build skipped (LLAMA=0)"
  LB=/nonexistent LS=/nonexistent
elif [[ -x $LB ]]; then
  result "llama.cpp CUDA build ready at +$(el)s"
else
  result "llama.cpp CUDA build not ready by +$(el)s: its columns are n/a (llama_build.log)"
  tail -5 "$OUT/llama_build.log"
  LB=/nonexistent LS=/nonexistent
fi
say "benchmarks"
timeout ${BENCH_TIMEOUT:-240} python3 "$B"/bench/cuda_bench.py --kinfer $K/kinfer --kinfer-bench $K/kinfer_bench \
  --llama-bench $LB --llama-server $LS --models $MODELS --rounds ${ROUNDS:-2} \
  --json "$OUT/bench.json" 2> "$OUT/bench.log" | tee "$OUT/bench.txt"
tail -3 "$OUT/bench.log"
q=$MODELS/qwen2.5-0.5b-Q4_0.gguf
if [[ -f $q ]]; then
  for g in 0 1; do
    r=$(KINFER_CUDA_GRAPHS=$g timeout 60 $K/kinfer_bench --model $q --device cuda -p 512 -n 128 -r 3 | tail -1)
    result "qwen2.5-0.5b-Q4_0, CUDA graphs $g: $r"
  done
fi
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader
# Where a decode step's time goes: every kernel's duration (clocks as found), by kernel.
if [[ -f $q && ${PROFILE:-1} == 1 ]] && command -v ncu >/dev/null; then
  KINFER_CUDA_GRAPHS=0 timeout ${PROFILE_TIMEOUT:-60} ncu --clock-control none \
    --metrics gpu__time_duration.sum --print-summary per-kernel \
    $K/kinfer_bench --model $q --device cuda -p 1 -n 1 -r 1 > "$OUT/ncu.txt" 2>&1
  grep -vE "^==PROF==|^\[" "$OUT/ncu.txt" | grep -E "[A-Za-z]+Kernel|gpu__time_duration" | \
    cut -c1-160 | head -48
fi
(( LLAMA_PID > 0 )) && kill $LLAMA_PID 2>/dev/null
cp /tmp/kinfer-bench/*.log "$OUT/" 2>/dev/null
tar czf "$RESULTS/logs.tar.gz" -C "$OUT" .
{ echo "=== summary (+$(el)s) ==="; printf '%s\n' "${summary[@]}"; cat "$OUT/bench.txt"; } \
  | tee "$RESULTS/summary.txt"
exit 0
