#include "core/units.h"

#include <fmt/format.h>

#include <cctype>
#include <cmath>
#include <cstdlib>

namespace kinfer {

std::optional<int64_t> ParseBytes(const std::string& s) {
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end == s.c_str() || !std::isfinite(v) || v < 0) return std::nullopt;
  std::string unit(end);
  for (char& c : unit) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  double mult = 1;
  if (unit.empty() || unit == "b") {
    mult = 1;
  } else if (unit == "k" || unit == "kb") {
    mult = 1e3;
  } else if (unit == "kib") {
    mult = 1024;
  } else if (unit == "m" || unit == "mb") {
    mult = 1e6;
  } else if (unit == "mib") {
    mult = 1024.0 * 1024;
  } else if (unit == "g" || unit == "gb") {
    mult = 1e9;
  } else if (unit == "gib") {
    mult = 1024.0 * 1024 * 1024;
  } else {
    return std::nullopt;
  }
  double bytes = v * mult;
  if (bytes > 9e18) return std::nullopt;
  return static_cast<int64_t>(bytes);
}

std::string FormatBytes(int64_t b) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  double v = static_cast<double>(b);
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  return u == 0 ? fmt::format("{} B", b) : fmt::format("{:.1f} {}", v, units[u]);
}

}  // namespace kinfer
