#include "tokenizer/chat_template.h"

#include <fmt/format.h>

#include "tokenizer/jinja/error.h"
#include "tokenizer/jinja/interpreter.h"
#include "tokenizer/jinja/parser.h"

namespace kinfer::tokenizer {
namespace {

Status TemplateError(const jinja::Error& e) {
  if (e.raised()) return Status(StatusCode::kInvalidArgument, e.message());
  if (e.has_location()) {
    return InvalidArgumentError("chat template: line {}, column {}: {}", e.line(), e.column(),
                                e.message());
  }
  return InvalidArgumentError("chat template: {}", e.message());
}

}  // namespace

Result<ChatTemplate> ChatTemplate::Parse(std::string source) {
  try {
    std::shared_ptr<const jinja::Template> ast = jinja::Parse(source);
    return ChatTemplate(std::move(source), std::move(ast));
  } catch (const jinja::Error& e) {
    return TemplateError(e);
  } catch (const std::exception& e) {
    return InternalError("chat template: {}", e.what());
  }
}

Result<std::string> ChatTemplate::Render(const Json& messages,
                                         const ChatTemplateOptions& options) const {
  return Render(OrderedJson(messages), options);
}

Result<std::string> ChatTemplate::Render(const OrderedJson& messages,
                                         const ChatTemplateOptions& options) const {
  try {
    std::vector<std::pair<std::string, jinja::Value>> vars;
    vars.emplace_back("messages", jinja::FromJson(messages));
    vars.emplace_back("add_generation_prompt", jinja::Value(options.add_generation_prompt));
    vars.emplace_back("bos_token", jinja::Value(options.bos_token));
    vars.emplace_back("eos_token", jinja::Value(options.eos_token));
    if (!options.tools.is_null()) vars.emplace_back("tools", jinja::FromJson(options.tools));
    if (options.extra_context.is_object()) {
      for (const auto& [k, v] : options.extra_context.items()) {
        vars.emplace_back(k, jinja::FromJson(v));
      }
    }
    jinja::Limits limits;
    limits.max_output_bytes = options.max_output_bytes;
    limits.max_steps = options.max_steps;
    jinja::Interpreter in(*ast_, limits, options.now.value_or(std::chrono::system_clock::now()));
    return in.Render(vars);
  } catch (const jinja::Error& e) {
    return TemplateError(e);
  } catch (const std::bad_alloc&) {
    return ResourceExhaustedError("chat template: out of memory");
  } catch (const std::exception& e) {
    return InternalError("chat template: {}", e.what());
  }
}

}  // namespace kinfer::tokenizer
