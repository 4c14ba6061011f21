// Scheduled eval runs and the revisit state in RocksDB: time order, limits,
// the privacy modes (no answer text unless body_mode full) and restarts.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "storage/store.h"
#include "tests/common/test_util.h"
#include "tests/storage/store_test_util.h"

namespace understudy::storage {
namespace {

namespace v1 = ::understudy::v1;

v1::EvalRun MakeRun(absl::Time start, const std::string& answer) {
  v1::EvalRun r;
  r.set_start_unix_micros(absl::ToUnixMicros(start));
  r.set_dataset("golden.jsonl");
  r.set_items(1);
  v1::EvalItemResult* item = r.add_results();
  item->set_id("q1");
  item->mutable_candidate()->set_outcome("ok");
  item->mutable_candidate()->set_text(answer);
  return r;
}

class EvalRunsTest : public ::testing::Test {
 protected:
  std::unique_ptr<Store> Open(BodyMode mode) {
    StorageConfig config;
    config.path = dir_.Sub("db");
    config.retention_interval = absl::ZeroDuration();
    config.privacy.body_mode = mode;
    absl::StatusOr<std::unique_ptr<Store>> s = OpenRocksStore(config, RealClock::Default());
    EXPECT_OK(s);
    return s.ok() ? *std::move(s) : nullptr;
  }
  TempDir dir_;
  const absl::Time t0_ = absl::FromUnixSeconds(1'800'000'000);
};

// Runs come back oldest first; a limit keeps the newest; `since` filters.
TEST_F(EvalRunsTest, ListsRunsByStartTime) {
  std::unique_ptr<Store> store = Open(BodyMode::kFull);
  ASSERT_NE(store, nullptr);
  for (int i : {2, 0, 1}) {
    ASSERT_OK(store->PutEvalRun(MakeRun(t0_ + absl::Hours(i), absl::StrCat("answer ", i))));
  }
  absl::StatusOr<std::vector<v1::EvalRun>> all = store->ListEvalRuns(absl::InfinitePast(), kNoLimit);
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].results(0).candidate().text(), "answer 0");
  EXPECT_EQ((*all)[2].results(0).candidate().text(), "answer 2");
  absl::StatusOr<std::vector<v1::EvalRun>> newest = store->ListEvalRuns(absl::InfinitePast(), 1);
  ASSERT_OK(newest);
  ASSERT_EQ(newest->size(), 1u);
  EXPECT_EQ((*newest)[0].start_unix_micros(), absl::ToUnixMicros(t0_ + absl::Hours(2)));
  absl::StatusOr<std::vector<v1::EvalRun>> recent =
      store->ListEvalRuns(t0_ + absl::Minutes(30), kNoLimit);
  ASSERT_OK(recent);
  EXPECT_EQ(recent->size(), 2u);
  // Hash and length are filled in for every answer.
  EXPECT_EQ((*all)[0].results(0).candidate().text_sha256(), Sha256Hex("answer 0"));
  EXPECT_EQ((*all)[0].results(0).candidate().text_length(), 8);
}

// In every mode but full the answer text is not stored; its hash and
// length are, so a later run can still compare.
TEST_F(EvalRunsTest, PrivacyModesKeepOnlyHashAndLength) {
  for (BodyMode mode : {BodyMode::kRedacted, BodyMode::kHashOnly, BodyMode::kNone}) {
    TempDir dir;
    StorageConfig config;
    config.path = dir.Sub("db");
    config.retention_interval = absl::ZeroDuration();
    config.privacy.body_mode = mode;
    absl::StatusOr<std::unique_ptr<Store>> store = OpenRocksStore(config, RealClock::Default());
    ASSERT_OK(store);
    ASSERT_OK((*store)->PutEvalRun(MakeRun(t0_, "the secret canary answer")));
    absl::StatusOr<std::vector<v1::EvalRun>> runs =
        (*store)->ListEvalRuns(absl::InfinitePast(), kNoLimit);
    ASSERT_OK(runs);
    ASSERT_EQ(runs->size(), 1u);
    const v1::EvalAnswer& a = (*runs)[0].results(0).candidate();
    EXPECT_EQ(a.text(), "");
    EXPECT_EQ(a.text_sha256(), Sha256Hex("the secret canary answer"));
    EXPECT_EQ(a.text_length(), 24);
    EXPECT_EQ((*runs)[0].SerializeAsString().find("canary"), std::string::npos);
  }
}

// A run without a start time is refused; the revisit state survives a
// reopen and is NotFound before it was ever saved.
TEST_F(EvalRunsTest, RevisitStateSurvivesReopenAndBadRunsAreRefused) {
  {
    std::unique_ptr<Store> store = Open(BodyMode::kFull);
    ASSERT_NE(store, nullptr);
    EXPECT_THAT(store->PutEvalRun(v1::EvalRun()),
                ::understudy::testing::StatusIs(absl::StatusCode::kInvalidArgument, "start time"));
    EXPECT_TRUE(absl::IsNotFound(store->LoadRevisitState().status()));
    v1::RevisitState st;
    st.set_price_fingerprint("abc");
    st.set_requests_per_hour(120);
    ASSERT_OK(store->SaveRevisitState(st));
    ASSERT_OK(store->PutEvalRun(MakeRun(t0_, "a")));
  }
  std::unique_ptr<Store> store = Open(BodyMode::kFull);
  ASSERT_NE(store, nullptr);
  absl::StatusOr<v1::RevisitState> st = store->LoadRevisitState();
  ASSERT_OK(st);
  EXPECT_EQ(st->price_fingerprint(), "abc");
  EXPECT_EQ(st->requests_per_hour(), 120);
  absl::StatusOr<std::vector<v1::EvalRun>> runs = store->ListEvalRuns(absl::InfinitePast(), 10);
  ASSERT_OK(runs);
  EXPECT_EQ(runs->size(), 1u);
}

}  // namespace
}  // namespace understudy::storage
