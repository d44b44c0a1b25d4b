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

std::string SliceName(const Json& slice) {
  if (auto m = slice.find("metadata"); m != slice.end() && m->is_object()) {
    if (auto n = m->find("name"); n != m->end() && n->is_string()) return n->get<std::string>();
  }
  return "(unnamed)";
}

// The slice's port for `want`: by name or number; "" = "http", else the only one.
std::optional<int> PickPort(const Json& slice, std::string_view want, std::string* why) {
  auto ports = slice.find("ports");
  if (ports == slice.end() || !ports->is_array() || ports->empty()) {
    *why = "no ports";
    return std::nullopt;
  }
  int number = 0;
  const bool numeric =
      !want.empty() &&
      std::from_chars(want.data(), want.data() + want.size(), number).ec == std::errc();
  std::optional<int> only, named_http;
  for (const Json& p : *ports) {
    if (!p.is_object() || !p.contains("port") || !p["port"].is_number_integer()) continue;
    const int port = p["port"].get<int>();
    const std::string name =
        p.contains("name") && p["name"].is_string() ? p["name"].get<std::string>() : "";
    if (port < 1 || port > 65535) continue;
    if (!want.empty() && (numeric ? port == number : name == want)) return port;
    if (name == "http") named_http = port;
    only = ports->size() == 1 ? std::optional<int>(port) : std::nullopt;
  }
  if (want.empty()) {
    if (named_http) return named_http;
    if (only) return only;
    *why = "several ports and none named \"http\": name one in --endpointslices NS/SVC:PORT";
    return std::nullopt;
  }
  *why = fmt::format("no port {}", want);
  return std::nullopt;
}

bool Condition(const Json& endpoint, const char* name, bool unknown) {
  auto c = endpoint.find("conditions");
  if (c == endpoint.end() || !c->is_object()) return unknown;
  auto v = c->find(name);
  if (v == c->end() || !v->is_boolean()) return unknown;
  return v->get<bool>();
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

SliceEndpoints EndpointsFromSlices(const std::vector<const Json*>& slices, std::string_view port) {
  SliceEndpoints out;
  std::map<std::string, DiscoveredEndpoint> by_address;
  for (const Json* slice : slices) {
    if (!slice || !slice->is_object()) continue;
    const std::string name = SliceName(*slice);
    auto type = slice->find("addressType");
    const std::string address_type =
        type != slice->end() && type->is_string() ? type->get<std::string>() : "";
    if (address_type != "IPv4" && address_type != "IPv6" && address_type != "FQDN") {
      out.problems.push_back(
          fmt::format("slice {}: addressType '{}' is not IPv4, IPv6 or FQDN", name, address_type));
      continue;
    }
    auto endpoints = slice->find("endpoints");
    if (endpoints == slice->end() || endpoints->is_null()) continue;  // no endpoints yet
    if (!endpoints->is_array()) {
      out.problems.push_back(fmt::format("slice {}: endpoints is not a list", name));
      continue;
    }
    if (endpoints->empty()) continue;
    std::string why;
    std::optional<int> p = PickPort(*slice, port, &why);
    if (!p) {
      out.problems.push_back(fmt::format("slice {}: {}", name, why));
      continue;
    }
    for (const Json& e : *endpoints) {
      if (!e.is_object()) continue;
      auto addresses = e.find("addresses");
      if (addresses == e.end() || !addresses->is_array() || addresses->empty() ||
          !(*addresses)[0].is_string()) {
        out.problems.push_back(fmt::format("slice {}: an endpoint without addresses", name));
        continue;
      }
      // Every address of an endpoint is the same pod; the first is the one to use.
      DiscoveredEndpoint d;
      d.endpoint.host = (*addresses)[0].get<std::string>();
      d.endpoint.port = *p;
      d.ready = Condition(e, "ready", /*unknown=*/true);
      d.terminating = Condition(e, "terminating", /*unknown=*/false);
      if (auto ref = e.find("targetRef"); ref != e.end() && ref->is_object() &&
                                          ref->contains("name") && (*ref)["name"].is_string()) {
        d.pod = (*ref)["name"].get<std::string>();
      }
      const std::string key = d.endpoint.ToString();
      auto [it, inserted] = by_address.try_emplace(key, d);
      if (!inserted && d.ready && !d.terminating) it->second = d;
    }
  }
  for (auto& [key, d] : by_address) out.endpoints.push_back(std::move(d));
  return out;
}

}  // namespace kinfer::router
