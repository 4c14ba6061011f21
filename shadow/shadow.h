// shadow/shadow.h
// Mirrors live LLM exchanges to the other model: a completed production
// exchange is re-sent to the candidate (shadow), some also to production
// again (noise calibration), and during a canary some candidate exchanges go
// back to production (reverse shadow). Three parts:
//   * ShadowConfig — the `upstreams:` and `shadow:` config sections, with the
//     upstreams' API keys resolved (from env or file) and held in memory only.
//   * UpstreamClient — a non-blocking HTTP client (libcurl multi interface on
//     its own thread) with a bounded queue and a cap on requests in flight.
//   * Mirror — the policy: arm, method, skip rules, deterministic sampling,
//     the hourly budget, and the request transform for the target.
// `understudy eval` (cli/cmd_eval.cc) sends a golden dataset to both
// upstreams through the same client and compares the answers.
//
// Example (given const ConfigNode& root, const v1::Exchange& live):
//   ASSIGN_OR_RETURN(ShadowConfig config, ParseShadowConfig(root));
//   ASSIGN_OR_RETURN(std::unique_ptr<UpstreamClient> client, UpstreamClient::Start(config));
//   Mirror mirror(config, *client, RealClock::Default());
//   // pipeline worker, per completed live exchange:
//   Mirror::Plan plan = mirror.Dispatch(live, [](UpstreamResult r) {
//     // client thread: hand r.exchange / r.answer to the compare pipeline
//   });
//   // or by hand:
//   Mirror::Plan p = mirror.Decide(live);
//   if (p.shadow) client->TrySend(mirror.BuildRequest(live, v1::ARM_CANDIDATE), {});
//
// Secrets: the live request's Authorization, x-api-key, cookies and the
// upstreams' own credential headers are never forwarded; the target's key is
// attached by UpstreamClient at send time, so it is never in an
// UpstreamRequest, an Exchange or a log line.
//
// Thread safety: ParseShadowConfig and the free functions are thread-safe;
// UpstreamClient and Mirror methods may be called concurrently from any
// thread. UpstreamClient callbacks run on the client's own thread.
#ifndef UNDERSTUDY_SHADOW_SHADOW_H_
#define UNDERSTUDY_SHADOW_SHADOW_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/config_node.h"
#include "compare/compare.h"
#include "encoding/content_decoder.h"
#include "rollout/rollout.h"
#include "shadow/shaping.h"
#include "understudy/v1/exchange.pb.h"

