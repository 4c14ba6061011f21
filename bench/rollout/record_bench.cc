// Cost of the per-exchange hot path (RecordOutcome) against a baseline of
// drawing the same outcome without recording it, and of one Tick.
#include <benchmark/benchmark.h>

#include "rollout/rollout.h"

namespace {
using namespace understudy::rollout;

void BM_BaselineBuildOutcome(benchmark::State& state) {
  int64_t i = 0;
  for (auto _ : state) {
    Outcome o{(++i % 100) ? OutcomeClass::kOk : OutcomeClass::kServerError,
              absl::Milliseconds(500 + i % 1000), absl::Milliseconds(100), 0.002, {}};
    benchmark::DoNotOptimize(o);
  }
}
BENCHMARK(BM_BaselineBuildOutcome);

void BM_RecordOutcome(benchmark::State& state) {
  understudy::ManualClock clock;
  Router router("b");
  InMemoryTransitionLog log;
  Controller c(RolloutConfig{}, clock, router, log);
  int64_t i = 0;
  for (auto _ : state) {
    Outcome o{(++i % 100) ? OutcomeClass::kOk : OutcomeClass::kServerError,
              absl::Milliseconds(500 + i % 1000), absl::Milliseconds(100), 0.002, {}};
    c.RecordOutcome(i % 2 ? understudy::v1::ARM_CANDIDATE : understudy::v1::ARM_PRODUCTION, o);
  }
}
BENCHMARK(BM_RecordOutcome)->Threads(1)->Threads(2);

void BM_Tick(benchmark::State& state) {
  understudy::ManualClock clock;
  Router router("b");
  InMemoryTransitionLog log;
  RolloutConfig config;
  config.stages[1].min_samples = 1 << 30;  // never promote
  Controller c(config, clock, router, log);
  for (int i = 0; i < 100000; ++i) {
    c.RecordOutcome(understudy::v1::ARM_PRODUCTION,
                    Outcome{OutcomeClass::kOk, absl::Milliseconds(500 + i % 1000), {}, {}, {}});
  }
  for (auto _ : state) {
    auto d = c.Tick();
    benchmark::DoNotOptimize(d);
  }
}
BENCHMARK(BM_Tick);
}  // namespace
