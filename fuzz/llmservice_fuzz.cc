// libFuzzer target: an LLMService as `kinfer operator --render` reads it (YAML through yaml-cpp),
// then the operator's pure reconciler. The YAML reader, ParseLLMService (which re-checks what the
// API server's schema should have, since a status or an older CRD may not match), Desired and
// ComputeStatus must turn any input into objects or a clear error: never a crash, a hang or an
// exception escaping them.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "k8s/yaml.h"
#include "operator/desired.h"
#include "operator/llmservice.h"
#include "operator/status.h"

namespace {

void Reconcile(kinfer::Json doc) {
  using namespace kinfer;
  if (!doc.is_object()) return;
  if (doc.contains("metadata") && doc["metadata"].is_object()) {
    doc["metadata"]["namespace"] = "default";
    doc["metadata"]["uid"] = "00000000-0000-0000-0000-000000000000";
  }
  auto s = op::ParseLLMService(doc);
  if (!s.ok()) return;
  op::ReconcileConfig config{.image = "kinfer:fuzz", .operator_namespace = "kinfer-system"};
  for (bool pulled : {false, true}) {
    op::ObservedState observed{.pull_complete = pulled, .engine_model_revision = "old"};
    auto want = op::Desired(*s, config, observed);
    op::StatusInputs in{.service = &*s, .desired = want.ok() ? &*want : nullptr};
    // The live engine Deployment as the status sees it: the fuzzed object's status reused, so
    // odd replica counts and conditions reach Rollout and the condition bookkeeping.
    Json live = Json::object();
    if (doc.contains("status")) live["status"] = doc["status"];
    in.engine_deployment = &live;
    in.now = std::chrono::system_clock::time_point(std::chrono::seconds(1700000000));
    Json status = op::ComputeStatus(in);
    (void)op::TransitionEvents(s->status, status);
    if (want.ok()) (void)op::ObjectsYaml(want->objects);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto docs = kinfer::k8s::YamlToJson(text, "fuzz.yaml");
  if (!docs.ok()) return 0;
  for (auto& doc : *docs) Reconcile(std::move(doc));
  return 0;
}
