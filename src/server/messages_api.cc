#include "server/messages_api.h"

#include <map>
#include <set>
#include <utility>

#include <fmt/format.h>

#include "server/request_parts.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::server {
namespace {

using internal::OutputSplit;
using internal::RenameFields;

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// The chat parts' names for the fields, as this API spells them.
ApiError InMessagesTerms(ApiError e) {
  e = RenameFields(std::move(e), {{"max_completion_tokens", "max_tokens"},
                                  {"stop", "stop_sequences"},
                                  {"user", "metadata.user_id"}});
  // An Anthropic tool has its name at the top and its schema as input_schema.
  for (auto [from, to] :
       {std::pair<std::string_view, std::string_view>{"].function.parameters", "].input_schema"},
        {"].function.", "]."}}) {
    for (size_t pos = e.message.find(from); pos != std::string::npos;
         pos = e.message.find(from, pos)) {
      e.message.replace(pos, from.size(), to);
    }
  }
  return e;
}

// What a message's content blocks become in chat: text parts, an assistant's tool calls, and
// (before the user's text) tool messages for its tool results.
struct Turn {
  OrderedJson parts = OrderedJson::array();
  OrderedJson tool_calls = OrderedJson::array();
  OrderedJson tool_results = OrderedJson::array();
};

ParseError CheckKeys(const OrderedJson& b, const std::string& at, const char* param,
                     std::initializer_list<const char*> allowed) {
  for (auto f = b.begin(); f != b.end(); ++f) {
    bool ok = f.key() == "type" || f.key() == "cache_control";
    for (const char* a : allowed) ok |= f.key() == a;
    if (!ok) {
      return BadRequest(fmt::format("{}.{}: Extra inputs are not permitted", at, f.key()), param);
    }
  }
  return std::nullopt;
}

// A text block's text, checked.
ParseError TextOf(const OrderedJson& b, const std::string& at, const char* param,
                  OrderedJson* text) {
  if (!b.contains("text") || !b["text"].is_string()) {
    return BadRequest(at + ".text: must be a string", param);
  }
  if (auto c = b.find("citations");
      c != b.end() && !c->is_null() && !(c->is_array() && c->empty())) {
    return BadRequest(at + ".citations: citations are not supported", param);
  }
  if (auto err = CheckKeys(b, at, param, {"text", "citations"})) return err;
  *text = b["text"];
  return std::nullopt;
}

// A system prompt or message content as chat. Blocks that only matter to Anthropic's servers
// are accepted: cache_control (the prefix cache here needs no breakpoints), and earlier turns'
// thinking, which the chat templates of reasoning models leave out of the prompt too.
// `role` is "system", "user" or "assistant": tool_use belongs to the assistant, tool_result to
// the user.
ParseError Blocks(const OrderedJson& content, const std::string& where, const char* param,
                  const std::string& role, Turn* turn) {
  if (content.is_string()) {
    turn->parts.push_back({{"type", "text"}, {"text", content}});
    return std::nullopt;
  }
  if (!content.is_array()) {
    return BadRequest(fmt::format("{}: must be a string or an array of content blocks", where),
                      param);
  }
  for (size_t i = 0; i < content.size(); ++i) {
    const OrderedJson& b = content[i];
    const std::string at = fmt::format("{}.{}", where, i);
    if (!b.is_object() || !b.contains("type") || !b["type"].is_string()) {
      return BadRequest(at + ": must be an object with a 'type'", param);
    }
    const std::string type = b["type"].get<std::string>();
    if ((type == "thinking" || type == "redacted_thinking") && role == "assistant") continue;
    if (type == "text") {
      OrderedJson text;
      if (auto err = TextOf(b, at, param, &text)) return err;
      turn->parts.push_back({{"type", "text"}, {"text", std::move(text)}});
    } else if (type == "tool_use" && role == "assistant") {
      auto id = b.find("id"), name = b.find("name"), input = b.find("input");
      if (id == b.end() || !id->is_string() || name == b.end() || !name->is_string() ||
          input == b.end() || !input->is_object()) {
        return BadRequest(at + ": a tool_use block needs 'id' and 'name' (strings) and 'input' "
                               "(an object)",
                          param);
      }
      if (auto err = CheckKeys(b, at, param, {"id", "name", "input"})) return err;
      turn->tool_calls.push_back(
          {{"id", *id},
           {"type", "function"},
           {"function",
            {{"name", *name},
             {"arguments", input->dump(-1, ' ', false, OrderedJson::error_handler_t::replace)}}}});
    } else if (type == "tool_result" && role == "user") {
      auto id = b.find("tool_use_id");
      if (id == b.end() || !id->is_string()) {
        return BadRequest(at + ".tool_use_id: must be a string", param);
      }
      if (auto err = CheckKeys(b, at, param, {"tool_use_id", "content", "is_error"})) return err;
      std::string text;
      if (auto c = b.find("content"); c != b.end() && !c->is_null()) {
        if (c->is_string()) {
          text = c->get<std::string>();
        } else if (c->is_array()) {
          for (size_t k = 0; k < c->size(); ++k) {
            const OrderedJson& part = (*c)[k];
            const std::string pat = fmt::format("{}.content.{}", at, k);
            if (!part.is_object() || !part.contains("type") || part["type"] != "text") {
              return BadRequest(pat + ": only text blocks are supported in a tool_result", param);
            }
            OrderedJson t;
            if (auto err = TextOf(part, pat, param, &t)) return err;
            if (!text.empty()) text += "\n";
            text += t.get<std::string>();
          }
        } else {
          return BadRequest(at + ".content: must be a string or an array of text blocks", param);
        }
      }
      turn->tool_results.push_back(
          {{"role", "tool"}, {"tool_call_id", *id}, {"content", std::move(text)}});
    } else if (type == "tool_use" || type == "tool_result" || type == "thinking" ||
               type == "redacted_thinking") {
      return BadRequest(
          fmt::format("{}: blocks of type '{}' are not allowed in {} content", at, type, role),
          param);
    } else {
      return BadRequest(fmt::format("{}: content blocks of type '{}' are not supported by this "
                                    "model (text, tool_use and tool_result)",
                                    at, type),
                        param);
    }
  }
  return std::nullopt;
}

// `system` and `messages` as chat messages; a final assistant message of text is continued.
ParseError ChatMessages(const OrderedJson& body, OrderedJson* chat) {
  OrderedJson messages = OrderedJson::array();
  if (auto it = body.find("system"); it != body.end() && !it->is_null()) {
    Turn sys;
    if (auto err = Blocks(*it, "system", "system", "system", &sys)) return err;
    messages.push_back({{"role", "system"}, {"content", std::move(sys.parts)}});
  }
  auto in = body.find("messages");
  if (in == body.end() || in->is_null()) return BadRequest("messages: Field required", "messages");
  if (!in->is_array() || in->empty()) {
    return BadRequest("messages: must be a non-empty array of messages", "messages");
  }
  bool continue_final = false;
  for (size_t i = 0; i < in->size(); ++i) {
    const OrderedJson& m = (*in)[i];
    const std::string where = fmt::format("messages.{}", i);
    if (!m.is_object()) return BadRequest(where + ": must be an object", "messages");
    auto role = m.find("role");
    if (role == m.end() || (*role != "user" && *role != "assistant")) {
      return BadRequest(where + ".role: must be 'user' or 'assistant'", "messages");
    }
    if (auto err = CheckKeys(m, where, "messages", {"role", "content"})) return err;
    if (m.contains("cache_control")) {
      return BadRequest(where + ".cache_control: Extra inputs are not permitted", "messages");
    }
    auto content = m.find("content");
    if (content == m.end() || content->is_null()) {
      return BadRequest(where + ".content: Field required", "messages");
    }
    const std::string r = role->get<std::string>();
    Turn turn;
    if (auto err = Blocks(*content, where + ".content", "messages", r, &turn)) return err;
    for (OrderedJson& t : turn.tool_results) messages.push_back(std::move(t));
    if (r == "assistant") {
      OrderedJson msg = {
          {"role", "assistant"},
          {"content", turn.parts.empty() && !turn.tool_calls.empty() ? OrderedJson(nullptr)
                                                                     : std::move(turn.parts)}};
      if (!turn.tool_calls.empty()) msg["tool_calls"] = std::move(turn.tool_calls);
      continue_final = i + 1 == in->size() && !msg.contains("tool_calls");
      messages.push_back(std::move(msg));
    } else if (!turn.parts.empty() || turn.tool_results.empty()) {
      messages.push_back({{"role", "user"}, {"content", std::move(turn.parts)}});
    }
  }
  if (continue_final) {
    (*chat)["continue_final_message"] = true;
    (*chat)["add_generation_prompt"] = false;
  }
  (*chat)["messages"] = std::move(messages);
  return std::nullopt;
}

// Anthropic's tools ({name, description, input_schema}) as chat's function tools.
ParseError Tools(const OrderedJson& v, OrderedJson* chat) {
  if (!v.is_array()) return BadRequest("tools: must be an array", "tools");
  OrderedJson tools = OrderedJson::array();
  for (size_t i = 0; i < v.size(); ++i) {
    const OrderedJson& t = v[i];
    const std::string at = fmt::format("tools.{}", i);
    if (!t.is_object()) return BadRequest(at + ": must be an object", "tools");
    if (auto type = t.find("type"); type != t.end() && !type->is_null() && *type != "custom") {
      return BadRequest(fmt::format("{}.type: server tools ({}) are not supported; only client "
                                    "tools with an input_schema",
                                    at, type->dump()),
                        "tools");
    }
    if (auto err = CheckKeys(t, at, "tools", {"name", "description", "input_schema"})) return err;
    auto schema = t.find("input_schema");
    if (schema == t.end() || !schema->is_object()) {
      return BadRequest(at + ".input_schema: must be a JSON schema object", "tools");
    }
    OrderedJson fn = {{"name", t.contains("name") ? t["name"] : OrderedJson()}};
    if (t.contains("description")) fn["description"] = t["description"];
    fn["parameters"] = *schema;
    tools.push_back({{"type", "function"}, {"function", std::move(fn)}});
  }
  if (!tools.empty()) (*chat)["tools"] = std::move(tools);
  return std::nullopt;
}

// tool_choice {type: auto | any | tool | none, name, disable_parallel_tool_use} in chat's terms.
ParseError ToolChoice(const OrderedJson& v, bool has_tools, OrderedJson* chat) {
  const char* kMsg =
      "tool_choice: must be {\"type\": \"auto\" | \"any\" | \"none\"} or "
      "{\"type\": \"tool\", \"name\": ...}";
  if (!v.is_object() || !v.contains("type")) return BadRequest(kMsg, "tool_choice");
  const OrderedJson& type = v["type"];
  if (auto err =
          CheckKeys(v, "tool_choice", "tool_choice", {"name", "disable_parallel_tool_use"})) {
    return err;
  }
  if (auto d = v.find("disable_parallel_tool_use"); d != v.end() && !d->is_null()) {
    if (!d->is_boolean()) {
      return BadRequest("tool_choice.disable_parallel_tool_use: must be a boolean", "tool_choice");
    }
    if (has_tools) (*chat)["parallel_tool_calls"] = !d->get<bool>();
  }
  if (type == "auto" || type == "none") {
    if (has_tools) (*chat)["tool_choice"] = type;
  } else if (type == "any") {
    (*chat)["tool_choice"] = "required";
  } else if (type == "tool" && v.contains("name") && v["name"].is_string()) {
    (*chat)["tool_choice"] = {{"type", "function"}, {"function", {{"name", v["name"]}}}};
  } else {
    return BadRequest(kMsg, "tool_choice");
  }
  return std::nullopt;
}

// `thinking` as the template's switch (Qwen3's enable_thinking).
ParseError Thinking(const OrderedJson& v, const OrderedJson& max_tokens, OrderedJson* chat) {
  if (!v.is_object() || !v.contains("type")) {
    return BadRequest("thinking: must be an object with a 'type'", "thinking");
  }
  const OrderedJson& type = v["type"];
  if (type != "enabled" && type != "disabled" && type != "adaptive") {
    return BadRequest("thinking.type: must be 'enabled', 'disabled' or 'adaptive'", "thinking");
  }
  if (type == "enabled") {
    auto b = v.find("budget_tokens");
    if (b == v.end() || !b->is_number_integer() || b->get<int64_t>() < 1024) {
      return BadRequest("thinking.budget_tokens: must be an integer >= 1024", "thinking");
    }
    if (max_tokens.is_number_integer() && b->get<int64_t>() >= max_tokens.get<int64_t>()) {
      return BadRequest("thinking.budget_tokens: must be less than max_tokens", "thinking");
    }
  }
  OrderedJson& kw = (*chat)["chat_template_kwargs"];
  kw = {{"enable_thinking", type != "disabled"}};
  return std::nullopt;
}

// The fields a request may carry besides `system` and `messages`. `count` is
// /v1/messages/count_tokens, which takes only what shapes the prompt.
ParseError OtherFields(const OrderedJson& body, bool count, OrderedJson* chat) {
  // Anthropic's sampling fields, and `seed` (not Anthropic's: vLLM's and llama.cpp's extension,
  // for reproducible sampling).
  static const std::set<std::string, std::less<>> kSameAsChat = {"model", "temperature", "top_p",
                                                                 "top_k", "stream",      "seed"};
  static const std::set<std::string, std::less<>> kPromptOnly = {
      "model", "messages", "system", "tools", "tool_choice", "thinking", "cache_control"};
  for (auto it = body.begin(); it != body.end(); ++it) {
    const std::string& k = it.key();
    const OrderedJson& v = *it;
    if (count && !kPromptOnly.count(k)) {
      return BadRequest(fmt::format("{}: Extra inputs are not permitted", k), k);
    }
    if (k == "system" || k == "messages") continue;
    if (kSameAsChat.count(k)) {
      (*chat)[k] = v;
    } else if (k == "max_tokens") {
      (*chat)["max_tokens"] = v;
    } else if (k == "stop_sequences") {
      if (!v.is_null() && !v.is_array()) {
        return BadRequest("stop_sequences: must be an array of strings", k);
      }
      (*chat)["stop"] = v;
    } else if (k == "metadata") {
      if (v.is_null()) continue;
      if (!v.is_object()) return BadRequest("metadata: must be an object", k);
      for (auto m = v.begin(); m != v.end(); ++m) {
        if (m.key() != "user_id") {
          return BadRequest(fmt::format("metadata.{}: Extra inputs are not permitted", m.key()), k);
        }
        if (!m->is_null()) (*chat)["user"] = *m;
      }
    } else if (k == "thinking") {
      if (v.is_null()) continue;
      if (auto err =
              Thinking(v, body.contains("max_tokens") ? body["max_tokens"] : OrderedJson(), chat)) {
        return err;
      }
    } else if (k == "tools") {
      if (v.is_null()) continue;
      if (auto err = Tools(v, chat)) return err;
    } else if (k == "tool_choice") {
      if (v.is_null()) continue;
      const bool has_tools =
          body.contains("tools") && body["tools"].is_array() && !body["tools"].empty();
      if (auto err = ToolChoice(v, has_tools, chat)) return err;
    } else if (k == "service_tier") {
      if (!v.is_null() && v != "auto" && v != "standard_only") {
        return BadRequest("service_tier: must be 'auto' or 'standard_only'", k);
      }
    } else if (k == "cache_control") {
      // Automatic prompt caching: the prefix cache here caches every prompt.
      if (!v.is_null() && !v.is_object()) return BadRequest("cache_control: must be an object", k);
    } else {
      return BadRequest(fmt::format("{}: not supported by /v1/messages", k), k);
    }
  }
  return std::nullopt;
}

// The chat body a Messages request translates to.
ApiResult<OrderedJson> ChatBody(const std::string& body_text, bool count) {
  auto body = internal::ParseBodyObject(body_text);
  if (!body.ok()) return body.error();
  OrderedJson chat = OrderedJson::object();
  if (auto err = OtherFields(*body, count, &chat)) return *err;
  if (auto err = ChatMessages(*body, &chat)) return *err;
  if (!count && (!body->contains("max_tokens") || (*body)["max_tokens"].is_null())) {
    return BadRequest("max_tokens: Field required", "max_tokens");
  }
  return chat;
}

std::string StopReason(std::optional<engine::FinishReason> finish,
                       const std::optional<std::string>& stop_string, int32_t completion_tokens,
                       int32_t max_tokens) {
  if (!finish) return "end_turn";
  switch (*finish) {
    case engine::FinishReason::kStop:
      return stop_string ? "stop_sequence" : "end_turn";
    case engine::FinishReason::kLength:
      return completion_tokens < max_tokens ? "model_context_window_exceeded" : "max_tokens";
    case engine::FinishReason::kAbort:
    case engine::FinishReason::kError:
      break;
  }
  return "end_turn";
}

Json UsageOf(const engine::Usage& u) {
  return {{"input_tokens", u.prompt_tokens - u.cached_tokens},
          {"cache_creation_input_tokens", 0},
          {"cache_read_input_tokens", u.cached_tokens},
          {"output_tokens", u.completion_tokens}};
}

// Writes the Message and Anthropic's event stream for one request. The content is a list of
// blocks, opened as the text brings them (chat's output parser splits it): thinking, text, a
// tool_use per tool call. A whole message runs the same steps over the whole text.
class MessagesWriter : public ResponseWriter {
 public:
  MessagesWriter(const GenerationRequest& req, std::string id)
      : id_(std::move(id)),
        model_name_(req.model),
        prompt_tokens_(req.prompts.empty() ? 0 : static_cast<int32_t>(req.prompts[0].size())),
        max_tokens_(req.params.max_tokens),
        split_(req.output) {}

