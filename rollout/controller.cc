// The rollout controller: the state machine (phases, stages, transitions
// committed through the TransitionLog, manual commands) and the health
// windows it feeds the judge (judge.h).
#include <algorithm>
#include <cmath>
#include <deque>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "rollout/health.h"
#include "rollout/judge.h"
#include "rollout/rollout.h"

namespace understudy::rollout {

using understudy::v1::Arm;
using understudy::v1::Decision;
using understudy::v1::DecisionAction;
using understudy::v1::GateEvaluation;
using understudy::v1::RolloutPhase;
using understudy::v1::RolloutState;

namespace {

constexpr size_t kTriggerIds = 8;
constexpr char kJudgeActor[] = "judge";

int64_t Micros(absl::Time t) { return absl::ToUnixMicros(t); }

// The judge acts only while a stage is running.
bool IsJudged(RolloutPhase phase) {
  return phase == understudy::v1::PHASE_SHADOW || phase == understudy::v1::PHASE_CANARY;
}

// What restarts with a transition.
enum class EvidenceRestart {
  kNone,   // windows and tests go on (pause, rollback to zero)
  kStage,  // the stage's windows restart empty; the rollout-wide error-rate
           // test goes on (a new stage, a fresh bake clock)
  kAll,    // the windows and the rollout-wide error-rate test restart (a
           // retry after rollback, or the judge stepping one stage back)
};

// TransitionRequest is one transition for Impl::Transition to commit.
struct TransitionRequest {
  DecisionAction action = understudy::v1::ACTION_UNSPECIFIED;
  std::string actor;                  // kJudgeActor or the operator's name
  std::string reason;                 // also the new state's last_reason
  RolloutState next;                  // version and fingerprint are set on commit
  std::vector<GateEvaluation> gates;  // the judge's evidence (empty for manual commands)
  std::vector<std::string> trigger_request_ids;
  EvidenceRestart restart = EvidenceRestart::kNone;
};

std::string BakedText(absl::Duration baked) {
  return absl::FormatDuration(absl::Trunc(baked, absl::Seconds(1)));
}

}  // namespace

struct Controller::Impl {
  Impl(const RolloutConfig& c, const Clock& clk, Router& r, TransitionLog& l)
      : config(c),
        clock(clk),
        router(r),
        log(l),
        fingerprint(PlanFingerprint(c)),
        judge(c),
        prod_recent(c.recent_window, c.recent_slots),
        cand_recent(c.recent_window, c.recent_slots),
        shadow_recent(c.recent_window, c.recent_slots) {}

  const RolloutConfig& config;
  const Clock& clock;
  Router& router;
  TransitionLog& log;
  const std::string fingerprint;

  // Lock order: mu before data_mu.
  mutable absl::Mutex mu;
  RolloutState state ABSL_GUARDED_BY(mu);
  // The gates of the judge's latest evaluation (kept while it is idle).
  google::protobuf::RepeatedPtrField<GateEvaluation> last_gates ABSL_GUARDED_BY(mu);
  Judge judge ABSL_GUARDED_BY(mu);

  mutable absl::Mutex data_mu ABSL_ACQUIRED_AFTER(mu);
  ArmWindow prod ABSL_GUARDED_BY(data_mu);
  ArmWindow cand ABSL_GUARDED_BY(data_mu);
  ArmWindow shadow ABSL_GUARDED_BY(data_mu);
  SlidingCounters prod_recent ABSL_GUARDED_BY(data_mu);
  SlidingCounters cand_recent ABSL_GUARDED_BY(data_mu);
  SlidingCounters shadow_recent ABSL_GUARDED_BY(data_mu);
  std::deque<std::string> cand_error_ids ABSL_GUARDED_BY(data_mu);

  struct Snapshot {
    ArmWindow prod, cand, shadow;
    Counters prod_recent, cand_recent, shadow_recent;
    std::vector<std::string> cand_error_ids;
  };

  Snapshot TakeSnapshot(absl::Time now) const {
    absl::MutexLock lock(&data_mu);
    Snapshot s;
    s.prod = prod;
    s.cand = cand;
    s.shadow = shadow;
    s.prod_recent = prod_recent.Sum(now);
    s.cand_recent = cand_recent.Sum(now);
    s.shadow_recent = shadow_recent.Sum(now);
    s.cand_error_ids.assign(cand_error_ids.begin(), cand_error_ids.end());
    return s;
  }

