// The admin HTTP API over real loopback HTTP: routes, manual commands
// against a real controller, auth, validation, errors.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/admin/admin_fixture.h"

namespace understudy::admin {
namespace {

using nlohmann::json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;
using ::understudy::testing::StatusIs;

constexpr char kJsonType[] = "application/json";

class AdminServerTest : public AdminFixture {
 protected:
  void SetUp() override { StartServer(); }

  httplib::Result Post(const std::string& path, const std::string& body,
                       const httplib::Headers& headers = {}) {
    return client_->Post(path.c_str(), headers, body, kJsonType);
  }

  // ExpectRejected checks a 4xx JSON error whose message contains `needle`
  // and that nothing changed.
  void ExpectRejected(const httplib::Result& r, int status, const std::string& needle) {
    ASSERT_TRUE(r) << "no HTTP answer";
    EXPECT_EQ(r->status, status) << r->body;
    EXPECT_THAT(r->get_header_value("Content-Type"), StartsWith(kJsonType));
    EXPECT_THAT(ErrorMessage(r), HasSubstr(needle));
    EXPECT_EQ(log_.size(), 0u) << "a rejected request committed a transition";
    EXPECT_EQ(controller_->State().phase(), understudy::v1::PHASE_SHADOW);
    EXPECT_EQ(router_.WeightBasisPoints(), 0);
    absl::MutexLock lock(&mu_);
    EXPECT_TRUE(notified_.empty());
  }

