#include "kernels/softcap_attention.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "core/dtype.h"

namespace kinfer::kernels {
namespace {

// Cache row j (keys or values of `base`) as f32 in `row`.
void LoadRow(const PagedKvView& kv, const void* base, int64_t j, int64_t hd, float* row) {
  const int64_t block = kv.block_table[j / kv.block_size];
  const int64_t off = block * kv.block_stride + kv.head_offset + (j % kv.block_size) * hd;
  if (kv.f16) {
    const uint16_t* p = static_cast<const uint16_t*>(base) + off;
    for (int64_t i = 0; i < hd; ++i) row[i] = Fp16ToFp32(p[i]);
  } else {
    std::memcpy(row, static_cast<const float*>(base) + off, static_cast<size_t>(hd) * 4);
  }
}

}  // namespace

void AttendHeadsSoftCap(const float* q, int64_t heads, int64_t hd, const PagedKvView& kv,
                        int64_t lo, int64_t hi, float scale, float cap, float* scores, float* row,
                        float* out) {
  const int64_t n = hi - lo + 1;
  for (int64_t j = lo; j <= hi; ++j) {
    LoadRow(kv, kv.k_base, j, hd, row);
    for (int64_t h = 0; h < heads; ++h) {
      const float s = DotF32(q + h * hd, row, hd) * scale;
      scores[h * n + (j - lo)] = cap * std::tanh(s / cap);
    }
  }
  for (int64_t h = 0; h < heads; ++h) {
    float* sc = scores + h * n;
    const float mx = *std::max_element(sc, sc + n);
    float sum = 0;
    for (int64_t j = 0; j < n; ++j) {
      sc[j] = std::exp(sc[j] - mx);
      sum += sc[j];
    }
    const float inv = 1.0f / sum;
    for (int64_t j = 0; j < n; ++j) sc[j] *= inv;
    std::fill(out + h * hd, out + (h + 1) * hd, 0.0f);
  }
  for (int64_t j = lo; j <= hi; ++j) {
    LoadRow(kv, kv.v_base, j, hd, row);
    for (int64_t h = 0; h < heads; ++h) {
      const float p = scores[h * n + (j - lo)];
      float* o = out + h * hd;
      for (int64_t i = 0; i < hd; ++i) o[i] = std::fma(p, row[i], o[i]);
    }
  }
}

}  // namespace kinfer::kernels
