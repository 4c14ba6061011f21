// Issue #14 end to end: a realistic mix of traffic through the Envoy-faithful
// driver — OpenAI chat (JSON and SSE), the Responses API (JSON and SSE),
// embeddings, `GET /v1/models` and a health check — with answers compressed
// (gzip, br, zstd) on both arms. Only the model calls are routed, mirrored
// and judged; the rest stays on production, untouched, and is counted.
// Real processes as in tests/e2e/e2e_test.cc: two fake models,
// `understudy serve`, the driver.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "encoding/content_decoder.h"
#include "tests/e2e/e2e_cluster.h"

namespace understudy::e2e {
namespace {

// What a client sends.
enum class Kind { kChat, kChatSse, kResponses, kResponsesSse, kEmbeddings, kModels, kHealth };
constexpr Kind kKinds[] = {Kind::kChat,       Kind::kChatSse, Kind::kResponses, Kind::kResponsesSse,
                           Kind::kEmbeddings, Kind::kModels,  Kind::kHealth};
// How often each kind is sent, relative to the others (same order).
constexpr int kWeights[] = {3, 3, 2, 2, 2, 1, 1};

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kChat: return "chat";
    case Kind::kChatSse: return "chat-sse";
    case Kind::kResponses: return "responses";
    case Kind::kResponsesSse: return "responses-sse";
    case Kind::kEmbeddings: return "embeddings";
    case Kind::kModels: return "models";
    case Kind::kHealth: return "health";
  }
  return "?";
}

// Model calls; the models list and the health check are not.
bool InScope(Kind k) { return k != Kind::kModels && k != Kind::kHealth; }

// The codings clients accept, in turn ("": no Accept-Encoding header).
constexpr const char* kCodings[] = {"gzip", "br", "zstd", ""};

// Questions the fake's corpus knows (examples/fake-model/corpus.jsonl).
constexpr const char* kQuestions[] = {
    "What is the capital of France?", "What is the capital of Japan?",
    "What is the capital of Australia?", "How tall is Mount Everest?",
    "At what temperature does water boil at sea level?"};

constexpr int kUsers = 400;

envoy_driver::HttpRequest MakeRequest(Kind kind, const std::string& user, const char* coding,
                                      const char* question) {
  envoy_driver::HttpRequest req;
  req.headers = {{"x-user-id", user}};
  if (coding[0] != '\0') req.headers.emplace_back("accept-encoding", coding);
  if (kind == Kind::kModels || kind == Kind::kHealth) {
    req.method = "GET";
    req.path = kind == Kind::kModels ? "/v1/models" : "/healthz";
    return req;
  }
  json body = {{"model", "gpt-4o"}};
  const json messages = json::array({{{"role", "user"}, {"content", question}}});
  switch (kind) {
    case Kind::kChat:
      req.path = "/v1/chat/completions";
      body["messages"] = messages;
      break;
    case Kind::kChatSse:
      req.path = "/v1/chat/completions";
      body["messages"] = messages;
      body["stream"] = true;
      body["stream_options"] = {{"include_usage", true}};
      break;
    case Kind::kResponses:
      req.path = "/v1/responses";
      body["input"] = question;
      break;
    case Kind::kResponsesSse:
      req.path = "/v1/responses";
      body["input"] = question;
      body["stream"] = true;
      break;
    default:
      req.path = "/v1/embeddings";
      body["input"] = question;
      break;
  }
  req.headers.emplace_back("content-type", "application/json");
  req.body_chunks = {body.dump()};
  return req;
}

std::string Header(const envoy_driver::Headers& headers, const std::string& key) {
  for (const auto& [k, v] : headers) {
    if (k == key) return v;
  }
  return "";
}

// The arm's model name, as each fake answers.
std::string ModelOf(const std::string& cluster) {
  return cluster == "candidate" ? "gpt-5-mini" : "gpt-4o";
}

