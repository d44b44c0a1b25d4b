#include "router/request_info.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>
#include <simdjson.h>

#include "core/mapped_file.h"
#include "server/chat_renderer.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::router {
namespace {

using server::ApiError;
using server::BadRequest;

// Bytes of text kept for a prompt capped at `max_tokens` tokens: generous, since a token is
// rarely longer than this many bytes on average.
constexpr size_t kBytesPerTokenBound = 8;
// Tokens dropped at the end of a cut prompt: the cut can change how the last words merge.
constexpr size_t kCutMargin = 4;

// `text` cut to about `max_bytes`, at a whitespace so words stay whole.
std::string_view Cut(std::string_view text, size_t max_bytes, bool* truncated) {
  *truncated = text.size() > max_bytes;
  if (!*truncated) return text;
  size_t end = max_bytes;
  size_t ws = text.find_last_of(" \n\t", end);
  if (ws != std::string_view::npos && ws > max_bytes / 2) end = ws;
  return text.substr(0, end);
}

// Four bytes to a pseudo-token, for routing without the model's tokenizer.
void AppendPseudoTokens(std::string_view bytes, std::vector<int32_t>* out) {
  for (size_t i = 0; i < bytes.size(); i += 4) {
    uint32_t v = 0;
    std::memcpy(&v, bytes.data() + i, std::min<size_t>(4, bytes.size() - i));
    out->push_back(static_cast<int32_t>(v & 0x7FFFFFFF) ^ static_cast<int32_t>(v >> 31));
  }
}

using Element = simdjson::dom::element;

// The body parsed by simdjson's DOM parser (fully validated, UTF-8 included, depth at most 64):
// several times faster than nlohmann on large bodies, which the router reads on every request.
// One parser per thread; it keeps its buffers.
simdjson::dom::parser& Parser() {
  thread_local simdjson::dom::parser parser = [] {
    simdjson::dom::parser p;
    // Only fails for lack of memory; parse() then allocates (with the default depth) itself.
    if (p.allocate(1 << 16, /*max_depth=*/64) != simdjson::SUCCESS) return simdjson::dom::parser();
    return p;
  }();
  return parser;
}

// A field of the body object; nullopt when absent or null.
std::optional<Element> Field(simdjson::dom::object obj, std::string_view key) {
  Element e;
  if (obj[key].get(e) != simdjson::SUCCESS || e.is_null()) return std::nullopt;
  return e;
}

bool GetBool(simdjson::dom::object j, const char* key, bool def, std::optional<ApiError>* err) {
  auto e = Field(j, key);
  if (!e) return def;
  if (!e->is_bool()) {
    *err = BadRequest(fmt::format("'{}' must be a boolean", key), key);
    return def;
  }
  return bool(*e);
}

std::string GetString(simdjson::dom::object j, const char* key, std::optional<ApiError>* err) {
  auto e = Field(j, key);
  if (!e) return "";
  if (!e->is_string()) {
    *err = BadRequest(fmt::format("'{}' must be a string", key), key);
    return "";
  }
  return std::string(std::string_view(*e));
}

// The same value for the chat template renderer (objects keep their key order).
OrderedJson ToJson(Element e) {
  switch (e.type()) {
    case simdjson::dom::element_type::ARRAY: {
      OrderedJson a = OrderedJson::array();
      for (Element x : simdjson::dom::array(e)) a.push_back(ToJson(x));
      return a;
    }
    case simdjson::dom::element_type::OBJECT: {
      OrderedJson o = OrderedJson::object();
      for (auto [k, v] : simdjson::dom::object(e)) o[std::string(k)] = ToJson(v);
      return o;
    }
    case simdjson::dom::element_type::INT64:
      return int64_t(e);
    case simdjson::dom::element_type::UINT64:
      return uint64_t(e);
    case simdjson::dom::element_type::DOUBLE:
      return double(e);
    case simdjson::dom::element_type::STRING:
      return std::string(std::string_view(e));
    case simdjson::dom::element_type::BOOL:
      return bool(e);
    case simdjson::dom::element_type::NULL_VALUE:
      return nullptr;
  }
  return nullptr;
}

// The messages' roles and text in order: what the template would lay out, without it.
std::string MessagesText(Element messages) {
  std::string s;
  if (!messages.is_array()) return s;
  for (Element m : simdjson::dom::array(messages)) {
    if (!m.is_object()) continue;
    simdjson::dom::object mo(m);
    if (auto r = Field(mo, "role"); r && r->is_string()) s += std::string_view(*r);
    s += '\n';
    if (auto c = Field(mo, "content")) {
      if (c->is_string()) {
        s += std::string_view(*c);
      } else if (c->is_array()) {
        for (Element part : simdjson::dom::array(*c)) {
          if (!part.is_object()) continue;
          if (auto t = Field(simdjson::dom::object(part), "text"); t && t->is_string()) {
            s += std::string_view(*t);
          }
        }
      }
    }
    s += '\n';
  }
  return s;
}

}  // namespace

PromptModel::~PromptModel() = default;

Result<std::unique_ptr<PromptModel>> PromptModel::Load(const std::string& path,
                                                       const std::string& chat_template_file) {
  std::unique_ptr<PromptModel> m(new PromptModel());
  KINFER_ASSIGN_OR_RETURN(m->tok_, tokenizer::Tokenizer::Load(path));
  std::string source = m->tok_->chat_template();
  if (!chat_template_file.empty()) {
    auto text = ReadFileToString(chat_template_file);
    if (!text.ok()) return text.status().WithPrefix("--chat-template");
    source = *text;
  }
  if (!source.empty()) {
    auto renderer = server::MakeChatRenderer(source, *m->tok_);
    if (!renderer.ok()) {
      return renderer.status().WithPrefix(chat_template_file.empty()
                                              ? path + ": chat template"
                                              : "--chat-template " + chat_template_file);
    }
    m->info_.chat = std::move(*renderer);
  }
  m->info_.tokenizer = m->tok_.get();
  m->info_.vocab_size = m->tok_->vocab_size();
  return m;
}

