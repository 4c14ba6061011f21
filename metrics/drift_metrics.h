// metrics/drift_metrics.h (internal to metrics/; other modules use metrics.h)
// The drift watch's, the revisit triggers' and the scheduled eval's metric
// families, registered with the others.
#ifndef UNDERSTUDY_METRICS_DRIFT_METRICS_H_
#define UNDERSTUDY_METRICS_DRIFT_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <memory>
#include <set>

#include "absl/synchronization/mutex.h"
#include "metrics/metrics.h"

namespace understudy::metrics {

struct DriftFamilies {
  explicit DriftFamilies(prometheus::Registry& r);
  absl::Mutex mu;
  prometheus::Family<prometheus::Counter>& events;
  prometheus::Family<prometheus::Gauge>& versions;
  prometheus::Family<prometheus::Gauge>& effect;
  prometheus::Family<prometheus::Gauge>& alarm;
  // Revisit triggers and the scheduled eval.
  prometheus::Family<prometheus::Gauge>& revisit;
  prometheus::Family<prometheus::Counter>& eval_runs;
  prometheus::Family<prometheus::Gauge>& eval_last_run;
  prometheus::Family<prometheus::Gauge>& eval_metric;
  prometheus::Family<prometheus::Gauge>& eval_regression;
  std::set<prometheus::Gauge*> regression_series;  // every one ever set, to reset
};

std::unique_ptr<DriftFamilies> NewDriftFamilies(prometheus::Registry& registry);

}  // namespace understudy::metrics

#endif  // UNDERSTUDY_METRICS_DRIFT_METRICS_H_
