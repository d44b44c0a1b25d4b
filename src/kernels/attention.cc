// Paged attention over an f16 or f32 KV cache, one source per SIMD target.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/attention.cc"
// foreach_target.h must come first (it re-includes this file per target): keep this order.
// clang-format off
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include <hwy/contrib/math/math-inl.h>
#include "kernels/internal/simd-inl.h"
// clang-format on

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/attention.h"

HWY_BEFORE_NAMESPACE();
namespace kinfer::kernels::HWY_NAMESPACE {

template <bool kF16>
HWY_INLINE hn::Vec<DF> LoadKv(const void* p, int64_t i) {
  const DF d;
  if constexpr (kF16) {
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(d, hn::LoadU(dh, static_cast<const hwy::float16_t*>(p) + i));
  } else {
    return hn::LoadU(d, static_cast<const float*>(p) + i);
  }
}

template <bool kF16>
HWY_INLINE float KvAt(const void* p, int64_t i) {
  if constexpr (kF16) {
    return Fp16ToFp32(static_cast<const uint16_t*>(p)[i]);
  } else {
    return static_cast<const float*>(p)[i];
  }
}

// Cache rows (keys or values) are converted to f32 a chunk at a time, once for every query head
// of the group; the f32 rows hold exactly LoadKv's and KvAt's values.
constexpr int64_t kAttnChunk = 32;

template <bool kF16>
struct KvRows {
  const PagedKvView& kv;
  int64_t hd;
  float* buf;  // kAttnChunk * hd floats (kF16 only)

