"""/v1/responses (the OpenAI Responses API) with the official openai client: the same greedy text
and token counts as /v1/chat/completions for the same conversation, the Responses event
sequence, usage with cached tokens, and bad input answered in OpenAI's error shape."""
import json
import socket
import time

import openai
import pytest
import requests

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
    ("input", [{"type": "function_call_output", "call_id": "c", "output": "x"}], "input"),
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
    ("tools", [{"type": "function", "name": "f", "parameters": {}}], "tools"),
    ("tool_choice", "required", "tool_choice"),
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

