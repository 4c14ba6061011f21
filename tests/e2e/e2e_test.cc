// End-to-end tests with real processes: two fake models, `understudy serve`
// (its ext_proc port driven by the Envoy-faithful driver in the two-filter
// set-up, its admin API over HTTP, its CLI as a subprocess). See
// tests/e2e/e2e_cluster.h for the set-up.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/e2e_cluster.h"

namespace understudy::e2e {
namespace {

using ::testing::HasSubstr;

// Int reads an int64 field: the JSON mapping renders int64 as a string,
// int32 as a number.
int64_t Int(const json& j) {
  if (j.is_number_integer()) return j.get<int64_t>();
  if (j.is_string()) return std::stoll(j.get<std::string>());
  return -1;
}

// PollUntil calls `done` until it is true or `timeout` passes.
bool PollUntil(absl::Duration timeout, const std::function<bool()>& done) {
  absl::Time deadline = absl::Now() + timeout;
  while (absl::Now() < deadline) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return done();
}

// SendMany plays one request per user, `concurrency` at a time, and returns
// user → cluster picked. Every result must be clean.
std::map<std::string, std::string> SendMany(Cluster& c, const std::vector<std::string>& users,
                                            int concurrency = 8) {
  std::vector<std::string> clusters(users.size());
  std::vector<std::string> problems(users.size());
  std::atomic<size_t> next{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < concurrency; ++t) {
    threads.emplace_back([&] {
      for (size_t i = next++; i < users.size(); i = next++) {
        absl::StatusOr<DriverResult> r = c.Send(users[i]);
        if (!r.ok()) {
          problems[i] = r.status().ToString();
        } else if (!r->violations.empty() || r->status != 200 || r->failed_open) {
          problems[i] = absl::StrCat("status ", r->status, " failed_open ", r->failed_open,
                                     " violation ",
                                     r->violations.empty() ? "" : r->violations.front());
        }
        if (r.ok()) clusters[i] = r->cluster;
      }
    });
  }
  for (std::thread& t : threads) t.join();
  std::map<std::string, std::string> out;
  for (size_t i = 0; i < users.size(); ++i) {
    EXPECT_EQ(problems[i], "") << "user " << users[i];
    out[users[i]] = clusters[i];
  }
  return out;
}

std::vector<std::string> Users(const std::string& prefix, int n) {
  std::vector<std::string> users;
  for (int i = 0; i < n; ++i) users.push_back(absl::StrCat(prefix, i));
  return users;
}

int CountArm(const std::map<std::string, std::string>& arms, const std::string& arm) {
  int n = 0;
  for (const auto& [user, cluster] : arms) n += cluster == arm;
  return n;
}

// Expects an exit code, showing the command's output when it differs.
#define EXPECT_EXIT_CODE(result, code)                                                  \
  EXPECT_EQ((result).exit_code, (code)) << "stdout: " << (result).out                  \
                                        << "\nstderr: " << (result).err

class E2eTest : public E2eFixture {
 protected:
  // Cli runs the CLI and fails the test if it could not run at all.
  testing::CommandResult Cli(std::vector<std::string> args, bool admin_flags = true) {
    absl::StatusOr<testing::CommandResult> r = c_.Cli(std::move(args), admin_flags);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : testing::CommandResult{};
  }

};

// ---------------------------------------------------------------- 1 ----

// A SIGKILLed sidecar restarted on the same --data dir resumes the rollout
// exactly (state, decision log) and routes with the restored weight from
// its first request: every sticky user keeps their arm.
TEST_F(E2eTest, KillNineMidRolloutResumes) {
  ASSERT_OK(c_.StartFakes());
  ASSERT_OK(c_.StartSidecar());
  for (int i = 0; i < 2; ++i) {
    testing::CommandResult r = Cli({"promote", "--actor", "e2e-operator"});
    EXPECT_EXIT_CODE(r, 0);
  }
  json before = State();
  ASSERT_EQ(before.value("phase", ""), "PHASE_CANARY") << before.dump();
  ASSERT_EQ(before.value("stage_index", -1), 2);
  ASSERT_EQ(before.value("weight_basis_points", -1), 500);
  const std::vector<std::string> users = Users("sticky-user-", 400);
  std::map<std::string, std::string> arms_before = SendMany(c_, users);
  const int candidates = CountArm(arms_before, "candidate");
  // 5% of 400 users: 20 expected; the bounds are ~4 sigma wide.
  EXPECT_GE(candidates, 4);
  EXPECT_LE(candidates, 45);
  EXPECT_EQ(candidates + CountArm(arms_before, "production"), 400);
  json decisions_before = c_.Decisions();
  ASSERT_TRUE(decisions_before.is_array());
  ASSERT_EQ(decisions_before.size(), 2u) << decisions_before.dump();
  for (const json& d : decisions_before) {
    EXPECT_EQ(d.value("action", ""), "ACTION_PROMOTE");
    EXPECT_EQ(d.value("actor", ""), "e2e-operator");
  }
  // The judge must not have moved anything while traffic flowed.
  ASSERT_EQ(State(), before);

  c_.KillSidecar();
  ASSERT_OK(c_.StartSidecar());
  // Routing first, before anything else touches the new process.
  std::map<std::string, std::string> arms_after = SendMany(c_, users);
  std::vector<std::string> moved;
  for (const auto& [u, arm] : arms_before) {
    if (arms_after[u] != arm) moved.push_back(absl::StrCat(u, ": ", arm, " -> ", arms_after[u]));
  }
  EXPECT_THAT(moved, ::testing::IsEmpty()) << "sticky users changed arm across the restart";
  json after = State();
  EXPECT_EQ(after.value("phase", ""), "PHASE_CANARY");
  EXPECT_EQ(after.value("stage_index", -1), 2);
  EXPECT_EQ(after.value("weight_basis_points", -1), 500);
  EXPECT_EQ(Int(after["version"]), Int(before["version"]));
  EXPECT_EQ(after, before) << "before: " << before.dump() << "\nafter: " << after.dump();
  EXPECT_EQ(c_.Decisions(), decisions_before);

  // Second round: everyone to the candidate, killed again right after the
  // command returned; the first requests after restart all go there.
  testing::CommandResult r = Cli({"set-weight", "100", "--actor", "e2e-operator"});
  EXPECT_EXIT_CODE(r, 0);
  json full = State();
  ASSERT_EQ(full.value("weight_basis_points", -1), 10000) << full.dump();
  json decisions_full = c_.Decisions();
  ASSERT_EQ(decisions_full.size(), 3u);
  EXPECT_EQ(decisions_full.back().value("action", ""), "ACTION_SET_WEIGHT");
  c_.KillSidecar();
  ASSERT_OK(c_.StartSidecar());
  std::map<std::string, std::string> arms_full = SendMany(c_, Users("new-user-", 50));
  EXPECT_EQ(CountArm(arms_full, "candidate"), 50);
  EXPECT_EQ(State(), full);
  EXPECT_EQ(c_.Decisions(), decisions_full);
}

// ---------------------------------------------------------------- 2 ----

// `understudy rollback` works from every state the CLI can reach, and the
// decision is recorded (actor, reason) before the command returns.
TEST_F(E2eTest, ManualRollbackFromEveryState) {
  ASSERT_OK(c_.StartFakes());
  struct Case {
    std::string name;
    std::vector<std::vector<std::string>> setup;
    std::string phase;  // before the rollback
  };
  const std::vector<Case> cases = {
      {"shadow", {}, "PHASE_SHADOW"},
      {"canary", {{"promote"}}, "PHASE_CANARY"},
      {"paused", {{"promote"}, {"pause", "--reason", "looking"}}, "PHASE_PAUSED"},
      {"promoted", {{"promote", "--to-full"}}, "PHASE_PROMOTED"},
      {"rolled_back", {{"promote"}, {"rollback", "--reason", "first"}}, "PHASE_ROLLED_BACK"},
  };
  for (const Case& tc : cases) {
    SCOPED_TRACE("from " + tc.name);
    c_.NewDataDir();
    ASSERT_OK(c_.StartSidecar());
    for (std::vector<std::string> args : tc.setup) {
      args.insert(args.end(), {"--actor", "setup"});
      testing::CommandResult r = Cli(args);
      EXPECT_EXIT_CODE(r, 0);
    }
    json before = State();
    ASSERT_EQ(before.value("phase", ""), tc.phase) << before.dump();
    json decisions_before = c_.Decisions();
    ASSERT_TRUE(decisions_before.is_array());
    const std::string reason = "e2e: rollback from " + tc.name;
    testing::CommandResult r =
        Cli({"rollback", "--reason", reason, "--actor", "e2e-operator"});
    json after = State();
    json decisions = c_.Decisions();
    if (tc.name == "rolled_back") {
      // Documented: an invalid transition is 409; the CLI exits 2 and
      // prints the server's message. Nothing changes.
      EXPECT_EXIT_CODE(r, 2);
      EXPECT_THAT(r.err, HasSubstr("already rolled back"));
      EXPECT_THAT(r.err, HasSubstr("HTTP 409"));
      EXPECT_EQ(after, before);
      EXPECT_EQ(decisions, decisions_before);
    } else {
      EXPECT_EXIT_CODE(r, 0);
      EXPECT_THAT(r.out, HasSubstr("rollback"));
      EXPECT_EQ(after.value("phase", ""), "PHASE_ROLLED_BACK");
      EXPECT_EQ(after.value("weight_basis_points", -1), 0);
      EXPECT_EQ(Int(after["version"]), Int(before["version"]) + 1);
      // Queried right after the CLI returned: no polling. The decision
      // must already be there.
      ASSERT_EQ(decisions.size(), decisions_before.size() + 1) << decisions.dump();
      const json& d = decisions.back();
      EXPECT_EQ(d.value("action", ""), "ACTION_ROLLBACK");
      EXPECT_EQ(d.value("actor", ""), "e2e-operator");
      EXPECT_THAT(d.value("reason", ""), HasSubstr(reason));
      EXPECT_EQ(d["from"].value("phase", ""), tc.phase);
      EXPECT_EQ(d["to"].value("phase", ""), "PHASE_ROLLED_BACK");
      EXPECT_EQ(d["to"], after);
    }
    // Whatever happened, live traffic now all goes to production.
    std::map<std::string, std::string> arms = SendMany(c_, Users("rb-user-", 40));
    EXPECT_EQ(CountArm(arms, "production"), 40);
    c_.KillSidecar();
  }
}

// ---------------------------------------------------------------- 3 ----

// Feedback reaches the judge's health windows through both paths: the
// admin API (202) and Envoy (a POST to /understudy/feedback answered by the
// sidecar with 204), also when it arrives before its request.
TEST_F(E2eTest, FeedbackThroughBothPathsReachesTheJudge) {
  ASSERT_OK(c_.StartFakes());
  ASSERT_OK(c_.StartSidecar());
  testing::CommandResult w = Cli({"set-weight", "100", "--actor", "e2e-operator"});
  EXPECT_EXIT_CODE(w, 0);
  ASSERT_EQ(State().value("weight_basis_points", -1), 10000);

  std::vector<std::string> ids;
  for (int i = 0; i < 5; ++i) {
    std::string id = envoy_driver::NewRequestId();
    absl::StatusOr<DriverResult> r = c_.Send(absl::StrCat("fb-user-", i), id);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200);
    EXPECT_EQ(r->cluster, "candidate");
    EXPECT_THAT(r->violations, ::testing::IsEmpty());
    ids.push_back(id);
  }
  auto health = [&](const char* arm) { return c_.Rollout()["health"][arm]; };
  ASSERT_TRUE(PollUntil(absl::Seconds(15), [&] { return Int(health("candidate")["requests"]) >= 5; }))
      << c_.Rollout().dump();

