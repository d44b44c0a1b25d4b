// libFuzzer target: what the router reads from a request before it picks a replica (body
// fields, the prompt rendered with a real chat template and tokenized with a real tokenizer,
// cut at a small cap so cuts are exercised), the block hashes of the result, and the replica
// URLs of --backends (the input's first line; the body is the rest).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "router/backend_pool.h"
#include "router/request_info.h"
#include "router/upstream.h"

namespace {
std::unique_ptr<kinfer::router::PromptModel> g_model;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  auto m = kinfer::router::PromptModel::Load(
      KINFER_SHARED_DIR "/models/stories260K/stories260K.gguf",
      KINFER_SHARED_DIR "/chat-templates/llama.cpp/Qwen-Qwen2.5-7B-Instruct.jinja");
  if (!m.ok()) __builtin_trap();
  g_model = std::move(*m);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 1 << 16) return 0;
  std::string input(reinterpret_cast<const char*>(data), size);
  const size_t eol = input.find('\n');
  (void)kinfer::router::ParseEndpoint(input.substr(0, eol));
  const std::string body = eol == std::string::npos ? input : input.substr(eol + 1);
  kinfer::router::RequestInfoOptions o;
  o.max_tokens = 64;
  for (const char* path : {"/v1/completions", "/v1/chat/completions", "/tokenize"}) {
    const kinfer::router::PromptModel* const models[] = {g_model.get(), nullptr};
    for (const kinfer::router::PromptModel* model : models) {
      auto info = kinfer::router::ReadRequestInfo(path, body, model, o);
      if (!info.ok()) continue;
      if (info->prompt.size() > o.max_tokens) __builtin_trap();
      (void)kinfer::router::PrefixHashes(info->prompt, 16, 0);
    }
  }
  return 0;
}
