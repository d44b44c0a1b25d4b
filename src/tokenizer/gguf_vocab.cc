#include "tokenizer/gguf_vocab.h"

#include <unordered_map>

#include "tokenizer/bpe.h"
#include "tokenizer/spm_vocab.h"
#include "tokenizer/unicode.h"
#include "tokenizer/wordpiece.h"

namespace kinfer::tokenizer {
namespace {

// Hugging Face's split patterns of the families llama.cpp names.
constexpr const char* kGpt2 =
    R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";
constexpr const char* kLlama3 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2 =
    R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kGpt4o =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kTekken =
    R"([^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+|[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kDeepseekV3 =
    R"([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~][A-Za-z]+|[^\r\n\p{L}\p{P}\p{S}]?[\p{L}\p{M}]+| ?[\p{P}\p{S}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kCjkHangul = R"([\x{4E00}-\x{9FA5}\x{0800}-\x{4E00}\x{AC00}-\x{D7FF}]+)";
constexpr const char* kPoro = R"( ?[^(\s|.,!?…。，、।۔،)]+)";
// Cased letters (llama.cpp spells them out; escaped here so no editor can normalize them).
constexpr const char* kDeepseekLlmLetters =
    R"(\s?[A-Za-z\x{B5}\x{C0}-\x{D6}\x{D8}-\x{F6}\x{F8}-\x{1BA}\x{1BC}-\x{1BF}\x{1C4}-)"
    R"(\x{293}\x{295}-\x{2AF}\x{370}-\x{373}\x{376}\x{377}\x{37B}-\x{37D}\x{37F}\x{386})"
    R"(\x{388}-\x{38A}\x{38C}\x{38E}-\x{3A1}\x{3A3}-\x{3F5}\x{3F7}-\x{481}\x{48A}-\x{52F})"
    R"(\x{531}-\x{556}\x{10A0}-\x{10C5}\x{13A0}-\x{13F5}\x{13F8}-\x{13FD}\x{1C90}-\x{1CBA})"
    R"(\x{1CBD}-\x{1CBF}\x{1D00}-\x{1D2B}\x{1D6B}-\x{1D77}\x{1D79}-\x{1D9A}\x{1E00}-)"
    R"(\x{1F15}\x{1F18}-\x{1F1D}\x{1F20}-\x{1F45}\x{1F48}-\x{1F4D}\x{1F50}-\x{1F57}\x{1F59})"
    R"(\x{1F5B}\x{1F5D}\x{1F5F}-\x{1F7D}\x{1F80}-\x{1FB4}\x{1FB6}-\x{1FBC}\x{1FBE}\x{1FC2}-)"
    R"(\x{1FC4}\x{1FC6}-\x{1FCC}\x{1FD0}-\x{1FD3}\x{1FD6}-\x{1FDB}\x{1FE0}-\x{1FEC})"
    R"(\x{1FF2}-\x{1FF4}\x{1FF6}-\x{1FFC}\x{2102}\x{2107}\x{210A}-\x{2113}\x{2115}\x{2119}-)"
    R"(\x{211D}\x{2124}\x{2126}\x{2128}\x{212A}-\x{212D}\x{212F}-\x{2134}\x{2139}\x{213C}-)"
    R"(\x{213F}\x{2145}-\x{2149}\x{214E}\x{2183}\x{2184}\x{2C00}-\x{2C7B}\x{2C7E}-\x{2CE4})"
    R"(\x{2CEB}-\x{2CEE}\x{2CF2}\x{2CF3}\x{A640}-\x{A66D}\x{A680}-\x{A69B}\x{A722}-\x{A76F})"
    R"(\x{A771}-\x{A787}\x{A78B}-\x{A78E}\x{AB70}-\x{ABBF}\x{FB00}-\x{FB06}\x{FB13}-)"
    R"(\x{FB17}\x{FF21}-\x{FF3A}\x{FF41}-\x{FF5A}\x{10400}-\x{1044F}\x{104B0}-\x{104D3})"
    R"(\x{104D8}-\x{104FB}\x{10C80}-\x{10CB2}\x{10CC0}-\x{10CF2}\x{118A0}-\x{118DF})"
    R"(\x{1E900}-\x{1E943}]+)";

bool Is(std::string_view name, std::initializer_list<std::string_view> names) {
  for (auto n : names) {
    if (name == n) return true;
  }
  return false;
}

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

std::optional<int32_t> OptionalId(const model::GgufFile& g, const char* key, size_t n) {
  const model::GgufValue* v = g.Find(key);
  if (v == nullptr || !v->IsInteger()) return std::nullopt;
  auto id = g.GetInt(key);
  if (!id.ok() || *id < 0 || static_cast<size_t>(*id) >= n) return std::nullopt;
  return static_cast<int32_t>(*id);
}

std::optional<bool> OptionalBool(const model::GgufFile& g, const char* key) {
  if (!g.Has(key)) return std::nullopt;
  auto b = g.GetBool(key);
  if (!b.ok()) return std::nullopt;
  return *b;
}

void ReadTemplates(const model::GgufFile& g, TokenizerParts* parts) {
  constexpr std::string_view kPrefix = "tokenizer.chat_template.";
  for (const auto& [key, value] : g.metadata()) {
    if (value.type != model::GgufValueType::kString) continue;
    if (key == "tokenizer.chat_template") {
      parts->chat_template = std::string(value.s);
    } else if (key.compare(0, kPrefix.size(), kPrefix) == 0) {
      parts->named_templates[key.substr(kPrefix.size())] = std::string(value.s);
    }
  }
}

}  // namespace

Result<GgufPreTokenizer> GgufPreTokenizerFor(std::string_view name) {
  GgufPreTokenizer p;
  if (name.empty() || name == "default") {
    p.regexes = {R"([\p{P}\$\+<=>\^~\|]+)", kGpt2, R"(\p{N}+)", "[0-9][0-9][0-9]"};
  } else if (Is(name, {"llama3", "llama-v3", "llama-bpe", "falcon3", "falcon-h1", "pixtral",
                       "midm-2.0", "lfm2", "jina-v5-nano"})) {
    p.regexes = {kLlama3};
    p.ignore_merges = true;
    p.add_bos = true;
  } else if (Is(name, {"dbrx", "smaug-bpe", "chatglm-bpe", "glm4"})) {
    p.regexes = {kLlama3};
  } else if (name == "deepseek-llm") {
    p.regexes = {
        "[\r\n]",
        kDeepseekLlmLetters,
        R"(\s?[!-/:-~\x{FF01}-\x{FF0F}\x{FF1A}-\x{FF5E}\x{2018}-\x{201F}\x{3000}-\x{3002}]+)",
        "\\s+$",
        kCjkHangul,
        "\\p{N}+"};
  } else if (name == "deepseek-coder") {
    p.regexes = {"[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", kCjkHangul, "\\p{N}"};
  } else if (Is(name, {"deepseek-v3", "hunyuan-dense"})) {
    p.regexes = {"\\p{N}{1,3}", R"([\x{4E00}-\x{9FA5}\x{3040}-\x{309F}\x{30A0}-\x{30FF}]+)",
                 kDeepseekV3};
  } else if (name == "falcon") {
    p.regexes = {R"([\p{P}\$\+<=>\^~\|`]+)", kGpt2, "[0-9][0-9][0-9]"};
  } else if (Is(name, {"starcoder", "refact", "command-r", "smollm", "codeshell", "exaone",
                       "minerva-7b"})) {
    p.regexes = {R"(\p{N})", kGpt2};
  } else if (Is(name,
                {"gpt-2", "phi-2", "jina-es", "jina-de", "gigachat", "jina-v2-es", "jina-v2-de",
                 "a.x-4.0", "mellum", "modern-bert", "jina-v1-en", "jina-v2-code", "roberta-bpe",
                 "mpt", "olmo", "jais", "trillion", "granite-docling", "exaone4"})) {
    p.regexes = {kGpt2};
  } else if (Is(name, {"qwen2", "deepseek-r1-qwen", "kormo", "f2llmv2", "megrez", "stablelm2",
                       "hunyuan", "grok-2"})) {
    p.regexes = {kQwen2};
  } else if (Is(name, {"poro-chat", "bloom", "gpt3-finnish"})) {
    p.regexes = {kPoro};
  } else if (name == "viking") {
    p.regexes = {kPoro, R"(\p{N})"};
  } else if (name == "tekken") {
    p.regexes = {kTekken};
    p.ignore_merges = true;
    p.add_bos = true;
  } else if (Is(name, {"gpt-4o", "llama4", "kanana2", "minimax-m2"})) {
    p.regexes = {kGpt4o};
  } else if (name == "chameleon") {
    p.regexes = {"<sentinel:[0-9]+>",       "(IMGIMG)((A|B|C|D|E|F|G|H|I){1,4})Z",
                 "([\\t\\n]|    |  )",      R"(\p{N})",
                 R"([\p{P}!-/:-@\[-`{-~])", kGpt2};
    p.add_bos = true;
  } else if (Is(name, {"bailingmoe", "bailingmoe2", "llada-moe"})) {
    p.regexes = {
        R"('(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]++[\r\n]*|\s*[\r\n]|\s+(?!\S)|\s+)"};
  } else if (name == "seed-coder") {
    p.regexes = {
        R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1}| ?[^\s\p{L}\p{N}\r\n]+|\s*[\r\n]+|\s+(?!\S)|\s+)"};
  } else {
    return UnimplementedError("GGUF pre-tokenizer '{}' is not supported", name);
  }
  return p;
}

