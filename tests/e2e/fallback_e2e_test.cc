// The canary arm for real, with fallback, in the recommended Envoy set-up
// (examples/envoy/envoy.yaml, played by the driver's FilterChain::
// WithFallback()): real `understudy serve`, real fake-model processes that
// check model names and keys as providers do. Two migrations, the same test:
//   - same provider, new model name (gpt-4o → gpt-5-mini on one API);
//   - cross provider (an OpenAI client; the candidate speaks Anthropic
//     Messages, so requests and answers are translated, SSE included).
// Canary users get the candidate's answers in the client's API; the
// candidate's key reaches only the candidate and the client's only
// production; shadow comparisons work across the two; a candidate that
// fails (5xx, 429) is answered by production, restored to the client's
// request, and the failure is counted against the candidate.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "tests/e2e/e2e_cluster.h"

namespace understudy::e2e {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

struct Migration {
  const char* name;
  const char* candidate_api;    // the fake's --api and upstreams.candidate.api
  const char* candidate_model;  // the one model the candidate serves
};

std::string HeaderOf(const envoy_driver::Headers& headers, const std::string& key) {
  for (const auto& [k, v] : headers) {
    if (k == key) return v;
  }
  return "";
}

class FallbackE2eTest : public E2eFixture, public ::testing::WithParamInterface<Migration> {
 protected:
  void Start() {
    const Migration& m = GetParam();
    FakeOptions candidate;
    candidate.api = m.candidate_api;
    candidate.model = m.candidate_model;
    ASSERT_OK(c_.StartFakes({}, candidate));
    c_.UseChain(envoy_driver::FilterChain::WithFallback());
    SidecarKnobs knobs;
    knobs.candidate_api = m.candidate_api;
    knobs.candidate_model = m.candidate_model;
    ASSERT_OK(c_.StartSidecar(knobs));
  }

  bool Anthropic() const { return std::string(GetParam().candidate_api) == "anthropic"; }

  // ExpectCandidateAttempt checks the request the candidate got: its own
  // key in its own header, nothing of the client's.
  void ExpectCandidateCredentials(const DriverResult& r) {
    if (Anthropic()) {
      EXPECT_EQ(HeaderOf(r.upstream_headers, "x-api-key"), c_.candidate_key());
      EXPECT_EQ(HeaderOf(r.upstream_headers, "authorization"), "");
      EXPECT_EQ(HeaderOf(r.upstream_headers, "anthropic-version"), "2023-06-01");
    } else {
      EXPECT_EQ(HeaderOf(r.upstream_headers, "authorization"), "Bearer " + c_.candidate_key());
    }
  }

  static envoy_driver::HttpRequest Chat(const std::string& user, bool stream) {
    envoy_driver::HttpRequest req;
    req.headers = {{"content-type", "application/json"}, {"x-user-id", user}};
    req.body_chunks = {absl::StrCat(
        R"({"model":"gpt-4o","messages":[{"role":"user","content":"What is the capital of France?"}])",
        stream ? R"(,"stream":true,"stream_options":{"include_usage":true})" : "", "}")};
    return req;
  }

