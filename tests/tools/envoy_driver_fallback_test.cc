// The driver's model of fallback to production (docs/extproc.md §9): a
// candidate request is a series of upstream attempts, each with its own
// upstream ext_proc stream, retried once on production when the candidate
// fails before the client saw a byte. Played against a scripted ext_proc
// server (every message recorded per stream) and real HTTP upstreams that
// answer with any status, or a port nobody listens on.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/synchronization/mutex.h"
#include "envoy/service/ext_proc/v3/external_processor.grpc.pb.h"
#include "tests/common/test_util.h"
#include "tools/envoy_driver/envoy_driver.h"

namespace understudy::envoy_driver {
namespace {

namespace ep = envoy::service::ext_proc::v3;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;
using Mode = ProcessingMode;

std::string HeaderIn(const envoy::config::core::v3::HeaderMap& map, const std::string& key) {
  for (const auto& h : map.headers()) {
    if (h.key() == key) return h.raw_value();
  }
  return "";
}

bool HasHeader(const envoy::config::core::v3::HeaderMap& map, const std::string& key) {
  for (const auto& h : map.headers()) {
    if (h.key() == key) return true;
  }
  return false;
}

std::string HeaderIn(const Headers& headers, const std::string& key) {
  for (const auto& [k, v] : headers) {
    if (k == key) return v;
  }
  return "";
}

void SetRaw(ep::HeaderMutation* mutation, const std::string& key, const std::string& value) {
  auto* h = mutation->add_set_headers()->mutable_header();
  h->set_key(key);
  h->set_raw_value(value);
}

// One recorded ext_proc stream: its role metadata, the attempt it belongs
// to (x-envoy-attempt-count of its request headers, 0 if none) and every
// message Envoy sent on it.
struct StreamRecord {
  std::string role;
  int attempt = 0;
  std::vector<ep::ProcessingRequest> messages;

  const ep::ProcessingRequest* First(ep::ProcessingRequest::RequestCase arm) const {
    for (const auto& m : messages) {
      if (m.request_case() == arm) return &m;
    }
    return nullptr;
  }
  int Count(ep::ProcessingRequest::RequestCase arm) const {
    return static_cast<int>(std::count_if(messages.begin(), messages.end(),
                                          [&](const auto& m) { return m.request_case() == arm; }));
  }
};

// ScriptedProcessor is an ext_proc server: it answers every message that
// wants a reply with the matching arm (never in observability mode), routes
// `route` streams to the arm in route_arm(), and lets a test edit the reply
// to any message through a script.
class ScriptedProcessor final : public ep::ExternalProcessor::Service {
 public:
  // Script edits the default reply; `stream` is the stream so far.
  using Script = std::function<void(const StreamRecord& stream, const ep::ProcessingRequest& m,
                                    ep::ProcessingResponse* reply)>;

  void SetScript(Script script) {
    absl::MutexLock lock(&mu_);
    script_ = std::move(script);
  }
  void RouteTo(std::string arm) {
    absl::MutexLock lock(&mu_);
    route_arm_ = std::move(arm);
  }
  std::vector<StreamRecord> Streams(const std::string& role) const {
    absl::MutexLock lock(&mu_);
    std::vector<StreamRecord> out;
    for (const auto& s : streams_) {
      if (s->role == role) out.push_back(*s);
    }
    return out;
  }

