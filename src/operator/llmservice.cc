#include "operator/llmservice.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <cstring>

namespace kinfer::op {
namespace {

// Field reading with the path in errors ("qwen: spec.engine.threads: expected an integer").
class Reader {
 public:
  explicit Reader(std::string source) : source_(std::move(source)) {}

  Status Wrong(const std::string& path, std::string_view want, const Json& got) const {
    return InvalidArgumentError("{}: {}: expected {}, got {}", source_, path, want,
                                JsonTypeName(got));
  }
  static const Json* Find(const Json& obj, std::string_view key) {
    if (!obj.is_object()) return nullptr;
    auto it = obj.find(key);
    if (it == obj.end() || it->is_null()) return nullptr;
    return &*it;
  }
  Status Str(const Json& obj, std::string_view key, const std::string& path,
             std::string* out) const {
    const Json* v = Find(obj, key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_string()) return Wrong(path, "a string", *v);
    *out = v->get<std::string>();
    return Status::Ok();
  }
  template <typename T>
  Status Int(const Json& obj, std::string_view key, const std::string& path, T* out) const {
    const Json* v = Find(obj, key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_number_integer()) return Wrong(path, "an integer", *v);
    *out = static_cast<T>(v->get<int64_t>());
    return Status::Ok();
  }
  Status OptInt(const Json& obj, std::string_view key, const std::string& path,
                std::optional<int64_t>* out) const {
    const Json* v = Find(obj, key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_number_integer()) return Wrong(path, "an integer", *v);
    *out = v->get<int64_t>();
    return Status::Ok();
  }
  Status Bool(const Json& obj, std::string_view key, const std::string& path, bool* out) const {
    const Json* v = Find(obj, key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_boolean()) return Wrong(path, "true or false", *v);
    *out = v->get<bool>();
    return Status::Ok();
  }
  // An int-or-string quantity, as text.
  Status Quantity(const Json& obj, std::string_view key, const std::string& path,
                  std::string* out) const {
    const Json* v = Find(obj, key);
    if (v == nullptr) return Status::Ok();
    if (v->is_string()) {
      *out = v->get<std::string>();
    } else if (v->is_number_integer()) {
      *out = std::to_string(v->get<int64_t>());
    } else if (v->is_number()) {
      *out = fmt::format("{}", v->get<double>());
    } else {
      return Wrong(path, "a quantity", *v);
    }
    return Status::Ok();
  }
  Status Resources(const Json& obj, std::string_view key, const std::string& path,
                   ResourceList* out) const {
    const Json* v = Find(obj, key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_object()) return Wrong(path, "an object", *v);
    for (const auto& [k, q] : v->items()) {
      std::string s;
      KINFER_RETURN_IF_ERROR(Quantity(*v, k, path + "." + k, &s));
      (*out)[k] = s;
    }
    return Status::Ok();
  }
  Status StrList(const Json& obj, std::string_view key, const std::string& path,
                 std::vector<std::string>* out) const {
    const Json* v = Find(obj, key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_array()) return Wrong(path, "a list", *v);
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) return Wrong(fmt::format("{}[{}]", path, i), "a string", (*v)[i]);
      out->push_back((*v)[i].get<std::string>());
    }
    return Status::Ok();
  }
  Result<const Json*> Object(const Json& obj, std::string_view key, const std::string& path) const {
    static const Json kEmpty = Json::object();
    const Json* v = Find(obj, key);
    if (v == nullptr) return &kEmpty;
    if (!v->is_object()) return Wrong(path, "an object", *v);
    return v;
  }
  Status SecretRef(const Json& obj, std::string_view key, const std::string& path,
                   const std::string& default_key, std::optional<SecretKeyRef>* out) const {
    const Json* v = Find(obj, key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_object()) return Wrong(path, "an object", *v);
    SecretKeyRef r{"", default_key};
    KINFER_RETURN_IF_ERROR(Str(*v, "name", path + ".name", &r.name));
    KINFER_RETURN_IF_ERROR(Str(*v, "key", path + ".key", &r.key));
    if (r.name.empty()) return InvalidArgumentError("{}: {}.name: required", source_, path);
    if (r.key.empty()) r.key = default_key;
    *out = r;
    return Status::Ok();
  }
  const std::string& source() const { return source_; }

