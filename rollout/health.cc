#include "rollout/health.h"

#include <algorithm>
#include <cmath>

namespace understudy::rollout {

namespace {
const double kLogGamma = std::log(LogHistogram::kGamma);
}  // namespace

int LogHistogram::BucketOf(double value) {
  if (!(value > kMin)) return 0;  // also catches NaN
  double i = std::floor(std::log(value / kMin) / kLogGamma) + 1;
  if (i >= kBuckets - 1) return kBuckets - 1;
  return static_cast<int>(i);
}

double LogHistogram::BucketValue(int bucket) {
  if (bucket <= 0) return kMin;
  // Bucket i covers [kMin γ^(i-1), kMin γ^i); 2·lo·γ/(γ+1) is within
  // (γ-1)/(γ+1) ≈ 0.99% of every value in it.
  double lo = kMin * std::pow(kGamma, bucket - 1);
  return 2 * lo * kGamma / (kGamma + 1);
}

void LogHistogram::Add(double value) {
  ++buckets_[BucketOf(value)];
  ++count_;
}

void LogHistogram::Merge(const LogHistogram& other) {
  for (int i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
  count_ += other.count_;
}

double LogHistogram::Quantile(double q) const {
  if (count_ == 0) return 0;
  q = std::clamp(q, 0.0, 1.0);
  // The value of rank ceil(q·n) (1-based), at least rank 1.
  int64_t rank = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * count_)));
  int64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= rank) return BucketValue(i);
  }
  return BucketValue(kBuckets - 1);
}

int64_t LogHistogram::CountAbove(double value) const {
  int64_t n = 0;
  for (int i = BucketOf(value) + 1; i < kBuckets; ++i) n += buckets_[i];
  return n;
}

std::vector<std::pair<int32_t, int64_t>> LogHistogram::Sparse() const {
  std::vector<std::pair<int32_t, int64_t>> out;
  for (int i = 0; i < kBuckets; ++i) {
    if (buckets_[i] != 0) out.emplace_back(i, buckets_[i]);
  }
  return out;
}

bool LogHistogram::SetSparse(const std::vector<std::pair<int32_t, int64_t>>& sparse) {
  std::array<int64_t, kBuckets> b{};
  int64_t count = 0;
  for (const auto& [i, n] : sparse) {
    if (i < 0 || i >= kBuckets || n < 0) return false;
    b[i] += n;
    count += n;
  }
  buckets_ = b;
  count_ = count;
  return true;
}

double Moments::Variance() const {
  if (n < 2) return 0;
  double mean = sum / n;
  double v = (sum_sq - n * mean * mean) / (n - 1);
  return v > 0 ? v : 0;
}

void Counters::Add(const Outcome& o) {
  ++requests;
  switch (o.status) {
    case OutcomeClass::kServerError: ++errors_5xx; break;
    case OutcomeClass::kTimeout: ++errors_timeout; break;
    case OutcomeClass::kTransport: ++errors_transport; break;
    case OutcomeClass::kInvalidBody: ++errors_invalid_body; break;
    case OutcomeClass::kThrottled: ++throttled; break;
    default: break;
  }
  if (IsError(o.status)) ++errors;
  if (o.cost.has_value() && std::isfinite(*o.cost) && *o.cost >= 0) cost.Add(*o.cost);
}

void Counters::Merge(const Counters& o) {
  requests += o.requests;
  errors += o.errors;
  errors_5xx += o.errors_5xx;
  errors_timeout += o.errors_timeout;
  errors_transport += o.errors_transport;
  errors_invalid_body += o.errors_invalid_body;
  throttled += o.throttled;
  comparisons += o.comparisons;
  major_diffs += o.major_diffs;
  satisfaction.Merge(o.satisfaction);
  cost.Merge(o.cost);
}

void ArmWindow::Add(const Outcome& o) {
  c.Add(o);
  // Latency of failed requests says little about the model's speed (a
  // refused connection is "fast"), so only successful ones are timed.
  if (IsError(o.status) || o.status == OutcomeClass::kThrottled) return;
  if (o.latency.has_value()) latency_ms.Add(absl::ToDoubleMilliseconds(*o.latency));
  if (o.ttft.has_value()) ttft_ms.Add(absl::ToDoubleMilliseconds(*o.ttft));
}

