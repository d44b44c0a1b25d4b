#include "k8s/objects.h"

#include <ctime>

namespace kinfer::k8s {
namespace {

// Reading fields with the JSON path in errors: "deployment.json: metadata.labels.app: expected
// a string, got integer".
class Fields {
 public:
  Fields(const Json& obj, std::string source) : obj_(obj), source_(std::move(source)) {}

  Status Wrong(std::string_view key, std::string_view want, const Json& got) const {
    return InvalidArgumentError("{}.{}: expected {}, got {}", source_, key, want,
                                JsonTypeName(got));
  }
  const Json* Find(std::string_view key) const {
    if (!obj_.is_object()) return nullptr;
    auto it = obj_.find(key);
    if (it == obj_.end() || it->is_null()) return nullptr;
    return &*it;
  }
  Status Str(std::string_view key, std::string* out) const {
    const Json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_string()) return Wrong(key, "a string", *v);
    *out = v->get<std::string>();
    return Status::Ok();
  }
  template <typename T>
  Status Int(std::string_view key, T* out) const {
    const Json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_number_integer()) return Wrong(key, "an integer", *v);
    *out = static_cast<T>(v->get<int64_t>());
    return Status::Ok();
  }
  Status Bool(std::string_view key, bool* out) const {
    const Json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_boolean()) return Wrong(key, "true or false", *v);
    *out = v->get<bool>();
    return Status::Ok();
  }
  Status OptBool(std::string_view key, std::optional<bool>* out) const {
    const Json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_boolean()) return Wrong(key, "true or false", *v);
    *out = v->get<bool>();
    return Status::Ok();
  }
  Status StringMap(std::string_view key, std::map<std::string, std::string>* out) const {
    const Json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_object()) return Wrong(key, "an object", *v);
    for (const auto& [k, val] : v->items()) {
      if (!val.is_string()) return Wrong(std::string(key) + "." + k, "a string", val);
      (*out)[k] = val.get<std::string>();
    }
    return Status::Ok();
  }
  Status StringList(std::string_view key, std::vector<std::string>* out) const {
    const Json* v = Find(key);
    if (v == nullptr) return Status::Ok();
    if (!v->is_array()) return Wrong(key, "a list", *v);
    for (size_t i = 0; i < v->size(); ++i) {
      if (!(*v)[i].is_string()) {
        return Wrong(fmt::format("{}[{}]", key, i), "a string", (*v)[i]);
      }
      out->push_back((*v)[i].get<std::string>());
    }
    return Status::Ok();
  }
  // A nested object (absent: an empty one) or a list, with its source path.
  Result<Fields> Object(std::string_view key) const {
    static const Json kEmpty = Json::object();
    const Json* v = Find(key);
    if (v == nullptr) return Fields(kEmpty, Path(key));
    if (!v->is_object()) return Wrong(key, "an object", *v);
    return Fields(*v, Path(key));
  }
  Result<const Json*> List(std::string_view key) const {
    const Json* v = Find(key);
    if (v == nullptr) return static_cast<const Json*>(nullptr);
    if (!v->is_array()) return Wrong(key, "a list", *v);
    return v;
  }
  std::string Path(std::string_view key) const { return fmt::format("{}.{}", source_, key); }
  const std::string& source() const { return source_; }

 private:
  const Json& obj_;
  std::string source_;
};

int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

Json OwnerReference::ToJson() const {
  Json j = {{"apiVersion", api_version}, {"kind", kind}, {"name", name}, {"uid", uid}};
  if (controller) j["controller"] = true;
  if (block_owner_deletion) j["blockOwnerDeletion"] = true;
  return j;
}

const OwnerReference* ObjectMeta::ControllerRef() const {
  for (const OwnerReference& r : owner_references) {
    if (r.controller) return &r;
  }
  return nullptr;
}

Result<ObjectMeta> ParseObjectMeta(const Json& obj, std::string_view source) {
  ObjectMeta m;
  Fields top(obj, std::string(source));
  KINFER_ASSIGN_OR_RETURN(Fields f, top.Object("metadata"));
  KINFER_RETURN_IF_ERROR(f.Str("name", &m.name));
  KINFER_RETURN_IF_ERROR(f.Str("namespace", &m.namespace_));
  KINFER_RETURN_IF_ERROR(f.Str("uid", &m.uid));
  KINFER_RETURN_IF_ERROR(f.Str("resourceVersion", &m.resource_version));
  KINFER_RETURN_IF_ERROR(f.Int("generation", &m.generation));
  KINFER_RETURN_IF_ERROR(f.StringMap("labels", &m.labels));
  KINFER_RETURN_IF_ERROR(f.StringMap("annotations", &m.annotations));
  KINFER_RETURN_IF_ERROR(f.Str("creationTimestamp", &m.creation_timestamp));
  KINFER_RETURN_IF_ERROR(f.Str("deletionTimestamp", &m.deletion_timestamp));
  KINFER_ASSIGN_OR_RETURN(const Json* refs, f.List("ownerReferences"));
  if (refs != nullptr) {
    for (size_t i = 0; i < refs->size(); ++i) {
      const Json& rj = (*refs)[i];
      std::string path = fmt::format("{}.ownerReferences[{}]", f.source(), i);
      if (!rj.is_object()) return InvalidArgumentError("{}: expected an object", path);
      Fields rf(rj, path);
      OwnerReference r;
      KINFER_RETURN_IF_ERROR(rf.Str("apiVersion", &r.api_version));
      KINFER_RETURN_IF_ERROR(rf.Str("kind", &r.kind));
      KINFER_RETURN_IF_ERROR(rf.Str("name", &r.name));
      KINFER_RETURN_IF_ERROR(rf.Str("uid", &r.uid));
      KINFER_RETURN_IF_ERROR(rf.Bool("controller", &r.controller));
      KINFER_RETURN_IF_ERROR(rf.Bool("blockOwnerDeletion", &r.block_owner_deletion));
      m.owner_references.push_back(std::move(r));
    }
  }
  return m;
}

