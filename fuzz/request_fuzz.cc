// libFuzzer target: request bodies through the OpenAI API's parsing and validation (both
// endpoints, with a real tokenizer, structured output compiled against its vocabulary, tools with
// the Hermes format), and the response rendering of whatever parses.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "server/chat_renderer.h"
#include "server/openai_api.h"
#include "tokenizer/tokenizer.h"

namespace {
std::unique_ptr<kinfer::tokenizer::Tokenizer> g_tok;
std::unique_ptr<kinfer::structured::GrammarVocabulary> g_grammar;
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
  auto grammar =
      kinfer::structured::GrammarVocabulary::Create(*g_tok, g_tok->vocab_size(), g_tok->eos_ids());
  if (!grammar.ok()) __builtin_trap();
  g_grammar = std::move(*grammar);
  g_info.grammar = g_grammar.get();
  g_info.tool_format = kinfer::structured::ToolFormat::kHermes;
  g_info.reasoning_format = kinfer::structured::ReasoningFormat::kQwen3;
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size > 1 << 16) return 0;
  std::string body(reinterpret_cast<const char*>(data), size);
  using kinfer::server::Endpoint;
  for (Endpoint e : {Endpoint::kCompletions, Endpoint::kChat}) {
    auto req = kinfer::server::ParseGenerationRequest(e, body, g_info);
    if (!req.ok()) {
      (void)kinfer::server::ErrorJson(req.error());
      continue;
    }
    std::vector<kinfer::server::ChoiceState> choices(req->prompts.size() *
                                                     static_cast<size_t>(req->params.n));
    kinfer::engine::Usage usage;
    for (auto& c : choices) c.text = "<think>x</think><tool_call>{\"name\": \"f\"}</tool_call>";
    (void)kinfer::server::RenderResponse(*req, "id", 0, choices, usage, g_info);
  }
  return 0;
}
