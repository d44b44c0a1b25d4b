// libFuzzer target: chat template parsing and rendering must reject any template with a Status,
// never crash, and stay within the work and output bounds (libFuzzer's timeout and RSS limit
// catch a template that does not).
#include <cstddef>
#include <cstdint>
#include <string>

#include "tokenizer/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string source(reinterpret_cast<const char*>(data), size);
  auto t = kinfer::tokenizer::ChatTemplate::Parse(source);
  if (!t.ok()) return 0;
  static const auto messages = kinfer::tokenizer::OrderedJson::parse(R"([
      {"role": "system", "content": "You are helpful."},
      {"role": "user", "content": "Hi <b>there</b> 👋"},
      {"role": "assistant", "content": null, "tool_calls": [{"type": "function",
        "function": {"name": "f", "arguments": {"x": [1, 2.5, true, null]}}}]},
      {"role": "tool", "content": "42"}])");
  kinfer::tokenizer::ChatTemplateOptions opt;
  opt.add_generation_prompt = size % 2 == 0;
  opt.bos_token = "<s>";
  opt.eos_token = "</s>";
  opt.tools = kinfer::tokenizer::OrderedJson::parse(
      R"([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}])");
  opt.max_steps = 200000;
  opt.max_output_bytes = 1 << 20;
  (void)t->Render(messages, opt);
  return 0;
}
