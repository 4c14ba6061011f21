// Fleet mode end to end (docs/fleet.md): a real etcd on loopback ports,
// three `understudy serve` processes sharing one pair of fake models, each
// fed by its own Envoy-faithful driver (one Envoy pod each). One rollout:
// every replica contributes evidence, a regression rolls every replica
// back, the leader dies by SIGKILL and another takes over, etcd goes away
// and comes back, and a command sent to a follower moves the fleet.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <functional>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/e2e_cluster.h"
#include "tests/support/etcd_process.h"

namespace understudy::e2e {
namespace {

int64_t JsonInt(const json& j) {  // the proto JSON mapping prints int64 as a string
  if (j.is_number_integer()) return j.get<int64_t>();
  if (j.is_string()) return std::stoll(j.get<std::string>());
  return 0;
}

bool WaitFor(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(50));
  }
  return done();
}

// A stage at 50% that never promotes on its own: the rollout stays there
// until the judge rolls it back (or a test moves it).
std::string FleetPlan() {
  return R"(rollout:
  tick_interval: 500ms
  windows: {recent: 20s, slots: 10}
  judge: {stratum: 3s, min_clusters: 20}
  stages:
    - {percent: 10, min_bake: 3s, min_samples: 150, max_bake: 10m}
    - {percent: 50, min_bake: 3s, min_samples: 100000000, max_bake: 30m}
    - {percent: 100}
  gates:
    error_rate: {enabled: true, max_abs_increase: 0.02}
    latency_p95: {enabled: false}
    ttft_p95: {enabled: false}
    satisfaction: {enabled: false}
    cost_per_request: {enabled: false}
    agreement: {enabled: false}
    critical: {enabled: true})";
}

class FleetE2eTest : public E2eFixture {
 protected:
  void SetUp() override {
    E2eFixture::SetUp();
    absl::StatusOr<std::unique_ptr<testing::EtcdProcess>> e = testing::EtcdProcess::Start();
    ASSERT_OK(e);
    etcd_ = *std::move(e);
  }
  void TearDown() override {
    for (size_t i = 0; i < replicas_.size(); ++i) {
      if (HasFailure()) {
        std::fprintf(stderr, "--- replica %zu stderr ---\n%s\n", i,
                     replicas_[i]->SidecarErrors().c_str());
      }
    }
    extra_.clear();
    E2eFixture::TearDown();
  }

  // StartFleet starts the fakes (on c_) and three sidecars joined to etcd.
  void StartFleet(const std::string& rollout_yaml, const FakeOptions& fake,
                  double sample_rate = 0) {
    ASSERT_OK(c_.StartFakes(fake, fake));
    replicas_ = {&c_};
    for (int i = 0; i < 2; ++i) {
      extra_.push_back(std::make_unique<Cluster>());
      ASSERT_OK(extra_.back()->UseFakesOf(c_));
      replicas_.push_back(extra_.back().get());
    }
    knobs_.sample_rate = sample_rate;
    knobs_.rollout_yaml = rollout_yaml;
    knobs_.extra_yaml = absl::StrCat(R"(coordination:
  etcd:
    endpoints: [")", etcd_->endpoint(), R"("]
    prefix: /understudy/e2e/
    lease_ttl: 2s
    request_timeout: 1s
)");
    for (Cluster* r : replicas_) ASSERT_OK(r->StartSidecar(knobs_));
    ASSERT_TRUE(WaitFor([&] { return LeaderIndex() >= 0; }, absl::Seconds(10)))
        << "no replica leads";
  }

  json Part(Cluster* r, const char* key) {
    json j = r->Rollout();
    return j.is_object() && j.contains(key) ? j[key] : json::object();
  }
  json Fleet(Cluster* r) { return Part(r, "fleet"); }
  json StateOf(Cluster* r) { return Part(r, "state"); }

  // The index of the one live replica that says it leads (-1: none, or
  // more than one, which must never be seen for long).
  int LeaderIndex(const std::set<int>& dead = {}) {
    int leader = -1;
    for (int i = 0; i < static_cast<int>(replicas_.size()); ++i) {
      if (dead.count(i) != 0) continue;
      if (Fleet(replicas_[i]).value("is_leader", false)) {
        if (leader >= 0) return -1;
        leader = i;
      }
    }
    return leader;
  }

  // Every live replica routes by `weight` basis points.
  bool AllAt(int weight, const std::set<int>& dead = {}) {
    for (int i = 0; i < static_cast<int>(replicas_.size()); ++i) {
      if (dead.count(i) != 0) continue;
      if (StateOf(replicas_[i]).value("weight_basis_points", -1) != weight) return false;
    }
    return true;
  }

