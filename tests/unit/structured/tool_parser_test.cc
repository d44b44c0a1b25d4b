// The tool-call and reasoning parsers on model outputs in each format, as the models' chat
// templates (../shared/chat-templates) render an assistant's tool calls and as the models' cards
// show them: the expected calls are what those templates would render back. Every case is also
// streamed in pieces of 1..7 bytes and must give the same result, without a half marker in the
// content at any point.
#include "structured/output_parser.h"

#include <gtest/gtest.h>
#include <random>

#include "structured/gbnf.h"

namespace kinfer::structured {
namespace {

struct Parsed {
  std::string content, reasoning;
  std::vector<ToolCall> calls;
  std::vector<OutputDelta> deltas;
};

Parsed Feed(const OutputParserOptions& o, std::string_view text, size_t piece) {
  OutputParser p(o);
  Parsed r;
  for (size_t i = 0; i < text.size(); i += piece) {
    r.deltas.push_back(p.Push(text.substr(i, piece)));
    Accumulate(r.deltas.back(), &r.content, &r.reasoning, &r.calls);
  }
  r.deltas.push_back(p.Finish());
  Accumulate(r.deltas.back(), &r.content, &r.reasoning, &r.calls);
  return r;
}

struct Expect {
  Expect(std::string c, std::vector<std::pair<std::string, std::string>> k, std::string r = "")
      : content(std::move(c)), calls(std::move(k)), reasoning(std::move(r)) {}
  std::string content;
  std::vector<std::pair<std::string, std::string>> calls;  // name, arguments (JSON text)
  std::string reasoning;
};

void Check(const OutputParserOptions& o, std::string_view text, const Expect& want,
           const char* markers_never_in_content = "<[") {
  for (size_t piece : {text.size() + 1, size_t{1}, size_t{2}, size_t{3}, size_t{7}}) {
    SCOPED_TRACE(::testing::Message() << "piece " << piece << ": " << text);
    Parsed r = Feed(o, text, piece);
    EXPECT_EQ(r.content, want.content);
    EXPECT_EQ(r.reasoning, want.reasoning);
    ASSERT_EQ(r.calls.size(), want.calls.size());
    for (size_t i = 0; i < want.calls.size(); ++i) {
      EXPECT_EQ(r.calls[i].name, want.calls[i].first);
      EXPECT_EQ(r.calls[i].arguments, want.calls[i].second);
      EXPECT_FALSE(r.calls[i].id.empty());
    }
    for (const OutputDelta& d : r.deltas) {
      for (const ToolCallDelta& t : d.tool_calls) {
        if (t.first) {
          EXPECT_EQ(t.arguments, "") << "the first delta carries no arguments";
        }
      }
      // A delta's content never ends inside a marker the parser is still deciding on.
      if (!want.calls.empty() &&
          d.content.find_first_of(markers_never_in_content) != std::string::npos) {
        ADD_FAILURE() << "marker text leaked into content: " << d.content;
      }
    }
  }
}

OutputParserOptions Tools(ToolFormat f) {
  OutputParserOptions o;
  o.tools = f;
  o.tool_options.parameters["get_weather"] = Json::parse(
      R"({"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"},
          "metric":{"type":"boolean"},"hours":{"type":"array"}}})");
  return o;
}

