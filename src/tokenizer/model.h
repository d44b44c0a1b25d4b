// The model stage of a tokenizer: turns one pre-tokenized word into token ids. BPE covers the
// byte-level (GPT-2, Llama-3, Qwen) and SentencePiece (Llama-2, Mistral) families; WordPiece
// covers BERT vocabularies.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace kinfer::tokenizer {

class Model {
 public:
  virtual ~Model() = default;
  // Appends the ids of `word` (valid UTF-8 unless the model is byte-level) to `out`.
  virtual void EncodeWord(std::string_view word, std::vector<int32_t>* out) const = 0;
};

}  // namespace kinfer::tokenizer
