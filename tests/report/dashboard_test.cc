// The dashboard page in a real headless Chromium: an httplib server on
// 127.0.0.1:0 serves DashboardHtml() at / and the admin API's routes with
// JSON printed from real protos (a real rollout::Controller history); the
// test dumps the DOM after the page has polled and rendered, and checks the
// rendered state, the SVG charts, escaping and the absence of JS errors.
#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>

#include "common/config_node.h"
#include "sidecar/config.h"
#include "sidecar/sidecar.h"
#include "tools/envoy_driver/envoy_driver.h"
#include "tests/support/test_upstream.h"
#include <httplib.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <functional>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/util/json_util.h"
#include "nlohmann/json.hpp"
#include "rollout/router.h"
#include "report/report.h"
#include "tests/report/report_test_util.h"

#ifndef UNDERSTUDY_REPORT_ARTIFACT_DIR
#define UNDERSTUDY_REPORT_ARTIFACT_DIR "."
#endif

namespace understudy::report {
namespace {

using testing::TempDir;

constexpr char kChromium[] = "/usr/bin/chromium";

// How the fake admin server prints protos: the two ends of what the proto
// JSON mapping allows, both of which the page must read (the real admin
// API prints snake_case, defaults included, enums by name):
// lowerCamelCase with defaults omitted and enum names, or snake_case with
// defaults printed and enums as numbers.
enum class JsonStyle { kCamel, kSnake };

// PrintTo names the style in test names and failure messages.
void PrintTo(JsonStyle style, std::ostream* os) {
  *os << (style == JsonStyle::kCamel ? "lowerCamelCase" : "snake_case");
}

std::string ToJson(const google::protobuf::Message& m, JsonStyle style) {
  google::protobuf::util::JsonPrintOptions o;
  if (style == JsonStyle::kSnake) {
    o.preserve_proto_field_names = true;
    o.always_print_primitive_fields = true;
    o.always_print_enums_as_ints = true;
  }
  std::string out;
  EXPECT_TRUE(google::protobuf::util::MessageToJsonString(m, &out, o).ok());
  return out;
}

template <typename T>
std::string JsonList(const char* key, const std::vector<T>& items, JsonStyle style) {
  std::string out = absl::StrCat("{\"", key, "\":[");
  for (size_t i = 0; i < items.size(); ++i) {
    absl::StrAppend(&out, i ? "," : "", ToJson(items[i], style));
  }
  return out + "]}";
}

// The data the fake admin API serves.
struct ApiData {
  bool has_rollout = false;
  v1::RolloutState state;
  v1::HealthSnapshot health;
  std::vector<int> stages;
  std::vector<v1::HealthSnapshot> snapshots;  // oldest first
  std::vector<v1::Decision> decisions;        // oldest first
  std::vector<v1::Comparison> comparisons;    // oldest first, all verdicts
  absl::Time now;
};

// FakeAdmin serves the dashboard and the admin API's GET routes; POST
// /v1/rollout/rollback goes to `on_rollback`. `inject` is HTML added at the
// end of the page's body (a test script driving the page like a user).
class FakeAdmin {
 public:
  using Handler = std::function<void(const httplib::Request&, httplib::Response&)>;

