// Gathers the report's facts from the store: one streaming pass over
// exchanges and comparisons (bounded memory), the decision log, the latest
// health snapshot; then derives risks and the revisit recommendation.
#include "report/report_data.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdint>
#include <deque>
#include <map>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "compare/compare.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/time.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "drift/revisit.h"
#include "rollout/rollout.h"

namespace understudy::report::internal {
namespace {

using understudy::v1::Comparison;
using understudy::v1::Decision;
using understudy::v1::Exchange;
using understudy::v1::GateEvaluation;
using understudy::v1::HealthSnapshot;

// Scans stop here so a report on a huge store stays bounded in time; the
// report says so when it happens.
constexpr int64_t kMaxExchangesScanned = 2'000'000;
constexpr int64_t kMaxComparisonsScanned = 2'000'000;
// Latency samples kept per series (uniform reservoir beyond this).
constexpr size_t kReservoirSize = 100'000;
// Major diffs kept (the newest) for ranking the worst ones.
constexpr size_t kMajorDiffPool = 2'000;
constexpr size_t kTopMajorDiffs = 10;
// A gate whose statistic reached this fraction of its bound without failing
// is reported as a risk.
constexpr double kNearBoundFraction = 0.5;

// Reservoir keeps a uniform sample of at most kReservoirSize values, with a
// fixed seed so a report is reproducible.
class Reservoir {
 public:
  void Add(double v) {
    ++seen_;
    if (values_.size() < kReservoirSize) {
      values_.push_back(v);
      return;
    }
    std::uniform_int_distribution<uint64_t> pick(0, seen_ - 1);
    uint64_t j = pick(rng_);
    if (j < kReservoirSize) values_[j] = v;
  }
  bool empty() const { return values_.empty(); }
  // Quantile by the nearest-rank method on the kept sample.
  std::optional<double> Quantile(double q) {
    if (values_.empty()) return std::nullopt;
    std::sort(values_.begin(), values_.end());
    size_t rank = static_cast<size_t>(std::ceil(q * values_.size()));
    rank = std::clamp<size_t>(rank, 1, values_.size());
    return values_[rank - 1];
  }

 private:
  std::vector<double> values_;
  uint64_t seen_ = 0;
  std::mt19937_64 rng_{20240601};
};

struct ArmAccumulator {
  int64_t requests = 0, errors = 0, cost_n = 0;
  double cost_sum = 0;
  Reservoir latency_ms, ttft_ms;

  ArmSummary Summary() {
    ArmSummary s;
    s.requests = requests;
    s.errors = errors;
    s.error_rate = requests > 0 ? static_cast<double>(errors) / requests : 0;
    s.latency_p50_ms = latency_ms.Quantile(0.5);
    s.latency_p95_ms = latency_ms.Quantile(0.95);
    s.ttft_p95_ms = ttft_ms.Quantile(0.95);
    if (cost_n > 0) s.cost_per_request = cost_sum / cost_n;
    s.cost_samples = cost_n;
    return s;
  }
};

struct ComparisonAccumulator {
  int64_t comparisons = 0;
  VerdictCounts verdicts{};
  struct Comparator {
    int64_t n = 0, noise = 0;
    double sum = 0;
  };
  std::map<std::string, Comparator> comparators;
  ArmAccumulator production, candidate;
  int64_t findings = 0, findings_major = 0, findings_noise = 0;

