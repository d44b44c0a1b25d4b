#include "tokenizer/hf_tokenizer_json.h"

#include <algorithm>
#include <filesystem>
#include <unordered_map>

#include "core/json.h"
#include "core/mapped_file.h"
#include "tokenizer/bpe.h"
#include "tokenizer/unicode.h"
#include "tokenizer/wordpiece.h"

namespace kinfer::tokenizer {
namespace {

namespace fs = std::filesystem;

// A field of an object that is present and not null, or nullptr.
const Json* Get(const Json& obj, const char* key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(key);
  if (it == obj.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string GetString(const Json& obj, const char* key, std::string_view def = "") {
  const Json* v = Get(obj, key);
  return v != nullptr && v->is_string() ? v->get<std::string>() : std::string(def);
}

bool GetBool(const Json& obj, const char* key, bool def) {
  const Json* v = Get(obj, key);
  return v != nullptr && v->is_boolean() ? v->get<bool>() : def;
}

int64_t GetInt(const Json& obj, const char* key, int64_t def) {
  const Json* v = Get(obj, key);
  return v != nullptr && v->is_number_integer() ? v->get<int64_t>() : def;
}

std::string TypeOf(const Json& obj) { return GetString(obj, "type"); }

// A token given as "text" or as an AddedToken object {"content": "text", ...}.
std::string TokenContent(const Json* v) {
  if (v == nullptr) return "";
  if (v->is_string()) return v->get<std::string>();
  if (v->is_object()) return GetString(*v, "content");
  return "";
}

// The text of a {"String": s} or {"Regex": r} pattern, and whether it is a regex.
Result<std::pair<std::string, bool>> Pattern(const Json& obj, const std::string& where) {
  const Json* p = Get(obj, "pattern");
  if (p == nullptr || !p->is_object()) {
    return InvalidArgumentError("{}: expected a pattern object", where);
  }
  if (const Json* s = Get(*p, "String"); s != nullptr && s->is_string()) {
    return std::make_pair(s->get<std::string>(), false);
  }
  if (const Json* r = Get(*p, "Regex"); r != nullptr && r->is_string()) {
    return std::make_pair(r->get<std::string>(), true);
  }
  return InvalidArgumentError("{}: pattern is neither String nor Regex", where);
}

bool ContainsType(const Json& node, std::string_view type) {
  if (node.is_object()) {
    if (TypeOf(node) == type) return true;
    for (const auto& [k, v] : node.items()) {
      if (ContainsType(v, type)) return true;
    }
  } else if (node.is_array()) {
    for (const auto& v : node) {
      if (ContainsType(v, type)) return true;
    }
  }
  return false;
}

Result<SplitBehavior> Behavior(const Json& obj, const std::string& where) {
  const std::string b = GetString(obj, "behavior", "Isolated");
  if (b == "Removed") return SplitBehavior::kRemoved;
  if (b == "Isolated") return SplitBehavior::kIsolated;
  if (b == "MergedWithPrevious") return SplitBehavior::kMergedWithPrevious;
  if (b == "MergedWithNext") return SplitBehavior::kMergedWithNext;
  if (b == "Contiguous") return SplitBehavior::kContiguous;
  return InvalidArgumentError("{}: unknown split behavior '{}'", where, b);
}

PrependScheme MetaspaceScheme(const Json& obj) {
  if (const Json* s = Get(obj, "prepend_scheme"); s != nullptr && s->is_string()) {
    const std::string v = s->get<std::string>();
    if (v == "first") return PrependScheme::kFirst;
    if (v == "never") return PrependScheme::kNever;
    return PrependScheme::kAlways;
  }
  return GetBool(obj, "add_prefix_space", true) ? PrependScheme::kAlways : PrependScheme::kNever;
}

Result<std::unique_ptr<Normalizer>> BuildNormalizer(const Json& j, const std::string& src,
                                                    int depth = 0) {
  if (depth > 16) return InvalidArgumentError("{}: normalizers nested too deeply", src);
  const std::string where = src + ": normalizer";
  const std::string type = TypeOf(j);
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> steps;
    const Json* list = Get(j, "normalizers");
    if (list != nullptr && list->is_array()) {
      for (const auto& n : *list) {
        KINFER_ASSIGN_OR_RETURN(auto step, BuildNormalizer(n, src, depth + 1));
        if (step) steps.push_back(std::move(step));
      }
    }
    if (steps.empty()) return std::unique_ptr<Normalizer>();
    return MakeSequenceNormalizer(std::move(steps));
  }
  if (type == "NFC") return MakeUnicodeNormalizer(NormalizationForm::kNfc);
  if (type == "NFD") return MakeUnicodeNormalizer(NormalizationForm::kNfd);
  if (type == "NFKC") return MakeUnicodeNormalizer(NormalizationForm::kNfkc);
  if (type == "NFKD") return MakeUnicodeNormalizer(NormalizationForm::kNfkd);
  if (type == "Lowercase") return MakeLowercaseNormalizer();
  if (type == "StripAccents") return MakeStripAccentsNormalizer();
  if (type == "Prepend") return MakePrependNormalizer(GetString(j, "prepend"));
  if (type == "Strip") {
    return MakeStripNormalizer(GetBool(j, "strip_left", true), GetBool(j, "strip_right", true));
  }
  if (type == "Replace") {
    KINFER_ASSIGN_OR_RETURN(auto pat, Pattern(j, where + " Replace"));
    if (!pat.second) return MakeReplaceNormalizer(pat.first, GetString(j, "content"));
    KINFER_ASSIGN_OR_RETURN(auto re, Regex::Compile(pat.first));
    return MakeRegexReplaceNormalizer(std::move(re), GetString(j, "content"));
  }
  if (type == "BertNormalizer") {
    const bool lowercase = GetBool(j, "lowercase", true);
    return MakeBertNormalizer(GetBool(j, "clean_text", true),
                              GetBool(j, "handle_chinese_chars", true),
                              GetBool(j, "strip_accents", lowercase), lowercase);
  }
  if (type == "Precompiled") {
    const Json* map = Get(j, "precompiled_charsmap");
    if (map == nullptr || (map->is_string() && map->get<std::string>().empty())) {
      return std::unique_ptr<Normalizer>();
    }
  }
  return UnimplementedError("{}: normalizer type '{}' is not supported", where, type);
}

Result<std::unique_ptr<PreTokenizer>> BuildPreTokenizer(const Json& j, const std::string& src,
                                                        int depth = 0) {
  if (depth > 16) return InvalidArgumentError("{}: pre-tokenizers nested too deeply", src);
  const std::string where = src + ": pre_tokenizer";
  const std::string type = TypeOf(j);
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    const Json* list = Get(j, "pretokenizers");
    if (list != nullptr && list->is_array()) {
      for (const auto& n : *list) {
        KINFER_ASSIGN_OR_RETURN(auto step, BuildPreTokenizer(n, src, depth + 1));
        if (step) steps.push_back(std::move(step));
      }
    }
    if (steps.empty()) return std::unique_ptr<PreTokenizer>();
    if (steps.size() == 1) return std::move(steps[0]);
    return MakeSequencePreTokenizer(std::move(steps));
  }
  if (type == "Split") {
    KINFER_ASSIGN_OR_RETURN(auto pat, Pattern(j, where + " Split"));
    KINFER_ASSIGN_OR_RETURN(SplitBehavior behavior, Behavior(j, where + " Split"));
    const bool invert = GetBool(j, "invert", false);
    if (!pat.second) return MakeLiteralSplit(pat.first, behavior, invert);
    KINFER_ASSIGN_OR_RETURN(auto re, Regex::Compile(pat.first));
    return MakeRegexSplit(std::move(re), behavior, invert);
  }
  if (type == "ByteLevel") {
    return MakeByteLevel(GetBool(j, "add_prefix_space", true), GetBool(j, "use_regex", true));
  }
  if (type == "Metaspace") {
    return MakeMetaspace(GetString(j, "replacement", "\u2581"), MetaspaceScheme(j),
                         GetBool(j, "split", true));
  }
  if (type == "Digits") return MakeDigits(GetBool(j, "individual_digits", false));
  if (type == "Punctuation") {
    KINFER_ASSIGN_OR_RETURN(SplitBehavior behavior, Behavior(j, where + " Punctuation"));
    return MakePunctuation(behavior);
  }
  if (type == "Whitespace") return MakeWhitespace();
  if (type == "WhitespaceSplit") return MakeWhitespaceSplit();
  if (type == "BertPreTokenizer") return MakeBertPreTokenizer();
  if (type == "CharDelimiterSplit") {
    const std::string d = GetString(j, "delimiter", " ");
    if (d.empty()) return InvalidArgumentError("{}: empty delimiter", where);
    return MakeCharDelimiterSplit(DecodeUtf8(d, 0).cp);
  }
  return UnimplementedError("{}: pre-tokenizer type '{}' is not supported", where, type);
}

Status BuildDecoder(const Json& j, const std::string& src, std::vector<DecoderStep>* out,
                    int depth = 0) {
  if (depth > 16) return InvalidArgumentError("{}: decoders nested too deeply", src);
  const std::string type = TypeOf(j);
  using K = DecoderStep::Kind;
  if (type == "Sequence") {
    const Json* list = Get(j, "decoders");
    if (list != nullptr && list->is_array()) {
      for (const auto& d : *list) KINFER_RETURN_IF_ERROR(BuildDecoder(d, src, out, depth + 1));
    }
    return Status::Ok();
  }
  if (type == "ByteLevel") {
    out->emplace_back(K::kByteLevel);
  } else if (type == "Metaspace") {
    DecoderStep s{K::kMetaspace};
    s.a = GetString(j, "replacement", "\u2581");
    s.flag = MetaspaceScheme(j) != PrependScheme::kNever;
    out->push_back(std::move(s));
  } else if (type == "Replace") {
    KINFER_ASSIGN_OR_RETURN(auto pat, Pattern(j, src + ": decoder Replace"));
    if (pat.second) {
      return UnimplementedError("{}: decoder Replace with a regex is not supported", src);
    }
    DecoderStep s{K::kReplace};
    s.a = pat.first;
    s.b = GetString(j, "content");
    out->push_back(std::move(s));
  } else if (type == "ByteFallback") {
    out->emplace_back(K::kByteFallback);
  } else if (type == "Fuse") {
    out->emplace_back(K::kFuse);
  } else if (type == "Strip") {
    DecoderStep s{K::kStrip};
    s.a = GetString(j, "content", " ");
    s.start = static_cast<int>(std::clamp<int64_t>(GetInt(j, "start", 0), 0, 1 << 20));
    s.stop = static_cast<int>(std::clamp<int64_t>(GetInt(j, "stop", 0), 0, 1 << 20));
    if (s.a.empty()) return InvalidArgumentError("{}: decoder Strip with empty content", src);
    out->push_back(std::move(s));
  } else if (type == "WordPiece") {
    DecoderStep s{K::kWordPiece};
    s.a = GetString(j, "prefix", "##");
    s.flag = GetBool(j, "cleanup", true);
    out->push_back(std::move(s));
  } else {
    return UnimplementedError("{}: decoder type '{}' is not supported", src, type);
  }
  return Status::Ok();
}

// The bytes a GPT-2 printable-form string stands for, or nullopt if it has other characters.
std::optional<std::string> ByteLevelToBytes(std::string_view piece) {
  std::string out;
  out.reserve(piece.size());
  size_t i = 0;
  while (i < piece.size()) {
    Utf8Char c = DecodeUtf8(piece, i);
    const int b = c.valid ? UnicodeToByte(c.cp) : -1;
    if (b < 0) return std::nullopt;
    out.push_back(static_cast<char>(b));
    i += c.len;
  }
  return out;
}

// Prefix and suffix ids of a post-processor's single-sequence template.
Status BuildPostProcessor(const Json& j, const std::string& src, std::vector<int32_t>* prefix,
                          std::vector<int32_t>* suffix, int depth = 0) {
  if (depth > 16) return InvalidArgumentError("{}: post-processors nested too deeply", src);
  const std::string type = TypeOf(j);
  if (type == "Sequence") {
    const Json* list = Get(j, "processors");
    if (list != nullptr && list->is_array()) {
      for (const auto& p : *list) {
        KINFER_RETURN_IF_ERROR(BuildPostProcessor(p, src, prefix, suffix, depth + 1));
      }
    }
    return Status::Ok();
  }
  if (type == "ByteLevel") return Status::Ok();
  if (type == "TemplateProcessing") {
    const Json* single = Get(j, "single");
    const Json* specials = Get(j, "special_tokens");
    if (single == nullptr || !single->is_array()) return Status::Ok();
    bool after = false;
    for (const auto& item : *single) {
      if (Get(item, "Sequence") != nullptr) {
        after = true;
        continue;
      }
      const Json* st = Get(item, "SpecialToken");
      if (st == nullptr) continue;
      const std::string name = GetString(*st, "id");
      const Json* def = specials != nullptr ? Get(*specials, name.c_str()) : nullptr;
      const Json* ids = def != nullptr ? Get(*def, "ids") : nullptr;
      if (ids == nullptr || !ids->is_array()) {
        return InvalidArgumentError("{}: post_processor: special token '{}' has no ids", src, name);
      }
      for (const auto& id : *ids) {
        if (!id.is_number_integer()) {
          return InvalidArgumentError("{}: post_processor: '{}' has a non-integer id", src, name);
        }
        (after ? suffix : prefix)->push_back(id.get<int32_t>());
      }
    }
    return Status::Ok();
  }
  if (type == "RobertaProcessing" || type == "BertProcessing") {
    const Json* cls = Get(j, "cls");
    const Json* sep = Get(j, "sep");
    if (cls != nullptr && cls->is_array() && cls->size() == 2 && (*cls)[1].is_number_integer()) {
      prefix->push_back((*cls)[1].get<int32_t>());
    }
    if (sep != nullptr && sep->is_array() && sep->size() == 2 && (*sep)[1].is_number_integer()) {
      suffix->push_back((*sep)[1].get<int32_t>());
    }
    return Status::Ok();
  }
  return UnimplementedError("{}: post-processor type '{}' is not supported", src, type);
}

Result<TokenizerParts> ParseImpl(std::string_view tokenizer_json, std::string_view config_json,
                                 std::string_view generation_config_json,
                                 std::string_view chat_template_jinja, std::string source) {
  TokenizerParts parts;
  parts.source = source;
  KINFER_ASSIGN_OR_RETURN(Json tj, ParseJson(tokenizer_json, source));
  if (!tj.is_object()) return InvalidArgumentError("{}: expected a JSON object", source);
  const Json* model = Get(tj, "model");
  if (model == nullptr || !model->is_object()) {
    return InvalidArgumentError("{}: no \"model\" object", source);
  }
  const std::string model_type =
      TypeOf(*model).empty() && Get(*model, "merges") != nullptr ? "BPE" : TypeOf(*model);
  const Json* vocab = Get(*model, "vocab");
  if (vocab == nullptr || !vocab->is_object()) {
    if (model_type == "Unigram") {
      return UnimplementedError("{}: Unigram models are not supported", source);
    }
    return InvalidArgumentError("{}: model has no vocab object", source);
  }

  // Ids: the model vocab, then added tokens, which may extend it.
  int64_t max_id = -1;
  for (const auto& [piece, id] : vocab->items()) {
    if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() > (1 << 24)) {
      return InvalidArgumentError("{}: vocab entry '{}' has an invalid id", source, piece);
    }
    max_id = std::max(max_id, id.get<int64_t>());
  }
  const Json* added = Get(tj, "added_tokens");
  if (added != nullptr && !added->is_array()) {
    return InvalidArgumentError("{}: added_tokens is not an array", source);
  }
  if (added != nullptr) {
    for (const auto& t : *added) {
      const int64_t id = GetInt(t, "id", -1);
      if (id < 0 || id > (1 << 24)) {
        return InvalidArgumentError("{}: added token '{}' has an invalid id", source,
                                    GetString(t, "content"));
      }
      max_id = std::max(max_id, id);
    }
  }
  const size_t n = static_cast<size_t>(max_id + 1);
  parts.pieces.assign(n, std::string());
  parts.attrs.assign(n, 0);
  for (const auto& [piece, id] : vocab->items()) {
    parts.pieces[id.get<int64_t>()] = piece;
    parts.attrs[id.get<int64_t>()] = kAttrNormal;
  }