  understudy::v1::Comparison MakeComparison(const std::string& id, understudy::v1::Verdict v,
                                            absl::Duration ago) {
    understudy::v1::Comparison c;
    c.set_request_id(id);
    c.set_verdict(v);
    c.set_time_unix_micros(absl::ToUnixMicros(clock_.Now() - ago));
    auto* f = c.add_findings();
    f->set_kind("salient_token");
    f->set_message("number changed");
    f->set_major(v == understudy::v1::VERDICT_MAJOR_DIFF);
    return c;
  }
};

// /healthz answers without any backend.
TEST_F(AdminServerTest, HealthzSaysOk) {
  httplib::Result r = client_->Get("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(Json(r), json({{"status", "ok"}}));
}

// /v1/rollout shows the controller's state and health with proto field
// names, and the configured stage percents.
TEST_F(AdminServerTest, RolloutShowsStateHealthAndStages) {
  httplib::Result r = client_->Get("/v1/rollout");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = Json(r);
  EXPECT_EQ(j["stages"], json({0, 1, 5, 25, 50, 100}));
  EXPECT_EQ(j["state"]["phase"], "PHASE_SHADOW");
  EXPECT_EQ(j["state"]["stage_index"], 0);
  EXPECT_EQ(j["state"]["weight_basis_points"], 0);
  EXPECT_TRUE(j["health"].contains("production"));
  EXPECT_EQ(j["health"]["time_unix_micros"], std::to_string(absl::ToUnixMicros(clock_.Now())));
}

// promote moves to the next stage; the transition is in the log and the
// engine was told before the reply arrived.
TEST_F(AdminServerTest, PromoteCommitsBeforeReplying) {
  httplib::Result r = Post("/v1/rollout/promote", R"({"actor":"alice"})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  json j = Json(r);
  EXPECT_EQ(j["decision"]["action"], "ACTION_PROMOTE");
  EXPECT_EQ(j["decision"]["actor"], "alice");
  EXPECT_EQ(j["state"]["stage_index"], 1);
  EXPECT_EQ(j["state"]["weight_basis_points"], 100);
  EXPECT_EQ(j["state"]["phase"], "PHASE_CANARY");

  EXPECT_EQ(controller_->State().stage_index(), 1);
  EXPECT_EQ(router_.WeightBasisPoints(), 100);
  ASSERT_EQ(log_.size(), 1u);
  EXPECT_EQ(log_.Decisions()[0].actor(), "alice");
  EXPECT_EQ(std::to_string(log_.Decisions()[0].time_unix_micros()),
            j["decision"]["time_unix_micros"]);
  absl::MutexLock lock(&mu_);
  ASSERT_EQ(notified_.size(), 1u);
  EXPECT_EQ(notified_[0].action(), understudy::v1::ACTION_PROMOTE);
  EXPECT_THAT(log_size_when_notified_, ElementsAre(1u));
}

// to_full goes straight to 100%; actor defaults to "admin"; an empty body
// is an empty object.
TEST_F(AdminServerTest, PromoteToFullWithDefaultActor) {
  httplib::Result r = Post("/v1/rollout/promote", R"({"to_full":true})");
  ASSERT_TRUE(r);
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(Json(r)["decision"]["actor"], "admin");
  EXPECT_EQ(controller_->State().phase(), understudy::v1::PHASE_PROMOTED);
  EXPECT_EQ(router_.WeightBasisPoints(), 10000);

  // Promoting again is an invalid transition: 409, nothing logged.
  r = Post("/v1/rollout/promote", "");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 409);
  EXPECT_EQ(Json(r)["error"]["code"], "FAILED_PRECONDITION");
  EXPECT_THAT(ErrorMessage(r), HasSubstr("already promoted"));
  EXPECT_EQ(log_.size(), 1u);
}

// pause → resume → set weight → rollback, each changing the controller.
TEST_F(AdminServerTest, PauseResumeWeightRollback) {
  ASSERT_EQ(Post("/v1/rollout/promote", "{}")->status, 200);

  httplib::Result r = Post("/v1/rollout/pause", R"({"actor":"bob","reason":"lunch"})");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(controller_->State().phase(), understudy::v1::PHASE_PAUSED);
  EXPECT_THAT(controller_->State().paused_reason(), HasSubstr("lunch"));

  r = Post("/v1/rollout/resume", R"({"actor":"bob"})");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(controller_->State().phase(), understudy::v1::PHASE_CANARY);

  r = Post("/v1/rollout/weight", R"({"actor":"bob","percent":12.5})");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(Json(r)["decision"]["action"], "ACTION_SET_WEIGHT");
  EXPECT_EQ(router_.WeightBasisPoints(), 1250);
  EXPECT_EQ(Json(r)["state"]["weight_basis_points"], 1250);

  r = Post("/v1/rollout/rollback", R"({"actor":"bob","reason":"bad answers"})");
  ASSERT_EQ(r->status, 200) << r->body;
  EXPECT_EQ(controller_->State().phase(), understudy::v1::PHASE_ROLLED_BACK);
  EXPECT_EQ(router_.WeightBasisPoints(), 0);
  EXPECT_THAT(controller_->State().last_reason(), HasSubstr("bad answers"));

  ASSERT_EQ(log_.size(), 5u);
  std::vector<understudy::v1::DecisionAction> actions;
  for (const auto& d : log_.Decisions()) actions.push_back(d.action());
  EXPECT_THAT(actions, ElementsAre(understudy::v1::ACTION_PROMOTE, understudy::v1::ACTION_PAUSE,
                                   understudy::v1::ACTION_RESUME, understudy::v1::ACTION_SET_WEIGHT,
                                   understudy::v1::ACTION_ROLLBACK));
  absl::MutexLock lock(&mu_);
  EXPECT_EQ(notified_.size(), 5u);
  EXPECT_THAT(log_size_when_notified_, ElementsAre(1u, 2u, 3u, 4u, 5u));
}

// resume when nothing is paused is a conflict, not a server error.
TEST_F(AdminServerTest, InvalidTransitionIs409) {
  ExpectRejected(Post("/v1/rollout/resume", "{}"), 409, "not paused");
}

// The transition log fails to commit: 5xx, and the rollout has not moved.
TEST_F(AdminServerTest, FailedCommitIsServerErrorAndChangesNothing) {
  log_.FailNextCommit(absl::UnavailableError("disk full"));
  httplib::Result r = Post("/v1/rollout/promote", "{}");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 503);
  EXPECT_THAT(ErrorMessage(r), HasSubstr("disk full"));
  EXPECT_EQ(controller_->State().stage_index(), 0);
  EXPECT_EQ(router_.WeightBasisPoints(), 0);
  EXPECT_EQ(log_.size(), 0u);
  {
    absl::MutexLock lock(&mu_);
    EXPECT_TRUE(notified_.empty());
  }
  log_.FailNextCommit(absl::InternalError("bug"));
  r = Post("/v1/rollout/rollback", R"({"reason":"x"})");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(controller_->State().phase(), understudy::v1::PHASE_SHADOW);
}

// Each malformed command is rejected with a message naming the field.
TEST_F(AdminServerTest, MalformedJsonIsRejected) {
  ExpectRejected(Post("/v1/rollout/promote", "{not json"), 400, "invalid JSON");
}
TEST_F(AdminServerTest, NonObjectBodyIsRejected) {
  ExpectRejected(Post("/v1/rollout/promote", "[1,2]"), 400, "must be a JSON object");
}
TEST_F(AdminServerTest, WrongTypesAreRejected) {
  ExpectRejected(Post("/v1/rollout/promote", R"({"to_full":"yes"})"), 400, "to_full: must be");
  ExpectRejected(Post("/v1/rollout/promote", R"({"actor":5})"), 400, "actor: must be a string");
  ExpectRejected(Post("/v1/rollout/pause", R"({"reason":3})"), 400, "reason: must be a string");
  ExpectRejected(Post("/v1/rollout/weight", R"({"percent":"50"})"), 400,
                 "percent: must be a number");
  ExpectRejected(Post("/v1/rollout/weight", R"({"percent":true})"), 400,
                 "percent: must be a number");
}
TEST_F(AdminServerTest, UnknownFieldIsRejected) {
  ExpectRejected(Post("/v1/rollout/pause", R"({"resaon":"typo"})"), 400, "resaon: unknown field");
}
TEST_F(AdminServerTest, RollbackWithoutReasonIsRejected) {
  ExpectRejected(Post("/v1/rollout/rollback", R"({"actor":"alice"})"), 400, "reason: required");
  ExpectRejected(Post("/v1/rollout/rollback", R"({"reason":"  "})"), 400,
                 "reason: must not be empty");
}
TEST_F(AdminServerTest, PercentOutOfRangeIsRejected) {
  ExpectRejected(Post("/v1/rollout/weight", R"({"percent":101})"), 400,
                 "percent: must be in 0..100");
  ExpectRejected(Post("/v1/rollout/weight", R"({"percent":-0.5})"), 400, "percent: must be in");
  ExpectRejected(Post("/v1/rollout/weight", R"({})"), 400, "percent: required");
}
TEST_F(AdminServerTest, EmptyActorIsRejected) {
  ExpectRejected(Post("/v1/rollout/promote", R"({"actor":""})"), 400, "actor: must not be empty");
  ExpectRejected(Post("/v1/rollout/promote", R"({"actor":"judge"})"), 400, "reserved");
}

// A body over max_body_bytes is refused with 413 and a JSON error.
TEST_F(AdminServerTest, HugeBodyIs413) {
  std::string huge = R"({"actor":"alice","reason":")" + std::string(100000, 'x') + R"("})";
  ExpectRejected(Post("/v1/rollout/rollback", huge), 413, "max_body_bytes (4096 bytes)");
  EXPECT_EQ(Json(Post("/v1/rollout/rollback", huge))["error"]["code"], "PAYLOAD_TOO_LARGE");
}

// A chunked body (no Content-Length) over the limit is refused the same way.
TEST_F(AdminServerTest, HugeChunkedBodyIs413) {
  std::string chunk(1024, ' ');
  httplib::Result r = client_->Post(
      "/v1/rollout/promote",
      [&](size_t offset, httplib::DataSink& sink) {
        if (offset >= 10 * chunk.size()) {
          sink.done();
        } else {
          sink.write(chunk.data(), chunk.size());
        }
        return true;
      },
      kJsonType);
  ExpectRejected(r, 413, "max_body_bytes");
}

// Bytes that are not UTF-8 in a query are echoed safely.
TEST_F(AdminServerTest, InvalidUtf8InQueryIsA400) {
  httplib::Result r = client_->Get("/v1/comparisons?verdict=%FF%FE");
  ExpectRejected(r, 400, "verdict: unknown verdict");
}

// HEAD behaves as GET without a body; an unknown method is a JSON 400.
TEST_F(AdminServerTest, HeadAndUnknownMethod) {
  httplib::Result r = client_->Head("/healthz");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_TRUE(r->body.empty());

  httplib::Request req;
  req.method = "BREW";
  req.path = "/healthz";
  r = client_->send(req);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(Json(r)["error"]["code"], "INVALID_ARGUMENT");
}

// With a token, every route but /healthz and / needs it, GETs included;
// the error never echoes the token.
TEST_F(AdminServerTest, TokenRequiredOnPostsAndReads) {
  std::string token = "admin-" + std::to_string(::getpid()) + "-secret";
  StartServer(token);
  ExpectRejected(Post("/v1/rollout/promote", "{}"), 401, "Authorization: required");
  EXPECT_EQ(Post("/v1/rollout/promote", "{}")->get_header_value("WWW-Authenticate"),
            "Bearer realm=\"understudy\"");
  ExpectRejected(Post("/v1/rollout/promote", "{}", {{"Authorization", "Bearer " + token + "x"}}),
                 401, "wrong token");
  ExpectRejected(Post("/v1/rollout/promote", "{}", {{"Authorization", "Bearer wrong"}}), 401,
                 "wrong token");
  ExpectRejected(Post("/v1/rollout/promote", "{}", {{"Authorization", "Basic " + token}}), 401,
                 "Bearer");
  ExpectRejected(Post("/v1/feedback", R"({"request_id":"r","score":1})"), 401, "Authorization");
  EXPECT_EQ(ErrorMessage(Post("/v1/rollout/promote", "{}")).find(token), std::string::npos);

  httplib::Result get = client_->Get("/v1/rollout");
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 401) << get->body;
  EXPECT_EQ(get->get_header_value("WWW-Authenticate"), "Bearer realm=\"understudy\"");
  get = client_->Get("/v1/rollout", {{"Authorization", "Bearer " + token}});
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200) << get->body;
  // The scheme is case-insensitive (RFC 7235).
  get = client_->Get("/v1/rollout", {{"Authorization", "bearer " + token}});
  ASSERT_TRUE(get);
  EXPECT_EQ(get->status, 200) << get->body;

