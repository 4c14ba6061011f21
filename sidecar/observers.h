// sidecar/observers.h
// EngineObservers that publish what the engine learns: Prometheus metrics
// and OpenTelemetry traces. Both are quick and never block (the metrics take
// short locks; the tracer enqueues to a bounded exporter queue).
//
// Example (given telemetry::Tracer& tracer):
//   metrics::Metrics metrics;
//   MetricsObserver metrics_observer(metrics);   // an EngineObserver each
//   TracingObserver tracing(tracer);
#ifndef UNDERSTUDY_SIDECAR_OBSERVERS_H_
#define UNDERSTUDY_SIDECAR_OBSERVERS_H_

#include <functional>
#include <utility>
#include <vector>

#include "sidecar/engine.h"
#include "sidecar/stats.h"
#include "metrics/metrics.h"
#include "telemetry/tracer.h"

namespace understudy::sidecar {

// ExtProcCountersOf copies the service's live counters for the metrics.
metrics::ExtProcCounters ExtProcCountersOf(const ExtProcStats& stats);

class MetricsObserver final : public EngineObserver {
 public:
  explicit MetricsObserver(metrics::Metrics& metrics) : metrics_(metrics) {}
  void OnLiveExchange(const understudy::v1::Exchange& live, const ExchangeFacts& facts) override;
  void OnMirrorExchange(const MirrorResult& copy, const ExchangeFacts& facts) override;
  void OnComparison(const understudy::v1::Comparison& comparison) override;
  void OnNoise(const understudy::v1::Comparison& c, const compare::NoiseModel& noise) override;
  void OnDecision(const understudy::v1::Decision& decision) override;
  void OnTick(const understudy::v1::RolloutState& state,
              const understudy::v1::HealthSnapshot& health,
              const understudy::v1::Decision& last_tick) override;

 private:
  metrics::Metrics& metrics_;
};

// SpanEventSource hands over events that belong on a live exchange's span
// (the drift watch's alarms), each once. Called from pipeline workers.
class SpanEventSource {
 public:
  virtual ~SpanEventSource() = default;
  virtual std::vector<telemetry::ExchangeInfo::Event> TakeSpanEvents(
      std::string_view request_id) = 0;
};

class TracingObserver final : public EngineObserver {
 public:
  // `events` (may be null) must be an observer that hears each exchange
  // before this one does.
  // `revisit` (may be empty) gives the revisit triggers fired now; they go
  // on every decision span as events.
  using RevisitSource = std::function<std::vector<understudy::v1::RevisitTrigger>()>;
  explicit TracingObserver(telemetry::Tracer& tracer, SpanEventSource* events = nullptr,
                           RevisitSource revisit = {})
      : tracer_(tracer), events_(events), revisit_(std::move(revisit)) {}
  void OnLiveExchange(const understudy::v1::Exchange& live, const ExchangeFacts& facts) override;
  void OnMirrorExchange(const MirrorResult& copy, const ExchangeFacts& facts) override;
  void OnComparison(const understudy::v1::Comparison& comparison) override;
  void OnDecision(const understudy::v1::Decision& decision) override;

 private:
  telemetry::Tracer& tracer_;
  SpanEventSource* events_;
  RevisitSource revisit_;
};

}  // namespace understudy::sidecar

#endif  // UNDERSTUDY_SIDECAR_OBSERVERS_H_
