#include "tests/storage/fake_store.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "common/strings.h"

namespace understudy::storage {
namespace {

template <typename M>
std::vector<M> From(const std::map<std::pair<int64_t, int64_t>, M>& m, absl::Time since, size_t limit) {
  std::vector<M> out;
  const int64_t since_us = since == absl::InfinitePast() ? INT64_MIN : absl::ToUnixMicros(since);
  for (auto it = m.lower_bound({since_us, INT64_MIN}); it != m.end() && out.size() < limit; ++it) {
    out.push_back(it->second);
  }
  return out;
}

// The real store keys records by millisecond (storage/keys.h); times at or
// before the epoch all fall in millisecond 0.
int64_t KeyMillis(int64_t micros) { return micros <= 0 ? 0 : micros / 1000; }

// EraseSameKey removes what the real store would overwrite: a record in the
// same key millisecond as `micros` for which `same` holds.
template <typename M, typename Pred>
void EraseSameKey(std::map<std::pair<int64_t, int64_t>, M>& m, int64_t micros, Pred same) {
  const int64_t ms = KeyMillis(micros);
  const int64_t lo = ms == 0 ? INT64_MIN : ms * 1000;
  const int64_t hi = ms >= INT64_MAX / 1000 ? INT64_MAX : ms * 1000 + 999;
  for (auto it = m.lower_bound({lo, INT64_MIN}); it != m.end() && it->first.first <= hi;) {
    if (KeyMillis(it->first.first) == ms && same(it->second)) {
      it = m.erase(it);
    } else {
      ++it;
    }
  }
}

absl::Status CheckRequestId(std::string_view id) {
  if (id.find('\0') != std::string_view::npos) {
    return absl::InvalidArgumentError("storage: request id contains a NUL byte");
  }
  return absl::OkStatus();
}

template <typename M>
absl::Status VisitMap(const std::map<std::pair<int64_t, int64_t>, M>& m, absl::Time since,
                      const std::function<bool(const google::protobuf::Message&)>& fn) {
  for (const M& rec : From(m, since, kNoLimit)) {
    if (!fn(rec)) break;
  }
  return absl::OkStatus();
}

}  // namespace

void FakeStore::FailNextWrite(absl::Status status) {
  absl::MutexLock lock(&mu_);
  next_failure_ = std::move(status);
}

void FakeStore::FailAllWrites(absl::Status status) {
  absl::MutexLock lock(&mu_);
  all_failure_ = std::move(status);
}

int64_t FakeStore::write_calls() const {
  absl::MutexLock lock(&mu_);
  return write_calls_;
}

absl::Status FakeStore::TakeFailure(size_t records) {
  ++write_calls_;
  absl::Status s = all_failure_;
  if (s.ok() && !next_failure_.ok()) {
    s = next_failure_;
    next_failure_ = absl::OkStatus();
  }
  if (!s.ok()) {
    stats_.write_failures += static_cast<int64_t>(records);
    stats_.last_error = s.ToString();
  } else {
    stats_.records_written += static_cast<int64_t>(records);
    ++stats_.batches_written;
  }
  return s;
}

absl::Status FakeStore::Write(RecordBatch batch) {
  absl::MutexLock lock(&mu_);
  // Like the real store: a bad request id anywhere fails the whole batch.
  for (const auto& e : batch.exchanges()) RETURN_IF_ERROR(CheckRequestId(e.request_id()));
  for (const auto& c : batch.comparisons()) RETURN_IF_ERROR(CheckRequestId(c.request_id()));
  for (const auto& f : batch.feedback()) RETURN_IF_ERROR(CheckRequestId(f.request_id()));
  if (absl::Status s = TakeFailure(batch.size()); !s.ok()) return s;
  const int64_t now = NowMicros();
  // Exchanges and comparisons written again under the real store's key
  // (millisecond, request id, and for exchanges source and arm) replace the
  // earlier record; health and decisions carry a sequence number.
  for (v1::Exchange e : batch.exchanges()) {
    if (e.start_unix_micros() == 0) e.set_start_unix_micros(now);
    EraseSameKey(exchanges_, e.start_unix_micros(), [&e](const v1::Exchange& old) {
      return old.request_id() == e.request_id() && old.source() == e.source() && old.arm() == e.arm();
    });
    exchanges_[{e.start_unix_micros(), seq_++}] = std::move(e);
  }
  for (v1::Comparison c : batch.comparisons()) {
    if (c.time_unix_micros() == 0) c.set_time_unix_micros(now);
    EraseSameKey(comparisons_, c.time_unix_micros(),
                 [&c](const v1::Comparison& old) { return old.request_id() == c.request_id(); });
    comparisons_[{c.time_unix_micros(), seq_++}] = std::move(c);
  }
  // Feedback with its time set replaces the record of the same request id
  // and time in place, as the real store does (store.h, "Identity").
  for (v1::Feedback f : batch.feedback()) {
    if (f.time_unix_micros() == 0) {
      f.set_time_unix_micros(now);
      feedback_[{f.time_unix_micros(), seq_++}] = std::move(f);
      continue;
    }
    auto same = feedback_.end();
    for (auto it = feedback_.lower_bound({f.time_unix_micros(), INT64_MIN});
         it != feedback_.end() && it->first.first == f.time_unix_micros(); ++it) {
      if (it->second.request_id() == f.request_id()) same = it;
    }
    if (same != feedback_.end()) {
      same->second = std::move(f);
    } else {
      feedback_[{f.time_unix_micros(), seq_++}] = std::move(f);
    }
  }
  for (v1::HealthSnapshot h : batch.health()) {
    if (h.time_unix_micros() == 0) h.set_time_unix_micros(now);
    health_[{h.time_unix_micros(), seq_++}] = std::move(h);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::Exchange>> FakeStore::GetExchanges(std::string_view request_id) {
  RETURN_IF_ERROR(CheckRequestId(request_id));
  absl::MutexLock lock(&mu_);
  std::vector<v1::Exchange> out;
  for (const auto& [k, e] : exchanges_) {
    if (e.request_id() == request_id) out.push_back(e);
  }
  return out;
}

absl::StatusOr<v1::Comparison> FakeStore::GetComparison(std::string_view request_id) {
  RETURN_IF_ERROR(CheckRequestId(request_id));
  absl::MutexLock lock(&mu_);
  for (auto it = comparisons_.rbegin(); it != comparisons_.rend(); ++it) {
    if (it->second.request_id() == request_id) return it->second;
  }
  return absl::NotFoundError(absl::StrCat("storage: no comparison for request ", Av(request_id)));
}

absl::StatusOr<std::vector<v1::Feedback>> FakeStore::FeedbackFor(std::string_view request_id) {
  RETURN_IF_ERROR(CheckRequestId(request_id));
  absl::MutexLock lock(&mu_);
  std::vector<v1::Feedback> out;
  for (const auto& [k, f] : feedback_) {
    if (f.request_id() == request_id) out.push_back(f);
  }
  return out;
}

absl::StatusOr<std::vector<v1::Exchange>> FakeStore::ListExchanges(absl::Time since, size_t limit) {
  absl::MutexLock lock(&mu_);
  return From(exchanges_, since, limit);
}

absl::StatusOr<std::vector<v1::Comparison>> FakeStore::ListComparisons(const ComparisonQuery& q) {
  absl::MutexLock lock(&mu_);
  std::vector<v1::Comparison> all = From(comparisons_, q.since, kNoLimit);
  if (q.newest_first) std::reverse(all.begin(), all.end());
  std::vector<v1::Comparison> out;
  const int64_t until_us = q.until == absl::InfiniteFuture() ? INT64_MAX : absl::ToUnixMicros(q.until);
  for (v1::Comparison& c : all) {
    if (out.size() >= q.limit) break;
    // The real store compares at millisecond resolution.
    if (c.time_unix_micros() / 1000 > until_us / 1000) continue;
    if (!q.verdicts.empty() &&
        std::find(q.verdicts.begin(), q.verdicts.end(), c.verdict()) == q.verdicts.end()) {
      continue;
    }
    if (q.live_arm != v1::ARM_UNSPECIFIED && c.live_arm() != q.live_arm) continue;
    out.push_back(std::move(c));
  }
  return out;
}

absl::StatusOr<std::vector<v1::HealthSnapshot>> FakeStore::HealthSeries(absl::Time since, size_t limit) {
  absl::MutexLock lock(&mu_);
  return From(health_, since, limit);
}

absl::StatusOr<std::vector<v1::Decision>> FakeStore::ListDecisions(absl::Time since, size_t limit) {
  absl::MutexLock lock(&mu_);
  return From(decisions_, since, limit);
}

absl::StatusOr<v1::RolloutState> FakeStore::LoadRolloutState() {
  absl::MutexLock lock(&mu_);
  if (!state_.has_value()) return absl::NotFoundError("storage: no rollout state stored");
  return *state_;
}

absl::Status FakeStore::SaveRolloutState(const v1::RolloutState& state) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = TakeFailure(1); !s.ok()) return s;
  state_ = state;
  return absl::OkStatus();
}

absl::Status FakeStore::SaveJudgeEvidence(const v1::JudgeEvidence& evidence) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = TakeFailure(1); !s.ok()) return s;
  evidence_ = evidence;
  return absl::OkStatus();
}

