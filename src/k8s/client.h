// A Kubernetes REST client: get, paginated list, watch, create, update, server-side apply, merge
// and JSON patches, delete, for any resource type (built-in or custom), with errors that carry
// the API server's own Status message.
//
//   KINFER_ASSIGN_OR_RETURN(auto client, Client::Create(std::move(config)));
//   KINFER_ASSIGN_OR_RETURN(ObjectList slices,
//                           client->List(kEndpointSlices, "llm", {.label_selector = sel}));
//   Status s = client->Watch(kEndpointSlices, "llm",
//                            {.resource_version = slices.resource_version},
//                            [&](WatchEvent e) { ...; return Status::Ok(); }, stop);
//   if (IsGone(s)) { /* relist */ }
//
// Every call is thread-safe and may be cancelled through its std::stop_token. Informers
// (informer.h) build caches on List+Watch; most callers want one of those instead.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <stop_token>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"
#include "k8s/config.h"
#include "k8s/resource.h"

namespace kinfer::k8s {

namespace internal {
class Transport;
}

// Error codes of API answers, so callers can branch without parsing messages:
//   404 NotFound -> kNotFound; 409 AlreadyExists -> kAlreadyExists; 409 Conflict -> kAborted;
//   410 Gone/Expired -> kOutOfRange; 401 -> kUnauthenticated; 403 -> kPermissionDenied;
//   400/422 -> kInvalidArgument; 429 -> kResourceExhausted; 504/timeouts -> kDeadlineExceeded;
//   other 5xx and transport failures -> kUnavailable; a stop request -> kCancelled.
// The message reads "PATCH /apis/apps/v1/namespaces/llm/deployments/x: 422 Invalid: <the API
// server's message>".
bool IsNotFound(const Status& s);
bool IsAlreadyExists(const Status& s);
bool IsConflict(const Status& s);
bool IsGone(const Status& s);
bool IsForbidden(const Status& s);

struct ListOptions {
  std::string label_selector{};
  std::string field_selector{};
  int64_t limit = 500;  // page size; 0: one page
  // "": a consistent read (quorum); "0": any cached state. Pages after the first follow the
  // continue token.
  std::string resource_version{};
  // "Exact" or "NotOlderThan" (with resource_version); "" for the server's default.
  std::string resource_version_match{};
  int timeout_seconds = 60;  // per page
};

struct ObjectList {
  std::string resource_version{};  // of the whole list: where a watch should start
  std::vector<Json> items{};       // each with apiVersion and kind filled in
};

struct WatchOptions {
  std::string label_selector{};
  std::string field_selector{};
  std::string resource_version{};  // events after this one
  bool allow_bookmarks = true;
  int timeout_seconds = 300;  // the server ends the watch cleanly after this
};

enum class WatchEventType { kAdded, kModified, kDeleted, kBookmark };
std::string_view WatchEventTypeName(WatchEventType t);

struct WatchEvent {
  WatchEventType type;
  Json object;  // for a bookmark, only metadata.resourceVersion is meaningful
};

struct ApplyOptions {
  std::string field_manager = "kinfer-operator";
  bool force = true;  // take fields over from other managers (a controller owns its objects)
  std::string subresource{};  // "" or "status"
  bool dry_run = false;
};

enum class PatchType { kMerge, kJson, kStrategicMerge };

struct DeleteOptions {
  std::string propagation_policy = "Background";  // Foreground, Background, Orphan
  std::string precondition_uid{};                 // refuse if the object is another one
  std::string precondition_resource_version{};
};

// The result of a raw call.
struct Response {
  long code = 0;
  std::string body{};
};

class Client {
 public:
  static Result<std::unique_ptr<Client>> Create(ClientConfig config);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const ClientConfig& config() const;

  Result<Json> Get(const ResourceType& type, std::string_view ns, std::string_view name,
                   std::string_view subresource = {}, std::stop_token stop = {});

  // Every page, following `continue`. If the continue token expires mid-way (410), the list
  // starts over once without paging, as client-go does.
  Result<ObjectList> List(const ResourceType& type, std::string_view ns, const ListOptions& opts,
                          std::stop_token stop = {});

  // Streams events to `on_event` until the server ends the watch (OK), the resourceVersion is
  // too old (IsGone: relist), `on_event` returns an error (that error), the stop token fires
  // (kCancelled) or the connection fails. ERROR events become the Status they carry.
  Status Watch(const ResourceType& type, std::string_view ns, const WatchOptions& opts,
               const std::function<Status(WatchEvent&&)>& on_event, std::stop_token stop = {});

  Result<Json> Create(const ResourceType& type, std::string_view ns, const Json& object,
                      std::string_view field_manager = "kinfer-operator",
                      std::stop_token stop = {});
  // PUT: optimistic concurrency on metadata.resourceVersion (IsConflict when it moved).
  Result<Json> Update(const ResourceType& type, std::string_view ns, const Json& object,
                      std::string_view subresource = {},
                      std::string_view field_manager = "kinfer-operator",
                      std::stop_token stop = {});
  // Server-side apply of `object` (which names itself in metadata.name).
  Result<Json> Apply(const ResourceType& type, std::string_view ns, const Json& object,
                     const ApplyOptions& opts = {}, std::stop_token stop = {});
  // A merge patch (a JSON object), a JSON patch (an array of ops; a failed `test` op fails the
  // whole patch, which is what makes `test` a compare-and-swap) or a strategic merge patch.
  Result<Json> Patch(const ResourceType& type, std::string_view ns, std::string_view name,
                     PatchType patch_type, const Json& patch, std::string_view subresource = {},
                     std::string_view field_manager = "kinfer-operator", std::stop_token stop = {});
  Status Delete(const ResourceType& type, std::string_view ns, std::string_view name,
                const DeleteOptions& opts = {}, std::stop_token stop = {});

  // Any call; `path` is absolute ("/version"). Retries as the typed calls do; the HTTP status is
  // in the Response, not an error.
  Result<Response> Raw(std::string_view method, std::string_view path, std::string_view body = {},
                       std::string_view content_type = {}, std::stop_token stop = {});

 private:
  explicit Client(std::unique_ptr<internal::Transport> transport);
  // One call with the retries every verb gets: once more after a 401 with a re-read token, and
  // on 429/5xx that carry Retry-After (up to 5 times, waiting what the server asks, 1-10s).
  Result<Response> Call(std::string_view method, const std::string& path, std::string body,
                        std::string_view content_type, int timeout_seconds, std::stop_token stop);
  // The Status for an HTTP error answer to `method path`.
  static Status ErrorFor(std::string_view method, const std::string& path, const Response& r);

  std::unique_ptr<internal::Transport> transport_;
};

// Query-string encoding of one value.
std::string UrlQueryEscape(std::string_view s);

}  // namespace kinfer::k8s
