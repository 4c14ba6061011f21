#include "tools/envoy_driver/envoy_driver.h"

#include <curl/curl.h>

#include <algorithm>
#include <cstdint>
#include <mutex>
#include <optional>
#include <random>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "envoy/service/ext_proc/v3/external_processor.pb.h"
#include "tools/envoy_driver/extproc_stream.h"

namespace understudy::envoy_driver {

namespace ep = envoy::service::ext_proc::v3;
using Mode = ProcessingMode;

// The cluster the `x-understudy-arm: candidate` route names (with fallback:
// the aggregate's first member, which the driver calls by this name).
constexpr char kCandidateCluster[] = "candidate";

FilterChain FilterChain::TwoFilter() {
  FilterChain chain;
  FilterConfig route;
  route.name = "understudy-route";
  route.initial_metadata = {{"x-understudy-role", "route"}};
  route.processing_mode.set_request_header_mode(Mode::SEND);
  route.processing_mode.set_response_header_mode(Mode::SKIP);
  route.processing_mode.set_request_body_mode(Mode::NONE);
  route.processing_mode.set_response_body_mode(Mode::NONE);
  route.processing_mode.set_request_trailer_mode(Mode::SKIP);
  route.processing_mode.set_response_trailer_mode(Mode::SKIP);
  route.allow_mode_override = true;  // feedback bodies (see sidecar/stream_session.h)
  FilterConfig observe;
  observe.name = "understudy-observe";
  observe.initial_metadata = {{"x-understudy-role", "observe"}};
  observe.observability_mode = true;
  observe.processing_mode.set_request_header_mode(Mode::SEND);
  observe.processing_mode.set_response_header_mode(Mode::SEND);
  observe.processing_mode.set_request_body_mode(Mode::STREAMED);
  observe.processing_mode.set_response_body_mode(Mode::STREAMED);
  observe.processing_mode.set_request_trailer_mode(Mode::SKIP);
  observe.processing_mode.set_response_trailer_mode(Mode::SKIP);
  chain.filters = {route, observe};
  return chain;
}

FilterChain FilterChain::WithFallback() {
  FilterChain chain = TwoFilter();
  FilterConfig attempt;
  attempt.name = "understudy-attempt";
  attempt.initial_metadata = {{"x-understudy-role", "attempt"}};
  attempt.processing_mode.set_request_header_mode(Mode::SEND);
  attempt.processing_mode.set_response_header_mode(Mode::SEND);
  attempt.processing_mode.set_request_body_mode(Mode::NONE);
  attempt.processing_mode.set_response_body_mode(Mode::NONE);
  attempt.processing_mode.set_request_trailer_mode(Mode::SKIP);
  attempt.processing_mode.set_response_trailer_mode(Mode::SKIP);
  // The sidecar may ask for the request body to reshape it per attempt.
  attempt.allow_mode_override = true;
  chain.candidate_upstream_filters = {attempt};
  chain.candidate_fallback.enabled = true;
  return chain;
}

FilterChain FilterChain::SingleFilter(Mode::BodySendMode body_mode, bool send_trailers) {
  FilterChain chain;
  FilterConfig full;
  full.name = "understudy";
  full.processing_mode.set_request_header_mode(Mode::SEND);
  full.processing_mode.set_response_header_mode(Mode::SEND);
  full.processing_mode.set_request_body_mode(body_mode);
  full.processing_mode.set_response_body_mode(body_mode);
  // FULL_DUPLEX_STREAMED requires trailers SEND (docs/extproc.md §3.8).
  const bool trailers = send_trailers || body_mode == Mode::FULL_DUPLEX_STREAMED;
  full.processing_mode.set_request_trailer_mode(trailers ? Mode::SEND : Mode::SKIP);
  full.processing_mode.set_response_trailer_mode(trailers ? Mode::SEND : Mode::SKIP);
  chain.filters = {full};
  return chain;
}

std::string NewRequestId() {
  static std::mutex mu;
  static std::mt19937_64 rng(std::random_device{}());
  uint64_t a, b;
  {
    std::lock_guard<std::mutex> lock(mu);
    a = rng();
    b = rng();
  }
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  return absl::StrFormat("%08x-%04x-%04x-%04x-%012x", a >> 32, (a >> 16) & 0xffff, a & 0xffff,
                         b >> 48, b & 0xffffffffffffULL);
}

namespace {

std::string FindHeader(const Headers& headers, const std::string& key) {
  for (const auto& [k, v] : headers) {
    if (k == key) return v;
  }
  return "";
}

void FillHeaderMap(const Headers& headers, envoy::config::core::v3::HeaderMap* map) {
  for (const auto& [k, v] : headers) {
    auto* h = map->add_headers();
    h->set_key(k);
    h->set_raw_value(v);  // what Envoy 1.27+ sends
  }
}

// One filter's ext_proc stream for the exchange, opened lazily as Envoy does.
struct FilterRun {
  // The filter's config for this request: a copy, because a mode_override
  // in the request_headers reply changes it for this request only.
  FilterConfig config;
  std::unique_ptr<ExtProcStream> stream;
  bool first_message = true;
  bool dead = false;  // failed and skipped for the rest of the exchange
  bool blocking() const { return !config.observability_mode; }
};

class Exchange {
 public:
  // One Exchange per filter chain instance: the downstream (HCM) chain once
  // per request, an upstream chain once per attempt.
  Exchange(const std::shared_ptr<grpc::Channel>& channel, const std::vector<FilterConfig>& filters,
           DriverResult* result)
      : channel_(channel), result_(result) {
    for (const FilterConfig& f : filters) runs_.push_back(FilterRun{f});
  }

