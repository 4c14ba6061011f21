// EvaluateRevisit and FindEvalRegressions: the revisit triggers in one
// place (docs/drift.md), and ParseRevisitConfig for `revisit:`.
#include "drift/revisit.h"

#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "common/status_macros.h"

namespace understudy::drift {

namespace v1 = understudy::v1;

namespace {

// How a metric regresses: up or down, by an absolute rate or a relative
// change, or (re-ask) against the baseline's agreement with itself, 1.
enum class Worse { kHigherRate, kLowerRate, kHigherRelative, kHigherLatency, kBelowOne };

struct MetricRule {
  const char* name;
  Worse worse;
};

constexpr MetricRule kRules[] = {
    {"error_rate", Worse::kHigherRate},
    {"latency_p50_ms", Worse::kHigherLatency},
    {"latency_p95_ms", Worse::kHigherLatency},
    {"cost_per_request", Worse::kHigherRelative},
    {"reference_agreement", Worse::kLowerRate},
    {"agreement_rate", Worse::kLowerRate},
    {"reask_agreement", Worse::kBelowOne},
    {"reask_similarity", Worse::kBelowOne},
};

std::string ArmWord(v1::Arm arm) {
  switch (arm) {
    case v1::ARM_PRODUCTION: return "production";
    case v1::ARM_CANDIDATE: return "candidate";
    default: return "production vs candidate";
  }
}

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", t, absl::UTCTimeZone());
}

v1::RevisitTrigger Trigger(const char* kind, std::string detail, std::string action,
                           absl::Time since) {
  v1::RevisitTrigger t;
  t.set_kind(kind);
  t.set_detail(std::move(detail));
  t.set_action(std::move(action));
  if (since != absl::InfinitePast()) t.set_since_unix_micros(absl::ToUnixMicros(since));
  return t;
}

void CheckMetrics(v1::Arm arm, const google::protobuf::Map<std::string, double>& base,
                  const google::protobuf::Map<std::string, double>& now,
                  const EvalRegressionThresholds& th, std::vector<v1::EvalRegression>* out) {
  for (const MetricRule& rule : kRules) {
    auto l = now.find(rule.name);
    if (l == now.end()) continue;
    const double latest = l->second;
    double baseline = 1.0;
    if (rule.worse != Worse::kBelowOne) {
      auto b = base.find(rule.name);
      if (b == base.end()) continue;
      baseline = b->second;
    }
    double change = latest - baseline;
    double threshold = th.rate;
    bool regressed = false;
    std::string how;
    switch (rule.worse) {
      case Worse::kHigherRate:
        regressed = change >= th.rate - 1e-12;
        how = absl::StrFormat("rose from %.3f to %.3f (+%.3f, threshold %.3f)", baseline, latest,
                              change, th.rate);
        break;
      case Worse::kLowerRate:
      case Worse::kBelowOne:
        regressed = -change >= th.rate - 1e-12;
        how = absl::StrFormat("fell from %.3f to %.3f (%.3f, threshold -%.3f)", baseline, latest,
                              change, th.rate);
        break;
      case Worse::kHigherRelative:
      case Worse::kHigherLatency:
        if (baseline <= 0) continue;
        change = (latest - baseline) / baseline;
        threshold = th.relative;
        regressed = change >= th.relative - 1e-12 &&
                    (rule.worse != Worse::kHigherLatency ||
                     latest - baseline >= th.latency_min_ms - 1e-9);
        how = absl::StrFormat("rose from %.4g to %.4g (+%.0f%%, threshold +%.0f%%)", baseline,
                              latest, 100 * change, 100 * th.relative);
        break;
    }
    if (!regressed) continue;
    v1::EvalRegression r;
    r.set_arm(arm);
    r.set_metric(rule.name);
    r.set_baseline(baseline);
    r.set_latest(latest);
    r.set_change(change);
    r.set_threshold(threshold);
    r.set_detail(absl::StrCat(ArmWord(arm), " ", rule.name, " ", how));
    out->push_back(std::move(r));
  }
}

}  // namespace

const std::vector<std::string>& AllTriggerKinds() {
  static const std::vector<std::string>* kinds = new std::vector<std::string>{
      kTriggerDrift, kTriggerDeprecation, kTriggerPriceChange, kTriggerVolumeGrowth,
      kTriggerEvalRegression};
  return *kinds;
}

absl::StatusOr<RevisitConfig> ParseRevisitConfig(const ConfigNode& node) {
  RevisitConfig c;
  if (!node.IsDefined()) return c;
  if (!node.IsMap()) return absl::InvalidArgumentError(node.Path() + ": must be a map");
  RETURN_IF_ERROR(
      node.CheckKeys({"volume_growth", "volume_min_requests_per_hour", "eval_regression"}));
  ASSIGN_OR_RETURN(c.volume_growth, node.GetDouble("volume_growth", c.volume_growth, 0, 1e6));
  if (c.volume_growth != 0 && c.volume_growth <= 1) {
    return node.Error("volume_growth", "must be 0 (off) or more than 1");
  }
  ASSIGN_OR_RETURN(c.volume_min_requests_per_hour,
                   node.GetDouble("volume_min_requests_per_hour", c.volume_min_requests_per_hour,
                                  0, 1e12));
  const ConfigNode er = node.Child("eval_regression");
  if (er.IsDefined()) {
    if (!er.IsMap()) return absl::InvalidArgumentError(er.Path() + ": must be a map");
    RETURN_IF_ERROR(er.CheckKeys({"rate", "relative", "latency_min_ms"}));
    ASSIGN_OR_RETURN(c.eval_regression.rate,
                     er.GetDouble("rate", c.eval_regression.rate, 0.001, 1));
    ASSIGN_OR_RETURN(c.eval_regression.relative,
                     er.GetDouble("relative", c.eval_regression.relative, 0.001, 1000));
    ASSIGN_OR_RETURN(c.eval_regression.latency_min_ms,
                     er.GetDouble("latency_min_ms", c.eval_regression.latency_min_ms, 0, 1e7));
  }
  return c;
}

