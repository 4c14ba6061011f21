// StreamSession, message by message, for every processing mode.
#include "sidecar/stream_session.h"

#include <gmock/gmock.h>
#include <map>
#include <gtest/gtest.h>

#include "tests/common/test_util.h"

namespace understudy::sidecar {
namespace {

namespace ep = envoy::service::ext_proc::v3;
using Mode = envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;
using ::understudy::testing::StatusIs;

class StreamSessionTest : public ::testing::Test {
 protected:
  std::unique_ptr<StreamSession> NewSession(StreamRole role) {
    return std::make_unique<StreamSession>(role, options_, router_, clock_, stats_);
  }

  static ep::ProcessingRequest Headers(bool request_dir,
                                       std::vector<std::pair<std::string, std::string>> headers,
                                       bool eos = false) {
    ep::ProcessingRequest r;
    ep::HttpHeaders* h = request_dir ? r.mutable_request_headers() : r.mutable_response_headers();
    for (auto& [k, v] : headers) {
      auto* hv = h->mutable_headers()->add_headers();
      hv->set_key(k);
      hv->set_raw_value(v);
    }
    h->set_end_of_stream(eos);
    return r;
  }
  static ep::ProcessingRequest Body(bool request_dir, std::string data, bool eos) {
    ep::ProcessingRequest r;
    ep::HttpBody* b = request_dir ? r.mutable_request_body() : r.mutable_response_body();
    b->set_body(std::move(data));
    b->set_end_of_stream(eos);
    return r;
  }
  static ep::ProcessingRequest WithModes(ep::ProcessingRequest r, Mode::BodySendMode req,
                                         Mode::BodySendMode resp) {
    r.mutable_protocol_config()->set_request_body_mode(req);
    r.mutable_protocol_config()->set_response_body_mode(resp);
    return r;
  }
  static ep::ProcessingRequest Observed(ep::ProcessingRequest r) {
    r.set_observability_mode(true);
    return r;
  }

  // Send expects success and returns the replies.
  std::vector<ep::ProcessingResponse> Send(StreamSession& s, const ep::ProcessingRequest& r) {
    std::vector<ep::ProcessingResponse> replies;
    EXPECT_OK(s.OnMessage(r, &replies));
    return replies;
  }

