#include "tokenizer/detokenizer.h"

namespace kinfer::tokenizer {

IncrementalDetokenizer::IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer),
      skip_special_tokens_(skip_special_tokens),
      stream_(&tokenizer.decoder_) {}

std::string IncrementalDetokenizer::Push(int32_t id) {
  std::string out;
  if (id < 0 || id >= tokenizer_.vocab_size()) return out;
  if (skip_special_tokens_ && tokenizer_.IsSpecial(id)) return out;
  stream_.Push(tokenizer_.pieces_[id], &out);
  return out;
}

std::string IncrementalDetokenizer::Flush() {
  std::string out;
  stream_.Finish(&out);
  return out;
}

}  // namespace kinfer::tokenizer