  // How many rollbacks `r`'s own decision log holds. A replica adopts a
  // state before it writes the decision that made it (coordination/fleet.cc,
  // ApplyCommit), so a test that checks the log waits for the log, not for
  // the weight.
  int RollbacksIn(Cluster* r) {
    int rollbacks = 0;
    for (const json& d : r->Decisions()) rollbacks += d.value("action", "") == "ACTION_ROLLBACK";
    return rollbacks;
  }
  bool AllLogged(int rollbacks) {
    for (Cluster* r : replicas_) {
      if (RollbacksIn(r) != rollbacks) return false;
    }
    return true;
  }

  std::unique_ptr<testing::EtcdProcess> etcd_;
  std::vector<std::unique_ptr<Cluster>> extra_;
  std::vector<Cluster*> replicas_;
  SidecarKnobs knobs_;
};

// Traffic from a population of users with heavy-tailed activity, spread
// over the replicas as a load balancer would (any user on any pod).
class FleetTraffic {
 public:
  FleetTraffic(std::vector<Cluster*> replicas, std::set<int>* dead, int users, int threads)
      : replicas_(std::move(replicas)), dead_(dead) {
    for (int t = 0; t < threads; ++t) {
      threads_.emplace_back([this, users, t] {
        std::mt19937_64 rng(77 + t);
        std::uniform_real_distribution<double> unit(0.0, 1.0);
        int64_t n = 0;
        while (!stop_.load()) {
          const int u = static_cast<int>(std::floor(std::pow(users + 1.0, unit(rng)))) - 1;
          const int pod = static_cast<int>((t + n++) % replicas_.size());
          if (dead_->count(pod) != 0) continue;
          absl::StatusOr<DriverResult> r = replicas_[pod]->Send(absl::StrCat("user-", u));
          if (r.ok() && r->status == 200) sent_.fetch_add(1);
        }
      });
    }
  }
  ~FleetTraffic() { Stop(); }
  void Stop() {
    stop_.store(true);
    for (std::thread& t : threads_) {
      if (t.joinable()) t.join();
    }
  }
  int64_t sent() const { return sent_.load(); }

 private:
  std::vector<Cluster*> replicas_;
  std::set<int>* dead_;  // read without a lock: set before traffic reaches that pod
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> sent_{0};
  std::vector<std::thread> threads_;
};

TEST_F(FleetE2eTest, OneRolloutAcrossThreeReplicasSurvivesItsLeaderAndRollsBackEverywhere) {
  FakeOptions fake;
  fake.latency_ms = 4;
  fake.ttft_ms = 1;
  fake.extra_args = {"--error-rate", "0.005"};
  StartFleet(FleetPlan(), fake);
  std::set<int> dead;
  FleetTraffic traffic(replicas_, &dead, 2000, 6);

  // The judge, on every replica's evidence, promotes 10% → 50%; every
  // replica routes by it.
  ASSERT_TRUE(WaitFor([&] { return AllAt(5000); }, absl::Minutes(3)))
      << StateOf(&c_).dump() << "\n" << c_.Rollout().value("health", json()).dump();
  const int leader = LeaderIndex();
  ASSERT_GE(leader, 0);
  for (int i = 0; i < 3; ++i) {
    const json f = Fleet(replicas_[i]);
    if (i == leader) {
      EXPECT_GT(JsonInt(f.value("deltas_merged", json())), 0) << f.dump();
    } else {
      EXPECT_GT(JsonInt(f.value("deltas_published", json())), 0) << f.dump();
      EXPECT_EQ(f.value("leader", ""), Fleet(replicas_[leader]).value("member", "")) << f.dump();
    }
  }
  // Sticky across pods: a user gets the same arm whichever replica serves.
  for (int u = 0; u < 40; ++u) {
    std::set<std::string> arms;
    for (Cluster* r : replicas_) {
      absl::StatusOr<DriverResult> res = r->Send(absl::StrCat("sticky-", u));
      ASSERT_OK(res);
      arms.insert(res->cluster);
    }
    EXPECT_EQ(arms.size(), 1u) << "user sticky-" << u;
  }

  // SIGKILL the leader mid-stage: another replica leads within the lease
  // TTL, at the same stage and weight.
  const int64_t version = JsonInt(StateOf(replicas_[leader]).value("version", json()));
  dead.insert(leader);
  replicas_[leader]->KillSidecar();
  const absl::Time killed = absl::Now();
  ASSERT_TRUE(WaitFor([&] { return LeaderIndex(dead) >= 0; }, absl::Seconds(10)));
  const absl::Duration takeover = absl::Now() - killed;
  EXPECT_LT(takeover, absl::Seconds(5)) << "lease_ttl is 2s";
  const int next = LeaderIndex(dead);
  EXPECT_NE(next, leader);
  EXPECT_EQ(JsonInt(StateOf(replicas_[next]).value("version", json())), version);
  EXPECT_TRUE(AllAt(5000, dead));

  // A regression in the candidate: every replica rolls back.
  ASSERT_EQ(c_.CandidateControl(R"({"error_rate":0.2})").status, 200);
  ASSERT_TRUE(WaitFor([&] { return AllAt(0, dead); }, absl::Minutes(2)))
      << StateOf(replicas_[next]).dump();
  EXPECT_EQ(StateOf(replicas_[next]).value("phase", ""), "PHASE_ROLLED_BACK");
  traffic.Stop();

  // The killed replica comes back and joins the fleet's state.
  replicas_[leader]->KillSidecar();
  ASSERT_OK(replicas_[leader]->StartSidecar(knobs_));
  dead.erase(leader);
  ASSERT_TRUE(WaitFor([&] { return AllAt(0) && AllLogged(1); }, absl::Seconds(10)));
  // Every replica's own decision log has each decision once.
  for (Cluster* r : replicas_) {
    std::set<int64_t> versions;
    for (const json& d : r->Decisions()) {
      const int64_t v = JsonInt(d.value("to", json()).value("version", json()));
      EXPECT_TRUE(versions.insert(v).second) << "decision " << v << " twice: " << d.dump();
    }
    EXPECT_EQ(RollbacksIn(r), 1);
  }
}

