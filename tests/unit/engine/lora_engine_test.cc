// LoRA in the engine, on the tiny llama fixture and the PEFT adapters of tests/fixtures/lora:
// greedy tokens through the whole engine equal PEFT's whatever the mix of a step; the scheduler
// admits at most --max-loras distinct adapters and passes over (not splits) the rest; prefix
// caching never shares KV between adapters, nor with a changed adapter reloaded under the same
// name; and the registry's loading, replacing, eviction and errors.
#include <gtest/gtest.h>

#include <unistd.h>
#include <filesystem>
#include <fstream>
#include <map>

#include "core/json.h"
#include "core/mapped_file.h"
#include "engine/engine.h"
#include "engine/engine_internal.h"
#include "engine/lora_registry.h"
#include "engine/scheduler.h"
#include "model/lora_adapter.h"
#include "model/model.h"

namespace kinfer::engine {
namespace {

namespace fs = std::filesystem;
const std::string kLora = KINFER_FIXTURES_DIR "/lora";
const std::string kBase = KINFER_FIXTURES_DIR "/models/llama/hf";

Json Reference() {
  return *ParseJson(*ReadFileToString(kLora + "/reference.json"), "reference.json");
}

std::unique_ptr<model::Model> Base() {
  auto m = model::LoadModel(kBase);
  EXPECT_TRUE(m.ok()) << m.status().ToString();
  return std::move(*m);
}

std::shared_ptr<const model::LoraAdapter> Load(const std::string& path, const model::Model& m) {
  auto a = model::LoadLoraAdapter(path, m, {});
  EXPECT_TRUE(a.ok()) << a.status().ToString();
  return *a;
}

struct Outputs {
  std::map<std::string, std::vector<int32_t>> tokens;
  std::map<std::string, int32_t> cached;
};

Request Greedy(const std::string& id, std::vector<int32_t> prompt, int max_tokens,
               std::shared_ptr<const model::LoraAdapter> lora, const std::string& name) {
  Request r;
  r.id = id;
  r.prompt_tokens = std::move(prompt);
  r.params.temperature = 0;
  r.params.max_tokens = max_tokens;
  r.params.ignore_eos = true;
  r.lora = std::move(lora);
  r.lora_name = name;
  return r;
}

void Submit(Engine& e, Request r, Outputs& out) {
  const std::string id = r.id;
  ASSERT_TRUE(e.Submit(std::move(r), [&out, id](RequestOutput o) {
                 for (auto& s : o.seqs) {
                   out.tokens[id].insert(out.tokens[id].end(), s.token_ids.begin(),
                                         s.token_ids.end());
                 }
                 if (o.finished) out.cached[id] = o.usage.cached_tokens;
               }).ok());
}

std::unique_ptr<Engine> MakeEngine(const model::Model& m, int32_t max_loras) {
  EngineOptions o;
  o.start_thread = false;
  o.kv_cache_dtype = DType::kF32;
  o.kv_cache_bytes = 1 << 20;
  o.block_size = 4;
  o.num_threads = 2;
  o.scheduler.max_loras = max_loras;
  auto e = Engine::Create(m, o);
  EXPECT_TRUE(e.ok()) << e.status().ToString();
  return std::move(*e);
}

// Base, adapter_a, adapter_b and the GGUF twin of adapter_a, two requests each, all at once:
// every request's tokens are PEFT's greedy tokens for its adapter.
TEST(LoraEngine, GreedyTokensEqualPeftInOneMixedBatch) {
  auto m = Base();
  const Json ref = Reference();
  const auto prompt = ref["prompt"].get<std::vector<int32_t>>();
  const int steps = ref["greedy_steps"].get<int>();
  auto a = Load(kLora + "/adapter_a", *m), b = Load(kLora + "/adapter_b", *m);
  auto a_gguf = Load(kLora + "/adapter_a.f32.gguf", *m);
  auto engine = MakeEngine(*m, 4);
  Outputs out;
  for (int i = 0; i < 2; ++i) {
    const std::string n = std::to_string(i);
    Submit(*engine, Greedy("base" + n, prompt, steps, nullptr, ""), out);
    Submit(*engine, Greedy("a" + n, prompt, steps, a, "a"), out);
    Submit(*engine, Greedy("b" + n, prompt, steps, b, "b"), out);
    Submit(*engine, Greedy("ag" + n, prompt, steps, a_gguf, "ag"), out);
  }
  engine->RunUntilIdle();
  const auto want_a = ref["adapters"]["adapter_a"]["greedy"].get<std::vector<int32_t>>();
  for (const std::string n : {"0", "1"}) {
    EXPECT_EQ(out.tokens["base" + n], ref["greedy"]["base"].get<std::vector<int32_t>>());
    EXPECT_EQ(out.tokens["a" + n], want_a);
    EXPECT_EQ(out.tokens["ag" + n], want_a);
    EXPECT_EQ(out.tokens["b" + n],
              ref["adapters"]["adapter_b"]["greedy"].get<std::vector<int32_t>>());
  }
  EXPECT_EQ(engine->Stats().num_free_blocks, engine->Stats().num_blocks);
}

// A prompt of 3 full blocks cached under adapter_a is reused by adapter_a only: not by the base,
// not by adapter_b, and not by an adapter with other weights loaded under the same name.
TEST(LoraEngine, PrefixCacheIsKeyedByAdapterContent) {
  auto m = Base();
  auto a = Load(kLora + "/adapter_a", *m), b = Load(kLora + "/adapter_b", *m);
  auto engine = MakeEngine(*m, 4);
  const std::vector<int32_t> prompt = {3, 9, 27, 81, 5, 15, 45, 39, 21, 63, 93, 11, 33};
  Outputs out;
  Submit(*engine, Greedy("first", prompt, 2, a, "x"), out);
  engine->RunUntilIdle();
  Submit(*engine, Greedy("same", prompt, 2, a, "x"), out);
  engine->RunUntilIdle();
  Submit(*engine, Greedy("base", prompt, 2, nullptr, ""), out);
  engine->RunUntilIdle();
  Submit(*engine, Greedy("other", prompt, 2, b, "x"), out);  // same name, other weights
  engine->RunUntilIdle();
  EXPECT_EQ(out.cached["first"], 0);
  EXPECT_EQ(out.cached["same"], 12);
  EXPECT_EQ(out.cached["base"], 0);
  EXPECT_EQ(out.cached["other"], 0);
  EXPECT_EQ(out.tokens["same"], out.tokens["first"]);
}

// --max-loras 2 with adapters a, b and c waiting: c waits while a and b run, the base and a
// second request of a are admitted behind it in the same step, and c runs once a slot frees.
TEST(LoraScheduler, CapsDistinctAdaptersAndPassesOverTheRest) {
  auto m = Base();
  auto a = Load(kLora + "/adapter_a", *m), b = Load(kLora + "/adapter_b", *m);
  auto c = Load(kLora + "/adapter_a.f32.gguf", *m);
  KvCacheManager kv(64, 4, true, nullptr);
  Scheduler sched({.max_num_batched_tokens = 100, .max_num_seqs = 8, .max_loras = 2}, kv);
  std::vector<std::unique_ptr<RequestState>> requests;
  auto add = [&](std::shared_ptr<const model::LoraAdapter> lora) {
    auto rs = std::make_unique<RequestState>();
    rs->request.prompt_tokens.assign(5, 7);
    rs->request.lora = std::move(lora);
    auto seq = std::make_unique<Sequence>();
    seq->id = requests.size() + 1;
    seq->request = rs.get();
    seq->tokens = rs->request.prompt_tokens;
    seq->prompt_len = 5;
    seq->arrival_order = requests.size();
    Sequence* raw = seq.get();
    rs->seqs.push_back(std::move(seq));
    requests.push_back(std::move(rs));
    sched.AddWaiting(raw);
    return raw;
  };
  Sequence* sa = add(a);
  Sequence* sb = add(b);
  Sequence* sc = add(c);
  Sequence* sbase = add(nullptr);
  Sequence* sa2 = add(a);
  SchedulerOutput out = sched.Schedule();
  std::vector<Sequence*> got;
  for (const auto& s : out.scheduled) got.push_back(s.seq);
  EXPECT_EQ(got, (std::vector<Sequence*>{sa, sb, sbase, sa2}));
  ASSERT_EQ(sched.num_waiting(), 1u);
  EXPECT_EQ(sched.waiting().front(), sc);
  for (const auto& s : out.scheduled) s.seq->num_computed += s.num_tokens;

  // a's two requests finish: c gets the free slot.
  for (Sequence* s : {sa, sa2}) {
    sched.Remove(s);
    kv.Free(s->id);
  }
  for (Sequence* s : {sb, sbase}) s->tokens.push_back(1);
  out = sched.Schedule();
  got.clear();
  for (const auto& s : out.scheduled) got.push_back(s.seq);
  EXPECT_EQ(got, (std::vector<Sequence*>{sb, sbase, sc}));
  EXPECT_EQ(sched.num_waiting(), 0u);
}

TEST(LoraEngine, StatsNameRunningAndWaitingAdapters) {
  auto m = Base();
  auto a = Load(kLora + "/adapter_a", *m), b = Load(kLora + "/adapter_b", *m);
  auto engine = MakeEngine(*m, 1);
  Outputs out;
  Submit(*engine, Greedy("a", {1, 2, 3}, 4, a, "sql"), out);
  Submit(*engine, Greedy("b", {1, 2, 3}, 4, b, "chat"), out);
  engine->Step();
  EngineStats st = engine->Stats();
  EXPECT_EQ(st.max_loras, 1);
  EXPECT_EQ(st.running_lora_adapters, std::vector<std::string>{"sql"});
  EXPECT_EQ(st.waiting_lora_adapters, std::vector<std::string>{"chat"});
  engine->RunUntilIdle();
  EXPECT_EQ(out.tokens["a"].size(), 4u);
  EXPECT_EQ(out.tokens["b"].size(), 4u);
  EXPECT_TRUE(engine->Stats().running_lora_adapters.empty());
}

TEST(LoraRegistry, LoadsReplacesEvictsAndRereads) {
  auto m = Base();
  LoraRegistry reg(*m, {.max_rank = 16, .max_cpu_loras = 1});
  ASSERT_TRUE(reg.Add("a", kLora + "/adapter_a").ok());
  EXPECT_EQ(reg.Add("a", kLora + "/adapter_b").code(), StatusCode::kAlreadyExists);
  ASSERT_TRUE(reg.Add("b", kLora + "/adapter_b").ok());
  // Only one stays in memory: a was evicted when b came, and is read again on demand.
  auto list = reg.List();
  ASSERT_EQ(list.size(), 2u);
  EXPECT_FALSE(list[0].loaded);
  EXPECT_TRUE(list[1].loaded);
  auto a = reg.Get("a");
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ((*a)->rank(), 4);
  EXPECT_TRUE(reg.List()[0].loaded);
  EXPECT_FALSE(reg.List()[1].loaded);
  // Replacing serves the new weights; a request holding the old keeps them.
  const std::string old_hash = (*a)->content_hash();
  ASSERT_TRUE(reg.Add("a", kLora + "/adapter_b", /*replace=*/true).ok());
  EXPECT_NE((*reg.Get("a"))->content_hash(), old_hash);
  EXPECT_EQ((*a)->content_hash(), old_hash);
  EXPECT_EQ(reg.Get("nope").status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(reg.Remove("a").ok());
  EXPECT_EQ(reg.Remove("a").code(), StatusCode::kNotFound);
  EXPECT_FALSE(reg.Has("a"));
  // A bad adapter is refused at registration.
  Status bad = reg.Add("c", kLora + "/missing");
  EXPECT_EQ(bad.code(), StatusCode::kNotFound) << bad.ToString();
  EXPECT_FALSE(reg.Has("c"));
}

}  // namespace
}  // namespace kinfer::engine
