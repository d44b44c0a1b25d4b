"""The chart without a cluster: `helm lint --strict`, golden renders of the main value
combinations (tests/k8s/values/*.yaml -> tests/k8s/golden/*.yaml; KINFER_UPDATE_GOLDEN=1
rewrites them), what the rendered pods promise, and bad values refused with clear messages."""

from __future__ import annotations

import os

import pytest
import yaml

from conftest import CHART, HERE, KUBE_VERSION, run

CASES = sorted(p.stem for p in (HERE / "values").glob("*.yaml"))
MONITORING = ["--api-versions", "monitoring.coreos.com/v1/ServiceMonitor",
              "--api-versions", "monitoring.coreos.com/v1/PrometheusRule"]


def template(helm, *args, check=True):
    r = run([helm, "template", "kinfer-test", CHART, "-n", "models", "--kube-version",
             KUBE_VERSION, *args])
    if check:
        assert r.returncode == 0, r.stderr
    return r


def render_case(helm, case):
    extra = MONITORING if case == "hub-auth-hpa" else []
    return template(helm, "-f", HERE / "values" / f"{case}.yaml", *extra).stdout


def objects(manifest: str) -> dict[tuple[str, str], dict]:
    return {(o["kind"], o["metadata"]["name"]): o for o in yaml.safe_load_all(manifest) if o}


@pytest.mark.parametrize("case", CASES)
def test_lint_strict(helm, case):
    r = run([helm, "lint", "--strict", CHART, "-f", HERE / "values" / f"{case}.yaml"])
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 chart(s) failed" in r.stdout


@pytest.mark.parametrize("case", CASES)
def test_golden(helm, case):
    got = render_case(helm, case)
    golden = HERE / "golden" / f"{case}.yaml"
    if os.environ.get("KINFER_UPDATE_GOLDEN") == "1":
        golden.write_text(got)
    assert golden.exists(), f"{golden} missing: run with KINFER_UPDATE_GOLDEN=1 and review it"
    assert got == golden.read_text(), (
        f"helm template for {case} differs from {golden}; if the change is intended, rerun with "
        "KINFER_UPDATE_GOLDEN=1 and review the diff")


def server_container(objs):
    dep = objs[("Deployment", "kinfer-test")]
    return dep, next(c for c in dep["spec"]["template"]["spec"]["containers"] if c["name"] == "kinfer")


@pytest.mark.parametrize("case", CASES)
def test_every_pod_is_locked_down_and_drains_before_it_stops(helm, case):
    objs = objects(render_case(helm, case))
    dep, c = server_container(objs)
    pod = dep["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False
    for ctr in pod["containers"] + pod.get("initContainers", []):
        sc = ctr["securityContext"]
        assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
        assert sc["capabilities"] == {"drop": ["ALL"]}
    assert c["startupProbe"]["httpGet"]["path"] == "/health"
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    args = dict(a.split("=", 1) for a in c["args"][1:] if "=" in a)
    pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop + int(args["--shutdown-timeout"])
    assert dep["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0


def test_guaranteed_qos_sets_limits_to_requests_and_asks_for_the_gpu(helm):
    objs = objects(render_case(helm, "gpu-guaranteed-tls"))
    _, c = server_container(objs)
    res = c["resources"]
    assert res["limits"]["cpu"] == res["requests"]["cpu"] == "4"
    assert res["limits"]["memory"] == res["requests"]["memory"] == "24Gi"
    assert res["limits"]["nvidia.com/gpu"] == 1
    # The GPU path: the CUDA variant of the image, the engine on the GPU.
    assert c["image"] == "localhost/kinfer:0.1.0-cuda"
    assert "--device=cuda" in c["args"] and "--gpu-memory-utilization=0.9" in c["args"]
    assert c["readinessProbe"]["httpGet"]["scheme"] == "HTTPS"
    hpa = objs[("HorizontalPodAutoscaler", "kinfer-test")]
    assert hpa["spec"]["metrics"][0]["resource"]["name"] == "cpu"
    assert ("PodDisruptionBudget", "kinfer-test") not in objs


def test_hub_source_pulls_in_an_init_container_and_autoscales_on_queue_depth(helm):
    objs = objects(render_case(helm, "hub-auth-hpa"))
    dep, c = server_container(objs)
    init = dep["spec"]["template"]["spec"]["initContainers"][0]
    assert init["args"][:3] == ["pull", "hf://Qwen/Qwen2.5-0.5B-Instruct-GGUF@main", "--dir=/models"]
    assert {"name": "HF_TOKEN", "valueFrom": {"secretKeyRef": {"name": "hf-token", "key": "HF_TOKEN"}}} in init["env"]
    assert "--api-key-file=/etc/kinfer/auth/api-keys" in c["args"]
    # No GPU: the plain image, and the server's own device choice (the CPU in that image).
    assert c["image"] == init["image"] == "localhost/kinfer:0.1.0"
    assert not any(a.startswith("--device") for a in c["args"])
    assert "replicas" not in dep["spec"]  # the HPA owns the count
    hpa = objs[("HorizontalPodAutoscaler", "kinfer-test")]
    m = hpa["spec"]["metrics"][0]
    assert m["type"] == "Pods" and m["pods"]["metric"]["name"] == "kinfer:num_requests_waiting"
    secret = objs[("Secret", "kinfer-test-api-keys")]
    assert secret["stringData"]["api-keys"].split() == ["sk-test-0123456789", "sk-test-abcdefghij"]
    np = objs[("NetworkPolicy", "kinfer-test")]
    api_rule, metrics_rule = np["spec"]["ingress"]
    assert api_rule["ports"] == [{"port": "http", "protocol": "TCP"}]
    assert metrics_rule["ports"] == [{"port": "metrics", "protocol": "TCP"}]
    assert metrics_rule["from"] == [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}}]
    assert ("ServiceMonitor", "kinfer-test") in objs and ("PrometheusRule", "kinfer-test") in objs


