// AdminServer: the admin HTTP API on cpp-httplib (see admin.h for routes).
//
// Every method and path goes through one catch-all handler so that unknown
// paths, wrong methods and errors all get the same JSON error shape; httplib
// only reads the body (bounded by max_body_bytes) and runs the thread pool.
#include <httplib.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstring>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "common/status_macros.h"
#include "common/strings.h"
#include "compare/compare.h"
#include "sidecar/admin/admin.h"
#include "sidecar/feedback.h"
#include "common/json_util.h"

namespace understudy::admin {

namespace {

using nlohmann::json;

constexpr std::string_view kVerdictNames =
    "equivalent, minor_diff, major_diff, candidate_error, production_error, both_error";

constexpr int kWorkerThreads = 4;
constexpr int64_t kMaxLimit = 1000;
constexpr int64_t kDefaultLimit = 100;
constexpr absl::Duration kDefaultHealthSince = absl::Hours(1);

constexpr char kJson[] = "application/json";

struct Reply {
  int status = 200;
  std::string content_type = kJson;
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};

Reply JsonReply(int status, const json& j) {
  Reply r;
  r.status = status;
  r.body = DumpJson(j) + "\n";
  return r;
}

Reply ErrorReply(int status, std::string_view code, std::string_view message) {
  return JsonReply(
      status, json{{"error", {{"code", std::string(code)}, {"message", std::string(message)}}}});
}

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

Reply StatusReply(const absl::Status& status) {
  return ErrorReply(HttpStatusFor(status.code()), Sv(absl::StatusCodeToString(status.code())),
                    Sv(status.message()));
}

// ConstantTimeEquals compares without an early exit, so the time taken does
// not tell how many leading bytes of a guessed token were right.
bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  const size_t n = std::max(a.size(), b.size());
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= x ^ y;
  }
  return diff == 0;
}

absl::StatusOr<std::string> Actor(const json& body) {
  ASSIGN_OR_RETURN(std::string actor, JsonOptionalString(body, "actor", "admin"));
  if (absl::StripAsciiWhitespace(actor).empty()) {
    return absl::InvalidArgumentError("actor: must not be empty (omit it to use \"admin\")");
  }
  if (actor.size() > 200) return absl::InvalidArgumentError("actor: longer than 200 bytes");
  return actor;
}

// ------------------------------------------------------------ query parsing

class Query {
 public:
  explicit Query(const httplib::Params& params) : params_(params) {}

  absl::Status CheckKeys(std::initializer_list<std::string_view> allowed) const {
    for (const auto& [key, value] : params_) {
      if (std::find(allowed.begin(), allowed.end(), key) == allowed.end()) {
        if (allowed.size() == 0) {
          return absl::InvalidArgumentError(
              absl::StrCat(key, ": unknown query parameter (this path takes none)"));
        }
        return absl::InvalidArgumentError(absl::StrCat(
            key, ": unknown query parameter (allowed: ",
            absl::StrJoin(allowed.begin(), allowed.end(), ", ",
                          [](std::string* out, std::string_view s) { out->append(s); }),
            ")"));
      }
      if (params_.count(key) > 1) {
        return absl::InvalidArgumentError(absl::StrCat(key, ": given more than once"));
      }
    }
    return absl::OkStatus();
  }

  const std::string* Get(const char* key) const {
    auto it = params_.find(key);
    return it == params_.end() ? nullptr : &it->second;
  }

  // Int reads a whole number in [min, max]; `def` when absent.
  absl::StatusOr<int64_t> Int(const char* key, int64_t def, int64_t min, int64_t max,
                              std::string_view what) const {
    const std::string* v = Get(key);
    if (v == nullptr) return def;
    int64_t value = 0;
    if (v->empty() || v->find_first_not_of("+-0123456789") != std::string::npos ||
        !absl::SimpleAtoi(*v, &value) || value < min || value > max) {
      return absl::InvalidArgumentError(
          absl::StrCat(key, ": must be ", Av(what), ", got \"", *v, "\""));
    }
    return value;
  }

