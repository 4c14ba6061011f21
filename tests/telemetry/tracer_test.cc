// tests/telemetry/tracer_test.cc: the spans the engine's calls produce, as a
// real OTLP receiver (gRPC and HTTP) sees them.
#include "telemetry/tracer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "opentelemetry/proto/trace/v1/trace.pb.h"
#include "telemetry/span_exporter.h"
#include "tests/common/test_util.h"
#include "tests/telemetry/otlp_receiver.h"

namespace understudy::telemetry {
namespace {

using ::understudy::telemetry::testing::FindAttribute;
using ::understudy::telemetry::testing::HexToBytes;
using ::understudy::telemetry::testing::OtlpReceiver;
using ::understudy::telemetry::testing::ReceivedSpan;
namespace otlp_trace = opentelemetry::proto::trace::v1;
namespace otlp_common = opentelemetry::proto::common::v1;

constexpr char kTraceId[] = "0af7651916cd43dd8448eb211c80319c";
constexpr char kParentSpanId[] = "b7ad6b7169203331";
constexpr int64_t kStartMicros = 1700000000123456;

v1::Exchange LiveExchange(const std::string& request_id, const std::string& traceparent) {
  v1::Exchange e;
  e.set_request_id(request_id);
  e.set_arm(v1::ARM_CANDIDATE);
  e.set_source(v1::SOURCE_LIVE);
  e.set_traceparent(traceparent);
  e.set_method("POST");
  e.set_path("/v1/chat/completions?api-version=1");
  e.set_status_code(200);
  e.set_start_unix_micros(kStartMicros);
  e.set_response_headers_offset_micros(150000);
  e.set_first_body_byte_offset_micros(180000);
  e.set_end_offset_micros(840000);
  return e;
}

ExchangeInfo Info() {
  ExchangeInfo info;
  info.stage_index = 2;
  info.weight_percent = 5.0;
  info.request_model = "gpt-4o-mini";
  info.response_model = "gpt-4o-mini-2024-07-18";
  info.input_tokens = 42;
  info.output_tokens = 7;
  info.outcome = std::string(rollout::OutcomeClassName(rollout::OutcomeClass::kOk));
  info.cost = 0.0021;
  return info;
}

// Attr returns the attribute value or fails the test.
const otlp_common::AnyValue& Attr(
    const google::protobuf::RepeatedPtrField<otlp_common::KeyValue>& attrs,
    const std::string& key) {
  static const otlp_common::AnyValue kMissing;
  const otlp_common::AnyValue* v = FindAttribute(attrs, key);
  EXPECT_NE(v, nullptr) << "missing attribute " << key;
  return v == nullptr ? kMissing : *v;
}

class TracerTest : public ::testing::TestWithParam<OtlpProtocol> {
 protected:
  void SetUp() override {
    rx_ = OtlpReceiver::Start(GetParam());
    config_.enabled = true;
    config_.service_name = "understudy-test";
    config_.otlp.protocol = GetParam();
    config_.otlp.endpoint = rx_->endpoint();
    config_.otlp.flush_interval = absl::Milliseconds(50);
    config_.otlp.timeout = absl::Seconds(10);
    absl::StatusOr<std::unique_ptr<Tracer>> tracer = Tracer::Create(config_);
    ASSERT_OK(tracer);
    tracer_ = std::move(*tracer);
    ASSERT_TRUE(tracer_->enabled());
  }
  void TearDown() override {
    if (tracer_ != nullptr) tracer_->Shutdown(absl::Seconds(5));
  }

