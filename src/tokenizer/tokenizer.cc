#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "core/log.h"
#include "model/gguf.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/hf_tokenizer_json.h"
#include "tokenizer/llama2c_vocab.h"
#include "tokenizer/sentencepiece_model.h"
#include "tokenizer/unicode.h"

namespace kinfer::tokenizer {
namespace {

namespace fs = std::filesystem;

// Special tokens that end a turn in the chat formats we know; a model's EOS set gets those its
// vocab has as special tokens, as llama.cpp and vLLM's generation configs do.
constexpr const char* kEndOfTurnTokens[] = {
    "<|eot_id|>",      "<|eom_id|>",    "<|im_end|>",
    "<|end|>",         "<end_of_turn>", "<|endoftext|>",
    "<|return|>",      "<|call|>",      "<｜end▁of▁sentence｜>",
    "<|end_of_text|>", "<EOT>",         "</s>",
};

bool StartsWith(std::string_view s, std::string_view p) { return s.substr(0, p.size()) == p; }
bool EndsWith(std::string_view s, std::string_view p) {
  return s.size() >= p.size() && s.substr(s.size() - p.size()) == p;
}

bool HasGgufMagic(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  char magic[4] = {};
  f.read(magic, 4);
  return f.gcount() == 4 && std::string_view(magic, 4) == "GGUF";
}

// The vocab size a llama2.c checkpoint's header names (|vocab_size|), or 0.
int32_t Llama2cVocabSize(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  int32_t header[7] = {};
  f.read(reinterpret_cast<char*>(header), sizeof(header));
  if (f.gcount() != sizeof(header)) return 0;
  const int32_t v = header[5];
  return v < 0 ? -v : v;
}

// A llama2.c tokenizer beside a llama2.c model: tok<vocab>.bin, tokenizer.bin, or any tok*.bin.
Result<std::string> FindLlama2cTokenizer(const fs::path& model) {
  const fs::path dir = model.parent_path().empty() ? fs::path(".") : model.parent_path();
  const int32_t vocab = Llama2cVocabSize(model.string());
  std::vector<fs::path> candidates;
  if (vocab > 0) candidates.push_back(dir / ("tok" + std::to_string(vocab) + ".bin"));
  candidates.push_back(dir / "tokenizer.bin");
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (StartsWith(name, "tok") && EndsWith(name, ".bin") && e.path() != model) {
      candidates.push_back(e.path());
    }
  }
  for (const auto& c : candidates) {
    if (fs::is_regular_file(c, ec) && c != model) return c.string();
  }
  return NotFoundError("{}: no llama2.c tokenizer (tok{}.bin or tokenizer.bin) beside it",
                       model.string(), vocab);
}

}  // namespace

Result<std::unique_ptr<Tokenizer>> Tokenizer::Load(const std::string& path) {
  std::error_code ec;
  const fs::path p(path);
  if (fs::is_directory(p, ec)) {
    if (fs::is_regular_file(p / "tokenizer.json", ec)) {
      KINFER_ASSIGN_OR_RETURN(auto parts, LoadHfTokenizerJson((p / "tokenizer.json").string()));
      return Create(std::move(parts));
    }
    if (fs::is_regular_file(p / "tokenizer.model", ec)) {
      return Load((p / "tokenizer.model").string());
    }
    std::vector<fs::path> ggufs, bins;
    for (const auto& e : fs::directory_iterator(p, ec)) {
      const std::string name = e.path().filename().string();
      if (EndsWith(name, ".gguf")) ggufs.push_back(e.path());
      if (EndsWith(name, ".bin")) bins.push_back(e.path());
    }
    std::sort(ggufs.begin(), ggufs.end());
    if (!ggufs.empty()) return Load(ggufs.front().string());
    if (fs::is_regular_file(p / "tokenizer.bin", ec)) return Load((p / "tokenizer.bin").string());
    std::sort(bins.begin(), bins.end());
    for (const auto& b : bins) {
      if (StartsWith(b.filename().string(), "tok")) return Load(b.string());
    }
    return NotFoundError(
        "{}: no tokenizer.json, tokenizer.model, .gguf or llama2.c tokenizer.bin in the directory",
        path);
  }
  if (!fs::is_regular_file(p, ec)) return NotFoundError("{}: no such file or directory", path);
  const std::string name = p.filename().string();
  if (HasGgufMagic(path)) {
    KINFER_ASSIGN_OR_RETURN(auto gguf, model::GgufFile::Open(path));
    KINFER_ASSIGN_OR_RETURN(auto parts, TokenizerFromGguf(*gguf));
    return Create(std::move(parts));
  }
  if (EndsWith(name, ".json")) {
    KINFER_ASSIGN_OR_RETURN(auto parts, LoadHfTokenizerJson(path));
    return Create(std::move(parts));
  }
  if (EndsWith(name, ".model")) {
    KINFER_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(path));
    KINFER_ASSIGN_OR_RETURN(auto parts, ParseSentencePieceModel(bytes, path));
    return Create(std::move(parts));
  }
  if (EndsWith(name, ".bin")) {
    std::string tok_path = path;
    if (!(StartsWith(name, "tok"))) {
      KINFER_ASSIGN_OR_RETURN(tok_path, FindLlama2cTokenizer(p));
    }
    KINFER_ASSIGN_OR_RETURN(std::string bytes, ReadFileToString(tok_path));
    KINFER_ASSIGN_OR_RETURN(auto parts, ParseLlama2cVocab(bytes, tok_path));
    return Create(std::move(parts));
  }
  return InvalidArgumentError(
      "{}: not a tokenizer this version reads (tokenizer.json, .gguf, .model, llama2.c .bin)",
      path);
}

