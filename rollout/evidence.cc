// The judge's evidence: per-bucket windows, strata, cluster-robust
// contrasts, persistence (see evidence.h).
#include "rollout/evidence.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace understudy::rollout {

namespace v1 = ::understudy::v1;

const char* ContrastName(ContrastId k) {
  switch (k) {
    case kContrastError: return "error_rate";
    case kContrastLatencyFail: return "latency_fail";
    case kContrastLatencyPass: return "latency_pass";
    case kContrastTtftFail: return "ttft_fail";
    case kContrastTtftPass: return "ttft_pass";
    case kContrastSatisfaction: return "satisfaction";
    case kContrastCost: return "cost_per_request";
    case kContrastAgreement: return "agreement";
    case kNumContrasts: break;
  }
  return "?";
}

double ContrastResult::Variance() const { return std::max(v_cr, v_iid); }

double ContrastResult::DesignEffect() const { return v_iid > 0 ? v_cr / v_iid : 0; }

namespace {

enum class Kind { kRatio, kDifference, kOneSample };

Kind KindOf(ContrastId k) {
  switch (k) {
    case kContrastError:
    case kContrastCost: return Kind::kRatio;
    case kContrastAgreement: return Kind::kOneSample;
    default: return Kind::kDifference;
  }
}

bool IsBinary(ContrastId k) { return k != kContrastSatisfaction && k != kContrastCost; }

template <int K, typename Cell>
inline XY CandidateXYT(const Cell& c) {
  if constexpr (K == kContrastError) return {double(c.n), double(c.e)};
  if constexpr (K == kContrastLatencyFail) return {double(c.lat_n), double(c.lat_above[1])};
  if constexpr (K == kContrastLatencyPass) return {double(c.lat_n), double(c.lat_above[2])};
  if constexpr (K == kContrastTtftFail) return {double(c.ttft_n), double(c.ttft_above[1])};
  if constexpr (K == kContrastTtftPass) return {double(c.ttft_n), double(c.ttft_above[2])};
  if constexpr (K == kContrastSatisfaction) return {double(c.fb_n), c.fb_sum};
  if constexpr (K == kContrastCost) return {double(c.cost_n), c.cost_sum};
  if constexpr (K == kContrastAgreement) return {double(c.cmp_n), double(c.major)};
  return {};
}

template <int K, typename Cell>
inline XY ProductionXYT(const Cell& c) {
  if constexpr (K == kContrastLatencyFail || K == kContrastLatencyPass) {
    return {double(c.lat_n), double(c.lat_above[0])};
  } else if constexpr (K == kContrastTtftFail || K == kContrastTtftPass) {
    return {double(c.ttft_n), double(c.ttft_above[0])};
  } else if constexpr (K == kContrastAgreement) {
    return {};
  } else {
    return CandidateXYT<K>(c);
  }
}

template <typename Cell>
XY CandidateXY(ContrastId k, const Cell& c) {
  switch (k) {
    case kContrastError: return CandidateXYT<kContrastError>(c);
    case kContrastLatencyFail: return CandidateXYT<kContrastLatencyFail>(c);
    case kContrastLatencyPass: return CandidateXYT<kContrastLatencyPass>(c);
    case kContrastTtftFail: return CandidateXYT<kContrastTtftFail>(c);
    case kContrastTtftPass: return CandidateXYT<kContrastTtftPass>(c);
    case kContrastSatisfaction: return CandidateXYT<kContrastSatisfaction>(c);
    case kContrastCost: return CandidateXYT<kContrastCost>(c);
    case kContrastAgreement: return CandidateXYT<kContrastAgreement>(c);
    case kNumContrasts: break;
  }
  return {};
}

template <typename Cell>
XY ProductionXY(ContrastId k, const Cell& c) {
  switch (k) {
    case kContrastLatencyFail:
    case kContrastLatencyPass: return ProductionXYT<kContrastLatencyFail>(c);
    case kContrastTtftFail:
    case kContrastTtftPass: return ProductionXYT<kContrastTtftFail>(c);
    case kContrastAgreement: return {};
    default: return CandidateXY(k, c);
  }
}

// Per-observation variance of one side of stratum data.
double ObservationVariance(ContrastId k, const XY& s, const ArmWindow& w) {
  if (s.x <= 0) return 0;
  if (IsBinary(k)) {
    double m = (s.y + 0.5) / (s.x + 1);  // never 0 or 1: a floor for rare events
    return m * (1 - m);
  }
  if (k == kContrastSatisfaction) return std::max(w.c.satisfaction.Variance(), 1e-4);
  double mean = std::abs(w.c.cost.Mean());
  double floor = (1e-6 * std::max(mean, 1e-12)) * (1e-6 * std::max(mean, 1e-12));
  return std::max(w.c.cost.Variance(), floor);
}

Stratum MakeStratum(ContrastId k, const CellTotals& cand, const CellTotals& prod,
                    const ArmWindow& cand_window, const ArmWindow& prod_window) {
  Stratum s;
  s.c = CandidateXY(k, cand);
  s.p = ProductionXY(k, prod);
  s.mc = s.c.x > 0 ? s.c.y / s.c.x : 0;
  s.mp = s.p.x > 0 ? s.p.y / s.p.x : 0;
  if (KindOf(k) == Kind::kOneSample) {
    s.w = s.c.x;
  } else if (s.c.x > 0 && s.p.x > 0) {
    s.w = s.c.x * s.p.x / (s.c.x + s.p.x);
  }
  s.vc = ObservationVariance(k, s.c, cand_window);
  s.vp = ObservationVariance(k, s.p, prod_window);
  return s;
}

void ToProto(const Moments& m, v1::MomentsEvidence* out) {
  out->set_n(m.n);
  out->set_sum(m.sum);
  out->set_sum_sq(m.sum_sq);
}

Moments FromProto(const v1::MomentsEvidence& in) {
  Moments m;
  m.n = in.n();
  m.sum = in.sum();
  m.sum_sq = in.sum_sq();
  return m;
}

void ToProto(const Counters& c, v1::CountersEvidence* out) {
  out->set_requests(c.requests);
  out->set_errors(c.errors);
  out->set_errors_5xx(c.errors_5xx);
  out->set_errors_timeout(c.errors_timeout);
  out->set_errors_transport(c.errors_transport);
  out->set_errors_invalid_body(c.errors_invalid_body);
  out->set_throttled(c.throttled);
  out->set_comparisons(c.comparisons);
  out->set_major_diffs(c.major_diffs);
  ToProto(c.satisfaction, out->mutable_satisfaction());
  ToProto(c.cost, out->mutable_cost());
}

Counters FromProto(const v1::CountersEvidence& in) {
  Counters c;
  c.requests = in.requests();
  c.errors = in.errors();
  c.errors_5xx = in.errors_5xx();
  c.errors_timeout = in.errors_timeout();
  c.errors_transport = in.errors_transport();
  c.errors_invalid_body = in.errors_invalid_body();
  c.throttled = in.throttled();
  c.comparisons = in.comparisons();
  c.major_diffs = in.major_diffs();
  c.satisfaction = FromProto(in.satisfaction());
  c.cost = FromProto(in.cost());
  return c;
}

template <typename Cell, typename Totals>
void AddCell(const Cell& c, Totals& t) {
  t.n += c.n;
  t.e += c.e;
  t.lat_n += c.lat_n;
  t.ttft_n += c.ttft_n;
  for (int i = 0; i < 3; ++i) {
    t.lat_above[i] += c.lat_above[i];
    t.ttft_above[i] += c.ttft_above[i];
  }
  t.fb_n += c.fb_n;
  t.cost_n += c.cost_n;
  t.cmp_n += c.cmp_n;
  t.major += c.major;
  t.fb_sum += c.fb_sum;
  t.cost_sum += c.cost_sum;
}

bool CellEmpty(const BucketCell& c) {
  return c.n == 0 && c.lat_n == 0 && c.ttft_n == 0 && c.fb_n == 0 && c.cost_n == 0 &&
         c.cmp_n == 0;
}

}  // namespace

