// tests/shadow/upstream_client_test.cc: UpstreamClient over real HTTP
// against an in-test upstream (tests/shadow/test_server.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "shadow/shadow.h"
#include "tests/common/test_util.h"
#include "tests/shadow/test_server.h"

namespace understudy::shadow {
namespace {

using rollout::OutcomeClass;
using ::testing::HasSubstr;
using ::testing::Not;

std::string FakeKey(std::string_view tag) {
  return absl::StrCat("test-", std::string(tag), "-", std::string(24, 'q'), getpid());
}

// Results collects callbacks; Wait polls with a deadline.
class Results {
 public:
  UpstreamClient::Callback Callback() {
    return [this](UpstreamResult r) {
      absl::MutexLock lock(&mu_);
      results_.push_back(std::move(r));
    };
  }
  bool WaitFor(size_t n, absl::Duration timeout = absl::Seconds(30)) {
    absl::MutexLock lock(&mu_);
    auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return results_.size() >= n; };
    return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  }
  std::vector<UpstreamResult> Get() {
    absl::MutexLock lock(&mu_);
    return results_;
  }

 private:
  absl::Mutex mu_;
  std::vector<UpstreamResult> results_ ABSL_GUARDED_BY(mu_);
};

bool HasHeader(const v1::HttpMessage& m, std::string_view key) {
  for (const v1::Header& h : m.headers()) {
    if (h.key() == key) return true;
  }
  return false;
}

class UpstreamClientTest : public ::testing::Test {
 protected:
  UpstreamClientTest() {
    config_.production.url = server_.url();
    config_.production.api_key = FakeKey("prod");
    config_.candidate.url = server_.url();
    config_.candidate.api_key = FakeKey("cand");
    config_.candidate.auth_header = "x-api-key";
    config_.candidate.auth_scheme = "";
    config_.timeout = absl::Seconds(30);
  }

  UpstreamRequest Request(std::string path, v1::Arm target = v1::ARM_PRODUCTION,
                          std::string body = R"({"model":"m","messages":[]})") {
    UpstreamRequest r;
    r.request_id = "req-1";
    r.path = std::move(path);
    r.api = "openai_chat";  // as the traffic scope classified the live request
    r.body = std::move(body);
    r.target = target;
    return r;
  }

  std::unique_ptr<UpstreamClient> StartClient() {
    absl::StatusOr<std::unique_ptr<UpstreamClient>> c = UpstreamClient::Start(config_);
    EXPECT_OK(c);
    return c.ok() ? *std::move(c) : nullptr;
  }

  testing::TestServer server_;
  ShadowConfig config_;
  Results results_;
};

// A JSON answer is captured with its status, body, parsed answer and
// timings; the upstream gets the configured key and never the live one.
TEST_F(UpstreamClientTest, CapturesJsonAnswerAndSendsOnlyTheUpstreamsKey) {
  auto client = StartClient();
  ASSERT_NE(client, nullptr);
  const std::string live_key = FakeKey("live");
  UpstreamRequest r = Request("/v1/chat/completions");
  r.headers = {{"Authorization", "Bearer " + live_key},
               {"x-api-key", live_key},
               {"cookie", "session=" + live_key},
               {"content-length", "999"},
               {"x-trace", "abc"}};
  ASSERT_TRUE(client->TrySend(std::move(r), results_.Callback()));
  ASSERT_TRUE(results_.WaitFor(1));
  const UpstreamResult res = results_.Get()[0];

  EXPECT_EQ(res.outcome, OutcomeClass::kOk);
  EXPECT_FALSE(res.aborted);
  EXPECT_EQ(res.exchange.status_code(), 200);
  EXPECT_EQ(res.exchange.request_id(), "req-1");
  EXPECT_EQ(res.exchange.arm(), v1::ARM_PRODUCTION);
  EXPECT_EQ(res.exchange.source(), v1::SOURCE_SHADOW);
  EXPECT_EQ(res.exchange.path(), "/v1/chat/completions");
  EXPECT_TRUE(res.exchange.response().complete());
  EXPECT_FALSE(res.exchange.incomplete());
  ASSERT_TRUE(res.answer.has_value());
  EXPECT_EQ(res.answer->text, "hello");
  EXPECT_EQ(res.answer->usage.input_tokens, 1000);
  // Timings: headers, first body byte (TTFT) and end were all seen, in order.
  EXPECT_GE(res.exchange.response_headers_offset_micros(), 0);
  EXPECT_GE(res.exchange.first_body_byte_offset_micros(),
            res.exchange.response_headers_offset_micros());
  EXPECT_GE(res.exchange.end_offset_micros(), res.exchange.first_body_byte_offset_micros());
  EXPECT_GT(res.exchange.start_unix_micros(), 0);
  ASSERT_TRUE(res.Ttft().has_value());
  ASSERT_TRUE(res.Latency().has_value());

  // What the upstream received.
  std::vector<testing::ReceivedRequest> got = server_.Requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].Header("authorization"), "Bearer " + config_.production.api_key);
  bool found = true;
  got[0].Header("x-api-key", &found);
  EXPECT_FALSE(found);
  got[0].Header("cookie", &found);
  EXPECT_FALSE(found);
  EXPECT_EQ(got[0].Header("x-trace"), "abc");
  EXPECT_EQ(got[0].Header("content-type"), "application/json");
  EXPECT_EQ(got[0].body, R"({"model":"m","messages":[]})");

  // The record holds no credential at all.
  EXPECT_TRUE(HasHeader(res.exchange.request(), "x-trace"));
  EXPECT_FALSE(HasHeader(res.exchange.request(), "authorization"));
  EXPECT_FALSE(HasHeader(res.exchange.request(), "x-api-key"));
  EXPECT_FALSE(HasHeader(res.exchange.request(), "cookie"));
  const std::string serialized = res.exchange.SerializeAsString();
  EXPECT_THAT(serialized, Not(HasSubstr(config_.production.api_key)));
  EXPECT_THAT(serialized, Not(HasSubstr(live_key)));
}

