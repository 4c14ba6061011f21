// The judge simulator: synthetic users through the real Controller.
#include "rollout/simulator.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <memory>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/clock.h"
#include "common/strings.h"
#include "rollout/judge.h"
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

absl::Status ApplyHeterogeneity(std::string_view name, SimulationOptions* o) {
  if (name == "none") {
    o->users = 0;
    o->activity_sigma = o->always_fail_fraction = o->user_error_sigma = 0;
    o->user_latency_sigma = o->user_satisfaction_sd = 0;
    return absl::OkStatus();
  }
  if (name == "mild") {
    o->users = 20000;
    o->activity_sigma = 1.0;
    o->always_fail_fraction = 0.002;
    o->user_error_sigma = 0.5;
    o->user_latency_sigma = 0.2;
    o->user_satisfaction_sd = 0.1;
    return absl::OkStatus();
  }
  if (name == "heavy" || name == "wild") {
    o->users = 10000;
    o->activity_sigma = 1.5;
    o->always_fail_fraction = 0.005;
    o->user_error_sigma = 1.0;
    o->user_latency_sigma = 0.3;
    o->user_satisfaction_sd = 0.15;
    if (name == "wild") {
      o->diurnal_amplitude = 0.3;
      o->diurnal_period = absl::Hours(2);
      o->bursts_per_hour = 2;
      o->burst_duration = absl::Minutes(1);
      o->burst_factor = 3;
      o->outages = {absl::Minutes(20), absl::Minutes(70)};
      o->outage_duration = absl::Minutes(2);
      o->outage_error = 0.9;
      o->restart_at = absl::Minutes(33);
    }
    return absl::OkStatus();
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "--heterogeneity: must be none, mild, heavy or wild, got \"", Av(name), "\""));
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
  if (o.threads < 1 || o.threads > 256) return bad("--threads", o.threads, "in 1..256");
  if (!(o.rps > 0 && o.rps <= 100000)) return bad("--rps", o.rps, "in (0, 100000]");
  if (!(o.split_percent > 0 && o.split_percent < 100)) return bad("--split", o.split_percent, "in (0, 100)");
  if (!(o.baseline_error >= 0 && o.baseline_error < 1)) {
    return bad("--baseline-error", o.baseline_error, "in [0, 1)");
  }
  if (!(o.factor > 0 && o.factor <= 1000)) return bad("--factor", o.factor, "in (0, 1000]");
  if (!(o.latency_factor > 0 && o.latency_factor <= 1000)) {
    return bad("--latency-factor", o.latency_factor, "in (0, 1000]");
  }
  if (!(o.satisfaction >= 0 && o.satisfaction <= 1)) return bad("satisfaction", o.satisfaction, "in [0, 1]");
  if (!(o.satisfaction_drop >= -1 && o.satisfaction_drop <= 1)) {
    return bad("--satisfaction-drop", o.satisfaction_drop, "in [-1, 1]");
  }
  if (!(o.quantile == 0 || (o.quantile >= 0.5 && o.quantile <= 0.999))) {
    return bad("--quantile", o.quantile, "0 or in [0.5, 0.999]");
  }
  if (o.users < 0 || o.users > 10000000) return bad("--users", o.users, "in 0..10000000");
  if (!(o.always_fail_fraction >= 0 && o.always_fail_fraction < 1)) {
    return bad("--always-fail", o.always_fail_fraction, "in [0, 1)");
  }
  for (double s : {o.activity_sigma, o.user_error_sigma, o.user_latency_sigma}) {
    if (!(s >= 0 && s <= 5)) return bad("user sigma", s, "in [0, 5]");
  }
  if (!(o.diurnal_amplitude >= 0 && o.diurnal_amplitude < 1)) {
    return bad("--diurnal", o.diurnal_amplitude, "in [0, 1)");
  }
  if (!(o.outage_error >= 0 && o.outage_error <= 1)) return bad("outage_error", o.outage_error, "in [0, 1]");
  if (o.config.stages.empty() || o.config.stages.back().percent != 100) {
    return absl::InvalidArgumentError("config: the stage plan must end at 100");
  }
  if (!o.only_gate.empty()) {
    static const char* kGates[] = {"critical",     "error_rate",       "latency_p95", "ttft_p95",
                                   "satisfaction", "cost_per_request", "agreement"};
    bool known = false;
    for (const char* g : kGates) known = known || o.only_gate == g;
    if (!known) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--gate: must be one of critical, error_rate, latency_p95, ttft_p95, satisfaction, "
          "cost_per_request, agreement, got \"", Av(o.only_gate), "\""));
    }
  }
  return absl::OkStatus();
}

