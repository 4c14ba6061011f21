// telemetry/span_exporter.cc
// The export queue and thread, and the two OTLP transports.
#include "telemetry/span_exporter.h"

#include <curl/curl.h>
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/strings.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.grpc.pb.h"

namespace understudy::telemetry {
namespace {

namespace otlp_collector = opentelemetry::proto::collector::trace::v1;
namespace otlp_trace = opentelemetry::proto::trace::v1;
namespace otlp_common = opentelemetry::proto::common::v1;

#ifndef UNDERSTUDY_VERSION
#define UNDERSTUDY_VERSION "0.0.0"
#endif

// ------------------------------------------------------------- gRPC ------

class GrpcTransport final : public SpanTransport {
 public:
  GrpcTransport(const std::string& target, bool tls,
                std::vector<std::pair<std::string, std::string>> headers)
      : headers_(std::move(headers)) {
    // gRPC metadata keys must be lower case (the config parser already
    // lower-cases; a hand-built OtlpConfig may not).
    for (auto& header : headers_) absl::AsciiStrToLower(&header.first);
    std::shared_ptr<grpc::ChannelCredentials> creds =
        tls ? grpc::SslCredentials(grpc::SslCredentialsOptions())
            : grpc::InsecureChannelCredentials();
    grpc::ChannelArguments args;
    // A collector that comes back should be found again within seconds,
    // not after gRPC's default two-minute backoff ceiling.
    args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 10000);
    channel_ = grpc::CreateCustomChannel(target, creds, args);
    stub_ = otlp_collector::TraceService::NewStub(channel_);
  }

  absl::StatusOr<int64_t> Export(const otlp_collector::ExportTraceServiceRequest& request,
                                 absl::Duration timeout) override {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::duration_cast<std::chrono::system_clock::duration>(
                         absl::ToChronoNanoseconds(timeout)));
    for (const auto& [key, value] : headers_) ctx.AddMetadata(key, value);
    {
      absl::MutexLock lock(&mu_);
      if (cancelled_) return absl::CancelledError("exporter shut down");
      current_ = &ctx;
    }
    otlp_collector::ExportTraceServiceResponse response;
    grpc::Status status = stub_->Export(&ctx, request, &response);
    {
      absl::MutexLock lock(&mu_);
      current_ = nullptr;
    }
    if (!status.ok()) {
      // gRPC and absl share the canonical code numbering.
      return absl::Status(static_cast<absl::StatusCode>(status.error_code()),
                          absl::StrCat("OTLP/gRPC export: ", status.error_message()));
    }
    return response.partial_success().rejected_spans();
  }

  void Cancel() override {
    absl::MutexLock lock(&mu_);
    cancelled_ = true;
    if (current_ != nullptr) current_->TryCancel();
  }

 private:
  std::vector<std::pair<std::string, std::string>> headers_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<otlp_collector::TraceService::Stub> stub_;
  absl::Mutex mu_;
  bool cancelled_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* current_ ABSL_GUARDED_BY(mu_) = nullptr;
};

// ------------------------------------------------------------- HTTP ------

