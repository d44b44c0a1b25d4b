// LoadModel: format detection and the three weight layouts (GGUF, HF safetensors, llama2.c).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "core/log.h"
#include "core/thread_pool.h"
#include "kernels/pack.h"
#include "kernels/quant.h"
#include "model/gguf.h"
#include "model/model.h"
#include "model/safetensors.h"

namespace kinfer::model {

namespace fs = std::filesystem;

std::string_view ModelFormatName(ModelFormat f) {
  switch (f) {
    case ModelFormat::kHuggingFace:
      return "huggingface";
    case ModelFormat::kGguf:
      return "gguf";
    case ModelFormat::kLlama2c:
      return "llama2c";
  }
  return "unknown";
}

Model::~Model() = default;

namespace {

// Every matrix of a layer, experts included.
template <typename F>
void ForEachMatrix(const LayerWeights& l, F&& f) {
  for (const TensorView* t :
       {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down, &l.router}) {
    f(*t);
  }
  for (const auto* experts : {&l.expert_gate, &l.expert_up, &l.expert_down}) {
    for (const TensorView& t : *experts) f(t);
  }
}

size_t NumVectorElements(const LayerWeights& l) {
  return l.attn_norm.size() + l.ffn_norm.size() + l.bq.size() + l.bk.size() + l.bv.size() +
         l.q_norm.size() + l.k_norm.size() + l.post_attn_norm.size() + l.post_ffn_norm.size();
}

}  // namespace

size_t Model::weight_bytes() const {
  size_t n = weights_.token_embedding.nbytes;
  if (weights_.lm_head.data != weights_.token_embedding.data) n += weights_.lm_head.nbytes;
  for (const LayerWeights& l : weights_.layers) {
    ForEachMatrix(l, [&](const TensorView& t) { n += t.nbytes; });
    n += 4 * NumVectorElements(l);
  }
  return n + 4 * weights_.final_norm.size();
}

int64_t Model::num_parameters() const {
  int64_t n = weights_.token_embedding.numel();
  if (weights_.lm_head.data != weights_.token_embedding.data) n += weights_.lm_head.numel();
  for (const LayerWeights& l : weights_.layers) {
    ForEachMatrix(l, [&](const TensorView& t) { n += t.empty() ? 0 : t.numel(); });
    n += static_cast<int64_t>(NumVectorElements(l));
  }
  return n + static_cast<int64_t>(weights_.final_norm.size());
}

namespace {

std::string ShapeString(const TensorView& t) {
  std::string s = "[";
  for (int i = 0; i < t.ndim; ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
  return s + "]";
}

// A matrix weight: 2-D [rows, cols] in a type the kernels compute with.
Status CheckMatrix(const TensorView& t, std::string_view file, std::string_view name, int64_t rows,
                   int64_t cols) {
  if (!kernels::IsComputeType(t.dtype)) {
    return UnimplementedError(
        "{}: tensor '{}': type {} is not supported (expected F32, F16, BF16, Q8_0, Q4_0, Q4_1, "
        "Q5_0, Q5_1, Q4_K, Q5_K or Q6_K)",
        file, name, DTypeName(t.dtype));
  }
  if (t.ndim != 2 || t.shape[0] != rows || t.shape[1] != cols) {
    return InvalidArgumentError("{}: tensor '{}': expected shape [{}, {}] from the config, got {}",
                                file, name, rows, cols, ShapeString(t));
  }
  return Status::Ok();
}

// A small 1-D tensor (norm weight, bias, rope factors) converted to f32.
Result<std::vector<float>> VectorF32(const TensorView& t, std::string_view file,
                                     std::string_view name, int64_t n) {
  if (t.numel() != n || t.ndim < 1 || t.cols() != n) {
    return InvalidArgumentError("{}: tensor '{}': expected shape [{}] from the config, got {}",
                                file, name, n, ShapeString(t));
  }
  if (!kernels::IsComputeType(t.dtype)) {
    return UnimplementedError("{}: tensor '{}': type {} is not supported", file, name,
                              DTypeName(t.dtype));
  }
  std::vector<float> v(static_cast<size_t>(n));
  kernels::DequantizeRowRef(t.dtype, t.data, v.data(), n);
  return v;
}

// Rows [begin, begin + rows) of a matrix (a part of a fused q/k/v or gate/up matrix).
TensorView RowSlice(const TensorView& t, int64_t begin, int64_t rows) {
  TensorView s = t;
  s.ndim = 2;
  s.shape = {rows, t.cols(), 0, 0};
  s.data = t.row(begin);
  s.nbytes = static_cast<size_t>(rows) * t.row_bytes();
  return s;
}

// Expert e's [rows, cols] matrix of a stacked [experts, rows, cols] tensor.
TensorView ExpertSlice(const TensorView& t, int64_t e) {
  return RowSlice(t, e * t.shape[1], t.shape[1]);
}

}  // namespace

// Fills a Model from each format; a friend of Model.
class ModelBuilder {
 public:
  // Source-neutral access to named tensors.
  struct TensorSource {
    virtual ~TensorSource() = default;
    // The tensor, or NotFound naming the file and tensor.
    virtual Result<TensorView> Get(const std::string& name) const = 0;
    virtual bool Has(const std::string& name) const = 0;
    virtual std::string file() const = 0;
  };

