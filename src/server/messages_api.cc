#include "server/messages_api.h"

#include <set>
#include <utility>

#include <fmt/format.h>

#include "server/request_parts.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::server {
namespace {

using internal::RenameFields;

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// The chat parts' names for the fields, as this API spells them.
ApiError InMessagesTerms(ApiError e) {
  return RenameFields(std::move(e), {{"max_completion_tokens", "max_tokens"},
                                     {"stop", "stop_sequences"},
                                     {"user", "metadata.user_id"}});
}

// A system prompt or message content's text blocks as chat content parts. Blocks that only
// matter to Anthropic's servers are accepted: cache_control (the prefix cache here needs no
// breakpoints), and earlier turns' thinking, which the chat templates of reasoning models leave
// out of the prompt too.
ParseError TextBlocks(const OrderedJson& content, const std::string& where, const char* param,
                      OrderedJson* out) {
  if (content.is_string()) {
    *out = content;
    return std::nullopt;
  }
  if (!content.is_array()) {
    return BadRequest(fmt::format("{}: must be a string or an array of content blocks", where),
                      param);
  }
  *out = OrderedJson::array();
  for (size_t i = 0; i < content.size(); ++i) {
    const OrderedJson& b = content[i];
    const std::string at = fmt::format("{}.{}", where, i);
    if (!b.is_object() || !b.contains("type") || !b["type"].is_string()) {
      return BadRequest(at + ": must be an object with a 'type'", param);
    }
    const std::string type = b["type"].get<std::string>();
    if (type == "thinking" || type == "redacted_thinking") continue;
    if (type == "tool_use" || type == "tool_result") {
      return BadRequest(fmt::format("{}: blocks of type '{}' need tool calling, which this server "
                                    "does not support yet",
                                    at, type),
                        param);
    }
    if (type != "text") {
      return BadRequest(fmt::format("{}: content blocks of type '{}' are not supported by this "
                                    "model (only text)",
                                    at, type),
                        param);
    }
    if (!b.contains("text") || !b["text"].is_string()) {
      return BadRequest(at + ".text: must be a string", param);
    }
    for (auto f = b.begin(); f != b.end(); ++f) {
      const std::string& k = f.key();
      if (k == "citations" && !f->is_null() && !(f->is_array() && f->empty())) {
        return BadRequest(at + ".citations: citations are not supported", param);
      }
      if (k != "type" && k != "text" && k != "cache_control" && k != "citations") {
        return BadRequest(fmt::format("{}.{}: Extra inputs are not permitted", at, k), param);
      }
    }
    out->push_back({{"type", "text"}, {"text", b["text"]}});
  }
  return std::nullopt;
}

// `system` and `messages` as chat messages; a final assistant message is continued.
ParseError ChatMessages(const OrderedJson& body, OrderedJson* chat) {
  OrderedJson messages = OrderedJson::array();
  if (auto it = body.find("system"); it != body.end() && !it->is_null()) {
    OrderedJson content;
    if (auto err = TextBlocks(*it, "system", "system", &content)) return err;
    messages.push_back({{"role", "system"}, {"content", std::move(content)}});
  }
  auto in = body.find("messages");
  if (in == body.end() || in->is_null()) return BadRequest("messages: Field required", "messages");
  if (!in->is_array() || in->empty()) {
    return BadRequest("messages: must be a non-empty array of messages", "messages");
  }
  for (size_t i = 0; i < in->size(); ++i) {
    const OrderedJson& m = (*in)[i];
    const std::string where = fmt::format("messages.{}", i);
    if (!m.is_object()) return BadRequest(where + ": must be an object", "messages");
    auto role = m.find("role");
    if (role == m.end() || (*role != "user" && *role != "assistant")) {
      return BadRequest(where + ".role: must be 'user' or 'assistant'", "messages");
    }
    for (auto f = m.begin(); f != m.end(); ++f) {
      if (f.key() != "role" && f.key() != "content") {
        return BadRequest(fmt::format("{}.{}: Extra inputs are not permitted", where, f.key()),
                          "messages");
      }
    }
    auto content = m.find("content");
    if (content == m.end() || content->is_null()) {
      return BadRequest(where + ".content: Field required", "messages");
    }
    OrderedJson parts;
    if (auto err = TextBlocks(*content, where + ".content", "messages", &parts)) return err;
    messages.push_back({{"role", *role}, {"content", std::move(parts)}});
  }
  if (messages.back()["role"] == "assistant") {
    (*chat)["continue_final_message"] = true;
    (*chat)["add_generation_prompt"] = false;
  }
  (*chat)["messages"] = std::move(messages);
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
  static const std::set<std::string, std::less<>> kSameAsChat = {"model", "temperature", "top_p",
                                                                 "top_k", "stream"};
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
      if (!v.is_null() && !v.is_array()) return BadRequest("tools: must be an array", k);
      if (v.is_array() && !v.empty()) {
        return BadRequest("tools: tool calling is not supported by this server yet", k);
      }
    } else if (k == "tool_choice") {
      if (v.is_null()) continue;
      const bool known =
          v.is_object() && v.contains("type") && (v["type"] == "auto" || v["type"] == "none");
      if (!known) {
        return BadRequest(
            "tool_choice: only {\"type\": \"auto\"} or {\"type\": \"none\"} without "
            "tools: tool calling is not supported by this server yet",
            k);
      }
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

// Writes the Message and Anthropic's event stream for one request.
class MessagesWriter : public ResponseWriter {
 public:
  MessagesWriter(const GenerationRequest& req, std::string id)
      : id_(std::move(id)),
        model_name_(req.model),
        prompt_tokens_(req.prompts.empty() ? 0 : static_cast<int32_t>(req.prompts[0].size())),
        max_tokens_(req.params.max_tokens) {}

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
    if (delta.text.empty()) return "";
    std::string out = OpenBlock();
    return out + Event("content_block_delta",
                       {{"index", 0}, {"delta", {{"type", "text_delta"}, {"text", delta.text}}}});
  }

  std::string StreamEnd(const engine::Usage& usage, const Status& error) override {
    if (!error.ok()) {
      return Event("error", {{"error", {{"type", "api_error"}, {"message", error.message()}}}});
    }
    std::string out = OpenBlock();
    out += Event("content_block_stop", {{"index", 0}});
    out += Event(
        "message_delta",
        {{"delta",
          {{"stop_reason", StopReason(finish_, stop_string_, usage.completion_tokens, max_tokens_)},
           {"stop_sequence", stop_string_ ? Json(*stop_string_) : Json(nullptr)}}},
         {"usage", UsageOf(usage)}});
    out += Event("message_stop", Json::object());
    return out;
  }

  std::string Response(const ChoiceState& choice, const engine::Usage& usage) override {
    Json content = Json::array({{{"type", "text"}, {"text", choice.text}}});
    Json reason =
        StopReason(choice.finish_reason, choice.stop_string, usage.completion_tokens, max_tokens_);
    Json seq = choice.stop_string ? Json(*choice.stop_string) : Json(nullptr);
    return Dump(MessageJson(std::move(content), &reason, &seq, usage));
  }

 private:
  std::string OpenBlock() {
    if (opened_) return "";
    opened_ = true;
    return Event("content_block_start",
                 {{"index", 0}, {"content_block", {{"type", "text"}, {"text", ""}}}});
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
  bool opened_ = false;
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
