#!/usr/bin/env bash
# Installs the CUDA toolchain that `cmake --preset cuda` builds with: nvcc, its compiler parts,
# the runtime and headers, from PyPI's NVIDIA wheels (CUDA 13.0, exact versions), into
# ~/.cache/kinfer/cuda/13.0, once. Prints the nvcc path. No GPU or driver is needed to build;
# the binary links the runtime statically and needs only the driver where it runs.
#
#   scripts/cuda_toolchain.sh && cmake --preset cuda && cmake --build --preset cuda
set -euo pipefail
root="$HOME/.cache/kinfer/cuda/13.0"
cu="$root/nvidia/cu13"
# 13.0 matches the driver branch (580) of the GPU machines we test on; a newer toolkit's
# binaries need a newer driver.
pins=(nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88
      nvidia-cuda-runtime==13.0.96 nvidia-cuda-cccl==13.0.85)
stamp="$root/.installed-$(printf '%s\n' "${pins[@]}" | md5sum | cut -c1-12)"
if [[ ! -f $stamp ]]; then
  echo "[cuda] installing ${pins[*]} into $root" >&2
  mkdir -p "$root"
  exec 9>"$root.lock"
  flock 9
  if [[ ! -f $stamp ]]; then
    python3 -m pip install --quiet --disable-pip-version-check --no-compile --upgrade \
      --target "$root" "${pins[@]}" >&2
    # CMake looks for the libraries in lib64 and for unversioned names.
    ln -sfn lib "$cu/lib64"
    ln -sf libcudart.so.13 "$cu/lib/libcudart.so"
    touch "$stamp"
  fi
fi
echo "$cu/bin/nvcc"
