// DriftObserver between the engine and the outputs: a fingerprint switch
// becomes one ACTION_DRIFT record in the decision log, a metric, a span
// event on the exchange span that tipped it, and (when configured) a pause
// of the shadow-stage rollout; baselines are stored and restored.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/clock.h"
#include "metrics/metrics.h"
#include "rollout/rollout.h"
#include "sidecar/drift_observer.h"
#include "sidecar/observers.h"
#include "telemetry/tracer.h"
#include "tests/common/test_util.h"
#include "tests/storage/fake_store.h"
#include "tests/telemetry/otlp_receiver.h"

namespace understudy::sidecar {
namespace {

namespace v1 = ::understudy::v1;
using telemetry::testing::OtlpReceiver;
using telemetry::testing::ReceivedSpan;

class DriftObserverTest : public ::testing::Test {
 protected:
  DriftObserverTest() {
    config_.enabled = true;
    config_.baseline_requests = 10;
    config_.new_value_min_count = 3;
    config_.pause_rollout_on_version_change = true;
  }

  void SetUp() override {
    rx_ = OtlpReceiver::Start(telemetry::OtlpProtocol::kGrpc);
    telemetry::TelemetryConfig tc;
    tc.enabled = true;
    tc.service_name = "drift-test";
    tc.otlp.protocol = telemetry::OtlpProtocol::kGrpc;
    tc.otlp.endpoint = rx_->endpoint();
    tc.otlp.flush_interval = absl::Milliseconds(50);
    absl::StatusOr<std::unique_ptr<telemetry::Tracer>> tracer = telemetry::Tracer::Create(tc);
    ASSERT_OK(tracer);
    tracer_ = std::move(*tracer);
    Start();
  }
  void TearDown() override { tracer_->Shutdown(absl::Seconds(5)); }

  // Start builds the observers over the same store, as a restart would.
  void Start() {
    DriftObserverOptions o;
    o.clock = &clock_;
    o.metrics = &metrics_;
    o.keep_span_events = true;
    o.on_pause = [this](const v1::Decision& d) { pauses_.push_back(d); };
    drift_ = std::make_unique<DriftObserver>(config_, store_, controller_, std::move(o));
    ASSERT_OK(drift_->Restore());
    tracing_ = std::make_unique<TracingObserver>(*tracer_, drift_.get());
  }

  // Answer plays one live chat answer served with `fingerprint`, through
  // the drift watch first and the tracer second, as the sidecar's FanOut.
  void Answer(int i, const std::string& fingerprint) {
    v1::Exchange e;
    e.set_request_id(absl::StrCat("req-", i));
    e.set_arm(v1::ARM_PRODUCTION);
    e.set_source(v1::SOURCE_LIVE);
    e.set_path("/v1/chat/completions");
    e.set_status_code(200);
    e.set_start_unix_micros(1700000000000000 + i);
    e.set_end_offset_micros(800000);
    ExchangeFacts f;
    f.request_model = "gpt-4o";
    f.response_model = "gpt-4o-2024-08-06";
    f.system_fingerprint = fingerprint;
    f.finish_reason = "stop";
    f.answer_chars = 100;
    f.latency = absl::Milliseconds(800);
    drift_->OnLiveExchange(e, f);
    tracing_->OnLiveExchange(e, f);
  }

  std::vector<v1::Decision> Log(v1::DecisionAction action) {
    std::vector<v1::Decision> out;
    absl::StatusOr<std::vector<v1::Decision>> all =
        store_.ListDecisions(absl::InfinitePast(), storage::kNoLimit);
    EXPECT_OK(all);
    if (!all.ok()) return out;
    for (const v1::Decision& d : *all) {
      if (d.action() == action) out.push_back(d);
    }
    return out;
  }

