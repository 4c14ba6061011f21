#include "shadow/answer.h"

#include <algorithm>
#include <memory>
#include <utility>

#include <nlohmann/json.hpp>

#include "re2/re2.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "encoding/http_body.h"

namespace understudy::shadow {

namespace v1 = understudy::v1;
using rollout::OutcomeClass;

namespace {

std::optional<absl::Duration> OffsetOrNone(int64_t micros) {
  if (micros < 0) return std::nullopt;
  return absl::Microseconds(micros);
}

// JudgeableContentType: JSON (application/json, +json) or an event stream,
// or no Content-Type at all (then the body decides).
bool JudgeableContentType(std::string_view content_type) {
  const std::string t = absl::AsciiStrToLower(Av(content_type));
  return t.empty() || absl::StrContains(t, "json") || absl::StrContains(t, "event-stream");
}

}  // namespace

compare::ApiKind ExchangeApi(const v1::Exchange& e) {
  if (!e.api().empty()) {
    std::optional<compare::ApiKind> kind = compare::ParseApiKindName(e.api());
    if (kind.has_value()) return *kind;
  }
  return compare::ApiKindFromPath(e.path());
}

void PrepareExchange(v1::Exchange* e, const encoding::DecodeLimits& limits) {
  encoding::DecodeMessageBody(e->mutable_request(), limits);
  encoding::DecodeMessageBody(e->mutable_response(), limits);
  if (!e->unsupported().empty()) return;
  const v1::HttpMessage& resp = e->response();
  if (resp.body_decode() == v1::BODY_DECODE_UNSUPPORTED) {
    e->set_unsupported(absl::StrCat("content coding \"", encoding::HeaderValue(resp, "content-encoding"),
                                    "\""));
    return;
  }
  // An API the sidecar does not know, answered with something that is not
  // JSON or an event stream, cannot be judged on its content. (For a known
  // API such an answer is a broken one: ClassifyExchange says so.)
  const std::string content_type = encoding::HeaderValue(resp, "content-type");
  if (ExchangeApi(*e) == compare::ApiKind::kUnknown && e->status_code() >= 200 &&
      e->status_code() < 300 && !resp.body().empty() && !JudgeableContentType(content_type)) {
    e->set_unsupported(absl::StrCat("unknown API at ", e->path(), ": content type ",
                                    content_type));
  }
}

namespace {

// IsRefusal matches the configured refusal patterns on the start of `text`.
bool IsRefusal(std::string_view text, const compare::CompareOptions* options) {
  if (options == nullptr || options->compiled_refusals == nullptr) return false;
  const re2::StringPiece head(text.data(), std::min<size_t>(text.size(), 1024));
  for (const std::unique_ptr<re2::RE2>& re : *options->compiled_refusals) {
    if (re != nullptr && re2::RE2::PartialMatch(head, *re)) return true;
  }
  return false;
}

}  // namespace

AnswerFacts ClassifyExchange(const v1::Exchange& e, const compare::CompareOptions* options,
                             ParsedAnswer* answer) {
  AnswerFacts f;
  bool json_expected = false;
  f.latency = OffsetOrNone(e.end_offset_micros());
  f.ttft = OffsetOrNone(e.first_body_byte_offset_micros());
  if (!e.request().body().empty() && !e.request().body_truncated()) {
    absl::StatusOr<compare::RequestInfo> req = compare::ParseRequest(e.request().body());
    if (req.ok()) {
      f.request_model = req->model;
      json_expected = req->json_expected;
    }
  }
  // No response at all: transport trouble (a mirrored call's client knows
  // more, e.g. a timeout, and says so itself).
  if (e.status_code() == 0) {
    f.outcome = OutcomeClass::kTransport;
    return f;
  }
  f.outcome = rollout::OutcomeClassFromHttp(e.status_code());
  const v1::HttpMessage& resp = e.response();
  if (resp.body_decode() == v1::BODY_DECODE_CORRUPT) {
    // What the client got cannot be decoded: a broken answer.
    if (f.outcome == OutcomeClass::kOk) f.outcome = OutcomeClass::kInvalidBody;
    return f;
  }
  if (!e.unsupported().empty()) return f;  // judged on its status alone
  const bool parseable = !resp.body().empty() && !resp.body_truncated();
  const compare::ApiKind api = ExchangeApi(e);
  if (parseable && api == compare::ApiKind::kOpenAiEmbeddings) {
    absl::StatusOr<compare::EmbeddingAnswer> a =
        compare::ParseEmbeddingAnswer(resp.body(), e.status_code());
    if (a.ok()) {
      f.response_model = a->model;
      f.usage = a->usage;
      if (f.outcome == OutcomeClass::kOk && a->error.has_value()) {
        f.outcome = OutcomeClass::kServerError;
      }
      if (f.outcome == OutcomeClass::kOk && options != nullptr) {
        compare::ModelAnswer priced;
        priced.model = a->model;
        priced.usage = a->usage;
        f.cost = compare::AnswerCost(priced, f.request_model, *options);
      }
      if (answer != nullptr) answer->embedding = *std::move(a);
    } else if (f.outcome == OutcomeClass::kOk) {
      f.outcome = OutcomeClass::kInvalidBody;
    }
  } else if (parseable) {
    absl::StatusOr<compare::ModelAnswer> a =
        compare::ParseAnswerFor(api, resp.body(), e.status_code());
    if (a.ok()) {
      f.response_model = a->model;
      f.usage = a->usage;
      if (f.outcome == OutcomeClass::kOk && (!a->stream_ok || a->error.has_value())) {
        f.outcome = a->error.has_value() ? OutcomeClass::kServerError : OutcomeClass::kInvalidBody;
      }
      // Failed calls are not priced: a zero would flatter a failing model.
      if (f.outcome == OutcomeClass::kOk && options != nullptr) {
        f.cost = compare::AnswerCost(*a, f.request_model, *options);
      }
      f.system_fingerprint = a->system_fingerprint;
      f.finish_reason = a->finish_reason;
      f.answer_chars = static_cast<int64_t>(a->text.size());
      f.refusal = a->finish_reason == "content_filter" || IsRefusal(a->text, options);
      f.invalid_json = json_expected && a->tool_calls.empty() && !f.refusal &&
                       !nlohmann::json::accept(a->text);
      if (answer != nullptr) answer->chat = *std::move(a);
    } else if (f.outcome == OutcomeClass::kOk && api != compare::ApiKind::kUnknown) {
      // A known API's answer that does not parse is broken; a body of an
      // API the sidecar does not know is not the model's fault.
      f.outcome = OutcomeClass::kInvalidBody;
    }
  }
  if (f.outcome == OutcomeClass::kOk && e.incomplete()) f.outcome = OutcomeClass::kInvalidBody;
  return f;
}

}  // namespace understudy::shadow
