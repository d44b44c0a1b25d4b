// libFuzzer target: encoding arbitrary bytes with real tokenizers from ../shared (byte-level BPE,
// SentencePiece BPE, GGUF vocab) must not crash, must give ids in range, and decoding them
// (whole and incrementally) must give valid UTF-8 with the deltas adding up to the whole.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/unicode.h"

namespace {

std::vector<std::unique_ptr<kinfer::tokenizer::Tokenizer>>& Tokenizers() {
  static std::vector<std::unique_ptr<kinfer::tokenizer::Tokenizer>> toks;
  return toks;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const std::string shared = std::string(KINFER_SHARED_DIR) + "/";
  for (const char* rel : {"tokenizers/qwen3/tokenizer.json", "tokenizers/mistral-7b/tokenizer.json",
                          "models/stories260K/stories260K.gguf",
                          "tokenizer-tests/llama.cpp/ggml-vocab-bert-bge.gguf"}) {
    auto tok = kinfer::tokenizer::Tokenizer::Load(shared + rel);
    if (!tok.ok()) {
      fprintf(stderr, "tokenize_fuzz: %s\n", tok.status().ToString().c_str());
      std::abort();
    }
    Tokenizers().push_back(std::move(*tok));
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const auto& toks = Tokenizers();
  const auto& tok = *toks[data[0] % toks.size()];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  const auto ids = tok.Encode(text, (data[0] & 4) != 0, (data[0] & 8) != 0);
  for (int32_t id : ids) {
    if (id < 0 || id >= tok.vocab_size()) std::abort();
  }
  const bool skip = (data[0] & 16) != 0;
  const std::string whole = tok.Decode(ids, skip);
  if (!kinfer::tokenizer::IsValidUtf8(whole)) std::abort();
  kinfer::tokenizer::IncrementalDetokenizer detok(tok, skip);
  std::string joined;
  for (int32_t id : ids) joined += detok.Push(id);
  joined += detok.Flush();
  if (joined != whole) std::abort();
  // Arbitrary ids (pairs of bytes) decode to valid UTF-8 as well.
  std::vector<int32_t> raw;
  for (size_t i = 1; i + 1 < size && raw.size() < 64; i += 2) {
    raw.push_back(static_cast<int32_t>((data[i] << 8 | data[i + 1]) % (tok.vocab_size() + 10)));
  }
  if (!kinfer::tokenizer::IsValidUtf8(tok.Decode(raw, skip))) std::abort();
  return 0;
}