  std::string StreamStart() override {
    engine::Usage u;
    u.prompt_tokens = prompt_tokens_;
    Json m = MessageJson(Json::array(), nullptr, nullptr, u);
    std::string out = Event("message_start", {{"message", m}});
    return out + Event("ping", Json::object());
  }

  std::string StreamDelta(const engine::SequenceOutput& delta) override {
    if (delta.finish_reason) {
      finish_ = delta.finish_reason;
      stop_string_ = delta.stop_string;
    }
    return Feed(split_.Push(delta.text, delta.finish_reason.has_value()));
  }

  std::string StreamEnd(const engine::Usage& usage, const Status& error) override {
    if (!error.ok()) {
      return Event("error", {{"error", {{"type", "api_error"}, {"message", error.message()}}}});
    }
    std::string out = CloseAll();
    out += Event("message_delta",
                 {{"delta", {{"stop_reason", Reason(usage)}, {"stop_sequence", Sequence()}}},
                  {"usage", UsageOf(usage)}});
    out += Event("message_stop", Json::object());
    return out;
  }

  std::string Response(const ChoiceState& choice, const engine::Usage& usage) override {
    finish_ = choice.finish_reason;
    stop_string_ = choice.stop_string;
    Feed(split_.Push(choice.text, true));
    CloseAll();
    Json content = Json::array();
    for (const Block& b : blocks_) content.push_back(BlockJson(b, true));
    Json reason = Reason(usage), seq = Sequence();
    return Dump(MessageJson(std::move(content), &reason, &seq, usage));
  }

