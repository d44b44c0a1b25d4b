#include "engine/engine.h"

#include <pthread.h>

#include <algorithm>
#include <fstream>

#include "core/log.h"
#include "core/system_info.h"
#include "engine/block_hash.h"
#include "model/lora_adapter.h"

namespace kinfer::engine {
namespace {

// Backs the emitted-text boundary off a UTF-8 continuation byte.
size_t CharBoundary(const std::string& s, size_t pos) {
  while (pos > 0 && pos < s.size() && (static_cast<unsigned char>(s[pos]) & 0xC0) == 0x80) --pos;
  return pos;
}

}  // namespace

Engine::Engine(const model::Model& model, EngineOptions options)
    : model_(model), options_(std::move(options)) {}

Result<std::unique_ptr<Engine>> Engine::Create(const model::Model& model, EngineOptions options) {
  std::unique_ptr<Engine> e(new Engine(model, std::move(options)));
  KINFER_RETURN_IF_ERROR(e->Init());
  if (e->options_.start_thread) {
    e->thread_ = std::thread([raw = e.get()] { raw->Loop(); });
    pthread_setname_np(e->thread_.native_handle(), "kinfer-engine");
  }
  return e;
}

Status Engine::Init() {
  const model::ModelConfig& c = model_.config();
  if (options_.block_size < 1 || options_.block_size > 1024) {
    return InvalidArgumentError("block size must be in [1, 1024], got {}", options_.block_size);
  }
  if (options_.scheduler.max_num_batched_tokens < 1 || options_.scheduler.max_num_seqs < 1) {
    return InvalidArgumentError("--max-num-batched-tokens and --max-num-seqs must be positive");
  }
  pool_ = std::make_unique<ThreadPool>(options_.num_threads);
  const bool explicit_len = options_.max_model_len > 0;
  int64_t max_len = explicit_len ? options_.max_model_len : c.max_position_embeddings;
  max_len = std::min<int64_t>(max_len, int64_t{1} << 30);

  KINFER_ASSIGN_OR_RETURN(
      backend_, CreateBackend(model_, options_.device, *pool_, options_.gpu_memory_utilization));
  KINFER_ASSIGN_OR_RETURN(const int64_t device_budget,
                          backend_->Reserve(options_.scheduler.max_num_batched_tokens));

  model::KvStoreConfig kc{
      c.num_layers, c.num_kv_heads, c.head_dim, options_.block_size, 1, options_.kv_cache_dtype};
  // Sliding-window layers among global ones (Gemma) get their own group of blocks, sized for
  // the windows of max_num_seqs sequences and one step's new tokens: that is all they can use.
  int64_t num_sliding = 0;
  for (int64_t l = 0; l < c.num_layers; ++l) num_sliding += c.IsSlidingLayer(l);
  const bool grouped = options_.sliding_window_group && num_sliding > 0 &&
                       num_sliding < c.num_layers && c.sliding_window > 0;
  const int64_t bs = options_.block_size;
  int64_t sliding_needed = 0;
  if (grouped) {
    kc.sliding_layers.resize(static_cast<size_t>(c.num_layers));
    for (int64_t l = 0; l < c.num_layers; ++l) {
      kc.sliding_layers[static_cast<size_t>(l)] = c.IsSlidingLayer(l);
    }
    sliding_needed = options_.scheduler.max_num_seqs * ((c.sliding_window - 1 + bs - 1) / bs + 2) +
                     (options_.scheduler.max_num_batched_tokens + bs - 1) / bs;
  }
  const int64_t layer_block_bytes = static_cast<int64_t>(model::KvStore::BytesFor(
      {1, c.num_kv_heads, c.head_dim, bs, 1, options_.kv_cache_dtype, {}, 0}));
  const int64_t block_bytes = layer_block_bytes * (c.num_layers - (grouped ? num_sliding : 0));
  const int64_t sliding_block_bytes = layer_block_bytes * (grouped ? num_sliding : 0);
  int64_t bytes = options_.kv_cache_bytes;
  if (bytes <= 0) {
    // No more than every sequence at full length could use; within that, what the device
    // leaves (GPU), or a quarter of what is free (within the container's limit), at most 4 GiB.
    const int64_t seqs = options_.scheduler.max_num_seqs;
    const int64_t full = (max_len + bs - 1) / bs * seqs;
    const int64_t usable =
        full * block_bytes + std::min(full, sliding_needed) * sliding_block_bytes;
    bytes = device_budget > 0 ? std::min(device_budget, usable)
                              : std::min({AvailableMemoryBytes() / 4, int64_t{4} << 30, usable});
    bytes = std::max(bytes, 2 * (block_bytes + sliding_block_bytes));
  }
  // The sliding group takes what it can use, but never more than its layers' share.
  const int64_t sliding_blocks =
      grouped ? std::max<int64_t>(
                    2, std::min(sliding_needed, bytes / (block_bytes + sliding_block_bytes)))
              : 0;
  // (bytes / (block + sliding block) is the block count of an even split: the share.)
  const int64_t num_blocks = std::min<int64_t>(
      (bytes - sliding_blocks * sliding_block_bytes) / block_bytes, int64_t{1} << 24);
  if (num_blocks < 2) {
    return ResourceExhaustedError(
        "--kv-cache-memory of {} bytes holds fewer than 2 blocks of {} bytes ({} tokens each)",
        bytes, block_bytes + sliding_block_bytes, bs);
  }
  const int64_t capacity = num_blocks * bs;
  if (max_len > capacity) {
    if (explicit_len) {
      return ResourceExhaustedError(
          "--max-model-len {} needs {} KV blocks but --kv-cache-memory ({} bytes) holds {}; raise "
          "the cache memory or lower the model length",
          max_len, (max_len + bs - 1) / bs, bytes, num_blocks);
    }
    KINFER_LOG_WARN("model length {} reduced to {} tokens, what the KV cache ({} MiB) holds",
                    max_len, capacity, bytes >> 20);
    max_len = capacity;
  }
  max_model_len_ = static_cast<int32_t>(max_len);
  kc.num_blocks = num_blocks;
  kc.num_sliding_blocks = sliding_blocks;
  KINFER_LOG_INFO("KV cache on {}: {} blocks of {} tokens ({} MiB, {}), max model length {}",
                  backend_->Describe(), num_blocks, bs, (num_blocks * block_bytes) >> 20,
                  DTypeName(options_.kv_cache_dtype), max_model_len_);
  if (grouped) {
    KINFER_LOG_INFO(
        "KV cache: {} of {} layers slide over {} tokens: {} blocks of their own ({} MiB), "
        "released as they leave the window",
        num_sliding, c.num_layers, c.sliding_window, sliding_blocks,
        (sliding_blocks * sliding_block_bytes) >> 20);
  }
  // The backend's decoder takes the longest sequence this engine runs, which picks LongRoPE's
  // factors (Phi-3) for every request.
  KINFER_RETURN_IF_ERROR(backend_->AllocateKvCache(kc, max_model_len_));
  kv_ = std::make_unique<KvCacheManager>(static_cast<int32_t>(num_blocks), options_.block_size,
                                         options_.enable_prefix_caching, backend_.get(),
                                         static_cast<int32_t>(sliding_blocks),
                                         grouped ? static_cast<int32_t>(c.sliding_window) : 0);
  scheduler_ = std::make_unique<Scheduler>(options_.scheduler, *kv_);
  sampler_ = std::make_unique<Sampler>(c.vocab_size);
  if (!options_.eos_token_ids.empty()) {
    eos_ids_ = options_.eos_token_ids;
  } else {
    for (int64_t e : c.eos_token_ids) eos_ids_.push_back(static_cast<int32_t>(e));
  }
  stats_.num_blocks = static_cast<int32_t>(num_blocks);
  stats_.num_free_blocks = static_cast<int32_t>(num_blocks);
  stats_.num_sliding_blocks = static_cast<int32_t>(sliding_blocks);
  stats_.num_free_sliding_blocks = static_cast<int32_t>(sliding_blocks);
  return Status::Ok();
}

Engine::~Engine() { Shutdown(); }

void Engine::Shutdown() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (shut_down_) return;
    shut_down_ = stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  // The engine thread is gone: finish whatever is left from here.
  std::vector<std::unique_ptr<RequestState>> inbox;
  {
    std::lock_guard<std::mutex> lk(mu_);
    inbox.swap(inbox_);
  }
  for (auto& rs : inbox) AdmitRequest(std::move(rs));
  for (auto& [id, rs] : requests_) {
    AbortRequest(*rs, FinishReason::kAbort, UnavailableError("the engine is shutting down"));
  }
  ReleaseFinished();
}

