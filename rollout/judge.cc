// The judge: gate evaluations and the overall verdict (see judge.h).
#include "rollout/judge.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "rollout/stats.h"

namespace understudy::rollout {

namespace {

using understudy::v1::GateEvaluation;

// One gate's evaluation, and whether an inconclusive outcome blocks
// promotion (a gate that is not required may stay inconclusive).
struct GateResult {
  GateEvaluation eval;
  bool required = true;
};

GateEvaluation NewEval(const char* name) {
  GateEvaluation e;
  e.set_gate(name);
  return e;
}

// MeanEval starts the evaluation of a gate on two arms' means (satisfaction,
// cost): samples, means, threshold and the statistic's name.
GateEvaluation MeanEval(const char* name, const Moments& p, const Moments& c, double threshold,
                        const char* statistic) {
  GateEvaluation e = NewEval(name);
  e.set_production_samples(p.n);
  e.set_candidate_samples(c.n);
  e.set_production_value(p.Mean());
  e.set_candidate_value(c.Mean());
  e.set_threshold(threshold);
  e.set_statistic(statistic);
  return e;
}

double ComputeStageAlpha(const RolloutConfig& config) {
  int judged_stages = 0;
  for (const StageConfig& s : config.stages) judged_stages += s.percent < 100 ? 1 : 0;
  judged_stages = std::max(1, judged_stages);
  return config.alpha / judged_stages;
}

// latency_p95 / ttft_p95: SPRT on the fraction of candidate requests slower
// than max_ratio × production's quantile.
GateResult QuantileGateEval(const char* name, const QuantileGate& g, const LogHistogram& p,
                            const LogHistogram& c, double stage_alpha, double beta) {
  GateResult r;
  GateEvaluation& e = r.eval;
  e = NewEval(name);
  e.set_production_samples(p.count());
  e.set_candidate_samples(c.count());
  e.set_statistic("sprt_log_lr_fraction_above");
  if (p.count() == 0 && c.count() == 0) {
    e.set_outcome(understudy::v1::GATE_PASS);
    e.set_detail("no timings recorded; not judged");
    return r;
  }
  if (p.count() < g.min_samples || c.count() < g.min_samples) {
    e.set_outcome(understudy::v1::GATE_INCONCLUSIVE);
    e.set_detail(absl::StrCat("insufficient data: need ", g.min_samples, " per arm"));
    return r;
  }
  double pq = p.Quantile(g.quantile);
  double threshold = g.max_ratio * pq;
  int64_t k = c.CountAbove(threshold);
  double p0 = 1 - g.quantile, p1 = p0 + g.margin;
  double llr = BernoulliSprtLlr(k, c.count(), p0, p1);
  double bound = std::log(1 / stage_alpha);
  double accept = std::log(beta / (1 - stage_alpha));
  e.set_production_value(pq);
  e.set_candidate_value(c.Quantile(g.quantile));
  e.set_threshold(threshold);
  e.set_statistic_value(llr);
  e.set_bound(bound);
  e.set_p_value(std::min(1.0, std::exp(-llr)));
  e.set_detail(absl::StrFormat(
      "%d of %d candidate requests (%.2f%%) slower than %.1f ms = %.2f x production p%.0f; "
      "H0 %.3f vs H1 %.3f",
      k, c.count(), 100.0 * k / c.count(), threshold, g.max_ratio, g.quantile * 100, p0, p1));
  e.set_outcome(llr >= bound    ? understudy::v1::GATE_FAIL
                : llr <= accept ? understudy::v1::GATE_PASS
                                : understudy::v1::GATE_INCONCLUSIVE);
  return r;
}

// satisfaction: mSPRT on the difference of mean feedback scores.
GateResult SatisfactionGateEval(const SatisfactionGate& g, const Moments& p, const Moments& c,
                                double stage_alpha) {
  GateResult r;
  GateEvaluation& e = r.eval;
  e = MeanEval("satisfaction", p, c, p.Mean() - g.max_drop, "msprt_log_lr_mean_difference");
  if (p.n < g.min_samples || c.n < g.min_samples) {
    r.required = g.must_have_data;
    e.set_outcome(understudy::v1::GATE_INCONCLUSIVE);
    e.set_detail(absl::StrCat("insufficient feedback: need ", g.min_samples, " per arm",
                              g.must_have_data ? "" : " (not required)"));
    return r;
  }
  double x = c.Mean() - p.Mean();
  double v = std::max(c.Variance(), 1e-4) / c.n + std::max(p.Variance(), 1e-4) / p.n;
  MixtureResult m = NormalMixtureTest(x, v, 0.0, std::max(g.max_drop, 0.05), stage_alpha);
  e.set_statistic_value(m.log_lr);
  e.set_bound(std::log(1 / stage_alpha));
  e.set_p_value(std::min(1.0, std::exp(-m.log_lr)));
  e.set_detail(absl::StrFormat("difference %.4f, always-valid CI [%.4f, %.4f], max drop %.3f", x,
                               m.lower, m.upper, g.max_drop));
  // Kayenta-style: significantly worse AND worse than the tolerance.
  if (m.upper < 0 && x < -g.max_drop) {
    e.set_outcome(understudy::v1::GATE_FAIL);
  } else if (m.lower > -g.max_drop) {
    e.set_outcome(understudy::v1::GATE_PASS);
  } else {
    e.set_outcome(understudy::v1::GATE_INCONCLUSIVE);
  }
  return r;
}

// cost_per_request: mSPRT on candidate mean − max_ratio × production mean.
GateResult CostGateEval(const CostGate& g, const Moments& p, const Moments& c,
                        double stage_alpha) {
  GateResult r;
  GateEvaluation& e = r.eval;
  e = MeanEval("cost_per_request", p, c, g.max_ratio * p.Mean(), "msprt_log_lr_mean_minus_ratio");
  if (p.n < g.min_samples || c.n < g.min_samples) {
    r.required = g.must_have_data;
    e.set_outcome(understudy::v1::GATE_INCONCLUSIVE);
    e.set_detail(absl::StrCat("insufficient cost data: need ", g.min_samples, " per arm",
                              g.must_have_data ? "" : " (not required)"));
    return r;
  }
  // H0 boundary: candidate mean = max_ratio × production mean.
  double x = c.Mean() - g.max_ratio * p.Mean();
  double scale = std::max(std::abs(p.Mean()), 1e-9);
  double floor_var = (1e-6 * scale) * (1e-6 * scale);
  double v = std::max(c.Variance(), floor_var) / c.n +
             g.max_ratio * g.max_ratio * std::max(p.Variance(), floor_var) / p.n;
  MixtureResult m = NormalMixtureTest(x, v, 0.0, 0.5 * scale, stage_alpha);
  e.set_statistic_value(m.log_lr);
  e.set_bound(std::log(1 / stage_alpha));
  e.set_p_value(std::min(1.0, std::exp(-m.log_lr)));
  e.set_detail(absl::StrFormat("candidate − %.2f × production = %.6g, always-valid CI [%.6g, %.6g]",
                               g.max_ratio, x, m.lower, m.upper));
  e.set_outcome(m.lower > 0   ? understudy::v1::GATE_FAIL
                : m.upper < 0 ? understudy::v1::GATE_PASS
                              : understudy::v1::GATE_INCONCLUSIVE);
  return r;
}

// agreement: mSPRT on the fraction of shadow comparisons without a major
// difference. Required in the shadow stage only.
GateResult AgreementGateEval(const AgreementGate& g, const Counters& s, CandidateTraffic traffic,
                             double stage_alpha) {
  const bool in_shadow = traffic == CandidateTraffic::kShadow;
  GateResult r;
  GateEvaluation& e = r.eval;
  e = NewEval("agreement");
  int64_t n = s.comparisons;
  double a = n > 0 ? 1.0 - static_cast<double>(s.major_diffs) / n : 0;
  e.set_candidate_samples(n);
  e.set_candidate_value(a);
  e.set_production_value(1.0);
  e.set_threshold(g.min);
  e.set_statistic("msprt_log_lr_agreement");
  if (n < g.min_samples) {
    r.required = in_shadow;
    e.set_outcome(in_shadow ? understudy::v1::GATE_INCONCLUSIVE : understudy::v1::GATE_PASS);
    e.set_detail(absl::StrCat("insufficient comparisons: need ", g.min_samples,
                              in_shadow ? "" : " (judged only in the shadow stage)"));
    return r;
  }
  double v = (a * (1 - a) + 1.0 / n) / n;
  MixtureResult m = NormalMixtureTest(a, v, g.min, 0.1, stage_alpha);
  e.set_statistic_value(m.log_lr);
  e.set_bound(std::log(1 / stage_alpha));
  e.set_p_value(std::min(1.0, std::exp(-m.log_lr)));
  e.set_detail(absl::StrFormat("agreement %.4f over %d comparisons, always-valid CI [%.4f, %.4f]",
                               a, n, m.lower, m.upper));
  e.set_outcome(m.upper < g.min    ? understudy::v1::GATE_FAIL
                : m.lower >= g.min ? understudy::v1::GATE_PASS
                                   : understudy::v1::GATE_INCONCLUSIVE);
  return r;
}

// critical: the recent window's candidate error rate is above the ceiling
// with the configured confidence. Never inconclusive.
GateResult CriticalGateEval(const CriticalGate& g, const Counters& c) {
  GateResult r;
  GateEvaluation& e = r.eval;
  e = NewEval("critical");
  double rate = c.requests > 0 ? static_cast<double>(c.errors) / c.requests : 0;
  double lower = ClopperPearsonLower(c.errors, c.requests, g.confidence);
  e.set_candidate_samples(c.requests);
  e.set_candidate_value(rate);
  e.set_threshold(g.max_error_rate);
  e.set_statistic("clopper_pearson_lower_bound");
  e.set_statistic_value(lower);
  e.set_bound(g.max_error_rate);
  e.set_detail(absl::StrFormat("recent window: %d errors in %d requests; %.0f%% lower bound %.4f",
                               c.errors, c.requests, g.confidence * 100, lower));
  e.set_outcome(c.requests >= g.min_requests && lower > g.max_error_rate
                    ? understudy::v1::GATE_FAIL
                    : understudy::v1::GATE_PASS);
  return r;
}

bool IsErrorGate(const std::string& gate) { return gate == "error_rate" || gate == "critical"; }

// Verdict combines the gates' results into the overall verdict.
JudgeVerdict Verdict(std::vector<GateResult> results) {
  JudgeVerdict v;
  for (const GateResult& r : results) {
    if (r.eval.outcome() == understudy::v1::GATE_FAIL) {
      v.failed.push_back(absl::StrCat(r.eval.gate(), " (", r.eval.detail(), ")"));
      if (IsErrorGate(r.eval.gate())) v.error_gate_failed = true;
    } else if (r.eval.outcome() == understudy::v1::GATE_INCONCLUSIVE && r.required) {
      v.waiting.push_back(r.eval.gate());
    }
  }
  v.outcome = !v.failed.empty()    ? understudy::v1::GATE_FAIL
              : !v.waiting.empty() ? understudy::v1::GATE_INCONCLUSIVE
                                   : understudy::v1::GATE_PASS;
  v.gates.reserve(results.size());
  for (GateResult& r : results) v.gates.push_back(std::move(r.eval));
  return v;
}

}  // namespace

Judge::Judge(const RolloutConfig& config)
    : config_(config), stage_alpha_(ComputeStageAlpha(config)) {}

JudgeVerdict Judge::Evaluate(const JudgeInput& in) {
  const RolloutConfig& c = config_;
  std::vector<GateResult> results;
  if (c.critical.enabled) results.push_back(CriticalGateEval(c.critical, in.candidate_recent));
  if (c.error_rate.enabled) results.push_back({ErrorRate(in.production.c, in.candidate.c)});
  if (c.latency.enabled) {
    results.push_back(QuantileGateEval("latency_p95", c.latency, in.production.latency_ms,
                                       in.candidate.latency_ms, stage_alpha_, c.beta));
  }
  if (c.ttft.enabled) {
    results.push_back(QuantileGateEval("ttft_p95", c.ttft, in.production.ttft_ms,
                                       in.candidate.ttft_ms, stage_alpha_, c.beta));
  }
  if (c.satisfaction.enabled && in.traffic != CandidateTraffic::kShadow) {
    results.push_back(SatisfactionGateEval(c.satisfaction, in.production.c.satisfaction,
                                           in.candidate.c.satisfaction, stage_alpha_));
  }
  if (c.cost.enabled) {
    results.push_back(
        CostGateEval(c.cost, in.production.c.cost, in.candidate.c.cost, stage_alpha_));
  }
  if (c.agreement.enabled) {
    results.push_back(AgreementGateEval(c.agreement, in.shadow, in.traffic, stage_alpha_));
  }
  return Verdict(std::move(results));
}

void Judge::StartStage() {
  seen_cand_n_ = seen_cand_e_ = seen_prod_n_ = seen_prod_e_ = 0;
  error_llr_stage_start_ = error_llr_;
}

void Judge::RestartErrorTest() {
  error_llr_ = error_llr_max_ = error_llr_stage_start_ = 0;
  error_r1_ = 0;
}

GateEvaluation Judge::ErrorRate(const Counters& p, const Counters& c) {
  const ErrorRateGate& g = config_.error_rate;
  GateEvaluation e = NewEval("error_rate");
  // Fold the batch since the last evaluation into the running log-LR, using
  // the alternative fixed at the previous one (a predictable choice keeps
  // the product a martingale under H0).
  int64_t dn_c = c.requests - seen_cand_n_, de_c = c.errors - seen_cand_e_;
  int64_t dn_p = p.requests - seen_prod_n_, de_p = p.errors - seen_prod_e_;
  if (error_r1_ <= 0) error_r1_ = g.max_ratio;
  if (dn_c >= 0 && dn_p >= 0 && de_c >= 0 && de_p >= 0) {
    error_llr_ += RatioSprtIncrement(dn_c, de_c, dn_p, de_p, error_r1_);
    error_llr_max_ = std::max(error_llr_max_, error_llr_);
  }
  seen_cand_n_ = c.requests;
  seen_cand_e_ = c.errors;
  seen_prod_n_ = p.requests;
  seen_prod_e_ = p.errors;

  // Jeffreys estimate of production's rate; p1 is the rate we must catch.
  double pp = (p.errors + 0.5) / (p.requests + 1.0);
  double p1 = std::max(pp * g.max_ratio, pp + g.max_abs_increase);
  p1 = std::min(p1, 0.999);
  double r1_used = error_r1_;
  error_r1_ = std::clamp(p1 / pp, 1.05, 10.0);

  double pc = c.requests > 0 ? static_cast<double>(c.errors) / c.requests : 0;
  double bound = std::log(1 / config_.alpha);
  double stage_llr = error_llr_ - error_llr_stage_start_;
  double accept = std::log(config_.beta / (1 - config_.alpha));
  double upper = ClopperPearsonUpper(c.errors, c.requests, 0.99);
  e.set_production_value(p.requests > 0 ? static_cast<double>(p.errors) / p.requests : 0);
  e.set_candidate_value(pc);
  e.set_threshold(p1);
  e.set_statistic("sprt_log_lr_rate_ratio");
  e.set_statistic_value(error_llr_);
  e.set_bound(bound);
  e.set_p_value(std::min(1.0, std::exp(-error_llr_max_)));
  e.set_production_samples(p.requests);
  e.set_candidate_samples(c.requests);
  std::string detail = absl::StrFormat(
      "H0 ratio 1 vs H1 ratio %.2f; stage log-LR %.2f (pass at %.2f); 99%% upper bound on "
      "candidate rate %.4f",
      r1_used, stage_llr, accept, upper);
  if (error_llr_ >= bound) {
    e.set_outcome(understudy::v1::GATE_FAIL);
  } else if (p.requests >= 100 && c.requests > 0 && (stage_llr <= accept || upper <= p1)) {
    e.set_outcome(understudy::v1::GATE_PASS);
  } else {
    e.set_outcome(understudy::v1::GATE_INCONCLUSIVE);
    if (p.requests < 100 || c.requests == 0) detail += "; insufficient data";
  }
  e.set_detail(detail);
  return e;
}

}  // namespace understudy::rollout