  SessionOptions options_;
  rollout::Router router_{"", 0};
  ManualClock clock_;
  ExtProcStats stats_;
};

// Headers-only route stream: one request_headers reply that sets the arm via
// raw_value only and clears the route cache; no exchange is produced.
TEST_F(StreamSessionTest, RouteStreamSetsArmWithRawValueAndClearsRouteCache) {
  router_.SetWeightBasisPoints(10000);
  auto s = NewSession(StreamRole::kRoute);
  auto replies = Send(*s, Headers(true, {{":path", "/v1/chat"}, {"x-request-id", "r1"}}, true));
  ASSERT_EQ(replies.size(), 1u);
  ASSERT_TRUE(replies[0].has_request_headers());
  const ep::CommonResponse& common = replies[0].request_headers().response();
  EXPECT_TRUE(common.clear_route_cache());
  ASSERT_EQ(common.header_mutation().set_headers_size(), 1);
  const auto& option = common.header_mutation().set_headers(0);
  EXPECT_EQ(option.header().key(), "x-understudy-arm");
  EXPECT_EQ(option.header().raw_value(), "candidate");
  EXPECT_TRUE(option.header().value().empty());
  EXPECT_FALSE(option.has_append());
  EXPECT_EQ(stats_.route_candidate.Get(), 1u);
  EXPECT_FALSE(s->OnStreamEnd().has_value());
}

// The configured sticky header decides the arm; without it, x-request-id.
TEST_F(StreamSessionTest, StickyHeaderDecidesTheArmWithRequestIdFallback) {
  options_.sticky_header = "x-user-id";
  router_.SetWeightBasisPoints(5000);
  int same = 0;
  for (int i = 0; i < 200; ++i) {
    const std::string user = "user-" + std::to_string(i);
    auto a = NewSession(StreamRole::kRoute);
    auto b = NewSession(StreamRole::kRoute);
    Send(*a, Headers(true, {{"x-user-id", user}, {"x-request-id", "ra" + std::to_string(i)}}));
    Send(*b, Headers(true, {{"x-user-id", user}, {"x-request-id", "rb" + std::to_string(i)}}));
    same += a->decided_arm() == b->decided_arm();
    EXPECT_EQ(a->decided_arm(), router_.Assign(user));
  }
  EXPECT_EQ(same, 200);  // same user, different requests: same arm
  auto c = NewSession(StreamRole::kRoute);
  Send(*c, Headers(true, {{"x-request-id", "only-id"}}));
  EXPECT_EQ(c->decided_arm(), router_.Assign("only-id"));
}

// BUFFERED both ways on a full stream: one reply per message with the
// matching arm, and a complete exchange with bodies and timings.
TEST_F(StreamSessionTest, BufferedFullStreamAnswersEachMessageAndAssemblesExchange) {
  auto s = NewSession(StreamRole::kFull);
  auto r1 = Send(*s, WithModes(Headers(true, {{":method", "POST"}, {":path", "/v1/chat/completions"},
                                              {"x-request-id", "req-9"},
                                              {"authorization", "Bearer secret"},
                                              {"traceparent", "00-abc-def-01"}}),
                               Mode::BUFFERED, Mode::BUFFERED));
  ASSERT_EQ(r1.size(), 1u);
  EXPECT_TRUE(r1[0].has_request_headers());
  auto r2 = Send(*s, Body(true, "{\"model\":\"m\"}", true));
  ASSERT_EQ(r2.size(), 1u);
  EXPECT_TRUE(r2[0].has_request_body());
  EXPECT_FALSE(r2[0].request_body().response().body_mutation().has_streamed_response());
  clock_.Advance(absl::Milliseconds(120));
  auto r3 = Send(*s, Headers(false, {{":status", "200"}, {"content-type", "application/json"}}));
  ASSERT_EQ(r3.size(), 1u);
  EXPECT_TRUE(r3[0].has_response_headers());
  EXPECT_FALSE(s->TakeCompletedExchange().has_value());
  clock_.Advance(absl::Milliseconds(30));
  auto r4 = Send(*s, Body(false, "{\"choices\":[]}", true));
  ASSERT_EQ(r4.size(), 1u);
  EXPECT_TRUE(r4[0].has_response_body());

  std::optional<understudy::v1::Exchange> e = s->TakeCompletedExchange();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->request_id(), "req-9");
  EXPECT_EQ(e->method(), "POST");
  EXPECT_EQ(e->path(), "/v1/chat/completions");
  EXPECT_EQ(e->traceparent(), "00-abc-def-01");
  EXPECT_EQ(e->status_code(), 200);
  EXPECT_EQ(e->request().body(), "{\"model\":\"m\"}");
  EXPECT_EQ(e->response().body(), "{\"choices\":[]}");
  EXPECT_TRUE(e->response().complete());
  EXPECT_FALSE(e->incomplete());
  EXPECT_EQ(e->response_headers_offset_micros(), 120000);
  EXPECT_EQ(e->first_body_byte_offset_micros(), 150000);
  EXPECT_EQ(e->end_offset_micros(), 150000);
  for (const auto& h : e->request().headers()) EXPECT_NE(h.key(), "authorization");
  EXPECT_FALSE(s->TakeCompletedExchange().has_value());  // taken once
  EXPECT_FALSE(s->OnStreamEnd().has_value());
}

// STREAMED: each chunk gets exactly one response_body reply, in order.
TEST_F(StreamSessionTest, StreamedModeAnswersEveryChunk) {
  auto s = NewSession(StreamRole::kFull);
  Send(*s, WithModes(Headers(true, {{"x-request-id", "r"}}, true), Mode::STREAMED, Mode::STREAMED));
  Send(*s, Headers(false, {{":status", "200"}}));
  for (int i = 0; i < 5; ++i) {
    auto replies = Send(*s, Body(false, "data: " + std::to_string(i) + "\n\n", false));
    ASSERT_EQ(replies.size(), 1u);
    EXPECT_TRUE(replies[0].has_response_body());
  }
  auto last = Send(*s, Body(false, "", true));
  ASSERT_EQ(last.size(), 1u);
  auto e = s->TakeCompletedExchange();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->response().body(), "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n");
}

// FULL_DUPLEX_STREAMED: every chunk comes back as streamed_response with the
// same bytes, end_of_stream on the last.
TEST_F(StreamSessionTest, FullDuplexPassesChunksThroughAsStreamedResponse) {
  auto s = NewSession(StreamRole::kFull);
  Send(*s, WithModes(Headers(true, {{"x-request-id", "r"}}), Mode::FULL_DUPLEX_STREAMED,
                     Mode::FULL_DUPLEX_STREAMED));
  auto a = Send(*s, Body(true, "part-1", false));
  auto b = Send(*s, Body(true, "part-2", true));
  ASSERT_EQ(a.size(), 1u);
  ASSERT_EQ(b.size(), 1u);
  const auto& sa = a[0].request_body().response().body_mutation().streamed_response();
  const auto& sb = b[0].request_body().response().body_mutation().streamed_response();
  EXPECT_EQ(sa.body(), "part-1");
  EXPECT_FALSE(sa.end_of_stream());
  EXPECT_EQ(sb.body(), "part-2");
  EXPECT_TRUE(sb.end_of_stream());
}

