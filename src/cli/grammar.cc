// `kinfer grammar`: structured output's grammars on the command line. Checks that a JSON schema,
// regex, Lark or GBNF grammar or a list of choices compiles against a model's vocabulary, and walks
// a text (or token ids) through it, showing which tokens it allows at each step. A batch mode
// (--jsonl) answers one JSON request per line with the masks themselves, so that tests compare
// them with llguidance's Python package on the same tokenizer.
//
//   kinfer grammar --model m.gguf --type json_schema --grammar '{"type": "integer"}' --text 42
//   echo '{"type": "regex", "grammar": "[0-9]+", "tokens": [1, 2]}' |
//       kinfer grammar --tokenizer tokenizer.json --jsonl
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "core/json.h"
#include "engine/constraint.h"
#include "structured/gbnf.h"
#include "structured/grammar.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::cli {
namespace {

struct GrammarOptions {
  std::string path;
  std::string type = "json_schema";
  std::string grammar;
  std::string text;
  bool jsonl = false;
};

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Result<structured::GrammarKind> KindOf(const std::string& t) {
  using structured::GrammarKind;
  if (t == "json_schema" || t == "json") return GrammarKind::kJsonSchema;
  if (t == "json_object") return GrammarKind::kJsonObject;
  if (t == "regex") return GrammarKind::kRegex;
  if (t == "lark") return GrammarKind::kLark;
  if (t == "gbnf") return GrammarKind::kGbnf;
  if (t == "choice") return GrammarKind::kChoice;
  return InvalidArgumentError(
      "unknown grammar type '{}' (json_schema, json_object, regex, lark, gbnf, choice)", t);
}

std::string Base64(const uint8_t* p, size_t n) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  for (size_t i = 0; i < n; i += 3) {
    uint32_t v = static_cast<uint32_t>(p[i]) << 16;
    if (i + 1 < n) v |= static_cast<uint32_t>(p[i + 1]) << 8;
    if (i + 2 < n) v |= p[i + 2];
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < n ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < n ? kAlphabet[v & 63] : '=');
  }
  return out;
}

// Walks `tokens` through the grammar: the mask before each token (and after the last), as
// base64 of the little-endian bitset (llguidance's layout), until a token is refused.
Json Walk(const structured::GrammarVocabulary& vocab, structured::GrammarKind kind,
          const std::string& grammar, const std::vector<int32_t>& tokens, bool masks) {
  auto c = structured::CompileGrammar(vocab, {kind, grammar});
  if (!c.ok()) return Json{{"error", c.status().message()}};
  std::unique_ptr<engine::Constraint> m = (*c)->Clone();
  std::vector<uint32_t> mask(engine::MaskWords(vocab.vocab_size()));
  Json out = {{"masks", Json::array()}, {"allowed", Json::array()}};
  size_t accepted = 0;
  for (size_t i = 0; i <= tokens.size(); ++i) {
    if (m->IsTerminated()) break;
    Status st = m->ComputeMask(mask);
    if (!st.ok()) {
      out["error"] = st.message();
      break;
    }
    int64_t count = 0;
    for (uint32_t w : mask) count += __builtin_popcount(w);
    out["allowed"].push_back(count);
    if (masks) {
      out["masks"].push_back(
          Base64(reinterpret_cast<const uint8_t*>(mask.data()), (vocab.vocab_size() + 7) / 8));
    }
    if (i == tokens.size()) break;
    const int32_t t = tokens[i];
    if (t < 0 || t >= vocab.vocab_size() || !(mask[static_cast<size_t>(t) / 32] >> (t % 32) & 1)) {
      break;
    }
    if (!m->Accept(t).ok()) break;
    ++accepted;
  }
  out["accepted"] = accepted;
  out["terminated"] = m->IsTerminated();
  return out;
}

