// tests/support/recording_sink.h: an ExchangeSink for tests that keeps
// every exchange it is given (up to `capacity`; 0 rejects everything, as a
// full pipeline queue would) and lets a test wait for them, since streams
// end asynchronously.
#ifndef UNDERSTUDY_TESTS_SUPPORT_RECORDING_SINK_H_
#define UNDERSTUDY_TESTS_SUPPORT_RECORDING_SINK_H_

#include <cstddef>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "sidecar/pipeline.h"
#include "understudy/v1/exchange.pb.h"

namespace understudy::testing {

class RecordingSink final : public sidecar::ExchangeSink {
 public:
  explicit RecordingSink(size_t capacity = size_t{1} << 20) : capacity_(capacity) {}

  bool Submit(understudy::v1::Exchange&& e) override {
    absl::MutexLock lock(&mu_);
    if (exchanges_.size() >= capacity_) return false;
    exchanges_.push_back(std::move(e));
    return true;
  }

  // WaitFor blocks until `n` exchanges arrived or 10 s passed, then returns
  // everything received so far.
  std::vector<understudy::v1::Exchange> WaitFor(size_t n) {
    absl::MutexLock lock(&mu_);
    auto enough = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return exchanges_.size() >= n; };
    mu_.AwaitWithTimeout(absl::Condition(&enough), absl::Seconds(10));
    return exchanges_;
  }

 private:
  const size_t capacity_;
  absl::Mutex mu_;
  std::vector<understudy::v1::Exchange> exchanges_ ABSL_GUARDED_BY(mu_);
};

}  // namespace understudy::testing

#endif  // UNDERSTUDY_TESTS_SUPPORT_RECORDING_SINK_H_