 private:
  const httplib::Params& params_;
};

absl::StatusOr<size_t> Limit(const Query& q, int64_t def = kDefaultLimit) {
  ASSIGN_OR_RETURN(int64_t limit, q.Int("limit", def, 1, kMaxLimit,
                                        absl::StrCat("a whole number in 1..", kMaxLimit)));
  return static_cast<size_t>(limit);
}

// Since returns now - since_seconds, or `def` when absent.
absl::StatusOr<absl::Time> Since(const Query& q, absl::Time now, absl::Time def) {
  ASSIGN_OR_RETURN(int64_t seconds, q.Int("since_seconds", -1, 0, int64_t{100} * 365 * 24 * 3600,
                                          "a whole number of seconds >= 0"));
  if (seconds < 0) return def;
  return now - absl::Seconds(seconds);
}

template <typename T>
absl::StatusOr<json> ProtoArray(const std::vector<T>& items) {
  json out = json::array();
  for (const T& item : items) {
    ASSIGN_OR_RETURN(json j, ProtoToJson(item));
    out.push_back(std::move(j));
  }
  return out;
}

// Routes: one entry per path; a path known under another method gets 405.
enum class RouteId {
  kHealthz,
  kRollout,
  kPromote,
  kPause,
  kResume,
  kRollback,
  kWeight,
  kFeedback,
  kComparisons,
  kDecisions,
  kEvals,
  kHealth,
  kReport,
  kMetrics,
  kDashboard,
};
struct Route {
  const char* path;
  const char* method;
  RouteId id;
  Access access;
};
constexpr Route kRoutes[] = {
    {"/healthz", "GET", RouteId::kHealthz, Access::kOpen},
    {"/v1/rollout", "GET", RouteId::kRollout, Access::kRead},
    {"/v1/rollout/promote", "POST", RouteId::kPromote, Access::kAdmin},
    {"/v1/rollout/pause", "POST", RouteId::kPause, Access::kAdmin},
    {"/v1/rollout/resume", "POST", RouteId::kResume, Access::kAdmin},
    {"/v1/rollout/rollback", "POST", RouteId::kRollback, Access::kAdmin},
    {"/v1/rollout/weight", "POST", RouteId::kWeight, Access::kAdmin},
    {"/v1/feedback", "POST", RouteId::kFeedback, Access::kAdmin},
    {"/v1/comparisons", "GET", RouteId::kComparisons, Access::kRead},
    {"/v1/decisions", "GET", RouteId::kDecisions, Access::kRead},
    {"/v1/evals", "GET", RouteId::kEvals, Access::kRead},
    {"/v1/health", "GET", RouteId::kHealth, Access::kRead},
    {"/v1/report", "GET", RouteId::kReport, Access::kRead},
    {"/metrics", "GET", RouteId::kMetrics, Access::kMetrics},
    // The page holds no data; its script calls the routes above with the
    // token the user types in (report/dashboard.cc).
    {"/", "GET", RouteId::kDashboard, Access::kOpen},
};

absl::Status Missing(std::string_view what) {
  return absl::UnavailableError(absl::StrCat(Av(what), " is not available in this process"));
}

}  // namespace

const std::vector<RouteInfo>& Routes() {
  static const std::vector<RouteInfo>* routes = [] {
    auto* out = new std::vector<RouteInfo>;
    for (const Route& r : kRoutes) out->push_back({r.method, r.path, r.access});
    return out;
  }();
  return *routes;
}

// ------------------------------------------------------------------ Impl --

struct AdminServer::Impl {
  AdminConfig config;
  AdminBackend backend;
  std::string host;
  int port = 0;
  httplib::Server server;
  std::thread thread;
  std::atomic<bool> listen_done{false};
  absl::Mutex stop_mu;
  bool stopped ABSL_GUARDED_BY(stop_mu) = false;

