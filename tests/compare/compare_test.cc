// Tests for compare/compare.cc, options.cc and noise_model.cc: verdicts,
// findings, config parsing and noise calibration.
#include "compare/compare.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

#include "tests/common/test_util.h"
#include "tests/compare/fixtures.h"

namespace understudy::compare {
namespace {

using understudy::v1::Comparison;
using understudy::v1::Verdict;
using ::understudy::testing::StatusIs;

class CompareTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK(CompileRefusalPatterns(&options_)); }

  static ModelAnswer Text(std::string text, std::string finish = "stop") {
    ModelAnswer a;
    a.text = std::move(text);
    a.finish_reason = std::move(finish);
    a.model = "gpt-4o";
    return a;
  }
  Comparison Run(const ModelAnswer& p, const ModelAnswer& c) {
    return Compare(p, c, options_, ctx_);
  }
  static const understudy::v1::ComparatorScore* Score(const Comparison& c, std::string_view name) {
    for (const auto& s : c.scores()) {
      if (s.name() == name) return &s;
    }
    return nullptr;
  }
  static std::vector<std::string> Kinds(const Comparison& c) {
    std::vector<std::string> out;
    for (const auto& f : c.findings()) out.push_back(f.kind());
    return out;
  }

  CompareOptions options_;
  CompareContext ctx_;
};

constexpr char kParis[] =
    "The capital of France is Paris. It lies on the Seine and has about 2.1 million "
    "inhabitants in the city proper, while the wider metropolitan area is home to more "
    "than 12 million people.";

// Comparing any answer with itself is equivalent, for every fixture.
TEST_F(CompareTest, AnswerComparedWithItselfIsEquivalent) {
  for (const char* body : {fixtures::kOpenAIJson, fixtures::kOpenAISse, fixtures::kOpenAIToolSse,
                           fixtures::kAnthropicJson, fixtures::kAnthropicSse}) {
    absl::StatusOr<ModelAnswer> a = ParseAnswer(body);
    ASSERT_OK(a);
    Comparison c = Run(*a, *a);
    EXPECT_EQ(c.verdict(), understudy::v1::VERDICT_EQUIVALENT) << c.DebugString();
    for (const auto& s : c.scores()) EXPECT_DOUBLE_EQ(s.score(), 1.0) << s.name();
  }
}

// Identical inputs give byte-identical outputs.
TEST_F(CompareTest, IsDeterministic) {
  ModelAnswer p = Text(kParis), c = Text("Paris is France's capital, with 2.2 million people.");
  EXPECT_EQ(Run(p, c).SerializeAsString(), Run(p, c).SerializeAsString());
}

// Whitespace and case changes alone are equivalent.
TEST_F(CompareTest, WhitespaceAndCaseDifferencesAreEquivalent) {
  Comparison c = Run(Text("Hello   World.\n"), Text("hello world."));
  EXPECT_EQ(c.verdict(), understudy::v1::VERDICT_EQUIVALENT);
  EXPECT_DOUBLE_EQ(Score(c, "exact")->score(), 1.0);
}

// "Paris" → "Lyon" is a major difference although most tokens agree.
TEST_F(CompareTest, ChangedNameIsMajorDespiteHighOverlap) {
  std::string lyon = kParis;
  lyon.replace(lyon.find("Paris"), 5, "Lyon");
  Comparison c = Run(Text(kParis), Text(lyon));
  EXPECT_GT(Score(c, "lcs_f1")->score(), 0.9);
  EXPECT_EQ(c.verdict(), understudy::v1::VERDICT_MAJOR_DIFF);
  ASSERT_GT(c.findings_size(), 0);
  EXPECT_EQ(c.findings(0).kind(), "salient_token");
  EXPECT_EQ(c.findings(0).production(), "Paris");
  EXPECT_EQ(c.findings(0).candidate(), "Lyon");
  EXPECT_TRUE(c.findings(0).major());
}

// "36" → "37" is major too.
TEST_F(CompareTest, ChangedNumberIsMajor) {
  Comparison c = Run(Text("The answer is 36 degrees, measured at noon."),
                     Text("The answer is 37 degrees, measured at noon."));
  EXPECT_EQ(c.verdict(), understudy::v1::VERDICT_MAJOR_DIFF);
  EXPECT_THAT(c.findings(0).message(), ::testing::HasSubstr("\"36\" -> \"37\""));
}

