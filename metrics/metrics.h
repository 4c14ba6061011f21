// metrics/metrics.h
// The sidecar's Prometheus metrics: live and shadow traffic per arm, shadow
// client outcomes and budget, comparison verdicts and comparator scores, the
// noise model, the rollout's phase, weight and health windows, every judge
// gate's numbers, the ext_proc service's counters and the store's writes.
// Serialize() renders them in the Prometheus text exposition format (0.0.4)
// for GET /metrics.
//
// Example (given const v1::Decision& decision, const v1::RolloutState& state,
//   const v1::HealthSnapshot& health, const Clock& clock, const ExtProcCounters& extproc,
//   const ShadowCounters& shadow):
//   Metrics metrics;
//   // pipeline worker, once per finished exchange:
//   metrics.ObserveExchange(v1::ARM_CANDIDATE, v1::SOURCE_LIVE, rollout::OutcomeClass::kOk,
//                           absl::Milliseconds(840), absl::Milliseconds(120),
//                           /*input_tokens=*/52, /*output_tokens=*/230, /*cost=*/0.0041);
//   // after every judge tick:
//   metrics.ObserveDecision(decision);
//   metrics.SetRollout(state, health, clock.Now());
//   // just before every scrape (counters owned by other components):
//   metrics.SyncExtProc(extproc);
//   metrics.SetShadowStats(shadow);
//   std::string body = metrics.Serialize();   // Content-Type: Metrics::kContentType
//
// Naming follows the Prometheus conventions: every name starts with
// `understudy_`, carries its base unit (seconds, tokens as `_tokens_total`,
// ratios 0..1 as `_ratio`), counters end in `_total`, money is in the
// currency units of `compare.prices` (no unit suffix: Prometheus has no base
// currency). Labels have low cardinality only: arm (production | candidate
// | unknown), source (live | shadow | noise | eval | unknown), fixed enums,
// and names chosen by the config or the code (gates, comparators, skip
// reasons); each free-form label keeps at most kMaxLabelValues distinct
// values (later ones are reported as "other") and 64 bytes. No request ids,
// user ids or model names ever become labels.
//
// The series, by method:
//   ObserveExchange
//     understudy_requests_total{arm,source}                         counter
//     understudy_errors_total{arm,source,class}                     counter
//         class: server_error | timeout | transport | invalid_body — the
//         classes the judge counts as errors (rollout::IsError), so
//         sum(errors_total)/sum(requests_total) is the judge's error rate
//     understudy_rejections_total{arm,source,class}                 counter
//         class: throttled (429) | client_error (other 4xx); not errors
//     understudy_request_duration_seconds{arm,source}               histogram 0.05..120 s
//     understudy_ttft_seconds{arm,source}                           histogram 0.025..30 s
//     understudy_tokens_total{arm,source,direction=input|output}    counter
//     understudy_cost_total{arm,source}                             counter (currency)
//   SetShadowStats
//     understudy_shadow_requests_total{outcome=sent|completed|failed|timed_out|dropped}
//     understudy_shadow_skipped_total{reason}                       counter
//     understudy_shadow_budget_used                                 gauge (currency, this hour)
//     understudy_shadow_budget_limit                                gauge (currency/hour; 0 = none)
//     understudy_shadow_queued, understudy_shadow_in_flight         gauges
//   ObserveComparison
//     understudy_comparisons_total{verdict}                         counter
//         verdict: equivalent | minor_diff | major_diff | candidate_error |
//                  production_error | both_error | unspecified
//     understudy_comparator_score{comparator}                       histogram 0..1
//   SetNoiseLevel
//     understudy_noise_level{comparator}                            gauge
//   SetRollout
//     understudy_rollout_phase{phase}                               gauge, one-hot
//         phase: shadow | canary | paused | promoted | rolled_back
//     understudy_rollout_stage_index                                gauge
//     understudy_rollout_weight_ratio                               gauge 0..1 of live traffic
//     understudy_rollout_stage_age_seconds                          gauge
//     understudy_rollout_rollbacks                                  gauge (state.rollbacks)
//     understudy_rollout_hold{reason}                               gauge, one-hot
//         reason: none | min_bake | waiting_for_data | inconclusive |
//                 shadow_no_comparisons | paused (rollout::HoldReasonName;
//                 status shows what would unblock it)
//     understudy_rollout_version                                    gauge (state.version)
//     understudy_rollout_health_requests{arm,source,window}         gauge
//     understudy_rollout_health_error_ratio{arm,source,window}      gauge
//     understudy_rollout_health_latency_p95_seconds{arm,source}     gauge
//     understudy_rollout_health_ttft_p95_seconds{arm,source}        gauge
//     understudy_rollout_health_satisfaction_mean{arm,source}       gauge 0..1
//     understudy_rollout_health_cost_per_request{arm,source}        gauge (currency)
//     understudy_rollout_health_agreement_ratio{arm,source}         gauge 0..1
//         window: stage (since the stage started) | recent (sliding).
//         {arm="production",source="live"}, {arm="candidate",source="live"}
//         and {arm="candidate",source="shadow"} (the shadow calls). A series
//         is absent while its window has no data (no requests, no feedback,
//         no cost, no comparisons) instead of reporting a false 0.
//   ObserveDecision
//     understudy_rollout_decisions_total{action,actor_kind=judge|operator}
//         action: promote | rollback | pause | resume | set_weight | hold | other
//   SetGateEvaluations (and ObserveDecision when the decision has gates)
//     understudy_gate_value{gate,arm=production|candidate}          gauge
//     understudy_gate_threshold{gate}                               gauge
//     understudy_gate_statistic{gate,statistic}                     gauge
//     understudy_gate_bound{gate}                                   gauge
//     understudy_gate_samples{gate,arm}                             gauge
//     understudy_gate_clusters{gate,arm}                            gauge (routing buckets with data)
//     understudy_gate_design_effect{gate}                           gauge (absent until computed)
//     understudy_gate_outcome{gate,outcome=pass|fail|inconclusive}  gauge, one-hot
//         Values are in each gate's own unit, as in v1::GateEvaluation
//         (e.g. the latency gates in milliseconds). Gates missing from the
//         latest evaluation lose their series.
//   SyncExtProc / ObserveStreamDuration
//     understudy_extproc_streams_total, understudy_extproc_streams_active,
//     understudy_extproc_streams_cancelled_total,
//     understudy_extproc_messages_total, understudy_extproc_replies_total,
//     understudy_extproc_observability_messages_total,
//     understudy_extproc_spurious_messages_total,
//     understudy_extproc_malformed_messages_total,
//     understudy_extproc_unknown_messages_total,
//     understudy_extproc_routes_total{arm},
//     understudy_requests_shaped_total{body=shaped|unchanged} (routed
//         requests reshaped for their arm, shadow/shaping.h; unchanged: the
//         body could not be rewritten and went as the client sent it),
//     understudy_translations_total{result=translated|untranslatable|
//         answer_failed} (requests for an arm in another provider's API:
//         translated and sent; kept on production, the reason in the
//         exchange's x-understudy-untranslatable header; an answer that
//         could not be translated back),
//     understudy_fallbacks_total{result=production|no_plan|off} (candidate
//         attempts that failed before the client saw a byte and were
//         retried: answered by production; refused because the request
//         could not be restored for production; refused because
//         routing.fallback is off),
//     understudy_capture_bodies_truncated_total,
//     understudy_exchange_queue_submitted_total,
//     understudy_exchange_queue_drops_total,
//     understudy_feedback_requests_total                            counters
//     understudy_extproc_stream_duration_seconds                    histogram 0.005..300 s
//   SetStoreStats
//     understudy_store_records_written_total, understudy_store_write_failures_total
//   SetFeedbackStats
//     understudy_feedback_rejected_total{reason=invalid|duplicate|rate_limited|bad_token}
//         scores refused, by either door (admin API, feedback path):
//         invalid (bad JSON, score or request id; 400), duplicate (the
//         request id already has a score: the first wins; 409),
//         rate_limited (over feedback.max_per_client_per_minute; 429),
//         bad_token (feedback.signing_key set and the POST's token missing,
//         expired or not this request's; 403)
//   SetTracingStats
//     understudy_otlp_spans_total{outcome=exported|dropped|failed|rejected}
//         dropped: queue full or left at shutdown; failed: in batches given
//         up on; rejected: refused by the collector in a partial success
//     understudy_otlp_export_retries_total                          counter
//   ObserveDriftEvent (docs/drift.md)
//     understudy_drift_events_total{arm,kind,dimension}             counter
//         kind: new_version | version_mix | behaviour; dimension: model,
//         system_fingerprint, header:<name>, or the behaviour metric
//   SetDriftStatus
//     understudy_drift_versions{arm,dimension}                      gauge
//         distinct version values seen (the values are never labels)
//     understudy_drift_effect{arm,metric}                           gauge
//         live minus baseline of each behaviour metric
//     understudy_drift_alarm{arm,metric}                            gauge 0/1
//   SetRevisitTriggers (docs/drift.md, "Revisit triggers")
//     understudy_revisit_trigger{trigger}                           gauge
//         fired triggers of that kind now (0 when none): drift,
//         deprecation, price_change, volume_growth, eval_regression
//   ObserveEvalRun (the scheduled eval)
//     understudy_eval_runs_total{result=ok|failed}                  counter
//     understudy_eval_last_run_timestamp_seconds                    gauge
//     understudy_eval_metric{arm,metric}                            gauge
//         the latest run's value per arm and metric (arm "both" for
//         production vs candidate agreement_rate)
//     understudy_eval_regressions{arm,metric}                       gauge 0/1
//
// Counters fed with absolute values owned by another component (SyncExtProc,
// SetShadowStats, SetStoreStats, SetTracingStats) are advanced by the delta since the last
// call, so they never decrease. When a source value goes down (its owner
// restarted), the new value is taken as the increase since that restart,
// the way Prometheus itself treats a counter reset.
//
// Thread safety: every method may be called concurrently from any thread.
// ObserveExchange takes one short lock and does O(1) work.
#ifndef UNDERSTUDY_METRICS_METRICS_H_
#define UNDERSTUDY_METRICS_METRICS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "drift/drift.h"
#include "rollout/rollout.h"
#include "understudy/v1/compare.pb.h"
#include "understudy/v1/eval.pb.h"
#include "understudy/v1/exchange.pb.h"
#include "understudy/v1/rollout.pb.h"

