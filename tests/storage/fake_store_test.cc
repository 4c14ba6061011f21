// FakeStore-specific tests (failure injection). FakeStore's behaviour as a
// Store is checked against the RocksDB store in store_contract_test.cc.
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
  d.set_reason("gates passed");
  store_.FailNextWrite(absl::UnavailableError("disk"));
  EXPECT_THAT(store_.CommitTransition(s, d), StatusIs(absl::StatusCode::kUnavailable, "disk"));
  EXPECT_THAT(store_.LoadRolloutState(), StatusIs(absl::StatusCode::kNotFound, ""));
  ASSERT_OK(store_.CommitTransition(s, d));
  EXPECT_EQ(store_.LoadRolloutState()->version(), 1);
  ASSERT_EQ(store_.ListDecisions(absl::InfinitePast(), 10)->size(), 1u);
  EXPECT_EQ(store_.Stats().write_failures, 2);
}

}  // namespace
}  // namespace understudy::storage
