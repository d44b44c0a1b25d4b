#include "model/config.h"

#include <fmt/format.h>

#include "core/json.h"
#include "model/gguf.h"

namespace kinfer::model {
namespace {

struct FamilyInfo {
  std::string_view hf_class;
  std::string_view model_type;
  bool attention_bias;  // default when config.json does not say
  bool qk_norm;
};

constexpr FamilyInfo kFamilies[] = {
    {"LlamaForCausalLM", "llama", false, false},
    {"MistralForCausalLM", "mistral", false, false},
    {"Qwen2ForCausalLM", "qwen2", true, false},
    {"Qwen3ForCausalLM", "qwen3", false, true},
    // The same decoders saved without their LM head (sentence-transformers embedding models).
    {"LlamaModel", "llama", false, false},
    {"MistralModel", "mistral", false, false},
    {"Qwen2Model", "qwen2", true, false},
    {"Qwen3Model", "qwen3", false, true},
};

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
      "{}: rope scaling type '{}' is not supported (supported: linear, llama3)", where, t);
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
  KINFER_RETURN_IF_ERROR(positive(num_layers, "number of layers"));
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
  return Status::Ok();
}

std::string ModelConfig::Summary() const {
  return fmt::format("{}: {} layers, hidden {}, heads {}/{} x {}, ffn {}, vocab {}, rope theta {}",
                     architecture, num_layers, hidden_size, num_heads, num_kv_heads, head_dim,
                     intermediate_size, vocab_size, rope_theta);
}

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
        "{}: architecture '{}' (model_type '{}') is not supported; supported: LlamaForCausalLM, "
        "MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM",
        path, hf_class, model_type);
  }
  c.architecture = std::string(family->model_type);

  KINFER_ASSIGN_OR_RETURN(c.hidden_size, JsonInt(j, "hidden_size", path));
  KINFER_ASSIGN_OR_RETURN(c.intermediate_size, JsonInt(j, "intermediate_size", path));
  KINFER_ASSIGN_OR_RETURN(c.num_layers, JsonInt(j, "num_hidden_layers", path));
  KINFER_ASSIGN_OR_RETURN(c.num_heads, JsonInt(j, "num_attention_heads", path));
  KINFER_ASSIGN_OR_RETURN(c.num_kv_heads, JsonInt(j, "num_key_value_heads", c.num_heads, path));
  if (c.num_heads <= 0) {
    return InvalidArgumentError("{}: field 'num_attention_heads' must be positive", path);
  }
  KINFER_ASSIGN_OR_RETURN(c.head_dim, JsonInt(j, "head_dim", c.hidden_size / c.num_heads, path));
  KINFER_ASSIGN_OR_RETURN(c.vocab_size, JsonInt(j, "vocab_size", path));
  KINFER_ASSIGN_OR_RETURN(c.max_position_embeddings,
                          JsonInt(j, "max_position_embeddings", 4096, path));
  KINFER_ASSIGN_OR_RETURN(c.rms_norm_eps, JsonDouble(j, "rms_norm_eps", 1e-6, path));
  KINFER_ASSIGN_OR_RETURN(c.tie_word_embeddings, JsonBool(j, "tie_word_embeddings", false, path));
  KINFER_ASSIGN_OR_RETURN(c.attention_bias,
                          JsonBool(j, "attention_bias", family->attention_bias, path));
  if (c.architecture == "qwen2") c.attention_bias = true;  // Qwen2 always has q/k/v biases
  c.qk_norm = family->qk_norm;
  KINFER_ASSIGN_OR_RETURN(std::string act, JsonString(j, "hidden_act", "silu", path));
  if (act != "silu" && act != "swish") {
    return UnimplementedError("{}: field 'hidden_act': '{}' is not supported (expected silu)", path,
                              act);
  }
  if (c.architecture == "mistral") {
    KINFER_ASSIGN_OR_RETURN(c.sliding_window, JsonInt(j, "sliding_window", 0, path));
  } else if (c.architecture == "qwen2" || c.architecture == "qwen3") {
    KINFER_ASSIGN_OR_RETURN(bool use_swa, JsonBool(j, "use_sliding_window", false, path));
    if (use_swa) {
      return UnimplementedError("{}: use_sliding_window=true is not supported for {}", path,
                                c.architecture);
    }
  }

  // Rope: transformers 5 writes `rope_parameters`, earlier versions `rope_theta` + `rope_scaling`.
  KINFER_ASSIGN_OR_RETURN(c.rope_theta, JsonDouble(j, "rope_theta", 10000.0, path));
  if (auto it = j.find("rope_parameters"); it != j.end() && it->is_object()) {
    std::string where = path + ": rope_parameters";
    KINFER_ASSIGN_OR_RETURN(c.rope_theta, JsonDouble(*it, "rope_theta", c.rope_theta, where));
    KINFER_RETURN_IF_ERROR(ParseRopeScaling(*it, where, &c.rope_scaling));
  } else if (auto rs = j.find("rope_scaling"); rs != j.end() && !rs->is_null()) {
    if (!rs->is_object()) {
      return InvalidArgumentError("{}: field 'rope_scaling': expected an object, got {}", path,
                                  JsonTypeName(*rs));
    }
    KINFER_RETURN_IF_ERROR(ParseRopeScaling(*rs, path + ": rope_scaling", &c.rope_scaling));
  }
  c.rope_dim = c.head_dim;
  c.rope_layout = RopeLayout::kHalf;

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

Result<ModelConfig> ConfigFromGguf(const GgufFile& g) {
  ModelConfig c;
  KINFER_ASSIGN_OR_RETURN(std::string_view arch, g.GetString("general.architecture"));
  if (arch != "llama" && arch != "qwen2" && arch != "qwen3" && arch != "mistral") {
    return UnimplementedError(
        "{}: key 'general.architecture': '{}' is not supported; supported: llama, mistral, qwen2, "
        "qwen3",
        g.name(), arch);
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
  KINFER_ASSIGN_OR_RETURN(c.sliding_window, get_int_or("attention.sliding_window", 0));
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
  // llama.cpp's converter turns llama3 scaling into the rope_freqs tensor; the loader reads it.
  c.rope_layout =
      (arch == "qwen2" || arch == "qwen3") ? RopeLayout::kHalf : RopeLayout::kInterleaved;
  c.attention_bias = g.FindTensor("blk.0.attn_q.bias") != nullptr;
  c.qk_norm = g.FindTensor("blk.0.attn_q_norm.weight") != nullptr;
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
