// The Responses and Messages front doors: each body translates to the chat request that
// /v1/chat/completions builds for the same conversation (the reference: ParseGenerationRequest
// on the equivalent chat body), errors speak the door's field names, and the writers produce
// the wire shapes of OpenAI's Responses API reference and Anthropic's Messages API reference.
// tests/api checks both end to end with the official openai and anthropic clients.
#include "server/front_door.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <sstream>

#include "server/messages_api.h"
#include "structured/reasoning_parser.h"
#include "structured/tool_parser.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::server {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

class FrontDoor : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = tokenizer::Tokenizer::Load(KINFER_SHARED_DIR "/models/stories260K/stories260K.gguf");
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    tok_ = std::move(*t);
    info_.served_names = {"stories"};
    info_.max_model_len = 128;
    info_.vocab_size = tok_->vocab_size();
    info_.tokenizer = tok_.get();
    info_.chat = [](const OrderedJson& messages,
                    const ChatRenderOptions& o) -> Result<std::string> {
      std::string s;
      for (const auto& m : messages)
        s += m["role"].get<std::string>() + ": " + m["content"].get<std::string>() + "\n";
      if (o.add_generation_prompt) s += "assistant:";
      if (o.extra_context.contains("enable_thinking")) {
        s += o.extra_context["enable_thinking"].get<bool>() ? "<think>" : "<no_think>";
      }
      return s;
    };
  }
  ApiResult<FrontDoorRequest> Door(const char* path, const std::string& body) {
    return ParseFrontDoorRequest(path, body, info_, "abc", 7);
  }
  GenerationRequest Chat(const std::string& body) {
    auto r = ParseGenerationRequest(Endpoint::kChat, body, info_);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return std::move(*r);
  }
  // The SSE events of a stream: (event name, data).
  static std::vector<std::pair<std::string, Json>> Events(const std::string& sse) {
    std::vector<std::pair<std::string, Json>> out;
    std::istringstream in(sse);
    std::string line, name;
    while (std::getline(in, line)) {
      if (line.rfind("event: ", 0) == 0) name = line.substr(7);
      if (line.rfind("data: ", 0) == 0) out.emplace_back(name, Json::parse(line.substr(6)));
    }
    return out;
  }
  std::unique_ptr<tokenizer::Tokenizer> tok_;
  ModelInfo info_;
};

TEST_F(FrontDoor, ResponsesInputAndInstructionsAreChatMessages) {
  auto r = Door("/v1/responses", R"({"instructions": "Be brief.", "input": "Hi",
                                     "max_output_tokens": 5, "temperature": 0.5, "top_k": 3})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  GenerationRequest ref = Chat(R"({"messages": [{"role": "system", "content": "Be brief."},
                                                {"role": "user", "content": "Hi"}]})");
  EXPECT_EQ(r->req.prompt_texts, ref.prompt_texts);
  EXPECT_EQ(r->req.prompts, ref.prompts);
  EXPECT_EQ(r->req.params.max_tokens, 5);
  EXPECT_FLOAT_EQ(r->req.params.temperature, 0.5f);
  EXPECT_EQ(r->req.params.top_k, 3);
  EXPECT_EQ(r->req.model, "stories");

  auto items = Door("/v1/responses", R"({"input": [
      {"role": "developer", "content": "Sys"},
      {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "a"},
                                                      {"type": "input_text", "text": "b"}]},
      {"type": "reasoning", "id": "rs_1", "summary": []},
      {"role": "assistant", "content": [{"type": "output_text", "text": "c"}]}],
      "reasoning": {"effort": "none"}})");
  ASSERT_TRUE(items.ok()) << items.error().message;
  EXPECT_EQ(items->req.prompt_texts[0],
            "system: Sys\nuser: a\nb\nassistant: c\nassistant:<no_think>");
  // Without max_output_tokens, the rest of the context, as chat.
  EXPECT_EQ(items->req.params.max_tokens, 128 - static_cast<int32_t>(items->req.prompts[0].size()));
}

