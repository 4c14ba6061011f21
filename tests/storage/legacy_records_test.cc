// Records written before Decision.action and Feedback.source became enums
// (their text was in fields 2 and 5) read back upgraded: the enum set and
// the text cleared.
#include <memory>
#include <string>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "rocksdb/db.h"
#include "storage/rocksdb_store.h"
#include "storage/store.h"
#include "tests/common/test_util.h"
#include "tests/storage/store_test_util.h"

namespace understudy::storage {
namespace {

// StringField is one string field in protobuf wire format (field number
// below 16, value shorter than 128 bytes): what the old schema wrote.
std::string StringField(int number, const std::string& value) {
  std::string out;
  out.push_back(static_cast<char>(number << 3 | 2));  // wire type 2: length-delimited
  out.push_back(static_cast<char>(value.size()));
  return out + value;
}

class LegacyRecordsTest : public ::testing::Test {
 protected:
  LegacyRecordsTest() {
    config_.path = dir_.Sub("db");
    config_.retention_interval = absl::ZeroDuration();
  }

  std::unique_ptr<Store> Open() {
    absl::StatusOr<std::unique_ptr<Store>> s = OpenRocksStore(config_, clock_);
    EXPECT_OK(s);
    return s.ok() ? *std::move(s) : nullptr;
  }

  // RewriteRecords replaces the value of every record in column family
  // `cf` with `value` (the store must be closed), keeping the keys and
  // the index.
  void RewriteRecords(const std::string& cf, const std::string& value) {
    rocksdb::Options options;
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(options, config_.path, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> descs;
    for (const auto& n : names) descs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, config_.path, descs, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    int rewritten = 0;
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] != cf) continue;
      std::vector<std::string> keys;
      std::unique_ptr<rocksdb::Iterator> it(db->NewIterator(rocksdb::ReadOptions(), handles[i]));
      for (it->SeekToFirst(); it->Valid(); it->Next()) keys.push_back(it->key().ToString());
      for (const std::string& key : keys) {
        ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[i], key, value).ok());
        ++rewritten;
      }
    }
    EXPECT_GT(rewritten, 0) << cf;
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  }

  TempDir dir_;
  ManualClock clock_;
  StorageConfig config_;
};

// A decision stored with its action as text in field 2 reads back with the
// enum, from the decision log and from an export scan alike.
TEST_F(LegacyRecordsTest, OldDecisionReadsBackWithTheActionEnum) {
  v1::Decision current = MakeDecision("gate failed: error_rate", clock_.Now(), 4);
  current.clear_action();
  { ASSERT_OK(Open()->AppendDecision(current)); }
  RewriteRecords("decisions", current.SerializeAsString() + StringField(2, "rollback"));

  auto store = Open();
  absl::StatusOr<std::vector<v1::Decision>> decisions =
      store->ListDecisions(absl::InfinitePast(), 10);
  ASSERT_OK(decisions);
  ASSERT_EQ(decisions->size(), 1u);
  const v1::Decision& d = (*decisions)[0];
  EXPECT_EQ(d.action(), v1::ACTION_ROLLBACK);
  EXPECT_EQ(d.reason(), "gate failed: error_rate");
  EXPECT_EQ(d.to().version(), 4);
  // The text is gone: re-serialised, the record is in the new format.
  v1::Decision expected = current;
  expected.set_action(v1::ACTION_ROLLBACK);
  EXPECT_EQ(d.SerializeAsString(), expected.SerializeAsString());

  std::vector<v1::DecisionAction> scanned;
  ASSERT_OK(store->Visit(RecordKind::kDecisions, absl::InfinitePast(),
                         [&](const google::protobuf::Message& m) {
                           scanned.push_back(static_cast<const v1::Decision&>(m).action());
                           return true;
                         }));
  EXPECT_THAT(scanned, ::testing::ElementsAre(v1::ACTION_ROLLBACK));
}

// Every action word the old schema wrote maps to its enum.
TEST_F(LegacyRecordsTest, EveryOldActionWordIsUpgraded) {
  const std::vector<std::pair<std::string, v1::DecisionAction>> cases = {
      {"promote", v1::ACTION_PROMOTE}, {"rollback", v1::ACTION_ROLLBACK},
      {"pause", v1::ACTION_PAUSE},     {"resume", v1::ACTION_RESUME},
      {"set_weight", v1::ACTION_SET_WEIGHT}, {"hold", v1::ACTION_HOLD}};
  v1::Decision current = MakeDecision("r", clock_.Now(), 1);
  current.clear_action();
  { ASSERT_OK(Open()->AppendDecision(current)); }
  for (const auto& [word, action] : cases) {
    RewriteRecords("decisions", current.SerializeAsString() + StringField(2, word));
    auto decisions = Open()->ListDecisions(absl::InfinitePast(), 10);
    ASSERT_OK(decisions);
    ASSERT_EQ(decisions->size(), 1u);
    EXPECT_EQ((*decisions)[0].action(), action) << word;
  }
}

// Text that names no action is kept as it was rather than guessed at.
TEST_F(LegacyRecordsTest, UnknownOldActionIsKept) {
  v1::Decision current = MakeDecision("r", clock_.Now(), 1);
  current.clear_action();
  { ASSERT_OK(Open()->AppendDecision(current)); }
  const std::string old = current.SerializeAsString() + StringField(2, "reticulate");
  RewriteRecords("decisions", old);
  auto decisions = Open()->ListDecisions(absl::InfinitePast(), 10);
  ASSERT_OK(decisions);
  ASSERT_EQ(decisions->size(), 1u);
  EXPECT_EQ((*decisions)[0].action(), v1::ACTION_UNSPECIFIED);
  v1::Decision as_stored;
  ASSERT_TRUE(as_stored.ParseFromString(old));
  EXPECT_EQ((*decisions)[0].SerializeAsString(), as_stored.SerializeAsString());
}

// Feedback stored with its source as text in field 5 reads back with the enum.
TEST_F(LegacyRecordsTest, OldFeedbackReadsBackWithTheSourceEnum) {
  v1::Feedback current;
  current.set_request_id("req-1");
  current.set_score(0.75);
  current.set_time_unix_micros(absl::ToUnixMicros(clock_.Now()));
  { ASSERT_OK(Open()->PutFeedback(current)); }
  for (const auto& [word, source] :
       std::vector<std::pair<std::string, v1::FeedbackSource>>{
           {"envoy", v1::FEEDBACK_SOURCE_ENVOY}, {"admin", v1::FEEDBACK_SOURCE_ADMIN}}) {
    RewriteRecords("feedback", current.SerializeAsString() + StringField(5, word));
    auto store = Open();
    absl::StatusOr<std::vector<v1::Feedback>> fb = store->FeedbackFor("req-1");
    ASSERT_OK(fb);
    ASSERT_EQ(fb->size(), 1u);
    EXPECT_EQ((*fb)[0].source(), source) << word;
    EXPECT_EQ((*fb)[0].score(), 0.75);
    v1::Feedback expected = current;
    expected.set_source(source);
    EXPECT_EQ((*fb)[0].SerializeAsString(), expected.SerializeAsString()) << word;
  }
}

}  // namespace
}  // namespace understudy::storage
