// Renders ReportData as Markdown, HTML or JSON. Markdown and HTML share one
// document builder over a small Writer interface, so both always carry the
// same facts; JSON is built from the same data with the protos embedded.
#include <algorithm>
#include <exception>
#include <optional>
#include <set>
#include <cmath>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "common/proto_json.h"
#include "nlohmann/json.hpp"
#include "report/report.h"
#include "report/report_data.h"
#include "drift/drift.h"

namespace understudy::report {
namespace {

using internal::ArmSummary;
using internal::ComparisonSummary;
using internal::ReportData;
using understudy::v1::Comparison;
using understudy::v1::Decision;
using understudy::v1::GateEvaluation;

constexpr size_t kMaxCellChars = 300;

// Truncate cuts `s` to at most `max` bytes on a UTF-8 boundary, adding "…".
std::string Truncate(std::string_view s, size_t max = kMaxCellChars) {
  if (s.size() <= max) return std::string(s);
  size_t cut = max;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return absl::StrCat(Av(s.substr(0, cut)), "…");
}

std::string Ms(const std::optional<double>& v) {
  return v.has_value() ? absl::StrFormat("%.0f ms", *v) : "n/a";
}
std::string Money(const std::optional<double>& v) {
  return v.has_value() ? absl::StrFormat("%.6g", *v) : "n/a";
}
std::string OptPercent(const std::optional<double>& v) {
  return v.has_value() ? internal::FormatPercent(*v) : "n/a";
}

// ---------------------------------------------------------------- writers --

class Writer {
 public:
  virtual ~Writer() = default;
  virtual void Title(const std::string& text) = 0;
  virtual void Outcome(const std::string& status, const std::string& text) = 0;
  virtual void Heading(int level, const std::string& text) = 0;
  virtual void Para(const std::string& text) = 0;
  virtual void Bullets(const std::vector<std::string>& items) = 0;
  // Labeled is a list whose items start with a short label (a severity).
  virtual void Labeled(const std::vector<std::pair<std::string, std::string>>& items) = 0;
  virtual void Checklist(const std::vector<std::string>& items) = 0;
  virtual void Table(const std::vector<std::string>& header,
                     const std::vector<std::vector<std::string>>& rows) = 0;
  virtual void Code(const std::string& text) = 0;
  virtual std::string Finish() = 0;
};

// Markdown: untrusted text is made inert: '<' becomes &lt; (no raw HTML),
// table cells escape '|' and fold newlines.
std::string MdText(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    if (ch == '<') {
      out += "&lt;";
    } else if (ch == '>') {
      out += "&gt;";
    } else if (ch == '\r') {
      continue;
    } else {
      out += ch;
    }
  }
  return out;
}

std::string MdCell(std::string_view s) {
  std::string out;
  for (char ch : MdText(s)) {
    if (ch == '|') {
      out += "\\|";
    } else if (ch == '\n' || ch == '\t') {
      out += ' ';
    } else {
      out += ch;
    }
  }
  return out;
}

class MdWriter final : public Writer {
 public:
  void Title(const std::string& text) override {
    absl::StrAppend(&out_, "# ", MdCell(text), "\n\n");
  }
  void Outcome(const std::string& status, const std::string& text) override {
    absl::StrAppend(&out_, "**Outcome: ", MdCell(text), "** (`", status, "`)\n\n");
  }
  void Heading(int level, const std::string& text) override {
    absl::StrAppend(&out_, std::string(level, '#'), " ", MdCell(text), "\n\n");
  }
  void Para(const std::string& text) override { absl::StrAppend(&out_, MdText(text), "\n\n"); }
  void Bullets(const std::vector<std::string>& items) override {
    for (const auto& i : items) absl::StrAppend(&out_, "- ", MdCell(i), "\n");
    out_ += "\n";
  }
  void Labeled(const std::vector<std::pair<std::string, std::string>>& items) override {
    for (const auto& [label, text] : items) {
      absl::StrAppend(&out_, "- **", MdCell(label), "** ", MdCell(text), "\n");
    }
    out_ += "\n";
  }
  void Checklist(const std::vector<std::string>& items) override {
    for (const auto& i : items) absl::StrAppend(&out_, "- [ ] ", MdCell(i), "\n");
    out_ += "\n";
  }
  void Table(const std::vector<std::string>& header,
             const std::vector<std::vector<std::string>>& rows) override {
    out_ += "|";
    for (const auto& h : header) absl::StrAppend(&out_, " ", MdCell(h), " |");
    out_ += "\n|";
    for (size_t i = 0; i < header.size(); ++i) out_ += "---|";
    out_ += "\n";
    for (const auto& row : rows) {
      out_ += "|";
      for (const auto& c : row) absl::StrAppend(&out_, " ", MdCell(c), " |");
      out_ += "\n";
    }
    out_ += "\n";
  }
  void Code(const std::string& text) override {
    // A fence longer than any backtick run inside.
    size_t run = 0, longest = 0;
    for (char ch : text) {
      run = ch == '`' ? run + 1 : 0;
      longest = std::max(longest, run);
    }
    std::string fence(std::max<size_t>(3, longest + 1), '`');
    absl::StrAppend(&out_, fence, "\n", text, text.empty() || text.back() == '\n' ? "" : "\n",
                    fence, "\n\n");
  }
  std::string Finish() override { return std::move(out_); }

 private:
  std::string out_;
};

}  // namespace

namespace internal {
// HtmlEscape escapes the five HTML special characters.
std::string HtmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size() + s.size() / 8);
  for (char ch : s) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += ch;
    }
  }
  return out;
}
}  // namespace internal

