#include "server/responses_api.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "tokenizer/tokenizer.h"

namespace kinfer::server {
namespace {

using internal::OutputSplit;
using internal::RenameFields;

// Fields that mean in a Responses request what they mean in a chat request (OpenAI's, and vLLM's
// sampling extras): passed on under the same name, so the chat parts read and check them.
const std::set<std::string, std::less<>> kSameAsChat = {"model",
                                                        "temperature",
                                                        "top_p",
                                                        "stream",
                                                        "user",
                                                        "top_k",
                                                        "min_p",
                                                        "repetition_penalty",
                                                        "presence_penalty",
                                                        "frequency_penalty",
                                                        "seed",
                                                        "stop",
                                                        "stop_token_ids",
                                                        "ignore_eos",
                                                        "min_tokens",
                                                        "logit_bias",
                                                        "priority",
                                                        "cache_salt",
                                                        "skip_special_tokens",
                                                        "include_stop_str_in_output",
                                                        "structured_outputs",
                                                        "chat_template_kwargs"};

// The chat parts' names for the fields, as this API spells them.
ApiError InResponsesTerms(ApiError e) {
  e = RenameFields(std::move(e), {{"max_completion_tokens", "max_output_tokens"},
                                  {"max_tokens", "max_output_tokens"},
                                  {"messages", "input"},
                                  {"response_format", "text.format"},
                                  {"logprobs", "top_logprobs"}});
  // A Responses function tool has its name and parameters at the top: tools[0].name.
  for (size_t pos = e.message.find("].function."); pos != std::string::npos;
       pos = e.message.find("].function.", pos)) {
    e.message.replace(pos, 11, "].");
  }
  return e;
}

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// What the Response object repeats from the request.
struct Echo {
  OrderedJson instructions;  // null when none
  OrderedJson metadata = OrderedJson::object();
  OrderedJson max_output_tokens;
  OrderedJson max_tool_calls;
  OrderedJson reasoning = {{"effort", nullptr}, {"summary", nullptr}};
  OrderedJson text = {{"format", {{"type", "text"}}}, {"verbosity", "medium"}};
  OrderedJson user;
  OrderedJson tools = OrderedJson::array();
  OrderedJson tool_choice = "auto";
  OrderedJson prompt_cache_key;
  OrderedJson safety_identifier;
  bool parallel_tool_calls = true;
  int32_t top_logprobs = 0;
};

// One input item's text content as chat content parts ({"type": "text", "text"}).
ParseError ContentParts(const OrderedJson& content, const std::string& where, OrderedJson* out) {
  if (content.is_string()) {
    *out = content;
    return std::nullopt;
  }
  if (!content.is_array()) {
    return BadRequest(where + ".content must be a string or an array of content parts", "input");
  }
  *out = OrderedJson::array();
  for (size_t i = 0; i < content.size(); ++i) {
    const OrderedJson& part = content[i];
    const std::string at = fmt::format("{}.content[{}]", where, i);
    if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
      return BadRequest(at + " must be an object with a 'type'", "input");
    }
    const std::string type = part["type"].get<std::string>();
    const char* key = type == "refusal" ? "refusal" : "text";
    if (type != "input_text" && type != "output_text" && type != "refusal") {
      return BadRequest(fmt::format("{}: content parts of type '{}' are not supported by this "
                                    "model (only input_text, output_text and refusal)",
                                    at, type),
                        "input");
    }
    if (!part.contains(key) || !part[key].is_string()) {
      return BadRequest(fmt::format("{}.{} must be a string", at, key), "input");
    }
    out->push_back({{"type", "text"}, {"text", part[key]}});
  }
  return std::nullopt;
}

// A function_call item (a call the model made earlier) as an assistant message's tool call, after
// that turn's text; a function_call_output item as a tool message.
ParseError FunctionCallItem(const OrderedJson& item, const std::string& type,
                            const std::string& where, OrderedJson* messages) {
  auto str = [&](const char* key, std::string* out) -> ParseError {
    auto v = item.find(key);
    if (v == item.end() || !v->is_string()) {
      return BadRequest(fmt::format("{}.{} must be a string", where, key), "input");
    }
    *out = v->get<std::string>();
    return std::nullopt;
  };
  std::string call_id;
  if (auto err = str("call_id", &call_id)) return err;
  if (type == "function_call_output") {
    auto out = item.find("output");
    OrderedJson content;
    if (out == item.end()) return BadRequest(where + ".output is required", "input");
    if (auto err = ContentParts(*out, where, &content)) {
      return BadRequest(where + ".output must be a string or an array of input_text parts",
                        "input");
    }
    messages->push_back({{"role", "tool"}, {"tool_call_id", call_id}, {"content", content}});
    return std::nullopt;
  }
  std::string name, arguments;
  if (auto err = str("name", &name)) return err;
  if (auto err = str("arguments", &arguments)) return err;
  OrderedJson call = {{"id", call_id},
                      {"type", "function"},
                      {"function", {{"name", name}, {"arguments", arguments}}}};
  // Calls that follow an assistant message belong to that turn.
  if (messages->empty() || (*messages)[messages->size() - 1]["role"] != "assistant") {
    messages->push_back({{"role", "assistant"}, {"content", nullptr}});
  }
  OrderedJson& turn = (*messages)[messages->size() - 1];
  if (!turn.contains("tool_calls")) turn["tool_calls"] = OrderedJson::array();
  turn["tool_calls"].push_back(std::move(call));
  return std::nullopt;
}

// `input` (a string, or message items) after `instructions`, as chat messages.
ParseError InputMessages(const OrderedJson& body, OrderedJson* messages) {
  *messages = OrderedJson::array();
  if (auto it = body.find("instructions"); it != body.end() && !it->is_null()) {
    if (!it->is_string()) return BadRequest("'instructions' must be a string", "instructions");
    messages->push_back({{"role", "system"}, {"content", *it}});
  }
  auto input = body.find("input");
  if (input == body.end() || input->is_null()) return BadRequest("'input' is required", "input");
  if (input->is_string()) {
    messages->push_back({{"role", "user"}, {"content", *input}});
    return std::nullopt;
  }
  if (!input->is_array() || input->empty()) {
    return BadRequest("'input' must be a string or a non-empty array of input items", "input");
  }
  for (size_t i = 0; i < input->size(); ++i) {
    const OrderedJson& item = (*input)[i];
    const std::string where = fmt::format("input[{}]", i);
    if (!item.is_object()) return BadRequest(where + " must be an object", "input");
    std::string type = "message";
    if (auto t = item.find("type"); t != item.end() && !t->is_null()) {
      if (!t->is_string()) return BadRequest(where + ".type must be a string", "input");
      type = t->get<std::string>();
    }
    if (type == "reasoning") {
      // An earlier turn's reasoning, sent back by agents: the chat templates of reasoning models
      // leave earlier turns' reasoning out of the prompt, and so does this translation.
      continue;
    }
    if (type == "function_call" || type == "function_call_output") {
      if (auto err = FunctionCallItem(item, type, where, messages)) return err;
      continue;
    }
    if (type == "item_reference") {
      return BadRequest(where +
                            ": item references are not supported: this server does not store "
                            "responses or items; send the items themselves",
                        "input");
    }
    if (type != "message") {
      return BadRequest(fmt::format("{}: input items of type '{}' are not supported (message, "
                                    "reasoning)",
                                    where, type),
                        "input");
    }
    auto role = item.find("role");
    if (role == item.end() || !role->is_string()) {
      return BadRequest(where + ".role must be a string", "input");
    }
    std::string r = role->get<std::string>();
    if (r != "user" && r != "assistant" && r != "system" && r != "developer") {
      return BadRequest(
          fmt::format("{}.role '{}' is not one of user, assistant, system, developer", where, r),
          "input");
    }
    // Chat templates know system, not developer: both are the instructions' role here.
    if (r == "developer") r = "system";
    auto content = item.find("content");
    if (content == item.end() || content->is_null()) {
      return BadRequest(where + ".content is required", "input");
    }
    OrderedJson parts;
    if (auto err = ContentParts(*content, where, &parts)) return err;
    messages->push_back({{"role", r}, {"content", std::move(parts)}});
  }
  return std::nullopt;
}

ParseError StringMap(const OrderedJson& v, const char* name, size_t max_keys, OrderedJson* out) {
  if (!v.is_object()) return BadRequest(fmt::format("'{}' must be an object", name), name);
  if (v.size() > max_keys) {
    return BadRequest(fmt::format("'{}' takes at most {} keys", name, max_keys), name);
  }
  for (auto it = v.begin(); it != v.end(); ++it) {
    if (it.key().size() > 64 || !it->is_string() ||
        it->get_ref<const std::string&>().size() > 512) {
      return BadRequest(fmt::format("'{}' must map keys of at most 64 characters to strings of at "
                                    "most 512 characters",
                                    name),
                        name);
    }
  }
  *out = v;
  return std::nullopt;
}

// Every other field of the request: checked, echoed, or translated into `chat`.
ParseError OtherFields(const OrderedJson& body, OrderedJson* chat, Echo* echo) {
  bool want_logprobs = false;
  for (auto it = body.begin(); it != body.end(); ++it) {
    const std::string& k = it.key();
    const OrderedJson& v = *it;
    if (kSameAsChat.count(k)) {
      (*chat)[k] = v;
      continue;
    }
    if (k == "input" || k == "instructions") continue;  // InputMessages
    if (v.is_null()) continue;
    auto must_be = [&](bool ok, const char* what) -> ParseError {
      if (ok) return std::nullopt;
      return BadRequest(fmt::format("'{}' must be {}", k, what), k);
    };
    if (k == "max_output_tokens") {
      (*chat)["max_tokens"] = v;
      echo->max_output_tokens = v;
    } else if (k == "store" || k == "background" || k == "parallel_tool_calls") {
      if (auto err = must_be(v.is_boolean(), "a boolean")) return err;
      if (k == "background" && v.get<bool>()) {
        return BadRequest(
            "background responses are not supported: this server does not store "
            "responses",
            k);
      }
      if (k == "parallel_tool_calls") {
        echo->parallel_tool_calls = v.get<bool>();
        (*chat)[k] = v;
      }
    } else if (k == "previous_response_id" || k == "conversation") {
      return BadRequest(fmt::format("'{}' is not supported: this server does not store responses "
                                    "or conversations; send the whole conversation in 'input'",
                                    k),
                        k);
    } else if (k == "metadata") {
      if (auto err = StringMap(v, "metadata", 16, &echo->metadata)) return err;
    } else if (k == "truncation") {
      if (auto err = must_be(v == "disabled" || v == "auto", "'disabled' or 'auto'")) return err;
      if (v == "auto") {
        return BadRequest(
            "'truncation': 'auto' is not supported: the input is never cut; a "
            "too long input is a 400",
            k);
      }
    } else if (k == "service_tier") {
      if (auto err = must_be(v.is_string(), "a string")) return err;
    } else if (k == "prompt_cache_key" || k == "safety_identifier") {
      // A routing hint and an end-user id: the prefix cache needs no key here.
      if (auto err = must_be(v.is_string() && v.get_ref<const std::string&>().size() <= 1024,
                             "a string of at most 1024 characters")) {
        return err;
      }
      (k == "prompt_cache_key" ? echo->prompt_cache_key : echo->safety_identifier) = v;
    } else if (k == "max_tool_calls") {
      if (auto err = must_be(v.is_number_integer() && v.get<int64_t>() >= 1, "an integer >= 1")) {
        return err;
      }
      echo->max_tool_calls = v;
    } else if (k == "stream_options") {
      if (auto err = must_be(v.is_object(), "an object")) return err;
      for (auto o = v.begin(); o != v.end(); ++o) {
        if (o.key() != "include_obfuscation" || !(o->is_boolean() || o->is_null())) {
          return BadRequest(fmt::format("'stream_options.{}' is not supported (only "
                                        "include_obfuscation, a boolean)",
                                        o.key()),
                            "stream_options");
        }
      }
      if (!body.contains("stream") || body["stream"] != true) {
        return BadRequest("'stream_options' is only allowed when 'stream' is true",
                          "stream_options");
      }
    } else if (k == "include") {
      if (auto err = must_be(v.is_array(), "an array of strings")) return err;
      for (const OrderedJson& s : v) {
        if (s == "message.output_text.logprobs") {
          want_logprobs = true;
        } else if (s != "reasoning.encrypted_content") {
          // Reasoning is returned as text; there is no encrypted form to include.
          return BadRequest(fmt::format("'include' value {} is not supported (only "
                                        "message.output_text.logprobs and "
                                        "reasoning.encrypted_content)",
                                        s.dump()),
                            k);
        }
      }
    } else if (k == "top_logprobs") {
      if (auto err = must_be(v.is_number_integer(), "an integer between 0 and 20")) return err;
      (*chat)["top_logprobs"] = v;
      want_logprobs = true;
      echo->top_logprobs = static_cast<int32_t>(std::clamp<int64_t>(v.get<int64_t>(), 0, 20));
    } else if (k == "text") {
      if (auto err = must_be(v.is_object(), "an object")) return err;
      for (auto t = v.begin(); t != v.end(); ++t) {
        if (t.key() == "format") {
          const OrderedJson& f = *t;
          if (!f.is_object() || !f.contains("type") || !f["type"].is_string()) {
            return BadRequest("'text.format' must be an object with a 'type'", "text.format");
          }
          // Chat's response_format spells the schema one level deeper.
          if (f["type"] == "json_schema") {
            OrderedJson schema = f;
            schema.erase("type");
            (*chat)["response_format"] = {{"type", "json_schema"}, {"json_schema", schema}};
          } else {
            (*chat)["response_format"] = {{"type", f["type"]}};
          }
          echo->text["format"] = f;
        } else if (t.key() == "verbosity") {
          if (!t->is_null() && *t != "medium") {
            return BadRequest("'text.verbosity' other than 'medium' is not supported",
                              "text.verbosity");
          }
        } else {
          return BadRequest(fmt::format("'text.{}' is not supported", t.key()), "text");
        }
      }
    } else if (k == "reasoning") {
      if (auto err = must_be(v.is_object(), "an object")) return err;
      for (auto r = v.begin(); r != v.end(); ++r) {
        static const std::set<std::string, std::less<>> kEfforts = {"none",   "minimal", "low",
                                                                    "medium", "high",    "xhigh"};
        if (r.key() == "effort") {
          if (r->is_null()) continue;
          if (!r->is_string() || !kEfforts.count(r->get<std::string>())) {
            return BadRequest(
                "'reasoning.effort' must be one of none, minimal, low, medium, "
                "high, xhigh",
                "reasoning.effort");
          }
          // Models that think let the template turn it off (Qwen3's enable_thinking); the effort
          // levels above that are the model's own.
          const bool think = *r != "none" && *r != "minimal";
          OrderedJson& kw = (*chat)["chat_template_kwargs"];
          if (!kw.is_object()) kw = OrderedJson::object();
          kw["enable_thinking"] = think;
          echo->reasoning["effort"] = *r;
        } else if (r.key() == "summary" || r.key() == "generate_summary") {
          if (!r->is_null() && !r->is_string()) {
            return BadRequest("'reasoning.summary' must be a string", "reasoning.summary");
          }
          if (r->is_string()) echo->reasoning["summary"] = *r;
        } else {
          return BadRequest(fmt::format("'reasoning.{}' is not supported", r.key()), "reasoning");
        }
      }
    } else if (k == "tools") {
      if (auto err = must_be(v.is_array(), "an array of function tools")) return err;
      OrderedJson tools = OrderedJson::array();
      for (size_t t = 0; t < v.size(); ++t) {
        const OrderedJson& tool = v[t];
        if (!tool.is_object() || !tool.contains("type") || tool["type"] != "function") {
          return BadRequest(fmt::format("tools[{}]: only tools of type 'function' are supported "
                                        "(hosted tools such as web_search are not)",
                                        t),
                            "tools");
        }
        // Chat's tool spells the function one level deeper.
        OrderedJson fn = tool;
        fn.erase("type");
        tools.push_back({{"type", "function"}, {"function", std::move(fn)}});
      }
      if (!tools.empty()) (*chat)["tools"] = std::move(tools);
      echo->tools = v;
    } else if (k == "tool_choice") {
      const bool has_tools =
          body.contains("tools") && body["tools"].is_array() && !body["tools"].empty();
      if (v == "none" || v == "auto" || v == "required") {
        if (has_tools || v == "required") (*chat)[k] = v;
      } else if (v.is_object() && v.contains("type") && v["type"] == "function" &&
                 v.contains("name") && v["name"].is_string()) {
        (*chat)[k] = {{"type", "function"}, {"function", {{"name", v["name"]}}}};
      } else {
        return BadRequest(
            "'tool_choice' must be none, auto, required or {\"type\": \"function\", "
            "\"name\": ...}",
            k);
      }
      echo->tool_choice = v;
    } else {
      return BadRequest(fmt::format("'{}' is not supported by /v1/responses", k), k);
    }
  }
  if (want_logprobs) (*chat)["logprobs"] = true;
  return std::nullopt;
}

// Writes the Response object and the Responses event stream for one request. The output is a
// list of items, opened as the text brings them (chat's output parser splits it): a reasoning
// item, a message, a function_call per tool call. A whole response runs the same steps over the
// whole text and keeps only the items.
class ResponsesWriter : public ResponseWriter {
 public:
  ResponsesWriter(const ModelInfo& model, const GenerationRequest& req, Echo echo, std::string id,
                  int64_t created)
      : model_(model),
        echo_(std::move(echo)),
        id_(std::move(id)),
        model_name_(req.model),
        created_(created),
        temperature_(req.params.temperature),
        top_p_(req.params.top_p),
        logprobs_(req.logprobs),
        last_token_(req.prompts.empty() || req.prompts[0].empty() ? -1 : req.prompts[0].back()),
        split_(req.output) {}