  absl::Time Now() const { return backend.clock != nullptr ? backend.clock->Now() : absl::Now(); }

  void Handle(const httplib::Request& req, httplib::Response& res, const std::string& body);
  void HandleWithBody(const httplib::Request& req, httplib::Response& res,
                      const httplib::ContentReader& reader);
  Reply Dispatch(const httplib::Request& req, const std::string& body);
  absl::Status Authorize(const httplib::Request& req, Access access) const;
  absl::StatusOr<Reply> Serve(RouteId id, const httplib::Request& req, const std::string& body);
  absl::StatusOr<Reply> Rollout();
  absl::StatusOr<Reply> Command(RouteId id, const std::string& body);
  absl::StatusOr<Reply> Feedback(const std::string& body);
  absl::StatusOr<Reply> Comparisons(const Query& q);
  absl::StatusOr<Reply> Decisions(const Query& q);
  absl::StatusOr<Reply> Evals(const Query& q);
  absl::StatusOr<Reply> HealthSeries(const Query& q);
  absl::StatusOr<Reply> Report(const Query& q);
};

// HandleWithBody reads the body itself, at most max_body_bytes: httplib
// 0.11 enforces its payload limit for Content-Length bodies but not for
// chunked ones.
void AdminServer::Impl::HandleWithBody(const httplib::Request& req, httplib::Response& res,
                                       const httplib::ContentReader& reader) {
  const size_t max = static_cast<size_t>(config.max_body_bytes);
  // Past the limit the rest is read and dropped, up to a drain cap: a
  // client still sending when the server closes gets a reset instead of the
  // 413 (seen as a flaky test on loopback). Beyond the cap, stop reading.
  const size_t drain_cap = std::max<size_t>(max * 16, 1 << 20);
  std::string body;
  bool too_large = false;
  size_t dropped = 0;
  bool read = reader([&](const char* data, size_t n) {
    if (too_large || body.size() + n > max) {
      too_large = true;
      dropped += n;
      return dropped <= drain_cap;
    }
    body.append(data, n);
    return true;
  });
  if (too_large || res.status == 413 || !read) {
    Reply r = too_large || res.status == 413
                  ? ErrorReply(413, "PAYLOAD_TOO_LARGE",
                               absl::StrCat("body: larger than max_body_bytes (", max, " bytes)"))
                  : ErrorReply(400, "INVALID_ARGUMENT", "body: could not be read");
    res.status = r.status;
    // The rest of the body is still unread: do not reuse the connection.
    res.set_header("Connection", "close");
    res.set_content(r.body, kJson);
    return;
  }
  Handle(req, res, body);
}

void AdminServer::Impl::Handle(const httplib::Request& req, httplib::Response& res,
                               const std::string& body) {
  Reply reply;
  try {
    reply = Dispatch(req, body);
  } catch (const std::exception& e) {
    reply = ErrorReply(500, "INTERNAL", absl::StrCat("internal error: ", e.what()));
  }
  res.status = reply.status;
  for (const auto& [k, v] : reply.headers) res.set_header(k, v);
  res.set_header("Cache-Control", "no-store");
  // HEAD gets the headers of GET; httplib drops the body itself.
  res.set_content(std::move(reply.body), reply.content_type.c_str());
}

AdminServer::TestReply AdminServer::ServeForTest(
    std::string_view method, std::string_view target, std::string_view body,
    const std::vector<std::pair<std::string, std::string>>& headers) {
  httplib::Request req;
  req.method = std::string(method);
  req.target = std::string(target);
  const size_t query = req.target.find('?');
  req.path = req.target.substr(0, query);
  if (query != std::string::npos) httplib::detail::parse_query_text(req.target.substr(query + 1), req.params);
  for (const auto& [k, v] : headers) req.headers.emplace(k, v);
  req.body = std::string(body);
  httplib::Response res;
  impl_->Handle(req, res, req.body);
  return {res.status, res.body};
}

