// Highway compiles this file once per SIMD target and dispatches at run time.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/lora.cc"
// foreach_target.h must come first (it re-includes this file per target): keep this order.
// clang-format off
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
// clang-format on

#include <algorithm>
#include <cmath>

#include "core/dtype.h"
#include "core/status.h"
#include "kernels/lora.h"

HWY_BEFORE_NAMESPACE();
namespace kinfer::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using VF = hn::Vec<DF>;

// The three storage types, widened exactly to f32.
struct F32 {
  using T = float;
  static HWY_INLINE VF Load(const T* p) { return hn::LoadU(DF(), p); }
  static float Scalar(T v) { return v; }
};
struct F16 {
  using T = uint16_t;
  static HWY_INLINE VF Load(const T* p) {
    const hn::Rebind<hwy::float16_t, DF> dh;
    return hn::PromoteTo(DF(), hn::LoadU(dh, reinterpret_cast<const hwy::float16_t*>(p)));
  }
  static float Scalar(T v) { return Fp16ToFp32(v); }
};
struct BF16 {
  using T = uint16_t;
  static HWY_INLINE VF Load(const T* p) {
    const hn::RebindToUnsigned<DF> du32;
    const hn::Rebind<uint16_t, DF> du16;
    return hn::BitCast(DF(), hn::ShiftLeft<16>(hn::PromoteTo(du32, hn::LoadU(du16, p))));
  }
  static float Scalar(T v) { return Bf16ToFp32(v); }
};

// Vectors per expand tile: 4 x 4 accumulators fit where there are 32 vector registers.
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX3
constexpr int kExpandVectors = 4;
#else
constexpr int kExpandVectors = 2;
#endif

// Register tiles. Every output element has one vector accumulator that takes fused multiply-adds
// in index order, then (shrink) its lanes are summed in a fixed tree and the scalar tail added in
// order; so an element's value does not depend on which tile computed it, nor on the tile's size.
// Tiles only share loads: an A row (or B^T vector) is widened once for up to 4 rows.

// h[t][j + jj] = A[j + jj] . x_t for jj < JT (1 or 2) and the TT (1..4) rows xs[0..TT).
template <class Fmt, int JT, int TT>
HWY_INLINE void ShrinkTile(const typename Fmt::T* a, int64_t in, const float* const* xs, float* h,
                           int64_t rank, int64_t j) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const int64_t vec_end = in / N * N;
  const typename Fmt::T* a0 = a + j * in;
  const typename Fmt::T* a1 = a0 + (JT > 1 ? in : 0);
  VF c00 = hn::Zero(d), c01 = c00, c02 = c00, c03 = c00;
  VF c10 = c00, c11 = c00, c12 = c00, c13 = c00;
  for (int64_t i = 0; i < vec_end; i += N) {
    const VF v0 = Fmt::Load(a0 + i);
    const VF x0 = hn::LoadU(d, xs[0] + i);
    c00 = hn::MulAdd(v0, x0, c00);
    if constexpr (JT > 1) c10 = hn::MulAdd(Fmt::Load(a1 + i), x0, c10);
    if constexpr (TT > 1) {
      const VF x1 = hn::LoadU(d, xs[1] + i);
      c01 = hn::MulAdd(v0, x1, c01);
      if constexpr (JT > 1) c11 = hn::MulAdd(Fmt::Load(a1 + i), x1, c11);
    }
    if constexpr (TT > 2) {
      const VF x2 = hn::LoadU(d, xs[2] + i);
      c02 = hn::MulAdd(v0, x2, c02);
      if constexpr (JT > 1) c12 = hn::MulAdd(Fmt::Load(a1 + i), x2, c12);
    }
    if constexpr (TT > 3) {
      const VF x3 = hn::LoadU(d, xs[3] + i);
      c03 = hn::MulAdd(v0, x3, c03);
      if constexpr (JT > 1) c13 = hn::MulAdd(Fmt::Load(a1 + i), x3, c13);
    }
  }
  auto finish = [&](VF c, const typename Fmt::T* arow, const float* x) {
    float sum = hn::GetLane(hn::SumOfLanes(d, c));
    for (int64_t i = vec_end; i < in; ++i) sum += Fmt::Scalar(arow[i]) * x[i];
    return sum;
  };
  h[0 * rank + j] = finish(c00, a0, xs[0]);
  if constexpr (JT > 1) h[0 * rank + j + 1] = finish(c10, a1, xs[0]);
  if constexpr (TT > 1) {
    h[1 * rank + j] = finish(c01, a0, xs[1]);
    if constexpr (JT > 1) h[1 * rank + j + 1] = finish(c11, a1, xs[1]);
  }
  if constexpr (TT > 2) {
    h[2 * rank + j] = finish(c02, a0, xs[2]);
    if constexpr (JT > 1) h[2 * rank + j + 1] = finish(c12, a1, xs[2]);
  }
  if constexpr (TT > 3) {
    h[3 * rank + j] = finish(c03, a0, xs[3]);
    if constexpr (JT > 1) h[3 * rank + j + 1] = finish(c13, a1, xs[3]);
  }
}

