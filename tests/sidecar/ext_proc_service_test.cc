// The real gRPC ext_proc service on 127.0.0.1:0, driven by the
// Envoy-faithful driver with real HTTP upstreams, in every set-up and mode.
#include "sidecar/ext_proc_service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "sidecar/feedback.h"
#include "tests/common/test_util.h"
#include "tools/envoy_driver/envoy_driver.h"
#include "tools/envoy_driver/extproc_stream.h"
#include "tests/support/recording_sink.h"
#include "tests/support/test_upstream.h"

namespace understudy::sidecar {
namespace {

namespace ep = envoy::service::ext_proc::v3;
namespace ed = envoy_driver;
using Mode = envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;

using ::understudy::testing::RecordingSink;

class ExtProcServiceTest : public ::testing::Test {
 protected:
  void StartServer(size_t sink_capacity = 1 << 20) {
    sink_ = std::make_unique<RecordingSink>(sink_capacity);
    service_ = std::make_unique<ExtProcService>(options_, router_, *sink_, RealClock::Default(),
                                                stats_);
    ExtProcServerOptions server_options;
    server_options.listen = "127.0.0.1:0";
    auto server = ExtProcServer::Start(server_options, *service_);
    ASSERT_OK(server);
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
  }
  void SetUp() override { StartServer(); }

  ed::EnvoyDriver Driver(ed::FilterChain chain) {
    return ed::EnvoyDriver(channel_, std::move(chain),
                           {{"production", production_.get()}, {"candidate", candidate_.get()}});
  }
  static ed::HttpRequest ChatRequest(bool stream, const std::string& user = "") {
    ed::HttpRequest r;
    if (!user.empty()) r.headers.emplace_back("x-user-id", user);
    r.headers.emplace_back("authorization", "Bearer sk-test-not-stored");
    std::string body = std::string("{\"model\":\"gpt\",\"stream\":") + (stream ? "true" : "false") +
                       ",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    r.body_chunks = {body.substr(0, 10), body.substr(10)};
    return r;
  }

  SessionOptions options_;
  rollout::Router router_{"", 0};
  ExtProcStats stats_;
  ed::TestUpstream production_http_{"production"};
  ed::TestUpstream candidate_http_{"candidate"};
  std::unique_ptr<ed::Upstream> production_ = ed::NewCurlUpstream(production_http_.url());
  std::unique_ptr<ed::Upstream> candidate_ = ed::NewCurlUpstream(candidate_http_.url());
  std::unique_ptr<RecordingSink> sink_;
  std::unique_ptr<ExtProcService> service_;
  std::unique_ptr<ExtProcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

// Two-filter set-up at 100%: the route stream sends the request to the
// candidate cluster, the observe stream is never answered, and exactly one
// exchange (from the observe stream) carries the streamed SSE answer.
TEST_F(ExtProcServiceTest, TwoFilterSetupRoutesToCandidateAndRecordsOneExchange) {
  router_.SetWeightBasisPoints(10000);
  ed::EnvoyDriver driver = Driver(ed::FilterChain::TwoFilter());
  auto r = driver.Send(ChatRequest(/*stream=*/true, "alice"));
  ASSERT_OK(r);
  EXPECT_THAT(r->violations, ::testing::IsEmpty());
  EXPECT_EQ(r->cluster, "candidate");
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->body, ::testing::HasSubstr("data: [DONE]"));
  EXPECT_EQ(candidate_http_.requests(), 1);
  EXPECT_EQ(production_http_.requests(), 0);
  EXPECT_EQ(r->streams_opened, 2);

