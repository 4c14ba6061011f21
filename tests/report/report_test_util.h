// tests/report/report_test_util.h: a realistic rollout history for the
// report and dashboard tests, produced by the real rollout::Controller on a
// ManualClock (judge promote, judge rollback on an error regression, then
// operator commands), with shadow comparisons, eval exchanges and health
// snapshots like the sidecar stores them.
#ifndef UNDERSTUDY_TESTS_REPORT_REPORT_TEST_UTIL_H_
#define UNDERSTUDY_TESTS_REPORT_REPORT_TEST_UTIL_H_

#include <gtest/gtest.h>
#include <stdlib.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "rollout/rollout.h"
#include "understudy/v1/compare.pb.h"
#include "understudy/v1/exchange.pb.h"
#include "understudy/v1/rollout.pb.h"

namespace understudy::report::testing {

// TempDir is a fresh directory removed at destruction.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "understudy-report-XXXXXX";
    char* made = mkdtemp(tmpl.data());
    path_ = made != nullptr ? made : "";
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A finding text that must come out escaped in every HTML rendering.
inline constexpr char kScriptFinding[] = "<script>alert('pwned')</script>";

// The sinks a history is written to (a Store, or vectors for the dashboard).
struct HistorySink {
  std::function<void(const v1::Comparison&)> comparison;
  std::function<void(const v1::Exchange&)> exchange;
  std::function<void(const v1::HealthSnapshot&)> health;
};

inline rollout::RolloutConfig HistoryConfig() {
  rollout::RolloutConfig c;
  c.stages = {{0, absl::Minutes(5), 200, absl::ZeroDuration()},
              {10, absl::Minutes(10), 500, absl::ZeroDuration()},
              {50, absl::Minutes(10), 500, absl::ZeroDuration()},
              {100, absl::ZeroDuration(), 0, absl::ZeroDuration()}};
  return c;
}

// MakeMajorDiff builds a major-diff comparison with findings.
inline v1::Comparison MakeMajorDiff(const std::string& id, absl::Time t, double score,
                                    const std::string& production, const std::string& candidate) {
  v1::Comparison c;
  c.set_request_id(id);
  c.set_time_unix_micros(absl::ToUnixMicros(t));
  c.set_verdict(v1::VERDICT_MAJOR_DIFF);
  c.set_production_model("gpt-4o");
  c.set_candidate_model("gpt-4o-mini");
  c.set_request_kind("text");
  c.set_live_arm(v1::ARM_PRODUCTION);
  c.set_production_cost(0.004);
  c.set_candidate_cost(0.0009);
  c.set_production_latency_micros(900000);
  c.set_candidate_latency_micros(700000);
  auto* s = c.add_scores();
  s->set_name("lcs_f1");
  s->set_score(score);
  s->set_applicable(true);
  auto* s2 = c.add_scores();
  s2->set_name("chrf");
  s2->set_score(score + 0.05);
  s2->set_applicable(true);
  auto* f = c.add_findings();
  f->set_kind("salient_token");
  f->set_path("token 12");
  f->set_production(production);
  f->set_candidate(candidate);
  f->set_message(absl::StrCat("number changed from ", production, " to ", candidate));
  f->set_major(true);
  return c;
}

// History drives the controller through: shadow stage with a good
// candidate (judge promotes to 10%), a candidate error regression at 10%
// (judge rolls back), an operator retry, pause and rollback. It writes
// shadow comparisons (with verdict counts tracked), eval exchanges with
// their comparisons and a health snapshot every minute.
struct History {
  // Counts by verdict of the shadow comparisons written.
  std::vector<int64_t> shadow_verdicts = std::vector<int64_t>(7, 0);
  int64_t eval_exchanges = 0;
  int64_t eval_candidate_errors = 0;
  int64_t health_snapshots = 0;
  std::string script_request_id = "req-script";
};

inline History RunHistory(ManualClock& clock, rollout::Controller& controller,
                          const HistorySink& sink) {
  History h;
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  std::normal_distribution<double> z(0, 1);
  int64_t id = 0;

  // Eval first: 40 dataset items, both arms, 2 candidate failures.
  for (int i = 0; i < 40; ++i) {
    std::string rid = absl::StrCat("eval-", i);
    for (v1::Arm arm : {v1::ARM_PRODUCTION, v1::ARM_CANDIDATE}) {
      v1::Exchange e;
      e.set_request_id(rid);
      e.set_arm(arm);
      e.set_source(v1::SOURCE_EVAL);
      e.set_method("POST");
      e.set_path("/v1/chat/completions");
      bool fail = arm == v1::ARM_CANDIDATE && (i == 3 || i == 17);
      e.set_status_code(fail ? 500 : 200);
      e.set_start_unix_micros(absl::ToUnixMicros(clock.Now()));
      double ms = (arm == v1::ARM_PRODUCTION ? 900 : 650) * std::exp(0.3 * z(rng));
      e.set_end_offset_micros(static_cast<int64_t>(ms * 1000));
      e.set_first_body_byte_offset_micros(static_cast<int64_t>(ms * 250));
      e.mutable_response()->set_body("{\"choices\":[{\"message\":{\"content\":\"ok\"}}]}");
      ++h.eval_exchanges;
      if (fail) ++h.eval_candidate_errors;
      sink.exchange(e);
    }
    v1::Comparison c;
    c.set_request_id(rid);
    c.set_time_unix_micros(absl::ToUnixMicros(clock.Now()));
    c.set_verdict(i == 3 || i == 17 ? v1::VERDICT_CANDIDATE_ERROR
                  : i % 10 == 0     ? v1::VERDICT_MAJOR_DIFF
                                    : v1::VERDICT_EQUIVALENT);
    c.set_production_cost(0.004);
    c.set_candidate_cost(0.001);
    auto* s = c.add_scores();
    s->set_name("lcs_f1");
    s->set_score(c.verdict() == v1::VERDICT_EQUIVALENT ? 0.97 : 0.4);
    s->set_applicable(true);
    sink.comparison(c);
    clock.Advance(absl::Milliseconds(200));
  }

  struct Arm {
    double error, latency_ms, cost, agreement;
  };
  const Arm prod{0.01, 900, 0.004, 1};
  auto draw = [&](const Arm& a) {
    rollout::Outcome o;
    o.status = u(rng) < a.error ? rollout::OutcomeClass::kServerError : rollout::OutcomeClass::kOk;
    o.latency = absl::Milliseconds(a.latency_ms * std::exp(0.4 * z(rng)));
    o.ttft = *o.latency / 4;
    o.cost = a.cost * (0.5 + u(rng));
    return o;
  };

  // Runs traffic until the judge takes a non-hold decision (or `limit`).
  auto drive = [&](const Arm& cand, absl::Duration limit) -> v1::Decision {
    v1::Decision last;
    for (int64_t sec = 1; sec <= absl::ToInt64Seconds(limit); ++sec) {
      const bool shadow = controller.State().phase() == v1::PHASE_SHADOW;
      const double w = controller.State().weight_basis_points() / 10000.0;
      for (int i = 0; i < 50; ++i) {
        std::string rid = absl::StrCat("req-", ++id);
        bool is_cand = u(rng) < w;
        rollout::Outcome o = draw(is_cand ? cand : prod);
        o.request_id = rid;
        controller.RecordOutcome(is_cand ? v1::ARM_CANDIDATE : v1::ARM_PRODUCTION, o);
        if (u(rng) < 0.05) {
          controller.RecordFeedback(is_cand ? v1::ARM_CANDIDATE : v1::ARM_PRODUCTION,
                                    u(rng) < 0.8 ? 1.0 : 0.0);
        }
        if (!is_cand && u(rng) < (shadow ? 0.5 : 0.1)) {
          rollout::ShadowComparison sc;
          sc.candidate = draw(cand);
          double r = u(rng);
          v1::Verdict verdict = rollout::IsError(sc.candidate.status) ? v1::VERDICT_CANDIDATE_ERROR
                                : r < 0.03                            ? v1::VERDICT_MAJOR_DIFF
                                : r < 0.15                            ? v1::VERDICT_MINOR_DIFF
                                                                      : v1::VERDICT_EQUIVALENT;
          sc.major_diff = verdict == v1::VERDICT_MAJOR_DIFF;
          controller.RecordComparison(sc);
          v1::Comparison c;
          if (verdict == v1::VERDICT_MAJOR_DIFF) {
            c = MakeMajorDiff(rid, clock.Now(), 0.3 + 0.3 * u(rng), "42", "24");
          } else {
            c.set_request_id(rid);
            c.set_time_unix_micros(absl::ToUnixMicros(clock.Now()));
            c.set_verdict(verdict);
            c.set_production_model("gpt-4o");
            c.set_candidate_model("gpt-4o-mini");
            c.set_production_cost(*o.cost);
            c.set_candidate_cost(*sc.candidate.cost);
            c.set_production_latency_micros(absl::ToInt64Microseconds(*o.latency));
            c.set_candidate_latency_micros(absl::ToInt64Microseconds(*sc.candidate.latency));
            auto* s = c.add_scores();
            s->set_name("lcs_f1");
            s->set_score(verdict == v1::VERDICT_EQUIVALENT ? 0.98 : 0.8);
            s->set_applicable(true);
            if (verdict == v1::VERDICT_MINOR_DIFF) {
              auto* f = c.add_findings();
              f->set_kind("length");
              f->set_message("candidate answer 30% shorter");
              f->set_noise_explained(u(rng) < 0.5);
            }
          }
          ++h.shadow_verdicts[c.verdict()];
          sink.comparison(c);
          if (u(rng) < 0.05) {
            v1::Exchange noise;
            noise.set_request_id(rid);
            noise.set_arm(v1::ARM_PRODUCTION);
            noise.set_source(v1::SOURCE_NOISE);
            noise.set_status_code(200);
            noise.set_start_unix_micros(absl::ToUnixMicros(clock.Now()));
            sink.exchange(noise);
          }
        }
      }
      clock.Advance(absl::Seconds(1));
      if (sec % 60 == 0) {
        v1::HealthSnapshot snap = controller.Health();
        snap.set_time_unix_micros(absl::ToUnixMicros(clock.Now()));
        ++h.health_snapshots;
        sink.health(snap);
      }
      if (sec % 10 != 0) continue;
      absl::StatusOr<v1::Decision> d = controller.Tick();
      EXPECT_TRUE(d.ok()) << d.status();
      if (!d.ok()) return last;
      last = *d;
      if (d->action() != v1::ACTION_HOLD) return last;
    }
    return last;
  };

  v1::Decision promote = drive({0.01, 700, 0.001, 0.97}, absl::Minutes(40));
  EXPECT_EQ(promote.action(), v1::ACTION_PROMOTE) << promote.reason();
  v1::Decision rollback = drive({0.06, 700, 0.001, 0.97}, absl::Minutes(60));
  EXPECT_EQ(rollback.action(), v1::ACTION_ROLLBACK) << rollback.reason();

  // The worst diff, with a finding that must be escaped.
  v1::Comparison worst =
      MakeMajorDiff(h.script_request_id, clock.Now(), 0.05, "Paris", kScriptFinding);
  auto* extra = worst.add_findings();
  extra->set_kind("json_changed");
  extra->set_path("$.answer");
  extra->set_production("\"yes\"");
  extra->set_candidate("\"no\" | <b>bold</b>");
  extra->set_message("value changed");
  extra->set_major(true);
  ++h.shadow_verdicts[worst.verdict()];
  sink.comparison(worst);

  clock.Advance(absl::Minutes(5));
  EXPECT_TRUE(controller.Promote("alice").ok());
  clock.Advance(absl::Minutes(2));
  EXPECT_TRUE(controller.Pause("alice", "waiting for the support team's review").ok());
  clock.Advance(absl::Minutes(3));
  EXPECT_TRUE(controller.Rollback("alice", "bad answers in #support").ok());
  v1::HealthSnapshot snap = controller.Health();
  snap.set_time_unix_micros(absl::ToUnixMicros(clock.Now()));
  ++h.health_snapshots;
  sink.health(snap);
  clock.Advance(absl::Seconds(30));
  return h;
}

}  // namespace understudy::report::testing

#endif  // UNDERSTUDY_TESTS_REPORT_REPORT_TEST_UTIL_H_
