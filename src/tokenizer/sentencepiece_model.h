// SentencePiece .model files (the ModelProto protobuf), read with a small wire-format parser of
// our own: the pieces with scores and types, the trainer's model type, byte_fallback and special
// ids, and the normalizer's dummy-prefix and whitespace rules. BPE models only.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::tokenizer {

Result<TokenizerParts> ParseSentencePieceModel(std::string_view bytes, std::string source);

}  // namespace kinfer::tokenizer
