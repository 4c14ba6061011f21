// The rollout controller: health windows, the judge and the state machine.
#include <algorithm>
#include <cmath>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "rollout/health.h"
#include "rollout/rollout.h"
#include "rollout/stats.h"

namespace understudy::rollout {

using understudy::v1::Arm;
using understudy::v1::Decision;
using understudy::v1::GateEvaluation;
using understudy::v1::RolloutPhase;
using understudy::v1::RolloutState;

bool IsError(OutcomeClass c) {
  return c == OutcomeClass::kServerError || c == OutcomeClass::kTimeout ||
         c == OutcomeClass::kTransport || c == OutcomeClass::kInvalidBody;
}

std::string_view OutcomeClassName(OutcomeClass c) {
  switch (c) {
    case OutcomeClass::kOk:
      return "ok";
    case OutcomeClass::kServerError:
      return "server_error";
    case OutcomeClass::kTimeout:
      return "timeout";
    case OutcomeClass::kTransport:
      return "transport";
    case OutcomeClass::kInvalidBody:
      return "invalid_body";
    case OutcomeClass::kThrottled:
      return "throttled";
    case OutcomeClass::kClientError:
      return "client_error";
  }
  return "unknown";
}

const char* PhaseName(understudy::v1::RolloutPhase phase) {
  switch (phase) {
    case understudy::v1::PHASE_SHADOW:
      return "shadow";
    case understudy::v1::PHASE_CANARY:
      return "canary";
    case understudy::v1::PHASE_PAUSED:
      return "paused";
    case understudy::v1::PHASE_PROMOTED:
      return "promoted";
    case understudy::v1::PHASE_ROLLED_BACK:
      return "rolled_back";
    default:
      return "unspecified";
  }
}

const char* GateOutcomeName(understudy::v1::GateOutcome outcome) {
  switch (outcome) {
    case understudy::v1::GATE_PASS:
      return "pass";
    case understudy::v1::GATE_FAIL:
      return "fail";
    case understudy::v1::GATE_INCONCLUSIVE:
      return "inconclusive";
    default:
      return "unspecified";
  }
}

OutcomeClass OutcomeClassFromHttp(int status_code) {
  if (status_code <= 0) return OutcomeClass::kTransport;
  if (status_code == 429) return OutcomeClass::kThrottled;
  if (status_code >= 500) return OutcomeClass::kServerError;
  if (status_code >= 400) return OutcomeClass::kClientError;
  return OutcomeClass::kOk;
}

// ------------------------------------------------------ InMemoryTransitionLog

absl::Status InMemoryTransitionLog::Commit(const RolloutState& state, const Decision& decision) {
  absl::MutexLock lock(&mu_);
  if (!fail_next_.ok()) {
    absl::Status s = std::move(fail_next_);
    fail_next_ = absl::OkStatus();
    return s;
  }
  decisions_.push_back(decision);
  last_ = state;
  return absl::OkStatus();
}

void InMemoryTransitionLog::FailNextCommit(absl::Status status) {
  absl::MutexLock lock(&mu_);
  fail_next_ = std::move(status);
}

std::vector<Decision> InMemoryTransitionLog::Decisions() const {
  absl::MutexLock lock(&mu_);
  return decisions_;
}

std::optional<RolloutState> InMemoryTransitionLog::LastState() const {
  absl::MutexLock lock(&mu_);
  return last_;
}

size_t InMemoryTransitionLog::size() const {
  absl::MutexLock lock(&mu_);
  return decisions_.size();
}

// ------------------------------------------------------------- Controller

namespace {

constexpr size_t kTriggerIds = 8;

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

struct GateResult {
  GateEvaluation eval;
  bool required = true;  // an inconclusive non-required gate does not block
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

}  // namespace

struct Controller::Impl {
  Impl(const RolloutConfig& c, const Clock& clk, Router& r, TransitionLog& l)
      : config(c),
        clock(clk),
        router(r),
        log(l),
        fingerprint(PlanFingerprint(c)),
        prod_recent(c.recent_window, c.recent_slots),
        cand_recent(c.recent_window, c.recent_slots),
        shadow_recent(c.recent_window, c.recent_slots) {
    judged_stages = 0;
    for (const StageConfig& s : c.stages) judged_stages += s.percent < 100 ? 1 : 0;
    judged_stages = std::max(1, judged_stages);
    stage_alpha = c.alpha / judged_stages;
  }

