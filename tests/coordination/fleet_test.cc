// Fleet mode against a real etcd (in-process replicas: their own routers,
// controllers and fleets, one etcd): one leader, CAS-committed decisions
// applied everywhere, evidence from every replica, fencing, fail static.
#include "coordination/fleet.h"

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "tests/common/test_util.h"
#include "tests/support/etcd_process.h"

namespace understudy::coordination {
namespace {

namespace v1 = understudy::v1;
using ::understudy::testing::EtcdProcess;
using ::understudy::testing::StatusIs;

rollout::RolloutConfig Plan() {
  rollout::RolloutConfig c;
  c.stages = {{10, absl::ZeroDuration(), 1000000, absl::ZeroDuration()},
              {50, absl::ZeroDuration(), 1000000, absl::ZeroDuration()},
              {100, absl::ZeroDuration(), 0, absl::ZeroDuration()}};
  return c;
}

// One sidecar's rollout pieces, joined to the fleet.
struct Replica {
  Replica(const std::string& endpoint, const std::string& name, const rollout::RolloutConfig& config)
      : router("fleet-salt") {
    FleetOptions o;
    o.etcd.endpoints = {endpoint};
    o.etcd.request_timeout = absl::Seconds(1);
    o.prefix = "/understudy/test/";
    o.lease_ttl = absl::Seconds(2);
    o.member = name;
    FleetLocal local;
    local.commit = [this](const v1::RolloutState& s, const v1::Decision& d) {
      return local_log.Commit(s, d);
    };
    absl::StatusOr<std::unique_ptr<Fleet>> f = Fleet::Create(o, RealClock::Default(), local);
    EXPECT_OK(f);
    fleet = *std::move(f);
    controller = std::make_unique<rollout::Controller>(config, RealClock::Default(), router, *fleet);
    controller->EnableEvidenceDeltas();
    fleet->Start(*controller);
  }
  ~Replica() { fleet->Stop(); }
  // Tick is the engine's judge tick in fleet mode.
  bool Tick() {
    if (!fleet->BeginTick()) return false;
    EXPECT_OK(controller->Tick().status());
    fleet->EndTick(controller->Health());
    return true;
  }
  rollout::Router router;
  rollout::InMemoryTransitionLog local_log;
  std::unique_ptr<Fleet> fleet;
  std::unique_ptr<rollout::Controller> controller;
};

bool WaitFor(const std::function<bool()>& done, absl::Duration timeout = absl::Seconds(10)) {
  const absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(20));
  }
  return done();
}

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::unique_ptr<EtcdProcess>> e = EtcdProcess::Start();
    ASSERT_OK(e);
    etcd_ = *std::move(e);
    for (const char* name : {"a", "b", "c"}) {
      replicas_.push_back(std::make_unique<Replica>(etcd_->endpoint(), name, config_));
    }
    ASSERT_TRUE(WaitFor([&] { return Leader() != nullptr; })) << "no leader elected";
  }
  void TearDown() override { replicas_.clear(); }

  Replica* Leader() {
    Replica* leader = nullptr;
    for (auto& r : replicas_) {
      if (r->fleet->IsLeader()) {
        if (leader != nullptr) return nullptr;  // two at once must never be seen
        leader = r.get();
      }
    }
    return leader;
  }
  Replica* AFollower() {
    for (auto& r : replicas_) {
      if (!r->fleet->IsLeader()) return r.get();
    }
    return nullptr;
  }
  bool AllAt(int32_t weight) {
    for (auto& r : replicas_) {
      if (r->router.WeightBasisPoints() != weight) return false;
    }
    return true;
  }

  rollout::RolloutConfig config_ = Plan();
  std::unique_ptr<EtcdProcess> etcd_;
  std::vector<std::unique_ptr<Replica>> replicas_;
};

TEST_F(FleetTest, ACommandOnAFollowerTakesEffectOnEveryReplica) {
  Replica* follower = AFollower();
  ASSERT_NE(follower, nullptr);
  for (auto& r : replicas_) {
    EXPECT_EQ(r->fleet->Status().leader(), Leader()->fleet->Status().member());
  }
  ASSERT_OK(follower->controller->Promote("alice").status());
  EXPECT_TRUE(WaitFor([&] { return AllAt(5000); }, absl::Seconds(1)))
      << "every replica routes by the new weight within a second";
  // Every replica's own store has the decision.
  for (auto& r : replicas_) {
    EXPECT_TRUE(WaitFor([&] { return r->local_log.size() == 1; }))
        << r->fleet->Status().member() << " has " << r->local_log.size();
  }
  // Same contract as alone: an invalid command is refused everywhere.
  ASSERT_OK(Leader()->controller->Rollback("bob", "bad answers").status());
  ASSERT_TRUE(WaitFor([&] { return AllAt(0); }));
  EXPECT_TRUE(WaitFor([&] {
    return follower->controller->State().phase() == v1::PHASE_ROLLED_BACK;
  }));
  EXPECT_THAT(follower->controller->Rollback("carol", "again").status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, "already rolled back"));
}

