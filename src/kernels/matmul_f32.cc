// MatMul's f32-activation path, for every weight type: rows dequantized to f32 (in registers
// or into a panel) against f32 activations. Highway compiles this file once per SIMD target;
// matmul.cc dispatches to it. AVX3_DL is opted in so that every kernel file has the same
// targets.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/matmul_f32.cc"
// foreach_target.h must come first (it re-includes this file per target): keep this order.
// clang-format off
#include <hwy/foreach_target.h>  // IWYU pragma: keep
#include <hwy/highway.h>
#include "kernels/internal/simd-inl.h"
#include "kernels/internal/weight_formats-inl.h"
// clang-format on

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels/internal/matmul_paths.h"
#include "kernels/pack.h"
#include "kernels/quant.h"

HWY_BEFORE_NAMESPACE();
namespace kinfer::kernels::HWY_NAMESPACE {

// A thread takes a contiguous range of output rows. Every (row, token) output has one
// f32 vector accumulator that takes MulAdd(w[k..k+N), x[k..k+N)) for k = 0, N, 2N, ... in
// order (a zero-padded vector for a tail), then its lanes are summed by SumOfLanes. Two paths
// follow that sequence exactly, so results do not depend on how many tokens share the call:
// - fused (few tokens): weights are dequantized into registers and used at once;
// - panel (many tokens): a panel of rows is dequantized to f32 once, then register tiles of
//   R rows x C tokens run over it for every group of C tokens.

// Long rows are taken kPanelChunk elements at a time, kChunkedPanelRows rows to a panel
// (a 256 KiB slice of the panel in L2; 6 tokens' 24 KiB of activations in L1).
constexpr int64_t kPanelChunk = 1024;
constexpr int64_t kChunkedPanelRows = 64;

template <int R, int C>
HWY_INLINE void Store(V (&acc)[R][C], float* HWY_RESTRICT y, int64_t ys) {
  const DF d;
  KINFER_UNROLL for (int r = 0; r < R; ++r) {
    KINFER_UNROLL for (int c = 0; c < C; ++c) y[c * ys + r] =
        hn::GetLane(hn::SumOfLanes(d, acc[r][c]));
  }
}

// Elements [k0, k1) of R rows against C tokens. A tile starts from zero at k0 == 0 and ends at
// k1 == K (the zero-padded tail, then lanes summed into y); in between its accumulators wait in
// `part` (R * C vectors). Splitting k so changes nothing in any accumulator's sequence.
template <int R, int C>
HWY_INLINE void Tile(const float* HWY_RESTRICT w, int64_t ws, const float* HWY_RESTRICT x,
                     int64_t xs, int64_t K, int64_t k0, int64_t k1, float* HWY_RESTRICT part,
                     float* HWY_RESTRICT y, int64_t ys) {
  const DF d;
  const int64_t N = Lanes();
  V acc[R][C];
  KINFER_UNROLL for (int r = 0; r < R; ++r) {
    KINFER_UNROLL for (int c = 0; c < C; ++c) {
      acc[r][c] = k0 == 0 ? hn::Zero(d) : hn::LoadU(d, part + (r * C + c) * N);
    }
  }
  const int64_t Kf = K / N * N;
  const int64_t kend = std::min(k1, Kf);
  for (int64_t k = k0; k < kend; k += N) {
    V wv[R];
    KINFER_UNROLL for (int r = 0; r < R; ++r) wv[r] = hn::LoadU(d, w + r * ws + k);
    KINFER_UNROLL for (int c = 0; c < C; ++c) {
      const V xv = hn::LoadU(d, x + c * xs + k);
      KINFER_UNROLL for (int r = 0; r < R; ++r) acc[r][c] = hn::MulAdd(wv[r], xv, acc[r][c]);
    }
  }
  if (k1 < K) {
    KINFER_UNROLL for (int r = 0; r < R; ++r) {
      KINFER_UNROLL for (int c = 0; c < C; ++c) hn::StoreU(acc[r][c], d, part + (r * C + c) * N);
    }
    return;
  }
  if (Kf < K) {  // the panel is zero-padded; copy x's tail so nothing past it is read
    HWY_ALIGN float tail[kMaxLanesF32] = {};
    KINFER_UNROLL for (int c = 0; c < C; ++c) {
      std::memcpy(tail, x + c * xs + Kf, static_cast<size_t>(K - Kf) * 4);
      const V xv = hn::Load(d, tail);
      KINFER_UNROLL for (int r = 0; r < R; ++r) {
        acc[r][c] = hn::MulAdd(hn::LoadU(d, w + r * ws + Kf), xv, acc[r][c]);
      }
    }
  }
  Store<R, C>(acc, y, ys);
}

// Rows [0, rows) of a panel against C tokens over elements [k0, k1) of K; `part` holds the
// tiles' accumulators between chunks (rows * C vectors).
template <int C>
void PanelTokens(const float* w, int64_t ws, int64_t rows, const float* x, int64_t K, int64_t k0,
                 int64_t k1, float* part, float* y, int64_t ys) {
  constexpr int R = C == 1 ? 8 : kTileR;
  const int64_t N = Lanes();
  int64_t r = 0;
  for (; r + R <= rows; r += R) {
    Tile<R, C>(w + r * ws, ws, x, K, K, k0, k1, part + r * C * N, y + r, ys);
  }
  for (; r < rows; ++r) Tile<1, C>(w + r * ws, ws, x, K, K, k0, k1, part + r * C * N, y + r, ys);
}

// R rows of format Q, dequantized into registers, against C tokens. K is whole units.
template <class Q, int R, int C>
HWY_INLINE void FusedTile(const uint8_t* w, size_t row_bytes, const float* HWY_RESTRICT x,
                          int64_t K, float* HWY_RESTRICT y, int64_t ys) {
  const DF d;
  V acc[R][C];
  KINFER_UNROLL for (int r = 0; r < R; ++r) {
    KINFER_UNROLL for (int c = 0; c < C; ++c) acc[r][c] = hn::Zero(d);
  }
  const int64_t unit = Q::Unit();
  // Prefetch well ahead on every row: per byte of weights this loop does a lot of work, so the
  // out-of-order window holds too few cache misses to cover DRAM latency by itself (measured on
  // a 151936x896 Q8_0 matrix, one thread: 8 GB/s without, 33 GB/s 16 KiB ahead).
  const int64_t unit_bytes = static_cast<int64_t>(row_bytes) / (K / unit);
  const int64_t ahead = (kPrefetchBytes + unit_bytes - 1) / unit_bytes * unit_bytes;
  for (int64_t u = 0, k = 0; k < K; ++u, k += unit) {
    KINFER_UNROLL for (int r = 0; r < R; ++r) {
      __builtin_prefetch(w + r * row_bytes + u * unit_bytes + ahead);
      Q::Each(w + r * row_bytes, u, [&](int64_t off, V wv) HWY_ATTR {
        KINFER_UNROLL for (int c = 0; c < C; ++c) {
          acc[r][c] = hn::MulAdd(wv, hn::LoadU(d, x + c * K + k + off), acc[r][c]);
        }
      });
    }
  }
  Store<R, C>(acc, y, ys);
}

template <class Q, int C>
void FusedTokens(const uint8_t* w, size_t row_bytes, int64_t rows, const float* x, int64_t K,
                 float* y, int64_t ys) {
  constexpr int R = C == 1 ? 4 : 2;
  int64_t r = 0;
  for (; r + R <= rows; r += R) FusedTile<Q, R, C>(w + r * row_bytes, row_bytes, x, K, y + r, ys);
  for (; r < rows; ++r) FusedTile<Q, 1, C>(w + r * row_bytes, row_bytes, x, K, y + r, ys);
}

template <class Q>
void FusedTokensN(int c, const uint8_t* w, size_t row_bytes, int64_t rows, const float* x,
                  int64_t K, float* y, int64_t ys) {
  switch (c) {
    case 1:
      return FusedTokens<Q, 1>(w, row_bytes, rows, x, K, y, ys);
    case 2:
      return FusedTokens<Q, 2>(w, row_bytes, rows, x, K, y, ys);
    case 3:
      return FusedTokens<Q, 3>(w, row_bytes, rows, x, K, y, ys);
#if !(HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3)
    case 4:
      return FusedTokens<Q, 4>(w, row_bytes, rows, x, K, y, ys);
    case 5:
      return FusedTokens<Q, 5>(w, row_bytes, rows, x, K, y, ys);
    case 6:
      return FusedTokens<Q, 6>(w, row_bytes, rows, x, K, y, ys);
#endif
    default:
      HWY_ASSERT(false);
  }
}

void PanelTokensN(int c, const float* w, int64_t ws, int64_t rows, const float* x, int64_t K,
                  int64_t k0, int64_t k1, float* part, float* y, int64_t ys) {
  switch (c) {
    case 1:
      return PanelTokens<1>(w, ws, rows, x, K, k0, k1, part, y, ys);
    case 2:
      return PanelTokens<2>(w, ws, rows, x, K, k0, k1, part, y, ys);
    case 3:
      return PanelTokens<3>(w, ws, rows, x, K, k0, k1, part, y, ys);
#if !(HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3)
    case 4:
      return PanelTokens<4>(w, ws, rows, x, K, k0, k1, part, y, ys);
    case 5:
      return PanelTokens<5>(w, ws, rows, x, K, k0, k1, part, y, ys);
    case 6:
      return PanelTokens<6>(w, ws, rows, x, K, k0, k1, part, y, ys);
#endif
    default:
      HWY_ASSERT(false);
  }
}

// Row r of w in f32, zero-padded to Kp, as DequantizeRowRef gives it.
using DeqRowFn = void (*)(const TensorView& w, int64_t r, int64_t K, int64_t Kp, float* out);

// A DeqRowFn from a function of the row's bytes.
template <void (*kDeq)(const uint8_t* row, int64_t K, int64_t Kp, float* out)>
void DeqMatrixRow(const TensorView& w, int64_t r, int64_t K, int64_t Kp, float* out) {
  kDeq(static_cast<const uint8_t*>(w.data) + static_cast<size_t>(r) * w.row_bytes(), K, Kp, out);
}

// A DeqRowFn for a packed matrix (pack.h), which has no row pointers: its stored blocks.
template <DType kStored>
void DeqPackedRow(const TensorView& w, int64_t r, int64_t K, int64_t Kp, float* out) {
  thread_local std::vector<uint8_t> blocks;
  const size_t n = *RowBytes(kStored, K);
  if (blocks.size() < n) blocks.resize(n);
  UnpackRow(w, r, blocks.data());
  DeqRowRef<kStored>(blocks.data(), K, Kp, out);
}

// Output rows [row_begin, row_end) for all T tokens. `fused` runs format Q in registers when
// the tokens fit one group and rows are whole units; `deq` fills panels otherwise.
template <class Q>
void MatMulRowsT(const TensorView& w, const float* x, int64_t T, float* y, int64_t row_begin,
                 int64_t row_end, DeqRowFn deq, bool can_fuse) {
  const int64_t N = Lanes();
  const int64_t O = w.rows(), K = w.cols();
  const int64_t Kp = (K + N - 1) / N * N;
  const size_t row_bytes = w.row_bytes();
  const auto* base = static_cast<const uint8_t*>(w.data);
  if (can_fuse && T <= kMaxC) {
    if constexpr (!std::is_same_v<Q, void>) {
      FusedTokensN<Q>(static_cast<int>(T), base + static_cast<size_t>(row_begin) * row_bytes,
                      row_bytes, row_end - row_begin, x, K, y + row_begin, O);
      return;
    }
  }
  // F32 rows of whole vectors are used in place.
  const bool direct = w.dtype == DType::kF32 && Kp == K;
  // Short rows: a panel of rp rows that stays in L2 while every token group streams over it.
  // Long rows (K over kPanelChunk): a taller panel taken kPanelChunk columns at a time, so that a
  // token group's chunk of activations stays in L1 across all the panel's tiles; the tiles'
  // accumulators wait in `part` between chunks (the same sequence of operations either way).
  const bool chunked = Kp > kPanelChunk;
  const int64_t rp =
      chunked ? kChunkedPanelRows : std::clamp<int64_t>((192 << 10) / (Kp * 4) / 8 * 8, 8, 64);
  thread_local std::vector<float> panel, part;
  if (!direct && panel.size() < static_cast<size_t>(rp * Kp))
    panel.resize(static_cast<size_t>(rp * Kp));
  // Tokens go kTokenBlock at a time through all the chunks, so `part` stays small whatever T.
  constexpr int64_t kTokenBlock = 16 * kMaxC;
  const int64_t tb_len = std::min<int64_t>((T + kMaxC - 1) / kMaxC * kMaxC, kTokenBlock);
  if (part.size() < static_cast<size_t>(tb_len * rp * N))
    part.resize(static_cast<size_t>(tb_len * rp * N));
  for (int64_t r0 = row_begin; r0 < row_end; r0 += rp) {
    const int64_t rn = std::min(rp, row_end - r0);
    const float* pw;
    int64_t ws;
    if (direct) {
      pw = reinterpret_cast<const float*>(base + static_cast<size_t>(r0) * row_bytes);
      ws = static_cast<int64_t>(row_bytes / 4);
    } else {
      for (int64_t r = 0; r < rn; ++r) deq(w, r0 + r, K, Kp, panel.data() + r * Kp);
      pw = panel.data();
      ws = Kp;
    }
    const int64_t chunk = chunked ? kPanelChunk : K;
    for (int64_t tb = 0; tb < T; tb += kTokenBlock) {
      const int64_t te = std::min(T, tb + kTokenBlock);
      for (int64_t k0 = 0; k0 < K; k0 += chunk) {
        const int64_t k1 = K - k0 <= chunk ? K : k0 + chunk;
        for (int64_t t0 = tb; t0 < te; t0 += kMaxC) {
          const int c = static_cast<int>(std::min<int64_t>(kMaxC, te - t0));
          PanelTokensN(c, pw, ws, rn, x + t0 * K, K, k0, k1, part.data() + (t0 - tb) * rp * N,
                       y + t0 * O + r0, O);
        }
      }
    }
  }
}

void MatMulRowsImpl(const TensorView& w, const float* x, int64_t T, float* y, int64_t row_begin,
                    int64_t row_end) {
  const int64_t K = w.cols();
  auto run = [&](auto fmt, DeqRowFn deq) {
    using Q = decltype(fmt);
    bool can_fuse = K % Q::Unit() == 0;
    MatMulRowsT<Q>(w, x, T, y, row_begin, row_end, deq, can_fuse);
  };
  switch (w.dtype) {
    case DType::kF32:
      return run(FmtF32(), DeqMatrixRow<DeqRow<FmtF32>>);
    case DType::kF16:
      return run(FmtF16(), DeqMatrixRow<DeqRow<FmtF16>>);
    case DType::kBF16:
      return run(FmtBF16(), DeqMatrixRow<DeqRow<FmtBF16>>);
    default:
      break;
  }
  if (kBlockVectorsFit) {
    switch (w.dtype) {
      case DType::kQ8_0:
        return run(FmtQ8_0(), DeqMatrixRow<DeqRow<FmtQ8_0>>);
      case DType::kQ4_0:
        return run(FmtQ4_0(), DeqMatrixRow<DeqRow<FmtQ4_0>>);
      case DType::kQ4_1:
        return run(FmtQ4_1(), DeqMatrixRow<DeqRow<FmtQ4_1>>);
      case DType::kQ4_K:
        return run(FmtQ4_K(), DeqMatrixRow<DeqRow<FmtQ4_K>>);
      case DType::kQ6_K:
        return run(FmtQ6_K(), DeqMatrixRow<DeqRow<FmtQ6_K>>);
      default:
        break;
    }
  }
  DeqRowFn deq = nullptr;
  switch (w.dtype) {
    case DType::kQ8_0x16:
      return MatMulRowsT<void>(w, x, T, y, row_begin, row_end, DeqPackedRow<DType::kQ8_0>, false);
    case DType::kQ4_0x16:
      return MatMulRowsT<void>(w, x, T, y, row_begin, row_end, DeqPackedRow<DType::kQ4_0>, false);
    case DType::kQ8_0:
      deq = DeqMatrixRow<DeqRowRef<DType::kQ8_0>>;
      break;
    case DType::kQ4_0:
      deq = DeqMatrixRow<DeqRowRef<DType::kQ4_0>>;
      break;
    case DType::kQ4_1:
      deq = DeqMatrixRow<DeqRowRef<DType::kQ4_1>>;
      break;
    case DType::kQ5_0:
      deq = DeqMatrixRow<DeqRowRef<DType::kQ5_0>>;
      break;
    case DType::kQ5_1:
      deq = DeqMatrixRow<DeqRowRef<DType::kQ5_1>>;
      break;
    case DType::kQ4_K:
      deq = DeqMatrixRow<DeqRowRef<DType::kQ4_K>>;
      break;
    case DType::kQ5_K:
      deq = DeqMatrixRow<DeqRowRef<DType::kQ5_K>>;
      break;
    case DType::kQ6_K:
      deq = DeqMatrixRow<DeqRowRef<DType::kQ6_K>>;
      break;
    default:
      HWY_ASSERT(false && "MatMul: unsupported weight type");
  }
  MatMulRowsT<void>(w, x, T, y, row_begin, row_end, deq, false);
}

}  // namespace kinfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace kinfer::kernels {

HWY_EXPORT(MatMulRowsImpl);

namespace internal {
F32RowsFn F32ActivationRows() { return HWY_DYNAMIC_DISPATCH(MatMulRowsImpl); }
}  // namespace internal

}  // namespace kinfer::kernels
#endif  // HWY_ONCE