TEST_F(FrontDoor, ResponsesErrorsUseTheResponsesFieldNames) {
  struct Case {
    std::string body;
    std::string param;
    std::string text;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"input": "x", "max_output_tokens": 0})", "max_output_tokens",
            "'max_output_tokens' must be between 1"},
           {R"({"input": "x", "max_output_tokens": 1000})", "max_output_tokens",
            "maximum context length"},
           {R"({"input": "x", "previous_response_id": "resp_1"})", "previous_response_id",
            "does not store"},
           {R"({"input": "x", "tools": [{"type": "web_search"}]})", "tools", "web_search"},
           {R"({"input": [{"role": "user", "content": [{"type": "input_image"}]}]})", "input",
            "input[0].content[0]"},
           {R"({"input": "x", "text": {"format": {"type": "json_object"}}})", "text.format", ""},
           {R"({"input": "x", "top_logprobs": 21})", "top_logprobs", ""},
           {R"({"input": "x", "store": "no"})", "store", "boolean"},
           {R"({"input": "x", "wat": 1})", "wat", "not supported"},
           {R"({"model": "stories"})", "input", "required"},
           {R"({"input": [5]})", "input", "input[0]"},
       }) {
    auto r = Door("/v1/responses", c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.error().status, 400) << c.body;
    EXPECT_EQ(r.error().param, c.param) << c.body << ": " << r.error().message;
    EXPECT_THAT(r.error().message, HasSubstr(c.text)) << c.body;
  }
}

TEST_F(FrontDoor, ResponsesWriterStreamsTheEventSequence) {
  auto r = Door("/v1/responses", R"({"input": "Hi", "stream": true, "max_output_tokens": 2})");
  ASSERT_TRUE(r.ok());
  ResponseWriter& w = *r->writer;
  std::string sse = w.StreamStart();
  engine::SequenceOutput a, b;
  a.text = "Hel";
  b.text = "lo";
  b.finish_reason = engine::FinishReason::kLength;
  sse += w.StreamDelta(a);  // one statement each: the writer counts its events
  sse += w.StreamDelta(b);
  engine::Usage usage{10, 2, 8};
  sse += w.StreamEnd(usage, Status::Ok());
  auto events = Events(sse);
  std::vector<std::string> names;
  for (size_t i = 0; i < events.size(); ++i) {
    names.push_back(events[i].first);
    EXPECT_EQ(events[i].second["type"], events[i].first);
    EXPECT_EQ(events[i].second["sequence_number"], i);
  }
  EXPECT_THAT(names, ElementsAre("response.created", "response.in_progress",
                                 "response.output_item.added", "response.content_part.added",
                                 "response.output_text.delta", "response.output_text.delta",
                                 "response.output_text.done", "response.content_part.done",
                                 "response.output_item.done", "response.incomplete"));
  const Json& last = events.back().second["response"];
  EXPECT_EQ(last["id"], "resp_abc");
  EXPECT_EQ(last["status"], "incomplete");
  EXPECT_EQ(last["incomplete_details"]["reason"], "max_output_tokens");
  EXPECT_EQ(last["output"][0]["content"][0]["text"], "Hello");
  EXPECT_EQ(last["usage"]["input_tokens"], 10);
  EXPECT_EQ(last["usage"]["input_tokens_details"]["cached_tokens"], 8);
  EXPECT_EQ(last["usage"]["total_tokens"], 12);
  EXPECT_EQ(events[6].second["text"], "Hello");

  // A failure ends the stream with response.failed.
  auto f = Door("/v1/responses", R"({"input": "Hi", "stream": true})");
  std::string failed_sse = f->writer->StreamStart();
  failed_sse += f->writer->StreamEnd(usage, InternalError("engine died"));
  auto failed = Events(failed_sse);
  EXPECT_EQ(failed.back().first, "response.failed");
  EXPECT_EQ(failed.back().second["response"]["error"]["message"], "engine died");
}

TEST_F(FrontDoor, ResponsesWriterWholeResponse) {
  auto r = Door("/v1/responses", R"({"input": "Hi", "metadata": {"k": "v"}, "store": false})");
  ASSERT_TRUE(r.ok());
  ChoiceState c;
  c.text = "Hello";
  c.finish_reason = engine::FinishReason::kStop;
  auto j = Json::parse(r->writer->Response(c, engine::Usage{3, 1, 0}));
  EXPECT_EQ(j["object"], "response");
  EXPECT_EQ(j["status"], "completed");
  EXPECT_TRUE(j["incomplete_details"].is_null());
  EXPECT_EQ(j["metadata"]["k"], "v");
  EXPECT_EQ(j["store"], false);
  EXPECT_EQ(j["output"][0]["type"], "message");
  EXPECT_EQ(j["output"][0]["status"], "completed");
  EXPECT_EQ(j["output"][0]["content"][0]["type"], "output_text");
  EXPECT_EQ(j["output"][0]["content"][0]["text"], "Hello");
}

