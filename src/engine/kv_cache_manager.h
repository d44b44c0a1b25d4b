// Which KV blocks each sequence owns: block tables grown as sequences advance, prefix-cache
// lookups that let a new prompt start from blocks another request already computed, forks
// that let the n completions of one request share their prompt, and freeing.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "engine/block_pool.h"
#include "model/backend.h"

namespace kinfer::engine {

class KvCacheManager {
 public:
  // `backend` (may be null in tests) holds the KV cache where fork copies a partly filled
  // block's contents.
  KvCacheManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching,
                 model::Backend* backend);

  int32_t block_size() const { return block_size_; }
  bool prefix_caching() const { return prefix_caching_; }
  const BlockPool& pool() const { return pool_; }
  double usage() const { return pool_.usage(); }

  // The cached blocks holding the longest prefix of `tokens` (whole blocks only), without
  // taking them. At most (len - 1) / block_size blocks, so the last token is always computed
  // and yields logits.
  std::vector<int32_t> FindCachedPrefix(std::span<const int32_t> tokens, uint64_t extra) const;

  // Makes `seq`'s table cover `num_tokens` positions, first taking `cached` (from
  // FindCachedPrefix, for a sequence with no blocks yet). All or nothing: false, with no change,
  // when the free blocks do not suffice.
  bool Allocate(uint64_t seq, int32_t num_tokens, std::span<const int32_t> cached = {});

  // Registers the hashes of `seq`'s full blocks among its first `num_computed` tokens.
  void CacheComputedBlocks(uint64_t seq, std::span<const int32_t> tokens, int32_t num_computed,
                           uint64_t extra);

  // Gives `child` the blocks of `parent`'s first `num_tokens` positions: full blocks shared,
  // a partly filled last block copied. False, with no change, when no block is free.
  bool Fork(uint64_t parent, uint64_t child, int32_t num_tokens);

  // Releases `seq`'s blocks, last first (its tail is the least likely to be shared).
  void Free(uint64_t seq);

  std::span<const int32_t> BlockTable(uint64_t seq) const;
  int32_t NumBlocks(uint64_t seq) const { return static_cast<int32_t>(BlockTable(seq).size()); }
  size_t num_sequences() const { return seqs_.size(); }

 private:
  struct SeqBlocks {
    std::vector<int32_t> table;
    int32_t num_hashed = 0;  // leading blocks already registered in the prefix cache
    uint64_t last_hash = 0;  // hash of block num_hashed - 1
  };

  BlockPool pool_;
  int32_t block_size_;
  bool prefix_caching_;
  model::Backend* backend_;
  std::unordered_map<uint64_t, SeqBlocks> seqs_;
};

}  // namespace kinfer::engine
