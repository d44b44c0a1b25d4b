// What every kernel file compiled per SIMD target shares (internal to src/kernels): the f32
// vector type, the register budget of matmul tiles, and an exact f16 scale conversion.
//
// Include after <hwy/highway.h> in a file that foreach_target.h re-includes per target: the
// guard below toggles with each target, as Highway's -inl.h headers do.

// Target-independent part, once per translation unit.
#ifndef KINFER_KERNELS_INTERNAL_SIMD_ONCE_H_
#define KINFER_KERNELS_INTERNAL_SIMD_ONCE_H_
// Register tiles are arrays of vectors; they stay in registers only when every loop over them
// is unrolled, which -O2 does not do by itself.
#define KINFER_UNROLL _Pragma("GCC unroll 16")
#endif

#if defined(KINFER_KERNELS_INTERNAL_SIMD_INL_H_) == defined(HWY_TARGET_TOGGLE)
#ifdef KINFER_KERNELS_INTERNAL_SIMD_INL_H_
#undef KINFER_KERNELS_INTERNAL_SIMD_INL_H_
#else
#define KINFER_KERNELS_INTERNAL_SIMD_INL_H_
#endif

#include <hwy/highway.h>

#if HWY_ARCH_X86
#include <immintrin.h>
#endif

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"

HWY_BEFORE_NAMESPACE();
namespace kinfer::kernels::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

using DF = hn::ScalableTag<float>;
using V = hn::Vec<DF>;
constexpr size_t kMaxLanesF32 = HWY_MAX_BYTES / sizeof(float);

HWY_INLINE int64_t Lanes() { return static_cast<int64_t>(hn::Lanes(DF())); }

// One f16 block scale to f32: the hardware conversion where the target has one (exact, like the
// portable Fp16ToFp32, which branches and loops on subnormals and costs more than the block).
HWY_INLINE float H2F(uint16_t h) {
#if HWY_ARCH_X86 && HWY_TARGET <= HWY_AVX2
  return _cvtsh_ss(h);
#else
  return Fp16ToFp32(h);
#endif
}

// Matmul register tiles: rows x tokens accumulators, and the most tokens a tile takes.
#if HWY_ARCH_X86 && HWY_TARGET > HWY_AVX3
constexpr int kTileR = 3, kMaxC = 3;  // 16 vector registers
#else
constexpr int kTileR = 4, kMaxC = 6;  // 32 vector registers
#endif

// How far ahead of the weights being read a matmul prefetches them.
constexpr int64_t kPrefetchBytes = 16384;

// The 8-bit decode kernels' prefetch of the weights they stream: into L2 only (prefetcht1 on
// x86), 8 KiB ahead. Into L1 (T0) it competes with the kernel's own loads for the core's few L1
// miss buffers (the likely cause): on Llama-3.2-1B shapes at 2 threads (Sapphire-Rapids-class,
// bench/decode_stream_bench), T1 streamed Q4_K 17%, Q4_0 12% and Q6_K 8% faster than T0 at
// 16 KiB, and T0 at 4-64 KiB, NTA or no prefetch at all were slower than T1. The K-quant
// kernels issue the same prefetch as an asm statement (PrefetchInPlace in matmul_kquant.cc) so
// that GCC keeps it beside its load; for the Q8_0/Q4_0 kernels' few prefetches a block, that
// form measured slower than this builtin.
// The 32-block kernels (matmul_q8.cc) prefetch closer (kQ8StreamPrefetchBytes). Beside this
// one, every decode kernel prefetches each line a second time, into L1 but only 1 KiB ahead,
// which does help (PrefetchInPlace, kQ8L1PrefetchBytes, kDecodeL1PrefetchBytes).
constexpr int64_t kStreamPrefetchBytes = 8192;
HWY_INLINE void PrefetchStream(const void* p, int64_t ahead = kStreamPrefetchBytes) {
  __builtin_prefetch(static_cast<const char*>(p) + ahead, 0, 2);
}

}  // namespace kinfer::kernels::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#endif  // per-target include guard
