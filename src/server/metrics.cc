#include "server/metrics.h"

#include <cmath>

#include <fmt/format.h>

namespace kinfer::server {
namespace {

std::string Num(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::isnan(v)) return "NaN";
  if (v == std::floor(v) && std::fabs(v) < 1e15) return fmt::format("{}", static_cast<int64_t>(v));
  return fmt::format("{}", v);
}

std::string LabelText(const Labels& labels, const std::string& extra_key = "",
                      const std::string& extra_value = "") {
  std::string s;
  for (const auto& [k, v] : labels) {
    s += s.empty() ? "{" : ",";
    s += k + "=\"" + EscapeLabel(v) + "\"";
  }
  if (!extra_key.empty()) {
    s += s.empty() ? "{" : ",";
    s += extra_key + "=\"" + extra_value + "\"";
  }
  return s.empty() ? s : s + "}";
}

}  // namespace

std::string EscapeLabel(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

MetricFamily::MetricFamily(std::string name, std::string help, Type type,
                           std::vector<double> buckets)
    : name_(std::move(name)), help_(std::move(help)), type_(type), buckets_(std::move(buckets)) {}

MetricFamily::Series& MetricFamily::Get(const Labels& labels) {
  Series& s = series_[labels];
  if (type_ == Type::kHistogram && s.bucket_counts.empty())
    s.bucket_counts.assign(buckets_.size(), 0);
  return s;
}

void MetricFamily::Add(const Labels& labels, double v) {
  std::lock_guard<std::mutex> lk(mu_);
  Get(labels).value += v;
}

void MetricFamily::Set(const Labels& labels, double v) {
  std::lock_guard<std::mutex> lk(mu_);
  Get(labels).value = v;
}

void MetricFamily::Clear() {
  std::lock_guard<std::mutex> lk(mu_);
  series_.clear();
}

void MetricFamily::Observe(const Labels& labels, double v) {
  std::lock_guard<std::mutex> lk(mu_);
  Series& s = Get(labels);
  for (size_t i = 0; i < buckets_.size(); ++i) {
    if (v <= buckets_[i]) s.bucket_counts[i]++;
  }
  s.sum += v;
  s.count++;
}

void MetricFamily::Render(const std::vector<std::string>& prefixes, std::string* out) const {
  std::lock_guard<std::mutex> lk(mu_);
  const char* type = type_ == Type::kCounter ? "counter"
                     : type_ == Type::kGauge ? "gauge"
                                             : "histogram";
  for (const std::string& prefix : prefixes) {
    const std::string full = prefix + name_;
    *out += fmt::format("# HELP {} {}\n# TYPE {} {}\n", full, help_, full, type);
    for (const auto& [labels, s] : series_) {
      if (type_ == Type::kHistogram) {
        for (size_t i = 0; i < buckets_.size(); ++i) {
          *out += fmt::format("{}_bucket{} {}\n", full, LabelText(labels, "le", Num(buckets_[i])),
                              s.bucket_counts[i]);
        }
        *out += fmt::format("{}_bucket{} {}\n", full, LabelText(labels, "le", "+Inf"), s.count);
        *out += fmt::format("{}_sum{} {}\n", full, LabelText(labels), Num(s.sum));
        *out += fmt::format("{}_count{} {}\n", full, LabelText(labels), s.count);
      } else {
        // Counters are exposed with the _total suffix, as prometheus_client does.
        const std::string series_name = type_ == Type::kCounter ? full + "_total" : full;
        *out += fmt::format("{}{} {}\n", series_name, LabelText(labels), Num(s.value));
      }
    }
  }
}

MetricFamily& MetricsRegistry::Counter(const std::string& name, const std::string& help) {
  families_.push_back(std::make_unique<MetricFamily>(name, help, MetricFamily::Type::kCounter));
  return *families_.back();
}

MetricFamily& MetricsRegistry::Gauge(const std::string& name, const std::string& help) {
  families_.push_back(std::make_unique<MetricFamily>(name, help, MetricFamily::Type::kGauge));
  return *families_.back();
}

MetricFamily& MetricsRegistry::Histogram(const std::string& name, const std::string& help,
                                         std::vector<double> buckets) {
  families_.push_back(std::make_unique<MetricFamily>(name, help, MetricFamily::Type::kHistogram,
                                                     std::move(buckets)));
  return *families_.back();
}

std::string MetricsRegistry::Render(const std::vector<std::string>& prefixes) const {
  for (const auto& c : collectors_) c();
  std::string out;
  for (const auto& f : families_) f->Render(prefixes, &out);
  return out;
}

}  // namespace kinfer::server
