"""Scale from zero through `kinfer router --scale-from-zero` against the real kube-apiserver (issue
13): an LLMService at 0 replicas, a real `kinfer serve` on this host standing for the replica that
the ReplicaSet and the kubelet would start, its EndpointSlice written through the API as the
EndpointSlice controller would write it. Five concurrent requests at zero are held, the router sets
the LLMService's /scale from 0 to 1 (a JSON Patch that tests for 0), and all five are answered once
the replica is listed. With no replica at all: the hold timeout answers 503 with Retry-After and a
full hold queue 429. Figures: request -> /scale written, endpoint listed -> all answered."""

from __future__ import annotations

import concurrent.futures
import os
import time

import requests

from conftest import CRDS, FIGURES, install_crds, need_env
from test_router_discovery import STORIES, Proc, _ok, free_port, host_ip, kinfer, wait_for

NS = "scale-from-zero"
NAME = "tiny"
SERVICE = f"{NAME}-engine"
LLM = f"/apis/kinfer.dev/v1alpha1/namespaces/{NS}/llmservices"
SLICES = f"/apis/discovery.k8s.io/v1/namespaces/{NS}/endpointslices"


def figure(text: str) -> None:
    FIGURES.append(f"[figure] {text}")


def put_slice(api, ip, port):
    obj = {"apiVersion": "discovery.k8s.io/v1", "kind": "EndpointSlice",
           "metadata": {"name": f"{SERVICE}-a", "namespace": NS,
                        "labels": {"kubernetes.io/service-name": SERVICE,
                                   "endpointslice.kubernetes.io/managed-by": "kinfer-tests"}},
           "addressType": "IPv4",
           "endpoints": [{"addresses": [ip], "conditions": {"ready": True, "serving": True,
                                                            "terminating": False},
                          "targetRef": {"kind": "Pod", "name": f"{SERVICE}-a", "namespace": NS}}],
           "ports": [{"name": "http", "port": port, "protocol": "TCP"}]}
    r = api.apply(f"{SLICES}/{SERVICE}-a", obj)
    assert r.status_code in (200, 201), r.text


def replicas(api):
    r = api.get(f"{LLM}/{NAME}")
    assert r.status_code == 200, r.text
    return r.json()["spec"]["replicas"]


def router(name, port, *extra):
    return Proc(name, [kinfer(), "router", "--endpointslices", f"{NS}/{SERVICE}",
                       "--kubeconfig", os.environ["KUBECONFIG"], "--host", "127.0.0.1",
                       "--port", str(port), "--probe-interval", "0.1", *extra])


def test_requests_held_at_zero_bring_one_replica_and_are_all_answered(api):
    need_env("KUBECONFIG")
    install_crds(api, [CRDS / "kinfer.dev_llmservices.yaml"])
    api.ensure_namespace(NS)
    api.delete(f"{LLM}/{NAME}")
    api.delete(f"{SLICES}/{SERVICE}-a")
    wait_for("old objects gone", lambda: api.get(f"{LLM}/{NAME}").status_code == 404)
    obj = {"apiVersion": "kinfer.dev/v1alpha1", "kind": "LLMService",
           "metadata": {"name": NAME, "namespace": NS},
           "spec": {"model": {"name": "stories", "source": {"pvc": {"claimName": "models"}}},
                    "replicas": 0,
                    "autoscaling": {"minReplicas": 0, "maxReplicas": 2, "scaleToZeroAfter": "5m"}}}
    r = api.post(LLM, obj)
    assert r.status_code == 201, r.text
    assert replicas(api) == 0

    ip = host_ip()
    serve_port = free_port()
    serve = Proc("zero-replica", [kinfer(), "serve", "--model", str(STORIES), "--host", ip,
                                  "--port", str(serve_port), "--kv-cache-memory", "16MiB",
                                  "--served-model-name", "stories", "--drain-delay", "0"])
    port = free_port()
    rt = router("zero-router", port, "--scale-from-zero", f"{NS}/{NAME}", "--hold-timeout", "60",
                "--served-model-name", "stories")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("router ready (first list done)", lambda: _ok(url + "/ready"), 30)
        wait_for("the replica's process ready", lambda: _ok(f"http://{ip}:{serve_port}/ready"), 60)

        def ask(i):
            r = requests.post(url + "/v1/completions", timeout=90,
                              json={"model": "stories", "prompt": f"Once upon {i}", "max_tokens": 4})
            return r.status_code, r.text, time.monotonic()

        t0 = time.monotonic()
        with concurrent.futures.ThreadPoolExecutor(5) as pool:
            futures = [pool.submit(ask, i) for i in range(5)]
            wait_for("the router to set /scale 0 -> 1", lambda: replicas(api) == 1, 30)
            t_scaled = time.monotonic()
            time.sleep(1)
            assert not any(f.done() for f in futures), "answered with no replica listed"
            # What the ReplicaSet, the kubelet and the EndpointSlice controller do in a cluster.
            t_listed = time.monotonic()
            put_slice(api, ip, serve_port)
            results = [f.result() for f in futures]
        for code, text, _ in results:
            assert code == 200, text
        t_done = max(t for _, _, t in results)
        figure(f"scale from zero (router, real API server): request -> /scale 0->1 written "
               f"{(t_scaled - t0) * 1000:.0f} ms; replica listed -> all 5 held requests answered "
               f"{(t_done - t_listed) * 1000:.0f} ms (no kubelet here: pod start not included)")
        # One write, however many requests were held: still 1.
        time.sleep(1)
        assert replicas(api) == 1
        assert "from 0 to 1" in rt.output()
    finally:
        rt.stop()
        serve.stop()
        api.delete(f"{SLICES}/{SERVICE}-a")


def test_hold_timeout_gives_503_and_a_full_queue_429(api):
    """No replica ever: what a held client gets back."""
    need_env("KUBECONFIG")
    api.ensure_namespace(NS)
    api.delete(f"{SLICES}/{SERVICE}-a")
    port = free_port()
    rt = router("zero-router-full", port, "--hold-timeout", "1", "--max-held", "1")
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for("router ready", lambda: _ok(url + "/ready"), 30)
        body = {"model": "stories", "prompt": "Once", "max_tokens": 2}
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            first = pool.submit(requests.post, url + "/v1/completions", json=body, timeout=30)
            time.sleep(0.3)
            second = requests.post(url + "/v1/completions", json=body, timeout=30)
            r1 = first.result()
        assert second.status_code == 429, second.text
        assert r1.status_code == 503, r1.text
        assert "Retry-After" in r1.headers
    finally:
        rt.stop()
