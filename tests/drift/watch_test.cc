// The drift watch: version alarms, behaviour alarms against a frozen
// baseline, A/A silence, restore after a restart.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "drift/drift.h"

namespace understudy::drift {
namespace {

namespace v1 = ::understudy::v1;

// Traffic is a simulated model: 50 users, answers of a length that depends
// on the user (clustered) plus noise, a refusal rate and a fingerprint.
struct Model {
  std::string fingerprint = "fp_a";
  std::string model = "gpt-4o-2024-08-06";
  double length_factor = 1.0;
  double refusal_rate = 0.02;
};

class WatchTest : public ::testing::Test {
 protected:
  WatchTest() { config_.enabled = true; config_.baseline_requests = 200; }

  Observation Next(const Model& m, v1::Arm arm = v1::ARM_PRODUCTION) {
    Observation o;
    o.arm = arm;
    o.request_id = absl::StrCat("r", seq_++);
    const int user = static_cast<int>(rng_() % 50);
    o.cluster = user;
    o.versions = {{"system_fingerprint", m.fingerprint}, {"model", m.model}};
    o.answered = true;
    o.ok = true;
    std::uniform_real_distribution<double> u(0, 1);
    o.refusal = u(rng_) < m.refusal_rate;
    const double base = 300 + 8 * user;  // users ask different things
    o.answer_chars = o.refusal ? 40 : (base + 60 * (u(rng_) - 0.5)) * m.length_factor;
    o.latency_ms = 200 + 100 * u(rng_);
    o.ttft_ms = 50 + 20 * u(rng_);
    o.cost = 0.001 * *o.answer_chars / 300;
    return o;
  }

  // Run feeds n answers and returns every event raised, with the index of
  // the answer that raised it.
  std::vector<std::pair<int, v1::DriftEvent>> Run(Watch& w, const Model& m, int n,
                                                  v1::Arm arm = v1::ARM_PRODUCTION) {
    std::vector<std::pair<int, v1::DriftEvent>> out;
    for (int i = 0; i < n; ++i) {
      WatchResult r = w.Observe(Next(m, arm));
      for (auto& b : r.baselines) baselines_.push_back(b);
      for (auto& e : r.events) out.emplace_back(i, e);
    }
    return out;
  }

  DriftConfig config_;
  std::mt19937_64 rng_{7};
  int seq_ = 0;
  std::vector<v1::DriftBaseline> baselines_;
};

// The baseline is frozen once, after baseline_requests answers, with every
// version seen and every behaviour metric.
TEST_F(WatchTest, FreezesOneBaselinePerArm) {
  Watch w(config_);
  Run(w, Model(), 250);
  ASSERT_EQ(baselines_.size(), 1u);
  const v1::DriftBaseline& b = baselines_[0];
  EXPECT_EQ(b.arm(), v1::ARM_PRODUCTION);
  ASSERT_EQ(b.versions_size(), 2);
  std::vector<std::string> metrics;
  for (const auto& m : b.metrics()) metrics.push_back(m.metric());
  EXPECT_THAT(metrics, ::testing::IsSupersetOf({"answer_chars", "refusal", "cost",
                                                "latency_over_p95", "ttft_over_p95"}));
  EXPECT_GT(b.latency_p95_ms(), 250);
}

// A/A: the same model for 2,000 answers per arm raises nothing.
TEST_F(WatchTest, AnAaRunRaisesNothing) {
  for (int seed = 1; seed <= 5; ++seed) {
    rng_.seed(seed);
    Watch w(config_);
    std::vector<std::pair<int, v1::DriftEvent>> prod = Run(w, Model(), 2000);
    std::vector<std::pair<int, v1::DriftEvent>> cand = Run(w, Model(), 2000, v1::ARM_CANDIDATE);
    for (const auto& [i, e] : prod) ADD_FAILURE() << "seed " << seed << ": " << e.detail();
    for (const auto& [i, e] : cand) ADD_FAILURE() << "seed " << seed << ": " << e.detail();
  }
}

// The fingerprint changes behind the same model name: one new-version event
// on that arm and dimension, after new_value_min_count answers, and no
// second alarm for the same change (no mix event either).
TEST_F(WatchTest, NewFingerprintRaisesOneEventWithinMinCount) {
  Watch w(config_);
  Run(w, Model(), 300);
  Model changed;
  changed.fingerprint = "fp_b";
  std::vector<std::pair<int, v1::DriftEvent>> ev = Run(w, changed, 600);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].first, config_.new_value_min_count - 1);
  const v1::DriftEvent& e = ev[0].second;
  EXPECT_EQ(e.kind(), v1::DRIFT_NEW_VERSION);
  EXPECT_EQ(e.arm(), v1::ARM_PRODUCTION);
  EXPECT_EQ(e.dimension(), "system_fingerprint");
  EXPECT_EQ(e.value(), "fp_b");
  EXPECT_THAT(e.known_values(), ::testing::ElementsAre("fp_a"));
}

