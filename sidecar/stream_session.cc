#include "sidecar/stream_session.h"

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "rollout/rollout.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "shadow/shaping.h"
#include "translate/translate.h"

namespace understudy::sidecar {

namespace ep = envoy::service::ext_proc::v3;
using ProcessingMode = envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;

absl::StatusOr<StreamRole> ParseStreamRole(std::string_view value) {
  if (value.empty() || value == "full") return StreamRole::kFull;
  if (value == "route") return StreamRole::kRoute;
  if (value == "observe") return StreamRole::kObserve;
  if (value == "attempt") return StreamRole::kAttempt;
  return absl::InvalidArgumentError(
      absl::StrCat("x-understudy-role: unknown role \"", Av(value),
                   "\" (expected route, observe, attempt or full)"));
}

bool IsSecretHeader(std::string_view name, const std::vector<std::string>& extra) {
  static constexpr std::string_view kBuiltIn[] = {
      "authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key",
      kFeedbackTokenHeader};
  for (std::string_view s : kBuiltIn) {
    if (name == s) return true;
  }
  return std::find(extra.begin(), extra.end(), name) != extra.end();
}

namespace {

// HeaderValueOf reads a header the way Envoy 1.27+ sends it (raw_value),
// falling back to the legacy `value` field for older Envoys.
const std::string& HeaderValueOf(const envoy::config::core::v3::HeaderValue& h) {
  return h.raw_value().empty() ? h.value() : h.raw_value();
}

const char* DirName(bool request_dir) { return request_dir ? "request" : "response"; }

std::string JsonEscape(std::string_view in) {
  std::string out;
  for (char c : in) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

StreamSession::StreamSession(StreamRole role, const SessionOptions& options,
                             const rollout::Router& router, const Clock& clock,
                             ExtProcStats& stats)
    : role_(role), options_(options), router_(router), clock_(clock), stats_(stats) {
  req_.mode = options.request_body_mode;
  resp_.mode = options.response_body_mode;
  if (role_ == StreamRole::kRoute) {
    // The route filter is headers-only (examples/envoy/envoy.yaml); an Envoy
    // without protocol_config does not say so, and a mode_override must
    // not turn its bodies on.
    req_.mode = ProcessingMode::NONE;
    resp_.mode = ProcessingMode::NONE;
  }
  exchange_.set_source(understudy::v1::SOURCE_LIVE);
  exchange_.set_response_headers_offset_micros(-1);
  exchange_.set_first_body_byte_offset_micros(-1);
  exchange_.set_end_offset_micros(-1);
}

int64_t StreamSession::OffsetMicros() const {
  return absl::ToInt64Microseconds(clock_.Now() - start_);
}

absl::Status StreamSession::OnMessage(const ep::ProcessingRequest& request,
                                      std::vector<ep::ProcessingResponse>* replies) {
  stats_.messages_received.Add();
  if (!started_) {
    started_ = true;
    start_ = clock_.Now();
    exchange_.set_start_unix_micros(absl::ToUnixMicros(start_));
  }
  // protocol_config comes only on the first message and reports the
  // effective body modes; older Envoys never send it (then: config).
  if (request.has_protocol_config()) {
    req_.mode = request.protocol_config().request_body_mode();
    resp_.mode = request.protocol_config().response_body_mode();
  }
  // Observability mode is judged per message (docs/extproc.md §3.5): never reply.
  const bool reply = !request.observability_mode();
  if (!reply) stats_.observability_messages.Add();

  switch (request.request_case()) {
    case ep::ProcessingRequest::kRequestHeaders:
      return OnHeaders(true, request.request_headers(), reply, replies);
    case ep::ProcessingRequest::kResponseHeaders:
      return OnHeaders(false, request.response_headers(), reply, replies);
    case ep::ProcessingRequest::kRequestBody:
      return OnBody(true, request.request_body(), reply, replies);
    case ep::ProcessingRequest::kResponseBody:
      return OnBody(false, request.response_body(), reply, replies);
    case ep::ProcessingRequest::kRequestTrailers:
      return OnTrailers(true, request.request_trailers(), reply, replies);
    case ep::ProcessingRequest::kResponseTrailers:
      return OnTrailers(false, request.response_trailers(), reply, replies);
    case ep::ProcessingRequest::REQUEST_NOT_SET:
      break;
  }
  stats_.unknown_messages.Add();
  return absl::InvalidArgumentError(
      "ProcessingRequest carries no request part (unknown or empty message)");
}

bool StreamSession::IsFeedbackPath(std::string_view path) const {
  if (options_.feedback_path.empty() || !options_.on_feedback) return false;
  return path.substr(0, path.find('?')) == options_.feedback_path;
}

void StreamSession::ImmediateReply(int status, std::string_view error_code,
                                   std::string_view message,
                                   std::vector<ProcessingResponse>* replies) {
  feedback_answered_ = true;
  ep::ImmediateResponse* ir = replies->emplace_back().mutable_immediate_response();
  ir->mutable_status()->set_code(static_cast<envoy::type::v3::StatusCode>(status));
  if (!error_code.empty()) {
    auto* h = ir->mutable_headers()->add_set_headers()->mutable_header();
    h->set_key("content-type");
    h->set_raw_value("application/json");
    ir->set_body(absl::StrCat(R"({"error":{"code":")", Av(error_code), R"(","message":")",
                              JsonEscape(message), "\"}}"));
  }
  ir->set_details(feedback_ ? "understudy_feedback" : "understudy_fallback");
}

absl::Status StreamSession::OnFeedbackHeaders(bool end_of_stream, bool reply,
                                              std::vector<ProcessingResponse>* replies) {
  feedback_ = true;
  stats_.feedback_requests.Add();
  if (role_ == StreamRole::kObserve || !reply) return absl::OkStatus();
  if (exchange_.method() != "POST") {
    ImmediateReply(405, "METHOD_NOT_ALLOWED", "feedback must be POSTed as JSON", replies);
  } else if (end_of_stream) {
    ImmediateReply(400, "INVALID_ARGUMENT",
                   "feedback needs a JSON body {\"request_id\", \"score\"}", replies);
  } else {
    ProcessingResponse& out = replies->emplace_back();
    out.mutable_request_headers()->mutable_response();
    if (role_ == StreamRole::kRoute || req_.mode == ProcessingMode::NONE) {
      // Ask Envoy for the body, buffered, and nothing else.
      ProcessingMode* m = out.mutable_mode_override();
      m->set_request_header_mode(ProcessingMode::SEND);
      m->set_response_header_mode(ProcessingMode::SKIP);
      m->set_request_body_mode(ProcessingMode::BUFFERED);
      m->set_response_body_mode(ProcessingMode::NONE);
      m->set_request_trailer_mode(ProcessingMode::SKIP);
      m->set_response_trailer_mode(ProcessingMode::SKIP);
      req_.mode = ProcessingMode::BUFFERED;
    }
  }
  return absl::OkStatus();
}

absl::Status StreamSession::OnHeaders(bool request_dir, const ep::HttpHeaders& h, bool reply,
                                      std::vector<ep::ProcessingResponse>* replies) {
  Direction& d = request_dir ? req_ : resp_;
  if (d.headers_seen || d.any_body || d.trailers_seen || d.ended) {
    stats_.spurious_messages.Add();
    return absl::FailedPreconditionError(absl::StrCat(
        DirName(request_dir), "_headers out of order: ",
        d.headers_seen ? "headers already received" : "body or trailers already received"));
  }
  d.headers_seen = true;
  if (h.end_of_stream()) d.ended = true;
  understudy::v1::HttpMessage* msg =
      request_dir ? exchange_.mutable_request() : exchange_.mutable_response();
  std::string sticky_value;
  std::string request_id;
  for (const auto& header : h.headers().headers()) {
    const std::string& key = header.key();
    const std::string& value = HeaderValueOf(header);
    if (request_dir) {
      if (key == ":method") exchange_.set_method(value);
      else if (key == ":path") exchange_.set_path(value);
      else if (key == ":authority") exchange_.set_authority(value);
      else if (key == kRequestIdHeader) request_id = value;
      else if (key == "traceparent") exchange_.set_traceparent(value);
      else if (key == kFeedbackTokenHeader) feedback_token_ = value;
      else if (key == kArmHeader && role_ == StreamRole::kObserve) {
        exchange_.set_arm(value == rollout::ArmName(understudy::v1::ARM_CANDIDATE)
                              ? understudy::v1::ARM_CANDIDATE
                              : understudy::v1::ARM_PRODUCTION);
      }
      if (!options_.sticky_header.empty() && key == options_.sticky_header) sticky_value = value;
      if (key == kAttemptCountHeader && role_ == StreamRole::kAttempt) {
        (void)absl::SimpleAtoi(value, &attempt_);
      }
    } else if (key == "content-type") {
      response_content_type_ = value;
    } else if (key == ":status") {
      // A status is three digits; a longer run of digits is no status and
      // reads as 0 instead of overflowing (found by
      // fuzz/stream_session_fuzzer: ":status: 8888888888" was signed
      // overflow, undefined behaviour on peer input).
      int code = 0;
      for (char c : value) {
        if (c < '0' || c > '9') continue;
        code = code * 10 + (c - '0');
        if (code > 999) {
          code = 0;
          break;
        }
      }
      exchange_.set_status_code(code);
    }
    if (Records() && !IsSecretHeader(key, options_.secret_headers)) {
      understudy::v1::Header* out = msg->add_headers();
      out->set_key(key);
      out->set_value(value);
    }
  }
  if (role_ == StreamRole::kAttempt) {
    if (request_dir) exchange_.set_request_id(request_id);
    return OnAttemptHeaders(request_dir, h.end_of_stream(), reply, replies);
  }
  // Feedback POSTs are answered here and never routed; the path is known
  // from the one pass over the headers above.
  if (request_dir && IsFeedbackPath(exchange_.path())) {
    feedback_client_ = sticky_value;  // the per-client feedback limit's key
    return OnFeedbackHeaders(h.end_of_stream(), reply, replies);
  }
  if (request_dir) {
    exchange_.set_request_id(request_id);
    if (options_.scope != nullptr) {
      const ScopeMatch m = options_.scope->Match(exchange_.method(), exchange_.path());
      if (m.in_scope()) {
        api_ = m.api;
        exchange_.set_api(std::string(compare::ApiKindName(m.api)));
      } else {
        // Counted once per request: by the stream that would record it.
        if (Records()) {
          (m.reason == OutOfScope::kMethod ? stats_.out_of_scope_method
                                           : stats_.out_of_scope_path)
              .Add();
        }
        out_of_scope_ = true;
      }
    }
  }
  if (!request_dir) exchange_.set_response_headers_offset_micros(OffsetMicros());
  if (!request_dir && options_.fallback != nullptr && (translated_ || Records())) {
    // Envoy retried a failed candidate attempt on production: the answer is
    // production's, in the client's own API, and the candidate failed.
    if (std::optional<FallbackStatus> f = options_.fallback->FellBack(exchange_.request_id())) {
      translated_ = false;
      if (Records()) exchange_.mutable_fallback()->set_candidate_status(f->candidate_status);
    }
    // The recording stream sees the final answer first (it sits after the
    // route filter): no retry can follow, so the plan is no longer needed.
    if (Records()) options_.fallback->Done(exchange_.request_id());
  }
  if (!request_dir && translated_ && reply) {
    ep::HeadersResponse* hr = replies->emplace_back().mutable_response_headers();
    TranslateResponseHeaders(hr->mutable_response()->mutable_header_mutation());
    if (sign_answer_) SignAnswer(hr->mutable_response()->mutable_header_mutation());
    if (d.ended) {
      exchange_.set_end_offset_micros(OffsetMicros());
      msg->set_complete(true);
    }
    return absl::OkStatus();
  }
  if (d.ended) {
    msg->set_complete(true);
    if (!request_dir) exchange_.set_end_offset_micros(OffsetMicros());
  }

  ep::ProcessingResponse* out = nullptr;
  if (reply) {
    out = &replies->emplace_back();
    ep::HeadersResponse* hr =
        request_dir ? out->mutable_request_headers() : out->mutable_response_headers();
    hr->mutable_response();  // an empty CommonResponse: continue unchanged
    if (!request_dir && sign_answer_) SignAnswer(hr->mutable_response()->mutable_header_mutation());
  }
  if (request_dir && role_ != StreamRole::kObserve) {
    // The route decision: a hash and an atomic load. Out of scope always
    // means production, and is not a rollout decision.
    const std::string& key = sticky_value.empty() ? request_id : sticky_value;
    const understudy::v1::Arm arm =
        out_of_scope_ ? understudy::v1::ARM_PRODUCTION : router_.Assign(key);
    if (arm == understudy::v1::ARM_CANDIDATE && options_.fallback != nullptr) {
      for (const auto& header : h.headers().headers()) {
        client_headers_.emplace_back(header.key(), HeaderValueOf(header));
      }
    }
    decided_arm_ = arm;
    exchange_.set_arm(arm);
    if (!out_of_scope_) {
      (arm == understudy::v1::ARM_CANDIDATE ? stats_.route_candidate : stats_.route_production)
          .Add();
    }
    if (out != nullptr) {
      ep::CommonResponse* common = out->mutable_request_headers()->mutable_response();
      // raw_value only, `append` unset (= overwrite); Envoy reads nothing
      // else (docs/extproc.md §3.6), and the route cache must be cleared for the
      // new header to pick the cluster (§3.7).
      auto* option = common->mutable_header_mutation()->add_set_headers();
      option->mutable_header()->set_key(std::string(kArmHeader));
      common->set_clear_route_cache(true);
      // Shaping may hold a request on production until its body is
      // translated (or for good, when it cannot be).
      const understudy::v1::Arm now =
          out_of_scope_ ? arm : ShapeRequestHeaders(arm, h.end_of_stream(), out);
      // The router assigns production or candidate, never ARM_UNSPECIFIED.
      option->mutable_header()->set_raw_value(std::string(rollout::ArmName(now)));
      if (now == understudy::v1::ARM_CANDIDATE) RecordPlan(common->header_mutation(), nullptr);
      if (!out_of_scope_ && options_.feedback_signer != nullptr && !request_id.empty()) {
        AskForAnswerHeaders(out);
      }
    }
  }
  return absl::OkStatus();
}

understudy::v1::Arm StreamSession::ShapeRequestHeaders(understudy::v1::Arm arm,
                                                       bool end_of_stream,
                                                       ep::ProcessingResponse* out) {
  const bool candidate = arm == understudy::v1::ARM_CANDIDATE;
  const shadow::UpstreamConfig* up =
      (candidate ? options_.candidate_upstream : options_.production_upstream).get();
  if (up == nullptr) return arm;
  absl::StatusOr<std::optional<shadow::Translation>> t = shadow::TranslationFor(api_, *up);
  if (!t.ok() || t->has_value()) {
    // A request for another provider: translated once its body is in, and
    // routed there only then (docs/extproc.md §5.1). Until then, and for
    // good when it cannot be translated, it is production's.
    const bool can_hold = req_.mode == ProcessingMode::NONE || req_.mode == ProcessingMode::BUFFERED;
    if (!t.ok() || end_of_stream || !can_hold || arm == understudy::v1::ARM_PRODUCTION) {
      Untranslatable(!t.ok() ? Sv(t.status().message())
                     : end_of_stream ? "the request has no body to translate"
                     : !can_hold ? "the filter streams request bodies (no mode_override)"
                                 : "production must speak the client's API",
                     out->mutable_request_headers()->mutable_response()->mutable_header_mutation());
      return arm == understudy::v1::ARM_PRODUCTION ? arm
                                                   : ShapeRequestHeaders(understudy::v1::ARM_PRODUCTION,
                                                                         end_of_stream, out);
    }
    translate_up_ = up;
    translation_ = **t;
    ProcessingMode* m = out->mutable_mode_override();  // every field: body modes are literal
    m->set_request_header_mode(ProcessingMode::SEND);
    m->set_response_header_mode(ProcessingMode::SEND);
    m->set_request_body_mode(ProcessingMode::BUFFERED);
    m->set_response_body_mode(ProcessingMode::STREAMED);
    m->set_request_trailer_mode(ProcessingMode::SKIP);
    m->set_response_trailer_mode(ProcessingMode::SKIP);
    req_.mode = ProcessingMode::BUFFERED;
    resp_.mode = ProcessingMode::STREAMED;
    return understudy::v1::ARM_PRODUCTION;
  }
  const shadow::UpstreamConfig* other =
      (candidate ? options_.production_upstream : options_.candidate_upstream).get();
  stats_.requests_shaped.Add();
  const shadow::HeaderEdits edits =
      shadow::ShapeHeaders(*up, exchange_.path(), other != nullptr ? other->auth_header : "");
  ep::HeaderMutation* mutation = out->mutable_request_headers()->mutable_response()
                                     ->mutable_header_mutation();
  ApplyEdits(edits, mutation);
  if (!up->request.ChangesBody() || end_of_stream) return arm;
  if (req_.mode == ProcessingMode::FULL_DUPLEX_STREAMED ||
      req_.mode == ProcessingMode::BUFFERED_PARTIAL) {
    stats_.shaping_failures.Add();  // no whole body to rewrite; forwarded unchanged
    return arm;
  }
  shape_body_ = up;
  if (req_.mode == ProcessingMode::NONE) {
    // Only this request buffers its body; body modes are taken literally, so
    // the response keeps the mode in force (docs/extproc.md §3.9). Needs the
    // filter's allow_mode_override (without it no body comes, nothing changes).
    ProcessingMode* m = out->mutable_mode_override();
    m->set_request_header_mode(ProcessingMode::SEND);
    m->set_request_body_mode(ProcessingMode::BUFFERED);
    m->set_response_body_mode(resp_.mode);
    req_.mode = ProcessingMode::BUFFERED;
  }
  // STREAMED and BUFFERED filters send the body as configured.
  return arm;
}

void StreamSession::AskForAnswerHeaders(ep::ProcessingResponse* out) {
  sign_answer_ = true;
  if (role_ != StreamRole::kRoute) return;  // a full filter sends response headers
  // A complete override: header modes DEFAULT would mean SEND, but body
  // modes are literal (docs/extproc.md §3.9), so they keep what is in force.
  ProcessingMode* m = out->mutable_mode_override();
  if (m->request_header_mode() == ProcessingMode::DEFAULT) {
    m->set_request_header_mode(ProcessingMode::SEND);
    m->set_request_body_mode(req_.mode);
    m->set_response_body_mode(resp_.mode);
    m->set_request_trailer_mode(ProcessingMode::SKIP);
    m->set_response_trailer_mode(ProcessingMode::SKIP);
  }
  m->set_response_header_mode(ProcessingMode::SEND);
}

void StreamSession::SignAnswer(ep::HeaderMutation* mutation) {
  SetHeader(mutation, kFeedbackTokenHeader, options_.feedback_signer->Sign(exchange_.request_id()));
}

void StreamSession::RecordPlan(const ep::HeaderMutation& mutation,
                               const std::string* client_body) {
  if (options_.fallback == nullptr) return;
  if (!plan_.has_value()) plan_.emplace();
  auto add = [&](std::string name) {
    name = absl::AsciiStrToLower(name);
    if (name == kArmHeader) return;  // the retry stays a candidate-arm request
    for (const auto& [n, v] : plan_->headers) {
      if (n == name) return;  // the first edit saw the client's value
    }
    std::optional<std::string> value;
    for (const auto& [k, v] : client_headers_) {
      if (k == name) {
        value = v;
        break;
      }
    }
    plan_->headers.emplace_back(std::move(name), std::move(value));
  };
  for (const std::string& name : mutation.remove_headers()) add(name);
  for (const auto& option : mutation.set_headers()) add(option.header().key());
  if (client_body != nullptr) plan_->body = *client_body;
  options_.fallback->Plan(exchange_.request_id(), *plan_);
}

absl::Status StreamSession::OnAttemptHeaders(bool request_dir, bool end_of_stream, bool reply,
                                             std::vector<ep::ProcessingResponse>* replies) {
  FallbackRegistry* registry = options_.fallback.get();
  const std::string& id = exchange_.request_id();
  if (!request_dir) {
    // The candidate's attempt answered: remember how, in case Envoy retries.
    if (attempt_ <= 1 && registry != nullptr) {
      registry->NoteCandidateStatus(id, exchange_.status_code());
    }
    if (reply) replies->emplace_back().mutable_response_headers()->mutable_response();
    return absl::OkStatus();
  }
  if (!reply) return absl::OkStatus();
  if (attempt_ <= 1) {
    // The first attempt goes to the candidate as the route stream shaped it.
    replies->emplace_back().mutable_request_headers()->mutable_response();
    return absl::OkStatus();
  }
  // A retry: Envoy sends it to production.
  if (!options_.fallback_enabled) {
    stats_.fallbacks_off.Add();
    const int failed = registry != nullptr ? registry->CandidateStatus(id) : 0;
    ImmediateReply(failed >= 500 || failed == 429 ? failed : 502, "CANDIDATE_FAILED",
                   absl::StrCat("the candidate model failed (",
                                failed == 0 ? std::string("no answer") : absl::StrCat("HTTP ", failed),
                                ") and fallback to production is off (routing.fallback)"),
                   replies);
    return absl::OkStatus();
  }
  std::optional<FallbackPlan> plan =
      registry != nullptr ? registry->Begin(id) : std::optional<FallbackPlan>();
  if (!plan.has_value()) {
    // Without the plan the request still carries the candidate's key and
    // shape: it must not reach production.
    stats_.fallbacks_no_plan.Add();
    ImmediateReply(502, "FALLBACK_UNAVAILABLE",
                   "the candidate model failed and this sidecar cannot restore the request for "
                   "production (it did not route it, or restarted since)",
                   replies);
    return absl::OkStatus();
  }
  stats_.fallbacks_restored.Add();
  ep::ProcessingResponse& out = replies->emplace_back();
  ep::HeaderMutation* mutation =
      out.mutable_request_headers()->mutable_response()->mutable_header_mutation();
  // The answer is production's: the arm the routes echo to the client
  // (response_headers_to_add %REQ(x-understudy-arm)%) says so. The route is
  // not chosen again (an upstream filter cannot re-route).
  SetHeader(mutation, kArmHeader, rollout::ArmName(understudy::v1::ARM_PRODUCTION));
  for (const auto& [name, value] : plan->headers) {
    if (value.has_value()) {
      SetHeader(mutation, name, *value);
    } else {
      mutation->add_remove_headers(name);
    }
  }
  if (plan->body.has_value() && !end_of_stream) {
    restore_body_ = std::move(plan->body);
    if (req_.mode != ProcessingMode::BUFFERED) {
      // The body comes once, whole (needs the filter's allow_mode_override).
      ProcessingMode* m = out.mutable_mode_override();
      m->set_request_header_mode(ProcessingMode::SEND);
      m->set_response_header_mode(ProcessingMode::SKIP);
      m->set_request_body_mode(ProcessingMode::BUFFERED);
      m->set_response_body_mode(ProcessingMode::NONE);
      m->set_request_trailer_mode(ProcessingMode::SKIP);
      m->set_response_trailer_mode(ProcessingMode::SKIP);
      req_.mode = ProcessingMode::BUFFERED;
    }
  }
  return absl::OkStatus();
}

void StreamSession::ApplyEdits(const shadow::HeaderEdits& edits, ep::HeaderMutation* mutation) {
  for (const std::string& name : edits.remove) mutation->add_remove_headers(name);
  for (const auto& [name, value] : edits.set) SetHeader(mutation, name, value);
  if (!edits.path.empty()) SetHeader(mutation, ":path", edits.path);
}

void StreamSession::SetHeader(ep::HeaderMutation* mutation, std::string_view key,
                              std::string_view value) {
  auto* h = mutation->add_set_headers()->mutable_header();
  h->set_key(std::string(key));
  h->set_raw_value(std::string(value));  // raw_value only (docs/extproc.md §3.6)
}

void StreamSession::Untranslatable(std::string_view why, ep::HeaderMutation* mutation) {
  stats_.requests_untranslatable.Add();
  // Recorded with the exchange (the observe stream captures request
  // headers), so the record says why the request stayed on production.
  std::string reason(why.substr(0, 200));
  for (char& c : reason) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) c = ' ';
  }
  SetHeader(mutation, kUntranslatableHeader, reason);
}

