"""Fixtures for the Kubernetes tests. run.sh builds the tools and starts the control plane, then
runs pytest with HELM, K8S_API, K8S_CA, K8S_CLIENT_CERT, K8S_CLIENT_KEY and KUBECONFIG set."""

from __future__ import annotations

import os
import pathlib
import subprocess
import time

import pytest
import requests
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
CHART = ROOT / "deploy/helm/kinfer"
CRDS = ROOT / "deploy/crds"
HERE = pathlib.Path(__file__).resolve().parent
KUBE_VERSION = "v1.35.4"


def need_env(name: str) -> str:
    v = os.environ.get(name)
    if not v:
        pytest.fail(f"{name} is not set: run the k8s tests through tests/k8s/run.sh")
    return v


@pytest.fixture(scope="session")
def helm() -> str:
    return need_env("HELM")


class Api:
    """A thin client for the real kube-apiserver: every call returns the requests.Response."""

    def __init__(self) -> None:
        self.base = need_env("K8S_API")
        self.s = requests.Session()
        self.s.trust_env = False  # REQUESTS_CA_BUNDLE would override verify=, and no proxies
        self.s.verify = need_env("K8S_CA")
        self.s.cert = (need_env("K8S_CLIENT_CERT"), need_env("K8S_CLIENT_KEY"))

    def get(self, path, **kw):
        return self.s.get(self.base + path, timeout=30, **kw)

    def post(self, path, obj, **kw):
        return self.s.post(self.base + path, json=obj, timeout=30, **kw)

    def put(self, path, obj, **kw):
        return self.s.put(self.base + path, json=obj, timeout=30, **kw)

    def delete(self, path, **kw):
        return self.s.delete(self.base + path, timeout=30, **kw)

    def apply(self, path, obj, params=None):
        """Server-side apply (strict field validation unless told otherwise)."""
        p = {"fieldManager": "kinfer-tests", "fieldValidation": "Strict", "force": "true"}
        p.update(params or {})
        return self.s.patch(self.base + path, data=yaml.safe_dump(obj), params=p, timeout=30,
                            headers={"Content-Type": "application/apply-patch+yaml"})

    def wait_for(self, what: str, fn, timeout: float = 60):
        deadline = time.time() + timeout
        while True:
            got = fn()
            if got:
                return got
            if time.time() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.5)

    def ensure_namespace(self, name: str) -> None:
        r = self.post("/api/v1/namespaces", {"apiVersion": "v1", "kind": "Namespace",
                                             "metadata": {"name": name}})
        assert r.status_code in (201, 409), r.text


# kind -> (API path prefix, plural, namespaced)
RESOURCES = {
    ("v1", "ConfigMap"): ("/api/v1", "configmaps", True),
    ("v1", "Secret"): ("/api/v1", "secrets", True),
    ("v1", "Service"): ("/api/v1", "services", True),
    ("v1", "ServiceAccount"): ("/api/v1", "serviceaccounts", True),
    ("v1", "Pod"): ("/api/v1", "pods", True),
    ("v1", "PersistentVolumeClaim"): ("/api/v1", "persistentvolumeclaims", True),
    ("apps/v1", "Deployment"): ("/apis/apps/v1", "deployments", True),
    ("rbac.authorization.k8s.io/v1", "Role"): ("/apis/rbac.authorization.k8s.io/v1", "roles", True),
    ("rbac.authorization.k8s.io/v1", "RoleBinding"): ("/apis/rbac.authorization.k8s.io/v1", "rolebindings", True),
    ("rbac.authorization.k8s.io/v1", "ClusterRole"): ("/apis/rbac.authorization.k8s.io/v1", "clusterroles", False),
    ("rbac.authorization.k8s.io/v1", "ClusterRoleBinding"): ("/apis/rbac.authorization.k8s.io/v1", "clusterrolebindings", False),
    ("autoscaling/v2", "HorizontalPodAutoscaler"): ("/apis/autoscaling/v2", "horizontalpodautoscalers", True),
    ("policy/v1", "PodDisruptionBudget"): ("/apis/policy/v1", "poddisruptionbudgets", True),
    ("networking.k8s.io/v1", "NetworkPolicy"): ("/apis/networking.k8s.io/v1", "networkpolicies", True),
    ("networking.k8s.io/v1", "Ingress"): ("/apis/networking.k8s.io/v1", "ingresses", True),
    ("monitoring.coreos.com/v1", "ServiceMonitor"): ("/apis/monitoring.coreos.com/v1", "servicemonitors", True),
    ("monitoring.coreos.com/v1", "PrometheusRule"): ("/apis/monitoring.coreos.com/v1", "prometheusrules", True),
    ("apiextensions.k8s.io/v1", "CustomResourceDefinition"): ("/apis/apiextensions.k8s.io/v1", "customresourcedefinitions", False),
    ("kinfer.dev/v1alpha1", "LLMService"): ("/apis/kinfer.dev/v1alpha1", "llmservices", True),
}


def object_path(obj: dict, namespace: str | None = None) -> str:
    prefix, plural, namespaced = RESOURCES[(obj["apiVersion"], obj["kind"])]
    name = obj["metadata"]["name"]
    if namespaced:
        ns = obj["metadata"].get("namespace") or namespace
        return f"{prefix}/namespaces/{ns}/{plural}/{name}"
    return f"{prefix}/{plural}/{name}"


def collection_path(obj: dict, namespace: str | None = None) -> str:
    return object_path(obj, namespace).rsplit("/", 1)[0]


@pytest.fixture(scope="session")
def api() -> Api:
    a = Api()
    r = a.get("/readyz")
    assert r.status_code == 200, f"kube-apiserver at {a.base} is not ready: {r.text}"
    return a


def install_crds(api: Api, paths) -> None:
    """Creates (or updates) CRDs from YAML files and waits until each is Established."""
    for p in paths:
        for crd in yaml.safe_load_all(pathlib.Path(p).read_text()):
            if not crd:
                continue
            r = api.apply(object_path(crd), crd)
            assert r.status_code in (200, 201), f"{p}: {r.status_code} {r.text[:2000]}"
            name = crd["metadata"]["name"]

            def established():
                got = api.get(f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{name}").json()
                conds = (got.get("status") or {}).get("conditions") or []
                return any(c["type"] == "Established" and c["status"] == "True" for c in conds)

            api.wait_for(f"CRD {name} Established", established)


def run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=300, **kw)


# Measured figures (takeover time, reconcile latency, ...) that tests report: printed at the end of
# the run, since pytest captures what passing tests print.
FIGURES: list[str] = []


def pytest_terminal_summary(terminalreporter):
    if FIGURES:
        terminalreporter.section("figures")
        for f in FIGURES:
            terminalreporter.write_line(f)
