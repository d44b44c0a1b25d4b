#include "engine/block_pool.h"

#include "core/status.h"

namespace kinfer::engine {

BlockPool::BlockPool(int32_t num_blocks) : blocks_(static_cast<size_t>(num_blocks)) {
  for (int32_t b = 0; b < num_blocks; ++b) PushBack(b);
}

void BlockPool::PushBack(int32_t b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  blk.prev = tail_;
  blk.next = kNone;
  if (tail_ != kNone) {
    blocks_[static_cast<size_t>(tail_)].next = b;
  } else {
    head_ = b;
  }
  tail_ = b;
  ++num_free_;
}

void BlockPool::Remove(int32_t b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  if (blk.prev != kNone) {
    blocks_[static_cast<size_t>(blk.prev)].next = blk.next;
  } else {
    head_ = blk.next;
  }
  if (blk.next != kNone) {
    blocks_[static_cast<size_t>(blk.next)].prev = blk.prev;
  } else {
    tail_ = blk.prev;
  }
  blk.prev = blk.next = kNone;
  --num_free_;
}

void BlockPool::Uncache(int32_t b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  if (!blk.cached) return;
  auto it = cached_.find(blk.hash);
  if (it != cached_.end() && it->second == b) cached_.erase(it);
  blk.cached = false;
  blk.hash = BlockHash();
}

std::optional<int32_t> BlockPool::Allocate() {
  if (head_ == kNone) return std::nullopt;
  int32_t b = head_;
  Remove(b);
  Uncache(b);
  Block& blk = blocks_[static_cast<size_t>(b)];
  KINFER_CHECK(blk.ref_count == 0);
  blk.ref_count = 1;
  return b;
}

void BlockPool::Ref(int32_t b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  if (blk.ref_count == 0) Remove(b);
  ++blk.ref_count;
}

void BlockPool::Unref(int32_t b) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  KINFER_CHECK(blk.ref_count > 0);
  if (--blk.ref_count == 0) PushBack(b);
}

std::optional<int32_t> BlockPool::Lookup(const BlockHash& hash) const {
  auto it = cached_.find(hash);
  if (it == cached_.end()) return std::nullopt;
  return it->second;
}

void BlockPool::Cache(int32_t b, const BlockHash& hash) {
  Block& blk = blocks_[static_cast<size_t>(b)];
  KINFER_CHECK(blk.ref_count > 0);
  if (blk.cached || cached_.count(hash)) return;
  blk.cached = true;
  blk.hash = hash;
  cached_.emplace(hash, b);
}

std::vector<int32_t> BlockPool::FreeQueue() const {
  std::vector<int32_t> q;
  for (int32_t b = head_; b != kNone; b = blocks_[static_cast<size_t>(b)].next) q.push_back(b);
  return q;
}

void BlockPool::ResetPrefixCache() {
  for (int32_t b = 0; b < num_blocks(); ++b) Uncache(b);
}

}  // namespace kinfer::engine
