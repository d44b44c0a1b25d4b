// The bridge from the API's chat requests to the tokenizer's Jinja chat templates.
#pragma once

#include <string>

#include "core/status.h"
#include "server/openai_api.h"

namespace kinfer::server {

// A renderer for `source` (the model's template or --chat-template), with the tokenizer's BOS
// and EOS strings in its context. Fails when the template does not parse.
Result<ChatRenderer> MakeChatRenderer(const std::string& source, const tokenizer::Tokenizer& tok);

}  // namespace kinfer::server