// What the client saw, tallied across threads.
class Tally {
 public:
  // Add checks one answer and counts it. With `candidate_may_fail`, a 500
  // from the candidate is counted, not a problem.
  void Add(Kind kind, const char* coding, const absl::StatusOr<DriverResult>& r,
           const std::string& production_key, bool candidate_may_fail) {
    std::string problem;
    std::string cluster;
    bool candidate_error = false;
    if (!r.ok()) {
      problem = r.status().ToString();
    } else {
      cluster = r->cluster;
      problem = Check(kind, coding, *r, production_key);
      if (!problem.empty() && candidate_may_fail && cluster == "candidate" && r->status == 500) {
        problem.clear();
        candidate_error = true;
      }
    }
    absl::MutexLock lock(&mu_);
    ++sent_[InScope(kind)];
    if (candidate_error) ++candidate_errors_;
    if (!problem.empty()) {
      if (problems_.size() < 10) {
        problems_.push_back(absl::StrCat(KindName(kind), " accept-encoding \"", coding, "\" on ",
                                         cluster, ": ", problem));
      }
      ++problem_count_;
      return;
    }
    if (candidate_error) return;
    ++served_[{cluster, KindName(kind)}];
    const std::string encoding = Header(r->response_headers, "content-encoding");
    if (!encoding.empty()) ++compressed_[{cluster, encoding}];
  }

  int64_t sent(bool in_scope) const {
    absl::MutexLock lock(&mu_);
    return sent_[in_scope];
  }
  int64_t served(const std::string& cluster, Kind kind) const {
    absl::MutexLock lock(&mu_);
    auto it = served_.find({cluster, KindName(kind)});
    return it == served_.end() ? 0 : it->second;
  }
  int64_t compressed(const std::string& cluster, const std::string& coding) const {
    absl::MutexLock lock(&mu_);
    auto it = compressed_.find({cluster, coding});
    return it == compressed_.end() ? 0 : it->second;
  }
  int64_t candidate_errors() const {
    absl::MutexLock lock(&mu_);
    return candidate_errors_;
  }
  int64_t problem_count() const {
    absl::MutexLock lock(&mu_);
    return problem_count_;
  }
  std::string Problems() const {
    absl::MutexLock lock(&mu_);
    std::string out;
    for (const std::string& p : problems_) absl::StrAppend(&out, p, "\n");
    return out;
  }

 private:
  // Check returns "" when the answer is what a client of that endpoint
  // must get, else what is wrong.
  static std::string Check(Kind kind, const char* coding, const DriverResult& r,
                           const std::string& production_key) {
    if (!r.violations.empty()) return "violation: " + r.violations.front();
    if (r.failed_open) return "a filter failed open";
    if (r.immediate_response) return "answered by a filter";
    if (r.status != 200) return absl::StrCat("status ", r.status, ": ", r.body.substr(0, 200));
    if (r.cluster != "production" && r.cluster != "candidate") return "cluster " + r.cluster;
    // The fake compresses every answer but the health check, in the one
    // coding the client accepts.
    const std::string encoding = Header(r.response_headers, "content-encoding");
    const std::string want_encoding = kind == Kind::kHealth ? "" : coding;
    if (encoding != want_encoding) {
      return absl::StrCat("content-encoding \"", encoding, "\", want \"", want_encoding, "\"");
    }
    encoding::DecodedBody decoded = encoding::DecodeBody(encoding, r.body, encoding::DecodeLimits{});
    if (!decoded.status.ok()) return "undecodable answer: " + decoded.status.ToString();
    const std::string& body = decoded.data;
    if (!InScope(kind)) {
      // Untouched: production answers with the client's own credential.
      if (r.cluster != "production") return "out of scope, yet served by " + r.cluster;
      if (Header(r.upstream_headers, "authorization") != "Bearer " + production_key) {
        return "the client's authorization header was changed";
      }
      const json want =
          kind == Kind::kModels
              ? json{{"object", "list"},
                     {"data", json::array({{{"id", "gpt-4o"},
                                            {"object", "model"},
                                            {"created", 1700000000},
                                            {"owned_by", "understudy-fake"}}})}}
              : json{{"status", "ok"}};
      if (json::parse(body, nullptr, false) != want) return "body changed: " + body;
      return "";
    }
    // A model call reached the arm's own model (the candidate's request is
    // reshaped to its model and key) and came back whole.
    const std::string model = ModelOf(r.cluster);
    const std::string other = ModelOf(r.cluster == "candidate" ? "production" : "candidate");
    if (!absl::StrContains(body, "\"" + model + "\"") || absl::StrContains(body, other)) {
      return absl::StrCat("the answer does not come from ", model, ": ", body.substr(0, 300));
    }
    switch (kind) {
      case Kind::kChatSse:
        if (!absl::StrContains(body, "data: [DONE]")) return "stream without [DONE]";
        if (!absl::StrContains(body, "\"usage\"")) return "stream without usage";
        return "";
      case Kind::kResponsesSse:
        if (!absl::StrContains(body, "response.completed")) return "stream not completed";
        return "";
      default:
        break;
    }
    const json j = json::parse(body, nullptr, false);
    if (!j.is_object()) return "answer is not JSON: " + body.substr(0, 200);
    const char* key = kind == Kind::kChat ? "choices" : kind == Kind::kResponses ? "output" : "data";
    if (!j.contains(key) || j[key].empty()) return absl::StrCat("answer without ", key);
    return "";
  }