// Two known fingerprints served 90/10 move to 40/60: a mix event.
TEST_F(WatchTest, ChangedMixOfKnownVersionsRaisesMixEvent) {
  config_.mix_window = 100;
  Watch w(config_);
  std::mt19937_64 pick(3);
  Model a, b;
  b.fingerprint = "fp_b";
  std::vector<v1::DriftEvent> events;
  for (int i = 0; i < 400; ++i) {
    for (auto& e : w.Observe(Next(pick() % 10 == 0 ? b : a)).events) events.push_back(e);
  }
  EXPECT_TRUE(events.empty()) << events[0].detail();
  int first = -1;
  for (int i = 0; i < 400 && first < 0; ++i) {
    for (auto& e : w.Observe(Next(pick() % 10 < 6 ? b : a)).events) {
      events.push_back(e);
      first = i;
    }
  }
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind(), v1::DRIFT_VERSION_MIX);
  EXPECT_GE(events[0].distance(), 0.25);
  EXPECT_LE(first, 100);
}

// Answers 30% shorter with more refusals: behaviour events for answer
// length and refusals within a bounded number of answers, with effects.
TEST_F(WatchTest, ShorterAnswersAndMoreRefusalsRaiseBehaviourEvents) {
  Watch w(config_);
  Run(w, Model(), 300);
  Model worse;
  worse.length_factor = 0.7;
  worse.refusal_rate = 0.25;
  std::vector<std::pair<int, v1::DriftEvent>> ev = Run(w, worse, 800);
  std::map<std::string, std::pair<int, v1::DriftEvent>> by_metric;
  for (const auto& [i, e] : ev) {
    EXPECT_EQ(e.kind(), v1::DRIFT_BEHAVIOUR);
    EXPECT_FALSE(by_metric.count(e.dimension())) << "raised twice: " << e.dimension();
    by_metric.emplace(e.dimension(), std::make_pair(i, e));
  }
  ASSERT_TRUE(by_metric.count("answer_chars"));
  ASSERT_TRUE(by_metric.count("refusal"));
  const v1::DriftEvent& len = by_metric["answer_chars"].second;
  EXPECT_LT(len.effect(), 0);
  EXPECT_LT(len.effect_upper(), 0);
  EXPECT_NEAR(len.relative_effect(), -0.3, 0.12);
  EXPECT_LE(by_metric["answer_chars"].first, 500);
  const v1::DriftEvent& ref = by_metric["refusal"].second;
  EXPECT_GT(ref.effect_lower(), 0);
  EXPECT_LE(by_metric["refusal"].first, 800);
}

// After a restart the stored baseline and events are restored: the same
// fingerprint does not alarm again, a newer one does.
TEST_F(WatchTest, RestoredBaselineAndEventsSurviveRestart) {
  Model changed;
  changed.fingerprint = "fp_b";
  std::vector<v1::DriftEvent> stored;
  {
    Watch w(config_);
    Run(w, Model(), 250);
    for (auto& [i, e] : Run(w, changed, 10)) stored.push_back(e);
  }
  ASSERT_EQ(baselines_.size(), 1u);
  ASSERT_EQ(stored.size(), 1u);
  Watch restarted(config_);
  restarted.RestoreBaseline(baselines_[0]);
  for (const auto& e : stored) restarted.RestoreEvent(e);
  EXPECT_TRUE(Run(restarted, changed, 50).empty());
  Model newer;
  newer.fingerprint = "fp_c";
  std::vector<std::pair<int, v1::DriftEvent>> ev = Run(restarted, newer, 10);
  ASSERT_EQ(ev.size(), 1u);
  EXPECT_EQ(ev[0].second.value(), "fp_c");
  EXPECT_EQ(baselines_.size(), 1u);  // not frozen again
}

// The mixture interval narrows as the variance shrinks and is wider at a
// smaller alpha.
TEST(MixtureHalfWidthTest, NarrowsWithDataAndWidensWithConfidence) {
  EXPECT_GT(MixtureHalfWidth(1.0, 1.0, 0.05), MixtureHalfWidth(0.1, 1.0, 0.05));
  EXPECT_GT(MixtureHalfWidth(0.1, 1.0, 0.001), MixtureHalfWidth(0.1, 1.0, 0.05));
  EXPECT_EQ(MixtureHalfWidth(0, 1.0, 0.05), 0);
}

}  // namespace
}  // namespace understudy::drift
