// tests/shadow/mirror_test.cc: the mirroring policy (skip rules, sampling,
// budget, transforms) and Dispatch over real HTTP.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "absl/strings/str_cat.h"
#include "shadow/shadow.h"
#include "tests/common/test_util.h"
#include "tests/shadow/test_server.h"

namespace understudy::shadow {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string FakeKey(std::string_view tag) {
  return absl::StrCat("test-", std::string(tag), "-", std::string(24, 'z'), getpid());
}

v1::Exchange Live(std::string id, v1::Arm arm = v1::ARM_PRODUCTION) {
  v1::Exchange e;
  e.set_request_id(std::move(id));
  e.set_arm(arm);
  e.set_source(v1::SOURCE_LIVE);
  e.set_method("POST");
  e.set_path("/v1/chat/completions");
  e.mutable_request()->set_body(
      R"({"model":"prod-model","messages":[{"role":"user","content":"hi"}]})");
  return e;
}

void AddHeader(v1::Exchange* e, std::string key, std::string value) {
  v1::Header* h = e->mutable_request()->add_headers();
  h->set_key(std::move(key));
  h->set_value(std::move(value));
}

std::string HeaderValue(const UpstreamRequest& r, std::string_view key, bool* found) {
  for (const auto& [k, v] : r.headers) {
    if (k == key) {
      *found = true;
      return v;
    }
  }
  *found = false;
  return "";
}

class MirrorTest : public ::testing::Test {
 protected:
  MirrorTest() {
    config_.enabled = true;
    config_.production.url = server_.url();
    config_.production.api_key = FakeKey("prod");
    config_.candidate.url = server_.url();
    config_.candidate.api_key = FakeKey("cand");
    config_.sample_rate = 1.0;
  }

  void StartClient() {
    absl::StatusOr<std::unique_ptr<UpstreamClient>> c = UpstreamClient::Start(config_);
    ASSERT_OK(c);
    client_ = *std::move(c);
  }

