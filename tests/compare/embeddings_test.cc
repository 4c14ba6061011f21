// Tests for OpenAI embeddings in compare/: ParseEmbeddingAnswer (float and
// base64, errors, malformed bodies), CompareEmbeddings (dimensions, cosine
// thresholds, error verdicts) and the embedding options.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/config_node.h"
#include "compare/compare.h"
#include "tests/common/test_util.h"

namespace understudy::compare {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::understudy::testing::StatusIs;

// Two inputs, sent out of order, as floats.
constexpr char kFloatBody[] = R"({
  "object": "list",
  "data": [
    {"object": "embedding", "index": 1, "embedding": [0.25, 0, -0.125]},
    {"object": "embedding", "index": 0, "embedding": [1.0, -2, 0.5]}
  ],
  "model": "text-embedding-3-small",
  "usage": {"prompt_tokens": 8, "total_tokens": 8}
})";

// The same two vectors as base64 of little-endian float32 (encoded
// independently: Python struct.pack('<3f', ...)).
constexpr char kBase64Body[] = R"({
  "object": "list",
  "data": [
    {"object": "embedding", "index": 0, "embedding": "AACAPwAAAMAAAAA/"},
    {"object": "embedding", "index": 1, "embedding": "AACAPgAAAAAAAAC+"}
  ],
  "model": "text-embedding-3-small",
  "usage": {"prompt_tokens": 8, "total_tokens": 8}
})";

EmbeddingAnswer Vectors(std::vector<std::vector<float>> vectors,
                        std::string model = "text-embedding-3-small") {
  EmbeddingAnswer a;
  a.vectors = std::move(vectors);
  a.model = std::move(model);
  return a;
}

// A unit vector at `cosine` from (1, 0, 0, 0): its cosine with it is exact.
std::vector<float> At(double cosine) {
  return {static_cast<float>(cosine), static_cast<float>(std::sqrt(1 - cosine * cosine)), 0, 0};
}

class EmbeddingsTest : public ::testing::Test {
 protected:
  static EmbeddingAnswer Parse(std::string_view body, int status = 0) {
    absl::StatusOr<EmbeddingAnswer> a = ParseEmbeddingAnswer(body, status);
    EXPECT_OK(a);
    return a.ok() ? *a : EmbeddingAnswer{};
  }
  v1::Comparison Run(const EmbeddingAnswer& p, const EmbeddingAnswer& c) {
    return CompareEmbeddings(p, c, options_, ctx_);
  }
  static const v1::ComparatorScore* Score(const v1::Comparison& c, std::string_view name) {
    for (const auto& s : c.scores()) {
      if (s.name() == name) return &s;
    }
    return nullptr;
  }
  static std::vector<std::string> Kinds(const v1::Comparison& c) {
    std::vector<std::string> out;
    for (const auto& f : c.findings()) out.push_back(f.kind());
    return out;
  }
  CompareOptions options_;
  CompareContext ctx_;
};

// ---- parsing ----

// Float embeddings are ordered by their index; model and prompt tokens are read.
TEST_F(EmbeddingsTest, ParsesFloatEmbeddingsInIndexOrder) {
  EmbeddingAnswer a = Parse(kFloatBody);
  ASSERT_EQ(a.vectors.size(), 2u);
  EXPECT_THAT(a.vectors[0], ElementsAre(1.0f, -2.0f, 0.5f));
  EXPECT_THAT(a.vectors[1], ElementsAre(0.25f, 0.0f, -0.125f));
  EXPECT_EQ(a.model, "text-embedding-3-small");
  EXPECT_EQ(a.usage.input_tokens, 8);
  EXPECT_EQ(a.usage.output_tokens, 0);
  EXPECT_FALSE(a.error.has_value());
}

// Base64 embeddings decode as little-endian float32 to the same answer.
TEST_F(EmbeddingsTest, DecodesBase64LittleEndianFloat32) {
  EXPECT_TRUE(Parse(kBase64Body) == Parse(kFloatBody));
  // Unpadded base64 is accepted too.
  EmbeddingAnswer unpadded = Parse(R"({"data": [{"embedding": "AACAPw"}]})");
  ASSERT_EQ(unpadded.vectors.size(), 1u);
  EXPECT_THAT(unpadded.vectors[0], ElementsAre(1.0f));
}