TEST(ToolParser, HermesQwen) {
  // Qwen2.5 / Qwen3 / Hermes templates: "<tool_call>\n" + tojson(call) + "\n</tool_call>".
  Check(Tools(ToolFormat::kHermes),
        "I'll look that up.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": "
        "\"Paris\", \"days\": 3}}\n</tool_call>\n<tool_call>\n{\"name\": \"get_time\", "
        "\"arguments\": {}}\n</tool_call>",
        {"I'll look that up.\n",
         {{"get_weather", R"({"city": "Paris", "days": 3})"}, {"get_time", "{}"}}});
  // Plain answers, and text that only looks like a tag, stay content.
  Check(Tools(ToolFormat::kHermes), "Use <tool> tags like <tool_c.",
        {"Use <tool> tags like <tool_c.", {}});
  // Arguments before the name, and a call cut off by max_tokens.
  Check(Tools(ToolFormat::kHermes),
        "<tool_call>{\"arguments\": {\"city\": \"Oslo\"}, \"name\": \"get_weather\"}</tool_call>",
        {"", {{"get_weather", R"({"city": "Oslo"})"}}});
  Check(Tools(ToolFormat::kHermes), "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"ci",
        {"", {{"get_weather", R"({"ci)"}}});
  // Not JSON inside the tags: the text is content.
  Check(Tools(ToolFormat::kHermes), "<tool_call>oops</tool_call>",
        {"<tool_call>oops</tool_call>", {}});
}

TEST(ToolParser, Llama3Json) {
  // Llama 3.1-3.3 templates: {"name": ..., "parameters": ...}; multiple calls joined by "; ".
  Check(Tools(ToolFormat::kLlama3Json),
        "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}",
        {"", {{"get_weather", R"({"city": "Paris"})"}}});
  Check(Tools(ToolFormat::kLlama3Json),
        "<|python_tag|>{\"name\": \"a\", \"parameters\": {\"x\": 1}}; {\"name\": \"b\", "
        "\"parameters\": {}}",
        {"", {{"a", R"({"x": 1})"}, {"b", "{}"}}});
  Check(Tools(ToolFormat::kLlama3Json), "The weather is {sunny}.", {"The weather is {sunny}.", {}});
  Check(Tools(ToolFormat::kLlama3Json), "{\"temperature\": 21}", {"{\"temperature\": 21}", {}});
}

TEST(ToolParser, Mistral) {
  // Mistral 7B v0.3 / Nemo: [TOOL_CALLS] + a JSON array of calls.
  Check(Tools(ToolFormat::kMistral),
        "[TOOL_CALLS] [{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}, "
        "{\"name\": \"get_time\", \"arguments\": {\"tz\": \"CET\"}}]",
        {"", {{"get_weather", R"({"city": "Paris"})"}, {"get_time", R"({"tz": "CET"})"}}});
  // Mistral Small 3.2 / Devstral: [TOOL_CALLS]name[ARGS]{...}, maybe with [CALL_ID].
  Check(Tools(ToolFormat::kMistral),
        "Checking.[TOOL_CALLS]get_weather[ARGS]{\"city\": \"Paris\"}[TOOL_CALLS]get_time[CALL_ID]"
        "a1b2c3d4e[ARGS]{}",
        {"Checking.", {{"get_weather", R"({"city": "Paris"})"}, {"get_time", "{}"}}});
  Check(Tools(ToolFormat::kMistral), "No tools [TOOL needed.", {"No tools [TOOL needed.", {}});
  EXPECT_EQ(NewToolCallId(ToolFormat::kMistral).size(), 9u);
}

TEST(ToolParser, Qwen3CoderXml) {
  // Qwen3-Coder's template: <function=NAME> and one <parameter=P> block per argument.
  Check(Tools(ToolFormat::kQwen3Coder),
        "Sure.\n<tool_call>\n<function=get_weather>\n<parameter=city>\nNew York\n</parameter>\n"
        "<parameter=days>\n3\n</parameter>\n<parameter=metric>\ntrue\n</parameter>\n"
        "<parameter=hours>\n[1, 2]\n</parameter>\n</function>\n</tool_call>",
        {"Sure.\n",
         {{"get_weather", R"({"city": "New York", "days": 3, "metric": true, "hours": [1,2]})"}}});
  Check(Tools(ToolFormat::kQwen3Coder),
        "<tool_call>\n<function=get_time>\n</function>\n</tool_call>", {"", {{"get_time", "{}"}}});
  // A parameter whose schema says integer but whose value is not one stays a string.
  Check(Tools(ToolFormat::kQwen3Coder),
        "<function=get_weather>\n<parameter=days>\nthree\n</parameter>\n</function>",
        {"", {{"get_weather", R"({"days": "three"})"}}});
}

TEST(ToolParser, Pythonic) {
  Check(Tools(ToolFormat::kPythonic),
        "[get_weather(city='San Francisco', days=3, metric=True), get_time(tz=\"UTC\", "
        "offsets=[1, -2.5], extra=None)]",
        {"",
         {{"get_weather", R"({"city":"San Francisco","days":3,"metric":true})"},
          {"get_time", R"({"tz":"UTC","offsets":[1,-2.5],"extra":null})"}}});
  Check(Tools(ToolFormat::kPythonic), "[1, 2, 3] are numbers.", {"[1, 2, 3] are numbers.", {}});
  Check(Tools(ToolFormat::kPythonic), "Hello [world]", {"Hello [world]", {}});
}

TEST(ToolParser, RequiredNamedAndParallel) {
  Check(
      Tools(ToolFormat::kRequiredJson),
      R"([{"name": "get_weather", "parameters": {"city": "Rome"}}, {"name": "get_time", "parameters": {}}])",
      {"", {{"get_weather", R"({"city": "Rome"})"}, {"get_time", "{}"}}});
  OutputParserOptions named = Tools(ToolFormat::kNamed);
  named.tool_options.named = "get_weather";
  Check(named, R"({"city": "Rome"})", {"", {{"get_weather", R"({"city": "Rome"})"}}});
  OutputParserOptions one = Tools(ToolFormat::kHermes);
  one.tool_options.parallel = false;
  Check(one,
        "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call><tool_call>{\"name\": \"b\", "
        "\"arguments\": {}}</tool_call>",
        {"", {{"a", "{}"}}});
}

TEST(ReasoningParser, DeepSeekR1AndQwen3) {
  OutputParserOptions r1;
  r1.reasoning = ReasoningFormat::kDeepSeekR1;
  // R1's template opens <think> in the prompt; the output starts inside it.
  Check(r1, "Okay, 2+2 is 4.\n</think>\n\nThe answer is 4.",
        {"The answer is 4.", {}, "Okay, 2+2 is 4."});
  Check(r1, "<think>\nHmm.\n</think>\n\nYes.", {"Yes.", {}, "Hmm."});
  Check(r1, "Still thinking when cut off", {"", {}, "Still thinking when cut off"});
  OutputParserOptions q3;
  q3.reasoning = ReasoningFormat::kQwen3;
  Check(q3, "<think>\nLet me see.\n</think>\n\nIt is 4.", {"It is 4.", {}, "Let me see."});
  // enable_thinking=false renders an empty think block in the prompt: the output is all answer.
  Check(q3, "It is 4.", {"It is 4.", {}, ""});
  q3.prompt_opens_reasoning = PromptOpensReasoning("<|im_start|>assistant\n<think>\n");
  EXPECT_TRUE(q3.prompt_opens_reasoning);
  EXPECT_FALSE(PromptOpensReasoning("<|im_start|>assistant\n<think>\n\n</think>\n\n"));
  Check(q3, "Let me see.\n</think>\n\nIt is 4.", {"It is 4.", {}, "Let me see."});
  // Tool calls come from the answer only.
  OutputParserOptions both = Tools(ToolFormat::kHermes);
  both.reasoning = ReasoningFormat::kQwen3;
  Check(
      both,
      "<think>\nI could write <tool_call> here.\n</think>\n\n<tool_call>\n{\"name\": \"get_time\", "
      "\"arguments\": {}}\n</tool_call>",
      {"", {{"get_time", "{}"}}, "I could write <tool_call> here."}, "");
}

TEST(Detect, FormatsFromRealTemplates) {
  EXPECT_EQ(DetectToolFormat("{{- '<tool_call>\\n' }}"), ToolFormat::kHermes);
  EXPECT_EQ(DetectToolFormat("<tool_call>\n<function=x>\n<parameter=y>"), ToolFormat::kQwen3Coder);
  EXPECT_EQ(DetectToolFormat("{{ '[TOOL_CALLS]' }}"), ToolFormat::kMistral);
  EXPECT_EQ(DetectToolFormat("<|python_tag|>"), ToolFormat::kLlama3Json);
  EXPECT_EQ(DetectToolFormat("{{ messages }}"), std::nullopt);
  EXPECT_EQ(DetectReasoningFormat("{% if enable_thinking %}</think>"), ReasoningFormat::kQwen3);
  EXPECT_EQ(DetectReasoningFormat("<think>\\n...</think>"), ReasoningFormat::kDeepSeekR1);
}

TEST(Gbnf, ConvertsToLark) {
  auto lark = GbnfToLark(
      "root ::= greeting \" \" name\ngreeting ::= \"hi\" | \"hello\"\n"
      "name ::= [A-Z] [a-z]+ # a name\n");
  ASSERT_TRUE(lark.ok()) << lark.status().ToString();
  EXPECT_EQ(*lark,
            "start: root\nroot: greeting \" \" name\ngreeting: \"hi\" | \"hello\"\n"
            "name: /[A-Z]/ (/[a-z]/)+\n");
  auto multi = GbnfToLark("root ::= (\n  \"a\" |\n  \"b\"\n){2,3} x-y?\nx-y ::= [^\\n\"]");
  ASSERT_TRUE(multi.ok()) << multi.status().ToString();
  EXPECT_EQ(*multi, "start: root\nroot: ((\"a\" | \"b\")){2,3} (x_y)?\nx_y: /[^\\x{A}\\x{22}]/\n");
  auto bad = GbnfToLark("root ::= \"a\"\nroot ::= \"b\"");
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("line 2"), std::string::npos) << bad.status().message();
  EXPECT_FALSE(GbnfToLark("root ::= (((").ok());
  EXPECT_FALSE(GbnfToLark("other ::= \"a\"").ok());  // no root
}

}  // namespace
}  // namespace kinfer::structured

