// The migration report rendered from a real RocksDB store holding a rollout
// history made by the real controller: md, json and html.
#include "report/report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_format.h"
#include "absl/strings/str_replace.h"
#include "nlohmann/json.hpp"
#include "rollout/router.h"
#include "storage/store.h"
#include "tests/common/test_util.h"
#include "tests/report/report_test_util.h"

#ifndef UNDERSTUDY_REPORT_ARTIFACT_DIR
#define UNDERSTUDY_REPORT_ARTIFACT_DIR "."
#endif

namespace understudy::report {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing::TempDir;
using ::understudy::testing::StatusIs;

// StoreLog commits transitions to the store, as the engine does.
class StoreLog final : public rollout::TransitionLog {
 public:
  explicit StoreLog(storage::Store& store) : store_(store) {}
  absl::Status Commit(const v1::RolloutState& state, const v1::Decision& decision) override {
    return store_.CommitTransition(state, decision);
  }

 private:
  storage::Store& store_;
};

std::string HtmlEscaped(const std::string& s) {
  return absl::StrReplaceAll(
      s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}, {"'", "&#39;"}});
}

class ReportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::StorageConfig config;
    config.path = dir_.path() + "/db";
    config.retention_interval = absl::ZeroDuration();
    config.privacy.body_mode = storage::BodyMode::kFull;
    absl::StatusOr<std::unique_ptr<storage::Store>> store = storage::OpenRocksStore(config, clock_);
    ASSERT_OK(store);
    store_ = std::move(*store);
    log_ = std::make_unique<StoreLog>(*store_);
    controller_ = std::make_unique<rollout::Controller>(rollout_config_, clock_, router_, *log_);
  }

  // Fill runs the realistic history into the store.
  void Fill() {
    testing::HistorySink sink;
    sink.comparison = [&](const v1::Comparison& c) { ASSERT_OK(store_->PutComparison(c)); };
    sink.exchange = [&](const v1::Exchange& e) { ASSERT_OK(store_->PutExchange(e)); };
    sink.health = [&](const v1::HealthSnapshot& h) { ASSERT_OK(store_->PutHealth(h)); };
    history_ = testing::RunHistory(clock_, *controller_, sink);
    absl::StatusOr<std::vector<v1::Decision>> d =
        store_->ListDecisions(absl::InfinitePast(), storage::kNoLimit);
    ASSERT_OK(d);
    decisions_ = *d;
  }

  ReportInputs Inputs() {
    ReportInputs in;
    in.production_model = "gpt-4o";
    in.candidate_model = "gpt-4o-mini";
    in.rollout = rollout_config_;
    in.state = controller_->State();
    in.config_summary = "rollout:\n  stages: [0, 10, 50, 100]\n";
    in.now = clock_.Now();
    return in;
  }

  std::string Render(std::string_view format) {
    absl::StatusOr<std::string> out = RenderReport(*store_, Inputs(), format);
    EXPECT_OK(out);
    return out.ok() ? *out : std::string();
  }

  // Keep writes the rendered report into the build dir as a test artifact.
  static void Keep(const std::string& text, const std::string& name) {
    std::string path = std::string(UNDERSTUDY_REPORT_ARTIFACT_DIR) + "/" + name;
    std::ofstream(path, std::ios::binary) << text;
    std::cout << "report artifact: " << path << std::endl;
  }

  const v1::Decision* Find(v1::DecisionAction action, const std::string& actor) const {
    for (const auto& d : decisions_) {
      if (d.action() == action && d.actor() == actor) return &d;
    }
    return nullptr;
  }

  TempDir dir_;
  ManualClock clock_{absl::FromUnixSeconds(1700000000)};
  rollout::RolloutConfig rollout_config_ = testing::HistoryConfig();
  rollout::Router router_{"report-test"};
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<StoreLog> log_;
  std::unique_ptr<rollout::Controller> controller_;
  testing::History history_;
  std::vector<v1::Decision> decisions_;
};

// The history must hold what the report is meant to explain.
TEST_F(ReportTest, HistoryHasJudgeAndOperatorDecisions) {
  Fill();
  ASSERT_NE(Find(v1::ACTION_PROMOTE, "judge"), nullptr);
  ASSERT_NE(Find(v1::ACTION_ROLLBACK, "judge"), nullptr);
  ASSERT_NE(Find(v1::ACTION_ROLLBACK, "alice"), nullptr);
  EXPECT_EQ(controller_->State().phase(), v1::PHASE_ROLLED_BACK);
}