  // (a) the admin API.
  const std::vector<std::pair<std::string, std::string>> admin_scores = {
      {ids[0], "1"}, {ids[1], "0.5"}, {ids[2], "\"up\""}};
  for (const auto& [id, score] : admin_scores) {
    HttpReply r = c_.Admin("POST", "/v1/feedback",
                           absl::StrCat(R"({"request_id":")", id, R"(","score":)", score, "}"));
    EXPECT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.Json(), json({{"accepted", true}}));
  }
  // (b) through Envoy: answered by the sidecar, never reaches a model.
  for (int i = 3; i < 5; ++i) {
    absl::StatusOr<DriverResult> r =
        c_.SendFeedback(absl::StrCat(R"({"request_id":")", ids[i], R"(","score":0})"));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 204) << r->body;
    EXPECT_TRUE(r->immediate_response);
    EXPECT_THAT(r->violations, ::testing::IsEmpty());
  }
  // Scores 1, 0.5, 1, 0, 0.
  ASSERT_TRUE(PollUntil(absl::Seconds(15),
                        [&] { return Int(health("candidate")["feedback_count"]) == 5; }))
      << c_.Rollout()["health"].dump();
  EXPECT_NEAR(health("candidate")["satisfaction_mean"].get<double>(), 2.5 / 5, 1e-9);
  EXPECT_EQ(Int(health("production")["feedback_count"]), 0);

  // Feedback for a request the sidecar has not seen yet: accepted, held,
  // joined when the request arrives.
  const std::string late = envoy_driver::NewRequestId();
  HttpReply early = c_.Admin("POST", "/v1/feedback",
                             absl::StrCat(R"({"request_id":")", late, R"(","score":1})"));
  EXPECT_EQ(early.status, 202) << early.body;
  EXPECT_EQ(Int(health("candidate")["feedback_count"]), 5) << "joined before its request existed";
  absl::StatusOr<DriverResult> r = c_.Send("fb-user-late", late);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->cluster, "candidate");
  ASSERT_TRUE(PollUntil(absl::Seconds(15),
                        [&] { return Int(health("candidate")["feedback_count"]) == 6; }))
      << c_.Rollout()["health"].dump();
  EXPECT_NEAR(health("candidate")["satisfaction_mean"].get<double>(), 3.5 / 6, 1e-9);
  EXPECT_EQ(Int(health("production")["feedback_count"]), 0);
}

