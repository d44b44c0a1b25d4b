// Structured output's grammars: a model's vocabulary handed to llguidance once, and request
// constraints (JSON schema, JSON object, regex, Lark or GBNF grammar, a choice of strings)
// compiled against it into engine::Constraint prototypes.
//
//   KINFER_ASSIGN_OR_RETURN(auto vocab, GrammarVocabulary::Create(*tok, model_vocab, eos_ids));
//   auto c = CompileGrammar(*vocab, {GrammarKind::kJsonSchema, R"({"type": "object"})"});
//   if (!c.ok()) ... c.status().message() says what is wrong with the schema
//   request.params.constraint = *c;   // the engine clones it for each sequence
//
// Compiling takes from microseconds to milliseconds (large schemas): do it on the thread that
// parses the request, never on the engine thread.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "engine/constraint.h"
#include "tokenizer/tokenizer.h"

struct LlgTokenizer;

namespace kinfer::structured {

// The vocabulary as llguidance sees it: each token's bytes (special tokens marked), the tokens
// that end a generation, and the tokenizer for text the grammar engine must tokenize. Immutable
// and thread-safe once created.
class GrammarVocabulary {
 public:
  // `vocab_size`: the model's logits row (may exceed the tokenizer's: padded embeddings); ids
  // beyond the tokenizer are never allowed. `eos_ids`: tokens allowed where the grammar may end.
  static Result<std::unique_ptr<GrammarVocabulary>> Create(const tokenizer::Tokenizer& tokenizer,
                                                           int32_t vocab_size,
                                                           std::span<const int32_t> eos_ids);
  ~GrammarVocabulary();
  GrammarVocabulary(const GrammarVocabulary&) = delete;
  GrammarVocabulary& operator=(const GrammarVocabulary&) = delete;

  int32_t vocab_size() const { return vocab_size_; }
  const std::vector<int32_t>& eos_ids() const { return eos_ids_; }
  const LlgTokenizer* llg() const { return llg_; }

 private:
  GrammarVocabulary() = default;
  const tokenizer::Tokenizer* tokenizer_ = nullptr;
  int32_t vocab_size_ = 0;
  std::vector<int32_t> eos_ids_;
  LlgTokenizer* llg_ = nullptr;
};

enum class GrammarKind {
  kJsonSchema,  // source: a JSON schema (text)
  kJsonObject,  // any JSON object; source unused
  kRegex,       // source: a regular expression (Rust regex syntax)
  kLark,        // source: a Lark grammar (llguidance's dialect)
  kGbnf,        // source: a GBNF grammar (llama.cpp's), converted to Lark
  kChoice,      // source: a JSON array of strings; the output is exactly one of them
};

std::string_view GrammarKindName(GrammarKind kind);

struct GrammarSpec {
  GrammarKind kind = GrammarKind::kJsonSchema;
  std::string source;
};

// Compiles `spec`. An error's message says what is wrong (llguidance's own words for schemas,
// regexes and Lark; line and column for GBNF).
Result<std::shared_ptr<const engine::Constraint>> CompileGrammar(const GrammarVocabulary& vocab,
                                                                 const GrammarSpec& spec);

// `text` as tokens in the middle of an output, the way the grammar engine sees forced text: no
// BOS/EOS, no SentencePiece leading space, special-token text kept as text.
std::vector<int32_t> EncodeMidText(const tokenizer::Tokenizer& tok, std::string_view text);

// Tells whether `source` reads as GBNF (rules defined with `::=`) rather than Lark (`:`), for
// fields that take either.
bool LooksLikeGbnf(std::string_view source);

}  // namespace kinfer::structured
