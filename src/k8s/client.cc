#include "k8s/client.h"

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <cstdlib>
#include <mutex>

#include "core/log.h"
#include "k8s/transport.h"

namespace kinfer::k8s {
namespace {

// The marker in messages of statuses built from a 409 Conflict, so IsConflict tells it apart
// from other kAborted statuses.
constexpr std::string_view kConflictMarker = ": 409 Conflict";

std::string Query(std::initializer_list<std::pair<std::string_view, std::string>> params) {
  std::string q;
  for (const auto& [k, v] : params) {
    if (v.empty()) continue;
    q += q.empty() ? "?" : "&";
    q += k;
    q += "=";
    q += UrlQueryEscape(v);
  }
  return q;
}

// Sleeps up to `d`, returning early (false) when a stop is requested.
bool SleepFor(std::chrono::milliseconds d, std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  std::unique_lock<std::mutex> lock(mu);
  return !cv.wait_for(lock, stop, d, [] { return false; });
}

// Fills in apiVersion and kind, which list items lack.
void FillTypeMeta(Json& item, const ResourceType& type) {
  if (!item.is_object()) return;
  if (!item.contains("apiVersion")) item["apiVersion"] = type.ApiVersion();
  if (!item.contains("kind")) item["kind"] = type.kind;
}

Result<Json> ParseBody(const Response& r, std::string_view what) {
  auto j = ParseJson(r.body, what);
  if (!j.ok()) return j.status();
  return j;
}

}  // namespace

std::string_view WatchEventTypeName(WatchEventType t) {
  switch (t) {
    case WatchEventType::kAdded:
      return "ADDED";
    case WatchEventType::kModified:
      return "MODIFIED";
    case WatchEventType::kDeleted:
      return "DELETED";
    case WatchEventType::kBookmark:
      return "BOOKMARK";
  }
  return "?";
}

bool IsNotFound(const Status& s) { return s.code() == StatusCode::kNotFound; }
bool IsAlreadyExists(const Status& s) { return s.code() == StatusCode::kAlreadyExists; }
bool IsConflict(const Status& s) {
  return s.code() == StatusCode::kAborted && s.message().find(kConflictMarker) != std::string::npos;
}
bool IsGone(const Status& s) { return s.code() == StatusCode::kOutOfRange; }
bool IsForbidden(const Status& s) { return s.code() == StatusCode::kPermissionDenied; }

std::string UrlQueryEscape(std::string_view s) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

Client::Client(std::unique_ptr<internal::Transport> transport) : transport_(std::move(transport)) {}
Client::~Client() = default;

Result<std::unique_ptr<Client>> Client::Create(ClientConfig config) {
  if (config.server.empty()) return InvalidArgumentError("Kubernetes client: no server URL");
  if (config.server.rfind("http://", 0) == 0 && (config.token || !config.client_key_pem.empty())) {
    return InvalidArgumentError(
        "Kubernetes client: {} is plain http; refusing to send credentials over it", config.server);
  }
  return std::unique_ptr<Client>(
      new Client(std::make_unique<internal::Transport>(std::move(config))));
}

const ClientConfig& Client::config() const { return transport_->config(); }

Status Client::ErrorFor(std::string_view method, const std::string& path, const Response& r) {
  std::string reason, message;
  auto j = ParseJson(r.body, "error body");
  if (j.ok() && j->is_object() && j->value("kind", "") == "Status") {
    reason = j->value("reason", "");
    message = j->value("message", "");
  } else {
    message = r.body.substr(0, 512);
  }
  if (reason.empty()) {
    switch (r.code) {
      case 400:
        reason = "BadRequest";
        break;
      case 401:
        reason = "Unauthorized";
        break;
      case 403:
        reason = "Forbidden";
        break;
      case 404:
        reason = "NotFound";
        break;
      case 409:
        reason = "Conflict";
        break;
      case 410:
        reason = "Gone";
        break;
      case 422:
        reason = "Invalid";
        break;
      case 429:
        reason = "TooManyRequests";
        break;
      default:
        reason = "Error";
        break;
    }
  }
  std::string text = fmt::format("{} {}: {} {}: {}", method, path, r.code, reason, message);
  StatusCode code = StatusCode::kInternal;
  switch (r.code) {
    case 400:
    case 422:
      code = StatusCode::kInvalidArgument;
      break;
    case 401:
      code = StatusCode::kUnauthenticated;
      break;
    case 403:
      code = StatusCode::kPermissionDenied;
      break;
    case 404:
      code = StatusCode::kNotFound;
      break;
    case 409:
      code = reason == "AlreadyExists" ? StatusCode::kAlreadyExists : StatusCode::kAborted;
      if (code == StatusCode::kAborted && reason != "Conflict") {
        text = fmt::format("{} {}: 409 Conflict ({}): {}", method, path, reason, message);
      }
      break;
    case 410:
      code = StatusCode::kOutOfRange;
      break;
    case 429:
      code = StatusCode::kResourceExhausted;
      break;
    case 504:
      code = StatusCode::kDeadlineExceeded;
      break;
    default:
      code = r.code >= 500 ? StatusCode::kUnavailable : StatusCode::kInternal;
      break;
  }
  return Status(code, std::move(text));
}

Result<Response> Client::Call(std::string_view method, const std::string& path, std::string body,
                              std::string_view content_type, int timeout_seconds,
                              std::stop_token stop) {
  internal::HttpCall call;
  call.method = std::string(method);
  call.path = path;
  call.body = std::move(body);
  call.content_type = std::string(content_type);
  call.timeout_seconds = timeout_seconds;
  bool reauthenticated = false;
  for (int attempt = 0;; ++attempt) {
    KINFER_ASSIGN_OR_RETURN(internal::HttpResult r, transport_->Perform(call, stop));
    if (r.code == 401 && config().token && !config().token->path().empty() && !reauthenticated) {
      config().token->Invalidate();
      reauthenticated = true;
      continue;
    }
    auto retry_after = r.headers.find("retry-after");
    if ((r.code == 429 || r.code >= 500) && retry_after != r.headers.end() && attempt < 5) {
      int secs = std::clamp(std::atoi(retry_after->second.c_str()), 1, 10);
      KINFER_LOG_DEBUG("{} {}: {} with Retry-After {}s, retrying", method, path, r.code, secs);
      if (!SleepFor(std::chrono::seconds(secs), stop)) {
        return CancelledError("{} {}: cancelled", method, path);
      }
      continue;
    }
    return Response{r.code, std::move(r.body)};
  }
}

Result<Response> Client::Raw(std::string_view method, std::string_view path, std::string_view body,
                             std::string_view content_type, std::stop_token stop) {
  return Call(method, std::string(path), std::string(body), content_type, 60, stop);
}

Result<Json> Client::Get(const ResourceType& type, std::string_view ns, std::string_view name,
                         std::string_view subresource, std::stop_token stop) {
  std::string path = type.Path(ns, name, subresource);
  KINFER_ASSIGN_OR_RETURN(Response r, Call("GET", path, "", "", 30, stop));
  if (r.code != 200) return ErrorFor("GET", path, r);
  return ParseBody(r, path);
}

Result<ObjectList> Client::List(const ResourceType& type, std::string_view ns,
                                const ListOptions& opts, std::stop_token stop) {
  std::string base = type.Path(ns);
  ObjectList out;
  std::string cont;
  bool paging = opts.limit > 0;
  for (;;) {
    std::string path =
        base + Query({{"labelSelector", opts.label_selector},
                      {"fieldSelector", opts.field_selector},
                      {"limit", paging ? std::to_string(opts.limit) : ""},
                      {"continue", cont},
                      // With a continue token the server pins the snapshot itself.
                      {"resourceVersion", cont.empty() ? opts.resource_version : ""},
                      {"resourceVersionMatch", cont.empty() ? opts.resource_version_match : ""}});
    KINFER_ASSIGN_OR_RETURN(Response r, Call("GET", path, "", "", opts.timeout_seconds, stop));
    if (r.code == 410 && !cont.empty()) {
      // The snapshot behind the continue token was compacted away: list again in one go.
      KINFER_LOG_INFO("LIST {}: continue token expired; listing again without paging", base);
      out = ObjectList();
      cont.clear();
      paging = false;
      continue;
    }
    if (r.code != 200) return ErrorFor("GET", path, r);
    KINFER_ASSIGN_OR_RETURN(Json page, ParseBody(r, path));
    if (!page.is_object()) return InvalidArgumentError("GET {}: the list is not an object", path);
    const Json& meta = page.contains("metadata") ? page["metadata"] : Json::object();
    auto items = page.find("items");
    if (items != page.end() && items->is_array()) {
      for (Json& item : *items) {
        FillTypeMeta(item, type);
        out.items.push_back(std::move(item));
      }
    } else if (items != page.end() && !items->is_null()) {
      return InvalidArgumentError("GET {}: items is not a list", path);
    }
    out.resource_version = meta.value("resourceVersion", "");
    cont = meta.value("continue", "");
    if (cont.empty()) break;
  }
  return out;
}

Status Client::Watch(const ResourceType& type, std::string_view ns, const WatchOptions& opts,
                     const std::function<Status(WatchEvent&&)>& on_event, std::stop_token stop) {
  std::string path =
      type.Path(ns) + Query({{"watch", "1"},
                             {"labelSelector", opts.label_selector},
                             {"fieldSelector", opts.field_selector},
                             {"resourceVersion", opts.resource_version},
                             {"allowWatchBookmarks", opts.allow_bookmarks ? "true" : ""},
                             {"timeoutSeconds", std::to_string(opts.timeout_seconds)}});
  internal::HttpCall call;
  call.path = path;
  // The server ends the watch at timeoutSeconds; this is only the guard against a silent peer.
  call.timeout_seconds = opts.timeout_seconds + 30;
  std::string pending;     // bytes of an event not yet ended by a newline
  std::string error_body;  // the body of a non-200 answer
  Status handler_status;   // first failure inside the stream
  call.on_body = [&](long code, std::string_view chunk) -> bool {
    if (code != 200) {
      if (error_body.size() < (1 << 20)) error_body.append(chunk);
      return true;
    }
    pending.append(chunk);
    size_t start = 0;
    for (size_t nl; (nl = pending.find('\n', start)) != std::string::npos; start = nl + 1) {
      std::string_view line(pending.data() + start, nl - start);
      if (line.find_first_not_of(" \r\t") == std::string_view::npos) continue;
      auto ev = ParseJson(line, "watch event");
      if (!ev.ok() || !ev->is_object()) {
        handler_status = InvalidArgumentError("WATCH {}: undecodable event: {}", path,
                                              ev.ok() ? "not an object" : ev.status().message());
        return false;
      }
      std::string t = ev->value("type", "");
      auto obj = ev->find("object");
      if (obj == ev->end() || !obj->is_object()) {
        handler_status = InvalidArgumentError("WATCH {}: event without an object", path);
        return false;
      }
      if (t == "ERROR") {
        Response r{obj->value("code", 500L), obj->dump()};
        handler_status = ErrorFor("WATCH", path, r);
        return false;
      }
      WatchEvent e;
      if (t == "ADDED") {
        e.type = WatchEventType::kAdded;
      } else if (t == "MODIFIED") {
        e.type = WatchEventType::kModified;
      } else if (t == "DELETED") {
        e.type = WatchEventType::kDeleted;
      } else if (t == "BOOKMARK") {
        e.type = WatchEventType::kBookmark;
      } else {
        handler_status = InvalidArgumentError("WATCH {}: unknown event type '{}'", path, t);
        return false;
      }
      e.object = std::move(*obj);
      FillTypeMeta(e.object, type);
      Status s = on_event(std::move(e));
      if (!s.ok()) {
        handler_status = s;
        return false;
      }
    }
    pending.erase(0, start);
    if (pending.size() > (64 << 20)) {
      handler_status = ResourceExhaustedError("WATCH {}: an event larger than 64 MiB", path);
      return false;
    }
    return true;
  };
  for (int attempt = 0;; ++attempt) {
    error_body.clear();
    auto r = transport_->Perform(call, stop);
    if (!handler_status.ok()) return handler_status;
    if (!r.ok()) return r.status();
    if (r->code == 401 && config().token && !config().token->path().empty() && attempt == 0) {
      config().token->Invalidate();
      continue;
    }
    if (r->code != 200) return ErrorFor("WATCH", path, Response{r->code, error_body});
    return Status::Ok();
  }
}

Result<Json> Client::Create(const ResourceType& type, std::string_view ns, const Json& object,
                            std::string_view field_manager, std::stop_token stop) {
  std::string path = type.Path(ns) + Query({{"fieldManager", std::string(field_manager)}});
  KINFER_ASSIGN_OR_RETURN(Response r,
                          Call("POST", path, object.dump(), "application/json", 30, stop));
  if (r.code != 200 && r.code != 201 && r.code != 202) return ErrorFor("POST", path, r);
  return ParseBody(r, path);
}

Result<Json> Client::Update(const ResourceType& type, std::string_view ns, const Json& object,
                            std::string_view subresource, std::string_view field_manager,
                            std::stop_token stop) {
  std::string name = object.contains("metadata") ? object["metadata"].value("name", "") : "";
  if (name.empty())
    return InvalidArgumentError("PUT {}: the object has no metadata.name", type.Path(ns));
  std::string path =
      type.Path(ns, name, subresource) + Query({{"fieldManager", std::string(field_manager)}});
  KINFER_ASSIGN_OR_RETURN(Response r,
                          Call("PUT", path, object.dump(), "application/json", 30, stop));
  if (r.code != 200 && r.code != 201) return ErrorFor("PUT", path, r);
  return ParseBody(r, path);
}

Result<Json> Client::Apply(const ResourceType& type, std::string_view ns, const Json& object,
                           const ApplyOptions& opts, std::stop_token stop) {
  std::string name = object.contains("metadata") ? object["metadata"].value("name", "") : "";
  if (name.empty()) {
    return InvalidArgumentError("apply {}: the object has no metadata.name", type.Path(ns));
  }
  std::string path =
      type.Path(ns, name, opts.subresource) + Query({{"fieldManager", opts.field_manager},
                                                     {"force", opts.force ? "true" : ""},
                                                     {"dryRun", opts.dry_run ? "All" : ""}});
  // JSON is YAML, so the apply content type takes it as it is.
  KINFER_ASSIGN_OR_RETURN(
      Response r, Call("PATCH", path, object.dump(), "application/apply-patch+yaml", 30, stop));
  if (r.code != 200 && r.code != 201) return ErrorFor("PATCH", path, r);
  return ParseBody(r, path);
}

Result<Json> Client::Patch(const ResourceType& type, std::string_view ns, std::string_view name,
                           PatchType patch_type, const Json& patch, std::string_view subresource,
                           std::string_view field_manager, std::stop_token stop) {
  std::string path =
      type.Path(ns, name, subresource) + Query({{"fieldManager", std::string(field_manager)}});
  std::string_view ct = patch_type == PatchType::kMerge  ? "application/merge-patch+json"
                        : patch_type == PatchType::kJson ? "application/json-patch+json"
                                                         : "application/strategic-merge-patch+json";
  KINFER_ASSIGN_OR_RETURN(Response r, Call("PATCH", path, patch.dump(), ct, 30, stop));
  if (r.code != 200 && r.code != 201) {
    Status st = ErrorFor("PATCH", path, r);
    if (patch_type == PatchType::kJson && r.code == 422) {
      // The API server says only "the server rejected our request" when a JSON patch op fails.
      return Status(
          st.code(),
          st.message() + " (JSON patch: a `test` op did not match, or a path is missing)");
    }
    return st;
  }
  return ParseBody(r, path);
}

Status Client::Delete(const ResourceType& type, std::string_view ns, std::string_view name,
                      const DeleteOptions& opts, std::stop_token stop) {
  std::string path = type.Path(ns, name);
  Json body = {{"apiVersion", "v1"}, {"kind", "DeleteOptions"}};
  if (!opts.propagation_policy.empty()) body["propagationPolicy"] = opts.propagation_policy;
  if (!opts.precondition_uid.empty()) body["preconditions"]["uid"] = opts.precondition_uid;
  if (!opts.precondition_resource_version.empty()) {
    body["preconditions"]["resourceVersion"] = opts.precondition_resource_version;
  }
  KINFER_ASSIGN_OR_RETURN(Response r,
                          Call("DELETE", path, body.dump(), "application/json", 30, stop));
  if (r.code != 200 && r.code != 202) return ErrorFor("DELETE", path, r);
  return Status::Ok();
}

}  // namespace kinfer::k8s
