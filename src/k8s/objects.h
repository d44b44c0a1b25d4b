// Typed views of the Kubernetes objects Kinfer reads (metadata, conditions, EndpointSlices,
// Leases, Scale) parsed from their JSON with errors that name the field, and the time formats
// the API uses. Objects Kinfer writes are built as JSON (server-side apply sends only the fields
// it owns), so only what is read needs a type.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/json.h"
#include "core/status.h"

namespace kinfer::k8s {

struct OwnerReference {
  std::string api_version, kind, name, uid;
  bool controller = false;
  bool block_owner_deletion = false;

  Json ToJson() const;
};

struct ObjectMeta {
  std::string name, namespace_, uid, resource_version;
  int64_t generation = 0;
  std::map<std::string, std::string> labels, annotations;
  std::vector<OwnerReference> owner_references;
  std::string creation_timestamp;
  std::string deletion_timestamp;  // empty unless being deleted

  // The owner reference with controller: true, if any.
  const OwnerReference* ControllerRef() const;
};

// `obj.metadata`. A missing metadata gives an empty ObjectMeta; wrong types are errors.
Result<ObjectMeta> ParseObjectMeta(const Json& obj, std::string_view source);

// A status condition (metav1.Condition).
struct Condition {
  std::string type, status, reason, message;
  std::string last_transition_time;
  int64_t observed_generation = 0;

  Json ToJson() const;
  bool operator==(const Condition&) const = default;
};
Result<std::vector<Condition>> ParseConditions(const Json& list, std::string_view source);

// discovery.k8s.io/v1 EndpointSlice.
struct EndpointConditions {
  // Absent means unknown; Kubernetes says to treat an absent `ready` as ready.
  std::optional<bool> ready, serving, terminating;
};
struct Endpoint {
  std::vector<std::string> addresses;
  EndpointConditions conditions;
  std::string hostname, node_name, zone;
  std::string target_kind, target_name, target_namespace, target_uid;  // targetRef
};
struct EndpointPort {
  std::string name;
  std::optional<int32_t> port;
  std::string protocol = "TCP";
  std::string app_protocol;
};
struct EndpointSlice {
  ObjectMeta metadata;
  std::string address_type;  // IPv4, IPv6, FQDN
  std::vector<Endpoint> endpoints;
  std::vector<EndpointPort> ports;
  // The Service it belongs to (label kubernetes.io/service-name).
  std::string service_name() const;
};
Result<EndpointSlice> ParseEndpointSlice(const Json& obj, std::string_view source);

// coordination.k8s.io/v1 Lease (its spec; times as the API writes them).
struct LeaseSpec {
  std::string holder_identity;
  int32_t lease_duration_seconds = 0;
  std::string acquire_time, renew_time;
  int32_t lease_transitions = 0;
};
struct Lease {
  ObjectMeta metadata;
  LeaseSpec spec;
};
Result<Lease> ParseLease(const Json& obj, std::string_view source);

// autoscaling/v1 Scale (what the /scale subresource reads and writes).
struct Scale {
  ObjectMeta metadata;
  int32_t spec_replicas = 0;
  int32_t status_replicas = 0;
  std::string selector;
};
Result<Scale> ParseScale(const Json& obj, std::string_view source);

// API time formats: Time is RFC 3339 in seconds ("2026-11-27T11:00:00Z"), MicroTime in
// microseconds ("2026-11-27T11:00:00.123456Z"). Parsing accepts both and any offset.
std::string FormatTime(std::chrono::system_clock::time_point t);
std::string FormatMicroTime(std::chrono::system_clock::time_point t);
Result<std::chrono::system_clock::time_point> ParseTime(std::string_view s);

// Selector text ("a=b,c=d") for a set of labels, in key order.
std::string LabelSelector(const std::map<std::string, std::string>& labels);

}  // namespace kinfer::k8s