server::ApiResult<RequestInfo> ReadRequestInfo(std::string_view path, std::string_view body,
                                               const PromptModel* model,
                                               const RequestInfoOptions& options) {
  RequestInfo info;
  Element doc;
  if (auto e = Parser().parse(body.data(), body.size(), /*realloc_if_needed=*/true).get(doc)) {
    return BadRequest(fmt::format("invalid JSON: {}", simdjson::error_message(e)), "",
                      "invalid_json");
  }
  if (!doc.is_object()) return BadRequest("the request body must be a JSON object");
  const simdjson::dom::object j(doc);
  std::optional<ApiError> err;
  info.model = GetString(j, "model", &err);
  info.stream = GetBool(j, "stream", false, &err);
  info.user = GetString(j, "user", &err);
  info.cache_salt = GetString(j, "cache_salt", &err);
  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    auto e = Field(j, key);
    if (e && e->is_int64() && int64_t(*e) > 0) {
      info.max_completion_tokens = int64_t(*e);
      break;
    }
  }
  if (err) return *err;

  const bool chat = path == "/v1/chat/completions";
  const bool completions = path == "/v1/completions";
  // The request's whole prompt size in bytes, for the token estimate when not all of it is
  // tokenized.
  size_t prompt_bytes = 0;
  size_t kept_bytes = 0;  // of those, tokenized
  const size_t max_bytes = options.max_tokens * kBytesPerTokenBound;
  if (chat) {
    auto messages = Field(j, "messages");
    if (!messages) return BadRequest("'messages' is required", "messages");
    if (model && model->info().chat && options.tokenize) {
      // The renderer reads the body as the replica's parser builds it.
      auto text = server::RenderParsedChat(ToJson(doc), model->info());
      if (!text.ok()) return text.error();
      prompt_bytes = text->size();
      bool add_special = GetBool(j, "add_special_tokens", false, &err);
      if (err) return *err;
      std::string_view kept = Cut(*text, max_bytes, &info.truncated);
      kept_bytes = kept.size();
      info.prompt = model->tokenizer().Encode(kept, add_special, /*parse_special=*/true);
      info.exact_tokens = true;
    } else {
      std::string text = MessagesText(*messages);
      prompt_bytes = text.size();
      if (options.tokenize) {
        std::string_view kept = Cut(text, max_bytes, &info.truncated);
        AppendPseudoTokens(kept, &info.prompt);
      }
    }
  } else if (completions) {
    auto prompt = Field(j, "prompt");
    if (!prompt) return BadRequest("'prompt' is required", "prompt");
    // The first prompt routes the request (an array of prompts is one engine request each).
    Element first = *prompt;
    size_t prompts = 1;
    if (prompt->is_array()) {
      simdjson::dom::array arr(*prompt);
      Element head;
      if (arr.size() > 0 && arr.at(0).get(head) == simdjson::SUCCESS && !head.is_number()) {
        first = head;
        prompts = arr.size();
      }
    }
    if (first.is_string()) {
      const std::string_view text(first);
      prompt_bytes = text.size();
      if (options.tokenize) {
        std::string_view kept = Cut(text, max_bytes, &info.truncated);
        kept_bytes = kept.size();
        if (model) {
          bool add_special = GetBool(j, "add_special_tokens", true, &err);
          if (err) return *err;
          info.prompt = model->tokenizer().Encode(kept, add_special, /*parse_special=*/true);
          info.exact_tokens = true;
        } else {
          AppendPseudoTokens(kept, &info.prompt);
        }
      }
    } else if (first.is_array()) {
      // Token ids: the engine's tokens already.
      simdjson::dom::array ids(first);
      for (Element t : ids) {
        if (!t.is_int64()) break;
        if (info.prompt.size() >= options.max_tokens) {
          info.truncated = true;
          break;
        }
        info.prompt.push_back(static_cast<int32_t>(int64_t(t)));
      }
      prompt_bytes = ids.size() * 4;  // four bytes a token in the estimate below
      info.exact_tokens = true;
      if (!options.tokenize) info.prompt.clear();
    }
    prompt_bytes *= prompts;  // several prompts: about as many times the first
  }
  // Tokens for rate limits: exact when the whole prompt was tokenized; for a cut prompt, its
  // tokens per byte applied to the whole; else about four bytes a token.
  const bool whole = info.exact_tokens && !info.truncated && options.tokenize;
  if (whole) {
    info.prompt_tokens_estimate = static_cast<int64_t>(info.prompt.size());
  } else if (info.exact_tokens && kept_bytes > 0 && !info.prompt.empty()) {
    info.prompt_tokens_estimate =
        static_cast<int64_t>(static_cast<double>(info.prompt.size()) *
                             static_cast<double>(prompt_bytes) / static_cast<double>(kept_bytes));
  } else {
    info.prompt_tokens_estimate = static_cast<int64_t>(prompt_bytes / 4 + 1);
  }
  if (info.truncated && info.prompt.size() > kCutMargin) {
    info.prompt.resize(info.prompt.size() - kCutMargin);
  }
  if (info.prompt.size() > options.max_tokens) info.prompt.resize(options.max_tokens);
  return info;
}

}  // namespace kinfer::router
