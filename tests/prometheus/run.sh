#!/usr/bin/env bash
# The prometheus stage of scripts/test.sh: installs Debian's prometheus (prometheus and promtool)
# when missing, builds or reuses helm from the Kubernetes tool cache (tests/k8s/tools.sh), and
# runs tests/prometheus against build/release/src/kinfer.
set -euo pipefail
cd "$(dirname "$0")/../.."
say() { printf '\033[1m[prometheus]\033[0m %s\n' "$*"; }
start=$SECONDS

if ! command -v prometheus >/dev/null || ! command -v promtool >/dev/null; then
  say "installing Debian's prometheus (about 23 MB to download)"
  SUDO=""
  [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get -o DPkg::Lock::Timeout=900 update -q
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get -o DPkg::Lock::Timeout=900 install -y -q \
    --no-install-recommends prometheus
fi
say "$(prometheus --version 2>&1 | head -1)"

# helm renders the chart's PrometheusRule; it is built once into the shared tool cache, under the
# same lock as the Kubernetes stage's tool builds.
source tests/k8s/tools.sh
export HELM="$K8S_CACHE/helm-$HELM_VERSION/helm"
if [[ ! -x $HELM ]]; then
  exec 9>"${TMPDIR:-/tmp}/kinfer-k8s-host.lock"
  say "waiting for other checkouts' tool builds (lock ${TMPDIR:-/tmp}/kinfer-k8s-host.lock)"
  flock 9
  k8s_build_helm
  flock -u 9
fi

if [[ ! -x build/release/src/kinfer ]]; then
  cmake --preset release >/dev/null
  cmake --build --preset release -j "$(nproc)" --target kinfer
fi
KINFER_BINARY="${KINFER_BINARY:-build/release/src/kinfer}" python3 -m pytest -q tests/prometheus
say "done in $((SECONDS - start))s"
