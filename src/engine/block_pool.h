// The KV cache's blocks: reference counts, a free queue ordered least-recently-used with O(1)
// removal from its middle, and the index from prefix hash to the block that holds it. A freed
// block keeps its hash, so a later request with the same prefix finds it again, until the
// block is reused for something else (evicted from the front of the free queue).
//
// Same shape as LevelDB's util/cache.cc: an in-use set (ref_count > 0) and an LRU list.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/block_hash.h"

namespace kinfer::engine {

class BlockPool {
 public:
  explicit BlockPool(int32_t num_blocks);

  int32_t num_blocks() const { return static_cast<int32_t>(blocks_.size()); }
  // Blocks with no reference: never used, or free but still holding a cached prefix.
  int32_t num_free() const { return num_free_; }
  // Fraction of blocks referenced by some sequence, in [0, 1].
  double usage() const { return 1.0 - static_cast<double>(num_free_) / blocks_.size(); }

  // Takes the least recently used free block (evicting its cached hash), with ref_count 1.
  std::optional<int32_t> Allocate();

  // Adds a reference. A free block (a prefix-cache hit) leaves the free queue.
  void Ref(int32_t block);

  // Drops a reference; at zero the block joins the back of the free queue (most recently
  // used), keeping its hash. Free a sequence's blocks last-first so its tail goes first.
  void Unref(int32_t block);

  // The block holding the full block identified by `hash` with exactly these tokens, if any.
  std::optional<int32_t> Lookup(const BlockHash& hash) const;

  // Records that `block` (referenced, full) holds `hash`. A block already cached under another
  // hash, or a hash already held by another block, is left as it is.
  void Cache(int32_t block, const BlockHash& hash);

  int32_t ref_count(int32_t block) const { return blocks_[static_cast<size_t>(block)].ref_count; }
  bool is_cached(int32_t block) const { return blocks_[static_cast<size_t>(block)].cached; }
  // Free blocks from least to most recently used (for tests and debugging).
  std::vector<int32_t> FreeQueue() const;

  // Drops every cached hash (e.g. when weights change); referenced blocks stay referenced.
  void ResetPrefixCache();

 private:
  static constexpr int32_t kNone = -1;
  struct Block {
    int32_t ref_count = 0;
    int32_t prev = kNone, next = kNone;  // free queue links, when ref_count == 0
    bool cached = false;
    BlockHash hash;
  };

  void PushBack(int32_t b);
  void Remove(int32_t b);
  void Uncache(int32_t b);

  std::vector<Block> blocks_;
  int32_t head_ = kNone, tail_ = kNone;  // free queue: head is least recently used
  int32_t num_free_ = 0;
  std::unordered_map<BlockHash, int32_t, BlockHashHasher> cached_;
};

}  // namespace kinfer::engine
