// telemetry/tracer.h
// Turns what Understudy sees into OpenTelemetry traces sent over OTLP (gRPC
// or HTTP/protobuf): one span per live exchange, joined to the caller's
// trace through its W3C `traceparent`; shadow-call and comparison spans as
// its children; and one span per rollout decision, linked to the exchanges
// that triggered it. Spans are queued and exported by a background thread;
// nothing here ever blocks the caller on the network.
//
// Example (given const ConfigNode& root, const v1::Exchange& exchange,
//   const v1::Exchange& shadow_exchange, const v1::Comparison& comparison,
//   const v1::Decision& decision):
//   ASSIGN_OR_RETURN(TelemetryConfig config, ParseTelemetryConfig(root.Child("telemetry")));
//   ASSIGN_OR_RETURN(std::unique_ptr<Tracer> tracer, Tracer::Create(config));
//   // pipeline worker, per completed live exchange:
//   ExchangeInfo info;
//   info.stage_index = 2;
//   info.request_model = "gpt-4o";
//   SpanContext span = tracer->OnExchange(exchange, info);
//   // later, for the shadow call and its comparison (children of that span):
//   tracer->OnShadow(shadow_exchange);
//   tracer->OnComparison(comparison);
//   // rollout transitions:
//   tracer->OnDecision(decision);
//   tracer->Shutdown(absl::Seconds(5));   // flushes what is queued
//
// The spans (names, kinds and attributes follow the OpenTelemetry HTTP and
// GenAI semantic conventions where one applies, `understudy.*` otherwise):
//   "chat {gen_ai.request.model}" (or "chat" when the model is unknown),
//       kind SERVER: a live exchange through Envoy, from its start to its
//       end. Parent: the span in the request's `traceparent`; absent or
//       malformed → the span starts a new trace. Attributes:
//       understudy.{arm, stage, weight_percent, request_id, source, outcome,
//       cost}, http.request.method, url.path, http.response.status_code,
//       gen_ai.operation.name = "chat", gen_ai.provider.name and
//       gen_ai.system (from the path: /v1/messages → "anthropic",
//       .../chat/completions and /v1/responses → "openai"),
//       gen_ai.request.model, gen_ai.response.model,
//       gen_ai.usage.input_tokens and output_tokens (int). Status ERROR (with
//       error.type) for 5xx, no response, an incomplete stream, a transport
//       error or an error outcome (see rollout::OutcomeClassName).
//   "understudy.shadow", kind CLIENT: a mirrored (or noise) call the sidecar
//       made itself; child of the live exchange's span found by request id.
//   "understudy.compare", kind INTERNAL: a comparison, child of the same
//       span; verdict and per-comparator scores as attributes, the most
//       important findings as events.
//   "understudy.rollout.decision", kind INTERNAL: a new trace per decision;
//       one event per gate; links to the spans of the trigger exchanges.
// Shadow and compare records whose live exchange is not (or no longer)
// remembered start their own trace.
//
// Sampling is parent-based: with a valid `traceparent` the caller's sampled
// flag decides; otherwise otlp.sample_rate decides from the trace id (so
// every service sampling by trace-id ratio agrees). Children follow their
// exchange; decisions are always recorded.
//
// Thread safety: every Tracer method may be called concurrently. Calls take
// two short locks (the request-id LRU and the export queue) and never wait
// for I/O; a full export queue drops the span and counts it.
#ifndef UNDERSTUDY_TELEMETRY_TRACER_H_
#define UNDERSTUDY_TELEMETRY_TRACER_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/config_node.h"
#include "rollout/rollout.h"
#include "understudy/v1/compare.pb.h"
#include "understudy/v1/eval.pb.h"
#include "understudy/v1/exchange.pb.h"
#include "understudy/v1/rollout.pb.h"

namespace opentelemetry::proto::trace::v1 {
class Span;
}  // namespace opentelemetry::proto::trace::v1

