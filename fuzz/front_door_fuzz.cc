// libFuzzer target: request bodies through the Responses and Messages front doors (their
// translation onto the chat request, with a real tokenizer), count_tokens, and the rendering of
// whatever parses: the whole response and the event stream. The input is the body, then
// optionally a NUL byte and the model's output text (else the body's start is the output). Odd
// sizes turn on the Hermes tool-call and Qwen3 reasoning split of the output, so the writers'
// item and block state machines see reasoning, text and tool calls in any order.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "server/chat_renderer.h"
#include "server/front_door.h"
#include "server/messages_api.h"
#include "structured/reasoning_parser.h"
#include "structured/tool_parser.h"
#include "tokenizer/tokenizer.h"

namespace {
std::unique_ptr<kinfer::tokenizer::Tokenizer> g_tok;
kinfer::server::ModelInfo g_info;
}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  auto tok =
      kinfer::tokenizer::Tokenizer::Load(KINFER_SHARED_DIR "/models/stories260K/stories260K.gguf");
  if (!tok.ok()) __builtin_trap();
  g_tok = std::move(*tok);
  g_info.served_names = {"m"};
  g_info.max_model_len = 512;
  g_info.vocab_size = g_tok->vocab_size();
  g_info.tokenizer = g_tok.get();
  auto chat = kinfer::server::MakeChatRenderer(
      "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}\n{% endfor %}"
      "{% if add_generation_prompt %}<|assistant|>{% endif %}",
      *g_tok);
  if (chat.ok()) g_info.chat = std::move(*chat);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 1 << 16) return 0;
  const std::string input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string body = input.substr(0, nul);
  const std::string text = nul == std::string::npos ? body.substr(0, 256) : input.substr(nul + 1);
  namespace server = kinfer::server;
  namespace structured = kinfer::structured;
  if (size % 2) {
    g_info.tool_format = structured::ToolFormat::kHermes;
    g_info.reasoning_format = structured::ReasoningFormat::kQwen3;
  } else {
    g_info.tool_format.reset();
    g_info.reasoning_format.reset();
  }
  namespace engine = kinfer::engine;
  for (const char* path : {"/v1/responses", "/v1/messages"}) {
    auto door = server::ParseFrontDoorRequest(path, body, g_info, "id", 0);
    if (!door.ok()) {
      (void)server::ErrorBodyForPath(path, door.error(), "id");
      continue;
    }
    server::ChoiceState choice;
    choice.text = text;
    choice.finish_reason = engine::FinishReason::kLength;
    engine::Usage usage{3, 2, 1};
    (void)door->writer->Response(choice, usage);
    engine::SequenceOutput delta;
    std::string sse = door->writer->StreamStart();
    // The same text in pieces of 7 bytes, the last one finishing.
    for (size_t at = 0; at < text.size() || at == 0; at += 7) {
      delta.text = text.substr(at, 7);
      if (at + 7 >= text.size()) {
        delta.finish_reason = engine::FinishReason::kStop;
        if (size % 3 == 0) delta.stop_string = "x";
      }
      sse += door->writer->StreamDelta(delta);
    }
    sse += door->writer->StreamEnd(usage, kinfer::Status::Ok());
  }
  auto n = server::CountMessageTokens(body, g_info);
  if (!n.ok()) (void)server::AnthropicErrorJson(n.error(), "id");
  return 0;
}