// The config the judge runs with: the quantile knob and --gate applied.
RolloutConfig EffectiveConfig(const SimulationOptions& o) {
  RolloutConfig c = o.config;
  if (o.quantile > 0) {
    c.latency.quantile = o.quantile;
    c.ttft.quantile = o.quantile;
  }
  if (!o.only_gate.empty()) {
    const std::string& g = o.only_gate;
    c.critical.enabled = g == "critical";
    c.error_rate.enabled = g == "error_rate";
    c.latency.enabled = g == "latency_p95";
    c.ttft.enabled = g == "ttft_p95";
    c.satisfaction.enabled = g == "satisfaction";
    c.cost.enabled = g == "cost_per_request";
    c.agreement.enabled = g == "agreement";
  }
  return c;
}

struct Rng {
  explicit Rng(uint64_t seed) : gen(seed) {}
  double U() { return uni(gen); }
  double N() { return norm(gen); }
  std::mt19937_64 gen;
  std::uniform_real_distribution<double> uni{0.0, 1.0};
  std::normal_distribution<double> norm{0.0, 1.0};
};

struct User {
  int32_t bucket = 0;
  bool always_fail = false;
  double err_mult = 1;
  double lat_mult = 1;
  double sat = 0.8;
};

// Vose's alias method: O(1) draws from a discrete distribution.
class Alias {
 public:
  explicit Alias(const std::vector<double>& w) : prob_(w.size()), alias_(w.size()) {
    const size_t n = w.size();
    double total = 0;
    for (double x : w) total += x;
    std::vector<double> p(n);
    std::vector<size_t> small, large;
    for (size_t i = 0; i < n; ++i) {
      p[i] = w[i] * n / total;
      (p[i] < 1 ? small : large).push_back(i);
    }
    while (!small.empty() && !large.empty()) {
      size_t s = small.back(), l = large.back();
      small.pop_back();
      prob_[s] = p[s];
      alias_[s] = l;
      p[l] = p[l] + p[s] - 1;
      if (p[l] < 1) {
        large.pop_back();
        small.push_back(l);
      }
    }
    for (size_t i : large) prob_[i] = 1;
    for (size_t i : small) prob_[i] = 1;
  }
  size_t Sample(Rng& rng) const {
    double u = rng.U() * prob_.size();
    size_t i = std::min(static_cast<size_t>(u), prob_.size() - 1);
    return (u - i) < prob_[i] ? i : alias_[i];
  }

 private:
  std::vector<double> prob_;
  std::vector<size_t> alias_;
};

// One run's world: its users and its shared baseline over time.
class World {
 public:
  World(const SimulationOptions& o, uint64_t seed) : o_(o), salt_(absl::StrCat("sim-", seed)) {
    Rng rng(seed ^ 0x5bd1e9955bd1e995ULL);
    Router router(salt_);
    if (o.users > 0) {
      users_.reserve(static_cast<size_t>(o.users));
      std::vector<double> activity;
      activity.reserve(static_cast<size_t>(o.users));
      for (int64_t i = 0; i < o.users; ++i) {
        User u = DrawUser(rng);
        u.bucket = router.Bucket(absl::StrCat("user-", i));
        users_.push_back(u);
        activity.push_back(std::exp(o.activity_sigma * rng.N()));
      }
      alias_ = std::make_unique<Alias>(activity);
    }
    if (o.bursts_per_hour > 0) {
      double t = 0;
      const double horizon = absl::ToDoubleSeconds(o.max_time);
      while (true) {
        t += -std::log(1 - rng.U()) * 3600 / o.bursts_per_hour;
        if (t >= horizon) break;
        bursts_.push_back(static_cast<int64_t>(t));
      }
    }
  }

  const std::string& salt() const { return salt_; }

  User DrawUser(Rng& rng) const {
    User u;
    u.always_fail = o_.always_fail_fraction > 0 && rng.U() < o_.always_fail_fraction;
    const double se = o_.user_error_sigma;
    u.err_mult = se > 0 ? std::exp(se * rng.N() - 0.5 * se * se) : 1;
    u.lat_mult = o_.user_latency_sigma > 0 ? std::exp(o_.user_latency_sigma * rng.N()) : 1;
    u.sat = std::clamp(o_.satisfaction + o_.user_satisfaction_sd * rng.N(), 0.0, 1.0);
    return u;
  }

  // The user of the next request: by activity, or a new one per request.
  User Pick(Rng& rng) const {
    if (alias_ != nullptr) return users_[alias_->Sample(rng)];
    User u = DrawUser(rng);
    u.bucket = std::min(kBucketCount - 1, static_cast<int32_t>(rng.U() * kBucketCount));
    return u;
  }

