// The LoRA adapters an engine offers by name: registered from --lora-modules or at run time
// (/v1/load_lora_adapter), each loaded and checked against the engine's model when registered.
// At most --max-cpu-loras stay in memory, least recently used evicted first; an evicted adapter
// is read again from its path when next requested (and gets a new content hash if its files
// changed). Thread-safe: HTTP threads register and look up, requests hold what they got.
//
//   LoraRegistry loras(*model, {.max_rank = 16, .max_cpu_loras = 8});
//   KINFER_RETURN_IF_ERROR(loras.Add("sql", "/adapters/sql"));
//   KINFER_ASSIGN_OR_RETURN(auto adapter, loras.Get("sql"));   // request.lora = adapter
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "core/status.h"
#include "model/lora_adapter.h"
#include "model/model.h"

namespace kinfer::engine {

struct LoraRegistryOptions {
  int32_t max_rank = 16;      // --max-lora-rank
  int32_t max_cpu_loras = 0;  // adapters kept in memory; 0: all
};

class LoraRegistry {
 public:
  // `base` must outlive the registry.
  LoraRegistry(const model::Model& base, LoraRegistryOptions options);

  // Loads the adapter at `path` and registers it as `name`. A taken name is AlreadyExists unless
  // `replace` (then the new weights serve new requests; running ones keep the old).
  Status Add(const std::string& name, const std::string& path, bool replace = false);
  // Forgets `name` (NotFound if unknown); requests already holding it finish with it.
  Status Remove(const std::string& name);
  bool Has(const std::string& name) const;
  // The adapter registered as `name`, read again from disk if it was evicted. NotFound for an
  // unknown name.
  Result<std::shared_ptr<const model::LoraAdapter>> Get(const std::string& name);

  struct Entry {
    std::string name, path;
    bool loaded = false;  // in memory now
  };
  // In registration order.
  std::vector<Entry> List() const;

 private:
  struct Slot {
    std::string name, path;
    std::shared_ptr<const model::LoraAdapter> adapter;  // null while evicted
    uint64_t last_used = 0;
    uint64_t generation = 0;  // changes when the name is registered again
  };
  Slot* Find(const std::string& name);
  void EvictBeyondCapacity(const Slot* keep);  // with mu_ held

  const model::Model& base_;
  LoraRegistryOptions options_;
  mutable std::mutex mu_;
  std::vector<Slot> slots_;
  uint64_t clock_ = 0;
  uint64_t next_generation_ = 1;
};

}  // namespace kinfer::engine
