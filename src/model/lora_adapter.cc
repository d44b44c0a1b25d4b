#include "model/lora_adapter.h"

#include <openssl/evp.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <optional>

#include <fmt/format.h>

#include "core/json.h"
#include "core/log.h"
#include "core/mapped_file.h"
#include "kernels/quant.h"
#include "model/gguf.h"
#include "model/safetensors.h"

namespace kinfer::model {

namespace fs = std::filesystem;

std::string_view LoraTargetName(LoraTarget t) {
  static constexpr std::string_view kNames[] = {"q_proj",    "k_proj",  "v_proj",   "o_proj",
                                                "gate_proj", "up_proj", "down_proj"};
  return kNames[static_cast<size_t>(t)];
}

namespace {

constexpr LoraTarget kAllTargets[] = {LoraTarget::kQ,   LoraTarget::kK,    LoraTarget::kV,
                                      LoraTarget::kO,   LoraTarget::kGate, LoraTarget::kUp,
                                      LoraTarget::kDown};

std::optional<LoraTarget> TargetFromPeftName(std::string_view name) {
  for (LoraTarget t : kAllTargets) {
    if (name == LoraTargetName(t)) return t;
  }
  return std::nullopt;
}

// llama.cpp's tensor names for the same projections.
std::optional<LoraTarget> TargetFromGgufName(std::string_view name) {
  static constexpr std::pair<std::string_view, LoraTarget> kNames[] = {
      {"attn_q", LoraTarget::kQ},      {"attn_k", LoraTarget::kK},      {"attn_v", LoraTarget::kV},
      {"attn_output", LoraTarget::kO}, {"ffn_gate", LoraTarget::kGate}, {"ffn_up", LoraTarget::kUp},
      {"ffn_down", LoraTarget::kDown}};
  for (const auto& [n, t] : kNames) {
    if (name == n) return t;
  }
  return std::nullopt;
}

// Whether `pattern` names module `key` as PEFT matches a plain name: the whole key, or its
// last dot-separated parts.
bool PeftKeyMatches(std::string_view pattern, std::string_view key) {
  if (pattern == key) return true;
  return key.size() > pattern.size() && key.ends_with(pattern) &&
         key[key.size() - pattern.size() - 1] == '.';
}

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new()) { EVP_DigestInit_ex(ctx_, EVP_sha256(), nullptr); }
  ~Sha256() { EVP_MD_CTX_free(ctx_); }
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(std::span<const uint8_t> b) { EVP_DigestUpdate(ctx_, b.data(), b.size()); }
  std::string Hex() {
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_, out, &len);
    std::string s;
    for (unsigned int i = 0; i < len; ++i) s += fmt::format("{:02x}", out[i]);
    return s;
  }

 private:
  EVP_MD_CTX* ctx_;
};

// In and out features of a projection of the base model.
std::pair<int64_t, int64_t> TargetShape(const ModelConfig& c, LoraTarget t) {
  const int64_t H = c.hidden_size, F = c.intermediate_size;
  const int64_t qd = c.num_heads * c.head_dim, kvd = c.num_kv_heads * c.head_dim;
  switch (t) {
    case LoraTarget::kQ:
      return {H, qd};
    case LoraTarget::kK:
    case LoraTarget::kV:
      return {H, kvd};
    case LoraTarget::kO:
      return {qd, H};
    case LoraTarget::kGate:
    case LoraTarget::kUp:
      return {H, F};
    case LoraTarget::kDown:
      return {F, H};
  }
  return {0, 0};
}

std::string ShapeString(const TensorView& t) {
  std::string s = "[";
  for (int i = 0; i < t.ndim; ++i) s += (i ? ", " : "") + std::to_string(t.shape[i]);
  return s + "]";
}

// Where the adapter's q/k output rows pair up for rotation: PEFT adapters follow HF (half
// layout); llama.cpp's converter permutes them to interleaved pairs for arch llama.
RopeLayout GgufLayout(std::string_view arch) {
  return (arch == "qwen2" || arch == "qwen3") ? RopeLayout::kHalf : RopeLayout::kInterleaved;
}

