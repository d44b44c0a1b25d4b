// The engine: owns the model's KV cache, the scheduler and the sampler, and runs steps on its
// own thread. Any thread may submit or abort requests; outputs come back through each
// request's callback, called on the engine thread (keep it short: hand the output over).
//
//   auto engine = Engine::Create(*model, options);
//   (*engine)->Submit(request, [](RequestOutput out) { ... });
//   (*engine)->Abort("req-1");
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"
#include "engine/device.h"
#include "engine/engine_internal.h"
#include "engine/kv_cache_manager.h"
#include "engine/request.h"
#include "engine/sampler.h"
#include "engine/scheduler.h"
#include "model/backend.h"
#include "model/decoder.h"
#include "model/model.h"

namespace kinfer::engine {

struct EngineOptions {
  int32_t block_size = 16;
  // Bytes for the KV cache; 0 picks a quarter of available memory, at most 4 GiB.
  int64_t kv_cache_bytes = 0;
  DType kv_cache_dtype = DType::kF16;
  // Longest prompt + output; 0 means the model's maximum (reduced to what the cache holds).
  int32_t max_model_len = 0;
  SchedulerConfig scheduler;
  bool enable_prefix_caching = true;
  // Keep sliding-window layers (Gemma) in their own blocks, released as they leave the window.
  // Off: every layer keeps every position (for comparisons).
  bool sliding_window_group = true;
  int32_t num_threads = 0;  // compute threads including the engine's own; 0: all cores
  // Where the model runs (device.h). On a GPU the KV cache lives in device memory; without
  // kv_cache_bytes it takes what gpu_memory_utilization leaves after weights and activations.
  Device device = Device::kCpu;
  double gpu_memory_utilization = 0.9;
  // Makes a text decoder per sequence; without one, outputs carry ids only. It gets the prompt
  // so that the output continues the prompt's text (a SentencePiece leading space is kept after
  // a prompt and dropped at the very start, as a full decode would).
  std::function<std::unique_ptr<TextDecoder>(bool skip_special_tokens,
                                             std::span<const int32_t> prompt)>
      text_decoder;
  // Tokens that end a sequence unless ignore_eos; empty: the model config's eos ids.
  std::vector<int32_t> eos_token_ids;
  // Run steps on an internal thread. Tests turn it off and call Step() themselves.
  bool start_thread = true;
  // Sees each sequence's raw logits row before a token is sampled from it (tests, debugging).
  std::function<void(const std::string& request_id, int32_t index, std::span<const float> logits)>
      logits_observer;
};

struct EngineStats {
  int32_t num_running = 0;
  int32_t num_waiting = 0;
  int32_t num_blocks = 0;
  int32_t num_free_blocks = 0;
  // The sliding-window layers' own blocks (Gemma); 0 when every layer keeps every position.
  int32_t num_sliding_blocks = 0;
  int32_t num_free_sliding_blocks = 0;
  double kv_cache_usage = 0;         // fraction of blocks in use (of the fuller pool)
  int64_t prefix_cache_queries = 0;  // prompt tokens looked up
  int64_t prefix_cache_hits = 0;     // of those, found in the cache
  int64_t num_preemptions = 0;
  int64_t prompt_tokens = 0;      // prompt tokens computed (prefill), cache hits excluded
  int64_t generation_tokens = 0;  // tokens sampled
  int64_t steps = 0;
  int64_t kv_tokens_running = 0;  // tokens with K/V in the cache, summed over running sequences
  int64_t requests_finished = 0;
  // Structured output: next-token masks computed, and the time spent on them (summed over the
  // tasks, which run in parallel).
  int64_t masks_computed = 0;
  double mask_seconds = 0;
  bool alive = true;
  // LoRA: --max-loras, and the adapters of running and waiting requests (names, sorted).
  int32_t max_loras = 0;
  std::vector<std::string> running_lora_adapters;
  std::vector<std::string> waiting_lora_adapters;
};

class Engine {
 public:
  using OutputCallback = std::function<void(RequestOutput)>;