  const RolloutConfig& config;
  const Clock& clock;
  Router& router;
  TransitionLog& log;
  const std::string fingerprint;
  int judged_stages;
  double stage_alpha;

  // Lock order: mu before data_mu.
  mutable absl::Mutex mu;
  RolloutState state ABSL_GUARDED_BY(mu);
  // The gates of the judge's latest evaluation (kept while it is idle).
  google::protobuf::RepeatedPtrField<GateEvaluation> last_gates ABSL_GUARDED_BY(mu);
  // Error-rate SPRT, accumulated over the rollout (see rollout.h).
  double error_llr ABSL_GUARDED_BY(mu) = 0;
  double error_llr_max ABSL_GUARDED_BY(mu) = 0;
  double error_llr_stage_start ABSL_GUARDED_BY(mu) = 0;
  int64_t seen_cand_n ABSL_GUARDED_BY(mu) = 0, seen_cand_e ABSL_GUARDED_BY(mu) = 0;
  int64_t seen_prod_n ABSL_GUARDED_BY(mu) = 0, seen_prod_e ABSL_GUARDED_BY(mu) = 0;
  double error_r1 ABSL_GUARDED_BY(mu) = 0;  // fixed before each batch (predictable)

  mutable absl::Mutex data_mu ABSL_ACQUIRED_AFTER(mu);
  ArmWindow prod ABSL_GUARDED_BY(data_mu);
  ArmWindow cand ABSL_GUARDED_BY(data_mu);
  ArmWindow shadow ABSL_GUARDED_BY(data_mu);
  SlidingCounters prod_recent ABSL_GUARDED_BY(data_mu);
  SlidingCounters cand_recent ABSL_GUARDED_BY(data_mu);
  SlidingCounters shadow_recent ABSL_GUARDED_BY(data_mu);
  std::deque<std::string> cand_error_ids ABSL_GUARDED_BY(data_mu);

  struct Snapshot {
    ArmWindow prod, cand, shadow;
    Counters prod_recent, cand_recent, shadow_recent;
    std::vector<std::string> cand_error_ids;
  };

  Snapshot TakeSnapshot(absl::Time now) const {
    absl::MutexLock lock(&data_mu);
    Snapshot s;
    s.prod = prod;
    s.cand = cand;
    s.shadow = shadow;
    s.prod_recent = prod_recent.Sum(now);
    s.cand_recent = cand_recent.Sum(now);
    s.shadow_recent = shadow_recent.Sum(now);
    s.cand_error_ids.assign(cand_error_ids.begin(), cand_error_ids.end());
    return s;
  }

  void ResetWindows() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    {
      absl::MutexLock lock(&data_mu);
      prod = ArmWindow{};
      cand = ArmWindow{};
      shadow = ArmWindow{};
    }
    seen_cand_n = seen_cand_e = seen_prod_n = seen_prod_e = 0;
    error_llr_stage_start = error_llr;
  }

  void ResetErrorTest() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    error_llr = error_llr_max = error_llr_stage_start = 0;
    error_r1 = 0;
  }

  // StageState is the state of running stage `i` from `now`.
  RolloutState StageState(int i, absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    RolloutState s = state;
    const StageConfig& st = config.stages[i];
    s.set_stage_index(i);
    s.set_weight_basis_points(st.percent * 100);
    s.set_phase(st.percent == 0     ? understudy::v1::PHASE_SHADOW
                : st.percent >= 100 ? understudy::v1::PHASE_PROMOTED
                                    : understudy::v1::PHASE_CANARY);
    s.set_stage_started_unix_micros(Micros(now));
    s.clear_paused_reason();
    s.set_phase_before_pause(understudy::v1::PHASE_UNSPECIFIED);
    return s;
  }

