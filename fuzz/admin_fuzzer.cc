// Fuzzes the admin API's request handling (sidecar/admin/admin.h) through
// AdminServer::ServeForTest: JSON bodies of every POST route (promote,
// pause, resume, rollback, weight, feedback) and the query strings of the
// GET routes, with and without tokens, against a real rollout controller
// and an in-memory store. A reply is always a well-formed status.
//
// Input: byte 0 picks the route, byte 1 the Authorization header; then the
// query string up to the first newline, then the body.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "common/clock.h"
#include "rollout/rollout.h"
#include "rollout/router.h"
#include "sidecar/admin/admin.h"
#include "tests/storage/fake_store.h"

namespace {

namespace admin = understudy::admin;
namespace rollout = understudy::rollout;

struct World {
  understudy::ManualClock clock;
  rollout::Router router{"salt", 0};
  rollout::InMemoryTransitionLog log;
  std::unique_ptr<rollout::Controller> controller;
  std::unique_ptr<understudy::storage::FakeStore> store;
  std::unique_ptr<admin::AdminServer> server;
};

World& TheWorld() {
  static World* w = [] {
    auto* w = new World();
    w->controller = std::make_unique<rollout::Controller>(rollout::RolloutConfig(), w->clock,
                                                          w->router, w->log);
    w->store = std::make_unique<understudy::storage::FakeStore>(w->clock);
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