Result<std::unique_ptr<Tokenizer>> Tokenizer::Create(TokenizerParts parts) {
  const std::string& src = parts.source;
  if (parts.model == nullptr) return InvalidArgumentError("{}: tokenizer has no model", src);
  if (parts.attrs.size() != parts.pieces.size()) {
    return InternalError("{}: {} pieces but {} attributes", src, parts.pieces.size(),
                         parts.attrs.size());
  }
  const int32_t n = static_cast<int32_t>(parts.pieces.size());
  auto in_range = [n](int32_t id) { return id >= 0 && id < n; };
  for (const auto& t : parts.added_tokens) {
    if (!in_range(t.id)) {
      return InvalidArgumentError("{}: added token '{}' has id {} outside the vocab of {}", src,
                                  t.content, t.id, n);
    }
  }
  for (int32_t id : parts.prefix_ids) {
    if (!in_range(id)) return InvalidArgumentError("{}: BOS/prefix id {} out of range", src, id);
  }
  for (int32_t id : parts.suffix_ids) {
    if (!in_range(id)) return InvalidArgumentError("{}: EOS/suffix id {} out of range", src, id);
  }
  if (parts.bos_id && !in_range(*parts.bos_id)) parts.bos_id.reset();

  auto tok = std::unique_ptr<Tokenizer>(new Tokenizer());
  tok->source_ = std::move(parts.source);
  tok->pieces_ = std::move(parts.pieces);
  tok->attrs_ = std::move(parts.attrs);
  tok->normalizer_ = std::move(parts.normalizer);
  tok->pre_tokenizer_ = std::move(parts.pre_tokenizer);
  tok->model_ = std::move(parts.model);
  tok->added_.Build(parts.added_tokens, tok->normalizer_.get());
  tok->decoder_ = std::move(parts.decoder);
  tok->prefix_ids_ = std::move(parts.prefix_ids);
  tok->suffix_ids_ = std::move(parts.suffix_ids);
  tok->bos_id_ = parts.bos_id;
  tok->bos_token_ = std::move(parts.bos_token);
  tok->eos_token_ = std::move(parts.eos_token);
  tok->chat_template_ = std::move(parts.chat_template);
  tok->named_templates_ = std::move(parts.named_templates);
  if (tok->bos_token_.empty() && tok->bos_id_) tok->bos_token_ = tok->pieces_[*tok->bos_id_];

  tok->sorted_ids_.resize(n);
  for (int32_t i = 0; i < n; ++i) tok->sorted_ids_[i] = i;
  std::stable_sort(tok->sorted_ids_.begin(), tok->sorted_ids_.end(),
                   [&](int32_t a, int32_t b) { return tok->pieces_[a] < tok->pieces_[b]; });

  std::vector<int32_t> eos;
  for (int32_t id : parts.eos_ids) {
    if (in_range(id) && std::find(eos.begin(), eos.end(), id) == eos.end()) eos.push_back(id);
  }
  if (tok->eos_token_.empty() && !eos.empty()) tok->eos_token_ = tok->pieces_[eos.front()];
  for (const char* name : kEndOfTurnTokens) {
    auto id = tok->TokenToId(name);
    if (id && (tok->attrs_[*id] & (kAttrSpecial | kAttrControl)) &&
        std::find(eos.begin(), eos.end(), *id) == eos.end()) {
      eos.push_back(*id);
    }
  }
  tok->eos_ids_ = std::move(eos);
  return tok;
}

std::vector<int32_t> Tokenizer::Encode(std::string_view text, bool add_special_tokens,
                                       bool parse_special) const {
  std::string clean;
  if (!IsValidUtf8(text)) {
    clean = SanitizeUtf8(text);
    text = clean;
  }
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 8);
  if (add_special_tokens) ids.insert(ids.end(), prefix_ids_.begin(), prefix_ids_.end());
  std::vector<Segment> segments;
  added_.Split(text, parse_special, /*normalized_pass=*/false, &segments);
  for (const Segment& s : segments) {
    if (s.id >= 0) {
      ids.push_back(s.id);
    } else {
      EncodeSegment(text.substr(s.begin, s.end - s.begin), s.begin == 0, parse_special, &ids);
    }
  }
  if (add_special_tokens) ids.insert(ids.end(), suffix_ids_.begin(), suffix_ids_.end());
  return ids;
}

