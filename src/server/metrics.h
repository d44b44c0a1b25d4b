// Prometheus metrics in the text exposition format: counters, gauges and histograms with
// labels, named like vLLM's (`kinfer:` prefix, optionally mirrored as `vllm:`) so existing
// dashboards, HPA adapters and inference gateways can read them.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace kinfer::server {

using Labels = std::vector<std::pair<std::string, std::string>>;

class MetricFamily {
 public:
  enum class Type { kCounter, kGauge, kHistogram };
  MetricFamily(std::string name, std::string help, Type type, std::vector<double> buckets = {});

  void Add(const Labels& labels, double v = 1);  // counter
  void Set(const Labels& labels, double v);      // gauge
  void Observe(const Labels& labels, double v);  // histogram
  // Drops every series: for gauges refreshed from live state whose label sets come and go
  // (the router's per-replica gauges, as replicas leave).
  void Clear();
  // Appends this family in exposition format, with every prefix in `prefixes`.
  void Render(const std::vector<std::string>& prefixes, std::string* out) const;
  const std::string& name() const { return name_; }

 private:
  struct Series {
    double value = 0;
    std::vector<uint64_t> bucket_counts;
    double sum = 0;
    uint64_t count = 0;
  };
  Series& Get(const Labels& labels);

  std::string name_, help_;
  Type type_;
  std::vector<double> buckets_;
  mutable std::mutex mu_;
  std::map<Labels, Series> series_;
};

class MetricsRegistry {
 public:
  MetricFamily& Counter(const std::string& name, const std::string& help);
  MetricFamily& Gauge(const std::string& name, const std::string& help);
  MetricFamily& Histogram(const std::string& name, const std::string& help,
                          std::vector<double> buckets);
  // Called before each render, to refresh gauges from live state.
  void OnCollect(std::function<void()> fn) { collectors_.push_back(std::move(fn)); }
  std::string Render(const std::vector<std::string>& prefixes) const;

 private:
  std::vector<std::unique_ptr<MetricFamily>> families_;
  std::vector<std::function<void()>> collectors_;
};

// Escapes a label value for the exposition format.
std::string EscapeLabel(const std::string& v);

}  // namespace kinfer::server