namespace understudy::shadow {

// ---------------------------------------------------------------- config --

// One upstream model endpoint (`upstreams.production` / `.candidate`).
// `api_key` is resolved at parse time and must never be logged or stored.
struct UpstreamConfig {
  std::string url;                            // base URL, no trailing '/'
  std::string auth_header = "authorization";  // lower-case
  std::string auth_scheme = "Bearer";         // "" sends the bare key (x-api-key style)
  std::string api_key;                        // "" = send no credential
  // How every request to this upstream is shaped, live or mirrored
  // (shadow/shaping.h).
  RequestShaping request;
  // The provider API it speaks; requests in another are translated.
  UpstreamApi api = UpstreamApi::kClient;
};

struct SkipRules {
  std::vector<std::string> paths;    // RE2, partial match on the request path
  std::vector<std::string> methods;  // upper-case
  std::vector<std::string> headers;  // lower-case; present on the live request → skip
};

struct ShadowConfig {
  bool enabled = false;  // false: Mirror decides nothing is sent
  UpstreamConfig production;
  UpstreamConfig candidate;
  double sample_rate = 1.0;   // of live production exchanges → candidate
  double noise_rate = 0.0;    // of shadowed ones, also re-sent to production
  double reverse_rate = 0.0;  // of live candidate exchanges → production
  SkipRules skip;
  absl::Duration timeout = absl::Seconds(30);  // per request, whole exchange
  int max_concurrency = 16;                    // requests in flight
  int max_queue = 256;                         // waiting to be sent
  double budget_per_hour = 0;                  // currency units; 0 = unlimited
  int64_t max_response_bytes = 4 << 20;        // response body kept per call
  // Answers are decoded by their Content-Encoding within these limits, the
  // same as live answers (the sidecar copies capture.decode_*).
  encoding::DecodeLimits decode_limits;
};

// ParseShadowConfig reads root["upstreams"] and root["shadow"]. An absent
// `shadow:` section or `enabled: false` gives enabled == false (upstreams
// are still parsed when present: `understudy eval` uses them); a present
// section without `enabled` is enabled. set_json values are YAML scalars
// read as JSON (true/false/null/numbers keep their type, so a quoted "123"
// becomes the number 123), or maps and lists.
//
//   upstreams:
//     production: {url: http://127.0.0.1:8001, api_key_env: PROD_KEY}
//     candidate:  {url: https://api.example.com, api_key_file: /run/keys/cand,
//                  auth_header: x-api-key, auth_scheme: ""}
//   shadow:
//     enabled: true
//     sample_rate: 1.0
//     noise_rate: 0.1
//     reverse_rate: 0.0
//     skip: {paths: ["^/v1/embeddings"], methods: [GET], headers: [x-understudy-no-shadow]}
//     request: {set_json: {model: gpt-5-mini}, set_headers: {x-a: b}, remove_headers: [x-b]}
//     timeout: 30s
//     max_concurrency: 16
//     max_queue: 256
//     budget_per_hour: 10.0
//     max_response_bytes: 4194304
//
// Errors are InvalidArgument naming the key path, e.g.
// "upstreams.candidate.api_key_env: environment variable CAND_KEY is not set",
// "shadow.skip.paths[1]: invalid regex: ...". With enabled: true both
// upstreams need a url. Messages never contain a key.
[[nodiscard]] absl::StatusOr<ShadowConfig> ParseShadowConfig(const ConfigNode& root);

// ---------------------------------------------------------------- stats --

// Counters for metrics. The client fills the first block; Mirror::Stats adds
// the policy block.
struct ShadowStats {
  // UpstreamClient.
  int64_t sent = 0;                // transfers started
  int64_t completed = 0;           // transfers ended (callback called), not aborted
  int64_t failed = 0;              // of completed, rollout::IsError(outcome)
  int64_t timed_out = 0;           // of failed, kTimeout
  int64_t dropped_queue_full = 0;  // TrySend returned false
  int64_t aborted = 0;             // queued or in flight at shutdown
  int64_t queued = 0;              // gauge: waiting to be sent
  int64_t in_flight = 0;           // gauge
  // Mirror.
  int64_t decided = 0;                     // Decide calls
  int64_t shadowed = 0;                    // plans with shadow
  int64_t noise = 0;                       // plans with noise
  int64_t reverse = 0;                     // plans with reverse
  std::map<std::string, int64_t> skipped;  // by reason (see Mirror::Plan)
  int64_t over_budget = 0;                 // skipped with reason "budget"
  double budget_used = 0;                  // spend recorded over the last hour
};

// ---------------------------------------------------------------- client --

struct UpstreamRequest {
  std::string request_id;
  std::string method = "POST";
  std::string path;  // with query, e.g. "/v1/chat/completions"
  // Sent as given, except that credential headers (authorization,
  // proxy-authorization, x-api-key, api-key, cookie and both upstreams'
  // auth_header) and hop-by-hop headers are dropped; the target's own
  // credential is added.
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  bool stream = false;  // "stream": true — informational; the body is sent as-is
  std::string api;      // the live exchange's API (Exchange.api), kept on the copy
  understudy::v1::Arm target = understudy::v1::ARM_CANDIDATE;
  understudy::v1::ExchangeSource source = understudy::v1::SOURCE_SHADOW;
};

struct UpstreamResult {
  // request_id, arm (= target), source, method, path, authority, status_code,
  // request (headers as sent minus credentials, body, complete), response
  // (headers minus set-cookie, body up to max_response_bytes with
  // body_truncated / body_bytes_seen), start_unix_micros and the offsets
  // response_headers_offset (end of headers), first_body_byte_offset (TTFT)
  // and end_offset (or -1 when not seen), incomplete, error (transport text).
  understudy::v1::Exchange exchange;
  rollout::OutcomeClass outcome = rollout::OutcomeClass::kOk;
  // The parsed answer when the body parsed (also for error bodies such as
  // an OpenAI 500 JSON error); nullopt otherwise or when truncated. An
  // embeddings answer is in `embedding` instead (shadow/answer.h).
  std::optional<compare::ModelAnswer> answer;
  std::optional<compare::EmbeddingAnswer> embedding;
  bool aborted = false;  // the client shut down before it ended

  // Latency and TTFT from the exchange's offsets (nullopt when not seen).
  std::optional<absl::Duration> Latency() const;
  std::optional<absl::Duration> Ttft() const;
};

// UpstreamClient sends requests to the configured upstreams without ever
// blocking its caller: TrySend enqueues (or refuses when the queue is full),
// and one thread drives up to max_concurrency transfers with libcurl's multi
// interface, reusing connections.
//
// Outcomes: curl timeout → kTimeout (shadow.timeout, for the whole
// exchange from when it leaves the queue); connection/DNS/TLS/read errors → kTransport; HTTP status →
// rollout::OutcomeClassFromHttp; a 2xx body that compare::ParseAnswer
// rejects, or a stream without its terminator → kInvalidBody; a 2xx answer
// carrying an error event → kServerError. A body cut at max_response_bytes
// is not parsed and keeps its HTTP class.
//
// Shutdown: the destructor stops the thread; requests still queued or in
// flight end with outcome kTransport, aborted == true and an error starting
// "aborted:", their callbacks called (on the client thread) before the
// destructor returns. It never waits for an upstream.
//
// Thread safety: TrySend, WaitIdle and Stats may be called from any thread.
// Callbacks run on the client thread, one at a time; they must be quick and
// must not destroy the client or call WaitIdle (they may call TrySend).
class UpstreamClient {
 public:
  using Callback = std::function<void(UpstreamResult)>;

