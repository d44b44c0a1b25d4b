#include "router/endpoint_slices.h"

#include <algorithm>
#include <charconv>
#include <map>

#include <fmt/format.h>

namespace kinfer::router {
namespace {

// A DNS-1123 label (namespace and Service names).
bool IsDnsLabel(std::string_view s) {
  if (s.empty() || s.size() > 63) return false;
  for (char c : s) {
    if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-')) return false;
  }
  return s.front() != '-' && s.back() != '-';
}

// The slice's port for `want`: by name or number; "" = "http", else the only one.
std::optional<int> PickPort(const k8s::EndpointSlice& slice, std::string_view want,
                            std::string* why) {
  if (slice.ports.empty()) {
    *why = "no ports";
    return std::nullopt;
  }
  int number = 0;
  const bool numeric =
      !want.empty() &&
      std::from_chars(want.data(), want.data() + want.size(), number).ec == std::errc();
  std::optional<int> named_http;
  for (const k8s::EndpointPort& p : slice.ports) {
    if (!p.port || *p.port < 1 || *p.port > 65535) continue;
    if (!want.empty() && (numeric ? *p.port == number : p.name == want)) return *p.port;
    if (p.name == "http") named_http = *p.port;
  }
  if (want.empty()) {
    if (named_http) return named_http;
    if (slice.ports.size() == 1 && slice.ports[0].port) return *slice.ports[0].port;
    *why = "several ports and none named \"http\": name one in --endpointslices NS/SVC:PORT";
    return std::nullopt;
  }
  *why = fmt::format("no port {}", want);
  return std::nullopt;
}

}  // namespace

Result<SliceSource> ParseSliceSource(std::string_view spec) {
  SliceSource s;
  size_t slash = spec.find('/');
  if (slash == std::string_view::npos) {
    return InvalidArgumentError("--endpointslices {}: expected NAMESPACE/SERVICE[:PORT]", spec);
  }
  s.namespace_ = std::string(spec.substr(0, slash));
  std::string_view rest = spec.substr(slash + 1);
  size_t colon = rest.find(':');
  s.service = std::string(rest.substr(0, colon));
  if (colon != std::string_view::npos) {
    s.port = std::string(rest.substr(colon + 1));
    if (s.port.empty()) return InvalidArgumentError("--endpointslices {}: empty PORT", spec);
  }
  if (!IsDnsLabel(s.namespace_)) {
    return InvalidArgumentError("--endpointslices {}: '{}' is not a namespace name", spec,
                                s.namespace_);
  }
  if (!IsDnsLabel(s.service)) {
    return InvalidArgumentError("--endpointslices {}: '{}' is not a Service name", spec, s.service);
  }
  return s;
}

SliceEndpoints EndpointsFromSlices(const std::vector<k8s::EndpointSlice>& slices,
                                   std::string_view port) {
  SliceEndpoints out;
  std::map<std::string, DiscoveredEndpoint> by_address;
  for (const k8s::EndpointSlice& slice : slices) {
    const std::string& name = slice.metadata.name;
    if (slice.address_type != "IPv4" && slice.address_type != "IPv6" &&
        slice.address_type != "FQDN") {
      out.problems.push_back(fmt::format("slice {}: addressType '{}' is not IPv4, IPv6 or FQDN",
                                         name, slice.address_type));
      continue;
    }
    if (slice.endpoints.empty()) continue;  // no pods yet
    std::string why;
    std::optional<int> p = PickPort(slice, port, &why);
    if (!p) {
      out.problems.push_back(fmt::format("slice {}: {}", name, why));
      continue;
    }
    for (const k8s::Endpoint& e : slice.endpoints) {
      if (e.addresses.empty() || e.addresses[0].empty()) {
        out.problems.push_back(fmt::format("slice {}: an endpoint without addresses", name));
        continue;
      }
      // Every address of an endpoint is the same pod; the first is the one to use.
      DiscoveredEndpoint d;
      d.endpoint.host = e.addresses[0];
      d.endpoint.port = *p;
      d.ready = e.conditions.ready.value_or(true);  // unknown: ready, as the API says
      d.terminating = e.conditions.terminating.value_or(false);
      d.pod = e.target_name;
      const std::string key = d.endpoint.ToString();
      auto [it, inserted] = by_address.try_emplace(key, d);
      if (!inserted && d.ready && !d.terminating) it->second = d;
    }
  }
  for (auto& [key, d] : by_address) out.endpoints.push_back(std::move(d));
  return out;
}

}  // namespace kinfer::router