  std::unique_ptr<OtlpReceiver> rx_;
  TelemetryConfig config_;
  std::unique_ptr<Tracer> tracer_;
};

// The exchange span continues the caller's trace: same trace id, parent =
// the traceparent's span, and timings taken from the exchange.
TEST_P(TracerTest, ExchangeSpanContinuesTheCallersTrace) {
  const std::string traceparent = std::string("00-") + kTraceId + "-" + kParentSpanId + "-01";
  SpanContext ctx = tracer_->OnExchange(LiveExchange("req-1", traceparent), Info());
  EXPECT_EQ(ctx.TraceIdHex(), kTraceId);
  EXPECT_TRUE(ctx.sampled());
  EXPECT_EQ(ctx.Traceparent().substr(0, 36), std::string("00-") + kTraceId + "-");

  std::vector<ReceivedSpan> spans = rx_->WaitForSpans(1);
  ASSERT_EQ(spans.size(), 1u);
  const otlp_trace::Span& s = spans[0].span;
  EXPECT_EQ(s.trace_id(), HexToBytes(kTraceId));
  EXPECT_EQ(s.parent_span_id(), HexToBytes(kParentSpanId));
  EXPECT_EQ(s.span_id(), ctx.SpanIdBytes());
  EXPECT_EQ(s.span_id().size(), 8u);
  EXPECT_EQ(s.flags() & 0xff, 0x01u);
  EXPECT_EQ(s.flags() & 0x300, 0x300u);  // parent is remote, and we say so
  EXPECT_EQ(s.name(), "chat gpt-4o-mini");
  EXPECT_EQ(s.kind(), otlp_trace::Span::SPAN_KIND_SERVER);
  EXPECT_EQ(s.start_time_unix_nano(), static_cast<uint64_t>(kStartMicros) * 1000);
  EXPECT_EQ(s.end_time_unix_nano(), static_cast<uint64_t>(kStartMicros + 840000) * 1000);
  EXPECT_EQ(s.status().code(), otlp_trace::Status::STATUS_CODE_UNSET);
  EXPECT_EQ(spans[0].scope.name(), "understudy");
  EXPECT_EQ(Attr(spans[0].resource.attributes(), "service.name").string_value(), "understudy-test");
  EXPECT_FALSE(Attr(spans[0].resource.attributes(), "service.version").string_value().empty());
  EXPECT_EQ(tracer_->LookupExchange("req-1"), ctx);
}

// GenAI, HTTP and understudy attributes are present with the right types:
// token counts and status codes are ints, the weight a double.
TEST_P(TracerTest, ExchangeSpanCarriesTypedGenAiAndUnderstudyAttributes) {
  tracer_->OnExchange(LiveExchange("req-2", ""), Info());
  std::vector<ReceivedSpan> spans = rx_->WaitForSpans(1);
  ASSERT_EQ(spans.size(), 1u);
  const auto& a = spans[0].span.attributes();
  EXPECT_EQ(Attr(a, "gen_ai.operation.name").string_value(), "chat");
  EXPECT_EQ(Attr(a, "gen_ai.provider.name").string_value(), "openai");
  EXPECT_EQ(Attr(a, "gen_ai.system").string_value(), "openai");
  EXPECT_EQ(Attr(a, "gen_ai.request.model").string_value(), "gpt-4o-mini");
  EXPECT_EQ(Attr(a, "gen_ai.response.model").string_value(), "gpt-4o-mini-2024-07-18");
  ASSERT_EQ(Attr(a, "gen_ai.usage.input_tokens").value_case(), otlp_common::AnyValue::kIntValue);
  EXPECT_EQ(Attr(a, "gen_ai.usage.input_tokens").int_value(), 42);
  ASSERT_EQ(Attr(a, "gen_ai.usage.output_tokens").value_case(), otlp_common::AnyValue::kIntValue);
  EXPECT_EQ(Attr(a, "gen_ai.usage.output_tokens").int_value(), 7);
  EXPECT_EQ(Attr(a, "http.request.method").string_value(), "POST");
  EXPECT_EQ(Attr(a, "url.path").string_value(), "/v1/chat/completions");  // no query
  ASSERT_EQ(Attr(a, "http.response.status_code").value_case(), otlp_common::AnyValue::kIntValue);
  EXPECT_EQ(Attr(a, "http.response.status_code").int_value(), 200);
  EXPECT_EQ(Attr(a, "understudy.arm").string_value(), "candidate");
  ASSERT_EQ(Attr(a, "understudy.stage").value_case(), otlp_common::AnyValue::kIntValue);
  EXPECT_EQ(Attr(a, "understudy.stage").int_value(), 2);
  ASSERT_EQ(Attr(a, "understudy.weight_percent").value_case(), otlp_common::AnyValue::kDoubleValue);
  EXPECT_DOUBLE_EQ(Attr(a, "understudy.weight_percent").double_value(), 5.0);
  EXPECT_EQ(Attr(a, "understudy.request_id").string_value(), "req-2");
  EXPECT_EQ(Attr(a, "understudy.outcome").string_value(), "ok");
  EXPECT_DOUBLE_EQ(Attr(a, "understudy.cost").double_value(), 0.0021);
  EXPECT_EQ(FindAttribute(a, "error.type"), nullptr);
}

// A 5xx exchange gets an ERROR status and error.type; an Anthropic path is
// recognised as such.
TEST_P(TracerTest, ServerErrorMarksTheExchangeSpanAsError) {
  v1::Exchange e = LiveExchange("req-500", "");
  e.set_path("/v1/messages");
  e.set_status_code(503);
  ExchangeInfo info = Info();
  info.outcome = std::string(rollout::OutcomeClassName(rollout::OutcomeClass::kServerError));
  tracer_->OnExchange(e, info);
  std::vector<ReceivedSpan> spans = rx_->WaitForSpans(1);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].span.status().code(), otlp_trace::Status::STATUS_CODE_ERROR);
  EXPECT_EQ(Attr(spans[0].span.attributes(), "error.type").string_value(), "server_error");
  EXPECT_EQ(Attr(spans[0].span.attributes(), "gen_ai.provider.name").string_value(), "anthropic");
}

