// The judge simulator: synthetic streams through the real Controller.
#include "rollout/simulator.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/clock.h"
#include "common/strings.h"
#include "rollout/stats.h"

namespace understudy::rollout {

absl::StatusOr<Scenario> ParseScenario(std::string_view name) {
  if (name == "aa") return Scenario::kAA;
  if (name == "error") return Scenario::kError;
  if (name == "latency") return Scenario::kLatency;
  if (name == "satisfaction") return Scenario::kSatisfaction;
  return absl::InvalidArgumentError(absl::StrCat(
      "--scenario: must be aa, error, latency or satisfaction, got \"", Av(name), "\""));
}

const char* ScenarioName(Scenario s) {
  switch (s) {
    case Scenario::kAA: return "aa";
    case Scenario::kError: return "error";
    case Scenario::kLatency: return "latency";
    case Scenario::kSatisfaction: return "satisfaction";
  }
  return "?";
}

namespace {

using understudy::v1::ARM_CANDIDATE;
using understudy::v1::ARM_PRODUCTION;

const absl::Time kStart = absl::FromUnixSeconds(1700000000);

absl::Status Validate(const SimulationOptions& o) {
  auto bad = [](const char* flag, auto v, const char* want) {
    return absl::InvalidArgumentError(absl::StrCat(flag, ": must be ", want, ", got ", v));
  };
  if (o.runs < 1 || o.runs > 1000000) return bad("--runs", o.runs, "in 1..1000000");
  if (!(o.rps > 0 && o.rps <= 100000)) return bad("--rps", o.rps, "in (0, 100000]");
  if (!(o.split_percent > 0 && o.split_percent < 100)) return bad("--split", o.split_percent, "in (0, 100)");
  if (!(o.baseline_error >= 0 && o.baseline_error < 1)) {
    return bad("--baseline-error", o.baseline_error, "in [0, 1)");
  }
  if (!(o.factor > 0 && o.factor <= 1000)) return bad("--factor", o.factor, "in (0, 1000]");
  if (!(o.satisfaction >= 0 && o.satisfaction <= 1)) return bad("satisfaction", o.satisfaction, "in [0, 1]");
  if (o.config.stages.empty() || o.config.stages.back().percent != 100) {
    return absl::InvalidArgumentError("config: the stage plan must end at 100");
  }
  return absl::OkStatus();
}

// Arm parameters at one instant.
struct ArmModel {
  double error = 0;
  double latency_factor = 1;
  double satisfaction = 0.8;
  double cost = 0;
};

struct Rng {
  explicit Rng(uint64_t seed) : gen(seed) {}
  double U() { return uni(gen); }
  double N() { return norm(gen); }
  std::mt19937_64 gen;
  std::uniform_real_distribution<double> uni{0.0, 1.0};
  std::normal_distribution<double> norm{0.0, 1.0};
};

struct RunResult {
  bool rolled_back = false;
  bool promoted = false;
  bool paused = false;
  bool before_onset = false;
  double delay_minutes = 0;
  double delay_requests = 0;
  double requests = 0;
};

class Streams {
 public:
  Streams(const SimulationOptions& o) : o_(o) {}
  ArmModel Production() const {
    return {o_.baseline_error, 1.0, o_.satisfaction, o_.cost_production};
  }
  ArmModel Candidate(bool active) const {
    ArmModel m{o_.baseline_error, 1.0, o_.satisfaction, o_.cost_candidate};
    if (!active) return m;
    switch (o_.scenario) {
      case Scenario::kError: m.error = std::min(1.0, o_.baseline_error * o_.factor); break;
      case Scenario::kLatency: m.latency_factor = o_.factor; break;
      case Scenario::kSatisfaction:
        m.satisfaction = std::max(0.0, o_.satisfaction - o_.satisfaction_drop);
        break;
      case Scenario::kAA: break;
    }
    return m;
  }
  double LatencyMs(Rng& rng, double factor) const {
    return o_.latency_median_ms * factor * std::exp(o_.latency_sigma * rng.N());
  }
  Outcome Draw(Rng& rng, const ArmModel& m) const {
    Outcome out;
    out.status = rng.U() < m.error ? OutcomeClass::kServerError : OutcomeClass::kOk;
    double z = rng.N();
    out.latency = absl::Milliseconds(o_.latency_median_ms * m.latency_factor *
                                     std::exp(o_.latency_sigma * z));
    out.ttft = absl::Milliseconds(o_.ttft_median_ms * m.latency_factor *
                                  std::exp(o_.latency_sigma * z));
    out.cost = m.cost;
    return out;
  }

