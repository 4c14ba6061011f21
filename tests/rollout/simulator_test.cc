// The simulator runs the real controller and is deterministic per seed.
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
  SimulationOptions Options(Scenario s, int runs) {
    SimulationOptions o;
    o.scenario = s;
    o.runs = runs;
    o.seed = 3;
    return o;
  }
};

// A/A over a full rollout with fixed seeds: no false rollback.
TEST_F(SimulatorTest, AAHasNoFalseRollbacks) {
  absl::StatusOr<SimulationReport> r = RunSimulation(Options(Scenario::kAA, 6));
  ASSERT_OK(r);
  EXPECT_EQ(r->judge.false_rollbacks, 0);
  EXPECT_EQ(r->judge.promoted, 6);
}

// A 3x error regression at 10% is caught in every run, and the report says so.
TEST_F(SimulatorTest, ErrorRegressionIsDetected) {
  SimulationOptions o = Options(Scenario::kError, 5);
  o.split_percent = 10;
  o.factor = 3;
  absl::StatusOr<SimulationReport> r = RunSimulation(o);
  ASSERT_OK(r);
  EXPECT_EQ(r->judge.rollbacks, 5);
  EXPECT_DOUBLE_EQ(r->power, 1.0);
  EXPECT_GT(r->judge.detection_delay_minutes_median, 0);
  EXPECT_GT(r->sprt_optimal_requests, 0);
  std::string json = FormatReportJson(*r);
  for (const char* key : {"\"false_rollback_rate\"", "\"detection_delay_requests_median\"",
                          "\"detection_delay_minutes_median\"", "\"detection_delay_minutes_p90\"",
                          "\"power\"", "\"sprt_optimal_requests\"", "\"flagger\""}) {
    EXPECT_THAT(json, HasSubstr(key));
  }
}

// Same seed, same numbers.
TEST_F(SimulatorTest, IsDeterministicPerSeed) {
  SimulationOptions o = Options(Scenario::kError, 2);
  o.split_percent = 10;
  std::string a = FormatReportJson(*RunSimulation(o));
  std::string b = FormatReportJson(*RunSimulation(o));
  EXPECT_EQ(a, b);
}

// Bad options get a clear error naming the flag.
TEST_F(SimulatorTest, RejectsBadOptions) {
  SimulationOptions o = Options(Scenario::kError, 0);
  EXPECT_THAT(RunSimulation(o), StatusIs(absl::StatusCode::kInvalidArgument, "--runs"));
  EXPECT_THAT(ParseScenario("chaos"), StatusIs(absl::StatusCode::kInvalidArgument, "--scenario"));
}

}  // namespace
}  // namespace understudy::rollout