TEST_F(FrontDoor, MessagesTranslateToChat) {
  auto r = Door("/v1/messages", R"({"model": "stories", "max_tokens": 9,
      "system": [{"type": "text", "text": "Sys", "cache_control": {"type": "ephemeral"}}],
      "messages": [{"role": "user", "content": [{"type": "text", "text": "a"}]},
                   {"role": "assistant", "content": "b"},
                   {"role": "user", "content": "c"}],
      "stop_sequences": ["END"], "top_k": 4, "metadata": {"user_id": "u"},
      "thinking": {"type": "disabled"}})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->req.prompt_texts[0],
            "system: Sys\nuser: a\nassistant: b\nuser: c\nassistant:<no_think>");
  EXPECT_EQ(r->req.params.max_tokens, 9);
  EXPECT_THAT(r->req.params.stop, ElementsAre("END"));
  EXPECT_EQ(r->req.params.top_k, 4);
  EXPECT_EQ(r->req.user, "u");

  // A final assistant message is continued, not closed.
  auto prefill = Door("/v1/messages", R"({"max_tokens": 4, "messages": [
      {"role": "user", "content": "a"}, {"role": "assistant", "content": "Once"}]})");
  ASSERT_TRUE(prefill.ok()) << prefill.error().message;
  EXPECT_EQ(prefill->req.prompt_texts[0], "user: a\nassistant: Once");
}

TEST_F(FrontDoor, MessagesErrorsUseTheMessagesFieldNames) {
  struct Case {
    std::string body;
    std::string param;
    std::string text;
  };
  const std::string m = R"("messages": [{"role": "user", "content": "x"}])";
  for (const Case& c : std::vector<Case>{
           {"{" + m + "}", "max_tokens", "max_tokens: Field required"},
           {"{" + m + R"(, "max_tokens": 0})", "max_tokens", "'max_tokens' must be between 1"},
           {"{" + m + R"(, "max_tokens": 1000})", "max_tokens", "maximum context length"},
           {"{" + m + R"(, "max_tokens": 1, "stop_sequences": [""]})", "stop_sequences",
            "'stop_sequences' strings must not be empty"},
           {"{" + m + R"(, "max_tokens": 1, "metadata": {"user_id": 5}})", "metadata.user_id", ""},
           {R"({"max_tokens": 1, "messages": [{"role": "user", "content": [{"type": "image"}]}]})",
            "messages", "messages.0.content.0"},
           {R"({"max_tokens": 1, "messages": [{"role": "user", "content": "x", "name": "n"}]})",
            "messages", "Extra inputs"},
           {"{" + m + R"(, "max_tokens": 1, "tools": [{"name": "f"}]})", "tools", "tool"},
           {"{" + m + R"(, "max_tokens": 1, "n": 2})", "n", "not supported"},
       }) {
    auto r = Door("/v1/messages", c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.error().param, c.param) << c.body << ": " << r.error().message;
    EXPECT_THAT(r.error().message, HasSubstr(c.text)) << c.body;
  }
}