  auto exchanges = sink_->WaitFor(1);
  ASSERT_EQ(exchanges.size(), 1u);
  const auto& e = exchanges[0];
  EXPECT_EQ(e.request_id(), r->request_id);
  EXPECT_EQ(e.arm(), understudy::v1::ARM_CANDIDATE);
  EXPECT_EQ(e.response().body(), r->body);
  EXPECT_EQ(e.request().body(), ChatRequest(true).body_chunks[0] + ChatRequest(true).body_chunks[1]);
  EXPECT_GE(e.first_body_byte_offset_micros(), e.response_headers_offset_micros());
  EXPECT_FALSE(e.incomplete());
  EXPECT_EQ(e.SerializeAsString().find("sk-test-not-stored"), std::string::npos);
  EXPECT_EQ(stats_.spurious_messages.Get(), 0u);
  EXPECT_GT(stats_.observability_messages.Get(), 0u);
}

// At 0% everything stays on production.
TEST_F(ExtProcServiceTest, ZeroWeightKeepsEveryoneOnProduction) {
  ed::EnvoyDriver driver = Driver(ed::FilterChain::TwoFilter());
  for (int i = 0; i < 5; ++i) {
    auto r = driver.Send(ChatRequest(false, "user-" + std::to_string(i)));
    ASSERT_OK(r);
    EXPECT_THAT(r->violations, ::testing::IsEmpty());
    EXPECT_EQ(r->cluster, "production");
    EXPECT_THAT(r->body, ::testing::HasSubstr(production_http_.Answer()));
  }
  EXPECT_EQ(stats_.route_production.Get(), 5u);
}

// The single blocking filter (Envoy before 1.31) in every body mode: every
// message answered with the right arm, the client gets the upstream's bytes,
// and the exchange is recorded.
TEST_F(ExtProcServiceTest, SingleFilterWorksInEveryBodyMode) {
  router_.SetWeightBasisPoints(10000);
  const Mode::BodySendMode modes[] = {Mode::NONE, Mode::STREAMED, Mode::BUFFERED,
                                      Mode::BUFFERED_PARTIAL, Mode::FULL_DUPLEX_STREAMED};
  size_t expected_exchanges = 0;
  for (Mode::BodySendMode mode : modes) {
    for (bool stream : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "mode " << Mode::BodySendMode_Name(mode)
                                        << " stream " << stream);
      ed::EnvoyDriver driver = Driver(ed::FilterChain::SingleFilter(mode));
      auto r = driver.Send(ChatRequest(stream, "bob"));
      ASSERT_OK(r);
      EXPECT_THAT(r->violations, ::testing::IsEmpty());
      EXPECT_EQ(r->cluster, "candidate");
      EXPECT_EQ(r->status, 200);
      if (stream) {
        EXPECT_THAT(r->body, ::testing::HasSubstr("data: [DONE]"));
      } else {
        EXPECT_THAT(r->body, ::testing::HasSubstr(candidate_http_.Answer()));
      }
      ++expected_exchanges;
      auto exchanges = sink_->WaitFor(expected_exchanges);
      ASSERT_EQ(exchanges.size(), expected_exchanges);
      EXPECT_EQ(exchanges.back().arm(), understudy::v1::ARM_CANDIDATE);
      if (mode != Mode::NONE) {
        EXPECT_FALSE(exchanges.back().response().body().empty());
      }
    }
  }
  EXPECT_EQ(stats_.spurious_messages.Get(), 0u);
}

// Trailers in STREAMED mode (gRPC-style upstreams) are answered too.
TEST_F(ExtProcServiceTest, RequestTrailersAreAnswered) {
  ed::EnvoyDriver driver = Driver(ed::FilterChain::SingleFilter(Mode::STREAMED, true));
  ed::HttpRequest req = ChatRequest(false);
  req.trailers = {{"x-checksum", "abc"}};
  auto r = driver.Send(req);
  ASSERT_OK(r);
  EXPECT_THAT(r->violations, ::testing::IsEmpty());
  EXPECT_EQ(r->status, 200);
}

// A full pipeline queue drops the exchange and counts it; the stream and
// the client's request are unaffected.
TEST_F(ExtProcServiceTest, FullQueueDropsAndCountsWithoutBlocking) {
  server_.reset();
  StartServer(/*sink_capacity=*/0);
  ed::EnvoyDriver driver = Driver(ed::FilterChain::TwoFilter());
  for (int i = 0; i < 3; ++i) {
    auto r = driver.Send(ChatRequest(false));
    ASSERT_OK(r);
    EXPECT_THAT(r->violations, ::testing::IsEmpty());
    EXPECT_EQ(r->status, 200);
  }
  for (int i = 0; i < 100 && stats_.exchanges_dropped.Get() < 3; ++i) {
    absl::SleepFor(absl::Milliseconds(10));  // streams end asynchronously
  }
  EXPECT_EQ(stats_.exchanges_dropped.Get(), 3u);
  EXPECT_EQ(stats_.exchanges_submitted.Get(), 0u);
}

// Garbage bytes are not a ProcessingRequest: the stream ends with
// INVALID_ARGUMENT and the malformed counter moves; the server lives on.
TEST_F(ExtProcServiceTest, MalformedProtobufEndsStreamWithInvalidArgument) {
  ed::ExtProcStream stream(channel_, {});
  stream.SendRaw(std::string("\xff\xff\xff\xff\x0f", 5));
  grpc::Status end = stream.Close();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(end.error_message(), ::testing::HasSubstr("malformed ProcessingRequest"));
  EXPECT_EQ(stats_.malformed_messages.Get(), 1u);
  auto r = Driver(ed::FilterChain::TwoFilter()).Send(ChatRequest(false));
  ASSERT_OK(r);
  EXPECT_THAT(r->violations, ::testing::IsEmpty());
}

// Two request_headers on one stream: the first is answered, then the stream
// is closed with FAILED_PRECONDITION and counted as spurious.
TEST_F(ExtProcServiceTest, OutOfOrderStreamIsClosedWithFailedPrecondition) {
  ed::ExtProcStream stream(channel_, {{"x-understudy-role", "route"}});
  ep::ProcessingRequest headers;
  headers.mutable_request_headers()->mutable_headers()->add_headers()->set_key("x-request-id");
  stream.Send(headers);
  stream.Send(headers);
  auto first = stream.Next(absl::Seconds(5));
  ASSERT_OK(first);
  EXPECT_TRUE(first->has_request_headers());
  grpc::Status end = stream.Close();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_THAT(end.error_message(), ::testing::HasSubstr("request_headers out of order"));
  EXPECT_EQ(stats_.spurious_messages.Get(), 1u);
}

// An unknown role in the initial metadata is refused at once.
TEST_F(ExtProcServiceTest, UnknownRoleIsRefused) {
  ed::ExtProcStream stream(channel_, {{"x-understudy-role", "spy"}});
  grpc::Status end = stream.Close();
  EXPECT_EQ(end.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(end.error_message(), ::testing::HasSubstr("unknown role"));
}

// Envoy resets the stream right after the last reply it needs: that is the
// normal end, and a full stream cancelled mid-response still yields an
// exchange marked incomplete.
TEST_F(ExtProcServiceTest, EnvoyCancelIsANormalEndAndKeepsAnIncompleteExchange) {
  ed::ExtProcStream stream(channel_, {});
  ep::ProcessingRequest headers;
  auto* h = headers.mutable_request_headers()->mutable_headers()->add_headers();
  h->set_key("x-request-id");
  h->set_raw_value("cancelled-1");
  headers.mutable_request_headers()->set_end_of_stream(true);
  stream.Send(headers);
  ASSERT_OK(stream.Next(absl::Seconds(5)));
  stream.Cancel();
  auto exchanges = sink_->WaitFor(1);
  ASSERT_EQ(exchanges.size(), 1u);
  EXPECT_EQ(exchanges[0].request_id(), "cancelled-1");
  EXPECT_TRUE(exchanges[0].incomplete());
  EXPECT_EQ(stats_.malformed_messages.Get(), 0u);
  EXPECT_EQ(stats_.spurious_messages.Get(), 0u);
}

// Drain lets an open stream finish within the bound and then returns.
TEST_F(ExtProcServiceTest, DrainWaitsForOpenStreamsThenStops) {
  ed::ExtProcStream stream(channel_, {{"x-understudy-role", "route"}});
  ep::ProcessingRequest headers;
  headers.mutable_request_headers()->mutable_headers()->add_headers()->set_key("x-request-id");
  stream.Send(headers);
  ASSERT_OK(stream.Next(absl::Seconds(5)));
  std::thread closer([&] {
    absl::SleepFor(absl::Milliseconds(50));
    EXPECT_TRUE(stream.Close().ok());
  });
  const absl::Time start = absl::Now();
  server_->Drain(absl::Seconds(5));
  closer.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(5));
  EXPECT_EQ(stats_.streams_active.Get(), 0);
}

}  // namespace
}  // namespace understudy::sidecar

