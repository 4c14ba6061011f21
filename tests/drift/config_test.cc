// ParseDriftConfig: YAML in, typed struct or an error naming the key path.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "drift/drift.h"
#include "tests/common/test_util.h"

namespace understudy::drift {
namespace {

using ::understudy::testing::StatusIs;

class DriftConfigTest : public ::testing::Test {
 protected:
  absl::StatusOr<DriftConfig> Parse(const std::string& yaml) {
    absl::StatusOr<ConfigNode> root = ConfigNode::Parse(yaml, "test.yaml");
    if (!root.ok()) return root.status();
    return ParseDriftConfig(root->Child("drift"));
  }
};

// No drift section: the watch is off.
TEST_F(DriftConfigTest, MissingSectionIsDisabled) {
  absl::StatusOr<DriftConfig> c = Parse("other: 1\n");
  ASSERT_OK(c);
  EXPECT_FALSE(c->enabled);
}

// A section turns the watch on; every key is read.
TEST_F(DriftConfigTest, ReadsEveryKey) {
  absl::StatusOr<DriftConfig> c = Parse(R"(drift:
  version_headers: [OpenAI-Version]
  baseline_requests: 40
  new_value_min_count: 2
  mix: {window: 50, min_distance: 0.3}
  behaviour: {enabled: true, alpha: 0.05, min_relative_effect: 0.2, min_samples: 20, min_clusters: 3}
  pause_rollout_on_version_change: true
)");
  ASSERT_OK(c);
  EXPECT_TRUE(c->enabled);
  EXPECT_EQ(c->version_headers, std::vector<std::string>{"openai-version"});
  EXPECT_EQ(c->baseline_requests, 40);
  EXPECT_EQ(c->new_value_min_count, 2);
  EXPECT_EQ(c->mix_window, 50);
  EXPECT_DOUBLE_EQ(c->mix_min_distance, 0.3);
  EXPECT_DOUBLE_EQ(c->alpha, 0.05);
  EXPECT_DOUBLE_EQ(c->min_relative_effect, 0.2);
  EXPECT_EQ(c->min_samples, 20);
  EXPECT_EQ(c->min_clusters, 3);
  EXPECT_TRUE(c->pause_rollout_on_version_change);
}

// Errors name the key path.
TEST_F(DriftConfigTest, ErrorsNameTheKeyPath) {
  EXPECT_THAT(Parse("drift: {mix: {min_distance: 2}}\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "drift.mix.min_distance"));
  EXPECT_THAT(Parse("drift: {behaviour: {alpha: -1}}\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "drift.behaviour.alpha"));
  EXPECT_THAT(Parse("drift: {baseline_request: 10}\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "drift.baseline_request"));
  EXPECT_THAT(Parse("drift: {pause_rollout_on_version_change: maybe}\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "drift.pause_rollout_on_version_change"));
}

// The deprecation date is a day; a bad one names its key path.
TEST_F(DriftConfigTest, ReadsTheDeprecationTrigger) {
  absl::StatusOr<DriftConfig> c = Parse("drift: {deprecation: {date: 2026-10-01, notice: 240h}}\n");
  ASSERT_OK(c);
  ASSERT_TRUE(c->deprecation_date.has_value());
  EXPECT_EQ(*c->deprecation_date, absl::FromCivil(absl::CivilDay(2026, 10, 1), absl::UTCTimeZone()));
  EXPECT_EQ(c->deprecation_notice, absl::Hours(240));
  EXPECT_THAT(Parse("drift: {deprecation: {date: next-tuesday}}\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "drift.deprecation.date"));
  EXPECT_THAT(Parse("drift: {deprecation: {notice: 1h}}\n").status(),
              StatusIs(absl::StatusCode::kInvalidArgument, "drift.deprecation.date"));
}

}  // namespace
}  // namespace understudy::drift