// The row of a head-split projection output in layout `to` that holds row `r` of layout `from`.
// Half layout pairs (i, i + d/2) of each head; interleaved pairs (2i, 2i + 1).
int64_t PermutedRow(int64_t r, int64_t head_dim, RopeLayout from, RopeLayout to) {
  if (from == to) return r;
  const int64_t head = r / head_dim, k = r % head_dim, half = head_dim / 2;
  if (from == RopeLayout::kHalf) {  // (part, i) -> (i, part)
    const int64_t part = k / half, i = k % half;
    return head * head_dim + 2 * i + part;
  }
  const int64_t i = k / 2, part = k % 2;  // interleaved -> half
  return head * head_dim + part * half + i;
}

}  // namespace

Result<PeftLoraConfig> ParsePeftLoraConfig(std::string_view text, const std::string& source) {
  KINFER_ASSIGN_OR_RETURN(Json j, ParseJson(text, source, 32));
  if (!j.is_object()) return InvalidArgumentError("{}: expected a JSON object", source);
  PeftLoraConfig c;
  KINFER_ASSIGN_OR_RETURN(std::string peft_type, JsonString(j, "peft_type", "LORA", source));
  if (peft_type != "LORA") {
    return UnimplementedError("{}: field 'peft_type': '{}' adapters are not supported (only LORA)",
                              source, peft_type);
  }
  KINFER_ASSIGN_OR_RETURN(c.r, JsonInt(j, "r", 8, source));
  if (c.r < 1)
    return InvalidArgumentError("{}: field 'r': must be at least 1, got {}", source, c.r);
  KINFER_ASSIGN_OR_RETURN(c.lora_alpha, JsonDouble(j, "lora_alpha", 8, source));
  if (!std::isfinite(c.lora_alpha)) {
    return InvalidArgumentError("{}: field 'lora_alpha': must be a finite number", source);
  }
  KINFER_ASSIGN_OR_RETURN(c.use_rslora, JsonBool(j, "use_rslora", false, source));
  KINFER_ASSIGN_OR_RETURN(bool dora, JsonBool(j, "use_dora", false, source));
  if (dora) {
    return UnimplementedError(
        "{}: field 'use_dora': DoRA adapters are not supported (their weight-magnitude "
        "normalization cannot stay unmerged); merge it into the base model instead",
        source);
  }
  if (auto m = j.find("modules_to_save");
      m != j.end() && !m->is_null() && !(m->is_array() && m->empty())) {
    return UnimplementedError(
        "{}: field 'modules_to_save': adapters that replace whole modules ({}) are not supported; "
        "only low-rank updates are",
        source, m->dump());
  }
  // Newer PEFT variants that change what the weights mean.
  for (const char* field : {"layer_replication", "trainable_token_indices", "target_parameters",
                            "alora_invocation_tokens", "use_qalora", "use_bdlora"}) {
    auto f = j.find(field);
    if (f == j.end() || f->is_null() || (f->is_boolean() && !f->get<bool>()) ||
        (f->is_array() && f->empty()) || (f->is_object() && f->empty())) {
      continue;
    }
    return UnimplementedError("{}: field '{}': {} is not supported", source, field, f->dump());
  }
  KINFER_ASSIGN_OR_RETURN(std::string bias, JsonString(j, "bias", "none", source));
  if (bias != "none") {
    return UnimplementedError("{}: field 'bias': '{}' is not supported (only \"none\")", source,
                              bias);
  }
  KINFER_ASSIGN_OR_RETURN(bool lora_bias, JsonBool(j, "lora_bias", false, source));
  if (lora_bias) {
    return UnimplementedError("{}: field 'lora_bias': LoRA biases are not supported", source);
  }
  KINFER_ASSIGN_OR_RETURN(bool fan, JsonBool(j, "fan_in_fan_out", false, source));
  if (fan) {
    return UnimplementedError(
        "{}: field 'fan_in_fan_out': true is for Conv1D models (GPT-2), which Kinfer does not "
        "serve",
        source);
  }
  if (auto t = j.find("target_modules"); t != j.end() && !t->is_null()) {
    if (t->is_string()) {
      c.target_modules.push_back(t->get<std::string>());
    } else if (t->is_array()) {
      for (const Json& v : *t) {
        if (!v.is_string()) {
          return InvalidArgumentError("{}: field 'target_modules': expected strings, got {}",
                                      source, JsonTypeName(v));
        }
        c.target_modules.push_back(v.get<std::string>());
      }
    } else {
      return InvalidArgumentError("{}: field 'target_modules': expected a list or a string, got {}",
                                  source, JsonTypeName(*t));
    }
  }
  for (const char* field : {"rank_pattern", "alpha_pattern"}) {
    auto p = j.find(field);
    if (p == j.end() || p->is_null()) continue;
    if (!p->is_object()) {
      return InvalidArgumentError("{}: field '{}': expected an object", source, field);
    }
    for (auto it = p->begin(); it != p->end(); ++it) {
      if (!it.value().is_number()) {
        return InvalidArgumentError("{}: field '{}.{}': expected a number", source, field,
                                    it.key());
      }
      if (std::string_view(field) == "rank_pattern") {
        if (!it.value().is_number_integer() || it.value().get<int64_t>() < 1) {
          return InvalidArgumentError("{}: field 'rank_pattern.{}': expected a positive integer",
                                      source, it.key());
        }
        c.rank_pattern[it.key()] = it.value().get<int64_t>();
      } else {
        c.alpha_pattern[it.key()] = it.value().get<double>();
      }
    }
  }
  KINFER_ASSIGN_OR_RETURN(c.base_model_name_or_path,
                          JsonString(j, "base_model_name_or_path", "", source));
  return c;
}

