"""The LLMService CRD in the real kube-apiserver: it is accepted and Established, the examples
in deploy/crds/examples are accepted with defaults applied, bad objects are refused with the
messages of the schema and CEL rules, and the status and scale subresources and printer
columns work."""

from __future__ import annotations

import copy

import pytest
import yaml

from conftest import CRDS, install_crds

NS = "kinfer-crd"
BASE = "/apis/kinfer.dev/v1alpha1/namespaces/" + NS + "/llmservices"
EXAMPLES = sorted((CRDS / "examples").glob("*.yaml"))

VALID = {
    "apiVersion": "kinfer.dev/v1alpha1",
    "kind": "LLMService",
    "metadata": {"name": "base"},
    "spec": {"model": {"name": "tiny", "source": {"pvc": {"claimName": "models"}}}},
}


@pytest.fixture(scope="module")
def crd(api):
    install_crds(api, [CRDS / "kinfer.dev_llmservices.yaml"])
    api.ensure_namespace(NS)


def create(api, obj):
    return api.post(BASE, obj, params={"fieldValidation": "Strict"})


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_are_accepted(api, crd, example):
    obj = yaml.safe_load(example.read_text())
    r = create(api, obj)
    assert r.status_code == 201, r.text


def test_defaults_are_applied(api, crd):
    obj = copy.deepcopy(VALID)
    obj["metadata"]["name"] = "defaults"
    obj["spec"]["engine"] = {}
    obj["spec"]["autoscaling"] = {"maxReplicas": 3}
    r = create(api, obj)
    assert r.status_code == 201, r.text
    spec = r.json()["spec"]
    assert spec["replicas"] == 1
    assert spec["router"] == {"enabled": True, "replicas": 2, "policy": "prefixAware"}
    assert spec["networkPolicy"] == {"enabled": True}
    assert spec["engine"] == {"maxNumSeqs": 64, "shutdownTimeoutSeconds": 30}
    assert spec["autoscaling"] == {
        "minReplicas": 1, "maxReplicas": 3, "targetRequestsWaiting": 2, "targetConcurrency": 8,
        "targetKVCacheUsage": "0.8", "stableWindow": "60s", "panicWindow": "6s",
        "panicThreshold": "2", "maxScaleUpRate": "2", "scaleDownDelay": "60s"}


def invalid(path, value):
    """VALID with spec.<path> set to value (None deletes it)."""
    obj = copy.deepcopy(VALID)
    obj["metadata"]["name"] = "bad"
    node = obj["spec"]
    keys = path.split(".")
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    if value is None:
        node.pop(keys[-1], None)
    else:
        node[keys[-1]] = value
    return obj


def invalid_spec(**spec):
    obj = copy.deepcopy(VALID)
    obj["metadata"]["name"] = "bad"
    obj["spec"].update(spec)
    return obj


BAD = [
    ("no source", invalid("model.source", {}),
     "spec.model.source: Invalid value: model.source needs exactly one of hub, pvc or hostPath"),
    ("two sources", invalid("model.source", {"pvc": {"claimName": "a"}, "hostPath": {"path": "/m"}}),
     "model.source needs exactly one of hub, pvc or hostPath"),
    ("bad hub url", invalid("model.source", {"hub": {"url": "https://huggingface.co/x/y"}}),
     "spec.model.source.hub.url: Invalid value: \"https://huggingface.co/x/y\": spec.model.source.hub.url in body should match"),
    ("relative hostPath", invalid("model.source", {"hostPath": {"path": "models"}}),
     "spec.model.source.hostPath.path in body should match '^/'"),
    ("no model name", invalid("model.name", None), "spec.model.name: Required value"),
    ("dotdot path", invalid("model.path", "../../etc/passwd"), "model.path may not contain '..'"),
    ("min above max", invalid("autoscaling", {"minReplicas": 5, "maxReplicas": 2}),
     "autoscaling.minReplicas must not exceed autoscaling.maxReplicas"),
    ("zero without idle time", invalid("autoscaling", {"minReplicas": 0, "maxReplicas": 2}),
     "autoscaling.minReplicas 0 (scale to zero) needs autoscaling.scaleToZeroAfter"),
    ("idle time without zero", invalid("autoscaling", {"minReplicas": 1, "scaleToZeroAfter": "5m"}),
     "autoscaling.scaleToZeroAfter only applies with autoscaling.minReplicas 0"),
    ("bad duration", invalid("autoscaling", {"minReplicas": 0, "scaleToZeroAfter": "5 minutes"}),
     "spec.autoscaling.scaleToZeroAfter in body should match"),
    ("kv target above 1", invalid("autoscaling", {"targetKVCacheUsage": "1.5"}),
     "spec.autoscaling.targetKVCacheUsage in body should match"),
    ("negative concurrency", invalid("autoscaling", {"targetConcurrency": "-2"}),
     "spec.autoscaling.targetConcurrency in body should match"),
    ("bad window", invalid("autoscaling", {"stableWindow": "1 minute"}),
     "spec.autoscaling.stableWindow in body should match"),
    ("replicas outside range", invalid_spec(replicas=9, autoscaling={"maxReplicas": 4}),
     "spec.replicas must be within autoscaling.minReplicas and autoscaling.maxReplicas"),
    ("bad router policy", invalid("router", {"policy": "random"}),
     "spec.router.policy: Unsupported value: \"random\": supported values: \"prefixAware\", \"leastLoaded\", \"sessionAffinity\", \"roundRobin\""),
    ("bad kv cache size", invalid("engine", {"kvCacheMemory": "two gigs"}),
     "engine.kvCacheMemory must be a quantity such as 2Gi or 2147483648"),
    ("owned flag", invalid("engine", {"extraArgs": ["--port=9000"]}),
     "engine.extraArgs may not set --model, --port or --host: the operator owns them"),
    ("negative gpu", invalid("resources", {"gpu": -1}), "spec.resources.gpu: Invalid value: -1: spec.resources.gpu in body should be greater than or equal to 0"),
    ("empty peer", invalid("networkPolicy", {"allowFrom": [{}]}),
     "each networkPolicy.allowFrom entry needs a namespaceSelector or a podSelector"),
    ("unknown field", invalid("modle", {"name": "typo"}), "unknown field \"spec.modle\""),
    ("name not a DNS label", {**copy.deepcopy(VALID), "metadata": {"name": "9-lives"}},
     "metadata.name must be a DNS label of at most 40 characters"),
    ("name too long", {**copy.deepcopy(VALID), "metadata": {"name": "a" * 41}},
     "metadata.name must be a DNS label of at most 40 characters"),
]


