#include "server/openai_api.h"

#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "tokenizer/tokenizer.h"

namespace kinfer::server {
namespace {

// Reads typed fields of a request object; the first problem becomes a 400 naming the field.
class Fields {
 public:
  explicit Fields(const Json& j) : j_(j) {}

  std::optional<ApiError>& error() { return error_; }
  bool ok() const { return !error_; }

  const Json* Get(const char* name) const {
    auto it = j_.find(name);
    if (it == j_.end() || it->is_null()) return nullptr;
    return &*it;
  }

  void Fail(const char* name, std::string message) {
    if (!error_) error_ = BadRequest(std::move(message), name);
  }

  template <typename T>
  bool Int(const char* name, T* out, int64_t lo, int64_t hi) {
    const Json* v = Get(name);
    if (!v || error_) return false;
    int64_t x;
    if (v->is_number_integer() || v->is_number_unsigned()) {
      if (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(hi)) {
        Fail(name, fmt::format("'{}' must be at most {}", name, hi));
        return false;
      }
      x = v->get<int64_t>();
    } else if (v->is_number_float() && std::isfinite(v->get<double>()) &&
               v->get<double>() == std::floor(v->get<double>()) &&
               std::fabs(v->get<double>()) < 9e15) {
      x = static_cast<int64_t>(v->get<double>());
    } else {
      Fail(name, fmt::format("'{}' must be an integer, got {}", name, JsonTypeName(*v)));
      return false;
    }
    if (x < lo || x > hi) {
      Fail(name, fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi, x));
      return false;
    }
    *out = static_cast<T>(x);
    return true;
  }

  bool Float(const char* name, float* out, double lo, double hi) {
    const Json* v = Get(name);
    if (!v || error_) return false;
    if (!v->is_number()) {
      Fail(name, fmt::format("'{}' must be a number, got {}", name, JsonTypeName(*v)));
      return false;
    }
    double x = v->get<double>();
    if (!std::isfinite(x) || x < lo || x > hi) {
      Fail(name, fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi, v->dump()));
      return false;
    }
    *out = static_cast<float>(x);
    return true;
  }

  bool Bool(const char* name, bool* out) {
    const Json* v = Get(name);
    if (!v || error_) return false;
    if (!v->is_boolean()) {
      Fail(name, fmt::format("'{}' must be a boolean, got {}", name, JsonTypeName(*v)));
      return false;
    }
    *out = v->get<bool>();
    return true;
  }

  bool String(const char* name, std::string* out, size_t max_len = 1 << 16) {
    const Json* v = Get(name);
    if (!v || error_) return false;
    if (!v->is_string()) {
      Fail(name, fmt::format("'{}' must be a string, got {}", name, JsonTypeName(*v)));
      return false;
    }
    if (v->get_ref<const std::string&>().size() > max_len) {
      Fail(name, fmt::format("'{}' is longer than {} bytes", name, max_len));
      return false;
    }
    *out = v->get<std::string>();
    return true;
  }

 private:
  const Json& j_;
  std::optional<ApiError> error_;
};

constexpr int32_t kMaxInt = std::numeric_limits<int32_t>::max();

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

