"""/v1/completions through the official openai client against a real kinfer serve."""
import json

import openai
import pytest
import requests

# Greedy continuation of "Once upon a time" by stories260K, as llama2.c's run.c prints it
# (../shared/models/stories260K/expected.json).
STORY = ", there was a little girl named Lily. She loved to play outside in the park."


def test_greedy_completion_matches_reference_story(client):
    r = client.completions.create(model="stories", prompt="Once upon a time", max_tokens=20,
                                  temperature=0)
    assert r.object == "text_completion"
    assert r.model == "stories"
    assert r.choices[0].text.startswith(STORY[:40])
    assert r.choices[0].finish_reason == "length"
    assert r.usage.prompt_tokens == 5  # BOS + 4 pieces, as run.c encodes it
    assert r.usage.completion_tokens == 20
    assert r.usage.total_tokens == 25
    assert r.id.startswith("cmpl-")


def test_second_served_name_and_unknown_model(client):
    r = client.completions.create(model="tiny", prompt="Lily", max_tokens=2)
    assert r.model == "tiny"
    with pytest.raises(openai.NotFoundError) as e:
        client.completions.create(model="gpt-4", prompt="hi", max_tokens=2)
    assert e.value.body["code"] == "model_not_found"
    assert e.value.body["param"] == "model"


def test_streaming_concatenates_to_the_non_streamed_text(client):
    full = client.completions.create(model="stories", prompt="Lily was", max_tokens=30,
                                     temperature=0).choices[0].text
    chunks = list(client.completions.create(model="stories", prompt="Lily was", max_tokens=30,
                                            temperature=0, stream=True,
                                            stream_options={"include_usage": True}))
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == full
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert len(finals) == 1 and finals[0].choices[0].finish_reason == "length"
    usage = [c for c in chunks if c.usage]
    assert len(usage) == 1 and not usage[0].choices
    assert usage[0].usage.completion_tokens == 30


def test_stream_ends_with_done(stories):
    r = requests.post(stories.url + "/v1/completions", stream=True, timeout=30,
                      json={"prompt": "Lily", "max_tokens": 4, "stream": True})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    events = [l for l in r.iter_lines(decode_unicode=True) if l]
    assert events[-1] == "data: [DONE]"
    for e in events[:-1]:
        json.loads(e.removeprefix("data: "))


def test_n_2_and_seeds(client):
    a = client.completions.create(model="stories", prompt="The cat", max_tokens=24, n=2,
                                  temperature=1.0, seed=42)
    b = client.completions.create(model="stories", prompt="The cat", max_tokens=24, n=2,
                                  temperature=1.0, seed=42)
    c = client.completions.create(model="stories", prompt="The cat", max_tokens=24, n=2,
                                  temperature=1.0, seed=43)
    assert [x.index for x in a.choices] == [0, 1]
    assert [x.text for x in a.choices] == [x.text for x in b.choices]
    assert [x.text for x in a.choices] != [x.text for x in c.choices]
    assert a.choices[0].text != a.choices[1].text  # two independent samples
    assert a.usage.completion_tokens == 48


def test_stop_strings(client):
    full = client.completions.create(model="stories", prompt="Once upon a time", max_tokens=40,
                                     temperature=0).choices[0].text
    stop = "little girl"
    r = client.completions.create(model="stories", prompt="Once upon a time", max_tokens=40,
                                  temperature=0, stop=[stop, "never-appears"])
    assert r.choices[0].text == full[:full.index(stop)]
    assert r.choices[0].finish_reason == "stop"
    assert r.choices[0].model_extra["stop_reason"] == stop
    r = client.completions.create(model="stories", prompt="Once upon a time", max_tokens=40,
                                  temperature=0, stop=stop,
                                  extra_body={"include_stop_str_in_output": True})
    assert r.choices[0].text == full[:full.index(stop) + len(stop)]


def test_logprobs_and_echo(client, stories):
    r = client.completions.create(model="stories", prompt="Once upon a time", max_tokens=5,
                                  temperature=0, logprobs=3)
    lp = r.choices[0].logprobs
    assert len(lp.tokens) == 5 and len(lp.token_logprobs) == 5 and len(lp.top_logprobs) == 5
    for chosen, top, value in zip(lp.tokens, lp.top_logprobs, lp.token_logprobs):
        assert len(top) == 3
        assert value <= 0
        # Greedy: the chosen token is the most likely one.
        assert max(top.values()) == pytest.approx(value, abs=1e-5)
        assert top.get(chosen) == pytest.approx(value, abs=1e-5)
    assert "".join(lp.tokens) == r.choices[0].text
    e = client.completions.create(model="stories", prompt="Once upon a time", max_tokens=3,
                                  temperature=0, echo=True, logprobs=1)
    assert e.choices[0].text.startswith("Once upon a time")
    elp = e.choices[0].logprobs
    assert elp.token_logprobs[0] is None  # the first prompt token has no logprob
    assert len(elp.tokens) == 5 + 3
    assert all(v is not None for v in elp.token_logprobs[1:])


