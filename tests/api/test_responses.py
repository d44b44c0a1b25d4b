"""/v1/responses (the OpenAI Responses API) with the official openai client: the same greedy text
and token counts as /v1/chat/completions for the same conversation, the Responses event
sequence, usage with cached tokens, and bad input answered in OpenAI's error shape."""
import json
import socket
import time

import openai
import pytest
import requests

from conftest import SHARED, STORIES, Server

QWEN3 = SHARED / "chat-templates" / "llama.cpp" / "Qwen-Qwen3-0.6B.jinja"

INSTRUCTIONS = "You tell tiny stories."
CHAT = [{"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": "Tell me about Lily."}]


def chat_reference(client, messages, max_tokens):
    return client.chat.completions.create(model="stories", messages=messages,
                                          max_tokens=max_tokens, temperature=0)


def test_string_input_with_instructions_matches_chat(client):
    r = client.responses.create(model="stories", instructions=INSTRUCTIONS,
                                input="Tell me about Lily.", max_output_tokens=12, temperature=0)
    ref = chat_reference(client, CHAT, 12)
    assert r.object == "response" and r.id.startswith("resp_")
    assert r.model == "stories" and r.instructions == INSTRUCTIONS
    assert r.output_text == ref.choices[0].message.content
    assert len(r.output) == 1 and r.output[0].type == "message"
    assert r.output[0].role == "assistant" and r.output[0].id.startswith("msg_")
    assert r.usage.input_tokens == ref.usage.prompt_tokens
    assert r.usage.output_tokens == ref.usage.completion_tokens
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    assert r.usage.output_tokens_details.reasoning_tokens == 0
    assert r.store is False and r.max_output_tokens == 12 and r.temperature == 0
    expected = "completed" if ref.choices[0].finish_reason == "stop" else "incomplete"
    assert r.status == expected


def test_message_items_and_content_parts_match_chat(client):
    items = [{"role": "developer", "content": [{"type": "input_text", "text": INSTRUCTIONS}]},
             {"type": "message", "role": "user",
              "content": [{"type": "input_text", "text": "Tell me"},
                          {"type": "input_text", "text": "about Lily."}]},
             {"role": "assistant", "content": [{"type": "output_text", "text": "Lily was happy.",
                                                "annotations": []}]},
             {"type": "reasoning", "id": "rs_1", "summary": []},
             {"role": "user", "content": "And then?"}]
    r = client.responses.create(model="stories", input=items, max_output_tokens=10, temperature=0)
    # Text parts join with a newline, as chat content parts do; developer is the system role.
    ref = chat_reference(client, [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": "Tell me\nabout Lily."},
        {"role": "assistant", "content": "Lily was happy."},
        {"role": "user", "content": "And then?"}], 10)
    assert r.output_text == ref.choices[0].message.content
    assert r.usage.input_tokens == ref.usage.prompt_tokens


def test_max_output_tokens_makes_an_incomplete_response(client):
    r = client.responses.create(model="stories", input="Once upon a time", max_output_tokens=3,
                                temperature=0, extra_body={"ignore_eos": True})
    assert r.status == "incomplete"
    assert r.incomplete_details.reason == "max_output_tokens"
    assert r.output[0].status == "incomplete"
    assert r.usage.output_tokens == 3


def test_stream_event_sequence(client):
    kwargs = dict(model="stories", input="Tell me about Lily.", instructions=INSTRUCTIONS,
                  max_output_tokens=12, temperature=0)
    events = list(client.responses.create(stream=True, **kwargs))
    types = [e.type for e in events]
    n_delta = types.count("response.output_text.delta")
    assert n_delta >= 1
    final = events[-1].response
    terminal = "response.completed" if final.status == "completed" else "response.incomplete"
    assert types == (["response.created", "response.in_progress", "response.output_item.added",
                      "response.content_part.added"] + ["response.output_text.delta"] * n_delta +
                     ["response.output_text.done", "response.content_part.done",
                      "response.output_item.done", terminal])
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].response.status == "in_progress" and events[0].response.output == []
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    done = events[types.index("response.output_text.done")]
    assert done.text == text and done.item_id == events[2].item.id
    assert final.output_text == text
    assert final.usage.output_tokens >= n_delta
    # The same text as without streaming.
    assert client.responses.create(**kwargs).output_text == text
    # The SDK's stream helper assembles the same response (it needs response.completed: a stop
    # string ends this one before max_output_tokens).
    kwargs["max_output_tokens"] = 64
    with client.responses.stream(**kwargs, extra_body={"stop": ["."]}) as s:
        deltas = "".join(e.delta for e in s if e.type == "response.output_text.delta")
        done = s.get_final_response()
    assert done.status == "completed" and done.output_text == deltas


