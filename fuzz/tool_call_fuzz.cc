// libFuzzer target: the tool-call parsers (every format), the reasoning parser, the incremental
// JSON scanner and the pythonic call parser under them, on arbitrary model output. Besides never
// crashing or hanging, the split must not depend on how the text is cut into stream deltas: the
// output fed whole and fed in small pieces gives the same content, reasoning and calls.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "structured/output_parser.h"

namespace {

using namespace kinfer::structured;

struct Result {
  std::string content, reasoning;
  std::vector<ToolCall> calls;
};

Result Run(const OutputParserOptions& o, std::string_view text, size_t piece) {
  OutputParser p(o);
  Result r;
  for (size_t i = 0; i < text.size(); i += piece) {
    Accumulate(p.Push(text.substr(i, piece)), &r.content, &r.reasoning, &r.calls);
  }
  Accumulate(p.Finish(), &r.content, &r.reasoning, &r.calls);
  return r;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2 || size > 1 << 14) return 0;
  const uint8_t sel = data[0], cut = data[1];
  std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);
  static const ToolFormat kFormats[] = {ToolFormat::kHermes,   ToolFormat::kLlama3Json,
                                        ToolFormat::kMistral,  ToolFormat::kQwen3Coder,
                                        ToolFormat::kPythonic, ToolFormat::kRequiredJson,
                                        ToolFormat::kNamed};
  OutputParserOptions o;
  if (sel & 0x80) {
    o.reasoning = (sel & 0x40) ? ReasoningFormat::kQwen3 : ReasoningFormat::kDeepSeekR1;
    o.prompt_opens_reasoning = sel & 0x20;
  }
  if ((sel & 0x0F) < 7) {
    o.tools = kFormats[sel & 0x0F];
    o.tool_options.parallel = !(sel & 0x10);
    o.tool_options.named = "f";
    o.tool_options.parameters["get_weather"] = kinfer::Json::parse(
        R"({"type":"object","properties":{"city":{"type":"string"},"days":{"type":"integer"},
            "hot":{"type":"boolean"},"tags":{"type":"array"}}})");
  }
  const Result whole = Run(o, text, text.size() + 1);
  const Result pieces = Run(o, text, 1 + cut % 7);
  bool same = whole.content == pieces.content && whole.reasoning == pieces.reasoning &&
              whole.calls.size() == pieces.calls.size();
  for (size_t i = 0; same && i < whole.calls.size(); ++i) {
    same = whole.calls[i].name == pieces.calls[i].name &&
           whole.calls[i].arguments == pieces.calls[i].arguments;
  }
  if (!same) std::abort();
  return 0;
}