TEST_F(FrontDoor, MessagesWriterStreamsAnthropicEvents) {
  auto r = Door("/v1/messages",
                R"({"max_tokens": 4, "stream": true, "stop_sequences": ["!"],
                    "messages": [{"role": "user", "content": "x"}]})");
  ASSERT_TRUE(r.ok());
  ResponseWriter& w = *r->writer;
  engine::SequenceOutput a, b;
  a.text = "Hi";
  b.finish_reason = engine::FinishReason::kStop;
  b.stop_string = "!";
  engine::Usage usage{10, 2, 8};
  std::string sse = w.StreamStart();
  sse += w.StreamDelta(a);
  sse += w.StreamDelta(b);
  sse += w.StreamEnd(usage, Status::Ok());
  auto events = Events(sse);
  std::vector<std::string> names;
  for (const auto& [name, data] : events) {
    names.push_back(name);
    EXPECT_EQ(data["type"], name);
  }
  EXPECT_THAT(names,
              ElementsAre("message_start", "ping", "content_block_start", "content_block_delta",
                          "content_block_stop", "message_delta", "message_stop"));
  EXPECT_EQ(events[0].second["message"]["id"], "msg_abc");
  EXPECT_EQ(events[0].second["message"]["content"], Json::array());
  EXPECT_EQ(events[3].second["delta"]["text"], "Hi");
  const Json& md = events[5].second;
  EXPECT_EQ(md["delta"]["stop_reason"], "stop_sequence");
  EXPECT_EQ(md["delta"]["stop_sequence"], "!");
  // Anthropic's usage: input_tokens are the prompt tokens not read from the cache.
  EXPECT_EQ(md["usage"]["input_tokens"], 2);
  EXPECT_EQ(md["usage"]["cache_read_input_tokens"], 8);
  EXPECT_EQ(md["usage"]["output_tokens"], 2);
}

TEST_F(FrontDoor, MessagesWriterWholeMessageAndStopReasons) {
  auto r = Door("/v1/messages", R"({"max_tokens": 4, "messages": [{"role": "user",
                                                                   "content": "x"}]})");
  ASSERT_TRUE(r.ok());
  ChoiceState c;
  c.text = "Hey";
  c.finish_reason = engine::FinishReason::kLength;
  auto j = Json::parse(r->writer->Response(c, engine::Usage{5, 4, 0}));
  EXPECT_EQ(j["type"], "message");
  EXPECT_EQ(j["role"], "assistant");
  EXPECT_EQ(j["content"][0]["type"], "text");
  EXPECT_EQ(j["content"][0]["text"], "Hey");
  EXPECT_EQ(j["stop_reason"], "max_tokens");
  EXPECT_TRUE(j["stop_sequence"].is_null());
  // Ended by the context rather than max_tokens.
  j = Json::parse(r->writer->Response(c, engine::Usage{5, 2, 0}));
  EXPECT_EQ(j["stop_reason"], "model_context_window_exceeded");
  c.finish_reason = engine::FinishReason::kStop;
  j = Json::parse(r->writer->Response(c, engine::Usage{5, 2, 0}));
  EXPECT_EQ(j["stop_reason"], "end_turn");
}

TEST_F(FrontDoor, MessagesWriterSplitsThinkingTextAndToolUse) {
  info_.tool_format = structured::ToolFormat::kHermes;
  info_.reasoning_format = structured::ReasoningFormat::kQwen3;
  const std::string body = R"({"max_tokens": 50, "stream": true,
      "messages": [{"role": "user", "content": "x"}],
      "tools": [{"name": "get_time", "input_schema": {"type": "object"}}]})";
  auto r = Door("/v1/messages", body);
  ASSERT_TRUE(r.ok()) << r.error().message;
  engine::SequenceOutput a, b;
  a.text = "<think>\nHmm.\n</think>\n\nSure.";
  b.text = "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"UTC\"}}\n</tool_call>";
  b.finish_reason = engine::FinishReason::kStop;
  std::string sse = r->writer->StreamStart();
  sse += r->writer->StreamDelta(a);
  sse += r->writer->StreamDelta(b);
  sse += r->writer->StreamEnd(engine::Usage{5, 9, 0}, Status::Ok());
  std::vector<std::string> blocks;
  std::string thinking, text, json;
  for (const auto& [name, data] : Events(sse)) {
    if (name == "content_block_start") {
      blocks.push_back(data["content_block"]["type"]);
      EXPECT_EQ(data["index"], blocks.size() - 1);
    }
    if (name == "content_block_delta") {
      const Json& d = data["delta"];
      if (d["type"] == "thinking_delta") thinking += d["thinking"].get<std::string>();
      if (d["type"] == "text_delta") text += d["text"].get<std::string>();
      if (d["type"] == "input_json_delta") json += d["partial_json"].get<std::string>();
    }
    if (name == "message_delta") {
      EXPECT_EQ(data["delta"]["stop_reason"], "tool_use");
    }
  }
  EXPECT_THAT(blocks, ElementsAre("thinking", "text", "tool_use"));
  EXPECT_EQ(thinking, "Hmm.");
  EXPECT_EQ(text, "Sure.");
  EXPECT_EQ(Json::parse(json), Json::parse(R"({"tz": "UTC"})"));

  // The whole message: the same blocks, the call's input as an object.
  auto whole = Door("/v1/messages", body);
  ChoiceState c;
  c.text = a.text + b.text;
  c.finish_reason = engine::FinishReason::kStop;
  auto m = Json::parse(whole->writer->Response(c, engine::Usage{5, 9, 0}));
  ASSERT_EQ(m["content"].size(), 3u);
  EXPECT_EQ(m["content"][0]["thinking"], "Hmm.");
  EXPECT_EQ(m["content"][1]["text"], "Sure.");
  EXPECT_EQ(m["content"][2]["name"], "get_time");
  EXPECT_EQ(m["content"][2]["input"]["tz"], "UTC");
  EXPECT_THAT(m["content"][2]["id"].get<std::string>(), ::testing::StartsWith("toolu_"));
  EXPECT_EQ(m["stop_reason"], "tool_use");
}