// BUFFERED_PARTIAL: the single partial chunk is answered, and the captured
// body is flagged truncated since Envoy passes the rest through unseen.
TEST_F(StreamSessionTest, BufferedPartialFlagsTheBodyAsPartial) {
  auto s = NewSession(StreamRole::kFull);
  Send(*s, WithModes(Headers(true, {{"x-request-id", "r"}}, true), Mode::NONE,
                     Mode::BUFFERED_PARTIAL));
  Send(*s, Headers(false, {{":status", "200"}}));
  auto replies = Send(*s, Body(false, "first 16 KiB...", false));
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_TRUE(replies[0].has_response_body());
  auto e = s->TakeCompletedExchange();
  ASSERT_TRUE(e.has_value());
  EXPECT_TRUE(e->response().body_truncated());
}

// Observability mode: nothing is ever answered, yet the exchange is built,
// with the arm taken from the header the route filter set.
TEST_F(StreamSessionTest, ObservabilityModeNeverReplies) {
  auto s = NewSession(StreamRole::kObserve);
  EXPECT_TRUE(Send(*s, Observed(Headers(true, {{"x-request-id", "r"},
                                               {"x-understudy-arm", "candidate"}})))
                  .empty());
  EXPECT_TRUE(Send(*s, Observed(Body(true, "{}", true))).empty());
  EXPECT_TRUE(Send(*s, Observed(Headers(false, {{":status", "503"}}))).empty());
  EXPECT_TRUE(Send(*s, Observed(Body(false, "oops", true))).empty());
  EXPECT_EQ(stats_.observability_messages.Get(), 4u);
  auto e = s->TakeCompletedExchange();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->arm(), understudy::v1::ARM_CANDIDATE);
  EXPECT_EQ(e->status_code(), 503);
}

// Trailers are answered with the trailers arm and end the direction.
TEST_F(StreamSessionTest, TrailersAreAnsweredAndEndTheResponse) {
  auto s = NewSession(StreamRole::kFull);
  Send(*s, Headers(true, {{"x-request-id", "r"}}, true));
  Send(*s, Headers(false, {{":status", "200"}}));
  Send(*s, Body(false, "x", false));
  ep::ProcessingRequest t;
  auto* h = t.mutable_response_trailers()->mutable_trailers()->add_headers();
  h->set_key("grpc-status");
  h->set_raw_value("0");
  auto replies = Send(*s, t);
  ASSERT_EQ(replies.size(), 1u);
  EXPECT_TRUE(replies[0].has_response_trailers());
  auto e = s->TakeCompletedExchange();
  ASSERT_TRUE(e.has_value());
  ASSERT_EQ(e->response().trailers_size(), 1);
  EXPECT_EQ(e->response().trailers(0).value(), "0");
}

// Out-of-order messages are refused with FailedPrecondition and counted.
TEST_F(StreamSessionTest, OutOfOrderMessagesAreRefusedAndCounted) {
  auto s = NewSession(StreamRole::kFull);
  Send(*s, Headers(true, {{"x-request-id", "r"}}));
  std::vector<ep::ProcessingResponse> replies;
  EXPECT_THAT(s->OnMessage(Headers(true, {{"x-request-id", "again"}}), &replies),
              StatusIs(absl::StatusCode::kFailedPrecondition, "request_headers out of order"));
  auto s2 = NewSession(StreamRole::kFull);
  Send(*s2, Headers(true, {{"x-request-id", "r"}}, /*eos=*/true));
  EXPECT_THAT(s2->OnMessage(Body(true, "late", false), &replies),
              StatusIs(absl::StatusCode::kFailedPrecondition, "request_body out of order"));
  EXPECT_EQ(stats_.spurious_messages.Get(), 2u);
  EXPECT_TRUE(replies.empty());
}

// A message with no request part is refused as unknown.
TEST_F(StreamSessionTest, EmptyMessageIsRefusedAsUnknown) {
  auto s = NewSession(StreamRole::kFull);
  std::vector<ep::ProcessingResponse> replies;
  EXPECT_THAT(s->OnMessage(ep::ProcessingRequest(), &replies),
              StatusIs(absl::StatusCode::kInvalidArgument, "no request part"));
  EXPECT_EQ(stats_.unknown_messages.Get(), 1u);
}

// Bodies over the limit keep a prefix, are flagged, and count every byte.
TEST_F(StreamSessionTest, OversizedBodiesAreTruncatedAndFlagged) {
  options_.max_body_bytes = 10;
  auto s = NewSession(StreamRole::kFull);
  Send(*s, Headers(true, {{"x-request-id", "r"}}));
  Send(*s, Body(true, "0123456", false));
  Send(*s, Body(true, "789abcdef", false));
  Send(*s, Body(true, "ghijklmno", true));
  Send(*s, Headers(false, {{":status", "200"}}, true));
  auto e = s->TakeCompletedExchange();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->request().body(), "0123456789");
  EXPECT_TRUE(e->request().body_truncated());
  EXPECT_EQ(e->request().body_bytes_seen(), 25);
  EXPECT_EQ(stats_.bodies_truncated.Get(), 1u);
}

