#include "metrics/internal_metrics.h"

#include "metrics/metrics.h"

namespace understudy::metrics {

InternalFamilies::InternalFamilies(prometheus::Registry& r)
    : store_failing(&prometheus::BuildGauge()
                         .Name("understudy_store_failing")
                         .Help("1 while the store cannot write (disk full or read-only): "
                               "traffic is served, the judge waits")
                         .Register(r)
                         .Add({})) {
  struct Def {
    const char* name;
    const char* help;
  };
  const std::array<Def, 6> defs = {{
      {"understudy_store_retention_runs_total", "Retention passes run"},
      {"understudy_store_retention_failures_total", "Retention passes that failed"},
      {"understudy_store_size_cap_trims_total", "Records removed to keep the store under its size cap"},
      {"understudy_mirror_results_dropped_total",
       "Shadow answers dropped because the pipeline queue was full"},
      {"understudy_judge_tick_failures_total",
       "Judge ticks whose transition could not be committed (the state did not change)"},
      {"understudy_pipeline_store_failures_total",
       "Records (exchanges, comparisons, feedback, snapshots) the pipeline could not store"},
  }};
  for (size_t i = 0; i < defs.size(); ++i) {
    counters[i].counter =
        &prometheus::BuildCounter().Name(defs[i].name).Help(defs[i].help).Register(r).Add({});
  }
}

std::unique_ptr<InternalFamilies> NewInternalFamilies(prometheus::Registry& registry) {
  return std::make_unique<InternalFamilies>(registry);
}

void Metrics::SetInternalCounters(const InternalCounters& c) {
  InternalFamilies& f = *internal_;
  f.store_failing->Set(c.store_failing ? 1 : 0);
  absl::MutexLock lock(&f.mu);
  const std::array<int64_t, 6> values = {c.retention_runs,         c.retention_failures,
                                         c.size_cap_trims,         c.mirror_results_dropped,
                                         c.judge_tick_failures,    c.engine_store_failures};
  for (size_t i = 0; i < values.size(); ++i) f.counters[i].Sync(values[i]);
}

}  // namespace understudy::metrics