Status Engine::Submit(Request r, OutputCallback on_output) {
  const model::ModelConfig& c = model_.config();
  if (r.prompt_tokens.empty()) {
    return InvalidArgumentError("the prompt must contain at least one token");
  }
  for (int32_t t : r.prompt_tokens) {
    if (t < 0 || t >= c.vocab_size) {
      return InvalidArgumentError("prompt token id {} is outside the vocabulary [0, {})", t,
                                  c.vocab_size);
    }
  }
  const int32_t prompt_len = static_cast<int32_t>(r.prompt_tokens.size());
  if (r.pooling) {
    if (prompt_len > max_model_len_) {
      return InvalidArgumentError(
          "the input has {} tokens, but this model's maximum context length is {} tokens",
          prompt_len, max_model_len_);
    }
    r.params = SamplingParams();  // nothing is sampled
  } else {
    if (!model_.has_lm_head()) {
      return InvalidArgumentError(
          "this model has no LM head: it computes embeddings and cannot generate text");
    }
    if (prompt_len >= max_model_len_) {
      return InvalidArgumentError(
          "the prompt has {} tokens, but this model's maximum context length is {} tokens "
          "(prompt plus at least one generated token)",
          prompt_len, max_model_len_);
    }
    KINFER_RETURN_IF_ERROR(r.params.Validate(c.vocab_size));
    r.params.max_tokens = std::min(r.params.max_tokens, max_model_len_ - prompt_len);
    r.params.min_tokens = std::min(r.params.min_tokens, r.params.max_tokens);
  }
  if (r.lora && (r.lora->num_layers() != c.num_layers || r.lora->hidden_size() != c.hidden_size)) {
    return InvalidArgumentError("LoRA adapter '{}' was loaded for another model", r.lora_name);
  }
  auto rs = std::make_unique<RequestState>();
  rs->request = std::move(r);
  rs->on_output = std::move(on_output);
  {
    std::lock_guard<std::mutex> lk(mu_);
    if (stop_) return UnavailableError("the engine is shutting down");
    if (!stats_.alive) return UnavailableError("the engine has failed");
    if (!live_ids_.emplace(rs->request.id, true).second) {
      return InvalidArgumentError("request id '{}' is already in use", rs->request.id);
    }
    inbox_.push_back(std::move(rs));
  }
  cv_.notify_one();
  return Status::Ok();
}