// Envoy ≤ 1.26 sent `value` only; it is still read.
TEST_F(StreamSessionTest, LegacyValueFieldIsReadWhenRawValueIsEmpty) {
  auto s = NewSession(StreamRole::kFull);
  ep::ProcessingRequest r;
  auto* h = r.mutable_request_headers()->mutable_headers()->add_headers();
  h->set_key("x-request-id");
  h->set_value("legacy-id");
  Send(*s, r);
  auto e = s->OnStreamEnd();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->request_id(), "legacy-id");
  EXPECT_TRUE(e->incomplete());  // the response never arrived
}

// Configured secret headers are never captured, on top of the built-ins.
TEST_F(StreamSessionTest, SecretHeadersAreNeverCaptured) {
  options_.secret_headers = {"x-tenant-token"};
  auto s = NewSession(StreamRole::kFull);
  Send(*s, Headers(true, {{"x-request-id", "r"}, {"x-tenant-token", "t0p"}, {"cookie", "c=1"},
                          {"x-api-key", "k"}, {"proxy-authorization", "p"}, {"accept", "*/*"}},
                   true));
  Send(*s, Headers(false, {{":status", "200"}, {"set-cookie", "s=1"}}, true));
  auto e = s->TakeCompletedExchange();
  ASSERT_TRUE(e.has_value());
  std::string all = e->SerializeAsString();
  for (const char* secret : {"t0p", "c=1", "s=1"}) {
    EXPECT_EQ(all.find(secret), std::string::npos) << secret;
  }
  ASSERT_EQ(e->request().headers_size(), 2);  // x-request-id and accept
}

// Role metadata values map to roles; absent means full; others are refused.
TEST(StreamRoleTest, ParsesRoleMetadata) {
  EXPECT_EQ(*ParseStreamRole(""), StreamRole::kFull);
  EXPECT_EQ(*ParseStreamRole("route"), StreamRole::kRoute);
  EXPECT_EQ(*ParseStreamRole("observe"), StreamRole::kObserve);
  EXPECT_EQ(*ParseStreamRole("attempt"), StreamRole::kAttempt);
  EXPECT_THAT(ParseStreamRole("watch"),
              StatusIs(absl::StatusCode::kInvalidArgument, "unknown role \"watch\""));
}

// Raising the weight only adds users to the candidate (monotone), and the
// share matches the weight.
TEST(RouterTest, AssignmentIsStickyAndMonotone) {
  rollout::Router router("salt", 100);
  std::vector<bool> at1, at5;
  for (int i = 0; i < 20000; ++i) {
    at1.push_back(router.Assign("user-" + std::to_string(i)) == understudy::v1::ARM_CANDIDATE);
  }
  router.SetWeightBasisPoints(500);
  int n1 = 0, n5 = 0;
  for (int i = 0; i < 20000; ++i) {
    bool c = router.Assign("user-" + std::to_string(i)) == understudy::v1::ARM_CANDIDATE;
    if (at1[i]) {
      EXPECT_TRUE(c) << "user-" << i << " left the candidate when the weight rose";
    }
    n1 += at1[i];
    n5 += c;
  }
  EXPECT_NEAR(n1 / 20000.0, 0.01, 0.003);
  EXPECT_NEAR(n5 / 20000.0, 0.05, 0.006);
  EXPECT_EQ(rollout::StickyBucket("salt", "user-7"), rollout::StickyBucket("salt", "user-7"));
  EXPECT_EQ(router.Assign(""), understudy::v1::ARM_PRODUCTION);
  router.SetWeightBasisPoints(20000);
  EXPECT_EQ(router.WeightBasisPoints(), 10000);
}

