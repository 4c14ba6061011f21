#include "sidecar/engine.h"

#include <algorithm>
#include <cmath>
#include <deque>
#include <thread>
#include <utility>
#include <variant>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "common/strings.h"
#include "sidecar/feedback.h"

namespace understudy::sidecar {

namespace v1 = understudy::v1;
namespace answers = ::understudy::shadow;  // the Impl has a member named `shadow`
using rollout::OutcomeClass;

ExchangeFacts ClassifyExchange(const v1::Exchange& e, const compare::CompareOptions& options,
                               answers::ParsedAnswer* answer) {
  ExchangeFacts f;
  static_cast<answers::AnswerFacts&>(f) = answers::ClassifyExchange(e, &options, answer);
  return f;
}

namespace {

// LiveContext is what a mirror result needs of the live exchange.
struct LiveContext {
  v1::Exchange live;
  ExchangeFacts facts;
  answers::ParsedAnswer answer;
};

struct MirrorWork {
  std::shared_ptr<const LiveContext> live;
  MirrorResult result;
};

using WorkItem = std::variant<v1::Exchange, MirrorWork>;

template <typename T>
class FifoMap {  // a bounded map that forgets its oldest keys
 public:
  explicit FifoMap(size_t capacity) : capacity_(std::max<size_t>(capacity, 1)) {}
  T* Find(const std::string& key) {
    auto it = map_.find(key);
    return it == map_.end() ? nullptr : &it->second;
  }
  // Put returns the key's value, default-constructed when new; a new key
  // past capacity evicts the oldest (never itself: capacity is at least 1,
  // and erasing others leaves `it` valid).
  T& Put(const std::string& key) {
    auto [it, inserted] = map_.try_emplace(key);
    if (inserted) {
      order_.push_back(key);
      while (order_.size() > capacity_) {
        map_.erase(order_.front());
        order_.pop_front();
      }
    }
    return it->second;
  }
  size_t size() const { return map_.size(); }

 private:
  size_t capacity_;
  absl::flat_hash_map<std::string, T> map_;
  std::deque<std::string> order_;
};

}  // namespace

struct Engine::Impl {
  Impl(EngineOptions o, rollout::Controller& c, storage::Store& s, const Clock& cl,
       ShadowPort* sh, EngineObserver* ob)
      : options(std::move(o)),
        controller(c),
        store(s),
        clock(cl),
        shadow(sh),
        observer(ob),
        noise(options.compare.noise_quantile, options.compare.noise_min_samples),
        arms(options.arm_memory),
        pending(options.pending_feedback_capacity),
        feedback_scored(options.arm_memory),
        feedback_limiter(options.feedback_max_per_client_per_minute, cl) {}

  void Handle(WorkItem item) {
    if (auto* live = std::get_if<v1::Exchange>(&item)) {
      HandleLive(std::move(*live));
    } else {
      HandleMirror(std::move(std::get<MirrorWork>(item)));
    }
  }

