// Tool calls in generated text, in the formats that open models write them, turned into OpenAI's
// tool calls as the text streams: answer text passes through as content, a call's first delta
// carries its id and name (arguments ""), later ones its argument text. Text that may be the start
// of a call marker is held back until it is known, so a half tag never reaches the content. A
// whole response is the same deltas concatenated (one code path for both).
//
//   auto p = MakeToolParser(ToolFormat::kHermes, tools);
//   OutputDelta d;
//   p->Push("Sure.<tool_ca", &d);   // d.content == "Sure."
//   p->Push("ll>{\"name\": \"f\", \"arguments\": {}}</tool_call>", &d);
//   p->Finish(&d);                  // d.tool_calls: first delta {name f}, then "{}"
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "core/json.h"
#include "structured/output_delta.h"

namespace kinfer::structured {

enum class ToolFormat {
  kHermes,      // <tool_call>{"name": ..., "arguments": {...}}</tool_call> (Hermes, Qwen2.5, Qwen3)
  kLlama3Json,  // {"name": ..., "parameters": {...}} (Llama 3.1-3.3), maybe after <|python_tag|>
  kMistral,     // [TOOL_CALLS][{...}] or [TOOL_CALLS]name[ARGS]{...}; 9-character ids
  kQwen3Coder,  // <tool_call><function=name><parameter=p>value</parameter></function></tool_call>
  kPythonic,    // [f(a=1), g(b="x")] (Llama 3.2/4 pythonic)
  // Not a model format: what Kinfer constrains the output to for tool_choice "required" and a
  // named tool (see ToolCallSchema).
  kRequiredJson,  // [{"name": ..., "parameters": {...}}, ...]
  kNamed,         // the whole output is the named function's arguments
};

// Parser names as vLLM's --tool-call-parser spells them: hermes, llama3_json, mistral,
// qwen3_coder, pythonic.
std::optional<ToolFormat> ToolFormatFromName(std::string_view name);
std::string_view ToolFormatName(ToolFormat f);
// The format a chat template renders tool calls in, or nullopt when it shows none we know.
std::optional<ToolFormat> DetectToolFormat(std::string_view chat_template);

struct ToolParserOptions {
  // Function name -> its parameters' JSON schema (Qwen3-Coder's values are typed by it).
  std::map<std::string, Json> parameters;
  bool parallel = true;  // false: calls after the first are dropped
  std::string named;     // kNamed: the function
};

class ToolParser {
 public:
  virtual ~ToolParser() = default;
  // Feeds the next piece of answer text; appends what is now certain to `out`.
  virtual void Push(std::string_view text, OutputDelta* out) = 0;
  // The end of the output: releases what was held back.
  virtual void Finish(OutputDelta* out) = 0;
  // Whether any tool call was emitted.
  virtual bool called() const = 0;
};

std::unique_ptr<ToolParser> MakeToolParser(ToolFormat format, ToolParserOptions options);

// A new tool call id: "call_" and 24 random letters and digits, or 9 of them for Mistral's
// format (its template rejects others).
std::string NewToolCallId(ToolFormat format);

}  // namespace kinfer::structured