// With a traffic scope, a request that is not a model call goes to
// production whatever the weight (the arm header is still set, so a
// client-sent one never routes), is counted once by reason on the
// recording stream, and yields no exchange.
TEST_F(StreamSessionTest, OutOfScopeRequestsStayOnProductionUnrecordedAndCounted) {
  options_.scope = std::make_shared<const TrafficScope>();
  router_.SetWeightBasisPoints(10000);
  auto route = NewSession(StreamRole::kRoute);
  auto replies = Send(*route, Headers(true, {{":method", "GET"}, {":path", "/v1/models"},
                                             {"x-request-id", "r1"},
                                             {"x-understudy-arm", "candidate"}}, true));
  ASSERT_EQ(replies.size(), 1u);
  const auto& set = replies[0].request_headers().response().header_mutation().set_headers(0);
  EXPECT_EQ(set.header().key(), "x-understudy-arm");
  EXPECT_EQ(set.header().raw_value(), "production");
  EXPECT_EQ(stats_.route_candidate.Get() + stats_.route_production.Get(), 0u);
  EXPECT_EQ(stats_.out_of_scope_path.Get(), 0u);  // the route stream does not count

  auto observe = NewSession(StreamRole::kObserve);
  Send(*observe, Observed(Headers(true, {{":method", "GET"}, {":path", "/v1/models"},
                                         {"x-request-id", "r1"}}, true)));
  Send(*observe, Observed(Headers(false, {{":status", "200"}})));
  Send(*observe, Observed(Body(false, R"({"data":[]})", true)));
  EXPECT_FALSE(observe->TakeCompletedExchange().has_value());
  EXPECT_FALSE(observe->OnStreamEnd().has_value());
  EXPECT_EQ(stats_.out_of_scope_path.Get(), 1u);

  // The right path with the wrong method is out of scope by method.
  auto full = NewSession(StreamRole::kFull);
  Send(*full, Headers(true, {{":method", "GET"}, {":path", "/v1/chat/completions"},
                             {"x-request-id", "r2"}}, true));
  EXPECT_EQ(full->decided_arm(), understudy::v1::ARM_PRODUCTION);
  EXPECT_EQ(stats_.out_of_scope_method.Get(), 1u);
}

// A model call is routed by the weight and its exchange names its API.
TEST_F(StreamSessionTest, InScopeRequestsAreRoutedAndCarryTheirApi) {
  options_.scope = std::make_shared<const TrafficScope>();
  router_.SetWeightBasisPoints(10000);
  auto full = NewSession(StreamRole::kFull);
  Send(*full, Headers(true, {{":method", "POST"}, {":path", "/v1/embeddings"},
                             {"x-request-id", "r3"}}, true));
  EXPECT_EQ(full->decided_arm(), understudy::v1::ARM_CANDIDATE);
  Send(*full, Headers(false, {{":status", "200"}}));
  Send(*full, Body(false, "{}", true));
  std::optional<understudy::v1::Exchange> e = full->TakeCompletedExchange();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->api(), "openai_embeddings");
  EXPECT_EQ(stats_.route_candidate.Get(), 1u);
  EXPECT_EQ(stats_.out_of_scope_path.Get() + stats_.out_of_scope_method.Get(), 0u);
}


// The candidate arm with its own key and model: the client's credentials are
// removed and the candidate's set, the path rewritten (query kept), and only
// this request asks for its body, which is reshaped; production requests
// stay headers-only and untouched.
TEST_F(StreamSessionTest, CandidateArmIsShapedAndOnlyItBuffersItsBody) {
  auto candidate = std::make_shared<shadow::UpstreamConfig>();
  candidate->url = "http://cand";
  candidate->auth_header = "x-api-key";
  candidate->auth_scheme = "";
  candidate->api_key = "cand-secret";
  candidate->request.set_json = {{"model", "\"gpt-5-mini\""}};
  candidate->request.path = "/v2/chat";
  options_.candidate_upstream = candidate;

  router_.SetWeightBasisPoints(10000);
  auto s = NewSession(StreamRole::kRoute);
  auto r1 = Send(*s, WithModes(Headers(true, {{":method", "POST"}, {":path", "/v1/chat?x=1"},
                                              {"x-request-id", "r1"},
                                              {"authorization", "Bearer client"},
                                              {"content-length", "40"}}),
                               Mode::NONE, Mode::NONE));
  ASSERT_EQ(r1.size(), 1u);
  const ep::CommonResponse& common = r1[0].request_headers().response();
  EXPECT_TRUE(common.clear_route_cache());
  std::map<std::string, std::string> set;
  for (const auto& o : common.header_mutation().set_headers()) {
    EXPECT_TRUE(o.header().value().empty());
    set[o.header().key()] = o.header().raw_value();
  }
  EXPECT_EQ(set["x-understudy-arm"], "candidate");
  EXPECT_EQ(set["x-api-key"], "cand-secret");
  EXPECT_EQ(set[":path"], "/v2/chat?x=1");
  EXPECT_THAT(common.header_mutation().remove_headers(),
              ::testing::IsSupersetOf({"authorization", "api-key"}));
  ASSERT_TRUE(r1[0].has_mode_override());
  EXPECT_EQ(r1[0].mode_override().request_body_mode(), Mode::BUFFERED);
  EXPECT_EQ(r1[0].mode_override().response_body_mode(), Mode::NONE);

  auto r2 = Send(*s, Body(true, R"({"model":"gpt-4o","messages":[]})", true));
  ASSERT_EQ(r2.size(), 1u);
  const ep::CommonResponse& body = r2[0].request_body().response();
  EXPECT_EQ(body.body_mutation().body(), R"({"model":"gpt-5-mini","messages":[]})");
  EXPECT_THAT(body.header_mutation().remove_headers(), ::testing::ElementsAre("content-length"));
  EXPECT_EQ(stats_.requests_shaped.Get(), 1u);

  // Production has no shaping: the fast path, one header and no override.
  router_.SetWeightBasisPoints(0);
  auto p = NewSession(StreamRole::kRoute);
  auto r3 = Send(*p, Headers(true, {{":path", "/v1/chat"}, {"x-request-id", "r2"},
                                    {"authorization", "Bearer client"}}));
  ASSERT_EQ(r3.size(), 1u);
  EXPECT_FALSE(r3[0].has_mode_override());
  EXPECT_EQ(r3[0].request_headers().response().header_mutation().set_headers_size(), 1);
  EXPECT_EQ(r3[0].request_headers().response().header_mutation().remove_headers_size(), 0);
  EXPECT_EQ(stats_.requests_shaped.Get(), 1u);
}

