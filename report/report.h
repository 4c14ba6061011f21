// report/report.h
// The migration report (a model decision record) and the dashboard page.
//
// RenderReport reads what the sidecar stored (exchanges, comparisons,
// decisions, health snapshots) and writes one document that says what was
// migrated, how it went and why: the outcome so far, the stage plan and
// gates, offline eval results, shadow comparison results with the worst
// differences, every rollout decision with its gate evidence, the drift
// watch, the scheduled evals (each metric's trend across runs and the
// latest run's regressions against its baseline run), current risks and
// when to look at the decision again. Markdown for humans and commits,
// JSON for tools (protos embedded with the protobuf JSON mapping), HTML as
// one self-contained file (inline CSS, no external assets).
//
// Example (given storage::Store& store, const rollout::RolloutConfig& rollout_config,
//   const v1::RolloutState& state, const Clock& clock):
//   ReportInputs in;
//   in.production_model = "gpt-4o";
//   in.candidate_model = "gpt-4o-mini";
//   in.rollout = rollout_config;
//   in.state = state;
//   in.now = clock.Now();
//   ASSIGN_OR_RETURN(std::string md, RenderReport(store, in, "md"));
//
// DashboardHtml returns the admin API's page at GET /: one self-contained
// HTML document (inline CSS and JavaScript, no external assets, works
// offline) that polls /v1/rollout, /v1/health, /v1/decisions and
// /v1/comparisons and draws the rollout with inline SVG charts. It has a
// rollback button that asks for a reason and the admin token (kept in the
// tab's sessionStorage only) and POSTs /v1/rollout/rollback.
//
// Thread safety: both functions are thread-safe (RenderReport only calls
// the Store's thread-safe read methods).
#ifndef UNDERSTUDY_REPORT_REPORT_H_
#define UNDERSTUDY_REPORT_REPORT_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "rollout/rollout.h"
#include "storage/store.h"
#include "understudy/v1/eval.pb.h"
#include "understudy/v1/rollout.pb.h"

namespace understudy::report {

// ReportInputs is what the report needs besides the store.
struct ReportInputs {
  std::string production_model;
  std::string candidate_model;
  rollout::RolloutConfig rollout;      // the stage plan and gate thresholds
  understudy::v1::RolloutState state;  // the current state
  // Free text shown verbatim (e.g. the effective config, secrets removed).
  std::string config_summary;
  absl::Time now = absl::UnixEpoch();              // the report's time; records newer are included
  absl::Duration lookback = absl::Hours(24 * 30);  // records older than now - lookback are ignored
  // The shadow budget (shadow.budget_per_hour), to warn when spend nears it;
  // 0 = unlimited / unknown.
  double shadow_budget_per_hour = 0;
  // Retention of exchanges in hours (storage.retention_hours.exchanges), for
  // the "export the evidence before it expires" reminder; 0 = forever.
  int64_t exchanges_retention_hours = 72;
  // drift.deprecation: the served model's retirement date (a revisit
  // trigger that fires `deprecation_notice` before it); unset = none.
  std::optional<absl::Time> deprecation_date;
  absl::Duration deprecation_notice = absl::Hours(24 * 30);
  // The revisit triggers fired now, as the sidecar evaluated them
  // (drift::EvaluateRevisit with prices, traffic and the latest eval).
  // Unset: the report evaluates what the store and these inputs hold
  // (drift events, deprecation, the latest stored eval run).
  std::optional<std::vector<understudy::v1::RevisitTrigger>> revisit_fired;
};

// RenderReport renders the report as "md", "json" or "html".
// InvalidArgument for another format or lookback <= 0; the store's error
// (Unavailable, DataLoss) when a scan fails. Empty stores give a valid
// report that says there is no data yet.
[[nodiscard]] absl::StatusOr<std::string> RenderReport(storage::Store& store,
                                                       const ReportInputs& inputs,
                                                       std::string_view format);

// ReportContentType is the HTTP Content-Type for a format accepted by
// RenderReport ("text/markdown; charset=utf-8", "application/json",
// "text/html; charset=utf-8"); "" for an unknown format.
std::string_view ReportContentType(std::string_view format);

// DashboardHtml returns the dashboard page (the same bytes on every call).
std::string DashboardHtml();

}  // namespace understudy::report

#endif  // UNDERSTUDY_REPORT_REPORT_H_
