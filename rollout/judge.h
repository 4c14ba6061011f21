// rollout/judge.h (internal to rollout/)
// The judge: evaluates each enabled gate on the health windows (pass, fail
// or inconclusive, with its statistic and evidence) and gives the overall
// verdict. It knows nothing of phases, stages, bake time or transitions:
// the controller (controller.cc) is the state machine that acts on the
// verdict. The gates and their tests are described in rollout.h ("The
// judge"); the statistics are in stats.h.
//
// Thread-compatible: the controller calls a Judge under its command lock.
#ifndef UNDERSTUDY_ROLLOUT_JUDGE_H_
#define UNDERSTUDY_ROLLOUT_JUDGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "rollout/health.h"
#include "rollout/rollout.h"
#include "understudy/v1/rollout.pb.h"

namespace understudy::rollout {

// Which traffic the candidate is judged on.
enum class CandidateTraffic {
  kLive,    // a canary stage: live requests the router sent to the candidate
  kShadow,  // the shadow stage: shadow calls (the candidate serves no users)
};

// The evidence for one evaluation. The referenced windows must outlive the
// Evaluate call.
struct JudgeInput {
  CandidateTraffic traffic;
  const ArmWindow& production;      // live production requests since stage start
  const ArmWindow& candidate;       // the judged candidate traffic since stage start
  const Counters& candidate_recent;  // the same traffic in the recent window
  const Counters& shadow;           // shadow calls since stage start (their comparisons)
};

// The judge's overall verdict on one evaluation.
struct JudgeVerdict {
  // GATE_FAIL if any gate failed; otherwise GATE_INCONCLUSIVE if a required
  // gate is inconclusive; otherwise GATE_PASS. A pass says nothing of bake
  // time or sample counts: those are the stage's, checked by the controller.
  understudy::v1::GateOutcome outcome = understudy::v1::GATE_UNSPECIFIED;
  // Every enabled gate's evaluation, in this order: critical, error_rate,
  // latency_p95, ttft_p95, satisfaction (not in the shadow stage),
  // cost_per_request, agreement.
  std::vector<understudy::v1::GateEvaluation> gates;
  std::vector<std::string> failed;   // "gate (detail)" for each failed gate
  std::vector<std::string> waiting;  // the required gates still inconclusive
  // An error gate (error_rate or critical) failed, so the candidate's
  // failing requests are evidence for the rollback.
  bool error_gate_failed = false;
};

// Judge holds the one piece of state the gates need across evaluations:
// the error-rate SPRT, accumulated over the whole rollout (rollout.h). Every
// other gate is a function of the windows it is given.
class Judge {
 public:
  // `config` must outlive the judge.
  explicit Judge(const RolloutConfig& config);

  // Evaluate judges `input`. The windows are cumulative since the stage
  // started; the error-rate test adds the requests counted since the
  // previous Evaluate (or StartStage), so call it once per judge tick.
  JudgeVerdict Evaluate(const JudgeInput& input);

  // StartStage tells the judge the windows restarted empty (a new stage, or
  // a fresh bake clock): the error-rate test keeps its rollout-wide log-LR
  // and starts the stage's share of it from here.
  void StartStage();

  // RestartErrorTest starts the rollout-wide error-rate test over from zero
  // (a retry after rollback, or the judge stepping one stage back). Call
  // StartStage too when the windows restart.
  void RestartErrorTest();

  // StageAlpha is the false-rollback budget of one stage's tests: alpha
  // split evenly over the judged stages (those below 100%).
  double stage_alpha() const { return stage_alpha_; }

 private:
  // ErrorRate evaluates the error_rate gate (always required) and folds the
  // new requests into the test.
  understudy::v1::GateEvaluation ErrorRate(const Counters& production,
                                           const Counters& candidate);

  const RolloutConfig& config_;
  const double stage_alpha_;
  // The error-rate SPRT: running log-LR over the rollout, its maximum, and
  // its value when the current stage started.
  double error_llr_ = 0;
  double error_llr_max_ = 0;
  double error_llr_stage_start_ = 0;
  // Counters already folded into error_llr_ (the windows are cumulative).
  int64_t seen_cand_n_ = 0, seen_cand_e_ = 0;
  int64_t seen_prod_n_ = 0, seen_prod_e_ = 0;
  // H1's rate ratio, fixed before each batch (predictable: keeps the
  // product a martingale under H0); 0 until the first evaluation.
  double error_r1_ = 0;
};

}  // namespace understudy::rollout

#endif  // UNDERSTUDY_ROLLOUT_JUDGE_H_
