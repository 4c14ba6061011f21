// The judge: gate evaluations and the overall verdict (see judge.h).
#include "rollout/judge.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "rollout/stats.h"

namespace understudy::rollout {

namespace {

using understudy::v1::GateEvaluation;

// One gate's evaluation, whether an inconclusive outcome blocks promotion,
// and what data it still needs ("" when it has enough).
struct GateResult {
  GateEvaluation eval;
  bool required = true;
  bool must_pass_here = false;
  std::string needs;
};

GateEvaluation NewEval(const char* name) {
  GateEvaluation e;
  e.set_gate(name);
  return e;
}

double ComputeGateAlpha(const RolloutConfig& c) {
  int gates = 0;
  for (bool on : {c.error_rate.enabled, c.latency.enabled, c.ttft.enabled, c.satisfaction.enabled,
                  c.cost.enabled, c.agreement.enabled}) {
    gates += on ? 1 : 0;
  }
  return c.alpha / std::max(1, gates);
}

// Shortfall says what an arm lacks before the gate may be judged, e.g.
// "12 more candidate clusters, 30 more production timings"; "" if nothing.
std::string Shortfall(const ContrastResult& r, bool two_sided, int64_t min_clusters,
                      double min_samples, const char* unit) {
  std::vector<std::string> parts;
  auto need = [&](double have, double want, const char* arm, const char* what) {
    if (have < want) {
      parts.push_back(absl::StrCat(static_cast<int64_t>(std::ceil(want - have)), " more ", arm,
                                   " ", what));
    }
  };
  need(static_cast<double>(r.cand_clusters), static_cast<double>(min_clusters), "candidate",
       "clusters");
  need(r.cand_samples, min_samples, "candidate", unit);
  if (two_sided) {
    need(static_cast<double>(r.prod_clusters), static_cast<double>(min_clusters), "production",
         "clusters");
    need(r.prod_samples, min_samples, "production", unit);
  }
  return absl::StrJoin(parts, ", ");
}

void SetClusters(GateEvaluation& e, const ContrastResult& r) {
  e.set_production_clusters(r.prod_clusters);
  e.set_candidate_clusters(r.cand_clusters);
  e.set_production_samples(static_cast<int64_t>(std::llround(r.prod_samples)));
  e.set_candidate_samples(static_cast<int64_t>(std::llround(r.cand_samples)));
  e.set_design_effect(r.DesignEffect());
  e.set_effect(r.estimate);
  e.set_effect_se(std::sqrt(r.Variance()));
}

// The two one-sided always-valid tests of a gate (judge.h).
struct Test {
  const ContrastResult* fail;  // contrast tested against `tolerated`
  const ContrastResult* pass;  // contrast tested against `must_catch`
  double tolerated = 0;
  double must_catch = 0;
  double tau_fail = 0;
  double tau_pass = 0;
};

void RunTest(GateEvaluation& e, const Test& t, double alpha, double beta, ContrastFold& fold) {
  const double vf = t.fail->Variance();
  const double vp = t.pass->Variance();
  const double hf = OneSidedMixtureRadius(vf, t.tau_fail, alpha);
  const double hp = OneSidedMixtureRadius(vp, t.tau_pass, beta);
  const double llr = OneSidedMixtureLogLr(t.fail->estimate - t.tolerated, vf, t.tau_fail);
  fold.max_log_lr = std::max(fold.max_log_lr, llr);
  e.set_statistic_value(llr);
  e.set_bound(std::log(1 / alpha));
  e.set_p_value(std::min(1.0, std::exp(-fold.max_log_lr)));
  e.set_effect_lower(t.fail->estimate - hf);
  e.set_effect_upper(t.pass->estimate + hp);
  e.set_tolerated(t.tolerated);
  e.set_must_catch(t.must_catch);
  e.set_outcome(t.fail->estimate - hf > t.tolerated    ? understudy::v1::GATE_FAIL
                : t.pass->estimate + hp < t.must_catch ? understudy::v1::GATE_PASS
                                                       : understudy::v1::GATE_INCONCLUSIVE);
}

std::string ClusterText(const ContrastResult& r) {
  return absl::StrFormat("%d/%d clusters (candidate/production), design effect %.2f",
                         r.cand_clusters, r.prod_clusters, r.DesignEffect());
}

void Insufficient(GateResult& r, const std::string& needs, bool required) {
  r.required = required;
  r.needs = needs;
  r.eval.set_outcome(understudy::v1::GATE_INCONCLUSIVE);
  r.eval.set_detail(absl::StrCat("insufficient data: needs ", needs,
                                 required ? "" : " (not required)"));
}

// Production's share of timings above `x` in its stage histogram.
double ShareAbove(const LogHistogram& h, double x) {
  return h.count() > 0 ? static_cast<double>(h.CountAbove(x)) / h.count() : 0;
}

// latency_p95 / ttft_p95 (judge.h): the fail contrast is the candidate's
// share above tolerated_ratio·T against production's share above T; the
// pass contrast the candidate's share above max_ratio·T against the same.
// Candidate q-quantile ≥ ρ·(production's) ⟺ its share above ρ·T ≥ 1 − q,
// which is production's share above T: no shape is assumed.
GateResult QuantileGateEval(const char* name, const QuantileGate& g, Evidence& ev,
                            ContrastId fail_id, const ContrastResult& rf, const ContrastResult& rp,
                            const LogHistogram& prod_hist, const LogHistogram& cand_hist,
                            double threshold, const RolloutConfig& c, double alpha) {
  GateResult r;
  GateEvaluation& e = r.eval;
  e = NewEval(name);
  e.set_statistic("sprt_mixture_log_lr_share_above");
  SetClusters(e, rf);
  if (prod_hist.count() == 0 && cand_hist.count() == 0 && rf.cand_samples == 0 &&
      rf.prod_samples == 0) {
    e.set_outcome(understudy::v1::GATE_PASS);
    e.set_detail("no timings recorded; not judged");
    return r;
  }
  const double pq = prod_hist.Quantile(g.quantile);
  e.set_production_value(pq);
  e.set_candidate_value(cand_hist.Quantile(g.quantile));
  e.set_threshold(g.max_ratio * pq);
  std::string needs =
      Shortfall(rf, true, c.min_clusters, static_cast<double>(g.min_samples), "timings");
  if (!needs.empty() || !(threshold > 0)) {
    Insufficient(r, needs.empty() ? "a production quantile" : needs, true);
    return r;
  }
  // τ: the effect a candidate at the other boundary would show, read off
  // production's own distribution scaled (a shape-aware guess; any τ > 0
  // keeps the test valid, a good one makes it fast).
  const double r0 = g.tolerated_ratio, r1 = g.max_ratio;
  const double base = ShareAbove(prod_hist, threshold);
  const double tau_fail = std::max(0.01, ShareAbove(prod_hist, threshold * r0 / r1) - base);
  const double tau_pass = std::max(0.01, base - ShareAbove(prod_hist, threshold * r1 / r0));
  RunTest(e, Test{&rf, &rp, 0, 0, tau_fail, tau_pass}, alpha, c.beta, ev.fold(fail_id));
  e.set_detail(absl::StrFormat(
      "candidate share above %.2fx T minus production's above T = %.4f (always-valid lower "
      "%.4f; fail above 0); share above %.2fx T minus production's = %.4f (upper %.4f; pass "
      "below 0); T = production p%.0f %.1f ms; %s",
      r0, rf.estimate, e.effect_lower(), r1, rp.estimate, e.effect_upper(), g.quantile * 100,
      threshold, ClusterText(rf)));
  return r;
}

std::string RatioDetail(const char* what, const ContrastResult& r, const GateEvaluation& e,
                        double r0, double r1) {
  return absl::StrFormat(
      "%s ratio %.3f (log %.3f, se %.3f); always-valid log bounds [%.3f, %.3f]: fail if lower > "
      "log %.2f, pass if upper < log %.2f; %s",
      what, std::exp(r.estimate), r.estimate, e.effect_se(), e.effect_lower(), e.effect_upper(),
      r0, r1, ClusterText(r));
}

// critical: the circuit breaker on the recent window (rollout.h). The
// window's slots are strata (a shared outage, or a stage change moving the
// candidate's share of traffic, moves both arms of a slot alike): the
// Mantel–Haenszel rate ratio over slots with the Greenland–Robins variance
// of its log (the person-time form). Without production errors in the
// window, the single-window conditional test: each error is the
// candidate's with probability θ(r) = r·s/(r·s + 1 − s), s the candidate's
// share of requests, and the exact Clopper–Pearson bound. Either way the
// counts are deflated by the design effect of the raw error counts of the
// current stage and of the one before (Kish's effective sample size: those
// hold the users the recent window sees).
GateResult CriticalGateEval(const RolloutConfig& c,
                            const std::vector<std::pair<int64_t, Counters>>& cand_slots,
                            const std::vector<std::pair<int64_t, Counters>>& prod_slots,
                            const Evidence::StageClustering& stage, double previous_stage_de,
                            const ContrastResult* sat) {
  const CriticalGate& g = c.critical;
  GateResult r;
  GateEvaluation& e = r.eval;
  e = NewEval("critical");
  Counters cand, prod;
  for (const auto& [i, s] : cand_slots) cand.Merge(s);
  for (const auto& [i, s] : prod_slots) prod.Merge(s);
  const double rate_c = cand.requests > 0 ? static_cast<double>(cand.errors) / cand.requests : 0;
  const double rate_p = prod.requests > 0 ? static_cast<double>(prod.errors) / prod.requests : 0;
  const double de = std::max({1.0, stage.design_effect, previous_stage_de});
  const int64_t clusters = stage.cand_clusters;
  e.set_candidate_samples(cand.requests);
  e.set_production_samples(prod.requests);
  e.set_candidate_value(rate_c);
  e.set_production_value(rate_p);
  e.set_threshold(std::max(g.max_ratio * rate_p, g.max_error_rate));
  e.set_statistic("critical_rate_ratio_lower_bound");
  e.set_bound(g.max_ratio);
  e.set_candidate_clusters(stage.cand_clusters);
  e.set_production_clusters(stage.prod_clusters);
  e.set_design_effect(de);
  e.set_outcome(understudy::v1::GATE_PASS);
  std::string detail;
  const int64_t k = cand.errors, total = cand.errors + prod.errors;
  if (cand.requests < g.min_requests) {
    detail = absl::StrCat("not judged: ", cand.requests, " of ", g.min_requests,
                          " candidate requests in the recent window");
  } else if (clusters < c.min_clusters) {
    detail = absl::StrCat("not judged: ", clusters, " of ", c.min_clusters,
                          " candidate clusters in this stage");
  } else if (prod.requests == 0 || k == 0) {
    detail = "no candidate errors (or no production traffic) in the recent window";
  } else {
    double ratio_lo = 0;
    const char* method = "";
    if (prod.errors > 0) {
      // Mantel–Haenszel over slots.
      double R = 0, S = 0, V = 0;
      size_t j = 0;
      for (const auto& [i, cs] : cand_slots) {
        while (j < prod_slots.size() && prod_slots[j].first < i) ++j;
        if (j >= prod_slots.size() || prod_slots[j].first != i) continue;
        const Counters& ps = prod_slots[j].second;
        const double nc = cs.requests, np = ps.requests, n = nc + np;
        if (nc <= 0 || np <= 0) continue;
        R += cs.errors * np / n;
        S += ps.errors * nc / n;
        V += nc * np * (cs.errors + ps.errors) / (n * n);
      }
      if (R > 0 && S > 0) {
        const double se = std::sqrt(de * V / (R * S));
        ratio_lo = std::exp(std::log(R / S) - NormalQuantile(g.confidence) * se);
      }
      method = "Mantel-Haenszel over slots";
    } else {
      const double s = static_cast<double>(cand.requests) / (cand.requests + prod.requests);
      const double lo = ClopperPearsonLowerReal(k / de, total / de, g.confidence);
      ratio_lo = lo >= 1 ? 1e9 : lo * (1 - s) / (s * (1 - lo));
      method = "conditional exact";
    }
    e.set_statistic_value(ratio_lo);
    detail = absl::StrFormat(
        "recent window: candidate %d errors in %d requests (%.4f), production %d in %d (%.4f); "
        "%.0f%% lower bound on the rate ratio %.3f (%s, design effect %.2f); fails above %.2fx",
        k, cand.requests, rate_c, prod.errors, prod.requests, rate_p, g.confidence * 100,
        ratio_lo, method, de, g.max_ratio);
    if (ratio_lo > g.max_ratio && rate_c > g.max_error_rate) {
      e.set_outcome(understudy::v1::GATE_FAIL);
    }
  }
  // The satisfaction alert: the drop is beyond alert_drop with `confidence`.
  if (e.outcome() != understudy::v1::GATE_FAIL && sat != nullptr &&
      c.satisfaction.alert_drop > 0 && sat->cand_samples >= c.satisfaction.min_samples &&
      sat->prod_samples >= c.satisfaction.min_samples && sat->cand_clusters >= c.min_clusters &&
      sat->prod_clusters >= c.min_clusters) {
    const double lower = sat->estimate - NormalQuantile(g.confidence) * std::sqrt(sat->Variance());
    if (lower > c.satisfaction.alert_drop) {
      e.set_outcome(understudy::v1::GATE_FAIL);
      e.set_candidate_value(sat->cand_mean);
      e.set_production_value(sat->prod_mean);
      e.set_threshold(sat->prod_mean - c.satisfaction.alert_drop);
      e.set_design_effect(sat->DesignEffect());
      detail = absl::StrFormat(
          "satisfaction alert: mean score dropped %.4f (%.0f%% lower bound %.4f) beyond the alert "
          "level %.3f; %s",
          sat->estimate, g.confidence * 100, lower, c.satisfaction.alert_drop, ClusterText(*sat));
    }
  }
  e.set_detail(detail);
  return r;
}

bool IsErrorGate(const GateEvaluation& g) {
  return g.gate() == "error_rate" ||
         (g.gate() == "critical" && g.detail().rfind("satisfaction alert", 0) != 0);
}

// Verdict combines the gates' results into the overall verdict.
JudgeVerdict Verdict(std::vector<GateResult> results) {
  JudgeVerdict v;
  for (const GateResult& r : results) {
    if (r.eval.outcome() == understudy::v1::GATE_FAIL) {
      v.failed.push_back(absl::StrCat(r.eval.gate(), " (", r.eval.detail(), ")"));
      if (IsErrorGate(r.eval)) v.error_gate_failed = true;
    } else if (r.eval.outcome() == understudy::v1::GATE_INCONCLUSIVE && r.required) {
      if (!r.needs.empty()) {
        v.needs_data.push_back(absl::StrCat(r.eval.gate(), ": ", r.needs));
      } else {
        v.waiting.push_back(r.eval.gate());
        if (r.must_pass_here) v.waiting_here.push_back(r.eval.gate());
      }
    }
  }
  v.outcome = !v.failed.empty()                              ? understudy::v1::GATE_FAIL
              : !v.waiting.empty() || !v.needs_data.empty() ? understudy::v1::GATE_INCONCLUSIVE
                                                             : understudy::v1::GATE_PASS;
  v.gates.reserve(results.size());
  for (GateResult& r : results) v.gates.push_back(std::move(r.eval));
  return v;
}

}  // namespace

Judge::Judge(const RolloutConfig& config)
    : config_(config), gate_alpha_(ComputeGateAlpha(config)) {}

JudgeVerdict Judge::Evaluate(Evidence& ev, CandidateTraffic traffic, absl::Time now) {
  const RolloutConfig& c = config_;
  const bool shadow = traffic == CandidateTraffic::kShadow;
  const EvidenceArm cand_arm = shadow ? EvidenceArm::kShadow : EvidenceArm::kCandidate;
  const ArmWindow& prod_w = ev.window(EvidenceArm::kProduction);
  const ArmWindow& cand_w = ev.window(cand_arm);
  const double alpha = gate_alpha_;
  std::vector<GateResult> results;

  const bool judge_sat = c.satisfaction.enabled && !shadow;
  // The satisfaction alert belongs to the critical gate: judged whenever
  // critical is on and alert_drop is set, even with the gate itself off.
  const bool alert_sat = c.critical.enabled && c.satisfaction.alert_drop > 0 && !shadow;
  uint32_t mask = 0;
  if (c.error_rate.enabled) mask |= 1u << kContrastError;
  if (c.latency.enabled) mask |= (1u << kContrastLatencyFail) | (1u << kContrastLatencyPass);
  if (c.ttft.enabled) mask |= (1u << kContrastTtftFail) | (1u << kContrastTtftPass);
  if (judge_sat || alert_sat) mask |= 1u << kContrastSatisfaction;
  if (c.cost.enabled) mask |= 1u << kContrastCost;
  if (c.agreement.enabled) mask |= 1u << kContrastAgreement;
  std::array<ContrastResult, kNumContrasts> all;
  ev.Contrasts(traffic, mask, all);
  const ContrastResult& err = all[kContrastError];
  const ContrastResult& sat = all[kContrastSatisfaction];

  if (c.critical.enabled) {
    results.push_back(CriticalGateEval(c, ev.RecentSlots(cand_arm, now),
                                       ev.RecentSlots(EvidenceArm::kProduction, now),
                                       ev.StageErrorClustering(traffic),
                                       ev.previous_stage_design_effect(),
                                       alert_sat ? &sat : nullptr));
  }

  if (c.error_rate.enabled) {
    const ErrorRateGate& g = c.error_rate;
    GateResult r;
    GateEvaluation& e = r.eval;
    e = NewEval("error_rate");
    e.set_statistic("sprt_mixture_log_lr_rate_ratio");
    SetClusters(e, err);
    e.set_production_value(err.prod_mean);
    e.set_candidate_value(err.cand_mean);
    // Jeffreys estimate of production's rate; the rate we must catch is
    // above both limits.
    const double pp = (err.prod_mean * err.prod_samples + 0.5) / (err.prod_samples + 1);
    const double r0 = g.tolerated_ratio;
    double r1 = std::max(g.max_ratio, 1 + g.max_abs_increase / pp);
    r1 = std::clamp(std::min(r1, 0.999 / pp), r0 * 1.05, r0 * 10);
    e.set_threshold(r1 * pp);
    std::string needs = Shortfall(err, true, c.min_clusters, 100, "requests");
    if (!needs.empty()) {
      Insufficient(r, needs, true);
    } else {
      const double tau = std::log(r1) - std::log(r0);
      RunTest(e, Test{&err, &err, std::log(r0), std::log(r1), tau, tau}, alpha, c.beta,
              ev.fold(kContrastError));
      e.set_detail(RatioDetail("error rate", err, e, r0, r1));
      // With no candidate error at all the rate ratio has no finite
      // variance (both arms error-free: the test above can never decide).
      // Then the candidate passes once a zero-error upper bound on its
      // rate, 1 - beta^(1/n) with n its clusters in the stage (conservative: errors
      // could be confined to whole users), is below the rate it must
      // catch: max(max_ratio x production's, production's + max_abs_increase).
      const int64_t stage_clusters = ev.StageErrorClustering(traffic).cand_clusters;
      if (e.outcome() == understudy::v1::GATE_INCONCLUSIVE && cand_w.c.errors == 0 &&
          stage_clusters > 0) {
        const double must_catch = std::max(g.max_ratio * pp, pp + g.max_abs_increase);
        const double upper = 1 - std::pow(c.beta, 1.0 / static_cast<double>(stage_clusters));
        if (upper < must_catch) {
          e.set_outcome(understudy::v1::GATE_PASS);
          e.set_detail(absl::StrFormat(
              "no candidate errors in %d clusters this stage: rate below %.4g with %.0f%% "
              "confidence, under the %.4g it must catch; %s",
              stage_clusters, upper, 100 * (1 - c.beta), must_catch, e.detail()));
        }
      }
    }
    results.push_back(std::move(r));
  }

  if (c.latency.enabled) {
    results.push_back(QuantileGateEval("latency_p95", c.latency, ev, kContrastLatencyFail,
                                       all[kContrastLatencyFail], all[kContrastLatencyPass],
                                       prod_w.latency_ms, cand_w.latency_ms,
                                       ev.latency_threshold(), c, alpha));
  }
  if (c.ttft.enabled) {
    results.push_back(QuantileGateEval("ttft_p95", c.ttft, ev, kContrastTtftFail,
                                       all[kContrastTtftFail], all[kContrastTtftPass],
                                       prod_w.ttft_ms, cand_w.ttft_ms, ev.ttft_threshold(), c,
                                       alpha));
  }

  if (judge_sat) {
    const SatisfactionGate& g = c.satisfaction;
    GateResult r;
    GateEvaluation& e = r.eval;
    e = NewEval("satisfaction");
    e.set_statistic("sprt_mixture_log_lr_mean_drop");
    SetClusters(e, sat);
    e.set_production_value(sat.prod_mean);
    e.set_candidate_value(sat.cand_mean);
    e.set_threshold(sat.prod_mean - g.max_drop);
    std::string needs =
        Shortfall(sat, true, c.min_clusters, static_cast<double>(g.min_samples), "scores");
    if (!needs.empty()) {
      Insufficient(r, needs, g.must_have_data);
    } else {
      const double tau = std::max(g.max_drop - g.tolerated_drop, 0.01);
      RunTest(e, Test{&sat, &sat, g.tolerated_drop, g.max_drop, tau, tau}, alpha, c.beta,
              ev.fold(kContrastSatisfaction));
      e.set_detail(absl::StrFormat(
          "mean score drop %.4f (se %.4f); always-valid bounds [%.4f, %.4f]: fail if lower > "
          "%.3f, pass if upper < %.3f; %s",
          sat.estimate, e.effect_se(), e.effect_lower(), e.effect_upper(), g.tolerated_drop,
          g.max_drop, ClusterText(sat)));
    }
    results.push_back(std::move(r));
  }

  if (c.cost.enabled) {
    const CostGate& g = c.cost;
    const ContrastResult& cost = all[kContrastCost];
    GateResult r;
    GateEvaluation& e = r.eval;
    e = NewEval("cost_per_request");
    e.set_statistic("sprt_mixture_log_lr_cost_ratio");
    SetClusters(e, cost);
    e.set_production_value(cost.prod_mean);
    e.set_candidate_value(cost.cand_mean);
    e.set_threshold(g.max_ratio * cost.prod_mean);
    std::string needs =
        Shortfall(cost, true, c.min_clusters, static_cast<double>(g.min_samples), "costs");
    if (!needs.empty()) {
      Insufficient(r, needs, g.must_have_data);
    } else {
      const double tau = std::max(std::log(g.max_ratio) - std::log(g.tolerated_ratio), 0.01);
      RunTest(e,
              Test{&cost, &cost, std::log(g.tolerated_ratio), std::log(g.max_ratio), tau, tau},
              alpha, c.beta, ev.fold(kContrastCost));
      e.set_detail(RatioDetail("mean cost", cost, e, g.tolerated_ratio, g.max_ratio));
    }
    results.push_back(std::move(r));
  }

  if (c.agreement.enabled) {
    const AgreementGate& g = c.agreement;
    const ContrastResult& agr = all[kContrastAgreement];
    GateResult r;
    r.must_pass_here = shadow;
    GateEvaluation& e = r.eval;
    e = NewEval("agreement");
    e.set_statistic("sprt_mixture_log_lr_disagreement");
    SetClusters(e, agr);
    e.set_production_value(1.0);
    e.set_candidate_value(agr.cand_samples > 0 ? 1 - agr.estimate : 0);
    e.set_threshold(g.min);
    std::string needs =
        Shortfall(agr, false, c.min_clusters, static_cast<double>(g.min_samples), "comparisons");
    if (!needs.empty()) {
      if (shadow) {
        Insufficient(r, needs, true);
      } else {
        r.required = false;
        e.set_outcome(understudy::v1::GATE_PASS);
        e.set_detail(absl::StrCat("insufficient comparisons: needs ", needs,
                                  " (judged only in the shadow stage)"));
      }
    } else {
      const double tau = std::max(g.tolerated - g.min, 0.01);
      RunTest(e, Test{&agr, &agr, 1 - g.tolerated, 1 - g.min, tau, tau}, alpha, c.beta,
              ev.fold(kContrastAgreement));
      e.set_detail(absl::StrFormat(
          "agreement %.4f over %.0f comparisons; always-valid bounds on the major-diff share "
          "[%.4f, %.4f]: fail if lower > %.3f, pass if upper < %.3f; %s",
          1 - agr.estimate, agr.cand_samples, e.effect_lower(), e.effect_upper(),
          1 - g.tolerated, 1 - g.min, ClusterText(agr)));
    }
    results.push_back(std::move(r));
  }

  // Thresholds for the requests to come: production's quantile once it has
  // enough timings in this stage, else the one in force (carried over from
  // the previous stage).
  auto pick = [](const QuantileGate& g, const LogHistogram& h, double current) {
    return h.count() >= std::max<int64_t>(g.min_samples, 100) ? h.Quantile(g.quantile) : current;
  };
  ev.SetThresholds(pick(c.latency, prod_w.latency_ms, ev.latency_threshold()),
                   pick(c.ttft, prod_w.ttft_ms, ev.ttft_threshold()));
  return Verdict(std::move(results));
}

}  // namespace understudy::rollout