 private:
  enum class Kind { kThinking, kText, kToolUse };
  struct Block {
    Kind kind;
    std::string text;  // thinking or text, or the tool input's JSON text
    std::string id, name;
  };

  Json Reason(const engine::Usage& usage) const {
    if (split_.called() && finish_ == engine::FinishReason::kStop) return "tool_use";
    return StopReason(finish_, stop_string_, usage.completion_tokens, max_tokens_);
  }
  Json Sequence() const { return stop_string_ ? Json(*stop_string_) : Json(nullptr); }

  std::string Feed(const structured::OutputDelta& d) {
    std::string out;
    if (!d.reasoning.empty()) {
      if (!IsOpen(Kind::kThinking)) out += Open(Kind::kThinking, "", "");
      blocks_.back().text += d.reasoning;
      out += Delta({{"type", "thinking_delta"}, {"thinking", d.reasoning}});
    }
    if (!d.content.empty()) {
      if (!IsOpen(Kind::kText)) out += Open(Kind::kText, "", "");
      blocks_.back().text += d.content;
      out += Delta({{"type", "text_delta"}, {"text", d.content}});
    }
    for (const structured::ToolCallDelta& t : d.tool_calls) {
      if (t.first) {
        // Anthropic's ids read toolu_...; chat's call_... keeps its random part.
        std::string id = t.id.rfind("call_", 0) == 0 ? "toolu_" + t.id.substr(5) : t.id;
        out += Open(Kind::kToolUse, id, t.name);
        call_blocks_[t.index] = blocks_.size() - 1;
      }
      auto it = call_blocks_.find(t.index);
      if (it == call_blocks_.end() || t.arguments.empty()) continue;
      blocks_[it->second].text += t.arguments;
      out += Delta({{"type", "input_json_delta"}, {"partial_json", t.arguments}});
    }
    return out;
  }