  // ResetWindows empties the stage windows (the recent windows go on).
  void ResetWindows() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    {
      absl::MutexLock lock(&data_mu);
      prod = ArmWindow{};
      cand = ArmWindow{};
      shadow = ArmWindow{};
    }
    judge.StartStage();
  }

  void RestartEvidence(EvidenceRestart restart) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (restart == EvidenceRestart::kAll) judge.RestartErrorTest();
    if (restart != EvidenceRestart::kNone) ResetWindows();
  }

  // StageState is the state of running stage `i` from `now`.
  RolloutState StageState(int i, absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    RolloutState s = state;
    const StageConfig& st = config.stages[i];
    s.set_stage_index(i);
    s.set_weight_basis_points(st.percent * 100);
    s.set_phase(st.percent == 0     ? understudy::v1::PHASE_SHADOW
                : st.percent >= 100 ? understudy::v1::PHASE_PROMOTED
                                    : understudy::v1::PHASE_CANARY);
    s.set_stage_started_unix_micros(Micros(now));
    s.clear_paused_reason();
    s.set_phase_before_pause(understudy::v1::PHASE_UNSPECIFIED);
    return s;
  }

  // Transition commits `t.next` with its decision, then applies it: sets
  // the router's weight and restarts the evidence `t.restart` names. If
  // the log refuses, nothing changes and its error is returned.
  absl::StatusOr<Decision> Transition(TransitionRequest t, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    t.next.set_version(state.version() + 1);
    t.next.set_plan_fingerprint(fingerprint);
    t.next.set_last_reason(t.reason);
    Decision d;
    d.set_time_unix_micros(Micros(now));
    d.set_action(t.action);
    d.set_actor(std::move(t.actor));
    d.set_reason(std::move(t.reason));
    *d.mutable_from() = state;
    *d.mutable_to() = t.next;
    for (GateEvaluation& g : t.gates) *d.add_gates() = std::move(g);
    for (std::string& id : t.trigger_request_ids) d.add_trigger_request_ids(std::move(id));
    // Persist first: if the log refuses, nothing changes.
    RETURN_IF_ERROR(log.Commit(t.next, d));
    state = std::move(t.next);
    router.SetWeightBasisPoints(state.weight_basis_points());
    RestartEvidence(t.restart);
    return d;
  }

  // Hold is the judge's decision to change nothing (never committed).
  Decision Hold(std::string reason, std::vector<GateEvaluation> gates, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    Decision d;
    d.set_time_unix_micros(Micros(now));
    d.set_action(understudy::v1::ACTION_HOLD);
    d.set_actor(kJudgeActor);
    d.set_reason(std::move(reason));
    *d.mutable_from() = state;
    *d.mutable_to() = state;
    for (GateEvaluation& g : gates) *d.add_gates() = std::move(g);
    return d;
  }

  // ------------------------------------------------------ the judge's tick

  absl::StatusOr<Decision> Tick() {
    absl::MutexLock lock(&mu);
    const absl::Time now = clock.Now();
    const RolloutPhase phase = state.phase();
    if (!IsJudged(phase)) {
      return Hold(absl::StrCat("judge idle: rollout is ", PhaseName(phase)), {}, now);
    }
    const Snapshot snap = TakeSnapshot(now);
    const bool in_shadow = phase == understudy::v1::PHASE_SHADOW;
    const JudgeInput input{in_shadow ? CandidateTraffic::kShadow : CandidateTraffic::kLive,
                           snap.prod, in_shadow ? snap.shadow : snap.cand,
                           in_shadow ? snap.shadow_recent : snap.cand_recent, snap.shadow.c};
    JudgeVerdict verdict = judge.Evaluate(input);
    if (verdict.outcome == understudy::v1::GATE_FAIL) {
      return JudgeRollback(std::move(verdict), snap.cand_error_ids, now);
    }
    const int64_t samples = input.candidate.c.requests;
    std::vector<std::string> missing = PromotionBlockers(verdict, samples, now);
    if (missing.empty()) return JudgePromote(std::move(verdict.gates), samples, now);
    if (MaxBakeReached(now)) return JudgePause(std::move(verdict.gates), missing, now);
    return Hold(absl::StrCat("waiting: ", absl::StrJoin(missing, "; ")), std::move(verdict.gates),
                now);
  }

  absl::Duration Baked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return now - absl::FromUnixMicros(state.stage_started_unix_micros());
  }

  const StageConfig& CurrentStage() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return config.stages[state.stage_index()];
  }

  // PromotionBlockers lists what keeps the stage from promotion when no
  // gate failed: bake time, candidate samples, inconclusive required gates.
  std::vector<std::string> PromotionBlockers(const JudgeVerdict& verdict, int64_t samples,
                                             absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const StageConfig& stage = CurrentStage();
    const absl::Duration baked = Baked(now);
    std::vector<std::string> missing;
    if (baked < stage.min_bake) {
      missing.push_back(
          absl::StrCat("bake ", BakedText(baked), " of ", absl::FormatDuration(stage.min_bake)));
    }
    if (samples < stage.min_samples) {
      missing.push_back(absl::StrCat(samples, " of ", stage.min_samples, " candidate samples"));
    }
    if (!verdict.waiting.empty()) {
      missing.push_back(absl::StrCat("inconclusive: ", absl::StrJoin(verdict.waiting, ", ")));
    }
    return missing;
  }

  bool MaxBakeReached(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const StageConfig& stage = CurrentStage();
    return stage.max_bake > absl::ZeroDuration() && Baked(now) >= stage.max_bake;
  }

  // JudgeStepsBack: the judge's rollback goes one stage back rather than to 0%.
  bool JudgeStepsBack() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return config.rollback_target == RollbackTarget::kPreviousStage && state.stage_index() > 0;
  }

  // JudgeRollbackState is the judge's rollback destination.
  RolloutState JudgeRollbackState(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    RolloutState s;
    if (JudgeStepsBack()) {
      s = StageState(state.stage_index() - 1, now);
    } else {
      s = state;
      s.set_phase(understudy::v1::PHASE_ROLLED_BACK);
      s.set_weight_basis_points(0);
    }
    s.set_rollbacks(state.rollbacks() + 1);
    return s;
  }

  absl::StatusOr<Decision> JudgeRollback(JudgeVerdict verdict,
                                         const std::vector<std::string>& cand_error_ids,
                                         absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    TransitionRequest t;
    t.action = understudy::v1::ACTION_ROLLBACK;
    t.actor = kJudgeActor;
    t.reason = absl::StrCat("gate failed: ", absl::StrJoin(verdict.failed, "; "));
    t.next = JudgeRollbackState(now);
    t.gates = std::move(verdict.gates);
    if (verdict.error_gate_failed) t.trigger_request_ids = cand_error_ids;
    t.restart = JudgeStepsBack() ? EvidenceRestart::kAll : EvidenceRestart::kNone;
    return Transition(std::move(t), now);
  }

  absl::StatusOr<Decision> JudgePromote(std::vector<GateEvaluation> gates, int64_t samples,
                                        absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const int next_index = state.stage_index() + 1;
    TransitionRequest t;
    t.action = understudy::v1::ACTION_PROMOTE;
    t.actor = kJudgeActor;
    t.reason = absl::StrCat("all gates pass after ", BakedText(Baked(now)), " and ", samples,
                            " candidate samples; to ", config.stages[next_index].percent, "%");
    t.next = StageState(next_index, now);
    t.gates = std::move(gates);
    t.restart = EvidenceRestart::kStage;
    return Transition(std::move(t), now);
  }

  absl::StatusOr<Decision> JudgePause(std::vector<GateEvaluation> gates,
                                      const std::vector<std::string>& missing, absl::Time now)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    TransitionRequest t;
    t.action = understudy::v1::ACTION_PAUSE;
    t.actor = kJudgeActor;
    t.reason = absl::StrCat("max bake ", absl::FormatDuration(CurrentStage().max_bake),
                            " reached without a verdict: ", absl::StrJoin(missing, "; "));
    t.next = state;
    t.next.set_phase(understudy::v1::PHASE_PAUSED);
    t.next.set_phase_before_pause(state.phase());
    t.next.set_paused_reason(t.reason);
    t.gates = std::move(gates);
    return Transition(std::move(t), now);
  }
};