// Many changed numbers: the findings stop at max_findings, the first ones
// in order of the text, majors first; the score counts every one.
TEST_F(CompareTest, FindingsStopAtMaxFindings) {
  std::string p, c;
  for (int i = 0; i < 30; ++i) {
    p += "item " + std::to_string(100 + i) + " costs money. ";
    c += "item " + std::to_string(500 + i) + " costs money. ";
  }
  c += "Nice";  // one unpaired addition at the end
  options_.max_findings = 5;
  Comparison r = Run(Text(p), Text(c));
  EXPECT_EQ(r.verdict(), understudy::v1::VERDICT_MAJOR_DIFF);
  ASSERT_EQ(r.findings_size(), 5);
  for (int i = 0; i < 5; ++i) {
    EXPECT_TRUE(r.findings(i).major());
    EXPECT_THAT(r.findings(i).message(),
                ::testing::HasSubstr("\"" + std::to_string(100 + i) + "\" -> \"" +
                                     std::to_string(500 + i) + "\""));
  }
  EXPECT_THAT(Score(r, "salient")->explanation(), ::testing::HasSubstr("61 of 61"));
}

// A reordered paraphrase with the same facts is not a major diff.
TEST_F(CompareTest, ReorderedParaphraseIsNotMajor) {
  Comparison c = Run(
      Text("Paris is the capital of France. It has about 2.1 million inhabitants."),
      Text("It has about 2.1 million inhabitants. Paris is the capital of France."));
  EXPECT_NE(c.verdict(), understudy::v1::VERDICT_MAJOR_DIFF) << c.DebugString();
  EXPECT_DOUBLE_EQ(Score(c, "salient")->score(), 1.0);
}

// Text scores are symmetric (chrF with beta 1), and so is the verdict.
TEST_F(CompareTest, SymmetricScoresAgreeBothWays) {
  options_.chrf_beta = 1;
  ModelAnswer a = Text(kParis);
  ModelAnswer b = Text("Paris, the capital of France, has 2.1 million residents on the Seine.");
  Comparison ab = Run(a, b), ba = Run(b, a);
  for (const char* name : {"exact", "lcs_f1", "chrf", "salient", "json", "length_ratio"}) {
    EXPECT_DOUBLE_EQ(Score(ab, name)->score(), Score(ba, name)->score()) << name;
  }
  EXPECT_EQ(ab.verdict(), ba.verdict());
}

// JSON answers: key order is ignored, a changed value is a major finding.
TEST_F(CompareTest, JsonAnswerIgnoresKeyOrderButCatchesChangedValue) {
  ctx_.request.json_expected = true;
  Comparison same = Run(Text(R"({"city":"Paris","population":2100000})"),
                        Text(R"({"population":2100000,"city":"Paris"})"));
  EXPECT_EQ(same.verdict(), understudy::v1::VERDICT_EQUIVALENT) << same.DebugString();
  EXPECT_EQ(same.request_kind(), "json");
  Comparison changed = Run(Text(R"({"city":"Paris","population":2100000})"),
                           Text("```json\n{\"population\":2100000,\"city\":\"Lyon\"}\n```"));
  EXPECT_EQ(changed.verdict(), understudy::v1::VERDICT_MAJOR_DIFF);
  EXPECT_THAT(Kinds(changed), ::testing::Contains("json_changed"));
}

// Invalid JSON where JSON was requested is its own major finding.
TEST_F(CompareTest, InvalidJsonWhenRequestedIsMajor) {
  ctx_.request.json_expected = true;
  Comparison c = Run(Text(R"({"ok":true})"), Text(R"(Sure! {"ok": true)"));
  EXPECT_EQ(c.verdict(), understudy::v1::VERDICT_MAJOR_DIFF);
  EXPECT_THAT(Kinds(c), ::testing::Contains("json_invalid"));
}

// A refusal on one side only is a major finding.
TEST_F(CompareTest, RefusalOnOneSideIsMajor) {
  Comparison c = Run(Text("Here is how to reset your router: hold the button for 10 seconds."),
                     Text("I'm sorry, but I can't help with that request."));
  EXPECT_EQ(c.verdict(), understudy::v1::VERDICT_MAJOR_DIFF);
  EXPECT_THAT(Kinds(c), ::testing::Contains("refusal"));
  EXPECT_DOUBLE_EQ(Score(c, "refusal")->score(), 0.0);
  Comparison both = Run(Text("I cannot help with that."), Text("I can't assist with that."));
  EXPECT_DOUBLE_EQ(Score(both, "refusal")->score(), 1.0);
}