  void HandleLive(v1::Exchange e) {
    auto ctx = std::make_shared<LiveContext>();
    answers::PrepareExchange(&e, options.decode_limits);
    ctx->facts = ClassifyExchange(e, options.compare, &ctx->answer);
    if (e.has_fallback()) {
      // Production answered after the candidate's attempt failed
      // (docs/extproc.md, "Fallback to production"): the user was saved,
      // the candidate still failed, and production's price is not its.
      const int failed = e.fallback().candidate_status();
      ctx->facts.outcome =
          failed == 0 ? OutcomeClass::kTransport : rollout::OutcomeClassFromHttp(failed);
      ctx->facts.cost.reset();
    }
    if (!e.unsupported().empty()) stats_unsupported.fetch_add(1);
    const v1::RolloutState state = controller.State();
    ctx->facts.stage_index = state.stage_index();
    ctx->facts.weight_basis_points = state.weight_basis_points();
    rollout::Outcome outcome;
    outcome.status = ctx->facts.outcome;
    outcome.latency = ctx->facts.latency;
    outcome.ttft = ctx->facts.ttft;
    outcome.cost = ctx->facts.cost;
    outcome.request_id = e.request_id();
    // The judge's unit is the routing bucket of the key routing hashed:
    // the user (docs/statistics.md §1).
    outcome.bucket = BucketOf(e);
    // A live exchange with no response at all means the downstream client
    // went away before an answer (Envoy turns upstream failures into a
    // local 5xx reply, which the observe stream does see): not the model's
    // fault, so the judge does not count it.
    if (e.status_code() == 0) {
      stats_abandoned.fetch_add(1);
    } else {
      controller.RecordOutcome(e.arm(), outcome);
    }

    // Join feedback that arrived first.
    std::vector<v1::Feedback> joined;
    {
      absl::MutexLock lock(&feedback_mu);
      if (!e.request_id().empty()) {
        arms.Put(e.request_id()) = ArmOfRequest{e.arm(), outcome.bucket};
        // Taken, not erased: the key keeps its one place in the eviction
        // order (erasing and re-adding it would let the old place evict
        // the new entry early).
        if (std::vector<v1::Feedback>* waiting = pending.Find(e.request_id())) {
          joined.swap(*waiting);
        }
      }
    }
    storage::RecordBatch batch;
    // The score was stored unjoined when it came; written again with its
    // arm (same request id and time), it replaces that record (store.h).
    for (v1::Feedback& f : joined) {
      f.set_arm(e.arm());
      controller.RecordFeedback(e.arm(), f.score(), outcome.bucket);
      if (observer != nullptr) observer->OnFeedback(f);
      batch.Add(std::move(f));
      stats_feedback_joined.fetch_add(1);
    }
    batch.Add(e);
    Write(std::move(batch));
    if (observer != nullptr) observer->OnLiveExchange(e, ctx->facts);
    stats_exchanges.fetch_add(1);

    // A fallback's answer is production's: nothing of the candidate's to compare.
    if (shadow != nullptr && !e.incomplete() && !e.has_fallback()) {
      ctx->live = std::move(e);
      std::shared_ptr<const LiveContext> shared = std::move(ctx);
      shadow->MaybeMirror(shared->live, [this, shared](MirrorResult r) {
        if (!queue->TrySubmit(MirrorWork{shared, std::move(r)})) {
          stats_mirror_dropped.fetch_add(1);
        }
      });
    }
  }

