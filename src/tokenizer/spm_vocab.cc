#include "tokenizer/spm_vocab.h"

#include <algorithm>
#include <numeric>
#include <unordered_map>

#include "tokenizer/bpe.h"
#include "tokenizer/unicode.h"

namespace kinfer::tokenizer {

Result<TokenizerParts> BuildSpmTokenizer(SpmVocab v) {
  const size_t n = v.pieces.size();
  if (n == 0) return InvalidArgumentError("{}: empty vocabulary", v.source);
  if (v.scores.size() != n) v.scores.assign(n, 0.0f);
  if (v.types.size() != n) v.types.assign(n, SpmType::kNormal);

  TokenizerParts parts;
  parts.source = v.source;
  parts.pieces = v.pieces;
  parts.attrs.assign(n, 0);
  std::vector<std::pair<std::string, int32_t>> model_vocab;
  std::unordered_map<std::string_view, int32_t> mergeable;
  for (size_t i = 0; i < n; ++i) {
    const int32_t id = static_cast<int32_t>(i);
    switch (v.types[i]) {
      case SpmType::kNormal:
        parts.attrs[i] = kAttrNormal;
        break;
      case SpmType::kUnknown:
        parts.attrs[i] = kAttrUnknown | kAttrSpecial;
        break;
      case SpmType::kControl:
        parts.attrs[i] = kAttrControl | kAttrSpecial;
        break;
      case SpmType::kUserDefined:
        parts.attrs[i] = kAttrUserDefined;
        break;
      case SpmType::kUnused:
        parts.attrs[i] = kAttrUnused;
        break;
      case SpmType::kByte:
        parts.attrs[i] = kAttrByte;
        break;
    }
    const SpmType t = v.types[i];
    if (t == SpmType::kNormal || t == SpmType::kUserDefined || t == SpmType::kByte) {
      model_vocab.emplace_back(v.pieces[i], id);
    }
    if ((t == SpmType::kNormal || t == SpmType::kUserDefined) && !v.pieces[i].empty()) {
      mergeable.emplace(parts.pieces[i], id);
    }
    if (t == SpmType::kControl || t == SpmType::kUnknown || t == SpmType::kUserDefined) {
      if (v.pieces[i].empty()) continue;
      AddedToken a;
      a.content = v.pieces[i];
      a.id = id;
      a.special = t != SpmType::kUserDefined;
      parts.added_tokens.push_back(std::move(a));
    }
  }

  // Ranks: pieces by score, best first; ties share a rank so position decides.
  std::vector<int32_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](int32_t a, int32_t b) { return v.scores[a] > v.scores[b]; });
  std::vector<uint32_t> rank(n, 0);
  uint32_t r = 0;
  for (size_t k = 0; k < n; ++k) {
    if (k > 0 && v.scores[order[k]] != v.scores[order[k - 1]]) ++r;
    rank[order[k]] = r;
  }
  std::vector<BpeModel::Merge> merges;
  for (const auto& [piece, id] : mergeable) {
    size_t k = Utf8SeqLen(static_cast<uint8_t>(piece[0]));
    while (k < piece.size()) {
      auto a = mergeable.find(piece.substr(0, k));
      auto b = mergeable.find(piece.substr(k));
      if (a != mergeable.end() && b != mergeable.end()) {
        merges.push_back({a->second, b->second, id, rank[id]});
      }
      k += Utf8SeqLen(static_cast<uint8_t>(piece[k]));
    }
  }

  BpeModel::Options opt;
  opt.byte_fallback = v.byte_fallback;
  opt.unk_id = v.unk_id;
  KINFER_ASSIGN_OR_RETURN(parts.model, BpeModel::Create(model_vocab, merges, std::move(opt)));

  parts.normalizer = MakeSentencePieceNormalizer(v.add_dummy_prefix, v.remove_extra_whitespaces);

  using K = DecoderStep::Kind;
  parts.decoder.emplace_back(K::kReplace, "\u2581", " ");
  parts.decoder.emplace_back(K::kByteFallback);
  parts.decoder.emplace_back(K::kFuse);
  // SentencePiece drops the dummy prefix when decoding; with remove_extra_whitespaces it drops
  // every leading space.
  if (v.add_dummy_prefix || v.remove_extra_whitespaces) {
    parts.decoder.emplace_back(K::kStrip, " ", "", v.remove_extra_whitespaces ? 1 << 30 : 1, 0);
  }

  parts.bos_id = v.bos_id;
  if (v.eos_id) parts.eos_ids.push_back(*v.eos_id);
  if (v.add_bos && v.bos_id) parts.prefix_ids.push_back(*v.bos_id);
  if (v.add_eos && v.eos_id) parts.suffix_ids.push_back(*v.eos_id);
  if (v.bos_id && *v.bos_id >= 0 && size_t(*v.bos_id) < n) parts.bos_token = v.pieces[*v.bos_id];
  if (v.eos_id && *v.eos_id >= 0 && size_t(*v.eos_id) < n) parts.eos_token = v.pieces[*v.eos_id];
  return parts;
}

}  // namespace kinfer::tokenizer