  httplib::Result ok = Post("/v1/rollout/promote", "{}", {{"Authorization", "Bearer " + token}});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, 200) << ok->body;
  EXPECT_EQ(controller_->State().stage_index(), 1);
}

// The auth matrix: every route the server has (admin::Routes()) x {no
// token, a wrong token, the read-only token, the admin token}, against a
// live server. Reads take either token, writes only the admin token (403
// with the read-only one), /healthz and the data-free page take none, and
// a rejected request changes nothing.
TEST_F(AdminServerTest, AuthMatrixCoversEveryRoute) {
  const std::string admin_token = "admin-" + std::to_string(::getpid()) + "-matrix";
  const std::string read_token = "read-" + std::to_string(::getpid()) + "-matrix";
  AdminConfig config;
  config.token = admin_token;
  config.read_token = read_token;
  // What each route is called with, who may call it, and what it answers
  // when let in (on a fresh controller in the shadow stage: resume is then a
  // 409, which is past auth all the same). Who may call it is written here,
  // not read from the server's table, so opening a route fails this test.
  enum Needs { kNothing, kAnyToken, kAdminToken };
  struct Call {
    std::string target;  // path and query
    std::string body;
    Needs needs;
    int ok_status;
  };
  const std::map<std::pair<std::string, std::string>, Call> calls = {
      {{"GET", "/healthz"}, {"/healthz", "", kNothing, 200}},
      {{"GET", "/v1/rollout"}, {"/v1/rollout", "", kAnyToken, 200}},
      {{"POST", "/v1/rollout/promote"}, {"/v1/rollout/promote", "{}", kAdminToken, 200}},
      {{"POST", "/v1/rollout/pause"}, {"/v1/rollout/pause", R"({"reason":"m"})", kAdminToken, 200}},
      {{"POST", "/v1/rollout/resume"}, {"/v1/rollout/resume", "{}", kAdminToken, 409}},
      {{"POST", "/v1/rollout/rollback"},
       {"/v1/rollout/rollback", R"({"reason":"m"})", kAdminToken, 200}},
      {{"POST", "/v1/rollout/weight"},
       {"/v1/rollout/weight", R"({"percent":5})", kAdminToken, 200}},
      {{"POST", "/v1/feedback"},
       {"/v1/feedback", R"({"request_id":"m","score":1})", kAdminToken, 202}},
      {{"GET", "/v1/comparisons"}, {"/v1/comparisons?limit=5", "", kAnyToken, 200}},
      {{"GET", "/v1/decisions"}, {"/v1/decisions", "", kAnyToken, 200}},
      {{"GET", "/v1/evals"}, {"/v1/evals?limit=5", "", kAnyToken, 200}},
      {{"GET", "/v1/health"}, {"/v1/health", "", kAnyToken, 200}},
      {{"GET", "/v1/report"}, {"/v1/report?format=json", "", kAnyToken, 200}},
      {{"GET", "/metrics"}, {"/metrics", "", kAnyToken, 200}},  // metrics_public is off
      {{"GET", "/"}, {"/", "", kNothing, 200}},                 // the page holds no data
  };
  // A route added to the server without a line above fails here.
  ASSERT_EQ(Routes().size(), calls.size());
  enum Who { kNone, kWrong, kRead, kAdmin };
  const char* who_names[] = {"no token", "wrong token", "read-only token", "admin token"};
  for (const RouteInfo& route : Routes()) {
    auto it = calls.find({std::string(route.method), std::string(route.path)});
    ASSERT_NE(it, calls.end()) << route.method << " " << route.path << " has no case";
    const Call& call = it->second;
    for (Who who : {kNone, kWrong, kRead, kAdmin}) {
      SCOPED_TRACE(std::string(route.method) + " " + std::string(route.path) + " with " +
                   who_names[who]);
      StartServerWith(config);  // a fresh controller: every admin call starts from shadow
      httplib::Headers headers;
      if (who == kWrong) headers = {{"Authorization", "Bearer " + admin_token + "-not"}};
      if (who == kRead) headers = {{"Authorization", "Bearer " + read_token}};
      if (who == kAdmin) headers = {{"Authorization", "Bearer " + admin_token}};
      const size_t log_before = log_.size();
      size_t feedback_before;
      {
        absl::MutexLock lock(&mu_);
        feedback_before = feedback_.size();
      }
      httplib::Result r = route.method == std::string_view("POST")
                              ? client_->Post(call.target.c_str(), headers, call.body, kJsonType)
                              : client_->Get(call.target.c_str(), headers);
      ASSERT_TRUE(r) << "no HTTP answer";
      int want = call.ok_status;
      if (call.needs != kNothing && (who == kNone || who == kWrong)) want = 401;
      if (call.needs == kAdminToken && who == kRead) want = 403;
      EXPECT_EQ(r->status, want) << r->body;
      if (want == 401 || want == 403) {
        EXPECT_THAT(r->get_header_value("Content-Type"), StartsWith(kJsonType));
        EXPECT_EQ(Json(r)["error"]["code"], want == 401 ? "UNAUTHENTICATED" : "PERMISSION_DENIED")
            << r->body;
        EXPECT_THAT(r->get_header_value("WWW-Authenticate"), StartsWith("Bearer realm="));
        EXPECT_EQ(r->body.find(admin_token), std::string::npos);
        EXPECT_EQ(r->body.find(read_token), std::string::npos);
        EXPECT_EQ(log_.size(), log_before) << "a refused request committed a transition";
        absl::MutexLock lock(&mu_);
        EXPECT_EQ(feedback_.size(), feedback_before) << "a refused request submitted feedback";
      }
      // HEAD is served as GET, auth included.
      if (route.method == std::string_view("GET")) {
        httplib::Result head = client_->Head(call.target.c_str(), headers);
        ASSERT_TRUE(head);
        EXPECT_EQ(head->status, want);
      }
    }
  }
}

