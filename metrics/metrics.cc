// metrics/metrics.cc
#include "metrics/metrics.h"

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <set>
#include <sstream>
#include <utility>

#include "compare/compare.h"
#include "metrics/drift_metrics.h"
#include "metrics/fleet_metrics.h"
#include "metrics/internal_metrics.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace understudy::metrics {

namespace {

using prometheus::Counter;
using prometheus::Family;
using prometheus::Gauge;
using prometheus::Histogram;
using prometheus::Labels;
namespace v1 = understudy::v1;

constexpr size_t kMaxLabelBytes = 64;
constexpr int kArms = 3;     // unknown, production, candidate
constexpr int kSources = 5;  // unknown, live, shadow, noise, eval
constexpr int kClasses = 7;  // rollout::OutcomeClass

// LLM answers take from tens of milliseconds (cached, tiny) to minutes
// (long generations), so the buckets span 50 ms .. 120 s.
const Histogram::BucketBoundaries kRequestBuckets = {0.05, 0.1, 0.25, 0.5, 1,  2,  3,  5,  7.5,
                                                     10,   15,  20,   30,  45, 60, 90, 120};
const Histogram::BucketBoundaries kTtftBuckets = {0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 0.75, 1,
                                                  1.5,   2,    3,   5,   10,  20,  30};
const Histogram::BucketBoundaries kScoreBuckets = {0.1, 0.2, 0.3, 0.4,  0.5,  0.6,
                                                   0.7, 0.8, 0.9, 0.95, 0.99, 1.0};
// An ext_proc stream lives as long as the HTTP exchange it watches.
const Histogram::BucketBoundaries kStreamBuckets = {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1,
                                                    2.5,   5,    10,    30,   60,  120,  300};

int ArmIndex(v1::Arm arm) {
  switch (arm) {
    case v1::ARM_PRODUCTION:
      return 1;
    case v1::ARM_CANDIDATE:
      return 2;
    default:
      return 0;
  }
}
// Label values are rollout::ArmName and rollout::ExchangeSourceName of the
// value at each index.
constexpr std::array<v1::Arm, kArms> kArmAt = {v1::ARM_UNSPECIFIED, v1::ARM_PRODUCTION,
                                               v1::ARM_CANDIDATE};
std::string ArmLabel(v1::Arm arm) { return std::string(rollout::ArmName(arm)); }

int SourceIndex(v1::ExchangeSource source) {
  switch (source) {
    case v1::SOURCE_LIVE:
      return 1;
    case v1::SOURCE_SHADOW:
      return 2;
    case v1::SOURCE_NOISE:
      return 3;
    case v1::SOURCE_EVAL:
      return 4;
    default:
      return 0;
  }
}
constexpr std::array<v1::ExchangeSource, kSources> kSourceAt = {
    v1::SOURCE_UNSPECIFIED, v1::SOURCE_LIVE, v1::SOURCE_SHADOW, v1::SOURCE_NOISE, v1::SOURCE_EVAL};
std::string SourceLabel(v1::ExchangeSource source) {
  return std::string(rollout::ExchangeSourceName(source));
}

// SourceFromName is the inverse of rollout::ExchangeSourceName
// (SOURCE_UNSPECIFIED for any other text).
v1::ExchangeSource SourceFromName(std::string_view name) {
  for (v1::ExchangeSource source : kSourceAt) {
    if (source != v1::SOURCE_UNSPECIFIED && rollout::ExchangeSourceName(source) == name) {
      return source;
    }
  }
  return v1::SOURCE_UNSPECIFIED;
}

constexpr std::array<v1::Verdict, 7> kVerdicts = {
    v1::VERDICT_UNSPECIFIED, v1::VERDICT_EQUIVALENT,      v1::VERDICT_MINOR_DIFF,
    v1::VERDICT_MAJOR_DIFF,  v1::VERDICT_CANDIDATE_ERROR, v1::VERDICT_PRODUCTION_ERROR,
    v1::VERDICT_BOTH_ERROR};

// Label values are rollout::PhaseName and rollout::GateOutcomeName.
constexpr std::array<v1::RolloutPhase, 5> kPhases = {v1::PHASE_SHADOW, v1::PHASE_CANARY,
                                                     v1::PHASE_PAUSED, v1::PHASE_PROMOTED,
                                                     v1::PHASE_ROLLED_BACK};

// Label values are rollout::HoldReasonName.
constexpr std::array<v1::HoldReason, 8> kHoldReasons = {
    v1::HOLD_NONE,         v1::HOLD_MIN_BAKE,  v1::HOLD_WAITING_FOR_DATA, v1::HOLD_INCONCLUSIVE,
    v1::HOLD_SHADOW_NO_COMPARISONS, v1::HOLD_PAUSED, v1::HOLD_COORDINATION,
    v1::HOLD_STORAGE};

// Label values are rollout::DecisionActionName; any other action is "other".
constexpr std::array<v1::DecisionAction, 6> kActions = {
    v1::ACTION_PROMOTE, v1::ACTION_ROLLBACK,   v1::ACTION_PAUSE,
    v1::ACTION_RESUME,  v1::ACTION_SET_WEIGHT, v1::ACTION_HOLD};

constexpr std::array<v1::GateOutcome, 3> kGateOutcomes = {v1::GATE_PASS, v1::GATE_FAIL,
                                                          v1::GATE_INCONCLUSIVE};

// understudy_feedback_rejected_total's reasons, in FeedbackCounters' order.
constexpr std::array<const char*, 4> kFeedbackReasons = {"invalid", "duplicate", "rate_limited",
                                                          "bad_token"};

double Seconds(absl::Duration d) { return absl::ToDoubleSeconds(d); }

// SyncedCounter advances a Prometheus counter to follow an absolute value
// kept by another component.
struct SyncedCounter {
  Counter* counter = nullptr;
  uint64_t last = 0;