  grpc::Status Process(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<ep::ProcessingResponse, ep::ProcessingRequest>* stream) override {
    auto record = std::make_shared<StreamRecord>();
    auto it = context->client_metadata().find("x-understudy-role");
    if (it != context->client_metadata().end()) {
      record->role = std::string(it->second.data(), it->second.size());
    }
    {
      absl::MutexLock lock(&mu_);
      streams_.push_back(record);
    }
    ep::ProcessingRequest m;
    while (stream->Read(&m)) {
      ep::ProcessingResponse reply;
      Script script;
      StreamRecord so_far;
      std::string arm;
      {
        absl::MutexLock lock(&mu_);
        if (m.has_request_headers()) {
          int attempt = 0;
          if (absl::SimpleAtoi(HeaderIn(m.request_headers().headers(), "x-envoy-attempt-count"),
                               &attempt)) {
            record->attempt = attempt;
          }
        }
        record->messages.push_back(m);
        script = script_;
        so_far = *record;
        arm = route_arm_;
      }
      if (m.observability_mode()) continue;  // never answered
      switch (m.request_case()) {
        case ep::ProcessingRequest::kRequestHeaders:
          reply.mutable_request_headers();
          if (so_far.role == "route") {
            auto* common = reply.mutable_request_headers()->mutable_response();
            SetRaw(common->mutable_header_mutation(), "x-understudy-arm", arm);
            common->set_clear_route_cache(true);
          }
          break;
        case ep::ProcessingRequest::kResponseHeaders:
          reply.mutable_response_headers();
          break;
        case ep::ProcessingRequest::kRequestBody:
          reply.mutable_request_body();
          break;
        case ep::ProcessingRequest::kResponseBody:
          reply.mutable_response_body();
          break;
        case ep::ProcessingRequest::kRequestTrailers:
          reply.mutable_request_trailers();
          break;
        case ep::ProcessingRequest::kResponseTrailers:
          reply.mutable_response_trailers();
          break;
        default:
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request arm");
      }
      if (script) script(so_far, m, &reply);
      if (!stream->Write(reply)) break;
    }
    return grpc::Status::OK;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::shared_ptr<StreamRecord>> streams_ ABSL_GUARDED_BY(mu_);
  Script script_ ABSL_GUARDED_BY(mu_);
  std::string route_arm_ ABSL_GUARDED_BY(mu_) = "candidate";
};

// FakeModel is an HTTP upstream on 127.0.0.1:0 that answers every POST with
// the status set (and a body naming itself) and records what it got.
class FakeModel {
 public:
  struct Seen {
    Headers headers;
    std::string body;
  };