// Without "index", data order is input order; an empty list is no vectors.
TEST_F(EmbeddingsTest, UsesDataOrderWithoutIndex) {
  EmbeddingAnswer a = Parse(R"({"data": [{"embedding": [1]}, {"embedding": [2]}]})");
  ASSERT_EQ(a.vectors.size(), 2u);
  EXPECT_THAT(a.vectors[1], ElementsAre(2.0f));
  EXPECT_TRUE(Parse(R"({"object": "list", "data": []})").vectors.empty());
}

// An error body, and an unparseable body with an error status, are error answers.
TEST_F(EmbeddingsTest, ReadsErrorBodiesAsErrorAnswers) {
  EmbeddingAnswer e = Parse(
      R"({"error": {"message": "This model's maximum context length is 8192 tokens",
                    "type": "invalid_request_error", "param": null, "code": null}})",
      400);
  ASSERT_TRUE(e.error.has_value());
  EXPECT_EQ(e.error->type, "invalid_request_error");
  EXPECT_THAT(e.error->message, HasSubstr("8192"));
  EmbeddingAnswer gateway = Parse("<html>502 Bad Gateway</html>", 502);
  ASSERT_TRUE(gateway.error.has_value());
  EXPECT_EQ(gateway.error->type, "http_502");
  EmbeddingAnswer empty = Parse("", 503);
  ASSERT_TRUE(empty.error.has_value());
  EXPECT_EQ(empty.error->type, "http_503");
  // A well-formed body with an error status still carries the status.
  EmbeddingAnswer odd = Parse(kFloatBody, 500);
  ASSERT_TRUE(odd.error.has_value());
  EXPECT_EQ(odd.error->type, "http_500");
}

// Malformed bodies are InvalidArgument naming what and where.
TEST_F(EmbeddingsTest, RejectsMalformedBodiesWithClearErrors) {
  auto rejects = [](std::string_view body, std::string_view what) {
    EXPECT_THAT(ParseEmbeddingAnswer(body), StatusIs(absl::StatusCode::kInvalidArgument, what))
        << body;
  };
  rejects("", "body is empty");
  rejects(" \n", "body is empty");
  rejects("{\"data\": [", "not valid JSON");
  rejects("[1, 2]", "not a JSON object");
  rejects(R"({"object": "list"})", "no \"data\" array");
  rejects(R"({"data": {"embedding": [1]}})", "no \"data\" array");
  rejects(R"({"data": [3]})", "data[0]: not an object");
  rejects(R"({"data": [{"index": 0}]})", "data[0].embedding: missing");
  rejects(R"({"data": [{"index": 2, "embedding": [1]}, {"index": 0, "embedding": [1]}]})",
          "data[0].index: must be an integer in 0..1, got 2");
  rejects(R"({"data": [{"index": -1, "embedding": [1]}]})", "data[0].index");
  rejects(R"({"data": [{"index": "0", "embedding": [1]}]})", "data[0].index");
  rejects(R"({"data": [{"index": 0, "embedding": [1]}, {"index": 0, "embedding": [2]}]})",
          "data[1].index: 0 appears more than once");
  rejects(R"({"data": [{"embedding": {"x": 1}}]})",
          "data[0].embedding: must be an array of numbers or a base64 string");
  rejects(R"({"data": [{"embedding": [1, "2"]}]})", "data[0].embedding[1]: not a number");
  rejects(R"({"data": [{"embedding": [1, 1e39]}]})", "data[0].embedding[1]: not a finite float32");
  rejects(R"({"data": [{"embedding": "not base64!"}]})", "data[0].embedding: not valid base64");
  rejects(R"({"data": [{"embedding": "AACAPwA="}]})",
          "5 bytes of base64 are not a whole number of float32 values");
  rejects(R"({"data": [{"embedding": "AADAfwAAgD8="}]})",  // NaN, 1.0
          "data[0].embedding[0]: not a finite float32");
}

// ---- comparison ----

// Identical embeddings are equivalent with full scores.
TEST_F(EmbeddingsTest, IdenticalEmbeddingsAreEquivalent) {
  EmbeddingAnswer a = Parse(kFloatBody);
  v1::Comparison c = Run(a, Parse(kBase64Body));
  EXPECT_EQ(c.verdict(), v1::VERDICT_EQUIVALENT) << c.DebugString();
  EXPECT_EQ(c.request_kind(), "embedding");
  EXPECT_DOUBLE_EQ(Score(c, "dimension")->score(), 1.0);
  EXPECT_NEAR(Score(c, "cosine")->score(), 1.0, 1e-12);
  EXPECT_EQ(c.findings_size(), 0);
  EXPECT_EQ(c.production_model(), "text-embedding-3-small");
  EXPECT_EQ(c.candidate_model(), "text-embedding-3-small");
}

