// Tests for ExportJsonl: one protobuf-JSON object per line, filtered by time.
#include <google/protobuf/util/json_util.h>

#include <sstream>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_split.h"
#include "storage/store.h"
#include "tests/common/test_util.h"
#include "tests/storage/store_test_util.h"

namespace understudy::storage {
namespace {

class ExportTest : public ::testing::Test {
 protected:
  ExportTest() {
    config_.path = dir_.Sub("db");
    config_.retention_interval = absl::ZeroDuration();
  }
  TempDir dir_;
  ManualClock clock_;
  StorageConfig config_;
};

// Comparisons since a time come out as parseable JSON lines, oldest first.
TEST_F(ExportTest, WritesOneJsonObjectPerLineSinceTheGivenTime) {
  {
    absl::StatusOr<std::unique_ptr<Store>> store = OpenRocksStore(config_, clock_);
    ASSERT_OK(store);
    const absl::Time t0 = clock_.Now();
    ASSERT_OK((*store)->PutComparisons(
        {MakeComparison("old", t0 - absl::Hours(2), v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION),
         MakeComparison("a", t0, v1::VERDICT_MAJOR_DIFF, v1::ARM_PRODUCTION),
         MakeComparison("b", t0 + absl::Seconds(1), v1::VERDICT_MINOR_DIFF, v1::ARM_CANDIDATE)}));
  }
  // Export runs against the stopped store's directory, read-only.
  absl::StatusOr<std::unique_ptr<Store>> reader = OpenRocksStoreReadOnly(config_.path);
  ASSERT_OK(reader);
  std::ostringstream out;
  absl::StatusOr<int64_t> n =
      ExportJsonl(**reader, RecordKind::kComparisons, clock_.Now() - absl::Hours(1), out);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 2);
  std::vector<std::string> lines = absl::StrSplit(out.str(), '\n', absl::SkipEmpty());
  ASSERT_EQ(lines.size(), 2u);
  v1::Comparison c;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(lines[0], &c).ok()) << lines[0];
  EXPECT_EQ(c.request_id(), "a");
  EXPECT_EQ(c.verdict(), v1::VERDICT_MAJOR_DIFF);
  EXPECT_THAT(lines[1], ::testing::HasSubstr("\"requestId\":\"b\""));
}

// An empty kind exports nothing and succeeds.
TEST_F(ExportTest, EmptyKindExportsNothing) {
  absl::StatusOr<std::unique_ptr<Store>> store = OpenRocksStore(config_, clock_);
  ASSERT_OK(store);
  std::ostringstream out;
  absl::StatusOr<int64_t> n = ExportJsonl(**store, RecordKind::kFeedback, absl::InfinitePast(), out);
  ASSERT_OK(n);
  EXPECT_EQ(*n, 0);
  EXPECT_TRUE(out.str().empty());
}

}  // namespace
}  // namespace understudy::storage