  void Add(const Comparison& c) {
    ++comparisons;
    int v = static_cast<int>(c.verdict());
    if (v >= 0 && v < static_cast<int>(verdicts.size())) ++verdicts[v];
    for (const auto& s : c.scores()) {
      if (!s.applicable() || !std::isfinite(s.score())) continue;
      Comparator& k = comparators[s.name()];
      ++k.n;
      k.sum += s.score();
      if (s.noise_explained()) ++k.noise;
    }
    for (const auto& f : c.findings()) {
      ++findings;
      if (f.major()) ++findings_major;
      if (f.noise_explained()) ++findings_noise;
    }
    // Both sides answered (a candidate error still costs its call).
    auto side = [&](ArmAccumulator& a, bool error, double cost, int64_t latency, int64_t ttft) {
      ++a.requests;
      if (error) ++a.errors;
      if (cost > 0) {
        a.cost_sum += cost;
        ++a.cost_n;
      }
      if (latency > 0) a.latency_ms.Add(latency / 1000.0);
      if (ttft > 0) a.ttft_ms.Add(ttft / 1000.0);
    };
    bool both = c.verdict() == understudy::v1::VERDICT_BOTH_ERROR;
    side(production, both || c.verdict() == understudy::v1::VERDICT_PRODUCTION_ERROR,
         c.production_cost(), c.production_latency_micros(), c.production_ttft_micros());
    side(candidate, both || c.verdict() == understudy::v1::VERDICT_CANDIDATE_ERROR,
         c.candidate_cost(), c.candidate_latency_micros(), c.candidate_ttft_micros());
  }