  FakeModel(std::string name, int status) : name_(std::move(name)), status_(status) {
    server_.Post(".*", [this](const httplib::Request& req, httplib::Response& res) {
      Seen seen;
      for (const auto& [k, v] : req.headers) seen.headers.emplace_back(absl::AsciiStrToLower(k), v);
      seen.body = req.body;
      {
        absl::MutexLock lock(&mu_);
        seen_.push_back(std::move(seen));
      }
      res.status = status_.load();
      res.set_content(Answer(), "application/json");
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeModel() {
    while (!server_.is_running()) std::this_thread::yield();
    server_.stop();
    thread_.join();
  }

  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string Answer() const { return "{\"answer\":\"from " + name_ + "\"}"; }
  std::vector<Seen> seen() const {
    absl::MutexLock lock(&mu_);
    return seen_;
  }
  int requests() const { return static_cast<int>(seen().size()); }

 private:
  std::string name_;
  std::atomic<int> status_;
  httplib::Server server_;
  std::thread thread_;
  int port_ = 0;
  mutable absl::Mutex mu_;
  std::vector<Seen> seen_ ABSL_GUARDED_BY(mu_);
};

// ClosedPort holds a bound, never-listening TCP port: connecting to it is
// refused, and no one else can take it while this lives.
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    socklen_t len = sizeof(addr);
    if (fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
  }
  ~ClosedPort() {
    if (fd_ >= 0) close(fd_);
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  int port_ = 0;
};

constexpr int kRefused = 0;  // candidate "status": the connection is refused

class EnvoyDriverFallbackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(&processor_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(port),
                                   grpc::InsecureChannelCredentials());
  }
  void TearDown() override { server_->Shutdown(); }

  // UseCandidate makes the candidate answer `status`, or refuse connections.
  void UseCandidate(int status) {
    if (status == kRefused) {
      candidate_ = NewCurlUpstream(closed_port_.url(), absl::Seconds(5));
    } else {
      candidate_model_ = std::make_unique<FakeModel>("candidate", status);
      candidate_ = NewCurlUpstream(candidate_model_->url(), absl::Seconds(5));
    }
  }

  EnvoyDriver Driver(FilterChain chain = FilterChain::WithFallback()) {
    return EnvoyDriver(channel_, std::move(chain),
                       {{"production", production_.get()}, {"candidate", candidate_.get()}});
  }

  static HttpRequest Chat(std::string body = "{\"model\":\"m\",\"messages\":[]}") {
    HttpRequest r;
    r.headers.emplace_back("content-type", "application/json");
    r.body_chunks = {body.substr(0, body.size() / 2), body.substr(body.size() / 2)};
    return r;
  }

  ScriptedProcessor processor_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  FakeModel production_model_{"production", 200};
  std::unique_ptr<Upstream> production_ =
      NewCurlUpstream(production_model_.url(), absl::Seconds(5));
  ClosedPort closed_port_;
  std::unique_ptr<FakeModel> candidate_model_;
  std::unique_ptr<Upstream> candidate_;
};

// A candidate that answers 5xx or 429, or cannot be reached, is tried
// exactly once; the retry goes to production and the client gets
// production's answer.
class FailingCandidateTest : public EnvoyDriverFallbackTest,
                             public ::testing::WithParamInterface<int> {};

TEST_P(FailingCandidateTest, FallsBackToProductionOnce) {
  UseCandidate(GetParam());
  auto r = Driver().Send(Chat());
  ASSERT_OK(r);
  EXPECT_THAT(r->violations, IsEmpty());
  EXPECT_THAT(r->attempt_clusters, ElementsAre("candidate", "production"));
  EXPECT_THAT(r->attempt_statuses, ElementsAre(GetParam(), 200));
  EXPECT_EQ(r->cluster, "production");
  EXPECT_EQ(r->arm_header, "candidate");
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, production_model_.Answer());
  EXPECT_EQ(production_model_.requests(), 1);
  if (candidate_model_) {
    EXPECT_EQ(candidate_model_->requests(), 1);
  }
  // route + observe, and one attempt stream per attempt.
  EXPECT_EQ(r->streams_opened, 4);
  EXPECT_EQ(processor_.Streams("attempt").size(), 2u);
}

INSTANTIATE_TEST_SUITE_P(Statuses, FailingCandidateTest, ::testing::Values(500, 503, 429, kRefused),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return info.param == kRefused ? std::string("ConnectionRefused")
                                                         : "Status" + std::to_string(info.param);
                         });

// A candidate answer that is a success or a client error (other than 429)
// is the answer: no retry.
class AnsweringCandidateTest : public EnvoyDriverFallbackTest,
                               public ::testing::WithParamInterface<int> {};

TEST_P(AnsweringCandidateTest, IsNotRetried) {
  UseCandidate(GetParam());
  auto r = Driver().Send(Chat());
  ASSERT_OK(r);
  EXPECT_THAT(r->violations, IsEmpty());
  EXPECT_THAT(r->attempt_clusters, ElementsAre("candidate"));
  EXPECT_THAT(r->attempt_statuses, ElementsAre(GetParam()));
  EXPECT_EQ(r->cluster, "candidate");
  EXPECT_EQ(r->status, GetParam());
  EXPECT_EQ(r->body, candidate_model_->Answer());
  EXPECT_EQ(production_model_.requests(), 0);
  EXPECT_EQ(processor_.Streams("attempt").size(), 1u);
}

INSTANTIATE_TEST_SUITE_P(Statuses, AnsweringCandidateTest, ::testing::Values(200, 400, 404, 409),
                         [](const ::testing::TestParamInfo<int>& info) {
                           return "Status" + std::to_string(info.param);
                         });

// Each attempt has its own stream with the attempt role, and the router's
// x-envoy-attempt-count (1, then 2) reaches both the upstream filter and the
// upstream.
TEST_F(EnvoyDriverFallbackTest, AttemptCountReachesEachAttemptStream) {
  UseCandidate(503);
  auto r = Driver().Send(Chat());
  ASSERT_OK(r);
  std::vector<StreamRecord> attempts = processor_.Streams("attempt");
  ASSERT_EQ(attempts.size(), 2u);
  for (int i = 0; i < 2; ++i) {
    SCOPED_TRACE(i);
    EXPECT_EQ(attempts[i].attempt, i + 1);
    const ep::ProcessingRequest* headers =
        attempts[i].First(ep::ProcessingRequest::kRequestHeaders);
    ASSERT_NE(headers, nullptr);
    EXPECT_EQ(HeaderIn(headers->request_headers().headers(), "x-envoy-attempt-count"),
              std::to_string(i + 1));
    // The filter saw this attempt's response headers, then the stream ended.
    const ep::ProcessingRequest* response =
        attempts[i].First(ep::ProcessingRequest::kResponseHeaders);
    ASSERT_NE(response, nullptr);
    EXPECT_EQ(HeaderIn(response->response_headers().headers(), ":status"), i == 0 ? "503" : "200");
  }
  EXPECT_EQ(HeaderIn(candidate_model_->seen().at(0).headers, "x-envoy-attempt-count"), "1");
  EXPECT_EQ(HeaderIn(production_model_.seen().at(0).headers, "x-envoy-attempt-count"), "2");
  // The downstream filters ran before the router: they never see it.
  for (const StreamRecord& s : processor_.Streams("route")) {
    EXPECT_FALSE(
        HasHeader(s.First(ep::ProcessingRequest::kRequestHeaders)->request_headers().headers(),
                  "x-envoy-attempt-count"));
  }
}

// Envoy's request header map is shared by all attempts: a header the
// upstream filter set for the candidate in attempt 1 is still there in
// attempt 2 (and reaches production) unless attempt 2's filter removes it.
TEST_F(EnvoyDriverFallbackTest, AttemptOneHeaderEditSurvivesIntoAttemptTwo) {
  UseCandidate(503);
  processor_.SetScript(
      [](const StreamRecord& s, const ep::ProcessingRequest& m, ep::ProcessingResponse* reply) {
        if (s.role == "attempt" && s.attempt == 1 && m.has_request_headers()) {
          SetRaw(reply->mutable_request_headers()->mutable_response()->mutable_header_mutation(),
                 "authorization", "Bearer candidate-key");
        }
      });
  auto r = Driver().Send(Chat());
  ASSERT_OK(r);
  std::vector<StreamRecord> attempts = processor_.Streams("attempt");
  ASSERT_EQ(attempts.size(), 2u);
  EXPECT_FALSE(HasHeader(
      attempts[0].First(ep::ProcessingRequest::kRequestHeaders)->request_headers().headers(),
      "authorization"));
  EXPECT_EQ(
      HeaderIn(
          attempts[1].First(ep::ProcessingRequest::kRequestHeaders)->request_headers().headers(),
          "authorization"),
      "Bearer candidate-key");
  EXPECT_EQ(HeaderIn(candidate_model_->seen().at(0).headers, "authorization"),
            "Bearer candidate-key");
  EXPECT_EQ(HeaderIn(production_model_.seen().at(0).headers, "authorization"),
            "Bearer candidate-key");
  EXPECT_EQ(HeaderIn(r->upstream_headers, "authorization"), "Bearer candidate-key");
}

// The same, with attempt 2's filter undoing the edit: production gets the
// request without it.
TEST_F(EnvoyDriverFallbackTest, AttemptTwoCanUndoAttemptOnesHeaderEdit) {
  UseCandidate(503);
  processor_.SetScript(
      [](const StreamRecord& s, const ep::ProcessingRequest& m, ep::ProcessingResponse* reply) {
        if (s.role != "attempt" || !m.has_request_headers()) return;
        auto* mutation =
            reply->mutable_request_headers()->mutable_response()->mutable_header_mutation();
        if (s.attempt == 1) SetRaw(mutation, "authorization", "Bearer candidate-key");
        if (s.attempt == 2) mutation->add_remove_headers("authorization");
      });
  auto r = Driver().Send(Chat());
  ASSERT_OK(r);
  EXPECT_EQ(HeaderIn(candidate_model_->seen().at(0).headers, "authorization"),
            "Bearer candidate-key");
  EXPECT_EQ(HeaderIn(production_model_.seen().at(0).headers, "authorization"), "");
  EXPECT_EQ(HeaderIn(r->upstream_headers, "authorization"), "");
}

// The router re-sends its own copy of the body on each attempt: a body the
// upstream filter rewrote for the candidate does not reach production.
TEST_F(EnvoyDriverFallbackTest, AttemptOneBodyEditDoesNotCarryOver) {
  UseCandidate(503);
  const std::string original = "{\"model\":\"production-model\",\"messages\":[]}";
  const std::string rewritten = "{\"model\":\"candidate-model\",\"messages\":[]}";
  processor_.SetScript(
      [&](const StreamRecord& s, const ep::ProcessingRequest& m, ep::ProcessingResponse* reply) {
        if (s.role != "attempt") return;
        if (m.has_request_headers()) {
          // Ask for the body, as the sidecar does to reshape it (§5.1).
          Mode* mode = reply->mutable_mode_override();
          mode->set_request_header_mode(Mode::SEND);
          mode->set_response_header_mode(Mode::SEND);
          mode->set_request_body_mode(Mode::BUFFERED);
          mode->set_response_body_mode(Mode::NONE);
          mode->set_request_trailer_mode(Mode::SKIP);
          mode->set_response_trailer_mode(Mode::SKIP);
        }
        if (m.has_request_body() && s.attempt == 1) {
          reply->mutable_request_body()->mutable_response()->mutable_body_mutation()->set_body(
              rewritten);
        }
      });
  auto r = Driver().Send(Chat(original));
  ASSERT_OK(r);
  EXPECT_THAT(r->violations, IsEmpty());
  EXPECT_EQ(candidate_model_->seen().at(0).body, rewritten);
  EXPECT_EQ(production_model_.seen().at(0).body, original);
  std::vector<StreamRecord> attempts = processor_.Streams("attempt");
  ASSERT_EQ(attempts.size(), 2u);
  const ep::ProcessingRequest* second = attempts[1].First(ep::ProcessingRequest::kRequestBody);
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->request_body().body(), original);
}

// A request body larger than the router's retry buffer cannot be re-sent:
// the candidate's failure is the answer.
TEST_F(EnvoyDriverFallbackTest, BodyOverTheRetryBufferIsNotRetried) {
  UseCandidate(503);
  FilterChain chain = FilterChain::WithFallback();
  chain.candidate_fallback.retry_buffer_limit = 16;
  auto r = Driver(chain).Send(Chat(std::string(64, 'x')));
  ASSERT_OK(r);
  EXPECT_THAT(r->attempt_clusters, ElementsAre("candidate"));
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(production_model_.requests(), 0);
}

// Only the candidate route's cluster has the upstream filter: a request the
// sidecar sends to production never opens an attempt stream.
TEST_F(EnvoyDriverFallbackTest, ProductionRequestOpensNoAttemptStream) {
  UseCandidate(503);
  processor_.RouteTo("production");
  auto r = Driver().Send(Chat());
  ASSERT_OK(r);
  EXPECT_THAT(r->violations, IsEmpty());
  EXPECT_THAT(r->attempt_clusters, ElementsAre("production"));
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->streams_opened, 2);
  EXPECT_THAT(processor_.Streams("attempt"), IsEmpty());
  EXPECT_EQ(candidate_model_->requests(), 0);
}