namespace prometheus {
class Registry;
}  // namespace prometheus

namespace understudy::metrics {

// ShadowCounters is a plain copy of the shadow client's and mirror's
// counters (absolute values since they started; negative values count as
// 0); the engine fills it from shadow::ShadowStats.
struct ShadowCounters {
  int64_t sent = 0;       // requests handed to the upstream
  int64_t completed = 0;  // got to an end (any status)
  int64_t failed = 0;     // of completed, rollout::IsError(outcome)
  int64_t timed_out = 0;  // of failed, timeouts
  int64_t dropped = 0;    // TrySend refused: queue full
  // Live exchanges not mirrored, by Mirror::Plan::skip_reason ("sample",
  // "path", "method", "header", "budget", ...).
  std::map<std::string, int64_t> skipped_by_reason;
  // Exchanges not mirrored because the hourly budget was spent; exported as
  // understudy_shadow_skipped_total{reason="budget"} (when
  // skipped_by_reason also has "budget", the larger of the two is used).
  int64_t over_budget = 0;
  double budget_used = 0;   // currency units spent over the last hour
  double budget_limit = 0;  // currency units per hour; 0 = unlimited
  int64_t queued = 0;       // gauge: waiting to be sent
  int64_t in_flight = 0;    // gauge: being sent
};

// ExtProcCounters is a plain copy of the ext_proc service's counters
// (absolute values since it started; the sidecar fills it from its
// ExtProcStats, sidecar/stats.h). streams_active is a gauge.
struct ExtProcCounters {
  uint64_t streams_started = 0;
  uint64_t streams_cancelled = 0;
  uint64_t messages_received = 0;
  uint64_t replies_sent = 0;
  uint64_t observability_messages = 0;
  uint64_t spurious_messages = 0;
  uint64_t malformed_messages = 0;
  uint64_t unknown_messages = 0;
  uint64_t route_production = 0;
  uint64_t route_candidate = 0;
  uint64_t bodies_truncated = 0;
  uint64_t exchanges_submitted = 0;
  uint64_t exchanges_dropped = 0;
  uint64_t feedback_requests = 0;
  uint64_t out_of_scope_path = 0;    // requests that are not model calls, by reason
  uint64_t out_of_scope_method = 0;
  uint64_t requests_shaped = 0;     // routed requests reshaped for their arm
  uint64_t shaping_failures = 0;    // of which the body went unchanged
  uint64_t requests_translated = 0;      // to an arm in another provider's API
  uint64_t requests_untranslatable = 0;  // meant for one, kept on production
  uint64_t translation_failures = 0;     // answers not translated back
  uint64_t fallbacks_restored = 0;       // candidate failures retried on production
  uint64_t fallbacks_no_plan = 0;        // retries refused: nothing to restore
  uint64_t fallbacks_off = 0;            // retries refused: routing.fallback is off
  int64_t streams_active = 0;
};

// FeedbackCounters is a plain copy of the engine's feedback refusals
// (sidecar::EngineStats), absolute since it started.
struct FeedbackCounters {
  int64_t invalid = 0;
  int64_t duplicate = 0;
  int64_t rate_limited = 0;
  int64_t bad_token = 0;
};

// TracingCounters is a plain copy of the span exporter's counters
// (telemetry::TracerStats), absolute since it started.
struct TracingCounters {
  int64_t exported = 0;
  int64_t dropped = 0;
  int64_t failed = 0;    // spans in batches given up on
  int64_t rejected = 0;  // refused by the collector (partial success)
  int64_t retries = 0;   // export calls repeated after transient failures
};

struct DriftFamilies;  // metrics/drift_metrics.h
struct FleetFamilies;  // metrics/fleet_metrics.h
struct InternalFamilies;  // metrics/internal_metrics.h

// Failures counted inside the sidecar that an operator must see
// (SetInternalCounters; absolute values, synced by delta).
struct InternalCounters {
  bool store_failing = false;        // the latest store write failed
  int64_t retention_runs = 0;
  int64_t retention_failures = 0;
  int64_t size_cap_trims = 0;
  int64_t mirror_results_dropped = 0;  // shadow answers lost to a full queue
  int64_t judge_tick_failures = 0;     // ticks whose transition could not be committed
  int64_t engine_store_failures = 0;   // records the pipeline could not store
};

class Metrics {
 public:
  // Content type of Serialize()'s output.
  static constexpr char kContentType[] = "text/plain; version=0.0.4; charset=utf-8";
  // At most this many distinct values per free-form label (gate,
  // comparator, statistic, skip reason); later values become "other".
  static constexpr size_t kMaxLabelValues = 32;