  ComparisonSummary Summary() {
    ComparisonSummary s;
    s.comparisons = comparisons;
    s.verdicts = verdicts;
    int64_t judged = verdicts[understudy::v1::VERDICT_EQUIVALENT] +
                     verdicts[understudy::v1::VERDICT_MINOR_DIFF] +
                     verdicts[understudy::v1::VERDICT_MAJOR_DIFF];
    if (judged > 0) {
      s.agreement_rate =
          1.0 - static_cast<double>(verdicts[understudy::v1::VERDICT_MAJOR_DIFF]) / judged;
    }
    for (const auto& [name, k] : comparators) {
      s.comparators.push_back({name, k.n, k.n > 0 ? k.sum / k.n : 0, k.noise});
    }
    s.production = production.Summary();
    s.candidate = candidate.Summary();
    s.findings = findings;
    s.findings_major = findings_major;
    s.findings_noise_explained = findings_noise;
    return s;
  }
};

bool ExchangeIsError(const Exchange& e) {
  if (!e.error().empty()) return true;
  rollout::OutcomeClass c = rollout::OutcomeClassFromHttp(e.status_code());
  if (rollout::IsError(c)) return true;
  // A complete 2xx whose stream broke off is an invalid body for the judge.
  return e.incomplete() && e.status_code() >= 200 && e.status_code() < 300;
}

// Severity of a major diff for ranking: unexplained major findings first,
// then the lowest applicable similarity, then the newest.
struct DiffRank {
  int64_t major_unexplained = 0;
  double min_score = 1;
  int64_t time = 0;
};

DiffRank RankOf(const Comparison& c) {
  DiffRank r;
  for (const auto& f : c.findings()) {
    if (f.major() && !f.noise_explained()) ++r.major_unexplained;
  }
  for (const auto& s : c.scores()) {
    if (s.applicable() && std::isfinite(s.score())) r.min_score = std::min(r.min_score, s.score());
  }
  r.time = c.time_unix_micros();
  return r;
}

// LooksLikeAlias is true for a model name without a dated or numbered
// snapshot suffix ("gpt-4o" yes; "gpt-4o-2024-08-06",
// "claude-3-5-sonnet-20241022", "gpt-4-0613" no): the provider may move such a
// name to a new model.
bool LooksLikeAlias(const std::string& model) {
  for (size_t i = 0; i + 1 < model.size(); ++i) {
    if (model[i] != '-' && model[i] != '@') continue;
    size_t j = i + 1;
    while (j < model.size() && std::isdigit(static_cast<unsigned char>(model[j]))) ++j;
    if (j - i - 1 >= 4) return false;
  }
  return !model.empty();
}

// Closeness says how far a gate that did not fail went towards failing, 0
// (nowhere) to 1 (at the bound); nullopt when it cannot be told (no data).
//   - Sequential tests towards a regression (sprt_*) and the critical
//     ceiling: the statistic as a fraction of its bound.
//   - The two-sided always-valid tests (msprt_*) grow with evidence in
//     either direction, so their statistic says nothing about failing: use
//     the measured values against the threshold instead.
std::optional<double> Closeness(const GateEvaluation& g) {
  if (g.outcome() == understudy::v1::GATE_FAIL) return std::nullopt;
  if (g.detail().find("insufficient") != std::string::npos) return std::nullopt;
  const bool sequential = g.statistic().rfind("sprt_", 0) == 0 || g.gate() == "critical";
  if (sequential) {
    if (!(g.bound() > 0) || !std::isfinite(g.statistic_value())) return std::nullopt;
    return std::max(0.0, g.statistic_value() / g.bound());
  }
  if (g.candidate_samples() <= 0 || !std::isfinite(g.candidate_value())) return std::nullopt;
  if (g.gate() == "cost_per_request") {
    // Higher is worse; 0 at production's cost, 1 at the threshold.
    double span = g.threshold() - g.production_value();
    if (!(span > 0)) return std::nullopt;
    return std::max(0.0, (g.candidate_value() - g.production_value()) / span);
  }
  if (g.gate() == "satisfaction" || g.gate() == "agreement") {
    // Lower is worse; 0 at production's level (1.0 for agreement), 1 at the
    // threshold.
    double top = g.gate() == "agreement" ? 1.0 : g.production_value();
    double span = top - g.threshold();
    if (!(span > 0)) return std::nullopt;
    return std::max(0.0, (top - g.candidate_value()) / span);
  }
  return std::nullopt;
}

const rollout::StageConfig* CurrentStage(const ReportInputs& in) {
  int i = in.state.stage_index();
  if (i < 0 || i >= static_cast<int>(in.rollout.stages.size())) return nullptr;
  return &in.rollout.stages[i];
}

void Outcome(const ReportInputs& in, ReportData* d) {
  const auto& st = in.state;
  const int n = static_cast<int>(in.rollout.stages.size());
  const std::string where = absl::StrCat(
      "stage ", st.stage_index() + 1, " of ", n, " (", StagePercentText(in, st.stage_index()), ", ",
      WeightText(st.weight_basis_points()), " of live traffic on the candidate)");
  switch (st.phase()) {
    case understudy::v1::PHASE_PROMOTED:
      d->outcome = "promoted";
      d->outcome_text = absl::StrCat("promoted: ", WeightText(st.weight_basis_points()),
                                     " of traffic on ", in.candidate_model);
      break;
    case understudy::v1::PHASE_ROLLED_BACK:
      d->outcome = "rolled_back";
      d->outcome_text = absl::StrCat("rolled back: all traffic on ", in.production_model,
                                     st.last_reason().empty() ? "" : " — ", st.last_reason());
      break;
    case understudy::v1::PHASE_PAUSED:
      d->outcome = "paused";
      d->outcome_text = absl::StrCat("paused at ", where, st.paused_reason().empty() ? "" : " — ",
                                     st.paused_reason());
      break;
    case understudy::v1::PHASE_SHADOW:
    case understudy::v1::PHASE_CANARY:
      d->outcome = "in_progress";
      d->outcome_text = absl::StrCat("in progress at ", where);
      break;
    default:
      d->outcome = "not_started";
      d->outcome_text = "not started: no rollout state saved yet";
      break;
  }
}

void AddRisk(ReportData* d, std::string severity, std::string kind, std::string message) {
  d->risks.push_back({std::move(severity), std::move(kind), std::move(message)});
}

void Risks(const ReportInputs& in, ReportData* d) {
  const auto& st = in.state;
  const bool active = st.phase() == understudy::v1::PHASE_SHADOW ||
                      st.phase() == understudy::v1::PHASE_CANARY ||
                      st.phase() == understudy::v1::PHASE_PAUSED;
  if (st.phase() == understudy::v1::PHASE_PAUSED) {
    AddRisk(d, "high", "state",
            absl::StrCat("The rollout is paused", st.paused_reason().empty() ? "" : ": ",
                         st.paused_reason(),
                         ". The judge does not act until an operator resumes, "
                         "promotes or rolls "
                         "back."));
  }
  if (st.rollbacks() > 0 && st.phase() != understudy::v1::PHASE_ROLLED_BACK) {
    AddRisk(d, "medium", "state",
            absl::StrCat("This rollout was rolled back ", st.rollbacks(),
                         " time(s) before; look at the earlier rollback reasons below."));
  }

  // Gates near their bound in the judge's latest evaluation: the latest
  // health snapshot's (holds are not in the decision log), else the latest
  // logged decision that has gates.
  const google::protobuf::RepeatedPtrField<GateEvaluation>* gates = nullptr;
  int64_t gates_time = 0;
  for (auto it = d->decisions.rbegin(); it != d->decisions.rend(); ++it) {
    if (it->gates_size() > 0) {
      gates = &it->gates();
      gates_time = it->time_unix_micros();
      break;
    }
  }
  if (d->latest_health.has_value() && d->latest_health->gates_size() > 0 &&
      d->latest_health->time_unix_micros() >= gates_time) {
    gates = &d->latest_health->gates();
    gates_time = d->latest_health->time_unix_micros();
  }
  if (gates != nullptr) {
    const std::string when = TimeText(absl::FromUnixMicros(gates_time));
    for (const GateEvaluation& g : *gates) {
      std::optional<double> closeness = Closeness(g);
      if (!closeness.has_value() || *closeness < kNearBoundFraction) continue;
      AddRisk(d, *closeness >= 0.8 ? "high" : "medium", "gate_near_bound",
              absl::StrFormat("Gate %s came close to failing at %s (%.0f%% of the way): "
                              "candidate %.4g vs production %.4g, threshold %.4g; %s %.3g of "
                              "bound %.3g.",
                              g.gate(), when, 100 * std::min(*closeness, 1.0), g.candidate_value(),
                              g.production_value(), g.threshold(), g.statistic(),
                              g.statistic_value(), g.bound()));
    }
  }

  // Sample sizes against the plan, from the latest health snapshot.
  const rollout::StageConfig* stage = CurrentStage(in);
  if (active && d->latest_health.has_value()) {
    const HealthSnapshot& h = *d->latest_health;
    const bool shadow = st.phase() == understudy::v1::PHASE_SHADOW ||
                        (st.phase() == understudy::v1::PHASE_PAUSED &&
                         st.phase_before_pause() == understudy::v1::PHASE_SHADOW);
    const auto& cand = shadow ? h.shadow() : h.candidate();
    if (stage != nullptr && cand.requests() < stage->min_samples) {
      AddRisk(d, "medium", "few_samples",
              absl::StrFormat("Only %d candidate %s in this stage so far; promotion needs %d.",
                              cand.requests(), shadow ? "shadow calls" : "requests",
                              stage->min_samples));
    }
    const auto& sat = in.rollout.satisfaction;
    if (sat.enabled && (h.production().feedback_count() < sat.min_samples ||
                        h.candidate().feedback_count() < sat.min_samples)) {
      AddRisk(d, sat.must_have_data ? "medium" : "low", "few_samples",
              absl::StrFormat("Satisfaction is not judged yet: %d production and %d candidate "
                              "feedback scores (needs %d per arm)%s.",
                              h.production().feedback_count(), h.candidate().feedback_count(),
                              sat.min_samples,
                              sat.must_have_data ? "; it blocks promotion"
                                                 : "; it does not block promotion, so a drop "
                                                   "in satisfaction would go unnoticed"));
    }
    const auto& a = h.candidate();
    const auto& p = h.production();
    if (!shadow && a.requests() >= 50 && p.requests() >= 50) {
      if (a.error_rate() > std::max(p.error_rate() * 1.2, p.error_rate() + 0.002)) {
        AddRisk(
            d, "medium", "health",
            absl::StrFormat("The candidate's error rate (%s) is above production's (%s) "
                            "in this stage.",
                            FormatPercent(a.error_rate(), 2), FormatPercent(p.error_rate(), 2)));
      }
      if (p.latency_p95_ms() > 0 && a.latency_p95_ms() > 1.2 * p.latency_p95_ms()) {
        AddRisk(d, "medium", "health",
                absl::StrFormat("The candidate's p95 latency (%.0f ms) is %.2fx production's "
                                "(%.0f ms); the gate allows %.2fx.",
                                a.latency_p95_ms(), a.latency_p95_ms() / p.latency_p95_ms(),
                                p.latency_p95_ms(), in.rollout.latency.max_ratio));
      }
    }
  } else if (active && !d->latest_health.has_value()) {
    AddRisk(d, "low", "few_samples",
            "No health snapshot has been stored yet, so current per-arm health "
            "is unknown.");
  }

  // Shadow comparisons: too few to trust the agreement rate; candidate cost.
  const auto& ag = in.rollout.agreement;
  if (ag.enabled && active && d->shadow.comparisons < ag.min_samples) {
    AddRisk(d, "medium", "few_samples",
            absl::StrFormat("Only %d shadow comparisons; the agreement gate needs %d.",
                            d->shadow.comparisons, ag.min_samples));
  }
  const auto& pc = d->shadow.production.cost_per_request;
  const auto& cc = d->shadow.candidate.cost_per_request;
  if (pc && cc && *pc > 0 && *cc > 0.8 * in.rollout.cost.max_ratio * *pc) {
    AddRisk(d, "medium", "budget",
            absl::StrFormat("In shadow comparisons the candidate costs %.2fx production per "
                            "request; the cost gate allows %.2fx.",
                            *cc / *pc, in.rollout.cost.max_ratio));
  }
  if (in.shadow_budget_per_hour > 0 && d->shadow_spend_last_hour.has_value()) {
    double used = *d->shadow_spend_last_hour / in.shadow_budget_per_hour;
    if (used >= 0.8) {
      AddRisk(d, used >= 1 ? "high" : "medium", "budget",
              absl::StrFormat("Shadow calls spent %.4g in the last hour, %.0f%% of the %.4g "
                              "hourly budget; more shadow calls will be skipped.",
                              *d->shadow_spend_last_hour, 100 * used, in.shadow_budget_per_hour));
    }
  }

  // Noise: how much of the disagreement production shows against itself.
  if (d->shadow.findings >= 20) {
    double share = static_cast<double>(d->shadow.findings_noise_explained) / d->shadow.findings;
    if (share >= 0.3) {
      AddRisk(d, share >= 0.5 ? "high" : "medium", "noise",
              absl::StrFormat("%s of differences are within production's own noise: the "
                              "production model is not deterministic on this traffic, so "
                              "agreement is a weak signal. Consider a lower temperature or "
                              "more noise samples.",
                              FormatPercent(share, 0)));
    }
  }
  if (d->shadow.comparisons > 0 && d->noise_exchanges == 0) {
    AddRisk(d, "low", "noise",
            "No noise calibration calls (production vs itself) were seen: "
            "differences cannot be "
            "told apart from production's own variation (set shadow.noise_rate).");
  }
  if (d->eval.has_value() && d->eval->exchanges > 0 && d->eval->exchanges < 100) {
    AddRisk(d, "low", "few_samples",
            absl::StrFormat("The eval covered only %d exchanges; its rates have wide "
                            "uncertainty.",
                            d->eval->exchanges));
  }
}

void RevisitPlan(const ReportInputs& in, ReportData* d) {
  Revisit& r = d->revisit;
  if (in.revisit_fired.has_value()) {
    r.triggers = *in.revisit_fired;
  } else {
    // Offline: what the store and the inputs hold (no prices or traffic).
    drift::RevisitInputs ri;
    ri.now = in.now;
    ri.drift_events = d->drift;
    ri.deprecation_date = in.deprecation_date;
    ri.deprecation_notice = in.deprecation_notice;
    if (!d->eval_runs.empty()) ri.latest_eval = d->eval_runs.back();
    r.triggers = drift::EvaluateRevisit(ri);
  }
  for (const understudy::v1::RevisitTrigger& t : r.triggers) r.fired.push_back(drift::RevisitLine(t));
  const auto& st = in.state;
  const rollout::StageConfig* stage = CurrentStage(in);
  switch (st.phase()) {
    case understudy::v1::PHASE_PROMOTED: {
      absl::Time promoted = in.now;
      for (auto it = d->decisions.rbegin(); it != d->decisions.rend(); ++it) {
        if (it->to().phase() == understudy::v1::PHASE_PROMOTED) {
          promoted = absl::FromUnixMicros(it->time_unix_micros());
          break;
        }
      }
      r.date = promoted + absl::Hours(24 * 90);
      r.reason =
          "Promoted models drift: providers update them, prices change and the "
          "traffic mix "
          "moves. Re-run the eval set and look at production health 90 days "
          "after "
          "promotion, or sooner on any item below.";
      break;
    }
    case understudy::v1::PHASE_ROLLED_BACK:
      r.date = in.now + absl::Hours(24 * 30);
      r.reason = absl::StrCat("The candidate was rolled back", st.last_reason().empty() ? "" : " (",
                              st.last_reason(), st.last_reason().empty() ? "" : ")",
                              ". Retry after the cause is addressed or a new candidate version "
                              "ships; re-run the eval first.");
      break;
    case understudy::v1::PHASE_PAUSED:
      r.date = in.now;
      r.reason =
          "The rollout is paused and waits for an operator: resume, promote or "
          "roll back.";
      break;
    case understudy::v1::PHASE_SHADOW:
    case understudy::v1::PHASE_CANARY: {
      absl::Time started = absl::FromUnixMicros(st.stage_started_unix_micros());
      absl::Time ready = stage != nullptr ? started + stage->min_bake : in.now;
      r.date = std::max(ready, in.now);
      r.reason = stage != nullptr
                     ? absl::StrCat("The current stage can be promoted after its bake time (",
                                    DurationText(stage->min_bake), ") and ", stage->min_samples,
                                    " candidate samples; check the rollout then.")
                     : "Check the rollout's progress.";
      break;
    }
    default:
      r.date = in.now;
      r.reason = "No rollout has started yet.";
      break;
  }
  const std::string& p = in.production_model;
  const std::string& c = in.candidate_model;
  r.checklist.push_back(
      absl::StrCat("Prices: compare the provider's current prices for ", p, " and ", c,
                   " with compare.prices; the costs in this report come from the configured "
                   "prices."));
  r.checklist.push_back(
      absl::StrCat("Deprecation: check the provider's deprecation and "
                   "retirement schedule for ",
                   p, " (the rollback target) and ", c, "."));
  for (const std::string* m : {&p, &c}) {
    if (LooksLikeAlias(*m)) {
      r.checklist.push_back(absl::StrCat("Alias: ", *m,
                                         " has no dated snapshot in its name; the provider may "
                                         "move it to a new model. Pin a "
                                         "snapshot, or re-run the eval when it moves."));
    }
  }
  r.checklist.push_back(
      "Re-run the eval dataset (understudy eval) after any change to prompts, "
      "system messages, "
      "tool schemas, response formats or sampling parameters.");
  if (st.phase() == understudy::v1::PHASE_ROLLED_BACK) {
    r.checklist.push_back(
        "Fix the cause of the rollback before retrying; `understudy promote` "
        "restarts the plan "
        "at the first stage.");
  }
  if (in.exchanges_retention_hours > 0) {
    r.checklist.push_back(absl::StrCat("Evidence: exchanges are kept ",
                                       in.exchanges_retention_hours,
                                       " h; run `understudy export` to keep "
                                       "the exchanges behind this report."));
  }
}

}  // namespace

std::string VerdictName(int verdict) {
  return std::string(compare::VerdictName(static_cast<understudy::v1::Verdict>(verdict)));
}

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone());
}