// metrics_public leaves GET /metrics open for a scraper without a token;
// every other data route still needs one.
TEST_F(AdminServerTest, MetricsPublicOpensOnlyMetrics) {
  AdminConfig config;
  config.token = "admin-" + std::to_string(::getpid()) + "-public";
  config.metrics_public = true;
  StartServerWith(config);
  httplib::Result metrics = client_->Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->body, HasSubstr("understudy_requests_total"));
  for (const char* path : {"/v1/rollout", "/v1/comparisons", "/v1/decisions", "/v1/health",
                           "/v1/report"}) {
    httplib::Result r = client_->Get(path);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401) << path;
  }
  ExpectRejected(Post("/v1/rollout/promote", "{}"), 401, "Authorization: required");
}

// A second score for a request is the backend's AlreadyExists: a 409 with
// the reason, like an invalid transition.
TEST_F(AdminServerTest, DuplicateFeedbackIs409) {
  AdminBackend backend = MakeBackend();
  backend.submit_feedback = [](understudy::v1::Feedback f) {
    return absl::AlreadyExistsError(
        absl::StrCat("request_id: \"", f.request_id(), "\" already has a score"));
  };
  AdminConfig config;
  config.listen = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<AdminServer>> server = AdminServer::Start(config, backend);
  ASSERT_OK(server);
  httplib::Client client("127.0.0.1", (*server)->port());
  httplib::Result r = client.Post("/v1/feedback", R"({"request_id":"r1","score":1})", kJsonType);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 409);
  EXPECT_EQ(Json(r)["error"]["code"], "ALREADY_EXISTS");
  EXPECT_THAT(ErrorMessage(r), HasSubstr("\"r1\" already has a score"));
}

