// rollout/health.h (internal to rollout/)
// Per-arm health windows: counters, errors by class, log-bucketed latency
// histograms, satisfaction and cost moments, shadow agreement.
#ifndef UNDERSTUDY_ROLLOUT_HEALTH_H_
#define UNDERSTUDY_ROLLOUT_HEALTH_H_

#include <array>
#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "rollout/rollout.h"
#include "understudy/v1/rollout.pb.h"

namespace understudy::rollout {

// LogHistogram is a mergeable histogram of positive values (milliseconds)
// with buckets growing by 2%, so a quantile read back is within 1% of a
// value in the data. Range 0.001 .. ~2e7; values outside are clamped.
class LogHistogram {
 public:
  static constexpr int kBuckets = 1200;
  static constexpr double kMin = 0.001;
  static constexpr double kGamma = 1.02;

  void Add(double value);
  void Merge(const LogHistogram& other);
  int64_t count() const { return count_; }
  // Quantile returns the q-quantile (q in [0,1]); 0 when empty.
  double Quantile(double q) const;
  // CountAbove counts values in buckets wholly above `value`'s bucket.
  int64_t CountAbove(double value) const;
  // The non-empty buckets as (index, count), and their inverse (false if
  // an index is out of range or a count negative), for persistence.
  std::vector<std::pair<int32_t, int64_t>> Sparse() const;
  bool SetSparse(const std::vector<std::pair<int32_t, int64_t>>& sparse);

  static int BucketOf(double value);
  // Representative value of a bucket (relative error ≤ (γ-1)/(γ+1)).
  static double BucketValue(int bucket);

 private:
  std::array<int64_t, kBuckets> buckets_{};
  int64_t count_ = 0;
};

// Moments of a real-valued sample (satisfaction scores, costs).
struct Moments {
  int64_t n = 0;
  double sum = 0;
  double sum_sq = 0;
  void Add(double x) {
    ++n;
    sum += x;
    sum_sq += x * x;
  }
  void Merge(const Moments& o) {
    n += o.n;
    sum += o.sum;
    sum_sq += o.sum_sq;
  }
  double Mean() const { return n > 0 ? sum / n : 0; }
  // Sample variance (n-1); 0 below two samples.
  double Variance() const;
};

// Counters shared by the stage window and the recent window's slots.
struct Counters {
  int64_t requests = 0;
  int64_t errors = 0;
  int64_t errors_5xx = 0;
  int64_t errors_timeout = 0;
  int64_t errors_transport = 0;
  int64_t errors_invalid_body = 0;
  int64_t throttled = 0;
  int64_t comparisons = 0;  // shadow comparisons with a verdict
  int64_t major_diffs = 0;
  Moments satisfaction;
  Moments cost;
  void Add(const Outcome& o);
  void Merge(const Counters& o);
};

// ArmWindow: one arm since stage start.
struct ArmWindow {
  Counters c;
  LogHistogram latency_ms;
  LogHistogram ttft_ms;
  void Add(const Outcome& o);
};

// SlidingCounters keeps `slots` counters covering `window` of time; slots
// older than the window are dropped as time moves.
class SlidingCounters {
 public:
  SlidingCounters(absl::Duration window, int slots);
  // Slot returns the counters for time `now`, rotating out old slots.
  Counters& Slot(absl::Time now);
  Counters Sum(absl::Time now) const;
  // InWindow is the slots still in the window at `now`, oldest first.
  std::vector<std::pair<int64_t, Counters>> InWindow(absl::Time now) const;
  void Clear() { slots_.clear(); }
  // The slots as (slot index, counters), oldest first, for persistence;
  // SetSlots replaces them (a restart resumes the window).
  std::vector<std::pair<int64_t, Counters>> Slots() const {
    return {slots_.begin(), slots_.end()};
  }
  void SetSlots(const std::vector<std::pair<int64_t, Counters>>& slots) {
    slots_.assign(slots.begin(), slots.end());
  }
  // MergeSlot adds counters to slot `index` (created in order if new; a
  // slot older than the window's oldest is kept only while it fits).
  void MergeSlot(int64_t index, const Counters& c);

 private:
  absl::Duration slot_len_;
  int max_slots_;
  std::deque<std::pair<int64_t, Counters>> slots_;  // (slot index, counters)
};

// FillArmHealth writes a window's summary into the proto.
void FillArmHealth(const Counters& c, const LogHistogram* latency, const LogHistogram* ttft,
                   absl::Duration covers, understudy::v1::ArmHealth* out);

}  // namespace understudy::rollout

#endif  // UNDERSTUDY_ROLLOUT_HEALTH_H_
