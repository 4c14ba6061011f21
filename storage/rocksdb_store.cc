// The RocksDB-backed Store: one database, one column family per record kind
// plus `index` (request id → primary key) for lookups by request id.
#include "storage/rocksdb_store.h"

#include <sys/statvfs.h>

#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "rocksdb/cache.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/table.h"
#include "rocksdb/write_batch.h"
#include "rollout/rollout.h"
#include "storage/keys.h"
#include "storage/privacy.h"

namespace understudy::storage {
namespace {

constexpr char kCfExchanges[] = "exchanges";
constexpr char kCfComparisons[] = "comparisons";
constexpr char kCfFeedback[] = "feedback";
constexpr char kCfRollout[] = "rollout";
constexpr char kCfDecisions[] = "decisions";
constexpr char kCfHealth[] = "health";
constexpr char kCfIndex[] = "index";
constexpr char kCfEvals[] = "evals";
constexpr char kStateKey[] = "current";
constexpr char kEvidenceKey[] = "evidence";
constexpr char kRevisitKey[] = "revisit";

const std::vector<std::string>& OurColumnFamilies() {
  static const auto* names = new std::vector<std::string>{
      rocksdb::kDefaultColumnFamilyName, kCfExchanges, kCfComparisons, kCfFeedback,
      kCfRollout, kCfDecisions, kCfHealth, kCfIndex, kCfEvals};
  return *names;
}

bool Contains(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

// FromRocks maps a RocksDB status onto the storage error protocol, always
// naming the database path.
absl::Status FromRocks(const rocksdb::Status& s, const std::string& path, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string detail = s.ToString();
  std::string prefix = absl::StrCat("storage: ", path, ": ", Av(what), ": ");
  if (s.IsCorruption()) {
    return absl::DataLossError(absl::StrCat(prefix, "database is corrupt: ", detail));
  }
  if (s.IsNotFound()) return absl::NotFoundError(absl::StrCat(prefix, detail));
  if (s.IsNoSpace() || Contains(detail, "No space left")) {
    return absl::UnavailableError(absl::StrCat(prefix, "disk full: ", detail));
  }
  if (s.IsIOError() && (Contains(detail, "lock") || Contains(detail, "LOCK"))) {
    return absl::UnavailableError(absl::StrCat(
        prefix, "database is locked by another live process (one sidecar per data directory): ",
        detail));
  }
  if (s.IsInvalidArgument() || s.IsNotSupported()) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, detail));
  }
  return absl::UnavailableError(absl::StrCat(prefix, detail));
}

int64_t NowMicros(Clock& clock) { return absl::ToUnixMicros(clock.Now()); }

// UpgradeLegacyFields brings a record written by an earlier version up to
// the current schema: decisions and feedback kept their action and source
// as text (now the deprecated legacy_action and legacy_source) before the
// enums. When the enum is unset and the text names a known value, the enum
// is set and the text cleared; unknown text is left as it was. Other
// records have nothing to upgrade.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
void UpgradeLegacyFields(v1::Decision* d) {
  if (d->action() != v1::ACTION_UNSPECIFIED || d->legacy_action().empty()) return;
  for (int i = v1::DecisionAction_MIN; i <= v1::DecisionAction_MAX; ++i) {
    const auto action = static_cast<v1::DecisionAction>(i);
    if (!v1::DecisionAction_IsValid(i) || action == v1::ACTION_UNSPECIFIED) continue;
    if (rollout::DecisionActionName(action) == d->legacy_action()) {
      d->set_action(action);
      d->clear_legacy_action();
      return;
    }
  }
}

void UpgradeLegacyFields(v1::Feedback* f) {
  if (f->source() != v1::FEEDBACK_SOURCE_UNSPECIFIED || f->legacy_source().empty()) return;
  // The only two values ever written.
  if (f->legacy_source() == "admin") f->set_source(v1::FEEDBACK_SOURCE_ADMIN);
  if (f->legacy_source() == "envoy") f->set_source(v1::FEEDBACK_SOURCE_ENVOY);
  if (f->source() != v1::FEEDBACK_SOURCE_UNSPECIFIED) f->clear_legacy_source();
}
#pragma GCC diagnostic pop

template <typename M>
void UpgradeLegacyFields(M*) {}

// ParseRecord parses a stored record and upgrades it to the current schema.
template <typename M>
absl::Status ParseRecord(const rocksdb::Slice& value, std::string_view cf, M* out) {
  if (!out->ParseFromArray(value.data(), static_cast<int>(value.size()))) {
    return absl::DataLossError(
        absl::StrCat("storage: corrupt ", Av(cf), " record (", value.size(), " bytes)"));
  }
  UpgradeLegacyFields(out);
  return absl::OkStatus();
}

absl::Status CheckRequestId(std::string_view id) {
  if (id.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("storage: request id contains a NUL byte");
  }
  return absl::OkStatus();
}

class RocksStore final : public Store {
 public:
  RocksStore(const StorageConfig& config, Clock* clock, bool read_only)
      : config_(config), clock_(clock), read_only_(read_only) {}

