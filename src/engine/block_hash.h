// The identity of a full KV block for prefix caching: a chained hash of its tokens, its
// parent block's hash and extra keys (cache salt, adapter), plus the tokens themselves so a
// hit is verified exactly rather than trusted to a 64-bit hash.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace kinfer::engine {

struct BlockHash {
  uint64_t value = 0;   // hash of (parent, tokens, extra)
  uint64_t parent = 0;  // the previous block's value; 0 for the first block
  uint64_t extra = 0;   // hash of the extra keys
  std::vector<int32_t> tokens;

  bool operator==(const BlockHash& o) const {
    return value == o.value && parent == o.parent && extra == o.extra && tokens == o.tokens;
  }
};

struct BlockHashHasher {
  size_t operator()(const BlockHash& h) const { return static_cast<size_t>(h.value); }
};

// Hash of the per-request extra keys that must isolate caches: cache_salt, adapter id.
uint64_t HashExtraKeys(std::string_view cache_salt, std::string_view adapter);

// The hash of a full block that follows `parent` (0 for the first block).
BlockHash HashBlock(uint64_t parent, std::span<const int32_t> tokens, uint64_t extra);
// Its value alone (never 0), without copying the tokens: what the router's prefix index keeps.
uint64_t HashBlockValue(uint64_t parent, std::span<const int32_t> tokens, uint64_t extra);

// Hashes of every full block of `tokens`, chained.
std::vector<BlockHash> HashBlocks(std::span<const int32_t> tokens, int32_t block_size,
                                  uint64_t extra);

}  // namespace kinfer::engine
