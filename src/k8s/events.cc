#include "k8s/events.h"

#include <random>

#include "k8s/objects.h"
#include "k8s/resource.h"

namespace kinfer::k8s {
namespace {

constexpr size_t kMaxRemembered = 4096;
constexpr auto kSeriesWindow = std::chrono::minutes(10);

std::string RandomHex(int n) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  static const char* kHex = "0123456789abcdef";
  std::string s;
  for (int i = 0; i < n; ++i) s.push_back(kHex[rng() & 15]);
  return s;
}

}  // namespace

EventRecorder::EventRecorder(Client& client, EventSource source)
    : client_(client), source_(std::move(source)) {}

Status EventRecorder::Record(const Json& regarding, EventType type, std::string_view reason,
                             std::string_view action, std::string note, std::stop_token stop) {
  if (note.size() > 1024) note.resize(1024);
  const Json& meta = regarding.contains("metadata") ? regarding["metadata"] : Json::object();
  std::string name = meta.value("name", "");
  std::string ns = meta.value("namespace", "");
  std::string uid = meta.value("uid", "");
  if (name.empty()) return InvalidArgumentError("event {}: the object has no name", reason);
  if (ns.empty()) ns = "default";  // events about cluster-scoped objects
  std::string type_name = type == EventType::kNormal ? "Normal" : "Warning";
  std::string now = FormatMicroTime(std::chrono::system_clock::now());
  std::string key =
      fmt::format("{}|{}|{}|{}", uid.empty() ? ns + "/" + name : uid, type_name, reason, note);

  std::string series_name;
  int32_t series_count = 0;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = seen_.find(key);
    if (it != seen_.end() && std::chrono::steady_clock::now() - it->second.first < kSeriesWindow) {
      series_name = it->second.name;
      series_count = ++it->second.count;
      lru_.erase(it->second.lru);
      lru_.push_front(key);
      it->second.lru = lru_.begin();
    } else if (it != seen_.end()) {
      lru_.erase(it->second.lru);
      seen_.erase(it);
    }
  }
  if (!series_name.empty()) {
    Json patch = {{"series", {{"count", series_count}, {"lastObservedTime", now}}}};
    auto r = client_.Patch(kEvents, ns, series_name, PatchType::kMerge, patch, {},
                           source_.controller, stop);
    if (r.ok()) return Status::Ok();
    if (!IsNotFound(r.status())) return r.status();
    // The event expired (the API server keeps them an hour): start a new one.
  }

  Json regarding_ref = {{"apiVersion", regarding.value("apiVersion", "")},
                        {"kind", regarding.value("kind", "")},
                        {"name", name},
                        {"namespace", meta.value("namespace", "")}};
  if (!uid.empty()) regarding_ref["uid"] = uid;
  if (meta.contains("resourceVersion")) regarding_ref["resourceVersion"] = meta["resourceVersion"];
  std::string event_name = fmt::format("{}.{}", name, RandomHex(16));
  Json event = {{"apiVersion", "events.k8s.io/v1"},
                {"kind", "Event"},
                {"metadata", {{"name", event_name}, {"namespace", ns}}},
                {"eventTime", now},
                {"reportingController", source_.controller},
                {"reportingInstance", source_.instance.empty() ? "kinfer" : source_.instance},
                {"action", action},
                {"reason", reason},
                {"type", type_name},
                {"note", note},
                {"regarding", regarding_ref}};
  auto created = client_.Create(kEvents, ns, event, source_.controller, stop);
  if (!created.ok()) return created.status();

  std::lock_guard<std::mutex> lock(mu_);
  if (auto old = seen_.find(key); old != seen_.end()) {
    lru_.erase(old->second.lru);
    seen_.erase(old);
  }
  lru_.push_front(key);
  seen_[key] = Seen{event_name, ns, 1, std::chrono::steady_clock::now(), lru_.begin()};
  while (seen_.size() > kMaxRemembered) {
    seen_.erase(lru_.back());
    lru_.pop_back();
  }
  return Status::Ok();
}

}  // namespace kinfer::k8s
