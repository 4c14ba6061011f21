// ParseDriftConfig: the `drift:` YAML section into DriftConfig.
#include <string>
#include <vector>

#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "drift/drift.h"

namespace understudy::drift {

absl::StatusOr<DriftConfig> ParseDriftConfig(const ConfigNode& node) {
  DriftConfig c;
  if (!node.IsDefined()) return c;
  if (!node.IsMap()) return absl::InvalidArgumentError(node.Path() + ": must be a map");
  RETURN_IF_ERROR(node.CheckKeys({"enabled", "version_headers", "baseline_requests",
                                  "new_value_min_count", "mix", "behaviour",
                                  "pause_rollout_on_version_change", "deprecation"}));
  ASSIGN_OR_RETURN(c.enabled, node.GetBool("enabled", true));
  ASSIGN_OR_RETURN(std::vector<std::string> headers, node.GetStringList("version_headers"));
  for (std::string& h : headers) {
    if (h.empty()) return node.Error("version_headers", "must not contain an empty name");
    c.version_headers.push_back(absl::AsciiStrToLower(h));
  }
  ASSIGN_OR_RETURN(c.baseline_requests,
                   node.GetInt("baseline_requests", c.baseline_requests, 10, 10'000'000));
  ASSIGN_OR_RETURN(c.new_value_min_count,
                   node.GetInt("new_value_min_count", c.new_value_min_count, 1, 1'000'000));
  ASSIGN_OR_RETURN(c.pause_rollout_on_version_change,
                   node.GetBool("pause_rollout_on_version_change", false));
  const ConfigNode dep = node.Child("deprecation");
  if (dep.IsDefined()) {
    RETURN_IF_ERROR(dep.CheckKeys({"date", "notice"}));
    if (!dep.Has("date")) return dep.Error("date", "is required (YYYY-MM-DD)");
    ASSIGN_OR_RETURN(std::string date, dep.GetString("date", ""));
    absl::Time t;
    std::string err;
    if (!absl::ParseTime("%Y-%m-%d", date, absl::UTCTimeZone(), &t, &err)) {
      return dep.Error("date", absl::StrCat("must be a date YYYY-MM-DD, got \"", date, "\""));
    }
    c.deprecation_date = t;
    ASSIGN_OR_RETURN(c.deprecation_notice, dep.GetDuration("notice", c.deprecation_notice));
    if (c.deprecation_notice < absl::ZeroDuration()) {
      return dep.Error("notice", "must not be negative");
    }
  }
  const ConfigNode mix = node.Child("mix");
  if (mix.IsDefined()) {
    RETURN_IF_ERROR(mix.CheckKeys({"window", "min_distance"}));
    ASSIGN_OR_RETURN(c.mix_window, mix.GetInt("window", c.mix_window, 20, 1'000'000));
    ASSIGN_OR_RETURN(c.mix_min_distance,
                     mix.GetDouble("min_distance", c.mix_min_distance, 0.01, 1.0));
  }
  const ConfigNode b = node.Child("behaviour");
  if (b.IsDefined()) {
    RETURN_IF_ERROR(
        b.CheckKeys({"enabled", "alpha", "min_relative_effect", "min_samples", "min_clusters",
                     "window", "metrics"}));
    ASSIGN_OR_RETURN(c.behaviour, b.GetBool("enabled", c.behaviour));
    ASSIGN_OR_RETURN(c.alpha, b.GetDouble("alpha", c.alpha, 1e-9, 0.2));
    ASSIGN_OR_RETURN(c.min_relative_effect,
                     b.GetDouble("min_relative_effect", c.min_relative_effect, 0.001, 10.0));
    ASSIGN_OR_RETURN(c.min_samples, b.GetInt("min_samples", c.min_samples, 5, 100'000'000));
    ASSIGN_OR_RETURN(c.min_clusters, b.GetInt("min_clusters", c.min_clusters, 1, 10'000));
    ASSIGN_OR_RETURN(c.window, b.GetInt("window", c.window, 20, 100'000'000));
    if (c.window < c.min_samples) return b.Error("window", "must be at least min_samples");
    ASSIGN_OR_RETURN(c.metrics, b.GetStringList("metrics"));
    for (const std::string& m : c.metrics) {
      if (std::find(MetricNames().begin(), MetricNames().end(), m) == MetricNames().end()) {
        return b.Error("metrics", absl::StrCat("unknown metric \"", m, "\" (known: ",
                                               absl::StrJoin(MetricNames(), ", "), ")"));
      }
    }
  }
  return c;
}

}  // namespace understudy::drift
