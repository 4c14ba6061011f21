// judge_sim: prints the simulator table for A/A, 2x error at 1%, latency
// and satisfaction scenarios. Usage: judge_sim [runs] [seed]
#include <cstdlib>
#include <iostream>

#include "rollout/simulator.h"

int main(int argc, char** argv) {
  using namespace understudy::rollout;
  int runs = argc > 1 ? std::atoi(argv[1]) : 200;
  uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1;
  struct Case {
    Scenario s;
    double split, factor;
  };
  for (Case c : {Case{Scenario::kAA, 1, 1}, Case{Scenario::kError, 1, 2},
                 Case{Scenario::kError, 5, 2}, Case{Scenario::kLatency, 1, 2},
                 Case{Scenario::kSatisfaction, 5, 1}}) {
    SimulationOptions o;
    o.scenario = c.s;
    o.runs = runs;
    o.seed = seed;
    o.split_percent = c.split;
    o.factor = c.factor;
    absl::StatusOr<SimulationReport> r = RunSimulation(o);
    if (!r.ok()) {
      std::cerr << r.status() << "\n";
      return 1;
    }
    std::cout << FormatReportTable(*r) << FormatReportJson(*r) << "\n";
  }
  return 0;
}