  // Transition commits `next` with its decision, then applies it.
  absl::StatusOr<Decision> Transition(std::string action, std::string_view actor,
                                      std::string reason, RolloutState next,
                                      std::vector<GateEvaluation> gates,
                                      std::vector<std::string> triggers, bool reset_windows,
                                      bool reset_error_test, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    next.set_version(state.version() + 1);
    next.set_plan_fingerprint(fingerprint);
    next.set_last_reason(reason);
    Decision d;
    d.set_time_unix_micros(Micros(now));
    d.set_action(std::move(action));
    d.set_actor(std::string(actor));
    d.set_reason(std::move(reason));
    *d.mutable_from() = state;
    *d.mutable_to() = next;
    for (GateEvaluation& g : gates) *d.add_gates() = std::move(g);
    for (std::string& t : triggers) d.add_trigger_request_ids(std::move(t));
    // Persist first: if the log refuses, nothing changes.
    RETURN_IF_ERROR(log.Commit(next, d));
    state = std::move(next);
    router.SetWeightBasisPoints(state.weight_basis_points());
    if (reset_error_test) ResetErrorTest();
    if (reset_windows) ResetWindows();
    return d;
  }

  Decision Hold(std::string reason, std::vector<GateEvaluation> gates, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    Decision d;
    d.set_time_unix_micros(Micros(now));
    d.set_action("hold");
    d.set_actor("judge");
    d.set_reason(std::move(reason));
    *d.mutable_from() = state;
    *d.mutable_to() = state;
    for (GateEvaluation& g : gates) *d.add_gates() = std::move(g);
    return d;
  }

  // ----------------------------------------------------------------- gates

  GateResult ErrorRateGate(const Counters& p, const Counters& c)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const auto& g = config.error_rate;
    GateResult r;
    GateEvaluation& e = r.eval;
    e = NewEval("error_rate");
    // Fold the batch since the last tick into the running log-LR, using the
    // alternative fixed at the previous tick (a predictable choice keeps the
    // product a martingale under H0).
    int64_t dn_c = c.requests - seen_cand_n, de_c = c.errors - seen_cand_e;
    int64_t dn_p = p.requests - seen_prod_n, de_p = p.errors - seen_prod_e;
    if (error_r1 <= 0) error_r1 = g.max_ratio;
    if (dn_c >= 0 && dn_p >= 0 && de_c >= 0 && de_p >= 0) {
      error_llr += RatioSprtIncrement(dn_c, de_c, dn_p, de_p, error_r1);
      error_llr_max = std::max(error_llr_max, error_llr);
    }
    seen_cand_n = c.requests;
    seen_cand_e = c.errors;
    seen_prod_n = p.requests;
    seen_prod_e = p.errors;

    // Jeffreys estimate of production's rate; p1 is the rate we must catch.
    double pp = (p.errors + 0.5) / (p.requests + 1.0);
    double p1 = std::max(pp * g.max_ratio, pp + g.max_abs_increase);
    p1 = std::min(p1, 0.999);
    double r1_used = error_r1;
    error_r1 = std::clamp(p1 / pp, 1.05, 10.0);

