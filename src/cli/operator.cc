// `kinfer operator`: reconciles LLMService objects into running, updatable deployments (see
// operator/operator.h and operator/controller.h).
#include <signal.h>

#include <fstream>
#include <iostream>
#include <iterator>
#include <thread>

#include "cli/commands.h"
#include "core/log.h"
#include "k8s/yaml.h"
#include "operator/desired.h"
#include "operator/operator.h"

namespace kinfer::cli {
namespace {

// --render: the reconciler's desired objects for an LLMService file, without a cluster.
int Render(const std::string& path, const op::ReconcileConfig& config) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    std::ifstream in(path);
    if (!in) {
      fmt::print(stderr, "error: {}: cannot read\n", path);
      return 1;
    }
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  auto docs = k8s::YamlToJson(text, path);
  if (!docs.ok()) {
    fmt::print(stderr, "error: {}\n", docs.status().message());
    return 1;
  }
  for (Json& doc : *docs) {
    if (doc.value("kind", "") != "LLMService") continue;
    // Fill in what the API server would: a namespace and a uid for the ownerReferences.
    if (!doc["metadata"].contains("namespace")) doc["metadata"]["namespace"] = "default";
    if (!doc["metadata"].contains("uid"))
      doc["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000";
    auto s = op::ParseLLMService(doc);
    if (!s.ok()) {
      fmt::print(stderr, "error: {}\n", s.status().message());
      return 1;
    }
    op::ObservedState observed;
    observed.pull_complete = true;  // show the engine as it runs once the model is pulled
    auto want = op::Desired(*s, config, observed);
    if (!want.ok()) {
      fmt::print(stderr, "error: {}\n", want.status().message());
      return 1;
    }
    fmt::print("{}", op::ObjectsYaml(want->objects));
  }
  return 0;
}

}  // namespace

void AddOperatorCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "operator",
      "Run the Kubernetes operator: reconcile LLMService objects into engine and "
      "router Deployments, Services, PDBs, NetworkPolicies and model caches");
  auto o = std::make_shared<op::OperatorOptions>();
  auto log_format = std::make_shared<std::string>("text");
  auto render = std::make_shared<std::string>();
  auto lease = std::make_shared<double>(15), renew = std::make_shared<double>(10),
       retry = std::make_shared<double>(2), resync = std::make_shared<double>(300);
  o->election.name = "kinfer-operator";
  o->controller.reconcile.image = std::string("localhost/kinfer:") + KINFER_VERSION;
  if (const char* img = std::getenv("KINFER_IMAGE"); img != nullptr && *img != '\0') {
    o->controller.reconcile.image = img;
  }

  cmd->add_option("--kubeconfig", o->kube.kubeconfig,
                  "kubeconfig file (default: in-cluster, then $KUBECONFIG, then ~/.kube/config)");
  cmd->add_option("--context", o->kube.context, "kubeconfig context (default: current-context)");
  cmd->add_flag("--insecure-skip-tls-verify", o->kube.allow_insecure,
                "Allow a kubeconfig that disables the API server's certificate check");
  cmd->add_option("--namespace", o->controller.namespace_,
                  "Watch LLMServices in this namespace only (default: every namespace)");
  cmd->add_option("--image", o->controller.reconcile.image,
                  "kinfer image for engine and router pods (also $KINFER_IMAGE; an LLMService's "
                  "spec.image overrides it)")
      ->capture_default_str();
  cmd->add_option("--image-pull-policy", o->controller.reconcile.image_pull_policy,
                  "imagePullPolicy of those pods")
      ->check(CLI::IsMember({"Always", "IfNotPresent", "Never"}))
      ->capture_default_str();
  cmd->add_option("--workers", o->controller.workers, "LLMServices reconciled in parallel")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--resync-period", *resync, "Seconds between full reconciles of every LLMService")
      ->check(CLI::Range(1.0, 86400.0))
      ->capture_default_str();
  cmd->add_option("--pre-stop-seconds", o->controller.reconcile.pre_stop_seconds,
                  "preStop sleep of engine and router pods, so endpoints drop them before SIGTERM")
      ->check(CLI::Range(0, 600))
      ->capture_default_str();
  cmd->add_option("--drain-delay", o->controller.reconcile.drain_delay_seconds,
                  "--drain-delay of engine and router pods")
      ->check(CLI::Range(0, 600))
      ->capture_default_str();
  cmd->add_flag("!--no-autoscaler", o->autoscale,
                "Do not run the built-in autoscaler (spec.autoscaling is then left to an HPA)");
  cmd->add_flag("!--no-leader-elect", o->leader_elect,
                "Reconcile without a leader lease (one replica only)");
  cmd->add_option("--leader-election-namespace", o->election.namespace_,
                  "Namespace of the Lease (default: the pod's, or the kubeconfig context's)");
  cmd->add_option("--leader-election-id", o->election.name, "Name of the Lease")
      ->capture_default_str();
  cmd->add_option("--lease-duration", *lease, "Seconds a standby waits on an unrenewed lease")
      ->capture_default_str();
  cmd->add_option("--renew-deadline", *renew,
                  "Seconds the leader keeps trying to renew before it steps down")
      ->capture_default_str();
  cmd->add_option("--retry-period", *retry, "Seconds between lease attempts")
      ->capture_default_str();
  cmd->add_option("--health-host", o->health_host, "Address of /healthz, /readyz, /metrics")
      ->capture_default_str();
  cmd->add_option("--health-port", o->health_port, "Port of /healthz, /readyz, /metrics (0: off)")
      ->capture_default_str();
  cmd->add_option("--render", *render,
                  "Print the objects the LLMService in this YAML file ('-': stdin) becomes, as "
                  "YAML, and exit; no cluster is contacted");
  cmd->add_option("--log-format", *log_format, "Log lines as text or JSON")
      ->check(CLI::IsMember({"text", "json"}))
      ->capture_default_str();

  cmd->callback([=] {
    if (*log_format == "json") {
      InitLogging(spdlog::level::to_string_view(spdlog::get_level()).data(), LogFormat::kJson);
    }
    op::OperatorOptions opts = *o;
    if (!render->empty()) {
      ExitCode() = Render(*render, opts.controller.reconcile);
      return;
    }
    auto ms = [](double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); };
    opts.election.lease_duration = ms(*lease);
    opts.election.renew_deadline = ms(*renew);
    opts.election.retry_period = ms(*retry);
    opts.controller.resync_period = ms(*resync);
    if (!(opts.election.retry_period < opts.election.renew_deadline &&
          opts.election.renew_deadline < opts.election.lease_duration)) {
      fmt::print(stderr,
                 "error: need --retry-period < --renew-deadline < --lease-duration (got {} < {} "
                 "< {})\n",
                 *retry, *renew, *lease);
      ExitCode() = 2;
      return;
    }

    // SIGTERM/SIGINT go to one waiter thread, which asks everything to stop.
    const sigset_t set = BlockStopSignals();
    std::stop_source stop;
    std::jthread waiter([set, &stop](std::stop_token own) {
      for (;;) {
        int sig = 0;
        sigwait(&set, &sig);
        if (own.stop_requested()) return;
        KINFER_LOG_INFO("received {}: stepping down and stopping",
                        sig == SIGTERM ? "SIGTERM" : "SIGINT");
        stop.request_stop();
        return;
      }
    });
    ExitCode() = op::RunOperator(opts, stop.get_token());
    if (!stop.stop_requested()) {
      // Wake the waiter so it can be joined.
      waiter.request_stop();
      kill(getpid(), SIGTERM);
    }
  });
}

}  // namespace kinfer::cli