  testing::TestServer server_;
  ShadowConfig config_;
  ManualClock clock_;
  std::unique_ptr<UpstreamClient> client_;
};

// Each skip rule gives its reason and is counted.
TEST_F(MirrorTest, SkipRulesGiveReasons) {
  config_.skip.paths = {"^/v1/embeddings"};
  config_.skip.methods = {"PUT"};
  config_.skip.headers = {"x-understudy-no-shadow"};
  StartClient();
  Mirror mirror(config_, *client_, clock_);

  EXPECT_TRUE(mirror.Decide(Live("a")).shadow);
  v1::Exchange e = Live("b");
  e.set_path("/v1/embeddings");
  EXPECT_EQ(mirror.Decide(e).skip_reason, "path");
  e = Live("c");
  e.set_method("GET");
  EXPECT_EQ(mirror.Decide(e).skip_reason, "method");
  e = Live("d");
  e.set_method("PUT");
  EXPECT_EQ(mirror.Decide(e).skip_reason, "method");
  e = Live("e");
  AddHeader(&e, "x-understudy-no-shadow", "1");
  EXPECT_EQ(mirror.Decide(e).skip_reason, "header");
  e = Live("f");
  e.set_source(v1::SOURCE_SHADOW);
  EXPECT_EQ(mirror.Decide(e).skip_reason, "not_live");
  e = Live("g");
  e.set_arm(v1::ARM_UNSPECIFIED);
  EXPECT_EQ(mirror.Decide(e).skip_reason, "arm");
  e = Live("h");
  e.mutable_request()->set_body_truncated(true);
  EXPECT_EQ(mirror.Decide(e).skip_reason, "truncated");
  // reverse_rate 0: live candidate exchanges are not sent back.
  Mirror::Plan p = mirror.Decide(Live("i", v1::ARM_CANDIDATE));
  EXPECT_FALSE(p.reverse);
  EXPECT_EQ(p.skip_reason, "sample");

  ShadowStats stats = mirror.Stats();
  EXPECT_EQ(stats.decided, 9);
  EXPECT_EQ(stats.shadowed, 1);
  EXPECT_EQ(stats.skipped["path"], 1);
  EXPECT_EQ(stats.skipped["method"], 2);
  EXPECT_EQ(stats.skipped["header"], 1);
  EXPECT_EQ(stats.skipped["sample"], 1);
}

// A disabled config mirrors nothing.
TEST_F(MirrorTest, DisabledMirrorsNothing) {
  config_.enabled = false;
  StartClient();
  Mirror mirror(config_, *client_, clock_);
  Mirror::Plan p = mirror.Decide(Live("a"));
  EXPECT_FALSE(p.shadow);
  EXPECT_EQ(p.skip_reason, "disabled");
}

// Sampling hits about the configured rates and is the same on every run.
TEST_F(MirrorTest, SamplingIsDeterministicAndNearTheRate) {
  config_.sample_rate = 0.3;
  config_.noise_rate = 0.5;
  config_.reverse_rate = 0.2;
  StartClient();
  Mirror first(config_, *client_, clock_);
  Mirror second(config_, *client_, clock_);
  constexpr int kN = 20000;
  int shadowed = 0, noise = 0, reverse = 0;
  for (int i = 0; i < kN; ++i) {
    const std::string id = absl::StrCat("req-", i);
    Mirror::Plan a = first.Decide(Live(id));
    Mirror::Plan b = second.Decide(Live(id));
    ASSERT_EQ(a.shadow, b.shadow) << id;
    ASSERT_EQ(a.noise, b.noise) << id;
    EXPECT_FALSE(a.noise && !a.shadow);
    shadowed += a.shadow;
    noise += a.noise;
    Mirror::Plan r = first.Decide(Live(id, v1::ARM_CANDIDATE));
    EXPECT_FALSE(r.shadow);
    reverse += r.reverse;
  }
  // Binomial: 5 sigma is about 0.016 for 20000 draws at 0.3.
  EXPECT_NEAR(shadowed / double(kN), 0.3, 0.02);
  EXPECT_NEAR(noise / double(shadowed), 0.5, 0.03);
  EXPECT_NEAR(reverse / double(kN), 0.2, 0.02);
  EXPECT_EQ(SampleDraw("shadow", "req-7"), SampleDraw("shadow", "req-7"));
  EXPECT_NE(SampleDraw("shadow", "req-7"), SampleDraw("noise", "req-7"));
}

// Once the last hour's spend reaches the budget, mirroring stops until the
// spend slides out of the window.
TEST_F(MirrorTest, BudgetStopsMirroring) {
  config_.budget_per_hour = 1.0;
  config_.reverse_rate = 1.0;
  StartClient();
  Mirror mirror(config_, *client_, clock_);
  EXPECT_TRUE(mirror.Decide(Live("a")).shadow);
  mirror.RecordCost(0.6);
  clock_.Advance(absl::Minutes(30));
  EXPECT_TRUE(mirror.Decide(Live("b")).shadow);
  mirror.RecordCost(0.5);
  Mirror::Plan p = mirror.Decide(Live("c"));
  EXPECT_FALSE(p.shadow);
  EXPECT_EQ(p.skip_reason, "budget");
  EXPECT_EQ(mirror.Decide(Live("d", v1::ARM_CANDIDATE)).skip_reason, "budget");
  ShadowStats stats = mirror.Stats();
  EXPECT_EQ(stats.over_budget, 2);
  EXPECT_EQ(stats.skipped["budget"], 2);
  EXPECT_NEAR(stats.budget_used, 1.1, 1e-9);
  // The first 0.6 leaves the window after an hour; 0.5 < 1.0 remains.
  clock_.Advance(absl::Minutes(31));
  EXPECT_TRUE(mirror.Decide(Live("e")).shadow);
  EXPECT_NEAR(mirror.Stats().budget_used, 0.5, 1e-9);
}

// The candidate request gets the transform; credentials, hop-by-hop and
// internal headers never travel; production re-sends are unchanged.
TEST_F(MirrorTest, BuildRequestAppliesTransformAndDropsSecrets) {
  config_.candidate.request.set_json = {{"model", "\"gpt-5-mini\""}, {"temperature", "0"}, {"user", "null"}};
  config_.candidate.request.set_headers = {{"x-a", "b"}};
  config_.candidate.request.remove_headers = {"x-b"};
  StartClient();
  Mirror mirror(config_, *client_, clock_);
  const std::string live_key = FakeKey("live");
  v1::Exchange live = Live("r1");
  live.mutable_request()->set_body(
      R"({"model":"prod-model","user":"u1","stream":true,"messages":[{"role":"user","content":"hi"}]})");
  for (const auto& [k, v] :
       std::vector<std::pair<std::string, std::string>>{{"authorization", "Bearer " + live_key},
                                                        {"x-api-key", live_key},
                                                        {"cookie", "s=1"},
                                                        {"host", "api.example"},
                                                        {"content-length", "120"},
                                                        {"transfer-encoding", "chunked"},
                                                        {"connection", "keep-alive"},
                                                        {":path", "/v1/chat/completions"},
                                                        {"x-envoy-expected-rq-timeout-ms", "1000"},
                                                        {"x-understudy-arm", "production"},
                                                        {"accept-encoding", "gzip"},
                                                        {"x-b", "drop-me"},
                                                        {"x-keep", "kept"},
                                                        {"content-type", "application/json"}}) {
    AddHeader(&live, k, v);
  }

  UpstreamRequest cand = mirror.BuildRequest(live, v1::ARM_CANDIDATE);
  EXPECT_EQ(cand.target, v1::ARM_CANDIDATE);
  EXPECT_EQ(cand.source, v1::SOURCE_SHADOW);
  EXPECT_EQ(cand.request_id, "r1");
  EXPECT_EQ(cand.method, "POST");
  EXPECT_EQ(cand.path, "/v1/chat/completions");
  EXPECT_TRUE(cand.stream);
  nlohmann::json body = nlohmann::json::parse(cand.body);
  EXPECT_EQ(body["model"], "gpt-5-mini");
  EXPECT_EQ(body["temperature"], 0);
  EXPECT_FALSE(body.contains("user"));
  EXPECT_EQ(body["messages"][0]["content"], "hi");
  std::vector<std::string> names;
  for (const auto& [k, v] : cand.headers) names.push_back(k);
  // Accept-Encoding goes along: the candidate may compress as production
  // may, and both answers are decoded alike (shadow/answer.h).
  EXPECT_THAT(names,
              ::testing::UnorderedElementsAre("accept-encoding", "x-keep", "content-type", "x-a"));
  bool found;
  EXPECT_EQ(HeaderValue(cand, "x-a", &found), "b");
  for (const auto& [k, v] : cand.headers) EXPECT_THAT(v, Not(HasSubstr(live_key)));

  UpstreamRequest noise = mirror.BuildRequest(live, v1::ARM_PRODUCTION);
  EXPECT_EQ(noise.source, v1::SOURCE_NOISE);
  EXPECT_EQ(noise.body, live.request().body());
  EXPECT_EQ(HeaderValue(noise, "x-b", &found), "drop-me");
  HeaderValue(noise, "authorization", &found);
  EXPECT_FALSE(found);

  // Reverse shadow: a live candidate exchange re-sent to production.
  live.set_arm(v1::ARM_CANDIDATE);
  EXPECT_EQ(mirror.BuildRequest(live, v1::ARM_PRODUCTION).source, v1::SOURCE_SHADOW);
}

// ShapeJsonBody keeps the other fields in order, follows dotted paths
// (creating objects), removes with null, and rejects non-objects.
TEST_F(MirrorTest, ShapeJsonBodyRewritesFieldsByPath) {
  RequestShaping s;
  s.set_json = {{"model", "\"b\""}, {"reasoning.effort", "\"low\""}, {"user", "null"},
                {"metadata.gone", "null"}};
  absl::StatusOr<std::string> out = ShapeJsonBody(R"({"model":"a","n":1,"user":"u"})", s);
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, R"({"model":"b","n":1,"reasoning":{"effort":"low"}})");
  EXPECT_FALSE(ShapeJsonBody("[1,2]", s).ok());
  EXPECT_FALSE(ShapeJsonBody("not json", s).ok());
  RequestShaping through_scalar;
  through_scalar.set_json = {{"model.name", "\"x\""}};
  absl::StatusOr<std::string> bad = ShapeJsonBody(R"({"model":"a"})", through_scalar);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(bad.status().message()), ::testing::HasSubstr("set_json.model.name"));
}

