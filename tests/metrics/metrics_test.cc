// tests/metrics/metrics_test.cc
// Parses Metrics::Serialize()'s text exposition and checks names, labels,
// values, counter monotonicity, histogram buckets, one-hot gauges and (when
// Debian's promtool is installed) that Prometheus' own linter accepts it.
#include "metrics/metrics.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace understudy::metrics {
namespace {

namespace v1 = understudy::v1;
using rollout::OutcomeClass;
using ::testing::DoubleNear;
using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::Not;
using ::testing::Optional;

using LabelSet = std::map<std::string, std::string>;

struct Sample {
  std::string name;
  LabelSet labels;
  double value = 0;
};

// Exposition is a parsed text exposition (format 0.0.4). Parse errors fail
// the current test.
class Exposition {
 public:
  explicit Exposition(const std::string& text) {
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty()) continue;
      if (line.rfind("# TYPE ", 0) == 0) {
        std::istringstream f(line.substr(7));
        std::string name, type;
        f >> name >> type;
        types_[name] = type;
        continue;
      }
      if (line[0] == '#') continue;
      ParseSample(line);
    }
  }

  // Value of the series with exactly these labels, if present.
  std::optional<double> Get(const std::string& name, const LabelSet& labels = {}) const {
    for (const Sample& s : samples_) {
      if (s.name == name && s.labels == labels) return s.value;
    }
    return std::nullopt;
  }

  // Every series of `name` whose labels include `subset`.
  std::vector<Sample> All(const std::string& name, const LabelSet& subset = {}) const {
    std::vector<Sample> out;
    for (const Sample& s : samples_) {
      if (s.name != name) continue;
      bool match = true;
      for (const auto& [k, v] : subset) {
        auto it = s.labels.find(k);
        match = match && it != s.labels.end() && it->second == v;
      }
      if (match) out.push_back(s);
    }
    return out;
  }

  double Sum(const std::string& name, const LabelSet& subset = {}) const {
    double total = 0;
    for (const Sample& s : All(name, subset)) total += s.value;
    return total;
  }

  std::optional<std::string> Type(const std::string& name) const {
    auto it = types_.find(name);
    if (it == types_.end()) return std::nullopt;
    return it->second;
  }
  const std::map<std::string, std::string>& types() const { return types_; }
  const std::vector<Sample>& samples() const { return samples_; }

 private:
  void ParseSample(const std::string& line) {
    Sample s;
    size_t i = 0;
    while (i < line.size() && line[i] != '{' && line[i] != ' ') s.name += line[i++];
    if (i < line.size() && line[i] == '{') {
      ++i;
      while (i < line.size() && line[i] != '}') {
        std::string key;
        while (i < line.size() && line[i] != '=') key += line[i++];
        ASSERT_TRUE(i + 1 < line.size() && line[i + 1] == '"') << "bad label in: " << line;
        i += 2;
        std::string value;
        while (i < line.size() && line[i] != '"') {
          if (line[i] == '\\' && i + 1 < line.size()) {
            ++i;
            value += line[i] == 'n' ? '\n' : line[i];
          } else {
            value += line[i];
          }
          ++i;
        }
        ASSERT_LT(i, line.size()) << "unterminated label value in: " << line;
        ++i;  // closing quote
        if (i < line.size() && line[i] == ',') ++i;
        s.labels[key] = value;
      }
      ASSERT_LT(i, line.size()) << "unterminated labels in: " << line;
      ++i;  // '}'
    }
    ASSERT_TRUE(i < line.size() && line[i] == ' ') << "no value in: " << line;
    std::string value = line.substr(i + 1);
    value = value.substr(0, value.find(' '));  // drop a timestamp
    if (value == "+Inf") {
      s.value = HUGE_VAL;
    } else if (value == "-Inf") {
      s.value = -HUGE_VAL;
    } else {
      char* end = nullptr;
      s.value = std::strtod(value.c_str(), &end);
      ASSERT_EQ(*end, '\0') << "bad value in: " << line;
    }
    samples_.push_back(std::move(s));
  }

  std::map<std::string, std::string> types_;
  std::vector<Sample> samples_;
};

v1::GateEvaluation Gate(const std::string& name, v1::GateOutcome outcome, double prod, double cand,
                        const std::string& statistic = "sprt_log_lr") {
  v1::GateEvaluation g;
  g.set_gate(name);
  g.set_outcome(outcome);
  g.set_production_value(prod);
  g.set_candidate_value(cand);
  g.set_threshold(cand * 2);
  g.set_statistic(statistic);
  g.set_statistic_value(-1.5);
  g.set_bound(4.6);
  g.set_production_samples(120);
  g.set_candidate_samples(30);
  return g;
}

class MetricsTest : public ::testing::Test {
 protected:
  Exposition Scrape() const { return Exposition(metrics_.Serialize()); }