size_t AppendToString(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

int AbortIfCancelled(void* flag, curl_off_t, curl_off_t, curl_off_t, curl_off_t) {
  return static_cast<std::atomic<bool>*>(flag)->load() ? 1 : 0;
}

// One easy handle, reused so the connection to the collector stays open.
// Only the export thread calls Export; Cancel only flips an atomic that the
// transfer's progress callback reads.
class HttpTransport final : public SpanTransport {
 public:
  HttpTransport(std::string url, const std::vector<std::pair<std::string, std::string>>& headers)
      : url_(std::move(url)), curl_(curl_easy_init()) {
    header_list_ = curl_slist_append(header_list_, "Content-Type: application/x-protobuf");
    // Without this, curl waits for "100 Continue" before sending bodies over 1 KiB.
    header_list_ = curl_slist_append(header_list_, "Expect:");
    for (const auto& [key, value] : headers) {
      header_list_ = curl_slist_append(header_list_, absl::StrCat(key, ": ", value).c_str());
    }
  }
  ~HttpTransport() override {
    if (curl_ != nullptr) curl_easy_cleanup(curl_);
    curl_slist_free_all(header_list_);
  }

  absl::StatusOr<int64_t> Export(const otlp_collector::ExportTraceServiceRequest& request,
                                 absl::Duration timeout) override {
    if (cancelled_.load()) return absl::CancelledError("exporter shut down");
    if (curl_ == nullptr) return absl::InternalError("curl_easy_init failed");
    std::string body;
    if (!request.SerializeToString(&body)) {
      return absl::InternalError("could not serialize the export request");
    }
    std::string response;
    const long timeout_ms = std::max<long>(1, absl::ToInt64Milliseconds(timeout));
    CURL* c = curl_;
    curl_easy_setopt(c, CURLOPT_URL, url_.c_str());
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, header_list_);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &AppendToString);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &response);
    curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &AbortIfCancelled);
    curl_easy_setopt(c, CURLOPT_XFERINFODATA, &cancelled_);
    CURLcode rc = curl_easy_perform(c);
    if (rc == CURLE_ABORTED_BY_CALLBACK) return absl::CancelledError("exporter shut down");
    if (rc == CURLE_OPERATION_TIMEDOUT) {
      return absl::DeadlineExceededError(
          absl::StrCat("OTLP/HTTP export to ", url_, ": ", curl_easy_strerror(rc)));
    }
    if (rc != CURLE_OK) {
      return absl::UnavailableError(
          absl::StrCat("OTLP/HTTP export to ", url_, ": ", curl_easy_strerror(rc)));
    }
    long code = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
    if (code < 200 || code > 299) {
      std::string message = absl::StrCat("OTLP/HTTP export to ", url_, ": HTTP ", code);
      // The spec's retryable codes: the collector is busy or restarting.
      if (code == 429 || code == 502 || code == 503 || code == 504) {
        return absl::UnavailableError(message);
      }
      return absl::InvalidArgumentError(message);
    }
    otlp_collector::ExportTraceServiceResponse parsed;
    // An empty or non-protobuf 2xx body still means "accepted".
    if (!response.empty() && parsed.ParseFromString(response)) {
      return parsed.partial_success().rejected_spans();
    }
    return 0;
  }

  void Cancel() override { cancelled_.store(true); }

 private:
  const std::string url_;
  CURL* curl_;
  curl_slist* header_list_ = nullptr;
  std::atomic<bool> cancelled_{false};
};

// IsRetryable: the failures OTLP calls transient (the collector is down,
// overloaded or slow). Our own cancellation at shutdown is not one.
bool IsRetryable(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kAborted:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kDataLoss:
      return true;
    default:
      return false;
  }
}

void GlobalCurlInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

void AddStringAttribute(google::protobuf::RepeatedPtrField<otlp_common::KeyValue>* attrs,
                        const std::string& key, const std::string& value) {
  otlp_common::KeyValue* kv = attrs->Add();
  kv->set_key(key);
  kv->mutable_value()->set_string_value(value);
}

}  // namespace

std::string HttpTracesUrl(std::string_view endpoint) {
  std::string url(endpoint);
  while (!url.empty() && url.back() == '/') url.pop_back();
  if (absl::EndsWith(url, "/v1/traces")) return url;
  return url + "/v1/traces";
}

