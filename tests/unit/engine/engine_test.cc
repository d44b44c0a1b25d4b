// The engine end to end on real models (the tiny llama fixture and stories260K): batch
// invariance of tokens and logits, seeded sampling, n > 1 sharing blocks, stop strings across
// token boundaries, aborts, and a long randomized run that must leave every block free.
#include "engine/engine.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <numeric>
#include <random>
#include <thread>

#include "model/model.h"

namespace kinfer::engine {
namespace {

const std::string kTinyLlama = KINFER_FIXTURES_DIR "/models/llama/llama.f32.gguf";
const std::string kStories = KINFER_SHARED_DIR "/models/stories260K/stories260K.gguf";

// A stand-in text decoder: token t becomes the two characters of "t%100" in base 10 with a
// letter prefix, so stop strings can straddle token boundaries.
class FakeText : public TextDecoder {
 public:
  std::string Push(int32_t t) override {
    return std::string(1, static_cast<char>('a' + t % 26)) + static_cast<char>('0' + t % 10);
  }
  std::string Flush() override { return ""; }
};

struct Collected {
  std::map<int32_t, std::vector<int32_t>> tokens;
  std::map<int32_t, std::string> text;
  std::map<int32_t, std::vector<std::vector<float>>> logits;
  std::map<int32_t, FinishReason> finish;
  int finals = 0;
  Usage usage;
};

// KINFER_TEST_DEVICE=cuda runs every engine test on the GPU (a build with the CUDA backend).
Device TestDevice() {
  const char* d = std::getenv("KINFER_TEST_DEVICE");
  auto parsed = ParseDevice(d ? d : "cpu");
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
  return parsed.ok() ? *parsed : Device::kCpu;
}

class Runner {
 public:
  Runner(const std::string& path, EngineOptions opts) {
    opts.device = TestDevice();
    auto m = model::LoadModel(path);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    model_ = std::move(*m);
    opts.start_thread = false;
    opts.text_decoder = [](bool, std::span<const int32_t>) { return std::make_unique<FakeText>(); };
    opts.logits_observer = [this](const std::string& id, int32_t index, std::span<const float> l) {
      out_[id].logits[index].emplace_back(l.begin(), l.end());
    };
    auto e = Engine::Create(*model_, opts);
    EXPECT_TRUE(e.ok()) << e.status().ToString();
    engine_ = std::move(*e);
  }
  Status Submit(Request r) {
    std::string id = r.id;
    return engine_->Submit(std::move(r), [this, id](RequestOutput o) {
      Collected& c = out_[id];
      for (auto& s : o.seqs) {
        auto& t = c.tokens[s.index];
        t.insert(t.end(), s.token_ids.begin(), s.token_ids.end());
        c.text[s.index] += s.text;
        if (s.finish_reason) c.finish[s.index] = *s.finish_reason;
      }
      if (o.finished) {
        c.finals++;
        c.usage = o.usage;
      }
    });
  }
  Engine& engine() { return *engine_; }
  Collected& out(const std::string& id) { return out_[id]; }
  int32_t peak_used = 0, peak_sliding_used = 0;
  void Run() {
    while (engine_->Step()) {
      EngineStats s = engine_->Stats();
      peak_used = std::max(peak_used, s.num_blocks - s.num_free_blocks);
      peak_sliding_used =
          std::max(peak_sliding_used, s.num_sliding_blocks - s.num_free_sliding_blocks);
    }
  }

