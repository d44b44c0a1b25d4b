"""The autoscaler on the full cluster (run by full_cluster.sh once the node is Ready;
KINFER_E2E_AUTOSCALE=0 skips it): an LLMService for the tiny model with its router, minReplicas 0
and short windows.

  1. streaming load through the router (Service -> router pod -> engine pods) takes replicas
     1 -> 2; with two clients left streaming, 2 -> 1 (the drained replica's streams finish), with
     zero failed or cut streams;
  2. idle, replicas go to 0;
  3. five concurrent requests at zero are all answered (the router holds them and patches /scale
     0 -> 1): cold start to first token is recorded;
  4. a request sent as the autoscaler takes 1 -> 0 is answered;
  5. with the router frozen (its container paused: not ready, /metrics unreadable), replicas stay
     where they are for longer than scaleToZeroAfter.
Hold timeout -> 503 and a full queue -> 429 are checked on the API server by
test_scale_from_zero.py (the same router code; no kubelet needed).

The operator runs on the node as a process (admin identity); engines and the router run in the
kubelet from the locally built image. The router pod reaches the API server through the
`kubernetes` Service address (10.96.0.1:443, in the server's certificate): the API server listens
on loopback only, so this script DNATs that address, for traffic from the pod bridge, to a TCP
relay it runs on the bridge's gateway address (removed at the end).

Prints [figure] lines: time to scale up, cold start to first token, streams
started/completed/failed."""

from __future__ import annotations

import calendar
import json
import os
import pathlib
import select
import socket
import subprocess
import sys
import threading
import time

import requests
import yaml

from e2e_lib import Api, Failure, figure, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
NS = "kinfer-as"
OPNS = "kinfer-system"
NAME = "tiny"
BRIDGE_GW = "10.244.0.1"
KUBERNETES_SVC = "10.96.0.1"
T0 = time.monotonic()


def say(msg: str) -> None:
    print(f"\033[1m[k8s]\033[0m autoscale e2e [{time.monotonic() - T0:6.1f}s]: {msg}", file=sys.stderr,
          flush=True)


class Relay:
    """TCP relay BRIDGE_GW:port -> the API server on loopback (for the router pod)."""

    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind((BRIDGE_GW, 0))
        self.ls.listen(64)
        self.port = self.ls.getsockname()[1]
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.ls.accept()
            except OSError:
                return
            threading.Thread(target=self.pipe, args=(c,), daemon=True).start()

    def pipe(self, c):
        try:
            u = socket.create_connection(self.target, timeout=10)
            u.settimeout(None)
        except OSError:
            c.close()
            return
        socks = [c, u]
        try:
            while True:
                r, _, _ = select.select(socks, [], [])
                for s in r:
                    data = s.recv(65536)
                    if not data:
                        return
                    (u if s is c else c).sendall(data)
        except OSError:
            pass
        finally:
            c.close()
            u.close()


class Load:
    """Clients streaming completions back to back through the router's Service, without retries:
    every failure counts (a non-200, an error event, a stream without [DONE])."""

    def __init__(self, url: str, max_tokens: int):
        self.url, self.max_tokens = url, max_tokens
        self.lock = threading.Lock()
        self.started = self.completed = 0
        self.failures: list[str] = []
        self.threads: list[tuple[threading.Thread, threading.Event]] = []

    def one(self, s: requests.Session) -> None:
        with self.lock:
            self.started += 1
            n = self.started
        try:
            # A different start for each request: nothing for the router's prefix policy to keep
            # on one replica, so it spreads them by load.
            r = s.post(self.url + "/v1/completions", stream=True, timeout=120,
                       json={"model": NAME, "prompt": f"Story {n}. Once upon a time",
                             "max_tokens": self.max_tokens,
                             "ignore_eos": True, "stream": True, "temperature": 0})
            if r.status_code != 200:
                raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
            done = False
            for line in r.iter_lines():
                if line == b"data: [DONE]":
                    done = True
                elif line.startswith(b"data: ") and b'"error"' in line:
                    raise RuntimeError(line.decode()[:200])
            if not done:
                raise RuntimeError("stream ended without [DONE]")
            with self.lock:
                self.completed += 1
        except Exception as e:  # noqa: BLE001 - every failure is counted and shown
            with self.lock:
                self.failures.append(f"{time.strftime('%H:%M:%S')} {type(e).__name__}: {e}"[:300])

    def client(self, stop: threading.Event) -> None:
        s = requests.Session()
        s.trust_env = False
        while not stop.is_set():
            self.one(s)

    def resize(self, n: int) -> None:
        while len(self.threads) < n:
            ev = threading.Event()
            t = threading.Thread(target=self.client, args=(ev,), daemon=True)
            t.start()
            self.threads.append((t, ev))
        leaving = self.threads[n:]
        del self.threads[n:]
        for _, ev in leaving:
            ev.set()  # each finishes the stream it is in
        for t, _ in leaving:
            t.join(timeout=120)

    def text(self) -> str:
        return f"started {self.started}, completed {self.completed}, failed {len(self.failures)}"