absl::Status AdminServer::Impl::Authorize(const httplib::Request& req, Access access) const {
  if (config.token.empty() || access == Access::kOpen) return absl::OkStatus();
  if (access == Access::kMetrics && config.metrics_public) return absl::OkStatus();
  if (!req.has_header("Authorization")) {
    return absl::UnauthenticatedError("Authorization: required (Bearer token)");
  }
  std::string value = req.get_header_value("Authorization");
  std::string_view v = value;
  constexpr std::string_view kScheme = "bearer ";
  if (v.size() < kScheme.size() ||
      !absl::EqualsIgnoreCase(Av(v.substr(0, kScheme.size())), Av(kScheme))) {
    return absl::UnauthenticatedError("Authorization: must be \"Bearer <token>\"");
  }
  v.remove_prefix(kScheme.size());
  // Both comparisons always run, so the time taken does not tell which
  // token (if any) a guess was close to.
  const bool admin = ConstantTimeEquals(v, config.token);
  const bool read = !config.read_token.empty() && ConstantTimeEquals(v, config.read_token);
  if (admin) return absl::OkStatus();
  if (read) {
    if (access == Access::kAdmin) {
      return absl::PermissionDeniedError(absl::StrCat(
          "Authorization: this token is read-only; ", req.method, " ", req.path,
          " needs the admin token"));
    }
    return absl::OkStatus();
  }
  return absl::UnauthenticatedError("Authorization: wrong token");
}

Reply AdminServer::Impl::Dispatch(const httplib::Request& req, const std::string& body) {
  const std::string method = req.method == "HEAD" ? "GET" : req.method;
  const Route* match = nullptr;
  bool path_known = false;
  for (const Route& r : kRoutes) {
    if (req.path != r.path) continue;
    path_known = true;
    if (method == r.method) match = &r;
  }
  if (!path_known) {
    return ErrorReply(404, "NOT_FOUND", absl::StrCat("no such path: ", req.path));
  }
  if (match == nullptr) {
    std::vector<std::string> allowed;
    for (const Route& r : kRoutes) {
      if (req.path == r.path) allowed.push_back(r.method);
    }
    if (std::find(allowed.begin(), allowed.end(), "GET") != allowed.end()) {
      allowed.push_back("HEAD");
    }
    Reply r = ErrorReply(405, "METHOD_NOT_ALLOWED",
                         absl::StrCat(req.method, " is not allowed on ", req.path, " (use ",
                                      absl::StrJoin(allowed, ", "), ")"));
    r.headers.emplace_back("Allow", absl::StrJoin(allowed, ", "));
    return r;
  }
  if (absl::Status s = Authorize(req, match->access); !s.ok()) {
    Reply r = StatusReply(s);
    // RFC 6750 §3: a challenge on 401; on 403 the token was fine but its
    // scope is not.
    r.headers.emplace_back("WWW-Authenticate",
                           s.code() == absl::StatusCode::kPermissionDenied
                               ? "Bearer realm=\"understudy\", error=\"insufficient_scope\""
                               : "Bearer realm=\"understudy\"");
    return r;
  }
  absl::StatusOr<Reply> reply = Serve(match->id, req, body);
  if (!reply.ok()) return StatusReply(reply.status());
  return *std::move(reply);
}

