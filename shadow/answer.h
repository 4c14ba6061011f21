// shadow/answer.h
// What an answer from a model upstream says, judged the same way whether
// Envoy handed it to the sidecar (a live exchange) or the shadow client
// fetched it (a mirrored one): bodies decoded by their Content-Encoding
// with the same limits, parsed by the request's API, and classified into
// one rollout::OutcomeClass.
//
// Example (given v1::Exchange exchange, const compare::CompareOptions& options):
//   PrepareExchange(&exchange, encoding::DecodeLimits{});
//   ParsedAnswer answer;
//   AnswerFacts facts = ClassifyExchange(exchange, &options, &answer);
//   bool failed = rollout::IsError(facts.outcome);
//
// Thread safety: pure functions.
#ifndef UNDERSTUDY_SHADOW_ANSWER_H_
#define UNDERSTUDY_SHADOW_ANSWER_H_

#include <optional>
#include <string>

#include "absl/time/time.h"
#include "compare/compare.h"
#include "encoding/content_decoder.h"
#include "rollout/rollout.h"
#include "understudy/v1/exchange.pb.h"

namespace understudy::shadow {

// ParsedAnswer is what a response body parsed into, by its API.
struct ParsedAnswer {
  std::optional<compare::ModelAnswer> chat;           // chat, Responses, Anthropic
  std::optional<compare::EmbeddingAnswer> embedding;  // embeddings
  bool parsed() const { return chat.has_value() || embedding.has_value(); }
};

// AnswerFacts are what the judge and the metrics need of one exchange.
struct AnswerFacts {
  rollout::OutcomeClass outcome = rollout::OutcomeClass::kOk;
  std::string request_model;
  std::string response_model;
  compare::Usage usage;
  std::optional<double> cost;
  std::optional<absl::Duration> latency;
  std::optional<absl::Duration> ttft;
  // What the drift watch reads (drift/drift.h), from a parsed chat answer:
  // the answer's system_fingerprint ("" when none), its normalised
  // finish_reason, its text length in bytes (unset when not parsed), and
  // whether it is a refusal (finish_reason content_filter, or a
  // compare.refusal_patterns match in its first 1 KiB; needs `options`).
  std::string system_fingerprint;
  std::string finish_reason;
  std::optional<int64_t> answer_chars;
  bool refusal = false;
  // The request asked for JSON (response_format / text.format) and the
  // answer's text is not a JSON value.
  bool invalid_json = false;
};

// ExchangeApi is the exchange's API: as the traffic scope classified it
// (Exchange.api), else from its path (compare::ApiKindFromPath).
compare::ApiKind ExchangeApi(const understudy::v1::Exchange& exchange);

// PrepareExchange decodes both bodies by their Content-Encoding
// (encoding/http_body.h) and sets Exchange.unsupported when the answer
// cannot be judged on its content: an unknown content coding, or a 2xx
// answer of an unknown API whose Content-Type is neither JSON nor an event
// stream. Idempotent.
void PrepareExchange(understudy::v1::Exchange* exchange, const encoding::DecodeLimits& limits);

// ClassifyExchange parses a prepared exchange's response by its API and
// returns its outcome: the HTTP status class, then, for a 2xx with a whole
// body, kInvalidBody for a body of a known API that does not parse, a
// broken stream or corrupt coded data, kServerError for an error the body
// carries. An unsupported answer, or a body of an unknown API that no
// parser reads, is judged on its status alone. `options` (may be null)
// prices the answer. `answer` (may be null) receives the parsed body.
AnswerFacts ClassifyExchange(const understudy::v1::Exchange& exchange,
                             const compare::CompareOptions* options, ParsedAnswer* answer);

}  // namespace understudy::shadow

#endif  // UNDERSTUDY_SHADOW_ANSWER_H_