  FakeAdmin(ApiData data, JsonStyle style, std::string inject = "", Handler on_rollback = nullptr)
      : data_(std::move(data)), style_(style), inject_(std::move(inject)) {
    server_.Get("/", [this](const httplib::Request&, httplib::Response& res) {
      std::string page = DashboardHtml();
      if (!inject_.empty()) {
        size_t end = page.rfind("</body>");
        EXPECT_NE(end, std::string::npos);
        page.insert(end, inject_);
      }
      res.set_content(page, "text/html; charset=utf-8");
    });
    server_.Post("/v1/rollout/rollback",
                 [on_rollback](const httplib::Request& req, httplib::Response& res) {
                   if (on_rollback) {
                     on_rollback(req, res);
                   } else {
                     res.status = 404;
                   }
                 });
    server_.Get("/v1/rollout", [this](const httplib::Request&, httplib::Response& res) {
      if (!data_.has_rollout) {
        res.status = 503;
        res.set_content(
            "{\"error\":{\"code\":\"UNAVAILABLE\",\"message\":\"no rollout "
            "controller\"}}",
            "application/json");
        return;
      }
      std::string stages;
      for (size_t i = 0; i < data_.stages.size(); ++i) {
        absl::StrAppend(&stages, i ? "," : "", data_.stages[i]);
      }
      res.set_content(absl::StrCat("{\"state\":", ToJson(data_.state, style_), ",\"health\":",
                                   ToJson(data_.health, style_), ",\"stages\":[", stages, "]}"),
                      "application/json");
    });
    server_.Get("/v1/health", [this](const httplib::Request& req, httplib::Response& res) {
      int64_t since_s = 3600;
      if (req.has_param("since_seconds")) {
        (void)absl::SimpleAtoi(req.get_param_value("since_seconds"), &since_s);
      }
      int64_t since = absl::ToUnixMicros(data_.now - absl::Seconds(since_s));
      std::vector<v1::HealthSnapshot> out;
      for (const auto& s : data_.snapshots) {
        if (s.time_unix_micros() >= since) out.push_back(s);
      }
      res.set_content(JsonList("snapshots", out, style_), "application/json");
    });
    server_.Get("/v1/decisions", [this](const httplib::Request& req, httplib::Response& res) {
      size_t limit = Limit(req, 100);
      std::vector<v1::Decision> out = data_.decisions;
      if (out.size() > limit)
        out.erase(out.begin(), out.end() - limit);  // the newest, oldest first
      res.set_content(JsonList("decisions", out, style_), "application/json");
    });
    server_.Get("/v1/comparisons", [this](const httplib::Request& req, httplib::Response& res) {
      size_t limit = Limit(req, 100);
      bool major = req.get_param_value("verdict") == "major_diff";
      std::vector<v1::Comparison> out;
      for (auto it = data_.comparisons.rbegin(); it != data_.comparisons.rend(); ++it) {
        if (major && it->verdict() != v1::VERDICT_MAJOR_DIFF) continue;
        if (out.size() >= limit) break;
        out.push_back(*it);
      }
      res.set_content(JsonList("comparisons", out, style_), "application/json");
    });
    // With RequireToken, the data routes answer 401 without the bearer
    // token, as the real admin API does; every data call's Authorization
    // header is recorded.
    server_.set_pre_routing_handler([this](const httplib::Request& req, httplib::Response& res) {
      absl::MutexLock lock(&mu_);
      if (req.path == "/") return httplib::Server::HandlerResponse::Unhandled;
      const std::string auth = req.get_header_value("Authorization");
      authorizations_.push_back(auth);
      if (token_.empty() || auth == "Bearer " + token_) {
        return httplib::Server::HandlerResponse::Unhandled;
      }
      res.status = 401;
      res.set_header("WWW-Authenticate", "Bearer realm=\"understudy\"");
      res.set_content(
          "{\"error\":{\"code\":\"UNAUTHENTICATED\",\"message\":\"Authorization: required "
          "(Bearer token)\"}}",
          "application/json");
      return httplib::Server::HandlerResponse::Handled;
    });
    server_.set_logger([this](const httplib::Request& req, const httplib::Response&) {
      std::string query;
      for (const auto& [k, v] : req.params) {
        absl::StrAppend(&query, query.empty() ? "?" : "&", k, "=", v);
      }
      absl::MutexLock lock(&mu_);
      requests_.push_back(req.path + query);
    });
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  ~FakeAdmin() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::string Url() const { return absl::StrCat("http://127.0.0.1:", port_, "/"); }
  std::vector<std::string> Requests() const {
    absl::MutexLock lock(&mu_);
    return requests_;
  }
  // RequireToken makes the data routes need "Authorization: Bearer <token>".
  void RequireToken(std::string token) {
    absl::MutexLock lock(&mu_);
    token_ = std::move(token);
  }
  // Authorizations lists the Authorization header of every data call ("" when none).
  std::vector<std::string> Authorizations() const {
    absl::MutexLock lock(&mu_);
    return authorizations_;
  }

 private:
  static size_t Limit(const httplib::Request& req, size_t dflt) {
    size_t v = dflt;
    if (req.has_param("limit")) (void)absl::SimpleAtoi(req.get_param_value("limit"), &v);
    return v;
  }

  ApiData data_;
  JsonStyle style_;
  std::string inject_;
  httplib::Server server_;
  int port_ = -1;
  std::thread thread_;
  mutable absl::Mutex mu_;
  std::vector<std::string> requests_ ABSL_GUARDED_BY(mu_);
  std::string token_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> authorizations_ ABSL_GUARDED_BY(mu_);
};

struct ChromiumRun {
  bool finished = false;
  int exit_code = -1;
  std::string out, err;
};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// RunChromium runs headless Chromium on `url` in its own process group, with
// a fresh profile, and waits for it (killing the group after 120 s).
ChromiumRun RunChromium(const std::string& url, const std::vector<std::string>& extra) {
  TempDir work;
  std::vector<std::string> args = {kChromium,
                                   "--headless=new",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--no-first-run",
                                   "--no-default-browser-check",
                                   "--disable-extensions",
                                   "--disable-background-networking",
                                   "--enable-logging=stderr",
                                   "--v=0",
                                   "--virtual-time-budget=5000",
                                   "--user-data-dir=" + work.path() + "/profile"};
  args.insert(args.end(), extra.begin(), extra.end());
  args.push_back(url);
  const std::string out_path = work.path() + "/stdout", err_path = work.path() + "/stderr";
  ChromiumRun run;
  pid_t pid = fork();
  if (pid == 0) {
    setpgid(0, 0);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (out < 0 || err < 0) _exit(126);
    dup2(out, 1);
    dup2(err, 2);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(kChromium, argv.data());
    _exit(127);
  }
  if (pid < 0) return run;
  setpgid(pid, pid);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(120);
  int status = 0;
  while (true) {
    pid_t r = waitpid(pid, &status, WNOHANG);
    if (r == pid) {
      run.finished = true;
      run.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (std::chrono::steady_clock::now() > deadline) {
      kill(-pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  run.out = ReadFile(out_path);
  run.err = ReadFile(err_path);
  return run;
}

// TextEscaped is how the DOM serialiser writes a text node.
std::string TextEscaped(const std::string& s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}});
}

size_t Count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t p = hay.find(needle); p != std::string::npos; p = hay.find(needle, p + 1)) ++n;
  return n;
}

// JsErrors returns the content of the page's #js-errors element.
std::string JsErrors(const std::string& dom) {
  size_t at = dom.find("id=\"js-errors\"");
  if (at == std::string::npos) return "#js-errors missing";
  size_t open = dom.find('>', at);
  size_t close = dom.find("</div>", open);
  if (open == std::string::npos || close == std::string::npos) return "#js-errors malformed";
  return dom.substr(open + 1, close - open - 1);
}

// StatusLine returns the text of the page's #status element (the page's own
// script source also holds its messages, so search this, not the DOM).
std::string StatusLine(const std::string& dom) {
  size_t at = dom.find("id=\"status\"");
  if (at == std::string::npos) return "#status missing";
  size_t open = dom.find('>', at);
  size_t close = dom.find("</span>", open);
  if (open == std::string::npos || close == std::string::npos) return "#status malformed";
  return dom.substr(open + 1, close - open - 1);
}

// Has and Lacks check the dumped DOM without printing all of it; the DOM of
// every test is kept in the build dir (see SaveDom).
::testing::AssertionResult Has(const std::string& dom, const std::string& needle) {
  if (dom.find(needle) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "the DOM lacks: " << needle;
}
::testing::AssertionResult Lacks(const std::string& dom, const std::string& needle) {
  if (dom.find(needle) == std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "the DOM has: " << needle;
}

// SaveDom writes the dumped DOM into the build dir as a test artifact.
void SaveDom(const std::string& dom) {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  std::string name =
      absl::StrReplaceAll(absl::StrCat(info->test_suite_name(), ".", info->name()), {{"/", "_"}});
  std::ofstream(std::string(UNDERSTUDY_REPORT_ARTIFACT_DIR) + "/dom-" + name + ".html") << dom;
}

// Uncaught returns chromium's log lines that report uncaught exceptions.
std::string Uncaught(const std::string& err) {
  std::string out;
  std::istringstream in(err);
  for (std::string line; std::getline(in, line);) {
    if (line.find("Uncaught") != std::string::npos) absl::StrAppend(&out, line, "\n");
  }
  return out;
}

class ChromiumTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kChromium, X_OK) != 0) GTEST_SKIP() << kChromium << " is not installed";
  }

