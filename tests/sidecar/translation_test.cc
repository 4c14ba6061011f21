// A cross-provider migration through the assembled sidecar: an OpenAI
// client, production on OpenAI, the candidate on Anthropic Messages
// (upstreams.candidate.api: anthropic). Both fake models check what real
// providers check (model name, key, anthropic-version, schema). Canary users
// get OpenAI answers translated from Anthropic ones, JSON and SSE; errors
// come back in OpenAI's schema; a request that cannot be translated stays
// on production; shadow calls are translated too.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdlib>
#include <nlohmann/json.hpp>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "examples/fake-model/fake_model.h"
#include "sidecar/sidecar.h"
#include "tests/common/test_util.h"
#include "tools/envoy_driver/envoy_driver.h"

namespace understudy::sidecar {
namespace {

namespace ed = envoy_driver;
namespace fm = fake_model;
using json = nlohmann::json;
using ::testing::HasSubstr;

constexpr char kProductionKey[] = "sk-prod-translation-test";
constexpr char kCandidateKey[] = "sk-ant-translation-test";

class TranslationTest : public ::testing::Test {
 protected:
  void SetUp() override {
    production_ = StartFake("gpt-4o", fm::ApiMode::kOpenAi, kProductionKey);
    candidate_ = StartFake("claude-sonnet-4-5", fm::ApiMode::kAnthropic, kCandidateKey);
    ASSERT_NE(production_, nullptr);
    ASSERT_NE(candidate_, nullptr);
    char dir[] = "/tmp/translation-test-XXXXXX";
    ASSERT_NE(mkdtemp(dir), nullptr);
    dir_ = dir;
    // The keys come from files, as in production (never in the config).
    ASSERT_OK(WriteFile(dir_ + "/prod.key", kProductionKey));
    ASSERT_OK(WriteFile(dir_ + "/cand.key", kCandidateKey));
    const std::string yaml = absl::StrReplaceAll(R"(
extproc: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
routing: {sticky_header: x-user-id}
upstreams:
  production: {url: PROD, api_key_file: DIR/prod.key}
  candidate:
    url: CAND
    api: anthropic
    api_key_file: DIR/cand.key
    request: {set_json: {model: claude-sonnet-4-5}}
shadow: {sample_rate: SAMPLE, timeout: 5s}
storage: {path: DIR/data}
)",
                                                 {{"PROD", Url(*production_)},
                                                  {"CAND", Url(*candidate_)},
                                                  {"SAMPLE", sample_rate_},
                                                  {"DIR", dir_}});
    absl::StatusOr<ConfigNode> root = ConfigNode::Parse(yaml, "test.yaml");
    ASSERT_OK(root);
    absl::StatusOr<SidecarConfig> config = ParseSidecarConfig(*root);
    ASSERT_OK(config);
    absl::StatusOr<std::unique_ptr<Sidecar>> s = Sidecar::Start(*std::move(config), {});
    ASSERT_OK(s);
    sidecar_ = std::move(*s);
    prod_upstream_ = ed::NewCurlUpstream(Url(*production_));
    cand_upstream_ = ed::NewCurlUpstream(Url(*candidate_));
    auto channel = grpc::CreateChannel(absl::StrCat("127.0.0.1:", sidecar_->extproc_port()),
                                       grpc::InsecureChannelCredentials());
    driver_ = std::make_unique<ed::EnvoyDriver>(
        channel, ed::FilterChain::TwoFilter(),
        std::map<std::string, ed::Upstream*>{{"production", prod_upstream_.get()},
                                             {"candidate", cand_upstream_.get()}});
  }
  void TearDown() override {
    driver_.reset();
    sidecar_.reset();
    if (production_) production_->Stop();
    if (candidate_) candidate_->Stop();
    std::system(("rm -rf " + dir_).c_str());
  }

