// storage/store.h
// Everything Understudy learns, kept in one embedded RocksDB database:
// exchanges, comparisons, feedback, periodic health snapshots, the current
// rollout state and the append-only decision log. Survives kill -9.
//
// Example (given const ConfigNode& root, Clock& clock, v1::Exchange exchange,
//   v1::Comparison comparison, const v1::RolloutState& new_state, const v1::Decision& decision):
//   ASSIGN_OR_RETURN(StorageConfig config, ParseStorageConfig(root.Child("storage")));
//   ASSIGN_OR_RETURN(std::unique_ptr<Store> store, OpenRocksStore(config, clock));
//   RecordBatch batch;                        // the pipeline's group commit
//   batch.Add(std::move(exchange));
//   batch.Add(std::move(comparison));
//   RETURN_IF_ERROR(store->Write(std::move(batch)));
//   RETURN_IF_ERROR(store->CommitTransition(new_state, decision));  // fsynced
//   absl::StatusOr<v1::RolloutState> s = store->LoadRolloutState();  // NotFound on first start
//
// Durability, made explicit:
//   * Rollout state and decisions (SaveRolloutState, AppendDecision,
//     CommitTransition) are written with WAL fsync before the call returns:
//     an acknowledged operator command or judge decision survives a crash or
//     power loss. CommitTransition writes state + decision in ONE WriteBatch,
//     so after a crash either both are there or neither is.
//   * Bulk records (exchanges, comparisons, feedback, health) go through
//     Write(RecordBatch): one WriteBatch per call, WAL always on. With
//     `sync_bulk: false` (default) the WAL is not fsynced per batch: a process
//     crash loses nothing (the OS has the WAL pages) but a power loss or
//     kernel crash may lose the last few hundred milliseconds of bulk records.
//     `sync_bulk: true` fsyncs every batch; batch ~64 records to keep
//     throughput (see bench/storage).
//   * Concurrent Write calls are group-committed by RocksDB (one WAL write
//     and at most one fsync for all writers waiting at that moment).
//
// Keys are time-ordered: 8-byte big-endian milliseconds since the Unix epoch,
// then the request id (exchanges add source and arm; feedback, decisions and
// health add an 8-byte sequence number), so a time scan is a range scan and
// retention is a DeleteRange. Records whose time field is 0 get the clock's
// time.
//
// Identity, i.e. what a second write replaces rather than adds to: an
// exchange is (millisecond, request id, source, arm), a comparison
// (millisecond, request id), a feedback record with its time set (request
// id, time_unix_micros) — the engine stores a score at once and writes it
// again when it joins it to its arm, and the request keeps one record. A
// feedback record written with time 0 is always a new record. The store does
// not refuse a second score for a request; the engine does (first wins,
// sidecar/engine.h).
//
// Privacy: Authorization, Proxy-Authorization, Cookie, Set-Cookie, x-api-key,
// api-key and every configured secret header are removed from exchanges
// before they are stored, in every body mode. Bodies are kept per
// `privacy.body_mode`: full, redacted (JSON paths and regexes replaced by
// "[REDACTED]"; prompt and answer text always), hash_only (sha256 hex in
// body_sha256) or none. In every mode but full, comparison findings keep
// kind, path, flags and scores but their texts become a hash and a length
// (a length in none), and feedback comments are dropped (storage/privacy.h).
// Everything read back — and so the admin API, export and the report —
// holds only what the mode allows.
//
// Errors: Unavailable for I/O trouble (disk full, read-only directory, the
// database locked by another live process) with the path in the message;
// DataLoss for a corrupt database or record; InvalidArgument for bad input;
// NotFound for a missing record. No call blocks on anything but RocksDB.
//
// Thread safety: every Store method may be called concurrently.
#ifndef UNDERSTUDY_STORAGE_STORE_H_
#define UNDERSTUDY_STORAGE_STORE_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/config_node.h"
#include "google/protobuf/message.h"
#include "understudy/v1/compare.pb.h"
#include "understudy/v1/eval.pb.h"
#include "understudy/v1/exchange.pb.h"
#include "understudy/v1/rollout.pb.h"

