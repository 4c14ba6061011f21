// tests/shadow/eval_test.cc: `understudy eval` end to end against two
// fake-model processes (examples/fake-model), run in-process through CLI11.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "cli/commands.h"
#include "shadow/shadow.h"
#include "storage/store.h"
#include "tests/common/test_util.h"

namespace understudy::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

// A fake-model child process; its stdout pipe stays open while it runs.
class FakeModelProcess {
 public:
  static std::unique_ptr<FakeModelProcess> Start(const std::vector<std::string>& flags) {
    int fds[2];
    if (pipe(fds) != 0) return nullptr;
    std::vector<std::string> args = {FAKE_MODEL_BIN, "--port", "0", "--threads", "16"};
    args.insert(args.end(), flags.begin(), flags.end());
    std::vector<char*> argv;
    for (std::string& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    const pid_t pid = fork();
    if (pid == 0) {
      dup2(fds[1], STDOUT_FILENO);
      close(fds[0]);
      close(fds[1]);
      execv(argv[0], argv.data());
      _exit(127);
    }
    close(fds[1]);
    auto p = std::unique_ptr<FakeModelProcess>(new FakeModelProcess(pid, fds[0]));
    if (pid < 0 || !p->ReadPort()) return nullptr;
    return p;
  }

  ~FakeModelProcess() {
    kill(pid_, SIGTERM);
    int status;
    waitpid(pid_, &status, 0);
    close(out_);
  }

  std::string url() const { return absl::StrCat("http://127.0.0.1:", port_); }
  int port() const { return port_; }

 private:
  FakeModelProcess(pid_t pid, int out) : pid_(pid), out_(out) {}

  // ReadPort reads "listening on 127.0.0.1:PORT" with a deadline.
  bool ReadPort() {
    std::string text;
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd pfd{out_, POLLIN, 0};
      if (poll(&pfd, 1, 200) <= 0) continue;
      char buf[256];
      const ssize_t n = read(out_, buf, sizeof(buf));
      if (n <= 0) return false;
      text.append(buf, static_cast<size_t>(n));
      const size_t at = text.find("listening on 127.0.0.1:");
      if (at != std::string::npos && text.find('\n', at) != std::string::npos) {
        port_ = std::stoi(text.substr(at + std::strlen("listening on 127.0.0.1:")));
        return port_ > 0;
      }
    }
    return false;
  }

  pid_t pid_;
  int out_;
  int port_ = 0;
};

struct RunResult {
  int code = -1;
  std::string out;
  std::string err;
};

// RunEval runs `understudy eval ARGS` in this process, capturing output.
RunResult RunEval(std::vector<std::string> args) {
  CLI::App app("understudy");
  app.require_subcommand(1);
  RunResult result;
  RegisterEvalCommand(app, &result.code);
  args.insert(args.begin(), {"understudy", "eval"});
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  std::ostringstream out, err;
  std::streambuf* old_out = std::cout.rdbuf(out.rdbuf());
  std::streambuf* old_err = std::cerr.rdbuf(err.rdbuf());
  try {
    app.parse(static_cast<int>(argv.size()), argv.data());
  } catch (const CLI::ParseError& e) {
    app.exit(e);
    result.code = 2;
  }
  std::cout.rdbuf(old_out);
  std::cerr.rdbuf(old_err);
  result.out = out.str();
  result.err = err.str();
  return result;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

std::string Line(const std::string& id, const std::string& question, bool stream = false,
                 const std::string& reference = "") {
  nlohmann::json j = {
      {"id", id},
      {"request",
       {{"model", "prod-1"}, {"messages", {{{"role", "user"}, {"content", question}}}}}}};
  if (stream) {
    j["request"]["stream"] = true;
    j["request"]["stream_options"] = {{"include_usage", true}};
  }
  if (!reference.empty()) j["reference"] = reference;
  return j.dump() + "\n";
}

class EvalTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(absl::StrCat(::testing::TempDir(), "/shadow_eval_", getpid()));
    std::filesystem::remove_all(*dir_);
    std::filesystem::create_directories(*dir_);
    key_ = new std::string(absl::StrCat("test-eval-", std::string(24, 'e'), getpid()));
    WriteFile(*dir_ + "/prod.key", *key_ + "\n");
    production_ = FakeModelProcess::Start(
                      {"--model", "prod-1", "--seed", "1", "--api-key-file", *dir_ + "/prod.key"})
                      .release();
    candidate_ = FakeModelProcess::Start({"--model", "cand-1", "--seed", "2"}).release();
  }
  static void TearDownTestSuite() {
    delete production_;
    delete candidate_;
    std::filesystem::remove_all(*dir_);
    delete dir_;
    delete key_;
  }

  void SetUp() override {
    ASSERT_NE(production_, nullptr) << "fake-model did not start: " << FAKE_MODEL_BIN;
    ASSERT_NE(candidate_, nullptr);
    // Each test starts from the candidate's start-up knobs.
    httplib::Client c("127.0.0.1", candidate_->port());
    auto res = c.Post("/control", R"({"reset":true})", "application/json");
    ASSERT_TRUE(res && res->status == 200);
    const std::string name = ::testing::UnitTest::GetInstance()->current_test_info()->name();
    config_ = *dir_ + "/" + name + ".yaml";
    dataset_ = *dir_ + "/" + name + ".jsonl";
    store_ = *dir_ + "/" + name + "-store";
    WriteFile(
        config_,
        absl::StrCat("upstreams:\n"
                     "  production: {url: ",
                     production_->url(), ", api_key_file: ", *dir_,
                     "/prod.key}\n"
                     "  candidate: {url: ",
                     candidate_->url(),
                     "}\n"
                     "shadow:\n"
                     "  enabled: false\n"
                     "  request: {set_json: {model: cand-1}}\n"
                     "  timeout: 30s\n"
                     "compare:\n"
                     "  prices: {prod-1: {input: 1, output: 2}, cand-1: {input: 0.5, output: 1}}\n"
                     "storage:\n"
                     "  path: ",
                     store_,
                     "\n"
                     "  privacy: {body_mode: full}\n"));
    WriteFile(dataset_,
              Line("q1", "What is the capital of France?", false,
                   "The capital of France is Paris. It has been the capital since 987 and has "
                   "about 2.1 million residents.") +
                  "\n# comments and blank lines are skipped\n" +
                  Line("q2", "What is the capital of Japan?") +
                  Line("q3", "How tall is Mount Everest?", /*stream=*/true) +
                  Line("q4", "Which is the largest planet in the solar system?"));
  }

  static inline std::string* dir_ = nullptr;
  static inline std::string* key_ = nullptr;
  static inline FakeModelProcess* production_ = nullptr;
  static inline FakeModelProcess* candidate_ = nullptr;
  std::string config_;
  std::string dataset_;
  std::string store_;
};