@pytest.mark.parametrize("name,obj,message", BAD, ids=[b[0] for b in BAD])
def test_invalid_objects_are_refused_with_a_clear_message(api, crd, name, obj, message):
    r = create(api, obj)
    assert r.status_code in (400, 422), f"{name}: accepted ({r.status_code})"
    assert message in r.json()["message"], r.json()["message"]


def test_model_name_is_immutable(api, crd):
    obj = copy.deepcopy(VALID)
    obj["metadata"]["name"] = "immutable"
    r = create(api, obj)
    assert r.status_code == 201, r.text
    live = r.json()
    live["spec"]["model"]["name"] = "other"
    r = api.put(f"{BASE}/immutable", live)
    assert r.status_code == 422
    assert "model.name is immutable" in r.json()["message"]


def test_scale_subresource_moves_replicas_within_the_autoscaling_range(api, crd):
    obj = copy.deepcopy(VALID)
    obj["metadata"]["name"] = "scaled"
    obj["spec"]["autoscaling"] = {"minReplicas": 1, "maxReplicas": 3}
    assert create(api, obj).status_code == 201
    # The operator publishes the selector in status; the scale subresource reads it from there.
    status = api.get(f"{BASE}/scaled").json()
    status["status"] = {"replicas": 1, "readyReplicas": 1, "selector": "kinfer.dev/llmservice=scaled",
                        "observedGeneration": 1, "endpoint": "http://scaled.kinfer-crd.svc:8000",
                        "conditions": [{"type": "Available", "status": "True", "reason": "ReplicasReady",
                                        "message": "1 of 1 replicas ready",
                                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    r = api.put(f"{BASE}/scaled/status", status)
    assert r.status_code == 200, r.text
    scale = api.get(f"{BASE}/scaled/scale").json()
    assert scale["kind"] == "Scale"
    assert scale["spec"]["replicas"] == 1 and scale["status"]["selector"] == "kinfer.dev/llmservice=scaled"
    scale["spec"]["replicas"] = 3
    r = api.put(f"{BASE}/scaled/scale", scale)
    assert r.status_code == 200, r.text
    assert api.get(f"{BASE}/scaled").json()["spec"]["replicas"] == 3
    scale = api.get(f"{BASE}/scaled/scale").json()
    scale["spec"]["replicas"] = 7
    r = api.put(f"{BASE}/scaled/scale", scale)
    assert r.status_code == 422
    assert "spec.replicas must be within" in r.json()["message"]


def test_status_conditions_are_validated(api, crd):
    obj = copy.deepcopy(VALID)
    obj["metadata"]["name"] = "conds"
    assert create(api, obj).status_code == 201
    live = api.get(f"{BASE}/conds").json()
    live["status"] = {"conditions": [{"type": "Available", "status": "Maybe", "reason": "X",
                                      "message": "", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    r = api.put(f"{BASE}/conds/status", live)
    assert r.status_code == 422
    assert "status.conditions[0].status: Unsupported value: \"Maybe\"" in r.json()["message"]


def test_printer_columns(api, crd):
    r = api.get(BASE, headers={"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"})
    assert r.status_code == 200, r.text
    table = r.json()
    names = [c["name"] for c in table["columnDefinitions"]]
    assert names[:5] == ["Name", "Model", "Ready", "Replicas", "Available"]
    rows = {row["cells"][0]: row["cells"] for row in table["rows"]}
    assert rows["scaled"][1:5] == ["tiny", 1, 3, "True"]