// Feedback accepts numbers in [0,1], up/down and booleans.
TEST_F(AdminServerTest, FeedbackForms) {
  struct Case {
    std::string body;
    double score;
  };
  for (const Case& c :
       std::vector<Case>{{R"({"request_id":"a","score":0.25})", 0.25},
                         {R"({"request_id":"b","score":"up"})", 1.0},
                         {R"({"request_id":"c","score":"down"})", 0.0},
                         {R"({"request_id":"d","score":true})", 1.0},
                         {R"({"request_id":"e","score":false,"comment":"meh"})", 0.0}}) {
    httplib::Result r = Post("/v1/feedback", c.body);
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 202) << c.body << " → " << r->body;
    EXPECT_EQ(Json(r), json({{"accepted", true}}));
  }
  absl::MutexLock lock(&mu_);
  ASSERT_EQ(feedback_.size(), 5u);
  EXPECT_EQ(feedback_[0].request_id(), "a");
  EXPECT_DOUBLE_EQ(feedback_[0].score(), 0.25);
  EXPECT_DOUBLE_EQ(feedback_[1].score(), 1.0);
  EXPECT_DOUBLE_EQ(feedback_[2].score(), 0.0);
  EXPECT_DOUBLE_EQ(feedback_[3].score(), 1.0);
  EXPECT_EQ(feedback_[4].comment(), "meh");
  EXPECT_EQ(feedback_[4].source(), understudy::v1::FEEDBACK_SOURCE_ADMIN);
}