absl::StatusOr<std::unique_ptr<SpanTransport>> NewOtlpTransport(const OtlpConfig& config) {
  std::string_view endpoint = config.endpoint;
  const bool http_scheme = absl::StartsWith(Av(endpoint), "http://");
  const bool https_scheme = absl::StartsWith(Av(endpoint), "https://");
  if (config.protocol == OtlpProtocol::kHttp) {
    if (!http_scheme && !https_scheme) {
      return absl::InvalidArgumentError(
          absl::StrCat("telemetry.otlp.endpoint: must be a URL like http://host:4318 when "
                       "protocol is http, got \"",
                       Av(endpoint), "\""));
    }
    GlobalCurlInit();
    return std::unique_ptr<SpanTransport>(
        new HttpTransport(HttpTracesUrl(endpoint), config.headers));
  }
  std::string target(endpoint);
  if (http_scheme) target = target.substr(7);
  if (https_scheme) target = target.substr(8);
  while (!target.empty() && target.back() == '/') target.pop_back();
  if (target.empty()) {
    return absl::InvalidArgumentError("telemetry.otlp.endpoint: must be host:port for grpc");
  }
  return std::unique_ptr<SpanTransport>(new GrpcTransport(target, https_scheme, config.headers));
}

ExporterOptions ExporterOptionsFrom(const TelemetryConfig& config) {
  ExporterOptions options;
  options.max_queue = config.otlp.max_queue;
  options.max_batch = config.otlp.max_batch;
  options.flush_interval = config.otlp.flush_interval;
  options.timeout = config.otlp.timeout;
  options.retry_max_elapsed = config.otlp.retry_max_elapsed;
  AddStringAttribute(options.resource.mutable_attributes(), "service.name", config.service_name);
  AddStringAttribute(options.resource.mutable_attributes(), "service.version",
                     config.service_version.empty() ? UNDERSTUDY_VERSION : config.service_version);
  options.scope.set_name("understudy");
  options.scope.set_version(UNDERSTUDY_VERSION);
  return options;
}

// ------------------------------------------------------------ exporter ---

SpanExporter::SpanExporter(std::unique_ptr<SpanTransport> transport, ExporterOptions options)
    : transport_(std::move(transport)), options_(std::move(options)) {
  thread_ = std::thread([this] { Run(); });
}

SpanExporter::~SpanExporter() { Shutdown(options_.timeout); }

bool SpanExporter::Enqueue(otlp_trace::Span&& span) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_ && static_cast<int64_t>(queue_.size()) < options_.max_queue) {
      queue_.push_back(std::move(span));
      enqueued_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
  }
  dropped_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

ExporterStats SpanExporter::Stats() const {
  ExporterStats s;
  s.enqueued = enqueued_.load();
  s.exported = exported_.load();
  s.dropped = dropped_.load();
  s.failed_batches = failed_batches_.load();
  s.failed_spans = failed_spans_.load();
  s.exported_batches = exported_batches_.load();
  s.rejected_spans = rejected_spans_.load();
  s.retries = retries_.load();
  absl::MutexLock lock(&error_mu_);
  s.last_error = last_error_;
  return s;
}

bool SpanExporter::ReadyLocked() const {
  return stopping_ || static_cast<int64_t>(queue_.size()) >= options_.max_batch ||
         (flush_waiters_ > 0 && !queue_.empty());
}

bool SpanExporter::DrainedLocked() const { return queue_.empty() && !in_flight_; }

bool SpanExporter::ThreadDoneLocked() const { return thread_done_; }

bool SpanExporter::Flush(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  if (thread_done_) return queue_.empty();
  ++flush_waiters_;
  bool drained = mu_.AwaitWithTimeout(absl::Condition(this, &SpanExporter::DrainedLocked), timeout);
  --flush_waiters_;
  return drained;
}

void SpanExporter::Shutdown(absl::Duration deadline) {
  absl::MutexLock join_lock(&join_mu_);
  if (!thread_.joinable()) return;
  bool done;
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    shutdown_deadline_ = absl::Now() + deadline;
    done = mu_.AwaitWithDeadline(absl::Condition(this, &SpanExporter::ThreadDoneLocked),
                                 shutdown_deadline_);
  }
  // Past the deadline an export may still be waiting on a silent collector:
  // cut it short rather than hold up process exit.
  if (!done) transport_->Cancel();
  thread_.join();
}

