"""/v1/embeddings with the official openai client against sentence-transformers' vectors
(tests/fixtures/embeddings, made by tests/reference/make_embedding_fixtures.py), and
GET /v1/models/{id}."""
import base64
import concurrent.futures
import json
from pathlib import Path

import numpy as np
import openai
import pytest
import requests

from conftest import REPO, Server

EMBED = REPO / "tests" / "fixtures" / "embeddings"


def reference(name):
    d = EMBED / name
    ref = json.loads((d / "reference.json").read_text())
    hidden = ref["hidden_size"]

    def load(key, files=ref["files"]):
        return np.fromfile(d / files[key], dtype="<f4").reshape(len(ref["texts"]), hidden
                                                                  if "dims" not in key else -1)

    ref["load"] = load
    return ref


@pytest.fixture(scope="module")
def qwen3():
    """The Qwen3-Embedding layout (last token, normalized, matryoshka), f32 KV cache so the
    vectors match sentence-transformers to float rounding."""
    s = Server(EMBED / "qwen3-embed", "--served-model-name", "org/qwen3-embed",
               "--kv-cache-dtype", "f32", "--kv-cache-memory", "16MiB",
               "--max-num-batched-tokens", "64")
    yield s
    assert s.stop() == 0, s.output()


@pytest.fixture(scope="module")
def llama_mean():
    s = Server(EMBED / "llama-mean", "--served-model-name", "llama-mean", "--kv-cache-dtype",
               "f32", "--kv-cache-memory", "16MiB")
    yield s
    assert s.stop() == 0, s.output()


def embed_client(server):
    return openai.OpenAI(base_url=server.url + "/v1", api_key="unused", max_retries=0)


def vectors(resp):
    return np.array([d.embedding for d in sorted(resp.data, key=lambda d: d.index)],
                    dtype=np.float32)


def test_matches_sentence_transformers_in_one_batch(qwen3):
    ref = reference("qwen3-embed")
    want = ref["load"]("embeddings")
    # The client asks for base64 by default and decodes it with numpy.
    r = embed_client(qwen3).embeddings.create(model="org/qwen3-embed", input=ref["texts"])
    got = vectors(r)
    assert got.shape == want.shape
    assert np.max(np.abs(got - want)) < 2e-5, np.max(np.abs(got - want))
    assert r.usage.prompt_tokens == sum(len(t) for t in ref["token_ids"])
    assert r.usage.total_tokens == r.usage.prompt_tokens
    assert r.model == "org/qwen3-embed"
    assert np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-5)


def test_float_format_and_token_id_inputs(qwen3):
    ref = reference("qwen3-embed")
    want = ref["load"]("embeddings")
    body = requests.post(qwen3.url + "/v1/embeddings",
                         json={"input": ref["token_ids"][:3], "encoding_format": "float"}).json()
    assert body["object"] == "list"
    assert [d["index"] for d in body["data"]] == [0, 1, 2]
    assert all(d["object"] == "embedding" for d in body["data"])
    got = np.array([d["embedding"] for d in body["data"]], dtype=np.float32)
    assert np.max(np.abs(got - want[:3])) < 2e-5
    one = requests.post(qwen3.url + "/v1/embeddings",
                        json={"input": ref["token_ids"][1], "encoding_format": "base64"}).json()
    v = np.frombuffer(base64.b64decode(one["data"][0]["embedding"]), dtype="<f4")
    assert np.max(np.abs(v - want[1])) < 2e-5


@pytest.mark.parametrize("dims", [8, 16])
def test_dimensions_truncate_then_normalize(qwen3, dims):
    ref = reference("qwen3-embed")
    want = np.fromfile(EMBED / "qwen3-embed" / ref["dimensions"][str(dims)], dtype="<f4")
    want = want.reshape(len(ref["texts"]), dims)
    r = embed_client(qwen3).embeddings.create(model="org/qwen3-embed", input=ref["texts"],
                                              dimensions=dims, encoding_format="float")
    got = vectors(r)
    assert got.shape == (len(ref["texts"]), dims)
    assert np.max(np.abs(got - want)) < 5e-5


def test_concurrent_requests_batch_without_changing_vectors(qwen3):
    """Sixteen requests at once share engine steps; each still gets its own input's vector."""
    ref = reference("qwen3-embed")
    want = ref["load"]("embeddings")
    client = embed_client(qwen3)
    before = qwen3.metric("kinfer:request_success_total") or 0
    jobs = [i % len(ref["texts"]) for i in range(16)]
    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(
            lambda i: vectors(client.embeddings.create(model="org/qwen3-embed",
                                                       input=ref["texts"][i]))[0], jobs))
    for i, got in zip(jobs, results):
        assert np.max(np.abs(got - want[i])) < 2e-5
    assert qwen3.metric("kinfer:request_success_total") - before == 16