absl::StatusOr<v1::JudgeEvidence> FakeStore::LoadJudgeEvidence() {
  absl::MutexLock lock(&mu_);
  if (!evidence_.has_value()) return absl::NotFoundError("storage: no judge evidence stored");
  return *evidence_;
}

// Eval runs are stored unscrubbed: the fake keeps what it is given.
absl::Status FakeStore::PutEvalRun(v1::EvalRun run) {
  absl::MutexLock lock(&mu_);
  if (run.start_unix_micros() <= 0) {
    return absl::InvalidArgumentError("storage: an eval run needs its start time");
  }
  if (absl::Status s = TakeFailure(1); !s.ok()) return s;
  const int64_t ms = run.start_unix_micros() / 1000;
  evals_[ms] = std::move(run);
  return absl::OkStatus();
}

absl::StatusOr<std::vector<v1::EvalRun>> FakeStore::ListEvalRuns(absl::Time since, size_t limit) {
  absl::MutexLock lock(&mu_);
  std::vector<v1::EvalRun> out;
  for (auto it = evals_.rbegin(); it != evals_.rend() && out.size() < limit; ++it) {
    if (absl::FromUnixMillis(it->first) < since) break;
    out.push_back(it->second);
  }
  std::reverse(out.begin(), out.end());
  return out;
}