 private:
  std::string source_;
};

}  // namespace

const k8s::ResourceType kLLMServices{"kinfer.dev", "v1alpha1", "llmservices", "LLMService", true};

k8s::OwnerReference LLMService::OwnerRef() const {
  return {"kinfer.dev/v1alpha1", "LLMService", metadata.name, metadata.uid, true, true};
}

Result<LLMService> ParseLLMService(const Json& obj) {
  LLMService s;
  KINFER_ASSIGN_OR_RETURN(s.metadata, k8s::ParseObjectMeta(obj, "LLMService"));
  Reader r(fmt::format("LLMService {}/{}", s.metadata.namespace_, s.metadata.name));
  KINFER_ASSIGN_OR_RETURN(const Json* spec, r.Object(obj, "spec", "spec"));
  LLMServiceSpec& sp = s.spec;

  KINFER_ASSIGN_OR_RETURN(const Json* model, r.Object(*spec, "model", "spec.model"));
  KINFER_RETURN_IF_ERROR(r.Str(*model, "name", "spec.model.name", &sp.model.name));
  if (sp.model.name.empty()) {
    return InvalidArgumentError("{}: spec.model.name: required", r.source());
  }
  KINFER_RETURN_IF_ERROR(r.Str(*model, "path", "spec.model.path", &sp.model.path));
  KINFER_ASSIGN_OR_RETURN(const Json* source, r.Object(*model, "source", "spec.model.source"));
  int kinds = 0;
  if (const Json* hub = Reader::Find(*source, "hub")) {
    ++kinds;
    sp.model.source.kind = ModelSource::Kind::kHub;
    std::string p = "spec.model.source.hub";
    KINFER_RETURN_IF_ERROR(r.Str(*hub, "url", p + ".url", &sp.model.source.hub_url));
    KINFER_RETURN_IF_ERROR(
        r.StrList(*hub, "include", p + ".include", &sp.model.source.hub_include));
    KINFER_RETURN_IF_ERROR(r.Str(*hub, "endpoint", p + ".endpoint", &sp.model.source.hub_endpoint));
    KINFER_RETURN_IF_ERROR(r.SecretRef(*hub, "tokenSecretRef", p + ".tokenSecretRef", "HF_TOKEN",
                                       &sp.model.source.hub_token));
    if (sp.model.source.hub_url.empty())
      return InvalidArgumentError("{}: {}.url: required", r.source(), p);
  }
  if (const Json* pvc = Reader::Find(*source, "pvc")) {
    ++kinds;
    sp.model.source.kind = ModelSource::Kind::kPvc;
    KINFER_RETURN_IF_ERROR(
        r.Str(*pvc, "claimName", "spec.model.source.pvc.claimName", &sp.model.source.claim_name));
    if (sp.model.source.claim_name.empty()) {
      return InvalidArgumentError("{}: spec.model.source.pvc.claimName: required", r.source());
    }
  }
  if (const Json* hp = Reader::Find(*source, "hostPath")) {
    ++kinds;
    sp.model.source.kind = ModelSource::Kind::kHostPath;
    KINFER_RETURN_IF_ERROR(
        r.Str(*hp, "path", "spec.model.source.hostPath.path", &sp.model.source.host_path));
    if (sp.model.source.host_path.empty() || sp.model.source.host_path[0] != '/') {
      return InvalidArgumentError("{}: spec.model.source.hostPath.path: must be absolute",
                                  r.source());
    }
  }
  if (kinds != 1) {
    return InvalidArgumentError("{}: spec.model.source: needs exactly one of hub, pvc or hostPath",
                                r.source());
  }

  KINFER_RETURN_IF_ERROR(r.Str(*spec, "image", "spec.image", &sp.image));

  KINFER_ASSIGN_OR_RETURN(const Json* engine, r.Object(*spec, "engine", "spec.engine"));
  KINFER_RETURN_IF_ERROR(
      r.OptInt(*engine, "maxModelLen", "spec.engine.maxModelLen", &sp.engine.max_model_len));
  KINFER_RETURN_IF_ERROR(
      r.OptInt(*engine, "maxNumSeqs", "spec.engine.maxNumSeqs", &sp.engine.max_num_seqs));
  KINFER_RETURN_IF_ERROR(r.OptInt(*engine, "maxNumBatchedTokens", "spec.engine.maxNumBatchedTokens",
                                  &sp.engine.max_num_batched_tokens));
  KINFER_RETURN_IF_ERROR(r.OptInt(*engine, "threads", "spec.engine.threads", &sp.engine.threads));
  KINFER_RETURN_IF_ERROR(r.Quantity(*engine, "kvCacheMemory", "spec.engine.kvCacheMemory",
                                    &sp.engine.kv_cache_memory));
  if (!sp.engine.kv_cache_memory.empty()) {
    KINFER_RETURN_IF_ERROR(
        QuantityBytes(Json(sp.engine.kv_cache_memory), r.source() + ": spec.engine.kvCacheMemory")
            .status());
  }
  KINFER_RETURN_IF_ERROR(r.Int(*engine, "shutdownTimeoutSeconds",
                               "spec.engine.shutdownTimeoutSeconds",
                               &sp.engine.shutdown_timeout_seconds));
  if (sp.engine.shutdown_timeout_seconds < 1) {
    return InvalidArgumentError("{}: spec.engine.shutdownTimeoutSeconds: must be at least 1",
                                r.source());
  }
  KINFER_RETURN_IF_ERROR(
      r.StrList(*engine, "extraArgs", "spec.engine.extraArgs", &sp.engine.extra_args));
  for (const std::string& a : sp.engine.extra_args) {
    for (const char* owned : {"--model", "--port", "--host", "--served-model-name"}) {
      std::string_view v(a);
      if (v == owned ||
          (v.rfind(owned, 0) == 0 && v.size() > strlen(owned) && v[strlen(owned)] == '=')) {
        return InvalidArgumentError(
            "{}: spec.engine.extraArgs: '{}' is set by the operator and may not be given",
            r.source(), a);
      }
    }
  }

  KINFER_ASSIGN_OR_RETURN(const Json* res, r.Object(*spec, "resources", "spec.resources"));
  KINFER_RETURN_IF_ERROR(
      r.Resources(*res, "requests", "spec.resources.requests", &sp.resources.requests));
  KINFER_RETURN_IF_ERROR(
      r.Resources(*res, "limits", "spec.resources.limits", &sp.resources.limits));
  KINFER_RETURN_IF_ERROR(r.Int(*res, "gpu", "spec.resources.gpu", &sp.resources.gpu));

  KINFER_RETURN_IF_ERROR(r.Int(*spec, "replicas", "spec.replicas", &sp.replicas));
  if (sp.replicas < 0) return InvalidArgumentError("{}: spec.replicas: negative", r.source());
  if (const Json* as = Reader::Find(*spec, "autoscaling")) {
    LLMServiceSpec::Autoscaling a;
    std::string p = "spec.autoscaling";
    KINFER_RETURN_IF_ERROR(r.Int(*as, "minReplicas", p + ".minReplicas", &a.min_replicas));
    KINFER_RETURN_IF_ERROR(r.Int(*as, "maxReplicas", p + ".maxReplicas", &a.max_replicas));
    KINFER_RETURN_IF_ERROR(r.Quantity(*as, "targetRequestsWaiting", p + ".targetRequestsWaiting",
                                      &a.target_requests_waiting));
    KINFER_RETURN_IF_ERROR(
        r.Str(*as, "scaleToZeroAfter", p + ".scaleToZeroAfter", &a.scale_to_zero_after));
    sp.autoscaling = a;
  }

  KINFER_ASSIGN_OR_RETURN(const Json* router, r.Object(*spec, "router", "spec.router"));
  KINFER_RETURN_IF_ERROR(r.Bool(*router, "enabled", "spec.router.enabled", &sp.router.enabled));
  KINFER_RETURN_IF_ERROR(r.Int(*router, "replicas", "spec.router.replicas", &sp.router.replicas));
  KINFER_RETURN_IF_ERROR(r.Str(*router, "policy", "spec.router.policy", &sp.router.policy));
  if (RouterPolicyFlag(sp.router.policy).empty()) {
    return InvalidArgumentError("{}: spec.router.policy: unknown policy '{}'", r.source(),
                                sp.router.policy);
  }
  KINFER_ASSIGN_OR_RETURN(const Json* rres,
                          r.Object(*router, "resources", "spec.router.resources"));
  KINFER_RETURN_IF_ERROR(
      r.Resources(*rres, "requests", "spec.router.resources.requests", &sp.router.requests));
  KINFER_RETURN_IF_ERROR(
      r.Resources(*rres, "limits", "spec.router.resources.limits", &sp.router.limits));

  KINFER_ASSIGN_OR_RETURN(const Json* storage, r.Object(*spec, "storage", "spec.storage"));
  KINFER_RETURN_IF_ERROR(r.Str(*storage, "type", "spec.storage.type", &sp.storage.type));
  if (sp.storage.type != "pvc" && sp.storage.type != "emptyDir") {
    return InvalidArgumentError("{}: spec.storage.type: expected pvc or emptyDir, got '{}'",
                                r.source(), sp.storage.type);
  }
  KINFER_RETURN_IF_ERROR(r.Quantity(*storage, "size", "spec.storage.size", &sp.storage.size));
  KINFER_RETURN_IF_ERROR(r.Str(*storage, "storageClassName", "spec.storage.storageClassName",
                               &sp.storage.storage_class_name));
  KINFER_RETURN_IF_ERROR(
      r.Str(*storage, "accessMode", "spec.storage.accessMode", &sp.storage.access_mode));

  KINFER_ASSIGN_OR_RETURN(const Json* auth, r.Object(*spec, "auth", "spec.auth"));
  KINFER_RETURN_IF_ERROR(
      r.SecretRef(*auth, "secretRef", "spec.auth.secretRef", "api-keys", &sp.auth));

  KINFER_ASSIGN_OR_RETURN(const Json* np, r.Object(*spec, "networkPolicy", "spec.networkPolicy"));
  KINFER_RETURN_IF_ERROR(
      r.Bool(*np, "enabled", "spec.networkPolicy.enabled", &sp.network_policy.enabled));
  if (const Json* from = Reader::Find(*np, "allowFrom")) {
    if (!from->is_array()) return r.Wrong("spec.networkPolicy.allowFrom", "a list", *from);
    for (size_t i = 0; i < from->size(); ++i) {
      if (!(*from)[i].is_object()) {
        return r.Wrong(fmt::format("spec.networkPolicy.allowFrom[{}]", i), "an object", (*from)[i]);
      }
      sp.network_policy.allow_from.push_back((*from)[i]);
    }
  }
  if (const Json* from = Reader::Find(*np, "metricsFrom")) {
    if (!from->is_array()) return r.Wrong("spec.networkPolicy.metricsFrom", "a list", *from);
    for (size_t i = 0; i < from->size(); ++i) {
      if (!(*from)[i].is_object()) {
        return r.Wrong(fmt::format("spec.networkPolicy.metricsFrom[{}]", i), "an object",
                       (*from)[i]);
      }
      sp.network_policy.metrics_from.push_back((*from)[i]);
    }
  }

  if (auto st = obj.find("status"); st != obj.end()) s.status = *st;
  s.raw = obj;
  return s;
}