 private:
  std::unique_ptr<model::Model> model_;
  std::unique_ptr<Engine> engine_;
  std::map<std::string, Collected> out_;
};

Request Greedy(const std::string& id, std::vector<int32_t> prompt, int32_t max_tokens) {
  Request r;
  r.id = id;
  r.prompt_tokens = std::move(prompt);
  r.params.temperature = 0;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  return r;
}

std::vector<int32_t> Prompt(int32_t len, int32_t seed, int32_t vocab) {
  std::mt19937 rng(static_cast<uint32_t>(seed));
  std::vector<int32_t> p(static_cast<size_t>(len));
  for (auto& t : p) t = static_cast<int32_t>(rng() % static_cast<uint32_t>(vocab));
  return p;
}

// Greedy tokens and every logits row of each request, bit for bit, whether it runs alone, in a
// batch of 16 mixed prefills and decodes, with prefix-cache hits, or after preemption under a
// tiny KV budget.
TEST(Engine, BatchInvariantTokensAndLogits) {
  const int kRequests = 16;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < kRequests; ++i) prompts.push_back(Prompt(1 + 7 * i % 61, i, 512));
  // Half of them share a 40-token system prefix, for prefix-cache hits.
  for (int i = 0; i < kRequests; i += 2) {
    std::vector<int32_t> p = Prompt(40, 1000, 512);
    p.insert(p.end(), prompts[static_cast<size_t>(i)].begin(),
             prompts[static_cast<size_t>(i)].end());
    prompts[static_cast<size_t>(i)] = p;
  }
  auto id = [](int i) { return "r" + std::to_string(i); };

  std::vector<Collected> alone;
  for (int i = 0; i < kRequests; ++i) {
    EngineOptions o;
    o.enable_prefix_caching = false;
    o.kv_cache_bytes = 64 << 20;
    o.num_threads = 2;
    Runner r(kStories, o);
    ASSERT_TRUE(r.Submit(Greedy(id(i), prompts[static_cast<size_t>(i)], 24)).ok());
    r.Run();
    alone.push_back(r.out(id(i)));
    ASSERT_EQ(alone.back().tokens[0].size(), 24u);
  }

