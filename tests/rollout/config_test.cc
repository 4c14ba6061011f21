// ParseRolloutConfig: YAML in, typed struct or a precise error out.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "rollout/rollout.h"
#include "tests/common/test_util.h"

namespace understudy::rollout {
namespace {

using ::understudy::testing::StatusIs;

class ConfigTest : public ::testing::Test {
 protected:
  absl::StatusOr<RolloutConfig> Parse(const std::string& yaml) {
    absl::StatusOr<ConfigNode> root = ConfigNode::Parse(yaml, "test.yaml");
    if (!root.ok()) return root.status();
    return ParseRolloutConfig(root->Child("rollout"));
  }
};

// No rollout section: the default plan shadow → 1 → 5 → 25 → 50 → 100.
TEST_F(ConfigTest, MissingSectionGivesDefaults) {
  absl::StatusOr<RolloutConfig> c = Parse("other: 1\n");
  ASSERT_OK(c);
  EXPECT_EQ(PlanFingerprint(*c), "0,1,5,25,50,100");
  EXPECT_EQ(c->rollback_target, RollbackTarget::kZero);
  EXPECT_DOUBLE_EQ(c->error_rate.max_ratio, 1.5);
}

// The defaults are the playbook's thresholds, each the regression that must
// be caught; what is tolerated is "no worse than production".
TEST_F(ConfigTest, DefaultsAreThePlaybooksMustCatchThresholds) {
  absl::StatusOr<RolloutConfig> c = Parse("other: 1\n");
  ASSERT_OK(c);
  EXPECT_DOUBLE_EQ(c->error_rate.max_ratio, 1.5);
  EXPECT_DOUBLE_EQ(c->error_rate.tolerated_ratio, 1.0);
  EXPECT_DOUBLE_EQ(c->latency.max_ratio, 1.5);
  EXPECT_DOUBLE_EQ(c->latency.tolerated_ratio, 1.0);
  EXPECT_DOUBLE_EQ(c->latency.quantile, 0.95);
  EXPECT_DOUBLE_EQ(c->satisfaction.max_drop, 0.1);
  EXPECT_DOUBLE_EQ(c->satisfaction.tolerated_drop, 0.0);
  EXPECT_DOUBLE_EQ(c->satisfaction.alert_drop, 0.15);
  EXPECT_DOUBLE_EQ(c->critical.max_ratio, 2.0);
  EXPECT_EQ(c->recent_window, absl::Minutes(5));
  EXPECT_DOUBLE_EQ(c->cost.tolerated_ratio, 1.0);
  EXPECT_DOUBLE_EQ(c->agreement.tolerated, 0.95);
  EXPECT_EQ(c->min_clusters, 20);
  EXPECT_FALSE(c->prove_every_stage);
}

// The new keys parse, and a tolerance must lie on the good side of the
// threshold it pairs with.
TEST_F(ConfigTest, ToleranceKeysParseAndAreChecked) {
  absl::StatusOr<RolloutConfig> c = Parse(R"(
rollout:
  judge: {min_clusters: 50, prove_every_stage: true}
  gates:
    error_rate: {max_ratio: 2, tolerated_ratio: 1.2}
    latency_p95: {quantile: 0.99, max_ratio: 2, tolerated_ratio: 1.1, margin: 0.05}
    satisfaction: {max_drop: 0.1, tolerated_drop: 0.02, alert_drop: 0.2}
    cost_per_request: {max_ratio: 3, tolerated_ratio: 1.5}
    agreement: {min: 0.85, tolerated: 0.9}
    critical: {max_ratio: 3, max_error_rate: 0.05}
)");
  ASSERT_OK(c);
  EXPECT_EQ(c->min_clusters, 50);
  EXPECT_TRUE(c->prove_every_stage);
  EXPECT_DOUBLE_EQ(c->error_rate.tolerated_ratio, 1.2);
  EXPECT_DOUBLE_EQ(c->latency.quantile, 0.99);
  EXPECT_DOUBLE_EQ(c->latency.tolerated_ratio, 1.1);
  EXPECT_DOUBLE_EQ(c->satisfaction.tolerated_drop, 0.02);
  EXPECT_DOUBLE_EQ(c->satisfaction.alert_drop, 0.2);
  EXPECT_DOUBLE_EQ(c->cost.tolerated_ratio, 1.5);
  EXPECT_DOUBLE_EQ(c->agreement.tolerated, 0.9);
  EXPECT_DOUBLE_EQ(c->critical.max_ratio, 3);
  EXPECT_DOUBLE_EQ(c->critical.max_error_rate, 0.05);

  EXPECT_THAT(Parse("rollout:\n  gates:\n    latency_p95: {max_ratio: 1.5, tolerated_ratio: 1.5}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rollout.gates.latency_p95.tolerated_ratio: must be below max_ratio"));
  EXPECT_THAT(Parse("rollout:\n  gates:\n    satisfaction: {max_drop: 0.1, tolerated_drop: 0.2}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rollout.gates.satisfaction.tolerated_drop"));
  EXPECT_THAT(Parse("rollout:\n  gates:\n    agreement: {min: 0.9, tolerated: 0.8}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "rollout.gates.agreement.tolerated"));
  // A min above the default tolerance moves the default halfway to 1.
  absl::StatusOr<RolloutConfig> strict = Parse("rollout:\n  gates:\n    agreement: {min: 0.96}\n");
  ASSERT_OK(strict);
  EXPECT_DOUBLE_EQ(strict->agreement.tolerated, 0.98);
}

// A full section with every gate parses into the struct.
TEST_F(ConfigTest, FullSectionParses) {
  absl::StatusOr<RolloutConfig> c = Parse(R"(
rollout:
  stages:
    - {percent: 0, min_bake: 2m, min_samples: 100}
    - {percent: 1, min_bake: 10m, min_samples: 500, max_bake: 2h}
    - 10
    - {percent: 100}
  rollback_target: previous_stage
  windows: {recent: 2m, slots: 4}
  tick_interval: 5s
  judge: {alpha: 0.005, beta: 0.1}
  gates:
    error_rate: {max_ratio: 2.0, max_abs_increase: 0.02}
    latency_p95: {max_ratio: 1.3}
    ttft_p95: {max_ratio: 1.4, enabled: false}
    satisfaction: {max_drop: 0.05, must_have_data: true}
    cost_per_request: {max_ratio: 3}
    agreement: {min: 0.8}
    critical: {max_error_rate: 0.3}
)");
  ASSERT_OK(c);
  ASSERT_EQ(c->stages.size(), 4u);
  EXPECT_EQ(c->stages[1].max_bake, absl::Hours(2));
  EXPECT_EQ(c->stages[2].percent, 10);
  EXPECT_EQ(c->rollback_target, RollbackTarget::kPreviousStage);
  EXPECT_EQ(c->recent_window, absl::Minutes(2));
  EXPECT_EQ(c->recent_slots, 4);
  EXPECT_DOUBLE_EQ(c->alpha, 0.005);
  EXPECT_DOUBLE_EQ(c->error_rate.max_abs_increase, 0.02);
  EXPECT_DOUBLE_EQ(c->latency.max_ratio, 1.3);
  EXPECT_FALSE(c->ttft.enabled);
  EXPECT_TRUE(c->satisfaction.must_have_data);
  EXPECT_DOUBLE_EQ(c->cost.max_ratio, 3);
  EXPECT_DOUBLE_EQ(c->agreement.min, 0.8);
  EXPECT_DOUBLE_EQ(c->critical.max_error_rate, 0.3);
}

// A percent out of range names the exact key path.
TEST_F(ConfigTest, PercentOutOfRangeNamesKeyPath) {
  EXPECT_THAT(Parse("rollout:\n  stages:\n    - {percent: 0}\n    - {percent: 1}\n"
                    "    - {percent: 120}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "rollout.stages[2].percent: must be in 0..100, got 120"));
}

// Stages must increase and end at 100.
TEST_F(ConfigTest, StagesMustIncreaseAndEndAtHundred) {
  EXPECT_THAT(Parse("rollout:\n  stages: [0, 5, 5, 100]\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "rollout.stages[2].percent"));
  EXPECT_THAT(Parse("rollout:\n  stages: [0, 5, 50]\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "rollout.stages: the last stage must be 100"));
}

// Typos and bad values are caught with their path.
TEST_F(ConfigTest, UnknownKeysAndBadValuesAreRejected) {
  EXPECT_THAT(Parse("rollout:\n  stagez: []\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "rollout.stagez: unknown key"));
  EXPECT_THAT(Parse("rollout:\n  rollback_target: sideways\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "rollout.rollback_target"));
  EXPECT_THAT(Parse("rollout:\n  gates:\n    error_rate: {max_ratio: 0.5}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "rollout.gates.error_rate.max_ratio"));
  EXPECT_THAT(Parse("rollout:\n  stages:\n    - {percent: 1, min_bake: 10m, max_bake: 1m}\n    - 100\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "rollout.stages[0].max_bake"));
  EXPECT_THAT(Parse("rollout:\n  stages:\n    - {min_bake: 1m}\n    - 100\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "rollout.stages[0].percent: is required"));
}

}  // namespace
}  // namespace understudy::rollout
