#include "engine/request.h"

#include <cmath>

namespace kinfer::engine {

std::string_view FinishReasonName(FinishReason r) {
  switch (r) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kAbort:
      return "abort";
    case FinishReason::kError:
      return "error";
  }
  return "unknown";
}

Status SamplingParams::Validate(int64_t vocab_size) const {
  if (n < 1 || n > 128) return InvalidArgumentError("'n' must be between 1 and 128, got {}", n);
  if (!std::isfinite(temperature) || temperature < 0 || temperature > 100) {
    return InvalidArgumentError("'temperature' must be between 0 and 100, got {}", temperature);
  }
  if (!std::isfinite(top_p) || top_p <= 0 || top_p > 1) {
    return InvalidArgumentError("'top_p' must be in (0, 1], got {}", top_p);
  }
  if (top_k < -1)
    return InvalidArgumentError("'top_k' must be -1 (disabled) or >= 0, got {}", top_k);
  if (!std::isfinite(min_p) || min_p < 0 || min_p > 1) {
    return InvalidArgumentError("'min_p' must be in [0, 1], got {}", min_p);
  }
  if (!std::isfinite(repetition_penalty) || repetition_penalty <= 0 || repetition_penalty > 100) {
    return InvalidArgumentError("'repetition_penalty' must be in (0, 100], got {}",
                                repetition_penalty);
  }
  if (!std::isfinite(presence_penalty) || presence_penalty < -2 || presence_penalty > 2) {
    return InvalidArgumentError("'presence_penalty' must be in [-2, 2], got {}", presence_penalty);
  }
  if (!std::isfinite(frequency_penalty) || frequency_penalty < -2 || frequency_penalty > 2) {
    return InvalidArgumentError("'frequency_penalty' must be in [-2, 2], got {}",
                                frequency_penalty);
  }
  for (const auto& [token, bias] : logit_bias) {
    if (token < 0 || token >= vocab_size) {
      return InvalidArgumentError("'logit_bias' names token {} outside the vocabulary [0, {})",
                                  token, vocab_size);
    }
    if (!std::isfinite(bias) || bias < -100 || bias > 100) {
      return InvalidArgumentError("'logit_bias' values must be in [-100, 100], got {}", bias);
    }
  }
  for (int32_t t : stop_token_ids) {
    if (t < 0 || t >= vocab_size) {
      return InvalidArgumentError("'stop_token_ids' names token {} outside the vocabulary", t);
    }
  }
  for (const std::string& s : stop) {
    if (s.empty()) return InvalidArgumentError("'stop' strings must not be empty");
  }
  if (stop.size() > 16) return InvalidArgumentError("'stop' takes at most 16 strings");
  if (max_tokens < 1)
    return InvalidArgumentError("'max_tokens' must be at least 1, got {}", max_tokens);
  if (min_tokens < 0 || min_tokens > max_tokens) {
    return InvalidArgumentError("'min_tokens' must be between 0 and max_tokens ({}), got {}",
                                max_tokens, min_tokens);
  }
  if (logprobs && (*logprobs < 0 || *logprobs > 20)) {
    return InvalidArgumentError("'logprobs' must be between 0 and 20, got {}", *logprobs);
  }
  if (prompt_logprobs && (*prompt_logprobs < 0 || *prompt_logprobs > 20)) {
    return InvalidArgumentError("'prompt_logprobs' must be between 0 and 20, got {}",
                                *prompt_logprobs);
  }
  return Status::Ok();
}

}  // namespace kinfer::engine
