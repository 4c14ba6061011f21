// The assembled sidecar in-process: one request through the Envoy-faithful
// driver reaches every output — the mirrored candidate call and its
// comparison, RocksDB, the admin API's /metrics, and OTLP spans inside the
// caller's own trace.
#include "sidecar/sidecar.h"

#include <curl/curl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "tests/common/test_util.h"
#include "tools/envoy_driver/envoy_driver.h"
#include "tests/support/test_upstream.h"
#include "tests/telemetry/otlp_receiver.h"

namespace understudy::sidecar {
namespace {

namespace ed = envoy_driver;
using ::testing::HasSubstr;

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::string HttpGet(const std::string& url) {
  std::string body;
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
  curl_easy_perform(c);
  curl_easy_cleanup(c);
  return body;
}

std::string HttpPost(const std::string& url, const std::string& json) {
  std::string body;
  CURL* c = curl_easy_init();
  curl_slist* headers = curl_slist_append(nullptr, "content-type: application/json");
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(c, CURLOPT_POSTFIELDS, json.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &Append);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
  curl_easy_perform(c);
  curl_slist_free_all(headers);
  curl_easy_cleanup(c);
  return body;
}

std::string Hex(const std::string& bytes) { return absl::BytesToHexString(bytes); }

class SidecarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char dir[] = "/tmp/sidecar-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    receiver_ = telemetry::testing::OtlpReceiver::Start(telemetry::OtlpProtocol::kGrpc);
    const std::string yaml = absl::StrReplaceAll(R"(
extproc: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
routing: {sticky_header: x-user-id}
upstreams:
  production: {url: PROD}
  candidate: {url: CAND}
shadow: {sample_rate: 1.0, timeout: 5s}
storage: {path: DATA}
feedback: {max_per_client_per_minute: 3}
telemetry:
  service_name: understudy-test
  otlp: {endpoint: "OTLP", protocol: grpc, flush_interval: 100ms}
)",
                                                 {{"PROD", production_http_.url()},
                                                  {"CAND", candidate_.url()},
                                                  {"DATA", dir_ + "/data"},
                                                  {"OTLP", receiver_->endpoint()}});
    absl::StatusOr<ConfigNode> root = ConfigNode::Parse(yaml, "test.yaml");
    ASSERT_OK(root);
    absl::StatusOr<SidecarConfig> config = ParseSidecarConfig(*root);
    ASSERT_OK(config);
    config_ = *std::move(config);
    StartSidecar();
  }
  void StartSidecar() {
    absl::StatusOr<std::unique_ptr<Sidecar>> s = Sidecar::Start(config_, {});
    ASSERT_OK(s);
    sidecar_ = std::move(*s);
  }
  // Restart stops the sidecar and starts it again on the same data.
  void Restart() {
    sidecar_->engine().WaitIdle();  // nothing queued behind the shutdown
    sidecar_->Shutdown(absl::Seconds(2));
    sidecar_.reset();
    StartSidecar();
  }
  std::string AdminUrl(std::string_view path) const {
    return absl::StrCat("http://127.0.0.1:", sidecar_->admin_port(), std::string(path));
  }
  ed::EnvoyDriver Driver() {
    if (!production_) production_ = ed::NewCurlUpstream(production_http_.url());
    return ed::EnvoyDriver(grpc::CreateChannel(absl::StrCat("127.0.0.1:", sidecar_->extproc_port()),
                                               grpc::InsecureChannelCredentials()),
                           ed::FilterChain::TwoFilter(), {{"production", production_.get()}});
  }
  // Feedback POSTs a score through Envoy's feedback path as `user`.
  absl::StatusOr<ed::DriverResult> Feedback(const std::string& user, const std::string& id,
                                            const std::string& score) {
    ed::HttpRequest r;
    r.path = "/understudy/feedback";
    r.headers = {{"content-type", "application/json"}, {"x-user-id", user}};
    r.body_chunks = {absl::StrCat(R"({"request_id":")", id, R"(","score":)", score, "}")};
    return Driver().Send(r);
  }
  void TearDown() override {
    sidecar_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }

  ed::TestUpstream production_http_{"production"};
  ed::TestUpstream candidate_{"candidate"};
  std::unique_ptr<ed::Upstream> production_;
  SidecarConfig config_;
  std::string dir_;
  std::unique_ptr<telemetry::testing::OtlpReceiver> receiver_;
  std::unique_ptr<Sidecar> sidecar_;
};

