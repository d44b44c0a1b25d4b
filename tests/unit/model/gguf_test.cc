// The GGUF parser on real files (fixtures, ../shared) and on files broken in one precise way:
// every failure is an error that names the file and what was wrong, never a crash.
#include "model/gguf.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "model/config.h"
#include "model/model.h"
#include "tests/unit/model/gguf_builder.h"

namespace kinfer::model {
namespace {

using testing::GgufBuilder;
using ::testing::HasSubstr;

Status ParseBytes(const std::vector<uint8_t>& b) { return GgufFile::Parse(b, "bad.gguf").status(); }

TEST(Gguf, ReadsRealFileMetadataAndTensors) {
  auto g = GgufFile::Open(KINFER_SHARED_DIR "/models/stories260K/stories260K.gguf");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_EQ((*g)->version(), 3u);
  EXPECT_EQ(*(*g)->GetString("general.architecture"), "llama");
  EXPECT_EQ(*(*g)->GetUint("llama.context_length"), 2048u);
  auto tokens = (*g)->GetArray("tokenizer.ggml.tokens");
  ASSERT_TRUE(tokens.ok());
  EXPECT_EQ((*tokens)->count, 512u);
  EXPECT_EQ((*tokens)->strings.size(), 512u);
  const GgufTensorInfo* t = (*g)->FindTensor("token_embd.weight");
  ASSERT_NE(t, nullptr);
  TensorView v = t->View();
  EXPECT_EQ(v.ndim, 2);
  EXPECT_EQ(v.shape[0], 512);  // vocab rows
  EXPECT_EQ(v.shape[1], 64);   // hidden
  EXPECT_EQ((*g)->tensors().size(), 48u);
  EXPECT_THAT((*g)->GetUint("general.architecture").status().message(),
              HasSubstr("expected an integer, got string"));
  EXPECT_THAT((*g)->GetString("no.such.key").status().message(),
              HasSubstr("missing metadata key 'no.such.key'"));
}

TEST(Gguf, RejectsWrongMagicAndVersion) {
  std::vector<uint8_t> b = {'G', 'G', 'U', 'X', 3, 0, 0, 0};
  EXPECT_THAT(ParseBytes(b).message(), HasSubstr("not a GGUF file: expected magic 'GGUF'"));
  GgufBuilder gb;
  EXPECT_THAT(ParseBytes(gb.Build(1)).message(), HasSubstr("GGUF version 1 is not supported"));
  EXPECT_THAT(ParseBytes(gb.Build(7)).message(), HasSubstr("GGUF version 7 is not supported"));
  EXPECT_TRUE(ParseBytes(gb.Build(2)).ok());
}

TEST(Gguf, EveryTruncationOfARealHeaderIsAnError) {
  auto g = MappedFile::Open(KINFER_FIXTURES_DIR "/models/llama/llama.q4_0.gguf");
  ASSERT_TRUE(g.ok());
  std::vector<uint8_t> all((*g)->data(), (*g)->data() + (*g)->size());
  for (size_t cut = 0; cut < all.size(); cut += (cut < 4096 ? 1 : 997)) {
    std::vector<uint8_t> part(all.begin(), all.begin() + static_cast<long>(cut));
    Status s = ParseBytes(part);
    ASSERT_FALSE(s.ok()) << "cut at " << cut;
    ASSERT_THAT(s.message(), HasSubstr("bad.gguf")) << cut;
  }
  EXPECT_TRUE(ParseBytes(all).ok());
}

TEST(Gguf, NamesTheTensorForBadTypeBoundsAndBlocks) {
  {
    GgufBuilder gb;
    gb.Tensor("w", 42, {32, 2}, 64);
    EXPECT_THAT(ParseBytes(gb.Build()).message(), HasSubstr("tensor 'w': unknown tensor type 42"));
  }
  {
    GgufBuilder gb;
    gb.Tensor("w", 8 /*Q8_0*/, {33, 2}, 100);
    EXPECT_THAT(ParseBytes(gb.Build()).message(),
                HasSubstr("tensor 'w': row length 33 is not a multiple of the Q8_0 block size 32"));
  }
  {
    GgufBuilder gb;
    gb.Tensor("w", 0, {4, 4}, 64);
    gb.OverrideOffset(0, 1 << 20);
    EXPECT_THAT(ParseBytes(gb.Build()).message(), HasSubstr("tensor 'w': data ["));
    EXPECT_THAT(ParseBytes(gb.Build()).message(), HasSubstr("lies outside the file"));
  }
  {
    GgufBuilder gb;
    gb.Tensor("w", 0, {4, -4}, 64);
    EXPECT_THAT(ParseBytes(gb.Build()).message(), HasSubstr("dimension 1 is -4"));
  }
  {
    GgufBuilder gb;
    gb.Tensor("w", 0, {4}, 16);
    gb.Tensor("w", 0, {4}, 16);
    EXPECT_THAT(ParseBytes(gb.Build()).message(), HasSubstr("duplicate tensor name 'w'"));
  }
}

TEST(Gguf, HugeCountsAreRejectedBeforeAllocating) {
  std::vector<uint8_t> b = {'G', 'G', 'U', 'F', 3, 0, 0, 0};
  uint64_t nt = 1ull << 60, nkv = 0;
  b.insert(b.end(), reinterpret_cast<uint8_t*>(&nt), reinterpret_cast<uint8_t*>(&nt) + 8);
  b.insert(b.end(), reinterpret_cast<uint8_t*>(&nkv), reinterpret_cast<uint8_t*>(&nkv) + 8);
  EXPECT_THAT(ParseBytes(b).message(), HasSubstr("tensor count"));
  GgufBuilder gb;
  gb.KvStringArray("a", {"x"});
  std::vector<uint8_t> bytes = gb.Build();
  // Patch the array count (after magic, version, counts, key, type, elem type) to 2^40.
  size_t pos = 4 + 4 + 8 + 8 + 8 + 1 + 4 + 4;
  uint64_t huge = 1ull << 40;
  std::memcpy(&bytes[pos], &huge, 8);
  EXPECT_THAT(ParseBytes(bytes).message(), HasSubstr("key 'a': array of 1099511627776 strings"));
}

TEST(Gguf, AbsurdLayerCountIsRefusedBeforeLayerTablesAreSized) {
  // Found by gguf_fuzz: a Gemma header claiming 2^32 - 1 layers spent half a minute filling
  // its sliding-layer table before the config was validated.
  GgufBuilder gb;
  gb.KvString("general.architecture", "gemma3");
  gb.KvU32("gemma3.embedding_length", 64);
  gb.KvU32("gemma3.feed_forward_length", 128);
  gb.KvU32("gemma3.block_count", 0xFFFFFFFFu);
  gb.KvU32("gemma3.attention.head_count", 4);
  const std::vector<uint8_t> bytes = gb.Build();  // the parsed file points into it
  auto g = GgufFile::Parse(bytes, "big.gguf");
  ASSERT_TRUE(g.ok()) << g.status().ToString();
  EXPECT_THAT(ConfigFromGguf(**g).status().message(),
              HasSubstr("big.gguf: key 'gemma3.block_count' says 4294967295 layers; a model has "
                        "1 to 4096"));
}

// A llama GGUF with tiny shapes that the loader can be pointed at, missing or misshaping one
// tensor at a time.
std::vector<uint8_t> TinyLlama(const std::string& skip, const std::string& misshape) {
  GgufBuilder gb;
  gb.KvString("general.architecture", "llama");
  gb.KvU32("llama.embedding_length", 32);
  gb.KvU32("llama.feed_forward_length", 64);
  gb.KvU32("llama.block_count", 1);
  gb.KvU32("llama.attention.head_count", 4);
  gb.KvU32("llama.attention.head_count_kv", 2);
  gb.KvU32("llama.vocab_size", 16);
  auto add = [&](const std::string& name, std::vector<int64_t> ne) {
    if (name == skip) return;
    if (name == misshape) ne[0] *= 2;
    int64_t n = 1;
    for (int64_t d : ne) n *= d;
    gb.Tensor(name, 0, ne, static_cast<size_t>(n) * 4);
  };
  add("token_embd.weight", {32, 16});
  add("output_norm.weight", {32});
  add("blk.0.attn_norm.weight", {32});
  add("blk.0.attn_q.weight", {32, 32});
  add("blk.0.attn_k.weight", {32, 16});
  add("blk.0.attn_v.weight", {32, 16});
  add("blk.0.attn_output.weight", {32, 32});
  add("blk.0.ffn_norm.weight", {32});
  add("blk.0.ffn_gate.weight", {32, 64});
  add("blk.0.ffn_up.weight", {32, 64});
  add("blk.0.ffn_down.weight", {64, 32});
  return gb.Build();
}

TEST(Gguf, LoaderNamesMissingAndMisshapenTensors) {
  std::string path = ::testing::TempDir() + "/tiny.gguf";
  GgufBuilder::Write(path, TinyLlama("", ""));
  auto ok = LoadModel(path);
  ASSERT_TRUE(ok.ok()) << ok.status().ToString();
  EXPECT_TRUE((*ok)->config().tie_word_embeddings);

  GgufBuilder::Write(path, TinyLlama("blk.0.ffn_up.weight", ""));
  auto missing = LoadModel(path);
  EXPECT_THAT(missing.status().message(), HasSubstr("missing tensor 'blk.0.ffn_up.weight'"));
  EXPECT_THAT(missing.status().message(), HasSubstr("tiny.gguf"));

  GgufBuilder::Write(path, TinyLlama("", "blk.0.attn_k.weight"));
  auto bad = LoadModel(path);
  EXPECT_THAT(
      bad.status().message(),
      HasSubstr(
          "tensor 'blk.0.attn_k.weight': expected shape [16, 32] from the config, got [16, 64]"));
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace kinfer::model