// A body that is not a JSON object is forwarded unchanged and counted; a
// request without a body asks for none.
TEST_F(StreamSessionTest, UnshapeableBodyGoesUnchangedAndIsCounted) {
  auto candidate = std::make_shared<shadow::UpstreamConfig>();
  candidate->request.set_json = {{"model", "\"m2\""}};
  options_.candidate_upstream = candidate;
  router_.SetWeightBasisPoints(10000);
  auto s = NewSession(StreamRole::kRoute);
  auto r1 = Send(*s, WithModes(Headers(true, {{":path", "/v1/chat"}, {"x-request-id", "r1"}}),
                               Mode::NONE, Mode::NONE));
  ASSERT_TRUE(r1[0].has_mode_override());
  auto r2 = Send(*s, Body(true, "not json", true));
  ASSERT_EQ(r2.size(), 1u);
  EXPECT_FALSE(r2[0].request_body().response().has_body_mutation());
  EXPECT_EQ(stats_.shaping_failures.Get(), 1u);

  auto g = NewSession(StreamRole::kRoute);
  auto r3 = Send(*g, Headers(true, {{":method", "GET"}, {":path", "/v1/chat"},
                                    {"x-request-id", "r2"}}, /*eos=*/true));
  EXPECT_FALSE(r3[0].has_mode_override());
}


// A full stream with STREAMED bodies (Envoy before 1.31, no mode_override):
// the chunks are held back as empty chunks and the whole reshaped body goes
// with the last one; the exchange still records what the client sent.
TEST_F(StreamSessionTest, StreamedBodyIsHeldBackAndSentReshapedAtTheEnd) {
  auto candidate = std::make_shared<shadow::UpstreamConfig>();
  candidate->request.set_json = {{"model", "\"m2\""}};
  options_.candidate_upstream = candidate;
  router_.SetWeightBasisPoints(10000);
  auto s = NewSession(StreamRole::kFull);
  auto r1 = Send(*s, WithModes(Headers(true, {{":method", "POST"}, {":path", "/v1/chat"},
                                              {"x-request-id", "r1"}}),
                               Mode::STREAMED, Mode::STREAMED));
  EXPECT_FALSE(r1[0].has_mode_override());
  auto r2 = Send(*s, Body(true, R"({"model":"m1",)", false));
  ASSERT_EQ(r2.size(), 1u);
  EXPECT_TRUE(r2[0].request_body().response().body_mutation().has_body());
  EXPECT_EQ(r2[0].request_body().response().body_mutation().body(), "");
  auto r3 = Send(*s, Body(true, R"("n":1})", true));
  ASSERT_EQ(r3.size(), 1u);
  EXPECT_EQ(r3[0].request_body().response().body_mutation().body(), R"({"model":"m2","n":1})");
  EXPECT_EQ(r3[0].request_body().response().header_mutation().remove_headers_size(), 0);
  Send(*s, Headers(false, {{":status", "200"}}, true));
  std::optional<understudy::v1::Exchange> e = s->TakeCompletedExchange();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->request().body(), R"({"model":"m1","n":1})");
}

// Regression (fuzz/stream_session_fuzzer): a :status of ten digits was
// signed overflow while parsing; it is no status and reads as 0.
TEST_F(StreamSessionTest, OverlongStatusReadsAsZeroWithoutOverflow) {
  auto s = NewSession(StreamRole::kObserve);
  Send(*s, Observed(Headers(true, {{"x-request-id", "r"}}, true)));
  Send(*s, Observed(Headers(false, {{":status", "8888888888"}}, true)));
  auto e = s->TakeCompletedExchange();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->status_code(), 0);
}


// --- Fallback to production (sidecar/fallback.h) ---------------------------

