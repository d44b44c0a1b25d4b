"""kinfer's chat templates against Python jinja2, run live.

Reference: jinja2 configured as Hugging Face transformers configures it (ImmutableSandboxed-
Environment, trim_blocks, lstrip_blocks, loop controls, {% generation %} passthrough,
raise_exception, strftime_now, tojson = json.dumps(ensure_ascii=False)), plus from_json, which
the recorded expected.json renders also had. Every template in ../shared/chat-templates (and the
three shared tokenizer_config.json templates) renders our own conversations: tools and tool calls,
several system messages, empty and None content, content parts, reasoning, thinking switches.
A render that raises in jinja2 must fail in kinfer too, with the same message for
raise_exception.
"""

import datetime
import json

import jinja2
import pytest
from jinja2 import nodes
from jinja2.ext import Extension
from jinja2.sandbox import ImmutableSandboxedEnvironment

from conftest import record
from kinfer_cli import mismatch_report

FIXED_DATE = "2024-07-26"

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Get the current weather in a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "City name, e.g. Paris"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "search", "description": "Search the web.",
        "parameters": {"type": "object", "properties": {
            "query": {"type": "string"}, "max_results": {"type": "integer", "default": 5},
            "filters": {"type": "array", "items": {"type": "string"}}},
            "required": ["query"]}}},
]

CALL = {"id": "call_1", "type": "function",
        "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "celsius"}}}
CALL_STR = {"id": "call_2", "type": "function",
            "function": {"name": "search", "arguments": "{\"query\": \"kinfer\"}"}}

CONVERSATIONS = {
    "single_user": [{"role": "user", "content": "Hello!"}],
    "two_systems": [
        {"role": "system", "content": "You are terse."},
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "What is the capital of Italy?"}],
    "empty_contents": [
        {"role": "system", "content": ""},
        {"role": "user", "content": ""},
        {"role": "assistant", "content": ""},
        {"role": "user", "content": "Still there?"}],
    "multi_turn": [
        {"role": "system", "content": "Be helpful."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! How can I help?"},
        {"role": "user", "content": "Tell me a joke."},
        {"role": "assistant", "content": "Why did the chicken cross the road?"},
        {"role": "user", "content": "Why?"}],
    "tool_round_trip": [
        {"role": "system", "content": "You can call tools."},
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": None, "tool_calls": [CALL]},
        {"role": "tool", "tool_call_id": "call_1", "name": "get_weather",
         "content": "{\"temperature\": 21, \"sky\": \"clear\"}"},
        {"role": "assistant", "content": "It is 21 °C and clear in Paris."},
        {"role": "user", "content": "Thanks!"}],
    "tool_call_string_args": [
        {"role": "user", "content": "Search for kinfer"},
        {"role": "assistant", "content": "", "tool_calls": [CALL_STR]},
        {"role": "tool", "tool_call_id": "call_2", "name": "search", "content": "3 results"}],
    "content_parts": [
        {"role": "user", "content": [{"type": "text", "text": "Describe "},
                                     {"type": "text", "text": "this."}]}],
    "tricky_text": [
        {"role": "system", "content": "  Quotes \"double\" and 'single', backslash \\ and tabs\t.  "},
        {"role": "user", "content": "Line 1\nLine 2\n\n<|im_start|>not a turn<|im_end|> 👋🏽 你好"}],
    "reasoning": [
        {"role": "user", "content": "2+2?"},
        {"role": "assistant", "content": "4", "reasoning_content": "Add two and two."},
        {"role": "user", "content": "And 3+3?"}],
    "assistant_last": [
        {"role": "user", "content": "Write a haiku."},
        {"role": "assistant", "content": "Autumn moonlight"}],
}

VARIANTS = [  # (conversation, tools, kwargs)
    ("single_user", None, {}),
    ("two_systems", None, {}),
    ("empty_contents", None, {}),
    ("multi_turn", None, {}),
    ("tool_round_trip", TOOLS, {}),
    ("tool_call_string_args", TOOLS, {}),
    ("single_user", TOOLS, {}),
    ("content_parts", None, {}),
    ("tricky_text", None, {}),
    ("reasoning", None, {"enable_thinking": False}),
    ("multi_turn", None, {"enable_thinking": True}),
    ("assistant_last", None, {}),
]


class GenerationBlock(Extension):
    """{% generation %}...{% endgeneration %} renders its body, as transformers' tracker does
    when no assistant mask is asked for."""

    tags = {"generation"}

    def parse(self, parser):
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        return nodes.Scope(body, lineno=lineno)


def hf_environment():
    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True,
                                        extensions=[GenerationBlock, jinja2.ext.loopcontrols])

    def raise_exception(message):
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False):
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators,
                          sort_keys=sort_keys)

    env.filters["tojson"] = tojson
    env.filters["from_json"] = json.loads
    env.globals["raise_exception"] = raise_exception
    date = datetime.datetime.strptime(FIXED_DATE, "%Y-%m-%d")
    env.globals["strftime_now"] = lambda fmt: date.strftime(fmt)
    return env