// Fills a LoraAdapter from either format; a friend of LoraAdapter.
class LoraAdapterBuilder {
 public:
  LoraAdapterBuilder(const Model& base, const LoraLoadOptions& options, std::string path)
      : cfg_(base.config()), options_(options) {
    a_ = std::shared_ptr<LoraAdapter>(new LoraAdapter());
    a_->path_ = std::move(path);
    a_->hidden_size_ = cfg_.hidden_size;
    a_->layers_.resize(static_cast<size_t>(cfg_.num_layers));
  }

  Result<std::shared_ptr<const LoraAdapter>> FromPeftDir();
  Result<std::shared_ptr<const LoraAdapter>> FromPeft(std::string_view config_text,
                                                      std::span<const uint8_t> weights,
                                                      const std::string& config_path,
                                                      const std::string& weights_path);
  Result<std::shared_ptr<const LoraAdapter>> FromGguf(std::span<const uint8_t> bytes);

 private:
  // Checks one projection's A [rank, in] and B [out, rank] against the base and stores A and B^T,
  // B's rows moved from layout `layout` to the base's for q and k.
  Status Add(int64_t layer, LoraTarget t, const TensorView& a, const TensorView& b, float scale,
             const std::string& file, const std::string& a_name, const std::string& b_name,
             RopeLayout layout);
  Status Finish();

  const ModelConfig& cfg_;
  LoraLoadOptions options_;
  std::shared_ptr<LoraAdapter> a_;
};

namespace {

// A copy of `t` in a storage type the LoRA kernels read (F32, F16 or BF16 as stored; any other
// type widened to F32), element i of row r at [r * cols + i].
std::vector<float> ToF32(const TensorView& t) {
  std::vector<float> v(static_cast<size_t>(t.numel()));
  for (int64_t r = 0; r < t.rows(); ++r) {
    kernels::DequantizeRowRef(t.dtype, t.row(r), v.data() + r * t.cols(), t.cols());
  }
  return v;
}

size_t ElemSize(DType t) { return t == DType::kF32 ? 4 : 2; }

}  // namespace