SlidingCounters::SlidingCounters(absl::Duration window, int slots)
    : slot_len_(window / std::max(1, slots)), max_slots_(std::max(1, slots)) {
  if (slot_len_ <= absl::ZeroDuration()) slot_len_ = absl::Seconds(1);
}

Counters& SlidingCounters::Slot(absl::Time now) {
  absl::Duration rem;
  int64_t idx = absl::IDivDuration(now - absl::UnixEpoch(), slot_len_, &rem);
  if (slots_.empty() || slots_.back().first < idx) {
    slots_.emplace_back(idx, Counters{});
  }
  while (!slots_.empty() && slots_.front().first <= idx - max_slots_) slots_.pop_front();
  // A clock that went backwards lands in the newest slot.
  return slots_.back().second;
}

void SlidingCounters::MergeSlot(int64_t index, const Counters& c) {
  auto it = std::lower_bound(
      slots_.begin(), slots_.end(), index,
      [](const std::pair<int64_t, Counters>& s, int64_t i) { return s.first < i; });
  if (it != slots_.end() && it->first == index) {
    it->second.Merge(c);
  } else {
    slots_.insert(it, {index, c});
  }
  const int64_t newest = slots_.back().first;
  while (!slots_.empty() && slots_.front().first <= newest - max_slots_) slots_.pop_front();
}

Counters SlidingCounters::Sum(absl::Time now) const {
  absl::Duration rem;
  int64_t idx = absl::IDivDuration(now - absl::UnixEpoch(), slot_len_, &rem);
  Counters total;
  for (const auto& [i, c] : slots_) {
    if (i > idx - max_slots_) total.Merge(c);
  }
  return total;
}

std::vector<std::pair<int64_t, Counters>> SlidingCounters::InWindow(absl::Time now) const {
  absl::Duration rem;
  int64_t idx = absl::IDivDuration(now - absl::UnixEpoch(), slot_len_, &rem);
  std::vector<std::pair<int64_t, Counters>> out;
  for (const auto& [i, c] : slots_) {
    if (i > idx - max_slots_) out.emplace_back(i, c);
  }
  return out;
}

void FillArmHealth(const Counters& c, const LogHistogram* latency, const LogHistogram* ttft,
                   absl::Duration covers, understudy::v1::ArmHealth* out) {
  out->set_requests(c.requests);
  out->set_errors(c.errors);
  out->set_throttled(c.throttled);
  out->set_errors_5xx(c.errors_5xx);
  out->set_errors_timeout(c.errors_timeout);
  out->set_errors_transport(c.errors_transport);
  out->set_errors_invalid_body(c.errors_invalid_body);
  out->set_error_rate(c.requests > 0 ? static_cast<double>(c.errors) / c.requests : 0);
  if (latency != nullptr) {
    out->set_latency_p50_ms(latency->Quantile(0.5));
    out->set_latency_p95_ms(latency->Quantile(0.95));
    out->set_latency_p99_ms(latency->Quantile(0.99));
  }
  if (ttft != nullptr) {
    out->set_ttft_p50_ms(ttft->Quantile(0.5));
    out->set_ttft_p95_ms(ttft->Quantile(0.95));
    out->set_ttft_p99_ms(ttft->Quantile(0.99));
  }
  out->set_feedback_count(c.satisfaction.n);
  out->set_satisfaction_mean(c.satisfaction.Mean());
  out->set_satisfaction_variance(c.satisfaction.Variance());
  out->set_cost_samples(c.cost.n);
  out->set_cost_per_request(c.cost.Mean());
  out->set_comparisons(c.comparisons);
  out->set_agreement_rate(
      c.comparisons > 0 ? 1.0 - static_cast<double>(c.major_diffs) / c.comparisons : 0);
  out->set_window_micros(absl::ToInt64Microseconds(covers));
}

}  // namespace understudy::rollout
