#!/usr/bin/env bash
# The opt-in full cluster (KINFER_K8S_FULL=1 tests/k8s/run.sh): on top of the running etcd and
# kube-apiserver (run.sh's k8s_cluster_up), start kube-controller-manager, kube-scheduler,
# containerd (Debian's) with runc and the bridge CNI plugin, kube-proxy and a kubelet; load the
# locally built image; install the chart with the tiny model from a hostPath; and check that its
# pod is scheduled, started from the image by the kubelet, probed, and (once `kinfer serve`
# exists) becomes Ready and answers through its Service.
#
# Run from run.sh (it exports K8S_BIN, HELM, K8S_WORK, K8S_API, KUBECONFIG and the certs), as root.
# Network safety: pods get 10.244.0.0/24 on a local bridge without masquerading, and Service IPs
# (10.96.0.0/16) are routed to a dummy interface, so nothing addressed to them can leave the
# machine even when a rule is missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
ROOT=$PWD
source tests/k8s/tools.sh
source tests/k8s/cluster.sh

W=$K8S_WORK/full
mkdir -p "$W"
NODE=kinfer-node
POD_CIDR=10.244.0.0/24
SVC_CIDR=10.96.0.0/16
IMAGE="${KINFER_IMAGE:-localhost/kinfer}"
VERSION="$(sed -n 's/^project(kinfer VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)"
MODEL="${KINFER_SMOKE_MODEL:-$ROOT/../shared/models/stories260K/stories260K.gguf}"
FULL_PIDS=()

full_down() {
  local pid
  for pid in "${FULL_PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  sleep 2
  for pid in "${FULL_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; done
  # Pod sandboxes and mounts the kubelet and containerd leave behind.
  grep " $W/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null || true
  ip link del kinfer-svc 2>/dev/null || true
  ip link del kinfer0 2>/dev/null || true
}
trap full_down EXIT

api() { curl -fsS --cacert "$K8S_CA" --cert "$K8S_CLIENT_CERT" --key "$K8S_CLIENT_KEY" "$@"; }

for p in containerd runc iptables conntrack; do
  command -v "$p" >/dev/null || {
    k8s_say "installing containerd runc iptables conntrack containernetworking-plugins"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
      containerd runc iptables conntrack containernetworking-plugins >/dev/null
    break
  }
done
k8s_build_components kube-controller-manager kube-scheduler kubelet kube-proxy
podman image exists "$IMAGE:$VERSION" || deploy/docker/build.sh

# --- the pause image (our own, tests/k8s/pause/pause.c) and kinfer, into containerd ---------
mkdir -p "$W/pause-root"
gcc -static -O2 -o "$W/pause-root/pause" tests/k8s/pause/pause.c
tar -C "$W/pause-root" -c . | podman import -q --change 'ENTRYPOINT ["/pause"]' - localhost/kinfer-pause:1 >/dev/null
podman save -q --format docker-archive -o "$W/pause.tar" localhost/kinfer-pause:1
podman save -q --format docker-archive -o "$W/kinfer.tar" "$IMAGE:$VERSION"

# --- networking: a dummy device owns the Service range; the bridge CNI serves pods ----------
ip link add kinfer-svc type dummy 2>/dev/null || true
ip link set kinfer-svc up
ip route replace "$SVC_CIDR" dev kinfer-svc
mkdir -p "$W/cni"
cat >"$W/cni/10-kinfer.conflist" <<JSON
{"cniVersion": "0.4.0", "name": "kinfer",
 "plugins": [{"type": "bridge", "bridge": "kinfer0", "isGateway": true, "ipMasq": false,
              "hairpinMode": true,
              "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]],
                       "dataDir": "$W/cni-ipam"}},
             {"type": "portmap", "capabilities": {"portMappings": true}}]}
JSON

# --- containerd -----------------------------------------------------------------------------
cat >"$W/containerd.toml" <<TOML
version = 2
root = "$W/containerd/root"
state = "$W/containerd/state"
[grpc]
  address = "$W/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "localhost/kinfer-pause:1"
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$W/cni"
TOML
containerd --config "$W/containerd.toml" >"$K8S_WORK/logs/containerd.log" 2>&1 &
FULL_PIDS+=($!)
for _ in $(seq 60); do [[ -S $W/containerd.sock ]] && break; sleep 0.5; done
CTR=(ctr --address "$W/containerd.sock" -n k8s.io)
"${CTR[@]}" images import "$W/pause.tar" >/dev/null
"${CTR[@]}" images import "$W/kinfer.tar" >/dev/null
k8s_say "containerd up; images: $("${CTR[@]}" images ls -q | grep -E 'kinfer' | tr '\n' ' ')"

# --- controller-manager, scheduler (admin identity: a throwaway test cluster) ----------------
"$K8S_BIN/kube-controller-manager" --kubeconfig "$KUBECONFIG" --leader-elect=false \
  --bind-address 127.0.0.1 --secure-port 0 --controllers '*' \
  --service-account-private-key-file "$K8S_WORK/pki/sa.key" --root-ca-file "$K8S_CA" \
  --cluster-cidr 10.244.0.0/16 --allocate-node-cidrs=false --service-cluster-ip-range "$SVC_CIDR" \
  >"$K8S_WORK/logs/kube-controller-manager.log" 2>&1 &
FULL_PIDS+=($!)
"$K8S_BIN/kube-scheduler" --kubeconfig "$KUBECONFIG" --leader-elect=false \
  --bind-address 127.0.0.1 --secure-port "$(k8s_free_port)" \
  >"$K8S_WORK/logs/kube-scheduler.log" 2>&1 &
FULL_PIDS+=($!)

