#include "router/prefix_index.h"

namespace kinfer::router {

size_t PrefixIndex::Match(std::span<const uint64_t> hashes) const {
  size_t n = 0;
  while (n < hashes.size() && map_.count(hashes[n]) != 0) ++n;
  return n;
}

void PrefixIndex::Insert(std::span<const uint64_t> hashes) {
  if (capacity_ == 0) return;
  // Walk from the tail so that the head of the chain ends up most recently used.
  for (size_t i = hashes.size(); i-- > 0;) {
    auto it = map_.find(hashes[i]);
    if (it != map_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second);
    } else {
      lru_.push_front(hashes[i]);
      map_.emplace(hashes[i], lru_.begin());
    }
  }
  EvictToCapacity();
}

void PrefixIndex::SetCapacity(size_t capacity) {
  capacity_ = capacity;
  EvictToCapacity();
}

void PrefixIndex::Clear() {
  map_.clear();
  lru_.clear();
}

void PrefixIndex::EvictToCapacity() {
  while (map_.size() > capacity_) {
    map_.erase(lru_.back());
    lru_.pop_back();
  }
}

}  // namespace kinfer::router