BucketCell& Evidence::ArmBuckets::At(int32_t b) {
  if (cells.empty()) cells.resize(kBucketCount);
  return cells[static_cast<size_t>(b)];
}

Evidence::Evidence(const RolloutConfig& config)
    : config_(config),
      recent_{SlidingCounters(config.recent_window, config.recent_slots),
              SlidingCounters(config.recent_window, config.recent_slots),
              SlidingCounters(config.recent_window, config.recent_slots)},
      is_active_(kBucketCount, 0) {}

void Evidence::Activate(int32_t bucket) {
  if (!is_active_[bucket]) {
    is_active_[bucket] = 1;
    active_.push_back(bucket);
  }
}

template <typename F>
void Evidence::Update(EvidenceArm arm, int32_t bucket, F f) {
  ArmBuckets& a = buckets_[static_cast<int>(arm)];
  f(a.At(bucket));
  f(a.totals);
  Activate(bucket);
}

void Evidence::CountTimings(const Outcome& o, BucketCell& cell, CellTotals& totals) {
  // As in ArmWindow::Add: only successful requests are timed.
  if (IsError(o.status) || o.status == OutcomeClass::kThrottled) return;
  auto count = [](double v, double t, double r0, double r1, auto& n, auto& above) {
    ++n;
    if (v > t) ++above[0];
    if (v > r0 * t) ++above[1];
    if (v > r1 * t) ++above[2];
  };
  if (o.latency.has_value() && lat_threshold_ > 0) {
    double v = absl::ToDoubleMilliseconds(*o.latency);
    const QuantileGate& g = config_.latency;
    count(v, lat_threshold_, g.tolerated_ratio, g.max_ratio, cell.lat_n, cell.lat_above);
    count(v, lat_threshold_, g.tolerated_ratio, g.max_ratio, totals.lat_n, totals.lat_above);
  }
  if (o.ttft.has_value() && ttft_threshold_ > 0) {
    double v = absl::ToDoubleMilliseconds(*o.ttft);
    const QuantileGate& g = config_.ttft;
    count(v, ttft_threshold_, g.tolerated_ratio, g.max_ratio, cell.ttft_n, cell.ttft_above);
    count(v, ttft_threshold_, g.tolerated_ratio, g.max_ratio, totals.ttft_n, totals.ttft_above);
  }
}

void Evidence::AddOutcome(v1::Arm arm, const Outcome& o, int32_t bucket, absl::Time now) {
  const EvidenceArm a =
      arm == v1::ARM_CANDIDATE ? EvidenceArm::kCandidate : EvidenceArm::kProduction;
  const int ai = static_cast<int>(a);
  windows_[ai].Add(o);
  recent_[ai].Slot(now).Add(o);
  const bool err = IsError(o.status);
  const bool priced = o.cost.has_value() && std::isfinite(*o.cost) && *o.cost >= 0;
  Update(a, bucket, [&](auto& c) {
    ++c.n;
    if (err) ++c.e;
    if (priced) {
      ++c.cost_n;
      c.cost_sum += *o.cost;
    }
  });
  CountTimings(o, buckets_[ai].At(bucket), buckets_[ai].totals);
  AddStageError(ai, bucket, err);
}

void Evidence::AddStageError(int arm, int32_t bucket, bool error) {
  std::vector<StageErrCell>& cells = stage_err_[arm];
  if (cells.empty()) cells.resize(kBucketCount);
  ++cells[bucket].n;
  if (error) ++cells[bucket].e;
}

