// `kinfer generate` on stories260K in all three formats prints exactly the text llama2.c's run.c
// prints (../shared/models/stories260K/expected.json), for every reference prompt.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "core/json.h"
#include "core/mapped_file.h"

namespace kinfer::cli {
namespace {

std::string RunCommand(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (!p) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof(buf), p)) > 0) out.append(buf, n);
  pclose(p);
  return out;
}

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

class GenerateStories : public ::testing::TestWithParam<std::string> {};

TEST_P(GenerateStories, PrintsRunCsStory) {
  const char* bin = std::getenv("KINFER_BINARY");
  ASSERT_NE(bin, nullptr) << "run through ctest, which sets KINFER_BINARY";
  const std::string dir = KINFER_SHARED_DIR "/models/stories260K/";
  auto text = ReadFileToString(dir + "expected.json");
  ASSERT_TRUE(text.ok());
  auto expected = ParseJson(*text, "expected.json");
  ASSERT_TRUE(expected.ok());
  for (const auto& cs : (*expected)["cases"]) {
    const std::string prompt = cs["prompt"].get<std::string>();
    const int n = static_cast<int>(cs["generated_ids"].size());
    // An empty prompt is just BOS, given as ids; the others go through the tokenizer.
    std::string args = prompt.empty() ? "--prompt-ids 1" : "--prompt " + Quote(prompt);
    const std::string tokenizer = GetParam() == "hf" ? " --tokenizer " + dir + "tok512.bin" : "";
    std::string cmd = std::string(bin) + " --log-level warn generate --model " + dir + GetParam() +
                      tokenizer + " " + args + " -n " + std::to_string(n) +
                      " --temperature 0 --kv-cache-dtype f32 2>/dev/null";
    std::string out = RunCommand(cmd);
    ASSERT_FALSE(out.empty()) << cmd;
    ASSERT_EQ(out.back(), '\n');
    out.pop_back();
    EXPECT_EQ(out, cs["generated_text"].get<std::string>()) << "prompt '" << prompt << "'";
  }
}

INSTANTIATE_TEST_SUITE_P(AllFormats, GenerateStories,
                         ::testing::Values("stories260K.bin", "stories260K.gguf", "hf"),
                         [](const auto& info) {
                           std::string s = info.param;
                           for (char& c : s) {
                             if (!std::isalnum(static_cast<unsigned char>(c))) c = '_';
                           }
                           return s;
                         });

}  // namespace
}  // namespace kinfer::cli
