#include "model/cuda/cuda_backend.h"

#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "core/log.h"
#include "kernels/cuda/attention.h"
#include "kernels/cuda/layer_ops.h"
#include "kernels/cuda/matmul.h"
#include "kernels/pack.h"
#include "model/cuda/support.h"
#include "model/decoder.h"

namespace kinfer::model::cuda {
namespace {

namespace kc = kinfer::kernels::cuda;

Status CudaError(cudaError_t e, std::string_view what) {
  return InternalError("CUDA: {}: {}", what, cudaGetErrorString(e));
}

#define KINFER_CUDA_RETURN(expr, what)    \
  do {                                    \
    const cudaError_t kinfer_e_ = (expr); \
    if (kinfer_e_ != cudaSuccess) {       \
      return CudaError(kinfer_e_, what);  \
    }                                     \
  } while (0)

struct DeviceFree {
  void operator()(void* p) const { cudaFree(p); }
};
struct HostFree {
  void operator()(void* p) const { cudaFreeHost(p); }
};

// Device memory that grows (never shrinks) to the largest size asked for.
class Buffer {
 public:
  Status Reserve(size_t bytes, std::string_view what) {
    if (bytes <= bytes_) return Status::Ok();
    ptr_.reset();
    bytes_ = 0;
    void* p = nullptr;
    const cudaError_t e = cudaMalloc(&p, bytes);
    if (e != cudaSuccess) {
      cudaGetLastError();  // clear the sticky allocation error
      return ResourceExhaustedError("cannot allocate {} MiB of GPU memory for {}: {}",
                                    (bytes + (1 << 20) - 1) >> 20, what, cudaGetErrorString(e));
    }
    ptr_.reset(p);
    bytes_ = bytes;
    return Status::Ok();
  }
  template <typename T>
  T* as() const {
    return static_cast<T*>(ptr_.get());
  }
  size_t bytes() const { return bytes_; }

 private:
  std::unique_ptr<void, DeviceFree> ptr_;
  size_t bytes_ = 0;
};

struct LayerDevice {
  kc::DeviceMatrix wq, wk, wv, wo, gate, up, down;
  const float* attn_norm = nullptr;
  const float* ffn_norm = nullptr;
  const float *bq = nullptr, *bk = nullptr, *bv = nullptr;
  const float *q_norm = nullptr, *k_norm = nullptr;
};

class CudaBackend final : public Backend {
 public:
  CudaBackend(const Model& model, const CudaBackendOptions& options)
      : model_(model), cfg_(model.config()), options_(options) {}
  ~CudaBackend() override {
    DropGraphs();
    if (stream_) cudaStreamDestroy(stream_);
  }

  Status Init();
  std::string Describe() const override { return description_; }
  Result<int64_t> Reserve(int64_t max_tokens) override;
  Status AllocateKvCache(const KvStoreConfig& config, int64_t max_positions) override;
  Status Forward(const ForwardBatch& batch, std::span<float> logits) override;
  void CopyKvSlots(KvBlockGroup group, int32_t src, int32_t dst, int32_t num_slots) override;

 private:
  Result<kc::DeviceMatrix> UploadMatrix(const TensorView& w, const std::string& name);
  Result<const float*> UploadVector(const std::vector<float>& v, const std::string& name);
  Status Grow(int64_t tokens, int64_t logit_rows);
  kc::PagedCache LayerCache(int64_t layer) const;
  // Launches the whole forward pass for T tokens and R logits rows whose step tables are at
  // `meta` (layout in Forward).
  void LaunchLayers(int64_t T, int64_t R, const int32_t* meta);
  // Replays (capturing it first) the graph of a decode-only step of T tokens.
  Status LaunchDecodeGraph(int64_t T);

  const Model& model_;
  const ModelConfig& cfg_;
  CudaBackendOptions options_;
  std::string description_;
  cudaStream_t stream_ = nullptr;
  int sm_count_ = 132;
  size_t max_split_floats_ = 0;  // split-K workspace per token, largest over the matrices

