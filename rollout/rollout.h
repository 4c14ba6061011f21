// rollout/rollout.h
// Moves live traffic to the candidate model in stages (shadow → 1% → 5% →
// 25% → 50% → 100%) and rolls back by itself when a statistical judge is
// confident the candidate is worse than production. A pure library: the
// clock is injected, there is no I/O, and every transition is handed to a
// TransitionLog (storage/ syncs it to RocksDB) before it takes effect.
//
// Example (given const ConfigNode& root, const std::optional<v1::RolloutState>& saved_state):
//   ASSIGN_OR_RETURN(RolloutConfig config, ParseRolloutConfig(root.Child("rollout")));
//   Router router(/*salt=*/"gpt-4o->gpt-5-mini");
//   InMemoryTransitionLog log;                 // storage/ provides a durable one
//   Controller controller(config, RealClock::Default(), router, log);
//   if (saved_state) RETURN_IF_ERROR(controller.Restore(*saved_state));
//   // then, with the stored v1::JudgeEvidence if any (a mismatch is
//   // FailedPrecondition and the judge starts afresh):
//   //   (void)controller.RestoreEvidence(saved_evidence);
//   // pipeline workers, per exchange:
//   Outcome outcome;                            // OutcomeClass::kOk
//   outcome.latency = absl::Milliseconds(840);
//   outcome.bucket = controller.BucketOf("user-42");  // the sticky key routing hashed
//   controller.RecordOutcome(v1::ARM_CANDIDATE, outcome);
//   // every few seconds:
//   ASSIGN_OR_RETURN(v1::Decision d, controller.Tick());
//   v1::JudgeEvidence evidence = controller.SaveEvidence();  // the caller stores it
//   // d.action(): ACTION_HOLD, ACTION_PROMOTE, ACTION_ROLLBACK or ACTION_PAUSE
//   std::string_view word = DecisionActionName(d.action());   // "hold", "rollback", ...
//   // operators:
//   RETURN_IF_ERROR(controller.Rollback("alice", "bad answers in #support").status());
//
// The judge (docs/statistics.md). Every Tick evaluates each enabled gate
// and gets pass, fail or inconclusive (as in Argo Rollouts). Every gate has
// the same two numbers:
//   - tolerated: a candidate this good or better is rolled back with
//     probability at most alpha_gate over the whole plan (false rollback);
//     by default "no worse than production";
//   - the threshold (max_ratio, max_drop, min): a candidate this bad or
//     worse must be caught: it passes the deciding stage (the last judged
//     one) with probability at most beta, so it is rolled back with power
//     1 − beta ("p95 > 1.5x → roll back").
// Between the two the judge may do either. alpha (judge.alpha) is the
// false-rollback budget of the whole plan, split evenly over the enabled
// sequential gates (alpha_gate); beta is per gate.
//
// The unit of analysis is the unit of randomisation: the routing bucket.
// Each gate's effect is a contrast of per-bucket aggregates with a
// cluster-robust variance (delta method for ratios), adjusted for each
// bucket's own production history (CUPED), combined over time strata
// (judge.stratum, 1 min, never across a stage boundary, so both arms are
// always compared over the same time window), and tested with a one-sided
// normal-mixture sequential test that stays valid however often Tick
// looks:
//   - error_rate: log of the candidate's error rate over production's;
//     must catch max(max_ratio, 1 + max_abs_increase / production's rate).
//   - latency_p95 / ttft_p95: the share of candidate requests slower than
//     tolerated_ratio × production's quantile T (fail side) and than
//     max_ratio × T (pass side), each against production's share above T.
//   - satisfaction: drop of the mean score; must catch max_drop.
//   - cost_per_request: log of the mean cost ratio; must catch max_ratio.
//   - agreement: share of shadow comparisons that are major diffs; must
//     catch agreement at or below min.
//   - critical (a circuit breaker, outside the alpha budget): the recent
//     window's candidate error rate is above max_ratio × production's in
//     the same slots with `confidence` (Mantel–Haenszel over slots,
//     deflated by the design effect); or the satisfaction drop is beyond
//     alert_drop with `confidence`.
// A gate with fewer than judge.min_clusters buckets in an arm is
// inconclusive for want of data. Any gate fails → roll back (to 0%, or one
// stage back). Promote when bake time and candidate samples are reached,
// every required gate has its data, and the required gates pass where
// they must (the last judged stage, judge.prove_every_stage). Otherwise
// hold, with a HoldReason; at max bake → paused for a human, with the
// reason. (rollout/evidence.h keeps the per-bucket windows; rollout/judge.h
// evaluates the gates; the controller is the state machine.)
//
// Persistence: the state is committed through the TransitionLog before a
// transition takes effect; the judge's evidence (windows and sequential
// statistics) is returned by SaveEvidence, which the caller stores after
// every Tick and manual command, and resumed by RestoreEvidence after
// Restore.
//
// Thread safety: every method may be called concurrently. Record* take one
// short lock and do O(1) work (they run on pipeline workers); Tick and the
// manual commands are serialised by a second lock.
#ifndef UNDERSTUDY_ROLLOUT_ROLLOUT_H_
#define UNDERSTUDY_ROLLOUT_ROLLOUT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/config_node.h"
#include "rollout/router.h"
#include "understudy/v1/rollout.pb.h"