  const Json* pre = Get(tj, "pre_tokenizer");
  const bool byte_level = pre != nullptr && ContainsType(*pre, "ByteLevel");

  std::vector<std::pair<std::string, int32_t>> model_vocab;
  model_vocab.reserve(vocab->size());
  for (const auto& [piece, id] : vocab->items()) {
    if (byte_level) {
      auto bytes = ByteLevelToBytes(piece);
      if (bytes) model_vocab.emplace_back(std::move(*bytes), id.get<int32_t>());
    } else {
      model_vocab.emplace_back(piece, id.get<int32_t>());
    }
  }

  if (model_type == "BPE") {
    BpeModel::Options opt;
    opt.byte_level = byte_level;
    opt.byte_fallback = GetBool(*model, "byte_fallback", false);
    opt.fuse_unk = GetBool(*model, "fuse_unk", false);
    opt.ignore_merges = GetBool(*model, "ignore_merges", false);
    opt.continuing_subword_prefix = GetString(*model, "continuing_subword_prefix");
    opt.end_of_word_suffix = GetString(*model, "end_of_word_suffix");
    if (const Json* unk = Get(*model, "unk_token"); unk != nullptr && unk->is_string()) {
      auto it = vocab->find(unk->get<std::string>());
      if (it != vocab->end()) opt.unk_id = it->get<int32_t>();
    }
    std::unordered_map<std::string_view, int32_t> piece_ids;
    piece_ids.reserve(vocab->size());
    for (const auto& [piece, id] : vocab->items()) {
      piece_ids.emplace(parts.pieces[id.get<int64_t>()], id.get<int32_t>());
    }
    std::vector<BpeModel::Merge> merges;
    const Json* mj = Get(*model, "merges");
    if (mj != nullptr && !mj->is_array()) {
      return InvalidArgumentError("{}: model.merges is not an array", source);
    }
    const size_t prefix_len = opt.continuing_subword_prefix.size();
    if (mj != nullptr) {
      merges.reserve(mj->size());
      std::string merged;
      for (size_t i = 0; i < mj->size(); ++i) {
        const Json& m = (*mj)[i];
        std::string_view a, b;
        std::string line;
        if (m.is_string()) {
          line = m.get<std::string>();
          const size_t sp = line.find(' ');
          if (sp == std::string::npos || line.find(' ', sp + 1) != std::string::npos) {
            return InvalidArgumentError("{}: merge {} '{}' is not two tokens", source, i, line);
          }
          a = std::string_view(line).substr(0, sp);
          b = std::string_view(line).substr(sp + 1);
        } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
          a = m[0].get_ref<const std::string&>();
          b = m[1].get_ref<const std::string&>();
        } else {
          return InvalidArgumentError("{}: merge {} is neither \"a b\" nor [a, b]", source, i);
        }
        auto ia = piece_ids.find(a);
        auto ib = piece_ids.find(b);
        merged.assign(a);
        merged.append(b.substr(std::min(prefix_len, b.size())));
        auto ir = piece_ids.find(merged);
        if (ia == piece_ids.end() || ib == piece_ids.end() || ir == piece_ids.end()) {
          return InvalidArgumentError("{}: merge {} '{} {}' names a token not in the vocab", source,
                                      i, a, b);
        }
        merges.push_back({ia->second, ib->second, ir->second, static_cast<uint32_t>(i)});
      }
    }
    if (opt.byte_fallback) {
      for (int b = 0; b < 256; ++b) {
        auto it = piece_ids.find(fmt::format("<0x{:02X}>", b));
        if (it != piece_ids.end()) parts.attrs[it->second] |= kAttrByte;
      }
    }
    KINFER_ASSIGN_OR_RETURN(parts.model, BpeModel::Create(model_vocab, merges, std::move(opt)));
  } else if (model_type == "WordPiece") {
    WordPieceModel::Options opt;
    opt.continuing_prefix = GetString(*model, "continuing_subword_prefix", "##");
    opt.max_input_chars_per_word =
        static_cast<size_t>(std::max<int64_t>(1, GetInt(*model, "max_input_chars_per_word", 100)));
    auto it = vocab->find(GetString(*model, "unk_token", "[UNK]"));
    if (it == vocab->end()) {
      return InvalidArgumentError("{}: WordPiece unk_token is not in the vocab", source);
    }
    opt.unk_id = it->get<int32_t>();
    KINFER_ASSIGN_OR_RETURN(parts.model, WordPieceModel::Create(model_vocab, std::move(opt)));
  } else {
    return UnimplementedError("{}: model type '{}' is not supported", source, model_type);
  }

