// The Envoy configs in examples/envoy/ are loaded into the driver's model of
// Envoy's ext_proc filters, compared with the set-ups the sidecar is built
// for, and then played against the real sidecar over gRPC with real HTTP
// upstreams: what ships is what is tested.
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "sidecar/ext_proc_service.h"
#include "tests/common/test_util.h"
#include "tests/deploy/envoy_config_loader.h"
#include "tools/envoy_driver/envoy_driver.h"
#include "tests/support/recording_sink.h"
#include "tests/support/test_upstream.h"

namespace understudy::deploy {
namespace {

namespace ed = envoy_driver;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::understudy::testing::StatusIs;
using Mode = ed::ProcessingMode;

std::string Example(const std::string& name) {
  return std::string(UNDERSTUDY_SOURCE_DIR) + "/examples/envoy/" + name;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// ExpectSameFilter compares everything the driver's FilterConfig models of
// Envoy's config (the driver-only knobs are not in an Envoy config).
void ExpectSameFilter(const ed::FilterConfig& got, const ed::FilterConfig& want) {
  SCOPED_TRACE("filter " + want.name);
  EXPECT_EQ(got.name, want.name);
  EXPECT_EQ(got.initial_metadata, want.initial_metadata);
  EXPECT_EQ(got.observability_mode, want.observability_mode);
  EXPECT_EQ(got.failure_mode_allow, want.failure_mode_allow);
  EXPECT_EQ(got.allow_mode_override, want.allow_mode_override);
  EXPECT_EQ(got.message_timeout, want.message_timeout);
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(got.processing_mode,
                                                                 want.processing_mode))
      << "got " << got.processing_mode.ShortDebugString() << "\nwant "
      << want.processing_mode.ShortDebugString();
}

// ExpectSameFallback compares the candidate route's upstream filters and
// retry policy as loaded with the driver's set-up.
void ExpectSameFallback(const ed::FilterChain& got, const ed::FilterChain& want) {
  ASSERT_EQ(got.candidate_upstream_filters.size(), want.candidate_upstream_filters.size());
  for (size_t i = 0; i < want.candidate_upstream_filters.size(); ++i) {
    ExpectSameFilter(got.candidate_upstream_filters[i], want.candidate_upstream_filters[i]);
  }
  const ed::FallbackPolicy& g = got.candidate_fallback;
  const ed::FallbackPolicy& w = want.candidate_fallback;
  EXPECT_EQ(g.enabled, w.enabled);
  EXPECT_EQ(g.to_cluster, w.to_cluster);
  EXPECT_EQ(g.num_retries, w.num_retries);
  EXPECT_EQ(g.retriable_status_codes, w.retriable_status_codes);
  EXPECT_EQ(g.on_5xx, w.on_5xx);
  EXPECT_EQ(g.on_reset, w.on_reset);
  EXPECT_EQ(g.retry_buffer_limit, w.retry_buffer_limit);
  EXPECT_EQ(g.include_attempt_count, w.include_attempt_count);
}

TEST(EnvoyConfigTest, RecommendedExampleIsTheDriversWithFallbackSetup) {
  auto ex = LoadEnvoyConfig(Example("envoy.yaml"));
  ASSERT_OK(ex);
  const ed::FilterChain want = ed::FilterChain::WithFallback();
  ASSERT_EQ(ex->chain.filters.size(), want.filters.size());
  for (size_t i = 0; i < want.filters.size(); ++i) {
    ExpectSameFilter(ex->chain.filters[i], want.filters[i]);
  }
  // WithFallback() is TwoFilter() plus the candidate route's attempts.
  const ed::FilterChain two_filter = ed::FilterChain::TwoFilter();
  ASSERT_EQ(two_filter.filters.size(), want.filters.size());
  for (size_t i = 0; i < want.filters.size(); ++i) {
    ExpectSameFilter(two_filter.filters[i], want.filters[i]);
  }
  ExpectSameFallback(ex->chain, want);
  // The pieces spelt out, so a drift in the driver shows up here too.
  EXPECT_EQ(ex->arm_cluster, "candidate_with_fallback");
  EXPECT_EQ(ex->arm_fallback_clusters, (std::vector<std::string>{"candidate", "production"}));
  EXPECT_EQ(ex->ArmUpstream(), "candidate");
  const EnvoyCluster& aggregate = ex->clusters.at("candidate_with_fallback");
  EXPECT_EQ(aggregate.upstream_http_filters,
            (std::vector<std::string>{"understudy-attempt", "envoy.filters.http.upstream_codec"}));
  EXPECT_EQ(aggregate.upstream_grpc_clusters, std::vector<std::string>{"understudy"});
  // Envoy's default of 3 retries in flight would make fallback a trickle.
  EXPECT_GE(aggregate.max_retries, 100000);
  ASSERT_EQ(ex->chain.candidate_upstream_filters.size(), 1u);
  const ed::FilterConfig& attempt = ex->chain.candidate_upstream_filters[0];
  EXPECT_EQ(attempt.initial_metadata.at("x-understudy-role"), "attempt");
  EXPECT_FALSE(attempt.observability_mode);
  EXPECT_TRUE(attempt.failure_mode_allow);
  EXPECT_EQ(attempt.processing_mode.response_header_mode(), Mode::SEND);
  EXPECT_EQ(attempt.processing_mode.response_body_mode(), Mode::NONE);
  EXPECT_TRUE(ex->chain.candidate_fallback.enabled);
  EXPECT_EQ(ex->chain.candidate_fallback.to_cluster, "production");
  EXPECT_EQ(ex->chain.candidate_fallback.retriable_status_codes, std::vector<int>{429});
  EXPECT_TRUE(ex->chain.candidate_fallback.include_attempt_count);
  EXPECT_EQ(ex->http_filters,
            (std::vector<std::string>{"understudy-strip-arm", "understudy-route",
                                      "understudy-observe", "envoy.filters.http.router"}));
  EXPECT_EQ(ex->chain.strip_request_headers, std::vector<std::string>{"x-understudy-arm"});
  // Roles and modes spelt out, so a drift in the driver shows up here too.
  EXPECT_EQ(ex->chain.filters[0].initial_metadata.at("x-understudy-role"), "route");
  EXPECT_EQ(ex->chain.filters[1].initial_metadata.at("x-understudy-role"), "observe");
  EXPECT_FALSE(ex->chain.filters[0].observability_mode);
  EXPECT_TRUE(ex->chain.filters[1].observability_mode);
  EXPECT_EQ(ex->chain.filters[0].processing_mode.request_body_mode(), Mode::NONE);
  EXPECT_EQ(ex->chain.filters[0].processing_mode.response_header_mode(), Mode::SKIP);
  EXPECT_EQ(ex->chain.filters[1].processing_mode.request_body_mode(), Mode::STREAMED);
  EXPECT_EQ(ex->chain.filters[1].processing_mode.response_body_mode(), Mode::STREAMED);
  EXPECT_EQ(ex->chain.filters[0].message_timeout, absl::Milliseconds(200));
  EXPECT_TRUE(ex->chain.filters[0].allow_mode_override);
  for (const auto& f : ex->chain.filters) EXPECT_TRUE(f.failure_mode_allow) << f.name;
}

TEST(EnvoyConfigTest, PreObservabilityExampleIsOneStreamedBlockingFilter) {
  auto ex = LoadEnvoyConfig(Example("envoy-pre-1.31.yaml"));
  ASSERT_OK(ex);
  const ed::FilterChain want = ed::FilterChain::SingleFilter(Mode::STREAMED);
  ASSERT_EQ(ex->chain.filters.size(), 1u);
  ExpectSameFilter(ex->chain.filters[0], want.filters[0]);
  // No upstream ext_proc before 1.31: no fallback either.
  EXPECT_THAT(ex->chain.candidate_upstream_filters, IsEmpty());
  EXPECT_FALSE(ex->chain.candidate_fallback.enabled);
  // No role metadata: the sidecar reads that as "full".
  EXPECT_THAT(ex->chain.filters[0].initial_metadata, IsEmpty());
  EXPECT_FALSE(ex->chain.filters[0].observability_mode);
}

TEST(EnvoyConfigTest, RoutesClustersAndCircuitBreakers) {
  for (const char* file : {"envoy.yaml", "envoy-pre-1.31.yaml", "envoy-unix.yaml"}) {
    SCOPED_TRACE(file);
    auto ex = LoadEnvoyConfig(Example(file));
    ASSERT_OK(ex);
    EXPECT_EQ(ex->arm_header, "x-understudy-arm");
    EXPECT_EQ(ex->arm_value, "candidate");
    EXPECT_EQ(ex->arm_cluster, std::string(file) == "envoy-pre-1.31.yaml"
                                   ? "candidate"
                                   : "candidate_with_fallback");
    EXPECT_EQ(ex->ArmUpstream(), "candidate");
    EXPECT_EQ(ex->default_cluster, "production");
    EXPECT_EQ(ex->echoed_response_headers.at("x-understudy-arm"), "%REQ(x-understudy-arm)%");
    EXPECT_EQ(ex->feedback_path, "/understudy/feedback");
    EXPECT_EQ(ex->listener_port, 10000);
    for (const auto& e : ex->ext_procs) EXPECT_EQ(e.cluster, "understudy");
    const EnvoyCluster& u = ex->clusters.at("understudy");
    EXPECT_TRUE(u.http2);
    // Two streams per request in the two-filter set-up: Envoy's default of
    // 1024 would cap the app at ~500 concurrent requests.
    EXPECT_GE(u.max_requests, 100000);
    EXPECT_GE(u.max_pending_requests, 100000);
    EXPECT_GE(u.max_connections, 100000);
    EXPECT_FALSE(ex->clusters.at("production").http2);
    EXPECT_FALSE(ex->clusters.at("candidate").http2);
  }
}

TEST(EnvoyConfigTest, UnixSocketVariantDiffersOnlyInTheSidecarAddress) {
  auto tcp = LoadEnvoyConfig(Example("envoy.yaml"));
  auto unix_socket = LoadEnvoyConfig(Example("envoy-unix.yaml"));
  ASSERT_OK(tcp);
  ASSERT_OK(unix_socket);
  ASSERT_EQ(unix_socket->chain.filters.size(), tcp->chain.filters.size());
  for (size_t i = 0; i < tcp->chain.filters.size(); ++i) {
    ExpectSameFilter(unix_socket->chain.filters[i], tcp->chain.filters[i]);
  }
  ExpectSameFallback(unix_socket->chain, tcp->chain);
  EXPECT_EQ(tcp->clusters.at("understudy").address, "127.0.0.1");
  EXPECT_EQ(tcp->clusters.at("understudy").port, 50051);
  EXPECT_EQ(unix_socket->clusters.at("understudy").pipe_path, "/var/run/understudy/extproc.sock");
  // Everything after the header comment is identical except the address.
  auto body = [](std::string s) { return s.substr(s.find("\nadmin:")); };
  std::string a = body(ReadFile(Example("envoy.yaml")));
  std::string b = body(ReadFile(Example("envoy-unix.yaml")));
  const std::string tcp_addr =
      "            address: { socket_address: { address: 127.0.0.1, port_value: 50051 } }\n";
  const std::string pipe_addr =
      "            address:\n              pipe: { path: /var/run/understudy/extproc.sock }\n";
  ASSERT_NE(a.find(tcp_addr), std::string::npos);
  a.replace(a.find(tcp_addr), tcp_addr.size(), pipe_addr);
  EXPECT_EQ(a, b);
}

// The loader is strict where Envoy is: these mistakes would make Envoy
// reject the config or silently misbehave, and each error names the key.
TEST(EnvoyConfigTest, LoaderRejectsBrokenConfigsNamingTheKey) {
  const std::string good = ReadFile(Example("envoy.yaml"));
  ASSERT_FALSE(good.empty());
  struct Case {
    std::string from, to, error;
  };
  const Case cases[] = {
      {"request_body_mode: STREAMED", "request_body_mode: STREAMD",
       "processing_mode.request_body_mode: unknown BodySendMode \"STREAMD\""},
      {"observability_mode: true", "observabilty_mode: true", "observabilty_mode"},
      {"message_timeout: 0.2s", "message_timeout: 200ms", "message_timeout: must be a proto-JSON"},
      {"envoy_grpc: { cluster_name: understudy }", "envoy_grpc: { cluster_name: sidecar }",
       "cluster_name: names no cluster"},
      {"explicit_http_config: { http2_protocol_options: {} }",
       "explicit_http_config: { http_protocol_options: {} }", "must speak HTTP/2"},
      {"request_body_mode: STREAMED", "request_body_mode: BUFFERED",
       "must be NONE or STREAMED with observability_mode"},
      {"\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n",
       "\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n"
       "          - name: envoy.filters.http.cors\n"
       "            typed_config: {\"@type\": x}\n",
       "the router filter must be the last http filter"},
      {"                    string_match: { exact: candidate }",
       "                    string_match: { prefix: candidate }", "must be {exact: VALUE}"},
      // Fallback: the retry policy, the aggregate cluster, the upstream filters.
      {"retry_on: \"connect-failure,", "retry_on: \"connect-failur,",
       "route.retry_policy.retry_on: unknown retry condition \"connect-failur\""},
      {"num_retries: 1", "num_retry: 1", "retry_policy.num_retry"},
      {"retriable_status_codes: [429]", "retriable_status_codes: [42]",
       "retry_policy.retriable_status_codes: must hold HTTP status codes"},
      {"update_frequency: 1 ", "update_frequency: 2 ",
       "retry_priority.typed_config.update_frequency: must be 1"},
      {"name: envoy.retry_priorities.previous_priorities",
       "name: envoy.retry_priorities.previous_priority",
       "retry_priority.name: unknown retry priority"},
      {"include_request_attempt_count: true", "include_attempt_count_in_request: true",
       "virtual_hosts[0].include_attempt_count_in_request: is not a field"},
      {"name: envoy.clusters.aggregate", "name: envoy.clusters.aggregat",
       "clusters[2].cluster_type.name: unknown cluster_type"},
      {"lb_policy: CLUSTER_PROVIDED", "lb_policy: ROUND_ROBIN",
       "clusters[2].lb_policy: must be CLUSTER_PROVIDED"},
      {"clusters: [candidate, production]", "clusters: [candidate, prod]",
       "aggregate cluster candidate_with_fallback names unknown cluster prod"},
      {"clusters: [candidate, production]", "clusters: [candidate]",
       "must name exactly two clusters"},
      {"\"@type\": type.googleapis.com/envoy.extensions.filters.http.upstream_codec.v3."
       "UpstreamCodec",
       "\"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
       "http_filters[1].typed_config: the last upstream filter must be "
       "envoy.filters.http.upstream_codec"},
      {"\n              response_body_mode: NONE", "\n              response_body_mode: STREAMED",
       "http_filters[0].typed_config.processing_mode.response_body_mode: must be NONE on an "
       "upstream filter"},
      {"- { key: x-understudy-role, value: attempt }", "- { key: x-understudy-role, valu: attempt }",
       "initial_metadata[0].valu"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.to);
    std::string text = good;
    const size_t at = text.find(c.from);
    ASSERT_NE(at, std::string::npos);
    text.replace(at, c.from.size(), c.to);
    EXPECT_THAT(ParseEnvoyConfig(text, "envoy.yaml"),
                StatusIs(absl::StatusCode::kInvalidArgument, c.error));
    EXPECT_THAT(ParseEnvoyConfig(text, "envoy.yaml"),
                StatusIs(absl::StatusCode::kInvalidArgument, "envoy.yaml: "));
  }
  // An aggregate without previous_priorities would retry on the candidate.
  {
    std::string text = good;
    const size_t at = text.find("                    retry_priority:\n");
    const size_t end = text.find("\n", text.find("update_frequency: 1", at)) + 1;
    ASSERT_NE(at, std::string::npos);
    text.erase(at, end - at);
    EXPECT_THAT(ParseEnvoyConfig(text, "envoy.yaml"),
                StatusIs(absl::StatusCode::kInvalidArgument,
                         "route.retry_policy.retry_priority: is required on an aggregate"));
  }
  // A route after the catch-all can never match.
  std::string text = good;
  const std::string feedback = "              - name: understudy_feedback\n";
  const size_t at = text.find(feedback);
  const size_t end = text.find("              - name: candidate\n");
  ASSERT_NE(at, std::string::npos);
  std::string block = text.substr(at, end - at);
  text.erase(at, end - at);
  text.insert(text.find("          http_filters:"), block);
  EXPECT_THAT(ParseEnvoyConfig(text, "envoy.yaml"),
              StatusIs(absl::StatusCode::kInvalidArgument, "can never match"));
}

TEST(EnvoyConfigTest, ProtoDurations) {
  EXPECT_EQ(*ParseProtoDuration("0.2s"), absl::Milliseconds(200));
  EXPECT_EQ(*ParseProtoDuration("5s"), absl::Seconds(5));
  EXPECT_EQ(*ParseProtoDuration("1.000000001s"), absl::Seconds(1) + absl::Nanoseconds(1));
  for (const char* bad : {"200ms", "5", "s", ".5s", "1.s", "-1s", "1.0000000001s", "1 s"}) {
    EXPECT_FALSE(ParseProtoDuration(bad).ok()) << bad;
  }
}

// --- The loaded chains against the real sidecar -----------------------------

using ::understudy::testing::RecordingSink;

// ClosedPort holds a bound, never-listening TCP port: connecting to it is
// refused, and nothing else can take it while this lives.
class ClosedPort {
 public:
  ClosedPort() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
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

class LoadedChainTest : public ::testing::TestWithParam<const char*> {
 protected:
  void SetUp() override {
    auto ex = LoadEnvoyConfig(Example(GetParam()));
    ASSERT_OK(ex);
    example_ = std::move(*ex);
    options_.sticky_header = "x-user-id";
    options_.feedback_path = example_.feedback_path;
    options_.on_feedback = [this](std::string_view body, std::string_view, std::string_view) {
      absl::MutexLock lock(&feedback_mu_);
      feedback_.emplace_back(body);
      return absl::OkStatus();
    };
    service_ = std::make_unique<sidecar::ExtProcService>(options_, router_, sink_,
                                                         RealClock::Default(), stats_);
    sidecar::ExtProcServerOptions server_options;
    server_options.listen = "127.0.0.1:0";
    auto server = sidecar::ExtProcServer::Start(server_options, *service_);
    ASSERT_OK(server);
    server_ = std::move(*server);
    channel_ = grpc::CreateChannel("127.0.0.1:" + std::to_string(server_->port()),
                                   grpc::InsecureChannelCredentials());
  }