// An upstream with auth_scheme "" gets the bare key in its own header.
TEST_F(UpstreamClientTest, SendsBareKeyInConfiguredHeader) {
  auto client = StartClient();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(
      client->TrySend(Request("/v1/chat/completions", v1::ARM_CANDIDATE), results_.Callback()));
  ASSERT_TRUE(results_.WaitFor(1));
  EXPECT_EQ(results_.Get()[0].outcome, OutcomeClass::kOk);
  std::vector<testing::ReceivedRequest> got = server_.Requests();
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].Header("x-api-key"), config_.candidate.api_key);
  bool found = true;
  got[0].Header("authorization", &found);
  EXPECT_FALSE(found);
  EXPECT_FALSE(HasHeader(results_.Get()[0].exchange.request(), "x-api-key"));
}

// A streaming request is sent as-is and its SSE answer captured whole.
TEST_F(UpstreamClientTest, CapturesSseStreamWhole) {
  auto client = StartClient();
  ASSERT_NE(client, nullptr);
  UpstreamRequest r =
      Request("/v1/chat/completions", v1::ARM_PRODUCTION, R"({"model":"m","stream":true})");
  r.stream = true;
  ASSERT_TRUE(client->TrySend(std::move(r), results_.Callback()));
  ASSERT_TRUE(results_.WaitFor(1));
  const UpstreamResult res = results_.Get()[0];
  EXPECT_EQ(res.outcome, OutcomeClass::kOk);
  ASSERT_TRUE(res.answer.has_value());
  EXPECT_EQ(res.answer->text, "Hello world");
  EXPECT_EQ(res.answer->format, compare::WireFormat::kOpenAISse);
  EXPECT_TRUE(res.answer->stream_ok);
  EXPECT_THAT(res.exchange.response().body(), HasSubstr("data: [DONE]"));
  EXPECT_GE(res.exchange.first_body_byte_offset_micros(), 0);
  EXPECT_LE(res.exchange.first_body_byte_offset_micros(), res.exchange.end_offset_micros());
  EXPECT_EQ(server_.Requests().at(0).body, R"({"model":"m","stream":true})");
}

// Bad answers map to outcome classes: 500, an unparseable 200, a stream
// without its terminator, a refused connection.
TEST_F(UpstreamClientTest, ClassifiesFailures) {
  auto client = StartClient();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->TrySend(Request("/error"), results_.Callback()));
  ASSERT_TRUE(results_.WaitFor(1));
  ASSERT_TRUE(client->TrySend(Request("/garbage"), results_.Callback()));
  ASSERT_TRUE(results_.WaitFor(2));
  ASSERT_TRUE(client->TrySend(Request("/broken-stream"), results_.Callback()));
  ASSERT_TRUE(results_.WaitFor(3));
  std::vector<UpstreamResult> got = results_.Get();
  EXPECT_EQ(got[0].outcome, OutcomeClass::kServerError);
  EXPECT_EQ(got[0].exchange.status_code(), 500);
  ASSERT_TRUE(got[0].answer.has_value());
  ASSERT_TRUE(got[0].answer->error.has_value());
  EXPECT_EQ(got[1].outcome, OutcomeClass::kInvalidBody);
  EXPECT_EQ(got[1].exchange.status_code(), 200);
  EXPECT_EQ(got[2].outcome, OutcomeClass::kInvalidBody);

  // A port nobody listens on: bind a listener, note its port, close it.
  int closed_port;
  {
    testing::TestServer gone;
    closed_port = gone.port();
  }
  ShadowConfig config = config_;
  config.production.url = absl::StrCat("http://127.0.0.1:", closed_port);
  absl::StatusOr<std::unique_ptr<UpstreamClient>> refused = UpstreamClient::Start(config);
  ASSERT_OK(refused);
  Results r2;
  ASSERT_TRUE((*refused)->TrySend(Request("/v1/chat/completions"), r2.Callback()));
  ASSERT_TRUE(r2.WaitFor(1));
  EXPECT_EQ(r2.Get()[0].outcome, OutcomeClass::kTransport);
  EXPECT_FALSE(r2.Get()[0].exchange.error().empty());
  EXPECT_TRUE(r2.Get()[0].exchange.incomplete());
  ShadowStats stats = client->Stats();
  EXPECT_EQ(stats.sent, 3);
  EXPECT_EQ(stats.completed, 3);
  EXPECT_EQ(stats.failed, 3);
}

