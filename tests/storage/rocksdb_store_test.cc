// RocksDB-specific tests: durability across reopen, retention, the size cap,
// privacy at rest, locking, corruption, I/O faults and read-only instances.
// Behaviour every Store shares (records, queries, rollout state, error codes)
// is in store_contract_test.cc.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <random>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "absl/strings/str_cat.h"
#include "rocksdb/db.h"
#include "rocksdb/file_system.h"
#include "storage/rocksdb_store.h"
#include "storage/store.h"
#include "tests/common/test_util.h"
#include "tests/storage/store_test_util.h"

namespace understudy::storage {
namespace {

using ::testing::HasSubstr;
using ::understudy::testing::StatusIs;

class RocksStoreTest : public ::testing::Test {
 protected:
  RocksStoreTest() {
    config_.path = dir_.Sub("db");
    config_.retention_interval = absl::ZeroDuration();
  }

  std::unique_ptr<Store> Open() {
    absl::StatusOr<std::unique_ptr<Store>> s = OpenRocksStore(config_, clock_);
    EXPECT_OK(s);
    return s.ok() ? *std::move(s) : nullptr;
  }

  // Reads every file under the database directory.
  std::string AllDbBytes() const {
    std::string all;
    for (const auto& entry : std::filesystem::recursive_directory_iterator(config_.path)) {
      if (!entry.is_regular_file()) continue;
      std::ifstream in(entry.path(), std::ios::binary);
      all.append(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    }
    return all;
  }

  TempDir dir_;
  ManualClock clock_;
  StorageConfig config_;
};

// A committed transition survives closing and reopening the database.
TEST_F(RocksStoreTest, CommitTransitionPersistsStateAndDecisionAcrossReopen) {
  v1::RolloutState state;
  state.set_phase(v1::PHASE_CANARY);
  state.set_stage_index(2);
  state.set_weight_basis_points(500);
  state.set_version(7);
  {
    auto store = Open();
    ASSERT_OK(store->CommitTransition(state, MakeDecision("gates passed", clock_.Now(), 7)));
  }
  auto store = Open();
  absl::StatusOr<v1::RolloutState> loaded = store->LoadRolloutState();
  ASSERT_OK(loaded);
  EXPECT_EQ(loaded->weight_basis_points(), 500);
  EXPECT_EQ(loaded->version(), 7);
  auto decisions = store->ListDecisions(absl::InfinitePast(), 10);
  ASSERT_OK(decisions);
  ASSERT_EQ(decisions->size(), 1u);
  EXPECT_EQ((*decisions)[0].reason(), "gates passed");
}

// Feedback stored before a restart and joined after it replaces itself
// under its first key (found through the index), and feedback retention
// still deletes the one record and its index entry.
TEST_F(RocksStoreTest, FeedbackRewrittenAfterReopenKeepsOneRecordThatRetentionDeletes) {
  v1::Feedback f;
  f.set_request_id("r1");
  f.set_score(0.5);
  f.set_time_unix_micros(absl::ToUnixMicros(clock_.Now()) + 777);
  { ASSERT_OK(Open()->PutFeedback(f)); }
  config_.retention.feedback_hours = 1;
  auto store = Open();
  f.set_arm(v1::ARM_CANDIDATE);
  ASSERT_OK(store->PutFeedback(f));
  absl::StatusOr<std::vector<v1::Feedback>> stored = store->FeedbackFor("r1");
  ASSERT_OK(stored);
  ASSERT_EQ(stored->size(), 1u);
  EXPECT_EQ((*stored)[0].arm(), v1::ARM_CANDIDATE);
  clock_.Advance(absl::Hours(2));
  ASSERT_OK(store->EnforceRetention());
  EXPECT_TRUE(store->FeedbackFor("r1")->empty());
  // Written again after retention removed it: a new record, not a stale key.
  ASSERT_OK(store->PutFeedback(f));
  EXPECT_EQ(store->FeedbackFor("r1")->size(), 1u);
}

// Old exchanges expire after their retention; decisions (0 = forever) stay.
TEST_F(RocksStoreTest, RetentionDeletesOldRecordsPerColumnFamily) {
  config_.retention.exchanges_hours = 24;
  config_.retention.comparisons_hours = 48;
  auto store = Open();
  const absl::Time t0 = clock_.Now();
  ASSERT_OK(store->PutExchange(MakeExchange("old", t0)));
  ASSERT_OK(store->PutComparison(MakeComparison("old", t0, v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION)));
  ASSERT_OK(store->AppendDecision(MakeDecision("ancient", t0, 1)));
  clock_.Advance(absl::Hours(30));
  ASSERT_OK(store->PutExchange(MakeExchange("new", clock_.Now())));
  ASSERT_OK(store->EnforceRetention());

  EXPECT_TRUE(store->GetExchanges("old")->empty());
  EXPECT_EQ(store->GetExchanges("new")->size(), 1u);
  EXPECT_OK(store->GetComparison("old"));  // 30h < 48h
  EXPECT_EQ(store->ListDecisions(absl::InfinitePast(), 10)->size(), 1u);
  EXPECT_EQ(store->Stats().retention_runs, 1);
}

// Over the size cap, the oldest bulk records go first; decisions never do.
TEST_F(RocksStoreTest, SizeCapTrimsOldestExchangesButKeepsDecisions) {
  config_.privacy.body_mode = BodyMode::kFull;
  config_.max_size_bytes = 256 * 1024;
  auto store = Open();
  ASSERT_OK(store->AppendDecision(MakeDecision("keep me", clock_.Now(), 1)));
  std::mt19937 rng(42);
  for (int b = 0; b < 20; ++b) {
    RecordBatch batch;
    for (int i = 0; i < 50; ++i) {
      v1::Exchange e = MakeExchange(absl::StrCat("r", b * 50 + i), clock_.Now());
      std::string body(1024, ' ');
      for (char& ch : body) ch = static_cast<char>('a' + rng() % 26);  // incompressible-ish
      e.mutable_request()->set_body(body);
      batch.Add(std::move(e));
      clock_.Advance(absl::Seconds(1));
    }
    ASSERT_OK(store->Write(std::move(batch)));
  }
  ASSERT_OK(store->EnforceRetention());
  EXPECT_GT(store->Stats().size_cap_trims, 0);
  EXPECT_TRUE(store->GetExchanges("r0")->empty());
  EXPECT_EQ(store->GetExchanges("r999")->size(), 1u);
  EXPECT_LT(store->ListExchanges(absl::InfinitePast(), kNoLimit)->size(), 1000u);
  EXPECT_EQ(store->ListDecisions(absl::InfinitePast(), 10)->size(), 1u);
}

// Exchanges carrying secrets are written; no secret appears in any DB file.
TEST_F(RocksStoreTest, SecretsNeverReachTheDatabaseFiles) {
  config_.privacy.body_mode = BodyMode::kRedacted;
  config_.privacy.redact_json_paths = {"api_key"};
  config_.privacy.secret_headers = {"x-custom-secret"};
  {
    auto store = Open();
    v1::Exchange e = MakeExchange("r", clock_.Now());
    auto add = [](v1::HttpMessage* m, const char* k, const char* v) {
      v1::Header* h = m->add_headers();
      h->set_key(k);
      h->set_value(v);
    };
    add(e.mutable_request(), "authorization", "Bearer SECRET-AUTH-111");
    add(e.mutable_request(), "Proxy-Authorization", "Basic SECRET-PROXY-222");
    add(e.mutable_request(), "cookie", "sid=SECRET-COOKIE-333");
    add(e.mutable_request(), "x-api-key", "SECRET-XKEY-444");
    add(e.mutable_request(), "api-key", "SECRET-AZURE-555");
    add(e.mutable_request(), "x-custom-secret", "SECRET-CUSTOM-666");
    add(e.mutable_request(), "x-visible", "VISIBLE-MARKER-777");
    add(e.mutable_response(), "set-cookie", "sid=SECRET-SETCOOKIE-888");
    e.mutable_request()->set_body(
        R"({"api_key":"SECRET-BODY-999","model":"VISIBLE-MODEL","prompt":"SECRET-PROMPT-000"})");
    ASSERT_OK(store->PutExchange(e));
  }
  // Raw bytes of the WAL, MANIFEST, SSTs and logs. The visible markers prove
  // the grep can see stored records at all.
  std::string bytes = AllDbBytes();
  EXPECT_THAT(bytes, HasSubstr("VISIBLE-MARKER-777"));
  EXPECT_THAT(bytes, HasSubstr("VISIBLE-MODEL"));
  // The prompt is content: redacted mode never keeps it (a built-in path).
  for (const char* secret : {"SECRET-PROMPT-000", "SECRET-AUTH-111", "SECRET-PROXY-222", "SECRET-COOKIE-333", "SECRET-XKEY-444",
                             "SECRET-AZURE-555", "SECRET-CUSTOM-666", "SECRET-SETCOOKIE-888",
                             "SECRET-BODY-999"}) {
    EXPECT_EQ(bytes.find(secret), std::string::npos) << secret << " found in the database files";
  }
}

// A second live instance on the same path is refused, naming the path.
TEST_F(RocksStoreTest, SecondInstanceOnSamePathIsRefused) {
  auto first = Open();
  absl::StatusOr<std::unique_ptr<Store>> second = OpenRocksStore(config_, clock_);
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kUnavailable, config_.path));
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kUnavailable, "locked"));
}