  void HandleMirror(MirrorWork w) {
    stats_mirror_results.fetch_add(1);
    const LiveContext& live = *w.live;
    MirrorResult& r = w.result;
    answers::PrepareExchange(&r.exchange, options.decode_limits);  // decoded by the client already
    answers::ParsedAnswer answer;
    ExchangeFacts facts = ClassifyExchange(r.exchange, options.compare, &answer);
    if (r.outcome != OutcomeClass::kOk) facts.outcome = r.outcome;  // the client knows best
    facts.stage_index = live.facts.stage_index;
    facts.weight_basis_points = live.facts.weight_basis_points;
    if (!r.exchange.unsupported().empty()) stats_unsupported.fetch_add(1);
    if (r.kind == MirrorKind::kShadow && facts.cost.has_value() && shadow != nullptr) {
      shadow->RecordShadowCost(*facts.cost);
    }
    if (observer != nullptr) observer->OnMirrorExchange(r, facts);

    storage::RecordBatch batch;
    batch.Add(r.exchange);
    compare::CompareContext cc;
    cc.request_id = live.live.request_id();
    cc.time_unix_micros = absl::ToUnixMicros(clock.Now());
    if (!live.live.request().body().empty()) {
      absl::StatusOr<compare::RequestInfo> info = compare::ParseRequest(live.live.request().body());
      if (info.ok()) cc.request = *info;
    }
    // Embeddings are compared as vectors, everything else as answers; an
    // answer that was not judged on its content is not compared at all.
    const bool embeddings = live.answer.embedding.has_value() || answer.embedding.has_value() ||
                            answers::ExchangeApi(live.live) == compare::ApiKind::kOpenAiEmbeddings;
    const bool unsupported = !live.live.unsupported().empty() || !r.exchange.unsupported().empty();
    const bool both_answered = embeddings ? live.answer.embedding.has_value() &&
                                                answer.embedding.has_value()
                                          : live.answer.chat.has_value() && answer.chat.has_value();
    const std::string copy_error_type = r.exchange.error().empty() ? "unparseable" : "transport";
    const std::string copy_error = r.exchange.error().empty()
                                       ? absl::StrCat("HTTP ", r.exchange.status_code())
                                       : r.exchange.error();
    const std::string live_error = absl::StrCat("live answer: HTTP ", live.live.status_code());
    auto micros = [](std::optional<absl::Duration> d) {
      return d.has_value() ? absl::ToInt64Microseconds(*d) : 0;
    };
    // Compare runs the comparison that fits the API, production on the left.
    auto run_compare = [&](bool live_is_production) {
      if (embeddings) {
        const compare::EmbeddingAnswer live_e = live.answer.embedding.value_or(
            compare::EmbeddingAnswer::FromError("unparseable", live_error));
        const compare::EmbeddingAnswer copy_e = answer.embedding.value_or(
            compare::EmbeddingAnswer::FromError(copy_error_type, copy_error));
        return live_is_production ? compare::CompareEmbeddings(live_e, copy_e, options.compare, cc)
                                  : compare::CompareEmbeddings(copy_e, live_e, options.compare, cc);
      }
      const compare::ModelAnswer live_a =
          live.answer.chat.value_or(compare::ModelAnswer::FromError("unparseable", live_error));
      const compare::ModelAnswer copy_a =
          answer.chat.value_or(compare::ModelAnswer::FromError(copy_error_type, copy_error));
      return live_is_production ? compare::Compare(live_a, copy_a, options.compare, cc)
                                : compare::Compare(copy_a, live_a, options.compare, cc);
    };
    if (r.kind == MirrorKind::kNoise) {
      cc.production_latency_micros = micros(live.facts.latency);
      cc.candidate_latency_micros = micros(facts.latency);
      if (both_answered && !unsupported && live.facts.outcome == OutcomeClass::kOk &&
          facts.outcome == OutcomeClass::kOk) {
        v1::Comparison c = run_compare(/*live_is_production=*/true);
        absl::MutexLock lock(&noise_mu);
        noise.Observe(c);
        stats_noise.fetch_add(1);
        if (observer != nullptr) observer->OnNoise(c, noise);
      }
      Write(std::move(batch));
      return;
    }
    if (unsupported) {
      // Nothing to compare the content of; the outcomes were counted.
      Write(std::move(batch));
      return;
    }
    const bool reverse = r.kind == MirrorKind::kReverse;
    const ExchangeFacts& prod_facts = reverse ? facts : live.facts;
    const ExchangeFacts& cand_facts = reverse ? live.facts : facts;
    cc.production_latency_micros = micros(prod_facts.latency);
    cc.candidate_latency_micros = micros(cand_facts.latency);
    cc.production_ttft_micros = micros(prod_facts.ttft);
    cc.candidate_ttft_micros = micros(cand_facts.ttft);
    cc.live_arm = reverse ? v1::ARM_CANDIDATE : v1::ARM_PRODUCTION;
    v1::Comparison comparison;
    {
      absl::MutexLock lock(&noise_mu);
      cc.noise = &noise;
      comparison = run_compare(/*live_is_production=*/!reverse);
    }
    rollout::ShadowComparison sc;
    sc.compared = both_answered;
    sc.major_diff = comparison.verdict() == v1::VERDICT_MAJOR_DIFF;
    sc.candidate.status = cand_facts.outcome;
    sc.candidate.latency = cand_facts.latency;
    sc.candidate.ttft = cand_facts.ttft;
    sc.candidate.cost = cand_facts.cost;
    sc.candidate.request_id = live.live.request_id();
    sc.candidate.bucket = BucketOf(live.live);
    controller.RecordComparison(sc);
    stats_comparisons.fetch_add(1);
    if (observer != nullptr) observer->OnComparison(comparison);
    batch.Add(std::move(comparison));
    Write(std::move(batch));
  }

