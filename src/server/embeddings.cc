#include "server/embeddings.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <mutex>

#include <fmt/format.h>

#include "core/base64.h"
#include "server/request_fields.h"
#include "server/request_parts.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::server {
namespace {

constexpr const char* kInputShape =
    "'input' must be a string, an array of strings, an array of token ids or an array of "
    "token-id arrays";

std::optional<ApiError> TokenIds(const Json& arr, int32_t vocab_size, std::vector<int32_t>* out) {
  for (const Json& t : arr) {
    if (!t.is_number_integer() || t.get<int64_t>() < 0 || t.get<int64_t>() >= vocab_size) {
      return BadRequest(fmt::format("token ids in 'input' must be integers in [0, {})", vocab_size),
                        "input");
    }
    out->push_back(static_cast<int32_t>(t.get<int64_t>()));
  }
  return std::nullopt;
}

// Shortest text that reads back as the same float32.
void AppendFloat(std::string& out, float v) {
  if (!std::isfinite(v)) {
    out += "null";  // JSON has no NaN; a finished vector never has one unless the model is broken
    return;
  }
  fmt::format_to(std::back_inserter(out), "{}", v);
}

}  // namespace

ApiResult<EmbeddingRequest> ParseEmbeddingRequest(const std::string& body, const ModelInfo& info,
                                                  const EmbeddingModel& model) {
  auto parsed = ParseJson(body, "request body", 64);
  if (!parsed.ok()) {
    std::string msg = parsed.status().message();
    return BadRequest(msg.substr(msg.find(": ") + 2), "", "invalid_json");
  }
  const Json& j = *parsed;
  if (!j.is_object()) return BadRequest("the request body must be a JSON object");
  static const char* kKnown[] = {"input",
                                 "model",
                                 "encoding_format",
                                 "dimensions",
                                 "user",
                                 "truncate_prompt_tokens",
                                 "add_special_tokens",
                                 "normalize",
                                 "priority"};
  for (const auto& [key, value] : j.items()) {
    bool known = false;
    for (const char* k : kKnown) known |= key == k;
    if (!known) {
      return BadRequest(fmt::format("'{}' is not supported by /v1/embeddings", key), key);
    }
  }

  EmbeddingRequest req;
  Fields f(j);
  if (auto e = ParseModelName(f, info, &req.model)) return *e;
  std::string format = "float";
  f.String("encoding_format", &format, 64);
  if (f.ok() && format != "float" && format != "base64") {
    f.Fail("encoding_format",
           fmt::format("'encoding_format' must be \"float\" or \"base64\", got \"{}\"", format));
  }
  req.base64 = format == "base64";
  f.String("user", &req.user, 1024);
  f.Int("priority", &req.priority, -1000000, 1000000);
  req.normalize = model.pooling.normalize;
  f.Bool("normalize", &req.normalize);
  bool add_special = true;
  f.Bool("add_special_tokens", &add_special);
  std::optional<int64_t> truncate;
  int64_t t = 0;
  if (f.Int("truncate_prompt_tokens", &t, -1, info.max_model_len)) truncate = t;
  if (truncate && *truncate == 0) {
    f.Fail("truncate_prompt_tokens",
           "'truncate_prompt_tokens' must be -1 (the model's length) or positive");
  }
  int64_t dimensions = 0;
  if (f.Int("dimensions", &dimensions, 1, std::numeric_limits<int32_t>::max())) {
    const model::PoolingConfig& p = model.pooling;
    if (!p.matryoshka) {
      f.Fail("dimensions", fmt::format("model '{}' does not support matryoshka representation: "
                                       "'dimensions' cannot change its output size",
                                       req.model));
    } else if (dimensions > model.hidden_size) {
      f.Fail("dimensions", fmt::format("'dimensions' must be at most {}, the model's embedding "
                                       "size",
                                       model.hidden_size));
    } else if (!p.matryoshka_dimensions.empty() &&
               std::find(p.matryoshka_dimensions.begin(), p.matryoshka_dimensions.end(),
                         dimensions) == p.matryoshka_dimensions.end()) {
      std::string allowed;
      for (int64_t d : p.matryoshka_dimensions) {
        allowed += (allowed.empty() ? "" : ", ") + std::to_string(d);
      }
      f.Fail("dimensions", fmt::format("'dimensions' {} is not one the model was trained for: {}",
                                       dimensions, allowed));
    }
    req.dimensions = dimensions;
  }
  if (!f.ok()) return *f.error();

  auto input = j.find("input");
  if (input == j.end() || input->is_null()) return BadRequest("'input' is required", "input");
  const tokenizer::Tokenizer& tok = *info.tokenizer;
  auto encode = [&](const std::string& text) {
    req.inputs.push_back(tok.Encode(text, add_special, /*parse_special=*/true));
  };
  if (input->is_string()) {
    encode(input->get<std::string>());
  } else if (input->is_array() && !input->empty()) {
    if (input->size() > kMaxEmbeddingInputs) {
      return BadRequest(fmt::format("'input' takes at most {} items", kMaxEmbeddingInputs),
                        "input");
    }
    const Json& first = (*input)[0];
    if (first.is_number()) {
      req.inputs.emplace_back();
      if (auto e = TokenIds(*input, info.vocab_size, &req.inputs.back())) return *e;
    } else {
      for (const Json& item : *input) {
        if (item.is_string() && first.is_string()) {
          encode(item.get<std::string>());
        } else if (item.is_array() && first.is_array() && !item.empty()) {
          req.inputs.emplace_back();
          if (auto e = TokenIds(item, info.vocab_size, &req.inputs.back())) return *e;
        } else {
          return BadRequest(kInputShape, "input");
        }
      }
    }
  } else {
    return BadRequest(kInputShape, "input");
  }

  for (size_t i = 0; i < req.inputs.size(); ++i) {
    std::vector<int32_t>& ids = req.inputs[i];
    if (truncate) {
      // vLLM's truncate_prompt_tokens keeps the last k tokens.
      const size_t keep = static_cast<size_t>(*truncate < 0 ? info.max_model_len : *truncate);
      if (ids.size() > keep) ids.erase(ids.begin(), ids.end() - static_cast<ptrdiff_t>(keep));
    }
    if (ids.empty()) {
      return BadRequest(fmt::format("input {} is empty after tokenization", i), "input");
    }
    if (static_cast<int64_t>(ids.size()) > info.max_model_len) {
      return BadRequest(fmt::format("This model's maximum context length is {} tokens. However, "
                                    "input {} has {} tokens. Shorten it or set "
                                    "'truncate_prompt_tokens'.",
                                    info.max_model_len, i, ids.size()),
                        "input", "context_length_exceeded");
    }
  }
  return req;
}

