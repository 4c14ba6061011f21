// Tests for FakeStore, which other modules' tests rely on.
#include "tests/storage/fake_store.h"

#include <gtest/gtest.h>

#include "tests/common/test_util.h"

namespace understudy::storage {
namespace {

using ::understudy::testing::StatusIs;

class FakeStoreTest : public ::testing::Test {
 protected:
  ManualClock clock_;
  FakeStore store_{clock_};
};

// FailNextWrite fails exactly one write and stores nothing for it.
TEST_F(FakeStoreTest, FailNextWriteFailsOnceAndStoresNothing) {
  v1::RolloutState s;
  s.set_version(1);
  v1::Decision d;
  d.set_action("promote");
  store_.FailNextWrite(absl::UnavailableError("disk"));
  EXPECT_THAT(store_.CommitTransition(s, d), StatusIs(absl::StatusCode::kUnavailable, "disk"));
  EXPECT_THAT(store_.LoadRolloutState(), StatusIs(absl::StatusCode::kNotFound, ""));
  ASSERT_OK(store_.CommitTransition(s, d));
  EXPECT_EQ(store_.LoadRolloutState()->version(), 1);
  ASSERT_EQ(store_.ListDecisions(absl::InfinitePast(), 10)->size(), 1u);
  EXPECT_EQ(store_.Stats().write_failures, 2);
}

// Records without a time get the clock's time and list in time order.
TEST_F(FakeStoreTest, StampsTimeAndListsInOrder) {
  v1::Comparison a;
  a.set_request_id("a");
  a.set_verdict(v1::VERDICT_MAJOR_DIFF);
  ASSERT_OK(store_.PutComparison(a));
  clock_.Advance(absl::Seconds(1));
  v1::Comparison b;
  b.set_request_id("b");
  ASSERT_OK(store_.PutComparison(b));
  ComparisonQuery q;
  q.verdicts = {v1::VERDICT_MAJOR_DIFF};
  auto list = store_.ListComparisons(q);
  ASSERT_OK(list);
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].request_id(), "a");
  EXPECT_EQ((*list)[0].time_unix_micros(), 1700000000LL * 1000000);
}

}  // namespace
}  // namespace understudy::storage
