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
// FeedbackSigner issues and checks feedback tokens: the sidecar adds one to
// each answer (header x-understudy-feedback-token), and feedback through
// Envoy must bring it back, so only a client that got the answer can rate
// it (docs/operations.md, "Feedback").
//
// Example (given const std::string& key):
//   FeedbackSigner signer(key, absl::Hours(24), RealClock::Default());
//   std::string token = signer.Sign("r1");        // on the answer
//   absl::Status ok = signer.Verify("r1", token);  // on the feedback POST
//
// Thread safety: ParseFeedbackJson is a pure function; FeedbackLimiter's
// and FeedbackSigner's methods may be called concurrently.
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

// The answer header that carries a feedback token, and the feedback
// request header that brings it back.
inline constexpr std::string_view kFeedbackTokenHeader = "x-understudy-feedback-token";

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

// FeedbackSigner: a token is "v1.<expiry, unix seconds>.<signature>", the
// signature being HMAC-SHA256 under the key of the request id and the
// expiry, base64url without padding (docs/operations.md). Stateless: any
// replica holding the key checks any replica's tokens, across restarts.
//
// A second key, `verify_key`, is only checked, never signed with: it lets a
// fleet rotate its key without refusing the tokens already handed out
// (docs/operations.md, "Rotating the key").
class FeedbackSigner {
 public:
  // Keys must be at least kMinKeyBytes long (checked by the config).
  static constexpr size_t kMinKeyBytes = 32;
  // `clock` must outlive the signer. An empty `verify_key` means none.
  FeedbackSigner(std::string key, absl::Duration ttl, const Clock& clock,
                 std::string verify_key = "");

  // Sign returns the token for `request_id`, valid for the ttl from now.
  [[nodiscard]] std::string Sign(std::string_view request_id) const;
  // Verify is OK when `token` was signed for `request_id` under the key or
  // the verify key and has not expired; else PermissionDenied saying which (missing,
  // malformed, expired, or not this request's). The comparison takes the
  // same time wherever the signatures differ.
  [[nodiscard]] absl::Status Verify(std::string_view request_id, std::string_view token) const;

 private:
  static std::string Signature(std::string_view key, std::string_view request_id, int64_t expiry);
  const std::string key_;
  const std::string verify_key_;
  const absl::Duration ttl_;
  const Clock& clock_;
};

}  // namespace understudy::sidecar

#endif  // UNDERSTUDY_SIDECAR_FEEDBACK_H_