// Bad feedback is rejected and not submitted.
TEST_F(AdminServerTest, BadFeedbackIsRejected) {
  ExpectRejected(Post("/v1/feedback", R"({"request_id":"a","score":1.5})"), 400,
                 "score: must be in [0,1]");
  ExpectRejected(Post("/v1/feedback", R"({"request_id":"a","score":"sideways"})"), 400,
                 "score: must be a number in [0,1]");
  ExpectRejected(Post("/v1/feedback", R"({"request_id":"a"})"), 400, "score: required");
  ExpectRejected(Post("/v1/feedback", R"({"score":1})"), 400, "request_id: required");
  ExpectRejected(Post("/v1/feedback", R"({"request_id":7,"score":1})"), 400,
                 "request_id: must be a string");
  absl::MutexLock lock(&mu_);
  EXPECT_TRUE(feedback_.empty());
}

// Comparisons come newest first, filtered by verdict, limit and age.
TEST_F(AdminServerTest, ComparisonsFilteredNewestFirst) {
  using understudy::v1::VERDICT_EQUIVALENT;
  using understudy::v1::VERDICT_MAJOR_DIFF;
  ASSERT_OK(store_.PutComparison(MakeComparison("old-major", VERDICT_MAJOR_DIFF, absl::Hours(2))));
  ASSERT_OK(store_.PutComparison(MakeComparison("eq", VERDICT_EQUIVALENT, absl::Minutes(30))));
  ASSERT_OK(
      store_.PutComparison(MakeComparison("new-major", VERDICT_MAJOR_DIFF, absl::Minutes(1))));

  json j = Json(client_->Get("/v1/comparisons"));
  ASSERT_EQ(j["comparisons"].size(), 3u) << j;
  EXPECT_EQ(j["comparisons"][0]["request_id"], "new-major");
  EXPECT_EQ(j["comparisons"][2]["request_id"], "old-major");
  EXPECT_EQ(j["comparisons"][0]["verdict"], "VERDICT_MAJOR_DIFF");

  j = Json(client_->Get("/v1/comparisons?verdict=major_diff"));
  ASSERT_EQ(j["comparisons"].size(), 2u) << j;
  EXPECT_EQ(j["comparisons"][1]["request_id"], "old-major");

  j = Json(client_->Get("/v1/comparisons?verdict=major_diff&since_seconds=3600"));
  ASSERT_EQ(j["comparisons"].size(), 1u) << j;
  EXPECT_EQ(j["comparisons"][0]["request_id"], "new-major");

  j = Json(client_->Get("/v1/comparisons?limit=1"));
  ASSERT_EQ(j["comparisons"].size(), 1u) << j;
  EXPECT_EQ(j["comparisons"][0]["request_id"], "new-major");

  j = Json(client_->Get("/v1/comparisons?verdict=equivalent,major_diff&limit=2"));
  ASSERT_EQ(j["comparisons"].size(), 2u) << j;
  EXPECT_EQ(j["comparisons"][1]["request_id"], "eq");
}

// Query parameters are validated; the message names the parameter.
TEST_F(AdminServerTest, BadQueryParametersAre400) {
  ExpectRejected(client_->Get("/v1/comparisons?limit=0"), 400,
                 "limit: must be a whole number in 1..1000");
  ExpectRejected(client_->Get("/v1/comparisons?limit=1001"), 400, "limit:");
  ExpectRejected(client_->Get("/v1/comparisons?limit=ten"), 400, "limit:");
  ExpectRejected(client_->Get("/v1/comparisons?verdict=bogus"), 400,
                 "verdict: unknown verdict \"bogus\"");
  ExpectRejected(client_->Get("/v1/comparisons?since_seconds=-1"), 400, "since_seconds:");
  ExpectRejected(client_->Get("/v1/comparisons?limt=5"), 400, "limt: unknown query parameter");
  ExpectRejected(client_->Get("/v1/comparisons?limit=1&limit=2"), 400,
                 "limit: given more than once");
  ExpectRejected(client_->Get("/v1/decisions?limit=0"), 400, "limit:");
  ExpectRejected(client_->Get("/v1/health?since_seconds=1.5"), 400, "since_seconds:");
  ExpectRejected(client_->Get("/v1/report?format=pdf"), 400, "format: must be md, json or html");
}