  // Start starts the client thread. InvalidArgument when an upstream URL is
  // not http(s), Internal when libcurl cannot be initialised.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<UpstreamClient>> Start(
      const ShadowConfig& config, const Clock& clock = RealClock::Default());
  ~UpstreamClient();
  UpstreamClient(const UpstreamClient&) = delete;
  UpstreamClient& operator=(const UpstreamClient&) = delete;

  // TrySend queues `request` for request.target's upstream and returns true,
  // or returns false at once (counted in dropped_queue_full) when max_queue
  // requests are waiting or the target has no URL. Never blocks on the
  // network. `done` is called exactly once when true was returned.
  bool TrySend(UpstreamRequest request, Callback done);

  // WaitIdle blocks until nothing is queued or in flight and every callback
  // has returned, or `timeout` passes; returns whether it is idle.
  bool WaitIdle(absl::Duration timeout) const;

  ShadowStats Stats() const;

 private:
  class Impl;
  explicit UpstreamClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// ---------------------------------------------------------------- policy --

// BuildUpstreamRequest turns a live exchange into a request for `target`:
// method, path and body are copied; the live request's credentials,
// cookies, pseudo-headers, hop-by-hop headers (content-length, host,
// transfer-encoding, connection, ...), accept-encoding, x-envoy-* and
// x-understudy-* headers are dropped. The target upstream's `request`
// shaping is applied as on the live arm (shadow/shaping.h: set_json to a
// JSON-object body, remove_headers, set_headers, path). `stream` is read
// from the final body. The credential is added by UpstreamClient.
UpstreamRequest BuildUpstreamRequest(const ShadowConfig& config,
                                     const understudy::v1::Exchange& live,
                                     understudy::v1::Arm target,
                                     understudy::v1::ExchangeSource source);

// SampleDraw maps (salt, request id) to a uniform number in [0, 1); the same
// inputs always give the same draw, so a replay samples the same requests.
double SampleDraw(std::string_view salt, std::string_view request_id);

// Cost is the price of one call: `model` is matched against `prices` exactly,
// else by the longest prefix; nullopt when no price applies.
std::optional<double> Cost(std::string_view model, const compare::Usage& usage,
                           const std::map<std::string, compare::ModelPrice>& prices);

// Mirror decides what to send for each completed live exchange.
//
// Thread safety: every method may be called concurrently. `client` must
// outlive the Mirror and `clock` must outlive the client (callbacks made by
// Dispatch hold the Mirror's budget state, not the Mirror, so they may run
// after the Mirror is gone).
class Mirror {
 public:
  // What to send for one live exchange. skip_reason is "" when something is
  // sent, else one of: "disabled", "not_live" (source is not SOURCE_LIVE),
  // "arm" (no arm), "method" (not POST, or in skip.methods), "path",
  // "header", "truncated" (the live request body was truncated at capture),
  // "sample" (not drawn), "budget" (the last hour's spend reached
  // budget_per_hour).
  struct Plan {
    bool shadow = false;   // production live → candidate
    bool noise = false;    // production live → production again
    bool reverse = false;  // candidate live → production
    std::string skip_reason;
  };

  // With non-empty `prices`, Dispatch records the cost of every completed
  // call itself (do not also call RecordCost for them); with none, the
  // caller records spend with RecordCost.
  Mirror(const ShadowConfig& config, UpstreamClient& client, const Clock& clock,
         std::map<std::string, compare::ModelPrice> prices = {});
  ~Mirror();
  Mirror(const Mirror&) = delete;
  Mirror& operator=(const Mirror&) = delete;

  // Decide applies the policy; sampling is deterministic per request id
  // (SampleDraw with salts "shadow", "noise", "reverse"). Counted in Stats.
  Plan Decide(const understudy::v1::Exchange& live);

  // BuildRequest is BuildUpstreamRequest with source SOURCE_NOISE when
  // `target` is the live arm, else SOURCE_SHADOW.
  UpstreamRequest BuildRequest(const understudy::v1::Exchange& live,
                               understudy::v1::Arm target) const;

  // Dispatch = Decide + BuildRequest + TrySend for every send in the plan;
  // `done` is called once per request accepted by the client. Requests
  // refused by a full queue are counted by the client.
  Plan Dispatch(const understudy::v1::Exchange& live, UpstreamClient::Callback done);

  // RecordCost adds shadow spend (currency units) to the hourly budget.
  void RecordCost(double cost);

  // Stats returns the client's counters plus the policy's.
  ShadowStats Stats() const;

 private:
  struct State;
  const ShadowConfig config_;
  UpstreamClient& client_;
  const Clock& clock_;
  std::shared_ptr<State> state_;
};

}  // namespace understudy::shadow

#endif  // UNDERSTUDY_SHADOW_SHADOW_H_
