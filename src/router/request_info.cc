#include "router/request_info.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

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

// The messages' roles and text in order: what the template would lay out, without it.
std::string MessagesText(const OrderedJson& messages) {
  std::string s;
  if (!messages.is_array()) return s;
  for (const OrderedJson& m : messages) {
    if (!m.is_object()) continue;
    if (auto r = m.find("role"); r != m.end() && r->is_string())
      s += r->get_ref<const std::string&>();
    s += '\n';
    if (auto c = m.find("content"); c != m.end()) {
      if (c->is_string()) {
        s += c->get_ref<const std::string&>();
      } else if (c->is_array()) {
        for (const OrderedJson& part : *c) {
          if (part.is_object()) {
            if (auto t = part.find("text"); t != part.end() && t->is_string())
              s += t->get_ref<const std::string&>();
          }
        }
      }
    }
    s += '\n';
  }
  return s;
}

bool GetBool(const OrderedJson& j, const char* key, bool def, std::optional<ApiError>* err) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return def;
  if (!it->is_boolean()) {
    *err = BadRequest(fmt::format("'{}' must be a boolean", key), key);
    return def;
  }
  return it->get<bool>();
}

std::string GetString(const OrderedJson& j, const char* key, std::optional<ApiError>* err) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "";
  if (!it->is_string()) {
    *err = BadRequest(fmt::format("'{}' must be a string", key), key);
    return "";
  }
  return it->get<std::string>();
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
  // Parsed once, keeping key order: the chat template renders from it (tools via tojson).
  auto parsed = ParseOrderedJson(body, "request body", 64);
  if (!parsed.ok()) {
    const std::string msg = parsed.status().message();
    size_t colon = msg.find(": ");
    return BadRequest(colon == std::string::npos ? msg : msg.substr(colon + 2), "", "invalid_json");
  }
  const OrderedJson& j = *parsed;
  if (!j.is_object()) return BadRequest("the request body must be a JSON object");
  std::optional<ApiError> err;
  info.model = GetString(j, "model", &err);
  info.stream = GetBool(j, "stream", false, &err);
  info.user = GetString(j, "user", &err);
  info.cache_salt = GetString(j, "cache_salt", &err);
  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    auto it = j.find(key);
    if (it != j.end() && it->is_number_integer() && it->get<int64_t>() > 0) {
      info.max_completion_tokens = it->get<int64_t>();
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
    auto messages = j.find("messages");
    if (messages == j.end()) return BadRequest("'messages' is required", "messages");
    if (model && model->info().chat && options.tokenize) {
      auto text = server::RenderParsedChat(j, model->info());
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
    auto prompt = j.find("prompt");
    if (prompt == j.end()) return BadRequest("'prompt' is required", "prompt");
    // The first prompt routes the request (an array of prompts is one engine request each).
    const OrderedJson* first = &*prompt;
    if (prompt->is_array() && !prompt->empty() && !(*prompt)[0].is_number()) first = &(*prompt)[0];
    if (first->is_string()) {
      const std::string& text = first->get_ref<const std::string&>();
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
    } else if (first->is_array()) {
      // Token ids: the engine's tokens already.
      for (const OrderedJson& t : *first) {
        if (!t.is_number_integer()) break;
        if (info.prompt.size() >= options.max_tokens) {
          info.truncated = true;
          break;
        }
        info.prompt.push_back(static_cast<int32_t>(t.get<int64_t>()));
      }
      prompt_bytes = first->size() * 4;  // four bytes a token in the estimate below
      info.exact_tokens = true;
      if (!options.tokenize) info.prompt.clear();
    }
    if (prompt->is_array() && !prompt->empty() && !(*prompt)[0].is_number()) {
      prompt_bytes *= prompt->size();  // several prompts: about as many times the first
    }
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
