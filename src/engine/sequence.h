// One completion being generated: its tokens (prompt then output), how many of them have KV in
// the cache, and its per-sequence sampling and text state. A request with n > 1 has n of them.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "engine/constraint.h"
#include "engine/request.h"

namespace kinfer::engine {

// Streams token ids to UTF-8 text without ever splitting a character; supplied by the
// tokenizer (see Engine::Options::text_decoder).
class TextDecoder {
 public:
  virtual ~TextDecoder() = default;
  virtual std::string Push(int32_t token) = 0;
  virtual std::string Flush() = 0;
};

struct RequestState;

enum class SequenceStatus { kWaiting, kRunning, kFinished };

struct Sequence {
  uint64_t id = 0;
  RequestState* request = nullptr;
  int32_t index = 0;  // which of the request's n completions
  SequenceStatus status = SequenceStatus::kWaiting;
  std::vector<int32_t> tokens;  // prompt, then output
  int32_t prompt_len = 0;
  int32_t num_computed = 0;  // tokens whose K/V are in the cache
  int32_t priority = 0;
  uint64_t arrival_order = 0;  // FCFS tie-break; kept across preemption
  bool forked = false;         // created by forking after its parent's prefill
  bool finished_prefill = false;

  std::mt19937_64 rng;
  std::unique_ptr<TextDecoder> text;
  std::string output_text;              // decoded so far
  size_t text_sent = 0;                 // bytes of output_text already emitted
  bool text_sent_final = false;         // the finish reason has been emitted
  std::vector<int32_t> pending_tokens;  // ids not yet emitted
  std::vector<TokenLogprob> pending_logprobs;
  std::optional<FinishReason> finish_reason;
  std::optional<std::string> stop_string;
  std::optional<int32_t> stop_token;

  // Structured output: this sequence's own constraint and the mask of its next token.
  std::unique_ptr<Constraint> constraint;
  std::vector<uint32_t> mask;
  bool mask_ready = false;  // `mask` is for the next token (computed this step)
  double mask_seconds = 0;  // how long the last mask took

  int32_t output_len() const { return static_cast<int32_t>(tokens.size()) - prompt_len; }
  int32_t remaining() const { return static_cast<int32_t>(tokens.size()) - num_computed; }
};

}  // namespace kinfer::engine
