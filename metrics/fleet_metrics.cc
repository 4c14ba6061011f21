#include "metrics/fleet_metrics.h"

#include "metrics/metrics.h"

namespace understudy::metrics {

void FleetCounter::Sync(int64_t value) {
  // A smaller value: the source restarted from zero (Prometheus' reset rule).
  const int64_t delta = value >= last ? value - last : value;
  if (delta > 0) counter->Increment(static_cast<double>(delta));
  last = value;
}

namespace {

prometheus::Gauge* Gauge(prometheus::Registry& r, const char* name, const char* help) {
  return &prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

}  // namespace

FleetFamilies::FleetFamilies(prometheus::Registry& r)
    : leader(Gauge(r, "understudy_fleet_leader", "1 if this replica leads the fleet and judges")),
      reachable(Gauge(r, "understudy_fleet_etcd_reachable",
                      "1 while etcd answers this replica (fleet mode)")),
      members(Gauge(r, "understudy_fleet_members", "Live replicas in the fleet (under a lease)")),
      version(Gauge(r, "understudy_fleet_state_version",
                    "The fleet's rollout state version this replica routes by")) {
  auto& deltas_family = prometheus::BuildCounter()
                            .Name("understudy_fleet_deltas_total")
                            .Help("Evidence deltas by result: published (a follower's), merged "
                                  "and discarded (by the leader), dropped (etcd away too long)")
                            .Register(r);
  const char* results[] = {"published", "merged", "discarded", "dropped"};
  for (size_t i = 0; i < deltas.size(); ++i) {
    deltas[i].counter = &deltas_family.Add({{"result", results[i]}});
  }
  adopted.counter = &prometheus::BuildCounter()
                         .Name("understudy_fleet_states_adopted_total")
                         .Help("Rollout states committed by other replicas and applied here")
                         .Register(r)
                         .Add({});
  refused.counter = &prometheus::BuildCounter()
                         .Name("understudy_fleet_commits_refused_total")
                         .Help("Commits etcd refused: the state moved first, or leadership was "
                               "lost (fencing)")
                         .Register(r)
                         .Add({});
  requests.counter = &prometheus::BuildCounter()
                          .Name("understudy_fleet_etcd_requests_total")
                          .Help("Calls this replica made to etcd")
                          .Register(r)
                          .Add({});
  auto& bytes_family = prometheus::BuildCounter()
                           .Name("understudy_fleet_etcd_bytes_total")
                           .Help("Protobuf bytes exchanged with etcd, by direction")
                           .Register(r);
  bytes[0].counter = &bytes_family.Add({{"direction", "sent"}});
  bytes[1].counter = &bytes_family.Add({{"direction", "received"}});
}

std::unique_ptr<FleetFamilies> NewFleetFamilies(prometheus::Registry& registry) {
  return std::make_unique<FleetFamilies>(registry);
}

void Metrics::SetFleetStatus(const understudy::v1::FleetStatus& s) {
  FleetFamilies& f = *fleet_;
  f.leader->Set(s.is_leader() ? 1 : 0);
  f.reachable->Set(s.etcd_reachable() ? 1 : 0);
  f.members->Set(static_cast<double>(s.members()));
  f.version->Set(static_cast<double>(s.judge_version_applied()));
  absl::MutexLock lock(&f.mu);
  f.deltas[0].Sync(s.deltas_published());
  f.deltas[1].Sync(s.deltas_merged());
  f.deltas[2].Sync(s.deltas_discarded());
  f.deltas[3].Sync(s.deltas_dropped());
  f.adopted.Sync(s.states_adopted());
  f.refused.Sync(s.commits_refused());
  f.requests.Sync(s.etcd_requests());
  f.bytes[0].Sync(s.etcd_bytes_sent());
  f.bytes[1].Sync(s.etcd_bytes_received());
}

}  // namespace understudy::metrics
