// Which SIMD target the kernels dispatch to on this CPU, for logs and benchmark reports.
#pragma once

#include <string>

namespace kinfer::kernels {

// Highway's name of the best target the kernels were compiled for and this CPU runs: "AVX3_DL"
// (AVX-512 with VNNI, where the 8-bit activation matmul runs), "AVX3" (AVX-512), "AVX2", "SSE4",
// "NEON", ... (the target a test forced with hwy::SetSupportedTargetsForTest, while it does).
std::string SimdTarget();

}  // namespace kinfer::kernels