def test_usage_reports_cached_tokens(client):
    story = "Lily had a red ball. " * 40
    first = client.responses.create(model="stories", input=story, max_output_tokens=2)
    second = client.responses.create(model="stories", input=story, max_output_tokens=2)
    assert first.usage.input_tokens == second.usage.input_tokens
    assert second.usage.input_tokens_details.cached_tokens > 0
    assert second.usage.input_tokens_details.cached_tokens <= second.usage.input_tokens
    # Streamed usage carries them too.
    events = list(client.responses.create(model="stories", input=story, max_output_tokens=2,
                                          stream=True))
    assert events[-1].response.usage.input_tokens_details.cached_tokens > 0


def test_logprobs_on_request(client):
    r = client.responses.create(model="stories", input="Lily", max_output_tokens=5, temperature=0,
                                include=["message.output_text.logprobs"], top_logprobs=2)
    part = r.output[0].content[0]
    assert len(part.logprobs) == r.usage.output_tokens
    for lp in part.logprobs:
        assert len(lp.top_logprobs) == 2 and lp.logprob <= 0
        assert lp.top_logprobs[0].token == lp.token  # greedy: the chosen token is the likeliest
    # The same tokens and values as chat's logprobs for the same conversation.
    ref = client.chat.completions.create(model="stories", messages=[{"role": "user",
                                                                      "content": "Lily"}],
                                         max_tokens=5, temperature=0, logprobs=True,
                                         top_logprobs=2).choices[0].logprobs.content
    assert [(lp.token, round(lp.logprob, 4)) for lp in part.logprobs] == \
        [(lp.token, round(lp.logprob, 4)) for lp in ref]
    # Streamed deltas carry them too.
    events = list(client.responses.create(model="stories", input="Lily", max_output_tokens=5,
                                          temperature=0, stream=True, top_logprobs=2,
                                          include=["message.output_text.logprobs"]))
    streamed = [lp.token for e in events if e.type == "response.output_text.delta"
                for lp in e.logprobs]
    assert streamed == [lp.token for lp in part.logprobs]


def test_store_false_metadata_and_user_are_echoed(client):
    r = client.responses.create(model="stories", input="Lily", max_output_tokens=2, store=False,
                                metadata={"ticket": "42"}, user="u1", parallel_tool_calls=False,
                                truncation="disabled", text={"format": {"type": "text"}},
                                tool_choice="auto", tools=[])
    assert r.store is False and r.metadata == {"ticket": "42"} and r.user == "u1"
    assert r.parallel_tool_calls is False


def test_sampling_fields_reach_the_engine(client):
    kw = dict(model="stories", input="Once upon a time", max_output_tokens=16, temperature=1.0)
    a = client.responses.create(**kw, extra_body={"seed": 7, "top_k": 5})
    b = client.responses.create(**kw, extra_body={"seed": 7, "top_k": 5})
    assert a.output_text == b.output_text
    one = client.responses.create(**kw, top_p=1e-6)  # only the likeliest token survives
    greedy = client.responses.create(model="stories", input="Once upon a time",
                                     max_output_tokens=16, temperature=0)
    assert one.output_text == greedy.output_text


def error_of(r, status):
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    return body["error"]


