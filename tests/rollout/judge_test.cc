// The judge on its own: gate evaluations and the overall verdict from
// hand-built evidence, without the controller's state machine.
#include "rollout/judge.h"

#include <cmath>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "rollout/evidence.h"

namespace understudy::rollout {
namespace {

using ::testing::Contains;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using understudy::v1::ARM_CANDIDATE;
using understudy::v1::ARM_PRODUCTION;
using understudy::v1::GATE_FAIL;
using understudy::v1::GATE_INCONCLUSIVE;
using understudy::v1::GATE_PASS;
using understudy::v1::GateEvaluation;

const absl::Time kNow = absl::FromUnixSeconds(1700000000);
// Production's p95 for lognormal(800 ms, σ 0.5) latencies.
const double kP95 = 800 * std::exp(1.6448536 * 0.5);

class JudgeTest : public ::testing::Test {
 protected:
  // Adds `n` requests to `arm`, `errors` of them 5xx (the first ones), with
  // lognormal latencies around `latency_ms` (TTFT a quarter of it). Request
  // i goes to bucket bucket(i); by default every request is its own
  // cluster (buckets spread over the arm's half of the bucket space).
  void Fill(Evidence& ev, understudy::v1::Arm arm, int n, int errors, double latency_ms = 800,
            std::function<int32_t(int)> bucket = nullptr) {
    std::lognormal_distribution<double> latency(std::log(latency_ms), 0.5);
    std::uniform_int_distribution<int32_t> any(arm == ARM_CANDIDATE ? 0 : 5000,
                                               arm == ARM_CANDIDATE ? 4999 : 9999);
    for (int i = 0; i < n; ++i) {
      Outcome o;
      o.status = i < errors ? OutcomeClass::kServerError : OutcomeClass::kOk;
      o.latency = absl::Milliseconds(latency(rng_));
      o.ttft = *o.latency / 4;
      ev.AddOutcome(arm, o, bucket ? bucket(i) : any(rng_), kNow);
    }
  }

  JudgeVerdict Evaluate(Judge& judge, Evidence& ev,
                        CandidateTraffic traffic = CandidateTraffic::kLive) {
    return judge.Evaluate(ev, traffic, kNow);
  }

  static const GateEvaluation* Gate(const JudgeVerdict& v, const std::string& name) {
    for (const GateEvaluation& g : v.gates) {
      if (g.gate() == name) return &g;
    }
    return nullptr;
  }
  // A pointer into a temporary verdict dangles: hold the verdict first.
  static const GateEvaluation* Gate(JudgeVerdict&& v, const std::string& name) = delete;

  Evidence Fresh() {
    Evidence ev(config_);
    ev.SetThresholds(kP95, kP95 / 4);
    return ev;
  }

