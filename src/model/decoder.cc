#include "model/decoder.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numbers>

#include "kernels/ops.h"
#include "model/lora_batch.h"

namespace kinfer::model {

std::vector<float> RopeInverseFrequencies(const ModelConfig& c,
                                          std::span<const float> freq_factors) {
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
    if (!freq_factors.empty()) f /= freq_factors[static_cast<size_t>(i)];
    inv[static_cast<size_t>(i)] = static_cast<float>(f);
  }
  return inv;
}

Decoder::Decoder(const Model& model, ThreadPool& pool)
    : model_(model), cfg_(model.config()), pool_(pool), lora_(std::make_unique<LoraBatch>()) {
  inv_freq_ = RopeInverseFrequencies(cfg_, model.weights().rope_freq_factors);
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
  int64_t total = 0;
  for (const SequenceInput& s : batch.seqs) {
    if (s.num_tokens <= 0 || s.start_pos < 0) {
      return InvalidArgumentError("sequence with {} new tokens at position {}", s.num_tokens,
                                  s.start_pos);
    }
    int64_t end = static_cast<int64_t>(s.start_pos) + s.num_tokens;
    int64_t blocks_needed = (end + kc.block_size - 1) / kc.block_size;
    if (static_cast<int64_t>(s.block_table.size()) < blocks_needed) {
      return InvalidArgumentError("block table of {} blocks cannot hold {} positions",
                                  s.block_table.size(), end);
    }
    for (int64_t b = 0; b < blocks_needed; ++b) {
      int32_t id = s.block_table[static_cast<size_t>(b)];
      if (id < 0 || id >= kc.num_blocks) {
        return InvalidArgumentError("block id {} outside the KV store's {} blocks", id,
                                    kc.num_blocks);
      }
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
  const size_t F = static_cast<size_t>(cfg_.intermediate_size);
  const size_t qd = static_cast<size_t>(cfg_.num_heads * cfg_.head_dim);
  const size_t kvd = static_cast<size_t>(cfg_.num_kv_heads * cfg_.head_dim);
  const size_t half = static_cast<size_t>(cfg_.rope_dim / 2);
  pos_.resize(T);
  seq_of_.resize(T);
  cos_.resize(T * half);
  sin_.resize(T * half);
  x_.resize(T * H);
  xn_.resize(T * std::max(H, qd));
  q_.resize(T * qd);
  k_.resize(T * kvd);
  v_.resize(T * kvd);
  att_.resize(T * qd);
  gate_.resize(T * F);
  up_.resize(T * F);
  logits_in_.resize(T * H);
}

void Decoder::ComputeRope(int64_t n) {
  const int64_t half = cfg_.rope_dim / 2;
  for (int64_t t = 0; t < n; ++t) {
    const double p = pos_[static_cast<size_t>(t)];
    for (int64_t i = 0; i < half; ++i) {
      double angle = p * static_cast<double>(inv_freq_[static_cast<size_t>(i)]);
      cos_[static_cast<size_t>(t * half + i)] = static_cast<float>(std::cos(angle));
      sin_[static_cast<size_t>(t * half + i)] = static_cast<float>(std::sin(angle));
    }
  }
}

void Decoder::ApplyRope(float* x, int64_t n, int64_t heads) const {
  const int64_t hd = cfg_.head_dim, half = cfg_.rope_dim / 2;
  const bool interleaved = cfg_.rope_layout == RopeLayout::kInterleaved;
  for (int64_t t = 0; t < n; ++t) {
    kernels::Rope(x + t * heads * hd, heads, hd, cfg_.rope_dim, cos_.data() + t * half,
                  sin_.data() + t * half, interleaved);
  }
}

void Decoder::WriteKv(int64_t layer, const ForwardBatch& batch, KvStore& kv) {
  const KvStoreConfig& kc = kv.config();
  const int64_t hd = cfg_.head_dim, nkv = cfg_.num_kv_heads, bs = kc.block_size;
  const int64_t T = static_cast<int64_t>(batch.tokens.size());
  for (int64_t t = 0; t < T; ++t) {
    const SequenceInput& s = batch.seqs[static_cast<size_t>(seq_of_[static_cast<size_t>(t)])];
    const int64_t p = pos_[static_cast<size_t>(t)];
    const int64_t block = s.block_table[static_cast<size_t>(p / bs)];
    const int64_t slot = p % bs;
    for (int64_t h = 0; h < nkv; ++h) {
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
  }
}

void Decoder::Attention(int64_t layer, const ForwardBatch& batch, const KvStore& kv) {
  const KvStoreConfig& kc = kv.config();
  const int64_t hd = cfg_.head_dim, nh = cfg_.num_heads, nkv = cfg_.num_kv_heads;
  const int64_t group = nh / nkv, bs = kc.block_size;
  const int64_t T = static_cast<int64_t>(batch.tokens.size());
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const bool f16 = kc.dtype == DType::kF16;
  const int64_t esize = f16 ? 2 : 4;
  const auto* k0 = static_cast<const uint8_t*>(kv.keys(layer, 0));
  const auto* v0 = static_cast<const uint8_t*>(kv.values(layer, 0));
  const int64_t block_stride =
      kc.num_blocks > 1 ? (static_cast<const uint8_t*>(kv.keys(layer, 1)) - k0) / esize : 0;
  int64_t work = 0;  // multiply-adds, to decide whether threads are worth waking
  for (int64_t t = 0; t < T; ++t) work += (pos_[static_cast<size_t>(t)] + 1) * hd * 2 * nh;
  // An item is one token's query heads that share a KV head: the cache is read once for them.
  auto items = [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    for (int64_t item = begin; item < end; ++item) {
      const int64_t t = item / nkv, kvh = item % nkv, h = kvh * group;
      const SequenceInput& s = batch.seqs[static_cast<size_t>(seq_of_[static_cast<size_t>(t)])];
      const int64_t p = pos_[static_cast<size_t>(t)];
      const int64_t lo =
          cfg_.sliding_window > 0 ? std::max<int64_t>(0, p - cfg_.sliding_window + 1) : 0;
      if (static_cast<int64_t>(scores.size()) < group * (p + 1)) {
        scores.resize(static_cast<size_t>(group * (p + 1)));
      }
      kernels::PagedKvView view;
      view.k_base = k0;
      view.v_base = v0;
      view.block_stride = block_stride;
      view.head_offset = kvh * bs * hd;
      view.block_size = bs;
      view.block_table = s.block_table.data();
      view.f16 = f16;
      kernels::AttendHeads(q_.data() + (t * nh + h) * hd, group, hd, view, lo, p, scale,
                           scores.data(), att_.data() + (t * nh + h) * hd);
    }
  };
  if (work < (1 << 15)) {
    items(0, T * nkv);
  } else {
    pool_.ParallelFor(T * nkv, items);
  }
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
  const int64_t H = cfg_.hidden_size, F = cfg_.intermediate_size, hd = cfg_.head_dim;
  const int64_t nh = cfg_.num_heads, nkv = cfg_.num_kv_heads;
  const int64_t qd = nh * hd, kvd = nkv * hd;
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
  // The adapters' low-rank products beside each projection (nothing when no token uses one).
  auto lora = [&](int64_t layer, LoraTarget t, const float* in, int64_t in_dim, float* out,
                  int64_t out_dim) {
    if (lora_->active()) lora_->Apply(layer, t, in, in_dim, out, out_dim, pool_);
  };

  // Embedding lookup: dequantize each token's row (of a packed matrix too, when it is tied to
  // the LM head).
  for (int64_t t = 0; t < T; ++t) {
    kernels::DequantizeMatrixRow(w.token_embedding, batch.tokens[static_cast<size_t>(t)],
                                 x_.data() + t * H);
  }

  auto add_bias = [&](float* y, const std::vector<float>& bias, int64_t dim) {
    if (bias.empty()) return;
    for (int64_t t = 0; t < T; ++t) kernels::Add(y + t * dim, bias.data(), dim);
  };
  auto norm_rows = [&](const float* in, const std::vector<float>& weight, float* out, int64_t rows,
                       int64_t dim) {
    for (int64_t r = 0; r < rows; ++r)
      kernels::RmsNorm(in + r * dim, weight.data(), dim, eps, out + r * dim);
  };

  for (int64_t l = 0; l < cfg_.num_layers; ++l) {
    const LayerWeights& L = w.layers[static_cast<size_t>(l)];
    norm_rows(x_.data(), L.attn_norm, xn_.data(), T, H);
    const kernels::MatMulJob qkv[] = {{&L.wq, xn_.data(), q_.data()},
                                      {&L.wk, xn_.data(), k_.data()},
                                      {&L.wv, xn_.data(), v_.data()}};
    kernels::MatMulMany(qkv, T, pool_);
    lora(l, LoraTarget::kQ, xn_.data(), H, q_.data(), qd);
    lora(l, LoraTarget::kK, xn_.data(), H, k_.data(), kvd);
    lora(l, LoraTarget::kV, xn_.data(), H, v_.data(), kvd);
    add_bias(q_.data(), L.bq, qd);
    add_bias(k_.data(), L.bk, kvd);
    add_bias(v_.data(), L.bv, kvd);
    if (cfg_.qk_norm) {
      norm_rows(q_.data(), L.q_norm, q_.data(), T * nh, hd);
      norm_rows(k_.data(), L.k_norm, k_.data(), T * nkv, hd);
    }
    ApplyRope(q_.data(), T, nh);
    ApplyRope(k_.data(), T, nkv);
    WriteKv(l, batch, kv);
    Attention(l, batch, kv);
    kernels::MatMul(L.wo, att_.data(), T, xn_.data(), pool_);
    lora(l, LoraTarget::kO, att_.data(), qd, xn_.data(), H);
    for (int64_t t = 0; t < T; ++t) kernels::Add(x_.data() + t * H, xn_.data() + t * H, H);

    norm_rows(x_.data(), L.ffn_norm, xn_.data(), T, H);
    const kernels::MatMulJob gate_up[] = {{&L.w_gate, xn_.data(), gate_.data()},
                                          {&L.w_up, xn_.data(), up_.data()}};
    kernels::MatMulMany(gate_up, T, pool_);
    lora(l, LoraTarget::kGate, xn_.data(), H, gate_.data(), F);
    lora(l, LoraTarget::kUp, xn_.data(), H, up_.data(), F);
    for (int64_t t = 0; t < T; ++t) {
      kernels::SiluMul(gate_.data() + t * F, up_.data() + t * F, F, gate_.data() + t * F);
    }
    kernels::MatMul(L.w_down, gate_.data(), T, xn_.data(), pool_);
    lora(l, LoraTarget::kDown, gate_.data(), F, xn_.data(), H);
    for (int64_t t = 0; t < T; ++t) kernels::Add(x_.data() + t * H, xn_.data() + t * H, H);
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
  if (rows > 0) kernels::MatMul(w.lm_head, logits_in_.data(), rows, logits.data(), pool_);

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
