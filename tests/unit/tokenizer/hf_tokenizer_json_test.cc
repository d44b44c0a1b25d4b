// tokenizer.json features on small hand-written files, with expectations worked out from Hugging
// Face tokenizers' documented behavior (added-token flags, post-processor templates, config
// overrides), and errors for files it cannot read.
#include "tokenizer/hf_tokenizer_json.h"

#include <gtest/gtest.h>

namespace kinfer::tokenizer {
namespace {

// Byte-level BPE over a tiny vocab: every printable ASCII byte plus a few merges.
std::string TinyByteLevelJson(const std::string& added_tokens, const std::string& post = "null") {
  std::string vocab = "{";
  int id = 0;
  for (int c = '!'; c <= '~'; ++c) {
    std::string s(1, static_cast<char>(c));
    if (s == "\"" || s == "\\") s = "\\" + s;
    vocab += "\"" + s + "\": " + std::to_string(id++) + ", ";
  }
  vocab += "\"Ġ\": 94, \"Ġh\": 95, \"Ġhi\": 96, \"hi\": 97}";
  return R"({"version": "1.0", "added_tokens": )" + added_tokens +
         R"(, "normalizer": null,
    "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "use_regex": true},
    "post_processor": )" +
         post + R"(, "decoder": {"type": "ByteLevel"},
    "model": {"type": "BPE", "vocab": )" +
         vocab + R"(, "merges": ["Ġ h", "Ġh i", "h i"]}})";
}

std::unique_ptr<Tokenizer> Build(const std::string& json, const std::string& config = "") {
  auto parts = ParseHfTokenizer(json, config, "", "", "test/tokenizer.json");
  EXPECT_TRUE(parts.ok()) << parts.status().ToString();
  if (!parts.ok()) return nullptr;
  auto tok = Tokenizer::Create(std::move(*parts));
  EXPECT_TRUE(tok.ok()) << tok.status().ToString();
  return tok.ok() ? std::move(*tok) : nullptr;
}

TEST(HfTokenizerJson, MergesInRankOrder) {
  auto tok = Build(TinyByteLevelJson("[]"));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->Encode(" hi hi", false, false), (std::vector<int32_t>{96, 96}));
  EXPECT_EQ(tok->Encode("hi", false, false), (std::vector<int32_t>{97}));
  EXPECT_EQ(tok->Decode(std::vector<int32_t>{96, 97}, false), " hihi");
}

TEST(HfTokenizerJson, AddedTokensHonorLstripRstripAndSpecial) {
  auto tok = Build(TinyByteLevelJson(R"([
      {"id": 98, "content": "<X>", "special": true, "lstrip": true, "rstrip": false,
       "single_word": false, "normalized": false},
      {"id": 99, "content": "<Y>", "special": false, "lstrip": false, "rstrip": true,
       "single_word": false, "normalized": false}])"));
  ASSERT_NE(tok, nullptr);
  // lstrip swallows the spaces before <X>; rstrip the spaces after <Y>.
  EXPECT_EQ(tok->Encode("hi  <X>", false, true), (std::vector<int32_t>{97, 98}));
  EXPECT_EQ(tok->Encode("<Y>   hi", false, true), (std::vector<int32_t>{99, 97}));
  // A special token is text unless parse_special; a non-special added token always matches.
  EXPECT_EQ(tok->Encode("<X>", false, false).size(), 3u);
  EXPECT_EQ(tok->Encode("<Y>", false, false), (std::vector<int32_t>{99}));
  EXPECT_TRUE(tok->IsSpecial(98));
  EXPECT_FALSE(tok->IsSpecial(99));
  EXPECT_EQ(tok->Decode(std::vector<int32_t>{97, 98, 97}, true), "hihi");
}

TEST(HfTokenizerJson, SingleWordTokenNeedsWordBoundaries) {
  auto tok = Build(TinyByteLevelJson(R"([
      {"id": 98, "content": "ab", "special": false, "lstrip": false, "rstrip": false,
       "single_word": true, "normalized": false}])"));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->Encode("ab", false, false), (std::vector<int32_t>{98}));
  EXPECT_EQ(tok->Encode("xab", false, false).size(), 3u);
}

TEST(HfTokenizerJson, TemplateProcessingAndConfigOverrides) {
  const std::string added = R"([{"id": 98, "content": "<s>", "special": true, "lstrip": false,
      "rstrip": false, "single_word": false, "normalized": false},
      {"id": 99, "content": "</s>", "special": true, "lstrip": false,
      "rstrip": false, "single_word": false, "normalized": false}])";
  const std::string post = R"({"type": "TemplateProcessing",
      "single": [{"SpecialToken": {"id": "<s>", "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
      "pair": [], "special_tokens": {"<s>": {"id": "<s>", "ids": [98], "tokens": ["<s>"]}}})";
  auto tok = Build(TinyByteLevelJson(added, post));
  ASSERT_NE(tok, nullptr);
  EXPECT_EQ(tok->Encode("hi", true, false), (std::vector<int32_t>{98, 97}));
  EXPECT_EQ(tok->bos_id(), 98);
  // tokenizer_config.json's explicit add_bos_token/add_eos_token win over the template.
  auto with_config = Build(TinyByteLevelJson(added, post),
                           R"({"bos_token": "<s>", "eos_token": "</s>", "add_bos_token": false,
                               "add_eos_token": true, "chat_template": [{"name": "default",
                               "template": "T"}, {"name": "tool_use", "template": "U"}]})");
  ASSERT_NE(with_config, nullptr);
  EXPECT_EQ(with_config->Encode("hi", true, false), (std::vector<int32_t>{97, 99}));
  EXPECT_EQ(with_config->eos_ids(), (std::vector<int32_t>{99}));
  EXPECT_EQ(with_config->chat_template(), "T");
  ASSERT_NE(with_config->FindChatTemplate("tool_use"), nullptr);
  EXPECT_EQ(*with_config->FindChatTemplate("tool_use"), "U");
}

TEST(HfTokenizerJson, ErrorsNameWhatIsWrong) {
  auto bad_json = ParseHfTokenizer("{", "", "", "", "t.json");
  ASSERT_FALSE(bad_json.ok());
  EXPECT_EQ(bad_json.status().code(), StatusCode::kInvalidArgument);

  std::string unknown_merge = TinyByteLevelJson("[]");
  unknown_merge.replace(unknown_merge.find("\"h i\""), 5, "\"h q9\"");
  auto merge = ParseHfTokenizer(unknown_merge, "", "", "", "t.json");
  ASSERT_FALSE(merge.ok());
  EXPECT_NE(merge.status().message().find("merge 2"), std::string::npos)
      << merge.status().message();

  auto unigram = ParseHfTokenizer(R"({"model": {"type": "Unigram", "vocab": [["a", 0.0]]}})", "",
                                  "", "", "t.json");
  ASSERT_FALSE(unigram.ok());
  EXPECT_EQ(unigram.status().code(), StatusCode::kUnimplemented);

  auto wrong_type = ParseHfTokenizer(R"({"model": {"type": "BPE", "vocab": {"a": "zero"}}})", "",
                                     "", "", "t.json");
  ASSERT_FALSE(wrong_type.ok());
}

TEST(TokenizerLoad, MissingPathIsNotFound) {
  auto tok = Tokenizer::Load("/nonexistent/tokenizer.json");
  ASSERT_FALSE(tok.ok());
  EXPECT_EQ(tok.status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace kinfer::tokenizer
