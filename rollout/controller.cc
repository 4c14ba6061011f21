// The rollout controller: the state machine (phases, stages, transitions
// committed through the TransitionLog, manual commands), the evidence it
// feeds the judge (evidence.h, judge.h), and why each tick held.
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
#include "rollout/evidence.h"
#include "rollout/health.h"
#include "rollout/judge.h"
#include "rollout/rollout.h"

namespace understudy::rollout {

using understudy::v1::Arm;
using understudy::v1::Decision;
using understudy::v1::DecisionAction;
using understudy::v1::GateEvaluation;
using understudy::v1::HoldReason;
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
  kStage,  // the stage's windows are folded into the tests as one stratum
           // and restart empty; the tests go on (a new stage, a fresh bake
           // clock)
  kAll,    // the windows and every test restart, and the state's
           // evidence_epoch moves on (a retry after rollback, or the judge
           // stepping one stage back)
};

// Requests whose routing bucket is unknown become their own cluster: a
// bucket hashed from the request id (salted apart from routing), or a
// rotating one.
constexpr char kUnclusteredSalt[] = "understudy-unclustered";

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
        evidence(c) {}

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
  // Why the latest tick held, and what would unblock it.
  HoldReason hold_reason ABSL_GUARDED_BY(mu) = understudy::v1::HOLD_NONE;
  std::string unblock ABSL_GUARDED_BY(mu);

  mutable absl::Mutex data_mu ABSL_ACQUIRED_AFTER(mu);
  Evidence evidence ABSL_GUARDED_BY(data_mu);
  // Fleet mode (docs/fleet.md): Record* go to `outgoing`, a delta this
  // replica hands to the fleet's judge, instead of `evidence`, which then
  // holds only what the judge merged.
  bool deltas ABSL_GUARDED_BY(data_mu) = false;
  std::unique_ptr<Evidence> outgoing ABSL_GUARDED_BY(data_mu);
  std::deque<std::string> outgoing_error_ids ABSL_GUARDED_BY(data_mu);
  double delta_latency_ms ABSL_GUARDED_BY(data_mu) = 0;
  double delta_ttft_ms ABSL_GUARDED_BY(data_mu) = 0;

  // Recording is the evidence Record* add to.
  Evidence& Recording() ABSL_EXCLUSIVE_LOCKS_REQUIRED(data_mu) {
    return deltas ? *outgoing : evidence;
  }
  void NewOutgoing() ABSL_EXCLUSIVE_LOCKS_REQUIRED(data_mu) {
    outgoing = std::make_unique<Evidence>(config);
    outgoing->SetThresholds(delta_latency_ms, delta_ttft_ms);
    outgoing_error_ids.clear();
  }
  static void NoteErrorId(std::deque<std::string>& ids, std::string_view id) {
    ids.emplace_back(id);
    if (ids.size() > kTriggerIds) ids.pop_front();
  }
  absl::Time stratum_started ABSL_GUARDED_BY(data_mu) = absl::InfinitePast();
  std::deque<std::string> cand_error_ids ABSL_GUARDED_BY(data_mu);
  uint64_t next_unclustered ABSL_GUARDED_BY(data_mu) = 0;

  int32_t Resolve(int32_t bucket, std::string_view request_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(data_mu) {
    if (bucket >= 0 && bucket < kBucketCount) return bucket;
    if (!request_id.empty()) return StickyBucket(kUnclusteredSalt, request_id);
    return static_cast<int32_t>(next_unclustered++ % kBucketCount);
  }

  // The traffic the current stage judges the candidate on.
  CandidateTraffic StageTraffic() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return state.weight_basis_points() == 0 ? CandidateTraffic::kShadow : CandidateTraffic::kLive;
  }

  void RestartEvidence(EvidenceRestart restart) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    if (restart == EvidenceRestart::kNone) return;
    absl::MutexLock lock(&data_mu);
    if (restart == EvidenceRestart::kAll) {
      evidence.Restart();
    } else {
      evidence.FoldStage(StageTraffic());
    }
    stratum_started = clock.Now();
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
    t.next.set_evidence_epoch(state.evidence_epoch() +
                              (t.restart == EvidenceRestart::kAll ? 1 : 0));
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
    RestartEvidence(t.restart);  // folds the ending stage as the old state judged it
    state = std::move(t.next);
    router.SetWeightBasisPoints(state.weight_basis_points());
    SetHold(state.phase() == understudy::v1::PHASE_PAUSED ? understudy::v1::HOLD_PAUSED
                                                           : understudy::v1::HOLD_NONE,
            state.phase() == understudy::v1::PHASE_PAUSED ? PausedUnblock() : "");
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

  void SetHold(HoldReason reason, std::string unblock_text) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    hold_reason = reason;
    unblock = std::move(unblock_text);
  }

  std::string PausedUnblock() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return absl::StrCat("paused (", state.paused_reason(),
                        "): an operator resumes, promotes or rolls back");
  }

  absl::StatusOr<Decision> Tick() {
    absl::MutexLock lock(&mu);
    const absl::Time now = clock.Now();
    const RolloutPhase phase = state.phase();
    if (!IsJudged(phase)) {
      if (phase == understudy::v1::PHASE_PAUSED) {
        SetHold(understudy::v1::HOLD_PAUSED, PausedUnblock());
      } else {
        SetHold(understudy::v1::HOLD_NONE, "");
      }
      return Hold(absl::StrCat("judge idle: rollout is ", PhaseName(phase)), {}, now);
    }
    const bool in_shadow = phase == understudy::v1::PHASE_SHADOW;
    const CandidateTraffic traffic = in_shadow ? CandidateTraffic::kShadow : CandidateTraffic::kLive;
    JudgeVerdict verdict;
    StageCounts counts;
    std::vector<std::string> error_ids;
    {
      absl::MutexLock data(&data_mu);
      verdict = judge.Evaluate(evidence, traffic, now);
      if (deltas) {
        delta_latency_ms = evidence.latency_threshold();
        delta_ttft_ms = evidence.ttft_threshold();
        outgoing->SetThresholds(delta_latency_ms, delta_ttft_ms);
      }
      if (stratum_started == absl::InfinitePast()) stratum_started = now;
      if (now - stratum_started >= config.stratum) {
        // A new time stratum (evidence.h): both arms compared within it.
        evidence.FoldStratum(traffic);
        stratum_started = now;
      }
      const Counters& cand =
          evidence.window(in_shadow ? EvidenceArm::kShadow : EvidenceArm::kCandidate).c;
      counts.samples = cand.requests;
      counts.shadow_calls = evidence.window(EvidenceArm::kShadow).c.requests;
      counts.comparisons = evidence.window(EvidenceArm::kShadow).c.comparisons;
      counts.production = evidence.window(EvidenceArm::kProduction).c.requests;
      if (verdict.outcome == understudy::v1::GATE_FAIL) {
        error_ids.assign(cand_error_ids.begin(), cand_error_ids.end());
      }
    }
    if (verdict.outcome == understudy::v1::GATE_FAIL) {
      return JudgeRollback(std::move(verdict), error_ids, now);
    }
    Blockers b = PromotionBlockers(verdict, counts, in_shadow, now);
    if (b.missing.empty()) return JudgePromote(std::move(verdict.gates), counts.samples, now);
    if (MaxBakeReached(now)) return JudgePause(std::move(verdict.gates), b.missing, now);
    SetHold(b.reason, absl::StrJoin(b.unblock, "; "));
    return Hold(absl::StrCat("waiting: ", absl::StrJoin(b.missing, "; ")), std::move(verdict.gates),
                now);
  }

  absl::Duration Baked(absl::Time now) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return now - absl::FromUnixMicros(state.stage_started_unix_micros());
  }

  const StageConfig& CurrentStage() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    return config.stages[state.stage_index()];
  }

  // What the stage's windows hold, for the promotion rule and hold reasons.
  struct StageCounts {
    int64_t samples = 0;       // judged candidate requests (shadow calls in the shadow stage)
    int64_t shadow_calls = 0;
    int64_t comparisons = 0;
    int64_t production = 0;
  };

  // What keeps the stage from promotion when no gate failed, for the
  // reason text (`missing`), and the hold reason with what would unblock
  // it, most pressing first.
  struct Blockers {
    std::vector<std::string> missing;
    HoldReason reason = understudy::v1::HOLD_NONE;
    std::vector<std::string> unblock;
  };

  Blockers PromotionBlockers(const JudgeVerdict& verdict, const StageCounts& counts,
                             bool in_shadow, absl::Time now) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const StageConfig& stage = CurrentStage();
    const absl::Duration baked = Baked(now);
    Blockers b;
    auto raise = [&b](HoldReason r) {
      // Most pressing first: no comparisons, data, inconclusive, bake.
      auto rank = [](HoldReason h) {
        switch (h) {
          case understudy::v1::HOLD_SHADOW_NO_COMPARISONS: return 4;
          case understudy::v1::HOLD_WAITING_FOR_DATA: return 3;
          case understudy::v1::HOLD_INCONCLUSIVE: return 2;
          case understudy::v1::HOLD_MIN_BAKE: return 1;
          default: return 0;
        }
      };
      if (rank(r) > rank(b.reason)) b.reason = r;
    };
    const char* unit = in_shadow ? "shadow calls" : "candidate samples";
    if (in_shadow && counts.comparisons == 0 && (counts.production > 0 || baked >= stage.min_bake)) {
      raise(understudy::v1::HOLD_SHADOW_NO_COMPARISONS);
      b.unblock.push_back(absl::StrCat(
          "shadowing is off or failing: no shadow comparisons in this stage (",
          counts.shadow_calls, " shadow calls, ", counts.production, " production requests)"));
    }
    if (counts.samples < stage.min_samples) {
      raise(understudy::v1::HOLD_WAITING_FOR_DATA);
      b.missing.push_back(absl::StrCat(counts.samples, " of ", stage.min_samples, " ", unit));
      b.unblock.push_back(absl::StrCat(stage.min_samples - counts.samples, " more ", unit));
    }
    if (!verdict.needs_data.empty()) {
      raise(understudy::v1::HOLD_WAITING_FOR_DATA);
      b.missing.push_back(absl::StrCat("waiting for data: ", absl::StrJoin(verdict.needs_data, "; ")));
      for (const std::string& n : verdict.needs_data) b.unblock.push_back(n);
    }
    // Inconclusive required gates block where they must pass (rollout.h).
    const std::vector<std::string>& undecided =
        config.prove_every_stage || IsLastJudgedStage() ? verdict.waiting : verdict.waiting_here;
    if (!undecided.empty()) {
      raise(understudy::v1::HOLD_INCONCLUSIVE);
      b.missing.push_back(absl::StrCat("inconclusive: ", absl::StrJoin(undecided, ", ")));
      b.unblock.push_back(absl::StrCat("the test has not decided for ",
                                       absl::StrJoin(undecided, ", "),
                                       " (more data narrows its bounds)"));
    }
    if (baked < stage.min_bake) {
      raise(understudy::v1::HOLD_MIN_BAKE);
      b.missing.push_back(
          absl::StrCat("bake ", BakedText(baked), " of ", absl::FormatDuration(stage.min_bake)));
      b.unblock.push_back(absl::StrCat("bake ", BakedText(stage.min_bake - baked), " more"));
    }
    // The most pressing reason's text first.
    return b;
  }

  // The last judged stage: the highest percent below 100, where required
  // gates must pass before full rollout.
  bool IsLastJudgedStage() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    const int i = state.stage_index();
    return i + 1 >= static_cast<int>(config.stages.size()) ||
           config.stages[i + 1].percent >= 100;
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
                                         const std::vector<std::string>& error_ids,
                                         absl::Time now) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    TransitionRequest t;
    t.action = understudy::v1::ACTION_ROLLBACK;
    t.actor = kJudgeActor;
    t.reason = absl::StrCat("gate failed: ", absl::StrJoin(verdict.failed, "; "));
    t.next = JudgeRollbackState(now);
    t.gates = std::move(verdict.gates);
    if (verdict.error_gate_failed) t.trigger_request_ids = error_ids;
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
  const int32_t bucket = impl_->Resolve(outcome.bucket, outcome.request_id);
  impl_->Recording().AddOutcome(arm, outcome, bucket, now);
  if (arm == understudy::v1::ARM_CANDIDATE && IsError(outcome.status) &&
      !outcome.request_id.empty()) {
    Impl::NoteErrorId(impl_->deltas ? impl_->outgoing_error_ids : impl_->cand_error_ids,
                      outcome.request_id);
  }
}