std::string DurationText(absl::Duration d) {
  if (d == absl::ZeroDuration()) return "0s";
  if (d == absl::InfiniteDuration()) return "unlimited";
  int64_t s = absl::ToInt64Seconds(d);
  if (s <= 0) return absl::FormatDuration(d);
  std::string out;
  if (s >= 86400) absl::StrAppend(&out, s / 86400, "d");
  if (s % 86400 >= 3600) absl::StrAppend(&out, (s % 86400) / 3600, "h");
  if (s % 3600 >= 60) absl::StrAppend(&out, (s % 3600) / 60, "m");
  if (s % 60 != 0) absl::StrAppend(&out, s % 60, "s");
  return out;
}

std::string FormatPercent(double fraction, int digits) {
  if (!std::isfinite(fraction)) return "n/a";
  return absl::StrFormat("%.*f%%", digits, 100 * fraction);
}

std::string FormatNumber(double v) {
  if (!std::isfinite(v)) return "n/a";
  return absl::StrFormat("%.4g", v);
}

std::string WeightText(int32_t basis_points) {
  if (basis_points % 100 == 0) return absl::StrCat(basis_points / 100, "%");
  return absl::StrFormat("%.2f%%", basis_points / 100.0);
}

std::string StagePercentText(const ReportInputs& inputs, int stage_index) {
  if (stage_index < 0 || stage_index >= static_cast<int>(inputs.rollout.stages.size())) {
    return "unknown stage";
  }
  int32_t p = inputs.rollout.stages[stage_index].percent;
  return p == 0 ? std::string("shadow") : absl::StrCat(p, "%");
}