namespace understudy::storage {

// ---------------------------------------------------------------- config --

enum class BodyMode { kFull, kRedacted, kHashOnly, kNone };

struct PrivacyConfig {
  BodyMode body_mode = BodyMode::kRedacted;
  // JSON paths whose values are replaced in `redacted` mode, e.g.
  // "messages[*].content", "metadata.user.email", "$.api_key", "*.token".
  std::vector<std::string> redact_json_paths;
  // RE2 patterns replaced in bodies (and the request path) in `redacted`
  // mode. Absent in YAML → a default set for API keys and bearer tokens.
  std::vector<std::string> redact_patterns;
  // Extra header names (case-insensitive) never stored, in addition to the
  // built-in Authorization, Proxy-Authorization, Cookie, Set-Cookie,
  // x-api-key and api-key.
  std::vector<std::string> secret_headers;
};

// Retention per column family in hours; 0 keeps records forever.
struct RetentionConfig {
  int64_t exchanges_hours = 72;
  int64_t comparisons_hours = 24 * 30;
  int64_t feedback_hours = 24 * 30;
  int64_t health_hours = 24 * 30;
  int64_t decisions_hours = 0;  // the audit log is kept by default
  int64_t evals_hours = 24 * 90;  // scheduled eval runs (docs/drift.md)
};

struct StorageConfig {
  std::string path = "./understudy-data";
  bool sync_bulk = false;              // fsync each bulk batch (see above)
  RetentionConfig retention;
  int64_t max_size_bytes = 0;          // total cap; 0 = none
  // Writes are refused (Unavailable, "disk full") while the file system
  // holding `path` has less than this free, so RocksDB itself never runs
  // out of space mid-write (it cannot recover from that in every build).
  // 0 = automatic: 5% of the file system, at least 16 MiB, at most 1 GiB.
  int64_t min_free_bytes = 0;
  // How often the background thread enforces retention and the size cap;
  // zero disables the thread (tests call EnforceRetention themselves).
  absl::Duration retention_interval = absl::Minutes(5);
  PrivacyConfig privacy;
};

// ParseStorageConfig reads the YAML `storage:` section:
//   storage:
//     path: /var/lib/understudy
//     sync_bulk: false
//     max_size_mb: 10240
//     min_free_mb: 0                  # 0 = automatic (see min_free_bytes)
//     retention_interval: 5m
//     retention_hours: {exchanges: 72, comparisons: 720, feedback: 720,
//                       health: 720, decisions: 0, evals: 2160}
//     privacy:
//       body_mode: redacted          # full | redacted | hash_only | none
//       redact_json_paths: ["messages[*].content"]
//       redact_patterns: ["sk-[A-Za-z0-9]{16,}"]
//       secret_headers: [x-internal-token]
// An undefined node gives the defaults. Errors are InvalidArgument naming the
// key path ("storage.privacy.body_mode: must be one of ...").
[[nodiscard]] absl::StatusOr<StorageConfig> ParseStorageConfig(const ConfigNode& node);

// ---------------------------------------------------------------- records --

enum class RecordKind { kExchanges, kComparisons, kFeedback, kDecisions, kHealth };

// ParseRecordKind accepts "exchanges", "comparisons", "feedback", "decisions",
// "health"; anything else is InvalidArgument.
[[nodiscard]] absl::StatusOr<RecordKind> ParseRecordKind(std::string_view name);
std::string_view RecordKindName(RecordKind kind);

// RecordBatch collects bulk records for one group commit (Store::Write).
class RecordBatch {
 public:
  void Add(v1::Exchange exchange) { exchanges_.push_back(std::move(exchange)); }
  void Add(v1::Comparison comparison) { comparisons_.push_back(std::move(comparison)); }
  void Add(v1::Feedback feedback) { feedback_.push_back(std::move(feedback)); }
  void Add(v1::HealthSnapshot health) { health_.push_back(std::move(health)); }

  size_t size() const {
    return exchanges_.size() + comparisons_.size() + feedback_.size() + health_.size();
  }
  bool empty() const { return size() == 0; }
  void Clear();

  const std::vector<v1::Exchange>& exchanges() const { return exchanges_; }
  const std::vector<v1::Comparison>& comparisons() const { return comparisons_; }
  const std::vector<v1::Feedback>& feedback() const { return feedback_; }
  const std::vector<v1::HealthSnapshot>& health() const { return health_; }