void Controller::RecordComparison(const ShadowComparison& comparison) {
  absl::Time now = impl_->clock.Now();
  absl::MutexLock lock(&impl_->data_mu);
  const int32_t bucket =
      impl_->Resolve(comparison.candidate.bucket, comparison.candidate.request_id);
  impl_->Recording().AddComparison(comparison, bucket, now);
}

bool Controller::RecordFeedback(Arm arm, double score, int32_t bucket) {
  if (!(score >= 0 && score <= 1)) return false;
  if (arm != understudy::v1::ARM_PRODUCTION && arm != understudy::v1::ARM_CANDIDATE) return false;
  absl::Time now = impl_->clock.Now();
  absl::MutexLock lock(&impl_->data_mu);
  impl_->Recording().AddFeedback(arm, score, impl_->Resolve(bucket, {}), now);
  return true;
}

int32_t Controller::BucketOf(std::string_view sticky_key) const {
  return impl_->router.Bucket(sticky_key);
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

namespace {

absl::Status ValidateState(const RolloutState& state, const std::string& fingerprint,
                           const RolloutConfig& config) {
  if (state.plan_fingerprint() != fingerprint) {
    return absl::FailedPreconditionError(absl::StrCat(
        "restore: the saved rollout used stage plan [", state.plan_fingerprint(),
        "] but the config has [", fingerprint, "]; roll back or start a new rollout"));
  }
  if (state.phase() < understudy::v1::PHASE_SHADOW ||
      state.phase() > understudy::v1::PHASE_ROLLED_BACK) {
    return absl::InvalidArgumentError(absl::StrCat("restore: invalid phase ", state.phase()));
  }
  if (state.stage_index() < 0 || state.stage_index() >= static_cast<int>(config.stages.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("restore: stage_index ", state.stage_index(), " out of range"));
  }
  if (state.weight_basis_points() < 0 || state.weight_basis_points() > kBucketCount) {
    return absl::InvalidArgumentError(absl::StrCat("restore: weight_basis_points ",
                                                   state.weight_basis_points(), " out of range"));
  }
  return absl::OkStatus();
}

// Evidence and deltas name the stage run they belong to.
bool SameStageRun(const understudy::v1::JudgeEvidence& e, const RolloutState& s) {
  return e.evidence_epoch() == s.evidence_epoch() && e.stage_index() == s.stage_index() &&
         e.stage_started_unix_micros() == s.stage_started_unix_micros();
}

}  // namespace

struct Controller::Locked {
  // Restore's body, with mu held.
  static void Restore(Impl& m, const RolloutState& state) ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
    m.state = state;
    m.router.SetWeightBasisPoints(state.weight_basis_points());
    m.RestartEvidence(EvidenceRestart::kAll);
    {
      absl::MutexLock data(&m.data_mu);
      m.cand_error_ids.clear();
    }
    m.SetHold(state.phase() == understudy::v1::PHASE_PAUSED ? understudy::v1::HOLD_PAUSED
                                                             : understudy::v1::HOLD_NONE,
              state.phase() == understudy::v1::PHASE_PAUSED ? m.PausedUnblock() : "");
  }

  // Stamp names the state a saved evidence or delta belongs to.
  static void Stamp(const Impl& m, understudy::v1::JudgeEvidence* e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
    const RolloutState& s = m.state;
    e->set_saved_unix_micros(absl::ToUnixMicros(m.clock.Now()));
    e->set_plan_fingerprint(m.fingerprint);
    e->set_state_version(s.version());
    e->set_evidence_epoch(s.evidence_epoch());
    e->set_stage_index(s.stage_index());
    e->set_stage_started_unix_micros(s.stage_started_unix_micros());
    e->set_stage_on_shadow(m.StageTraffic() == CandidateTraffic::kShadow);
  }

  static understudy::v1::JudgeEvidence SaveEvidence(const Impl& m)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
    understudy::v1::JudgeEvidence e;
    {
      absl::MutexLock data(&m.data_mu);
      m.evidence.Save(&e);
      for (const std::string& id : m.cand_error_ids) e.add_candidate_error_ids(id);
      if (m.stratum_started != absl::InfinitePast()) {
        e.set_stratum_started_unix_micros(absl::ToUnixMicros(m.stratum_started));
      }
    }
    Stamp(m, &e);
    return e;
  }

  static absl::Status RestoreEvidence(Impl& m, const understudy::v1::JudgeEvidence& e)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(m.mu) {
    const RolloutState& s = m.state;
    if (e.plan_fingerprint() != m.fingerprint) {
      return absl::FailedPreconditionError(
          absl::StrCat("restore evidence: it was saved for stage plan [", e.plan_fingerprint(),
                       "] but the config has [", m.fingerprint, "]"));
    }
    if (e.evidence_epoch() != s.evidence_epoch()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "restore evidence: it belongs to attempt ", e.evidence_epoch(),
          " but the rollout is on ", s.evidence_epoch(), " (the judge starts afresh)"));
    }
    if (e.state_version() > s.version()) {
      return absl::FailedPreconditionError(
          absl::StrCat("restore evidence: saved at state version ", e.state_version(),
                       ", newer than the state's ", s.version()));
    }
    absl::MutexLock data(&m.data_mu);
    RETURN_IF_ERROR(m.evidence.Load(e));
    if (e.stage_index() != s.stage_index() ||
        e.stage_started_unix_micros() != s.stage_started_unix_micros()) {
      // The process stopped between a transition that started a new stage
      // run and the next save: fold the saved stage as the transition would
      // have, and start this one empty.
      m.evidence.FoldStage(e.stage_on_shadow() ? CandidateTraffic::kShadow
                                               : CandidateTraffic::kLive);
      m.stratum_started = m.clock.Now();
    } else if (e.stratum_started_unix_micros() != 0) {
      m.stratum_started = absl::FromUnixMicros(e.stratum_started_unix_micros());
    }
    m.cand_error_ids.assign(e.candidate_error_ids().begin(), e.candidate_error_ids().end());
    while (m.cand_error_ids.size() > kTriggerIds) m.cand_error_ids.pop_front();
    return absl::OkStatus();
  }
};