TEST_F(FleetTest, AStaleReplicaCannotOverwriteANewerDecision) {
  Replica* a = replicas_[0].get();
  Replica* b = replicas_[1].get();
  // Both see version 0; a commits first. b's controller still thinks it is
  // at version 0 until its watch catches up; its commit must fail.
  a->fleet->Stop();  // a's commit below still goes through the client
  ASSERT_OK(a->controller->Pause("alice", "look").status());
  absl::Status s = absl::OkStatus();
  // Race the watch: b may have adopted already (then its pause is refused
  // as already paused); either way it never overwrites a's decision.
  s = b->controller->Rollback("bob", "stale").status();
  if (s.ok()) {
    // b adopted a's pause first, then rolled back on top of it: legitimate.
    EXPECT_EQ(b->controller->State().version(), 2);
  } else {
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kAborted, "fleet"));
    ASSERT_OK(b->fleet->Refresh());
    EXPECT_EQ(b->controller->State().phase(), v1::PHASE_PAUSED);
  }
}

TEST_F(FleetTest, TheLeaderJudgesOnEveryReplicasEvidence) {
  Replica* leader = Leader();
  // 30 requests on each replica, production arm.
  for (auto& r : replicas_) {
    for (int i = 0; i < 30; ++i) {
      rollout::Outcome o;
      o.latency = absl::Milliseconds(100);
      o.bucket = i;
      r->controller->RecordOutcome(v1::ARM_PRODUCTION, o);
    }
  }
  for (auto& r : replicas_) {
    if (r.get() != leader) EXPECT_FALSE(r->Tick()) << "followers publish, they do not judge";
  }
  ASSERT_TRUE(leader->Tick());
  EXPECT_EQ(leader->controller->Health().production().requests(), 90);
  EXPECT_EQ(leader->fleet->Status().deltas_merged(), 3);
  // A follower shows the leader's health.
  Replica* follower = AFollower();
  EXPECT_TRUE(WaitFor([&] {
    auto h = follower->fleet->LeaderHealth();
    return h.has_value() && h->production().requests() == 90;
  }));
  // Merged deltas are deleted with the save: a second tick adds nothing.
  ASSERT_TRUE(leader->Tick());
  EXPECT_EQ(leader->controller->Health().production().requests(), 90);
}

TEST_F(FleetTest, ANewLeaderResumesTheSavedEvidenceAndTheOldOneIsFencedOut) {
  Replica* old_leader = Leader();
  for (int i = 0; i < 40; ++i) {
    rollout::Outcome o;
    o.bucket = i;
    AFollower()->controller->RecordOutcome(v1::ARM_CANDIDATE, o);
  }
  for (auto& r : replicas_) (void)r->Tick();  // followers publish
  ASSERT_TRUE(old_leader->Tick());
  ASSERT_EQ(old_leader->controller->Health().candidate().requests(), 40);

  // The old leader stops renewing (its process froze): the lease expires.
  const std::string old_name = old_leader->fleet->Status().member();
  old_leader->fleet->Stop();
  Replica* next = nullptr;
  ASSERT_TRUE(WaitFor([&] {
    for (auto& r : replicas_) {
      if (r.get() != old_leader && r->fleet->IsLeader()) next = r.get();
    }
    return next != nullptr;
  }));
  ASSERT_TRUE(next->Tick());
  EXPECT_EQ(next->controller->Health().candidate().requests(), 40)
      << "the saved evidence is resumed, not started over or doubled";
  // The old leader no longer judges; its evidence is not the fleet's.
  EXPECT_FALSE(old_leader->Tick());
  EXPECT_NE(next->fleet->Status().member(), old_name);
}

TEST_F(FleetTest, EtcdDownEveryReplicaKeepsItsWeightAndItAllResumes) {
  ASSERT_OK(AFollower()->controller->Promote("alice").status());
  ASSERT_TRUE(WaitFor([&] { return AllAt(5000); }));
  etcd_->Stop();
  for (auto& r : replicas_) (void)r->Tick();
  EXPECT_TRUE(WaitFor([&] {
    for (auto& r : replicas_) {
      if (r->fleet->Status().etcd_reachable()) return false;
    }
    return true;
  }));
  EXPECT_TRUE(AllAt(5000)) << "fail static: the last known weight";
  for (auto& r : replicas_) {
    EXPECT_FALSE(r->Tick()) << "nobody judges without etcd";
  }
  EXPECT_THAT(AFollower()->controller->Rollback("bob", "etcd down").status(),
              StatusIs(absl::StatusCode::kUnavailable, "etcd unreachable"));
  EXPECT_TRUE(AllAt(5000));

  ASSERT_OK(etcd_->Restart());
  ASSERT_TRUE(WaitFor([&] { return Leader() != nullptr; }, absl::Seconds(20)));
  ASSERT_TRUE(WaitFor([&] { return Leader()->Tick(); }, absl::Seconds(20)));
  ASSERT_OK(AFollower()->controller->Rollback("bob", "etcd back").status());
  EXPECT_TRUE(WaitFor([&] { return AllAt(0); }));
}

}  // namespace
}  // namespace understudy::coordination
