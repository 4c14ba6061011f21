#include "sidecar/fallback.h"

namespace understudy::sidecar {

FallbackRegistry::FallbackRegistry(const Clock& clock, size_t capacity, absl::Duration max_age,
                                   size_t max_body_bytes)
    : clock_(clock), capacity_(capacity), max_age_(max_age), max_body_bytes_(max_body_bytes) {}

void FallbackRegistry::EvictLocked(absl::Time now) {
  while (!order_.empty()) {
    auto& [id, seq] = order_.front();
    auto it = entries_.find(id);
    if (it != entries_.end() && it->second.seq == seq) {
      const bool keep = entries_.size() <= capacity_ && body_bytes_ <= max_body_bytes_ &&
                        now - it->second.created <= max_age_;
      if (keep) return;
      body_bytes_ -= it->second.body_bytes;
      entries_.erase(it);
    }
    order_.pop_front();
  }
}

FallbackRegistry::Entry& FallbackRegistry::EntryLocked(std::string_view request_id,
                                                       absl::Time now) {
  auto [it, inserted] = entries_.try_emplace(std::string(request_id));
  if (inserted) {
    it->second.created = now;
    it->second.seq = next_seq_++;
    order_.emplace_back(it->first, it->second.seq);
  }
  return it->second;
}

void FallbackRegistry::Plan(std::string_view request_id, FallbackPlan plan) {
  if (request_id.empty()) return;
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  Entry& e = EntryLocked(request_id, now);
  body_bytes_ -= e.body_bytes;
  e.body_bytes = plan.body.has_value() ? plan.body->size() : 0;
  body_bytes_ += e.body_bytes;
  e.plan = std::move(plan);
  EvictLocked(now);
}

void FallbackRegistry::NoteCandidateStatus(std::string_view request_id, int status) {
  if (request_id.empty()) return;
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(std::string(request_id));
  if (it != entries_.end()) it->second.candidate_status = status;
  EvictLocked(now);
}

std::optional<FallbackPlan> FallbackRegistry::Begin(std::string_view request_id) {
  if (request_id.empty()) return std::nullopt;
  const absl::Time now = clock_.Now();
  absl::MutexLock lock(&mu_);
  EvictLocked(now);
  auto it = entries_.find(std::string(request_id));
  if (it == entries_.end() || !it->second.plan.has_value()) return std::nullopt;
  Entry& e = it->second;
  e.fell_back = true;
  return e.plan;  // kept: restoring again (a further retry) is idempotent
}

std::optional<FallbackStatus> FallbackRegistry::FellBack(std::string_view request_id) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(std::string(request_id));
  if (it == entries_.end() || !it->second.fell_back) return std::nullopt;
  return FallbackStatus{it->second.candidate_status};
}

void FallbackRegistry::Done(std::string_view request_id) {
  if (request_id.empty()) return;
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(std::string(request_id));
  if (it == entries_.end()) return;
  body_bytes_ -= it->second.body_bytes;
  if (!it->second.fell_back) {
    entries_.erase(it);  // its place in order_ is skipped as stale
    return;
  }
  it->second.body_bytes = 0;
  it->second.plan.reset();
}

int FallbackRegistry::CandidateStatus(std::string_view request_id) const {
  absl::MutexLock lock(&mu_);
  auto it = entries_.find(std::string(request_id));
  return it == entries_.end() ? 0 : it->second.candidate_status;
}

size_t FallbackRegistry::size() const {
  absl::MutexLock lock(&mu_);
  return entries_.size();
}

}  // namespace understudy::sidecar
