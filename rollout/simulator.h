// rollout/simulator.h
// Runs synthetic traffic through the real Controller with a simulated
// clock, to measure the judge: false-rollback rate under A/A, and power and
// detection delay under regressions, side by side with a Flagger-style rule
// (N failed fixed-threshold checks, one check per interval) and the optimal
// fixed-sample test for the same clustered design. Used by
// `understudy simulate` and bench/rollout/judge_sim.
//
// Traffic is drawn per user: each simulated user has a routing bucket
// (Router::Bucket of "user-<i>", so sticky routing puts the whole user on
// one arm), a heavy-tailed request rate, an error multiplier (or always
// fails), a latency multiplier and a mean satisfaction. The baseline can
// swing (diurnal), burst, and suffer shared outages that hit both arms; the
// controller can be restarted mid-rollout through SaveEvidence /
// RestoreEvidence.
//
// Example:
//   SimulationOptions o;
//   o.scenario = Scenario::kError;  o.factor = 2;  o.runs = 200;
//   ASSIGN_OR_RETURN(SimulationReport r, RunSimulation(o));
//   std::string json = FormatReportJson(r);   // or FormatReportTable(r) for people
//
// Deterministic for a given seed (also with threads > 1). Thread-compatible.
#ifndef UNDERSTUDY_ROLLOUT_SIMULATOR_H_
#define UNDERSTUDY_ROLLOUT_SIMULATOR_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
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
  int threads = 1;                  // runs are spread over this many threads
  double rps = 100;                 // live requests per second (before diurnal swings and bursts)
  // Candidate share (percent) at which regressions are judged: the run
  // starts at the plan's first stage with at least this percent. A/A runs
  // the full plan from its first stage.
  double split_percent = 1;
  double baseline_error = 0.01;
  double factor = 2.0;              // error scenario: each user's error rate × factor (≤ 1)
  double latency_factor = 1.5;      // latency scenario: candidate latency and TTFT × this
  double satisfaction = 0.8;        // production's mean thumbs-up rate
  double satisfaction_drop = 0.1;   // satisfaction scenario: candidate's drop per user
  double quantile = 0;              // the latency gates' quantile (0: the config's)
  absl::Duration onset = absl::ZeroDuration();  // regression starts this long in
  absl::Duration max_time = absl::Hours(6);
  double shadow_rate = 0.1;         // fraction of production requests mirrored
  double feedback_rate = 0.05;      // fraction of requests with a feedback score
  double agreement = 0.97;          // shadow comparisons without a major diff
  double latency_median_ms = 800;
  double latency_sigma = 0.5;       // lognormal sigma per request
  double ttft_median_ms = 250;
  double cost_production = 0.002;   // per request
  double cost_candidate = 0.001;

  // Users. 0 users: every request is a new user (independent requests).
  int64_t users = 0;
  double activity_sigma = 0;        // lognormal σ of a user's request rate (heavy tail)
  double always_fail_fraction = 0;  // users whose requests always fail (both arms)
  double user_error_sigma = 0;      // lognormal σ of a user's error multiplier (mean 1)
  double user_latency_sigma = 0;    // lognormal σ of a user's latency multiplier (median 1)
  double user_satisfaction_sd = 0;  // spread of users' mean scores around `satisfaction`

  // Non-stationary baselines, shared by both arms.
  double diurnal_amplitude = 0;     // rps, error and latency × (1 + A·sin(2πt/period))
  absl::Duration diurnal_period = absl::Hours(2);
  double bursts_per_hour = 0;       // Poisson bursts: rps and error rate × burst_factor
  absl::Duration burst_duration = absl::Minutes(1);
  double burst_factor = 3;
  std::vector<absl::Duration> outages;  // start times of shared outages
  absl::Duration outage_duration = absl::Minutes(2);
  double outage_error = 0.9;        // error probability of every request during an outage
  // Restart the controller (SaveEvidence → new Controller → Restore →
  // RestoreEvidence through the serialised proto) this long in; 0 = never.
  absl::Duration restart_at = absl::ZeroDuration();

  // Record outcomes without their routing bucket, so the judge makes every
  // request its own cluster: the independent-requests assumption, for
  // comparison.
  bool judge_ignores_users = false;

  // Judge only this gate (critical, error_rate, latency_p95, ttft_p95,
  // satisfaction, cost_per_request, agreement); "" = every enabled gate.
  std::string only_gate;

  // Flagger-style rule: every interval, fail a check if the candidate's
  // error rate in that interval exceeds the must-catch rate at production's
  // rate in the same interval, its p95 exceeds latency max_ratio × production's
  // interval p95, or (satisfaction scenario) its mean score is below
  // production's − max_drop; roll back after `flagger_threshold` fails.
  bool run_flagger = true;          // false: the judge only (faster)
  absl::Duration flagger_interval = absl::Minutes(1);
  int flagger_threshold = 5;
  RolloutConfig config;             // the judge under test
  // Called with every judge decision (holds too) of every run, from the
  // run's thread: for tracing one run (runs = 1) or collecting statistics.
  std::function<void(int run, const understudy::v1::Decision& d)> on_decision;
};