  std::vector<std::unique_ptr<Buffer>> weights_;
  std::unordered_map<const void*, kc::DeviceMatrix> uploaded_;  // by host bytes: tied tensors
  kc::DeviceMatrix embedding_, lm_head_;
  const float* final_norm_ = nullptr;
  std::vector<LayerDevice> layers_;

  KvStoreConfig kv_config_;
  Buffer kv_;
  int64_t max_positions_ = 0;
  Buffer rope_cos_, rope_sin_;

  // Activations, sized for `capacity_` tokens and `logit_capacity_` logits rows.
  int64_t capacity_ = 0, logit_capacity_ = 0;
  Buffer x_, xh_, q_, k_, v_, gate_, up_, attn_, split_, logits_;
  Buffer meta_;  // the step's int32 tables (tokens, positions, block tables, logits rows)
  std::unique_ptr<int32_t, HostFree> host_meta_;
  size_t host_meta_capacity_ = 0;
  Status pending_;  // an error from CopyKvSlots, reported by the next Forward

  // CUDA graphs of decode-only steps, by token count: one launch instead of ~12 per layer. A
  // graph holds the buffers' addresses, so they are dropped when any buffer moves.
  static constexpr int64_t kMaxGraphTokens = 256;
  bool use_graphs_ = true;
  std::vector<const void*> graph_buffers_;
  std::unordered_map<int64_t, cudaGraphExec_t> graphs_;
  void DropGraphs() {
    for (auto& [t, g] : graphs_) cudaGraphExecDestroy(g);
    graphs_.clear();
  }
};

Status CudaBackend::Init() {
  KINFER_CUDA_RETURN(cudaSetDevice(options_.device), "selecting the device");
  cudaDeviceProp prop{};
  KINFER_CUDA_RETURN(cudaGetDeviceProperties(&prop, options_.device), "reading the device");
  description_ = fmt::format("cuda:{} ({}, {} GiB, sm_{}{})", options_.device, prop.name,
                             prop.totalGlobalMem >> 30, prop.major, prop.minor);
  sm_count_ = prop.multiProcessorCount;
  if (prop.major < 7) {
    return FailedPreconditionError("{}: the CUDA backend needs compute capability 7.0 or newer",
                                   description_);
  }
  KINFER_CUDA_RETURN(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking),
                     "creating a stream");
  if (const char* g = std::getenv("KINFER_CUDA_GRAPHS")) use_graphs_ = std::string_view(g) != "0";
  const int64_t group = cfg_.num_kv_heads > 0 ? cfg_.num_heads / cfg_.num_kv_heads : 0;
  // The attention kernel keeps a group's queries, accumulators and a tile of scores in 48 KiB
  // of shared memory.
  const int64_t attention_smem = group * (2 * cfg_.head_dim + 64) * 4;
  if (cfg_.head_dim > 256 || group < 1 || group > 32 || cfg_.num_heads % cfg_.num_kv_heads != 0 ||
      attention_smem > 48 * 1024 || cfg_.rope_dim > cfg_.head_dim || cfg_.rope_dim % 2 != 0) {
    return UnimplementedError(
        "{}: the CUDA backend handles head_dim <= 256 and 1..32 query heads per KV head (at most "
        "48 KiB of attention state); this model has head_dim {}, {} heads, {} KV heads",
        model_.path(), cfg_.head_dim, cfg_.num_heads, cfg_.num_kv_heads);
  }
  const ModelWeights& w = model_.weights();
  KINFER_ASSIGN_OR_RETURN(embedding_, UploadMatrix(w.token_embedding, "token_embd"));
  KINFER_ASSIGN_OR_RETURN(lm_head_, UploadMatrix(w.lm_head, "output"));
  KINFER_ASSIGN_OR_RETURN(final_norm_, UploadVector(w.final_norm, "output_norm"));
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& L = w.layers[l];
    LayerDevice d;
    const std::string p = fmt::format("blk.{}.", l);
    KINFER_ASSIGN_OR_RETURN(d.wq, UploadMatrix(L.wq, p + "attn_q"));
    KINFER_ASSIGN_OR_RETURN(d.wk, UploadMatrix(L.wk, p + "attn_k"));
    KINFER_ASSIGN_OR_RETURN(d.wv, UploadMatrix(L.wv, p + "attn_v"));
    KINFER_ASSIGN_OR_RETURN(d.wo, UploadMatrix(L.wo, p + "attn_output"));
    KINFER_ASSIGN_OR_RETURN(d.gate, UploadMatrix(L.w_gate, p + "ffn_gate"));
    KINFER_ASSIGN_OR_RETURN(d.up, UploadMatrix(L.w_up, p + "ffn_up"));
    KINFER_ASSIGN_OR_RETURN(d.down, UploadMatrix(L.w_down, p + "ffn_down"));
    KINFER_ASSIGN_OR_RETURN(d.attn_norm, UploadVector(L.attn_norm, p + "attn_norm"));
    KINFER_ASSIGN_OR_RETURN(d.ffn_norm, UploadVector(L.ffn_norm, p + "ffn_norm"));
    KINFER_ASSIGN_OR_RETURN(d.bq, UploadVector(L.bq, p + "attn_q.bias"));
    KINFER_ASSIGN_OR_RETURN(d.bk, UploadVector(L.bk, p + "attn_k.bias"));
    KINFER_ASSIGN_OR_RETURN(d.bv, UploadVector(L.bv, p + "attn_v.bias"));
    if (cfg_.qk_norm) {
      KINFER_ASSIGN_OR_RETURN(d.q_norm, UploadVector(L.q_norm, p + "attn_q_norm"));
      KINFER_ASSIGN_OR_RETURN(d.k_norm, UploadVector(L.k_norm, p + "attn_k_norm"));
    }
    layers_.push_back(d);
  }
  KINFER_CUDA_RETURN(cudaStreamSynchronize(stream_), "uploading the weights");
  size_t bytes = 0;
  for (const auto& b : weights_) bytes += b->bytes();
  KINFER_LOG_INFO("{}: {} MiB of weights uploaded", description_, bytes >> 20);
  return Status::Ok();
}

