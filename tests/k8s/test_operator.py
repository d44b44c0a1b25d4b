"""`kinfer operator` against the real kube-apiserver, with kube-controller-manager for garbage
collection, the Deployment/ReplicaSet/Job controllers and the HPA controller (no kubelet here:
pods stay Pending; full_cluster.sh runs them). Two operator processes run with the operator chart's
ServiceAccount and RBAC, exactly as in a cluster, and elect a leader on the chart's Lease.

Checked, as the issue lists it: creating an LLMService makes exactly the expected objects (each as
`kinfer operator --render` prints it); a second reconcile changes no resourceVersion; a deleted
child comes back; a field owned by another manager survives while drift in ours is undone; a spec
edit moves observedGeneration and the conditions (and Events); the scale subresource drives the
engines, from `kubectl scale` and from an HPA; an apply error is reported with the API server's
words and retried; pruning; deleting the LLMService removes everything; compaction plus an API
server restart forces a 410 Gone and the operator recovers; killing the leader hands over within
the lease time and SIGTERM within seconds; the chart's RBAC is enough (no 403) and no more (every
rule is used, from the API server's audit log, but the two the API server needs for admission).

Figures (reconcile latency, takeover times) are printed with a [figure] prefix."""

from __future__ import annotations

import json
import os
import pathlib
import signal
import subprocess
import tempfile
import time

import pytest
import requests
import yaml

from conftest import CRDS, FIGURES, ROOT, install_crds, need_env, run

OPNS = "kinfer-system"
RELEASE = "kop"
OPERATOR = f"{RELEASE}-kinfer-operator"  # the chart's fullname: ServiceAccount, roles, Lease
NS = "kinfer-op"
CHART = ROOT / "deploy/helm/kinfer-operator"
LLM = "/apis/kinfer.dev/v1alpha1"
IMAGE = "localhost/kinfer:0.1.0"

# kind -> (API prefix, plural) for the kinds the operator makes.
CHILDREN = {
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings"),
    "PersistentVolumeClaim": ("/api/v1", "persistentvolumeclaims"),
    "Job": ("/apis/batch/v1", "jobs"),
    "Service": ("/api/v1", "services"),
    "Deployment": ("/apis/apps/v1", "deployments"),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets"),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies"),
}


def figure(text: str) -> None:
    FIGURES.append(f"[figure] {text}")


