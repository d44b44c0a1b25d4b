// Constrained decoding end to end on stories260K (its real SentencePiece vocabulary and model):
// schemas, regexes, choices and grammars compile against the vocabulary, the engine's outputs
// under them always parse and validate (many seeds, high temperature), a finished grammar ends
// its sequence with "stop", and unconstrained sequences in the same batch are untouched. The
// reference for "valid" is nlohmann's JSON parser and std::regex; llguidance's own masks are
// compared with its Python package in tests/compat/test_grammar_masks.py.
#include "structured/grammar.h"

#include <gtest/gtest.h>

#include <regex>

#include "core/json.h"
#include "engine/engine.h"
#include "model/model.h"
#include "tokenizer/engine_text.h"

namespace kinfer::structured {
namespace {

const std::string kStories = KINFER_SHARED_DIR "/models/stories260K/stories260K.gguf";

class Grammar : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto t = tokenizer::Tokenizer::Load(kStories);
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    tok_ = t->release();
    auto v = GrammarVocabulary::Create(*tok_, tok_->vocab_size(), tok_->eos_ids());
    ASSERT_TRUE(v.ok()) << v.status().ToString();
    vocab_ = v->release();
    auto m = model::LoadModel(kStories);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    model_ = m->release();
  }

  std::shared_ptr<const engine::Constraint> Compile(GrammarKind kind, const std::string& src) {
    auto c = CompileGrammar(*vocab_, {kind, src});
    EXPECT_TRUE(c.ok()) << c.status().ToString();
    return c.ok() ? *c : nullptr;
  }

  struct Out {
    std::vector<std::string> text;
    std::vector<engine::FinishReason> finish;
  };
  // Runs `n` requests (seeds 0..n-1) with the constraint at temperature `temp`; even-numbered
  // requests are unconstrained when `mixed`.
  Out Generate(std::shared_ptr<const engine::Constraint> c, int n, float temp, bool mixed = false,
               int max_tokens = 200) {
    engine::EngineOptions o;
    o.start_thread = false;
    o.num_threads = 2;
    o.kv_cache_bytes = 32 << 20;
    o.text_decoder = tokenizer::EngineTextDecoder(*tok_);
    o.eos_token_ids = tok_->eos_ids();
    auto e = engine::Engine::Create(*model_, o);
    EXPECT_TRUE(e.ok());
    Out out;
    out.text.resize(static_cast<size_t>(n));
    out.finish.resize(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      engine::Request r;
      r.id = std::to_string(i);
      r.prompt_tokens = tok_->Encode("Once upon a time", true, false);
      r.params.temperature = temp;
      r.params.seed = static_cast<uint64_t>(i);
      r.params.max_tokens = max_tokens;
      if (!mixed || i % 2 == 1) r.params.constraint = c;
      EXPECT_TRUE((*e)->Submit(std::move(r),
                               [&out, i](engine::RequestOutput ro) {
                                 EXPECT_TRUE(ro.error.ok()) << ro.error.ToString();
                                 for (auto& s : ro.seqs) {
                                   out.text[static_cast<size_t>(i)] += s.text;
                                   if (s.finish_reason)
                                     out.finish[static_cast<size_t>(i)] = *s.finish_reason;
                                 }
                               })
                      .ok());
    }
    (*e)->RunUntilIdle();
    return out;
  }

  static tokenizer::Tokenizer* tok_;
  static GrammarVocabulary* vocab_;
  static model::Model* model_;
};
tokenizer::Tokenizer* Grammar::tok_ = nullptr;
GrammarVocabulary* Grammar::vocab_ = nullptr;
model::Model* Grammar::model_ = nullptr;

TEST_F(Grammar, JsonSchemaOutputsAlwaysValidate) {
  // The stories model knows no JSON: whatever it writes here comes from the grammar.
  const std::string schema = R"({
    "type": "object",
    "properties": {
      "name": {"type": "string", "maxLength": 12},
      "age": {"type": "integer", "minimum": 0, "maximum": 120},
      "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "maxItems": 3},
      "ok": {"type": "boolean"}
    },
    "required": ["name", "age", "tags", "ok"],
    "additionalProperties": false,
    "x-guidance": {"whitespace_flexible": false}
  })";
  auto c = Compile(GrammarKind::kJsonSchema, schema);
  ASSERT_TRUE(c);
  Out out = Generate(c, 24, 1.5f);
  for (size_t i = 0; i < out.text.size(); ++i) {
    SCOPED_TRACE(out.text[i]);
    ASSERT_EQ(out.finish[i], engine::FinishReason::kStop);
    auto j = kinfer::ParseJson(out.text[i], "output");
    ASSERT_TRUE(j.ok()) << j.status().ToString();
    ASSERT_TRUE(j->is_object());
    EXPECT_EQ(j->size(), 4u);
    EXPECT_TRUE((*j)["name"].is_string());
    EXPECT_LE((*j)["name"].get<std::string>().size(), 12u * 4);
    EXPECT_TRUE((*j)["age"].is_number_integer());
    EXPECT_GE((*j)["age"].get<int>(), 0);
    EXPECT_LE((*j)["age"].get<int>(), 120);
    EXPECT_TRUE((*j)["tags"].is_array());
    EXPECT_LE((*j)["tags"].size(), 3u);
    EXPECT_TRUE((*j)["ok"].is_boolean());
  }
}