  const void* At(const void* base, int64_t j) const {
    const int64_t block = kv.block_table[j / kv.block_size];
    const int64_t off = block * kv.block_stride + kv.head_offset + (j % kv.block_size) * hd;
    return static_cast<const uint8_t*>(base) + off * (kF16 ? 2 : 4);
  }
  // Pointers to rows c0..c0+n-1 of `base` as f32.
  void Load(const void* base, int64_t c0, int64_t n, const float** rows) const {
    const DF d;
    const int64_t N = Lanes(), hf = hd / N * N;
    for (int64_t p = 0; p < n; ++p) {
      const void* src = At(base, c0 + p);
      if constexpr (kF16) {
        float* dst = buf + p * hd;
        for (int64_t i = 0; i < hf; i += N) hn::StoreU(LoadKv<true>(src, i), d, dst + i);
        for (int64_t i = hf; i < hd; ++i) dst[i] = KvAt<true>(src, i);
        rows[p] = dst;
      } else {
        rows[p] = static_cast<const float*>(src);
      }
    }
  }
};

// acc[0..NV) += w_p * row_p[d0 + v * N] for the chunk's rows in order: the value rows weighted by
// their probabilities, one output slice held in registers.
template <int NV>
HWY_INLINE void WeightedRows(const float* const* rows, const float* w, int64_t n, int64_t d0,
                             float* out) {
  const DF d;
  const int64_t N = Lanes();
  V acc[NV];
  KINFER_UNROLL for (int v = 0; v < NV; ++v) acc[v] = hn::LoadU(d, out + d0 + v * N);
  for (int64_t p = 0; p < n; ++p) {
    const V vw = hn::Set(d, w[p]);
    KINFER_UNROLL for (int v = 0; v < NV; ++v) {
      acc[v] = hn::MulAdd(vw, hn::LoadU(d, rows[p] + d0 + v * N), acc[v]);
    }
  }
  KINFER_UNROLL for (int v = 0; v < NV; ++v) hn::StoreU(acc[v], d, out + d0 + v * N);
}

template <bool kF16>
void AttendHeadsT(const float* q, int64_t G, int64_t hd, const PagedKvView& kv, int64_t lo,
                  int64_t hi, float scale, float* scores, float* out) {
  const DF d;
  const int64_t N = Lanes();
  const int64_t hf = hd / N * N;
  const int64_t S = hi + 1;  // scores of head g at scores + g * S
  thread_local std::vector<float> buf, maxes, weights;
  if (kF16 && buf.size() < static_cast<size_t>(kAttnChunk * hd)) {
    buf.resize(static_cast<size_t>(kAttnChunk * hd));
  }
  if (maxes.size() < static_cast<size_t>(G)) maxes.resize(static_cast<size_t>(G));
  if (weights.size() < static_cast<size_t>(kAttnChunk)) weights.resize(kAttnChunk);
  const KvRows<kF16> rows_of{kv, hd, buf.data()};
  const float* rows[kAttnChunk];

  // Scores: one dot product a position, lanes summed, then the scalar tail of the head.
  for (int64_t g = 0; g < G; ++g) maxes[static_cast<size_t>(g)] = -INFINITY;
  for (int64_t c0 = lo; c0 <= hi; c0 += kAttnChunk) {
    const int64_t n = std::min(kAttnChunk, hi + 1 - c0);
    rows_of.Load(kv.k_base, c0, n, rows);
    for (int64_t g = 0; g < G; ++g) {
      const float* qg = q + g * hd;
      float mx = maxes[static_cast<size_t>(g)];
      for (int64_t p = 0; p < n; ++p) {
        const float* k = rows[p];
        auto acc = hn::Zero(d);
        for (int64_t i = 0; i < hf; i += N)
          acc = hn::MulAdd(hn::LoadU(d, qg + i), hn::LoadU(d, k + i), acc);
        float s = hf > 0 ? hn::GetLane(hn::SumOfLanes(d, acc)) : 0.0f;
        for (int64_t i = hf; i < hd; ++i) s += qg[i] * k[i];
        s *= scale;
        scores[g * S + c0 + p] = s;
        mx = std::max(mx, s);
      }
      maxes[static_cast<size_t>(g)] = mx;
    }
  }
  // Softmax of each head: exponentials in vectors from lo; the tail through a zero-padded vector.
  for (int64_t g = 0; g < G; ++g) {
    float* sc = scores + g * S;
    const float max_score = maxes[static_cast<size_t>(g)];
    const auto vmax = hn::Set(d, max_score);
    auto vsum = hn::Zero(d);
    int64_t j = lo;
    for (; j + N <= hi + 1; j += N) {
      auto e = hn::Exp(d, hn::Sub(hn::LoadU(d, sc + j), vmax));
      hn::StoreU(e, d, sc + j);
      vsum = hn::Add(vsum, e);
    }
    float sum = hn::GetLane(hn::SumOfLanes(d, vsum));
    if (j <= hi) {
      HWY_ALIGN float t[kMaxLanesF32];
      const int64_t rest = hi + 1 - j;
      for (int64_t i = 0; i < N; ++i) t[i] = i < rest ? sc[j + i] : max_score;
      hn::Store(hn::Exp(d, hn::Sub(hn::Load(d, t), vmax)), d, t);
      for (int64_t i = 0; i < rest; ++i) {
        sc[j + i] = t[i];
        sum += t[i];
      }
    }
    maxes[static_cast<size_t>(g)] = 1.0f / sum;  // from here on: each head's 1 / sum
    std::fill(out + g * hd, out + (g + 1) * hd, 0.0f);
  }
  // Values: out[i] = fma(w_j, v_j[i], out[i]) over j in order, slices of 8 vectors in registers.
  for (int64_t c0 = lo; c0 <= hi; c0 += kAttnChunk) {
    const int64_t n = std::min(kAttnChunk, hi + 1 - c0);
    rows_of.Load(kv.v_base, c0, n, rows);
    for (int64_t g = 0; g < G; ++g) {
      const float inv_sum = maxes[static_cast<size_t>(g)];
      float* w = weights.data();
      for (int64_t p = 0; p < n; ++p) w[p] = scores[g * S + c0 + p] * inv_sum;
      float* og = out + g * hd;
      for (int64_t d0 = 0; d0 < hf; d0 += 8 * N) {
        switch (std::min<int64_t>(8, (hf - d0) / N)) {
          case 1:
            WeightedRows<1>(rows, w, n, d0, og);
            break;
          case 2:
            WeightedRows<2>(rows, w, n, d0, og);
            break;
          case 3:
            WeightedRows<3>(rows, w, n, d0, og);
            break;
          case 4:
            WeightedRows<4>(rows, w, n, d0, og);
            break;
          case 5:
            WeightedRows<5>(rows, w, n, d0, og);
            break;
          case 6:
            WeightedRows<6>(rows, w, n, d0, og);
            break;
          case 7:
            WeightedRows<7>(rows, w, n, d0, og);
            break;
          default:
            WeightedRows<8>(rows, w, n, d0, og);
            break;
        }
      }
      for (int64_t p = 0; p < n; ++p) {
        for (int64_t i = hf; i < hd; ++i) og[i] += w[p] * rows[p][i];
      }
    }
  }
}

void AttendHeadsImpl(const float* q, int64_t G, int64_t hd, const PagedKvView& kv, int64_t lo,
                     int64_t hi, float scale, float* scores, float* out) {
  if (kv.f16) {
    AttendHeadsT<true>(q, G, hd, kv, lo, hi, scale, scores, out);
  } else {
    AttendHeadsT<false>(q, G, hd, kv, lo, hi, scale, scores, out);
  }
}

}  // namespace kinfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kinfer::kernels {

HWY_EXPORT(AttendHeadsImpl);

void AttendHead(const float* q, int64_t head_dim, const PagedKvView& kv, int64_t lo, int64_t hi,
                float scale, float* scores, float* out) {
  HWY_DYNAMIC_DISPATCH(AttendHeadsImpl)(q, 1, head_dim, kv, lo, hi, scale, scores, out);
}

void AttendHeads(const float* q, int64_t heads, int64_t head_dim, const PagedKvView& kv, int64_t lo,
                 int64_t hi, float scale, float* scores, float* out) {
  HWY_DYNAMIC_DISPATCH(AttendHeadsImpl)(q, heads, head_dim, kv, lo, hi, scale, scores, out);
}

}  // namespace kinfer::kernels
#endif  // HWY_ONCE
