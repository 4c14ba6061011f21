// drift/drift.h
// The drift watch: keeps looking at what each arm serves after the rollout
// judge has decided. Two alarms (docs/drift.md):
//   * version drift: per arm, the values of the served model's version
//     (response `model`, `system_fingerprint`, configured version headers)
//     seen in the arm's baseline window are "known"; a value seen
//     `new_value_min_count` times that is not known raises kNewVersion, and
//     a recent window whose mix of values is far (total variation distance)
//     from the reference mix raises kVersionMix;
//   * behaviour drift: per arm, answer length, refusals, invalid output,
//     finish_reason "length", latency and TTFT above the baseline's p95 and
//     cost are compared with a baseline frozen from the arm's first
//     `baseline_requests` answers, with an always-valid (mixture sequential)
//     test whose variance is clustered by user bucket and includes the
//     baseline's own error, so an A/A run raises nothing at level alpha.
// Pure: data and times in, events and baselines out; the sidecar persists
// baselines and events in the decision log and restores them on start.
//
// Example:
//   DriftConfig config;
//   config.baseline_requests = 50;
//   Watch watch(config);
//   Observation o;
//   o.arm = understudy::v1::ARM_PRODUCTION;
//   o.request_id = "r1";
//   o.cluster = 17;
//   o.versions = {{"system_fingerprint", "fp_1"}};
//   o.answered = true;
//   o.answer_chars = 120;
//   WatchResult r = watch.Observe(o);
//   for (const understudy::v1::DriftEvent& e : r.events) { (void)e; }    // alarm, store, span
//   for (const understudy::v1::DriftBaseline& b : r.baselines) { (void)b; }  // persist
//
// Thread safety: every Watch method may be called concurrently.
#ifndef UNDERSTUDY_DRIFT_DRIFT_H_
#define UNDERSTUDY_DRIFT_DRIFT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config_node.h"
#include "understudy/v1/drift.pb.h"
#include "understudy/v1/exchange.pb.h"

