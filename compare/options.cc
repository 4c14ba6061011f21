// ParseCompareOptions: the `compare:` config section → CompareOptions.
#include <re2/re2.h>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "compare/compare.h"
#include "compare/refusal.h"

namespace understudy::compare {

std::vector<std::string> CompareOptions::DefaultRefusalPatterns() {
  return {
      R"((?i)\bI(?:'m| am) (?:sorry|afraid),? (?:but )?I (?:can(?:no|')t|won't|am unable|'m unable))",
      R"((?i)\bI (?:can(?:no|')t|won't|am unable to|'m unable to|am not able to) (?:help|assist|comply|provide|do that|fulfil|fulfill|support))",
      R"((?i)\bI must (?:decline|refuse))",
      R"((?i)\bas an AI(?: language model)?, I (?:can(?:no|')t|am not able|don't))",
  };
}

RefusalSet::RefusalSet() : set_(MakeOptions(), RE2::UNANCHORED) {}

RE2::Options RefusalSet::MakeOptions() {
  RE2::Options options;
  options.set_log_errors(false);
  return options;
}

std::unique_ptr<RefusalSet> RefusalSet::Create(
    std::shared_ptr<const std::vector<std::unique_ptr<re2::RE2>>> patterns) {
  if (patterns == nullptr || patterns->empty()) return nullptr;
  std::unique_ptr<RefusalSet> s(new RefusalSet());
  for (const auto& re : *patterns) {
    if (s->set_.Add(re->pattern(), nullptr) < 0) return nullptr;
  }
  if (!s->set_.Compile()) return nullptr;
  s->patterns_ = std::move(patterns);
  return s;
}

bool RefusalSet::Matches(std::string_view text) const {
  const re2::StringPiece piece(text.data(), text.size());
  re2::RE2::Set::ErrorInfo error;
  if (set_.Match(piece, nullptr, &error)) return true;
  if (error.kind == re2::RE2::Set::kNoError) return false;
  return MatchesAnyPattern(text, *patterns_);  // e.g. the DFA ran out of memory
}

bool MatchesAnyPattern(std::string_view text,
                       const std::vector<std::unique_ptr<re2::RE2>>& patterns) {
  const re2::StringPiece piece(text.data(), text.size());
  for (const auto& re : patterns) {
    if (re2::RE2::PartialMatch(piece, *re)) return true;
  }
  return false;
}

absl::Status CompileRefusalPatterns(CompareOptions* options) {
  auto compiled = std::make_shared<std::vector<std::unique_ptr<re2::RE2>>>();
  for (size_t i = 0; i < options->refusal_patterns.size(); ++i) {
    RE2::Options re_options;
    re_options.set_log_errors(false);
    auto re = std::make_unique<re2::RE2>(options->refusal_patterns[i], re_options);
    if (!re->ok()) {
      return absl::InvalidArgumentError(absl::StrCat("refusal_patterns[", i, "]: ", re->error()));
    }
    compiled->push_back(std::move(re));
  }
  options->compiled_refusals = std::move(compiled);
  options->compiled_refusal_set = RefusalSet::Create(options->compiled_refusals);
  return absl::OkStatus();
}

absl::StatusOr<CompareOptions> ParseCompareOptions(const understudy::ConfigNode& node) {
  CompareOptions o;
  if (!node.IsDefined()) {
    RETURN_IF_ERROR(CompileRefusalPatterns(&o));
    return o;
  }
  if (!node.IsMap()) return absl::InvalidArgumentError(absl::StrCat(node.Path(), ": must be a map"));
  RETURN_IF_ERROR(node.CheckKeys({"thresholds", "case_sensitive", "numeric_tolerance",
                                  "json_ignore_paths", "refusal_patterns", "prices", "chrf",
                                  "max_findings", "noise", "embedding_min_cosine",
                                  "embedding_major_cosine"}));
  ConfigNode th = node.Child("thresholds");
  if (th.IsDefined()) {
    RETURN_IF_ERROR(th.CheckKeys({"equivalent", "major", "length_ratio"}));
    ASSIGN_OR_RETURN(o.equivalent_similarity,
                     th.GetDouble("equivalent", o.equivalent_similarity, 0, 1));
    ASSIGN_OR_RETURN(o.major_similarity, th.GetDouble("major", o.major_similarity, 0, 1));
    ASSIGN_OR_RETURN(o.min_length_ratio, th.GetDouble("length_ratio", o.min_length_ratio, 0, 1));
    if (o.major_similarity > o.equivalent_similarity) {
      return th.Error("major", absl::StrCat("must not exceed thresholds.equivalent (",
                                            o.equivalent_similarity, "), got ",
                                            o.major_similarity));
    }
  }
  ASSIGN_OR_RETURN(o.case_sensitive, node.GetBool("case_sensitive", o.case_sensitive));
  ASSIGN_OR_RETURN(o.numeric_tolerance,
                   node.GetDouble("numeric_tolerance", o.numeric_tolerance, 0, 1e9));
  ASSIGN_OR_RETURN(o.json_ignore_paths, node.GetStringList("json_ignore_paths"));
  for (size_t i = 0; i < o.json_ignore_paths.size(); ++i) {
    if (o.json_ignore_paths[i].empty() || o.json_ignore_paths[i][0] != '$') {
      return absl::InvalidArgumentError(
          absl::StrCat(node.PathOf("json_ignore_paths"), "[", i, "]: must start with '$', got \"",
                       o.json_ignore_paths[i], "\""));
    }
  }
  if (node.Has("refusal_patterns")) {
    ASSIGN_OR_RETURN(o.refusal_patterns, node.GetStringList("refusal_patterns"));
  }
  absl::Status compiled = CompileRefusalPatterns(&o);
  if (!compiled.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(node.Path().empty() ? "" : node.Path() + ".", compiled.message()));
  }
  ConfigNode prices = node.Child("prices");
  if (prices.IsDefined()) {
    if (!prices.IsMap()) {
      return absl::InvalidArgumentError(absl::StrCat(prices.Path(), ": must be a map of model: {input, output}"));
    }
    for (const std::string& model : prices.Keys()) {
      ConfigNode p = prices.Child(model);
      if (!p.IsMap()) {
        return prices.Error(model, "must be a map with input and output prices per 1M tokens");
      }
      RETURN_IF_ERROR(p.CheckKeys({"input", "output", "cached_input"}));
      if (!p.Has("input") || !p.Has("output")) {
        return prices.Error(model, "needs both input and output (price per 1M tokens)");
      }
      ModelPrice price;
      ASSIGN_OR_RETURN(price.input_per_million, p.GetDouble("input", 0, 0, 1e9));
      ASSIGN_OR_RETURN(price.output_per_million, p.GetDouble("output", 0, 0, 1e9));
      ASSIGN_OR_RETURN(price.cached_input_per_million, p.GetDouble("cached_input", -1, -1, 1e9));
      o.prices[model] = price;
    }
  }
  ConfigNode chrf = node.Child("chrf");
  if (chrf.IsDefined()) {
    RETURN_IF_ERROR(chrf.CheckKeys({"order", "beta"}));
    ASSIGN_OR_RETURN(int64_t order, chrf.GetInt("order", o.chrf_order, 1, 12));
    o.chrf_order = static_cast<int>(order);
    ASSIGN_OR_RETURN(o.chrf_beta, chrf.GetDouble("beta", o.chrf_beta, 0.01, 100));
  }
  ASSIGN_OR_RETURN(int64_t max_findings, node.GetInt("max_findings", o.max_findings, 1, 1000));
  o.max_findings = static_cast<int>(max_findings);
  ConfigNode noise = node.Child("noise");
  if (noise.IsDefined()) {
    RETURN_IF_ERROR(
        noise.CheckKeys({"quantile", "min_samples", "relative_margin", "absolute_margin"}));
    ASSIGN_OR_RETURN(o.noise_quantile, noise.GetDouble("quantile", o.noise_quantile, 0.5, 1));
    ASSIGN_OR_RETURN(o.noise_min_samples,
                     noise.GetInt("min_samples", o.noise_min_samples, 1, 1000000000));
    ASSIGN_OR_RETURN(o.noise_relative_margin,
                     noise.GetDouble("relative_margin", o.noise_relative_margin, 0, 100));
    ASSIGN_OR_RETURN(o.noise_absolute_margin,
                     noise.GetDouble("absolute_margin", o.noise_absolute_margin, 0, 1));
  }
  ASSIGN_OR_RETURN(o.embedding_min_cosine,
                   node.GetDouble("embedding_min_cosine", o.embedding_min_cosine, 0, 1));
  ASSIGN_OR_RETURN(o.embedding_major_cosine,
                   node.GetDouble("embedding_major_cosine", o.embedding_major_cosine, 0, 1));
  if (o.embedding_major_cosine > o.embedding_min_cosine) {
    return node.Error("embedding_major_cosine",
                      absl::StrCat("must not exceed embedding_min_cosine (", o.embedding_min_cosine,
                                   "), got ", o.embedding_major_cosine));
  }
  return o;
}

}  // namespace understudy::compare
