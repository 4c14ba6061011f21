// The scheduled golden-set eval and the revisit triggers end to end
// (docs/drift.md): `understudy serve` runs the eval every second against
// the fake model processes, stores each run, compares it with the baseline
// run (re-ask agreement) and flags the candidate once it answers
// differently; a price table changed across a restart fires the price
// trigger in `understudy status` and /metrics.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/e2e_cluster.h"

namespace understudy::e2e {
namespace {

// Questions from the fake model's corpus, with the corpus answers as
// references where known.
constexpr char kDataset[] =
    R"({"id":"france","request":{"model":"gpt-4o","messages":[{"role":"user","content":"What is the capital of France?"}]}}
{"id":"japan","request":{"model":"gpt-4o","messages":[{"role":"user","content":"What is the capital of Japan?"}]}}
{"id":"everest","request":{"model":"gpt-4o","messages":[{"role":"user","content":"How tall is Mount Everest?"}]}}
)";

class EvalE2eTest : public E2eFixture {
 protected:
  std::string WriteDataset() {
    const std::string path = c_.data_dir() + "-golden.jsonl";
    std::ofstream(path) << kDataset;
    return path;
  }

  std::string EvalYaml(const std::string& dataset) {
    // Latency is left out (a huge threshold): on a shared test machine its
    // change is the machine's, not the model's.
    return absl::StrCat("eval:\n  dataset: ", dataset,
                        "\n  interval: 1s\n  arms: [production, candidate]\n  concurrency: 2\n",
                        "revisit:\n  eval_regression: {latency_min_ms: 1000000}\n");
  }

  json Runs() { return c_.Admin("GET", "/v1/evals?limit=1000").Json().value("runs", json::array()); }

  // WaitForRun polls GET /v1/evals until a stored run satisfies `pred` (the
  // stored run is what the test reads) or 60 s pass; returns it or null.
  template <typename Pred>
  json WaitForRun(Pred pred) {
    const absl::Time deadline = absl::Now() + absl::Seconds(60);
    while (absl::Now() < deadline) {
      for (const json& r : Runs()) {
        if (pred(r)) return r;
      }
      absl::SleepFor(absl::Milliseconds(200));
    }
    return json();
  }

  static int64_t Micros(const json& j, const std::string& key) {
    if (!j.contains(key)) return 0;
    return j[key].is_string() ? std::stoll(j[key].get<std::string>()) : j[key].get<int64_t>();
  }

