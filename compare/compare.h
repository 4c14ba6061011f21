// compare/compare.h
// Compares a production LLM answer with a candidate (shadow) one and tells a
// real regression from the noise a model shows against itself. Parses OpenAI
// Chat Completions, OpenAI Responses and Anthropic Messages responses (JSON
// or SSE, detected or named by ApiKind), runs LLM-aware comparators (exact,
// ROUGE-L LCS-F1, chrF, salient tokens, JSON structure, tool calls, finish
// reason, refusal, length, cost, latency) and returns an
// understudy.v1.Comparison with scores, findings and a verdict. OpenAI
// embeddings answers have their own parser and comparison (cosine
// similarity, dimensions).
// A pure library: no file or network I/O, no clock reads (times come in).
//
// Example (given const ConfigNode& root, std::string_view request_body,
//   const std::vector<std::string_view>& response_chunks, const ModelAnswer& production):
//   ASSIGN_OR_RETURN(CompareOptions options, ParseCompareOptions(root.Child("compare")));
//   ASSIGN_OR_RETURN(RequestInfo request, ParseRequest(request_body));
//   AnswerParser parser;
//   for (std::string_view chunk : response_chunks) parser.Feed(chunk);
//   ASSIGN_OR_RETURN(ModelAnswer candidate, parser.Finish());
//   CompareContext ctx;
//   ctx.request = request;
//   v1::Comparison c = Compare(production, candidate, options, ctx);
//   bool alarming = c.verdict() == v1::VERDICT_MAJOR_DIFF;
//
// Example (given const CompareOptions& options, std::string_view path,
//   std::string_view production_body, std::string_view candidate_body):
//   if (ApiKindFromPath(path) == ApiKind::kOpenAiEmbeddings) {
//     ASSIGN_OR_RETURN(EmbeddingAnswer production, ParseEmbeddingAnswer(production_body));
//     ASSIGN_OR_RETURN(EmbeddingAnswer candidate, ParseEmbeddingAnswer(candidate_body));
//     v1::Comparison c = CompareEmbeddings(production, candidate, options);
//     bool drop_in = c.verdict() == v1::VERDICT_EQUIVALENT;
//   } else {
//     ASSIGN_OR_RETURN(ModelAnswer candidate,
//                      ParseAnswerFor(ApiKindFromPath(path), candidate_body));
//   }
//
// Thread safety: free functions are thread-safe; CompareOptions is immutable
// after parsing and may be shared. AnswerParser and NoiseModel are
// thread-compatible (one thread at a time per object; const methods may run
// concurrently).
#ifndef UNDERSTUDY_COMPARE_COMPARE_H_
#define UNDERSTUDY_COMPARE_COMPARE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/config_node.h"
#include "understudy/v1/compare.pb.h"

namespace re2 {
class RE2;
}  // namespace re2