  static Result<std::unique_ptr<Engine>> Create(const model::Model& model, EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Validates and queues a request. Errors (bad parameters, prompt too long, duplicate id) come
  // back here, before any output. On success the callback receives every output, the last one
  // with `finished` set, exactly once per request.
  Status Submit(Request request, OutputCallback on_output);

  // Finishes the request with reason "abort"; its blocks are free after the next step.
  // Unknown or finished ids are ignored.
  void Abort(const std::string& request_id);

  EngineStats Stats() const;
  int32_t max_model_len() const { return max_model_len_; }
  int32_t block_size() const { return options_.block_size; }
  const model::Model& model() const { return model_; }
  // The backend's own description: "cpu", "cuda:0 (NVIDIA H100 80GB HBM3)".
  std::string device_description() const { return backend_->Describe(); }

  // One scheduling step (only with start_thread = false). Returns false when there was nothing
  // to do.
  bool Step();
  // Steps until no request is left (only with start_thread = false).
  void RunUntilIdle();

  // Aborts everything and stops the thread. Called by the destructor.
  void Shutdown();

 private:
  Engine(const model::Model& model, EngineOptions options);
  Status Init();
  void Loop();
  void DrainInbox();
  void AdmitRequest(std::unique_ptr<RequestState> rs);
  void AbortRequest(RequestState& rs, FinishReason reason, const Status& error);
  void FinishSequence(Sequence& seq, FinishReason reason);
  void ProcessToken(Sequence& seq, int32_t token, TokenLogprob* lp, bool emit);
  void CheckStop(Sequence& seq, bool flush);
  void Emit(RequestState& rs, bool force);
  void ReleaseFinished();
  Sequence* NewSequence(RequestState& rs, int32_t index);
  void ForkChildren(RequestState& rs, std::span<float> logits);
  // `row_is_scratch`: nothing reads the row after this, so the sampler may rewrite it in place.
  void SampleInto(Sequence& seq, std::span<float> logits_row, bool row_is_scratch);
  // Pooling requests: folds this step's hidden rows of `seq` (prompt positions [before,
  // before + n)) into its request's pool; returns the rows read. FinishPooling sends the result.
  size_t Pool(Sequence& seq, int32_t before, int32_t n, model::HiddenMode mode, const float* rows);
  void FinishPooling(RequestState& rs);
  // Structured output: the next-token masks of the step's constrained sequences, in parallel.
  void ComputeMasks(const SchedulerOutput& so);

  const model::Model& model_;
  EngineOptions options_;
  int32_t max_model_len_ = 0;
  std::unique_ptr<ThreadPool> pool_;
  std::unique_ptr<model::Backend> backend_;  // the forward pass and the KV cache memory
  std::unique_ptr<KvCacheManager> kv_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<Sampler> sampler_;
  std::vector<int32_t> eos_ids_;

  // Engine-thread state.
  std::unordered_map<std::string, std::unique_ptr<RequestState>> requests_;
  uint64_t next_seq_id_ = 1;
  uint64_t next_arrival_ = 0;
  std::vector<int32_t> batch_tokens_;
  std::vector<model::SequenceInput> batch_seqs_;
  std::vector<float> logits_, scratch_, hidden_;
  std::vector<Sequence*> constrained_;
  std::vector<Status> mask_status_;
  std::random_device entropy_;

  // Cross-thread: inbox of new requests and aborts.
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::unique_ptr<RequestState>> inbox_;
  std::vector<std::string> abort_inbox_;
  std::unordered_map<std::string, bool> live_ids_;  // submitted, not yet finished
  bool stop_ = false;
  bool shut_down_ = false;
  EngineStats stats_;  // guarded by mu_ (snapshot updated each step)
  std::thread thread_;
};

}  // namespace kinfer::engine