Controller::Controller(RolloutConfig config, const Clock& clock, Router& router,
                       TransitionLog& log)
    : config_(std::move(config)), impl_(std::make_unique<Impl>(config_, clock, router, log)) {
  absl::MutexLock lock(&impl_->mu);
  impl_->state = impl_->StageState(0, clock.Now());
  impl_->state.set_plan_fingerprint(impl_->fingerprint);
  router.SetWeightBasisPoints(impl_->state.weight_basis_points());
}

Controller::~Controller() = default;

void Controller::RecordOutcome(Arm arm, const Outcome& outcome) {
  if (arm != understudy::v1::ARM_PRODUCTION && arm != understudy::v1::ARM_CANDIDATE) return;
  absl::Time now = impl_->clock.Now();
  absl::MutexLock lock(&impl_->data_mu);
  if (arm == understudy::v1::ARM_PRODUCTION) {
    impl_->prod.Add(outcome);
    impl_->prod_recent.Slot(now).Add(outcome);
  } else {
    impl_->cand.Add(outcome);
    impl_->cand_recent.Slot(now).Add(outcome);
    if (IsError(outcome.status) && !outcome.request_id.empty()) {
      impl_->cand_error_ids.emplace_back(outcome.request_id);
      if (impl_->cand_error_ids.size() > kTriggerIds) impl_->cand_error_ids.pop_front();
    }
  }
}