  // Prepare opens the stream if needed and fills the fields Envoy puts on
  // every message.
  void Prepare(FilterRun& r, ep::ProcessingRequest* m) {
    if (!r.stream) {
      r.stream = std::make_unique<ExtProcStream>(channel_, r.config.initial_metadata);
      ++result_->streams_opened;
    }
    if (r.config.observability_mode) {
      m->set_observability_mode(true);
    } else if (r.first_message && r.config.send_protocol_config) {
      m->mutable_protocol_config()->set_request_body_mode(
          r.config.processing_mode.request_body_mode());
      m->mutable_protocol_config()->set_response_body_mode(
          r.config.processing_mode.response_body_mode());
    }
    r.first_message = false;
  }

  void Violation(const FilterRun& r, const std::string& what) {
    result_->violations.push_back(absl::StrCat(r.config.name, ": ", what));
  }

  // Fail handles a stream failure the way Envoy does: with
  // failure_mode_allow the filter is skipped from now on; without it the
  // request gets a local 500.
  void Fail(FilterRun& r, const std::string& what) {
    Violation(r, what);
    r.dead = true;
    if (r.stream) r.stream->Cancel();
    if (r.config.failure_mode_allow) {
      result_->failed_open = true;
    } else {
      local_reply_status_ = 500;
    }
  }

  std::optional<ep::ProcessingResponse> Expect(FilterRun& r,
                                               ep::ProcessingResponse::ResponseCase expected,
                                               const char* what, absl::Duration timeout) {
    absl::StatusOr<ep::ProcessingResponse> reply = r.stream->Next(timeout);
    if (!reply.ok()) {
      if (absl::IsDeadlineExceeded(reply.status())) {
        Fail(r, absl::StrCat("no reply to ", what, " within message_timeout"));
      } else {
        grpc::Status end = r.stream->end_status();
        Fail(r, absl::StrCat("stream ended before the reply to ", what, ": grpc status ",
                             end.error_code(), " ", end.error_message()));
      }
      return std::nullopt;
    }
    if (reply->response_case() == ep::ProcessingResponse::kImmediateResponse) return *reply;
    if (reply->response_case() != expected) {
      Fail(r, absl::StrCat("spurious message: reply arm ", reply->response_case(), " to ", what,
                           " (expected arm ", expected, ")"));
      return std::nullopt;
    }
    return *reply;
  }

  // ApplyHeaderMutation follows ext_proc's rules (docs/extproc.md §3.6):
  // removals first, then sets, as Envoy's MutationUtils does (so a header
  // both removed and set ends up set).
  void ApplyHeaderMutation(FilterRun& r, const ep::HeaderMutation& mutation, Headers* headers) {
    for (const std::string& raw : mutation.remove_headers()) {
      std::string key = absl::AsciiStrToLower(raw);
      if (key.empty() || key[0] == ':' || key == "host") continue;
      headers->erase(std::remove_if(headers->begin(), headers->end(),
                                    [&](const auto& kv) { return kv.first == key; }),
                     headers->end());
    }
    for (const auto& option : mutation.set_headers()) {
      const auto& h = option.header();
      std::string key = absl::AsciiStrToLower(h.key());
      if (!h.value().empty() && !h.raw_value().empty()) {
        Fail(r, absl::StrCat("header ", key, " sets both value and raw_value (Envoy: 500)"));
        return;
      }
      std::string value = h.raw_value();
      if (h.raw_value().empty() && !h.value().empty()) {
        Violation(r, absl::StrCat("header ", key,
                                  " set through `value`; Envoy reads only raw_value, so it "
                                  "arrives empty"));
      }
      if (key == "host" || key == ":authority" || key == ":scheme" || key == ":method" ||
          absl::StartsWith(key, "x-envoy-")) {
        continue;  // silently ignored by the default mutation rules
      }
      const bool append = option.has_append() && option.append().value();
      if (!append) {
        headers->erase(std::remove_if(headers->begin(), headers->end(),
                                      [&](const auto& kv) { return kv.first == key; }),
                       headers->end());
      }
      headers->emplace_back(key, value);
    }
  }

  // CheckCommon rejects body mutations of the wrong kind for the mode.
  bool CheckCommon(FilterRun& r, const ep::CommonResponse& common, Mode::BodySendMode mode) {
    if (common.body_mutation().has_streamed_response() && mode != Mode::FULL_DUPLEX_STREAMED) {
      Fail(r, "streamed_response outside FULL_DUPLEX_STREAMED");
      return false;
    }
    return true;
  }

