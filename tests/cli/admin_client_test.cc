// The admin CLI commands run in-process against a live admin server.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "tests/admin/admin_fixture.h"

namespace understudy::cli {
namespace {

using nlohmann::json;
using ::testing::HasSubstr;
using ::testing::Not;

struct CliResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// ScopedEnv sets (or unsets, with nullptr) an environment variable for one
// test and restores it.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    const char* old = std::getenv(name);
    if (old != nullptr) old_ = old;
    had_ = old != nullptr;
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (had_) {
      ::setenv(name_.c_str(), old_.c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }

 private:
  std::string name_;
  std::string old_;
  bool had_ = false;
};

class AdminClientTest : public admin::AdminFixture {
 protected:
  void SetUp() override { StartServer(); }

  // Run parses `args` as `understudy ARGS...` with the admin commands, the
  // way main.cc does (a parse error is exit code 2).
  CliResult Run(std::vector<std::string> args) {
    CLI::App app{"understudy"};
    app.require_subcommand(1);
    CliResult result;
    result.exit_code = kExitOk;
    std::ostringstream out, err;
    RegisterAdminClientCommands(app, &result.exit_code, out, err);
    std::vector<std::string> storage = {"understudy"};
    storage.insert(storage.end(), args.begin(), args.end());
    std::vector<char*> argv;
    for (std::string& s : storage) argv.push_back(s.data());
    try {
      app.parse(static_cast<int>(argv.size()), argv.data());
    } catch (const CLI::ParseError& e) {
      err << e.what();
      result.exit_code = kExitUsage;
    }
    result.out = out.str();
    result.err = err.str();
    return result;
  }

  CliResult RunAt(std::vector<std::string> args) {
    args.push_back("--admin");
    args.push_back(Url());
    return Run(std::move(args));
  }

