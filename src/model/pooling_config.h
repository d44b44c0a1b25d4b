// How an embedding model turns the final hidden states of a prompt into one vector: read from a
// sentence-transformers directory (modules.json, 1_Pooling/config.json, a Normalize module),
// from a GGUF file's `<arch>.pooling_type`, or from the user's --pooler-config JSON (vLLM's
// flag). A model with a pooling config is an embedding model; one without is generative.
//
//   KINFER_ASSIGN_OR_RETURN(std::optional<PoolingConfig> p, ReadSentenceTransformersConfig(dir));
//   if (p) fmt::print("{} pooling\n", PoolingTypeName(p->type));
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace kinfer::model {

class GgufFile;

enum class PoolingType {
  kLast,  // the last prompt token's hidden state (Qwen3-Embedding, e5-mistral, gte-Qwen)
  kMean,  // the mean over every prompt token
  kCls,   // the first token's
};
std::string_view PoolingTypeName(PoolingType t);  // "LAST", "MEAN", "CLS"

struct PoolingConfig {
  PoolingType type = PoolingType::kLast;
  bool normalize = true;  // L2-normalize the pooled vector (sentence-transformers' Normalize)
  // Matryoshka (MRL): a client may ask for fewer `dimensions`; the vector is truncated, then
  // normalized. Allowed when `matryoshka` is set: any size in [1, hidden] when
  // `matryoshka_dimensions` is empty, else only those sizes.
  bool matryoshka = false;
  std::vector<int64_t> matryoshka_dimensions;
  // The hidden size the pooling module was saved for (0: not stated); the loader checks it.
  int64_t dimension = 0;
  std::string source;  // what it was read from, for logs and messages
};

// The sentence-transformers layout of an HF directory: nullopt when the directory has no
// modules.json (not a sentence-transformers model). Errors name the file and field: a Pooling
// mode Kinfer does not compute (max, weighted mean), a Dense projection module, malformed JSON.
// `config_json` (the model's config.json text) supplies `is_matryoshka` and
// `matryoshka_dimensions` as vLLM reads them.
Result<std::optional<PoolingConfig>> ReadSentenceTransformersConfig(const std::string& dir,
                                                                    std::string_view config_json);

// The parser behind ReadSentenceTransformersConfig for the two files that decide it, for tests
// and the fuzzer. `pooling_json` may be empty when modules.json names no Pooling module.
Result<PoolingConfig> ParseSentenceTransformersModules(std::string_view modules_json,
                                                       std::string_view pooling_json,
                                                       const std::string& dir);

// `<arch>.pooling_type` of a GGUF file (llama.cpp's enum: 1 mean, 2 cls, 3 last); nullopt when
// the key is absent or 0 (none). Rank pooling (4) is refused.
Result<std::optional<PoolingConfig>> PoolingFromGguf(const GgufFile& gguf);

// --pooler-config: {"pooling_type": "LAST"|"MEAN"|"CLS", "normalize": bool, "is_matryoshka": bool,
// "matryoshka_dimensions": [..]} fields over `base` (the model's own config, or LAST + normalize
// for a generative model).
Result<PoolingConfig> ApplyPoolerConfigJson(std::string_view json, PoolingConfig base);

// Matryoshka fields of an HF config.json (`is_matryoshka`, `matryoshka_dimensions`) into `p`.
Status ApplyMatryoshkaFromHfConfig(std::string_view config_json, const std::string& path,
                                   PoolingConfig* p);

}  // namespace kinfer::model
