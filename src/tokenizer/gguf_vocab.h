// A tokenizer from GGUF metadata alone (tokenizer.ggml.*): model "gpt2" (byte-level BPE with
// merges and the pre-tokenizer named by tokenizer.ggml.pre), "llama" (SentencePiece BPE with
// scores and byte fallback) or "bert" (WordPiece), the special token ids, the add_bos/add_eos
// rules and tokenizer.chat_template.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "model/gguf.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::tokenizer {

Result<TokenizerParts> TokenizerFromGguf(const model::GgufFile& gguf);

// The split regexes llama.cpp applies for a tokenizer.ggml.pre name (Hugging Face's original
// patterns where llama.cpp rewrote them for std::regex), whether merges are skipped for words
// already in the vocab, and whether BOS is added by default. Unknown names are an error.
struct GgufPreTokenizer {
  std::vector<std::string> regexes;
  bool ignore_merges = false;
  bool add_bos = false;
};
Result<GgufPreTokenizer> GgufPreTokenizerFor(std::string_view name);

}  // namespace kinfer::tokenizer
