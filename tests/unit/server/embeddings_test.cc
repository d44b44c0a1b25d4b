// /v1/embeddings parsing, finishing and rendering, with the Qwen3-Embedding-layout fixture's real
// tokenizer (tests/fixtures/embeddings/qwen3-embed). The wire shapes follow OpenAI's API
// reference (and vLLM's extra fields); tests/api/test_embeddings.py checks them end to end with
// the official client against sentence-transformers' vectors.
#include "server/embeddings.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "tokenizer/tokenizer.h"

namespace kinfer::server {
namespace {

using ::testing::HasSubstr;

class Embeddings : public ::testing::Test {
 protected:
  void SetUp() override {
    auto t = tokenizer::Tokenizer::Load(KINFER_FIXTURES_DIR "/embeddings/qwen3-embed");
    ASSERT_TRUE(t.ok()) << t.status().ToString();
    tok_ = std::move(*t);
    info_.served_names = {"embed", "alias"};
    info_.max_model_len = 16;
    info_.vocab_size = tok_->vocab_size();
    info_.tokenizer = tok_.get();
    model_.hidden_size = 32;
    model_.pooling.type = model::PoolingType::kLast;
    model_.pooling.normalize = true;
    model_.pooling.matryoshka = true;
  }
  ApiResult<EmbeddingRequest> Parse(const std::string& body) {
    return ParseEmbeddingRequest(body, info_, model_);
  }
  void ExpectError(const std::string& body, const std::string& param, const std::string& text,
                   int status = 400) {
    auto r = Parse(body);
    ASSERT_FALSE(r.ok()) << body;
    EXPECT_EQ(r.error().status, status) << body;
    EXPECT_EQ(r.error().param, param) << body << ": " << r.error().message;
    EXPECT_THAT(r.error().message, HasSubstr(text)) << body;
  }
  std::unique_ptr<tokenizer::Tokenizer> tok_;
  ModelInfo info_;
  EmbeddingModel model_;
};

TEST_F(Embeddings, InputShapes) {
  auto one = Parse(R"({"input": "Hello"})");
  ASSERT_TRUE(one.ok()) << one.error().message;
  // The tokenizer's post-processor appends <|endoftext|> (id 0), as Qwen3-Embedding's does.
  EXPECT_EQ(one->inputs, (std::vector<std::vector<int32_t>>{tok_->Encode("Hello", true, true)}));
  EXPECT_EQ(one->inputs[0].back(), 0);
  EXPECT_EQ(one->model, "embed");
  EXPECT_FALSE(one->base64);
  auto many = Parse(R"({"input": ["a", "b c"], "model": "alias"})");
  ASSERT_TRUE(many.ok());
  EXPECT_EQ(many->inputs.size(), 2u);
  EXPECT_EQ(many->model, "alias");
  auto ids = Parse(R"({"input": [5, 6, 7]})");
  ASSERT_TRUE(ids.ok());
  EXPECT_EQ(ids->inputs, (std::vector<std::vector<int32_t>>{{5, 6, 7}}));
  auto lists = Parse(R"({"input": [[5], [6, 7]], "encoding_format": "base64"})");
  ASSERT_TRUE(lists.ok());
  EXPECT_EQ(lists->inputs, (std::vector<std::vector<int32_t>>{{5}, {6, 7}}));
  EXPECT_TRUE(lists->base64);
  // Special-token text is parsed, as Hugging Face tokenizers do; add_special_tokens=false drops
  // the appended <|endoftext|>.
  auto special = Parse(R"({"input": "<|im_start|>", "add_special_tokens": false})");
  ASSERT_TRUE(special.ok());
  EXPECT_EQ(special->inputs[0], (std::vector<int32_t>{*tok_->TokenToId("<|im_start|>")}));
}

TEST_F(Embeddings, BadRequestsNameTheField) {
  ExpectError(R"({})", "input", "'input' is required");
  ExpectError(R"({"input": []})", "input", "must be a string");
  ExpectError(R"({"input": 5})", "input", "must be a string");
  ExpectError(R"({"input": ["a", 5]})", "input", "must be a string");
  ExpectError(R"({"input": [[1], "a"]})", "input", "must be a string");
  ExpectError(R"({"input": [[]]})", "input", "must be a string");
  ExpectError(R"({"input": [1, 99999]})", "input", "token ids in 'input'");
  ExpectError(R"({"input": [-1]})", "input", "token ids in 'input'");
  ExpectError(R"({"input": [1.5]})", "input", "token ids in 'input'");
  ExpectError(R"({"input": "", "add_special_tokens": false})", "input", "empty");
  ExpectError(R"({"input": "a", "encoding_format": "int8"})", "encoding_format", "base64");
  ExpectError(R"({"input": "a", "dimensions": 0})", "dimensions", "between 1");
  ExpectError(R"({"input": "a", "dimensions": 33})", "dimensions", "at most 32");
  ExpectError(R"({"input": "a", "dimensions": "8"})", "dimensions", "integer");
  ExpectError(R"({"input": "a", "user": 1})", "user", "string");
  ExpectError(R"({"input": "a", "normalize": "yes"})", "normalize", "boolean");
  ExpectError(R"({"input": "a", "truncate_prompt_tokens": 0})", "truncate_prompt_tokens", "-1");
  ExpectError(R"({"input": "a", "truncate_prompt_tokens": 17})", "truncate_prompt_tokens",
              "at most 16");
  ExpectError(R"({"input": "a", "temperature": 1})", "temperature", "not supported");
  ExpectError(R"({"input": "a", "model": "other"})", "model", "does not exist", 404);
  ExpectError(R"([1])", "", "JSON object");
  ExpectError(R"({"input": "a", )", "", "");
  ExpectError(R"({"input": [1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1,1]})", "input",
              "maximum context length is 16");
  std::string many = R"({"input": [)";
  for (int i = 0; i < 2049; ++i) many += i ? ",\"a\"" : "\"a\"";
  ExpectError(many + "]}", "input", "at most 2048");
  model_.pooling.matryoshka = false;
  ExpectError(R"({"input": "a", "dimensions": 8})", "dimensions", "matryoshka");
  model_.pooling.matryoshka = true;
  model_.pooling.matryoshka_dimensions = {8, 16};
  ExpectError(R"({"input": "a", "dimensions": 12})", "dimensions", "8, 16");
  EXPECT_TRUE(Parse(R"({"input": "a", "dimensions": 16})").ok());
}

TEST_F(Embeddings, TruncationKeepsTheLastTokens) {
  auto r = Parse(R"({"input": [[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]],
                     "truncate_prompt_tokens": 3})");
  ASSERT_TRUE(r.ok()) << r.error().message;
  EXPECT_EQ(r->inputs[0], (std::vector<int32_t>{18, 19, 20}));
  auto whole = Parse(R"({"input": [[1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20]],
                         "truncate_prompt_tokens": -1})");
  ASSERT_TRUE(whole.ok());
  EXPECT_EQ(whole->inputs[0].size(), 16u);
  EXPECT_EQ(whole->inputs[0].front(), 5);
}

