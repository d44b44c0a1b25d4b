#include "engine/kv_cache_manager.h"

#include "core/status.h"

namespace kinfer::engine {

KvCacheManager::KvCacheManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching,
                               model::Backend* backend)
    : pool_(num_blocks),
      block_size_(block_size),
      prefix_caching_(enable_prefix_caching),
      backend_(backend) {}

std::vector<int32_t> KvCacheManager::FindCachedPrefix(std::span<const int32_t> tokens,
                                                      uint64_t extra) const {
  std::vector<int32_t> blocks;
  if (!prefix_caching_ || tokens.empty()) return blocks;
  const size_t max_blocks = (tokens.size() - 1) / static_cast<size_t>(block_size_);
  uint64_t parent = 0;
  for (size_t b = 0; b < max_blocks; ++b) {
    BlockHash h =
        HashBlock(parent, tokens.subspan(b * block_size_, static_cast<size_t>(block_size_)), extra);
    auto hit = pool_.Lookup(h);
    if (!hit) break;
    blocks.push_back(*hit);
    parent = h.value;
  }
  return blocks;
}

bool KvCacheManager::Allocate(uint64_t seq, int32_t num_tokens, std::span<const int32_t> cached) {
  SeqBlocks& s = seqs_[seq];
  const int32_t have = static_cast<int32_t>(s.table.size() + cached.size());
  const int32_t need_total = (num_tokens + block_size_ - 1) / block_size_;
  const int32_t fresh = std::max(0, need_total - have);
  // Cached blocks that are free now stop being free once taken.
  int32_t cached_free = 0;
  for (int32_t b : cached) cached_free += pool_.ref_count(b) == 0;
  if (fresh > pool_.num_free() - cached_free) {
    if (s.table.empty()) seqs_.erase(seq);
    return false;
  }
  for (int32_t b : cached) {
    pool_.Ref(b);
    s.table.push_back(b);
  }
  if (!cached.empty() && s.num_hashed == 0) {
    // The taken prefix is already registered; continue the hash chain after it.
    s.num_hashed = static_cast<int32_t>(cached.size());
    s.last_hash = 0;  // recomputed lazily by CacheComputedBlocks from the tokens
  }
  for (int32_t i = 0; i < fresh; ++i) s.table.push_back(*pool_.Allocate());
  return true;
}

void KvCacheManager::CacheComputedBlocks(uint64_t seq, std::span<const int32_t> tokens,
                                         int32_t num_computed, uint64_t extra) {
  if (!prefix_caching_) return;
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  SeqBlocks& s = it->second;
  const int32_t full =
      std::min<int32_t>(num_computed / block_size_, static_cast<int32_t>(s.table.size()));
  if (s.num_hashed > 0 && s.last_hash == 0) {
    // Rebuild the chain up to the blocks taken from the cache.
    uint64_t parent = 0;
    for (int32_t b = 0; b < s.num_hashed; ++b) {
      parent = HashBlock(parent,
                         tokens.subspan(static_cast<size_t>(b) * static_cast<size_t>(block_size_),
                                        static_cast<size_t>(block_size_)),
                         extra)
                   .value;
    }
    s.last_hash = parent;
  }
  for (int32_t b = s.num_hashed; b < full; ++b) {
    BlockHash h =
        HashBlock(s.last_hash,
                  tokens.subspan(static_cast<size_t>(b) * static_cast<size_t>(block_size_),
                                 static_cast<size_t>(block_size_)),
                  extra);
    pool_.Cache(s.table[static_cast<size_t>(b)], h);
    s.last_hash = h.value;
    s.num_hashed = b + 1;
  }
}

bool KvCacheManager::Fork(uint64_t parent, uint64_t child, int32_t num_tokens) {
  const SeqBlocks& p = seqs_.at(parent);
  const int32_t full = num_tokens / block_size_;
  const int32_t partial = num_tokens % block_size_;
  if (partial > 0 && pool_.num_free() == 0) return false;
  SeqBlocks c;
  for (int32_t b = 0; b < full; ++b) {
    pool_.Ref(p.table[static_cast<size_t>(b)]);
    c.table.push_back(p.table[static_cast<size_t>(b)]);
  }
  if (partial > 0) {
    int32_t src = p.table[static_cast<size_t>(full)];
    int32_t dst = *pool_.Allocate();
    if (backend_) backend_->CopyKvSlots(src, dst, partial);
    c.table.push_back(dst);
  }
  c.num_hashed = std::min(p.num_hashed, full);
  c.last_hash = c.num_hashed == p.num_hashed ? p.last_hash : 0;
  if (c.num_hashed > 0 && c.last_hash == 0) c.num_hashed = 0;  // re-registering is harmless
  seqs_[child] = std::move(c);
  return true;
}

void KvCacheManager::Free(uint64_t seq) {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  const std::vector<int32_t>& t = it->second.table;
  for (auto b = t.rbegin(); b != t.rend(); ++b) pool_.Unref(*b);
  seqs_.erase(it);
}

std::span<const int32_t> KvCacheManager::BlockTable(uint64_t seq) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return {};
  return it->second.table;
}

}  // namespace kinfer::engine
