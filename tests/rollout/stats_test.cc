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

// The one-sided mixture: its radius is where the log-LR reaches log(1/level),
// it grows with the variance and shrinks with the level's leniency.
TEST_F(StatsTest, OneSidedMixtureRadiusInvertsTheLogLr) {
  for (double v : {1e-6, 1e-4, 0.01, 1.0}) {
    for (double tau : {0.01, 0.1, 1.0}) {
      for (double level : {0.001, 0.05}) {
        double h = OneSidedMixtureRadius(v, tau, level);
        EXPECT_GT(h, 0);
        EXPECT_NEAR(OneSidedMixtureLogLr(h, v, tau), std::log(1 / level), 1e-6)
            << v << " " << tau << " " << level;
      }
    }
  }
  EXPECT_LT(OneSidedMixtureRadius(0.001, 0.1, 0.01), OneSidedMixtureRadius(0.01, 0.1, 0.01));
  EXPECT_LT(OneSidedMixtureRadius(0.01, 0.1, 0.05), OneSidedMixtureRadius(0.01, 0.1, 0.01));
  // Evidence against H0 grows with the estimate.
  EXPECT_LT(OneSidedMixtureLogLr(-1, 0.01, 0.1), OneSidedMixtureLogLr(0, 0.01, 0.1));
  EXPECT_LT(OneSidedMixtureLogLr(0, 0.01, 0.1), OneSidedMixtureLogLr(0.3, 0.01, 0.1));
}

// Monitored after every observation of a Gaussian random walk with no
// drift, the one-sided mixture crosses log(1/α) at most α of the time
// (Ville); with drift it crosses.
TEST_F(StatsTest, OneSidedMixtureIsAlwaysValidUnderContinuousMonitoring) {
  std::mt19937_64 rng(11);
  std::normal_distribution<double> z(0, 1);
  const double alpha = 0.05, tau = 0.2;
  int crossed = 0, detected = 0;
  const int paths = 2000, steps = 400;
  for (int p = 0; p < paths; ++p) {
    double sum0 = 0, sum1 = 0;
    bool c0 = false, c1 = false;
    for (int n = 1; n <= steps; ++n) {
      sum0 += z(rng);
      sum1 += z(rng) + 0.2;
      double v = 1.0 / n;  // variance of the mean
      c0 = c0 || OneSidedMixtureLogLr(sum0 / n, v, tau) >= std::log(1 / alpha);
      c1 = c1 || sum1 / n - OneSidedMixtureRadius(v, tau, alpha) > 0;
    }
    crossed += c0;
    detected += c1;
  }
  EXPECT_LE(crossed, alpha * paths * 1.2);
  EXPECT_GE(detected, 0.9 * paths);
}

TEST_F(StatsTest, NormalQuantileInvertsTheCdf) {
  EXPECT_NEAR(NormalQuantile(0.975), 1.959964, 1e-5);
  EXPECT_NEAR(NormalQuantile(0.5), 0, 1e-12);
  EXPECT_NEAR(NormalCdf(NormalQuantile(0.01)), 0.01, 1e-9);
  EXPECT_NEAR(ClopperPearsonLowerReal(10, 10, 0.99), std::pow(0.01, 0.1), 1e-6);
  EXPECT_NEAR(ClopperPearsonLowerReal(3, 100, 0.95), ClopperPearsonLower(3, 100, 0.95), 1e-12);
}

}  // namespace
}  // namespace understudy::rollout