  RolloutConfig config_;
  std::mt19937_64 rng_{7};
};

// A candidate failing 10% of requests against production's 1%: the
// error-rate gate fails, with clusters and a design effect near 1 for
// independent requests, and the verdict is a failure with error evidence.
TEST_F(JudgeTest, ClearErrorRateRegressionFailsTheGate) {
  Evidence ev = Fresh();
  Fill(ev, ARM_PRODUCTION, 10000, 100);
  Fill(ev, ARM_CANDIDATE, 2000, 200);
  Judge judge(config_);
  JudgeVerdict v = Evaluate(judge, ev);
  const GateEvaluation* g = Gate(v, "error_rate");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->outcome(), GATE_FAIL) << g->detail();
  EXPECT_GE(g->statistic_value(), g->bound());
  EXPECT_GT(g->effect_lower(), g->tolerated());
  EXPECT_NEAR(g->candidate_value(), 0.1, 1e-9);
  EXPECT_NEAR(g->production_value(), 0.01, 1e-9);
  EXPECT_EQ(g->candidate_samples(), 2000);
  EXPECT_GT(g->candidate_clusters(), 1000);
  EXPECT_GT(g->production_clusters(), 3000);
  EXPECT_NEAR(g->design_effect(), 1.0, 0.3);
  EXPECT_EQ(v.outcome, GATE_FAIL);
  EXPECT_TRUE(v.error_gate_failed);
  // 10x production's rate is also above the critical gate's 2x.
  ASSERT_EQ(v.failed.size(), 2u);
  EXPECT_THAT(v.failed[0], HasSubstr("critical ("));
  EXPECT_THAT(v.failed[1], HasSubstr("error_rate ("));
}

// The A/A: errors cluster by user (a few users fail every time) and
// the candidate arm happens to hold more of them. Counted as independent
// requests the candidate looks twice as bad; counted by routing bucket it
// is what it is, an unlucky draw of a few users, and nothing fails.
TEST_F(JudgeTest, ClusteredErrorsOfAFewUsersAreNotARegression) {
  auto run = [&](bool by_bucket) {
    Evidence ev = Fresh();
    int unclustered = 0;
    // 200 candidate users and 2000 production users, 50 requests each; 6
    // candidate and 20 production users fail every request, the others 1%.
    auto add = [&](understudy::v1::Arm arm, int users, int failing, int32_t first) {
      for (int u = 0; u < users; ++u) {
        int32_t bucket = first + u;
        int errors = u < failing ? 50 : (u % 2 == 0 ? 1 : 0);
        Fill(ev, arm, 50, errors, 800, [&](int) {
          return by_bucket ? bucket : (unclustered++ * 7919) % kBucketCount;
        });
      }
    };
    add(ARM_CANDIDATE, 200, 6, 0);
    add(ARM_PRODUCTION, 2000, 20, 1000);
    Judge judge(config_);
    return Evaluate(judge, ev);
  };
  JudgeVerdict naive = run(false);
  EXPECT_EQ(Gate(naive, "error_rate")->outcome(), GATE_FAIL) << Gate(naive, "error_rate")->detail();
  JudgeVerdict clustered = run(true);
  const GateEvaluation* g = Gate(clustered, "error_rate");
  EXPECT_NE(g->outcome(), GATE_FAIL) << g->detail();
  EXPECT_GT(g->candidate_value(), 1.8 * g->production_value());
  EXPECT_GT(g->design_effect(), 5) << g->detail();
  EXPECT_EQ(g->candidate_clusters(), 200);
  EXPECT_EQ(g->production_clusters(), 2000);
  EXPECT_NE(Gate(clustered, "critical")->outcome(), GATE_FAIL);
}

// Too few clusters for any test: inconclusive gates that say what they
// need, and no failure.
TEST_F(JudgeTest, TooFewSamplesIsInconclusive) {
  Evidence ev = Fresh();
  Fill(ev, ARM_PRODUCTION, 40, 0);
  Fill(ev, ARM_CANDIDATE, 5, 0);
  Judge judge(config_);
  JudgeVerdict v = Evaluate(judge, ev);
  EXPECT_EQ(v.outcome, GATE_INCONCLUSIVE);
  EXPECT_THAT(v.failed, IsEmpty());
  EXPECT_FALSE(v.error_gate_failed);
  EXPECT_THAT(v.waiting, IsEmpty());
  ASSERT_FALSE(v.needs_data.empty());
  EXPECT_THAT(v.needs_data[0], HasSubstr("error_rate: 15 more candidate clusters"));
  EXPECT_THAT(Gate(v, "error_rate")->detail(), HasSubstr("insufficient data"));
  EXPECT_THAT(Gate(v, "latency_p95")->detail(), HasSubstr("more candidate clusters"));
  // No feedback and no cost data: inconclusive, but not required by default.
  EXPECT_EQ(Gate(v, "satisfaction")->outcome(), GATE_INCONCLUSIVE);
  for (const std::string& n : v.needs_data) EXPECT_THAT(n, ::testing::Not(HasSubstr("satisfaction")));
}

// Two arms drawn from the same distribution: every required gate passes.
TEST_F(JudgeTest, IdenticalArmsPass) {
  Evidence ev = Fresh();
  Fill(ev, ARM_PRODUCTION, 20000, 200);
  Fill(ev, ARM_CANDIDATE, 5000, 50);
  Judge judge(config_);
  JudgeVerdict v = Evaluate(judge, ev);
  EXPECT_EQ(v.outcome, GATE_PASS) << ::testing::PrintToString(v.waiting)
                                  << ::testing::PrintToString(v.needs_data);
  EXPECT_THAT(v.failed, IsEmpty());
  for (const char* gate : {"critical", "error_rate", "latency_p95", "ttft_p95", "agreement"}) {
    const GateEvaluation* g = Gate(v, gate);
    ASSERT_NE(g, nullptr) << gate;
    EXPECT_EQ(g->outcome(), GATE_PASS) << gate << ": " << g->detail();
  }
  EXPECT_LT(Gate(v, "error_rate")->effect_upper(), Gate(v, "error_rate")->must_catch());
}

// Neither arm fails at all: the rate ratio has no finite variance, yet the
// gate must decide (else the rollout holds until max bake). With enough
// error-free candidate clusters it passes; with a handful it waits.
TEST_F(JudgeTest, ErrorFreeArmsPassOnceTheCandidateHasEnoughClusters) {
  Evidence ev = Fresh();
  Fill(ev, ARM_PRODUCTION, 20000, 0);
  Fill(ev, ARM_CANDIDATE, 5000, 0);
  Judge judge(config_);
  const GateEvaluation* g = nullptr;
  JudgeVerdict v = Evaluate(judge, ev);
  g = Gate(v, "error_rate");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->outcome(), GATE_PASS) << g->detail();
  EXPECT_THAT(g->detail(), ::testing::HasSubstr("no candidate errors"));

