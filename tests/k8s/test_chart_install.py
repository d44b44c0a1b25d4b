"""The chart installed by helm into the real kube-apiserver: every object of every main value
combination is accepted by server-side validation (and again by a strict server-side apply dry
run, which refuses unknown fields), ServiceMonitor and PrometheusRule appear once their
published CRDs are installed, and NOTES.txt says how to call the endpoint."""

from __future__ import annotations

import os
import pathlib

import pytest
import yaml

from conftest import CHART, HERE, collection_path, install_crds, object_path, run

CASES = sorted(p.stem for p in (HERE / "values").glob("*.yaml"))


def helm_install(helm, release, namespace, values, *extra):
    r = run([helm, "upgrade", "--install", release, CHART, "-n", namespace, "--create-namespace",
             "-f", values, *extra])
    assert r.returncode == 0, f"helm install {release} failed:\n{r.stdout}\n{r.stderr}"
    return r


def manifest(helm, release, namespace, what="manifest"):
    r = run([helm, "get", what, release, "-n", namespace])
    assert r.returncode == 0, r.stderr
    return [o for o in yaml.safe_load_all(r.stdout) if o]


def assert_objects_live_and_strictly_valid(api, objs, namespace):
    for o in objs:
        path = object_path(o, namespace)
        got = api.get(path)
        assert got.status_code == 200, f"{o['kind']} {o['metadata']['name']}: {got.status_code} {got.text}"
        # Strict server-side apply dry run: unknown or duplicate fields are errors, not warnings.
        r = api.apply(path, {**o, "metadata": {**o["metadata"], "namespace": namespace}},
                      params={"dryRun": "All"})
        assert r.status_code == 200, f"{o['kind']} {o['metadata']['name']}: {r.status_code} {r.text}"
        assert "Warning" not in r.headers, f"{o['kind']}: {r.headers['Warning']}"


def test_without_the_monitoring_crds_there_is_no_servicemonitor(helm, api):
    crd = api.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/servicemonitors.monitoring.coreos.com")
    if crd.status_code == 200:
        pytest.skip("the ServiceMonitor CRD is already installed in this cluster")
    helm_install(helm, "plain", "kinfer-plain", HERE / "values" / "hub-auth-hpa.yaml")
    kinds = {o["kind"] for o in manifest(helm, "plain", "kinfer-plain")}
    assert "ServiceMonitor" not in kinds and "PrometheusRule" not in kinds
    assert {"Deployment", "Service", "HorizontalPodAutoscaler", "NetworkPolicy"} <= kinds


@pytest.fixture(scope="module")
def monitoring_crds(api):
    crd_dir = pathlib.Path(os.environ["K8S_PROM_CRDS"])
    install_crds(api, sorted(crd_dir.glob("*.yaml")))


@pytest.mark.parametrize("case", CASES)
def test_every_object_is_accepted_by_the_api_server(helm, api, monitoring_crds, case):
    ns = f"kinfer-{case}"
    r = helm_install(helm, "kinfer-test", ns, HERE / "values" / f"{case}.yaml")
    objs = manifest(helm, "kinfer-test", ns)
    assert_objects_live_and_strictly_valid(api, objs, ns)
    # The `helm test` pod is a hook: not created until `helm test`, but it must be valid too.
    hooks = manifest(helm, "kinfer-test", ns, "hooks")
    assert [h["kind"] for h in hooks] == ["Pod"]
    pod = hooks[0]
    d = api.post(collection_path(pod, ns), pod, params={"dryRun": "All", "fieldValidation": "Strict"})
    assert d.status_code == 201, d.text
    kinds = {o["kind"] for o in objs}
    if case == "hub-auth-hpa":
        assert {"ServiceMonitor", "PrometheusRule"} <= kinds
        notes = r.stdout.split("NOTES:", 1)[1]
        assert f"kubectl -n {ns} port-forward service/kinfer-test 8000:8000" in notes
        assert 'curl -s $BASE/v1/chat/completions -H "Authorization: Bearer $KEY"' in notes
        assert '"model": "Qwen/Qwen2.5-0.5B-Instruct"' in notes
    # The Deployment as the API server stored it (defaults applied) keeps what the chart promised.
    dep = api.get(f"/apis/apps/v1/namespaces/{ns}/deployments/kinfer-test").json()
    spec = dep["spec"]["template"]["spec"]
    c = spec["containers"][0]
    assert c["lifecycle"]["preStop"] == {"sleep": {"seconds": 5}}
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]}


def test_a_new_api_key_list_rolls_the_pods(helm, api, monitoring_crds):
    ns = "kinfer-rotate"
    values = HERE / "values" / "hub-auth-hpa.yaml"
    helm_install(helm, "rot", ns, values)
    path = f"/apis/apps/v1/namespaces/{ns}/deployments/rot-kinfer"
    before = api.get(path).json()["spec"]["template"]["metadata"]["annotations"]["checksum/api-keys"]
    helm_install(helm, "rot", ns, values, "--set", "auth.apiKeys[0]=sk-rotated-000000")
    after = api.get(path).json()
    assert after["spec"]["template"]["metadata"]["annotations"]["checksum/api-keys"] != before
    assert after["metadata"]["generation"] == 2
