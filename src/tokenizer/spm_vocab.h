// A SentencePiece-style BPE vocabulary (pieces with scores and types, "▁" for spaces, "<0xXX>"
// byte pieces) turned into a Tokenizer's parts. GGUF "llama" vocabularies, SentencePiece .model
// files and llama2.c tokenizer.bin all come through here, so they share one BPE.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/status.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::tokenizer {

// SentencePiece / GGUF token types.
enum class SpmType : int32_t {
  kNormal = 1,
  kUnknown = 2,
  kControl = 3,
  kUserDefined = 4,
  kUnused = 5,
  kByte = 6,
};

struct SpmVocab {
  std::string source;
  std::vector<std::string> pieces;
  std::vector<float> scores;  // higher merges first
  std::vector<SpmType> types;
  bool add_dummy_prefix = true;  // a "▁" before each stretch of text
  bool remove_extra_whitespaces = false;
  bool byte_fallback = true;
  std::optional<int32_t> unk_id;
  std::optional<int32_t> bos_id;
  std::optional<int32_t> eos_id;
  bool add_bos = true;
  bool add_eos = false;
};

// Merge ranks come from the scores: a pair merges into the piece that spells it, the piece with
// the highest score first, equal scores left to right (SentencePiece's and llama.cpp's order).
Result<TokenizerParts> BuildSpmTokenizer(SpmVocab vocab);

}  // namespace kinfer::tokenizer
