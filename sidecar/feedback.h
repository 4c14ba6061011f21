// sidecar/feedback.h
// Parses a user's score for an answer: the body of the admin API's
// POST /v1/feedback and of feedback POSTed through Envoy on the feedback
// path. One parser for both doors, so both accept and refuse the same input.
//
// Example:
//   absl::StatusOr<v1::Feedback> f =
//       ParseFeedbackJson(R"({"request_id":"r1","score":"up"})");
//   // f->score() == 1.0; f->arm() is unset until the engine joins it.
//
// FeedbackLimiter bounds how many scores one client may send per minute.
//
// Example (a per-client limit):
//   FeedbackLimiter limiter(/*per_minute=*/60, RealClock::Default());
//   if (!limiter.Allow("user-7")) return absl::ResourceExhaustedError("over the limit");
//
// Thread safety: ParseFeedbackJson is a pure function; FeedbackLimiter's
// methods may be called concurrently.
#ifndef UNDERSTUDY_SIDECAR_FEEDBACK_H_
#define UNDERSTUDY_SIDECAR_FEEDBACK_H_

#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "understudy/v1/exchange.pb.h"

namespace understudy::sidecar {

// ParseFeedbackJson reads {"request_id": "...", "score": 0.8, "comment":
// "..."}; score may also be true/false or "up"/"down" (1/0). request_id is
// at most 512 bytes without NUL, comment at most 4096 bytes; unknown fields
// are refused. InvalidArgument names the field at fault ("score: must be in
// [0,1], got 2").
[[nodiscard]] absl::StatusOr<understudy::v1::Feedback> ParseFeedbackJson(std::string_view body);

// FeedbackLimiter is a token bucket per client: `per_minute` tokens, refilled
// continuously (one every 60s/per_minute), so a client may send a burst of
// per_minute scores and then one per refill interval. It remembers at most
// `max_clients` clients, forgetting the least recently added first (a
// forgotten client starts again with a full bucket, as an idle one would).
// per_minute <= 0 allows everything. `clock` must outlive the limiter.
class FeedbackLimiter {
 public:
  FeedbackLimiter(int64_t per_minute, const Clock& clock, size_t max_clients = 100000);

  // Allow takes one token from `client`'s bucket; false when it is empty.
  [[nodiscard]] bool Allow(std::string_view client);

 private:
  struct Bucket {
    double tokens = 0;
    absl::Time last;
  };
  const int64_t per_minute_;
  const Clock& clock_;
  const size_t max_clients_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, Bucket> buckets_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> order_ ABSL_GUARDED_BY(mu_);  // insertion order, for eviction
};

}  // namespace understudy::sidecar

#endif  // UNDERSTUDY_SIDECAR_FEEDBACK_H_