// A path under a regular file cannot be created: Unavailable with the path.
TEST_F(RocksStoreTest, UncreatableDirectoryIsUnavailable) {
  std::ofstream(dir_.Sub("file")) << "x";
  config_.path = dir_.Sub("file") + "/db";
  EXPECT_THAT(OpenRocksStore(config_, clock_), StatusIs(absl::StatusCode::kUnavailable, config_.path));
}

// A read-only directory is refused with the path (root ignores modes: skipped).
TEST_F(RocksStoreTest, ReadOnlyDirectoryIsUnavailable) {
  if (geteuid() == 0) GTEST_SKIP() << "root ignores directory permissions";
  std::filesystem::create_directories(config_.path);
  chmod(config_.path.c_str(), 0555);
  EXPECT_THAT(OpenRocksStore(config_, clock_), StatusIs(absl::StatusCode::kUnavailable, config_.path));
  chmod(config_.path.c_str(), 0755);
}

// A garbled CURRENT file is DataLoss naming the path, not a crash.
TEST_F(RocksStoreTest, CorruptDatabaseIsDataLoss) {
  { Open(); }
  std::ofstream(config_.path + "/CURRENT", std::ios::trunc) << "garbage-without-newline";
  EXPECT_THAT(OpenRocksStore(config_, clock_), StatusIs(absl::StatusCode::kDataLoss, config_.path));
}

