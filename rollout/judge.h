// rollout/judge.h (internal to rollout/)
// The judge: evaluates each enabled gate on the evidence (pass, fail or
// inconclusive, with its statistic, clusters and design effect) and gives
// the overall verdict. It knows nothing of phases, stages, bake time or
// transitions: the controller (controller.cc) is the state machine that
// acts on the verdict. The method is in rollout.h ("The judge") and
// docs/statistics.md; the per-bucket windows and contrasts are in
// evidence.h, the sequential boundaries in stats.h.
//
// Every gate tests one contrast ("larger is worse") with two one-sided
// always-valid normal-mixture bounds on its cluster-robust estimate:
//   fail  when  estimate − radius(v, τ, alpha_gate) > tolerated
//   pass  when  estimate + radius(v, τ, beta)       < must_catch
//   otherwise inconclusive,
// where v is the cluster-robust variance (never below the independent-
// requests one) and τ, the mixture's scale, is the distance between the two
// (the effect the gate is tuned to catch). A gate with fewer than
// min_clusters buckets or min_samples observations in an arm is
// inconclusive for want of data.
//
// Thread-compatible: the controller calls a Judge under its locks.
#ifndef UNDERSTUDY_ROLLOUT_JUDGE_H_
#define UNDERSTUDY_ROLLOUT_JUDGE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "rollout/evidence.h"
#include "rollout/rollout.h"
#include "understudy/v1/rollout.pb.h"

namespace understudy::rollout {

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
  std::vector<std::string> failed;      // "gate (detail)" for each failed gate
  std::vector<std::string> waiting;     // required gates inconclusive with enough data
  // Of those, the gates that must pass in this stage whatever the plan
  // says (agreement in the shadow stage: it is judged nowhere else).
  std::vector<std::string> waiting_here;
  // Required gates inconclusive for want of data, with what they need:
  // "error_rate: 12 more candidate clusters".
  std::vector<std::string> needs_data;
  // An error gate (error_rate or critical's error rule) failed, so the
  // candidate's failing requests are evidence for the rollback.
  bool error_gate_failed = false;
};

class Judge {
 public:
  // `config` must outlive the judge.
  explicit Judge(const RolloutConfig& config);

  // Evaluate judges `evidence` with the candidate judged on `traffic`, then
  // updates the evidence's latency thresholds (from production's quantile)
  // and the gates' running maxima (their anytime-valid p-values).
  JudgeVerdict Evaluate(Evidence& evidence, CandidateTraffic traffic, absl::Time now);

  // gate_alpha is each sequential gate's false-rollback budget over the
  // whole plan: alpha split evenly over the enabled sequential gates
  // (error_rate, latency_p95, ttft_p95, satisfaction, cost_per_request,
  // agreement).
  double gate_alpha() const { return gate_alpha_; }

 private:
  const RolloutConfig& config_;
  const double gate_alpha_;
};

}  // namespace understudy::rollout

#endif  // UNDERSTUDY_ROLLOUT_JUDGE_H_