// The reference: OpenAI's Responses streaming events reference (an item per output part, each
// opened by output_item.added and closed by output_item.done, indexes in output order).
TEST_F(FrontDoor, ResponsesWriterSplitsReasoningMessageAndFunctionCalls) {
  info_.tool_format = structured::ToolFormat::kHermes;
  info_.reasoning_format = structured::ReasoningFormat::kQwen3;
  const std::string body = R"({"input": "x", "stream": true,
      "tools": [{"type": "function", "name": "get_time", "parameters": {"type": "object"}}]})";
  auto r = Door("/v1/responses", body);
  ASSERT_TRUE(r.ok()) << r.error().message;
  engine::SequenceOutput a, b;
  a.text = "<think>\nHmm.\n</think>\n\nSure.";
  b.text = "<tool_call>\n{\"name\": \"get_time\", \"arguments\": {\"tz\": \"UTC\"}}\n</tool_call>";
  b.finish_reason = engine::FinishReason::kStop;
  std::string sse = r->writer->StreamStart();
  sse += r->writer->StreamDelta(a);
  sse += r->writer->StreamDelta(b);
  sse += r->writer->StreamEnd(engine::Usage{5, 9, 0}, Status::Ok());
  std::vector<std::string> added, done;
  std::string reasoning, text, args;
  int64_t seq = 0;
  Json final;
  for (const auto& [name, data] : Events(sse)) {
    EXPECT_EQ(data["sequence_number"], seq++);
    if (name == "response.output_item.added") {
      EXPECT_EQ(data["output_index"], added.size());
      added.push_back(data["item"]["type"]);
    }
    if (name == "response.output_item.done") {
      EXPECT_EQ(data["output_index"], done.size());
      EXPECT_EQ(data["item"]["status"], "completed");
      done.push_back(data["item"]["type"]);
    }
    if (name == "response.reasoning_text.delta") reasoning += data["delta"].get<std::string>();
    if (name == "response.output_text.delta") text += data["delta"].get<std::string>();
    if (name == "response.function_call_arguments.delta") {
      EXPECT_EQ(data["output_index"], 2);
      args += data["delta"].get<std::string>();
    }
    if (name == "response.completed") final = data["response"];
  }
  EXPECT_THAT(added, ElementsAre("reasoning", "message", "function_call"));
  EXPECT_EQ(done, added);
  EXPECT_EQ(reasoning, "Hmm.");
  EXPECT_EQ(text, "Sure.");
  EXPECT_EQ(Json::parse(args), Json::parse(R"({"tz": "UTC"})"));
  ASSERT_EQ(final["output"].size(), 3u);
  EXPECT_EQ(final["output"][2]["arguments"], args);
  EXPECT_EQ(final["output"][2]["name"], "get_time");
  EXPECT_THAT(final["output"][2]["call_id"].get<std::string>(), ::testing::StartsWith("call_"));
  EXPECT_EQ(final["status"], "completed");
  // Reasoning tokens: "Hmm." tokenized again, fewer than the output tokens.
  EXPECT_GT(final["usage"]["output_tokens_details"]["reasoning_tokens"], 0);
  EXPECT_LT(final["usage"]["output_tokens_details"]["reasoning_tokens"], 9);

  // The whole response: the same items, done.
  auto whole = Door("/v1/responses", body);
  ChoiceState c;
  c.text = a.text + b.text;
  c.finish_reason = engine::FinishReason::kStop;
  auto j = Json::parse(whole->writer->Response(c, engine::Usage{5, 9, 0}));
  ASSERT_EQ(j["output"].size(), 3u);
  EXPECT_EQ(j["output"][0]["content"][0]["text"], "Hmm.");
  EXPECT_EQ(j["output"][1]["content"][0]["text"], "Sure.");
  EXPECT_EQ(j["output"][2]["type"], "function_call");
  EXPECT_EQ(Json::parse(j["output"][2]["arguments"].get<std::string>())["tz"], "UTC");
  EXPECT_EQ(j["tools"][0]["name"], "get_time");
}