  static std::unique_ptr<fm::FakeModelServer> StartFake(const std::string& model, fm::ApiMode api,
                                                        const std::string& key) {
    fm::FakeModelOptions o;
    o.corpus_path = FAKE_MODEL_CORPUS;
    o.knobs.model = model;
    o.api = api;
    o.api_key = key;
    o.model_check = fm::ModelCheck::kStrict;
    absl::StatusOr<std::unique_ptr<fm::FakeModelServer>> s = fm::FakeModelServer::Start(o);
    return s.ok() ? *std::move(s) : nullptr;
  }
  static std::string Url(const fm::FakeModelServer& s) {
    return absl::StrCat("http://127.0.0.1:", s.port());
  }
  static absl::Status WriteFile(const std::string& path, const std::string& text) {
    FILE* f = std::fopen(path.c_str(), "w");
    if (f == nullptr) return absl::InternalError(path);
    std::fputs(text.c_str(), f);
    std::fclose(f);
    return absl::OkStatus();
  }

  // Chat sends an OpenAI chat request as a client of production would.
  ed::DriverResult Chat(const std::string& user, json body) {
    ed::HttpRequest request;
    request.headers = {{"x-user-id", user},
                       {"content-type", "application/json"},
                       {"authorization", std::string("Bearer ") + kProductionKey}};
    request.body_chunks = {body.dump()};
    absl::StatusOr<ed::DriverResult> r = driver_->Send(request);
    EXPECT_OK(r);
    return r.ok() ? *r : ed::DriverResult{};
  }
  static json Question(bool stream = false) {
    json body = {{"model", "gpt-4o"},
                 {"messages",
                  {{{"role", "system"}, {"content", "Answer briefly."}},
                   {{"role", "user"}, {"content", "What is the capital of France?"}}}}};
    if (stream) {
      body["stream"] = true;
      body["stream_options"] = {{"include_usage", true}};
    }
    return body;
  }
  void AllToCandidate() { ASSERT_OK(sidecar_->controller().SetWeight("test", 100).status()); }

  std::string sample_rate_ = "0";
  std::unique_ptr<fm::FakeModelServer> production_, candidate_;
  std::string dir_;
  std::unique_ptr<Sidecar> sidecar_;
  std::unique_ptr<ed::Upstream> prod_upstream_, cand_upstream_;
  std::unique_ptr<ed::EnvoyDriver> driver_;
};

// A canary user's JSON request is answered by the Anthropic candidate, in
// OpenAI's schema and with the model name the client asked for; the
// candidate got its own key and model and never the client's key.
TEST_F(TranslationTest, CanaryJsonAnswerIsTranslatedBack) {
  AllToCandidate();
  ed::DriverResult r = Chat("u1", Question());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_THAT(r.violations, ::testing::IsEmpty());
  EXPECT_EQ(r.cluster, "candidate");
  json answer = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(answer.is_object()) << r.body;
  EXPECT_EQ(answer.value("object", ""), "chat.completion");
  EXPECT_EQ(answer.value("model", ""), "gpt-4o");
  EXPECT_THAT(answer["choices"][0]["message"].value("content", ""), HasSubstr("Paris"));
  EXPECT_EQ(answer["choices"][0].value("finish_reason", ""), "stop");
  EXPECT_GT(answer["usage"].value("completion_tokens", 0), 0);
  std::map<std::string, std::string> sent(r.upstream_headers.begin(), r.upstream_headers.end());
  EXPECT_EQ(sent["x-api-key"], kCandidateKey);
  EXPECT_EQ(sent.count("authorization"), 0u);
  EXPECT_FALSE(sent["anthropic-version"].empty());
  const fm::FakeModelCounters c = candidate_->Counters();
  EXPECT_EQ(c.messages, 1);
  EXPECT_EQ(c.unauthorized, 0);
  EXPECT_EQ(c.model_not_found, 0);
  EXPECT_EQ(production_->Counters().requests, 0);
}

// An SSE answer is translated event by event into OpenAI chunks, with the
// usage chunk the client asked for and [DONE] at the end.
TEST_F(TranslationTest, CanaryStreamIsTranslatedEventByEvent) {
  AllToCandidate();
  ed::DriverResult r = Chat("u2", Question(/*stream=*/true));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.cluster, "candidate");
  std::string text;
  bool usage = false, done = false;
  for (absl::string_view line : absl::StrSplit(r.body, '\n')) {
    if (!absl::ConsumePrefix(&line, "data: ")) continue;
    if (line == "[DONE]") {
      done = true;
      continue;
    }
    json chunk = json::parse(line, nullptr, false);
    ASSERT_TRUE(chunk.is_object()) << line;
    EXPECT_EQ(chunk.value("object", ""), "chat.completion.chunk");
    if (chunk.contains("usage") && chunk["usage"].is_object()) usage = true;
    if (chunk.contains("choices") && !chunk["choices"].empty()) {
      text += chunk["choices"][0]["delta"].value("content", "");
    }
  }
  EXPECT_THAT(text, HasSubstr("Paris"));
  EXPECT_TRUE(usage);
  EXPECT_TRUE(done);
  EXPECT_EQ(candidate_->Counters().streamed, 1);
}