// Shadow and compare spans hang under the live exchange's span.
TEST_P(TracerTest, ShadowAndCompareSpansAreChildrenOfTheExchangeSpan) {
  const std::string traceparent = std::string("00-") + kTraceId + "-" + kParentSpanId + "-01";
  SpanContext live = tracer_->OnExchange(LiveExchange("req-3", traceparent), Info());

  v1::Exchange shadow = LiveExchange("req-3", "");
  shadow.set_source(v1::SOURCE_SHADOW);
  shadow.set_arm(v1::ARM_CANDIDATE);
  shadow.set_status_code(0);
  shadow.set_error("connection refused");
  shadow.set_end_offset_micros(2500);
  shadow.set_first_body_byte_offset_micros(-1);
  shadow.set_response_headers_offset_micros(-1);
  tracer_->OnShadow(shadow);

  v1::Comparison c;
  c.set_request_id("req-3");
  c.set_time_unix_micros(kStartMicros + 2000000);
  c.set_verdict(v1::VERDICT_MAJOR_DIFF);
  c.set_production_model("gpt-4o");
  c.set_candidate_model("gpt-4o-mini");
  auto* score = c.add_scores();
  score->set_name("lcs_f1");
  score->set_score(0.42);
  score->set_applicable(true);
  auto* na = c.add_scores();
  na->set_name("json");
  na->set_applicable(false);
  auto* minor = c.add_findings();
  minor->set_kind("length");
  minor->set_message("candidate is 20% shorter");
  auto* major = c.add_findings();
  major->set_kind("salient_token");
  major->set_message("number 42 missing");
  major->set_major(true);
  tracer_->OnComparison(c);

  std::vector<ReceivedSpan> spans = rx_->WaitForSpans(3);
  ASSERT_EQ(spans.size(), 3u);
  const ReceivedSpan* sh = rx_->FindSpan(spans, "understudy.shadow");
  const ReceivedSpan* cmp = rx_->FindSpan(spans, "understudy.compare");
  ASSERT_NE(sh, nullptr);
  ASSERT_NE(cmp, nullptr);
  for (const ReceivedSpan* child : {sh, cmp}) {
    EXPECT_EQ(child->span.trace_id(), live.TraceIdBytes());
    EXPECT_EQ(child->span.parent_span_id(), live.SpanIdBytes());
    EXPECT_NE(child->span.span_id(), live.SpanIdBytes());
    EXPECT_EQ(child->span.flags() & 0x300, 0x100u);  // local parent
  }

  EXPECT_EQ(sh->span.kind(), otlp_trace::Span::SPAN_KIND_CLIENT);
  EXPECT_EQ(Attr(sh->span.attributes(), "understudy.target_arm").string_value(), "candidate");
  EXPECT_EQ(Attr(sh->span.attributes(), "understudy.source").string_value(), "shadow");
  EXPECT_DOUBLE_EQ(Attr(sh->span.attributes(), "understudy.latency_ms").double_value(), 2.5);
  EXPECT_EQ(Attr(sh->span.attributes(), "understudy.error").string_value(), "connection refused");
  EXPECT_EQ(sh->span.status().code(), otlp_trace::Status::STATUS_CODE_ERROR);
  EXPECT_EQ(sh->span.status().message(), "connection refused");

  EXPECT_EQ(Attr(cmp->span.attributes(), "understudy.verdict").string_value(), "major_diff");
  EXPECT_DOUBLE_EQ(Attr(cmp->span.attributes(), "understudy.compare.score.lcs_f1").double_value(),
                   0.42);
  EXPECT_EQ(FindAttribute(cmp->span.attributes(), "understudy.compare.score.json"), nullptr);
  EXPECT_EQ(Attr(cmp->span.attributes(), "understudy.compare.major_findings").int_value(), 1);
  ASSERT_EQ(cmp->span.events_size(), 2);
  EXPECT_EQ(cmp->span.events(0).name(), "understudy.finding");
  EXPECT_EQ(Attr(cmp->span.events(0).attributes(), "understudy.finding.kind").string_value(),
            "salient_token");  // the major one comes first
  EXPECT_TRUE(Attr(cmp->span.events(0).attributes(), "understudy.finding.major").bool_value());
  // Traces carry no user content: the message quotes the answers.
  for (const auto& event : cmp->span.events()) {
    EXPECT_EQ(FindAttribute(event.attributes(), "understudy.finding.message"), nullptr);
  }
}

