// Tests for the RocksDB store: records, queries, durability APIs, retention,
// the size cap, privacy at rest and failure behaviour.
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

using ::testing::ElementsAre;
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

std::vector<std::string> Ids(const std::vector<v1::Comparison>& cs) {
  std::vector<std::string> out;
  for (const auto& c : cs) out.push_back(c.request_id());
  return out;
}

// A fresh database has no rollout state: the controller must start from its plan.
TEST_F(RocksStoreTest, LoadRolloutStateIsNotFoundOnFirstStart) {
  auto store = Open();
  EXPECT_THAT(store->LoadRolloutState(), StatusIs(absl::StatusCode::kNotFound, "rollout state"));
}

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

// Decisions appended in the same millisecond keep their order; since filters.
TEST_F(RocksStoreTest, DecisionsListInAppendOrderAndFilterBySince) {
  auto store = Open();
  ASSERT_OK(store->AppendDecision(MakeDecision("a", clock_.Now(), 1)));
  ASSERT_OK(store->AppendDecision(MakeDecision("b", clock_.Now(), 2)));
  clock_.Advance(absl::Minutes(1));
  v1::Decision unstamped = MakeDecision("c", absl::UnixEpoch(), 3);
  unstamped.clear_time_unix_micros();  // gets the clock's time
  ASSERT_OK(store->AppendDecision(unstamped));
  auto all = store->ListDecisions(absl::InfinitePast(), 10);
  ASSERT_OK(all);
  ASSERT_EQ(all->size(), 3u);
  EXPECT_EQ((*all)[0].reason(), "a");
  EXPECT_EQ((*all)[1].reason(), "b");
  EXPECT_EQ((*all)[2].time_unix_micros(), absl::ToUnixMicros(clock_.Now()));
  auto recent = store->ListDecisions(clock_.Now() - absl::Seconds(1), 10);
  ASSERT_OK(recent);
  ASSERT_EQ(recent->size(), 1u);
  EXPECT_EQ((*recent)[0].reason(), "c");
  EXPECT_EQ(store->ListDecisions(absl::InfinitePast(), 2)->size(), 2u);
}

// Live and shadow exchanges of one request are both kept and found by id.
TEST_F(RocksStoreTest, GetExchangesFindsEveryArmOfARequest) {
  auto store = Open();
  v1::Exchange live = MakeExchange("req-1", clock_.Now());
  v1::Exchange shadow = MakeExchange("req-1", clock_.Now());
  shadow.set_arm(v1::ARM_CANDIDATE);
  shadow.set_source(v1::SOURCE_SHADOW);
  ASSERT_OK(store->PutExchanges({live, shadow, MakeExchange("req-2", clock_.Now())}));
  auto found = store->GetExchanges("req-1");
  ASSERT_OK(found);
  ASSERT_EQ(found->size(), 2u);
  EXPECT_NE((*found)[0].arm(), (*found)[1].arm());
  EXPECT_TRUE(store->GetExchanges("nope")->empty());
  EXPECT_EQ(store->ListExchanges(absl::InfinitePast(), 10)->size(), 3u);
  EXPECT_EQ(store->Stats().records_written, 3);
}