# --- kubelet and kube-proxy -----------------------------------------------------------------
KUBELET_PORT=$(k8s_free_port)
cat >"$W/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: 127.0.0.1
port: $KUBELET_PORT
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $(k8s_free_port)
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: "$K8S_CA"}
authorization: {mode: AlwaysAllow}
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://$W/containerd.sock
enforceNodeAllocatable: []
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
resolvConf: /etc/resolv.conf
serializeImagePulls: false
rotateCertificates: false
podCIDR: "$POD_CIDR"
podLogsDir: "$W/pod-logs"
YAML
k8s_kubeconfig "$W/kubelet.kubeconfig" kubelet
"$K8S_BIN/kubelet" --config "$W/kubelet.yaml" --kubeconfig "$W/kubelet.kubeconfig" \
  --root-dir "$W/kubelet" --cert-dir "$W/kubelet-pki" --hostname-override "$NODE" --node-ip 127.0.0.1 \
  >"$K8S_WORK/logs/kubelet.log" 2>&1 &
FULL_PIDS+=($!)
"$K8S_BIN/kube-proxy" --kubeconfig "$KUBECONFIG" --hostname-override "$NODE" --proxy-mode iptables \
  --cluster-cidr 10.244.0.0/16 --conntrack-max-per-core 0 \
  --metrics-bind-address 127.0.0.1:$(k8s_free_port) --healthz-bind-address 127.0.0.1:$(k8s_free_port) \
  >"$K8S_WORK/logs/kube-proxy.log" 2>&1 &
FULL_PIDS+=($!)

wait_until() {  # wait_until SECONDS WHAT CMD...
  local secs=$1 what=$2 deadline=$((SECONDS + $1))
  shift 2
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then
      k8s_say "full cluster: no $what within ${secs}s"
      return 1
    fi
    sleep 1
  done
}
node_ready() {
  api "$K8S_API/api/v1/nodes/$NODE" | python3 -c '
import json, sys
n = json.load(sys.stdin)
sys.exit(0 if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]) else 1)'
}
if ! wait_until 120 "Ready node" node_ready; then
  api "$K8S_API/api/v1/nodes/$NODE" 2>/dev/null | python3 -c '
import json, sys
for c in json.load(sys.stdin)["status"]["conditions"]: print("  node", c["type"], c["status"], c.get("message", ""))' || true
  tail -n 25 "$K8S_WORK/logs/kubelet.log" >&2
  exit 1
fi
k8s_say "full cluster: node $NODE is Ready"

# --- the chart, with the tiny model from the node ------------------------------------------
NS=kinfer-e2e
"$HELM" upgrade --install e2e deploy/helm/kinfer -n "$NS" --create-namespace \
  --set model.name=tiny --set model.source.type=hostPath \
  --set model.source.hostPath.path="$(dirname "$MODEL")" --set model.path="$(basename "$MODEL")" \
  --set image.repository="$IMAGE" --set image.tag="$VERSION" --set image.pullPolicy=Never \
  --set replicaCount=1 --set resources.requests.cpu=100m --set resources.requests.memory=256Mi \
  --set resources.limits.memory=512Mi --set podDisruptionBudget.enabled=false >/dev/null
pod_json() { api "$K8S_API/api/v1/namespaces/$NS/pods?labelSelector=app.kubernetes.io/instance=e2e"; }
started() {
  pod_json | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
st = items[0]["status"].get("containerStatuses", []) if items else []
sys.exit(0 if st and (st[0].get("restartCount", 0) > 0 or "running" in st[0]["state"]) else 1)'
}
wait_until 180 "started kinfer container" started || { pod_json | head -c 3000; tail -n 30 "$K8S_WORK/logs/kubelet.log"; exit 1; }
k8s_say "full cluster: the kubelet started the chart's pod from $IMAGE:$VERSION"
pod_json | python3 -c '
import json, sys
p = json.load(sys.stdin)["items"][0]
print("  pod", p["metadata"]["name"], "on", p["spec"].get("nodeName"), "phase", p["status"]["phase"], "IP", p["status"].get("podIP"))
for s in p["status"].get("containerStatuses", []):
    print("  container", s["name"], "ready", s["ready"], "restarts", s["restartCount"], "state", json.dumps(s["state"])[:300])'

if ! podman run --rm --network none "$IMAGE:$VERSION" serve --help 2>&1 | grep -q -- "--served-model-name"; then
  echo "SKIP: kinfer serve not built yet (full cluster: readiness, helm test and the Service request skipped)"
  api "$K8S_API/api/v1/namespaces/$NS/events" | python3 -c '
import json, sys
for e in json.load(sys.stdin)["items"][-8:]: print("  event", e["reason"], e["message"][:160])'
  exit 0
fi

ready() {
  pod_json | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
sys.exit(0 if items and any(c["type"] == "Ready" and c["status"] == "True" for c in items[0]["status"].get("conditions", [])) else 1)'
}
wait_until 180 "Ready kinfer pod (startup and readiness probes passing)" ready
k8s_say "full cluster: the pod is Ready (probes on /health and /ready pass)"
SVC_IP=$(api "$K8S_API/api/v1/namespaces/$NS/services/e2e-kinfer" | python3 -c 'import json,sys; print(json.load(sys.stdin)["spec"]["clusterIP"])')
iptables-save -t nat | grep -q -- "$SVC_IP/32" || { k8s_say "kube-proxy wrote no rule for $SVC_IP"; exit 1; }
wait_until 60 "answer from the Service" curl -fsS --max-time 5 "http://$SVC_IP:8000/v1/models"
k8s_say "full cluster: GET http://$SVC_IP:8000/v1/models through the Service: $(curl -fsS --max-time 5 "http://$SVC_IP:8000/v1/models")"
