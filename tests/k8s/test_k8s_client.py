"""The Kubernetes client (src/k8s) against this real kube-apiserver and etcd: its GoogleTest suite
(tests/unit/k8s/cluster/) runs here, with the cluster's environment (KUBECONFIG, K8S_API, K8S_CA,
K8S_ETCD for compaction, K8S_RESTART_APISERVER for the 410 Gone test)."""

from __future__ import annotations

import os
import pathlib
import subprocess

from conftest import ROOT, need_env


def test_k8s_client_suite_against_the_api_server():
    for name in ("KUBECONFIG", "K8S_API", "K8S_CA", "K8S_ETCD", "K8S_RESTART_APISERVER"):
        need_env(name)
    binary = pathlib.Path(os.environ.get("KINFER_K8S_CLUSTER_TESTS",
                                         ROOT / "build/release/tests/unit/k8s_cluster_tests"))
    assert binary.exists(), f"{binary} is missing: cmake --build --preset release --target k8s_cluster_tests"
    r = subprocess.run([str(binary), "--gtest_brief=1"], capture_output=True, text=True, timeout=900)
    print(r.stdout[-30000:])
    print(r.stderr[-10000:])
    assert r.returncode == 0, "k8s_cluster_tests failed (output above)"
