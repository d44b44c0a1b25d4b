// Engine state shared by the scheduler and the engine loop; not part of the public API.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <vector>

#include "engine/request.h"
#include "engine/sequence.h"

namespace kinfer::engine {

struct RequestState {
  Request request;
  std::function<void(RequestOutput)> on_output;
  uint64_t extra_hash = 0;  // prefix-cache isolation key (cache_salt, adapter content)
  std::vector<std::unique_ptr<Sequence>> seqs;
  int32_t num_finished = 0;
  bool forked = false;                   // children of an n > 1 request exist
  std::optional<int32_t> cached_tokens;  // prefix-cache hit at first admission
  std::optional<Clock::time_point> first_scheduled, first_token;
  std::vector<TokenLogprob> prompt_logprobs;
  bool prompt_logprobs_sent = false;
  int32_t stop_holdback = 0;  // longest stop string minus one, in bytes
  Status error;               // set when the request failed (FinishReason::kError)
};

inline bool PrefixCachingAllowed(const Sequence& s) {
  // Prompt logprobs need logits at every prompt position, so the prompt must be computed.
  return !s.request->request.params.prompt_logprobs.has_value();
}
inline const model::LoraAdapter* SequenceLora(const Sequence& s) {
  return s.request->request.lora.get();
}
inline uint64_t RequestExtraHash(const Sequence& s) { return s.request->extra_hash; }
inline void NoteCachedTokens(Sequence& s, int32_t n) {
  if (!s.request->cached_tokens) s.request->cached_tokens = n;
}

}  // namespace kinfer::engine