  // History builds the API data from a real controller history.
  static ApiData History() {
    ManualClock clock(absl::FromUnixSeconds(1700000000));
    rollout::RolloutConfig config = testing::HistoryConfig();
    rollout::Router router("dashboard-test");
    rollout::InMemoryTransitionLog log;
    rollout::Controller controller(config, clock, router, log);
    ApiData data;
    testing::HistorySink sink;
    sink.comparison = [&](const v1::Comparison& c) { data.comparisons.push_back(c); };
    sink.exchange = [](const v1::Exchange&) {};
    sink.health = [&](const v1::HealthSnapshot& h) { data.snapshots.push_back(h); };
    testing::RunHistory(clock, controller, sink);
    data.has_rollout = true;
    data.state = controller.State();
    data.health = controller.Health();
    data.health.set_time_unix_micros(absl::ToUnixMicros(clock.Now()));
    for (const auto& s : config.stages) data.stages.push_back(s.percent);
    data.decisions = log.Decisions();
    data.now = clock.Now();
    return data;
  }
};

class DashboardTest : public ChromiumTest, public ::testing::WithParamInterface<JsonStyle> {};

// The page renders the rollout, charts, decisions and diffs from real protos
// in either JSON spelling, escapes what the API returns and raises no errors.
TEST_P(DashboardTest, RendersRolloutChartsDecisionsAndDiffs) {
  ApiData data = History();
  ASSERT_EQ(data.state.phase(), v1::PHASE_ROLLED_BACK);
  ASSERT_GE(data.snapshots.size(), 5u);
  ASSERT_EQ(data.decisions.size(), 5u);
  const std::vector<v1::Decision> decisions = data.decisions;
  FakeAdmin admin(std::move(data), GetParam());
  ASSERT_GT(admin.port(), 0);

  ChromiumRun run = RunChromium(admin.Url(), {"--dump-dom"});
  ASSERT_TRUE(run.finished) << "chromium timed out; stderr:\n" << run.err;
  ASSERT_EQ(run.exit_code, 0) << run.err;
  const std::string& dom = run.out;
  SaveDom(dom);
  ASSERT_TRUE(Has(dom, "id=\"js-errors\"")) << dom.substr(0, 2000);

  EXPECT_EQ(JsErrors(dom), "") << "JavaScript errors on the page";
  EXPECT_EQ(Uncaught(run.err), "");

  // The page asked for what the contract says.
  std::vector<std::string> requests = admin.Requests();
  for (const char* want :
       {"/v1/rollout", "/v1/health?since_seconds=3600", "/v1/decisions?limit=50"}) {
    EXPECT_THAT(requests, ::testing::Contains(want));
  }
  EXPECT_THAT(requests,
              ::testing::Contains(::testing::AnyOf("/v1/comparisons?limit=20&verdict=major_diff",
                                                   "/v1/comparisons?verdict=major_diff&limit=20")));

  // Current state.
  EXPECT_TRUE(Has(dom, "<span class=\"phase rolled_back\">rolled back</span>"));
  EXPECT_TRUE(Has(dom, "<div class=\"v\" id=\"weight\">0%</div>"));
  EXPECT_TRUE(Has(dom, "rolled back by alice: bad answers in #support"));
  EXPECT_TRUE(Has(dom, "v5 · 2 rollback(s)"));
  EXPECT_TRUE(Has(dom, ">shadow</span>"));
  EXPECT_TRUE(Has(dom, ">100%</span>"));

  // Charts: six inline SVGs, with series paths and decision markers.
  EXPECT_GE(Count(dom, "<svg"), 6u);
  EXPECT_GE(Count(dom, "class=\"series\""), 8u) << "weight + 3 arms x (error, latency, ttft) ...";
  EXPECT_TRUE(Has(dom, "<path d=\"M "));
  EXPECT_GE(Count(dom, "class=\"marker\""), 5u);
  EXPECT_TRUE(Has(dom, "Satisfaction (mean feedback score)"));

  // Decisions, newest first, each with its reason; the judge's gates.
  EXPECT_EQ(Count(dom, "<tr class=\"decision\">"), decisions.size());
  size_t at = 0;
  for (auto it = decisions.rbegin(); it != decisions.rend(); ++it) {
    size_t pos = dom.find(TextEscaped(it->reason()), at);
    ASSERT_NE(pos, std::string::npos) << "missing or out of order: " << it->reason();
    at = pos;
  }
  // The history's judge rollback is the critical gate's (the circuit breaker).
  EXPECT_TRUE(Has(dom, "<span class=\"o fail\">fail</span>critical: candidate "));
  EXPECT_TRUE(Has(dom, "clusters "));
  EXPECT_TRUE(Has(dom, "design effect "));
  EXPECT_TRUE(Has(dom, "<td class=\"nw act-rollback\">rollback</td>"));
  EXPECT_TRUE(Has(dom, "10% → 0%"));

  // Major diffs with findings, escaped.
  EXPECT_TRUE(Has(dom, "<strong>req-script</strong>"));
  EXPECT_TRUE(Has(dom, "&lt;script&gt;alert('pwned')&lt;/script&gt;"));
  EXPECT_TRUE(Lacks(dom, "<script>alert"));
  EXPECT_TRUE(Lacks(dom, "<b>bold</b>"));
  EXPECT_TRUE(Has(dom, "\"no\" | &lt;b&gt;bold&lt;/b&gt;"));
  EXPECT_GE(Count(dom, "<tr class=\"finding\">"), 3u);
}