  std::string StreamStart() override {
    Json r = ResponseJson("in_progress", nullptr, nullptr);
    std::string out = Event("response.created", {{"response", r}});
    return out + Event("response.in_progress", {{"response", r}});
  }

  std::string StreamDelta(const engine::SequenceOutput& delta) override {
    if (delta.finish_reason) finish_ = delta.finish_reason;
    return Feed(split_.Push(delta.text, delta.finish_reason.has_value()), delta.logprobs);
  }

  std::string StreamEnd(const engine::Usage& usage, const Status& error) override {
    if (!error.ok()) {
      Json err = {{"code", "server_error"}, {"message", error.message()}};
      return Event("response.failed", {{"response", ResponseJson("failed", &usage, &err)}});
    }
    const std::string status = StatusName();
    std::string out = CloseAll(status);
    out += Event(status == "completed"    ? "response.completed"
                 : status == "incomplete" ? "response.incomplete"
                                          : "response.failed",
                 {{"response", ResponseJson(status, &usage, nullptr)}});
    return out;
  }

  std::string Response(const ChoiceState& choice, const engine::Usage& usage) override {
    finish_ = choice.finish_reason;
    Feed(split_.Push(choice.text, true), choice.logprobs);
    const std::string status = StatusName();
    CloseAll(status);
    return Dump(ResponseJson(status, &usage, nullptr));
  }