Result<TokenizerParts> TokenizerFromGguf(const model::GgufFile& g) {
  const std::string& src = g.name();
  KINFER_ASSIGN_OR_RETURN(std::string_view model_name, g.GetString("tokenizer.ggml.model"));
  KINFER_ASSIGN_OR_RETURN(const model::GgufArray* tokens, g.GetArray("tokenizer.ggml.tokens"));
  if (tokens->elem_type != model::GgufValueType::kString || tokens->strings.empty()) {
    return InvalidArgumentError("{}: tokenizer.ggml.tokens is not a non-empty string array", src);
  }
  const size_t n = tokens->strings.size();
  if (n > (1u << 24)) return InvalidArgumentError("{}: {} tokens is too many", src, n);
  std::vector<SpmType> types(n, SpmType::kNormal);
  if (g.Has("tokenizer.ggml.token_type")) {
    KINFER_ASSIGN_OR_RETURN(const model::GgufArray* tt, g.GetArray("tokenizer.ggml.token_type"));
    if (!tt->IsNumeric() || tt->count != n) {
      return InvalidArgumentError("{}: tokenizer.ggml.token_type must be {} numbers", src, n);
    }
    for (size_t i = 0; i < n; ++i) {
      const int64_t t = tt->GetInt(i);
      types[i] = t >= 1 && t <= 6 ? static_cast<SpmType>(t) : SpmType::kNormal;
    }
  }
  const auto unk = OptionalId(g, "tokenizer.ggml.unknown_token_id", n);
  const auto bos = OptionalId(g, "tokenizer.ggml.bos_token_id", n);
  const auto eos = OptionalId(g, "tokenizer.ggml.eos_token_id", n);
  const auto add_bos = OptionalBool(g, "tokenizer.ggml.add_bos_token");
  const auto add_eos = OptionalBool(g, "tokenizer.ggml.add_eos_token");
  const auto add_space_prefix = OptionalBool(g, "tokenizer.ggml.add_space_prefix");

  TokenizerParts parts;
  if (model_name == "llama") {
    SpmVocab v;
    v.source = src;
    v.pieces.reserve(n);
    for (auto s : tokens->strings) v.pieces.emplace_back(s);
    if (g.Has("tokenizer.ggml.scores")) {
      KINFER_ASSIGN_OR_RETURN(const model::GgufArray* sc, g.GetArray("tokenizer.ggml.scores"));
      if (!sc->IsNumeric() || sc->count != n) {
        return InvalidArgumentError("{}: tokenizer.ggml.scores must be {} numbers", src, n);
      }
      v.scores.resize(n);
      for (size_t i = 0; i < n; ++i) v.scores[i] = static_cast<float>(sc->GetFloat(i));
    }
    v.types = types;
    v.add_dummy_prefix = add_space_prefix.value_or(true);
    v.remove_extra_whitespaces =
        OptionalBool(g, "tokenizer.ggml.remove_extra_whitespaces").value_or(false);
    v.byte_fallback = true;
    v.unk_id = unk;
    v.bos_id = bos;
    v.eos_id = eos;
    v.add_bos = add_bos.value_or(true);
    v.add_eos = add_eos.value_or(false);
    KINFER_ASSIGN_OR_RETURN(parts, BuildSpmTokenizer(std::move(v)));
  } else if (model_name == "gpt2") {
    parts.source = src;
    std::string pre_name;
    if (g.Has("tokenizer.ggml.pre")) {
      KINFER_ASSIGN_OR_RETURN(std::string_view p, g.GetString("tokenizer.ggml.pre"));
      pre_name = std::string(p);
    }
    KINFER_ASSIGN_OR_RETURN(GgufPreTokenizer pre, GgufPreTokenizerFor(pre_name));
    parts.pieces.reserve(n);
    parts.attrs.assign(n, 0);
    std::vector<std::pair<std::string, int32_t>> model_vocab;
    std::unordered_map<std::string_view, int32_t> piece_ids;
    for (size_t i = 0; i < n; ++i) parts.pieces.emplace_back(tokens->strings[i]);
    for (size_t i = 0; i < n; ++i) {
      const int32_t id = static_cast<int32_t>(i);
      piece_ids.emplace(parts.pieces[i], id);
      const SpmType t = types[i];
      if (t == SpmType::kControl || t == SpmType::kUnknown || t == SpmType::kUserDefined) {
        parts.attrs[i] =
            t == SpmType::kUserDefined
                ? kAttrUserDefined
                : (kAttrSpecial | (t == SpmType::kControl ? kAttrControl : kAttrUnknown));
        if (!parts.pieces[i].empty()) {
          AddedToken a;
          a.content = parts.pieces[i];
          a.id = id;
          a.special = t != SpmType::kUserDefined;
          parts.added_tokens.push_back(std::move(a));
        }
        continue;
      }
      parts.attrs[i] = t == SpmType::kUnused ? kAttrUnused : kAttrNormal;
      if (auto bytes = ByteLevelToBytes(parts.pieces[i])) {
        model_vocab.emplace_back(std::move(*bytes), id);
      }
    }
    std::vector<BpeModel::Merge> merges;
    if (g.Has("tokenizer.ggml.merges")) {
      KINFER_ASSIGN_OR_RETURN(const model::GgufArray* ma, g.GetArray("tokenizer.ggml.merges"));
      if (ma->elem_type != model::GgufValueType::kString) {
        return InvalidArgumentError("{}: tokenizer.ggml.merges is not a string array", src);
      }
      merges.reserve(ma->strings.size());
      std::string merged;
      for (size_t i = 0; i < ma->strings.size(); ++i) {
        const std::string_view line = ma->strings[i];
        const size_t sp = line.find(' ', 1);
        if (sp == std::string_view::npos) {
          return InvalidArgumentError("{}: merge {} '{}' is not two tokens", src, i, line);
        }
        const std::string_view a = line.substr(0, sp), b = line.substr(sp + 1);
        merged.assign(a);
        merged.append(b);
        auto ia = piece_ids.find(a), ib = piece_ids.find(b), ir = piece_ids.find(merged);
        if (ia == piece_ids.end() || ib == piece_ids.end() || ir == piece_ids.end()) continue;
        merges.push_back({ia->second, ib->second, ir->second, static_cast<uint32_t>(i)});
      }
    }
    BpeModel::Options opt;
    opt.byte_level = true;
    opt.ignore_merges = pre.ignore_merges;
    KINFER_ASSIGN_OR_RETURN(parts.model, BpeModel::Create(model_vocab, merges, std::move(opt)));
    std::vector<std::unique_ptr<PreTokenizer>> steps;
    for (const auto& r : pre.regexes) {
      KINFER_ASSIGN_OR_RETURN(auto re, Regex::Compile(r));
      steps.push_back(MakeRegexSplit(std::move(re), SplitBehavior::kIsolated, false));
    }
    parts.pre_tokenizer =
        steps.size() == 1 ? std::move(steps[0]) : MakeSequencePreTokenizer(std::move(steps));
    if (add_space_prefix.value_or(false)) {
      parts.normalizer = MakePrependNormalizer(" ");
    }
    parts.decoder.emplace_back(DecoderStep::Kind::kByteLevel);
    parts.bos_id = bos;
    if (eos) parts.eos_ids.push_back(*eos);
    if (add_bos.value_or(pre.add_bos) && bos) parts.prefix_ids.push_back(*bos);
    if (add_eos.value_or(false) && eos) parts.suffix_ids.push_back(*eos);
    if (bos) parts.bos_token = parts.pieces[*bos];
    if (eos) parts.eos_token = parts.pieces[*eos];
  } else if (model_name == "bert") {
    parts.source = src;
    parts.pieces.reserve(n);
    parts.attrs.assign(n, kAttrNormal);
    std::vector<std::pair<std::string, int32_t>> model_vocab;
    for (size_t i = 0; i < n; ++i) {
      parts.pieces.emplace_back(tokens->strings[i]);
      const SpmType t = types[i];
      if (t == SpmType::kControl || t == SpmType::kUnknown) {
        parts.attrs[i] = kAttrSpecial | kAttrControl;
        AddedToken a;
        a.content = parts.pieces[i];
        a.id = static_cast<int32_t>(i);
        a.special = true;
        parts.added_tokens.push_back(std::move(a));
      } else {
        model_vocab.emplace_back(parts.pieces[i], static_cast<int32_t>(i));
      }
    }
    WordPieceModel::Options opt;
    opt.continuing_prefix = "";
    opt.word_prefix = "\u2581";
    opt.unk_id = unk.value_or(0);
    KINFER_ASSIGN_OR_RETURN(parts.model, WordPieceModel::Create(model_vocab, std::move(opt)));
    parts.normalizer = MakeBertNormalizer(true, true, true, true);
    parts.pre_tokenizer = MakeBertPreTokenizer();
    using K = DecoderStep::Kind;
    parts.decoder.emplace_back(K::kReplace, "\u2581", " ");
    parts.decoder.emplace_back(K::kFuse);
    parts.decoder.emplace_back(K::kStrip, " ", "", 1, 0);
    const auto cls = OptionalId(g, "tokenizer.ggml.cls_token_id", n);
    const auto sep = OptionalId(g, "tokenizer.ggml.seperator_token_id", n);
    parts.bos_id = cls ? cls : bos;
    if (eos) parts.eos_ids.push_back(*eos);
    if (add_bos.value_or(true) && parts.bos_id) parts.prefix_ids.push_back(*parts.bos_id);
    if (sep) parts.suffix_ids.push_back(*sep);
  } else {
    return UnimplementedError("{}: tokenizer model '{}' is not supported", src, model_name);
  }
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    if (auto id = OptionalId(g, key, n)) parts.eos_ids.push_back(*id);
  }
  ReadTemplates(g, &parts);
  return parts;
}

}  // namespace kinfer::tokenizer
