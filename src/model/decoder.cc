#include "model/decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

#include "kernels/activation.h"
#include "kernels/ops.h"
#include "kernels/softcap_attention.h"
#include "model/lora_batch.h"

namespace kinfer::model {

std::vector<float> RopeInverseFrequencies(const ModelConfig& c, std::span<const float> freq_factors,
                                          bool long_context) {
  const int64_t half = c.rope_dim / 2;
  std::vector<float> inv(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    double f =
        1.0 / std::pow(c.rope_theta, static_cast<double>(2 * i) / static_cast<double>(c.rope_dim));
    const RopeScaling& rs = c.rope_scaling;
    if (rs.type == RopeScalingType::kLinear) {
      f /= rs.factor;
    } else if (rs.type == RopeScalingType::kLlama3) {
      const double old_ctx = static_cast<double>(rs.original_max_position_embeddings);
      const double low_wavelen = old_ctx / rs.low_freq_factor;
      const double high_wavelen = old_ctx / rs.high_freq_factor;
      const double wavelen = 2 * std::numbers::pi / f;
      if (wavelen > low_wavelen) {
        f /= rs.factor;
      } else if (wavelen >= high_wavelen) {
        double smooth =
            (old_ctx / wavelen - rs.low_freq_factor) / (rs.high_freq_factor - rs.low_freq_factor);
        f = (1 - smooth) * f / rs.factor + smooth * f;
      }
    }
    if (rs.type == RopeScalingType::kLongRope) {
      const auto& factors = long_context ? rs.long_factor : rs.short_factor;
      if (!factors.empty()) f /= factors[static_cast<size_t>(i)];
    }
    if (!freq_factors.empty()) f /= freq_factors[static_cast<size_t>(i)];
    inv[static_cast<size_t>(i)] = static_cast<float>(f);
  }
  return inv;
}

float RopeAttentionFactor(const ModelConfig& c) {
  const RopeScaling& rs = c.rope_scaling;
  if (rs.type != RopeScalingType::kLongRope) return 1.0f;
  if (rs.attention_factor > 0) return static_cast<float>(rs.attention_factor);
  if (rs.factor <= 1.0) return 1.0f;
  return static_cast<float>(
      std::sqrt(1.0 + std::log(rs.factor) /
                          std::log(static_cast<double>(rs.original_max_position_embeddings))));
}

Decoder::Decoder(const Model& model, ThreadPool& pool, int64_t context_length)
    : model_(model), cfg_(model.config()), pool_(pool), lora_(std::make_unique<LoraBatch>()) {
  const bool long_context = cfg_.rope_scaling.type == RopeScalingType::kLongRope &&
                            context_length > cfg_.rope_scaling.original_max_position_embeddings;
  rope_.inv_freq = RopeInverseFrequencies(cfg_, model.weights().rope_freq_factors, long_context);
  rope_.mscale = RopeAttentionFactor(cfg_);
  // Gemma 3's sliding layers rotate with their own base and no scaling.
  if (cfg_.rope_theta_sliding > 0 && cfg_.sliding_window > 0) {
    ModelConfig local = cfg_;
    local.rope_theta = cfg_.rope_theta_sliding;
    local.rope_scaling = RopeScaling{};
    rope_sliding_.inv_freq = RopeInverseFrequencies(local, {});
    separate_sliding_rope_ = rope_sliding_.inv_freq != rope_.inv_freq;
  }
}

Decoder::~Decoder() = default;

int64_t Decoder::NumLogitRows(const ForwardBatch& batch) {
  int64_t rows = 0;
  for (const SequenceInput& s : batch.seqs) {
    if (s.logits == LogitsMode::kLast) rows += 1;
    if (s.logits == LogitsMode::kAll) rows += s.num_tokens;
  }
  return rows;
}

int64_t Decoder::NumHiddenRows(const ForwardBatch& batch) {
  int64_t rows = 0;
  for (const SequenceInput& s : batch.seqs) {
    if (s.hidden == HiddenMode::kLast) rows += 1;
    if (s.hidden == HiddenMode::kAll) rows += s.num_tokens;
  }
  return rows;
}

Status Decoder::Validate(const ModelConfig& cfg, const ForwardBatch& batch, const KvStoreConfig& kc,
                         size_t logits_size) {
  if (kc.num_layers != cfg.num_layers || kc.num_kv_heads != cfg.num_kv_heads ||
      kc.head_dim != cfg.head_dim) {
    return InvalidArgumentError("KV store shape does not match the model");
  }
  const bool grouped = kc.num_sliding_blocks > 0 && !kc.sliding_layers.empty();
  if (grouped && kc.sliding_layers.size() != static_cast<size_t>(cfg.num_layers)) {
    return InvalidArgumentError("KV store's sliding layers do not match the model");
  }
  int64_t total = 0;
  for (const SequenceInput& s : batch.seqs) {
    if (s.num_tokens <= 0 || s.start_pos < 0) {
      return InvalidArgumentError("sequence with {} new tokens at position {}", s.num_tokens,
                                  s.start_pos);
    }
    int64_t end = static_cast<int64_t>(s.start_pos) + s.num_tokens;
    int64_t blocks_needed = (end + kc.block_size - 1) / kc.block_size;
    auto check = [&](std::span<const int32_t> table, int64_t first, int64_t limit,
                     const char* what) -> Status {
      if (static_cast<int64_t>(table.size()) < blocks_needed) {
        return InvalidArgumentError("{}block table of {} blocks cannot hold {} positions", what,
                                    table.size(), end);
      }
      for (int64_t b = first; b < blocks_needed; ++b) {
        int32_t id = table[static_cast<size_t>(b)];
        if (id < 0 || id >= limit) {
          return InvalidArgumentError("{}block id {} outside the KV store's {} blocks", what, id,
                                      limit);
        }
      }
      return Status::Ok();
    };
    KINFER_RETURN_IF_ERROR(check(s.block_table, 0, kc.num_blocks, ""));
    if (grouped) {
      // The first position any new token's window reaches.
      const int64_t lo = std::max<int64_t>(0, s.start_pos - cfg.sliding_window + 1);
      KINFER_RETURN_IF_ERROR(check(s.sliding_block_table, lo / kc.block_size, kc.num_sliding_blocks,
                                   "sliding-window "));
    }
    if (s.lora &&
        (s.lora->num_layers() != cfg.num_layers || s.lora->hidden_size() != cfg.hidden_size)) {
      return InvalidArgumentError("LoRA adapter {} was loaded for another model", s.lora->path());
    }
    total += s.num_tokens;
  }
  if (total != static_cast<int64_t>(batch.tokens.size())) {
    return InvalidArgumentError("batch has {} tokens but its sequences add up to {}",
                                batch.tokens.size(), total);
  }
  for (int32_t t : batch.tokens) {
    if (t < 0 || t >= cfg.vocab_size) {
      return InvalidArgumentError("token id {} outside the vocabulary [0, {})", t, cfg.vocab_size);
    }
  }
  size_t need = static_cast<size_t>(NumLogitRows(batch) * cfg.vocab_size);
  if (logits_size < need) {
    return InvalidArgumentError("logits buffer of {} floats, {} needed", logits_size, need);
  }
  return Status::Ok();
}

void Decoder::Reserve(int64_t n) {
  if (n <= capacity_) return;
  capacity_ = n;
  const size_t T = static_cast<size_t>(n);
  const size_t H = static_cast<size_t>(cfg_.hidden_size);
  // A mixture of experts has no dense FFN (its experts use their own scratch, kernels/moe).
  const size_t F = cfg_.moe.num_experts > 0 ? 0 : static_cast<size_t>(cfg_.intermediate_size);
  const size_t qd = static_cast<size_t>(cfg_.num_heads * cfg_.head_dim);
  const size_t kvd = static_cast<size_t>(cfg_.num_kv_heads * cfg_.head_dim);
  const size_t half = static_cast<size_t>(cfg_.rope_dim / 2);
  pos_.resize(T);
  seq_of_.resize(T);
  for (RopeTable* r : {&rope_, &rope_sliding_}) {
    r->cos.resize(T * half);
    r->sin.resize(T * half);
  }
  x_.resize(T * H);
  xn_.resize(T * std::max(H, qd));
  q_.resize(T * qd);
  k_.resize(T * kvd);
  v_.resize(T * kvd);
  att_.resize(T * std::max(H, qd));  // attention output, then the experts' sum
  gate_.resize(T * F);
  up_.resize(T * F);
  logits_in_.resize(T * H);
  if (cfg_.moe.num_experts > 0) {
    const size_t E = static_cast<size_t>(cfg_.moe.num_experts);
    const size_t k = static_cast<size_t>(cfg_.moe.num_experts_used);
    router_logits_.resize(T * E);
    expert_ids_.resize(T * k);
    expert_weights_.resize(T * k);
  }
}

void Decoder::FillRope(RopeTable& r, int64_t n) const {
  const int64_t half = cfg_.rope_dim / 2;
  for (int64_t t = 0; t < n; ++t) {
    const double p = pos_[static_cast<size_t>(t)];
    for (int64_t i = 0; i < half; ++i) {
      double angle = p * static_cast<double>(r.inv_freq[static_cast<size_t>(i)]);
      float c = static_cast<float>(std::cos(angle)), s = static_cast<float>(std::sin(angle));
      if (r.mscale != 1.0f) {
        c *= r.mscale;
        s *= r.mscale;
      }
      r.cos[static_cast<size_t>(t * half + i)] = c;
      r.sin[static_cast<size_t>(t * half + i)] = s;
    }
  }
}

void Decoder::ComputeRope(int64_t n) {
  FillRope(rope_, n);
  if (separate_sliding_rope_) FillRope(rope_sliding_, n);
}

std::span<const int32_t> Decoder::TableFor(const KvStore& kv, int64_t layer,
                                           const SequenceInput& s) {
  return kv.config().InSlidingGroup(layer) && kv.config().num_sliding_blocks > 0
             ? s.sliding_block_table
             : s.block_table;
}

void Decoder::WriteKvHead(int64_t layer, const ForwardBatch& batch, KvStore& kv, int64_t t,
                          int64_t h) {
  const KvStoreConfig& kc = kv.config();
  const int64_t hd = cfg_.head_dim, nkv = cfg_.num_kv_heads, bs = kc.block_size;
  const SequenceInput& s = batch.seqs[static_cast<size_t>(seq_of_[static_cast<size_t>(t)])];
  const int64_t p = pos_[static_cast<size_t>(t)];
  const int64_t block = TableFor(kv, layer, s)[static_cast<size_t>(p / bs)];
  const int64_t slot = p % bs;
  const float* ks = k_.data() + (t * nkv + h) * hd;
  const float* vs = v_.data() + (t * nkv + h) * hd;
  const size_t off = static_cast<size_t>((h * bs + slot) * hd);
  if (kc.dtype == DType::kF32) {
    std::memcpy(static_cast<float*>(kv.keys(layer, block)) + off, ks, hd * sizeof(float));
    std::memcpy(static_cast<float*>(kv.values(layer, block)) + off, vs, hd * sizeof(float));
  } else {
    uint16_t* kd = static_cast<uint16_t*>(kv.keys(layer, block)) + off;
    uint16_t* vd = static_cast<uint16_t*>(kv.values(layer, block)) + off;
    for (int64_t d = 0; d < hd; ++d) {
      kd[d] = Fp32ToFp16(ks[d]);
      vd[d] = Fp32ToFp16(vs[d]);
    }
  }
}

void Decoder::PrepareQkv(int64_t layer, int64_t t, int64_t kvh) {
  const LayerWeights& L = model_.weights().layers[static_cast<size_t>(layer)];
  const int64_t hd = cfg_.head_dim, nh = cfg_.num_heads, nkv = cfg_.num_kv_heads;
  const int64_t group = nh / nkv, h = kvh * group;
  const float eps = static_cast<float>(cfg_.rms_norm_eps);
  float* q = q_.data() + (t * nh + h) * hd;
  float* k = k_.data() + (t * nkv + kvh) * hd;
  float* v = v_.data() + (t * nkv + kvh) * hd;
  if (!L.bq.empty()) kernels::Add(q, L.bq.data() + h * hd, group * hd);
  if (!L.bk.empty()) kernels::Add(k, L.bk.data() + kvh * hd, hd);
  if (!L.bv.empty()) kernels::Add(v, L.bv.data() + kvh * hd, hd);
  if (cfg_.qk_norm) {
    for (int64_t i = 0; i < group; ++i) {
      kernels::RmsNorm(q + i * hd, L.q_norm.data(), hd, eps, q + i * hd);
    }
    kernels::RmsNorm(k, L.k_norm.data(), hd, eps, k);
  }
  const int64_t half = cfg_.rope_dim / 2;
  const bool interleaved = cfg_.rope_layout == RopeLayout::kInterleaved;
  const RopeTable& r = separate_sliding_rope_ && cfg_.IsSlidingLayer(layer) ? rope_sliding_ : rope_;
  const float* cos = r.cos.data() + t * half;
  const float* sin = r.sin.data() + t * half;
  kernels::Rope(q, group, hd, cfg_.rope_dim, cos, sin, interleaved);
  kernels::Rope(k, 1, hd, cfg_.rope_dim, cos, sin, interleaved);
}

void Decoder::Attention(int64_t layer, const ForwardBatch& batch, KvStore& kv, bool prepare) {
  const KvStoreConfig& kc = kv.config();
  const int64_t hd = cfg_.head_dim, nh = cfg_.num_heads, nkv = cfg_.num_kv_heads;
  const int64_t group = nh / nkv, bs = kc.block_size;
  const int64_t T = static_cast<int64_t>(batch.tokens.size());
  const float scale = static_cast<float>(cfg_.QueryScale());
  const float softcap = static_cast<float>(cfg_.attn_logit_softcap);
  const int64_t window = cfg_.IsSlidingLayer(layer) ? cfg_.sliding_window : 0;
  const bool f16 = kc.dtype == DType::kF16;
  const int64_t esize = f16 ? 2 : 4;
  const auto* k0 = static_cast<const uint8_t*>(kv.keys(layer, 0));
  const auto* v0 = static_cast<const uint8_t*>(kv.values(layer, 0));
  const int64_t block_stride =
      kc.BlocksOf(layer) > 1 ? (static_cast<const uint8_t*>(kv.keys(layer, 1)) - k0) / esize : 0;
  int64_t work = 0;  // multiply-adds, to decide whether threads are worth waking
  for (int64_t t = 0; t < T; ++t) work += (pos_[static_cast<size_t>(t)] + 1) * hd * 2 * nh;
  // An item is one token's query heads that share a KV head: the cache is read once for them.
  auto items = [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores, row;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / nkv, kvh = item % nkv, h = kvh * group;
      if (prepare) {
        PrepareQkv(layer, t, kvh);
        WriteKvHead(layer, batch, kv, t, kvh);
      }
      const SequenceInput& s = batch.seqs[static_cast<size_t>(seq_of_[static_cast<size_t>(t)])];
      const int64_t p = pos_[static_cast<size_t>(t)];
      const int64_t lo = window > 0 ? std::max<int64_t>(0, p - window + 1) : 0;
      if (static_cast<int64_t>(scores.size()) < group * (p + 1)) {
        scores.resize(static_cast<size_t>(group * (p + 1)));
      }
      kernels::PagedKvView view;
      view.k_base = k0;
      view.v_base = v0;
      view.block_stride = block_stride;
      view.head_offset = kvh * bs * hd;
      view.block_size = bs;
      view.block_table = TableFor(kv, layer, s).data();
      view.f16 = f16;
      if (softcap > 0) {
        if (static_cast<int64_t>(row.size()) < hd) row.resize(static_cast<size_t>(hd));
        kernels::AttendHeadsSoftCap(q_.data() + (t * nh + h) * hd, group, hd, view, lo, p, scale,
                                    softcap, scores.data(), row.data(),
                                    att_.data() + (t * nh + h) * hd);
      } else {
        kernels::AttendHeads(q_.data() + (t * nh + h) * hd, group, hd, view, lo, p, scale,
                             scores.data(), att_.data() + (t * nh + h) * hd);
      }
    }
  };
  if (work < (1 << 15)) {
    items(0, T * nkv);
  } else {
    pool_.ParallelFor(T * nkv, items);
  }
}