  void Sync(uint64_t value) {
    // A smaller value means the source restarted from zero: everything it
    // counted since is new (Prometheus' own reset rule).
    uint64_t delta = value >= last ? value - last : value;
    if (delta > 0) counter->Increment(static_cast<double>(delta));
    last = value;
  }
};

// LabelGuard keeps a free-form label to a bounded set of safe values.
class LabelGuard {
 public:
  std::string Map(std::string_view raw) {
    std::string value(raw.substr(0, kMaxLabelBytes));
    // Names from config and code are identifiers; anything else is replaced
    // so the exposition stays valid ASCII whatever the input.
    for (char& c : value) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '_' || c == '-' || c == '.' || c == ':' || c == '/';
      if (!ok) c = '_';
    }
    if (value.empty()) value = "unspecified";
    if (seen_.count(value) > 0) return value;
    if (seen_.size() >= Metrics::kMaxLabelValues) return "other";
    seen_.insert(value);
    return value;
  }

 private:
  std::set<std::string> seen_;
};

Labels Merge(Labels base, const Labels& extra) {
  for (const auto& [k, v] : extra) base[k] = v;
  return base;
}

// SetOrRemove sets the series `labels` of `family` to `value`, or removes
// it when there is no value (an absent series says "no data"; 0 would lie).
void SetOrRemove(Family<Gauge>& family, const Labels& labels, std::optional<double> value) {
  if (value.has_value() && std::isfinite(*value)) {
    family.Add(labels).Set(*value);
  } else if (family.Has(labels)) {
    family.Remove(&family.Add(labels));
  }
}

template <typename T>
void RemoveIfSet(Family<T>& family, T*& metric) {
  if (metric != nullptr) family.Remove(metric);
  metric = nullptr;
}

}  // namespace