Result<kc::DeviceMatrix> CudaBackend::UploadMatrix(const TensorView& w, const std::string& name) {
  if (auto it = uploaded_.find(w.data); it != uploaded_.end()) return it->second;
  const DType stored = kernels::StoredTypeOf(w.dtype);
  if (!kc::IsSupported(stored)) {
    return UnimplementedError("{}: tensor '{}' is {}, a type the CUDA backend does not read",
                              model_.path(), name, DTypeName(w.dtype));
  }
  const int64_t rows = w.rows(), cols = w.cols();
  const auto row_bytes = RowBytes(stored, cols);
  if (!row_bytes) {
    return InvalidArgumentError("{}: tensor '{}' {} has rows of a partial block", model_.path(),
                                name, w.Describe());
  }
  const size_t bytes = static_cast<size_t>(rows) * *row_bytes;
  auto buf = std::make_unique<Buffer>();
  KINFER_RETURN_IF_ERROR(buf->Reserve(bytes, "weight " + name));
  if (kernels::IsPacked(w.dtype)) {
    // Repacked for the CPU at load: back to the stored block layout, a chunk of rows at a time.
    std::vector<uint8_t> host(std::min<size_t>(bytes, size_t{64} << 20) / *row_bytes * *row_bytes);
    const int64_t chunk = static_cast<int64_t>(host.size() / *row_bytes);
    for (int64_t r0 = 0; r0 < rows; r0 += chunk) {
      const int64_t n = std::min(chunk, rows - r0);
      for (int64_t r = 0; r < n; ++r) kernels::UnpackRow(w, r0 + r, host.data() + r * *row_bytes);
      KINFER_CUDA_RETURN(cudaMemcpy(buf->as<uint8_t>() + r0 * *row_bytes, host.data(),
                                    static_cast<size_t>(n) * *row_bytes, cudaMemcpyHostToDevice),
                         "uploading " + name);
    }
  } else {
    KINFER_CUDA_RETURN(cudaMemcpy(buf->as<uint8_t>(), w.data, bytes, cudaMemcpyHostToDevice),
                       "uploading " + name);
  }
  kc::DeviceMatrix m{stored, rows, cols, *row_bytes, buf->as<uint8_t>()};
  m.splits = kc::MatMulSplits(rows, cols, 2 * sm_count_);
  max_split_floats_ = std::max(max_split_floats_, kc::MatMulWorkspaceFloats(m, 1));
  weights_.push_back(std::move(buf));
  uploaded_[w.data] = m;
  return m;
}