void Decoder::AddLora(int64_t layer, LoraTarget target, const float* in, int64_t in_dim, float* out,
                      int64_t out_dim) {
  if (lora_->active()) lora_->Apply(layer, target, in, in_dim, out, out_dim, pool_);
}

void Decoder::AttentionBlock(int64_t l, const ForwardBatch& batch, KvStore& kv) {
  const LayerWeights& L = model_.weights().layers[static_cast<size_t>(l)];
  const int64_t T = static_cast<int64_t>(batch.tokens.size());
  const int64_t H = cfg_.hidden_size, hd = cfg_.head_dim;
  const int64_t nh = cfg_.num_heads, nkv = cfg_.num_kv_heads;
  const int64_t qd = nh * hd, kvd = nkv * hd;
  const float eps = static_cast<float>(cfg_.rms_norm_eps);
  auto norm_rows = [&](float* rows_data, const std::vector<float>& weight, int64_t rows,
                       int64_t dim) {
    for (int64_t r = 0; r < rows; ++r) {
      kernels::RmsNorm(rows_data + r * dim, weight.data(), dim, eps, rows_data + r * dim);
    }
  };
  for (int64_t t = 0; t < T; ++t) {
    kernels::RmsNorm(x_.data() + t * H, L.attn_norm.data(), H, eps, xn_.data() + t * H);
  }
  const kernels::MatMulJob qkv[] = {{&L.wq, xn_.data(), q_.data()},
                                    {&L.wk, xn_.data(), k_.data()},
                                    {&L.wv, xn_.data(), v_.data()}};
  kernels::MatMulMany(qkv, T, pool_);
  AddLora(l, LoraTarget::kQ, xn_.data(), H, q_.data(), qd);
  AddLora(l, LoraTarget::kK, xn_.data(), H, k_.data(), kvd);
  AddLora(l, LoraTarget::kV, xn_.data(), H, v_.data(), kvd);
  // Biases, q/k norms, RoPE and the cache write work head by head. When every sequence brings
  // one token, an attention item reads only the keys and values it writes itself, so it does
  // them first, in the attention's parallel region instead of alone on this thread; a prompt's
  // tokens read each other's keys, which must all be in the cache before attention starts.
  const bool single_tokens = T == static_cast<int64_t>(batch.seqs.size());
  if (!single_tokens) {
    pool_.ParallelFor(T * nkv, [&](int64_t begin, int64_t end) {
      for (int64_t item = begin; item < end; ++item) {
        PrepareQkv(l, item / nkv, item % nkv);
        WriteKvHead(l, batch, kv, item / nkv, item % nkv);
      }
    });
  }
  Attention(l, batch, kv, single_tokens);
  kernels::MatMul(L.wo, att_.data(), T, xn_.data(), pool_);
  AddLora(l, LoraTarget::kO, att_.data(), qd, xn_.data(), H);
  if (!L.post_attn_norm.empty()) norm_rows(xn_.data(), L.post_attn_norm, T, H);
  for (int64_t t = 0; t < T; ++t) kernels::Add(x_.data() + t * H, xn_.data() + t * H, H);
}

