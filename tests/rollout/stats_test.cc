// The sequential tests behind the judge.
#include <cmath>
#include <random>

#include <gtest/gtest.h>

#include "rollout/stats.h"

namespace understudy::rollout {
namespace {

class StatsTest : public ::testing::Test {};

// No errors carry no evidence either way.
TEST_F(StatsTest, RatioSprtIgnoresBatchesWithoutErrors) {
  EXPECT_EQ(RatioSprtIncrement(100, 0, 9900, 0, 2.0), 0);
  EXPECT_EQ(RatioSprtIncrement(0, 0, 9900, 5, 2.0), 0);
  EXPECT_GT(RatioSprtIncrement(100, 3, 9900, 100, 2.0), 0);
  EXPECT_LT(RatioSprtIncrement(100, 0, 9900, 100, 2.0), 0);
}

// Under H0 the exponentiated log-LR has expectation 1 (a martingale step).
TEST_F(StatsTest, RatioSprtIsAMartingaleUnderTheNull) {
  std::mt19937_64 rng(7);
  std::binomial_distribution<int> errors(20, 0.1);  // 20 errors in the batch
  double sum = 0;
  const int n = 200000;
  for (int i = 0; i < n; ++i) {
    int k = errors(rng);  // candidate share s = 0.1
    sum += std::exp(RatioSprtIncrement(100, k, 900, 20 - k, 2.0));
  }
  EXPECT_NEAR(sum / n, 1.0, 0.02);
}

// Clopper-Pearson bounds match known values.
TEST_F(StatsTest, ClopperPearsonBounds) {
  EXPECT_NEAR(ClopperPearsonUpper(0, 100, 0.95), 0.0295, 0.0005);
  EXPECT_NEAR(ClopperPearsonLower(10, 10, 0.99), std::pow(0.01, 0.1), 1e-6);
  EXPECT_EQ(ClopperPearsonUpper(5, 5, 0.99), 1);
  EXPECT_EQ(ClopperPearsonLower(0, 5, 0.99), 0);
}

// The mixture confidence sequence is centred and shrinks with information.
TEST_F(StatsTest, MixtureConfidenceSequenceShrinks) {
  MixtureResult wide = NormalMixtureTest(0.1, 0.01, 0.0, 0.1, 0.01);
  MixtureResult narrow = NormalMixtureTest(0.1, 0.0001, 0.0, 0.1, 0.01);
  EXPECT_NEAR((wide.lower + wide.upper) / 2, 0.1, 1e-12);
  EXPECT_LT(narrow.upper - narrow.lower, wide.upper - wide.lower);
  EXPECT_GT(narrow.lower, 0);  // 0.1 ± ~0.04 excludes 0
  EXPECT_GE(narrow.log_lr, std::log(100.0));
}

// Wald's expected sample size for 1% → 2% at α=1%, β=5% is about 1070.
TEST_F(StatsTest, WaldExpectedSamples) {
  EXPECT_NEAR(WaldExpectedSamples(0.01, 0.02, 0.01, 0.05), 1067, 10);
}

}  // namespace
}  // namespace understudy::rollout
