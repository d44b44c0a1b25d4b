// Helpers for the tokenizer tests: paths to ../shared and the fixtures, and file reading.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <string>

#include "core/mapped_file.h"
#include "tokenizer/tokenizer.h"

namespace kinfer::tokenizer::testing {

inline std::string SharedPath(const std::string& rel) {
  return std::string(KINFER_SHARED_DIR) + "/" + rel;
}

inline std::string ReadOrDie(const std::string& path) {
  auto text = ReadFileToString(path);
  EXPECT_TRUE(text.ok()) << text.status().ToString();
  return text.ok() ? *text : std::string();
}

inline std::unique_ptr<Tokenizer> LoadOrDie(const std::string& path) {
  auto tok = Tokenizer::Load(path);
  EXPECT_TRUE(tok.ok()) << path << ": " << tok.status().ToString();
  return tok.ok() ? std::move(*tok) : nullptr;
}

}  // namespace kinfer::tokenizer::testing