  // Fills every family so lint and naming checks see all of them.
  void PopulateEverything() {
    metrics_.ObserveExchange(v1::ARM_PRODUCTION, v1::SOURCE_LIVE, OutcomeClass::kOk,
                             absl::Milliseconds(900), absl::Milliseconds(150), 40, 200, 0.002);
    metrics_.ObserveExchange(v1::ARM_CANDIDATE, v1::SOURCE_SHADOW, OutcomeClass::kServerError,
                             absl::Milliseconds(100), std::nullopt, 40, 0, std::nullopt);
    metrics_.ObserveExchange(v1::ARM_CANDIDATE, v1::SOURCE_LIVE, OutcomeClass::kThrottled,
                             absl::Milliseconds(20), std::nullopt, 0, 0, std::nullopt);
    ShadowCounters shadow;
    shadow.sent = 4;
    shadow.completed = 3;
    shadow.failed = 1;
    shadow.skipped_by_reason = {{"sample", 7}};
    shadow.budget_used = 1.25;
    shadow.budget_limit = 10;
    metrics_.SetShadowStats(shadow);
    v1::Comparison c;
    c.set_verdict(v1::VERDICT_MINOR_DIFF);
    v1::ComparatorScore* score = c.add_scores();
    score->set_name("lcs_f1");
    score->set_score(0.8);
    score->set_applicable(true);
    metrics_.ObserveComparison(c);
    metrics_.SetNoiseLevel("lcs_f1", 0.05);
    metrics_.SetRollout(CanaryState(), HealthWithData(), absl::FromUnixSeconds(1'700'000'600));
    v1::Decision d;
    d.set_action(v1::ACTION_HOLD);
    d.set_actor("judge");
    *d.add_gates() = Gate("error_rate", v1::GATE_INCONCLUSIVE, 0.01, 0.012);
    metrics_.ObserveDecision(d);
    ExtProcCounters stats;
    stats.streams_started = 3;
    stats.messages_received = 9;
    metrics_.SyncExtProc(stats);
    metrics_.ObserveStreamDuration(absl::Milliseconds(1500));
    metrics_.SetStoreStats(10, 0);
    metrics_.SetTracingStats({5, 1, 2, 0, 3});
  }

  static v1::RolloutState CanaryState() {
    v1::RolloutState s;
    s.set_phase(v1::PHASE_CANARY);
    s.set_stage_index(2);
    s.set_weight_basis_points(500);
    s.set_stage_started_unix_micros(int64_t{1'700'000'000} * 1'000'000);
    s.set_rollbacks(1);
    s.set_version(7);
    return s;
  }

  static v1::HealthSnapshot HealthWithData() {
    v1::HealthSnapshot h;
    v1::ArmHealth* p = h.mutable_production();
    p->set_requests(200);
    p->set_errors(2);
    p->set_latency_p95_ms(1200);
    p->set_ttft_p95_ms(300);
    v1::ArmHealth* c = h.mutable_candidate();
    c->set_requests(10);
    c->set_errors(1);
    c->set_latency_p95_ms(1500);
    c->set_feedback_count(4);
    c->set_satisfaction_mean(0.75);
    c->set_cost_samples(10);
    c->set_cost_per_request(0.003);
    v1::ArmHealth* s = h.mutable_shadow();
    s->set_requests(50);
    s->set_comparisons(50);
    s->set_agreement_rate(0.94);
    h.mutable_production_recent()->set_requests(20);
    h.mutable_production_recent()->set_errors(1);
    return h;
  }

  Metrics metrics_;
};

// Before anything happens the fixed series exist at 0 and no per-arm
// series are invented.
TEST_F(MetricsTest, FreshMetricsExposeFixedSeriesAtZero) {
  Exposition e = Scrape();
  for (const char* phase : {"shadow", "canary", "paused", "promoted", "rolled_back"}) {
    EXPECT_THAT(e.Get("understudy_rollout_phase", {{"phase", phase}}), Optional(0.0)) << phase;
  }
  EXPECT_THAT(e.Get("understudy_comparisons_total", {{"verdict", "major_diff"}}), Optional(0.0));
  EXPECT_THAT(e.Get("understudy_shadow_requests_total", {{"outcome", "dropped"}}), Optional(0.0));
  EXPECT_THAT(e.Get("understudy_extproc_streams_total"), Optional(0.0));
  EXPECT_THAT(e.Get("understudy_exchange_queue_drops_total"), Optional(0.0));
  EXPECT_THAT(e.All("understudy_requests_total"), IsEmpty());
  EXPECT_EQ(e.Type("understudy_extproc_stream_duration_seconds"), "histogram");
  EXPECT_EQ(e.Type("understudy_rollout_weight_ratio"), "gauge");
}

// Prometheus conventions: the understudy_ prefix everywhere, _total on
// counters only, no non-base time units.
TEST_F(MetricsTest, NamesFollowPrometheusConventions) {
  PopulateEverything();
  Exposition e = Scrape();
  ASSERT_GT(e.types().size(), 40u);
  for (const auto& [name, type] : e.types()) {
    EXPECT_EQ(name.rfind("understudy_", 0), 0u) << name;
    bool total = name.size() > 6 && name.compare(name.size() - 6, 6, "_total") == 0;
    EXPECT_EQ(total, type == "counter") << name << " is a " << type;
    EXPECT_EQ(name.find("millis"), std::string::npos) << name;
    EXPECT_EQ(name.find("_ms"), std::string::npos) << name;
  }
  for (const Sample& s : e.samples()) {
    for (const auto& [key, value] : s.labels) {
      EXPECT_NE(key, "request_id") << s.name;
      EXPECT_NE(key, "model") << s.name;
    }
  }
}

// One exchange per arm/source/class lands in the right counters; 429 is a
// rejection, not an error; tokens and cost add up.
TEST_F(MetricsTest, ObserveExchangeCountsRequestsErrorsTokensAndCost) {
  metrics_.ObserveExchange(v1::ARM_CANDIDATE, v1::SOURCE_LIVE, OutcomeClass::kOk, absl::Seconds(1),
                           absl::Milliseconds(200), 100, 50, 0.01);
  metrics_.ObserveExchange(v1::ARM_CANDIDATE, "live", OutcomeClass::kServerError, absl::Seconds(2),
                           std::nullopt, 10, 0, 0.001);
  metrics_.ObserveExchange(v1::ARM_CANDIDATE, "live", OutcomeClass::kTimeout, std::nullopt,
                           std::nullopt, 0, 0, std::nullopt);
  metrics_.ObserveExchange(v1::ARM_PRODUCTION, v1::SOURCE_LIVE, OutcomeClass::kThrottled,
                           absl::Milliseconds(30), std::nullopt, -5, -7, -1.0);
  metrics_.ObserveExchange(v1::ARM_CANDIDATE, v1::SOURCE_SHADOW, OutcomeClass::kOk,
                           absl::Seconds(1), absl::Milliseconds(100), 100, 60, 0.02);
  metrics_.ObserveExchange(v1::ARM_PRODUCTION, "bogus", OutcomeClass::kOk, std::nullopt,
                           std::nullopt, 0, 0, std::nullopt);

  Exposition e = Scrape();
  const LabelSet cand_live = {{"arm", "candidate"}, {"source", "live"}};
  EXPECT_THAT(e.Get("understudy_requests_total", cand_live), Optional(3.0));
  EXPECT_THAT(e.Get("understudy_requests_total", {{"arm", "candidate"}, {"source", "shadow"}}),
              Optional(1.0));
  EXPECT_THAT(e.Get("understudy_requests_total", {{"arm", "production"}, {"source", "unknown"}}),
              Optional(1.0));
  EXPECT_THAT(e.Get("understudy_errors_total",
                    {{"arm", "candidate"}, {"source", "live"}, {"class", "server_error"}}),
              Optional(1.0));
  EXPECT_THAT(e.Get("understudy_errors_total",
                    {{"arm", "candidate"}, {"source", "live"}, {"class", "timeout"}}),
              Optional(1.0));
  EXPECT_EQ(e.Sum("understudy_errors_total"), 2.0);
  EXPECT_THAT(e.All("understudy_errors_total", {{"arm", "production"}}), IsEmpty());
  EXPECT_THAT(e.Get("understudy_rejections_total",
                    {{"arm", "production"}, {"source", "live"}, {"class", "throttled"}}),
              Optional(1.0));
  EXPECT_THAT(e.Get("understudy_tokens_total",
                    {{"arm", "candidate"}, {"source", "live"}, {"direction", "input"}}),
              Optional(110.0));
  EXPECT_THAT(e.Get("understudy_tokens_total",
                    {{"arm", "candidate"}, {"source", "live"}, {"direction", "output"}}),
              Optional(50.0));
  // Negative tokens and cost are not counted.
  EXPECT_EQ(e.Sum("understudy_tokens_total", {{"arm", "production"}}), 0.0);
  EXPECT_THAT(e.Get("understudy_cost_total", cand_live), Optional(DoubleNear(0.011, 1e-12)));
  EXPECT_THAT(e.Get("understudy_cost_total", {{"arm", "production"}, {"source", "live"}}),
              Optional(0.0));
  // Only exchanges with a TTFT are observed in the TTFT histogram.
  EXPECT_THAT(e.Get("understudy_ttft_seconds_count", cand_live), Optional(1.0));
  EXPECT_THAT(e.Get("understudy_request_duration_seconds_count", cand_live), Optional(2.0));
}

// Latencies fall into the documented LLM buckets (cumulative counts).
TEST_F(MetricsTest, RequestDurationHistogramBucketsAreCumulative) {
  for (double seconds : {0.03, 0.3, 2.0, 2.5, 200.0}) {
    metrics_.ObserveExchange(v1::ARM_PRODUCTION, v1::SOURCE_LIVE, OutcomeClass::kOk,
                             absl::Seconds(seconds), std::nullopt, 0, 0, std::nullopt);
  }
  Exposition e = Scrape();
  auto bucket = [&](const std::string& le) {
    return e.Get("understudy_request_duration_seconds_bucket",
                 {{"arm", "production"}, {"source", "live"}, {"le", le}});
  };
  EXPECT_THAT(bucket("0.05"), Optional(1.0));
  EXPECT_THAT(bucket("0.5"), Optional(2.0));
  EXPECT_THAT(bucket("2"), Optional(3.0));
  EXPECT_THAT(bucket("3"), Optional(4.0));
  EXPECT_THAT(bucket("120"), Optional(4.0));
  EXPECT_THAT(bucket("+Inf"), Optional(5.0));
  const LabelSet labels = {{"arm", "production"}, {"source", "live"}};
  EXPECT_THAT(e.Get("understudy_request_duration_seconds_count", labels), Optional(5.0));
  EXPECT_THAT(e.Get("understudy_request_duration_seconds_sum", labels),
              Optional(DoubleNear(204.83, 1e-9)));
  std::vector<Sample> buckets =
      e.All("understudy_request_duration_seconds_bucket", {{"arm", "production"}});
  ASSERT_EQ(buckets.size(), 18u);  // 0.05 .. 120 and +Inf
}

// ext_proc counters follow the service's absolute values by delta and
// never go down, even when the source restarts from zero.
TEST_F(MetricsTest, SyncExtProcIsMonotonicAcrossSourceResets) {
  ExtProcCounters stats;
  stats.streams_started = 5;
  stats.messages_received = 20;
  stats.exchanges_dropped = 1;
  stats.spurious_messages = 2;
  stats.route_candidate = 4;
  stats.streams_active = 3;
  metrics_.SyncExtProc(stats);
  metrics_.SyncExtProc(stats);  // no change → no increase
  Exposition first = Scrape();
  EXPECT_THAT(first.Get("understudy_extproc_streams_total"), Optional(5.0));
  EXPECT_THAT(first.Get("understudy_extproc_messages_total"), Optional(20.0));
  EXPECT_THAT(first.Get("understudy_exchange_queue_drops_total"), Optional(1.0));
  EXPECT_THAT(first.Get("understudy_extproc_spurious_messages_total"), Optional(2.0));
  EXPECT_THAT(first.Get("understudy_extproc_routes_total", {{"arm", "candidate"}}), Optional(4.0));
  EXPECT_THAT(first.Get("understudy_extproc_streams_active"), Optional(3.0));

  stats.streams_started += 2;
  stats.streams_active -= 3;
  metrics_.SyncExtProc(stats);
  EXPECT_THAT(Scrape().Get("understudy_extproc_streams_total"), Optional(7.0));

  // A fresh stats object (the service restarted): 1 new stream is counted
  // on top, the counter does not fall back to 1.
  stats = ExtProcCounters{};
  stats.streams_started = 1;
  metrics_.SyncExtProc(stats);
  Exposition after = Scrape();
  EXPECT_THAT(after.Get("understudy_extproc_streams_total"), Optional(8.0));
  EXPECT_THAT(after.Get("understudy_extproc_messages_total"), Optional(20.0));
  EXPECT_THAT(after.Get("understudy_extproc_streams_active"), Optional(0.0));

  metrics_.ObserveStreamDuration(absl::Milliseconds(40));
  metrics_.ObserveStreamDuration(absl::Seconds(400));
  metrics_.ObserveStreamDuration(absl::Seconds(-1));
  Exposition streams = Scrape();
  EXPECT_THAT(streams.Get("understudy_extproc_stream_duration_seconds_count"), Optional(2.0));
  EXPECT_THAT(streams.Get("understudy_extproc_stream_duration_seconds_bucket", {{"le", "0.05"}}),
              Optional(1.0));
  EXPECT_THAT(streams.Get("understudy_extproc_stream_duration_seconds_bucket", {{"le", "300"}}),
              Optional(1.0));
}

// Shadow counters are synced by delta; skip reasons are labels; the budget
// is a pair of gauges; "budget" skips are not double counted.
TEST_F(MetricsTest, SetShadowStatsSyncsCountersAndBudget) {
  ShadowCounters c;
  c.sent = 10;
  c.completed = 8;
  c.failed = 2;
  c.timed_out = 1;
  c.dropped = 3;
  c.skipped_by_reason = {{"sample", 40}, {"path", 2}, {"budget", 5}};
  c.over_budget = 5;
  c.budget_used = 2.5;
  c.budget_limit = 10;
  c.in_flight = 2;
  metrics_.SetShadowStats(c);
  Exposition e = Scrape();
  EXPECT_THAT(e.Get("understudy_shadow_requests_total", {{"outcome", "sent"}}), Optional(10.0));
  EXPECT_THAT(e.Get("understudy_shadow_requests_total", {{"outcome", "timed_out"}}), Optional(1.0));
  EXPECT_THAT(e.Get("understudy_shadow_requests_total", {{"outcome", "dropped"}}), Optional(3.0));
  EXPECT_THAT(e.Get("understudy_shadow_skipped_total", {{"reason", "sample"}}), Optional(40.0));
  EXPECT_THAT(e.Get("understudy_shadow_skipped_total", {{"reason", "budget"}}), Optional(5.0));
  EXPECT_THAT(e.Get("understudy_shadow_budget_used"), Optional(2.5));
  EXPECT_THAT(e.Get("understudy_shadow_budget_limit"), Optional(10.0));
  EXPECT_THAT(e.Get("understudy_shadow_in_flight"), Optional(2.0));

  // Later: more sent, budget spend rolls out of the hour (gauge goes down),
  // and the client restarted (completed went back to 1): counters only rise.
  c.sent = 25;
  c.completed = 1;
  c.skipped_by_reason["sample"] = 41;
  c.over_budget = 9;
  c.budget_used = 0.5;
  metrics_.SetShadowStats(c);
  Exposition later = Scrape();
  EXPECT_THAT(later.Get("understudy_shadow_requests_total", {{"outcome", "sent"}}), Optional(25.0));
  EXPECT_THAT(later.Get("understudy_shadow_requests_total", {{"outcome", "completed"}}),
              Optional(9.0));
  EXPECT_THAT(later.Get("understudy_shadow_skipped_total", {{"reason", "sample"}}), Optional(41.0));
  EXPECT_THAT(later.Get("understudy_shadow_skipped_total", {{"reason", "budget"}}), Optional(9.0));
  EXPECT_THAT(later.Get("understudy_shadow_budget_used"), Optional(0.5));
}

// Every revisit trigger kind is a series (0 until it fires); an eval run
// publishes its metrics, and its regressions reset with the next run.
TEST_F(MetricsTest, RevisitTriggersAndEvalRunsArePublished) {
  v1::RevisitTrigger price;
  price.set_kind("price_change");
  metrics_.SetRevisitTriggers({price});
  Exposition e = Scrape();
  EXPECT_THAT(e.Get("understudy_revisit_trigger", {{"trigger", "price_change"}}), Optional(1.0));
  EXPECT_THAT(e.Get("understudy_revisit_trigger", {{"trigger", "volume_growth"}}), Optional(0.0));
  metrics_.SetRevisitTriggers({});
  EXPECT_THAT(Scrape().Get("understudy_revisit_trigger", {{"trigger", "price_change"}}),
              Optional(0.0));

  v1::EvalRun run;
  run.set_start_unix_micros(1'800'000'000'000'000);
  v1::EvalArmSummary* arm = run.add_arms();
  arm->set_arm(v1::ARM_CANDIDATE);
  (*arm->mutable_metrics())["reask_agreement"] = 0.25;
  (*run.mutable_metrics())["agreement_rate"] = 0.5;
  v1::EvalRegression* r = run.add_regressions();
  r->set_arm(v1::ARM_CANDIDATE);
  r->set_metric("reask_agreement");
  metrics_.ObserveEvalRun(run);
  e = Scrape();
  EXPECT_THAT(e.Get("understudy_eval_runs_total", {{"result", "ok"}}), Optional(1.0));
  EXPECT_THAT(e.Get("understudy_eval_last_run_timestamp_seconds"), Optional(1.8e9));
  EXPECT_THAT(e.Get("understudy_eval_metric", {{"arm", "candidate"}, {"metric", "reask_agreement"}}),
              Optional(0.25));
  EXPECT_THAT(e.Get("understudy_eval_metric", {{"arm", "both"}, {"metric", "agreement_rate"}}),
              Optional(0.5));
  EXPECT_THAT(
      e.Get("understudy_eval_regressions", {{"arm", "candidate"}, {"metric", "reask_agreement"}}),
      Optional(1.0));
  run.clear_regressions();
  run.set_failed(true);
  metrics_.ObserveEvalRun(run);
  e = Scrape();
  EXPECT_THAT(e.Get("understudy_eval_runs_total", {{"result", "failed"}}), Optional(1.0));
  EXPECT_THAT(
      e.Get("understudy_eval_regressions", {{"arm", "candidate"}, {"metric", "reask_agreement"}}),
      Optional(0.0));
}

// Skip reasons are a bounded label: past kMaxLabelValues they become
// "other", and odd characters never reach the exposition.
TEST_F(MetricsTest, FreeFormLabelsAreBoundedAndSanitised) {
  ShadowCounters c;
  for (int i = 0; i < 40; ++i) c.skipped_by_reason["reason" + std::to_string(100 + i)] = 1;
  c.skipped_by_reason["we\"ird\nreason"] = 1;
  metrics_.SetShadowStats(c);
  Exposition e = Scrape();
  std::vector<Sample> series = e.All("understudy_shadow_skipped_total");
  EXPECT_LE(series.size(), Metrics::kMaxLabelValues + 1);
  EXPECT_EQ(e.Sum("understudy_shadow_skipped_total"), 41.0);
  EXPECT_GT(e.Get("understudy_shadow_skipped_total", {{"reason", "other"}}).value_or(0), 0.0);
  for (const Sample& s : series) {
    EXPECT_EQ(s.labels.at("reason").find_first_of("\"\n\\"), std::string::npos);
  }
}

// Verdicts are counted; applicable comparator scores land in 0..1 buckets.
TEST_F(MetricsTest, ObserveComparisonCountsVerdictsAndScores) {
  for (v1::Verdict v : {v1::VERDICT_EQUIVALENT, v1::VERDICT_MAJOR_DIFF, v1::VERDICT_MAJOR_DIFF}) {
    v1::Comparison c;
    c.set_verdict(v);
    c.set_request_id("req-must-not-appear");
    for (double score : {0.05, 0.97}) {
      v1::ComparatorScore* s = c.add_scores();
      s->set_name(score < 0.5 ? "exact" : "chrf");
      s->set_score(score);
      s->set_applicable(true);
    }
    v1::ComparatorScore* skipped = c.add_scores();
    skipped->set_name("json");
    skipped->set_score(0.1);
    skipped->set_applicable(false);
    metrics_.ObserveComparison(c);
  }
  std::string text = metrics_.Serialize();
  EXPECT_EQ(text.find("req-must-not-appear"), std::string::npos);
  Exposition e(text);
  EXPECT_THAT(e.Get("understudy_comparisons_total", {{"verdict", "major_diff"}}), Optional(2.0));
  EXPECT_THAT(e.Get("understudy_comparisons_total", {{"verdict", "equivalent"}}), Optional(1.0));
  EXPECT_THAT(e.Get("understudy_comparisons_total", {{"verdict", "minor_diff"}}), Optional(0.0));
  EXPECT_THAT(e.Get("understudy_comparator_score_bucket", {{"comparator", "exact"}, {"le", "0.1"}}),
              Optional(3.0));
  EXPECT_THAT(e.Get("understudy_comparator_score_bucket", {{"comparator", "chrf"}, {"le", "0.95"}}),
              Optional(0.0));
  EXPECT_THAT(e.Get("understudy_comparator_score_bucket", {{"comparator", "chrf"}, {"le", "0.99"}}),
              Optional(3.0));
  EXPECT_THAT(e.All("understudy_comparator_score_count", {{"comparator", "json"}}), IsEmpty());

  metrics_.SetNoiseLevel("chrf", 0.04);
  metrics_.SetNoiseLevel("chrf", 0.03);
  metrics_.SetNoiseLevel("exact", std::nan(""));
  Exposition noise = Scrape();
  EXPECT_THAT(noise.Get("understudy_noise_level", {{"comparator", "chrf"}}), Optional(0.03));
  EXPECT_THAT(noise.All("understudy_noise_level", {{"comparator", "exact"}}), IsEmpty());
}

// The phase gauge is one-hot and follows transitions; weight is a 0..1
// ratio; stage age is measured from the stage start.
TEST_F(MetricsTest, SetRolloutPublishesOneHotPhaseWeightAndAge) {
  metrics_.SetRollout(CanaryState(), v1::HealthSnapshot(), absl::FromUnixSeconds(1'700'000'090));
  Exposition e = Scrape();
  EXPECT_EQ(e.Sum("understudy_rollout_phase"), 1.0);
  EXPECT_THAT(e.Get("understudy_rollout_phase", {{"phase", "canary"}}), Optional(1.0));
  EXPECT_THAT(e.Get("understudy_rollout_weight_ratio"), Optional(0.05));
  EXPECT_THAT(e.Get("understudy_rollout_stage_index"), Optional(2.0));
  EXPECT_THAT(e.Get("understudy_rollout_stage_age_seconds"), Optional(90.0));
  EXPECT_THAT(e.Get("understudy_rollout_rollbacks"), Optional(1.0));
  EXPECT_THAT(e.Get("understudy_rollout_version"), Optional(7.0));

  v1::RolloutState rolled_back = CanaryState();
  rolled_back.set_phase(v1::PHASE_ROLLED_BACK);
  rolled_back.set_weight_basis_points(0);
  metrics_.SetRollout(rolled_back, v1::HealthSnapshot(), absl::FromUnixSeconds(1'700'000'000));
  Exposition after = Scrape();
  EXPECT_EQ(after.Sum("understudy_rollout_phase"), 1.0);
  EXPECT_THAT(after.Get("understudy_rollout_phase", {{"phase", "rolled_back"}}), Optional(1.0));
  EXPECT_THAT(after.Get("understudy_rollout_phase", {{"phase", "canary"}}), Optional(0.0));
  EXPECT_THAT(after.Get("understudy_rollout_weight_ratio"), Optional(0.0));
}

// Health gauges come from the snapshot in base units, and a window with no
// data has no series rather than a misleading 0.
TEST_F(MetricsTest, SetRolloutPublishesHealthOnlyWhereThereIsData) {
  metrics_.SetRollout(CanaryState(), HealthWithData(), absl::FromUnixSeconds(1'700'000'060));
  Exposition e = Scrape();
  const LabelSet prod = {{"arm", "production"}, {"source", "live"}};
  const LabelSet cand = {{"arm", "candidate"}, {"source", "live"}};
  const LabelSet shadow = {{"arm", "candidate"}, {"source", "shadow"}};
  auto with_window = [](LabelSet l, const char* w) {
    l["window"] = w;
    return l;
  };
  EXPECT_THAT(e.Get("understudy_rollout_health_requests", with_window(prod, "stage")),
              Optional(200.0));
  EXPECT_THAT(e.Get("understudy_rollout_health_error_ratio", with_window(prod, "stage")),
              Optional(0.01));
  EXPECT_THAT(e.Get("understudy_rollout_health_error_ratio", with_window(prod, "recent")),
              Optional(0.05));
  EXPECT_THAT(e.Get("understudy_rollout_health_error_ratio", with_window(cand, "stage")),
              Optional(0.1));
  EXPECT_THAT(e.Get("understudy_rollout_health_latency_p95_seconds", prod), Optional(1.2));
  EXPECT_THAT(e.Get("understudy_rollout_health_ttft_p95_seconds", prod), Optional(0.3));
  EXPECT_THAT(e.Get("understudy_rollout_health_satisfaction_mean", cand), Optional(0.75));
  EXPECT_THAT(e.Get("understudy_rollout_health_cost_per_request", cand), Optional(0.003));
  EXPECT_THAT(e.Get("understudy_rollout_health_agreement_ratio", shadow), Optional(0.94));
  // No feedback for production, no recent candidate requests, no ttft for
  // the candidate: absent.
  EXPECT_EQ(e.Get("understudy_rollout_health_satisfaction_mean", prod), std::nullopt);
  EXPECT_EQ(e.Get("understudy_rollout_health_error_ratio", with_window(cand, "recent")),
            std::nullopt);
  EXPECT_THAT(e.Get("understudy_rollout_health_requests", with_window(cand, "recent")),
              Optional(0.0));
  EXPECT_EQ(e.Get("understudy_rollout_health_ttft_p95_seconds", cand), std::nullopt);

  // A new stage starts with empty windows: the series go away.
  metrics_.SetRollout(CanaryState(), v1::HealthSnapshot(), absl::FromUnixSeconds(1'700'000'070));
  Exposition reset = Scrape();
  EXPECT_THAT(reset.All("understudy_rollout_health_latency_p95_seconds"), IsEmpty());
  EXPECT_THAT(reset.All("understudy_rollout_health_error_ratio"), IsEmpty());
  EXPECT_THAT(reset.All("understudy_rollout_health_agreement_ratio"), IsEmpty());
}

// Every gate of a judge tick is published with its numbers and a one-hot
// outcome; a gate missing from the next tick disappears; a changed
// statistic name replaces the old series.
TEST_F(MetricsTest, SetGateEvaluationsPublishesCurrentGates) {
  metrics_.SetGateEvaluations({Gate("error_rate", v1::GATE_PASS, 0.01, 0.011),
                               Gate("latency_p95", v1::GATE_FAIL, 900, 1800, "sprt_frac")});
  Exposition e = Scrape();
  EXPECT_THAT(e.Get("understudy_gate_value", {{"gate", "latency_p95"}, {"arm", "candidate"}}),
              Optional(1800.0));
  EXPECT_THAT(e.Get("understudy_gate_value", {{"gate", "latency_p95"}, {"arm", "production"}}),
              Optional(900.0));
  EXPECT_THAT(e.Get("understudy_gate_threshold", {{"gate", "latency_p95"}}), Optional(3600.0));
  EXPECT_THAT(e.Get("understudy_gate_bound", {{"gate", "error_rate"}}), Optional(4.6));
  EXPECT_THAT(
      e.Get("understudy_gate_statistic", {{"gate", "latency_p95"}, {"statistic", "sprt_frac"}}),
      Optional(-1.5));
  EXPECT_THAT(e.Get("understudy_gate_samples", {{"gate", "error_rate"}, {"arm", "candidate"}}),
              Optional(30.0));
  EXPECT_THAT(e.Get("understudy_gate_outcome", {{"gate", "latency_p95"}, {"outcome", "fail"}}),
              Optional(1.0));
  EXPECT_EQ(e.Sum("understudy_gate_outcome", {{"gate", "latency_p95"}}), 1.0);
  EXPECT_EQ(e.Sum("understudy_gate_outcome", {{"gate", "error_rate"}}), 1.0);

  metrics_.SetGateEvaluations(
      {Gate("error_rate", v1::GATE_INCONCLUSIVE, 0.01, 0.02, "other_stat")});
  Exposition next = Scrape();
  EXPECT_THAT(next.All("understudy_gate_value", {{"gate", "latency_p95"}}), IsEmpty());
  EXPECT_THAT(next.All("understudy_gate_outcome", {{"gate", "latency_p95"}}), IsEmpty());
  EXPECT_THAT(
      next.Get("understudy_gate_outcome", {{"gate", "error_rate"}, {"outcome", "inconclusive"}}),
      Optional(1.0));
  EXPECT_THAT(next.Get("understudy_gate_outcome", {{"gate", "error_rate"}, {"outcome", "pass"}}),
              Optional(0.0));
  std::vector<Sample> stats = next.All("understudy_gate_statistic", {{"gate", "error_rate"}});
  ASSERT_EQ(stats.size(), 1u);
  EXPECT_EQ(stats[0].labels.at("statistic"), "other_stat");
}

// Decisions are counted by action and actor kind; a judge decision's gates
// are published; an operator's decision without gates keeps them.
TEST_F(MetricsTest, ObserveDecisionCountsActionsAndPublishesGates) {
  v1::Decision tick;
  tick.set_action(v1::ACTION_HOLD);
  tick.set_actor("judge");
  *tick.add_gates() = Gate("agreement", v1::GATE_PASS, 1.0, 0.95);
  metrics_.ObserveDecision(tick);
  metrics_.ObserveDecision(tick);
  v1::Decision manual;
  manual.set_action(v1::ACTION_ROLLBACK);
  manual.set_actor("alice");
  metrics_.ObserveDecision(manual);
  v1::Decision odd;
  odd.set_action(v1::ACTION_UNSPECIFIED);  // not one of the labelled actions
  odd.set_actor("bob");
  metrics_.ObserveDecision(odd);

  Exposition e = Scrape();
  EXPECT_THAT(
      e.Get("understudy_rollout_decisions_total", {{"action", "hold"}, {"actor_kind", "judge"}}),
      Optional(2.0));
  EXPECT_THAT(e.Get("understudy_rollout_decisions_total",
                    {{"action", "rollback"}, {"actor_kind", "operator"}}),
              Optional(1.0));
  EXPECT_THAT(e.Get("understudy_rollout_decisions_total",
                    {{"action", "other"}, {"actor_kind", "operator"}}),
              Optional(1.0));
  EXPECT_EQ(metrics_.Serialize().find("alice"), std::string::npos);
  EXPECT_THAT(e.Get("understudy_gate_value", {{"gate", "agreement"}, {"arm", "candidate"}}),
              Optional(0.95));
}

// Store counters follow absolute values by delta.
TEST_F(MetricsTest, SetStoreStatsSyncsByDelta) {
  metrics_.SetStoreStats(100, 1);
  metrics_.SetStoreStats(150, 1);
  Exposition e = Scrape();
  EXPECT_THAT(e.Get("understudy_store_records_written_total"), Optional(150.0));
  EXPECT_THAT(e.Get("understudy_store_write_failures_total"), Optional(1.0));
}

// Refused feedback is counted by reason, every reason present from the
// start, following the engine's absolute counters by delta.
TEST_F(MetricsTest, SetFeedbackStatsCountsRefusalsByReason) {
  Exposition before = Scrape();
  for (const char* reason : {"invalid", "duplicate", "rate_limited"}) {
    EXPECT_THAT(before.Get("understudy_feedback_rejected_total", {{"reason", reason}}),
                Optional(0.0))
        << reason;
  }
  metrics_.SetFeedbackStats({1, 2, 0});
  metrics_.SetFeedbackStats({1, 5, 3});
  Exposition e = Scrape();
  EXPECT_THAT(e.Get("understudy_feedback_rejected_total", {{"reason", "invalid"}}), Optional(1.0));
  EXPECT_THAT(e.Get("understudy_feedback_rejected_total", {{"reason", "duplicate"}}),
              Optional(5.0));
  EXPECT_THAT(e.Get("understudy_feedback_rejected_total", {{"reason", "rate_limited"}}),
              Optional(3.0));
}

// Span export counters follow the exporter's absolute values by delta,
// every outcome present from the start.
TEST_F(MetricsTest, SetTracingStatsSyncsByDelta) {
  Exposition before = Scrape();
  for (const char* outcome : {"exported", "dropped", "failed", "rejected"}) {
    EXPECT_THAT(before.Get("understudy_otlp_spans_total", {{"outcome", outcome}}), Optional(0.0))
        << outcome;
  }
  metrics_.SetTracingStats({10, 0, 3, 1, 4});
  metrics_.SetTracingStats({25, 2, 3, 1, 6});
  Exposition e = Scrape();
  EXPECT_THAT(e.Get("understudy_otlp_spans_total", {{"outcome", "exported"}}), Optional(25.0));
  EXPECT_THAT(e.Get("understudy_otlp_spans_total", {{"outcome", "dropped"}}), Optional(2.0));
  EXPECT_THAT(e.Get("understudy_otlp_spans_total", {{"outcome", "failed"}}), Optional(3.0));
  EXPECT_THAT(e.Get("understudy_otlp_spans_total", {{"outcome", "rejected"}}), Optional(1.0));
  EXPECT_THAT(e.Get("understudy_otlp_export_retries_total"), Optional(6.0));
}

// Many threads observe and scrape at once; nothing is lost.
TEST_F(MetricsTest, ConcurrentObservationsAndScrapesAddUp) {
  constexpr int kThreads = 4, kPerThread = 2000;
  std::atomic<uint64_t> messages{0};
  std::atomic<bool> done{false};
  std::thread scraper([&] {
    while (!done.load()) {
      ExtProcCounters stats;
      stats.messages_received = messages.load();
      metrics_.SyncExtProc(stats);
      Exposition e = Scrape();
      (void)e;
    }
  });
  std::vector<std::thread> workers;
  for (int t = 0; t < kThreads; ++t) {
    workers.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        metrics_.ObserveExchange(t % 2 ? v1::ARM_CANDIDATE : v1::ARM_PRODUCTION, v1::SOURCE_LIVE,
                                 i % 10 ? OutcomeClass::kOk : OutcomeClass::kTransport,
                                 absl::Milliseconds(i % 700), std::nullopt, 1, 2, std::nullopt);
        messages.fetch_add(1);
      }
    });
  }
  for (std::thread& w : workers) w.join();
  done = true;
  scraper.join();
  ExtProcCounters stats;
  stats.messages_received = messages.load();
  metrics_.SyncExtProc(stats);
  Exposition e = Scrape();
  EXPECT_EQ(e.Sum("understudy_requests_total"), kThreads * kPerThread);
  EXPECT_EQ(e.Sum("understudy_errors_total"), kThreads * kPerThread / 10);
  EXPECT_EQ(e.Sum("understudy_tokens_total", {{"direction", "output"}}),
            2.0 * kThreads * kPerThread);
  EXPECT_EQ(e.Sum("understudy_request_duration_seconds_count"), kThreads * kPerThread);
  EXPECT_THAT(e.Get("understudy_extproc_messages_total"), Optional(kThreads * kPerThread * 1.0));
}

// Prometheus' own linter accepts the exposition (Debian's promtool).
TEST_F(MetricsTest, PromtoolCheckMetricsAcceptsTheExposition) {
  const char* promtool = "/usr/bin/promtool";
  if (access(promtool, X_OK) != 0) GTEST_SKIP() << promtool << " not installed";
  PopulateEverything();
  char path[] = "/tmp/understudy_metrics_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  close(fd);
  {
    std::ofstream out(path);
    out << metrics_.Serialize();
  }
  std::string command = std::string(promtool) + " check metrics < " + path + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string output;
  char buffer[4096];
  size_t n;
  while ((n = fread(buffer, 1, sizeof(buffer), pipe)) > 0) output.append(buffer, n);
  int status = pclose(pipe);
  unlink(path);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << output;
  EXPECT_THAT(output, IsEmpty());
}

}  // namespace
}  // namespace understudy::metrics
