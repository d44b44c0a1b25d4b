#include "operator/operator.h"

#include <condition_variable>
#include <mutex>

#include "core/log.h"
#include "server/http_server.h"
#include "server/metrics.h"

namespace kinfer::op {

int RunOperator(OperatorOptions options, std::stop_token stop) {
  auto config = k8s::LoadClientConfig(options.kube);
  if (!config.ok()) {
    KINFER_LOG_ERROR("kubernetes configuration: {}", config.status().message());
    return 1;
  }
  KINFER_LOG_INFO("API server {} ({})", config->server, config->source);
  std::string own_namespace = config->default_namespace;
  auto client = k8s::Client::Create(std::move(*config));
  if (!client.ok()) {
    KINFER_LOG_ERROR("{}", client.status().message());
    return 1;
  }
  if (options.election.namespace_.empty()) options.election.namespace_ = own_namespace;
  if (options.election.identity.empty()) {
    options.election.identity = k8s::LeaderElector::DefaultIdentity();
  }
  if (options.controller.instance.empty()) options.controller.instance = options.election.identity;
  if (options.controller.reconcile.operator_namespace.empty()) {
    options.controller.reconcile.operator_namespace = own_namespace;
  }

  server::MetricsRegistry metrics;
  auto& leader_gauge = metrics.Gauge("kinfer_operator_leader",
                                     "1 while this replica holds the leader lease, else 0");
  auto& transitions = metrics.Counter("kinfer_operator_leader_acquisitions",
                                      "Times this replica acquired the leader lease");
  leader_gauge.Set({}, 0);
  Controller controller(**client, options.controller, &metrics);
  controller.StartInformers();
  if (options.autoscaler.state_namespace.empty()) {
    options.autoscaler.state_namespace = options.controller.reconcile.operator_namespace;
  }
  options.autoscaler.watch_namespace = options.controller.namespace_;
  std::unique_ptr<AutoscalerLoop> autoscaler;
  if (options.autoscale) {
    autoscaler = std::make_unique<AutoscalerLoop>(**client, options.autoscaler, &metrics);
  }

  std::unique_ptr<server::HttpServer> http;
  if (options.health_port > 0) {
    server::HttpServerOptions ho;
    ho.host = options.health_host;
    ho.port = options.health_port;
    ho.io_threads = 1;
    http = std::make_unique<server::HttpServer>(
        ho, [&controller, &metrics](std::shared_ptr<server::HttpExchange> ex) {
          if (ex->path() == "/healthz") {
            ex->Respond(200, "text/plain", "ok\n");
          } else if (ex->path() == "/readyz") {
            // Ready once the caches are filled (on standbys too: they are ready to take over).
            if (controller.HasSynced()) {
              ex->Respond(200, "text/plain", "ok\n");
            } else {
              ex->Respond(503, "text/plain", "informers not synced\n");
            }
          } else if (ex->path() == "/metrics") {
            ex->Respond(200, "text/plain; version=0.0.4", metrics.Render({""}));
          } else {
            ex->Respond(404, "text/plain", "not found\n");
          }
        });
    Status s = http->Start();
    if (!s.ok()) {
      KINFER_LOG_ERROR("health server on {}:{}: {}", ho.host, ho.port, s.message());
      controller.Stop();
      return 1;
    }
    KINFER_LOG_INFO("health and metrics on http://{}:{} (/healthz, /readyz, /metrics)", ho.host,
                    http->port());
  }

  if (!controller.WaitForSync(std::chrono::minutes(10), stop)) {
    if (stop.stop_requested()) {
      controller.Stop();
      return 0;
    }
    KINFER_LOG_WARN("informers not synced after 10 minutes; continuing");
  } else {
    KINFER_LOG_INFO("informers synced");
  }

  if (options.leader_elect) {
    KINFER_LOG_INFO("leader election on Lease {}/{} as '{}'", options.election.namespace_,
                    options.election.name, options.election.identity);
    k8s::LeaderElector elector(**client, options.election,
                               {.on_started_leading =
                                    [&](std::stop_token leading) {
                                      leader_gauge.Set({}, 1);
                                      transitions.Add({});
                                      controller.StartWorkers(leading);
                                      if (autoscaler) autoscaler->Start(leading);
                                    },
                                .on_stopped_leading =
                                    [&] {
                                      if (autoscaler) autoscaler->Stop();
                                      controller.StopWorkers();
                                      leader_gauge.Set({}, 0);
                                    },
                                .on_new_leader = nullptr});
    elector.Run(stop);
  } else {
    KINFER_LOG_INFO("leader election off: this replica reconciles");
    controller.StartWorkers(stop);
    if (autoscaler) autoscaler->Start(stop);
    std::mutex mu;
    std::condition_variable_any cv;
    std::unique_lock<std::mutex> lock(mu);
    cv.wait(lock, stop, [] { return false; });
    if (autoscaler) autoscaler->Stop();
    controller.StopWorkers();
  }
  controller.Stop();
  if (http) http->Stop();
  KINFER_LOG_INFO("operator stopped");
  return 0;
}

}  // namespace kinfer::op
