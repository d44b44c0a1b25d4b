// What the router reads from a request, checked against what a replica computes from the same
// body: server::ParseGenerationRequest with the same tokenizer and chat template is the
// reference (the router's tokens must be the engine's, or the prefix index matches nothing).
// Real tokenizers and templates from ../shared (Qwen3, Llama 3, stories260K).
#include "router/request_info.h"

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <string>

#include "server/openai_api.h"
#include "structured/tool_parser.h"

namespace kinfer::router {
namespace {

class RequestInfoTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    // Loaded once per tokenizer for the whole suite: the big tokenizer.json files take seconds.
    static std::map<std::string, std::shared_ptr<PromptModel>> cache;
    std::shared_ptr<PromptModel>& m = cache[GetParam()];
    if (!m) {
      auto loaded = PromptModel::Load(std::string(KINFER_SHARED_DIR) + "/" + GetParam(), "");
      ASSERT_TRUE(loaded.ok()) << loaded.status().ToString();
      m = std::move(*loaded);
    }
    model_ = m;
    ref_ = model_->info();
    ref_.served_names = {"m"};
    ref_.max_model_len = 1 << 20;
    // A replica refuses tools without a tool-call format (--tool-call-parser or detected); the
    // format decides how the output is read, not the prompt the router must match.
    ref_.tool_format = structured::ToolFormat::kHermes;
  }
  // The replica's prompt tokens for `body`.
  std::vector<int32_t> Reference(const std::string& path, const std::string& body) {
    auto r = server::ParseGenerationRequest(
        path == "/v1/chat/completions" ? server::Endpoint::kChat : server::Endpoint::kCompletions,
        body, ref_);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? r->prompts[0] : std::vector<int32_t>{};
  }
  RequestInfo Read(const std::string& path, const std::string& body, size_t max_tokens = 4096) {
    RequestInfoOptions o;
    o.max_tokens = max_tokens;
    auto r = ReadRequestInfo(path, body, model_.get(), o);
    EXPECT_TRUE(r.ok()) << r.error().message;
    return r.ok() ? std::move(*r) : RequestInfo{};
  }
  std::shared_ptr<PromptModel> model_;
  server::ModelInfo ref_;
};

TEST_P(RequestInfoTest, ChatTokensAreTheReplicasTokens) {
  if (!model_->info().chat) GTEST_SKIP() << "no chat template";
  for (
      const char* body : {
          R"({"model":"m","messages":[{"role":"system","content":"You are terse."},{"role":"user","content":"Hi there! How are you?"}]})",
          R"({"messages":[{"role":"user","content":[{"type":"text","text":"part one"},{"type":"text","text":" and two"}]}],"stream":true,"user":"u1"})",
          R"({"messages":[{"role":"user","content":"Q"},{"role":"assistant","content":"A partial"}],"continue_final_message":true,"add_generation_prompt":false})",
          R"({"messages":[{"role":"user","content":"weather?"}],"tools":[{"type":"function","function":{"name":"get_weather","description":"d","parameters":{"type":"object","properties":{"city":{"type":"string"}}}}}]})",
          R"({"messages":[{"role":"user","content":"x"}],"add_special_tokens":true,"cache_salt":"tenant-a"})",
      }) {
    RequestInfo info = Read("/v1/chat/completions", body);
    EXPECT_EQ(info.prompt, Reference("/v1/chat/completions", body)) << body;
    EXPECT_TRUE(info.exact_tokens);
    EXPECT_FALSE(info.truncated);
    EXPECT_EQ(info.prompt_tokens_estimate, static_cast<int64_t>(info.prompt.size()));
  }
  RequestInfo info = Read("/v1/chat/completions",
                          R"({"messages":[{"role":"user","content":"x"}],"stream":true,"user":"u1",
                              "cache_salt":"s","max_tokens":7})");
  EXPECT_TRUE(info.stream);
  EXPECT_EQ(info.user, "u1");
  EXPECT_EQ(info.cache_salt, "s");
  EXPECT_EQ(info.max_completion_tokens, 7);
}

TEST_P(RequestInfoTest, CompletionTokensAreTheReplicasTokens) {
  for (const std::string& body : {
           std::string(R"({"prompt":"Once upon a time, in a land far away,"})"),
           std::string(R"({"prompt":"no bos","add_special_tokens":false,"model":"m"})"),
           std::string(R"({"prompt":[1,2,3,4,5,6,7]})"),
           std::string(R"({"prompt":["first prompt routes", "second"]})"),
           std::string(R"({"prompt":[[5,6,7],[8]]})"),
       }) {
    RequestInfo info = Read("/v1/completions", body);
    EXPECT_EQ(info.prompt, Reference("/v1/completions", body)) << body;
    EXPECT_TRUE(info.exact_tokens);
  }
}