// Markdown: title, outcome, config, eval, shadow verdict counts, every
// decision's reason and the failing gate's values, risks and revisit.
TEST_F(ReportTest, MarkdownCarriesTheKeyFacts) {
  Fill();
  std::string md = Render("md");
  Keep(md, "report.md");
  EXPECT_THAT(md, HasSubstr("# Model migration: gpt-4o → gpt-4o-mini"));
  EXPECT_THAT(md, HasSubstr("**Outcome: rolled back: all traffic on gpt-4o — rolled back by "
                            "alice: bad answers in #support**"));
  // Config: the stage plan and gate thresholds.
  EXPECT_THAT(md, HasSubstr("| 2 | 10% | 10m | 500 | none |"));
  EXPECT_THAT(md, HasSubstr("tolerates a candidate error rate up to 1.00x production's; "
                            "catches max(1.50x, production + 1.00%)"));
  EXPECT_THAT(md, HasSubstr("stages: [0, 10, 50, 100]"));
  // Eval.
  EXPECT_THAT(md, HasSubstr(absl::StrCat(history_.eval_exchanges, " eval exchanges.")));
  EXPECT_THAT(md, HasSubstr(absl::StrFormat("| candidate | 40 | %d | %.2f%% |",
                                            history_.eval_candidate_errors,
                                            100.0 * history_.eval_candidate_errors / 40)));
  // Shadow verdict counts.
  int64_t total = 0;
  for (int64_t n : history_.shadow_verdicts) total += n;
  EXPECT_THAT(md, HasSubstr(absl::StrCat("Comparisons: ", total)));
  EXPECT_THAT(md, HasSubstr(absl::StrCat("| major_diff | ", history_.shadow_verdicts[3], " |")));
  EXPECT_THAT(md, HasSubstr(absl::StrCat("| equivalent | ", history_.shadow_verdicts[1], " |")));
  EXPECT_THAT(md, HasSubstr("| lcs_f1 |"));
  // Every decision, in order, with its reason.
  size_t at = 0;
  for (const auto& d : decisions_) {
    std::string reason =
        absl::StrReplaceAll(d.reason(), {{"|", "\\|"}, {"<", "&lt;"}, {">", "&gt;"}});
    size_t pos = md.find(reason, at);
    ASSERT_NE(pos, std::string::npos) << "decision reason missing or out of order: " << d.reason();
    at = pos;
  }
  // The judge's rollback with the failing gate's evidence, clusters included.
  const v1::Decision* rollback = Find(v1::ACTION_ROLLBACK, "judge");
  ASSERT_NE(rollback, nullptr);
  const v1::GateEvaluation* gate = nullptr;
  for (const auto& g : rollback->gates()) {
    if (g.outcome() == v1::GATE_FAIL) gate = &g;
  }
  ASSERT_NE(gate, nullptr);
  EXPECT_THAT(md, HasSubstr(absl::StrFormat(
                      "| %s | fail | %.4g | %.4g | %.4g | %s | %.4g | %.4g |", gate->gate(),
                      gate->production_value(), gate->candidate_value(), gate->threshold(),
                      gate->statistic(), gate->statistic_value(), gate->bound())));
  EXPECT_THAT(md, HasSubstr(absl::StrCat(gate->production_clusters(), " / ",
                                         gate->candidate_clusters(), " | ")));
  EXPECT_THAT(md, HasSubstr("10% → 0%"));
  // The worst diff is first, and its finding is inert.
  EXPECT_THAT(md, HasSubstr("#### 1. req-script"));
  EXPECT_THAT(md, HasSubstr("&lt;script&gt;alert('pwned')&lt;/script&gt;"));
  EXPECT_THAT(md, Not(HasSubstr("<script>")));
  EXPECT_THAT(md, HasSubstr("\"no\" \\| &lt;b&gt;bold&lt;/b&gt;"));
  // Health: the windows restarted empty after the rollback, so the last
  // snapshot with traffic is shown too.
  EXPECT_THAT(md, HasSubstr("(rolled_back): no traffic counted since the "
                            "current stage started."));
  EXPECT_THAT(md, HasSubstr("The last snapshot with traffic, at "));
  // Risks and revisit.
  EXPECT_THAT(md, HasSubstr("## Current risks"));
  EXPECT_THAT(md,
              Not(HasSubstr("time(s) before")));  // rolled back now: not a risk
  EXPECT_THAT(
      md, HasSubstr(absl::StrCat("Revisit by ",
                                 absl::FormatTime("%Y-%m-%d", clock_.Now() + absl::Hours(24 * 30),
                                                  absl::UTCTimeZone()))));
  EXPECT_THAT(md, HasSubstr("- [ ] Prices: compare the provider's current prices for gpt-4o and "
                            "gpt-4o-mini"));
  EXPECT_THAT(md, HasSubstr("- [ ] Alias: gpt-4o-mini has no dated snapshot"));
  EXPECT_THAT(md, HasSubstr("- [ ] Fix the cause of the rollback"));
}

