// YAML streams as kubectl reads them: documents split at "---" lines, plain scalars typed by
// YAML 1.2's core schema, errors naming the source and the line in the whole stream.
#include "k8s/yaml.h"

#include <gtest/gtest.h>

namespace kinfer::k8s {
namespace {

TEST(YamlToJson, ReadsEveryDocumentOfAStream) {
  auto docs = YamlToJson(
      "# leading comment\n---\nkind: A\nn: 1\n--- # second\nkind: B\nok: true\n---\n...\n---\n"
      "kind: C\nv: \"0440\"\n",
      "s.yaml");
  ASSERT_TRUE(docs.ok()) << docs.status().ToString();
  ASSERT_EQ(docs->size(), 3u);
  EXPECT_EQ((*docs)[0], Json::parse(R"({"kind":"A","n":1})"));
  EXPECT_EQ((*docs)[1], Json::parse(R"({"kind":"B","ok":true})"));
  EXPECT_EQ((*docs)[2], Json::parse(R"({"kind":"C","v":"0440"})"));
}

// yaml-cpp finds the unclosed list at "other" (line 2 of the second document, 5 of the stream).
TEST(YamlToJson, NamesTheLineInTheWholeStream) {
  auto docs = YamlToJson("kind: A\n---\nkind: B\nspec: [1, 2\nother: 3\n", "bad.yaml");
  ASSERT_FALSE(docs.ok());
  EXPECT_NE(docs.status().message().find("bad.yaml: line 5, column 6"), std::string::npos)
      << docs.status().ToString();
}

TEST(YamlToJson, RefusesContentAfterASeparator) {
  auto docs = YamlToJson("kind: A\n--- kind: B\n", "s.yaml");
  ASSERT_FALSE(docs.ok());
  EXPECT_NE(docs.status().message().find("line 2"), std::string::npos);
}

// yaml-cpp 0.7's LoadAll loops forever on these (a flow entry at document level); each must
// come back, as a value or an error.
TEST(YamlToJson, ReturnsOnAStrayFlowEntry) {
  for (const char* text : {",", " ,", "{a: 1},", "kind: A\n---\n,\n"}) {
    auto docs = YamlToJson(text, "s.yaml");
    EXPECT_TRUE(!docs.ok() || docs->size() <= 2) << text;
  }
}

}  // namespace
}  // namespace kinfer::k8s
