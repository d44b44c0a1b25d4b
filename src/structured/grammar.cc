#include "structured/grammar.h"

#include <llguidance.h>

#include <cstring>

#include "core/json.h"
#include "structured/gbnf.h"

namespace kinfer::structured {
namespace {

std::string BytesOf(const tokenizer::Tokenizer& tok, std::span<const int32_t> ids) {
  std::string b;
  for (int32_t id : ids) b += tok.TokenBytes(id);
  return b;
}

// llguidance's tokenize callback. Called from any thread (the tokenizer is thread-safe).
size_t TokenizeForLlg(const void* user, const uint8_t* bytes, size_t len, uint32_t* out,
                      size_t out_len) {
  const auto* tok = static_cast<const tokenizer::Tokenizer*>(user);
  const std::vector<int32_t> ids =
      EncodeMidText(*tok, std::string_view(reinterpret_cast<const char*>(bytes), len));
  for (size_t i = 0; i < ids.size() && i < out_len; ++i) out[i] = static_cast<uint32_t>(ids[i]);
  return ids.size();
}

class LlgConstraint final : public engine::Constraint {
 public:
  explicit LlgConstraint(LlgMatcher* m) : m_(m) {}
  ~LlgConstraint() override { llg_free_matcher(m_); }
  LlgConstraint(const LlgConstraint&) = delete;
  LlgConstraint& operator=(const LlgConstraint&) = delete;

  std::unique_ptr<engine::Constraint> Clone() const override {
    return std::make_unique<LlgConstraint>(llg_clone_matcher(m_));
  }

  Status ComputeMask(std::span<uint32_t> mask) override {
    const size_t bytes = llg_matcher_get_mask_byte_size(m_);
    if (mask.size() * sizeof(uint32_t) < bytes) {
      return InternalError("mask of {} bytes is smaller than the grammar's {}",
                           mask.size() * sizeof(uint32_t), bytes);
    }
    if (llg_matcher_compute_mask_into(m_, mask.data(), bytes) != 0) return Error();
    std::fill(mask.begin() + static_cast<std::ptrdiff_t>(bytes / sizeof(uint32_t)), mask.end(), 0);
    return Status::Ok();
  }

  Status Accept(int32_t token) override {
    if (llg_matcher_consume_token(m_, static_cast<uint32_t>(token)) != 0) return Error();
    return Status::Ok();
  }

  bool IsTerminated() const override { return llg_matcher_is_stopped(m_); }