 private:
  enum class Kind { kReasoning, kMessage, kFunctionCall };
  struct Item {
    Kind kind;
    std::string id;
    std::string text;  // reasoning or message text, or a call's arguments
    std::string name, call_id;
    Json logprobs = Json::array();
    std::string status = "in_progress";
  };

  // "completed", or "incomplete" when the output hit max_output_tokens (or the context).
  std::string StatusName() const {
    if (!finish_) return "incomplete";
    switch (*finish_) {
      case engine::FinishReason::kStop:
        return "completed";
      case engine::FinishReason::kLength:
        return "incomplete";
      case engine::FinishReason::kAbort:
        return "cancelled";
      case engine::FinishReason::kError:
        return "failed";
    }
    return "completed";
  }

  // The events for one step of parsed output, in the order the parser gives it.
  std::string Feed(const structured::OutputDelta& d, const std::vector<engine::TokenLogprob>& lps) {
    std::string out;
    if (logprobs_) {
      Json content = ChatLogprobsJson(lps, model_, last_token_)["content"];
      if (!lps.empty()) last_token_ = lps.back().token;
      for (Json& lp : content) pending_logprobs_.push_back(std::move(lp));
    }
    if (!d.reasoning.empty()) {
      if (!IsOpen(Kind::kReasoning)) out += Open(Kind::kReasoning);
      items_.back().text += d.reasoning;
      out += Event("response.reasoning_text.delta", {{"item_id", items_.back().id},
                                                     {"output_index", items_.size() - 1},
                                                     {"content_index", 0},
                                                     {"delta", d.reasoning}});
    }
    if (!d.content.empty()) {
      if (!IsOpen(Kind::kMessage)) out += Open(Kind::kMessage);
      Item& m = items_.back();
      m.text += d.content;
      for (const Json& lp : pending_logprobs_) m.logprobs.push_back(lp);
      out += Event("response.output_text.delta", {{"item_id", m.id},
                                                  {"output_index", items_.size() - 1},
                                                  {"content_index", 0},
                                                  {"delta", d.content},
                                                  {"logprobs", pending_logprobs_}});
      pending_logprobs_ = Json::array();
    }
    for (const structured::ToolCallDelta& t : d.tool_calls) {
      if (t.first) {
        out += Open(Kind::kFunctionCall);
        items_.back().name = t.name;
        items_.back().call_id = t.id;
        call_items_[t.index] = items_.size() - 1;
        out += Event("response.output_item.added",
                     {{"output_index", items_.size() - 1}, {"item", ItemJson(items_.back())}});
      }
      auto it = call_items_.find(t.index);
      if (it == call_items_.end() || t.arguments.empty()) continue;
      items_[it->second].text += t.arguments;
      out += Event("response.function_call_arguments.delta", {{"item_id", items_[it->second].id},
                                                              {"output_index", it->second},
                                                              {"delta", t.arguments}});
    }
    return out;
  }