  mutable absl::Mutex mu_;
  int64_t sent_[2] ABSL_GUARDED_BY(mu_) = {0, 0};  // [in scope]
  int64_t candidate_errors_ ABSL_GUARDED_BY(mu_) = 0;
  int64_t problem_count_ ABSL_GUARDED_BY(mu_) = 0;
  std::vector<std::string> problems_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, int64_t> served_ ABSL_GUARDED_BY(mu_);
  std::map<std::pair<std::string, std::string>, int64_t> compressed_ ABSL_GUARDED_BY(mu_);
};

// MixedTraffic plays the mix on `threads` threads until stopped: each
// request from one of kUsers users (uniformly), of a kind drawn by
// kWeights, accepting the codings in turn.
class MixedTraffic {
 public:
  MixedTraffic(Cluster& c, Tally& tally, int threads, bool candidate_may_fail) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, &c, &tally, t, candidate_may_fail] {
        std::mt19937_64 rng(7000 + t);
        std::uniform_int_distribution<int> user(0, kUsers - 1);
        std::discrete_distribution<int> kind(std::begin(kWeights), std::end(kWeights));
        for (int i = t; !stop_.load(); ++i) {
          const Kind k = kKinds[kind(rng)];
          const char* coding = kCodings[i % std::size(kCodings)];
          const char* question = kQuestions[i % std::size(kQuestions)];
          tally.Add(k, coding,
                    c.SendRequest(MakeRequest(k, absl::StrCat("user-", user(rng)), coding, question)),
                    c.production_key(), candidate_may_fail);
        }
      });
    }
  }
  ~MixedTraffic() { Stop(); }
  void Stop() {
    stop_.store(true);
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }

 private:
  std::atomic<bool> stop_{false};
  std::vector<std::thread> threads_;
};

class MixedTrafficE2eTest : public E2eFixture {
 protected:

  // Start runs both fakes compressing their answers, the candidate with
  // `candidate_args` (e.g. an error rate), and the sidecar with the judged
  // plan and a fifth of production's model calls mirrored.
  void Start(std::vector<std::string> candidate_args = {}) {
    FakeOptions fake;
    fake.latency_ms = 4;
    fake.ttft_ms = 1;
    fake.compress = true;
    FakeOptions candidate = fake;
    candidate.extra_args = std::move(candidate_args);
    ASSERT_OK(c_.StartFakes(fake, candidate));
    SidecarKnobs knobs;
    knobs.sample_rate = 0.2;
    // 400 users, ~200 per arm at 50%: zero errors among 200 users bound
    // the candidate's rate at 1.5% (95%), so the gate must catch +3 points
    // to decide an error-free A/A (rollout/judge.cc; the default +1 point
    // needs ~300 error-free users).
    knobs.rollout_yaml = JudgedPlan(0.03);
    ASSERT_OK(c_.StartSidecar(knobs));
  }