// The revisit triggers fired at a decision (docs/drift.md) are events on
// its span, after the gates, with kind, detail and what to do next.
TEST_P(TracerTest, DecisionSpanCarriesFiredRevisitTriggers) {
  v1::Decision d;
  d.set_time_unix_micros(kStartMicros + 60000000);
  d.set_action(v1::ACTION_PROMOTE);
  d.add_gates()->set_gate("error_rate");
  v1::RevisitTrigger t;
  t.set_kind("price_change");
  t.set_detail("compare.prices changed since the decision");
  t.set_action("re-run the cost comparison");
  tracer_->OnDecision(d, {t});

  std::vector<ReceivedSpan> spans = rx_->WaitForSpans(1);
  const ReceivedSpan* ds = rx_->FindSpan(spans, "understudy.rollout.decision");
  ASSERT_NE(ds, nullptr);
  ASSERT_EQ(ds->span.events_size(), 2);
  const otlp_trace::Span::Event& e = ds->span.events(1);
  EXPECT_EQ(e.name(), "understudy.revisit");
  EXPECT_EQ(Attr(e.attributes(), "understudy.revisit.kind").string_value(), "price_change");
  EXPECT_EQ(Attr(e.attributes(), "understudy.revisit.action").string_value(),
            "re-run the cost comparison");
}

