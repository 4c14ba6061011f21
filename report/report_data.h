// report/report_data.h (internal to understudy_report)
// The facts of a report, gathered once from the store and rendered three
// ways (report_render.cc). Not a public API: include report/report.h.
#ifndef UNDERSTUDY_REPORT_REPORT_DATA_H_
#define UNDERSTUDY_REPORT_REPORT_DATA_H_

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "report/report.h"
#include "understudy/v1/compare.pb.h"
#include "understudy/v1/exchange.pb.h"
#include "understudy/v1/rollout.pb.h"

namespace understudy::report::internal {

// ArmSummary summarises exchanges (or comparison sides) of one arm.
struct ArmSummary {
  int64_t requests = 0;
  int64_t errors = 0;  // 5xx, timeout, transport, invalid body
  double error_rate = 0;
  std::optional<double> latency_p50_ms, latency_p95_ms, ttft_p95_ms;
  std::optional<double> cost_per_request;
  int64_t cost_samples = 0;
};

// Verdict counts indexed by v1::Verdict (0..6).
using VerdictCounts = std::array<int64_t, 7>;

struct ComparatorSummary {
  std::string name;
  int64_t samples = 0;  // applicable scores
  double mean_score = 0;
  int64_t noise_explained = 0;
};

struct ComparisonSummary {
  int64_t comparisons = 0;
  VerdictCounts verdicts{};
  // Agreement = 1 - major_diff / (equivalent + minor_diff + major_diff);
  // unset when none of those was seen.
  std::optional<double> agreement_rate;
  std::vector<ComparatorSummary> comparators;  // sorted by name
  ArmSummary production, candidate;            // from the comparisons' costs/latencies
  int64_t findings = 0, findings_major = 0, findings_noise_explained = 0;
};

struct EvalSummary {
  int64_t exchanges = 0;
  ArmSummary production, candidate;  // from the eval exchanges
  ComparisonSummary comparisons;     // comparisons of eval request ids
};

struct Risk {
  std::string severity;  // "high" | "medium" | "low"
  std::string kind;      // "gate_near_bound", "few_samples", "budget", "noise",
                         // "health", "state"
  std::string message;
};

struct Revisit {
  absl::Time date;
  std::string reason;
  std::vector<std::string> checklist;
  // Triggers that fired and reopen the decision now, each with what to do
  // (e.g. a drift event: "start a new rollout against a candidate"), as
  // lines (drift::RevisitLine) and as records.
  std::vector<std::string> fired;
  std::vector<understudy::v1::RevisitTrigger> triggers;
};

struct ReportData {
  const ReportInputs* inputs = nullptr;
  absl::Time since;
  std::string outcome;       // promoted | rolled_back | paused | in_progress | not_started
  std::string outcome_text;  // e.g. "in progress at stage 2 of 6 (5% of traffic)"
  std::optional<EvalSummary> eval;
  ComparisonSummary shadow;
  std::vector<understudy::v1::Comparison> top_major_diffs;
  std::optional<understudy::v1::HealthSnapshot> latest_health;
  // The latest snapshot in which some arm had requests (after a rollback
  // or a stage change the windows restart empty).
  std::optional<understudy::v1::HealthSnapshot> latest_health_with_traffic;
  std::vector<understudy::v1::Decision> decisions;
  // The drift watch's records (ACTION_DRIFT, ACTION_DRIFT_BASELINE), kept
  // out of `decisions`: they never change the rollout (docs/drift.md).
  std::vector<understudy::v1::Decision> drift;
  // The scheduled eval's runs in the window, oldest first (docs/drift.md).
  std::vector<understudy::v1::EvalRun> eval_runs;
  int64_t noise_exchanges = 0;  // SOURCE_NOISE exchanges seen
  int64_t shadow_exchanges = 0;
  int64_t live_exchanges = 0;
  std::optional<double> shadow_spend_last_hour;
  std::vector<Risk> risks;
  Revisit revisit;
  std::vector<std::string> notes;  // caveats about the data (scan caps, ...)
};

// Gather scans the store and computes everything but the rendering.
[[nodiscard]] absl::StatusOr<ReportData> Gather(storage::Store& store, const ReportInputs& inputs);

// Small shared helpers.
std::string VerdictName(int verdict);                        // "major_diff", ...
std::string TimeText(absl::Time t);                          // "2023-11-14 22:13:20 UTC"
std::string DurationText(absl::Duration d);                  // "10m", "1h30m", "0s"
std::string FormatPercent(double fraction, int digits = 1);  // 0.0123 -> "1.2%"
std::string FormatNumber(double v);                          // %.4g
std::string StagePercentText(const ReportInputs& inputs,
                             int stage_index);  // "5%" / "shadow"
std::string WeightText(int32_t basis_points);   // "5%", "0.5%"

}  // namespace understudy::report::internal

#endif  // UNDERSTUDY_REPORT_REPORT_DATA_H_