namespace understudy::compare {

class RefusalSet;  // compare/refusal.h

// ------------------------------------------------------------------- APIs --

// ApiKind is the upstream API a request goes to; it tells how the request
// and its answer are read. kUnknown means "tell from the body", which works
// for chat answers (AnswerParser detects them) but not for embeddings.
enum class ApiKind {
  kUnknown,
  kOpenAiChat,         // POST /v1/chat/completions
  kOpenAiResponses,    // POST /v1/responses
  kAnthropicMessages,  // POST /v1/messages
  kOpenAiEmbeddings,   // POST /v1/embeddings
};

// ApiKindName returns "openai_chat", "openai_responses",
// "anthropic_messages", "openai_embeddings", or "unknown".
std::string_view ApiKindName(ApiKind kind);
// ParseApiKindName is the inverse, case-insensitive ("unknown" included);
// nullopt for any other name.
std::optional<ApiKind> ParseApiKindName(std::string_view name);
// ApiKindFromPath tells the API from a request path (Envoy's :path; a query
// string is ignored) by how it ends, so gateway prefixes and Azure
// deployment paths work: ".../chat/completions", ".../responses",
// ".../v1/messages", ".../embeddings", each with an optional trailing '/'.
// Anything else is kUnknown, including sub-resources such as
// /v1/responses/{id} or /v1/messages/count_tokens.
ApiKind ApiKindFromPath(std::string_view path);

// ---------------------------------------------------------------- answers --

// How an answer was sent. New values are added at the end.
enum class WireFormat {
  kUnknown,
  kOpenAIJson,  // Chat Completions
  kOpenAISse,
  kAnthropicJson,
  kAnthropicSse,
  kOpenAIResponsesJson,  // Responses API
  kOpenAIResponsesSse,
};

struct ToolCall {
  std::string id;  // tool call id; the call_id of a Responses function_call
  std::string name;
  std::string arguments_json;  // as sent (OpenAI) or minified input (Anthropic)
  bool operator==(const ToolCall& o) const {
    return id == o.id && name == o.name && arguments_json == o.arguments_json;
  }
};

struct Usage {
  int64_t input_tokens = 0;   // prompt_tokens (Chat, embeddings) / input_tokens
  int64_t output_tokens = 0;  // completion_tokens / output_tokens
  int64_t cached_tokens = 0;  // OpenAI cached_tokens / Anthropic cache_read_input_tokens
  // Of output_tokens, those spent reasoning (OpenAI reasoning_tokens); 0
  // when not reported.
  int64_t reasoning_tokens = 0;
  bool operator==(const Usage& o) const {
    return input_tokens == o.input_tokens && output_tokens == o.output_tokens &&
           cached_tokens == o.cached_tokens && reasoning_tokens == o.reasoning_tokens;
  }
};

struct AnswerError {
  std::string type;  // e.g. "rate_limit_error", "overloaded_error", "http_500"
  std::string message;
  bool operator==(const AnswerError& o) const { return type == o.type && message == o.message; }
};

// ModelAnswer is one model response in a wire-independent shape.
struct ModelAnswer {
  // Concatenated text content of the first choice; for a Responses answer,
  // the output_text and refusal parts of its message items, in order.
  // Reasoning items are not part of the answer.
  std::string text;
  // Chat tool_calls, Anthropic tool_use blocks, Responses function_call
  // items, in order.
  std::vector<ToolCall> tool_calls;
  // Normalised: "stop", "length", "tool_calls", "content_filter", or the raw
  // value when unknown; "" when none was sent. Anthropic end_turn and
  // stop_sequence → "stop", max_tokens → "length", tool_use → "tool_calls",
  // refusal → "content_filter". Responses status "completed" → "stop", or
  // "content_filter" when it has a refusal part, else "tool_calls" when it
  // has function calls; "incomplete" → "length" for max_output_tokens,
  // "content_filter" for content_filter, else the raw reason; "failed",
  // "queued", "in_progress" → "" (and failed sets `error`); any other status
  // as sent.
  std::string finish_reason;
  Usage usage;
  std::string model;
  std::string system_fingerprint;
  // Set for error bodies, error events and failed responses (Responses
  // status "failed": type = error.code).
  std::optional<AnswerError> error;
  // False when a stream ended without its terminator ([DONE] /
  // message_stop / a Responses response.completed, response.incomplete or
  // response.failed), carried a malformed or unexpected event, or mixed
  // APIs. Always true for JSON bodies.
  bool stream_ok = true;
  WireFormat format = WireFormat::kUnknown;

  // FromError builds an answer that carries only an error, for callers that
  // could not get or parse a body: ModelAnswer::FromError("unparseable", msg).
  static ModelAnswer FromError(std::string type, std::string message);