  double Diurnal(int64_t sec) const {
    if (o_.diurnal_amplitude <= 0) return 1;
    return 1 + o_.diurnal_amplitude *
                   std::sin(2 * M_PI * sec / absl::ToDoubleSeconds(o_.diurnal_period));
  }
  double Burst(int64_t sec) const {
    const int64_t len = absl::ToInt64Seconds(o_.burst_duration);
    for (int64_t b : bursts_) {
      if (sec >= b && sec < b + len) return o_.burst_factor;
      if (b > sec) break;
    }
    return 1;
  }
  bool Outage(int64_t sec) const {
    const double t = static_cast<double>(sec);
    for (absl::Duration d : o_.outages) {
      double s = absl::ToDoubleSeconds(d);
      if (t >= s && t < s + absl::ToDoubleSeconds(o_.outage_duration)) return true;
    }
    return false;
  }
  double Rate(int64_t sec) const { return o_.rps * Diurnal(sec) * Burst(sec); }

  Outcome Draw(Rng& rng, const User& u, bool cand, bool active, int64_t sec) const {
    Outcome out;
    double p = u.always_fail ? 1.0 : o_.baseline_error * u.err_mult * Diurnal(sec) * Burst(sec);
    if (cand && active && o_.scenario == Scenario::kError) p *= o_.factor;
    if (Outage(sec)) p = std::max(p, o_.outage_error);
    out.status = rng.U() < std::min(1.0, p) ? OutcomeClass::kServerError : OutcomeClass::kOk;
    double lf = u.lat_mult * Diurnal(sec);
    if (cand && active && o_.scenario == Scenario::kLatency) lf *= o_.latency_factor;
    double z = rng.N();
    out.latency = absl::Milliseconds(o_.latency_median_ms * lf * std::exp(o_.latency_sigma * z));
    out.ttft = absl::Milliseconds(o_.ttft_median_ms * lf * std::exp(o_.latency_sigma * z));
    out.cost = cand ? o_.cost_candidate : o_.cost_production;
    out.bucket = u.bucket;
    return out;
  }

  double Score(Rng& rng, const User& u, bool cand, bool active) const {
    double s = u.sat;
    if (cand && active && o_.scenario == Scenario::kSatisfaction) s -= o_.satisfaction_drop;
    return rng.U() < std::clamp(s, 0.0, 1.0) ? 1.0 : 0.0;
  }

  // The population (activity-weighted) for the true effect: the users, or
  // `n` fresh draws when every request is a new user.
  std::vector<std::pair<User, double>> Population(size_t n, Rng& rng) const {
    std::vector<std::pair<User, double>> pop;
    if (alias_ != nullptr) {
      for (size_t i = 0; i < n; ++i) pop.emplace_back(users_[alias_->Sample(rng)], 1.0);
    } else {
      for (size_t i = 0; i < n; ++i) pop.emplace_back(DrawUser(rng), 1.0);
    }
    return pop;
  }

 private:
  const SimulationOptions& o_;
  std::string salt_;
  std::vector<User> users_;
  std::unique_ptr<Alias> alias_;
  std::vector<int64_t> bursts_;
};

struct RunResult {
  bool rolled_back = false;
  bool promoted = false;
  bool paused = false;
  bool before_onset = false;
  double delay_minutes = 0;
  double delay_requests = 0;
  double promote_minutes = 0;
  double requests = 0;
  std::vector<std::string> failed_gates;
  bool has_gate = false;      // the scenario gate was tested at the decision
  double gate_variance = 0;   // its effect_se² then
  double gate_design_effect = 0;
};

const char* ScenarioGate(Scenario s) {
  switch (s) {
    case Scenario::kError: return "error_rate";
    case Scenario::kLatency: return "latency_p95";
    case Scenario::kSatisfaction: return "satisfaction";
    case Scenario::kAA: break;
  }
  return "";
}

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

bool IsCandidate(int32_t bucket, int32_t weight) {
  return weight >= kBucketCount || (weight > 0 && bucket < weight);
}

