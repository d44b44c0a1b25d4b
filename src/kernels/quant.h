// ggml's block-quantized formats: the byte layout of each block and a plain scalar dequantizer,
// the reference every optimized kernel is tested against.
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

namespace kinfer::kernels {

constexpr int kQK = 32;    // elements per block of the 32-wide formats
constexpr int kQKK = 256;  // elements per super-block of the K formats

#pragma pack(push, 1)
struct BlockQ4_0 {
  uint16_t d;           // f16 scale
  uint8_t qs[kQK / 2];  // element j in the low nibble of qs[j], element j+16 in the high nibble
};
struct BlockQ4_1 {
  uint16_t d, m;  // f16 scale and minimum
  uint8_t qs[kQK / 2];
};
struct BlockQ5_0 {
  uint16_t d;
  uint8_t qh[4];  // fifth bits, one per element
  uint8_t qs[kQK / 2];
};
struct BlockQ5_1 {
  uint16_t d, m;
  uint8_t qh[4];
  uint8_t qs[kQK / 2];
};
struct BlockQ8_0 {
  uint16_t d;
  int8_t qs[kQK];
};
struct BlockQ4_K {
  uint16_t d, dmin;    // super-block scales for the 6-bit sub-block scales and mins
  uint8_t scales[12];  // 8 sub-blocks x (6-bit scale, 6-bit min), packed
  uint8_t qs[kQKK / 2];
};
struct BlockQ5_K {
  uint16_t d, dmin;
  uint8_t scales[12];
  uint8_t qh[kQKK / 8];
  uint8_t qs[kQKK / 2];
};
struct BlockQ6_K {
  uint8_t ql[kQKK / 2];      // low 4 bits
  uint8_t qh[kQKK / 4];      // high 2 bits
  int8_t scales[kQKK / 16];  // 8-bit sub-block scales
  uint16_t d;
};
#pragma pack(pop)

static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);

// Whether the kernels compute with `t` directly.
bool IsComputeType(DType t);

// Unpacks sub-block j (0..7) of a K-format `scales` field into its 6-bit scale and min.
inline void UnpackScaleMinK4(int j, const uint8_t* q, uint8_t* sc, uint8_t* m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = static_cast<uint8_t>((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4));
    *m = static_cast<uint8_t>((q[j + 4] >> 4) | ((q[j] >> 6) << 4));
  }
}

// Reference: dst[0..n) = the n values stored at src in type t. n is a whole number of blocks.
void DequantizeRowRef(DType t, const void* src, float* dst, int64_t n);

}  // namespace kinfer::kernels
