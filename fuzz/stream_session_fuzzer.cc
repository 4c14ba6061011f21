// Fuzzes the ext_proc stream state machine (sidecar/stream_session.h) with
// sequences of decoded ProcessingRequests, as the reactor feeds it: any
// order, any processing mode, observability on or off, bodies of any size,
// feedback posts, the candidate's shaping and its fallback plans (shared
// by the streams of one process, so a route stream's plan may meet a later
// attempt stream). The session must never crash, must answer each message
// with at most one reply, and must yield its exchange at most once.
//
// Input (FuzzedDataProvider): the role and options first, then messages
// until the data runs out.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "rollout/router.h"
#include "sidecar/feedback.h"
#include "sidecar/stream_session.h"

namespace {

namespace ep = envoy::service::ext_proc::v3;
namespace us = understudy::sidecar;
using Mode = envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;

constexpr const char* kHeaderNames[] = {":method", ":path", ":status", "x-request-id", "x-user-id",
                                        "content-type", "content-encoding", "content-length",
                                        "authorization", "traceparent", "x-understudy-arm",
                                        "grpc-status", "x-api-key", "x-envoy-attempt-count",
                                        "x-understudy-feedback-token"};
constexpr const char* kHeaderValues[] = {"POST", "GET", "/v1/chat/completions", "/v1/messages",
                                         "/understudy/feedback", "/v1/responses", "/v1/embeddings",
                                         "200", "500", "application/json", "text/event-stream",
                                         "gzip", "br", "candidate", "r1", "u1", "0", "1", "2", "12"};

Mode::BodySendMode PickMode(FuzzedDataProvider& in) {
  constexpr Mode::BodySendMode kModes[] = {Mode::NONE, Mode::STREAMED, Mode::BUFFERED,
                                           Mode::BUFFERED_PARTIAL, Mode::FULL_DUPLEX_STREAMED};
  return in.PickValueInArray(kModes);
}

void AddHeaderMap(FuzzedDataProvider& in, envoy::config::core::v3::HeaderMap* map) {
  const int n = in.ConsumeIntegralInRange(0, 6);
  for (int i = 0; i < n; ++i) {
    auto* hv = map->add_headers();
    hv->set_key(in.ConsumeBool() ? std::string(in.PickValueInArray(kHeaderNames))
                                 : in.ConsumeRandomLengthString(16));
    const std::string value = in.ConsumeBool() ? std::string(in.PickValueInArray(kHeaderValues))
                                               : in.ConsumeRandomLengthString(32);
    if (in.ConsumeBool()) hv->set_raw_value(value); else hv->set_value(value);
  }
}

void AddHeaders(FuzzedDataProvider& in, ep::HttpHeaders* h) { AddHeaderMap(in, h->mutable_headers()); }

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider in(data, size);
  static understudy::ManualClock clock;
  us::SessionOptions options;
  options.sticky_header = "x-user-id";
  options.max_body_bytes = in.ConsumeIntegralInRange<int64_t>(0, 256);
  options.request_body_mode = PickMode(in);
  options.response_body_mode = PickMode(in);
  if (in.ConsumeBool()) {
    options.feedback_path = "/understudy/feedback";
    options.feedback_max_body_bytes = 128;
    options.on_feedback = [](std::string_view body, std::string_view, std::string_view) {
      return us::ParseFeedbackJson(body).status();
    };
  }
  // One registry for every input, as in a running sidecar; bounded.
  static auto* registry = new us::FallbackRegistry(clock, 64, absl::Minutes(1), 1 << 16);
  if (in.ConsumeBool()) {
    options.fallback = std::shared_ptr<us::FallbackRegistry>(registry, [](auto*) {});
    options.fallback_enabled = in.ConsumeBool();
  }
  if (in.ConsumeBool()) {
    auto candidate = std::make_shared<understudy::shadow::UpstreamConfig>();
    candidate->url = "http://cand";
    candidate->auth_header = "x-api-key";
    candidate->api_key = "k";
    candidate->request.set_json = {{"model", "\"m2\""}};
    if (in.ConsumeBool()) candidate->request.path = "/v2/chat";
    options.candidate_upstream = std::move(candidate);
  }
  // Signed feedback tokens: answers get one, feedback must bring it.
  static const auto* signer =
      new us::FeedbackSigner(std::string(32, 'f'), absl::Hours(1), clock);
  if (in.ConsumeBool()) {
    options.feedback_signer = std::shared_ptr<const us::FeedbackSigner>(signer, [](auto*) {});
    if (options.on_feedback) {
      options.on_feedback = [](std::string_view body, std::string_view, std::string_view token) {
        absl::StatusOr<understudy::v1::Feedback> f = us::ParseFeedbackJson(body);
        return f.ok() ? signer->Verify(f->request_id(), token) : f.status();
      };
    }
  }
  understudy::rollout::Router router("salt", in.ConsumeIntegralInRange<int32_t>(0, 10000));
  us::ExtProcStats stats;
  constexpr us::StreamRole kRoles[] = {us::StreamRole::kRoute, us::StreamRole::kObserve,
                                       us::StreamRole::kFull, us::StreamRole::kAttempt};
  us::StreamSession session(in.PickValueInArray(kRoles), options, router, clock, stats);

  int taken = 0;
  for (int step = 0; step < 32 && in.remaining_bytes() > 0; ++step) {
    ep::ProcessingRequest r;
    switch (in.ConsumeIntegralInRange(0, 6)) {
      case 0: AddHeaders(in, r.mutable_request_headers()); r.mutable_request_headers()->set_end_of_stream(in.ConsumeBool()); break;
      case 1: AddHeaders(in, r.mutable_response_headers()); r.mutable_response_headers()->set_end_of_stream(in.ConsumeBool()); break;
      case 2:
        r.mutable_request_body()->set_body(in.ConsumeRandomLengthString(300));
        r.mutable_request_body()->set_end_of_stream(in.ConsumeBool());
        break;
      case 3:
        r.mutable_response_body()->set_body(in.ConsumeRandomLengthString(300));
        r.mutable_response_body()->set_end_of_stream(in.ConsumeBool());
        break;
      case 4: r.mutable_request_trailers(); break;
      case 5: AddHeaderMap(in, r.mutable_response_trailers()->mutable_trailers()); break;
      case 6: break;  // no request part
    }
    if (in.ConsumeBool()) {
      r.mutable_protocol_config()->set_request_body_mode(PickMode(in));
      r.mutable_protocol_config()->set_response_body_mode(PickMode(in));
    }
    r.set_observability_mode(in.ConsumeBool());
    std::vector<ep::ProcessingResponse> replies;
    absl::Status s = session.OnMessage(r, &replies);
    if (replies.size() > 1) __builtin_trap();  // exactly one reply at most per message
    if (session.TakeCompletedExchange().has_value()) ++taken;
    if (!s.ok()) break;  // the reactor closes the stream
    clock.Advance(absl::Milliseconds(1));
  }
  if (session.OnStreamEnd().has_value()) ++taken;
  if (taken > 1) __builtin_trap();  // one exchange per stream
  return 0;
}
