#!/usr/bin/env bash
# The full cluster (run.sh runs it unless KINFER_K8S_FULL=0): on top of the running etcd and
# kube-apiserver (run.sh's k8s_cluster_up), start kube-controller-manager, kube-scheduler,
# containerd (Debian's) with runc and the bridge CNI plugin, kube-proxy and a kubelet; load the
# locally built image; install the chart with the tiny model from a hostPath; and check that its
# pod is scheduled, started from the image by the kubelet, probed, and (once `kinfer serve`
# exists) becomes Ready and answers through its Service; then the operator reconciles an LLMService
# into pods that answer through its Service and rolls them under streaming load (e2e_operator.py).
#
# Run from run.sh (it exports K8S_BIN, HELM, K8S_WORK, K8S_API, KUBECONFIG and the certs), as root.
# Network safety: pods get 10.244.0.0/24 on a local bridge without masquerading, and Service IPs
# (10.96.0.0/16) are routed to a portless bridge, so nothing addressed to them can leave the
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
MODEL="$(realpath "${KINFER_SMOKE_MODEL:-${KINFER_SHARED_DIR:-$ROOT/../shared}/models/stories260K/stories260K.gguf}")"
FULL_PIDS=()

# Tears down what this script made, in order: the kubelet and controllers, every pod's
# container (containerd's shims outlive containerd), the pods' network namespaces, kube-proxy's
# and the kubelet's iptables chains, containerd, leftover mounts, the bridges.
full_down() {
  set +e
  local pid id
  for ((i = ${#FULL_PIDS[@]} - 1; i >= 1; i--)); do kill "${FULL_PIDS[i]}" 2>/dev/null; done
  if [[ -S $W/containerd.sock ]]; then
    for id in $("${CTR[@]}" tasks ls -q 2>/dev/null); do
      "${CTR[@]}" tasks kill -s KILL "$id" >/dev/null 2>&1
    done
    sleep 1
    for id in $("${CTR[@]}" tasks ls -q 2>/dev/null); do "${CTR[@]}" tasks delete -f "$id" >/dev/null 2>&1; done
    for id in $("${CTR[@]}" containers ls -q 2>/dev/null); do "${CTR[@]}" containers delete "$id" >/dev/null 2>&1; done
  fi
  for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
    grep -qx "$ns" "$W/netns-before" 2>/dev/null || ip netns delete "$ns" 2>/dev/null
  done
  [[ -x $K8S_BIN/kube-proxy ]] && "$K8S_BIN/kube-proxy" --cleanup >/dev/null 2>&1
  local ipt t rule chain
  for ipt in iptables ip6tables; do
    for t in nat filter mangle; do
      # Jumps from the built-in chains into KUBE-* ones, then the KUBE-* chains themselves.
      "$ipt-save" -t "$t" 2>/dev/null | grep -E '^-A [A-Z]+ .*-j KUBE-' | grep -vE '^-A KUBE-' |
        while read -r rule; do eval "$ipt -t $t -D ${rule#-A }" 2>/dev/null; done
      for chain in $("$ipt-save" -t "$t" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do
        "$ipt" -t "$t" -F "$chain" 2>/dev/null
      done
      for chain in $("$ipt-save" -t "$t" 2>/dev/null | sed -n 's/^:\(KUBE-[^ ]*\) .*/\1/p'); do
        "$ipt" -t "$t" -X "$chain" 2>/dev/null
      done
    done
  done
  for pid in "${FULL_PIDS[@]}"; do kill "$pid" 2>/dev/null; done
  sleep 2
  for pid in "${FULL_PIDS[@]}"; do kill -9 "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; done
  grep " $W/" /proc/mounts | awk '{print $2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
  ip link del kinfer-svc 2>/dev/null
  ip link del kinfer0 2>/dev/null
  return 0
}
CTR=(ctr --address "$W/containerd.sock" -n k8s.io)
ip netns list 2>/dev/null | awk '{print $1}' >"$W/netns-before"
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

# --- our pause and stand-in images (tests/k8s/images/*.c) and kinfer, for containerd ----------
for prog in pause standin; do
  mkdir -p "$W/$prog-root"
  gcc -static -O2 -o "$W/$prog-root/$prog" "tests/k8s/images/$prog.c"
  tar -C "$W/$prog-root" -c . | podman import -q --change "ENTRYPOINT [\"/$prog\"]" - "localhost/kinfer-$prog:1" >/dev/null
  podman save -q --format docker-archive -o "$W/$prog.tar" "localhost/kinfer-$prog:1"
done
podman save -q --format docker-archive -o "$W/kinfer.tar" "$IMAGE:$VERSION"

# --- networking: a dead-end device owns the Service range; the bridge CNI serves pods -------
# (A portless bridge, since this kernel has no dummy driver: what is routed to it is dropped.)
# Pods get one route besides their subnet: the Service range, through the bridge's gateway (the
# node), where kube-proxy's rules translate it. No default route, so pod traffic stays here.
ip link show kinfer-svc >/dev/null 2>&1 || ip link add kinfer-svc type bridge
ip link set kinfer-svc up
ip route replace "$SVC_CIDR" dev kinfer-svc
mkdir -p "$W/cni"
cat >"$W/cni/10-kinfer.conflist" <<JSON
{"cniVersion": "0.4.0", "name": "kinfer",
 "plugins": [{"type": "bridge", "bridge": "kinfer0", "isGateway": true, "ipMasq": false,
              "hairpinMode": true,
              "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]],
                       "routes": [{"dst": "$SVC_CIDR"}], "dataDir": "$W/cni-ipam"}},
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
        BinaryName = "$ROOT/tests/k8s/runc-clamp-oom.sh"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$W/cni"
TOML
containerd --config "$W/containerd.toml" >"$K8S_WORK/logs/containerd.log" 2>&1 9>&- &
FULL_PIDS+=($!)
for _ in $(seq 60); do [[ -S $W/containerd.sock ]] && break; sleep 0.5; done
"${CTR[@]}" images import "$W/pause.tar" >/dev/null
"${CTR[@]}" images import "$W/standin.tar" >/dev/null
"${CTR[@]}" images import "$W/kinfer.tar" >/dev/null
k8s_say "containerd up; images: $("${CTR[@]}" images ls -q | grep -E 'kinfer' | tr '\n' ' ')"

# --- controller-manager, scheduler (admin identity: a throwaway test cluster) ----------------
"$K8S_BIN/kube-controller-manager" --kubeconfig "$KUBECONFIG" --leader-elect=false \
  --bind-address 127.0.0.1 --secure-port 0 --controllers '*' \
  --service-account-private-key-file "$K8S_WORK/pki/sa.key" --root-ca-file "$K8S_CA" \
  --cluster-cidr 10.244.0.0/16 --allocate-node-cidrs=false --service-cluster-ip-range "$SVC_CIDR" \
  >"$K8S_WORK/logs/kube-controller-manager.log" 2>&1 9>&- &
FULL_PIDS+=($!)
"$K8S_BIN/kube-scheduler" --kubeconfig "$KUBECONFIG" --leader-elect=false \
  --bind-address 127.0.0.1 --secure-port "$(k8s_free_port)" \
  >"$K8S_WORK/logs/kube-scheduler.log" 2>&1 9>&- &
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
  >"$K8S_WORK/logs/kubelet.log" 2>&1 9>&- &
FULL_PIDS+=($!)
"$K8S_BIN/kube-proxy" --kubeconfig "$KUBECONFIG" --hostname-override "$NODE" --proxy-mode iptables \
  --cluster-cidr 10.244.0.0/16 --conntrack-max-per-core 0 \
  --metrics-bind-address 127.0.0.1:$(k8s_free_port) --healthz-bind-address 127.0.0.1:$(k8s_free_port) \
  >"$K8S_WORK/logs/kube-proxy.log" 2>&1 9>&- &
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
show_pod() {
  pod_json | python3 -c '
import json, sys
for p in json.load(sys.stdin)["items"]:
    print("  pod", p["metadata"]["name"], "node", p["spec"].get("nodeName"), "phase", p["status"].get("phase"), "IP", p["status"].get("podIP"))
    for c in p["status"].get("conditions", []):
        print("    condition", c["type"], c["status"], c.get("reason", ""), c.get("message", "")[:200])
    for s in p["status"].get("initContainerStatuses", []) + p["status"].get("containerStatuses", []):
        print("    container", s["name"], "ready", s["ready"], "restarts", s["restartCount"], json.dumps(s["state"])[:400])'
  api "$K8S_API/api/v1/namespaces/$NS/events" | python3 -c '
import json, sys
for e in json.load(sys.stdin)["items"][-12:]:
    print("    event", e["involvedObject"]["kind"], e["reason"], e.get("message", "")[:240])'
}
if ! wait_until 180 "started kinfer container" started; then
  show_pod
  grep -v "nodeIP can't be loopback" "$K8S_WORK/logs/kubelet.log" | tail -n 20
  exit 1
fi
k8s_say "full cluster: the kubelet started the chart's pod from $IMAGE:$VERSION"
show_pod

log=$(find "$W/pod-logs" -path "*e2e-kinfer*" -name '*.log' | head -1)
[[ -n $log ]] && k8s_say "full cluster: the kinfer container's own words: $(tail -n 2 "$log" | cut -d' ' -f4- | tr '\n' ' ')"

# pod_ready NS SELECTOR; service_answers NS SERVICE PATH: the Service's ClusterIP, once kube-proxy
# has a rule for it (Service IPs otherwise go to the dead-end bridge), answers PATH with 200.
pod_ready() {
  api "$K8S_API/api/v1/namespaces/$1/pods?labelSelector=$2" | python3 -c '
import json, sys
items = json.load(sys.stdin)["items"]
sys.exit(0 if items and any(c["type"] == "Ready" and c["status"] == "True" for c in items[0]["status"].get("conditions", [])) else 1)'
}
service_answers() {
  local ip
  ip=$(api "$K8S_API/api/v1/namespaces/$1/services/$2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["spec"]["clusterIP"])')
  wait_until 60 "kube-proxy rule for $ip" sh -c "iptables-save -t nat | grep -q -- '$ip/32'" || return 1
  wait_until 60 "answer from http://$ip:8000$3" curl -fsS --max-time 5 "http://$ip:8000$3" || return 1
  k8s_say "full cluster: GET http://$ip:8000$3 through Service $2: $(curl -fsS --max-time 5 "http://$ip:8000$3")"
}

# --- infrastructure check with a stand-in HTTP server (tests/k8s/images/standin.c, not kinfer) ---
api -X POST -H 'Content-Type: application/json' "$K8S_API/api/v1/namespaces/$NS/pods" -d @- >/dev/null <<JSON
{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "standin", "labels": {"app": "standin"}},
 "spec": {"automountServiceAccountToken": false,
  "securityContext": {"runAsNonRoot": true, "runAsUser": 65532, "seccompProfile": {"type": "RuntimeDefault"}},
  "containers": [{"name": "standin", "image": "localhost/kinfer-standin:1", "imagePullPolicy": "Never",
   "args": ["8000"], "ports": [{"name": "http", "containerPort": 8000}],
   "startupProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 1, "failureThreshold": 30},
   "readinessProbe": {"httpGet": {"path": "/ready", "port": "http"}, "periodSeconds": 2},
   "livenessProbe": {"httpGet": {"path": "/health", "port": "http"}, "periodSeconds": 5},
   "securityContext": {"allowPrivilegeEscalation": false, "readOnlyRootFilesystem": true, "capabilities": {"drop": ["ALL"]}}}]}}
JSON
api -X POST -H 'Content-Type: application/json' "$K8S_API/api/v1/namespaces/$NS/services" -d @- >/dev/null <<JSON
{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "standin"},
 "spec": {"selector": {"app": "standin"}, "ports": [{"name": "http", "port": 8000, "targetPort": "http"}]}}
JSON
wait_until 120 "Ready stand-in pod (kubelet HTTP probes)" pod_ready "$NS" app=standin
k8s_say "full cluster: infrastructure check: the stand-in pod passed its kubelet HTTP startup and readiness probes"
service_answers "$NS" standin /v1/models

wait_until 180 "Ready kinfer pod (startup and readiness probes passing)" pod_ready "$NS" app.kubernetes.io/instance=e2e
k8s_say "full cluster: the chart's pod is Ready (startup /health and readiness /ready probes pass)"
service_answers "$NS" e2e-kinfer /v1/models

# --- the operator: an LLMService becomes Ready pods behind its Service, and a rolling update
# under continuous streaming load drops nothing (tests/k8s/e2e_operator.py) ---------------------
"$HELM" uninstall e2e -n "$NS" >/dev/null
api -X DELETE "$K8S_API/api/v1/namespaces/$NS/pods/standin" >/dev/null || true
k8s_say "full cluster: kinfer operator reconciles LLMServices, rolled under streaming load (tests/k8s/e2e_operator.py)"
e2e_start=$SECONDS
KINFER_E2E_MODEL="$MODEL" KINFER_E2E_IMAGE="$IMAGE:$VERSION" python3 tests/k8s/e2e_operator.py
k8s_say "full cluster: the operator's e2e passed in $((SECONDS - e2e_start))s"

# --- the autoscaler: 1 -> 2 -> 1 under load, idle -> 0, cold start from zero, router frozen ---
# (tests/k8s/e2e_autoscale.py; KINFER_E2E_AUTOSCALE=0 skips it)
if [[ ${KINFER_E2E_AUTOSCALE:-1} == 1 ]]; then
  k8s_say "full cluster: the autoscaler scales an LLMService through its router (tests/k8s/e2e_autoscale.py)"
  KINFER_E2E_MODEL="$MODEL" KINFER_E2E_IMAGE="$IMAGE:$VERSION" python3 tests/k8s/e2e_autoscale.py
else
  k8s_say "full cluster: the autoscaler's e2e skipped (KINFER_E2E_AUTOSCALE=0)"
fi