  struct Variant {
    std::string name;
    int64_t kv_bytes;
    int32_t budget;
    bool prefix;
  };
  // stories260K: one 16-token block is 5 layers x 2 x 4 heads x 16 x 8 x 2 bytes = 10 KiB.
  for (const Variant& v :
       {Variant{"batched", 64 << 20, 2048, false}, Variant{"prefix-cached", 64 << 20, 2048, true},
        Variant{"chunked+preempted", 40 * 10240, 32, true}}) {
    EngineOptions o;
    o.enable_prefix_caching = v.prefix;
    o.kv_cache_bytes = v.kv_bytes;
    o.scheduler.max_num_batched_tokens = v.budget;
    o.num_threads = 2;
    Runner r(kStories, o);
    // Staggered arrivals so prefills and decodes mix within steps.
    for (int i = 0; i < kRequests; ++i) {
      ASSERT_TRUE(r.Submit(Greedy(id(i), prompts[static_cast<size_t>(i)], 24)).ok());
      if (i % 3 == 0) r.engine().Step();
    }
    r.Run();
    EngineStats st = r.engine().Stats();
    if (v.name == "prefix-cached") {
      EXPECT_GT(st.prefix_cache_hits, 0) << v.name;
    }
    if (v.name == "chunked+preempted") {
      EXPECT_GT(st.num_preemptions, 0) << v.name;
    }
    EXPECT_EQ(st.num_free_blocks, st.num_blocks) << v.name;
    for (int i = 0; i < kRequests; ++i) {
      const Collected& got = r.out(id(i));
      ASSERT_EQ(got.tokens.at(0), alone[static_cast<size_t>(i)].tokens.at(0)) << v.name << " " << i;
      ASSERT_EQ(got.logits.at(0).size(), alone[static_cast<size_t>(i)].logits.at(0).size());
      for (size_t k = 0; k < got.logits.at(0).size(); ++k) {
        ASSERT_EQ(got.logits.at(0)[k], alone[static_cast<size_t>(i)].logits.at(0)[k])
            << v.name << " request " << i << " token " << k;
      }
    }
  }
}

// Gemma 3 (tests/fixtures/models/gemma3: two sliding layers with a 4-token window, one global
// layer): the sliding layers' blocks live in their own pool and go back to it as they leave the
// window. Tokens and logits stay bit-identical to an engine that keeps every position in every
// layer, alone or batched, with prefix-cache hits and under preemption; the sliding pool holds
// at most the windows; everything is free at the end.
TEST(Engine, SlidingWindowLayersHoldOnlyTheirWindow) {
  const std::string gemma = KINFER_FIXTURES_DIR "/models/gemma3/gemma3.f16.gguf";
  const int kRequests = 8;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < kRequests; ++i) {
    std::vector<int32_t> p = Prompt(i % 2 ? 3 + i : 9, i, 96);
    if (i % 2 == 0) {  // a shared 13-token prefix
      std::vector<int32_t> shared = Prompt(13, 77, 96);
      p.insert(p.begin(), shared.begin(), shared.end());
    }
    prompts.push_back(p);
  }
  auto id = [](int i) { return "g" + std::to_string(i); };
  std::vector<Collected> alone;
  for (int i = 0; i < kRequests; ++i) {
    EngineOptions o;
    o.sliding_window_group = false;
    o.enable_prefix_caching = false;
    o.block_size = 2;
    o.kv_cache_bytes = 1 << 20;
    o.num_threads = 2;
    Runner r(gemma, o);
    EXPECT_EQ(r.engine().Stats().num_sliding_blocks, 0);
    ASSERT_TRUE(r.Submit(Greedy(id(i), prompts[static_cast<size_t>(i)], 20)).ok());
    r.Run();
    alone.push_back(r.out(id(i)));
  }
  struct Variant {
    std::string name;
    int64_t kv_bytes;
    int32_t budget;
  };
  // A block of 2 tokens: 2 x 2 kv heads x 2 x 16 dims x 2 bytes = 256 bytes a layer.
  for (const Variant& v :
       {Variant{"batched+prefix", 1 << 20, 64}, Variant{"preempted", 80 * 256, 8}}) {
    EngineOptions o;
    o.block_size = 2;
    o.kv_cache_bytes = v.kv_bytes;
    o.scheduler.max_num_batched_tokens = v.budget;
    o.scheduler.max_num_seqs = kRequests;
    o.num_threads = 2;
    Runner r(gemma, o);
    const EngineStats before = r.engine().Stats();
    ASSERT_GT(before.num_sliding_blocks, 0) << v.name;
    for (int i = 0; i < kRequests; ++i) {
      ASSERT_TRUE(r.Submit(Greedy(id(i), prompts[static_cast<size_t>(i)], 20)).ok());
      if (i % 3 == 0) r.engine().Step();
    }
    r.Run();
    const EngineStats st = r.engine().Stats();
    if (v.name == "batched+prefix") {
      EXPECT_GT(st.prefix_cache_hits, 0);
      // Each sequence holds at most the blocks its 4-token window reaches plus the new ones:
      // (window - 1) / 2 rounded up + 2 = 4 blocks, against up to 21 a sequence without the
      // group.
      EXPECT_LE(r.peak_sliding_used, kRequests * 4 + v.budget / 2) << v.name;
      EXPECT_GT(r.peak_used, r.peak_sliding_used) << v.name;
    } else {
      EXPECT_GT(st.num_preemptions, 0) << v.name;
    }
    EXPECT_EQ(st.num_free_blocks, st.num_blocks) << v.name;
    EXPECT_EQ(st.num_free_sliding_blocks, st.num_sliding_blocks) << v.name;
    for (int i = 0; i < kRequests; ++i) {
      const Collected& got = r.out(id(i));
      const Collected& want = alone[static_cast<size_t>(i)];
      ASSERT_EQ(got.tokens.at(0), want.tokens.at(0)) << v.name << " " << i;
      ASSERT_EQ(got.logits.at(0), want.logits.at(0)) << v.name << " " << i;
    }
  }
}

TEST(Engine, SeededSamplingIsReproducibleAcrossBatchCompositions) {
  auto sampled = [](const std::string& id) {
    Request r;
    r.id = id;
    r.prompt_tokens = Prompt(9, 5, 512);
    r.params.temperature = 0.9f;
    r.params.top_p = 0.95f;
    r.params.top_k = 40;
    r.params.seed = 1234;
    r.params.max_tokens = 40;
    r.params.ignore_eos = true;
    return r;
  };
  EngineOptions o;
  o.kv_cache_bytes = 16 << 20;
  Runner alone(kStories, o);
  ASSERT_TRUE(alone.Submit(sampled("x")).ok());
  alone.Run();
  Runner batch(kStories, o);
  for (int i = 0; i < 10; ++i) {
    Request other = Greedy("o" + std::to_string(i), Prompt(3 + i, 50 + i, 512), 10 + i);
    other.params.temperature = 1.0f;  // unseeded noise around it
    ASSERT_TRUE(batch.Submit(other).ok());
    if (i == 5) {
      ASSERT_TRUE(batch.Submit(sampled("x")).ok());
    }
  }
  batch.Run();
  EXPECT_EQ(batch.out("x").tokens[0], alone.out("x").tokens[0]);
  // A different seed gives a different continuation (40 tokens at temperature 0.9).
  Runner other(kStories, o);
  Request r = sampled("y");
  r.params.seed = 99;
  ASSERT_TRUE(other.Submit(r).ok());
  other.Run();
  EXPECT_NE(other.out("y").tokens[0], alone.out("x").tokens[0]);
}

