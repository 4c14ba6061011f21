// coordination/fleet.h
// Fleet mode (docs/fleet.md): many sidecars, one rollout, coordinated by
// etcd. Every replica routes by the fleet's state and records what it sees
// into evidence deltas; one elected replica, the leader, merges every
// delta, runs the judge and commits its decisions. Keys under the prefix P:
//
//   P/state              FleetCommit: the rollout state and the decision
//                        that made it; every write is a compare-and-swap
//                        on this key's revision (and, for the judge, on
//                        the leader key's: fencing)
//   P/decisions/<ver>    every decision, by state version
//   P/leader             the leader's member name, under its lease
//   P/members/<name>     FleetMember, under each replica's lease
//   P/deltas/<name>/<n>  a replica's evidence delta, under its lease,
//                        deleted by the leader in the same fenced
//                        transaction that saves the evidence holding it
//   P/judge              FleetJudge: thresholds, health, and where the
//                        judge's evidence is (P/evidence/<generation>/<i>)
//
// Failure behaviour: etcd unreachable → every replica keeps routing at the
// last state it knew (fail static), deltas wait in memory (bounded), the
// judge waits, Status says so; it all resumes by itself. A leader that
// dies loses its lease; another replica takes over within the lease TTL,
// loads the saved evidence and merges the deltas not yet merged. A
// deposed leader's late write fails its compare (the leader key's create
// revision), so two judges never both commit.
//
// Example (given a storage-backed rollout::TransitionLog `local`):
//   FleetOptions o;
//   o.etcd.endpoints = {"127.0.0.1:2379"};
//   o.prefix = "/understudy/checkout-bot/";
//   ASSIGN_OR_RETURN(std::unique_ptr<Fleet> fleet, Fleet::Create(o, clock, hooks));
//   rollout::Controller controller(config, clock, router, *fleet);  // commits go to etcd
//   controller.EnableEvidenceDeltas();
//   fleet->Start(controller);
//   // every judge tick:
//   if (fleet->BeginTick()) {              // the leader, with the fleet's evidence merged
//     (void)controller.Tick();
//     fleet->EndTick(controller.Health());  // saves the evidence, fenced
//   }
//
// Thread safety: every method may be called concurrently; Commit is called
// by the controller with its command lock held and never calls back.
#ifndef UNDERSTUDY_COORDINATION_FLEET_H_
#define UNDERSTUDY_COORDINATION_FLEET_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "coordination/etcd_client.h"
#include "rollout/rollout.h"
#include "understudy/v1/rollout.pb.h"

namespace understudy::coordination {

struct FleetOptions {
  EtcdOptions etcd;
  // Every key lives under this prefix ("/" is appended when missing): one
  // prefix per rollout.
  std::string prefix = "/understudy/default/";
  // A replica that stops renewing its lease for this long is gone: its
  // member and delta keys vanish and, if it led, another replica leads.
  absl::Duration lease_ttl = absl::Seconds(10);
  // This replica's name in the fleet; "" → host name, pid and a random
  // suffix (names must be unique among live replicas).
  std::string member;
  // At most this many deltas are merged per tick (the rest wait a tick).
  int max_deltas_per_tick = 100;
  // Deltas kept while etcd is unreachable; older ones are dropped (and
  // counted) past this.
  int max_unsent_deltas = 120;
};

// What the fleet writes to this replica's own store (the report's
// decision log and the state a restart resumes without etcd).
struct FleetLocal {
  std::function<absl::Status(const understudy::v1::RolloutState&,
                             const understudy::v1::Decision&)>
      commit;
  std::function<absl::Status(const understudy::v1::RolloutState&)> save_state;
};

class Fleet final : public rollout::TransitionLog {
 public:
  // Create validates the options and makes the etcd client; it does not
  // contact etcd. InvalidArgument names the bad key.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<Fleet>> Create(FleetOptions options,
                                                                    const Clock& clock,
                                                                    FleetLocal local);
  ~Fleet() override;  // Stop()
  Fleet(const Fleet&) = delete;
  Fleet& operator=(const Fleet&) = delete;

  // Start joins the fleet with `controller` (whose TransitionLog is this
  // fleet, with evidence deltas enabled): tries once, within the request
  // timeout, to adopt the fleet's state (or to create it from the
  // controller's), then keeps the lease, campaigns for leadership and
  // watches the state in the background. Never fails for an unreachable
  // etcd: the replica then serves at its last known state until etcd
  // answers. `controller` must outlive Stop.
  void Start(rollout::Controller& controller);
  // Stop ends the background work and revokes the lease (if leading, the
  // next leader takes over at once). Idempotent.
  void Stop();

  // TransitionLog: commits a transition to etcd (compare-and-swap on the
  // state's revision; a judge's decision also on this replica's
  // leadership), then to the local store. Aborted when another replica
  // changed the state first or leadership was lost (Refresh, then retry);
  // Unavailable when etcd cannot be reached; nothing changes either way.
  [[nodiscard]] absl::Status Commit(const understudy::v1::RolloutState& state,
                                    const understudy::v1::Decision& decision) override;

  // BeginTick: the leader merges every replica's delta (its own too) into
  // its judge's evidence and returns true: run the judge, then EndTick.
  // Any other replica publishes its delta and returns false.
  bool BeginTick();
  // EndTick saves the judge's evidence and record, deleting the deltas it
  // merged, in one transaction fenced by leadership.
  void EndTick(const understudy::v1::HealthSnapshot& health);
  // Refresh reads the fleet's state now and adopts it (after Aborted).
  absl::Status Refresh();

  understudy::v1::FleetStatus Status() const;
  // The leader's health as of its last tick (what followers show), if known.
  std::optional<understudy::v1::HealthSnapshot> LeaderHealth() const;
  // Whether this replica runs the judge now.
  bool IsLeader() const;
  // Total etcd traffic of this replica (bench).
  EtcdTraffic Traffic() const;

 private:
  struct Impl;
  explicit Fleet(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace understudy::coordination

#endif  // UNDERSTUDY_COORDINATION_FLEET_H_