namespace understudy::rollout {

// ---------------------------------------------------------------- config --

// One stage of the plan. percent 0 is the shadow stage (no live candidate
// traffic; the candidate is judged on shadow calls); the last stage must be
// 100, and reaching it means `promoted`.
struct StageConfig {
  int32_t percent = 0;
  absl::Duration min_bake = absl::Minutes(10);
  // Candidate samples needed before promotion: live candidate requests in a
  // canary stage, shadow calls in the shadow stage.
  int64_t min_samples = 500;
  // After max_bake with the judge still inconclusive, the rollout pauses
  // for a human. Zero means no limit.
  absl::Duration max_bake = absl::ZeroDuration();
};

enum class RollbackTarget { kZero, kPreviousStage };

// Every gate: `tolerated` is rolled back with probability ≤ alpha_gate;
// the threshold (max_ratio / max_drop / min) is caught with power 1 − beta.
struct ErrorRateGate {
  bool enabled = true;
  // Must catch: candidate rate ≥ max(max_ratio × production's,
  // production's + max_abs_increase) (a regression above BOTH limits; at a
  // 1% baseline the defaults make that 2x).
  double max_ratio = 1.5;
  double max_abs_increase = 0.01;  // 0 → ratio only
  double tolerated_ratio = 1.0;    // H0: candidate rate ≤ this × production's
};

struct QuantileGate {
  bool enabled = true;
  double quantile = 0.95;
  // Must catch: candidate's q-quantile ≥ max_ratio × production's.
  double max_ratio = 1.5;
  // Tolerated: candidate's q-quantile ≤ tolerated_ratio × production's.
  double tolerated_ratio = 1.0;
  double margin = 0.05;            // deprecated: accepted and ignored
  int64_t min_samples = 50;        // per arm
};

struct SatisfactionGate {
  bool enabled = true;
  double max_drop = 0.1;           // must catch: candidate mean this much lower
  double tolerated_drop = 0.0;     // tolerated: at most this much lower
  // Alert (critical gate): the drop is beyond this with the critical
  // gate's confidence → immediate rollback. 0 = off. Judged whenever the
  // critical gate is on, even with this gate disabled.
  double alert_drop = 0.15;
  int64_t min_samples = 30;        // feedback scores per arm
  bool must_have_data = false;     // false: no feedback does not block promotion
};

struct CostGate {
  bool enabled = true;
  double max_ratio = 2.0;          // must catch: mean cost ≥ this × production's
  double tolerated_ratio = 1.0;    // tolerated: mean cost ≤ this × production's
  int64_t min_samples = 50;
  bool must_have_data = false;
};

struct AgreementGate {
  bool enabled = true;
  // Must catch: share of shadow comparisons without a major_diff ≤ min.
  double min = 0.9;
  double tolerated = 0.95;         // tolerated: agreement ≥ this
  int64_t min_samples = 50;
  // Required in the shadow stage; in canary stages judged only when
  // comparisons keep arriving.
};

// The circuit breaker ("error > 2x for 5 minutes"): on the recent window
// (rollout.windows.recent), fails when the candidate's error rate is above
// max_ratio × production's in the same window with `confidence` (and its
// observed rate above max_error_rate), or when the satisfaction drop is
// beyond satisfaction.alert_drop with `confidence`. Not part of alpha: it
// tolerates everything up to its ceiling.
struct CriticalGate {
  bool enabled = true;
  double max_ratio = 2.0;
  double max_error_rate = 0.0;     // absolute floor on the candidate's recent rate
  int64_t min_requests = 20;       // candidate requests in the recent window
  double confidence = 0.99;
};

struct RolloutConfig {
  std::vector<StageConfig> stages = DefaultStages();
  RollbackTarget rollback_target = RollbackTarget::kZero;
  absl::Duration recent_window = absl::Minutes(5);
  int32_t recent_slots = 10;
  absl::Duration tick_interval = absl::Seconds(10);  // for the caller's timer
  double alpha = 0.01;             // false-rollback budget of the whole plan (all gates)
  double beta = 0.05;              // per gate: chance a must-catch candidate passes a stage
  int64_t min_clusters = 20;       // routing buckets per arm before a gate is judged
  // Both arms are compared within strata this long (and never across a
  // stage boundary), so a shared outage, a swing or a burst moves both
  // sides of one stratum; folded at the first tick after it has passed.
  absl::Duration stratum = absl::Minutes(1);
  // Where a required gate must PASS (its always-valid upper bound below the
  // regression it must catch) before promotion. false: at the last judged
  // stage (the highest percent below 100) and, for agreement, the shadow
  // stage; earlier stages promote when no gate fails and every required
  // gate has its data. The must-catch power holds either way: a candidate
  // that bad passes the last stage with probability ≤ beta. true: at every
  // stage (slower, and a stage with few users may never decide).
  bool prove_every_stage = false;
  // Adjust each contrast for every bucket's own production-side history in
  // earlier stages (CUPED on the bucket; rollout/evidence.h): a user who
  // always fails on production is expected to fail on the candidate too.
  bool history_adjustment = true;
  ErrorRateGate error_rate;
  QuantileGate latency;            // YAML key latency_p95 (or latency)
  QuantileGate ttft;               // YAML key ttft_p95 (or ttft)
  SatisfactionGate satisfaction;
  CostGate cost;
  AgreementGate agreement;
  CriticalGate critical;

