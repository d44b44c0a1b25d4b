"""Structured output, tool calling and reasoning through the official openai client.

References: Pydantic (through `client.chat.completions.parse`) and the `jsonschema` package for
"the output validates", Python's `re` for regexes, and for tool calls the shapes of OpenAI's API
reference (message.tool_calls with ids, finish_reason "tool_calls", stream deltas whose first
carries index, id, type and name with arguments "" and later ones argument text). Model outputs
in each tool-call format are forced through a grammar (structured_outputs.grammar) so that the
real server parses exactly those texts; the texts are written in each model family's format as
its chat template renders calls back.
"""
import json
import random
import re

import jsonschema
import openai
import pytest
import requests
from typing import Annotated

from pydantic import BaseModel, Field

from conftest import SHARED, STORIES, Server

QWEN3 = SHARED / "chat-templates" / "llama.cpp" / "Qwen-Qwen3-0.6B.jinja"
R1 = SHARED / "chat-templates" / "llama.cpp" / "deepseek-ai-DeepSeek-R1-Distill-Qwen-32B.jinja"
MSG = [{"role": "user", "content": "Tell me about Lily."}]
WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "maxLength": 20}, "days": {"type": "integer", "minimum": 1,
                                                               "maximum": 7}},
        "required": ["city", "days"], "additionalProperties": False}}}
TIME = {"type": "function", "function": {"name": "get_time", "parameters": {
    "type": "object", "properties": {"tz": {"enum": ["UTC", "CET"]}}, "required": ["tz"],
    "additionalProperties": False}}}


def forced(text):
    """A Lark grammar whose only sentence is `text`: the model writes exactly it."""
    return {"structured_outputs": {"grammar": "start: " + json.dumps(text)}}


class Person(BaseModel):
    # Bounded strings: stories260K knows no JSON and would fill an unbounded string to max_tokens.
    name: str = Field(max_length=16)
    age: int = Field(ge=0, le=120)
    pets: list[Annotated[str, Field(max_length=10)]] = Field(max_length=3)
    happy: bool


def test_parse_with_pydantic_validates_every_seed(client):
    for seed in range(8):
        r = client.chat.completions.parse(model="stories", messages=MSG, response_format=Person,
                                          temperature=1.0, seed=seed, max_tokens=400)
        c = r.choices[0]
        assert c.finish_reason == "stop", c.message.content
        assert isinstance(c.message.parsed, Person), c.message.content


def random_schema(rng, depth=0):
    # No unbounded numbers or strings: stories260K knows no JSON, and a grammar that allows
    # endless digits lets it write them until max_tokens.
    kind = rng.choice(["object", "object", "array", "string", "integer", "boolean", "enum"]
                      if depth < 2 else ["string", "integer", "boolean", "enum"])
    if kind == "object":
        props = {f"k{i}": random_schema(rng, depth + 1) for i in range(rng.randint(1, 3))}
        return {"type": "object", "properties": props, "required": list(props),
                "additionalProperties": False}
    if kind == "array":
        return {"type": "array", "items": random_schema(rng, depth + 1), "minItems": 1,
                "maxItems": 3}
    if kind == "string":
        return {"type": "string", "maxLength": rng.randint(1, 10)}
    if kind == "integer":
        lo = rng.randint(-50, 50)
        return {"type": "integer", "minimum": lo, "maximum": lo + rng.randint(0, 100)}
    if kind == "enum":
        return {"enum": rng.sample(["a", "b", 3, None, True, "x y"], 3)}
    return {"type": kind}


@pytest.mark.parametrize("endpoint", ["chat", "completions"])
def test_random_schemas_always_validate(client, endpoint):
    rng = random.Random(7)
    for i in range(10):
        schema = {"type": "object", "properties": {"v": random_schema(rng)}, "required": ["v"],
                  "additionalProperties": False}
        for seed in range(3):
            if endpoint == "chat":
                r = client.chat.completions.create(
                    model="stories", messages=MSG, temperature=1.2, seed=seed, max_tokens=400,
                    response_format={"type": "json_schema",
                                     "json_schema": {"name": "r", "schema": schema}})
                text, finish = r.choices[0].message.content, r.choices[0].finish_reason
            else:
                r = client.completions.create(model="stories", prompt="Once upon a time",
                                              temperature=1.2, seed=seed, max_tokens=400,
                                              extra_body={"guided_json": schema})
                text, finish = r.choices[0].text, r.choices[0].finish_reason
            assert finish == "stop", (schema, text)
            jsonschema.validate(json.loads(text), schema)