Status LoraAdapterBuilder::Add(int64_t layer, LoraTarget t, const TensorView& a,
                               const TensorView& b, float scale, const std::string& file,
                               const std::string& a_name, const std::string& b_name,
                               RopeLayout layout) {
  if (layer < 0 || layer >= cfg_.num_layers) {
    return InvalidArgumentError(
        "{}: tensor '{}': layer {} does not exist in the base model, which has {} layers (was the "
        "adapter trained for another model?)",
        file, a_name, layer, cfg_.num_layers);
  }
  for (const auto& [view, name] : {std::pair{&a, &a_name}, std::pair{&b, &b_name}}) {
    if (!kernels::IsComputeType(view->dtype)) {
      return UnimplementedError("{}: tensor '{}': type {} is not supported", file, *name,
                                DTypeName(view->dtype));
    }
    if (view->ndim != 2) {
      return InvalidArgumentError("{}: tensor '{}': expected 2 dimensions, got {}", file, *name,
                                  ShapeString(*view));
    }
  }
  const auto [in, out] = TargetShape(cfg_, t);
  const int64_t rank = a.shape[0];
  if (a.shape[1] != in || b.shape[0] != out) {
    return InvalidArgumentError(
        "{}: tensors '{}' {} and '{}' {} do not fit the base model's {} of [{}, {}] (out, in): the "
        "adapter was made for another base model",
        file, a_name, ShapeString(a), b_name, ShapeString(b), LoraTargetName(t), out, in);
  }
  if (b.shape[1] != rank) {
    return InvalidArgumentError("{}: tensors '{}' {} and '{}' {} disagree on the rank", file,
                                a_name, ShapeString(a), b_name, ShapeString(b));
  }
  if (rank > options_.max_rank) {
    return InvalidArgumentError(
        "{}: tensor '{}': rank {} is above --max-lora-rank {}; raise --max-lora-rank", file, a_name,
        rank, options_.max_rank);
  }
  kernels::LoraMatrices& m = a_->layers_[static_cast<size_t>(layer)][static_cast<size_t>(t)];
  if (!m.empty()) {
    return InvalidArgumentError("{}: tensor '{}': layer {} {} is adapted twice", file, a_name,
                                layer, LoraTargetName(t));
  }
  const bool permute = (t == LoraTarget::kQ || t == LoraTarget::kK) && layout != cfg_.rope_layout;
  // A: kept as stored when the kernels read that type.
  const bool keep_a = a.dtype == DType::kF32 || a.dtype == DType::kF16 || a.dtype == DType::kBF16;
  const bool keep_b = b.dtype == DType::kF32 || b.dtype == DType::kF16 || b.dtype == DType::kBF16;
  std::vector<uint8_t> abytes, bbytes;
  DType adt = DType::kF32, bdt = DType::kF32;
  if (keep_a) {
    adt = a.dtype;
    abytes.assign(static_cast<const uint8_t*>(a.data),
                  static_cast<const uint8_t*>(a.data) + rank * in * ElemSize(adt));
  } else {
    std::vector<float> f = ToF32(a);
    abytes.resize(f.size() * 4);
    std::memcpy(abytes.data(), f.data(), abytes.size());
  }
  // B [out, rank] -> B^T [rank, out], rows permuted into the base's rope layout.
  std::vector<float> bf;
  const uint8_t* bsrc = static_cast<const uint8_t*>(b.data);
  if (!keep_b) {
    bf = ToF32(b);
    bsrc = reinterpret_cast<const uint8_t*>(bf.data());
  } else {
    bdt = b.dtype;
  }
  const size_t es = ElemSize(bdt);
  bbytes.resize(static_cast<size_t>(rank * out) * es);
  for (int64_t o = 0; o < out; ++o) {
    const int64_t dst_o = permute ? PermutedRow(o, cfg_.head_dim, layout, cfg_.rope_layout) : o;
    for (int64_t j = 0; j < rank; ++j) {
      std::memcpy(bbytes.data() + static_cast<size_t>(j * out + dst_o) * es,
                  bsrc + static_cast<size_t>(o * rank + j) * es, es);
    }
  }
  a_->bytes_ += abytes.size() + bbytes.size();
  a_->storage_.push_back(std::move(abytes));
  m.a.dtype = adt;
  m.a.ndim = 2;
  m.a.shape = {rank, in, 0, 0};
  m.a.data = a_->storage_.back().data();
  m.a.nbytes = a_->storage_.back().size();
  a_->storage_.push_back(std::move(bbytes));
  m.bt.dtype = bdt;
  m.bt.ndim = 2;
  m.bt.shape = {rank, out, 0, 0};
  m.bt.data = a_->storage_.back().data();
  m.bt.nbytes = a_->storage_.back().size();
  m.scale = scale;
  a_->rank_ = std::max(a_->rank_, static_cast<int32_t>(rank));
  const std::string name(LoraTargetName(t));
  if (std::find(a_->target_names_.begin(), a_->target_names_.end(), name) ==
      a_->target_names_.end()) {
    a_->target_names_.push_back(name);
  }
  return Status::Ok();
}