  bool operator==(const ModelAnswer& o) const;
  bool operator!=(const ModelAnswer& o) const { return !(*this == o); }
};

// AnswerParser parses a response body fed in chunks of any size; chunk
// boundaries may fall anywhere (inside a UTF-8 sequence, a JSON string or a
// `data:` line). The result equals ParseAnswer on the whole body.
//
//   AnswerParser p;
//   p.Feed("data: {\"choices\":[{\"delta\":{\"content\":\"Hi\"}}]}\n\nda");
//   p.Feed("ta: [DONE]\n\n");
//   absl::StatusOr<ModelAnswer> a = p.Finish();  // a->text == "Hi"
//
// SSE events are parsed as soon as they are complete, so memory stays
// bounded by one event; JSON bodies are buffered until Finish().
//
// Without an ApiKind (or with kUnknown) the API is detected from the body:
// a JSON object with "choices" is a chat completion, one with "object":
// "response" (or an "output" array) a Responses answer, one with "type":
// "message" (or "content") an Anthropic message; SSE events are told apart
// by their "type" ("response.*" is Responses). A plain {"error": ...} body
// then counts as Chat (kOpenAIJson). With a kind, only that API's shapes
// are accepted: other bodies are InvalidArgument and other events are
// malformed (stream_ok false). A Responses stream may end with an extra
// `data: [DONE]`, which is ignored.
// Thread-compatible.
class AnswerParser {
 public:
  // `http_status` is the upstream status code, 0 when unknown. With a status
  // >= 400 an unparseable body becomes an error answer ("http_<code>")
  // instead of an error status.
  explicit AnswerParser(int http_status = 0);
  // AnswerParser for a known API; kUnknown detects it as above. Finish()
  // is InvalidArgument for kOpenAiEmbeddings (use ParseEmbeddingAnswer).
  explicit AnswerParser(ApiKind kind, int http_status = 0);
  ~AnswerParser();
  AnswerParser(AnswerParser&&) noexcept;
  AnswerParser& operator=(AnswerParser&&) noexcept;

  // Feed appends a chunk. Feeding after Finish() is ignored.
  void Feed(std::string_view chunk);
  // Finish ends the body and returns the answer. A truncated or partly
  // broken stream is returned with stream_ok == false. Returns
  // InvalidArgument when the body is empty, is neither JSON nor SSE, or is
  // not an OpenAI (Chat or Responses) or Anthropic response (of the kind
  // given, if any). Call once.
  [[nodiscard]] absl::StatusOr<ModelAnswer> Finish();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// ParseAnswer parses a whole body (JSON or SSE; OpenAI Chat or Responses,
// or Anthropic; detected). Same contract as AnswerParser::Finish.
[[nodiscard]] absl::StatusOr<ModelAnswer> ParseAnswer(std::string_view body,
                                                      int http_status = 0);
// ParseAnswerFor parses a whole body of a known API (kUnknown detects it,
// as ParseAnswer). Same contract as AnswerParser(kind, http_status).
[[nodiscard]] absl::StatusOr<ModelAnswer> ParseAnswerFor(ApiKind kind, std::string_view body,
                                                         int http_status = 0);

// RequestInfo is what Compare needs from the request body.
struct RequestInfo {
  std::string model;    // "" when absent
  bool stream = false;  // "stream": true
  // Chat response_format, or Responses text.format, of type json_object or
  // json_schema.
  bool json_expected = false;
  // Names of the tools offered, in order: function names (Chat
  // tools[].function.name and legacy functions[].name, Responses and
  // Anthropic tools[].name), else the tool's type for built-in tools
  // ("web_search_preview").
  std::vector<std::string> tool_names;
};

// ParseRequest reads an OpenAI Chat, OpenAI Responses, Anthropic Messages
// or OpenAI embeddings request body. InvalidArgument when the body is not a
// JSON object or a known field has the wrong type (e.g. "input" neither a
// string nor an array, "tools" not an array of objects).
[[nodiscard]] absl::StatusOr<RequestInfo> ParseRequest(std::string_view body);

// ------------------------------------------------------------- embeddings --

// EmbeddingAnswer is one OpenAI embeddings response (POST /v1/embeddings).
// Embeddings are vectors, not chat: AnswerParser does not read them, and
// CompareEmbeddings (not Compare) compares them.
struct EmbeddingAnswer {
  // One vector per input, in input order (data[].index). Vectors sent as
  // base64 (encoding_format "base64": little-endian float32) are decoded.
  std::vector<std::vector<float>> vectors;
  std::string model;
  Usage usage;  // input_tokens = prompt_tokens; embeddings have no output
  std::optional<AnswerError> error;  // set for error bodies

