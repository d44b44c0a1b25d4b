#include "model/config.h"

#include <fmt/format.h>

#include <cmath>

#include "core/json.h"
#include "model/gguf.h"

namespace kinfer::model {
namespace {

struct FamilyInfo {
  std::string_view hf_class;
  std::string_view model_type;
  std::string_view name;  // ModelConfig::architecture
  bool attention_bias;    // default when config.json does not say
  bool qk_norm;
};

constexpr FamilyInfo kFamilies[] = {
    {"LlamaForCausalLM", "llama", "llama", false, false},
    {"MistralForCausalLM", "mistral", "mistral", false, false},
    {"Qwen2ForCausalLM", "qwen2", "qwen2", true, false},
    {"Qwen3ForCausalLM", "qwen3", "qwen3", false, true},
    {"Gemma2ForCausalLM", "gemma2", "gemma2", false, false},
    {"Gemma3ForCausalLM", "gemma3_text", "gemma3", false, true},
    {"Phi3ForCausalLM", "phi3", "phi3", false, false},
    {"Qwen3MoeForCausalLM", "qwen3_moe", "qwen3moe", false, true},
    {"MixtralForCausalLM", "mixtral", "mixtral", false, false},
    // The same decoders saved without their LM head (sentence-transformers embedding models).
    {"LlamaModel", "llama", "llama", false, false},
    {"MistralModel", "mistral", "mistral", false, false},
    {"Qwen2Model", "qwen2", "qwen2", true, false},
    {"Qwen3Model", "qwen3", "qwen3", false, true},
};

constexpr std::string_view kSupportedHf =
    "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma2ForCausalLM, "
    "Gemma3ForCausalLM, Phi3ForCausalLM, Qwen3MoeForCausalLM, MixtralForCausalLM (and LlamaModel, "
    "MistralModel, Qwen2Model, Qwen3Model: the same without the LM head, for embeddings)";
constexpr std::string_view kSupportedGguf =
    "llama, mistral, qwen2, qwen3, gemma2, gemma3, phi3, qwen3moe";

bool IsGemma(std::string_view arch) { return arch == "gemma2" || arch == "gemma3"; }

Result<std::vector<double>> JsonDoubles(const Json& j, const char* key, const std::string& where) {
  std::vector<double> out;
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return out;
  if (!it->is_array()) {
    return InvalidArgumentError("{}: field '{}': expected a list of numbers", where, key);
  }
  for (const Json& e : *it) {
    if (!e.is_number()) {
      return InvalidArgumentError("{}: field '{}': expected a list of numbers", where, key);
    }
    out.push_back(e.get<double>());
  }
  return out;
}

Status ParseRopeScaling(const Json& rs, const std::string& where, RopeScaling* out) {
  KINFER_ASSIGN_OR_RETURN(auto type, JsonOptString(rs, "rope_type", where));
  if (!type) {
    KINFER_ASSIGN_OR_RETURN(type, JsonOptString(rs, "type", where));
  }
  std::string t = type.value_or("default");
  if (t == "default" || t == "none") {
    out->type = RopeScalingType::kNone;
    return Status::Ok();
  }
  KINFER_ASSIGN_OR_RETURN(out->factor, JsonDouble(rs, "factor", 1.0, where));
  if (!(out->factor > 0)) {
    return InvalidArgumentError("{}: field 'factor': expected a positive number", where);
  }
  if (t == "linear") {
    out->type = RopeScalingType::kLinear;
    return Status::Ok();
  }
  if (t == "longrope" || t == "su") {
    out->type = RopeScalingType::kLongRope;
    KINFER_ASSIGN_OR_RETURN(out->short_factor, JsonDoubles(rs, "short_factor", where));
    KINFER_ASSIGN_OR_RETURN(out->long_factor, JsonDoubles(rs, "long_factor", where));
    KINFER_ASSIGN_OR_RETURN(out->attention_factor, JsonDouble(rs, "attention_factor", 0.0, where));
    if (out->short_factor.empty() || out->short_factor.size() != out->long_factor.size()) {
      return InvalidArgumentError(
          "{}: longrope needs 'short_factor' and 'long_factor' lists of the same length", where);
    }
    return Status::Ok();
  }
  if (t == "llama3") {
    out->type = RopeScalingType::kLlama3;
    KINFER_ASSIGN_OR_RETURN(out->low_freq_factor, JsonDouble(rs, "low_freq_factor", 1.0, where));
    KINFER_ASSIGN_OR_RETURN(out->high_freq_factor, JsonDouble(rs, "high_freq_factor", 4.0, where));
    KINFER_ASSIGN_OR_RETURN(out->original_max_position_embeddings,
                            JsonInt(rs, "original_max_position_embeddings", 8192, where));
    if (out->high_freq_factor <= out->low_freq_factor) {
      return InvalidArgumentError(
          "{}: llama3 rope scaling needs high_freq_factor > low_freq_factor, got {} and {}", where,
          out->high_freq_factor, out->low_freq_factor);
    }
    return Status::Ok();
  }
  return UnimplementedError(
      "{}: rope scaling type '{}' is not supported (supported: linear, llama3, longrope)", where,
      t);
}

// The most layers a config may declare: far more than any released model has (~130), few enough
// that the per-layer tables sized from the count (sliding layers, weights) cost nothing. A count
// past it is a corrupt or hostile file, refused before anything is sized from it: a GGUF that
// claimed 2^32 Gemma layers spent half a minute filling their sliding-layer table.
constexpr int64_t kMaxLayers = 4096;

Status CheckLayerCount(int64_t n, const std::string& source, std::string_view field) {
  if (n <= 0 || n > kMaxLayers) {
    return InvalidArgumentError("{}: {} says {} layers; a model has 1 to {}", source, field, n,
                                kMaxLayers);
  }
  return Status::Ok();
}

}  // namespace

Status ModelConfig::Validate(const std::string& source) const {
  auto positive = [&](int64_t v, std::string_view name) -> Status {
    if (v <= 0 || v > (int64_t{1} << 32)) {
      return InvalidArgumentError("{}: {} must be a positive size, got {}", source, name, v);
    }
    return Status::Ok();
  };
  KINFER_RETURN_IF_ERROR(positive(hidden_size, "hidden size"));
  KINFER_RETURN_IF_ERROR(positive(intermediate_size, "intermediate size"));
  KINFER_RETURN_IF_ERROR(CheckLayerCount(num_layers, source, "the config"));
  KINFER_RETURN_IF_ERROR(positive(num_heads, "number of attention heads"));
  KINFER_RETURN_IF_ERROR(positive(num_kv_heads, "number of key/value heads"));
  KINFER_RETURN_IF_ERROR(positive(head_dim, "head dimension"));
  KINFER_RETURN_IF_ERROR(positive(vocab_size, "vocabulary size"));
  if (num_heads % num_kv_heads != 0) {
    return InvalidArgumentError("{}: {} attention heads are not a multiple of {} key/value heads",
                                source, num_heads, num_kv_heads);
  }
  if (head_dim % 2 != 0 || rope_dim % 2 != 0 || rope_dim <= 0 || rope_dim > head_dim) {
    return InvalidArgumentError("{}: rope dimension {} must be even and at most head_dim {}",
                                source, rope_dim, head_dim);
  }
  if (!(rms_norm_eps > 0) || !(rope_theta > 0)) {
    return InvalidArgumentError("{}: rms_norm_eps and rope_theta must be positive", source);
  }
  if (!sliding_layers.empty() && static_cast<int64_t>(sliding_layers.size()) != num_layers) {
    return InvalidArgumentError("{}: {} layer types for {} layers", source, sliding_layers.size(),
                                num_layers);
  }
  if (sliding_window < 0 || attn_logit_softcap < 0 || final_logit_softcap < 0 ||
      attention_scale < 0) {
    return InvalidArgumentError(
        "{}: sliding window, soft-capping and attention scale must not be negative", source);
  }
  // GGUF's LongRoPE factors are tensors: checked once the loader has read them.
  if (rope_scaling.type == RopeScalingType::kLongRope && !rope_scaling.short_factor.empty()) {
    const size_t half = static_cast<size_t>(rope_dim / 2);
    if (rope_scaling.short_factor.size() != half || rope_scaling.long_factor.size() != half) {
      return InvalidArgumentError(
          "{}: longrope factors: expected {} values each (rope dimension / 2), got {} and {}",
          source, half, rope_scaling.short_factor.size(), rope_scaling.long_factor.size());
    }
  }
  if (moe.num_experts > 0) {
    if (moe.num_experts > 4096 || moe.num_experts_used <= 0 ||
        moe.num_experts_used > moe.num_experts) {
      return InvalidArgumentError("{}: {} experts used per token out of {}", source,
                                  moe.num_experts_used, moe.num_experts);
    }
    KINFER_RETURN_IF_ERROR(positive(moe.expert_intermediate_size, "expert intermediate size"));
  }
  return Status::Ok();
}

double ModelConfig::QueryScale() const {
  return attention_scale > 0 ? attention_scale : 1.0 / std::sqrt(static_cast<double>(head_dim));
}

std::string ModelConfig::Summary() const {
  std::string s =
      fmt::format("{}: {} layers, hidden {}, heads {}/{} x {}, ffn {}, vocab {}, rope theta {}",
                  architecture, num_layers, hidden_size, num_heads, num_kv_heads, head_dim,
                  intermediate_size, vocab_size, rope_theta);
  if (moe.num_experts > 0) {
    s += fmt::format(", experts {} (top {}) x ffn {}", moe.num_experts, moe.num_experts_used,
                     moe.expert_intermediate_size);
  }
  if (sliding_window > 0) {
    int64_t n = 0;
    for (int64_t l = 0; l < num_layers; ++l) n += IsSlidingLayer(l);
    s += fmt::format(", sliding window {} on {}/{} layers", sliding_window, n, num_layers);
  }
  return s;
}

namespace {

// Gemma 2/3: the layer types (sliding or full attention), query scale, soft-capping, and for
// Gemma 3 the rope base of the sliding layers. `rope_parameters` of transformers 5 holds one
// entry per layer type; transformers 4 has `rope_local_base_freq` beside `rope_theta`.
Status ParseGemma(const Json& j, const std::string& path, ModelConfig& c) {
  c.embedding_scale = std::sqrt(static_cast<double>(c.hidden_size));
  c.post_norms = true;
  KINFER_ASSIGN_OR_RETURN(
      double qpas, JsonDouble(j, "query_pre_attn_scalar", static_cast<double>(c.head_dim), path));
  if (!(qpas > 0)) {
    return InvalidArgumentError("{}: field 'query_pre_attn_scalar' must be positive", path);
  }
  c.attention_scale = 1.0 / std::sqrt(qpas);
  for (auto [key, out] : {std::pair{"attn_logit_softcapping", &c.attn_logit_softcap},
                          std::pair{"final_logit_softcapping", &c.final_logit_softcap}}) {
    if (auto it = j.find(key); it != j.end() && !it->is_null()) {
      KINFER_ASSIGN_OR_RETURN(*out, JsonDouble(j, key, 0.0, path));
    }
  }
  if (auto it = j.find("sliding_window"); it != j.end() && !it->is_null()) {
    KINFER_ASSIGN_OR_RETURN(c.sliding_window, JsonInt(j, "sliding_window", 0, path));
  }
  c.sliding_layers.assign(static_cast<size_t>(c.num_layers), false);
  if (auto it = j.find("layer_types"); it != j.end() && it->is_array()) {
    if (static_cast<int64_t>(it->size()) != c.num_layers) {
      return InvalidArgumentError("{}: field 'layer_types': {} entries for {} layers", path,
                                  it->size(), c.num_layers);
    }
    for (size_t l = 0; l < it->size(); ++l) {
      const Json& t = (*it)[l];
      if (!t.is_string() || (t != "sliding_attention" && t != "full_attention")) {
        return InvalidArgumentError(
            "{}: field 'layer_types': expected 'sliding_attention' or 'full_attention'", path);
      }
      c.sliding_layers[l] = t == "sliding_attention";
    }
  } else {
    // Gemma 2 alternates (sliding first); Gemma 3 has five sliding layers to a global one.
    int64_t pattern = c.architecture == "gemma2" ? 2 : 6;
    for (const char* key : {"sliding_window_pattern", "_sliding_window_pattern"}) {
      KINFER_ASSIGN_OR_RETURN(pattern, JsonInt(j, key, pattern, path));
    }
    if (pattern <= 0)
      return InvalidArgumentError("{}: sliding_window_pattern must be positive", path);
    for (int64_t l = 0; l < c.num_layers; ++l) {
      c.sliding_layers[static_cast<size_t>(l)] = (l + 1) % pattern != 0;
    }
  }
  if (c.sliding_window <= 0) c.sliding_layers.clear();

  // Rope: per layer type (transformers 5) or rope_theta / rope_local_base_freq / rope_scaling.
  if (auto it = j.find("rope_parameters");
      it != j.end() && it->is_object() && it->contains("full_attention")) {
    const Json& full = (*it)["full_attention"];
    std::string where = path + ": rope_parameters.full_attention";
    if (!full.is_object()) return InvalidArgumentError("{}: expected an object", where);
    KINFER_ASSIGN_OR_RETURN(c.rope_theta, JsonDouble(full, "rope_theta", 1e6, where));
    KINFER_RETURN_IF_ERROR(ParseRopeScaling(full, where, &c.rope_scaling));
    if (auto sl = it->find("sliding_attention"); sl != it->end() && sl->is_object()) {
      std::string swhere = path + ": rope_parameters.sliding_attention";
      KINFER_ASSIGN_OR_RETURN(c.rope_theta_sliding, JsonDouble(*sl, "rope_theta", 1e4, swhere));
      RopeScaling local;
      KINFER_RETURN_IF_ERROR(ParseRopeScaling(*sl, swhere, &local));
      if (local.type != RopeScalingType::kNone) {
        return UnimplementedError("{}: rope scaling on sliding layers is not supported", swhere);
      }
    }
  } else if (c.architecture == "gemma3") {
    KINFER_ASSIGN_OR_RETURN(c.rope_theta_sliding, JsonDouble(j, "rope_local_base_freq", 1e4, path));
  }
  return Status::Ok();
}

// Qwen3-MoE and Mixtral: expert count, experts per token, expert width, weight normalization.
Status ParseMoe(const Json& j, const std::string& path, ModelConfig& c) {
  MoeConfig& m = c.moe;
  const char* count_key = j.contains("num_experts") ? "num_experts" : "num_local_experts";
  KINFER_ASSIGN_OR_RETURN(m.num_experts, JsonInt(j, count_key, path));
  KINFER_ASSIGN_OR_RETURN(m.num_experts_used, JsonInt(j, "num_experts_per_tok", path));
  if (c.architecture == "mixtral") {
    m.expert_intermediate_size = c.intermediate_size;
    m.normalize_weights = true;
    return Status::Ok();
  }
  KINFER_ASSIGN_OR_RETURN(m.expert_intermediate_size, JsonInt(j, "moe_intermediate_size", path));
  KINFER_ASSIGN_OR_RETURN(m.normalize_weights, JsonBool(j, "norm_topk_prob", false, path));
  KINFER_ASSIGN_OR_RETURN(int64_t step, JsonInt(j, "decoder_sparse_step", 1, path));
  bool dense_layers = false;
  if (auto it = j.find("mlp_only_layers"); it != j.end() && it->is_array()) {
    dense_layers = !it->empty();
  }
  if (step != 1 || dense_layers) {
    return UnimplementedError(
        "{}: dense layers among the expert layers (decoder_sparse_step {}, mlp_only_layers) are "
        "not supported",
        path, step);
  }
  return Status::Ok();
}

}  // namespace

Result<ModelConfig> ParseHfConfig(const std::string& json_text, const std::string& path) {
  KINFER_ASSIGN_OR_RETURN(Json j, ParseJson(json_text, path));
  if (!j.is_object()) return InvalidArgumentError("{}: expected a JSON object", path);
  ModelConfig c;

  std::string hf_class;
  if (auto it = j.find("architectures");
      it != j.end() && it->is_array() && !it->empty() && (*it)[0].is_string()) {
    hf_class = (*it)[0].get<std::string>();
  }
  KINFER_ASSIGN_OR_RETURN(std::string model_type, JsonString(j, "model_type", "", path));
  const FamilyInfo* family = nullptr;
  for (const FamilyInfo& f : kFamilies) {
    if ((!hf_class.empty() && f.hf_class == hf_class) ||
        (hf_class.empty() && f.model_type == model_type && !family)) {
      family = &f;
    }
  }
  if (!family) {
    return UnimplementedError(
        "{}: architecture '{}' (model_type '{}') is not supported; supported: {}", path, hf_class,
        model_type, kSupportedHf);
  }
  c.architecture = std::string(family->name);
  const bool gemma = IsGemma(c.architecture);

  KINFER_ASSIGN_OR_RETURN(c.hidden_size, JsonInt(j, "hidden_size", path));
  KINFER_ASSIGN_OR_RETURN(c.intermediate_size, JsonInt(j, "intermediate_size", path));
  KINFER_ASSIGN_OR_RETURN(c.num_layers, JsonInt(j, "num_hidden_layers", path));
  KINFER_RETURN_IF_ERROR(CheckLayerCount(c.num_layers, path, "field 'num_hidden_layers'"));
  KINFER_ASSIGN_OR_RETURN(c.num_heads, JsonInt(j, "num_attention_heads", path));
  KINFER_ASSIGN_OR_RETURN(c.num_kv_heads, JsonInt(j, "num_key_value_heads", c.num_heads, path));
  if (c.num_heads <= 0) {
    return InvalidArgumentError("{}: field 'num_attention_heads' must be positive", path);
  }
  if (auto it = j.find("head_dim"); it != j.end() && !it->is_null()) {
    KINFER_ASSIGN_OR_RETURN(c.head_dim, JsonInt(j, "head_dim", path));
  } else {
    c.head_dim = c.hidden_size / c.num_heads;
  }
  KINFER_ASSIGN_OR_RETURN(c.vocab_size, JsonInt(j, "vocab_size", path));
  KINFER_ASSIGN_OR_RETURN(c.max_position_embeddings,
                          JsonInt(j, "max_position_embeddings", 4096, path));
  KINFER_ASSIGN_OR_RETURN(c.rms_norm_eps, JsonDouble(j, "rms_norm_eps", 1e-6, path));
  KINFER_ASSIGN_OR_RETURN(c.tie_word_embeddings, JsonBool(j, "tie_word_embeddings", gemma, path));
  KINFER_ASSIGN_OR_RETURN(c.attention_bias,
                          JsonBool(j, "attention_bias", family->attention_bias, path));
  if (c.architecture == "qwen2") c.attention_bias = true;  // Qwen2 always has q/k/v biases
  if (c.architecture == "phi3") c.attention_bias = false;  // Phi-3 has none
  c.qk_norm = family->qk_norm;
  // Gemma names the activation `hidden_activation` (older configs `hidden_act`).
  std::string act_key =
      gemma && j.contains("hidden_activation") ? "hidden_activation" : "hidden_act";
  KINFER_ASSIGN_OR_RETURN(std::string act, JsonString(j, act_key.c_str(), "silu", path));
  if (act == "silu" || act == "swish") {
    c.ffn_activation = FfnActivation::kSilu;
  } else if (act == "gelu_pytorch_tanh" || (gemma && act == "gelu")) {
    // Gemma's "gelu" configs were trained with the tanh approximation (transformers maps it so).
    c.ffn_activation = FfnActivation::kGeluTanh;
  } else {
    return UnimplementedError(
        "{}: field '{}': '{}' is not supported (expected silu or gelu_pytorch_tanh)", path, act_key,
        act);
  }
  if (c.architecture == "mistral" || c.architecture == "mixtral" || c.architecture == "phi3") {
    if (auto it = j.find("sliding_window"); it != j.end() && !it->is_null()) {
      KINFER_ASSIGN_OR_RETURN(c.sliding_window, JsonInt(j, "sliding_window", 0, path));
    }
  } else if (c.architecture == "qwen2" || c.architecture == "qwen3" ||
             c.architecture == "qwen3moe") {
    KINFER_ASSIGN_OR_RETURN(bool use_swa, JsonBool(j, "use_sliding_window", false, path));
    if (use_swa) {
      return UnimplementedError("{}: use_sliding_window=true is not supported for {}", path,
                                c.architecture);
    }
  }

  // Rope: transformers 5 writes `rope_parameters`, earlier versions `rope_theta` + `rope_scaling`.
  KINFER_ASSIGN_OR_RETURN(c.rope_theta, JsonDouble(j, "rope_theta", 10000.0, path));
  KINFER_ASSIGN_OR_RETURN(double partial_rotary, JsonDouble(j, "partial_rotary_factor", 1.0, path));
  const Json* rope_params = nullptr;
  if (auto it = j.find("rope_parameters"); it != j.end() && it->is_object()) rope_params = &*it;
  if (rope_params && !rope_params->contains("full_attention")) {
    std::string where = path + ": rope_parameters";
    KINFER_ASSIGN_OR_RETURN(c.rope_theta,
                            JsonDouble(*rope_params, "rope_theta", c.rope_theta, where));
    KINFER_ASSIGN_OR_RETURN(
        partial_rotary, JsonDouble(*rope_params, "partial_rotary_factor", partial_rotary, where));
    KINFER_RETURN_IF_ERROR(ParseRopeScaling(*rope_params, where, &c.rope_scaling));
  } else if (auto rs = j.find("rope_scaling"); rs != j.end() && !rs->is_null()) {
    if (!rs->is_object()) {
      return InvalidArgumentError("{}: field 'rope_scaling': expected an object, got {}", path,
                                  JsonTypeName(*rs));
    }
    KINFER_RETURN_IF_ERROR(ParseRopeScaling(*rs, path + ": rope_scaling", &c.rope_scaling));
  }
  if (!(partial_rotary > 0 && partial_rotary <= 1)) {
    return InvalidArgumentError("{}: partial_rotary_factor must be in (0, 1], got {}", path,
                                partial_rotary);
  }
  c.rope_dim = static_cast<int64_t>(static_cast<double>(c.head_dim) * partial_rotary);
  c.rope_layout = RopeLayout::kHalf;
  if (c.rope_scaling.type == RopeScalingType::kLongRope) {
    KINFER_ASSIGN_OR_RETURN(
        c.rope_scaling.original_max_position_embeddings,
        JsonInt(j, "original_max_position_embeddings", c.max_position_embeddings, path));
    if (rope_params) {
      KINFER_ASSIGN_OR_RETURN(
          c.rope_scaling.original_max_position_embeddings,
          JsonInt(*rope_params, "original_max_position_embeddings",
                  c.rope_scaling.original_max_position_embeddings, path + ": rope_parameters"));
    }
    // transformers: the scaling factor of LongRoPE is the context extension it was trained for.
    c.rope_scaling.factor = static_cast<double>(c.max_position_embeddings) /
                            static_cast<double>(c.rope_scaling.original_max_position_embeddings);
  }
  if (gemma) KINFER_RETURN_IF_ERROR(ParseGemma(j, path, c));
  if (c.architecture == "qwen3moe" || c.architecture == "mixtral") {
    KINFER_RETURN_IF_ERROR(ParseMoe(j, path, c));
  }

  KINFER_ASSIGN_OR_RETURN(c.bos_token_id, JsonInt(j, "bos_token_id", -1, path));
  if (auto it = j.find("eos_token_id"); it != j.end()) {
    if (it->is_number_integer()) {
      c.eos_token_ids.push_back(it->get<int64_t>());
    } else if (it->is_array()) {
      for (const Json& e : *it) {
        if (!e.is_number_integer()) {
          return InvalidArgumentError("{}: field 'eos_token_id': expected integers", path);
        }
        c.eos_token_ids.push_back(e.get<int64_t>());
      }
    } else if (!it->is_null()) {
      return InvalidArgumentError("{}: field 'eos_token_id': expected an integer or a list", path);
    }
  }
  KINFER_RETURN_IF_ERROR(c.Validate(path));
  return c;
}

namespace {

// Gemma 2/3 in llama.cpp's terms: the sliding-window pattern (a key, else 2 or 6), the local rope
// base (a key, else 10000, unscaled), the query scale (a key, else llama.cpp's rule: 27B models
// scale by hidden / heads, the others by head_dim), soft-capping, embeddings times sqrt(hidden).
// The converter already added 1 to every norm weight.
Status GemmaFromGguf(const GgufFile& g, const std::string& a, ModelConfig& c) {
  c.ffn_activation = FfnActivation::kGeluTanh;
  c.embedding_scale = std::sqrt(static_cast<double>(c.hidden_size));
  c.post_norms = true;
  const std::string pattern_key = a + ".attention.sliding_window_pattern";
  c.sliding_layers.assign(static_cast<size_t>(c.num_layers), false);
  const GgufValue* v = g.Find(pattern_key);
  if (v && v->type == GgufValueType::kArray) {
    KINFER_ASSIGN_OR_RETURN(const GgufArray* arr, g.GetArray(pattern_key));
    if (static_cast<int64_t>(arr->count) != c.num_layers || !arr->IsNumeric()) {
      return InvalidArgumentError("{}: key '{}': expected {} booleans", g.name(), pattern_key,
                                  c.num_layers);
    }
    for (int64_t l = 0; l < c.num_layers; ++l) {
      c.sliding_layers[static_cast<size_t>(l)] = arr->GetInt(static_cast<uint64_t>(l)) != 0;
    }
  } else {
    uint64_t pattern = a == "gemma2" ? 2 : 6;
    if (v) {
      KINFER_ASSIGN_OR_RETURN(pattern, g.GetUint(pattern_key));
    }
    for (int64_t l = 0; l < c.num_layers; ++l) {
      c.sliding_layers[static_cast<size_t>(l)] =
          pattern == 0 || static_cast<uint64_t>(l) % pattern < pattern - 1;
    }
  }
  auto float_or = [&](const std::string& key, double def) -> Result<double> {
    if (!g.Has(a + "." + key)) return def;
    return g.GetFloat(a + "." + key);
  };
  KINFER_ASSIGN_OR_RETURN(c.rope_theta_sliding,
                          float_or("rope.freq_base_swa", a == "gemma3" ? 1e4 : c.rope_theta));
  const bool is_27b =
      (a == "gemma2" && c.num_layers == 46) || (a == "gemma3" && c.num_layers == 62);
  const double default_scale =
      1.0 / std::sqrt(static_cast<double>(is_27b ? c.hidden_size / c.num_heads : c.head_dim));
  KINFER_ASSIGN_OR_RETURN(c.attention_scale, float_or("attention.scale", default_scale));
  KINFER_ASSIGN_OR_RETURN(c.attn_logit_softcap, float_or("attn_logit_softcapping", 0.0));
  KINFER_ASSIGN_OR_RETURN(c.final_logit_softcap, float_or("final_logit_softcapping", 0.0));
  return Status::Ok();
}

}  // namespace

Result<ModelConfig> ConfigFromGguf(const GgufFile& g) {
  ModelConfig c;
  KINFER_ASSIGN_OR_RETURN(std::string_view arch, g.GetString("general.architecture"));
  if (arch != "llama" && arch != "qwen2" && arch != "qwen3" && arch != "mistral" &&
      arch != "gemma2" && arch != "gemma3" && arch != "phi3" && arch != "qwen3moe") {
    return UnimplementedError(
        "{}: key 'general.architecture': '{}' is not supported; supported: {}", g.name(), arch,
        kSupportedGguf);
  }
  c.architecture = std::string(arch);
  std::string a(arch);
  auto get_int = [&](const std::string& key) { return g.GetUint(a + "." + key); };
  auto get_int_or = [&](const std::string& key, int64_t def) -> Result<int64_t> {
    if (!g.Has(a + "." + key)) return def;
    KINFER_ASSIGN_OR_RETURN(uint64_t v, g.GetUint(a + "." + key));
    return static_cast<int64_t>(v);
  };
  auto get_float_or = [&](const std::string& key, double def) -> Result<double> {
    if (!g.Has(a + "." + key)) return def;
    return g.GetFloat(a + "." + key);
  };
  KINFER_ASSIGN_OR_RETURN(c.hidden_size, get_int("embedding_length"));
  KINFER_ASSIGN_OR_RETURN(c.intermediate_size, get_int("feed_forward_length"));
  KINFER_ASSIGN_OR_RETURN(c.num_layers, get_int("block_count"));
  KINFER_RETURN_IF_ERROR(CheckLayerCount(c.num_layers, g.name(), "key '" + a + ".block_count'"));
  KINFER_ASSIGN_OR_RETURN(c.num_heads, get_int("attention.head_count"));
  if (c.num_heads <= 0) {
    return InvalidArgumentError("{}: key '{}.attention.head_count' must be positive", g.name(), a);
  }
  KINFER_ASSIGN_OR_RETURN(c.num_kv_heads, get_int_or("attention.head_count_kv", c.num_heads));
  KINFER_ASSIGN_OR_RETURN(c.head_dim,
                          get_int_or("attention.key_length", c.hidden_size / c.num_heads));
  KINFER_ASSIGN_OR_RETURN(int64_t value_length, get_int_or("attention.value_length", c.head_dim));
  if (value_length != c.head_dim) {
    return UnimplementedError("{}: key '{}.attention.value_length' {} differs from key_length {}",
                              g.name(), a, value_length, c.head_dim);
  }
  KINFER_ASSIGN_OR_RETURN(c.max_position_embeddings, get_int_or("context_length", 4096));
  KINFER_ASSIGN_OR_RETURN(c.rms_norm_eps, get_float_or("attention.layer_norm_rms_epsilon", 1e-5));
  KINFER_ASSIGN_OR_RETURN(c.rope_theta, get_float_or("rope.freq_base", 10000.0));
  KINFER_ASSIGN_OR_RETURN(c.rope_dim, get_int_or("rope.dimension_count", c.head_dim));
  KINFER_ASSIGN_OR_RETURN(c.sliding_window,
                          get_int_or("attention.sliding_window", arch == "gemma2" ? 4096 : 0));
  if (g.Has(a + ".rope.scaling.type")) {
    KINFER_ASSIGN_OR_RETURN(std::string_view st, g.GetString(a + ".rope.scaling.type"));
    if (st == "linear") {
      c.rope_scaling.type = RopeScalingType::kLinear;
      KINFER_ASSIGN_OR_RETURN(c.rope_scaling.factor, get_float_or("rope.scaling.factor", 1.0));
    } else if (st != "none") {
      return UnimplementedError("{}: key '{}.rope.scaling.type': '{}' is not supported", g.name(),
                                a, st);
    }
  }
  // llama.cpp's converter turns llama3 scaling into the rope_freqs tensor; the loader reads it
  // (and Phi-3's LongRoPE factors, rope_factors_short/long).
  c.rope_layout =
      (arch == "llama" || arch == "mistral") ? RopeLayout::kInterleaved : RopeLayout::kHalf;
  if (IsGemma(arch)) KINFER_RETURN_IF_ERROR(GemmaFromGguf(g, a, c));
  if (g.FindTensor("rope_factors_long.weight") != nullptr) {
    c.rope_scaling.type = RopeScalingType::kLongRope;
    KINFER_ASSIGN_OR_RETURN(
        c.rope_scaling.original_max_position_embeddings,
        get_int_or("rope.scaling.original_context_length", c.max_position_embeddings));
    KINFER_ASSIGN_OR_RETURN(c.rope_scaling.attention_factor,
                            get_float_or("rope.scaling.attn_factor", 0.0));
    c.rope_scaling.factor = static_cast<double>(c.max_position_embeddings) /
                            static_cast<double>(c.rope_scaling.original_max_position_embeddings);
  }
  if (g.Has(a + ".expert_count")) {
    KINFER_ASSIGN_OR_RETURN(c.moe.num_experts, get_int_or("expert_count", 0));
  }
  if (c.moe.num_experts > 0) {
    KINFER_ASSIGN_OR_RETURN(c.moe.num_experts_used, get_int_or("expert_used_count", 0));
    KINFER_ASSIGN_OR_RETURN(c.moe.expert_intermediate_size,
                            get_int_or("expert_feed_forward_length", c.intermediate_size));
    // llama.cpp renormalizes the chosen experts' weights for Mixtral (arch llama) and Qwen3-MoE.
    c.moe.normalize_weights = true;
    if (g.Has(a + ".expert_weights_norm")) {
      KINFER_ASSIGN_OR_RETURN(c.moe.normalize_weights, g.GetBool(a + ".expert_weights_norm"));
    }
  }
  c.attention_bias = g.FindTensor("blk.0.attn_q.bias") != nullptr;
  c.qk_norm = g.FindTensor("blk.0.attn_q_norm.weight") != nullptr;
  if (!c.sliding_layers.empty() && c.sliding_window <= 0) c.sliding_layers.clear();
  c.tie_word_embeddings = g.FindTensor("output.weight") == nullptr;

  if (g.Has(a + ".vocab_size")) {
    KINFER_ASSIGN_OR_RETURN(uint64_t v, get_int("vocab_size"));
    c.vocab_size = static_cast<int64_t>(v);
  } else if (const GgufTensorInfo* emb = g.FindTensor("token_embd.weight");
             emb && emb->n_dims == 2) {
    c.vocab_size = emb->ne[1];
  } else if (auto tokens = g.GetArray("tokenizer.ggml.tokens"); tokens.ok()) {
    c.vocab_size = static_cast<int64_t>((*tokens)->count);
  }
  if (g.Has("tokenizer.ggml.bos_token_id")) {
    KINFER_ASSIGN_OR_RETURN(uint64_t bos, g.GetUint("tokenizer.ggml.bos_token_id"));
    c.bos_token_id = static_cast<int64_t>(bos);
  }
  for (const char* key : {"tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id",
                          "tokenizer.ggml.eom_token_id"}) {
    if (!g.Has(key)) continue;
    KINFER_ASSIGN_OR_RETURN(uint64_t id, g.GetUint(key));
    bool seen = false;
    for (int64_t e : c.eos_token_ids) seen |= e == static_cast<int64_t>(id);
    if (!seen) c.eos_token_ids.push_back(static_cast<int64_t>(id));
  }
  KINFER_RETURN_IF_ERROR(c.Validate(g.name()));
  return c;
}

}  // namespace kinfer::model