absl::Status Controller::Restore(const RolloutState& state) {
  RETURN_IF_ERROR(ValidateState(state, impl_->fingerprint, config_));
  absl::MutexLock lock(&impl_->mu);
  Locked::Restore(*impl_, state);
  return absl::OkStatus();
}

understudy::v1::JudgeEvidence Controller::SaveEvidence() const {
  absl::MutexLock lock(&impl_->mu);
  return Locked::SaveEvidence(*impl_);
}

absl::Status Controller::RestoreEvidence(const understudy::v1::JudgeEvidence& e) {
  absl::MutexLock lock(&impl_->mu);
  return Locked::RestoreEvidence(*impl_, e);
}

// ------------------------------------------------------------ fleet mode

void Controller::EnableEvidenceDeltas() {
  absl::MutexLock data(&impl_->data_mu);
  if (impl_->deltas) return;
  impl_->deltas = true;
  impl_->NewOutgoing();
}

understudy::v1::JudgeEvidence Controller::TakeEvidenceDelta() {
  absl::MutexLock lock(&impl_->mu);
  understudy::v1::JudgeEvidence e;
  {
    absl::MutexLock data(&impl_->data_mu);
    if (!impl_->deltas) return e;
    impl_->outgoing->Save(&e);
    e.clear_contrasts();  // no strata are ever folded in a delta
    for (const std::string& id : impl_->outgoing_error_ids) e.add_candidate_error_ids(id);
    impl_->NewOutgoing();
  }
  Locked::Stamp(*impl_, &e);
  return e;
}