  // FromError builds an answer that carries only an error, for callers that
  // could not get or parse a body.
  static EmbeddingAnswer FromError(std::string type, std::string message);

  bool operator==(const EmbeddingAnswer& o) const {
    return vectors == o.vectors && model == o.model && usage == o.usage && error == o.error;
  }
  bool operator!=(const EmbeddingAnswer& o) const { return !(*this == o); }
};

// ParseEmbeddingAnswer parses a whole embeddings response body:
//   {"object": "list", "model": "...", "usage": {"prompt_tokens": 8, ...},
//    "data": [{"object": "embedding", "index": 0, "embedding": [0.1, ...]}]}
// where each "embedding" is an array of numbers or a base64 string. An
// {"error": ...} body gives an answer carrying the error; with
// http_status >= 400 an unparseable body becomes an error answer
// ("http_<code>"). Otherwise InvalidArgument naming what is wrong: an empty
// or non-JSON body, no "data" array, an index out of 0..n-1 or repeated,
// an embedding that is neither numbers nor base64 of whole float32s, or a
// value that is not a finite float32.
[[nodiscard]] absl::StatusOr<EmbeddingAnswer> ParseEmbeddingAnswer(std::string_view body,
                                                                   int http_status = 0);

// ---------------------------------------------------------------- options --

struct ModelPrice {
  double input_per_million = 0;   // currency units per 1M input tokens
  double output_per_million = 0;  // per 1M output tokens
  double cached_input_per_million = -1;  // < 0: same as input
};

// CompareOptions is the typed `compare:` config section.
struct CompareOptions {
  // Text similarity (mean of LCS-F1 and chrF) at or above which an answer
  // with no findings is equivalent, and below which it is a major diff.
  double equivalent_similarity = 0.95;
  double major_similarity = 0.5;
  // A length ratio (shorter/longer) below this is a finding.
  double min_length_ratio = 0.5;
  bool case_sensitive = false;
  // Numbers (in JSON and salient tokens) are equal when
  // |a-b| <= numeric_tolerance * max(1, |a|, |b|).
  double numeric_tolerance = 1e-9;
  // JSON paths ignored by the JSON diff, e.g. "$.id", "$.items[*].ts"; `*`
  // matches any run of characters except '.'.
  std::vector<std::string> json_ignore_paths;
  // RE2 patterns that mark a refusal (any match in the first 1 KiB).
  std::vector<std::string> refusal_patterns = DefaultRefusalPatterns();
  // Model name (or prefix, longest wins) → price.
  std::map<std::string, ModelPrice> prices;
  int chrf_order = 6;       // character n-gram orders 1..chrf_order
  double chrf_beta = 2.0;   // recall weight
  int max_findings = 20;
  // Noise: a difference counts only when it exceeds the production noise
  // level (quantile `noise_quantile` of 1 - score) by both margins:
  // diff > noise * (1 + noise_relative_margin) + noise_absolute_margin.
  double noise_quantile = 0.95;
  int64_t noise_min_samples = 20;
  double noise_relative_margin = 0.25;
  double noise_absolute_margin = 0.02;
  // Embeddings (CompareEmbeddings): a mean cosine similarity at or above
  // embedding_min_cosine is equivalent, below embedding_major_cosine a
  // major diff, in between a minor diff. Both in [0, 1], major <= min.
  double embedding_min_cosine = 0.98;
  double embedding_major_cosine = 0.9;