Status LoraAdapterBuilder::Finish() {
  if (a_->target_names_.empty()) {
    return InvalidArgumentError("{}: the adapter holds no LoRA weights", a_->path_);
  }
  std::sort(a_->target_names_.begin(), a_->target_names_.end(),
            [](const std::string& x, const std::string& y) {
              return *TargetFromPeftName(x) < *TargetFromPeftName(y);
            });
  return Status::Ok();
}

Result<std::shared_ptr<const LoraAdapter>> LoraAdapterBuilder::FromPeftDir() {
  const fs::path dir(a_->path_);
  const std::string config_path = (dir / "adapter_config.json").string();
  const std::string weights_path = (dir / "adapter_model.safetensors").string();
  std::error_code ec;
  if (!fs::exists(config_path, ec)) {
    return NotFoundError("{}: not a PEFT adapter directory: no adapter_config.json", a_->path_);
  }
  if (!fs::exists(weights_path, ec)) {
    if (fs::exists(dir / "adapter_model.bin", ec)) {
      return UnimplementedError(
          "{}: adapter_model.bin (a PyTorch pickle) is not read, for safety; save the adapter "
          "with safe_serialization=True (adapter_model.safetensors)",
          a_->path_);
    }
    return NotFoundError("{}: no adapter_model.safetensors", a_->path_);
  }
  KINFER_ASSIGN_OR_RETURN(std::string config_text, ReadFileToString(config_path));
  KINFER_ASSIGN_OR_RETURN(auto file, MappedFile::Open(weights_path));
  return FromPeft(config_text, file->bytes(), config_path, weights_path);
}