void Decoder::MixtureOfExperts(const LayerWeights& L, int64_t T) {
  const int64_t H = cfg_.hidden_size, E = cfg_.moe.num_experts, k = cfg_.moe.num_experts_used;
  kernels::MatMul(L.router, xn_.data(), T, router_logits_.data(), pool_);
  for (int64_t t = 0; t < T; ++t) {
    kernels::RouteTopK(router_logits_.data() + t * E, E, k, cfg_.moe.normalize_weights,
                       expert_ids_.data() + t * k, expert_weights_.data() + t * k);
  }
  const kernels::ExpertWeights experts{L.expert_gate, L.expert_up, L.expert_down};
  // The experts read xn_ and write their weighted sum to att_ (free again after attention).
  kernels::MoeFeedForward(experts, xn_.data(), T, H, expert_ids_.data(), expert_weights_.data(), k,
                          att_.data(), moe_, pool_);
  std::copy(att_.begin(), att_.begin() + T * H, xn_.begin());
}

void Decoder::FeedForwardBlock(int64_t l, int64_t T) {
  const LayerWeights& L = model_.weights().layers[static_cast<size_t>(l)];
  const int64_t H = cfg_.hidden_size, F = cfg_.intermediate_size;
  const float eps = static_cast<float>(cfg_.rms_norm_eps);
  for (int64_t t = 0; t < T; ++t) {
    kernels::RmsNorm(x_.data() + t * H, L.ffn_norm.data(), H, eps, xn_.data() + t * H);
  }
  if (cfg_.moe.num_experts > 0) {
    MixtureOfExperts(L, T);
  } else {
    const kernels::MatMulJob gate_up[] = {{&L.w_gate, xn_.data(), gate_.data()},
                                          {&L.w_up, xn_.data(), up_.data()}};
    kernels::MatMulMany(gate_up, T, pool_);
    AddLora(l, LoraTarget::kGate, xn_.data(), H, gate_.data(), F);
    AddLora(l, LoraTarget::kUp, xn_.data(), H, up_.data(), F);
    const bool gelu = cfg_.ffn_activation == FfnActivation::kGeluTanh;
    for (int64_t t = 0; t < T; ++t) {
      float* g = gate_.data() + t * F;
      if (gelu) {
        kernels::GeluTanhMul(g, up_.data() + t * F, F, g);
      } else {
        kernels::SiluMul(g, up_.data() + t * F, F, g);
      }
    }
    kernels::MatMul(L.w_down, gate_.data(), T, xn_.data(), pool_);
    AddLora(l, LoraTarget::kDown, gate_.data(), F, xn_.data(), H);
  }
  if (!L.post_ffn_norm.empty()) {
    for (int64_t t = 0; t < T; ++t) {
      kernels::RmsNorm(xn_.data() + t * H, L.post_ffn_norm.data(), H, eps, xn_.data() + t * H);
    }
  }
  for (int64_t t = 0; t < T; ++t) kernels::Add(x_.data() + t * H, xn_.data() + t * H, H);
}