absl::StatusOr<Reply> AdminServer::Impl::Serve(RouteId id, const httplib::Request& req,
                                               const std::string& body) {
  Query q(req.params);
  switch (id) {
    case RouteId::kHealthz:
      RETURN_IF_ERROR(q.CheckKeys({}));
      return JsonReply(200, json{{"status", "ok"}});
    case RouteId::kRollout:
      RETURN_IF_ERROR(q.CheckKeys({}));
      return Rollout();
    case RouteId::kPromote:
    case RouteId::kPause:
    case RouteId::kResume:
    case RouteId::kRollback:
    case RouteId::kWeight:
      RETURN_IF_ERROR(q.CheckKeys({}));
      return Command(id, body);
    case RouteId::kFeedback:
      RETURN_IF_ERROR(q.CheckKeys({}));
      return Feedback(body);
    case RouteId::kComparisons:
      return Comparisons(q);
    case RouteId::kDecisions:
      return Decisions(q);
    case RouteId::kEvals:
      return Evals(q);
    case RouteId::kHealth:
      return HealthSeries(q);
    case RouteId::kReport:
      return Report(q);
    case RouteId::kMetrics: {
      if (!backend.metrics_text) return Missing("metrics");
      Reply r;
      r.content_type = "text/plain; version=0.0.4; charset=utf-8";
      r.body = backend.metrics_text();
      return r;
    }
    case RouteId::kDashboard: {
      if (!backend.dashboard_html) return Missing("the dashboard");
      Reply r;
      r.content_type = "text/html; charset=utf-8";
      r.body = backend.dashboard_html();
      return r;
    }
  }
  return absl::InternalError("unhandled route");
}

absl::StatusOr<Reply> AdminServer::Impl::Rollout() {
  if (backend.controller == nullptr) return Missing("the rollout controller");
  ASSIGN_OR_RETURN(json state, ProtoToJson(backend.controller->State()));
  ASSIGN_OR_RETURN(json health,
                   ProtoToJson(backend.health ? backend.health() : backend.controller->Health()));
  json stages = json::array();
  for (const rollout::StageConfig& s : backend.controller->config().stages) {
    stages.push_back(s.percent);
  }
  json out{{"state", std::move(state)}, {"health", std::move(health)}, {"stages", std::move(stages)}};
  if (backend.fleet_status) {
    ASSIGN_OR_RETURN(out["fleet"], ProtoToJson(backend.fleet_status()));
  }
  json revisit = json::array();
  if (backend.revisit) {
    ASSIGN_OR_RETURN(revisit, ProtoArray(backend.revisit()));
  }
  out["revisit"] = std::move(revisit);
  return JsonReply(200, std::move(out));
}

absl::StatusOr<Reply> AdminServer::Impl::Command(RouteId id, const std::string& raw) {
  // Validate everything before touching the controller: a bad request
  // changes nothing.
  ASSIGN_OR_RETURN(json body, ParseJsonObject(raw));
  if (backend.controller == nullptr) return Missing("the rollout controller");
  rollout::Controller& c = *backend.controller;
  // Run validates and runs the command (again, after a refresh, when
  // another replica of a fleet moved the rollout first).
  auto run = [&]() -> absl::StatusOr<understudy::v1::Decision> {
  switch (id) {
    case RouteId::kPromote: {
      RETURN_IF_ERROR(CheckJsonFields(body, {"actor", "to_full"}));
      ASSIGN_OR_RETURN(std::string actor, Actor(body));
      bool to_full = false;
      if (auto it = body.find("to_full"); it != body.end() && !it->is_null()) {
        if (!it->is_boolean()) {
          return absl::InvalidArgumentError(
              absl::StrCat("to_full: must be true or false, got ", it->type_name()));
        }
        to_full = it->get<bool>();
      }
      return c.Promote(actor, to_full);
    }
    case RouteId::kPause: {
      RETURN_IF_ERROR(CheckJsonFields(body, {"actor", "reason"}));
      ASSIGN_OR_RETURN(std::string actor, Actor(body));
      ASSIGN_OR_RETURN(std::string reason, JsonOptionalString(body, "reason", ""));
      return c.Pause(actor, reason);
    }
    case RouteId::kResume: {
      RETURN_IF_ERROR(CheckJsonFields(body, {"actor"}));
      ASSIGN_OR_RETURN(std::string actor, Actor(body));
      return c.Resume(actor);
    }
    case RouteId::kRollback: {
      RETURN_IF_ERROR(CheckJsonFields(body, {"actor", "reason"}));
      ASSIGN_OR_RETURN(std::string actor, Actor(body));
      ASSIGN_OR_RETURN(std::string reason, JsonRequiredString(body, "reason"));
      return c.Rollback(actor, reason);
    }
    case RouteId::kWeight: {
      RETURN_IF_ERROR(CheckJsonFields(body, {"actor", "percent"}));
      ASSIGN_OR_RETURN(std::string actor, Actor(body));
      auto it = body.find("percent");
      if (it == body.end() || it->is_null()) {
        return absl::InvalidArgumentError("percent: required (a number in 0..100)");
      }
      if (!it->is_number()) {
        return absl::InvalidArgumentError(
            absl::StrCat("percent: must be a number in 0..100, got ", it->type_name()));
      }
      double percent = it->get<double>();
      if (!(percent >= 0 && percent <= 100)) {
        return absl::InvalidArgumentError(
            absl::StrCat("percent: must be in 0..100, got ", DumpJson(*it)));
      }
      return c.SetWeight(actor, percent);
    }
    default:
      return absl::InternalError("not a rollout command");
  }
  };
  absl::StatusOr<understudy::v1::Decision> decision = run();
  if (absl::IsAborted(decision.status()) && backend.refresh_rollout &&
      backend.refresh_rollout().ok()) {
    decision = run();
  }
  if (!decision.ok()) return decision.status();
  // The controller has committed the transition; tell the engine before
  // acknowledging, so the reply means "done and recorded".
  if (backend.on_decision) backend.on_decision(*decision);
  ASSIGN_OR_RETURN(json d, ProtoToJson(*decision));
  ASSIGN_OR_RETURN(json state, ProtoToJson(decision->to()));
  return JsonReply(200, json{{"decision", std::move(d)}, {"state", std::move(state)}});
}

