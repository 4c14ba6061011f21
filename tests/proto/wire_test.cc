// Checks the ext_proc proto subset against protobuf wire bytes assembled by
// hand from the upstream field numbers (docs/extproc.md §2), so a wrong field
// number fails here rather than in a production rollout.
#include <gtest/gtest.h>

#include <string>

#include "common/clock.h"
#include "envoy/service/ext_proc/v3/external_processor.pb.h"
#include "rollout/router.h"
#include "sidecar/stream_session.h"

namespace understudy {
namespace {

namespace ep = envoy::service::ext_proc::v3;

std::string Varint(uint64_t v) {
  std::string out;
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
  return out;
}
// Len encodes a length-delimited field (wire type 2).
std::string Len(int field, const std::string& payload) {
  return Varint((field << 3) | 2) + Varint(payload.size()) + payload;
}
// Bool encodes a varint field (wire type 0) set to true.
std::string True(int field) { return Varint(field << 3) + Varint(1); }

// HttpHeaders(2) > HeaderMap(1) > HeaderValue(1){key=1, raw_value=3},
// end_of_stream=3, observability_mode=10, protocol_config=11.
TEST(WireTest, DecodesHandAssembledRequestHeaders) {
  const std::string header_value = Len(1, "x-user-id") + Len(3, "u-42");
  const std::string header_map = Len(1, header_value);
  const std::string http_headers = Len(1, header_map) + True(3);
  const std::string protocol_config = Varint(1 << 3) + Varint(1) +   // request_body_mode STREAMED
                                      Varint(2 << 3) + Varint(4);    // response: FULL_DUPLEX
  const std::string wire =
      Len(2, http_headers) + True(10) + Len(11, protocol_config);

  ep::ProcessingRequest request;
  ASSERT_TRUE(request.ParseFromString(wire));
  ASSERT_EQ(request.request_case(), ep::ProcessingRequest::kRequestHeaders);
  ASSERT_EQ(request.request_headers().headers().headers_size(), 1);
  EXPECT_EQ(request.request_headers().headers().headers(0).key(), "x-user-id");
  EXPECT_EQ(request.request_headers().headers().headers(0).raw_value(), "u-42");
  EXPECT_TRUE(request.request_headers().headers().headers(0).value().empty());
  EXPECT_TRUE(request.request_headers().end_of_stream());
  EXPECT_TRUE(request.observability_mode());
  EXPECT_EQ(request.protocol_config().request_body_mode(),
            envoy::extensions::filters::http::ext_proc::v3::ProcessingMode::STREAMED);
  EXPECT_EQ(request.protocol_config().response_body_mode(),
            envoy::extensions::filters::http::ext_proc::v3::ProcessingMode::FULL_DUPLEX_STREAMED);
}

// Every request arm sits at its upstream number: request_body=4,
// response_headers=3, response_body=5, request_trailers=6, response_trailers=7.
TEST(WireTest, DecodesEveryRequestArm) {
  struct Case {
    int field;
    ep::ProcessingRequest::RequestCase expected;
  } cases[] = {{2, ep::ProcessingRequest::kRequestHeaders},
               {3, ep::ProcessingRequest::kResponseHeaders},
               {4, ep::ProcessingRequest::kRequestBody},
               {5, ep::ProcessingRequest::kResponseBody},
               {6, ep::ProcessingRequest::kRequestTrailers},
               {7, ep::ProcessingRequest::kResponseTrailers}};
  for (const Case& c : cases) {
    ep::ProcessingRequest request;
    ASSERT_TRUE(request.ParseFromString(Len(c.field, "")));
    EXPECT_EQ(request.request_case(), c.expected) << "field " << c.field;
  }
  // HttpBody: body=1, end_of_stream=2.
  ep::ProcessingRequest body;
  ASSERT_TRUE(body.ParseFromString(Len(5, Len(1, "data: {}\n\n") + True(2))));
  EXPECT_EQ(body.response_body().body(), "data: {}\n\n");
  EXPECT_TRUE(body.response_body().end_of_stream());
}

// The route reply must be exactly ProcessingResponse.request_headers(1) >
// HeadersResponse.response(1) > CommonResponse{header_mutation(2) >
// set_headers(1) > HeaderValueOption.header(1) > {key=1, raw_value=3},
// clear_route_cache(5)=true} — no `value`, no `append`.
TEST(WireTest, RouteReplyEncodesToUpstreamBytes) {
  sidecar::ExtProcStats stats;
  rollout::Router router("", rollout::kBucketCount);  // 100%: always candidate
  ManualClock clock;
  sidecar::SessionOptions options;
  sidecar::StreamSession session(sidecar::StreamRole::kRoute, options, router, clock, stats);
  ep::ProcessingRequest request;
  auto* h = request.mutable_request_headers()->mutable_headers()->add_headers();
  h->set_key("x-request-id");
  h->set_raw_value("r-1");
  std::vector<ep::ProcessingResponse> replies;
  ASSERT_TRUE(session.OnMessage(request, &replies).ok());
  ASSERT_EQ(replies.size(), 1u);

  const std::string header_value = Len(1, "x-understudy-arm") + Len(3, "candidate");
  const std::string option = Len(1, header_value);
  const std::string mutation = Len(1, option);
  const std::string common = Len(2, mutation) + True(5);
  const std::string expected = Len(1, Len(1, common));
  std::string actual;
  ASSERT_TRUE(replies[0].SerializeToString(&actual));
  EXPECT_EQ(actual, expected);
}

// ImmediateResponse(7){status(1)>code(1)=204}, trailers arm numbers, and
// StreamedBodyResponse inside BodyMutation(3) > streamed_response(3).
TEST(WireTest, EncodesResponseArmsAtUpstreamNumbers) {
  ep::ProcessingResponse immediate;
  immediate.mutable_immediate_response()->mutable_status()->set_code(envoy::type::v3::NoContent);
  std::string bytes;
  ASSERT_TRUE(immediate.SerializeToString(&bytes));
  EXPECT_EQ(bytes, Len(7, Len(1, Varint(1 << 3) + Varint(204))));

  ep::ProcessingResponse streamed;
  auto* s = streamed.mutable_response_body()->mutable_response()->mutable_body_mutation()
                ->mutable_streamed_response();
  s->set_body("abc");
  s->set_end_of_stream(true);
  ASSERT_TRUE(streamed.SerializeToString(&bytes));
  EXPECT_EQ(bytes, Len(4, Len(1, Len(3, Len(3, Len(1, "abc") + True(2))))));

  ep::ProcessingResponse trailers;
  trailers.mutable_response_trailers();
  ASSERT_TRUE(trailers.SerializeToString(&bytes));
  EXPECT_EQ(bytes, Len(6, ""));

  ep::ProcessingResponse more_time;
  more_time.mutable_override_message_timeout()->set_seconds(2);
  ASSERT_TRUE(more_time.SerializeToString(&bytes));
  EXPECT_EQ(bytes, Len(10, Varint(1 << 3) + Varint(2)));
}

}  // namespace
}  // namespace understudy
