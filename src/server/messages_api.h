// Anthropic's Messages API (POST /v1/messages and /v1/messages/count_tokens) as a front door
// onto the chat request, for clients built for Claude: `system` and `messages` (text blocks)
// become chat messages, `max_tokens`, `stop_sequences`, `temperature`, `top_p` and `top_k` the
// fields the chat parts read, and the engine's output is written as a Message or Anthropic's
// event stream (message_start, content_block_start/delta/stop, message_delta, message_stop).
// Errors on these routes take Anthropic's shape:
//   {"type": "error", "error": {"type": "invalid_request_error", "message": "..."},
//    "request_id": "..."}
// A final assistant message is continued (Anthropic's prefill): the answer holds only what the
// model adds. Usage counts as Anthropic's does: input_tokens are the prompt tokens not read from
// the prefix cache, cache_read_input_tokens those that were.
#pragma once

#include <cstdint>
#include <string>

#include "server/front_door.h"

namespace kinfer::server {

ApiResult<FrontDoorRequest> ParseMessagesRequest(const std::string& body, const ModelInfo& model,
                                                 const std::string& request_id, int64_t created);

// /v1/messages/count_tokens: the prompt's token count ({"input_tokens": N}) for a body with
// `model`, `messages`, and optionally `system`, `tools`, `tool_choice` and `thinking`.
ApiResult<int32_t> CountMessageTokens(const std::string& body, const ModelInfo& model);

// An ApiError in Anthropic's shape; the type follows the HTTP status as Anthropic's do.
std::string AnthropicErrorJson(const ApiError& e, const std::string& request_id);

}  // namespace kinfer::server
