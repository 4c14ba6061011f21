// Tests for the Scrubber: secret headers never survive; bodies follow the mode.
#include "storage/privacy.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/common/test_util.h"

namespace understudy::storage {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

v1::Exchange SecretExchange() {
  v1::Exchange e;
  e.set_request_id("r1");
  // Built at run time so the repository holds nothing that looks like a key.
  e.set_path("/v1/chat?key=sk-" + std::string("abcdefghijkl") + "mnopqrstuvwx");
  auto add = [](v1::HttpMessage* m, const char* k, const char* v) {
    v1::Header* h = m->add_headers();
    h->set_key(k);
    h->set_value(v);
  };
  add(e.mutable_request(), "Authorization", "Bearer secret-token-1");
  add(e.mutable_request(), "x-api-key", "secret-key-2");
  add(e.mutable_request(), "cookie", "session=secret-3");
  add(e.mutable_request(), "x-internal-token", "secret-4");
  add(e.mutable_request(), "content-type", "application/json");
  add(e.mutable_response(), "set-cookie", "id=secret-5");
  e.mutable_request()->set_body(R"({"messages":[{"role":"user","content":"my ssn"}],"user":"bob"})");
  e.mutable_response()->set_body("data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n");
  return e;
}

class PrivacyTest : public ::testing::Test {
 protected:
  std::unique_ptr<Scrubber> Make(BodyMode mode) {
    PrivacyConfig c;
    c.body_mode = mode;
    c.redact_json_paths = {"messages[*].content", "$.user", "choices[*].delta.content"};
    c.redact_patterns = DefaultRedactPatterns();
    c.secret_headers = {"X-Internal-Token"};
    absl::StatusOr<std::unique_ptr<Scrubber>> s = Scrubber::Create(c);
    EXPECT_OK(s);
    return s.ok() ? *std::move(s) : nullptr;
  }
};

// Every built-in and configured secret header is dropped in every mode.
TEST_F(PrivacyTest, DropsSecretHeadersInEveryMode) {
  for (BodyMode mode : {BodyMode::kFull, BodyMode::kRedacted, BodyMode::kHashOnly, BodyMode::kNone}) {
    v1::Exchange e = SecretExchange();
    Make(mode)->Scrub(&e);
    std::string dump = e.DebugString();
    for (const char* secret : {"secret-token-1", "secret-key-2", "secret-3", "secret-4", "secret-5"}) {
      EXPECT_THAT(dump, Not(HasSubstr(secret))) << "mode " << static_cast<int>(mode);
    }
    ASSERT_EQ(e.request().headers_size(), 1);
    EXPECT_EQ(e.request().headers(0).key(), "content-type");
  }
}

// Redacted mode replaces JSON paths in a JSON body and in SSE data lines.
TEST_F(PrivacyTest, RedactedModeReplacesJsonPathsInJsonAndSse) {
  v1::Exchange e = SecretExchange();
  Make(BodyMode::kRedacted)->Scrub(&e);
  EXPECT_THAT(e.request().body(), Not(HasSubstr("my ssn")));
  EXPECT_THAT(e.request().body(), Not(HasSubstr("bob")));
  EXPECT_THAT(e.request().body(), HasSubstr("\"role\":\"user\""));
  EXPECT_THAT(e.request().body(), HasSubstr("[REDACTED]"));
  EXPECT_THAT(e.response().body(), Not(HasSubstr("\"hi\"")));
  EXPECT_THAT(e.response().body(), HasSubstr("data: [DONE]"));
  // The default patterns catch the key in the query string.
  EXPECT_THAT(e.path(), Not(HasSubstr("sk-abcdef")));
}

// Regexes apply to bodies that are not JSON at all.
TEST_F(PrivacyTest, RegexesApplyToPlainText) {
  std::string out = Make(BodyMode::kRedacted)->RedactBody("use key sk-" + std::string("ABCDEFGHIJK") + "LMNOPQRSTUV now");
  EXPECT_EQ(out, "use key [REDACTED] now");
}

// hash_only keeps the sha256 and drops the bytes; none drops both.
TEST_F(PrivacyTest, HashOnlyAndNoneDropBodies) {
  v1::Exchange e = SecretExchange();
  Make(BodyMode::kHashOnly)->Scrub(&e);
  EXPECT_TRUE(e.request().body().empty());
  EXPECT_EQ(e.request().body_sha256().size(), 64u);
  v1::Exchange n = SecretExchange();
  Make(BodyMode::kNone)->Scrub(&n);
  EXPECT_TRUE(n.request().body().empty());
  EXPECT_TRUE(n.request().body_sha256().empty());
}

// Redacted mode removes prompt and answer text of every API kind even when
// no JSON path is configured, and keeps the structure around it.
TEST_F(PrivacyTest, RedactedModeRemovesContentOfEveryApiWithoutConfiguredPaths) {
  PrivacyConfig c;
  c.body_mode = BodyMode::kRedacted;
  absl::StatusOr<std::unique_ptr<Scrubber>> s = Scrubber::Create(c);
  ASSERT_OK(s);
  const std::string bodies[] = {
      R"({"model":"m","messages":[{"role":"user","content":"SECRET-a"}]})",
      R"({"model":"m","system":"SECRET-b","messages":[{"role":"user","content":[{"type":"text","text":"SECRET-c"}]}]})",
      R"({"model":"m","input":"SECRET-d","instructions":"SECRET-e"})",
      R"({"choices":[{"message":{"role":"assistant","content":"SECRET-f","tool_calls":[{"function":{"arguments":"SECRET-g"}}]},"finish_reason":"stop"}]})",
      "data: {\"choices\":[{\"delta\":{\"content\":\"SECRET-h\"}}]}\n\ndata: [DONE]\n\n",
      R"({"type":"message","content":[{"type":"text","text":"SECRET-i"}],"stop_reason":"end_turn"})",
      "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"SECRET-j\"}}\n\n",
      "data: {\"type\":\"response.output_text.delta\",\"delta\":\"SECRET-k\"}\n\n",
      R"({"output":[{"type":"message","content":[{"type":"output_text","text":"SECRET-l"}]}]})",
      R"({"error":{"message":"bad prompt SECRET-m","type":"invalid_request_error"}})"};
  for (const std::string& body : bodies) {
    const std::string out = (*s)->RedactBody(body);
    EXPECT_THAT(out, Not(HasSubstr("SECRET"))) << body;
    EXPECT_THAT(out, HasSubstr("[REDACTED]")) << body;
  }
  EXPECT_THAT((*s)->RedactBody(bodies[3]), HasSubstr(R"("finish_reason":"stop")"));
}

v1::Finding TextFinding(const std::string& production, const std::string& candidate) {
  v1::Finding f;
  f.set_kind("salient_token");
  f.set_path("char 14");
  f.set_production(production);
  f.set_candidate(candidate);
  f.set_message("number changed: \"" + production + "\" -> \"" + candidate + "\"");
  f.set_major(true);
  return f;
}

// Findings keep kind, position, flags and scores; their texts become a hash
// and a length (only a length in none); full mode keeps them.
TEST_F(PrivacyTest, FindingsKeepKindPositionAndScoresButNoText) {
  v1::Comparison c;
  *c.add_findings() = TextFinding("2.1", "11.1");
  v1::ComparatorScore* score = c.add_scores();
  score->set_name("salient");
  score->set_score(0.5);
  for (BodyMode mode : {BodyMode::kRedacted, BodyMode::kHashOnly, BodyMode::kNone}) {
    v1::Comparison scrubbed = c;
    Make(mode)->ScrubComparison(&scrubbed);
    const v1::Finding& f = scrubbed.findings(0);
    EXPECT_EQ(f.kind(), "salient_token");
    EXPECT_EQ(f.path(), "char 14");
    EXPECT_TRUE(f.major());
    EXPECT_DOUBLE_EQ(scrubbed.scores(0).score(), 0.5);
    EXPECT_THAT(scrubbed.DebugString(), Not(HasSubstr("2.1")));
    EXPECT_THAT(scrubbed.DebugString(), Not(HasSubstr("11.1")));
    if (mode == BodyMode::kNone) {
      EXPECT_EQ(f.production(), "[len:3]");
      EXPECT_EQ(f.candidate(), "[len:4]");
    } else {
      EXPECT_EQ(f.production(), "[sha256:" + Sha256Hex("2.1").substr(0, 16) + " len:3]");
    }
    EXPECT_EQ(f.message(), "salient_token at char 14; production 3 bytes; candidate 4 bytes");
  }
  v1::Comparison full = c;
  Make(BodyMode::kFull)->ScrubComparison(&full);
  EXPECT_EQ(full.findings(0).production(), "2.1");
}

// Feedback keeps its score but loses its comment in every mode but full.
TEST_F(PrivacyTest, FeedbackCommentsAreKeptOnlyInFullMode) {
  v1::Feedback f;
  f.set_request_id("r1");
  f.set_score(1);
  f.set_comment("my account number is 42");
  for (BodyMode mode : {BodyMode::kRedacted, BodyMode::kHashOnly, BodyMode::kNone}) {
    v1::Feedback scrubbed = f;
    Make(mode)->ScrubFeedback(&scrubbed);
    EXPECT_TRUE(scrubbed.comment().empty());
    EXPECT_DOUBLE_EQ(scrubbed.score(), 1);
  }
  v1::Feedback kept = f;
  Make(BodyMode::kFull)->ScrubFeedback(&kept);
  EXPECT_EQ(kept.comment(), f.comment());
}

// The SHA-256 of "abc" is the FIPS 180-2 test vector.
TEST_F(PrivacyTest, Sha256MatchesKnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// Malformed paths are rejected; wildcard keys are accepted.
TEST_F(PrivacyTest, ParsesAndRejectsJsonPaths) {
  EXPECT_OK(ParseJsonPath("*.token"));
  EXPECT_OK(ParseJsonPath("a[3].b"));
  EXPECT_FALSE(ParseJsonPath("").ok());
  EXPECT_FALSE(ParseJsonPath("a[x]").ok());
  EXPECT_FALSE(ParseJsonPath("a.").ok());
}

}  // namespace
}  // namespace understudy::storage
