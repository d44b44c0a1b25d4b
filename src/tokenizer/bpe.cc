#include "tokenizer/bpe.h"

#include <algorithm>
#include <array>
#include <cstring>
#include <limits>
#include <queue>

#include "tokenizer/unicode.h"

namespace kinfer::tokenizer {
namespace {

constexpr uint32_t kNoRank = std::numeric_limits<uint32_t>::max();

uint64_t HashBytes(std::string_view s) {
  const auto* p = reinterpret_cast<const uint8_t*>(s.data());
  size_t n = s.size();
  uint64_t h = 0x9E3779B97F4A7C15ULL ^ (n * 0xFF51AFD7ED558CCDULL);
  while (n >= 8) {
    uint64_t k;
    std::memcpy(&k, p, 8);
    h = (h ^ k) * 0xBF58476D1CE4E5B9ULL;
    h ^= h >> 31;
    p += 8;
    n -= 8;
  }
  uint64_t k = 0;
  std::memcpy(&k, p, n);
  h = (h ^ k) * 0x94D049BB133111EBULL;
  h ^= h >> 29;
  h *= 0xBF58476D1CE4E5B9ULL;
  h ^= h >> 32;
  return h;
}

size_t TableSize(size_t n) {
  size_t cap = 16;
  while (cap < n * 2) cap <<= 1;
  return cap;
}

// String -> id, open addressing over one blob of key bytes.
class StringIdMap {
 public:
  void Build(const std::vector<std::pair<std::string, int32_t>>& entries) {
    size_t bytes = 0;
    for (const auto& e : entries) bytes += e.first.size();
    blob_.reserve(bytes);
    slots_.assign(TableSize(entries.size()), Slot{});
    mask_ = slots_.size() - 1;
    for (const auto& [key, id] : entries) {
      const uint64_t h = HashBytes(key);
      size_t i = h & mask_;
      bool dup = false;
      while (slots_[i].id >= 0) {
        if (slots_[i].hash == h && Key(slots_[i]) == key) {
          dup = true;  // the first id given for a string wins
          break;
        }
        i = (i + 1) & mask_;
      }
      if (dup) continue;
      slots_[i] = Slot{h, uint32_t(blob_.size()), uint32_t(key.size()), id};
      blob_.append(key);
    }
  }

  int32_t Find(std::string_view key) const {
    if (slots_.empty()) return -1;
    const uint64_t h = HashBytes(key);
    size_t i = h & mask_;
    while (slots_[i].id >= 0) {
      if (slots_[i].hash == h && Key(slots_[i]) == key) return slots_[i].id;
      i = (i + 1) & mask_;
    }
    return -1;
  }

 private:
  struct Slot {
    uint64_t hash = 0;
    uint32_t off = 0;
    uint32_t len = 0;
    int32_t id = -1;
  };
  std::string_view Key(const Slot& s) const { return std::string_view(blob_).substr(s.off, s.len); }

  std::string blob_;
  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

// (left id, right id) -> (rank, result id).
class PairMap {
 public:
  void Reserve(size_t n) {
    slots_.assign(TableSize(n), Slot{});
    mask_ = slots_.size() - 1;
  }

  void Insert(int32_t left, int32_t right, uint32_t rank, int32_t result) {
    const uint64_t key = Key(left, right);
    size_t i = Hash(key) & mask_;
    while (slots_[i].key != kEmpty) {
      if (slots_[i].key == key) {
        if (rank < slots_[i].rank) {
          slots_[i].rank = rank;
          slots_[i].result = result;
        }
        return;
      }
      i = (i + 1) & mask_;
    }
    slots_[i] = Slot{key, rank, result};
  }

  bool Find(int32_t left, int32_t right, uint32_t* rank, int32_t* result) const {
    const uint64_t key = Key(left, right);
    size_t i = Hash(key) & mask_;
    while (true) {
      const Slot& s = slots_[i];
      if (s.key == key) {
        *rank = s.rank;
        *result = s.result;
        return true;
      }
      if (s.key == kEmpty) return false;
      i = (i + 1) & mask_;
    }
  }

 private:
  static constexpr uint64_t kEmpty = ~0ULL;
  struct Slot {
    uint64_t key = kEmpty;
    uint32_t rank = 0;
    int32_t result = 0;
  };
  static uint64_t Key(int32_t l, int32_t r) {
    return (uint64_t(uint32_t(l)) << 32) | uint64_t(uint32_t(r));
  }
  static uint64_t Hash(uint64_t k) {
    k ^= k >> 33;
    k *= 0xFF51AFD7ED558CCDULL;
    k ^= k >> 29;
    return k;
  }