// The candidate's error answer reaches the client in OpenAI's error schema.
TEST_F(TranslationTest, CandidateErrorComesBackInTheClientsSchema) {
  AllToCandidate();
  fm::FakeModelKnobs k = candidate_->Knobs();
  k.error_rate = 1;
  candidate_->SetKnobs(k);
  ed::DriverResult r = Chat("u3", Question());
  EXPECT_EQ(r.cluster, "candidate");
  // The fake answers Anthropic's 529 overloaded_error: an OpenAI client gets
  // 503, the status OpenAI uses for an overloaded server.
  EXPECT_EQ(r.status, 503) << r.body;
  json answer = json::parse(r.body, nullptr, false);
  ASSERT_TRUE(answer.is_object()) << r.body;
  ASSERT_TRUE(answer.contains("error")) << r.body;
  EXPECT_TRUE(answer["error"].contains("message"));
  EXPECT_TRUE(answer["error"].contains("type"));
  EXPECT_FALSE(answer.contains("type")) << "still Anthropic's schema: " << r.body;
}

// A request the target cannot express (n = 2 choices) is never sent half
// translated: it is served by production, as the client sent it, and
// counted; the exchange record says why.
TEST_F(TranslationTest, UntranslatableRequestStaysOnProduction) {
  AllToCandidate();
  json body = Question();
  body["n"] = 2;
  ed::DriverResult r = Chat("u4", body);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.cluster, "production");
  EXPECT_EQ(json::parse(r.body, nullptr, false).value("model", ""), "gpt-4o");
  EXPECT_EQ(candidate_->Counters().requests, 0);
  std::map<std::string, std::string> sent(r.upstream_headers.begin(), r.upstream_headers.end());
  EXPECT_THAT(sent[std::string(kUntranslatableHeader)], HasSubstr("n"));
  EXPECT_EQ(sent["authorization"], std::string("Bearer ") + kProductionKey);
  EXPECT_EQ(sidecar_->extproc_stats().requests_untranslatable.Get(), 1u);
}

class ShadowTranslationTest : public TranslationTest {
 protected:
  void SetUp() override {
    sample_rate_ = "1.0";
    TranslationTest::SetUp();
  }
};

// In the shadow stage every production request is mirrored to the Anthropic
// candidate, translated, and the two answers are compared across providers.
TEST_F(ShadowTranslationTest, ShadowCallsAreTranslatedAndCompared) {
  ed::DriverResult r = Chat("u5", Question());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.cluster, "production");
  const absl::Time deadline = absl::Now() + absl::Seconds(10);
  while (!sidecar_->store().GetComparison(r.request_id).ok() && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  absl::StatusOr<understudy::v1::Comparison> c = sidecar_->store().GetComparison(r.request_id);
  ASSERT_OK(c);
  EXPECT_NE(c->verdict(), understudy::v1::VERDICT_CANDIDATE_ERROR) << c->DebugString();
  EXPECT_EQ(candidate_->Counters().messages, 1);
  EXPECT_EQ(candidate_->Counters().unauthorized, 0);
  EXPECT_EQ(candidate_->Counters().bad_requests, 0);
}

}  // namespace
}  // namespace understudy::sidecar