  void Write(storage::RecordBatch batch) {
    absl::Status s = store.Write(std::move(batch));
    if (!s.ok()) {
      stats_store_failures.fetch_add(1);
      LogStoreError(s);
    }
  }

  void LogStoreError(const absl::Status& s) {
    // One line per 100 failures, so a full disk does not flood the log.
    if (stats_store_failures.load() % 100 == 1) {
      std::fprintf(stderr, "understudy: storage write failed: %s\n", s.ToString().c_str());
    }
  }

  EngineOptions options;
  rollout::Controller& controller;
  storage::Store& store;
  const Clock& clock;
  ShadowPort* shadow;
  EngineObserver* observer;

  absl::Mutex noise_mu;
  compare::NoiseModel noise ABSL_GUARDED_BY(noise_mu);

  absl::Mutex feedback_mu;
  // Request id → the arm that served it and its routing bucket (feedback
  // is judged in the bucket of the user who got the answer).
  struct ArmOfRequest {
    v1::Arm arm = v1::ARM_UNSPECIFIED;
    int32_t bucket = rollout::kUnknownBucket;
  };
  FifoMap<ArmOfRequest> arms ABSL_GUARDED_BY(feedback_mu);

  // BucketOf: the routing bucket of the exchange's sticky key (the
  // configured header's value as captured, else the request id, as the
  // router does).
  int32_t BucketOf(const v1::Exchange& e) const {
    if (!options.sticky_header.empty()) {
      for (const v1::Header& h : e.request().headers()) {
        if (h.key() == options.sticky_header && !h.value().empty()) {
          return controller.BucketOf(h.value());
        }
      }
    }
    return controller.BucketOf(e.request_id());
  }
  FifoMap<std::vector<v1::Feedback>> pending ABSL_GUARDED_BY(feedback_mu);
  // First score wins: request ids whose score is being stored right now
  // (so a concurrent second one is refused) and, bounded, ids known to have
  // one (past those, and after a restart, the store is asked).
  absl::flat_hash_set<std::string> feedback_claimed ABSL_GUARDED_BY(feedback_mu);
  FifoMap<bool> feedback_scored ABSL_GUARDED_BY(feedback_mu);
  FeedbackLimiter feedback_limiter;

  // StoreFeedback stores a validated, claimed score and joins it to its arm
  // when known; *stored says whether the request id now has a stored score.
  absl::Status StoreFeedback(v1::Feedback f, bool* stored);
  absl::Status Duplicate(std::string_view request_id) {
    stats_feedback_duplicates.fetch_add(1);
    return absl::AlreadyExistsError(
        absl::StrCat("request_id: \"", Av(request_id),
                     "\" already has a score; the first one counts and cannot be changed"));
  }

  absl::Mutex tick_mu;
  absl::Time last_snapshot ABSL_GUARDED_BY(tick_mu) = absl::InfinitePast();

  std::unique_ptr<BoundedQueue<WorkItem>> queue;
  std::thread ticker;
  absl::Notification stop_ticker;
  std::atomic<bool> stopped{false};