  ~RocksStore() override {
    {
      absl::MutexLock lock(&bg_mu_);
      stop_ = true;
    }
    if (bg_.joinable()) bg_.join();
    if (db_ != nullptr) {
      for (rocksdb::ColumnFamilyHandle* h : handles_) db_->DestroyColumnFamilyHandle(h);
      handles_.clear();
      db_->Close().PermitUncheckedError();
      db_.reset();
    }
    if (!secondary_dir_.empty()) {
      std::error_code ec;
      std::filesystem::remove_all(secondary_dir_, ec);
    }
  }

  absl::Status Open(rocksdb::Env* env) {
    const std::string& path = config_.path;
    if (path.empty()) return absl::InvalidArgumentError("storage: path must not be empty");
    ASSIGN_OR_RETURN(scrubber_, Scrubber::Create(config_.privacy));
    rocksdb::Options options;
    if (env != nullptr) options.env = env;
    options.keep_log_file_num = 3;
    options.max_log_file_size = 8 << 20;
    // Bounded memory: memtables of every column family together stay under
    // 32 MiB (RocksDB's default is 64 MiB per family, and there are eight),
    // so the sidecar's RSS levels off under steady load (bench/soak).
    options.write_buffer_size = 8 << 20;
    options.db_write_buffer_size = 32 << 20;
    // And whatever the database's size (retention may keep gigabytes): the
    // tables' index and filter blocks live in one 16 MiB block cache rather
    // than resident per table file, and at most 256 table files are open.
    rocksdb::BlockBasedTableOptions table;
    table.block_cache = rocksdb::NewLRUCache(size_t{16} << 20);
    table.cache_index_and_filter_blocks = true;
    table.pin_l0_filter_and_index_blocks_in_cache = true;
    options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    options.max_open_files = 256;

    std::error_code ec;
    if (read_only_) {
      if (!std::filesystem::exists(std::filesystem::path(path) / "CURRENT", ec)) {
        return absl::NotFoundError(absl::StrCat("storage: no database at ", path));
      }
      std::string tmpl = (std::filesystem::temp_directory_path(ec) / "understudy-secondary-XXXXXX").string();
      if (mkdtemp(tmpl.data()) == nullptr) {
        return absl::UnavailableError(absl::StrCat("storage: cannot create a secondary directory for ", path));
      }
      secondary_dir_ = tmpl;
      options.max_open_files = -1;  // required by secondary instances
    } else {
      std::filesystem::create_directories(path, ec);
      if (ec) {
        return absl::UnavailableError(
            absl::StrCat("storage: cannot create database directory ", path, ": ", ec.message()));
      }
      if (access(path.c_str(), W_OK | X_OK) != 0) {
        return absl::UnavailableError(
            absl::StrCat("storage: database directory ", path, " is not writable"));
      }
      options.create_if_missing = true;
      options.create_missing_column_families = true;
    }

    // Open every column family on disk (a newer version may have added some)
    // plus ours.
    std::vector<std::string> names;
    rocksdb::Status list = rocksdb::DB::ListColumnFamilies(options, path, &names);
    if (!list.ok()) names.clear();
    for (const std::string& n : OurColumnFamilies()) {
      if (std::find(names.begin(), names.end(), n) == names.end()) names.push_back(n);
    }
    std::vector<rocksdb::ColumnFamilyDescriptor> descriptors;
    for (const std::string& n : names) {
      descriptors.emplace_back(n, rocksdb::ColumnFamilyOptions(options));
    }
    rocksdb::DB* raw = nullptr;
    rocksdb::Status s;
    if (read_only_) {
      // A secondary cannot create missing column families: open only those
      // that exist (an old database may lack some; reads of those are empty).
      std::vector<std::string> on_disk;
      RETURN_IF_ERROR(FromRocks(rocksdb::DB::ListColumnFamilies(options, path, &on_disk), path,
                                "list column families"));
      std::vector<rocksdb::ColumnFamilyDescriptor> existing;
      for (const auto& d : descriptors) {
        if (std::find(on_disk.begin(), on_disk.end(), d.name) != on_disk.end()) existing.push_back(d);
      }
      descriptors = existing;
      s = rocksdb::DB::OpenAsSecondary(options, path, secondary_dir_, descriptors, &handles_, &raw);
    } else {
      s = rocksdb::DB::Open(options, path, descriptors, &handles_, &raw);
    }
    db_.reset(raw);
    RETURN_IF_ERROR(FromRocks(s, path, "open"));
    if (read_only_) {
      RETURN_IF_ERROR(FromRocks(db_->TryCatchUpWithPrimary(), path, "catch up with primary"));
    }
    for (size_t i = 0; i < descriptors.size(); ++i) {
      const std::string& n = descriptors[i].name;
      rocksdb::ColumnFamilyHandle* h = handles_[i];
      if (n == kCfExchanges) exchanges_ = h;
      if (n == kCfComparisons) comparisons_ = h;
      if (n == kCfFeedback) feedback_ = h;
      if (n == kCfRollout) rollout_ = h;
      if (n == kCfDecisions) decisions_ = h;
      if (n == kCfHealth) health_ = h;
      if (n == kCfIndex) index_ = h;
      if (n == kCfEvals) evals_ = h;
    }
    // Sequence numbers only need to be unique within a millisecond; start
    // after the largest one on disk.
    uint64_t max_seq = 0;
    for (rocksdb::ColumnFamilyHandle* h : {decisions_, health_, feedback_}) {
      if (h == nullptr) continue;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), h));
      it->SeekToLast();
      if (it->Valid()) max_seq = std::max(max_seq, keys::KeySequence(Sv(ToAbsl(it->key()))));
      RETURN_IF_ERROR(FromRocks(it->status(), path, "read sequence"));
    }
    seq_.store(max_seq + 1);
    if (!read_only_ && config_.retention_interval > absl::ZeroDuration()) {
      bg_ = std::thread([this] { BackgroundLoop(); });
    }
    return absl::OkStatus();
  }

  // ------------------------------------------------------------ writes --

  absl::Status Write(RecordBatch batch) override {
    RETURN_IF_ERROR(CheckWritable());
    if (batch.empty()) return absl::OkStatus();
    rocksdb::WriteBatch wb;
    const int64_t now = NowMicros(*clock_);
    std::string value;
    for (const v1::Exchange& in : batch.exchanges()) {
      RETURN_IF_ERROR(CheckRequestId(in.request_id()));
      v1::Exchange e = in;
      if (e.start_unix_micros() == 0) e.set_start_unix_micros(now);
      scrubber_->Scrub(&e);
      std::string key = keys::ExchangeKey(keys::MillisOfMicros(e.start_unix_micros()), e.request_id(),
                                          e.source(), e.arm());
      e.SerializeToString(&value);
      wb.Put(exchanges_, key, value);
      wb.Put(index_, keys::IndexKey(keys::kIndexExchange, e.request_id(), key), "");
    }
    for (const v1::Comparison& in : batch.comparisons()) {
      RETURN_IF_ERROR(CheckRequestId(in.request_id()));
      v1::Comparison stamped = in;
      if (in.time_unix_micros() == 0) stamped.set_time_unix_micros(now);
      scrubber_->ScrubComparison(&stamped);
      const v1::Comparison* c = &stamped;
      std::string key = keys::ComparisonKey(keys::MillisOfMicros(c->time_unix_micros()), c->request_id());
      c->SerializeToString(&value);
      wb.Put(comparisons_, key, value);
      wb.Put(index_, keys::IndexKey(keys::kIndexComparison, c->request_id(), key), "");
    }
    // A feedback record is identified by its request id and time: written
    // again (the engine joining it to its arm), it replaces itself under its
    // first key, so a request keeps one record (store.h).
    absl::flat_hash_map<std::string, std::string> feedback_in_batch;  // id \0 micros → key
    for (const v1::Feedback& in : batch.feedback()) {
      RETURN_IF_ERROR(CheckRequestId(in.request_id()));
      v1::Feedback f = in;
      scrubber_->ScrubFeedback(&f);
      std::string key;
      const bool timed = f.time_unix_micros() != 0;  // only a given time identifies a record
      if (!timed) f.set_time_unix_micros(now);
      const uint64_t ms = keys::MillisOfMicros(f.time_unix_micros());
      if (timed) {
        std::string identity =
            absl::StrCat(f.request_id(), std::string(1, '\0'), f.time_unix_micros());
        if (auto it = feedback_in_batch.find(identity); it != feedback_in_batch.end()) {
          key = it->second;
        } else {
          ASSIGN_OR_RETURN(key, StoredFeedbackKey(f.request_id(), f.time_unix_micros()));
        }
        if (key.empty()) key = keys::SequencedKey(ms, f.request_id(), seq_++);
        feedback_in_batch[identity] = key;
      } else {
        key = keys::SequencedKey(ms, f.request_id(), seq_++);
      }
      f.SerializeToString(&value);
      wb.Put(feedback_, key, value);
      wb.Put(index_, keys::IndexKey(keys::kIndexFeedback, f.request_id(), key), "");
    }
    for (const v1::HealthSnapshot& in : batch.health()) {
      const v1::HealthSnapshot* h = &in;
      v1::HealthSnapshot stamped;
      if (in.time_unix_micros() == 0) {
        stamped = in;
        stamped.set_time_unix_micros(now);
        h = &stamped;
      }
      h->SerializeToString(&value);
      wb.Put(health_, keys::SequencedKey(keys::MillisOfMicros(h->time_unix_micros()), "", seq_++), value);
    }
    rocksdb::WriteOptions wo;
    wo.sync = config_.sync_bulk;
    return Commit(wo, &wb, batch.size(), "write records");
  }

  absl::Status SaveRolloutState(const v1::RolloutState& state) override {
    RETURN_IF_ERROR(CheckWritable());
    rocksdb::WriteBatch wb;
    wb.Put(rollout_, kStateKey, state.SerializeAsString());
    return Commit(SyncOptions(), &wb, 1, "save rollout state");
  }

  absl::Status SaveJudgeEvidence(const v1::JudgeEvidence& evidence) override {
    RETURN_IF_ERROR(CheckWritable());
    rocksdb::WriteBatch wb;
    wb.Put(rollout_, kEvidenceKey, evidence.SerializeAsString());
    return Commit(rocksdb::WriteOptions(), &wb, 1, "save judge evidence");
  }

  absl::Status AppendDecision(const v1::Decision& decision) override {
    RETURN_IF_ERROR(CheckWritable());
    rocksdb::WriteBatch wb;
    AddDecision(decision, &wb);
    return Commit(SyncOptions(), &wb, 1, "append decision");
  }

  absl::Status CommitTransition(const v1::RolloutState& state, const v1::Decision& decision) override {
    RETURN_IF_ERROR(CheckWritable());
    rocksdb::WriteBatch wb;
    wb.Put(rollout_, kStateKey, state.SerializeAsString());
    AddDecision(decision, &wb);
    return Commit(SyncOptions(), &wb, 2, "commit transition");
  }

  absl::Status PutEvalRun(v1::EvalRun run) override {
    RETURN_IF_ERROR(CheckWritable());
    if (run.start_unix_micros() <= 0) {
      return absl::InvalidArgumentError("storage: an eval run needs its start time");
    }
    scrubber_->ScrubEvalRun(&run);
    rocksdb::WriteBatch wb;
    wb.Put(evals_, keys::TimePrefix(keys::MillisOfMicros(run.start_unix_micros())),
           run.SerializeAsString());
    return Commit(SyncOptions(), &wb, 1, "store eval run");
  }

  absl::StatusOr<std::vector<v1::EvalRun>> ListEvalRuns(absl::Time since, size_t limit) override {
    std::vector<v1::EvalRun> out;
    if (limit == 0 || evals_ == nullptr) return out;
    RETURN_IF_ERROR(CatchUp());
    // Newest first from the end, then reversed: the newest `limit` runs.
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), evals_));
    const uint64_t since_ms = keys::MillisOf(since);
    for (it->SeekToLast(); it->Valid() && out.size() < limit; it->Prev()) {
      if (keys::KeyMillis(Sv(ToAbsl(it->key()))) < since_ms) break;
      v1::EvalRun run;
      RETURN_IF_ERROR(ParseRecord(it->value(), kCfEvals, &run));
      out.push_back(std::move(run));
    }
    RETURN_IF_ERROR(FromRocks(it->status(), config_.path, "scan eval runs"));
    std::reverse(out.begin(), out.end());
    return out;
  }

  absl::Status SaveRevisitState(const v1::RevisitState& state) override {
    RETURN_IF_ERROR(CheckWritable());
    rocksdb::WriteBatch wb;
    wb.Put(rollout_, kRevisitKey, state.SerializeAsString());
    return Commit(SyncOptions(), &wb, 1, "save revisit state");
  }

  absl::StatusOr<v1::RevisitState> LoadRevisitState() override {
    if (rollout_ == nullptr) return absl::NotFoundError("storage: no revisit state stored");
    RETURN_IF_ERROR(CatchUp());
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), rollout_, kRevisitKey, &value);
    if (s.IsNotFound()) return absl::NotFoundError("storage: no revisit state stored");
    RETURN_IF_ERROR(FromRocks(s, config_.path, "load revisit state"));
    v1::RevisitState state;
    if (!state.ParseFromString(value)) {
      return absl::DataLossError(
          absl::StrCat("storage: ", config_.path, ": stored revisit state is corrupt"));
    }
    return state;
  }

  // ------------------------------------------------------------- reads --

  absl::StatusOr<std::vector<v1::Exchange>> GetExchanges(std::string_view request_id) override {
    std::vector<v1::Exchange> out;
    RETURN_IF_ERROR(LookupByRequest<v1::Exchange>(keys::kIndexExchange, request_id, exchanges_,
                                                  kCfExchanges, &out));
    return out;
  }

  absl::StatusOr<v1::Comparison> GetComparison(std::string_view request_id) override {
    std::vector<v1::Comparison> out;
    RETURN_IF_ERROR(LookupByRequest<v1::Comparison>(keys::kIndexComparison, request_id, comparisons_,
                                                    kCfComparisons, &out));
    if (out.empty()) {
      return absl::NotFoundError(absl::StrCat("storage: no comparison for request ", Av(request_id)));
    }
    return out.back();
  }

  absl::StatusOr<std::vector<v1::Feedback>> FeedbackFor(std::string_view request_id) override {
    std::vector<v1::Feedback> out;
    RETURN_IF_ERROR(
        LookupByRequest<v1::Feedback>(keys::kIndexFeedback, request_id, feedback_, kCfFeedback, &out));
    return out;
  }

  absl::StatusOr<std::vector<v1::Exchange>> ListExchanges(absl::Time since, size_t limit) override {
    return ListFrom<v1::Exchange>(exchanges_, kCfExchanges, since, limit);
  }

  absl::StatusOr<std::vector<v1::HealthSnapshot>> HealthSeries(absl::Time since, size_t limit) override {
    return ListFrom<v1::HealthSnapshot>(health_, kCfHealth, since, limit);
  }

  absl::StatusOr<std::vector<v1::Decision>> ListDecisions(absl::Time since, size_t limit) override {
    return ListFrom<v1::Decision>(decisions_, kCfDecisions, since, limit);
  }

  absl::StatusOr<std::vector<v1::Comparison>> ListComparisons(const ComparisonQuery& q) override {
    std::vector<v1::Comparison> out;
    if (q.limit == 0 || comparisons_ == nullptr) return out;
    RETURN_IF_ERROR(CatchUp());
    const uint64_t since_ms = keys::MillisOf(q.since);
    const uint64_t until_ms = keys::MillisOf(q.until);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), comparisons_));
    auto matches = [&q](const v1::Comparison& c) {
      if (!q.verdicts.empty() &&
          std::find(q.verdicts.begin(), q.verdicts.end(), c.verdict()) == q.verdicts.end()) {
        return false;
      }
      return q.live_arm == v1::ARM_UNSPECIFIED || c.live_arm() == q.live_arm;
    };
    if (q.newest_first) {
      if (until_ms == UINT64_MAX) {
        it->SeekToLast();
      } else {
        it->SeekForPrev(keys::TimePrefix(until_ms + 1));
        // SeekForPrev lands on the last key <= target; the target itself is
        // a bare prefix that no record has, so this is the last key < it.
      }
      for (; it->Valid() && out.size() < q.limit; it->Prev()) {
        uint64_t ms = keys::KeyMillis(Sv(ToAbsl(it->key())));
        if (ms < since_ms) break;
        if (ms > until_ms) continue;
        v1::Comparison c;
        RETURN_IF_ERROR(ParseRecord(it->value(), kCfComparisons, &c));
        if (matches(c)) out.push_back(std::move(c));
      }
    } else {
      for (it->Seek(keys::TimePrefix(since_ms)); it->Valid() && out.size() < q.limit; it->Next()) {
        if (keys::KeyMillis(Sv(ToAbsl(it->key()))) > until_ms) break;
        v1::Comparison c;
        RETURN_IF_ERROR(ParseRecord(it->value(), kCfComparisons, &c));
        if (matches(c)) out.push_back(std::move(c));
      }
    }
    RETURN_IF_ERROR(FromRocks(it->status(), config_.path, "scan comparisons"));
    return out;
  }

  absl::StatusOr<v1::RolloutState> LoadRolloutState() override {
    if (rollout_ == nullptr) return absl::NotFoundError("storage: no rollout state stored");
    RETURN_IF_ERROR(CatchUp());
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), rollout_, kStateKey, &value);
    if (s.IsNotFound()) return absl::NotFoundError("storage: no rollout state stored");
    RETURN_IF_ERROR(FromRocks(s, config_.path, "load rollout state"));
    v1::RolloutState state;
    if (!state.ParseFromString(value)) {
      return absl::DataLossError(absl::StrCat("storage: ", config_.path, ": stored rollout state is corrupt"));
    }
    return state;
  }

  absl::StatusOr<v1::JudgeEvidence> LoadJudgeEvidence() override {
    if (rollout_ == nullptr) return absl::NotFoundError("storage: no judge evidence stored");
    RETURN_IF_ERROR(CatchUp());
    std::string value;
    rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), rollout_, kEvidenceKey, &value);
    if (s.IsNotFound()) return absl::NotFoundError("storage: no judge evidence stored");
    RETURN_IF_ERROR(FromRocks(s, config_.path, "load judge evidence"));
    v1::JudgeEvidence evidence;
    if (!evidence.ParseFromString(value)) {
      return absl::DataLossError(
          absl::StrCat("storage: ", config_.path, ": stored judge evidence is corrupt"));
    }
    return evidence;
  }

  absl::Status Visit(RecordKind kind, absl::Time since,
                     const std::function<bool(const google::protobuf::Message&)>& fn) override {
    switch (kind) {
      case RecordKind::kExchanges:
        return VisitCf<v1::Exchange>(exchanges_, kCfExchanges, since, fn);
      case RecordKind::kComparisons:
        return VisitCf<v1::Comparison>(comparisons_, kCfComparisons, since, fn);
      case RecordKind::kFeedback:
        return VisitCf<v1::Feedback>(feedback_, kCfFeedback, since, fn);
      case RecordKind::kDecisions:
        return VisitCf<v1::Decision>(decisions_, kCfDecisions, since, fn);
      case RecordKind::kHealth:
        return VisitCf<v1::HealthSnapshot>(health_, kCfHealth, since, fn);
    }
    return absl::InvalidArgumentError("storage: unknown record kind");
  }

  // --------------------------------------------------------- retention --

  absl::Status EnforceRetention() override {
    RETURN_IF_ERROR(CheckWritable());
    absl::MutexLock lock(&retention_mu_);  // one run at a time
    absl::Status status = RunRetention();
    {
      absl::MutexLock stats_lock(&stats_mu_);
      ++stats_.retention_runs;
      if (!status.ok()) {
        ++stats_.retention_failures;
        stats_.last_error = status.ToString();
      }
    }
    return status;
  }

  StoreStats Stats() const override {
    absl::MutexLock lock(&stats_mu_);
    return stats_;
  }

 private:
  struct CfRetention {
    rocksdb::ColumnFamilyHandle* cf;
    int64_t hours;
    char index_kind;      // 0 = not indexed
    size_t suffix_bytes;  // bytes after the request id in the primary key
  };

  static absl::string_view ToAbsl(const rocksdb::Slice& s) { return absl::string_view(s.data(), s.size()); }

  absl::Status CheckWritable() const {
    if (read_only_) {
      return absl::FailedPreconditionError(
          absl::StrCat("storage: ", config_.path, " is open read-only (secondary instance)"));
    }
    return absl::OkStatus();
  }

  // A secondary instance refreshes its view before each read.
  absl::Status CatchUp() {
    if (!read_only_) return absl::OkStatus();
    return FromRocks(db_->TryCatchUpWithPrimary(), config_.path, "catch up with primary");
  }

  static rocksdb::WriteOptions SyncOptions() {
    rocksdb::WriteOptions wo;
    wo.sync = true;
    return wo;
  }

  void AddDecision(const v1::Decision& in, rocksdb::WriteBatch* wb) {
    const v1::Decision* d = &in;
    v1::Decision stamped;
    if (in.time_unix_micros() == 0) {
      stamped = in;
      stamped.set_time_unix_micros(NowMicros(*clock_));
      d = &stamped;
    }
    wb->Put(decisions_, keys::SequencedKey(keys::MillisOfMicros(d->time_unix_micros()), "", seq_++),
            d->SerializeAsString());
  }

  absl::Status Commit(const rocksdb::WriteOptions& wo, rocksdb::WriteBatch* wb, size_t records,
                      std::string_view what) {
    // After a failed write nothing touches the database's files again until
    // RocksDB has recovered (Resume): writing through a log writer that has
    // failed is undefined in RocksDB (an assertion in some builds).
    absl::Status s = CheckSpace();
    if (s.ok()) s = MaybeResume();
    if (s.ok()) s = FromRocks(db_->Write(wo, wb), config_.path, what);
    absl::MutexLock lock(&stats_mu_);
    if (s.ok()) {
      stats_.records_written += static_cast<int64_t>(records);
      ++stats_.batches_written;
      stats_.failing = false;
    } else {
      stats_.write_failures += static_cast<int64_t>(records);
      stats_.last_error = s.ToString();
      stats_.failing = true;
    }
    return s;
  }

  // MaybeResume: after a failed write (a full or read-only disk), RocksDB
  // refuses every write until its background error is cleared. Try that
  // at most once a second, so the store recovers by itself once space
  // returns (docs/operations.md, "Disk full").
  // CheckSpace refuses a write while the disk is nearly full or mounted
  // read-only (the file system is looked at at most every 200 ms), before
  // RocksDB meets the error half-way through a write.
  absl::Status CheckSpace() {
    const absl::Time now = clock_->Now();
    absl::MutexLock lock(&stats_mu_);
    if (now - space_checked_ >= absl::Milliseconds(200)) {
      space_checked_ = now;
      struct statvfs st;
      if (statvfs(config_.path.c_str(), &st) == 0) {
        const int64_t total = static_cast<int64_t>(st.f_blocks) * static_cast<int64_t>(st.f_frsize);
        free_bytes_ = static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
        fs_read_only_ = (st.f_flag & ST_RDONLY) != 0;
        reserve_bytes_ = config_.min_free_bytes > 0
                             ? config_.min_free_bytes
                             : std::clamp<int64_t>(total / 20, int64_t{16} << 20, int64_t{1} << 30);
      }
    }
    if (fs_read_only_) {
      return absl::UnavailableError(absl::StrCat(
          "storage: ", config_.path, ": the file system is mounted read-only; writes resume when "
          "it is writable again"));
    }
    if (free_bytes_ >= reserve_bytes_) return absl::OkStatus();
    return absl::UnavailableError(absl::StrCat(
        "storage: ", config_.path, ": disk full: ", free_bytes_ >> 20, " MiB free, below the ",
        reserve_bytes_ >> 20, " MiB kept free (storage.min_free_mb); writes resume when space "
        "returns"));
  }

  absl::Status MaybeResume() {
    {
      absl::MutexLock lock(&stats_mu_);
      if (!stats_.failing) return absl::OkStatus();
      const absl::Time now = clock_->Now();
      if (now - last_resume_ < absl::Seconds(1)) {
        return absl::UnavailableError(
            absl::StrCat("storage: ", config_.path, ": not writable: ", stats_.last_error));
      }
      last_resume_ = now;
    }
    return FromRocks(db_->Resume(), config_.path, "resume after a write error");
  }

  template <typename M>
  absl::Status LookupByRequest(char kind, std::string_view request_id, rocksdb::ColumnFamilyHandle* cf,
                               std::string_view cf_name, std::vector<M>* out) {
    RETURN_IF_ERROR(CheckRequestId(request_id));
    if (cf == nullptr || index_ == nullptr) return absl::OkStatus();
    RETURN_IF_ERROR(CatchUp());
    const std::string prefix = keys::IndexPrefix(kind, request_id);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), index_));
    std::string value;
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      rocksdb::Slice primary = it->key();
      primary.remove_prefix(prefix.size());
      rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf, primary, &value);
      // An index entry whose record retention removed is stale, not an error.
      if (s.IsNotFound()) continue;
      RETURN_IF_ERROR(FromRocks(s, config_.path, "lookup"));
      M m;
      RETURN_IF_ERROR(ParseRecord(value, cf_name, &m));
      out->push_back(std::move(m));
    }
    return FromRocks(it->status(), config_.path, "lookup");
  }

  // StoredFeedbackKey returns the key of the stored feedback record of
  // `request_id` whose time is exactly `micros`, or "" when there is none.
  absl::StatusOr<std::string> StoredFeedbackKey(std::string_view request_id, int64_t micros) {
    if (feedback_ == nullptr || index_ == nullptr) return std::string();
    const std::string prefix = keys::IndexPrefix(keys::kIndexFeedback, request_id);
    const uint64_t ms = keys::MillisOfMicros(micros);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), index_));
    std::string value;
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      rocksdb::Slice primary = it->key();
      primary.remove_prefix(prefix.size());
      if (keys::KeyMillis(std::string_view(primary.data(), primary.size())) != ms) continue;
      rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), feedback_, primary, &value);
      if (s.IsNotFound()) continue;  // a stale index entry
      RETURN_IF_ERROR(FromRocks(s, config_.path, "feedback lookup"));
      v1::Feedback stored;
      RETURN_IF_ERROR(ParseRecord(value, kCfFeedback, &stored));
      if (stored.time_unix_micros() == micros) return primary.ToString();
    }
    RETURN_IF_ERROR(FromRocks(it->status(), config_.path, "feedback lookup"));
    return std::string();
  }

  template <typename M>
  absl::Status VisitCf(rocksdb::ColumnFamilyHandle* cf, std::string_view cf_name, absl::Time since,
                       const std::function<bool(const google::protobuf::Message&)>& fn) {
    if (cf == nullptr) return absl::OkStatus();
    RETURN_IF_ERROR(CatchUp());
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf));
    M m;
    for (it->Seek(keys::TimePrefix(keys::MillisOf(since))); it->Valid(); it->Next()) {
      m.Clear();
      RETURN_IF_ERROR(ParseRecord(it->value(), cf_name, &m));
      if (!fn(m)) break;
    }
    return FromRocks(it->status(), config_.path, absl::StrCat("scan ", Av(cf_name)));
  }

  template <typename M>
  absl::StatusOr<std::vector<M>> ListFrom(rocksdb::ColumnFamilyHandle* cf, std::string_view cf_name,
                                          absl::Time since, size_t limit) {
    std::vector<M> out;
    if (limit == 0) return out;
    RETURN_IF_ERROR(VisitCf<M>(cf, cf_name, since, [&](const google::protobuf::Message& m) {
      out.push_back(static_cast<const M&>(m));
      return out.size() < limit;
    }));
    return out;
  }

  // DeleteOlder removes every record of `r.cf` older than `cutoff_ms` (and
  // its index entries); returns whether anything was there.
  absl::StatusOr<bool> DeleteOlder(const CfRetention& r, uint64_t cutoff_ms) {
    const std::string begin = keys::TimePrefix(0);
    const std::string end = keys::TimePrefix(cutoff_ms);
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), r.cf));
    it->Seek(begin);
    bool any = it->Valid() && it->key().compare(end) < 0;
    if (!any) {
      RETURN_IF_ERROR(FromRocks(it->status(), config_.path, "retention scan"));
      return false;
    }
    if (r.index_kind != 0) {
      // Index entries first: a crash between the two steps leaves stale
      // records without index entries, which the next run deletes anyway.
      rocksdb::WriteBatch wb;
      for (; it->Valid() && it->key().compare(end) < 0; it->Next()) {
        rocksdb::Slice key = it->key();
        if (key.size() < keys::kTimeBytes + r.suffix_bytes) continue;
        std::string_view id(key.data() + keys::kTimeBytes, key.size() - keys::kTimeBytes - r.suffix_bytes);
        wb.Delete(index_, keys::IndexKey(r.index_kind, id, std::string_view(key.data(), key.size())));
        if (wb.Count() >= 1000) {
          RETURN_IF_ERROR(FromRocks(db_->Write(rocksdb::WriteOptions(), &wb), config_.path, "retention"));
          wb.Clear();
        }
      }
      RETURN_IF_ERROR(FromRocks(it->status(), config_.path, "retention scan"));
      if (wb.Count() > 0) {
        RETURN_IF_ERROR(FromRocks(db_->Write(rocksdb::WriteOptions(), &wb), config_.path, "retention"));
      }
    }
    it.reset();
    RETURN_IF_ERROR(FromRocks(db_->DeleteRange(rocksdb::WriteOptions(), r.cf, begin, end), config_.path,
                              "retention delete range"));
    rocksdb::Slice end_slice(end);
    rocksdb::CompactRangeOptions cro;
    RETURN_IF_ERROR(FromRocks(db_->CompactRange(cro, r.cf, nullptr, &end_slice), config_.path,
                              "retention compaction"));
    return true;
  }

  absl::StatusOr<uint64_t> TotalSstBytes() {
    uint64_t total = 0;
    for (rocksdb::ColumnFamilyHandle* h : handles_) {
      uint64_t v = 0;
      if (db_->GetIntProperty(h, rocksdb::DB::Properties::kTotalSstFilesSize, &v)) total += v;
    }
    return total;
  }

  absl::Status RunRetention() {
    const absl::Time now = clock_->Now();
    const std::vector<CfRetention> plan = {
        {exchanges_, config_.retention.exchanges_hours, keys::kIndexExchange, 3},
        {comparisons_, config_.retention.comparisons_hours, keys::kIndexComparison, 0},
        {feedback_, config_.retention.feedback_hours, keys::kIndexFeedback, 9},
        {health_, config_.retention.health_hours, 0, 0},
        {decisions_, config_.retention.decisions_hours, 0, 0},
        {evals_, config_.retention.evals_hours, 0, 0},
    };
    for (const CfRetention& r : plan) {
      if (r.hours <= 0 || r.cf == nullptr) continue;
      ASSIGN_OR_RETURN(bool deleted, DeleteOlder(r, keys::MillisOf(now - absl::Hours(r.hours))));
      (void)deleted;
    }
    if (config_.max_size_bytes <= 0) return absl::OkStatus();

    // Size cap: flush so the measure is on disk, then drop the oldest quarter
    // of the oldest bulk column family until under the cap. State and the
    // decision log are never trimmed.
    rocksdb::FlushOptions fo;
    RETURN_IF_ERROR(FromRocks(db_->Flush(fo, handles_), config_.path, "flush"));
    const std::vector<CfRetention> trim_order = {plan[0], plan[1], plan[3], plan[2]};
    for (int round = 0; round < 32; ++round) {
      ASSIGN_OR_RETURN(uint64_t size, TotalSstBytes());
      if (size <= static_cast<uint64_t>(config_.max_size_bytes)) return absl::OkStatus();
      bool trimmed = false;
      for (const CfRetention& r : trim_order) {
        std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), r.cf));
        it->SeekToFirst();
        if (!it->Valid()) continue;
        uint64_t first = keys::KeyMillis(Sv(ToAbsl(it->key())));
        it->SeekToLast();
        uint64_t last = keys::KeyMillis(Sv(ToAbsl(it->key())));
        it.reset();
        // Cutting at last+1 empties the family; only do that when the
        // family spans a single millisecond.
        uint64_t cutoff = first + std::max<uint64_t>(1, (last - first) / 4);
        ASSIGN_OR_RETURN(trimmed, DeleteOlder(r, cutoff));
        if (trimmed) break;
      }
      if (!trimmed) return absl::OkStatus();  // nothing left that may be trimmed
      absl::MutexLock lock(&stats_mu_);
      ++stats_.size_cap_trims;
    }
    return absl::OkStatus();
  }

  void BackgroundLoop() {
    absl::MutexLock lock(&bg_mu_);
    while (!stop_) {
      // Wait for the interval or until the destructor asks us to stop.
      bg_mu_.AwaitWithTimeout(absl::Condition(&stop_), config_.retention_interval);
      if (stop_) break;
      bg_mu_.Unlock();
      EnforceRetention().IgnoreError();  // counted in Stats()
      bg_mu_.Lock();
    }
  }

  const StorageConfig config_;
  Clock* clock_;
  const bool read_only_;
  absl::Time last_resume_ ABSL_GUARDED_BY(stats_mu_) = absl::InfinitePast();
  absl::Time space_checked_ ABSL_GUARDED_BY(stats_mu_) = absl::InfinitePast();
  int64_t free_bytes_ ABSL_GUARDED_BY(stats_mu_) = std::numeric_limits<int64_t>::max();
  int64_t reserve_bytes_ ABSL_GUARDED_BY(stats_mu_) = 0;
  bool fs_read_only_ ABSL_GUARDED_BY(stats_mu_) = false;  // mounted read-only
  std::unique_ptr<Scrubber> scrubber_;
  std::unique_ptr<rocksdb::DB> db_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;
  rocksdb::ColumnFamilyHandle* exchanges_ = nullptr;
  rocksdb::ColumnFamilyHandle* comparisons_ = nullptr;
  rocksdb::ColumnFamilyHandle* feedback_ = nullptr;
  rocksdb::ColumnFamilyHandle* rollout_ = nullptr;
  rocksdb::ColumnFamilyHandle* decisions_ = nullptr;
  rocksdb::ColumnFamilyHandle* health_ = nullptr;
  rocksdb::ColumnFamilyHandle* index_ = nullptr;
  rocksdb::ColumnFamilyHandle* evals_ = nullptr;
  std::atomic<uint64_t> seq_{1};
  std::string secondary_dir_;

  mutable absl::Mutex stats_mu_;
  StoreStats stats_ ABSL_GUARDED_BY(stats_mu_);
  absl::Mutex retention_mu_;
  absl::Mutex bg_mu_;
  bool stop_ ABSL_GUARDED_BY(bg_mu_) = false;
  std::thread bg_;
};

absl::StatusOr<std::unique_ptr<Store>> OpenImpl(const StorageConfig& config, Clock* clock,
                                                bool read_only, rocksdb::Env* env) {
  auto store = std::make_unique<RocksStore>(config, clock, read_only);
  RETURN_IF_ERROR(store->Open(env));
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenRocksStore(const StorageConfig& config, Clock& clock) {
  return OpenImpl(config, &clock, /*read_only=*/false, nullptr);
}

absl::StatusOr<std::unique_ptr<Store>> OpenRocksStoreWithEnvForTest(const StorageConfig& config,
                                                                    Clock& clock, rocksdb::Env* env) {
  return OpenImpl(config, &clock, /*read_only=*/false, env);
}

absl::StatusOr<std::unique_ptr<Store>> OpenRocksStoreReadOnly(const std::string& path) {
  StorageConfig config;
  config.path = path;
  config.retention_interval = absl::ZeroDuration();
  return OpenImpl(config, &RealClock::Default(), /*read_only=*/true, nullptr);
}

}  // namespace understudy::storage
