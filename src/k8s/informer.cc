#include "k8s/informer.h"

#include <pthread.h>

#include <set>

#include "core/log.h"
#include "k8s/backoff.h"

namespace kinfer::k8s {
namespace {

bool SleepFor(std::chrono::milliseconds d, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock<std::mutex> lock(mu);
  return !cv.wait_for(lock, stop, d, [] { return false; });
}

}  // namespace

std::string ObjectKey(std::string_view ns, std::string_view name) {
  if (ns.empty()) return std::string(name);
  std::string k(ns);
  k += "/";
  k += name;
  return k;
}

Informer::Informer(Client& client, InformerOptions options)
    : client_(client), options_(std::move(options)) {
  if (options_.name.empty()) options_.name = options_.type.GroupResource();
}

Informer::~Informer() { Stop(); }

void Informer::AddHandlers(InformerHandlers handlers) {
  KINFER_CHECK(!thread_.joinable());
  handlers_.push_back(std::move(handlers));
}

void Informer::Start() {
  KINFER_CHECK(!thread_.joinable());
  thread_ = std::jthread([this](std::stop_token stop) {
    std::string tname = ("inf-" + options_.name).substr(0, 15);
    pthread_setname_np(pthread_self(), tname.c_str());
    Run(stop);
  });
}

void Informer::Stop() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
}

bool Informer::WaitForSync(std::chrono::milliseconds timeout, std::stop_token stop) const {
  std::unique_lock<std::mutex> lock(mu_);
  return synced_cv_.wait_for(lock, stop, timeout, [this] { return synced_.load(); });
}

ObjectPtr Informer::Get(std::string_view ns, std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = cache_.find(ObjectKey(options_.type.namespaced ? ns : "", name));
  return it == cache_.end() ? nullptr : it->second;
}

std::vector<ObjectPtr> Informer::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ObjectPtr> out;
  out.reserve(cache_.size());
  for (const auto& [k, v] : cache_) out.push_back(v);
  return out;
}

std::vector<ObjectPtr> Informer::List(const std::function<bool(const Object&)>& pred) const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<ObjectPtr> out;
  for (const auto& [k, v] : cache_) {
    if (pred(*v)) out.push_back(v);
  }
  return out;
}

size_t Informer::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return cache_.size();
}

std::string Informer::resource_version() const {
  std::lock_guard<std::mutex> lock(mu_);
  return resource_version_;
}

InformerStats Informer::stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return stats_;
}

Result<ObjectPtr> Informer::MakeObject(Json json) const {
  if (json.contains("metadata") && json["metadata"].is_object()) {
    json["metadata"].erase("managedFields");
  }
  auto obj = std::make_shared<Object>();
  KINFER_ASSIGN_OR_RETURN(obj->meta, ParseObjectMeta(json, options_.name));
  if (obj->meta.name.empty())
    return InvalidArgumentError("{}: an object without a name", options_.name);
  obj->json = std::move(json);
  return ObjectPtr(std::move(obj));
}

void Informer::Upsert(ObjectPtr obj) {
  std::string key = ObjectKey(obj->meta.namespace_, obj->meta.name);
  ObjectPtr old;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto [it, inserted] = cache_.try_emplace(key, obj);
    if (!inserted) {
      old = it->second;
      it->second = obj;
    }
  }
  for (const InformerHandlers& h : handlers_) {
    if (old == nullptr) {
      if (h.on_add) h.on_add(obj);
    } else if (h.on_update) {
      h.on_update(old, obj);
    }
  }
}

void Informer::Remove(ObjectPtr obj) {
  std::string key = ObjectKey(obj->meta.namespace_, obj->meta.name);
  {
    std::lock_guard<std::mutex> lock(mu_);
    cache_.erase(key);
  }
  for (const InformerHandlers& h : handlers_) {
    if (h.on_delete) h.on_delete(obj);
  }
}

Status Informer::ListAndReplace(std::stop_token stop, RelistReason reason) {
  ListOptions lo;
  lo.label_selector = options_.label_selector;
  lo.field_selector = options_.field_selector;
  lo.limit = options_.page_size;
  KINFER_ASSIGN_OR_RETURN(ObjectList list,
                          client_.List(options_.type, options_.namespace_, lo, stop));

  std::map<std::string, ObjectPtr> fresh;
  for (Json& item : list.items) {
    auto obj = MakeObject(std::move(item));
    if (!obj.ok()) {
      KINFER_LOG_WARN("informer {}: skipping an object: {}", options_.name, obj.status().message());
      continue;
    }
    std::string key = ObjectKey((*obj)->meta.namespace_, (*obj)->meta.name);
    fresh.emplace(std::move(key), std::move(*obj));
  }
  // What changed against the cache, computed under the lock, delivered after it.
  std::vector<ObjectPtr> added, deleted;
  std::vector<std::pair<ObjectPtr, ObjectPtr>> updated;
  {
    std::lock_guard<std::mutex> lock(mu_);
    for (const auto& [key, obj] : cache_) {
      if (!fresh.contains(key)) deleted.push_back(obj);
    }
    for (const auto& [key, obj] : fresh) {
      auto it = cache_.find(key);
      if (it == cache_.end()) {
        added.push_back(obj);
      } else if (it->second->meta.resource_version != obj->meta.resource_version ||
                 it->second->meta.uid != obj->meta.uid) {
        updated.emplace_back(it->second, obj);
      }
    }
    cache_ = std::move(fresh);
    resource_version_ = list.resource_version;
    ++stats_.lists;
    if (reason == RelistReason::kGone) ++stats_.relists_gone;
    if (reason == RelistReason::kReconnect) ++stats_.relists_reconnect;
    if (reason == RelistReason::kPeriodic) ++stats_.relists_periodic;
  }
  for (const InformerHandlers& h : handlers_) {
    for (const ObjectPtr& o : deleted) {
      if (h.on_delete) h.on_delete(o);
    }
    for (const ObjectPtr& o : added) {
      if (h.on_add) h.on_add(o);
    }
    for (const auto& [o, n] : updated) {
      if (h.on_update) h.on_update(o, n);
    }
  }
  if (!deleted.empty()) {
    KINFER_LOG_INFO("informer {}: relist found {} object(s) deleted while not watching",
                    options_.name, deleted.size());
  }
  if (!synced_.exchange(true)) {
    std::lock_guard<std::mutex> lock(mu_);
    synced_cv_.notify_all();
  }
  return Status::Ok();
}

