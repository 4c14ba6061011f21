// tests/telemetry/otlp_receiver.h
// An in-process OTLP trace receiver for tests, on either transport: a real
// gRPC server implementing TraceService/Export, or a real HTTP server
// accepting POST /v1/traces with a protobuf body. Both listen on
// 127.0.0.1:<ephemeral port> and keep every span they receive.
//
// Example:
//   std::unique_ptr<OtlpReceiver> rx = OtlpReceiver::Start(OtlpProtocol::kHttp);
//   config.otlp.endpoint = rx->endpoint();
//   ...
//   std::vector<ReceivedSpan> spans = rx->WaitForSpans(2);   // polls with a deadline
//
// Thread safety: all methods may be called concurrently.
#ifndef UNDERSTUDY_TESTS_TELEMETRY_OTLP_RECEIVER_H_
#define UNDERSTUDY_TESTS_TELEMETRY_OTLP_RECEIVER_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "opentelemetry/proto/collector/trace/v1/trace_service.pb.h"
#include "telemetry/tracer.h"

namespace understudy::telemetry::testing {

struct ReceivedSpan {
  opentelemetry::proto::trace::v1::Span span;
  opentelemetry::proto::resource::v1::Resource resource;
  opentelemetry::proto::common::v1::InstrumentationScope scope;
};

class OtlpReceiver {
 public:
  // Start binds 127.0.0.1:0 and serves until destroyed.
  static std::unique_ptr<OtlpReceiver> Start(OtlpProtocol protocol);
  virtual ~OtlpReceiver() = default;

  // endpoint is what OtlpConfig::endpoint should be: "127.0.0.1:<port>"
  // for gRPC, "http://127.0.0.1:<port>" for HTTP.
  virtual std::string endpoint() const = 0;

  // WaitForSpans waits until at least `n` spans have arrived or `timeout`
  // passed, then returns everything received so far.
  std::vector<ReceivedSpan> WaitForSpans(size_t n, absl::Duration timeout = absl::Seconds(10));
  std::vector<ReceivedSpan> Spans() const;
  // FindSpan returns the first span with that name, or nullptr.
  const ReceivedSpan* FindSpan(const std::vector<ReceivedSpan>& spans,
                               const std::string& name) const;

  int64_t requests() const;
  // Headers (gRPC metadata) of the last request, names lower-case.
  std::map<std::string, std::string> last_headers() const;
  // Content-Type of the last HTTP request ("" for gRPC).
  std::string last_content_type() const;

  // Later requests report `rejected` spans as a partial success.
  void SetRejectedSpans(int64_t rejected);
  // Later requests fail (HTTP 500 / gRPC INTERNAL) while true.
  void SetFailing(bool failing);
  // The next `n` requests are refused as a busy collector would (HTTP 503 /
  // gRPC UNAVAILABLE), their spans not kept.
  void SetUnavailable(int n);

 protected:
  enum class Answer { kOk, kFail, kUnavailable };
  // Record stores a decoded request unless told to refuse it, and fills
  // `response`.
  Answer Record(const opentelemetry::proto::collector::trace::v1::ExportTraceServiceRequest& req,
                std::map<std::string, std::string> headers, std::string content_type,
                opentelemetry::proto::collector::trace::v1::ExportTraceServiceResponse* response);

 private:
  mutable absl::Mutex mu_;
  std::vector<ReceivedSpan> spans_ ABSL_GUARDED_BY(mu_);
  int64_t requests_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<std::string, std::string> last_headers_ ABSL_GUARDED_BY(mu_);
  std::string last_content_type_ ABSL_GUARDED_BY(mu_);
  int64_t rejected_ ABSL_GUARDED_BY(mu_) = 0;
  bool failing_ ABSL_GUARDED_BY(mu_) = false;
  int unavailable_ ABSL_GUARDED_BY(mu_) = 0;
};

// BlackHole is a TCP listener on 127.0.0.1:0 that never accepts nor
// answers: connections complete in the kernel backlog and then hang, like
// a collector that has stopped responding.
class BlackHole {
 public:
  BlackHole();
  ~BlackHole();
  int port() const { return port_; }

 private:
  int fd_ = -1;
  int port_ = 0;
};

// HexToBytes decodes lower-case hex ("0af7..") into raw bytes.
std::string HexToBytes(const std::string& hex);

// Attribute lookups on a span's (or event's, or link's) attributes.
const opentelemetry::proto::common::v1::AnyValue* FindAttribute(
    const google::protobuf::RepeatedPtrField<opentelemetry::proto::common::v1::KeyValue>& attrs,
    const std::string& key);

}  // namespace understudy::telemetry::testing

#endif  // UNDERSTUDY_TESTS_TELEMETRY_OTLP_RECEIVER_H_
