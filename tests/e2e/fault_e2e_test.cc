// Faults from the outside (issue: hardening): the disk fills up under a
// running sidecar. Traffic must keep flowing (fail open), the judge must
// wait because it cannot persist decisions, status and /metrics must say
// so, and everything must come back by itself when space returns, with no
// acknowledged decision lost. Real processes as in e2e_test.cc, the data
// directory on a small tmpfs (skipped where mounting is not allowed).
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/e2e/e2e_cluster.h"

namespace understudy::e2e {
namespace {

// The hold reason in /v1/rollout ("" when the sidecar does not answer).
std::string HoldReason(Cluster& c) {
  json j = c.Rollout();
  if (!j.is_object() || !j.contains("health")) return "";
  return j["health"].value("hold_reason", "");
}

bool WaitFor(const std::function<bool()>& done, absl::Duration timeout) {
  const absl::Time end = absl::Now() + timeout;
  while (absl::Now() < end) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(100));
  }
  return done();
}

class FaultE2eTest : public E2eFixture {
 protected:
  void TearDown() override {
    c_.StopSidecar();
    if (!mount_.empty()) umount2(mount_.c_str(), MNT_DETACH);
    E2eFixture::TearDown();
  }
  std::string mount_;
};

// Fills the file system under `dir` until `leave` bytes are free, as
// another tenant of the disk (or the sidecar's own data) would; returns the
// filler's path. (Filling to the last byte races the sidecar's own writes:
// a write RocksDB starts with room and finishes without is the one case the
// store's reserve cannot catch; see docs/operations.md, "Disk full".)
std::string FillDisk(const std::string& dir, int64_t leave) {
  const std::string path = dir + "/filler";
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return path;
  std::vector<char> chunk(256 << 10, 'x');
  for (;;) {
    struct statvfs st;
    if (statvfs(dir.c_str(), &st) != 0) break;
    const int64_t free_bytes = static_cast<int64_t>(st.f_bavail) * static_cast<int64_t>(st.f_frsize);
    if (free_bytes <= leave) break;
    const size_t n = static_cast<size_t>(std::min<int64_t>(chunk.size(), free_bytes - leave));
    if (std::fwrite(chunk.data(), 1, n, f) != n || std::fflush(f) != 0) break;
  }
  std::fclose(f);
  return path;
}

TEST_F(FaultE2eTest, DiskFullKeepsServingPausesTheJudgeAndRecoversByItself) {
  mount_ = testing::MakeTempDir("understudy-tmpfs");
  if (mount("tmpfs", mount_.c_str(), "tmpfs", 0, "size=48m") != 0) {
    const std::string why = std::strerror(errno);
    mount_.clear();
    GTEST_SKIP() << "cannot mount a tmpfs here (" << why << "); run as root to test a full disk";
  }
  c_.UseDataDir(mount_ + "/db");
  ASSERT_OK(c_.StartFakes());
  ASSERT_OK(c_.StartSidecar());
  HttpReply r = c_.Admin("POST", "/v1/rollout/promote", R"({"actor":"e2e"})");
  ASSERT_EQ(r.status, 200) << r.body;  // acknowledged: version 1
  ASSERT_EQ(State().value("weight_basis_points", -1), 100);

  // 4 MiB left: below the store's reserve (16 MiB on this small disk).
  const std::string filler = FillDisk(mount_, int64_t{4} << 20);
  // Traffic goes on: the production path never waits on the store.
  for (int i = 0; i < 60; ++i) {
    absl::StatusOr<DriverResult> sent = c_.Send(absl::StrCat("user-", i));
    ASSERT_OK(sent);
    EXPECT_EQ(sent->status, 200) << sent->body;
  }
  // The judge waits, and says why.
  ASSERT_TRUE(WaitFor([&] {
    return HoldReason(c_) == "HOLD_STORAGE";
  }, absl::Seconds(20))) << c_.Rollout().dump();
  EXPECT_EQ(MetricValue(c_.Admin("GET", "/metrics").body, "understudy_store_failing", ""), 1);
  EXPECT_GT(MetricValue(c_.Admin("GET", "/metrics").body, "understudy_pipeline_store_failures_total", ""), 0);
  // A command cannot be persisted, so it is refused and changes nothing.
  r = c_.Admin("POST", "/v1/rollout/promote", R"({"actor":"e2e"})");
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(State().value("weight_basis_points", -1), 100);

  // Space returns: the store and the judge recover by themselves.
  ASSERT_EQ(std::remove(filler.c_str()), 0);
  ASSERT_TRUE(WaitFor([&] {
    const std::string h = HoldReason(c_);
    return !h.empty() && h != "HOLD_STORAGE";
  }, absl::Seconds(20))) << c_.Rollout().dump();
  EXPECT_EQ(MetricValue(c_.Admin("GET", "/metrics").body, "understudy_store_failing", ""), 0);
  r = c_.Admin("POST", "/v1/rollout/promote", R"({"actor":"e2e"})");
  ASSERT_EQ(r.status, 200) << r.body;  // version 2

  // A restart finds both acknowledged decisions.
  ASSERT_TRUE(c_.StopSidecar().has_value());
  ASSERT_OK(c_.StartSidecar());
  EXPECT_EQ(State().value("weight_basis_points", -1), 500);
  int promotes = 0;
  for (const json& d : c_.Decisions()) promotes += d.value("action", "") == "ACTION_PROMOTE";
  EXPECT_EQ(promotes, 2);
}

}  // namespace
}  // namespace understudy::e2e