std::vector<v1::EvalRegression> FindEvalRegressions(const v1::EvalRun& baseline,
                                                    const v1::EvalRun& latest,
                                                    const EvalRegressionThresholds& th) {
  std::vector<v1::EvalRegression> out;
  if (latest.failed()) return out;  // a failed run is reported as failed, not as a regression
  for (const v1::EvalArmSummary& now : latest.arms()) {
    const google::protobuf::Map<std::string, double> none;
    const google::protobuf::Map<std::string, double>* base = &none;
    for (const v1::EvalArmSummary& b : baseline.arms()) {
      if (b.arm() == now.arm()) base = &b.metrics();
    }
    CheckMetrics(now.arm(), *base, now.metrics(), th, &out);
  }
  CheckMetrics(v1::ARM_UNSPECIFIED, baseline.metrics(), latest.metrics(), th, &out);
  return out;
}

std::vector<v1::RevisitTrigger> EvaluateRevisit(const RevisitInputs& in) {
  std::vector<v1::RevisitTrigger> fired;
  for (const v1::Decision& d : in.drift_events) {
    if (d.action() != v1::ACTION_DRIFT) continue;
    const absl::Time at = absl::FromUnixMicros(d.time_unix_micros());
    fired.push_back(Trigger(
        kTriggerDrift, absl::StrCat(d.reason(), " (", TimeText(at), ")"),
        "check the change (re-run the eval set against this arm) and, if the model has "
        "changed under you, start a new rollout against it as a candidate",
        at));
  }
  if (in.deprecation_date.has_value() && in.now >= *in.deprecation_date - in.deprecation_notice) {
    const int64_t days = (*in.deprecation_date - in.now) / absl::Hours(24);
    fired.push_back(Trigger(
        kTriggerDeprecation,
        absl::StrCat("the served model is retired on ",
                     absl::FormatTime("%Y-%m-%d", *in.deprecation_date, absl::UTCTimeZone()),
                     days >= 0 ? absl::StrCat(" (in ", days, " days)") : std::string(" (passed)")),
        "pick its successor and start a new rollout against it as a candidate",
        *in.deprecation_date - in.deprecation_notice));
  }
  if (!in.price_fingerprint.empty() && !in.saved_price_fingerprint.empty() &&
      in.price_fingerprint != in.saved_price_fingerprint) {
    fired.push_back(Trigger(
        kTriggerPriceChange,
        absl::StrCat("compare.prices changed since the decision",
                     in.saved_at != absl::InfinitePast()
                         ? absl::StrCat(" of ", TimeText(in.saved_at))
                         : std::string()),
        "re-run the cost comparison (understudy eval, the report's cost per request) and "
        "consider a new rollout if the cheaper model is now the other one",
        in.saved_at));
  }
  if (in.config.volume_growth > 0 && in.saved_requests_per_hour > 0 &&
      in.saved_requests_per_hour >= in.config.volume_min_requests_per_hour &&
      in.requests_per_hour >= in.config.volume_growth * in.saved_requests_per_hour) {
    fired.push_back(Trigger(
        kTriggerVolumeGrowth,
        absl::StrFormat("live traffic grew %.1fx since the decision (%.0f requests/hour, "
                        "then %.0f; threshold %.1fx)",
                        in.requests_per_hour / in.saved_requests_per_hour, in.requests_per_hour,
                        in.saved_requests_per_hour, in.config.volume_growth),
        "re-check cost and rate limits at this volume (budget, provider quotas) and whether "
        "the decision still holds for today's traffic mix",
        in.saved_at));
  }
  if (in.latest_eval.has_value()) {
    const v1::EvalRun& run = *in.latest_eval;
    for (const v1::EvalRegression& r : run.regressions()) {
      fired.push_back(Trigger(
          kTriggerEvalRegression,
          absl::StrCat("scheduled eval of ",
                       TimeText(absl::FromUnixMicros(run.start_unix_micros())),
                       " against the baseline run of ",
                       TimeText(absl::FromUnixMicros(run.baseline_start_unix_micros())), ": ",
                       r.detail()),
          "look at the items that changed (GET /v1/evals) and, if the model regressed, roll "
          "back or start a new rollout",
          absl::FromUnixMicros(run.start_unix_micros())));
    }
  }
  return fired;
}

std::string RevisitLine(const v1::RevisitTrigger& t) {
  return absl::StrCat(t.kind(), ": ", t.detail(), " — ", t.action());
}

}  // namespace understudy::drift
