#include "router/backend_pool.h"

#include <algorithm>
#include <span>

#include "engine/block_hash.h"

namespace kinfer::router {
namespace {

uint64_t NameHash(const std::string& s) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a: stable across runs and routers
  for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
  return h;
}

}  // namespace

std::vector<uint64_t> PrefixHashes(const std::vector<int32_t>& tokens, int32_t block_size,
                                   uint64_t extra) {
  std::vector<uint64_t> out;
  if (block_size <= 0) return out;
  const size_t bs = static_cast<size_t>(block_size);
  out.reserve(tokens.size() / bs);
  uint64_t parent = 0;
  for (size_t begin = 0; begin + bs <= tokens.size(); begin += bs) {
    parent =
        engine::HashBlockValue(parent, std::span<const int32_t>(tokens).subspan(begin, bs), extra);
    out.push_back(parent);
  }
  return out;
}

Backend::Backend(DiscoveredEndpoint d, size_t index_capacity)
    : endpoint_(std::move(d.endpoint)),
      name_(endpoint_.ToString()),
      id_(NameHash(name_)),
      pod_(std::move(d.pod)),
      index_(index_capacity) {
  health_.SetDiscovered(d.ready, d.terminating);
}

BackendPool::BackendPool(PoolOptions options)
    : options_(options),
      picker_(Picker::Create(options_.policy, options_.picker)),
      block_size_(options_.default_block_size) {}

size_t BackendPool::IndexCapacity(const Backend& b) const {
  if (!b.load_.num_blocks)
    return std::min(options_.index_default_blocks, options_.index_max_blocks);
  const double want = static_cast<double>(*b.load_.num_blocks) * options_.index_factor;
  return std::min(options_.index_max_blocks, static_cast<size_t>(std::max(0.0, want)));
}

std::vector<Endpoint> BackendPool::SetEndpoints(const std::vector<DiscoveredEndpoint>& endpoints) {
  std::vector<Endpoint> left;
  bool may_route = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    std::vector<std::shared_ptr<Backend>> next;
    for (const DiscoveredEndpoint& d : endpoints) {
      const std::string name = d.endpoint.ToString();
      auto it = std::find_if(backends_.begin(), backends_.end(),
                             [&](const auto& b) { return b->name_ == name; });
      if (it != backends_.end()) {
        Backend& b = **it;
        const bool was = b.health_.Routable(Clock::now());
        b.health_.SetDiscovered(d.ready, d.terminating);
        if (!d.pod.empty()) b.pod_ = d.pod;
        may_route |= !was && b.health_.Routable(Clock::now());
        next.push_back(*it);
      } else if (std::none_of(next.begin(), next.end(),
                              [&](const auto& b) { return b->name_ == name; })) {
        auto b = std::make_shared<Backend>(
            d, std::min(options_.index_default_blocks, options_.index_max_blocks));
        b->health_.options = options_.health;
        next.push_back(std::move(b));
      }
    }
    for (const auto& b : backends_) {
      if (std::find(next.begin(), next.end(), b) == next.end()) {
        b->removed_ = true;
        left.push_back(b->endpoint_);
      }
    }
    backends_ = std::move(next);
  }
  if (may_route) NotifyRoutable();
  return left;
}

int BackendPool::EjectedLocked(Clock::time_point now) const {
  int n = 0;
  for (const auto& b : backends_) n += b->health_.Ejected(now) ? 1 : 0;
  return n;
}

std::optional<BackendPool::Pick> BackendPool::Choose(const RequestInfo& info,
                                                     const std::vector<uint64_t>& exclude,
                                                     std::optional<uint64_t> session) {
  const Clock::time_point now = Clock::now();
  std::lock_guard<std::mutex> lk(mu_);
  candidates_.clear();
  candidate_backends_.clear();
  int routable = 0;
  for (const auto& b : backends_) {
    if (!b->health_.Routable(now)) continue;
    ++routable;
    if (std::find(exclude.begin(), exclude.end(), b->id_) != exclude.end()) continue;
    Candidate c;
    c.id = b->id_;
    c.inflight = b->inflight_;
    c.fresh = b->load_.has_load() && now - b->load_at_ <= options_.metrics_max_age;
    if (c.fresh) {
      c.waiting = *b->load_.waiting;
      c.running = *b->load_.running;
      c.kv_usage = b->load_.kv_usage.value_or(0);
    }
    if (!info.adapter.empty() && c.fresh) {
      const auto& loaded = b->load_.lora_adapters;
      c.adapter_loaded = std::find(loaded.begin(), loaded.end(), info.adapter) != loaded.end();
    }
    candidates_.push_back(c);
    candidate_backends_.push_back(b.get());
  }
  if (candidates_.empty()) return std::nullopt;

  hashes_.clear();
  if (picker_->policy() == Policy::kPrefix && !info.prompt.empty()) {
    // Real tokens hash in the engine's block size; pseudo-tokens (bytes) in blocks of 16.
    const int32_t bs = info.exact_tokens ? block_size_ : 16;
    // The adapter keys the router's index apart from the base model's, as it keys the engine's
    // cache (the engine uses the adapter's content hash; the name is what the router knows).
    hashes_ = PrefixHashes(info.prompt, bs, engine::HashExtraKeys(info.cache_salt, info.adapter));
    for (size_t i = 0; i < candidates_.size(); ++i) {
      const PrefixIndex& index = candidate_backends_[i]->index_;
      candidates_[i].matched_blocks = index.Match(hashes_);
      candidates_[i].index_fill = index.capacity() == 0 ? 1.0
                                                        : static_cast<double>(index.size()) /
                                                              static_cast<double>(index.capacity());
    }
  }
  PickRequest req;
  req.prompt_blocks = hashes_.size();
  req.session = session;
  const size_t i = picker_->Pick(candidates_, req);
  Backend* chosen = candidate_backends_[i];
  chosen->inflight_++;
  if (!hashes_.empty()) chosen->index_.Insert(hashes_);
  Pick p;
  for (const auto& b : backends_) {
    if (b.get() == chosen) p.backend = b;
  }
  p.prompt_blocks = hashes_.size();
  p.matched_blocks = candidates_[i].matched_blocks;
  p.routable = routable;
  return p;
}

