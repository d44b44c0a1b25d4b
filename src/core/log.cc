#include "core/log.h"

#include <spdlog/sinks/stdout_color_sinks.h>

#include <string>

namespace kinfer {

void InitLogging(std::string_view level, LogFormat format) {
  auto logger = spdlog::get("kinfer");
  if (!logger) logger = spdlog::stderr_color_mt("kinfer");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(std::string(level)));
  if (format == LogFormat::kJson) {
    // Messages are written by us and never contain raw user text unescaped (see server/access_log).
    spdlog::set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%fZ","level":"%l","msg":"%v"})",
                        spdlog::pattern_time_type::utc);
  } else {
    spdlog::set_pattern("[%Y-%m-%d %H:%M:%S.%e] [%^%l%$] %v");
  }
}

}  // namespace kinfer
