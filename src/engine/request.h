// What a client asks the engine for and what comes back: sampling parameters (OpenAI's and
// vLLM's), the request, and the stream of outputs with token ids, text, logprobs and usage.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"

namespace kinfer::model {
class LoraAdapter;
}

namespace kinfer::engine {

class Constraint;

using Clock = std::chrono::steady_clock;

struct SamplingParams {
  int32_t n = 1;             // independent completions sharing the prompt's KV blocks
  float temperature = 1.0f;  // 0: greedy
  float top_p = 1.0f;
  int32_t top_k = 0;  // 0 or -1: no limit
  float min_p = 0.0f;
  float repetition_penalty = 1.0f;  // HF-style, over prompt and output tokens
  float presence_penalty = 0.0f;    // OpenAI-style, over output tokens
  float frequency_penalty = 0.0f;
  std::vector<std::pair<int32_t, float>> logit_bias;
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;  // stop strings, matched across token boundaries
  std::vector<int32_t> stop_token_ids;
  bool include_stop_str_in_output = false;
  bool ignore_eos = false;
  int32_t min_tokens = 0;
  int32_t max_tokens = 16;                 // also capped by the model length
  std::optional<int32_t> logprobs;         // top alternatives per output token (0: chosen only)
  std::optional<int32_t> prompt_logprobs;  // likewise for prompt tokens
  bool skip_special_tokens = true;
  // Output constrained to a grammar (structured output); null: unconstrained. An immutable
  // prototype: each sequence advances its own clone.
  std::shared_ptr<const Constraint> constraint;

  // Checks ranges; errors name the field as the OpenAI API spells it.
  Status Validate(int64_t vocab_size) const;
};

struct Request {
  std::string id;
  std::vector<int32_t> prompt_tokens;
  SamplingParams params;
  int32_t priority = 0;    // lower runs first, as vLLM's `priority`
  std::string cache_salt;  // isolates prefix-cache sharing between tenants
  // The LoRA adapter to run with (null: the base model), loaded for the engine's model, and the
  // name it is served under (metrics). The request holds it until it finishes.
  std::shared_ptr<const model::LoraAdapter> lora;
  std::string lora_name;
  Clock::time_point arrival = Clock::now();
};

enum class FinishReason { kStop, kLength, kAbort, kError };
std::string_view FinishReasonName(FinishReason r);  // "stop", "length", "abort", "error"

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
  std::vector<std::pair<int32_t, float>> top;  // most likely tokens first
};

// What one completion (one of n) produced since the last output.
struct SequenceOutput {
  int32_t index = 0;
  std::vector<int32_t> token_ids;
  std::string text;                    // UTF-8 text delta; never a split character
  std::vector<TokenLogprob> logprobs;  // one per token id, when asked for
  std::optional<FinishReason> finish_reason;
  std::optional<std::string> stop_string;  // the stop string that ended it
  std::optional<int32_t> stop_token;       // or the stop/EOS token
};

struct Usage {
  int32_t prompt_tokens = 0;
  int32_t completion_tokens = 0;
  int32_t cached_tokens = 0;  // prompt tokens served from the prefix cache
};

struct RequestOutput {
  std::string request_id;
  std::vector<SequenceOutput> seqs;           // only the completions that changed
  std::vector<TokenLogprob> prompt_logprobs;  // once, when asked for (first is empty)
  bool finished = false;  // every completion has finished; the last output for the request
  Usage usage;            // counts so far
  Status error;           // set with FinishReason::kError: what went wrong
  // Timing for metrics.
  Clock::time_point arrival;
  std::optional<Clock::time_point> first_scheduled;
  std::optional<Clock::time_point> first_token;
};

}  // namespace kinfer::engine
