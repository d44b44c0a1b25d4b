// What the output parsers make of generated text: answer text, reasoning text and tool calls,
// as deltas that a stream sends one after another and a full response concatenates.
#pragma once

#include <string>
#include <vector>

namespace kinfer::structured {

struct ToolCallDelta {
  int index = 0;          // which call of the response
  std::string id;         // set on the call's first delta only
  std::string name;       // likewise
  std::string arguments;  // argument text to append (the first delta: "")
  bool first = false;     // the call's first delta: carries id, type and name
};

struct OutputDelta {
  std::string content;
  std::string reasoning;
  std::vector<ToolCallDelta> tool_calls;

  bool empty() const { return content.empty() && reasoning.empty() && tool_calls.empty(); }
};

// A whole tool call, as a non-streamed response shows it.
struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;  // JSON text
};

// Adds `d` to a response built from deltas (content, reasoning, and calls by index).
void Accumulate(const OutputDelta& d, std::string* content, std::string* reasoning,
                std::vector<ToolCall>* calls);

}  // namespace kinfer::structured