// The downstream observe filter sees the final attempt's response only:
// one set of response headers (production's 200) and production's body.
TEST_F(EnvoyDriverFallbackTest, ObserveFilterSeesOnlyTheFinalResponse) {
  UseCandidate(503);
  auto r = Driver().Send(Chat());
  ASSERT_OK(r);
  std::vector<StreamRecord> observe = processor_.Streams("observe");
  ASSERT_EQ(observe.size(), 1u);
  ASSERT_EQ(observe[0].Count(ep::ProcessingRequest::kResponseHeaders), 1);
  EXPECT_EQ(
      HeaderIn(
          observe[0].First(ep::ProcessingRequest::kResponseHeaders)->response_headers().headers(),
          ":status"),
      "200");
  std::string body;
  for (const auto& m : observe[0].messages) {
    if (m.has_response_body()) body += m.response_body().body();
  }
  EXPECT_EQ(body, production_model_.Answer());
  EXPECT_THAT(body, Not(HasSubstr("candidate")));
}

// An upstream filter that answers the attempt itself (immediate_response)
// gives that attempt its response; it is not retried (docs/extproc.md §9).
TEST_F(EnvoyDriverFallbackTest, UpstreamImmediateResponseIsTheAttemptsAnswer) {
  UseCandidate(200);
  processor_.SetScript(
      [](const StreamRecord& s, const ep::ProcessingRequest& m, ep::ProcessingResponse* reply) {
        if (s.role == "attempt" && m.has_request_headers()) {
          reply->mutable_immediate_response()->mutable_status()->set_code(
              static_cast<envoy::type::v3::StatusCode>(503));
          reply->mutable_immediate_response()->set_body("attempt refused");
        }
      });
  auto r = Driver().Send(Chat());
  ASSERT_OK(r);
  EXPECT_THAT(r->attempt_clusters, ElementsAre("candidate"));
  EXPECT_THAT(r->attempt_statuses, ElementsAre(503));
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->body, "attempt refused");
  EXPECT_EQ(candidate_model_->requests() + production_model_.requests(), 0);
}