struct Metrics::Impl {
  explicit Impl(prometheus::Registry& r)
      : requests(prometheus::BuildCounter()
                     .Name("understudy_requests_total")
                     .Help("Finished exchanges, by arm and source (live, shadow, noise, eval)")
                     .Register(r)),
        errors(prometheus::BuildCounter()
                   .Name("understudy_errors_total")
                   .Help("Exchanges that failed (5xx, timeout, transport, invalid body), by class")
                   .Register(r)),
        rejections(prometheus::BuildCounter()
                       .Name("understudy_rejections_total")
                       .Help("Exchanges refused with 429 (throttled) or another 4xx "
                             "(client_error); not counted as errors")
                       .Register(r)),
        duration(prometheus::BuildHistogram()
                     .Name("understudy_request_duration_seconds")
                     .Help("Time from request start to the end of the answer")
                     .Register(r)),
        ttft(prometheus::BuildHistogram()
                 .Name("understudy_ttft_seconds")
                 .Help("Time to first token: request start to the first answer body byte")
                 .Register(r)),
        tokens(prometheus::BuildCounter()
                   .Name("understudy_tokens_total")
                   .Help("Tokens reported by the model's usage, by direction (input, output)")
                   .Register(r)),
        cost(prometheus::BuildCounter()
                 .Name("understudy_cost_total")
                 .Help("Cost of the exchanges in the currency units of compare.prices")
                 .Register(r)),
        shadow_requests(prometheus::BuildCounter()
                            .Name("understudy_shadow_requests_total")
                            .Help("Shadow client requests, by outcome (sent, completed, failed, "
                                  "timed_out, dropped)")
                            .Register(r)),
        shadow_skipped(prometheus::BuildCounter()
                           .Name("understudy_shadow_skipped_total")
                           .Help("Live exchanges not mirrored, by reason")
                           .Register(r)),
        shadow_budget_used(prometheus::BuildGauge()
                               .Name("understudy_shadow_budget_used")
                               .Help("Shadow spend in the current hour, currency units")
                               .Register(r)),
        shadow_budget_limit(prometheus::BuildGauge()
                                .Name("understudy_shadow_budget_limit")
                                .Help("Shadow budget per hour, currency units (0 = unlimited)")
                                .Register(r)),
        shadow_queued(prometheus::BuildGauge()
                          .Name("understudy_shadow_queued")
                          .Help("Shadow requests waiting to be sent")
                          .Register(r)),
        shadow_in_flight(prometheus::BuildGauge()
                             .Name("understudy_shadow_in_flight")
                             .Help("Shadow requests being sent")
                             .Register(r)),
        comparisons(prometheus::BuildCounter()
                        .Name("understudy_comparisons_total")
                        .Help("Production vs candidate comparisons, by verdict")
                        .Register(r)),
        comparator_score(prometheus::BuildHistogram()
                             .Name("understudy_comparator_score")
                             .Help("Comparator scores (1 = identical), applicable ones only")
                             .Register(r)),
        noise_level(prometheus::BuildGauge()
                        .Name("understudy_noise_level")
                        .Help("Noise model level per comparator (production against itself)")
                        .Register(r)),
        phase(prometheus::BuildGauge()
                  .Name("understudy_rollout_phase")
                  .Help("1 for the rollout's current phase, 0 for the others")
                  .Register(r)),
        stage_index(prometheus::BuildGauge()
                        .Name("understudy_rollout_stage_index")
                        .Help("Index of the current stage in the stage plan")
                        .Register(r)),
        weight(prometheus::BuildGauge()
                   .Name("understudy_rollout_weight_ratio")
                   .Help("Share of live traffic routed to the candidate, 0..1")
                   .Register(r)),
        stage_age(prometheus::BuildGauge()
                      .Name("understudy_rollout_stage_age_seconds")
                      .Help("Time since the current stage started")
                      .Register(r)),
        hold(prometheus::BuildGauge()
                 .Name("understudy_rollout_hold")
                 .Help("1 for why the judge's latest tick held (none: it did not)")
                 .Register(r)),
        rollbacks(prometheus::BuildGauge()
                      .Name("understudy_rollout_rollbacks")
                      .Help("Rollbacks (judge or manual) so far in this rollout")
                      .Register(r)),
        version(prometheus::BuildGauge()
                    .Name("understudy_rollout_version")
                    .Help("Rollout state version, incremented on every transition")
                    .Register(r)),
        health_requests(prometheus::BuildGauge()
                            .Name("understudy_rollout_health_requests")
                            .Help("Requests in the judge's window (stage or recent)")
                            .Register(r)),
        health_error_ratio(prometheus::BuildGauge()
                               .Name("understudy_rollout_health_error_ratio")
                               .Help("Error ratio in the judge's window, 0..1")
                               .Register(r)),
        health_latency_p95(prometheus::BuildGauge()
                               .Name("understudy_rollout_health_latency_p95_seconds")
                               .Help("95th percentile latency since the stage started")
                               .Register(r)),
        health_ttft_p95(prometheus::BuildGauge()
                            .Name("understudy_rollout_health_ttft_p95_seconds")
                            .Help("95th percentile time to first token since the stage started")
                            .Register(r)),
        health_satisfaction(prometheus::BuildGauge()
                                .Name("understudy_rollout_health_satisfaction_mean")
                                .Help("Mean feedback score (0..1) since the stage started")
                                .Register(r)),
        health_cost(prometheus::BuildGauge()
                        .Name("understudy_rollout_health_cost_per_request")
                        .Help("Mean cost per request since the stage started, currency units")
                        .Register(r)),
        health_agreement(prometheus::BuildGauge()
                             .Name("understudy_rollout_health_agreement_ratio")
                             .Help("Share of shadow comparisons without a major difference")
                             .Register(r)),
        decisions(prometheus::BuildCounter()
                      .Name("understudy_rollout_decisions_total")
                      .Help("Rollout decisions, by action and actor kind (judge, operator)")
                      .Register(r)),
        gate_value(prometheus::BuildGauge()
                       .Name("understudy_gate_value")
                       .Help("The gate's measured value per arm, in the gate's own unit")
                       .Register(r)),
        gate_threshold(prometheus::BuildGauge()
                           .Name("understudy_gate_threshold")
                           .Help("The gate's threshold for the candidate, in the gate's own unit")
                           .Register(r)),
        gate_statistic(prometheus::BuildGauge()
                           .Name("understudy_gate_statistic")
                           .Help("The gate's test statistic (e.g. a log likelihood ratio)")
                           .Register(r)),
        gate_bound(prometheus::BuildGauge()
                       .Name("understudy_gate_bound")
                       .Help("The bound the gate's statistic must cross to fail")
                       .Register(r)),
        gate_samples(prometheus::BuildGauge()
                         .Name("understudy_gate_samples")
                         .Help("Samples the gate was judged on, per arm")
                         .Register(r)),
        gate_clusters(prometheus::BuildGauge()
                          .Name("understudy_gate_clusters")
                          .Help("Routing buckets (clusters of users) with data for the gate, per arm")
                          .Register(r)),
        gate_design_effect(prometheus::BuildGauge()
                               .Name("understudy_gate_design_effect")
                               .Help("Variance inflation of the gate's effect from clustering by user")
                               .Register(r)),
        gate_outcome(prometheus::BuildGauge()
                         .Name("understudy_gate_outcome")
                         .Help("1 for the gate's latest outcome (pass, fail, inconclusive)")
                         .Register(r)),
        extproc_streams(prometheus::BuildCounter()
                            .Name("understudy_extproc_streams_total")
                            .Help("ext_proc streams started")
                            .Register(r)),
        extproc_streams_active(prometheus::BuildGauge()
                                   .Name("understudy_extproc_streams_active")
                                   .Help("ext_proc streams open now")
                                   .Register(r)),
        extproc_streams_cancelled(prometheus::BuildCounter()
                                      .Name("understudy_extproc_streams_cancelled_total")
                                      .Help("ext_proc streams reset by Envoy or the client")
                                      .Register(r)),
        extproc_messages(prometheus::BuildCounter()
                             .Name("understudy_extproc_messages_total")
                             .Help("ext_proc messages received")
                             .Register(r)),
        extproc_replies(prometheus::BuildCounter()
                            .Name("understudy_extproc_replies_total")
                            .Help("ext_proc replies sent")
                            .Register(r)),
        extproc_observability(prometheus::BuildCounter()
                                  .Name("understudy_extproc_observability_messages_total")
                                  .Help("ext_proc messages received in observability mode")
                                  .Register(r)),
        extproc_spurious(prometheus::BuildCounter()
                             .Name("understudy_extproc_spurious_messages_total")
                             .Help("ext_proc messages out of order (FAILED_PRECONDITION)")
                             .Register(r)),
        extproc_malformed(prometheus::BuildCounter()
                              .Name("understudy_extproc_malformed_messages_total")
                              .Help("ext_proc messages that did not parse (INVALID_ARGUMENT)")
                              .Register(r)),
        extproc_unknown(prometheus::BuildCounter()
                            .Name("understudy_extproc_unknown_messages_total")
                            .Help("ext_proc messages with no request field set")
                            .Register(r)),
        extproc_routes(prometheus::BuildCounter()
                           .Name("understudy_extproc_routes_total")
                           .Help("Route decisions, by arm")
                           .Register(r)),
        bodies_truncated(prometheus::BuildCounter()
                             .Name("understudy_capture_bodies_truncated_total")
                             .Help("Captured bodies cut at capture.max_body_bytes")
                             .Register(r)),
        queue_submitted(prometheus::BuildCounter()
                            .Name("understudy_exchange_queue_submitted_total")
                            .Help("Exchanges queued for the pipeline")
                            .Register(r)),
        queue_drops(prometheus::BuildCounter()
                        .Name("understudy_exchange_queue_drops_total")
                        .Help("Exchanges dropped because the pipeline queue was full")
                        .Register(r)),
        feedback_received(prometheus::BuildCounter()
                              .Name("understudy_feedback_requests_total")
                              .Help("Feedback POSTs seen on the data path (feedback.path)")
                              .Register(r)),
        shaped(prometheus::BuildCounter()
                   .Name("understudy_requests_shaped_total")
                   .Help("Routed requests reshaped for their arm (model, key, headers, path); "
                         "body=unchanged: the body could not be rewritten")
                   .Register(r)),
        translations(prometheus::BuildCounter()
                         .Name("understudy_translations_total")
                         .Help("Requests for an arm in another provider's API: translated, "
                               "untranslatable (kept on production), answer_failed")
                         .Register(r)),
        fallbacks(prometheus::BuildCounter()
                      .Name("understudy_fallbacks_total")
                      .Help("Candidate attempts that failed before the client saw a byte and "
                            "were retried: production (answered by production), no_plan "
                            "(refused: nothing to restore), off (refused: routing.fallback off)")
                      .Register(r)),
        out_of_scope(prometheus::BuildCounter()
                         .Name("understudy_requests_out_of_scope_total")
                         .Help("Requests that are not model calls (routes:), left on "
                               "production and not judged, by reason (path, method)")
                         .Register(r)),
        exchanges_unjudged(prometheus::BuildCounter()
                               .Name("understudy_exchanges_unsupported_total")
                               .Help("Exchanges whose answer could not be judged on its "
                                     "content (unknown content type or coding), by arm; "
                                     "never counted as errors")
                               .Register(r)),
        stream_duration(prometheus::BuildHistogram()
                            .Name("understudy_extproc_stream_duration_seconds")
                            .Help("Lifetime of ext_proc streams")
                            .Register(r)),
        store_written(prometheus::BuildCounter()
                          .Name("understudy_store_records_written_total")
                          .Help("Records written to the store")
                          .Register(r)),
        store_failures(prometheus::BuildCounter()
                           .Name("understudy_store_write_failures_total")
                           .Help("Store writes that failed")
                           .Register(r)),
        feedback_rejected(prometheus::BuildCounter()
                              .Name("understudy_feedback_rejected_total")
                              .Help("Feedback scores refused, by reason: invalid, duplicate "
                                    "(the first score for a request wins), rate_limited, bad_token "
                                    "(no valid feedback token)")
                              .Register(r)),
        otlp_spans(prometheus::BuildCounter()
                       .Name("understudy_otlp_spans_total")
                       .Help("Trace spans by export outcome")
                       .Register(r)),
        otlp_retries(prometheus::BuildCounter()
                         .Name("understudy_otlp_export_retries_total")
                         .Help("OTLP export calls repeated after transient failures")
                         .Register(r)) {
    // Series with a fixed label set exist from the start (at 0), so rates
    // and absent() behave before the first event.
    static constexpr std::array<const char*, 5> kShadowOutcomes = {"sent", "completed", "failed",
                                                                   "timed_out", "dropped"};
    for (size_t i = 0; i < kShadowOutcomes.size(); ++i) {
      shadow_outcomes[i].counter = &shadow_requests.Add({{"outcome", kShadowOutcomes[i]}});
    }
    for (v1::Verdict v : kVerdicts) verdicts[v] = &comparisons.Add({{"verdict", std::string(compare::VerdictName(v))}});
    for (size_t i = 0; i < kPhases.size(); ++i) {
      phases[i] = &phase.Add({{"phase", std::string(rollout::PhaseName(kPhases[i]))}});
    }
    for (size_t i = 0; i < kHoldReasons.size(); ++i) {
      holds[i] = &hold.Add({{"reason", std::string(rollout::HoldReasonName(kHoldReasons[i]))}});
    }
    shadow_budget_used.Add({});
    shadow_budget_limit.Add({});
    shadow_queued.Add({});
    shadow_in_flight.Add({});
    stage_index.Add({});
    weight.Add({});
    stage_age.Add({});
    rollbacks.Add({});
    version.Add({});
    ext.streams.counter = &extproc_streams.Add({});
    ext.cancelled.counter = &extproc_streams_cancelled.Add({});
    ext.messages.counter = &extproc_messages.Add({});
    ext.replies.counter = &extproc_replies.Add({});
    ext.observability.counter = &extproc_observability.Add({});
    ext.spurious.counter = &extproc_spurious.Add({});
    ext.malformed.counter = &extproc_malformed.Add({});
    ext.unknown.counter = &extproc_unknown.Add({});
    ext.route_production.counter = &extproc_routes.Add({{"arm", ArmLabel(v1::ARM_PRODUCTION)}});
    ext.route_candidate.counter = &extproc_routes.Add({{"arm", ArmLabel(v1::ARM_CANDIDATE)}});
    ext.truncated.counter = &bodies_truncated.Add({});
    ext.submitted.counter = &queue_submitted.Add({});
    ext.dropped.counter = &queue_drops.Add({});
    ext.feedback.counter = &feedback_received.Add({});
    ext.out_of_scope_path.counter = &out_of_scope.Add({{"reason", "path"}});
    ext.out_of_scope_method.counter = &out_of_scope.Add({{"reason", "method"}});
    ext.shaped_ok.counter = &shaped.Add({{"body", "shaped"}});
    ext.shaped_unchanged.counter = &shaped.Add({{"body", "unchanged"}});
    ext.translated.counter = &translations.Add({{"result", "translated"}});
    ext.untranslatable.counter = &translations.Add({{"result", "untranslatable"}});
    ext.answer_failed.counter = &translations.Add({{"result", "answer_failed"}});
    ext.fallback_production.counter = &fallbacks.Add({{"result", "production"}});
    ext.fallback_no_plan.counter = &fallbacks.Add({{"result", "no_plan"}});
    ext.fallback_off.counter = &fallbacks.Add({{"result", "off"}});
    streams_active = &extproc_streams_active.Add({});
    stream_duration_all = &stream_duration.Add({}, kStreamBuckets);
    for (size_t i = 0; i < kFeedbackReasons.size(); ++i) {
      feedback_rejected_sync[i].counter = &feedback_rejected.Add({{"reason", kFeedbackReasons[i]}});
    }
    store_written_sync.counter = &store_written.Add({});
    store_failures_sync.counter = &store_failures.Add({});
    for (size_t i = 0; i < kOtlpOutcomes.size(); ++i) {
      otlp_outcomes[i].counter = &otlp_spans.Add({{"outcome", kOtlpOutcomes[i]}});
    }
    otlp_retries_sync.counter = &otlp_retries.Add({});
  }