def test_default_model_follows_schemas(default_model):
    client = openai.OpenAI(base_url=default_model.url + "/v1", api_key="x", max_retries=0)
    schema = {"type": "object", "properties": {"city": {"type": "string", "maxLength": 24},
                                               "population": {"type": "integer", "minimum": 0}},
              "required": ["city", "population"], "additionalProperties": False}
    for seed in range(3):
        r = client.chat.completions.create(
            model="smollm2", messages=[{"role": "user", "content": "Name a big city as JSON."}],
            seed=seed, temperature=0.8, max_tokens=80,
            response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema,
                                                                    "strict": True}})
        assert r.choices[0].finish_reason == "stop"
        jsonschema.validate(json.loads(r.choices[0].message.content), schema)


def test_every_request_spelling(client, stories):
    cases = [
        ({"structured_outputs": {"regex": "[A-Z][a-z]{3,8}"}},
         lambda t: re.fullmatch("[A-Z][a-z]{3,8}", t)),
        ({"structured_outputs": {"choice": ["cat", "dog"]}}, lambda t: t in ("cat", "dog")),
        ({"structured_outputs": {"json": {"type": "integer", "minimum": -5, "maximum": 999}}},
         lambda t: -5 <= int(t) <= 999),
        ({"structured_outputs": {"grammar": 'start: "x" /[0-9]{2}/'}},
         lambda t: re.fullmatch("x[0-9]{2}", t)),
        ({"guided_regex": "(yes|no)!"}, lambda t: t in ("yes!", "no!")),
        ({"guided_choice": ["up", "down"]}, lambda t: t in ("up", "down")),
        ({"guided_json": json.dumps({"type": "array", "items": {"type": "boolean"},
                                     "maxItems": 2})},
         lambda t: all(isinstance(v, bool) for v in json.loads(t))),
        ({"guided_grammar": 'root ::= "a" [bc]{1,5}', "guided_decoding_backend": "guidance"},
         lambda t: re.fullmatch("a[bc]{1,5}", t)),
        ({"json_schema": {"type": "boolean"}}, lambda t: t in ("true", "false")),
        ({"grammar": 'root ::= "n=" [0-9] [0-9]?'}, lambda t: re.fullmatch("n=[0-9]{1,2}", t)),
    ]
    for body, ok in cases:
        for endpoint in ("chat", "completions"):
            if endpoint == "chat":
                r = client.chat.completions.create(model="stories", messages=MSG, max_tokens=60,
                                                   temperature=1.0, seed=1, extra_body=body)
                text = r.choices[0].message.content
            else:
                r = client.completions.create(model="stories", prompt="Lily", max_tokens=60,
                                              temperature=1.0, seed=1, extra_body=body)
                text = r.choices[0].text
            assert r.choices[0].finish_reason == "stop", (body, text)
            assert ok(text), (body, text)
    # json_object allows any object, which stories260K may never close: a finished output parses,
    # and a cut one is still the start of an object.
    for seed in range(4):
        r = client.chat.completions.create(model="stories", messages=MSG, max_tokens=100, seed=seed,
                                           response_format={"type": "json_object"})
        text = r.choices[0].message.content
        if r.choices[0].finish_reason == "stop":
            assert isinstance(json.loads(text), dict), text
        else:
            assert text.startswith("{"), text


def test_structured_streaming_equals_whole(client):
    schema = {**Person.model_json_schema(), "additionalProperties": False}
    kw = dict(model="stories", messages=MSG, max_tokens=400, temperature=1.0, seed=3,
              response_format={"type": "json_schema", "json_schema": {"name": "p",
                                                                      "schema": schema}})
    whole = client.chat.completions.create(**kw).choices[0].message.content
    chunks = list(client.chat.completions.create(stream=True, **kw))
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == whole
    Person.model_validate_json(whole)