// A decision is a trace of its own, with one event per gate carrying the
// judge's numbers and links to the exchanges that triggered it.
TEST_P(TracerTest, DecisionSpanHasOneEventPerGateAndLinksToTriggers) {
  SpanContext a = tracer_->OnExchange(LiveExchange("req-a", ""), Info());
  SpanContext b = tracer_->OnExchange(LiveExchange("req-b", ""), Info());

  v1::Decision d;
  d.set_time_unix_micros(kStartMicros + 60000000);
  d.set_action(v1::ACTION_ROLLBACK);
  d.set_actor("judge");
  d.set_reason("error_rate: candidate 9.1% vs production 1.2%");
  d.mutable_from()->set_phase(v1::PHASE_CANARY);
  d.mutable_from()->set_stage_index(2);
  d.mutable_from()->set_weight_basis_points(500);
  d.mutable_to()->set_phase(v1::PHASE_ROLLED_BACK);
  d.mutable_to()->set_stage_index(0);
  d.mutable_to()->set_weight_basis_points(0);
  auto* g1 = d.add_gates();
  g1->set_gate("error_rate");
  g1->set_outcome(v1::GATE_FAIL);
  g1->set_production_value(0.012);
  g1->set_candidate_value(0.091);
  g1->set_threshold(1.5);
  g1->set_statistic("sprt_log_lr");
  g1->set_statistic_value(5.3);
  g1->set_bound(4.6);
  g1->set_p_value(0.004);
  g1->set_production_samples(900);
  g1->set_candidate_samples(55);
  auto* g2 = d.add_gates();
  g2->set_gate("latency_p95");
  g2->set_outcome(v1::GATE_INCONCLUSIVE);
  d.add_trigger_request_ids("req-a");
  d.add_trigger_request_ids("req-b");
  d.add_trigger_request_ids("req-forgotten");
  tracer_->OnDecision(d);

  std::vector<ReceivedSpan> spans = rx_->WaitForSpans(3);
  const ReceivedSpan* ds = rx_->FindSpan(spans, "understudy.rollout.decision");
  ASSERT_NE(ds, nullptr);
  const otlp_trace::Span& s = ds->span;
  EXPECT_TRUE(s.parent_span_id().empty());
  EXPECT_NE(s.trace_id(), a.TraceIdBytes());
  EXPECT_EQ(s.start_time_unix_nano(), static_cast<uint64_t>(kStartMicros + 60000000) * 1000);
  EXPECT_EQ(Attr(s.attributes(), "understudy.rollout.action").string_value(), "rollback");
  EXPECT_EQ(Attr(s.attributes(), "understudy.rollout.actor").string_value(), "judge");
  EXPECT_EQ(Attr(s.attributes(), "understudy.rollout.from.phase").string_value(), "canary");
  EXPECT_EQ(Attr(s.attributes(), "understudy.rollout.to.phase").string_value(), "rolled_back");
  EXPECT_EQ(Attr(s.attributes(), "understudy.rollout.from.stage").int_value(), 2);
  EXPECT_DOUBLE_EQ(Attr(s.attributes(), "understudy.rollout.from.weight_percent").double_value(),
                   5.0);

  ASSERT_EQ(s.events_size(), 2);
  const auto& e0 = s.events(0).attributes();
  EXPECT_EQ(s.events(0).name(), "understudy.rollout.gate");
  EXPECT_EQ(Attr(e0, "understudy.gate.name").string_value(), "error_rate");
  EXPECT_EQ(Attr(e0, "understudy.gate.outcome").string_value(), "fail");
  EXPECT_DOUBLE_EQ(Attr(e0, "understudy.gate.production_value").double_value(), 0.012);
  EXPECT_DOUBLE_EQ(Attr(e0, "understudy.gate.candidate_value").double_value(), 0.091);
  EXPECT_DOUBLE_EQ(Attr(e0, "understudy.gate.threshold").double_value(), 1.5);
  EXPECT_EQ(Attr(e0, "understudy.gate.statistic").string_value(), "sprt_log_lr");
  EXPECT_DOUBLE_EQ(Attr(e0, "understudy.gate.statistic_value").double_value(), 5.3);
  EXPECT_DOUBLE_EQ(Attr(e0, "understudy.gate.bound").double_value(), 4.6);
  EXPECT_DOUBLE_EQ(Attr(e0, "understudy.gate.p_value").double_value(), 0.004);
  EXPECT_EQ(Attr(e0, "understudy.gate.production_samples").int_value(), 900);
  EXPECT_EQ(Attr(e0, "understudy.gate.candidate_samples").int_value(), 55);
  EXPECT_EQ(Attr(s.events(1).attributes(), "understudy.gate.outcome").string_value(),
            "inconclusive");

  ASSERT_EQ(s.links_size(), 2);  // the forgotten request cannot be linked
  EXPECT_EQ(s.dropped_links_count(), 1u);
  EXPECT_EQ(s.links(0).trace_id(), a.TraceIdBytes());
  EXPECT_EQ(s.links(0).span_id(), a.SpanIdBytes());
  EXPECT_EQ(s.links(1).trace_id(), b.TraceIdBytes());
  EXPECT_EQ(s.links(1).span_id(), b.SpanIdBytes());
  EXPECT_EQ(Attr(s.links(1).attributes(), "understudy.request_id").string_value(), "req-b");
}

