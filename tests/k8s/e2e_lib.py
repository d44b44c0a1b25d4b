"""What the full-cluster e2e scripts (e2e_operator.py, e2e_autoscale.py) share: a client for the
test cluster's API server, authenticated with the admin client certificate that
tests/k8s/cluster.sh exports (K8S_API, K8S_CA, K8S_CLIENT_CERT, K8S_CLIENT_KEY)."""
import os
import time

import requests
import yaml


class Failure(Exception):
    """A wait that ran out or a broken promise: the script reports it and exits non-zero."""


def wait_for(what, fn, timeout, interval=0.25):
    """fn's first truthy result, polled every `interval` s; Failure after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise Failure(f"no {what} within {timeout}s")
        time.sleep(interval)


def figure(msg: str) -> None:
    print(f"[figure] {msg}", flush=True)


class Api:
    def __init__(self):
        self.base = os.environ["K8S_API"]
        self.s = requests.Session()
        self.s.trust_env = False
        self.s.verify = os.environ["K8S_CA"]
        self.s.cert = (os.environ["K8S_CLIENT_CERT"], os.environ["K8S_CLIENT_KEY"])

    def get(self, path, **kw):
        return self.s.get(self.base + path, timeout=30, **kw)

    def post(self, path, obj):
        return self.s.post(self.base + path, json=obj, timeout=30)

    def merge(self, path, patch):
        return self.s.patch(self.base + path, json=patch, timeout=30,
                            headers={"Content-Type": "application/merge-patch+json"})

    def apply(self, path, obj):
        """Server-side apply as the field manager kinfer-e2e."""
        return self.s.patch(self.base + path, data=yaml.safe_dump(obj), timeout=30,
                            params={"fieldManager": "kinfer-e2e", "force": "true"},
                            headers={"Content-Type": "application/apply-patch+yaml"})