  std::vector<FilterRun>& runs() { return runs_; }
  int local_reply_status() const { return local_reply_status_; }
  void set_route_cache_cleared() { route_cache_cleared_ = true; }
  bool route_cache_cleared() const { return route_cache_cleared_; }
  void set_local_reply_status(int s) { local_reply_status_ = s; }
  const std::string& local_reply_body() const { return local_reply_body_; }
  // ImmediateReply handles an immediate_response: Envoy stops the request
  // and sends the given local reply downstream.
  void ImmediateReply(const ep::ImmediateResponse& ir) {
    const int status = ir.status().code();
    local_reply_status_ = status < 200 ? 200 : status;
    local_reply_body_ = ir.body();
    result_->immediate_response = true;
  }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  DriverResult* result_;
  std::vector<FilterRun> runs_;
  int local_reply_status_ = 0;
  bool route_cache_cleared_ = false;
  std::string local_reply_body_;
};

bool Sends(const FilterConfig& c, Mode::BodySendMode mode) {
  // In observability mode Envoy sends only STREAMED bodies (docs/extproc.md §3.5).
  if (mode == Mode::NONE) return false;
  return !c.observability_mode || mode == Mode::STREAMED;
}

const char* RoleLabel(bool request_dir) { return request_dir ? "request" : "response"; }

// ApplyStatusMutation: a `:status` set in a response_headers reply changes
// the status the client gets; Envoy refuses an invalid one.
void ApplyStatusMutation(Exchange& ex, FilterRun& r, const ep::HeaderMutation& mutation,
                         int* status) {
  for (const auto& option : mutation.set_headers()) {
    if (absl::AsciiStrToLower(option.header().key()) != ":status") continue;
    int v = 0;
    if (absl::SimpleAtoi(option.header().raw_value(), &v) && v >= 200 && v <= 599) {
      *status = v;
    } else {
      ex.Violation(r, absl::StrCat("invalid :status \"", option.header().raw_value(), "\""));
    }
  }
}

// BodyCommon returns the CommonResponse of a body reply, or null when the
// processor answered with an immediate_response (the request ends there).
const ep::CommonResponse* BodyCommon(Exchange& ex, const ep::ProcessingResponse& reply,
                                     bool request_dir) {
  if (reply.has_immediate_response()) {
    ex.ImmediateReply(reply.immediate_response());
    return nullptr;
  }
  return request_dir ? &reply.request_body().response() : &reply.response_body().response();
}

// BodyPass sends one direction's body through a filter and returns the
// chunks that continue down the chain.
std::vector<std::string> BodyPass(Exchange& ex, FilterRun& r, bool request_dir,
                                  const std::vector<std::string>& chunks, bool trailers_follow,
                                  Headers* held_headers) {
  const Mode::BodySendMode mode = request_dir ? r.config.processing_mode.request_body_mode()
                                              : r.config.processing_mode.response_body_mode();
  if (r.dead || !Sends(r.config, mode)) return chunks;
  const auto body_arm = request_dir ? ep::ProcessingResponse::kRequestBody
                                    : ep::ProcessingResponse::kResponseBody;
  const std::string what = absl::StrCat(RoleLabel(request_dir), "_body");
  auto make = [&](const std::string& data, bool eos) {
    ep::ProcessingRequest m;
    ex.Prepare(r, &m);
    ep::HttpBody* b = request_dir ? m.mutable_request_body() : m.mutable_response_body();
    b->set_body(data);
    b->set_end_of_stream(eos);
    r.stream->Send(m);
  };
  std::string whole;
  for (const std::string& c : chunks) whole += c;

  if (mode == Mode::BUFFERED || mode == Mode::BUFFERED_PARTIAL) {
    const bool partial = mode == Mode::BUFFERED_PARTIAL && whole.size() > r.config.partial_buffer_bytes;
    const std::string sent = partial ? whole.substr(0, r.config.partial_buffer_bytes) : whole;
    make(sent, !partial && !trailers_follow);
    if (!r.blocking()) return chunks;
    auto reply = ex.Expect(r, body_arm, what.c_str(), r.config.message_timeout);
    if (!reply) return chunks;
    const ep::CommonResponse* body_common = BodyCommon(ex, *reply, request_dir);
    if (body_common == nullptr) return {};  // answered with an immediate response
    const ep::CommonResponse& common = *body_common;
    if (!ex.CheckCommon(r, common, mode)) return chunks;
    if (common.has_header_mutation() && held_headers != nullptr) {
      ex.ApplyHeaderMutation(r, common.header_mutation(), held_headers);
      // The headers are still held (BUFFERED), so the route can change here
      // too (docs/extproc.md §3.7).
      if (request_dir && common.clear_route_cache()) ex.set_route_cache_cleared();
    }
    if (common.body_mutation().has_body()) {
      std::string rest = partial ? whole.substr(r.config.partial_buffer_bytes) : "";
      std::string mutated = common.body_mutation().body() + rest;
      // BUFFERED with the headers held: a content-length the mutation made
      // wrong must be fixed or removed in this reply, or Envoy answers 500
      // ("mismatch between content length and the length of the mutated
      // body", docs/extproc.md §3.6). STREAMED/partial modes strip it.
      if (held_headers != nullptr && mode == Mode::BUFFERED) {
        const std::string cl = FindHeader(*held_headers, "content-length");
        if (!cl.empty() && cl != std::to_string(mutated.size())) {
          // An invalid mutation: not covered by failure_mode_allow (§3.4).
          ex.Violation(r, absl::StrCat("body mutation of ", mutated.size(),
                                       " bytes leaves content-length ", cl, " (Envoy: 500)"));
          ex.set_local_reply_status(500);
          return {};
        }
      }
      return {mutated};
    }
    if (common.body_mutation().clear_body()) return {};
    return chunks;
  }

  // STREAMED and FULL_DUPLEX_STREAMED: chunks go out without waiting.
  for (size_t i = 0; i < chunks.size(); ++i) {
    make(chunks[i], i + 1 == chunks.size() && !trailers_follow);
  }
  if (chunks.empty() && !trailers_follow) make("", true);
  const size_t sent = std::max<size_t>(chunks.size(), trailers_follow ? 0 : 1);
  if (!r.blocking()) return chunks;

  if (mode == Mode::FULL_DUPLEX_STREAMED) {
    // No message timer in this mode; Envoy forwards only what comes back.
    std::vector<std::string> out;
    if (trailers_follow) return out;  // completion is signalled by trailers
    while (true) {
      auto reply = ex.Expect(r, body_arm, what.c_str(), absl::Seconds(10));
      if (!reply) return chunks;
      const ep::CommonResponse* body_common = BodyCommon(ex, *reply, request_dir);
      if (body_common == nullptr) return {};
      const ep::CommonResponse& common = *body_common;
      if (!common.body_mutation().has_streamed_response()) {
        ex.Fail(r, "FULL_DUPLEX_STREAMED reply without streamed_response");
        return chunks;
      }
      out.push_back(common.body_mutation().streamed_response().body());
      if (common.body_mutation().streamed_response().end_of_stream()) return out;
    }
  }
  std::vector<std::string> out = chunks;
  for (size_t i = 0; i < sent; ++i) {
    auto reply = ex.Expect(r, body_arm, what.c_str(), r.config.message_timeout);
    if (!reply) return chunks;
    const ep::CommonResponse* body_common = BodyCommon(ex, *reply, request_dir);
    if (body_common == nullptr) return {};  // answered with an immediate response
    const ep::CommonResponse& common = *body_common;
    if (!ex.CheckCommon(r, common, mode)) return chunks;
    // STREAMED: a mutation replaces or clears that chunk; header
    // mutations are ignored in this mode.
    if (i < out.size()) {
      if (common.body_mutation().has_body()) out[i] = common.body_mutation().body();
      if (common.body_mutation().clear_body()) out[i].clear();
    }
  }
  return out;
}

void TrailersPass(Exchange& ex, FilterRun& r, bool request_dir, Headers* trailers,
                  std::vector<std::string>* full_duplex_out) {
  const Mode::HeaderSendMode mode = request_dir
                                        ? r.config.processing_mode.request_trailer_mode()
                                        : r.config.processing_mode.response_trailer_mode();
  if (r.dead || mode != Mode::SEND || trailers->empty()) return;
  ep::ProcessingRequest m;
  ex.Prepare(r, &m);
  FillHeaderMap(*trailers, request_dir ? m.mutable_request_trailers()->mutable_trailers()
                                       : m.mutable_response_trailers()->mutable_trailers());
  r.stream->Send(m);
  if (!r.blocking()) return;
  const Mode::BodySendMode body_mode = request_dir
                                           ? r.config.processing_mode.request_body_mode()
                                           : r.config.processing_mode.response_body_mode();
  const auto body_arm = request_dir ? ep::ProcessingResponse::kRequestBody
                                    : ep::ProcessingResponse::kResponseBody;
  const auto trailers_arm = request_dir ? ep::ProcessingResponse::kRequestTrailers
                                        : ep::ProcessingResponse::kResponseTrailers;
  const std::string what = absl::StrCat(RoleLabel(request_dir), "_trailers");
  while (true) {
    // In FULL_DUPLEX_STREAMED the streamed body replies may still be in
    // flight ahead of the trailers reply.
    const bool duplex = body_mode == Mode::FULL_DUPLEX_STREAMED;
    absl::StatusOr<ep::ProcessingResponse> reply =
        r.stream->Next(duplex ? absl::Seconds(10) : r.config.message_timeout);
    if (!reply.ok()) {
      ex.Fail(r, absl::StrCat("no reply to ", what, ": ", reply.status().message()));
      return;
    }
    if (duplex && reply->response_case() == body_arm) {
      const ep::CommonResponse& common = request_dir ? reply->request_body().response()
                                                     : reply->response_body().response();
      if (!common.body_mutation().has_streamed_response()) {
        ex.Fail(r, "FULL_DUPLEX_STREAMED reply without streamed_response");
        return;
      }
      full_duplex_out->push_back(common.body_mutation().streamed_response().body());
      continue;
    }
    if (reply->response_case() != trailers_arm) {
      ex.Fail(r, absl::StrCat("spurious message: reply arm ", reply->response_case(), " to ",
                              what));
      return;
    }
    ex.ApplyHeaderMutation(r, request_dir ? reply->request_trailers().header_mutation()
                                          : reply->response_trailers().header_mutation(),
                           trailers);
    return;
  }
}

// RequestHeadersPass sends the request headers through every filter of `ex`
// in order; blocking filters hold them until their reply, whose mutation is
// applied to `headers` (Envoy's one header map for the request) and whose
// mode_override changes that filter's modes for this exchange. It stops at
// the first local reply (immediate_response, or a failure without
// failure_mode_allow): then ex.local_reply_status() != 0. `on_clear_route`
// is called when a reply clears the route cache with a mutation (§3.7);
// pass nullptr for an upstream chain, where Envoy ignores clear_route_cache
// (stat clear_route_cache_upstream_ignored).
//
// From filter `begin` on. With `held_at`, it stops after a blocking filter
// that buffers the body (BUFFERED or BUFFERED_PARTIAL, the request not
// ended): Envoy holds the headers there until that filter's body reply, so
// the filters after it see the headers, with the body reply's mutations,
// only then (docs/extproc.md §3.7). *held_at is that filter's index, or the
// number of filters when none held.
void RequestHeadersPass(Exchange& ex, Headers* headers, bool end_of_stream,
                        const std::function<void()>& on_clear_route, size_t begin = 0,
                        size_t* held_at = nullptr) {
  if (held_at != nullptr) *held_at = ex.runs().size();
  for (size_t i = begin; i < ex.runs().size(); ++i) {
    FilterRun& r = ex.runs()[i];
    if (r.config.processing_mode.request_header_mode() == Mode::SKIP) continue;
    ep::ProcessingRequest m;
    ex.Prepare(r, &m);
    FillHeaderMap(*headers, m.mutable_request_headers()->mutable_headers());
    m.mutable_request_headers()->set_end_of_stream(end_of_stream);
    r.stream->Send(m);
    if (!r.blocking()) continue;
    auto reply = ex.Expect(r, ep::ProcessingResponse::kRequestHeaders, "request_headers",
                           r.config.message_timeout);
    if (ex.local_reply_status() != 0) return;
    if (!reply) continue;
    if (reply->has_immediate_response()) {
      ex.ImmediateReply(reply->immediate_response());
      return;
    }
    // mode_override is honoured only with allow_mode_override, only on the
    // request_headers reply, and never in observability mode (docs/extproc.md).
    if (reply->has_mode_override()) {
      if (!r.config.allow_mode_override) {
        ex.Violation(r, "mode_override sent but the filter does not allow it (ignored)");
      } else {
        // Envoy replaces the filter's mode for the rest of this request.
        r.config.processing_mode = reply->mode_override();
      }
    }
    const ep::CommonResponse& common = reply->request_headers().response();
    if (!ex.CheckCommon(r, common, r.config.processing_mode.request_body_mode())) continue;
    if (common.has_header_mutation()) {
      ex.ApplyHeaderMutation(r, common.header_mutation(), headers);
      if (common.clear_route_cache() && on_clear_route) on_clear_route();
    }
    const Mode::BodySendMode body_mode = r.config.processing_mode.request_body_mode();
    if (held_at != nullptr && !end_of_stream && !r.dead &&
        (body_mode == Mode::BUFFERED || body_mode == Mode::BUFFERED_PARTIAL)) {
      *held_at = i;
      return;
    }
  }
}

// RequestBodyPass sends the request body and trailers through every filter
// of `ex` in order and returns the body that continues; trailers are
// mutated in place. Stops at a local reply (ex.local_reply_status() != 0).
std::vector<std::string> RequestBodyPass(Exchange& ex, std::vector<std::string> body,
                                         bool has_body, Headers* trailers, Headers* headers,
                                         size_t begin = 0, size_t end = SIZE_MAX) {
  const bool has_trailers = !trailers->empty();
  end = std::min(end, ex.runs().size());
  for (size_t i = begin; i < end; ++i) {
    FilterRun& r = ex.runs()[i];
    std::vector<std::string> duplex_tail;
    // A request whose headers ended the stream has no body message at all
    // (docs/extproc.md §3.8).
    if (has_body) body = BodyPass(ex, r, true, body, has_trailers, headers);
    TrailersPass(ex, r, true, trailers, &duplex_tail);
    if (r.config.processing_mode.request_body_mode() == Mode::FULL_DUPLEX_STREAMED &&
        has_trailers && r.blocking() && !r.dead) {
      body = duplex_tail;
    }
    if (ex.local_reply_status() != 0) break;
  }
  return body;
}

// ResponseHeadersPass sends the response headers (":status" first) through
// `filters` in the order given (the encoder order: reverse of the chain),
// applying each blocking filter's mutations and :status changes. Returns the
// immediate_response a blocking filter answered with, if any (the caller
// decides what it means there); later filters are then not consulted.
std::optional<ep::ImmediateResponse> ResponseHeadersPass(Exchange& ex,
                                                         const std::vector<FilterRun*>& filters,
                                                         int* status, Headers* response_headers,
                                                         bool end_of_stream) {
  for (FilterRun* r : filters) {
    if (r->dead || r->config.processing_mode.response_header_mode() == Mode::SKIP) continue;
    ep::ProcessingRequest m;
    ex.Prepare(*r, &m);
    FillHeaderMap(*response_headers, m.mutable_response_headers()->mutable_headers());
    m.mutable_response_headers()->set_end_of_stream(end_of_stream);
    r->stream->Send(m);
    if (!r->blocking()) continue;
    auto reply = ex.Expect(*r, ep::ProcessingResponse::kResponseHeaders, "response_headers",
                           r->config.message_timeout);
    if (reply && reply->has_immediate_response()) return reply->immediate_response();
    if (reply && reply->has_response_headers() &&
        reply->response_headers().response().has_header_mutation()) {
      ApplyStatusMutation(ex, *r, reply->response_headers().response().header_mutation(), status);
      ex.ApplyHeaderMutation(*r, reply->response_headers().response().header_mutation(),
                             response_headers);
    }
  }
  return std::nullopt;
}

// CloseRuns ends every live stream of `ex` as Envoy does at the end of the
// exchange: blocking streams are done once their last reply is in;
// observability streams are kept until the server has read everything
// (Envoy's deferred_close_timeout), and must never have been answered.
void CloseRuns(Exchange& ex) {
  for (FilterRun& r : ex.runs()) {
    if (!r.stream || r.dead) continue;
    grpc::Status end = r.stream->Close(absl::Seconds(5));
    absl::StatusOr<ep::ProcessingResponse> extra = r.stream->Next(absl::ZeroDuration());
    if (extra.ok()) {
      ex.Violation(r, r.config.observability_mode
                          ? "the server replied in observability mode"
                          : "spurious message: a reply with nothing outstanding");
    }
    if (!end.ok()) {
      ex.Violation(r, absl::StrCat("stream ended with grpc status ", end.error_code(), ": ",
                                   end.error_message()));
    }
  }
}

// CancelRuns resets every live stream of `ex` (a request ended by a local
// reply, or a discarded attempt: Envoy destroys that filter chain).
void CancelRuns(Exchange& ex) {
  for (FilterRun& r : ex.runs()) {
    if (r.stream && !r.dead) r.stream->Cancel();
  }
}

// HttpRequestFrom builds what the upstream gets: method, path and headers
// from the (possibly mutated) header map.
HttpRequest HttpRequestFrom(const Headers& headers, const Headers& trailers) {
  HttpRequest upstream_request;
  upstream_request.method = FindHeader(headers, ":method");
  upstream_request.path = FindHeader(headers, ":path");
  upstream_request.authority = FindHeader(headers, ":authority");
  for (const auto& kv : headers) {
    if (!kv.first.empty() && kv.first[0] != ':') upstream_request.headers.push_back(kv);
  }
  upstream_request.trailers = trailers;
  return upstream_request;
}

void SetHeader(Headers* headers, const std::string& key, const std::string& value) {
  headers->erase(std::remove_if(headers->begin(), headers->end(),
                                [&](const auto& kv) { return kv.first == key; }),
                 headers->end());
  headers->emplace_back(key, value);
}

}  // namespace

EnvoyDriver::EnvoyDriver(std::shared_ptr<grpc::Channel> channel, FilterChain chain,
                         std::map<std::string, Upstream*> clusters, std::string arm_header,
                         std::string default_cluster)
    : channel_(std::move(channel)),
      chain_(std::move(chain)),
      clusters_(std::move(clusters)),
      arm_header_(std::move(arm_header)),
      default_cluster_(std::move(default_cluster)) {}

absl::StatusOr<DriverResult> EnvoyDriver::Send(const HttpRequest& request) {
  DriverResult result;
  const absl::Time start = absl::Now();
  result.time_to_first_byte = absl::Nanoseconds(-1);

  // Upstream filters are modelled on request headers, body and trailers and
  // on response headers only: refuse a chain the driver would play wrongly.
  for (const FilterConfig& f : chain_.candidate_upstream_filters) {
    if (f.processing_mode.response_body_mode() != Mode::NONE ||
        f.processing_mode.response_trailer_mode() == Mode::SEND) {
      result.violations.push_back(absl::StrCat(
          f.name, ": upstream filter with response_body_mode ",
          Mode::BodySendMode_Name(f.processing_mode.response_body_mode()),
          " / response_trailer_mode ",
          Mode::HeaderSendMode_Name(f.processing_mode.response_trailer_mode()),
          ": the driver models upstream filters' responses on headers only (NONE / SKIP)"));
      result.status = 500;
      result.latency = absl::Now() - start;
      return result;
    }
  }

  // The HCM adds pseudo-headers and x-request-id before any filter runs.
  Headers headers = {{":method", request.method},
                     {":path", request.path},
                     {":authority", request.authority},
                     {":scheme", "http"}};
  for (const auto& [k, v] : request.headers) {
    std::string key = absl::AsciiStrToLower(k);
    if (std::find(chain_.strip_request_headers.begin(), chain_.strip_request_headers.end(), key) !=
        chain_.strip_request_headers.end()) {
      continue;
    }
    headers.emplace_back(std::move(key), v);
  }
  result.request_id = FindHeader(headers, "x-request-id");
  if (result.request_id.empty()) {
    result.request_id = NewRequestId();
    headers.emplace_back("x-request-id", result.request_id);
  }
  // Routes match on the arm header; the choice is cached until a filter
  // clears the route cache together with a header mutation (§3.7).
  auto route = [&](const Headers& h) {
    std::string arm = FindHeader(h, arm_header_);
    return arm == "candidate" ? std::string(kCandidateCluster) : default_cluster_;
  };
  std::string cluster = route(headers);

  Exchange ex(channel_, chain_.filters, &result);
  auto finish_local = [&](int status, const std::string& body) {
    result.status = status;
    result.body = body;
    CancelRuns(ex);
    result.latency = absl::Now() - start;
    return result;
  };

  const bool request_has_body = !request.body_chunks.empty();
  const bool request_has_trailers = !request.trailers.empty();

  // 1. Request headers, in filter order; blocking filters hold them. A
  // filter that buffers the body holds them until its body reply: the body
  // goes through it (and the filters before it) first, then the headers go
  // on to the next filters.
  // 2. Request body and trailers through each filter in order.
  Headers request_trailers = request.trailers;
  std::vector<std::string> body = request.body_chunks;
  const bool request_ends = !request_has_body && !request_has_trailers;
  size_t next = 0;
  size_t body_next = 0;
  while (true) {
    size_t held = 0;
    RequestHeadersPass(ex, &headers, request_ends, [&] { cluster = route(headers); }, next,
                       &held);
    if (ex.local_reply_status() != 0) {
      return finish_local(ex.local_reply_status(), ex.local_reply_body());
    }
    if (held == ex.runs().size()) break;
    body = RequestBodyPass(ex, body, request_has_body, &request_trailers, &headers, body_next,
                           held + 1);
    if (ex.local_reply_status() != 0) {
      return finish_local(ex.local_reply_status(), ex.local_reply_body());
    }
    if (ex.route_cache_cleared()) cluster = route(headers);
    next = body_next = held + 1;
  }
  body = RequestBodyPass(ex, body, request_has_body, &request_trailers, &headers, body_next);
  if (ex.local_reply_status() != 0) {
    return finish_local(ex.local_reply_status(), ex.local_reply_body());
  }

  if (ex.route_cache_cleared()) cluster = route(headers);
  result.arm_header = FindHeader(headers, arm_header_);

  // 3. The upstream call, streaming the answer back through the filters in
  // reverse order (Envoy's encoder chain).
  result.cluster = cluster;
  if (clusters_.count(cluster) == 0 || clusters_.at(cluster) == nullptr) {
    return finish_local(503, absl::StrCat("no cluster named ", cluster));
  }
  // The router's copy of the request body: every attempt re-sends it.
  std::string request_body;
  for (const std::string& c : body) request_body += c;
  std::vector<FilterRun*> reverse;
  for (auto rit = ex.runs().rbegin(); rit != ex.runs().rend(); ++rit) reverse.push_back(&*rit);

  Headers response_headers;
  bool headers_sent = false;
  // send_response_headers: the final attempt's response headers (without
  // :status) go through the downstream filters.
  auto send_response_headers = [&](int status, const Headers& h, bool eos) {
    headers_sent = true;
    result.status = status;
    response_headers = {{":status", std::to_string(status)}};
    for (const auto& kv : h) response_headers.push_back(kv);
    // An immediate_response here is not modelled (the sidecar never sends one).
    (void)ResponseHeadersPass(ex, reverse, &result.status, &response_headers, eos);
  };
  // Streaming filters (observability or STREAMED) get each chunk as it
  // arrives, so the sidecar sees time-to-first-token as Envoy would show it.
  auto streams_live = [](const FilterRun& r) {
    const auto mode = r.config.processing_mode.response_body_mode();
    return !r.dead && Sends(r.config, mode) &&
           (mode == Mode::STREAMED || mode == Mode::FULL_DUPLEX_STREAMED);
  };
  std::map<FilterRun*, int> live_sent;
  std::vector<std::string> response_chunks;
  auto on_chunk = [&](const std::string& chunk) {
    if (chunk.empty()) return;
    if (result.time_to_first_byte < absl::ZeroDuration()) {
      result.time_to_first_byte = absl::Now() - start;
    }
    response_chunks.push_back(chunk);
    for (FilterRun* r : reverse) {
      if (!streams_live(*r)) continue;
      ep::ProcessingRequest m;
      ex.Prepare(*r, &m);
      m.mutable_response_body()->set_body(chunk);
      m.mutable_response_body()->set_end_of_stream(false);
      r->stream->Send(m);
      ++live_sent[r];
    }
  };

  // Attempts (docs/extproc.md §9). Only the candidate route's cluster has
  // upstream filters and a retry policy; any other route is one plain call.
  const FallbackPolicy& fallback = chain_.candidate_fallback;
  const bool attempts_modelled =
      cluster == kCandidateCluster &&
      (fallback.enabled || !chain_.candidate_upstream_filters.empty());
  // The router retries only a body that fits its retry buffer.
  const int max_attempts = attempts_modelled && fallback.enabled &&
                                   request_body.size() <= fallback.retry_buffer_limit
                               ? 1 + std::max(0, fallback.num_retries)
                               : 1;
  absl::Status upstream_status;
  for (int attempt = 1;; ++attempt) {
    // previous_priorities over [candidate, to_cluster]: 1 → candidate,
    // 2 → to_cluster, then both were tried and the list starts again.
    const std::string attempt_cluster = attempt % 2 == 1 ? cluster : fallback.to_cluster;
    result.cluster = attempt_cluster;
    result.attempt_clusters.push_back(attempt_cluster);
    result.attempt_statuses.push_back(0);
    auto it = clusters_.find(attempt_cluster);
    if (it == clusters_.end() || it->second == nullptr) {
      return finish_local(503, absl::StrCat("no cluster named ", attempt_cluster));
    }
    const bool last = attempt >= max_attempts;
    // include_request_attempt_count is a virtual host setting: the router
    // writes the header on the shared map before each attempt, so upstream
    // filters see it too.
    if (fallback.enabled && fallback.include_attempt_count) {
      SetHeader(&headers, "x-envoy-attempt-count", std::to_string(attempt));
    }
    if (!attempts_modelled) {
      HttpRequest upstream_request = HttpRequestFrom(headers, request_trailers);
      result.upstream_headers = upstream_request.headers;
      upstream_status = it->second->Call(
          upstream_request, request_body,
          [&](int status, const Headers& h) {
            result.attempt_statuses.back() = status;
            send_response_headers(status, h, false);
          },
          on_chunk);
      break;
    }

    // This attempt's upstream filter chain: its own streams. The request
    // header map is Envoy's one map, so an edit from an earlier attempt is
    // still in it; the body is the router's buffered copy, fresh each time.
    Exchange up(channel_, chain_.candidate_upstream_filters, &result);
    RequestHeadersPass(up, &headers, !request_has_body && !request_has_trailers, nullptr);
    Headers attempt_trailers = request_trailers;
    std::vector<std::string> attempt_body = body;
    if (up.local_reply_status() == 0) {
      attempt_body =
          RequestBodyPass(up, attempt_body, request_has_body, &attempt_trailers, &headers);
    }
    if (up.local_reply_status() != 0) {
      // An upstream filter answered the attempt itself: that local reply is
      // the attempt's response, and it is not retried (a modelling choice,
      // docs/extproc.md §9).
      result.attempt_statuses.back() = up.local_reply_status();
      CancelRuns(up);
      send_response_headers(up.local_reply_status(), {}, false);
      on_chunk(up.local_reply_body());
      upstream_status = absl::OkStatus();
      break;
    }
    HttpRequest upstream_request = HttpRequestFrom(headers, attempt_trailers);
    result.upstream_headers = upstream_request.headers;
    std::string attempt_body_bytes;
    for (const std::string& c : attempt_body) attempt_body_bytes += c;
    std::vector<FilterRun*> up_reverse;
    for (auto rit = up.runs().rbegin(); rit != up.runs().rend(); ++rit) {
      up_reverse.push_back(&*rit);
    }
    bool got_headers = false;
    bool retry = false;
    bool local_reply = false;
    auto on_attempt_headers = [&](int upstream_code, const Headers& h) {
      got_headers = true;
      int status = upstream_code;
      Headers attempt_headers = {{":status", std::to_string(upstream_code)}};
      for (const auto& kv : h) attempt_headers.push_back(kv);
      // The router decides on the headers as the upstream filters leave them.
      std::optional<ep::ImmediateResponse> immediate =
          ResponseHeadersPass(up, up_reverse, &status, &attempt_headers, false);
      if (immediate) {
        up.ImmediateReply(*immediate);
        local_reply = true;
        result.attempt_statuses.back() = up.local_reply_status();
        send_response_headers(up.local_reply_status(), {}, false);
        on_chunk(up.local_reply_body());
        return;
      }
      result.attempt_statuses.back() = status;
      const bool retriable =
          (fallback.on_5xx && status >= 500 && status <= 599) ||
          std::find(fallback.retriable_status_codes.begin(), fallback.retriable_status_codes.end(),
                    status) != fallback.retriable_status_codes.end();
      if (!last && retriable) {
        retry = true;  // discarded: nothing of it goes downstream
        return;
      }
      Headers downstream;
      for (const auto& kv : attempt_headers) {
        if (kv.first != ":status") downstream.push_back(kv);
      }
      send_response_headers(status, downstream, false);
    };
    auto on_attempt_chunk = [&](const std::string& chunk) {
      if (!retry && !local_reply) on_chunk(chunk);
    };
    absl::Status attempt_status =
        it->second->Call(upstream_request, attempt_body_bytes, on_attempt_headers, on_attempt_chunk);
    if (!attempt_status.ok() && !got_headers && !last && fallback.on_reset) {
      retry = true;  // connect failure or reset before any response headers
    }
    if (retry || local_reply) {
      CancelRuns(up);
    } else {
      CloseRuns(up);
    }
    if (retry) continue;
    upstream_status = local_reply ? absl::OkStatus() : attempt_status;
    break;
  }
  if (!upstream_status.ok()) {
    // Envoy's local reply for an upstream failure also runs the encoders.
    if (!headers_sent) send_response_headers(503, {}, true);
    result.violations.push_back(absl::StrCat("upstream: ", upstream_status.message()));
  } else if (!headers_sent) {
    send_response_headers(200, {}, false);
  }
  result.response_headers = response_headers;

  // 4. End of the response body: an empty end_of_stream chunk for live
  // streams, the whole body for buffered ones; then collect replies.
  std::vector<std::string> final_chunks = response_chunks;
  if (upstream_status.ok()) {
    for (FilterRun* r : reverse) {
      if (r->dead) continue;
      const auto mode = r->config.processing_mode.response_body_mode();
      if (streams_live(*r)) {
        ep::ProcessingRequest m;
        ex.Prepare(*r, &m);
        m.mutable_response_body()->set_end_of_stream(true);
        r->stream->Send(m);
        ++live_sent[r];
        if (!r->blocking()) continue;
        if (mode == Mode::FULL_DUPLEX_STREAMED) {
          std::vector<std::string> out;
          while (true) {
            auto reply = ex.Expect(*r, ep::ProcessingResponse::kResponseBody, "response_body",
                                   absl::Seconds(10));
            if (!reply) break;
            const auto& mutation = reply->response_body().response().body_mutation();
            if (!mutation.has_streamed_response()) {
              ex.Fail(*r, "FULL_DUPLEX_STREAMED reply without streamed_response");
              break;
            }
            out.push_back(mutation.streamed_response().body());
            if (mutation.streamed_response().end_of_stream()) {
              final_chunks = out;
              break;
            }
          }
        } else {
          // Each chunk goes on as the filter's reply leaves it (a blocking
          // STREAMED filter may replace or empty every chunk); the last
          // message is the empty end_of_stream chunk.
          std::vector<std::string> mutated;
          bool changed = false;
          for (int i = 0; i < live_sent[r]; ++i) {
            auto reply = ex.Expect(*r, ep::ProcessingResponse::kResponseBody, "response_body",
                                   r->config.message_timeout);
            if (!reply) break;
            const ep::CommonResponse& common = reply->response_body().response();
            if (!ex.CheckCommon(*r, common, mode)) break;
            std::string chunk =
                static_cast<size_t>(i) < final_chunks.size() ? final_chunks[i] : std::string();
            if (common.body_mutation().has_body()) {
              chunk = common.body_mutation().body();
              changed = true;
            } else if (common.body_mutation().clear_body()) {
              chunk.clear();
              changed = true;
            }
            mutated.push_back(std::move(chunk));
          }
          if (changed) final_chunks = std::move(mutated);
        }
      } else if (Sends(r->config, mode)) {
        final_chunks = BodyPass(ex, *r, false, final_chunks, false, nullptr);
      }
    }
  }
  for (const std::string& c : final_chunks) result.body += c;

  // 5. Close the downstream filters' streams.
  CloseRuns(ex);
  result.latency = absl::Now() - start;
  return result;
}

// --- CurlUpstream ---------------------------------------------------------

namespace {

class CurlUpstream final : public Upstream {
 public:
  CurlUpstream(std::string base_url, absl::Duration timeout)
      : base_url_(std::move(base_url)), timeout_(timeout) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  }