    double pc = c.requests > 0 ? static_cast<double>(c.errors) / c.requests : 0;
    double bound = std::log(1 / config.alpha);
    double stage_llr = error_llr - error_llr_stage_start;
    double accept = std::log(config.beta / (1 - config.alpha));
    double upper = ClopperPearsonUpper(c.errors, c.requests, 0.99);
    e.set_production_value(p.requests > 0 ? static_cast<double>(p.errors) / p.requests : 0);
    e.set_candidate_value(pc);
    e.set_threshold(p1);
    e.set_statistic("sprt_log_lr_rate_ratio");
    e.set_statistic_value(error_llr);
    e.set_bound(bound);
    e.set_p_value(std::min(1.0, std::exp(-error_llr_max)));
    e.set_production_samples(p.requests);
    e.set_candidate_samples(c.requests);
    std::string detail = absl::StrFormat(
        "H0 ratio 1 vs H1 ratio %.2f; stage log-LR %.2f (pass at %.2f); 99%% upper bound on "
        "candidate rate %.4f",
        r1_used, stage_llr, accept, upper);
    if (error_llr >= bound) {
      e.set_outcome(understudy::v1::GATE_FAIL);
    } else if (p.requests >= 100 && c.requests > 0 && (stage_llr <= accept || upper <= p1)) {
      e.set_outcome(understudy::v1::GATE_PASS);
    } else {
      e.set_outcome(understudy::v1::GATE_INCONCLUSIVE);
      if (p.requests < 100 || c.requests == 0) detail += "; insufficient data";
    }
    e.set_detail(detail);
    return r;
  }

  GateResult QuantileGateEval(const char* name, const QuantileGate& g, const LogHistogram& p,
                              const LogHistogram& c) const {
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
    double accept = std::log(config.beta / (1 - stage_alpha));
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

  GateResult SatisfactionGateEval(const Moments& p, const Moments& c) const {
    const auto& g = config.satisfaction;
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
    e.set_detail(absl::StrFormat("difference %.4f, always-valid CI [%.4f, %.4f], max drop %.3f",
                                 x, m.lower, m.upper, g.max_drop));
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

  GateResult CostGateEval(const Moments& p, const Moments& c) const {
    const auto& g = config.cost;
    GateResult r;
    GateEvaluation& e = r.eval;
    e = MeanEval("cost_per_request", p, c, g.max_ratio * p.Mean(),
                 "msprt_log_lr_mean_minus_ratio");
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

  GateResult AgreementGateEval(const Counters& s, bool in_shadow) const {
    const auto& g = config.agreement;
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

  GateResult CriticalGateEval(const Counters& c) const {
    const auto& g = config.critical;
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

  // RollbackState is the judge's rollback destination.
  RolloutState JudgeRollbackState(absl::Time now, bool* stepped) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    *stepped = false;
    if (config.rollback_target == RollbackTarget::kPreviousStage && state.stage_index() > 0) {
      *stepped = true;
      RolloutState s = StageState(state.stage_index() - 1, now);
      s.set_rollbacks(state.rollbacks() + 1);
      return s;
    }
    RolloutState s = state;
    s.set_phase(understudy::v1::PHASE_ROLLED_BACK);
    s.set_weight_basis_points(0);
    s.set_rollbacks(state.rollbacks() + 1);
    return s;
  }

  absl::StatusOr<Decision> Tick() {
    absl::MutexLock lock(&mu);
    absl::Time now = clock.Now();
    RolloutPhase phase = state.phase();
    if (phase != understudy::v1::PHASE_SHADOW && phase != understudy::v1::PHASE_CANARY) {
      return Hold(absl::StrCat("judge idle: rollout is ", PhaseName(phase)), {}, now);
    }
    const bool in_shadow = phase == understudy::v1::PHASE_SHADOW;
    Snapshot snap = TakeSnapshot(now);
    const ArmWindow& cand = in_shadow ? snap.shadow : snap.cand;
    const Counters& cand_recent = in_shadow ? snap.shadow_recent : snap.cand_recent;

    std::vector<GateResult> results;
    if (config.critical.enabled) results.push_back(CriticalGateEval(cand_recent));
    if (config.error_rate.enabled) results.push_back(ErrorRateGate(snap.prod.c, cand.c));
    if (config.latency.enabled) {
      results.push_back(
          QuantileGateEval("latency_p95", config.latency, snap.prod.latency_ms, cand.latency_ms));
    }
    if (config.ttft.enabled) {
      results.push_back(QuantileGateEval("ttft_p95", config.ttft, snap.prod.ttft_ms, cand.ttft_ms));
    }
    if (config.satisfaction.enabled && !in_shadow) {
      results.push_back(SatisfactionGateEval(snap.prod.c.satisfaction, cand.c.satisfaction));
    }
    if (config.cost.enabled) results.push_back(CostGateEval(snap.prod.c.cost, cand.c.cost));
    if (config.agreement.enabled) results.push_back(AgreementGateEval(snap.shadow.c, in_shadow));

    std::vector<std::string> failed, waiting;
    bool error_related_failure = false;
    for (const GateResult& r : results) {
      if (r.eval.outcome() == understudy::v1::GATE_FAIL) {
        failed.push_back(absl::StrCat(r.eval.gate(), " (", r.eval.detail(), ")"));
        if (r.eval.gate() == "error_rate" || r.eval.gate() == "critical") {
          error_related_failure = true;
        }
      } else if (r.eval.outcome() == understudy::v1::GATE_INCONCLUSIVE && r.required) {
        waiting.push_back(r.eval.gate());
      }
    }
    std::vector<GateEvaluation> gates;
    for (GateResult& r : results) gates.push_back(std::move(r.eval));

    if (!failed.empty()) {
      bool stepped = false;
      RolloutState next = JudgeRollbackState(now, &stepped);
      std::vector<std::string> triggers;
      if (error_related_failure) triggers = snap.cand_error_ids;
      return Transition("rollback", "judge",
                        absl::StrCat("gate failed: ", absl::StrJoin(failed, "; ")), next,
                        std::move(gates), std::move(triggers), /*reset_windows=*/stepped,
                        /*reset_error_test=*/stepped, now);
    }

    const StageConfig& stage = config.stages[state.stage_index()];
    absl::Duration baked = now - absl::FromUnixMicros(state.stage_started_unix_micros());
    int64_t samples = cand.c.requests;
    std::vector<std::string> missing;
    if (baked < stage.min_bake) {
      missing.push_back(absl::StrCat("bake ", absl::FormatDuration(absl::Trunc(baked, absl::Seconds(1))),
                                     " of ", absl::FormatDuration(stage.min_bake)));
    }
    if (samples < stage.min_samples) {
      missing.push_back(absl::StrCat(samples, " of ", stage.min_samples, " candidate samples"));
    }
    if (!waiting.empty()) {
      missing.push_back(absl::StrCat("inconclusive: ", absl::StrJoin(waiting, ", ")));
    }
    if (missing.empty()) {
      int next_index = state.stage_index() + 1;
      RolloutState next = StageState(next_index, now);
      return Transition("promote", "judge",
                        absl::StrCat("all gates pass after ", absl::FormatDuration(
                                         absl::Trunc(baked, absl::Seconds(1))),
                                     " and ", samples, " candidate samples; to ",
                                     config.stages[next_index].percent, "%"),
                        next, std::move(gates), {}, true, false, now);
    }
    if (stage.max_bake > absl::ZeroDuration() && baked >= stage.max_bake) {
      RolloutState next = state;
      std::string reason = absl::StrCat("max bake ", absl::FormatDuration(stage.max_bake),
                                        " reached without a verdict: ",
                                        absl::StrJoin(missing, "; "));
      next.set_phase(understudy::v1::PHASE_PAUSED);
      next.set_phase_before_pause(phase);
      next.set_paused_reason(reason);
      return Transition("pause", "judge", reason, next, std::move(gates), {}, false, false, now);
    }
    return Hold(absl::StrCat("waiting: ", absl::StrJoin(missing, "; ")), std::move(gates), now);
  }
};

Controller::Controller(RolloutConfig config, const Clock& clock, Router& router,
                       TransitionLog& log)
    : config_(std::move(config)), impl_(std::make_unique<Impl>(config_, clock, router, log)) {
  absl::MutexLock lock(&impl_->mu);
  impl_->state = impl_->StageState(0, clock.Now());
  impl_->state.set_plan_fingerprint(impl_->fingerprint);
  router.SetWeightBasisPoints(impl_->state.weight_basis_points());
}

Controller::~Controller() = default;

void Controller::RecordOutcome(Arm arm, const Outcome& outcome) {
  if (arm != understudy::v1::ARM_PRODUCTION && arm != understudy::v1::ARM_CANDIDATE) return;
  absl::Time now = impl_->clock.Now();
  absl::MutexLock lock(&impl_->data_mu);
  if (arm == understudy::v1::ARM_PRODUCTION) {
    impl_->prod.Add(outcome);
    impl_->prod_recent.Slot(now).Add(outcome);
  } else {
    impl_->cand.Add(outcome);
    impl_->cand_recent.Slot(now).Add(outcome);
    if (IsError(outcome.status) && !outcome.request_id.empty()) {
      impl_->cand_error_ids.emplace_back(outcome.request_id);
      if (impl_->cand_error_ids.size() > kTriggerIds) impl_->cand_error_ids.pop_front();
    }
  }
}

void Controller::RecordComparison(const ShadowComparison& comparison) {
  absl::Time now = impl_->clock.Now();
  absl::MutexLock lock(&impl_->data_mu);
  impl_->shadow.Add(comparison.candidate);
  Counters& slot = impl_->shadow_recent.Slot(now);
  slot.Add(comparison.candidate);
  if (comparison.compared) {
    ++impl_->shadow.c.comparisons;
    ++slot.comparisons;
    if (comparison.major_diff) {
      ++impl_->shadow.c.major_diffs;
      ++slot.major_diffs;
    }
  }
}

bool Controller::RecordFeedback(Arm arm, double score) {
  if (!(score >= 0 && score <= 1)) return false;
  if (arm != understudy::v1::ARM_PRODUCTION && arm != understudy::v1::ARM_CANDIDATE) return false;
  absl::Time now = impl_->clock.Now();
  absl::MutexLock lock(&impl_->data_mu);
  bool prod = arm == understudy::v1::ARM_PRODUCTION;
  (prod ? impl_->prod : impl_->cand).c.satisfaction.Add(score);
  (prod ? impl_->prod_recent : impl_->cand_recent).Slot(now).satisfaction.Add(score);
  return true;
}

absl::StatusOr<Decision> Controller::Tick() {
  absl::StatusOr<Decision> d = impl_->Tick();
  if (d.ok() && d->gates_size() > 0) {
    absl::MutexLock lock(&impl_->mu);
    impl_->last_gates = d->gates();
  }
  return d;
}

namespace {
absl::Status CheckActor(std::string_view actor) {
  if (actor.empty()) return absl::InvalidArgumentError("actor: required (the operator's name)");
  if (actor == "judge") return absl::InvalidArgumentError("actor: \"judge\" is reserved");
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<Decision> Controller::Promote(std::string_view actor, bool to_full) {
  RETURN_IF_ERROR(CheckActor(actor));
  absl::MutexLock lock(&impl_->mu);
  absl::Time now = impl_->clock.Now();
  const RolloutState& s = impl_->state;
  const int last = static_cast<int>(config_.stages.size()) - 1;
  int target;
  bool retry = false;
  switch (s.phase()) {
    case understudy::v1::PHASE_PROMOTED:
      return absl::FailedPreconditionError("promote: the rollout is already promoted to 100%");
    case understudy::v1::PHASE_ROLLED_BACK:
      target = to_full ? last : 0;
      retry = true;
      break;
    default:
      target = to_full ? last : std::min(last, s.stage_index() + 1);
      break;
  }
  RolloutState next = impl_->StageState(target, now);
  std::string reason = absl::StrCat(retry ? "retry after rollback: " : "", "promoted by ",
                                    Av(actor), " to ", config_.stages[target].percent, "%");
  return impl_->Transition("promote", actor, reason, next, {}, {}, true, retry, now);
}

absl::StatusOr<Decision> Controller::Pause(std::string_view actor, std::string_view reason) {
  RETURN_IF_ERROR(CheckActor(actor));
  absl::MutexLock lock(&impl_->mu);
  absl::Time now = impl_->clock.Now();
  const RolloutState& s = impl_->state;
  if (s.phase() == understudy::v1::PHASE_PAUSED) {
    return absl::FailedPreconditionError("pause: the rollout is already paused");
  }
  if (s.phase() != understudy::v1::PHASE_SHADOW && s.phase() != understudy::v1::PHASE_CANARY) {
    return absl::FailedPreconditionError(absl::StrCat(
        "pause: the rollout is ", PhaseName(s.phase()), "; there is nothing to pause"));
  }
  std::string why = reason.empty() ? absl::StrCat("paused by ", Av(actor))
                                   : absl::StrCat("paused by ", Av(actor), ": ", Av(reason));
  RolloutState next = s;
  next.set_phase(understudy::v1::PHASE_PAUSED);
  next.set_phase_before_pause(s.phase());
  next.set_paused_reason(why);
  return impl_->Transition("pause", actor, why, next, {}, {}, false, false, now);
}

absl::StatusOr<Decision> Controller::Resume(std::string_view actor) {
  RETURN_IF_ERROR(CheckActor(actor));
  absl::MutexLock lock(&impl_->mu);
  absl::Time now = impl_->clock.Now();
  const RolloutState& s = impl_->state;
  if (s.phase() != understudy::v1::PHASE_PAUSED) {
    return absl::FailedPreconditionError(
        absl::StrCat("resume: the rollout is not paused (it is ", PhaseName(s.phase()), ")"));
  }
  RolloutState next = s;
  RolloutPhase before = s.phase_before_pause();
  if (before != understudy::v1::PHASE_SHADOW && before != understudy::v1::PHASE_CANARY) {
    before = config_.stages[s.stage_index()].percent == 0 ? understudy::v1::PHASE_SHADOW
                                                          : understudy::v1::PHASE_CANARY;
  }
  next.set_phase(before);
  next.set_phase_before_pause(understudy::v1::PHASE_UNSPECIFIED);
  next.clear_paused_reason();
  next.set_stage_started_unix_micros(absl::ToUnixMicros(now));
  return impl_->Transition("resume", actor, absl::StrCat("resumed by ", Av(actor)), next, {}, {},
                           true, false, now);
}

absl::StatusOr<Decision> Controller::Rollback(std::string_view actor, std::string_view reason) {
  RETURN_IF_ERROR(CheckActor(actor));
  if (reason.empty()) return absl::InvalidArgumentError("rollback: a reason is required");
  absl::MutexLock lock(&impl_->mu);
  absl::Time now = impl_->clock.Now();
  const RolloutState& s = impl_->state;
  if (s.phase() == understudy::v1::PHASE_ROLLED_BACK) {
    return absl::FailedPreconditionError("rollback: the rollout is already rolled back");
  }
  RolloutState next = s;
  next.set_phase(understudy::v1::PHASE_ROLLED_BACK);
  next.set_weight_basis_points(0);
  next.set_phase_before_pause(understudy::v1::PHASE_UNSPECIFIED);
  next.clear_paused_reason();
  next.set_rollbacks(s.rollbacks() + 1);
  return impl_->Transition("rollback", actor,
                           absl::StrCat("rolled back by ", Av(actor), ": ", Av(reason)), next, {},
                           {}, false, false, now);
}

absl::StatusOr<Decision> Controller::SetWeight(std::string_view actor, double percent) {
  RETURN_IF_ERROR(CheckActor(actor));
  if (!(percent >= 0 && percent <= 100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("set-weight: percent must be in 0..100, got ", percent));
  }
  int32_t bps = static_cast<int32_t>(std::lround(percent * 100));
  absl::MutexLock lock(&impl_->mu);
  absl::Time now = impl_->clock.Now();
  const RolloutState& s = impl_->state;
  const int last = static_cast<int>(config_.stages.size()) - 1;
  std::string reason = absl::StrFormat("weight set to %.2f%% by %s", bps / 100.0, Av(actor));
  RolloutState next;
  if (bps >= 10000) {
    next = impl_->StageState(last, now);
  } else {
    int index = 0;
    for (int i = 0; i <= last; ++i) {
      if (config_.stages[i].percent * 100 <= bps) index = i;
    }
    next = s;
    next.set_stage_index(index);
    next.set_weight_basis_points(bps);
    next.set_phase(understudy::v1::PHASE_PAUSED);
    next.set_phase_before_pause(config_.stages[index].percent == 0 ? understudy::v1::PHASE_SHADOW
                                                                   : understudy::v1::PHASE_CANARY);
    next.set_paused_reason(reason);
    next.set_stage_started_unix_micros(absl::ToUnixMicros(now));
  }
  return impl_->Transition("set_weight", actor, reason, next, {}, {}, true, false, now);
}

RolloutState Controller::State() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->state;
}

absl::Status Controller::Restore(const RolloutState& state) {
  if (state.plan_fingerprint() != impl_->fingerprint) {
    return absl::FailedPreconditionError(absl::StrCat(
        "restore: the saved rollout used stage plan [", state.plan_fingerprint(),
        "] but the config has [", impl_->fingerprint, "]; roll back or start a new rollout"));
  }
  if (state.phase() < understudy::v1::PHASE_SHADOW ||
      state.phase() > understudy::v1::PHASE_ROLLED_BACK) {
    return absl::InvalidArgumentError(absl::StrCat("restore: invalid phase ", state.phase()));
  }
  if (state.stage_index() < 0 || state.stage_index() >= static_cast<int>(config_.stages.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("restore: stage_index ", state.stage_index(), " out of range"));
  }
  if (state.weight_basis_points() < 0 || state.weight_basis_points() > kBucketCount) {
    return absl::InvalidArgumentError(absl::StrCat("restore: weight_basis_points ",
                                                   state.weight_basis_points(), " out of range"));
  }
  absl::MutexLock lock(&impl_->mu);
  impl_->state = state;
  impl_->router.SetWeightBasisPoints(state.weight_basis_points());
  impl_->ResetErrorTest();
  impl_->ResetWindows();
  return absl::OkStatus();
}

understudy::v1::HealthSnapshot Controller::Health() const {
  absl::MutexLock lock(&impl_->mu);
  absl::Time now = impl_->clock.Now();
  understudy::v1::HealthSnapshot h;
  h.set_time_unix_micros(absl::ToUnixMicros(now));
  *h.mutable_state() = impl_->state;
  absl::Duration stage_age =
      now - absl::FromUnixMicros(impl_->state.stage_started_unix_micros());
  Impl::Snapshot s = impl_->TakeSnapshot(now);
  FillArmHealth(s.prod.c, &s.prod.latency_ms, &s.prod.ttft_ms, stage_age, h.mutable_production());
  FillArmHealth(s.cand.c, &s.cand.latency_ms, &s.cand.ttft_ms, stage_age, h.mutable_candidate());
  FillArmHealth(s.shadow.c, &s.shadow.latency_ms, &s.shadow.ttft_ms, stage_age, h.mutable_shadow());
  FillArmHealth(s.prod_recent, nullptr, nullptr, config_.recent_window,
                h.mutable_production_recent());
  FillArmHealth(s.cand_recent, nullptr, nullptr, config_.recent_window,
                h.mutable_candidate_recent());
  FillArmHealth(s.shadow_recent, nullptr, nullptr, config_.recent_window,
                h.mutable_shadow_recent());
  *h.mutable_gates() = impl_->last_gates;
  return h;
}

}  // namespace understudy::rollout