Result<std::shared_ptr<const LoraAdapter>> LoraAdapterBuilder::FromPeft(
    std::string_view config_text, std::span<const uint8_t> weights, const std::string& config_path,
    const std::string& weights_path) {
  KINFER_ASSIGN_OR_RETURN(PeftLoraConfig pc, ParsePeftLoraConfig(config_text, config_path));
  a_->format_ = "peft";

  // Every listed target must be a projection this model has.
  for (const std::string& t : pc.target_modules) {
    if (t == "all-linear") continue;
    const bool regex = t.find_first_of("*+?()[]|\\^$") != std::string::npos;
    if (regex) continue;  // a regular expression: the tensors below say what it matched
    const size_t dot = t.rfind('.');
    const std::string last = dot == std::string::npos ? t : t.substr(dot + 1);
    if (last == "lm_head" || last == "embed_tokens") {
      return UnimplementedError(
          "{}: field 'target_modules': adapting '{}' is not supported (only the attention and MLP "
          "projections)",
          config_path, t);
    }
    if (!TargetFromPeftName(last)) {
      return InvalidArgumentError(
          "{}: field 'target_modules': the base model ({}) has no module '{}'; its projections "
          "are q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj",
          config_path, cfg_.architecture, t);
    }
  }

  KINFER_ASSIGN_OR_RETURN(auto st, SafetensorsFile::Parse(weights, weights_path));
  Sha256 sha;
  sha.Update(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(config_text.data()),
                                      config_text.size()));
  sha.Update(weights);
  a_->content_hash_ = sha.Hex();

  struct Pair {
    const SafetensorsTensor* a = nullptr;
    const SafetensorsTensor* b = nullptr;
    std::string module;
  };
  std::map<std::pair<int64_t, LoraTarget>, Pair> pairs;
  for (const SafetensorsTensor& t : st->tensors()) {
    const std::string& n = t.name;
    if (n.find("lora_magnitude_vector") != std::string::npos) {
      return UnimplementedError("{}: tensor '{}': DoRA adapters are not supported", weights_path,
                                n);
    }
    if (n.find("lora_embedding_") != std::string::npos) {
      return UnimplementedError(
          "{}: tensor '{}': embedding adapters are not supported (only the attention and MLP "
          "projections)",
          weights_path, n);
    }
    const bool is_a = n.ends_with(".lora_A.weight"), is_b = n.ends_with(".lora_B.weight");
    if (!is_a && !is_b) {
      return UnimplementedError(
          "{}: tensor '{}' is not a LoRA A/B weight (modules_to_save and biases are not "
          "supported)",
          weights_path, n);
    }
    std::string module = n.substr(0, n.size() - std::string_view(".lora_A.weight").size());
    if (module.starts_with("base_model.model.")) module = module.substr(17);
    // model.layers.<i>.(self_attn|mlp).<proj>
    const size_t dot = module.rfind('.');
    const std::string proj = dot == std::string::npos ? module : module.substr(dot + 1);
    auto target = TargetFromPeftName(proj);
    const size_t lp = module.find("layers.");
    if (!target || lp == std::string::npos) {
      if (proj == "lm_head" || proj == "embed_tokens") {
        return UnimplementedError(
            "{}: tensor '{}': adapting '{}' is not supported (only the attention and MLP "
            "projections)",
            weights_path, n, proj);
      }
      return InvalidArgumentError("{}: tensor '{}': the base model ({}) has no module '{}'",
                                  weights_path, n, cfg_.architecture, module);
    }
    const char* p = module.c_str() + lp + 7;
    char* end = nullptr;
    const long layer = std::strtol(p, &end, 10);
    if (end == p || *end != '.') {
      return InvalidArgumentError("{}: tensor '{}': cannot read the layer index", weights_path, n);
    }
    if (!t.supported || t.shape.size() != 2) {
      return UnimplementedError(
          "{}: tensor '{}': expected a 2-D F32, F16 or BF16 tensor, got {} {}", weights_path, n,
          t.dtype_name, t.shape.size());
    }
    Pair& pr = pairs[{layer, *target}];
    pr.module = module;
    (is_a ? pr.a : pr.b) = &t;
  }
  for (const auto& [key, pr] : pairs) {
    if (!pr.a || !pr.b) {
      return InvalidArgumentError("{}: module '{}' has lora_{} but no lora_{}", weights_path,
                                  pr.module, pr.a ? "A" : "B", pr.a ? "B" : "A");
    }
    int64_t r = pc.r;
    double alpha = pc.lora_alpha;
    for (const auto& [pat, v] : pc.rank_pattern) {
      if (PeftKeyMatches(pat, pr.module)) r = v;
    }
    for (const auto& [pat, v] : pc.alpha_pattern) {
      if (PeftKeyMatches(pat, pr.module)) alpha = v;
    }
    if (pr.a->shape[0] != r) {
      return InvalidArgumentError(
          "{}: tensor '{}' has rank {} but adapter_config.json says r = {} for this module",
          weights_path, pr.a->name, pr.a->shape[0], r);
    }
    const double rd = static_cast<double>(r);
    const float scale = static_cast<float>(pc.use_rslora ? alpha / std::sqrt(rd) : alpha / rd);
    KINFER_RETURN_IF_ERROR(Add(key.first, key.second, pr.a->View(), pr.b->View(), scale,
                               weights_path, pr.a->name, pr.b->name, RopeLayout::kHalf));
  }
  KINFER_RETURN_IF_ERROR(Finish());
  if (!pc.base_model_name_or_path.empty()) {
    KINFER_LOG_INFO("{}: LoRA for '{}' (checked against this base model's shapes)", a_->path_,
                    pc.base_model_name_or_path);
  }
  return std::shared_ptr<const LoraAdapter>(a_);
}