  // Compiled refusal_patterns; ParseCompareOptions and CompileRefusalPatterns
  // fill it. When null, Compare compiles the patterns itself (slower).
  std::shared_ptr<const std::vector<std::unique_ptr<re2::RE2>>> compiled_refusals;
  // The same patterns as one RE2::Set (one scan for all of them), filled
  // with compiled_refusals; Compare uses it when set.
  std::shared_ptr<const RefusalSet> compiled_refusal_set;

  static std::vector<std::string> DefaultRefusalPatterns();
};

// CompileRefusalPatterns compiles options->refusal_patterns; InvalidArgument
// naming the bad pattern. Call after editing patterns by hand.
[[nodiscard]] absl::Status CompileRefusalPatterns(CompareOptions* options);

// ParseCompareOptions parses the `compare:` section (an undefined node gives
// the defaults). Errors are InvalidArgument naming the key path, e.g.
// "compare.thresholds.equivalent: must be in [0, 1], got 2".
//
//   compare:
//     thresholds: {equivalent: 0.95, major: 0.5, length_ratio: 0.5}
//     case_sensitive: false
//     numeric_tolerance: 1e-6
//     json_ignore_paths: ["$.id", "$.items[*].created"]
//     refusal_patterns: ["(?i)I can(no|')t help"]
//     prices: {gpt-4o: {input: 2.5, output: 10, cached_input: 1.25}}
//     chrf: {order: 6, beta: 2}
//     max_findings: 20
//     noise: {quantile: 0.95, min_samples: 20, relative_margin: 0.25,
//             absolute_margin: 0.02}
//     embedding_min_cosine: 0.98    # mean cosine for equivalent embeddings
//     embedding_major_cosine: 0.9   # below it embeddings differ majorly
[[nodiscard]] absl::StatusOr<CompareOptions> ParseCompareOptions(
    const understudy::ConfigNode& node);

// ------------------------------------------------------------------ noise --

// NoiseModel learns how much production disagrees with itself: per
// comparator, a histogram of (1 - score) over production-vs-production
// comparisons, overall and per request kind ("json" / "text"). Compare asks
// it for the noise level (a quantile) of each comparator.
//
//   NoiseModel noise(/*quantile=*/0.95, /*min_samples=*/20);
//   noise.Observe(Compare(production_a, production_b, options, ctx));
//   ctx.noise = &noise;  // later comparisons mark noise-explained findings
//
// Thread-compatible: Observe needs external synchronisation against every
// other call; const methods may run concurrently with each other. Results
// depend only on the multiset of observations (deterministic).
class NoiseModel {
 public:
  explicit NoiseModel(double quantile = 0.95, int64_t min_samples = 20);

  // Observe records one production-vs-production comparison.
  void Observe(const understudy::v1::Comparison& production_vs_production);
  // NoiseLevel returns the quantile of (1 - score) for `comparator`, from
  // the `request_kind` histogram when it has min_samples, else from the
  // overall one, else nullopt.
  std::optional<double> NoiseLevel(std::string_view comparator,
                                   std::string_view request_kind) const;
  // Samples counts observations of `comparator` ("" kind = overall).
  int64_t Samples(std::string_view comparator, std::string_view request_kind = "") const;

