// A weight matrix in GPU memory, in its stored type (F32, F16, BF16 or one of ggml's block
// formats), rows `row_bytes` apart: what the CUDA kernels read weights from.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace kinfer::kernels::cuda {

struct DeviceMatrix {
  DType dtype = DType::kF32;
  int64_t rows = 0;
  int64_t cols = 0;
  size_t row_bytes = 0;
  const uint8_t* data = nullptr;  // device memory
  // Parts K is cut into by MatMul (MatMulSplits): fixed per matrix, never per batch, so the
  // summation order of an output does not depend on how many tokens share the call.
  int splits = 1;
};

// Whether the CUDA kernels read weights of type t: the stored types the CPU computes with
// (kernels::IsComputeType), not the CPU's packed layouts.
bool IsSupported(DType t);

}  // namespace kinfer::kernels::cuda