Result<int64_t> QuantityBytes(const Json& q, std::string_view field) {
  if (q.is_number_integer()) {
    if (q.get<int64_t>() < 0) return InvalidArgumentError("{}: negative", field);
    return q.get<int64_t>();
  }
  if (!q.is_string()) return InvalidArgumentError("{}: expected a quantity", field);
  std::string s = q.get<std::string>();
  size_t i = 0;
  while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
  std::string number = s.substr(0, i), suffix = s.substr(i);
  if (number.empty() || std::count(number.begin(), number.end(), '.') > 1) {
    return InvalidArgumentError("{}: '{}' is not a quantity such as 2Gi", field, s);
  }
  double value = std::strtod(number.c_str(), nullptr);
  static const std::pair<const char*, double> kSuffixes[] = {{"", 1},
                                                             {"k", 1e3},
                                                             {"M", 1e6},
                                                             {"G", 1e9},
                                                             {"T", 1e12},
                                                             {"P", 1e15},
                                                             {"E", 1e18},
                                                             {"Ki", 1024.0},
                                                             {"Mi", 1048576.0},
                                                             {"Gi", 1073741824.0},
                                                             {"Ti", 1099511627776.0},
                                                             {"Pi", 1125899906842624.0},
                                                             {"Ei", 1152921504606846976.0}};
  double mult = -1;
  for (const auto& [suf, m] : kSuffixes) {
    if (suffix == suf) mult = m;
  }
  if (mult < 0 && suffix.size() > 1 && (suffix[0] == 'e' || suffix[0] == 'E')) {
    char* end = nullptr;
    long exp = std::strtol(suffix.c_str() + 1, &end, 10);
    if (end != nullptr && *end == '\0' && exp >= 0 && exp <= 18) mult = std::pow(10.0, exp);
  }
  if (mult < 0) return InvalidArgumentError("{}: '{}' has an unknown unit '{}'", field, s, suffix);
  double bytes = std::ceil(value * mult);
  if (bytes > 9.2e18) return InvalidArgumentError("{}: '{}' is too large", field, s);
  return static_cast<int64_t>(bytes);
}

