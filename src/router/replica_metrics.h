// What the router reads from a replica's /metrics (the Prometheus text format): the load signals
// the pickers weigh and the KV cache's shape. Either Kinfer's `kinfer:` names or vLLM's `vllm:`
// names (vLLM's older `gpu_cache_usage_perc` too), so the router also works in front of vLLM.
//
//   ReplicaLoad load = ParseReplicaMetrics(body);
//   if (!load.has_load()) ... the text had no queue metrics: treat the replica as saturated
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kinfer::router {

struct ReplicaLoad {
  std::optional<double> waiting;      // num_requests_waiting, summed over the model's series
  std::optional<double> running;      // num_requests_running
  std::optional<double> kv_usage;     // kv_cache_usage_perc, 0..1
  std::optional<int32_t> block_size;  // cache_config_info{block_size}
  std::optional<int64_t> num_blocks;  // cache_config_info{num_gpu_blocks}
  // lora_requests_info{running_lora_adapters, waiting_lora_adapters, max_lora}: the adapters the
  // replica has in use now (loaded, so a request for one starts without loading it).
  std::vector<std::string> lora_adapters;
  std::optional<int32_t> max_lora;
  int malformed_lines = 0;  // lines that are not comments, blank or samples

  // Whether the queue signals are there: without them the replica's load is unknown.
  bool has_load() const { return waiting.has_value() && running.has_value(); }
};

// Reads the samples it knows and ignores the rest. Never fails: malformed lines are counted and
// skipped, as the signals on the other lines are still good. When both prefixes are present
// (`kinfer serve --metrics-vllm-names`), `kinfer:` wins.
ReplicaLoad ParseReplicaMetrics(std::string_view text);

}  // namespace kinfer::router