// With feedback.signing_key_file, the real sidecar hands every answer a
// feedback token, JSON and SSE, on both arms; feedback through Envoy counts
// only with its own answer's token (403 and counted otherwise), and the
// admin API needs none.
TEST_F(E2eTest, SignedFeedbackRatesOnlyTheAnswerItCameWith) {
  ASSERT_OK(c_.StartFakes());
  SidecarKnobs knobs;
  knobs.feedback_signing_key = "e2e-feedback-key-0123456789abcdef0123456789";
  ASSERT_OK(c_.StartSidecar(knobs));
  EXPECT_EXIT_CODE(Cli({"set-weight", "50", "--actor", "e2e-operator"}), 0);

  auto token_of = [](const DriverResult& r) {
    for (const auto& [k, v] : r.response_headers) {
      if (k == "x-understudy-feedback-token") return v;
    }
    return std::string();
  };
  std::vector<DriverResult> answers;
  std::set<std::string> clusters;
  for (int i = 0; i < 12; ++i) {
    envoy_driver::HttpRequest req;
    req.headers = {{"content-type", "application/json"}, {"x-user-id", absl::StrCat("tok-", i)}};
    req.body_chunks = {absl::StrCat(R"({"model":"gpt-4o","stream":)", i % 2 ? "true" : "false",
                                    R"(,"messages":[{"role":"user","content":"hi )", i, R"("}]})")};
    absl::StatusOr<DriverResult> r = c_.SendRequest(req);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->status, 200) << r->body;
    EXPECT_THAT(r->violations, ::testing::IsEmpty());
    EXPECT_THAT(token_of(*r), ::testing::StartsWith("v1.")) << "answer " << i;
    clusters.insert(r->cluster);
    answers.push_back(*std::move(r));
  }
  EXPECT_EQ(clusters, (std::set<std::string>{"candidate", "production"}));
  auto feedback = [&](const DriverResult& answer, const std::string& token) {
    absl::StatusOr<DriverResult> r = c_.SendFeedback(
        absl::StrCat(R"({"request_id":")", answer.request_id, R"(","score":1})"), token);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->status : 0;
  };
  EXPECT_EQ(feedback(answers[0], ""), 403);
  EXPECT_EQ(feedback(answers[0], token_of(answers[1])), 403);
  EXPECT_EQ(feedback(answers[0], token_of(answers[0])), 204);
  EXPECT_EQ(feedback(answers[1], token_of(answers[1])), 204);
  EXPECT_EQ(feedback(answers[1], token_of(answers[1])), 409);  // the first score wins
  HttpReply admin = c_.Admin("POST", "/v1/feedback",
                             absl::StrCat(R"({"request_id":")", answers[2].request_id,
                                          R"(","score":0})"));
  EXPECT_EQ(admin.status, 202) << admin.body;
  ASSERT_TRUE(PollUntil(absl::Seconds(15), [&] {
    const json h = c_.Rollout()["health"];
    return Int(h["production"]["feedback_count"]) + Int(h["candidate"]["feedback_count"]) == 3;
  })) << c_.Rollout()["health"].dump();
  HttpReply metrics = c_.Admin("GET", "/metrics");
  EXPECT_THAT(metrics.body,
              ::testing::HasSubstr("understudy_feedback_rejected_total{reason=\"bad_token\"} 2"));

  // Rotating the key (docs/operations.md, "Rotating the key"): restarted
  // with a new signing key and the old one to verify, the sidecar takes
  // tokens handed out before the restart and signs new answers with the
  // new key; without the old key, the old tokens are refused.
  const std::string old_key = knobs.feedback_signing_key;
  knobs.feedback_signing_key = "e2e-feedback-key-rotated-0123456789abcdef";
  knobs.feedback_verify_key = old_key;
  ASSERT_TRUE(c_.StopSidecar().has_value());
  ASSERT_OK(c_.StartSidecar(knobs));
  EXPECT_EQ(feedback(answers[3], token_of(answers[3])), 204) << "an old key's token";
  envoy_driver::HttpRequest req;
  req.headers = {{"content-type", "application/json"}, {"x-user-id", "tok-rotated"}};
  req.body_chunks = {R"({"model":"gpt-4o","messages":[{"role":"user","content":"again"}]})"};
  absl::StatusOr<DriverResult> fresh = c_.SendRequest(req);
  ASSERT_OK(fresh);
  ASSERT_EQ(fresh->status, 200) << fresh->body;
  knobs.feedback_verify_key.clear();
  ASSERT_TRUE(c_.StopSidecar().has_value());
  ASSERT_OK(c_.StartSidecar(knobs));
  EXPECT_EQ(feedback(answers[4], token_of(answers[4])), 403) << "the old key is gone";
  EXPECT_EQ(feedback(*fresh, token_of(*fresh)), 204) << "signed with the new key";
}