absl::Status FakeStore::SaveRevisitState(const v1::RevisitState& state) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = TakeFailure(1); !s.ok()) return s;
  revisit_ = state;
  return absl::OkStatus();
}

absl::StatusOr<v1::RevisitState> FakeStore::LoadRevisitState() {
  absl::MutexLock lock(&mu_);
  if (!revisit_.has_value()) return absl::NotFoundError("storage: no revisit state stored");
  return *revisit_;
}

absl::Status FakeStore::AppendDecision(const v1::Decision& decision) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = TakeFailure(1); !s.ok()) return s;
  v1::Decision d = decision;
  if (d.time_unix_micros() == 0) d.set_time_unix_micros(NowMicros());
  decisions_[{d.time_unix_micros(), seq_++}] = std::move(d);
  return absl::OkStatus();
}

absl::Status FakeStore::CommitTransition(const v1::RolloutState& state, const v1::Decision& decision) {
  absl::MutexLock lock(&mu_);
  if (absl::Status s = TakeFailure(2); !s.ok()) return s;
  state_ = state;
  v1::Decision d = decision;
  if (d.time_unix_micros() == 0) d.set_time_unix_micros(NowMicros());
  decisions_[{d.time_unix_micros(), seq_++}] = std::move(d);
  return absl::OkStatus();
}

absl::Status FakeStore::Visit(RecordKind kind, absl::Time since,
                              const std::function<bool(const google::protobuf::Message&)>& fn) {
  absl::MutexLock lock(&mu_);
  switch (kind) {
    case RecordKind::kExchanges: return VisitMap(exchanges_, since, fn);
    case RecordKind::kComparisons: return VisitMap(comparisons_, since, fn);
    case RecordKind::kFeedback: return VisitMap(feedback_, since, fn);
    case RecordKind::kDecisions: return VisitMap(decisions_, since, fn);
    case RecordKind::kHealth: return VisitMap(health_, since, fn);
  }
  return absl::InvalidArgumentError("storage: unknown record kind");
}

StoreStats FakeStore::Stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

}  // namespace understudy::storage