// Tool calls: same function with changed argument vs a missing call.
TEST_F(CompareTest, ToolCallsAreComparedStructurally) {
  absl::StatusOr<ModelAnswer> openai = ParseAnswer(fixtures::kOpenAIToolJson);
  absl::StatusOr<ModelAnswer> anthropic = ParseAnswer(fixtures::kAnthropicJson);
  ASSERT_OK(openai);
  ASSERT_OK(anthropic);
  // Same call, arguments in another key order and format: tool_calls agree.
  ModelAnswer p = *openai, c = *openai;
  c.tool_calls[0].arguments_json = "{\"unit\": \"celsius\", \"city\": \"Z\xC3\xBCrich\"}";
  Comparison same = Run(p, c);
  EXPECT_DOUBLE_EQ(Score(same, "tool_calls")->score(), 1.0);
  EXPECT_EQ(same.verdict(), understudy::v1::VERDICT_EQUIVALENT);
  c.tool_calls[0].arguments_json = "{\"unit\": \"fahrenheit\", \"city\": \"Z\xC3\xBCrich\"}";
  Comparison changed = Run(p, c);
  EXPECT_EQ(changed.verdict(), understudy::v1::VERDICT_MAJOR_DIFF);
  EXPECT_EQ(changed.findings(0).path(), "tool_calls[0](get_weather).unit");
  c.tool_calls[0].name = "get_forecast";
  EXPECT_THAT(Kinds(Run(p, c)), ::testing::IsSupersetOf({"tool_call_missing", "tool_call_extra"}));
}

// stop vs length is a major finish-reason finding.
TEST_F(CompareTest, TruncatedByLengthIsMajor) {
  Comparison c = Run(Text(kParis, "stop"), Text(kParis, "length"));
  EXPECT_EQ(c.verdict(), understudy::v1::VERDICT_MAJOR_DIFF);
  EXPECT_THAT(Kinds(c), ::testing::Contains("finish_reason"));
}

// Errors and broken streams decide the verdict before any text comparison.
TEST_F(CompareTest, ErrorsGiveErrorVerdicts) {
  ModelAnswer ok = Text(kParis);
  ModelAnswer err = ModelAnswer::FromError("overloaded_error", "Overloaded");
  ModelAnswer broken = Text("Once upon a");
  broken.stream_ok = false;
  EXPECT_EQ(Run(ok, err).verdict(), understudy::v1::VERDICT_CANDIDATE_ERROR);
  EXPECT_EQ(Run(ok, broken).verdict(), understudy::v1::VERDICT_CANDIDATE_ERROR);
  EXPECT_EQ(Run(err, ok).verdict(), understudy::v1::VERDICT_PRODUCTION_ERROR);
  EXPECT_EQ(Run(err, broken).verdict(), understudy::v1::VERDICT_BOTH_ERROR);
}

// Costs come from per-model prices (longest prefix), latency deltas from ctx.
TEST_F(CompareTest, ComputesCostAndLatency) {
  options_.prices["gpt-4o"] = {2.5, 10, 1.25};
  options_.prices["gpt-4o-mini"] = {0.15, 0.6, -1};
  ModelAnswer p = Text(kParis), c = Text(kParis);
  p.model = "gpt-4o-2024-08-06";
  p.usage = {1000, 200, 400};
  c.model = "gpt-4o-mini-2024-07-18";
  c.usage = {1000, 300, 0};
  ctx_.production_latency_micros = 800000;
  ctx_.candidate_latency_micros = 400000;
  Comparison r = Run(p, c);
  EXPECT_NEAR(r.production_cost(), (600 * 2.5 + 400 * 1.25 + 200 * 10) / 1e6, 1e-12);
  EXPECT_NEAR(r.candidate_cost(), (1000 * 0.15 + 300 * 0.6) / 1e6, 1e-12);
  EXPECT_DOUBLE_EQ(Score(r, "latency")->score(), 0.5);
  EXPECT_TRUE(Score(r, "latency")->applicable());
  EXPECT_FALSE(Score(r, "ttft")->applicable());
  EXPECT_EQ(r.verdict(), understudy::v1::VERDICT_EQUIVALENT);
}