  // DefaultStages is shadow(5m, 200) → 1% → 5% → 25% → 50% (10m, 500
  // samples each; 25% and 50% need 1000) → 100%.
  static std::vector<StageConfig> DefaultStages();
};

// ParseRolloutConfig reads the `rollout:` section; an undefined node gives
// the defaults. Errors are InvalidArgument naming the key path:
//   "rollout.stages[2].percent: must be in 0..100, got 120".
// Keys: stages (list of {percent, min_bake, min_samples, max_bake} or bare
// percents), rollback_target (zero | previous_stage), windows {recent,
// slots}, tick_interval, judge {alpha, beta, min_clusters, stratum,
// prove_every_stage, history_adjustment}, gates
// {error_rate {max_ratio, max_abs_increase, tolerated_ratio}, latency_p95
// and ttft_p95 {quantile, max_ratio, tolerated_ratio, min_samples},
// satisfaction {max_drop, tolerated_drop, alert_drop, ...},
// cost_per_request {max_ratio, tolerated_ratio, ...}, agreement {min,
// tolerated, min_samples}, critical {max_ratio, max_error_rate,
// min_requests, confidence}}; every gate also takes `enabled`.
[[nodiscard]] absl::StatusOr<RolloutConfig> ParseRolloutConfig(const ConfigNode& node);

// IsEmptyDelta: an evidence delta (Controller::TakeEvidenceDelta) that
// recorded nothing.
bool IsEmptyDelta(const understudy::v1::JudgeEvidence& delta);

// PlanFingerprint identifies the stage percents, e.g. "0,1,5,25,50,100".
std::string PlanFingerprint(const RolloutConfig& config);

// ---------------------------------------------------------------- inputs --

// How an exchange ended. 429 is counted apart and is not an error; other
// 4xx are the caller's fault and are not errors either.
enum class OutcomeClass {
  kOk,
  kServerError,   // 5xx
  kTimeout,
  kTransport,     // connection refused/reset, DNS, TLS
  kInvalidBody,   // unparseable body or broken stream
  kThrottled,     // 429
  kClientError,   // other 4xx
};

// IsError is true for 5xx, timeout, transport and invalid body.
bool IsError(OutcomeClass c);

// OutcomeClassFromHttp maps a status code (0 = no response) to a class.
OutcomeClass OutcomeClassFromHttp(int status_code);

// OutcomeClassName names a class for metrics labels, spans and reports:
// "ok", "server_error", "timeout", "transport", "invalid_body",
// "throttled", "client_error".
std::string_view OutcomeClassName(OutcomeClass c);

// The one name of each enum value, for metrics labels, span attributes,
// logs, CLI text and reports (the admin JSON carries the proto enum names,
// e.g. "ACTION_ROLLBACK"; these are the words people read):
//   PhaseName: "shadow", "canary", "paused", "promoted", "rolled_back"
//     ("unspecified" otherwise).
//   GateOutcomeName: "pass", "fail", "inconclusive" ("unspecified" otherwise).
//   DecisionActionName: "promote", "rollback", "pause", "resume",
//     "set_weight", "hold" ("unspecified" otherwise).
//   ArmName: "production", "candidate" ("unknown" otherwise: an exchange
//     whose arm is not known). Also the x-understudy-arm header value.
//   ExchangeSourceName: "live", "shadow", "noise", "eval" ("unknown"
//     otherwise).
// The returned text is static.
const char* PhaseName(understudy::v1::RolloutPhase phase);
const char* GateOutcomeName(understudy::v1::GateOutcome outcome);
std::string_view DecisionActionName(understudy::v1::DecisionAction action);
// "none", "min_bake", "waiting_for_data", "inconclusive",
// "shadow_no_comparisons", "paused", "coordination", "storage": the label
// of understudy_rollout_hold.
std::string_view HoldReasonName(understudy::v1::HoldReason reason);
std::string_view ArmName(understudy::v1::Arm arm);
std::string_view ExchangeSourceName(understudy::v1::ExchangeSource source);

// An unknown routing bucket: the judge then makes the request its own
// cluster (a bucket hashed from request_id, or a rotating one), which is
// the independent-requests assumption.
inline constexpr int32_t kUnknownBucket = -1;

struct Outcome {
  OutcomeClass status = OutcomeClass::kOk;
  std::optional<absl::Duration> latency;   // whole exchange
  std::optional<absl::Duration> ttft;      // time to first token/body byte
  std::optional<double> cost;              // currency units per request
  std::string_view request_id;             // kept for decision records
  // The routing bucket of the request's sticky key, Router::Bucket(key)
  // (Controller::BucketOf): the judge's unit of analysis. For a shadow
  // call, the bucket of the mirrored live request.
  int32_t bucket = kUnknownBucket;
};

// A shadow comparison: the candidate's answer to a mirrored production
// request, and whether compare/ found a major difference.
struct ShadowComparison {
  bool compared = true;         // false when no verdict (e.g. shadow call failed)
  bool major_diff = false;
  Outcome candidate;            // the shadow call's outcome
};

// --------------------------------------------------------- persistence --

// TransitionLog persists a transition. The controller calls Commit with the
// new state and the decision BEFORE the transition takes effect; if Commit
// fails, nothing changes and the error is returned to the caller. Commit is
// called with the controller's command lock held, one call at a time.
class TransitionLog {
 public:
  virtual ~TransitionLog() = default;
  [[nodiscard]] virtual absl::Status Commit(const understudy::v1::RolloutState& state,
                                            const understudy::v1::Decision& decision) = 0;
};

// InMemoryTransitionLog keeps every committed decision (tests, simulator).
// FailNextCommit makes the next Commit return `status` (like leveldb's
// ErrorEnv). Thread-safe.
class InMemoryTransitionLog final : public TransitionLog {
 public:
  [[nodiscard]] absl::Status Commit(const understudy::v1::RolloutState& state,
                                    const understudy::v1::Decision& decision) override;
  void FailNextCommit(absl::Status status);
  std::vector<understudy::v1::Decision> Decisions() const;
  std::optional<understudy::v1::RolloutState> LastState() const;
  size_t size() const;