INSTANTIATE_TEST_SUITE_P(JsonSpellings, DashboardTest,
                         ::testing::Values(JsonStyle::kCamel, JsonStyle::kSnake),
                         [](const ::testing::TestParamInfo<JsonStyle>& i) {
                           return i.param == JsonStyle::kCamel ? "LowerCamel" : "SnakeCase";
                         });

class DashboardPageTest : public ChromiumTest {};

// No controller (503), no snapshots, no decisions, no diffs: the page says so
// and raises no errors.
TEST_F(DashboardPageTest, EmptyApiRendersPlaceholders) {
  ApiData data;
  data.now = absl::FromUnixSeconds(1700000000);
  FakeAdmin admin(std::move(data), JsonStyle::kCamel);
  ChromiumRun run = RunChromium(admin.Url(), {"--dump-dom"});
  ASSERT_TRUE(run.finished) << run.err;
  const std::string& dom = run.out;
  SaveDom(dom);
  ASSERT_TRUE(Has(dom, "id=\"js-errors\"")) << dom.substr(0, 2000);
  EXPECT_EQ(JsErrors(dom), "");
  EXPECT_EQ(Uncaught(run.err), "");
  EXPECT_TRUE(Has(dom, "no rollout yet"));
  EXPECT_TRUE(Has(dom, "Rollout: HTTP 503: no rollout controller"));
  EXPECT_TRUE(Has(dom, "No decisions yet."));
  EXPECT_TRUE(Has(dom, "No major differences."));
  EXPECT_TRUE(Has(dom, "No health data yet."));
  EXPECT_GE(Count(dom, ">no data yet</text>"), 6u);
  EXPECT_EQ(Count(dom, "class=\"series\""), 0u);
}