namespace understudy::e2e {
namespace {

// BadCandidate is a model server that misbehaves at the socket level, as
// real upstreams do under failure: it resets the connection, trickles its
// answer a byte at a time, sends an SSE stream of garbage, or streams
// events forever. Every connection gets the current mode.
class BadCandidate {
 public:
  enum Mode { kReset, kTrickle, kGarbageSse, kEndless };
  BadCandidate() {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 && listen(fd_, 64) == 0 &&
        getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
      port_ = ntohs(addr.sin_port);
    }
    acceptor_ = std::thread([this] {
      while (!stop_.load()) {
        pollfd p{fd_, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0) continue;
        int c = accept(fd_, nullptr, nullptr);
        if (c < 0) continue;
        connections_.fetch_add(1);
        std::lock_guard<std::mutex> lock(mu_);
        workers_.emplace_back([this, c, mode = mode_.load()] { Serve(c, mode); });
      }
    });
  }
  ~BadCandidate() {
    stop_.store(true);
    acceptor_.join();
    std::lock_guard<std::mutex> lock(mu_);
    for (std::thread& t : workers_) t.join();
    close(fd_);
  }
  int port() const { return port_; }
  void set_mode(Mode m) { mode_.store(m); }
  int64_t connections() const { return connections_.load(); }

 private:
  void Serve(int c, Mode mode) {
    // Read the request head (and whatever body came with it).
    std::string in;
    char buf[4096];
    while (in.find("\r\n\r\n") == std::string::npos && !stop_.load()) {
      pollfd p{c, POLLIN, 0};
      if (poll(&p, 1, 100) <= 0) continue;
      ssize_t n = read(c, buf, sizeof(buf));
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
    }
    auto send_all = [&](const std::string& s) {
      return send(c, s.data(), s.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(s.size());
    };
    const std::string sse_head =
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
    auto chunk = [](const std::string& s) {
      char size[16];
      std::snprintf(size, sizeof(size), "%zx\r\n", s.size());
      return std::string(size) + s + "\r\n";
    };
    switch (mode) {
      case kReset: {
        linger l{1, 0};  // close with RST
        setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
        break;
      }
      case kTrickle: {
        const std::string body = R"({"id":"x","object":"chat.completion","choices":[)";
        send_all("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 4096\r\n\r\n");
        for (size_t i = 0; !stop_.load(); i = (i + 1) % body.size()) {
          if (!send_all(body.substr(i, 1))) break;
          absl::SleepFor(absl::Milliseconds(200));
        }
        break;
      }
      case kGarbageSse:
        send_all(sse_head);
        send_all(chunk("data: {\"choices\":[{\"delta\":{\"content\":\"Par\"}}\n\n"));
        send_all(chunk("data: \x01\x02 not json at all }}}\n\nevent: ???\n\n"));
        send_all(chunk("data: {\"choices\":[{\"delta\":{\"content\":"));
        break;  // and hang up mid-event
      case kEndless:
        send_all(sse_head);
        while (!stop_.load()) {
          if (!send_all(chunk("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"la \"}}]}\n\n"))) {
            break;
          }
          absl::SleepFor(absl::Milliseconds(20));
        }
        break;
    }
    close(c);
  }

  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<Mode> mode_{kReset};
  std::atomic<int64_t> connections_{0};
  std::thread acceptor_;
  std::mutex mu_;
  std::vector<std::thread> workers_;
};

// Whatever the candidate does to its shadow calls, production answers
// every request, correctly, and the sidecar counts the candidate's
// failures instead of suffering them.
TEST_F(FaultE2eTest, AMisbehavingCandidateChangesNothingOnTheProductionPath) {
  BadCandidate bad;
  ASSERT_GT(bad.port(), 0);
  ASSERT_OK(c_.StartFakes());
  c_.UseCandidatePort(bad.port());
  SidecarKnobs knobs;
  knobs.sample_rate = 1.0;        // every production request is shadowed
  knobs.shadow_timeout = "2s";    // the trickle and the endless stream are cut here
  ASSERT_OK(c_.StartSidecar(knobs));
  int user = 0;
  for (BadCandidate::Mode mode : {BadCandidate::kReset, BadCandidate::kTrickle,
                                  BadCandidate::kGarbageSse, BadCandidate::kEndless}) {
    bad.set_mode(mode);
    for (int i = 0; i < 15; ++i) {
      absl::StatusOr<DriverResult> r = c_.Send(absl::StrCat("user-", user++));
      ASSERT_OK(r);
      EXPECT_EQ(r->status, 200) << "mode " << mode << ": " << r->body;
      EXPECT_EQ(r->cluster, "production");
      EXPECT_NE(r->body.find("\"choices\""), std::string::npos) << r->body;
      EXPECT_TRUE(r->violations.empty());
    }
  }
  EXPECT_GE(bad.connections(), 20) << "the shadow calls reached the bad candidate";
  // The candidate's misbehaviour is counted, not suffered.
  ASSERT_TRUE(WaitFor([&] {
    const std::string m = c_.Admin("GET", "/metrics").body;
    return MetricValue(m, "understudy_shadow_requests_total", "outcome=\"failed\"") +
               MetricValue(m, "understudy_shadow_requests_total", "outcome=\"timed_out\"") >=
           30;
  }, absl::Seconds(30))) << c_.Admin("GET", "/metrics").body.substr(0, 3000);
  // Production's own health is untouched: no errors counted against it.
  json rollout = c_.Rollout();
  ASSERT_TRUE(rollout.is_object());
  const json errors = rollout["health"]["production"].value("errors", json("0"));
  EXPECT_TRUE(errors == json(0) || errors == json("0")) << rollout["health"].dump();
  const json requests = rollout["health"]["production"].value("requests", json("0"));
  EXPECT_EQ(requests, json("60")) << rollout["health"].dump();
}

}  // namespace
}  // namespace understudy::e2e