void Controller::RecordComparison(const ShadowComparison& comparison) {
  absl::Time now = impl_->clock.Now();
  absl::MutexLock lock(&impl_->data_mu);
  impl_->shadow.Add(comparison.candidate);
  Counters& slot = impl_->shadow_recent.Slot(now);
  slot.Add(comparison.candidate);
  if (comparison.compared) {
    ++impl_->shadow.c.comparisons;
    ++slot.comparisons;
    if (comparison.major_diff) {
      ++impl_->shadow.c.major_diffs;
      ++slot.major_diffs;
    }
  }
}

bool Controller::RecordFeedback(Arm arm, double score) {
  if (!(score >= 0 && score <= 1)) return false;
  if (arm != understudy::v1::ARM_PRODUCTION && arm != understudy::v1::ARM_CANDIDATE) return false;
  absl::Time now = impl_->clock.Now();
  absl::MutexLock lock(&impl_->data_mu);
  bool prod = arm == understudy::v1::ARM_PRODUCTION;
  (prod ? impl_->prod : impl_->cand).c.satisfaction.Add(score);
  (prod ? impl_->prod_recent : impl_->cand_recent).Slot(now).satisfaction.Add(score);
  return true;
}

absl::StatusOr<Decision> Controller::Tick() {
  absl::StatusOr<Decision> d = impl_->Tick();
  if (d.ok() && d->gates_size() > 0) {
    absl::MutexLock lock(&impl_->mu);
    impl_->last_gates = d->gates();
  }
  return d;
}

namespace {
absl::Status CheckActor(std::string_view actor) {
  if (actor.empty()) return absl::InvalidArgumentError("actor: required (the operator's name)");
  if (actor == kJudgeActor) {
    return absl::InvalidArgumentError(absl::StrCat("actor: \"", kJudgeActor, "\" is reserved"));
  }
  return absl::OkStatus();
}
}  // namespace

absl::StatusOr<Decision> Controller::Promote(std::string_view actor, bool to_full) {
  RETURN_IF_ERROR(CheckActor(actor));
  absl::MutexLock lock(&impl_->mu);
  absl::Time now = impl_->clock.Now();
  const RolloutState& s = impl_->state;
  const int last = static_cast<int>(config_.stages.size()) - 1;
  int target;
  bool retry = false;
  switch (s.phase()) {
    case understudy::v1::PHASE_PROMOTED:
      return absl::FailedPreconditionError("promote: the rollout is already promoted to 100%");
    case understudy::v1::PHASE_ROLLED_BACK:
      target = to_full ? last : 0;
      retry = true;
      break;
    default:
      target = to_full ? last : std::min(last, s.stage_index() + 1);
      break;
  }
  RolloutState next = impl_->StageState(target, now);
  std::string reason = absl::StrCat(retry ? "retry after rollback: " : "", "promoted by ",
                                    Av(actor), " to ", config_.stages[target].percent, "%");
  TransitionRequest t;
  t.action = understudy::v1::ACTION_PROMOTE;
  t.actor = std::string(actor);
  t.reason = std::move(reason);
  t.next = std::move(next);
  // A retry is a new attempt: the error-rate test starts over too.
  t.restart = retry ? EvidenceRestart::kAll : EvidenceRestart::kStage;
  return impl_->Transition(std::move(t), now);
}