  static Result<std::unique_ptr<Model>> FromGguf(const std::string& path,
                                                 const LoadOptions& options);
  static Result<std::unique_ptr<Model>> FromHf(const std::string& dir, const LoadOptions& options);
  static Result<std::unique_ptr<Model>> FromLlama2c(const std::string& path);

 private:
  struct Names {
    std::string embed, final_norm, lm_head;
    std::string attn_norm, wq, wk, wv, wo, bq, bk, bv, q_norm, k_norm, ffn_norm, gate, up, down;
  };
  // Family extras; empty where a format has none.
  struct ExtraNames {
    std::string post_attn_norm, post_ffn_norm;  // Gemma
    std::string wqkv, gate_up;                  // Phi-3: fused q/k/v and gate/up (gate first)
    std::string router;                         // mixture of experts
    // Experts: HF names one tensor per expert ("...experts.{1}.w1.weight", {0} the layer);
    // GGUF stacks them ([experts, rows, cols], `experts_stacked`).
    std::string expert_gate, expert_up, expert_down;
    bool experts_stacked = false;
  };
  static Status FillExperts(Model& m, const TensorSource& src, const ExtraNames& names,
                            int64_t layer);
  static Status FillWeights(Model& m, const TensorSource& src, const Names& names,
                            const ExtraNames& extra);
  static void PackWeights(Model& m, const LoadProgressFn& progress);
  // HF Gemma norms scale by (1 + weight); GGUF stores 1 + weight already.
  static void AddOneToNorms(Model& m);
};

namespace {

class GgufSource : public ModelBuilder::TensorSource {
 public:
  explicit GgufSource(const GgufFile& g) : g_(g) {}
  Result<TensorView> Get(const std::string& name) const override {
    const GgufTensorInfo* t = g_.FindTensor(name);
    if (!t) return NotFoundError("{}: missing tensor '{}'", g_.name(), name);
    return t->View();
  }
  bool Has(const std::string& name) const override { return g_.FindTensor(name) != nullptr; }
  std::string file() const override { return g_.name(); }

 private:
  const GgufFile& g_;
};

class SafetensorsSource : public ModelBuilder::TensorSource {
 public:
  SafetensorsSource(const SafetensorsModel& st, std::string dir) : st_(st), dir_(std::move(dir)) {}
  Result<TensorView> Get(const std::string& name) const override {
    std::string file;
    const SafetensorsTensor* t = st_.Find(name, &file);
    if (!t) return NotFoundError("{}: missing tensor '{}'", dir_, name);
    if (!t->supported) {
      return UnimplementedError(
          "{}: tensor '{}': dtype {} is not supported (expected F32, F16 or "
          "BF16)",
          file, name, t->dtype_name);
    }
    if (t->shape.size() > 4) {
      return InvalidArgumentError("{}: tensor '{}': {} dimensions", file, name, t->shape.size());
    }
    return t->View();
  }
  bool Has(const std::string& name) const override { return st_.Find(name) != nullptr; }
  std::string file() const override { return dir_; }