  bool IsOpen(Kind k) const { return open_ && items_.back().kind == k; }

  // Closes the open item and opens a new one of `kind`. A function_call's added event waits for
  // its name (Feed sends it).
  std::string Open(Kind kind) {
    std::string out = CloseOpen("completed");
    static const char* kPrefix[] = {"rs_", "msg_", "fc_"};
    Item item;
    item.kind = kind;
    item.id = kPrefix[static_cast<int>(kind)] + id_.substr(5) +
              (items_.empty() ? "" : "_" + std::to_string(items_.size()));
    items_.push_back(std::move(item));
    open_ = true;
    if (kind == Kind::kFunctionCall) return out;
    const size_t index = items_.size() - 1;
    out += Event("response.output_item.added",
                 {{"output_index", index}, {"item", ItemJson(items_.back())}});
    out += Event("response.content_part.added", {{"item_id", items_.back().id},
                                                 {"output_index", index},
                                                 {"content_index", 0},
                                                 {"part", EmptyPart(kind)}});
    return out;
  }

  std::string CloseOpen(const std::string& status) {
    if (!open_) return "";
    open_ = false;
    Item& item = items_.back();
    item.status = status;
    const size_t index = items_.size() - 1;
    std::string out;
    if (item.kind == Kind::kFunctionCall) {
      out += Event("response.function_call_arguments.done", {{"item_id", item.id},
                                                             {"output_index", index},
                                                             {"name", item.name},
                                                             {"arguments", item.text}});
    } else {
      Json part = ItemJson(item)["content"][0];
      if (item.kind == Kind::kReasoning) {
        out += Event("response.reasoning_text.done", {{"item_id", item.id},
                                                      {"output_index", index},
                                                      {"content_index", 0},
                                                      {"text", item.text}});
      } else {
        out += Event("response.output_text.done", {{"item_id", item.id},
                                                   {"output_index", index},
                                                   {"content_index", 0},
                                                   {"text", item.text},
                                                   {"logprobs", item.logprobs}});
      }
      out += Event(
          "response.content_part.done",
          {{"item_id", item.id}, {"output_index", index}, {"content_index", 0}, {"part", part}});
    }
    out += Event("response.output_item.done", {{"output_index", index}, {"item", ItemJson(item)}});
    return out;
  }