  if (added != nullptr) {
    for (const auto& t : *added) {
      AddedToken a;
      a.content = GetString(t, "content");
      a.id = static_cast<int32_t>(GetInt(t, "id", -1));
      a.special = GetBool(t, "special", false);
      a.lstrip = GetBool(t, "lstrip", false);
      a.rstrip = GetBool(t, "rstrip", false);
      a.single_word = GetBool(t, "single_word", false);
      a.normalized = GetBool(t, "normalized", !a.special);
      parts.pieces[a.id] = a.content;
      parts.attrs[a.id] = a.special ? (kAttrSpecial | kAttrControl) : kAttrUserDefined;
      parts.added_tokens.push_back(std::move(a));
    }
  }

  if (const Json* norm = Get(tj, "normalizer")) {
    KINFER_ASSIGN_OR_RETURN(parts.normalizer, BuildNormalizer(*norm, source));
  }
  if (pre != nullptr) {
    KINFER_ASSIGN_OR_RETURN(parts.pre_tokenizer, BuildPreTokenizer(*pre, source));
  }
  if (const Json* dec = Get(tj, "decoder")) {
    KINFER_RETURN_IF_ERROR(BuildDecoder(*dec, source, &parts.decoder));
  } else {
    parts.decoder.emplace_back(DecoderStep::Kind::kJoinSpace);
  }
  if (const Json* post = Get(tj, "post_processor")) {
    KINFER_RETURN_IF_ERROR(BuildPostProcessor(*post, source, &parts.prefix_ids, &parts.suffix_ids));
  }

