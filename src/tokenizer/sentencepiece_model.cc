#include "tokenizer/sentencepiece_model.h"

#include <cstring>

#include "tokenizer/spm_vocab.h"

namespace kinfer::tokenizer {
namespace {

// Protobuf wire format: a cursor over one message.
class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool done() const { return pos_ >= data_.size(); }

  bool Varint(uint64_t* v) {
    *v = 0;
    for (int shift = 0; shift < 64; shift += 7) {
      if (pos_ >= data_.size()) return false;
      const uint8_t b = static_cast<uint8_t>(data_[pos_++]);
      *v |= uint64_t(b & 0x7F) << shift;
      if ((b & 0x80) == 0) return true;
    }
    return false;
  }

  // Reads a key and its value; a length-delimited value comes back in `bytes`.
  bool Field(uint32_t* field, uint32_t* wire, uint64_t* num, std::string_view* bytes) {
    uint64_t key;
    if (!Varint(&key)) return false;
    *field = static_cast<uint32_t>(key >> 3);
    *wire = static_cast<uint32_t>(key & 7);
    switch (*wire) {
      case 0:
        return Varint(num);
      case 1:
        if (data_.size() - pos_ < 8) return false;
        std::memcpy(num, data_.data() + pos_, 8);
        pos_ += 8;
        return true;
      case 2: {
        uint64_t len;
        if (!Varint(&len) || len > data_.size() - pos_) return false;
        *bytes = data_.substr(pos_, len);
        pos_ += len;
        return true;
      }
      case 5: {
        if (data_.size() - pos_ < 4) return false;
        uint32_t v;
        std::memcpy(&v, data_.data() + pos_, 4);
        *num = v;
        pos_ += 4;
        return true;
      }
      default:
        return false;  // groups (3, 4) are not used by sentencepiece_model.proto
    }
  }

 private:
  std::string_view data_;
  size_t pos_ = 0;
};

}  // namespace

Result<TokenizerParts> ParseSentencePieceModel(std::string_view bytes, std::string source) {
  SpmVocab v;
  v.source = source;
  int64_t model_type = 1;  // UNIGRAM is the proto default
  int64_t unk = 0, bos = 1, eos = 2;
  bool byte_fallback = false;
  bool add_dummy_prefix = true, remove_extra_ws = true;
  std::string normalizer_name;
  size_t charsmap_size = 0;

  Reader r(bytes);
  uint32_t field, wire;
  uint64_t num;
  std::string_view sub;
  auto bad = [&](const char* what) {
    return DataLossError("{}: malformed SentencePiece model ({})", source, what);
  };
  while (!r.done()) {
    if (!r.Field(&field, &wire, &num, &sub)) return bad("top-level field");
    if (field == 1 && wire == 2) {
      Reader p(sub);
      std::string piece;
      float score = 0;
      int64_t type = 1;
      while (!p.done()) {
        uint32_t f, w;
        uint64_t x;
        std::string_view s;
        if (!p.Field(&f, &w, &x, &s)) return bad("piece");
        if (f == 1 && w == 2) piece.assign(s);
        if (f == 2 && w == 5) {
          const uint32_t bits = static_cast<uint32_t>(x);
          std::memcpy(&score, &bits, 4);
        }
        if (f == 3 && w == 0) type = static_cast<int64_t>(x);
      }
      if (v.pieces.size() >= (1u << 24)) return bad("too many pieces");
      v.pieces.push_back(std::move(piece));
      v.scores.push_back(score);
      v.types.push_back(type >= 1 && type <= 6 ? static_cast<SpmType>(type) : SpmType::kNormal);
    } else if (field == 2 && wire == 2) {
      Reader t(sub);
      while (!t.done()) {
        uint32_t f, w;
        uint64_t x;
        std::string_view s;
        if (!t.Field(&f, &w, &x, &s)) return bad("trainer_spec");
        if (w != 0) continue;
        const auto as_int = static_cast<int32_t>(static_cast<uint32_t>(x));
        if (f == 3) model_type = as_int;
        if (f == 35) byte_fallback = x != 0;
        if (f == 40) unk = as_int;
        if (f == 41) bos = as_int;
        if (f == 42) eos = as_int;
      }
    } else if (field == 3 && wire == 2) {
      Reader ns(sub);
      while (!ns.done()) {
        uint32_t f, w;
        uint64_t x;
        std::string_view s;
        if (!ns.Field(&f, &w, &x, &s)) return bad("normalizer_spec");
        if (f == 1 && w == 2) normalizer_name.assign(s);
        if (f == 2 && w == 2) charsmap_size = s.size();
        if (f == 3 && w == 0) add_dummy_prefix = x != 0;
        if (f == 4 && w == 0) remove_extra_ws = x != 0;
      }
    }
  }
  if (v.pieces.empty()) return bad("no pieces");
  if (model_type != 2) {
    return UnimplementedError("{}: SentencePiece model type {} is not supported (only BPE)", source,
                              model_type);
  }
  if (charsmap_size > 0 && normalizer_name != "identity") {
    return UnimplementedError(
        "{}: SentencePiece normalizer '{}' (precompiled charsmap) is not "
        "supported",
        source, normalizer_name);
  }
  const auto n = static_cast<int64_t>(v.pieces.size());
  auto id = [n](int64_t i) -> std::optional<int32_t> {
    if (i < 0 || i >= n) return std::nullopt;
    return static_cast<int32_t>(i);
  };
  v.unk_id = id(unk);
  v.bos_id = id(bos);
  v.eos_id = id(eos);
  v.byte_fallback = byte_fallback;
  v.add_dummy_prefix = add_dummy_prefix;
  v.remove_extra_whitespaces = remove_extra_ws;
  v.add_bos = true;
  v.add_eos = false;
  return BuildSpmTokenizer(std::move(v));
}

}  // namespace kinfer::tokenizer