  // The driver routes exactly as the loaded config does: by the header the
  // candidate route matches, to the clusters the routes name.
  ed::EnvoyDriver Driver() {
    return ed::EnvoyDriver(channel_, example_.chain,
                           {{example_.default_cluster, production_.get()},
                            {example_.ArmUpstream(), candidate_.get()}},
                           example_.arm_header, example_.default_cluster);
  }

  // ExpectFaithful: no violation, no filter failed open.
  static void ExpectFaithful(const ed::DriverResult& r) {
    for (const std::string& v : r.violations) ADD_FAILURE() << "violation: " << v;
    EXPECT_FALSE(r.failed_open);
  }

  static ed::HttpRequest Chat(const std::string& user, bool stream) {
    ed::HttpRequest r;
    r.headers.emplace_back("x-user-id", user);
    std::string body = std::string("{\"model\":\"m\",\"stream\":") + (stream ? "true" : "false") +
                       ",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}]}";
    r.body_chunks = {body.substr(0, 7), body.substr(7)};
    return r;
  }

  static ed::HttpRequest Feedback(const std::string& path) {
    ed::HttpRequest r;
    r.path = path;
    r.headers.emplace_back("content-type", "application/json");
    r.body_chunks = {"{\"request_id\":\"req-1\",", "\"score\":\"up\"}"};
    return r;
  }
  std::vector<std::string> FeedbackBodies() {
    absl::MutexLock lock(&feedback_mu_);
    return feedback_;
  }