// A screenshot of the populated dashboard, kept in the build dir.
TEST_F(DashboardPageTest, ScreenshotOfPopulatedDashboard) {
  FakeAdmin admin(ChromiumTest::History(), JsonStyle::kCamel);
  const std::string path = std::string(UNDERSTUDY_REPORT_ARTIFACT_DIR) + "/dashboard.png";
  std::remove(path.c_str());
  ChromiumRun run = RunChromium(
      admin.Url(), {"--screenshot=" + path, "--window-size=1280,1600", "--hide-scrollbars"});
  ASSERT_TRUE(run.finished) << run.err;
  EXPECT_EQ(Uncaught(run.err), "");
  std::string png = ReadFile(path);
  ASSERT_GT(png.size(), 20000u) << "no screenshot at " << path << "; stderr:\n" << run.err;
  EXPECT_EQ(png.substr(0, 8), std::string("\x89PNG\r\n\x1a\n", 8));
  std::cout << "dashboard screenshot: " << path << std::endl;
  RecordProperty("screenshot", path);
}

// What the fake admin saw of a rollback POST.
struct RollbackSeen {
  absl::Mutex mu;
  int posts = 0;
  std::string authorization, actor, reason;
};

// The test script a user would be: fill in the form, accept the confirm
// dialog and submit.
std::string RollbackScript(const std::string& token) {
  return absl::StrCat(
      "<script>\n"
      "window.confirm = function () { return true; };\n"
      "document.getElementById('rb-reason').value = 'answers are wrong';\n"
      "document.getElementById('rb-actor').value = 'dana';\n"
      "document.getElementById('rb-token').value = '",
      token,
      "';\n"
      "document.getElementById('rb-form').requestSubmit();\n"
      "</script>\n");
}