Status Informer::WatchOnce(std::stop_token stop, std::chrono::steady_clock::time_point relist_at) {
  WatchOptions wo;
  wo.label_selector = options_.label_selector;
  wo.field_selector = options_.field_selector;
  wo.resource_version = resource_version();
  auto min = std::chrono::duration_cast<std::chrono::milliseconds>(options_.min_watch_timeout);
  auto timeout = RandomBetween(min, 2 * min);
  if (relist_at != std::chrono::steady_clock::time_point::max()) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
        relist_at - std::chrono::steady_clock::now());
    timeout = std::min(timeout, left);
  }
  wo.timeout_seconds = std::max<int>(1, static_cast<int>((timeout.count() + 999) / 1000));
  {
    std::lock_guard<std::mutex> lock(mu_);
    ++stats_.watches;
  }
  return client_.Watch(
      options_.type, options_.namespace_, wo,
      [&](WatchEvent&& e) -> Status {
        std::string rv;
        if (e.object.contains("metadata") && e.object["metadata"].is_object()) {
          rv = e.object["metadata"].value("resourceVersion", "");
        }
        if (e.type != WatchEventType::kBookmark) {
          auto obj = MakeObject(std::move(e.object));
          if (!obj.ok()) {
            KINFER_LOG_WARN("informer {}: skipping a {} event: {}", options_.name,
                            WatchEventTypeName(e.type), obj.status().message());
          } else if (e.type == WatchEventType::kDeleted) {
            Remove(*obj);
          } else {
            Upsert(*obj);
          }
        }
        std::lock_guard<std::mutex> lock(mu_);
        if (!rv.empty()) resource_version_ = rv;
        if (e.type != WatchEventType::kBookmark) ++stats_.events;
        return Status::Ok();
      },
      stop);
}

void Informer::Run(std::stop_token stop) {
  Backoff backoff({.initial = options_.backoff_initial, .max = options_.backoff_max});
  RelistReason reason = RelistReason::kInitial;
  bool need_list = true;
  using Clock = std::chrono::steady_clock;
  Clock::time_point relist_at = Clock::time_point::max();
  while (!stop.stop_requested()) {
    if (need_list) {
      Status s = ListAndReplace(stop, reason);
      if (stop.stop_requested()) return;
      if (!s.ok()) {
        {
          std::lock_guard<std::mutex> lock(mu_);
          ++stats_.errors;
        }
        auto wait = backoff.Next();
        KINFER_LOG_WARN("informer {}: list failed, retrying in {} ms: {}", options_.name,
                        wait.count(), s.message());
        if (!SleepFor(wait, stop)) return;
        continue;
      }
      need_list = false;
      if (options_.relist_period.count() > 0) relist_at = Clock::now() + options_.relist_period;
    }
    auto started = Clock::now();
    Status s = WatchOnce(stop, relist_at);
    if (stop.stop_requested()) return;
    if (s.ok()) {
      // The server ended the watch at its timeout: resume, or relist if one is due.
      if (Clock::now() - started > std::chrono::seconds(1)) backoff.Reset();
      if (Clock::now() >= relist_at) {
        need_list = true;
        reason = RelistReason::kPeriodic;
      } else {
        std::lock_guard<std::mutex> lock(mu_);
        ++stats_.resumes;
      }
      continue;
    }
    if (IsGone(s)) {
      KINFER_LOG_INFO("informer {}: {}; relisting", options_.name, s.message());
      need_list = true;
      reason = RelistReason::kGone;
      continue;
    }
    {
      std::lock_guard<std::mutex> lock(mu_);
      ++stats_.errors;
    }
    auto wait = backoff.Next();
    KINFER_LOG_WARN("informer {}: watch failed, {} in {} ms: {}", options_.name,
                    options_.relist_on_reconnect ? "relisting" : "resuming", wait.count(),
                    s.message());
    if (options_.relist_on_reconnect) {
      need_list = true;
      reason = RelistReason::kReconnect;
    }
    if (!SleepFor(wait, stop)) return;
  }
}

}  // namespace kinfer::k8s
