// `kinfer chat-template`: render a model's chat template (or a template file) for a conversation,
// as the server will before tokenizing. Exits non-zero with the template's message when the
// template raises (e.g. a role it does not support).
//
//   kinfer chat-template --model SmolLM2.gguf --add-generation-prompt
//       --messages '[{"role":"user","content":"Hi"}]'
//   kinfer chat-template --template t.jinja --messages @conversation.json --tools @tools.json
//
// --jsonl renders many requests in one process (for the compatibility tests): each stdin line is
// {"template": SOURCE, "messages": [...], "tools": [...], "add_generation_prompt": b,
//  "bos_token": "...", "eos_token": "...", "kwargs": {...}} and each stdout line is
// {"output": "..."} or {"error": "...", "raised": b}.
#include <fmt/format.h>

#include <chrono>
#include <ctime>
#include <iomanip>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "cli/commands.h"
#include "core/json.h"
#include "core/mapped_file.h"
#include "tokenizer/chat_template.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::cli {
namespace {

using tokenizer::OrderedJson;

struct ChatTemplateCliOptions {
  std::string model;
  std::string template_file;
  std::string template_name;
  std::string messages;
  std::string tools;
  std::string kwargs;
  std::string bos_token;
  std::string eos_token;
  std::string now;
  bool add_generation_prompt = false;
  bool jsonl = false;
};

// JSON text, or @FILE, or - for stdin.
Result<OrderedJson> ReadJsonArg(const std::string& arg, const char* what) {
  std::string text = arg;
  if (arg == "-") {
    std::stringstream ss;
    ss << std::cin.rdbuf();
    text = ss.str();
  } else if (!arg.empty() && arg[0] == '@') {
    KINFER_ASSIGN_OR_RETURN(text, ReadFileToString(arg.substr(1)));
  }
  KINFER_RETURN_IF_ERROR(ParseJson(text, what).status());  // validates, bounds nesting
  return OrderedJson::parse(text, nullptr, false);
}

// "2024-07-26" or "2024-07-26T12:30:00" (local time), for reproducible strftime_now().
Result<std::chrono::system_clock::time_point> ParseNow(const std::string& s) {
  std::tm tm{};
  std::istringstream in(s);
  in >> std::get_time(&tm, s.size() > 10 ? "%Y-%m-%dT%H:%M:%S" : "%Y-%m-%d");
  if (in.fail()) return InvalidArgumentError("--now '{}': expected YYYY-MM-DD[THH:MM:SS]", s);
  tm.tm_isdst = -1;
  return std::chrono::system_clock::from_time_t(std::mktime(&tm));
}

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

Json RenderLine(const std::string& line) {
  if (!ParseJson(line, "stdin").ok()) return Json{{"error", "stdin: not valid JSON"}};
  const OrderedJson req = OrderedJson::parse(line, nullptr, false);
  if (!req.is_object() || !req.contains("template") || !req["template"].is_string()) {
    return Json{{"error", "expected an object with a \"template\" string"}};
  }
  auto tmpl = tokenizer::ChatTemplate::Parse(req["template"].get<std::string>());
  if (!tmpl.ok()) return Json{{"error", tmpl.status().message()}, {"raised", false}};
  tokenizer::ChatTemplateOptions opt;
  opt.add_generation_prompt = req.value("add_generation_prompt", false);
  opt.bos_token = req.value("bos_token", "");
  opt.eos_token = req.value("eos_token", "");
  if (req.contains("tools")) opt.tools = req["tools"];
  if (req.contains("kwargs") && req["kwargs"].is_object()) opt.extra_context = req["kwargs"];
  if (req.contains("now") && req["now"].is_string()) {
    auto now = ParseNow(req["now"].get<std::string>());
    if (!now.ok()) return Json{{"error", now.status().message()}};
    opt.now = *now;
  }
  const OrderedJson messages = req.contains("messages") ? req["messages"] : OrderedJson::array();
  auto out = tmpl->Render(messages, opt);
  if (!out.ok()) {
    const bool raised = out.status().message().rfind("chat template:", 0) != 0;
    return Json{{"error", out.status().message()}, {"raised", raised}};
  }
  return Json{{"output", *out}};
}

int RunChatTemplate(const ChatTemplateCliOptions& o) {
  if (o.jsonl) {
    std::ios::sync_with_stdio(false);
    std::string line;
    while (std::getline(std::cin, line)) {
      if (line.empty()) continue;
      std::cout << Dump(RenderLine(line)) << '\n';
      std::cout.flush();
    }
    return 0;
  }
  std::string source;
  tokenizer::ChatTemplateOptions opt;
  if (!o.model.empty()) {
    auto tok = tokenizer::Tokenizer::Load(o.model);
    if (!tok.ok()) {
      fmt::print(stderr, "error: {}\n", tok.status().message());
      return 1;
    }
    const std::string* t = (*tok)->FindChatTemplate(o.template_name);
    if (t == nullptr) {
      fmt::print(stderr, "error: {} has no chat template{}\n", o.model,
                 o.template_name.empty() ? "" : " named '" + o.template_name + "'");
      return 1;
    }
    source = *t;
    opt.bos_token = (*tok)->bos_token();
    opt.eos_token = (*tok)->eos_token();
  } else {
    auto text = ReadFileToString(o.template_file);
    if (!text.ok()) {
      fmt::print(stderr, "error: {}\n", text.status().message());
      return 1;
    }
    source = std::move(*text);
  }
  if (!o.bos_token.empty()) opt.bos_token = o.bos_token;
  if (!o.eos_token.empty()) opt.eos_token = o.eos_token;
  opt.add_generation_prompt = o.add_generation_prompt;
  auto messages = ReadJsonArg(o.messages, "--messages");
  if (!messages.ok()) {
    fmt::print(stderr, "error: {}\n", messages.status().message());
    return 2;
  }
  if (!o.tools.empty()) {
    auto tools = ReadJsonArg(o.tools, "--tools");
    if (!tools.ok()) {
      fmt::print(stderr, "error: {}\n", tools.status().message());
      return 2;
    }
    opt.tools = std::move(*tools);
  }
  if (!o.kwargs.empty()) {
    auto kwargs = ReadJsonArg(o.kwargs, "--kwargs");
    if (!kwargs.ok() || !kwargs->is_object()) {
      fmt::print(stderr, "error: --kwargs must be a JSON object\n");
      return 2;
    }
    opt.extra_context = std::move(*kwargs);
  }
  if (!o.now.empty()) {
    auto now = ParseNow(o.now);
    if (!now.ok()) {
      fmt::print(stderr, "error: {}\n", now.status().message());
      return 2;
    }
    opt.now = *now;
  }
  auto tmpl = tokenizer::ChatTemplate::Parse(std::move(source));
  if (!tmpl.ok()) {
    fmt::print(stderr, "error: {}\n", tmpl.status().message());
    return 1;
  }
  auto out = tmpl->Render(*messages, opt);
  if (!out.ok()) {
    fmt::print(stderr, "error: {}\n", out.status().message());
    return 1;
  }
  fmt::print("{}", *out);
  return 0;
}

}  // namespace

