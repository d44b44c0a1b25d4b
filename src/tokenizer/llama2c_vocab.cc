#include "tokenizer/llama2c_vocab.h"

#include <cstring>

#include "tokenizer/spm_vocab.h"

namespace kinfer::tokenizer {

Result<TokenizerParts> ParseLlama2cVocab(std::string_view bytes, std::string source) {
  if (bytes.size() < 4) return DataLossError("{}: too short for a llama2.c tokenizer", source);
  SpmVocab v;
  v.source = source;
  size_t pos = 4;  // max_token_length: not needed
  while (pos < bytes.size()) {
    if (bytes.size() - pos < 8) {
      return DataLossError("{}: token {} is truncated at byte {}", source, v.pieces.size(), pos);
    }
    float score;
    int32_t len;
    std::memcpy(&score, bytes.data() + pos, 4);
    std::memcpy(&len, bytes.data() + pos + 4, 4);
    pos += 8;
    if (len < 0 || static_cast<size_t>(len) > bytes.size() - pos) {
      return DataLossError("{}: token {} has length {} past the end of the file", source,
                           v.pieces.size(), len);
    }
    std::string piece(bytes.substr(pos, len));
    pos += len;
    // llama2.c's exporter wraps BOS and EOS in newlines ("\n<s>\n").
    if (piece == "\n<s>\n" || piece == "\n</s>\n") piece = piece.substr(1, piece.size() - 2);
    std::string spm;
    spm.reserve(piece.size() + 4);
    for (char c : piece) {
      if (c == ' ') {
        spm.append("\u2581");
      } else {
        spm.push_back(c);
      }
    }
    SpmType type = SpmType::kNormal;
    const size_t id = v.pieces.size();
    if (id == 0) type = SpmType::kUnknown;
    if (id == 1 || id == 2) type = SpmType::kControl;
    if (spm.size() == 6 && spm.compare(0, 3, "<0x") == 0 && spm[5] == '>') type = SpmType::kByte;
    v.pieces.push_back(std::move(spm));
    v.scores.push_back(score);
    v.types.push_back(type);
    if (v.pieces.size() > (1u << 24)) return DataLossError("{}: too many tokens", source);
  }
  if (v.pieces.size() < 3) return DataLossError("{}: fewer than 3 tokens", source);
  v.unk_id = 0;
  v.bos_id = 1;
  v.eos_id = 2;
  v.byte_fallback = true;
  v.add_dummy_prefix = true;
  v.add_bos = true;
  return BuildSpmTokenizer(std::move(v));
}

}  // namespace kinfer::tokenizer