// Hung upstream requests do not hold up others; they end with kTimeout.
TEST_F(UpstreamClientTest, HungRequestsTimeOutWhileOthersComplete) {
  config_.timeout = absl::Seconds(2);
  auto client = StartClient();
  ASSERT_NE(client, nullptr);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(client->TrySend(Request("/hang"), results_.Callback()));
  }
  ASSERT_TRUE(server_.WaitForHanging(3, absl::Seconds(30)));
  // Three requests hang; a fourth is still accepted and answered first.
  UpstreamRequest normal = Request("/v1/chat/completions");
  normal.request_id = "normal";
  ASSERT_TRUE(client->TrySend(std::move(normal), results_.Callback()));
  ASSERT_TRUE(results_.WaitFor(1));
  EXPECT_EQ(results_.Get()[0].exchange.request_id(), "normal");
  EXPECT_EQ(results_.Get()[0].outcome, OutcomeClass::kOk);

  ASSERT_TRUE(results_.WaitFor(4));
  std::vector<UpstreamResult> got = results_.Get();
  for (size_t i = 1; i < got.size(); ++i) {
    EXPECT_EQ(got[i].outcome, OutcomeClass::kTimeout);
    EXPECT_TRUE(got[i].exchange.incomplete());
    EXPECT_FALSE(got[i].aborted);
    EXPECT_FALSE(got[i].exchange.error().empty());
  }
  ASSERT_TRUE(client->WaitIdle(absl::Seconds(30)));
  ShadowStats stats = client->Stats();
  EXPECT_EQ(stats.completed, 4);
  EXPECT_EQ(stats.timed_out, 3);
  EXPECT_EQ(stats.failed, 3);
  EXPECT_EQ(stats.in_flight, 0);
}

// With the queue full TrySend refuses at once and counts the drop; the
// destructor aborts what is queued and in flight, calling every callback.
TEST_F(UpstreamClientTest, FullQueueRefusesAndShutdownAbortsEverything) {
  config_.max_concurrency = 1;
  config_.max_queue = 2;
  auto client = StartClient();
  ASSERT_NE(client, nullptr);
  ASSERT_TRUE(client->TrySend(Request("/hang"), results_.Callback()));
  ASSERT_TRUE(server_.WaitForHanging(1, absl::Seconds(30)));
  EXPECT_TRUE(client->TrySend(Request("/hang"), results_.Callback()));
  EXPECT_TRUE(client->TrySend(Request("/hang"), results_.Callback()));
  EXPECT_FALSE(client->TrySend(Request("/hang"), results_.Callback()));
  ShadowStats stats = client->Stats();
  EXPECT_EQ(stats.dropped_queue_full, 1);
  EXPECT_EQ(stats.queued, 2);
  EXPECT_EQ(stats.in_flight, 1);
  EXPECT_EQ(stats.sent, 1);

  client.reset();  // must not wait for the hung upstream
  std::vector<UpstreamResult> got = results_.Get();
  ASSERT_EQ(got.size(), 3u);
  for (const UpstreamResult& r : got) {
    EXPECT_TRUE(r.aborted);
    EXPECT_EQ(r.outcome, OutcomeClass::kTransport);
    EXPECT_THAT(r.exchange.error(), HasSubstr("aborted"));
  }
}

// A target without a URL is refused (and counted) rather than queued.
TEST_F(UpstreamClientTest, RefusesTargetWithoutUrl) {
  config_.candidate.url.clear();
  auto client = StartClient();
  ASSERT_NE(client, nullptr);
  EXPECT_FALSE(
      client->TrySend(Request("/v1/chat/completions", v1::ARM_CANDIDATE), results_.Callback()));
  EXPECT_EQ(client->Stats().dropped_queue_full, 1);
}

}  // namespace
}  // namespace understudy::shadow
