// An LLMService's spec.autoscaling (deploy/crds/kinfer.dev_llmservices.yaml) as the autoscaler's
// config: int-or-string numbers ("0.8", 2), durations as the CRD writes them ("1h2m3s", "60s"),
// the CRD's defaults for what an older object lacks, and the autoscaler's own checks, with the
// field named in every error ("llm/qwen: spec.autoscaling.panicWindow: ...").
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

#include "core/json.h"
#include "core/status.h"
#include "operator/autoscaler.h"

namespace kinfer::op {

// `autoscaling` is the spec.autoscaling object; `shutdown_timeout_seconds` the engines'
// (spec.engine.shutdownTimeoutSeconds), which bounds how long a drain waits.
Result<AutoscalerConfig> ParseAutoscalingSpec(const Json& autoscaling,
                                              int64_t shutdown_timeout_seconds,
                                              std::string_view source);

// "1h2m3s", "90s", "15m" -> milliseconds; nullopt for anything else (and for "").
std::optional<std::chrono::milliseconds> ParseCrdDuration(std::string_view s);

}  // namespace kinfer::op
