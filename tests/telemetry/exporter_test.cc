// tests/telemetry/exporter_test.cc: the bounded queue and the two OTLP
// transports against real receivers, a dead port and a black hole.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "telemetry/span_exporter.h"
#include "tests/common/test_util.h"
#include "tests/telemetry/otlp_receiver.h"

namespace understudy::telemetry {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::understudy::telemetry::testing::BlackHole;
using ::understudy::telemetry::testing::FindAttribute;
using ::understudy::telemetry::testing::OtlpReceiver;
using ::understudy::telemetry::testing::ReceivedSpan;
namespace otlp_trace = opentelemetry::proto::trace::v1;

otlp_trace::Span MakeSpan(int i) {
  otlp_trace::Span span;
  span.set_name(absl::StrCat("span-", i));
  span.set_trace_id(std::string(16, static_cast<char>(i + 1)));
  span.set_span_id(std::string(8, static_cast<char>(i + 1)));
  span.set_start_time_unix_nano(1700000000000000000ull);
  span.set_end_time_unix_nano(1700000000000000000ull + 1000);
  return span;
}

TelemetryConfig ConfigFor(OtlpProtocol protocol, const std::string& endpoint) {
  TelemetryConfig config;
  config.enabled = true;
  config.service_name = "exporter-test";
  config.otlp.protocol = protocol;
  config.otlp.endpoint = endpoint;
  config.otlp.flush_interval = absl::Milliseconds(50);
  config.otlp.timeout = absl::Seconds(10);
  return config;
}

std::unique_ptr<SpanExporter> NewExporter(const TelemetryConfig& config) {
  absl::StatusOr<std::unique_ptr<SpanTransport>> transport = NewOtlpTransport(config.otlp);
  EXPECT_OK(transport);
  return std::make_unique<SpanExporter>(std::move(*transport), ExporterOptionsFrom(config));
}

class ExporterTest : public ::testing::TestWithParam<OtlpProtocol> {
 protected:
  std::string BlackHoleEndpoint(const BlackHole& hole) const {
    return GetParam() == OtlpProtocol::kGrpc ? absl::StrCat("127.0.0.1:", hole.port())
                                             : absl::StrCat("http://127.0.0.1:", hole.port());
  }
};

// Spans arrive in batches of at most max_batch, with the resource, scope
// and configured headers on every request.
TEST_P(ExporterTest, ExportsBatchesWithResourceScopeAndHeaders) {
  std::unique_ptr<OtlpReceiver> rx = OtlpReceiver::Start(GetParam());
  TelemetryConfig config = ConfigFor(GetParam(), rx->endpoint());
  config.otlp.max_batch = 3;
  config.otlp.headers = {{"x-tenant", "team-a"}};
  std::unique_ptr<SpanExporter> exporter = NewExporter(config);

  for (int i = 0; i < 7; ++i) ASSERT_TRUE(exporter->Enqueue(MakeSpan(i)));
  std::vector<ReceivedSpan> spans = rx->WaitForSpans(7);
  ASSERT_EQ(spans.size(), 7u);
  EXPECT_GE(rx->requests(), 3);  // 7 spans in batches of at most 3
  EXPECT_EQ(rx->last_headers()["x-tenant"], "team-a");
  if (GetParam() == OtlpProtocol::kHttp) {
    EXPECT_EQ(rx->last_content_type(), "application/x-protobuf");
  }
  const auto* service = FindAttribute(spans[0].resource.attributes(), "service.name");
  ASSERT_NE(service, nullptr);
  EXPECT_EQ(service->string_value(), "exporter-test");
  EXPECT_NE(FindAttribute(spans[0].resource.attributes(), "service.version"), nullptr);
  EXPECT_EQ(spans[0].scope.name(), "understudy");
  EXPECT_EQ(spans[0].span.trace_id().size(), 16u);

  ASSERT_TRUE(exporter->Flush(absl::Seconds(10)));
  ExporterStats stats = exporter->Stats();
  EXPECT_EQ(stats.enqueued, 7);
  EXPECT_EQ(stats.exported, 7);
  EXPECT_EQ(stats.dropped, 0);
  EXPECT_EQ(stats.failed_batches, 0);
}

// A collector that accepts but never answers: Enqueue keeps returning at
// once, the queue fills, and the overflow is dropped and counted.
// Shutdown then cancels the hung export instead of waiting out its
// 30-second timeout.
TEST_P(ExporterTest, FullQueueDropsAndCountsInsteadOfBlocking) {
  BlackHole hole;
  TelemetryConfig config = ConfigFor(GetParam(), BlackHoleEndpoint(hole));
  config.otlp.max_queue = 4;
  config.otlp.max_batch = 2;
  config.otlp.timeout = absl::Seconds(30);
  std::unique_ptr<SpanExporter> exporter = NewExporter(config);

  int accepted = 0;
  for (int i = 0; i < 100; ++i) accepted += exporter->Enqueue(MakeSpan(i)) ? 1 : 0;

  ExporterStats stats = exporter->Stats();
  EXPECT_EQ(stats.enqueued, accepted);
  EXPECT_EQ(stats.enqueued + stats.dropped, 100);
  // At most one batch can be in the hung export, plus a full queue.
  EXPECT_GE(stats.enqueued, 4);
  EXPECT_LE(stats.enqueued, 4 + 2);
  EXPECT_EQ(stats.exported, 0);

  exporter->Shutdown(absl::Milliseconds(100));
  stats = exporter->Stats();
  EXPECT_EQ(stats.exported, 0);
  // Every accepted span is accounted for: failed in an export, or dropped
  // at the shutdown deadline.
  EXPECT_EQ(stats.failed_spans + (stats.dropped - (100 - accepted)), accepted);
  EXPECT_FALSE(exporter->Enqueue(MakeSpan(0)));  // after shutdown
  EXPECT_EQ(exporter->Stats().dropped, stats.dropped + 1);
}

// Nothing listens: the export fails, is counted with its spans, and the
// error is kept for operators.
TEST_P(ExporterTest, CountsFailedExportsToADeadEndpoint) {
  int dead_port;
  {
    BlackHole hole;  // reserve a port, then close it: connections are refused
    dead_port = hole.port();
  }
  TelemetryConfig config = ConfigFor(
      GetParam(), GetParam() == OtlpProtocol::kGrpc ? absl::StrCat("127.0.0.1:", dead_port)
                                                    : absl::StrCat("http://127.0.0.1:", dead_port));
  config.otlp.timeout = absl::Seconds(5);
  config.otlp.retry_max_elapsed = absl::Seconds(1);  // 500 ms backoff: one or two retries
  std::unique_ptr<SpanExporter> exporter = NewExporter(config);
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(exporter->Enqueue(MakeSpan(i)));
  ASSERT_TRUE(exporter->Flush(absl::Seconds(20)));
  ExporterStats stats = exporter->Stats();
  EXPECT_GE(stats.failed_batches, 1);
  EXPECT_EQ(stats.failed_spans, 3);
  EXPECT_EQ(stats.exported, 0);
  EXPECT_GE(stats.retries, 1);  // refused connections are transient
  EXPECT_FALSE(stats.last_error.empty());
}

// A collector that is briefly busy (HTTP 503 / gRPC UNAVAILABLE) gets the
// batch again after a backoff: nothing is lost, the retries are counted.
TEST_P(ExporterTest, RetriesTransientFailuresWithBackoff) {
  std::unique_ptr<OtlpReceiver> rx = OtlpReceiver::Start(GetParam());
  rx->SetUnavailable(2);
  std::unique_ptr<SpanExporter> exporter = NewExporter(ConfigFor(GetParam(), rx->endpoint()));
  const absl::Time start = absl::Now();
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(exporter->Enqueue(MakeSpan(i)));
  ASSERT_TRUE(exporter->Flush(absl::Seconds(20)));
  ExporterStats stats = exporter->Stats();
  EXPECT_EQ(stats.exported, 3);
  EXPECT_EQ(stats.failed_batches, 0);
  EXPECT_EQ(stats.retries, 2);
  EXPECT_EQ(rx->requests(), 3);
  EXPECT_EQ(rx->Spans().size(), 3u);
  // Backoffs of 500 ms and 1 s, each at least 80% of itself.
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(1200));
}