namespace understudy::sidecar {
namespace {

// Feedback through Envoy: the sidecar answers POSTs to the feedback path
// itself (204), in the two-filter set-up (by asking for the body with a
// mode_override) and with a single streamed or buffered filter; no model
// is called and no exchange is recorded.
class FeedbackPathTest : public ExtProcServiceTest,
                         public ::testing::WithParamInterface<std::string> {
 protected:
  void SetUp() override {
    options_.feedback_path = "/understudy/feedback";
    options_.sticky_header = "x-user-id";
    options_.on_feedback = [this](std::string_view body, std::string_view client,
                                  std::string_view token) -> absl::Status {
      absl::MutexLock lock(&mu_);
      bodies_.emplace_back(body);
      clients_.emplace_back(client);
      if (body.find("\"score\"") == std::string_view::npos) {
        return absl::InvalidArgumentError("feedback.score: required");
      }
      if (options_.feedback_signer != nullptr) {  // as the engine checks it
        absl::StatusOr<v1::Feedback> f = ParseFeedbackJson(body);
        if (!f.ok()) return f.status();
        RETURN_IF_ERROR(options_.feedback_signer->Verify(f->request_id(), token));
      }
      // What the engine answers for a second score, a client over its
      // limit, and a store that cannot take it.
      if (body.find("dup") != std::string_view::npos) {
        return absl::AlreadyExistsError("request_id: \"dup\" already has a score");
      }
      if (body.find("flood") != std::string_view::npos) {
        return absl::ResourceExhaustedError("feedback: more than 60 scores per minute");
      }
      if (body.find("disk") != std::string_view::npos) {
        return absl::UnavailableError("storage: disk full");
      }
      return absl::OkStatus();
    };
    StartServer();
  }
  ed::FilterChain Chain() const {
    if (GetParam() == "two-filter") return ed::FilterChain::TwoFilter();
    if (GetParam() == "buffered") return ed::FilterChain::SingleFilter(Mode::BUFFERED);
    return ed::FilterChain::SingleFilter(Mode::STREAMED);
  }
  static ed::HttpRequest Feedback(const std::string& body, const std::string& method = "POST") {
    ed::HttpRequest r;
    r.method = method;
    r.path = "/understudy/feedback?src=app";
    if (!body.empty()) r.body_chunks = {body.substr(0, body.size() / 2), body.substr(body.size() / 2)};
    return r;
  }
  std::vector<std::string> Bodies() {
    absl::MutexLock lock(&mu_);
    return bodies_;
  }
  std::vector<std::string> Clients() {
    absl::MutexLock lock(&mu_);
    return clients_;
  }
  absl::Mutex mu_;
  std::vector<std::string> bodies_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> clients_ ABSL_GUARDED_BY(mu_);
};

TEST_P(FeedbackPathTest, AnsweredWith204AndNeverRouted) {
  router_.SetWeightBasisPoints(10000);
  ed::EnvoyDriver driver = Driver(Chain());
  const std::string body = R"({"request_id":"abc","score":1})";
  auto r = driver.Send(Feedback(body));
  ASSERT_OK(r);
  EXPECT_THAT(r->violations, ::testing::IsEmpty());
  EXPECT_EQ(r->status, 204);
  EXPECT_TRUE(r->immediate_response);
  EXPECT_THAT(Bodies(), ::testing::ElementsAre(body));
  EXPECT_EQ(production_http_.requests() + candidate_http_.requests(), 0);
  EXPECT_EQ(stats_.route_candidate.Get() + stats_.route_production.Get(), 0u);
  // An ordinary request afterwards is routed and recorded as usual.
  auto ok = driver.Send(ChatRequest(false, "bob"));
  ASSERT_OK(ok);
  EXPECT_EQ(ok->status, 200);
  auto exchanges = sink_->WaitFor(1);
  ASSERT_EQ(exchanges.size(), 1u);
  EXPECT_EQ(exchanges[0].path(), "/v1/chat/completions");
}

TEST_P(FeedbackPathTest, BadFeedbackGetsAClearError) {
  ed::EnvoyDriver driver = Driver(Chain());
  auto bad = driver.Send(Feedback(R"({"request_id":"abc"})"));
  ASSERT_OK(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(bad->body, ::testing::HasSubstr("feedback.score: required"));
  auto get = driver.Send(Feedback("", "GET"));
  ASSERT_OK(get);
  EXPECT_EQ(get->status, 405);
  auto empty = driver.Send(Feedback(""));
  ASSERT_OK(empty);
  EXPECT_EQ(empty->status, 400);
  EXPECT_THAT(empty->body, ::testing::HasSubstr("JSON body"));
  EXPECT_EQ(production_http_.requests() + candidate_http_.requests(), 0);
}

// A second score is 409, a client over its limit 429, a store that cannot
// take it 503 — each with the JSON error — and the handler hears which
// client (the sticky header's value) sent it.
TEST_P(FeedbackPathTest, RefusalsGetTheirOwnStatusAndTheClientIsPassed) {
  ed::EnvoyDriver driver = Driver(Chain());
  struct Case {
    std::string body;
    int status;
    std::string code;
  };
  for (const Case& c : std::vector<Case>{
           {R"({"request_id":"dup","score":1})", 409, "ALREADY_EXISTS"},
           {R"({"request_id":"flood","score":1})", 429, "RESOURCE_EXHAUSTED"},
           {R"({"request_id":"disk","score":1})", 503, "UNAVAILABLE"},
       }) {
    SCOPED_TRACE(c.body);
    ed::HttpRequest req = Feedback(c.body);
    req.headers.emplace_back("x-user-id", "carol");
    auto r = driver.Send(req);
    ASSERT_OK(r);
    EXPECT_TRUE(r->immediate_response);
    EXPECT_EQ(r->status, c.status) << r->body;
    EXPECT_THAT(r->body, ::testing::HasSubstr(absl::StrCat("\"code\":\"", c.code, "\"")));
  }
  auto anonymous = driver.Send(Feedback(R"({"request_id":"a","score":1})"));
  ASSERT_OK(anonymous);
  EXPECT_EQ(anonymous->status, 204);
  EXPECT_THAT(Clients(), ::testing::ElementsAre("carol", "carol", "carol", ""));
  EXPECT_EQ(production_http_.requests() + candidate_http_.requests(), 0);
}

INSTANTIATE_TEST_SUITE_P(SetUps, FeedbackPathTest,
                         ::testing::Values("two-filter", "streamed", "buffered"));

// Signed feedback tokens: every in-scope answer carries one (the route
// filter asks for the answer's headers; a full filter has them), JSON and
// SSE alike, on either arm; the model never sees it and it is not recorded.
// Feedback with the token of its request is taken; without, or with
// another request's, it is 403.
class SignedFeedbackTest : public FeedbackPathTest {
 protected:
  void SetUp() override {
    options_.feedback_signer = std::make_shared<const FeedbackSigner>(
        std::string(32, 'q'), absl::Hours(1), RealClock::Default());
    FeedbackPathTest::SetUp();
  }
  static std::string Token(const ed::DriverResult& r) {
    for (const auto& [k, v] : r.response_headers) {
      if (k == kFeedbackTokenHeader) return v;
    }
    return "";
  }
};

TEST_P(SignedFeedbackTest, AnswersCarryATokenThatOnlyRatesTheirOwnRequest) {
  router_.SetWeightBasisPoints(5000);
  ed::EnvoyDriver driver = Driver(Chain());
  std::vector<ed::DriverResult> answers;
  for (int i = 0; i < 6; ++i) {
    auto r = driver.Send(ChatRequest(/*stream=*/i % 2 == 1, absl::StrCat("user-", i)));
    ASSERT_OK(r);
    EXPECT_THAT(r->violations, ::testing::IsEmpty());
    EXPECT_EQ(r->status, 200);
    const std::string token = Token(*r);
    ASSERT_FALSE(token.empty()) << "answer " << i << " has no feedback token";
    EXPECT_OK(options_.feedback_signer->Verify(r->request_id, token));
    for (const auto& [k, v] : r->upstream_headers) EXPECT_NE(k, kFeedbackTokenHeader);
    answers.push_back(*std::move(r));
  }
  EXPECT_GT(production_http_.requests(), 0);
  EXPECT_GT(candidate_http_.requests(), 0);
  for (const v1::Exchange& e : sink_->WaitFor(answers.size())) {
    for (const auto& h : e.response().headers()) EXPECT_NE(h.key(), kFeedbackTokenHeader);
  }

  auto rate = [&](const std::string& request_id, const std::string& token) {
    ed::HttpRequest req = Feedback(absl::StrCat(R"({"request_id":")", request_id,
                                                R"(","score":1})"));
    if (!token.empty()) req.headers.emplace_back(std::string(kFeedbackTokenHeader), token);
    auto r = driver.Send(req);
    EXPECT_OK(r);
    return r.ok() ? *std::move(r) : ed::DriverResult{};
  };
  const ed::DriverResult none = rate(answers[0].request_id, "");
  EXPECT_EQ(none.status, 403);
  EXPECT_THAT(none.body, ::testing::HasSubstr("PERMISSION_DENIED"));
  const ed::DriverResult other = rate(answers[0].request_id, Token(answers[1]));
  EXPECT_EQ(other.status, 403);
  EXPECT_THAT(other.body, ::testing::HasSubstr("not issued for this request id"));
  EXPECT_EQ(rate(answers[0].request_id, Token(answers[0])).status, 204);
  EXPECT_EQ(rate(answers[1].request_id, Token(answers[1])).status, 204);
  EXPECT_EQ(production_http_.requests() + candidate_http_.requests(),
            static_cast<int>(answers.size()));
}

INSTANTIATE_TEST_SUITE_P(SetUps, SignedFeedbackTest,
                         ::testing::Values("two-filter", "streamed", "buffered"));

}  // namespace
}  // namespace understudy::sidecar