Status Decoder::Forward(const ForwardBatch& batch, KvStore& kv, std::span<float> logits) {
  return Forward(batch, kv, logits, {});
}

Status Decoder::Forward(const ForwardBatch& batch, KvStore& kv, std::span<float> logits,
                        std::span<float> hidden) {
  KINFER_RETURN_IF_ERROR(Validate(cfg_, batch, kv.config(), logits.size()));
  if (NumLogitRows(batch) > 0 && !model_.has_lm_head()) {
    return InvalidArgumentError("the model has no LM head: it gives hidden states, not logits");
  }
  const size_t hidden_need = static_cast<size_t>(NumHiddenRows(batch) * cfg_.hidden_size);
  if (hidden.size() < hidden_need) {
    return InvalidArgumentError("hidden-state buffer of {} floats, {} needed", hidden.size(),
                                hidden_need);
  }
  const int64_t T = static_cast<int64_t>(batch.tokens.size());
  if (T == 0) return Status::Ok();
  Reserve(T);
  const ModelWeights& w = model_.weights();
  const int64_t H = cfg_.hidden_size;
  const float eps = static_cast<float>(cfg_.rms_norm_eps);

  {
    int64_t t = 0;
    for (size_t si = 0; si < batch.seqs.size(); ++si) {
      const SequenceInput& s = batch.seqs[si];
      for (int32_t i = 0; i < s.num_tokens; ++i, ++t) {
        pos_[static_cast<size_t>(t)] = s.start_pos + i;
        seq_of_[static_cast<size_t>(t)] = static_cast<int32_t>(si);
      }
    }
  }
  ComputeRope(T);
  lora_->Prepare(batch.seqs);

  // Embedding lookup: dequantize each token's row (of a packed matrix too, when it is tied to
  // the LM head); Gemma scales it by sqrt(hidden).
  const float embedding_scale = static_cast<float>(cfg_.embedding_scale);
  for (int64_t t = 0; t < T; ++t) {
    float* row = x_.data() + t * H;
    kernels::DequantizeMatrixRow(w.token_embedding, batch.tokens[static_cast<size_t>(t)], row);
    if (embedding_scale > 0) {
      for (int64_t i = 0; i < H; ++i) row[i] *= embedding_scale;
    }
  }

  for (int64_t l = 0; l < cfg_.num_layers; ++l) {
    AttentionBlock(l, batch, kv);
    FeedForwardBlock(l, T);
  }

  // Final norm and LM head, only for the rows whose logits were asked for.
  int64_t rows = 0, t = 0;
  for (const SequenceInput& s : batch.seqs) {
    if (s.logits == LogitsMode::kAll) {
      for (int32_t i = 0; i < s.num_tokens; ++i) {
        kernels::RmsNorm(x_.data() + (t + i) * H, w.final_norm.data(), H, eps,
                         logits_in_.data() + rows++ * H);
      }
    } else if (s.logits == LogitsMode::kLast) {
      kernels::RmsNorm(x_.data() + (t + s.num_tokens - 1) * H, w.final_norm.data(), H, eps,
                       logits_in_.data() + rows++ * H);
    }
    t += s.num_tokens;
  }
  if (rows > 0) {
    kernels::MatMul(w.lm_head, logits_in_.data(), rows, logits.data(), pool_);
    if (cfg_.final_logit_softcap > 0) {
      kernels::SoftCap(logits.data(), rows * cfg_.vocab_size,
                       static_cast<float>(cfg_.final_logit_softcap));
    }
  }

  // Hidden states for pooling: the same final norm, without the LM head.
  int64_t hrows = 0;
  t = 0;
  for (const SequenceInput& s : batch.seqs) {
    const int32_t first = s.hidden == HiddenMode::kLast ? s.num_tokens - 1 : 0;
    const int32_t count = s.hidden == HiddenMode::kAll    ? s.num_tokens
                          : s.hidden == HiddenMode::kLast ? 1
                                                          : 0;
    for (int32_t i = first; i < first + count; ++i) {
      kernels::RmsNorm(x_.data() + (t + i) * H, w.final_norm.data(), H, eps,
                       hidden.data() + hrows++ * H);
    }
    t += s.num_tokens;
  }
  return Status::Ok();
}

}  // namespace kinfer::model