void StreamSession::TranslateRequestBody(const ep::HttpBody& b,
                                         std::vector<ep::ProcessingResponse>* replies) {
  ep::CommonResponse* common = replies->emplace_back().mutable_request_body()->mutable_response();
  const shadow::UpstreamConfig* up = translate_up_;
  translate_up_ = nullptr;  // one BUFFERED message carries the whole body
  absl::StatusOr<shadow::ShapedRequest> shaped =
      shadow::ShapeRequest(b.body(), *up, translation_);
  ep::HeaderMutation* mutation = common->mutable_header_mutation();
  if (!shaped.ok()) {
    Untranslatable(Sv(shaped.status().message()), mutation);  // stays on production, unchanged
    return;
  }
  const shadow::UpstreamConfig* other = options_.production_upstream.get();
  shadow::HeaderEdits edits =
      shadow::ShapeHeaders(*up, exchange_.path(), other != nullptr ? other->auth_header : "");
  if (edits.path.empty()) edits.path = shaped->path;
  for (auto& kv : shaped->headers) edits.set.push_back(std::move(kv));
  // The answer is translated as it streams: ask for it uncompressed.
  edits.set.emplace_back("accept-encoding", "identity");
  edits.remove.emplace_back("content-length");
  SetHeader(mutation, kArmHeader, rollout::ArmName(understudy::v1::ARM_CANDIDATE));
  ApplyEdits(edits, mutation);
  common->set_clear_route_cache(true);  // the headers are still held (BUFFERED)
  common->mutable_body_mutation()->set_body(std::move(shaped->body));
  RecordPlan(*mutation, &b.body());
  stats_.requests_shaped.Add();
  stats_.requests_translated.Add();
  translated_ = true;
  answer_.client_model = std::move(shaped->client_model);
  answer_.include_usage = shaped->include_usage;
}