namespace understudy::drift {

// The behaviour metrics, by the names used in records, metrics and reports.
inline constexpr const char* kMetricAnswerChars = "answer_chars";
inline constexpr const char* kMetricRefusal = "refusal";
inline constexpr const char* kMetricInvalidOutput = "invalid_output";
inline constexpr const char* kMetricFinishLength = "finish_length";
inline constexpr const char* kMetricLatencyOverP95 = "latency_over_p95";
inline constexpr const char* kMetricTtftOverP95 = "ttft_over_p95";
inline constexpr const char* kMetricCost = "cost";

struct DriftConfig {
  bool enabled = false;
  // Response headers (lower-case) whose value names a version, e.g.
  // "openai-version", "x-model-version". Dimension "header:<name>".
  std::vector<std::string> version_headers;
  // Answers per arm in the baseline window (versions known, behaviour
  // baseline). Restored from the store on restart.
  int64_t baseline_requests = 200;
  // A new version alarms when seen this many times (filters one-off noise).
  int64_t new_value_min_count = 3;
  // Recent window for the mix of versions, and the distance that alarms.
  int64_t mix_window = 200;
  double mix_min_distance = 0.25;
  // Behaviour drift: on/off, level of the always-valid test (shared by all
  // metrics and arms: Bonferroni), the relative change that must be caught
  // (the mixture's scale) and the least relative change worth an alarm,
  // and the live answers and clusters needed before judging.
  bool behaviour = true;
  double alpha = 0.01;
  double min_relative_effect = 0.1;
  int64_t min_samples = 30;
  int64_t min_clusters = 5;
  // Live answers per test epoch: the live side starts over every `window`
  // answers (so an old stretch does not dilute a new change), and epoch k
  // (from 1) spends alpha / 2^k, so all epochs together spend alpha.
  int64_t window = 400;
  // Behaviour metrics judged (kMetric* names); empty = all of them.
  std::vector<std::string> metrics;
  // Pause an in-flight rollout (shadow or canary) on a version event.
  bool pause_rollout_on_version_change = false;
  // A revisit trigger for the report: the date the served model is retired
  // by its provider, and how long before it the decision must be reopened.
  std::optional<absl::Time> deprecation_date;
  absl::Duration deprecation_notice = absl::Hours(24 * 30);
};

// ParseDriftConfig reads the YAML `drift:` section:
//   drift:
//     enabled: true
//     version_headers: [openai-version]
//     baseline_requests: 200
//     new_value_min_count: 3
//     mix: {window: 200, min_distance: 0.25}
//     behaviour: {enabled: true, alpha: 0.01, min_relative_effect: 0.1,
//                 min_samples: 30, min_clusters: 5, window: 400,
//                 metrics: [answer_chars, refusal]}   # default: all
//     pause_rollout_on_version_change: false
//     deprecation: {date: 2026-10-01, notice: 720h}   # revisit trigger
// An undefined node gives the defaults (disabled). Errors are
// InvalidArgument naming the key path ("drift.mix.min_distance: ...").
[[nodiscard]] absl::StatusOr<DriftConfig> ParseDriftConfig(const ConfigNode& node);

// One answer as the watch sees it.
struct Observation {
  understudy::v1::Arm arm = understudy::v1::ARM_UNSPECIFIED;
  std::string request_id;
  int32_t cluster = -1;  // the user's routing bucket; -1 = its own cluster
  absl::Time time = absl::UnixEpoch();
  // (dimension, value) pairs; empty values are ignored.
  std::vector<std::pair<std::string, std::string>> versions;
  // The upstream answered (any status): behaviour metrics apply. Answers
  // with an error status count only for invalid_output (as 0) and are
  // otherwise left out.
  bool answered = false;
  bool ok = false;  // a 2xx answer the model produced
  bool invalid_output = false;
  bool refusal = false;
  bool finish_length = false;
  std::optional<double> answer_chars;
  std::optional<double> latency_ms;
  std::optional<double> ttft_ms;
  std::optional<double> cost;
};

struct WatchResult {
  std::vector<understudy::v1::DriftEvent> events;
  std::vector<understudy::v1::DriftBaseline> baselines;  // just frozen: persist them
};

// What the watch knows now, for metrics and reports.
struct ArmVersions {
  understudy::v1::Arm arm = understudy::v1::ARM_UNSPECIFIED;
  std::string dimension;
  std::vector<std::pair<std::string, int64_t>> counts;  // every value seen, with counts
};
struct MetricStatus {
  understudy::v1::Arm arm = understudy::v1::ARM_UNSPECIFIED;
  std::string metric;
  double baseline = 0;
  double live = 0;
  double effect = 0;           // live - baseline
  double effect_size = 0;      // effect / baseline sd (0 when sd is 0)
  double effect_lower = 0;     // always-valid interval on the effect
  double effect_upper = 0;
  int64_t samples = 0;
  bool drifted = false;
};
struct WatchSnapshot {
  std::vector<ArmVersions> versions;
  std::vector<MetricStatus> metrics;
  std::vector<understudy::v1::DriftBaseline> baselines;
};

class Watch {
 public:
  explicit Watch(DriftConfig config);
  ~Watch();
  Watch(const Watch&) = delete;
  Watch& operator=(const Watch&) = delete;

  // Observe records one answer and returns what it raised.
  WatchResult Observe(const Observation& o);
  // RestoreBaseline installs a baseline stored before a restart (the
  // latest per arm wins); the arm is judged against it at once.
  void RestoreBaseline(const understudy::v1::DriftBaseline& baseline);
  // RestoreEvent replays a stored event so a restart does not raise it
  // again (a new version becomes known; a behaviour alarm stays latched).
  void RestoreEvent(const understudy::v1::DriftEvent& event);
  WatchSnapshot Snapshot() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// MetricNames lists every behaviour metric (kMetric*), in report order.
const std::vector<std::string>& MetricNames();

// KindName: "new_version", "version_mix", "behaviour" ("unspecified").
std::string_view KindName(understudy::v1::DriftKind kind);

// MixtureInterval is the always-valid confidence interval of a normal
// mixture sequential test (Robbins' normal mixture): for an estimate with
// variance `variance` and mixing variance `tau2`, the half-width
//   sqrt((V + tau2) / tau2 * V * (log((V + tau2) / V) + 2 log(1 / alpha))).
// Covers the true value at every sample size at once with probability
// 1 - alpha (for Gaussian estimates; approximately for means).
double MixtureHalfWidth(double variance, double tau2, double alpha);

}  // namespace understudy::drift

#endif  // UNDERSTUDY_DRIFT_DRIFT_H_