def test_monitoring_objects_only_when_the_crds_exist(helm):
    objs = objects(render_case(helm, "minimal-pvc"))
    assert not any(k in ("ServiceMonitor", "PrometheusRule") for k, _ in objs)
    assert ("ConfigMap", "kinfer-test-dashboard") in objs


def test_dashboard_has_the_promised_panels(helm):
    import json
    objs = objects(render_case(helm, "minimal-pvc"))
    dash = json.loads(objs[("ConfigMap", "kinfer-test-dashboard")]["data"]["kinfer.json"])
    titles = {p["title"] for p in dash["panels"]}
    assert {"Time to first token", "Inter-token latency", "Tokens per second",
            "Requests running and waiting", "KV cache usage", "Prefix cache hit rate",
            "Preemptions per second", "Errors by status"} <= titles
    exprs = " ".join(t["expr"] for p in dash["panels"] for t in p["targets"])
    for metric in ("kinfer:time_to_first_token_seconds_bucket", "kinfer:inter_token_latency_seconds_bucket",
                   "kinfer:num_requests_waiting", "kinfer:kv_cache_usage_perc",
                   "kinfer:prefix_cache_hits_total", "kinfer:num_preemptions_total",
                   "kinfer:http_requests_total"):
        assert metric in exprs


BASE = ["--set", "model.name=m", "--set", "model.source.pvc.claimName=models"]
BAD_VALUES = [
    (["--set", "model.source.pvc.claimName=models"], "at '/model/name': minLength: got 0, want 1"),
    (BASE + ["--set", "model.source.type=s3"],
     "at '/model/source/type': value must be one of 'pvc', 'hostPath', 'hub'"),
    (BASE + ["--set", "replicaCount=-1"], "at '/replicaCount': minimum: got -1, want 0"),
    (BASE + ["--set", "gpu=one"], "at '/gpu': got string, want integer"),
    (BASE + ["--set", "replicas=3"], "additional properties 'replicas' not allowed"),
    (BASE + ["--set", "securityContext.runAsNonRoot=false"],
     "at '/securityContext/runAsNonRoot': value must be true"),
    (BASE + ["--set", "service.port=70000"], "at '/service/port': maximum: got 70,000, want 65,535"),
    (BASE + ["--set", "autoscaling.metric=memory"],
     "at '/autoscaling/metric': value must be one of 'requestsWaiting', 'cpu'"),
    (BASE + ["--set", "resources.requests.memory=lots"], "at '/resources/requests/memory': 'lots' does not match pattern"),
    (BASE + ["--set", "engine.logFormat=xml"], "at '/engine/logFormat': value must be one of 'text', 'json'"),
    (BASE + ["--set", "engine.extraArgs[0]=-v"], "at '/engine/extraArgs/0': '-v' does not match pattern '^--'"),
    (["--set", "model.name=m", "--set", "model.source.type=hub", "--set", "model.source.hub.url=hf://only-org"],
     "at '/model/source/hub/url': 'hf://only-org' does not match pattern"),
    (["--set", "model.name=m"], "model.source.type is pvc: set model.source.pvc.claimName to an existing PersistentVolumeClaim"),
    (["--set", "model.name=m", "--set", "model.source.type=hub"],
     "model.source.type is hub: set model.source.hub.url to hf://ORG/NAME[@REVISION]"),
    (BASE + ["--set", "terminationGracePeriodSeconds=30"],
     "terminationGracePeriodSeconds (30) must be above preStopSleepSeconds + engine.shutdownTimeoutSeconds (35)"),
    (BASE + ["--set", "guaranteedQoS=true", "--set", "resources.requests=null"],
     "guaranteedQoS needs resources.requests.cpu and resources.requests.memory"),
    (BASE + ["--set", "autoscaling.enabled=true", "--set", "autoscaling.minReplicas=5"],
     "autoscaling.minReplicas (5) is above autoscaling.maxReplicas (4)"),
    (BASE + ["--set", "auth.enabled=true"],
     "auth.enabled: set auth.existingSecret to a Secret with the keys, or list auth.apiKeys"),
    (BASE + ["--set", "model.path=../etc"], "model.path \"../etc\" may not contain '..'"),
    (BASE + ["--set", "metricsPort=8000"], "metricsPort must differ from service.port"),
]


@pytest.mark.parametrize("args,message", BAD_VALUES, ids=[m[:40] for _, m in BAD_VALUES])
def test_bad_values_are_refused_with_a_clear_message(helm, args, message):
    r = template(helm, *args, check=False)
    assert r.returncode != 0, f"accepted: {args}"
    assert message in r.stderr, r.stderr
