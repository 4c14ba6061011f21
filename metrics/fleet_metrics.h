// metrics/fleet_metrics.h (internal to metrics/; other modules use metrics.h)
// Fleet mode's metric families (docs/fleet.md), registered with the others.
#ifndef UNDERSTUDY_METRICS_FLEET_METRICS_H_
#define UNDERSTUDY_METRICS_FLEET_METRICS_H_

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include <array>
#include <cstdint>
#include <memory>

#include "absl/synchronization/mutex.h"

namespace understudy::metrics {

// A counter that follows an absolute value kept elsewhere (by its delta;
// the fleet and internal families use it).
struct FleetCounter {
  prometheus::Counter* counter = nullptr;
  int64_t last = 0;
  void Sync(int64_t value);
};

struct FleetFamilies {
  explicit FleetFamilies(prometheus::Registry& r);
  absl::Mutex mu;
  prometheus::Gauge* leader;
  prometheus::Gauge* reachable;
  prometheus::Gauge* members;
  prometheus::Gauge* version;
  std::array<FleetCounter, 4> deltas ABSL_GUARDED_BY(mu);  // published, merged, discarded, dropped
  FleetCounter adopted ABSL_GUARDED_BY(mu);
  FleetCounter refused ABSL_GUARDED_BY(mu);
  FleetCounter requests ABSL_GUARDED_BY(mu);
  std::array<FleetCounter, 2> bytes ABSL_GUARDED_BY(mu);  // sent, received
};

std::unique_ptr<FleetFamilies> NewFleetFamilies(prometheus::Registry& registry);

}  // namespace understudy::metrics

#endif  // UNDERSTUDY_METRICS_FLEET_METRICS_H_