def templates(shared):
    """(name, source, bos, eos) for every shared template, with the BOS/EOS that
    expected.json recorded for its family."""
    expected = json.loads((shared / "chat-templates" / "expected.json").read_text())
    tokens = {r["template"]: (r["bos_token"], r["eos_token"]) for r in expected["results"]}
    out = []
    for name, (bos, eos) in sorted(tokens.items()):
        if "#" in name:
            path, key = name.split("#")
            source = json.loads((shared / path).read_text())[key]
        else:
            source = (shared / name).read_text()
        out.append((name, source, bos, eos))
    return out


def test_templates_render_like_jinja2(kinfer, shared):
    import subprocess
    env = hf_environment()
    requests, wants = [], []
    for name, source, bos, eos in templates(shared):
        compiled = env.from_string(source)
        for conv, tools, kwargs in VARIANTS:
            for agp in (False, True):
                variables = dict(messages=CONVERSATIONS[conv], add_generation_prompt=agp,
                                 bos_token=bos, eos_token=eos, **kwargs)
                if tools is not None:
                    variables["tools"] = tools
                try:
                    want = ("ok", compiled.render(**variables))
                except jinja2.exceptions.TemplateError as e:
                    # raise_exception() raises TemplateError itself; jinja2's own errors are
                    # subclasses (UndefinedError, SecurityError...).
                    want = ("raised", str(e)) if type(e) is jinja2.exceptions.TemplateError \
                        else ("error", str(e))
                except Exception as e:  # TypeError etc. from Python inside the template
                    want = ("error", str(e))
                req = {"template": source, "messages": CONVERSATIONS[conv],
                       "add_generation_prompt": agp, "bos_token": bos, "eos_token": eos,
                       "kwargs": kwargs, "now": FIXED_DATE}
                if tools is not None:
                    req["tools"] = tools
                requests.append(req)
                wants.append((name, conv, agp, bool(tools), kwargs, want))
    proc = subprocess.run([kinfer, "chat-template", "--jsonl"],
                          input="\n".join(json.dumps(r, ensure_ascii=False) for r in requests)
                          .encode("utf-8"), capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    got = [json.loads(line) for line in proc.stdout.decode("utf-8").split("\n") if line]
    assert len(got) == len(requests)
    mismatches = []
    for (name, conv, agp, tools, kwargs, (kind, text)), g in zip(wants, got):
        where = (name, conv, "gen" if agp else "", "tools" if tools else "", kwargs)
        if kind == "ok":
            if g.get("output") != text:
                mismatches.append((where, "want", text[:1500], "got", g))
        elif "error" not in g:
            mismatches.append((where, "jinja2 failed:", text, "kinfer rendered", g["output"][:300]))
        elif kind == "raised" and (not g.get("raised") or g["error"] != text):
            mismatches.append((where, "raise_exception", text, "kinfer", g))
    record("chat templates rendered against jinja2", len(templates(shared)))
    record("chat template renders compared with jinja2", len(requests))
    record("chat template renders where jinja2 raised (kinfer must fail too)",
           sum(1 for w in wants if w[5][0] != "ok"))
    assert not mismatches, mismatch_report(mismatches, limit=5)


def test_expected_json_renders(kinfer, shared):
    """The 293 recorded renders (and 7 recorded errors) of chat-templates/expected.json."""
    import subprocess
    expected = json.loads((shared / "chat-templates" / "expected.json").read_text())
    sources = {name: source for name, source, _, _ in templates(shared)}
    requests = [{"template": sources[r["template"]],
                 "messages": expected["conversations"][r["conversation"]],
                 "add_generation_prompt": r["add_generation_prompt"],
                 "bos_token": r["bos_token"], "eos_token": r["eos_token"], "now": FIXED_DATE}
                for r in expected["results"]]
    proc = subprocess.run([kinfer, "chat-template", "--jsonl"],
                          input="\n".join(json.dumps(r) for r in requests).encode("utf-8"),
                          capture_output=True, timeout=300)
    assert proc.returncode == 0, proc.stderr.decode()
    got = [json.loads(line) for line in proc.stdout.decode("utf-8").split("\n") if line]
    bad = [(r["template"], r["conversation"], r.get("error"), g) for r, g in
           zip(expected["results"], got)
           if ("error" in r) != ("error" in g) or ("output" in r and r["output"] != g["output"])]
    record("expected.json renders compared", len(requests))
    assert not bad, mismatch_report(bad)