@pytest.mark.parametrize("body, param, says", [
    ({"response_format": {"type": "json_schema", "json_schema": {
        "name": "x", "schema": {"type": "object", "properties": {"a": {"type": "wat"}}}}}},
     "response_format", "wat"),
    ({"response_format": {"type": "json_schema", "json_schema": {"name": "x"}}},
     "response_format", "schema' is required"),
    ({"response_format": {"type": "xml"}}, "response_format", "not supported"),
    ({"structured_outputs": {"regex": "[a-"}}, "structured_outputs", "regex"),
    ({"structured_outputs": {"grammar": "start: undefined_rule"}}, "structured_outputs",
     "undefined_rule"),
    ({"structured_outputs": {"sql": "x"}}, "structured_outputs", "not a known field"),
    ({"guided_json": "{not json"}, "guided_json", "not valid JSON"),
    ({"grammar": "root ::= (\"a\""}, "grammar", "line 1"),
    ({"guided_choice": []}, "guided_choice", "non-empty"),
    ({"guided_regex": "a+", "guided_choice": ["a"]}, "guided_choice", "only one"),
    ({"guided_decoding_backend": "xgrammar", "guided_regex": "a"}, "guided_decoding_backend",
     "llguidance"),
    ({"tools": [{"type": "function", "function": {"name": "bad name"}}]}, "tools", "tools[0]"),
    ({"tools": [{"type": "function", "function": {"name": "f", "parameters": {
        "type": "object", "properties": {"x": {"type": "nope"}}}}}]}, "tools", "nope"),
    ({"tools": [WEATHER, WEATHER]}, "tools", "already defined"),
    ({"tools": [WEATHER], "tool_choice": {"type": "function", "function": {"name": "nope"}}},
     "tool_choice", "not in 'tools'"),
    ({"tool_choice": "required"}, "tool_choice", "needs 'tools'"),
    ({"tools": [WEATHER], "tool_choice": "sometimes"}, "tool_choice", "must be none"),
    ({"tools": [WEATHER], "tool_choice": "required", "guided_regex": "a"}, "tool_choice",
     "cannot be combined"),
    ({"functions": [{"name": "f"}]}, "functions", "use 'tools'"),
])
def test_bad_schemas_grammars_and_tools_are_clear_400s(client, body, param, says):
    with pytest.raises(openai.BadRequestError) as e:
        client.chat.completions.create(model="stories", messages=MSG, max_tokens=5,
                                       extra_body=body)
    err = e.value.body
    assert e.value.status_code == 400
    assert err["param"] == param, err
    assert says in err["message"], err


def test_tools_on_completions_are_refused(client):
    with pytest.raises(openai.BadRequestError) as e:
        client.completions.create(model="stories", prompt="x", max_tokens=2,
                                  extra_body={"tools": [WEATHER]})
    assert e.value.body["param"] == "tools"


def collect_stream(chunks):
    """Tool calls from stream deltas, as a client accumulates them; checks the delta shapes."""
    calls, content, finish, seen = {}, "", None, set()
    for ch in chunks:
        if not ch.choices:
            continue
        c = ch.choices[0]
        content += c.delta.content or ""
        for t in c.delta.tool_calls or []:
            if t.index not in seen:
                seen.add(t.index)
                assert t.id and t.type == "function" and t.function.name, t
                assert t.function.arguments == "", "the first delta carries no arguments"
                calls[t.index] = {"name": t.function.name, "arguments": "", "id": t.id}
            else:
                assert t.id is None and (t.function.name is None), t
                calls[t.index]["arguments"] += t.function.arguments
        finish = c.finish_reason or finish
    return content, [calls[i] for i in sorted(calls)], finish


