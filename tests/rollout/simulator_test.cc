// The simulator runs the real controller and is deterministic per seed.
// Big runs (false rollback, power, delay) live in bench/rollout/judge_sim;
// these pin the basics on a short plan.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "rollout/simulator.h"
#include "tests/common/test_util.h"

namespace understudy::rollout {
namespace {

using ::testing::HasSubstr;
using ::understudy::testing::StatusIs;

class SimulatorTest : public ::testing::Test {
 protected:
  // A short plan (shadow 1m, 10% and 50% for 2m) at 50 rps.
  SimulationOptions Options(Scenario s, int runs) {
    SimulationOptions o;
    o.scenario = s;
    o.runs = runs;
    o.seed = 3;
    o.rps = 50;
    o.max_time = absl::Hours(1);
    o.config.stages = {{0, absl::Minutes(1), 50, absl::ZeroDuration()},
                       {10, absl::Minutes(2), 100, absl::ZeroDuration()},
                       {50, absl::Minutes(2), 100, absl::ZeroDuration()},
                       {100, absl::ZeroDuration(), 0, absl::ZeroDuration()}};
    return o;
  }
};

// A/A over the whole plan, with users who always fail and heavy-tailed
// activity: no false rollback, and the plan completes.
TEST_F(SimulatorTest, AAWithClusteredUsersHasNoFalseRollbacks) {
  SimulationOptions o = Options(Scenario::kAA, 3);
  ASSERT_OK(ApplyHeterogeneity("mild", &o));
  o.users = 3000;
  absl::StatusOr<SimulationReport> r = RunSimulation(o);
  ASSERT_OK(r);
  EXPECT_EQ(r->judge.false_rollbacks, 0);
  EXPECT_EQ(r->judge.promoted, 3);
}

// A 3x error regression at 10% is caught in every run, and the report says
// so, with the optimal fixed-sample test for comparison.
TEST_F(SimulatorTest, ErrorRegressionIsDetected) {
  SimulationOptions o = Options(Scenario::kError, 3);
  o.split_percent = 10;
  o.factor = 3;
  absl::StatusOr<SimulationReport> r = RunSimulation(o);
  ASSERT_OK(r);
  EXPECT_EQ(r->judge.rollbacks, 3);
  EXPECT_DOUBLE_EQ(r->power, 1.0);
  EXPECT_GT(r->judge.detection_delay_minutes_median, 0);
  EXPECT_GT(r->optimal_fixed_requests, 0);
  EXPECT_GT(r->true_effect, 0.9);
  EXPECT_GT(r->sprt_optimal_requests, 0);
  EXPECT_EQ(r->rollbacks_by_gate.count("error_rate"), 1u);
  std::string json = FormatReportJson(*r);
  for (const char* key : {"\"false_rollback_rate\"", "\"detection_delay_requests_median\"",
                          "\"detection_delay_minutes_median\"", "\"detection_delay_minutes_p90\"",
                          "\"power\"", "\"optimal_fixed_requests\"", "\"judge_vs_optimal\"",
                          "\"design_effect_median\"", "\"sprt_optimal_requests\"", "\"flagger\"",
                          "\"rollbacks_by_gate\""}) {
    EXPECT_THAT(json, HasSubstr(key));
  }
  EXPECT_THAT(FormatReportTable(*r), HasSubstr("optimal fixed-sample"));
}

// A restart mid-rollout resumes the evidence: the same seeds give the same
// outcome as without the restart, and a shared outage rolls nothing back.
TEST_F(SimulatorTest, RestartAndSharedOutageChangeNothing) {
  SimulationOptions o = Options(Scenario::kAA, 2);
  o.outages = {absl::Minutes(2)};
  o.outage_duration = absl::Minutes(1);
  absl::StatusOr<SimulationReport> plain = RunSimulation(o);
  ASSERT_OK(plain);
  EXPECT_EQ(plain->judge.false_rollbacks, 0);
  o.restart_at = absl::Minutes(3);
  absl::StatusOr<SimulationReport> restarted = RunSimulation(o);
  ASSERT_OK(restarted);
  EXPECT_EQ(restarted->judge.false_rollbacks, 0);
  EXPECT_EQ(restarted->judge.promoted, plain->judge.promoted);
  EXPECT_DOUBLE_EQ(restarted->judge.promote_minutes_median, plain->judge.promote_minutes_median);
}

// Same seed, same numbers, with one thread or two.
TEST_F(SimulatorTest, IsDeterministicPerSeed) {
  SimulationOptions o = Options(Scenario::kError, 2);
  o.split_percent = 10;
  std::string a = FormatReportJson(*RunSimulation(o));
  o.threads = 2;
  std::string b = FormatReportJson(*RunSimulation(o));
  EXPECT_EQ(a, b);
}

// Bad options get a clear error naming the flag.
TEST_F(SimulatorTest, RejectsBadOptions) {
  SimulationOptions o = Options(Scenario::kError, 0);
  EXPECT_THAT(RunSimulation(o), StatusIs(absl::StatusCode::kInvalidArgument, "--runs"));
  EXPECT_THAT(ParseScenario("chaos"), StatusIs(absl::StatusCode::kInvalidArgument, "--scenario"));
  o.runs = 1;
  o.only_gate = "vibes";
  EXPECT_THAT(RunSimulation(o), StatusIs(absl::StatusCode::kInvalidArgument, "--gate"));
  EXPECT_THAT(ApplyHeterogeneity("extreme", &o),
              StatusIs(absl::StatusCode::kInvalidArgument, "--heterogeneity"));
}

}  // namespace
}  // namespace understudy::rollout
