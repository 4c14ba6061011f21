// sidecar/fallback.h
// What the candidate arm's per-request fallback to production needs to carry
// from one ext_proc stream to another (docs/extproc.md, "Fallback to
// production").
//
// Envoy retries a failed candidate attempt on production (an aggregate
// cluster with previous_priorities) and runs the upstream `attempt` filter on
// every attempt. The request header map is shared across attempts, so the
// candidate's edits made on the route stream (its key, path, version header)
// are still there when the retry goes to production; the body is re-sent from
// the router's copy, which is the reshaped one. The route stream therefore
// writes down how to undo its edits (a FallbackPlan) and the attempt stream of
// the retry reads it back and restores the client's request. The route and
// observe streams then ask whether the request fell back: the answer is not
// the candidate's and must not be translated or judged as the candidate's.
//
// Entries live in memory only (they may hold the client's credentials, which
// are never stored or logged), at most `capacity` of them and at most
// `max_age`; a fallback after that, or on another sidecar replica, finds no
// plan and is refused (the attempt filter answers 502).
//
// Thread safety: every method may be called from any thread.
#ifndef UNDERSTUDY_SIDECAR_FALLBACK_H_
#define UNDERSTUDY_SIDECAR_FALLBACK_H_

#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"

namespace understudy::sidecar {

// FallbackPlan undoes the candidate's shaping of one request.
struct FallbackPlan {
  // Each header the route stream set or removed (lower-case, ":path"
  // included), with the client's value; nullopt when the client sent none.
  std::vector<std::pair<std::string, std::optional<std::string>>> headers;
  // The client's body, when the candidate's differs from it.
  std::optional<std::string> body;
};

// FallbackStatus is what the route and observe streams learn of a request
// that fell back.
struct FallbackStatus {
  int candidate_status = 0;  // the failed attempt's HTTP status; 0: no answer
};

class FallbackRegistry {
 public:
  explicit FallbackRegistry(const Clock& clock, size_t capacity = 16384,
                            absl::Duration max_age = absl::Minutes(10),
                            size_t max_body_bytes = size_t{64} << 20);
  FallbackRegistry(const FallbackRegistry&) = delete;
  FallbackRegistry& operator=(const FallbackRegistry&) = delete;

  // Plan records (or replaces) the plan of a candidate request; called by
  // the route stream before the request leaves it.
  void Plan(std::string_view request_id, FallbackPlan plan);
  // NoteCandidateStatus records the status of the candidate's attempt (the
  // attempt stream, on its response headers).
  void NoteCandidateStatus(std::string_view request_id, int status);
  // Begin marks the request as fallen back and returns its plan; nullopt
  // when there is none (unknown, expired or evicted).
  std::optional<FallbackPlan> Begin(std::string_view request_id);
  // CandidateStatus is the status NoteCandidateStatus recorded; 0 if none.
  int CandidateStatus(std::string_view request_id) const;
  // FellBack reports whether Begin was called for the request.
  std::optional<FallbackStatus> FellBack(std::string_view request_id) const;
  // Done: the answer has reached the downstream filters, so no retry can
  // follow. The plan (the client's headers and body) is dropped at once, and
  // a request that did not fall back is forgotten; one that did keeps its
  // status for the route stream, which sees the answer last.
  void Done(std::string_view request_id);

  size_t size() const;

 private:
  struct Entry {
    std::optional<FallbackPlan> plan;
    size_t body_bytes = 0;
    int candidate_status = 0;
    bool fell_back = false;
    absl::Time created;
    uint64_t seq = 0;  // its place in order_
  };
  void EvictLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Entry& EntryLocked(std::string_view request_id, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Clock& clock_;
  const size_t capacity_;
  const absl::Duration max_age_;
  const size_t max_body_bytes_;
  mutable absl::Mutex mu_;
  std::unordered_map<std::string, Entry> entries_ ABSL_GUARDED_BY(mu_);
  // Oldest first, with the entry's seq: a stale place (the entry was
  // evicted and the id came back) evicts nothing.
  std::deque<std::pair<std::string, uint64_t>> order_ ABSL_GUARDED_BY(mu_);
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  size_t body_bytes_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace understudy::sidecar

#endif  // UNDERSTUDY_SIDECAR_FALLBACK_H_
