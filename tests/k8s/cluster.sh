#!/usr/bin/env bash
# Starts a real Kubernetes control plane on loopback for the tests: etcd and kube-apiserver on
# free ports, in a temp dir, with certificates made here by openssl (full_cluster.sh adds the
# rest of a cluster on top). Sourced by run.sh, which calls k8s_cluster_up and traps
# k8s_cluster_down.
#
# Exports: K8S_WORK (temp dir, logs in $K8S_WORK/logs), KUBECONFIG, K8S_API (https URL),
# K8S_CA, K8S_CLIENT_CERT, K8S_CLIENT_KEY (an admin identity in system:masters), K8S_ETCD (etcd's
# client URL, for compaction), K8S_RESTART_APISERVER (a script that restarts kube-apiserver with
# the same flags and waits until it is ready again), K8S_AUDIT_LOG (the API server's audit log of
# every request made by a ServiceAccount: what the RBAC tests compare the chart's roles with).
set -euo pipefail

K8S_PIDS=()

k8s_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# k8s_wait_http NAME URL SECONDS [curl args...]: polls until URL answers 200, else fails with
# the component's log tail.
k8s_wait_http() {
  local name=$1 url=$2 secs=$3
  shift 3
  local deadline=$((SECONDS + secs))
  until curl -fsS -o /dev/null --max-time 2 "$@" "$url" 2>/dev/null; do
    if ((SECONDS > deadline)); then
      k8s_say "error: $name did not answer $url within ${secs}s; last lines of its log:"
      tail -n 30 "$K8S_WORK/logs/$name.log" >&2 || true
      return 1
    fi
    sleep 0.5
  done
}

k8s_gen_certs() {
  local d=$K8S_WORK/pki
  mkdir -p "$d"
  (
    cd "$d"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2 \
      -subj "/CN=kinfer-test-ca" 2>/dev/null
    cat >server.ext <<EXT
subjectAltName=IP:127.0.0.1,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth
EXT
    printf 'extendedKeyUsage=clientAuth\n' >client.ext
    # name CN O ext
    for spec in "apiserver kube-apiserver - server.ext" "admin kinfer-test-admin system:masters client.ext" \
      "apiserver-kubelet-client kube-apiserver-kubelet-client system:masters client.ext" \
      "controller-manager system:kube-controller-manager - client.ext" \
      "scheduler system:kube-scheduler - client.ext" \
      "kubelet system:node:kinfer-node system:nodes client.ext"; do
      read -r name cn org ext <<<"$spec"
      local subj="/CN=$cn"
      [[ $org != - ]] && subj="/O=$org/CN=$cn"
      openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subj" 2>/dev/null
      openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 \
        -extfile "$ext" -out "$name.crt" 2>/dev/null
    done
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
  )
}

# k8s_kubeconfig FILE CERTNAME
k8s_kubeconfig() {
  local d=$K8S_WORK/pki
  cat >"$1" <<EOF2
apiVersion: v1
kind: Config
clusters:
- name: test
  cluster: {server: "$K8S_API", certificate-authority: "$d/ca.crt"}
users:
- name: $2
  user: {client-certificate: "$d/$2.crt", client-key: "$d/$2.key"}
contexts:
- name: test
  context: {cluster: test, user: $2}
current-context: test
EOF2
}

