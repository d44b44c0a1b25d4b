// `kinfer operator` as a process: the Kubernetes client, the controller's informers (on every
// replica), leader election that runs the controller's workers on exactly one replica, and a
// small HTTP server for the kubelet's probes and Prometheus (/healthz, /readyz, /metrics).
//
//   OperatorOptions o;  // flags
//   return RunOperator(o, sigterm_token);  // blocks until the token fires; exit code
#pragma once

#include <stop_token>
#include <string>

#include "k8s/config.h"
#include "k8s/leader_election.h"
#include "operator/autoscaler_loop.h"
#include "operator/controller.h"

namespace kinfer::op {

struct OperatorOptions {
  k8s::LoadOptions kube;
  ControllerOptions controller;
  bool leader_elect = true;
  k8s::LeaderElectionOptions election;  // namespace_ empty: the pod's (or the kubeconfig's)
  std::string health_host = "0.0.0.0";
  int health_port = 8081;  // 0: no HTTP server
  // The built-in autoscaler (autoscaler_loop.h), run by the leader beside the workers.
  bool autoscale = true;
  AutoscalerLoopOptions autoscaler;  // state_namespace empty: the operator's own
};

// Returns the process exit code: 0 after a clean stop, 1 when it could not start.
int RunOperator(OperatorOptions options, std::stop_token stop);

}  // namespace kinfer::op
