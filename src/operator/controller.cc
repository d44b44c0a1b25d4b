#include "operator/controller.h"

#include <pthread.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <set>

#include "core/log.h"
#include "operator/status.h"

namespace kinfer::op {
namespace {

using Clock = std::chrono::steady_clock;

std::pair<std::string, std::string> SplitKey(const std::string& key) {
  size_t slash = key.find('/');
  if (slash == std::string::npos) return {"", key};
  return {key.substr(0, slash), key.substr(slash + 1)};
}

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Whether an LLMService update is worth a reconcile: not when only its status (which we write)
// or its resourceVersion moved.
bool SpecOrMetaChanged(const k8s::ObjectPtr& a, const k8s::ObjectPtr& b) {
  return a->meta.generation != b->meta.generation || a->meta.labels != b->meta.labels ||
         a->meta.annotations != b->meta.annotations ||
         a->meta.deletion_timestamp != b->meta.deletion_timestamp || a->meta.uid != b->meta.uid;
}

}  // namespace

Controller::Controller(k8s::Client& client, ControllerOptions options,
                       server::MetricsRegistry* metrics)
    : client_(client),
      options_(std::move(options)),
      metrics_(metrics),
      events_(client, {.controller = "kinfer.dev/operator", .instance = options_.instance}),
      queue_(options_.queue) {
  if (metrics_ != nullptr) {
    reconcile_total_ =
        &metrics_->Counter("kinfer_operator_reconcile", "Reconciles of LLMServices, by result");
    reconcile_seconds_ =
        &metrics_->Histogram("kinfer_operator_reconcile_duration_seconds",
                             "Time to reconcile one LLMService (apply, prune, status)",
                             {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10});
    queue_wait_seconds_ = &metrics_->Histogram("kinfer_operator_queue_wait_seconds",
                                               "Time a key waited in the work queue",
                                               {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 30});
    queue_depth_ =
        &metrics_->Gauge("kinfer_operator_work_queue_depth", "Keys waiting in the work queue");
    auto& relists = metrics_->Counter("kinfer_operator_informer_relists",
                                      "Full LISTs of an informer after its first, by reason");
    auto& watch_events = metrics_->Counter("kinfer_operator_informer_events",
                                           "Watch events applied to an informer's cache");
    metrics_->OnCollect([this, &relists, &watch_events] {
      auto report = [&](const k8s::Informer& inf) {
        k8s::InformerStats st = inf.stats();
        const std::string& r = inf.options().name;
        relists.Set({{"resource", r}, {"reason", "gone"}}, static_cast<double>(st.relists_gone));
        relists.Set({{"resource", r}, {"reason", "reconnect"}},
                    static_cast<double>(st.relists_reconnect));
        relists.Set({{"resource", r}, {"reason", "periodic"}},
                    static_cast<double>(st.relists_periodic));
        watch_events.Set({{"resource", r}}, static_cast<double>(st.events));
      };
      report(*services_);
      for (const auto& [t, inf] : children_) report(*inf);
    });
  }
  k8s::InformerOptions so;
  so.type = kLLMServices;
  so.namespace_ = options_.namespace_;
  so.name = "llmservices";
  so.relist_on_reconnect = options_.relist_on_reconnect;
  services_ = std::make_unique<k8s::Informer>(client_, so);
  services_->AddHandlers({
      .on_add =
          [this](const k8s::ObjectPtr& o) {
            Enqueue(k8s::ObjectKey(o->meta.namespace_, o->meta.name));
          },
      .on_update =
          [this](const k8s::ObjectPtr& a, const k8s::ObjectPtr& b) {
            if (SpecOrMetaChanged(a, b)) Enqueue(k8s::ObjectKey(b->meta.namespace_, b->meta.name));
          },
      .on_delete = nullptr,
  });
  for (const k8s::ResourceType* t : ChildTypes()) {
    k8s::InformerOptions co;
    co.type = *t;
    co.namespace_ = options_.namespace_;
    co.label_selector = std::string(kManagedByLabel) + "=" + kManagedByValue;
    co.name = t->plural;
    co.relist_on_reconnect = options_.relist_on_reconnect;
    auto inf = std::make_unique<k8s::Informer>(client_, co);
    inf->AddHandlers({
        .on_add = [this](const k8s::ObjectPtr& o) { EnqueueOwner(o); },
        .on_update = [this](const k8s::ObjectPtr&, const k8s::ObjectPtr& n) { EnqueueOwner(n); },
        .on_delete = [this](const k8s::ObjectPtr& o) { EnqueueOwner(o); },
    });
    children_.emplace_back(t, std::move(inf));
  }
}

Controller::~Controller() { Stop(); }

void Controller::EnqueueOwner(const k8s::ObjectPtr& child) {
  const k8s::OwnerReference* ref = child->meta.ControllerRef();
  if (ref == nullptr || ref->kind != "LLMService" ||
      ref->api_version.rfind("kinfer.dev/", 0) != 0) {
    return;
  }
  Enqueue(k8s::ObjectKey(child->meta.namespace_, ref->name));
}

void Controller::StartInformers() {
  services_->Start();
  for (auto& [t, inf] : children_) inf->Start();
}

bool Controller::HasSynced() const {
  if (!services_->HasSynced()) return false;
  for (const auto& [t, inf] : children_) {
    if (!inf->HasSynced()) return false;
  }
  return true;
}

bool Controller::WaitForSync(std::chrono::milliseconds timeout, std::stop_token stop) {
  auto deadline = Clock::now() + timeout;
  if (!services_->WaitForSync(timeout, stop)) return false;
  for (auto& [t, inf] : children_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0 || !inf->WaitForSync(left, stop)) return false;
  }
  return true;
}