def both_ways(client, **kw):
    whole = client.chat.completions.create(**kw).choices[0]
    content, calls, finish = collect_stream(client.chat.completions.create(stream=True, **kw))
    got = [{"name": t.function.name, "arguments": t.function.arguments}
           for t in whole.message.tool_calls or []]
    assert [{"name": c["name"], "arguments": c["arguments"]} for c in calls] == got
    assert finish == whole.finish_reason
    assert content == (whole.message.content or "")
    return whole


def test_tool_choice_required_and_named(client):
    for seed in range(4):
        # Parallel calls: an array of any length, which stories260K may never close; streamed and
        # whole agree either way, and finished calls validate.
        w = both_ways(client, model="stories", messages=MSG, tools=[WEATHER, TIME],
                      tool_choice="required", temperature=1.0, seed=seed, max_tokens=300)
        assert w.message.tool_calls
        assert w.finish_reason in ("tool_calls", "length")
        one = both_ways(client, model="stories", messages=MSG, tools=[WEATHER, TIME],
                        tool_choice="required", parallel_tool_calls=False, temperature=1.0,
                        seed=seed, max_tokens=300)
        assert one.finish_reason == "tool_calls"
        assert one.message.content is None and len(one.message.tool_calls) == 1
        for t in one.message.tool_calls:
            assert re.fullmatch("call_[A-Za-z0-9]{24}", t.id)
            schema = (WEATHER if t.function.name == "get_weather" else TIME)["function"]
            jsonschema.validate(json.loads(t.function.arguments), schema["parameters"])
        named = both_ways(client, model="stories", messages=MSG, tools=[WEATHER, TIME],
                          tool_choice={"type": "function", "function": {"name": "get_time"}},
                          temperature=1.0, seed=seed, max_tokens=100)
        # As OpenAI answers a forced function: finish_reason "stop", the call in tool_calls.
        assert named.finish_reason == "stop"
        assert [t.function.name for t in named.message.tool_calls] == ["get_time"]
        assert json.loads(named.message.tool_calls[0].function.arguments)["tz"] in ("UTC", "CET")


def test_tool_choice_none_and_auto_without_a_call(client):
    r = client.chat.completions.create(model="stories", messages=MSG, tools=[WEATHER],
                                       tool_choice="none", max_tokens=8, temperature=0)
    assert r.choices[0].message.tool_calls is None and r.choices[0].message.content
    r = client.chat.completions.create(model="stories", messages=MSG, tools=[WEATHER],
                                       max_tokens=8, temperature=0)
    assert r.choices[0].message.tool_calls is None and r.choices[0].finish_reason == "length"


RECORDED = {
    "hermes": ("I will check.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
               "{\"city\": \"Paris\", \"days\": 2}}\n</tool_call>\n<tool_call>\n{\"name\": "
               "\"get_time\", \"arguments\": {\"tz\": \"CET\"}}\n</tool_call>",
               "I will check.\n",
               [("get_weather", '{"city": "Paris", "days": 2}'), ("get_time", '{"tz": "CET"}')]),
    "llama3_json": ("{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\", "
                    "\"days\": 1}}; {\"name\": \"get_time\", \"parameters\": {\"tz\": \"UTC\"}}",
                    "", [("get_weather", '{"city": "Oslo", "days": 1}'),
                         ("get_time", '{"tz": "UTC"}')]),
    "mistral": ("[TOOL_CALLS][{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Rome\", "
                "\"days\": 3}}]", "", [("get_weather", '{"city": "Rome", "days": 3}')]),
    "qwen3_coder": ("<tool_call>\n<function=get_weather>\n<parameter=city>\nLima\n</parameter>\n"
                    "<parameter=days>\n4\n</parameter>\n</function>\n</tool_call>", "",
                    [("get_weather", '{"city": "Lima", "days": 4}')]),
    "pythonic": ("[get_weather(city='Kyiv', days=5), get_time(tz='UTC')]", "",
                 [("get_weather", '{"city":"Kyiv","days":5}'), ("get_time", '{"tz":"UTC"}')]),
}


@pytest.fixture(scope="module", params=sorted(RECORDED))
def parser_server(request):
    s = Server(STORIES, "--served-model-name", "stories", "--chat-template",
               str(SHARED / "chat-templates" / "llama.cpp" / "Qwen-Qwen2.5-7B-Instruct.jinja"),
               "--kv-cache-memory", "64MiB", "--tool-call-parser", request.param)
    yield request.param, s
    assert s.stop() == 0, s.output()