 private:
  const SafetensorsModel& st_;
  std::string dir_;
};

}  // namespace

Status ModelBuilder::FillWeights(Model& m, const TensorSource& src, const Names& n,
                                 const ExtraNames& x) {
  const ModelConfig& c = m.config_;
  ModelWeights& w = m.weights_;
  const std::string file = src.file();
  const int64_t H = c.hidden_size, F = c.intermediate_size, V = c.vocab_size;
  const int64_t qdim = c.num_heads * c.head_dim, kvdim = c.num_kv_heads * c.head_dim;

  KINFER_ASSIGN_OR_RETURN(w.token_embedding, src.Get(n.embed));
  KINFER_RETURN_IF_ERROR(CheckMatrix(w.token_embedding, file, n.embed, V, H));
  KINFER_ASSIGN_OR_RETURN(TensorView fn, src.Get(n.final_norm));
  KINFER_ASSIGN_OR_RETURN(w.final_norm, VectorF32(fn, file, n.final_norm, H));
  if (src.Has(n.lm_head) && !c.tie_word_embeddings) {
    KINFER_ASSIGN_OR_RETURN(w.lm_head, src.Get(n.lm_head));
    KINFER_RETURN_IF_ERROR(CheckMatrix(w.lm_head, file, n.lm_head, V, H));
  } else if (c.tie_word_embeddings) {
    w.lm_head = w.token_embedding;
  } else if (m.pooling_) {
    // An embedding model saved without its LM head: it only ever pools hidden states.
    w.lm_head = TensorView();
  } else {
    return NotFoundError("{}: missing tensor '{}' (the config says embeddings are not tied)", file,
                         n.lm_head);
  }

  auto layer_name = [](const std::string& pattern, int64_t i) {
    return fmt::format(fmt::runtime(pattern), i);
  };
  w.layers.resize(static_cast<size_t>(c.num_layers));
  for (int64_t i = 0; i < c.num_layers; ++i) {
    LayerWeights& L = w.layers[static_cast<size_t>(i)];
    auto matrix = [&](const std::string& pattern, int64_t rows, int64_t cols,
                      TensorView* out) -> Status {
      std::string name = layer_name(pattern, i);
      KINFER_ASSIGN_OR_RETURN(*out, src.Get(name));
      return CheckMatrix(*out, file, name, rows, cols);
    };
    auto vec = [&](const std::string& pattern, int64_t len, std::vector<float>* out) -> Status {
      std::string name = layer_name(pattern, i);
      KINFER_ASSIGN_OR_RETURN(TensorView t, src.Get(name));
      KINFER_ASSIGN_OR_RETURN(*out, VectorF32(t, file, name, len));
      return Status::Ok();
    };
    KINFER_RETURN_IF_ERROR(vec(n.attn_norm, H, &L.attn_norm));
    if (!x.wqkv.empty() && src.Has(layer_name(x.wqkv, i))) {
      TensorView fused;
      KINFER_RETURN_IF_ERROR(matrix(x.wqkv, qdim + 2 * kvdim, H, &fused));
      L.wq = RowSlice(fused, 0, qdim);
      L.wk = RowSlice(fused, qdim, kvdim);
      L.wv = RowSlice(fused, qdim + kvdim, kvdim);
    } else {
      KINFER_RETURN_IF_ERROR(matrix(n.wq, qdim, H, &L.wq));
      KINFER_RETURN_IF_ERROR(matrix(n.wk, kvdim, H, &L.wk));
      KINFER_RETURN_IF_ERROR(matrix(n.wv, kvdim, H, &L.wv));
    }
    KINFER_RETURN_IF_ERROR(matrix(n.wo, H, qdim, &L.wo));
    if (c.attention_bias) {
      KINFER_RETURN_IF_ERROR(vec(n.bq, qdim, &L.bq));
      KINFER_RETURN_IF_ERROR(vec(n.bk, kvdim, &L.bk));
      KINFER_RETURN_IF_ERROR(vec(n.bv, kvdim, &L.bv));
    }
    if (c.qk_norm) {
      KINFER_RETURN_IF_ERROR(vec(n.q_norm, c.head_dim, &L.q_norm));
      KINFER_RETURN_IF_ERROR(vec(n.k_norm, c.head_dim, &L.k_norm));
    }
    KINFER_RETURN_IF_ERROR(vec(n.ffn_norm, H, &L.ffn_norm));
    if (c.post_norms) {
      KINFER_RETURN_IF_ERROR(vec(x.post_attn_norm, H, &L.post_attn_norm));
      KINFER_RETURN_IF_ERROR(vec(x.post_ffn_norm, H, &L.post_ffn_norm));
    }
    if (c.moe.num_experts > 0) {
      KINFER_RETURN_IF_ERROR(FillExperts(m, src, x, i));
    } else if (!x.gate_up.empty() && src.Has(layer_name(x.gate_up, i))) {
      TensorView fused;
      KINFER_RETURN_IF_ERROR(matrix(x.gate_up, 2 * F, H, &fused));
      L.w_gate = RowSlice(fused, 0, F);
      L.w_up = RowSlice(fused, F, F);
    } else {
      KINFER_RETURN_IF_ERROR(matrix(n.gate, F, H, &L.w_gate));
      KINFER_RETURN_IF_ERROR(matrix(n.up, F, H, &L.w_up));
    }
    if (c.moe.num_experts == 0) KINFER_RETURN_IF_ERROR(matrix(n.down, H, F, &L.w_down));
  }
  return Status::Ok();
}

Status ModelBuilder::FillExperts(Model& m, const TensorSource& src, const ExtraNames& n,
                                 int64_t i) {
  const ModelConfig& c = m.config_;
  LayerWeights& L = m.weights_.layers[static_cast<size_t>(i)];
  const std::string file = src.file();
  const int64_t H = c.hidden_size, F = c.moe.expert_intermediate_size, E = c.moe.num_experts;
  const std::string router = fmt::format(fmt::runtime(n.router), i);
  KINFER_ASSIGN_OR_RETURN(L.router, src.Get(router));
  KINFER_RETURN_IF_ERROR(CheckMatrix(L.router, file, router, E, H));
  struct Part {
    const std::string* pattern;
    int64_t rows, cols;
    std::vector<TensorView>* out;
  };
  for (const Part& p :
       {Part{&n.expert_gate, F, H, &L.expert_gate}, Part{&n.expert_up, F, H, &L.expert_up},
        Part{&n.expert_down, H, F, &L.expert_down}}) {
    p.out->resize(static_cast<size_t>(E));
    if (n.experts_stacked) {
      const std::string name = fmt::format(fmt::runtime(*p.pattern), i);
      KINFER_ASSIGN_OR_RETURN(TensorView t, src.Get(name));
      if (t.ndim != 3 || t.shape[0] != E || t.shape[1] != p.rows || t.shape[2] != p.cols) {
        return InvalidArgumentError(
            "{}: tensor '{}': expected shape [{}, {}, {}] from the config, got {}", file, name, E,
            p.rows, p.cols, ShapeString(t));
      }
      for (int64_t e = 0; e < E; ++e) {
        (*p.out)[static_cast<size_t>(e)] = ExpertSlice(t, e);
        KINFER_RETURN_IF_ERROR(
            CheckMatrix((*p.out)[static_cast<size_t>(e)], file, name, p.rows, p.cols));
      }
    } else {
      for (int64_t e = 0; e < E; ++e) {
        const std::string name = fmt::format(fmt::runtime(*p.pattern), i, e);
        KINFER_ASSIGN_OR_RETURN((*p.out)[static_cast<size_t>(e)], src.Get(name));
        KINFER_RETURN_IF_ERROR(
            CheckMatrix((*p.out)[static_cast<size_t>(e)], file, name, p.rows, p.cols));
      }
    }
  }
  return Status::Ok();
}

void ModelBuilder::AddOneToNorms(Model& m) {
  auto add = [](std::vector<float>& v) {
    for (float& x : v) x += 1.0f;
  };
  add(m.weights_.final_norm);
  for (LayerWeights& L : m.weights_.layers) {
    for (auto* v :
         {&L.attn_norm, &L.ffn_norm, &L.q_norm, &L.k_norm, &L.post_attn_norm, &L.post_ffn_norm}) {
      add(*v);
    }
  }
}

namespace {

// Gives back the whole pages of [begin, end) of a read-only file mapping: they leave the
// process's memory and would be read from the file again if touched.
void DropMappedPages(const uint8_t* begin, const uint8_t* end) {
  static const uintptr_t page = static_cast<uintptr_t>(::sysconf(_SC_PAGESIZE));
  const uintptr_t lo = (reinterpret_cast<uintptr_t>(begin) + page - 1) / page * page;
  const uintptr_t hi = reinterpret_cast<uintptr_t>(end) / page * page;
  if (lo < hi) ::madvise(reinterpret_cast<void*>(lo), hi - lo, MADV_DONTNEED);
}

}  // namespace

void ModelBuilder::PackWeights(Model& m, const LoadProgressFn& progress) {
  ModelWeights& w = m.weights_;
  std::vector<TensorView*> todo;  // in the order the packed matrices are kept
  auto add = [&](TensorView& t) {
    if (!t.empty() && kernels::ShouldPack(t)) todo.push_back(&t);
  };
  const bool tied = w.lm_head.data == w.token_embedding.data;
  add(w.lm_head);
  for (LayerWeights& L : w.layers) {
    for (TensorView* t : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) add(*t);
    for (auto* experts : {&L.expert_gate, &L.expert_up, &L.expert_down}) {
      for (TensorView& t : *experts) add(t);
    }
  }
  if (todo.empty()) return;
  int64_t total = 0;
  for (const TensorView* t : todo) total += static_cast<int64_t>(t->nbytes);
  if (progress) progress({"repacking weights", 0, total});
  // Matrices are packed on every core: most of a pack's time is the kernel zeroing the fresh
  // pages it writes (70-80% of a BF16 or F16 Llama-1B load), and each core zeroes the pages it
  // faults in, so that part scales with the cores as the copy itself does.
  std::vector<std::unique_ptr<kernels::PackedMatrix>> packed(todo.size());
  std::atomic<size_t> next{0};
  std::mutex progress_mu;
  int64_t done = 0;
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < todo.size();) {
      packed[i] = kernels::PackMatrix(*todo[i], DropMappedPages);
      std::lock_guard<std::mutex> lk(progress_mu);
      done += static_cast<int64_t>(todo[i]->nbytes);
      if (progress) progress({"repacking weights", done, total});
    }
  };
  const size_t helpers =
      std::min(todo.size(), static_cast<size_t>(std::max(1, DefaultThreadCount()))) - 1;
  std::vector<std::thread> threads;
  for (size_t h = 0; h < helpers; ++h) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();
  for (size_t i = 0; i < todo.size(); ++i) {
    *todo[i] = packed[i]->view();
    m.packed_.push_back(std::move(packed[i]));
  }
  if (tied) w.token_embedding = w.lm_head;
}