  // Creates every metric family on a registry of its own.
  Metrics();
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // ObserveExchange counts one finished exchange of `arm` from `source`.
  // `latency` is the whole exchange, `ttft` the time to the first body byte
  // (absent or negative → not observed); tokens below 0 count as 0; `cost`
  // in currency units (absent, negative or NaN → not counted). 429 and
  // other 4xx go to understudy_rejections_total, the error classes to
  // understudy_errors_total; requests_total counts all.
  void ObserveExchange(understudy::v1::Arm arm, understudy::v1::ExchangeSource source,
                       rollout::OutcomeClass cls, std::optional<absl::Duration> latency,
                       std::optional<absl::Duration> ttft, int64_t input_tokens,
                       int64_t output_tokens, std::optional<double> cost);
  // Same with the source by name: "live", "shadow", "noise" or "eval"
  // (anything else is reported as source="unknown").
  void ObserveExchange(understudy::v1::Arm arm, std::string_view source, rollout::OutcomeClass cls,
                       std::optional<absl::Duration> latency, std::optional<absl::Duration> ttft,
                       int64_t input_tokens, int64_t output_tokens, std::optional<double> cost);

  // ObserveUnsupported counts an exchange of `arm` whose answer could not be
  // judged on its content (Exchange.unsupported is set).
  void ObserveUnsupported(understudy::v1::Arm arm);

