#include "sidecar/sidecar.h"

#include <cstdio>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "coordination/fleet.h"
#include "sidecar/admin/admin.h"
#include "sidecar/drift_observer.h"
#include "sidecar/ext_proc_service.h"
#include "metrics/metrics.h"
#include "sidecar/observers.h"
#include "sidecar/revisit.h"
#include "report/report.h"
#include "rollout/rollout.h"
#include "shadow/shadow.h"
#include "telemetry/tracer.h"

namespace understudy::sidecar {

namespace v1 = understudy::v1;

namespace {

// StoreTransitionLog makes every rollout transition durable (one fsynced
// batch: state + decision) before the controller applies it.
class StoreTransitionLog final : public rollout::TransitionLog {
 public:
  explicit StoreTransitionLog(storage::Store& store) : store_(store) {}
  absl::Status Commit(const v1::RolloutState& state, const v1::Decision& decision) override {
    return store_.CommitTransition(state, decision);
  }

 private:
  storage::Store& store_;
};

// LoggingObserver prints one line per live exchange (serve --log-exchanges).
class LoggingObserver final : public EngineObserver {
 public:
  void OnLiveExchange(const v1::Exchange& e, const ExchangeFacts& facts) override {
    std::fprintf(stderr, "exchange %s arm=%s status=%d path=%s latency_ms=%.1f%s\n",
                 e.request_id().c_str(), std::string(rollout::ArmName(e.arm())).c_str(),
                 e.status_code(),
                 e.path().c_str(), e.end_offset_micros() / 1000.0,
                 e.incomplete() ? " incomplete" : "");
  }
};

// ShadowAdapter is the engine's ShadowPort over the shadow client's Mirror
// policy: each copy the policy sends comes back as a MirrorResult.
class ShadowAdapter final : public ShadowPort {
 public:
  explicit ShadowAdapter(shadow::Mirror& mirror) : mirror_(mirror) {}
  void MaybeMirror(const v1::Exchange& live, std::function<void(MirrorResult)> done) override {
    const v1::Arm live_arm = live.arm();
    mirror_.Dispatch(live, [done = std::move(done), live_arm](shadow::UpstreamResult r) {
      if (r.aborted) return;  // shutting down: not the candidate's fault
      MirrorResult m;
      if (r.exchange.source() == v1::SOURCE_NOISE) {
        m.kind = MirrorKind::kNoise;
      } else if (live_arm == v1::ARM_CANDIDATE) {
        m.kind = MirrorKind::kReverse;
      } else {
        m.kind = MirrorKind::kShadow;
      }
      m.outcome = r.outcome;
      m.exchange = std::move(r.exchange);
      done(std::move(m));
    });
  }
  // The Mirror prices completed calls itself (it has the price table).
  void RecordShadowCost(double) override {}

 private:
  shadow::Mirror& mirror_;
};

// ModelNames remembers the last model each arm answered with (report).
class ModelNames final : public EngineObserver {
 public:
  void OnLiveExchange(const v1::Exchange& e, const ExchangeFacts& f) override { Note(e.arm(), f); }
  void OnMirrorExchange(const MirrorResult& r, const ExchangeFacts& f) override {
    Note(r.exchange.arm(), f);
  }
  std::string Get(v1::Arm arm) const {
    absl::MutexLock lock(&mu_);
    return arm == v1::ARM_CANDIDATE ? candidate_ : production_;
  }

