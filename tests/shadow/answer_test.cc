// Tests for shadow/answer.h: answers are decoded by their coding, parsed by
// their API and classified the same way on both arms.
#include "shadow/answer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "absl/strings/str_cat.h"

#include "tests/common/test_util.h"
#include "tests/support/deflate.h"

namespace understudy::shadow {
namespace {

namespace v1 = understudy::v1;
using rollout::OutcomeClass;

constexpr char kChat[] =
    R"({"id":"c1","object":"chat.completion","model":"gpt-4o","choices":[{"index":0,)"
    R"("message":{"role":"assistant","content":"Paris"},"finish_reason":"stop"}],)"
    R"("usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}})";
constexpr char kEmbeddings[] =
    R"({"object":"list","model":"text-embedding-3-small","data":[{"object":"embedding",)"
    R"("index":0,"embedding":[0.6,0.8]}],"usage":{"prompt_tokens":3,"total_tokens":3}})";

std::string Gzip(std::string_view in) { return testing::Deflate(in); }

v1::Exchange Answer(std::string api, int status, std::string body,
                    std::vector<std::pair<std::string, std::string>> headers) {
  v1::Exchange e;
  e.set_api(std::move(api));
  e.set_path("/v1/x");
  e.set_status_code(status);
  e.set_end_offset_micros(1000);
  e.mutable_response()->set_body(std::move(body));
  e.mutable_response()->set_complete(true);
  for (auto& [k, v] : headers) {
    v1::Header* h = e.mutable_response()->add_headers();
    h->set_key(k);
    h->set_value(v);
  }
  return e;
}

AnswerFacts Classify(v1::Exchange* e, ParsedAnswer* parsed = nullptr) {
  PrepareExchange(e, encoding::DecodeLimits{});
  return ClassifyExchange(*e, nullptr, parsed);
}

// A gzip'd chat answer is decoded (and stored decoded, with its coding
// noted) and judged like a plain one.
TEST(AnswerTest, CompressedAnswerIsDecodedAndJudgedLikeAPlainOne) {
  v1::Exchange e = Answer("openai_chat", 200, Gzip(kChat),
                          {{"content-type", "application/json"}, {"content-encoding", "gzip"}});
  ParsedAnswer parsed;
  AnswerFacts f = Classify(&e, &parsed);
  EXPECT_EQ(f.outcome, OutcomeClass::kOk);
  ASSERT_TRUE(parsed.chat.has_value());
  EXPECT_EQ(parsed.chat->text, "Paris");
  EXPECT_EQ(f.response_model, "gpt-4o");
  EXPECT_EQ(e.response().body(), kChat);
  EXPECT_EQ(e.response().content_encoding(), "gzip");
  EXPECT_EQ(e.response().body_decode(), v1::BODY_DECODED);
  EXPECT_TRUE(e.unsupported().empty());
}

// Corrupt coded data is a broken answer; an unknown coding is recorded as
// unsupported and judged on the status alone (never as an error).
TEST(AnswerTest, CorruptCodingIsInvalidUnknownCodingIsUnsupported) {
  std::string corrupt = Gzip(kChat);
  corrupt[corrupt.size() / 2] ^= 0x55;
  v1::Exchange bad = Answer("openai_chat", 200, corrupt, {{"content-encoding", "gzip"}});
  EXPECT_EQ(Classify(&bad).outcome, OutcomeClass::kInvalidBody);
  EXPECT_EQ(bad.response().body_decode(), v1::BODY_DECODE_CORRUPT);
  EXPECT_FALSE(bad.response().decode_error().empty());

  v1::Exchange odd = Answer("openai_chat", 200, "\x1f\x9d whatever", {{"content-encoding", "compress"}});
  EXPECT_EQ(Classify(&odd).outcome, OutcomeClass::kOk);
  EXPECT_EQ(odd.unsupported(), "content coding \"compress\"");
  EXPECT_EQ(odd.response().body(), "\x1f\x9d whatever");  // kept as it arrived
  v1::Exchange odd_error = Answer("openai_chat", 503, "x", {{"content-encoding", "compress"}});
  EXPECT_EQ(Classify(&odd_error).outcome, OutcomeClass::kServerError);
}