bool BackendPool::Release(Backend& b, Outcome outcome) {
  const Clock::time_point now = Clock::now();
  std::lock_guard<std::mutex> lk(mu_);
  b.inflight_--;
  if (b.removed_) return false;
  return b.health_.OnOutcome(outcome, now, EjectedLocked(now), static_cast<int>(backends_.size()));
}

bool BackendPool::BeginProbe(Backend& b) {
  std::lock_guard<std::mutex> lk(mu_);
  if (b.probing_) return false;
  b.probing_ = true;
  return true;
}

bool BackendPool::BeginScrape(Backend& b) {
  std::lock_guard<std::mutex> lk(mu_);
  if (b.scraping_) return false;
  b.scraping_ = true;
  return true;
}

void BackendPool::OnProbe(Backend& b, bool ready) {
  const Clock::time_point now = Clock::now();
  bool became = false;
  {
    std::lock_guard<std::mutex> lk(mu_);
    b.probing_ = false;
    const bool was = b.health_.Routable(now);
    b.health_.OnProbe(ready, now);
    became = !was && b.health_.Routable(now);
  }
  if (became) NotifyRoutable();
}

void BackendPool::OnScrape(Backend& b, const std::optional<ReplicaLoad>& load,
                           bool connect_failed) {
  const Clock::time_point now = Clock::now();
  std::lock_guard<std::mutex> lk(mu_);
  b.scraping_ = false;
  if (connect_failed) {
    // Nothing listens there any more: as good as a failed probe, and sooner.
    b.health_.OnProbe(false, now);
    return;
  }
  if (!load) return;
  b.load_ = *load;
  b.load_at_ = now;
  if (load->block_size && *load->block_size != block_size_) {
    // The engine's block size: hashes made with another one match nothing, so start over.
    block_size_ = *load->block_size;
    for (const auto& x : backends_) x->index_.Clear();
  }
  b.index_.SetCapacity(IndexCapacity(b));
}

std::vector<std::shared_ptr<Backend>> BackendPool::Backends() const {
  std::lock_guard<std::mutex> lk(mu_);
  return backends_;
}

std::vector<std::shared_ptr<Backend>> BackendPool::Routable() const {
  const Clock::time_point now = Clock::now();
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<std::shared_ptr<Backend>> out;
  for (const auto& b : backends_) {
    if (b->health_.Routable(now)) out.push_back(b);
  }
  return out;
}

std::vector<BackendView> BackendPool::Views() const {
  const Clock::time_point now = Clock::now();
  std::lock_guard<std::mutex> lk(mu_);
  std::vector<BackendView> out;
  for (const auto& b : backends_) {
    BackendView v;
    v.name = b->name_;
    v.pod = b->pod_;
    v.inflight = b->inflight_;
    v.routable = b->health_.Routable(now);
    v.probe_ready = b->health_.probe_ready();
    v.ejected = b->health_.Ejected(now);
    v.terminating = b->health_.terminating();
    v.ejections = b->health_.ejections();
    if (b->load_at_ != Clock::time_point()) {
      v.metrics_age_seconds = std::chrono::duration<double>(now - b->load_at_).count();
    }
    v.waiting = b->load_.waiting.value_or(0);
    v.running = b->load_.running.value_or(0);
    v.kv_usage = b->load_.kv_usage.value_or(0);
    v.index_blocks = b->index_.size();
    out.push_back(std::move(v));
  }
  return out;
}

int BackendPool::routable() const {
  const Clock::time_point now = Clock::now();
  std::lock_guard<std::mutex> lk(mu_);
  int n = 0;
  for (const auto& b : backends_) n += b->health_.Routable(now) ? 1 : 0;
  return n;
}

size_t BackendPool::size() const {
  std::lock_guard<std::mutex> lk(mu_);
  return backends_.size();
}

int32_t BackendPool::block_size() const {
  std::lock_guard<std::mutex> lk(mu_);
  return block_size_;
}

void BackendPool::OnRoutable(std::function<void()> fn) {
  std::lock_guard<std::mutex> lk(mu_);
  on_routable_ = std::move(fn);
}

void BackendPool::NotifyRoutable() {
  std::function<void()> fn;
  {
    std::lock_guard<std::mutex> lk(mu_);
    fn = on_routable_;
  }
  if (fn) fn();
}

}  // namespace kinfer::router