def test_mean_pooling_without_normalize(llama_mean):
    ref = reference("llama-mean")
    want = ref["load"]("embeddings")  # sentence-transformers: Transformer + mean Pooling only
    r = embed_client(llama_mean).embeddings.create(model="llama-mean", input=ref["texts"],
                                                   encoding_format="float")
    got = vectors(r)
    assert np.max(np.abs(got - want)) < 2e-5
    assert not np.allclose(np.linalg.norm(got, axis=1), 1, atol=1e-3)
    # vLLM's per-request `normalize`.
    body = requests.post(llama_mean.url + "/v1/embeddings",
                         json={"input": ref["texts"][0], "normalize": True}).json()
    v = np.array(body["data"][0]["embedding"], dtype=np.float32)
    assert np.allclose(v, want[0] / np.linalg.norm(want[0]), atol=2e-5)


def test_pooler_config_flag_overrides_the_models_pooling():
    ref = reference("qwen3-embed")
    mean = ref["load"]("pooled_mean")
    s = Server(EMBED / "qwen3-embed", "--kv-cache-dtype", "f32", "--kv-cache-memory", "16MiB",
               "--pooler-config", '{"pooling_type": "MEAN", "normalize": false}')
    try:
        r = embed_client(s).embeddings.create(model=str(EMBED / "qwen3-embed"),
                                              input=ref["texts"], encoding_format="float")
        assert np.max(np.abs(vectors(r) - mean)) < 2e-5
    finally:
        assert s.stop() == 0, s.output()


def test_pooler_config_is_checked_before_loading(tmp_path):
    s = Server(EMBED / "qwen3-embed", "--pooler-config", '{"pooling_type": "MAX"}',
               wait_ready=False)
    assert s.proc.wait(30) != 0
    assert "--pooler-config" in s.output() and "MAX" in s.output()


def test_default_f16_cache_stays_close(qwen3):
    """The default KV cache (f16) rounds keys and values: vectors stay within cosine 0.9999."""
    ref = reference("qwen3-embed")
    want = ref["load"]("embeddings")
    s = Server(EMBED / "qwen3-embed", "--kv-cache-memory", "16MiB")
    try:
        got = vectors(embed_client(s).embeddings.create(model=str(EMBED / "qwen3-embed"),
                                                        input=ref["texts"]))
    finally:
        assert s.stop() == 0, s.output()
    cos = np.sum(got * want, axis=1)
    assert np.all(cos > 0.9999), cos


def test_errors_are_openai_shaped(qwen3):
    client = embed_client(qwen3)
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="org/qwen3-embed", input="x", dimensions=64)
    assert e.value.body["param"] == "dimensions"
    with pytest.raises(openai.NotFoundError):
        client.embeddings.create(model="nope", input="x")
    r = requests.post(qwen3.url + "/v1/embeddings", json={"input": "x", "suffix": "y"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "suffix"
    r = requests.post(qwen3.url + "/v1/embeddings", json={"input": "x " * 200})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"
    r = requests.post(qwen3.url + "/v1/embeddings",
                      json={"input": "x " * 200, "truncate_prompt_tokens": 16})
    assert r.status_code == 200 and r.json()["usage"]["prompt_tokens"] == 16
    # An embedding model does not generate.
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="org/qwen3-embed", prompt="hi")
    assert "embedding model" in e.value.body["message"]
    # Nor through the Responses and Anthropic Messages front doors (each in its own error shape).
    r = requests.post(qwen3.url + "/v1/responses", json={"model": "org/qwen3-embed", "input": "hi"})
    assert r.status_code == 400 and "embedding model" in r.json()["error"]["message"]
    r = requests.post(qwen3.url + "/v1/messages",
                      json={"model": "org/qwen3-embed", "max_tokens": 4,
                            "messages": [{"role": "user", "content": "hi"}]})
    assert r.status_code == 400 and r.json()["type"] == "error"
    assert "embedding model" in r.json()["error"]["message"]


def test_generative_model_refuses_embeddings_with_400(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="stories", input="Once upon a time")
    assert e.value.status_code == 400
    assert e.value.body["param"] == "model"
    assert "not an embedding model" in e.value.body["message"]
    assert e.value.body["code"] == "model_not_embedding"


def test_retrieve_model_by_id(client, stories, qwen3):
    m = client.models.retrieve("tiny")
    assert m.id == "tiny" and m.object == "model" and m.owned_by == "kinfer"
    assert requests.get(stories.url + "/v1/models/stories").json()["max_model_len"] > 0
    with pytest.raises(openai.NotFoundError) as e:
        client.models.retrieve("gpt-4")
    assert e.value.body["code"] == "model_not_found"
    # Ids with a slash, sent as they are or percent-encoded.
    assert requests.get(qwen3.url + "/v1/models/org/qwen3-embed").json()["id"] == "org/qwen3-embed"
    assert requests.get(qwen3.url + "/v1/models/org%2Fqwen3-embed").status_code == 200
    assert embed_client(qwen3).models.retrieve("org/qwen3-embed").id == "org/qwen3-embed"
    assert requests.post(stories.url + "/v1/models/stories").status_code == 405
