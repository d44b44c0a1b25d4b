"""Every error status and its OpenAI shape: {"error": {"message", "type", "param", "code"}}.
Raw HTTP where the client would hide the problem (malformed JSON, 405, 413, bad UTF-8)."""
import concurrent.futures
import socket

import openai
import pytest
import requests

from conftest import STORIES, Server


def error_of(r, status):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize("field,value,param", [
    ("temperature", "hot", "temperature"),
    ("temperature", -1, "temperature"),
    ("top_p", 2, "top_p"),
    ("top_p", 0, "top_p"),
    ("n", 0, "n"),
    ("n", 1.5, "n"),
    ("max_tokens", -1, "max_tokens"),
    ("max_tokens", 10**30, "max_tokens"),
    ("max_tokens", 1e308, "max_tokens"),
    ("stop", 5, "stop"),
    ("stop", [""], "stop"),
    ("logit_bias", {"notanid": 1}, "logit_bias"),
    ("logit_bias", {"5": 1000}, "logit_bias"),
    ("logit_bias", {"999999": 1}, "logit_bias"),
    ("logprobs", 50, "logprobs"),
    ("presence_penalty", 3, "presence_penalty"),
    ("seed", "x", "seed"),
    ("stream", "yes", "stream"),
    ("top_k", -5, "top_k"),
    ("min_p", 1.5, "min_p"),
    ("stop_token_ids", [999999], "stop_token_ids"),
    ("min_tokens", 100, "min_tokens"),
    ("best_of", 3, "best_of"),
])
def test_invalid_fields_are_400_naming_the_field(stories, field, value, param):
    body = {"prompt": "Lily", "max_tokens": 4, field: value}
    e = error_of(requests.post(stories.url + "/v1/completions", json=body), 400)
    assert e["param"] == param
    assert e["type"] == "invalid_request_error"


def test_missing_prompt_and_messages(stories):
    assert error_of(requests.post(stories.url + "/v1/completions", json={}), 400)["param"] == "prompt"
    assert error_of(requests.post(stories.url + "/v1/chat/completions", json={}), 400)["param"] == "messages"
    e = error_of(requests.post(stories.url + "/v1/chat/completions", json={"messages": []}), 400)
    assert e["param"] == "messages"
    e = error_of(requests.post(stories.url + "/v1/completions", json={"prompt": [1, 99999]}), 400)
    assert e["param"] == "prompt"


def test_prompt_longer_than_the_model_is_400(stories):
    max_len = requests.get(stories.url + "/v1/models").json()["data"][0]["max_model_len"]
    e = error_of(requests.post(stories.url + "/v1/completions",
                               json={"prompt": [5] * max_len, "max_tokens": 1}), 400)
    assert e["code"] == "context_length_exceeded"
    e = error_of(requests.post(stories.url + "/v1/completions",
                               json={"prompt": [5] * 10, "max_tokens": max_len}), 400)
    assert e["code"] == "context_length_exceeded" and e["param"] == "max_tokens"


def test_client_sees_typed_errors(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="stories", prompt="x", temperature=-2)
    assert e.value.status_code == 400


def raw(stories, data, path="/v1/completions", method="POST", headers=""):
    with socket.create_connection(("127.0.0.1", stories.port), timeout=10) as s:
        head = (f"{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(data)}\r\nConnection: close\r\n{headers}\r\n").encode()
        s.sendall(head + data)
        out = b""
        while chunk := s.recv(65536):
            out += chunk
    status = int(out.split(b" ", 2)[1])
    return status, out.split(b"\r\n\r\n", 1)[1]


def test_malformed_json_invalid_utf8_and_wrong_types(stories):
    status, body = raw(stories, b'{"prompt": "Lily", "max_tokens": ')
    assert status == 400 and b"invalid_json" in body
    status, body = raw(stories, b'{"prompt": "caf\xe9 \xff\xfe", "max_tokens": 2}')
    assert status == 400 and b"UTF-8" in body
    status, body = raw(stories, b'[1, 2, 3]')
    assert status == 400
    status, body = raw(stories, b'"just a string"')
    assert status == 400
    status, body = raw(stories, b'{"prompt": "x", "max_tokens": 1}' + b" " * 10 + b"trailing")
    assert status == 400
    deep = b'{"prompt": ' + b"[" * 100000 + b"]" * 100000 + b"}"
    status, body = raw(stories, deep)
    assert status == 400