// A malformed traceparent is ignored: the exchange starts a new root trace.
TEST_P(TracerTest, MalformedTraceparentStartsANewRootTrace) {
  const std::string bad = std::string("00-") + "0AF7651916CD43DD8448EB211C80319C" + "-" +
                          kParentSpanId + "-01";  // upper-case hex is invalid
  SpanContext ctx = tracer_->OnExchange(LiveExchange("req-bad", bad), Info());
  std::vector<ReceivedSpan> spans = rx_->WaitForSpans(1);
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_TRUE(spans[0].span.parent_span_id().empty());
  EXPECT_EQ(spans[0].span.trace_id().size(), 16u);
  EXPECT_NE(spans[0].span.trace_id(), HexToBytes("0af7651916cd43dd8448eb211c80319c"));
  EXPECT_EQ(spans[0].span.trace_id(), ctx.TraceIdBytes());
  EXPECT_TRUE(ctx.valid());
}

// The caller's "not sampled" flag is honoured: no span, but a context to
// propagate, and the counter moves.
TEST_P(TracerTest, UnsampledParentProducesNoSpan) {
  const std::string unsampled = std::string("00-") + kTraceId + "-" + kParentSpanId + "-00";
  SpanContext ctx = tracer_->OnExchange(LiveExchange("req-quiet", unsampled), Info());
  EXPECT_TRUE(ctx.valid());
  EXPECT_FALSE(ctx.sampled());
  tracer_->OnComparison([] {
    v1::Comparison c;
    c.set_request_id("req-quiet");
    return c;
  }());
  tracer_->OnExchange(LiveExchange("req-loud", ""), Info());
  ASSERT_TRUE(tracer_->Flush(absl::Seconds(10)));
  std::vector<ReceivedSpan> spans = rx_->Spans();
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(Attr(spans[0].span.attributes(), "understudy.request_id").string_value(), "req-loud");
  TracerStats stats = tracer_->Stats();
  EXPECT_EQ(stats.spans_not_sampled, 2);
  EXPECT_EQ(stats.spans_started, 1);
  EXPECT_EQ(stats.exported, 1);
}

INSTANTIATE_TEST_SUITE_P(Transports, TracerTest,
                         ::testing::Values(OtlpProtocol::kGrpc, OtlpProtocol::kHttp),
                         [](const ::testing::TestParamInfo<OtlpProtocol>& info) {
                           return info.param == OtlpProtocol::kGrpc ? "Grpc" : "Http";
                         });

// ------------------------------------------------------ no transport ----