def first_token(url: str, out: list, i: int) -> None:
    """One streaming request; records (status, seconds to the first token, error)."""
    t = time.monotonic()
    try:
        s = requests.Session()
        s.trust_env = False
        r = s.post(url + "/v1/completions", stream=True, timeout=180,
                   json={"model": NAME, "prompt": "Once upon a time", "max_tokens": 16, "stream": True,
                         "temperature": 0})
        if r.status_code != 200:
            out[i] = (r.status_code, None, r.text[:200])
            return
        ttft = None
        done = False
        for line in r.iter_lines():
            if ttft is None and line.startswith(b"data: {") and b'"text"' in line:
                ttft = time.monotonic() - t
            if line == b"data: [DONE]":
                done = True
        out[i] = (200, ttft, None if done else "no [DONE]")
    except Exception as e:  # noqa: BLE001
        out[i] = (None, None, f"{type(e).__name__}: {e}"[:200])


def main() -> int:
    kinfer = os.environ["KINFER_BIN"]
    # KINFER_E2E_COLD_MODEL=/path/to.gguf (by hand, not in CI): only idle -> 0 and the five requests
    # at zero, with that model (the default model's cold start).
    model = pathlib.Path(os.environ.get("KINFER_E2E_COLD_MODEL") or os.environ["KINFER_E2E_MODEL"])
    image = os.environ["KINFER_E2E_IMAGE"]
    work = pathlib.Path(os.environ["K8S_WORK"])
    api = Api()
    apihost, apiport = os.environ["K8S_API"].removeprefix("https://").rsplit(":", 1)

    for crd in yaml.safe_load_all((ROOT / "deploy/crds/kinfer.dev_llmservices.yaml").read_text()):
        r = api.apply(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd['metadata']['name']}", crd)
        assert r.status_code in (200, 201), r.text
    wait_for("Established CRD", lambda: any(
        c["type"] == "Established" and c["status"] == "True" for c in
        api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/llmservices.kinfer.dev").json()
        .get("status", {}).get("conditions") or []), 60)  # null right after the create
    for ns in (NS, OPNS):
        api.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}})

    relay = Relay(apihost, int(apiport))
    dnat = ["PREROUTING", "-i", "kinfer0", "-d", f"{KUBERNETES_SVC}/32", "-p", "tcp", "--dport", "443",
            "-j", "DNAT", "--to-destination", f"{BRIDGE_GW}:{relay.port}"]
    subprocess.run(["iptables", "-t", "nat", "-I", *dnat], check=True)
    log = open(work / "logs" / "operator-autoscale-e2e.log", "w")
    op = subprocess.Popen([kinfer, "operator", "--kubeconfig", os.environ["KUBECONFIG"],
                           "--leader-election-namespace", OPNS, "--image", image,
                           "--image-pull-policy", "Never", "--health-port", "0"],
                          stdout=log, stderr=subprocess.STDOUT)
    try:
        return run(api, model)
    except Failure as e:
        say(f"FAILED: {e}")
        return 1
    finally:
        path = f"/apis/kinfer.dev/v1alpha1/namespaces/{NS}/llmservices/{NAME}"
        try:
            say(f"LLMService at the end: {json.dumps(api.get(path).json().get('status'))[:1500]}")
        except Exception:  # noqa: BLE001
            pass
        api.s.delete(api.base + path, timeout=30)
        op.terminate()
        op.wait(timeout=30)
        log.close()
        subprocess.run(["iptables", "-t", "nat", "-D", *dnat], check=False)
        relay.ls.close()