  // tokenizer_config.json: BOS/EOS, their add_* rules, chat templates.
  auto find_id = [&](const std::string& content) -> std::optional<int32_t> {
    if (content.empty()) return std::nullopt;
    for (const auto& a : parts.added_tokens) {
      if (a.content == content) return a.id;
    }
    auto it = vocab->find(content);
    if (it != vocab->end()) return it->get<int32_t>();
    return std::nullopt;
  };
  Json config = Json::object();
  const std::string config_src = fs::path(source).parent_path().string() + "/tokenizer_config.json";
  if (!config_json.empty()) {
    KINFER_ASSIGN_OR_RETURN(config, ParseJson(config_json, config_src));
    if (!config.is_object()) return InvalidArgumentError("{}: expected an object", config_src);
  }
  parts.bos_token = TokenContent(Get(config, "bos_token"));
  parts.eos_token = TokenContent(Get(config, "eos_token"));
  parts.bos_id = find_id(parts.bos_token);
  if (!parts.bos_id && parts.prefix_ids.size() == 1) parts.bos_id = parts.prefix_ids[0];
  if (auto eos = find_id(parts.eos_token)) parts.eos_ids.push_back(*eos);
  if (const Json* add_bos = Get(config, "add_bos_token"); add_bos && add_bos->is_boolean()) {
    // Explicit in the config: what transformers' Llama-style tokenizers do with the flag.
    parts.prefix_ids.clear();
    if (add_bos->get<bool>() && parts.bos_id) parts.prefix_ids.push_back(*parts.bos_id);
  }
  if (const Json* add_eos = Get(config, "add_eos_token"); add_eos && add_eos->is_boolean()) {
    parts.suffix_ids.clear();
    if (add_eos->get<bool>() && !parts.eos_ids.empty()) {
      parts.suffix_ids.push_back(parts.eos_ids.front());
    }
  }
  if (const Json* tmpl = Get(config, "chat_template")) {
    if (tmpl->is_string()) {
      parts.chat_template = tmpl->get<std::string>();
    } else if (tmpl->is_array()) {
      for (const auto& t : *tmpl) {
        const std::string name = GetString(t, "name");
        const std::string text = GetString(t, "template");
        if (name == "default") {
          parts.chat_template = text;
        } else if (!name.empty()) {
          parts.named_templates[name] = text;
        }
      }
    }
  }
  if (parts.chat_template.empty() && !chat_template_jinja.empty()) {
    parts.chat_template = std::string(chat_template_jinja);
  }
  if (!generation_config_json.empty()) {
    auto gen = ParseJson(generation_config_json, "generation_config.json");
    if (gen.ok()) {
      const Json* e = Get(*gen, "eos_token_id");
      if (e != nullptr && e->is_number_integer()) parts.eos_ids.push_back(e->get<int32_t>());
      if (e != nullptr && e->is_array()) {
        for (const auto& x : *e) {
          if (x.is_number_integer()) parts.eos_ids.push_back(x.get<int32_t>());
        }
      }
    }
  }
  return parts;
}

}  // namespace

