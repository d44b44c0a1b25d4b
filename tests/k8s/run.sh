#!/usr/bin/env bash
# The Kubernetes stage of scripts/test.sh: `kinfer pull` against a local Hub-API server, the Helm
# chart (lint, golden renders, bad values), then a real etcd + kube-apiserver on loopback into
# which the chart is installed and the LLMService CRD is exercised, the container image built
# with buildah and smoke-tested, and a full single-node cluster (controller-manager, scheduler,
# kube-proxy, a kubelet on containerd) running the chart's pod from that image.
#
#   tests/k8s/run.sh                     # everything above
#   KINFER_K8S_FULL=0 tests/k8s/run.sh   # without the full cluster (no kubelet, no pod networking)
#   KINFER_SKIP_IMAGE=1 ...              # without the image build and smoke test
#   KINFER_K8S_KEEP=1 ...                # keep the control plane's temp dir (logs) after the run
#   KINFER_UPDATE_GOLDEN=1 ...           # rewrite tests/k8s/golden/*.yaml from the chart
#
# Needs go, python3 with pytest/requests/pyyaml, openssl, curl, and root for the image and the
# full cluster; builds or reuses the tools in ${KINFER_CACHE:-~/.cache/kinfer}/k8s (tools.sh).
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
source tests/k8s/tools.sh
source tests/k8s/cluster.sh

stage_start=$SECONDS
if [[ -z ${KINFER_BIN:-} ]]; then
  # kinfer and the client's suite against the API server (tests/unit/k8s/cluster/); a no-op when
  # the release build is current.
  k8s_say "building kinfer and k8s_cluster_tests (release)"
  cmake --preset release >/dev/null
  cmake --build --preset release -j "$(nproc)" --target kinfer k8s_cluster_tests
  KINFER_BIN=$ROOT/build/release/src/kinfer
fi
export KINFER_BIN

# The image's build base (debootstrap: network and dpkg, little CPU) is made while Go compiles.
base_pid=""
if [[ ${KINFER_SKIP_IMAGE:-0} != 1 ]]; then
  mkdir -p "${KINFER_CACHE:-$HOME/.cache/kinfer}/image"
  base_log="${KINFER_CACHE:-$HOME/.cache/kinfer}/image/base.log"
  deploy/docker/build.sh --base >"$base_log" 2>&1 &
  base_pid=$!
fi
# Checkouts on one machine (worktrees, a clean clone beside the main one) share the tool cache, the
# image tag and the host's network plumbing (bridges, iptables chains, containerd): one at a time.
exec 9>"${TMPDIR:-/tmp}/kinfer-k8s-host.lock"
k8s_say "waiting for other checkouts' Kubernetes tool builds (lock ${TMPDIR:-/tmp}/kinfer-k8s-host.lock)"
flock 9
k8s_tools
K8S_PROM_CRDS="$(k8s_fetch_prometheus_crds)"
flock -u 9
export K8S_PROM_CRDS
k8s_say "tools ready after $((SECONDS - stage_start))s"

trap k8s_cluster_down EXIT
k8s_cluster_up

k8s_say "pytest: kinfer pull, the chart (lint, golden, schema), install into kube-apiserver, LLMService CRD"
python3 -m pytest -q -p no:cacheprovider tests/pull tests/k8s

k8s_cluster_down

k8s_say "waiting for the host's image tag and cluster plumbing (lock ${TMPDIR:-/tmp}/kinfer-k8s-host.lock)"
flock 9
if [[ ${KINFER_SKIP_IMAGE:-0} != 1 ]]; then
  k8s_say "container image: build with buildah and smoke-test"
  if ! wait "$base_pid"; then
    cat "$base_log" >&2
    k8s_say "error: the image's build base could not be made"
    exit 1
  fi
  cat "$base_log" >&2
  deploy/docker/build.sh --smoke
fi

if [[ ${KINFER_K8S_FULL:-1} == 1 ]]; then
  # A fresh control plane, so the kubelet runs only the pod under test.
  k8s_say "full cluster: controller-manager, scheduler, kube-proxy, kubelet on containerd (KINFER_K8S_FULL=0 skips)"
  k8s_cluster_up
  tests/k8s/full_cluster.sh
  k8s_cluster_down
fi
trap - EXIT
k8s_say "k8s stage passed in $((SECONDS - stage_start))s"
