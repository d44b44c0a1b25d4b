// Chat templates: every recorded render of ../shared/chat-templates/expected.json (made by Python
// jinja2 3.1.6 configured as transformers configures it), and jinja2 behaviors checked one by one
// (expected values from running the same snippet in jinja2): whitespace control, scoping, Python
// value printing, error positions, raise_exception, and the bounds on work and output.
#include "tokenizer/chat_template.h"

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>

#include "core/json.h"
#include "test_util.h"

namespace kinfer::tokenizer {
namespace {

using testing::ReadOrDie;
using testing::SharedPath;

std::chrono::system_clock::time_point FixedDate() {
  std::tm tm{};
  tm.tm_year = 2024 - 1900;
  tm.tm_mon = 6;
  tm.tm_mday = 26;
  tm.tm_isdst = -1;
  return std::chrono::system_clock::from_time_t(std::mktime(&tm));
}

Result<std::string> Render(const std::string& source, const std::string& messages_json = "[]",
                           ChatTemplateOptions opt = {}) {
  KINFER_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::Parse(source));
  return t.Render(OrderedJson::parse(messages_json), opt);
}

std::string RenderOk(const std::string& source, const std::string& messages_json = "[]",
                     ChatTemplateOptions opt = {}) {
  auto r = Render(source, messages_json, std::move(opt));
  EXPECT_TRUE(r.ok()) << source << "\n" << r.status().ToString();
  return r.ok() ? *r : std::string();
}

TEST(ChatTemplate, RendersEveryRecordedExpectedJsonCase) {
  auto doc = ParseJson(ReadOrDie(SharedPath("chat-templates/expected.json")), "expected.json");
  ASSERT_TRUE(doc.ok());
  const Json& d = *doc;
  int renders = 0, errors = 0;
  for (const auto& r : d["results"]) {
    const std::string name = r["template"].get<std::string>();
    std::string source;
    if (const size_t hash = name.find('#'); hash != std::string::npos) {
      auto cfg = ParseJson(ReadOrDie(SharedPath(name.substr(0, hash))), name);
      ASSERT_TRUE(cfg.ok());
      source = (*cfg)[name.substr(hash + 1)].get<std::string>();
    } else {
      source = ReadOrDie(SharedPath(name));
    }
    ChatTemplateOptions opt;
    opt.add_generation_prompt = r["add_generation_prompt"].get<bool>();
    opt.bos_token = r["bos_token"].get<std::string>();
    opt.eos_token = r["eos_token"].get<std::string>();
    opt.now = FixedDate();
    auto out = Render(source, d["conversations"][r["conversation"].get<std::string>()].dump(), opt);
    if (r.contains("error")) {
      EXPECT_FALSE(out.ok()) << name;
      ++errors;
    } else {
      ASSERT_TRUE(out.ok()) << name << ": " << out.status().ToString();
      EXPECT_EQ(*out, r["output"].get<std::string>()) << name;
      ++renders;
    }
  }
  EXPECT_EQ(renders, 293);
  EXPECT_EQ(errors, 7);
}

TEST(ChatTemplate, WhitespaceControlAsTransformersConfiguresJinja2) {
  // trim_blocks drops the newline after a block tag; lstrip_blocks the indent before one.
  EXPECT_EQ(RenderOk("{% if true %}\n  yes\n  {% endif %}\nafter"), "  yes\nafter");
  EXPECT_EQ(RenderOk("a  {%- if true -%}  b  {%- endif %}  c"), "ab  c");
  EXPECT_EQ(RenderOk("x {{- ' y ' -}} z"), "x y z");
  EXPECT_EQ(RenderOk("{# comment #}\nline\n"), "line");  // one trailing newline is dropped
  EXPECT_EQ(RenderOk("  {%+ if true %}k{% endif %}"), "  k");
  EXPECT_EQ(RenderOk("{% raw %}{{ not parsed }}{% endraw %}"), "{{ not parsed }}");
}

TEST(ChatTemplate, ScopingMatchesJinja2) {
  // A loop iteration has its own scope; if does not; namespaces carry state out.
  EXPECT_EQ(RenderOk("{% set x = 1 %}{% for i in range(2) %}{{ x }}{% set x = x + 1 %}{{ x }}"
                     "{% endfor %}{{ x }}"),
            "12121");
  EXPECT_EQ(RenderOk("{% set x = 1 %}{% if true %}{% set x = 2 %}{% endif %}{{ x }}"), "2");
  EXPECT_EQ(RenderOk("{% set ns = namespace(n=0) %}{% for i in [1,2,3] %}{% set ns.n = ns.n + i %}"
                     "{% endfor %}{{ ns.n }}"),
            "6");
  // Macros see their defining scope as it is when called, not the caller's loop variables.
  EXPECT_EQ(RenderOk("{% macro f() %}{{ x }}{{ y }}{% endmacro %}{% set x = 2 %}"
                     "{% for y in [7] %}{{ f() }}{% endfor %}"),
            "2");
  EXPECT_EQ(RenderOk("{% macro f(a, b=2) %}{{ a }}{{ b }}{{ varargs }}{{ kwargs }}{% endmacro %}"
                     "{{ f(1) }}{{ f(1, 3, 4, c=5) }}"),
            "12(){}13(4,){'c': 5}");
}

TEST(ChatTemplate, PrintsValuesAsPython) {
  EXPECT_EQ(RenderOk("{{ [1, 'a', none, true, 1.0] }}{{ {'k': (1,)} }}{{ 1e5 }}{{ 1.5e-7 }}"),
            "[1, 'a', None, True, 1.0]{'k': (1,)}100000.01.5e-07");
  EXPECT_EQ(RenderOk("{{ 7 // 2 }}{{ -7 // 2 }}{{ -7 % 3 }}{{ 1 / 2 }}{{ 2 ** 10 }}"),
            "3-4"
            "20.51024");
  EXPECT_EQ(RenderOk("{{ {'b': [1, 2.5, none]}|tojson }}{{ 'é'|tojson }}"),
            "{\"b\": [1, 2.5, null]}\"é\"");
  EXPECT_EQ(RenderOk("{{ 'abc'[::-1] }}{{ 'héllo'[1:3] }}{{ 'a,b'.split(',') }}"),
            "cbaél['a', 'b']");
  EXPECT_EQ(RenderOk("{{ x }}|{{ x|length }}|{{ x ~ 'a' }}|{{ x is defined }}"), "|0|a|False");
}

TEST(ChatTemplate, KeepsClientKeyOrderInTojson) {
  ChatTemplateOptions opt;
  opt.tools = OrderedJson::parse(R"([{"type": "function", "function": {"name": "f"}}])");
  EXPECT_EQ(RenderOk("{{ tools[0]|tojson }}", "[]", opt),
            R"({"type": "function", "function": {"name": "f"}})");
}

TEST(ChatTemplate, RaiseExceptionIsTheTemplatesMessage) {
  auto r = Render(
      "{% if messages[0].role == 'system' %}{{ raise_exception('System role not "
      "supported') }}{% endif %}",
      R"([{"role": "system", "content": "x"}])");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "System role not supported");
}