// Both arms answer every request; the JSON report has per-arm numbers, the
// comparison verdicts and the reference score.
TEST_F(EvalTest, EvalJsonReportsBothArms) {
  RunResult r =
      RunEval({"--config", config_, "--dataset", dataset_, "-o", "json", "--concurrency", "2"});
  ASSERT_EQ(r.code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["items"], 4);
  for (const char* arm : {"production", "candidate"}) {
    SCOPED_TRACE(arm);
    const nlohmann::json& a = j["arms"][arm];
    EXPECT_EQ(a["requests"], 4);
    EXPECT_EQ(a["errors"], 0);  // production needs its key: it was sent
    EXPECT_EQ(a["error_rate"], 0.0);
    EXPECT_TRUE(a["latency_ms"]["p50"].is_number());
    EXPECT_GE(a["latency_ms"]["p95"].get<double>(), a["latency_ms"]["p50"].get<double>());
    EXPECT_TRUE(a["ttft_ms"]["p95"].is_number());
    EXPECT_GT(a["tokens_in_per_request"].get<double>(), 0);
    EXPECT_GT(a["tokens_out_per_request"].get<double>(), 0);
    EXPECT_GT(a["cost_per_request"].get<double>(), 0);
    EXPECT_EQ(a["reference"]["items"], 1);
  }
  // The production answer is the reference text verbatim.
  EXPECT_EQ(j["arms"]["production"]["reference"]["agree"], 1);
  // prod-1 costs twice cand-1 per token, and both give the same answers.
  EXPECT_GT(j["arms"]["production"]["cost_per_request"].get<double>(),
            j["arms"]["candidate"]["cost_per_request"].get<double>());
  int64_t verdicts = 0;
  for (const auto& [name, n] : j["comparison"]["verdicts"].items()) verdicts += n.get<int64_t>();
  EXPECT_EQ(verdicts, 4);
  EXPECT_EQ(j["comparison"]["compared"], 4);
  EXPECT_EQ(j["comparison"]["agreement_rate"], 1.0);
  ASSERT_EQ(j["results"].size(), 4u);
  EXPECT_EQ(j["results"][2]["id"], "q3");
  EXPECT_EQ(j["results"][2]["candidate"], "ok");
  EXPECT_EQ(j["stored"], false);
}

// The default output is a table with one column per arm.
TEST_F(EvalTest, EvalPrintsTable) {
  RunResult r = RunEval({"--config", config_, "--dataset", dataset_});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* row :
       {"production", "candidate", "requests", "error rate", "latency p50 (ms)", "latency p95 (ms)",
        "ttft p95 (ms)", "tokens out / request", "cost / success", "reference agreement",
        "agreement 100.0% (4 of 4 compared)", "verdicts:"}) {
    EXPECT_THAT(r.out, HasSubstr(row));
  }
  EXPECT_THAT(r.out, Not(HasSubstr(*key_)));
}

