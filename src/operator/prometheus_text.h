// The Prometheus text exposition format (version 0.0.4), read: what the autoscaler scrapes from
// the routers (kinfer_router_*) and the engines (kinfer:* or vllm:*). Samples with their labels;
// comments, HELP and TYPE lines are skipped; a malformed line is counted and skipped, since the
// other lines' numbers are still good.
//
//   PromText m = ParsePrometheusText(body);
//   std::optional<double> held = m.Sum("kinfer_router_held");
//   std::optional<double> to_b = m.Sum("kinfer_router_backend_inflight", {{"backend",
//   "10.0.0.5:8000"}});
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kinfer::op {

struct PromSample {
  std::string name;
  std::vector<std::pair<std::string, std::string>> labels;  // in the order written, unescaped
  double value = 0;

  // The value of label `key`, or nullopt.
  std::optional<std::string_view> Label(std::string_view key) const;
};

struct PromText {
  std::vector<PromSample> samples;
  int malformed_lines = 0;
  bool truncated = false;  // more than max_samples samples: the rest were not read

  // The sum of the samples named `name` that carry every label in `match` (NaN samples skipped);
  // nullopt when there is none.
  std::optional<double> Sum(
      std::string_view name,
      const std::vector<std::pair<std::string, std::string>>& match = {}) const;
};

PromText ParsePrometheusText(std::string_view text, size_t max_samples = 100000);

}  // namespace kinfer::op
