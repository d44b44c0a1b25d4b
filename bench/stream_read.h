// Reading memory as fast as this machine can, for the benchmarks' bandwidth bounds: a decode
// step's time is bounded by its bytes over the best read bandwidth, so the probe has to read as
// well as any kernel does. A plain sum (kernels::SumF32) leaves the stream to the hardware
// prefetchers; the decode kernels also prefetch every line in software, into L2 a few KiB
// ahead and into L1 1 KiB ahead, and on this VM read faster than such a sum (Llama-3.2-1B BF16
// decode at 1.05x a plain sum's bound). Read that way, a sum streams 1.3x faster here (2
// threads: 40-41 against 31 GB/s; prefetches into L2 8-64 KiB ahead and into L1 0.5-2 KiB
// ahead all alike). So the probe reads each way and keeps the fastest.
#ifndef KINFER_BENCH_STREAM_READ_H_
#define KINFER_BENCH_STREAM_READ_H_

#include <cstdint>
#include <cstring>

#include "kernels/vector_ops.h"

namespace kinfer::bench {

// How a stream is read: prefetch distances in bytes, 0 for none (the hardware's alone).
struct ReadWay {
  int64_t l2_ahead;
  int64_t l1_ahead;
};

// The ways the probe tries: the plain sum, and software prefetches as the decode kernels use.
inline constexpr ReadWay kReadWays[] = {{0, 0}, {8192, 1024}, {16384, 1024}};

// Sum of a[0, n), read the given way.
inline float SumRead(const float* a, int64_t n, ReadWay way) {
  if (way.l2_ahead == 0) return kernels::SumF32(a, n);
  // 32-byte vectors, which any x86-64 compiles to (as two SSE halves at worst): a line a step
  // is far less work than the line's read takes, whatever the width.
  typedef float V __attribute__((vector_size(32)));
  V s0{}, s1{};
  const char* p = reinterpret_cast<const char*>(a);
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __builtin_prefetch(p + 4 * i + way.l2_ahead, 0, 2);
    __builtin_prefetch(p + 4 * i + way.l1_ahead, 0, 3);
    V x, y;
    std::memcpy(&x, a + i, sizeof x);
    std::memcpy(&y, a + i + 8, sizeof y);
    s0 += x;
    s1 += y;
  }
  s0 += s1;
  float sum = 0;
  for (int k = 0; k < 8; ++k) sum += s0[k];
  for (; i < n; ++i) sum += a[i];
  return sum;
}

}  // namespace kinfer::bench

#endif  // KINFER_BENCH_STREAM_READ_H_