Evidence::StageClustering Evidence::StageErrorClustering(CandidateTraffic t) const {
  StageClustering out;
  const int ca = static_cast<int>(t == CandidateTraffic::kShadow ? EvidenceArm::kShadow
                                                                 : EvidenceArm::kCandidate);
  const int pa = static_cast<int>(EvidenceArm::kProduction);
  const std::vector<StageErrCell>& cc = stage_err_[ca];
  const std::vector<StageErrCell>& pc = stage_err_[pa];
  const Counters& c = windows_[ca].c;
  const Counters& p = windows_[pa].c;
  if (c.requests <= 0 || p.requests <= 0 || cc.empty() || pc.empty()) return out;
  const double mc = static_cast<double>(c.errors) / c.requests;
  const double mp = static_cast<double>(p.errors) / p.requests;
  double sc = 0, sp = 0;
  for (int32_t b : active_) {
    if (cc[b].n > 0) {
      const double r = cc[b].e - mc * cc[b].n;
      sc += r * r;
      ++out.cand_clusters;
    }
    if (pc[b].n > 0) {
      const double r = pc[b].e - mp * pc[b].n;
      sp += r * r;
      ++out.prod_clusters;
    }
  }
  // The log rate ratio's cluster-robust variance over its binomial one.
  const double yc = c.errors + 0.5, yp = p.errors + 0.5;
  const double gc = static_cast<double>(out.cand_clusters), gp = static_cast<double>(out.prod_clusters);
  const double v_cr = (gc > 1 ? gc / (gc - 1) : 1) * sc / (yc * yc) +
                      (gp > 1 ? gp / (gp - 1) : 1) * sp / (yp * yp);
  const double m_c = yc / (c.requests + 1), m_p = yp / (p.requests + 1);
  const double v_iid = (1 - m_c) / yc + (1 - m_p) / yp;
  out.design_effect = v_iid > 0 ? v_cr / v_iid : 0;
  return out;
}

void Evidence::AddComparison(const ShadowComparison& sc, int32_t bucket, absl::Time now) {
  const int ai = static_cast<int>(EvidenceArm::kShadow);
  const Outcome& o = sc.candidate;
  windows_[ai].Add(o);
  Counters& slot = recent_[ai].Slot(now);
  slot.Add(o);
  if (sc.compared) {
    ++windows_[ai].c.comparisons;
    ++slot.comparisons;
    if (sc.major_diff) {
      ++windows_[ai].c.major_diffs;
      ++slot.major_diffs;
    }
  }
  const bool err = IsError(o.status);
  const bool priced = o.cost.has_value() && std::isfinite(*o.cost) && *o.cost >= 0;
  Update(EvidenceArm::kShadow, bucket, [&](auto& c) {
    ++c.n;
    if (err) ++c.e;
    if (priced) {
      ++c.cost_n;
      c.cost_sum += *o.cost;
    }
    if (sc.compared) {
      ++c.cmp_n;
      if (sc.major_diff) ++c.major;
    }
  });
  CountTimings(o, buckets_[ai].At(bucket), buckets_[ai].totals);
  AddStageError(ai, bucket, err);
}

void Evidence::AddFeedback(v1::Arm arm, double score, int32_t bucket, absl::Time now) {
  const EvidenceArm a =
      arm == v1::ARM_CANDIDATE ? EvidenceArm::kCandidate : EvidenceArm::kProduction;
  const int ai = static_cast<int>(a);
  windows_[ai].c.satisfaction.Add(score);
  recent_[ai].Slot(now).satisfaction.Add(score);
  Update(a, bucket, [&](auto& c) {
    ++c.fb_n;
    c.fb_sum += score;
  });
}

Counters Evidence::RecentSum(EvidenceArm a, absl::Time now) const {
  return recent_[static_cast<int>(a)].Sum(now);
}

void Evidence::SetThresholds(double latency_ms, double ttft_ms) {
  lat_threshold_ = std::isfinite(latency_ms) && latency_ms > 0 ? latency_ms : 0;
  ttft_threshold_ = std::isfinite(ttft_ms) && ttft_ms > 0 ? ttft_ms : 0;
}

EvidenceArm Evidence::CandidateArm(ContrastId k, CandidateTraffic t) const {
  if (k == kContrastAgreement || t == CandidateTraffic::kShadow) return EvidenceArm::kShadow;
  return EvidenceArm::kCandidate;
}