namespace {

using internal::HtmlEscape;

constexpr char kReportCss[] = R"CSS(
:root{--fg:#1d2330;--muted:#5b6475;--line:#d9dee8;--bg:#fff;--soft:#f5f7fb;--ok:#1a7f37;--bad:#c62828;--warn:#b26a00}
*{box-sizing:border-box}
body{font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--fg);background:var(--bg);margin:0 auto;padding:24px 32px 64px;max-width:1200px}
h1{font-size:24px;margin:0 0 8px}h2{font-size:19px;margin:32px 0 8px;border-bottom:1px solid var(--line);padding-bottom:4px}
h3{font-size:16px;margin:20px 0 6px}h4{font-size:14px;margin:14px 0 4px}
table{border-collapse:collapse;margin:8px 0 16px;min-width:60%;max-width:100%;font-size:13px}
th,td{border:1px solid var(--line);padding:4px 8px;text-align:left;vertical-align:top;overflow-wrap:anywhere}
th{background:var(--soft);font-weight:600}
tr:nth-child(even) td{background:#fafbfd}
pre{background:var(--soft);border:1px solid var(--line);padding:10px;overflow:auto;font-size:12px}
.outcome{display:inline-block;padding:6px 12px;border-radius:6px;font-weight:600;margin:4px 0 12px}
.outcome.promoted{background:#e6f4ea;color:var(--ok)}.outcome.rolled_back{background:#fdecea;color:var(--bad)}
.outcome.paused{background:#fff4e0;color:var(--warn)}.outcome.in_progress,.outcome.not_started{background:#e8f0fe;color:#1a4fb8}
td.pass{color:var(--ok);font-weight:600}td.fail{color:var(--bad);font-weight:600}td.inconclusive{color:var(--warn);font-weight:600}
.label{display:inline-block;min-width:64px;padding:0 6px;margin-right:6px;border-radius:4px;font-size:12px;font-weight:600;text-align:center;background:var(--soft)}
.label.high{background:#fdecea;color:var(--bad)}.label.medium{background:#fff4e0;color:var(--warn)}.label.low{background:#e8f0fe;color:#1a4fb8}
ul.check{list-style:none;padding-left:4px}ul.check li:before{content:"\2610\00a0";color:var(--muted)}
.muted{color:var(--muted)}
)CSS";

class HtmlWriter final : public Writer {
 public:
  void Title(const std::string& text) override {
    title_ = text;
    absl::StrAppend(&body_, "<h1>", HtmlEscape(text), "</h1>\n");
  }
  void Outcome(const std::string& status, const std::string& text) override {
    absl::StrAppend(&body_, "<div class=\"outcome ", HtmlEscape(status),
                    "\">Outcome: ", HtmlEscape(text), "</div>\n");
  }
  void Heading(int level, const std::string& text) override {
    level = std::clamp(level, 1, 6);
    absl::StrAppend(&body_, "<h", level, ">", HtmlEscape(text), "</h", level, ">\n");
  }
  void Para(const std::string& text) override {
    absl::StrAppend(&body_, "<p>", HtmlEscape(text), "</p>\n");
  }
  void Bullets(const std::vector<std::string>& items) override {
    body_ += "<ul>\n";
    for (const auto& i : items) absl::StrAppend(&body_, "<li>", HtmlEscape(i), "</li>\n");
    body_ += "</ul>\n";
  }
  void Labeled(const std::vector<std::pair<std::string, std::string>>& items) override {
    body_ += "<ul>\n";
    for (const auto& [label, text] : items) {
      absl::StrAppend(&body_, "<li><span class=\"label ", HtmlEscape(label), "\">",
                      HtmlEscape(label), "</span>", HtmlEscape(text), "</li>\n");
    }
    body_ += "</ul>\n";
  }
  void Checklist(const std::vector<std::string>& items) override {
    body_ += "<ul class=\"check\">\n";
    for (const auto& i : items) absl::StrAppend(&body_, "<li>", HtmlEscape(i), "</li>\n");
    body_ += "</ul>\n";
  }
  void Table(const std::vector<std::string>& header,
             const std::vector<std::vector<std::string>>& rows) override {
    body_ += "<table>\n<thead><tr>";
    for (const auto& h : header) absl::StrAppend(&body_, "<th>", HtmlEscape(h), "</th>");
    body_ += "</tr></thead>\n<tbody>\n";
    for (const auto& row : rows) {
      body_ += "<tr>";
      for (const auto& c : row) {
        // Gate outcomes get a colour.
        if (c == "pass" || c == "fail" || c == "inconclusive") {
          absl::StrAppend(&body_, "<td class=\"", c, "\">", c, "</td>");
        } else {
          absl::StrAppend(&body_, "<td>", HtmlEscape(c), "</td>");
        }
      }
      body_ += "</tr>\n";
    }
    body_ += "</tbody></table>\n";
  }
  void Code(const std::string& text) override {
    absl::StrAppend(&body_, "<pre>", HtmlEscape(text), "</pre>\n");
  }
  std::string Finish() override {
    return absl::StrCat(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta "
        "charset=\"utf-8\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, "
        "initial-scale=1\">\n"
        "<title>",
        HtmlEscape(title_), "</title>\n<style>", kReportCss, "</style>\n</head>\n<body>\n", body_,
        "</body>\n</html>\n");
  }

 private:
  std::string title_;
  std::string body_;
};

// ------------------------------------------------------- shared document --

// ArmCell is an arm's name as a table cell.
std::string ArmCell(understudy::v1::Arm arm) { return std::string(rollout::ArmName(arm)); }

std::vector<std::string> ArmRow(const std::string& name, const ArmSummary& a) {
  return {name,
          absl::StrCat(a.requests),
          absl::StrCat(a.errors),
          internal::FormatPercent(a.error_rate, 2),
          Ms(a.latency_p50_ms),
          Ms(a.latency_p95_ms),
          Ms(a.ttft_p95_ms),
          Money(a.cost_per_request)};
}
const std::vector<std::string> kArmHeader = {"arm",        "requests",    "errors",
                                             "error rate", "latency p50", "latency p95",
                                             "TTFT p95",   "cost/request"};

void VerdictTable(Writer& w, const ComparisonSummary& s) {
  std::vector<std::vector<std::string>> rows;
  for (int v = 1; v < static_cast<int>(s.verdicts.size()); ++v) {
    rows.push_back({internal::VerdictName(v), absl::StrCat(s.verdicts[v]),
                    s.comparisons > 0 ? internal::FormatPercent(static_cast<double>(s.verdicts[v]) /
                                                                s.comparisons)
                                      : "n/a"});
  }
  w.Table({"verdict", "count", "share"}, rows);
}

// GateThresholds states a gate's two numbers (rollout/rollout.h): what it
// tolerates (rolled back with probability at most alpha) and what it must
// catch (with power 1 - beta).
std::string GateThresholds(const rollout::RolloutConfig& c, const std::string& gate) {
  if (gate == "error_rate") {
    return absl::StrFormat(
        "tolerates a candidate error rate up to %.2fx production's; catches max(%.2fx, "
        "production + %s)",
        c.error_rate.tolerated_ratio, c.error_rate.max_ratio,
        internal::FormatPercent(c.error_rate.max_abs_increase, 2));
  }
  if (gate == "latency_p95" || gate == "ttft_p95") {
    const rollout::QuantileGate& g = gate == "latency_p95" ? c.latency : c.ttft;
    return absl::StrFormat("tolerates a candidate p%.0f up to %.2fx production's; catches %.2fx",
                           g.quantile * 100, g.tolerated_ratio, g.max_ratio);
  }
  if (gate == "satisfaction") {
    return absl::StrFormat("tolerates a mean score %.3f below production's; catches %.3f%s",
                           c.satisfaction.tolerated_drop, c.satisfaction.max_drop,
                           c.satisfaction.must_have_data ? "; data required" : "");
  }
  if (gate == "cost_per_request") {
    return absl::StrFormat("tolerates a mean cost up to %.2fx production's; catches %.2fx%s",
                           c.cost.tolerated_ratio, c.cost.max_ratio,
                           c.cost.must_have_data ? "; data required" : "");
  }
  if (gate == "agreement") {
    return absl::StrFormat("tolerates agreement down to %.3f; catches %.3f or below",
                           c.agreement.tolerated, c.agreement.min);
  }
  if (gate == "critical") {
    return absl::StrFormat(
        "circuit breaker: recent candidate error rate above %.2fx production's (and above %s) "
        "with %.0f%% confidence",
        c.critical.max_ratio, internal::FormatPercent(c.critical.max_error_rate),
        c.critical.confidence * 100);
  }
  return "";
}

void ConfigSection(Writer& w, const ReportData& d) {
  const ReportInputs& in = *d.inputs;
  const rollout::RolloutConfig& c = in.rollout;
  w.Heading(2, "Configuration");
  w.Heading(3, "Stage plan");
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < c.stages.size(); ++i) {
    const auto& s = c.stages[i];
    bool current = static_cast<int>(i) == in.state.stage_index() &&
                   in.state.phase() != understudy::v1::PHASE_UNSPECIFIED;
    rows.push_back({absl::StrCat(i + 1, current ? " (current)" : ""),
                    s.percent == 0 ? std::string("shadow (0%)") : absl::StrCat(s.percent, "%"),
                    internal::DurationText(s.min_bake), absl::StrCat(s.min_samples),
                    s.max_bake == absl::ZeroDuration() ? std::string("none")
                                                       : internal::DurationText(s.max_bake)});
  }
  w.Table({"stage", "candidate traffic", "min bake", "min samples", "max bake (then pause)"}, rows);
  w.Bullets({
      absl::StrCat("Rollback target: ", c.rollback_target == rollout::RollbackTarget::kZero
                                            ? "0% (all traffic to production)"
                                            : "the previous stage"),
      absl::StrFormat("Judge: alpha %.3g (false-rollback budget per gate per "
                      "rollout), beta %.3g",
                      c.alpha, c.beta),
      absl::StrCat("Recent window: ", internal::DurationText(c.recent_window), " in ",
                   c.recent_slots, " slots; tick every ", internal::DurationText(c.tick_interval)),
  });
  w.Heading(3, "Gates");
  struct G {
    const char* name;
    bool enabled;
    int64_t min_samples;
  };
  const G gates[] = {
      {"error_rate", c.error_rate.enabled, 0},
      {"latency_p95", c.latency.enabled, c.latency.min_samples},
      {"ttft_p95", c.ttft.enabled, c.ttft.min_samples},
      {"satisfaction", c.satisfaction.enabled, c.satisfaction.min_samples},
      {"cost_per_request", c.cost.enabled, c.cost.min_samples},
      {"agreement", c.agreement.enabled, c.agreement.min_samples},
      {"critical", c.critical.enabled, c.critical.min_requests},
  };
  rows.clear();
  for (const G& g : gates) {
    rows.push_back({g.name, g.enabled ? "yes" : "no", GateThresholds(c, g.name),
                    g.min_samples > 0 ? absl::StrCat(g.min_samples) : std::string("-")});
  }
  w.Table({"gate", "enabled", "tolerates / must catch", "min samples"}, rows);
  if (!in.config_summary.empty()) {
    w.Heading(3, "Effective config");
    w.Code(in.config_summary);
  }
}

void ComparisonBlock(Writer& w, const ComparisonSummary& s, bool comparators) {
  w.Bullets({absl::StrCat("Comparisons: ", s.comparisons),
             absl::StrCat("Agreement (not major_diff among equivalent, minor and major): ",
                          OptPercent(s.agreement_rate)),
             absl::StrCat("Findings: ", s.findings, " (", s.findings_major, " major, ",
                          s.findings_noise_explained, " within production's noise)")});
  VerdictTable(w, s);
  if (comparators && !s.comparators.empty()) {
    std::vector<std::vector<std::string>> rows;
    for (const auto& k : s.comparators) {
      rows.push_back({k.name, absl::StrFormat("%.3f", k.mean_score), absl::StrCat(k.samples),
                      absl::StrCat(k.noise_explained)});
    }
    w.Table({"comparator", "mean score (1 = identical)", "samples", "noise-explained"}, rows);
  }
}

void EvalSection(Writer& w, const ReportData& d) {
  w.Heading(2, "Eval results");
  if (!d.eval.has_value()) {
    w.Para(
        "No eval exchanges (source eval) in the window. Run `understudy eval "
        "--dataset "
        "FILE` to score both models on a fixed dataset before going live.");
    return;
  }
  const auto& e = *d.eval;
  w.Para(absl::StrCat(e.exchanges, " eval exchanges."));
  w.Table(kArmHeader, {ArmRow(ArmCell(understudy::v1::ARM_PRODUCTION), e.production),
                       ArmRow(ArmCell(understudy::v1::ARM_CANDIDATE), e.candidate)});
  if (e.comparisons.comparisons > 0) {
    ComparisonBlock(w, e.comparisons, true);
  } else {
    w.Para("No comparisons were stored for the eval exchanges.");
  }
}

void FindingsTable(Writer& w, const Comparison& c) {
  std::vector<std::vector<std::string>> rows;
  for (const auto& f : c.findings()) {
    rows.push_back({f.kind(), Truncate(f.path()), Truncate(f.production()), Truncate(f.candidate()),
                    Truncate(f.message()), f.major() ? "yes" : "no",
                    f.noise_explained() ? "yes" : "no"});
  }
  if (!rows.empty()) {
    w.Table({"finding", "path", "production", "candidate", "message", "major", "noise"}, rows);
  }
}

void ShadowSection(Writer& w, const ReportData& d) {
  w.Heading(2, "Shadow results");
  const ComparisonSummary& s = d.shadow;
  if (s.comparisons == 0) {
    w.Para("No shadow comparisons in the window yet.");
    return;
  }
  ComparisonBlock(w, s, true);
  w.Para(
      "Both answers to the same requests, as measured by the shadow "
      "comparisons:");
  w.Table(kArmHeader, {ArmRow(ArmCell(understudy::v1::ARM_PRODUCTION), s.production),
                       ArmRow(ArmCell(understudy::v1::ARM_CANDIDATE), s.candidate)});
  std::vector<std::string> counts = {
      absl::StrCat("Live exchanges stored: ", d.live_exchanges),
      absl::StrCat("Shadow calls stored: ", d.shadow_exchanges),
      absl::StrCat("Noise calibration calls stored: ", d.noise_exchanges)};
  if (d.shadow_spend_last_hour.has_value()) {
    counts.push_back(
        absl::StrFormat("Shadow spend in the last hour: %.6g%s", *d.shadow_spend_last_hour,
                        d.inputs->shadow_budget_per_hour > 0
                            ? absl::StrFormat(" of a %.6g budget", d.inputs->shadow_budget_per_hour)
                            : std::string()));
  }
  w.Bullets(counts);
  w.Heading(3, "Worst major differences");
  if (d.top_major_diffs.empty()) {
    w.Para("No major differences.");
    return;
  }
  int n = 0;
  for (const Comparison& c : d.top_major_diffs) {
    w.Heading(4, absl::StrCat(++n, ". ", c.request_id(), " at ",
                              internal::TimeText(absl::FromUnixMicros(c.time_unix_micros()))));
    std::vector<std::string> scores;
    for (const auto& sc : c.scores()) {
      if (!sc.applicable()) continue;
      scores.push_back(absl::StrFormat("%s %.3f%s", sc.name(), sc.score(),
                                       sc.noise_explained() ? " (noise)" : ""));
    }
    w.Bullets({absl::StrCat("Models: ", c.production_model(), " vs ", c.candidate_model(),
                            c.request_kind().empty() ? "" : "; kind ", c.request_kind()),
               absl::StrCat("Scores: ", scores.empty() ? "none" : absl::StrJoin(scores, ", "))});
    FindingsTable(w, c);
  }
}

std::string MsOrNa(int64_t requests, double ms) {
  return requests > 0 && ms > 0 ? absl::StrFormat("%.0f ms", ms) : std::string("n/a");
}

std::vector<std::string> HealthRow(const std::string& name, const understudy::v1::ArmHealth& a) {
  return {name,
          absl::StrCat(a.requests()),
          a.requests() > 0 ? internal::FormatPercent(a.error_rate(), 2) : std::string("n/a"),
          MsOrNa(a.requests(), a.latency_p50_ms()),
          MsOrNa(a.requests(), a.latency_p95_ms()),
          MsOrNa(a.requests(), a.ttft_p95_ms()),
          a.feedback_count() > 0
              ? absl::StrFormat("%.3f (%d)", a.satisfaction_mean(), a.feedback_count())
              : std::string("n/a"),
          a.cost_samples() > 0 ? absl::StrFormat("%.6g", a.cost_per_request()) : std::string("n/a"),
          a.comparisons() > 0 ? internal::FormatPercent(a.agreement_rate()) : std::string("n/a")};
}

void HealthTable(Writer& w, const understudy::v1::HealthSnapshot& h) {
  std::vector<std::vector<std::string>> rows = {HealthRow("production", h.production()),
                                                HealthRow("candidate (live)", h.candidate())};
  if (h.shadow().requests() > 0) rows.push_back(HealthRow("candidate (shadow)", h.shadow()));
  w.Table({"arm", "requests", "error rate", "latency p50", "latency p95", "TTFT p95",
           "satisfaction (n)", "cost/request", "agreement"},
          rows);
}

void HealthSection(Writer& w, const ReportData& d) {
  w.Heading(2, "Current health");
  if (!d.latest_health.has_value()) {
    w.Para("No health snapshot stored in the window.");
    return;
  }
  const auto& h = *d.latest_health;
  const std::string at = internal::TimeText(absl::FromUnixMicros(h.time_unix_micros()));
  const auto& busy = d.latest_health_with_traffic;
  if (busy.has_value() && busy->time_unix_micros() == h.time_unix_micros()) {
    w.Para(absl::StrCat("Latest snapshot at ", at, " (", rollout::PhaseName(h.state().phase()),
                        ", candidate weight ",
                        internal::WeightText(h.state().weight_basis_points()),
                        "), since the start of the current stage:"));
    HealthTable(w, h);
    return;
  }
  w.Para(absl::StrCat("Latest snapshot at ", at, " (", rollout::PhaseName(h.state().phase()),
                      "): no traffic counted since the current stage started."));
  if (busy.has_value()) {
    w.Para(absl::StrCat("The last snapshot with traffic, at ",
                        internal::TimeText(absl::FromUnixMicros(busy->time_unix_micros())), " (",
                        rollout::PhaseName(busy->state().phase()), ", candidate weight ",
                        internal::WeightText(busy->state().weight_basis_points()), "):"));
    HealthTable(w, *busy);
  }
}

std::string GateNumber(double v) { return internal::FormatNumber(v); }

// EvalTrendKeys lists (arm, metric) pairs seen in any run, production
// first, then candidate, then production vs candidate; metrics sorted.
std::vector<std::pair<understudy::v1::Arm, std::string>> EvalTrendKeys(
    const std::vector<understudy::v1::EvalRun>& runs) {
  std::set<std::pair<int, std::string>> keys;
  for (const understudy::v1::EvalRun& run : runs) {
    for (const understudy::v1::EvalArmSummary& a : run.arms()) {
      for (const auto& [metric, value] : a.metrics()) {
        if (metric != "requests") keys.insert({a.arm() == understudy::v1::ARM_CANDIDATE ? 1 : 0, metric});
      }
    }
    for (const auto& [metric, value] : run.metrics()) keys.insert({2, metric});
  }
  std::vector<std::pair<understudy::v1::Arm, std::string>> out;
  for (const auto& [order, metric] : keys) {
    out.push_back({order == 0   ? understudy::v1::ARM_PRODUCTION
                   : order == 1 ? understudy::v1::ARM_CANDIDATE
                                : understudy::v1::ARM_UNSPECIFIED,
                   metric});
  }
  return out;
}

// EvalValue is a run's value of (arm, metric); nullopt when not measured.
std::optional<double> EvalValue(const understudy::v1::EvalRun& run, understudy::v1::Arm arm,
                                const std::string& metric) {
  const google::protobuf::Map<std::string, double>* m = &run.metrics();
  if (arm != understudy::v1::ARM_UNSPECIFIED) {
    m = nullptr;
    for (const understudy::v1::EvalArmSummary& a : run.arms()) {
      if (a.arm() == arm) m = &a.metrics();
    }
  }
  if (m == nullptr) return std::nullopt;
  auto it = m->find(metric);
  if (it == m->end()) return std::nullopt;
  return it->second;
}

std::string EvalArmText(understudy::v1::Arm arm) {
  return arm == understudy::v1::ARM_UNSPECIFIED ? std::string("production vs candidate")
                                                : std::string(rollout::ArmName(arm));
}

// How many runs a trend shows (the newest).
constexpr size_t kTrendRuns = 10;

// ScheduledEvalSection: the scheduled golden-set evals (docs/drift.md): each
// metric's trend across runs, and the latest run against its baseline.
void ScheduledEvalSection(Writer& w, const ReportData& d) {
  w.Heading(2, "Scheduled evals");
  const std::vector<understudy::v1::EvalRun>& runs = d.eval_runs;
  if (runs.empty()) {
    w.Para("No scheduled eval runs in the window (configure `eval:` to run the golden set "
           "inside serve).");
    return;
  }
  const understudy::v1::EvalRun& latest = runs.back();
  int64_t failed = 0;
  for (const auto& r : runs) failed += r.failed() ? 1 : 0;
  w.Para(absl::StrCat(runs.size(), " run(s) of ", latest.dataset(), " from ",
                      internal::TimeText(absl::FromUnixMicros(runs.front().start_unix_micros())),
                      " to ", internal::TimeText(absl::FromUnixMicros(latest.start_unix_micros())),
                      failed > 0 ? absl::StrCat("; ", failed, " failed") : std::string(), "."));
  const size_t from = runs.size() > kTrendRuns ? runs.size() - kTrendRuns : 0;
  std::vector<std::vector<std::string>> rows;
  for (const auto& [arm, metric] : EvalTrendKeys(runs)) {
    std::vector<std::string> values;
    for (size_t i = from; i < runs.size(); ++i) {
      std::optional<double> v = EvalValue(runs[i], arm, metric);
      values.push_back(runs[i].failed() ? "failed" : v ? internal::FormatNumber(*v) : "-");
    }
    std::optional<double> last = EvalValue(latest, arm, metric);
    rows.push_back({EvalArmText(arm), metric, absl::StrJoin(values, " → "),
                    last ? internal::FormatNumber(*last) : "-"});
  }
  w.Heading(3, "Trend per metric");
  w.Para(absl::StrCat("Oldest to newest, the last ", runs.size() - from, " run(s)."));
  w.Table({"arm", "metric", "trend", "latest"}, rows);

  w.Heading(3, "Latest run against its baseline run");
  if (latest.failed()) {
    w.Para(absl::StrCat("The latest run (",
                        internal::TimeText(absl::FromUnixMicros(latest.start_unix_micros())),
                        ") FAILED: ", latest.error()));
    return;
  }
  if (latest.baseline_start_unix_micros() == 0) {
    w.Para("The latest run is the baseline (the first run): nothing to compare yet.");
    return;
  }
  w.Para(absl::StrCat(
      "Baseline run: ",
      internal::TimeText(absl::FromUnixMicros(latest.baseline_start_unix_micros())),
      " (the last run before the latest rollout decision, or the first run). Re-ask "
      "agreement compares each answer with the baseline's answer to the same item."));
  if (latest.regressions().empty()) {
    w.Para("No regression against the baseline run.");
    return;
  }
  std::vector<std::string> lines;
  for (const understudy::v1::EvalRegression& r : latest.regressions()) {
    lines.push_back(absl::StrCat("REGRESSION: ", r.detail()));
  }
  w.Bullets(lines);
}

// DriftSection: the drift watch's baselines and events (docs/drift.md).
void DriftSection(Writer& w, const ReportData& d) {
  w.Heading(2, "Model drift");
  std::vector<std::vector<std::string>> baselines;
  std::vector<std::vector<std::string>> events;
  for (const Decision& dec : d.drift) {
    const std::string when = internal::TimeText(absl::FromUnixMicros(dec.time_unix_micros()));
    if (dec.action() == understudy::v1::ACTION_DRIFT_BASELINE) {
      const understudy::v1::DriftBaseline& b = dec.drift_baseline();
      std::vector<std::string> versions, metrics;
      for (const auto& v : b.versions()) {
        versions.push_back(absl::StrCat(v.dimension(), ": ", absl::StrJoin(v.values(), ", ")));
      }
      for (const auto& m : b.metrics()) {
        metrics.push_back(absl::StrCat(m.metric(), " ", internal::FormatNumber(m.mean()), " (n ",
                                       m.samples(), ", ", m.clusters(), " users)"));
      }
      baselines.push_back({when, std::string(rollout::ArmName(b.arm())),
                           absl::StrJoin(versions, "; "), absl::StrJoin(metrics, "; ")});
      continue;
    }
    const understudy::v1::DriftEvent& e = dec.drift_event();
    std::string effect;
    if (e.kind() == understudy::v1::DRIFT_BEHAVIOUR) {
      effect = absl::StrFormat("%s → %s (%+.1f%%; interval [%s, %s])",
                               internal::FormatNumber(e.baseline_value()),
                               internal::FormatNumber(e.live_value()),
                               100 * e.relative_effect(), internal::FormatNumber(e.effect_lower()),
                               internal::FormatNumber(e.effect_upper()));
    } else if (e.kind() == understudy::v1::DRIFT_VERSION_MIX) {
      effect = absl::StrFormat("distance %.2f", e.distance());
    } else {
      effect = absl::StrCat("new value ", e.value());
    }
    events.push_back({when, std::string(rollout::ArmName(e.arm())),
                      std::string(drift::KindName(e.kind())), e.dimension(), effect,
                      e.paused_rollout() ? "yes" : "no", Truncate(e.detail(), 400)});
  }
  if (baselines.empty() && events.empty()) {
    w.Para("No drift records in the window (drift.enabled off, or no baseline yet).");
    return;
  }
  if (events.empty()) {
    w.Para("No drift: every arm serves the versions and behaviour of its baseline.");
  } else {
    w.Para(absl::StrCat(events.size(), " drift event(s): the served model changed after the "
                        "decision. See \"When to revisit\"."));
    w.Table({"time", "arm", "kind", "dimension", "change", "paused rollout", "detail"}, events);
  }
  if (!baselines.empty()) {
    w.Heading(3, "Baselines");
    w.Table({"frozen", "arm", "versions", "behaviour"}, baselines);
  }
}

void DecisionsSection(Writer& w, const ReportData& d) {
  w.Heading(2, "Rollout decisions");
  if (d.decisions.empty()) {
    w.Para("No rollout decisions in the window.");
    return;
  }
  std::vector<std::vector<std::string>> rows;
  int n = 0;
  for (const Decision& dec : d.decisions) {
    rows.push_back({absl::StrCat(++n),
                    internal::TimeText(absl::FromUnixMicros(dec.time_unix_micros())), dec.actor(),
                    std::string(rollout::DecisionActionName(dec.action())),
                    absl::StrCat(internal::WeightText(dec.from().weight_basis_points()), " → ",
                                 internal::WeightText(dec.to().weight_basis_points())),
                    absl::StrCat(rollout::PhaseName(dec.from().phase()), " → ",
                                 rollout::PhaseName(dec.to().phase())),
                    Truncate(dec.reason(), 600)});
  }
  w.Table({"#", "time", "actor", "action", "weight", "phase", "reason"}, rows);
  n = 0;
  for (const Decision& dec : d.decisions) {
    ++n;
    if (dec.gates_size() == 0 && dec.trigger_request_ids_size() == 0) continue;
    w.Heading(3, absl::StrCat("Decision ", n, ": ", Av(rollout::DecisionActionName(dec.action())),
                              " by ", dec.actor(), " at ",
                              internal::TimeText(absl::FromUnixMicros(dec.time_unix_micros()))));
    w.Para(absl::StrCat("Reason: ", dec.reason()));
    if (dec.gates_size() > 0) {
      std::vector<std::vector<std::string>> g;
      for (const GateEvaluation& e : dec.gates()) {
        g.push_back({e.gate(), std::string(rollout::GateOutcomeName(e.outcome())),
                     GateNumber(e.production_value()), GateNumber(e.candidate_value()),
                     GateNumber(e.threshold()), e.statistic(), GateNumber(e.statistic_value()),
                     GateNumber(e.bound()), GateNumber(e.p_value()),
                     absl::StrCat(e.production_samples(), " / ", e.candidate_samples()),
                     absl::StrCat(e.production_clusters(), " / ", e.candidate_clusters()),
                     e.design_effect() > 0 ? absl::StrFormat("%.2f", e.design_effect()) : "-",
                     Truncate(e.detail(), 400)});
      }
      w.Table({"gate", "outcome", "production", "candidate", "threshold", "statistic", "value",
               "bound", "p-value", "samples (prod / cand)", "clusters (prod / cand)",
               "design effect", "detail"},
              g);
    }
    if (dec.trigger_request_ids_size() > 0) {
      std::vector<std::string> ids(dec.trigger_request_ids().begin(),
                                   dec.trigger_request_ids().end());
      if (ids.size() > 20) ids.resize(20);
      w.Para(absl::StrCat("Requests that tipped it: ", absl::StrJoin(ids, ", ")));
    }
  }
}

std::string Document(Writer& w, const ReportData& d) {
  const ReportInputs& in = *d.inputs;
  w.Title(absl::StrCat("Model migration: ", in.production_model, " → ", in.candidate_model));
  w.Outcome(d.outcome, d.outcome_text);
  w.Para(absl::StrCat("Report generated at ", internal::TimeText(in.now), " from records since ",
                      internal::TimeText(d.since), " (lookback ",
                      internal::DurationText(in.lookback), ")."));

  w.Heading(2, "Summary");
  const auto& st = in.state;
  w.Bullets({
      absl::StrCat("Phase: ", rollout::PhaseName(st.phase()), "; stage ", st.stage_index() + 1,
                   " of ", in.rollout.stages.size(), " (",
                   internal::StagePercentText(in, st.stage_index()), "); candidate weight ",
                   internal::WeightText(st.weight_basis_points())),
      absl::StrCat("Stage started: ",
                   st.stage_started_unix_micros() > 0
                       ? internal::TimeText(absl::FromUnixMicros(st.stage_started_unix_micros()))
                       : std::string("n/a"),
                   "; state version ", st.version(), "; rollbacks so far ", st.rollbacks()),
      absl::StrCat("Last reason: ", st.last_reason().empty() ? "none" : st.last_reason()),
      absl::StrCat("Decisions: ", d.decisions.size(), "; shadow comparisons: ",
                   d.shadow.comparisons, " (agreement ", OptPercent(d.shadow.agreement_rate),
                   "); eval exchanges: ", d.eval.has_value() ? d.eval->exchanges : 0),
      absl::StrCat("Open risks: ", d.risks.size()),
  });

  ConfigSection(w, d);
  EvalSection(w, d);
  ShadowSection(w, d);
  HealthSection(w, d);
  DecisionsSection(w, d);
  DriftSection(w, d);
  ScheduledEvalSection(w, d);

  w.Heading(2, "Current risks");
  if (d.risks.empty()) {
    w.Para("None found.");
  } else {
    std::vector<std::pair<std::string, std::string>> items;
    for (const auto& r : d.risks) items.push_back({r.severity, r.message});
    w.Labeled(items);
  }

  w.Heading(2, "When to revisit");
  if (!d.revisit.fired.empty()) {
    w.Para("Revisit now: these triggers fired.");
    w.Bullets(d.revisit.fired);
  }
  w.Para(absl::StrCat("Revisit by ",
                      absl::FormatTime("%Y-%m-%d", d.revisit.date, absl::UTCTimeZone()), ". ",
                      d.revisit.reason));
  w.Checklist(d.revisit.checklist);
  if (!d.notes.empty()) {
    w.Heading(2, "Notes");
    w.Bullets(d.notes);
  }
  return w.Finish();
}

// ------------------------------------------------------------------ JSON --

nlohmann::json OptJson(const std::optional<double>& v) {
  return v.has_value() && std::isfinite(*v) ? nlohmann::json(*v) : nlohmann::json(nullptr);
}

nlohmann::json Finite(double v) {
  return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr);
}

nlohmann::json ArmJson(const ArmSummary& a) {
  return {{"requests", a.requests},
          {"errors", a.errors},
          {"error_rate", Finite(a.error_rate)},
          {"latency_p50_ms", OptJson(a.latency_p50_ms)},
          {"latency_p95_ms", OptJson(a.latency_p95_ms)},
          {"ttft_p95_ms", OptJson(a.ttft_p95_ms)},
          {"cost_per_request", OptJson(a.cost_per_request)},
          {"cost_samples", a.cost_samples}};
}

nlohmann::json ComparisonJson(const ComparisonSummary& s) {
  nlohmann::json verdicts = nlohmann::json::object();
  for (int v = 1; v < static_cast<int>(s.verdicts.size()); ++v) {
    verdicts[internal::VerdictName(v)] = s.verdicts[v];
  }
  nlohmann::json comparators = nlohmann::json::array();
  for (const auto& k : s.comparators) {
    comparators.push_back({{"name", k.name},
                           {"mean_score", Finite(k.mean_score)},
                           {"samples", k.samples},
                           {"noise_explained", k.noise_explained}});
  }
  return {{"comparisons", s.comparisons},
          {"verdicts", verdicts},
          {"agreement_rate", OptJson(s.agreement_rate)},
          {"comparators", comparators},
          {"arms", {{"production", ArmJson(s.production)}, {"candidate", ArmJson(s.candidate)}}},
          {"findings", s.findings},
          {"findings_major", s.findings_major},
          {"findings_noise_explained", s.findings_noise_explained}};
}

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_sec, t, absl::UTCTimeZone());
}

