// What the router believes one replica holds in its prefix cache: the chained hashes of the KV
// blocks (engine/block_hash.h) of the prompts it sent there, least recently used evicted first,
// bounded by the replica's own block count so the belief ages out as the replica's cache does.
//
//   PrefixIndex index(/*capacity=*/4096);
//   size_t hit = index.Match(hashes);  // leading blocks the replica probably has
//   index.Insert(hashes);              // after sending the request there
//
// Not thread-safe: the pool guards it. Memory is bounded: at most capacity() entries.
#pragma once

#include <cstddef>
#include <cstdint>
#include <list>
#include <span>
#include <unordered_map>

namespace kinfer::router {

class PrefixIndex {
 public:
  explicit PrefixIndex(size_t capacity) : capacity_(capacity) {}

  // How many leading hashes of `hashes` are present: a chain stops at its first miss, as the
  // engine's prefix cache does. Does not touch the LRU order.
  size_t Match(std::span<const uint64_t> hashes) const;

  // Records that the blocks were sent to the replica: present ones become most recently used,
  // missing ones are added, and the least recently used go beyond capacity(). The first block
  // ends up the most recent, so a chain is evicted from its tail, never from its head.
  void Insert(std::span<const uint64_t> hashes);

  // Shrinks (evicting least recently used) or grows the bound; 0 empties the index.
  void SetCapacity(size_t capacity);
  void Clear();

  size_t size() const { return map_.size(); }
  size_t capacity() const { return capacity_; }
  // Approximate heap bytes per entry (list node plus hash-map node), for the index-size metric.
  static constexpr size_t kBytesPerEntry = 80;

 private:
  void EvictToCapacity();

  size_t capacity_;
  std::list<uint64_t> lru_;  // front: most recently used
  std::unordered_map<uint64_t, std::list<uint64_t>::iterator> map_;
};

}  // namespace kinfer::router