// The driver models an attempt's response on its headers only: a chain
// whose upstream filter asks for response bodies is refused before any
// stream or upstream call.
TEST_F(EnvoyDriverFallbackTest, UpstreamResponseBodyModesAreRefused) {
  UseCandidate(200);
  FilterChain chain = FilterChain::WithFallback();
  chain.candidate_upstream_filters[0].processing_mode.set_response_body_mode(Mode::STREAMED);
  auto r = Driver(chain).Send(Chat());
  ASSERT_OK(r);
  EXPECT_THAT(r->violations, ElementsAre(HasSubstr("understudy-attempt: upstream filter with "
                                                   "response_body_mode STREAMED")));
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->streams_opened, 0);
  EXPECT_EQ(candidate_model_->requests() + production_model_.requests(), 0);
}

// Without fallback the same chain keeps its single call, and TwoFilter()
// (no upstream filters) reports one attempt.
TEST_F(EnvoyDriverFallbackTest, TwoFilterChainMakesOneAttempt) {
  UseCandidate(503);
  auto r = Driver(FilterChain::TwoFilter()).Send(Chat());
  ASSERT_OK(r);
  EXPECT_THAT(r->attempt_clusters, ElementsAre("candidate"));
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(HeaderIn(candidate_model_->seen().at(0).headers, "x-envoy-attempt-count"), "");
  EXPECT_THAT(processor_.Streams("attempt"), IsEmpty());
}

}  // namespace
}  // namespace understudy::envoy_driver
