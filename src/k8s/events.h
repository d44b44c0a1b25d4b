// Kubernetes Events (events.k8s.io/v1) about objects, as `kubectl describe` and `kubectl events`
// show them. A repeat of the same event (same object, type, reason and note) within ten minutes
// updates the first one's series count instead of creating another object, as client-go's
// event recorder does.
//
//   EventRecorder events(client, {.controller = "kinfer.dev/operator", .instance = pod});
//   events.Record(llmservice_json, EventType::kNormal, "Available", "Reconcile",
//                 "2/2 replicas ready");
#pragma once

#include <chrono>
#include <list>
#include <map>
#include <mutex>
#include <stop_token>
#include <string>
#include <string_view>

#include "k8s/client.h"

namespace kinfer::k8s {

enum class EventType { kNormal, kWarning };

struct EventSource {
  std::string controller = "kinfer.dev/operator";  // reportingController
  std::string instance{};                          // reportingInstance: the pod
};

class EventRecorder {
 public:
  EventRecorder(Client& client, EventSource source);

  // `regarding` is the object (apiVersion, kind, metadata.name/namespace/uid). `note` is cut to
  // 1 KiB (the API's limit). Errors are returned for tests and logged by callers; an event that
  // could not be written never fails the caller's work.
  Status Record(const Json& regarding, EventType type, std::string_view reason,
                std::string_view action, std::string note, std::stop_token stop = {});

 private:
  struct Seen {
    std::string name, ns;
    int32_t count = 1;
    std::chrono::steady_clock::time_point first;
    std::list<std::string>::iterator lru;
  };
  Client& client_;
  EventSource source_;
  std::mutex mu_;
  std::map<std::string, Seen> seen_;  // key: uid|type|reason|note
  std::list<std::string> lru_;        // most recent first, bounded
};

}  // namespace kinfer::k8s
