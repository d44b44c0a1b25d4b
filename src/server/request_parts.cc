#include "server/request_parts.h"

#include <cmath>
#include <cstdlib>
#include <limits>

#include <fmt/format.h>

#include "tokenizer/tokenizer.h"

namespace kinfer::server {
namespace {

constexpr int32_t kMaxInt = std::numeric_limits<int32_t>::max();

const char* PromptParam(Endpoint endpoint) {
  return endpoint == Endpoint::kChat ? "messages" : "prompt";
}

}  // namespace

ParseError ParseModelName(Fields& f, const ModelInfo& model, std::string* name) {
  *name = model.served_names.empty() ? "" : model.served_names[0];
  std::string requested;
  if (f.String("model", &requested, 1024)) {
    bool found = false;
    for (const auto& n : model.served_names) found |= n == requested;
    if (!found && model.has_adapter) found = model.has_adapter(requested);
    if (!found) {
      ApiError e;
      e.status = 404;
      e.type = "not_found_error";
      e.message = fmt::format("The model `{}` does not exist.", requested);
      e.param = "model";
      e.code = "model_not_found";
      return e;
    }
    *name = requested;
  }
  return f.error();
}

ParseError ParseSampling(Fields& f, const ModelInfo& model, engine::SamplingParams* p) {
  f.Int("n", &p->n, 1, 128);
  int32_t best_of = 0;
  if (f.Int("best_of", &best_of, 1, 128) && best_of != p->n) {
    f.Fail("best_of", "'best_of' different from 'n' is not supported");
  }
  f.Float("temperature", &p->temperature, 0, 100);
  if (f.Float("top_p", &p->top_p, 0, 1) && p->top_p <= 0) {
    f.Fail("top_p", "'top_p' must be greater than 0");
  }
  f.Int("top_k", &p->top_k, -1, kMaxInt);
  f.Float("min_p", &p->min_p, 0, 1);
  f.Float("repetition_penalty", &p->repetition_penalty, 1e-6, 100);
  f.Float("presence_penalty", &p->presence_penalty, -2, 2);
  f.Float("frequency_penalty", &p->frequency_penalty, -2, 2);
  int64_t seed = 0;
  if (f.Int("seed", &seed, std::numeric_limits<int64_t>::min(),
            std::numeric_limits<int64_t>::max())) {
    p->seed = static_cast<uint64_t>(seed);
  }
  if (!f.ok()) return f.error();
  if (const Json* lb = f.Get("logit_bias")) {
    if (!lb->is_object()) {
      return BadRequest("'logit_bias' must be an object mapping token ids to numbers",
                        "logit_bias");
    }
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
      p->logit_bias.emplace_back(static_cast<int32_t>(id), it->get<float>());
    }
  }
  return std::nullopt;
}

ParseError ParseStopping(Fields& f, Endpoint endpoint, const ModelInfo& model,
                         engine::SamplingParams* p, std::optional<int32_t>* max_tokens) {
  f.Bool("ignore_eos", &p->ignore_eos);
  f.Int("min_tokens", &p->min_tokens, 0, kMaxInt);
  f.Bool("skip_special_tokens", &p->skip_special_tokens);
  f.Bool("include_stop_str_in_output", &p->include_stop_str_in_output);
  int32_t mt = 0;
  if (f.Int("max_tokens", &mt, 1, kMaxInt)) *max_tokens = mt;
  if (endpoint == Endpoint::kChat && f.Int("max_completion_tokens", &mt, 1, kMaxInt)) {
    *max_tokens = mt;
  }
  if (!f.ok()) return f.error();

  if (const Json* stop = f.Get("stop")) {
    if (stop->is_string()) {
      p->stop.push_back(stop->get<std::string>());
    } else if (stop->is_array()) {
      for (const Json& s : *stop) {
        if (!s.is_string()) {
          return BadRequest("'stop' must be a string or an array of strings", "stop");
        }
        p->stop.push_back(s.get<std::string>());
      }
    } else {
      return BadRequest("'stop' must be a string or an array of strings", "stop");
    }
    if (p->stop.size() > 16) return BadRequest("'stop' takes at most 16 strings", "stop");
    for (const auto& s : p->stop) {
      if (s.empty()) return BadRequest("'stop' strings must not be empty", "stop");
      if (s.size() > 1024) return BadRequest("'stop' strings must be at most 1024 bytes", "stop");
    }
  }
  if (const Json* ids = f.Get("stop_token_ids")) {
    if (!ids->is_array()) {
      return BadRequest("'stop_token_ids' must be an array of integers", "stop_token_ids");
    }
    for (const Json& t : *ids) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= model.vocab_size) {
        return BadRequest(
            fmt::format("'stop_token_ids' entries must be token ids in [0, {})", model.vocab_size),
            "stop_token_ids");
      }
      p->stop_token_ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
  }
  return std::nullopt;
}

ParseError ParseStreaming(Fields& f, GenerationRequest* req) {
  f.Bool("stream", &req->stream);
  if (!f.ok()) return f.error();
  if (const Json* so = f.Get("stream_options")) {
    if (!so->is_object()) return BadRequest("'stream_options' must be an object", "stream_options");
    if (!req->stream) {
      return BadRequest("'stream_options' is only allowed when 'stream' is true", "stream_options");
    }
    Fields sf(*so);
    sf.Bool("include_usage", &req->include_usage);
    sf.Bool("continuous_usage_stats", &req->continuous_usage_stats);
    if (!sf.ok()) {
      ApiError e = *sf.error();
      e.param = "stream_options." + e.param;
      return e;
    }
  }
  return std::nullopt;
}

