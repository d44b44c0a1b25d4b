// The kernel files opt in to Highway's AVX3_DL target; the target list here must match them.
#ifndef HWY_WANT_AVX3_DL
#define HWY_WANT_AVX3_DL
#endif
#include "kernels/simd_target.h"

#include <hwy/targets.h>

namespace kinfer::kernels {

std::string SimdTarget() {
  // Better targets have lower bits: the lowest set bit is the one dispatch picks.
  const int64_t targets = hwy::SupportedTargets() & HWY_TARGETS;
  return hwy::TargetName(targets & -targets);
}

}  // namespace kinfer::kernels