absl::StatusOr<Decision> Controller::Pause(std::string_view actor, std::string_view reason) {
  RETURN_IF_ERROR(CheckActor(actor));
  absl::MutexLock lock(&impl_->mu);
  absl::Time now = impl_->clock.Now();
  const RolloutState& s = impl_->state;
  if (s.phase() == understudy::v1::PHASE_PAUSED) {
    return absl::FailedPreconditionError("pause: the rollout is already paused");
  }
  if (!IsJudged(s.phase())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "pause: the rollout is ", PhaseName(s.phase()), "; there is nothing to pause"));
  }
  std::string why = reason.empty() ? absl::StrCat("paused by ", Av(actor))
                                   : absl::StrCat("paused by ", Av(actor), ": ", Av(reason));
  TransitionRequest t;
  t.action = understudy::v1::ACTION_PAUSE;
  t.actor = std::string(actor);
  t.reason = why;
  t.next = s;
  t.next.set_phase(understudy::v1::PHASE_PAUSED);
  t.next.set_phase_before_pause(s.phase());
  t.next.set_paused_reason(why);
  return impl_->Transition(std::move(t), now);
}

absl::StatusOr<Decision> Controller::Resume(std::string_view actor) {
  RETURN_IF_ERROR(CheckActor(actor));
  absl::MutexLock lock(&impl_->mu);
  absl::Time now = impl_->clock.Now();
  const RolloutState& s = impl_->state;
  if (s.phase() != understudy::v1::PHASE_PAUSED) {
    return absl::FailedPreconditionError(
        absl::StrCat("resume: the rollout is not paused (it is ", PhaseName(s.phase()), ")"));
  }
  RolloutPhase before = s.phase_before_pause();
  if (!IsJudged(before)) {
    before = config_.stages[s.stage_index()].percent == 0 ? understudy::v1::PHASE_SHADOW
                                                          : understudy::v1::PHASE_CANARY;
  }
  TransitionRequest t;
  t.action = understudy::v1::ACTION_RESUME;
  t.actor = std::string(actor);
  t.reason = absl::StrCat("resumed by ", Av(actor));
  t.next = s;
  t.next.set_phase(before);
  t.next.set_phase_before_pause(understudy::v1::PHASE_UNSPECIFIED);
  t.next.clear_paused_reason();
  t.next.set_stage_started_unix_micros(absl::ToUnixMicros(now));
  // A fresh bake clock and windows for the resumed stage.
  t.restart = EvidenceRestart::kStage;
  return impl_->Transition(std::move(t), now);
}

absl::StatusOr<Decision> Controller::Rollback(std::string_view actor, std::string_view reason) {
  RETURN_IF_ERROR(CheckActor(actor));
  if (reason.empty()) return absl::InvalidArgumentError("rollback: a reason is required");
  absl::MutexLock lock(&impl_->mu);
  absl::Time now = impl_->clock.Now();
  const RolloutState& s = impl_->state;
  if (s.phase() == understudy::v1::PHASE_ROLLED_BACK) {
    return absl::FailedPreconditionError("rollback: the rollout is already rolled back");
  }
  TransitionRequest t;
  t.action = understudy::v1::ACTION_ROLLBACK;
  t.actor = std::string(actor);
  t.reason = absl::StrCat("rolled back by ", Av(actor), ": ", Av(reason));
  t.next = s;
  t.next.set_phase(understudy::v1::PHASE_ROLLED_BACK);
  t.next.set_weight_basis_points(0);
  t.next.set_phase_before_pause(understudy::v1::PHASE_UNSPECIFIED);
  t.next.clear_paused_reason();
  t.next.set_rollbacks(s.rollbacks() + 1);
  return impl_->Transition(std::move(t), now);
}