  static constexpr std::array<const char*, 4> kOtlpOutcomes = {"exported", "dropped", "failed",
                                                               "rejected"};

  // The series of one (arm, source), created on first use.
  struct ExchangeSeries {
    Counter* requests = nullptr;
    Histogram* duration = nullptr;
    Histogram* ttft = nullptr;
    Counter* cost = nullptr;
    Counter* tokens_in = nullptr;
    Counter* tokens_out = nullptr;
    std::array<Counter*, kClasses> by_class{};  // errors or rejections, created on first use
  };

  struct GateSeries {
    Gauge* value_production = nullptr;
    Gauge* value_candidate = nullptr;
    Gauge* threshold = nullptr;
    Gauge* bound = nullptr;
    Gauge* statistic = nullptr;
    std::string statistic_name;
    Gauge* samples_production = nullptr;
    Gauge* samples_candidate = nullptr;
    Gauge* clusters_production = nullptr;
    Gauge* clusters_candidate = nullptr;
    Gauge* design_effect = nullptr;
    std::array<Gauge*, kGateOutcomes.size()> outcome{};
  };

  struct ExtProcCounters {
    SyncedCounter streams, cancelled, messages, replies, observability, spurious, malformed,
        unknown, route_production, route_candidate, truncated, submitted, dropped, feedback,
        out_of_scope_path, out_of_scope_method, shaped_ok, shaped_unchanged,
        translated, untranslatable, answer_failed, fallback_production, fallback_no_plan,
        fallback_off;
  };