 private:
  std::vector<v1::Exchange> exchanges_;
  std::vector<v1::Comparison> comparisons_;
  std::vector<v1::Feedback> feedback_;
  std::vector<v1::HealthSnapshot> health_;
};

// ComparisonQuery filters ListComparisons. Empty `verdicts` = any verdict;
// ARM_UNSPECIFIED = any live arm.
struct ComparisonQuery {
  absl::Time since = absl::InfinitePast();
  absl::Time until = absl::InfiniteFuture();
  size_t limit = 100;
  std::vector<v1::Verdict> verdicts;
  v1::Arm live_arm = v1::ARM_UNSPECIFIED;
  bool newest_first = false;
};

// StoreStats are counters for metrics; the pipeline counts what it could not
// store from write_failures.
struct StoreStats {
  int64_t records_written = 0;
  int64_t batches_written = 0;
  int64_t write_failures = 0;
  int64_t retention_runs = 0;
  int64_t retention_failures = 0;
  int64_t size_cap_trims = 0;
  std::string last_error;  // last write or background error, "" if none
  // The latest write failed (a full or read-only disk): nothing can be
  // persisted until a write succeeds again. The store retries by itself
  // (RocksDB's Resume after a background error) at most once a second.
  bool failing = false;
};

inline constexpr size_t kNoLimit = std::numeric_limits<size_t>::max();

// ---------------------------------------------------------------- Store --

class Store {
 public:
  virtual ~Store() = default;

  // Write stores every record of `batch` atomically in one WriteBatch
  // (sync per `sync_bulk`). Exchanges are scrubbed per the privacy config.
  // InvalidArgument for a request id containing NUL; Unavailable on I/O
  // failure (nothing of the batch is stored).
  [[nodiscard]] virtual absl::Status Write(RecordBatch batch) = 0;

  // Single-record conveniences over Write.
  [[nodiscard]] absl::Status PutExchange(v1::Exchange exchange);
  [[nodiscard]] absl::Status PutComparison(v1::Comparison comparison);
  [[nodiscard]] absl::Status PutFeedback(v1::Feedback feedback);
  [[nodiscard]] absl::Status PutHealth(v1::HealthSnapshot snapshot);
  [[nodiscard]] absl::Status PutExchanges(std::vector<v1::Exchange> exchanges);
  [[nodiscard]] absl::Status PutComparisons(std::vector<v1::Comparison> comparisons);

  // GetExchanges returns every stored exchange with this request id (live,
  // shadow, noise...), oldest first; empty when there is none.
  [[nodiscard]] virtual absl::StatusOr<std::vector<v1::Exchange>> GetExchanges(
      std::string_view request_id) = 0;
  // GetComparison returns the latest comparison for a request; NotFound.
  [[nodiscard]] virtual absl::StatusOr<v1::Comparison> GetComparison(
      std::string_view request_id) = 0;
  // FeedbackFor returns all feedback records for a request, oldest first
  // (one when the engine wrote them; see "Identity" above).
  [[nodiscard]] virtual absl::StatusOr<std::vector<v1::Feedback>> FeedbackFor(
      std::string_view request_id) = 0;

  // Time scans, oldest first, records with time >= since.
  [[nodiscard]] virtual absl::StatusOr<std::vector<v1::Exchange>> ListExchanges(
      absl::Time since, size_t limit) = 0;
  [[nodiscard]] virtual absl::StatusOr<std::vector<v1::Comparison>> ListComparisons(
      const ComparisonQuery& query) = 0;
  [[nodiscard]] virtual absl::StatusOr<std::vector<v1::HealthSnapshot>> HealthSeries(
      absl::Time since, size_t limit = kNoLimit) = 0;
  [[nodiscard]] virtual absl::StatusOr<std::vector<v1::Decision>> ListDecisions(
      absl::Time since, size_t limit) = 0;

