#include "model/pooling_config.h"

#include <cctype>
#include <filesystem>

#include <fmt/format.h>

#include "core/json.h"
#include "core/mapped_file.h"
#include "model/gguf.h"

namespace kinfer::model {
namespace {

namespace fs = std::filesystem;

// "sentence_transformers.models.Pooling" -> "Pooling" (the package path moved between
// sentence-transformers versions; the class name did not).
std::string_view ClassName(std::string_view type) {
  const size_t dot = type.rfind('.');
  return dot == std::string_view::npos ? type : type.substr(dot + 1);
}

Result<PoolingType> PoolingModeFromFlags(const Json& j, const std::string& where) {
  struct Mode {
    const char* flag;
    const char* name;
    std::optional<PoolingType> type;  // nullopt: not computed by Kinfer
  };
  static const Mode kModes[] = {
      {"pooling_mode_cls_token", "cls", PoolingType::kCls},
      {"pooling_mode_mean_tokens", "mean", PoolingType::kMean},
      {"pooling_mode_lasttoken", "lasttoken", PoolingType::kLast},
      {"pooling_mode_max_tokens", "max", std::nullopt},
      {"pooling_mode_mean_sqrt_len_tokens", "mean_sqrt_len_tokens", std::nullopt},
      {"pooling_mode_weightedmean_tokens", "weightedmean", std::nullopt},
      {"", "mean_sqrt_len", std::nullopt},
      {"", "weighted_mean", std::nullopt},
  };
  // sentence-transformers 5+ writes one field, "pooling_mode": "lasttoken" (or a list).
  std::optional<std::string> named;
  if (auto it = j.find("pooling_mode"); it != j.end() && !it->is_null()) {
    if (it->is_array() && it->size() == 1 && (*it)[0].is_string()) {
      named = (*it)[0].get<std::string>();
    } else if (it->is_array()) {
      return UnimplementedError("{}: field 'pooling_mode': {} modes at once; Kinfer pools with one",
                                where, it->size());
    } else if (it->is_string()) {
      named = it->get<std::string>();
    } else {
      return InvalidArgumentError("{}: field 'pooling_mode': expected a string, got {}", where,
                                  JsonTypeName(*it));
    }
  }
  std::vector<const Mode*> on;
  for (const Mode& m : kModes) {
    bool set = false;
    if (*m.flag) {
      KINFER_ASSIGN_OR_RETURN(set, JsonBool(j, m.flag, false, where));
    }
    if (set || (named && *named == m.name)) on.push_back(&m);
  }
  if (named && on.empty()) {
    return UnimplementedError("{}: field 'pooling_mode': '{}' is not a pooling mode Kinfer knows",
                              where, *named);
  }
  if (on.empty()) {
    return InvalidArgumentError("{}: no pooling mode is set (pooling_mode_lasttoken, ...)", where);
  }
  if (on.size() > 1) {
    return UnimplementedError(
        "{}: {} pooling modes are set at once ('{}' and '{}'); Kinfer pools "
        "with one",
        where, on.size(), on[0]->flag, on[1]->flag);
  }
  if (!on[0]->type) {
    return UnimplementedError(
        "{}: field '{}': {} pooling is not supported (supported: lasttoken, mean, cls)", where,
        named ? "pooling_mode" : on[0]->flag, on[0]->name);
  }
  return *on[0]->type;
}

}  // namespace

std::string_view PoolingTypeName(PoolingType t) {
  switch (t) {
    case PoolingType::kLast:
      return "LAST";
    case PoolingType::kMean:
      return "MEAN";
    case PoolingType::kCls:
      return "CLS";
  }
  return "LAST";
}

Result<PoolingConfig> ParseSentenceTransformersModules(std::string_view modules_json,
                                                       std::string_view pooling_json,
                                                       const std::string& dir) {
  const std::string modules_path = (fs::path(dir) / "modules.json").string();
  KINFER_ASSIGN_OR_RETURN(Json modules, ParseJson(modules_json, modules_path, 32));
  if (!modules.is_array()) {
    return InvalidArgumentError("{}: expected a JSON array of modules, got {}", modules_path,
                                JsonTypeName(modules));
  }
  PoolingConfig p;
  p.normalize = false;
  p.source = modules_path;
  bool have_pooling = false;
  for (size_t i = 0; i < modules.size(); ++i) {
    const Json& m = modules[i];
    const std::string where = fmt::format("{}: module {}", modules_path, i);
    if (!m.is_object()) return InvalidArgumentError("{}: expected an object", where);
    KINFER_ASSIGN_OR_RETURN(std::string type, JsonString(m, "type", where));
    KINFER_ASSIGN_OR_RETURN(std::string path, JsonString(m, "path", "", where));
    const std::string_view cls = ClassName(type);
    if (cls == "Transformer") {
      if (i != 0) {
        return UnimplementedError("{}: the Transformer module must come first", where);
      }
    } else if (cls == "Pooling") {
      if (have_pooling) return UnimplementedError("{}: a second Pooling module", where);
      have_pooling = true;
      const std::string pooling_path = (fs::path(dir) / path / "config.json").string();
      if (pooling_json.empty()) {
        return NotFoundError("{}: the Pooling module's {} is missing", where, pooling_path);
      }
      KINFER_ASSIGN_OR_RETURN(Json pj, ParseJson(pooling_json, pooling_path, 32));
      if (!pj.is_object()) return InvalidArgumentError("{}: expected a JSON object", pooling_path);
      KINFER_ASSIGN_OR_RETURN(p.type, PoolingModeFromFlags(pj, pooling_path));
      // "word_embedding_dimension" before sentence-transformers 5, "embedding_dimension" since.
      KINFER_ASSIGN_OR_RETURN(p.dimension,
                              JsonInt(pj, "word_embedding_dimension", 0, pooling_path));
      KINFER_ASSIGN_OR_RETURN(p.dimension,
                              JsonInt(pj, "embedding_dimension", p.dimension, pooling_path));
      p.source = pooling_path;
    } else if (cls == "Normalize") {
      if (!have_pooling) {
        return UnimplementedError("{}: Normalize before any Pooling module", where);
      }
      p.normalize = true;
    } else {
      return UnimplementedError(
          "{}: module type '{}' is not supported (Kinfer runs Transformer, Pooling and "
          "Normalize modules)",
          where, type);
    }
  }
  if (!have_pooling) {
    return UnimplementedError("{}: no Pooling module: Kinfer cannot tell how to pool",
                              modules_path);
  }
  return p;
}

Status ApplyMatryoshkaFromHfConfig(std::string_view config_json, const std::string& path,
                                   PoolingConfig* p) {
  if (config_json.empty()) return Status::Ok();
  KINFER_ASSIGN_OR_RETURN(Json j, ParseJson(config_json, path));
  if (!j.is_object()) return Status::Ok();
  KINFER_ASSIGN_OR_RETURN(bool is_mrl, JsonBool(j, "is_matryoshka", false, path));
  if (auto it = j.find("matryoshka_dimensions"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) {
      return InvalidArgumentError("{}: field 'matryoshka_dimensions': expected a list of sizes",
                                  path);
    }
    for (const Json& d : *it) {
      if (!d.is_number_integer() || d.get<int64_t>() < 1) {
        return InvalidArgumentError("{}: field 'matryoshka_dimensions': expected positive integers",
                                    path);
      }
      p->matryoshka_dimensions.push_back(d.get<int64_t>());
    }
    is_mrl = true;
  }
  p->matryoshka = p->matryoshka || is_mrl;
  return Status::Ok();
}

Result<std::optional<PoolingConfig>> ReadSentenceTransformersConfig(const std::string& dir,
                                                                    std::string_view config_json) {
  const fs::path modules = fs::path(dir) / "modules.json";
  std::error_code ec;
  if (!fs::exists(modules, ec)) return std::optional<PoolingConfig>();
  KINFER_ASSIGN_OR_RETURN(std::string modules_text, ReadFileToString(modules.string()));
  // Find the Pooling module's folder first: its config.json is the second input.
  std::string pooling_text;
  {
    auto parsed = ParseJson(modules_text, modules.string(), 32);
    if (parsed.ok() && parsed->is_array()) {
      for (const Json& m : *parsed) {
        if (!m.is_object()) continue;
        auto type = m.find("type");
        auto path = m.find("path");
        if (type == m.end() || !type->is_string() ||
            ClassName(type->get<std::string>()) != "Pooling")
          continue;
        const std::string sub =
            path != m.end() && path->is_string() ? path->get<std::string>() : "";
        const fs::path cfg = fs::path(dir) / sub / "config.json";
        if (fs::exists(cfg, ec)) {
          KINFER_ASSIGN_OR_RETURN(pooling_text, ReadFileToString(cfg.string()));
        }
      }
    }
  }
  KINFER_ASSIGN_OR_RETURN(PoolingConfig p,
                          ParseSentenceTransformersModules(modules_text, pooling_text, dir));
  KINFER_RETURN_IF_ERROR(
      ApplyMatryoshkaFromHfConfig(config_json, (fs::path(dir) / "config.json").string(), &p));
  return std::optional<PoolingConfig>(std::move(p));
}

Result<std::optional<PoolingConfig>> PoolingFromGguf(const GgufFile& g) {
  KINFER_ASSIGN_OR_RETURN(std::string_view arch, g.GetString("general.architecture"));
  const std::string key = std::string(arch) + ".pooling_type";
  if (!g.Has(key)) return std::optional<PoolingConfig>();
  KINFER_ASSIGN_OR_RETURN(uint64_t v, g.GetUint(key));
  PoolingConfig p;
  p.normalize = true;  // llama.cpp's server normalizes embeddings (L2) by default
  p.source = fmt::format("{}: key '{}'", g.name(), key);
  switch (v) {
    case 0:
      return std::optional<PoolingConfig>();
    case 1:
      p.type = PoolingType::kMean;
      break;
    case 2:
      p.type = PoolingType::kCls;
      break;
    case 3:
      p.type = PoolingType::kLast;
      break;
    default:
      return UnimplementedError("{}: pooling type {} is not supported (1 mean, 2 cls, 3 last)",
                                p.source, v);
  }
  return std::optional<PoolingConfig>(std::move(p));
}

Result<PoolingConfig> ApplyPoolerConfigJson(std::string_view json, PoolingConfig base) {
  constexpr std::string_view kWhere = "--pooler-config";
  KINFER_ASSIGN_OR_RETURN(Json j, ParseJson(json, kWhere, 8));
  if (!j.is_object()) {
    return InvalidArgumentError("{}: expected a JSON object like {{\"pooling_type\": \"MEAN\"}}",
                                kWhere);
  }
  for (const auto& [key, value] : j.items()) {
    if (key != "pooling_type" && key != "normalize" && key != "is_matryoshka" &&
        key != "matryoshka_dimensions") {
      return InvalidArgumentError(
          "{}: field '{}' is not supported (supported: pooling_type, normalize, is_matryoshka, "
          "matryoshka_dimensions)",
          kWhere, key);
    }
  }
  KINFER_ASSIGN_OR_RETURN(auto type, JsonOptString(j, "pooling_type", kWhere));
  if (type) {
    std::string t = *type;
    for (char& c : t) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    if (t == "LAST" || t == "LASTTOKEN") {
      base.type = PoolingType::kLast;
    } else if (t == "MEAN") {
      base.type = PoolingType::kMean;
    } else if (t == "CLS") {
      base.type = PoolingType::kCls;
    } else {
      return InvalidArgumentError("{}: field 'pooling_type': '{}' is not one of LAST, MEAN, CLS",
                                  kWhere, *type);
    }
  }
  KINFER_ASSIGN_OR_RETURN(base.normalize, JsonBool(j, "normalize", base.normalize, kWhere));
  // Matryoshka, as vLLM's hf_overrides name it: any size, or only the listed ones.
  KINFER_ASSIGN_OR_RETURN(base.matryoshka, JsonBool(j, "is_matryoshka", base.matryoshka, kWhere));
  if (auto it = j.find("matryoshka_dimensions"); it != j.end() && !it->is_null()) {
    if (!it->is_array()) {
      return InvalidArgumentError(
          "{}: field 'matryoshka_dimensions': expected a list of allowed sizes", kWhere);
    }
    base.matryoshka = true;
    base.matryoshka_dimensions.clear();
    for (const Json& d : *it) {
      if (!d.is_number_integer() || d.get<int64_t>() < 1) {
        return InvalidArgumentError("{}: field 'matryoshka_dimensions': expected positive integers",
                                    kWhere);
      }
      base.matryoshka_dimensions.push_back(d.get<int64_t>());
    }
  }
  base.source = base.source.empty() ? std::string(kWhere) : base.source + " and --pooler-config";
  return base;
}

}  // namespace kinfer::model
