// Tests of the fake model's text transforms, corpus parsing and knob JSON.
#include "examples/fake-model/text_ops.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "examples/fake-model/fake_model.h"
#include "tests/common/test_util.h"

namespace understudy::fake_model {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::understudy::testing::StatusIs;

class TextOpsTest : public ::testing::Test {
 protected:
  Rng rng_{42};
};

// Stream deltas must rebuild the answer exactly, whitespace and newlines
// included.
TEST_F(TextOpsTest, StreamPiecesConcatenateToTheText) {
  const std::string text = "Use slicing:\n\n```python\nitems[::-1]\n```  done.";
  std::vector<std::string> pieces = SplitForStream(text);
  EXPECT_GE(pieces.size(), 3u);
  std::string joined;
  for (const auto& p : pieces) joined += p;
  EXPECT_EQ(joined, text);
  std::vector<std::string> grouped = SplitForStream(text, 2);
  EXPECT_EQ(grouped.size(), 2u);
  EXPECT_EQ(grouped[0] + grouped[1], text);
}

// A truncated answer is a strictly shorter, non-empty prefix.
TEST_F(TextOpsTest, TruncateKeepsAStrictPrefix) {
  const std::string text =
      "The capital of France is Paris and it has about 2.1 million residents.";
  for (int i = 0; i < 20; ++i) {
    std::string cut = Truncate(text, rng_);
    EXPECT_FALSE(cut.empty());
    EXPECT_LT(cut.size(), text.size());
    EXPECT_EQ(text.substr(0, cut.size()), cut);
  }
}

// The wrong-answer drift changes a number when there is one, else a name.
TEST_F(TextOpsTest, WrongAnswerChangesANumberOrAName) {
  const std::string numbers = "Mount Everest is 8849 metres tall.";
  std::string changed = WrongAnswer(numbers, rng_);
  EXPECT_NE(changed, numbers);
  EXPECT_THAT(changed, Not(HasSubstr("8849")));
  EXPECT_THAT(changed, HasSubstr("Mount Everest is "));

  const std::string names = "Hamlet was written by William Shakespeare.";
  changed = WrongAnswer(names, rng_);
  EXPECT_NE(changed, names);
  EXPECT_THAT(changed, HasSubstr("Hamlet was written by"));

  const std::string plain = "water is wet";
  EXPECT_EQ(WrongAnswer(plain, rng_), "water is not wet");
}

// The same seed gives the same drift; that is what makes e2e runs repeatable.
TEST_F(TextOpsTest, DriftIsDeterministicForASeed) {
  const std::string text =
      "Jupiter is the largest planet. It has 95 known moons.";
  Rng a(7), b(7);
  EXPECT_EQ(WrongAnswer(text, a), WrongAnswer(text, b));
  EXPECT_EQ(Paraphrase(text, a), Paraphrase(text, b));
  EXPECT_EQ(Truncate(text, a), Truncate(text, b));
}

// A paraphrase differs in wording but keeps every number and name.
TEST_F(TextOpsTest, ParaphraseKeepsTheFacts) {
  const std::string text =
      "Jupiter is the largest planet in the solar system. It has 95 known "
      "moons.";
  std::string p = Paraphrase(text, rng_);
  EXPECT_NE(p, text);
  EXPECT_THAT(p, HasSubstr("95"));
  EXPECT_THAT(p, HasSubstr("Jupiter"));
  EXPECT_NE(Paraphrase("Ok.", rng_), "Ok.");
}

// JSON drift: a wrong leaf keeps the keys; reordering keeps the value; breaking
// never parses.
TEST_F(TextOpsTest, JsonDriftsBehaveAsDocumented) {
  const std::string json = R"({"mountain":"Everest","height_m":8849})";
  nlohmann::json original = nlohmann::json::parse(json);
  for (int i = 0; i < 10; ++i) {
    nlohmann::json wrong = nlohmann::json::parse(WrongJson(json, rng_));
    EXPECT_NE(wrong, original);
    EXPECT_TRUE(wrong.contains("mountain") && wrong.contains("height_m"));
    EXPECT_FALSE(nlohmann::json::accept(BreakJson(json, rng_)));
  }
  std::string reordered = ReorderJson(json);
  EXPECT_NE(reordered, json);
  EXPECT_EQ(nlohmann::json::parse(reordered), original);
}

// Matching: exact question, then word overlap, else nothing.
TEST_F(TextOpsTest, MatchCorpusFindsExactThenOverlapThenNothing) {
  std::vector<CorpusEntry> corpus = {
      {"a", "What is the capital of France?", "Paris.", "", "", ""},
      {"b", "How tall is Mount Everest?", "8849 m.", "", "", ""}};
  EXPECT_EQ(MatchCorpus(corpus, "what is the CAPITAL of france"), 0);
  EXPECT_EQ(
      MatchCorpus(corpus, "Answer briefly: how tall is Everest, the mountain?"),
      1);
  EXPECT_EQ(MatchCorpus(corpus, "Tell me a joke about penguins"), -1);
  EXPECT_EQ(MatchCorpus(corpus, ""), -1);
}

// Token counts grow with text and never reach zero for non-empty text.
TEST_F(TextOpsTest, CountTokensApproximatesABpeTokenizer) {
  EXPECT_EQ(CountTokens(""), 0);
  EXPECT_EQ(CountTokens("hi"), 1);
  EXPECT_EQ(CountTokens("hello, world!"), 2 + 1 + 2 + 1);
  EXPECT_EQ(TruncateToTokens("one two three four", 2), "one two");
}

// The checked-in corpus parses and has the item kinds the e2e tests rely on.
TEST_F(TextOpsTest, CheckedInCorpusHasJsonToolAndCodeItems) {
  absl::StatusOr<std::vector<CorpusEntry>> corpus =
      LoadCorpus(FAKE_MODEL_CORPUS);
  ASSERT_OK(corpus);
  EXPECT_GE(corpus->size(), 40u);
  int json = 0, tools = 0, code = 0;
  for (const CorpusEntry& e : *corpus) {
    json += !e.json_answer.empty();
    tools += !e.tool_name.empty();
    code += e.answer.find("```") != std::string::npos;
    EXPECT_EQ(MatchCorpus(*corpus, e.question), &e - corpus->data()) << e.id;
  }
  EXPECT_GE(json, 5);
  EXPECT_GE(tools, 2);
  EXPECT_GE(code, 2);
}

// Corpus errors name the line and the problem.
TEST_F(TextOpsTest, BadCorpusLinesAreRejectedWithTheLineNumber) {
  EXPECT_THAT(ParseCorpus("{\"question\":\"q\",\"answer\":\"a\"}\nnot json\n"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "corpus line 2: not valid JSON"));
  EXPECT_THAT(
      ParseCorpus("{\"question\":\"q\"}"),
      StatusIs(absl::StatusCode::kInvalidArgument, "\"answer\" is required"));
  EXPECT_THAT(ParseCorpus("{\"question\":\"q\",\"answer\":\"a\",\"tool_call\":{"
                          "\"arguments\":{}}}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "tool_call"));
  EXPECT_THAT(
      ParseCorpus("{\"question\":\"q\",\"answer\":\"a\",\"extra\":1}"),
      StatusIs(absl::StatusCode::kInvalidArgument, "unknown key \"extra\""));
  EXPECT_THAT(ParseCorpus("# only a comment\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, "no entries"));
  EXPECT_THAT(LoadCorpus("/nonexistent/corpus.jsonl"),
              StatusIs(absl::StatusCode::kNotFound, "cannot read"));
}

// Knob JSON round-trips and rejects unknown keys, wrong types and ranges.
TEST_F(TextOpsTest, KnobsJsonRoundTripsAndValidates) {
  FakeModelKnobs base;
  absl::StatusOr<FakeModelKnobs> k = ApplyKnobsJson(
      base,
      R"({"error_rate":0.25,"ttft_ms":120,"ttft_sigma":0.5,"hang":true,"model":"m2"})");
  ASSERT_OK(k);
  EXPECT_EQ(k->error_rate, 0.25);
  EXPECT_EQ(k->ttft.median, absl::Milliseconds(120));
  EXPECT_EQ(k->ttft.sigma, 0.5);
  EXPECT_TRUE(k->hang);
  EXPECT_EQ(k->model, "m2");
  absl::StatusOr<FakeModelKnobs> again =
      ApplyKnobsJson(FakeModelKnobs{}, KnobsToJson(*k));
  ASSERT_OK(again);
  EXPECT_EQ(KnobsToJson(*again), KnobsToJson(*k));

  EXPECT_THAT(ApplyKnobsJson(base, R"({"error_rate":1.5})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "error_rate: must be a number in [0, 1]"));
  EXPECT_THAT(
      ApplyKnobsJson(base, R"({"eror_rate":0.1})"),
      StatusIs(absl::StatusCode::kInvalidArgument, "eror_rate: unknown knob"));
  EXPECT_THAT(ApplyKnobsJson(base, R"({"hang":"yes"})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "hang: must be true or false"));
  EXPECT_THAT(ApplyKnobsJson(base, R"({"seed":-1})"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       "seed: must be a non-negative integer"));
  EXPECT_THAT(ApplyKnobsJson(base, "[1]"),
              StatusIs(absl::StatusCode::kInvalidArgument, "JSON object"));
  EXPECT_THAT(ApplyKnobsJson(base, "{"),
              StatusIs(absl::StatusCode::kInvalidArgument, "not valid JSON"));
}

}  // namespace
}  // namespace understudy::fake_model