void StreamSession::TranslateResponseHeaders(ep::HeaderMutation* mutation) {
  const int status = exchange_.status_code();
  if (status >= 400) {
    absl::StatusOr<translate::TranslatedError> e =
        translate::TranslateError(status, "", translation_.to, translation_.from);
    if (e.ok() && e->status != status) SetHeader(mutation, ":status", absl::StrCat(e->status));
    answer_.error = true;
  }
  answer_.sse = absl::StrContains(Av(response_content_type_), "text/event-stream");
  if (answer_.sse && !answer_.error) {
    translate::StreamOptions o;
    o.client_model = answer_.client_model;
    o.include_usage = answer_.include_usage;
    o.created_unix_seconds = absl::ToUnixSeconds(clock_.Now());
    answer_.stream = std::make_unique<translate::StreamTranslator>(translation_.to,
                                                                   translation_.from, o);
  }
  mutation->add_remove_headers("content-length");  // the body changes
}

void StreamSession::TranslateResponseBody(const ep::HttpBody& b,
                                          std::vector<ep::ProcessingResponse>* replies) {
  ep::BodyMutation* out = replies->emplace_back().mutable_response_body()->mutable_response()
                              ->mutable_body_mutation();
  std::string text;
  if (answer_.stream != nullptr && !answer_.failed) {
    absl::Status s = answer_.stream->Feed(b.body(), &text);
    if (s.ok() && b.end_of_stream()) s = answer_.stream->Finish(&text);
    if (!s.ok()) {
      // Mid-stream: the client has events already; it gets the rest as
      // sent, and the exchange is judged on the candidate's own answer.
      answer_.failed = true;
      stats_.translation_failures.Add();
      text += b.body();
    }
    out->set_body(std::move(text));
    return;
  }
  if (answer_.failed) {
    out->set_body(b.body());
    return;
  }
  // A JSON answer or error: translated whole at its end; held back (sent as
  // empty chunks) until then, within max_body_bytes.
  answer_.buffer += b.body();
  if (!b.end_of_stream()) {
    if (static_cast<int64_t>(answer_.buffer.size()) <= options_.max_body_bytes) {
      out->set_body("");
      return;
    }
    answer_.failed = true;
    stats_.translation_failures.Add();
    out->set_body(std::move(answer_.buffer));
    return;
  }
  const int status = exchange_.status_code();
  absl::StatusOr<std::string> translated;
  if (answer_.error) {
    absl::StatusOr<translate::TranslatedError> e =
        translate::TranslateError(status, answer_.buffer, translation_.to, translation_.from);
    if (e.ok()) {
      translated = std::move(e->body);
    } else {
      translated = e.status();
    }
  } else {
    translate::AnswerOptions o;
    o.client_model = answer_.client_model;
    o.created_unix_seconds = absl::ToUnixSeconds(clock_.Now());
    translated = translate::TranslateAnswer(answer_.buffer, translation_.to, translation_.from, o);
  }
  if (!translated.ok()) {
    stats_.translation_failures.Add();
    out->set_body(std::move(answer_.buffer));
    return;
  }
  out->set_body(*std::move(translated));
}

