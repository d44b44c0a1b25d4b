"""`kinfer router` in front of real `kinfer serve` replicas, driven by the official openai client
and raw HTTP: answers identical to a replica's own, streams passed through as they come, bad
input answered by the router itself (the replicas never see it), prefix affinity that the
replicas' own prefix-cache counters confirm, failover under SIGKILL and SIGTERM, a client
disconnect that frees the replica, API keys and rate limits, and requests held until a replica
is ready."""
import json
import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import openai
import pytest
import requests

from conftest import CHATML, STORIES, Server, binary, free_port


def wait_for(predicate, timeout=30, interval=0.05):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return False


class Router:
    """A running `kinfer router`; stop() sends SIGTERM and returns the exit code."""

    def __init__(self, backends, *args, wait_routable=True, env=None):
        self.port = free_port()
        self.log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"kinfer-router-{self.port}.log", "w+")
        cmd = [binary(), "router", "--backends", ",".join(backends), "--port", str(self.port),
               "--host", "127.0.0.1", "--drain-delay", "0.3", "--shutdown-timeout", "20",
               "--probe-interval", "0.1", "--scrape-interval", "0.1", *args]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env={**os.environ, **(env or {})})
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"kinfer router exited with {self.proc.returncode}:\n{self.output()}")
            try:
                if requests.get(self.url + "/ready", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            time.sleep(0.05)
        if wait_routable:
            assert wait_for(lambda: self.healthy() == len(backends), timeout=60), self.output()
            # The model names are learned from the first replica up (the router then answers
            # unknown models itself).
            assert wait_for(lambda: any('model="stories"' in k for k in self.metrics()), timeout=30)

    def output(self):
        self.log.flush()
        self.log.seek(0)
        return self.log.read()

    def access_log(self):
        lines = []
        for line in self.output().splitlines():
            if line.startswith("{"):
                lines.append(json.loads(line))
        return lines

    def metrics(self):
        values = {}
        for line in requests.get(self.url + "/metrics", timeout=10).text.splitlines():
            if line.startswith("#") or not line.strip():
                continue
            name, _, value = line.rpartition(" ")
            values[name] = float(value)
        return values

    def metric(self, name, **labels):
        total, found = 0.0, False
        for series, v in self.metrics().items():
            if series.split("{")[0] != name:
                continue
            if all(f'{k}="{val}"' in series for k, val in labels.items()):
                total += v
                found = True
        return total if found else None

    def healthy(self):
        return int(self.metric("kinfer_router_backends", state="routable") or 0)

    def client(self, key="unused"):
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0)

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def replica(*args):
    return Server(STORIES, "--served-model-name", "stories", "--chat-template", str(CHATML),
                  "--kv-cache-memory", "32MiB", "--threads", "1", *args)


@pytest.fixture(scope="module")
def pair():
    a, b = replica(), replica()
    yield a, b
    for s in (a, b):
        if s.proc.poll() is None:
            assert s.stop() == 0, s.output()


@pytest.fixture(scope="module")
def router(pair):
    r = Router([p.url for p in pair], "--model", str(STORIES), "--chat-template", str(CHATML))
    yield r
    assert r.stop() == 0, r.output()


def test_answers_are_the_replicas_answers(pair, router):
    direct = openai.OpenAI(base_url=pair[0].url + "/v1", api_key="x", max_retries=0)
    via = router.client()
    kw = dict(model="stories", prompt="Once upon a time", max_tokens=24, temperature=0)
    assert via.completions.create(**kw).choices[0].text == \
        direct.completions.create(**kw).choices[0].text
    msgs = [{"role": "user", "content": "Tell me about the cat."}]
    a = via.chat.completions.create(model="stories", messages=msgs, max_tokens=16, temperature=0)
    b = direct.chat.completions.create(model="stories", messages=msgs, max_tokens=16, temperature=0)
    assert a.choices[0].message.content == b.choices[0].message.content
    assert a.usage.prompt_tokens == b.usage.prompt_tokens
    models = via.models.list()
    assert [m.id for m in models.data] == ["stories"]
    # The engine's extras pass through too.
    r = requests.post(router.url + "/tokenize", json={"prompt": "Once upon a time"})
    assert r.status_code == 200 and r.json()["tokens"] == [1, 403, 407, 261, 378]


