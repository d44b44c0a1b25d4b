#include "core/dtype.h"

namespace kinfer {

std::optional<DTypeInfo> GetDTypeInfo(uint32_t ggml_type) {
  switch (ggml_type) {
    case 0:
      return DTypeInfo{"F32", 1, 4, true};
    case 1:
      return DTypeInfo{"F16", 1, 2, true};
    case 2:
      return DTypeInfo{"Q4_0", 32, 18, true};
    case 3:
      return DTypeInfo{"Q4_1", 32, 20, true};
    case 6:
      return DTypeInfo{"Q5_0", 32, 22, true};
    case 7:
      return DTypeInfo{"Q5_1", 32, 24, true};
    case 8:
      return DTypeInfo{"Q8_0", 32, 34, true};
    case 9:
      return DTypeInfo{"Q8_1", 32, 36, false};
    case 10:
      return DTypeInfo{"Q2_K", 256, 84, false};
    case 11:
      return DTypeInfo{"Q3_K", 256, 110, false};
    case 12:
      return DTypeInfo{"Q4_K", 256, 144, true};
    case 13:
      return DTypeInfo{"Q5_K", 256, 176, true};
    case 14:
      return DTypeInfo{"Q6_K", 256, 210, true};
    case 15:
      return DTypeInfo{"Q8_K", 256, 292, false};
    case 24:
      return DTypeInfo{"I8", 1, 1, false};
    case 25:
      return DTypeInfo{"I16", 1, 2, false};
    case 26:
      return DTypeInfo{"I32", 1, 4, false};
    case 27:
      return DTypeInfo{"I64", 1, 8, false};
    case 28:
      return DTypeInfo{"F64", 1, 8, false};
    case 30:
      return DTypeInfo{"BF16", 1, 2, true};
    default:
      return std::nullopt;
  }
}

namespace {

std::optional<DTypeInfo> AnyDTypeInfo(DType t) {
  switch (t) {
    case DType::kQ8_0x16:
      return DTypeInfo{"Q8_0x16", 32, 34, true};
    case DType::kQ4_0x16:
      return DTypeInfo{"Q4_0x16", 32, 18, true};
    case DType::kQ5_0x16:
      return DTypeInfo{"Q5_0x16", 32, 22, true};
    case DType::kQ5_1x16:
      return DTypeInfo{"Q5_1x16", 32, 24, true};
    case DType::kQ4_Kx16:
      return DTypeInfo{"Q4_Kx16", 256, 144, true};
    case DType::kF16x16:
      return DTypeInfo{"F16x16", 1, 2, true};
    case DType::kBF16x16:
      return DTypeInfo{"BF16x16", 1, 2, true};
    case DType::kQ5_Kx16:
      return DTypeInfo{"Q5_Kx16", 256, 176, true};
    case DType::kQ6_Kx16:
      return DTypeInfo{"Q6_Kx16", 256, 210, true};
    default:
      return GetDTypeInfo(static_cast<uint32_t>(t));
  }
}

}  // namespace

DTypeInfo GetDTypeInfo(DType t) { return *AnyDTypeInfo(t); }

std::string_view DTypeName(DType t) {
  auto info = AnyDTypeInfo(t);
  return info ? info->name : "UNKNOWN";
}

std::optional<size_t> RowBytes(DType t, int64_t n) {
  auto info = AnyDTypeInfo(t);
  if (!info || n < 0 || n % info->block_size != 0) return std::nullopt;
  return static_cast<size_t>(n / info->block_size) * info->block_bytes;
}

}  // namespace kinfer