// JSON: one object with the same data; protos use the protobuf JSON mapping.
TEST_F(ReportTest, JsonParsesAndHasTheFields) {
  Fill();
  std::string text = Render("json");
  Keep(text, "report.json");
  nlohmann::json j = nlohmann::json::parse(text, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << text.substr(0, 500);
  EXPECT_EQ(j["report_version"], 1);
  EXPECT_EQ(j["production_model"], "gpt-4o");
  EXPECT_EQ(j["candidate_model"], "gpt-4o-mini");
  EXPECT_EQ(j["outcome"]["status"], "rolled_back");
  EXPECT_EQ(j["state"]["phase"], "PHASE_ROLLED_BACK");
  EXPECT_EQ(j["state"]["rollbacks"], 2);
  ASSERT_EQ(j["config"]["stages"].size(), 4u);
  EXPECT_EQ(j["config"]["stages"][1]["percent"], 10);
  EXPECT_EQ(j["config"]["stages"][1]["min_bake_seconds"], 600);
  EXPECT_EQ(j["config"]["gates"]["error_rate"]["max_ratio"], 1.5);
  EXPECT_EQ(j["config"]["plan"], "0,10,50,100");

  ASSERT_TRUE(j["eval"].is_object());
  EXPECT_EQ(j["eval"]["exchanges"], history_.eval_exchanges);
  EXPECT_EQ(j["eval"]["arms"]["candidate"]["errors"], history_.eval_candidate_errors);
  EXPECT_EQ(j["eval"]["arms"]["production"]["errors"], 0);
  EXPECT_GT(j["eval"]["arms"]["production"]["latency_p95_ms"].get<double>(),
            j["eval"]["arms"]["production"]["latency_p50_ms"].get<double>());
  EXPECT_NEAR(j["eval"]["arms"]["candidate"]["cost_per_request"].get<double>(), 0.001, 1e-12);
  EXPECT_EQ(j["eval"]["comparisons"]["verdicts"]["candidate_error"], 2);
  EXPECT_EQ(j["eval"]["comparisons"]["verdicts"]["major_diff"], 4);
  // 34 equivalent, 4 major among the judged ones.
  EXPECT_NEAR(j["eval"]["comparisons"]["agreement_rate"].get<double>(), 34.0 / 38, 1e-12);

  const auto& shadow = j["shadow"];
  EXPECT_EQ(shadow["verdicts"]["major_diff"], history_.shadow_verdicts[3]);
  EXPECT_EQ(shadow["verdicts"]["minor_diff"], history_.shadow_verdicts[2]);
  EXPECT_EQ(shadow["verdicts"]["equivalent"], history_.shadow_verdicts[1]);
  EXPECT_EQ(shadow["verdicts"]["candidate_error"], history_.shadow_verdicts[4]);
  double judged =
      history_.shadow_verdicts[1] + history_.shadow_verdicts[2] + history_.shadow_verdicts[3];
  EXPECT_NEAR(shadow["agreement_rate"].get<double>(), 1 - history_.shadow_verdicts[3] / judged,
              1e-12);
  EXPECT_GT(shadow["noise_exchanges"].get<int64_t>(), 0);
  ASSERT_FALSE(shadow["top_major_diffs"].empty());
  const auto& top = shadow["top_major_diffs"][0];
  EXPECT_EQ(top["request_id"], "req-script");
  EXPECT_EQ(top["verdict"], "VERDICT_MAJOR_DIFF");
  EXPECT_EQ(top["findings"][0]["candidate"], testing::kScriptFinding);
  ASSERT_FALSE(shadow["comparators"].empty());
  EXPECT_EQ(shadow["comparators"][0]["name"], "chrf");

  ASSERT_EQ(j["decisions"].size(), decisions_.size());
  for (size_t i = 0; i < decisions_.size(); ++i) {
    EXPECT_EQ(j["decisions"][i]["reason"], decisions_[i].reason());
    EXPECT_EQ(j["decisions"][i]["actor"], decisions_[i].actor());
    EXPECT_EQ(j["decisions"][i]["action"], v1::DecisionAction_Name(decisions_[i].action()));
  }
  bool saw_gate = false;
  for (const auto& d : j["decisions"]) {
    if (d["action"] != "ACTION_ROLLBACK" || d["actor"] != "judge") continue;
    for (const auto& g : d["gates"]) {
      if (g["outcome"] != "GATE_FAIL") continue;
      saw_gate = true;
      EXPECT_GT(g["candidate_value"].get<double>(), g["production_value"].get<double>());
      EXPECT_GE(g["statistic_value"].get<double>(), g["bound"].get<double>());
      EXPECT_TRUE(g["candidate_samples"].is_string());  // int64 per the JSON mapping
      EXPECT_TRUE(g["candidate_clusters"].is_string());
    }
    EXPECT_EQ(d["from"]["weight_basis_points"], 1000);
    EXPECT_EQ(d["to"]["weight_basis_points"], 0);
  }
  EXPECT_TRUE(saw_gate);
  ASSERT_TRUE(j["health"].is_object());
  EXPECT_EQ(j["health"]["state"]["phase"], "PHASE_ROLLED_BACK");
  ASSERT_TRUE(j["health_with_traffic"].is_object());
  EXPECT_GT(std::stoll(j["health_with_traffic"]["production"]["requests"].get<std::string>()), 0);
  EXPECT_TRUE(j["risks"].is_array());
  for (const auto& r : j["risks"]) {
    EXPECT_THAT(r["severity"].get<std::string>(), ::testing::AnyOf("high", "medium", "low"));
    EXPECT_FALSE(r["message"].get<std::string>().empty());
  }
  EXPECT_EQ(j["revisit"]["date"],
            absl::FormatTime("%Y-%m-%d", clock_.Now() + absl::Hours(24 * 30), absl::UTCTimeZone()));
  EXPECT_GE(j["revisit"]["checklist"].size(), 4u);
}

// HTML: one self-contained document, everything from the store escaped.
TEST_F(ReportTest, HtmlIsSelfContainedAndEscaped) {
  Fill();
  std::string html = Render("html");
  Keep(html, "report.html");
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_THAT(html, HasSubstr("<style>"));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, Not(HasSubstr("<link")));
  EXPECT_THAT(html, Not(HasSubstr("src=")));
  EXPECT_THAT(html, Not(HasSubstr("http://")));
  EXPECT_THAT(html, Not(HasSubstr("https://")));
  EXPECT_THAT(html, HasSubstr("&lt;script&gt;alert(&#39;pwned&#39;)&lt;/script&gt;"));
  EXPECT_THAT(html, Not(HasSubstr("<b>bold")));
  EXPECT_THAT(html, HasSubstr("<title>Model migration: gpt-4o → gpt-4o-mini</title>"));
  EXPECT_THAT(html, HasSubstr("<div class=\"outcome rolled_back\">"));
  for (const auto& d : decisions_) EXPECT_THAT(html, HasSubstr(HtmlEscaped(d.reason())));
  EXPECT_THAT(html, HasSubstr("<td class=\"fail\">fail</td>"));
  EXPECT_THAT(html, HasSubstr(absl::StrCat("<td>major_diff</td><td>", history_.shadow_verdicts[3],
                                           "</td>")));
  EXPECT_THAT(html, HasSubstr("<ul class=\"check\">"));
}

