"""The operator in the full cluster (run by full_cluster.sh once the node is Ready): LLMServices
for the tiny model, one with its router and one without, become Ready pods that answer through
their Service, and a rolling update of both (a new engine flag) under continuous SSE load fails no
request and cuts no stream.

The operator runs on the node as a process with the admin identity; its pods, the engines and the
router, run in the kubelet from the locally built image. The router watches EndpointSlices from
inside its pod (in-cluster config: https://10.96.0.1:443, the `kubernetes` Service). The API server
listens on loopback only and advertises 127.0.0.1, which an Endpoints object may not hold, so that
Service has no endpoints here: ApiRelay gives it one, a TCP relay on the pod bridge's gateway
(10.244.0.1, reachable from pods only) to the API server. TLS runs end to end through it (the
serving certificate names 10.96.0.1).

Prints [figure] lines: create -> status (and where that time went), create -> Available and
first answer, rollout time, and streams started/completed/failed/cut during the rolling update."""

from __future__ import annotations

import json
import os
import pathlib
import socket
import subprocess
import sys
import threading
import time

import requests
import yaml

from e2e_lib import Api, Failure, figure, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
NS = "kinfer-llm"
OPNS = "kinfer-system"
# Two LLMServices rolled at the same time: one with its router in front of the engines (the
# entry Service selects the router), one without (the entry Service selects the engines, through
# kube-proxy). Without `kinfer router --endpointslices` only the second.
ROUTED, DIRECT = "tiny", "tiny-direct"


def say(msg: str) -> None:
    print(f"\033[1m[k8s]\033[0m operator e2e: {msg}", file=sys.stderr, flush=True)


def conditions(obj):
    # The API server writes status (and its conditions) after the create: absent or null until then.
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions") or []}


class ApiRelay:
    """The `kubernetes` Service's endpoint for pods: a TCP relay from the pod bridge's gateway to
    the API server on loopback, published as an EndpointSlice of that Service (kube-proxy then
    sends 10.96.0.1:443 to it). Test plumbing only, like the pause image and runc-clamp-oom.sh."""

    GATEWAY = "10.244.0.1"

    def __init__(self, api: "Api"):
        self.api = api
        target = api.base.removeprefix("https://")
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.srv.bind((self.GATEWAY, 0))
        except OSError as e:
            raise SystemExit(f"operator e2e: cannot listen on the pod bridge's gateway {self.GATEWAY} "
                             f"({e}): the bridge CNI makes it with the node's first pod, which "
                             f"full_cluster.sh starts before this test") from e
        self.srv.listen(64)
        self.port = self.srv.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True, name="api-relay").start()
        slice_ = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
                  "metadata": {"name": "kubernetes-e2e-relay", "namespace": "default",
                               "labels": {"kubernetes.io/service-name": "kubernetes",
                                          "endpointslice.kubernetes.io/managed-by": "kinfer-e2e"}},
                  "addressType": "IPv4",
                  "ports": [{"name": "https", "port": self.port, "protocol": "TCP"}],
                  "endpoints": [{"addresses": [self.GATEWAY], "conditions": {"ready": True}}]}
        r = api.apply("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices/kubernetes-e2e-relay", slice_)
        assert r.status_code in (200, 201), r.text

    def accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            try:
                u = socket.create_connection(self.target, timeout=10)
            except OSError:
                c.close()
                continue
            u.settimeout(None)
            for a, b in ((c, u), (u, c)):
                threading.Thread(target=self.pump, args=(a, b), daemon=True).start()

    @staticmethod
    def pump(a: socket.socket, b: socket.socket):
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for s in (a, b):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.srv.close()


def router_has_discovery(kinfer: str) -> bool:
    r = subprocess.run([kinfer, "router", "--help"], capture_output=True, text=True)
    return "--endpointslices" in r.stdout


