#!/usr/bin/env bash
# Builds the real Kubernetes components the k8s tests run, once, into a cache outside the repo
# keyed by version, and prints progress. Sourced by run.sh; `tests/k8s/tools.sh` alone builds.
#
#   $KINFER_CACHE/k8s/kubernetes-<ver>-<key>/bin/{etcd,kube-apiserver,kube-controller-manager}  always
#   $KINFER_CACHE/k8s/kubernetes-<ver>-<key>/bin/{kube-scheduler,kubelet,kube-proxy}
#                                                     unless KINFER_K8S_FULL=0 (the full cluster)
#   $KINFER_CACHE/k8s/helm-<ver>/helm
#   $KINFER_CACHE/k8s/prometheus-operator-<ver>/   the published ServiceMonitor/PrometheusRule CRDs
#
# Sources: k8s.io/kubernetes and go.etcd.io/etcd/server/v3 from the Go module proxy through
# tests/k8s/tools/go.mod (each k8s.io staging module pinned by a replace line), helm by
# `go install helm.sh/helm/v3/cmd/helm@<ver>`. Checksums are checked by the go command.
set -euo pipefail

K8S_VERSION=v1.35.4
HELM_VERSION=v3.22.0
PROM_OPERATOR_VERSION=v0.85.0

K8S_TOOLS_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/tools"
K8S_CACHE="${KINFER_CACHE:-$HOME/.cache/kinfer}/k8s"

k8s_say() { printf '\033[1m[k8s]\033[0m %s\n' "$*" >&2; }

# A key that changes when the pinned module graph does, so an edit to go.mod rebuilds.
k8s_tools_key() {
  { cat "$K8S_TOOLS_DIR/go.mod" "$K8S_TOOLS_DIR/go.sum"; k8s_ldflags; go env GOVERSION; } |
    sha256sum | cut -c1-12
}

k8s_bin_dir() { echo "$K8S_CACHE/kubernetes-$K8S_VERSION-$(k8s_tools_key)/bin"; }

