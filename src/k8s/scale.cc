#include "k8s/scale.h"

#include <pthread.h>

#include <fmt/format.h>

#include "core/log.h"
#include "k8s/backoff.h"

namespace kinfer::k8s {
namespace {

constexpr std::string_view kChangedMarker = "replicas changed: ";

// The counts and the selector (spec.replicas is absent at 0); metadata is not needed here.
Result<Scale> ReadScale(const Json& j, std::string_view what) {
  Scale s;
  const std::string src = fmt::format("{}/scale", what);
  const Json empty = Json::object();
  const Json& spec = j.contains("spec") && j["spec"].is_object() ? j["spec"] : empty;
  const Json& status = j.contains("status") && j["status"].is_object() ? j["status"] : empty;
  KINFER_ASSIGN_OR_RETURN(int64_t spec_replicas, JsonInt(spec, "replicas", 0, src + ": spec"));
  KINFER_ASSIGN_OR_RETURN(int64_t status_replicas,
                          JsonInt(status, "replicas", 0, src + ": status"));
  KINFER_ASSIGN_OR_RETURN(s.selector, JsonString(status, "selector", "", src + ": status"));
  if (spec_replicas < 0 || spec_replicas > INT32_MAX || status_replicas < 0 ||
      status_replicas > INT32_MAX) {
    return DataLossError("{}: replicas out of range", src);
  }
  s.spec_replicas = static_cast<int32_t>(spec_replicas);
  s.status_replicas = static_cast<int32_t>(status_replicas);
  return s;
}

}  // namespace

Result<Scale> GetScale(Client& client, const ResourceType& type, std::string_view ns,
                       std::string_view name, std::stop_token stop) {
  KINFER_ASSIGN_OR_RETURN(Json j, client.Get(type, ns, name, "scale", stop));
  return ReadScale(j, fmt::format("{} {}/{}", type.kind, ns, name));
}

Status SetReplicasIf(Client& client, const ResourceType& type, std::string_view ns,
                     std::string_view name, int32_t from, int32_t to,
                     std::string_view field_manager, std::stop_token stop) {
  // autoscaling/v1 Scale omits replicas when it is 0 ("spec": {}), so a `test` of
  // /spec/replicas == 0 can never pass (the path is missing): at 0 the test is spec == {} and
  // the write an `add`, which creates the member.
  const Json patch =
      from == 0 ? Json::array({{{"op", "test"}, {"path", "/spec"}, {"value", Json::object()}},
                               {{"op", "add"}, {"path", "/spec/replicas"}, {"value", to}}})
                : Json::array({{{"op", "test"}, {"path", "/spec/replicas"}, {"value", from}},
                               {{"op", "replace"}, {"path", "/spec/replicas"}, {"value", to}}});
  Result<Json> r =
      client.Patch(type, ns, name, PatchType::kJson, patch, "scale", field_manager, stop);
  if (r.ok()) return Status::Ok();
  if (r.status().code() != StatusCode::kInvalidArgument) return r.status();
  // 422 is also what a validation rule says: read the count to tell the two apart.
  Result<Scale> now = GetScale(client, type, ns, name, stop);
  if (now.ok() && now->spec_replicas != from) {
    return Status(StatusCode::kFailedPrecondition,
                  fmt::format("{} {}/{}: {}replicas is {}, not {}", type.kind, ns, name,
                              kChangedMarker, now->spec_replicas, from));
  }
  return r.status();
}

bool IsReplicasChanged(const Status& s) {
  return s.code() == StatusCode::kFailedPrecondition &&
         s.message().find(kChangedMarker) != std::string::npos;
}

ScaleFromZero::ScaleFromZero(Client& client, ScaleFromZeroOptions options,
                             std::function<bool()> waiting)
    : client_(client), options_(std::move(options)), waiting_(std::move(waiting)) {
  thread_ = std::jthread([this](std::stop_token stop) { Run(stop); });
  pthread_setname_np(thread_.native_handle(), "kinfer-unzero");
}

ScaleFromZero::~ScaleFromZero() {
  thread_.request_stop();
  cv_.notify_all();
}

void ScaleFromZero::Wake() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    woken_ = true;
  }
  cv_.notify_all();
}

void ScaleFromZero::Run(std::stop_token stop) {
  Backoff backoff({.initial = std::chrono::milliseconds(500), .max = std::chrono::seconds(10)});
  const std::string what =
      fmt::format("{} {}/{}", options_.type->kind, options_.namespace_, options_.name);
  while (!stop.stop_requested()) {
    std::chrono::milliseconds wait = options_.recheck;
    if (waiting_()) {
      Status s = SetReplicasIf(client_, *options_.type, options_.namespace_, options_.name, 0, 1,
                               options_.field_manager, stop);
      if (s.ok()) {
        scaled_up_++;
        backoff.Reset();
        KINFER_LOG_INFO("requests are waiting and no replica is ready: scaled {} from 0 to 1",
                        what);
      } else if (IsReplicasChanged(s)) {
        backoff.Reset();  // not at zero: replicas are on their way (or being drained back)
      } else if (s.code() != StatusCode::kCancelled) {
        failures_++;
        wait = backoff.Next();
        KINFER_LOG_WARN("cannot scale {} from 0 to 1 for waiting requests: {}; retrying in {} ms",
                        what, s.ToString(), wait.count());
      }
    }
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait_for(lk, stop, wait, [&] { return woken_; });
    woken_ = false;
  }
}

}  // namespace kinfer::k8s