  bool IsOpen(Kind k) const { return open_ && blocks_.back().kind == k; }

  std::string Open(Kind kind, const std::string& id, const std::string& name) {
    std::string out = CloseOpen();
    blocks_.push_back({kind, "", id, name});
    open_ = true;
    return out +
           Event("content_block_start", {{"index", blocks_.size() - 1},
                                         {"content_block", BlockJson(blocks_.back(), false)}});
  }

  std::string Delta(Json delta) {
    return Event("content_block_delta", {{"index", blocks_.size() - 1}, {"delta", delta}});
  }

  std::string CloseOpen() {
    if (!open_) return "";
    open_ = false;
    return Event("content_block_stop", {{"index", blocks_.size() - 1}});
  }

  // The end: a message with no block at all gets an empty text block.
  std::string CloseAll() {
    std::string out;
    if (blocks_.empty()) out += Open(Kind::kText, "", "");
    return out + CloseOpen();
  }

  // A block as content_block_start (empty) or the whole Message (`done`) shows it.
  static Json BlockJson(const Block& b, bool done) {
    switch (b.kind) {
      case Kind::kThinking:
        return {{"type", "thinking"}, {"thinking", done ? b.text : ""}, {"signature", ""}};
      case Kind::kText:
        return {{"type", "text"}, {"text", done ? b.text : ""}};
      case Kind::kToolUse: {
        Json input = Json::object();
        if (done && !b.text.empty()) {
          auto parsed = ParseJson(b.text, "tool call arguments", 64);
          if (parsed.ok() && parsed->is_object()) input = std::move(*parsed);
        }
        return {{"type", "tool_use"}, {"id", b.id}, {"name", b.name}, {"input", input}};
      }
    }
    return nullptr;
  }