  // SetShadowStats syncs the shadow client's counters (by delta) and sets
  // the budget gauges.
  void SetShadowStats(const ShadowCounters& counters);

  // ObserveComparison counts the verdict and observes every applicable
  // comparator's score (scores are clamped to [0, 1]; NaN is skipped).
  void ObserveComparison(const understudy::v1::Comparison& comparison);

  // SetNoiseLevel sets the noise model's level for `comparator` (e.g. the
  // mean production-vs-production score gap). NaN/inf are ignored.
  void SetNoiseLevel(std::string_view comparator, double value);

  // SetRollout publishes the rollout state and the judge's health windows.
  // `now` gives the stage age. Call it after every tick and every manual
  // command.
  void SetRollout(const understudy::v1::RolloutState& state,
                  const understudy::v1::HealthSnapshot& health, absl::Time now);

  // ObserveDecision counts the decision (actor "judge" → actor_kind=judge,
  // anyone else → operator) and, when it carries gates, publishes them as
  // SetGateEvaluations does.
  void ObserveDecision(const understudy::v1::Decision& decision);

  // SetGateEvaluations replaces the published gate evaluations with these;
  // gates not in `gates` lose their series.
  void SetGateEvaluations(const std::vector<understudy::v1::GateEvaluation>& gates);

