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
//   // pipeline workers, per exchange:
//   Outcome outcome;                            // OutcomeClass::kOk
//   outcome.latency = absl::Milliseconds(840);
//   controller.RecordOutcome(v1::ARM_CANDIDATE, outcome);
//   // every few seconds:
//   ASSIGN_OR_RETURN(v1::Decision d, controller.Tick());
//   // d.action(): ACTION_HOLD, ACTION_PROMOTE, ACTION_ROLLBACK or ACTION_PAUSE
//   std::string_view word = DecisionActionName(d.action());   // "hold", "rollback", ...
//   // operators:
//   RETURN_IF_ERROR(controller.Rollback("alice", "bad answers in #support").status());
//
// The judge. Every Tick evaluates each enabled gate and gets pass, fail or
// inconclusive (as in Argo Rollouts):
//   - error_rate: a sequential probability ratio test (Wald) on the ratio of
//     the candidate's error rate to production's, conditioned on the errors
//     seen (so production's unknown rate cancels out). H0: ratio 1, H1:
//     ratio r1 where the candidate rate p1 = max(p_prod * max_ratio,
//     p_prod + max_abs_increase). The likelihood ratio is accumulated per
//     tick over the whole rollout and is a test supermartingale under H0, so
//     the false-rollback probability of the whole rollout is at most alpha
//     however often Tick runs (Ville's inequality). The gate passes for a
//     stage when the stage's own log-LR falls to log(beta), or when the
//     candidate's 99% Clopper-Pearson upper bound is below p1.
//   - latency_p95 / ttft_p95: the fraction q of candidate requests slower
//     than max_ratio × production's quantile, tested with an SPRT of
//     q = 1-quantile against q = 1-quantile+margin.
//   - satisfaction, cost_per_request, agreement: always-valid normal-mixture
//     sequential tests (mSPRT, Johari et al.) on the difference of means
//     against the configured tolerance, with minimum samples.
//   - critical: the recent window's candidate error rate is above the
//     ceiling with 99% confidence → immediate rollback.
//   Per-stage tests split alpha evenly over the judged stages (Bonferroni).
// Any gate fails → roll back (to 0%, or one stage back). All gates pass,
// bake time and candidate samples reached → promote. Otherwise hold; at
// max bake → paused for a human, with the reason. (rollout/judge.h
// evaluates the gates; the controller is the state machine acting on the
// judge's verdict.)
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

struct ErrorRateGate {
  bool enabled = true;
  double max_ratio = 1.5;          // a regression is above BOTH limits
  double max_abs_increase = 0.01;  // 0 → ratio only
};

struct QuantileGate {
  bool enabled = true;
  double quantile = 0.95;
  double max_ratio = 1.5;          // candidate q-quantile vs production's
  double margin = 0.05;            // H1: fraction above = (1-quantile)+margin
  int64_t min_samples = 50;        // per arm
};

struct SatisfactionGate {
  bool enabled = true;
  double max_drop = 0.1;           // candidate mean may be this much lower
  int64_t min_samples = 30;        // feedback scores per arm
  bool must_have_data = false;     // false: no feedback does not block promotion
};

struct CostGate {
  bool enabled = true;
  double max_ratio = 2.0;
  int64_t min_samples = 50;
  bool must_have_data = false;
};

struct AgreementGate {
  bool enabled = true;
  double min = 0.9;                // fraction of shadow comparisons not major_diff
  int64_t min_samples = 50;
  // Required in the shadow stage; in canary stages judged only when
  // comparisons keep arriving.
};

struct CriticalGate {
  bool enabled = true;
  double max_error_rate = 0.2;
  int64_t min_requests = 20;       // in the recent window
  double confidence = 0.99;
};

struct RolloutConfig {
  std::vector<StageConfig> stages = DefaultStages();
  RollbackTarget rollback_target = RollbackTarget::kZero;
  absl::Duration recent_window = absl::Minutes(5);
  int32_t recent_slots = 10;
  absl::Duration tick_interval = absl::Seconds(10);  // for the caller's timer
  double alpha = 0.01;             // false-rollback budget per gate per rollout
  double beta = 0.05;              // miss probability at the H1 effect size
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
// slots}, tick_interval, judge {alpha, beta}, gates {error_rate,
// latency_p95, ttft_p95, satisfaction, cost_per_request, agreement,
// critical}.
[[nodiscard]] absl::StatusOr<RolloutConfig> ParseRolloutConfig(const ConfigNode& node);

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
std::string_view ArmName(understudy::v1::Arm arm);
std::string_view ExchangeSourceName(understudy::v1::ExchangeSource source);

struct Outcome {
  OutcomeClass status = OutcomeClass::kOk;
  std::optional<absl::Duration> latency;   // whole exchange
  std::optional<absl::Duration> ttft;      // time to first token/body byte
  std::optional<double> cost;              // currency units per request
  std::string_view request_id;             // kept for decision records
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
  // RecordFeedback counts a satisfaction score; scores outside [0,1] or
  // NaN are ignored (returns false).
  bool RecordFeedback(understudy::v1::Arm arm, double score);

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
  // and restarts the health windows (the stage start time is kept).
  // FailedPrecondition if the state's plan fingerprint differs from this
  // config's; InvalidArgument if the state is malformed. Not committed.
  [[nodiscard]] absl::Status Restore(const understudy::v1::RolloutState& state);
  // Health returns the per-arm windows (since stage start, and recent) and
  // the gates of the judge's latest evaluation (none before its first
  // Tick; kept while it is idle).
  understudy::v1::HealthSnapshot Health() const;

  const RolloutConfig& config() const { return config_; }

 private:
  struct Impl;
  const RolloutConfig config_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace understudy::rollout

#endif  // UNDERSTUDY_ROLLOUT_ROLLOUT_H_
