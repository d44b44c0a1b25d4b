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

// sum_i a[i] * x[i]: four vector accumulators over i in order, combined in a fixed tree, then the
// scalar tail. The order depends on n alone.
template <class Fmt>
float Dot(const typename Fmt::T* a, const float* x, int64_t n) {
  const DF d;
  const int64_t N = static_cast<int64_t>(hn::Lanes(d));
  VF s0 = hn::Zero(d), s1 = hn::Zero(d), s2 = hn::Zero(d), s3 = hn::Zero(d);
  int64_t i = 0;
  for (; i + 4 * N <= n; i += 4 * N) {
    s0 = hn::MulAdd(Fmt::Load(a + i), hn::LoadU(d, x + i), s0);
    s1 = hn::MulAdd(Fmt::Load(a + i + N), hn::LoadU(d, x + i + N), s1);
    s2 = hn::MulAdd(Fmt::Load(a + i + 2 * N), hn::LoadU(d, x + i + 2 * N), s2);
    s3 = hn::MulAdd(Fmt::Load(a + i + 3 * N), hn::LoadU(d, x + i + 3 * N), s3);
  }
  for (; i + N <= n; i += N) s0 = hn::MulAdd(Fmt::Load(a + i), hn::LoadU(d, x + i), s0);
  s0 = hn::Add(hn::Add(s0, s1), hn::Add(s2, s3));
  float sum = hn::GetLane(hn::SumOfLanes(d, s0));
  for (; i < n; ++i) sum += Fmt::Scalar(a[i]) * x[i];
  return sum;
}

// h[r * rank + j] = A[j] . x[rows[r]] for the rank rows j in [j0, j1).
template <class Fmt>
void Shrink(const LoraMatrices& m, std::span<const int32_t> rows, const float* x, int64_t in,
            float* h, int64_t j0, int64_t j1) {
  const int64_t rank = m.rank();
  const auto* a = static_cast<const typename Fmt::T*>(m.a.data);
  for (int64_t j = j0; j < j1; ++j) {
    for (size_t r = 0; r < rows.size(); ++r) {
      h[static_cast<int64_t>(r) * rank + j] =
          Dot<Fmt>(a + j * in, x + static_cast<int64_t>(rows[r]) * in, in);
    }
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
  for (size_t r = 0; r < rows.size(); ++r) {
    const float* hr = h + static_cast<int64_t>(r) * rank;
    float* yr = y + static_cast<int64_t>(rows[r]) * out;
    int64_t o = o0;
    for (; o + 2 * N <= vec_end; o += 2 * N) {
      VF a0 = hn::Zero(d), a1 = hn::Zero(d);
      for (int64_t j = 0; j < rank; ++j) {
        const VF hj = hn::Set(d, hr[j]);
        a0 = hn::MulAdd(hj, Fmt::Load(bt + j * out + o), a0);
        a1 = hn::MulAdd(hj, Fmt::Load(bt + j * out + o + N), a1);
      }
      hn::StoreU(hn::MulAdd(a0, vscale, hn::LoadU(d, yr + o)), d, yr + o);
      hn::StoreU(hn::MulAdd(a1, vscale, hn::LoadU(d, yr + o + N)), d, yr + o + N);
    }
    for (; o < vec_end; o += N) {
      VF a0 = hn::Zero(d);
      for (int64_t j = 0; j < rank; ++j) {
        a0 = hn::MulAdd(hn::Set(d, hr[j]), Fmt::Load(bt + j * out + o), a0);
      }
      hn::StoreU(hn::MulAdd(a0, vscale, hn::LoadU(d, yr + o)), d, yr + o);
    }
    for (; o < o1; ++o) {
      float acc = 0;
      for (int64_t j = 0; j < rank; ++j) acc = std::fma(hr[j], Fmt::Scalar(bt[j * out + o]), acc);
      yr[o] = std::fma(acc, m.scale, yr[o]);
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
