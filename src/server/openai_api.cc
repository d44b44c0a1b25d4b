#include "server/openai_api.h"

#include <fmt/format.h>

#include "server/request_parts.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::server {
namespace {

// Token text as the API shows it in logprobs: what `id` adds to the text after `prev` (a
// SentencePiece piece keeps its leading space), or its text alone at the start.
std::string TokenText(const ModelInfo& m, int32_t id, int32_t prev) {
  int32_t one[1] = {id};
  if (prev < 0) return m.tokenizer->Decode(one, false);
  int32_t two[2] = {prev, id};
  int32_t first[1] = {prev};
  std::string both = m.tokenizer->Decode(two, false);
  std::string before = m.tokenizer->Decode(first, false);
  if (both.compare(0, before.size(), before) == 0) return both.substr(before.size());
  return m.tokenizer->Decode(one, false);
}

Json BytesOf(const std::string& s) {
  Json b = Json::array();
  for (unsigned char c : s) b.push_back(static_cast<int>(c));
  return b;
}

// Message content as one string: a string, or the text of each text part joined by newlines.
std::optional<ApiError> NormalizeMessages(const OrderedJson& in, OrderedJson* out) {
  if (!in.is_array() || in.empty()) {
    return BadRequest("'messages' must be a non-empty array of messages", "messages");
  }
  *out = OrderedJson::array();
  for (size_t i = 0; i < in.size(); ++i) {
    const OrderedJson& m = in[i];
    std::string where = fmt::format("messages[{}]", i);
    if (!m.is_object()) return BadRequest(where + " must be an object", "messages");
    auto role = m.find("role");
    if (role == m.end() || !role->is_string()) {
      return BadRequest(where + ".role must be a string", "messages");
    }
    static const char* kRoles[] = {"system", "user", "assistant", "tool", "developer", "function"};
    bool known = false;
    for (const char* r : kRoles) known |= *role == r;
    if (!known) {
      return BadRequest(fmt::format("{}.role '{}' is not one of system, user, assistant, tool, "
                                    "developer",
                                    where, role->get<std::string>()),
                        "messages");
    }
    OrderedJson msg = m;
    auto content = m.find("content");
    if (content != m.end() && content->is_array()) {
      std::string text;
      for (size_t p = 0; p < content->size(); ++p) {
        const OrderedJson& part = (*content)[p];
        if (!part.is_object() || !part.contains("type") || !part["type"].is_string()) {
          return BadRequest(fmt::format("{}.content[{}] must be an object with a 'type'", where, p),
                            "messages");
        }
        if (part["type"] != "text") {
          return BadRequest(fmt::format("{}.content[{}]: content parts of type '{}' are not "
                                        "supported by this model (only 'text')",
                                        where, p, part["type"].get<std::string>()),
                            "messages");
        }
        if (!part.contains("text") || !part["text"].is_string()) {
          return BadRequest(fmt::format("{}.content[{}].text must be a string", where, p),
                            "messages");
        }
        if (!text.empty()) text += "\n";
        text += part["text"].get<std::string>();
      }
      msg["content"] = text;
    } else if (content != m.end() && !content->is_string() && !content->is_null()) {
      return BadRequest(where + ".content must be a string, an array of content parts or null",
                        "messages");
    } else if (content == m.end() || content->is_null()) {
      if (*role != "assistant" && *role != "tool") {
        return BadRequest(where + ".content is required for role " + role->get<std::string>(),
                          "messages");
      }
      if (content == m.end()) msg["content"] = nullptr;
    }
    out->push_back(std::move(msg));
  }
  return std::nullopt;
}

}  // namespace