void Tokenizer::EncodeSegment(std::string_view text, bool at_input_start, bool parse_special,
                              std::vector<int32_t>* ids) const {
  if (normalizer_ == nullptr && !added_.has_normalized()) {
    EncodeText(text, at_input_start, ids);
    return;
  }
  std::string normalized(text);
  if (normalizer_ != nullptr) normalizer_->Apply(&normalized);
  if (!added_.has_normalized()) {
    EncodeText(normalized, at_input_start, ids);
    return;
  }
  std::vector<Segment> segments;
  added_.Split(normalized, parse_special, /*normalized_pass=*/true, &segments);
  for (const Segment& s : segments) {
    if (s.id >= 0) {
      ids->push_back(s.id);
    } else {
      EncodeText(std::string_view(normalized).substr(s.begin, s.end - s.begin),
                 at_input_start && s.begin == 0, ids);
    }
  }
}

void Tokenizer::EncodeText(std::string_view text, bool at_input_start,
                           std::vector<int32_t>* ids) const {
  if (text.empty()) return;
  if (pre_tokenizer_ == nullptr) {
    model_->EncodeWord(text, ids);
    return;
  }
  Words words;
  words.buf.assign(text);
  words.ranges.emplace_back(0, static_cast<uint32_t>(text.size()));
  pre_tokenizer_->Apply(&words, at_input_start);
  for (size_t i = 0; i < words.size(); ++i) model_->EncodeWord(words[i], ids);
}

std::string Tokenizer::Decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  DecodeStream stream(&decoder_);
  std::string out;
  for (int32_t id : ids) {
    if (id < 0 || id >= vocab_size()) continue;
    if (skip_special_tokens && (attrs_[id] & kAttrSpecial)) continue;
    stream.Push(pieces_[id], &out);
  }
  stream.Finish(&out);
  return out;
}

std::string_view Tokenizer::Piece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  return pieces_[id];
}

std::string Tokenizer::TokenBytes(int32_t id) const {
  if (id < 0 || id >= vocab_size()) return {};
  const std::string& piece = pieces_[id];
  if (attrs_[id] & kAttrSpecial) return "\xFF" + piece;
  if (attrs_[id] & kAttrUserDefined) return piece;
  std::string t = piece;
  for (const DecoderStep& d : decoder_) {
    switch (d.kind) {
      case DecoderStep::Kind::kByteLevel: {
        std::string bytes;
        size_t i = 0;
        while (i < t.size()) {
          Utf8Char c = DecodeUtf8(t, i);
          const int b = c.valid ? UnicodeToByte(c.cp) : -1;
          if (b < 0) return t;  // not GPT-2 code points: the token stands for its own text
          bytes.push_back(static_cast<char>(b));
          i += c.len;
        }
        t = std::move(bytes);
        break;
      }
      case DecoderStep::Kind::kMetaspace:
      case DecoderStep::Kind::kReplace: {
        const std::string& to = d.kind == DecoderStep::Kind::kMetaspace ? std::string(" ") : d.b;
        std::string out;
        size_t pos = 0;
        while (!d.a.empty()) {
          const size_t hit = t.find(d.a, pos);
          if (hit == std::string::npos) break;
          out.append(t, pos, hit - pos).append(to);
          pos = hit + d.a.size();
        }
        out.append(t, pos);
        t = std::move(out);
        break;
      }
      case DecoderStep::Kind::kByteFallback:
        if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>' &&
            std::isxdigit(static_cast<unsigned char>(t[3])) &&
            std::isxdigit(static_cast<unsigned char>(t[4]))) {
          return std::string(1, static_cast<char>(std::stoi(t.substr(3, 2), nullptr, 16)));
        }
        break;
      case DecoderStep::Kind::kWordPiece:
        t = t.compare(0, d.a.size(), d.a) == 0 ? t.substr(d.a.size()) : " " + t;
        break;
      case DecoderStep::Kind::kFuse:
      case DecoderStep::Kind::kStrip:  // only the start of the whole text is stripped
      case DecoderStep::Kind::kJoinSpace:
        break;
    }
  }
  return t;
}

std::optional<int32_t> Tokenizer::TokenToId(std::string_view piece) const {
  auto it = std::lower_bound(sorted_ids_.begin(), sorted_ids_.end(), piece,
                             [&](int32_t id, std::string_view p) { return pieces_[id] < p; });
  if (it == sorted_ids_.end() || pieces_[*it] != piece) return std::nullopt;
  return *it;
}

bool Tokenizer::IsSpecial(int32_t id) const {
  return id >= 0 && id < vocab_size() && (attrs_[id] & kAttrSpecial) != 0;
}

uint8_t Tokenizer::attrs(int32_t id) const { return id >= 0 && id < vocab_size() ? attrs_[id] : 0; }

const std::string* Tokenizer::FindChatTemplate(std::string_view name) const {
  if (name.empty() || name == "default") {
    return chat_template_.empty() ? nullptr : &chat_template_;
  }
  auto it = named_templates_.find(std::string(name));
  return it == named_templates_.end() ? nullptr : &it->second;
}

}  // namespace kinfer::tokenizer