namespace understudy::sidecar {
namespace {

// The Unix-socket listener (examples/envoy/envoy-unix.yaml): the same
// service, reached through a pipe address, with TCP off.
TEST(ExtProcUnixSocketTest, ServesTheTwoFilterSetUpOverAUnixSocket) {
  char dir[] = "/tmp/extproc-unix-XXXXXX";
  ASSERT_NE(mkdtemp(dir), nullptr);
  const std::string path = std::string(dir) + "/understudy.sock";
  rollout::Router router("", 10000);
  ExtProcStats stats;
  struct Sink final : ExchangeSink {
    bool Submit(understudy::v1::Exchange&&) override { return true; }
  } sink;
  ExtProcService service(SessionOptions{}, router, sink, RealClock::Default(), stats);
  ExtProcServerOptions options;
  options.listen = "";
  options.unix_socket = path;
  auto server = ExtProcServer::Start(options, service);
  ASSERT_OK(server);
  EXPECT_EQ((*server)->port(), 0);
  ed::TestUpstream candidate_http("candidate");
  std::unique_ptr<ed::Upstream> candidate = ed::NewCurlUpstream(candidate_http.url());
  ed::EnvoyDriver driver(grpc::CreateChannel("unix:" + path, grpc::InsecureChannelCredentials()),
                         ed::FilterChain::TwoFilter(), {{"candidate", candidate.get()}});
  ed::HttpRequest request;
  request.body_chunks = {R"({"model":"m","messages":[]})"};
  auto r = driver.Send(request);
  ASSERT_OK(r);
  EXPECT_THAT(r->violations, ::testing::IsEmpty());
  EXPECT_EQ(r->cluster, "candidate");
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(stats.route_candidate.Get(), 1u);
  (*server)->Drain(absl::Seconds(1));
  std::remove(path.c_str());
  rmdir(dir);
}

}  // namespace
}  // namespace understudy::sidecar
