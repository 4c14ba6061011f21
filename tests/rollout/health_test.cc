// Health windows: the log-bucketed histogram and the sliding counters.
#include <algorithm>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "rollout/health.h"

namespace understudy::rollout {
namespace {

class HealthTest : public ::testing::Test {
 protected:
  std::mt19937_64 rng_{42};
};

// Quantiles read back from the histogram are within 1% of the exact ones.
TEST_F(HealthTest, HistogramQuantilesAreWithinOnePercent) {
  std::lognormal_distribution<double> dist(std::log(800.0), 0.8);
  std::vector<double> values;
  LogHistogram h;
  for (int i = 0; i < 50000; ++i) {
    double v = dist(rng_);
    values.push_back(v);
    h.Add(v);
  }
  std::sort(values.begin(), values.end());
  for (double q : {0.5, 0.95, 0.99}) {
    double exact = values[static_cast<size_t>(std::ceil(q * values.size())) - 1];
    EXPECT_NEAR(h.Quantile(q) / exact, 1.0, 0.01) << "q=" << q;
  }
}

// Merging two histograms equals one histogram of all the values.
TEST_F(HealthTest, HistogramsMerge) {
  LogHistogram a, b, all;
  std::uniform_real_distribution<double> dist(1, 5000);
  for (int i = 0; i < 1000; ++i) {
    double v = dist(rng_);
    (i % 2 ? a : b).Add(v);
    all.Add(v);
  }
  a.Merge(b);
  EXPECT_EQ(a.count(), 1000);
  EXPECT_DOUBLE_EQ(a.Quantile(0.95), all.Quantile(0.95));
  EXPECT_EQ(a.CountAbove(2500), all.CountAbove(2500));
}

// Out-of-range, zero and NaN values are clamped, never a crash.
TEST_F(HealthTest, HistogramClampsOddValues) {
  LogHistogram h;
  h.Add(0);
  h.Add(-5);
  h.Add(std::nan(""));
  h.Add(1e12);
  EXPECT_EQ(h.count(), 4);
  EXPECT_GT(h.Quantile(1.0), 1e6);
}

// Counts older than the recent window fall out of it.
TEST_F(HealthTest, SlidingCountersForgetOldSlots) {
  SlidingCounters s(absl::Minutes(5), 5);
  absl::Time t0 = absl::FromUnixSeconds(1700000000);
  Outcome err{OutcomeClass::kServerError, {}, {}, {}, {}};
  s.Slot(t0).Add(err);
  s.Slot(t0 + absl::Minutes(2)).Add(Outcome{});
  EXPECT_EQ(s.Sum(t0 + absl::Minutes(3)).requests, 2);
  EXPECT_EQ(s.Sum(t0 + absl::Minutes(3)).errors, 1);
  EXPECT_EQ(s.Sum(t0 + absl::Minutes(6)).requests, 1);
  EXPECT_EQ(s.Sum(t0 + absl::Minutes(20)).requests, 0);
}

// Errors are counted by class; 429 and other 4xx are not errors.
TEST_F(HealthTest, ErrorsAreCountedByClass) {
  Counters c;
  for (OutcomeClass k : {OutcomeClass::kServerError, OutcomeClass::kTimeout, OutcomeClass::kTransport,
                         OutcomeClass::kInvalidBody, OutcomeClass::kThrottled,
                         OutcomeClass::kClientError, OutcomeClass::kOk}) {
    c.Add(Outcome{k, {}, {}, {}, {}});
  }
  EXPECT_EQ(c.requests, 7);
  EXPECT_EQ(c.errors, 4);
  EXPECT_EQ(c.throttled, 1);
  EXPECT_EQ(c.errors_timeout, 1);
  EXPECT_EQ(OutcomeClassFromHttp(429), OutcomeClass::kThrottled);
  EXPECT_EQ(OutcomeClassFromHttp(503), OutcomeClass::kServerError);
  EXPECT_EQ(OutcomeClassFromHttp(0), OutcomeClass::kTransport);
}

}  // namespace
}  // namespace understudy::rollout