Result<std::unique_ptr<Model>> ModelBuilder::FromGguf(const std::string& path,
                                                      const LoadOptions& options) {
  KINFER_ASSIGN_OR_RETURN(auto gguf, GgufFile::Open(path));
  std::unique_ptr<Model> m(new Model());
  m->path_ = path;
  m->format_ = ModelFormat::kGguf;
  KINFER_ASSIGN_OR_RETURN(m->config_, ConfigFromGguf(*gguf));
  Names n{"token_embd.weight",         "output_norm.weight",        "output.weight",
          "blk.{}.attn_norm.weight",   "blk.{}.attn_q.weight",      "blk.{}.attn_k.weight",
          "blk.{}.attn_v.weight",      "blk.{}.attn_output.weight", "blk.{}.attn_q.bias",
          "blk.{}.attn_k.bias",        "blk.{}.attn_v.bias",        "blk.{}.attn_q_norm.weight",
          "blk.{}.attn_k_norm.weight", "blk.{}.ffn_norm.weight",    "blk.{}.ffn_gate.weight",
          "blk.{}.ffn_up.weight",      "blk.{}.ffn_down.weight"};
  ExtraNames x;
  x.post_attn_norm = "blk.{}.post_attention_norm.weight";
  x.post_ffn_norm = "blk.{}.post_ffw_norm.weight";
  x.wqkv = "blk.{}.attn_qkv.weight";
  if (m->config_.architecture == "phi3") x.gate_up = "blk.{}.ffn_up.weight";
  x.router = "blk.{}.ffn_gate_inp.weight";
  x.expert_gate = "blk.{}.ffn_gate_exps.weight";
  x.expert_up = "blk.{}.ffn_up_exps.weight";
  x.expert_down = "blk.{}.ffn_down_exps.weight";
  x.experts_stacked = true;
  KINFER_ASSIGN_OR_RETURN(m->pooling_, PoolingFromGguf(*gguf));
  GgufSource src(*gguf);
  // Phi-3's LongRoPE factors are tensors in GGUF, config fields in HF.
  if (m->config_.rope_scaling.type == RopeScalingType::kLongRope) {
    const int64_t half = m->config_.rope_dim / 2;
    for (auto [name, out] :
         {std::pair{"rope_factors_short.weight", &m->config_.rope_scaling.short_factor},
          std::pair{"rope_factors_long.weight", &m->config_.rope_scaling.long_factor}}) {
      KINFER_ASSIGN_OR_RETURN(TensorView t, src.Get(name));
      KINFER_ASSIGN_OR_RETURN(std::vector<float> v, VectorF32(t, path, name, half));
      out->assign(v.begin(), v.end());
    }
    KINFER_RETURN_IF_ERROR(m->config_.Validate(path));
  }
  KINFER_RETURN_IF_ERROR(FillWeights(*m, src, n, x));
  if (options.pack_weights) PackWeights(*m, options.progress);
  if (const GgufTensorInfo* rf = gguf->FindTensor("rope_freqs.weight")) {
    KINFER_ASSIGN_OR_RETURN(
        m->weights_.rope_freq_factors,
        VectorF32(rf->View(), path, "rope_freqs.weight", m->config_.rope_dim / 2));
  }
  m->gguf_ = std::move(gguf);
  return m;
}

