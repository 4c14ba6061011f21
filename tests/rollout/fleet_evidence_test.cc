// Fleet mode in the rollout library (docs/fleet.md): replicas record into
// evidence deltas, one judge merges them. A fleet whose traffic is spread
// over three replicas must judge exactly as one controller that saw it all.
#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "rollout/rollout.h"
#include "tests/common/test_util.h"

namespace understudy::rollout {
namespace {

using ::understudy::testing::StatusIs;
using understudy::v1::ARM_CANDIDATE;
using understudy::v1::ARM_PRODUCTION;
using understudy::v1::Decision;
using understudy::v1::JudgeEvidence;
using understudy::v1::RolloutState;

RolloutConfig Plan() {
  RolloutConfig c;
  c.stages = {{10, absl::Minutes(2), 200, absl::ZeroDuration()},
              {50, absl::Minutes(2), 200, absl::ZeroDuration()},
              {100, absl::ZeroDuration(), 0, absl::ZeroDuration()}};
  c.min_clusters = 5;
  return c;
}

// A replica: its own router and controller over the shared clock. Its log
// is never used by followers (they do not judge or command here).
struct Replica {
  Replica(const RolloutConfig& config, const Clock& clock, TransitionLog& log)
      : router("fleet-salt"), controller(config, clock, router, log) {}
  Router router;
  Controller controller;
};

class FleetEvidenceTest : public ::testing::Test {
 protected:
  const absl::Time start_ = absl::FromUnixSeconds(1700000000);
  ManualClock clock_{start_};
  RolloutConfig config_ = Plan();
  InMemoryTransitionLog fleet_log_, reference_log_;
};

TEST_F(FleetEvidenceTest, ThreeReplicasJudgeAsOneControllerThatSawEverything) {
  Router reference_router("fleet-salt");
  Controller reference(config_, clock_, reference_router, reference_log_);
  std::vector<std::unique_ptr<Replica>> fleet;
  for (int i = 0; i < 3; ++i) {
    fleet.push_back(std::make_unique<Replica>(config_, clock_, fleet_log_));
    fleet.back()->controller.EnableEvidenceDeltas();
  }
  Controller& leader = fleet[0]->controller;

  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> z(0, 1);
  std::vector<Decision> fleet_decisions, reference_decisions;
  int64_t id = 0;
  for (int sec = 1; sec <= 900; ++sec) {
    for (int i = 0; i < 40; ++i) {
      const std::string user = "user-" + std::to_string(rng() % 400);
      const bool cand = reference_router.Assign(user) == ARM_CANDIDATE;
      Outcome o;
      o.status = u(rng) < (cand ? 0.03 : 0.01) ? OutcomeClass::kServerError : OutcomeClass::kOk;
      o.latency = absl::Milliseconds(500 * std::exp(0.3 * z(rng)));
      o.ttft = *o.latency / 4;
      o.cost = 0.001;
      const std::string rid = "req-" + std::to_string(++id);
      o.request_id = rid;
      o.bucket = reference.BucketOf(user);
      const v1::Arm arm = cand ? ARM_CANDIDATE : ARM_PRODUCTION;
      reference.RecordOutcome(arm, o);
      Replica& r = *fleet[rng() % fleet.size()];  // any pod may serve the user
      ASSERT_EQ(r.router.Assign(user), arm) << "sticky assignment differs across replicas";
      r.controller.RecordOutcome(arm, o);
      if (u(rng) < 0.2) {
        const double score = u(rng) < (cand ? 0.7 : 0.8) ? 1.0 : 0.0;
        reference.RecordFeedback(arm, score, o.bucket);
        r.controller.RecordFeedback(arm, score, o.bucket);
      }
    }
    clock_.Advance(absl::Seconds(1));
    if (sec % 5 != 0) continue;
    // The leader's tick: every replica's delta, its own included.
    for (auto& r : fleet) {
      JudgeEvidence delta = r->controller.TakeEvidenceDelta();
      ASSERT_OK(leader.MergeEvidenceDelta(delta));
    }
    absl::StatusOr<Decision> fd = leader.Tick();
    absl::StatusOr<Decision> rd = reference.Tick();
    ASSERT_OK(fd);
    ASSERT_OK(rd);
    ASSERT_EQ(fd->action(), rd->action()) << "at " << sec << " s: fleet " << fd->reason()
                                          << " / one controller " << rd->reason();
    ASSERT_EQ(fd->gates_size(), rd->gates_size());
    for (int g = 0; g < fd->gates_size(); ++g) {
      EXPECT_EQ(fd->gates(g).outcome(), rd->gates(g).outcome()) << fd->gates(g).gate();
      EXPECT_NEAR(fd->gates(g).statistic_value(), rd->gates(g).statistic_value(),
                  1e-6 * (1 + std::abs(rd->gates(g).statistic_value())))
          << fd->gates(g).gate() << " at " << sec << " s";
      EXPECT_EQ(fd->gates(g).candidate_clusters(), rd->gates(g).candidate_clusters());
    }
    // The followers route by the committed state, and count timings
    // against the judge's thresholds.
    const JudgeEvidence saved = leader.SaveEvidence();
    for (size_t i = 1; i < fleet.size(); ++i) {
      ASSERT_OK(fleet[i]->controller.Adopt(leader.State()).status());
      fleet[i]->controller.SetDeltaThresholds(saved.latency_threshold_ms(),
                                              saved.ttft_threshold_ms());
    }
    if (fd->action() != understudy::v1::ACTION_HOLD) fleet_decisions.push_back(*fd);
    if (rd->action() != understudy::v1::ACTION_HOLD) reference_decisions.push_back(*rd);
  }
  // The 3% vs 1% candidate is caught, by both, at the same tick.
  ASSERT_FALSE(reference_decisions.empty());
  ASSERT_EQ(fleet_decisions.size(), reference_decisions.size());
  EXPECT_EQ(fleet_decisions.back().action(), understudy::v1::ACTION_ROLLBACK);
  for (size_t i = 0; i < fleet_decisions.size(); ++i) {
    EXPECT_EQ(fleet_decisions[i].time_unix_micros(), reference_decisions[i].time_unix_micros());
  }
  for (auto& r : fleet) {
    EXPECT_EQ(r->router.WeightBasisPoints(), reference_router.WeightBasisPoints());
  }
}

TEST_F(FleetEvidenceTest, ADeltaFromAnotherStageRunIsRefusedAndChangesNothing) {
  Replica leader(config_, clock_, fleet_log_), follower(config_, clock_, fleet_log_);
  leader.controller.EnableEvidenceDeltas();
  follower.controller.EnableEvidenceDeltas();
  Outcome o;
  o.bucket = 3;
  follower.controller.RecordOutcome(ARM_PRODUCTION, o);
  JudgeEvidence delta = follower.controller.TakeEvidenceDelta();
  EXPECT_FALSE(IsEmptyDelta(delta));
  EXPECT_TRUE(IsEmptyDelta(follower.controller.TakeEvidenceDelta())) << "taken means reset";

  clock_.Advance(absl::Seconds(5));
  ASSERT_OK(leader.controller.Promote("alice").status());  // a new stage run
  EXPECT_THAT(leader.controller.MergeEvidenceDelta(delta),
              StatusIs(absl::StatusCode::kFailedPrecondition, "stage 0"));
  EXPECT_EQ(leader.controller.Health().production().requests(), 0);

  // The follower adopts the new stage; what it records now merges.
  ASSERT_TRUE(*follower.controller.Adopt(leader.controller.State()));
  EXPECT_EQ(follower.router.WeightBasisPoints(), 5000);
  follower.controller.RecordOutcome(ARM_PRODUCTION, o);
  ASSERT_OK(leader.controller.MergeEvidenceDelta(follower.controller.TakeEvidenceDelta()));
  EXPECT_EQ(leader.controller.Health().production().requests(), 1);
}

TEST_F(FleetEvidenceTest, AdoptTakesOnlyNewerStatesAndDropsADeltaOfAnEndedStage) {
  Replica leader(config_, clock_, fleet_log_), follower(config_, clock_, fleet_log_);
  follower.controller.EnableEvidenceDeltas();
  const RolloutState first = leader.controller.State();
  ASSERT_OK(leader.controller.Pause("alice", "look").status());
  EXPECT_TRUE(*follower.controller.Adopt(leader.controller.State()));
  EXPECT_FALSE(*follower.controller.Adopt(first)) << "an older state is ignored";
  EXPECT_EQ(follower.controller.State().phase(), understudy::v1::PHASE_PAUSED);

  // Recorded while paused (same stage run), kept across a rollback to 0%.
  Outcome o;
  o.bucket = 1;
  follower.controller.RecordOutcome(ARM_CANDIDATE, o);
  ASSERT_OK(leader.controller.Rollback("alice", "bad").status());
  ASSERT_TRUE(*follower.controller.Adopt(leader.controller.State()));
  EXPECT_EQ(follower.router.WeightBasisPoints(), 0);
  EXPECT_FALSE(IsEmptyDelta(follower.controller.TakeEvidenceDelta()));

  // A retry is a new attempt: what was recorded before it is dropped.
  follower.controller.RecordOutcome(ARM_CANDIDATE, o);
  ASSERT_OK(leader.controller.Promote("alice").status());
  ASSERT_TRUE(*follower.controller.Adopt(leader.controller.State()));
  EXPECT_TRUE(IsEmptyDelta(follower.controller.TakeEvidenceDelta()));

  RolloutState other_plan = leader.controller.State();
  other_plan.set_version(other_plan.version() + 1);
  other_plan.set_plan_fingerprint("0,100");
  EXPECT_THAT(follower.controller.Adopt(other_plan).status(),
              StatusIs(absl::StatusCode::kFailedPrecondition, "stage plan"));
}

TEST_F(FleetEvidenceTest, AMalformedDeltaIsInvalidAndChangesNothing) {
  Replica leader(config_, clock_, fleet_log_), follower(config_, clock_, fleet_log_);
  follower.controller.EnableEvidenceDeltas();
  Outcome o;
  o.bucket = 2;
  follower.controller.RecordOutcome(ARM_PRODUCTION, o);
  JudgeEvidence delta = follower.controller.TakeEvidenceDelta();
  JudgeEvidence bad = delta;
  bad.mutable_production()->mutable_buckets()->set_bucket(0, kBucketCount + 5);
  EXPECT_THAT(leader.controller.MergeEvidenceDelta(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, "out of range"));
  bad = delta;
  bad.add_folded_bucket(1);
  EXPECT_THAT(leader.controller.MergeEvidenceDelta(bad),
              StatusIs(absl::StatusCode::kInvalidArgument, "folded"));
  EXPECT_EQ(leader.controller.Health().production().requests(), 0);
  ASSERT_OK(leader.controller.MergeEvidenceDelta(delta));
  EXPECT_EQ(leader.controller.Health().production().requests(), 1);
}

}  // namespace
}  // namespace understudy::rollout