namespace {

const BucketCell kEmptyCell{};

// A bucket's excess rate in its history is shrunk toward 0 as if it had
// this many more observations at the mean (empirical-Bayes style), so one
// old request does not make a user "always failing".
constexpr double kHistoryPrior = 10;  // observations

// Buckets with history (on a side) before the regression adjustment is
// used there: below this the slope is too noisy to help.
constexpr int64_t kMinAdjustClusters = 10;

inline const BucketCell& CellOf(const std::vector<BucketCell>& cells, int32_t b) {
  return cells.empty() ? kEmptyCell : cells[static_cast<size_t>(b)];
}

// Sums of one side of a stratum for the regression adjustment.
struct SideSums {
  double sq = 0, sx2 = 0, sqx = 0, srq = 0, srx = 0, sq2 = 0;
  int64_t with_history = 0;
  // The slope and the side's mean covariate per observation.
  double gamma = 0, qbar = 0;
  void Add(double x, double r, double q, bool has_history) {
    sq += q;
    sx2 += x * x;
    sqx += q * x;
    srq += r * q;
    srx += r * x;
    sq2 += q * q;
    with_history += has_history ? 1 : 0;
  }
  // Centres the covariate on the side's mean (q̃ = q − q̄·x) and returns
  // the side's Σ r·q̃ and Σ q̃².
  void Centre(double total_x, double* rq, double* qq) {
    *rq = *qq = 0;
    if (!(total_x > 0)) return;
    qbar = sq / total_x;
    *rq = srq - qbar * srx;
    *qq = sq2 - 2 * qbar * sqx + qbar * qbar * sx2;
  }
};

template <int K>
void ComputeStratum(const Stratum& s, const std::vector<int32_t>& active,
                    const std::vector<BucketCell>& cand, const std::vector<BucketCell>& prod,
                    const ContrastFold& f, bool use_history, StratumPass& out) {
  const size_t n = active.size();
  out.s = s;
  out.mc = s.mc;
  out.mp = s.mp;
  out.gamma_c = out.gamma_p = 0;
  out.raw_c2 = out.raw_p2 = 0;
  if (!(s.w > 0)) {
    out.u.assign(n, 0);
    out.r.assign(n, 0);
    out.seen.assign(n, 0);
    return;
  }
  out.u.resize(n);
  out.r.resize(n);
  out.seen.resize(n);
  // CUPED on the bucket (Deng, Xu, Kohavi & Walker 2013): the covariate of
  // a bucket is its observations times its own excess rate on production
  // in earlier strata, each stratum against that stratum's production mean
  // (so an outage or a diurnal swing in the history is no excess), shrunk
  // toward 0. History precedes assignment to this stratum's arms (routing
  // is monotone, and only production-side data is history), and each
  // stratum's excesses sum to 0 over its production buckets, so the
  // covariate has mean 0 whatever strata a bucket saw, and the adjusted
  // contrast stays unbiased for any slope. The slope is the least-squares
  // one pooled over both sides (as CUPED does: the small candidate side
  // alone would give a noisy one).
  const bool adjust =
      use_history && K != kContrastAgreement && !f.hx.empty() && f.hx_total > 0;
  std::vector<double>& xc = out.xc;
  std::vector<double>& qc = out.qc;
  std::vector<double>& xp = out.xp;
  std::vector<double>& qp = out.qp;
  xc.resize(n);
  qc.resize(n);
  xp.resize(n);
  qp.resize(n);
  SideSums cs, ps;
  for (size_t i = 0; i < n; ++i) {
    const int32_t b = active[i];
    out.u[i] = out.r[i] = xc[i] = qc[i] = xp[i] = qp[i] = 0;
    out.seen[i] = 0;
    double h = 0;
    bool has_history = false;
    if (adjust) {
      has_history = f.hx[b] > 0;
      h = f.hr[b] / (f.hx[b] + kHistoryPrior);
    }
    const XY c = CandidateXYT<K>(CellOf(cand, b));
    if (c.x > 0) {
      const double r = c.y - s.mc * c.x, q = c.x * h;
      xc[i] = c.x;
      qc[i] = q;
      out.u[i] = r;
      out.raw_c2 += r * r;
      cs.Add(c.x, r, q, has_history);
      out.seen[i] |= 1;
    }
    if constexpr (K != kContrastAgreement) {
      const XY p = ProductionXYT<K>(CellOf(prod, b));
      if (p.x > 0) {
        const double r = p.y - s.mp * p.x, q = p.x * h;
        xp[i] = p.x;
        qp[i] = q;
        out.r[i] = r;
        out.raw_p2 += r * r;
        ps.Add(p.x, r, q, has_history);
        out.seen[i] |= 2;
      }
    }
  }
  double rq_c, qq_c, rq_p, qq_p;
  cs.Centre(s.c.x, &rq_c, &qq_c);
  ps.Centre(s.p.x, &rq_p, &qq_p);
  if (adjust && cs.with_history + ps.with_history >= kMinAdjustClusters && qq_c + qq_p > 0) {
    cs.gamma = ps.gamma = (rq_c + rq_p) / (qq_c + qq_p);
  }
  out.gamma_c = cs.gamma;
  out.gamma_p = ps.gamma;
  out.mc = s.mc - cs.gamma * cs.qbar;
  out.mp = s.mp - ps.gamma * ps.qbar;
  const double cu = s.c.x > 0 ? s.w / s.c.x : 0;
  const double cr = s.p.x > 0 ? s.w / s.p.x : 0;
  for (size_t i = 0; i < n; ++i) {
    if (out.seen[i] & 1) out.u[i] = cu * (out.u[i] - cs.gamma * (qc[i] - cs.qbar * xc[i]));
    if (out.seen[i] & 2) out.r[i] = cr * (out.r[i] - ps.gamma * (qp[i] - ps.qbar * xp[i]));
  }
}

}  // namespace

void Evidence::Stratify(ContrastId k, CandidateTraffic t, StratumPass& out) const {
  const EvidenceArm ca = CandidateArm(k, t);
  const ArmBuckets& cs = buckets_[static_cast<int>(ca)];
  const ArmBuckets& ps = buckets_[static_cast<int>(EvidenceArm::kProduction)];
  const Stratum s = MakeStratum(k, cs.totals, ps.totals, windows_[static_cast<int>(ca)],
                                window(EvidenceArm::kProduction));
  const ContrastFold& f = folds_[k];
  switch (k) {
    case kContrastError:
      ComputeStratum<kContrastError>(s, active_, cs.cells, ps.cells, f, config_.history_adjustment, out);
      break;
    case kContrastLatencyFail:
      ComputeStratum<kContrastLatencyFail>(s, active_, cs.cells, ps.cells, f, config_.history_adjustment, out);
      break;
    case kContrastLatencyPass:
      ComputeStratum<kContrastLatencyPass>(s, active_, cs.cells, ps.cells, f, config_.history_adjustment, out);
      break;
    case kContrastTtftFail:
      ComputeStratum<kContrastTtftFail>(s, active_, cs.cells, ps.cells, f, config_.history_adjustment, out);
      break;
    case kContrastTtftPass:
      ComputeStratum<kContrastTtftPass>(s, active_, cs.cells, ps.cells, f, config_.history_adjustment, out);
      break;
    case kContrastSatisfaction:
      ComputeStratum<kContrastSatisfaction>(s, active_, cs.cells, ps.cells, f, config_.history_adjustment, out);
      break;
    case kContrastCost:
      ComputeStratum<kContrastCost>(s, active_, cs.cells, ps.cells, f, config_.history_adjustment, out);
      break;
    case kContrastAgreement:
      ComputeStratum<kContrastAgreement>(s, active_, cs.cells, ps.cells, f, config_.history_adjustment, out);
      break;
    case kNumContrasts:
      break;
  }
}