Result<std::unique_ptr<Model>> ModelBuilder::FromHf(const std::string& dir,
                                                    const LoadOptions& options) {
  std::string config_path = (fs::path(dir) / "config.json").string();
  KINFER_ASSIGN_OR_RETURN(std::string text, ReadFileToString(config_path));
  std::unique_ptr<Model> m(new Model());
  m->path_ = dir;
  m->format_ = ModelFormat::kHuggingFace;
  KINFER_ASSIGN_OR_RETURN(m->config_, ParseHfConfig(text, config_path));
  KINFER_ASSIGN_OR_RETURN(m->pooling_, ReadSentenceTransformersConfig(dir, text));
  if (m->pooling_ && m->pooling_->dimension > 0 &&
      m->pooling_->dimension != m->config_.hidden_size) {
    return InvalidArgumentError(
        "{}: word_embedding_dimension {} differs from the model's hidden "
        "size {}",
        m->pooling_->source, m->pooling_->dimension, m->config_.hidden_size);
  }
  KINFER_ASSIGN_OR_RETURN(auto st, SafetensorsModel::Open(dir));
  Names n{"model.embed_tokens.weight",
          "model.norm.weight",
          "lm_head.weight",
          "model.layers.{}.input_layernorm.weight",
          "model.layers.{}.self_attn.q_proj.weight",
          "model.layers.{}.self_attn.k_proj.weight",
          "model.layers.{}.self_attn.v_proj.weight",
          "model.layers.{}.self_attn.o_proj.weight",
          "model.layers.{}.self_attn.q_proj.bias",
          "model.layers.{}.self_attn.k_proj.bias",
          "model.layers.{}.self_attn.v_proj.bias",
          "model.layers.{}.self_attn.q_norm.weight",
          "model.layers.{}.self_attn.k_norm.weight",
          "model.layers.{}.post_attention_layernorm.weight",
          "model.layers.{}.mlp.gate_proj.weight",
          "model.layers.{}.mlp.up_proj.weight",
          "model.layers.{}.mlp.down_proj.weight"};
  const std::string& arch = m->config_.architecture;
  ExtraNames x;
  if (arch == "gemma2" || arch == "gemma3") {
    // Gemma's post_attention_layernorm normalizes the attention output; the FFN's input norm is
    // pre_feedforward_layernorm.
    n.ffn_norm = "model.layers.{}.pre_feedforward_layernorm.weight";
    x.post_attn_norm = "model.layers.{}.post_attention_layernorm.weight";
    x.post_ffn_norm = "model.layers.{}.post_feedforward_layernorm.weight";
  }
  x.wqkv = "model.layers.{}.self_attn.qkv_proj.weight";
  x.gate_up = "model.layers.{}.mlp.gate_up_proj.weight";
  if (arch == "mixtral") {
    x.router = "model.layers.{}.block_sparse_moe.gate.weight";
    x.expert_gate = "model.layers.{}.block_sparse_moe.experts.{}.w1.weight";
    x.expert_up = "model.layers.{}.block_sparse_moe.experts.{}.w3.weight";
    x.expert_down = "model.layers.{}.block_sparse_moe.experts.{}.w2.weight";
  } else {
    x.router = "model.layers.{}.mlp.gate.weight";
    x.expert_gate = "model.layers.{}.mlp.experts.{}.gate_proj.weight";
    x.expert_up = "model.layers.{}.mlp.experts.{}.up_proj.weight";
    x.expert_down = "model.layers.{}.mlp.experts.{}.down_proj.weight";
  }
  // A base model (XxxModel, as sentence-transformers saves one) names its tensors without the
  // "model." prefix of the causal-LM class.
  if (!st->Find(n.embed) && st->Find("embed_tokens.weight")) {
    for (std::string* name : {&n.embed,
                              &n.final_norm,
                              &n.attn_norm,
                              &n.wq,
                              &n.wk,
                              &n.wv,
                              &n.wo,
                              &n.bq,
                              &n.bk,
                              &n.bv,
                              &n.q_norm,
                              &n.k_norm,
                              &n.ffn_norm,
                              &n.gate,
                              &n.up,
                              &n.down,
                              &x.post_attn_norm,
                              &x.post_ffn_norm,
                              &x.wqkv,
                              &x.gate_up,
                              &x.router,
                              &x.expert_gate,
                              &x.expert_up,
                              &x.expert_down}) {
      if (name->starts_with("model.")) *name = name->substr(6);
    }
  }
  SafetensorsSource src(*st, dir);
  KINFER_RETURN_IF_ERROR(FillWeights(*m, src, n, x));
  if (arch == "gemma2" || arch == "gemma3") AddOneToNorms(*m);
  if (options.pack_weights) PackWeights(*m, options.progress);
  m->safetensors_ = std::move(st);
  return m;
}