// Embeddings are parsed as vectors, not as chat; an embeddings body that
// does not parse is a broken answer.
TEST(AnswerTest, EmbeddingsAreParsedAsVectors) {
  v1::Exchange e = Answer("openai_embeddings", 200, kEmbeddings, {});
  ParsedAnswer parsed;
  AnswerFacts f = Classify(&e, &parsed);
  EXPECT_EQ(f.outcome, OutcomeClass::kOk);
  ASSERT_TRUE(parsed.embedding.has_value());
  EXPECT_FALSE(parsed.chat.has_value());
  ASSERT_EQ(parsed.embedding->vectors.size(), 1u);
  EXPECT_EQ(parsed.embedding->vectors[0].size(), 2u);
  EXPECT_EQ(f.usage.input_tokens, 3);

  v1::Exchange chat_as_embeddings = Answer("openai_embeddings", 200, kChat, {});
  EXPECT_EQ(Classify(&chat_as_embeddings).outcome, OutcomeClass::kInvalidBody);
}

// An API the sidecar does not know is not the model's fault: an HTML or an
// unparseable JSON body there is judged on its status alone.
TEST(AnswerTest, UnknownApiIsUnsupportedNotAFailure) {
  v1::Exchange html = Answer("", 200, "<html></html>", {{"content-type", "text/html"}});
  html.set_path("/v1/files");
  EXPECT_EQ(Classify(&html).outcome, OutcomeClass::kOk);
  EXPECT_THAT(html.unsupported(), ::testing::HasSubstr("content type text/html"));
  EXPECT_THAT(html.unsupported(), ::testing::HasSubstr("/v1/files"));

  v1::Exchange json = Answer("", 200, R"({"object":"list","data":[]})", {});
  json.set_path("/v1/models");
  EXPECT_EQ(Classify(&json).outcome, OutcomeClass::kOk);

  // The same HTML from a known API is a broken answer.
  v1::Exchange broken = Answer("openai_chat", 200, "<html></html>", {{"content-type", "text/html"}});
  EXPECT_EQ(Classify(&broken).outcome, OutcomeClass::kInvalidBody);
  EXPECT_TRUE(broken.unsupported().empty());
}

// Preparing twice changes nothing the second time.
TEST(AnswerTest, PrepareIsIdempotent) {
  v1::Exchange e = Answer("openai_chat", 200, Gzip(kChat), {{"content-encoding", "gzip"}});
  PrepareExchange(&e, encoding::DecodeLimits{});
  const std::string once = e.SerializeAsString();
  PrepareExchange(&e, encoding::DecodeLimits{});
  EXPECT_EQ(e.SerializeAsString(), once);
}

// What the drift watch reads: the fingerprint, finish reason and length of
// the answer, a refusal by pattern, and non-JSON text when JSON was asked.
TEST(AnswerTest, FactsCarryWhatTheDriftWatchReads) {
  compare::CompareOptions options;
  ASSERT_OK(compare::CompileRefusalPatterns(&options));
  auto chat = [](std::string content, std::string fingerprint) {
    return absl::StrCat(
        R"({"id":"c1","object":"chat.completion","model":"gpt-4o","system_fingerprint":")",
        fingerprint, R"(","choices":[{"index":0,"message":{"role":"assistant","content":")",
        content, R"("},"finish_reason":"stop"}]})");
  };
  v1::Exchange plain = Answer("openai_chat", 200, chat("Paris", "fp_1"),
                              {{"content-type", "application/json"}});
  PrepareExchange(&plain, encoding::DecodeLimits{});
  AnswerFacts f = ClassifyExchange(plain, &options, nullptr);
  EXPECT_EQ(f.system_fingerprint, "fp_1");
  EXPECT_EQ(f.finish_reason, "stop");
  EXPECT_EQ(f.answer_chars, 5);
  EXPECT_FALSE(f.refusal);
  EXPECT_FALSE(f.invalid_json);

  v1::Exchange refused = Answer("openai_chat", 200,
                                chat("I'm sorry, but I can't help with that.", "fp_1"),
                                {{"content-type", "application/json"}});
  PrepareExchange(&refused, encoding::DecodeLimits{});
  EXPECT_TRUE(ClassifyExchange(refused, &options, nullptr).refusal);

  v1::Exchange json_asked = Answer("openai_chat", 200, chat("{\\\"a\\\": 1", "fp_1"),
                                   {{"content-type", "application/json"}});
  json_asked.mutable_request()->set_body(
      R"({"model":"gpt-4o","messages":[{"role":"user","content":"x"}],)"
      R"("response_format":{"type":"json_object"}})");
  PrepareExchange(&json_asked, encoding::DecodeLimits{});
  AnswerFacts j = ClassifyExchange(json_asked, &options, nullptr);
  EXPECT_EQ(j.outcome, OutcomeClass::kOk);
  EXPECT_TRUE(j.invalid_json);
}

}  // namespace
}  // namespace understudy::shadow