  // Why: the judge's latest hold and gates, for failure messages.
  std::string Why() {
    const json health = c_.Rollout().value("health", json());
    std::string out = absl::StrCat("state ", State().dump(), "\nholding: ",
                                   health.value("hold_reason", ""), ": ",
                                   health.value("unblock", ""), "\n");
    for (const json& g : health.value("gates", json::array())) {
      absl::StrAppend(&out, g.value("gate", ""), " ", g.value("outcome", ""), ": ",
                      g.value("detail", ""), "\n");
    }
    return out;
  }
  std::string Metrics() { return c_.Admin("GET", "/metrics").body; }

  // WaitForMetricAtLeast polls /metrics until `name{label}` reaches
  // `value`; returns the last value (-1: no such series).
  double WaitForMetricAtLeast(const std::string& name, const std::string& label, double value) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    double got = -1;
    while (absl::Now() < deadline) {
      got = MetricValue(Metrics(), name, label);
      if (got >= value) return got;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return got;
  }

  // SendEachKind sends every kind with every coding once and checks where
  // each went: model calls to `model_calls_to`, the rest to production.
  void SendEachKind(Tally& tally, const std::string& model_calls_to) {
    int i = 0;
    for (Kind kind : kKinds) {
      for (const char* coding : kCodings) {
        absl::StatusOr<DriverResult> r = c_.SendRequest(
            MakeRequest(kind, absl::StrCat("user-", i++ % kUsers), coding, kQuestions[0]));
        ASSERT_TRUE(r.ok()) << r.status();
        EXPECT_EQ(r->cluster, InScope(kind) ? model_calls_to : "production")
            << KindName(kind) << " accept-encoding \"" << coding << "\"";
        tally.Add(kind, coding, r, c_.production_key(), /*candidate_may_fail=*/false);
      }
    }
  }

  // ExpectEveryRequestCounted: each model call is one live exchange on
  // /metrics, each other request one out-of-scope count (reason "path"),
  // once each, never recorded as an exchange.
  void ExpectEveryRequestCounted(const Tally& tally) {
    const double in_scope = static_cast<double>(tally.sent(true));
    const double out_of_scope = static_cast<double>(tally.sent(false));
    ASSERT_GT(out_of_scope, 0);
    EXPECT_EQ(WaitForMetricAtLeast("understudy_requests_out_of_scope_total", "reason=\"path\"",
                                   out_of_scope),
              out_of_scope);
    EXPECT_LE(MetricValue(Metrics(), "understudy_requests_out_of_scope_total",
                          "reason=\"method\""),
              0);
    EXPECT_EQ(WaitForMetricAtLeast("understudy_requests_total", "source=\"live\"", in_scope),
              in_scope);
  }

};