void Controller::StartWorkers(std::stop_token leading) {
  KINFER_CHECK(workers_.empty());
  // A new leader looks at everything once: what changed while it was a standby is queued anyway
  // (informers enqueue on standbys too), this covers what the old leader left half done.
  for (const k8s::ObjectPtr& o : services_->List()) {
    Enqueue(k8s::ObjectKey(o->meta.namespace_, o->meta.name));
  }
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this, leading, i](std::stop_token own) {
      std::string name = fmt::format("op-worker-{}", i);
      pthread_setname_np(pthread_self(), name.c_str());
      // Stop on either: leadership lost, or StopWorkers.
      std::stop_source both;
      std::stop_callback a(leading, [&both] { both.request_stop(); });
      std::stop_callback b(own, [&both] { both.request_stop(); });
      Worker(both.get_token());
    });
  }
  resync_ = std::jthread([this, leading](std::stop_token own) {
    pthread_setname_np(pthread_self(), "op-resync");
    std::stop_source both;
    std::stop_callback a(leading, [&both] { both.request_stop(); });
    std::stop_callback b(own, [&both] { both.request_stop(); });
    ResyncLoop(both.get_token());
  });
}

void Controller::StopWorkers() {
  for (auto& w : workers_) w.request_stop();
  if (resync_.joinable()) resync_.request_stop();
  for (auto& w : workers_) {
    if (w.joinable()) w.join();
  }
  workers_.clear();
  if (resync_.joinable()) resync_.join();
}

void Controller::Stop() {
  StopWorkers();
  queue_.ShutDown();
  services_->Stop();
  for (auto& [t, inf] : children_) inf->Stop();
}

void Controller::ResyncLoop(std::stop_token stop) {
  std::mutex mu;
  std::condition_variable_any cv;
  while (!stop.stop_requested()) {
    {
      std::unique_lock<std::mutex> lock(mu);
      if (cv.wait_for(lock, stop, options_.resync_period, [] { return false; })) return;
      if (stop.stop_requested()) return;
    }
    for (const k8s::ObjectPtr& o : services_->List()) {
      Enqueue(k8s::ObjectKey(o->meta.namespace_, o->meta.name));
    }
  }
}