class StreamLoad:
    """Raw SSE clients streaming completions back to back to one URL, each on its own keep-alive
    session, without retries: every request counts. A request that got no 200 (connection refused
    or reset, an HTTP error) failed; a stream that began (200, events) and ended without
    `data: [DONE]`, or with an error event, was cut."""

    def __init__(self, name: str, url: str, model: str, clients: int = 3):
        self.name, self.url, self.model = name, url, model
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.started = self.completed = 0
        self.failed: list[str] = []
        self.cut: list[str] = []
        self.threads = [threading.Thread(target=self.run, daemon=True, name=f"load-{name}-{i}")
                        for i in range(clients)]

    def note(self, bucket: list[str], e: Exception | str):
        msg = e if isinstance(e, str) else f"{type(e).__name__}: {e}"
        with self.lock:
            bucket.append(f"{time.strftime('%H:%M:%S')} {msg}"[:300])

    def run(self):
        s = requests.Session()
        s.trust_env = False
        while not self.stop.is_set():
            with self.lock:
                self.started += 1
            try:
                r = s.post(self.url + "/v1/completions", stream=True, timeout=60,
                           json={"model": self.model, "prompt": "Once upon a time", "max_tokens": 48,
                                 "stream": True, "temperature": 0})
            except Exception as e:  # noqa: BLE001 - every failure is counted and shown
                self.note(self.failed, e)
                continue
            if r.status_code != 200:
                self.note(self.failed, f"HTTP {r.status_code}: {r.text[:200]}")
                continue
            done = events = 0
            try:
                for line in r.iter_lines():
                    if line == b"data: [DONE]":
                        done = 1
                    elif line.startswith(b"data: "):
                        events += 1
                        if b'"error"' in line:
                            raise RuntimeError(line.decode()[:200])
                if not done:
                    raise RuntimeError(f"stream ended without [DONE] after {events} events")
            except Exception as e:  # noqa: BLE001
                self.note(self.cut, e)
                continue
            with self.lock:
                self.completed += 1

    def __enter__(self):
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=90)

    def summary(self) -> str:
        return (f"streams started {self.started}, completed {self.completed}, failed "
                f"{len(self.failed)}, cut {len(self.cut)}")


def main() -> int:
    kinfer = os.environ["KINFER_BIN"]
    model = pathlib.Path(os.environ["KINFER_E2E_MODEL"])
    image = os.environ["KINFER_E2E_IMAGE"]
    work = pathlib.Path(os.environ["K8S_WORK"])
    api = Api()

    # The CRD, and the operator on the node with the admin identity (RBAC is tested in the
    # pytest stage, test_operator.py).
    for crd in yaml.safe_load_all((ROOT / "deploy/crds/kinfer.dev_llmservices.yaml").read_text()):
        r = api.apply(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}", crd)
        assert r.status_code in (200, 201), r.text
    wait_for("Established CRD", lambda: any(
        c["type"] == "Established" and c["status"] == "True" for c in
        api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/llmservices.kinfer.dev").json()
        .get("status", {}).get("conditions") or []), 60)
    for ns in (NS, OPNS):
        api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})
    with_router = router_has_discovery(kinfer)
    relay = ApiRelay(api) if with_router else None
    log = open(work / "logs" / "operator-e2e.log", "w")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        health_port = sock.getsockname()[1]
    op = subprocess.Popen([kinfer, "operator", "--kubeconfig", os.environ["KUBECONFIG"],
                           "--leader-election-namespace", OPNS, "--image", image,
                           "--image-pull-policy", "Never", "--health-port", str(health_port)],
                          stdout=log, stderr=subprocess.STDOUT)
    ok = False
    try:
        # Creating the LLMService once the operator leads (its informers have synced by then), so
        # that create -> status measures a reconcile, not the operator's start.
        t = time.monotonic()
        wait_for("the operator holding its Lease", lambda: (
            api.get(f"/apis/coordination.k8s.io/v1/namespaces/{OPNS}/leases/kinfer-operator").json()
            .get("spec", {}).get("holderIdentity")), 60, 0.1)
        say(f"the operator leads {time.monotonic() - t:.1f} s after its start")
        rc = run(api, model, work, with_router, f"http://127.0.0.1:{health_port}/metrics")
        ok = rc == 0
        return rc
    finally:
        if not ok:
            show_state(api, work)
        for name in (ROUTED, DIRECT):
            api.s.delete(f"{api.base}/apis/kinfer.dev/v1alpha1/namespaces/{NS}/llmservices/{name}", timeout=30)
        op.terminate()
        op.wait(timeout=30)
        log.close()
        if relay:
            relay.close()


