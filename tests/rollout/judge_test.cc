// The judge on its own: gate evaluations and the overall verdict from
// hand-built windows, without the controller's state machine.
#include "rollout/judge.h"

#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace understudy::rollout {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using understudy::v1::GATE_FAIL;
using understudy::v1::GATE_INCONCLUSIVE;
using understudy::v1::GATE_PASS;
using understudy::v1::GateEvaluation;

class JudgeTest : public ::testing::Test {
 protected:
  // Adds `n` requests to `w`, `errors` of them 5xx, with lognormal
  // latencies around `latency_ms` (TTFT a quarter of it).
  void Fill(ArmWindow& w, int n, int errors, double latency_ms = 800) {
    std::lognormal_distribution<double> latency(std::log(latency_ms), 0.5);
    for (int i = 0; i < n; ++i) {
      Outcome o;
      o.status = i < errors ? OutcomeClass::kServerError : OutcomeClass::kOk;
      o.latency = absl::Milliseconds(latency(rng_));
      o.ttft = *o.latency / 4;
      w.Add(o);
    }
  }

  JudgeVerdict Evaluate(Judge& judge, CandidateTraffic traffic = CandidateTraffic::kLive) {
    return judge.Evaluate(JudgeInput{traffic, prod_, cand_, cand_.c, shadow_.c});
  }

  static const GateEvaluation* Gate(const JudgeVerdict& v, const std::string& name) {
    for (const GateEvaluation& g : v.gates) {
      if (g.gate() == name) return &g;
    }
    return nullptr;
  }

  RolloutConfig config_;
  ArmWindow prod_, cand_, shadow_;
  std::mt19937_64 rng_{7};
};

// A candidate failing 10% of requests against production's 1%: the
// error-rate gate fails and the verdict is a failure with error evidence.
TEST_F(JudgeTest, ClearErrorRateRegressionFailsTheGate) {
  Fill(prod_, 10000, 100);
  Fill(cand_, 2000, 200);
  Judge judge(config_);
  JudgeVerdict v = Evaluate(judge);
  const GateEvaluation* g = Gate(v, "error_rate");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->outcome(), GATE_FAIL) << g->detail();
  EXPECT_GE(g->statistic_value(), g->bound());
  EXPECT_NEAR(g->candidate_value(), 0.1, 1e-12);
  EXPECT_NEAR(g->production_value(), 0.01, 1e-12);
  EXPECT_EQ(g->candidate_samples(), 2000);
  EXPECT_EQ(v.outcome, GATE_FAIL);
  EXPECT_TRUE(v.error_gate_failed);
  ASSERT_EQ(v.failed.size(), 1u);
  EXPECT_THAT(v.failed[0], HasSubstr("error_rate ("));
}

// Too few requests for any test: inconclusive gates that block promotion,
// and no failure.
TEST_F(JudgeTest, TooFewSamplesIsInconclusive) {
  Fill(prod_, 40, 0);
  Fill(cand_, 5, 0);
  Judge judge(config_);
  JudgeVerdict v = Evaluate(judge);
  EXPECT_EQ(v.outcome, GATE_INCONCLUSIVE);
  EXPECT_THAT(v.failed, IsEmpty());
  EXPECT_FALSE(v.error_gate_failed);
  EXPECT_THAT(v.waiting, Contains("error_rate"));
  EXPECT_THAT(v.waiting, Contains("latency_p95"));
  EXPECT_THAT(v.waiting, Contains("ttft_p95"));
  EXPECT_THAT(Gate(v, "error_rate")->detail(), HasSubstr("insufficient data"));
  EXPECT_THAT(Gate(v, "latency_p95")->detail(), HasSubstr("need 50 per arm"));
  // No feedback and no cost data: inconclusive, but not required by default.
  EXPECT_EQ(Gate(v, "satisfaction")->outcome(), GATE_INCONCLUSIVE);
  EXPECT_THAT(v.waiting, ::testing::Not(Contains("satisfaction")));
}

// Two arms drawn from the same distribution: every required gate passes.
TEST_F(JudgeTest, IdenticalArmsPass) {
  Fill(prod_, 20000, 200);
  Fill(cand_, 5000, 50);
  Judge judge(config_);
  JudgeVerdict v = Evaluate(judge);
  EXPECT_EQ(v.outcome, GATE_PASS) << ::testing::PrintToString(v.waiting);
  EXPECT_THAT(v.failed, IsEmpty());
  for (const char* gate : {"critical", "error_rate", "latency_p95", "ttft_p95", "agreement"}) {
    const GateEvaluation* g = Gate(v, gate);
    ASSERT_NE(g, nullptr) << gate;
    EXPECT_EQ(g->outcome(), GATE_PASS) << gate << ": " << g->detail();
  }
}

// Gates come in a fixed order; disabled gates are left out; satisfaction
// is not judged in the shadow stage, where agreement is required.
TEST_F(JudgeTest, GateSetDependsOnConfigAndTraffic) {
  Judge judge(config_);
  JudgeVerdict live = Evaluate(judge);
  std::vector<std::string> names;
  for (const GateEvaluation& g : live.gates) names.push_back(g.gate());
  EXPECT_THAT(names, ::testing::ElementsAre("critical", "error_rate", "latency_p95", "ttft_p95",
                                            "satisfaction", "cost_per_request", "agreement"));
  EXPECT_EQ(Gate(live, "agreement")->outcome(), GATE_PASS);  // not required in canary stages

  JudgeVerdict shadow = Evaluate(judge, CandidateTraffic::kShadow);
  EXPECT_EQ(Gate(shadow, "satisfaction"), nullptr);
  EXPECT_EQ(Gate(shadow, "agreement")->outcome(), GATE_INCONCLUSIVE);
  EXPECT_THAT(shadow.waiting, Contains("agreement"));

  config_.latency.enabled = false;
  config_.agreement.enabled = false;
  Judge fewer(config_);
  JudgeVerdict v = Evaluate(fewer);
  EXPECT_EQ(Gate(v, "latency_p95"), nullptr);
  EXPECT_EQ(Gate(v, "agreement"), nullptr);
}

// The error-rate test counts each request once however often it runs, and
// starts over on RestartErrorTest.
TEST_F(JudgeTest, ErrorRateTestAccumulatesOnlyNewRequests) {
  Fill(prod_, 5000, 50);
  Fill(cand_, 1000, 30);
  Judge judge(config_);
  double first = Gate(Evaluate(judge), "error_rate")->statistic_value();
  EXPECT_NE(first, 0);
  // Same cumulative windows: nothing new to add.
  double again = Gate(Evaluate(judge), "error_rate")->statistic_value();
  EXPECT_DOUBLE_EQ(again, first);
  // A new stage keeps the rollout-wide statistic (the windows restart, so
  // the same counts here are new requests and add to it).
  judge.StartStage();
  EXPECT_GT(Gate(Evaluate(judge), "error_rate")->statistic_value(), first);
  judge.RestartErrorTest();
  judge.StartStage();
  EXPECT_DOUBLE_EQ(Gate(Evaluate(judge), "error_rate")->statistic_value(), first);
}

// Alpha is split evenly over the stages below 100% (Bonferroni).
TEST_F(JudgeTest, StageAlphaSplitsAlphaOverJudgedStages) {
  config_.alpha = 0.02;
  config_.stages = {{0}, {10}, {50}, {100}};
  EXPECT_DOUBLE_EQ(Judge(config_).stage_alpha(), 0.02 / 3);
}

}  // namespace
}  // namespace understudy::rollout
