#include "operator/desired.h"

#include "k8s/objects.h"
#include "k8s/yaml.h"

namespace kinfer::op {
namespace {

constexpr int kApiPort = 8000;
constexpr int kMetricsPort = 9090;

Json Labels(const std::map<std::string, std::string>& m) {
  Json j = Json::object();
  for (const auto& [k, v] : m) j[k] = v;
  return j;
}

std::map<std::string, std::string> With(std::map<std::string, std::string> a,
                                        const std::map<std::string, std::string>& b) {
  for (const auto& [k, v] : b) a[k] = v;
  return a;
}

// metadata for a child: name, namespace, labels, the controller ownerReference.
Json Meta(const LLMService& s, const std::string& name, const std::string& component) {
  auto labels = CommonLabels(s);
  if (!component.empty()) labels["app.kubernetes.io/component"] = component;
  return {{"name", name},
          {"namespace", s.metadata.namespace_},
          {"labels", Labels(labels)},
          {"ownerReferences", Json::array({s.OwnerRef().ToJson()})}};
}

Json Object(const char* api_version, const char* kind, Json metadata) {
  return {{"apiVersion", api_version}, {"kind", kind}, {"metadata", std::move(metadata)}};
}

// FNV-1a 64: stable across builds and machines, enough to tell pull specs apart.
std::string ShortHash(const std::string& text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return fmt::format("{:016x}", h).substr(0, 10);
}

std::string ModelRevision(const ModelSource& src) {
  std::string spec = src.hub_url + "\n" + src.hub_endpoint + "\n";
  for (const std::string& g : src.hub_include) spec += g + "\n";
  if (src.hub_token) spec += src.hub_token->name + "/" + src.hub_token->key;
  return ShortHash(spec);
}

Json QuantityJson(const std::string& q) {
  // Integers stay integers so the API server's defaulting and our apply agree byte for byte.
  bool digits = !q.empty() && q.find_first_not_of("0123456789") == std::string::npos;
  if (digits && q.size() < 18) return Json(std::stoll(q));
  return Json(q);
}

Json ResourcesJson(const ResourceList& requests, const ResourceList& limits, int64_t gpu) {
  Json r = Json::object();
  for (const auto& [k, v] : requests) r["requests"][k] = QuantityJson(v);
  for (const auto& [k, v] : limits) r["limits"][k] = QuantityJson(v);
  if (gpu > 0) r["limits"]["nvidia.com/gpu"] = gpu;
  return r;
}

Json PodSecurityContext() {
  return {{"runAsNonRoot", true},
          {"runAsUser", 65532},
          {"runAsGroup", 65532},
          {"fsGroup", 65532},
          {"seccompProfile", {{"type", "RuntimeDefault"}}}};
}

Json ContainerSecurityContext() {
  return {{"allowPrivilegeEscalation", false},
          {"readOnlyRootFilesystem", true},
          {"runAsNonRoot", true},
          {"capabilities", {{"drop", Json::array({"ALL"})}}},
          {"seccompProfile", {{"type", "RuntimeDefault"}}}};
}

Json HttpProbe(const char* path, int period, int failure, int timeout) {
  return {{"httpGet", {{"path", path}, {"port", "http"}, {"scheme", "HTTP"}}},
          {"periodSeconds", period},
          {"failureThreshold", failure},
          {"timeoutSeconds", timeout}};
}

Json Ports() {
  return Json::array({{{"name", "http"}, {"containerPort", kApiPort}, {"protocol", "TCP"}},
                      {{"name", "metrics"}, {"containerPort", kMetricsPort}, {"protocol", "TCP"}}});
}

// Soft spreading over nodes: replicas of one model should not share a node's fate when they
// need not.
Json Spread(const std::map<std::string, std::string>& selector) {
  return Json::array({{{"maxSkew", 1},
                       {"topologyKey", "kubernetes.io/hostname"},
                       {"whenUnsatisfiable", "ScheduleAnyway"},
                       {"labelSelector", {{"matchLabels", Labels(selector)}}}}});
}

std::string ModelMountPath(const LLMService& s) {
  const std::string& p = s.spec.model.path;
  if (p.empty()) return "/models";
  return "/models/" + (p[0] == '/' ? p.substr(1) : p);
}

// The volume holding the model and whether pods may mount it (hub+pvc: the claim).
Json ModelVolume(const LLMService& s, const ChildNames& names) {
  const ModelSource& src = s.spec.model.source;
  switch (src.kind) {
    case ModelSource::Kind::kPvc:
      return {{"name", "model"},
              {"persistentVolumeClaim", {{"claimName", src.claim_name}, {"readOnly", true}}}};
    case ModelSource::Kind::kHostPath:
      return {{"name", "model"}, {"hostPath", {{"path", src.host_path}, {"type", "Directory"}}}};
    case ModelSource::Kind::kHub:
      if (s.spec.storage.type == "emptyDir") {
        return {{"name", "model"},
                {"emptyDir", {{"sizeLimit", QuantityJson(s.spec.storage.size)}}}};
      }
      return {{"name", "model"},
              {"persistentVolumeClaim", {{"claimName", names.model_pvc}, {"readOnly", true}}}};
  }
  return {};
}

Json PullContainer(const LLMService& s, const std::string& image, const std::string& pull_policy) {
  const ModelSource& src = s.spec.model.source;
  Json args = Json::array({"pull", src.hub_url, "--dir=/models"});
  for (const std::string& g : src.hub_include) args.push_back("--include=" + g);
  Json env = Json::array();
  if (!src.hub_endpoint.empty())
    env.push_back({{"name", "HF_ENDPOINT"}, {"value", src.hub_endpoint}});
  if (src.hub_token) {
    env.push_back(
        {{"name", "HF_TOKEN"},
         {"valueFrom",
          {{"secretKeyRef", {{"name", src.hub_token->name}, {"key", src.hub_token->key}}}}}});
  }
  Json c = {
      {"name", "pull-model"},
      {"image", image},
      {"imagePullPolicy", pull_policy},
      {"args", args},
      {"resources",
       {{"requests", {{"cpu", "100m"}, {"memory", "128Mi"}}}, {"limits", {{"memory", "256Mi"}}}}},
      {"securityContext", ContainerSecurityContext()},
      {"volumeMounts", Json::array({{{"name", "model"}, {"mountPath", "/models"}},
                                    {{"name", "tmp"}, {"mountPath", "/tmp"}}})}};
  if (!env.empty()) c["env"] = env;
  return c;
}

Json TmpVolume() { return {{"name", "tmp"}, {"emptyDir", {{"sizeLimit", "64Mi"}}}}; }

Json AuthVolume(const LLMService& s) {
  return {{"name", "api-keys"},
          {"secret", {{"secretName", s.spec.auth->name}, {"defaultMode", 0440}}}};
}

Json EngineDeployment(const LLMService& s, const ReconcileConfig& cfg, const ChildNames& names,
                      const std::string& image, int32_t replicas,
                      const std::string& model_revision) {
  const LLMServiceSpec& sp = s.spec;
  Json args =
      Json::array({"serve", "--model=" + ModelMountPath(s), "--served-model-name=" + sp.model.name,
                   "--host=0.0.0.0", fmt::format("--port={}", kApiPort),
                   fmt::format("--metrics-port={}", kMetricsPort), "--log-format=json",
                   fmt::format("--drain-delay={}", cfg.drain_delay_seconds),
                   fmt::format("--shutdown-timeout={}", sp.engine.shutdown_timeout_seconds)});
  if (sp.engine.max_model_len)
    args.push_back(fmt::format("--max-model-len={}", *sp.engine.max_model_len));
  if (sp.engine.max_num_seqs)
    args.push_back(fmt::format("--max-num-seqs={}", *sp.engine.max_num_seqs));
  if (sp.engine.max_num_batched_tokens) {
    args.push_back(fmt::format("--max-num-batched-tokens={}", *sp.engine.max_num_batched_tokens));
  }
  if (!sp.engine.kv_cache_memory.empty()) {
    // Kubernetes quantities ("2Gi") become the byte count kinfer serve reads.
    auto bytes = QuantityBytes(Json(sp.engine.kv_cache_memory), "spec.engine.kvCacheMemory");
    if (bytes.ok()) args.push_back(fmt::format("--kv-cache-memory={}", *bytes));
  }
  if (sp.engine.threads) args.push_back(fmt::format("--threads={}", *sp.engine.threads));
  if (sp.auth) args.push_back("--api-key-file=/etc/kinfer/auth/" + sp.auth->key);
  for (const std::string& a : sp.engine.extra_args) args.push_back(a);

  Json mounts = Json::array({{{"name", "model"}, {"mountPath", "/models"}, {"readOnly", true}},
                             {{"name", "tmp"}, {"mountPath", "/tmp"}}});
  Json volumes = Json::array({ModelVolume(s, names), TmpVolume()});
  if (sp.auth) {
    mounts.push_back({{"name", "api-keys"}, {"mountPath", "/etc/kinfer/auth"}, {"readOnly", true}});
    volumes.push_back(AuthVolume(s));
  }
  Json container = {
      {"name", "kinfer"},
      {"image", image},
      {"imagePullPolicy", cfg.image_pull_policy},
      {"args", args},
      {"ports", Ports()},
      // /health answers while the model loads: up to 15 minutes to start. Both probes run every
      // second: a cold start (scale from zero) waits for the kubelet's next probe twice, once to
      // end the startup probe and once for /ready; at 5 s periods that added up to 10 s.
      {"startupProbe", HttpProbe("/health", 1, 900, 3)},
      {"readinessProbe", HttpProbe("/ready", 1, 3, 3)},
      {"livenessProbe", HttpProbe("/health", 10, 3, 5)},
      {"lifecycle", {{"preStop", {{"sleep", {{"seconds", cfg.pre_stop_seconds}}}}}}},
      {"resources", ResourcesJson(sp.resources.requests, sp.resources.limits, sp.resources.gpu)},
      {"securityContext", ContainerSecurityContext()},
      {"volumeMounts", mounts}};
  auto selector = EngineSelector(s);
  Json pod_meta = {{"labels", Labels(With(CommonLabels(s), EngineServingSelector(s)))}};
  if (!model_revision.empty()) pod_meta["annotations"][kModelRevisionAnnotation] = model_revision;
  Json pod_spec = {{"automountServiceAccountToken", false},
                   {"enableServiceLinks", false},
                   {"terminationGracePeriodSeconds", EngineGracePeriodSeconds(s, cfg)},
                   {"securityContext", PodSecurityContext()},
                   {"containers", Json::array({container})},
                   {"volumes", volumes},
                   {"topologySpreadConstraints", Spread(selector)}};
  if (sp.model.source.kind == ModelSource::Kind::kHub && sp.storage.type == "emptyDir") {
    pod_spec["initContainers"] = Json::array({PullContainer(s, image, cfg.image_pull_policy)});
  }
  if (sp.resources.gpu > 0) {
    pod_spec["tolerations"] = Json::array(
        {{{"key", "nvidia.com/gpu"}, {"operator", "Exists"}, {"effect", "NoSchedule"}}});
  }
  Json d = Object("apps/v1", "Deployment", Meta(s, names.engine, "engine"));
  d["spec"] = {
      {"replicas", replicas},
      {"revisionHistoryLimit", 5},
      // Above the startup probe's 15 minutes, so a slow model load is not a failure.
      {"progressDeadlineSeconds", 1800},
      {"selector", {{"matchLabels", Labels(selector)}}},
      {"strategy",
       {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxSurge", 1}, {"maxUnavailable", 0}}}}},
      {"template", {{"metadata", pod_meta}, {"spec", pod_spec}}}};
  return d;
}

bool RouterMountsModel(const LLMService& s) {
  // The router tokenizes prompts with the model's tokenizer when it can read the files. A
  // hostPath is on every node; a claim only when several pods on several nodes may mount it.
  const ModelSource& src = s.spec.model.source;
  if (src.kind == ModelSource::Kind::kHostPath) return true;
  return src.kind == ModelSource::Kind::kHub && s.spec.storage.type == "pvc" &&
         s.spec.storage.access_mode != "ReadWriteOnce";
}

Json RouterDeployment(const LLMService& s, const ReconcileConfig& cfg, const ChildNames& names,
                      const std::string& image, bool model_ready) {
  const LLMServiceSpec& sp = s.spec;
  Json args = Json::array(
      {"router", fmt::format("--endpointslices={}/{}", s.metadata.namespace_, names.engine),
       "--policy=" + RouterPolicyFlag(sp.router.policy), "--served-model-name=" + sp.model.name,
       "--host=0.0.0.0", fmt::format("--port={}", kApiPort),
       fmt::format("--metrics-port={}", kMetricsPort), "--log-format=json",
       fmt::format("--drain-delay={}", cfg.drain_delay_seconds),
       fmt::format("--shutdown-timeout={}", sp.engine.shutdown_timeout_seconds)});
  if (ScalesToZero(s)) {
    args.push_back(fmt::format("--scale-from-zero={}/{}", s.metadata.namespace_, s.metadata.name));
  }
  Json mounts = Json::array({{{"name", "tmp"}, {"mountPath", "/tmp"}}});
  Json volumes = Json::array({TmpVolume()});
  if (RouterMountsModel(s) && model_ready) {
    args.push_back("--model=" + ModelMountPath(s));
    mounts.push_back({{"name", "model"}, {"mountPath", "/models"}, {"readOnly", true}});
    volumes.push_back(ModelVolume(s, names));
  }
  if (sp.auth) {
    args.push_back("--api-key-file=/etc/kinfer/auth/" + sp.auth->key);
    mounts.push_back({{"name", "api-keys"}, {"mountPath", "/etc/kinfer/auth"}, {"readOnly", true}});
    volumes.push_back(AuthVolume(s));
  }
  ResourceList requests = sp.router.requests, limits = sp.router.limits;
  if (requests.empty() && limits.empty()) {
    requests = {{"cpu", "100m"}, {"memory", "128Mi"}};
    limits = {{"memory", "512Mi"}};
  }
  Json container = {{"name", "router"},
                    {"image", image},
                    {"imagePullPolicy", cfg.image_pull_policy},
                    {"args", args},
                    {"ports", Ports()},
                    {"startupProbe", HttpProbe("/health", 2, 60, 3)},
                    // /ready waits for the first EndpointSlice sync.
                    {"readinessProbe", HttpProbe("/ready", 2, 2, 3)},
                    {"livenessProbe", HttpProbe("/health", 10, 3, 5)},
                    {"lifecycle", {{"preStop", {{"sleep", {{"seconds", cfg.pre_stop_seconds}}}}}}},
                    {"resources", ResourcesJson(requests, limits, 0)},
                    {"securityContext", ContainerSecurityContext()},
                    {"volumeMounts", mounts}};
  auto selector = RouterSelector(s);
  Json pod_spec = {{"serviceAccountName", names.router},
                   // The router lists and watches EndpointSlices with this account's token.
                   {"automountServiceAccountToken", true},
                   {"enableServiceLinks", false},
                   {"terminationGracePeriodSeconds", EngineGracePeriodSeconds(s, cfg)},
                   {"securityContext", PodSecurityContext()},
                   {"containers", Json::array({container})},
                   {"volumes", volumes},
                   {"topologySpreadConstraints", Spread(selector)}};
  Json d = Object("apps/v1", "Deployment", Meta(s, names.router, "router"));
  d["spec"] = {
      {"replicas", sp.router.replicas},
      {"revisionHistoryLimit", 5},
      {"selector", {{"matchLabels", Labels(selector)}}},
      {"strategy",
       {{"type", "RollingUpdate"}, {"rollingUpdate", {{"maxSurge", 1}, {"maxUnavailable", 0}}}}},
      {"template",
       {{"metadata", {{"labels", Labels(With(CommonLabels(s), selector))}}}, {"spec", pod_spec}}}};
  return d;
}

Json ServiceObject(const LLMService& s, const std::string& name, const std::string& component,
                   const std::map<std::string, std::string>& selector, bool headless) {
  Json svc = Object("v1", "Service", Meta(s, name, component));
  Json ports = Json::array(
      {{{"name", "http"}, {"port", kApiPort}, {"targetPort", "http"}, {"protocol", "TCP"}}});
  if (headless) {
    ports.push_back({{"name", "metrics"},
                     {"port", kMetricsPort},
                     {"targetPort", "metrics"},
                     {"protocol", "TCP"}});
  }
  svc["spec"] = {{"type", "ClusterIP"}, {"selector", Labels(selector)}, {"ports", ports}};
  if (headless) svc["spec"]["clusterIP"] = "None";
  return svc;
}

Json Pdb(const LLMService& s, const std::string& name, const std::string& component,
         const std::map<std::string, std::string>& selector) {
  Json pdb = Object("policy/v1", "PodDisruptionBudget", Meta(s, name, component));
  pdb["spec"] = {{"maxUnavailable", 1}, {"selector", {{"matchLabels", Labels(selector)}}}};
  return pdb;
}

Json OperatorPeer(const ReconcileConfig& cfg) {
  Json peer = {{"podSelector", {{"matchLabels", Labels(cfg.operator_pod_labels)}}}};
  if (!cfg.operator_namespace.empty()) {
    peer["namespaceSelector"] = {
        {"matchLabels", {{"kubernetes.io/metadata.name", cfg.operator_namespace}}}};
  }
  return peer;
}

// Ingress to `selector`'s pods: the API port from `api_from` (everyone when it is empty and
// `open_when_empty`), the metrics port from the operator and the metricsFrom peers.
Json Policy(const LLMService& s, const ReconcileConfig& cfg, const std::string& name,
            const std::string& component, const std::map<std::string, std::string>& selector,
            Json api_from, bool open_when_empty) {
  Json np = Object("networking.k8s.io/v1", "NetworkPolicy", Meta(s, name, component));
  Json api_rule = {{"ports", Json::array({{{"port", kApiPort}, {"protocol", "TCP"}}})}};
  if (!api_from.empty() || !open_when_empty) api_rule["from"] = api_from;
  Json metrics_from = Json::array({OperatorPeer(cfg)});
  for (const Json& p : s.spec.network_policy.metrics_from) metrics_from.push_back(p);
  Json metrics_rule = {{"ports", Json::array({{{"port", kMetricsPort}, {"protocol", "TCP"}}})},
                       {"from", metrics_from}};
  np["spec"] = {{"podSelector", {{"matchLabels", Labels(selector)}}},
                {"policyTypes", Json::array({"Ingress"})},
                {"ingress", Json::array({api_rule, metrics_rule})}};
  return np;
}

}  // namespace

int64_t EngineGracePeriodSeconds(const LLMService& s, const ReconcileConfig& config) {
  return config.pre_stop_seconds + config.drain_delay_seconds +
         s.spec.engine.shutdown_timeout_seconds + 10;
}

std::string ObjectsYaml(const std::vector<Json>& objects) {
  std::string out;
  for (const Json& o : objects) {
    out += "---\n";
    out += k8s::JsonToYaml(o);
  }
  return out;
}

const std::vector<const k8s::ResourceType*>& ChildTypes() {
  static const std::vector<const k8s::ResourceType*> kTypes = {&k8s::kServiceAccounts,
                                                               &k8s::kRoles,
                                                               &k8s::kRoleBindings,
                                                               &k8s::kPersistentVolumeClaims,
                                                               &k8s::kJobs,
                                                               &k8s::kServices,
                                                               &k8s::kDeployments,
                                                               &k8s::kPodDisruptionBudgets,
                                                               &k8s::kNetworkPolicies};
  return kTypes;
}

Result<DesiredState> Desired(const LLMService& s, const ReconcileConfig& config,
                             const ObservedState& observed) {
  const LLMServiceSpec& sp = s.spec;
  ChildNames names(s.metadata.name);
  std::string image = sp.image.empty() ? config.image : sp.image;
  if (image.empty()) {
    return FailedPreconditionError("no image: set spec.image or start the operator with --image");
  }
  DesiredState out;
  const bool router = sp.router.enabled;
  const bool pvc_pull = sp.model.source.kind == ModelSource::Kind::kHub && sp.storage.type == "pvc";

  if (router) {
    Json sa = Object("v1", "ServiceAccount", Meta(s, names.router, "router"));
    out.objects.push_back(sa);
    Json role = Object("rbac.authorization.k8s.io/v1", "Role", Meta(s, names.router, "router"));
    role["rules"] = Json::array({{{"apiGroups", Json::array({"discovery.k8s.io"})},
                                  {"resources", Json::array({"endpointslices"})},
                                  {"verbs", Json::array({"get", "list", "watch"})}}});
    if (ScalesToZero(s)) {
      // --scale-from-zero: 0 -> 1 on this LLMService's /scale, nothing else.
      role["rules"].push_back({{"apiGroups", Json::array({"kinfer.dev"})},
                               {"resources", Json::array({"llmservices/scale"})},
                               {"resourceNames", Json::array({s.metadata.name})},
                               {"verbs", Json::array({"get", "patch"})}});
    }
    out.objects.push_back(role);
    Json binding =
        Object("rbac.authorization.k8s.io/v1", "RoleBinding", Meta(s, names.router, "router"));
    binding["roleRef"] = {
        {"apiGroup", "rbac.authorization.k8s.io"}, {"kind", "Role"}, {"name", names.router}};
    binding["subjects"] = Json::array({{{"kind", "ServiceAccount"},
                                        {"name", names.router},
                                        {"namespace", s.metadata.namespace_}}});
    out.objects.push_back(binding);
  }

  std::string engine_revision;
  if (pvc_pull) {
    out.model_revision = ModelRevision(sp.model.source);
    Json pvc = Object("v1", "PersistentVolumeClaim", Meta(s, names.model_pvc, "model"));
    pvc["spec"] = {{"accessModes", Json::array({sp.storage.access_mode})},
                   {"resources", {{"requests", {{"storage", QuantityJson(sp.storage.size)}}}}}};
    if (!sp.storage.storage_class_name.empty()) {
      pvc["spec"]["storageClassName"] = sp.storage.storage_class_name;
    }
    out.objects.push_back(pvc);
    out.pull_job = names.pull_job_prefix + out.model_revision;
    Json job = Object("batch/v1", "Job", Meta(s, out.pull_job, "model"));
    job["metadata"]["annotations"][kModelRevisionAnnotation] = out.model_revision;
    Json pull = PullContainer(s, image, config.image_pull_policy);
    Json volumes = Json::array(
        {{{"name", "model"}, {"persistentVolumeClaim", {{"claimName", names.model_pvc}}}},
         TmpVolume()});
    job["spec"] = {
        {"backoffLimit", 6},
        {"template",
         {{"metadata",
           {{"labels", Labels(With(CommonLabels(s), {{"app.kubernetes.io/component", "model"}}))}}},
          {"spec",
           {{"restartPolicy", "Never"},
            {"automountServiceAccountToken", false},
            {"enableServiceLinks", false},
            {"securityContext", PodSecurityContext()},
            {"containers", Json::array({pull})},
            {"volumes", volumes}}}}}};
    out.objects.push_back(job);
    // Serve the new content once it is pulled; until then keep what the replicas run.
    engine_revision = observed.pull_complete ? out.model_revision : observed.engine_model_revision;
    out.engine_deployed = !engine_revision.empty();
  }

  if (router) {
    out.objects.push_back(
        ServiceObject(s, names.engine, "engine", EngineServingSelector(s), /*headless=*/true));
  }
  out.objects.push_back(ServiceObject(s, names.entry_service, router ? "router" : "engine",
                                      router ? RouterSelector(s) : EngineServingSelector(s),
                                      /*headless=*/false));
  if (out.engine_deployed) {
    out.objects.push_back(EngineDeployment(s, config, names, image, sp.replicas, engine_revision));
  }
  if (router) {
    out.objects.push_back(
        RouterDeployment(s, config, names, image, !pvc_pull || out.engine_deployed));
  }
  out.objects.push_back(Pdb(s, names.engine, "engine", EngineSelector(s)));
  if (router) out.objects.push_back(Pdb(s, names.router, "router", RouterSelector(s)));
  if (sp.network_policy.enabled) {
    Json allow = Json::array();
    for (const Json& p : sp.network_policy.allow_from) allow.push_back(p);
    if (router) {
      Json from_router =
          Json::array({{{"podSelector", {{"matchLabels", Labels(RouterSelector(s))}}}}});
      out.objects.push_back(
          Policy(s, config, names.engine, "engine", EngineSelector(s), from_router, false));
      out.objects.push_back(
          Policy(s, config, names.router, "router", RouterSelector(s), allow, true));
    } else {
      out.objects.push_back(
          Policy(s, config, names.engine, "engine", EngineSelector(s), allow, true));
    }
  }
  return out;
}

}  // namespace kinfer::op
