// The drift watch's series (metrics.h, "ObserveDriftEvent", "SetDriftStatus").
#include "metrics/drift_metrics.h"

#include <cmath>
#include <string>

#include "drift/revisit.h"
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
                .Register(r)),
      revisit(prometheus::BuildGauge()
                  .Name("understudy_revisit_trigger")
                  .Help("Revisit triggers of this kind that fired and reopen the decision now")
                  .Register(r)),
      eval_runs(prometheus::BuildCounter()
                    .Name("understudy_eval_runs_total")
                    .Help("Scheduled golden-set eval runs, by result (ok, failed)")
                    .Register(r)),
      eval_last_run(prometheus::BuildGauge()
                        .Name("understudy_eval_last_run_timestamp_seconds")
                        .Help("Start time of the latest scheduled eval run")
                        .Register(r)),
      eval_metric(prometheus::BuildGauge()
                      .Name("understudy_eval_metric")
                      .Help("The latest scheduled eval run's metrics, by arm and metric")
                      .Register(r)),
      eval_regression(prometheus::BuildGauge()
                          .Name("understudy_eval_regressions")
                          .Help("1 when the latest eval run regressed against its baseline run, "
                                "by arm and metric")
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

void Metrics::SetRevisitTriggers(const std::vector<v1::RevisitTrigger>& fired) {
  absl::MutexLock lock(&drift_->mu);
  for (const std::string& kind : drift::AllTriggerKinds()) {
    int64_t n = 0;
    for (const v1::RevisitTrigger& t : fired) n += t.kind() == kind ? 1 : 0;
    drift_->revisit.Add({{"trigger", kind}}).Set(static_cast<double>(n));
  }
}

void Metrics::ObserveEvalRun(const v1::EvalRun& run) {
  absl::MutexLock lock(&drift_->mu);
  drift_->eval_runs.Add({{"result", run.failed() ? "failed" : "ok"}}).Increment();
  drift_->eval_last_run.Add({}).Set(static_cast<double>(run.start_unix_micros()) / 1e6);
  auto arm_label = [](v1::Arm arm) {
    return arm == v1::ARM_UNSPECIFIED ? std::string("both") : std::string(rollout::ArmName(arm));
  };
  for (const v1::EvalArmSummary& a : run.arms()) {
    for (const auto& [metric, value] : a.metrics()) {
      drift_->eval_metric.Add({{"arm", arm_label(a.arm())}, {"metric", Label(metric)}}).Set(value);
    }
  }
  for (const auto& [metric, value] : run.metrics()) {
    drift_->eval_metric.Add({{"arm", "both"}, {"metric", Label(metric)}}).Set(value);
  }
  // Every series seen before goes back to 0 unless this run regressed on it.
  for (prometheus::Gauge* g : drift_->regression_series) g->Set(0);
  for (const v1::EvalRegression& r : run.regressions()) {
    prometheus::Gauge& g =
        drift_->eval_regression.Add({{"arm", arm_label(r.arm())}, {"metric", Label(r.metric())}});
    g.Set(1);
    drift_->regression_series.insert(&g);
  }
}

}  // namespace understudy::metrics