  drift::DriftConfig config_;
  ManualClock clock_{absl::FromUnixSeconds(1700000000)};
  storage::FakeStore store_{clock_};
  rollout::RolloutConfig rollout_config_;
  rollout::Router router_{"drift-test"};
  rollout::InMemoryTransitionLog log_;
  rollout::Controller controller_{rollout_config_, clock_, router_, log_};
  metrics::Metrics metrics_;
  std::unique_ptr<OtlpReceiver> rx_;
  std::unique_ptr<telemetry::Tracer> tracer_;
  std::unique_ptr<DriftObserver> drift_;
  std::unique_ptr<TracingObserver> tracing_;
  std::vector<v1::Decision> pauses_;
};

// The third answer with a new fingerprint tips the alarm: it is stored,
// counted, on that answer's span, and the shadow stage is paused.
TEST_F(DriftObserverTest, NewFingerprintIsStoredCountedTracedAndPausesTheRollout) {
  ASSERT_EQ(controller_.State().phase(), v1::PHASE_SHADOW);
  for (int i = 0; i < 20; ++i) Answer(i, "fp_a");
  ASSERT_EQ(Log(v1::ACTION_DRIFT_BASELINE).size(), 1u);
  EXPECT_TRUE(Log(v1::ACTION_DRIFT).empty());
  for (int i = 20; i < 25; ++i) Answer(i, "fp_b");

  std::vector<v1::Decision> events = Log(v1::ACTION_DRIFT);
  ASSERT_EQ(events.size(), 1u);
  const v1::Decision& d = events[0];
  EXPECT_EQ(d.actor(), "drift");
  EXPECT_EQ(d.from().version(), d.to().version());
  EXPECT_THAT(d.trigger_request_ids(), ::testing::ElementsAre("req-22"));
  EXPECT_EQ(d.drift_event().value(), "fp_b");
  EXPECT_TRUE(d.drift_event().paused_rollout());
  EXPECT_EQ(controller_.State().phase(), v1::PHASE_PAUSED);
  ASSERT_EQ(pauses_.size(), 1u);
  EXPECT_EQ(pauses_[0].action(), v1::ACTION_PAUSE);
  EXPECT_EQ(drift_->Stats().events, 1);
  EXPECT_THAT(metrics_.Serialize(),
              ::testing::HasSubstr("understudy_drift_events_total{arm=\"production\","
                                   "dimension=\"system_fingerprint\",kind=\"new_version\"} 1"));

  std::vector<ReceivedSpan> spans = rx_->WaitForSpans(25);
  int with_event = 0;
  for (const ReceivedSpan& s : spans) {
    for (const auto& ev : s.span.events()) {
      if (ev.name() != "understudy.drift") continue;
      ++with_event;
      bool request_22 = false;
      for (const auto& a : s.span.attributes()) {
        if (a.key() == "understudy.request_id") request_22 = a.value().string_value() == "req-22";
      }
      EXPECT_TRUE(request_22);
      bool value = false;
      for (const auto& a : ev.attributes()) {
        if (a.key() == "understudy.drift.value") value = a.value().string_value() == "fp_b";
      }
      EXPECT_TRUE(value);
    }
  }
  EXPECT_EQ(with_event, 1);
}

// After a restart the baseline and the event come back from the log: the
// switched fingerprint is known and no second baseline is frozen.
TEST_F(DriftObserverTest, RestartResumesFromTheDecisionLog) {
  config_.pause_rollout_on_version_change = false;
  Start();
  for (int i = 0; i < 10; ++i) Answer(i, "fp_a");
  for (int i = 10; i < 13; ++i) Answer(i, "fp_b");
  ASSERT_EQ(Log(v1::ACTION_DRIFT).size(), 1u);
  Start();  // a new process over the same store
  for (int i = 13; i < 40; ++i) Answer(i, i % 2 == 0 ? "fp_a" : "fp_b");
  EXPECT_EQ(Log(v1::ACTION_DRIFT).size(), 1u);
  EXPECT_EQ(Log(v1::ACTION_DRIFT_BASELINE).size(), 1u);
  EXPECT_EQ(controller_.State().phase(), v1::PHASE_SHADOW);
}

}  // namespace
}  // namespace understudy::sidecar