// The mean cosine against the thresholds gives equivalent / minor / major.
TEST_F(EmbeddingsTest, MeanCosineThresholdsDecideTheVerdict) {
  const EmbeddingAnswer production = Vectors({At(1), At(1)});
  EXPECT_EQ(Run(production, Vectors({At(0.99), At(0.985)})).verdict(), v1::VERDICT_EQUIVALENT);
  v1::Comparison minor = Run(production, Vectors({At(0.99), At(0.91)}));  // mean 0.95
  EXPECT_EQ(minor.verdict(), v1::VERDICT_MINOR_DIFF) << minor.DebugString();
  EXPECT_NEAR(Score(minor, "cosine")->score(), 0.95, 1e-6);
  EXPECT_THAT(Score(minor, "cosine")->explanation(),
              HasSubstr("mean cosine 0.9500 over 2 inputs, min 0.9100 (input 1)"));
  ASSERT_EQ(minor.findings_size(), 1);
  EXPECT_EQ(minor.findings(0).kind(), "embedding_cosine");
  EXPECT_EQ(minor.findings(0).path(), "data[1]");
  EXPECT_FALSE(minor.findings(0).major());
  v1::Comparison major = Run(production, Vectors({At(0.9), At(0.8)}));  // mean 0.85
  EXPECT_EQ(major.verdict(), v1::VERDICT_MAJOR_DIFF);
  // Findings list the worst input first.
  EXPECT_THAT(Kinds(major), ElementsAre("embedding_cosine", "embedding_cosine"));
  EXPECT_EQ(major.findings(0).path(), "data[1]");
  // Orthogonal and opposite vectors: cosine 0 (clamped), major.
  v1::Comparison opposite = Run(Vectors({{1, 0}}), Vectors({{-1, 0}}));
  EXPECT_EQ(opposite.verdict(), v1::VERDICT_MAJOR_DIFF);
  EXPECT_DOUBLE_EQ(Score(opposite, "cosine")->score(), 0.0);
}

// The thresholds come from the options.
TEST_F(EmbeddingsTest, ThresholdsFollowTheOptions) {
  const EmbeddingAnswer production = Vectors({At(1)});
  const EmbeddingAnswer candidate = Vectors({At(0.95)});
  EXPECT_EQ(Run(production, candidate).verdict(), v1::VERDICT_MINOR_DIFF);
  options_.embedding_min_cosine = 0.94;
  EXPECT_EQ(Run(production, candidate).verdict(), v1::VERDICT_EQUIVALENT);
  options_.embedding_min_cosine = 0.999;
  options_.embedding_major_cosine = 0.96;
  EXPECT_EQ(Run(production, candidate).verdict(), v1::VERDICT_MAJOR_DIFF);
}

// Cosine ignores vector length: a scaled vector is the same direction.
TEST_F(EmbeddingsTest, CosineIgnoresMagnitudeAndHandlesZeroVectors) {
  EXPECT_EQ(Run(Vectors({{1, 2, 3}}), Vectors({{2, 4, 6}})).verdict(), v1::VERDICT_EQUIVALENT);
  EXPECT_EQ(Run(Vectors({{0, 0}}), Vectors({{0, 0}})).verdict(), v1::VERDICT_EQUIVALENT);
  EXPECT_EQ(Run(Vectors({{0, 0}}), Vectors({{1, 0}})).verdict(), v1::VERDICT_MAJOR_DIFF);
  // No inputs on either side: nothing differs.
  EXPECT_EQ(Run(Vectors({}), Vectors({})).verdict(), v1::VERDICT_EQUIVALENT);
}