// ListComparisons filters by time, verdict and live arm, both directions.
TEST_F(RocksStoreTest, ListComparisonsFiltersByVerdictArmAndTime) {
  auto store = Open();
  const absl::Time t0 = clock_.Now();
  RecordBatch batch;
  batch.Add(MakeComparison("a", t0, v1::VERDICT_EQUIVALENT, v1::ARM_PRODUCTION));
  batch.Add(MakeComparison("b", t0 + absl::Seconds(1), v1::VERDICT_MAJOR_DIFF, v1::ARM_PRODUCTION));
  batch.Add(MakeComparison("c", t0 + absl::Seconds(2), v1::VERDICT_MAJOR_DIFF, v1::ARM_CANDIDATE));
  batch.Add(MakeComparison("d", t0 + absl::Seconds(3), v1::VERDICT_MINOR_DIFF, v1::ARM_PRODUCTION));
  ASSERT_OK(store->Write(std::move(batch)));

  ComparisonQuery q;
  EXPECT_THAT(Ids(*store->ListComparisons(q)), ElementsAre("a", "b", "c", "d"));
  q.verdicts = {v1::VERDICT_MAJOR_DIFF, v1::VERDICT_MINOR_DIFF};
  EXPECT_THAT(Ids(*store->ListComparisons(q)), ElementsAre("b", "c", "d"));
  q.live_arm = v1::ARM_PRODUCTION;
  EXPECT_THAT(Ids(*store->ListComparisons(q)), ElementsAre("b", "d"));
  q = ComparisonQuery();
  q.since = t0 + absl::Seconds(1);
  q.until = t0 + absl::Seconds(2);
  EXPECT_THAT(Ids(*store->ListComparisons(q)), ElementsAre("b", "c"));
  q = ComparisonQuery();
  q.newest_first = true;
  q.limit = 2;
  EXPECT_THAT(Ids(*store->ListComparisons(q)), ElementsAre("d", "c"));
  q.until = t0 + absl::Seconds(2);
  EXPECT_THAT(Ids(*store->ListComparisons(q)), ElementsAre("c", "b"));
  absl::StatusOr<v1::Comparison> c = store->GetComparison("c");
  ASSERT_OK(c);
  EXPECT_EQ(c->live_arm(), v1::ARM_CANDIDATE);
  EXPECT_THAT(store->GetComparison("zz"), StatusIs(absl::StatusCode::kNotFound, "zz"));
}

// Two ratings of one request (even in the same millisecond) are both kept.
TEST_F(RocksStoreTest, FeedbackForReturnsEveryRating) {
  auto store = Open();
  v1::Feedback f;
  f.set_request_id("r");
  f.set_score(1);
  ASSERT_OK(store->PutFeedback(f));
  f.set_score(0);
  ASSERT_OK(store->PutFeedback(f));
  auto fb = store->FeedbackFor("r");
  ASSERT_OK(fb);
  ASSERT_EQ(fb->size(), 2u);
  EXPECT_EQ((*fb)[0].score(), 1);
  EXPECT_EQ((*fb)[1].score(), 0);
  EXPECT_TRUE(store->FeedbackFor("other")->empty());
}

// Health snapshots come back as a time series from `since`.
TEST_F(RocksStoreTest, HealthSeriesIsATimeRangeScan) {
  auto store = Open();
  for (int i = 0; i < 5; ++i) {
    v1::HealthSnapshot h;
    h.set_time_unix_micros(absl::ToUnixMicros(clock_.Now() + absl::Minutes(i)));
    h.mutable_candidate()->set_requests(i);
    ASSERT_OK(store->PutHealth(h));
  }
  auto series = store->HealthSeries(clock_.Now() + absl::Minutes(2));
  ASSERT_OK(series);
  ASSERT_EQ(series->size(), 3u);
  EXPECT_EQ((*series)[0].candidate().requests(), 2);
}

// A request id with a NUL byte would break the key layout: rejected.
TEST_F(RocksStoreTest, RejectsRequestIdWithNul) {
  auto store = Open();
  EXPECT_THAT(store->PutExchange(MakeExchange(std::string("a\0b", 3), clock_.Now())),
              StatusIs(absl::StatusCode::kInvalidArgument, "NUL"));
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
    e.mutable_request()->set_body(R"({"api_key":"SECRET-BODY-999","prompt":"VISIBLE-PROMPT"})");
    ASSERT_OK(store->PutExchange(e));
  }
  // Raw bytes of the WAL, MANIFEST, SSTs and logs. The visible markers prove
  // the grep can see stored records at all.
  std::string bytes = AllDbBytes();
  EXPECT_THAT(bytes, HasSubstr("VISIBLE-MARKER-777"));
  EXPECT_THAT(bytes, HasSubstr("VISIBLE-PROMPT"));
  for (const char* secret : {"SECRET-AUTH-111", "SECRET-PROXY-222", "SECRET-COOKIE-333", "SECRET-XKEY-444",
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