 private:
  void Note(v1::Arm arm, const ExchangeFacts& f) {
    const std::string& model = f.response_model.empty() ? f.request_model : f.response_model;
    if (model.empty() || arm == v1::ARM_UNSPECIFIED) return;
    absl::MutexLock lock(&mu_);
    (arm == v1::ARM_CANDIDATE ? candidate_ : production_) = model;
  }
  mutable absl::Mutex mu_;
  std::string production_ ABSL_GUARDED_BY(mu_);
  std::string candidate_ ABSL_GUARDED_BY(mu_);
};

// FanOut passes each event to several observers.
class FanOut final : public EngineObserver {
 public:
  void Add(EngineObserver* o) {
    if (o != nullptr) observers_.push_back(o);
  }
  bool empty() const { return observers_.empty(); }
  void OnLiveExchange(const v1::Exchange& e, const ExchangeFacts& f) override {
    for (auto* o : observers_) o->OnLiveExchange(e, f);
  }
  void OnMirrorExchange(const MirrorResult& r, const ExchangeFacts& f) override {
    for (auto* o : observers_) o->OnMirrorExchange(r, f);
  }
  void OnComparison(const v1::Comparison& c) override {
    for (auto* o : observers_) o->OnComparison(c);
  }
  void OnNoise(const v1::Comparison& c, const compare::NoiseModel& n) override {
    for (auto* o : observers_) o->OnNoise(c, n);
  }
  void OnDecision(const v1::Decision& d) override {
    for (auto* o : observers_) o->OnDecision(d);
  }
  void OnTick(const v1::RolloutState& s, const v1::HealthSnapshot& h,
              const v1::Decision& d) override {
    for (auto* o : observers_) o->OnTick(s, h, d);
  }
  void OnFeedback(const v1::Feedback& f) override {
    for (auto* o : observers_) o->OnFeedback(f);
  }

 private:
  std::vector<EngineObserver*> observers_;
};

}  // namespace

struct Sidecar::Impl {
  SidecarConfig config;
  SidecarOptions options;
  Clock* clock = nullptr;
  ExtProcStats stats;
  std::unique_ptr<storage::Store> store;
  std::unique_ptr<StoreTransitionLog> log;
  // Fleet mode (docs/fleet.md): transitions commit to etcd first.
  std::unique_ptr<coordination::Fleet> fleet;
  std::unique_ptr<rollout::Router> router;
  std::unique_ptr<rollout::Controller> controller;
  LoggingObserver logging;
  ModelNames models;
  metrics::Metrics metrics;
  std::unique_ptr<MetricsObserver> metrics_observer;
  std::unique_ptr<telemetry::Tracer> tracer;
  std::unique_ptr<TracingObserver> tracing_observer;
  std::unique_ptr<DriftObserver> drift;  // drift.enabled (docs/drift.md)
  // The revisit triggers (always) and the scheduled eval (`eval:`).
  std::unique_ptr<RevisitWatch> revisit;
  std::unique_ptr<EvalScheduler> eval;
  FanOut observers;
  std::unique_ptr<shadow::UpstreamClient> shadow_client;
  std::unique_ptr<shadow::Mirror> mirror;
  std::unique_ptr<ShadowAdapter> shadow_port;
  std::shared_ptr<const FeedbackSigner> feedback_signer;  // feedback.signing_key_env
  std::unique_ptr<Engine> engine;
  std::unique_ptr<ExtProcService> service;
  std::unique_ptr<ExtProcServer> server;
  std::unique_ptr<admin::AdminServer> admin;

