// The replicas behind a Kubernetes Service, read from its discovery.k8s.io/v1 EndpointSlices
// (k8s::EndpointSlice, the shared client's typed view): one endpoint per address and the
// Service's port, ready (conditions.ready, unknown = ready) and terminating
// (conditions.terminating) as the slices say. Pure: the watch that keeps the slices current is
// endpoint_slice_discovery.h.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "k8s/objects.h"
#include "router/backend_pool.h"

namespace kinfer::router {

// What `--endpointslices NAMESPACE/SERVICE[:PORT]` names. PORT is a port name or number; without
// it, the port named "http", else the slices' only port.
struct SliceSource {
  std::string namespace_;
  std::string service;
  std::string port;  // "" : http, else the only one
};
Result<SliceSource> ParseSliceSource(std::string_view spec);

struct SliceEndpoints {
  std::vector<DiscoveredEndpoint> endpoints;  // unique by address:port, sorted
  std::vector<std::string> problems;          // slices or endpoints skipped, and why
};

// The endpoints of `slices`. An address listed by several slices (as during a slice's
// replacement) counts once, routable if any copy says ready and not terminating.
SliceEndpoints EndpointsFromSlices(const std::vector<k8s::EndpointSlice>& slices,
                                   std::string_view port);

}  // namespace kinfer::router
