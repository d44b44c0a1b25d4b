// The front doors that are translations onto the chat request (the OpenAI Responses API,
// Anthropic's Messages API): each parses its body into the same GenerationRequest that
// /v1/chat/completions makes, and brings a ResponseWriter that renders what the engine produced
// in its own wire format. The server runs every door through one engine path, metrics and
// access log; only the parsing and the rendering differ. Pure functions, no I/O.
//
//   auto door = ParseFrontDoorRequest("/v1/messages", body, model, request_id, created);
//   if (!door.ok()) return ReplyError(door.error());   // in the door's error shape
//   submit door->req; stream door->writer->StreamStart(), StreamDelta(...), StreamEnd(...)
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "engine/request.h"
#include "server/api_error.h"
#include "server/openai_api.h"
#include "structured/output_parser.h"

namespace kinfer::server {

// Renders one request's single completion (these APIs have no `n`). A writer belongs to one
// request; the server calls it under the request's lock, in order: StreamStart, StreamDelta for
// every engine output, then StreamEnd (streamed); or Response alone (not streamed).
class ResponseWriter {
 public:
  virtual ~ResponseWriter() = default;
  // The events that open the stream, before any token.
  virtual std::string StreamStart() = 0;
  // The events for one engine output of the completion; empty when there is nothing to send.
  virtual std::string StreamDelta(const engine::SequenceOutput& delta) = 0;
  // The closing events once the engine has finished: the final usage, or the error that ended
  // the request.
  virtual std::string StreamEnd(const engine::Usage& usage, const Status& error) = 0;
  // The whole response of a non-streamed request.
  virtual std::string Response(const ChoiceState& choice, const engine::Usage& usage) = 0;
};

struct FrontDoorRequest {
  GenerationRequest req;                   // what the engine runs (one prompt, n = 1)
  std::unique_ptr<ResponseWriter> writer;  // how the answer is written
};

// Whether `path` is served by a front door here (/v1/responses, /v1/messages).
bool IsFrontDoorPath(std::string_view path);

// Parses a body for the door at `path` (one IsFrontDoorPath accepts). `request_id` names the
// response ("resp_..." / "msg_..."), `created` is its Unix time.
ApiResult<FrontDoorRequest> ParseFrontDoorRequest(std::string_view path, const std::string& body,
                                                  const ModelInfo& model,
                                                  const std::string& request_id, int64_t created);

// The error body a route answers with: Anthropic's shape under /v1/messages, OpenAI's elsewhere.
std::string ErrorBodyForPath(std::string_view path, const ApiError& e,
                             const std::string& request_id);

namespace internal {

// An error from the chat parts, told in the door's own field names: `param` renamed, and each
// quoted 'name' in the message too.
ApiError RenameFields(ApiError e,
                      std::initializer_list<std::pair<std::string_view, std::string_view>> names);

// The request body as a JSON object (keys in the client's order, as the chat template sees them).
ApiResult<OrderedJson> ParseBodyObject(const std::string& body);

// Chat's output parser for a door's writer: each engine text delta split into reasoning, answer
// and tool-call deltas when the request asks for them (tools, a reasoning model), else all answer.
class OutputSplit {
 public:
  explicit OutputSplit(const structured::OutputParserOptions& options);
  // The next text; `last`: the completion ended, release what was held back.
  structured::OutputDelta Push(std::string_view text, bool last);
  bool called() const { return parser_ && parser_->called(); }

 private:
  std::unique_ptr<structured::OutputParser> parser_;
};

// Runs the chat request parts over a translated chat body.
ApiResult<GenerationRequest> ParseAsChat(const OrderedJson& chat_body, const ModelInfo& model);

}  // namespace internal
}  // namespace kinfer::server