  // LoadRolloutState returns the current state; NotFound when none was ever
  // saved; DataLoss when the stored state does not parse.
  [[nodiscard]] virtual absl::StatusOr<v1::RolloutState> LoadRolloutState() = 0;
  // SaveRolloutState replaces the state, fsynced before returning.
  [[nodiscard]] virtual absl::Status SaveRolloutState(const v1::RolloutState& state) = 0;
  // SaveJudgeEvidence replaces the judge's evidence (rollout/evidence.h),
  // written every tick. Not fsynced: it survives a crash of the process
  // (RocksDB's log is written before returning), and after a crash of the
  // machine the judge resumes from an older save, which loses evidence but
  // never counts a request twice.
  [[nodiscard]] virtual absl::Status SaveJudgeEvidence(const v1::JudgeEvidence& evidence) = 0;
  // LoadJudgeEvidence returns the last saved evidence; NotFound when none
  // was saved; DataLoss when it does not parse.
  [[nodiscard]] virtual absl::StatusOr<v1::JudgeEvidence> LoadJudgeEvidence() = 0;
  // AppendDecision appends to the decision log, fsynced before returning.
  [[nodiscard]] virtual absl::Status AppendDecision(const v1::Decision& decision) = 0;
  // CommitTransition writes `state` and appends `decision` in one fsynced
  // WriteBatch. Call it before the transition takes effect: when it fails,
  // neither is stored and the transition must not happen.
  [[nodiscard]] virtual absl::Status CommitTransition(const v1::RolloutState& state,
                                                     const v1::Decision& decision) = 0;

  // PutEvalRun stores one scheduled eval run (docs/drift.md), keyed by its
  // start time (a run with the same start millisecond is replaced); fsynced.
  // Answer texts are kept only in body_mode full; their sha256 and length
  // always (storage/privacy.h). InvalidArgument for a run without a start
  // time; Unavailable on I/O failure.
  [[nodiscard]] virtual absl::Status PutEvalRun(v1::EvalRun run) = 0;
  // ListEvalRuns returns the runs that started at or after `since`, oldest
  // first; with more than `limit`, the newest `limit` of them.
  [[nodiscard]] virtual absl::StatusOr<std::vector<v1::EvalRun>> ListEvalRuns(absl::Time since,
                                                                             size_t limit) = 0;
  // SaveRevisitState replaces what the revisit triggers compare against
  // (the price table's fingerprint and the traffic at the last decision),
  // fsynced. LoadRevisitState: NotFound when none was saved; DataLoss when
  // it does not parse.
  [[nodiscard]] virtual absl::Status SaveRevisitState(const v1::RevisitState& state) = 0;
  [[nodiscard]] virtual absl::StatusOr<v1::RevisitState> LoadRevisitState() = 0;

  // Visit calls `fn` for each record of `kind` with time >= since, oldest
  // first, until `fn` returns false. The message is only valid during the
  // call. Used by export.
  [[nodiscard]] virtual absl::Status Visit(
      RecordKind kind, absl::Time since,
      const std::function<bool(const google::protobuf::Message&)>& fn) = 0;

  // EnforceRetention deletes records older than their column family's
  // retention and, over the size cap, the oldest bulk records (exchanges
  // first; never state or decisions). The background thread calls it.
  [[nodiscard]] virtual absl::Status EnforceRetention() = 0;

  virtual StoreStats Stats() const = 0;
};

// OpenRocksStore opens (creating if needed) the database at config.path and
// starts the retention thread. Unavailable when the directory cannot be
// created or written, or another live process holds the database (the
// message names the path); DataLoss when the database is corrupt. A LOCK file
// left by a crashed process is not an error (the OS lock died with it).
[[nodiscard]] absl::StatusOr<std::unique_ptr<Store>> OpenRocksStore(
    const StorageConfig& config, Clock& clock);

// OpenRocksStoreReadOnly opens `path` as a RocksDB secondary instance: it
// works against a stopped sidecar's directory and, read-only, against a
// running one (no lock is taken; it sees what the primary had written when it
// opened). Writes return FailedPrecondition. NotFound when there is no
// database at `path`.
[[nodiscard]] absl::StatusOr<std::unique_ptr<Store>> OpenRocksStoreReadOnly(
    const std::string& path);

// Sha256Hex returns the lower-case hex SHA-256 of `data` (what the privacy
// modes keep instead of a text).
std::string Sha256Hex(std::string_view data);

// ExportJsonl writes every record of `kind` with time >= since to `out`, one
// protobuf-JSON-mapping object per line, and returns how many it wrote.
[[nodiscard]] absl::StatusOr<int64_t> ExportJsonl(Store& store, RecordKind kind,
                                                  absl::Time since, std::ostream& out);

}  // namespace understudy::storage

#endif  // UNDERSTUDY_STORAGE_STORE_H_