// Both models behave the same: the judge walks the plan to 100% without a
// rollback and counts no error on any arm or source, however the answers
// are coded or framed; models list and health checks never leave
// production and are counted apart.
TEST_F(MixedTrafficE2eTest, AAMixedCompressedTrafficPromotesWithNoErrors) {
  Start();
  Tally tally;
  {
    MixedTraffic traffic(c_, tally, 6, /*candidate_may_fail=*/false);
    const std::string phase =
        WaitForPhase({"PHASE_PROMOTED", "PHASE_ROLLED_BACK"}, absl::Minutes(3));
    traffic.Stop();
    ASSERT_EQ(phase, "PHASE_PROMOTED") << Why() << tally.Problems();
  }
  // At 100% every model call goes to the candidate; nothing else does.
  SendEachKind(tally, "candidate");

  EXPECT_EQ(tally.problem_count(), 0) << tally.Problems();
  EXPECT_EQ(State().value("rollbacks", 0), 0) << State().dump();
  for (const json& d : c_.Decisions()) {
    EXPECT_NE(d.value("action", ""), "ACTION_ROLLBACK") << d.dump();
    for (const json& g : d.value("gates", json::array())) {
      if (g.value("gate", "") != "error_rate") continue;
      EXPECT_EQ(g.value("candidate_value", 0.0), 0.0) << g.dump();
      EXPECT_EQ(g.value("production_value", 0.0), 0.0) << g.dump();
    }
  }
  // Each arm served every kind of model call, and every coding.
  for (const std::string cluster : {"production", "candidate"}) {
    for (Kind kind : kKinds) {
      if (cluster == "candidate" && !InScope(kind)) continue;
      EXPECT_GT(tally.served(cluster, kind), 0) << cluster << " " << KindName(kind);
    }
    for (const std::string coding : {"gzip", "br", "zstd"}) {
      EXPECT_GT(tally.compressed(cluster, coding), 0) << cluster << " " << coding;
    }
  }

  ExpectEveryRequestCounted(tally);
  const std::string metrics = Metrics();
  // Nothing counted as an error or a rejection, on either arm, live or
  // shadow; nothing left unjudged.
  EXPECT_LE(MetricValue(metrics, "understudy_errors_total", ""), 0) << metrics;
  EXPECT_LE(MetricValue(metrics, "understudy_rejections_total", ""), 0) << metrics;
  EXPECT_LE(MetricValue(metrics, "understudy_exchanges_unsupported_total", ""), 0) << metrics;
  // The shadow client was exercised on compressed answers too: the
  // candidate fake compressed more answers than the client saw from it.
  EXPECT_GT(MetricValue(metrics, "understudy_shadow_requests_total", "outcome=\"completed\""), 0)
      << metrics;
  const json stats = Http("GET", c_.candidate_url() + "/stats").Json();
  int64_t candidate_compressed_live = 0;
  for (const std::string coding : {"gzip", "br", "zstd"}) {
    candidate_compressed_live += tally.compressed("candidate", coding);
  }
  EXPECT_GT(stats.value("compressed", int64_t{0}), candidate_compressed_live) << stats.dump();
}

// The same mix with a candidate that fails 30% of its model calls: the
// judge rolls it back, production keeps serving everything, and the
// out-of-scope requests are as untouched as before.
TEST_F(MixedTrafficE2eTest, FailingCandidateUnderTheSameMixRollsBack) {
  Start({"--error-rate", "0.3"});
  Tally tally;
  {
    MixedTraffic traffic(c_, tally, 6, /*candidate_may_fail=*/true);
    const std::string phase =
        WaitForPhase({"PHASE_PROMOTED", "PHASE_ROLLED_BACK"}, absl::Minutes(3));
    traffic.Stop();
    ASSERT_EQ(phase, "PHASE_ROLLED_BACK") << Why() << tally.Problems();
  }
  bool judged = false;
  for (const json& d : c_.Decisions()) {
    if (d.value("action", "") == "ACTION_ROLLBACK" && d.value("actor", "") == "judge") judged = true;
  }
  EXPECT_TRUE(judged) << c_.Decisions().dump();
  // Rolled back: every request is production's again.
  SendEachKind(tally, "production");

  // Only the candidate's injected 500s went wrong for clients.
  EXPECT_EQ(tally.problem_count(), 0) << tally.Problems();
  EXPECT_GT(tally.candidate_errors(), 0);
  ExpectEveryRequestCounted(tally);
  const std::string metrics = Metrics();
  EXPECT_GT(MetricValue(metrics, "understudy_errors_total", "arm=\"candidate\""), 0) << metrics;
  EXPECT_LE(MetricValue(metrics, "understudy_errors_total", "arm=\"production\""), 0) << metrics;
  EXPECT_LE(MetricValue(metrics, "understudy_exchanges_unsupported_total", ""), 0) << metrics;
}

}  // namespace
}  // namespace understudy::e2e