std::vector<float> FinishEmbedding(std::vector<float> v, const EmbeddingRequest& req) {
  if (req.dimensions > 0 && static_cast<size_t>(req.dimensions) < v.size()) {
    v.resize(static_cast<size_t>(req.dimensions));
  }
  if (req.normalize) {
    // torch.nn.functional.normalize: x / max(||x||, 1e-12), the norm summed in double here.
    double sum = 0;
    for (float x : v) sum += static_cast<double>(x) * x;
    const double norm = std::max(std::sqrt(sum), 1e-12);
    for (float& x : v) x = static_cast<float>(x / norm);
  }
  return v;
}

std::string Base64Floats(const std::vector<float>& v) {
  std::string bytes(v.size() * 4, '\0');
  for (size_t i = 0; i < v.size(); ++i) {
    uint32_t u;
    std::memcpy(&u, &v[i], 4);
    for (size_t b = 0; b < 4; ++b) bytes[i * 4 + b] = static_cast<char>((u >> (8 * b)) & 0xFF);
  }
  return Base64Encode(bytes);
}

std::string RenderEmbeddingResponse(const EmbeddingRequest& req,
                                    const std::vector<std::vector<float>>& vectors,
                                    int64_t prompt_tokens, const std::string& id, int64_t created) {
  // Written by hand: a vector of floats as nlohmann::json doubles would print 17 digits each.
  std::string out =
      fmt::format(R"({{"id":{},"object":"list","created":{},"model":{},"data":[)", Json(id).dump(),
                  created, Json(req.model).dump(-1, ' ', false, Json::error_handler_t::replace));
  for (size_t i = 0; i < vectors.size(); ++i) {
    if (i) out += ',';
    fmt::format_to(std::back_inserter(out), R"({{"object":"embedding","index":{},"embedding":)", i);
    if (req.base64) {
      out += '"' + Base64Floats(vectors[i]) + '"';
    } else {
      out += '[';
      for (size_t d = 0; d < vectors[i].size(); ++d) {
        if (d) out += ',';
        AppendFloat(out, vectors[i][d]);
      }
      out += ']';
    }
    out += '}';
  }
  fmt::format_to(std::back_inserter(out), R"(],"usage":{{"prompt_tokens":{},"total_tokens":{}}}}})",
                 prompt_tokens, prompt_tokens);
  return out;
}

namespace {

// One /v1/embeddings request in flight.
struct EmbeddingContext {
  std::mutex mu;
  std::shared_ptr<HttpExchange> ex;
  EmbeddingRequest req;
  std::string request_id;
  int64_t created = 0;
  EmbeddingsRoute::DoneCallback on_done;
  std::vector<std::vector<float>> vectors;
  int remaining = 0;
  int64_t prompt_tokens = 0;
  Status error;
  bool client_gone = false;
  bool done = false;

