// /v1/embeddings (OpenAI's shape, with vLLM's extra fields): parsing a request body into token
// lists, finishing a pooled vector (Matryoshka truncation, L2 normalization), rendering the
// response as floats or base64; and the route that submits one pooling request per input to the
// engine, so that inputs are batched with everything else the engine runs.
//
//   auto req = ParseEmbeddingRequest(body, info, embedding_model);   // pure: tested and fuzzed
//   if (!req.ok()) reply(req.error());
//   std::string json = RenderEmbeddingResponse(*req, vectors, prompt_tokens, id, created);
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engine/engine.h"
#include "model/pooling_config.h"
#include "server/http_server.h"
#include "server/openai_api.h"

namespace kinfer::server {

// What the server serves embeddings with: the pooling config in force and the vector size.
struct EmbeddingModel {
  model::PoolingConfig pooling;
  int64_t hidden_size = 0;
};

struct EmbeddingRequest {
  std::string model;                         // as named in the response
  std::vector<std::vector<int32_t>> inputs;  // one pooling request each, in order
  bool base64 = false;                       // encoding_format "base64"
  int64_t dimensions = 0;                    // 0: the full vector
  bool normalize = true;
  int32_t priority = 0;
  std::string user;
};

// Most inputs one request may carry (OpenAI's limit).
inline constexpr size_t kMaxEmbeddingInputs = 2048;

// Parses and validates a body: `input` (a string, an array of strings, an array of token ids or
// an array of token-id arrays), `model`, `encoding_format` ("float" or "base64"), `dimensions`,
// `user`, and vLLM's `truncate_prompt_tokens`, `add_special_tokens`, `normalize`, `priority`.
// Any other field is a 400 naming it. Text is tokenized with special-token text parsed, as Hugging
// Face tokenizers do.
ApiResult<EmbeddingRequest> ParseEmbeddingRequest(const std::string& body, const ModelInfo& info,
                                                  const EmbeddingModel& model);

// The vector a client gets: the first `dimensions` values of `pooled`, L2-normalized when asked.
std::vector<float> FinishEmbedding(std::vector<float> pooled, const EmbeddingRequest& req);

// {"object": "list", "data": [{"object": "embedding", "index": i, "embedding": [...] or
// "base64"}], "model", "usage": {"prompt_tokens", "total_tokens"}}.
std::string RenderEmbeddingResponse(const EmbeddingRequest& req,
                                    const std::vector<std::vector<float>>& vectors,
                                    int64_t prompt_tokens, const std::string& id, int64_t created);

// Little-endian float32 bytes in standard base64, as the openai client decodes them.
std::string Base64Floats(const std::vector<float>& v);

// The route: one engine pooling request per input, the answer once all have finished. A closed
// connection aborts them. The server supplies how replies, admission and metrics are done.
class EmbeddingsRoute {
 public:
  struct Hooks {
    std::function<void(HttpExchange&, int status, const std::string& body,
                       const std::string& request_id)>
        reply;
    std::function<void(HttpExchange&, const ApiError&, const std::string& request_id)> reply_error;
    // Admits `inputs` engine requests (queue limit, drain accounting) or says why not.
    std::function<std::optional<ApiError>(int inputs)> admit;
    // Each engine request's last output (metrics; `embedding` is empty when it never ran).
    std::function<void(const engine::RequestOutput&)> input_done;
  };
  // Called once when an admitted request has been answered (status 499: the client left).
  using DoneCallback = std::function<void(int status, int64_t prompt_tokens)>;

  EmbeddingsRoute(engine::Engine& engine, const ModelInfo& info, EmbeddingModel model, Hooks hooks);
  void Handle(const std::shared_ptr<HttpExchange>& ex, const std::string& request_id,
              int64_t created, DoneCallback on_done);
  const EmbeddingModel& model() const { return model_; }

 private:
  engine::Engine& engine_;
  const ModelInfo& info_;
  EmbeddingModel model_;
  Hooks hooks_;
};

}  // namespace kinfer::server