TEST_F(SidecarTest, OneRequestReachesShadowStorageMetricsAndTraces) {
  auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", sidecar_->extproc_port()),
                                     grpc::InsecureChannelCredentials());
  std::unique_ptr<ed::Upstream> production = ed::NewCurlUpstream(production_http_.url());
  ed::EnvoyDriver driver(channel, ed::FilterChain::TwoFilter(),
                         {{"production", production.get()}});
  ed::HttpRequest request;
  const std::string trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string parent_span = "00f067aa0ba902b7";
  request.headers = {{"x-user-id", "u1"},
                     {"traceparent", absl::StrCat("00-", trace_id, "-", parent_span, "-01")}};
  request.body_chunks = {R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]})"};
  absl::StatusOr<ed::DriverResult> r = driver.Send(request);
  ASSERT_OK(r);
  EXPECT_THAT(r->violations, ::testing::IsEmpty());
  EXPECT_EQ(r->cluster, "production");  // the shadow stage sends no live traffic to the candidate

  // The mirrored call and its comparison arrive off the production path and
  // are group-committed after the comparison is counted: wait for the store
  // records themselves (what is read below), not for the counter.
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  auto stored_both = [&] {
    absl::StatusOr<std::vector<understudy::v1::Exchange>> e =
        sidecar_->store().GetExchanges(r->request_id);
    return e.ok() && e->size() == 2 && sidecar_->store().GetComparison(r->request_id).ok();
  };
  while (!stored_both() && absl::Now() < deadline) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_TRUE(stored_both()) << "the live and shadow exchanges and the comparison were not "
                                "all stored within 10 s";
  ASSERT_EQ(sidecar_->engine().Stats().comparisons, 1);
  EXPECT_EQ(candidate_.requests(), 1);
  absl::StatusOr<std::vector<understudy::v1::Exchange>> stored =
      sidecar_->store().GetExchanges(r->request_id);
  ASSERT_OK(stored);
  EXPECT_EQ(stored->size(), 2u);  // live + shadow
  EXPECT_OK(sidecar_->store().GetComparison(r->request_id));
  EXPECT_EQ(sidecar_->controller().Health().shadow().comparisons(), 1);

  // Prometheus text on the admin port.
  const std::string metrics =
      HttpGet(absl::StrCat("http://127.0.0.1:", sidecar_->admin_port(), "/metrics"));
  EXPECT_THAT(metrics,
              HasSubstr(R"(understudy_requests_total{arm="production",source="live"} 1)"));
  EXPECT_THAT(metrics, HasSubstr(R"(understudy_requests_total{arm="candidate",source="shadow"} 1)"));
  EXPECT_THAT(metrics, HasSubstr("understudy_comparisons_total{verdict="));
  EXPECT_THAT(metrics, HasSubstr("understudy_rollout_phase{phase=\"shadow\"} 1"));

  // Spans: the exchange inside the caller's trace; shadow and compare below it.
  std::vector<telemetry::testing::ReceivedSpan> spans = receiver_->WaitForSpans(3);
  const telemetry::testing::ReceivedSpan* exchange = nullptr;
  const telemetry::testing::ReceivedSpan* shadow = receiver_->FindSpan(spans, "understudy.shadow");
  const telemetry::testing::ReceivedSpan* compare = receiver_->FindSpan(spans, "understudy.compare");
  for (const auto& s : spans) {
    if (absl::StartsWith(s.span.name(), "chat")) exchange = &s;
  }
  ASSERT_NE(exchange, nullptr);
  ASSERT_NE(shadow, nullptr);
  ASSERT_NE(compare, nullptr);
  EXPECT_EQ(Hex(exchange->span.trace_id()), trace_id);
  EXPECT_EQ(Hex(exchange->span.parent_span_id()), parent_span);
  EXPECT_EQ(shadow->span.parent_span_id(), exchange->span.span_id());
  EXPECT_EQ(compare->span.parent_span_id(), exchange->span.span_id());
  EXPECT_EQ(Hex(shadow->span.trace_id()), trace_id);

  // An operator's rollback: persisted, routed at once, counted, traced.
  const std::string reply =
      HttpPost(absl::StrCat("http://127.0.0.1:", sidecar_->admin_port(), "/v1/rollout/rollback"),
               R"({"actor":"alice","reason":"bad answers"})");
  EXPECT_THAT(reply, HasSubstr("PHASE_ROLLED_BACK"));
  absl::StatusOr<std::vector<understudy::v1::Decision>> log =
      sidecar_->store().ListDecisions(absl::InfinitePast(), 10);
  ASSERT_OK(log);
  ASSERT_EQ(log->size(), 1u);
  EXPECT_EQ(log->back().actor(), "alice");
  EXPECT_THAT(HttpGet(absl::StrCat("http://127.0.0.1:", sidecar_->admin_port(), "/metrics")),
              HasSubstr(R"(understudy_rollout_decisions_total{action="rollback",actor_kind="operator"} 1)"));
  const std::string exchange_trace = exchange->span.trace_id();
  spans = receiver_->WaitForSpans(spans.size() + 1);  // (invalidates the pointers above)
  const telemetry::testing::ReceivedSpan* decision =
      receiver_->FindSpan(spans, "understudy.rollout.decision");
  ASSERT_NE(decision, nullptr);
  EXPECT_NE(decision->span.trace_id(), exchange_trace);
}