// A stored record that does not parse is DataLoss when read.
TEST_F(RocksStoreTest, CorruptRecordIsDataLoss) {
  { Open(); }
  {
    rocksdb::Options options;
    std::vector<std::string> names;
    ASSERT_TRUE(rocksdb::DB::ListColumnFamilies(options, config_.path, &names).ok());
    std::vector<rocksdb::ColumnFamilyDescriptor> descs;
    for (const auto& n : names) descs.emplace_back(n, rocksdb::ColumnFamilyOptions());
    std::vector<rocksdb::ColumnFamilyHandle*> handles;
    rocksdb::DB* raw = nullptr;
    ASSERT_TRUE(rocksdb::DB::Open(options, config_.path, descs, &handles, &raw).ok());
    std::unique_ptr<rocksdb::DB> db(raw);
    for (size_t i = 0; i < names.size(); ++i) {
      if (names[i] == "rollout") {
        ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), handles[i], "current", "\xff\xff\xff").ok());
      }
    }
    for (auto* h : handles) db->DestroyColumnFamilyHandle(h);
  }
  auto store = Open();
  EXPECT_THAT(store->LoadRolloutState(), StatusIs(absl::StatusCode::kDataLoss, "corrupt"));
}

// A FileSystem whose writable files fail with "no space" on demand.
class FullDiskFs : public rocksdb::FileSystemWrapper {
 public:
  explicit FullDiskFs(std::shared_ptr<rocksdb::FileSystem> target) : FileSystemWrapper(target) {}
  const char* Name() const override { return "FullDiskFs"; }

  class File : public rocksdb::FSWritableFileOwnerWrapper {
   public:
    File(std::unique_ptr<rocksdb::FSWritableFile>&& f, const std::atomic<bool>* full)
        : FSWritableFileOwnerWrapper(std::move(f)), full_(full) {}
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             rocksdb::IODebugContext* d) override {
      if (full_->load()) return rocksdb::IOStatus::NoSpace("injected: No space left on device");
      return target()->Append(data, o, d);
    }
    rocksdb::IOStatus Append(const rocksdb::Slice& data, const rocksdb::IOOptions& o,
                             const rocksdb::DataVerificationInfo& v, rocksdb::IODebugContext* d) override {
      if (full_->load()) return rocksdb::IOStatus::NoSpace("injected: No space left on device");
      return target()->Append(data, o, v, d);
    }

