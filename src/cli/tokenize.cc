// `kinfer tokenize`: a model's tokenizer on the command line, and a batch mode (--jsonl) that the
// compatibility tests drive with thousands of strings in one process.
//
//   kinfer tokenize --model SmolLM2.gguf --text "Hello world"
//   kinfer tokenize --model Qwen3 --text "<|im_start|>user" --literal   # "<|im_start|>" as text
//   echo '"Hello"' | kinfer tokenize --tokenizer tokenizer.json --jsonl
//
// Special-token text ("<|im_start|>") becomes its token by default, as Hugging Face's encode and
// vLLM's /tokenize read it; --literal tokenizes it as plain text.
//
// --jsonl reads one JSON value per line from stdin and writes one JSON object per line:
//   "text"                                   -> {"ids": [...]}
//   {"text": "...", "add_special_tokens": b, "parse_special": b}   -> {"ids": [...]}
//     (parse_special defaults to the command line's: true unless --literal)
//   {"b64": "..."}  (raw bytes, e.g. invalid UTF-8)                -> {"ids": [...]}
//   {"decode": [ids], "skip_special_tokens": b}  -> {"text": "...", "deltas": [...]}
// where "deltas" are the IncrementalDetokenizer's outputs, one per id, then Flush's.
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "core/base64.h"
#include "core/json.h"
#include "tokenizer/detokenizer.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::cli {
namespace {

struct TokenizeOptions {
  std::string path;
  std::string text;
  bool parse_special = true;
  bool add_special_tokens = false;
  bool jsonl = false;
};

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Json IdsJson(const std::vector<int32_t>& ids) {
  Json a = Json::array();
  for (int32_t id : ids) a.push_back(id);
  return a;
}

// One --jsonl request; errors come back as {"error": "..."} so one bad line does not end a batch.
Json HandleLine(const tokenizer::Tokenizer& tok, const TokenizeOptions& o,
                const std::string& line) {
  auto parsed = ParseJson(line, "stdin");
  if (!parsed.ok()) return Json{{"error", parsed.status().message()}};
  const Json& req = *parsed;
  if (req.is_string()) {
    return Json{{"ids", IdsJson(tok.Encode(req.get<std::string>(), o.add_special_tokens,
                                           o.parse_special))}};
  }
  if (!req.is_object()) return Json{{"error", "expected a JSON string or object"}};
  auto flag = [&](const char* key, bool def) {
    auto it = req.find(key);
    return it != req.end() && it->is_boolean() ? it->get<bool>() : def;
  };
  if (auto it = req.find("decode"); it != req.end()) {
    if (!it->is_array()) return Json{{"error", "decode: expected an array of ids"}};
    std::vector<int32_t> ids;
    for (const auto& v : *it) {
      if (!v.is_number_integer()) return Json{{"error", "decode: ids must be integers"}};
      ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
    }
    const bool skip = flag("skip_special_tokens", false);
    tokenizer::IncrementalDetokenizer detok(tok, skip);
    Json deltas = Json::array();
    for (int32_t id : ids) deltas.push_back(detok.Push(id));
    deltas.push_back(detok.Flush());
    return Json{{"text", tok.Decode(ids, skip)}, {"deltas", deltas}};
  }
  std::string text;
  if (auto it = req.find("b64"); it != req.end() && it->is_string()) {
    auto bytes = Base64Decode(it->get<std::string>());
    if (!bytes) return Json{{"error", "b64: not base64"}};
    text = std::move(*bytes);
  } else if (auto it = req.find("text"); it != req.end() && it->is_string()) {
    text = it->get<std::string>();
  } else {
    return Json{{"error", "expected \"text\", \"b64\" or \"decode\""}};
  }
  const auto ids = tok.Encode(text, flag("add_special_tokens", o.add_special_tokens),
                              flag("parse_special", o.parse_special));
  return Json{{"ids", IdsJson(ids)}};
}

int RunTokenize(const TokenizeOptions& o) {
  auto tok = tokenizer::Tokenizer::Load(o.path);
  if (!tok.ok()) {
    fmt::print(stderr, "error: {}\n", tok.status().message());
    return 1;
  }
  const tokenizer::Tokenizer& t = **tok;
  if (o.jsonl) {
    std::ios::sync_with_stdio(false);
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.empty()) continue;
      std::cout << Dump(HandleLine(t, o, line)) << '\n';
      std::cout.flush();
    }
    return 0;
  }
  const auto ids = t.Encode(o.text, o.add_special_tokens, o.parse_special);
  fmt::print("{}\n", Dump(IdsJson(ids)));
  for (int32_t id : ids) {
    fmt::print("{:>8}  {}\n", id, Dump(Json(std::string(t.Piece(id)))));
  }
  fmt::print("{} tokens\n", ids.size());
  return 0;
}

}  // namespace

void AddTokenizeCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenize", "Show the token ids and pieces of a text");
  auto o = std::make_shared<TokenizeOptions>();
  auto* model =
      cmd->add_option("--model", o->path, "Model: HF directory, GGUF file or llama2.c .bin");
  auto* tokenizer = cmd->add_option(
      "--tokenizer", o->path, "Tokenizer file: tokenizer.json, tokenizer.model, tok*.bin, .gguf");
  model->excludes(tokenizer);
  cmd->add_option("--text", o->text, "Text to tokenize");
  auto* literal = cmd->add_flag_callback(
      "--literal", [o] { o->parse_special = false; },
      "Read special-token text (\"<|im_start|>\") as plain text; by default it becomes its "
      "token, as Hugging Face's encode does");
  cmd->add_flag("--special", o->parse_special,
                "Special-token text becomes its token (the default; kept for old scripts)")
      ->excludes(literal);
  cmd->add_flag("--add-special-tokens", o->add_special_tokens,
                "Add BOS/EOS as the tokenizer's config says");
  cmd->add_flag("--jsonl", o->jsonl,
                "Batch mode: JSON requests on stdin, one JSON result per line on stdout");
  cmd->callback([o, model, tokenizer] {
    if (model->count() == 0 && tokenizer->count() == 0) {
      fmt::print(stderr, "error: give --model or --tokenizer\n");
      ExitCode() = 2;
      return;
    }
    ExitCode() = RunTokenize(*o);
  });
}

}  // namespace kinfer::cli
