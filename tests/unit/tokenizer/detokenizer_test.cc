// The incremental detokenizer against the full decode (Tokenizer::Decode, itself checked against
// Hugging Face in tests/compat): deltas never split a UTF-8 character, and their concatenation
// equals the full decode.
#include "tokenizer/detokenizer.h"

#include <gtest/gtest.h>

#include <random>

#include "test_util.h"
#include "tokenizer/unicode.h"

namespace kinfer::tokenizer {
namespace {

using testing::LoadOrDie;
using testing::SharedPath;

std::vector<std::string> Deltas(const Tokenizer& tok, const std::vector<int32_t>& ids,
                                bool skip_special) {
  IncrementalDetokenizer d(tok, skip_special);
  std::vector<std::string> out;
  for (int32_t id : ids) out.push_back(d.Push(id));
  out.push_back(d.Flush());
  return out;
}

std::vector<int32_t> Ids(const Tokenizer& tok, std::initializer_list<const char*> pieces) {
  std::vector<int32_t> ids;
  for (const char* p : pieces) {
    auto id = tok.TokenToId(p);
    EXPECT_TRUE(id.has_value()) << p;
    ids.push_back(id.value_or(0));
  }
  return ids;
}

TEST(IncrementalDetokenizer, HoldsByteFallbackCharacterUntilItsRunEnds) {
  auto tok = LoadOrDie(SharedPath("tokenizers/mistral-7b/tokenizer.json"));
  ASSERT_NE(tok, nullptr);
  const auto ids = Ids(*tok, {"▁Hi", "<0xE4>", "<0xBD>", "<0xA0>", "▁a"});
  EXPECT_EQ(Deltas(*tok, ids, false), (std::vector<std::string>{"Hi", "", "", "", "你 a", ""}));
  EXPECT_EQ(tok->Decode(ids, false), "Hi你 a");
}

TEST(IncrementalDetokenizer, UnfinishedByteRunBecomesReplacementCharacters) {
  // Hugging Face's ByteFallback decoder: an invalid run gives one U+FFFD per byte token.
  auto tok = LoadOrDie(SharedPath("tokenizers/mistral-7b/tokenizer.json"));
  ASSERT_NE(tok, nullptr);
  const auto ids = Ids(*tok, {"<0xE4>", "<0xBD>"});
  EXPECT_EQ(Deltas(*tok, ids, false), (std::vector<std::string>{"", "", "\uFFFD\uFFFD"}));
}

TEST(IncrementalDetokenizer, DropsSentencePieceLeadingSpaceOnce) {
  auto tok = LoadOrDie(SharedPath("tokenizers/mistral-7b/tokenizer.json"));
  ASSERT_NE(tok, nullptr);
  const auto ids = tok->Encode("Hello world", true, false);  // <s> ▁Hello ▁world
  EXPECT_EQ(Deltas(*tok, ids, true), (std::vector<std::string>{"", "Hello", " world", ""}));
}

TEST(IncrementalDetokenizer, ByteLevelCharacterSplitOverTokens) {
  auto tok = LoadOrDie(SharedPath("tokenizers/llama3/tokenizer.json"));
  ASSERT_NE(tok, nullptr);
  const auto ids = tok->Encode("🦙!", false, false);
  ASSERT_GE(ids.size(), 3u);
  const auto deltas = Deltas(*tok, ids, false);
  for (size_t i = 0; i + 2 < ids.size(); ++i) EXPECT_EQ(deltas[i], "") << i;
  std::string all;
  for (const auto& d : deltas) all += d;
  EXPECT_EQ(all, "🦙!");
}

TEST(IncrementalDetokenizer, FlushTurnsUnfinishedCharacterIntoReplacement) {
  auto tok = LoadOrDie(SharedPath("tokenizers/llama3/tokenizer.json"));
  ASSERT_NE(tok, nullptr);
  auto ids = tok->Encode("🦙", false, false);
  ids.pop_back();
  EXPECT_EQ(Deltas(*tok, ids, false).back(), "\uFFFD");
  EXPECT_EQ(tok->Decode(ids, false), "\uFFFD");
}

TEST(IncrementalDetokenizer, SkipsSpecialTokens) {
  auto tok = LoadOrDie(SharedPath("tokenizers/qwen3/tokenizer.json"));
  ASSERT_NE(tok, nullptr);
  const auto ids = tok->Encode("<|im_start|>user\nHi<|im_end|>", false, true);
  std::string all;
  for (const auto& d : Deltas(*tok, ids, true)) all += d;
  EXPECT_EQ(all, "user\nHi");
  all.clear();
  for (const auto& d : Deltas(*tok, ids, false)) all += d;
  EXPECT_EQ(all, "<|im_start|>user\nHi<|im_end|>");
}

class DetokenizerProperty : public ::testing::TestWithParam<std::string> {};

TEST_P(DetokenizerProperty, ConcatenatedDeltasEqualFullDecodeOnRandomIds) {
  auto tok = LoadOrDie(SharedPath(GetParam()));
  ASSERT_NE(tok, nullptr);
  std::mt19937 rng(42);
  for (int round = 0; round < 300; ++round) {
    std::vector<int32_t> ids(1 + rng() % 40);
    for (auto& id : ids) {
      // Bias towards the first 512 ids, where byte tokens live.
      id = static_cast<int32_t>(rng() % 2 ? rng() % 512 : rng() % tok->vocab_size());
    }
    for (bool skip : {false, true}) {
      std::string all;
      for (const auto& d : Deltas(*tok, ids, skip)) {
        EXPECT_TRUE(IsValidUtf8(d));
        all += d;
      }
      EXPECT_EQ(all, tok->Decode(ids, skip));
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Shared, DetokenizerProperty,
                         ::testing::Values("tokenizers/llama3/tokenizer.json",
                                           "tokenizers/qwen3/tokenizer.json",
                                           "tokenizers/deepseek-v3/tokenizer.json",
                                           "tokenizers/mistral-7b/tokenizer.json",
                                           "tokenizers/llama2-sentencepiece/tokenizer.model",
                                           "models/stories260K/stories260K.gguf"));

}  // namespace
}  // namespace kinfer::tokenizer
