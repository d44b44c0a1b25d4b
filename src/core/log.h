// Logging for the whole binary: spdlog to stderr, human-readable by default or one JSON object
// per line (`--log-format json`) for log collectors in Kubernetes.
#pragma once

#include <spdlog/spdlog.h>

#include <string_view>

namespace kinfer {

enum class LogFormat { kText, kJson };

// Sets the global logger's level ("trace".."off") and format. Safe to call more than once.
void InitLogging(std::string_view level, LogFormat format = LogFormat::kText);

}  // namespace kinfer

#define KINFER_LOG_DEBUG(...) SPDLOG_DEBUG(__VA_ARGS__)
#define KINFER_LOG_INFO(...) SPDLOG_INFO(__VA_ARGS__)
#define KINFER_LOG_WARN(...) SPDLOG_WARN(__VA_ARGS__)
#define KINFER_LOG_ERROR(...) SPDLOG_ERROR(__VA_ARGS__)