class FallbackTest : public StreamSessionTest {
 protected:
  void SetUp() override {
    auto candidate = std::make_shared<shadow::UpstreamConfig>();
    candidate->url = "http://cand";
    candidate->auth_header = "x-api-key";
    candidate->auth_scheme = "";
    candidate->api_key = "cand-secret";
    candidate->request.set_json = {{"model", "\"gpt-5-mini\""}};
    candidate->request.path = "/v2/chat";
    options_.candidate_upstream = candidate;
    options_.fallback = std::make_shared<FallbackRegistry>(clock_);
    router_.SetWeightBasisPoints(10000);
  }

  static std::map<std::string, std::string> SetOf(const ep::HeaderMutation& m) {
    std::map<std::string, std::string> set;
    for (const auto& o : m.set_headers()) set[o.header().key()] = o.header().raw_value();
    return set;
  }

  // RouteCandidate plays the route stream of one candidate request whose
  // body is reshaped; returns nothing, the plan is in the registry.
  void RouteCandidate(const std::string& id) {
    auto route = NewSession(StreamRole::kRoute);
    Send(*route, WithModes(Headers(true, {{":method", "POST"}, {":path", "/v1/chat"},
                                          {"x-request-id", id},
                                          {"authorization", "Bearer client"},
                                          {"content-length", "33"}}),
                           Mode::NONE, Mode::NONE));
    auto body = Send(*route, Body(true, kClientBody, true));
    ASSERT_EQ(body.size(), 1u);
    ASSERT_NE(body[0].request_body().response().body_mutation().body(), kClientBody);
  }

  // Attempt plays an attempt stream's request headers.
  std::vector<ep::ProcessingResponse> Attempt(StreamSession& s, const std::string& id, int n) {
    return Send(*&s, WithModes(Headers(true, {{":method", "POST"}, {":path", "/v2/chat"},
                                              {"x-request-id", id},
                                              {"x-api-key", "cand-secret"},
                                              {"x-envoy-attempt-count", std::to_string(n)}}),
                               Mode::NONE, Mode::NONE));
  }

  static constexpr char kClientBody[] = R"({"model":"gpt-4o","messages":[]})";
};

// The whole path of a failed candidate attempt: the first attempt passes
// untouched and notes the candidate's 503; the retry gets the client's
// request back (its key, path, content-length and body, no candidate key);
// the observe stream records the fallback with the candidate's status.
TEST_F(FallbackTest, RetryIsRestoredToTheClientsRequestAndRecorded) {
  RouteCandidate("f1");

  auto first = NewSession(StreamRole::kAttempt);
  auto a1 = Attempt(*first, "f1", 1);
  ASSERT_EQ(a1.size(), 1u);
  EXPECT_FALSE(a1[0].request_headers().response().has_header_mutation());
  EXPECT_FALSE(a1[0].has_mode_override());
  Send(*first, Headers(false, {{":status", "503"}}, true));

  auto retry = NewSession(StreamRole::kAttempt);
  auto a2 = Attempt(*retry, "f1", 2);
  ASSERT_EQ(a2.size(), 1u);
  const ep::HeaderMutation& m = a2[0].request_headers().response().header_mutation();
  std::map<std::string, std::string> set = SetOf(m);
  EXPECT_EQ(set["authorization"], "Bearer client");
  EXPECT_EQ(set[":path"], "/v1/chat");
  EXPECT_EQ(set["content-length"], "33");
  EXPECT_EQ(set["x-understudy-arm"], "production");  // echoed to the client
  EXPECT_THAT(m.remove_headers(), ::testing::Contains("x-api-key"));
  for (const auto& [k, v] : set) EXPECT_NE(v, "cand-secret") << k;
  ASSERT_TRUE(a2[0].has_mode_override());
  EXPECT_EQ(a2[0].mode_override().request_body_mode(), Mode::BUFFERED);
  auto b2 = Send(*retry, Body(true, R"({"model":"gpt-5-mini","messages":[]})", true));
  ASSERT_EQ(b2.size(), 1u);
  EXPECT_EQ(b2[0].request_body().response().body_mutation().body(), kClientBody);
  EXPECT_EQ(stats_.fallbacks_restored.Get(), 1u);

  auto observe = NewSession(StreamRole::kObserve);
  Send(*observe, Observed(Headers(true, {{":path", "/v1/chat"}, {"x-request-id", "f1"},
                                         {"x-understudy-arm", "candidate"}},
                                  true)));
  Send(*observe, Observed(Headers(false, {{":status", "200"}}, true)));
  std::optional<understudy::v1::Exchange> e = observe->TakeCompletedExchange();
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->arm(), understudy::v1::ARM_CANDIDATE);
  ASSERT_TRUE(e->has_fallback());
  EXPECT_EQ(e->fallback().candidate_status(), 503);
  EXPECT_EQ(e->status_code(), 200);
}