TEST(ChatTemplate, ErrorsCarryLineAndColumn) {
  auto parse = ChatTemplate::Parse("line one\n{% if x %}\n  {{ y | nosuchfilter }}\n{% endif %}");
  ASSERT_FALSE(parse.ok());
  EXPECT_EQ(parse.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(parse.status().message().find("line 3, column 10"), std::string::npos)
      << parse.status().message();
  EXPECT_NE(parse.status().message().find("nosuchfilter"), std::string::npos);

  auto unclosed = ChatTemplate::Parse("{% for m in messages %}{{ m }}");
  ASSERT_FALSE(unclosed.ok());
  EXPECT_NE(unclosed.status().message().find("endfor"), std::string::npos);

  auto runtime = Render("ok\n{{ messages[0].content.upper() }}\n{{ foo.bar }}",
                        R"([{"role": "user", "content": "hi"}])");
  ASSERT_FALSE(runtime.ok());
  EXPECT_NE(runtime.status().message().find("line 3, column 4"), std::string::npos)
      << runtime.status().message();
  EXPECT_NE(runtime.status().message().find("'foo' is undefined"), std::string::npos);

  auto unsafe = Render("{{ messages.append(1) }}");
  ASSERT_FALSE(unsafe.ok());
  EXPECT_NE(unsafe.status().message().find("unsafe"), std::string::npos);

  auto unsupported = ChatTemplate::Parse("{% include 'x' %}");
  ASSERT_FALSE(unsupported.ok());
  EXPECT_NE(unsupported.status().message().find("line 1, column 1"), std::string::npos);
}

TEST(ChatTemplate, WorkOutputAndRecursionAreBounded) {
  ChatTemplateOptions opt;
  opt.max_steps = 100000;
  auto loop = Render("{% for i in range(1000000) %}{% endfor %}", "[]", opt);
  ASSERT_FALSE(loop.ok());
  EXPECT_NE(loop.status().message().find("work limit"), std::string::npos);

  auto recursion = Render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}");
  ASSERT_FALSE(recursion.ok());
  EXPECT_NE(recursion.status().message().find("nested deeper"), std::string::npos);

  opt = ChatTemplateOptions();
  opt.max_output_bytes = 1 << 20;
  auto big =
      Render("{% set s = 'x' * 1000 %}{% for i in range(5000) %}{{ s }}{% endfor %}", "[]", opt);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("exceeded"), std::string::npos);

  auto huge_string = Render("{{ 'x' * 100000000000 }}");
  ASSERT_FALSE(huge_string.ok());

  // Work is counted in bytes and elements touched, not just in statements: a short loop over a
  // big string runs out of budget instead of copying megabytes a million times.
  opt = ChatTemplateOptions();
  opt.max_steps = 200000;
  auto copies = Render(
      "{% set ns = namespace(s='x' * 1000000) %}{% for i in range(1000000) %}"
      "{% set ns.s = ns.s[1:] + 'y' %}{% endfor %}",
      "[]", opt);
  ASSERT_FALSE(copies.ok());
  EXPECT_NE(copies.status().message().find("work limit"), std::string::npos);

  // A namespace that holds itself must not leak (ASan checks this) or hang printing.
  auto cycle = Render("{% set ns = namespace() %}{% set ns.me = ns %}{{ ns }}");
  EXPECT_FALSE(cycle.ok());
}

TEST(ChatTemplate, StrftimeNowUsesTheGivenClock) {
  ChatTemplateOptions opt;
  opt.now = FixedDate();
  EXPECT_EQ(RenderOk("{{ strftime_now('%d %b %Y') }}", "[]", opt), "26 Jul 2024");
}

}  // namespace
}  // namespace kinfer::tokenizer
