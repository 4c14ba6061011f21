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

// A feedback token rates one request, under one key, until it expires; a
// token for another request, under another key, tampered with, malformed or
// missing is PermissionDenied and says which.
TEST(FeedbackSignerTest, ATokenRatesItsOwnRequestUntilItExpires) {
  ManualClock clock(absl::FromUnixSeconds(1700000000));
  const std::string key(32, 'k');
  FeedbackSigner signer(key, absl::Hours(1), clock);
  const std::string token = signer.Sign("req-1");
  EXPECT_THAT(token, ::testing::StartsWith("v1.1700003600."));
  EXPECT_EQ(token.find_first_of(" +/=\r\n"), std::string::npos) << token;  // header-safe
  EXPECT_TRUE(signer.Verify("req-1", token).ok());
  // Stateless: another replica (or a restarted one) with the key agrees.
  EXPECT_TRUE(FeedbackSigner(key, absl::Minutes(1), clock).Verify("req-1", token).ok());

  EXPECT_THAT(signer.Verify("req-2", token),
              StatusIs(absl::StatusCode::kPermissionDenied, "not issued for this request id"));
  EXPECT_THAT(FeedbackSigner(std::string(32, 'x'), absl::Hours(1), clock).Verify("req-1", token),
              StatusIs(absl::StatusCode::kPermissionDenied, "not issued for this request id"));
  EXPECT_THAT(signer.Verify("req-1", ""),
              StatusIs(absl::StatusCode::kPermissionDenied, "no x-understudy-feedback-token"));
  for (std::string bad : {"v2.1.abc", "v1.", "v1.notanumber.abc", "garbage", "v1.1700003600"}) {
    EXPECT_THAT(signer.Verify("req-1", bad),
                StatusIs(absl::StatusCode::kPermissionDenied, "malformed")) << bad;
  }
  // A later expiry with the old signature is not this request's token.
  std::string stretched = token;
  stretched.replace(3, 10, "1800000000");
  EXPECT_THAT(signer.Verify("req-1", stretched),
              StatusIs(absl::StatusCode::kPermissionDenied, "not issued"));
  std::string flipped = token;
  flipped.back() = flipped.back() == 'A' ? 'B' : 'A';
  EXPECT_THAT(signer.Verify("req-1", flipped),
              StatusIs(absl::StatusCode::kPermissionDenied, "not issued"));

  clock.Advance(absl::Hours(1));  // the last second it is valid
  EXPECT_TRUE(signer.Verify("req-1", token).ok());
  clock.Advance(absl::Seconds(1));
  EXPECT_THAT(signer.Verify("req-1", token),
              StatusIs(absl::StatusCode::kPermissionDenied, "expired"));
}

// Rotating the key: a signer with a verify key accepts tokens under either
// key and signs with its own only, so replicas that already sign with the
// new key and replicas still on the old one accept each other's tokens.
TEST(FeedbackSignerTest, AVerifyKeyAcceptsTheOtherKeysTokensAndNeverSigns) {
  ManualClock clock(absl::FromUnixSeconds(1700000000));
  const std::string old_key(32, 'o'), new_key(32, 'n');
  FeedbackSigner old_only(old_key, absl::Hours(1), clock);
  FeedbackSigner old_accepting_new(old_key, absl::Hours(1), clock, new_key);  // step 1
  FeedbackSigner new_accepting_old(new_key, absl::Hours(1), clock, old_key);  // step 2
  FeedbackSigner new_only(new_key, absl::Hours(1), clock);                    // step 3

  const std::string from_old = old_accepting_new.Sign("req-1");
  EXPECT_EQ(from_old, old_only.Sign("req-1")) << "signs with its own key, not the verify key";
  const std::string from_new = new_accepting_old.Sign("req-1");
  EXPECT_EQ(from_new, new_only.Sign("req-1"));
  EXPECT_NE(from_old, from_new);

  for (const FeedbackSigner* s : {&old_accepting_new, &new_accepting_old}) {
    EXPECT_TRUE(s->Verify("req-1", from_old).ok());
    EXPECT_TRUE(s->Verify("req-1", from_new).ok());
    // Either key still binds the token to its request and its expiry.
    EXPECT_THAT(s->Verify("req-2", from_old),
                StatusIs(absl::StatusCode::kPermissionDenied, "not issued for this request id"));
    EXPECT_THAT(s->Verify("req-2", from_new),
                StatusIs(absl::StatusCode::kPermissionDenied, "not issued for this request id"));
  }
  EXPECT_THAT(old_only.Verify("req-1", from_new),
              StatusIs(absl::StatusCode::kPermissionDenied, "not issued"));
  EXPECT_THAT(new_only.Verify("req-1", from_old),
              StatusIs(absl::StatusCode::kPermissionDenied, "not issued"));
  const std::string from_third = FeedbackSigner(std::string(32, 't'), absl::Hours(1), clock)
                                     .Sign("req-1");
  EXPECT_THAT(new_accepting_old.Verify("req-1", from_third),
              StatusIs(absl::StatusCode::kPermissionDenied, "not issued"));

  clock.Advance(absl::Hours(1) + absl::Seconds(1));
  EXPECT_THAT(new_accepting_old.Verify("req-1", from_old),
              StatusIs(absl::StatusCode::kPermissionDenied, "expired"));
}

}  // namespace
}  // namespace understudy::sidecar