// The rollback form POSTs the reason and actor with the bearer token, and
// shows the decision the admin API returns; the token never reaches the DOM.
TEST_F(DashboardPageTest, RollbackButtonPostsWithBearerToken) {
  const std::string token = absl::StrCat("tok-", getpid(), "-ok");
  ManualClock clock(absl::FromUnixSeconds(1700000000));
  rollout::RolloutConfig config = testing::HistoryConfig();
  rollout::Router router("rollback-test");
  rollout::InMemoryTransitionLog log;
  rollout::Controller controller(config, clock, router, log);
  ApiData data;
  data.has_rollout = true;
  data.state = controller.State();
  data.health = controller.Health();
  for (const auto& st : config.stages) data.stages.push_back(st.percent);
  data.now = clock.Now();
  RollbackSeen seen;
  auto on_rollback = [&](const httplib::Request& req, httplib::Response& res) {
    nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    absl::MutexLock lock(&seen.mu);
    ++seen.posts;
    seen.authorization = req.get_header_value("Authorization");
    if (body.is_object()) {
      seen.actor = body.value("actor", "");
      seen.reason = body.value("reason", "");
    }
    absl::StatusOr<v1::Decision> d = controller.Rollback(seen.actor, seen.reason);
    ASSERT_TRUE(d.ok()) << d.status();
    res.set_content(absl::StrCat("{\"decision\":", ToJson(*d, JsonStyle::kCamel),
                                 ",\"state\":", ToJson(controller.State(), JsonStyle::kCamel), "}"),
                    "application/json");
  };
  FakeAdmin admin(std::move(data), JsonStyle::kCamel, RollbackScript(token), on_rollback);
  ChromiumRun run = RunChromium(admin.Url(), {"--dump-dom"});
  ASSERT_TRUE(run.finished) << run.err;
  const std::string& dom = run.out;
  SaveDom(dom);
  EXPECT_EQ(JsErrors(dom), "");
  EXPECT_EQ(Uncaught(run.err), "");
  {
    absl::MutexLock lock(&seen.mu);
    EXPECT_EQ(seen.posts, 1);
    EXPECT_EQ(seen.authorization, "Bearer " + token);
    EXPECT_EQ(seen.actor, "dana");
    EXPECT_EQ(seen.reason, "answers are wrong");
  }
  EXPECT_EQ(controller.State().phase(), v1::PHASE_ROLLED_BACK);
  EXPECT_TRUE(Has(dom,
                  "<div id=\"rb-result\" class=\"ok\">Rolled back: rolled back by dana: "
                  "answers are wrong</div>"));
  // Only the test's own script holds the token: no attribute or text does.
  size_t injected = dom.find("window.confirm = function");
  ASSERT_NE(injected, std::string::npos);
  EXPECT_EQ(dom.substr(0, injected).find(token), std::string::npos);
}

