// tests/admin/admin_fixture.h
// A live AdminServer on 127.0.0.1:0 over a real rollout::Controller
// (ManualClock, Router, InMemoryTransitionLog) and a FakeStore, for the
// server and CLI tests.
#ifndef UNDERSTUDY_TESTS_ADMIN_ADMIN_FIXTURE_H_
#define UNDERSTUDY_TESTS_ADMIN_ADMIN_FIXTURE_H_

#include <httplib.h>

#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "common/clock.h"
#include "rollout/rollout.h"
#include "sidecar/admin/admin.h"
#include "tests/common/test_util.h"
#include "tests/storage/fake_store.h"

namespace understudy::admin {

class AdminFixture : public ::testing::Test {
 protected:
  ~AdminFixture() override {
    client_.reset();
    server_.reset();
  }

  // StartServer (re)starts the server; an empty token means no auth.
  void StartServer(std::string token = "", int64_t max_body_bytes = 4096) {
    AdminConfig config;
    config.token = std::move(token);
    config.max_body_bytes = max_body_bytes;
    StartServerWith(std::move(config));
  }

  // StartServerWith (re)starts the server with `config` on 127.0.0.1:0 and
  // a fresh controller in the shadow stage (the transition log is kept).
  void StartServerWith(AdminConfig config) {
    client_.reset();
    server_.reset();
    controller_ =
        std::make_unique<rollout::Controller>(rollout::RolloutConfig{}, clock_, router_, log_);
    config.listen = "127.0.0.1:0";
    absl::StatusOr<std::unique_ptr<AdminServer>> server = AdminServer::Start(config, MakeBackend());
    ASSERT_OK(server);
    server_ = *std::move(server);
    ASSERT_GT(server_->port(), 0);
    client_ = std::make_unique<httplib::Client>("127.0.0.1", server_->port());
    client_->set_keep_alive(false);
  }

  AdminBackend MakeBackend() {
    AdminBackend b;
    b.controller = controller_.get();
    b.store = &store_;
    b.clock = &clock_;
    b.submit_feedback = [this](understudy::v1::Feedback f) {
      absl::MutexLock lock(&mu_);
      feedback_.push_back(std::move(f));
      return absl::OkStatus();
    };
    b.on_decision = [this](const understudy::v1::Decision& d) {
      absl::MutexLock lock(&mu_);
      notified_.push_back(d);
      log_size_when_notified_.push_back(log_.size());
    };
    b.metrics_text = [] { return std::string("understudy_requests_total 3\n"); };
    b.dashboard_html = [] { return std::string("<!doctype html><title>understudy</title>"); };
    b.report = [](std::string_view format) -> absl::StatusOr<std::string> {
      return "report in " + std::string(format);
    };
    return b;
  }

  std::string Url() const { return "http://127.0.0.1:" + std::to_string(server_->port()); }

  static nlohmann::json Json(const httplib::Result& r) {
    if (!r) return nlohmann::json();
    return nlohmann::json::parse(r->body, nullptr, false);
  }
  static std::string ErrorMessage(const httplib::Result& r) {
    nlohmann::json j = Json(r);
    if (!j.is_object() || !j.contains("error"))
      return "<no error body: " + (r ? r->body : "") + ">";
    return j["error"].value("message", "");
  }

  ManualClock clock_;
  rollout::Router router_;
  rollout::InMemoryTransitionLog log_;
  storage::FakeStore store_{clock_};
  std::unique_ptr<rollout::Controller> controller_;
  std::unique_ptr<AdminServer> server_;
  std::unique_ptr<httplib::Client> client_;

  absl::Mutex mu_;
  std::vector<understudy::v1::Feedback> feedback_ ABSL_GUARDED_BY(mu_);
  std::vector<understudy::v1::Decision> notified_ ABSL_GUARDED_BY(mu_);
  std::vector<size_t> log_size_when_notified_ ABSL_GUARDED_BY(mu_);
};

}  // namespace understudy::admin

#endif  // UNDERSTUDY_TESTS_ADMIN_ADMIN_FIXTURE_H_