TEST_F(Grammar, RegexChoiceAndGbnfOutputsMatch) {
  auto re = Compile(GrammarKind::kRegex, "[A-Z][a-z]{2,6}-[0-9]{3}");
  ASSERT_TRUE(re);
  for (const std::string& t : Generate(re, 12, 1.2f).text) {
    EXPECT_TRUE(std::regex_match(t, std::regex("[A-Z][a-z]{2,6}-[0-9]{3}"))) << t;
  }
  auto choice = Compile(GrammarKind::kChoice, R"(["red", "green", "dark blue"])");
  ASSERT_TRUE(choice);
  for (const std::string& t : Generate(choice, 12, 1.2f).text) {
    EXPECT_TRUE(t == "red" || t == "green" || t == "dark blue") << t;
  }
  auto gbnf = Compile(GrammarKind::kGbnf, R"(root ::= "sum: " num (" + " num){1,3}
num ::= [1-9] [0-9]?)");
  ASSERT_TRUE(gbnf);
  for (const std::string& t : Generate(gbnf, 12, 1.2f).text) {
    EXPECT_TRUE(std::regex_match(t, std::regex("sum: [1-9][0-9]?( \\+ [1-9][0-9]?){1,3}"))) << t;
  }
}

TEST_F(Grammar, UnconstrainedSequencesInTheBatchAreUntouched) {
  // Odd requests constrained, even ones not: the even ones must equal a run with no constraint
  // anywhere (same seeds), token for token.
  auto c = Compile(GrammarKind::kRegex, "(yes|no)");
  const Out mixed = Generate(c, 8, 0.9f, /*mixed=*/true, 24);
  const Out plain = Generate(nullptr, 8, 0.9f, false, 24);
  for (size_t i = 0; i < 8; ++i) {
    if (i % 2 == 0) {
      EXPECT_EQ(mixed.text[i], plain.text[i]);
    } else {
      EXPECT_TRUE(mixed.text[i] == "yes" || mixed.text[i] == "no") << mixed.text[i];
      EXPECT_EQ(mixed.finish[i], engine::FinishReason::kStop);
    }
  }
}

TEST_F(Grammar, BadSchemasAndGrammarsSayWhatIsWrong) {
  struct Case {
    GrammarKind kind;
    std::string src;
    std::string says;
  };
  for (const Case& c : std::vector<Case>{
           {GrammarKind::kJsonSchema, R"({"type": "wat"})", "wat"},
           {GrammarKind::kJsonSchema, R"({"type": "object", "properties": 3})", "properties"},
           {GrammarKind::kRegex, "[a-z", "unclosed"},
           {GrammarKind::kLark, "start: foo", "foo"},
           {GrammarKind::kGbnf, "root ::= \"a\" missing", "missing"},
           {GrammarKind::kGbnf, "root = \"a\"", "expected '::='"},
           {GrammarKind::kChoice, "[]", "non-empty"},
       }) {
    auto r = CompileGrammar(*vocab_, {c.kind, c.src});
    ASSERT_FALSE(r.ok()) << c.src;
    EXPECT_NE(r.status().message().find(c.says), std::string::npos)
        << c.src << " -> " << r.status().message();
  }
}

TEST_F(Grammar, TokenBytesFollowTheVocabulary) {
  // Reference: the SentencePiece conventions (▁ is a space, <0x0A> a byte, control tokens
  // special), checked on stories260K's own pieces.
  for (int32_t id = 0; id < tok_->vocab_size(); ++id) {
    const std::string_view piece = tok_->Piece(id);
    const std::string bytes = tok_->TokenBytes(id);
    if (tok_->IsSpecial(id)) {
      EXPECT_EQ(bytes, "\xFF" + std::string(piece));
    } else if (piece.size() == 6 && piece.substr(0, 3) == "<0x") {
      EXPECT_EQ(bytes.size(), 1u);
      EXPECT_EQ(static_cast<unsigned char>(bytes[0]),
                std::stoi(std::string(piece.substr(3, 2)), nullptr, 16));
    } else {
      std::string expect(piece);
      for (size_t p; (p = expect.find("\xE2\x96\x81")) != std::string::npos;) {
        expect.replace(p, 3, " ");
      }
      EXPECT_EQ(bytes, expect) << id;
    }
  }
}

}  // namespace
}  // namespace kinfer::structured
