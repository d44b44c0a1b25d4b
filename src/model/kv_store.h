// The memory that holds every sequence's keys and values: a fixed number of blocks of
// `block_size` token slots, per layer. Which block belongs to which sequence is the engine's
// business (engine/block_pool); this is only the arena, addressed by (layer, block, head, slot).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>

#include "core/dtype.h"
#include "core/status.h"

namespace kinfer::model {

struct KvStoreConfig {
  int64_t num_layers = 0;
  int64_t num_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t block_size = 16;
  int64_t num_blocks = 0;
  DType dtype = DType::kF16;  // kF16 or kF32
};

class KvStore {
 public:
  // Allocates and commits the arena.
  static Result<std::unique_ptr<KvStore>> Create(const KvStoreConfig& config);
  ~KvStore();
  KvStore(const KvStore&) = delete;
  KvStore& operator=(const KvStore&) = delete;

  const KvStoreConfig& config() const { return config_; }
  // Bytes per block across all layers, keys and values: what one block of a sequence costs.
  size_t block_bytes() const {
    return 2 * static_cast<size_t>(config_.num_layers) * layer_block_bytes_;
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
    size_t index = (static_cast<size_t>(layer) * 2 + kv) * static_cast<size_t>(config_.num_blocks) +
                   static_cast<size_t>(block);
    return base_ + index * layer_block_bytes_;
  }

  KvStoreConfig config_;
  size_t layer_block_bytes_ = 0;  // one layer, keys or values, one block
  size_t bytes_ = 0;
  uint8_t* base_ = nullptr;
};

}  // namespace kinfer::model
