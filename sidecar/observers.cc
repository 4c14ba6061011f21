#include "sidecar/observers.h"

#include <string>

namespace understudy::sidecar {

metrics::ExtProcCounters ExtProcCountersOf(const ExtProcStats& stats) {
  metrics::ExtProcCounters c;
  c.streams_started = stats.streams_started.Get();
  c.streams_cancelled = stats.streams_cancelled.Get();
  c.messages_received = stats.messages_received.Get();
  c.replies_sent = stats.replies_sent.Get();
  c.observability_messages = stats.observability_messages.Get();
  c.spurious_messages = stats.spurious_messages.Get();
  c.malformed_messages = stats.malformed_messages.Get();
  c.unknown_messages = stats.unknown_messages.Get();
  c.route_production = stats.route_production.Get();
  c.route_candidate = stats.route_candidate.Get();
  c.bodies_truncated = stats.bodies_truncated.Get();
  c.exchanges_submitted = stats.exchanges_submitted.Get();
  c.exchanges_dropped = stats.exchanges_dropped.Get();
  c.feedback_requests = stats.feedback_requests.Get();
  c.out_of_scope_path = stats.out_of_scope_path.Get();
  c.out_of_scope_method = stats.out_of_scope_method.Get();
  c.requests_shaped = stats.requests_shaped.Get();
  c.shaping_failures = stats.shaping_failures.Get();
  c.requests_translated = stats.requests_translated.Get();
  c.requests_untranslatable = stats.requests_untranslatable.Get();
  c.translation_failures = stats.translation_failures.Get();
  c.fallbacks_restored = stats.fallbacks_restored.Get();
  c.fallbacks_no_plan = stats.fallbacks_no_plan.Get();
  c.fallbacks_off = stats.fallbacks_off.Get();
  c.streams_active = stats.streams_active.Get();
  return c;
}

namespace v1 = understudy::v1;

void MetricsObserver::OnLiveExchange(const v1::Exchange& live, const ExchangeFacts& f) {
  metrics_.ObserveExchange(live.arm(), v1::SOURCE_LIVE, f.outcome, f.latency, f.ttft,
                           f.usage.input_tokens, f.usage.output_tokens, f.cost);
  if (live.end_offset_micros() >= 0) {
    metrics_.ObserveStreamDuration(absl::Microseconds(live.end_offset_micros()));
  }
  if (!live.unsupported().empty()) metrics_.ObserveUnsupported(live.arm());
}

void MetricsObserver::OnMirrorExchange(const MirrorResult& copy, const ExchangeFacts& f) {
  metrics_.ObserveExchange(copy.exchange.arm(), copy.exchange.source(), f.outcome, f.latency,
                           f.ttft, f.usage.input_tokens, f.usage.output_tokens, f.cost);
  if (!copy.exchange.unsupported().empty()) metrics_.ObserveUnsupported(copy.exchange.arm());
}

void MetricsObserver::OnComparison(const v1::Comparison& c) { metrics_.ObserveComparison(c); }

void MetricsObserver::OnNoise(const v1::Comparison& c, const compare::NoiseModel& noise) {
  for (const v1::ComparatorScore& s : c.scores()) {
    std::optional<double> level = noise.NoiseLevel(s.name(), "");
    if (level.has_value()) metrics_.SetNoiseLevel(s.name(), *level);
  }
}

void MetricsObserver::OnDecision(const v1::Decision& d) { metrics_.ObserveDecision(d); }

void MetricsObserver::OnTick(const v1::RolloutState& state, const v1::HealthSnapshot& health,
                             const v1::Decision& last_tick) {
  std::vector<v1::GateEvaluation> gates(last_tick.gates().begin(), last_tick.gates().end());
  metrics_.SetGateEvaluations(gates);
  metrics_.SetRollout(state, health, absl::Now());
}

void TracingObserver::OnLiveExchange(const v1::Exchange& live, const ExchangeFacts& f) {
  telemetry::ExchangeInfo info;
  info.stage_index = f.stage_index;
  info.weight_percent = f.weight_basis_points / 100.0;
  info.request_model = f.request_model;
  info.response_model = f.response_model;
  info.input_tokens = f.usage.input_tokens;
  info.output_tokens = f.usage.output_tokens;
  info.outcome = std::string(rollout::OutcomeClassName(f.outcome));
  info.cost = f.cost.value_or(-1);
  if (events_ != nullptr) info.events = events_->TakeSpanEvents(live.request_id());
  tracer_.OnExchange(live, info);
}

void TracingObserver::OnMirrorExchange(const MirrorResult& copy, const ExchangeFacts& f) {
  tracer_.OnShadow(copy.exchange);
}

void TracingObserver::OnComparison(const v1::Comparison& c) { tracer_.OnComparison(c); }

void TracingObserver::OnDecision(const v1::Decision& d) {
  tracer_.OnDecision(d, revisit_ ? revisit_() : std::vector<v1::RevisitTrigger>());
}

}  // namespace understudy::sidecar
