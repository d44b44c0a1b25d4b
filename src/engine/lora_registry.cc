#include "engine/lora_registry.h"

#include <algorithm>

#include <fmt/ranges.h>

#include "core/log.h"

namespace kinfer::engine {
namespace {

Status AlreadyLoaded(const std::string& name) {
  return Status(StatusCode::kAlreadyExists,
                fmt::format("The lora adapter '{}' has already been loaded.", name));
}

}  // namespace

LoraRegistry::LoraRegistry(const model::Model& base, LoraRegistryOptions options)
    : base_(base), options_(options) {}

LoraRegistry::Slot* LoraRegistry::Find(const std::string& name) {
  for (Slot& s : slots_) {
    if (s.name == name) return &s;
  }
  return nullptr;
}

void LoraRegistry::EvictBeyondCapacity(const Slot* keep) {
  if (options_.max_cpu_loras <= 0) return;
  while (true) {
    int32_t loaded = 0;
    Slot* oldest = nullptr;
    for (Slot& s : slots_) {
      if (!s.adapter) continue;
      ++loaded;
      if (&s != keep && (!oldest || s.last_used < oldest->last_used)) oldest = &s;
    }
    if (loaded <= options_.max_cpu_loras || !oldest) return;
    KINFER_LOG_INFO("LoRA adapter '{}' leaves memory (--max-cpu-loras {})", oldest->name,
                    options_.max_cpu_loras);
    oldest->adapter.reset();
  }
}

Status LoraRegistry::Add(const std::string& name, const std::string& path, bool replace) {
  if (name.empty()) return InvalidArgumentError("a LoRA adapter needs a name");
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (Find(name) && !replace) {
      return AlreadyLoaded(name);
    }
  }
  // Read outside the lock: a large adapter must not stall requests for the others.
  auto adapter = model::LoadLoraAdapter(path, base_, {options_.max_rank});
  if (!adapter.ok()) return adapter.status();
  std::lock_guard<std::mutex> lk(mu_);
  Slot* s = Find(name);
  if (s && !replace) {
    return AlreadyLoaded(name);
  }
  if (!s) {
    slots_.push_back({});
    s = &slots_.back();
    s->name = name;
  }
  s->path = path;
  s->adapter = std::move(*adapter);
  s->last_used = ++clock_;
  s->generation = next_generation_++;
  KINFER_LOG_INFO("LoRA adapter '{}': {} ({}, rank {}, {}, {} KiB)", name, path,
                  s->adapter->format(), s->adapter->rank(),
                  fmt::join(s->adapter->target_names(), ","), s->adapter->bytes() >> 10);
  EvictBeyondCapacity(s);
  return Status::Ok();
}

Status LoraRegistry::Remove(const std::string& name) {
  std::lock_guard<std::mutex> lk(mu_);
  auto it =
      std::find_if(slots_.begin(), slots_.end(), [&](const Slot& s) { return s.name == name; });
  if (it == slots_.end()) return NotFoundError("The lora adapter '{}' cannot be found.", name);
  slots_.erase(it);
  return Status::Ok();
}

bool LoraRegistry::Has(const std::string& name) const {
  std::lock_guard<std::mutex> lk(mu_);
  return std::any_of(slots_.begin(), slots_.end(), [&](const Slot& s) { return s.name == name; });
}

Result<std::shared_ptr<const model::LoraAdapter>> LoraRegistry::Get(const std::string& name) {
  std::string path;
  uint64_t generation = 0;
  {
    std::lock_guard<std::mutex> lk(mu_);
    Slot* s = Find(name);
    if (!s) return NotFoundError("The lora adapter '{}' cannot be found.", name);
    s->last_used = ++clock_;
    if (s->adapter) return s->adapter;
    path = s->path;
    generation = s->generation;
  }
  auto adapter = model::LoadLoraAdapter(path, base_, {options_.max_rank});
  if (!adapter.ok()) {
    return adapter.status().WithPrefix(
        fmt::format("LoRA adapter '{}' could not be read again", name));
  }
  std::lock_guard<std::mutex> lk(mu_);
  Slot* s = Find(name);
  if (s && s->generation == generation) {
    if (!s->adapter) s->adapter = *adapter;  // unless another thread read it meanwhile
    s->last_used = ++clock_;
    EvictBeyondCapacity(s);
    return s->adapter;
  }
  return *adapter;  // unregistered or replaced meanwhile: serve this request with what it asked
}

std::vector<LoraRegistry::Entry> LoraRegistry::List() const {
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<Entry> out;
  for (const Slot& s : slots_) out.push_back({s.name, s.path, s.adapter != nullptr});
  return out;
}

}  // namespace kinfer::engine