absl::StatusOr<ReportData> Gather(storage::Store& store, const ReportInputs& in) {
  if (in.lookback <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("report: lookback must be positive");
  }
  ReportData d;
  d.inputs = &in;
  d.since = in.now - in.lookback;

  // Exchanges: eval results per arm, and which request ids are eval ones.
  absl::flat_hash_set<std::string> eval_ids;
  ArmAccumulator eval_prod, eval_cand;
  int64_t eval_exchanges = 0, scanned = 0;
  bool capped = false;
  RETURN_IF_ERROR(store.Visit(
      storage::RecordKind::kExchanges, d.since, [&](const google::protobuf::Message& m) {
        if (++scanned > kMaxExchangesScanned) {
          capped = true;
          return false;
        }
        const auto& e = static_cast<const Exchange&>(m);
        switch (e.source()) {
          case understudy::v1::SOURCE_EVAL: {
            ++eval_exchanges;
            eval_ids.insert(e.request_id());
            ArmAccumulator& a = e.arm() == understudy::v1::ARM_CANDIDATE ? eval_cand : eval_prod;
            ++a.requests;
            if (ExchangeIsError(e)) ++a.errors;
            if (e.end_offset_micros() > 0) a.latency_ms.Add(e.end_offset_micros() / 1000.0);
            if (e.first_body_byte_offset_micros() > 0) {
              a.ttft_ms.Add(e.first_body_byte_offset_micros() / 1000.0);
            }
            break;
          }
          case understudy::v1::SOURCE_NOISE:
            ++d.noise_exchanges;
            break;
          case understudy::v1::SOURCE_SHADOW:
            ++d.shadow_exchanges;
            break;
          case understudy::v1::SOURCE_LIVE:
            ++d.live_exchanges;
            break;
          default:
            break;
        }
        return true;
      }));
  if (capped) {
    d.notes.push_back(absl::StrCat("Only the oldest ", kMaxExchangesScanned,
                                   " exchanges of the lookback window were scanned."));
  }

  // Comparisons: eval ones by request id, the rest are shadow comparisons.
  ComparisonAccumulator eval_cmp, shadow_cmp;
  std::deque<Comparison> majors;
  double spend_last_hour = 0;
  bool any_last_hour = false;
  const int64_t hour_ago = absl::ToUnixMicros(in.now - absl::Hours(1));
  scanned = 0;
  capped = false;
  RETURN_IF_ERROR(store.Visit(
      storage::RecordKind::kComparisons, d.since, [&](const google::protobuf::Message& m) {
        if (++scanned > kMaxComparisonsScanned) {
          capped = true;
          return false;
        }
        const auto& c = static_cast<const Comparison&>(m);
        if (eval_ids.contains(c.request_id())) {
          eval_cmp.Add(c);
          return true;
        }
        shadow_cmp.Add(c);
        if (c.time_unix_micros() >= hour_ago) {
          any_last_hour = true;
          // The shadow call went to the arm that did not serve the live
          // request.
          spend_last_hour += c.live_arm() == understudy::v1::ARM_CANDIDATE ? c.production_cost()
                                                                           : c.candidate_cost();
        }
        if (c.verdict() == understudy::v1::VERDICT_MAJOR_DIFF) {
          majors.push_back(c);
          if (majors.size() > kMajorDiffPool) majors.pop_front();
        }
        return true;
      }));
  if (capped) {
    d.notes.push_back(absl::StrCat("Only the oldest ", kMaxComparisonsScanned,
                                   " comparisons of the lookback window were scanned."));
  }
  if (eval_exchanges > 0) {
    EvalSummary e;
    e.exchanges = eval_exchanges;
    e.production = eval_prod.Summary();
    e.candidate = eval_cand.Summary();
    e.comparisons = eval_cmp.Summary();
    // Exchanges carry no price: take cost per request from the comparisons.
    e.production.cost_per_request = e.comparisons.production.cost_per_request;
    e.production.cost_samples = e.comparisons.production.cost_samples;
    e.candidate.cost_per_request = e.comparisons.candidate.cost_per_request;
    e.candidate.cost_samples = e.comparisons.candidate.cost_samples;
    d.eval = std::move(e);
  }
  d.shadow = shadow_cmp.Summary();
  if (any_last_hour) d.shadow_spend_last_hour = spend_last_hour;

  std::vector<std::pair<DiffRank, size_t>> ranked;
  for (size_t i = 0; i < majors.size(); ++i) ranked.push_back({RankOf(majors[i]), i});
  std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
    if (a.first.major_unexplained != b.first.major_unexplained) {
      return a.first.major_unexplained > b.first.major_unexplained;
    }
    if (a.first.min_score != b.first.min_score) return a.first.min_score < b.first.min_score;
    return a.first.time > b.first.time;
  });
  for (size_t i = 0; i < ranked.size() && i < kTopMajorDiffs; ++i) {
    d.top_major_diffs.push_back(std::move(majors[ranked[i].second]));
  }

  ASSIGN_OR_RETURN(d.decisions, store.ListDecisions(d.since, storage::kNoLimit));
  // Drift records go to their own section; the rollout's decisions stay
  // the state transitions.
  {
    std::vector<understudy::v1::Decision> transitions;
    for (understudy::v1::Decision& dec : d.decisions) {
      const bool drift = dec.action() == understudy::v1::ACTION_DRIFT ||
                         dec.action() == understudy::v1::ACTION_DRIFT_BASELINE;
      (drift ? d.drift : transitions).push_back(std::move(dec));
    }
    d.decisions = std::move(transitions);
  }

  ASSIGN_OR_RETURN(d.eval_runs, store.ListEvalRuns(d.since, storage::kNoLimit));

  // The latest health snapshot (and the latest with traffic): look in the
  // last hour first (cheap), then in the whole window.
  auto latest = [&](absl::Time since) -> absl::Status {
    return store.Visit(storage::RecordKind::kHealth, since,
                       [&](const google::protobuf::Message& m) {
                         const auto& h = static_cast<const HealthSnapshot&>(m);
                         d.latest_health = h;
                         if (h.production().requests() > 0 || h.candidate().requests() > 0 ||
                             h.shadow().requests() > 0) {
                           d.latest_health_with_traffic = h;
                         }
                         return true;
                       });
  };
  const absl::Time hour_start = std::max(d.since, in.now - absl::Hours(1));
  RETURN_IF_ERROR(latest(hour_start));
  if (!d.latest_health_with_traffic.has_value() && hour_start > d.since) {
    std::optional<HealthSnapshot> newest = d.latest_health;
    RETURN_IF_ERROR(latest(d.since));
    if (newest.has_value()) d.latest_health = std::move(newest);
  }

  Outcome(in, &d);
  Risks(in, &d);
  RevisitPlan(in, &d);
  return d;
}

}  // namespace understudy::report::internal