void Engine::Abort(const std::string& id) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    abort_inbox_.push_back(id);
  }
  cv_.notify_one();
}

EngineStats Engine::Stats() const {
  std::lock_guard<std::mutex> lk(mu_);
  return stats_;
}

Sequence* Engine::NewSequence(RequestState& rs, int32_t index) {
  auto seq = std::make_unique<Sequence>();
  seq->id = next_seq_id_++;
  seq->request = &rs;
  seq->index = index;
  seq->tokens = rs.request.prompt_tokens;
  seq->prompt_len = static_cast<int32_t>(seq->tokens.size());
  seq->priority = rs.request.priority;
  seq->arrival_order = rs.seqs.empty() ? next_arrival_++ : rs.seqs[0]->arrival_order;
  const SamplingParams& p = rs.request.params;
  if (p.seed) {
    seq->rng.seed(*p.seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(index));
  } else {
    seq->rng.seed((static_cast<uint64_t>(entropy_()) << 32) ^ entropy_());
  }
  if (options_.text_decoder && !rs.request.pooling) {
    seq->text = options_.text_decoder(p.skip_special_tokens, seq->tokens);
  }
  if (p.constraint) {
    seq->constraint = p.constraint->Clone();
    seq->mask.assign(MaskWords(model_.config().vocab_size), 0);
  }
  rs.seqs.push_back(std::move(seq));
  return rs.seqs.back().get();
}