k8s_cluster_up() {
  K8S_WORK="$(mktemp -d "${TMPDIR:-/tmp}/kinfer-k8s.XXXXXX")"
  mkdir -p "$K8S_WORK/logs"
  local etcd_port etcd_peer api_port start=$SECONDS
  etcd_port=$(k8s_free_port)
  etcd_peer=$(k8s_free_port)
  api_port=$(k8s_free_port)
  K8S_API="https://127.0.0.1:$api_port"
  k8s_say "control plane in $K8S_WORK: etcd on 127.0.0.1:$etcd_port, kube-apiserver on $K8S_API"
  k8s_gen_certs

  "$K8S_BIN/etcd" --name test --data-dir "$K8S_WORK/etcd" \
    --listen-client-urls "http://127.0.0.1:$etcd_port" --advertise-client-urls "http://127.0.0.1:$etcd_port" \
    --listen-peer-urls "http://127.0.0.1:$etcd_peer" --initial-advertise-peer-urls "http://127.0.0.1:$etcd_peer" \
    --initial-cluster "test=http://127.0.0.1:$etcd_peer" --unsafe-no-fsync --log-level warn \
    >"$K8S_WORK/logs/etcd.log" 2>&1 9>&- &
  K8S_PIDS+=($!)
  k8s_wait_http etcd "http://127.0.0.1:$etcd_port/health" 60
  k8s_say "etcd ready ($((SECONDS - start))s)"

  local d=$K8S_WORK/pki
  # Every request by a ServiceAccount, at Metadata level (user, verb, resource, code).
  cat >"$K8S_WORK/audit-policy.yaml" <<'YAML'
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: Metadata
  userGroups: ["system:serviceaccounts"]
- level: None
YAML
  local api_args=(--etcd-servers "http://127.0.0.1:$etcd_port"
    --bind-address 127.0.0.1 --advertise-address 127.0.0.1 --secure-port "$api_port"
    --cert-dir "$K8S_WORK/apiserver" --tls-cert-file "$d/apiserver.crt" --tls-private-key-file "$d/apiserver.key"
    --client-ca-file "$d/ca.crt" --authorization-mode Node,RBAC
    --kubelet-client-certificate "$d/apiserver-kubelet-client.crt" --kubelet-client-key "$d/apiserver-kubelet-client.key"
    --service-account-issuer https://kubernetes.default.svc.cluster.local
    --service-account-key-file "$d/sa.pub" --service-account-signing-key-file "$d/sa.key"
    --service-cluster-ip-range 10.96.0.0/16 --allow-privileged=false
    --enable-admission-plugins NodeRestriction
    --audit-policy-file "$K8S_WORK/audit-policy.yaml" --audit-log-path "$K8S_WORK/logs/audit.log"
    --audit-log-format json)
  "$K8S_BIN/kube-apiserver" "${api_args[@]}" >"$K8S_WORK/logs/kube-apiserver.log" 2>&1 9>&- &
  K8S_PIDS+=($!)
  echo $! >"$K8S_WORK/kube-apiserver.pid"
  # The 410 Gone tests restart the API server (its watch cache starts empty) with the same flags.
  {
    echo '#!/usr/bin/env bash'
    echo 'set -euo pipefail'
    echo "pid=\$(cat $K8S_WORK/kube-apiserver.pid)"
    echo 'kill "$pid" 2>/dev/null || true'
    echo 'for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done'
    echo 'kill -9 "$pid" 2>/dev/null || true'
    printf '%q ' "$K8S_BIN/kube-apiserver" "${api_args[@]}"
    echo ">>$K8S_WORK/logs/kube-apiserver.log 2>&1 9>&- &"
    echo "echo \$! >$K8S_WORK/kube-apiserver.pid"
    printf 'until curl -fsS -o /dev/null --max-time 2 --cacert %q --cert %q --key %q %q; do sleep 0.2; done\n' \
      "$d/ca.crt" "$d/admin.crt" "$d/admin.key" "$K8S_API/readyz"
  } >"$K8S_WORK/restart-apiserver.sh"
  chmod +x "$K8S_WORK/restart-apiserver.sh"
  K8S_CA=$d/ca.crt
  K8S_CLIENT_CERT=$d/admin.crt
  K8S_CLIENT_KEY=$d/admin.key
  k8s_wait_http kube-apiserver "$K8S_API/readyz" 180 --cacert "$K8S_CA" --cert "$K8S_CLIENT_CERT" --key "$K8S_CLIENT_KEY"
  k8s_say "kube-apiserver ready ($((SECONDS - start))s)"
  KUBECONFIG=$K8S_WORK/admin.kubeconfig
  k8s_kubeconfig "$KUBECONFIG" admin
  K8S_ETCD="http://127.0.0.1:$etcd_port"
  K8S_RESTART_APISERVER="$K8S_WORK/restart-apiserver.sh"
  K8S_AUDIT_LOG="$K8S_WORK/logs/audit.log"
  export K8S_WORK K8S_API K8S_CA K8S_CLIENT_CERT K8S_CLIENT_KEY KUBECONFIG K8S_ETCD K8S_RESTART_APISERVER \
    K8S_AUDIT_LOG
}

k8s_cluster_down() {
  local i pid deadline
  # Newest first (kubelet before the API server before etcd); whatever still runs after 10s
  # (kube-apiserver's graceful shutdown can take a minute) is killed.
  # A restarted API server (restart-apiserver.sh) has a new pid.
  if [[ -n ${K8S_WORK:-} && -s $K8S_WORK/kube-apiserver.pid ]]; then
    K8S_PIDS+=("$(cat "$K8S_WORK/kube-apiserver.pid")")
  fi
  for ((i = ${#K8S_PIDS[@]} - 1; i >= 0; i--)); do
    kill "${K8S_PIDS[i]}" 2>/dev/null || true
  done
  deadline=$((SECONDS + 10))
  for pid in "${K8S_PIDS[@]}"; do
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  K8S_PIDS=()
  if [[ -n ${K8S_WORK:-} && -d $K8S_WORK ]]; then
    if [[ ${KINFER_K8S_KEEP:-0} == 1 ]]; then
      k8s_say "kept $K8S_WORK (KINFER_K8S_KEEP=1)"
    else
      rm -rf "$K8S_WORK"
    fi
  fi
}