void StreamSession::ShapeRequestBody(const ep::HttpBody& b,
                                     std::vector<ep::ProcessingResponse>* replies) {
  ep::CommonResponse* common = replies->emplace_back().mutable_request_body()->mutable_response();
  const bool buffered = req_.mode == ProcessingMode::BUFFERED;
  shape_buffer_ += b.body();
  if (!buffered && !b.end_of_stream()) {
    if (static_cast<int64_t>(shape_buffer_.size()) <= options_.max_body_bytes) {
      // STREAMED: hold the chunks back (sent as empty chunks) until the end.
      common->mutable_body_mutation()->set_body("");
      return;
    }
    // Too big to hold: give up, losing nothing (what was held goes now).
    stats_.shaping_failures.Add();
    shape_body_ = nullptr;
    common->mutable_body_mutation()->set_body(std::move(shape_buffer_));
    shape_buffer_.clear();
    return;
  }
  // The whole body: one BUFFERED message, or the last STREAMED chunk.
  const shadow::UpstreamConfig* up = shape_body_;
  shape_body_ = nullptr;
  absl::StatusOr<std::string> shaped = shadow::ShapeJsonBody(shape_buffer_, up->request);
  if (!shaped.ok()) {
    stats_.shaping_failures.Add();  // the upstream answers it as the client sent it
    if (!buffered) common->mutable_body_mutation()->set_body(std::move(shape_buffer_));
    shape_buffer_.clear();
    return;
  }
  common->mutable_body_mutation()->set_body(*std::move(shaped));
  // The held headers' content-length no longer matches (docs/extproc.md
  // §3.6); in STREAMED mode Envoy has already dropped it.
  if (buffered) common->mutable_header_mutation()->add_remove_headers("content-length");
  if (up == options_.candidate_upstream.get()) {
    RecordPlan(common->header_mutation(), &shape_buffer_);
  }
  shape_buffer_.clear();
}

