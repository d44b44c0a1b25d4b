// Token ids against recorded reference vectors: llama.cpp's test-tokenizer-0 files (ids made by
// Hugging Face tokenizers, no BOS), the vectors generated for DeepSeek-V3 and Mistral-7B by the
// @lenml/tokenizers port, and rendered chat prompts with their special tokens.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "core/json.h"
#include "test_util.h"

namespace kinfer::tokenizer {
namespace {

using testing::LoadOrDie;
using testing::ReadOrDie;
using testing::SharedPath;

std::vector<std::string> SplitCases(const std::string& inp) {
  const std::string sep = "\n__ggml_vocab_test__\n";
  std::vector<std::string> out;
  size_t pos = 0;
  while (true) {
    const size_t hit = inp.find(sep, pos);
    if (hit == std::string::npos) {
      out.push_back(inp.substr(pos));
      break;
    }
    out.push_back(inp.substr(pos, hit - pos));
    pos = hit + sep.size();
  }
  return out;
}

std::vector<std::vector<int32_t>> ReadIds(const std::string& out, size_t n) {
  std::vector<std::vector<int32_t>> ids;
  size_t pos = 0;
  while (ids.size() < n && pos <= out.size()) {
    size_t end = out.find('\n', pos);
    if (end == std::string::npos) end = out.size();
    std::istringstream nums(out.substr(pos, end - pos));
    pos = end + 1;
    std::vector<int32_t> v;
    int32_t x;
    while (nums >> x) v.push_back(x);
    ids.push_back(std::move(v));
  }
  return ids;
}

void ExpectVectors(const std::string& tokenizer_path, const std::string& inp_path,
                   const std::string& out_path) {
  auto tok = LoadOrDie(tokenizer_path);
  ASSERT_NE(tok, nullptr);
  const auto cases = SplitCases(ReadOrDie(inp_path));
  const auto want = ReadIds(ReadOrDie(out_path), cases.size());
  ASSERT_EQ(want.size(), cases.size()) << out_path;
  for (size_t i = 0; i < cases.size(); ++i) {
    EXPECT_EQ(tok->Encode(cases[i], /*add_special_tokens=*/false, /*parse_special=*/false), want[i])
        << tokenizer_path << " case " << i << ": '" << cases[i] << "'";
  }
}

class LlamaCppVocab : public ::testing::TestWithParam<std::string> {};

TEST_P(LlamaCppVocab, MatchesRecordedIds) {
  const std::string base = SharedPath("tokenizer-tests/llama.cpp/ggml-vocab-" + GetParam());
  ExpectVectors(base + ".gguf", base + ".gguf.inp", base + ".gguf.out");
}

INSTANTIATE_TEST_SUITE_P(Gguf, LlamaCppVocab,
                         ::testing::Values("bert-bge", "deepseek-coder", "deepseek-llm", "falcon",
                                           "gpt-2", "llama-spm", "mpt", "phi-3", "refact",
                                           "starcoder"));

TEST(TokenizerVectors, Llama3TokenizerJsonMatchesLlamaBpeVectors) {
  ExpectVectors(SharedPath("tokenizers/llama3/tokenizer.json"),
                SharedPath("tokenizer-tests/llama.cpp/ggml-vocab-llama-bpe.gguf.inp"),
                SharedPath("tokenizer-tests/llama.cpp/ggml-vocab-llama-bpe.gguf.out"));
}

TEST(TokenizerVectors, Qwen3TokenizerJsonMatchesQwen2Vectors) {
  ExpectVectors(SharedPath("tokenizers/qwen3/tokenizer.json"),
                SharedPath("tokenizer-tests/llama.cpp/ggml-vocab-qwen2.gguf.inp"),
                SharedPath("tokenizer-tests/llama.cpp/ggml-vocab-qwen2.gguf.out"));
}

TEST(TokenizerVectors, DeepSeekV3MatchesGeneratedVectors) {
  ExpectVectors(SharedPath("tokenizers/deepseek-v3/tokenizer.json"),
                SharedPath("tokenizer-tests/generated/common.inp"),
                SharedPath("tokenizer-tests/generated/deepseek-v3.out"));
}

TEST(TokenizerVectors, Mistral7bMatchesGeneratedVectors) {
  ExpectVectors(SharedPath("tokenizers/mistral-7b/tokenizer.json"),
                SharedPath("tokenizer-tests/generated/common.inp"),
                SharedPath("tokenizer-tests/generated/mistral-7b.out"));
}

TEST(TokenizerVectors, ChatPromptsWithSpecialTokens) {
  auto doc = ParseJson(ReadOrDie(SharedPath("tokenizer-tests/generated/chat-prompts.json")),
                       "chat-prompts.json");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  std::map<std::string, std::unique_ptr<Tokenizer>> cache;
  int checked = 0;
  for (const auto& c : (*doc)["cases"]) {
    const std::string path = c["tokenizer"].get<std::string>();
    auto& tok = cache[path];
    if (!tok) tok = LoadOrDie(SharedPath(path));
    ASSERT_NE(tok, nullptr);
    const auto want = c["ids"].get<std::vector<int32_t>>();
    const std::string text = c["text"].get<std::string>();
    EXPECT_EQ(tok->Encode(text, /*add_special_tokens=*/false, /*parse_special=*/true), want)
        << path << ": " << text;
    ++checked;
  }
  EXPECT_EQ(checked, 24);
}

}  // namespace
}  // namespace kinfer::tokenizer
