#include "server/front_door.h"

#include "server/messages_api.h"
#include "server/responses_api.h"

namespace kinfer::server {

bool IsFrontDoorPath(std::string_view path) {
  return path == "/v1/responses" || path == "/v1/messages";
}

ApiResult<FrontDoorRequest> ParseFrontDoorRequest(std::string_view path, const std::string& body,
                                                  const ModelInfo& model,
                                                  const std::string& request_id, int64_t created) {
  if (path == "/v1/messages") return ParseMessagesRequest(body, model, request_id, created);
  return ParseResponsesRequest(body, model, request_id, created);
}

std::string ErrorBodyForPath(std::string_view path, const ApiError& e,
                             const std::string& request_id) {
  if (path == "/v1/messages" || path.starts_with("/v1/messages/")) {
    return AnthropicErrorJson(e, request_id);
  }
  return ErrorJson(e);
}

namespace internal {

ApiError RenameFields(ApiError e,
                      std::initializer_list<std::pair<std::string_view, std::string_view>> names) {
  for (const auto& [from, to] : names) {
    if (e.param == from) e.param = std::string(to);
    const std::string quoted_from = "'" + std::string(from) + "'";
    const std::string quoted_to = "'" + std::string(to) + "'";
    for (size_t pos = e.message.find(quoted_from); pos != std::string::npos;
         pos = e.message.find(quoted_from, pos + quoted_to.size())) {
      e.message.replace(pos, quoted_from.size(), quoted_to);
    }
  }
  return e;
}

ApiResult<OrderedJson> ParseBodyObject(const std::string& body) {
  auto parsed = ParseOrderedJson(body, "request body", 64);
  if (!parsed.ok()) {
    std::string msg = parsed.status().message();
    return BadRequest(msg.substr(msg.find(": ") + 2), "", "invalid_json");
  }
  if (!parsed->is_object()) return BadRequest("the request body must be a JSON object");
  return std::move(*parsed);
}

OutputSplit::OutputSplit(const structured::OutputParserOptions& options) {
  if (options.active()) parser_ = std::make_unique<structured::OutputParser>(options);
}

structured::OutputDelta OutputSplit::Push(std::string_view text, bool last) {
  structured::OutputDelta d;
  if (!parser_) {
    d.content = std::string(text);
    return d;
  }
  d = parser_->Push(text);
  if (last) {
    structured::OutputDelta rest = parser_->Finish();
    d.content += rest.content;
    d.reasoning += rest.reasoning;
    d.tool_calls.insert(d.tool_calls.end(), rest.tool_calls.begin(), rest.tool_calls.end());
  }
  return d;
}

ApiResult<GenerationRequest> ParseAsChat(const OrderedJson& chat_body, const ModelInfo& model) {
  return ParseGenerationRequest(
      Endpoint::kChat, chat_body.dump(-1, ' ', false, OrderedJson::error_handler_t::replace),
      model);
}

}  // namespace internal
}  // namespace kinfer::server