 private:
  const SimulationOptions& o_;
};

int StartStage(const SimulationOptions& o) {
  if (o.scenario == Scenario::kAA) return 0;
  int index = -1;
  for (size_t i = 0; i < o.config.stages.size(); ++i) {
    int p = o.config.stages[i].percent;
    if (p > 0 && p < 100 && p <= o.split_percent) index = static_cast<int>(i);
  }
  if (index < 0) {
    for (size_t i = 0; i < o.config.stages.size(); ++i) {
      if (o.config.stages[i].percent > 0) return static_cast<int>(i);
    }
  }
  return std::max(index, 0);
}

int32_t StartWeight(const SimulationOptions& o, int stage) {
  if (o.scenario == Scenario::kAA) return o.config.stages[stage].percent * 100;
  return static_cast<int32_t>(std::lround(o.split_percent * 100));
}

RunResult RunJudge(const SimulationOptions& o, uint64_t seed) {
  ManualClock clock(kStart);
  Router router("sim");
  InMemoryTransitionLog log;
  Controller ctl(o.config, clock, router, log);
  Rng rng(seed);
  Streams streams(o);
  RunResult r;

  int stage = StartStage(o);
  if (stage != 0 || o.scenario != Scenario::kAA) {
    understudy::v1::RolloutState s = ctl.State();
    s.set_stage_index(stage);
    s.set_weight_basis_points(StartWeight(o, stage));
    s.set_phase(o.config.stages[stage].percent == 0 ? understudy::v1::PHASE_SHADOW
                                                    : understudy::v1::PHASE_CANARY);
    s.set_stage_started_unix_micros(absl::ToUnixMicros(kStart));
    (void)ctl.Restore(s);  // same plan: cannot fail
  }

  const absl::Time onset = kStart + o.onset;
  const int64_t tick_every = std::max<int64_t>(1, absl::ToInt64Seconds(o.config.tick_interval));
  const int64_t max_seconds = absl::ToInt64Seconds(o.max_time);
  bool shadow_phase = ctl.State().phase() == understudy::v1::PHASE_SHADOW;
  double frac_carry = 0;
  double cand_after_onset = 0;
  for (int64_t sec = 0; sec < max_seconds; ++sec) {
    absl::Time now = kStart + absl::Seconds(sec);
    bool active = now >= onset;
    ArmModel pm = streams.Production();
    ArmModel cm = streams.Candidate(active);
    double w = router.WeightBasisPoints() / 10000.0;
    frac_carry += o.rps;
    int n = static_cast<int>(frac_carry);
    frac_carry -= n;
    for (int i = 0; i < n; ++i) {
      bool cand = rng.U() < w;
      const ArmModel& m = cand ? cm : pm;
      Outcome out = streams.Draw(rng, m);
      ctl.RecordOutcome(cand ? ARM_CANDIDATE : ARM_PRODUCTION, out);
      r.requests += 1;
      if (cand && active) cand_after_onset += 1;
      if (o.feedback_rate > 0 && rng.U() < o.feedback_rate) {
        (void)ctl.RecordFeedback(cand ? ARM_CANDIDATE : ARM_PRODUCTION,
                                 rng.U() < m.satisfaction ? 1.0 : 0.0);
      }
      if (shadow_phase && !cand && rng.U() < o.shadow_rate) {
        ShadowComparison c;
        c.candidate = streams.Draw(rng, cm);
        c.major_diff = rng.U() >= o.agreement;
        ctl.RecordComparison(c);
        if (active) cand_after_onset += 1;
      }
    }
    clock.Advance(absl::Seconds(1));
    if ((sec + 1) % tick_every != 0) continue;
    absl::StatusOr<understudy::v1::Decision> d = ctl.Tick();
    if (!d.ok()) break;
    absl::Time t = clock.Now();
    if (d->action() == understudy::v1::ACTION_ROLLBACK) {
      r.rolled_back = true;
      r.before_onset = o.scenario == Scenario::kAA || t <= onset;
      r.delay_minutes = absl::ToDoubleMinutes(t - onset);
      r.delay_requests = cand_after_onset;
      return r;
    }
    if (d->to().phase() == understudy::v1::PHASE_PROMOTED) {
      r.promoted = true;
      return r;
    }
    if (d->to().phase() == understudy::v1::PHASE_PAUSED) {
      r.paused = true;
      return r;
    }
    shadow_phase = d->to().phase() == understudy::v1::PHASE_SHADOW;
  }
  return r;
}

double Binomial(Rng& rng, int64_t n, double p) {
  if (n <= 0 || p <= 0) return 0;
  std::binomial_distribution<int64_t> b(n, std::min(1.0, p));
  return static_cast<double>(b(rng.gen));
}

RunResult RunFlagger(const SimulationOptions& o, uint64_t seed) {
  Rng rng(seed ^ 0x9e3779b97f4a7c15ULL);
  Streams streams(o);
  RunResult r;
  const auto& stages = o.config.stages;
  int stage = StartStage(o);
  double weight = StartWeight(o, stage) / 10000.0;
  const double b = o.baseline_error;
  const double thr = o.flagger_max_error_rate > 0
                         ? o.flagger_max_error_rate
                         : std::max(b * o.config.error_rate.max_ratio,
                                    b + o.config.error_rate.max_abs_increase);
  // Production's p95 is known to a Flagger user as a fixed SLO.
  const double p95 = o.latency_median_ms * std::exp(1.6448536 * o.latency_sigma);
  const double latency_thr = o.config.latency.max_ratio * p95;
  const double sat_thr = o.satisfaction - o.config.satisfaction.max_drop;
  int failed = 0;
  absl::Duration stage_age;
  double stage_samples = 0, cand_after_onset = 0;
  const absl::Duration step = o.flagger_interval;
  std::vector<double> lat;
  for (absl::Duration t = absl::ZeroDuration(); t < o.max_time; t += step) {
    bool active = t >= o.onset;
    ArmModel cm = streams.Candidate(active);
    bool shadow = stages[stage].percent == 0;
    double share = shadow ? o.shadow_rate : weight;
    int64_t n = static_cast<int64_t>(Binomial(rng, static_cast<int64_t>(o.rps * absl::ToDoubleSeconds(step)), share));
    double k = Binomial(rng, n, cm.error);
    bool fail = n > 0 && k / n > thr;
    // request-duration check: p95 of this interval's successful requests.
    int64_t m = std::min<int64_t>(n, 5000);
    lat.clear();
    for (int64_t i = 0; i < m; ++i) lat.push_back(streams.LatencyMs(rng, cm.latency_factor));
    if (!lat.empty()) {
      size_t idx = static_cast<size_t>(std::ceil(0.95 * lat.size())) - 1;
      std::nth_element(lat.begin(), lat.begin() + idx, lat.end());
      fail = fail || lat[idx] > latency_thr;
    }
    if (o.scenario == Scenario::kSatisfaction && !shadow) {
      double f = Binomial(rng, n, o.feedback_rate);
      if (f > 0) fail = fail || Binomial(rng, static_cast<int64_t>(f), cm.satisfaction) / f < sat_thr;
    }
    failed += fail ? 1 : 0;
    stage_samples += n;
    if (active) cand_after_onset += n;
    stage_age += step;
    if (failed >= o.flagger_threshold) {
      r.rolled_back = true;
      r.before_onset = o.scenario == Scenario::kAA || t + step <= o.onset;
      r.delay_minutes = absl::ToDoubleMinutes(t + step - o.onset);
      r.delay_requests = cand_after_onset;
      return r;
    }
    if (stage_age >= stages[stage].min_bake && stage_samples >= stages[stage].min_samples) {
      ++stage;
      stage_age = absl::ZeroDuration();
      stage_samples = 0;
      weight = stages[stage].percent / 100.0;
      if (stages[stage].percent >= 100) {
        r.promoted = true;
        return r;
      }
    }
  }
  return r;
}

double Percentile(std::vector<double> v, double q) {
  if (v.empty()) return std::nan("");
  std::sort(v.begin(), v.end());
  size_t idx = static_cast<size_t>(std::ceil(q * v.size()));
  idx = std::clamp<size_t>(idx, 1, v.size()) - 1;
  return v[idx];
}

DelayStats Summarise(const std::vector<RunResult>& runs) {
  DelayStats s;
  s.runs = static_cast<int>(runs.size());
  std::vector<double> req, min;
  for (const RunResult& r : runs) {
    s.promoted += r.promoted;
    s.paused += r.paused;
    if (!r.rolled_back) continue;
    if (r.before_onset) {
      ++s.false_rollbacks;
    } else {
      ++s.rollbacks;
      req.push_back(r.delay_requests);
      min.push_back(r.delay_minutes);
    }
  }
  s.rollback_rate = static_cast<double>(s.rollbacks + s.false_rollbacks) / std::max(1, s.runs);
  s.detection_delay_requests_median = Percentile(req, 0.5);
  s.detection_delay_requests_p90 = Percentile(req, 0.9);
  s.detection_delay_minutes_median = Percentile(min, 0.5);
  s.detection_delay_minutes_p90 = Percentile(min, 0.9);
  return s;
}

double NormalSf(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

std::string Num(double v) {
  if (!std::isfinite(v)) return "null";
  return absl::StrFormat("%.6g", v);
}

std::string DelayJson(const DelayStats& s) {
  return absl::StrCat(
      "{\"runs\":", s.runs, ",\"rollbacks\":", s.rollbacks,
      ",\"false_rollbacks\":", s.false_rollbacks, ",\"promoted\":", s.promoted,
      ",\"paused\":", s.paused,
      ",\"false_rollback_rate\":", Num(static_cast<double>(s.false_rollbacks) / std::max(1, s.runs)),
      ",\"power\":", Num(static_cast<double>(s.rollbacks) / std::max(1, s.runs)),
      ",\"detection_delay_requests_median\":", Num(s.detection_delay_requests_median),
      ",\"detection_delay_requests_p90\":", Num(s.detection_delay_requests_p90),
      ",\"detection_delay_minutes_median\":", Num(s.detection_delay_minutes_median),
      ",\"detection_delay_minutes_p90\":", Num(s.detection_delay_minutes_p90), "}");
}

}  // namespace

absl::StatusOr<SimulationReport> RunSimulation(const SimulationOptions& o) {
  if (absl::Status s = Validate(o); !s.ok()) return s;
  SimulationReport rep;
  rep.options = o;
  std::vector<RunResult> judge, flagger;
  for (int i = 0; i < o.runs; ++i) {
    uint64_t seed = o.seed * 1000003ULL + static_cast<uint64_t>(i) * 7919ULL;
    judge.push_back(RunJudge(o, seed));
    flagger.push_back(RunFlagger(o, seed));
    rep.simulated_requests += judge.back().requests;
  }
  rep.judge = Summarise(judge);
  rep.flagger = Summarise(flagger);
  rep.false_rollback_rate = static_cast<double>(rep.judge.false_rollbacks) / o.runs;
  rep.power = o.scenario == Scenario::kAA ? std::nan("")
                                          : static_cast<double>(rep.judge.rollbacks) / o.runs;
  double cand_rps = o.rps * o.split_percent / 100.0;
  double n = std::nan("");
  if (o.scenario == Scenario::kError && o.factor > 1 && o.baseline_error > 0) {
    double p1 = std::min(0.999, o.baseline_error * o.factor);
    n = WaldExpectedSamples(o.baseline_error, p1, o.config.alpha, o.config.beta);
  } else if (o.scenario == Scenario::kLatency && o.factor > 1) {
    // Fraction slower than max_ratio × production p95, without and with the regression.
    double z = 1.6448536 + std::log(o.config.latency.max_ratio) / o.latency_sigma;
    double q0 = NormalSf(z);
    double q1 = NormalSf(z - std::log(o.factor) / o.latency_sigma);
    if (q1 > q0) n = WaldExpectedSamples(q0, q1, o.config.alpha, o.config.beta);
  }
  rep.sprt_optimal_requests = n;
  rep.sprt_optimal_minutes = n / cand_rps / 60.0;
  return rep;
}

std::string FormatReportJson(const SimulationReport& r) {
  const SimulationOptions& o = r.options;
  return absl::StrCat(
      "{\"scenario\":\"", ScenarioName(o.scenario), "\",\"runs\":", o.runs, ",\"seed\":", o.seed,
      ",\"rps\":", Num(o.rps), ",\"split_percent\":", Num(o.split_percent),
      ",\"baseline_error\":", Num(o.baseline_error), ",\"factor\":", Num(o.factor),
      ",\"alpha\":", Num(o.config.alpha), ",\"beta\":", Num(o.config.beta),
      ",\"false_rollback_rate\":", Num(r.false_rollback_rate), ",\"power\":", Num(r.power),
      ",\"rollback_rate\":", Num(r.judge.rollback_rate),
      ",\"promoted_rate\":", Num(static_cast<double>(r.judge.promoted) / o.runs),
      ",\"paused_rate\":", Num(static_cast<double>(r.judge.paused) / o.runs),
      ",\"detection_delay_requests_median\":", Num(r.judge.detection_delay_requests_median),
      ",\"detection_delay_requests_p90\":", Num(r.judge.detection_delay_requests_p90),
      ",\"detection_delay_minutes_median\":", Num(r.judge.detection_delay_minutes_median),
      ",\"detection_delay_minutes_p90\":", Num(r.judge.detection_delay_minutes_p90),
      ",\"sprt_optimal_requests\":", Num(r.sprt_optimal_requests),
      ",\"sprt_optimal_minutes\":", Num(r.sprt_optimal_minutes),
      ",\"judge_vs_sprt_optimal\":",
      Num(r.judge.detection_delay_requests_median / r.sprt_optimal_requests),
      ",\"judge\":", DelayJson(r.judge), ",\"flagger\":", DelayJson(r.flagger),
      ",\"simulated_requests\":", Num(r.simulated_requests), "}\n");
}

std::string FormatReportTable(const SimulationReport& r) {
  const SimulationOptions& o = r.options;
  std::string out = absl::StrFormat(
      "scenario %s: %d runs, seed %d, %.0f rps, split %.2f%%, baseline error %.4f, factor %.2f, "
      "alpha %.3g, beta %.3g\n",
      ScenarioName(o.scenario), o.runs, o.seed, o.rps, o.split_percent, o.baseline_error,
      o.factor, o.config.alpha, o.config.beta);
  absl::StrAppendFormat(&out, "%-22s %12s %8s %10s %10s %10s %10s %9s %7s\n", "rule",
                        "false_rollbk", "power", "req_med", "req_p90", "min_med", "min_p90",
                        "promoted", "paused");
  auto row = [&](const char* name, const DelayStats& s) {
    absl::StrAppendFormat(
        &out, "%-22s %12s %8s %10s %10s %10s %10s %9s %7s\n", name,
        Num(static_cast<double>(s.false_rollbacks) / s.runs),
        o.scenario == Scenario::kAA ? "-" : Num(static_cast<double>(s.rollbacks) / s.runs),
        Num(s.detection_delay_requests_median), Num(s.detection_delay_requests_p90),
        Num(s.detection_delay_minutes_median), Num(s.detection_delay_minutes_p90),
        Num(static_cast<double>(s.promoted) / s.runs), Num(static_cast<double>(s.paused) / s.runs));
  };
  row("judge (SPRT/mSPRT)", r.judge);
  row(absl::StrFormat("flagger (%d x %s)", o.flagger_threshold,
                      absl::FormatDuration(o.flagger_interval)).c_str(),
      r.flagger);
  absl::StrAppendFormat(&out, "%-22s %12s %8s %10s %10s %10s\n", "SPRT-optimal E[N]", "-", "-",
                        Num(r.sprt_optimal_requests), "-", Num(r.sprt_optimal_minutes));
  return out;
}

}  // namespace understudy::rollout
