#include "engine/kv_cache_manager.h"

#include <algorithm>

#include "core/status.h"

namespace kinfer::engine {

KvCacheManager::KvCacheManager(int32_t num_blocks, int32_t block_size, bool enable_prefix_caching,
                               model::Backend* backend, int32_t sliding_blocks,
                               int32_t sliding_window)
    : pool_(num_blocks),
      sliding_pool_(sliding_window > 0 ? sliding_blocks : 0),
      block_size_(block_size),
      prefix_caching_(enable_prefix_caching),
      backend_(backend),
      sliding_window_(sliding_blocks > 0 ? sliding_window : 0) {}

double KvCacheManager::usage() const {
  return has_sliding() ? std::max(pool_.usage(), sliding_pool_.usage()) : pool_.usage();
}

int32_t KvCacheManager::FirstWindowBlock(int64_t pos) const {
  return static_cast<int32_t>(std::max<int64_t>(0, pos - sliding_window_ + 1) / block_size_);
}

PrefixHit KvCacheManager::FindCachedPrefix(std::span<const int32_t> tokens, uint64_t extra) const {
  PrefixHit hit;
  if (!prefix_caching_ || tokens.empty()) return hit;
  const size_t max_blocks = (tokens.size() - 1) / static_cast<size_t>(block_size_);
  uint64_t parent = 0;
  std::vector<BlockHash> hashes;
  for (size_t b = 0; b < max_blocks; ++b) {
    BlockHash h =
        HashBlock(parent, tokens.subspan(b * block_size_, static_cast<size_t>(block_size_)), extra);
    auto found = pool_.Lookup(h);
    if (!found) break;
    hit.blocks.push_back(*found);
    hashes.push_back(h);
    parent = h.value;
  }
  if (!has_sliding()) return hit;
  // The longest m <= hits whose first new token (at m * block_size) finds every sliding block
  // its window reaches; the blocks before those are not needed.
  for (size_t m = hit.blocks.size(); m > 0; --m) {
    const int32_t first = FirstWindowBlock(static_cast<int64_t>(m) * block_size_);
    std::vector<int32_t> sliding(m, -1);
    bool ok = true;
    for (size_t b = static_cast<size_t>(first); b < m && ok; ++b) {
      auto found = sliding_pool_.Lookup(hashes[b]);
      ok = found.has_value();
      if (ok) sliding[b] = *found;
    }
    if (ok) {
      hit.blocks.resize(m);
      hit.sliding = std::move(sliding);
      return hit;
    }
  }
  hit.blocks.clear();
  return hit;
}

bool KvCacheManager::Allocate(uint64_t seq, int32_t num_tokens, const PrefixHit& cached) {
  SeqBlocks& s = seqs_[seq];
  const int32_t have = static_cast<int32_t>(s.table.size() + cached.size());
  const int32_t need_total = (num_tokens + block_size_ - 1) / block_size_;
  const int32_t fresh = std::max(0, need_total - have);
  // Cached blocks that are free now stop being free once taken.
  int32_t cached_free = 0, sliding_cached_free = 0;
  for (int32_t b : cached.blocks) cached_free += pool_.ref_count(b) == 0;
  for (int32_t b : cached.sliding) sliding_cached_free += b >= 0 && sliding_pool_.ref_count(b) == 0;
  if (fresh > pool_.num_free() - cached_free ||
      (has_sliding() && fresh > sliding_pool_.num_free() - sliding_cached_free)) {
    if (s.table.empty()) seqs_.erase(seq);
    return false;
  }
  for (size_t i = 0; i < cached.blocks.size(); ++i) {
    pool_.Ref(cached.blocks[i]);
    s.table.push_back(cached.blocks[i]);
    if (has_sliding()) {
      const int32_t sb = cached.sliding[i];
      if (sb >= 0) sliding_pool_.Ref(sb);
      s.sliding.push_back(sb);
    }
  }
  if (!cached.empty() && s.num_hashed == 0) {
    // The taken prefix is already registered; continue the hash chain after it.
    s.num_hashed = static_cast<int32_t>(cached.size());
    s.last_hash = 0;  // recomputed lazily by CacheComputedBlocks from the tokens
  }
  for (int32_t i = 0; i < fresh; ++i) {
    s.table.push_back(*pool_.Allocate());
    if (has_sliding()) s.sliding.push_back(*sliding_pool_.Allocate());
  }
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
    if (has_sliding() && s.sliding[static_cast<size_t>(b)] >= 0) {
      sliding_pool_.Cache(s.sliding[static_cast<size_t>(b)], h);
    }
    s.last_hash = h.value;
    s.num_hashed = b + 1;
  }
}

void KvCacheManager::ReleaseOutOfWindow(uint64_t seq, int32_t num_computed) {
  if (!has_sliding()) return;
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return;
  std::vector<int32_t>& sliding = it->second.sliding;
  const int32_t first =
      std::min<int32_t>(FirstWindowBlock(num_computed), static_cast<int32_t>(sliding.size()));
  for (int32_t b = 0; b < first; ++b) {
    int32_t& id = sliding[static_cast<size_t>(b)];
    if (id < 0) continue;
    sliding_pool_.Unref(id);
    id = -1;
  }
}

bool KvCacheManager::Fork(uint64_t parent, uint64_t child, int32_t num_tokens) {
  const SeqBlocks& p = seqs_.at(parent);
  const int32_t full = num_tokens / block_size_;
  const int32_t partial = num_tokens % block_size_;
  if (partial > 0 && (pool_.num_free() == 0 || (has_sliding() && sliding_pool_.num_free() == 0))) {
    return false;
  }
  SeqBlocks c;
  for (int32_t b = 0; b < full; ++b) {
    pool_.Ref(p.table[static_cast<size_t>(b)]);
    c.table.push_back(p.table[static_cast<size_t>(b)]);
    if (has_sliding()) {
      const int32_t sb = p.sliding[static_cast<size_t>(b)];
      if (sb >= 0) sliding_pool_.Ref(sb);
      c.sliding.push_back(sb);
    }
  }
  if (partial > 0) {
    int32_t dst = *pool_.Allocate();
    if (backend_) {
      backend_->CopyKvSlots(model::KvBlockGroup::kGlobal, p.table[static_cast<size_t>(full)], dst,
                            partial);
    }
    c.table.push_back(dst);
    if (has_sliding()) {
      int32_t sdst = *sliding_pool_.Allocate();
      if (backend_) {
        backend_->CopyKvSlots(model::KvBlockGroup::kSliding, p.sliding[static_cast<size_t>(full)],
                              sdst, partial);
      }
      c.sliding.push_back(sdst);
    }
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
  const std::vector<int32_t>& sl = it->second.sliding;
  for (auto b = sl.rbegin(); b != sl.rend(); ++b) {
    if (*b >= 0) sliding_pool_.Unref(*b);
  }
  seqs_.erase(it);
}

std::span<const int32_t> KvCacheManager::BlockTable(uint64_t seq) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return {};
  return it->second.table;
}

std::span<const int32_t> KvCacheManager::SlidingBlockTable(uint64_t seq) const {
  auto it = seqs_.find(seq);
  if (it == seqs_.end()) return {};
  return it->second.sliding;
}

}  // namespace kinfer::engine