def wait_for(what, fn, timeout=60.0, interval=0.05, show=None):
    """Polls fn until it returns something true; on timeout, fails with what `show()` says."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            extra = f"\n{show()}" if show else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {what}{extra}")
        time.sleep(interval)


def free_port() -> int:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# --- the cluster around the operator -------------------------------------------------------

@pytest.fixture(scope="module")
def controller_manager(api):
    """kube-controller-manager: garbage collector, Deployment/ReplicaSet/Job/HPA controllers."""
    binary = pathlib.Path(need_env("K8S_BIN")) / "kube-controller-manager"
    assert binary.exists(), f"{binary} missing: tests/k8s/tools.sh builds it"
    work = pathlib.Path(need_env("K8S_WORK"))
    log = open(work / "logs" / "kube-controller-manager-operator-tests.log", "w")
    p = subprocess.Popen(
        [binary, "--kubeconfig", need_env("KUBECONFIG"), "--leader-elect=false",
         "--bind-address", "127.0.0.1", "--secure-port", "0", "--controllers", "*",
         "--service-account-private-key-file", work / "pki" / "sa.key",
         "--root-ca-file", need_env("K8S_CA"), "--allocate-node-cidrs=false",
         "--service-cluster-ip-range", "10.96.0.0/16",
         "--horizontal-pod-autoscaler-sync-period", "2s"],
        stdout=log, stderr=subprocess.STDOUT)
    yield p
    p.terminate()
    try:
        p.wait(timeout=15)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()
    log.close()


@pytest.fixture(scope="module")
def chart_installed(api, helm, controller_manager):
    """The operator chart (CRD, ServiceAccount, RBAC, Deployment) installed with helm. Its pods
    never run here (no kubelet); the operator runs as local processes with its ServiceAccount."""
    install_crds(api, [CRDS / "kinfer.dev_llmservices.yaml"])
    r = run([helm, "upgrade", "--install", RELEASE, CHART, "-n", OPNS, "--create-namespace",
             "--set", "image.tag=0.1.0", "--wait=false"])
    assert r.returncode == 0, r.stderr
    api.ensure_namespace(NS)
    return True


@pytest.fixture(scope="module")
def operator_kubeconfig(api, chart_installed):
    """A kubeconfig holding a token of the chart's ServiceAccount (TokenRequest API), written to a
    token file so the client re-reads it, as in a pod."""
    r = api.post(f"/api/v1/namespaces/{OPNS}/serviceaccounts/{OPERATOR}/token",
                 {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                  "spec": {"expirationSeconds": 7200}})
    assert r.status_code == 201, r.text
    d = pathlib.Path(tempfile.mkdtemp(prefix="kinfer-operator-"))
    (d / "token").write_text(r.json()["status"]["token"])
    kc = d / "config"
    kc.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "op",
        "clusters": [{"name": "c", "cluster": {"server": need_env("K8S_API"),
                                                "certificate-authority": need_env("K8S_CA")}}],
        "users": [{"name": "op", "user": {"tokenFile": str(d / "token")}}],
        "contexts": [{"name": "op", "context": {"cluster": "c", "user": "op", "namespace": OPNS}}],
    }))
    return kc


class Operator:
    """One `kinfer operator` process. In-cluster, it runs in a private mount namespace where the
    ServiceAccount's token, the CA and the namespace are at /var/run/secrets/kubernetes.io/
    serviceaccount, with KUBERNETES_SERVICE_HOST/PORT set, as the kubelet sets up a pod."""

    def __init__(self, kubeconfig: pathlib.Path, name: str, in_cluster: bool = False):
        self.name = name
        self.in_cluster = in_cluster
        self.port = free_port()
        work = pathlib.Path(need_env("K8S_WORK"))
        self.log_path = work / "logs" / f"operator-{name}.log"
        self.log = open(self.log_path, "a")
        args = [need_env("KINFER_BIN"), "--log-level=debug", "operator",
                "--leader-election-id", OPERATOR, "--health-host", "127.0.0.1",
                "--health-port", str(self.port), "--image", IMAGE, "--resync-period", "60"]
        env = dict(os.environ)
        env.pop("KUBECONFIG", None)
        if in_cluster:
            sa = "/run/secrets/kubernetes.io/serviceaccount"
            setup = (f"mount -t tmpfs tmpfs /run && mkdir -p {sa} && "
                     f"cp {kubeconfig.parent / 'token'} {sa}/token && "
                     f"cp {need_env('K8S_CA')} {sa}/ca.crt && echo {OPNS} > {sa}/namespace && "
                     'exec "$@"')
            cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c", setup, "sh", *args]
            api = need_env("K8S_API")
            env["KUBERNETES_SERVICE_HOST"] = "127.0.0.1"
            env["KUBERNETES_SERVICE_PORT"] = api.rsplit(":", 1)[1]
        else:
            cmd = args + ["--kubeconfig", str(kubeconfig), "--leader-election-namespace", OPNS]
        self.p = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)

    def metrics(self) -> dict[str, float]:
        try:
            text = requests.get(f"http://127.0.0.1:{self.port}/metrics", timeout=2).text
        except requests.RequestException:
            return {}
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                k, _, v = line.rpartition(" ")
                out[k] = float(v)
        return out

    def ready(self) -> bool:
        try:
            return requests.get(f"http://127.0.0.1:{self.port}/readyz", timeout=2).status_code == 200
        except requests.RequestException:
            return False

    def leading(self) -> bool:
        return self.metrics().get("kinfer_operator_leader", 0) == 1

    def reconciles(self) -> float:
        return self.metrics().get('kinfer_operator_reconcile_total{result="success"}', 0)

    def stop(self, sig=signal.SIGTERM, timeout=30) -> int:
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self.log.close()
        return self.p.returncode

    def tail(self, n=40) -> str:
        return "\n".join(self.log_path.read_text().splitlines()[-n:])


@pytest.fixture(scope="module")
def operators(operator_kubeconfig):
    # One configured by a kubeconfig, one in-cluster: both ways of finding the API server.
    ops = [Operator(operator_kubeconfig, "a"), Operator(operator_kubeconfig, "b", in_cluster=True)]
    try:
        wait_for("both operators ready (caches synced)", lambda: all(o.ready() for o in ops), 60)
        wait_for("a leader", lambda: any(o.leading() for o in ops), 30)
    except AssertionError:
        for o in ops:
            print(o.name, o.tail())
        raise
    yield ops
    for o in ops:
        o.stop()


def leader(ops):
    return next(o for o in ops if o.leading())


# --- helpers on LLMServices ------------------------------------------------------------------

def llm(name, **spec):
    base = {"model": {"name": "stories260K", "path": "stories260K.gguf",
                      "source": {"hostPath": {"path": "/srv/models/stories260K"}}},
            "replicas": 2, "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}}}
    base.update(spec)
    return {"apiVersion": "kinfer.dev/v1alpha1", "kind": "LLMService",
            "metadata": {"name": name, "namespace": NS}, "spec": base}


def get_llm(api, name):
    r = api.get(f"{LLM}/namespaces/{NS}/llmservices/{name}")
    assert r.status_code == 200, r.text
    return r.json()


def children(api, name):
    """(kind, name) -> object for every object labelled as this LLMService's."""
    out = {}
    for kind, (prefix, plural) in CHILDREN.items():
        r = api.get(f"{prefix}/namespaces/{NS}/{plural}",
                    params={"labelSelector": f"kinfer.dev/llmservice={name},app.kubernetes.io/managed-by=kinfer-operator"})
        assert r.status_code == 200, r.text
        for item in r.json()["items"]:
            out[(kind, item["metadata"]["name"])] = item
    return out


def conditions(obj):
    return {c["type"]: c for c in (obj.get("status") or {}).get("conditions", [])}


def observed(api, name, generation):
    obj = get_llm(api, name)
    st = obj.get("status") or {}
    return obj if st.get("observedGeneration") == generation and len(conditions(obj)) == 4 else None


def render(obj) -> list[dict]:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
        yaml.safe_dump(obj, f)
    r = run([need_env("KINFER_BIN"), "operator", "--render", f.name, "--image", IMAGE])
    os.unlink(f.name)
    assert r.returncode == 0, r.stderr
    return [d for d in yaml.safe_load_all(r.stdout) if d]