  std::vector<Slot> slots_;
  size_t mask_ = 0;
};

}  // namespace

struct BpeModel::Tables {
  StringIdMap vocab;
  PairMap pairs;
  std::array<int32_t, 256> byte_ids{};           // byte-level: the symbol of each byte
  std::array<int32_t, 128> ascii_ids{};          // character models: ASCII characters
  std::array<int32_t, 256> byte_fallback_ids{};  // "<0xXX>"
  bool all_byte_fallback = false;
};

struct BpeModel::Symbol {
  int32_t id;
  int32_t prev;
  int32_t next;
  uint32_t rank;   // of the pair (this, next), kNoRank if none
  int32_t result;  // what that pair merges into
};

BpeModel::BpeModel(Options options)
    : options_(std::move(options)), tables_(std::make_unique<Tables>()) {}

BpeModel::~BpeModel() = default;

Result<std::unique_ptr<BpeModel>> BpeModel::Create(
    const std::vector<std::pair<std::string, int32_t>>& vocab, const std::vector<Merge>& merges,
    Options options) {
  auto model = std::unique_ptr<BpeModel>(new BpeModel(std::move(options)));
  Tables& t = *model->tables_;
  int32_t max_id = -1;
  for (const auto& [piece, id] : vocab) {
    if (id < 0) return InvalidArgumentError("BPE vocab: negative id {} for '{}'", id, piece);
    max_id = std::max(max_id, id);
  }
  t.vocab.Build(vocab);
  t.pairs.Reserve(merges.size());
  for (const auto& m : merges) {
    if (m.left < 0 || m.right < 0 || m.result < 0 || m.left > max_id || m.right > max_id ||
        m.result > max_id) {
      return InvalidArgumentError("BPE merge of ids ({}, {}) -> {}: id out of range", m.left,
                                  m.right, m.result);
    }
    t.pairs.Insert(m.left, m.right, m.rank, m.result);
  }
  t.all_byte_fallback = true;
  for (int b = 0; b < 256; ++b) {
    const char c = static_cast<char>(b);
    t.byte_ids[b] = t.vocab.Find(std::string_view(&c, 1));
    t.byte_fallback_ids[b] = t.vocab.Find(fmt::format("<0x{:02X}>", b));
    if (t.byte_fallback_ids[b] < 0) t.all_byte_fallback = false;
    if (b < 128) t.ascii_ids[b] = t.byte_ids[b];
  }
  return model;
}

int32_t BpeModel::Find(std::string_view piece) const { return tables_->vocab.Find(piece); }

bool BpeModel::PairRank(int32_t left, int32_t right, uint32_t* rank, int32_t* result) const {
  if (left < 0 || right < 0) return false;
  return tables_->pairs.Find(left, right, rank, result);
}

void BpeModel::InitSymbols(std::string_view word, std::vector<Symbol>* symbols) const {
  const Tables& t = *tables_;
  auto add = [&](int32_t id) { symbols->push_back(Symbol{id, 0, 0, kNoRank, -1}); };
  if (options_.byte_level && options_.continuing_subword_prefix.empty() &&
      options_.end_of_word_suffix.empty()) {
    for (char ch : word) {
      const int32_t id = t.byte_ids[static_cast<uint8_t>(ch)];
      if (id >= 0) {
        add(id);
      } else if (options_.unk_id) {
        if (!(options_.fuse_unk && !symbols->empty() && symbols->back().id == *options_.unk_id)) {
          add(*options_.unk_id);
        }
      }
    }
    return;
  }
  // Character symbols, with Hugging Face's unknown-token handling: a run of unknown characters
  // is held and flushed as one <unk> (fuse_unk) or one per character.
  std::optional<int32_t> pending_unk;
  std::string with_affixes;
  const bool affixes =
      !options_.continuing_subword_prefix.empty() || !options_.end_of_word_suffix.empty();
  size_t i = 0;
  while (i < word.size()) {
    int len;
    if (options_.byte_level) {
      len = 1;
    } else {
      len = DecodeUtf8(word, i).len;
    }
    const std::string_view ch = word.substr(i, len);
    int32_t id;
    if (affixes) {
      with_affixes.clear();
      if (i > 0) with_affixes.append(options_.continuing_subword_prefix);
      with_affixes.append(ch);
      if (i + len == word.size()) with_affixes.append(options_.end_of_word_suffix);
      id = t.vocab.Find(with_affixes);
    } else if (len == 1 && static_cast<uint8_t>(ch[0]) < 0x80) {
      id = t.ascii_ids[static_cast<uint8_t>(ch[0])];
    } else {
      id = t.vocab.Find(ch);
    }
    i += len;
    if (id >= 0) {
      if (pending_unk) {
        add(*pending_unk);
        pending_unk.reset();
      }
      add(id);
      continue;
    }
    if (options_.byte_fallback) {
      bool all = true;
      for (char b : ch) all = all && t.byte_fallback_ids[static_cast<uint8_t>(b)] >= 0;
      if (all) {
        for (char b : ch) add(t.byte_fallback_ids[static_cast<uint8_t>(b)]);
        continue;
      }
    }
    if (options_.unk_id) {
      if (pending_unk && !options_.fuse_unk) add(*pending_unk);
      pending_unk = *options_.unk_id;
    }
  }
  if (pending_unk) add(*pending_unk);
}

void BpeModel::MergeSmall(std::vector<Symbol>* symbols) const {
  auto& s = *symbols;
  const int n = static_cast<int>(s.size());
  for (int i = 0; i < n; ++i) {
    s[i].prev = i - 1;
    s[i].next = i + 1 < n ? i + 1 : -1;
    if (s[i].next >= 0) PairRank(s[i].id, s[i + 1].id, &s[i].rank, &s[i].result);
  }
  while (true) {
    uint32_t best = kNoRank;
    int bi = -1;
    for (int i = 0; i != -1; i = s[i].next) {
      if (s[i].rank < best) {
        best = s[i].rank;
        bi = i;
      }
    }
    if (bi < 0) break;
    Symbol& left = s[bi];
    const int j = left.next;
    left.id = left.result;
    left.next = s[j].next;
    if (left.next >= 0) s[left.next].prev = bi;
    left.rank = kNoRank;
    if (left.next >= 0) PairRank(left.id, s[left.next].id, &left.rank, &left.result);
    if (left.prev >= 0) {
      Symbol& p = s[left.prev];
      p.rank = kNoRank;
      PairRank(p.id, left.id, &p.rank, &p.result);
    }
  }
}

void BpeModel::MergeLarge(std::vector<Symbol>* symbols) const {
  auto& s = *symbols;
  const int n = static_cast<int>(s.size());
  struct Candidate {
    uint32_t rank;
    int32_t pos;
    int32_t left_id;
    int32_t right_id;
    bool operator>(const Candidate& o) const {
      return rank != o.rank ? rank > o.rank : pos > o.pos;
    }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<>> queue;
  auto consider = [&](int i) {
    if (i < 0 || s[i].next < 0) return;
    uint32_t rank;
    int32_t result;
    if (PairRank(s[i].id, s[s[i].next].id, &rank, &result)) {
      queue.push({rank, i, s[i].id, s[s[i].next].id});
    }
  };
  for (int i = 0; i < n; ++i) {
    s[i].prev = i - 1;
    s[i].next = i + 1 < n ? i + 1 : -1;
  }
  for (int i = 0; i + 1 < n; ++i) consider(i);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Symbol& left = s[c.pos];
    if (left.id != c.left_id || left.next < 0 || s[left.next].id != c.right_id) continue;
    uint32_t rank;
    int32_t result;
    PairRank(left.id, s[left.next].id, &rank, &result);
    const int j = left.next;
    left.id = result;
    s[j].id = -2;  // dead
    left.next = s[j].next;
    if (left.next >= 0) s[left.next].prev = c.pos;
    consider(left.prev);
    consider(c.pos);
  }
}

void BpeModel::EncodeWord(std::string_view word, std::vector<int32_t>* out) const {
  if (word.empty()) return;
  if (options_.ignore_merges) {
    const int32_t id = tables_->vocab.Find(word);
    if (id >= 0) {
      out->push_back(id);
      return;
    }
  }
  thread_local std::vector<Symbol> symbols;
  symbols.clear();
  InitSymbols(word, &symbols);
  if (symbols.empty()) return;
  if (symbols.size() == 1) {
    out->push_back(symbols[0].id);
    return;
  }
  constexpr size_t kSmallWord = 96;
  if (symbols.size() <= kSmallWord) {
    MergeSmall(&symbols);
    for (int i = 0; i != -1; i = symbols[i].next) out->push_back(symbols[i].id);
  } else {
    MergeLarge(&symbols);
    for (const auto& sym : symbols) {
      if (sym.id != -2) out->push_back(sym.id);
    }
  }
}

}  // namespace kinfer::tokenizer