void Controller::Worker(std::stop_token stop) {
  while (auto key = queue_.Get(stop)) {
    auto waited = queue_.TakeWaited(*key);
    if (queue_wait_seconds_ != nullptr) {
      queue_wait_seconds_->Observe({}, std::chrono::duration<double>(waited).count());
    }
    auto t0 = Clock::now();
    Status s = Reconcile(*key, stop);
    double took = Seconds(Clock::now() - t0);
    ++reconciles_;
    if (reconcile_seconds_ != nullptr) reconcile_seconds_->Observe({}, took);
    if (s.ok()) {
      queue_.Forget(*key);
      if (reconcile_total_ != nullptr) reconcile_total_->Add({{"result", "success"}});
      KINFER_LOG_DEBUG("reconciled {} in {:.1f} ms", *key, took * 1000);
    } else if (s.code() == StatusCode::kCancelled || stop.stop_requested()) {
      // Leadership ended mid-way; the next leader reconciles this key again.
    } else {
      queue_.AddRateLimited(*key);
      if (reconcile_total_ != nullptr) reconcile_total_->Add({{"result", "error"}});
      KINFER_LOG_WARN("reconcile {} failed (attempt {}), retrying with backoff: {}", *key,
                      queue_.Failures(*key), s.message());
    }
    queue_.Done(*key);
    if (queue_depth_ != nullptr) queue_depth_->Set({}, static_cast<double>(queue_.Len()));
  }
}

const k8s::ResourceType* Controller::TypeOf(const Json& obj) const {
  std::string api_version = obj.value("apiVersion", ""), kind = obj.value("kind", "");
  for (const k8s::ResourceType* t : ChildTypes()) {
    if (t->kind == kind && t->ApiVersion() == api_version) return t;
  }
  return nullptr;
}

void Controller::RecordEvent(const Json& regarding, k8s::EventType type, const std::string& reason,
                             const std::string& note, std::stop_token stop) {
  Status s = events_.Record(regarding, type, reason, "Reconcile", note, stop);
  if (!s.ok() && s.code() != StatusCode::kCancelled) {
    KINFER_LOG_WARN("event {} for {}: {}", reason, regarding["metadata"].value("name", ""),
                    s.message());
  }
}

Status Controller::ApplyStatus(const LLMService& s, const Json& status, std::stop_token stop) {
  Json obj = {{"apiVersion", kLLMServices.ApiVersion()},
              {"kind", kLLMServices.kind},
              {"metadata", {{"name", s.metadata.name}, {"namespace", s.metadata.namespace_}}},
              {"status", status}};
  k8s::ApplyOptions ao;
  ao.field_manager = options_.field_manager;
  ao.subresource = "status";
  auto r = client_.Apply(kLLMServices, s.metadata.namespace_, obj, ao, stop);
  return r.status();
}

Status Controller::Prune(const LLMService& s, const DesiredState& want, std::stop_token stop) {
  std::set<std::pair<std::string, std::string>> keep;  // (kind, name)
  for (const Json& o : want.objects) keep.emplace(o["kind"], o["metadata"]["name"]);
  Status first;
  for (auto& [type, inf] : children_) {
    auto owned = inf->List([&](const k8s::Object& o) {
      const k8s::OwnerReference* ref = o.meta.ControllerRef();
      return o.meta.namespace_ == s.metadata.namespace_ && ref != nullptr &&
             ref->uid == s.metadata.uid && o.meta.deletion_timestamp.empty();
    });
    for (const k8s::ObjectPtr& o : owned) {
      if (keep.contains({type->kind, o->meta.name})) continue;
      k8s::DeleteOptions d;
      d.precondition_uid = o->meta.uid;
      Status st = client_.Delete(*type, o->meta.namespace_, o->meta.name, d, stop);
      if (st.ok()) {
        KINFER_LOG_INFO("{}/{}: deleted {} {}, no longer wanted", s.metadata.namespace_,
                        s.metadata.name, type->kind, o->meta.name);
      } else if (!k8s::IsNotFound(st) && first.ok()) {
        first = st;
      }
    }
  }
  return first;
}

