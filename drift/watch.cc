// The drift watch (drift/drift.h). Why it is shaped this way:
//   * One baseline per arm, frozen from its first `baseline_requests`
//     answers: the versions seen there are known, and the behaviour metrics'
//     means and clustered variances are what later answers are compared to.
//   * Every estimate's variance is cluster-robust over user buckets (a user
//     who always asks long questions is one unit, not hundreds), and the
//     baseline's own variance is added to the live one: the baseline is an
//     estimate too, and leaving its error out makes A/A runs alarm.
//   * The test is a normal-mixture sequential test, looked at every
//     kCheckEvery answers forever: its interval is valid at every look.
#include <algorithm>
#include <cmath>
#include <deque>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "drift/drift.h"

namespace understudy::drift {

namespace v1 = ::understudy::v1;

namespace {

constexpr int kCheckEvery = 5;
constexpr int kArms = 2;
// Metrics that are 0/1 per answer: their mixture scale and the least
// effect worth an alarm have an absolute floor (5 points), since their
// baseline may well be 0.
constexpr double kRateFloor = 0.05;

bool IsRate(const std::string& metric) {
  return metric != kMetricAnswerChars && metric != kMetricCost;
}

// MetricAcc accumulates one metric by cluster.
struct MetricAcc {
  std::map<int32_t, std::pair<double, int64_t>> clusters;  // sum, count
  double sum = 0;
  double sumsq = 0;
  int64_t n = 0;

  void Add(int32_t cluster, double x) {
    auto& c = clusters[cluster];
    c.first += x;
    ++c.second;
    sum += x;
    sumsq += x * x;
    ++n;
  }
  double Mean() const { return n > 0 ? sum / static_cast<double>(n) : 0; }
  // Per-answer variance.
  double Variance() const {
    if (n < 2) return 0;
    const double m = Mean();
    return std::max(0.0, (sumsq - n * m * m) / static_cast<double>(n - 1));
  }
  // Cluster-robust variance of the mean; never below the independent one.
  double MeanVariance() const {
    if (n == 0) return 0;
    const double m = Mean();
    double s = 0;
    for (const auto& [id, c] : clusters) {
      const double r = c.first - static_cast<double>(c.second) * m;
      s += r * r;
    }
    const double nn = static_cast<double>(n);
    const double k = static_cast<double>(clusters.size());
    const double robust = k > 1 ? s / (nn * nn) * k / (k - 1) : 0;
    return std::max(robust, Variance() / nn);
  }
};

struct DimState {
  std::map<std::string, int64_t> all_counts;
  std::set<std::string> known;
  std::map<std::string, int64_t> pending;
  std::map<std::string, int64_t> reference;
  int64_t reference_n = 0;
  std::deque<std::string> recent;
  std::map<std::string, int64_t> recent_counts;
};

struct ArmState {
  int64_t observed = 0;
  bool has_baseline = false;
  v1::DriftBaseline baseline;
  std::map<std::string, DimState> dims;
  std::map<std::string, MetricAcc> base;
  std::vector<std::pair<int32_t, double>> base_latency, base_ttft;
  std::map<std::string, MetricAcc> live;
  std::set<std::string> latched;
  int64_t live_observed = 0;
  int epoch = 1;
  std::map<std::string, MetricStatus> status;
};

int ArmIndex(v1::Arm arm) { return arm == v1::ARM_CANDIDATE ? 1 : 0; }

double P95(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t i = static_cast<size_t>(std::ceil(0.95 * static_cast<double>(v.size()))) - 1;
  return v[std::min(i, v.size() - 1)];
}

double Tvd(const std::map<std::string, int64_t>& a, int64_t an,
           const std::map<std::string, int64_t>& b, int64_t bn) {
  std::set<std::string> keys;
  for (const auto& [k, v] : a) keys.insert(k);
  for (const auto& [k, v] : b) keys.insert(k);
  double d = 0;
  for (const std::string& k : keys) {
    auto ia = a.find(k);
    auto ib = b.find(k);
    const double pa = ia == a.end() ? 0 : static_cast<double>(ia->second) / an;
    const double pb = ib == b.end() ? 0 : static_cast<double>(ib->second) / bn;
    d += std::fabs(pa - pb);
  }
  return d / 2;
}

std::string MixText(const std::map<std::string, int64_t>& m, int64_t n) {
  std::vector<std::string> parts;
  for (const auto& [k, v] : m) {
    parts.push_back(absl::StrFormat("%s %.0f%%", k, 100.0 * static_cast<double>(v) / n));
  }
  return absl::StrJoin(parts, ", ");
}

}  // namespace

const std::vector<std::string>& MetricNames() {
  static const std::vector<std::string> names = {
      kMetricAnswerChars,     kMetricRefusal,     kMetricInvalidOutput, kMetricFinishLength,
      kMetricLatencyOverP95,  kMetricTtftOverP95, kMetricCost};
  return names;
}

std::string_view KindName(v1::DriftKind kind) {
  switch (kind) {
    case v1::DRIFT_NEW_VERSION:
      return "new_version";
    case v1::DRIFT_VERSION_MIX:
      return "version_mix";
    case v1::DRIFT_BEHAVIOUR:
      return "behaviour";
    default:
      return "unspecified";
  }
}

double MixtureHalfWidth(double variance, double tau2, double alpha) {
  if (variance <= 0) return 0;
  if (tau2 <= 0) return std::numeric_limits<double>::infinity();
  const double v = variance;
  return std::sqrt((v + tau2) / tau2 * v * (std::log((v + tau2) / v) + 2 * std::log(1 / alpha)));
}

struct Watch::Impl {
  explicit Impl(DriftConfig c) : config(std::move(c)) {}
  const DriftConfig config;
  mutable absl::Mutex mu;
  ArmState arms[kArms] ABSL_GUARDED_BY(mu);