template <class Fmt, int TT>
HWY_INLINE void ShrinkRows(const typename Fmt::T* a, int64_t in, const float* const* xs, float* h,
                           int64_t rank, int64_t j0, int64_t j1) {
  int64_t j = j0;
  for (; j + 2 <= j1; j += 2) ShrinkTile<Fmt, 2, TT>(a, in, xs, h, rank, j);
  if (j < j1) ShrinkTile<Fmt, 1, TT>(a, in, xs, h, rank, j);
}

// h[r * rank + j] = A[j] . x[rows[r]] for the rank rows j in [j0, j1).
template <class Fmt>
void Shrink(const LoraMatrices& m, std::span<const int32_t> rows, const float* x, int64_t in,
            float* h, int64_t j0, int64_t j1) {
  const int64_t rank = m.rank();
  const auto* a = static_cast<const typename Fmt::T*>(m.a.data);
  const int64_t R = static_cast<int64_t>(rows.size());
  for (int64_t r = 0; r < R; r += 4) {
    const float* xs[4];
    const int64_t tt = std::min<int64_t>(4, R - r);
    for (int64_t k = 0; k < tt; ++k) xs[k] = x + static_cast<int64_t>(rows[r + k]) * in;
    float* hr = h + r * rank;
    switch (tt) {
      case 4:
        ShrinkRows<Fmt, 4>(a, in, xs, hr, rank, j0, j1);
        break;
      case 3:
        ShrinkRows<Fmt, 3>(a, in, xs, hr, rank, j0, j1);
        break;
      case 2:
        ShrinkRows<Fmt, 2>(a, in, xs, hr, rank, j0, j1);
        break;
      default:
        ShrinkRows<Fmt, 1>(a, in, xs, hr, rank, j0, j1);
    }
  }
}

// ys[t][o .. o + OV * N) += scale * sum_j hs[t][j] * Bt[j, o ..] for the TT (1..4) rows.
template <class Fmt, int OV, int TT>
HWY_INLINE void ExpandTile(const typename Fmt::T* bt, int64_t out, int64_t rank,
                           const float* const* hs, float* const* ys, int64_t o, VF vscale) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  VF c00 = hn::Zero(d);
  VF c01 = c00, c02 = c00, c03 = c00, c10 = c00, c11 = c00, c12 = c00, c13 = c00, c20 = c00,
     c21 = c00, c22 = c00, c23 = c00, c30 = c00, c31 = c00, c32 = c00, c33 = c00;
  for (int64_t j = 0; j < rank; ++j) {
    const typename Fmt::T* row = bt + j * out + o;
    VF b0 = c00;
    b0 = Fmt::Load(row + 0 * N);
    VF b1 = c00;
    if constexpr (OV > 1) b1 = Fmt::Load(row + 1 * N);
    VF b2 = c00;
    if constexpr (OV > 2) b2 = Fmt::Load(row + 2 * N);
    VF b3 = c00;
    if constexpr (OV > 3) b3 = Fmt::Load(row + 3 * N);
    if constexpr (TT > 0) {
      const VF h0 = hn::Set(d, hs[0][j]);
      c00 = hn::MulAdd(h0, b0, c00);
      if constexpr (OV > 1) c10 = hn::MulAdd(h0, b1, c10);
      if constexpr (OV > 2) c20 = hn::MulAdd(h0, b2, c20);
      if constexpr (OV > 3) c30 = hn::MulAdd(h0, b3, c30);
    }
    if constexpr (TT > 1) {
      const VF h1 = hn::Set(d, hs[1][j]);
      c01 = hn::MulAdd(h1, b0, c01);
      if constexpr (OV > 1) c11 = hn::MulAdd(h1, b1, c11);
      if constexpr (OV > 2) c21 = hn::MulAdd(h1, b2, c21);
      if constexpr (OV > 3) c31 = hn::MulAdd(h1, b3, c31);
    }
    if constexpr (TT > 2) {
      const VF h2 = hn::Set(d, hs[2][j]);
      c02 = hn::MulAdd(h2, b0, c02);
      if constexpr (OV > 1) c12 = hn::MulAdd(h2, b1, c12);
      if constexpr (OV > 2) c22 = hn::MulAdd(h2, b2, c22);
      if constexpr (OV > 3) c32 = hn::MulAdd(h2, b3, c32);
    }
    if constexpr (TT > 3) {
      const VF h3 = hn::Set(d, hs[3][j]);
      c03 = hn::MulAdd(h3, b0, c03);
      if constexpr (OV > 1) c13 = hn::MulAdd(h3, b1, c13);
      if constexpr (OV > 2) c23 = hn::MulAdd(h3, b2, c23);
      if constexpr (OV > 3) c33 = hn::MulAdd(h3, b3, c33);
    }
  }
  auto store = [&](VF c, float* y, int64_t at) {
    hn::StoreU(hn::MulAdd(c, vscale, hn::LoadU(d, y + at)), d, y + at);
  };
  {
    store(c00, ys[0], o);
    if constexpr (OV > 1) store(c10, ys[0], o + 1 * N);
    if constexpr (OV > 2) store(c20, ys[0], o + 2 * N);
    if constexpr (OV > 3) store(c30, ys[0], o + 3 * N);
  }
  if constexpr (TT > 1) {
    store(c01, ys[1], o);
    if constexpr (OV > 1) store(c11, ys[1], o + 1 * N);
    if constexpr (OV > 2) store(c21, ys[1], o + 2 * N);
    if constexpr (OV > 3) store(c31, ys[1], o + 3 * N);
  }
  if constexpr (TT > 2) {
    store(c02, ys[2], o);
    if constexpr (OV > 1) store(c12, ys[2], o + 1 * N);
    if constexpr (OV > 2) store(c22, ys[2], o + 2 * N);
    if constexpr (OV > 3) store(c32, ys[2], o + 3 * N);
  }
  if constexpr (TT > 3) {
    store(c03, ys[3], o);
    if constexpr (OV > 1) store(c13, ys[3], o + 1 * N);
    if constexpr (OV > 2) store(c23, ys[3], o + 2 * N);
    if constexpr (OV > 3) store(c33, ys[3], o + 3 * N);
  }
}

