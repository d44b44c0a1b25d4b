// The OpenAI API's wire format: parsing and validating /v1/completions and
// /v1/chat/completions bodies (with vLLM's extra sampling fields) into engine requests, and
// rendering responses, stream chunks and errors. Pure functions, no I/O: unit-tested and fuzzed.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json.h"
#include "engine/request.h"
#include "server/api_error.h"
#include "structured/grammar.h"
#include "structured/output_parser.h"

namespace kinfer::tokenizer {
class Tokenizer;
}  // namespace kinfer::tokenizer

namespace kinfer::server {

// An ApiError as OpenAI shapes it: {"error": {"message", "type", "param", "code"}}.
std::string ErrorJson(const ApiError& e);

// Options a chat template is rendered with, from the request.
// JSON keeps the client's key order here: templates render tools with tojson.
struct ChatRenderOptions {
  OrderedJson tools;  // null when the request has none
  bool add_generation_prompt = true;
  OrderedJson extra_context = OrderedJson::object();  // chat_template_kwargs (enable_thinking)
};
// Renders messages (content already flattened to strings) into the prompt text. An error's
// message is the template's own (raise_exception) or says where the template failed.
using ChatRenderer =
    std::function<Result<std::string>(const OrderedJson& messages, const ChatRenderOptions&)>;

// What the server knows about the model it serves.
struct ModelInfo {
  std::vector<std::string> served_names;  // the first is reported in responses
  int32_t max_model_len = 0;
  int32_t vocab_size = 0;
  const tokenizer::Tokenizer* tokenizer = nullptr;
  ChatRenderer chat;  // empty: the model has no chat template
  // Whether a LoRA adapter is served under this name: the `model` field may name one too.
  std::function<bool(const std::string&)> has_adapter;
  // Structured output and tools: the vocabulary grammars compile against (null: not available),
  // and the formats the model writes tool calls and reasoning in (--tool-call-parser,
  // --reasoning-parser, or detected from the chat template).
  const structured::GrammarVocabulary* grammar = nullptr;
  std::optional<structured::ToolFormat> tool_format;
  std::optional<structured::ReasoningFormat> reasoning_format;
};

enum class Endpoint { kCompletions, kChat };

struct GenerationRequest {
  Endpoint endpoint = Endpoint::kCompletions;
  std::string model;                          // as named in responses
  std::vector<std::vector<int32_t>> prompts;  // one engine request each (chat: one)
  std::vector<std::string> prompt_texts;      // for echo
  engine::SamplingParams params;
  bool stream = false;
  bool include_usage = false;
  bool continuous_usage_stats = false;
  bool echo = false;
  bool logprobs = false;     // return logprobs of output tokens
  int32_t top_logprobs = 0;  // alternatives per token
  int32_t priority = 0;
  std::string cache_salt;
  std::string user;
  // Structured output: the grammar the output follows (compiled into params.constraint), and
  // how the output is split into reasoning, answer and tool calls (chat).
  std::optional<structured::GrammarSpec> grammar;
  structured::OutputParserOptions output;
  bool named_tool_choice = false;  // a forced function: finish_reason stays "stop", as OpenAI's
};

// Parses and validates a request body, applies the chat template and tokenizes.
ApiResult<GenerationRequest> ParseGenerationRequest(Endpoint endpoint, const std::string& body,
                                                    const ModelInfo& model);

// The chat template applied to a request body's `messages`, `tools`, `add_generation_prompt`,
// `continue_final_message` and `chat_template_kwargs` (for /tokenize with messages too).
ApiResult<std::string> RenderChat(std::string_view body, const ModelInfo& model);
// The same for a body already parsed (the router reads each body once).
ApiResult<std::string> RenderParsedChat(const OrderedJson& body, const ModelInfo& model);

// Accumulates one choice (one completion of one prompt) for the final, non-streamed response.
struct ChoiceState {
  std::string text;
  std::vector<int32_t> token_ids;
  std::vector<engine::TokenLogprob> logprobs;
  std::vector<engine::TokenLogprob> prompt_logprobs;  // for echo with logprobs
  std::optional<engine::FinishReason> finish_reason;
  std::optional<std::string> stop_string;
  std::optional<int32_t> stop_token;
  bool sent_role = false;   // chat streaming: the first delta carries the role
  int32_t last_token = -1;  // context for the next token's text in logprobs (the prompt's last)
  std::shared_ptr<structured::OutputParser> parser;  // chat streaming with reasoning or tools
};

Json UsageJson(const engine::Usage& u);

// The whole response for a finished non-streamed request. `choices` are ordered by index.
std::string RenderResponse(const GenerationRequest& req, const std::string& id, int64_t created,
                           const std::vector<ChoiceState>& choices, const engine::Usage& usage,
                           const ModelInfo& model);

// The SSE events ("data: {...}\n\n") for a streamed delta of choice `index`: usually one; a
// delta with tool calls gives one event per call delta; empty when the output parser holds the
// whole delta back.
std::string RenderStreamChunk(const GenerationRequest& req, const std::string& id, int64_t created,
                              int32_t index, ChoiceState& state,
                              const engine::SequenceOutput& delta,
                              const std::vector<engine::TokenLogprob>& prompt_logprobs,
                              const ModelInfo& model, const engine::Usage* usage);
std::string RenderUsageChunk(const GenerationRequest& req, const std::string& id, int64_t created,
                             const engine::Usage& usage);

// Logprobs in each endpoint's shape. Token texts are decoded in context (after `prev`, then
// after each other), so that they concatenate to the generated text.
Json CompletionLogprobsJson(const std::vector<engine::TokenLogprob>& lps, size_t text_offset,
                            const ModelInfo& model, bool first_is_null, int32_t prev);
Json ChatLogprobsJson(const std::vector<engine::TokenLogprob>& lps, const ModelInfo& model,
                      int32_t prev);

std::string_view FinishReasonForApi(engine::FinishReason r);

}  // namespace kinfer::server