Json Condition::ToJson() const {
  Json j = {{"type", type},
            {"status", status},
            {"reason", reason},
            {"message", message},
            {"lastTransitionTime", last_transition_time}};
  if (observed_generation > 0) j["observedGeneration"] = observed_generation;
  return j;
}

Result<std::vector<Condition>> ParseConditions(const Json& list, std::string_view source) {
  std::vector<Condition> out;
  if (list.is_null()) return out;
  if (!list.is_array()) {
    return InvalidArgumentError("{}: expected a list, got {}", source, JsonTypeName(list));
  }
  for (size_t i = 0; i < list.size(); ++i) {
    std::string path = fmt::format("{}[{}]", source, i);
    if (!list[i].is_object()) return InvalidArgumentError("{}: expected an object", path);
    Fields f(list[i], path);
    Condition c;
    KINFER_RETURN_IF_ERROR(f.Str("type", &c.type));
    KINFER_RETURN_IF_ERROR(f.Str("status", &c.status));
    KINFER_RETURN_IF_ERROR(f.Str("reason", &c.reason));
    KINFER_RETURN_IF_ERROR(f.Str("message", &c.message));
    KINFER_RETURN_IF_ERROR(f.Str("lastTransitionTime", &c.last_transition_time));
    KINFER_RETURN_IF_ERROR(f.Int("observedGeneration", &c.observed_generation));
    out.push_back(std::move(c));
  }
  return out;
}

std::string EndpointSlice::service_name() const {
  auto it = metadata.labels.find("kubernetes.io/service-name");
  return it == metadata.labels.end() ? std::string() : it->second;
}

Result<EndpointSlice> ParseEndpointSlice(const Json& obj, std::string_view source) {
  EndpointSlice s;
  KINFER_ASSIGN_OR_RETURN(s.metadata, ParseObjectMeta(obj, source));
  Fields f(obj, std::string(source));
  KINFER_RETURN_IF_ERROR(f.Str("addressType", &s.address_type));
  KINFER_ASSIGN_OR_RETURN(const Json* eps, f.List("endpoints"));
  if (eps != nullptr) {
    for (size_t i = 0; i < eps->size(); ++i) {
      std::string path = fmt::format("{}.endpoints[{}]", source, i);
      if (!(*eps)[i].is_object()) return InvalidArgumentError("{}: expected an object", path);
      Fields ef((*eps)[i], path);
      Endpoint e;
      KINFER_RETURN_IF_ERROR(ef.StringList("addresses", &e.addresses));
      KINFER_ASSIGN_OR_RETURN(Fields cf, ef.Object("conditions"));
      KINFER_RETURN_IF_ERROR(cf.OptBool("ready", &e.conditions.ready));
      KINFER_RETURN_IF_ERROR(cf.OptBool("serving", &e.conditions.serving));
      KINFER_RETURN_IF_ERROR(cf.OptBool("terminating", &e.conditions.terminating));
      KINFER_RETURN_IF_ERROR(ef.Str("hostname", &e.hostname));
      KINFER_RETURN_IF_ERROR(ef.Str("nodeName", &e.node_name));
      KINFER_RETURN_IF_ERROR(ef.Str("zone", &e.zone));
      KINFER_ASSIGN_OR_RETURN(Fields tf, ef.Object("targetRef"));
      KINFER_RETURN_IF_ERROR(tf.Str("kind", &e.target_kind));
      KINFER_RETURN_IF_ERROR(tf.Str("name", &e.target_name));
      KINFER_RETURN_IF_ERROR(tf.Str("namespace", &e.target_namespace));
      KINFER_RETURN_IF_ERROR(tf.Str("uid", &e.target_uid));
      s.endpoints.push_back(std::move(e));
    }
  }
  KINFER_ASSIGN_OR_RETURN(const Json* ports, f.List("ports"));
  if (ports != nullptr) {
    for (size_t i = 0; i < ports->size(); ++i) {
      std::string path = fmt::format("{}.ports[{}]", source, i);
      if (!(*ports)[i].is_object()) return InvalidArgumentError("{}: expected an object", path);
      Fields pf((*ports)[i], path);
      EndpointPort p;
      KINFER_RETURN_IF_ERROR(pf.Str("name", &p.name));
      if (pf.Find("port") != nullptr) {
        int32_t port = 0;
        KINFER_RETURN_IF_ERROR(pf.Int("port", &port));
        p.port = port;
      }
      KINFER_RETURN_IF_ERROR(pf.Str("protocol", &p.protocol));
      KINFER_RETURN_IF_ERROR(pf.Str("appProtocol", &p.app_protocol));
      s.ports.push_back(std::move(p));
    }
  }
  return s;
}

