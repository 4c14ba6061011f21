// drift/revisit.h: the revisit triggers decided in one place, the eval
// regression rules, and the `revisit:` config.
#include "drift/revisit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/common/test_util.h"

namespace understudy::drift {
namespace {

using ::testing::HasSubstr;
using ::understudy::testing::StatusIs;
namespace v1 = ::understudy::v1;

v1::EvalRun MakeRun(int64_t start_seconds, std::map<std::string, double> candidate,
                std::map<std::string, double> both = {}) {
  v1::EvalRun r;
  r.set_start_unix_micros(start_seconds * 1'000'000);
  v1::EvalArmSummary* a = r.add_arms();
  a->set_arm(v1::ARM_CANDIDATE);
  for (const auto& [k, v] : candidate) (*a->mutable_metrics())[k] = v;
  for (const auto& [k, v] : both) (*r.mutable_metrics())[k] = v;
  return r;
}

class RevisitTest : public ::testing::Test {
 protected:
  RevisitTest() { in_.now = absl::FromUnixSeconds(1'800'000'000); }
  std::vector<std::string> Kinds() {
    std::vector<std::string> out;
    for (const v1::RevisitTrigger& t : EvaluateRevisit(in_)) out.push_back(t.kind());
    return out;
  }
  absl::StatusOr<RevisitConfig> Parse(const std::string& yaml) {
    absl::StatusOr<ConfigNode> root = ConfigNode::Parse(yaml, "test.yaml");
    if (!root.ok()) return root.status();
    return ParseRevisitConfig(root->Child("revisit"));
  }
  RevisitInputs in_;
};

// Nothing known, nothing changed: no trigger.
TEST_F(RevisitTest, NothingFiresWithoutACause) {
  in_.price_fingerprint = "aaa";
  in_.saved_price_fingerprint = "aaa";
  in_.requests_per_hour = 100;
  in_.saved_requests_per_hour = 100;
  EXPECT_TRUE(Kinds().empty());
}

// A different price table than at the decision fires price_change with
// what to do next.
TEST_F(RevisitTest, PriceTableChangeFires) {
  in_.price_fingerprint = "bbb";
  in_.saved_price_fingerprint = "aaa";
  in_.saved_at = in_.now - absl::Hours(5);
  std::vector<v1::RevisitTrigger> fired = EvaluateRevisit(in_);
  ASSERT_EQ(fired.size(), 1u);
  EXPECT_EQ(fired[0].kind(), kTriggerPriceChange);
  EXPECT_THAT(fired[0].action(), HasSubstr("re-run the cost comparison"));
  EXPECT_EQ(fired[0].since_unix_micros(), absl::ToUnixMicros(in_.saved_at));
}

// An unknown saved fingerprint (older data) is not a change.
TEST_F(RevisitTest, UnknownSavedPricesDoNotFire) {
  in_.price_fingerprint = "bbb";
  EXPECT_TRUE(Kinds().empty());
}

// Traffic at the threshold ratio fires; just below it does not; a quiet
// decision-time rate (below the minimum) never does.
TEST_F(RevisitTest, VolumeGrowthFiresAtTheConfiguredRatio) {
  in_.config.volume_growth = 2.0;
  in_.saved_requests_per_hour = 100;
  in_.requests_per_hour = 199;
  EXPECT_TRUE(Kinds().empty());
  in_.requests_per_hour = 200;
  EXPECT_EQ(Kinds(), std::vector<std::string>{kTriggerVolumeGrowth});
  in_.saved_requests_per_hour = 5;  // below volume_min_requests_per_hour (10)
  in_.requests_per_hour = 1000;
  EXPECT_TRUE(Kinds().empty());
  in_.saved_requests_per_hour = 100;
  in_.config.volume_growth = 0;  // off
  EXPECT_TRUE(Kinds().empty());
}

// Every drift event, the deprecation notice and an eval regression fire,
// in the documented order.
TEST_F(RevisitTest, AllKindsFireInOrder) {
  v1::Decision drift;
  drift.set_action(v1::ACTION_DRIFT);
  drift.set_reason("candidate system_fingerprint fp_2 is new");
  drift.set_time_unix_micros(absl::ToUnixMicros(in_.now - absl::Hours(1)));
  v1::Decision baseline;
  baseline.set_action(v1::ACTION_DRIFT_BASELINE);
  in_.drift_events = {drift, baseline};
  in_.deprecation_date = in_.now + absl::Hours(24 * 10);
  in_.price_fingerprint = "b";
  in_.saved_price_fingerprint = "a";
  in_.saved_requests_per_hour = 50;
  in_.requests_per_hour = 500;
  v1::EvalRun run = MakeRun(1'799'999'000, {{"reask_agreement", 0.2}});
  run.set_baseline_start_unix_micros(1'700'000'000'000'000);
  *run.add_regressions() = FindEvalRegressions(MakeRun(1, {}), run, {})[0];
  in_.latest_eval = run;
  EXPECT_EQ(Kinds(), (std::vector<std::string>{kTriggerDrift, kTriggerDeprecation,
                                               kTriggerPriceChange, kTriggerVolumeGrowth,
                                               kTriggerEvalRegression}));
  std::vector<v1::RevisitTrigger> fired = EvaluateRevisit(in_);
  EXPECT_THAT(fired[1].detail(), HasSubstr("in 10 days"));
  EXPECT_THAT(RevisitLine(fired[4]), HasSubstr("candidate reask_agreement fell from 1.000 to 0.200"));
}

// The deprecation trigger waits for its notice period.
TEST_F(RevisitTest, DeprecationWaitsForTheNotice) {
  in_.deprecation_date = in_.now + absl::Hours(24 * 40);
  in_.deprecation_notice = absl::Hours(24 * 30);
  EXPECT_TRUE(Kinds().empty());
}

// Rates regress by an absolute drop, latency and cost by a relative rise;
// improvements and small moves do not count.
TEST_F(RevisitTest, EvalRegressionsFollowEachMetricsDirection) {
  EvalRegressionThresholds th;  // rate 0.1, relative 0.5
  const v1::EvalRun base = MakeRun(1, {{"error_rate", 0.0}, {"latency_p95_ms", 100},
                                   {"reference_agreement", 0.9}, {"cost_per_request", 0.01}},
                               {{"agreement_rate", 0.8}});
  const v1::EvalRun same = MakeRun(2, {{"error_rate", 0.05}, {"latency_p95_ms", 140},
                                   {"reference_agreement", 0.85}, {"cost_per_request", 0.005},
                                   {"reask_agreement", 0.95}},
                               {{"agreement_rate", 0.95}});
  EXPECT_TRUE(FindEvalRegressions(base, same, th).empty());
  const v1::EvalRun worse = MakeRun(3, {{"error_rate", 0.2}, {"latency_p95_ms", 200},
                                    {"reference_agreement", 0.5}, {"cost_per_request", 0.01},
                                    {"reask_agreement", 0.5}},
                                {{"agreement_rate", 0.6}});
  std::vector<std::string> metrics;
  for (const v1::EvalRegression& r : FindEvalRegressions(base, worse, th)) {
    metrics.push_back(r.metric());
  }
  EXPECT_THAT(metrics, ::testing::UnorderedElementsAre("error_rate", "latency_p95_ms",
                                                       "reference_agreement", "reask_agreement",
                                                       "agreement_rate"));
  // Latency also needs latency_min_ms (100) of absolute growth: 60 → 120 ms
  // is jitter, 100 → 250 ms is not.
  const v1::EvalRun fast = MakeRun(4, {{"latency_p95_ms", 60}});
  EXPECT_TRUE(FindEvalRegressions(fast, MakeRun(5, {{"latency_p95_ms", 120}}), th).empty());
  EXPECT_EQ(FindEvalRegressions(base, MakeRun(6, {{"latency_p95_ms", 250}}), th).size(), 1u);
  // A failed run is reported as failed, not as regressions.
  v1::EvalRun failed = worse;
  failed.set_failed(true);
  EXPECT_TRUE(FindEvalRegressions(base, failed, th).empty());
}

// The config: defaults, every key, and errors naming the key path.
TEST_F(RevisitTest, ConfigReadsKeysAndNamesBadOnes) {
  absl::StatusOr<RevisitConfig> c = Parse("other: 1\n");
  ASSERT_OK(c);
  EXPECT_EQ(c->volume_growth, 2.0);
  c = Parse("revisit: {volume_growth: 3, eval_regression: {rate: 0.2, relative: 1}}\n");
  ASSERT_OK(c);
  EXPECT_EQ(c->volume_growth, 3.0);
  EXPECT_EQ(c->eval_regression.rate, 0.2);
  EXPECT_EQ(c->eval_regression.relative, 1.0);
  EXPECT_THAT(Parse("revisit: {volume_growth: 0.5}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "revisit.volume_growth"));
  EXPECT_THAT(Parse("revisit: {eval_regression: {rate: 2}}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "revisit.eval_regression.rate"));
  EXPECT_THAT(Parse("revisit: {volume: 2}\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "volume"));
}

}  // namespace
}  // namespace understudy::drift
