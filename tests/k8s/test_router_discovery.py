"""`kinfer router --endpointslices` against the real kube-apiserver: two real `kinfer serve`
replicas on this host, EndpointSlices written through the API as the EndpointSlice controller
would write them, and the router following every change: slices added, an endpoint turning
not-ready then terminating, a slice deleted, and a 410 Gone forced by compacting etcd and
restarting the API server while a slice is deleted (the missed DELETE that kept vLLM's
production-stack routing to a deleted pod for hours must not happen here)."""

from __future__ import annotations

import os
import pathlib
import signal
import socket
import subprocess
import tempfile
import time

import pytest
import requests

from conftest import ROOT, need_env

NS = "router-discovery"
SERVICE = "llm"
STORIES = pathlib.Path(os.environ.get("KINFER_SHARED_DIR") or ROOT.parent / "shared") / \
    "models/stories260K/stories260K.gguf"


def kinfer() -> str:
    return os.environ.get("KINFER_BIN") or str(ROOT / "build/release/src/kinfer")


def host_ip() -> str:
    """This host's address on its default route: EndpointSlices may not point at loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.connect(("10.255.255.255", 1))
        return s.getsockname()[0]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("", 0))
        return s.getsockname()[1]


def wait_for(what, fn, timeout=30.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        got = fn()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


class Proc:
    def __init__(self, name, args):
        self.log = tempfile.NamedTemporaryFile("w+", prefix=f"kinfer-{name}-", suffix=".log",
                                               delete=False)
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)

    def output(self):
        self.log.flush()
        return pathlib.Path(self.log.name).read_text()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def metrics(url):
    out = {}
    for line in requests.get(url + "/metrics", timeout=5).text.splitlines():
        if line and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def slice_obj(name, endpoints, port=None):
    return {
        "apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
        "metadata": {"name": name, "namespace": NS,
                     "labels": {"kubernetes.io/service-name": SERVICE,
                                "endpointslice.kubernetes.io/managed-by": "kinfer-tests"}},
        "addressType": "IPv4",
        "endpoints": endpoints,
        "ports": [{"name": "http", "port": port, "protocol": "TCP"}] if port else [],
    }


def endpoint(ip, ready=True, terminating=False, pod="p"):
    return {"addresses": [ip], "conditions": {"ready": ready, "serving": ready or terminating,
                                              "terminating": terminating},
            "targetRef": {"kind": "Pod", "name": pod, "namespace": NS}}


@pytest.fixture(scope="module")
def replicas():
    ip = host_ip()
    procs = []
    for i in range(2):
        port = free_port()
        p = Proc(f"replica-{i}", [kinfer(), "serve", "--model", str(STORIES), "--host", ip,
                                  "--port", str(port), "--kv-cache-memory", "16MiB",
                                  "--served-model-name", "stories", "--drain-delay", "0"])
        p.url, p.ip, p.port = f"http://{ip}:{port}", ip, port
        procs.append(p)
    for p in procs:
        wait_for(f"{p.url} ready", lambda: _ok(p.url + "/ready"), 60)
    yield procs
    for p in procs:
        p.stop()


def _ok(url):
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def put_slice(api, obj):
    path = f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices/{obj['metadata']['name']}"
    r = api.apply(path, obj)
    assert r.status_code in (200, 201), r.text


def delete_slice(api, name):
    r = api.delete(f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices/{name}")
    assert r.status_code in (200, 202, 404), r.text


def known(router_url):
    """The replicas the router knows, by address, and whether each is routable."""
    out = {}
    for k, v in metrics(router_url).items():
        if k.startswith("kinfer_router_backend_healthy{"):
            out[k.split('backend="')[1].split('"')[0]] = v == 1
    return out


def test_router_follows_endpointslices(api, replicas):
    need_env("KUBECONFIG")
    api.ensure_namespace(NS)
    for name in ("llm-a", "llm-b", "llm-c"):
        delete_slice(api, name)
    a, b = replicas
    port = free_port()
    router = Proc("router", [kinfer(), "router", "--endpointslices", f"{NS}/{SERVICE}",
                             "--kubeconfig", os.environ["KUBECONFIG"], "--host", "127.0.0.1",
                             "--port", str(port), "--probe-interval", "0.1",
                             "--hold-timeout", "0"])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("router ready (first list done)", lambda: _ok(url + "/ready"), 30)
        assert known(url) == {}
        # A replica appears.
        put_slice(api, slice_obj("llm-a", [endpoint(a.ip, pod="a")], a.port))
        wait_for("a routable", lambda: known(url) == {f"{a.ip}:{a.port}": True})
        r = requests.post(url + "/v1/completions", json={"prompt": "Once", "max_tokens": 3})
        assert r.status_code == 200, r.text
        # A second one, in its own slice.
        put_slice(api, slice_obj("llm-b", [endpoint(b.ip, pod="b")], b.port))
        wait_for("both routable", lambda: known(url) == {f"{a.ip}:{a.port}": True,
                                                         f"{b.ip}:{b.port}": True})
        # a turns not ready, then terminating: known, not routable; requests go to b.
        put_slice(api, slice_obj("llm-a", [endpoint(a.ip, ready=False, pod="a")], a.port))
        wait_for("a not ready", lambda: known(url).get(f"{a.ip}:{a.port}") is False)
        put_slice(api, slice_obj("llm-a", [endpoint(a.ip, ready=False, terminating=True, pod="a")],
                                 a.port))
        for _ in range(4):
            r = requests.post(url + "/v1/completions", json={"prompt": "Once", "max_tokens": 2})
            assert r.status_code == 200
        served = metrics(url)
        assert served.get(f'kinfer_router_requests_total{{backend="{b.ip}:{b.port}",code="200"}}', 0) >= 4
        # b's slice is deleted: nothing routable; a 503 (no hold) says so.
        delete_slice(api, "llm-b")
        wait_for("b gone", lambda: f"{b.ip}:{b.port}" not in known(url))
        r = requests.post(url + "/v1/completions", json={"prompt": "Once", "max_tokens": 2})
        assert r.status_code == 503 and r.json()["error"]["code"] == "no_replica"
        # a comes back ready.
        put_slice(api, slice_obj("llm-a", [endpoint(a.ip, pod="a")], a.port))
        wait_for("a routable again", lambda: known(url) == {f"{a.ip}:{a.port}": True})
    finally:
        assert router.stop() == 0, router.output()
        for name in ("llm-a", "llm-b", "llm-c"):
            delete_slice(api, name)


def test_a_delete_during_compaction_and_restart_is_not_missed(api, replicas):
    """The router's watch resumes from a version etcd no longer has (410 Gone) or reconnects;
    either way it relists, so the slice deleted meanwhile is gone from it too."""
    restart = need_env("K8S_RESTART_APISERVER")
    etcd = need_env("K8S_ETCD")
    api.ensure_namespace(NS)
    a, b = replicas
    put_slice(api, slice_obj("llm-a", [endpoint(a.ip, pod="a")], a.port))
    put_slice(api, slice_obj("llm-b", [endpoint(b.ip, pod="b")], b.port))
    port = free_port()
    router = Proc("router-compaction", [kinfer(), "router", "--endpointslices", f"{NS}/{SERVICE}",
                                        "--kubeconfig", os.environ["KUBECONFIG"], "--host",
                                        "127.0.0.1", "--port", str(port), "--probe-interval", "0.1"])
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("both routable", lambda: _ok(url + "/ready") and len(
            [v for v in known(url).values() if v]) == 2, 60)
        # Writes move etcd past the router's resourceVersion; compact it away; restart the API
        # server (its watch cache goes with it) and delete b's slice right after.
        for i in range(5):
            api.ensure_namespace(f"{NS}-noise-{i}")
        rev = requests.post(etcd + "/v3/kv/range", json={"key": "AA==", "limit": 1}).json()["header"]["revision"]
        requests.post(etcd + "/v3/kv/compaction", json={"revision": rev, "physical": True}).raise_for_status()
        before = metrics(url)
        subprocess.run([restart], check=True, timeout=180)
        delete_slice(api, "llm-b")
        wait_for("b gone after the restart", lambda: f"{b.ip}:{b.port}" not in known(url), 90)
        assert known(url) == {f"{a.ip}:{a.port}": True}
        after = metrics(url)
        relists = sum(after.get(f'kinfer_router_discovery_lists_total{{reason="{r}"}}', 0) -
                      before.get(f'kinfer_router_discovery_lists_total{{reason="{r}"}}', 0)
                      for r in ("gone", "reconnect"))
        assert relists >= 1, after
        r = requests.post(url + "/v1/completions", json={"prompt": "Once", "max_tokens": 2})
        assert r.status_code == 200
    finally:
        assert router.stop() == 0, router.output()
        for name in ("llm-a", "llm-b"):
            delete_slice(api, name)
