#include "core/system_info.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <string>

namespace kinfer {
namespace {

std::optional<int64_t> ReadNumber(const char* path) {
  std::ifstream f(path);
  std::string s;
  if (!(f >> s) || s == "max") return std::nullopt;
  try {
    return std::stoll(s);
  } catch (...) {
    return std::nullopt;
  }
}

}  // namespace

int64_t AvailableMemoryBytes() {
  int64_t avail = int64_t{4} << 30;
  {
    std::ifstream f("/proc/meminfo");
    std::string key, unit;
    int64_t value = 0;
    while (f >> key >> value >> unit) {
      if (key == "MemAvailable:") {
        avail = value * 1024;
        break;
      }
    }
  }
  // cgroup v2, then v1. A v1 "no limit" reads as a huge number, which min() ignores.
  std::optional<int64_t> limit = ReadNumber("/sys/fs/cgroup/memory.max");
  std::optional<int64_t> usage = ReadNumber("/sys/fs/cgroup/memory.current");
  if (!limit) {
    limit = ReadNumber("/sys/fs/cgroup/memory/memory.limit_in_bytes");
    usage = ReadNumber("/sys/fs/cgroup/memory/memory.usage_in_bytes");
  }
  if (limit && *limit > 0 && *limit < (int64_t{1} << 60)) {
    avail = std::min(avail, *limit - usage.value_or(0));
  }
  return std::max<int64_t>(avail, 0);
}

std::optional<int> CgroupCpuLimit() {
  {
    std::ifstream f("/sys/fs/cgroup/cpu.max");
    std::string quota;
    int64_t period = 0;
    if (f >> quota >> period && quota != "max" && period > 0) {
      double cpus = std::stod(quota) / static_cast<double>(period);
      return std::max(1, static_cast<int>(std::ceil(cpus)));
    }
  }
  auto quota = ReadNumber("/sys/fs/cgroup/cpu/cpu.cfs_quota_us");
  auto period = ReadNumber("/sys/fs/cgroup/cpu/cpu.cfs_period_us");
  if (quota && period && *quota > 0 && *period > 0) {
    return std::max(1, static_cast<int>(std::ceil(static_cast<double>(*quota) / *period)));
  }
  return std::nullopt;
}

}  // namespace kinfer