   private:
    const std::atomic<bool>* full_;
  };

  rocksdb::IOStatus NewWritableFile(const std::string& f, const rocksdb::FileOptions& o,
                                    std::unique_ptr<rocksdb::FSWritableFile>* r,
                                    rocksdb::IODebugContext* d) override {
    rocksdb::IOStatus s = target()->NewWritableFile(f, o, r, d);
    if (s.ok()) *r = std::make_unique<File>(std::move(*r), &full);
    return s;
  }

  std::atomic<bool> full{false};
};

// A full disk makes writes fail with Unavailable and the path; what was
// acknowledged before is still readable.
TEST_F(RocksStoreTest, FullDiskFailsWritesWithUnavailable) {
  auto fs = std::make_shared<FullDiskFs>(rocksdb::FileSystem::Default());
  std::unique_ptr<rocksdb::Env> env = rocksdb::NewCompositeEnv(fs);
  absl::StatusOr<std::unique_ptr<Store>> store = OpenRocksStoreWithEnvForTest(config_, clock_, env.get());
  ASSERT_OK(store);
  ASSERT_OK((*store)->AppendDecision(MakeDecision("before", clock_.Now(), 1)));
  fs->full = true;
  absl::Status s = (*store)->AppendDecision(MakeDecision("during", clock_.Now(), 2));
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, config_.path));
  EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable, "disk full"));
  EXPECT_EQ((*store)->Stats().write_failures, 1);
  auto decisions = (*store)->ListDecisions(absl::InfinitePast(), 10);
  ASSERT_OK(decisions);
  ASSERT_GE(decisions->size(), 1u);
  EXPECT_EQ((*decisions)[0].reason(), "before");
  store->reset();
  fs->full = false;
  auto reopened = Open();
  auto after = reopened->ListDecisions(absl::InfinitePast(), 10);
  ASSERT_OK(after);
  ASSERT_EQ(after->size(), 1u);
  EXPECT_EQ((*after)[0].reason(), "before");
}

// A read-only secondary sees the primary's writes, including later ones, and
// refuses to write.
TEST_F(RocksStoreTest, ReadOnlyInstanceReadsARunningPrimary) {
  auto primary = Open();
  ASSERT_OK(primary->AppendDecision(MakeDecision("one", clock_.Now(), 1)));
  absl::StatusOr<std::unique_ptr<Store>> reader = OpenRocksStoreReadOnly(config_.path);
  ASSERT_OK(reader);
  EXPECT_EQ((*reader)->ListDecisions(absl::InfinitePast(), 10)->size(), 1u);
  ASSERT_OK(primary->AppendDecision(MakeDecision("two", clock_.Now(), 2)));
  EXPECT_EQ((*reader)->ListDecisions(absl::InfinitePast(), 10)->size(), 2u);
  EXPECT_THAT((*reader)->AppendDecision(MakeDecision("x", clock_.Now(), 3)),
              StatusIs(absl::StatusCode::kFailedPrecondition, "read-only"));
  EXPECT_THAT(OpenRocksStoreReadOnly(dir_.Sub("missing")),
              StatusIs(absl::StatusCode::kNotFound, dir_.Sub("missing")));
}

}  // namespace
}  // namespace understudy::storage

namespace understudy::storage {
namespace {

// A disk with less free space than storage.min_free_mb refuses writes
// before RocksDB sees them (RocksDB cannot always recover from running out
// of space mid-write), says so, and takes writes again when space returns.
TEST(RocksStoreSpaceTest, ANearlyFullDiskRefusesWritesAndTheStoreComesBack) {
  TempDir dir;
  ManualClock clock;
  StorageConfig config;
  config.path = dir.Sub("db");
  config.retention_interval = absl::ZeroDuration();
  config.min_free_bytes = int64_t{1} << 60;  // more than any disk has: "full"
  absl::StatusOr<std::unique_ptr<Store>> store = OpenRocksStore(config, clock);
  ASSERT_OK(store);
  v1::RolloutState state;
  state.set_version(1);
  EXPECT_THAT((*store)->SaveRolloutState(state),
              StatusIs(absl::StatusCode::kUnavailable, "disk full"));
  EXPECT_TRUE((*store)->Stats().failing);
  EXPECT_EQ((*store)->Stats().write_failures, 1);
  store->reset();

  config.min_free_bytes = 1;  // space returned
  store = OpenRocksStore(config, clock);
  ASSERT_OK(store);
  ASSERT_OK((*store)->SaveRolloutState(state));
  EXPECT_FALSE((*store)->Stats().failing);
  absl::StatusOr<v1::RolloutState> back = (*store)->LoadRolloutState();
  ASSERT_OK(back);
  EXPECT_EQ(back->version(), 1);
}

}  // namespace
}  // namespace understudy::storage