// y[rows[r] * out + o] += scale * sum_j h[r * rank + j] * Bt[j, o] for o in [o0, o1). o0 is a
// multiple of the vector length, so whether an element is in a vector or in the scalar tail
// depends on o and `out` alone.
template <class Fmt>
void Expand(const LoraMatrices& m, std::span<const int32_t> rows, const float* h, float* y,
            int64_t out, int64_t o0, int64_t o1) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  const int64_t rank = m.rank();
  const auto* bt = static_cast<const typename Fmt::T*>(m.bt.data);
  const VF vscale = hn::Set(d, m.scale);
  const int64_t vec_end = o0 + (o1 - o0) / N * N;
  const int64_t R = static_cast<int64_t>(rows.size());
  for (int64_t r = 0; r < R; r += 4) {
    const int64_t tt = std::min<int64_t>(4, R - r);
    const float* hs[4];
    float* ys[4];
    for (int64_t k = 0; k < tt; ++k) {
      hs[k] = h + (r + k) * rank;
      ys[k] = y + static_cast<int64_t>(rows[r + k]) * out;
    }
    constexpr int V = kExpandVectors;
    int64_t o = o0;
    for (; o + V * N <= vec_end; o += V * N) {
      switch (tt) {
        case 4:
          ExpandTile<Fmt, V, 4>(bt, out, rank, hs, ys, o, vscale);
          break;
        case 3:
          ExpandTile<Fmt, V, 3>(bt, out, rank, hs, ys, o, vscale);
          break;
        case 2:
          ExpandTile<Fmt, V, 2>(bt, out, rank, hs, ys, o, vscale);
          break;
        default:
          ExpandTile<Fmt, V, 1>(bt, out, rank, hs, ys, o, vscale);
      }
    }
    for (int64_t k = 0; k < tt; ++k) {
      for (int64_t oo = o; oo < vec_end; oo += N) {
        VF c = hn::Zero(d);
        for (int64_t j = 0; j < rank; ++j) {
          c = hn::MulAdd(hn::Set(d, hs[k][j]), Fmt::Load(bt + j * out + oo), c);
        }
        hn::StoreU(hn::MulAdd(c, vscale, hn::LoadU(d, ys[k] + oo)), d, ys[k] + oo);
      }
      for (int64_t oo = vec_end; oo < o1; ++oo) {
        float acc = 0;
        for (int64_t j = 0; j < rank; ++j) {
          acc = std::fma(hs[k][j], Fmt::Scalar(bt[j * out + oo]), acc);
        }
        ys[k][oo] = std::fma(acc, m.scale, ys[k][oo]);
      }
    }
  }
}

