// Request parsing and response rendering of the OpenAI API layer, with stories260K's real
// tokenizer. The wire shapes follow OpenAI's API reference; tests/api checks them with the
// official client end to end.
#include "server/openai_api.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tokenizer/tokenizer.h"

namespace kinfer::server {
namespace {

using ::testing::HasSubstr;

class OpenAiApi : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = tokenizer::Tokenizer::Load(KINFER_SHARED_DIR "/models/stories260K/stories260K.gguf");
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    tok_ = std::move(*t);
    info_.served_names = {"stories", "alias"};
    info_.max_model_len = 64;
    info_.vocab_size = tok_->vocab_size();
    info_.tokenizer = tok_.get();
    info_.chat = [](const OrderedJson& messages,
                    const ChatRenderOptions& o) -> Result<std::string> {
      std::string s;
      for (const auto& m : messages)
        s += m["role"].get<std::string>() + ": " + m["content"].get<std::string>() + "\n";
      if (o.add_generation_prompt) s += "assistant:";
      return s;
    };
  }
  ApiResult<GenerationRequest> Completion(const std::string& body) {
    return ParseGenerationRequest(Endpoint::kCompletions, body, info_);
  }
  ApiResult<GenerationRequest> Chat(const std::string& body) {
    return ParseGenerationRequest(Endpoint::kChat, body, info_);
  }
  std::unique_ptr<tokenizer::Tokenizer> tok_;
  ModelInfo info_;
};

TEST_F(OpenAiApi, CompletionDefaultsAndPrompts) {
  auto r = Completion(R"({"prompt": "Once upon a time"})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->prompts[0], (std::vector<int32_t>{1, 403, 407, 261, 378}));
  EXPECT_EQ(r->params.max_tokens, 16);  // OpenAI's default for completions
  EXPECT_EQ(r->model, "stories");
  auto ids = Completion(R"({"prompt": [[1, 2], [3]], "model": "alias", "n": 2})");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->prompts.size(), 2u);
  EXPECT_EQ(ids->model, "alias");
  auto list = Completion(R"({"prompt": ["a", "b", "c"]})");
  ASSERT_TRUE(list.ok());
  EXPECT_EQ(list->prompts.size(), 3u);
}

TEST_F(OpenAiApi, ChatUsesTheTemplateAndDefaultsToTheRestOfTheContext) {
  auto r = Chat(R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"},
                                                               {"type": "text", "text": "there"}]}]})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->prompt_texts[0], "user: Hi\nthere\nassistant:");
  EXPECT_EQ(r->params.max_tokens, 64 - static_cast<int32_t>(r->prompts[0].size()));
  auto no_gen =
      Chat(R"({"messages": [{"role": "user", "content": "Hi"}], "add_generation_prompt": false})");
  ASSERT_TRUE(no_gen.ok());
  EXPECT_EQ(no_gen->prompt_texts[0], "user: Hi\n");
}

TEST_F(OpenAiApi, ErrorsNameTheFieldAndStatus) {
  struct Case {
    std::string body;
    int status;
    std::string param;
    std::string text;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"prompt": "x", "model": "other"})", 404, "model", "does not exist"},
           {R"({"prompt": "x", "temperature": "hot"})", 400, "temperature", "must be a number"},
           {R"({"prompt": "x", "max_tokens": 1e400})", 400, "", "invalid JSON"},
           {R"({"prompt": "x", "max_tokens": 18446744073709551616})", 400, "max_tokens", ""},
           {R"({"prompt": "x", "stream_options": {"include_usage": true}})", 400, "stream_options",
            "only allowed"},
           {R"({"prompt": "x", "stream": true, "stream_options": {"include_usage": 1}})", 400,
            "stream_options.include_usage", ""},
           {R"({"prompt": [1, 2, 100000]})", 400, "prompt", "token ids"},
           {R"({"prompt": "x", "max_tokens": 100})", 400, "max_tokens",
            "maximum context length is 64"},
           {R"({"prompt": "x", "suffix": "y"})", 400, "suffix", ""},
           {R"([1])", 400, "", "JSON object"},
           {R"({"prompt": "x", "logit_bias": {"1": "a"}})", 400, "logit_bias", ""},
       }) {
    auto r = Completion(c.body);
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.error().status, c.status) << c.body;
    EXPECT_EQ(r.error().param, c.param) << c.body << ": " << r.error().message;
    EXPECT_THAT(r.error().message, HasSubstr(c.text)) << c.body;
  }
  auto chat = Chat(R"({"messages": [{"role": "user"}]})");
  EXPECT_FALSE(chat.ok());
  EXPECT_EQ(chat.error().param, "messages");
  auto top = Chat(R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})");
  EXPECT_EQ(top.error().param, "top_logprobs");
}

TEST_F(OpenAiApi, ErrorJsonHasTheOpenAiShape) {
  ApiError e = BadRequest("bad \"thing\"", "temperature", "");
  auto j = Json::parse(ErrorJson(e));
  EXPECT_EQ(j["error"]["message"], "bad \"thing\"");
  EXPECT_EQ(j["error"]["type"], "invalid_request_error");
  EXPECT_EQ(j["error"]["param"], "temperature");
  EXPECT_TRUE(j["error"]["code"].is_null());
}

TEST_F(OpenAiApi, RendersCompletionAndChatResponses) {
  auto r = Completion(R"({"prompt": "Lily", "n": 2, "echo": true})");
  ASSERT_TRUE(r.ok());
  std::vector<ChoiceState> choices(2);
  choices[0].text = " was";
  choices[0].finish_reason = engine::FinishReason::kLength;
  choices[1].text = " ran";
  choices[1].finish_reason = engine::FinishReason::kStop;
  choices[1].stop_string = "\n";
  engine::Usage usage{2, 4, 1};
  auto j = Json::parse(RenderResponse(*r, "cmpl-1", 7, choices, usage, info_));
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], "Lily was");
  EXPECT_EQ(j["choices"][1]["finish_reason"], "stop");
  EXPECT_EQ(j["choices"][1]["stop_reason"], "\n");
  EXPECT_EQ(j["usage"]["total_tokens"], 6);
  EXPECT_EQ(j["usage"]["prompt_tokens_details"]["cached_tokens"], 1);

  auto c = Chat(R"({"messages": [{"role": "user", "content": "x"}], "stream": true})");
  ASSERT_TRUE(c.ok());
  ChoiceState st;
  engine::SequenceOutput delta;
  delta.text = "Hello";
  std::string first = RenderStreamChunk(*c, "chatcmpl-1", 7, 0, st, delta, {}, info_, nullptr);
  ASSERT_EQ(first.rfind("data: ", 0), 0u);
  auto f = Json::parse(first.substr(6));
  EXPECT_EQ(f["object"], "chat.completion.chunk");
  EXPECT_EQ(f["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(f["choices"][0]["delta"]["content"], "Hello");
  delta.text = "";
  delta.finish_reason = engine::FinishReason::kLength;
  auto last = Json::parse(
      RenderStreamChunk(*c, "chatcmpl-1", 7, 0, st, delta, {}, info_, nullptr).substr(6));
  EXPECT_FALSE(last["choices"][0]["delta"].contains("role"));
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
}

}  // namespace
}  // namespace kinfer::server