  double Metric(const std::string& name, const std::string& label) {
    return MetricValue(c_.Admin("GET", "/metrics").body, name, label);
  }
};

TEST_P(FallbackE2eTest, CanaryReachesTheCandidateAndFailuresFallBackToProduction) {
  Start();

  // 1. Shadow stage: every production answer is compared with the
  //    candidate's, across providers in the second run.
  for (int i = 0; i < 8; ++i) {
    absl::StatusOr<DriverResult> r = c_.SendRequest(Chat(absl::StrCat("shadow-user-", i), false));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_EQ(r->cluster, "production");
    EXPECT_THAT(r->attempt_clusters, ElementsAre("production"));
  }
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (Metric("understudy_comparisons_total", "") < 8 && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_GE(Metric("understudy_comparisons_total", ""), 8) << c_.SidecarErrors();
  EXPECT_LE(Metric("understudy_shadow_requests_total", "outcome=\"failed\""), 0);

  // 2. Everyone on the candidate: its answers, in the client's API.
  absl::StatusOr<testing::CommandResult> w =
      c_.Cli({"set-weight", "100", "--actor", "e2e-operator"});
  ASSERT_TRUE(w.ok()) << w.status();
  ASSERT_EQ(w->exit_code, 0) << w->err;
  for (bool stream : {false, true}) {
    SCOPED_TRACE(stream ? "SSE" : "JSON");
    absl::StatusOr<DriverResult> r = c_.SendRequest(Chat("canary-user", stream));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << r->body;
    EXPECT_TRUE(r->violations.empty()) << r->violations.front();
    EXPECT_EQ(r->cluster, "candidate");
    EXPECT_THAT(r->attempt_clusters, ElementsAre("candidate"));
    ExpectCandidateCredentials(*r);
    if (stream) {
      EXPECT_THAT(r->body, HasSubstr("\"object\":\"chat.completion.chunk\""));
      EXPECT_THAT(r->body, HasSubstr("data: [DONE]"));
    } else {
      json answer = json::parse(r->body, nullptr, false);
      ASSERT_TRUE(answer.is_object()) << r->body;
      EXPECT_EQ(answer.value("object", ""), "chat.completion");
      EXPECT_THAT(answer["choices"][0]["message"].value("content", ""), HasSubstr("Paris"));
    }
  }
  json stats = Http("GET", c_.candidate_url() + "/stats").Json();
  EXPECT_EQ(stats.value("unauthorized", -1), 0) << stats.dump();
  EXPECT_EQ(stats.value("model_not_found", -1), 0) << stats.dump();
  EXPECT_EQ(stats.value("bad_requests", -1), 0) << stats.dump();

  // 3. The candidate fails (5xx, then 429): production answers, with the
  //    client's own request, and the candidate is charged with the failure
  //    (a 5xx as an error, a 429 as a rejection, as when it answers itself).
  auto candidate_errors = [&] {
    return std::max(0.0, Metric("understudy_errors_total", "arm=\"candidate\""));
  };
  auto candidate_rejections = [&] {
    return std::max(0.0, Metric("understudy_rejections_total", "arm=\"candidate\""));
  };
  const double errors_before = candidate_errors();
  const double rejections_before = candidate_rejections();
  int failures = 0;
  for (const char* knob : {R"({"error_rate":1.0})", R"({"error_rate":0,"rate_limit_rate":1.0})"}) {
    ASSERT_EQ(c_.CandidateControl(knob).status, 200);
    for (int i = 0; i < 3; ++i, ++failures) {
      SCOPED_TRACE(absl::StrCat(knob, " #", i));
      absl::StatusOr<DriverResult> r = c_.SendRequest(Chat(absl::StrCat("unlucky-", i), i == 2));
      ASSERT_TRUE(r.ok()) << r.status();
      EXPECT_TRUE(r->violations.empty()) << r->violations.front();
      ASSERT_EQ(r->status, 200) << r->body;
      EXPECT_EQ(r->cluster, "production");
      EXPECT_THAT(r->attempt_clusters, ElementsAre("candidate", "production"));
      EXPECT_EQ(HeaderOf(r->upstream_headers, "x-understudy-arm"), "production");
      ASSERT_EQ(r->attempt_statuses.size(), 2u);
      EXPECT_TRUE(r->attempt_statuses[0] >= 500 || r->attempt_statuses[0] == 429)
          << r->attempt_statuses[0];
      // Production got the client's request back: its key, its path, no
      // trace of the candidate's key or API.
      EXPECT_EQ(HeaderOf(r->upstream_headers, "authorization"), "Bearer " + c_.production_key());
      EXPECT_EQ(HeaderOf(r->upstream_headers, "x-api-key"), "");
      EXPECT_EQ(HeaderOf(r->upstream_headers, "anthropic-version"), "");
      for (const auto& [k, v] : r->upstream_headers) {
        EXPECT_THAT(v, ::testing::Not(HasSubstr(c_.candidate_key()))) << k;
      }
      if (i == 2) {
        EXPECT_THAT(r->body, HasSubstr("\"model\":\"gpt-4o"));  // production's stream
        EXPECT_THAT(r->body, HasSubstr("data: [DONE]"));
      } else {
        json answer = json::parse(r->body, nullptr, false);
        ASSERT_TRUE(answer.is_object()) << r->body;
        EXPECT_THAT(answer.value("model", ""), HasSubstr("gpt-4o"));
      }
    }
  }
  const absl::Time until = absl::Now() + absl::Seconds(30);
  while ((candidate_errors() < errors_before + 3 ||
          candidate_rejections() < rejections_before + 3) &&
         absl::Now() < until) {
    absl::SleepFor(absl::Milliseconds(100));
  }
  EXPECT_EQ(candidate_errors(), errors_before + 3) << c_.Admin("GET", "/metrics").body;
  EXPECT_EQ(candidate_rejections(), rejections_before + 3);
  EXPECT_EQ(Metric("understudy_fallbacks_total", "result=\"production\""), failures);
  EXPECT_LE(Metric("understudy_fallbacks_total", "result=\"no_plan\""), 0);

  // 4. With fallback off the client sees the candidate's failure.
  ASSERT_EQ(c_.CandidateControl(R"({"rate_limit_rate":0,"error_rate":1.0})").status, 200);
  ASSERT_EQ(c_.StopSidecar(), std::optional<int>(0));
  SidecarKnobs off;
  off.candidate_api = GetParam().candidate_api;
  off.candidate_model = GetParam().candidate_model;
  off.fallback = false;
  ASSERT_OK(c_.StartSidecar(off));
  absl::StatusOr<DriverResult> r = c_.SendRequest(Chat("unlucky-off", false));
  ASSERT_TRUE(r.ok()) << r.status();
  // The candidate's own failure, in the client's API: the fake Anthropic
  // model's overload (529) reads 503 in OpenAI's schema.
  EXPECT_EQ(r->status, Anthropic() ? 503 : 500) << r->body;
  EXPECT_THAT(r->body, HasSubstr("routing.fallback"));
  EXPECT_EQ(Metric("understudy_fallbacks_total", "result=\"off\""), 1);
}

INSTANTIATE_TEST_SUITE_P(
    Migrations, FallbackE2eTest,
    ::testing::Values(Migration{"SameProviderNewModel", "openai", "gpt-5-mini"},
                      Migration{"OpenAiClientAnthropicCandidate", "anthropic", "claude-sonnet-4-5"}),
    [](const ::testing::TestParamInfo<Migration>& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace understudy::e2e