void AddChatTemplateCommand(CLI::App& app) {
  auto* cmd = app.add_subcommand("chat-template", "Render a chat template for a conversation");
  auto o = std::make_shared<ChatTemplateCliOptions>();
  auto* model = cmd->add_option("--model", o->model,
                                "Model or tokenizer whose template to use (HF dir, GGUF, ...)");
  auto* file = cmd->add_option("--template", o->template_file, "Jinja template file");
  model->excludes(file);
  cmd->add_option("--template-name", o->template_name,
                  "A named template of the model (e.g. tool_use)");
  cmd->add_option("--messages", o->messages, "Messages: JSON array, @FILE or - for stdin");
  cmd->add_option("--tools", o->tools, "Tools: JSON array or @FILE");
  cmd->add_option(
      "--kwargs", o->kwargs,
      "More template variables: JSON object or @FILE (e.g. {\"enable_thinking\":false})");
  cmd->add_flag("--add-generation-prompt", o->add_generation_prompt,
                "End with the assistant turn's opening");
  cmd->add_option("--bos-token", o->bos_token, "bos_token for the template");
  cmd->add_option("--eos-token", o->eos_token, "eos_token for the template");
  cmd->add_option("--now", o->now, "Date for strftime_now (YYYY-MM-DD[THH:MM:SS])");
  cmd->add_flag("--jsonl", o->jsonl, "Batch mode: JSON requests on stdin, one result per line");
  cmd->callback([o, model, file] {
    if (!o->jsonl && ((model->count() == 0 && file->count() == 0) || o->messages.empty())) {
      fmt::print(stderr, "error: give --model or --template, and --messages\n");
      ExitCode() = 2;
      return;
    }
    ExitCode() = RunChatTemplate(*o);
  });
}

}  // namespace kinfer::cli
