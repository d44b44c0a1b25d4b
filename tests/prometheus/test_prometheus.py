"""Real Prometheus (Debian's prometheus 2.x) against a running `kinfer serve`, and the chart's
monitoring pieces checked by Prometheus' own tools:
- `promtool check rules` on the PrometheusRule that `helm template` renders from the chart;
- `promtool test rules` (alerts_test.yml): every alert fires on series that should fire and
  stays quiet on series that should not;
- Prometheus scrapes kinfer serve (labelled as the ServiceMonitor's service discovery labels
  it), loads the same rules (every one evaluates without error) and answers every query of the
  Grafana dashboard (deploy/helm/kinfer/dashboards/kinfer.json) with data while traffic runs.
"""
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
import requests
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "api"))
from conftest import CHATML, REPO, STORIES, Server, free_port  # noqa: E402

HERE = Path(__file__).resolve().parent
CHART = REPO / "deploy" / "helm" / "kinfer"
DASHBOARD = CHART / "dashboards" / "kinfer.json"
NAMESPACE, SERVICE, RELEASE, MODEL = "llm", "kinfer", "kinfer", "stories"
RATE_INTERVAL = "15s"  # Grafana's $__rate_interval for a 1 s scrape interval, with margin


def tool(name):
    path = os.environ.get(name.upper()) or shutil.which(name)
    if not path:
        pytest.fail(f"{name} not found: run tests/prometheus/run.sh (it installs it) or set "
                    f"${name.upper()}")
    return path


@pytest.fixture(scope="module")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="kinfer-prometheus-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def rules_file(workdir):
    """The chart's PrometheusRule as `helm template` renders it, as a Prometheus rule file."""
    out = subprocess.run(
        [tool("helm"), "template", RELEASE, str(CHART), "-n", NAMESPACE,
         "-f", str(REPO / "tests" / "k8s" / "values" / "minimal-pvc.yaml"),
         "--api-versions", "monitoring.coreos.com/v1/PrometheusRule"],
        check=True, capture_output=True, text=True).stdout
    rules = [d for d in yaml.safe_load_all(out) if d and d.get("kind") == "PrometheusRule"]
    assert len(rules) == 1, "the chart renders one PrometheusRule"
    path = workdir / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": rules[0]["spec"]["groups"]}, sort_keys=False))
    return path