ChildNames::ChildNames(const std::string& service)
    : entry_service(service),
      engine(service + "-engine"),
      router(service + "-router"),
      model_pvc(service + "-model"),
      pull_job_prefix(service + "-pull-") {}

std::map<std::string, std::string> CommonLabels(const LLMService& s) {
  return {{"app.kubernetes.io/name", "kinfer"},
          {"app.kubernetes.io/instance", s.metadata.name},
          {kManagedByLabel, kManagedByValue},
          {kServiceLabel, s.metadata.name}};
}

std::map<std::string, std::string> EngineSelector(const LLMService& s) {
  return {{"app.kubernetes.io/name", "kinfer"},
          {"app.kubernetes.io/instance", s.metadata.name},
          {"app.kubernetes.io/component", "engine"}};
}

std::map<std::string, std::string> EngineServingSelector(const LLMService& s) {
  auto selector = EngineSelector(s);
  selector[kServingLabel] = "true";
  return selector;
}

bool ScalesToZero(const LLMService& s) {
  return s.spec.router.enabled && s.spec.autoscaling && s.spec.autoscaling->min_replicas == 0;
}

std::map<std::string, std::string> RouterSelector(const LLMService& s) {
  return {{"app.kubernetes.io/name", "kinfer"},
          {"app.kubernetes.io/instance", s.metadata.name},
          {"app.kubernetes.io/component", "router"}};
}

std::string RouterPolicyFlag(const std::string& crd_policy) {
  if (crd_policy == "prefixAware") return "prefix";
  if (crd_policy == "leastLoaded") return "least_request";
  if (crd_policy == "sessionAffinity") return "session";
  if (crd_policy == "roundRobin") return "round_robin";
  return "";
}

}  // namespace kinfer::op
