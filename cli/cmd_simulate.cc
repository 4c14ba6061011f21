// `understudy simulate`: runs synthetic users through the real rollout
// controller with a simulated clock and reports false rollbacks, power and
// detection delay next to a Flagger-style rule and the optimal fixed-sample
// test for the same clustered design (docs/statistics.md §5).
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>
#include <type_traits>
#include <vector>

#include "common/config_node.h"
#include "rollout/rollout.h"
#include "rollout/simulator.h"
#include "cli/commands.h"

namespace understudy::cli {

namespace {

// A value a flag did not set (the heterogeneity preset's or the default
// stays).
constexpr double kUnset = -1e300;

struct SimulateArgs {
  std::string scenario = "aa";
  std::string output = "table";
  std::string config;
  std::string heterogeneity = "none";
  std::string gate;
  int runs = 40;
  int threads = 1;
  uint64_t seed = 1;
  double rps = 100;
  double split = 1;
  double baseline_error = 0.01;
  double factor = 2;
  double latency_factor = 1.5;
  double satisfaction_drop = 0.1;
  double quantile = 0;
  double onset_minutes = 0;
  double max_hours = 6;
  // Users and baselines (kUnset: the preset's).
  double users = kUnset;
  double activity_sigma = kUnset;
  double always_fail = kUnset;
  double user_error_sigma = kUnset;
  double user_latency_sigma = kUnset;
  double user_satisfaction_sd = kUnset;
  double diurnal = kUnset;
  double diurnal_period_minutes = kUnset;
  double bursts_per_hour = kUnset;
  double burst_minutes = kUnset;
  double burst_factor = kUnset;
  std::vector<double> outages_minutes;
  double outage_minutes = kUnset;
  double outage_error = kUnset;
  double restart_minutes = kUnset;
};

int RunSimulate(const SimulateArgs& a) {
  rollout::SimulationOptions o;
  absl::StatusOr<rollout::Scenario> scenario = rollout::ParseScenario(a.scenario);
  if (!scenario.ok()) {
    std::cerr << "understudy simulate: " << scenario.status().message() << "\n";
    return kExitUsage;
  }
  if (a.output != "json" && a.output != "table") {
    std::cerr << "understudy simulate: -o: must be json or table, got \"" << a.output << "\"\n";
    return kExitUsage;
  }
  if (!(a.onset_minutes >= 0) || !(a.max_hours > 0 && a.max_hours <= 1000)) {
    std::cerr << "understudy simulate: --onset must be >= 0 and --max-hours in (0, 1000]\n";
    return kExitUsage;
  }
  if (!a.config.empty()) {
    absl::StatusOr<ConfigNode> root = ConfigNode::ParseFile(a.config);
    if (!root.ok()) {
      std::cerr << "understudy simulate: " << root.status().message() << "\n";
      return kExitUsage;
    }
    absl::StatusOr<rollout::RolloutConfig> cfg = rollout::ParseRolloutConfig(root->Child("rollout"));
    if (!cfg.ok()) {
      std::cerr << "understudy simulate: " << cfg.status().message() << "\n";
      return kExitUsage;
    }
    o.config = *cfg;
  }
  if (absl::Status h = rollout::ApplyHeterogeneity(a.heterogeneity, &o); !h.ok()) {
    std::cerr << "understudy simulate: " << h.message() << "\n";
    return kExitUsage;
  }
  auto set = [](double v, auto& field) {
    if (v != kUnset) field = static_cast<std::decay_t<decltype(field)>>(v);
  };
  auto minutes = [](double v, absl::Duration& field) {
    if (v != kUnset) field = absl::Seconds(v * 60);
  };
  set(a.users, o.users);
  set(a.activity_sigma, o.activity_sigma);
  set(a.always_fail, o.always_fail_fraction);
  set(a.user_error_sigma, o.user_error_sigma);
  set(a.user_latency_sigma, o.user_latency_sigma);
  set(a.user_satisfaction_sd, o.user_satisfaction_sd);
  set(a.diurnal, o.diurnal_amplitude);
  minutes(a.diurnal_period_minutes, o.diurnal_period);
  set(a.bursts_per_hour, o.bursts_per_hour);
  minutes(a.burst_minutes, o.burst_duration);
  set(a.burst_factor, o.burst_factor);
  if (!a.outages_minutes.empty()) {
    o.outages.clear();
    for (double m : a.outages_minutes) o.outages.push_back(absl::Seconds(m * 60));
  }
  minutes(a.outage_minutes, o.outage_duration);
  set(a.outage_error, o.outage_error);
  minutes(a.restart_minutes, o.restart_at);
  o.scenario = *scenario;
  o.runs = a.runs;
  o.threads = a.threads;
  o.seed = a.seed;
  o.rps = a.rps;
  o.split_percent = a.split;
  o.baseline_error = a.baseline_error;
  o.factor = a.factor;
  o.latency_factor = a.latency_factor;
  o.satisfaction_drop = a.satisfaction_drop;
  o.quantile = a.quantile;
  o.only_gate = a.gate;
  o.onset = absl::Seconds(a.onset_minutes * 60);
  o.max_time = absl::Seconds(a.max_hours * 3600);
  absl::StatusOr<rollout::SimulationReport> report = rollout::RunSimulation(o);
  if (!report.ok()) {
    std::cerr << "understudy simulate: " << report.status().message() << "\n";
    return report.status().code() == absl::StatusCode::kInvalidArgument ? kExitUsage
                                                                         : kExitFailure;
  }
  std::cout << (a.output == "json" ? rollout::FormatReportJson(*report)
                                   : rollout::FormatReportTable(*report));
  return kExitOk;
}

}  // namespace

void RegisterSimulateCommand(CLI::App& app, int* exit_code) {
  auto args = std::make_shared<SimulateArgs>();
  CLI::App* cmd = app.add_subcommand(
      "simulate",
      "Simulate rollouts of synthetic users through the real judge: false rollbacks under A/A, "
      "power and detection delay under regressions, next to a Flagger-style rule and the "
      "optimal fixed-sample test for the same clustered design");
  cmd->add_option("--scenario", args->scenario, "aa | error | latency | satisfaction")
      ->capture_default_str();
  cmd->add_option("--heterogeneity", args->heterogeneity,
                  "user and baseline preset: none (independent requests) | mild | heavy | wild "
                  "(heavy + diurnal swing, bursts, shared outages, a restart); the flags below "
                  "override it")
      ->capture_default_str();
  cmd->add_option("--gate", args->gate,
                  "judge only this gate (e.g. critical: the \"error > 2x for 5 minutes\" rule "
                  "alone)");
  cmd->add_option("--threads", args->threads, "threads to spread the runs over")
      ->capture_default_str();
  cmd->add_option("--runs", args->runs, "simulated rollouts")->capture_default_str();
  cmd->add_option("--seed", args->seed, "random seed (results are deterministic per seed)")
      ->capture_default_str();
  cmd->add_option("--rps", args->rps, "live requests per second")->capture_default_str();
  cmd->add_option("--split", args->split, "candidate percent at which regressions are judged")
      ->capture_default_str();
  cmd->add_option("--baseline-error", args->baseline_error, "production error rate")
      ->capture_default_str();
  cmd->add_option("--factor", args->factor,
                  "error scenario: each user's error rate x this (capped at 1)")
      ->capture_default_str();
  cmd->add_option("--latency-factor", args->latency_factor,
                  "latency scenario: candidate latency and TTFT x this")
      ->capture_default_str();
  cmd->add_option("--satisfaction-drop", args->satisfaction_drop,
                  "satisfaction scenario: each user's mean score minus this")
      ->capture_default_str();
  cmd->add_option("--quantile", args->quantile,
                  "the latency gates' quantile (0: the config's, 0.95 by default)")
      ->capture_default_str();
  cmd->add_option("--users", args->users, "active users (0: every request a new user)");
  cmd->add_option("--activity-sigma", args->activity_sigma,
                  "lognormal sigma of users' request rates (heavy tail)");
  cmd->add_option("--always-fail", args->always_fail,
                  "fraction of users whose requests always fail (on both arms)");
  cmd->add_option("--user-error-sigma", args->user_error_sigma,
                  "lognormal sigma of users' error multipliers (mean 1)");
  cmd->add_option("--user-latency-sigma", args->user_latency_sigma,
                  "lognormal sigma of users' latency multipliers");
  cmd->add_option("--user-satisfaction-sd", args->user_satisfaction_sd,
                  "spread of users' mean scores");
  cmd->add_option("--diurnal", args->diurnal,
                  "diurnal amplitude: rps, error rate and latency x (1 + A sin(2 pi t/period))");
  cmd->add_option("--diurnal-period", args->diurnal_period_minutes, "diurnal period, minutes");
  cmd->add_option("--bursts-per-hour", args->bursts_per_hour,
                  "shared bursts (rps and error rate x burst factor) per hour");
  cmd->add_option("--burst-minutes", args->burst_minutes, "burst length, minutes");
  cmd->add_option("--burst-factor", args->burst_factor, "burst multiplier");
  cmd->add_option("--outage", args->outages_minutes,
                  "a shared outage starts this many minutes in (repeatable)");
  cmd->add_option("--outage-minutes", args->outage_minutes, "outage length, minutes");
  cmd->add_option("--outage-error", args->outage_error, "error probability during an outage");
  cmd->add_option("--restart-at", args->restart_minutes,
                  "restart the controller (save and restore its evidence) this many minutes in");
  cmd->add_option("--onset", args->onset_minutes, "minutes before the regression starts")
      ->capture_default_str();
  cmd->add_option("--max-hours", args->max_hours, "simulated time limit per run")
      ->capture_default_str();
  cmd->add_option("--config", args->config, "YAML file whose rollout: section is judged");
  cmd->add_option("-o,--output", args->output, "table | json")->capture_default_str();
  cmd->callback([args, exit_code] { *exit_code = RunSimulate(*args); });
}

}  // namespace understudy::cli
