// libFuzzer target: request bodies through the Responses and Messages front doors (their
// translation onto the chat request, with a real tokenizer), count_tokens, and the rendering of
// whatever parses: the whole response and the event stream, with text taken from the input.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "server/chat_renderer.h"
#include "server/front_door.h"
#include "server/messages_api.h"
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
  std::string body(reinterpret_cast<const char*>(data), size);
  namespace server = kinfer::server;
  namespace engine = kinfer::engine;
  for (const char* path : {"/v1/responses", "/v1/messages"}) {
    auto door = server::ParseFrontDoorRequest(path, body, g_info, "id", 0);
    if (!door.ok()) {
      (void)server::ErrorBodyForPath(path, door.error(), "id");
      continue;
    }
    server::ChoiceState choice;
    choice.text = body.substr(0, 16);
    choice.finish_reason = engine::FinishReason::kLength;
    engine::Usage usage{3, 2, 1};
    (void)door->writer->Response(choice, usage);
    engine::SequenceOutput delta;
    delta.text = body.substr(0, 8);
    delta.finish_reason = engine::FinishReason::kStop;
    if (size % 2) delta.stop_string = "x";
    std::string sse = door->writer->StreamStart();
    sse += door->writer->StreamDelta(delta);
    sse += door->writer->StreamEnd(usage, kinfer::Status::Ok());
  }
  auto n = server::CountMessageTokens(body, g_info);
  if (!n.ok()) (void)server::AnthropicErrorJson(n.error(), "id");
  return 0;
}
