"""The operator's chart (deploy/helm/kinfer-operator) without a cluster: lint, what it renders
(two leader-elected replicas, locked-down pods, probes, least-privilege RBAC scoped to a namespace
when asked), the CRD it ships being the one in deploy/crds, and bad values refused. Installed into
the real API server and used by running operators in test_operator.py."""

from __future__ import annotations

import yaml

from conftest import CRDS, KUBE_VERSION, ROOT, run

CHART = ROOT / "deploy/helm/kinfer-operator"


def template(helm, *args, check=True):
    r = run([helm, "template", "kop", CHART, "-n", "kinfer-system", "--kube-version", KUBE_VERSION,
             *args])
    if check:
        assert r.returncode == 0, r.stderr
    return r


def objects(helm, *args):
    return {(d["kind"], d["metadata"]["name"]): d
            for d in yaml.safe_load_all(template(helm, *args).stdout) if d}


def test_lint_strict(helm):
    r = run([helm, "lint", "--strict", CHART])
    assert r.returncode == 0, r.stdout + r.stderr


def test_the_crd_it_ships_is_the_one_in_deploy_crds():
    # A copy (helm warns about symlinks on every command): edit deploy/crds, then copy it here.
    shipped = (CHART / "crds" / "kinfer.dev_llmservices.yaml").read_text()
    assert shipped == (CRDS / "kinfer.dev_llmservices.yaml").read_text()


def test_two_leader_elected_locked_down_replicas(helm):
    objs = objects(helm)
    d = objs[("Deployment", "kop-kinfer-operator")]
    assert d["spec"]["replicas"] == 2
    pod = d["spec"]["template"]["spec"]
    c = pod["containers"][0]
    assert c["args"][:2] == ["--log-level=info", "operator"]
    for flag in ("--leader-election-id=kop-kinfer-operator", "--lease-duration=15",
                 "--renew-deadline=10", "--retry-period=2", "--image=localhost/kinfer:0.1.0",
                 "--leader-election-namespace=kinfer-system"):
        assert flag in c["args"], flag
    assert c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["serviceAccountName"] == "kop-kinfer-operator"
    # The labels the operator's NetworkPolicies let scrape engine metrics.
    labels = d["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "kinfer" and labels["app.kubernetes.io/component"] == "operator"
    assert objs[("PodDisruptionBudget", "kop-kinfer-operator")]["spec"]["maxUnavailable"] == 1


def test_rbac_is_cluster_wide_or_one_namespace_and_the_lease_stays_home(helm):
    objs = objects(helm)
    assert ("ClusterRole", "kop-kinfer-operator") in objs
    lease = objs[("Role", "kop-kinfer-operator-leader-election")]
    assert lease["metadata"]["namespace"] == "kinfer-system"
    assert lease["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                               "verbs": ["get", "create", "update"]},
                              {"apiGroups": [""], "resources": ["configmaps"],
                               "verbs": ["get", "list", "create", "patch", "delete"]}]
    for rule in objs[("ClusterRole", "kop-kinfer-operator")]["rules"]:
        assert "*" not in rule["verbs"] and "*" not in rule["resources"], rule
        assert not {"get", "update"} & set(rule["verbs"]) or rule["resources"] in (
            ["llmservices/finalizers"], ["endpointslices"], ["llmservices/scale"]), rule
    scoped = objects(helm, "--set", "watchNamespace=llm")
    assert not any(k[0].startswith("Cluster") for k in scoped)
    role = scoped[("Role", "kop-kinfer-operator")]
    assert role["metadata"]["namespace"] == "llm"
    assert "--namespace=llm" in scoped[("Deployment", "kop-kinfer-operator")]["spec"]["template"]["spec"]["containers"][0]["args"]


def test_an_llmservice_from_values(helm):
    objs = objects(helm, "--set", "llmService.name=qwen", "--set", "llmService.spec.model.name=q",
                   "--set", "llmService.spec.model.source.pvc.claimName=models")
    llm = objs[("LLMService", "qwen")]
    assert llm["spec"] == {"model": {"name": "q", "source": {"pvc": {"claimName": "models"}}}}
    assert ("LLMService", "qwen") not in objects(helm)


def test_bad_values_are_refused_with_a_reason(helm):
    cases = [
        (["--set", "leaderElection.renewDeadlineSeconds=20"],
         "need retryPeriodSeconds (2) < renewDeadlineSeconds (20) < leaseDurationSeconds (15)"),
        (["--set", "replicas=0"], "at '/replicas'"),
        (["--set", "watchNamespace=Not_A_Namespace"], "at '/watchNamespace'"),
        (["--set", "llmService.name=9lives"], "at '/llmService/name'"),
        (["--set", "logLevel=verbose"], "at '/logLevel'"),
    ]
    for args, says in cases:
        r = template(helm, *args, check=False)
        assert r.returncode != 0, args
        assert says in r.stderr, r.stderr
