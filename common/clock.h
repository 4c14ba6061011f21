// common/clock.h
// Time behind an interface so compare/, rollout/ and tests never read the
// wall clock directly.
//
// Example (given const Clock& clock):
//   absl::Time started = clock.Now();     // RealClock::Default() in the process
//   ManualClock manual(absl::FromUnixSeconds(1700000000));  // in tests
//   manual.Advance(absl::Minutes(10));
//   bool later = manual.Now() - started > absl::ZeroDuration();
//
// Thread safety: both implementations may be used from many threads.
#ifndef UNDERSTUDY_COMMON_CLOCK_H_
#define UNDERSTUDY_COMMON_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace understudy {

class Clock {
 public:
  virtual ~Clock() = default;
  // Now returns the current time.
  virtual absl::Time Now() const = 0;
};

// RealClock reads the system clock.
class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  // Default returns a process-wide instance.
  static RealClock& Default() {
    static RealClock* clock = new RealClock;
    return *clock;
  }
};

// ManualClock only moves when told to: tests and the simulator use it.
class ManualClock final : public Clock {
 public:
  explicit ManualClock(absl::Time start = absl::FromUnixSeconds(1700000000))
      : now_(start) {}
  absl::Time Now() const override {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }
  void Set(absl::Time t) {
    absl::MutexLock lock(&mu_);
    now_ = t;
  }

 private:
  mutable absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace understudy

#endif  // UNDERSTUDY_COMMON_CLOCK_H_
