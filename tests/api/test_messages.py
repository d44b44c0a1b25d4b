"""/v1/messages (Anthropic's Messages API) with the official anthropic client: the same greedy
text and token counts as /v1/chat/completions for the same conversation, Anthropic's event
stream, stop sequences, prefill, count_tokens, x-api-key, and errors in Anthropic's shape."""
import json

import anthropic
import openai
import pytest
import requests

from conftest import CHATML, STORIES, Server

SYSTEM = "You tell tiny stories."
MESSAGES = [{"role": "user", "content": "Tell me about Lily."}]
GREEDY = {"temperature": 0}


@pytest.fixture
def claude(stories):
    return anthropic.Anthropic(base_url=stories.url, api_key="unused", max_retries=0)


def chat(stories, messages, max_tokens, **extra):
    r = requests.post(stories.url + "/v1/chat/completions",
                      json={"model": "stories", "messages": messages, "max_tokens": max_tokens,
                            "temperature": 0, **extra})
    assert r.status_code == 200, r.text
    return r.json()


def test_message_matches_chat(claude, stories):
    m = claude.messages.create(model="stories", max_tokens=12, system=SYSTEM, messages=MESSAGES,
                               extra_body=GREEDY)
    ref = chat(stories, [{"role": "system", "content": SYSTEM}] + MESSAGES, 12)
    assert m.type == "message" and m.role == "assistant" and m.id.startswith("msg_")
    assert m.model == "stories"
    assert [b.type for b in m.content] == ["text"]
    assert m.content[0].text == ref["choices"][0]["message"]["content"]
    assert m.stop_reason == ("end_turn" if ref["choices"][0]["finish_reason"] == "stop"
                             else "max_tokens")
    u = m.usage
    assert u.input_tokens + u.cache_read_input_tokens == ref["usage"]["prompt_tokens"]
    assert u.output_tokens == ref["usage"]["completion_tokens"]
    assert u.cache_creation_input_tokens == 0


def test_system_blocks_and_content_blocks(claude, stories):
    m = claude.messages.create(
        model="stories", max_tokens=10, extra_body=GREEDY,
        system=[{"type": "text", "text": SYSTEM, "cache_control": {"type": "ephemeral"}}],
        messages=[{"role": "user", "content": [{"type": "text", "text": "Tell me"},
                                               {"type": "text", "text": "about Lily."}]},
                  {"role": "assistant", "content": [
                      {"type": "thinking", "thinking": "hmm", "signature": "x"},
                      {"type": "text", "text": "Lily was happy."}]},
                  {"role": "user", "content": "And then?"}])
    ref = chat(stories, [{"role": "system", "content": SYSTEM},
                         {"role": "user", "content": "Tell me\nabout Lily."},
                         {"role": "assistant", "content": "Lily was happy."},
                         {"role": "user", "content": "And then?"}], 10)
    assert m.content[0].text == ref["choices"][0]["message"]["content"]


def test_max_tokens_and_sampling_fields(claude):
    m = claude.messages.create(model="stories", max_tokens=3, messages=MESSAGES,
                               extra_body=GREEDY)
    assert m.stop_reason == "max_tokens" and m.usage.output_tokens == 3
    kw = dict(model="stories", max_tokens=16, messages=MESSAGES)
    greedy = claude.messages.create(**kw, extra_body=GREEDY).content[0].text
    assert claude.messages.create(**kw, extra_body={"top_k": 1}).content[0].text == greedy
    assert claude.messages.create(**kw, extra_body={"top_p": 1e-6}).content[0].text == greedy


def test_stop_sequences(claude):
    kw = dict(model="stories", max_tokens=24, messages=MESSAGES, extra_body=GREEDY)
    text = claude.messages.create(**kw).content[0].text
    words = text.split()
    assert len(words) >= 3, text
    stop = " " + words[2]
    cut = claude.messages.create(stop_sequences=[stop, "zzzz"], **kw)
    assert cut.stop_reason == "stop_sequence" and cut.stop_sequence == stop
    assert cut.content[0].text == text[:text.index(stop)]


def test_prefill_continues_the_assistant_message(claude, stories):
    partial = MESSAGES + [{"role": "assistant", "content": "Lily"}]
    m = claude.messages.create(model="stories", max_tokens=8, messages=partial, extra_body=GREEDY)
    ref = chat(stories, partial, 8, continue_final_message=True, add_generation_prompt=False)
    assert m.content[0].text == ref["choices"][0]["message"]["content"]