  std::string MetricsText();
  // RolloutHealth is what status shows: the judge's health on the replica
  // that judges, the leader's (as of its last tick) on the others, and in
  // fleet mode, when etcd is away, the hold says so.
  v1::HealthSnapshot RolloutHealth();
  absl::StatusOr<std::string> Report(std::string_view format);
  std::string restored;  // how the rollout state was obtained, for the summary
  bool shut_down = false;
};

std::string Sidecar::Impl::MetricsText() {
  metrics.SyncExtProc(ExtProcCountersOf(stats));
  if (mirror) {
    const shadow::ShadowStats st = mirror->Stats();
    metrics::ShadowCounters c;
    c.sent = st.sent;
    c.completed = st.completed;
    c.failed = st.failed;
    c.timed_out = st.timed_out;
    c.dropped = st.dropped_queue_full;
    c.skipped_by_reason = st.skipped;
    c.over_budget = st.over_budget;
    c.budget_used = st.budget_used;
    c.budget_limit = config.shadow.budget_per_hour;
    c.queued = st.queued;
    c.in_flight = st.in_flight;
    metrics.SetShadowStats(c);
  }
  if (engine) {
    const EngineStats es = engine->Stats();
    metrics.SetFeedbackStats(
        {es.feedback_rejected, es.feedback_duplicates, es.feedback_rate_limited,
         es.feedback_bad_token});
  }
  const storage::StoreStats ss = store->Stats();
  metrics.SetStoreStats(static_cast<uint64_t>(ss.records_written),
                        static_cast<uint64_t>(ss.write_failures));
  if (tracer != nullptr && tracer->enabled()) {
    const telemetry::TracerStats ts = tracer->Stats();
    metrics.SetTracingStats({ts.exported, ts.dropped, ts.failed_spans, ts.rejected_spans,
                             ts.retries});
  }
  if (drift) metrics.SetDriftStatus(drift->Snapshot());
  if (revisit) metrics.SetRevisitTriggers(revisit->Fired());
  if (fleet) metrics.SetFleetStatus(fleet->Status());
  {
    metrics::InternalCounters ic;
    ic.store_failing = ss.failing;
    ic.retention_runs = ss.retention_runs;
    ic.retention_failures = ss.retention_failures;
    ic.size_cap_trims = ss.size_cap_trims;
    if (engine) {
      const EngineStats es = engine->Stats();
      ic.mirror_results_dropped = es.mirror_results_dropped;
      ic.judge_tick_failures = es.tick_failures;
      ic.engine_store_failures = es.store_failures;
    }
    metrics.SetInternalCounters(ic);
  }
  metrics.SetRollout(controller->State(), RolloutHealth(), clock->Now());
  return metrics.Serialize();
}

v1::HealthSnapshot Sidecar::Impl::RolloutHealth() {
  v1::HealthSnapshot h = controller->Health();
  if (!fleet) {
    const storage::StoreStats ss = store->Stats();
    if (ss.failing) {
      h.set_hold_reason(v1::HOLD_STORAGE);
      h.set_unblock(absl::StrCat(
          "the store cannot write (", ss.last_error,
          "): traffic is served, nothing is persisted and the judge waits; it resumes by "
          "itself once writes succeed (free disk space)"));
    }
    return h;
  }
  if (!fleet->IsLeader()) {
    if (std::optional<v1::HealthSnapshot> leader = fleet->LeaderHealth()) h = *leader;
  }
  *h.mutable_state() = controller->State();  // what this replica routes by
  const v1::FleetStatus st = fleet->Status();
  if (!st.etcd_reachable()) {
    h.set_hold_reason(v1::HOLD_COORDINATION);
    h.set_unblock(absl::StrFormat(
        "etcd unreachable%s: every replica keeps routing at the last known weight (%.2f%%) and "
        "the judge waits; it resumes by itself when etcd answers (%s)",
        st.last_contact_unix_micros() > 0
            ? absl::StrCat(" since ", absl::FormatTime(absl::FromUnixMicros(
                                          st.last_contact_unix_micros())))
            : "",
        h.state().weight_basis_points() / 100.0, st.error()));
  }
  return h;
}

absl::StatusOr<std::string> Sidecar::Impl::Report(std::string_view format) {
  report::ReportInputs in;
  in.production_model = models.Get(v1::ARM_PRODUCTION);
  in.candidate_model = models.Get(v1::ARM_CANDIDATE);
  for (const auto& [key, value] : config.shadow.candidate.request.set_json) {
    if (key == "model" && in.candidate_model.empty() && value.size() > 2) {
      in.candidate_model = value.substr(1, value.size() - 2);  // a JSON string
    }
  }
  in.rollout = config.rollout;
  in.state = controller->State();
  in.config_summary = absl::StrFormat(
      "stages %s; shadow %s (sample %.2f, noise %.2f, reverse %.2f, budget %.2f/h); storage %s",
      rollout::PlanFingerprint(config.rollout), config.shadow.enabled ? "on" : "off",
      config.shadow.sample_rate, config.shadow.noise_rate, config.shadow.reverse_rate,
      config.shadow.budget_per_hour, config.storage.path);
  in.now = clock->Now();
  in.shadow_budget_per_hour = config.shadow.budget_per_hour;
  in.exchanges_retention_hours = config.storage.retention.exchanges_hours;
  in.deprecation_date = config.drift.deprecation_date;
  in.deprecation_notice = config.drift.deprecation_notice;
  if (revisit) in.revisit_fired = revisit->Fired();
  return report::RenderReport(*store, in, format);
}

Sidecar::Sidecar() : impl_(std::make_unique<Impl>()) {}

Sidecar::~Sidecar() { Shutdown(absl::Seconds(1)); }

absl::StatusOr<std::unique_ptr<Sidecar>> Sidecar::Start(SidecarConfig config,
                                                       SidecarOptions options) {
  std::unique_ptr<Sidecar> s(new Sidecar());
  Impl& m = *s->impl_;
  m.config = std::move(config);
  m.options = options;
  m.clock = options.clock != nullptr ? options.clock : &RealClock::Default();

  // 1. Storage and the rollout state it holds.
  ASSIGN_OR_RETURN(m.store, storage::OpenRocksStore(m.config.storage, *m.clock));
  m.log = std::make_unique<StoreTransitionLog>(*m.store);
  m.router = std::make_unique<rollout::Router>(m.config.routing.salt, 0);
  rollout::TransitionLog* log = m.log.get();
  if (m.config.fleet.has_value()) {
    coordination::FleetLocal local;
    storage::Store* store = m.store.get();
    local.commit = [store](const v1::RolloutState& st, const v1::Decision& d) {
      return store->CommitTransition(st, d);
    };
    local.save_state = [store](const v1::RolloutState& st) { return store->SaveRolloutState(st); };
    ASSIGN_OR_RETURN(m.fleet, coordination::Fleet::Create(*m.config.fleet, *m.clock, local));
    log = m.fleet.get();
  }
  m.controller =
      std::make_unique<rollout::Controller>(m.config.rollout, *m.clock, *m.router, *log);
  absl::StatusOr<v1::RolloutState> saved = m.store->LoadRolloutState();
  if (saved.ok() && !options.reset_rollout) {
    absl::Status restored = m.controller->Restore(*saved);
    if (!restored.ok()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "cannot resume the rollout stored in ", m.config.storage.path, ": ",
          restored.message(),
          " (start with --reset-rollout to begin the plan again; the decision log is kept)"));
    }
    m.restored = absl::StrCat("resumed stored rollout (version ", saved->version(), ")");
    // The judge's evidence, so a nearly-decided test is not started over.
    absl::StatusOr<v1::JudgeEvidence> evidence = m.store->LoadJudgeEvidence();
    if (evidence.ok()) {
      absl::Status resumed = m.controller->RestoreEvidence(*evidence);
      absl::StrAppend(&m.restored, resumed.ok() ? " with the judge's evidence"
                                                : absl::StrCat("; judge evidence not resumed (",
                                                               resumed.message(), ")"));
    } else if (!absl::IsNotFound(evidence.status())) {
      absl::StrAppend(&m.restored, "; judge evidence not resumed (",
                      evidence.status().message(), ")");
    }
  } else if (saved.ok() || absl::IsNotFound(saved.status())) {
    RETURN_IF_ERROR(m.store->SaveRolloutState(m.controller->State()));
    m.restored = saved.ok() ? "rollout reset to the first stage" : "new rollout";
  } else {
    return saved.status();
  }

  // 1b. Fleet mode: join (adopting the fleet's state if etcd answers; the
  // state restored above otherwise), then record into evidence deltas.
  if (m.fleet) {
    m.controller->EnableEvidenceDeltas();
    m.fleet->Start(*m.controller);
    const v1::FleetStatus fs = m.fleet->Status();
    absl::StrAppend(&m.restored, "; fleet member ", fs.member(),
                    fs.etcd_reachable() ? absl::StrCat(" (leader: ", fs.leader().empty() ? "none yet" : fs.leader(), ")")
                                        : " (etcd unreachable: routing at the stored state)");
  }

  // 2. Observers: metrics, traces, model names, the exchange log.
  if (options.log_exchanges) m.observers.Add(&m.logging);
  m.observers.Add(&m.models);
  m.metrics_observer = std::make_unique<MetricsObserver>(m.metrics);
  m.observers.Add(m.metrics_observer.get());
  ASSIGN_OR_RETURN(m.tracer, telemetry::Tracer::Create(m.config.telemetry));
  // The drift watch hears each exchange before the tracer, so its alarms
  // land on that exchange's span; it resumes from the decision log.
  if (m.config.drift.enabled) {
    DriftObserverOptions drift_options;
    drift_options.clock = m.clock;
    drift_options.metrics = &m.metrics;
    drift_options.sticky_header = m.config.routing.sticky_header;
    drift_options.keep_span_events = m.tracer->enabled();
    Impl* owner = &m;
    drift_options.on_pause = [owner](const v1::Decision& d) {
      if (owner->engine) owner->engine->OnManualDecision(d);
    };
    m.drift = std::make_unique<DriftObserver>(m.config.drift, *m.store, *m.controller,
                                              std::move(drift_options));
    RETURN_IF_ERROR(m.drift->Restore());
    m.observers.Add(m.drift.get());
  }
  // The revisit triggers' inputs: prices and traffic at the first start
  // and at each decision (a price change across a restart fires here).
  {
    RevisitWatch::Options ro;
    ro.config = m.config.revisit;
    ro.price_fingerprint = PriceFingerprint(m.config.compare.prices);
    ro.deprecation_date = m.config.drift.deprecation_date;
    ro.deprecation_notice = m.config.drift.deprecation_notice;
    m.revisit = std::make_unique<RevisitWatch>(std::move(ro), *m.store, *m.clock);
    ASSIGN_OR_RETURN(std::string note, m.revisit->Start());
    if (!note.empty()) std::fprintf(stderr, "revisit: %s\n", note.c_str());
  }
  if (m.tracer->enabled()) {
    RevisitWatch* revisit = m.revisit.get();
    m.tracing_observer = std::make_unique<TracingObserver>(
        *m.tracer, m.drift.get(), [revisit] { return revisit->Fired(); });
    m.observers.Add(m.tracing_observer.get());
  }
  // After the tracer: a decision's span shows the triggers as they were
  // before the decision saved today's prices and traffic.
  m.observers.Add(m.revisit.get());

  // 3. The shadow client (its own thread; never waited on).
  if (m.config.shadow.enabled) {
    ASSIGN_OR_RETURN(m.shadow_client, shadow::UpstreamClient::Start(m.config.shadow, *m.clock));
    m.mirror = std::make_unique<shadow::Mirror>(m.config.shadow, *m.shadow_client, *m.clock,
                                                m.config.compare.prices);
    m.shadow_port = std::make_unique<ShadowAdapter>(*m.mirror);
  }

  // 4. The pipeline.
  EngineOptions eo;
  eo.queue_capacity = static_cast<size_t>(m.config.capture.queue_capacity);
  eo.workers = m.config.capture.workers;
  eo.compare = m.config.compare;
  eo.decode_limits = m.config.capture.decode_limits;
  eo.feedback_max_per_client_per_minute = m.config.feedback.max_per_client_per_minute;
  if (!m.config.feedback.signing_key.empty()) {
    // One signer for both ends: the answers' tokens and the feedback check.
    m.feedback_signer = std::make_shared<const FeedbackSigner>(
        m.config.feedback.signing_key, m.config.feedback.token_ttl, *m.clock,
        m.config.feedback.verify_key);
    eo.feedback_signer = m.feedback_signer;
  }
  eo.sticky_header = m.config.routing.sticky_header;
  eo.snapshot_interval = std::max(m.config.rollout.tick_interval, absl::Seconds(1));
  if (m.fleet) {
    coordination::Fleet* fleet = m.fleet.get();
    eo.begin_tick = [fleet] { return fleet->BeginTick(); };
    eo.end_tick = [fleet](const v1::HealthSnapshot& h) { fleet->EndTick(h); };
  }
  m.engine = std::make_unique<Engine>(std::move(eo), *m.controller, *m.store, *m.clock,
                                      m.shadow_port.get(), &m.observers);

  // 5. The admin API.
  admin::AdminBackend backend;
  backend.controller = m.controller.get();
  backend.store = m.store.get();
  backend.clock = m.clock;
  backend.submit_feedback = [engine = m.engine.get()](v1::Feedback f) {
    if (f.source() == v1::FEEDBACK_SOURCE_UNSPECIFIED) f.set_source(v1::FEEDBACK_SOURCE_ADMIN);
    return engine->SubmitFeedback(std::move(f));
  };
  backend.on_decision = [engine = m.engine.get()](const v1::Decision& d) {
    engine->OnManualDecision(d);
  };
  Impl* impl = &m;
  backend.metrics_text = [impl] { return impl->MetricsText(); };
  backend.health = [impl] { return impl->RolloutHealth(); };
  if (m.fleet) {
    coordination::Fleet* fleet = m.fleet.get();
    backend.fleet_status = [fleet] { return fleet->Status(); };
    backend.refresh_rollout = [fleet] { return fleet->Refresh(); };
  }
  backend.dashboard_html = [] { return report::DashboardHtml(); };
  backend.report = [impl](std::string_view format) { return impl->Report(format); };
  backend.revisit = [impl] { return impl->revisit->Fired(); };
  ASSIGN_OR_RETURN(m.admin, admin::AdminServer::Start(m.config.admin, std::move(backend)));

  // 6. The ext_proc server, last: from here on traffic flows.
  SessionOptions session = m.config.session;
  Engine* engine = m.engine.get();
  session.on_feedback = [engine](std::string_view body, std::string_view client,
                                  std::string_view token) {
    return engine->SubmitFeedbackJson(body, v1::FEEDBACK_SOURCE_ENVOY, client, token);
  };
  // Plans for the candidate's fallback to production live as long as the
  // service (sidecar/fallback.h); cheap when no attempt filter is set up.
  session.fallback = std::make_shared<FallbackRegistry>(*m.clock);
  session.feedback_signer = m.feedback_signer;
  m.service = std::make_unique<ExtProcService>(std::move(session), *m.router, *m.engine,
                                               *m.clock, m.stats);
  ASSIGN_OR_RETURN(m.server, ExtProcServer::Start(m.config.extproc, *m.service));
  m.engine->StartTicker(m.config.rollout.tick_interval);

  // 7. The scheduled eval, on its own thread (never on the request path).
  if (m.config.eval.enabled) {
    EvalScheduler::Options eo;
    eo.eval = m.config.eval;
    eo.shadow = m.config.shadow;
    eo.compare = m.config.compare;
    eo.thresholds = m.config.revisit.eval_regression;
    RevisitWatch* revisit = m.revisit.get();
    metrics::Metrics* metrics = &m.metrics;
    eo.baseline_before = [revisit] { return revisit->LastDecisionTime(); };
    eo.on_run = [revisit, metrics](const v1::EvalRun& run) {
      revisit->OnEvalRun(run);
      metrics->ObserveEvalRun(run);
    };
    m.eval = std::make_unique<EvalScheduler>(std::move(eo), *m.store, *m.clock);
    m.eval->Start();
  }
  return s;
}

