// Which KV blocks each sequence owns: block tables grown as sequences advance, prefix-cache
// lookups that let a new prompt start from blocks another request already computed, forks
// that let the n completions of one request share their prompt, and freeing.
//
// Models with sliding-window layers among global ones (Gemma) get a second pool for the
// sliding layers' blocks (model::KvStore's sliding group). There a sequence keeps only the
// blocks its window still reaches: blocks that fall out of the window go back to that pool
// (ReleaseOutOfWindow), so the sliding layers cost memory for the window, not the context.
// Both pools index blocks by the same chained hashes; a prefix hit needs every global block
// before the hit point and the sliding blocks its window reaches.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/block_pool.h"
#include "model/backend.h"

namespace kinfer::engine {

// A prefix-cache hit: the cached blocks of the first size() blocks of a prompt.
struct PrefixHit {
  std::vector<int32_t> blocks;   // global (or only) group
  std::vector<int32_t> sliding;  // sliding group, same length; -1 out of the window
  size_t size() const { return blocks.size(); }
  bool empty() const { return blocks.empty(); }
};

class KvCacheManager {
 public:
  // `backend` (may be null in tests) holds the KV cache where fork copies a partly filled
  // block's contents. `sliding_blocks` > 0 with `sliding_window` > 0 adds the sliding-window
  // pool (the backend's KV cache then has that group too).
  KvCacheManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching,
                 model::Backend* backend, int32_t sliding_blocks = 0, int32_t sliding_window = 0);

  int32_t block_size() const { return block_size_; }
  bool prefix_caching() const { return prefix_caching_; }
  const BlockPool& pool() const { return pool_; }
  bool has_sliding() const { return sliding_window_ > 0; }
  const BlockPool& sliding_pool() const { return sliding_pool_; }
  // The fuller of the two pools, in [0, 1]: how close the cache is to preempting.
  double usage() const;

  // The cached blocks holding the longest prefix of `tokens` (whole blocks only), without
  // taking them. At most (len - 1) / block_size blocks, so the last token is always computed
  // and yields logits.
  PrefixHit FindCachedPrefix(std::span<const int32_t> tokens, uint64_t extra) const;

  // Makes `seq`'s table(s) cover `num_tokens` positions, first taking `cached` (from
  // FindCachedPrefix, for a sequence with no blocks yet). All or nothing: false, with no change,
  // when the free blocks of either pool do not suffice.
  bool Allocate(uint64_t seq, int32_t num_tokens, const PrefixHit& cached = {});

  // Registers the hashes of `seq`'s full blocks among its first `num_computed` tokens.
  void CacheComputedBlocks(uint64_t seq, std::span<const int32_t> tokens, int32_t num_computed,
                           uint64_t extra);

  // Gives back the sliding-window blocks that no token from position `num_computed` on can
  // attend to (call after CacheComputedBlocks, so they stay findable until evicted).
  void ReleaseOutOfWindow(uint64_t seq, int32_t num_computed);

  // Gives `child` the blocks of `parent`'s first `num_tokens` positions: full blocks shared,
  // a partly filled last block copied. False, with no change, when no block is free.
  bool Fork(uint64_t parent, uint64_t child, int32_t num_tokens);

  // Releases `seq`'s blocks, last first (its tail is the least likely to be shared).
  void Free(uint64_t seq);

  std::span<const int32_t> BlockTable(uint64_t seq) const;
  // The sliding-window group's table (-1 where released); empty without that group.
  std::span<const int32_t> SlidingBlockTable(uint64_t seq) const;
  int32_t NumBlocks(uint64_t seq) const { return static_cast<int32_t>(BlockTable(seq).size()); }
  size_t num_sequences() const { return seqs_.size(); }

 private:
  struct SeqBlocks {
    std::vector<int32_t> table;
    std::vector<int32_t> sliding;  // same length as table when has_sliding()
    int32_t num_hashed = 0;        // leading blocks already registered in the prefix cache
    uint64_t last_hash = 0;        // hash of block num_hashed - 1
  };
  // First block that the window of a token at `pos` reaches.
  int32_t FirstWindowBlock(int64_t pos) const;

  BlockPool pool_;
  BlockPool sliding_pool_;
  int32_t block_size_;
  bool prefix_caching_;
  model::Backend* backend_;
  int32_t sliding_window_;
  std::unordered_map<uint64_t, SeqBlocks> seqs_;
};

}  // namespace kinfer::engine