// Retries stop at retry_max_elapsed, and shutdown cuts a backoff short.
TEST_P(ExporterTest, RetriesEndAtMaxElapsedAndAtShutdown) {
  std::unique_ptr<OtlpReceiver> rx = OtlpReceiver::Start(GetParam());
  rx->SetUnavailable(1000);
  TelemetryConfig config = ConfigFor(GetParam(), rx->endpoint());
  config.otlp.retry_max_elapsed = absl::Seconds(2);
  std::unique_ptr<SpanExporter> exporter = NewExporter(config);
  ASSERT_TRUE(exporter->Enqueue(MakeSpan(1)));
  ASSERT_TRUE(exporter->Flush(absl::Seconds(20)));
  ExporterStats stats = exporter->Stats();
  EXPECT_EQ(stats.failed_batches, 1);
  EXPECT_EQ(stats.failed_spans, 1);
  // Backoffs 0.5, 1 (then 2 would pass the 2 s): two or three tries in all.
  EXPECT_GE(stats.retries, 1);
  EXPECT_LE(stats.retries, 3);

  config.otlp.retry_max_elapsed = absl::Hours(1);
  std::unique_ptr<SpanExporter> patient = NewExporter(config);
  ASSERT_TRUE(patient->Enqueue(MakeSpan(2)));
  absl::SleepFor(absl::Milliseconds(300));  // in its first backoff by now
  const absl::Time start = absl::Now();
  patient->Shutdown(absl::Milliseconds(500));
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  EXPECT_EQ(patient->Stats().exported, 0);
  EXPECT_EQ(patient->Stats().failed_spans, 1);
}