// Decisions: the newest `limit` ones, oldest first.
TEST_F(AdminServerTest, DecisionsOldestFirst) {
  for (int i = 0; i < 5; ++i) {
    understudy::v1::Decision d;
    d.set_action(understudy::v1::ACTION_HOLD);
    d.set_reason("d" + std::to_string(i));
    d.set_time_unix_micros(absl::ToUnixMicros(clock_.Now() - absl::Minutes(50 - i * 10)));
    ASSERT_OK(store_.AppendDecision(d));
  }
  json j = Json(client_->Get("/v1/decisions"));
  ASSERT_EQ(j["decisions"].size(), 5u) << j;
  EXPECT_EQ(j["decisions"][0]["reason"], "d0");
  j = Json(client_->Get("/v1/decisions?limit=2"));
  ASSERT_EQ(j["decisions"].size(), 2u) << j;
  EXPECT_EQ(j["decisions"][0]["reason"], "d3");
  EXPECT_EQ(j["decisions"][1]["reason"], "d4");
  j = Json(client_->Get("/v1/decisions?since_seconds=1500"));  // the last 25 minutes
  ASSERT_EQ(j["decisions"].size(), 2u) << j;
  EXPECT_EQ(j["decisions"][0]["reason"], "d3");
}

// Scheduled eval runs: the newest `limit` ones, oldest first; an unknown
// parameter is refused.
TEST_F(AdminServerTest, EvalRunsOldestFirst) {
  for (int i = 0; i < 3; ++i) {
    understudy::v1::EvalRun r;
    r.set_start_unix_micros(absl::ToUnixMicros(clock_.Now() - absl::Hours(3 - i)));
    r.set_dataset("d" + std::to_string(i));
    ASSERT_OK(store_.PutEvalRun(r));
  }
  json j = Json(client_->Get("/v1/evals"));
  ASSERT_EQ(j["runs"].size(), 3u) << j;
  EXPECT_EQ(j["runs"][0]["dataset"], "d0");
  j = Json(client_->Get("/v1/evals?limit=1"));
  ASSERT_EQ(j["runs"].size(), 1u) << j;
  EXPECT_EQ(j["runs"][0]["dataset"], "d2");
  ExpectRejected(client_->Get("/v1/evals?items=1"), 400, "items: unknown query parameter");
}

// Health: the last hour by default, oldest first.
TEST_F(AdminServerTest, HealthSeriesOldestFirst) {
  for (int minutes : {120, 40, 20, 10}) {
    understudy::v1::HealthSnapshot h;
    h.set_time_unix_micros(absl::ToUnixMicros(clock_.Now() - absl::Minutes(minutes)));
    h.mutable_candidate()->set_requests(minutes);
    ASSERT_OK(store_.PutHealth(h));
  }
  json j = Json(client_->Get("/v1/health"));
  ASSERT_EQ(j["snapshots"].size(), 3u) << j;
  EXPECT_EQ(j["snapshots"][0]["candidate"]["requests"], "40");
  j = Json(client_->Get("/v1/health?since_seconds=86400&limit=2"));
  ASSERT_EQ(j["snapshots"].size(), 2u) << j;
  EXPECT_EQ(j["snapshots"][0]["candidate"]["requests"], "20");
  EXPECT_EQ(j["snapshots"][1]["candidate"]["requests"], "10");
}

// A chart's hour of 10-second snapshots (360) comes back whole by default.
TEST_F(AdminServerTest, HealthDefaultsToTheWholeHour) {
  for (int i = 0; i < 360; ++i) {
    understudy::v1::HealthSnapshot h;
    h.set_time_unix_micros(absl::ToUnixMicros(clock_.Now() - absl::Seconds(10 * i)));
    ASSERT_OK(store_.PutHealth(h));
  }
  json j = Json(client_->Get("/v1/health?since_seconds=3600"));
  EXPECT_EQ(j["snapshots"].size(), 360u);
}

// Report, metrics and dashboard come from the backend with their types.
TEST_F(AdminServerTest, ReportMetricsDashboard) {
  httplib::Result r = client_->Get("/v1/report?format=html");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "report in html");
  EXPECT_THAT(r->get_header_value("Content-Type"), StartsWith("text/html"));
  r = client_->Get("/v1/report");
  EXPECT_EQ(r->body, "report in md");
  EXPECT_THAT(r->get_header_value("Content-Type"), StartsWith("text/markdown"));
  r = client_->Get("/v1/report?format=json");
  EXPECT_THAT(r->get_header_value("Content-Type"), StartsWith(kJsonType));

  r = client_->Get("/metrics");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "understudy_requests_total 3\n");
  EXPECT_THAT(r->get_header_value("Content-Type"), StartsWith("text/plain; version=0.0.4"));

  r = client_->Get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 200);
  EXPECT_THAT(r->body, HasSubstr("<title>understudy</title>"));
  EXPECT_THAT(r->get_header_value("Content-Type"), StartsWith("text/html"));
}