TEST_P(RequestInfoTest, LongPromptsAreCutToAPrefixOfTheReplicasTokens) {
  std::string text;
  for (int i = 0; text.size() < 60000; ++i) {
    text += "Line " + std::to_string(i) + ": the quick brown fox jumps over the lazy dog.\n";
  }
  const std::string body = R"({"prompt":")" + text.substr(0, 60000) + "\"}";
  // JSON-escape the newlines the simple way.
  std::string escaped;
  for (char c : body) escaped += c == '\n' ? std::string("\\n") : std::string(1, c);
  const std::vector<int32_t> full = Reference("/v1/completions", escaped);
  RequestInfo info = Read("/v1/completions", escaped, 512);
  EXPECT_TRUE(info.truncated);
  ASSERT_LE(info.prompt.size(), 512u);
  EXPECT_GE(info.prompt.size(), 400u);
  EXPECT_TRUE(std::equal(info.prompt.begin(), info.prompt.end(), full.begin()));
  // Rate limits see about the whole prompt, not the cut.
  EXPECT_GT(info.prompt_tokens_estimate, static_cast<int64_t>(full.size()) / 2);
}

INSTANTIATE_TEST_SUITE_P(Tokenizers, RequestInfoTest,
                         ::testing::Values("tokenizers/qwen3", "tokenizers/llama3",
                                           "models/stories260K/stories260K.gguf"),
                         [](const auto& info) {
                           std::string n = info.param;
                           return n.substr(n.find('/') + 1, n.find_first_of("/.", n.find('/') + 1) -
                                                                n.find('/') - 1);
                         });

TEST(RequestInfo, ErrorsAreTheReplicasErrors) {
  auto bad = ReadRequestInfo("/v1/completions", "{not json", nullptr, {});
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().status, 400);
  EXPECT_EQ(bad.error().code, "invalid_json");
  auto arr = ReadRequestInfo("/v1/completions", "[1]", nullptr, {});
  ASSERT_FALSE(arr.ok());
  EXPECT_EQ(arr.error().status, 400);
  auto nomsg = ReadRequestInfo("/v1/chat/completions", "{}", nullptr, {});
  ASSERT_FALSE(nomsg.ok());
  EXPECT_EQ(nomsg.error().param, "messages");
  auto noprompt = ReadRequestInfo("/v1/completions", R"({"model":"m"})", nullptr, {});
  ASSERT_FALSE(noprompt.ok());
  EXPECT_EQ(noprompt.error().param, "prompt");
  auto stream = ReadRequestInfo("/v1/completions", R"({"prompt":"x","stream":"yes"})", nullptr, {});
  ASSERT_FALSE(stream.ok());
  EXPECT_EQ(stream.error().param, "stream");
  auto model = ReadRequestInfo("/v1/completions", R"({"prompt":"x","model":3})", nullptr, {});
  ASSERT_FALSE(model.ok());
  EXPECT_EQ(model.error().param, "model");
  // Other routes: only the cheap fields.
  auto emb = ReadRequestInfo("/v1/embeddings", R"({"model":"e","input":"x"})", nullptr, {});
  ASSERT_TRUE(emb.ok());
  EXPECT_EQ(emb->model, "e");
  EXPECT_TRUE(emb->prompt.empty());
}

TEST(RequestInfo, WithoutTheModelPromptBytesStandInForTokens) {
  auto a = ReadRequestInfo("/v1/chat/completions",
                           R"({"messages":[{"role":"system","content":"shared system prompt"},
                               {"role":"user","content":"question one"}]})",
                           nullptr, {});
  auto b = ReadRequestInfo("/v1/chat/completions",
                           R"({"messages":[{"role":"system","content":"shared system prompt"},
                               {"role":"user","content":"question two"}]})",
                           nullptr, {});
  ASSERT_TRUE(a.ok() && b.ok());
  EXPECT_FALSE(a->exact_tokens);
  ASSERT_EQ(a->prompt.size(), b->prompt.size());
  // The same leading bytes give the same leading pseudo-tokens.
  size_t same = 0;
  while (same < a->prompt.size() && a->prompt[same] == b->prompt[same]) ++same;
  EXPECT_GE(same, std::string("system\nshared system prompt\nuser\nquestion ").size() / 4);
  EXPECT_LT(same, a->prompt.size());
  RequestInfoOptions no_tokens;
  no_tokens.tokenize = false;
  auto off = ReadRequestInfo("/v1/completions", R"({"prompt":"abc"})", nullptr, no_tokens);
  ASSERT_TRUE(off.ok());
  EXPECT_TRUE(off->prompt.empty());
  EXPECT_EQ(off->prompt_tokens_estimate, 1);
}

}  // namespace
}  // namespace kinfer::router