ContrastResult Evidence::Contrast(ContrastId k, CandidateTraffic t) const {
  std::array<ContrastResult, kNumContrasts> out;
  Contrasts(t, 1u << k, out);
  return out[k];
}

void Evidence::Contrasts(CandidateTraffic t, uint32_t mask,
                         std::array<ContrastResult, kNumContrasts>& out) const {
  StratumPass& pass = scratch_;
  for (int ki = 0; ki < kNumContrasts; ++ki) {
    if (!(mask & (1u << ki))) continue;
    const ContrastId k = static_cast<ContrastId>(ki);
    Stratify(k, t, pass);
    const ContrastFold& f = folds_[k];
    const Stratum& s = pass.s;
    const bool folded = !f.empty();
    double suu = 0, srr = 0, sur = 0;
    int64_t gc = 0, gp = 0;
    for (size_t i = 0; i < active_.size(); ++i) {
      const int32_t b = active_[i];
      const double u = (folded ? f.u[b] : 0) + pass.u[i];
      const double r = (folded ? f.r[b] : 0) + pass.r[i];
      const uint8_t seen = (folded ? f.seen[b] : 0) | pass.seen[i];
      gc += seen & 1;
      gp += (seen >> 1) & 1;
      suu += u * u;
      srr += r * r;
      sur += u * r;
    }
    const double W = f.w + s.w;
    const double A = f.a + s.w * pass.mc;
    const double B = f.b + s.w * pass.mp;
    const double VA = f.va + (s.c.x > 0 ? s.w * s.w * s.vc / s.c.x : 0);
    const double VB = f.vb + (s.p.x > 0 ? s.w * s.w * s.vp / s.p.x : 0);
    const double XC = f.xc + (s.w > 0 ? s.c.x : 0);
    const double XP = f.xp + (s.w > 0 ? s.p.x : 0);
    ContrastResult& res = out[ki];
    res = ContrastResult{};
    res.cand_samples = XC;
    res.prod_samples = XP;
    res.cand_clusters = gc;
    res.prod_clusters = gp;
    res.adjustment_slope = pass.gamma_c;
    const Kind kind = KindOf(k);
    // (variance over scale²) of one side, CR1-corrected: the variance of
    // the contrast given the sums of squared influence.
    auto variance = [&](double su, double sr, double sx, int64_t nc, int64_t np, double scale_a,
                        double scale_b) {
      const double cc = nc > 1 ? nc / (nc - 1.0) : 1.0;
      const double cp = np > 1 ? np / (np - 1.0) : 1.0;
      double v = cc * su / (scale_a * scale_a);
      if (kind != Kind::kOneSample) {
        v += cp * sr / (scale_b * scale_b) - 2 * std::sqrt(cc * cp) * sx / (scale_a * scale_b);
      }
      return std::max(v, 0.0);
    };
    if (!(W > 0)) continue;
    res.cand_mean = A / W;
    res.prod_mean = B / W;
    switch (kind) {
      case Kind::kRatio: {
        // Counts: half an event per arm keeps the log finite (Jeffreys-like).
        // Amounts (cost): only a floor.
        const bool counts = IsBinary(k);
        const double a2 = counts ? std::max(A, 0.0) + 0.5 * W / std::max(XC, 1.0)
                                 : std::max(A, 1e-12 * W);
        const double b2 = counts ? std::max(B, 0.0) + 0.5 * W / std::max(XP, 1.0)
                                 : std::max(B, 1e-12 * W);
        res.estimate = std::log(a2 / b2);
        res.v_cr = variance(suu, srr, sur, gc, gp, a2, b2);
        res.v_iid = VA / (a2 * a2) + VB / (b2 * b2);
        break;
      }
      case Kind::kDifference: {
        res.estimate = (A - B) / W;
        if (k == kContrastSatisfaction) res.estimate = -res.estimate;  // a drop is worse
        res.v_cr = variance(suu, srr, sur, gc, gp, W, W);
        res.v_iid = (VA + VB) / (W * W);
        break;
      }
      case Kind::kOneSample: {
        res.estimate = A / W;
        res.v_cr = variance(suu, 0, 0, gc, 0, W, W);
        res.v_iid = VA / (W * W);
        break;
      }
    }
  }
}

void Evidence::FoldStage(CandidateTraffic t) {
  // The recent window still holds this stage's requests for a while.
  previous_raw_design_effect_ = StageErrorClustering(t).design_effect;
  FoldStratum(t);
  for (ArmWindow& w : windows_) w = ArmWindow{};
  for (auto& cells : stage_err_) {
    if (!cells.empty()) std::fill(cells.begin(), cells.end(), StageErrCell{});
  }
}