  static bool HasRegression(const json& run, const std::string& arm, const std::string& metric) {
    for (const json& r : run.value("regressions", json::array())) {
      if (r.value("arm", "") == arm && r.value("metric", "") == metric) return true;
    }
    return false;
  }
};

// Two or more runs against the fakes: the first is the baseline; once the
// candidate refuses everything, a later run flags its re-ask agreement, and
// the report, /metrics and `status` all show it.
TEST_F(EvalE2eTest, ScheduledEvalFlagsACandidateThatAnswersDifferently) {
  ASSERT_OK(c_.StartFakes());
  SidecarKnobs knobs;
  knobs.extra_yaml = EvalYaml(WriteDataset());
  ASSERT_OK(c_.StartSidecar(knobs));

  // The first run: both arms answered every item, no baseline before it.
  json first = WaitForRun([](const json& r) { return !r.value("failed", false); });
  ASSERT_TRUE(first.is_object()) << Runs().dump();
  EXPECT_EQ(Micros(first, "baseline_start_unix_micros"), 0);
  EXPECT_EQ(Micros(first, "items"), 3);
  ASSERT_EQ(first["arms"].size(), 2u);
  EXPECT_EQ(first["arms"][1]["metrics"].value("error_rate", -1.0), 0.0);
  EXPECT_EQ(first["results"][0]["candidate"].value("outcome", ""), "ok");
  EXPECT_FALSE(first["results"][0]["candidate"].value("text", "").empty());  // body_mode full
  const int64_t baseline = Micros(first, "start_unix_micros");

  // A second run with the same answers agrees with the baseline.
  json same = WaitForRun([baseline](const json& r) {
    return Micros(r, "baseline_start_unix_micros") == baseline && !r.value("failed", false);
  });
  ASSERT_TRUE(same.is_object()) << Runs().dump();
  EXPECT_EQ(same["arms"][1]["metrics"].value("reask_agreement", -1.0), 1.0);
  EXPECT_EQ(same["regressions"].size(), 0u) << same.dump();

  // The candidate now refuses: a run that starts after that is flagged.
  const int64_t changed = absl::ToUnixMicros(absl::Now());
  ASSERT_EQ(c_.CandidateControl(R"({"refusal_rate":1})").status, 200);
  json flagged = WaitForRun([changed](const json& r) {
    return Micros(r, "start_unix_micros") > changed && !r.value("failed", false);
  });
  ASSERT_TRUE(flagged.is_object()) << Runs().dump();
  EXPECT_EQ(Micros(flagged, "baseline_start_unix_micros"), baseline);
  EXPECT_EQ(flagged["arms"][1]["metrics"].value("reask_agreement", -1.0), 0.0);
  EXPECT_EQ(flagged["arms"][0]["metrics"].value("reask_agreement", -1.0), 1.0);  // production
  EXPECT_TRUE(HasRegression(flagged, "ARM_CANDIDATE", "reask_agreement")) << flagged.dump();
  EXPECT_FALSE(HasRegression(flagged, "ARM_PRODUCTION", "reask_agreement")) << flagged.dump();
  EXPECT_EQ(flagged["results"][0]["candidate"].value("reask", ""), "differ");

  // The report: every run, each metric's trend, the latest run's regression
  // and a fired revisit trigger.
  const json report = c_.Admin("GET", "/v1/report?format=json").Json();
  ASSERT_TRUE(report.is_object());
  EXPECT_GE(report["evals"]["runs"].size(), 3u);
  bool reask_trend = false;
  for (const json& t : report["evals"]["trend"]) {
    if (t.value("arm", "") == "candidate" && t.value("metric", "") == "reask_agreement") {
      reask_trend = t["values"].size() == report["evals"]["runs"].size();
    }
  }
  EXPECT_TRUE(reask_trend) << report["evals"].dump();
  bool report_flags = false;
  for (const json& r : report["evals"]["regressions"]) {
    report_flags |= r.value("metric", "") == "reask_agreement";
  }
  EXPECT_TRUE(report_flags) << report["evals"].dump();
  bool fired = false;
  for (const json& t : report["revisit"]["triggers"]) fired |= t.value("kind", "") == "eval_regression";
  EXPECT_TRUE(fired) << report["revisit"].dump();
  const std::string md = c_.Admin("GET", "/v1/report?format=md").body;
  EXPECT_NE(md.find("## Scheduled evals"), std::string::npos);
  EXPECT_NE(md.find("REGRESSION: candidate reask_agreement fell from 1.000 to 0.000"),
            std::string::npos)
      << md;

  const std::string metrics = c_.Admin("GET", "/metrics").body;
  EXPECT_GE(MetricValue(metrics, "understudy_revisit_trigger", "trigger=\"eval_regression\""), 1)
      << metrics;
  EXPECT_GE(MetricValue(metrics, "understudy_eval_runs_total", "result=\"ok\""), 3);
  absl::StatusOr<testing::CommandResult> status = c_.Cli({"status"});
  ASSERT_OK(status);
  EXPECT_NE(status->out.find("revisit:       eval_regression"), std::string::npos) << status->out;
}

// The price table changes across a restart (a config change in Kubernetes
// is a restart): the price trigger fires, visible in status and /metrics.
TEST_F(EvalE2eTest, PriceChangeAcrossRestartFiresTheRevisitTrigger) {
  ASSERT_OK(c_.StartFakes());
  SidecarKnobs knobs;
  knobs.extra_yaml = "compare:\n  prices: {gpt-4o: {input: 2.5, output: 10}}\n";
  ASSERT_OK(c_.StartSidecar(knobs));
  std::string metrics = c_.Admin("GET", "/metrics").body;
  EXPECT_EQ(MetricValue(metrics, "understudy_revisit_trigger", "trigger=\"price_change\""), 0)
      << metrics;
  ASSERT_TRUE(c_.StopSidecar().has_value());

  // The same table again: nothing fires.
  ASSERT_OK(c_.StartSidecar(knobs));
  EXPECT_EQ(c_.Rollout()["revisit"].size(), 0u);
  ASSERT_TRUE(c_.StopSidecar().has_value());

  knobs.extra_yaml = "compare:\n  prices: {gpt-4o: {input: 5, output: 10}}\n";
  ASSERT_OK(c_.StartSidecar(knobs));
  metrics = c_.Admin("GET", "/metrics").body;
  EXPECT_EQ(MetricValue(metrics, "understudy_revisit_trigger", "trigger=\"price_change\""), 1)
      << metrics;
  absl::StatusOr<testing::CommandResult> status = c_.Cli({"status"});
  ASSERT_OK(status);
  EXPECT_NE(status->out.find("revisit:       price_change: compare.prices changed"),
            std::string::npos)
      << status->out;
  EXPECT_NE(status->out.find("re-run the cost comparison"), std::string::npos) << status->out;

  // A rollout decision takes the new table as the reference: it stops firing.
  ASSERT_EQ(c_.Admin("POST", "/v1/rollout/promote", R"({"actor":"test"})").status, 200);
  metrics = c_.Admin("GET", "/metrics").body;
  EXPECT_EQ(MetricValue(metrics, "understudy_revisit_trigger", "trigger=\"price_change\""), 0)
      << metrics;
}

}  // namespace
}  // namespace understudy::e2e
