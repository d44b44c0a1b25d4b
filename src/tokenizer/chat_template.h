// Chat templates: the Jinja templates in tokenizer_config.json ("chat_template", a string or a
// list of named templates) and GGUF (tokenizer.chat_template), rendered the way Hugging Face
// transformers renders them (jinja2's ImmutableSandboxedEnvironment with trim_blocks and
// lstrip_blocks, loop controls, {% generation %}, raise_exception, strftime_now, tojson as
// json.dumps(ensure_ascii=False)).
//
//   KINFER_ASSIGN_OR_RETURN(ChatTemplate t, ChatTemplate::Parse(tok->chat_template()));
//   ChatTemplateOptions opt;
//   opt.add_generation_prompt = true;
//   opt.bos_token = tok->bos_token();
//   opt.eos_token = tok->eos_token();
//   KINFER_ASSIGN_OR_RETURN(std::string prompt, t.Render(messages, opt));
//
// Errors are kInvalidArgument. A template's raise_exception("msg") gives exactly "msg" (the
// server returns it as a 400); any other error says "chat template: line L, column C: ...".
// Rendering is bounded in work, output size and macro recursion, and a ChatTemplate can be
// rendered from many threads at once.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include <nlohmann/json.hpp>

#include "core/json.h"
#include "core/status.h"

namespace kinfer::tokenizer {

namespace jinja {
struct Template;
}

// JSON whose objects keep their key order, as Python dicts do: tools rendered with tojson then
// list their fields in the order the client sent them.
using OrderedJson = nlohmann::ordered_json;

struct ChatTemplateOptions {
  // The request's tools; null leaves `tools` undefined in the template, as transformers does.
  OrderedJson tools;
  bool add_generation_prompt = false;
  std::string bos_token;
  std::string eos_token;
  // More template variables (chat_template_kwargs: enable_thinking, documents, ...).
  OrderedJson extra_context = OrderedJson::object();
  // The clock strftime_now() reads; now when unset (tests fix it).
  std::optional<std::chrono::system_clock::time_point> now;
  // Bounds on one render.
  size_t max_output_bytes = size_t{16} << 20;
  int64_t max_steps = 5'000'000;
};

class ChatTemplate {
 public:
  // Parses `source`; errors carry the line and column ("chat template: line 3, column 12: ...").
  static Result<ChatTemplate> Parse(std::string source);

  // Renders with `messages` (a JSON array of message objects). A kinfer::Json's keys are
  // sorted; pass an OrderedJson to keep the client's key order.
  Result<std::string> Render(const Json& messages, const ChatTemplateOptions& options) const;
  Result<std::string> Render(const OrderedJson& messages, const ChatTemplateOptions& options) const;

  const std::string& source() const { return source_; }

 private:
  ChatTemplate(std::string source, std::shared_ptr<const jinja::Template> ast)
      : source_(std::move(source)), ast_(std::move(ast)) {}

  std::string source_;
  std::shared_ptr<const jinja::Template> ast_;
};

}  // namespace kinfer::tokenizer
