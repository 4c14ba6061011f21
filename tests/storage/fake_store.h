// tests/storage/fake_store.h
// FakeStore: an in-memory storage::Store for other modules' tests, after
// leveldb's MemEnv/ErrorEnv. Link `understudy_storage_fake`.
//
// Example:
//   storage::FakeStore store(clock);
//   store.FailNextWrite(absl::UnavailableError("disk"));
//   EXPECT_FALSE(store.CommitTransition(state, decision).ok());  // nothing stored
//   EXPECT_OK(store.CommitTransition(state, decision));
//
// Differences from the RocksDB store: bodies are not scrubbed (privacy is
// tested against the real store), retention and the size cap do nothing,
// and every write is "durable" at once.
//
// Thread safety: every method may be called concurrently.
#ifndef UNDERSTUDY_TESTS_STORAGE_FAKE_STORE_H_
#define UNDERSTUDY_TESTS_STORAGE_FAKE_STORE_H_

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "storage/store.h"

namespace understudy::storage {

class FakeStore final : public Store {
 public:
  explicit FakeStore(Clock& clock) : clock_(clock) {}

  // FailNextWrite makes the next write call (Write, SaveRolloutState,
  // AppendDecision, CommitTransition) return `status` and store nothing.
  void FailNextWrite(absl::Status status);
  // FailAllWrites makes every write fail until cleared with OkStatus().
  void FailAllWrites(absl::Status status);
  // Counters for assertions.
  int64_t write_calls() const;

  absl::Status Write(RecordBatch batch) override;
  absl::StatusOr<std::vector<v1::Exchange>> GetExchanges(std::string_view request_id) override;
  absl::StatusOr<v1::Comparison> GetComparison(std::string_view request_id) override;
  absl::StatusOr<std::vector<v1::Feedback>> FeedbackFor(std::string_view request_id) override;
  absl::StatusOr<std::vector<v1::Exchange>> ListExchanges(absl::Time since, size_t limit) override;
  absl::StatusOr<std::vector<v1::Comparison>> ListComparisons(const ComparisonQuery& query) override;
  absl::StatusOr<std::vector<v1::HealthSnapshot>> HealthSeries(absl::Time since, size_t limit) override;
  absl::StatusOr<std::vector<v1::Decision>> ListDecisions(absl::Time since, size_t limit) override;
  absl::StatusOr<v1::RolloutState> LoadRolloutState() override;
  absl::Status SaveRolloutState(const v1::RolloutState& state) override;
  absl::Status SaveJudgeEvidence(const v1::JudgeEvidence& evidence) override;
  absl::StatusOr<v1::JudgeEvidence> LoadJudgeEvidence() override;
  absl::Status AppendDecision(const v1::Decision& decision) override;
  absl::Status CommitTransition(const v1::RolloutState& state, const v1::Decision& decision) override;
  absl::Status Visit(RecordKind kind, absl::Time since,
                     const std::function<bool(const google::protobuf::Message&)>& fn) override;
  absl::Status PutEvalRun(v1::EvalRun run) override;
  absl::StatusOr<std::vector<v1::EvalRun>> ListEvalRuns(absl::Time since, size_t limit) override;
  absl::Status SaveRevisitState(const v1::RevisitState& state) override;
  absl::StatusOr<v1::RevisitState> LoadRevisitState() override;
  absl::Status EnforceRetention() override { return absl::OkStatus(); }
  StoreStats Stats() const override;

 private:
  absl::Status TakeFailure(size_t records) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  int64_t NowMicros() const { return absl::ToUnixMicros(clock_.Now()); }

  Clock& clock_;
  mutable absl::Mutex mu_;
  absl::Status next_failure_ ABSL_GUARDED_BY(mu_);
  absl::Status all_failure_ ABSL_GUARDED_BY(mu_);
  int64_t write_calls_ ABSL_GUARDED_BY(mu_) = 0;
  StoreStats stats_ ABSL_GUARDED_BY(mu_);
  // Keyed by (time micros, insertion sequence) so equal times keep order.
  using Key = std::pair<int64_t, int64_t>;
  int64_t seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<Key, v1::Exchange> exchanges_ ABSL_GUARDED_BY(mu_);
  std::map<Key, v1::Comparison> comparisons_ ABSL_GUARDED_BY(mu_);
  std::map<Key, v1::Feedback> feedback_ ABSL_GUARDED_BY(mu_);
  std::map<Key, v1::HealthSnapshot> health_ ABSL_GUARDED_BY(mu_);
  std::map<Key, v1::Decision> decisions_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::RolloutState> state_ ABSL_GUARDED_BY(mu_);
  std::optional<v1::JudgeEvidence> evidence_ ABSL_GUARDED_BY(mu_);
  std::map<int64_t, v1::EvalRun> evals_ ABSL_GUARDED_BY(mu_);  // by start millisecond
  std::optional<v1::RevisitState> revisit_ ABSL_GUARDED_BY(mu_);
};

}  // namespace understudy::storage

#endif  // UNDERSTUDY_TESTS_STORAGE_FAKE_STORE_H_
