"""What Kubernetes relies on: probes that tell the truth during load and drain, metrics that
track requests, a disconnect that frees the KV cache, SIGTERM that finishes in-flight streams
and exits 0, and TLS."""
import json
import os
import signal
import socket
import ssl
import subprocess
import threading
import time

import openai
import pytest
import requests

from conftest import STORIES, Server


def wait_for(predicate, timeout=30, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


def test_probes_answer_while_the_model_loads():
    # KINFER_TEST_LOAD_DELAY_MS stretches the load so the probes can be seen during it.
    s = Server(STORIES, "--kv-cache-memory", "16MiB", wait_ready=False,
               env={"KINFER_TEST_LOAD_DELAY_MS": "1500"})
    try:
        assert wait_for(lambda: _status(s.url + "/health") == 200, timeout=10)
        assert _status(s.url + "/ready") == 503
        r = requests.post(s.url + "/v1/completions", json={"prompt": "x"})
        assert r.status_code == 503 and "loading" in r.json()["error"]["message"]
        s.wait_ready()
        assert _status(s.url + "/health") == 200
    finally:
        assert s.stop() == 0


def test_model_load_reports_progress_in_the_log_and_ready():
    """Reading the weights reports progress: log lines 'loading PATH: reading weights N% (X of
    Y, T s)' (every 2 s on a slow load; the hook logs every update), then /ready."""
    s = Server(STORIES, "--kv-cache-memory", "16MiB", env={"KINFER_TEST_PROGRESS_LINES": "1"})
    try:
        lines = [l for l in s.output().splitlines() if "reading weights" in l]
        assert lines, s.output()
        assert f"loading {STORIES}: reading weights 0%" in lines[0]
        assert "reading weights 100% (" in lines[-1] and " of " in lines[-1]
    finally:
        assert s.stop() == 0


def _status(url):
    try:
        return requests.get(url, timeout=2).status_code
    except requests.RequestException:
        return None


def test_bad_model_exits_nonzero_with_a_clear_error(tmp_path):
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF\x03\x00\x00\x00" + b"\xff" * 32)
    s = Server(bad, wait_ready=False)
    assert s.proc.wait(30) != 0
    assert "broken.gguf" in s.output()


def test_metrics_track_requests_with_model_name_and_vllm_aliases(stories, client):
    before = stories.metric("kinfer:request_success_total", finished_reason="length") or 0
    gen_before = stories.metric("kinfer:generation_tokens_total") or 0
    client.completions.create(model="stories", prompt="Lily", max_tokens=7)
    m = stories.metrics()
    assert stories.metric("kinfer:request_success_total", finished_reason="length") == before + 1
    assert stories.metric("kinfer:generation_tokens_total") >= gen_before + 7
    for name in ("num_requests_running", "num_requests_waiting", "kv_cache_usage_perc",
                 "prefix_cache_queries_total", "prefix_cache_hits_total", "num_preemptions_total",
                 "prompt_tokens_total", "generation_tokens_total",
                 "time_to_first_token_seconds_count", "inter_token_latency_seconds_count",
                 "e2e_request_latency_seconds_count", "request_queue_time_seconds_count",
                 "request_prompt_tokens_count", "request_generation_tokens_count"):
        for prefix in ("kinfer:", "vllm:"):
            assert any(k.startswith(prefix + name + "{") and 'model_name="stories"' in k for k in m), \
                prefix + name
    assert stories.metric("kinfer:e2e_request_latency_seconds_count") >= 1
    assert stories.metric("kinfer:http_requests_total", status="200") >= 1


def test_client_disconnect_frees_the_kv_blocks(stories):
    with socket.create_connection(("127.0.0.1", stories.port)) as s:
        body = json.dumps({"prompt": "Once upon a time", "max_tokens": 2000, "stream": True,
                           "ignore_eos": True}).encode()
        s.sendall(b"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        s.settimeout(10)
        got = s.recv(4096)
        assert got.startswith(b"HTTP/1.1 200"), got
        while got.count(b"data: ") < 5:
            got += s.recv(4096)
        assert wait_for(lambda: stories.metric("kinfer:num_requests_running") == 1)
        assert stories.metric("kinfer:kv_cache_usage_perc") > 0
    # Closed: the request is aborted and its blocks are free within a step.
    assert wait_for(lambda: stories.metric("kinfer:num_requests_running") == 0, timeout=10)
    assert wait_for(lambda: stories.metric("kinfer:kv_cache_usage_perc") == 0, timeout=10)


def test_sigterm_drains_in_flight_streams_and_exits_zero():
    # stories260K writes 400 tokens in a fifth of a second: each token is slowed to 5 ms so the
    # streams are still running when new work is refused, on however fast a machine.
    s = Server(STORIES, "--kv-cache-memory", "32MiB", env={"KINFER_TEST_TOKEN_DELAY_MS": "5"})
    results = {}

    def stream(name):
        r = requests.post(s.url + "/v1/completions", stream=True, timeout=60,
                          json={"prompt": "Once upon a time", "max_tokens": 400, "stream": True,
                                "ignore_eos": True, "temperature": 0})
        lines = [l for l in r.iter_lines(decode_unicode=True) if l]
        results[name] = lines

    threads = [threading.Thread(target=stream, args=(f"s{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    assert wait_for(lambda: (s.metric("kinfer:num_requests_running") or 0) == 2)
    s.proc.send_signal(signal.SIGTERM)
    # /ready turns 503 at once; /health stays 200 while draining.
    assert wait_for(lambda: _status(s.url + "/ready") == 503, timeout=2)
    assert _status(s.url + "/health") == 200
    # Keep-alive clients are told to close the connection, so their next request goes to a new
    # connection (another replica behind a Service) instead of one about to refuse it.
    assert requests.get(s.url + "/health").headers.get("Connection") == "close"
    # After the drain delay (0.5 s) new work is refused.
    assert wait_for(lambda: requests.post(s.url + "/v1/completions",
                                          json={"prompt": "x", "max_tokens": 1}).status_code == 503,
                    timeout=5)
    for t in threads:
        t.join(60)
    assert s.proc.wait(30) == 0, s.output()
    for name, lines in results.items():
        assert lines[-1] == "data: [DONE]", name
        finals = [json.loads(l[6:]) for l in lines[:-1]]
        assert finals[-1]["choices"][0]["finish_reason"] == "length", name
        assert sum(1 for f in finals if f["choices"][0]["text"]) >= 300


def test_tls_with_a_self_signed_certificate(tmp_path):
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-keyout", str(key), "-out", str(cert), "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
                   check=True, capture_output=True)
    s = Server(STORIES, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key),
               "--kv-cache-memory", "16MiB", scheme="https", verify=str(cert))
    try:
        import httpx
        c = openai.OpenAI(base_url=s.url + "/v1", api_key="x", max_retries=0,
                          http_client=httpx.Client(verify=ssl.create_default_context(cafile=str(cert))))
        r = c.completions.create(model=str(STORIES), prompt="Lily", max_tokens=3, temperature=0)
        assert r.choices[0].text
        chunks = list(c.completions.create(model=str(STORIES), prompt="Lily", max_tokens=3,
                                           temperature=0, stream=True))
        assert "".join(x.choices[0].text for x in chunks) == r.choices[0].text
        with pytest.raises(requests.exceptions.SSLError):
            requests.get(s.url + "/health", verify=True)  # not a public CA
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.get(f"http://127.0.0.1:{s.port}/health", timeout=5)
    finally:
        assert s.stop() == 0


def test_metrics_port_is_apart_from_the_api(stories):
    from conftest import free_port
    mport = free_port()
    s = Server(STORIES, "--metrics-port", str(mport), "--kv-cache-memory", "16MiB")
    try:
        r = requests.get(f"http://127.0.0.1:{mport}/metrics")
        assert r.status_code == 200 and "kinfer:num_requests_running" in r.text
        assert requests.post(f"http://127.0.0.1:{mport}/v1/completions",
                             json={"prompt": "x"}).status_code == 404
        assert requests.get(f"http://127.0.0.1:{mport}/ready").status_code == 200
    finally:
        assert s.stop() == 0


def test_access_log_lines_are_json_without_prompts(stories, client):
    client.completions.create(model="stories", prompt="Secret prompt text", max_tokens=2,
                              extra_headers={"X-Request-Id": "log-check-1"})
    assert wait_for(lambda: "log-check-1" in stories.output(), timeout=5)
    line = next(l for l in stories.output().splitlines() if "log-check-1" in l)
    entry = json.loads(line)
    assert entry["status"] == 200 and entry["completion_tokens"] == 2
    assert entry["prompt_tokens"] > 0 and entry["ttft_ms"] >= 0
    assert "Secret prompt text" not in line