  Evidence few = Fresh();
  Fill(few, ARM_PRODUCTION, 20000, 0);
  Fill(few, ARM_CANDIDATE, 400, 0, 800, [](int i) { return i % 40; });  // 40 users
  JudgeVerdict w = Evaluate(judge, few);
  g = Gate(w, "error_rate");
  ASSERT_NE(g, nullptr);
  EXPECT_EQ(g->outcome(), GATE_INCONCLUSIVE) << g->detail();
}

// The seeds mean what they say: a candidate whose p95 is exactly 1.5x
// production's (the must-catch ratio) fails, however much data there is;
// one as fast as production passes.
TEST_F(JudgeTest, LatencyAtTheMustCatchRatioFailsAndEqualPasses) {
  for (double factor : {1.5, 1.0}) {
    Evidence ev = Fresh();
    Fill(ev, ARM_PRODUCTION, 20000, 0);
    Fill(ev, ARM_CANDIDATE, 3000, 0, 800 * factor);
    Judge judge(config_);
    const JudgeVerdict v = Evaluate(judge, ev);
    const GateEvaluation* g = Gate(v, "latency_p95");
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(g->outcome(), factor > 1 ? GATE_FAIL : GATE_PASS) << factor << ": " << g->detail();
    EXPECT_NEAR(g->candidate_value() / g->production_value(), factor, 0.1);
    EXPECT_NEAR(g->threshold(), 1.5 * g->production_value(), 1e-9);
  }
}

// Satisfaction: a 0.1 drop (max_drop, the must-catch) fails; none passes.
TEST_F(JudgeTest, SatisfactionDropAtMaxDropFails) {
  for (double drop : {0.1, 0.0}) {
    Evidence ev = Fresh();
    Fill(ev, ARM_PRODUCTION, 20000, 0);
    Fill(ev, ARM_CANDIDATE, 5000, 0);
    std::uniform_real_distribution<double> u(0, 1);
    for (int i = 0; i < 20000; ++i) {
      ev.AddFeedback(ARM_PRODUCTION, u(rng_) < 0.8 ? 1 : 0, 5000 + i % 5000, kNow);
    }
    for (int i = 0; i < 5000; ++i) {
      ev.AddFeedback(ARM_CANDIDATE, u(rng_) < 0.8 - drop ? 1 : 0, i % 5000, kNow);
    }
    Judge judge(config_);
    JudgeVerdict v = Evaluate(judge, ev);
    const GateEvaluation* g = Gate(v, "satisfaction");
    EXPECT_EQ(g->outcome(), drop > 0 ? GATE_FAIL : GATE_PASS) << drop << ": " << g->detail();
    EXPECT_NEAR(g->effect(), drop, 0.03);
    EXPECT_DOUBLE_EQ(g->must_catch(), 0.1);
    EXPECT_DOUBLE_EQ(g->tolerated(), 0.0);
  }
}