// A refused rollback (401) is shown with a hint about the token.
TEST_F(DashboardPageTest, RollbackRefusedShowsTheError) {
  ApiData data;
  data.now = absl::FromUnixSeconds(1700000000);
  auto on_rollback = [](const httplib::Request&, httplib::Response& res) {
    res.status = 401;
    res.set_content("{\"error\":{\"code\":\"UNAUTHENTICATED\",\"message\":\"bad token\"}}",
                    "application/json");
  };
  FakeAdmin admin(std::move(data), JsonStyle::kCamel, RollbackScript("wrong"), on_rollback);
  ChromiumRun run = RunChromium(admin.Url(), {"--dump-dom"});
  ASSERT_TRUE(run.finished) << run.err;
  SaveDom(run.out);
  EXPECT_EQ(JsErrors(run.out), "");
  EXPECT_TRUE(Has(run.out, "Rollback refused (HTTP 401): bad token — check the admin token."));
}

// With auth on and no token entered, the page's polls get 401: it says a
// token is needed, renders no data and raises no script error.
TEST_F(DashboardPageTest, WithoutATokenThePageAsksForOne) {
  FakeAdmin admin(History(), JsonStyle::kSnake);
  admin.RequireToken(absl::StrCat("tok-", getpid(), "-needed"));
  ChromiumRun run = RunChromium(admin.Url(), {"--dump-dom"});
  ASSERT_TRUE(run.finished) << run.err;
  SaveDom(run.out);
  EXPECT_EQ(JsErrors(run.out), "");
  EXPECT_EQ(Uncaught(run.err), "");
  EXPECT_THAT(StatusLine(run.out),
              ::testing::StartsWith("the admin API needs a token: enter it above · 4 of 4 "
                                    "requests failed (HTTP 401: Authorization: required"));
  EXPECT_TRUE(Has(run.out, "<span id=\"status\" class=\"bad\">"));
  EXPECT_TRUE(Lacks(run.out, "rolled back by alice"));
  std::vector<std::string> auth = admin.Authorizations();
  ASSERT_FALSE(auth.empty());
  for (const std::string& a : auth) EXPECT_EQ(a, "");
}

// The token the user types into the header's field (here a read-only one)
// goes on every data call from then on, the page renders, and the token is
// kept in sessionStorage only: no attribute or text of the page holds it.
TEST_F(DashboardPageTest, TheEnteredTokenIsSentOnEveryRead) {
  const std::string token = absl::StrCat("tok-", getpid(), "-read");
  const std::string script = absl::StrCat(
      "<script>\n"
      "document.getElementById('auth-token').value = '", token, "';\n"
      "document.getElementById('auth-form').requestSubmit();\n"
      "window.__stored = sessionStorage.getItem('understudy.apiToken') === '", token, "';\n"
      "document.getElementById('js-errors').dataset.stored = String(window.__stored);\n"
      "</script>\n");
  FakeAdmin admin(History(), JsonStyle::kSnake, script);
  admin.RequireToken(token);
  ChromiumRun run = RunChromium(admin.Url(), {"--dump-dom"});
  ASSERT_TRUE(run.finished) << run.err;
  const std::string& dom = run.out;
  SaveDom(dom);
  EXPECT_EQ(JsErrors(dom), "");
  EXPECT_EQ(Uncaught(run.err), "");
  EXPECT_TRUE(Has(dom, "rolled back by alice: bad answers in #support"));
  EXPECT_TRUE(Has(dom, "<strong>req-script</strong>"));
  EXPECT_THAT(StatusLine(dom), ::testing::StartsWith("updated "));
  EXPECT_TRUE(Has(dom, "data-stored=\"true\""));
  // The first poll may have gone out before the token was entered; every
  // call after the first authorised one carries it.
  std::vector<std::string> auth = admin.Authorizations();
  auto first = std::find(auth.begin(), auth.end(), "Bearer " + token);
  ASSERT_NE(first, auth.end());
  for (auto it = first; it != auth.end(); ++it) EXPECT_EQ(*it, "Bearer " + token);
  EXPECT_GE(auth.end() - first, 4);  // rollout, health, decisions, comparisons
  // Only the test's own script holds the token.
  size_t injected = dom.find("document.getElementById('auth-token').value");
  ASSERT_NE(injected, std::string::npos);
  EXPECT_EQ(dom.substr(0, injected).find(token), std::string::npos);
  EXPECT_EQ(dom.substr(dom.find("</script>", injected)).find(token), std::string::npos);
}