 private:
  mutable absl::Mutex mu_;
  std::vector<understudy::v1::Decision> decisions_ ABSL_GUARDED_BY(mu_);
  std::optional<understudy::v1::RolloutState> last_ ABSL_GUARDED_BY(mu_);
  absl::Status fail_next_ ABSL_GUARDED_BY(mu_);
};

// ------------------------------------------------------------ controller --

class Controller {
 public:
  // The controller starts at stages[0] (shadow, or the first canary stage)
  // and sets `router`'s weight to it at once; call Restore before serving
  // traffic to resume a saved rollout. `config` must come from
  // ParseRolloutConfig (or be valid in the same sense). `clock`, `router`
  // and `log` must outlive the controller.
  Controller(RolloutConfig config, const Clock& clock, Router& router, TransitionLog& log);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  // RecordOutcome counts one live exchange served by `arm`
  // (ARM_UNSPECIFIED is ignored). Cheap: one lock, O(1).
  void RecordOutcome(understudy::v1::Arm arm, const Outcome& outcome);
  // RecordComparison counts one shadow call (candidate health in the shadow
  // stage, and the agreement rate).
  void RecordComparison(const ShadowComparison& comparison);
  // RecordFeedback counts a satisfaction score for the exchange served by
  // `arm` whose sticky key is in `bucket`; scores outside [0,1] or NaN are
  // ignored (returns false).
  bool RecordFeedback(understudy::v1::Arm arm, double score, int32_t bucket = kUnknownBucket);
  // BucketOf is the routing bucket of a sticky key (the router's, so it is
  // the one routing used): what Outcome::bucket and RecordFeedback want.
  int32_t BucketOf(std::string_view sticky_key) const;