absl::StatusOr<Reply> AdminServer::Impl::Feedback(const std::string& raw) {
  ASSIGN_OR_RETURN(understudy::v1::Feedback fb, sidecar::ParseFeedbackJson(raw));
  if (!backend.submit_feedback) return Missing("feedback");
  fb.set_source(understudy::v1::FEEDBACK_SOURCE_ADMIN);
  RETURN_IF_ERROR(backend.submit_feedback(std::move(fb)));
  return JsonReply(202, json{{"accepted", true}});
}

absl::StatusOr<Reply> AdminServer::Impl::Comparisons(const Query& q) {
  RETURN_IF_ERROR(q.CheckKeys({"limit", "verdict", "since_seconds"}));
  storage::ComparisonQuery query;
  ASSIGN_OR_RETURN(query.limit, Limit(q));
  ASSIGN_OR_RETURN(query.since, Since(q, Now(), absl::InfinitePast()));
  if (const std::string* v = q.Get("verdict")) {
    for (absl::string_view name : absl::StrSplit(*v, ',')) {
      name = absl::StripAsciiWhitespace(name);
      std::optional<understudy::v1::Verdict> verdict = compare::ParseVerdictName(Sv(name));
      if (!verdict) {
        return absl::InvalidArgumentError(
            absl::StrCat("verdict: unknown verdict \"", name, "\" (use ", Av(kVerdictNames), ")"));
      }
      query.verdicts.push_back(*verdict);
    }
  }
  query.newest_first = true;
  if (backend.store == nullptr) return Missing("storage");
  ASSIGN_OR_RETURN(std::vector<understudy::v1::Comparison> list,
                   backend.store->ListComparisons(query));
  ASSIGN_OR_RETURN(json items, ProtoArray(list));
  return JsonReply(200, json{{"comparisons", std::move(items)}});
}

// Tail keeps the newest `limit` of an oldest-first list.
template <typename T>
void KeepNewest(std::vector<T>* items, size_t limit) {
  if (items->size() > limit) items->erase(items->begin(), items->end() - limit);
}