namespace kinfer::structured {
namespace {

// The property the tool_call_fuzz target checks, on random texts made of the formats' own
// fragments (so markers, JSON and XML pieces meet at every cut): whole and piecewise agree.
TEST(ToolParser, StreamingDoesNotDependOnHowTheTextIsCut) {
  static const char* kPieces[] = {"<tool_call>",
                                  "</tool_call>",
                                  "{",
                                  "}",
                                  "\"name\"",
                                  "\"arguments\"",
                                  "\"parameters\"",
                                  ": ",
                                  "\"get_weather\"",
                                  "\"x\"",
                                  "1",
                                  ", ",
                                  "[",
                                  "]",
                                  "(",
                                  ")",
                                  "[TOOL_CALLS]",
                                  "[ARGS]",
                                  "[CALL_ID]",
                                  "<|python_tag|>",
                                  ";",
                                  "<function=",
                                  "<parameter=",
                                  ">",
                                  "</parameter>",
                                  "</function>",
                                  "get_weather",
                                  "city",
                                  "Paris",
                                  "\n",
                                  " ",
                                  "<think>",
                                  "</think>",
                                  "a='b'",
                                  "True",
                                  "\\",
                                  "\"",
                                  "<",
                                  "</",
                                  "[TOOL",
                                  "<tool"};
  std::mt19937 rng(42);
  const ToolFormat formats[] = {ToolFormat::kHermes,   ToolFormat::kLlama3Json,
                                ToolFormat::kMistral,  ToolFormat::kQwen3Coder,
                                ToolFormat::kPythonic, ToolFormat::kRequiredJson,
                                ToolFormat::kNamed};
  for (int i = 0; i < 4000; ++i) {
    std::string text;
    const int n = 1 + static_cast<int>(rng() % 24);
    for (int k = 0; k < n; ++k) text += kPieces[rng() % (sizeof(kPieces) / sizeof(kPieces[0]))];
    OutputParserOptions o = Tools(formats[rng() % 7]);
    o.tool_options.named = "f";
    o.tool_options.parallel = rng() % 2;
    if (rng() % 3 == 0) {
      o.reasoning = rng() % 2 ? ReasoningFormat::kQwen3 : ReasoningFormat::kDeepSeekR1;
      o.prompt_opens_reasoning = rng() % 2;
    }
    const Parsed whole = Feed(o, text, text.size() + 1);
    const size_t piece = 1 + rng() % 6;
    const Parsed cut = Feed(o, text, piece);
    SCOPED_TRACE(::testing::Message()
                 << "format " << ToolFormatName(*o.tools) << ", piece " << piece << ": " << text);
    ASSERT_EQ(whole.content, cut.content);
    ASSERT_EQ(whole.reasoning, cut.reasoning);
    ASSERT_EQ(whole.calls.size(), cut.calls.size());
    for (size_t c = 0; c < whole.calls.size(); ++c) {
      ASSERT_EQ(whole.calls[c].name, cut.calls[c].name);
      ASSERT_EQ(whole.calls[c].arguments, cut.calls[c].arguments);
    }
  }
}

}  // namespace
}  // namespace kinfer::structured
