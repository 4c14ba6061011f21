// Fuzzes the admin API's request handling (sidecar/admin/admin.h) through
// AdminServer::ServeForTest: JSON bodies of every POST route (promote,
// pause, resume, rollback, weight, feedback) and the query strings of the
// GET routes, with and without tokens, against a real rollout controller
// and the real RocksDB store in a temporary directory (seeded with a few
// records, so the GET routes' filters and limits have something to read; the
// routes only read it, so it stays small). A reply is always a well-formed
// status.
//
// Input: byte 0 picks the route, byte 1 the Authorization header; then the
// query string up to the first newline, then the body.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "rollout/rollout.h"
#include "rollout/router.h"
#include "sidecar/admin/admin.h"
#include "storage/store.h"

namespace {

namespace admin = understudy::admin;
namespace rollout = understudy::rollout;

struct World {
  understudy::ManualClock clock;
  rollout::Router router{"salt", 0};
  rollout::InMemoryTransitionLog log;
  std::unique_ptr<rollout::Controller> controller;
  std::string dir;  // the store's, removed at exit
  std::unique_ptr<understudy::storage::Store> store;
  std::unique_ptr<admin::AdminServer> server;
};

// OpenSeededStore opens a RocksDB store in a new temporary directory and
// writes one record of each kind the GET routes list; traps on failure.
std::unique_ptr<understudy::storage::Store> OpenSeededStore(understudy::Clock& clock,
                                                            std::string* dir) {
  namespace v1 = understudy::v1;
  std::string tmpl = (std::filesystem::temp_directory_path() / "admin-fuzzer-XXXXXX").string();
  if (::mkdtemp(tmpl.data()) == nullptr) __builtin_trap();
  *dir = tmpl;
  understudy::storage::StorageConfig config;
  config.path = *dir;
  config.retention_interval = absl::ZeroDuration();
  auto store = understudy::storage::OpenRocksStore(config, clock);
  if (!store.ok()) __builtin_trap();
  const int64_t now = absl::ToUnixMicros(clock.Now());
  understudy::storage::RecordBatch batch;
  v1::Comparison comparison;
  comparison.set_request_id("r1");
  comparison.set_time_unix_micros(now);
  comparison.set_verdict(v1::VERDICT_MINOR_DIFF);
  batch.Add(std::move(comparison));
  v1::HealthSnapshot health;
  health.set_time_unix_micros(now);
  batch.Add(std::move(health));
  if (!(*store)->Write(std::move(batch)).ok()) __builtin_trap();
  v1::Decision decision;
  decision.set_time_unix_micros(now);
  decision.set_action(v1::ACTION_PAUSE);
  decision.set_actor("fuzzer");
  if (!(*store)->AppendDecision(decision).ok()) __builtin_trap();
  return *std::move(store);
}

World& TheWorld() {
  static World* w = [] {
    auto* w = new World();
    w->controller = std::make_unique<rollout::Controller>(rollout::RolloutConfig(), w->clock,
                                                          w->router, w->log);
    w->store = OpenSeededStore(w->clock, &w->dir);
    admin::AdminConfig config;
    config.listen = "127.0.0.1:0";
    config.token = "admin-token";
    config.read_token = "read-token";
    admin::AdminBackend backend;
    backend.controller = w->controller.get();
    backend.store = w->store.get();
    backend.clock = &w->clock;
    backend.submit_feedback = [](understudy::v1::Feedback f) {
      return f.request_id().size() % 2 ? absl::OkStatus()
                                       : absl::AlreadyExistsError("already has a score");
    };
    backend.metrics_text = [] { return std::string("# metrics\n"); };
    backend.dashboard_html = [] { return std::string("<html></html>"); };
    backend.report = [](std::string_view format) -> absl::StatusOr<std::string> {
      return std::string(format);
    };
    auto server = admin::AdminServer::Start(config, std::move(backend));
    if (!server.ok()) __builtin_trap();
    w->server = std::move(*server);
    std::atexit([] {
      World& world = TheWorld();
      world.server.reset();
      world.store.reset();
      std::error_code ignored;
      std::filesystem::remove_all(world.dir, ignored);
    });
    return w;
  }();
  return *w;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  World& w = TheWorld();
  static const struct {
    const char* method;
    const char* path;
  } kRoutes[] = {{"POST", "/v1/rollout/promote"}, {"POST", "/v1/rollout/pause"},
                 {"POST", "/v1/rollout/resume"},  {"POST", "/v1/rollout/rollback"},
                 {"POST", "/v1/rollout/weight"},  {"POST", "/v1/feedback"},
                 {"GET", "/v1/comparisons"},      {"GET", "/v1/decisions"},
                 {"GET", "/v1/health"},           {"GET", "/v1/report"},
                 {"GET", "/v1/rollout"},          {"GET", "/metrics"},
                 {"HEAD", "/healthz"},            {"DELETE", "/v1/rollout"},
                 {"GET", "/nowhere"},             {"POST", "/v1/comparisons"}};
  static const char* const kAuth[] = {nullptr, "Bearer admin-token", "Bearer read-token",
                                      "Bearer wrong", "Basic admin-token", "bearer admin-token",
                                      "Bearer ", "Bearer admin-token "};
  const auto& route = kRoutes[data[0] % 16];
  const char* auth = kAuth[data[1] % 8];
  std::string_view rest(reinterpret_cast<const char*>(data) + 2, size - 2);
  const size_t nl = rest.find('\n');
  std::string target = route.path;
  if (nl != std::string_view::npos) {
    target += "?";
    target += rest.substr(0, nl);
    rest.remove_prefix(nl + 1);
  }
  std::vector<std::pair<std::string, std::string>> headers;
  if (auth != nullptr) headers.emplace_back("Authorization", auth);
  admin::AdminServer::TestReply r = w.server->ServeForTest(route.method, target, rest, headers);
  if (r.status < 200 || r.status > 599 || r.status == 500) __builtin_trap();
  w.clock.Advance(absl::Seconds(1));
  return 0;
}