Result<TokenizerParts> ParseHfTokenizer(std::string_view tokenizer_json,
                                        std::string_view config_json,
                                        std::string_view generation_config_json,
                                        std::string_view chat_template_jinja, std::string source) {
  try {
    return ParseImpl(tokenizer_json, config_json, generation_config_json, chat_template_jinja,
                     std::move(source));
  } catch (const std::exception& e) {
    // nlohmann throws on a type mismatch this code did not foresee; report, never propagate.
    return InvalidArgumentError("tokenizer.json: {}", e.what());
  }
}

Result<TokenizerParts> LoadHfTokenizerJson(const std::string& tokenizer_json_path) {
  KINFER_ASSIGN_OR_RETURN(std::string tj, ReadFileToString(tokenizer_json_path));
  const fs::path dir = fs::path(tokenizer_json_path).parent_path();
  auto read_optional = [&](const char* name) -> std::string {
    std::error_code ec;
    const fs::path p = dir / name;
    if (!fs::is_regular_file(p, ec)) return "";
    auto text = ReadFileToString(p.string());
    return text.ok() ? std::move(*text) : std::string();
  };
  const std::string config = read_optional("tokenizer_config.json");
  const std::string gen = read_optional("generation_config.json");
  const std::string jinja = read_optional("chat_template.jinja");
  return ParseHfTokenizer(tj, config, gen, jinja, tokenizer_json_path);
}

}  // namespace kinfer::tokenizer