  std::string EngineId(size_t i) const { return request_id + "#" + std::to_string(i); }
};

}  // namespace

EmbeddingsRoute::EmbeddingsRoute(engine::Engine& engine, const ModelInfo& info,
                                 EmbeddingModel model, Hooks hooks)
    : engine_(engine), info_(info), model_(std::move(model)), hooks_(std::move(hooks)) {}

void EmbeddingsRoute::Handle(const std::shared_ptr<HttpExchange>& ex, const std::string& request_id,
                             int64_t created, DoneCallback on_done) {
  auto parsed = ParseEmbeddingRequest(ex->body(), info_, model_);
  if (!parsed.ok()) return hooks_.reply_error(*ex, parsed.error(), request_id);
  const int n = static_cast<int>(parsed->inputs.size());
  if (auto refused = hooks_.admit(n)) return hooks_.reply_error(*ex, *refused, request_id);

  auto ctx = std::make_shared<EmbeddingContext>();
  ctx->ex = ex;
  ctx->req = std::move(*parsed);
  ctx->request_id = request_id;
  ctx->created = created;
  ctx->on_done = std::move(on_done);
  ctx->vectors.resize(static_cast<size_t>(n));
  ctx->remaining = n;

  // Called with ctx->mu held once every input has finished.
  auto finish = [this](EmbeddingContext& c) {
    c.done = true;
    int status = 200;
    if (c.client_gone) {
      status = 499;
    } else if (!c.error.ok()) {
      ApiError e;
      e.status = c.error.code() == StatusCode::kUnavailable       ? 503
                 : c.error.code() == StatusCode::kInvalidArgument ? 400
                                                                  : 500;
      e.type = e.status == 400 ? "invalid_request_error" : "internal_server_error";
      e.param = e.status == 400 ? "input" : "";
      e.message = c.error.message();
      status = e.status;
      hooks_.reply_error(*c.ex, e, c.request_id);
    } else {
      hooks_.reply(*c.ex, 200,
                   RenderEmbeddingResponse(c.req, c.vectors, c.prompt_tokens,
                                           "embd-" + c.request_id, c.created),
                   c.request_id);
    }
    if (c.on_done) c.on_done(status, c.prompt_tokens);
    c.on_done = nullptr;
    c.ex.reset();
  };

  std::weak_ptr<EmbeddingContext> weak = ctx;
  ex->OnClose([this, weak] {
    auto c = weak.lock();
    if (!c) return;
    size_t count;
    {
      std::lock_guard<std::mutex> lk(c->mu);
      c->client_gone = true;
      count = c->vectors.size();
    }
    for (size_t i = 0; i < count; ++i) engine_.Abort(c->EngineId(i));
  });
  for (int i = 0; i < n; ++i) {
    engine::Request r;
    r.id = ctx->EngineId(static_cast<size_t>(i));
    r.prompt_tokens = ctx->req.inputs[static_cast<size_t>(i)];
    r.pooling = engine::PoolingParams{model_.pooling.type};
    r.priority = ctx->req.priority;
    Status st = engine_.Submit(std::move(r), [this, ctx, i, finish](engine::RequestOutput out) {
      hooks_.input_done(out);
      std::lock_guard<std::mutex> lk(ctx->mu);
      if (ctx->done || !out.finished) return;
      if (!out.error.ok() && ctx->error.ok()) ctx->error = out.error;
      if (out.embedding.empty() && ctx->error.ok() && !ctx->client_gone) {
        ctx->error = UnavailableError("the request was aborted");
      }
      ctx->prompt_tokens += out.usage.prompt_tokens;
      ctx->vectors[static_cast<size_t>(i)] = FinishEmbedding(std::move(out.embedding), ctx->req);
      if (--ctx->remaining == 0) finish(*ctx);
    });
    if (!st.ok()) {
      // Inputs already accepted are aborted; the answer goes out once they have ended.
      for (int k = 0; k < i; ++k) engine_.Abort(ctx->EngineId(static_cast<size_t>(k)));
      std::lock_guard<std::mutex> lk(ctx->mu);
      if (ctx->error.ok()) ctx->error = st;
      for (int k = i; k < n; ++k) {
        engine::RequestOutput skipped;
        skipped.finished = true;
        hooks_.input_done(skipped);
      }
      ctx->remaining -= n - i;
      if (ctx->remaining == 0 && !ctx->done) finish(*ctx);
      return;
    }
  }
}

}  // namespace kinfer::server
