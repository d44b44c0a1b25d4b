// libFuzzer target: a replica's /metrics text as the router reads it (the Prometheus text
// format, Kinfer's and vLLM's names). Whatever it returns must be within its documented ranges.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "router/replica_metrics.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 1 << 20) return 0;
  auto load = kinfer::router::ParseReplicaMetrics(
      std::string_view(reinterpret_cast<const char*>(data), size));
  if (load.kv_usage && !(*load.kv_usage >= 0 && *load.kv_usage <= 1)) __builtin_trap();
  if (load.block_size && *load.block_size <= 0) __builtin_trap();
  if (load.num_blocks && *load.num_blocks <= 0) __builtin_trap();
  return 0;
}