  // The end: the open item closes with the response's status (a message cut by
  // max_output_tokens is incomplete); an output with no item at all gets an empty message.
  std::string CloseAll(const std::string& status) {
    std::string out;
    if (items_.empty()) out += Open(Kind::kMessage);
    const std::string item_status = status == "completed" ? "completed" : "incomplete";
    return out + CloseOpen(item_status);
  }

  static Json EmptyPart(Kind kind) {
    if (kind == Kind::kReasoning) return {{"type", "reasoning_text"}, {"text", ""}};
    return {{"type", "output_text"},
            {"text", ""},
            {"annotations", Json::array()},
            {"logprobs", Json::array()}};
  }

  // An item as the Response and the item events show it: its content once it is done.
  static Json ItemJson(const Item& item) {
    const bool done = item.status != "in_progress";
    switch (item.kind) {
      case Kind::kReasoning:
        return {{"id", item.id},
                {"type", "reasoning"},
                {"summary", Json::array()},
                {"content", done ? Json::array({{{"type", "reasoning_text"}, {"text", item.text}}})
                                 : Json::array()},
                {"status", item.status}};
      case Kind::kMessage:
        return {{"id", item.id},
                {"type", "message"},
                {"status", item.status},
                {"role", "assistant"},
                {"content", done ? Json::array({{{"type", "output_text"},
                                                 {"text", item.text},
                                                 {"annotations", Json::array()},
                                                 {"logprobs", item.logprobs}}})
                                 : Json::array()}};
      case Kind::kFunctionCall:
        return {{"id", item.id},
                {"type", "function_call"},
                {"call_id", item.call_id},
                {"name", item.name},
                {"arguments", done ? item.text : ""},
                {"status", item.status}};
    }
    return nullptr;
  }