void ShrinkImpl(const LoraMatrices& m, const int32_t* rows, int64_t n_rows, const float* x,
                int64_t in, float* h, int64_t j0, int64_t j1) {
  std::span<const int32_t> rs(rows, static_cast<size_t>(n_rows));
  switch (m.a.dtype) {
    case DType::kF16:
      return Shrink<F16>(m, rs, x, in, h, j0, j1);
    case DType::kBF16:
      return Shrink<BF16>(m, rs, x, in, h, j0, j1);
    default:
      return Shrink<F32>(m, rs, x, in, h, j0, j1);
  }
}

void ExpandImpl(const LoraMatrices& m, const int32_t* rows, int64_t n_rows, const float* h,
                float* y, int64_t out, int64_t o0, int64_t o1) {
  std::span<const int32_t> rs(rows, static_cast<size_t>(n_rows));
  switch (m.bt.dtype) {
    case DType::kF16:
      return Expand<F16>(m, rs, h, y, out, o0, o1);
    case DType::kBF16:
      return Expand<BF16>(m, rs, h, y, out, o0, o1);
    default:
      return Expand<F32>(m, rs, h, y, out, o0, o1);
  }
}

int64_t LanesImpl() { return static_cast<int64_t>(hn::Lanes(DF())); }

}  // namespace kinfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kinfer::kernels {

HWY_EXPORT(ShrinkImpl);
HWY_EXPORT(ExpandImpl);
HWY_EXPORT(LanesImpl);

namespace {

bool StorageType(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

// Below this many multiply-adds a call runs on the calling thread: waking the pool costs more.
constexpr int64_t kSerialWork = 1 << 15;

}  // namespace

bool LoraShapeOk(const LoraMatrices& m, int64_t in, int64_t out) {
  return m.a.ndim == 2 && m.bt.ndim == 2 && m.a.shape[0] > 0 && m.a.shape[0] == m.bt.shape[0] &&
         m.a.shape[1] == in && m.bt.shape[1] == out && StorageType(m.a.dtype) &&
         StorageType(m.bt.dtype);
}

int64_t LoraScratchSize(std::span<const LoraGroup> groups) {
  int64_t n = 0;
  for (const LoraGroup& g : groups) n += static_cast<int64_t>(g.rows.size()) * g.m->rank();
  return n;
}

void LoraAdd(std::span<const LoraGroup> groups, const float* x, int64_t in, float* y, int64_t out,
             float* scratch, ThreadPool& pool) {
  if (groups.empty()) return;
  // Where each group's shrink results start in scratch, and the shrink items (group, j) laid end
  // to end.
  constexpr size_t kMaxGroups = 64;
  KINFER_CHECK(groups.size() <= kMaxGroups && "LoraAdd: too many adapters in one call");
  int64_t h_off[kMaxGroups + 1], j_off[kMaxGroups + 1];
  h_off[0] = j_off[0] = 0;
  int64_t work = 0;
  for (size_t g = 0; g < groups.size(); ++g) {
    const LoraGroup& gr = groups[g];
    KINFER_CHECK(LoraShapeOk(*gr.m, in, out));
    const int64_t rows = static_cast<int64_t>(gr.rows.size());
    h_off[g + 1] = h_off[g] + rows * gr.m->rank();
    j_off[g + 1] = j_off[g] + gr.m->rank();
    work += rows * gr.m->rank() * (in + out);
  }
  auto* shrink = HWY_DYNAMIC_DISPATCH(ShrinkImpl);
  auto* expand = HWY_DYNAMIC_DISPATCH(ExpandImpl);
  const size_t G = groups.size();
  auto shrink_items = [&](int64_t begin, int64_t end) {
    for (size_t g = 0; g < G; ++g) {
      const int64_t lo = std::max(begin, j_off[g]), hi = std::min(end, j_off[g + 1]);
      if (lo >= hi) continue;
      const LoraGroup& gr = groups[g];
      shrink(*gr.m, gr.rows.data(), static_cast<int64_t>(gr.rows.size()), x, in, scratch + h_off[g],
             lo - j_off[g], hi - j_off[g]);
    }
  };
  auto expand_cols = [&](int64_t o0, int64_t o1) {
    for (size_t g = 0; g < G; ++g) {
      const LoraGroup& gr = groups[g];
      expand(*gr.m, gr.rows.data(), static_cast<int64_t>(gr.rows.size()), scratch + h_off[g], y,
             out, o0, o1);
    }
  };
  // Column chunks start at multiples of the vector length (see Expand).
  const int64_t grain = 4 * HWY_DYNAMIC_DISPATCH(LanesImpl)();
  if (work < kSerialWork || pool.num_threads() == 1) {
    shrink_items(0, j_off[G]);
    expand_cols(0, out);
    return;
  }
  pool.ParallelFor(j_off[G], shrink_items);
  pool.ParallelFor(out, expand_cols, grain);
}

}  // namespace kinfer::kernels
#endif  // HWY_ONCE