  ExchangeSeries& Series(int arm, int source) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_ptr<ExchangeSeries>& slot = exchange[arm][source];
    if (slot == nullptr) {
      slot = std::make_unique<ExchangeSeries>();
      Labels labels = {{"arm", ArmLabel(kArmAt[arm])}, {"source", SourceLabel(kSourceAt[source])}};
      slot->requests = &requests.Add(labels);
      slot->duration = &duration.Add(labels, kRequestBuckets);
      slot->ttft = &ttft.Add(labels, kTtftBuckets);
      slot->cost = &cost.Add(labels);
      slot->tokens_in = &tokens.Add(Merge(labels, {{"direction", "input"}}));
      slot->tokens_out = &tokens.Add(Merge(labels, {{"direction", "output"}}));
    }
    return *slot;
  }

  Counter* ClassCounter(int arm, int source, ExchangeSeries& series, rollout::OutcomeClass cls)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (cls == rollout::OutcomeClass::kOk) return nullptr;
    Counter*& slot = series.by_class[static_cast<int>(cls)];
    if (slot == nullptr) {
      Labels labels = {
          {"arm", ArmLabel(kArmAt[arm])},
          {"source", SourceLabel(kSourceAt[source])},
          {"class", std::string(rollout::OutcomeClassName(cls))}};
      slot = rollout::IsError(cls) ? &errors.Add(labels) : &rejections.Add(labels);
    }
    return slot;
  }

  void RemoveGate(GateSeries& s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    RemoveIfSet(gate_value, s.value_production);
    RemoveIfSet(gate_value, s.value_candidate);
    RemoveIfSet(gate_threshold, s.threshold);
    RemoveIfSet(gate_bound, s.bound);
    RemoveIfSet(gate_statistic, s.statistic);
    RemoveIfSet(gate_samples, s.samples_production);
    RemoveIfSet(gate_samples, s.samples_candidate);
    RemoveIfSet(gate_clusters, s.clusters_production);
    RemoveIfSet(gate_clusters, s.clusters_candidate);
    RemoveIfSet(gate_design_effect, s.design_effect);
    for (Gauge*& g : s.outcome) RemoveIfSet(gate_outcome, g);
  }

  // SetGates publishes a range of v1::GateEvaluation (a vector or a
  // repeated field) and drops the gates not in it.
  template <typename Range>
  void SetGates(const Range& evaluations) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::set<std::string> current;
    for (const v1::GateEvaluation& evaluation : evaluations) {
      const v1::GateEvaluation* g = &evaluation;
      std::string name = gate_names.Map(g->gate());
      current.insert(name);
      GateSeries& s = gates[name];
      if (s.threshold == nullptr) {
        s.value_production =
            &gate_value.Add({{"gate", name}, {"arm", ArmLabel(v1::ARM_PRODUCTION)}});
        s.value_candidate =
            &gate_value.Add({{"gate", name}, {"arm", ArmLabel(v1::ARM_CANDIDATE)}});
        s.threshold = &gate_threshold.Add({{"gate", name}});
        s.bound = &gate_bound.Add({{"gate", name}});
        s.samples_production =
            &gate_samples.Add({{"gate", name}, {"arm", ArmLabel(v1::ARM_PRODUCTION)}});
        s.samples_candidate =
            &gate_samples.Add({{"gate", name}, {"arm", ArmLabel(v1::ARM_CANDIDATE)}});
        s.clusters_production =
            &gate_clusters.Add({{"gate", name}, {"arm", ArmLabel(v1::ARM_PRODUCTION)}});
        s.clusters_candidate =
            &gate_clusters.Add({{"gate", name}, {"arm", ArmLabel(v1::ARM_CANDIDATE)}});
        for (size_t i = 0; i < kGateOutcomes.size(); ++i) {
          s.outcome[i] = &gate_outcome.Add(
              {{"gate", name}, {"outcome", std::string(rollout::GateOutcomeName(kGateOutcomes[i]))}});
        }
      }
      std::string statistic = statistic_names.Map(g->statistic());
      if (s.statistic == nullptr || s.statistic_name != statistic) {
        RemoveIfSet(gate_statistic, s.statistic);
        s.statistic = &gate_statistic.Add({{"gate", name}, {"statistic", statistic}});
        s.statistic_name = statistic;
      }
      s.value_production->Set(g->production_value());
      s.value_candidate->Set(g->candidate_value());
      s.threshold->Set(g->threshold());
      s.bound->Set(g->bound());
      s.statistic->Set(g->statistic_value());
      s.samples_production->Set(static_cast<double>(g->production_samples()));
      s.samples_candidate->Set(static_cast<double>(g->candidate_samples()));
      s.clusters_production->Set(static_cast<double>(g->production_clusters()));
      s.clusters_candidate->Set(static_cast<double>(g->candidate_clusters()));
      // Absent until the gate computes one (0 in the evaluation).
      if (g->design_effect() > 0) {
        if (s.design_effect == nullptr) s.design_effect = &gate_design_effect.Add({{"gate", name}});
        s.design_effect->Set(g->design_effect());
      } else {
        RemoveIfSet(gate_design_effect, s.design_effect);
      }
      for (size_t i = 0; i < kGateOutcomes.size(); ++i) {
        s.outcome[i]->Set(g->outcome() == kGateOutcomes[i] ? 1 : 0);
      }
    }
    for (auto it = gates.begin(); it != gates.end();) {
      if (current.count(it->first) > 0) {
        ++it;
        continue;
      }
      RemoveGate(it->second);
      it = gates.erase(it);
    }
  }

  void SetHealth(const v1::ArmHealth& stage, const v1::ArmHealth& recent, v1::Arm arm,
                 v1::ExchangeSource source) {
    const Labels base = {{"arm", ArmLabel(arm)}, {"source", SourceLabel(source)}};
    auto ratio = [](int64_t part, int64_t whole) -> std::optional<double> {
      if (whole <= 0) return std::nullopt;
      return static_cast<double>(part) / static_cast<double>(whole);
    };
    auto when = [](bool has, double v) -> std::optional<double> {
      if (!has) return std::nullopt;
      return v;
    };
    for (const auto& [window, h] :
         {std::pair<const char*, const v1::ArmHealth&>{"stage", stage}, {"recent", recent}}) {
      Labels labels = Merge(base, {{"window", window}});
      health_requests.Add(labels).Set(static_cast<double>(h.requests()));
      SetOrRemove(health_error_ratio, labels, ratio(h.errors(), h.requests()));
    }
    SetOrRemove(health_latency_p95, base,
                when(stage.latency_p95_ms() > 0, stage.latency_p95_ms() / 1000.0));
    SetOrRemove(health_ttft_p95, base, when(stage.ttft_p95_ms() > 0, stage.ttft_p95_ms() / 1000.0));
    SetOrRemove(health_satisfaction, base,
                when(stage.feedback_count() > 0, stage.satisfaction_mean()));
    SetOrRemove(health_cost, base, when(stage.cost_samples() > 0, stage.cost_per_request()));
    SetOrRemove(health_agreement, base, when(stage.comparisons() > 0, stage.agreement_rate()));
  }

  absl::Mutex mu;

  Family<Counter>& requests;
  Family<Counter>& errors;
  Family<Counter>& rejections;
  Family<Histogram>& duration;
  Family<Histogram>& ttft;
  Family<Counter>& tokens;
  Family<Counter>& cost;
  Family<Counter>& shadow_requests;
  Family<Counter>& shadow_skipped;
  Family<Gauge>& shadow_budget_used;
  Family<Gauge>& shadow_budget_limit;
  Family<Gauge>& shadow_queued;
  Family<Gauge>& shadow_in_flight;
  Family<Counter>& comparisons;
  Family<Histogram>& comparator_score;
  Family<Gauge>& noise_level;
  Family<Gauge>& phase;
  Family<Gauge>& stage_index;
  Family<Gauge>& weight;
  Family<Gauge>& stage_age;
  Family<Gauge>& hold;
  Family<Gauge>& rollbacks;
  Family<Gauge>& version;
  Family<Gauge>& health_requests;
  Family<Gauge>& health_error_ratio;
  Family<Gauge>& health_latency_p95;
  Family<Gauge>& health_ttft_p95;
  Family<Gauge>& health_satisfaction;
  Family<Gauge>& health_cost;
  Family<Gauge>& health_agreement;
  Family<Counter>& decisions;
  Family<Gauge>& gate_value;
  Family<Gauge>& gate_threshold;
  Family<Gauge>& gate_statistic;
  Family<Gauge>& gate_bound;
  Family<Gauge>& gate_samples;
  Family<Gauge>& gate_clusters;
  Family<Gauge>& gate_design_effect;
  Family<Gauge>& gate_outcome;
  Family<Counter>& extproc_streams;
  Family<Gauge>& extproc_streams_active;
  Family<Counter>& extproc_streams_cancelled;
  Family<Counter>& extproc_messages;
  Family<Counter>& extproc_replies;
  Family<Counter>& extproc_observability;
  Family<Counter>& extproc_spurious;
  Family<Counter>& extproc_malformed;
  Family<Counter>& extproc_unknown;
  Family<Counter>& extproc_routes;
  Family<Counter>& bodies_truncated;
  Family<Counter>& queue_submitted;
  Family<Counter>& queue_drops;
  Family<Counter>& feedback_received;
  Family<Counter>& shaped;
  Family<Counter>& translations;
  Family<Counter>& fallbacks;
  Family<Counter>& out_of_scope;
  Family<Counter>& exchanges_unjudged;
  Family<Histogram>& stream_duration;
  Family<Counter>& store_written;
  Family<Counter>& store_failures;
  Family<Counter>& feedback_rejected;
  Family<Counter>& otlp_spans;
  Family<Counter>& otlp_retries;

  // Fixed series, set in the constructor and never changed after.
  std::array<SyncedCounter, 5> shadow_outcomes ABSL_GUARDED_BY(mu);
  std::map<v1::Verdict, Counter*> verdicts;
  std::array<Gauge*, kPhases.size()> phases{};
  std::array<Gauge*, kHoldReasons.size()> holds{};
  Gauge* streams_active = nullptr;
  Histogram* stream_duration_all = nullptr;

  std::array<std::array<std::unique_ptr<ExchangeSeries>, kSources>, kArms> exchange
      ABSL_GUARDED_BY(mu);
  std::map<std::string, SyncedCounter> shadow_reasons ABSL_GUARDED_BY(mu);
  LabelGuard reason_names ABSL_GUARDED_BY(mu);
  std::map<std::string, Histogram*> comparators ABSL_GUARDED_BY(mu);
  LabelGuard comparator_names ABSL_GUARDED_BY(mu);
  LabelGuard noise_names ABSL_GUARDED_BY(mu);
  std::map<std::string, GateSeries> gates ABSL_GUARDED_BY(mu);
  LabelGuard gate_names ABSL_GUARDED_BY(mu);
  LabelGuard statistic_names ABSL_GUARDED_BY(mu);
  ExtProcCounters ext ABSL_GUARDED_BY(mu);
  SyncedCounter store_written_sync ABSL_GUARDED_BY(mu);
  SyncedCounter store_failures_sync ABSL_GUARDED_BY(mu);
  std::array<SyncedCounter, kFeedbackReasons.size()> feedback_rejected_sync ABSL_GUARDED_BY(mu);
  std::array<SyncedCounter, kOtlpOutcomes.size()> otlp_outcomes ABSL_GUARDED_BY(mu);
  SyncedCounter otlp_retries_sync ABSL_GUARDED_BY(mu);
};