Result<std::unique_ptr<Model>> ModelBuilder::FromLlama2c(const std::string& path) {
  KINFER_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  const uint8_t* p = file->data();
  const size_t size = file->size();
  int32_t h[7];
  size_t offset = 0;
  bool shared = true;
  uint32_t magic = 0;
  if (size >= 4) std::memcpy(&magic, p, 4);
  if (magic == 0x616b3432u) {  // "ak42": llama2.c export version header
    int32_t version = 0;
    if (size < 256) return DataLossError("{}: truncated llama2.c header", path);
    std::memcpy(&version, p + 4, 4);
    if (version != 1) {
      return UnimplementedError(
          "{}: llama2.c export version {} is not supported (expected the "
          "legacy format or version 1, fp32)",
          path, version);
    }
    std::memcpy(h, p + 8, sizeof(h));
    shared = p[8 + sizeof(h)] != 0;
    offset = 256;
  } else {
    if (size < sizeof(h)) return DataLossError("{}: truncated llama2.c header", path);
    std::memcpy(h, p, sizeof(h));
    shared = h[5] > 0;
    offset = sizeof(h);
  }
  std::unique_ptr<Model> m(new Model());
  m->path_ = path;
  m->format_ = ModelFormat::kLlama2c;
  ModelConfig& c = m->config_;
  c.architecture = "llama";
  c.hidden_size = h[0];
  c.intermediate_size = h[1];
  c.num_layers = h[2];
  c.num_heads = h[3];
  c.num_kv_heads = h[4];
  c.vocab_size = h[5] < 0 ? -static_cast<int64_t>(h[5]) : h[5];
  c.max_position_embeddings = h[6];
  if (c.num_heads <= 0 || c.hidden_size <= 0 || c.hidden_size % c.num_heads != 0) {
    return DataLossError("{}: not a llama2.c checkpoint: header dim={} n_heads={}", path, h[0],
                         h[3]);
  }
  c.head_dim = c.hidden_size / c.num_heads;
  c.rope_dim = c.head_dim;
  c.rope_layout = RopeLayout::kInterleaved;
  c.rope_theta = 10000.0;
  c.rms_norm_eps = 1e-5;
  c.tie_word_embeddings = shared;
  c.bos_token_id = 1;
  c.eos_token_ids = {2};
  KINFER_RETURN_IF_ERROR(c.Validate(path).WithPrefix("llama2.c header"));

  const int64_t H = c.hidden_size, F = c.intermediate_size, V = c.vocab_size, Lc = c.num_layers;
  const int64_t kvdim = c.num_kv_heads * c.head_dim, seq = c.max_position_embeddings;
  // Sections in file order, in floats.
  auto take = [&](int64_t floats, std::string_view what) -> Result<const float*> {
    uint64_t bytes = static_cast<uint64_t>(floats) * 4;
    if (floats < 0 || offset > size || bytes > size - offset) {
      return DataLossError("{}: truncated: '{}' needs {} bytes at offset {}, file has {}", path,
                           what, bytes, offset, size);
    }
    const float* ptr = reinterpret_cast<const float*>(p + offset);
    offset += bytes;
    return ptr;
  };
  auto matrix = [](const float* data, int64_t rows, int64_t cols) {
    TensorView t;
    t.dtype = DType::kF32;
    t.ndim = 2;
    t.shape = {rows, cols, 0, 0};
    t.data = data;
    t.nbytes = static_cast<size_t>(rows * cols) * 4;
    return t;
  };
  ModelWeights& w = m->weights_;
  w.layers.resize(static_cast<size_t>(Lc));
  const float *emb, *rms_att, *wq, *wk, *wv, *wo, *rms_ffn, *w1, *w2, *w3, *rms_final;
  if (offset == 256) {  // version 1 order: norms first
    KINFER_ASSIGN_OR_RETURN(rms_att, take(Lc * H, "rms_att_weight"));
    KINFER_ASSIGN_OR_RETURN(rms_ffn, take(Lc * H, "rms_ffn_weight"));
    KINFER_ASSIGN_OR_RETURN(rms_final, take(H, "rms_final_weight"));
    KINFER_ASSIGN_OR_RETURN(emb, take(V * H, "token_embedding_table"));
    KINFER_ASSIGN_OR_RETURN(wq, take(Lc * H * H, "wq"));
    KINFER_ASSIGN_OR_RETURN(wk, take(Lc * H * kvdim, "wk"));
    KINFER_ASSIGN_OR_RETURN(wv, take(Lc * H * kvdim, "wv"));
    KINFER_ASSIGN_OR_RETURN(wo, take(Lc * H * H, "wo"));
    KINFER_ASSIGN_OR_RETURN(w1, take(Lc * F * H, "w1"));
    KINFER_ASSIGN_OR_RETURN(w2, take(Lc * H * F, "w2"));
    KINFER_ASSIGN_OR_RETURN(w3, take(Lc * F * H, "w3"));
  } else {  // legacy order of run.c
    KINFER_ASSIGN_OR_RETURN(emb, take(V * H, "token_embedding_table"));
    KINFER_ASSIGN_OR_RETURN(rms_att, take(Lc * H, "rms_att_weight"));
    KINFER_ASSIGN_OR_RETURN(wq, take(Lc * H * H, "wq"));
    KINFER_ASSIGN_OR_RETURN(wk, take(Lc * H * kvdim, "wk"));
    KINFER_ASSIGN_OR_RETURN(wv, take(Lc * H * kvdim, "wv"));
    KINFER_ASSIGN_OR_RETURN(wo, take(Lc * H * H, "wo"));
    KINFER_ASSIGN_OR_RETURN(rms_ffn, take(Lc * H, "rms_ffn_weight"));
    KINFER_ASSIGN_OR_RETURN(w1, take(Lc * F * H, "w1"));
    KINFER_ASSIGN_OR_RETURN(w2, take(Lc * H * F, "w2"));
    KINFER_ASSIGN_OR_RETURN(w3, take(Lc * F * H, "w3"));
    KINFER_ASSIGN_OR_RETURN(rms_final, take(H, "rms_final_weight"));
    KINFER_RETURN_IF_ERROR(take(seq * c.head_dim, "freq_cis").status());
  }
  w.token_embedding = matrix(emb, V, H);
  w.final_norm.assign(rms_final, rms_final + H);
  if (shared) {
    w.lm_head = w.token_embedding;
  } else {
    KINFER_ASSIGN_OR_RETURN(const float* wcls, take(V * H, "wcls"));
    w.lm_head = matrix(wcls, V, H);
  }
  for (int64_t l = 0; l < Lc; ++l) {
    LayerWeights& L = w.layers[static_cast<size_t>(l)];
    L.attn_norm.assign(rms_att + l * H, rms_att + (l + 1) * H);
    L.ffn_norm.assign(rms_ffn + l * H, rms_ffn + (l + 1) * H);
    L.wq = matrix(wq + l * H * H, H, H);
    L.wk = matrix(wk + l * H * kvdim, kvdim, H);
    L.wv = matrix(wv + l * H * kvdim, kvdim, H);
    L.wo = matrix(wo + l * H * H, H, H);
    L.w_gate = matrix(w1 + l * F * H, F, H);
    L.w_down = matrix(w2 + l * H * F, H, F);
    L.w_up = matrix(w3 + l * F * H, F, H);
  }
  m->file_ = std::move(file);
  return m;
}