Json HandleLine(const structured::GrammarVocabulary& vocab, const tokenizer::Tokenizer& tok,
                const std::string& line) {
  auto parsed = ParseJson(line, "stdin");
  if (!parsed.ok() || !parsed->is_object()) return Json{{"error", "expected a JSON object"}};
  const Json& r = *parsed;
  auto kind = KindOf(r.value("type", std::string("json_schema")));
  if (!kind.ok()) return Json{{"error", kind.status().message()}};
  std::string grammar;
  if (auto g = r.find("grammar"); g != r.end())
    grammar = g->is_string() ? g->get<std::string>() : Dump(*g);
  if (r.value("convert_only", false)) {
    auto lark = structured::GbnfToLark(grammar);
    return lark.ok() ? Json{{"lark", *lark}} : Json{{"error", lark.status().message()}};
  }
  std::vector<int32_t> tokens;
  if (auto t = r.find("tokens"); t != r.end() && t->is_array()) {
    for (const Json& v : *t) {
      if (v.is_number_integer()) tokens.push_back(static_cast<int32_t>(v.get<int64_t>()));
    }
  } else if (auto t = r.find("text"); t != r.end() && t->is_string()) {
    tokens = structured::EncodeMidText(tok, t->get<std::string>());
  }
  return Walk(vocab, *kind, grammar, tokens, r.value("masks", true));
}

int RunGrammar(const GrammarOptions& o) {
  auto tok = tokenizer::Tokenizer::Load(o.path);
  if (!tok.ok()) {
    fmt::print(stderr, "error: {}\n", tok.status().message());
    return 1;
  }
  auto vocab =
      structured::GrammarVocabulary::Create(**tok, (*tok)->vocab_size(), (*tok)->eos_ids());
  if (!vocab.ok()) {
    fmt::print(stderr, "error: {}\n", vocab.status().message());
    return 1;
  }
  if (o.jsonl) {
    // The first line says what the grammar engine was given: vocabulary size and EOS tokens.
    std::cout << Dump(Json{{"vocab_size", (*vocab)->vocab_size()}, {"eos", (*vocab)->eos_ids()}})
              << '\n';
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.empty()) continue;
      std::cout << Dump(HandleLine(**vocab, **tok, line)) << '\n';
      std::cout.flush();
    }
    return 0;
  }
  auto kind = KindOf(o.type);
  if (!kind.ok()) {
    fmt::print(stderr, "error: {}\n", kind.status().message());
    return 2;
  }
  const std::vector<int32_t> ids = structured::EncodeMidText(**tok, o.text);
  Json r = Walk(**vocab, *kind, o.grammar, ids, false);
  if (r.contains("error") && r["accepted"].is_null()) {
    fmt::print(stderr, "error: {}\n", r["error"].get<std::string>());
    return 1;
  }
  fmt::print("grammar compiles; the text has {} tokens, {} accepted{}\n", ids.size(),
             r["accepted"].get<size_t>(), r["terminated"].get<bool>() ? " (grammar complete)" : "");
  for (size_t i = 0; i < r["allowed"].size(); ++i) {
    fmt::print("  step {:>4}: {} tokens allowed{}\n", i, r["allowed"][i].get<int64_t>(),
               i < ids.size() ? fmt::format(", then {} {}", ids[i],
                                            Dump(Json(std::string((*tok)->Piece(ids[i])))))
                              : "");
  }
  return r["accepted"].get<size_t>() == ids.size() ? 0 : 1;
}

}  // namespace

void AddGrammarCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "grammar",
      "Compile a structured-output grammar against a vocabulary and walk a text through it");
  auto o = std::make_shared<GrammarOptions>();
  auto* model =
      cmd->add_option("--model", o->path, "Model: HF directory, GGUF file or llama2.c .bin");
  auto* tokenizer = cmd->add_option(
      "--tokenizer", o->path, "Tokenizer file: tokenizer.json, tokenizer.model, tok*.bin, .gguf");
  model->excludes(tokenizer);
  cmd->add_option("--type", o->type, "json_schema, json_object, regex, lark, gbnf or choice")
      ->capture_default_str();
  cmd->add_option("--grammar", o->grammar, "The schema, regex, grammar or JSON array of choices");
  cmd->add_option("--text", o->text, "Text to walk through the grammar");
  cmd->add_flag("--jsonl", o->jsonl,
                "Batch mode: {type, grammar, tokens|text} per line on stdin, masks on stdout");
  cmd->callback([o, model, tokenizer] {
    if (model->count() == 0 && tokenizer->count() == 0) {
      fmt::print(stderr, "error: give --model or --tokenizer\n");
      ExitCode() = 2;
      return;
    }
    ExitCode() = RunGrammar(*o);
  });
}

}  // namespace kinfer::cli