// ApplyHeterogeneity sets the user and baseline knobs of a named setting:
//   none    independent requests (every request a new user)
//   mild    20,000 users, activity σ 1, 0.2% always fail, error σ 0.5,
//           latency σ 0.2, satisfaction sd 0.1
//   heavy   10,000 users, activity σ 1.5, 0.5% always fail, error σ 1,
//           latency σ 0.3, satisfaction sd 0.15
//   wild    heavy, plus a diurnal swing (±30%, 2 h period), 2 bursts an
//           hour (×3 for 1 min), a shared 2-minute 90% outage at 20 and at
//           70 minutes, and a controller restart at 33 minutes
// InvalidArgument for another name.
[[nodiscard]] absl::Status ApplyHeterogeneity(std::string_view name, SimulationOptions* o);

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
  double promote_minutes_median = 0;  // time to 100% of the promoted runs
};

struct SimulationReport {
  SimulationOptions options;
  DelayStats judge;
  DelayStats flagger;
  // Which gate(s) failed at the judge's rollbacks, counted per gate.
  std::map<std::string, int> rollbacks_by_gate;
  // The optimal fixed-sample test for the clustered design: the one-sided
  // z-test on the scenario gate's cluster-level contrast at the judge's
  // alpha_gate and beta, whose sample size makes the standard error
  // δ/(z_{1−alpha_gate} + z_{1−beta}) for the scenario's true effect δ.
  // Per run it is n × v / (δ/(z_α + z_β))², with n the candidate requests
  // and v the gate's cluster-robust variance when the judge decided (the
  // variance falls as 1/n at a given design effect); the median over runs.
  double optimal_fixed_requests = 0;
  double optimal_fixed_minutes = 0;
  double true_effect = 0;           // δ on the scenario gate's scale (beyond `tolerated`)
  double design_effect_median = 0;  // the scenario gate's, at the judge's decisions
  // Wald's expected samples for the SPRT of baseline vs baseline·factor
  // with independent requests (error and latency scenarios), for reference.
  double sprt_optimal_requests = 0;
  double sprt_optimal_minutes = 0;
  double false_rollback_rate = 0;   // judge: A/A rollbacks / runs
  double power = 0;                 // judge: regressions rolled back / runs
  double simulated_requests = 0;
};

// RunSimulation runs options.runs rollouts for the judge and for the
// Flagger-style rule. InvalidArgument on bad options.
[[nodiscard]] absl::StatusOr<SimulationReport> RunSimulation(const SimulationOptions& options);

// FormatReportJson prints one JSON object (false_rollback_rate, power,
// detection_delay_requests_median, detection_delay_minutes_median,
// detection_delay_minutes_p90, optimal_fixed_requests, judge_vs_optimal,
// design_effect_median, sprt_optimal_requests, rollbacks_by_gate, and the
// same delays under "judge" and "flagger").
std::string FormatReportJson(const SimulationReport& report);
// FormatReportTable prints a human-readable side-by-side table.
std::string FormatReportTable(const SimulationReport& report);

}  // namespace understudy::rollout

#endif  // UNDERSTUDY_ROLLOUT_SIMULATOR_H_
