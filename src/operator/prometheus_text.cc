#include "operator/prometheus_text.h"

#include <cmath>
#include <cstdlib>

namespace kinfer::op {
namespace {

bool NameStart(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
}
bool NameChar(char c) { return NameStart(c) || (c >= '0' && c <= '9'); }
void SkipSpaces(std::string_view s, size_t& i) {
  while (i < s.size() && (s[i] == ' ' || s[i] == '\t')) ++i;
}

// A float as Go's strconv.ParseFloat takes it (what Prometheus writes): decimal, exponent,
// NaN, +Inf, -Inf.
std::optional<double> ParseValue(std::string_view v) {
  if (v == "NaN") return std::nan("");
  if (v == "+Inf" || v == "Inf") return HUGE_VAL;
  if (v == "-Inf") return -HUGE_VAL;
  if (v.empty() || v.size() > 64) return std::nullopt;
  for (char c : v) {
    if (!((c >= '0' && c <= '9') || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) {
      return std::nullopt;
    }
  }
  std::string copy(v);
  char* end = nullptr;
  double d = std::strtod(copy.c_str(), &end);
  if (end != copy.c_str() + copy.size()) return std::nullopt;
  return d;
}

// One sample line; false when malformed.
bool ParseLine(std::string_view line, PromSample& out) {
  size_t i = 0;
  if (i >= line.size() || !NameStart(line[i])) return false;
  while (i < line.size() && NameChar(line[i])) ++i;
  out.name.assign(line.substr(0, i));
  out.labels.clear();
  SkipSpaces(line, i);
  if (i < line.size() && line[i] == '{') {
    ++i;
    while (true) {
      SkipSpaces(line, i);
      if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      }
      size_t k = i;
      if (k >= line.size() || !NameStart(line[k]) || line[k] == ':') return false;
      while (i < line.size() && NameChar(line[i]) && line[i] != ':') ++i;
      std::string key(line.substr(k, i - k));
      SkipSpaces(line, i);
      if (i >= line.size() || line[i] != '=') return false;
      ++i;
      SkipSpaces(line, i);
      if (i >= line.size() || line[i] != '"') return false;
      ++i;
      std::string value;
      bool closed = false;
      while (i < line.size()) {
        char c = line[i++];
        if (c == '"') {
          closed = true;
          break;
        }
        if (c == '\\') {
          if (i >= line.size()) return false;
          char e = line[i++];
          if (e == 'n') {
            value.push_back('\n');
          } else if (e == '\\' || e == '"') {
            value.push_back(e);
          } else {
            return false;
          }
        } else {
          value.push_back(c);
        }
      }
      if (!closed) return false;
      out.labels.emplace_back(std::move(key), std::move(value));
      SkipSpaces(line, i);
      if (i < line.size() && line[i] == ',') {
        ++i;
      } else if (i < line.size() && line[i] == '}') {
        ++i;
        break;
      } else {
        return false;
      }
    }
  }
  SkipSpaces(line, i);
  size_t v = i;
  while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
  std::optional<double> value = ParseValue(line.substr(v, i - v));
  if (!value) return false;
  out.value = *value;
  SkipSpaces(line, i);
  if (i < line.size()) {
    // An optional timestamp (integer milliseconds), then nothing.
    size_t t = i;
    if (line[i] == '-') ++i;
    while (i < line.size() && line[i] >= '0' && line[i] <= '9') ++i;
    if (i == t || (i == t + 1 && line[t] == '-')) return false;
    SkipSpaces(line, i);
    if (i != line.size()) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string_view> PromSample::Label(std::string_view key) const {
  for (const auto& [k, v] : labels) {
    if (k == key) return std::string_view(v);
  }
  return std::nullopt;
}

std::optional<double> PromText::Sum(
    std::string_view name, const std::vector<std::pair<std::string, std::string>>& match) const {
  std::optional<double> sum;
  for (const PromSample& s : samples) {
    if (s.name != name || std::isnan(s.value)) continue;
    bool all = true;
    for (const auto& [k, v] : match) {
      std::optional<std::string_view> have = s.Label(k);
      if (!have || *have != v) {
        all = false;
        break;
      }
    }
    if (all) sum = sum.value_or(0) + s.value;
  }
  return sum;
}

PromText ParsePrometheusText(std::string_view text, size_t max_samples) {
  PromText out;
  size_t pos = 0;
  PromSample sample;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    size_t i = 0;
    SkipSpaces(line, i);
    line.remove_prefix(i);
    if (line.empty() || line[0] == '#') continue;
    if (out.samples.size() >= max_samples) {
      out.truncated = true;
      break;
    }
    if (ParseLine(line, sample)) {
      out.samples.push_back(sample);
    } else {
      ++out.malformed_lines;
    }
  }
  return out;
}

}  // namespace kinfer::op
