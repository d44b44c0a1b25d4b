// The pure parts of `kinfer pull`: hf:// URLs, include globs (checked against Python's
// fnmatch.fnmatchcase, which huggingface_hub's allow_patterns use), URL encoding and the
// model-info listing (the Hub's /api/models/{repo}/revision/{rev}?blobs=true layout).
#include "model/hub_download.h"

#include <gtest/gtest.h>

#include "core/json.h"

namespace kinfer::model {
namespace {

TEST(HubUrl, ParsesRepoAndDefaultsRevisionToMain) {
  auto r = ParseHubUrl("hf://Qwen/Qwen2.5-0.5B-Instruct");
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->repo_id, "Qwen/Qwen2.5-0.5B-Instruct");
  EXPECT_EQ(r->revision, "main");
}

TEST(HubUrl, ParsesRevisionsIncludingRefsWithSlashes) {
  EXPECT_EQ(*ParseHubUrl("hf://org/name@v1.0"), (HubRef{"org/name", "v1.0"}));
  EXPECT_EQ(*ParseHubUrl("hf://org/name@refs/pr/1"), (HubRef{"org/name", "refs/pr/1"}));
  EXPECT_EQ(*ParseHubUrl("hf://org/name@0123456789abcdef0123456789abcdef01234567"),
            (HubRef{"org/name", "0123456789abcdef0123456789abcdef01234567"}));
}

TEST(HubUrl, RejectsMalformedUrlsWithAMessageThatSaysWhy) {
  struct Case {
    const char* url;
    const char* says;
  } cases[] = {
      {"Qwen/Qwen2.5", "expected hf://ORG/NAME[@REVISION]"},
      {"https://huggingface.co/org/name", "expected hf://ORG/NAME[@REVISION]"},
      {"hf://justname", "no '/'"},
      {"hf://a/b/c", "more than one '/'"},
      {"hf:///name", "empty organization"},
      {"hf://org/", "empty model name"},
      {"hf://org/na me", "character ' '"},
      {"hf://org/name@", "empty revision"},
      {"hf://org/name@../../etc", "may not contain '..'"},
      {"hf://../name", "not a valid organization"},
  };
  for (const Case& c : cases) {
    auto r = ParseHubUrl(c.url);
    ASSERT_FALSE(r.ok()) << c.url;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << c.url;
    EXPECT_NE(r.status().message().find(c.says), std::string::npos)
        << c.url << ": " << r.status().message();
  }
}

// Expected values are what Python's fnmatch.fnmatchcase(name, pattern) returns.
TEST(GlobMatch, AgreesWithPythonFnmatch) {
  struct Case {
    const char* pattern;
    const char* name;
    bool match;
  } cases[] = {
      {"*.gguf", "model.gguf", true},
      {"*.gguf", "q4/model.gguf", true},  // '*' crosses '/' in fnmatch
      {"*.gguf", "model.gguf.part", false},
      {"*.json", "config.json", true},
      {"tokenizer*", "tokenizer_config.json", true},
      {"tokenizer*", "a/tokenizer.json", false},
      {"Q4_K_M/*", "Q4_K_M/model-00001-of-00002.gguf", true},
      {"Q4_K_M/*", "Q8_0/model.gguf", false},
      {"model-0000?-of-00002.safetensors", "model-00001-of-00002.safetensors", true},
      {"model-0000?-of-00002.safetensors", "model-00011-of-00002.safetensors", false},
      {"*[0-9].bin", "pytorch_model1.bin", true},
      {"*[!0-9].bin", "pytorch_model1.bin", false},
      {"*[!0-9].bin", "pytorch_modelx.bin", true},
      {"[ab]*", "bert", true},
      {"[ab]*", "cert", false},
      {"[", "[", true},  // an unclosed class is a literal
      {"a[", "a[", true},
      {"*", "", true},
      {"", "", true},
      {"", "a", false},
      {"**", "x/y/z", true},
      {"*a*b*c", "xaxbxc", true},
      {"*a*b*c", "xaxbx", false},
      {"CASE.gguf", "case.gguf", false},  // case-sensitive, like fnmatchcase
  };
  for (const Case& c : cases) {
    EXPECT_EQ(GlobMatch(c.pattern, c.name), c.match) << c.pattern << " vs " << c.name;
  }
}

TEST(GlobMatch, IncludesEverythingWithoutPatternsAndAnyMatchWithSome) {
  EXPECT_TRUE(IsIncluded({}, "anything"));
  EXPECT_TRUE(IsIncluded({"*.json", "*.gguf"}, "m.gguf"));
  EXPECT_FALSE(IsIncluded({"*.json", "*.gguf"}, "m.safetensors"));
}

TEST(UrlEncodePath, KeepsUnreservedAndOptionallySlashes) {
  EXPECT_EQ(UrlEncodePath("refs/pr/1", false), "refs%2Fpr%2F1");
  EXPECT_EQ(UrlEncodePath("dir/a b+c.gguf", true), "dir/a%20b%2Bc.gguf");
  EXPECT_EQ(UrlEncodePath("Model-1_x.~", false), "Model-1_x.~");
}

constexpr const char* kInfo = R"({
  "id": "org/tiny", "sha": "abc123",
  "siblings": [
    {"rfilename": "config.json", "size": 12, "blobId": "0123456789012345678901234567890123456789"},
    {"rfilename": "q4/model.gguf", "size": 99, "blobId": "ffff",
     "lfs": {"sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
             "size": 1000, "pointerSize": 130}}
  ]
})";

TEST(ModelInfo, ParsesSiblingsWithSizesBlobIdsAndLfsHashes) {
  auto info = ParseModelInfo(kInfo, "info");
  ASSERT_TRUE(info.ok()) << info.status().message();
  EXPECT_EQ(info->commit, "abc123");
  ASSERT_EQ(info->files.size(), 2u);
  EXPECT_EQ(info->files[0].path, "config.json");
  EXPECT_EQ(info->files[0].size, 12);
  EXPECT_TRUE(info->files[0].lfs_sha256.empty());
  EXPECT_EQ(info->files[1].path, "q4/model.gguf");
  EXPECT_EQ(info->files[1].size, 1000);  // the LFS size is the content's, not the pointer's
  EXPECT_EQ(info->files[1].lfs_sha256,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST(ModelInfo, RefusesFileNamesThatLeaveTheTargetDirectory) {
  for (const char* name :
       {"../evil", "/etc/passwd", "a/../../b", "a//b", ".kinfer-pull/x", "a\\b"}) {
    std::string json =
        fmt::format(R"({{"siblings": [{{"rfilename": {}}}]}})", Json(std::string(name)).dump());
    auto info = ParseModelInfo(json, "info");
    ASSERT_FALSE(info.ok()) << name;
    EXPECT_NE(info.status().message().find("refusing file name"), std::string::npos)
        << info.status().message();
  }
}

TEST(ModelInfo, NamesTheFieldThatIsWrong) {
  auto no_siblings = ParseModelInfo(R"({"sha": "x"})", "info");
  ASSERT_FALSE(no_siblings.ok());
  EXPECT_EQ(no_siblings.status().message(), "info: field 'siblings': expected an array of files");
  auto bad_hash = ParseModelInfo(
      R"({"siblings": [{"rfilename": "m.gguf", "lfs": {"sha256": "12", "size": 1}}]})", "info");
  ASSERT_FALSE(bad_hash.ok());
  EXPECT_NE(bad_hash.status().message().find("expected 64 hex digits"), std::string::npos);
}

}  // namespace
}  // namespace kinfer::model