  std::atomic<int64_t> stats_abandoned{0};
  std::atomic<int64_t> stats_unsupported{0};
  std::atomic<int64_t> stats_exchanges{0}, stats_dropped{0}, stats_mirror_results{0},
      stats_mirror_dropped{0}, stats_comparisons{0}, stats_noise{0}, stats_feedback_joined{0},
      stats_feedback_pending{0}, stats_feedback_rejected{0}, stats_store_failures{0},
      stats_ticks{0}, stats_tick_failures{0};
  std::atomic<int64_t> stats_feedback_duplicates{0}, stats_feedback_rate_limited{0};
  std::atomic<int64_t> stats_feedback_bad_token{0};
};

Engine::Engine(EngineOptions options, rollout::Controller& controller, storage::Store& store,
               const Clock& clock, ShadowPort* shadow, EngineObserver* observer)
    : impl_(std::make_unique<Impl>(std::move(options), controller, store, clock, shadow,
                                   observer)) {
  Impl* impl = impl_.get();
  impl_->queue = std::make_unique<BoundedQueue<WorkItem>>(
      impl_->options.queue_capacity, impl_->options.workers,
      [impl](WorkItem item) { impl->Handle(std::move(item)); });
}

Engine::~Engine() { Stop(); }

bool Engine::Submit(v1::Exchange&& exchange) {
  if (impl_->queue->TrySubmit(std::move(exchange))) return true;
  impl_->stats_dropped.fetch_add(1);
  return false;
}

absl::Status Engine::SubmitFeedback(v1::Feedback f) {
  Impl& m = *impl_;
  if (f.request_id().empty()) {
    m.stats_feedback_rejected.fetch_add(1);
    return absl::InvalidArgumentError("feedback.request_id: required");
  }
  if (!(f.score() >= 0.0 && f.score() <= 1.0)) {
    m.stats_feedback_rejected.fetch_add(1);
    return absl::InvalidArgumentError(absl::StrCat("feedback.score: must be in [0,1]"));
  }
  if (f.time_unix_micros() == 0) f.set_time_unix_micros(absl::ToUnixMicros(m.clock.Now()));
  const std::string id = f.request_id();
  {
    // Claim the request id before anything is stored: a concurrent second
    // score for it sees the claim and is refused.
    absl::MutexLock lock(&m.feedback_mu);
    if (m.feedback_claimed.contains(id) || m.feedback_scored.Find(id) != nullptr) {
      return m.Duplicate(id);
    }
    m.feedback_claimed.insert(id);
  }
  bool stored = false;
  absl::Status s = m.StoreFeedback(std::move(f), &stored);
  {
    // A stored score keeps the id taken; when nothing was stored (the store
    // failed) the same score may be sent again.
    absl::MutexLock lock(&m.feedback_mu);
    m.feedback_claimed.erase(id);
    if (stored) m.feedback_scored.Put(id) = true;
  }
  return s;
}

absl::Status Engine::Impl::StoreFeedback(v1::Feedback f, bool* stored) {
  // Across a restart (or past feedback_scored's memory) only the store
  // knows whether this request was scored already.
  absl::StatusOr<std::vector<v1::Feedback>> earlier = store.FeedbackFor(f.request_id());
  if (!earlier.ok()) return earlier.status();
  if (!earlier->empty()) {
    *stored = true;
    return Duplicate(f.request_id());
  }
  std::optional<v1::Arm> arm;
  int32_t bucket = rollout::kUnknownBucket;
  {
    absl::MutexLock lock(&feedback_mu);
    if (ArmOfRequest* a = arms.Find(f.request_id())) {
      arm = a->arm;
      bucket = a->bucket;
    }
  }
  if (!arm.has_value()) {
    // Perhaps stored before a restart.
    absl::StatusOr<std::vector<v1::Exchange>> exchanges = store.GetExchanges(f.request_id());
    if (exchanges.ok()) {
      for (const v1::Exchange& e : *exchanges) {
        if (e.source() == v1::SOURCE_LIVE && e.arm() != v1::ARM_UNSPECIFIED) {
          arm = e.arm();
          bucket = BucketOf(e);
        }
      }
    }
  }
  if (arm.has_value()) f.set_arm(*arm);
  // Stored first (joined if the arm is known), counted after: a score the
  // store did not take is not counted, and may be sent again.
  if (absl::Status s = store.PutFeedback(f); !s.ok()) {
    stats_store_failures.fetch_add(1);
    LogStoreError(s);
    return s;
  }
  *stored = true;
  if (!arm.has_value()) {
    // The exchange may have landed since the look-up above; otherwise the
    // worker joins the score when it does (HandleLive), rewriting the record
    // just stored. Both are decided under one lock, so neither is missed.
    absl::MutexLock lock(&feedback_mu);
    if (ArmOfRequest* a = arms.Find(f.request_id())) {
      arm = a->arm;
      bucket = a->bucket;
    } else {
      pending.Put(f.request_id()).push_back(f);
      stats_feedback_pending.fetch_add(1);
    }
  }
  if (!arm.has_value()) return absl::OkStatus();
  if (f.arm() == v1::ARM_UNSPECIFIED) {  // found after the first write
    f.set_arm(*arm);
    if (absl::Status s = store.PutFeedback(f); !s.ok()) {  // the same record, joined
      stats_store_failures.fetch_add(1);
      LogStoreError(s);
    }
  }
  controller.RecordFeedback(*arm, f.score(),
                            bucket != rollout::kUnknownBucket ? bucket
                                                              : controller.BucketOf(f.request_id()));
  stats_feedback_joined.fetch_add(1);
  if (observer != nullptr) observer->OnFeedback(f);
  return absl::OkStatus();
}

absl::Status Engine::SubmitFeedbackJson(std::string_view body, v1::FeedbackSource source) {
  absl::StatusOr<v1::Feedback> f = ParseFeedbackJson(body);
  if (!f.ok()) {
    impl_->stats_feedback_rejected.fetch_add(1);
    return f.status();
  }
  f->set_source(source);
  return SubmitFeedback(*std::move(f));
}

absl::Status Engine::SubmitFeedbackJson(std::string_view body, v1::FeedbackSource source,
                                        std::string_view client, std::string_view token) {
  // Checked first, before parsing or touching the store: a client over its
  // budget costs a hash look-up.
  if (!impl_->feedback_limiter.Allow(client)) {
    impl_->stats_feedback_rate_limited.fetch_add(1);
    return absl::ResourceExhaustedError(absl::StrCat(
        "feedback: more than ", impl_->options.feedback_max_per_client_per_minute,
        " scores per minute from this client (feedback.max_per_client_per_minute)"));
  }
  absl::StatusOr<v1::Feedback> f = ParseFeedbackJson(body);
  if (!f.ok()) {
    impl_->stats_feedback_rejected.fetch_add(1);
    return f.status();
  }
  if (impl_->options.feedback_signer != nullptr) {
    if (absl::Status s = impl_->options.feedback_signer->Verify(f->request_id(), token); !s.ok()) {
      impl_->stats_feedback_bad_token.fetch_add(1);
      return s;
    }
  }
  f->set_source(source);
  return SubmitFeedback(*std::move(f));
}

absl::StatusOr<v1::Decision> Engine::Tick() {
  if (impl_->options.begin_tick && !impl_->options.begin_tick()) {
    // Another replica judges (or etcd is away): this one only recorded.
    impl_->stats_ticks.fetch_add(1);
    v1::Decision hold;
    hold.set_time_unix_micros(absl::ToUnixMicros(impl_->clock.Now()));
    hold.set_action(v1::ACTION_HOLD);
    hold.set_actor("judge");
    hold.set_reason("fleet: this replica does not judge now (docs/fleet.md)");
    *hold.mutable_from() = impl_->controller.State();
    *hold.mutable_to() = hold.from();
    return hold;
  }
  if (!impl_->options.end_tick && impl_->store.Stats().failing) {
    // Nothing can be persisted (disk full or read-only), so the judge must
    // not decide: it waits. Saving the evidence is the probe that finds
    // the store writable again (the store resumes by itself).
    impl_->stats_ticks.fetch_add(1);
    SaveEvidence();
    v1::Decision hold;
    hold.set_time_unix_micros(absl::ToUnixMicros(impl_->clock.Now()));
    hold.set_action(v1::ACTION_HOLD);
    hold.set_actor("judge");
    hold.set_reason("storage failing: the judge waits until decisions can be persisted");
    *hold.mutable_from() = impl_->controller.State();
    *hold.mutable_to() = hold.from();
    return hold;
  }
  absl::StatusOr<v1::Decision> d = impl_->controller.Tick();
  impl_->stats_ticks.fetch_add(1);
  if (!d.ok()) {
    impl_->stats_tick_failures.fetch_add(1);
    return d.status();
  }
  const v1::HealthSnapshot health = impl_->controller.Health();  // with the tick's gates
  if (impl_->observer != nullptr) {
    if (d->action() != v1::ACTION_HOLD) impl_->observer->OnDecision(*d);
    impl_->observer->OnTick(health.state(), health, *d);
  }
  bool due = false;
  {
    absl::MutexLock lock(&impl_->tick_mu);
    const absl::Time now = impl_->clock.Now();
    if (now - impl_->last_snapshot >= impl_->options.snapshot_interval ||
        d->action() != v1::ACTION_HOLD) {
      impl_->last_snapshot = now;
      due = true;
    }
  }
  if (due) {
    absl::Status s = impl_->store.PutHealth(health);
    if (!s.ok()) impl_->stats_store_failures.fetch_add(1);
  }
  if (impl_->options.end_tick) {
    impl_->options.end_tick(health);
  } else {
    SaveEvidence();
  }
  return d;
}

void Engine::StartTicker(absl::Duration interval) {
  if (impl_->ticker.joinable()) return;
  impl_->ticker = std::thread([this, interval] {
    while (!impl_->stop_ticker.WaitForNotificationWithTimeout(interval)) {
      absl::StatusOr<v1::Decision> d = Tick();
      if (!d.ok()) {
        std::fprintf(stderr, "understudy: judge tick failed: %s\n", d.status().ToString().c_str());
      } else if (d->action() != v1::ACTION_HOLD) {
        std::fprintf(stderr, "understudy: %s by %s: %s (weight %.2f%% → %.2f%%)\n",
                     std::string(rollout::DecisionActionName(d->action())).c_str(),
                     d->actor().c_str(), d->reason().c_str(),
                     d->from().weight_basis_points() / 100.0,
                     d->to().weight_basis_points() / 100.0);
      }
    }
  });
}

void Engine::OnManualDecision(const v1::Decision& decision) {
  if (impl_->observer != nullptr) impl_->observer->OnDecision(decision);
  absl::Status s = impl_->store.PutHealth(impl_->controller.Health());
  if (!s.ok()) impl_->stats_store_failures.fetch_add(1);
  SaveEvidence();
}

void Engine::SaveEvidence() {
  // Every tick and manual command (docs/statistics.md, "Evidence survives a
  // restart"); a failure is counted and the next tick tries again. In
  // fleet mode the leader saves it to etcd (end_tick) instead.
  if (impl_->options.end_tick) return;
  absl::Status s = impl_->store.SaveJudgeEvidence(impl_->controller.SaveEvidence());
  if (!s.ok()) impl_->stats_store_failures.fetch_add(1);
}

void Engine::WaitIdle() { impl_->queue->WaitIdle(); }

void Engine::Stop() {
  if (impl_->stopped.exchange(true)) return;
  if (!impl_->stop_ticker.HasBeenNotified()) impl_->stop_ticker.Notify();
  if (impl_->ticker.joinable()) impl_->ticker.join();
  impl_->queue->Close();
}

EngineStats Engine::Stats() const {
  EngineStats s;
  s.exchanges = impl_->stats_exchanges.load();
  s.exchanges_dropped = impl_->stats_dropped.load();
  s.exchanges_abandoned = impl_->stats_abandoned.load();
  s.exchanges_unsupported = impl_->stats_unsupported.load();
  s.mirror_results = impl_->stats_mirror_results.load();
  s.mirror_results_dropped = impl_->stats_mirror_dropped.load();
  s.comparisons = impl_->stats_comparisons.load();
  s.noise_comparisons = impl_->stats_noise.load();
  s.feedback_joined = impl_->stats_feedback_joined.load();
  s.feedback_pending = impl_->stats_feedback_pending.load();
  s.feedback_rejected = impl_->stats_feedback_rejected.load();
  s.feedback_duplicates = impl_->stats_feedback_duplicates.load();
  s.feedback_rate_limited = impl_->stats_feedback_rate_limited.load();
  s.feedback_bad_token = impl_->stats_feedback_bad_token.load();
  s.store_failures = impl_->stats_store_failures.load();
  s.ticks = impl_->stats_ticks.load();
  s.tick_failures = impl_->stats_tick_failures.load();
  return s;
}

const compare::NoiseModel& Engine::noise() const { return impl_->noise; }

}  // namespace understudy::sidecar