void StreamSession::AppendBody(understudy::v1::HttpMessage* msg, const std::string& chunk) {
  msg->set_body_bytes_seen(msg->body_bytes_seen() + static_cast<int64_t>(chunk.size()));
  const int64_t room = options_.max_body_bytes - static_cast<int64_t>(msg->body().size());
  if (room >= static_cast<int64_t>(chunk.size())) {
    msg->mutable_body()->append(chunk);
    return;
  }
  if (room > 0) msg->mutable_body()->append(chunk, 0, static_cast<size_t>(room));
  if (!msg->body_truncated()) {
    msg->set_body_truncated(true);
    stats_.bodies_truncated.Add();
  }
}

absl::Status StreamSession::OnBody(bool request_dir, const ep::HttpBody& b, bool reply,
                                   std::vector<ep::ProcessingResponse>* replies) {
  Direction& d = request_dir ? req_ : resp_;
  if (d.ended || d.trailers_seen) {
    stats_.spurious_messages.Add();
    return absl::FailedPreconditionError(absl::StrCat(
        DirName(request_dir), "_body out of order: the ", DirName(request_dir),
        d.trailers_seen ? " trailers were already received" : " already ended"));
  }
  d.any_body = true;
  if (request_dir && feedback_) {
    if (b.end_of_stream()) d.ended = true;
    if (role_ == StreamRole::kObserve || !reply || feedback_answered_) return absl::OkStatus();
    if (static_cast<int64_t>(feedback_body_.size() + b.body().size()) >
        options_.feedback_max_body_bytes) {
      ImmediateReply(413, "PAYLOAD_TOO_LARGE",
                     absl::StrCat("feedback body over ", options_.feedback_max_body_bytes,
                                  " bytes"),
                     replies);
      return absl::OkStatus();
    }
    feedback_body_ += b.body();
    if (!b.end_of_stream()) {
      replies->emplace_back().mutable_request_body()->mutable_response();
      return absl::OkStatus();
    }
    absl::Status accepted = options_.on_feedback(feedback_body_, feedback_client_, feedback_token_);
    if (accepted.ok()) {
      ImmediateReply(204, "", "", replies);
    } else {
      // A second score for a request, a client over its limit and a store
      // that cannot take the score are not the body's fault.
      int status = 400;
      switch (accepted.code()) {
        case absl::StatusCode::kAlreadyExists: status = 409; break;
        case absl::StatusCode::kPermissionDenied: status = 403; break;
        case absl::StatusCode::kResourceExhausted: status = 429; break;
        case absl::StatusCode::kUnavailable: status = 503; break;
        default: break;
      }
      ImmediateReply(status, absl::StatusCodeToString(accepted.code()), Sv(accepted.message()),
                     replies);
    }
    return absl::OkStatus();
  }
  const bool shape = request_dir && shape_body_ != nullptr && reply;
  const bool translate_request = request_dir && translate_up_ != nullptr && reply;
  const bool translate_answer = !request_dir && translated_ && reply;
  understudy::v1::HttpMessage* msg =
      request_dir ? exchange_.mutable_request() : exchange_.mutable_response();
  if (!request_dir && exchange_.first_body_byte_offset_micros() < 0 && !b.body().empty()) {
    exchange_.set_first_body_byte_offset_micros(OffsetMicros());
  }
  if (Records()) AppendBody(msg, b.body());
  if (b.end_of_stream()) {
    d.ended = true;
    msg->set_complete(true);
  } else if (d.mode == ProcessingMode::BUFFERED_PARTIAL) {
    // Envoy sends one partial chunk and passes the rest through unseen.
    d.ended = true;
    if (Records() && !msg->body_truncated()) {
      msg->set_body_truncated(true);
      stats_.bodies_truncated.Add();
    }
  }
  if (!request_dir && d.ended) exchange_.set_end_offset_micros(OffsetMicros());

  if (request_dir && role_ == StreamRole::kAttempt && restore_body_.has_value() && reply) {
    // The client's own body, for production (one BUFFERED message).
    replies->emplace_back().mutable_request_body()->mutable_response()->mutable_body_mutation()
        ->set_body(*std::move(restore_body_));
    restore_body_.reset();
  } else if (translate_request) {
    TranslateRequestBody(b, replies);
  } else if (translate_answer) {
    TranslateResponseBody(b, replies);
  } else if (shape) {
    ShapeRequestBody(b, replies);
  } else if (reply) {
    ep::ProcessingResponse& out = replies->emplace_back();
    ep::BodyResponse* br = request_dir ? out.mutable_request_body() : out.mutable_response_body();
    if (d.mode == ProcessingMode::FULL_DUPLEX_STREAMED) {
      // Envoy forwards only what we send back: pass each chunk through
      // unchanged, end_of_stream on the last (docs/extproc.md §3.2).
      auto* streamed = br->mutable_response()->mutable_body_mutation()->mutable_streamed_response();
      streamed->set_body(b.body());
      streamed->set_end_of_stream(b.end_of_stream());
    } else {
      br->mutable_response();  // continue unchanged
    }
  }
  return absl::OkStatus();
}