def test_streams_pass_through_as_they_come(router):
    client = router.client()
    stream = client.chat.completions.create(
        model="stories", messages=[{"role": "user", "content": "Hi"}], max_tokens=48,
        temperature=0, stream=True, stream_options={"include_usage": True}, extra_body={"ignore_eos": True})
    times, text, usage = [], "", None
    for chunk in stream:
        times.append(time.monotonic())
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
        if chunk.usage:
            usage = chunk.usage
    assert usage is not None and usage.completion_tokens == 48
    assert len(times) >= 40  # one event per token or so: not one buffered blob
    assert len(text) > 0
    # Raw SSE: the bytes of the events are the replica's (data: lines, [DONE] at the end).
    with requests.post(router.url + "/v1/completions", stream=True,
                       json={"prompt": "The cat", "max_tokens": 5, "stream": True}) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        body = b"".join(r.iter_content(None)).decode()
    events = [e for e in body.split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    assert all(e.startswith("data: ") for e in events)


def _raw_oversized(url_port, size):
    """A request that announces `size` body bytes: the answer comes before the body is read."""
    s = socket.create_connection(("127.0.0.1", url_port))
    s.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {size}\r\n\r\n").encode() + b"{" * 1024)
    data = b""
    while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_bad_input_is_answered_by_the_router(pair, router):
    r = requests.post(router.url + "/v1/chat/completions", data=b"{not json",
                      headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = requests.post(router.url + "/v1/completions", json={"model": "nope", "prompt": "x"})
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"
    r = requests.post(router.url + "/v1/chat/completions", json={"model": "stories"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    status, body = _raw_oversized(router.port, 9 << 20)  # the default cap is 8 MiB
    assert status == 413 and "max-request-body-bytes" in body["error"]["message"]
    r = requests.get(router.url + "/admin")
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"
    with pytest.raises(openai.NotFoundError):
        router.client().completions.create(model="gpt-4", prompt="x")
    # None of these reached a replica: the router's log shows no attempt for any of them.
    # (The log line is written right after the answer: wait for the last one.)
    assert wait_for(lambda: len([l for l in router.access_log() if l.get("status") in (400, 404)]) >= 5,
                    timeout=5)
    errors = [l for l in router.access_log() if l.get("status") in (400, 404)]
    assert all(l.get("attempts", 0) == 0 for l in errors)
    assert router.metric("kinfer_router_requests_total", backend="", code="400") >= 2


def test_shared_prefixes_go_to_the_replica_that_caches_them(pair, router):
    system = "You are a storyteller. " * 40  # about 300 tokens shared
    before = [s.metric("kinfer:prefix_cache_hits_total") or 0 for s in pair]
    served_before = [router.metric("kinfer_router_requests_total", backend=f"127.0.0.1:{s.port}",
                                   code="200") or 0 for s in pair]
    client = router.client()
    for i in range(6):
        client.chat.completions.create(
            model="stories", max_tokens=2, temperature=0,
            messages=[{"role": "system", "content": system},
                      {"role": "user", "content": f"Question number {i}?"}])
    hits = [(s.metric("kinfer:prefix_cache_hits_total") or 0) - b for s, b in zip(pair, before)]
    served = [(router.metric("kinfer_router_requests_total", backend=f"127.0.0.1:{s.port}",
                             code="200") or 0) - b for s, b in zip(pair, served_before)]
    # All six went to one replica, and five of them found the prefix in its cache.
    assert sorted(served) == [0, 6], served
    assert max(hits) >= 5 * 288, hits
    lines = [l for l in router.access_log() if l.get("path") == "/v1/chat/completions"
             and l.get("prefix_blocks", 0) >= 18]
    assert sum(1 for l in lines[-6:] if l["prefix_matched"] >= 18) >= 5


def test_client_disconnect_frees_the_replica(pair, router):
    s = socket.create_connection(("127.0.0.1", router.port))
    body = json.dumps({"prompt": "Once", "max_tokens": 2000, "stream": True, "ignore_eos": True})
    s.sendall((f"POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               f"Content-Length: {len(body)}\r\n\r\n{body}").encode())
    # The head and the first event may come in separate reads (they do under ASan).
    got = b""
    s.settimeout(30)
    while b"data: " not in got:
        chunk = s.recv(65536)
        assert chunk, got
        got += chunk
    assert wait_for(lambda: sum(p.metric("kinfer:num_requests_running") or 0 for p in pair) == 1)
    s.close()
    assert wait_for(lambda: sum(p.metric("kinfer:num_requests_running") or 0 for p in pair) == 0,
                    timeout=5)


def test_metrics_name_the_router_and_its_replicas(pair, router):
    m = router.metrics()
    names = {k.split("{")[0] for k in m}
    for n in ["kinfer_router_requests_total", "kinfer_router_pick_seconds_bucket",
              "kinfer_router_added_latency_seconds_bucket", "kinfer_router_backend_inflight",
              "kinfer_router_backend_healthy", "kinfer_router_backend_metrics_age_seconds",
              "kinfer_router_prefix_match_ratio_bucket", "kinfer_router_prefix_index_blocks",
              "kinfer_router_inflight", "kinfer_router_held"]:
        assert n in names, n
    for p in pair:
        assert m[f'kinfer_router_backend_healthy{{backend="127.0.0.1:{p.port}"}}'] == 1
        assert 0 <= m[f'kinfer_router_backend_metrics_age_seconds{{backend="127.0.0.1:{p.port}"}}'] < 1


def _load(url, n, stream=False, results=None, max_tokens=24):
    """n requests, four at a time; returns (status, error) per request."""
    results = results if results is not None else []
    lock = threading.Lock()
    idx = iter(range(n))

    def worker():
        client = openai.OpenAI(base_url=url + "/v1", api_key="x", max_retries=0, timeout=60)
        while True:
            with lock:
                i = next(idx, None)
            if i is None:
                return
            try:
                if stream:
                    finish = None
                    for chunk in client.completions.create(model="stories", prompt=f"Story {i}:",
                                                           max_tokens=max_tokens, stream=True,
                                                           extra_body={"ignore_eos": True}):
                        finish = chunk.choices[0].finish_reason or finish
                    results.append(("ok", finish))
                else:
                    client.completions.create(model="stories", prompt=f"Story {i}:",
                                              max_tokens=max_tokens, extra_body={"ignore_eos": True})
                    results.append(("ok", None))
            except Exception as e:  # noqa: BLE001 - every failure is counted
                results.append(("error", repr(e)))

    threads = [threading.Thread(target=worker) for _ in range(4)]
    for t in threads:
        t.start()
    return threads, results


def test_sigkill_of_a_replica_loses_no_request_that_had_not_started(tmp_path):
    a, b = replica(), replica()
    r = Router([a.url, b.url], "--model", str(STORIES))
    try:
        threads, results = _load(r.url, 40, max_tokens=400)
        # Kill it while it is generating: those requests (not streamed) must be retried.
        assert wait_for(lambda: (a.metric("kinfer:num_requests_running") or 0) >= 1, timeout=60)
        killed_at = time.monotonic()
        a.proc.send_signal(signal.SIGKILL)
        # Ejected (not routable) within a second.
        assert wait_for(lambda: r.metric("kinfer_router_backend_healthy",
                                         backend=f"127.0.0.1:{a.port}") == 0, timeout=1.0)
        ejected_after = time.monotonic() - killed_at
        for t in threads:
            t.join(120)
        errors = [e for s, e in results if s != "ok"]
        assert errors == [], errors
        assert len(results) == 40
        assert ejected_after < 1.0
        assert (r.metric("kinfer_router_retries_total") or 0) >= 1
    finally:
        r.stop()
        b.stop()


def test_sigkill_mid_stream_ends_the_stream_with_an_error_event():
    a = replica()
    r = Router([a.url], "--model", str(STORIES), "--hold-timeout", "0")
    try:
        client = r.client()
        stream = client.completions.create(model="stories", prompt="Once", max_tokens=2000,
                                           stream=True, extra_body={"ignore_eos": True})
        got = 0
        with pytest.raises(openai.APIError) as e:
            for _ in stream:
                got += 1
                if got == 5:
                    a.proc.send_signal(signal.SIGKILL)
        assert "replica failed while streaming" in str(e.value)
    finally:
        r.stop()


def test_sigterm_of_a_replica_fails_nothing():
    a, b = replica(), replica()
    r = Router([a.url, b.url], "--model", str(STORIES))
    try:
        threads, results = _load(r.url, 60, stream=True, max_tokens=48)
        assert wait_for(lambda: len(results) >= 6, timeout=60)
        a.proc.send_signal(signal.SIGTERM)  # drains: unready, finishes its streams, exits 0
        for t in threads:
            t.join(120)
        assert a.proc.wait(60) == 0
        errors = [e for s, e in results if s != "ok"]
        assert errors == [], errors
        assert all(finish == "length" for s, finish in results), results  # every stream whole
    finally:
        r.stop()
        b.stop()


def test_api_keys_and_rate_limits_at_the_router(pair):
    r = Router([p.url for p in pair], "--api-key", "sk-team-alpha-0001", "--api-key",
               "sk-team-beta-00002", "--rate-limit-rpm", "3")
    try:
        with pytest.raises(openai.AuthenticationError):
            r.client("sk-wrong-key-000").completions.create(model="stories", prompt="x", max_tokens=1)
        no_key = requests.post(r.url + "/v1/completions", json={"prompt": "x"})
        assert no_key.status_code == 401
        alpha = r.client("sk-team-alpha-0001")
        for _ in range(3):
            alpha.completions.create(model="stories", prompt="x", max_tokens=1)
        limited = requests.post(r.url + "/v1/completions", json={"prompt": "x", "max_tokens": 1},
                                headers={"Authorization": "Bearer sk-team-alpha-0001"})
        assert limited.status_code == 429
        assert limited.json()["error"]["type"] == "rate_limit_error"
        assert 1 <= int(limited.headers["Retry-After"]) <= 20
        assert limited.headers["x-ratelimit-remaining-requests"] == "0"
        # Another key has its own allowance.
        r.client("sk-team-beta-00002").completions.create(model="stories", prompt="x", max_tokens=1)
        # Keys never reach the log; their hash prefix does.
        log = r.output()
        assert "sk-team-alpha" not in log and "sk-team-beta" not in log
        assert any(l.get("key") for l in r.access_log())
        # Health and readiness need no key; metrics do not either unless --protect-metrics.
        assert requests.get(r.url + "/ready").status_code == 200
        assert requests.get(r.url + "/metrics").status_code == 200
    finally:
        assert r.stop() == 0


def test_requests_are_held_until_a_replica_is_ready():
    # The replica is still loading its model (its /ready says 503) when the request comes.
    s = Server(STORIES, "--kv-cache-memory", "16MiB", wait_ready=False,
               env={"KINFER_TEST_LOAD_DELAY_MS": "3000"})
    r = Router([s.url], "--model", str(STORIES), "--hold-timeout", "30", wait_routable=False)
    try:
        assert requests.get(r.url + "/ready").status_code == 200  # ready to hold
        result = {}

        def call():
            result["r"] = requests.post(r.url + "/v1/completions",
                                        json={"prompt": "Once", "max_tokens": 4}, timeout=60)

        t = threading.Thread(target=call)
        t.start()
        assert wait_for(lambda: r.metric("kinfer_router_held") == 1, timeout=10)
        t.join(60)
        assert result["r"].status_code == 200, result["r"].text
        assert r.metric("kinfer_router_held") == 0
        held = [l for l in r.access_log() if l.get("path") == "/v1/completions"]
        assert held and held[-1]["latency_ms"] > 500  # it waited for the load
    finally:
        r.stop()
        s.stop()


def test_hold_timeout_and_no_replica_give_503_with_retry_after():
    port = free_port()
    r = Router([f"http://127.0.0.1:{port}"], "--hold-timeout", "0.5", wait_routable=False)
    try:
        t0 = time.monotonic()
        resp = requests.post(r.url + "/v1/completions", json={"prompt": "x"})
        assert resp.status_code == 503
        assert resp.headers["Retry-After"]
        assert 0.4 < time.monotonic() - t0 < 5
        assert resp.json()["error"]["code"] == "no_replica"
    finally:
        r.stop()


def sse_lines(resp):
    """The raw lines of a streamed response, as they come."""
    return [line.decode() for line in resp.iter_lines()]


def test_held_streams_get_heartbeats_then_an_error_event():
    port = free_port()  # nothing listens there: no replica ever becomes ready
    r = Router([f"http://127.0.0.1:{port}"], "--hold-timeout", "1.5", "--hold-heartbeat", "0.3",
               wait_routable=False)
    try:
        t0 = time.monotonic()
        resp = requests.post(r.url + "/v1/chat/completions", stream=True, timeout=20,
                             json={"model": "stories", "messages": [{"role": "user", "content": "hi"}],
                                   "stream": True})
        # The head comes with the first heartbeat, long before the hold timeout.
        assert resp.status_code == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        assert time.monotonic() - t0 < 1.4
        lines = sse_lines(resp)
        assert 1.4 < time.monotonic() - t0 < 10
        comments = [l for l in lines if l.startswith(":")]
        assert len(comments) >= 2 and all(c == ": waiting for a replica" for c in comments)
        data = [l for l in lines if l.startswith("data: ")]
        assert data[-1] == "data: [DONE]"
        err = json.loads(data[-2][6:])["error"]
        assert err["code"] == "no_replica" and "no replica became ready" in err["message"]

        # The official client skips the comments and raises the error event.
        with pytest.raises(openai.APIError, match="no replica became ready"):
            for _ in r.client().chat.completions.create(
                    model="stories", messages=[{"role": "user", "content": "hi"}], stream=True):
                pass

        # Anthropic's shapes under /v1/messages: the event, and the plain answer when not streamed.
        resp = requests.post(r.url + "/v1/messages", stream=True, timeout=20,
                             headers={"x-api-key": "unused"},
                             json={"model": "stories", "max_tokens": 4, "stream": True,
                                   "messages": [{"role": "user", "content": "hi"}]})
        assert resp.status_code == 200
        lines = sse_lines(resp)
        assert "event: error" in lines, lines
        body = json.loads(lines[lines.index("event: error") + 1][6:])
        assert body["type"] == "error" and body["error"]["type"] == "overloaded_error"
        resp = requests.post(r.url + "/v1/messages", timeout=20,
                             json={"model": "stories", "max_tokens": 4,
                                   "messages": [{"role": "user", "content": "hi"}]})
        assert resp.status_code == 503 and resp.headers["Retry-After"]
        body = resp.json()
        assert body["type"] == "error" and body["error"]["type"] == "overloaded_error"
        assert body["request_id"] == resp.headers["X-Request-Id"]
        # Not streamed, elsewhere: the OpenAI 503 as before.
        resp = requests.post(r.url + "/v1/completions", json={"prompt": "x"}, timeout=20)
        assert resp.status_code == 503 and resp.json()["error"]["code"] == "no_replica"
    finally:
        assert r.stop() == 0


def test_a_held_stream_goes_on_with_the_replicas_answer_after_heartbeats():
    s = Server(STORIES, "--served-model-name", "stories", "--kv-cache-memory", "16MiB",
               wait_ready=False, env={"KINFER_TEST_LOAD_DELAY_MS": "2500"})
    r = Router([s.url], "--hold-timeout", "60", "--hold-heartbeat", "0.2", wait_routable=False)
    try:
        resp = requests.post(r.url + "/v1/completions", stream=True, timeout=60,
                             json={"model": "stories", "prompt": "Once upon a time",
                                   "max_tokens": 8, "temperature": 0, "stream": True})
        assert resp.status_code == 200
        lines = sse_lines(resp)
        assert ": waiting for a replica" in lines
        data = [l[6:] for l in lines if l.startswith("data: ")]
        assert data[-1] == "[DONE]"
        text = "".join(json.loads(d)["choices"][0]["text"] for d in data[:-1]
                       if json.loads(d)["choices"])
        # The same text as the replica gives directly.
        direct = requests.post(s.url + "/v1/completions", timeout=60,
                               json={"model": "stories", "prompt": "Once upon a time",
                                     "max_tokens": 8, "temperature": 0}).json()
        assert text == direct["choices"][0]["text"] and text
    finally:
        r.stop()
        s.stop()