TEST_F(Embeddings, FinishTruncatesThenNormalizes) {
  EmbeddingRequest req;
  req.normalize = true;
  req.dimensions = 2;
  const std::vector<float> v = FinishEmbedding({3, 4, 100}, req);
  ASSERT_EQ(v.size(), 2u);
  EXPECT_FLOAT_EQ(v[0], 0.6f);
  EXPECT_FLOAT_EQ(v[1], 0.8f);
  req.dimensions = 0;
  req.normalize = false;
  EXPECT_EQ(FinishEmbedding({3, 4, 100}, req), (std::vector<float>{3, 4, 100}));
  req.normalize = true;
  EXPECT_EQ(FinishEmbedding({0, 0}, req), (std::vector<float>{0, 0}));  // no NaN for a zero vector
}

TEST_F(Embeddings, Base64IsLittleEndianFloat32) {
  // Python: base64.b64encode(np.array([1.0, -2.5], "<f4").tobytes()) == b"AACAPwAAIMA="
  EXPECT_EQ(Base64Floats({1.0f, -2.5f}), "AACAPwAAIMA=");
  EXPECT_EQ(Base64Floats({1.0f}), "AACAPw==");
  EXPECT_EQ(Base64Floats({}), "");
}

TEST_F(Embeddings, ResponseShape) {
  auto req = Parse(R"({"input": ["a", "b"]})");
  ASSERT_TRUE(req.ok());
  const std::string body =
      RenderEmbeddingResponse(*req, {{0.5f, -0.25f}, {1e-8f, 3.0f}}, 7, "embd-1", 123);
  auto j = ParseJson(body, "response");
  ASSERT_TRUE(j.ok()) << body;
  EXPECT_EQ((*j)["object"], "list");
  EXPECT_EQ((*j)["model"], "embed");
  EXPECT_EQ((*j)["usage"]["prompt_tokens"], 7);
  EXPECT_EQ((*j)["usage"]["total_tokens"], 7);
  ASSERT_EQ((*j)["data"].size(), 2u);
  EXPECT_EQ((*j)["data"][1]["object"], "embedding");
  EXPECT_EQ((*j)["data"][1]["index"], 1);
  // Each value is written as the shortest text that reads back as the same float32.
  EXPECT_EQ(static_cast<float>((*j)["data"][1]["embedding"][0].get<double>()), 1e-8f);
  EXPECT_EQ((*j)["data"][0]["embedding"][1].get<double>(), -0.25);
  req->base64 = true;
  auto b = ParseJson(RenderEmbeddingResponse(*req, {{1.0f, -2.5f}}, 1, "embd-2", 1), "response");
  ASSERT_TRUE(b.ok());
  EXPECT_EQ((*b)["data"][0]["embedding"], "AACAPwAAIMA=");
}

}  // namespace
}  // namespace kinfer::server
