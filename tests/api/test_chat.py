"""/v1/chat/completions: the chat template is applied as Python jinja2 would, and responses and
stream chunks have the OpenAI shape."""
import json
from pathlib import Path

import jinja2
import openai
import pytest
import requests

from conftest import CHATML

MESSAGES = [{"role": "system", "content": "You tell tiny stories."},
            {"role": "user", "content": "Tell me about Lily."}]


def jinja_render(messages, add_generation_prompt=True, **kwargs):
    env = jinja2.Environment(trim_blocks=True, lstrip_blocks=True,
                             extensions=["jinja2.ext.loopcontrols"])
    env.filters["tojson"] = lambda v, indent=None: json.dumps(v, ensure_ascii=False, indent=indent)
    t = env.from_string(Path(CHATML).read_text())
    return t.render(messages=messages, add_generation_prompt=add_generation_prompt,
                    bos_token="<s>", eos_token="</s>", **kwargs)


def test_prompt_is_the_template_rendered_by_jinja2(stories):
    r = requests.post(stories.url + "/tokenize", json={"messages": MESSAGES})
    assert r.status_code == 200, r.text
    expected = requests.post(stories.url + "/tokenize",
                             json={"prompt": jinja_render(MESSAGES),
                                   "add_special_tokens": False}).json()["tokens"]
    assert r.json()["tokens"] == expected


def test_chat_completion_shape_and_usage(client, stories):
    r = client.chat.completions.create(model="stories", messages=MESSAGES, max_tokens=12,
                                       temperature=0)
    assert r.object == "chat.completion"
    assert r.id.startswith("chatcmpl-")
    msg = r.choices[0].message
    assert msg.role == "assistant" and isinstance(msg.content, str) and msg.content
    n_prompt = requests.post(stories.url + "/tokenize", json={"messages": MESSAGES}).json()["count"]
    assert r.usage.prompt_tokens == n_prompt
    assert r.usage.completion_tokens <= 12
    # The same prompt through /v1/completions gives the same greedy text.
    c = client.completions.create(model="stories", prompt=jinja_render(MESSAGES), max_tokens=12,
                                  temperature=0, extra_body={"add_special_tokens": False})
    assert c.choices[0].text == msg.content


def test_streaming_first_delta_carries_the_role(client):
    chunks = list(client.chat.completions.create(model="stories", messages=MESSAGES,
                                                 max_tokens=10, temperature=0, stream=True,
                                                 stream_options={"include_usage": True}))
    assert chunks[0].object == "chat.completion.chunk"
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.choices[0].delta.role is None for c in chunks[1:] if c.choices)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    full = client.chat.completions.create(model="stories", messages=MESSAGES, max_tokens=10,
                                          temperature=0).choices[0].message.content
    assert text == full
    assert chunks[-1].usage is not None and chunks[-1].choices == []
    assert sum(1 for c in chunks if c.choices and c.choices[0].finish_reason) == 1


def test_content_parts_multiple_systems_empty_content_and_tools(client, stories):
    messages = [{"role": "system", "content": "First."},
                {"role": "system", "content": [{"type": "text", "text": "Second"},
                                               {"type": "text", "text": "part."}]},
                {"role": "user", "content": ""},
                {"role": "assistant", "content": "ok"},
                {"role": "user", "content": "Go."}]
    tools = [{"type": "function", "function": {"name": "get_time", "description": "Time now",
                                                "parameters": {"type": "object", "properties": {}}}}]
    r = requests.post(stories.url + "/tokenize", json={"messages": messages, "tools": tools})
    assert r.status_code == 200, r.text
    flat = [dict(m, content="Second\npart.") if isinstance(m["content"], list) else m for m in messages]
    expected = requests.post(stories.url + "/tokenize",
                             json={"prompt": jinja_render(flat, tools=tools),
                                   "add_special_tokens": False}).json()["tokens"]
    assert r.json()["tokens"] == expected
    out = client.chat.completions.create(model="stories", messages=messages, tools=tools,
                                         max_tokens=4)
    assert out.choices[0].message.role == "assistant"


def test_logprobs_in_chat_shape(client):
    r = client.chat.completions.create(model="stories", messages=MESSAGES, max_tokens=4,
                                       temperature=0, logprobs=True, top_logprobs=2)
    content = r.choices[0].logprobs.content
    assert len(content) == r.usage.completion_tokens
    for item in content:
        assert len(item.top_logprobs) == 2
        assert item.top_logprobs[0].logprob == pytest.approx(item.logprob, abs=1e-5)
        assert bytes(item.bytes).decode("utf-8", "replace") == item.token


def test_add_generation_prompt_and_continue_final_message(stories):
    def toks(body):
        r = requests.post(stories.url + "/tokenize", json=body)
        assert r.status_code == 200, r.text
        return r.json()["tokens"]

    no_gen = toks({"messages": MESSAGES, "add_generation_prompt": False})
    expected = requests.post(stories.url + "/tokenize",
                             json={"prompt": jinja_render(MESSAGES, add_generation_prompt=False),
                                   "add_special_tokens": False}).json()["tokens"]
    assert no_gen == expected
    partial = MESSAGES + [{"role": "assistant", "content": "Once upon"}]
    cont = toks({"messages": partial, "continue_final_message": True,
                 "add_generation_prompt": False})
    text = jinja_render(partial, add_generation_prompt=False)
    text = text[: text.rindex("Once upon") + len("Once upon")]
    assert cont == requests.post(stories.url + "/tokenize",
                                 json={"prompt": text, "add_special_tokens": False}).json()["tokens"]
    r = requests.post(stories.url + "/v1/chat/completions",
                      json={"messages": partial, "continue_final_message": True,
                            "add_generation_prompt": True})
    assert r.status_code == 400 and r.json()["error"]["param"] == "continue_final_message"


def test_unsupported_roles_and_content_parts_are_400(stories):
    r = requests.post(stories.url + "/v1/chat/completions",
                      json={"messages": [{"role": "wizard", "content": "hi"}]})
    assert r.status_code == 400
    assert r.json()["error"]["param"] == "messages"
    r = requests.post(stories.url + "/v1/chat/completions",
                      json={"messages": [{"role": "user", "content": [{"type": "image_url",
                                                                         "image_url": {"url": "x"}}]}]})
    assert r.status_code == 400
    assert "image_url" in r.json()["error"]["message"]


def test_template_raise_exception_is_a_400_with_its_message():
    # Gemma 2's template rejects the system role with raise_exception.
    from conftest import SHARED, STORIES, Server
    s = Server(STORIES, "--chat-template",
               str(SHARED / "chat-templates" / "llama.cpp" / "google-gemma-2-2b-it.jinja"),
               "--kv-cache-memory", "16MiB")
    try:
        r = requests.post(s.url + "/v1/chat/completions", json={"messages": MESSAGES})
        assert r.status_code == 400
        assert "System role not supported" in r.json()["error"]["message"]
        ok = requests.post(s.url + "/v1/chat/completions",
                           json={"messages": MESSAGES[1:], "max_tokens": 2})
        assert ok.status_code == 200, ok.text
    finally:
        assert s.stop() == 0


def test_chat_on_the_default_model(default_model):
    client = openai.OpenAI(base_url=default_model.url + "/v1", api_key="x", max_retries=0)
    r = client.chat.completions.create(model="smollm2", max_tokens=8, temperature=0,
                                       messages=[{"role": "user", "content": "What is 2+2?"}])
    assert r.choices[0].message.content
    assert r.usage.prompt_tokens > 10  # the template's system prompt and turn markers