bool IsEmptyDelta(const understudy::v1::JudgeEvidence& delta) {
  for (const understudy::v1::ArmEvidence* a :
       {&delta.production(), &delta.candidate(), &delta.shadow()}) {
    const understudy::v1::CountersEvidence& c = a->counters();
    if (c.requests() != 0 || c.comparisons() != 0 || c.satisfaction().n() != 0) return false;
  }
  return true;
}

absl::Status Controller::MergeEvidenceDelta(const understudy::v1::JudgeEvidence& delta) {
  absl::MutexLock lock(&impl_->mu);
  const RolloutState& s = impl_->state;
  if (delta.plan_fingerprint() != impl_->fingerprint || !SameStageRun(delta, s)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "evidence delta: recorded in stage ", delta.stage_index(), " (attempt ",
        delta.evidence_epoch(), ", started ", delta.stage_started_unix_micros(),
        "); the judge is in stage ", s.stage_index(), " (attempt ", s.evidence_epoch(),
        ", started ", s.stage_started_unix_micros(), ")"));
  }
  absl::MutexLock data(&impl_->data_mu);
  RETURN_IF_ERROR(impl_->evidence.Merge(delta));
  for (const std::string& id : delta.candidate_error_ids()) {
    Impl::NoteErrorId(impl_->cand_error_ids, id);
  }
  return absl::OkStatus();
}

