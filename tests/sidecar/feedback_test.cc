// ParseFeedbackJson: what a client may post as feedback, and that no body —
// however malformed — escapes as an exception (it runs on the gRPC thread
// for Envoy's feedback path and would end the process).
#include "sidecar/feedback.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/common/test_util.h"

namespace understudy::sidecar {
namespace {

using ::understudy::testing::StatusIs;

class FeedbackJsonTest : public ::testing::Test {};

// Scores in [0, 1], "up"/"down" and booleans are accepted with a comment.
TEST_F(FeedbackJsonTest, AcceptsScoresWordsAndBooleans) {
  absl::StatusOr<v1::Feedback> f =
      ParseFeedbackJson(R"({"request_id":"r1","score":0.25,"comment":"ok"})");
  ASSERT_OK(f);
  EXPECT_EQ(f->request_id(), "r1");
  EXPECT_DOUBLE_EQ(f->score(), 0.25);
  EXPECT_EQ(f->comment(), "ok");
  absl::StatusOr<v1::Feedback> down = ParseFeedbackJson(R"({"request_id":"r1","score":"down"})");
  ASSERT_OK(down);
  EXPECT_DOUBLE_EQ(down->score(), 0);
}

// Regression (fuzz/feedback_fuzzer): a number too large for a double made
// nlohmann-json throw out_of_range, which nothing caught; every such body
// is now a 400-style InvalidArgument.
TEST_F(FeedbackJsonTest, NumberOverflowIsInvalidArgumentNotACrash) {
  EXPECT_THAT(ParseFeedbackJson(R"({"request_id":"r1","score":1e999})"),
              StatusIs(absl::StatusCode::kInvalidArgument, "invalid JSON"));
  EXPECT_THAT(ParseFeedbackJson("666e11510"),
              StatusIs(absl::StatusCode::kInvalidArgument, "invalid JSON"));
  EXPECT_THAT(ParseFeedbackJson(R"({"request_id":"r1","score":-1e400})"),
              StatusIs(absl::StatusCode::kInvalidArgument, "invalid JSON"));
}

// Out-of-range scores and unknown fields are refused.
TEST_F(FeedbackJsonTest, RefusesOutOfRangeScoresAndUnknownFields) {
  EXPECT_THAT(ParseFeedbackJson(R"({"request_id":"r1","score":2})"),
              StatusIs(absl::StatusCode::kInvalidArgument, "score"));
  EXPECT_THAT(ParseFeedbackJson(R"({"request_id":"r1","score":1,"stars":5})"),
              StatusIs(absl::StatusCode::kInvalidArgument, "stars"));
}

}  // namespace
}  // namespace understudy::sidecar