  absl::Status Call(const HttpRequest& request, const std::string& body,
                    const std::function<void(int, const Headers&)>& on_headers,
                    const std::function<void(const std::string&)>& on_chunk) override {
    CURL* curl = curl_easy_init();
    if (curl == nullptr) return absl::InternalError("curl_easy_init failed");
    State state{&on_headers, &on_chunk};
    std::string url = base_url_ + request.path;
    struct curl_slist* list = nullptr;
    list = curl_slist_append(list, "Expect:");
    for (const auto& [k, v] : request.headers) {
      if (k.empty() || k[0] == ':' || k == "content-length" || k == "host") continue;
      list = curl_slist_append(list, absl::StrCat(k, ": ", v).c_str());
    }
    curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, request.method.c_str());
    if (!body.empty() || request.method == "POST") {
      curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body.data());
      curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    }
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, list);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, static_cast<long>(absl::ToInt64Milliseconds(timeout_)));
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, &CurlUpstream::OnHeader);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, &state);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, &CurlUpstream::OnBody);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &state);
    CURLcode rc = curl_easy_perform(curl);
    curl_slist_free_all(list);
    curl_easy_cleanup(curl);
    if (rc != CURLE_OK) {
      return absl::UnavailableError(absl::StrCat(url, ": ", curl_easy_strerror(rc)));
    }
    if (!state.headers_done) (*state.on_headers)(state.status, state.headers);
    return absl::OkStatus();
  }

 private:
  struct State {
    const std::function<void(int, const Headers&)>* on_headers;
    const std::function<void(const std::string&)>* on_chunk;
    int status = 0;
    Headers headers;
    bool headers_done = false;
  };

  static size_t OnHeader(char* data, size_t size, size_t n, void* user) {
    State* s = static_cast<State*>(user);
    std::string line(data, size * n);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (absl::StartsWith(line, "HTTP/")) {
      s->headers.clear();
      size_t sp = line.find(' ');
      if (sp != std::string::npos) (void)absl::SimpleAtoi(line.substr(sp + 1, 3), &s->status);
    } else if (line.empty()) {
      if (s->status >= 200 && !s->headers_done) {
        s->headers_done = true;
        (*s->on_headers)(s->status, s->headers);
      }
    } else {
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        std::string key = absl::AsciiStrToLower(line.substr(0, colon));
        std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
        if (key != "transfer-encoding" && key != "connection" && key != "keep-alive") {
          s->headers.emplace_back(key, value);
        }
      }
    }
    return size * n;
  }

  static size_t OnBody(char* data, size_t size, size_t n, void* user) {
    State* s = static_cast<State*>(user);
    if (!s->headers_done) {
      s->headers_done = true;
      (*s->on_headers)(s->status, s->headers);
    }
    (*s->on_chunk)(std::string(data, size * n));
    return size * n;
  }

  std::string base_url_;
  absl::Duration timeout_;
};

}  // namespace

std::unique_ptr<Upstream> NewCurlUpstream(std::string base_url, absl::Duration timeout) {
  return std::make_unique<CurlUpstream>(std::move(base_url), timeout);
}

}  // namespace understudy::envoy_driver
