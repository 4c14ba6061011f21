// sidecar/admin/admin.h
// The admin HTTP API (rollout status and manual commands, feedback, stored
// comparisons/decisions/health, report, metrics, dashboard). The CLI
// commands that talk to it (`understudy status`, `promote`, ...) live in
// cli/admin_client.cc.
//
// Example (given const ConfigNode& root, rollout::Controller& controller,
//   storage::Store& store):
//   ASSIGN_OR_RETURN(AdminConfig config, ParseAdminConfig(root.Child("admin")));
//   AdminBackend backend;
//   backend.controller = &controller;
//   backend.store = &store;
//   backend.on_decision = [](const v1::Decision& d) { /* metrics, traces */ };
//   ASSIGN_OR_RETURN(std::unique_ptr<AdminServer> admin,
//                    AdminServer::Start(config, std::move(backend)));
//   // ... serving on admin->address() ...
//   admin->Stop();   // or let the destructor do it
//
// The HTTP API. JSON in and out; protos are rendered with protobuf's JSON
// mapping WITH PROTO FIELD NAMES (snake_case: "stage_index",
// "weight_basis_points"), every field printed even when zero, enums by name
// ("PHASE_CANARY", "VERDICT_MAJOR_DIFF") and, as the mapping says, int64
// fields as JSON strings ("time_unix_micros": "1700000000000000").
//   GET  /healthz                → 200 {"status":"ok"}
//   GET  /v1/rollout             → {"state": RolloutState, "health": HealthSnapshot,
//                                   "stages": [0,1,5,25,50,100],
//                                   "revisit": [RevisitTrigger...]}  (fired now)
//   POST /v1/rollout/promote     {"actor"?, "to_full"?: bool}
//   POST /v1/rollout/pause       {"actor"?, "reason"?: string}
//   POST /v1/rollout/resume      {"actor"?}
//   POST /v1/rollout/rollback    {"actor"?, "reason": string}        (reason required)
//   POST /v1/rollout/weight      {"actor"?, "percent": number 0..100}
//        → 200 {"decision": Decision, "state": RolloutState}. The reply is
//          sent after the controller has committed the transition and
//          after backend.on_decision returned. actor defaults to "admin".
//   POST /v1/feedback            {"request_id", "score", "comment"?}; score is a
//        number in [0,1], "up"/"down" or true/false → 202 {"accepted":true};
//        409 when that request id already has a score (the first one wins).
//   GET  /v1/comparisons?limit=N&verdict=V[,V]&since_seconds=S
//        → {"comparisons":[...]} newest first. V is equivalent, minor_diff,
//          major_diff, candidate_error, production_error or both_error.
//   GET  /v1/decisions?limit=N&since_seconds=S → {"decisions":[...]}
//   GET  /v1/evals?limit=N&since_seconds=S     → {"runs":[EvalRun...]}
//        the scheduled eval's runs (docs/drift.md), the newest N, oldest first
//   GET  /v1/health?limit=N&since_seconds=S    → {"snapshots":[...]}
//        Both: the newest N records with time >= now - S, oldest first.
//        since_seconds absent: every decision; health of the last hour.
//   GET  /v1/report?format=md|json|html        → the report (md by default)
//   GET  /metrics                → Prometheus text
//   GET  /                       → the dashboard page (no data: its script
//                                  calls the routes above with the token)
// limit is 1..1000 (default 100; 1000 for /v1/health); since_seconds a
// whole number >= 0.
// Request bodies must be JSON objects (an empty body counts as {});
// unknown fields and unknown query parameters are rejected.
// Errors: {"error":{"code":"INVALID_ARGUMENT","message":"reason: required"}}
// with 400 bad input, 401 missing/wrong token, 403 a read-only token on a
// POST, 404 unknown path or record, 405 wrong method (with Allow), 409
// invalid transition (FailedPrecondition) or a second score for a request
// (AlreadyExists), 413 body over max_body_bytes, 503 backend part missing or
// Unavailable, 500 anything else. A rejected request changes nothing.
//
// Auth (see Access and Routes() below): with an admin token configured, every route but
// GET /healthz and GET / needs "Authorization: Bearer <token>", compared in
// constant time; GET /metrics too unless metrics_public. The admin token is
// good everywhere; the read-only token (if configured) only for GET/HEAD,
// and a POST with it is 403. 401 replies carry `WWW-Authenticate: Bearer
// realm="understudy"`. Without an admin token nothing is checked.
//
// Thread safety: AdminServer's methods may be called from any thread. The
// server calls the backend from its own worker threads, concurrently, so
// every AdminBackend hook must be thread-safe.
#ifndef UNDERSTUDY_SIDECAR_ADMIN_ADMIN_H_
#define UNDERSTUDY_SIDECAR_ADMIN_ADMIN_H_

#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/config_node.h"
#include "rollout/rollout.h"
#include "storage/store.h"
#include "understudy/v1/eval.pb.h"
#include "understudy/v1/exchange.pb.h"
#include "understudy/v1/rollout.pb.h"