ApiError BadRequest(std::string message, std::string param, std::string code) {
  ApiError e;
  e.status = 400;
  e.message = std::move(message);
  e.param = std::move(param);
  e.code = std::move(code);
  return e;
}

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
  if (!model.chat) {
    return ApiError{400,
                    "this model has no chat template; pass --chat-template FILE or use "
                    "/v1/completions",
                    "invalid_request_error", "messages", ""};
  }
  auto parsed = ParseOrderedJson(body_text, "request body", 64);
  if (!parsed.ok() || !parsed->is_object()) {
    return BadRequest("the request body must be a JSON object", "", "invalid_json");
  }
  const OrderedJson& body = *parsed;
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
  const bool chat = endpoint == Endpoint::kChat;

  req.model = model.served_names.empty() ? "" : model.served_names[0];
  std::string requested;
  if (f.String("model", &requested, 1024)) {
    bool found = false;
    for (const auto& n : model.served_names) found |= n == requested;
    if (!found) {
      ApiError e;
      e.status = 404;
      e.type = "not_found_error";
      e.message = fmt::format("The model `{}` does not exist.", requested);
      e.param = "model";
      e.code = "model_not_found";
      return e;
    }
    req.model = requested;
  }
  if (!f.ok()) return *f.error();

  engine::SamplingParams& p = req.params;
  f.Int("n", &p.n, 1, 128);
  if (const Json* best_of = f.Get("best_of")) {
    int32_t b = 0;
    if (f.Int("best_of", &b, 1, 128) && b != p.n) {
      f.Fail("best_of", "'best_of' different from 'n' is not supported");
    }
    (void)best_of;
  }
  f.Float("temperature", &p.temperature, 0, 100);
  f.Float("top_p", &p.top_p, 0, 1);
  if (f.ok() && j.contains("top_p") && !j["top_p"].is_null() && p.top_p <= 0) {
    f.Fail("top_p", "'top_p' must be greater than 0");
  }
  f.Int("top_k", &p.top_k, -1, kMaxInt);
  f.Float("min_p", &p.min_p, 0, 1);
  f.Float("repetition_penalty", &p.repetition_penalty, 1e-6, 100);
  f.Float("presence_penalty", &p.presence_penalty, -2, 2);
  f.Float("frequency_penalty", &p.frequency_penalty, -2, 2);
  int64_t seed = 0;
  if (f.Int("seed", &seed, std::numeric_limits<int64_t>::min(),
            std::numeric_limits<int64_t>::max())) {
    p.seed = static_cast<uint64_t>(seed);
  }
  f.Bool("ignore_eos", &p.ignore_eos);
  f.Int("min_tokens", &p.min_tokens, 0, kMaxInt);
  f.Bool("skip_special_tokens", &p.skip_special_tokens);
  f.Bool("include_stop_str_in_output", &p.include_stop_str_in_output);
  f.Int("priority", &req.priority, -1000000, 1000000);
  f.String("cache_salt", &req.cache_salt, 1024);
  f.String("user", &req.user, 1024);
  f.Bool("stream", &req.stream);
  if (!f.ok()) return *f.error();

  std::optional<int32_t> max_tokens;
  int32_t mt = 0;
  if (f.Int("max_tokens", &mt, 1, kMaxInt)) max_tokens = mt;
  if (chat && f.Int("max_completion_tokens", &mt, 1, kMaxInt)) max_tokens = mt;
  if (!f.ok()) return *f.error();

  if (const Json* so = f.Get("stream_options")) {
    if (!so->is_object()) return BadRequest("'stream_options' must be an object", "stream_options");
    if (!req.stream) {
      return BadRequest("'stream_options' is only allowed when 'stream' is true", "stream_options");
    }
    Fields sf(*so);
    sf.Bool("include_usage", &req.include_usage);
    sf.Bool("continuous_usage_stats", &req.continuous_usage_stats);
    if (!sf.ok()) {
      ApiError e = *sf.error();
      e.param = "stream_options." + e.param;
      return e;
    }
  }
  if (const Json* stop = f.Get("stop")) {
    if (stop->is_string()) {
      p.stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (const Json& s : *stop) {
        if (!s.is_string())
          return BadRequest("'stop' must be a string or an array of strings", "stop");
        p.stop.push_back(s.get<std::string>());
      }
    } else {
      return BadRequest("'stop' must be a string or an array of strings", "stop");
    }
    if (p.stop.size() > 16) return BadRequest("'stop' takes at most 16 strings", "stop");
    for (const auto& s : p.stop) {
      if (s.empty()) return BadRequest("'stop' strings must not be empty", "stop");
      if (s.size() > 1024) return BadRequest("'stop' strings must be at most 1024 bytes", "stop");
    }
  }
  if (const Json* ids = f.Get("stop_token_ids")) {
    if (!ids->is_array())
      return BadRequest("'stop_token_ids' must be an array of integers", "stop_token_ids");
    for (const Json& t : *ids) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= model.vocab_size) {
        return BadRequest(
            fmt::format("'stop_token_ids' entries must be token ids in [0, {})", model.vocab_size),
            "stop_token_ids");
      }
      p.stop_token_ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
  }
  if (const Json* lb = f.Get("logit_bias")) {
    if (!lb->is_object())
      return BadRequest("'logit_bias' must be an object mapping token ids to numbers",
                        "logit_bias");
    for (auto it = lb->begin(); it != lb->end(); ++it) {
      char* end = nullptr;
      long long id = std::strtoll(it.key().c_str(), &end, 10);
      if (it.key().empty() || *end != '\0' || id < 0 || id >= model.vocab_size) {
        return BadRequest(fmt::format("'logit_bias' key '{}' is not a token id in [0, {})",
                                      it.key(), model.vocab_size),
                          "logit_bias");
      }
      if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < -100 ||
          it->get<double>() > 100) {
        return BadRequest("'logit_bias' values must be numbers between -100 and 100", "logit_bias");
      }
      p.logit_bias.emplace_back(static_cast<int32_t>(id), it->get<float>());
    }
  }
  // Logprobs: an integer count for completions, a boolean plus top_logprobs for chat.
  if (chat) {
    f.Bool("logprobs", &req.logprobs);
    if (f.Int("top_logprobs", &req.top_logprobs, 0, 20) && !req.logprobs) {
      f.Fail("top_logprobs", "'top_logprobs' requires 'logprobs' to be true");
    }
    f.Bool("echo", &req.echo);
  } else {
    int32_t n = 0;
    if (f.Int("logprobs", &n, 0, 20)) {
      req.logprobs = true;
      req.top_logprobs = n;
    }
    f.Bool("echo", &req.echo);
    if (const Json* suffix = f.Get("suffix")) {
      (void)suffix;
      f.Fail("suffix", "'suffix' is not supported");
    }
  }
  int32_t prompt_logprobs = 0;
  if (f.Int("prompt_logprobs", &prompt_logprobs, 0, 20)) p.prompt_logprobs = prompt_logprobs;
  if (!f.ok()) return *f.error();
  if (req.logprobs) p.logprobs = req.top_logprobs;

  // Prompts.
  const tokenizer::Tokenizer& tok = *model.tokenizer;
  if (chat) {
    if (const Json* rf = f.Get("response_format")) {
      if (!rf->is_object() || !rf->contains("type") || (*rf)["type"] != "text") {
        return BadRequest("only response_format {\"type\": \"text\"} is supported",
                          "response_format");
      }
    }
    auto text = RenderChat(body, model);
    if (!text.ok()) return text.error();
    bool add_special = false;
    f.Bool("add_special_tokens", &add_special);
    req.prompt_texts.push_back(*text);
    req.prompts.push_back(tok.Encode(*text, add_special, /*parse_special=*/true));
  } else {
    const Json* prompt = f.Get("prompt");
    if (!prompt) return BadRequest("'prompt' is required", "prompt");
    bool add_special = true;
    f.Bool("add_special_tokens", &add_special);
    auto add_ids = [&](const Json& arr) -> std::optional<ApiError> {
      std::vector<int32_t> ids;
      for (const Json& t : arr) {
        if (!t.is_number_integer() || t.get<int64_t>() < 0 ||
            t.get<int64_t>() >= model.vocab_size) {
          return BadRequest(
              fmt::format("token ids in 'prompt' must be integers in [0, {})", model.vocab_size),
              "prompt");
        }
        ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
      }
      req.prompt_texts.push_back(tok.Decode(ids, false));
      req.prompts.push_back(std::move(ids));
      return std::nullopt;
    };
    if (prompt->is_string()) {
      req.prompt_texts.push_back(prompt->get<std::string>());
      req.prompts.push_back(tok.Encode(prompt->get<std::string>(), add_special, true));
    } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number()) {
      if (auto err = add_ids(*prompt)) return *err;
    } else if (prompt->is_array() && !prompt->empty()) {
      if (prompt->size() > 64) return BadRequest("'prompt' takes at most 64 prompts", "prompt");
      for (const Json& item : *prompt) {
        if (item.is_string()) {
          req.prompt_texts.push_back(item.get<std::string>());
          req.prompts.push_back(tok.Encode(item.get<std::string>(), add_special, true));
        } else if (item.is_array() && !item.empty()) {
          if (auto err = add_ids(item)) return *err;
        } else {
          return BadRequest(
              "'prompt' must be a string, an array of strings, an array of token "
              "ids, or an array of token id arrays",
              "prompt");
        }
      }
    } else {
      return BadRequest(
          "'prompt' must be a non-empty string, array of strings, or array of token ids", "prompt");
    }
    if (!f.ok()) return *f.error();
  }
  for (const auto& ids : req.prompts) {
    if (ids.empty()) {
      return BadRequest("the prompt is empty after tokenization", chat ? "messages" : "prompt");
    }
    const int32_t len = static_cast<int32_t>(ids.size());
    if (len >= model.max_model_len) {
      return BadRequest(fmt::format("This model's maximum context length is {} tokens. However, "
                                    "your prompt has {} tokens; the prompt and at least one "
                                    "generated token must fit.",
                                    model.max_model_len, len),
                        chat ? "messages" : "prompt", "context_length_exceeded");
    }
    if (max_tokens && len + *max_tokens > model.max_model_len) {
      return BadRequest(fmt::format("This model's maximum context length is {} tokens. However, "
                                    "you requested {} tokens ({} in the prompt, {} in the "
                                    "completion). Please reduce the length of the prompt or the "
                                    "completion.",
                                    model.max_model_len, len + *max_tokens, len, *max_tokens),
                        chat ? "max_completion_tokens" : "max_tokens", "context_length_exceeded");
    }
  }
  if (max_tokens) {
    p.max_tokens = *max_tokens;
  } else if (chat) {
    p.max_tokens = model.max_model_len - static_cast<int32_t>(req.prompts[0].size());
  } else {
    p.max_tokens = 16;
  }
  if (p.min_tokens > p.max_tokens) {
    return BadRequest(fmt::format("'min_tokens' ({}) must not exceed max_tokens ({})", p.min_tokens,
                                  p.max_tokens),
                      "min_tokens");
  }
  if (req.echo && req.logprobs && !p.prompt_logprobs) p.prompt_logprobs = req.top_logprobs;
  if (!req.stream && req.include_usage) req.include_usage = false;
  Status st = p.Validate(model.vocab_size);
  if (!st.ok()) {
    std::string msg = st.message();
    std::string param;
    if (msg.size() > 1 && msg[0] == '\'') param = msg.substr(1, msg.find('\'', 1) - 1);
    return BadRequest(msg, param);
  }
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
      choice["message"] = {{"role", "assistant"}, {"content", c.text}};
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
    Json d = Json::object();
    if (!state.sent_role) {
      d["role"] = "assistant";
      state.sent_role = true;
    }
    if (!delta.text.empty() || d.contains("role")) d["content"] = delta.text;
    choice["delta"] = d;
    if (state.last_token < 0) state.last_token = req.prompts[prompt].back();
    choice["logprobs"] =
        req.logprobs ? ChatLogprobsJson(delta.logprobs, model, state.last_token) : Json(nullptr);
    if (!delta.logprobs.empty()) state.last_token = delta.logprobs.back().token;
    choice["finish_reason"] = finish;
    if (delta.finish_reason) {
      choice["stop_reason"] = delta.stop_string  ? Json(*delta.stop_string)
                              : delta.stop_token ? Json(*delta.stop_token)
                                                 : Json(nullptr);
    }
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