Result<std::shared_ptr<const LoraAdapter>> LoraAdapterBuilder::FromGguf(
    std::span<const uint8_t> bytes) {
  const std::string& path = a_->path_;
  KINFER_ASSIGN_OR_RETURN(auto g, GgufFile::Parse(bytes, path));
  KINFER_ASSIGN_OR_RETURN(std::string_view type, g->GetString("general.type"));
  if (type != "adapter") {
    return InvalidArgumentError(
        "{}: key 'general.type': '{}', not 'adapter': this is not a LoRA adapter file", path, type);
  }
  KINFER_ASSIGN_OR_RETURN(std::string_view atype, g->GetString("adapter.type"));
  if (atype != "lora") {
    return UnimplementedError("{}: key 'adapter.type': '{}' adapters are not supported (only lora)",
                              path, atype);
  }
  KINFER_ASSIGN_OR_RETURN(std::string_view arch, g->GetString("general.architecture"));
  // GGUF writes Mistral as arch llama.
  const std::string base_arch = cfg_.architecture == "mistral" ? "llama" : cfg_.architecture;
  if (arch != base_arch) {
    return InvalidArgumentError(
        "{}: key 'general.architecture': the adapter is for '{}' but the base model is '{}'", path,
        arch, cfg_.architecture);
  }
  double alpha = 0;
  if (g->Has("adapter.lora.alpha")) {
    KINFER_ASSIGN_OR_RETURN(alpha, g->GetFloat("adapter.lora.alpha"));
  }
  a_->format_ = "gguf";
  Sha256 sha;
  sha.Update(bytes);
  a_->content_hash_ = sha.Hex();

  struct Pair {
    const GgufTensorInfo* a = nullptr;
    const GgufTensorInfo* b = nullptr;
  };
  std::map<std::pair<int64_t, LoraTarget>, Pair> pairs;
  for (const GgufTensorInfo& t : g->tensors()) {
    const std::string& n = t.name;
    const bool is_a = n.ends_with(".weight.lora_a"), is_b = n.ends_with(".weight.lora_b");
    if (!is_a && !is_b) {
      return UnimplementedError("{}: tensor '{}' is not a LoRA A/B weight", path, n);
    }
    const std::string module = n.substr(0, n.size() - std::string_view(".weight.lora_a").size());
    if (!module.starts_with("blk.")) {
      return UnimplementedError(
          "{}: tensor '{}': adapting '{}' is not supported (only the attention and MLP "
          "projections)",
          path, n, module);
    }
    const char* p = module.c_str() + 4;
    char* end = nullptr;
    const long layer = std::strtol(p, &end, 10);
    if (end == p || *end != '.') {
      return InvalidArgumentError("{}: tensor '{}': cannot read the layer index", path, n);
    }
    auto target = TargetFromGgufName(end + 1);
    if (!target) {
      return InvalidArgumentError("{}: tensor '{}': the base model ({}) has no module '{}'", path,
                                  n, cfg_.architecture, end + 1);
    }
    Pair& pr = pairs[{layer, *target}];
    (is_a ? pr.a : pr.b) = &t;
  }
  for (const auto& [key, pr] : pairs) {
    if (!pr.a || !pr.b) {
      const GgufTensorInfo* has = pr.a ? pr.a : pr.b;
      return InvalidArgumentError("{}: tensor '{}' has no {} partner", path, has->name,
                                  pr.a ? "lora_b" : "lora_a");
    }
    const TensorView av = pr.a->View(), bv = pr.b->View();
    const int64_t rank = av.ndim == 2 ? av.shape[0] : 0;
    // llama.cpp: alpha / rank, or 1 when the file gives no alpha.
    const float scale =
        alpha != 0 && rank > 0 ? static_cast<float>(alpha / static_cast<double>(rank)) : 1.0f;
    KINFER_RETURN_IF_ERROR(
        Add(key.first, key.second, av, bv, scale, path, pr.a->name, pr.b->name, GgufLayout(arch)));
  }
  KINFER_RETURN_IF_ERROR(Finish());
  return std::shared_ptr<const LoraAdapter>(a_);
}

Result<std::shared_ptr<const LoraAdapter>> LoadLoraAdapter(const std::string& path,
                                                           const Model& base,
                                                           const LoraLoadOptions& options) {
  std::error_code ec;
  LoraAdapterBuilder b(base, options, path);
  if (fs::is_directory(path, ec)) return b.FromPeftDir();
  if (!fs::exists(path, ec)) return NotFoundError("{}: no such file or directory", path);
  if (fs::path(path).filename() == "adapter_config.json" ||
      fs::path(path).filename() == "adapter_model.safetensors") {
    LoraAdapterBuilder d(base, options, fs::path(path).parent_path().string());
    return d.FromPeftDir();
  }
  KINFER_ASSIGN_OR_RETURN(auto file, MappedFile::Open(path));
  return b.FromGguf(file->bytes());
}

Result<std::shared_ptr<const LoraAdapter>> ParsePeftLoraAdapter(
    std::string_view config_text, std::span<const uint8_t> safetensors, const std::string& name,
    const Model& base, const LoraLoadOptions& options) {
  LoraAdapterBuilder b(base, options, name);
  return b.FromPeft(config_text, safetensors, name + "/adapter_config.json",
                    name + "/adapter_model.safetensors");
}

Result<std::shared_ptr<const LoraAdapter>> ParseGgufLoraAdapter(std::span<const uint8_t> gguf,
                                                                const std::string& name,
                                                                const Model& base,
                                                                const LoraLoadOptions& options) {
  LoraAdapterBuilder b(base, options, name);
  return b.FromGguf(gguf);
}

}  // namespace kinfer::model
