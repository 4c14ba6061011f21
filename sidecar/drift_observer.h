// sidecar/drift_observer.h
// DriftObserver feeds every live and mirrored answer to the drift watch
// (drift/drift.h) and acts on what it raises: each event and each frozen
// baseline is appended to the decision log (ACTION_DRIFT /
// ACTION_DRIFT_BASELINE, fsynced, never a state change), counted in the
// metrics, put on the exchange's span (through TracingObserver, as a
// SpanEventSource), and a version event pauses an in-flight rollout when
// drift.pause_rollout_on_version_change is set. docs/drift.md.
//
// Example (given const drift::DriftConfig& config, storage::Store& store,
//   rollout::Controller& controller, metrics::Metrics& metrics, Engine& engine):
//   DriftObserverOptions o;
//   o.metrics = &metrics;
//   o.on_pause = [&engine](const understudy::v1::Decision& d) { engine.OnManualDecision(d); };
//   DriftObserver observer(config, store, controller, std::move(o));
//   absl::Status restored = observer.Restore();  // baselines and events from the store
//
// Thread safety: every method may be called concurrently.
#ifndef UNDERSTUDY_SIDECAR_DRIFT_OBSERVER_H_
#define UNDERSTUDY_SIDECAR_DRIFT_OBSERVER_H_

#include <atomic>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "drift/drift.h"
#include "metrics/metrics.h"
#include "rollout/rollout.h"
#include "sidecar/engine.h"
#include "sidecar/observers.h"
#include "storage/store.h"

namespace understudy::sidecar {

struct DriftObserverOptions {
  const Clock* clock = nullptr;         // null = RealClock::Default()
  metrics::Metrics* metrics = nullptr;  // may be null
  // Called with the pause decision when a version event paused the rollout
  // (the sidecar passes it to Engine::OnManualDecision).
  std::function<void(const understudy::v1::Decision&)> on_pause;
  // routing.sticky_header (lower-case): its bucket is the user cluster.
  std::string sticky_header;
  // Keep events for TakeSpanEvents (only when tracing is on).
  bool keep_span_events = false;
};

struct DriftObserverStats {
  int64_t observed = 0;
  int64_t events = 0;
  int64_t baselines = 0;
  int64_t store_failures = 0;
  int64_t pauses = 0;
};

class DriftObserver final : public EngineObserver, public SpanEventSource {
 public:
  // `store` and `controller` must outlive the observer.
  DriftObserver(const drift::DriftConfig& config, storage::Store& store,
                rollout::Controller& controller, DriftObserverOptions options);

  // Restore replays the decision log's drift records (latest baseline per
  // arm, then the events after it). Errors are the store's.
  [[nodiscard]] absl::Status Restore();

  void OnLiveExchange(const understudy::v1::Exchange& live, const ExchangeFacts& facts) override;
  void OnMirrorExchange(const MirrorResult& copy, const ExchangeFacts& facts) override;
  std::vector<telemetry::ExchangeInfo::Event> TakeSpanEvents(std::string_view request_id) override;

  drift::WatchSnapshot Snapshot() const { return watch_.Snapshot(); }
  DriftObserverStats Stats() const;

 private:
  void Observe(const understudy::v1::Exchange& e, const ExchangeFacts& facts, bool live);
  // `span_request_id` "" → the events go on no span (mirrored copies: the
  // live span is already gone).
  void Act(const drift::WatchResult& result, const std::string& span_request_id);

  const drift::DriftConfig config_;
  storage::Store& store_;
  rollout::Controller& controller_;
  const DriftObserverOptions options_;
  const Clock& clock_;
  drift::Watch watch_;
  mutable absl::Mutex mu_;
  std::map<std::string, std::vector<telemetry::ExchangeInfo::Event>> span_events_
      ABSL_GUARDED_BY(mu_);
  DriftObserverStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace understudy::sidecar

#endif  // UNDERSTUDY_SIDECAR_DRIFT_OBSERVER_H_