  static std::string Event(const char* type, Json data) {
    Json j = {{"type", type}};
    for (auto& [k, v] : data.items()) j[k] = std::move(v);
    return fmt::format("event: {}\ndata: {}\n\n", type, Dump(j));
  }

  Json MessageJson(Json content, const Json* stop_reason, const Json* stop_sequence,
                   const engine::Usage& usage) const {
    Json m;
    m["id"] = id_;
    m["type"] = "message";
    m["role"] = "assistant";
    m["model"] = model_name_;
    m["content"] = std::move(content);
    m["stop_reason"] = stop_reason ? *stop_reason : Json(nullptr);
    m["stop_sequence"] = stop_sequence ? *stop_sequence : Json(nullptr);
    m["usage"] = UsageOf(usage);
    return m;
  }

  const std::string id_, model_name_;
  const int32_t prompt_tokens_, max_tokens_;
  OutputSplit split_;
  std::vector<Block> blocks_;
  bool open_ = false;                  // blocks_.back() is still receiving output
  std::map<int, size_t> call_blocks_;  // tool call index -> its block
  std::optional<engine::FinishReason> finish_;
  std::optional<std::string> stop_string_;
};

}  // namespace

ApiResult<FrontDoorRequest> ParseMessagesRequest(const std::string& body, const ModelInfo& model,
                                                 const std::string& request_id, int64_t) {
  auto chat = ChatBody(body, /*count=*/false);
  if (!chat.ok()) return chat.error();
  auto req = internal::ParseAsChat(*chat, model);
  if (!req.ok()) return InMessagesTerms(req.error());
  FrontDoorRequest out;
  out.writer = std::make_unique<MessagesWriter>(*req, "msg_" + request_id);
  out.req = std::move(*req);
  return out;
}

