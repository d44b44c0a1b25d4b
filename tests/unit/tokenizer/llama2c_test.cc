// The tiny stories260K model's tokenizer in all three forms (llama2.c tok512.bin, SentencePiece
// tok512.model, GGUF metadata) against expected.json, made by a re-implementation of llama2.c's
// run.c: prompt ids with BOS, and the generated ids' text.
#include <gtest/gtest.h>

#include "core/json.h"
#include "test_util.h"

namespace kinfer::tokenizer {
namespace {

using testing::LoadOrDie;
using testing::ReadOrDie;
using testing::SharedPath;

class Stories260K : public ::testing::TestWithParam<std::string> {};

TEST_P(Stories260K, EncodesPromptsAndDecodesGenerationsAsRunC) {
  auto tok = LoadOrDie(SharedPath("models/stories260K/" + GetParam()));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->vocab_size(), 512);
  EXPECT_EQ(tok->bos_id(), 1);
  EXPECT_EQ(tok->eos_ids().front(), 2);
  auto doc = ParseJson(ReadOrDie(SharedPath("models/stories260K/expected.json")), "expected.json");
  ASSERT_TRUE(doc.ok());
  for (const auto& c : (*doc)["cases"]) {
    const std::string prompt = c["prompt"].get<std::string>();
    const auto prompt_ids = c["prompt_ids"].get<std::vector<int32_t>>();
    EXPECT_EQ(tok->Encode(prompt, /*add_special_tokens=*/true, /*parse_special=*/false), prompt_ids)
        << prompt;
    // run.c prints each piece, dropping the space of a piece that follows BOS.
    std::vector<int32_t> all = prompt_ids;
    const auto gen = c["generated_ids"].get<std::vector<int32_t>>();
    all.insert(all.end(), gen.begin(), gen.end());
    EXPECT_EQ(tok->Decode(all, /*skip_special_tokens=*/true),
              prompt + c["generated_text"].get<std::string>());
  }
}

// A llama2.c model path finds the tok512.bin beside it, as `kinfer generate` relies on.
INSTANTIATE_TEST_SUITE_P(Forms, Stories260K,
                         ::testing::Values("tok512.bin", "tok512.model", "stories260K.gguf",
                                           "stories260K.bin"));

}  // namespace
}  // namespace kinfer::tokenizer