@pytest.mark.parametrize("field,value,param", [
    ("temperature", "hot", "temperature"),
    ("top_p", 2, "top_p"),
    ("max_output_tokens", 0, "max_output_tokens"),
    ("max_output_tokens", 10**6, "max_output_tokens"),
    ("stream", "yes", "stream"),
    ("input", 5, "input"),
    ("input", [], "input"),
    ("input", [{"role": "robot", "content": "x"}], "input"),
    ("input", [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}],
     "input"),
    ("input", [{"type": "function_call_output", "call_id": 5, "output": "x"}], "input"),
    ("input", [{"type": "function_call", "call_id": "c", "name": "f"}], "input"),
    ("input", [{"type": "item_reference", "id": "msg_1"}], "input"),
    ("instructions", 5, "instructions"),
    ("previous_response_id", "resp_123", "previous_response_id"),
    ("conversation", "conv_1", "conversation"),
    ("background", True, "background"),
    ("truncation", "auto", "truncation"),
    ("include", ["file_search_call.results"], "include"),
    ("top_logprobs", 50, "top_logprobs"),
    ("metadata", {"k": 5}, "metadata"),
    ("reasoning", {"effort": "max"}, "reasoning.effort"),
    ("tools", [{"type": "web_search"}], "tools"),
    ("tools", [{"type": "function", "name": "bad name!", "parameters": {}}], "tools"),
    ("tool_choice", "required", "tool_choice"),
    ("tool_choice", {"type": "function", "name": "nope"}, "tool_choice"),
    ("model", "gpt-5", "model"),
    ("prompt", {"id": "pmpt_1"}, "prompt"),
    ("frobnicate", 1, "frobnicate"),
])
def test_bad_input_is_a_400_naming_the_field(stories, field, value, param):
    body = {"model": "stories", "input": "Lily", "max_output_tokens": 4, field: value}
    status = 404 if field == "model" else 400
    e = error_of(requests.post(stories.url + "/v1/responses", json=body), status)
    assert e["param"] == param, e


def test_missing_input_and_malformed_json(stories):
    assert error_of(requests.post(stories.url + "/v1/responses", json={"model": "stories"}),
                    400)["param"] == "input"
    r = requests.post(stories.url + "/v1/responses", data="{not json",
                      headers={"Content-Type": "application/json"})
    assert error_of(r, 400)["code"] == "invalid_json"


def test_the_client_raises_openai_errors(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="stories", input="Lily", previous_response_id="resp_x")
    assert e.value.body["param"] == "previous_response_id"
    assert "does not store" in e.value.body["message"]
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model="nope", input="Lily")


def test_metrics_and_access_log_count_responses(stories, client):
    before = stories.metric("kinfer:request_success_total") or 0
    ok_before = stories.metric("kinfer:http_requests_total", status="200") or 0
    client.responses.create(model="stories", input="Lily", max_output_tokens=2)
    list(client.responses.create(model="stories", input="Lily", max_output_tokens=2, stream=True))
    assert stories.metric("kinfer:request_success_total") == before + 2
    assert stories.metric("kinfer:http_requests_total", status="200") >= ok_before + 2
    assert '"path":"/v1/responses"' in stories.output()