absl::StatusOr<Reply> AdminServer::Impl::Decisions(const Query& q) {
  RETURN_IF_ERROR(q.CheckKeys({"limit", "since_seconds"}));
  ASSIGN_OR_RETURN(size_t limit, Limit(q));
  ASSIGN_OR_RETURN(absl::Time since, Since(q, Now(), absl::InfinitePast()));
  if (backend.store == nullptr) return Missing("storage");
  ASSIGN_OR_RETURN(std::vector<understudy::v1::Decision> list,
                   backend.store->ListDecisions(since, storage::kNoLimit));
  KeepNewest(&list, limit);
  ASSIGN_OR_RETURN(json items, ProtoArray(list));
  return JsonReply(200, json{{"decisions", std::move(items)}});
}

absl::StatusOr<Reply> AdminServer::Impl::Evals(const Query& q) {
  RETURN_IF_ERROR(q.CheckKeys({"limit", "since_seconds"}));
  ASSIGN_OR_RETURN(size_t limit, Limit(q));
  ASSIGN_OR_RETURN(absl::Time since, Since(q, Now(), absl::InfinitePast()));
  if (backend.store == nullptr) return Missing("storage");
  ASSIGN_OR_RETURN(std::vector<understudy::v1::EvalRun> list,
                   backend.store->ListEvalRuns(since, limit));
  ASSIGN_OR_RETURN(json items, ProtoArray(list));
  return JsonReply(200, json{{"runs", std::move(items)}});
}

absl::StatusOr<Reply> AdminServer::Impl::HealthSeries(const Query& q) {
  RETURN_IF_ERROR(q.CheckKeys({"limit", "since_seconds"}));
  // A chart wants the whole window: default to the maximum.
  ASSIGN_OR_RETURN(size_t limit, Limit(q, kMaxLimit));
  absl::Time now = Now();
  ASSIGN_OR_RETURN(absl::Time since, Since(q, now, now - kDefaultHealthSince));
  if (backend.store == nullptr) return Missing("storage");
  ASSIGN_OR_RETURN(std::vector<understudy::v1::HealthSnapshot> list,
                   backend.store->HealthSeries(since, storage::kNoLimit));
  KeepNewest(&list, limit);
  ASSIGN_OR_RETURN(json items, ProtoArray(list));
  return JsonReply(200, json{{"snapshots", std::move(items)}});
}

absl::StatusOr<Reply> AdminServer::Impl::Report(const Query& q) {
  RETURN_IF_ERROR(q.CheckKeys({"format"}));
  std::string format = "md";
  if (const std::string* f = q.Get("format")) format = *f;
  Reply r;
  if (format == "md") {
    r.content_type = "text/markdown; charset=utf-8";
  } else if (format == "json") {
    r.content_type = kJson;
  } else if (format == "html") {
    r.content_type = "text/html; charset=utf-8";
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("format: must be md, json or html, got \"", format, "\""));
  }
  if (!backend.report) return Missing("the report");
  ASSIGN_OR_RETURN(r.body, backend.report(format));
  return r;
}

// ---------------------------------------------------------------- server --

AdminServer::AdminServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

AdminServer::~AdminServer() { Stop(); }

