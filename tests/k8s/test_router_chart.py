"""The chart's router (router.enabled) without a cluster: what it renders and promises, and the
values it refuses. The golden render is tests/k8s/golden/router-netpol-auth.yaml (with the other
cases in test_chart_render.py)."""

from __future__ import annotations

import pytest

from conftest import HERE
from test_chart_render import objects, template

ROUTER_VALUES = ["-f", str(HERE / "values" / "router-netpol-auth.yaml")]


def rendered(helm, *args):
    return objects(template(helm, *ROUTER_VALUES, *args).stdout)


def test_router_watches_this_releases_replicas_with_the_least_rights(helm):
    objs = rendered(helm)
    dep = objs[("Deployment", "kinfer-test-router")]
    pod = dep["spec"]["template"]["spec"]
    c = pod["containers"][0]
    args = dict(a.split("=", 1) for a in c["args"][1:] if "=" in a)
    assert c["args"][0] == "router"
    # The replicas' own Service, by name, in the release's namespace.
    assert args["--endpointslices"] == "models/kinfer-test"
    assert ("Service", "kinfer-test") in objs
    assert args["--served-model-name"] == "stories260K"
    assert args["--model"] == "/models/stories260K.gguf"
    assert args["--api-key-file"] == "/etc/kinfer/auth/api-keys"
    assert args["--rate-limit-rpm"] == "600" and args["--rate-limit-tpm"] == "200000"
    assert dep["spec"]["replicas"] == 2
    assert pod["serviceAccountName"] == "kinfer-test-router"
    assert pod["automountServiceAccountToken"] is True
    role = objs[("Role", "kinfer-test-router")]
    assert role["rules"] == [{"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
                              "verbs": ["get", "list", "watch"]}]
    binding = objs[("RoleBinding", "kinfer-test-router")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "kinfer-test-router",
                                    "namespace": "models"}]
    # The engines' pods keep no token at all.
    assert objs[("Deployment", "kinfer-test")]["spec"]["template"]["spec"][
        "automountServiceAccountToken"] is False


def test_router_pods_are_locked_down_and_drain(helm):
    objs = rendered(helm)
    pod = objs[("Deployment", "kinfer-test-router")]["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert pod["securityContext"]["runAsNonRoot"] is True
    sc = c["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    args = dict(a.split("=", 1) for a in c["args"][1:] if "=" in a)
    pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"]
    assert pod["terminationGracePeriodSeconds"] > pre_stop + float(args["--drain-delay"]) + \
        float(args["--shutdown-timeout"])
    assert next(m for m in c["volumeMounts"] if m["name"] == "model")["readOnly"] is True
    pdb = objs[("PodDisruptionBudget", "kinfer-test-router")]
    assert pdb["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "router"


def test_clients_reach_the_routers_and_only_the_routers_reach_the_replicas(helm):
    objs = rendered(helm)
    svc = objs[("Service", "kinfer-test-router")]
    assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "router"
    assert [p["port"] for p in svc["spec"]["ports"]] == [8080, 9090]
    engines = objs[("NetworkPolicy", "kinfer-test")]["spec"]["ingress"]
    api = next(r for r in engines if r["ports"][0]["port"] == "http")
    assert api["from"] == [{"podSelector": {"matchLabels": {
        "app.kubernetes.io/name": "kinfer", "app.kubernetes.io/instance": "kinfer-test",
        "app.kubernetes.io/component": "router"}}}]
    routers = objs[("NetworkPolicy", "kinfer-test-router")]["spec"]
    assert routers["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "router"
    api = next(r for r in routers["ingress"] if r["ports"][0]["port"] == "http")
    assert {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "apps"}}} in api["from"]
    # helm test goes through the router.
    test_pod = objs[("Pod", "kinfer-test-test-models")]
    assert "--url=http://kinfer-test-router:8080" in test_pod["spec"]["containers"][0]["args"]


def test_router_off_renders_nothing_of_it(helm):
    objs = objects(template(helm, "--set", "model.name=m", "--set",
                            "model.source.pvc.claimName=c").stdout)
    assert not [k for k in objs if k[1].endswith("-router")]


BASE = ["--set", "model.name=m", "--set", "model.source.pvc.claimName=c", "--set", "router.enabled=true"]
BAD = [
    (BASE + ["--set", "router.policy=random"],
     "at '/router/policy': value must be one of 'prefix', 'least_request', 'session', 'round_robin'"),
    (BASE + ["--set", "tls.enabled=true", "--set", "tls.secretName=t"],
     "the router reaches the replicas over plain HTTP"),
    (BASE + ["--set", "metricsPort=8080"], "metricsPort must differ from 8080"),
    (["--set", "model.name=m", "--set", "model.source.type=hub", "--set",
      "model.source.hub.url=hf://org/name", "--set", "router.enabled=true", "--set",
      "router.tokenizerFromModel=true"], "router.tokenizerFromModel needs a model volume"),
    (BASE + ["--set", "router.replicaCount=0"], "at '/router/replicaCount': minimum: got 0, want 1"),
]


@pytest.mark.parametrize("args,message", BAD, ids=[m[:40] for _, m in BAD])
def test_bad_router_values_are_refused(helm, args, message):
    r = template(helm, *args, check=False)
    assert r.returncode != 0, f"accepted: {args}"
    assert message in r.stderr, r.stderr
