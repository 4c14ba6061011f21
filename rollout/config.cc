// ParseRolloutConfig: the `rollout:` YAML section into RolloutConfig.
#include <cmath>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "rollout/rollout.h"

namespace understudy::rollout {

std::vector<StageConfig> RolloutConfig::DefaultStages() {
  return {
      {0, absl::Minutes(5), 200, absl::ZeroDuration()},
      {1, absl::Minutes(10), 500, absl::ZeroDuration()},
      {5, absl::Minutes(10), 500, absl::ZeroDuration()},
      {25, absl::Minutes(10), 1000, absl::ZeroDuration()},
      {50, absl::Minutes(10), 1000, absl::ZeroDuration()},
      {100, absl::ZeroDuration(), 0, absl::ZeroDuration()},
  };
}

std::string PlanFingerprint(const RolloutConfig& config) {
  std::vector<int32_t> p;
  for (const StageConfig& s : config.stages) p.push_back(s.percent);
  return absl::StrJoin(p, ",");
}

namespace {

absl::Status ParseStages(const ConfigNode& node, RolloutConfig& config) {
  if (!node.Has("stages")) return absl::OkStatus();
  ASSIGN_OR_RETURN(std::vector<ConfigNode> items, node.Child("stages").Elements());
  if (items.empty()) return node.Error("stages", "must list at least one stage");
  std::vector<StageConfig> stages;
  for (const ConfigNode& item : items) {
    StageConfig s;
    if (item.IsScalar()) {
      ASSIGN_OR_RETURN(double pct, item.AsDouble());
      if (pct < 0 || pct > 100 || pct != std::floor(pct)) {
        return absl::InvalidArgumentError(
            absl::StrCat(item.Path(), ": must be a whole percent in 0..100, got ", pct));
      }
      s.percent = static_cast<int32_t>(pct);
    } else {
      RETURN_IF_ERROR(item.CheckKeys({"percent", "min_bake", "min_samples", "max_bake"}));
      if (!item.Has("percent")) return item.Error("percent", "is required");
      ASSIGN_OR_RETURN(int64_t pct, item.GetInt("percent", 0, 0, 100));
      s.percent = static_cast<int32_t>(pct);
      ASSIGN_OR_RETURN(s.min_bake, item.GetDuration("min_bake", s.min_bake));
      ASSIGN_OR_RETURN(s.min_samples, item.GetInt("min_samples", s.min_samples, 0, 1'000'000'000));
      ASSIGN_OR_RETURN(s.max_bake, item.GetDuration("max_bake", absl::ZeroDuration()));
      if (s.max_bake > absl::ZeroDuration() && s.max_bake < s.min_bake) {
        return item.Error("max_bake", "must be at least min_bake");
      }
    }
    if (!stages.empty() && s.percent <= stages.back().percent) {
      return absl::InvalidArgumentError(absl::StrCat(
          item.Path(), ".percent: must be greater than the previous stage's ",
          stages.back().percent, ", got ", s.percent));
    }
    if (s.percent == 100) {
      s.min_bake = absl::ZeroDuration();
      s.min_samples = 0;
    }
    stages.push_back(s);
  }
  if (stages.back().percent != 100) {
    return node.Error("stages", absl::StrCat("the last stage must be 100, got ",
                                             stages.back().percent));
  }
  config.stages = std::move(stages);
  return absl::OkStatus();
}

absl::Status ParseQuantileGate(const ConfigNode& g, QuantileGate& q) {
  RETURN_IF_ERROR(g.CheckKeys(
      {"enabled", "quantile", "max_ratio", "tolerated_ratio", "margin", "min_samples"}));
  ASSIGN_OR_RETURN(q.enabled, g.GetBool("enabled", q.enabled));
  ASSIGN_OR_RETURN(q.quantile, g.GetDouble("quantile", q.quantile, 0.5, 0.999));
  ASSIGN_OR_RETURN(q.max_ratio, g.GetDouble("max_ratio", q.max_ratio, 1.01, 100.0));
  ASSIGN_OR_RETURN(q.tolerated_ratio, g.GetDouble("tolerated_ratio", q.tolerated_ratio, 0.1, 100.0));
  if (q.tolerated_ratio >= q.max_ratio) {
    return g.Error("tolerated_ratio", "must be below max_ratio (the ratio that must be caught)");
  }
  // Deprecated: the share-above tests need no margin. Accepted, ignored.
  ASSIGN_OR_RETURN(q.margin, g.GetDouble("margin", q.margin, 0.001, 0.5));
  ASSIGN_OR_RETURN(q.min_samples, g.GetInt("min_samples", q.min_samples, 1, 1'000'000'000));
  return absl::OkStatus();
}

absl::Status ParseGates(const ConfigNode& gates, RolloutConfig& c) {
  RETURN_IF_ERROR(gates.CheckKeys({"error_rate", "latency_p95", "latency", "ttft_p95", "ttft",
                                   "satisfaction", "cost_per_request", "agreement",
                                   "critical"}));
  if (ConfigNode g = gates.Child("error_rate"); g.IsDefined()) {
    RETURN_IF_ERROR(g.CheckKeys({"enabled", "max_ratio", "max_abs_increase", "tolerated_ratio"}));
    ASSIGN_OR_RETURN(c.error_rate.enabled, g.GetBool("enabled", c.error_rate.enabled));
    ASSIGN_OR_RETURN(c.error_rate.max_ratio,
                     g.GetDouble("max_ratio", c.error_rate.max_ratio, 1.05, 100.0));
    ASSIGN_OR_RETURN(c.error_rate.max_abs_increase,
                     g.GetDouble("max_abs_increase", c.error_rate.max_abs_increase, 0.0, 1.0));
    ASSIGN_OR_RETURN(c.error_rate.tolerated_ratio,
                     g.GetDouble("tolerated_ratio", c.error_rate.tolerated_ratio, 0.1, 100.0));
    if (c.error_rate.tolerated_ratio * 1.05 > c.error_rate.max_ratio) {
      return g.Error("tolerated_ratio", "must be at least 5% below max_ratio");
    }
  }
  for (const char* key : {"latency_p95", "latency"}) {
    if (ConfigNode g = gates.Child(key); g.IsDefined()) {
      RETURN_IF_ERROR(ParseQuantileGate(g, c.latency));
    }
  }
  for (const char* key : {"ttft_p95", "ttft"}) {
    if (ConfigNode g = gates.Child(key); g.IsDefined()) {
      RETURN_IF_ERROR(ParseQuantileGate(g, c.ttft));
    }
  }
  if (ConfigNode g = gates.Child("satisfaction"); g.IsDefined()) {
    RETURN_IF_ERROR(g.CheckKeys({"enabled", "max_drop", "tolerated_drop", "alert_drop",
                                 "min_samples", "must_have_data"}));
    auto& s = c.satisfaction;
    ASSIGN_OR_RETURN(s.enabled, g.GetBool("enabled", s.enabled));
    ASSIGN_OR_RETURN(s.max_drop, g.GetDouble("max_drop", s.max_drop, 0.001, 1.0));
    ASSIGN_OR_RETURN(s.tolerated_drop, g.GetDouble("tolerated_drop", s.tolerated_drop, 0.0, 1.0));
    if (s.tolerated_drop >= s.max_drop) {
      return g.Error("tolerated_drop", "must be below max_drop (the drop that must be caught)");
    }
    ASSIGN_OR_RETURN(s.alert_drop, g.GetDouble("alert_drop", s.alert_drop, 0.0, 1.0));
    ASSIGN_OR_RETURN(s.min_samples, g.GetInt("min_samples", s.min_samples, 2, 1'000'000'000));
    ASSIGN_OR_RETURN(s.must_have_data, g.GetBool("must_have_data", s.must_have_data));
  }
  if (ConfigNode g = gates.Child("cost_per_request"); g.IsDefined()) {
    RETURN_IF_ERROR(g.CheckKeys(
        {"enabled", "max_ratio", "tolerated_ratio", "min_samples", "must_have_data"}));
    auto& s = c.cost;
    ASSIGN_OR_RETURN(s.enabled, g.GetBool("enabled", s.enabled));
    ASSIGN_OR_RETURN(s.max_ratio, g.GetDouble("max_ratio", s.max_ratio, 1.01, 1000.0));
    ASSIGN_OR_RETURN(s.tolerated_ratio, g.GetDouble("tolerated_ratio", s.tolerated_ratio, 0.01, 1000.0));
    if (s.tolerated_ratio >= s.max_ratio) {
      return g.Error("tolerated_ratio", "must be below max_ratio (the ratio that must be caught)");
    }
    ASSIGN_OR_RETURN(s.min_samples, g.GetInt("min_samples", s.min_samples, 2, 1'000'000'000));
    ASSIGN_OR_RETURN(s.must_have_data, g.GetBool("must_have_data", s.must_have_data));
  }
  if (ConfigNode g = gates.Child("agreement"); g.IsDefined()) {
    RETURN_IF_ERROR(g.CheckKeys({"enabled", "min", "tolerated", "min_samples"}));
    auto& s = c.agreement;
    ASSIGN_OR_RETURN(s.enabled, g.GetBool("enabled", s.enabled));
    ASSIGN_OR_RETURN(s.min, g.GetDouble("min", s.min, 0.0, 0.999));
    // A min at or above the default `tolerated` moves that default halfway to 1.
    if (!g.Has("tolerated") && s.tolerated <= s.min) s.tolerated = s.min + (1 - s.min) / 2;
    ASSIGN_OR_RETURN(s.tolerated, g.GetDouble("tolerated", s.tolerated, 0.0, 1.0));
    if (s.tolerated <= s.min) {
      return g.Error("tolerated", "must be above min (the agreement that must be caught)");
    }
    ASSIGN_OR_RETURN(s.min_samples, g.GetInt("min_samples", s.min_samples, 2, 1'000'000'000));
  }
  if (ConfigNode g = gates.Child("critical"); g.IsDefined()) {
    RETURN_IF_ERROR(
        g.CheckKeys({"enabled", "max_ratio", "max_error_rate", "min_requests", "confidence"}));
    auto& s = c.critical;
    ASSIGN_OR_RETURN(s.enabled, g.GetBool("enabled", s.enabled));
    ASSIGN_OR_RETURN(s.max_ratio, g.GetDouble("max_ratio", s.max_ratio, 1.0, 1000.0));
    ASSIGN_OR_RETURN(s.max_error_rate, g.GetDouble("max_error_rate", s.max_error_rate, 0.0, 0.999));
    ASSIGN_OR_RETURN(s.min_requests, g.GetInt("min_requests", s.min_requests, 1, 1'000'000'000));
    ASSIGN_OR_RETURN(s.confidence, g.GetDouble("confidence", s.confidence, 0.5, 0.999999));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<RolloutConfig> ParseRolloutConfig(const ConfigNode& node) {
  RolloutConfig c;
  if (!node.IsDefined()) return c;
  RETURN_IF_ERROR(node.CheckKeys(
      {"stages", "rollback_target", "windows", "tick_interval", "judge", "gates"}));
  RETURN_IF_ERROR(ParseStages(node, c));
  ASSIGN_OR_RETURN(std::string target, node.GetString("rollback_target", "zero"));
  if (target == "zero") {
    c.rollback_target = RollbackTarget::kZero;
  } else if (target == "previous_stage") {
    c.rollback_target = RollbackTarget::kPreviousStage;
  } else {
    return node.Error("rollback_target",
                      absl::StrCat("must be zero or previous_stage, got \"", target, "\""));
  }
  if (ConfigNode w = node.Child("windows"); w.IsDefined()) {
    RETURN_IF_ERROR(w.CheckKeys({"recent", "slots"}));
    ASSIGN_OR_RETURN(c.recent_window, w.GetDuration("recent", c.recent_window));
    if (c.recent_window < absl::Seconds(1)) return w.Error("recent", "must be at least 1s");
    ASSIGN_OR_RETURN(int64_t slots, w.GetInt("slots", c.recent_slots, 1, 600));
    c.recent_slots = static_cast<int32_t>(slots);
  }
  ASSIGN_OR_RETURN(c.tick_interval, node.GetDuration("tick_interval", c.tick_interval));
  if (c.tick_interval < absl::Milliseconds(100)) {
    return node.Error("tick_interval", "must be at least 100ms");
  }
  if (ConfigNode j = node.Child("judge"); j.IsDefined()) {
    RETURN_IF_ERROR(j.CheckKeys(
        {"alpha", "beta", "min_clusters", "stratum", "prove_every_stage", "history_adjustment"}));
    ASSIGN_OR_RETURN(c.stratum, j.GetDuration("stratum", c.stratum));
    if (c.stratum < absl::Seconds(1)) return j.Error("stratum", "must be at least 1s");
    ASSIGN_OR_RETURN(c.history_adjustment,
                     j.GetBool("history_adjustment", c.history_adjustment));
    ASSIGN_OR_RETURN(c.prove_every_stage, j.GetBool("prove_every_stage", c.prove_every_stage));
    ASSIGN_OR_RETURN(c.alpha, j.GetDouble("alpha", c.alpha, 1e-6, 0.2));
    ASSIGN_OR_RETURN(c.beta, j.GetDouble("beta", c.beta, 1e-4, 0.5));
    ASSIGN_OR_RETURN(c.min_clusters, j.GetInt("min_clusters", c.min_clusters, 2, kBucketCount));
  }
  if (ConfigNode g = node.Child("gates"); g.IsDefined()) RETURN_IF_ERROR(ParseGates(g, c));
  return c;
}

}  // namespace understudy::rollout
