// Element types of tensors: plain floats and ggml's block-quantized formats, with the block
// geometry every loader and kernel agrees on. Numbering follows ggml's type ids, so GGUF files
// map one to one.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace kinfer {

enum class DType : uint32_t {
  kF32 = 0,
  kF16 = 1,
  kQ4_0 = 2,
  kQ4_1 = 3,
  kQ5_0 = 6,
  kQ5_1 = 7,
  kQ8_0 = 8,
  kQ8_1 = 9,
  kQ2_K = 10,
  kQ3_K = 11,
  kQ4_K = 12,
  kQ5_K = 13,
  kQ6_K = 14,
  kQ8_K = 15,
  kI8 = 24,
  kI16 = 25,
  kI32 = 26,
  kI64 = 27,
  kF64 = 28,
  kBF16 = 30,
  // Kinfer's own layouts, never read from a file: blocks of 16 rows interleaved, made at load
  // time where MatMul reads them faster (kernels/pack.h has the byte layouts).
  kQ8_0x16 = 0x10008,
  kQ4_0x16 = 0x10002,
  kQ5_0x16 = 0x10006,
  kQ5_1x16 = 0x10007,
  kQ4_Kx16 = 0x1000C,
  kQ5_Kx16 = 0x1000D,
  kQ6_Kx16 = 0x1000E,
  kF16x16 = 0x10001,
  kBF16x16 = 0x1001E,
};

struct DTypeInfo {
  std::string_view name;  // as llama.cpp prints it: "Q4_K", "F16"
  int64_t block_size;     // elements per block (1 for plain types)
  size_t block_bytes;     // bytes per block
  bool supported;         // whether Kinfer's kernels can compute with it
};

// Geometry of a ggml type id, or nullopt for ids Kinfer does not know at all (Kinfer's own
// layouts are not ggml ids: a file cannot name them).
std::optional<DTypeInfo> GetDTypeInfo(uint32_t ggml_type);
// Any DType, Kinfer's own layouts included (their block geometry is that of the stored type).
DTypeInfo GetDTypeInfo(DType t);
std::string_view DTypeName(DType t);

// Bytes of one row of `n` elements, or nullopt when n is not a whole number of blocks.
std::optional<size_t> RowBytes(DType t, int64_t n);

// ---------------------------------------------------------------------------------------------
// Half-precision conversions (IEEE binary16 and bfloat16), exact and portable.

inline float Fp16ToFp32(uint16_t h) {
  uint32_t sign = static_cast<uint32_t>(h & 0x8000) << 16;
  uint32_t exp = (h >> 10) & 0x1F;
  uint32_t mant = h & 0x3FF;
  uint32_t bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalize
      int e = -1;
      do {
        ++e;
        mant <<= 1;
      } while ((mant & 0x400) == 0);
      bits = sign | (static_cast<uint32_t>(127 - 15 - e) << 23) | ((mant & 0x3FF) << 13);
    }
  } else if (exp == 0x1F) {
    bits = sign | 0x7F800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}

// Round to nearest even, as hardware conversions (F16C, numpy) do.
inline uint16_t Fp32ToFp16(float f) {
  uint32_t x;
  __builtin_memcpy(&x, &f, 4);
  uint32_t sign = (x >> 16) & 0x8000;
  uint32_t abs = x & 0x7FFFFFFF;
  if (abs >= 0x7F800000u) {  // inf or nan
    return static_cast<uint16_t>(sign | 0x7C00 |
                                 (abs > 0x7F800000u ? 0x200 | ((abs >> 13) & 0x3FF) : 0));
  }
  if (abs >= 0x477FF000u) return static_cast<uint16_t>(sign | 0x7C00);  // overflow to inf
  if (abs < 0x38800000u) {                                              // subnormal or zero in half
    if (abs < 0x33000000u) return static_cast<uint16_t>(sign);  // below half of the smallest
    // |f| = m * 2^(e-150) with the implicit bit in m; in units of 2^-24 that is m >> (126 - e).
    uint32_t e = abs >> 23;
    uint32_t m = (abs & 0x7FFFFF) | 0x800000;
    uint32_t shift = 126 - e;  // 14..24
    uint32_t half = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t halfway = 1u << (shift - 1);
    if (rem > halfway || (rem == halfway && (half & 1))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  uint32_t e = (abs >> 23) - 127 + 15;
  uint32_t m = abs & 0x7FFFFF;
  uint32_t h = (e << 10) | (m >> 13);
  uint32_t rem = m & 0x1FFF;
  if (rem > 0x1000 || (rem == 0x1000 && (h & 1))) ++h;  // may carry into the exponent: correct
  return static_cast<uint16_t>(sign | h);
}

inline float Bf16ToFp32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  __builtin_memcpy(&f, &bits, 4);
  return f;
}

inline uint16_t Fp32ToBf16(float f) {
  uint32_t x;
  __builtin_memcpy(&x, &f, 4);
  if ((x & 0x7FFFFFFF) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x40);  // nan
  uint32_t rounding = 0x7FFF + ((x >> 16) & 1);
  return static_cast<uint16_t>((x + rounding) >> 16);
}

}  // namespace kinfer