Result<std::unique_ptr<Model>> LoadModel(const std::string& path, const LoadOptions& options) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (fs::exists(fs::path(path) / "config.json", ec)) return ModelBuilder::FromHf(path, options);
    // A directory with a single GGUF file in it (as `kinfer pull` leaves it) is that file.
    std::string gguf;
    int count = 0;
    for (const auto& e : fs::directory_iterator(path, ec)) {
      if (e.path().extension() == ".gguf") {
        gguf = e.path().string();
        ++count;
      }
    }
    if (count == 1) return ModelBuilder::FromGguf(gguf, options);
    return NotFoundError(
        "{}: not a model directory: expected config.json with *.safetensors, or "
        "exactly one .gguf file (found {})",
        path, count);
  }
  if (!fs::exists(path, ec)) return NotFoundError("{}: no such file or directory", path);
  KINFER_ASSIGN_OR_RETURN(auto f, MappedFile::Open(path));
  uint32_t magic = 0;
  if (f->size() >= 4) std::memcpy(&magic, f->data(), 4);
  f.reset();
  if (magic == 0x46554747u) return ModelBuilder::FromGguf(path, options);
  if (fs::path(path).extension() == ".bin") return ModelBuilder::FromLlama2c(path);
  if (fs::path(path).extension() == ".safetensors") {
    return ModelBuilder::FromHf(fs::path(path).parent_path().string(), options);
  }
  return InvalidArgumentError(
      "{}: unknown model format: expected a GGUF file, a llama2.c .bin, or an HF directory", path);
}

}  // namespace kinfer::model
