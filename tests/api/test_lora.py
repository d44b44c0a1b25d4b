"""Multi-LoRA serving through the official openai client against a real kinfer serve.

stories260K (GGUF) with PEFT adapters made by peft (tests/fixtures/lora, from
tests/reference/make_lora_fixtures.py): the request's `model` picks the adapter, and the greedy
text of each adapter equals PEFT's greedy tokens, also when the base and several adapters run
in the same steps; /v1/models lists adapters with their parent; vLLM's runtime
/v1/load_lora_adapter and /v1/unload_lora_adapter; kinfer:lora_requests_info.
"""
import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import openai
import pytest
import requests

from conftest import STORIES, Server

LORA = Path(__file__).resolve().parents[1] / "fixtures" / "lora"
REF = json.loads((LORA / "reference.json").read_text())["stories"]
OTHER_BASE_ADAPTER = LORA / "adapter_a"  # made for the tiny llama fixture, not stories260K


@pytest.fixture(scope="module")
def lora_server():
    s = Server(STORIES, "--served-model-name", "stories", "--kv-cache-memory", "64MiB",
               "--lora-modules", f"sql={LORA / 'stories_a'}", f"chat={LORA / 'stories_b'}",
               json.dumps({"name": "sql-gguf", "path": str(LORA / "stories_a.f32.gguf")}),
               "--max-loras", "2", "--allow-runtime-lora-updating", "--metrics-vllm-names")
    yield s
    assert s.stop() == 0, s.output()


@pytest.fixture(scope="module")
def lora_client(lora_server):
    return openai.OpenAI(base_url=lora_server.url + "/v1", api_key="unused", max_retries=0)


def expected_text(server, key):
    ids = REF["greedy"]["base"] if key == "base" else REF["adapters"][key]["greedy"]

    def text(tokens):
        r = requests.post(server.url + "/detokenize", json={"tokens": tokens}, timeout=10)
        r.raise_for_status()
        return r.json()["prompt"]
    # The continuation's text as it follows the prompt (a leading space is kept there).
    prompt = text(REF["prompt"])
    full = text(REF["prompt"] + ids)
    assert full.startswith(prompt)
    return full[len(prompt):]


def greedy(client, model):
    r = client.completions.create(model=model, prompt=REF["prompt"], max_tokens=REF["steps"],
                                  temperature=0, extra_body={"ignore_eos": True})
    assert r.model == model
    assert r.usage.completion_tokens == REF["steps"]
    return r.choices[0].text


def test_model_field_picks_the_adapter_and_text_equals_peft(lora_server, lora_client):
    want = {m: expected_text(lora_server, k) for m, k in
            [("stories", "base"), ("sql", "stories_a"), ("chat", "stories_b"),
             ("sql-gguf", "stories_a")]}
    assert len(set(want.values())) == 3  # the adapters change the output
    for model, text in want.items():
        assert greedy(lora_client, model) == text, model
    # All at once: the base and three adapters (two of them the same weights) share steps,
    # with --max-loras 2 holding the third adapter back until a slot frees.
    order = ["sql", "stories", "chat", "sql-gguf", "chat", "sql", "stories", "sql-gguf"]
    with ThreadPoolExecutor(len(order)) as pool:
        got = list(pool.map(lambda m: greedy(lora_client, m), order))
    assert got == [want[m] for m in order]


def test_models_lists_adapters_with_their_parent(lora_client):
    models = {m.id: m for m in lora_client.models.list().data}
    assert set(models) == {"stories", "sql", "chat", "sql-gguf"}
    for name in ("sql", "chat", "sql-gguf"):
        assert models[name].parent == "stories"
    assert models["sql"].root == str(LORA / "stories_a")
    assert models["sql-gguf"].root == str(LORA / "stories_a.f32.gguf")
    assert models["stories"].model_extra.get("parent") is None


def test_unknown_adapter_is_model_not_found(lora_client):
    with pytest.raises(openai.NotFoundError) as e:
        lora_client.completions.create(model="nope", prompt="Hi", max_tokens=2)
    assert e.value.body["code"] == "model_not_found"