TEST(Engine, ParallelSamplingSharesPromptBlocks) {
  EngineOptions o;
  o.kv_cache_bytes = 16 << 20;
  o.enable_prefix_caching = false;
  std::vector<int32_t> prompt = Prompt(100, 3, 512);
  Runner two_requests(kStories, o);
  Request a = Greedy("a", prompt, 8), b = Greedy("b", prompt, 8);
  ASSERT_TRUE(two_requests.Submit(a).ok());
  ASSERT_TRUE(two_requests.Submit(b).ok());
  two_requests.Run();
  Runner n2(kStories, o);
  Request r = Greedy("n", prompt, 8);
  r.params.n = 2;
  r.params.temperature = 1.0f;
  r.params.seed = 7;
  ASSERT_TRUE(n2.Submit(r).ok());
  n2.Run();
  const Collected& c = n2.out("n");
  EXPECT_EQ(c.tokens.size(), 2u);
  EXPECT_EQ(c.tokens.at(0).size(), 8u);
  EXPECT_EQ(c.tokens.at(1).size(), 8u);
  EXPECT_EQ(c.finals, 1);
  EXPECT_EQ(c.usage.completion_tokens, 16);
  EXPECT_LT(n2.peak_used, two_requests.peak_used);
  EngineStats st = n2.engine().Stats();
  EXPECT_EQ(st.num_free_blocks, st.num_blocks);
}

TEST(Engine, StopStringsAcrossTokenBoundaries) {
  EngineOptions o;
  o.kv_cache_bytes = 16 << 20;
  std::vector<int32_t> prompt = {1, 403, 407, 261, 378};  // "Once upon a time"
  Runner free_run(kStories, o);
  ASSERT_TRUE(free_run.Submit(Greedy("f", prompt, 30)).ok());
  free_run.Run();
  const std::string full = free_run.out("f").text[0];
  ASSERT_EQ(full.size(), 60u);  // two characters per token
  // A stop string made of the last character of token 10 and the first of token 11.
  const std::string stop = full.substr(21, 2);
  const size_t first = full.find(stop);
  for (bool include : {false, true}) {
    Runner r(kStories, o);
    Request req = Greedy("s", prompt, 30);
    req.params.stop = {"zz-never", stop};
    req.params.include_stop_str_in_output = include;
    ASSERT_TRUE(r.Submit(req).ok());
    r.Run();
    EXPECT_EQ(r.out("s").text[0], full.substr(0, first + (include ? stop.size() : 0)));
    EXPECT_EQ(r.out("s").finish.at(0), FinishReason::kStop);
  }
}

TEST(Engine, RejectsBadRequestsAtSubmission) {
  EngineOptions o;
  o.kv_cache_bytes = 16 << 20;
  o.max_model_len = 64;
  Runner r(kStories, o);
  EXPECT_EQ(r.Submit(Greedy("long", Prompt(64, 1, 512), 4)).code(), StatusCode::kInvalidArgument);
  EXPECT_NE(r.Submit(Greedy("long", Prompt(64, 1, 512), 4))
                .message()
                .find("maximum context length is 64"),
            std::string::npos);
  EXPECT_EQ(r.Submit(Greedy("oov", {1, 9999}, 4)).code(), StatusCode::kInvalidArgument);
  Request bad = Greedy("t", {1}, 4);
  bad.params.top_p = 0;
  EXPECT_NE(r.Submit(bad).message().find("'top_p'"), std::string::npos);
  ASSERT_TRUE(r.Submit(Greedy("dup", {1}, 4)).ok());
  EXPECT_NE(r.Submit(Greedy("dup", {1}, 4)).message().find("already in use"), std::string::npos);
  // max_tokens is capped so prompt + output fit the model length.
  ASSERT_TRUE(r.Submit(Greedy("cap", Prompt(60, 2, 512), 100)).ok());
  r.Run();
  EXPECT_EQ(r.out("cap").tokens[0].size(), 4u);
  EXPECT_EQ(r.out("cap").finish.at(0), FinishReason::kLength);
}

