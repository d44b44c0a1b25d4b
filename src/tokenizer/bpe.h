// Byte-pair encoding over one word: start from characters (or bytes), merge the adjacent pair with
// the best rank until none is left, leftmost first on ties. One engine serves every source:
// tokenizer.json merges (rank = line), GGUF "gpt2" merges, and SentencePiece-style vocabularies
// with scores (GGUF "llama", .model, llama2.c .bin), whose pair table is derived from the scores.
//
//   BpeModel::Options opt;
//   opt.byte_level = true;
//   KINFER_ASSIGN_OR_RETURN(auto bpe, BpeModel::Create(vocab, merges, opt));
//   bpe->EncodeWord(" hello", &ids);
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/status.h"
#include "tokenizer/model.h"

namespace kinfer::tokenizer {

class BpeModel final : public Model {
 public:
  struct Options {
    // Words are raw bytes and every single byte is a symbol (vocab strings are given as the
    // bytes they stand for, not in GPT-2's printable form).
    bool byte_level = false;
    // A character missing from the vocab becomes its bytes' "<0xXX>" tokens.
    bool byte_fallback = false;
    std::optional<int32_t> unk_id;
    bool fuse_unk = false;
    // A word that is itself in the vocab is emitted whole (Llama-3's tokenizer.json).
    bool ignore_merges = false;
    std::string continuing_subword_prefix;
    std::string end_of_word_suffix;
  };

  // One merge rule: the pair (left, right) becomes `result`; lower ranks merge first and equal
  // ranks go left to right.
  struct Merge {
    int32_t left;
    int32_t right;
    int32_t result;
    uint32_t rank;
  };

  // `vocab` maps model-space strings to ids. Merges whose ids are out of range are an error.
  static Result<std::unique_ptr<BpeModel>> Create(
      const std::vector<std::pair<std::string, int32_t>>& vocab, const std::vector<Merge>& merges,
      Options options);

  ~BpeModel() override;

  void EncodeWord(std::string_view word, std::vector<int32_t>* out) const override;

  // The id of a model-space string, or -1.
  int32_t Find(std::string_view piece) const;

 private:
  struct Tables;
  struct Symbol;
  explicit BpeModel(Options options);
  void InitSymbols(std::string_view word, std::vector<Symbol>* symbols) const;
  void MergeSmall(std::vector<Symbol>* symbols) const;
  void MergeLarge(std::vector<Symbol>* symbols) const;
  bool PairRank(int32_t left, int32_t right, uint32_t* rank, int32_t* result) const;

  Options options_;
  std::unique_ptr<Tables> tables_;
};

}  // namespace kinfer::tokenizer