Status Controller::Reconcile(const std::string& key, std::stop_token stop) {
  auto [ns, name] = SplitKey(key);
  k8s::ObjectPtr obj = services_->Get(ns, name);
  if (obj == nullptr || !obj->meta.deletion_timestamp.empty()) return Status::Ok();
  auto now = std::chrono::system_clock::now();

  auto parsed = ParseLLMService(obj->json);
  if (!parsed.ok()) {
    // Nothing to build until the spec changes; say so in the status and an Event.
    LLMService stub;
    stub.metadata = obj->meta;
    if (obj->json.contains("status")) stub.status = obj->json["status"];
    stub.raw = obj->json;
    StatusInputs in{.service = &stub,
                    .error = parsed.status().message(),
                    .error_reason = "InvalidSpec",
                    .now = now};
    Json status = ComputeStatus(in);
    if (status != stub.status) {
      KINFER_RETURN_IF_ERROR(ApplyStatus(stub, status, stop));
      RecordEvent(obj->json, k8s::EventType::kWarning, "InvalidSpec", parsed.status().message(),
                  stop);
    }
    return Status::Ok();
  }
  const LLMService& s = *parsed;
  ChildNames names(s.metadata.name);

  // What the informers saw that changes the answer: the pull Job's outcome, the content the
  // engines serve now.
  ObservedState observed;
  auto first = Desired(s, options_.reconcile, observed);
  const k8s::Informer* jobs = nullptr;
  const k8s::Informer* deployments = nullptr;
  for (auto& [t, inf] : children_) {
    if (t == &k8s::kJobs) jobs = inf.get();
    if (t == &k8s::kDeployments) deployments = inf.get();
  }
  k8s::ObjectPtr job_obj, engine_obj, router_obj;
  if (first.ok() && !first->pull_job.empty()) job_obj = jobs->Get(ns, first->pull_job);
  engine_obj = deployments->Get(ns, names.engine);
  router_obj = deployments->Get(ns, names.router);
  if (job_obj != nullptr) {
    const Json& st = job_obj->json.value("status", Json::object());
    observed.pull_complete = st.value("succeeded", 0) > 0;
  }
  if (engine_obj != nullptr) {
    const Json& tmpl = engine_obj->json["spec"]["template"];
    if (tmpl.contains("metadata") && tmpl["metadata"].contains("annotations")) {
      observed.engine_model_revision =
          tmpl["metadata"]["annotations"].value(kModelRevisionAnnotation, "");
    }
  }
  auto want = first.ok() ? Desired(s, options_.reconcile, observed) : first;

  std::string error;
  std::map<std::pair<std::string, std::string>, Json> applied;  // (kind, name) -> live object
  if (!want.ok()) {
    error = want.status().message();
  } else {
    k8s::ApplyOptions ao;
    ao.field_manager = options_.field_manager;
    ao.force = true;
    for (const Json& o : want->objects) {
      const k8s::ResourceType* t = TypeOf(o);
      KINFER_CHECK(t != nullptr);
      auto r = client_.Apply(*t, ns, o, ao, stop);
      if (!r.ok()) {
        if (r.status().code() == StatusCode::kCancelled) return r.status();
        if (error.empty()) error = r.status().message();
        continue;
      }
      applied[{t->kind, o["metadata"]["name"]}] = std::move(*r);
    }
    if (error.empty()) {
      Status p = Prune(s, *want, stop);
      if (p.code() == StatusCode::kCancelled) return p;
      if (!p.ok()) error = p.message();
    }
  }

  // Status from the freshest copies: what the applies returned, else the informers'.
  auto live = [&](const std::string& kind, const std::string& n,
                  const k8s::ObjectPtr& cached) -> const Json* {
    auto it = applied.find({kind, n});
    if (it != applied.end()) return &it->second;
    return cached == nullptr ? nullptr : &cached->json;
  };
  StatusInputs in;
  in.service = &s;
  in.desired = want.ok() ? &*want : nullptr;
  in.engine_deployment =
      want.ok() && want->engine_deployed ? live("Deployment", names.engine, engine_obj) : nullptr;
  in.router_deployment =
      s.spec.router.enabled ? live("Deployment", names.router, router_obj) : nullptr;
  in.pull_job =
      want.ok() && !want->pull_job.empty() ? live("Job", want->pull_job, job_obj) : nullptr;
  in.error = error;
  in.now = now;
  Json status = ComputeStatus(in);
  bool changed = !s.status.is_object();
  if (!changed) {
    for (const auto& [k, v] : status.items()) {
      if (!s.status.contains(k) || s.status[k] != v) changed = true;
    }
  }
  if (changed) {
    Status st = ApplyStatus(s, status, stop);
    if (!st.ok()) return st;
    for (const ConditionEvent& e : TransitionEvents(s.status, status)) {
      RecordEvent(s.raw, e.type, e.reason, e.note, stop);
    }
  }
  if (!error.empty()) {
    RecordEvent(s.raw, k8s::EventType::kWarning, "ReconcileFailed", error, stop);
    return Status(StatusCode::kUnavailable, error);
  }
  return Status::Ok();
}

}  // namespace kinfer::op