Metrics::Metrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      impl_(std::make_unique<Impl>(*registry_)),
      drift_(NewDriftFamilies(*registry_)),
      fleet_(NewFleetFamilies(*registry_)),
      internal_(NewInternalFamilies(*registry_)) {}

Metrics::~Metrics() = default;

void Metrics::ObserveExchange(v1::Arm arm, v1::ExchangeSource source, rollout::OutcomeClass cls,
                              std::optional<absl::Duration> latency,
                              std::optional<absl::Duration> ttft, int64_t input_tokens,
                              int64_t output_tokens, std::optional<double> cost) {
  const int a = ArmIndex(arm), s = SourceIndex(source);
  Impl::ExchangeSeries* series;
  Counter* by_class;
  {
    absl::MutexLock lock(&impl_->mu);
    series = &impl_->Series(a, s);
    by_class = impl_->ClassCounter(a, s, *series, cls);
  }
  // The series outlive this call (they are never removed) and are
  // thread-safe themselves, so the updates need no lock of ours.
  series->requests->Increment();
  if (by_class != nullptr) by_class->Increment();
  if (latency.has_value() && *latency >= absl::ZeroDuration()) {
    series->duration->Observe(Seconds(*latency));
  }
  if (ttft.has_value() && *ttft >= absl::ZeroDuration()) series->ttft->Observe(Seconds(*ttft));
  if (input_tokens > 0) series->tokens_in->Increment(static_cast<double>(input_tokens));
  if (output_tokens > 0) series->tokens_out->Increment(static_cast<double>(output_tokens));
  if (cost.has_value() && std::isfinite(*cost) && *cost > 0) series->cost->Increment(*cost);
}

