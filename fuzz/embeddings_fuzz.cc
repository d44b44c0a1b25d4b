// libFuzzer target: /v1/embeddings request bodies through parsing and validation (with a real
// byte-level BPE tokenizer), the vector finishing and the response rendering of whatever parses;
// and the sentence-transformers pooling config parser on the same bytes.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "model/pooling_config.h"
#include "server/embeddings.h"
#include "tokenizer/tokenizer.h"

namespace {
std::unique_ptr<kinfer::tokenizer::Tokenizer> g_tok;
kinfer::server::ModelInfo g_info;
kinfer::server::EmbeddingModel g_model;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  auto tok = kinfer::tokenizer::Tokenizer::Load(KINFER_FIXTURES_DIR "/embeddings/qwen3-embed");
  if (!tok.ok()) __builtin_trap();
  g_tok = std::move(*tok);
  g_info.served_names = {"m"};
  g_info.max_model_len = 256;
  g_info.vocab_size = g_tok->vocab_size();
  g_info.tokenizer = g_tok.get();
  g_model.hidden_size = 32;
  g_model.pooling.matryoshka = true;
  g_model.pooling.matryoshka_dimensions = {8, 16, 32};
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 1 << 16) return 0;
  const std::string body(reinterpret_cast<const char*>(data), size);
  auto req = kinfer::server::ParseEmbeddingRequest(body, g_info, g_model);
  if (req.ok()) {
    std::vector<std::vector<float>> vectors;
    for (size_t i = 0; i < req->inputs.size(); ++i) {
      std::vector<float> v(32);
      for (size_t d = 0; d < v.size(); ++d)
        v[d] = static_cast<float>(req->inputs[i][d % req->inputs[i].size()]);
      vectors.push_back(kinfer::server::FinishEmbedding(std::move(v), *req));
    }
    (void)kinfer::server::RenderEmbeddingResponse(*req, vectors, 1, "id", 0);
  } else {
    (void)kinfer::server::ErrorJson(req.error());
  }
  // The same bytes as modules.json and as a Pooling config.json, and as --pooler-config.
  (void)kinfer::model::ParseSentenceTransformersModules(body, R"({"pooling_mode": "lasttoken"})",
                                                        "/fuzz");
  (void)kinfer::model::ParseSentenceTransformersModules(
      R"([{"type": "a.Transformer"}, {"type": "a.Pooling", "path": "1_Pooling"}])", body, "/fuzz");
  (void)kinfer::model::ApplyPoolerConfigJson(body, kinfer::model::PoolingConfig{});
  return 0;
}
