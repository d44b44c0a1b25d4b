// Tokenizer: text <-> token ids for every model Kinfer loads, from a Hugging Face directory
// (tokenizer.json + tokenizer_config.json), GGUF metadata, a SentencePiece .model or a llama2.c
// tokenizer.bin, with the model's special tokens, BOS/EOS rules and chat template(s).
//
//   KINFER_ASSIGN_OR_RETURN(auto tok, Tokenizer::Load("/models/Qwen3-0.6B"));
//   std::vector<int32_t> ids = tok->Encode("Hello", /*add_special_tokens=*/true,
//                                          /*parse_special=*/false);
//   std::string text = tok->Decode(ids, /*skip_special_tokens=*/true);
//
// A Tokenizer is immutable after Load and safe to use from many threads at once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "tokenizer/added_vocab.h"
#include "tokenizer/decoder.h"
#include "tokenizer/model.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pre_tokenizer.h"

namespace kinfer::tokenizer {

// Per-token attributes, as GGUF token types and Hugging Face added tokens describe them.
enum TokenAttr : uint8_t {
  kAttrNormal = 1 << 0,
  kAttrUnknown = 1 << 1,
  kAttrControl = 1 << 2,
  kAttrUserDefined = 1 << 3,
  kAttrByte = 1 << 4,
  kAttrUnused = 1 << 5,
  kAttrSpecial = 1 << 6,  // skipped by Decode(skip_special_tokens = true)
};

// Everything a loader produces; Tokenizer::Create checks and owns it. Loaders live in
// hf_tokenizer_json.h, gguf_vocab.h, sentencepiece_model.h and llama2c_vocab.h.
struct TokenizerParts {
  std::string source;                      // file or directory, for messages
  std::vector<std::string> pieces;         // id -> vocab string as stored ("Ġhi", "▁hi", "<s>")
  std::vector<uint8_t> attrs;              // id -> TokenAttr bits
  std::unique_ptr<Normalizer> normalizer;  // may be null
  std::unique_ptr<PreTokenizer> pre_tokenizer;  // may be null: one word per segment
  std::unique_ptr<Model> model;
  std::vector<AddedToken> added_tokens;
  std::vector<DecoderStep> decoder;
  std::vector<int32_t> prefix_ids;  // added by add_special_tokens (BOS)
  std::vector<int32_t> suffix_ids;  // added by add_special_tokens (EOS)
  std::optional<int32_t> bos_id;
  std::vector<int32_t> eos_ids;
  std::string bos_token;
  std::string eos_token;
  std::string chat_template;                           // the default one
  std::map<std::string, std::string> named_templates;  // "tool_use", "rag", ...
};

class Tokenizer {
 public:
  // From a model path: a Hugging Face directory (tokenizer.json + tokenizer_config.json), a GGUF
  // file, a llama2.c .bin (with a tok*.bin or tokenizer.bin beside it), or a tokenizer file
  // itself (tokenizer.json, tokenizer.model, tokenizer.bin / tok*.bin, .gguf).
  static Result<std::unique_ptr<Tokenizer>> Load(const std::string& path);
  // Checks the parts (ids in range, a model present) and builds the tokenizer.
  static Result<std::unique_ptr<Tokenizer>> Create(TokenizerParts parts);

  // Token ids of `text`. Invalid UTF-8 is replaced by U+FFFD first (what Python's
  // decode('utf-8', 'replace') gives). `add_special_tokens` adds BOS/EOS as the model's config
  // says; `parse_special` lets special-token text in `text` ("<|im_start|>") become its token.
  std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens,
                              bool parse_special) const;

  // Text of `ids`; ids out of range are skipped. Special tokens are kept as their text unless
  // `skip_special_tokens`. Always valid UTF-8 (U+FFFD where the tokens' bytes are not).
  std::string Decode(std::span<const int32_t> ids, bool skip_special_tokens) const;

  // The vocab string of `id` as stored in the tokenizer ("Ġthe", "▁the", "<0x0A>"), for display;
  // empty for an id out of range.
  std::string_view Piece(int32_t id) const;
  // The bytes `id` adds to a text in the middle of it (a SentencePiece "▁hi" is " hi", a byte
  // token "<0x0A>" is "\n", a GPT-2 "Ġhi" is " hi"); an added token is its content, and a special
  // token is its content behind a 0xFF byte, the convention of grammar engines (llguidance's
  // toktrie) for tokens that text alone never produces. Empty for an id out of range.
  std::string TokenBytes(int32_t id) const;
  int32_t vocab_size() const { return static_cast<int32_t>(pieces_.size()); }
  std::optional<int32_t> TokenToId(std::string_view piece) const;
  bool IsSpecial(int32_t id) const;
  uint8_t attrs(int32_t id) const;

  std::optional<int32_t> bos_id() const { return bos_id_; }
  // Ids that end a generation: EOS and the end-of-turn tokens the model uses (<|eot_id|>,
  // <|im_end|>, <end_of_turn>, ...).
  std::vector<int32_t> eos_ids() const { return eos_ids_; }
  std::string bos_token() const { return bos_token_; }
  std::string eos_token() const { return eos_token_; }

  // The default chat template ("" if the model has none) and the named ones.
  const std::string& chat_template() const { return chat_template_; }
  const std::map<std::string, std::string>& named_chat_templates() const {
    return named_templates_;
  }
  // The named template, or the default for "" / "default"; nullptr if there is none.
  const std::string* FindChatTemplate(std::string_view name) const;

  const std::string& source() const { return source_; }

 private:
  friend class IncrementalDetokenizer;
  Tokenizer() = default;
  void EncodeText(std::string_view text, bool at_input_start, std::vector<int32_t>* ids) const;
  void EncodeSegment(std::string_view text, bool at_input_start, bool parse_special,
                     std::vector<int32_t>* ids) const;

  std::string source_;
  std::vector<std::string> pieces_;
  std::vector<uint8_t> attrs_;
  std::unique_ptr<Normalizer> normalizer_;
  std::unique_ptr<PreTokenizer> pre_tokenizer_;
  std::unique_ptr<Model> model_;
  AddedVocabulary added_;
  std::vector<DecoderStep> decoder_;
  std::vector<int32_t> prefix_ids_;
  std::vector<int32_t> suffix_ids_;
  std::optional<int32_t> bos_id_;
  std::vector<int32_t> eos_ids_;
  std::string bos_token_;
  std::string eos_token_;
  std::string chat_template_;
  std::map<std::string, std::string> named_templates_;
  std::vector<int32_t> sorted_ids_;  // ids ordered by piece, for TokenToId
};

}  // namespace kinfer::tokenizer
