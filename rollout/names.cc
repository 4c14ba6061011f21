// Outcome classes and the one name of each enum value (see rollout.h).
#include <string_view>

#include "rollout/rollout.h"

namespace understudy::rollout {

namespace v1 = ::understudy::v1;

bool IsError(OutcomeClass c) {
  return c == OutcomeClass::kServerError || c == OutcomeClass::kTimeout ||
         c == OutcomeClass::kTransport || c == OutcomeClass::kInvalidBody;
}

OutcomeClass OutcomeClassFromHttp(int status_code) {
  if (status_code <= 0) return OutcomeClass::kTransport;
  if (status_code == 429) return OutcomeClass::kThrottled;
  if (status_code >= 500) return OutcomeClass::kServerError;
  if (status_code >= 400) return OutcomeClass::kClientError;
  return OutcomeClass::kOk;
}

std::string_view OutcomeClassName(OutcomeClass c) {
  switch (c) {
    case OutcomeClass::kOk:
      return "ok";
    case OutcomeClass::kServerError:
      return "server_error";
    case OutcomeClass::kTimeout:
      return "timeout";
    case OutcomeClass::kTransport:
      return "transport";
    case OutcomeClass::kInvalidBody:
      return "invalid_body";
    case OutcomeClass::kThrottled:
      return "throttled";
    case OutcomeClass::kClientError:
      return "client_error";
  }
  return "unknown";
}

const char* PhaseName(v1::RolloutPhase phase) {
  switch (phase) {
    case v1::PHASE_SHADOW:
      return "shadow";
    case v1::PHASE_CANARY:
      return "canary";
    case v1::PHASE_PAUSED:
      return "paused";
    case v1::PHASE_PROMOTED:
      return "promoted";
    case v1::PHASE_ROLLED_BACK:
      return "rolled_back";
    default:
      return "unspecified";
  }
}

const char* GateOutcomeName(v1::GateOutcome outcome) {
  switch (outcome) {
    case v1::GATE_PASS:
      return "pass";
    case v1::GATE_FAIL:
      return "fail";
    case v1::GATE_INCONCLUSIVE:
      return "inconclusive";
    default:
      return "unspecified";
  }
}

std::string_view HoldReasonName(v1::HoldReason reason) {
  switch (reason) {
    case v1::HOLD_NONE:
      return "none";
    case v1::HOLD_MIN_BAKE:
      return "min_bake";
    case v1::HOLD_WAITING_FOR_DATA:
      return "waiting_for_data";
    case v1::HOLD_INCONCLUSIVE:
      return "inconclusive";
    case v1::HOLD_SHADOW_NO_COMPARISONS:
      return "shadow_no_comparisons";
    case v1::HOLD_PAUSED:
      return "paused";
    case v1::HOLD_COORDINATION:
      return "coordination";
    case v1::HOLD_STORAGE:
      return "storage";
    default:
      return "unspecified";
  }
}

std::string_view DecisionActionName(v1::DecisionAction action) {
  switch (action) {
    case v1::ACTION_PROMOTE:
      return "promote";
    case v1::ACTION_ROLLBACK:
      return "rollback";
    case v1::ACTION_PAUSE:
      return "pause";
    case v1::ACTION_RESUME:
      return "resume";
    case v1::ACTION_SET_WEIGHT:
      return "set_weight";
    case v1::ACTION_HOLD:
      return "hold";
    case v1::ACTION_DRIFT:
      return "drift";
    case v1::ACTION_DRIFT_BASELINE:
      return "drift_baseline";
    default:
      return "unspecified";
  }
}

std::string_view ArmName(v1::Arm arm) {
  switch (arm) {
    case v1::ARM_PRODUCTION:
      return "production";
    case v1::ARM_CANDIDATE:
      return "candidate";
    default:
      return "unknown";
  }
}

std::string_view ExchangeSourceName(v1::ExchangeSource source) {
  switch (source) {
    case v1::SOURCE_LIVE:
      return "live";
    case v1::SOURCE_SHADOW:
      return "shadow";
    case v1::SOURCE_NOISE:
      return "noise";
    case v1::SOURCE_EVAL:
      return "eval";
    default:
      return "unknown";
  }
}

}  // namespace understudy::rollout