void Metrics::ObserveExchange(v1::Arm arm, std::string_view source, rollout::OutcomeClass cls,
                              std::optional<absl::Duration> latency,
                              std::optional<absl::Duration> ttft, int64_t input_tokens,
                              int64_t output_tokens, std::optional<double> cost) {
  ObserveExchange(arm, SourceFromName(source), cls, latency, ttft, input_tokens, output_tokens,
                  cost);
}

void Metrics::ObserveUnsupported(v1::Arm arm) {
  impl_->exchanges_unjudged.Add({{"arm", std::string(ArmLabel(arm))}}).Increment();
}

void Metrics::SetShadowStats(const ShadowCounters& c) {
  auto count = [](int64_t v) { return static_cast<uint64_t>(std::max<int64_t>(0, v)); };
  absl::MutexLock lock(&impl_->mu);
  const std::array<int64_t, 5> values = {c.sent, c.completed, c.failed, c.timed_out, c.dropped};
  for (size_t i = 0; i < values.size(); ++i) impl_->shadow_outcomes[i].Sync(count(values[i]));

  // Sum per exported label first: several raw reasons may share "other".
  std::map<std::string, uint64_t> by_label;
  uint64_t over_budget = count(c.over_budget);
  for (const auto& [reason, n] : c.skipped_by_reason) {
    if (reason == "budget") {
      over_budget = std::max(over_budget, count(n));
    } else {
      by_label[impl_->reason_names.Map(reason)] += count(n);
    }
  }
  by_label[impl_->reason_names.Map("budget")] += over_budget;
  for (const auto& [label, n] : by_label) {
    SyncedCounter& counter = impl_->shadow_reasons[label];
    if (counter.counter == nullptr) {
      counter.counter = &impl_->shadow_skipped.Add({{"reason", label}});
    }
    counter.Sync(n);
  }
  if (std::isfinite(c.budget_used)) impl_->shadow_budget_used.Add({}).Set(c.budget_used);
  if (std::isfinite(c.budget_limit)) impl_->shadow_budget_limit.Add({}).Set(c.budget_limit);
  impl_->shadow_queued.Add({}).Set(static_cast<double>(count(c.queued)));
  impl_->shadow_in_flight.Add({}).Set(static_cast<double>(count(c.in_flight)));
}

void Metrics::ObserveComparison(const v1::Comparison& comparison) {
  auto verdict = impl_->verdicts.find(comparison.verdict());
  (verdict != impl_->verdicts.end() ? verdict->second : impl_->verdicts.at(v1::VERDICT_UNSPECIFIED))
      ->Increment();
  for (const v1::ComparatorScore& score : comparison.scores()) {
    if (!score.applicable() || std::isnan(score.score())) continue;
    Histogram* histogram;
    {
      absl::MutexLock lock(&impl_->mu);
      std::string name = impl_->comparator_names.Map(score.name());
      Histogram*& slot = impl_->comparators[name];
      if (slot == nullptr) {
        slot = &impl_->comparator_score.Add({{"comparator", name}}, kScoreBuckets);
      }
      histogram = slot;
    }
    histogram->Observe(std::clamp(score.score(), 0.0, 1.0));
  }
}