TEST_F(FleetE2eTest, EtcdAwayEveryoneKeepsTheWeightAndAFollowersCommandMovesTheFleet) {
  StartFleet("", FakeOptions{}, /*sample_rate=*/1.0);
  const int leader = LeaderIndex();
  ASSERT_GE(leader, 0);
  Cluster* follower = replicas_[(leader + 1) % 3];
  // Default plan (gates off): shadow first. A follower promotes the fleet.
  HttpReply r = follower->Admin("POST", "/v1/rollout/promote", R"({"actor":"e2e"})");
  ASSERT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(WaitFor([&] { return AllAt(100); }, absl::Seconds(1)))
      << "every replica applies the commit within a second";

  etcd_->Stop();
  ASSERT_TRUE(WaitFor([&] {
    for (Cluster* c : replicas_) {
      if (Fleet(c).value("etcd_reachable", true)) return false;
    }
    return true;
  }, absl::Seconds(15)));
  for (Cluster* c : replicas_) {
    json rollout = c->Rollout();
    EXPECT_EQ(rollout["state"].value("weight_basis_points", -1), 100) << "fail static";
    EXPECT_EQ(rollout["health"].value("hold_reason", ""), "HOLD_COORDINATION")
        << rollout["health"].dump();
    EXPECT_EQ(MetricValue(c->Admin("GET", "/metrics").body, "understudy_fleet_etcd_reachable", ""),
              0);
    absl::StatusOr<DriverResult> served = c->Send("while-etcd-is-away");
    ASSERT_OK(served);
    EXPECT_EQ(served->status, 200) << "traffic is served without etcd";
  }
  r = follower->Admin("POST", "/v1/rollout/rollback", R"({"actor":"e2e","reason":"x"})");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_TRUE(AllAt(100));

  ASSERT_OK(etcd_->Restart());
  ASSERT_TRUE(WaitFor([&] { return LeaderIndex() >= 0; }, absl::Seconds(20)));
  // The CLI against a follower: the fleet rolls back, once.
  absl::StatusOr<testing::CommandResult> cli =
      follower->Cli({"rollback", "--reason", "bad answers", "--actor", "e2e"});
  ASSERT_OK(cli);
  EXPECT_EQ(cli->exit_code, 0) << cli->out << cli->err;
  // A replica whose watch is still backing off from the outage (at most 2 s
  // between attempts, coordination/fleet.cc) catches up when it reconnects;
  // a leader elected says nothing about the others' watches.
  EXPECT_TRUE(WaitFor([&] { return AllAt(0) && AllLogged(1); }, absl::Seconds(10)));
  cli = replicas_[leader]->Cli({"rollback", "--reason", "again", "--actor", "e2e"});
  ASSERT_OK(cli);
  EXPECT_NE(cli->exit_code, 0) << "already rolled back: refused, as alone";
  for (Cluster* c : replicas_) EXPECT_EQ(RollbacksIn(c), 1);
}

}  // namespace
}  // namespace understudy::e2e
