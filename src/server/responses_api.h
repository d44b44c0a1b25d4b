// The OpenAI Responses API (POST /v1/responses) as a front door onto the chat request: `input`
// (a string or message items) and `instructions` become chat messages, `max_output_tokens` and
// the sampling fields the chat parts read, and the engine's output is written as a Response
// object or the Responses event stream (response.created ... response.completed).
//
//   {"model": "m", "instructions": "Be brief.", "input": "Hi", "max_output_tokens": 16}
//   -> {"id": "resp_...", "object": "response", "status": "completed",
//       "output": [{"type": "message", "content": [{"type": "output_text", "text": "..."}]}],
//       "usage": {"input_tokens", "input_tokens_details": {"cached_tokens"}, "output_tokens",
//                 "output_tokens_details": {"reasoning_tokens"}, "total_tokens"}}
//
// Responses are not stored: `store` may be sent (the response says "store": false), and
// `previous_response_id` is a 400 that says to send the whole conversation in `input`.
#pragma once

#include <cstdint>
#include <string>

#include "server/front_door.h"

namespace kinfer::server {

ApiResult<FrontDoorRequest> ParseResponsesRequest(const std::string& body, const ModelInfo& model,
                                                  const std::string& request_id, int64_t created);

}  // namespace kinfer::server