// ---------------------------------------------------------------- 4 ----

// A candidate that never answers must not slow production down: shadow
// calls are off the production path, bounded in flight and in queue.
//
// Design: two complete set-ups side by side (each: production fake,
// candidate fake, sidecar), identical except that the second candidate is
// hung (POST /control {"hang":true}: every shadow call waits until the
// 500 ms shadow timeout). Production requests alternate between them one
// by one, so whatever else loads the machine hits both series alike; each
// series is N sequential requests (fake latency 20 ms, sigma 0).
TEST_F(E2eTest, HungCandidateLeavesProductionTimingsUnchanged) {
  FakeOptions production;
  production.latency_ms = 20;
  FakeOptions candidate;
  candidate.latency_ms = 20;
  candidate.threads = 256;  // each hung request holds a fake-model thread
  SidecarKnobs knobs;
  knobs.sample_rate = 1.0;
  knobs.shadow_timeout = "500ms";
  knobs.shadow_max_concurrency = 4;
  knobs.shadow_max_queue = 8;
  Cluster& healthy = c_;
  Cluster hung;
  for (Cluster* c : {&healthy, &hung}) {
    ASSERT_OK(c->StartFakes(production, candidate));
    ASSERT_OK(c->StartSidecar(knobs));
    json state = c->Rollout()["state"];
    ASSERT_EQ(state.value("phase", ""), "PHASE_SHADOW");
    ASSERT_EQ(state.value("weight_basis_points", -1), 0);
  }
  HttpReply k = hung.CandidateControl(R"({"hang":true})");
  ASSERT_EQ(k.status, 200) << k.body << k.error;

  int problems = 0;
  std::string first_problem;
  auto one = [&](Cluster& c, int i, std::vector<double>* latencies_ms) {
    absl::StatusOr<DriverResult> r = c.Send(absl::StrCat("timing-user-", i));
    if (!r.ok() || r->status != 200 || r->cluster != "production" || !r->violations.empty() ||
        r->failed_open) {
      if (problems++ == 0) {
        first_problem = r.ok() ? absl::StrCat("status ", r->status, " cluster ", r->cluster,
                                              " failed_open ", r->failed_open, " violations ",
                                              r->violations.size())
                               : r.status().ToString();
      }
      return;
    }
    if (latencies_ms != nullptr) latencies_ms->push_back(absl::ToDoubleMilliseconds(r->latency));
  };
  for (int i = 0; i < 20; ++i) {  // warm-up: connections, caches
    one(healthy, i, nullptr);
    one(hung, i, nullptr);
  }

  // The bound on p99: 5% of the healthy p99 plus 2 ms absolute slack. With a
  // ~20 ms upstream 5% is ~1 ms, below the scheduling noise of a shared
  // 2-core test machine; the slack absorbs small noise. Even so, p99 of a
  // few hundred samples is the 3rd-4th largest value, and one preempted
  // request moves it by 10-30 ms on a loaded machine (measured: p99 ratio
  // 0.78..1.27 between identical series). So a round that misses the bound
  // is measured again, at most kRounds times. A shadow path that blocked
  // production would add the 500 ms shadow timeout (or at least a 20 ms
  // candidate call) to every request and fail every round; the median
  // check below, which is stable, is not retried.
  constexpr int kRounds = 3;
  constexpr int kPerRound = 250;
  int user = 1000;
  bool within = false;
  for (int round = 1; round <= kRounds && !within; ++round) {
    std::vector<double> a_ms, b_ms;
    for (int i = 0; i < kPerRound; ++i, ++user) {
      // Which one goes first alternates too (no order bias).
      if (i % 2 == 0) {
        one(healthy, user, &a_ms);
        one(hung, user, &b_ms);
      } else {
        one(hung, user, &b_ms);
        one(healthy, user, &a_ms);
      }
    }
    ASSERT_EQ(problems, 0) << first_problem;
    ASSERT_EQ(a_ms.size(), static_cast<size_t>(kPerRound));
    ASSERT_EQ(b_ms.size(), static_cast<size_t>(kPerRound));
    const double a_p50 = Percentile(a_ms, 0.5), b_p50 = Percentile(b_ms, 0.5);
    const double a_p99 = Percentile(a_ms, 0.99), b_p99 = Percentile(b_ms, 0.99);
    std::printf("round %d: production latency, healthy candidate: p50 %.2f ms p95 %.2f ms "
                "p99 %.2f ms max %.2f ms (n=%zu)\n",
                round, a_p50, Percentile(a_ms, 0.95), a_p99, Percentile(a_ms, 1.0), a_ms.size());
    std::printf("round %d: production latency, hung candidate:    p50 %.2f ms p95 %.2f ms "
                "p99 %.2f ms max %.2f ms (n=%zu)\n",
                round, b_p50, Percentile(b_ms, 0.95), b_p99, Percentile(b_ms, 1.0), b_ms.size());
    std::printf("round %d: p99 ratio hung/healthy %.3f, bound %.2f ms\n", round, b_p99 / a_p99,
                1.05 * a_p99 + 2.0);
    std::fflush(stdout);
    EXPECT_LE(b_p50, 1.05 * a_p50 + 2.0) << "median: healthy " << a_p50 << " ms, hung " << b_p50;
    within = b_p99 <= 1.05 * a_p99 + 2.0;
  }
  EXPECT_TRUE(within) << "hung-candidate p99 above 1.05 x healthy p99 + 2 ms in all " << kRounds
                      << " rounds";

  // The hang really happened, and the hung set-up shed its shadow calls
  // (timed out in flight, dropped when the queue was full); the healthy
  // one completed its shadow calls without a failure.
  json stats = Http("GET", hung.candidate_url() + "/stats").Json();
  EXPECT_GT(stats.value("hangs", 0), 0) << stats.dump();
  auto shadow = [](Cluster& c, const char* outcome) {
    return MetricValue(c.Admin("GET", "/metrics").body, "understudy_shadow_requests_total",
                       absl::StrCat("outcome=\"", outcome, "\""));
  };
  std::printf("shadow calls, healthy: completed %.0f failed %.0f; hung: timed_out %.0f dropped "
              "%.0f\n",
              shadow(healthy, "completed"), shadow(healthy, "failed"), shadow(hung, "timed_out"),
              shadow(hung, "dropped"));
  EXPECT_GT(shadow(hung, "timed_out"), 0);
  EXPECT_GT(shadow(hung, "dropped"), 0);
  EXPECT_GT(shadow(healthy, "completed"), 0);
  EXPECT_EQ(shadow(healthy, "failed"), 0);
  (void)hung.CandidateControl(R"({"hang":false})");
}