def test_every_parser_on_recorded_outputs(parser_server):
    name, server = parser_server
    client = openai.OpenAI(base_url=server.url + "/v1", api_key="x", max_retries=0)
    text, content, calls = RECORDED[name]
    w = both_ways(client, model="stories", messages=MSG, tools=[WEATHER, TIME], max_tokens=400,
                  temperature=1.0, extra_body=forced(text))
    assert w.finish_reason == "tool_calls"
    assert (w.message.content or "") == content
    assert [(t.function.name, t.function.arguments) for t in w.message.tool_calls] == calls
    if name == "mistral":
        assert all(re.fullmatch("[A-Za-z0-9]{9}", t.id) for t in w.message.tool_calls)


@pytest.fixture(scope="module")
def qwen3():
    s = Server(STORIES, "--served-model-name", "stories", "--chat-template", str(QWEN3),
               "--kv-cache-memory", "64MiB")
    yield s
    assert s.stop() == 0, s.output()


def test_reasoning_split_and_tools_from_the_answer(qwen3):
    client = openai.OpenAI(base_url=qwen3.url + "/v1", api_key="x", max_retries=0)
    text = ("<think>\nThe user may want <tool_call> for weather.\n</think>\n\n<tool_call>\n"
            "{\"name\": \"get_time\", \"arguments\": {\"tz\": \"UTC\"}}\n</tool_call>")
    w = both_ways(client, model="stories", messages=MSG, tools=[TIME], max_tokens=400,
                  extra_body=forced(text))
    raw = requests.post(qwen3.url + "/v1/chat/completions", json={
        "model": "stories", "messages": MSG, "tools": [TIME], "max_tokens": 400,
        **forced(text)}).json()["choices"][0]["message"]
    assert raw["reasoning_content"] == "The user may want <tool_call> for weather."
    assert raw["reasoning"] == raw["reasoning_content"]
    assert [t["function"]["name"] for t in raw["tool_calls"]] == ["get_time"]
    assert w.finish_reason == "tool_calls"
    # Streamed: reasoning arrives in delta.reasoning_content, never as content.
    chunks = list(requests.post(qwen3.url + "/v1/chat/completions", stream=True, json={
        "model": "stories", "messages": [{"role": "user", "content": "2+2?"}], "stream": True,
        "max_tokens": 100, **forced("<think>\nAdd them.\n</think>\n\nIt is 4.")}).iter_lines())
    deltas = [json.loads(l[6:])["choices"][0]["delta"] for l in chunks
              if l.startswith(b"data: {") and json.loads(l[6:])["choices"]]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "Add them."
    assert "".join(d.get("content") or "" for d in deltas) == "It is 4."
    # enable_thinking false: the template closes the think block in the prompt; all is answer.
    r = requests.post(qwen3.url + "/v1/chat/completions", json={
        "model": "stories", "messages": MSG, "max_tokens": 100,
        "chat_template_kwargs": {"enable_thinking": False}, **forced("Plain answer.")}).json()
    assert r["choices"][0]["message"]["content"] == "Plain answer."
    assert "reasoning_content" not in r["choices"][0]["message"]


def test_deepseek_r1_reasoning_opens_in_the_prompt():
    s = Server(STORIES, "--served-model-name", "stories", "--chat-template", str(R1),
               "--kv-cache-memory", "64MiB")
    try:
        # This template (llama.cpp's copy) closes the think block unless enable_thinking.
        r = requests.post(s.url + "/v1/chat/completions", json={
            "model": "stories", "messages": MSG, "max_tokens": 100,
            "chat_template_kwargs": {"enable_thinking": True},
            **forced("Short thought.\n</think>\n\nAnswer.")}).json()
        m = r["choices"][0]["message"]
        assert m["reasoning_content"] == "Short thought." and m["content"] == "Answer."
    finally:
        assert s.stop() == 0, s.output()