namespace understudy::telemetry {

// ---------------------------------------------------------------- config --

enum class OtlpProtocol { kGrpc, kHttp };

struct OtlpConfig {
  // grpc: a gRPC target, "host:port" (an "http://" prefix is stripped;
  // "https://" selects TLS). http: a base URL such as http://host:4318;
  // spans are POSTed to {endpoint}/v1/traces (kept as is when the URL
  // already ends in /v1/traces).
  std::string endpoint;
  OtlpProtocol protocol = OtlpProtocol::kGrpc;
  // Extra request headers (gRPC metadata), names lower-cased. Values may be
  // credentials: they are sent, never logged.
  std::vector<std::pair<std::string, std::string>> headers;
  double sample_rate = 1.0;  // for traces this sidecar starts
  int64_t max_queue = 2048;  // spans waiting for export
  int64_t max_batch = 256;   // spans per export call
  absl::Duration flush_interval = absl::Seconds(2);
  absl::Duration timeout = absl::Seconds(5);  // per export call
  // How long a batch is retried (with backoff) after transient failures;
  // 0 = never.
  absl::Duration retry_max_elapsed = absl::Seconds(30);
};

struct TelemetryConfig {
  bool enabled = false;  // true iff `telemetry.otlp` is present
  std::string service_name = "understudy";
  std::string service_version;  // the build's version unless set
  OtlpConfig otlp;
  // How many live exchanges' span contexts are remembered (LRU) so shadow,
  // compare and decision spans can find them.
  int64_t remembered_exchanges = 16384;
};

// ParseTelemetryConfig reads the `telemetry:` section. An undefined section,
// or one without `otlp`, gives a disabled config. Keys: service_name, otlp
// {endpoint (required), protocol (grpc | http, default grpc), headers (map),
// headers_env (map of header → environment variable holding its value),
// sample_rate (0..1), max_queue, max_batch (≤ max_queue), flush_interval,
// timeout, retry_max_elapsed (0 = no retries)}. Errors are InvalidArgument naming the key path, e.g.
//   "telemetry.otlp.protocol: must be grpc or http, got \"thrift\"".
[[nodiscard]] absl::StatusOr<TelemetryConfig> ParseTelemetryConfig(const ConfigNode& section);

// ---------------------------------------------------------- span context --

// SpanContext identifies one span: W3C trace id (16 bytes), span id (8
// bytes) and trace flags (bit 0 = sampled). A default-constructed context
// is invalid (all zero).
struct SpanContext {
  std::array<uint8_t, 16> trace_id{};
  std::array<uint8_t, 8> span_id{};
  uint8_t flags = 0;

  bool valid() const;
  bool sampled() const { return (flags & 0x01) != 0; }
  // TraceIdHex / SpanIdHex are lower-case hex (32 / 16 characters).
  std::string TraceIdHex() const;
  std::string SpanIdHex() const;
  // Traceparent is the W3C header value for this span as a parent:
  // "00-<trace id>-<span id>-<flags>"; "" when invalid.
  std::string Traceparent() const;
  // TraceIdBytes / SpanIdBytes are the raw ids, as OTLP carries them.
  std::string TraceIdBytes() const;
  std::string SpanIdBytes() const;

  bool operator==(const SpanContext& o) const {
    return trace_id == o.trace_id && span_id == o.span_id && flags == o.flags;
  }
};

// ParseTraceparent reads a W3C `traceparent` header value
// ("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"). Returns
// nullopt for anything malformed: wrong length or separators, non-lower-hex
// digits, version "ff", all-zero trace or span id, or a version-00 header
// with trailing data. Later versions may carry trailing "-..." fields.
std::optional<SpanContext> ParseTraceparent(std::string_view header);

// ExchangeInfo::outcome is rollout::OutcomeClassName(...).

// ---------------------------------------------------------------- tracer --

// What the engine knows about a live exchange beyond the record itself.
struct ExchangeInfo {
  int stage_index = 0;        // index into the rollout stage plan
  double weight_percent = 0;  // candidate weight when it was routed
  std::string request_model;  // "" when unknown
  std::string response_model;
  int64_t input_tokens = -1;  // -1 = unknown (attribute left out)
  int64_t output_tokens = -1;
  std::string outcome;  // OutcomeClassName(...); "" = unknown
  double cost = -1;     // currency units; < 0 = unknown
  // Span events to attach at the exchange's end, e.g. "understudy.drift"
  // (docs/drift.md); attributes are string-valued.
  struct Event {
    std::string name;
    std::vector<std::pair<std::string, std::string>> attributes;
  };
  std::vector<Event> events;
};

struct TracerStats {
  int64_t spans_started = 0;  // recorded and handed to the exporter
  int64_t spans_not_sampled = 0;
  // From the exporter (see SpanExporter):
  int64_t enqueued = 0;
  int64_t exported = 0;
  int64_t dropped = 0;  // queue full, or left over at shutdown
  int64_t failed_batches = 0;  // given up on, after any retries
  int64_t failed_spans = 0;    // in those batches
  int64_t retries = 0;         // export calls repeated after transient failures
  int64_t rejected_spans = 0;  // reported back by the receiver
  std::string last_error;      // of the last failed export, "" if none
};

class SpanExporter;

class Tracer {
 public:
  // Create starts the exporter for an enabled config (the OTLP channel
  // connects lazily, so an unreachable collector is not an error here), or
  // returns a disabled tracer. InvalidArgument for an unusable endpoint.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Tracer>> Create(
      const TelemetryConfig& config);
  // Disabled returns a tracer whose methods do nothing (OnExchange returns
  // an invalid context).
  static std::unique_ptr<Tracer> Disabled();
  // For tests and custom transports: exports through `exporter`, which
  // must not be null.
  Tracer(const TelemetryConfig& config, std::unique_ptr<SpanExporter> exporter);
  ~Tracer();  // Shutdown(config.otlp.timeout) if not yet shut down
  Tracer(const Tracer&) = delete;
  Tracer& operator=(const Tracer&) = delete;