  void FreezeBaseline(v1::Arm arm, ArmState& s, absl::Time now, WatchResult* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void ObserveVersion(v1::Arm arm, ArmState& s, const std::string& dim, const std::string& value,
                      const Observation& o, WatchResult* out) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void Judge(v1::Arm arm, ArmState& s, const Observation& o, WatchResult* out)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
  void InstallBaseline(ArmState& s, const v1::DriftBaseline& b) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu);
};

Watch::Watch(DriftConfig config) : impl_(std::make_unique<Impl>(std::move(config))) {}
Watch::~Watch() = default;

namespace {

// Values of one answer per behaviour metric (those that apply to it).
std::vector<std::pair<std::string, double>> MetricValues(const Observation& o, double latency_p95,
                                                         double ttft_p95, bool have_p95) {
  std::vector<std::pair<std::string, double>> v;
  if (!o.answered) return v;
  v.emplace_back(kMetricInvalidOutput, o.invalid_output ? 1 : 0);
  if (!o.ok) return v;
  if (o.answer_chars.has_value()) v.emplace_back(kMetricAnswerChars, *o.answer_chars);
  v.emplace_back(kMetricRefusal, o.refusal ? 1 : 0);
  v.emplace_back(kMetricFinishLength, o.finish_length ? 1 : 0);
  if (o.cost.has_value()) v.emplace_back(kMetricCost, *o.cost);
  if (have_p95) {
    if (o.latency_ms.has_value()) {
      v.emplace_back(kMetricLatencyOverP95, *o.latency_ms > latency_p95 ? 1 : 0);
    }
    if (o.ttft_ms.has_value() && ttft_p95 > 0) {
      v.emplace_back(kMetricTtftOverP95, *o.ttft_ms > ttft_p95 ? 1 : 0);
    }
  }
  return v;
}

int32_t ClusterOf(const Observation& o) {
  if (o.cluster >= 0) return o.cluster;
  return static_cast<int32_t>(std::hash<std::string>{}(o.request_id) % 10000) + 10000;
}

}  // namespace

WatchResult Watch::Observe(const Observation& o) {
  WatchResult out;
  if (o.arm != v1::ARM_PRODUCTION && o.arm != v1::ARM_CANDIDATE) return out;
  absl::MutexLock lock(&impl_->mu);
  ArmState& s = impl_->arms[ArmIndex(o.arm)];
  ++s.observed;
  for (const auto& [dim, value] : o.versions) {
    if (!value.empty()) impl_->ObserveVersion(o.arm, s, dim, value, o, &out);
  }
  const int32_t cluster = ClusterOf(o);
  if (!s.has_baseline) {
    for (const auto& [metric, x] : MetricValues(o, 0, 0, false)) s.base[metric].Add(cluster, x);
    if (o.answered && o.ok) {
      if (o.latency_ms.has_value()) s.base_latency.emplace_back(cluster, *o.latency_ms);
      if (o.ttft_ms.has_value()) s.base_ttft.emplace_back(cluster, *o.ttft_ms);
    }
    if (s.observed >= impl_->config.baseline_requests) {
      impl_->FreezeBaseline(o.arm, s, o.time, &out);
    }
    return out;
  }
  if (!impl_->config.behaviour) return out;
  for (const auto& [metric, x] :
       MetricValues(o, s.baseline.latency_p95_ms(), s.baseline.ttft_p95_ms(), true)) {
    s.live[metric].Add(cluster, x);
  }
  if (++s.live_observed % kCheckEvery == 0) impl_->Judge(o.arm, s, o, &out);
  if (s.live_observed >= impl_->config.window) {
    // A new epoch: the live side starts over and spends half of what is left.
    s.live.clear();
    s.live_observed = 0;
    ++s.epoch;
  }
  return out;
}

void Watch::Impl::ObserveVersion(v1::Arm arm, ArmState& s, const std::string& dim,
                                 const std::string& value, const Observation& o,
                                 WatchResult* out) {
  DimState& d = s.dims[dim];
  ++d.all_counts[value];
  if (!s.has_baseline) {
    d.known.insert(value);
    ++d.reference[value];
    ++d.reference_n;
    return;
  }
  if (d.known.count(value) == 0) {
    if (++d.pending[value] < config.new_value_min_count) return;
    v1::DriftEvent e;
    e.set_arm(arm);
    e.set_kind(v1::DRIFT_NEW_VERSION);
    e.set_dimension(dim);
    e.set_value(value);
    for (const std::string& k : d.known) e.add_known_values(k);
    e.set_samples(d.pending[value]);
    e.set_request_id(o.request_id);
    e.set_detail(absl::StrCat(dim, " \"", value, "\" is new (known: ",
                              absl::StrJoin(d.known, ", "), ")"));
    out->events.push_back(std::move(e));
    d.known.insert(value);
    d.pending.erase(value);
    // The mix has changed by definition: take a new reference from the
    // next full window instead of alarming on the same change twice.
    d.reference.clear();
    d.reference_n = 0;
    d.recent.clear();
    d.recent_counts.clear();
    return;
  }
  d.recent.push_back(value);
  ++d.recent_counts[value];
  const int64_t window = config.mix_window;
  if (static_cast<int64_t>(d.recent.size()) > window) {
    const std::string& old = d.recent.front();
    if (--d.recent_counts[old] == 0) d.recent_counts.erase(old);
    d.recent.pop_front();
  }
  if (static_cast<int64_t>(d.recent.size()) < window) return;
  if (d.reference_n == 0) {
    d.reference = d.recent_counts;
    d.reference_n = window;
    return;
  }
  const double tvd = Tvd(d.reference, d.reference_n, d.recent_counts, window);
  if (tvd < config.mix_min_distance) return;
  v1::DriftEvent e;
  e.set_arm(arm);
  e.set_kind(v1::DRIFT_VERSION_MIX);
  e.set_dimension(dim);
  e.set_distance(tvd);
  for (const std::string& k : d.known) e.add_known_values(k);
  e.set_samples(window);
  e.set_request_id(o.request_id);
  e.set_detail(absl::StrFormat("%s mix moved by %.2f: was %s, now %s", dim, tvd,
                               MixText(d.reference, d.reference_n),
                               MixText(d.recent_counts, window)));
  out->events.push_back(std::move(e));
  d.reference = d.recent_counts;
  d.reference_n = window;
  d.recent.clear();
  d.recent_counts.clear();
}

void Watch::Impl::FreezeBaseline(v1::Arm arm, ArmState& s, absl::Time now, WatchResult* out) {
  v1::DriftBaseline b;
  b.set_arm(arm);
  b.set_captured_unix_micros(absl::ToUnixMicros(now));
  b.set_cause(absl::StrCat("first ", s.observed, " answers watched"));
  for (const auto& [dim, d] : s.dims) {
    v1::DriftVersionSet* vs = b.add_versions();
    vs->set_dimension(dim);
    for (const auto& [value, count] : d.all_counts) {
      vs->add_values(value);
      vs->add_counts(count);
    }
  }
  std::vector<double> lat, ttft;
  for (const auto& [c, x] : s.base_latency) lat.push_back(x);
  for (const auto& [c, x] : s.base_ttft) ttft.push_back(x);
  b.set_latency_p95_ms(P95(lat));
  b.set_ttft_p95_ms(P95(ttft));
  for (const auto& [c, x] : s.base_latency) {
    s.base[kMetricLatencyOverP95].Add(c, x > b.latency_p95_ms() ? 1 : 0);
  }
  if (b.ttft_p95_ms() > 0) {
    for (const auto& [c, x] : s.base_ttft) {
      s.base[kMetricTtftOverP95].Add(c, x > b.ttft_p95_ms() ? 1 : 0);
    }
  }
  for (const auto& [metric, acc] : s.base) {
    v1::DriftMetricBaseline* m = b.add_metrics();
    m->set_metric(metric);
    m->set_mean(acc.Mean());
    m->set_mean_variance(acc.MeanVariance());
    m->set_variance(acc.Variance());
    m->set_samples(acc.n);
    m->set_clusters(static_cast<int64_t>(acc.clusters.size()));
  }
  s.base.clear();
  s.base_latency.clear();
  s.base_ttft.clear();
  InstallBaseline(s, b);
  out->baselines.push_back(std::move(b));
}

void Watch::Impl::InstallBaseline(ArmState& s, const v1::DriftBaseline& b) {
  s.has_baseline = true;
  s.baseline = b;
  s.live.clear();
  s.latched.clear();
  s.status.clear();
  s.live_observed = 0;
  s.epoch = 1;
  for (const v1::DriftVersionSet& vs : b.versions()) {
    DimState& d = s.dims[vs.dimension()];
    d.known.insert(vs.values().begin(), vs.values().end());
    d.reference.clear();
    d.reference_n = 0;
    for (int i = 0; i < vs.values_size() && i < vs.counts_size(); ++i) {
      d.reference[vs.values(i)] += vs.counts(i);
      d.reference_n += vs.counts(i);
      d.all_counts.emplace(vs.values(i), 0);
    }
  }
}

void Watch::Impl::Judge(v1::Arm arm, ArmState& s, const Observation& o, WatchResult* out) {
  const size_t judged = config.metrics.empty() ? MetricNames().size() : config.metrics.size();
  const double alpha_each =
      config.alpha / static_cast<double>(judged * static_cast<size_t>(kArms)) /
      std::pow(2.0, std::min(s.epoch, 60));
  for (const v1::DriftMetricBaseline& base : s.baseline.metrics()) {
    const std::string& metric = base.metric();
    if (!config.metrics.empty() &&
        std::find(config.metrics.begin(), config.metrics.end(), metric) == config.metrics.end()) {
      continue;
    }
    auto it = s.live.find(metric);
    if (it == s.live.end()) continue;
    const MetricAcc& live = it->second;
    if (live.n < config.min_samples ||
        static_cast<int64_t>(live.clusters.size()) < config.min_clusters ||
        base.samples() < config.min_samples) {
      continue;
    }
    MetricStatus st;
    st.arm = arm;
    st.metric = metric;
    st.baseline = base.mean();
    st.live = live.Mean();
    st.effect = st.live - st.baseline;
    const double sd = std::sqrt(base.variance());
    st.effect_size = sd > 0 ? st.effect / sd : 0;
    st.samples = live.n;
    const double floor = IsRate(metric) ? kRateFloor : 0;
    const double scale = std::max(std::fabs(base.mean()) * config.min_relative_effect, floor);
    const double variance = live.MeanVariance() + base.mean_variance();
    const double half = MixtureHalfWidth(variance, scale * scale, alpha_each);
    st.effect_lower = st.effect - half;
    st.effect_upper = st.effect + half;
    const bool excluded = variance > 0 ? (st.effect_lower > 0 || st.effect_upper < 0)
                                       : std::fabs(st.effect) > 0;
    st.drifted = s.latched.count(metric) > 0 ||
                 (excluded && scale > 0 && std::fabs(st.effect) >= scale);
    s.status[metric] = st;
    if (!st.drifted || s.latched.count(metric) > 0) continue;
    s.latched.insert(metric);
    v1::DriftEvent e;
    e.set_arm(arm);
    e.set_kind(v1::DRIFT_BEHAVIOUR);
    e.set_dimension(metric);
    e.set_baseline_value(st.baseline);
    e.set_live_value(st.live);
    e.set_effect(st.effect);
    e.set_relative_effect(st.baseline != 0 ? st.effect / std::fabs(st.baseline) : 0);
    e.set_effect_lower(st.effect_lower);
    e.set_effect_upper(st.effect_upper);
    e.set_samples(live.n);
    e.set_clusters(static_cast<int64_t>(live.clusters.size()));
    e.set_request_id(o.request_id);
    e.set_detail(absl::StrFormat(
        "%s moved from %.4g to %.4g (%+.1f%%, effect size %.2f sd; always-valid interval "
        "[%.4g, %.4g] at alpha %.3g)",
        metric, st.baseline, st.live,
        st.baseline != 0 ? 100 * st.effect / std::fabs(st.baseline) : 0.0, st.effect_size,
        st.effect_lower, st.effect_upper, alpha_each));
    out->events.push_back(std::move(e));
  }
}

void Watch::RestoreBaseline(const v1::DriftBaseline& baseline) {
  if (baseline.arm() != v1::ARM_PRODUCTION && baseline.arm() != v1::ARM_CANDIDATE) return;
  absl::MutexLock lock(&impl_->mu);
  ArmState& s = impl_->arms[ArmIndex(baseline.arm())];
  s.base.clear();
  s.base_latency.clear();
  s.base_ttft.clear();
  impl_->InstallBaseline(s, baseline);
}

void Watch::RestoreEvent(const v1::DriftEvent& e) {
  if (e.arm() != v1::ARM_PRODUCTION && e.arm() != v1::ARM_CANDIDATE) return;
  absl::MutexLock lock(&impl_->mu);
  ArmState& s = impl_->arms[ArmIndex(e.arm())];
  if (e.kind() == v1::DRIFT_NEW_VERSION) {
    s.dims[e.dimension()].known.insert(e.value());
  } else if (e.kind() == v1::DRIFT_BEHAVIOUR) {
    s.latched.insert(e.dimension());
  }
}

WatchSnapshot Watch::Snapshot() const {
  WatchSnapshot snap;
  absl::MutexLock lock(&impl_->mu);
  for (int i = 0; i < kArms; ++i) {
    const ArmState& s = impl_->arms[i];
    const v1::Arm arm = i == 1 ? v1::ARM_CANDIDATE : v1::ARM_PRODUCTION;
    for (const auto& [dim, d] : s.dims) {
      ArmVersions av;
      av.arm = arm;
      av.dimension = dim;
      for (const auto& [value, count] : d.all_counts) av.counts.emplace_back(value, count);
      snap.versions.push_back(std::move(av));
    }
    for (const auto& [metric, st] : s.status) snap.metrics.push_back(st);
    if (s.has_baseline) snap.baselines.push_back(s.baseline);
  }
  return snap;
}

}  // namespace understudy::drift