// A much shorter answer is a (minor) length finding.
TEST_F(CompareTest, MuchShorterAnswerIsALengthFinding) {
  Comparison c = Run(Text(kParis), Text("The capital of France is Paris."));
  EXPECT_THAT(Kinds(c), ::testing::Contains("length"));
  EXPECT_NE(c.verdict(), understudy::v1::VERDICT_EQUIVALENT);
}

// Context fields are copied into the Comparison.
TEST_F(CompareTest, CopiesContextIntoComparison) {
  ctx_.request_id = "req-7";
  ctx_.time_unix_micros = 1733000000000000;
  ctx_.request.model = "gpt-4o";
  ctx_.live_arm = understudy::v1::ARM_CANDIDATE;
  ModelAnswer p = Text("hi");
  p.model.clear();
  Comparison c = Run(p, Text("hi"));
  EXPECT_EQ(c.request_id(), "req-7");
  EXPECT_EQ(c.time_unix_micros(), 1733000000000000);
  EXPECT_EQ(c.production_model(), "gpt-4o");
  EXPECT_EQ(c.live_arm(), understudy::v1::ARM_CANDIDATE);
  EXPECT_EQ(VerdictName(c.verdict()), "equivalent");
}

// ---- noise ----

// Production disagrees with itself on a volatile JSON field (a request id);
// the candidate differing on that field only is noise, on another field not.
TEST_F(CompareTest, NoiseModelSuppressesDiffAtNoiseLevelAndKeepsOneAbove) {
  ctx_.request.json_expected = true;
  NoiseModel noise(options_.noise_quantile, options_.noise_min_samples);
  auto json = [](int id, const char* city) {
    return Text(absl::StrCat("{\"id\":", id, ",\"city\":\"", city,
                             "\",\"country\":\"France\",\"pop\":2100000,\"river\":\"Seine\"}"));
  };
  for (int i = 0; i < 40; ++i) noise.Observe(Run(json(i, "Paris"), json(i + 1000, "Paris")));
  ASSERT_TRUE(noise.NoiseLevel("json", "json").has_value());
  EXPECT_EQ(noise.Samples("json", "json"), 40);
  ctx_.noise = &noise;
  Comparison at_noise = Run(json(1, "Paris"), json(2, "Paris"));
  EXPECT_EQ(at_noise.verdict(), understudy::v1::VERDICT_EQUIVALENT) << at_noise.DebugString();
  for (const auto& f : at_noise.findings()) {
    if (f.kind() == "json_changed") {
      EXPECT_TRUE(f.noise_explained());
    }
  }
  Comparison above = Run(json(1, "Paris"), json(2, "Lyon"));
  EXPECT_EQ(above.verdict(), understudy::v1::VERDICT_MAJOR_DIFF) << above.DebugString();
  bool kept = false;
  for (const auto& f : above.findings()) {
    if (f.kind() == "json_changed" && f.path() == "$.city") kept = !f.noise_explained();
  }
  EXPECT_TRUE(kept);
  // Without the noise model the id difference alone is a major diff.
  ctx_.noise = nullptr;
  EXPECT_EQ(Run(json(1, "Paris"), json(2, "Paris")).verdict(),
            understudy::v1::VERDICT_MAJOR_DIFF);
}

// Below min_samples the noise model says nothing; kinds fall back to overall.
TEST_F(CompareTest, NoiseModelNeedsMinSamplesAndFallsBackToOverall) {
  NoiseModel noise(0.9, 5);
  Comparison c;
  c.set_request_kind("text");
  auto* s = c.add_scores();
  s->set_name("lcs_f1");
  s->set_applicable(true);
  s->set_score(0.8);
  for (int i = 0; i < 4; ++i) noise.Observe(c);
  EXPECT_FALSE(noise.NoiseLevel("lcs_f1", "text").has_value());
  noise.Observe(c);
  ASSERT_TRUE(noise.NoiseLevel("lcs_f1", "text").has_value());
  EXPECT_NEAR(*noise.NoiseLevel("lcs_f1", "text"), 0.2, 0.006);
  EXPECT_NEAR(noise.NoiseLevel("lcs_f1", "json").value_or(-1), 0.2, 0.006);  // overall
  EXPECT_FALSE(noise.NoiseLevel("chrf", "text").has_value());
}