def test_prompt_as_token_ids_and_as_a_list(client, stories):
    ids = requests.post(stories.url + "/tokenize", json={"prompt": "Lily was"}).json()["tokens"]
    assert ids == [1, 317, 286]
    a = client.completions.create(model="stories", prompt=ids, max_tokens=6, temperature=0)
    b = client.completions.create(model="stories", prompt="Lily was", max_tokens=6, temperature=0)
    assert a.choices[0].text == b.choices[0].text
    r = client.completions.create(model="stories", prompt=["Lily was", "The cat"], max_tokens=4,
                                  temperature=0, n=2)
    assert [c.index for c in r.choices] == [0, 1, 2, 3]
    assert r.choices[0].text == r.choices[1].text == b.choices[0].text[: len(r.choices[0].text)]
    cat = requests.post(stories.url + "/tokenize", json={"prompt": "The cat"}).json()["count"]
    assert r.usage.prompt_tokens == 3 + cat


def test_vllm_sampling_extras(client):
    # top_k=1 is greedy whatever the temperature.
    greedy = client.completions.create(model="stories", prompt="Lily", max_tokens=12,
                                       temperature=0).choices[0].text
    topk = client.completions.create(model="stories", prompt="Lily", max_tokens=12,
                                     temperature=1.5, extra_body={"top_k": 1}).choices[0].text
    assert topk == greedy
    # ignore_eos + min_tokens: exactly max_tokens tokens.
    r = client.completions.create(model="stories", prompt="Lily", max_tokens=50,
                                  extra_body={"ignore_eos": True, "min_tokens": 50, "min_p": 0.1,
                                              "repetition_penalty": 1.2, "priority": -1})
    assert r.usage.completion_tokens == 50
    # logit_bias forces a token.
    r = client.completions.create(model="stories", prompt="Lily", max_tokens=3,
                                  logit_bias={"403": 100})
    assert r.choices[0].text.count("Once") == 3


def test_cached_tokens_reported_for_a_repeated_prefix(client):
    prompt = "Once upon a time, there was a little girl named Lily. " * 4
    client.completions.create(model="stories", prompt=prompt, max_tokens=1)
    r = client.completions.create(model="stories", prompt=prompt, max_tokens=1)
    assert r.usage.prompt_tokens_details.cached_tokens >= 32
    assert r.usage.prompt_tokens_details.cached_tokens < r.usage.prompt_tokens
    # cache_salt isolates.
    r = client.completions.create(model="stories", prompt=prompt, max_tokens=1,
                                  extra_body={"cache_salt": "tenant-b"})
    assert r.usage.prompt_tokens_details.cached_tokens == 0


def test_tokenize_detokenize_version_models(stories):
    t = requests.post(stories.url + "/tokenize",
                      json={"prompt": "Once upon a time", "return_token_strs": True}).json()
    assert t["tokens"] == [1, 403, 407, 261, 378]
    assert t["count"] == 5 and t["max_model_len"] > 0
    assert t["token_strs"][0] == "<s>"
    d = requests.post(stories.url + "/detokenize", json={"tokens": t["tokens"][1:]}).json()
    assert d["prompt"] == "Once upon a time"
    assert requests.get(stories.url + "/version").json()["version"]
    models = requests.get(stories.url + "/v1/models").json()
    assert [m["id"] for m in models["data"]] == ["stories", "tiny"]
    assert models["data"][0]["max_model_len"] == t["max_model_len"]


def test_request_id_is_honored_or_generated(stories):
    r = requests.post(stories.url + "/v1/completions", headers={"X-Request-Id": "abc-123"},
                      json={"prompt": "Lily", "max_tokens": 1})
    assert r.headers["x-request-id"] == "abc-123"
    assert r.json()["id"] == "cmpl-abc-123"
    r = requests.post(stories.url + "/v1/completions", json={"prompt": "Lily", "max_tokens": 1})
    assert len(r.headers["x-request-id"]) == 32