// ParseTraceparent accepts the spec's example and refuses malformed values.
TEST(TraceparentTest, ParsesValidAndRejectsMalformed) {
  std::optional<SpanContext> ok =
      ParseTraceparent("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  ASSERT_TRUE(ok.has_value());
  EXPECT_EQ(ok->TraceIdHex(), "0af7651916cd43dd8448eb211c80319c");
  EXPECT_EQ(ok->SpanIdHex(), "b7ad6b7169203331");
  EXPECT_TRUE(ok->sampled());
  EXPECT_EQ(ok->Traceparent(), "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  // A future version may append fields.
  EXPECT_TRUE(ParseTraceparent("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00-extra")
                  .has_value());

  for (const char* bad : {
           "", "garbage",
           "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",       // no flags
           "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",    // upper case
           "00-00000000000000000000000000000000-b7ad6b7169203331-01",    // zero trace id
           "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",    // zero span id
           "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",    // forbidden version
           "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-x",  // v00 + trailing
           "00_0af7651916cd43dd8448eb211c80319c_b7ad6b7169203331_01",    // separators
           "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",    // non-hex
           "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00x",   // v01, no dash
       }) {
    EXPECT_FALSE(ParseTraceparent(bad).has_value()) << bad;
  }
}

// A disabled tracer does nothing and needs no collector.
TEST(DisabledTracerTest, DoesNothing) {
  absl::StatusOr<std::unique_ptr<Tracer>> tracer = Tracer::Create(TelemetryConfig());
  ASSERT_OK(tracer);
  EXPECT_FALSE((*tracer)->enabled());
  EXPECT_FALSE((*tracer)->OnExchange(LiveExchange("r", ""), Info()).valid());
  (*tracer)->OnDecision(v1::Decision());
  EXPECT_EQ((*tracer)->Stats().spans_started, 0);
  EXPECT_FALSE((*tracer)->LookupExchange("r").has_value());
}

// sample_rate 0 records no root traces; the LRU still remembers them, and
// decisions are always recorded.
TEST(SamplingTest, ZeroRateRecordsNoRootTraces) {
  std::unique_ptr<OtlpReceiver> rx = OtlpReceiver::Start(OtlpProtocol::kGrpc);
  TelemetryConfig config;
  config.enabled = true;
  config.otlp.endpoint = rx->endpoint();
  config.otlp.sample_rate = 0.0;
  config.otlp.flush_interval = absl::Milliseconds(50);
  absl::StatusOr<std::unique_ptr<Tracer>> tracer = Tracer::Create(config);
  ASSERT_OK(tracer);
  for (int i = 0; i < 20; ++i) {
    (*tracer)->OnExchange(LiveExchange("r" + std::to_string(i), ""), Info());
  }
  (*tracer)->OnDecision(v1::Decision());
  ASSERT_TRUE((*tracer)->Flush(absl::Seconds(10)));
  std::vector<ReceivedSpan> spans = rx->Spans();
  ASSERT_EQ(spans.size(), 1u);
  EXPECT_EQ(spans[0].span.name(), "understudy.rollout.decision");
  EXPECT_EQ((*tracer)->Stats().spans_not_sampled, 20);
  EXPECT_TRUE((*tracer)->LookupExchange("r3").has_value());
}

// The LRU forgets the oldest exchange beyond its capacity.
TEST(LruTest, ForgetsTheOldestBeyondCapacity) {
  TelemetryConfig config;
  config.enabled = true;
  config.remembered_exchanges = 2;
  config.otlp.endpoint = "127.0.0.1:1";  // never reached: nothing is sampled
  config.otlp.sample_rate = 0.0;
  absl::StatusOr<std::unique_ptr<Tracer>> tracer = Tracer::Create(config);
  ASSERT_OK(tracer);
  (*tracer)->OnExchange(LiveExchange("one", ""), Info());
  (*tracer)->OnExchange(LiveExchange("two", ""), Info());
  (*tracer)->OnExchange(LiveExchange("three", ""), Info());
  EXPECT_FALSE((*tracer)->LookupExchange("one").has_value());
  EXPECT_TRUE((*tracer)->LookupExchange("two").has_value());
  EXPECT_TRUE((*tracer)->LookupExchange("three").has_value());
}

}  // namespace
}  // namespace understudy::telemetry
