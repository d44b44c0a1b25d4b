#include "model/kv_store.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>

namespace kinfer::model {

namespace {
size_t ElementBytes(DType t) { return t == DType::kF32 ? 4 : 2; }
}  // namespace

int64_t KvStoreConfig::NumSlidingLayers() const {
  int64_t n = 0;
  for (bool s : sliding_layers) n += s;
  return n;
}

KvStore::KvStore(const KvStoreConfig& c) : config_(c) {
  layer_block_bytes_ =
      static_cast<size_t>(c.num_kv_heads * c.block_size * c.head_dim) * ElementBytes(c.dtype);
  size_t units = 0;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    layer_start_.push_back(units);
    units += 2 * static_cast<size_t>(c.BlocksOf(l));
  }
  bytes_ = BytesFor(c);
}

size_t KvStore::BytesFor(const KvStoreConfig& c) {
  size_t blocks = 0;  // layer-blocks of keys, then as many of values
  for (int64_t l = 0; l < c.num_layers; ++l) blocks += static_cast<size_t>(c.BlocksOf(l));
  return 2 * blocks * static_cast<size_t>(c.num_kv_heads * c.block_size * c.head_dim) *
         ElementBytes(c.dtype);
}

Result<std::unique_ptr<KvStore>> KvStore::Create(const KvStoreConfig& config) {
  if (config.dtype != DType::kF16 && config.dtype != DType::kF32) {
    return InvalidArgumentError("KV cache dtype must be f16 or f32, got {}",
                                DTypeName(config.dtype));
  }
  if (config.num_layers <= 0 || config.num_kv_heads <= 0 || config.head_dim <= 0 ||
      config.block_size <= 0 || config.num_blocks <= 0) {
    return InvalidArgumentError(
        "KV cache needs positive sizes: {} layers, {} heads, head dim {}, block size {}, {} blocks",
        config.num_layers, config.num_kv_heads, config.head_dim, config.block_size,
        config.num_blocks);
  }
  if (!config.sliding_layers.empty() &&
      (static_cast<int64_t>(config.sliding_layers.size()) != config.num_layers ||
       config.num_sliding_blocks <= 0)) {
    return InvalidArgumentError(
        "KV cache: sliding group of {} layer flags and {} blocks for {} layers",
        config.sliding_layers.size(), config.num_sliding_blocks, config.num_layers);
  }
  std::unique_ptr<KvStore> kv(new KvStore(config));
  // Populated up front: the cache's memory is committed at start-up, where a too-small memory
  // limit fails at once, rather than growing as the LRU free queue cycles through blocks.
  void* p = ::mmap(nullptr, kv->bytes_, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) {
    return ResourceExhaustedError("cannot reserve {} bytes for the KV cache: {}", kv->bytes_,
                                  std::strerror(errno));
  }
  kv->base_ = static_cast<uint8_t*>(p);
  return kv;
}

KvStore::~KvStore() {
  if (base_) ::munmap(base_, bytes_);
}

}  // namespace kinfer::model