Result<const float*> CudaBackend::UploadVector(const std::vector<float>& v,
                                               const std::string& name) {
  if (v.empty()) return static_cast<const float*>(nullptr);
  auto buf = std::make_unique<Buffer>();
  KINFER_RETURN_IF_ERROR(buf->Reserve(v.size() * sizeof(float), name));
  KINFER_CUDA_RETURN(
      cudaMemcpy(buf->as<float>(), v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice),
      "uploading " + name);
  const float* p = buf->as<float>();
  weights_.push_back(std::move(buf));
  return p;
}

Status CudaBackend::Grow(int64_t tokens, int64_t logit_rows) {
  if (tokens > capacity_) {
    const size_t T = static_cast<size_t>(tokens);
    const size_t H = static_cast<size_t>(cfg_.hidden_size);
    const size_t F = static_cast<size_t>(cfg_.intermediate_size);
    const size_t qd = static_cast<size_t>(cfg_.num_heads * cfg_.head_dim);
    const size_t kvd = static_cast<size_t>(cfg_.num_kv_heads * cfg_.head_dim);
    KINFER_RETURN_IF_ERROR(x_.Reserve(T * H * 4, "activations"));
    KINFER_RETURN_IF_ERROR(xh_.Reserve(T * std::max({H, qd, F}) * 2, "activations"));
    KINFER_RETURN_IF_ERROR(q_.Reserve(T * qd * 4, "activations"));
    KINFER_RETURN_IF_ERROR(k_.Reserve(T * kvd * 4, "activations"));
    KINFER_RETURN_IF_ERROR(v_.Reserve(T * kvd * 4, "activations"));
    KINFER_RETURN_IF_ERROR(gate_.Reserve(T * F * 4, "activations"));
    KINFER_RETURN_IF_ERROR(up_.Reserve(T * F * 4, "activations"));
    KINFER_RETURN_IF_ERROR(
        split_.Reserve(std::max<size_t>(max_split_floats_ * T, 1) * 4, "matmul splits"));
    KINFER_RETURN_IF_ERROR(attn_.Reserve(
        kc::AttentionWorkspaceBytes(tokens, cfg_.num_heads, cfg_.head_dim), "attention splits"));
    capacity_ = tokens;
  }
  if (logit_rows > logit_capacity_) {
    KINFER_RETURN_IF_ERROR(logits_.Reserve(
        static_cast<size_t>(logit_rows) * static_cast<size_t>(cfg_.vocab_size) * 4, "logits"));
    logit_capacity_ = logit_rows;
  }
  return Status::Ok();
}