  // Tick runs the judge and returns the decision taken: promote, rollback,
  // pause (max bake reached) or hold. Only transitions are committed to the
  // log; a failed Commit is returned and changes nothing.
  [[nodiscard]] absl::StatusOr<understudy::v1::Decision> Tick();

  // Manual commands, valid in every state; an invalid transition returns
  // FailedPrecondition (bad arguments: InvalidArgument) and changes
  // nothing. `actor` is the operator's name (required).
  //
  // Promote goes to the next stage, or to 100% with to_full. From paused it
  // promotes and unpauses; from rolled_back it restarts the plan at the
  // first stage (a retry); from promoted it fails.
  [[nodiscard]] absl::StatusOr<understudy::v1::Decision> Promote(std::string_view actor,
                                                                 bool to_full = false);
  // Pause holds the current weight; the judge stops acting until Resume.
  [[nodiscard]] absl::StatusOr<understudy::v1::Decision> Pause(std::string_view actor,
                                                               std::string_view reason);
  // Resume continues the paused stage with a fresh bake clock and windows.
  [[nodiscard]] absl::StatusOr<understudy::v1::Decision> Resume(std::string_view actor);
  // Rollback sends all traffic to production (phase rolled_back). `reason`
  // is required.
  [[nodiscard]] absl::StatusOr<understudy::v1::Decision> Rollback(std::string_view actor,
                                                                  std::string_view reason);
  // SetWeight sets the candidate's share (0..100 percent, basis-point
  // precision) and pauses so the judge does not undo it; Resume judges the
  // stage at or below that weight. 100 means promoted.
  [[nodiscard]] absl::StatusOr<understudy::v1::Decision> SetWeight(std::string_view actor,
                                                                   double percent);