// Feedback through Envoy cannot be stuffed: the first score for a request
// counts and a second one is 409 — also after a restart, from the store —
// and a client past feedback.max_per_client_per_minute (3 here) gets 429.
// Both refusals are on /metrics.
TEST_F(SidecarTest, EnvoyFeedbackIsOneScorePerRequestAndBoundedPerClient) {
  ed::HttpRequest chat;
  chat.headers = {{"x-user-id", "u1"}};
  chat.body_chunks = {R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]})"};
  absl::StatusOr<ed::DriverResult> answered = Driver().Send(chat);
  ASSERT_OK(answered);
  const std::string id = answered->request_id;

  absl::StatusOr<ed::DriverResult> first = Feedback("u1", id, "1");
  ASSERT_OK(first);
  EXPECT_EQ(first->status, 204) << first->body;
  absl::StatusOr<ed::DriverResult> second = Feedback("u1", id, "0");
  ASSERT_OK(second);
  EXPECT_EQ(second->status, 409) << second->body;
  EXPECT_THAT(second->body, HasSubstr("already has a score"));
  absl::StatusOr<std::vector<understudy::v1::Feedback>> stored =
      sidecar_->store().FeedbackFor(id);
  ASSERT_OK(stored);
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_DOUBLE_EQ((*stored)[0].score(), 1.0);

  // u1 has used 2 of its 3; the 4th is refused before anything else.
  absl::StatusOr<ed::DriverResult> third = Feedback("u1", "other-request", "1");
  ASSERT_OK(third);
  EXPECT_EQ(third->status, 204) << third->body;
  absl::StatusOr<ed::DriverResult> fourth = Feedback("u1", "yet-another", "1");
  ASSERT_OK(fourth);
  EXPECT_EQ(fourth->status, 429) << fourth->body;
  absl::StatusOr<ed::DriverResult> other_user = Feedback("u2", "yet-another", "1");
  ASSERT_OK(other_user);
  EXPECT_EQ(other_user->status, 204) << other_user->body;

  const std::string metrics = HttpGet(AdminUrl("/metrics"));
  EXPECT_THAT(metrics, HasSubstr(R"(understudy_feedback_rejected_total{reason="duplicate"} 1)"));
  EXPECT_THAT(metrics,
              HasSubstr(R"(understudy_feedback_rejected_total{reason="rate_limited"} 1)"));

  // After a restart the store still knows the request was scored.
  Restart();
  absl::StatusOr<ed::DriverResult> after = Feedback("u3", id, "0");
  ASSERT_OK(after);
  EXPECT_EQ(after->status, 409) << after->body;
  EXPECT_THAT(HttpGet(AdminUrl("/metrics")),
              HasSubstr(R"(understudy_feedback_rejected_total{reason="duplicate"} 1)"));
  stored = sidecar_->store().FeedbackFor(id);
  ASSERT_OK(stored);
  EXPECT_EQ(stored->size(), 1u);
}

}  // namespace
}  // namespace understudy::sidecar
