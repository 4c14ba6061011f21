// The drift watch end to end (docs/drift.md): real fake model processes,
// `understudy serve` and the Envoy-faithful driver. The candidate fake
// changes behind the same model name mid-run (its system_fingerprint; or
// 30% shorter answers with more refusals) through its /control endpoint;
// the sidecar must raise the right drift events within a bounded number of
// requests, and an A/A run of the same length must raise none.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/e2e_cluster.h"

namespace understudy::e2e {
namespace {

// Questions from the fake model's corpus: answers of different lengths.
const char* const kQuestions[] = {
    "What is the capital of France?",    "What is the capital of Japan?",
    "What is the capital of Australia?", "How tall is Mount Everest?",
    "At what temperature does water boil at sea level?",
    "What is the speed of light in a vacuum?"};

// Latency and TTFT are left out in the behaviour tests: on a shared test
// machine their drift is the machine's, not the model's.
constexpr char kBehaviourDrift[] = R"(drift:
  baseline_requests: 60
  new_value_min_count: 3
  behaviour: {alpha: 0.01, min_samples: 30, min_clusters: 5, window: 200,
              metrics: [answer_chars, refusal, invalid_output, finish_length, cost]}
)";

class DriftE2eTest : public E2eFixture {
 protected:
  // Send plays requests [from, to) from 20 users over the six questions;
  // request i has id "drift-<i>".
  void Send(int from, int to) {
    for (int i = from; i < to; ++i) {
      envoy_driver::HttpRequest req;
      req.headers = {{"content-type", "application/json"},
                     {"x-user-id", absl::StrCat("user-", i % 20)},
                     {"x-request-id", absl::StrCat("drift-", i)}};
      req.body_chunks = {absl::StrCat(R"({"model":"gpt-4o","messages":[{"role":"user","content":")",
                                      kQuestions[i % 6], R"("}]})")};
      absl::StatusOr<DriverResult> r = c_.SendRequest(std::move(req));
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_EQ(r->status, 200) << i;
    }
  }

  // DriftRecords returns the decision log's records of `action`.
  std::vector<json> Records(const std::string& action) {
    std::vector<json> out;
    json all = c_.Decisions();
    if (!all.is_array()) return out;
    for (const json& d : all) {
      if (d.value("action", "") == action) out.push_back(d);
    }
    return out;
  }

  // WaitForRecords polls the decision log until `n` records of `action`
  // are stored (the store write is what the test reads) or 30 s pass.
  std::vector<json> WaitForRecords(const std::string& action, size_t n) {
    const absl::Time deadline = absl::Now() + absl::Seconds(30);
    std::vector<json> r = Records(action);
    while (r.size() < n && absl::Now() < deadline) {
      absl::SleepFor(absl::Milliseconds(200));
      r = Records(action);
    }
    return r;
  }

  static int RequestIndex(const json& decision) {
    const std::string id = decision["trigger_request_ids"][0].get<std::string>();
    return std::stoi(id.substr(id.find('-') + 1));
  }
};

// The candidate's system_fingerprint changes behind the same model name
// after 60 requests: one new_version event for the candidate's
// system_fingerprint within a few requests, the shadow-stage rollout paused
// (drift.pause_rollout_on_version_change), a series in /metrics, a fired
// revisit trigger and a "Model drift" section in the report.
TEST_F(DriftE2eTest, FingerprintSwitchRaisesOneVersionEventAndPausesTheRollout) {
  ASSERT_OK(c_.StartFakes());
  SidecarKnobs knobs;
  knobs.extra_yaml = R"(drift:
  baseline_requests: 40
  new_value_min_count: 3
  pause_rollout_on_version_change: true
)";
  ASSERT_OK(c_.StartSidecar(knobs));
  Send(0, 60);
  ASSERT_EQ(WaitForRecords("ACTION_DRIFT_BASELINE", 2).size(), 2u);
  ASSERT_EQ(c_.CandidateControl(R"({"system_fingerprint":"fp_switched"})").status, 200);
  Send(60, 100);

  std::vector<json> events = WaitForRecords("ACTION_DRIFT", 1);
  ASSERT_EQ(events.size(), 1u) << events.size();
  const json& e = events[0]["drift_event"];
  EXPECT_EQ(e.value("arm", ""), "ARM_CANDIDATE");
  EXPECT_EQ(e.value("kind", ""), "DRIFT_NEW_VERSION");
  EXPECT_EQ(e.value("dimension", ""), "system_fingerprint");
  EXPECT_EQ(e.value("value", ""), "fp_switched");
  EXPECT_TRUE(e.value("paused_rollout", false));
  // Raised by the third answer with the new fingerprint (mirrored copies
  // may finish out of order: a few requests of slack).
  const int tipped = RequestIndex(events[0]);
  EXPECT_GE(tipped, 62);
  EXPECT_LT(tipped, 60 + 10);
  EXPECT_EQ(WaitForPhase({"PHASE_PAUSED"}, absl::Seconds(10)), "PHASE_PAUSED");

  const std::string metrics = c_.Admin("GET", "/metrics").body;
  EXPECT_EQ(MetricValue(metrics, "understudy_drift_events_total", "kind=\"new_version\""), 1)
      << metrics;
  const json report = c_.Admin("GET", "/v1/report?format=json").Json();
  ASSERT_TRUE(report.is_object());
  EXPECT_EQ(report["drift"]["events"].size(), 1u);
  EXPECT_EQ(report["drift"]["baselines"].size(), 2u);
  EXPECT_EQ(report["revisit"]["fired"].size(), 1u);
  const std::string md = c_.Admin("GET", "/v1/report?format=md").body;
  EXPECT_NE(md.find("## Model drift"), std::string::npos);
  EXPECT_NE(md.find("fp_switched"), std::string::npos);

  // After a restart the baselines and the event are restored: the switched
  // fingerprint is known and nothing is raised or frozen again.
  ASSERT_TRUE(c_.StopSidecar().has_value());
  ASSERT_OK(c_.StartSidecar(knobs));
  Send(100, 130);
  ASSERT_TRUE(c_.StopSidecar().has_value());  // drains: every answer watched
  ASSERT_OK(c_.StartSidecar(knobs));
  EXPECT_EQ(Records("ACTION_DRIFT").size(), 1u);
  EXPECT_EQ(Records("ACTION_DRIFT_BASELINE").size(), 2u);
}