def test_stream_events(claude):
    kw = dict(model="stories", max_tokens=12, system=SYSTEM, messages=MESSAGES, extra_body=GREEDY)
    events = list(claude.messages.create(stream=True, **kw))
    types = [e.type for e in events]
    n = types.count("content_block_delta")
    assert n >= 1
    assert types == (["message_start", "content_block_start"] + ["content_block_delta"] * n +
                     ["content_block_stop", "message_delta", "message_stop"])
    assert events[0].message.content == [] and events[0].message.stop_reason is None
    assert events[1].index == 0 and events[1].content_block.type == "text"
    text = "".join(e.delta.text for e in events if e.type == "content_block_delta")
    full = claude.messages.create(**kw)
    assert text == full.content[0].text
    assert events[-2].delta.stop_reason == full.stop_reason
    assert events[-2].usage.output_tokens == full.usage.output_tokens
    # The SDK's stream helper assembles the same message.
    with claude.messages.stream(**kw) as s:
        assert "".join(s.text_stream) == text
        final = s.get_final_message()
    assert final.content[0].text == text and final.stop_reason == full.stop_reason
    u = final.usage
    assert u.input_tokens + u.cache_read_input_tokens == \
        full.usage.input_tokens + full.usage.cache_read_input_tokens


def test_raw_stream_has_ping_and_event_names(stories):
    r = requests.post(stories.url + "/v1/messages", stream=True,
                      json={"model": "stories", "max_tokens": 3, "stream": True,
                            "messages": MESSAGES})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
    names = [line[len("event: "):] for line in r.iter_lines(decode_unicode=True)
             if line.startswith("event: ")]
    assert names[:2] == ["message_start", "ping"] and names[-1] == "message_stop"


def test_cached_tokens_are_cache_reads(claude):
    story = [{"role": "user", "content": "Lily had a red ball. " * 40}]
    claude.messages.create(model="stories", max_tokens=2, messages=story)
    m = claude.messages.create(model="stories", max_tokens=2, messages=story)
    assert m.usage.cache_read_input_tokens > 0


def test_count_tokens(claude, stories):
    n = claude.messages.count_tokens(model="stories", system=SYSTEM, messages=MESSAGES)
    ref = requests.post(stories.url + "/tokenize",
                        json={"messages": [{"role": "system", "content": SYSTEM}] + MESSAGES})
    assert n.input_tokens == ref.json()["count"]
    m = claude.messages.create(model="stories", max_tokens=1, system=SYSTEM, messages=MESSAGES)
    assert m.usage.input_tokens + m.usage.cache_read_input_tokens == n.input_tokens


def anthropic_error(r, status, type_):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == type_
    assert body["error"]["message"] and body["request_id"]
    return body["error"]["message"]