// An unknown format is refused before the store is read.
TEST_F(ReportTest, RejectsUnknownFormat) {
  EXPECT_THAT(RenderReport(*store_, Inputs(), "pdf"),
              StatusIs(absl::StatusCode::kInvalidArgument, "md, json or html"));
  ReportInputs in = Inputs();
  in.lookback = absl::ZeroDuration();
  EXPECT_THAT(RenderReport(*store_, in, "md"),
              StatusIs(absl::StatusCode::kInvalidArgument, "lookback"));
  EXPECT_EQ(ReportContentType("json"), "application/json");
  EXPECT_EQ(ReportContentType("pdf"), "");
}

// A fresh store and no saved state: every format renders and says so.
TEST_F(ReportTest, EmptyStoreRendersInEveryFormat) {
  ReportInputs in = Inputs();
  in.state = v1::RolloutState();
  for (const char* f : {"md", "json", "html"}) {
    absl::StatusOr<std::string> out = RenderReport(*store_, in, f);
    ASSERT_OK(out);
    EXPECT_THAT(*out, HasSubstr("not started")) << f;
  }
  std::string md = *RenderReport(*store_, in, "md");
  EXPECT_THAT(md, HasSubstr("No eval exchanges"));
  EXPECT_THAT(md, HasSubstr("No shadow comparisons in the window yet."));
  EXPECT_THAT(md, HasSubstr("No rollout decisions in the window."));
  nlohmann::json j = nlohmann::json::parse(*RenderReport(*store_, in, "json"));
  EXPECT_TRUE(j["eval"].is_null());
  EXPECT_TRUE(j["health"].is_null());
  EXPECT_TRUE(j["decisions"].empty());
  EXPECT_EQ(j["shadow"]["comparisons"], 0);
  EXPECT_TRUE(j["shadow"]["agreement_rate"].is_null());
}

