// Load progress: repacking and reading report bytes that only grow and end at the total of the
// weights the model holds (tests/fixtures/models, Q8_0 is repacked on CPUs that pack it).
#include "model/load_progress.h"

#include <gtest/gtest.h>

#include <map>
#include <string>

#include "model/model.h"

namespace kinfer::model {
namespace {

TEST(LoadProgress, ReportsGrowingBytesEndingAtTheTotal) {
  for (const char* file : {"llama/llama.q8_0.gguf", "llama/llama.f16.gguf", "qwen3/hf"}) {
    std::map<std::string, std::vector<LoadProgress>> seen;
    LoadOptions o;
    o.progress = [&](const LoadProgress& p) { seen[std::string(p.stage)].push_back(p); };
    auto m = LoadModel(std::string(KINFER_FIXTURES_DIR "/models/") + file, o);
    ASSERT_TRUE(m.ok()) << m.status().ToString();
    ReadWeights(**m, o.progress);
    ASSERT_TRUE(seen.count("reading weights")) << file;
    for (const auto& [stage, events] : seen) {
      ASSERT_FALSE(events.empty());
      EXPECT_EQ(events.front().done, 0) << file << " " << stage;
      for (size_t i = 1; i < events.size(); ++i) {
        EXPECT_GE(events[i].done, events[i - 1].done) << file << " " << stage;
        EXPECT_EQ(events[i].total, events[0].total);
      }
      EXPECT_EQ(events.back().done, events.back().total) << file << " " << stage;
    }
    // Reading covers every 2-D weight the model holds (norms and biases are copied at load).
    const ModelWeights& w = (*m)->weights();
    int64_t matrices = static_cast<int64_t>(w.token_embedding.nbytes);
    if (w.lm_head.data != w.token_embedding.data) matrices += w.lm_head.nbytes;
    for (const LayerWeights& l : w.layers) {
      matrices += l.wq.nbytes + l.wk.nbytes + l.wv.nbytes + l.wo.nbytes + l.w_gate.nbytes +
                  l.w_up.nbytes + l.w_down.nbytes;
    }
    EXPECT_EQ(seen["reading weights"].back().total, matrices) << file;
  }
}

}  // namespace
}  // namespace kinfer::model
