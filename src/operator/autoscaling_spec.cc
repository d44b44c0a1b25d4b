#include "operator/autoscaling_spec.h"

#include <cmath>
#include <cstdlib>
#include <string>

#include <fmt/format.h>

namespace kinfer::op {

std::optional<std::chrono::milliseconds> ParseCrdDuration(std::string_view s) {
  if (s.empty()) return std::nullopt;
  int64_t total = 0;
  size_t i = 0;
  char last_unit = 0;
  while (i < s.size()) {
    size_t start = i;
    int64_t n = 0;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
      if (n > 1'000'000'000) return std::nullopt;
      n = n * 10 + (s[i] - '0');
      ++i;
    }
    if (i == start || i == s.size()) return std::nullopt;
    const char unit = s[i++];
    // h, then m, then s, each at most once.
    const int rank = unit == 'h' ? 1 : unit == 'm' ? 2 : unit == 's' ? 3 : 0;
    const int last_rank = last_unit == 'h' ? 1 : last_unit == 'm' ? 2 : last_unit == 's' ? 3 : 0;
    if (rank == 0 || rank <= last_rank) return std::nullopt;
    last_unit = unit;
    total += n * (unit == 'h' ? 3600 : unit == 'm' ? 60 : 1);
  }
  return std::chrono::milliseconds(total * 1000);
}

namespace {

Status Number(const Json& obj, const char* key, double def, const std::string& source,
              double* out) {
  if (!obj.contains(key) || obj[key].is_null()) {
    *out = def;
    return Status::Ok();
  }
  const Json& v = obj[key];
  if (v.is_number()) {
    *out = v.get<double>();
  } else if (v.is_string()) {
    const std::string s = v.get<std::string>();
    char* end = nullptr;
    *out = std::strtod(s.c_str(), &end);
    if (s.empty() || end != s.c_str() + s.size()) {
      return InvalidArgumentError("{}.{}: expected a number, got \"{}\"", source, key, s);
    }
  } else {
    return InvalidArgumentError("{}.{}: expected a number or a string, got {}", source, key,
                                JsonTypeName(v));
  }
  if (!std::isfinite(*out) || *out < 0) {
    return InvalidArgumentError("{}.{}: must be a finite number >= 0", source, key);
  }
  return Status::Ok();
}

Status Duration(const Json& obj, const char* key, std::optional<std::chrono::milliseconds> def,
                const std::string& source, std::optional<std::chrono::milliseconds>* out) {
  if (!obj.contains(key) || obj[key].is_null()) {
    *out = def;
    return Status::Ok();
  }
  if (!obj[key].is_string()) {
    return InvalidArgumentError("{}.{}: expected a duration such as 60s, got {}", source, key,
                                JsonTypeName(obj[key]));
  }
  const std::string s = obj[key].get<std::string>();
  *out = ParseCrdDuration(s);
  if (!*out) {
    return InvalidArgumentError("{}.{}: \"{}\" is not a duration such as 90s, 15m or 1h30m", source,
                                key, s);
  }
  return Status::Ok();
}

}  // namespace

Result<AutoscalerConfig> ParseAutoscalingSpec(const Json& a, int64_t shutdown_timeout_seconds,
                                              std::string_view source) {
  const std::string src = fmt::format("{}", source);
  if (!a.is_object()) return InvalidArgumentError("{}: expected an object", src);
  AutoscalerConfig c;
  KINFER_ASSIGN_OR_RETURN(int64_t min_replicas, JsonInt(a, "minReplicas", 1, src));
  KINFER_ASSIGN_OR_RETURN(int64_t max_replicas, JsonInt(a, "maxReplicas", 4, src));
  if (min_replicas < 0 || min_replicas > 1000 || max_replicas < 1 || max_replicas > 1000) {
    return InvalidArgumentError("{}: minReplicas/maxReplicas out of range (0-1000, 1-1000)", src);
  }
  c.min_replicas = static_cast<int32_t>(min_replicas);
  c.max_replicas = static_cast<int32_t>(max_replicas);
  KINFER_RETURN_IF_ERROR(Number(a, "targetConcurrency", 8, src, &c.target_concurrency));
  KINFER_RETURN_IF_ERROR(Number(a, "targetRequestsWaiting", 2, src, &c.target_waiting));
  KINFER_RETURN_IF_ERROR(Number(a, "targetKVCacheUsage", 0.8, src, &c.target_kv_usage));
  KINFER_RETURN_IF_ERROR(Number(a, "panicThreshold", 2, src, &c.panic_threshold));
  KINFER_RETURN_IF_ERROR(Number(a, "maxScaleUpRate", 2, src, &c.max_scale_up_rate));
  std::optional<std::chrono::milliseconds> d;
  KINFER_RETURN_IF_ERROR(Duration(a, "stableWindow", std::chrono::seconds(60), src, &d));
  c.stable_window = *d;
  KINFER_RETURN_IF_ERROR(Duration(a, "panicWindow", std::chrono::seconds(6), src, &d));
  c.panic_window = *d;
  KINFER_RETURN_IF_ERROR(Duration(a, "scaleDownDelay", std::chrono::seconds(60), src, &d));
  c.scale_down_delay = *d;
  KINFER_RETURN_IF_ERROR(
      Duration(a, "scaleToZeroAfter", std::nullopt, src, &c.scale_to_zero_after));
  if (shutdown_timeout_seconds > 0) {
    c.drain_timeout = std::chrono::seconds(shutdown_timeout_seconds);
  }
  Status s = c.Validate();
  if (!s.ok()) {
    // Validate names "autoscaling.field"; say which object it is.
    return Status(s.code(), fmt::format("{}: {}", source, s.message()));
  }
  return c;
}

}  // namespace kinfer::op