void Controller::SetDeltaThresholds(double latency_ms, double ttft_ms) {
  absl::MutexLock data(&impl_->data_mu);
  impl_->delta_latency_ms = latency_ms;
  impl_->delta_ttft_ms = ttft_ms;
  if (impl_->outgoing) impl_->outgoing->SetThresholds(latency_ms, ttft_ms);
}

absl::StatusOr<bool> Controller::Adopt(const RolloutState& state) {
  RETURN_IF_ERROR(ValidateState(state, impl_->fingerprint, config_));
  absl::MutexLock lock(&impl_->mu);
  Impl& m = *impl_;
  if (state.version() <= m.state.version()) return false;  // seen already (or older)
  // What the transition would have done to the evidence (RestoreEvidence's
  // rules): the same stage run goes on, a new run folds the old one, a new
  // attempt starts afresh.
  const understudy::v1::JudgeEvidence saved = Locked::SaveEvidence(m);
  const bool same_run = SameStageRun(saved, state);
  Locked::Restore(m, state);
  (void)Locked::RestoreEvidence(m, saved);  // FailedPrecondition: a new attempt, afresh
  {
    absl::MutexLock data(&m.data_mu);
    // What this replica recorded under the old stage run is not evidence
    // for the new one.
    if (m.deltas && !same_run) m.NewOutgoing();
  }
  return true;
}