void Engine::AdmitRequest(std::unique_ptr<RequestState> rs) {
  // An adapter's content hash, not its name: a changed adapter reloaded under the same name must
  // not reuse KV computed with the old weights.
  rs->extra_hash = HashExtraKeys(rs->request.cache_salt,
                                 rs->request.lora ? rs->request.lora->content_hash() : "");
  for (const std::string& s : rs->request.params.stop) {
    rs->stop_holdback = std::max(rs->stop_holdback, static_cast<int32_t>(s.size()) - 1);
  }
  Sequence* seq = NewSequence(*rs, 0);
  scheduler_->AddWaiting(seq);
  std::string id = rs->request.id;
  requests_[id] = std::move(rs);
}

void Engine::DrainInbox() {
  std::vector<std::unique_ptr<RequestState>> inbox;
  std::vector<std::string> aborts;
  {
    std::lock_guard<std::mutex> lk(mu_);
    inbox.swap(inbox_);
    aborts.swap(abort_inbox_);
  }
  for (auto& rs : inbox) AdmitRequest(std::move(rs));
  for (const std::string& id : aborts) {
    auto it = requests_.find(id);
    if (it != requests_.end()) AbortRequest(*it->second, FinishReason::kAbort, Status::Ok());
  }
}

void Engine::FinishSequence(Sequence& seq, FinishReason reason) {
  if (seq.status == SequenceStatus::kFinished) return;
  if (seq.text) {
    seq.output_text += seq.text->Flush();
    if (reason != FinishReason::kAbort && reason != FinishReason::kError && !seq.stop_string) {
      CheckStop(seq, true);
      if (seq.status == SequenceStatus::kFinished) return;  // a stop string ended it
    }
  }
  seq.finish_reason = reason;
  seq.status = SequenceStatus::kFinished;
  seq.request->num_finished++;
  scheduler_->Remove(&seq);
  kv_->Free(seq.id);
}

void Engine::CheckStop(Sequence& seq, bool flush) {
  const SamplingParams& p = seq.request->request.params;
  if (p.stop.empty() || seq.stop_string || seq.output_len() < p.min_tokens) return;
  const size_t hold = static_cast<size_t>(seq.request->stop_holdback);
  // Only text that could hold a new match: the unsent tail plus a stop string's overlap.
  const size_t from = seq.text_sent > hold ? seq.text_sent - hold : 0;
  size_t best = std::string::npos;
  const std::string* best_stop = nullptr;
  for (const std::string& s : p.stop) {
    size_t pos = seq.output_text.find(s, from);
    if (pos != std::string::npos && pos < best) {
      best = pos;
      best_stop = &s;
    }
  }
  (void)flush;
  if (!best_stop) return;
  seq.output_text.resize(p.include_stop_str_in_output ? best + best_stop->size() : best);
  if (seq.text_sent > seq.output_text.size()) seq.text_sent = seq.output_text.size();
  seq.stop_string = *best_stop;
  seq.finish_reason = FinishReason::kStop;
  seq.status = SequenceStatus::kFinished;
  seq.request->num_finished++;
  scheduler_->Remove(&seq);
  kv_->Free(seq.id);
}

void Engine::ProcessToken(Sequence& seq, int32_t token, TokenLogprob* lp, bool /*emit*/) {
  RequestState& rs = *seq.request;
  const SamplingParams& p = rs.request.params;
  seq.tokens.push_back(token);
  seq.pending_tokens.push_back(token);
  if (lp) seq.pending_logprobs.push_back(std::move(*lp));
  const bool eos =
      !p.ignore_eos && std::find(eos_ids_.begin(), eos_ids_.end(), token) != eos_ids_.end();
  const bool stop_token =
      std::find(p.stop_token_ids.begin(), p.stop_token_ids.end(), token) != p.stop_token_ids.end();
  if (eos || stop_token) {
    if (seq.text && p.include_stop_str_in_output) seq.output_text += seq.text->Push(token);
    seq.stop_token = token;
    FinishSequence(seq, FinishReason::kStop);
    return;
  }
  if (seq.constraint) {
    Status st = seq.constraint->Accept(token);
    if (!st.ok()) {
      AbortRequest(rs, FinishReason::kError, st.WithPrefix("structured output"));
      return;
    }
  }
  if (seq.text) {
    seq.output_text += seq.text->Push(token);
    CheckStop(seq, false);
    if (seq.status == SequenceStatus::kFinished) return;
  }
  if (seq.constraint && seq.constraint->IsTerminated()) {
    FinishSequence(seq, FinishReason::kStop);  // the grammar is complete
    return;
  }
  if (seq.output_len() >= p.max_tokens ||
      static_cast<int32_t>(seq.tokens.size()) >= max_model_len_) {
    FinishSequence(seq, FinishReason::kLength);
  }
}

