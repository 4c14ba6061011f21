// telemetry/span_exporter.h
// The export half of the tracer: a bounded span queue drained by one
// background thread that sends batches over OTLP/gRPC or OTLP/HTTP
// (protobuf body). The Tracer owns one; tests and tools may use it alone.
//
// Example (given const TelemetryConfig& config,
//   opentelemetry::proto::trace::v1::Span span):
//   ASSIGN_OR_RETURN(std::unique_ptr<SpanTransport> transport, NewOtlpTransport(config.otlp));
//   SpanExporter exporter(std::move(transport), ExporterOptionsFrom(config));
//   if (!exporter.Enqueue(std::move(span))) { /* dropped: queue full */ }
//   exporter.Shutdown(absl::Seconds(5));
//
// Thread safety: Enqueue, Stats and Flush may be called from any thread;
// Enqueue never blocks on I/O (one short lock). A transport is used by the
// export thread only, except Cancel, which may come from any thread.
#ifndef UNDERSTUDY_TELEMETRY_SPAN_EXPORTER_H_
#define UNDERSTUDY_TELEMETRY_SPAN_EXPORTER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "telemetry/tracer.h"

namespace understudy::telemetry {

// SpanTransport sends one export request.
class SpanTransport {
 public:
  virtual ~SpanTransport() = default;
  // Export sends `request` and waits at most `timeout`. On success returns
  // the number of spans the receiver said it rejected (partial success).
  // Errors: Unavailable / DeadlineExceeded / Cancelled, or the receiver's
  // status (HTTP status codes map to Unavailable or InvalidArgument).
  virtual absl::StatusOr<int64_t> Export(
      const opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest& request,
      absl::Duration timeout) = 0;
  // Cancel makes the export in progress (and every later one) fail fast
  // with Cancelled. Used by Shutdown when its deadline passes.
  virtual void Cancel() = 0;
};

// NewOtlpTransport builds the gRPC (generated TraceService stub over
// grpc::CreateChannel) or HTTP (libcurl POST of the serialized request to
// {endpoint}/v1/traces, Content-Type application/x-protobuf) transport.
// Nothing connects yet. InvalidArgument for an endpoint that does not fit
// the protocol.
[[nodiscard]] absl::StatusOr<std::unique_ptr<SpanTransport>> NewOtlpTransport(
    const OtlpConfig& config);

// HttpTracesUrl is where OTLP/HTTP spans go for an endpoint:
//   HttpTracesUrl("http://h:4318")            == "http://h:4318/v1/traces"
//   HttpTracesUrl("http://h:4318/v1/traces")  == "http://h:4318/v1/traces"
std::string HttpTracesUrl(std::string_view endpoint);

struct ExporterOptions {
  int64_t max_queue = 2048;
  int64_t max_batch = 256;
  absl::Duration flush_interval = absl::Seconds(2);
  absl::Duration timeout = absl::Seconds(5);
  // A batch that fails with a retryable error (the collector is
  // unavailable, overloaded or timed out: gRPC UNAVAILABLE,
  // DEADLINE_EXCEEDED, ABORTED, OUT_OF_RANGE, DATA_LOSS; HTTP 429, 502,
  // 503, 504) is sent again after a backoff that starts at
  // retry_initial_backoff and doubles up to retry_max_backoff (each wait
  // +-20% jitter), until retry_max_elapsed has passed since the first try.
  // Zero retry_max_elapsed turns retries off.
  absl::Duration retry_initial_backoff = absl::Milliseconds(500);
  absl::Duration retry_max_backoff = absl::Seconds(5);
  absl::Duration retry_max_elapsed = absl::Seconds(30);
  // Every exported batch carries this resource and scope.
  opentelemetry::proto::resource::v1::Resource resource;
  opentelemetry::proto::common::v1::InstrumentationScope scope;
};

// ExporterOptionsFrom fills the options from a config: limits, resource
// attributes service.name and service.version, scope "understudy".
ExporterOptions ExporterOptionsFrom(const TelemetryConfig& config);

struct ExporterStats {
  int64_t enqueued = 0;        // accepted into the queue
  int64_t exported = 0;        // in batches the receiver acknowledged
  int64_t dropped = 0;         // queue full, after shutdown, or left at the deadline
  int64_t failed_batches = 0;  // batches given up on (spans lost)
  int64_t failed_spans = 0;    // spans in those batches
  int64_t retries = 0;         // export calls repeated after a retryable error
  int64_t exported_batches = 0;
  int64_t rejected_spans = 0;  // partial-success rejections
  std::string last_error;      // of the last failed export; never holds header values
};

// SpanExporter batches spans and exports them in the background. A batch
// goes out when max_batch spans are waiting or flush_interval has passed
// since the last export. A retryable failure is retried with backoff (see
// ExporterOptions) while new spans keep queueing up to max_queue (the
// overflow is dropped and counted: memory stays bounded); other failures
// and exhausted retries fail the batch, counted.
class SpanExporter {
 public:
  SpanExporter(std::unique_ptr<SpanTransport> transport, ExporterOptions options);
  ~SpanExporter();  // Shutdown(options.timeout)
  SpanExporter(const SpanExporter&) = delete;
  SpanExporter& operator=(const SpanExporter&) = delete;

  // Enqueue takes the span; false (and counted as dropped) when the queue
  // is full or the exporter is shut down. Never blocks on I/O.
  bool Enqueue(opentelemetry::proto::trace::v1::Span&& span);

  ExporterStats Stats() const;

  // Flush asks for an export of everything queued now and waits until the
  // queue is empty and no export is in flight, at most `timeout`. True when
  // drained.
  bool Flush(absl::Duration timeout);

  // Shutdown stops accepting spans, exports what is queued until
  // `deadline` has passed (each call bounded by the remaining time), then
  // cancels any export still in flight, counts the rest as dropped and
  // joins the thread. Idempotent.
  void Shutdown(absl::Duration deadline);

 private:
  void Run();
  bool ReadyLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool DrainedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool ThreadDoneLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool StoppingLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; }
  // WaitToRetry sleeps `backoff` and returns the timeout for the next try,
  // or nothing when a shutdown's deadline comes first.
  std::optional<absl::Duration> WaitToRetry(absl::Duration backoff, absl::Duration timeout);
  void ExportBatch(std::vector<opentelemetry::proto::trace::v1::Span>&& batch,
                   absl::Duration timeout);

  const std::unique_ptr<SpanTransport> transport_;
  const ExporterOptions options_;

  mutable absl::Mutex mu_;
  std::deque<opentelemetry::proto::trace::v1::Span> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool thread_done_ ABSL_GUARDED_BY(mu_) = false;
  bool in_flight_ ABSL_GUARDED_BY(mu_) = false;
  int flush_waiters_ ABSL_GUARDED_BY(mu_) = 0;
  absl::Time shutdown_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();

  std::atomic<int64_t> enqueued_{0};
  std::atomic<int64_t> exported_{0};
  std::atomic<int64_t> dropped_{0};
  std::atomic<int64_t> failed_batches_{0};
  std::atomic<int64_t> failed_spans_{0};
  std::atomic<int64_t> exported_batches_{0};
  std::atomic<int64_t> rejected_spans_{0};
  std::atomic<int64_t> retries_{0};
  std::mt19937_64 jitter_;  // export thread only
  mutable absl::Mutex error_mu_;
  std::string last_error_ ABSL_GUARDED_BY(error_mu_);

  absl::Mutex join_mu_;  // serialises Shutdown callers
  std::thread thread_;
};

}  // namespace understudy::telemetry

#endif  // UNDERSTUDY_TELEMETRY_SPAN_EXPORTER_H_
