// libFuzzer target: the Prometheus text parser the autoscaler runs on what routers and engines
// answer at /metrics must read any bytes without crashing, hanging or reading past them.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "operator/prometheus_text.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  kinfer::op::PromText m = kinfer::op::ParsePrometheusText(text, 1000);
  double sink = 0;
  for (const auto& s : m.samples) {
    sink += static_cast<double>(s.name.size() + s.labels.size());
    if (auto v = s.Label("backend")) sink += static_cast<double>(v->size());
  }
  if (auto v = m.Sum("kinfer_router_inflight", {{"model", "m"}})) sink += *v;
  volatile double keep = sink;
  (void)keep;
  return 0;
}