// ---------------------------------------------------------------- 5 ----

// Bad admin requests get the documented status and a JSON error naming the
// problem, and change nothing.
TEST_F(E2eTest, BadAdminRequestsChangeNothing) {
  ASSERT_OK(c_.StartFakes());
  ASSERT_OK(c_.StartSidecar());
  testing::CommandResult p = Cli({"promote", "--actor", "e2e-operator"});
  EXPECT_EXIT_CODE(p, 0);
  const json before = c_.Rollout();
  const json state_before = before["state"];
  const json decisions_before = c_.Decisions();
  ASSERT_EQ(decisions_before.size(), 1u);

  const std::string bearer = "Authorization: Bearer " + c_.token();
  const std::string ct = "Content-Type: application/json";
  struct Case {
    std::string name;
    std::string method;
    std::string path;
    std::string body;
    std::vector<std::string> headers;
    long status;
    std::string code;
    std::string message;  // a substring of error.message
  };
  const std::string huge = absl::StrCat(R"({"actor":")", std::string(200 * 1024, 'x'), R"("})");
  const std::vector<Case> cases = {
      {"no token", "POST", "/v1/rollout/promote", "{}", {ct}, 401, "UNAUTHENTICATED",
       "Authorization: required"},
      {"no token rollback", "POST", "/v1/rollout/rollback", R"({"reason":"x"})", {ct}, 401,
       "UNAUTHENTICATED", "Authorization"},
      {"wrong token", "POST", "/v1/rollout/rollback", R"({"reason":"x"})",
       {ct, "Authorization: Bearer " + c_.token() + "x"}, 401, "UNAUTHENTICATED", "wrong token"},
      {"basic auth", "POST", "/v1/rollout/weight", R"({"percent":100})",
       {ct, "Authorization: Basic YWRtaW46YWRtaW4="}, 401, "UNAUTHENTICATED", "Bearer"},
      {"malformed JSON", "POST", "/v1/rollout/pause", R"({"reason": )", {ct, bearer}, 400,
       "INVALID_ARGUMENT", "invalid JSON"},
      {"not an object", "POST", "/v1/rollout/promote", "[1,2]", {ct, bearer}, 400,
       "INVALID_ARGUMENT", "must be a JSON object"},
      {"rollback without reason", "POST", "/v1/rollout/rollback", R"({"actor":"e2e"})",
       {ct, bearer}, 400, "INVALID_ARGUMENT", "reason"},
      {"set-weight 150", "POST", "/v1/rollout/weight", R"({"percent":150})", {ct, bearer}, 400,
       "INVALID_ARGUMENT", "percent: must be in 0..100"},
      {"set-weight string", "POST", "/v1/rollout/weight", R"({"percent":"50"})", {ct, bearer},
       400, "INVALID_ARGUMENT", "percent"},
      {"unknown field", "POST", "/v1/rollout/promote", R"({"to_ful":true})", {ct, bearer}, 400,
       "INVALID_ARGUMENT", "to_ful: unknown field"},
      {"unknown route", "GET", "/v1/rollout/nope", "", {}, 404, "NOT_FOUND", "/v1/rollout/nope"},
      {"unknown POST route", "POST", "/v1/nope", "{}", {ct, bearer}, 404, "NOT_FOUND",
       "/v1/nope"},
      {"GET on a POST route", "GET", "/v1/rollout/promote", "", {}, 405, "METHOD_NOT_ALLOWED",
       "use POST"},
      {"POST on a GET route", "POST", "/v1/rollout", "{}", {ct, bearer}, 405,
       "METHOD_NOT_ALLOWED", "use GET"},
      {"huge body", "POST", "/v1/rollout/promote", huge, {ct, bearer}, 413, "PAYLOAD_TOO_LARGE",
       "max_body_bytes"},
      {"feedback score 2", "POST", "/v1/feedback", R"({"request_id":"r1","score":2})",
       {ct, bearer}, 400, "INVALID_ARGUMENT", "score: must be in [0,1]"},
      {"feedback score word", "POST", "/v1/feedback", R"({"request_id":"r1","score":"meh"})",
       {ct, bearer}, 400, "INVALID_ARGUMENT", "score"},
      {"feedback without id", "POST", "/v1/feedback", R"({"score":1})", {ct, bearer}, 400,
       "INVALID_ARGUMENT", "request_id"},
      {"bad limit", "GET", "/v1/decisions?limit=0", "", {bearer}, 400, "INVALID_ARGUMENT",
       "limit"},
      {"unknown query", "GET", "/v1/rollout?verbose=1", "", {bearer}, 400, "INVALID_ARGUMENT",
       "verbose"},
      // Reads need the token too (stored comparisons and decisions are data).
      {"GET without token", "GET", "/v1/comparisons", "", {}, 401, "UNAUTHENTICATED",
       "Authorization: required"},
      {"GET with a wrong token", "GET", "/v1/decisions", "",
       {"Authorization: Bearer " + c_.token() + "x"}, 401, "UNAUTHENTICATED", "wrong token"},
  };
  for (const Case& tc : cases) {
    SCOPED_TRACE(tc.name);
    HttpReply r = Http(tc.method, c_.admin_url() + tc.path, tc.body, tc.headers);
    EXPECT_EQ(r.status, tc.status) << r.body << " " << r.error;
    json j = r.Json();
    ASSERT_TRUE(j.is_object() && j.contains("error") && j["error"].is_object()) << r.body;
    EXPECT_EQ(j["error"].value("code", ""), tc.code) << r.body;
    EXPECT_THAT(j["error"].value("message", ""), HasSubstr(tc.message)) << r.body;
    if (tc.status == 401) {
      EXPECT_THAT(r.headers, HasSubstr("WWW-Authenticate: Bearer"));
    }
    if (tc.status == 405) {
      EXPECT_THAT(r.headers, HasSubstr("Allow: "));
    }
    // The token never comes back in an error.
    EXPECT_THAT(r.body, ::testing::Not(HasSubstr(c_.token())));
  }

  const json after = c_.Rollout();
  EXPECT_EQ(Int(after["state"]["version"]), Int(state_before["version"]));
  EXPECT_EQ(after["state"], state_before);
  EXPECT_EQ(c_.Decisions(), decisions_before);
  EXPECT_EQ(Int(after["health"]["production"]["feedback_count"]), 0);
  EXPECT_EQ(Int(after["health"]["candidate"]["feedback_count"]), 0);
  // And the API still works: a good command after all that.
  HttpReply ok = c_.Admin("POST", "/v1/rollout/pause", R"({"actor":"e2e","reason":"after"})");
  EXPECT_EQ(ok.status, 200) << ok.body;
  EXPECT_EQ(Int(State()["version"]), Int(state_before["version"]) + 1);
}