// Different dimensions are major whatever the values; cosine does not apply.
TEST_F(EmbeddingsTest, DimensionMismatchIsMajor) {
  v1::Comparison c = Run(Vectors({{1, 0, 0}, {0, 1, 0}}), Vectors({{1, 0}, {0, 1}}, "other"));
  EXPECT_EQ(c.verdict(), v1::VERDICT_MAJOR_DIFF);
  EXPECT_DOUBLE_EQ(Score(c, "dimension")->score(), 0.0);
  EXPECT_FALSE(Score(c, "cosine")->applicable());
  ASSERT_EQ(c.findings_size(), 1);
  EXPECT_EQ(c.findings(0).kind(), "embedding_dimension");
  EXPECT_TRUE(c.findings(0).major());
  EXPECT_EQ(c.findings(0).production(), "3 dimensions");
  EXPECT_EQ(c.findings(0).candidate(), "2 dimensions");
  EXPECT_THAT(c.findings(0).message(), HasSubstr("2 of 2 inputs differ"));
  // Even with every threshold at 0.
  options_.embedding_min_cosine = 0;
  options_.embedding_major_cosine = 0;
  EXPECT_EQ(Run(Vectors({{1, 0, 0}}), Vectors({{1, 0}})).verdict(), v1::VERDICT_MAJOR_DIFF);
}

// A different number of vectors is major too.
TEST_F(EmbeddingsTest, VectorCountMismatchIsMajor) {
  v1::Comparison c = Run(Vectors({At(1), At(1)}), Vectors({At(1)}));
  EXPECT_EQ(c.verdict(), v1::VERDICT_MAJOR_DIFF);
  EXPECT_THAT(Kinds(c), ElementsAre("embedding_count"));
  EXPECT_THAT(c.findings(0).message(), HasSubstr("candidate returned 1 embeddings, production 2"));
}

// Errors on either side give the error verdicts, as Compare does.
TEST_F(EmbeddingsTest, ErrorsGiveErrorVerdicts) {
  const EmbeddingAnswer ok = Vectors({At(1)});
  const EmbeddingAnswer failed = EmbeddingAnswer::FromError("rate_limit_exceeded", "slow down");
  v1::Comparison cand = Run(ok, failed);
  EXPECT_EQ(cand.verdict(), v1::VERDICT_CANDIDATE_ERROR);
  ASSERT_EQ(cand.findings_size(), 1);
  EXPECT_EQ(cand.findings(0).candidate(), "rate_limit_exceeded: slow down");
  EXPECT_EQ(Run(failed, ok).verdict(), v1::VERDICT_PRODUCTION_ERROR);
  EXPECT_EQ(Run(failed, failed).verdict(), v1::VERDICT_BOTH_ERROR);
}

// Prices and latencies apply to embeddings; the request's model stands in
// for a production answer without one.
TEST_F(EmbeddingsTest, PricesAndLatenciesApply) {
  options_.prices["text-embedding-3-small"] = ModelPrice{0.02, 0, -1};
  options_.prices["text-embedding-3-large"] = ModelPrice{0.13, 0, -1};
  ctx_.request.model = "text-embedding-3-small";
  ctx_.production_latency_micros = 40000;
  ctx_.candidate_latency_micros = 20000;
  EmbeddingAnswer p = Vectors({At(1)}, "");
  p.usage.input_tokens = 1000;
  EmbeddingAnswer c = Vectors({At(1)}, "text-embedding-3-large");
  c.usage.input_tokens = 1000;
  v1::Comparison r = Run(p, c);
  EXPECT_EQ(r.production_model(), "text-embedding-3-small");
  EXPECT_DOUBLE_EQ(r.production_cost(), 1000 * 0.02 / 1e6);
  EXPECT_DOUBLE_EQ(r.candidate_cost(), 1000 * 0.13 / 1e6);
  EXPECT_DOUBLE_EQ(Score(r, "latency")->score(), 0.5);
}

// Production-vs-production noise in cosine can explain a small difference.
TEST_F(EmbeddingsTest, NoiseCanExplainCosineDifferences) {
  NoiseModel noise(/*quantile=*/0.95, /*min_samples=*/5);
  for (int i = 0; i < 10; ++i) noise.Observe(Run(Vectors({At(1)}), Vectors({At(0.96)})));
  ctx_.noise = &noise;
  v1::Comparison c = Run(Vectors({At(1)}), Vectors({At(0.95)}));
  EXPECT_EQ(c.verdict(), v1::VERDICT_EQUIVALENT) << c.DebugString();
  EXPECT_TRUE(Score(c, "cosine")->noise_explained());
  EXPECT_EQ(Run(Vectors({At(1)}), Vectors({At(0.5)})).verdict(), v1::VERDICT_MAJOR_DIFF);
}