absl::StatusOr<Decision> Controller::SetWeight(std::string_view actor, double percent) {
  RETURN_IF_ERROR(CheckActor(actor));
  if (!(percent >= 0 && percent <= 100)) {
    return absl::InvalidArgumentError(
        absl::StrCat("set-weight: percent must be in 0..100, got ", percent));
  }
  int32_t bps = static_cast<int32_t>(std::lround(percent * 100));
  absl::MutexLock lock(&impl_->mu);
  absl::Time now = impl_->clock.Now();
  const RolloutState& s = impl_->state;
  const int last = static_cast<int>(config_.stages.size()) - 1;
  std::string reason = absl::StrFormat("weight set to %.2f%% by %s", bps / 100.0, Av(actor));
  RolloutState next;
  if (bps >= 10000) {
    next = impl_->StageState(last, now);
  } else {
    int index = 0;
    for (int i = 0; i <= last; ++i) {
      if (config_.stages[i].percent * 100 <= bps) index = i;
    }
    next = s;
    next.set_stage_index(index);
    next.set_weight_basis_points(bps);
    next.set_phase(understudy::v1::PHASE_PAUSED);
    next.set_phase_before_pause(config_.stages[index].percent == 0 ? understudy::v1::PHASE_SHADOW
                                                                   : understudy::v1::PHASE_CANARY);
    next.set_paused_reason(reason);
    next.set_stage_started_unix_micros(absl::ToUnixMicros(now));
  }
  TransitionRequest t;
  t.action = understudy::v1::ACTION_SET_WEIGHT;
  t.actor = std::string(actor);
  t.reason = std::move(reason);
  t.next = std::move(next);
  t.restart = EvidenceRestart::kStage;
  return impl_->Transition(std::move(t), now);
}

RolloutState Controller::State() const {
  absl::MutexLock lock(&impl_->mu);
  return impl_->state;
}

absl::Status Controller::Restore(const RolloutState& state) {
  if (state.plan_fingerprint() != impl_->fingerprint) {
    return absl::FailedPreconditionError(absl::StrCat(
        "restore: the saved rollout used stage plan [", state.plan_fingerprint(),
        "] but the config has [", impl_->fingerprint, "]; roll back or start a new rollout"));
  }
  if (state.phase() < understudy::v1::PHASE_SHADOW ||
      state.phase() > understudy::v1::PHASE_ROLLED_BACK) {
    return absl::InvalidArgumentError(absl::StrCat("restore: invalid phase ", state.phase()));
  }
  if (state.stage_index() < 0 || state.stage_index() >= static_cast<int>(config_.stages.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("restore: stage_index ", state.stage_index(), " out of range"));
  }
  if (state.weight_basis_points() < 0 || state.weight_basis_points() > kBucketCount) {
    return absl::InvalidArgumentError(absl::StrCat("restore: weight_basis_points ",
                                                   state.weight_basis_points(), " out of range"));
  }
  absl::MutexLock lock(&impl_->mu);
  impl_->state = state;
  impl_->router.SetWeightBasisPoints(state.weight_basis_points());
  impl_->RestartEvidence(EvidenceRestart::kAll);
  return absl::OkStatus();
}

understudy::v1::HealthSnapshot Controller::Health() const {
  absl::MutexLock lock(&impl_->mu);
  absl::Time now = impl_->clock.Now();
  understudy::v1::HealthSnapshot h;
  h.set_time_unix_micros(absl::ToUnixMicros(now));
  *h.mutable_state() = impl_->state;
  absl::Duration stage_age =
      now - absl::FromUnixMicros(impl_->state.stage_started_unix_micros());
  Impl::Snapshot s = impl_->TakeSnapshot(now);
  FillArmHealth(s.prod.c, &s.prod.latency_ms, &s.prod.ttft_ms, stage_age, h.mutable_production());
  FillArmHealth(s.cand.c, &s.cand.latency_ms, &s.cand.ttft_ms, stage_age, h.mutable_candidate());
  FillArmHealth(s.shadow.c, &s.shadow.latency_ms, &s.shadow.ttft_ms, stage_age, h.mutable_shadow());
  FillArmHealth(s.prod_recent, nullptr, nullptr, config_.recent_window,
                h.mutable_production_recent());
  FillArmHealth(s.cand_recent, nullptr, nullptr, config_.recent_window,
                h.mutable_candidate_recent());
  FillArmHealth(s.shadow_recent, nullptr, nullptr, config_.recent_window,
                h.mutable_shadow_recent());
  *h.mutable_gates() = impl_->last_gates;
  return h;
}

}  // namespace understudy::rollout