// Gates come in a fixed order; disabled gates are left out; satisfaction
// is not judged in the shadow stage, where agreement is required.
TEST_F(JudgeTest, GateSetDependsOnConfigAndTraffic) {
  Evidence ev = Fresh();
  Judge judge(config_);
  JudgeVerdict live = Evaluate(judge, ev);
  std::vector<std::string> names;
  for (const GateEvaluation& g : live.gates) names.push_back(g.gate());
  EXPECT_THAT(names, ::testing::ElementsAre("critical", "error_rate", "latency_p95", "ttft_p95",
                                            "satisfaction", "cost_per_request", "agreement"));
  EXPECT_EQ(Gate(live, "agreement")->outcome(), GATE_PASS);  // not required in canary stages

  JudgeVerdict shadow = Evaluate(judge, ev, CandidateTraffic::kShadow);
  EXPECT_EQ(Gate(shadow, "satisfaction"), nullptr);
  EXPECT_EQ(Gate(shadow, "agreement")->outcome(), GATE_INCONCLUSIVE);
  bool agreement_needs_data = false;
  for (const std::string& n : shadow.needs_data) agreement_needs_data |= n.rfind("agreement", 0) == 0;
  EXPECT_TRUE(agreement_needs_data);

  config_.latency.enabled = false;
  config_.agreement.enabled = false;
  Judge fewer(config_);
  JudgeVerdict v = Evaluate(fewer, ev);
  EXPECT_EQ(Gate(v, "latency_p95"), nullptr);
  EXPECT_EQ(Gate(v, "agreement"), nullptr);
}

// The evidence runs across stages: a new stage folds the old one in as a
// stratum (the estimate keeps its evidence), and Restart drops it.
TEST_F(JudgeTest, EvidenceCarriesAcrossStagesAndRestartsOnRequest) {
  Evidence ev = Fresh();
  Fill(ev, ARM_PRODUCTION, 5000, 50);
  Fill(ev, ARM_CANDIDATE, 1000, 30);
  Judge judge(config_);
  const JudgeVerdict first_verdict = Evaluate(judge, ev);
  const GateEvaluation first = *Gate(first_verdict, "error_rate");
  // Evaluating again adds nothing.
  const JudgeVerdict again_verdict = Evaluate(judge, ev);
  const GateEvaluation again = *Gate(again_verdict, "error_rate");
  EXPECT_DOUBLE_EQ(again.effect(), first.effect());
  EXPECT_DOUBLE_EQ(again.effect_se(), first.effect_se());
  // A new stage: the same data arrive again and count as new evidence.
  ev.FoldStage(CandidateTraffic::kLive);
  EXPECT_EQ(ev.window(EvidenceArm::kCandidate).c.requests, 0);
  const JudgeVerdict folded_verdict = Evaluate(judge, ev);
  const GateEvaluation folded = *Gate(folded_verdict, "error_rate");
  EXPECT_NEAR(folded.effect(), first.effect(), 1e-9);
  EXPECT_EQ(folded.candidate_samples(), 1000);
  Fill(ev, ARM_PRODUCTION, 5000, 50);
  Fill(ev, ARM_CANDIDATE, 1000, 30);
  const JudgeVerdict more_verdict = Evaluate(judge, ev);
  const GateEvaluation more = *Gate(more_verdict, "error_rate");
  EXPECT_EQ(more.candidate_samples(), 2000);
  EXPECT_LT(more.effect_se(), first.effect_se());
  ev.Restart();
  const JudgeVerdict restarted = Evaluate(judge, ev);
  EXPECT_EQ(Gate(restarted, "error_rate")->candidate_samples(), 0);
}

// Alpha is the whole plan's false-rollback budget, split evenly over the
// enabled sequential gates (critical is outside it).
TEST_F(JudgeTest, GateAlphaSplitsAlphaOverSequentialGates) {
  config_.alpha = 0.012;
  EXPECT_DOUBLE_EQ(Judge(config_).gate_alpha(), 0.012 / 6);
  config_.cost.enabled = false;
  config_.critical.enabled = false;
  EXPECT_DOUBLE_EQ(Judge(config_).gate_alpha(), 0.012 / 5);
}

// The critical gate compares the candidate's recent error rate with
// production's in the same window: a shared outage that fails both arms is
// no reason to roll back; a candidate failing alone is.
TEST_F(JudgeTest, CriticalIgnoresASharedOutageButCatchesACandidateFailingAlone) {
  for (bool shared : {true, false}) {
    Evidence ev = Fresh();
    Fill(ev, ARM_PRODUCTION, 9000, shared ? 8000 : 90);
    Fill(ev, ARM_CANDIDATE, 1000, shared ? 890 : 500);
    Judge judge(config_);
    const JudgeVerdict v = Evaluate(judge, ev);
    const GateEvaluation* g = Gate(v, "critical");
    ASSERT_NE(g, nullptr);
    EXPECT_EQ(g->outcome(), shared ? GATE_PASS : GATE_FAIL) << g->detail();
  }
}

}  // namespace
}  // namespace understudy::rollout