  std::string Event(const char* type, Json data) {
    Json j = {{"type", type}, {"sequence_number", sequence_++}};
    for (auto& [k, v] : data.items()) j[k] = std::move(v);
    return fmt::format("event: {}\ndata: {}\n\n", type, Dump(j));
  }

  Json ResponseJson(const std::string& status, const engine::Usage* usage,
                    const Json* error) const {
    Json output = Json::array();
    if (status != "in_progress") {
      for (const Item& item : items_) output.push_back(ItemJson(item));
    }
    Json r;
    r["id"] = id_;
    r["object"] = "response";
    r["created_at"] = created_;
    r["status"] = status;
    r["background"] = false;
    r["error"] = error ? *error : Json(nullptr);
    r["incomplete_details"] =
        status == "incomplete" ? Json{{"reason", "max_output_tokens"}} : Json(nullptr);
    r["instructions"] = echo_.instructions;
    r["max_output_tokens"] = echo_.max_output_tokens;
    r["max_tool_calls"] = echo_.max_tool_calls;
    r["metadata"] = echo_.metadata;
    r["model"] = model_name_;
    r["output"] = std::move(output);
    r["parallel_tool_calls"] = echo_.parallel_tool_calls;
    r["previous_response_id"] = nullptr;
    r["prompt_cache_key"] = echo_.prompt_cache_key;
    r["reasoning"] = echo_.reasoning;
    r["safety_identifier"] = echo_.safety_identifier;
    r["service_tier"] = "default";
    r["store"] = false;
    r["temperature"] = temperature_;
    r["text"] = echo_.text;
    r["tool_choice"] = echo_.tool_choice;
    r["tools"] = echo_.tools;
    r["top_logprobs"] = echo_.top_logprobs;
    r["top_p"] = top_p_;
    r["truncation"] = "disabled";
    r["user"] = echo_.user;
    if (usage) {
      // Reasoning tokens: the reasoning text tokenized again (the engine counts output tokens,
      // not which part of the output they fell in).
      int64_t reasoning_tokens = 0;
      for (const Item& item : items_) {
        if (item.kind == Kind::kReasoning && model_.tokenizer) {
          reasoning_tokens +=
              static_cast<int64_t>(model_.tokenizer->Encode(item.text, false, false).size());
        }
      }
      reasoning_tokens = std::min<int64_t>(reasoning_tokens, usage->completion_tokens);
      r["usage"] = {
          {"input_tokens", usage->prompt_tokens},
          {"input_tokens_details", {{"cached_tokens", usage->cached_tokens}}},
          {"output_tokens", usage->completion_tokens},
          {"output_tokens_details", {{"reasoning_tokens", reasoning_tokens}}},
          {"total_tokens", usage->prompt_tokens + usage->completion_tokens},
      };
    } else {
      r["usage"] = nullptr;
    }
    return r;
  }