absl::StatusOr<std::unique_ptr<AdminServer>> AdminServer::Start(const AdminConfig& config,
                                                                AdminBackend backend) {
  auto impl = std::make_unique<Impl>();
  impl->config = config;
  impl->backend = std::move(backend);
  if (absl::Status s = ParseHostPort(config.listen, &impl->host, &impl->port); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("admin.listen: ", s.message()));
  }
  if (config.max_body_bytes <= 0) {
    return absl::InvalidArgumentError("admin.max_body_bytes: must be positive");
  }
  Impl* p = impl.get();
  httplib::Server& server = impl->server;
  server.new_task_queue = [] { return new httplib::ThreadPool(kWorkerThreads); };
  server.set_payload_max_length(static_cast<size_t>(config.max_body_bytes));
  server.set_keep_alive_timeout(2);
  // httplib's default sets SO_REUSEPORT, which would let a second process
  // bind the same port silently; SO_REUSEADDR alone only allows reuse after
  // TIME_WAIT.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  // httplib never reads a body for GET/HEAD/OPTIONS; for the others it
  // hands us a reader (HandleWithBody bounds it). The plain handlers are
  // there for requests httplib decides have no body.
  httplib::Server::Handler handler = [p](const httplib::Request& req, httplib::Response& res) {
    p->Handle(req, res, req.body);
  };
  httplib::Server::HandlerWithContentReader with_body =
      [p](const httplib::Request& req, httplib::Response& res,
          const httplib::ContentReader& reader) { p->HandleWithBody(req, res, reader); };
  server.Get(".*", handler);
  server.Options(".*", handler);
  server.Post(".*", with_body);
  server.Put(".*", with_body);
  server.Patch(".*", with_body);
  server.Delete(".*", with_body);
  server.Post(".*", handler);
  server.Put(".*", handler);
  server.Patch(".*", handler);
  server.Delete(".*", handler);
  // httplib calls this for every reply >= 400; ours already have a body.
  // Bodyless ones are httplib's own: 413 (body over the limit), 400 (bad
  // request line, unknown method).
  int64_t max_body = config.max_body_bytes;
  server.set_error_handler(httplib::Server::HandlerWithResponse(
      [max_body](const httplib::Request&, httplib::Response& res) {
        if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
        Reply r;
        if (res.status == 413) {
          r = ErrorReply(413, "PAYLOAD_TOO_LARGE",
                         absl::StrCat("body: larger than max_body_bytes (", max_body, " bytes)"));
        } else if (res.status == 404) {
          r = ErrorReply(404, "NOT_FOUND", "no such path");
        } else if (res.status < 500) {
          r = ErrorReply(res.status, "INVALID_ARGUMENT", "malformed HTTP request");
        } else {
          r = ErrorReply(res.status, "INTERNAL", "internal error");
        }
        res.set_content(r.body, kJson);
        return httplib::Server::HandlerResponse::Handled;
      }));
  server.set_exception_handler(
      [](const httplib::Request&, httplib::Response& res, std::exception_ptr) {
        Reply r = ErrorReply(500, "INTERNAL", "internal error");
        res.status = 500;
        res.set_content(r.body, kJson);
      });

  errno = 0;
  if (impl->port == 0) {
    int bound = server.bind_to_any_port(impl->host);
    if (bound > 0)
      impl->port = bound;
    else
      impl->port = -1;
  } else if (!server.bind_to_port(impl->host, impl->port)) {
    impl->port = -1;
  }
  if (impl->port < 0) {
    int err = errno;
    return absl::UnavailableError(absl::StrCat("admin.listen: cannot bind ", config.listen,
                                               err != 0 ? ": " : "",
                                               err != 0 ? std::strerror(err) : ""));
  }
  impl->thread = std::thread([p] {
    p->server.listen_after_bind();
    p->listen_done.store(true);
  });
  return std::unique_ptr<AdminServer>(new AdminServer(std::move(impl)));
}

int AdminServer::port() const { return impl_->port; }

std::string AdminServer::address() const {
  if (impl_->host.find(':') != std::string::npos) {
    return absl::StrCat("[", impl_->host, "]:", impl_->port);
  }
  return absl::StrCat(impl_->host, ":", impl_->port);
}

void AdminServer::Stop() {
  absl::MutexLock lock(&impl_->stop_mu);
  if (impl_->stopped) return;
  impl_->stopped = true;
  // httplib's stop() is a no-op until the listen loop has started, so wait
  // for it (it starts at once; the socket is already bound and listening).
  while (!impl_->listen_done.load() && !impl_->server.is_running()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  impl_->server.stop();
  if (impl_->thread.joinable()) impl_->thread.join();
}

}  // namespace understudy::admin