void Engine::SampleInto(Sequence& seq, std::span<float> row, bool row_is_scratch) {
  RequestState& rs = *seq.request;
  const SamplingParams& p = rs.request.params;
  if (options_.logits_observer) options_.logits_observer(rs.request.id, seq.index, row);
  // The sampler rewrites its logits (bias, penalties): a row that others still read is copied.
  std::span<float> logits = row;
  if (!row_is_scratch) {
    scratch_.assign(row.begin(), row.end());
    logits = scratch_;
  }
  SampleContext ctx;
  ctx.params = &p;
  ctx.prompt = std::span<const int32_t>(seq.tokens.data(), static_cast<size_t>(seq.prompt_len));
  ctx.output = std::span<const int32_t>(seq.tokens).subspan(static_cast<size_t>(seq.prompt_len));
  ctx.eos_ids = eos_ids_;
  ctx.rng = &seq.rng;
  if (seq.constraint) {
    if (!seq.mask_ready) {
      Status st = seq.constraint->ComputeMask(seq.mask);
      if (!st.ok()) {
        AbortRequest(rs, FinishReason::kError, st.WithPrefix("structured output"));
        return;
      }
    }
    seq.mask_ready = false;
    ctx.allowed = seq.mask;
  }
  TokenLogprob lp;
  const bool want = p.logprobs.has_value();
  int32_t token = sampler_->Sample(logits, ctx, want ? &lp : nullptr);
  stats_.generation_tokens++;
  if (!rs.first_token) rs.first_token = Clock::now();
  ProcessToken(seq, token, want ? &lp : nullptr, true);
}

size_t Engine::Pool(Sequence& seq, int32_t before, int32_t n, model::HiddenMode mode,
                    const float* rows) {
  if (mode == model::HiddenMode::kNone) return 0;
  RequestState& rs = *seq.request;
  const size_t H = static_cast<size_t>(model_.config().hidden_size);
  if (rs.pooled.empty()) rs.pooled.assign(H, 0.0f);
  const int32_t count = mode == model::HiddenMode::kAll ? n : 1;
  switch (rs.request.pooling->type) {
    case model::PoolingType::kLast:
      std::copy(rows, rows + H, rs.pooled.begin());
      break;
    case model::PoolingType::kCls:
      if (before == 0 && rs.pooled_upto == 0) std::copy(rows, rows + H, rs.pooled.begin());
      break;
    case model::PoolingType::kMean:
      for (int32_t j = 0; j < count; ++j) {
        if (before + j < rs.pooled_upto) continue;  // recomputed after a preemption
        const float* row = rows + static_cast<size_t>(j) * H;
        for (size_t d = 0; d < H; ++d) rs.pooled[d] += row[d];
      }
      break;
  }
  rs.pooled_upto = std::max(rs.pooled_upto, before + n);
  return static_cast<size_t>(count);
}

void Engine::FinishPooling(RequestState& rs) {
  Sequence& seq = *rs.seqs[0];
  std::vector<float> v = std::move(rs.pooled);
  if (rs.request.pooling->type == model::PoolingType::kMean) {
    const float inv = 1.0f / static_cast<float>(seq.prompt_len);
    for (float& x : v) x *= inv;
  }
  FinishSequence(seq, FinishReason::kStop);
  seq.text_sent_final = true;
  RequestOutput out;
  out.request_id = rs.request.id;
  out.finished = true;
  out.embedding = std::move(v);
  out.usage.prompt_tokens = seq.prompt_len;
  out.usage.cached_tokens = rs.cached_tokens.value_or(0);
  out.arrival = rs.request.arrival;
  out.first_scheduled = rs.first_scheduled;
  if (rs.on_output) rs.on_output(std::move(out));
  rs.on_output = nullptr;
}

