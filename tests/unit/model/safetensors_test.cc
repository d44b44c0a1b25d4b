// Safetensors headers and sharded model directories: real fixtures load; broken headers give
// an error naming the file and the tensor.
#include "model/safetensors.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

namespace kinfer::model {
namespace {

using ::testing::HasSubstr;
namespace fs = std::filesystem;

std::vector<uint8_t> File(const std::string& header, size_t data_bytes) {
  std::vector<uint8_t> b(8);
  uint64_t n = header.size();
  std::memcpy(b.data(), &n, 8);
  b.insert(b.end(), header.begin(), header.end());
  b.resize(b.size() + data_bytes, 0);
  return b;
}

std::string Error(const std::string& header, size_t data_bytes) {
  auto f = SafetensorsFile::Parse(File(header, data_bytes), "m.safetensors");
  return f.ok() ? "" : f.status().message();
}

TEST(Safetensors, ParsesValidHeader) {
  auto f = SafetensorsFile::Parse(
      File(
          R"({"__metadata__":{"format":"pt"},"a":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]},"b":{"dtype":"BF16","shape":[4],"data_offsets":[24,32]}})",
          32),
      "m.safetensors");
  ASSERT_TRUE(f.ok()) << f.status().ToString();
  EXPECT_EQ((*f)->metadata().at("format"), "pt");
  const SafetensorsTensor* b = (*f)->Find("b");
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->dtype, DType::kBF16);
  EXPECT_EQ(b->View().cols(), 4);
}

TEST(Safetensors, RejectsBrokenHeadersWithClearMessages) {
  EXPECT_THAT(Error("", 0), HasSubstr("invalid JSON"));
  EXPECT_THAT(Error("{", 0), HasSubstr("m.safetensors: header: invalid JSON"));
  EXPECT_THAT(Error(R"({"a":{"dtype":"Q9","shape":[1],"data_offsets":[0,4]}})", 4),
              HasSubstr("tensor 'a': unknown dtype 'Q9'"));
  EXPECT_THAT(Error(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,16]}})", 16),
              HasSubstr("tensor 'a': data_offsets span 16 bytes but shape and dtype F32 need 8"));
  EXPECT_THAT(Error(R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8),
              HasSubstr("tensor 'a': data_offsets [0, 16) outside the 8-byte data section"));
  EXPECT_THAT(
      Error(
          R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})",
          12),
      HasSubstr("overlap"));
  EXPECT_THAT(Error(R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8),
              HasSubstr("shape has a non-integer entry"));
  std::vector<uint8_t> lies = File("{}", 0);
  uint64_t huge = 1ull << 40;
  std::memcpy(lies.data(), &huge, 8);
  auto f = SafetensorsFile::Parse(lies, "m.safetensors");
  EXPECT_THAT(f.status().message(), HasSubstr("header length 1099511627776 exceeds"));
}

TEST(Safetensors, OpensShardedModelThroughItsIndex) {
  auto m = SafetensorsModel::Open(KINFER_FIXTURES_DIR "/models/llama/hf");
  ASSERT_TRUE(m.ok()) << m.status().ToString();
  EXPECT_EQ((*m)->files().size(), 2u);
  std::string file;
  ASSERT_NE((*m)->Find("lm_head.weight", &file), nullptr);
  EXPECT_THAT(file, HasSubstr("model-0000"));
}

TEST(Safetensors, IndexNamingAMissingTensorOrShardIsAnError) {
  fs::path dir = fs::path(::testing::TempDir()) / "sharded";
  fs::create_directories(dir);
  fs::copy(KINFER_FIXTURES_DIR "/models/llama/hf", dir,
           fs::copy_options::overwrite_existing | fs::copy_options::recursive);
  {
    std::ofstream(dir / "model.safetensors.index.json")
        << R"({"weight_map":{"lm_head.weight":"model-00001-of-00002.safetensors","extra.weight":"model-00001-of-00002.safetensors"}})";
  }
  auto m = SafetensorsModel::Open(dir.string());
  EXPECT_THAT(m.status().message(), HasSubstr("tensor 'extra.weight' is listed in the index"));
  {
    std::ofstream(dir / "model.safetensors.index.json")
        << R"({"weight_map":{"lm_head.weight":"model-00009-of-00009.safetensors"}})";
  }
  m = SafetensorsModel::Open(dir.string());
  EXPECT_THAT(m.status().message(), HasSubstr("model-00009-of-00009.safetensors: no such file"));
  {
    std::ofstream(dir / "model.safetensors.index.json")
        << R"({"weight_map":{"lm_head.weight":"../../etc/passwd"}})";
  }
  m = SafetensorsModel::Open(dir.string());
  EXPECT_THAT(m.status().message(), HasSubstr("outside the model directory"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace kinfer::model