// Unknown paths are 404 and known paths with the wrong method 405, in JSON.
TEST_F(AdminServerTest, UnknownPathAndWrongMethod) {
  ExpectRejected(client_->Get("/v1/nope"), 404, "no such path: /v1/nope");
  ExpectRejected(Post("/v1/rollout/explode", "{}"), 404, "no such path");
  EXPECT_EQ(Json(client_->Get("/v1/nope"))["error"]["code"], "NOT_FOUND");

  httplib::Result r = client_->Get("/v1/rollout/promote");
  ExpectRejected(r, 405, "GET is not allowed on /v1/rollout/promote");
  EXPECT_EQ(r->get_header_value("Allow"), "POST");
  r = Post("/v1/rollout", "{}");
  ExpectRejected(r, 405, "POST is not allowed");
  EXPECT_EQ(r->get_header_value("Allow"), "GET, HEAD");
  ExpectRejected(client_->Delete("/healthz"), 405, "DELETE");
  EXPECT_EQ(Json(client_->Delete("/healthz"))["error"]["code"], "METHOD_NOT_ALLOWED");
}

// A backend part that is missing answers 503 for its routes only.
TEST_F(AdminServerTest, MissingBackendIs503) {
  client_.reset();
  server_.reset();
  AdminConfig config;
  config.listen = "127.0.0.1:0";
  absl::StatusOr<std::unique_ptr<AdminServer>> server = AdminServer::Start(config, AdminBackend{});
  ASSERT_OK(server);
  httplib::Client client("127.0.0.1", (*server)->port());
  EXPECT_EQ(client.Get("/healthz")->status, 200);
  for (const char* path : {"/v1/rollout", "/v1/comparisons", "/v1/decisions", "/v1/health",
                           "/v1/report", "/metrics", "/"}) {
    httplib::Result r = client.Get(path);
    ASSERT_TRUE(r) << path;
    EXPECT_EQ(r->status, 503) << path;
    EXPECT_EQ(Json(r)["error"]["code"], "UNAVAILABLE") << path;
  }
  EXPECT_EQ(client.Post("/v1/rollout/promote", "{}", kJsonType)->status, 503);
  EXPECT_EQ(client.Post("/v1/feedback", R"({"request_id":"a","score":1})", kJsonType)->status, 503);
  // Validation still comes first.
  EXPECT_EQ(client.Post("/v1/feedback", R"({"score":1})", kJsonType)->status, 400);
}

// Binding a port that is taken fails with Unavailable naming the address.
TEST_F(AdminServerTest, BindFailureNamesAddress) {
  AdminConfig config;
  config.listen = "127.0.0.1:" + std::to_string(server_->port());
  absl::StatusOr<std::unique_ptr<AdminServer>> second = AdminServer::Start(config, AdminBackend{});
  EXPECT_THAT(second, StatusIs(absl::StatusCode::kUnavailable, config.listen));

  config.listen = "127.0.0.1";
  EXPECT_THAT(AdminServer::Start(config, AdminBackend{}),
              StatusIs(absl::StatusCode::kInvalidArgument, "admin.listen"));
}

// Stop is idempotent and the port stops answering.
TEST_F(AdminServerTest, StopIsIdempotent) {
  EXPECT_EQ(server_->address(), "127.0.0.1:" + std::to_string(server_->port()));
  server_->Stop();
  server_->Stop();
  client_->set_connection_timeout(2);
  EXPECT_FALSE(client_->Get("/healthz"));
}

// Many concurrent commands: each is committed exactly once.
TEST_F(AdminServerTest, ConcurrentCommandsAreSerialised) {
  std::vector<std::thread> threads;
  std::atomic<int> ok{0}, conflict{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      httplib::Client c("127.0.0.1", server_->port());
      httplib::Result r = c.Post("/v1/rollout/pause",
                                 json({{"actor", "op" + std::to_string(i)}}).dump(), kJsonType);
      if (r && r->status == 200) ++ok;
      if (r && r->status == 409) ++conflict;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(conflict.load(), 7);
  EXPECT_EQ(log_.size(), 1u);
}

}  // namespace
}  // namespace understudy::admin
