// sidecar/revisit.h (internal to sidecar/)
// Keeps watching after the rollout (docs/drift.md):
//   * EvalScheduler runs the golden-set eval (shadow/eval.h) every
//     `eval.interval` on its own thread, compares each run with its
//     baseline run (re-ask agreement, drift::FindEvalRegressions) and
//     stores it (storage: eval runs). Never on the request path.
//   * RevisitWatch feeds drift::EvaluateRevisit — the one place the revisit
//     triggers are decided — from the sidecar: the price table's fingerprint
//     and the live traffic, saved at the first start and at every rollout
//     decision; drift events from the decision log; the latest eval run.
//
// Example (given storage::Store& store, Clock& clock,
//   const shadow::EvalConfig& eval_config, const shadow::ShadowConfig& shadow_config,
//   const compare::CompareOptions& compare_options):
//   RevisitWatch::Options o;
//   o.price_fingerprint = PriceFingerprint(compare_options.prices);
//   RevisitWatch watch(std::move(o), store, clock);
//   ASSIGN_OR_RETURN(std::string note, watch.Start());   // price change across restart?
//   EvalScheduler::Options e;
//   e.eval = eval_config;
//   e.shadow = shadow_config;
//   e.compare = compare_options;
//   e.baseline_before = [&watch] { return watch.LastDecisionTime(); };
//   e.on_run = [&watch](const understudy::v1::EvalRun& run) { watch.OnEvalRun(run); };
//   EvalScheduler scheduler(std::move(e), store, clock);
//   scheduler.Start();
//   std::vector<understudy::v1::RevisitTrigger> fired = watch.Fired();
//   scheduler.Stop();
//
// Thread safety: every method of both classes may be called concurrently.
#ifndef UNDERSTUDY_SIDECAR_REVISIT_H_
#define UNDERSTUDY_SIDECAR_REVISIT_H_

#include <array>
#include <atomic>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "compare/compare.h"
#include "drift/revisit.h"
#include "shadow/eval.h"
#include "shadow/shadow.h"
#include "sidecar/engine.h"
#include "storage/store.h"
#include "understudy/v1/eval.pb.h"

namespace understudy::sidecar {

// PriceFingerprint is a stable hash of a price table (order-independent,
// every field): equal tables give equal fingerprints.
std::string PriceFingerprint(const std::map<std::string, compare::ModelPrice>& prices);

// NextEvalRun is when the next scheduled run starts: `interval` after the
// latest run's start, or `now` when there was none or that time has passed
// (a restart does not reset the schedule).
absl::Time NextEvalRun(std::optional<absl::Time> last_start, absl::Duration interval,
                       absl::Time now);

// PickBaselineRun picks the run a new run is compared with, from `runs`
// (oldest first): the latest run that did not fail and started before
// `decision` (the latest rollout decision), else the first run that did not
// fail; nullptr when none did.
const understudy::v1::EvalRun* PickBaselineRun(const std::vector<understudy::v1::EvalRun>& runs,
                                               absl::Time decision);

class EvalScheduler {
 public:
  struct Options {
    shadow::EvalConfig eval;
    shadow::ShadowConfig shadow;   // the upstreams and their credentials
    compare::CompareOptions compare;
    drift::EvalRegressionThresholds thresholds;
    // The latest rollout decision's time (InfinitePast: none).
    std::function<absl::Time()> baseline_before;
    // Called with each stored run (failed ones too), on the scheduler thread.
    std::function<void(const understudy::v1::EvalRun&)> on_run;
  };
  EvalScheduler(Options options, storage::Store& store, Clock& clock);
  ~EvalScheduler();  // Stops.
  EvalScheduler(const EvalScheduler&) = delete;
  EvalScheduler& operator=(const EvalScheduler&) = delete;

  // Start starts the thread; the first run is due per NextEvalRun.
  void Start();
  // Stop cancels a run in progress (its calls are aborted and nothing is
  // stored) and joins the thread. Idempotent.
  void Stop();
  // RunOnce runs one eval now on the caller's thread and stores it; the
  // store's error when it cannot be stored. A failing upstream or dataset
  // gives a stored run with failed set, not an error.
  [[nodiscard]] absl::StatusOr<understudy::v1::EvalRun> RunOnce();

 private:
  void Loop();

  const Options options_;
  storage::Store& store_;
  Clock& clock_;
  std::atomic<bool> cancel_{false};
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

class RevisitWatch final : public EngineObserver {
 public:
  struct Options {
    drift::RevisitConfig config;
    std::string price_fingerprint;  // of compare.prices now
    std::optional<absl::Time> deprecation_date;
    absl::Duration deprecation_notice = absl::Hours(24 * 30);
    // Drift events older than this are not triggers any more (the report's
    // lookback).
    absl::Duration lookback = absl::Hours(24 * 30);
    // The live rate is measured over this window (at most an hour), and
    // is known once the process has run for `min_rate_window` of it.
    absl::Duration rate_window = absl::Hours(1);
    absl::Duration min_rate_window = absl::Minutes(10);
  };
  RevisitWatch(Options options, storage::Store& store, Clock& clock);

  // Start loads the saved state, or saves the first one (at the first
  // start, with the latest rollout decision already in the log, if any). Returns a note for the startup log when the price table differs
  // from the saved one ("" otherwise). The store's error on failure.
  [[nodiscard]] absl::StatusOr<std::string> Start();

  // EngineObserver: live exchanges are counted; a decision that changed
  // the state saves a new state (today's prices and traffic).
  void OnLiveExchange(const understudy::v1::Exchange& live, const ExchangeFacts& facts) override;
  void OnDecision(const understudy::v1::Decision& decision) override;

  // OnEvalRun makes `run` the latest eval run.
  void OnEvalRun(const understudy::v1::EvalRun& run);

  // Fired evaluates the triggers now (drift::EvaluateRevisit).
  std::vector<understudy::v1::RevisitTrigger> Fired();
  // LastDecisionTime is the saved state's decision time (InfinitePast when
  // no decision was seen).
  absl::Time LastDecisionTime();
  // RequestsPerHour is the live rate now; 0 while not known.
  double RequestsPerHour();

 private:
  static constexpr int kBuckets = 60;
  double RateLocked(absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const Options options_;
  storage::Store& store_;
  Clock& clock_;
  const absl::Time started_;
  absl::Mutex mu_;
  understudy::v1::RevisitState saved_ ABSL_GUARDED_BY(mu_);
  std::optional<understudy::v1::EvalRun> latest_eval_ ABSL_GUARDED_BY(mu_);
  // Live requests per bucket of rate_window / kBuckets, a ring.
  std::array<int64_t, kBuckets> counts_ ABSL_GUARDED_BY(mu_) = {};
  int64_t current_bucket_ ABSL_GUARDED_BY(mu_) = 0;  // absolute bucket number
  // Drift events, refreshed from the store at most every few seconds.
  std::vector<understudy::v1::Decision> drift_events_ ABSL_GUARDED_BY(mu_);
  absl::Time drift_read_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace understudy::sidecar

#endif  // UNDERSTUDY_SIDECAR_REVISIT_H_