def test_404_and_405(stories):
    e = error_of(requests.get(stories.url + "/v1/nothing"), 404)
    assert e["type"] == "not_found_error"
    r = requests.get(stories.url + "/v1/completions")
    error_of(r, 405)
    assert r.headers["allow"] == "POST"
    error_of(requests.post(stories.url + "/v1/models"), 405)
    status, _ = raw(stories, b"", path="/v1/chat/completions", method="DELETE")
    assert status == 405


def test_request_body_over_the_limit_is_413():
    s = Server(STORIES, "--max-request-body-bytes", "1KiB", "--kv-cache-memory", "16MiB")
    try:
        status, body = raw(s, b'{"prompt": "' + b"a" * 4096 + b'"}')
        assert status == 413
        assert b"--max-request-body-bytes" in body
        # The server is still fine afterwards.
        assert requests.post(s.url + "/v1/completions", json={"prompt": "Lily", "max_tokens": 1}).ok
    finally:
        assert s.stop() == 0


def test_api_keys_401_and_accepted():
    s = Server(STORIES, "--api-key", "secret-key-1", "--kv-cache-memory", "16MiB",
               env={"KINFER_API_KEY": "env-key-22"})
    try:
        e = error_of(requests.post(s.url + "/v1/completions", json={"prompt": "x"}), 401)
        assert e["type"] == "authentication_error"
        e = error_of(requests.post(s.url + "/v1/completions", json={"prompt": "x"},
                                   headers={"Authorization": "Bearer wrong-key-0"}), 401)
        assert e["code"] == "invalid_api_key"
        for key in ("secret-key-1", "env-key-22"):
            c = openai.OpenAI(base_url=s.url + "/v1", api_key=key, max_retries=0)
            assert c.completions.create(model=str(STORIES), prompt="Lily", max_tokens=2).choices
        # Probes and metrics stay open for kubelet and Prometheus.
        assert requests.get(s.url + "/health").status_code == 200
        assert requests.get(s.url + "/ready").status_code == 200
        assert requests.get(s.url + "/metrics").status_code == 200
    finally:
        assert s.stop() == 0


def test_api_key_file_and_protected_metrics(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# mounted from a Secret\nfile-key-333\nfile-key-444\n")
    s = Server(STORIES, "--api-key-file", str(keys), "--protect-metrics", "--kv-cache-memory", "16MiB")
    try:
        assert requests.get(s.url + "/metrics").status_code == 401
        ok = requests.get(s.url + "/metrics", headers={"Authorization": "Bearer file-key-444"})
        assert ok.status_code == 200
        assert requests.post(s.url + "/v1/completions", json={"prompt": "x", "max_tokens": 1},
                             headers={"Authorization": "Bearer file-key-333"}).ok
    finally:
        assert s.stop() == 0


def test_queue_over_the_limit_is_429_with_retry_after():
    s = Server(STORIES, "--max-queue-len", "2", "--max-num-seqs", "1", "--kv-cache-memory", "16MiB")
    try:
        def one(_):
            return requests.post(s.url + "/v1/completions",
                                 json={"prompt": "Lily", "max_tokens": 200, "ignore_eos": True},
                                 timeout=120)
        with concurrent.futures.ThreadPoolExecutor(24) as pool:
            results = list(pool.map(one, range(24)))
        codes = [r.status_code for r in results]
        assert set(codes) <= {200, 429}
        assert codes.count(429) > 0 and codes.count(200) >= 3
        r = next(r for r in results if r.status_code == 429)
        assert r.headers["retry-after"] == "1"
        assert error_of(r, 429)["type"] == "rate_limit_error"
    finally:
        assert s.stop() == 0
