// A borrowed view of a weight tensor in its stored type: the bytes usually live in a mapped
// model file. Shapes are row-major, outermost dimension first (HF order), so a linear layer's
// weight is [out_features, in_features] and each row is a whole number of quantization blocks.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/dtype.h"

namespace kinfer {

struct TensorView {
  DType dtype = DType::kF32;
  int ndim = 0;
  std::array<int64_t, 4> shape{};  // shape[0] outermost
  const void* data = nullptr;
  size_t nbytes = 0;

  bool empty() const { return data == nullptr; }
  int64_t numel() const {
    int64_t n = 1;
    for (int i = 0; i < ndim; ++i) n *= shape[i];
    return n;
  }
  // The innermost dimension: elements per row.
  int64_t cols() const { return ndim == 0 ? 1 : shape[ndim - 1]; }
  // Everything but the innermost dimension.
  int64_t rows() const { return ndim == 0 ? 1 : numel() / cols(); }
  size_t row_bytes() const { return rows() == 0 ? 0 : nbytes / static_cast<size_t>(rows()); }
  const uint8_t* row(int64_t r) const {
    return static_cast<const uint8_t*>(data) + static_cast<size_t>(r) * row_bytes();
  }

  // "[1536, 576] Q4_1"
  std::string Describe() const;
};

}  // namespace kinfer