void Engine::ComputeMasks(const SchedulerOutput& so) {
  // The constrained sequences that sample this step: their masks in parallel, one per task.
  constrained_.clear();
  for (const ScheduledSequence& s : so.scheduled) {
    Sequence& seq = *s.seq;
    const bool samples = seq.num_computed + s.num_tokens == static_cast<int32_t>(seq.tokens.size());
    if (seq.constraint && samples && seq.status != SequenceStatus::kFinished) {
      constrained_.push_back(&seq);
    }
  }
  if (constrained_.empty()) return;
  mask_status_.assign(constrained_.size(), Status::Ok());
  pool_->ParallelFor(static_cast<int64_t>(constrained_.size()), [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      Sequence& seq = *constrained_[static_cast<size_t>(i)];
      const Clock::time_point t0 = Clock::now();
      mask_status_[static_cast<size_t>(i)] = seq.constraint->ComputeMask(seq.mask);
      seq.mask_ready = true;
      seq.mask_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    }
  });
  for (size_t i = 0; i < constrained_.size(); ++i) {
    if (!mask_status_[i].ok()) {
      constrained_[i]->mask_ready = false;  // SampleInto computes it again and reports the error
    }
    stats_.mask_seconds += constrained_[i]->mask_seconds;
    stats_.masks_computed++;
  }
}

void Engine::ForkChildren(RequestState& rs, std::span<float> row) {
  rs.forked = true;
  Sequence& parent = *rs.seqs[0];
  for (int32_t i = 1; i < rs.request.params.n; ++i) {
    Sequence* child = NewSequence(rs, i);
    child->finished_prefill = true;
    if (kv_->Fork(parent.id, child->id, parent.num_computed)) {
      child->num_computed = parent.num_computed;
      scheduler_->AddRunning(child);
      SampleInto(*child, row, false);  // the parent samples from it next
    } else {
      scheduler_->AddWaiting(child);  // computes its own prompt when blocks free up
    }
  }
}

void Engine::AbortRequest(RequestState& rs, FinishReason reason, const Status& error) {
  if (!error.ok()) {
    rs.prompt_logprobs_sent = true;
    rs.error = error;
  }
  for (auto& s : rs.seqs) FinishSequence(*s, reason);
  // Completions never forked count as finished too: this is the request's last output.
  rs.forked = true;
  rs.num_finished = rs.request.params.n;
  Emit(rs, /*force=*/true);
}

void Engine::Emit(RequestState& rs, bool force) {
  if (!rs.on_output) return;
  RequestOutput out;
  out.request_id = rs.request.id;
  const bool done = rs.num_finished >= rs.request.params.n;
  for (auto& s : rs.seqs) {
    const bool finished = s->status == SequenceStatus::kFinished;
    size_t boundary = s->output_text.size();
    if (!finished && rs.stop_holdback > 0) {
      size_t hold = static_cast<size_t>(rs.stop_holdback);
      boundary = boundary > hold ? CharBoundary(s->output_text, boundary - hold) : 0;
    }
    // After an error the text is incomplete: only the finish is reported.
    const bool has_text = boundary > s->text_sent && rs.error.ok();
    const bool newly_finished = finished && s->finish_reason && !s->text_sent_final;
    if (s->pending_tokens.empty() && !has_text && !newly_finished) continue;
    SequenceOutput so;
    so.index = s->index;
    so.token_ids = std::move(s->pending_tokens);
    s->pending_tokens.clear();
    so.logprobs = std::move(s->pending_logprobs);
    s->pending_logprobs.clear();
    if (has_text) {
      so.text = s->output_text.substr(s->text_sent, boundary - s->text_sent);
      s->text_sent = boundary;
    }
    if (newly_finished) {
      so.finish_reason = s->finish_reason;
      so.stop_string = s->stop_string;
      so.stop_token = s->stop_token;
      s->text_sent_final = true;
    }
    out.seqs.push_back(std::move(so));
  }
  if (!rs.prompt_logprobs_sent && rs.request.params.prompt_logprobs &&
      rs.seqs[0]->finished_prefill) {
    out.prompt_logprobs = std::move(rs.prompt_logprobs);
    rs.prompt_logprobs_sent = true;
  }
  if (out.seqs.empty() && out.prompt_logprobs.empty() && !done && !force) return;
  out.finished = done;
  out.error = rs.error;
  out.usage.prompt_tokens = static_cast<int32_t>(rs.request.prompt_tokens.size());
  for (auto& s : rs.seqs) out.usage.completion_tokens += s->output_len();
  out.usage.cached_tokens = rs.cached_tokens.value_or(0);
  out.arrival = rs.request.arrival;
  out.first_scheduled = rs.first_scheduled;
  out.first_token = rs.first_token;
  rs.on_output(std::move(out));
  if (done) rs.on_output = nullptr;
}