namespace understudy::admin {

// ---------------------------------------------------------------- config --

struct AdminConfig {
  std::string listen = "127.0.0.1:9901";  // host:port; port 0 picks a free port
  std::string token;                      // admin token; "" = no auth. Never log it.
  std::string token_source;               // "env NAME", "file PATH" or "" (for logs)
  // Read-only token: GET/HEAD only (dashboards, scrapers). Needs `token`.
  std::string read_token;
  std::string read_token_source;
  // GET /metrics answers without a token (for a scraper that has none).
  bool metrics_public = false;
  int64_t max_body_bytes = 65536;
};

// ParseAdminConfig reads the `admin:` section:
//   admin:
//     listen: 127.0.0.1:9901
//     token_env: UNDERSTUDY_ADMIN_TOKEN    # the admin token is in this variable
//     token_file: /etc/understudy/admin-token   # or in this file (trimmed)
//     read_token_env: UNDERSTUDY_READ_TOKEN     # optional read-only token,
//     read_token_file: /etc/understudy/read-token  # from a variable or a file
//     metrics_public: false                 # true: GET /metrics needs no token
//     max_body_bytes: 65536
// An undefined node gives the defaults; no token source means no auth. A
// configured source must yield a token: token_env naming an unset or empty
// variable, or token_file naming a missing, unreadable or empty file, is an
// error (a typo must not switch auth off). At most one of token_env/
// token_file (and of the read_ pair); a read-only token needs an admin token
// and must differ from it. Errors are InvalidArgument naming the key path
// ("admin.token_env: $X is unset or empty"); they never contain a token.
[[nodiscard]] absl::StatusOr<AdminConfig> ParseAdminConfig(const ConfigNode& section);

// ------------------------------------------------------------------ routes --

// Access is what a route asks of the caller when an admin token is set.
enum class Access {
  kOpen,     // no token: GET /healthz (probes), GET / (a page without data)
  kMetrics,  // like kRead, or open with metrics_public
  kRead,     // the admin token or the read-only token
  kAdmin,    // the admin token only (a read-only token gets 403)
};

struct RouteInfo {
  std::string_view method;  // "GET" (HEAD is served as GET) or "POST"
  std::string_view path;
  Access access;
};

// Routes lists every route the server serves, in the order of the table at
// the top of this file. Tests walk it, so a new route cannot go untested.
const std::vector<RouteInfo>& Routes();

// ParseHostPort splits "host:port" ("[::1]:9901" for IPv6). InvalidArgument
// when malformed or the port is outside 0..65535.
[[nodiscard]] absl::Status ParseHostPort(std::string_view listen, std::string* host, int* port);

// --------------------------------------------------------------- backend --

// What the server serves. Every member may be null/empty: the routes that
// need it then answer 503. Pointers must outlive the server.
struct AdminBackend {
  rollout::Controller* controller = nullptr;
  storage::Store* store = nullptr;
  // Time for since_seconds; null → the real clock.
  const Clock* clock = nullptr;
  // Records a user's score; its status is mapped like the controller's.
  std::function<absl::Status(understudy::v1::Feedback)> submit_feedback;
  // Called after a successful manual command, before the reply is sent.
  std::function<void(const understudy::v1::Decision&)> on_decision;
  std::function<std::string()> metrics_text;
  // What /v1/rollout shows as "health" (default: controller->Health()).
  std::function<understudy::v1::HealthSnapshot()> health;
  // Fleet mode (docs/fleet.md): this replica's view of the fleet, shown as
  // "fleet" in /v1/rollout; and a refresh of the rollout state from the
  // fleet, run before a command refused as Aborted (another replica moved
  // the rollout first) is tried once more.
  std::function<understudy::v1::FleetStatus()> fleet_status;
  std::function<absl::Status()> refresh_rollout;
  std::function<std::string()> dashboard_html;
  // The revisit triggers fired now (docs/drift.md), shown in /v1/rollout.
  std::function<std::vector<understudy::v1::RevisitTrigger>()> revisit;
  // format is "md", "json" or "html" (validated before the call).
  std::function<absl::StatusOr<std::string>(std::string_view format)> report;
};

// ---------------------------------------------------------------- server --

class AdminServer {
 public:
  // Start binds config.listen and serves on a pool of worker threads. It
  // returns once the socket is bound and accepting. Unavailable naming the
  // address when it cannot bind; InvalidArgument for a malformed listen.
  [[nodiscard]] static absl::StatusOr<std::unique_ptr<AdminServer>> Start(const AdminConfig& config,
                                                                          AdminBackend backend);
  ~AdminServer();  // Stops.
  AdminServer(const AdminServer&) = delete;
  AdminServer& operator=(const AdminServer&) = delete;

  // port is the bound port (the chosen one when config.listen had port 0).
  int port() const;
  // address is "host:port" as bound, e.g. "127.0.0.1:40123".
  std::string address() const;
  // Stop closes the listener, finishes requests in flight and joins the
  // workers. Idempotent.
  void Stop();

  // ServeForTest handles one request in-process exactly as one read from
  // the socket would be handled (routing, auth, limits on the query, body
  // validation, the backend call), without the socket: for fuzzers and
  // tests. `target` is the path with an optional query string; `headers`
  // are the request headers (e.g. {"authorization", "Bearer ..."}).
  struct TestReply {
    int status = 0;
    std::string body;
  };
  TestReply ServeForTest(std::string_view method, std::string_view target, std::string_view body,
                         const std::vector<std::pair<std::string, std::string>>& headers = {});

 private:
  struct Impl;
  explicit AdminServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace understudy::admin

#endif  // UNDERSTUDY_SIDECAR_ADMIN_ADMIN_H_
