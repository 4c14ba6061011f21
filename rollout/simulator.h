// rollout/simulator.h
// Runs synthetic traffic through the real Controller with a simulated
// clock, to measure the judge: false-rollback rate under A/A, and detection
// delay and power under regressions, side by side with a Flagger-style rule
// (N failed fixed-threshold checks, one check per interval) and the
// SPRT-optimal expected sample size. Used by `understudy simulate` and
// bench/rollout/judge_sim.
//
// Example:
//   SimulationOptions o;
//   o.scenario = Scenario::kError;  o.factor = 2;  o.runs = 200;
//   ASSIGN_OR_RETURN(SimulationReport r, RunSimulation(o));
//   std::string json = FormatReportJson(r);   // or FormatReportTable(r) for people
//
// Deterministic for a given seed. Thread-compatible (no shared state).
#ifndef UNDERSTUDY_ROLLOUT_SIMULATOR_H_
#define UNDERSTUDY_ROLLOUT_SIMULATOR_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "rollout/rollout.h"

namespace understudy::rollout {

enum class Scenario { kAA, kError, kLatency, kSatisfaction };

// ParseScenario accepts aa | error | latency | satisfaction.
[[nodiscard]] absl::StatusOr<Scenario> ParseScenario(std::string_view name);
const char* ScenarioName(Scenario s);

struct SimulationOptions {
  Scenario scenario = Scenario::kAA;
  int runs = 40;
  uint64_t seed = 1;
  double rps = 100;                 // live requests per second
  // Candidate share (percent) at which regressions are judged: the run
  // starts at the plan's first stage with at least this percent. A/A runs
  // the full plan from its first stage.
  double split_percent = 1;
  double baseline_error = 0.01;
  double factor = 2.0;              // error or latency multiplier for the candidate
  double satisfaction = 0.8;        // production's mean thumbs-up rate
  double satisfaction_drop = 0.2;   // candidate's drop in the satisfaction scenario
  absl::Duration onset = absl::ZeroDuration();  // regression starts this long in
  absl::Duration max_time = absl::Hours(6);
  double shadow_rate = 0.1;         // fraction of production requests mirrored
  double feedback_rate = 0.05;      // fraction of requests with a feedback score
  double agreement = 0.95;          // shadow comparisons without a major diff
  double latency_median_ms = 800;
  double latency_sigma = 0.5;       // lognormal sigma
  double ttft_median_ms = 250;
  double cost_production = 0.002;   // per request
  double cost_candidate = 0.001;
  // Flagger-style rule: every interval, fail a check if the candidate's
  // error rate in that interval exceeds the fixed threshold (default: the
  // judge's p1 at the baseline); roll back after `flagger_threshold` fails.
  absl::Duration flagger_interval = absl::Minutes(1);
  int flagger_threshold = 5;
  double flagger_max_error_rate = 0;  // 0 → max(b·max_ratio, b + max_abs_increase)
  RolloutConfig config;             // the judge under test
};

struct DelayStats {
  int runs = 0;
  int rollbacks = 0;                // runs that ended rolled back (after onset for regressions)
  int false_rollbacks = 0;          // A/A rollbacks, or rollbacks before onset
  int promoted = 0;
  int paused = 0;
  double rollback_rate = 0;         // rollbacks / runs
  double detection_delay_requests_median = 0;  // candidate requests after onset
  double detection_delay_requests_p90 = 0;
  double detection_delay_minutes_median = 0;
  double detection_delay_minutes_p90 = 0;
};

struct SimulationReport {
  SimulationOptions options;
  DelayStats judge;
  DelayStats flagger;
  // Wald's expected samples for the SPRT of baseline vs baseline·factor at
  // the judge's α, β (error scenario), and in minutes at the split.
  double sprt_optimal_requests = 0;
  double sprt_optimal_minutes = 0;
  double false_rollback_rate = 0;   // judge: A/A rollbacks / runs
  double power = 0;                 // judge: regressions rolled back / runs
  double simulated_requests = 0;
};

// RunSimulation runs options.runs rollouts for the judge and for the
// Flagger-style rule. InvalidArgument on bad options.
[[nodiscard]] absl::StatusOr<SimulationReport> RunSimulation(const SimulationOptions& options);

// FormatReportJson prints one JSON object (keys in the contract:
// false_rollback_rate, detection_delay_requests_median,
// detection_delay_minutes_median, detection_delay_minutes_p90, power,
// sprt_optimal_requests, and the same delays under "flagger").
std::string FormatReportJson(const SimulationReport& report);
// FormatReportTable prints a human-readable side-by-side table.
std::string FormatReportTable(const SimulationReport& report);

}  // namespace understudy::rollout

#endif  // UNDERSTUDY_ROLLOUT_SIMULATOR_H_