TEST_F(FrontDoor, ToolHistoryTranslatesToChatToolMessages) {
  info_.tool_format = structured::ToolFormat::kHermes;
  auto msgs = Door("/v1/messages", R"({"max_tokens": 4, "tools": [{"name": "f",
      "input_schema": {"type": "object"}}], "tool_choice": {"type": "auto"}, "messages": [
      {"role": "user", "content": "q"},
      {"role": "assistant", "content": [{"type": "text", "text": "t"},
          {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 1}}]},
      {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
          "content": [{"type": "text", "text": "r"}]}, {"type": "text", "text": "more"}]}]})");
  ASSERT_TRUE(msgs.ok()) << msgs.error().message;
  auto resp = Door("/v1/responses", R"({"tools": [{"type": "function", "name": "f",
      "parameters": {"type": "object"}}], "input": [
      {"role": "user", "content": "q"},
      {"role": "assistant", "content": "t"},
      {"type": "function_call", "call_id": "toolu_1", "name": "f", "arguments": "{\"a\":1}"},
      {"type": "function_call_output", "call_id": "toolu_1", "output": "r"},
      {"role": "user", "content": "more"}]})");
  ASSERT_TRUE(resp.ok()) << resp.error().message;
  // The fake template shows roles and content: the tool result is a tool turn between them.
  EXPECT_EQ(msgs->req.prompt_texts[0], "user: q\nassistant: t\ntool: r\nuser: more\nassistant:");
  EXPECT_EQ(resp->req.prompt_texts[0], msgs->req.prompt_texts[0]);
}

TEST_F(FrontDoor, CountTokensIsThePromptOfTheSameRequest) {
  const std::string body = R"({"model": "stories", "system": "S",
                               "messages": [{"role": "user", "content": "Tell me"}]})";
  auto n = CountMessageTokens(body, info_);
  ASSERT_TRUE(n.ok()) << n.error().message;
  auto r = Door("/v1/messages", R"({"max_tokens": 1, "system": "S",
                                    "messages": [{"role": "user", "content": "Tell me"}]})");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*n, static_cast<int32_t>(r->req.prompts[0].size()));
  auto bad = CountMessageTokens(R"({"messages": [], "max_tokens": 3})", info_);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().param, "max_tokens");
  auto model = CountMessageTokens(R"({"model": "x", "messages": [{"role": "user",
                                                                   "content": "a"}]})",
                                  info_);
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.error().status, 404);
}

TEST_F(FrontDoor, ErrorBodiesTakeEachApisShape) {
  ApiError e = BadRequest("bad", "max_tokens");
  auto anthropic = Json::parse(ErrorBodyForPath("/v1/messages", e, "rid"));
  EXPECT_EQ(anthropic["type"], "error");
  EXPECT_EQ(anthropic["error"]["type"], "invalid_request_error");
  EXPECT_EQ(anthropic["error"]["message"], "bad");
  EXPECT_EQ(anthropic["request_id"], "rid");
  e.status = 401;
  EXPECT_EQ(Json::parse(ErrorBodyForPath("/v1/messages/count_tokens", e, "r"))["error"]["type"],
            "authentication_error");
  e.status = 429;
  EXPECT_EQ(Json::parse(ErrorBodyForPath("/v1/messages", e, "r"))["error"]["type"],
            "rate_limit_error");
  auto openai = Json::parse(ErrorBodyForPath("/v1/responses", e, "r"));
  EXPECT_EQ(openai["error"]["param"], "max_tokens");
}

}  // namespace
}  // namespace kinfer::server