RunResult RunJudge(const SimulationOptions& o, const RolloutConfig& config, const World& world,
                   uint64_t seed, int run) {
  ManualClock clock(kStart);
  Router router(world.salt());
  InMemoryTransitionLog log;
  auto ctl = std::make_unique<Controller>(config, clock, router, log);
  Rng rng(seed);
  RunResult r;

  const int stage = StartStage(o);
  if (stage != 0 || o.scenario != Scenario::kAA) {
    understudy::v1::RolloutState s = ctl->State();
    s.set_stage_index(stage);
    s.set_weight_basis_points(StartWeight(o, stage));
    s.set_phase(config.stages[stage].percent == 0 ? understudy::v1::PHASE_SHADOW
                                                  : understudy::v1::PHASE_CANARY);
    s.set_stage_started_unix_micros(absl::ToUnixMicros(kStart));
    (void)ctl->Restore(s);  // same plan: cannot fail
  }

  const absl::Time onset = kStart + o.onset;
  const int64_t tick_every = std::max<int64_t>(1, absl::ToInt64Seconds(config.tick_interval));
  const int64_t max_seconds = absl::ToInt64Seconds(o.max_time);
  const int64_t restart_sec = absl::ToInt64Seconds(o.restart_at);
  bool restarted = false;
  bool shadow_phase = ctl->State().phase() == understudy::v1::PHASE_SHADOW;
  const std::string gate = ScenarioGate(o.scenario);
  double carry = 0;
  double cand_after_onset = 0;
  for (int64_t sec = 0; sec < max_seconds; ++sec) {
    const bool active = kStart + absl::Seconds(sec) >= onset;
    carry += world.Rate(sec);
    const int n = static_cast<int>(carry);
    carry -= n;
    const int32_t weight = router.WeightBasisPoints();
    for (int i = 0; i < n; ++i) {
      const User u = world.Pick(rng);
      const bool cand = IsCandidate(u.bucket, weight);
      Outcome out = world.Draw(rng, u, cand, active, sec);
      if (o.judge_ignores_users) out.bucket = kUnknownBucket;
      ctl->RecordOutcome(cand ? ARM_CANDIDATE : ARM_PRODUCTION, out);
      r.requests += 1;
      if (cand && active) cand_after_onset += 1;
      if (o.feedback_rate > 0 && rng.U() < o.feedback_rate) {
        (void)ctl->RecordFeedback(cand ? ARM_CANDIDATE : ARM_PRODUCTION,
                                  world.Score(rng, u, cand, active),
                                  o.judge_ignores_users ? kUnknownBucket : u.bucket);
      }
      if (shadow_phase && !cand && rng.U() < o.shadow_rate) {
        ShadowComparison c;
        c.candidate = world.Draw(rng, u, true, active, sec);
        if (o.judge_ignores_users) c.candidate.bucket = kUnknownBucket;
        c.major_diff = rng.U() >= o.agreement;
        ctl->RecordComparison(c);
        if (active) cand_after_onset += 1;
      }
    }
    clock.Advance(absl::Seconds(1));
    if ((sec + 1) % tick_every != 0) continue;
    absl::StatusOr<understudy::v1::Decision> d = ctl->Tick();
    if (!d.ok()) break;
    if (o.on_decision) o.on_decision(run, *d);
    const absl::Time t = clock.Now();
    if (d->action() == understudy::v1::ACTION_ROLLBACK) {
      r.rolled_back = true;
      r.before_onset = o.scenario == Scenario::kAA || t <= onset;
      r.delay_minutes = absl::ToDoubleMinutes(t - onset);
      r.delay_requests = cand_after_onset;
      for (const auto& g : d->gates()) {
        if (g.outcome() == understudy::v1::GATE_FAIL) r.failed_gates.push_back(g.gate());
        if (g.gate() == gate && g.effect_se() > 0) {
          r.has_gate = true;
          r.gate_variance = g.effect_se() * g.effect_se();
          r.gate_design_effect = g.design_effect();
        }
      }
      return r;
    }
    if (d->to().phase() == understudy::v1::PHASE_PROMOTED) {
      r.promoted = true;
      r.promote_minutes = absl::ToDoubleMinutes(t - kStart);
      return r;
    }
    if (d->to().phase() == understudy::v1::PHASE_PAUSED) {
      r.paused = true;
      return r;
    }
    shadow_phase = d->to().phase() == understudy::v1::PHASE_SHADOW;
    if (restart_sec > 0 && !restarted && sec + 1 >= restart_sec) {
      // A restart: the evidence goes through its serialised proto.
      restarted = true;
      const std::string bytes = ctl->SaveEvidence().SerializeAsString();
      const understudy::v1::RolloutState state = ctl->State();
      ctl = std::make_unique<Controller>(config, clock, router, log);
      (void)ctl->Restore(state);
      understudy::v1::JudgeEvidence evidence;
      if (evidence.ParseFromString(bytes)) (void)ctl->RestoreEvidence(evidence);
    }
  }
  return r;
}

// An interval's data for the Flagger-style checks.
struct Interval {
  int64_t cand_n = 0, cand_e = 0, prod_n = 0, prod_e = 0;
  std::vector<double> cand_lat, prod_lat;
  double cand_fb_n = 0, cand_fb = 0, prod_fb_n = 0, prod_fb = 0;
  void Clear() {
    cand_n = cand_e = prod_n = prod_e = 0;
    cand_lat.clear();
    prod_lat.clear();
    cand_fb_n = cand_fb = prod_fb_n = prod_fb = 0;
  }
};