Result<int64_t> CudaBackend::Reserve(int64_t max_tokens) {
  KINFER_RETURN_IF_ERROR(
      Grow(std::max<int64_t>(max_tokens, 1), std::clamp<int64_t>(max_tokens, 1, 256)));
  size_t free_bytes = 0, total = 0;
  KINFER_CUDA_RETURN(cudaMemGetInfo(&free_bytes, &total), "reading free memory");
  // What this process may still take, less a margin for the driver's and kernels' own needs.
  const int64_t used = static_cast<int64_t>(total - free_bytes);
  const int64_t allowed =
      static_cast<int64_t>(options_.gpu_memory_utilization * static_cast<double>(total));
  const int64_t budget = allowed - used - (int64_t{256} << 20);
  if (budget <= 0) {
    KINFER_LOG_WARN(
        "{}: {} MiB of the GPU's {} MiB are in use and --gpu-memory-utilization {} allows {} MiB: "
        "no room for a KV cache (raise it, or set --kv-cache-memory)",
        description_, used >> 20, total >> 20, options_.gpu_memory_utilization, allowed >> 20);
    return int64_t{1};
  }
  return budget;
}

Status CudaBackend::AllocateKvCache(const KvStoreConfig& config, int64_t max_positions) {
  if (kv_.bytes() > 0) return FailedPreconditionError("the KV cache is already allocated");
  if (config.dtype != DType::kF16 && config.dtype != DType::kF32) {
    return InvalidArgumentError("KV cache dtype must be f16 or f32, got {}",
                                DTypeName(config.dtype));
  }
  if (!config.sliding_layers.empty() || config.num_sliding_blocks > 0) {
    return UnimplementedError(
        "{}: the CUDA backend has no sliding-window block group in its KV cache; use --device cpu",
        model_.path());
  }
  kv_config_ = config;
  KINFER_RETURN_IF_ERROR(kv_.Reserve(KvStore::BytesFor(config), "the KV cache"));
  KINFER_CUDA_RETURN(cudaMemsetAsync(kv_.as<uint8_t>(), 0, kv_.bytes(), stream_),
                     "clearing the KV cache");
  // Rotary tables for every position, computed as the CPU decoder computes them (f64 angles).
  max_positions_ = std::max<int64_t>(max_positions, 1);
  const std::vector<float> inv = RopeInverseFrequencies(cfg_, model_.weights().rope_freq_factors);
  const int64_t half = cfg_.rope_dim / 2;
  std::vector<float> cs(static_cast<size_t>(max_positions_ * half));
  std::vector<float> sn(cs.size());
  for (int64_t p = 0; p < max_positions_; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const double angle =
          static_cast<double>(p) * static_cast<double>(inv[static_cast<size_t>(i)]);
      cs[static_cast<size_t>(p * half + i)] = static_cast<float>(std::cos(angle));
      sn[static_cast<size_t>(p * half + i)] = static_cast<float>(std::sin(angle));
    }
  }
  KINFER_RETURN_IF_ERROR(rope_cos_.Reserve(std::max<size_t>(cs.size(), 1) * 4, "rotary tables"));
  KINFER_RETURN_IF_ERROR(rope_sin_.Reserve(std::max<size_t>(sn.size(), 1) * 4, "rotary tables"));
  KINFER_CUDA_RETURN(
      cudaMemcpy(rope_cos_.as<float>(), cs.data(), cs.size() * 4, cudaMemcpyHostToDevice),
      "uploading rotary tables");
  KINFER_CUDA_RETURN(
      cudaMemcpy(rope_sin_.as<float>(), sn.data(), sn.size() * 4, cudaMemcpyHostToDevice),
      "uploading rotary tables");
  KINFER_CUDA_RETURN(cudaStreamSynchronize(stream_), "allocating the KV cache");
  return Status::Ok();
}

kc::PagedCache CudaBackend::LayerCache(int64_t layer) const {
  const KvStoreConfig& c = kv_config_;
  const int64_t elem = c.dtype == DType::kF32 ? 4 : 2;
  const int64_t layer_block = c.num_kv_heads * c.block_size * c.head_dim;  // elements
  uint8_t* base = kv_.as<uint8_t>();
  kc::PagedCache pc;
  pc.keys = base + (layer * 2 + 0) * c.num_blocks * layer_block * elem;
  pc.values = base + (layer * 2 + 1) * c.num_blocks * layer_block * elem;
  pc.block_stride = layer_block;
  pc.block_size = c.block_size;
  pc.f16 = c.dtype == DType::kF16;
  return pc;
}