  // State returns a copy of the current state.
  understudy::v1::RolloutState State() const;
  // Restore resumes a saved state (after a restart): sets the router weight
  // and starts the judge's evidence empty (the stage start time is kept);
  // call RestoreEvidence next to resume the evidence too.
  // FailedPrecondition if the state's plan fingerprint differs from this
  // config's; InvalidArgument if the state is malformed. Not committed.
  [[nodiscard]] absl::Status Restore(const understudy::v1::RolloutState& state);
  // SaveEvidence returns the judge's evidence: stage windows (per arm and
  // per routing bucket), recent windows, and the folded sequential
  // statistics of earlier stages, stamped with the current state (version,
  // epoch, stage). The caller stores it (one record, overwritten) after
  // every Tick and every manual command.
  understudy::v1::JudgeEvidence SaveEvidence() const;
  // RestoreEvidence resumes saved evidence after Restore(state), so a
  // restart neither resets a nearly-decided test nor counts a request
  // twice (what was recorded after the save is lost, never doubled).
  // Evidence of the current stage run is restored whole; evidence of an
  // earlier stage run of the same attempt (the process stopped between a
  // transition and the next save) is folded in as that stage, as the
  // transition would have done. FailedPrecondition (and the evidence stays
  // empty) if it belongs to another plan or attempt (evidence_epoch) or is
  // newer than the state; InvalidArgument if malformed.
  [[nodiscard]] absl::Status RestoreEvidence(const understudy::v1::JudgeEvidence& evidence);
  // ---- Fleet mode (docs/fleet.md): one judge, many replicas recording.
  //
  // EnableEvidenceDeltas makes Record* add to an outgoing delta instead of
  // the judge's evidence; the judge's evidence then holds only what
  // MergeEvidenceDelta (or RestoreEvidence) put there. Irreversible.
  void EnableEvidenceDeltas();
  // TakeEvidenceDelta returns what Record* added since the last call,
  // stamped with the state it was recorded under (fingerprint, epoch,
  // stage index and start), and starts a new delta. Empty proto without
  // EnableEvidenceDeltas. The timings are counted against the thresholds of
  // SetDeltaThresholds (the judge's, published by the fleet's leader).
  understudy::v1::JudgeEvidence TakeEvidenceDelta();
  // MergeEvidenceDelta adds a delta (any replica's, this one's included) to
  // the judge's evidence. FailedPrecondition if it was recorded in another
  // stage run than the current one (the caller drops and counts it);
  // InvalidArgument if malformed. Nothing changes on error.
  [[nodiscard]] absl::Status MergeEvidenceDelta(const understudy::v1::JudgeEvidence& delta);
  // SetDeltaThresholds sets the latency and TTFT thresholds (ms; 0 = none)
  // the outgoing delta counts timings against. The judge's own Tick keeps
  // them in step with its evidence.
  void SetDeltaThresholds(double latency_ms, double ttft_ms);
  // Adopt applies a state another replica committed (through the shared
  // TransitionLog) if it is newer than this one's: sets the router's weight
  // and treats the evidence as the transition did (same stage run: kept; a
  // new stage run: the old one folded; a new attempt: afresh), and drops an
  // outgoing delta of an ended stage run. Returns whether it was newer.
  // Not committed. Errors as Restore.
  [[nodiscard]] absl::StatusOr<bool> Adopt(const understudy::v1::RolloutState& state);

  // Health returns the per-arm windows (since stage start, and recent),
  // the gates of the judge's latest evaluation (none before its first
  // Tick; kept while it is idle), and why the latest tick held.
  understudy::v1::HealthSnapshot Health() const;

  const RolloutConfig& config() const { return config_; }

 private:
  struct Impl;
  struct Locked;
  const RolloutConfig config_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace understudy::rollout

#endif  // UNDERSTUDY_ROLLOUT_ROLLOUT_H_