// Thousands of random requests with random arrivals, lengths and aborts against a small KV
// budget on the threaded engine: each gets exactly one final output, none starves, and every
// block is free at the end.
TEST(Engine, LongRandomRunFinishesEverythingAndFreesAllBlocks) {
  auto m = model::LoadModel(kTinyLlama);
  ASSERT_TRUE(m.ok());
  EngineOptions o;
  // The tiny llama: 2 layers x 2 (K, V) x 2 heads x 16 slots x 8 dims x 2 bytes = 2 KiB a block.
  o.kv_cache_bytes = 48 * 2048;
  o.max_model_len = 64;
  o.scheduler.max_num_batched_tokens = 96;
  o.scheduler.max_num_seqs = 32;
  o.device = TestDevice();
  // Declared before the engine, so its thread never calls back into them after they are gone
  // (an ASSERT below returns with the engine still running).
  std::mutex mu;
  std::map<std::string, int> finals;
  std::map<std::string, FinishReason> reasons;
  auto e = Engine::Create(**m, o);
  ASSERT_TRUE(e.ok()) << e.status().ToString();
  Engine& engine = **e;
  std::mt19937 rng(2024);
  const int kTotal = 3000;
  std::vector<std::string> ids;
  for (int i = 0; i < kTotal; ++i) {
    Request r;
    r.id = "q" + std::to_string(i);
    r.prompt_tokens = Prompt(1 + static_cast<int32_t>(rng() % 40), i, 96);
    r.params.max_tokens = 1 + static_cast<int32_t>(rng() % 24);
    r.params.temperature = (rng() % 2) ? 0.0f : 1.0f;
    r.params.n = (rng() % 10 == 0) ? 2 : 1;
    r.priority = static_cast<int32_t>(rng() % 3);
    ASSERT_TRUE(engine
                    .Submit(r,
                            [&, id = r.id](RequestOutput out) {
                              if (!out.finished) return;
                              std::lock_guard<std::mutex> lk(mu);
                              finals[id]++;
                              reasons[id] = out.seqs.empty() || !out.seqs[0].finish_reason
                                                ? FinishReason::kAbort
                                                : *out.seqs[0].finish_reason;
                            })
                    .ok());
    ids.push_back(r.id);
    if (rng() % 7 == 0) engine.Abort(ids[rng() % ids.size()]);
    if (rng() % 50 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  // Up to 5 minutes: under ASan on a loaded 2-core machine this run takes minutes (17 s in
  // release there), and a slow run is not a failure.
  for (int waited = 0; waited < 3000; ++waited) {
    {
      std::lock_guard<std::mutex> lk(mu);
      if (static_cast<int>(finals.size()) == kTotal) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  std::lock_guard<std::mutex> lk(mu);
  ASSERT_EQ(static_cast<int>(finals.size()), kTotal);
  int aborted = 0;
  for (const auto& [id, count] : finals) {
    ASSERT_EQ(count, 1) << id;
    aborted += reasons[id] == FinishReason::kAbort;
  }
  EXPECT_GT(aborted, 0);
  EXPECT_LT(aborted, kTotal);
  // Stats are published after each step; give the engine a moment to go idle.
  for (int i = 0; i < 50 && engine.Stats().num_running + engine.Stats().num_waiting > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EngineStats st = engine.Stats();
  EXPECT_EQ(st.num_free_blocks, st.num_blocks);
  EXPECT_EQ(st.num_running + st.num_waiting, 0);
  EXPECT_GT(st.num_preemptions, 0);
}

}  // namespace
}  // namespace kinfer::engine
