// Rows of any compute type to f32, one source per SIMD target.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/dequantize.cc"
// foreach_target.h must come first (it re-includes this file per target): keep this order.
// clang-format off
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include "kernels/internal/weight_formats-inl.h"
#include "kernels/internal/simd-inl.h"
// clang-format on

#include <vector>

#include "kernels/dequantize.h"
#include "kernels/pack.h"
#include "kernels/quant.h"

HWY_BEFORE_NAMESPACE();
namespace kinfer::kernels::HWY_NAMESPACE {

void DequantizeRowImpl(DType t, const void* src, float* dst, int64_t n) {
  const auto* row = static_cast<const uint8_t*>(src);
  switch (t) {
    case DType::kF16:
      return DeqRow<FmtF16>(row, n, n, dst);
    case DType::kBF16:
      return DeqRow<FmtBF16>(row, n, n, dst);
    default:
      break;
  }
  if (kBlockVectorsFit) {
    switch (t) {
      case DType::kQ8_0:
        return DeqRow<FmtQ8_0>(row, n, n, dst);
      case DType::kQ4_0:
        return DeqRow<FmtQ4_0>(row, n, n, dst);
      case DType::kQ4_1:
        return DeqRow<FmtQ4_1>(row, n, n, dst);
      case DType::kQ4_K:
        return DeqRow<FmtQ4_K>(row, n, n, dst);
      case DType::kQ6_K:
        return DeqRow<FmtQ6_K>(row, n, n, dst);
      default:
        break;
    }
  }
  DequantizeRowRef(t, src, dst, n);
}

}  // namespace kinfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kinfer::kernels {

HWY_EXPORT(DequantizeRowImpl);

void DequantizeRow(DType t, const void* src, float* dst, int64_t n) {
  HWY_DYNAMIC_DISPATCH(DequantizeRowImpl)(t, src, dst, n);
}

void DequantizeMatrixRow(const TensorView& w, int64_t r, float* dst) {
  if (!IsPacked(w.dtype)) return DequantizeRow(w.dtype, w.row(r), dst, w.cols());
  thread_local std::vector<uint8_t> blocks;
  const DType stored = StoredTypeOf(w.dtype);
  const size_t n = *RowBytes(stored, w.cols());
  if (blocks.size() < n) blocks.resize(n);
  UnpackRow(w, r, blocks.data());
  DequantizeRow(stored, blocks.data(), dst, w.cols());
}

}  // namespace kinfer::kernels
#endif  // HWY_ONCE