understudy::v1::HealthSnapshot Controller::Health() const {
  absl::MutexLock lock(&impl_->mu);
  absl::Time now = impl_->clock.Now();
  understudy::v1::HealthSnapshot h;
  h.set_time_unix_micros(absl::ToUnixMicros(now));
  *h.mutable_state() = impl_->state;
  absl::Duration stage_age =
      now - absl::FromUnixMicros(impl_->state.stage_started_unix_micros());
  ArmWindow prod, cand, shadow;
  Counters prod_recent, cand_recent, shadow_recent;
  {
    absl::MutexLock data(&impl_->data_mu);
    const Evidence& ev = impl_->evidence;
    prod = ev.window(EvidenceArm::kProduction);
    cand = ev.window(EvidenceArm::kCandidate);
    shadow = ev.window(EvidenceArm::kShadow);
    prod_recent = ev.RecentSum(EvidenceArm::kProduction, now);
    cand_recent = ev.RecentSum(EvidenceArm::kCandidate, now);
    shadow_recent = ev.RecentSum(EvidenceArm::kShadow, now);
  }
  FillArmHealth(prod.c, &prod.latency_ms, &prod.ttft_ms, stage_age, h.mutable_production());
  FillArmHealth(cand.c, &cand.latency_ms, &cand.ttft_ms, stage_age, h.mutable_candidate());
  FillArmHealth(shadow.c, &shadow.latency_ms, &shadow.ttft_ms, stage_age, h.mutable_shadow());
  FillArmHealth(prod_recent, nullptr, nullptr, config_.recent_window,
                h.mutable_production_recent());
  FillArmHealth(cand_recent, nullptr, nullptr, config_.recent_window,
                h.mutable_candidate_recent());
  FillArmHealth(shadow_recent, nullptr, nullptr, config_.recent_window,
                h.mutable_shadow_recent());
  *h.mutable_gates() = impl_->last_gates;
  h.set_hold_reason(impl_->hold_reason);
  h.set_unblock(impl_->unblock);
  return h;
}

}  // namespace understudy::rollout