// Comparing any embeddings answer with itself is equivalent and deterministic.
TEST_F(EmbeddingsTest, SelfComparisonIsEquivalentAndDeterministic) {
  for (const EmbeddingAnswer& a : {Parse(kFloatBody), Vectors({At(0.3), At(-0.7), {0, 0, 0, 0}})}) {
    v1::Comparison c = Run(a, a);
    EXPECT_EQ(c.verdict(), v1::VERDICT_EQUIVALENT);
    EXPECT_EQ(c.SerializeAsString(), Run(a, a).SerializeAsString());
  }
}

// ---- options ----

ConfigNode Yaml(std::string_view text) {
  absl::StatusOr<ConfigNode> root = ConfigNode::Parse(text, "t.yaml");
  EXPECT_OK(root);
  return root.ok() ? root->Child("compare") : ConfigNode::Parse("{}", "empty").value();
}

// The embedding thresholds parse from compare:, with defaults 0.98 and 0.9.
TEST_F(EmbeddingsTest, ParsesEmbeddingThresholdsFromConfig) {
  absl::StatusOr<CompareOptions> o = ParseCompareOptions(
      Yaml("compare: {embedding_min_cosine: 0.99, embedding_major_cosine: 0.95}"));
  ASSERT_OK(o);
  EXPECT_DOUBLE_EQ(o->embedding_min_cosine, 0.99);
  EXPECT_DOUBLE_EQ(o->embedding_major_cosine, 0.95);
  absl::StatusOr<CompareOptions> defaults = ParseCompareOptions(Yaml("compare: {}"));
  ASSERT_OK(defaults);
  EXPECT_DOUBLE_EQ(defaults->embedding_min_cosine, 0.98);
  EXPECT_DOUBLE_EQ(defaults->embedding_major_cosine, 0.9);
}

// Bad thresholds are InvalidArgument naming the key path.
TEST_F(EmbeddingsTest, RejectsBadEmbeddingThresholdsNamingTheKeyPath) {
  EXPECT_THAT(ParseCompareOptions(Yaml("compare: {embedding_min_cosine: 1.5}")),
              StatusIs(absl::StatusCode::kInvalidArgument, "compare.embedding_min_cosine"));
  EXPECT_THAT(ParseCompareOptions(Yaml("compare: {embedding_major_cosine: -0.1}")),
              StatusIs(absl::StatusCode::kInvalidArgument, "compare.embedding_major_cosine"));
  EXPECT_THAT(ParseCompareOptions(Yaml("compare: {embedding_min_cosine: high}")),
              StatusIs(absl::StatusCode::kInvalidArgument, "compare.embedding_min_cosine"));
  EXPECT_THAT(
      ParseCompareOptions(
          Yaml("compare: {embedding_min_cosine: 0.9, embedding_major_cosine: 0.95}")),
      StatusIs(
          absl::StatusCode::kInvalidArgument,
          "compare.embedding_major_cosine: must not exceed embedding_min_cosine (0.9), got 0.95"));
  EXPECT_THAT(ParseCompareOptions(Yaml("compare: {embeding_min_cosine: 0.9}")),
              StatusIs(absl::StatusCode::kInvalidArgument, "compare.embeding_min_cosine"));
}

// Embeddings are not chat answers.
TEST_F(EmbeddingsTest, AnswerParserRefusesTheEmbeddingsKind) {
  EXPECT_THAT(ParseAnswerFor(ApiKind::kOpenAiEmbeddings, kFloatBody),
              StatusIs(absl::StatusCode::kInvalidArgument, "ParseEmbeddingAnswer"));
  AnswerParser parser(ApiKind::kOpenAiEmbeddings);
  parser.Feed(kFloatBody);
  EXPECT_THAT(parser.Finish(), StatusIs(absl::StatusCode::kInvalidArgument, "not a chat answer"));
}

// An embeddings request parses: model, no stream, input of any allowed shape.
TEST_F(EmbeddingsTest, ParsesEmbeddingsRequests) {
  for (std::string_view body :
       {R"({"model": "text-embedding-3-small", "input": "hello", "encoding_format": "base64"})",
        R"({"model": "text-embedding-3-small", "input": ["a", "b"], "dimensions": 256})",
        R"({"model": "text-embedding-3-small", "input": [[1, 2, 3], [4]]})"}) {
    absl::StatusOr<RequestInfo> r = ParseRequest(body);
    ASSERT_OK(r) << body;
    EXPECT_EQ(r->model, "text-embedding-3-small");
    EXPECT_FALSE(r->stream);
    EXPECT_FALSE(r->json_expected);
  }
}

}  // namespace
}  // namespace understudy::compare