void Metrics::SetNoiseLevel(std::string_view comparator, double value) {
  if (!std::isfinite(value)) return;
  absl::MutexLock lock(&impl_->mu);
  impl_->noise_level.Add({{"comparator", impl_->noise_names.Map(comparator)}}).Set(value);
}

void Metrics::SetRollout(const v1::RolloutState& state, const v1::HealthSnapshot& health,
                         absl::Time now) {
  absl::MutexLock lock(&impl_->mu);
  for (size_t i = 0; i < kPhases.size(); ++i) {
    impl_->phases[i]->Set(state.phase() == kPhases[i] ? 1 : 0);
  }
  impl_->stage_index.Add({}).Set(state.stage_index());
  impl_->weight.Add({}).Set(std::clamp(state.weight_basis_points(), 0, 10000) / 10000.0);
  double age = 0;
  if (state.stage_started_unix_micros() > 0) {
    age = std::max(0.0, Seconds(now - absl::FromUnixMicros(state.stage_started_unix_micros())));
  }
  impl_->stage_age.Add({}).Set(age);
  impl_->rollbacks.Add({}).Set(state.rollbacks());
  for (size_t i = 0; i < kHoldReasons.size(); ++i) {
    impl_->holds[i]->Set(health.hold_reason() == kHoldReasons[i] ? 1 : 0);
  }
  impl_->version.Add({}).Set(static_cast<double>(state.version()));
  impl_->SetHealth(health.production(), health.production_recent(), v1::ARM_PRODUCTION,
                   v1::SOURCE_LIVE);
  impl_->SetHealth(health.candidate(), health.candidate_recent(), v1::ARM_CANDIDATE,
                   v1::SOURCE_LIVE);
  impl_->SetHealth(health.shadow(), health.shadow_recent(), v1::ARM_CANDIDATE, v1::SOURCE_SHADOW);
}

void Metrics::ObserveDecision(const v1::Decision& decision) {
  std::string action = "other";
  for (v1::DecisionAction known : kActions) {
    if (decision.action() == known) action = std::string(rollout::DecisionActionName(known));
  }
  const char* actor_kind = decision.actor() == "judge" ? "judge" : "operator";
  absl::MutexLock lock(&impl_->mu);
  impl_->decisions.Add({{"action", action}, {"actor_kind", actor_kind}}).Increment();
  if (decision.gates_size() > 0) {
    impl_->SetGates(decision.gates());
  }
}

void Metrics::SetGateEvaluations(const std::vector<v1::GateEvaluation>& gates) {
  absl::MutexLock lock(&impl_->mu);
  impl_->SetGates(gates);
}

void Metrics::SyncExtProc(const ExtProcCounters& stats) {
  absl::MutexLock lock(&impl_->mu);
  Impl::ExtProcCounters& e = impl_->ext;
  e.streams.Sync(stats.streams_started);
  e.cancelled.Sync(stats.streams_cancelled);
  e.messages.Sync(stats.messages_received);
  e.replies.Sync(stats.replies_sent);
  e.observability.Sync(stats.observability_messages);
  e.spurious.Sync(stats.spurious_messages);
  e.malformed.Sync(stats.malformed_messages);
  e.unknown.Sync(stats.unknown_messages);
  e.route_production.Sync(stats.route_production);
  e.route_candidate.Sync(stats.route_candidate);
  e.truncated.Sync(stats.bodies_truncated);
  e.submitted.Sync(stats.exchanges_submitted);
  e.dropped.Sync(stats.exchanges_dropped);
  e.feedback.Sync(stats.feedback_requests);
  e.out_of_scope_path.Sync(stats.out_of_scope_path);
  e.out_of_scope_method.Sync(stats.out_of_scope_method);
  e.shaped_ok.Sync(stats.requests_shaped - std::min(stats.requests_shaped, stats.shaping_failures));
  e.shaped_unchanged.Sync(stats.shaping_failures);
  e.translated.Sync(stats.requests_translated);
  e.untranslatable.Sync(stats.requests_untranslatable);
  e.answer_failed.Sync(stats.translation_failures);
  e.fallback_production.Sync(stats.fallbacks_restored);
  e.fallback_no_plan.Sync(stats.fallbacks_no_plan);
  e.fallback_off.Sync(stats.fallbacks_off);
  impl_->streams_active->Set(static_cast<double>(std::max<int64_t>(0, stats.streams_active)));
}

void Metrics::ObserveStreamDuration(absl::Duration duration) {
  if (duration < absl::ZeroDuration()) return;
  impl_->stream_duration_all->Observe(Seconds(duration));
}

void Metrics::SetStoreStats(uint64_t records_written, uint64_t write_failures) {
  absl::MutexLock lock(&impl_->mu);
  impl_->store_written_sync.Sync(records_written);
  impl_->store_failures_sync.Sync(write_failures);
}

void Metrics::SetFeedbackStats(const FeedbackCounters& c) {
  auto clamp = [](int64_t v) { return static_cast<uint64_t>(std::max<int64_t>(v, 0)); };
  absl::MutexLock lock(&impl_->mu);
  const std::array<int64_t, kFeedbackReasons.size()> values = {c.invalid, c.duplicate,
                                                               c.rate_limited, c.bad_token};
  for (size_t i = 0; i < values.size(); ++i) {
    impl_->feedback_rejected_sync[i].Sync(clamp(values[i]));
  }
}

void Metrics::SetTracingStats(const TracingCounters& c) {
  auto clamp = [](int64_t v) { return static_cast<uint64_t>(std::max<int64_t>(v, 0)); };
  absl::MutexLock lock(&impl_->mu);
  const std::array<int64_t, 4> values = {c.exported, c.dropped, c.failed, c.rejected};
  for (size_t i = 0; i < values.size(); ++i) impl_->otlp_outcomes[i].Sync(clamp(values[i]));
  impl_->otlp_retries_sync.Sync(clamp(c.retries));
}

std::string Metrics::Serialize() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

}  // namespace understudy::metrics