def test_promtool_checks_the_charts_rules(rules_file):
    r = subprocess.run([tool("promtool"), "check", "rules", str(rules_file)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 5 rules found" in r.stdout, r.stdout


def test_promtool_unit_tests_every_alert(rules_file, workdir):
    tests = workdir / "alerts_test.yml"
    shutil.copy(HERE / "alerts_test.yml", tests)
    # Each alert of the chart has a test group that expects it to fire.
    alerts = {r["alert"] for g in yaml.safe_load(rules_file.read_text())["groups"]
              for r in g["rules"] if "alert" in r}
    tested = {t["alertname"] for g in yaml.safe_load(tests.read_text())["tests"]
              for t in g["alert_rule_test"] if t["exp_alerts"]}
    assert alerts == tested, f"alerts without a firing test: {alerts - tested}"
    r = subprocess.run([tool("promtool"), "test", "rules", str(tests)],
                       capture_output=True, text=True, cwd=workdir)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS" in r.stdout


class Prometheus:
    def __init__(self, workdir, target_port, rules_file):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = {
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "rule_files": [str(rules_file)],
            "scrape_configs": [{
                "job_name": "kinfer",
                "static_configs": [{
                    "targets": [f"127.0.0.1:{target_port}"],
                    # What the ServiceMonitor's Kubernetes service discovery attaches.
                    "labels": {"namespace": NAMESPACE, "service": SERVICE, "pod": "kinfer-0"},
                }],
            }],
        }
        cfg = workdir / "prometheus.yml"
        cfg.write_text(yaml.safe_dump(config))
        self.log = open(workdir / "prometheus.log", "w+")
        self.proc = subprocess.Popen(
            [tool("prometheus"), f"--config.file={cfg}", f"--storage.tsdb.path={workdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def api(self, path, **params):
        r = requests.get(self.url + "/api/v1/" + path, params=params, timeout=10)
        body = r.json()
        assert body.get("status") == "success", (path, params, body)
        return body["data"]

    def query(self, expr):
        return self.api("query", query=expr)

    def wait_target_up(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, self.output()
            try:
                targets = self.api("targets")["activeTargets"]
                if targets and all(t["health"] == "up" for t in targets):
                    return
            except (requests.RequestException, ValueError, AssertionError):
                pass
            time.sleep(0.5)
        raise TimeoutError(f"target not up:\n{self.output()}")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


class Traffic(threading.Thread):
    """Chat requests (streamed and not, some sharing a prefix), a few 4xx, until stopped or for
    at most `limit` seconds."""

    def __init__(self, url, limit=120):
        super().__init__(daemon=True)
        self.url, self.limit = url, limit
        self.stop_event = threading.Event()
        self.errors = []
        self.sent = 0

    def run(self):
        start = time.time()
        i = 0
        while not self.stop_event.is_set() and time.time() - start < self.limit:
            i += 1
            try:
                msgs = [{"role": "user", "content": "Once upon a time there was a little dog. "
                         f"Tell story {i % 3}."}]
                requests.post(self.url + "/v1/chat/completions", timeout=30, json={
                    "model": MODEL, "messages": msgs, "max_tokens": 24,
                    "stream": i % 2 == 0, "stream_options": {"include_usage": True}
                    if i % 2 == 0 else None}).content
                requests.post(self.url + "/v1/completions", timeout=30,
                              json={"model": MODEL, "prompt": "Lily was", "max_tokens": 8})
                if i % 3 == 0:  # a client error: the dashboard's error panel has data
                    requests.post(self.url + "/v1/completions", timeout=30,
                                  json={"model": MODEL, "prompt": "x", "temperature": -1})
                self.sent += 1
            except requests.RequestException as e:
                self.errors.append(repr(e))
            time.sleep(0.05)


def dashboard_queries():
    board = json.loads(DASHBOARD.read_text())
    for panel in board["panels"]:
        for target in panel.get("targets", []):
            yield panel["title"], target["expr"]


def substitute(expr):
    return (expr.replace("$namespace", NAMESPACE).replace("$model", MODEL)
            .replace("$__rate_interval", RATE_INTERVAL))


def has_data(result):
    """A non-empty vector with at least one finite value."""
    if result["resultType"] != "vector":
        return False
    return any(math.isfinite(float(s["value"][1])) for s in result["result"])


def test_prometheus_scrapes_kinfer_and_answers_every_dashboard_query(rules_file, workdir):
    server = Server(STORIES, "--served-model-name", MODEL, "--chat-template", str(CHATML),
                    "--kv-cache-memory", "64MiB")
    prom = Prometheus(workdir, server.port, rules_file)
    traffic = Traffic(server.url)
    try:
        prom.wait_target_up()
        traffic.start()
        # Let a few scrapes see the traffic, then query while it still runs.
        deadline = time.time() + 60
        pending = dict(enumerate(dashboard_queries()))
        assert len(pending) >= 10, "the dashboard's panels"
        time.sleep(8)
        while pending and time.time() < deadline:
            for k, (title, expr) in list(pending.items()):
                if has_data(prom.query(substitute(expr))):
                    del pending[k]
            if pending:
                time.sleep(1)
        assert not pending, "dashboard queries without data:\n" + "\n".join(
            f"{title}: {substitute(expr)} -> {prom.query(substitute(expr))}"
            for title, expr in pending.values())

        # The dashboard's variables: label_values(kinfer:num_requests_running, namespace), ...
        values = prom.api("label/namespace/values", **{"match[]": "kinfer:num_requests_running"})
        assert NAMESPACE in values
        values = prom.api("label/model_name/values", **{
            "match[]": f'kinfer:num_requests_running{{namespace=~"{NAMESPACE}"}}'})
        assert values == [MODEL]

        # The chart's alert rules load and evaluate without error against real series, and
        # every series they select exists with this release's labels.
        groups = prom.api("rules")["groups"]
        rules = [r for g in groups for r in g["rules"]]
        assert len(rules) == 5
        time.sleep(2)
        for r in prom.api("rules")["groups"][0]["rules"]:
            assert r["health"] == "ok", r
            assert r["state"] == "inactive", r  # a healthy server raises none of them
            for name in set(re.findall(r"\b(kinfer:[a-z_]+|up)\{", r["query"])):
                sel = f'{name}{{namespace="{NAMESPACE}",service="{SERVICE}"}}'
                assert prom.query(f"count({sel})")["result"], f"{r['name']}: no series {sel}"
        assert not traffic.errors, traffic.errors[:3]
        assert traffic.sent > 3
    finally:
        traffic.stop_event.set()
        traffic.join(60)
        prom.stop()
        assert server.stop() == 0, server.output()