// A failing candidate shows up as its errors and candidate_error verdicts.
TEST_F(EvalTest, EvalCountsCandidateErrors) {
  httplib::Client c("127.0.0.1", candidate_->port());
  auto res = c.Post("/control", R"({"error_rate":1})", "application/json");
  ASSERT_TRUE(res && res->status == 200);
  RunResult r = RunEval({"--config", config_, "--dataset", dataset_, "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["arms"]["candidate"]["errors"], 4);
  EXPECT_EQ(j["arms"]["candidate"]["error_rate"], 1.0);
  EXPECT_EQ(j["arms"]["candidate"]["outcomes"]["server_error"], 4);
  EXPECT_TRUE(j["arms"]["candidate"]["latency_ms"]["p50"].is_null());
  EXPECT_EQ(j["arms"]["production"]["errors"], 0);
  EXPECT_EQ(j["comparison"]["verdicts"]["candidate_error"], 4);
  EXPECT_TRUE(j["comparison"]["agreement_rate"].is_null());
}

// --store writes both exchanges (source eval) and the comparison per item,
// with no credential in them.
TEST_F(EvalTest, EvalStoresExchangesAndComparisons) {
  RunResult r = RunEval({"--config", config_, "--dataset", dataset_, "--store", "-o", "json"});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out)["stored"], true);
  absl::StatusOr<std::unique_ptr<storage::Store>> store = storage::OpenRocksStoreReadOnly(store_);
  ASSERT_OK(store);
  for (const char* id : {"q1", "q2", "q3", "q4"}) {
    SCOPED_TRACE(id);
    absl::StatusOr<std::vector<v1::Exchange>> exchanges = (*store)->GetExchanges(id);
    ASSERT_OK(exchanges);
    ASSERT_EQ(exchanges->size(), 2u);
    std::set<int> arms;
    for (const v1::Exchange& e : *exchanges) {
      EXPECT_EQ(e.source(), v1::SOURCE_EVAL);
      EXPECT_EQ(e.status_code(), 200);
      arms.insert(e.arm());
      EXPECT_THAT(e.SerializeAsString(), Not(HasSubstr(*key_)));
      for (const v1::Header& h : e.request().headers()) EXPECT_NE(h.key(), "authorization");
      if (e.arm() == v1::ARM_CANDIDATE) {
        // The candidate got the set_json transform.
        EXPECT_THAT(e.request().body(), HasSubstr("\"model\":\"cand-1\""));
      } else {
        EXPECT_THAT(e.request().body(), HasSubstr("\"model\":\"prod-1\""));
      }
    }
    EXPECT_EQ(arms, (std::set<int>{v1::ARM_PRODUCTION, v1::ARM_CANDIDATE}));
    absl::StatusOr<v1::Comparison> c = (*store)->GetComparison(id);
    ASSERT_OK(c);
    EXPECT_EQ(c->request_id(), id);
  }
}

// A bad dataset line is reported with its line number; exit 2.
TEST_F(EvalTest, BadDatasetLineExitsWithUsageError) {
  const struct {
    std::string text;
    std::string message;
  } cases[] = {
      {Line("a", "x") + "{not json\n", ":2: not valid JSON"},
      {Line("a", "x") + "\n" + R"({"id":"b"})" + "\n", ":3: missing \"request\""},
      {R"({"id":"a","request":"hi"})"
       "\n",
       ":1: \"request\" must be a JSON object"},
      {Line("a", "x") + Line("a", "y"), ":2: duplicate id \"a\""},
      {R"({"request":{},"reference":7})"
       "\n",
       ":1: \"reference\" must be a string"},
      {"\n\n", "no requests"},
  };
  for (const auto& c : cases) {
    WriteFile(dataset_, c.text);
    RunResult r = RunEval({"--config", config_, "--dataset", dataset_});
    EXPECT_EQ(r.code, 2) << c.text;
    EXPECT_THAT(r.err, HasSubstr(c.message)) << c.text;
  }
  RunResult missing = RunEval({"--config", config_, "--dataset", *dir_ + "/nonexistent.jsonl"});
  EXPECT_EQ(missing.code, 2);
  EXPECT_THAT(missing.err, HasSubstr("cannot read"));
}

// A malformed or incomplete config exits 2 naming the problem.
TEST_F(EvalTest, MalformedConfigExitsWithUsageError) {
  const struct {
    std::string yaml;
    std::string message;
  } cases[] = {
      {"upstreams: {production: {url: http://a}\n", "config"},  // YAML syntax
      {"upstreams: {production: {url: 'http://a'}}\n", "upstreams.candidate.url"},
      {"upstreams: {production: {url: 'http://a'}, candidate: {url: 'http://b'}}\n"
       "shadow: {sample_rate: 5}\n",
       "shadow.sample_rate"},
      {"upstreams: {production: {url: 'http://a'}, candidate: {url: 'http://b'}}\n"
       "compare: {thresholds: {equivalent: 2}}\n",
       "compare.thresholds.equivalent"},
  };
  for (const auto& c : cases) {
    WriteFile(config_, c.yaml);
    RunResult r = RunEval({"--config", config_, "--dataset", dataset_});
    EXPECT_EQ(r.code, 2) << c.yaml;
    if (c.message != "config") {
      EXPECT_THAT(r.err, HasSubstr(c.message)) << c.yaml;
    }
    EXPECT_FALSE(r.err.empty());
  }
}

}  // namespace
}  // namespace understudy::cli