// A candidate request whose answer was fine is not marked.
TEST_F(FallbackTest, NoRetryNoFallbackMark) {
  RouteCandidate("f2");
  EXPECT_EQ(options_.fallback->size(), 1u);
  auto observe = NewSession(StreamRole::kObserve);
  Send(*observe, Observed(Headers(true, {{":path", "/v1/chat"}, {"x-request-id", "f2"}}, true)));
  Send(*observe, Observed(Headers(false, {{":status", "200"}}, true)));
  std::optional<understudy::v1::Exchange> e = observe->TakeCompletedExchange();
  ASSERT_TRUE(e.has_value());
  EXPECT_FALSE(e->has_fallback());
  EXPECT_EQ(options_.fallback->size(), 0u);  // the answer is out: the plan is dropped
}

// A retry this sidecar has no plan for still carries the candidate's key
// and shape: it is refused (502) rather than sent to production.
TEST_F(FallbackTest, RetryWithoutAPlanIsRefused) {
  auto retry = NewSession(StreamRole::kAttempt);
  auto a = Attempt(*retry, "unknown", 2);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_TRUE(a[0].has_immediate_response());
  EXPECT_EQ(a[0].immediate_response().status().code(), 502);
  EXPECT_THAT(a[0].immediate_response().body(), ::testing::HasSubstr("FALLBACK_UNAVAILABLE"));
  EXPECT_EQ(stats_.fallbacks_no_plan.Get(), 1u);
}

// routing.fallback: false passes the candidate's own failure to the client.
TEST_F(FallbackTest, FallbackOffAnswersWithTheCandidatesFailure) {
  options_.fallback_enabled = false;
  RouteCandidate("f3");
  auto first = NewSession(StreamRole::kAttempt);
  Attempt(*first, "f3", 1);
  Send(*first, Headers(false, {{":status", "429"}}, true));
  auto retry = NewSession(StreamRole::kAttempt);
  auto a = Attempt(*retry, "f3", 2);
  ASSERT_EQ(a.size(), 1u);
  ASSERT_TRUE(a[0].has_immediate_response());
  EXPECT_EQ(a[0].immediate_response().status().code(), 429);
  EXPECT_THAT(a[0].immediate_response().body(), ::testing::HasSubstr("routing.fallback"));
  EXPECT_EQ(stats_.fallbacks_off.Get(), 1u);
  EXPECT_FALSE(options_.fallback->FellBack("f3").has_value());
}

TEST(FallbackRegistryTest, EvictsByCountAgeAndBodyBytes) {
  ManualClock clock;
  FallbackRegistry reg(clock, /*capacity=*/2, absl::Minutes(1), /*max_body_bytes=*/10);
  reg.Plan("a", {});
  reg.Plan("b", {});
  reg.Plan("c", {});  // over capacity: a goes
  EXPECT_FALSE(reg.Begin("a").has_value());
  EXPECT_TRUE(reg.Begin("b").has_value());
  EXPECT_TRUE(reg.FellBack("b").has_value());
  EXPECT_FALSE(reg.FellBack("c").has_value());
  clock.Advance(absl::Minutes(2));
  EXPECT_FALSE(reg.Begin("c").has_value());  // too old
  FallbackPlan big;
  big.body = std::string(8, 'x');
  reg.Plan("d", big);
  reg.Plan("e", big);  // 16 bytes held: d goes
  EXPECT_FALSE(reg.Begin("d").has_value());
  ASSERT_TRUE(reg.Begin("e").has_value());
  EXPECT_EQ(*reg.Begin("e")->body, big.body);  // a further retry restores again
  // An id that comes back after eviction is not evicted by its old place.
  reg.Plan("a", {});
  EXPECT_TRUE(reg.Begin("a").has_value());
  EXPECT_LE(reg.size(), 2u);
}

// Once the answer reaches the downstream filters no retry can follow: a
// request that did not fall back is forgotten at once (memory follows the
// requests in flight, not the last ten minutes of traffic); one that did
// keeps its status but not the client's headers and body.
TEST(FallbackRegistryTest, DoneForgetsWhatNoRetryCanNeed) {
  ManualClock clock;
  FallbackRegistry reg(clock);
  FallbackPlan plan;
  plan.body = "client body";
  plan.headers.emplace_back("authorization", "Bearer client-key");
  reg.Plan("served", plan);
  reg.Plan("retried", plan);
  reg.NoteCandidateStatus("retried", 503);
  ASSERT_TRUE(reg.Begin("retried").has_value());
  reg.Done("served");
  reg.Done("retried");
  reg.Done("unknown");
  EXPECT_EQ(reg.size(), 1u);
  EXPECT_FALSE(reg.FellBack("served").has_value());
  EXPECT_FALSE(reg.Begin("served").has_value());
  ASSERT_TRUE(reg.FellBack("retried").has_value());
  EXPECT_EQ(reg.FellBack("retried")->candidate_status, 503);
  EXPECT_FALSE(reg.Begin("retried").has_value());  // the plan is gone
}

}  // namespace
}  // namespace understudy::sidecar
