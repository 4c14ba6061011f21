// The drift watch's series (metrics.h, "ObserveDriftEvent", "SetDriftStatus").
#include "metrics/drift_metrics.h"

#include <cmath>
#include <string>

#include "rollout/rollout.h"

namespace understudy::metrics {

namespace v1 = ::understudy::v1;

namespace {

// Dimensions are fixed names or "header:<configured name>": bounded by the
// config, but cut to 64 bytes as every free-form label is.
std::string Label(const std::string& s) { return s.substr(0, 64); }

}  // namespace

DriftFamilies::DriftFamilies(prometheus::Registry& r)
    : events(prometheus::BuildCounter()
                 .Name("understudy_drift_events_total")
                 .Help("Drift watch events, by arm, kind (new_version, version_mix, behaviour) "
                       "and dimension")
                 .Register(r)),
      versions(prometheus::BuildGauge()
                   .Name("understudy_drift_versions")
                   .Help("Distinct served version values seen, by arm and dimension")
                   .Register(r)),
      effect(prometheus::BuildGauge()
                 .Name("understudy_drift_effect")
                 .Help("Behaviour metric live minus its frozen baseline, by arm and metric")
                 .Register(r)),
      alarm(prometheus::BuildGauge()
                .Name("understudy_drift_alarm")
                .Help("1 when the behaviour metric drifted from its baseline, by arm and metric")
                .Register(r)) {}

std::unique_ptr<DriftFamilies> NewDriftFamilies(prometheus::Registry& registry) {
  return std::make_unique<DriftFamilies>(registry);
}

void Metrics::ObserveDriftEvent(const v1::DriftEvent& event) {
  absl::MutexLock lock(&drift_->mu);
  drift_->events
      .Add({{"arm", std::string(rollout::ArmName(event.arm()))},
            {"kind", std::string(drift::KindName(event.kind()))},
            {"dimension", Label(event.dimension())}})
      .Increment();
}

void Metrics::SetDriftStatus(const drift::WatchSnapshot& snapshot) {
  absl::MutexLock lock(&drift_->mu);
  for (const drift::ArmVersions& v : snapshot.versions) {
    drift_->versions
        .Add({{"arm", std::string(rollout::ArmName(v.arm))}, {"dimension", Label(v.dimension)}})
        .Set(static_cast<double>(v.counts.size()));
  }
  for (const drift::MetricStatus& m : snapshot.metrics) {
    const std::map<std::string, std::string> labels = {
        {"arm", std::string(rollout::ArmName(m.arm))}, {"metric", Label(m.metric)}};
    if (std::isfinite(m.effect)) drift_->effect.Add(labels).Set(m.effect);
    drift_->alarm.Add(labels).Set(m.drifted ? 1 : 0);
  }
}

}  // namespace understudy::metrics