 private:
  Status Error() {
    const char* e = llg_matcher_get_error(m_);
    return InternalError("grammar: {}", e ? e : "unknown error");
  }
  LlgMatcher* m_;
};

// The choices as a Lark grammar: `start: "a" | "b"`, each a JSON string literal.
Result<std::string> ChoiceToLark(const std::string& source) {
  auto j = ParseJson(source, "choice");
  if (!j.ok()) return j.status();
  if (!j->is_array() || j->empty()) {
    return InvalidArgumentError("the choices must be a non-empty array of strings");
  }
  std::string lark = "start: ";
  for (size_t i = 0; i < j->size(); ++i) {
    const Json& c = (*j)[i];
    if (!c.is_string()) return InvalidArgumentError("choice {} is not a string", i);
    if (c.get_ref<const std::string&>().empty()) {
      return InvalidArgumentError("choice {} is an empty string", i);
    }
    if (i > 0) lark += " | ";
    lark += c.dump(-1, ' ', false, Json::error_handler_t::strict);
  }
  return lark + "\n";
}

}  // namespace

// SentencePiece tokenizers that put a space before the start of an input are asked for
// "\x01" + text, and the tokens of "\x01" (and that space) dropped, as long as none of them also
// holds text.
std::vector<int32_t> EncodeMidText(const tokenizer::Tokenizer& tok, std::string_view text) {
  std::vector<int32_t> ids =
      tok.Encode(text, /*add_special_tokens=*/false, /*parse_special=*/false);
  if (BytesOf(tok, ids) == text) return ids;
  std::string marked = "\x01";
  marked.append(text);
  std::vector<int32_t> with = tok.Encode(marked, false, false);
  std::string seen;
  for (size_t i = 0; i < with.size(); ++i) {
    seen += tok.TokenBytes(with[i]);
    if (seen.size() >= 1 && seen.back() == '\x01') {
      std::vector<int32_t> rest(with.begin() + static_cast<std::ptrdiff_t>(i) + 1, with.end());
      if (BytesOf(tok, rest) == text) return rest;
      break;
    }
  }
  return ids;
}

Result<std::unique_ptr<GrammarVocabulary>> GrammarVocabulary::Create(
    const tokenizer::Tokenizer& tokenizer, int32_t vocab_size, std::span<const int32_t> eos_ids) {
  const int32_t n = std::max(vocab_size, tokenizer.vocab_size());
  std::vector<uint32_t> lens(static_cast<size_t>(n), 0);
  std::string bytes;
  for (int32_t id = 0; id < tokenizer.vocab_size(); ++id) {
    std::string b = tokenizer.TokenBytes(id);
    // Added tokens that are not special (Qwen's <tool_call>, <think>) are marked like special
    // ones too: text under a grammar never comes from them, as with llguidance's Hugging Face
    // binding (what vLLM and its Python package use); a Lark grammar can still name them.
    if ((tokenizer.attrs(id) & tokenizer::kAttrUserDefined) && !b.empty() && b[0] != '\xFF') {
      b.insert(b.begin(), '\xFF');
    }
    lens[static_cast<size_t>(id)] = static_cast<uint32_t>(b.size());
    bytes += b;
  }
  std::vector<uint32_t> eos;
  for (int32_t e : eos_ids) {
    if (e >= 0 && e < n) eos.push_back(static_cast<uint32_t>(e));
  }
  if (eos.empty()) {
    return InvalidArgumentError("{}: structured output needs an end-of-sequence token",
                                tokenizer.source());
  }
  LlgTokenizerInitV2 init;
  std::memset(&init, 0, sizeof(init));
  init.struct_size = sizeof(init);
  init.vocab_size = static_cast<uint32_t>(n);
  init.tok_eos = eos[0];
  init.tok_eos_extra = eos.size() > 1 ? eos.data() + 1 : nullptr;
  init.tok_eos_extra_count = static_cast<uint32_t>(eos.size() - 1);
  init.token_lens = lens.data();
  init.token_bytes = reinterpret_cast<const uint8_t*>(bytes.data());
  init.tokenize_fn = TokenizeForLlg;
  init.tokenize_user_data = &tokenizer;
  // Our Encode replaces invalid UTF-8; llguidance then tokenizes such bytes greedily itself.
  init.tokenize_assumes_string = true;
  char error[1024] = {};
  LlgTokenizer* llg = llg_new_tokenizer_v2(&init, error, sizeof(error));
  if (!llg) {
    return InvalidArgumentError("{}: the grammar engine refused the vocabulary: {}",
                                tokenizer.source(), error);
  }
  std::unique_ptr<GrammarVocabulary> v(new GrammarVocabulary);
  v->tokenizer_ = &tokenizer;
  v->vocab_size_ = n;
  v->eos_ids_.assign(eos_ids.begin(), eos_ids.end());
  v->llg_ = llg;
  return v;
}

GrammarVocabulary::~GrammarVocabulary() { llg_free_tokenizer(llg_); }

std::string_view GrammarKindName(GrammarKind kind) {
  switch (kind) {
    case GrammarKind::kJsonSchema:
      return "JSON schema";
    case GrammarKind::kJsonObject:
      return "JSON object";
    case GrammarKind::kRegex:
      return "regex";
    case GrammarKind::kLark:
      return "Lark grammar";
    case GrammarKind::kGbnf:
      return "GBNF grammar";
    case GrammarKind::kChoice:
      return "choice";
  }
  return "grammar";
}

bool LooksLikeGbnf(std::string_view source) { return source.find("::=") != std::string_view::npos; }

Result<std::shared_ptr<const engine::Constraint>> CompileGrammar(const GrammarVocabulary& vocab,
                                                                 const GrammarSpec& spec) {
  const char* type = "lark";
  std::string data = spec.source;
  switch (spec.kind) {
    case GrammarKind::kJsonSchema:
      type = "json_schema";
      break;
    case GrammarKind::kJsonObject:
      type = "json_object";
      data = "{}";
      break;
    case GrammarKind::kRegex:
      type = "regex";
      break;
    case GrammarKind::kLark:
      break;
    case GrammarKind::kGbnf: {
      KINFER_ASSIGN_OR_RETURN(data, GbnfToLark(spec.source));
      break;
    }
    case GrammarKind::kChoice: {
      KINFER_ASSIGN_OR_RETURN(data, ChoiceToLark(spec.source));
      break;
    }
  }
  if (data.find('\0') != std::string::npos) {
    return InvalidArgumentError("the {} contains a NUL character", GrammarKindName(spec.kind));
  }
  LlgConstraintInit init;
  std::memset(&init, 0, sizeof(init));
  llg_constraint_init_set_defaults(&init, vocab.llg());
  init.log_stderr_level = 0;  // errors come back in the status, not on stderr
  init.log_buffer_level = 0;
  init.limits.verbose_errors = false;
  LlgMatcher* m = llg_new_matcher(&init, type, data.c_str());
  if (const char* e = llg_matcher_get_error(m)) {
    std::string msg = e;
    llg_free_matcher(m);
    return InvalidArgumentError("{}", msg);
  }
  return std::shared_ptr<const engine::Constraint>(std::make_shared<LlgConstraint>(m));
}

}  // namespace kinfer::structured