// ---------------------------------------------------------------- 6 ----

// The CLI's contract: JSON output parses, --help works everywhere, exit 1
// when the admin API cannot be reached, exit 2 on bad usage.
TEST_F(E2eTest, CliContract) {
  ASSERT_OK(c_.StartFakes());
  ASSERT_OK(c_.StartSidecar());

  testing::CommandResult status = Cli({"status", "-o", "json"});
  EXPECT_EXIT_CODE(status, 0);
  json j = json::parse(status.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << status.out;
  EXPECT_EQ(j["state"].value("phase", ""), "PHASE_SHADOW");
  EXPECT_EQ(j["stages"], json({0, 1, 5, 25, 50, 100}));
  EXPECT_TRUE(j["health"].is_object());

  testing::CommandResult text = Cli({"status"});
  EXPECT_EXIT_CODE(text, 0);
  EXPECT_THAT(text.out, HasSubstr("phase:         shadow"));

  testing::CommandResult help = Cli({"--help"}, false);
  EXPECT_EXIT_CODE(help, 0);
  for (const char* cmd :
       {"status", "promote", "pause", "resume", "rollback", "set-weight", "diffs", "report"}) {
    SCOPED_TRACE(cmd);
    EXPECT_THAT(help.out, HasSubstr(cmd));
    testing::CommandResult h = Cli({cmd, "--help"}, false);
    EXPECT_EXIT_CODE(h, 0);
    EXPECT_THAT(h.out, HasSubstr("--admin"));
  }

  // A port nothing listens on: bind one, then close it.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string dead = absl::StrCat("http://127.0.0.1:", ntohs(addr.sin_port));
  close(fd);
  for (std::vector<std::string> args :
       {std::vector<std::string>{"status"}, {"rollback", "--reason", "x"}}) {
    args.insert(args.end(), {"--admin", dead});
    testing::CommandResult r = Cli(args, false);
    EXPECT_EXIT_CODE(r, 1);
    EXPECT_THAT(r.err, HasSubstr("cannot reach the admin API at " + dead));
  }

  // Bad usage: exit 2, nothing sent.
  const int64_t version = Int(State()["version"]);
  for (const std::vector<std::string>& args : std::vector<std::vector<std::string>>{
           {"status", "--bogus"},
           {"status", "-o", "yaml"},
           {"set-weight", "150"},
           {"rollback"},  // --reason is required
           {"no-such-command"},
           {"diffs", "--limit", "0"},
       }) {
    SCOPED_TRACE(args[0] + " " + (args.size() > 1 ? args[1] : ""));
    testing::CommandResult r = Cli(args);
    EXPECT_EXIT_CODE(r, 2);
  }
  // A 4xx from the server is exit 2 as well, with the server's message.
  testing::CommandResult resume = Cli({"resume", "--actor", "e2e"});
  EXPECT_EXIT_CODE(resume, 2);
  EXPECT_THAT(resume.err, HasSubstr("not paused"));
  // A bad token: exit 2 (401).
  const std::string bad_token = testing::MakeTempDir("e2e-token") + "/token";
  std::ofstream(bad_token) << "not-the-token\n";
  testing::CommandResult denied = Cli({"promote", "--actor", "e2e", "--admin", c_.admin_url(),
                                       "--token-file", bad_token},
                                      false);
  EXPECT_EXIT_CODE(denied, 2);
  EXPECT_THAT(denied.err, HasSubstr("HTTP 401"));
  EXPECT_EQ(Int(State()["version"]), version);
  // Reads need the token too.
  testing::CommandResult unread =
      Cli({"status", "--admin", c_.admin_url(), "--token-file", bad_token}, false);
  EXPECT_EXIT_CODE(unread, 2);
  EXPECT_THAT(unread.err, HasSubstr("HTTP 401"));

  // A token source that yields no token is a config error naming the key,
  // not a sidecar without auth: check-config exits 2.
  const std::string config = testing::MakeTempDir("e2e-config") + "/understudy.yaml";
  std::ofstream(config) << "admin:\n  token_env: UNDERSTUDY_E2E_NO_SUCH_TOKEN_VARIABLE\n";
  testing::CommandResult check = Cli({"check-config", config}, false);
  EXPECT_EXIT_CODE(check, 2);
  EXPECT_THAT(check.err, HasSubstr("admin.token_env: $UNDERSTUDY_E2E_NO_SUCH_TOKEN_VARIABLE is "
                                   "unset or empty"));
}


// ---------------------------------------------------------------- 7 ----

// The canary arm reaches the candidate model: its requests carry the
// candidate's model name and key (the fakes, like real providers, refuse
// any other), the client's key never reaches the candidate, and production's
// requests go as the client sent them. No key is ever stored.
TEST_F(E2eTest, CanaryArmReachesTheCandidateWithItsModelAndKey) {
  ASSERT_OK(c_.StartFakes());
  ASSERT_OK(c_.StartSidecar());
  testing::CommandResult w = Cli({"set-weight", "50", "--actor", "e2e-operator"});
  EXPECT_EXIT_CODE(w, 0);
  int candidate = 0, production = 0;
  for (int i = 0; i < 60; ++i) {
    absl::StatusOr<DriverResult> r = c_.Send(absl::StrCat("canary-user-", i));
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_EQ(r->status, 200) << r->cluster << ": " << r->body;
    EXPECT_TRUE(r->violations.empty()) << r->violations.front();
    json answer = json::parse(r->body, nullptr, false);
    std::string auth;
    for (const auto& [k, v] : r->upstream_headers) {
      if (k == "authorization") auth = v;
    }
    if (r->cluster == "candidate") {
      ++candidate;
      EXPECT_EQ(answer.value("model", ""), "gpt-5-mini");
      EXPECT_EQ(auth, "Bearer " + c_.candidate_key());
    } else {
      ++production;
      EXPECT_EQ(answer.value("model", ""), "gpt-4o");
      EXPECT_EQ(auth, "Bearer " + c_.production_key());
    }
  }
  EXPECT_GT(candidate, 5);
  EXPECT_GT(production, 5);
  json stats = Http("GET", c_.candidate_url() + "/stats").Json();
  EXPECT_EQ(stats.value("model_not_found", -1), 0) << stats.dump();
  EXPECT_EQ(stats.value("unauthorized", -1), 0) << stats.dump();
  EXPECT_GE(stats.value("served", 0), candidate);
  // Production's requests needed a key swap only; the candidate's also a body.
  const std::string metrics = c_.Admin("GET", "/metrics").body;
  EXPECT_GE(MetricValue(metrics, "understudy_requests_shaped_total", "body=\"shaped\""), 60);
  EXPECT_EQ(MetricValue(metrics, "understudy_requests_shaped_total", "body=\"unchanged\""), 0);

  // Nothing the sidecar stored or exports carries either key. A SIGTERM,
  // not a SIGKILL: the answers above were waited for, not their storage,
  // and a stop drains the exchange queue into the store first.
  EXPECT_EQ(c_.StopSidecar(), std::optional<int>(0));
  absl::StatusOr<testing::CommandResult> exported =
      c_.Cli({"export", "--data-dir", c_.data_dir(), "--kind", "exchanges"},
             /*admin_flags=*/false);
  ASSERT_TRUE(exported.ok()) << exported.status();
  const std::string& out = exported->out;  // bytes fields are base64 in the JSON mapping
  EXPECT_NE(out.find(R"("arm":"ARM_CANDIDATE","source":"SOURCE_LIVE")"), std::string::npos);
  for (const std::string& secret :
       {std::string(R"("key":"authorization")"), std::string(R"("key":"x-api-key")"),
        c_.candidate_key(), c_.production_key()}) {
    EXPECT_EQ(out.find(secret), std::string::npos) << secret << " is in the export";
  }
}

}  // namespace
}  // namespace understudy::e2e