// From request 60 the candidate answers 30% shorter and refuses 30% of
// requests: behaviour events for answer length and refusals, with effects
// in the right direction, within 400 requests; no version event.
TEST_F(DriftE2eTest, ShorterAnswersWithMoreRefusalsRaiseBehaviourEvents) {
  ASSERT_OK(c_.StartFakes());
  SidecarKnobs knobs;
  knobs.extra_yaml = kBehaviourDrift;
  ASSERT_OK(c_.StartSidecar(knobs));
  Send(0, 60);
  ASSERT_EQ(WaitForRecords("ACTION_DRIFT_BASELINE", 2).size(), 2u);
  ASSERT_EQ(c_.CandidateControl(R"({"shorten":0.3,"refusal_rate":0.3})").status, 200);
  bool length = false, refusal = false;
  int sent = 60;
  while (sent < 460 && !(length && refusal)) {
    Send(sent, sent + 20);
    sent += 20;
    for (const json& d : Records("ACTION_DRIFT")) {
      const json& e = d["drift_event"];
      if (e.value("dimension", "") == "answer_chars") length = true;
      if (e.value("dimension", "") == "refusal") refusal = true;
    }
  }
  ASSERT_TRUE(c_.StopSidecar().has_value());  // drains
  ASSERT_OK(c_.StartSidecar(knobs));
  std::vector<json> events = Records("ACTION_DRIFT");
  bool saw_length = false, saw_refusal = false;
  for (const json& d : events) {
    const json& e = d["drift_event"];
    EXPECT_EQ(e.value("arm", ""), "ARM_CANDIDATE") << d.dump();
    EXPECT_EQ(e.value("kind", ""), "DRIFT_BEHAVIOUR") << d.dump();
    EXPECT_GE(RequestIndex(d), 60) << d.dump();
    if (e.value("dimension", "") == "answer_chars") {
      saw_length = true;
      EXPECT_LT(e.value("relative_effect", 0.0), -0.15) << d.dump();
      EXPECT_LT(e.value("effect_upper", 0.0), 0) << d.dump();
    }
    if (e.value("dimension", "") == "refusal") {
      saw_refusal = true;
      EXPECT_GT(e.value("effect_lower", 0.0), 0) << d.dump();
    }
  }
  EXPECT_TRUE(saw_length) << "no answer_chars event within " << sent << " requests";
  EXPECT_TRUE(saw_refusal) << "no refusal event within " << sent << " requests";
}

// A/A: the same 460 requests with nothing changed raise no drift event,
// although both arms were judged (the behaviour gauges exist).
TEST_F(DriftE2eTest, AnAaRunOfTheSameLengthRaisesNothing) {
  ASSERT_OK(c_.StartFakes());
  SidecarKnobs knobs;
  knobs.extra_yaml = kBehaviourDrift;
  ASSERT_OK(c_.StartSidecar(knobs));
  Send(0, 460);
  const std::string metrics = c_.Admin("GET", "/metrics").body;
  EXPECT_NE(metrics.find("understudy_drift_effect{arm=\"candidate\",metric=\"answer_chars\"}"),
            std::string::npos)
      << metrics;
  ASSERT_TRUE(c_.StopSidecar().has_value());  // drains: every answer watched
  ASSERT_OK(c_.StartSidecar(knobs));
  EXPECT_EQ(Records("ACTION_DRIFT_BASELINE").size(), 2u);
  for (const json& d : Records("ACTION_DRIFT")) ADD_FAILURE() << d.dump();
}

}  // namespace
}  // namespace understudy::e2e