  EnvoyExample example_;
  absl::Mutex feedback_mu_;
  std::vector<std::string> feedback_ ABSL_GUARDED_BY(feedback_mu_);
  sidecar::SessionOptions options_;
  rollout::Router router_{"deploy-test", 0};
  sidecar::ExtProcStats stats_;
  RecordingSink sink_;
  ed::TestUpstream production_http_{"production"};
  ed::TestUpstream candidate_http_{"candidate"};
  std::unique_ptr<ed::Upstream> production_ = ed::NewCurlUpstream(production_http_.url());
  std::unique_ptr<ed::Upstream> candidate_ = ed::NewCurlUpstream(candidate_http_.url());
  std::unique_ptr<sidecar::ExtProcService> service_;
  std::unique_ptr<sidecar::ExtProcServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
};

TEST_P(LoadedChainTest, RoutesByTheConfiguredHeaderAndRecordsEachExchangeOnce) {
  ed::EnvoyDriver driver = Driver();
  const int kUsers = 6;
  // 0%: everyone on production; 100%: everyone on the candidate.
  for (int32_t weight : {0, 10000}) {
    router_.SetWeightBasisPoints(weight);
    const std::string want = weight == 0 ? example_.default_cluster : example_.ArmUpstream();
    // Candidate requests add one upstream (attempt) stream per attempt.
    const size_t streams = example_.chain.filters.size() +
                           (weight == 0 ? 0 : example_.chain.candidate_upstream_filters.size());
    for (int i = 0; i < kUsers; ++i) {
      SCOPED_TRACE(::testing::Message() << "weight " << weight << " user " << i);
      auto r = driver.Send(Chat("user-" + std::to_string(i), i % 2 == 0));
      ASSERT_OK(r);
      ExpectFaithful(*r);
      EXPECT_EQ(r->status, 200);
      EXPECT_EQ(r->cluster, want);
      EXPECT_EQ(r->attempt_clusters, std::vector<std::string>{want});
      EXPECT_EQ(r->arm_header, weight == 0 ? "production" : example_.arm_value);
      EXPECT_EQ(r->streams_opened, static_cast<int>(streams));
      if (i % 2 == 0) {
        EXPECT_THAT(r->body, HasSubstr("data: [DONE]"));
      } else {
        EXPECT_THAT(r->body, HasSubstr(weight == 0 ? production_http_.Answer()
                                                   : candidate_http_.Answer()));
      }
    }
  }
  EXPECT_EQ(production_http_.requests(), kUsers);
  EXPECT_EQ(candidate_http_.requests(), kUsers);
  // One exchange per request whatever the number of filters (route streams
  // are not exchanges), each with the arm that served it.
  auto exchanges = sink_.WaitFor(2 * kUsers);
  ASSERT_EQ(exchanges.size(), static_cast<size_t>(2 * kUsers));
  int candidate = 0;
  for (const auto& e : exchanges) {
    EXPECT_FALSE(e.response().body().empty());
    if (e.arm() == understudy::v1::ARM_CANDIDATE) ++candidate;
  }
  EXPECT_EQ(candidate, kUsers);
  EXPECT_EQ(stats_.spurious_messages.Get(), 0u);
}

// Feedback POSTed through Envoy on the configured path is answered by the
// sidecar itself (204) and never reaches a model, in both set-ups (the
// two-filter one needs allow_mode_override to read the body).
TEST_P(LoadedChainTest, FeedbackPathIsAnsweredByTheSidecar) {
  ASSERT_EQ(example_.feedback_path, "/understudy/feedback");
  ed::EnvoyDriver driver = Driver();
  auto r = driver.Send(Feedback(example_.feedback_path));
  ASSERT_OK(r);
  EXPECT_THAT(r->violations, IsEmpty());
  EXPECT_TRUE(r->immediate_response);
  EXPECT_EQ(r->status, 204);
  EXPECT_EQ(production_http_.requests() + candidate_http_.requests(), 0);
  EXPECT_THAT(FeedbackBodies(), ::testing::ElementsAre("{\"request_id\":\"req-1\",\"score\":\"up\"}"));
  // Feedback is not an exchange. Checking the sink at once would pass
  // before a wrongly recorded one arrived (streams end asynchronously), so
  // play a chat request after it and wait for that exchange: it must be
  // the only one.
  auto chat = driver.Send(Chat("carol", false));
  ASSERT_OK(chat);
  auto exchanges = sink_.WaitFor(1);
  ASSERT_EQ(exchanges.size(), 1u);
  EXPECT_NE(exchanges[0].path(), example_.feedback_path);
}

// A candidate that cannot be reached: with the shipped fallback Envoy makes
// a second attempt on production, whose attempt stream the real sidecar
// answers without a protocol breach (what it answers, restoring the
// client's request or refusing, is the sidecar's fallback logic, tested in
// tests/sidecar); without fallback (the pre-1.31 set-up) the client gets
// Envoy's 503.
TEST_P(LoadedChainTest, AnUnreachableCandidateIsRetriedOnProductionWhereConfigured) {
  ClosedPort closed;
  std::unique_ptr<ed::Upstream> unreachable = ed::NewCurlUpstream(closed.url());
  ed::EnvoyDriver driver(channel_, example_.chain,
                         {{example_.default_cluster, production_.get()},
                          {example_.ArmUpstream(), unreachable.get()}},
                         example_.arm_header, example_.default_cluster);
  router_.SetWeightBasisPoints(10000);
  auto r = driver.Send(Chat("carol", false));
  ASSERT_OK(r);
  if (example_.chain.candidate_fallback.enabled) {
    ExpectFaithful(*r);
    EXPECT_EQ(r->attempt_clusters,
              (std::vector<std::string>{example_.ArmUpstream(), example_.default_cluster}));
    ASSERT_EQ(r->attempt_statuses.size(), 2u);
    EXPECT_EQ(r->attempt_statuses[0], 0);  // no answer from the candidate
    EXPECT_EQ(r->streams_opened, static_cast<int>(example_.chain.filters.size()) + 2);
  } else {
    EXPECT_EQ(r->attempt_clusters, std::vector<std::string>{example_.ArmUpstream()});
    EXPECT_EQ(r->status, 503);
    EXPECT_EQ(production_http_.requests(), 0);
  }
}

TEST_P(LoadedChainTest, ADeadSidecarFailsOpenToProduction) {
  server_->Drain(absl::ZeroDuration());
  server_.reset();
  ed::EnvoyDriver driver = Driver();
  auto r = driver.Send(Chat("carol", false));
  ASSERT_OK(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->cluster, example_.default_cluster);
  EXPECT_THAT(r->body, HasSubstr(production_http_.Answer()));
}

// A client that sends the arm header itself never picks its arm: not while
// the sidecar decides (it overwrites it), and not while the sidecar is down
// (the header is removed before the filters, so failing open means
// production). Every shipped config strips it.
TEST_P(LoadedChainTest, AClientSentArmHeaderNeverRoutes) {
  EXPECT_THAT(example_.chain.strip_request_headers, ::testing::Contains(example_.arm_header));
  ed::EnvoyDriver driver = Driver();
  ed::HttpRequest spoofed = Chat("mallory", false);
  spoofed.headers.emplace_back(example_.arm_header, example_.arm_value);
  router_.SetWeightBasisPoints(0);
  auto live = driver.Send(spoofed);
  ASSERT_OK(live);
  EXPECT_EQ(live->cluster, example_.default_cluster);
  server_->Drain(absl::ZeroDuration());
  server_.reset();
  auto down = driver.Send(spoofed);
  ASSERT_OK(down);
  EXPECT_EQ(down->status, 200);
  EXPECT_EQ(down->cluster, example_.default_cluster);
  EXPECT_EQ(candidate_http_.requests(), 0);
}

// Without allow_mode_override the route filter cannot read the feedback
// body: the setting in envoy.yaml is load-bearing.
TEST(EnvoyConfigTest, TwoFilterFeedbackNeedsAllowModeOverride) {
  std::string text = ReadFile(Example("envoy.yaml"));
  const std::string from = "allow_mode_override: true";
  ASSERT_NE(text.find(from), std::string::npos);
  text.replace(text.find(from), from.size(), "allow_mode_override: false");
  auto ex = ParseEnvoyConfig(text, "envoy.yaml");
  ASSERT_OK(ex);
  EXPECT_FALSE(ex->chain.filters[0].allow_mode_override);

  sidecar::SessionOptions options;
  options.feedback_path = ex->feedback_path;
  options.on_feedback = [](std::string_view, std::string_view, std::string_view) {
    return absl::OkStatus();
  };
  rollout::Router router;
  sidecar::ExtProcStats stats;
  RecordingSink sink;
  sidecar::ExtProcService service(options, router, sink, RealClock::Default(), stats);
  sidecar::ExtProcServerOptions server_options;
  server_options.listen = "127.0.0.1:0";
  auto server = sidecar::ExtProcServer::Start(server_options, service);
  ASSERT_OK(server);
  auto channel = grpc::CreateChannel("127.0.0.1:" + std::to_string((*server)->port()),
                                     grpc::InsecureChannelCredentials());
  ed::TestUpstream production_http("production");
  auto production = ed::NewCurlUpstream(production_http.url());
  ed::EnvoyDriver driver(channel, ex->chain, {{ex->default_cluster, production.get()}},
                         ex->arm_header, ex->default_cluster);
  ed::HttpRequest r;
  r.path = ex->feedback_path;
  r.body_chunks = {"{\"request_id\":\"req-1\",\"score\":1}"};
  auto result = driver.Send(r);
  ASSERT_OK(result);
  EXPECT_NE(result->status, 204);
  EXPECT_THAT(result->violations, ::testing::Contains(HasSubstr("mode_override")));
}

INSTANTIATE_TEST_SUITE_P(Examples, LoadedChainTest,
                         ::testing::Values("envoy.yaml", "envoy-pre-1.31.yaml"),
                         [](const ::testing::TestParamInfo<const char*>& info) {
                           return std::string(info.param) == "envoy.yaml" ? "TwoFilter"
                                                                          : "PreObservability";
                         });

}  // namespace
}  // namespace understudy::deploy