// A receiver error (HTTP 500 / gRPC INTERNAL) fails the batch; header
// values (possibly credentials) never reach the recorded error.
TEST_P(ExporterTest, ReceiverErrorsFailTheBatchWithoutLeakingHeaders) {
  std::unique_ptr<OtlpReceiver> rx = OtlpReceiver::Start(GetParam());
  rx->SetFailing(true);
  TelemetryConfig config = ConfigFor(GetParam(), rx->endpoint());
  const std::string credential = std::string("Bearer ") + "abc" + std::to_string(987654);
  config.otlp.headers = {{"authorization", credential}};
  std::unique_ptr<SpanExporter> exporter = NewExporter(config);
  ASSERT_TRUE(exporter->Enqueue(MakeSpan(1)));
  ASSERT_TRUE(exporter->Flush(absl::Seconds(10)));
  ExporterStats stats = exporter->Stats();
  EXPECT_EQ(stats.failed_batches, 1);
  EXPECT_EQ(stats.exported, 0);
  EXPECT_EQ(stats.retries, 0);   // a receiver error is not transient
  EXPECT_EQ(rx->requests(), 1);
  EXPECT_EQ(rx->last_headers()["authorization"], credential);  // it was sent...
  EXPECT_THAT(stats.last_error, Not(HasSubstr("abc987654")));  // ...and not kept
}

// A partial success is an acknowledged export whose rejections are counted.
TEST_P(ExporterTest, CountsPartialSuccessRejections) {
  std::unique_ptr<OtlpReceiver> rx = OtlpReceiver::Start(GetParam());
  rx->SetRejectedSpans(1);
  std::unique_ptr<SpanExporter> exporter = NewExporter(ConfigFor(GetParam(), rx->endpoint()));
  ASSERT_TRUE(exporter->Enqueue(MakeSpan(1)));
  ASSERT_TRUE(exporter->Enqueue(MakeSpan(2)));
  ASSERT_TRUE(exporter->Flush(absl::Seconds(10)));
  ExporterStats stats = exporter->Stats();
  EXPECT_EQ(stats.exported, 2);
  EXPECT_GE(stats.rejected_spans, 1);
  EXPECT_EQ(stats.failed_batches, 0);
}

// Shutdown exports what is still queued when the collector is healthy.
TEST_P(ExporterTest, ShutdownFlushesTheQueue) {
  std::unique_ptr<OtlpReceiver> rx = OtlpReceiver::Start(GetParam());
  TelemetryConfig config = ConfigFor(GetParam(), rx->endpoint());
  config.otlp.flush_interval = absl::Hours(1);  // only shutdown can send these
  config.otlp.max_batch = 100;
  std::unique_ptr<SpanExporter> exporter = NewExporter(config);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(exporter->Enqueue(MakeSpan(i)));
  exporter->Shutdown(absl::Seconds(10));
  EXPECT_EQ(rx->Spans().size(), 5u);
  EXPECT_EQ(exporter->Stats().exported, 5);
}

INSTANTIATE_TEST_SUITE_P(Transports, ExporterTest,
                         ::testing::Values(OtlpProtocol::kGrpc, OtlpProtocol::kHttp),
                         [](const ::testing::TestParamInfo<OtlpProtocol>& info) {
                           return info.param == OtlpProtocol::kGrpc ? "Grpc" : "Http";
                         });

// The OTLP/HTTP path is appended once.
TEST(HttpTracesUrlTest, AppendsV1TracesOnce) {
  EXPECT_EQ(HttpTracesUrl("http://h:4318"), "http://h:4318/v1/traces");
  EXPECT_EQ(HttpTracesUrl("http://h:4318/"), "http://h:4318/v1/traces");
  EXPECT_EQ(HttpTracesUrl("https://h/otlp/v1/traces"), "https://h/otlp/v1/traces");
}

// An HTTP transport needs a URL.
TEST(NewOtlpTransportTest, RejectsHttpEndpointWithoutScheme) {
  OtlpConfig config;
  config.protocol = OtlpProtocol::kHttp;
  config.endpoint = "collector:4318";
  EXPECT_THAT(NewOtlpTransport(config),
              ::understudy::testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                              "telemetry.otlp.endpoint"));
}

}  // namespace
}  // namespace understudy::telemetry
