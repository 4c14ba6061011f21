// tools/envoy_driver/envoy_driver.h
// An Envoy-faithful data plane for tests, benches and `understudy replay`:
// it plays one HTTP request through a chain of ext_proc filters exactly as
// Envoy's ext_proc filter would (docs/extproc.md §3), routes it to the
// upstream cluster picked by the (possibly mutated) request headers, and
// streams the upstream's answer back through the filters.
//
// It checks every reply as Envoy would and records each breach as a
// violation: a reply of the wrong arm (spurious), a header set through
// `value` instead of `raw_value` (or both), any reply in observability mode,
// `streamed_response` outside FULL_DUPLEX_STREAMED or a plain body inside it,
// a missing reply within message_timeout, or a stream ended with an error.
//
// With FilterChain::WithFallback() a request routed to the candidate is a
// series of upstream attempts (docs/extproc.md §9): each attempt runs the
// candidate route's upstream ext_proc filters on its own streams, and a
// candidate that fails before the client saw a byte (no response, 5xx, 429)
// is retried once on production, as Envoy's router does with an aggregate
// cluster and a retry policy.
//
// Example (given std::shared_ptr<grpc::Channel> channel, Upstream& prod, Upstream& cand,
//   const HttpRequest& request):
//   EnvoyDriver driver(channel, FilterChain::TwoFilter(), {{"production", &prod},
//                                                         {"candidate", &cand}});
//   ASSIGN_OR_RETURN(DriverResult r, driver.Send(request));
//   bool faithful = r.violations.empty();   // every reply as Envoy expects
//   std::string served_by = r.cluster;      // "production" or "candidate"
//   EnvoyDriver with_fallback(channel, FilterChain::WithFallback(),
//                             {{"production", &prod}, {"candidate", &cand}});
//   ASSIGN_OR_RETURN(DriverResult f, with_fallback.Send(request));
//   size_t attempts = f.attempt_clusters.size();  // 2 if the candidate failed
//
// Thread safety: Send may be called from many threads at once.
#ifndef UNDERSTUDY_TOOLS_ENVOY_DRIVER_ENVOY_DRIVER_H_
#define UNDERSTUDY_TOOLS_ENVOY_DRIVER_ENVOY_DRIVER_H_

#include <grpcpp/grpcpp.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "envoy/extensions/filters/http/ext_proc/v3/processing_mode.pb.h"