int Sidecar::extproc_port() const { return impl_->server ? impl_->server->port() : 0; }
int Sidecar::admin_port() const { return impl_->admin ? impl_->admin->port() : 0; }

std::string Sidecar::StartupSummary() const {
  const v1::RolloutState st = impl_->controller->State();
  std::string summary =
      absl::StrFormat("%s: stage %d of %d, weight %.2f%%, data in %s", impl_->restored,
                      st.stage_index(), impl_->config.rollout.stages.size(),
                      st.weight_basis_points() / 100.0, impl_->config.storage.path);
  // Where the secrets came from, never what they are.
  if (!impl_->config.admin.token_source.empty()) {
    absl::StrAppend(&summary, "; admin token from ", impl_->config.admin.token_source);
  }
  if (!impl_->config.feedback.signing_key_source.empty()) {
    absl::StrAppend(&summary, "; feedback tokens signed with the key from ",
                    impl_->config.feedback.signing_key_source);
  }
  if (!impl_->config.feedback.verify_key_source.empty()) {
    absl::StrAppend(&summary, "; feedback tokens also accepted under the key from ",
                    impl_->config.feedback.verify_key_source);
  }
  return summary;
}

Engine& Sidecar::engine() { return *impl_->engine; }
rollout::Controller& Sidecar::controller() { return *impl_->controller; }
storage::Store& Sidecar::store() { return *impl_->store; }
const ExtProcStats& Sidecar::extproc_stats() const { return impl_->stats; }

void Sidecar::Shutdown(absl::Duration drain) {
  Impl& m = *impl_;
  if (m.shut_down) return;
  m.shut_down = true;
  if (m.server) m.server->Drain(drain);
  // A run in progress is cancelled (its calls aborted, nothing stored).
  if (m.eval) m.eval->Stop();
  // The engine first: its workers call the shadow port for every queued
  // live exchange, so the port must outlive them. Mirrored calls still in
  // flight then end with the client (their results are dropped: the queue
  // is closed); the production path is already gone.
  if (m.engine) m.engine->Stop();
  // After the ticker: leadership passes on at once (the lease is revoked).
  if (m.fleet) m.fleet->Stop();
  m.shadow_port.reset();
  m.mirror.reset();
  m.shadow_client.reset();
  if (m.admin) m.admin->Stop();
  if (m.tracer) m.tracer->Shutdown(absl::Seconds(2));
}

}  // namespace understudy::sidecar
