// InMemoryTransitionLog: the TransitionLog of tests and the simulator.
#include <optional>
#include <utility>
#include <vector>

#include "rollout/rollout.h"

namespace understudy::rollout {

using understudy::v1::Decision;
using understudy::v1::RolloutState;

absl::Status InMemoryTransitionLog::Commit(const RolloutState& state, const Decision& decision) {
  absl::MutexLock lock(&mu_);
  if (!fail_next_.ok()) {
    absl::Status s = std::move(fail_next_);
    fail_next_ = absl::OkStatus();
    return s;
  }
  decisions_.push_back(decision);
  last_ = state;
  return absl::OkStatus();
}

void InMemoryTransitionLog::FailNextCommit(absl::Status status) {
  absl::MutexLock lock(&mu_);
  fail_next_ = std::move(status);
}

std::vector<Decision> InMemoryTransitionLog::Decisions() const {
  absl::MutexLock lock(&mu_);
  return decisions_;
}

std::optional<RolloutState> InMemoryTransitionLog::LastState() const {
  absl::MutexLock lock(&mu_);
  return last_;
}

size_t InMemoryTransitionLog::size() const {
  absl::MutexLock lock(&mu_);
  return decisions_.size();
}

}  // namespace understudy::rollout