double P95(std::vector<double>& v) {
  if (v.empty()) return 0;
  size_t idx = static_cast<size_t>(std::ceil(0.95 * v.size())) - 1;
  std::nth_element(v.begin(), v.begin() + idx, v.end());
  return v[idx];
}

RunResult RunFlagger(const SimulationOptions& o, const RolloutConfig& config, const World& world,
                     uint64_t seed) {
  Rng rng(seed ^ 0x9e3779b97f4a7c15ULL);
  RunResult r;
  const auto& stages = config.stages;
  int stage = StartStage(o);
  int32_t weight = StartWeight(o, stage);
  int failed = 0;
  int64_t stage_start = 0;
  double stage_samples = 0, cand_after_onset = 0;
  const int64_t step = std::max<int64_t>(1, absl::ToInt64Seconds(o.flagger_interval));
  const int64_t onset = absl::ToInt64Seconds(o.onset);
  const int64_t max_seconds = absl::ToInt64Seconds(o.max_time);
  const ErrorRateGate& eg = config.error_rate;
  Interval in;
  double carry = 0;
  for (int64_t sec = 0; sec < max_seconds; ++sec) {
    const bool active = sec >= onset;
    const bool shadow = stages[stage].percent == 0;
    carry += world.Rate(sec);
    const int n = static_cast<int>(carry);
    carry -= n;
    for (int i = 0; i < n; ++i) {
      const User u = world.Pick(rng);
      const bool cand = !shadow && IsCandidate(u.bucket, weight);
      Outcome out = world.Draw(rng, u, cand, active, sec);
      const bool err = IsError(out.status);
      double ms = absl::ToDoubleMilliseconds(*out.latency);
      if (cand) {
        ++in.cand_n;
        in.cand_e += err;
        if (!err) in.cand_lat.push_back(ms);
        stage_samples += 1;
        if (active) cand_after_onset += 1;
      } else {
        ++in.prod_n;
        in.prod_e += err;
        if (!err) in.prod_lat.push_back(ms);
      }
      if (o.scenario == Scenario::kSatisfaction && rng.U() < o.feedback_rate) {
        double s = world.Score(rng, u, cand, active);
        (cand ? in.cand_fb_n : in.prod_fb_n) += 1;
        (cand ? in.cand_fb : in.prod_fb) += s;
      }
      if (shadow && rng.U() < o.shadow_rate) {
        Outcome c = world.Draw(rng, u, true, active, sec);
        bool ce = IsError(c.status);
        ++in.cand_n;
        in.cand_e += ce;
        if (!ce) in.cand_lat.push_back(absl::ToDoubleMilliseconds(*c.latency));
        stage_samples += 1;
        if (active) cand_after_onset += 1;
      }
    }
    if ((sec + 1) % step != 0) continue;
    bool fail = false;
    if (in.cand_n > 0 && in.prod_n > 0) {
      double p = static_cast<double>(in.prod_e) / in.prod_n;
      double thr = std::max(p * eg.max_ratio, p + eg.max_abs_increase);
      fail = static_cast<double>(in.cand_e) / in.cand_n > thr;
    }
    if (!in.cand_lat.empty() && !in.prod_lat.empty()) {
      fail = fail || P95(in.cand_lat) > config.latency.max_ratio * P95(in.prod_lat);
    }
    if (in.cand_fb_n > 0 && in.prod_fb_n > 0) {
      fail = fail || in.cand_fb / in.cand_fb_n <
                         in.prod_fb / in.prod_fb_n - config.satisfaction.max_drop;
    }
    in.Clear();
    failed += fail ? 1 : 0;
    if (failed >= o.flagger_threshold) {
      r.rolled_back = true;
      r.before_onset = o.scenario == Scenario::kAA || sec + 1 <= onset;
      r.delay_minutes = (sec + 1 - onset) / 60.0;
      r.delay_requests = cand_after_onset;
      return r;
    }
    if ((sec + 1 - stage_start) >= absl::ToInt64Seconds(stages[stage].min_bake) &&
        stage_samples >= stages[stage].min_samples) {
      ++stage;
      stage_start = sec + 1;
      stage_samples = 0;
      weight = stages[stage].percent * 100;
      if (stages[stage].percent >= 100) {
        r.promoted = true;
        r.promote_minutes = (sec + 1) / 60.0;
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
  std::vector<double> req, min, prom;
  for (const RunResult& r : runs) {
    s.promoted += r.promoted;
    s.paused += r.paused;
    if (r.promoted) prom.push_back(r.promote_minutes);
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
  s.promote_minutes_median = Percentile(prom, 0.5);
  return s;
}

double NormalSf(double z) { return 0.5 * std::erfc(z / std::sqrt(2.0)); }

// The scenario gate's true effect beyond `tolerated`, on the gate's scale,
// for the population of `world`.
double TrueEffect(const SimulationOptions& o, const RolloutConfig& c, const World& world) {
  Rng rng(o.seed ^ 0x2545f4914f6cdd1dULL);
  const auto pop = world.Population(4000, rng);
  switch (o.scenario) {
    case Scenario::kError: {
      double pc = 0, pp = 0;
      for (const auto& [u, w] : pop) {
        double base = u.always_fail ? 1.0 : o.baseline_error * u.err_mult;
        pp += w * std::min(1.0, base);
        pc += w * std::min(1.0, u.always_fail ? 1.0 : base * o.factor);
      }
      return pp > 0 ? std::log(pc / pp) - std::log(c.error_rate.tolerated_ratio) : 0;
    }
    case Scenario::kLatency: {
      const double q = c.latency.quantile;
      auto share_above = [&](double x, double factor) {
        double s = 0, tw = 0;
        for (const auto& [u, w] : pop) {
          s += w * NormalSf(std::log(x / (o.latency_median_ms * u.lat_mult * factor)) /
                            o.latency_sigma);
          tw += w;
        }
        return s / tw;
      };
      double lo = std::log(1e-3), hi = std::log(1e9);
      for (int i = 0; i < 80; ++i) {
        double mid = 0.5 * (lo + hi);
        (share_above(std::exp(mid), 1) > 1 - q ? lo : hi) = mid;
      }
      const double t = std::exp(0.5 * (lo + hi));
      return share_above(c.latency.tolerated_ratio * t, o.latency_factor) - (1 - q);
    }
    case Scenario::kSatisfaction: {
      double d = 0, tw = 0;
      for (const auto& [u, w] : pop) {
        d += w * (u.sat - std::clamp(u.sat - o.satisfaction_drop, 0.0, 1.0));
        tw += w;
      }
      return d / tw - c.satisfaction.tolerated_drop;
    }
    case Scenario::kAA: break;
  }
  return 0;
}

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
      ",\"detection_delay_minutes_p90\":", Num(s.detection_delay_minutes_p90),
      ",\"promote_minutes_median\":", Num(s.promote_minutes_median), "}");
}

}  // namespace

absl::StatusOr<SimulationReport> RunSimulation(const SimulationOptions& o) {
  if (absl::Status s = Validate(o); !s.ok()) return s;
  const RolloutConfig config = EffectiveConfig(o);
  SimulationReport rep;
  rep.options = o;
  std::vector<RunResult> judge(o.runs), flagger(o.runs);
  std::atomic<int> next{0};
  auto worker = [&] {
    for (int i = next.fetch_add(1); i < o.runs; i = next.fetch_add(1)) {
      const uint64_t seed = o.seed * 1000003ULL + static_cast<uint64_t>(i) * 7919ULL;
      const World world(o, seed);
      judge[i] = RunJudge(o, config, world, seed, i);
      if (o.run_flagger) flagger[i] = RunFlagger(o, config, world, seed);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < std::min(o.threads, o.runs); ++t) threads.emplace_back(worker);
  worker();
  for (std::thread& t : threads) t.join();

  for (const RunResult& r : judge) {
    rep.simulated_requests += r.requests;
    if (r.rolled_back && !r.before_onset) {
      for (const std::string& g : r.failed_gates) ++rep.rollbacks_by_gate[g];
    } else if (r.rolled_back) {
      for (const std::string& g : r.failed_gates) ++rep.rollbacks_by_gate[g + " (false)"];
    }
  }
  rep.judge = Summarise(judge);
  rep.flagger = Summarise(flagger);
  rep.false_rollback_rate = static_cast<double>(rep.judge.false_rollbacks) / o.runs;
  rep.power = o.scenario == Scenario::kAA ? std::nan("")
                                          : static_cast<double>(rep.judge.rollbacks) / o.runs;
  const double cand_rps = o.rps * o.split_percent / 100.0;

  // The optimal fixed-sample test for the clustered design.
  rep.optimal_fixed_requests = rep.optimal_fixed_minutes = std::nan("");
  rep.true_effect = rep.design_effect_median = std::nan("");
  if (o.scenario != Scenario::kAA) {
    const World reference(o, o.seed * 1000003ULL);
    const double delta = TrueEffect(o, config, reference);
    rep.true_effect = delta;
    const double z = NormalQuantile(1 - Judge(config).gate_alpha()) + NormalQuantile(1 - config.beta);
    std::vector<double> n_opt, de;
    if (delta > 0) {
      const double target = (delta / z) * (delta / z);
      for (const RunResult& r : judge) {
        if (!r.rolled_back || r.before_onset || !r.has_gate) continue;
        n_opt.push_back(r.delay_requests * r.gate_variance / target);
        de.push_back(r.gate_design_effect);
      }
    }
    rep.optimal_fixed_requests = Percentile(n_opt, 0.5);
    rep.optimal_fixed_minutes = rep.optimal_fixed_requests / cand_rps / 60.0;
    rep.design_effect_median = Percentile(de, 0.5);
  }

  double n = std::nan("");
  if (o.scenario == Scenario::kError && o.factor > 1 && o.baseline_error > 0) {
    double p1 = std::min(0.999, o.baseline_error * o.factor);
    n = WaldExpectedSamples(o.baseline_error, p1, config.alpha, config.beta);
  } else if (o.scenario == Scenario::kLatency && o.latency_factor > 1) {
    // Fraction slower than max_ratio × production p95, without and with the regression.
    double z = 1.6448536 + std::log(config.latency.max_ratio) / o.latency_sigma;
    double q0 = NormalSf(z);
    double q1 = NormalSf(z - std::log(o.latency_factor) / o.latency_sigma);
    if (q1 > q0) n = WaldExpectedSamples(q0, q1, config.alpha, config.beta);
  }
  rep.sprt_optimal_requests = n;
  rep.sprt_optimal_minutes = n / cand_rps / 60.0;
  return rep;
}

namespace {
std::string GatesJson(const std::map<std::string, int>& m) {
  std::vector<std::string> parts;
  for (const auto& [g, n] : m) parts.push_back(absl::StrCat("\"", g, "\":", n));
  return absl::StrCat("{", absl::StrJoin(parts, ","), "}");
}

std::string HeterogeneityText(const SimulationOptions& o) {
  std::string s = o.users > 0 ? absl::StrFormat(
                                    "%d users (activity sigma %.2g, %.2g%% always fail, error "
                                    "sigma %.2g, latency sigma %.2g, satisfaction sd %.2g)",
                                    o.users, o.activity_sigma, 100 * o.always_fail_fraction,
                                    o.user_error_sigma, o.user_latency_sigma,
                                    o.user_satisfaction_sd)
                              : std::string("independent requests");
  if (o.diurnal_amplitude > 0) {
    absl::StrAppendFormat(&s, ", diurnal +-%.0f%% over %s", 100 * o.diurnal_amplitude,
                          absl::FormatDuration(o.diurnal_period));
  }
  if (o.bursts_per_hour > 0) {
    absl::StrAppendFormat(&s, ", %.2g bursts/h x%.2g for %s", o.bursts_per_hour, o.burst_factor,
                          absl::FormatDuration(o.burst_duration));
  }
  if (!o.outages.empty()) {
    absl::StrAppendFormat(&s, ", %d shared outages (%s, %.0f%% errors)",
                          static_cast<int>(o.outages.size()),
                          absl::FormatDuration(o.outage_duration), 100 * o.outage_error);
  }
  if (o.restart_at > absl::ZeroDuration()) {
    absl::StrAppend(&s, ", restart at ", absl::FormatDuration(o.restart_at));
  }
  return s;
}
}  // namespace

std::string FormatReportJson(const SimulationReport& r) {
  const SimulationOptions& o = r.options;
  return absl::StrCat(
      "{\"scenario\":\"", ScenarioName(o.scenario), "\",\"runs\":", o.runs, ",\"seed\":", o.seed,
      ",\"rps\":", Num(o.rps), ",\"split_percent\":", Num(o.split_percent),
      ",\"baseline_error\":", Num(o.baseline_error), ",\"factor\":", Num(o.factor),
      ",\"latency_factor\":", Num(o.latency_factor),
      ",\"satisfaction_drop\":", Num(o.satisfaction_drop), ",\"users\":", o.users,
      ",\"gate\":\"", o.only_gate, "\"",
      ",\"alpha\":", Num(o.config.alpha), ",\"beta\":", Num(o.config.beta),
      ",\"false_rollback_rate\":", Num(r.false_rollback_rate), ",\"power\":", Num(r.power),
      ",\"rollback_rate\":", Num(r.judge.rollback_rate),
      ",\"promoted_rate\":", Num(static_cast<double>(r.judge.promoted) / o.runs),
      ",\"paused_rate\":", Num(static_cast<double>(r.judge.paused) / o.runs),
      ",\"promote_minutes_median\":", Num(r.judge.promote_minutes_median),
      ",\"detection_delay_requests_median\":", Num(r.judge.detection_delay_requests_median),
      ",\"detection_delay_requests_p90\":", Num(r.judge.detection_delay_requests_p90),
      ",\"detection_delay_minutes_median\":", Num(r.judge.detection_delay_minutes_median),
      ",\"detection_delay_minutes_p90\":", Num(r.judge.detection_delay_minutes_p90),
      ",\"optimal_fixed_requests\":", Num(r.optimal_fixed_requests),
      ",\"optimal_fixed_minutes\":", Num(r.optimal_fixed_minutes),
      ",\"judge_vs_optimal\":",
      Num(r.judge.detection_delay_requests_median / r.optimal_fixed_requests),
      ",\"true_effect\":", Num(r.true_effect),
      ",\"design_effect_median\":", Num(r.design_effect_median),
      ",\"sprt_optimal_requests\":", Num(r.sprt_optimal_requests),
      ",\"sprt_optimal_minutes\":", Num(r.sprt_optimal_minutes),
      ",\"judge_vs_sprt_optimal\":",
      Num(r.judge.detection_delay_requests_median / r.sprt_optimal_requests),
      ",\"rollbacks_by_gate\":", GatesJson(r.rollbacks_by_gate),
      ",\"judge\":", DelayJson(r.judge), ",\"flagger\":", DelayJson(r.flagger),
      ",\"simulated_requests\":", Num(r.simulated_requests), "}\n");
}

std::string FormatReportTable(const SimulationReport& r) {
  const SimulationOptions& o = r.options;
  std::string what;
  switch (o.scenario) {
    case Scenario::kAA: what = "A/A"; break;
    case Scenario::kError: what = absl::StrFormat("error x%.2f per user", o.factor); break;
    case Scenario::kLatency: what = absl::StrFormat("latency x%.2f", o.latency_factor); break;
    case Scenario::kSatisfaction:
      what = absl::StrFormat("satisfaction -%.3f", o.satisfaction_drop);
      break;
  }
  std::string out = absl::StrFormat(
      "scenario %s (%s%s): %d runs, seed %d, %.0f rps, split %.2f%%, baseline error %.4f, "
      "alpha %.3g, beta %.3g\n  traffic: %s\n",
      ScenarioName(o.scenario), what,
      o.only_gate.empty() ? "" : absl::StrCat(", gate ", o.only_gate), o.runs, o.seed, o.rps,
      o.split_percent, o.baseline_error, o.config.alpha, o.config.beta, HeterogeneityText(o));
  absl::StrAppendFormat(&out, "%-28s %12s %8s %10s %10s %10s %10s %9s %7s\n", "rule",
                        "false_rollbk", "power", "req_med", "req_p90", "min_med", "min_p90",
                        "promoted", "paused");
  auto row = [&](const std::string& name, const DelayStats& s) {
    absl::StrAppendFormat(
        &out, "%-28s %12s %8s %10s %10s %10s %10s %9s %7s\n", name,
        Num(static_cast<double>(s.false_rollbacks) / s.runs),
        o.scenario == Scenario::kAA ? "-" : Num(static_cast<double>(s.rollbacks) / s.runs),
        Num(s.detection_delay_requests_median), Num(s.detection_delay_requests_p90),
        Num(s.detection_delay_minutes_median), Num(s.detection_delay_minutes_p90),
        Num(static_cast<double>(s.promoted) / s.runs), Num(static_cast<double>(s.paused) / s.runs));
  };
  row("judge (clustered mSPRT)", r.judge);
  row(absl::StrFormat("flagger (%d x %s)", o.flagger_threshold,
                      absl::FormatDuration(o.flagger_interval)),
      r.flagger);
  absl::StrAppendFormat(&out, "%-28s %12s %8s %10s %10s %10s\n", "optimal fixed-sample (clust)",
                        "-", "-", Num(r.optimal_fixed_requests), "-",
                        Num(r.optimal_fixed_minutes));
  absl::StrAppendFormat(&out, "%-28s %12s %8s %10s %10s %10s\n", "Wald SPRT E[N] (iid)", "-",
                        "-", Num(r.sprt_optimal_requests), "-", Num(r.sprt_optimal_minutes));
  if (o.scenario != Scenario::kAA) {
    absl::StrAppendFormat(&out,
                          "  judge/optimal %s; true effect %s; design effect at decision %s\n",
                          Num(r.judge.detection_delay_requests_median / r.optimal_fixed_requests),
                          Num(r.true_effect), Num(r.design_effect_median));
  } else {
    absl::StrAppendFormat(&out, "  judge: median %s min to 100%%\n",
                          Num(r.judge.promote_minutes_median));
  }
  if (!r.rollbacks_by_gate.empty()) {
    std::vector<std::string> parts;
    for (const auto& [g, n] : r.rollbacks_by_gate) parts.push_back(absl::StrCat(g, " ", n));
    absl::StrAppend(&out, "  failed gates at rollbacks: ", absl::StrJoin(parts, ", "), "\n");
  }
  return out;
}

}  // namespace understudy::rollout
