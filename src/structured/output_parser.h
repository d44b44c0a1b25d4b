// One completion's generated text split into reasoning, answer and tool calls: the reasoning
// parser first (when the model reasons), then the tool-call parser over the answer alone.
// Streaming pushes each text delta; a whole response pushes the whole text; both end with Finish.
#pragma once

#include <memory>
#include <optional>
#include <string_view>

#include "structured/output_delta.h"
#include "structured/reasoning_parser.h"
#include "structured/tool_parser.h"

namespace kinfer::structured {

struct OutputParserOptions {
  std::optional<ReasoningFormat> reasoning;  // none: no reasoning split
  bool prompt_opens_reasoning = false;
  std::optional<ToolFormat> tools;  // none: no tool-call parsing
  ToolParserOptions tool_options;

  bool active() const { return reasoning.has_value() || tools.has_value(); }
};

class OutputParser {
 public:
  explicit OutputParser(const OutputParserOptions& options);
  OutputDelta Push(std::string_view text);
  OutputDelta Finish();
  bool called() const { return tools_ && tools_->called(); }

 private:
  void Answer(std::string_view text, OutputDelta* out);
  std::optional<ReasoningParser> reasoning_;
  std::unique_ptr<ToolParser> tools_;
};

}  // namespace kinfer::structured