absl::Status StreamSession::OnTrailers(bool request_dir, const ep::HttpTrailers& t, bool reply,
                                       std::vector<ep::ProcessingResponse>* replies) {
  Direction& d = request_dir ? req_ : resp_;
  if (d.trailers_seen || d.ended) {
    stats_.spurious_messages.Add();
    return absl::FailedPreconditionError(absl::StrCat(
        DirName(request_dir), "_trailers out of order: the ", DirName(request_dir),
        " already ended"));
  }
  d.trailers_seen = true;
  d.ended = true;
  understudy::v1::HttpMessage* msg =
      request_dir ? exchange_.mutable_request() : exchange_.mutable_response();
  msg->set_complete(true);
  if (Records()) {
    for (const auto& header : t.trailers().headers()) {
      if (IsSecretHeader(header.key(), options_.secret_headers)) continue;
      understudy::v1::Header* out = msg->add_trailers();
      out->set_key(header.key());
      out->set_value(HeaderValueOf(header));
    }
  }
  if (!request_dir) exchange_.set_end_offset_micros(OffsetMicros());
  if (reply) {
    ep::ProcessingResponse& out = replies->emplace_back();
    if (request_dir) {
      out.mutable_request_trailers();
    } else {
      out.mutable_response_trailers();
    }
  }
  return absl::OkStatus();
}

std::optional<understudy::v1::Exchange> StreamSession::TakeCompletedExchange() {
  if (!Records() || exchange_taken_ || !resp_.ended) return std::nullopt;
  exchange_taken_ = true;
  return std::move(exchange_);
}

std::optional<understudy::v1::Exchange> StreamSession::OnStreamEnd() {
  if (!Records() || exchange_taken_ || !started_) return std::nullopt;
  exchange_taken_ = true;
  exchange_.set_incomplete(!resp_.ended);
  if (exchange_.end_offset_micros() < 0) exchange_.set_end_offset_micros(OffsetMicros());
  return std::move(exchange_);
}

}  // namespace understudy::sidecar