def wait_for(cond, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if cond():
            return True
        time.sleep(0.05)
    return False


def test_client_disconnect_aborts_a_front_door_stream(stories):
    # ignore_eos (a vLLM extra /v1/responses takes) keeps it generating until the client leaves;
    # both doors share the request path that aborts it.
    body = json.dumps({"model": "stories", "max_output_tokens": 300, "stream": True,
                       "input": "Lily", "ignore_eos": True}).encode()
    with socket.create_connection(("127.0.0.1", stories.port)) as s:
        s.sendall(b"POST /v1/responses HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
        s.settimeout(10)
        got = s.recv(4096)
        assert got.startswith(b"HTTP/1.1 200"), got
        while got.count(b"delta") < 5:
            got += s.recv(4096)
        assert wait_for(lambda: stories.metric("kinfer:num_requests_running") == 1)
    assert wait_for(lambda: stories.metric("kinfer:num_requests_running") == 0, timeout=10)
    assert wait_for(lambda: stories.metric("kinfer:kv_cache_usage_perc") == 0, timeout=10)



WEATHER = {"type": "function", "name": "get_weather", "description": "Weather in a city",
           "parameters": {"type": "object", "properties": {
               "city": {"type": "string", "maxLength": 20},
               "days": {"type": "integer", "minimum": 1, "maximum": 7}},
               "required": ["city", "days"], "additionalProperties": False}}
TIME = {"type": "function", "name": "get_time", "parameters": {
    "type": "object", "properties": {"tz": {"enum": ["UTC", "CET"]}}, "required": ["tz"],
    "additionalProperties": False}}


def as_chat_tool(tool):
    return {"type": "function", "function": {k: v for k, v in tool.items() if k != "type"}}


def test_named_function_tool_matches_chat(client):
    kw = dict(temperature=1.0, seed=3)
    r = client.responses.create(model="stories", input="Tell me about Lily.", tools=[WEATHER, TIME],
                                tool_choice={"type": "function", "name": "get_time"},
                                max_output_tokens=100, extra_body=kw)
    ref = client.chat.completions.create(
        model="stories", messages=[{"role": "user", "content": "Tell me about Lily."}],
        tools=[as_chat_tool(WEATHER), as_chat_tool(TIME)],
        tool_choice={"type": "function", "function": {"name": "get_time"}}, max_tokens=100, **kw)
    assert r.status == "completed"
    assert [o.type for o in r.output] == ["function_call"]
    call = r.output[0]
    assert call.name == "get_time" and call.call_id.startswith("call_")
    assert call.id.startswith("fc_") and call.status == "completed"
    assert json.loads(call.arguments)["tz"] in ("UTC", "CET")
    assert call.arguments == ref.choices[0].message.tool_calls[0].function.arguments
    assert [t.name for t in r.tools] == ["get_weather", "get_time"]
    # Streamed: the function_call item's events, and the same arguments.
    events = list(client.responses.create(
        model="stories", input="Tell me about Lily.", tools=[WEATHER, TIME], stream=True,
        tool_choice={"type": "function", "name": "get_time"}, max_output_tokens=100,
        extra_body=kw))
    types = [e.type for e in events]
    n = types.count("response.function_call_arguments.delta")
    assert types == (["response.created", "response.in_progress", "response.output_item.added"] +
                     ["response.function_call_arguments.delta"] * n +
                     ["response.function_call_arguments.done", "response.output_item.done",
                      "response.completed"])
    assert events[2].item.type == "function_call" and events[2].item.name == "get_time"
    deltas = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert deltas == call.arguments == events[-3].arguments
    assert events[-1].response.output[0].arguments == call.arguments


def test_required_tool_choice_without_parallel_calls(client):
    for seed in range(3):
        r = client.responses.create(model="stories", input="Tell me about Lily.",
                                    tools=[WEATHER, TIME], tool_choice="required",
                                    parallel_tool_calls=False, max_output_tokens=300,
                                    temperature=1.0, extra_body={"seed": seed})
        calls = [o for o in r.output if o.type == "function_call"]
        assert len(calls) == 1 and calls[0].name in ("get_weather", "get_time")
        assert r.parallel_tool_calls is False


def test_function_call_items_are_the_chat_conversation(client, stories):
    call_args = json.dumps({"tz": "UTC"})
    items = [{"role": "user", "content": "What time is it?"},
             {"type": "function_call", "call_id": "call_1", "name": "get_time",
              "arguments": call_args},
             {"type": "function_call_output", "call_id": "call_1", "output": "12:00"}]
    r = client.responses.create(model="stories", input=items, tools=[TIME], tool_choice="none",
                                max_output_tokens=8, temperature=0)
    messages = [{"role": "user", "content": "What time is it?"},
                {"role": "assistant", "content": None, "tool_calls": [
                    {"id": "call_1", "type": "function",
                     "function": {"name": "get_time", "arguments": call_args}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "12:00"}]
    ref = client.chat.completions.create(model="stories", messages=messages,
                                         tools=[as_chat_tool(TIME)], tool_choice="none",
                                         max_tokens=8, temperature=0)
    assert r.output_text == ref.choices[0].message.content
    assert r.usage.input_tokens == ref.usage.prompt_tokens
    # The tool result is in the prompt.
    ids = requests.post(stories.url + "/tokenize", json={"messages": messages}).json()
    assert "12:00" in requests.post(stories.url + "/detokenize",
                                    json={"tokens": ids["tokens"]}).json()["prompt"]


@pytest.fixture(scope="module")
def qwen3():
    s = Server(STORIES, "--served-model-name", "stories", "--chat-template", str(QWEN3),
               "--kv-cache-memory", "64MiB")
    yield s
    assert s.stop() == 0, s.output()


def forced(text):
    """A Lark grammar whose only sentence is `text`: the model writes exactly it."""
    return {"structured_outputs": {"grammar": "start: " + json.dumps(text)}}


def test_reasoning_item_then_message(qwen3):
    client = openai.OpenAI(base_url=qwen3.url + "/v1", api_key="x", max_retries=0)
    kw = dict(model="stories", input="2+2?", max_output_tokens=100,
              extra_body=forced("<think>\nAdd them.\n</think>\n\nIt is 4."))
    r = client.responses.create(**kw)
    assert [o.type for o in r.output] == ["reasoning", "message"]
    assert r.output[0].content[0].type == "reasoning_text"
    assert r.output[0].content[0].text == "Add them."
    assert r.output_text == "It is 4."
    assert 0 < r.usage.output_tokens_details.reasoning_tokens < r.usage.output_tokens
    events = list(client.responses.create(stream=True, **kw))
    types = [e.type for e in events]
    rd, td = types.count("response.reasoning_text.delta"), types.count("response.output_text.delta")
    assert types == (["response.created", "response.in_progress",
                      "response.output_item.added", "response.content_part.added"] +
                     ["response.reasoning_text.delta"] * rd +
                     ["response.reasoning_text.done", "response.content_part.done",
                      "response.output_item.done", "response.output_item.added",
                      "response.content_part.added"] +
                     ["response.output_text.delta"] * td +
                     ["response.output_text.done", "response.content_part.done",
                      "response.output_item.done", "response.completed"])
    assert "".join(e.delta for e in events if e.type == "response.reasoning_text.delta") == \
        "Add them."
    assert [e.output_index for e in events if e.type == "response.output_item.added"] == [0, 1]
    final = events[-1].response
    assert final.output_text == "It is 4." and final.output[0].content[0].text == "Add them."
    # reasoning.effort none turns the template's thinking off: all of it is answer.
    plain = client.responses.create(model="stories", input="2+2?", max_output_tokens=100,
                                    reasoning={"effort": "none"},
                                    extra_body=forced("Plain answer."))
    assert [o.type for o in plain.output] == ["message"] and plain.output_text == "Plain answer."


def test_reasoning_then_a_tool_call_from_the_answer(qwen3):
    client = openai.OpenAI(base_url=qwen3.url + "/v1", api_key="x", max_retries=0)
    text = ("<think>\nThe user may want <tool_call> for weather.\n</think>\n\n<tool_call>\n"
            "{\"name\": \"get_time\", \"arguments\": {\"tz\": \"UTC\"}}\n</tool_call>")
    kw = dict(model="stories", input="Time?", tools=[TIME], max_output_tokens=400,
              extra_body=forced(text))
    r = client.responses.create(**kw)
    assert [o.type for o in r.output] == ["reasoning", "function_call"]
    assert r.output[0].content[0].text == "The user may want <tool_call> for weather."
    assert r.output[1].name == "get_time" and json.loads(r.output[1].arguments) == {"tz": "UTC"}
    with client.responses.stream(**kw) as s:
        final = s.get_final_response()
    assert [o.type for o in final.output] == ["reasoning", "function_call"]
    assert final.output[1].arguments == r.output[1].arguments
