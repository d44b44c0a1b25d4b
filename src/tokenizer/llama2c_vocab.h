// llama2.c's tokenizer.bin (tok512.bin for the tiny stories models): int32 max_token_length,
// then per token a float score, an int32 length and the bytes, spaces written as ' ' where
// SentencePiece writes "▁". Read as a SentencePiece BPE vocabulary (BOS 1, EOS 2, unknown 0,
// byte pieces "<0xXX>"), which is what run.c's encoder is.
#pragma once

#include <string>
#include <string_view>

#include "core/status.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::tokenizer {

Result<TokenizerParts> ParseLlama2cVocab(std::string_view bytes, std::string source);

}  // namespace kinfer::tokenizer