ParseError ParseRequestMeta(Fields& f, GenerationRequest* req) {
  f.Int("priority", &req->priority, -1000000, 1000000);
  f.String("cache_salt", &req->cache_salt, 1024);
  f.String("user", &req->user, 1024);
  return f.error();
}

ParseError ParseLogprobs(Fields& f, Endpoint endpoint, GenerationRequest* req) {
  engine::SamplingParams& p = req->params;
  if (endpoint == Endpoint::kChat) {
    f.Bool("logprobs", &req->logprobs);
    if (f.Int("top_logprobs", &req->top_logprobs, 0, 20) && !req->logprobs) {
      f.Fail("top_logprobs", "'top_logprobs' requires 'logprobs' to be true");
    }
    f.Bool("echo", &req->echo);
  } else {
    int32_t n = 0;
    if (f.Int("logprobs", &n, 0, 20)) {
      req->logprobs = true;
      req->top_logprobs = n;
    }
    f.Bool("echo", &req->echo);
    if (f.Get("suffix")) f.Fail("suffix", "'suffix' is not supported");
  }
  int32_t prompt_logprobs = 0;
  if (f.Int("prompt_logprobs", &prompt_logprobs, 0, 20)) p.prompt_logprobs = prompt_logprobs;
  if (!f.ok()) return f.error();
  if (req->logprobs) p.logprobs = req->top_logprobs;
  return std::nullopt;
}

ParseError ParsePrompts(Fields& f, Endpoint endpoint, const std::string& body,
                        const ModelInfo& model, GenerationRequest* req) {
  const tokenizer::Tokenizer& tok = *model.tokenizer;
  if (endpoint == Endpoint::kChat) {
    auto text = RenderChat(body, model);
    if (!text.ok()) return text.error();
    bool add_special = false;
    f.Bool("add_special_tokens", &add_special);
    req->prompt_texts.push_back(*text);
    req->prompts.push_back(tok.Encode(*text, add_special, /*parse_special=*/true));
    return std::nullopt;
  }
  const Json* prompt = f.Get("prompt");
  if (!prompt) return BadRequest("'prompt' is required", "prompt");
  bool add_special = true;
  f.Bool("add_special_tokens", &add_special);
  auto add_ids = [&](const Json& arr) -> ParseError {
    std::vector<int32_t> ids;
    for (const Json& t : arr) {
      if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= model.vocab_size) {
        return BadRequest(
            fmt::format("token ids in 'prompt' must be integers in [0, {})", model.vocab_size),
            "prompt");
      }
      ids.push_back(static_cast<int32_t>(t.get<int64_t>()));
    }
    req->prompt_texts.push_back(tok.Decode(ids, false));
    req->prompts.push_back(std::move(ids));
    return std::nullopt;
  };
  if (prompt->is_string()) {
    req->prompt_texts.push_back(prompt->get<std::string>());
    req->prompts.push_back(tok.Encode(prompt->get<std::string>(), add_special, true));
  } else if (prompt->is_array() && !prompt->empty() && (*prompt)[0].is_number()) {
    if (auto err = add_ids(*prompt)) return err;
  } else if (prompt->is_array() && !prompt->empty()) {
    if (prompt->size() > 64) return BadRequest("'prompt' takes at most 64 prompts", "prompt");
    for (const Json& item : *prompt) {
      if (item.is_string()) {
        req->prompt_texts.push_back(item.get<std::string>());
        req->prompts.push_back(tok.Encode(item.get<std::string>(), add_special, true));
      } else if (item.is_array() && !item.empty()) {
        if (auto err = add_ids(item)) return err;
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
  return f.error();
}

ParseError CheckLengths(Endpoint endpoint, std::optional<int32_t> max_tokens,
                        const ModelInfo& model, GenerationRequest* req) {
  const bool chat = endpoint == Endpoint::kChat;
  engine::SamplingParams& p = req->params;
  for (const auto& ids : req->prompts) {
    if (ids.empty()) {
      return BadRequest("the prompt is empty after tokenization", PromptParam(endpoint));
    }
    const int32_t len = static_cast<int32_t>(ids.size());
    if (len >= model.max_model_len) {
      return BadRequest(fmt::format("This model's maximum context length is {} tokens. However, "
                                    "your prompt has {} tokens; the prompt and at least one "
                                    "generated token must fit.",
                                    model.max_model_len, len),
                        PromptParam(endpoint), "context_length_exceeded");
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
    p.max_tokens = model.max_model_len - static_cast<int32_t>(req->prompts[0].size());
  } else {
    p.max_tokens = 16;
  }
  if (p.min_tokens > p.max_tokens) {
    return BadRequest(fmt::format("'min_tokens' ({}) must not exceed max_tokens ({})", p.min_tokens,
                                  p.max_tokens),
                      "min_tokens");
  }
  if (req->echo && req->logprobs && !p.prompt_logprobs) p.prompt_logprobs = req->top_logprobs;
  if (!req->stream && req->include_usage) req->include_usage = false;
  Status st = p.Validate(model.vocab_size);
  if (!st.ok()) {
    std::string msg = st.message();
    std::string param;
    if (msg.size() > 1 && msg[0] == '\'') param = msg.substr(1, msg.find('\'', 1) - 1);
    return BadRequest(msg, param);
  }
  return std::nullopt;
}

}  // namespace kinfer::server