ApiResult<int32_t> CountMessageTokens(const std::string& body, const ModelInfo& model) {
  auto chat = ChatBody(body, /*count=*/true);
  if (!chat.ok()) return chat.error();
  // The model must be one served here, as for /v1/messages.
  Json model_only = Json::object();
  if (auto m = chat->find("model"); m != chat->end() && !m->is_null()) {
    if (!m->is_string()) return BadRequest("model: must be a string", "model");
    model_only["model"] = m->get<std::string>();
  }
  Fields f(model_only);
  std::string name;
  if (auto err = ParseModelName(f, model, &name)) return *err;
  auto text = RenderChat(chat->dump(-1, ' ', false, OrderedJson::error_handler_t::replace), model);
  if (!text.ok()) return text.error();
  return static_cast<int32_t>(model.tokenizer->Encode(*text, false, true).size());
}

std::string AnthropicErrorJson(const ApiError& e, const std::string& request_id) {
  std::string type;
  switch (e.status) {
    case 400:
    case 405:
    case 422:
      type = "invalid_request_error";
      break;
    case 401:
      type = "authentication_error";
      break;
    case 403:
      type = "permission_error";
      break;
    case 404:
      type = "not_found_error";
      break;
    case 413:
      type = "request_too_large";
      break;
    case 429:
      type = "rate_limit_error";
      break;
    case 503:
    case 529:
      type = "overloaded_error";
      break;
    default:
      type = e.status >= 500 ? "api_error" : "invalid_request_error";
  }
  Json j = {{"type", "error"},
            {"error", {{"type", type}, {"message", e.message}}},
            {"request_id", request_id}};
  return Dump(j);
}

}  // namespace kinfer::server