void CudaBackend::CopyKvSlots(KvBlockGroup group, int32_t src, int32_t dst, int32_t num_slots) {
  const KvStoreConfig& c = kv_config_;
  if (group != KvBlockGroup::kGlobal) {  // the GPU cache has no sliding-window group
    if (pending_.ok()) pending_ = InternalError("CUDA: a KV copy in a sliding-window group");
    return;
  }
  const size_t elem = c.dtype == DType::kF32 ? 4 : 2;
  const size_t head_bytes = static_cast<size_t>(c.block_size * c.head_dim) * elem;
  const size_t width = static_cast<size_t>(num_slots * c.head_dim) * elem;
  for (int64_t l = 0; l < c.num_layers; ++l) {
    const kc::PagedCache pc = LayerCache(l);
    for (void* base : {pc.keys, pc.values}) {
      auto* b = static_cast<uint8_t*>(base);
      const size_t block_bytes = static_cast<size_t>(pc.block_stride) * elem;
      const cudaError_t e =
          cudaMemcpy2DAsync(b + static_cast<size_t>(dst) * block_bytes, head_bytes,
                            b + static_cast<size_t>(src) * block_bytes, head_bytes, width,
                            static_cast<size_t>(c.num_kv_heads), cudaMemcpyDeviceToDevice, stream_);
      if (e != cudaSuccess && pending_.ok()) pending_ = CudaError(e, "copying a KV block");
    }
  }
}

void CudaBackend::LaunchLayers(int64_t T, int64_t R, const int32_t* d) {
  kc::TokenTables tt;
  tt.pos = d + T;
  tt.lo = d + 2 * T;
  tt.table_off = d + 3 * T;
  tt.tables = d + 4 * T + R;
  const int32_t* d_rows = d + 4 * T;

  const int64_t H = cfg_.hidden_size, F = cfg_.intermediate_size;
  const float eps = static_cast<float>(cfg_.rms_norm_eps);
  float* x = x_.as<float>();
  uint16_t* xh = xh_.as<uint16_t>();
  kc::EmbedRows(embedding_, d, T, x, stream_);
  for (size_t l = 0; l < layers_.size(); ++l) {
    const LayerDevice& L = layers_[l];
    const kc::PagedCache cache = LayerCache(static_cast<int64_t>(l));
    kc::RmsNormRows(x, nullptr, T, H, L.attn_norm, eps, xh, nullptr, stream_);
    kc::MatMul(L.wq, xh, T, q_.as<float>(), false, split_.as<float>(), stream_);
    kc::MatMul(L.wk, xh, T, k_.as<float>(), false, split_.as<float>(), stream_);
    kc::MatMul(L.wv, xh, T, v_.as<float>(), false, split_.as<float>(), stream_);
    kc::QkvParams qp;
    qp.q = q_.as<float>();
    qp.k = k_.as<float>();
    qp.v = v_.as<float>();
    qp.bq = L.bq;
    qp.bk = L.bk;
    qp.bv = L.bv;
    qp.q_norm = L.q_norm;
    qp.k_norm = L.k_norm;
    qp.eps = eps;
    qp.cos = rope_cos_.as<float>();
    qp.sin = rope_sin_.as<float>();
    qp.rot = cfg_.rope_dim;
    qp.interleaved = cfg_.rope_layout == RopeLayout::kInterleaved;
    qp.heads = cfg_.num_heads;
    qp.kv_heads = cfg_.num_kv_heads;
    qp.head_dim = cfg_.head_dim;
    kc::QkvRopeStore(qp, tt, cache, T, stream_);
    kc::AttentionParams ap;
    ap.q = q_.as<float>();
    ap.out16 = xh;
    ap.heads = cfg_.num_heads;
    ap.kv_heads = cfg_.num_kv_heads;
    ap.head_dim = cfg_.head_dim;
    ap.scale = 1.0f / std::sqrt(static_cast<float>(cfg_.head_dim));
    ap.workspace = attn_.as<float>();
    kc::PagedAttention(ap, tt, cache, T, stream_);
    kc::MatMul(L.wo, xh, T, x, true, split_.as<float>(), stream_);
    kc::RmsNormRows(x, nullptr, T, H, L.ffn_norm, eps, xh, nullptr, stream_);
    kc::MatMul(L.gate, xh, T, gate_.as<float>(), false, split_.as<float>(), stream_);
    kc::MatMul(L.up, xh, T, up_.as<float>(), false, split_.as<float>(), stream_);
    kc::SiluMul(gate_.as<float>(), up_.as<float>(), T * F, xh, stream_);
    kc::MatMul(L.down, xh, T, x, true, split_.as<float>(), stream_);
  }
  if (R > 0) {
    kc::RmsNormRows(x, d_rows, R, H, final_norm_, eps, xh, nullptr, stream_);
    kc::MatMul(lm_head_, xh, R, logits_.as<float>(), false, split_.as<float>(), stream_);
  }
}