void Evidence::FoldStratum(CandidateTraffic t) {
  StratumPass& pass = scratch_;
  for (int ki = 0; ki < kNumContrasts; ++ki) {
    const ContrastId k = static_cast<ContrastId>(ki);
    ContrastFold& f = folds_[k];
    Stratify(k, t, pass);
    const Stratum& s = pass.s;
    if (!(s.w > 0) && !(s.p.x > 0)) continue;
    if (f.empty()) {
      f.u.assign(kBucketCount, 0);
      f.r.assign(kBucketCount, 0);
      f.seen.assign(kBucketCount, 0);
      f.hx.assign(kBucketCount, 0);
      f.hr.assign(kBucketCount, 0);
    }
    if (s.w > 0) {
      f.w += s.w;
      f.a += s.w * pass.mc;
      f.b += s.w * pass.mp;
      if (s.c.x > 0) f.va += s.w * s.w * s.vc / s.c.x;
      if (s.p.x > 0) f.vb += s.w * s.w * s.vp / s.p.x;
      f.xc += s.c.x;
      f.xp += s.p.x;
      for (size_t i = 0; i < active_.size(); ++i) {
        const int32_t b = active_[i];
        f.u[b] += pass.u[i];
        f.r[b] += pass.r[i];
        f.seen[b] |= pass.seen[i];
      }
    }
    // The production side becomes history for the strata to come: each
    // bucket's excess over this stratum's production mean.
    if (k != kContrastAgreement && s.p.x > 0) {
      const ArmBuckets& ps = buckets_[static_cast<int>(EvidenceArm::kProduction)];
      for (int32_t b : active_) {
        const XY xy = ProductionXY(k, CellOf(ps.cells, b));
        if (xy.x > 0) {
          f.hx[b] += xy.x;
          f.hr[b] += xy.y - s.mp * xy.x;
          f.hx_total += xy.x;
        }
      }
    }
  }
  for (ArmBuckets& a : buckets_) {
    if (!a.cells.empty()) {
      for (int32_t b : active_) a.cells[b] = BucketCell{};
    }
    a.totals = CellTotals{};
  }
  // Keep only buckets some stratum, or the stage's error table, remembers.
  std::vector<int32_t> keep;
  for (int32_t b : active_) {
    bool any = false;
    for (const ContrastFold& f : folds_) {
      any = any || (!f.empty() && (f.seen[b] != 0 || f.hx[b] > 0));
    }
    for (const auto& cells : stage_err_) any = any || (!cells.empty() && cells[b].n > 0);
    if (any) {
      keep.push_back(b);
    } else {
      is_active_[b] = 0;
    }
  }
  active_ = std::move(keep);
}

void Evidence::Restart() {
  previous_raw_design_effect_ = 0;
  for (auto& cells : stage_err_) cells.clear();
  for (ArmBuckets& a : buckets_) {
    a.cells.clear();
    a.totals = CellTotals{};
  }
  for (ArmWindow& w : windows_) w = ArmWindow{};
  for (ContrastFold& f : folds_) f = ContrastFold{};
  for (int32_t b : active_) is_active_[b] = 0;
  active_.clear();
}

// ------------------------------------------------------------ persistence

void Evidence::Save(v1::JudgeEvidence* out) const {
  v1::ArmEvidence* arms[kEvidenceArms] = {out->mutable_production(), out->mutable_candidate(),
                                          out->mutable_shadow()};
  std::vector<int32_t> sorted = active_;
  std::sort(sorted.begin(), sorted.end());
  for (int ai = 0; ai < kEvidenceArms; ++ai) {
    v1::ArmEvidence* a = arms[ai];
    ToProto(windows_[ai].c, a->mutable_counters());
    for (const auto& [i, n] : windows_[ai].latency_ms.Sparse()) {
      a->add_latency_index(i);
      a->add_latency_count(n);
    }
    for (const auto& [i, n] : windows_[ai].ttft_ms.Sparse()) {
      a->add_ttft_index(i);
      a->add_ttft_count(n);
    }
    if (!stage_err_[ai].empty()) {
      for (int32_t b : sorted) {
        const StageErrCell& e = stage_err_[ai][b];
        if (e.n == 0) continue;
        a->add_stage_bucket(b);
        a->add_stage_requests(e.n);
        a->add_stage_errors(e.e);
      }
    }
    const ArmBuckets& ab = buckets_[ai];
    if (ab.cells.empty()) continue;
    v1::BucketColumns* col = a->mutable_buckets();
    for (int32_t b : sorted) {
      const BucketCell& c = ab.cells[b];
      if (CellEmpty(c)) continue;
      col->add_bucket(b);
      col->add_requests(c.n);
      col->add_errors(c.e);
      col->add_latency_timed(c.lat_n);
      col->add_ttft_timed(c.ttft_n);
      for (int i = 0; i < 3; ++i) {
        col->add_latency_above(c.lat_above[i]);
        col->add_ttft_above(c.ttft_above[i]);
      }
      col->add_feedback(c.fb_n);
      col->add_feedback_sum(c.fb_sum);
      col->add_cost_samples(c.cost_n);
      col->add_cost_sum(c.cost_sum);
      col->add_comparisons(c.cmp_n);
      col->add_major_diffs(c.major);
    }
  }
  out->set_latency_threshold_ms(lat_threshold_);
  out->set_ttft_threshold_ms(ttft_threshold_);
  out->set_previous_stage_design_effect(previous_raw_design_effect_);
  std::vector<int32_t> folded;
  for (int32_t b : sorted) {
    bool any = false;
    for (const ContrastFold& f : folds_) {
      any = any || (!f.empty() && (f.u[b] != 0 || f.r[b] != 0 || f.seen[b] != 0 || f.hx[b] != 0));
    }
    if (any) {
      folded.push_back(b);
      out->add_folded_bucket(b);
    }
  }
  for (int ki = 0; ki < kNumContrasts; ++ki) {
    const ContrastFold& f = folds_[ki];
    v1::ContrastEvidence* c = out->add_contrasts();
    c->set_name(ContrastName(static_cast<ContrastId>(ki)));
    c->set_weight(f.w);
    c->set_candidate_weighted(f.a);
    c->set_production_weighted(f.b);
    c->set_candidate_iid_var(f.va);
    c->set_production_iid_var(f.vb);
    c->set_candidate_samples(f.xc);
    c->set_production_samples(f.xp);
    c->set_max_log_lr(f.max_log_lr);
    c->set_history_samples(f.hx_total);
    if (f.empty()) continue;
    for (int32_t b : folded) {
      c->add_u(static_cast<float>(f.u[b]));
      c->add_r(static_cast<float>(f.r[b]));
      c->add_seen(f.seen[b]);
      c->add_history_x(static_cast<int64_t>(std::llround(f.hx[b])));
      c->add_history_excess(static_cast<float>(f.hr[b]));
    }
  }
  google::protobuf::RepeatedPtrField<v1::RecentSlotEvidence>* recents[kEvidenceArms] = {
      out->mutable_production_recent(), out->mutable_candidate_recent(),
      out->mutable_shadow_recent()};
  for (int ai = 0; ai < kEvidenceArms; ++ai) {
    for (const auto& [index, counters] : recent_[ai].Slots()) {
      v1::RecentSlotEvidence* slot = recents[ai]->Add();
      slot->set_index(index);
      ToProto(counters, slot->mutable_counters());
    }
  }
}

