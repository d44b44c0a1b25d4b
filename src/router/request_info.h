// What the router reads from a request body before it picks a replica: the model it names,
// whether it streams, the session key, the cache salt, and the prompt as the engine will see
// it. With the model's tokenizer and chat template loaded (`kinfer router --model`), the prompt
// is rendered and tokenized exactly as `kinfer serve` does it (server::RenderChat, the same
// Tokenizer), so its chained block hashes are the ones the replicas cache. Without them, the
// prompt's bytes stand in for tokens (four to a pseudo-token): affinity still works, the
// hashes just do not match the engine's.
//
// Only the first `max_tokens` tokens matter to the prefix index, so a long prompt is cut
// before tokenizing (at a whitespace, with a margin dropped) to keep the router's cost bounded.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "server/openai_api.h"

namespace kinfer::tokenizer {
class Tokenizer;
}  // namespace kinfer::tokenizer

namespace kinfer::router {

// The served model's tokenizer and chat template, loaded like `kinfer serve` loads them.
class PromptModel {
 public:
  // `path`: a GGUF file, HF directory, llama2.c .bin or a tokenizer file; `chat_template_file`
  // overrides the model's template ("" keeps it).
  static Result<std::unique_ptr<PromptModel>> Load(const std::string& path,
                                                   const std::string& chat_template_file);
  ~PromptModel();
  const server::ModelInfo& info() const { return info_; }
  const tokenizer::Tokenizer& tokenizer() const { return *tok_; }

 private:
  PromptModel() = default;
  std::unique_ptr<tokenizer::Tokenizer> tok_;
  server::ModelInfo info_;
};

struct RequestInfo {
  std::string model;  // empty: the body names none
  bool stream = false;
  std::string user;        // the `user` field
  std::string cache_salt;  // isolates prefix caches (part of the block hash)
  // The LoRA adapter `model` names (set by the router from the replicas' /v1/models, where an
  // adapter has a "parent"); "" for the base model.
  std::string adapter;
  // The first prompt as the engine's tokens (or pseudo-tokens, see above), at most the cap.
  std::vector<int32_t> prompt;
  bool exact_tokens = false;           // real tokens from the model's tokenizer
  bool truncated = false;              // the prompt was longer than the cap
  int64_t prompt_tokens_estimate = 0;  // whole request, for token rate limits
  int64_t max_completion_tokens = 0;   // max_tokens / max_completion_tokens, 0 if absent
};

struct RequestInfoOptions {
  bool tokenize = true;      // false: only the cheap fields (policies without a prefix index)
  size_t max_tokens = 4096;  // prompt tokens kept for the prefix index
};

// Reads a /v1/completions or /v1/chat/completions body (other paths: only the cheap fields).
// Errors are the ones `kinfer serve` would give for the same body (invalid JSON, a template
// that fails), so the router can answer them itself.
server::ApiResult<RequestInfo> ReadRequestInfo(std::string_view path, std::string_view body,
                                               const PromptModel* model,
                                               const RequestInfoOptions& options);

}  // namespace kinfer::router