def show_state(api: "Api", work: pathlib.Path):
    """On failure: the LLMService's status, its pods, the operator's and the pods' last words."""
    try:
        for name in (ROUTED, DIRECT):
            o = api.get(f"/apis/kinfer.dev/v1alpha1/namespaces/{NS}/llmservices/{name}").json()
            say(f"LLMService {name} status: {json.dumps(o.get('status'))}")
        for p in api.get(f"/api/v1/namespaces/{NS}/pods").json()["items"]:
            say(f"pod {p['metadata']['name']} {p['status'].get('phase')} "
                f"{[(c['type'], c['status']) for c in p['status'].get('conditions', [])]}")
    except Exception as e:  # noqa: BLE001 - best effort
        say(f"could not read the state: {e}")
    for f in [work / "logs" / "operator-e2e.log",
              *sorted((work / "full" / "pod-logs").glob(f"{NS}_*/*/*.log"))]:
        try:
            lines = f.read_text(errors="replace").splitlines()[-8:]
        except OSError:
            continue
        say(f"last lines of {f.relative_to(work)}:\n    " + "\n    ".join(l[:300] for l in lines))


def service_url(api: "Api", name: str) -> str:
    """http://CLUSTER-IP:8000 of Service NAME, once kube-proxy has a rule for it."""
    ip = api.get(f"/api/v1/namespaces/{NS}/services/{name}").json()["spec"]["clusterIP"]
    wait_for(f"kube-proxy rule for Service {name} ({ip})", lambda: f"{ip}/32" in subprocess.run(
        ["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout, 60)
    return f"http://{ip}:8000"


def answers(url: str):
    """/v1/models lists tiny and a completion comes back, else None."""
    try:
        m = requests.get(url + "/v1/models", timeout=5)
        if m.status_code != 200 or [x["id"] for x in m.json()["data"]] != ["tiny"]:
            return None
        r = requests.post(url + "/v1/completions", timeout=30,
                          json={"model": "tiny", "prompt": "Once upon a time", "max_tokens": 16})
        return r.json()["choices"][0]["text"] if r.status_code == 200 else None
    except (requests.RequestException, ValueError, KeyError):
        return None


def engine_pods(api: "Api", name: str) -> set[str]:
    return {p["metadata"]["name"] for p in api.get(
        f"/api/v1/namespaces/{NS}/pods",
        params={"labelSelector": f"app.kubernetes.io/component=engine,app.kubernetes.io/instance={name}"}
    ).json()["items"]}


def metric_sums(metrics_url: str) -> dict[str, float]:
    """NAME -> value for the operator's unlabelled _sum/_count series (reconcile, queue wait)."""
    out: dict[str, float] = {}
    for line in requests.get(metrics_url, timeout=5).text.splitlines():
        name, _, value = line.partition(" ")
        if name.endswith(("_sum", "_count")) and "{" not in name:
            out[name] = float(value)
    return out


def apply_round_trip(api: "Api", n: int = 20) -> float:
    """Mean wall time of one server-side apply (a small ConfigMap, alternating content) from
    here: the unit that the operator's reconcile pays once per child object."""
    path = f"/api/v1/namespaces/{NS}/configmaps/e2e-apply-probe"
    t = time.monotonic()
    for i in range(n):
        r = api.apply(path, {"apiVersion": "v1", "kind": "ConfigMap",
                             "metadata": {"name": "e2e-apply-probe", "namespace": NS},
                             "data": {"i": str(i % 2)}})
        assert r.status_code in (200, 201), r.text
    dt = (time.monotonic() - t) / n
    api.s.delete(f"{api.base}{path}", timeout=30)
    return dt


class Service:
    """One LLMService under test: its spec, and what the test saw of it."""

    def __init__(self, name: str, router: bool, model: pathlib.Path):
        self.name, self.router = name, router
        self.path = f"/apis/kinfer.dev/v1alpha1/namespaces/{NS}/llmservices/{name}"
        self.obj = {"apiVersion": "kinfer.dev/v1alpha1", "kind": "LLMService",
                    "metadata": {"name": name, "namespace": NS},
                    "spec": {"model": {"name": "tiny", "path": model.name,
                                       "source": {"hostPath": {"path": str(model.parent)}}},
                             "engine": {"maxNumSeqs": 8, "shutdownTimeoutSeconds": 20},
                             "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                           "limits": {"memory": "512Mi"}},
                             "replicas": 2,
                             "router": {"enabled": router, "replicas": 1,
                                        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                                      "limits": {"memory": "256Mi"}}}}}
        self.via = "the router" if router else "kube-proxy to the engines"

    def available(self, api: "Api"):
        o = api.get(self.path).json()
        st = o.get("status") or {}
        ok = (conditions(o).get("Available", {}).get("status") == "True"
              and st.get("readyReplicas") == 2 and (not self.router or st.get("routerReadyReplicas") == 1))
        return o if ok else None


def create(api: "Api", svc: Service, metrics_url: str) -> float:
    """Creates the LLMService; returns the seconds until the operator wrote its status, and
    prints where they went: the operator's reconcile and queue-wait histograms (deltas), the
    child objects it applied (one server-side apply after the other), one apply's round trip."""
    m0 = metric_sums(metrics_url)
    t0 = time.monotonic()
    r = api.post(f"/apis/kinfer.dev/v1alpha1/namespaces/{NS}/llmservices", svc.obj)
    assert r.status_code == 201, r.text
    # The API server's own part: its admission of the first object of a kind (ResourceQuota's
    # evaluator for the kind is made then, logged as "quota admission added evaluator") is slow.
    t_post = time.monotonic() - t0
    wait_for(f"status of {svc.name} written by the operator", lambda: conditions(api.get(svc.path).json()),
             60, 0.02)
    t_status = time.monotonic() - t0
    m = metric_sums(metrics_url)
    d = {k: m.get(k, 0) - m0.get(k, 0) for k in m}
    children = sum(len(api.get(f"{base}/namespaces/{NS}/{kind}",
                                params={"labelSelector": f"app.kubernetes.io/instance={svc.name}"}).json()["items"])
                   for base, kinds in (("/api/v1", ("services", "serviceaccounts")),
                                       ("/apis/apps/v1", ("deployments",)),
                                       ("/apis/policy/v1", ("poddisruptionbudgets",)),
                                       ("/apis/networking.k8s.io/v1", ("networkpolicies",)),
                                       ("/apis/rbac.authorization.k8s.io/v1", ("roles", "rolebindings")))
                   for kind in kinds)
    figure(f"LLMService {svc.name} created -> status written {t_status:.2f} s (the POST itself "
           f"{t_post:.2f} s); meanwhile the operator "
           f"ran {d.get('kinfer_operator_reconcile_duration_seconds_count', 0):.0f} reconcile(s) taking "
           f"{d.get('kinfer_operator_reconcile_duration_seconds_sum', 0):.3f} s, after "
           f"{d.get('kinfer_operator_queue_wait_seconds_sum', 0):.3f} s in its work queue; {children} "
           f"child objects applied one after the other; one server-side apply from here "
           f"{apply_round_trip(api) * 1000:.0f} ms (mean of 20)")
    return t_status


def run(api: Api, model: pathlib.Path, work: pathlib.Path, with_router: bool, metrics_url: str) -> int:
    services = ([Service(ROUTED, True, model)] if with_router else []) + [Service(DIRECT, False, model)]
    t0 = time.monotonic()
    for svc in services:
        svc.t_created = time.monotonic()
        create(api, svc, metrics_url)
    for svc in services:
        live = wait_for(f"Available LLMService {svc.name} with 2 ready engines"
                        + (" and a ready router" if svc.router else ""), lambda: svc.available(api), 300, 0.25)
        svc.t_available = time.monotonic() - svc.t_created
        svc.generation = live["metadata"]["generation"]
        say(f"{svc.name} status: {json.dumps({k: v for k, v in live['status'].items() if k != 'conditions'})}")
        svc.url = service_url(api, svc.name)
        text = wait_for(f"a completion through Service {svc.name} ({svc.url})", lambda: answers(svc.url), 60, 0.25)
        svc.t_answer = time.monotonic() - svc.t_created
        say(f"Service {svc.name} ({svc.url}, {svc.via}): /v1/models lists tiny; completion {text!r}")
        figure(f"LLMService {svc.name} ({'router + ' if svc.router else ''}2 engines) created -> "
               f"Available {svc.t_available:.1f} s, first completion through its Service "
               f"{svc.t_answer:.1f} s (pods start, model load, readiness probes)")
    say(f"all Available and answering {time.monotonic() - t0:.1f} s after the first create")

    # The rolling update: a new engine flag on every LLMService at once, with SSE streams through
    # each entry Service running the whole time.
    for svc in services:
        svc.old_pods = engine_pods(api, svc.name)
    loads = [StreamLoad(svc.name, svc.url, "tiny", clients=3) for svc in services]
    for load in loads:
        load.__enter__()
    try:
        time.sleep(5)
        warm = {load.name: load.completed for load in loads}
        t1 = time.monotonic()
        for svc in services:
            r = api.merge(svc.path, {"spec": {"engine": {"extraArgs": ["--max-queue-len=64"]}}})
            assert r.status_code == 200, r.text

        def rolled(svc: Service):
            o = api.get(svc.path).json()
            c = conditions(o)
            names = engine_pods(api, svc.name)
            return ((o.get("status") or {}).get("observedGeneration") == svc.generation + 1
                    and c.get("Progressing", {}).get("status") == "False"
                    and c.get("Available", {}).get("status") == "True"
                    and not (names & svc.old_pods) and len(names) == 2)
        for svc in services:
            wait_for(f"rolling update of {svc.name} done (new pods ready, old ones gone)",
                     lambda: rolled(svc), 300, 0.25)
            svc.rollout = time.monotonic() - t1
        time.sleep(5)
    finally:
        for load in loads:
            load.__exit__(None, None, None)
    bad = 0
    for svc, load in zip(services, loads):
        args = api.get(f"/apis/apps/v1/namespaces/{NS}/deployments/{svc.name}-engine").json()[
            "spec"]["template"]["spec"]["containers"][0]["args"]
        assert "--max-queue-len=64" in args, args
        figure(f"rolling update of {svc.name} (2 engines, new engine flag, maxSurge 1): old pods gone "
               f"and Available again {svc.rollout:.1f} s after the edit; SSE streams through its "
               f"Service ({svc.via}, {len(load.threads)} clients, from 5 s before the edit to 5 s "
               f"after): {load.summary()} ({warm[load.name]} completed before the edit)")
        for what, items in (("failed", load.failed), ("cut", load.cut)):
            for f in items[:10]:
                say(f"{load.name}: {what}: {f}")
        bad += len(load.failed) + len(load.cut)
    if bad:
        say("FAILED: requests failed or streams were cut during the rolling update")
        return 1
    say("no request failed and no stream was cut during the rolling update")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        sys.exit(f"operator e2e: {e}")