absl::StatusOr<std::string> Json(const ReportData& d) {
  const ReportInputs& in = *d.inputs;
  const rollout::RolloutConfig& c = in.rollout;
  nlohmann::json j;
  j["report_version"] = 1;
  j["generated_at"] = Rfc3339(in.now);
  j["since"] = Rfc3339(d.since);
  j["lookback_seconds"] = absl::ToInt64Seconds(in.lookback);
  j["production_model"] = in.production_model;
  j["candidate_model"] = in.candidate_model;
  j["outcome"] = {{"status", d.outcome},
                  {"summary", d.outcome_text},
                  {"phase", std::string(rollout::PhaseName(in.state.phase()))},
                  {"stage_index", in.state.stage_index()},
                  {"stage", internal::StagePercentText(in, in.state.stage_index())},
                  {"weight_percent", in.state.weight_basis_points() / 100.0}};
  ASSIGN_OR_RETURN(j["state"], ProtoToJson(in.state));

  nlohmann::json stages = nlohmann::json::array();
  for (const auto& s : c.stages) {
    stages.push_back({{"percent", s.percent},
                      {"min_bake_seconds", absl::ToInt64Seconds(s.min_bake)},
                      {"min_samples", s.min_samples},
                      {"max_bake_seconds", absl::ToInt64Seconds(s.max_bake)}});
  }
  auto quantile = [](const rollout::QuantileGate& g) {
    return nlohmann::json{{"enabled", g.enabled},
                          {"quantile", g.quantile},
                          {"max_ratio", g.max_ratio},
                          {"margin", g.margin},
                          {"min_samples", g.min_samples}};
  };
  j["config"] = {
      {"stages", stages},
      {"plan", rollout::PlanFingerprint(c)},
      {"rollback_target",
       c.rollback_target == rollout::RollbackTarget::kZero ? "zero" : "previous_stage"},
      {"alpha", c.alpha},
      {"beta", c.beta},
      {"recent_window_seconds", absl::ToInt64Seconds(c.recent_window)},
      {"gates",
       {{"error_rate",
         {{"enabled", c.error_rate.enabled},
          {"max_ratio", c.error_rate.max_ratio},
          {"max_abs_increase", c.error_rate.max_abs_increase}}},
        {"latency_p95", quantile(c.latency)},
        {"ttft_p95", quantile(c.ttft)},
        {"satisfaction",
         {{"enabled", c.satisfaction.enabled},
          {"max_drop", c.satisfaction.max_drop},
          {"min_samples", c.satisfaction.min_samples},
          {"must_have_data", c.satisfaction.must_have_data}}},
        {"cost_per_request",
         {{"enabled", c.cost.enabled},
          {"max_ratio", c.cost.max_ratio},
          {"min_samples", c.cost.min_samples},
          {"must_have_data", c.cost.must_have_data}}},
        {"agreement",
         {{"enabled", c.agreement.enabled},
          {"min", c.agreement.min},
          {"min_samples", c.agreement.min_samples}}},
        {"critical",
         {{"enabled", c.critical.enabled},
          {"max_error_rate", c.critical.max_error_rate},
          {"min_requests", c.critical.min_requests},
          {"confidence", c.critical.confidence}}}}},
      {"summary", in.config_summary},
  };

  if (d.eval.has_value()) {
    j["eval"] = {
        {"exchanges", d.eval->exchanges},
        {"arms",
         {{"production", ArmJson(d.eval->production)}, {"candidate", ArmJson(d.eval->candidate)}}},
        {"comparisons", ComparisonJson(d.eval->comparisons)}};
  } else {
    j["eval"] = nullptr;
  }

  nlohmann::json shadow = ComparisonJson(d.shadow);
  shadow["live_exchanges"] = d.live_exchanges;
  shadow["shadow_exchanges"] = d.shadow_exchanges;
  shadow["noise_exchanges"] = d.noise_exchanges;
  shadow["spend_last_hour"] = OptJson(d.shadow_spend_last_hour);
  nlohmann::json top = nlohmann::json::array();
  for (const Comparison& cmp : d.top_major_diffs) {
    ASSIGN_OR_RETURN(nlohmann::json one, ProtoToJson(cmp));
    top.push_back(std::move(one));
  }
  shadow["top_major_diffs"] = std::move(top);
  j["shadow"] = std::move(shadow);

  if (d.latest_health.has_value()) {
    ASSIGN_OR_RETURN(j["health"], ProtoToJson(*d.latest_health));
  } else {
    j["health"] = nullptr;
  }
  if (d.latest_health_with_traffic.has_value()) {
    ASSIGN_OR_RETURN(j["health_with_traffic"], ProtoToJson(*d.latest_health_with_traffic));
  } else {
    j["health_with_traffic"] = nullptr;
  }

  nlohmann::json decisions = nlohmann::json::array();
  for (const Decision& dec : d.decisions) {
    ASSIGN_OR_RETURN(nlohmann::json one, ProtoToJson(dec));
    decisions.push_back(std::move(one));
  }
  j["decisions"] = std::move(decisions);
  nlohmann::json drift_events = nlohmann::json::array();
  nlohmann::json drift_baselines = nlohmann::json::array();
  for (const Decision& dec : d.drift) {
    if (dec.action() == understudy::v1::ACTION_DRIFT_BASELINE) {
      ASSIGN_OR_RETURN(nlohmann::json one, ProtoToJson(dec.drift_baseline()));
      drift_baselines.push_back(std::move(one));
    } else {
      ASSIGN_OR_RETURN(nlohmann::json one, ProtoToJson(dec.drift_event()));
      one["time_unix_micros"] = dec.time_unix_micros();
      drift_events.push_back(std::move(one));
    }
  }
  j["drift"] = {{"events", std::move(drift_events)}, {"baselines", std::move(drift_baselines)}};

  // Scheduled evals: each run's summary (not its items: GET /v1/evals),
  // each metric's trend, and the latest run's regressions.
  {
    nlohmann::json runs = nlohmann::json::array();
    for (const understudy::v1::EvalRun& run : d.eval_runs) {
      understudy::v1::EvalRun summary = run;
      summary.clear_results();
      ASSIGN_OR_RETURN(nlohmann::json one, ProtoToJson(summary));
      runs.push_back(std::move(one));
    }
    nlohmann::json trend = nlohmann::json::array();
    for (const auto& [arm, metric] : EvalTrendKeys(d.eval_runs)) {
      nlohmann::json values = nlohmann::json::array();
      for (const understudy::v1::EvalRun& run : d.eval_runs) {
        std::optional<double> v = EvalValue(run, arm, metric);
        values.push_back(v ? nlohmann::json(*v) : nlohmann::json(nullptr));
      }
      trend.push_back({{"arm", arm == understudy::v1::ARM_UNSPECIFIED
                                   ? std::string("both")
                                   : std::string(rollout::ArmName(arm))},
                       {"metric", metric},
                       {"values", std::move(values)}});
    }
    nlohmann::json regressions = nlohmann::json::array();
    if (!d.eval_runs.empty()) {
      for (const understudy::v1::EvalRegression& r : d.eval_runs.back().regressions()) {
        ASSIGN_OR_RETURN(nlohmann::json one, ProtoToJson(r));
        regressions.push_back(std::move(one));
      }
    }
    j["evals"] = {{"runs", std::move(runs)},
                  {"trend", std::move(trend)},
                  {"regressions", std::move(regressions)}};
  }

  nlohmann::json risks = nlohmann::json::array();
  for (const auto& r : d.risks) {
    risks.push_back({{"severity", r.severity}, {"kind", r.kind}, {"message", r.message}});
  }
  j["risks"] = std::move(risks);
  j["revisit"] = {{"date", absl::FormatTime("%Y-%m-%d", d.revisit.date, absl::UTCTimeZone())},
                  {"reason", d.revisit.reason},
                  {"checklist", d.revisit.checklist},
                  {"fired", d.revisit.fired}};
  {
    nlohmann::json triggers = nlohmann::json::array();
    for (const understudy::v1::RevisitTrigger& t : d.revisit.triggers) {
      ASSIGN_OR_RETURN(nlohmann::json one, ProtoToJson(t));
      triggers.push_back(std::move(one));
    }
    j["revisit"]["triggers"] = std::move(triggers);
  }
  j["notes"] = d.notes;
  // Invalid UTF-8 in stored text (e.g. a truncated body in a finding) must
  // not make dump() throw: replace it.
  return j.dump(2, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace

std::string_view ReportContentType(std::string_view format) {
  if (format == "md") return "text/markdown; charset=utf-8";
  if (format == "json") return "application/json";
  if (format == "html") return "text/html; charset=utf-8";
  return "";
}

absl::StatusOr<std::string> RenderReport(storage::Store& store, const ReportInputs& inputs,
                                         std::string_view format) {
  if (format != "md" && format != "json" && format != "html") {
    return absl::InvalidArgumentError(
        absl::StrCat("report: format must be md, json or html, got \"", Av(format), "\""));
  }
  ASSIGN_OR_RETURN(ReportData data, internal::Gather(store, inputs));
  if (format == "json") {
    // nlohmann throws on misuse (e.g. a type error); keep it inside this file.
    try {
      return Json(data);
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat("report: cannot build JSON: ", e.what()));
    }
  }
  if (format == "html") {
    HtmlWriter w;
    return Document(w, data);
  }
  MdWriter w;
  return Document(w, data);
}

}  // namespace understudy::report