Status CudaBackend::LaunchDecodeGraph(int64_t T) {
  const std::vector<const void*> buffers = {
      x_.as<void>(),    xh_.as<void>(), q_.as<void>(),      k_.as<void>(),    v_.as<void>(),
      gate_.as<void>(), up_.as<void>(), logits_.as<void>(), meta_.as<void>(), kv_.as<void>()};
  if (buffers != graph_buffers_) {
    DropGraphs();
    graph_buffers_ = buffers;
  }
  auto it = graphs_.find(T);
  if (it == graphs_.end()) {
    cudaGraph_t graph = nullptr;
    KINFER_CUDA_RETURN(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal),
                       "capturing a decode step");
    LaunchLayers(T, T, meta_.as<int32_t>());
    KINFER_CUDA_RETURN(cudaStreamEndCapture(stream_, &graph), "capturing a decode step");
    cudaGraphExec_t exec = nullptr;
    const cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    KINFER_CUDA_RETURN(e, "instantiating a decode graph");
    it = graphs_.emplace(T, exec).first;
  }
  KINFER_CUDA_RETURN(cudaGraphLaunch(it->second, stream_), "launching a decode graph");
  return Status::Ok();
}

Status CudaBackend::Forward(const ForwardBatch& batch, std::span<float> logits) {
  if (kv_.bytes() == 0) return FailedPreconditionError("Forward before AllocateKvCache");
  if (!pending_.ok()) return std::exchange(pending_, Status::Ok());
  // The engine thread may not be the one that created the backend: the device is per thread.
  KINFER_CUDA_RETURN(cudaSetDevice(options_.device), "selecting the device");
  KINFER_RETURN_IF_ERROR(Decoder::Validate(cfg_, batch, kv_config_, logits.size()));
  for (const SequenceInput& s : batch.seqs) {
    if (s.lora)
      return UnimplementedError("LoRA adapters run on the CPU backend only (--device cpu)");
  }
  const int64_t T = static_cast<int64_t>(batch.tokens.size());
  if (T == 0) return Status::Ok();
  const int64_t R = Decoder::NumLogitRows(batch);
  KINFER_RETURN_IF_ERROR(Grow(T, R));

  // The step's tables, laid out as [tokens | pos | lo | table_off | logit_rows | tables].
  int64_t table_entries = 0;
  for (const SequenceInput& s : batch.seqs) {
    const int64_t end = static_cast<int64_t>(s.start_pos) + s.num_tokens;
    if (end > max_positions_) {
      return InvalidArgumentError("position {} is past the {} positions the KV cache was sized for",
                                  end - 1, max_positions_);
    }
    table_entries += (end + kv_config_.block_size - 1) / kv_config_.block_size;
  }
  const size_t ints = static_cast<size_t>(4 * T + R + table_entries);
  if (ints > host_meta_capacity_) {
    void* p = nullptr;
    KINFER_CUDA_RETURN(cudaMallocHost(&p, ints * 2 * sizeof(int32_t)), "pinned step tables");
    host_meta_.reset(static_cast<int32_t*>(p));
    host_meta_capacity_ = ints * 2;
  }
  if (ints * sizeof(int32_t) > meta_.bytes()) {  // geometric: graphs survive growing contexts
    KINFER_RETURN_IF_ERROR(
        meta_.Reserve(std::max(ints * sizeof(int32_t), 2 * meta_.bytes()), "step tables"));
  }
  int32_t* h = host_meta_.get();
  int32_t *h_tok = h, *h_pos = h + T, *h_lo = h + 2 * T, *h_off = h + 3 * T, *h_rows = h + 4 * T,
          *h_tab = h + 4 * T + R;
  std::copy(batch.tokens.begin(), batch.tokens.end(), h_tok);
  {
    int64_t t = 0, r = 0, off = 0;
    for (const SequenceInput& s : batch.seqs) {
      const int64_t end = static_cast<int64_t>(s.start_pos) + s.num_tokens;
      const int64_t blocks = (end + kv_config_.block_size - 1) / kv_config_.block_size;
      std::copy_n(s.block_table.begin(), blocks, h_tab + off);
      for (int32_t i = 0; i < s.num_tokens; ++i, ++t) {
        const int32_t p = s.start_pos + i;
        h_pos[t] = p;
        h_lo[t] = cfg_.sliding_window > 0
                      ? static_cast<int32_t>(std::max<int64_t>(0, p - cfg_.sliding_window + 1))
                      : 0;
        h_off[t] = static_cast<int32_t>(off);
        if (s.logits == LogitsMode::kAll) h_rows[r++] = static_cast<int32_t>(t);
      }
      if (s.logits == LogitsMode::kLast) h_rows[r++] = static_cast<int32_t>(t - 1);
      off += blocks;
    }
  }
  int32_t* d = meta_.as<int32_t>();
  KINFER_CUDA_RETURN(cudaMemcpyAsync(d, h, ints * sizeof(int32_t), cudaMemcpyHostToDevice, stream_),
                     "copying the step tables");
  bool decode_only = use_graphs_ && T <= kMaxGraphTokens;
  for (const SequenceInput& s : batch.seqs) {
    decode_only = decode_only && s.num_tokens == 1 && s.logits == LogitsMode::kLast;
  }
  if (decode_only) {
    KINFER_RETURN_IF_ERROR(LaunchDecodeGraph(T));
  } else {
    LaunchLayers(T, R, d);
  }
  if (R > 0) {
    KINFER_CUDA_RETURN(cudaMemcpyAsync(logits.data(), logits_.as<float>(),
                                       static_cast<size_t>(R * cfg_.vocab_size) * sizeof(float),
                                       cudaMemcpyDeviceToHost, stream_),
                       "copying logits back");
  }
  KINFER_CUDA_RETURN(cudaGetLastError(), "launching the forward pass");
  KINFER_CUDA_RETURN(cudaStreamSynchronize(stream_), "running the forward pass");
  return Status::Ok();
}

}  // namespace

int DeviceCount(std::string* why) {
  int n = 0;
  const cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    cudaGetLastError();
    if (why) *why = fmt::format("no usable CUDA device: {}", cudaGetErrorString(e));
    return 0;
  }
  if (n == 0 && why) *why = "no CUDA device found";
  return n;
}

Result<std::unique_ptr<Backend>> CreateCudaBackend(const Model& model,
                                                   const CudaBackendOptions& options) {
  // Before any upload: a model the kernels do not compute exactly is refused, not run.
  KINFER_RETURN_IF_ERROR(CheckCudaSupport(model));
  auto b = std::make_unique<CudaBackend>(model, options);
  KINFER_RETURN_IF_ERROR(b->Init());
  return std::unique_ptr<Backend>(std::move(b));
}

}  // namespace kinfer::model::cuda
