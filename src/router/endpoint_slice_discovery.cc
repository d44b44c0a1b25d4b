#include "router/endpoint_slice_discovery.h"

#include <fmt/format.h>

#include "core/log.h"
#include "k8s/client.h"
#include "k8s/config.h"
#include "k8s/informer.h"

namespace kinfer::router {

Result<std::unique_ptr<EndpointSliceDiscovery>> EndpointSliceDiscovery::Create(
    SliceSource source, const std::string& kubeconfig, OnChange on_change) {
  k8s::LoadOptions lo;
  lo.kubeconfig = kubeconfig;
  auto config = k8s::LoadClientConfig(lo);
  if (!config.ok()) return config.status().WithPrefix("--endpointslices: Kubernetes credentials");
  std::unique_ptr<EndpointSliceDiscovery> d(new EndpointSliceDiscovery());
  d->source_ = std::move(source);
  d->on_change_ = std::move(on_change);
  KINFER_ASSIGN_OR_RETURN(d->client_, k8s::Client::Create(std::move(*config)));
  k8s::InformerOptions o;
  o.type = k8s::kEndpointSlices;
  o.namespace_ = d->source_.namespace_;
  o.label_selector = "kubernetes.io/service-name=" + d->source_.service;
  o.relist_period = std::chrono::seconds(60);  // a full resync every minute
  o.relist_on_reconnect = true;
  o.name = "slices-" + d->source_.service;
  d->informer_ = std::make_unique<k8s::Informer>(*d->client_, o);
  EndpointSliceDiscovery* self = d.get();
  k8s::InformerHandlers h;
  h.on_add = [self](const k8s::ObjectPtr&) { self->Publish(); };
  h.on_update = [self](const k8s::ObjectPtr&, const k8s::ObjectPtr&) { self->Publish(); };
  h.on_delete = [self](const k8s::ObjectPtr&) { self->Publish(); };
  d->informer_->AddHandlers(std::move(h));
  return d;
}

EndpointSliceDiscovery::~EndpointSliceDiscovery() { Stop(); }

void EndpointSliceDiscovery::Start() { informer_->Start(); }

bool EndpointSliceDiscovery::WaitForSync(std::chrono::milliseconds timeout) {
  if (!informer_->WaitForSync(timeout)) return false;
  Publish();  // a Service with no slices yet calls no handler: say "none" once synced
  return true;
}

void EndpointSliceDiscovery::Stop() {
  if (informer_) informer_->Stop();
}

std::string EndpointSliceDiscovery::Describe() const {
  return fmt::format("{}/{} via {}", source_.namespace_, source_.service, client_->config().source);
}

EndpointSliceDiscovery::Stats EndpointSliceDiscovery::stats() const {
  k8s::InformerStats s = informer_->stats();
  Stats out;
  out.lists = s.lists;
  out.relists_gone = s.relists_gone;
  out.relists_reconnect = s.relists_reconnect;
  out.relists_periodic = s.relists_periodic;
  out.events = s.events;
  out.errors = s.errors;
  return out;
}

void EndpointSliceDiscovery::Publish() {
  std::vector<k8s::EndpointSlice> slices;
  std::vector<std::string> problems;
  for (const k8s::ObjectPtr& o : informer_->List()) {
    auto s = k8s::ParseEndpointSlice(o->json, "EndpointSlice " + o->meta.name);
    if (!s.ok()) {
      problems.push_back(s.status().message());
      continue;
    }
    slices.push_back(std::move(*s));
  }
  SliceEndpoints got = EndpointsFromSlices(slices, source_.port);
  problems.insert(problems.end(), got.problems.begin(), got.problems.end());
  {
    // Each problem is logged once, not at every change.
    std::lock_guard<std::mutex> lk(mu_);
    for (const std::string& p : problems) {
      if (reported_.insert(p).second) KINFER_LOG_WARN("--endpointslices: {}", p);
    }
  }
  on_change_(got.endpoints);
}

}  // namespace kinfer::router