# go build with the version stamps Kubernetes' own build sets, so that the API server reports
# v1.35.4 (helm's .Capabilities.KubeVersion, discovery) rather than v0.0.0-master.
k8s_ldflags() {
  local v=${K8S_VERSION#v} pkg=k8s.io/component-base/version
  local major=${v%%.*} minor
  minor=${v#*.}; minor=${minor%%.*}
  local ld="-s -w"
  for p in $pkg k8s.io/client-go/pkg/version; do
    ld+=" -X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor"
    ld+=" -X $p.gitTreeState=clean -X $p.gitCommit=$K8S_VERSION -X $p.buildDate=1970-01-01T00:00:00Z"
  done
  echo "$ld"
}

# k8s_go ARGS...: the go command with its build and module caches in a scratch directory under
# $K8S_CACHE, removed afterwards. These builds run once per version and their binaries are what
# is kept; Kubernetes' caches (about 4.5 GB) would otherwise stay on the disk for good, next to
# the CI's build trees. KINFER_KEEP_GO_CACHE=1 keeps go's usual caches (faster rebuilds while
# changing tools/go.mod).
k8s_go() {
  if [[ ${KINFER_KEEP_GO_CACHE:-0} == 1 ]]; then
    go "$@"
    return
  fi
  local scratch rc=0 flags
  flags="$(go env GOFLAGS)"
  scratch="$(mktemp -d "$K8S_CACHE/.go.XXXXXX")"
  GOCACHE="$scratch/build" GOMODCACHE="$scratch/mod" GOFLAGS="-modcacherw${flags:+ $flags}" \
    go "$@" || rc=$?
  rm -rf "$scratch"
  return $rc
}

# k8s_build_components NAME...: builds the named commands (kube-apiserver, etcd, ...) that the
# cache lacks. One `go build` for all of them so shared packages compile once.
k8s_build_components() {
  local bin pkgs=() names=() n
  bin="$(k8s_bin_dir)"
  for n in "$@"; do
    [[ -x $bin/$n ]] && continue
    names+=("$n")
    case $n in
      etcd) pkgs+=(go.etcd.io/etcd/server/v3) ;;
      *) pkgs+=("k8s.io/kubernetes/cmd/$n") ;;
    esac
  done
  ((${#pkgs[@]})) || return 0
  k8s_say "building ${names[*]} (Kubernetes $K8S_VERSION from the Go module proxy; minutes on a cold cache)"
  local tmp start=$SECONDS
  tmp="$(mktemp -d "$K8S_CACHE/.build.XXXXXX")"
  k8s_go -C "$K8S_TOOLS_DIR" build -buildvcs=false -trimpath -ldflags "$(k8s_ldflags)" -o "$tmp/" "${pkgs[@]}"
  [[ -e $tmp/server ]] && mv "$tmp/server" "$tmp/etcd"  # go.etcd.io/etcd/server/v3's command
  mkdir -p "$bin"
  mv "$tmp"/* "$bin/"
  rmdir "$tmp"
  k8s_say "built ${names[*]} in $((SECONDS - start))s"
}

k8s_build_helm() {
  local dir="$K8S_CACHE/helm-$HELM_VERSION"
  [[ -x $dir/helm ]] && return 0
  k8s_say "building helm $HELM_VERSION (go install helm.sh/helm/v3/cmd/helm)"
  local start=$SECONDS h=helm.sh/helm/v3
  mkdir -p "$dir"
  GOBIN="$dir" k8s_go install -buildvcs=false -trimpath -ldflags "-s -w -X $h/internal/version.version=$HELM_VERSION \
    -X $h/pkg/lint/rules.k8sVersionMajor=1 -X $h/pkg/lint/rules.k8sVersionMinor=35 \
    -X $h/pkg/chartutil.k8sVersionMajor=1 -X $h/pkg/chartutil.k8sVersionMinor=35" \
    "$h/cmd/helm@$HELM_VERSION"
  k8s_say "built helm in $((SECONDS - start))s"
}

# The CRDs a ServiceMonitor and PrometheusRule need, as prometheus-operator publishes them in
# its Go module (example/prometheus-operator-crd/).
k8s_fetch_prometheus_crds() {
  local dir="$K8S_CACHE/prometheus-operator-$PROM_OPERATOR_VERSION"
  if [[ ! -s $dir/monitoring.coreos.com_servicemonitors.yaml ]]; then
    k8s_say "fetching prometheus-operator $PROM_OPERATOR_VERSION CRDs from the Go module proxy"
    local src
    src="$(cd "$K8S_TOOLS_DIR" && go mod download -json \
      "github.com/prometheus-operator/prometheus-operator@$PROM_OPERATOR_VERSION" |
      python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')"
    mkdir -p "$dir"
    cp "$src"/example/prometheus-operator-crd/monitoring.coreos.com_{servicemonitors,prometheusrules}.yaml "$dir/"
  fi
  echo "$dir"
}

# Exports K8S_BIN (etcd, kube-apiserver, ...) and HELM, building what is missing.
k8s_tools() {
  mkdir -p "$K8S_CACHE"
  command -v go >/dev/null || { k8s_say "error: go is not installed"; return 1; }
  # kube-controller-manager always: the operator tests need its garbage collector.
  local want=(etcd kube-apiserver kube-controller-manager)
  [[ ${KINFER_K8S_FULL:-1} == 1 ]] && want+=(kube-scheduler kubelet kube-proxy)
  k8s_build_components "${want[@]}"
  k8s_build_helm
  K8S_BIN="$(k8s_bin_dir)"
  HELM="$K8S_CACHE/helm-$HELM_VERSION/helm"
  export K8S_BIN HELM
}

if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  k8s_tools
  k8s_fetch_prometheus_crds >/dev/null
  k8s_say "tools ready: $K8S_BIN, $HELM"
fi