  // SyncExtProc syncs the ext_proc service's counters (by delta) and the
  // active-streams gauge.
  void SyncExtProc(const ExtProcCounters& stats);

  // ObserveStreamDuration observes one ext_proc stream's lifetime
  // (negative → ignored).
  void ObserveStreamDuration(absl::Duration duration);

  // SetStoreStats syncs the store's absolute counters (by delta).
  void SetStoreStats(uint64_t records_written, uint64_t write_failures);

  // SetFeedbackStats syncs the engine's feedback refusals (by delta).
  void SetFeedbackStats(const FeedbackCounters& counters);

  // SetTracingStats syncs the span exporter's absolute counters (by delta).
  void SetTracingStats(const TracingCounters& counters);

  // ObserveDriftEvent counts one drift watch event (drift/drift.h).
  void ObserveDriftEvent(const understudy::v1::DriftEvent& event);
  // SetDriftStatus publishes the drift watch's state (call before a scrape).
  void SetDriftStatus(const drift::WatchSnapshot& snapshot);
  // SetRevisitTriggers publishes the fired revisit triggers (every kind is
  // exported, 0 when it has not fired).
  void SetRevisitTriggers(const std::vector<understudy::v1::RevisitTrigger>& fired);
  // ObserveEvalRun counts one scheduled eval run and publishes its metrics.
  void ObserveEvalRun(const understudy::v1::EvalRun& run);

  // SetFleetStatus publishes this replica's view of the fleet (fleet mode,
  // docs/fleet.md; call before a scrape):
  //   understudy_fleet_leader (1 if this replica judges), understudy_fleet_etcd_reachable,
  //   understudy_fleet_members, understudy_fleet_state_version          gauges
  //   understudy_fleet_deltas_total{result=published|merged|discarded|dropped},
  //   understudy_fleet_states_adopted_total, understudy_fleet_commits_refused_total,
  //   understudy_fleet_etcd_requests_total,
  //   understudy_fleet_etcd_bytes_total{direction=sent|received}      counters
  void SetFleetStatus(const understudy::v1::FleetStatus& status);

  // SetInternalCounters publishes failures counted inside the sidecar:
  //   understudy_store_failing                                       gauge 0/1
  //   understudy_store_retention_runs_total, understudy_store_retention_failures_total,
  //   understudy_store_size_cap_trims_total, understudy_mirror_results_dropped_total,
  //   understudy_judge_tick_failures_total,
  //   understudy_pipeline_store_failures_total                       counters
  void SetInternalCounters(const InternalCounters& counters);

  // Serialize renders every metric in the Prometheus text format 0.0.4.
  std::string Serialize() const;

  // registry exposes the registry, e.g. to add process metrics or serve it
  // with prometheus-cpp's own Exposer. Owned by this object.
  prometheus::Registry& registry() { return *registry_; }

 private:
  struct Impl;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<DriftFamilies> drift_;
  std::unique_ptr<FleetFamilies> fleet_;
  std::unique_ptr<InternalFamilies> internal_;
};

}  // namespace understudy::metrics

#endif  // UNDERSTUDY_METRICS_METRICS_H_