def scale_up_and_down(api, load, spec_replicas, engines) -> bool:
    """1 -> 2 under load, then 2 -> 1 with one client streaming; True when a stream failed."""
    failed = False
    t1 = time.monotonic()
    load.resize(4)
    try:
        wait_for("spec.replicas 2 under load", lambda: spec_replicas() == 2, 60)
        up_spec = time.monotonic() - t1
        wait_for("2 ready engines", lambda: len(engines()) == 2, 120)
        up_ready = time.monotonic() - t1
        figure(f"autoscale e2e: 4 streaming clients through the router (targetConcurrency 3): spec.replicas 1 -> 2 after "
               f"{up_spec:.1f} s, second engine Ready after {up_ready:.1f} s")
        time.sleep(3)
        # Two clients, one long stream after another (about 1-3 s each): a concurrency of about 2,
        # below the target of 3, so one replica is enough; the router spreads them, so the
        # replica chosen to go is in the middle of a stream when its drain starts.
        load.max_tokens = 1500
        load.resize(2)
        t2 = time.monotonic()
        drained: dict = {}  # pod -> most requests its engine reported running while drained

        def scale_down_seen():
            for p in api.get(f"/api/v1/namespaces/{NS}/pods",
                             params={"labelSelector": "app.kubernetes.io/component=engine,"
                                                      "kinfer.dev/serving=false"}).json()["items"]:
                if not p["status"].get("podIP"):
                    continue
                try:
                    text = requests.get(f"http://{p['status']['podIP']}:9090/metrics", timeout=2).text
                except requests.RequestException:
                    continue
                running = sum(float(line.split()[-1]) for line in text.splitlines()
                              if line.split("{")[0].split(" ")[0].endswith(":num_requests_running"))
                name = p["metadata"]["name"]
                drained[name] = max(drained.get(name, 0), running)
            return spec_replicas() == 1
        wait_for("spec.replicas 1 with two clients streaming", scale_down_seen, 60)
        down_spec = time.monotonic() - t2
        wait_for("the drained pod terminating", lambda: len(engines(ready_only=False)) == 1, 90)
        down_gone = time.monotonic() - t2
        time.sleep(2)
    finally:
        load.resize(0)
    figure(f"autoscale e2e: load down to 2 streaming clients: spec.replicas 2 -> 1 after {down_spec:.1f} s "
           f"(drain first), drained pod terminating after {down_gone:.1f} s; requests running on the drained "
           f"engine while draining (most seen): {drained or 'none seen'}; streams through "
           f"1 -> 2 -> 1: {load.text()}")
    for f in load.failures[:20]:
        say(f"failed stream: {f}")
    if load.failures:
        say("FAILED: streams failed or were cut during 1 -> 2 -> 1")
        failed = True

    return failed


