// The evidence: per-bucket windows, cluster-robust contrasts, strata, the
// history adjustment, and persistence.
#include "rollout/evidence.h"

#include <cmath>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/common/test_util.h"

namespace understudy::rollout {
namespace {

using ::understudy::testing::StatusIs;
using understudy::v1::ARM_CANDIDATE;
using understudy::v1::ARM_PRODUCTION;

const absl::Time kNow = absl::FromUnixSeconds(1700000000);

class EvidenceTest : public ::testing::Test {
 protected:
  void Add(Evidence& ev, understudy::v1::Arm arm, int32_t bucket, int n, int errors) {
    for (int i = 0; i < n; ++i) {
      Outcome o;
      o.status = i < errors ? OutcomeClass::kServerError : OutcomeClass::kOk;
      o.latency = absl::Milliseconds(500 + 10 * i);
      o.cost = 0.001 * (1 + i % 3);
      ev.AddOutcome(arm, o, bucket, kNow);
    }
  }
  RolloutConfig config_;
};

// One stratum, hand-computed: the log rate ratio and its cluster-robust
// (CR1) delta-method variance from per-bucket residuals.
TEST_F(EvidenceTest, ClusterRobustVarianceOfTheLogRateRatio) {
  Evidence ev(config_);
  // Candidate: buckets 0..2 with (n, e) = (10,1) (10,3) (20,0).
  Add(ev, ARM_CANDIDATE, 0, 10, 1);
  Add(ev, ARM_CANDIDATE, 1, 10, 3);
  Add(ev, ARM_CANDIDATE, 2, 20, 0);
  // Production: buckets 10..13 with (20,1) (20,2) (20,0) (40,1).
  Add(ev, ARM_PRODUCTION, 10, 20, 1);
  Add(ev, ARM_PRODUCTION, 11, 20, 2);
  Add(ev, ARM_PRODUCTION, 12, 20, 0);
  Add(ev, ARM_PRODUCTION, 13, 40, 1);
  ContrastResult r = ev.Contrast(kContrastError, CandidateTraffic::kLive);
  const double mc = 4.0 / 40, mp = 4.0 / 100;
  const double w = 40.0 * 100 / 140;
  const double a2 = w * mc + 0.5 * w / 40, b2 = w * mp + 0.5 * w / 100;
  EXPECT_NEAR(r.estimate, std::log(a2 / b2), 1e-12);
  double su = 0, sr = 0;
  for (auto [n, e] : {std::pair{10, 1}, {10, 3}, {20, 0}}) su += std::pow(w * (e - mc * n) / 40, 2);
  for (auto [n, e] : {std::pair{20, 1}, {20, 2}, {20, 0}, {40, 1}}) {
    sr += std::pow(w * (e - mp * n) / 100, 2);
  }
  const double expected = 3.0 / 2 * su / (a2 * a2) + 4.0 / 3 * sr / (b2 * b2);
  EXPECT_NEAR(r.v_cr, expected, 1e-12);
  EXPECT_EQ(r.cand_clusters, 3);
  EXPECT_EQ(r.prod_clusters, 4);
  EXPECT_DOUBLE_EQ(r.cand_samples, 40);
  EXPECT_NEAR(r.cand_mean, 0.1, 1e-12);
}

// Independent requests, one per bucket-draw: the design effect is near 1.
// Whole users failing together: it is far above 1.
TEST_F(EvidenceTest, DesignEffectReflectsClustering) {
  std::mt19937_64 rng(3);
  std::uniform_int_distribution<int32_t> bucket(0, kBucketCount - 1);
  std::bernoulli_distribution err(0.05);
  Evidence iid(config_), clustered(config_);
  for (int i = 0; i < 40000; ++i) {
    Outcome o;
    o.status = err(rng) ? OutcomeClass::kServerError : OutcomeClass::kOk;
    iid.AddOutcome(i % 5 == 0 ? ARM_CANDIDATE : ARM_PRODUCTION, o, bucket(rng), kNow);
  }
  for (int32_t b = 0; b < 1000; ++b) {
    const bool failing = b % 20 == 0;  // 5% of users fail every request
    Add(clustered, b < 200 ? ARM_CANDIDATE : ARM_PRODUCTION, b, 40, failing ? 40 : 0);
  }
  EXPECT_NEAR(iid.Contrast(kContrastError, CandidateTraffic::kLive).DesignEffect(), 1.0, 0.25);
  EXPECT_GT(clustered.Contrast(kContrastError, CandidateTraffic::kLive).DesignEffect(), 10);
}

// Users that always failed on production keep failing once they enter the
// candidate at the next stage (here, unluckily, all of them). With the
// history adjustment the contrast sees that they were failing before;
// without it they look like a candidate regression.
TEST_F(EvidenceTest, HistoryAdjustmentRemovesPersistentUserEffects) {
  auto build = [&](bool adjust) {
    RolloutConfig c = config_;
    c.history_adjustment = adjust;
    Evidence ev(c);
    auto stage = [&](int32_t weight) {
      for (int32_t b = 0; b < 2000; ++b) {
        const bool failing = b >= 100 && b < 120;
        Add(ev, b < weight ? ARM_CANDIDATE : ARM_PRODUCTION, b, 20, failing ? 20 : (b % 4 == 0));
      }
    };
    stage(100);  // the failing users are production users here
    ev.FoldStage(CandidateTraffic::kLive);
    stage(200);  // ... and candidate users here
    return ev.Contrast(kContrastError, CandidateTraffic::kLive);
  };
  ContrastResult plain = build(false);
  ContrastResult adjusted = build(true);
  EXPECT_EQ(plain.adjustment_slope, 0);
  EXPECT_GT(adjusted.adjustment_slope, 0.5);
  EXPECT_GT(plain.estimate, 0.5);
  EXPECT_LT(std::abs(adjusted.estimate), plain.estimate / 2) << adjusted.estimate;
  // Both contrasts pair each user's strata (their influences add before
  // squaring), so the variances stay of a size.
  EXPECT_LT(adjusted.v_cr, 2 * plain.v_cr);
}

// Save then Load gives the same contrasts and the same record; a restart
// neither loses nor doubles a request.
TEST_F(EvidenceTest, SaveAndLoadRoundTrip) {
  Evidence ev(config_);
  ev.SetThresholds(600, 150);
  for (int32_t b = 0; b < 300; ++b) Add(ev, b < 50 ? ARM_CANDIDATE : ARM_PRODUCTION, b, 10, b % 7 == 0);
  ev.FoldStage(CandidateTraffic::kLive);
  for (int32_t b = 0; b < 300; ++b) {
    Add(ev, b < 100 ? ARM_CANDIDATE : ARM_PRODUCTION, b, 12, b % 5 == 0);
    ev.AddFeedback(b < 100 ? ARM_CANDIDATE : ARM_PRODUCTION, b % 3 == 0 ? 0 : 1, b, kNow);
  }
  ShadowComparison c;
  c.major_diff = true;
  ev.AddComparison(c, 7, kNow);
  understudy::v1::JudgeEvidence saved;
  ev.Save(&saved);
  std::string bytes = saved.SerializeAsString();
  understudy::v1::JudgeEvidence parsed;
  ASSERT_TRUE(parsed.ParseFromString(bytes));
  Evidence restored(config_);
  ASSERT_OK(restored.Load(parsed));
  understudy::v1::JudgeEvidence again;
  restored.Save(&again);
  EXPECT_EQ(again.SerializeAsString(), bytes);
  for (int k = 0; k < kNumContrasts; ++k) {
    ContrastResult a = ev.Contrast(static_cast<ContrastId>(k), CandidateTraffic::kLive);
    ContrastResult b = restored.Contrast(static_cast<ContrastId>(k), CandidateTraffic::kLive);
    // Equal up to the order of summation and the per-bucket influences'
    // single precision in the record.
    EXPECT_NEAR(a.estimate, b.estimate, 1e-9 * (1 + std::abs(a.estimate))) << k;
    EXPECT_NEAR(a.v_cr, b.v_cr, 1e-5 * (1e-12 + a.v_cr)) << k;
    EXPECT_EQ(a.cand_clusters, b.cand_clusters) << k;
  }
  EXPECT_EQ(restored.window(EvidenceArm::kCandidate).c.requests, 1200);
  EXPECT_EQ(restored.window(EvidenceArm::kShadow).c.major_diffs, 1);
  EXPECT_DOUBLE_EQ(restored.latency_threshold(), 600);
}

// A malformed record is refused and changes nothing.
TEST_F(EvidenceTest, LoadRejectsMalformedRecords) {
  Evidence ev(config_);
  Add(ev, ARM_CANDIDATE, 3, 5, 1);
  understudy::v1::JudgeEvidence bad;
  ev.Save(&bad);
  bad.mutable_candidate()->mutable_buckets()->set_bucket(0, kBucketCount);
  Evidence other(config_);
  Add(other, ARM_PRODUCTION, 9, 4, 0);
  EXPECT_THAT(other.Load(bad), StatusIs(absl::StatusCode::kInvalidArgument, "out of range"));
  EXPECT_EQ(other.window(EvidenceArm::kProduction).c.requests, 4);
  understudy::v1::JudgeEvidence unknown;
  unknown.add_contrasts()->set_name("nonsense");
  EXPECT_THAT(other.Load(unknown), StatusIs(absl::StatusCode::kInvalidArgument, "nonsense"));
}

}  // namespace
}  // namespace understudy::rollout