@pytest.mark.parametrize("field,value,needle", [
    ("max_tokens", 0, "max_tokens"),
    ("max_tokens", "many", "max_tokens"),
    ("temperature", "hot", "temperature"),
    ("top_k", -5, "top_k"),
    ("stop_sequences", "END", "stop_sequences"),
    ("stop_sequences", [""], "stop_sequences"),
    ("messages", [], "messages"),
    ("messages", [{"role": "system", "content": "x"}], "messages.0.role"),
    ("messages", [{"role": "user", "content": [{"type": "image", "source": {}}]}], "image"),
    ("messages", [{"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "t"}]}],
     "tool_result"),
    ("messages", [{"role": "user", "content": "q"}, {"role": "assistant", "content": [
        {"type": "tool_use", "id": "t", "name": "f", "input": "x"}]}], "tool_use"),
    ("system", 5, "system"),
    ("tools", [{"type": "web_search_20250305", "name": "web_search"}], "tools.0.type"),
    ("tools", [{"name": "f"}], "tools.0.input_schema"),
    ("tools", [{"name": "bad name!", "input_schema": {"type": "object"}}], "tools"),
    ("tools", [{"name": "f", "input_schema": {"type": "object"}, "strict": 1}], "tools.0.strict"),
    ("tool_choice", {"type": "any"}, "tool_choice"),
    ("tool_choice", {"type": "tool", "name": "nope"}, "tool_choice"),
    ("thinking", {"type": "enabled", "budget_tokens": 10}, "budget_tokens"),
    ("metadata", {"session": "x"}, "metadata.session"),
    ("frobnicate", 1, "frobnicate"),
])
def test_bad_input_is_anthropic_shaped(stories, field, value, needle):
    body = {"model": "stories", "max_tokens": 4, "messages": MESSAGES, field: value}
    msg = anthropic_error(requests.post(stories.url + "/v1/messages", json=body), 400,
                          "invalid_request_error")
    assert needle in msg


def test_missing_fields_unknown_model_method_and_json(stories):
    url = stories.url + "/v1/messages"
    assert "max_tokens" in anthropic_error(
        requests.post(url, json={"model": "stories", "messages": MESSAGES}), 400,
        "invalid_request_error")
    assert "messages" in anthropic_error(
        requests.post(url, json={"model": "stories", "max_tokens": 4}), 400,
        "invalid_request_error")
    anthropic_error(requests.post(url, json={"model": "claude-x", "max_tokens": 4,
                                             "messages": MESSAGES}), 404, "not_found_error")
    anthropic_error(requests.get(url), 405, "invalid_request_error")
    anthropic_error(requests.post(url, data="{oops", headers={"Content-Type": "application/json"}),
                    400, "invalid_request_error")
    anthropic_error(requests.post(url + "/count_tokens",
                                  json={"model": "stories", "messages": MESSAGES,
                                        "max_tokens": 4}), 400, "invalid_request_error")


def test_the_client_raises_anthropic_errors(claude):
    with pytest.raises(anthropic.BadRequestError) as e:
        claude.messages.create(model="stories", max_tokens=0, messages=MESSAGES)
    assert e.value.body["error"]["type"] == "invalid_request_error"
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.create(model="claude-x", max_tokens=4, messages=MESSAGES)


def test_x_api_key_and_bearer():
    s = Server(STORIES, "--api-key", "secret-key-1", "--kv-cache-memory", "16MiB",
               "--served-model-name", "stories", "--chat-template", str(CHATML))
    try:
        ok = anthropic.Anthropic(base_url=s.url, api_key="secret-key-1", max_retries=0)
        assert ok.messages.create(model="stories", max_tokens=2, messages=MESSAGES).content
        bearer = anthropic.Anthropic(base_url=s.url, auth_token="secret-key-1", max_retries=0)
        assert bearer.messages.count_tokens(model="stories", messages=MESSAGES).input_tokens > 0
        bad = anthropic.Anthropic(base_url=s.url, api_key="wrong-key-0", max_retries=0)
        with pytest.raises(anthropic.AuthenticationError) as e:
            bad.messages.create(model="stories", max_tokens=2, messages=MESSAGES)
        assert e.value.body["error"]["type"] == "authentication_error"
        anthropic_error(requests.post(s.url + "/v1/messages", json={}), 401,
                        "authentication_error")
    finally:
        assert s.stop() == 0


def test_metrics_and_access_log_count_messages(stories, claude):
    before = stories.metric("kinfer:request_success_total") or 0
    claude.messages.create(model="stories", max_tokens=2, messages=MESSAGES)
    list(claude.messages.create(model="stories", max_tokens=2, messages=MESSAGES, stream=True))
    assert stories.metric("kinfer:request_success_total") == before + 2
    assert '"path":"/v1/messages"' in stories.output()


def test_both_doors_on_the_default_model(default_model):
    """SmolLM2's own chat template and byte-level BPE: both doors give chat's greedy answer."""
    question = [{"role": "user", "content": "What is 2+2?"}]
    ref = requests.post(default_model.url + "/v1/chat/completions",
                        json={"model": "smollm2", "messages": question, "max_tokens": 8,
                              "temperature": 0}).json()
    text = ref["choices"][0]["message"]["content"]
    claude = anthropic.Anthropic(base_url=default_model.url, api_key="x", max_retries=0)
    m = claude.messages.create(model="smollm2", max_tokens=8, messages=question,
                               extra_body=GREEDY)
    assert m.content[0].text == text
    assert m.usage.input_tokens + m.usage.cache_read_input_tokens == \
        ref["usage"]["prompt_tokens"]
    client = openai.OpenAI(base_url=default_model.url + "/v1", api_key="x", max_retries=0)
    r = client.responses.create(model="smollm2", input="What is 2+2?", max_output_tokens=8,
                                temperature=0)
    assert r.output_text == text and r.usage.input_tokens == ref["usage"]["prompt_tokens"]


TIME = {"name": "get_time", "description": "The time in a zone", "input_schema": {
    "type": "object", "properties": {"tz": {"enum": ["UTC", "CET"]}}, "required": ["tz"],
    "additionalProperties": False}}
WEATHER = {"name": "get_weather", "input_schema": {
    "type": "object", "properties": {"city": {"type": "string", "maxLength": 20},
                                     "days": {"type": "integer", "minimum": 1, "maximum": 7}},
    "required": ["city", "days"], "additionalProperties": False}}


def as_chat_tool(tool):
    return {"type": "function", "function": {"name": tool["name"],
                                             "parameters": tool["input_schema"],
                                             **({"description": tool["description"]}
                                                if "description" in tool else {})}}


def test_forced_tool_use_matches_chat(claude, stories):
    kw = dict(model="stories", max_tokens=100, messages=MESSAGES, tools=[WEATHER, TIME],
              tool_choice={"type": "tool", "name": "get_time"},
              extra_body={"temperature": 1.0, "seed": 5})
    m = claude.messages.create(**kw)
    ref = chat(stories, MESSAGES, 100, tools=[as_chat_tool(WEATHER), as_chat_tool(TIME)],
               tool_choice={"type": "function", "function": {"name": "get_time"}},
               temperature=1.0, seed=5)
    call = ref["choices"][0]["message"]["tool_calls"][0]["function"]
    assert m.stop_reason == "tool_use"
    assert [b.type for b in m.content] == ["tool_use"]
    use = m.content[0]
    assert use.name == "get_time" and use.id.startswith("toolu_")
    assert use.input == json.loads(call["arguments"]) and use.input["tz"] in ("UTC", "CET")
    # Streamed: a tool_use block whose input_json_delta pieces make the same input.
    events = list(claude.messages.create(stream=True, **kw))
    types = [e.type for e in events]
    n = types.count("content_block_delta")
    assert types == (["message_start", "content_block_start"] + ["content_block_delta"] * n +
                     ["content_block_stop", "message_delta", "message_stop"])
    assert events[1].content_block.type == "tool_use" and events[1].content_block.name == "get_time"
    assert all(e.delta.type == "input_json_delta" for e in events if e.type == "content_block_delta")
    partial = "".join(e.delta.partial_json for e in events if e.type == "content_block_delta")
    assert json.loads(partial) == use.input
    assert events[-2].delta.stop_reason == "tool_use"
    # The SDK's stream helper assembles the tool_use block from the deltas.
    with claude.messages.stream(**kw) as s:
        final = s.get_final_message()
    assert final.content[0].type == "tool_use" and final.content[0].input == use.input


def test_any_tool_choice_makes_one_call_without_parallel_use(claude):
    for seed in range(3):
        m = claude.messages.create(model="stories", max_tokens=300, messages=MESSAGES,
                                   tools=[WEATHER, TIME],
                                   tool_choice={"type": "any", "disable_parallel_tool_use": True},
                                   extra_body={"temperature": 1.0, "seed": seed})
        uses = [b for b in m.content if b.type == "tool_use"]
        assert len(uses) == 1 and uses[0].name in ("get_weather", "get_time"), m.content
        assert m.stop_reason == "tool_use"


def test_tool_use_and_tool_result_are_the_chat_conversation(claude, stories):
    history = [{"role": "user", "content": "What time is it?"},
               {"role": "assistant", "content": [
                   {"type": "text", "text": "Let me look."},
                   {"type": "tool_use", "id": "toolu_1", "name": "get_time",
                    "input": {"tz": "UTC"}}]},
               {"role": "user", "content": [
                   {"type": "tool_result", "tool_use_id": "toolu_1",
                    "content": [{"type": "text", "text": "12:00"}]}]}]
    m = claude.messages.create(model="stories", max_tokens=8, messages=history, tools=[TIME],
                               tool_choice={"type": "none"}, extra_body=GREEDY)
    messages = [{"role": "user", "content": "What time is it?"},
                {"role": "assistant", "content": "Let me look.", "tool_calls": [
                    {"id": "toolu_1", "type": "function",
                     # The input object serialized compactly, as the translation does.
                     "function": {"name": "get_time",
                                  "arguments": json.dumps({"tz": "UTC"}, separators=(",", ":"))}}]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "12:00"}]
    ref = chat(stories, messages, 8, tools=[as_chat_tool(TIME)], tool_choice="none")
    assert m.content[0].text == ref["choices"][0]["message"]["content"]
    assert m.usage.input_tokens + m.usage.cache_read_input_tokens == \
        ref["usage"]["prompt_tokens"]
    n = claude.messages.count_tokens(model="stories", messages=history, tools=[TIME])
    assert n.input_tokens == ref["usage"]["prompt_tokens"]
    ids = requests.post(stories.url + "/tokenize", json={"messages": messages}).json()
    assert "12:00" in requests.post(stories.url + "/detokenize",
                                    json={"tokens": ids["tokens"]}).json()["prompt"]
