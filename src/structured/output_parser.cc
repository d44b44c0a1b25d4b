#include "structured/output_parser.h"

namespace kinfer::structured {

OutputParser::OutputParser(const OutputParserOptions& options) {
  if (options.reasoning) reasoning_.emplace(*options.reasoning, options.prompt_opens_reasoning);
  if (options.tools) tools_ = MakeToolParser(*options.tools, options.tool_options);
}

void OutputParser::Answer(std::string_view text, OutputDelta* out) {
  if (tools_) {
    tools_->Push(text, out);
  } else {
    out->content.append(text);
  }
}

OutputDelta OutputParser::Push(std::string_view text) {
  OutputDelta out;
  if (reasoning_) {
    std::string content;
    reasoning_->Push(text, &out.reasoning, &content);
    if (!content.empty()) Answer(content, &out);
  } else {
    Answer(text, &out);
  }
  return out;
}

OutputDelta OutputParser::Finish() {
  OutputDelta out;
  if (reasoning_) {
    std::string content;
    reasoning_->Finish(&out.reasoning, &content);
    if (!content.empty()) Answer(content, &out);
  }
  if (tools_) tools_->Finish(&out);
  return out;
}

}  // namespace kinfer::structured