def run(api: Api, model: pathlib.Path) -> int:
    path = f"/apis/kinfer.dev/v1alpha1/namespaces/{NS}/llmservices/{NAME}"
    obj = {"apiVersion": "kinfer.dev/v1alpha1", "kind": "LLMService",
           "metadata": {"name": NAME, "namespace": NS},
           "spec": {"model": {"name": NAME, "path": model.name,
                              "source": {"hostPath": {"path": str(model.parent)}}},
                    "engine": {"maxNumSeqs": 8, "shutdownTimeoutSeconds": 20},
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"},
                                  "limits": {"memory": "512Mi"}},
                    "replicas": 1,
                    "router": {"enabled": True, "replicas": 1,
                               "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                             "limits": {"memory": "256Mi"}}},
                    "autoscaling": {"minReplicas": 0, "maxReplicas": 2, "targetConcurrency": 3,
                                    "stableWindow": "4s", "panicWindow": "2s", "scaleDownDelay": "2s",
                                    "scaleToZeroAfter": "10s"}}}
    t0 = time.monotonic()
    r = api.post(f"/apis/kinfer.dev/v1alpha1/namespaces/{NS}/llmservices", obj)
    assert r.status_code == 201, r.text

    def spec_replicas():
        return api.get(path).json()["spec"].get("replicas", 0)

    def engines(ready_only=True, serving_only=False):
        pods = api.get(f"/api/v1/namespaces/{NS}/pods",
                       params={"labelSelector": "app.kubernetes.io/component=engine"}).json()["items"]
        out = []
        for p in pods:
            if p["metadata"].get("deletionTimestamp"):
                continue
            ready = any(c["type"] == "Ready" and c["status"] == "True"
                        for c in p["status"].get("conditions", []))
            if ready_only and not ready:
                continue
            if serving_only and p["metadata"]["labels"].get("kinfer.dev/serving") == "false":
                continue
            out.append(p["metadata"]["name"])
        return out

    def routers_ready():
        pods = api.get(f"/api/v1/namespaces/{NS}/pods",
                       params={"labelSelector": "app.kubernetes.io/component=router"}).json()["items"]
        return [p for p in pods if not p["metadata"].get("deletionTimestamp") and any(
            c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))]

    try:
        wait_for("ready router pod and engine pod", lambda: routers_ready() and engines(), 240, 1)
    except Failure:
        print(json.dumps(api.get(path).json().get("status"), indent=1), file=sys.stderr)
        for p in api.get(f"/api/v1/namespaces/{NS}/pods").json()["items"]:
            say(f"pod {p['metadata']['name']}: {json.dumps(p['status'])[:1500]}")
        raise
    say(f"router and 1 engine ready after {time.monotonic() - t0:.1f} s")
    svc = api.get(f"/api/v1/namespaces/{NS}/services/{NAME}").json()
    ip = svc["spec"]["clusterIP"]
    url = f"http://{ip}:8000"
    wait_for(f"kube-proxy rule for {ip}", lambda: ip in subprocess.run(
        ["iptables-save", "-t", "nat"], capture_output=True, text=True).stdout, 60)
    wait_for("a completion through the router", lambda: (lambda r: r.status_code == 200)(
        requests.post(url + "/v1/completions", timeout=30,
                      json={"model": NAME, "prompt": "Once", "max_tokens": 4})), 60, 1)
    say(f"a completion through the router's Service ({url}) answered")

    failed = False
    cold_only = bool(os.environ.get("KINFER_E2E_COLD_MODEL"))
    load = Load(url, max_tokens=200)
    if not cold_only:
        failed = scale_up_and_down(api, load, spec_replicas, engines)

    # 2. Idle -> 0.
    t3 = time.monotonic()
    wait_for("spec.replicas 0 when idle", lambda: spec_replicas() == 0, 60)
    to_zero = time.monotonic() - t3
    wait_for("no engine pod", lambda: not engines(ready_only=False), 90)
    figure(f"autoscale e2e: idle -> spec.replicas 0 after {to_zero:.1f} s (scaleToZeroAfter 10 s), "
           f"last engine pod gone after {time.monotonic() - t3:.1f} s")

    # 3. Five concurrent requests at zero.
    out: list = [None] * 5
    threads = [threading.Thread(target=first_token, args=(url, out, i)) for i in range(5)]
    t4 = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=200)
    cold = time.monotonic() - t4
    wall4 = time.time() - cold
    steps = []
    for p in sorted(api.get(f"/api/v1/namespaces/{NS}/pods",
                            params={"labelSelector": "app.kubernetes.io/component=engine"}).json()["items"],
                    key=lambda p: p["metadata"]["creationTimestamp"]):
        if calendar.timegm(time.strptime(p["metadata"]["creationTimestamp"], "%Y-%m-%dT%H:%M:%SZ")) < wall4 - 2:
            continue  # an earlier replica, still terminating
        st = p["status"]
        ready = [c["lastTransitionTime"] for c in st.get("conditions", []) if c["type"] == "Ready"
                 and c["status"] == "True"]
        started = [c["state"]["running"]["startedAt"] for c in st.get("containerStatuses", [])
                   if "running" in c["state"]]

        def rel(ts):  # RFC 3339, whole seconds
            return calendar.timegm(time.strptime(ts, "%Y-%m-%dT%H:%M:%SZ")) - wall4
        steps.append(f"{p['metadata']['name']}: pod created +{rel(p['metadata']['creationTimestamp']):.0f} s, container started "
                     f"+{rel(started[0]) if started else float('nan'):.0f} s, Ready "
                     f"+{rel(ready[0]) if ready else float('nan'):.0f} s")
    say(f"cold start steps (API timestamps, whole seconds, from the requests): {steps}")
    ttfts = sorted(o[1] for o in out if o and o[1] is not None)
    ok = sum(1 for o in out if o and o[0] == 200 and o[2] is None)
    figure(f"autoscale e2e: cold start at zero, 5 concurrent streaming requests through the router: "
           f"{ok}/5 answered; time to first token min {ttfts[0] if ttfts else float('nan'):.2f} s, "
           f"max {ttfts[-1] if ttfts else float('nan'):.2f} s (model {model.name}; pod start, "
           f"model load, readiness probe, router sees the endpoint); all done in {cold:.2f} s")
    if ok != 5:
        say(f"FAILED: requests at zero: {out}")
        failed = True

    if cold_only:
        return 1 if failed else 0

    # 4. A request arriving during 1 -> 0: wait for the autoscaler to start taking the last
    # replica away (its drain label or spec.replicas 0), then send one.
    def leaving():
        return spec_replicas() == 0 or (engines(ready_only=False) and not engines(serving_only=True,
                                                                                   ready_only=False))
    wait_for("the autoscaler taking 1 -> 0", leaving, 60, 0.1)
    state = f"spec.replicas {spec_replicas()}, engine pods {engines(ready_only=False)}, serving {engines(serving_only=True, ready_only=False)}"
    one: list = [None]
    t5 = time.monotonic()
    first_token(url, one, 0)
    figure(f"autoscale e2e: a request sent as the autoscaler took 1 -> 0 ({state}): status "
           f"{one[0][0]}, first token after {one[0][1] if one[0][1] is not None else float('nan'):.2f} s, "
           f"done after {time.monotonic() - t5:.2f} s")
    if one[0][0] != 200 or one[0][2] is not None:
        say(f"FAILED: the request during 1 -> 0: {one[0]}")
        failed = True

    # 5. Router frozen: replicas stay.
    wait_for("1 ready engine after that request", lambda: len(engines()) == 1, 120)
    before = spec_replicas()
    ctr = ["ctr", "--address", os.environ["K8S_WORK"] + "/full/containerd.sock", "-n", "k8s.io"]
    ids = subprocess.run([*ctr, "containers", "ls", "-q",
                          'labels."io.kubernetes.container.name"==router'],
                         capture_output=True, text=True).stdout.split()
    running = [i for i in ids if subprocess.run([*ctr, "tasks", "ps", i], capture_output=True).returncode == 0]
    for i in running:
        subprocess.run([*ctr, "tasks", "pause", i], check=True)
    say(f"router container(s) paused: {running}; spec.replicas {before}")
    try:
        t6 = time.monotonic()
        seen = set()
        while time.monotonic() - t6 < 25:
            seen.add(spec_replicas())
            time.sleep(0.5)
        cond = {c["type"]: c for c in api.get(path).json().get("status", {}).get("conditions", [])}
        auto = cond.get("Autoscaling", {})
        figure(f"autoscale e2e: router paused 25 s at spec.replicas {before} (scaleToZeroAfter 10 s): "
               f"spec.replicas seen {sorted(seen)}; condition Autoscaling {auto.get('status')} "
               f"{auto.get('reason')}: {auto.get('message', '')[:160]}")
        if seen != {before} or not running:
            say("FAILED: replicas moved while the router could not be read" if running else
                "FAILED: no router container to pause")
            failed = True
    finally:
        for i in running:
            subprocess.run([*ctr, "tasks", "resume", i], check=False)
    say("hold timeout -> 503 and a full queue -> 429: test_scale_from_zero.py (API-server stage)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