// The judge's holds are not in the decision log; their gates come with the
// health snapshots, and the newest evaluation is the one reported.
TEST_F(ReportTest, GateRisksComeFromTheLatestEvaluationEvenAHold) {
  v1::Decision d;
  d.set_time_unix_micros(absl::ToUnixMicros(clock_.Now()));
  d.set_action(v1::ACTION_SET_WEIGHT);
  d.set_actor("judge");
  auto* far = d.add_gates();
  far->set_gate("error_rate");
  far->set_outcome(v1::GATE_PASS);
  far->set_statistic("sprt_log_lr");
  far->set_statistic_value(0.5);
  far->set_bound(5.0);
  ASSERT_OK(store_->AppendDecision(d));
  std::string md = Render("md");
  EXPECT_THAT(md, Not(HasSubstr("came close to failing")));

  clock_.Advance(absl::Minutes(5));
  v1::HealthSnapshot h = controller_->Health();
  h.set_time_unix_micros(absl::ToUnixMicros(clock_.Now()));
  auto* near = h.add_gates();
  near->set_gate("error_rate");
  near->set_outcome(v1::GATE_INCONCLUSIVE);
  near->set_statistic("sprt_log_lr");
  near->set_statistic_value(4.6);
  near->set_bound(5.0);
  ASSERT_OK(store_->PutHealth(h));
  md = Render("md");
  EXPECT_THAT(md, HasSubstr("Gate error_rate came close to failing"));
  nlohmann::json j = nlohmann::json::parse(Render("json"));
  bool found = false;
  for (const auto& r : j["risks"]) found |= r["kind"] == "gate_near_bound";
  EXPECT_TRUE(found);
}

// A promoted rollout: outcome promoted, revisit 90 days after the promotion.
TEST_F(ReportTest, PromotedRolloutRevisitsAfterNinetyDays) {
  absl::Time promoted_at = clock_.Now();
  ASSERT_OK(controller_->Promote("bob", /*to_full=*/true));
  clock_.Advance(absl::Hours(48));
  nlohmann::json j = nlohmann::json::parse(Render("json"));
  EXPECT_EQ(j["outcome"]["status"], "promoted");
  EXPECT_EQ(j["outcome"]["weight_percent"], 100);
  EXPECT_EQ(j["revisit"]["date"],
            absl::FormatTime("%Y-%m-%d", promoted_at + absl::Hours(24 * 90), absl::UTCTimeZone()));
  EXPECT_THAT(Render("md"), HasSubstr("**Outcome: promoted: 100% of traffic on gpt-4o-mini**"));
}