 private:
  static constexpr int kBins = 200;
  struct Histogram {
    int64_t count = 0;
    std::vector<int64_t> bins = std::vector<int64_t>(kBins + 1, 0);
  };
  std::optional<double> Quantile(const Histogram& h) const;
  double quantile_;
  int64_t min_samples_;
  // key: kind + '/' + comparator; kind "" is overall.
  absl::flat_hash_map<std::string, Histogram> hist_;
};

// ---------------------------------------------------------------- compare --

// CompareContext carries what is known besides the two answers. Times are
// microseconds, 0 when unknown.
struct CompareContext {
  std::string request_id;
  int64_t time_unix_micros = 0;
  RequestInfo request;
  int64_t production_latency_micros = 0;
  int64_t candidate_latency_micros = 0;
  int64_t production_ttft_micros = 0;
  int64_t candidate_ttft_micros = 0;
  understudy::v1::Arm live_arm = understudy::v1::ARM_PRODUCTION;
  const NoiseModel* noise = nullptr;  // not owned; may be null
};

// Compare scores `candidate` against `production`. Scores (name, in [0,1]):
// exact, lcs_f1, chrf, salient, json, tool_calls, finish_reason, refusal,
// length_ratio, cost, latency, ttft. Verdict: candidate_error /
// production_error / both_error when an answer has an error or a broken
// stream; else equivalent when the normalised answers are equal or the text
// similarity is >= equivalent_similarity with no finding beyond noise;
// major_diff on a major finding or similarity < major_similarity beyond
// noise; else minor_diff. Deterministic; Compare(x, x) is equivalent for
// any answer without an error.
understudy::v1::Comparison Compare(const ModelAnswer& production, const ModelAnswer& candidate,
                                   const CompareOptions& options, const CompareContext& ctx);

// CompareEmbeddings compares two embeddings answers for the same inputs.
// Scores: "dimension" (1 when both have as many vectors and each pair has
// the same size; else 0 with a major finding, embedding_count or
// embedding_dimension), "cosine" (mean cosine similarity of the pairs,
// clamped to [0, 1]; the explanation gives the minimum and its input; not
// applicable when dimensions differ), "cost", "latency", "ttft" (as
// Compare). Every input whose cosine is below embedding_min_cosine is a
// minor "embedding_cosine" finding, worst first. Verdict: candidate_error /
// production_error / both_error as Compare; major_diff when the dimension
// differs or the mean cosine is below options.embedding_major_cosine (beyond
// noise); equivalent when it is at least options.embedding_min_cosine (or
// within noise); else minor_diff. request_kind is "embedding".
// Deterministic; CompareEmbeddings(x, x) is equivalent for any answer
// without an error.
//
// Cosine similarity compares vectors of one embedding space only: use it
// for the same model (a new version or deployment, quantisation, another
// provider of it) or a candidate built as a drop-in replacement of the
// production model. The vectors of two unrelated models are not comparable
// even at equal dimension (their cosines are near random and come out as a
// major diff, rightly: one index cannot mix them). A dimension mismatch is
// always major.
understudy::v1::Comparison CompareEmbeddings(const EmbeddingAnswer& production,
                                             const EmbeddingAnswer& candidate,
                                             const CompareOptions& options,
                                             const CompareContext& ctx = CompareContext());

// VerdictName returns "equivalent", "minor_diff", ... for a verdict.
std::string_view VerdictName(understudy::v1::Verdict verdict);
// ParseVerdictName is the inverse, case-insensitive, with or without the
// "verdict_" prefix ("major_diff", "VERDICT_MAJOR_DIFF"); nullopt otherwise
// (including "unspecified").
std::optional<understudy::v1::Verdict> ParseVerdictName(std::string_view name);

// PriceFor finds the price of `model` in `prices`: an exact name, or the
// longest configured prefix ("gpt-4o" prices "gpt-4o-2024-08-06"). Null
// when none matches.
const ModelPrice* PriceFor(const std::map<std::string, ModelPrice>& prices,
                           std::string_view model);

// UsageCost is the cost of `usage` at `price` (cached input tokens at the
// cached price when one is set).
double UsageCost(const ModelPrice& price, const Usage& usage);

// AnswerCost prices an answer by its own model name, else `request_model`;
// nullopt when neither has a price.
std::optional<double> AnswerCost(const ModelAnswer& answer, std::string_view request_model,
                                 const CompareOptions& options);

}  // namespace understudy::compare

#endif  // UNDERSTUDY_COMPARE_COMPARE_H_