def test_load_and_unload_at_run_time_with_vllm_bodies(lora_server, lora_client):
    url = lora_server.url
    r = requests.post(url + "/v1/load_lora_adapter",
                      json={"lora_name": "late", "lora_path": str(LORA / "stories_b")}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.text == "Success: LoRA adapter 'late' added successfully."
    assert "late" in {m.id for m in lora_client.models.list().data}
    assert greedy(lora_client, "late") == expected_text(lora_server, "stories_b")

    again = requests.post(url + "/v1/load_lora_adapter",
                          json={"lora_name": "late", "lora_path": str(LORA / "stories_a")},
                          timeout=30)
    assert again.status_code == 400
    assert "has already been loaded" in again.json()["error"]["message"]
    # load_inplace replaces the weights under the same name.
    inplace = requests.post(url + "/v1/load_lora_adapter",
                            json={"lora_name": "late", "lora_path": str(LORA / "stories_a"),
                                  "load_inplace": True}, timeout=30)
    assert inplace.status_code == 200, inplace.text
    assert greedy(lora_client, "late") == expected_text(lora_server, "stories_a")

    r = requests.post(url + "/v1/unload_lora_adapter", json={"lora_name": "late"}, timeout=10)
    assert r.status_code == 200
    assert r.text == "Success: LoRA adapter 'late' removed successfully."
    gone = requests.post(url + "/v1/unload_lora_adapter", json={"lora_name": "late"}, timeout=10)
    assert gone.status_code == 404
    assert gone.json()["error"]["message"] == "The lora adapter 'late' cannot be found."
    with pytest.raises(openai.NotFoundError):
        lora_client.completions.create(model="late", prompt="Hi", max_tokens=2)


@pytest.mark.parametrize("body,needle", [
    ({"lora_name": "x"}, "Both 'lora_name' and 'lora_path' must be provided."),
    ({"lora_name": "x", "lora_path": str(OTHER_BASE_ADAPTER)}, "made for another base model"),
    ({"lora_name": "x", "lora_path": "/nonexistent"}, "no such file"),
    ({"lora_name": "stories", "lora_path": str(LORA / "stories_a")}, "base model's name"),
])
def test_bad_load_requests_are_400_with_the_reason(lora_server, body, needle):
    r = requests.post(lora_server.url + "/v1/load_lora_adapter", json=body, timeout=30)
    assert r.status_code == 400, r.text
    assert needle in r.json()["error"]["message"]


def test_lora_requests_info_metric(lora_server):
    text = requests.get(lora_server.url + "/metrics", timeout=10).text
    lines = [l for l in text.splitlines() if l.startswith("kinfer:lora_requests_info{")]
    assert len(lines) == 1, text
    assert 'max_lora="2"' in lines[0]
    assert 'running_lora_adapters=""' in lines[0] and 'waiting_lora_adapters=""' in lines[0]
    assert float(lines[0].rpartition(" ")[2]) > 1.7e9  # a Unix time, as vLLM sets it
    assert any(l.startswith("vllm:lora_requests_info{") for l in text.splitlines())


def test_runtime_updating_is_off_without_the_flag_and_bad_modules_fail_startup():
    s = Server(STORIES, "--kv-cache-memory", "16MiB", "--lora-modules",
               f"sql={LORA / 'stories_a'}")
    try:
        r = requests.post(s.url + "/v1/load_lora_adapter",
                          json={"lora_name": "x", "lora_path": str(LORA / "stories_b")}, timeout=10)
        assert r.status_code == 404
        assert "--allow-runtime-lora-updating" in r.json()["error"]["message"]
    finally:
        assert s.stop() == 0
    bad = Server(STORIES, "--kv-cache-memory", "16MiB", "--lora-modules",
                 f"sql={OTHER_BASE_ADAPTER}", wait_ready=False)
    assert bad.proc.wait(60) == 1
    assert "--lora-modules sql" in bad.output() and "another base model" in bad.output()