// A gate whose statistic reached 90% of its bound, and a paused rollout,
// are reported as risks; in progress the revisit date is the bake end.
TEST_F(ReportTest, ReportsGatesNearTheirBoundAndPausedState) {
  v1::Decision d;
  d.set_time_unix_micros(absl::ToUnixMicros(clock_.Now()));
  d.set_action(v1::ACTION_PROMOTE);
  d.set_actor("judge");
  d.set_reason("all gates passed");
  auto* g = d.add_gates();
  g->set_gate("latency_p95");
  g->set_outcome(v1::GATE_INCONCLUSIVE);
  g->set_statistic("sprt_log_lr_fraction_above");
  g->set_statistic_value(4.5);
  g->set_bound(5.0);
  ASSERT_OK(store_->AppendDecision(d));
  ASSERT_OK(controller_->Pause("carol", "holiday freeze"));
  nlohmann::json j = nlohmann::json::parse(Render("json"));
  std::vector<std::string> kinds;
  for (const auto& r : j["risks"]) kinds.push_back(r["kind"]);
  EXPECT_THAT(kinds, ::testing::Contains("gate_near_bound"));
  EXPECT_THAT(kinds, ::testing::Contains("state"));
  EXPECT_THAT(Render("md"), HasSubstr("Gate latency_p95 came close to failing"));
  EXPECT_EQ(j["outcome"]["status"], "paused");
  EXPECT_THAT(j["outcome"]["summary"].get<std::string>(), HasSubstr("holiday freeze"));
}

// Records older than the lookback are left out.
TEST_F(ReportTest, LookbackExcludesOldRecords) {
  ASSERT_OK(store_->PutComparison(
      testing::MakeMajorDiff("old", clock_.Now() - absl::Hours(24 * 40), 0.2, "1", "2")));
  ASSERT_OK(store_->PutComparison(
      testing::MakeMajorDiff("new", clock_.Now() - absl::Hours(1), 0.2, "1", "2")));
  nlohmann::json j = nlohmann::json::parse(Render("json"));
  EXPECT_EQ(j["shadow"]["comparisons"], 1);
  EXPECT_EQ(j["shadow"]["top_major_diffs"][0]["request_id"], "new");
}

// Drift records (docs/drift.md) are not rollout decisions: they get their
// own "Model drift" section with the effect, and a drift event fires a
// revisit trigger that says what to do next.
TEST_F(ReportTest, DriftRecordsGetTheirOwnSectionAndFireARevisitTrigger) {
  v1::Decision baseline;
  baseline.set_time_unix_micros(absl::ToUnixMicros(clock_.Now()));
  baseline.set_action(v1::ACTION_DRIFT_BASELINE);
  baseline.set_actor("drift");
  baseline.mutable_drift_baseline()->set_arm(v1::ARM_CANDIDATE);
  v1::DriftVersionSet* versions = baseline.mutable_drift_baseline()->add_versions();
  versions->set_dimension("system_fingerprint");
  versions->add_values("fp_old");
  ASSERT_OK(store_->AppendDecision(baseline));
  clock_.Advance(absl::Minutes(5));
  v1::Decision drift;
  drift.set_time_unix_micros(absl::ToUnixMicros(clock_.Now()));
  drift.set_action(v1::ACTION_DRIFT);
  drift.set_actor("drift");
  drift.set_reason("candidate behaviour: answer_chars fell");
  v1::DriftEvent* e = drift.mutable_drift_event();
  e->set_arm(v1::ARM_CANDIDATE);
  e->set_kind(v1::DRIFT_BEHAVIOUR);
  e->set_dimension("answer_chars");
  e->set_baseline_value(400);
  e->set_live_value(280);
  e->set_relative_effect(-0.3);
  e->set_effect_lower(-150);
  e->set_effect_upper(-90);
  ASSERT_OK(store_->AppendDecision(drift));

  const std::string md = Render("md");
  EXPECT_THAT(md, HasSubstr("## Model drift"));
  EXPECT_THAT(md, HasSubstr("-30.0%"));
  EXPECT_THAT(md, HasSubstr("fp_old"));
  EXPECT_THAT(md, HasSubstr("Revisit now"));
  EXPECT_THAT(md, HasSubstr("No rollout decisions in the window."));
  nlohmann::json j = nlohmann::json::parse(Render("json"));
  EXPECT_TRUE(j["decisions"].empty());
  ASSERT_EQ(j["drift"]["events"].size(), 1u);
  EXPECT_EQ(j["drift"]["events"][0]["dimension"], "answer_chars");
  EXPECT_EQ(j["drift"]["baselines"].size(), 1u);
  ASSERT_EQ(j["revisit"]["fired"].size(), 1u);
  EXPECT_THAT(j["revisit"]["fired"][0].get<std::string>(), HasSubstr("start a new rollout"));
}