  const ModelInfo& model_;
  const Echo echo_;
  const std::string id_, model_name_;
  const int64_t created_;
  const float temperature_, top_p_;
  const bool logprobs_;
  int32_t last_token_;
  OutputSplit split_;
  int64_t sequence_ = 0;
  std::vector<Item> items_;
  bool open_ = false;                      // items_.back() is still receiving output
  std::map<int, size_t> call_items_;       // tool call index -> its item
  Json pending_logprobs_ = Json::array();  // logprobs of tokens the parser has not released yet
  std::optional<engine::FinishReason> finish_;
};

}  // namespace

ApiResult<FrontDoorRequest> ParseResponsesRequest(const std::string& body_text,
                                                  const ModelInfo& model,
                                                  const std::string& request_id, int64_t created) {
  auto body = internal::ParseBodyObject(body_text);
  if (!body.ok()) return body.error();
  OrderedJson chat = OrderedJson::object();
  Echo echo;
  OrderedJson messages;
  if (auto err = InputMessages(*body, &messages)) return *err;
  if (auto it = body->find("instructions"); it != body->end()) echo.instructions = *it;
  if (auto it = body->find("user"); it != body->end()) echo.user = *it;
  if (auto err = OtherFields(*body, &chat, &echo)) return *err;
  chat["messages"] = std::move(messages);
  auto req = internal::ParseAsChat(chat, model);
  if (!req.ok()) return InResponsesTerms(req.error());
  FrontDoorRequest out;
  out.writer = std::make_unique<ResponsesWriter>(model, *req, std::move(echo), "resp_" + request_id,
                                                 created);
  out.req = std::move(*req);
  return out;
}

}  // namespace kinfer::server