  bool enabled() const { return exporter_ != nullptr; }

  // OnExchange records the span of a completed live exchange and remembers
  // its context under live.request_id(). Returns the span's context (valid
  // even when not sampled, so it can still be propagated), or an invalid
  // one when the tracer is disabled.
  SpanContext OnExchange(const understudy::v1::Exchange& live, const ExchangeInfo& info);

  // OnShadow records a shadow or noise call (exchange.source SHADOW/NOISE,
  // arm = the target) as a child of its live exchange's span.
  void OnShadow(const understudy::v1::Exchange& shadow_or_noise);

  // OnComparison records a comparison as a child of its live exchange's span.
  void OnComparison(const understudy::v1::Comparison& comparison);

  // OnDecision records a rollout decision in a trace of its own. Every
  // decision passed in is recorded; callers usually skip "hold". Each
  // revisit trigger fired at that time (docs/drift.md) becomes a span event
  // "understudy.revisit" (attributes understudy.revisit.kind, .detail,
  // .action).
  void OnDecision(const understudy::v1::Decision& decision,
                  const std::vector<understudy::v1::RevisitTrigger>& revisit = {});

  // LookupExchange returns the remembered span context of a live exchange.
  std::optional<SpanContext> LookupExchange(std::string_view request_id) const;

  TracerStats Stats() const;

  // Flush waits until every span recorded so far has been exported (or
  // has failed), at most `timeout`; true when nothing is left.
  bool Flush(absl::Duration timeout);

  // Shutdown exports what is queued for at most `deadline`, then stops the
  // exporter; later spans are dropped (and counted). Idempotent.
  void Shutdown(absl::Duration deadline);

 private:
  Tracer() = default;
  void Remember(const std::string& request_id, const SpanContext& ctx);
  // Submit hands a finished span to the exporter (counted).
  void Submit(opentelemetry::proto::trace::v1::Span&& span);
  // ChildSpan sets the ids of `span` for a span under the live exchange's
  // span for `request_id`, or in a new trace when that is not remembered;
  // false (and counted) when tracing is off or the trace is not sampled.
  bool ChildSpan(std::string_view request_id, opentelemetry::proto::trace::v1::Span* span);

  TelemetryConfig config_;
  std::unique_ptr<SpanExporter> exporter_;

  mutable absl::Mutex lru_mu_;
  // Most recently used at the front.
  std::list<std::pair<std::string, SpanContext>> lru_ ABSL_GUARDED_BY(lru_mu_);
  absl::flat_hash_map<std::string, std::list<std::pair<std::string, SpanContext>>::iterator>
      lru_index_ ABSL_GUARDED_BY(lru_mu_);

  std::atomic<int64_t> spans_started_{0};
  std::atomic<int64_t> spans_not_sampled_{0};
};

}  // namespace understudy::telemetry

#endif  // UNDERSTUDY_TELEMETRY_TRACER_H_