Result<Lease> ParseLease(const Json& obj, std::string_view source) {
  Lease l;
  KINFER_ASSIGN_OR_RETURN(l.metadata, ParseObjectMeta(obj, source));
  Fields top(obj, std::string(source));
  KINFER_ASSIGN_OR_RETURN(Fields f, top.Object("spec"));
  KINFER_RETURN_IF_ERROR(f.Str("holderIdentity", &l.spec.holder_identity));
  KINFER_RETURN_IF_ERROR(f.Int("leaseDurationSeconds", &l.spec.lease_duration_seconds));
  KINFER_RETURN_IF_ERROR(f.Str("acquireTime", &l.spec.acquire_time));
  KINFER_RETURN_IF_ERROR(f.Str("renewTime", &l.spec.renew_time));
  KINFER_RETURN_IF_ERROR(f.Int("leaseTransitions", &l.spec.lease_transitions));
  return l;
}

Result<Scale> ParseScale(const Json& obj, std::string_view source) {
  Scale s;
  KINFER_ASSIGN_OR_RETURN(s.metadata, ParseObjectMeta(obj, source));
  Fields top(obj, std::string(source));
  KINFER_ASSIGN_OR_RETURN(Fields spec, top.Object("spec"));
  KINFER_RETURN_IF_ERROR(spec.Int("replicas", &s.spec_replicas));
  KINFER_ASSIGN_OR_RETURN(Fields status, top.Object("status"));
  KINFER_RETURN_IF_ERROR(status.Int("replicas", &s.status_replicas));
  KINFER_RETURN_IF_ERROR(status.Str("selector", &s.selector));
  return s;
}

std::string FormatTime(std::chrono::system_clock::time_point t) {
  std::time_t tt = std::chrono::system_clock::to_time_t(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string FormatMicroTime(std::chrono::system_clock::time_point t) {
  auto secs = std::chrono::floor<std::chrono::seconds>(t);
  auto micros = std::chrono::duration_cast<std::chrono::microseconds>(t - secs).count();
  std::time_t tt = std::chrono::system_clock::to_time_t(secs);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%S", &tm);
  return fmt::format("{}.{:06d}Z", buf, micros);
}

Result<std::chrono::system_clock::time_point> ParseTime(std::string_view s) {
  // YYYY-MM-DDTHH:MM:SS[.frac](Z|+hh:mm|-hh:mm)
  auto bad = [&] { return InvalidArgumentError("'{}' is not an RFC 3339 time", s); };
  auto num = [&](size_t pos, size_t len, int* out) {
    if (pos + len > s.size()) return false;
    int v = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return true;
  };
  int y, mo, d, h, mi, se;
  if (s.size() < 20 || !num(0, 4, &y) || s[4] != '-' || !num(5, 2, &mo) || s[7] != '-' ||
      !num(8, 2, &d) || (s[10] != 'T' && s[10] != 't') || !num(11, 2, &h) || s[13] != ':' ||
      !num(14, 2, &mi) || s[16] != ':' || !num(17, 2, &se)) {
    return bad();
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 60) return bad();
  size_t pos = 19;
  int64_t micros = 0;
  if (pos < s.size() && s[pos] == '.') {
    ++pos;
    int digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') {
      if (digits < 6) micros = micros * 10 + (s[pos] - '0');
      ++digits;
      ++pos;
    }
    if (digits == 0) return bad();
    for (int i = digits; i < 6; ++i) micros *= 10;
  }
  int64_t offset = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z')) {
    ++pos;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-')) {
    int oh, om;
    if (!num(pos + 1, 2, &oh) || pos + 3 >= s.size() || s[pos + 3] != ':' ||
        !num(pos + 4, 2, &om)) {
      return bad();
    }
    offset = (oh * 3600 + om * 60) * (s[pos] == '+' ? 1 : -1);
    pos += 6;
  } else {
    return bad();
  }
  if (pos != s.size()) return bad();
  int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + se - offset;
  return std::chrono::system_clock::time_point(std::chrono::seconds(secs) +
                                               std::chrono::microseconds(micros));
}

std::string LabelSelector(const std::map<std::string, std::string>& labels) {
  std::string out;
  for (const auto& [k, v] : labels) {
    if (!out.empty()) out += ",";
    out += k + "=" + v;
  }
  return out;
}

}  // namespace kinfer::k8s