// Cost matches the exact model or the longest prefix.
TEST_F(MirrorTest, CostUsesLongestPrefixPrice) {
  std::map<std::string, compare::ModelPrice> prices;
  prices["gpt"] = {1, 1, -1};
  prices["gpt-5"] = {2, 8, 0.5};
  compare::Usage usage;
  usage.input_tokens = 1000000;
  usage.output_tokens = 500000;
  usage.cached_tokens = 200000;
  EXPECT_NEAR(*Cost("gpt-5-mini", usage, prices), 0.8 * 2 + 0.2 * 0.5 + 0.5 * 8, 1e-9);
  EXPECT_NEAR(*Cost("gpt-4o", usage, prices), 1.0 + 0.5, 1e-9);
  EXPECT_FALSE(Cost("claude", usage, prices).has_value());
  EXPECT_FALSE(Cost("", usage, prices).has_value());
}

// Dispatch sends the transformed request to the candidate with the
// candidate's key, records the shadow spend and counts everything.
TEST_F(MirrorTest, DispatchSendsShadowAndNoiseAndRecordsSpend) {
  config_.noise_rate = 1.0;
  config_.budget_per_hour = 100;
  config_.candidate.request.set_json = {{"model", "\"cand-model\""}};
  StartClient();
  std::map<std::string, compare::ModelPrice> prices;
  prices["cand-model"] = {1, 2, -1};  // 1000 in + 500 out → 0.002
  prices["prod-model"] = {4, 4, -1};  // → 0.006
  Mirror mirror(config_, *client_, clock_, prices);
  v1::Exchange live = Live("d1");
  const std::string live_key = FakeKey("live");
  AddHeader(&live, "authorization", "Bearer " + live_key);

  absl::Mutex mu;
  std::vector<UpstreamResult> results;
  Mirror::Plan plan = mirror.Dispatch(live, [&](UpstreamResult r) {
    absl::MutexLock lock(&mu);
    results.push_back(std::move(r));
  });
  EXPECT_TRUE(plan.shadow);
  EXPECT_TRUE(plan.noise);
  ASSERT_TRUE(client_->WaitIdle(absl::Seconds(30)));
  {
    absl::MutexLock lock(&mu);
    ASSERT_EQ(results.size(), 2u);
    for (const UpstreamResult& r : results) {
      EXPECT_EQ(r.outcome, rollout::OutcomeClass::kOk);
      EXPECT_THAT(r.exchange.SerializeAsString(), Not(HasSubstr(live_key)));
    }
  }
  std::vector<testing::ReceivedRequest> got = server_.Requests();
  ASSERT_EQ(got.size(), 2u);
  int candidate_seen = 0;
  for (const testing::ReceivedRequest& r : got) {
    nlohmann::json body = nlohmann::json::parse(r.body);
    const std::string auth = r.Header("authorization");
    EXPECT_THAT(auth, Not(HasSubstr(live_key)));
    if (body["model"] == "cand-model") {
      ++candidate_seen;
      EXPECT_EQ(auth, "Bearer " + config_.candidate.api_key);
    } else {
      EXPECT_EQ(body["model"], "prod-model");
      EXPECT_EQ(auth, "Bearer " + config_.production.api_key);
    }
  }
  EXPECT_EQ(candidate_seen, 1);
  ShadowStats stats = mirror.Stats();
  EXPECT_EQ(stats.shadowed, 1);
  EXPECT_EQ(stats.noise, 1);
  EXPECT_EQ(stats.sent, 2);
  EXPECT_EQ(stats.completed, 2);
  EXPECT_NEAR(stats.budget_used, 0.002 + 0.006, 1e-9);
}

}  // namespace
}  // namespace understudy::shadow
