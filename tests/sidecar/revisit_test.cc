// sidecar/revisit.h: when the scheduled eval runs and what it compares
// with, the revisit watch's saved prices and traffic, and a run against a
// dead upstream stored as a failed run.
#include "sidecar/revisit.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>

#include "tests/common/test_util.h"
#include "tests/storage/fake_store.h"

namespace understudy::sidecar {
namespace {

using ::testing::HasSubstr;
namespace v1 = ::understudy::v1;

v1::EvalRun RunAt(absl::Time t, bool failed = false) {
  v1::EvalRun r;
  r.set_start_unix_micros(absl::ToUnixMicros(t));
  r.set_failed(failed);
  return r;
}

std::vector<std::string> Kinds(const std::vector<v1::RevisitTrigger>& fired) {
  std::vector<std::string> out;
  for (const auto& t : fired) out.push_back(t.kind());
  return out;
}

class RevisitTest : public ::testing::Test {
 protected:
  RevisitWatch::Options Options(const std::string& fingerprint) {
    RevisitWatch::Options o;
    o.price_fingerprint = fingerprint;
    return o;
  }
  v1::Decision Promote() {
    v1::Decision d;
    d.set_action(v1::ACTION_PROMOTE);
    d.set_time_unix_micros(absl::ToUnixMicros(clock_.Now()));
    return d;
  }
  ManualClock clock_;
  storage::FakeStore store_{clock_};
  const absl::Time t0_ = clock_.Now();
};

// The schedule survives restarts: the next run is an interval after the
// last one, or now when that has passed or there was none.
TEST_F(RevisitTest, NextRunFollowsTheLastStoredRun) {
  const absl::Duration six = absl::Hours(6);
  EXPECT_EQ(NextEvalRun(std::nullopt, six, t0_), t0_);
  EXPECT_EQ(NextEvalRun(t0_ - absl::Hours(1), six, t0_), t0_ + absl::Hours(5));
  EXPECT_EQ(NextEvalRun(t0_ - absl::Hours(7), six, t0_), t0_);
}

// The baseline run is the last good run before the latest decision, else
// the first good run; failed runs are never baselines.
TEST_F(RevisitTest, BaselineIsTheLastGoodRunBeforeTheDecision) {
  std::vector<v1::EvalRun> runs = {RunAt(t0_, true), RunAt(t0_ + absl::Hours(1)),
                                   RunAt(t0_ + absl::Hours(2)),
                                   RunAt(t0_ + absl::Hours(3), true),
                                   RunAt(t0_ + absl::Hours(4))};
  EXPECT_EQ(PickBaselineRun(runs, t0_ + absl::Hours(3.5)), &runs[2]);
  EXPECT_EQ(PickBaselineRun(runs, absl::InfinitePast()), &runs[1]);
  EXPECT_EQ(PickBaselineRun(runs, t0_ - absl::Hours(1)), &runs[1]);
  EXPECT_EQ(PickBaselineRun({RunAt(t0_, true)}, absl::InfiniteFuture()), nullptr);
}

// Equal tables give equal fingerprints; any changed price changes it.
TEST_F(RevisitTest, PriceFingerprintSeesEveryPrice) {
  std::map<std::string, compare::ModelPrice> a = {{"gpt-4o", {2.5, 10, -1}}};
  std::map<std::string, compare::ModelPrice> b = a;
  EXPECT_EQ(PriceFingerprint(a), PriceFingerprint(b));
  b["gpt-4o"].output_per_million = 12;
  EXPECT_NE(PriceFingerprint(a), PriceFingerprint(b));
  EXPECT_NE(PriceFingerprint(a), PriceFingerprint({}));
}

// A restart with another price table fires price_change until the next
// rollout decision saves the new table.
TEST_F(RevisitTest, PriceChangeAcrossRestartFiresUntilTheNextDecision) {
  {
    RevisitWatch first(Options("old"), store_, clock_);
    absl::StatusOr<std::string> note = first.Start();
    ASSERT_OK(note);
    EXPECT_EQ(*note, "");
    EXPECT_TRUE(first.Fired().empty());
  }
  RevisitWatch second(Options("new"), store_, clock_);
  absl::StatusOr<std::string> note = second.Start();
  ASSERT_OK(note);
  EXPECT_THAT(*note, HasSubstr("compare.prices changed"));
  EXPECT_EQ(Kinds(second.Fired()), std::vector<std::string>{"price_change"});
  // A drift record or a hold is not a rollout decision.
  v1::Decision drift;
  drift.set_action(v1::ACTION_DRIFT);
  second.OnDecision(drift);
  EXPECT_EQ(Kinds(second.Fired()), std::vector<std::string>{"price_change"});
  second.OnDecision(Promote());
  EXPECT_TRUE(second.Fired().empty());
  EXPECT_EQ(store_.LoadRevisitState()->price_fingerprint(), "new");
  EXPECT_EQ(second.LastDecisionTime(), clock_.Now());
}

// A store that has decisions but no revisit state yet (an upgrade): the
// latest rollout decision in the log is the baseline's reference point.
TEST_F(RevisitTest, FirstStartTakesTheLatestDecisionFromTheLog) {
  v1::Decision promote = Promote();
  ASSERT_OK(store_.AppendDecision(promote));
  clock_.Advance(absl::Minutes(1));
  v1::Decision drift;
  drift.set_action(v1::ACTION_DRIFT);
  drift.set_time_unix_micros(absl::ToUnixMicros(clock_.Now()));
  ASSERT_OK(store_.AppendDecision(drift));
  RevisitWatch watch(Options("p"), store_, clock_);
  ASSERT_OK(watch.Start());
  EXPECT_EQ(watch.LastDecisionTime(), absl::FromUnixMicros(promote.time_unix_micros()));
}

// Twice the live traffic of decision time fires volume_growth.
TEST_F(RevisitTest, VolumeGrowthAgainstTheDecisionsTraffic) {
  RevisitWatch watch(Options("p"), store_, clock_);
  ASSERT_OK(watch.Start());
  ExchangeFacts facts;
  v1::Exchange live;
  clock_.Advance(absl::Minutes(5));
  for (int i = 0; i < 100; ++i) watch.OnLiveExchange(live, facts);
  EXPECT_EQ(watch.RequestsPerHour(), 0);  // under min_rate_window: not known yet
  clock_.Advance(absl::Minutes(5));
  EXPECT_DOUBLE_EQ(watch.RequestsPerHour(), 600);  // 100 in 10 minutes
  watch.OnDecision(Promote());
  EXPECT_EQ(store_.LoadRevisitState()->requests_per_hour(), 600);
  clock_.Advance(absl::Minutes(50));
  for (int i = 0; i < 1000; ++i) watch.OnLiveExchange(live, facts);
  EXPECT_DOUBLE_EQ(watch.RequestsPerHour(), 1100);  // 1100 in the last hour
  EXPECT_TRUE(watch.Fired().empty());               // 1.83x < 2x
  for (int i = 0; i < 100; ++i) watch.OnLiveExchange(live, facts);
  EXPECT_EQ(Kinds(watch.Fired()), std::vector<std::string>{"volume_growth"});
}

// A dead upstream gives a stored failed run that says why, not an error
// or a crash; a missing dataset too.
TEST_F(RevisitTest, FailingUpstreamGivesAFailedRunRecord) {
  const std::string dataset = ::testing::TempDir() + "revisit_test_golden.jsonl";
  {
    std::ofstream out(dataset);
    out << R"({"id":"q1","request":{"model":"m","messages":[{"role":"user","content":"hi"}]}})"
        << "\n";
  }
  EvalScheduler::Options o;
  o.eval.enabled = true;
  o.eval.dataset = dataset;
  o.eval.arms = {v1::ARM_PRODUCTION};
  o.shadow.production.url = "http://127.0.0.1:1";  // nothing listens there
  o.shadow.timeout = absl::Seconds(5);
  std::vector<v1::EvalRun> seen;
  o.on_run = [&seen](const v1::EvalRun& r) { seen.push_back(r); };
  EvalScheduler scheduler(std::move(o), store_, clock_);
  absl::StatusOr<v1::EvalRun> run = scheduler.RunOnce();
  ASSERT_OK(run);
  EXPECT_TRUE(run->failed());
  EXPECT_THAT(run->error(), HasSubstr("every production call failed"));
  ASSERT_EQ(seen.size(), 1u);
  absl::StatusOr<std::vector<v1::EvalRun>> stored =
      store_.ListEvalRuns(absl::InfinitePast(), storage::kNoLimit);
  ASSERT_OK(stored);
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_TRUE((*stored)[0].failed());

  std::remove(dataset.c_str());
  clock_.Advance(absl::Seconds(1));
  run = scheduler.RunOnce();
  ASSERT_OK(run);
  EXPECT_TRUE(run->failed());
  EXPECT_THAT(run->error(), HasSubstr("cannot read the dataset"));
}

}  // namespace
}  // namespace understudy::sidecar