void Engine::ReleaseFinished() {
  std::vector<std::string> done;
  for (auto& [id, rs] : requests_) {
    if (rs->num_finished >= rs->request.params.n && !rs->on_output) done.push_back(id);
  }
  if (done.empty()) return;
  std::lock_guard<std::mutex> lk(mu_);
  for (const std::string& id : done) {
    requests_.erase(id);
    live_ids_.erase(id);
    stats_.requests_finished++;
  }
}

bool Engine::Step() {
  DrainInbox();
  SchedulerOutput so = scheduler_->Schedule();
  stats_.num_preemptions += static_cast<int64_t>(so.preempted.size());
  stats_.prefix_cache_queries += so.prefix_queries;
  stats_.prefix_cache_hits += so.prefix_hits;
  const bool worked = !so.empty();
  if (worked) {
    const int64_t vocab = model_.config().vocab_size;
    batch_tokens_.clear();
    batch_seqs_.clear();
    const Clock::time_point now = Clock::now();
    for (const ScheduledSequence& s : so.scheduled) {
      Sequence& seq = *s.seq;
      if (!seq.request->first_scheduled) seq.request->first_scheduled = now;
      batch_tokens_.insert(batch_tokens_.end(), seq.tokens.begin() + seq.num_computed,
                           seq.tokens.begin() + seq.num_computed + s.num_tokens);
      model::SequenceInput in;
      in.num_tokens = s.num_tokens;
      in.start_pos = seq.num_computed;
      in.block_table = kv_->BlockTable(seq.id);
      in.lora = seq.request->request.lora.get();
      in.sliding_block_table = kv_->SlidingBlockTable(seq.id);
      const bool reaches_end =
          seq.num_computed + s.num_tokens == static_cast<int32_t>(seq.tokens.size());
      const bool prompt_lp = seq.request->request.params.prompt_logprobs.has_value() &&
                             seq.index == 0 && seq.num_computed < seq.prompt_len &&
                             !seq.finished_prefill;
      in.logits = prompt_lp ? model::LogitsMode::kAll
                            : (reaches_end ? model::LogitsMode::kLast : model::LogitsMode::kNone);
      if (const auto& pooling = seq.request->request.pooling) {
        // Hidden states instead of logits: the last token's, every token's for a mean, the
        // first chunk's for the first token.
        in.logits = model::LogitsMode::kNone;
        switch (pooling->type) {
          case model::PoolingType::kLast:
            in.hidden = reaches_end ? model::HiddenMode::kLast : model::HiddenMode::kNone;
            break;
          case model::PoolingType::kMean:
            in.hidden = model::HiddenMode::kAll;
            break;
          case model::PoolingType::kCls:
            in.hidden = seq.num_computed == 0 ? model::HiddenMode::kAll : model::HiddenMode::kNone;
            break;
        }
      }
      batch_seqs_.push_back(in);
    }
    const model::ForwardBatch batch{batch_tokens_, batch_seqs_};
    logits_.resize(static_cast<size_t>(model::Decoder::NumLogitRows(batch) * vocab));
    hidden_.resize(
        static_cast<size_t>(model::Decoder::NumHiddenRows(batch) * model_.config().hidden_size));
    Status st = backend_->ForwardPooling(batch, logits_, hidden_);
    if (!st.ok()) {
      KINFER_LOG_ERROR("forward pass failed: {}", st.ToString());
      for (const ScheduledSequence& s : so.scheduled) {
        if (s.seq->status != SequenceStatus::kFinished) {
          AbortRequest(*s.seq->request, FinishReason::kError, st);
        }
      }
    } else {
      ComputeMasks(so);
      size_t row = 0, hidden_row = 0;
      const size_t hidden_size = static_cast<size_t>(model_.config().hidden_size);
      std::vector<RequestState*> touched;
      for (size_t i = 0; i < so.scheduled.size(); ++i) {
        Sequence& seq = *so.scheduled[i].seq;
        const int32_t n = so.scheduled[i].num_tokens;
        const int32_t before = seq.num_computed;
        RequestState& rs = *seq.request;
        seq.num_computed += n;
        stats_.prompt_tokens += std::max(0, std::min(seq.num_computed, seq.prompt_len) - before);
        kv_->CacheComputedBlocks(seq.id, seq.tokens, seq.num_computed, rs.extra_hash);
        kv_->ReleaseOutOfWindow(seq.id, seq.num_computed);
        if (rs.request.pooling) {
          hidden_row += Pool(seq, before, n, batch_seqs_[i].hidden,
                             hidden_.data() + hidden_row * hidden_size);
          if (seq.num_computed == seq.prompt_len) FinishPooling(rs);
          continue;
        }
        const model::LogitsMode mode = batch_seqs_[i].logits;
        if (mode == model::LogitsMode::kNone) continue;
        const size_t rows = mode == model::LogitsMode::kAll ? static_cast<size_t>(n) : 1;
        if (mode == model::LogitsMode::kAll) {
          const int32_t top = rs.request.params.prompt_logprobs.value_or(0);
          if (before == 0) {
            TokenLogprob first;
            first.token = seq.tokens[0];
            first.logprob = 0;
            rs.prompt_logprobs.push_back(first);  // the first prompt token has no logprob
          }
          for (int32_t j = 0; j < n; ++j) {
            const int32_t next = before + j + 1;
            if (next >= seq.prompt_len) break;
            rs.prompt_logprobs.push_back(
                Sampler::Logprob(std::span<const float>(logits_).subspan(
                                     (row + static_cast<size_t>(j)) * vocab, vocab),
                                 seq.tokens[static_cast<size_t>(next)], top));
          }
        }
        const bool reaches_end = seq.num_computed == static_cast<int32_t>(seq.tokens.size());
        if (reaches_end) {
          std::span<float> last =
              std::span<float>(logits_).subspan((row + rows - 1) * vocab, vocab);
          const bool first_prefill = !seq.finished_prefill;
          seq.finished_prefill = true;
          if (first_prefill && seq.index == 0 && rs.request.params.n > 1 && !rs.forked) {
            ForkChildren(rs, last);
          }
          SampleInto(seq, last, true);  // its last reader
          if (std::find(touched.begin(), touched.end(), &rs) == touched.end())
            touched.push_back(&rs);
        }
        row += rows;
      }
      for (RequestState* rs : touched) Emit(*rs, false);
    }
    stats_.steps++;
  }
  ReleaseFinished();
  {
    std::lock_guard<std::mutex> lk(mu_);
    stats_.num_running = static_cast<int32_t>(scheduler_->num_running());
    stats_.num_waiting = static_cast<int32_t>(scheduler_->num_waiting() + inbox_.size());
    stats_.num_free_blocks = kv_->pool().num_free();
    stats_.num_free_sliding_blocks = kv_->sliding_pool().num_free();
    stats_.kv_cache_usage = kv_->usage();
    stats_.kv_tokens_running = 0;
    for (const Sequence* seq : scheduler_->running()) stats_.kv_tokens_running += seq->num_computed;
    stats_.max_loras = options_.scheduler.max_loras;
    auto names = [](auto& seqs, std::vector<std::string>& out) {
      out.clear();
      for (const Sequence* seq : seqs) {
        const std::string& n = seq->request->request.lora_name;
        if (SequenceLora(*seq) && std::find(out.begin(), out.end(), n) == out.end())
          out.push_back(n);
      }
      std::sort(out.begin(), out.end());
    };
    names(scheduler_->running(), stats_.running_lora_adapters);
    names(scheduler_->waiting(), stats_.waiting_lora_adapters);
  }
  return worked || !requests_.empty();
}

void Engine::RunUntilIdle() {
  while (Step()) {
  }
}

void Engine::Loop() {
  try {
    while (true) {
      {
        std::unique_lock<std::mutex> lk(mu_);
        cv_.wait(lk, [&] {
          return stop_ || !inbox_.empty() || !abort_inbox_.empty() || !requests_.empty();
        });
        if (stop_) return;
      }
      Step();
    }
  } catch (const std::exception& e) {
    KINFER_LOG_ERROR("engine thread failed: {}", e.what());
    std::lock_guard<std::mutex> lk(mu_);
    stats_.alive = false;
  }
}

}  // namespace kinfer::engine