def subset(want, got, path="") -> list[str]:
    """Where `want` is not contained in `got` (the API server adds defaults, and writes
    quantities as strings)."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{path}: {got!r} is not an object"]
        out = []
        for k, v in want.items():
            if k not in got:
                out.append(f"{path}.{k}: missing")
            else:
                out += subset(v, got[k], f"{path}.{k}")
        return out
    if isinstance(want, list):
        if not isinstance(got, list) or len(want) != len(got):
            return [f"{path}: {got!r} != {want!r}"]
        out = []
        for i, (a, b) in enumerate(zip(want, got)):
            out += subset(a, b, f"{path}[{i}]")
        return out
    if want != got and str(want) != str(got):
        return [f"{path}: {got!r} != {want!r}"]
    return []


def touch(api, name):
    """A metadata change, which makes the operator reconcile the LLMService."""
    r = api.s.patch(f"{api.base}{LLM}/namespaces/{NS}/llmservices/{name}",
                    json={"metadata": {"annotations": {"test.kinfer.dev/touch": str(time.time())}}},
                    headers={"Content-Type": "application/merge-patch+json"}, timeout=30)
    assert r.status_code == 200, r.text


def reconciled_after(ops, before: float, timeout=30):
    wait_for("a reconcile", lambda: sum(o.reconciles() for o in ops) > before, timeout)


def merge_patch(api, path, patch, subresource="", **params):
    r = api.s.patch(f"{api.base}{path}{subresource}", json=patch, params=params,
                    headers={"Content-Type": "application/merge-patch+json"}, timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


# --- the tests -------------------------------------------------------------------------------

def test_rendered_objects_are_valid_for_the_api_server(api, chart_installed):
    """Every object `--render` prints for the unit tests' inputs passes a strict server-side
    dry-run apply (unknown or mistyped fields are errors)."""
    for f in sorted((ROOT / "tests/unit/operator/testdata").glob("*.yaml")):
        obj = yaml.safe_load(f.read_text())
        obj["metadata"]["namespace"] = NS
        for o in render(obj):
            kind = o["kind"]
            prefix, plural = CHILDREN[kind]
            path = f"{prefix}/namespaces/{NS}/{plural}/{o['metadata']['name']}"
            r = api.apply(path, o, params={"dryRun": "All"})
            assert r.status_code in (200, 201), f"{f.name}: {kind}: {r.text[:1500]}"


def test_an_llmservice_becomes_exactly_the_expected_objects(api, operators):
    t0 = time.monotonic()
    r = api.post(f"{LLM}/namespaces/{NS}/llmservices", llm("tiny"))
    assert r.status_code == 201, r.text
    t_post = time.monotonic() - t0  # the API server's part (admission, storage)
    live = wait_for("status observedGeneration 1", lambda: observed(api, "tiny", 1), 60)
    status_latency = time.monotonic() - t0
    # (render() runs `kinfer operator --render`, 30-300 ms here: not part of the operator's time.)
    t_render = time.monotonic()
    expected = {(o["kind"], o["metadata"]["name"]): o for o in render(live)}
    t_render = time.monotonic() - t_render
    got = wait_for("every child", lambda: (c := children(api, "tiny")) and set(c) == set(expected) and c, 30)
    latency = time.monotonic() - t0 - t_render
    assert set(got) == set(expected)
    for key, want in expected.items():
        # List items carry no apiVersion/kind; the key already says which kind it is.
        diff = subset({k: v for k, v in want.items() if k not in ("apiVersion", "kind")}, got[key])
        assert not diff, f"{key}: {diff[:10]}"
    st = live["status"]
    assert st["endpoint"] == f"http://tiny.{NS}.svc:8000"
    assert st["selector"] == "app.kubernetes.io/component=engine,app.kubernetes.io/instance=tiny,app.kubernetes.io/name=kinfer"
    c = conditions(live)
    assert c["Available"]["status"] == "False" and c["Available"]["reason"] == "NoReadyReplicas"
    assert c["Degraded"]["status"] == "False"
    figure(f"reconcile latency, create -> status written {status_latency * 1000:.0f} ms (the POST "
           f"itself {t_post * 1000:.0f} ms), -> every one "
           f"of the {len(expected)} objects listed {latency * 1000:.0f} ms (test client clock, polling "
           f"every 50 ms, the test's `kinfer operator --render` call of {t_render * 1000:.0f} ms "
           f"left out)")
    m = leader(operators).metrics()
    n = m.get("kinfer_operator_reconcile_duration_seconds_count", 0)
    s = m.get("kinfer_operator_reconcile_duration_seconds_sum", 0)
    if n:
        figure(f"reconcile duration (operator histogram so far): {n:.0f} reconciles, mean {s / n * 1000:.1f} ms")


def test_a_second_reconcile_changes_no_resource_version(api, operators):
    def versions():
        return {k: v["metadata"]["resourceVersion"] for k, v in children(api, "tiny").items()}

    # Let the Deployment controller finish writing its status first.
    prev = {}

    def settled():
        nonlocal prev
        now = versions()
        same = now == prev
        prev = now
        return same
    wait_for("children settled", settled, 30, interval=2)
    before = versions()
    status_before = get_llm(api, "tiny")["status"]
    n = sum(o.reconciles() for o in operators)
    touch(api, "tiny")
    rv_after_touch = get_llm(api, "tiny")["metadata"]["resourceVersion"]
    reconciled_after(operators, n)
    time.sleep(1)
    assert versions() == before
    after = get_llm(api, "tiny")
    assert after["metadata"]["resourceVersion"] == rv_after_touch  # no status write either
    assert after["status"] == status_before


def test_a_deleted_child_comes_back(api, operators):
    old = api.get(f"/api/v1/namespaces/{NS}/services/tiny-engine").json()["metadata"]["uid"]
    t0 = time.monotonic()
    assert api.delete(f"/api/v1/namespaces/{NS}/services/tiny-engine").status_code == 200

    def back():
        r = api.get(f"/api/v1/namespaces/{NS}/services/tiny-engine")
        return r.status_code == 200 and r.json()["metadata"]["uid"] != old
    wait_for("tiny-engine recreated", back, 30)
    figure(f"a deleted child (Service tiny-engine) recreated in {(time.monotonic() - t0) * 1000:.0f} ms")
    old = api.get(f"/apis/apps/v1/namespaces/{NS}/deployments/tiny-router").json()["metadata"]["uid"]
    assert api.delete(f"/apis/apps/v1/namespaces/{NS}/deployments/tiny-router").status_code == 200
    wait_for("tiny-router recreated",
             lambda: (r := api.get(f"/apis/apps/v1/namespaces/{NS}/deployments/tiny-router")).status_code == 200
             and r.json()["metadata"]["uid"] != old, 30)


def test_fields_of_other_managers_survive_and_drift_in_ours_is_undone(api, operators):
    path = f"/apis/apps/v1/namespaces/{NS}/deployments/tiny-engine"
    theirs = {"apiVersion": "apps/v1", "kind": "Deployment",
              "metadata": {"name": "tiny-engine", "namespace": NS,
                           "annotations": {"example.com/owner": "team-search"},
                           "labels": {"example.com/cost-center": "42"}}}
    r = api.apply(path, theirs, params={"fieldManager": "someone-else", "force": "false"})
    assert r.status_code == 200, r.text
    # Someone scales the engine Deployment by hand: the operator owns replicas and puts it back.
    merge_patch(api, path, {"spec": {"replicas": 5}}, fieldManager="kubectl-edit")
    wait_for("replicas back to 2", lambda: api.get(path).json()["spec"]["replicas"] == 2, 30)
    n = sum(o.reconciles() for o in operators)
    touch(api, "tiny")
    reconciled_after(operators, n)
    d = api.get(path).json()
    assert d["metadata"]["annotations"]["example.com/owner"] == "team-search"
    assert d["metadata"]["labels"]["example.com/cost-center"] == "42"
    managers = {m["manager"] for m in d["metadata"]["managedFields"]}
    assert {"kinfer-operator", "someone-else"} <= managers


def test_a_spec_edit_moves_generation_conditions_and_records_events(api, operators):
    before = get_llm(api, "tiny")
    gen = before["metadata"]["generation"]
    c0 = conditions(before)
    t0 = time.monotonic()
    merge_patch(api, f"{LLM}/namespaces/{NS}/llmservices/tiny",
                {"spec": {"engine": {"extraArgs": ["--max-queue-len=77"]}}})
    live = wait_for("observedGeneration moved", lambda: observed(api, "tiny", gen + 1), 30)
    args = api.get(f"/apis/apps/v1/namespaces/{NS}/deployments/tiny-engine").json()[
        "spec"]["template"]["spec"]["containers"][0]["args"]
    figure(f"reconcile latency, spec edit -> engine Deployment updated and status observed: "
           f"{(time.monotonic() - t0) * 1000:.0f} ms")
    assert "--max-queue-len=77" in args
    c1 = conditions(live)
    for t in c1:
        assert c1[t]["observedGeneration"] == gen + 1
        if c1[t]["status"] == c0[t]["status"]:
            assert c1[t]["lastTransitionTime"] == c0[t]["lastTransitionTime"], t

    # Scale to zero (without the router, whose pods never become ready without a kubelet):
    # Progressing and ModelReady change status, their transition times move, and the operator
    # records Events for it.
    time.sleep(1.1)  # a new second, so a moved lastTransitionTime is visible
    merge_patch(api, f"{LLM}/namespaces/{NS}/llmservices/tiny",
                {"spec": {"replicas": 0, "router": {"enabled": False}}})
    live = wait_for("scaled to zero", lambda: (o := observed(api, "tiny", gen + 2))
                    and conditions(o)["Progressing"]["status"] == "False" and o, 30,
                    show=lambda: json.dumps({"llm": get_llm(api, "tiny").get("status"),
                                             "engine": api.get(f"/apis/apps/v1/namespaces/{NS}/deployments/tiny-engine").json().get("status")}, indent=1))
    c2 = conditions(live)
    assert c2["Available"]["reason"] == "ScaledToZero"
    assert c2["Available"]["lastTransitionTime"] == c1["Available"]["lastTransitionTime"]  # still False
    assert c2["ModelReady"]["status"] == "Unknown"
    assert c2["ModelReady"]["lastTransitionTime"] != c1["ModelReady"]["lastTransitionTime"]
    assert c2["Progressing"]["lastTransitionTime"] != c1["Progressing"]["lastTransitionTime"]

    def events():
        r = api.get(f"/api/v1/namespaces/{NS}/events",
                    params={"fieldSelector": "involvedObject.kind=LLMService,involvedObject.name=tiny"})
        return {e["reason"]: e for e in r.json()["items"]}
    ev = wait_for("a RolloutComplete event", lambda: (e := events()) and "RolloutComplete" in e and e, 20)
    assert ev["RolloutComplete"]["reportingComponent"] == "kinfer.dev/operator"
    assert ev["RolloutComplete"]["type"] == "Normal"
    merge_patch(api, f"{LLM}/namespaces/{NS}/llmservices/tiny",
                {"spec": {"replicas": 2, "router": {"enabled": True}}})


def test_the_scale_subresource_drives_the_engines_from_kubectl_and_an_hpa(api, operators):
    dep = f"/apis/apps/v1/namespaces/{NS}/deployments/tiny-engine"
    # `kubectl scale llm tiny --replicas=3` is a merge patch of the scale subresource.
    merge_patch(api, f"{LLM}/namespaces/{NS}/llmservices/tiny", {"spec": {"replicas": 3}},
                subresource="/scale")
    wait_for("engine replicas 3", lambda: api.get(dep).json()["spec"]["replicas"] == 3, 30)
    scale = api.get(f"{LLM}/namespaces/{NS}/llmservices/tiny/scale").json()
    assert scale["status"]["selector"].startswith("app.kubernetes.io/component=engine")
    # An HPA pointed at the LLMService keeps it within its bounds through the same subresource.
    hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
           "metadata": {"name": "tiny", "namespace": NS},
           "spec": {"scaleTargetRef": {"apiVersion": "kinfer.dev/v1alpha1", "kind": "LLMService", "name": "tiny"},
                    "minReplicas": 1, "maxReplicas": 2,
                    "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}}
    r = api.post(f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers", hpa)
    assert r.status_code == 201, r.text
    try:
        wait_for("the HPA to scale the LLMService to its maximum, 2",
                 lambda: get_llm(api, "tiny")["spec"]["replicas"] == 2, 60)
        wait_for("engine replicas 2", lambda: api.get(dep).json()["spec"]["replicas"] == 2, 30)
        h = api.get(f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/tiny").json()
        able = {c["type"]: c for c in h["status"].get("conditions", [])}.get("AbleToScale", {})
        assert able.get("status") == "True", h["status"]
    finally:
        api.delete(f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/tiny")


def test_disabling_the_router_prunes_what_it_needed(api, operators):
    merge_patch(api, f"{LLM}/namespaces/{NS}/llmservices/tiny", {"spec": {"router": {"enabled": False}}})
    want = {("Service", "tiny"), ("Deployment", "tiny-engine"), ("PodDisruptionBudget", "tiny-engine"),
            ("NetworkPolicy", "tiny-engine")}
    wait_for("router objects pruned", lambda: set(children(api, "tiny")) == want, 30)
    svc = api.get(f"/api/v1/namespaces/{NS}/services/tiny").json()
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "engine"
    merge_patch(api, f"{LLM}/namespaces/{NS}/llmservices/tiny", {"spec": {"router": {"enabled": True}}})
    wait_for("router objects back", lambda: ("Deployment", "tiny-router") in children(api, "tiny"), 30)


def test_a_hub_model_is_pulled_by_a_job_and_source_changes_prune_the_old_ones(api, operators):
    hub = llm("hubby", model={"name": "smol", "path": "m.gguf",
                              "source": {"hub": {"url": "hf://org/model@v1"}}},
              storage={"size": "1Gi"})
    assert api.post(f"{LLM}/namespaces/{NS}/llmservices", hub).status_code == 201
    live = wait_for("hubby observed", lambda: observed(api, "hubby", 1), 60)
    c = conditions(live)
    assert c["ModelReady"]["reason"] == "Pulling" and c["Progressing"]["reason"] == "Pulling"
    kids = children(api, "hubby")
    jobs = [n for k, n in kids if k == "Job"]
    assert len(jobs) == 1 and ("PersistentVolumeClaim", "hubby-model") in kids
    assert ("Deployment", "hubby-engine") not in kids  # engines wait for the pull
    job = kids[("Job", jobs[0])]
    assert job["spec"]["template"]["spec"]["containers"][0]["args"][:2] == ["pull", "hf://org/model@v1"]
    # A new revision: a new Job, the old one deleted.
    merge_patch(api, f"{LLM}/namespaces/{NS}/llmservices/hubby",
                {"spec": {"model": {"source": {"hub": {"url": "hf://org/model@v2"}}}}})
    wait_for("a new pull Job replacing the old",
             lambda: [n for k, n in children(api, "hubby") if k == "Job"] not in ([], jobs), 30)
    # An immutable field of the claim: the apply fails with the API server's words, the status
    # says Degraded, and the operator retries with backoff (a series of Events).
    merge_patch(api, f"{LLM}/namespaces/{NS}/llmservices/hubby",
                {"spec": {"storage": {"accessMode": "ReadWriteMany"}}})
    live = wait_for("Degraded", lambda: (o := get_llm(api, "hubby"))
                    and conditions(o).get("Degraded", {}).get("status") == "True" and o, 30)
    msg = conditions(live)["Degraded"]["message"]
    assert "persistentvolumeclaims/hubby-model" in msg and "422" in msg, msg
    assert "immutable" in msg, msg

    def failed_count():
        r = api.get(f"/api/v1/namespaces/{NS}/events",
                    params={"fieldSelector": "involvedObject.name=hubby,reason=ReconcileFailed"})
        items = r.json()["items"]
        return max([e.get("count") or (e.get("series") or {}).get("count", 1) for e in items] or [0])
    wait_for("ReconcileFailed repeated as one Event series", lambda: failed_count() >= 2, 30)
    # Switching to a hostPath source prunes the claim and the Job and starts the engines.
    merge_patch(api, f"{LLM}/namespaces/{NS}/llmservices/hubby",
                {"spec": {"model": {"source": {"hub": None, "hostPath": {"path": "/srv/m"}}},
                          "storage": None}})
    wait_for("claim and Job pruned, engines created",
             lambda: (k := set(children(api, "hubby")))
             and not any(kind in ("Job", "PersistentVolumeClaim") for kind, _ in k)
             and ("Deployment", "hubby-engine") in k, 30)
    live = wait_for("recovered", lambda: (o := get_llm(api, "hubby"))
                    and conditions(o).get("Degraded", {}).get("status") == "False" and o, 30)


def test_an_invalid_spec_is_reported_not_retried_forever(api, operators):
    bad = llm("badargs", engine={"extraArgs": ["--served-model-name=other"]})
    assert api.post(f"{LLM}/namespaces/{NS}/llmservices", bad).status_code == 201
    live = wait_for("Degraded InvalidSpec", lambda: (o := get_llm(api, "badargs"))
                    and conditions(o).get("Degraded", {}).get("reason") == "InvalidSpec" and o, 30)
    assert "'--served-model-name=other' is set by the operator" in conditions(live)["Degraded"]["message"]
    assert children(api, "badargs") == {}


def test_recovers_from_410_gone_after_compaction_and_an_api_server_restart(api, operators):
    def gone_relists():
        return sum(v for o in operators for k, v in o.metrics().items()
                   if k.startswith("kinfer_operator_informer_relists_total") and 'reason="gone"' in k)
    before = gone_relists()
    etcd = need_env("K8S_ETCD")
    rev = requests.post(f"{etcd}/v3/kv/range", json={"key": "AA==", "limit": 1}, timeout=10).json()["header"]["revision"]
    r = requests.post(f"{etcd}/v3/kv/compaction", json={"revision": rev, "physical": True}, timeout=30)
    assert r.status_code == 200, r.text
    t0 = time.monotonic()
    subprocess.run([need_env("K8S_RESTART_APISERVER")], check=True, timeout=300)
    figure(f"kube-apiserver restarted in {time.monotonic() - t0:.1f} s (etcd compacted at revision {rev})")
    # Changes after the restart are seen and acted on.
    old = api.get(f"/api/v1/namespaces/{NS}/services/tiny").json()["metadata"]["uid"]
    assert api.delete(f"/api/v1/namespaces/{NS}/services/tiny").status_code == 200
    assert api.post(f"{LLM}/namespaces/{NS}/llmservices", llm("after410")).status_code == 201
    wait_for("after410 reconciled", lambda: observed(api, "after410", 1), 90)
    wait_for("Service tiny recreated",
             lambda: (r := api.get(f"/api/v1/namespaces/{NS}/services/tiny")).status_code == 200
             and r.json()["metadata"]["uid"] != old, 90)
    wait_for("a relist after 410 Gone", lambda: gone_relists() > before, 60)
    figure(f"after compaction + restart: informer relists on 410 Gone {gone_relists() - before:.0f}; "
           f"changes made after the restart reconciled within {time.monotonic() - t0:.1f} s of it")


def lease(api):
    r = api.get(f"/apis/coordination.k8s.io/v1/namespaces/{OPNS}/leases/{OPERATOR}")
    assert r.status_code == 200, r.text
    return r.json()["spec"]


def test_killing_the_leader_hands_over_within_the_lease_time(api, operators, operator_kubeconfig):
    old = leader(operators)
    other = next(o for o in operators if o is not old)
    holder = lease(api)["holderIdentity"]
    t0 = time.monotonic()
    old.stop(signal.SIGKILL)
    # A change made right after the kill: the new leader must act on it.
    assert api.post(f"{LLM}/namespaces/{NS}/llmservices", llm("afterkill")).status_code == 201
    wait_for("a new lease holder", lambda: lease(api)["holderIdentity"] not in ("", holder), 40, 0.1)
    took = time.monotonic() - t0
    wait_for("afterkill reconciled by the new leader", lambda: observed(api, "afterkill", 1), 30)
    reconciled = time.monotonic() - t0
    assert other.leading()
    figure(f"leader SIGKILL -> new leader holds the lease: {took:.1f} s; -> a change made at the "
           f"kill reconciled: {reconciled:.1f} s (lease 15 s, renew deadline 10 s, retry 2 s)")
    # The standby waits out 15 s from when it last saw the lease renewed (at most 2 s before the
    # kill), then takes it at its next retry: within the lease time plus one retry period.
    assert took <= 15 + 2 + 1.5, took
    operators[operators.index(old)] = Operator(operator_kubeconfig, old.name + "2", old.in_cluster)
    wait_for("the replacement ready", lambda: all(o.ready() for o in operators), 60)


def test_sigterm_hands_over_within_seconds(api, operators, operator_kubeconfig):
    old = leader(operators)
    holder = lease(api)["holderIdentity"]
    t0 = time.monotonic()
    rc = old.stop(signal.SIGTERM)
    exited = time.monotonic() - t0
    assert rc == 0, old.tail()
    wait_for("a new lease holder", lambda: lease(api)["holderIdentity"] not in ("", holder), 20, 0.1)
    took = time.monotonic() - t0
    figure(f"leader SIGTERM -> exited (lease released) in {exited:.2f} s; new leader holds the "
           f"lease {took:.2f} s after the signal")
    assert took < 5, took
    assert api.post(f"{LLM}/namespaces/{NS}/llmservices", llm("afterterm")).status_code == 201
    wait_for("afterterm reconciled", lambda: observed(api, "afterterm", 1), 30)
    operators[operators.index(old)] = Operator(operator_kubeconfig, old.name + "3", old.in_cluster)


def test_deleting_the_llmservice_removes_everything(api, operators):
    assert children(api, "tiny")
    t0 = time.monotonic()
    assert api.delete(f"{LLM}/namespaces/{NS}/llmservices/tiny").status_code == 200
    wait_for("every child garbage-collected", lambda: children(api, "tiny") == {}, 60, 0.2)
    figure(f"LLMService deleted -> every child gone (garbage collector) in {time.monotonic() - t0:.1f} s")
    for kind in ("ReplicaSet", "Pod"):
        prefix, plural = ("/apis/apps/v1", "replicasets") if kind == "ReplicaSet" else ("/api/v1", "pods")
        wait_for(f"{kind}s gone", lambda: api.get(f"{prefix}/namespaces/{NS}/{plural}",
                 params={"labelSelector": "app.kubernetes.io/instance=tiny"}).json()["items"] == [], 60, 0.5)


def granted_rules(helm) -> set[tuple[str, str, str]]:
    r = run([helm, "template", RELEASE, CHART, "-n", OPNS])
    assert r.returncode == 0, r.stderr
    out = set()
    for doc in yaml.safe_load_all(r.stdout):
        if doc and doc["kind"] in ("ClusterRole", "Role"):
            for rule in doc["rules"]:
                for g in rule["apiGroups"]:
                    for res in rule["resources"]:
                        for v in rule["verbs"]:
                            out.add((g, res, v))
    return out


# Rules the operator never exercises as requests of its own, but needs: the API server checks
# them on the operator's behalf.
NEEDED_WITHOUT_REQUESTS = {
    ("kinfer.dev", "llmservices/finalizers", "update"):
        "OwnerReferencesPermissionEnforcement: setting blockOwnerDeletion on a child",
    ("discovery.k8s.io", "endpointslices", "get"): "RBAC escalation check: the router Role grants it",
    ("discovery.k8s.io", "endpointslices", "list"): "RBAC escalation check: the router Role grants it",
    ("discovery.k8s.io", "endpointslices", "watch"): "RBAC escalation check: the router Role grants it",
    ("kinfer.dev", "llmservices/scale", "get"):
        "RBAC escalation check: the router Role grants it (--scale-from-zero)",
}


def test_the_autoscaler_steps_down_through_scale_and_stands_down_for_an_hpa(api, operators):
    """The leader's autoscaler (issue 13) on an idle LLMService without a router: 2 -> 1 through
    the scale subresource after scaleDownDelay, the pod to go marked first
    (controller.kubernetes.io/pod-deletion-cost) so the ReplicaSet deletes that one; its window
    state saved in a ConfigMap in the operator's namespace; the Autoscaling condition on the
    status next to the controller's own four; and when an HPA targets the LLMService it stands
    down (condition False) and writes nothing. Once the LLMService is deleted, so is its state
    ConfigMap (an owner reference cannot cross namespaces, so the autoscaler collects it). Pods
    stay Pending here (no kubelet): a replica that never became ready needs no drain."""
    name = "auto"
    obj = llm(name, replicas=2, router={"enabled": False},
              autoscaling={"minReplicas": 1, "maxReplicas": 3, "stableWindow": "4s",
                           "panicWindow": "2s", "scaleDownDelay": "2s"})
    r = api.post(f"{LLM}/namespaces/{NS}/llmservices", obj)
    assert r.status_code == 201, r.text
    dep = f"/apis/apps/v1/namespaces/{NS}/deployments/{name}-engine"
    try:
        wait_for("engine Deployment at 2", lambda: (d := api.get(dep)).status_code == 200
                 and d.json()["spec"]["replicas"] == 2, 30)
        # The template carries the serving label; the Services select on it, the Deployment not.
        tpl = api.get(dep).json()["spec"]["template"]["metadata"]["labels"]
        assert tpl["kinfer.dev/serving"] == "true"
        assert "kinfer.dev/serving" not in api.get(dep).json()["spec"]["selector"]["matchLabels"]
        svc = api.get(f"/api/v1/namespaces/{NS}/services/{name}").json()
        assert svc["spec"]["selector"]["kinfer.dev/serving"] == "true"
        t0 = time.monotonic()
        wait_for("the autoscaler to step 2 -> 1", lambda: get_llm(api, name)["spec"]["replicas"] == 1,
                 60, show=lambda: json.dumps(get_llm(api, name).get("status"), indent=1))
        figure(f"autoscaler, idle LLMService 2 -> 1 (scaleDownDelay 2s, stableWindow 4s): "
               f"{time.monotonic() - t0:.1f} s after the engine Deployment existed")
        wait_for("engine Deployment at 1", lambda: api.get(dep).json()["spec"]["replicas"] == 1, 30)
        cond = wait_for("condition Autoscaling", lambda: conditions(get_llm(api, name)).get("Autoscaling"), 30)
        assert cond["status"] == "True", cond
        for t in ("ModelReady", "Available", "Progressing", "Degraded"):
            assert t in conditions(get_llm(api, name)), t  # the controller's stay
        cm = wait_for("the state ConfigMap", lambda: (c := api.get(
            f"/api/v1/namespaces/{OPNS}/configmaps/kinfer-autoscaler-{NS}-{name}")).status_code == 200 and c.json(), 30)
        state = json.loads(cm["data"]["state"])
        assert isinstance(state, dict) and state, cm
        # Stays at minReplicas 1.
        time.sleep(3)
        assert get_llm(api, name)["spec"]["replicas"] == 1

        hpa = {"apiVersion": "autoscaling/v2", "kind": "HorizontalPodAutoscaler",
               "metadata": {"name": name, "namespace": NS},
               "spec": {"scaleTargetRef": {"apiVersion": "kinfer.dev/v1alpha1", "kind": "LLMService", "name": name},
                        "minReplicas": 1, "maxReplicas": 2,
                        "metrics": [{"type": "Resource", "resource": {"name": "cpu", "target": {"type": "Utilization", "averageUtilization": 80}}}]}}
        r = api.post(f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers", hpa)
        assert r.status_code == 201, r.text
        try:
            wait_for("Autoscaling False (an HPA owns /scale)",
                     lambda: conditions(get_llm(api, name)).get("Autoscaling", {}).get("status") == "False", 30)
        finally:
            api.delete(f"/apis/autoscaling/v2/namespaces/{NS}/horizontalpodautoscalers/{name}")
        # Another LLMService's state stays: only the deleted one's is collected.
        other = f"/api/v1/namespaces/{OPNS}/configmaps/kinfer-autoscaler-{NS}-keep"
        r = api.post(f"/api/v1/namespaces/{OPNS}/configmaps", {
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": f"kinfer-autoscaler-{NS}-keep", "namespace": OPNS,
                         "labels": cm["metadata"]["labels"],
                         "annotations": {"kinfer.dev/llmservice": f"{NS}/{name}-keep"}},
            "data": {"state": "{}"}})
        assert r.status_code == 201, r.text
        keep = llm(f"{name}-keep", replicas=1, router={"enabled": False})
        assert api.post(f"{LLM}/namespaces/{NS}/llmservices", keep).status_code == 201
    finally:
        api.delete(f"{LLM}/namespaces/{NS}/llmservices/{name}")
    state = f"/api/v1/namespaces/{OPNS}/configmaps/kinfer-autoscaler-{NS}-{name}"
    try:
        t0 = time.monotonic()
        wait_for("the deleted LLMService's state ConfigMap to go", lambda: api.get(state).status_code == 404, 40)
        figure(f"autoscaler state ConfigMap deleted {time.monotonic() - t0:.1f} s after its LLMService")
        assert api.get(other).status_code == 200, "the live LLMService's state was deleted"
    finally:
        api.delete(f"{LLM}/namespaces/{NS}/llmservices/{name}-keep")
        api.delete(other)


def test_the_charts_rbac_is_enough_and_no_more(api, helm, operators):
    """Every request the operator's ServiceAccount made during this module, from the API
    server's audit log: none was forbidden, and every rule of the chart was used."""
    user = f"system:serviceaccount:{OPNS}:{OPERATOR}"
    used, allowed, denied = set(), set(), {}
    for line in pathlib.Path(need_env("K8S_AUDIT_LOG")).read_text().splitlines():
        e = json.loads(line)
        if e.get("user", {}).get("username") != user or e.get("stage") != "ResponseComplete":
            continue
        ref = e.get("objectRef") or {}
        res = ref.get("resource", "") + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        key = (ref.get("apiGroup", ""), res, e["verb"])
        used.add(key)
        if (e.get("responseStatus") or {}).get("code") == 403:
            denied.setdefault(key, e["requestURI"])
        else:
            allowed.add(key)
    # A restarted API server answers 403 for a moment before its RBAC caches fill (the 410 test
    # restarts it); a missing rule is one that is never allowed.
    never = {k: uri for k, uri in denied.items() if k not in allowed}
    assert not never, f"forbidden, never allowed: {never}"
    used &= allowed
    granted = granted_rules(helm)
    assert used <= granted, f"used but not granted: {sorted(used - granted)}"
    # Server-side apply creates a missing object with a PATCH, for which the API server also
    # checks `create`; the audit log records the request's verb, patch.
    creates = {(g, r, "create") for g, r, v in used if v == "patch" and "/" not in r}
    unused = granted - used - creates - set(NEEDED_WITHOUT_REQUESTS)
    assert not unused, f"granted but never used (remove them from the chart): {sorted(unused)}"
    figure(f"operator RBAC: {len(granted)} (group, resource, verb) grants; {len(used)} used by "
           f"requests; {len(NEEDED_WITHOUT_REQUESTS)} needed only by admission/escalation checks")
