// `understudy simulate`: runs synthetic traffic through the real rollout
// controller with a simulated clock and reports false rollbacks, power and
// detection delay next to a Flagger-style rule and the SPRT optimum.
#include <CLI/CLI.hpp>

#include <iostream>
#include <string>

#include "common/config_node.h"
#include "rollout/rollout.h"
#include "rollout/simulator.h"
#include "cli/commands.h"

namespace understudy::cli {

namespace {

struct SimulateArgs {
  std::string scenario = "aa";
  std::string output = "table";
  std::string config;
  int runs = 40;
  uint64_t seed = 1;
  double rps = 100;
  double split = 1;
  double baseline_error = 0.01;
  double factor = 2;
  double onset_minutes = 0;
  double max_hours = 6;
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
  o.scenario = *scenario;
  o.runs = a.runs;
  o.seed = a.seed;
  o.rps = a.rps;
  o.split_percent = a.split;
  o.baseline_error = a.baseline_error;
  o.factor = a.factor;
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
      "Simulate rollouts through the real judge: false rollbacks under A/A, power and "
      "detection delay under regressions, next to a Flagger-style rule and the SPRT optimum");
  cmd->add_option("--scenario", args->scenario, "aa | error | latency | satisfaction")
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
                  "regression factor (error rate or latency multiplier)")
      ->capture_default_str();
  cmd->add_option("--onset", args->onset_minutes, "minutes before the regression starts")
      ->capture_default_str();
  cmd->add_option("--max-hours", args->max_hours, "simulated time limit per run")
      ->capture_default_str();
  cmd->add_option("--config", args->config, "YAML file whose rollout: section is judged");
  cmd->add_option("-o,--output", args->output, "table | json")->capture_default_str();
  cmd->callback([args, exit_code] { *exit_code = RunSimulate(*args); });
}

}  // namespace understudy::cli
