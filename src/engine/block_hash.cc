#include "engine/block_hash.h"

namespace kinfer::engine {
namespace {

// SplitMix64 finalizer: a strong 64-bit mixer for chaining.
inline uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t HashString(std::string_view s, uint64_t seed) {
  uint64_t h = Mix(seed ^ s.size());
  for (unsigned char c : s) h = Mix(h ^ c);
  return h;
}

}  // namespace

uint64_t HashExtraKeys(std::string_view cache_salt, std::string_view adapter) {
  if (cache_salt.empty() && adapter.empty()) return 0;
  return HashString(adapter, HashString(cache_salt, 0x6b696e666572ull));
}

uint64_t HashBlockValue(uint64_t parent, std::span<const int32_t> tokens, uint64_t extra) {
  uint64_t h = Mix(parent ^ 0x5851F42D4C957F2Dull);
  h = Mix(h ^ extra);
  for (int32_t t : tokens) h = Mix(h ^ static_cast<uint32_t>(t));
  return h == 0 ? 1 : h;  // 0 means "no parent"
}

BlockHash HashBlock(uint64_t parent, std::span<const int32_t> tokens, uint64_t extra) {
  BlockHash b;
  b.parent = parent;
  b.extra = extra;
  b.tokens.assign(tokens.begin(), tokens.end());
  b.value = HashBlockValue(parent, tokens, extra);
  return b;
}

std::vector<BlockHash> HashBlocks(std::span<const int32_t> tokens, int32_t block_size,
                                  uint64_t extra) {
  std::vector<BlockHash> out;
  uint64_t parent = 0;
  for (size_t begin = 0; begin + static_cast<size_t>(block_size) <= tokens.size();
       begin += static_cast<size_t>(block_size)) {
    out.push_back(HashBlock(parent, tokens.subspan(begin, static_cast<size_t>(block_size)), extra));
    parent = out.back().value;
  }
  return out;
}

}  // namespace kinfer::engine