namespace {

absl::Status BadEvidence(const std::string& what) {
  return absl::InvalidArgumentError(absl::StrCat("judge evidence: ", what));
}

bool BucketOk(int32_t b) { return b >= 0 && b < kBucketCount; }

// CellAt is row i of validated bucket columns.
BucketCell CellAt(const v1::BucketColumns& col, int i) {
  BucketCell c;
  c.n = static_cast<int32_t>(col.requests(i));
  c.e = static_cast<int32_t>(col.errors(i));
  c.lat_n = static_cast<int32_t>(col.latency_timed(i));
  c.ttft_n = static_cast<int32_t>(col.ttft_timed(i));
  for (int j = 0; j < 3; ++j) {
    c.lat_above[j] = static_cast<int32_t>(col.latency_above(3 * i + j));
    c.ttft_above[j] = static_cast<int32_t>(col.ttft_above(3 * i + j));
  }
  c.fb_n = static_cast<int32_t>(col.feedback(i));
  c.fb_sum = col.feedback_sum(i);
  c.cost_n = static_cast<int32_t>(col.cost_samples(i));
  c.cost_sum = col.cost_sum(i);
  c.cmp_n = static_cast<int32_t>(col.comparisons(i));
  c.major = static_cast<int32_t>(col.major_diffs(i));
  return c;
}

// Histograms of an arm's saved columns (false if an index is out of range).
bool HistogramsOf(const v1::ArmEvidence& a, ArmWindow* w) {
  std::vector<std::pair<int32_t, int64_t>> lat, ttft;
  for (int i = 0; i < a.latency_index_size(); ++i) lat.emplace_back(a.latency_index(i), a.latency_count(i));
  for (int i = 0; i < a.ttft_index_size(); ++i) ttft.emplace_back(a.ttft_index(i), a.ttft_count(i));
  return w->latency_ms.SetSparse(lat) && w->ttft_ms.SetSparse(ttft);
}

// ValidateArms checks the per-arm columns of saved evidence or a delta.
absl::Status ValidateArms(const v1::JudgeEvidence& in) {
  auto bad = BadEvidence;
  auto bucket_ok = BucketOk;
  const v1::ArmEvidence* arms[kEvidenceArms] = {&in.production(), &in.candidate(), &in.shadow()};
  for (int ai = 0; ai < kEvidenceArms; ++ai) {
    const v1::ArmEvidence& a = *arms[ai];
    if (a.latency_index_size() != a.latency_count_size() ||
        a.ttft_index_size() != a.ttft_count_size()) {
      return bad("histogram columns differ in length");
    }
    const v1::BucketColumns& col = a.buckets();
    const int n = col.bucket_size();
    if (col.requests_size() != n || col.errors_size() != n || col.latency_timed_size() != n ||
        col.ttft_timed_size() != n || col.latency_above_size() != 3 * n ||
        col.ttft_above_size() != 3 * n || col.feedback_size() != n ||
        col.feedback_sum_size() != n || col.cost_samples_size() != n ||
        col.cost_sum_size() != n || col.comparisons_size() != n || col.major_diffs_size() != n) {
      return bad("bucket columns differ in length");
    }
    for (int32_t b : col.bucket()) {
      if (!bucket_ok(b)) return bad(absl::StrCat("bucket ", b, " out of range"));
    }
    if (a.stage_requests_size() != a.stage_bucket_size() ||
        a.stage_errors_size() != a.stage_bucket_size()) {
      return bad("stage error columns differ in length");
    }
    for (int32_t b : a.stage_bucket()) {
      if (!bucket_ok(b)) return bad(absl::StrCat("bucket ", b, " out of range"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status Evidence::Load(const v1::JudgeEvidence& in) {
  auto bad = BadEvidence;
  auto bucket_ok = BucketOk;
  const v1::ArmEvidence* arms[kEvidenceArms] = {&in.production(), &in.candidate(), &in.shadow()};
  // Validate first: a malformed record changes nothing.
  if (absl::Status s = ValidateArms(in); !s.ok()) return s;
  std::array<int, kNumContrasts> contrast_row;
  contrast_row.fill(-1);
  for (int i = 0; i < in.contrasts_size(); ++i) {
    const v1::ContrastEvidence& c = in.contrasts(i);
    int k = -1;
    for (int ki = 0; ki < kNumContrasts; ++ki) {
      if (c.name() == ContrastName(static_cast<ContrastId>(ki))) k = ki;
    }
    if (k < 0) return bad(absl::StrCat("unknown contrast \"", c.name(), "\""));
    const int rows = c.u_size();
    if ((rows != 0 && rows != in.folded_bucket_size()) || c.r_size() != rows ||
        c.seen_size() != rows || c.history_x_size() != rows || c.history_excess_size() != rows) {
      return bad(absl::StrCat("contrast ", c.name(), ": columns differ in length"));
    }
    contrast_row[k] = i;
  }
  for (int32_t b : in.folded_bucket()) {
    if (!bucket_ok(b)) return bad(absl::StrCat("bucket ", b, " out of range"));
  }
  std::array<ArmWindow, kEvidenceArms> windows;
  for (int ai = 0; ai < kEvidenceArms; ++ai) {
    const v1::ArmEvidence& a = *arms[ai];
    windows[ai].c = FromProto(a.counters());
    if (!HistogramsOf(a, &windows[ai])) return bad("histogram index out of range");
  }

  // Apply.
  Restart();
  windows_ = std::move(windows);
  for (int ai = 0; ai < kEvidenceArms; ++ai) {
    const v1::BucketColumns& col = arms[ai]->buckets();
    ArmBuckets& ab = buckets_[ai];
    for (int i = 0; i < col.bucket_size(); ++i) {
      const int32_t b = col.bucket(i);
      BucketCell& c = ab.At(b);
      c = CellAt(col, i);
      AddCell(c, ab.totals);
      Activate(b);
    }
    const v1::ArmEvidence& a = *arms[ai];
    for (int i = 0; i < a.stage_bucket_size(); ++i) {
      const int32_t b = a.stage_bucket(i);
      if (stage_err_[ai].empty()) stage_err_[ai].resize(kBucketCount);
      stage_err_[ai][b].n = static_cast<int32_t>(a.stage_requests(i));
      stage_err_[ai][b].e = static_cast<int32_t>(a.stage_errors(i));
      Activate(b);
    }
  }
  SetThresholds(in.latency_threshold_ms(), in.ttft_threshold_ms());
  previous_raw_design_effect_ = std::max(0.0, in.previous_stage_design_effect());
  for (int ki = 0; ki < kNumContrasts; ++ki) {
    if (contrast_row[ki] < 0) continue;
    const v1::ContrastEvidence& c = in.contrasts(contrast_row[ki]);
    ContrastFold& f = folds_[ki];
    f.w = c.weight();
    f.a = c.candidate_weighted();
    f.b = c.production_weighted();
    f.va = c.candidate_iid_var();
    f.vb = c.production_iid_var();
    f.xc = c.candidate_samples();
    f.xp = c.production_samples();
    f.max_log_lr = c.max_log_lr();
    f.hx_total = c.history_samples();
    if (c.u_size() == 0) continue;
    f.u.assign(kBucketCount, 0);
    f.r.assign(kBucketCount, 0);
    f.seen.assign(kBucketCount, 0);
    f.hx.assign(kBucketCount, 0);
    f.hr.assign(kBucketCount, 0);
    for (int i = 0; i < c.u_size(); ++i) {
      const int32_t b = in.folded_bucket(i);
      f.u[b] = c.u(i);
      f.r[b] = c.r(i);
      f.seen[b] = static_cast<uint8_t>(c.seen(i));
      f.hx[b] = static_cast<double>(c.history_x(i));
      f.hr[b] = c.history_excess(i);
      Activate(b);
    }
  }
  const google::protobuf::RepeatedPtrField<v1::RecentSlotEvidence>* recents[kEvidenceArms] = {
      &in.production_recent(), &in.candidate_recent(), &in.shadow_recent()};
  for (int ai = 0; ai < kEvidenceArms; ++ai) {
    std::vector<std::pair<int64_t, Counters>> slots;
    for (const v1::RecentSlotEvidence& s : *recents[ai]) {
      slots.emplace_back(s.index(), FromProto(s.counters()));
    }
    recent_[ai].SetSlots(slots);
  }
  return absl::OkStatus();
}

absl::Status Evidence::Merge(const v1::JudgeEvidence& in) {
  // A delta is what one replica recorded (Controller::TakeEvidenceDelta):
  // windows, the current stratum's cells and recent slots, never folded
  // strata (only the judge folds).
  if (absl::Status s = ValidateArms(in); !s.ok()) return s;
  if (in.folded_bucket_size() != 0) return BadEvidence("a delta carries no folded strata");
  for (const v1::ContrastEvidence& c : in.contrasts()) {
    if (c.weight() != 0 || c.u_size() != 0) return BadEvidence("a delta carries no folded strata");
  }
  const v1::ArmEvidence* arms[kEvidenceArms] = {&in.production(), &in.candidate(), &in.shadow()};
  std::array<ArmWindow, kEvidenceArms> add;
  for (int ai = 0; ai < kEvidenceArms; ++ai) {
    if (!HistogramsOf(*arms[ai], &add[ai])) return BadEvidence("histogram index out of range");
  }
  const google::protobuf::RepeatedPtrField<v1::RecentSlotEvidence>* recents[kEvidenceArms] = {
      &in.production_recent(), &in.candidate_recent(), &in.shadow_recent()};
  for (int ai = 0; ai < kEvidenceArms; ++ai) {
    const v1::ArmEvidence& a = *arms[ai];
    ArmWindow& w = windows_[ai];
    w.c.Merge(FromProto(a.counters()));
    w.latency_ms.Merge(add[ai].latency_ms);
    w.ttft_ms.Merge(add[ai].ttft_ms);
    const v1::BucketColumns& col = a.buckets();
    ArmBuckets& ab = buckets_[ai];
    for (int i = 0; i < col.bucket_size(); ++i) {
      const int32_t b = col.bucket(i);
      const BucketCell d = CellAt(col, i);
      AddCell(d, ab.At(b));
      AddCell(d, ab.totals);
      Activate(b);
    }
    for (int i = 0; i < a.stage_bucket_size(); ++i) {
      const int32_t b = a.stage_bucket(i);
      if (stage_err_[ai].empty()) stage_err_[ai].resize(kBucketCount);
      stage_err_[ai][b].n += static_cast<int32_t>(a.stage_requests(i));
      stage_err_[ai][b].e += static_cast<int32_t>(a.stage_errors(i));
      Activate(b);
    }
    for (const v1::RecentSlotEvidence& slot : *recents[ai]) {
      recent_[ai].MergeSlot(slot.index(), FromProto(slot.counters()));
    }
  }
  return absl::OkStatus();
}

}  // namespace understudy::rollout
