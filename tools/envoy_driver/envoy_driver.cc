#include "tools/envoy_driver/envoy_driver.h"

#include <curl/curl.h>

#include <algorithm>
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
  Exchange(const std::shared_ptr<grpc::Channel>& channel, const FilterChain& chain,
           DriverResult* result)
      : channel_(channel), result_(result) {
    for (const FilterConfig& f : chain.filters) runs_.push_back(FilterRun{f});
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
    return arm == "candidate" ? std::string("candidate") : default_cluster_;
  };
  std::string cluster = route(headers);

  Exchange ex(channel_, chain_, &result);
  auto finish_local = [&](int status, const std::string& body) {
    result.status = status;
    result.body = body;
    for (FilterRun& r : ex.runs()) {
      if (r.stream && !r.dead) r.stream->Cancel();
    }
    result.latency = absl::Now() - start;
    return result;
  };

  const bool request_has_body = !request.body_chunks.empty();
  const bool request_has_trailers = !request.trailers.empty();

  // 1. Request headers, in filter order; blocking filters hold them.
  for (FilterRun& r : ex.runs()) {
    if (r.config.processing_mode.request_header_mode() == Mode::SKIP) continue;
    ep::ProcessingRequest m;
    ex.Prepare(r, &m);
    FillHeaderMap(headers, m.mutable_request_headers()->mutable_headers());
    m.mutable_request_headers()->set_end_of_stream(!request_has_body && !request_has_trailers);
    r.stream->Send(m);
    if (!r.blocking()) continue;
    auto reply = ex.Expect(r, ep::ProcessingResponse::kRequestHeaders, "request_headers",
                           r.config.message_timeout);
    if (ex.local_reply_status() != 0) return finish_local(ex.local_reply_status(), "");
    if (!reply) continue;
    if (reply->has_immediate_response()) {
      ex.ImmediateReply(reply->immediate_response());
      return finish_local(ex.local_reply_status(), ex.local_reply_body());
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
      ex.ApplyHeaderMutation(r, common.header_mutation(), &headers);
      if (common.clear_route_cache()) cluster = route(headers);
    }
  }
  if (ex.local_reply_status() != 0) return finish_local(ex.local_reply_status(), "");

  // 2. Request body and trailers through each filter in order.
  std::vector<std::string> body = request.body_chunks;
  Headers request_trailers = request.trailers;
  for (FilterRun& r : ex.runs()) {
    std::vector<std::string> duplex_tail;
    // A request whose headers ended the stream has no body message at all
    // (docs/extproc.md §3.8).
    if (request_has_body) body = BodyPass(ex, r, true, body, request_has_trailers, &headers);
    TrailersPass(ex, r, true, &request_trailers, &duplex_tail);
    if (r.config.processing_mode.request_body_mode() == Mode::FULL_DUPLEX_STREAMED &&
        request_has_trailers && r.blocking() && !r.dead) {
      body = duplex_tail;
    }
    if (ex.local_reply_status() != 0) {
      return finish_local(ex.local_reply_status(), ex.local_reply_body());
    }
  }

  if (ex.route_cache_cleared()) cluster = route(headers);
  result.arm_header = FindHeader(headers, arm_header_);

  // 3. The upstream call, streaming the answer back through the filters in
  // reverse order (Envoy's encoder chain).
  result.cluster = cluster;
  auto it = clusters_.find(cluster);
  if (it == clusters_.end() || it->second == nullptr) {
    return finish_local(503, absl::StrCat("no cluster named ", cluster));
  }
  std::string request_body;
  for (const std::string& c : body) request_body += c;
  // The upstream gets the request as the filters left it: method, path and
  // headers from the (possibly mutated) header map.
  HttpRequest upstream_request;
  upstream_request.method = FindHeader(headers, ":method");
  upstream_request.path = FindHeader(headers, ":path");
  upstream_request.authority = FindHeader(headers, ":authority");
  for (const auto& kv : headers) {
    if (!kv.first.empty() && kv.first[0] != ':') upstream_request.headers.push_back(kv);
  }
  upstream_request.trailers = request_trailers;
  result.upstream_headers = upstream_request.headers;
  std::vector<FilterRun*> reverse;
  for (auto rit = ex.runs().rbegin(); rit != ex.runs().rend(); ++rit) reverse.push_back(&*rit);

  Headers response_headers;
  std::vector<std::string> response_chunks;
  bool headers_sent = false;
  auto send_response_headers = [&](int status, const Headers& h, bool eos) {
    headers_sent = true;
    result.status = status;
    response_headers = {{":status", std::to_string(status)}};
    for (const auto& kv : h) response_headers.push_back(kv);
    for (FilterRun* r : reverse) {
      if (r->dead || r->config.processing_mode.response_header_mode() == Mode::SKIP) continue;
      ep::ProcessingRequest m;
      ex.Prepare(*r, &m);
      FillHeaderMap(response_headers, m.mutable_response_headers()->mutable_headers());
      m.mutable_response_headers()->set_end_of_stream(eos);
      r->stream->Send(m);
      if (!r->blocking()) continue;
      auto reply = ex.Expect(*r, ep::ProcessingResponse::kResponseHeaders, "response_headers",
                             r->config.message_timeout);
      if (reply && reply->has_response_headers() &&
          reply->response_headers().response().has_header_mutation()) {
        ApplyStatusMutation(ex, *r, reply->response_headers().response().header_mutation(),
                            &result.status);
        ex.ApplyHeaderMutation(*r, reply->response_headers().response().header_mutation(),
                               &response_headers);
      }
    }
  };
  // Streaming filters (observability or STREAMED) get each chunk as it
  // arrives, so the sidecar sees time-to-first-token as Envoy would show it.
  auto streams_live = [](const FilterRun& r) {
    const auto mode = r.config.processing_mode.response_body_mode();
    return !r.dead && Sends(r.config, mode) &&
           (mode == Mode::STREAMED || mode == Mode::FULL_DUPLEX_STREAMED);
  };
  std::map<FilterRun*, int> live_sent;
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
  absl::Status upstream_status = it->second->Call(
      upstream_request, request_body,
      [&](int status, const Headers& h) { send_response_headers(status, h, false); }, on_chunk);
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

  // 5. Close: blocking streams are done once their last reply is in;
  // observability streams are kept until the server has read everything
  // (Envoy's deferred_close_timeout), and must never have been answered.
  for (FilterRun& r : ex.runs()) {
    if (!r.stream || r.dead) continue;
    grpc::Status end = r.stream->Close(absl::Seconds(5));
    if (r.config.observability_mode) {
      absl::StatusOr<ep::ProcessingResponse> extra = r.stream->Next(absl::ZeroDuration());
      if (extra.ok()) ex.Violation(r, "the server replied in observability mode");
    } else {
      absl::StatusOr<ep::ProcessingResponse> extra = r.stream->Next(absl::ZeroDuration());
      if (extra.ok()) ex.Violation(r, "spurious message: a reply with nothing outstanding");
    }
    if (!end.ok()) {
      ex.Violation(r, absl::StrCat("stream ended with grpc status ", end.error_code(), ": ",
                                   end.error_message()));
    }
  }
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
