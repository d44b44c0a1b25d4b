// The memory that holds every sequence's keys and values: a fixed number of blocks of
// `block_size` token slots, per layer. Which block belongs to which sequence is the engine's
// business (engine/block_pool); this is only the arena, addressed by (layer, block, head, slot).
//
// Models that interleave sliding-window and global layers (Gemma) keep the sliding layers in a
// second group of blocks with its own count and ids: a sequence holds only the blocks its
// window can still reach there, while the global layers keep every position.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"

namespace kinfer::model {

// The two groups of blocks: every layer's when there is no sliding group, else the global
// layers'; and the sliding-window layers'.
enum class KvBlockGroup : uint8_t { kGlobal, kSliding };

struct KvStoreConfig {
  int64_t num_layers = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 16;
  int64_t num_blocks = 0;
  DType dtype = DType::kF16;  // kF16 or kF32
  // Layers in the sliding-window group (empty: none). Their blocks are ids
  // [0, num_sliding_blocks) of their own; the other layers use [0, num_blocks).
  std::vector<bool> sliding_layers = {};
  int64_t num_sliding_blocks = 0;

  bool InSlidingGroup(int64_t layer) const {
    return !sliding_layers.empty() && sliding_layers[static_cast<size_t>(layer)];
  }
  int64_t NumSlidingLayers() const;
  KvBlockGroup GroupOf(int64_t layer) const {
    return InSlidingGroup(layer) ? KvBlockGroup::kSliding : KvBlockGroup::kGlobal;
  }
  // Blocks of `layer`'s group.
  int64_t BlocksOf(int64_t layer) const {
    return InSlidingGroup(layer) ? num_sliding_blocks : num_blocks;
  }
};

class KvStore {
 public:
  // Allocates and commits the arena.
  static Result<std::unique_ptr<KvStore>> Create(const KvStoreConfig& config);
  ~KvStore();
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  const KvStoreConfig& config() const { return config_; }
  // Bytes per block across the global group's layers (all layers without a sliding group),
  // keys and values: what one block of a sequence costs there.
  size_t block_bytes() const {
    return 2 * static_cast<size_t>(config_.num_layers - config_.NumSlidingLayers()) *
           layer_block_bytes_;
  }
  // The same for one block of the sliding-window group.
  size_t sliding_block_bytes() const {
    return 2 * static_cast<size_t>(config_.NumSlidingLayers()) * layer_block_bytes_;
  }
  size_t total_bytes() const { return bytes_; }
  // Bytes needed for `num_blocks` blocks of a model shape.
  static size_t BytesFor(const KvStoreConfig& config);

  // Keys of (layer, block): [num_kv_heads][block_size][head_dim] elements of dtype.
  void* keys(int64_t layer, int64_t block) { return At(layer, block, 0); }
  void* values(int64_t layer, int64_t block) { return At(layer, block, 1); }
  const void* keys(int64_t layer, int64_t block) const { return At(layer, block, 0); }
  const void* values(int64_t layer, int64_t block) const { return At(layer, block, 1); }

 private:
  explicit KvStore(const KvStoreConfig& c);
  void* At(int64_t layer, int64_t block, int kv) const {
    size_t index = layer_start_[static_cast<size_t>(layer)] +
                   static_cast<size_t>(kv) * static_cast<size_t>(config_.BlocksOf(layer)) +
                   static_cast<size_t>(block);
    return base_ + index * layer_block_bytes_;
  }

  KvStoreConfig config_;
  size_t layer_block_bytes_ = 0;     // one layer, keys or values, one block
  std::vector<size_t> layer_start_;  // per layer: index of its first (keys, block 0) unit
  size_t bytes_ = 0;
  uint8_t* base_ = nullptr;
};

}  // namespace kinfer::model
