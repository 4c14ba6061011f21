// metrics/internal_metrics.h (internal to metrics/; other modules use metrics.h)
// Failures counted inside the sidecar (Metrics::SetInternalCounters).
#ifndef UNDERSTUDY_METRICS_INTERNAL_METRICS_H_
#define UNDERSTUDY_METRICS_INTERNAL_METRICS_H_

#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <memory>

#include "absl/synchronization/mutex.h"
#include "metrics/fleet_metrics.h"

namespace understudy::metrics {

struct InternalFamilies {
  explicit InternalFamilies(prometheus::Registry& r);
  prometheus::Gauge* store_failing;
  absl::Mutex mu;
  // retention runs, retention failures, size cap trims, mirror results
  // dropped, judge tick failures, pipeline store failures
  std::array<FleetCounter, 6> counters ABSL_GUARDED_BY(mu);
};

std::unique_ptr<InternalFamilies> NewInternalFamilies(prometheus::Registry& registry);

}  // namespace understudy::metrics

#endif  // UNDERSTUDY_METRICS_INTERNAL_METRICS_H_