void SpanExporter::Run() {
  absl::Time last_export = absl::Now();
  for (;;) {
    std::vector<otlp_trace::Span> batch;
    absl::Duration call_timeout = options_.timeout;
    {
      absl::MutexLock lock(&mu_);
      mu_.AwaitWithDeadline(absl::Condition(this, &SpanExporter::ReadyLocked),
                            last_export + options_.flush_interval);
      if (stopping_) {
        if (queue_.empty()) break;
        absl::Duration left = shutdown_deadline_ - absl::Now();
        if (left <= absl::ZeroDuration()) {
          dropped_.fetch_add(static_cast<int64_t>(queue_.size()));
          queue_.clear();
          break;
        }
        call_timeout = std::min(call_timeout, left);
      }
      if (queue_.empty()) {
        last_export = absl::Now();
        continue;
      }
      size_t n = std::min<size_t>(queue_.size(), static_cast<size_t>(options_.max_batch));
      batch.reserve(n);
      for (size_t i = 0; i < n; ++i) {
        batch.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      in_flight_ = true;
    }
    ExportBatch(std::move(batch), call_timeout);
    last_export = absl::Now();
    absl::MutexLock lock(&mu_);
    in_flight_ = false;
  }
  absl::MutexLock lock(&mu_);
  in_flight_ = false;
  thread_done_ = true;
}

void SpanExporter::ExportBatch(std::vector<otlp_trace::Span>&& batch, absl::Duration timeout) {
  const int64_t n = static_cast<int64_t>(batch.size());
  otlp_collector::ExportTraceServiceRequest request;
  otlp_trace::ResourceSpans* rs = request.add_resource_spans();
  *rs->mutable_resource() = options_.resource;
  otlp_trace::ScopeSpans* ss = rs->add_scope_spans();
  *ss->mutable_scope() = options_.scope;
  ss->mutable_spans()->Reserve(static_cast<int>(n));
  for (otlp_trace::Span& span : batch) *ss->add_spans() = std::move(span);

  const absl::Time give_up = absl::Now() + options_.retry_max_elapsed;
  absl::Duration backoff = options_.retry_initial_backoff;
  for (;;) {
    absl::StatusOr<int64_t> rejected = transport_->Export(request, timeout);
    if (rejected.ok()) {
      exported_.fetch_add(n);
      exported_batches_.fetch_add(1);
      rejected_spans_.fetch_add(*rejected);
      return;
    }
    {
      absl::MutexLock lock(&error_mu_);
      last_error_ = rejected.status().ToString();
    }
    std::optional<absl::Duration> next;
    if (IsRetryable(rejected.status()) && absl::Now() + backoff <= give_up) {
      next = WaitToRetry(backoff, timeout);
    }
    if (!next) break;
    timeout = *next;
    retries_.fetch_add(1);
    backoff = std::min(backoff * 2, options_.retry_max_backoff);
  }
  failed_batches_.fetch_add(1);
  failed_spans_.fetch_add(n);
}

std::optional<absl::Duration> SpanExporter::WaitToRetry(absl::Duration backoff,
                                                        absl::Duration timeout) {
  std::uniform_real_distribution<double> jitter(0.8, 1.2);
  const absl::Time wake = absl::Now() + backoff * jitter(jitter_);
  absl::Time deadline;  // the shutdown's, once it has begun
  {
    absl::MutexLock lock(&mu_);
    mu_.AwaitWithDeadline(absl::Condition(this, &SpanExporter::StoppingLocked), wake);
    deadline = shutdown_deadline_;
  }
  // Shutting down: one more try only if the backoff ends before the
  // deadline (then the rest of it is waited out, so retries never spin).
  if (wake >= deadline) return std::nullopt;
  absl::SleepFor(wake - absl::Now());
  const absl::Duration left = deadline - absl::Now();
  if (left <= absl::ZeroDuration()) return std::nullopt;
  return std::min(timeout, left);
}

}  // namespace understudy::telemetry
