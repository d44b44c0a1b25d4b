// Streaming detokenization for the engine: one id in, the text that became final out.
//
//   IncrementalDetokenizer detok(*tok, /*skip_special_tokens=*/true);
//   for (int32_t id : generated) send(detok.Push(id));
//   send(detok.Flush());
#pragma once

#include <cstdint>
#include <string>

#include "tokenizer/decoder.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::tokenizer {

// Never returns a broken UTF-8 sequence: a character split over byte tokens (byte-level BPE or
// SentencePiece byte fallback) waits for its last byte, and SentencePiece's leading space is
// dropped once, as in a full decode. The concatenation of every Push plus Flush equals
// Tokenizer::Decode of all the ids, because both run the same DecodeStream.
class IncrementalDetokenizer {
 public:
  // `tokenizer` must outlive this object.
  IncrementalDetokenizer(const Tokenizer& tokenizer, bool skip_special_tokens);

  std::string Push(int32_t id);
  // Returns what was held back (an unfinished character becomes U+FFFD) and starts a new stream.
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  DecodeStream stream_;
};

}  // namespace kinfer::tokenizer