// ---- options ----

// A full compare: section parses into the typed struct.
TEST_F(CompareTest, ParsesCompareOptionsFromYaml) {
  absl::StatusOr<ConfigNode> root = ConfigNode::Parse(R"(
compare:
  thresholds: {equivalent: 0.9, major: 0.4, length_ratio: 0.3}
  case_sensitive: true
  numeric_tolerance: 0.001
  json_ignore_paths: ["$.id", "$.items[*].ts"]
  refusal_patterns: ["(?i)no can do"]
  prices:
    gpt-4o: {input: 2.5, output: 10, cached_input: 1.25}
    claude-3-5-haiku: {input: 0.8, output: 4}
  chrf: {order: 4, beta: 1}
  max_findings: 5
  noise: {quantile: 0.9, min_samples: 50, relative_margin: 0.5, absolute_margin: 0.05}
)", "test.yaml");
  ASSERT_OK(root);
  absl::StatusOr<CompareOptions> o = ParseCompareOptions(root->Child("compare"));
  ASSERT_OK(o);
  EXPECT_DOUBLE_EQ(o->equivalent_similarity, 0.9);
  EXPECT_DOUBLE_EQ(o->major_similarity, 0.4);
  EXPECT_DOUBLE_EQ(o->min_length_ratio, 0.3);
  EXPECT_TRUE(o->case_sensitive);
  EXPECT_DOUBLE_EQ(o->numeric_tolerance, 0.001);
  EXPECT_THAT(o->json_ignore_paths, ::testing::ElementsAre("$.id", "$.items[*].ts"));
  EXPECT_DOUBLE_EQ(o->prices.at("gpt-4o").cached_input_per_million, 1.25);
  EXPECT_DOUBLE_EQ(o->prices.at("claude-3-5-haiku").output_per_million, 4);
  EXPECT_EQ(o->chrf_order, 4);
  EXPECT_EQ(o->max_findings, 5);
  EXPECT_EQ(o->noise_min_samples, 50);
  ASSERT_NE(o->compiled_refusals, nullptr);
  options_ = *o;
  EXPECT_THAT(Kinds(Run(Text("Sure, here it is."), Text("No can do."))),
              ::testing::Contains("refusal"));
}

// Bad values name their key path.
TEST_F(CompareTest, RejectsBadOptionsNamingTheKeyPath) {
  auto parse = [](const std::string& yaml) {
    absl::StatusOr<ConfigNode> root = ConfigNode::Parse(yaml, "t.yaml");
    EXPECT_OK(root);
    return ParseCompareOptions(root->Child("compare"));
  };
  EXPECT_THAT(parse("compare: {thresholds: {equivalent: 2}}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "compare.thresholds.equivalent"));
  EXPECT_THAT(parse("compare: {thresholds: {equivalent: 0.5, major: 0.8}}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "compare.thresholds.major"));
  EXPECT_THAT(parse("compare: {tresholds: {}}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "compare.tresholds"));
  EXPECT_THAT(parse("compare: {refusal_patterns: [\"ok\", \"(unclosed\"]}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "compare.refusal_patterns[1]"));
  EXPECT_THAT(parse("compare: {prices: {gpt-4o: {input: 1}}}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "compare.prices.gpt-4o"));
  EXPECT_THAT(parse("compare: {prices: {gpt-4o: {input: -1, output: 2}}}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "compare.prices.gpt-4o.input"));
  EXPECT_THAT(parse("compare: {json_ignore_paths: [\"id\"]}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "compare.json_ignore_paths[0]"));
  EXPECT_THAT(parse("compare: {noise: {quantile: 0.1}}"),
              StatusIs(absl::StatusCode::kInvalidArgument, "compare.noise.quantile"));
  // An absent section gives the defaults.
  absl::StatusOr<CompareOptions> defaults = parse("other: 1");
  ASSERT_OK(defaults);
  EXPECT_DOUBLE_EQ(defaults->equivalent_similarity, 0.95);
  EXPECT_NE(defaults->compiled_refusals, nullptr);
}

}  // namespace
}  // namespace understudy::compare
