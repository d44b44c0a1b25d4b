#include "router/replica_metrics.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <string>
#include <utility>
#include <vector>

namespace kinfer::router {
namespace {

struct Sample {
  std::string_view name;
  std::vector<std::pair<std::string_view, std::string>> labels;
  double value = 0;
};

bool IsNameChar(char c, bool first) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':' ||
         (!first && c >= '0' && c <= '9');
}

// One sample line, as the exposition format defines it: name, optional {labels}, value,
// optional timestamp. False when the line is not one.
bool ParseSample(std::string_view line, Sample* out) {
  size_t i = 0;
  const size_t n = line.size();
  while (i < n && IsNameChar(line[i], i == 0)) ++i;
  if (i == 0) return false;
  out->name = line.substr(0, i);
  out->labels.clear();
  if (i < n && line[i] == '{') {
    ++i;
    while (true) {
      while (i < n && (line[i] == ' ' || line[i] == ',')) ++i;
      if (i < n && line[i] == '}') {
        ++i;
        break;
      }
      const size_t key_begin = i;
      while (i < n && IsNameChar(line[i], i == key_begin)) ++i;
      if (i == key_begin) return false;
      std::string_view key = line.substr(key_begin, i - key_begin);
      while (i < n && line[i] == ' ') ++i;
      if (i >= n || line[i] != '=') return false;
      ++i;
      while (i < n && line[i] == ' ') ++i;
      if (i >= n || line[i] != '"') return false;
      ++i;
      std::string value;
      bool closed = false;
      while (i < n) {
        char c = line[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\' && i < n) {
          char e = line[i++];
          value += e == 'n' ? '\n' : e;
        } else {
          value += c;
        }
      }
      if (!closed) return false;
      out->labels.emplace_back(key, std::move(value));
    }
  }
  while (i < n && (line[i] == ' ' || line[i] == '\t')) ++i;
  size_t v_end = i;
  while (v_end < n && line[v_end] != ' ' && line[v_end] != '\t') ++v_end;
  std::string_view v = line.substr(i, v_end - i);
  if (v.empty()) return false;
  if (v == "+Inf" || v == "Inf") {
    out->value = INFINITY;
  } else if (v == "-Inf") {
    out->value = -INFINITY;
  } else if (v == "NaN") {
    out->value = NAN;
  } else {
    auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out->value);
    if (ec != std::errc() || ptr != v.data() + v.size()) return false;
  }
  return true;
}

// The metric's name without a known prefix, and whether the prefix was Kinfer's own.
bool StripPrefix(std::string_view name, std::string_view* base, bool* kinfer) {
  for (auto [prefix, is_kinfer] : {std::pair{std::string_view("kinfer:"), true},
                                   std::pair{std::string_view("vllm:"), false}}) {
    if (name.substr(0, prefix.size()) == prefix) {
      *base = name.substr(prefix.size());
      *kinfer = is_kinfer;
      return true;
    }
  }
  return false;
}

// One signal seen under either prefix; Kinfer's wins when both are there.
// Counts add up over series (one per served model name); fractions take the largest.
struct Signal {
  bool fraction = false;
  double sum[2] = {0, 0};  // [vllm, kinfer]
  bool seen[2] = {false, false};
  void Add(bool kinfer, double v) {
    sum[kinfer] = !seen[kinfer] ? v : fraction ? std::max(sum[kinfer], v) : sum[kinfer] + v;
    seen[kinfer] = true;
  }
  std::optional<double> Get() const {
    if (seen[1]) return sum[1];
    if (seen[0]) return sum[0];
    return std::nullopt;
  }
};

}  // namespace

ReplicaLoad ParseReplicaMetrics(std::string_view text) {
  ReplicaLoad out;
  Signal waiting, running, kv{.fraction = true}, kv_old{.fraction = true};
  bool config_from_kinfer = false, lora_from_kinfer = false;
  Sample s;
  while (!text.empty()) {
    size_t eol = text.find('\n');
    std::string_view line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view() : text.substr(eol + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t first = line.find_first_not_of(" \t");
    if (first == std::string_view::npos || line[first] == '#') continue;
    line = line.substr(first);
    if (!ParseSample(line, &s)) {
      out.malformed_lines++;
      continue;
    }
    std::string_view base;
    bool kinfer = false;
    if (!StripPrefix(s.name, &base, &kinfer)) continue;
    if (std::isnan(s.value)) continue;
    if (base == "num_requests_waiting") {
      waiting.Add(kinfer, s.value);
    } else if (base == "num_requests_running") {
      running.Add(kinfer, s.value);
    } else if (base == "kv_cache_usage_perc") {
      kv.Add(kinfer, s.value);
    } else if (base == "gpu_cache_usage_perc") {
      kv_old.Add(kinfer, s.value);
    } else if (base == "cache_config_info" && (kinfer || !config_from_kinfer)) {
      for (const auto& [k, v] : s.labels) {
        if (k == "block_size") {
          int32_t b = 0;
          auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), b);
          if (ec == std::errc() && p == v.data() + v.size() && b > 0) out.block_size = b;
        } else if (k == "num_gpu_blocks") {
          int64_t b = 0;
          auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), b);
          if (ec == std::errc() && p == v.data() + v.size() && b > 0) out.num_blocks = b;
        }
      }
      config_from_kinfer = config_from_kinfer || kinfer;
    } else if (base == "lora_requests_info" && (kinfer || !lora_from_kinfer)) {
      out.lora_adapters.clear();
      for (const auto& [k, v] : s.labels) {
        if (k == "running_lora_adapters" || k == "waiting_lora_adapters") {
          std::string_view list = v;
          while (!list.empty()) {
            size_t comma = list.find(',');
            std::string_view name = list.substr(0, comma);
            if (!name.empty()) out.lora_adapters.emplace_back(name);
            list = comma == std::string_view::npos ? std::string_view() : list.substr(comma + 1);
          }
        } else if (k == "max_lora") {
          int32_t m = 0;
          auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), m);
          if (ec == std::errc() && p == v.data() + v.size() && m >= 0) out.max_lora = m;
        }
      }
      lora_from_kinfer = lora_from_kinfer || kinfer;
    }
  }
  out.waiting = waiting.Get();
  out.running = running.Get();
  out.kv_usage = kv.Get();
  if (!out.kv_usage) out.kv_usage = kv_old.Get();
  if (out.kv_usage) out.kv_usage = std::min(1.0, std::max(0.0, *out.kv_usage));
  return out;
}

}  // namespace kinfer::router