namespace understudy::envoy_driver {

using ProcessingMode = envoy::extensions::filters::http::ext_proc::v3::ProcessingMode;
using Headers = std::vector<std::pair<std::string, std::string>>;

// FilterConfig mirrors the fields of Envoy's ExternalProcessor filter config
// that change what goes on the wire.
struct FilterConfig {
  std::string name = "understudy";
  // grpc_service.initial_metadata; empty map sends none.
  std::map<std::string, std::string> initial_metadata;
  bool observability_mode = false;
  bool failure_mode_allow = true;
  // Envoy honours a mode_override in the request_headers reply only when
  // this is set (the sidecar uses it to read feedback bodies).
  bool allow_mode_override = false;
  absl::Duration message_timeout = absl::Milliseconds(200);
  ProcessingMode processing_mode;
  // Envoy ≥ 1.34 sends protocol_config on the first message (not in
  // observability mode).
  bool send_protocol_config = true;
  // BUFFERED_PARTIAL: how much of the body is sent before passing the rest.
  size_t partial_buffer_bytes = 16 * 1024;
};

// FallbackPolicy models the candidate route's retry_policy on an aggregate
// cluster [candidate, to_cluster] with previous_priorities: attempt 1 goes to
// the candidate, a retry to `to_cluster` (docs/extproc.md §9).
struct FallbackPolicy {
  bool enabled = false;
  std::string to_cluster = "production";
  // num_retries: attempts are 1 + num_retries; with previous_priorities they
  // alternate candidate, to_cluster, candidate, ... (the attempted
  // priorities are reset once both were tried).
  int num_retries = 1;
  // Statuses retried besides 5xx (retry_on retriable-status-codes with
  // retriable_status_codes; gateway-error and retriable-4xx add theirs).
  std::vector<int> retriable_status_codes{429};
  bool on_5xx = true;    // retry_on 5xx
  bool on_reset = true;  // connect-failure, refused-stream, reset: no response headers
  // The router buffers the request body for retries up to this many bytes
  // (per_request_buffer_limit_bytes, else the listener's 1 MiB); a larger
  // body is never retried.
  size_t retry_buffer_limit = 1 << 20;
  // include_request_attempt_count (a virtual host setting): when enabled,
  // every upstream request, production-routed ones included, carries
  // x-envoy-attempt-count: N, which the upstream filters see too.
  bool include_attempt_count = true;
};

struct FilterChain {
  std::vector<FilterConfig> filters;
  // Request headers a filter ahead of the ext_proc filters removes (Envoy's
  // header mutation filter), lower-case: gone before anything routes.
  std::vector<std::string> strip_request_headers;
  // The upstream HTTP filters of the candidate route's cluster
  // (HttpProtocolOptions.http_filters, before upstream_codec), run once per
  // attempt on fresh streams. Response body modes must be NONE (the driver
  // does not model upstream response bodies: Send rejects the chain).
  std::vector<FilterConfig> candidate_upstream_filters;
  using Fallback = FallbackPolicy;
  Fallback candidate_fallback;
  // The recommended set-up: `understudy-route` (headers only, blocking)
  // then `understudy-observe` (observability mode, STREAMED both ways).
  static FilterChain TwoFilter();
  // TwoFilter() plus fallback to production: the candidate route's cluster
  // carries the `understudy-attempt` upstream filter (blocking, request and
  // response headers, role metadata "attempt") and the retry policy above.
  static FilterChain WithFallback();
  // Envoy before 1.31: one blocking filter with the given body mode both
  // ways (default STREAMED), role metadata absent (→ full).
  static FilterChain SingleFilter(
      ProcessingMode::BodySendMode body_mode = ProcessingMode::STREAMED,
      bool send_trailers = false);
};

struct HttpRequest {
  std::string method = "POST";
  std::string path = "/v1/chat/completions";
  std::string authority = "llm.internal";
  Headers headers;                   // x-request-id is added if absent
  std::vector<std::string> body_chunks;  // as the downstream codec delivers them
  Headers trailers;
};

// UpstreamCall streams one answer: on_headers once (status + headers), then
// on_chunk per body chunk as it arrives. Returns when the answer is complete
// or failed (transport errors are reported as a status).
class Upstream {
 public:
  virtual ~Upstream() = default;
  virtual absl::Status Call(const HttpRequest& request, const std::string& body,
                            const std::function<void(int, const Headers&)>& on_headers,
                            const std::function<void(const std::string&)>& on_chunk) = 0;
};

// CurlUpstream talks real HTTP/1.1 to base_url (e.g. http://127.0.0.1:9001).
std::unique_ptr<Upstream> NewCurlUpstream(std::string base_url,
                                          absl::Duration timeout = absl::Seconds(60));

struct DriverResult {
  std::string request_id;
  std::string cluster;               // the upstream that served the final answer
  std::string arm_header;            // x-understudy-arm after the filters ("" if unset)
  Headers upstream_headers;          // the request headers the final attempt's upstream got
                                     // (no pseudo-headers)
  // One entry per upstream attempt, in order: the cluster called and the
  // status it answered (after the upstream filters; 0 = no response). Empty
  // when no upstream was called (a local reply).
  std::vector<std::string> attempt_clusters;
  std::vector<int> attempt_statuses;
  int status = 0;
  Headers response_headers;
  std::string body;                  // what the downstream client received
  absl::Duration latency;            // request start → last body byte
  absl::Duration time_to_first_byte; // request start → first body byte (-1 ns if none)
  std::vector<std::string> violations;
  int streams_opened = 0;
  bool immediate_response = false;   // a filter answered the request itself
  bool failed_open = false;          // a filter failed and failure_mode_allow let it pass
};

class EnvoyDriver {
 public:
  EnvoyDriver(std::shared_ptr<grpc::Channel> channel, FilterChain chain,
              std::map<std::string, Upstream*> clusters,
              std::string arm_header = "x-understudy-arm",
              std::string default_cluster = "production");

  // Send plays one request through the chain. Errors only for things a
  // real Envoy would answer with a local reply and no upstream call (e.g.
  // the chosen cluster does not exist); protocol breaches are violations.
  absl::StatusOr<DriverResult> Send(const HttpRequest& request);

  const FilterChain& chain() const { return chain_; }

 private:
  std::shared_ptr<grpc::Channel> channel_;
  FilterChain chain_;
  std::map<std::string, Upstream*> clusters_;
  std::string arm_header_;
  std::string default_cluster_;
};

// NewRequestId returns a random UUIDv4 like Envoy's x-request-id.
std::string NewRequestId();

}  // namespace understudy::envoy_driver

#endif  // UNDERSTUDY_TOOLS_ENVOY_DRIVER_ENVOY_DRIVER_H_