// The real sidecar's admin port serves the page: a Sidecar started in-process
// with live traffic through the Envoy-faithful driver, then the dashboard
// rendered by Chromium from the real API (proto-field-name JSON, int64 as
// strings) with no script errors.
TEST_F(DashboardPageTest, RealSidecarServesAWorkingDashboard) {
  TempDir dir;
  envoy_driver::TestUpstream production_http("production");
  const std::string yaml = absl::StrCat(R"(
extproc: {listen: "127.0.0.1:0"}
admin: {listen: "127.0.0.1:0"}
routing: {sticky_header: x-user-id}
rollout:
  tick_interval: 1s
  stages: [{percent: 10, min_bake: 1h, min_samples: 1000}, {percent: 100}]
storage: {path: ")", dir.path(), R"(/data"}
)");
  absl::StatusOr<ConfigNode> root = ConfigNode::Parse(yaml, "test.yaml");
  ASSERT_TRUE(root.ok()) << root.status();
  absl::StatusOr<sidecar::SidecarConfig> config = sidecar::ParseSidecarConfig(*root);
  ASSERT_TRUE(config.ok()) << config.status();
  auto started = sidecar::Sidecar::Start(*std::move(config), {});
  ASSERT_TRUE(started.ok()) << started.status();
  std::unique_ptr<sidecar::Sidecar> sidecar = std::move(*started);
  std::unique_ptr<envoy_driver::Upstream> upstream =
      envoy_driver::NewCurlUpstream(production_http.url());
  envoy_driver::EnvoyDriver driver(
      grpc::CreateChannel(absl::StrCat("127.0.0.1:", sidecar->extproc_port()),
                          grpc::InsecureChannelCredentials()),
      envoy_driver::FilterChain::TwoFilter(),
      {{"production", upstream.get()}, {"candidate", upstream.get()}});
  for (int i = 0; i < 40; ++i) {
    envoy_driver::HttpRequest r;
    r.headers = {{"x-user-id", absl::StrCat("user-", i)}};
    r.body_chunks = {R"({"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]})"};
    ASSERT_TRUE(driver.Send(r).ok());
  }
  ASSERT_TRUE(sidecar->engine().Tick().ok());  // a stored health snapshot
  sidecar->engine().WaitIdle();

  ChromiumRun run =
      RunChromium(absl::StrCat("http://127.0.0.1:", sidecar->admin_port(), "/"), {"--dump-dom"});
  ASSERT_TRUE(run.finished) << run.err;
  SaveDom(run.out);
  EXPECT_EQ(JsErrors(run.out), "");
  EXPECT_EQ(Uncaught(run.err), "");
  EXPECT_TRUE(Has(run.out, "<svg"));
  EXPECT_TRUE(Has(run.out, "canary"));
  sidecar->Shutdown(absl::Seconds(1));
}

}  // namespace
}  // namespace understudy::report
