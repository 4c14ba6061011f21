// drift/revisit.h
// When to look at a rollout decision again: the revisit triggers, decided in
// one place (docs/drift.md, "Revisit triggers"). EvaluateRevisit is a pure
// function of what the sidecar feeds it — drift events, the deprecation
// date, the price table's fingerprint and the traffic now and at the last
// decision, and the latest scheduled eval run — and returns the triggers
// that fired, each with what to do next. FindEvalRegressions compares a
// scheduled eval run with its baseline run.
//
// Example:
//   RevisitInputs in;
//   in.now = absl::FromUnixSeconds(1800000000);
//   in.price_fingerprint = "b1";
//   in.saved_price_fingerprint = "a0";
//   std::vector<understudy::v1::RevisitTrigger> fired = EvaluateRevisit(in);
//   // fired[0].kind() == "price_change"
//
// Thread safety: every function is pure and may be called concurrently.
#ifndef UNDERSTUDY_DRIFT_REVISIT_H_
#define UNDERSTUDY_DRIFT_REVISIT_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/config_node.h"
#include "understudy/v1/eval.pb.h"
#include "understudy/v1/rollout.pb.h"

namespace understudy::drift {

// Trigger kinds, as in RevisitTrigger.kind and the metric label.
inline constexpr const char* kTriggerDrift = "drift";
inline constexpr const char* kTriggerDeprecation = "deprecation";
inline constexpr const char* kTriggerPriceChange = "price_change";
inline constexpr const char* kTriggerVolumeGrowth = "volume_growth";
inline constexpr const char* kTriggerEvalRegression = "eval_regression";
// AllTriggerKinds lists them in that order (metrics export each, 0 or 1).
const std::vector<std::string>& AllTriggerKinds();

// The scheduled eval's regression thresholds: a rate metric (error rate,
// agreement, reference and re-ask agreement) regresses when it moves by at
// least `rate` (absolute) in the worse direction; latency and cost when
// they grow by at least `relative` of the baseline's value — and latency
// by at least `latency_min_ms` too, so a few milliseconds of jitter on a
// fast model are not a regression.
struct EvalRegressionThresholds {
  double rate = 0.1;
  double relative = 0.5;
  double latency_min_ms = 100;
};

struct RevisitConfig {
  // Live requests per hour now over those at the last decision at or above
  // this ratio fire volume_growth; 0 turns it off.
  double volume_growth = 2.0;
  // Below this many requests per hour at the decision the ratio means
  // little (a quiet night); volume_growth needs at least this much then.
  double volume_min_requests_per_hour = 10;
  EvalRegressionThresholds eval_regression;
};

// ParseRevisitConfig reads the `revisit:` section:
//   revisit:
//     volume_growth: 2.0                # 0 = off; else > 1
//     volume_min_requests_per_hour: 10
//     eval_regression: {rate: 0.1, relative: 0.5, latency_min_ms: 100}
// An undefined node gives the defaults. InvalidArgument names the key path
// ("revisit.volume_growth: must be 0 (off) or more than 1").
[[nodiscard]] absl::StatusOr<RevisitConfig> ParseRevisitConfig(const ConfigNode& node);

struct RevisitInputs {
  absl::Time now = absl::UnixEpoch();
  RevisitConfig config;
  // ACTION_DRIFT records (others are ignored): one trigger each.
  std::vector<understudy::v1::Decision> drift_events;
  // drift.deprecation: fires from `deprecation_notice` before the date.
  std::optional<absl::Time> deprecation_date;
  absl::Duration deprecation_notice = absl::Hours(24 * 30);
  // The price table's fingerprint now, and as saved at the last decision
  // (or the first start) at `saved_at`; either empty: no price trigger.
  std::string price_fingerprint;
  std::string saved_price_fingerprint;
  absl::Time saved_at = absl::InfinitePast();
  // Live requests per hour now and at the last decision (0 = unknown).
  double requests_per_hour = 0;
  double saved_requests_per_hour = 0;
  // The latest scheduled eval run, if any: its regressions fire.
  std::optional<understudy::v1::EvalRun> latest_eval;
};

// EvaluateRevisit returns the fired triggers in the order of the kinds
// above (drift events oldest first). Each has kind, detail (what happened,
// with numbers), action (what to do next) and since (when it started).
std::vector<understudy::v1::RevisitTrigger> EvaluateRevisit(const RevisitInputs& in);

// FindEvalRegressions compares `latest` with `baseline` per arm and metric
// (EvalArmSummary.metrics and EvalRun.metrics, arm ARM_UNSPECIFIED) and
// returns the metrics that moved past their threshold in the worse
// direction. Re-ask agreement and similarity are measured against the
// baseline's own answers, whose agreement with themselves is 1: they
// regress when below 1 - rate. A metric missing on either side is skipped.
std::vector<understudy::v1::EvalRegression> FindEvalRegressions(
    const understudy::v1::EvalRun& baseline, const understudy::v1::EvalRun& latest,
    const EvalRegressionThresholds& thresholds);

// RevisitLine renders one trigger for people: "<kind>: <detail> — <action>".
std::string RevisitLine(const understudy::v1::RevisitTrigger& trigger);

}  // namespace understudy::drift

#endif  // UNDERSTUDY_DRIFT_REVISIT_H_