std::string ErrorJson(const ApiError& e) {
  Json j;
  j["error"]["message"] = e.message;
  j["error"]["type"] = e.type;
  j["error"]["param"] = e.param.empty() ? Json(nullptr) : Json(e.param);
  j["error"]["code"] = e.code.empty() ? Json(nullptr) : Json(e.code);
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string_view FinishReasonForApi(engine::FinishReason r) {
  switch (r) {
    case engine::FinishReason::kStop:
      return "stop";
    case engine::FinishReason::kLength:
      return "length";
    case engine::FinishReason::kAbort:
      return "abort";
    case engine::FinishReason::kError:
      return "error";
  }
  return "stop";
}

ApiResult<std::string> RenderChat(std::string_view body_text, const ModelInfo& model) {
  if (!model.chat) return RenderParsedChat(OrderedJson(), model);
  auto parsed = ParseOrderedJson(body_text, "request body", 64);
  if (!parsed.ok() || !parsed->is_object()) {
    return BadRequest("the request body must be a JSON object", "", "invalid_json");
  }
  return RenderParsedChat(*parsed, model);
}

ApiResult<std::string> RenderParsedChat(const OrderedJson& body, const ModelInfo& model) {
  if (!model.chat) {
    return ApiError{400,
                    "this model has no chat template; pass --chat-template FILE or use "
                    "/v1/completions",
                    "invalid_request_error", "messages", ""};
  }
  if (!body.is_object()) {
    return BadRequest("the request body must be a JSON object", "", "invalid_json");
  }
  auto it = body.find("messages");
  if (it == body.end()) return BadRequest("'messages' is required", "messages");
  OrderedJson messages;
  if (auto err = NormalizeMessages(*it, &messages)) return *err;
  bool add_generation_prompt = true, continue_final = false;
  for (auto [name, out] : {std::pair{"add_generation_prompt", &add_generation_prompt},
                           std::pair{"continue_final_message", &continue_final}}) {
    auto f = body.find(name);
    if (f == body.end() || f->is_null()) continue;
    if (!f->is_boolean()) return BadRequest(fmt::format("'{}' must be a boolean", name), name);
    *out = f->get<bool>();
  }
  if (continue_final && add_generation_prompt && body.contains("add_generation_prompt") &&
      body["add_generation_prompt"] == true) {
    return BadRequest("'continue_final_message' and 'add_generation_prompt' cannot both be true",
                      "continue_final_message");
  }
  if (continue_final) add_generation_prompt = false;
  ChatRenderOptions opts;
  opts.add_generation_prompt = add_generation_prompt;
  if (auto tools = body.find("tools"); tools != body.end() && !tools->is_null()) {
    if (!tools->is_array()) return BadRequest("'tools' must be an array", "tools");
    opts.tools = *tools;
  }
  if (auto kw = body.find("chat_template_kwargs"); kw != body.end() && !kw->is_null()) {
    if (!kw->is_object()) {
      return BadRequest("'chat_template_kwargs' must be an object", "chat_template_kwargs");
    }
    opts.extra_context = *kw;
  }
  auto rendered = model.chat(messages, opts);
  if (!rendered.ok()) {
    return BadRequest(rendered.status().message(), "messages", "chat_template_error");
  }
  std::string text = std::move(*rendered);
  if (continue_final) {
    // The final (assistant) message stays open: cut the template's end-of-turn after it.
    const OrderedJson& last = messages.back();
    if (last.contains("content") && last["content"].is_string()) {
      const std::string& c = last["content"].get_ref<const std::string&>();
      size_t pos = c.empty() ? std::string::npos : text.rfind(c);
      if (pos != std::string::npos) text.resize(pos + c.size());
    }
  }
  return text;
}

ApiResult<GenerationRequest> ParseGenerationRequest(Endpoint endpoint, const std::string& body,
                                                    const ModelInfo& model) {
  auto parsed = ParseJson(body, "request body", 64);
  if (!parsed.ok()) {
    std::string msg = parsed.status().message();
    return BadRequest(msg.substr(msg.find(": ") + 2), "", "invalid_json");
  }
  const Json& j = *parsed;
  if (!j.is_object()) return BadRequest("the request body must be a JSON object");
  GenerationRequest req;
  req.endpoint = endpoint;
  Fields f(j);
  std::optional<int32_t> max_tokens;
  if (auto err = ParseModelName(f, model, &req.model)) return *err;
  if (auto err = ParseSampling(f, model, &req.params)) return *err;
  if (auto err = ParseStopping(f, endpoint, model, &req.params, &max_tokens)) return *err;
  if (auto err = ParseStreaming(f, &req)) return *err;
  if (auto err = ParseRequestMeta(f, &req)) return *err;
  if (auto err = ParseLogprobs(f, endpoint, &req)) return *err;
  if (auto err = ParseOutputFormat(f, endpoint, model, &req)) return *err;
  if (auto err = ParseTools(f, endpoint, model, &req)) return *err;
  if (auto err = ParsePrompts(f, endpoint, body, model, &req)) return *err;
  if (auto err = ParseReasoning(f, endpoint, model, &req)) return *err;
  if (auto err = CheckLengths(endpoint, max_tokens, model, &req)) return *err;
  return req;
}

Json UsageJson(const engine::Usage& u) {
  Json j;
  j["prompt_tokens"] = u.prompt_tokens;
  j["completion_tokens"] = u.completion_tokens;
  j["total_tokens"] = u.prompt_tokens + u.completion_tokens;
  j["prompt_tokens_details"] = {{"cached_tokens", u.cached_tokens}};
  return j;
}

Json CompletionLogprobsJson(const std::vector<engine::TokenLogprob>& lps, size_t text_offset,
                            const ModelInfo& model, bool first_is_null, int32_t prev) {
  Json tokens = Json::array(), token_lps = Json::array(), tops = Json::array(),
       offsets = Json::array();
  size_t offset = text_offset;
  for (size_t i = 0; i < lps.size(); ++i) {
    std::string t = TokenText(model, lps[i].token, prev);
    tokens.push_back(t);
    const bool null = first_is_null && i == 0;
    token_lps.push_back(null ? Json(nullptr) : Json(lps[i].logprob));
    if (null) {
      tops.push_back(nullptr);
    } else {
      Json top = Json::object();
      for (const auto& [id, lp] : lps[i].top) top[TokenText(model, id, prev)] = lp;
      tops.push_back(top);
    }
    offsets.push_back(offset);
    offset += t.size();
    prev = lps[i].token;
  }
  return Json{{"tokens", tokens},
              {"token_logprobs", token_lps},
              {"top_logprobs", tops},
              {"text_offset", offsets}};
}

Json ChatLogprobsJson(const std::vector<engine::TokenLogprob>& lps, const ModelInfo& model,
                      int32_t prev) {
  Json content = Json::array();
  for (const auto& lp : lps) {
    std::string t = TokenText(model, lp.token, prev);
    Json top = Json::array();
    for (const auto& [id, v] : lp.top) {
      std::string tt = TokenText(model, id, prev);
      top.push_back({{"token", tt}, {"logprob", v}, {"bytes", BytesOf(tt)}});
    }
    content.push_back(
        {{"token", t}, {"logprob", lp.logprob}, {"bytes", BytesOf(t)}, {"top_logprobs", top}});
    prev = lp.token;
  }
  return Json{{"content", content}};
}

namespace {

Json StopReason(const ChoiceState& c) {
  if (c.stop_string) return *c.stop_string;
  if (c.stop_token) return *c.stop_token;
  return nullptr;
}

std::string Dump(const Json& j) { return j.dump(-1, ' ', false, Json::error_handler_t::replace); }

// A finished chat output as OpenAI's message: content, tool calls (finish_reason "tool_calls",
// but "stop" for a forced function, as OpenAI answers) and, for reasoning models, the reasoning
// as reasoning_content (DeepSeek's name) and reasoning (vLLM's newer one).
Json ChatMessage(const GenerationRequest& req, const std::string& text, Json* finish_reason) {
  Json m = {{"role", "assistant"}};
  if (!req.output.active()) {
    m["content"] = text;
    return m;
  }
  structured::OutputParser parser(req.output);
  std::string content, reasoning;
  std::vector<structured::ToolCall> calls;
  structured::Accumulate(parser.Push(text), &content, &reasoning, &calls);
  structured::Accumulate(parser.Finish(), &content, &reasoning, &calls);
  m["content"] = content.empty() && !calls.empty() ? Json(nullptr) : Json(content);
  if (req.output.reasoning) {
    m["reasoning_content"] = reasoning.empty() ? Json(nullptr) : Json(reasoning);
    m["reasoning"] = m["reasoning_content"];
  }
  if (!calls.empty()) {
    Json arr = Json::array();
    for (const auto& c : calls) {
      arr.push_back({{"id", c.id},
                     {"type", "function"},
                     {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    }
    m["tool_calls"] = std::move(arr);
    if (*finish_reason == "stop" && !req.named_tool_choice) *finish_reason = "tool_calls";
  }
  return m;
}

Json ToolCallDeltaJson(const structured::ToolCallDelta& t) {
  if (t.first) {
    return {{"index", t.index},
            {"id", t.id},
            {"type", "function"},
            {"function", {{"name", t.name}, {"arguments", ""}}}};
  }
  return {{"index", t.index}, {"function", {{"arguments", t.arguments}}}};
}

}  // namespace

std::string RenderResponse(const GenerationRequest& req, const std::string& id, int64_t created,
                           const std::vector<ChoiceState>& choices, const engine::Usage& usage,
                           const ModelInfo& model) {
  Json j;
  j["id"] = id;
  j["created"] = created;
  j["model"] = req.model;
  Json arr = Json::array();
  const int32_t n = req.params.n;
  for (size_t i = 0; i < choices.size(); ++i) {
    const ChoiceState& c = choices[i];
    const size_t prompt = i / static_cast<size_t>(n);
    Json choice;
    choice["index"] = i;
    choice["finish_reason"] =
        c.finish_reason ? Json(FinishReasonForApi(*c.finish_reason)) : Json(nullptr);
    if (req.endpoint == Endpoint::kCompletions) {
      std::string text = req.echo ? req.prompt_texts[prompt] + c.text : c.text;
      choice["text"] = text;
      if (req.logprobs) {
        if (req.echo && !c.prompt_logprobs.empty()) {
          Json lp = CompletionLogprobsJson(c.prompt_logprobs, 0, model, true, -1);
          Json out = CompletionLogprobsJson(c.logprobs, req.prompt_texts[prompt].size(), model,
                                            false, req.prompts[prompt].back());
          for (const char* k : {"tokens", "token_logprobs", "top_logprobs", "text_offset"}) {
            for (auto& v : out[k]) lp[k].push_back(v);
          }
          choice["logprobs"] = lp;
        } else {
          choice["logprobs"] =
              CompletionLogprobsJson(c.logprobs, 0, model, false, req.prompts[prompt].back());
        }
      } else {
        choice["logprobs"] = nullptr;
      }
      choice["stop_reason"] = StopReason(c);
    } else {
      choice["message"] = ChatMessage(req, c.text, &choice["finish_reason"]);
      choice["logprobs"] = req.logprobs
                               ? ChatLogprobsJson(c.logprobs, model, req.prompts[prompt].back())
                               : Json(nullptr);
      choice["stop_reason"] = StopReason(c);
    }
    arr.push_back(std::move(choice));
  }
  j["object"] = req.endpoint == Endpoint::kCompletions ? "text_completion" : "chat.completion";
  j["choices"] = std::move(arr);
  j["usage"] = UsageJson(usage);
  return Dump(j);
}

std::string RenderStreamChunk(const GenerationRequest& req, const std::string& id, int64_t created,
                              int32_t index, ChoiceState& state,
                              const engine::SequenceOutput& delta,
                              const std::vector<engine::TokenLogprob>& prompt_logprobs,
                              const ModelInfo& model, const engine::Usage* usage) {
  Json j;
  j["id"] = id;
  j["created"] = created;
  j["model"] = req.model;
  Json choice;
  choice["index"] = index;
  const size_t prompt = static_cast<size_t>(index / req.params.n);
  Json finish =
      delta.finish_reason ? Json(FinishReasonForApi(*delta.finish_reason)) : Json(nullptr);
  if (req.endpoint == Endpoint::kCompletions) {
    j["object"] = "text_completion";
    std::string text = delta.text;
    const bool first = !state.sent_role;
    if (first && req.echo) text = req.prompt_texts[prompt] + text;
    state.sent_role = true;
    choice["text"] = text;
    if (req.logprobs) {
      if (state.last_token < 0) state.last_token = req.prompts[prompt].back();
      if (first && req.echo && !prompt_logprobs.empty()) {
        Json lp = CompletionLogprobsJson(prompt_logprobs, 0, model, true, -1);
        Json out = CompletionLogprobsJson(delta.logprobs, req.prompt_texts[prompt].size(), model,
                                          false, state.last_token);
        for (const char* k : {"tokens", "token_logprobs", "top_logprobs", "text_offset"}) {
          for (auto& v : out[k]) lp[k].push_back(v);
        }
        choice["logprobs"] = lp;
      } else {
        choice["logprobs"] = CompletionLogprobsJson(delta.logprobs, state.text.size(), model, false,
                                                    state.last_token);
      }
      if (!delta.logprobs.empty()) state.last_token = delta.logprobs.back().token;
    } else {
      choice["logprobs"] = nullptr;
    }
    state.text += delta.text;
    choice["finish_reason"] = finish;
    if (delta.finish_reason) {
      choice["stop_reason"] = delta.stop_string  ? Json(*delta.stop_string)
                              : delta.stop_token ? Json(*delta.stop_token)
                                                 : Json(nullptr);
    }
  } else {
    j["object"] = "chat.completion.chunk";
    structured::OutputDelta od;
    if (req.output.active()) {
      if (!state.parser) state.parser = std::make_shared<structured::OutputParser>(req.output);
      od = state.parser->Push(delta.text);
      if (delta.finish_reason) {
        structured::OutputDelta last = state.parser->Finish();
        od.content += last.content;
        od.reasoning += last.reasoning;
        od.tool_calls.insert(od.tool_calls.end(), last.tool_calls.begin(), last.tool_calls.end());
      }
      if (delta.finish_reason && finish == "stop" && state.parser->called() &&
          !req.named_tool_choice) {
        finish = "tool_calls";
      }
    } else {
      od.content = delta.text;
    }
    Json d = Json::object();
    if (!state.sent_role) {
      d["role"] = "assistant";
      state.sent_role = true;
    }
    if (!od.content.empty() || d.contains("role")) d["content"] = od.content;
    if (!od.reasoning.empty()) {
      d["reasoning_content"] = od.reasoning;
      d["reasoning"] = od.reasoning;
    }
    if (state.last_token < 0) state.last_token = req.prompts[prompt].back();
    Json logprobs =
        req.logprobs ? ChatLogprobsJson(delta.logprobs, model, state.last_token) : Json(nullptr);
    if (!delta.logprobs.empty()) state.last_token = delta.logprobs.back().token;
    Json stop_reason;
    if (delta.finish_reason) {
      stop_reason = delta.stop_string  ? Json(*delta.stop_string)
                    : delta.stop_token ? Json(*delta.stop_token)
                                       : Json(nullptr);
    }
    // One event for the text (when there is any), then one per tool-call delta; the last one
    // carries the finish reason and usage.
    std::vector<Json> deltas;
    const bool has_text = d.contains("role") || d.contains("content") || d.contains("reasoning");
    if (has_text || od.tool_calls.empty()) deltas.push_back(d);
    for (const auto& t : od.tool_calls) {
      deltas.push_back({{"tool_calls", Json::array({ToolCallDeltaJson(t)})}});
    }
    const bool empty_delta = !has_text && od.tool_calls.empty() && !delta.finish_reason &&
                             !(req.logprobs && !delta.logprobs.empty());
    if (empty_delta) return "";  // the parser holds this text back for now
    std::string events;
    for (size_t k = 0; k < deltas.size(); ++k) {
      const bool last = k + 1 == deltas.size();
      Json c;
      c["index"] = index;
      c["delta"] = deltas[k];
      c["logprobs"] = k == 0 ? logprobs : Json(nullptr);
      c["finish_reason"] = last ? finish : Json(nullptr);
      if (last && delta.finish_reason) c["stop_reason"] = stop_reason;
      Json e = j;
      e["choices"] = Json::array({c});
      if (usage && last) e["usage"] = UsageJson(*usage);
      events += "data: " + Dump(e) + "\n\n";
    }
    return events;
  }
  j["choices"] = Json::array({choice});
  if (usage) j["usage"] = UsageJson(*usage);
  return "data: " + Dump(j) + "\n\n";
}

std::string RenderUsageChunk(const GenerationRequest& req, const std::string& id, int64_t created,
                             const engine::Usage& usage) {
  Json j;
  j["id"] = id;
  j["object"] =
      req.endpoint == Endpoint::kCompletions ? "text_completion" : "chat.completion.chunk";
  j["created"] = created;
  j["model"] = req.model;
  j["choices"] = Json::array();
  j["usage"] = UsageJson(usage);
  return "data: " + Dump(j) + "\n\n";
}

}  // namespace kinfer::server
