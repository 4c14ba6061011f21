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
// Thread safety: a pure function.
#ifndef UNDERSTUDY_SIDECAR_FEEDBACK_H_
#define UNDERSTUDY_SIDECAR_FEEDBACK_H_

#include <string_view>

#include "absl/status/statusor.h"
#include "understudy/v1/exchange.pb.h"

namespace understudy::sidecar {

// ParseFeedbackJson reads {"request_id": "...", "score": 0.8, "comment":
// "..."}; score may also be true/false or "up"/"down" (1/0). request_id is
// at most 512 bytes without NUL, comment at most 4096 bytes; unknown fields
// are refused. InvalidArgument names the field at fault ("score: must be in
// [0,1], got 2").
[[nodiscard]] absl::StatusOr<understudy::v1::Feedback> ParseFeedbackJson(std::string_view body);

}  // namespace understudy::sidecar

#endif  // UNDERSTUDY_SIDECAR_FEEDBACK_H_