  std::string WriteTokenFile(const std::string& token) {
    std::string path = ::testing::TempDir() + "/admin_token_" + std::to_string(::getpid());
    std::ofstream(path) << "  " << token << "\n";
    return path;
  }
};

// status prints the phase, stage, weight and a per-arm table.
TEST_F(AdminClientTest, StatusText) {
  CliResult r = RunAt({"status"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("phase:         shadow"));
  EXPECT_THAT(r.out, HasSubstr("stage:         1/6 (shadow)"));
  EXPECT_THAT(r.out, HasSubstr("weight:        0.00%"));
  EXPECT_THAT(r.out, HasSubstr("time in stage: 0s"));
  EXPECT_THAT(r.out, HasSubstr("production"));
  EXPECT_THAT(r.out, HasSubstr("candidate"));
  EXPECT_THAT(r.out, HasSubstr("p95 latency"));
}

// After the judge's first tick, status shows its latest gates, one a line,
// and why it holds with what would unblock it.
TEST_F(AdminClientTest, StatusShowsTheJudgesLatestGates) {
  CliResult r = RunAt({"status"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_THAT(r.out, Not(HasSubstr("outcome")));  // no evaluation yet
  EXPECT_THAT(r.out, Not(HasSubstr("holding:")));
  ASSERT_OK(controller_->Tick());                 // a hold: not in the decision log
  r = RunAt({"status"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("gate              outcome"));
  EXPECT_THAT(r.out, HasSubstr("error_rate"));
  EXPECT_THAT(r.out, HasSubstr("inconclusive"));
  // The default plan's shadow stage, just begun, with no traffic yet.
  EXPECT_THAT(r.out, HasSubstr("holding:       waiting for data: 200 more shadow calls; "));
  EXPECT_THAT(r.out, HasSubstr("; bake 5m more\n"));
  // Paused: the operator's reason and who unblocks it.
  ASSERT_EQ(RunAt({"pause", "--reason", "lunch"}).exit_code, kExitOk);
  r = RunAt({"status"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("holding:       paused: paused (paused by cli: lunch): an operator "
                               "resumes, promotes or rolls back\n"));
}

// status -o json prints the server's JSON.
TEST_F(AdminClientTest, StatusJson) {
  CliResult r = RunAt({"status", "-o", "json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  json j = json::parse(r.out, nullptr, false);
  ASSERT_FALSE(j.is_discarded()) << r.out;
  EXPECT_EQ(j["state"]["phase"], "PHASE_SHADOW");
  EXPECT_EQ(j["stages"].size(), 6u);
}

// promote with an actor moves the controller and says what happened.
TEST_F(AdminClientTest, PromoteAndStatusAfterTime) {
  CliResult r = RunAt({"promote", "--actor", "alice"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("promote: promoted by alice to 1%"));
  EXPECT_EQ(controller_->State().stage_index(), 1);
  ASSERT_EQ(log_.size(), 1u);
  EXPECT_EQ(log_.Decisions()[0].actor(), "alice");

  clock_.Advance(absl::Minutes(3));
  r = RunAt({"status"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("stage:         2/6 (1%)"));
  EXPECT_THAT(r.out, HasSubstr("weight:        1.00%"));
  EXPECT_THAT(r.out, HasSubstr("time in stage: 3m"));
  EXPECT_THAT(r.out, HasSubstr("last reason:   promoted by alice to 1%"));
}

// The actor defaults to $USER.
TEST_F(AdminClientTest, ActorDefaultsToUser) {
  ScopedEnv user("USER", "carol");
  CliResult r = RunAt({"promote", "--to-full", "-o", "json"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  json j = json::parse(r.out, nullptr, false);
  EXPECT_EQ(j["decision"]["actor"], "carol");
  EXPECT_EQ(j["state"]["phase"], "PHASE_PROMOTED");
}

// pause, resume, set-weight, rollback all go through.
TEST_F(AdminClientTest, MutatingCommands) {
  ASSERT_EQ(RunAt({"pause", "--reason", "lunch"}).exit_code, kExitOk);
  EXPECT_EQ(controller_->State().phase(), understudy::v1::PHASE_PAUSED);
  ASSERT_EQ(RunAt({"resume"}).exit_code, kExitOk);
  EXPECT_EQ(controller_->State().phase(), understudy::v1::PHASE_SHADOW);
  CliResult r = RunAt({"set-weight", "25"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_EQ(router_.WeightBasisPoints(), 2500);
  EXPECT_THAT(r.out, HasSubstr("weight 25.00%"));
  ASSERT_EQ(RunAt({"rollback", "--reason", "wrong answers"}).exit_code, kExitOk);
  EXPECT_EQ(controller_->State().phase(), understudy::v1::PHASE_ROLLED_BACK);
  EXPECT_EQ(log_.size(), 4u);
}

// Bad usage is exit 2 and sends nothing.
TEST_F(AdminClientTest, BadUsageIsExit2) {
  CliResult r = RunAt({"rollback"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--reason"));
  EXPECT_EQ(RunAt({"set-weight", "150"}).exit_code, kExitUsage);
  EXPECT_EQ(RunAt({"set-weight", "lots"}).exit_code, kExitUsage);
  EXPECT_EQ(RunAt({"status", "-o", "yaml"}).exit_code, kExitUsage);
  r = Run({"status", "--admin", "127.0.0.1:9"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--admin: must be a URL"));
  EXPECT_EQ(log_.size(), 0u);
}

// A 4xx answer is exit 2 with the server's message.
TEST_F(AdminClientTest, ConflictIsExit2WithServerMessage) {
  CliResult r = RunAt({"resume"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("resume: the rollout is not paused"));
  EXPECT_THAT(r.err, HasSubstr("HTTP 409"));
}

// A 5xx answer is exit 1 naming the URL.
TEST_F(AdminClientTest, ServerErrorIsExit1) {
  log_.FailNextCommit(absl::UnavailableError("disk full"));
  CliResult r = RunAt({"promote"});
  EXPECT_EQ(r.exit_code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr(Url() + "/v1/rollout/promote"));
  EXPECT_THAT(r.err, HasSubstr("disk full"));
  EXPECT_EQ(controller_->State().stage_index(), 0);
}

// Nobody listening: exit 1 naming the URL.
TEST_F(AdminClientTest, ConnectionRefusedIsExit1) {
  // A bound socket that does not listen refuses connections.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  CliResult r = Run({"status", "--admin", url});
  ::close(fd);
  EXPECT_EQ(r.exit_code, kExitFailure);
  EXPECT_THAT(r.err, HasSubstr("cannot reach the admin API at " + url + "/v1/rollout"));
}

// With a token: none → 401 → exit 2; from a file or the environment → ok.
TEST_F(AdminClientTest, TokenFromFileOrEnvironment) {
  ScopedEnv no_token("UNDERSTUDY_ADMIN_TOKEN", nullptr);
  std::string token = "cli-" + std::to_string(::getpid()) + "-token";
  StartServer(token);
  CliResult r = RunAt({"promote"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("HTTP 401"));
  EXPECT_EQ(controller_->State().stage_index(), 0);

  std::string path = WriteTokenFile(token);
  r = RunAt({"promote", "--token-file", path});
  EXPECT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_EQ(controller_->State().stage_index(), 1);
  std::filesystem::remove(path);

  r = RunAt({"promote", "--token-file", path});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("--token-file: cannot read"));

  ScopedEnv env_token("UNDERSTUDY_ADMIN_TOKEN", token.c_str());
  r = RunAt({"promote"});
  EXPECT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_EQ(controller_->State().stage_index(), 2);
  EXPECT_THAT(r.out + r.err, Not(HasSubstr(token)));
}

// Reads send the token too: with a token configured, status, diffs and
// report get 401 without one and work with the admin token, the read-only
// token, or the file named by $UNDERSTUDY_ADMIN_TOKEN_FILE; the read-only
// token cannot promote (403, exit 2).
TEST_F(AdminClientTest, ReadsSendTheTokenAndReadOnlyTokensCannotWrite) {
  ScopedEnv no_token("UNDERSTUDY_ADMIN_TOKEN", nullptr);
  ScopedEnv no_token_file("UNDERSTUDY_ADMIN_TOKEN_FILE", nullptr);
  const std::string admin_token = "cli-" + std::to_string(::getpid()) + "-admin";
  const std::string read_token = "cli-" + std::to_string(::getpid()) + "-read";
  admin::AdminConfig config;
  config.token = admin_token;
  config.read_token = read_token;
  StartServerWith(config);

  for (const std::vector<std::string>& read :
       std::vector<std::vector<std::string>>{{"status"}, {"diffs"}, {"report"}}) {
    SCOPED_TRACE(read[0]);
    CliResult r = RunAt(read);
    EXPECT_EQ(r.exit_code, kExitUsage);
    EXPECT_THAT(r.err, HasSubstr("HTTP 401"));
  }

  const std::string read_path = WriteTokenFile(read_token);
  for (const std::vector<std::string>& read :
       std::vector<std::vector<std::string>>{{"status"}, {"diffs"}, {"report"}}) {
    SCOPED_TRACE(read[0]);
    std::vector<std::string> args = read;
    args.insert(args.end(), {"--token-file", read_path});
    CliResult r = RunAt(args);
    EXPECT_EQ(r.exit_code, kExitOk) << r.err;
  }
  CliResult denied = RunAt({"promote", "--token-file", read_path});
  EXPECT_EQ(denied.exit_code, kExitUsage);
  EXPECT_THAT(denied.err, HasSubstr("read-only"));
  EXPECT_THAT(denied.err, HasSubstr("HTTP 403"));
  EXPECT_EQ(controller_->State().stage_index(), 0);
  std::filesystem::remove(read_path);

  // In the chart's container the token is a mounted file named by
  // $UNDERSTUDY_ADMIN_TOKEN_FILE.
  const std::string admin_path = WriteTokenFile(admin_token);
  {
    ScopedEnv file("UNDERSTUDY_ADMIN_TOKEN_FILE", admin_path.c_str());
    CliResult r = RunAt({"status", "-o", "json"});
    EXPECT_EQ(r.exit_code, kExitOk) << r.err;
    r = RunAt({"promote"});
    EXPECT_EQ(r.exit_code, kExitOk) << r.err;
    EXPECT_EQ(controller_->State().stage_index(), 1);
    EXPECT_THAT(r.out + r.err, Not(HasSubstr(admin_token)));
  }
  std::filesystem::remove(admin_path);
  {
    ScopedEnv file("UNDERSTUDY_ADMIN_TOKEN_FILE", admin_path.c_str());
    CliResult r = RunAt({"status"});
    EXPECT_EQ(r.exit_code, kExitUsage);
    EXPECT_THAT(r.err, HasSubstr("$UNDERSTUDY_ADMIN_TOKEN_FILE: cannot read " + admin_path));
  }
}

// --admin defaults to $UNDERSTUDY_ADMIN.
TEST_F(AdminClientTest, AdminUrlFromEnvironment) {
  ScopedEnv admin("UNDERSTUDY_ADMIN", Url().c_str());
  CliResult r = Run({"status", "-o", "json"});
  EXPECT_EQ(r.exit_code, kExitOk) << r.err;
}

// diffs lists comparisons with their top findings; verdicts are checked by
// the server.
TEST_F(AdminClientTest, Diffs) {
  understudy::v1::Comparison c;
  c.set_request_id("req-42");
  c.set_verdict(understudy::v1::VERDICT_MAJOR_DIFF);
  c.set_time_unix_micros(absl::ToUnixMicros(clock_.Now()));
  auto* f = c.add_findings();
  f->set_kind("json_changed");
  f->set_path("$.total");
  f->set_message("12 became 13");
  f->set_major(true);
  ASSERT_OK(store_.PutComparison(c));
  understudy::v1::Comparison e;
  e.set_request_id("req-7");
  e.set_verdict(understudy::v1::VERDICT_EQUIVALENT);
  e.set_time_unix_micros(absl::ToUnixMicros(clock_.Now() - absl::Minutes(1)));
  ASSERT_OK(store_.PutComparison(e));

  CliResult r = RunAt({"diffs", "--verdict", "major_diff"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_THAT(r.out, HasSubstr("req-42  major_diff"));
  EXPECT_THAT(r.out, HasSubstr("[major] json_changed at $.total: 12 became 13"));
  EXPECT_THAT(r.out, Not(HasSubstr("req-7")));

  r = RunAt({"diffs", "-o", "json", "--limit", "5"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  json j = json::parse(r.out, nullptr, false);
  ASSERT_EQ(j["comparisons"].size(), 2u) << r.out;
  EXPECT_EQ(j["comparisons"][1]["request_id"], "req-7");

  r = RunAt({"diffs", "--verdict", "terrible"});
  EXPECT_EQ(r.exit_code, kExitUsage);
  EXPECT_THAT(r.err, HasSubstr("verdict: unknown verdict \"terrible\""));
}

// report prints the body the server returns.
TEST_F(AdminClientTest, Report) {
  CliResult r = RunAt({"report", "--format", "html"});
  ASSERT_EQ(r.exit_code, kExitOk) << r.err;
  EXPECT_EQ(r.out, "report in html\n");
  EXPECT_EQ(RunAt({"report", "--format", "pdf"}).exit_code, kExitUsage);
}

}  // namespace
}  // namespace understudy::cli