// A configured deprecation date fires a revisit trigger within its notice
// period, and not before.
TEST_F(ReportTest, DeprecationDateFiresWithinItsNotice) {
  ReportInputs in = Inputs();
  in.deprecation_date = clock_.Now() + absl::Hours(24 * 60);
  in.deprecation_notice = absl::Hours(24 * 30);
  nlohmann::json j = nlohmann::json::parse(*RenderReport(*store_, in, "json"));
  EXPECT_TRUE(j["revisit"]["fired"].empty());
  in.deprecation_date = clock_.Now() + absl::Hours(24 * 10);
  j = nlohmann::json::parse(*RenderReport(*store_, in, "json"));
  ASSERT_EQ(j["revisit"]["fired"].size(), 1u);
  EXPECT_THAT(j["revisit"]["fired"][0].get<std::string>(), HasSubstr("in 10 days"));
}

// Scheduled eval runs: each metric's trend across runs, the latest run's
// regression against its baseline run (which metric, by how much) and a
// fired eval_regression trigger; the sidecar's own trigger list wins.
TEST_F(ReportTest, ScheduledEvalsShowTrendAndFlagTheLatestRegression) {
  auto run = [&](double reask, bool regressed) {
    v1::EvalRun r;
    r.set_start_unix_micros(absl::ToUnixMicros(clock_.Now()));
    r.set_dataset("golden.jsonl");
    v1::EvalArmSummary* a = r.add_arms();
    a->set_arm(v1::ARM_CANDIDATE);
    (*a->mutable_metrics())["error_rate"] = 0;
    if (reask >= 0) {
      (*a->mutable_metrics())["reask_agreement"] = reask;
      r.set_baseline_start_unix_micros(absl::ToUnixMicros(clock_.Now() - absl::Hours(6)));
    }
    if (regressed) {
      v1::EvalRegression* g = r.add_regressions();
      g->set_arm(v1::ARM_CANDIDATE);
      g->set_metric("reask_agreement");
      g->set_baseline(1);
      g->set_latest(reask);
      g->set_detail("candidate reask_agreement fell from 1.000 to 0.400");
    }
    clock_.Advance(absl::Hours(6));
    return r;
  };
  ASSERT_OK(store_->PutEvalRun(run(-1, false)));
  ASSERT_OK(store_->PutEvalRun(run(1, false)));
  ASSERT_OK(store_->PutEvalRun(run(0.4, true)));
  const std::string md = Render("md");
  EXPECT_THAT(md, HasSubstr("## Scheduled evals"));
  EXPECT_THAT(md, HasSubstr("3 run(s) of golden.jsonl"));
  EXPECT_THAT(md, HasSubstr("- → 1 → 0.4"));
  EXPECT_THAT(md, HasSubstr("REGRESSION: candidate reask_agreement fell from 1.000 to 0.400"));
  nlohmann::json j = nlohmann::json::parse(Render("json"));
  EXPECT_EQ(j["evals"]["runs"].size(), 3u);
  ASSERT_EQ(j["evals"]["regressions"].size(), 1u);
  EXPECT_EQ(j["evals"]["regressions"][0]["metric"], "reask_agreement");
  ASSERT_EQ(j["revisit"]["triggers"].size(), 1u);
  EXPECT_EQ(j["revisit"]["triggers"][0]["kind"], "eval_regression");
  EXPECT_THAT(j["revisit"]["fired"][0].get<std::string>(), HasSubstr("eval_regression: "));

  ReportInputs in = Inputs();
  v1::RevisitTrigger price;
  price.set_kind("price_change");
  in.revisit_fired = std::vector<v1::RevisitTrigger>{price};
  j = nlohmann::json::parse(*RenderReport(*store_, in, "json"));
  ASSERT_EQ(j["revisit"]["triggers"].size(), 1u);
  EXPECT_EQ(j["revisit"]["triggers"][0]["kind"], "price_change");
}

}  // namespace
}  // namespace understudy::report
