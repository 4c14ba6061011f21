#include "tests/shadow/test_server.h"

#include <httplib.h>

#include <chrono>
#include <nlohmann/json.hpp>

#include "absl/strings/ascii.h"

namespace understudy::shadow::testing {

std::string ReceivedRequest::Header(std::string_view name, bool* found) const {
  for (const auto& [k, v] : headers) {
    if (k == name) {
      if (found != nullptr) *found = true;
      return v;
    }
  }
  if (found != nullptr) *found = false;
  return "";
}

namespace {

std::string Chunk(std::string_view content) {
  nlohmann::json j = {{"id", "chatcmpl-test"},
                      {"object", "chat.completion.chunk"},
                      {"model", "test-model"},
                      {"choices", {{{"index", 0}, {"delta", {{"content", content}}}}}}};
  return "data: " + j.dump() + "\n\n";
}

void StreamAnswer(httplib::Response& res, bool terminate) {
  res.set_chunked_content_provider(
      "text/event-stream", [terminate](size_t offset, httplib::DataSink& sink) {
        std::string first = Chunk("Hello");
        sink.write(first.data(), first.size());
        // A pause between events, as a model streaming tokens has.
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
        nlohmann::json last = {
            {"id", "chatcmpl-test"},
            {"object", "chat.completion.chunk"},
            {"model", "test-model"},
            {"choices",
             {{{"index", 0}, {"delta", {{"content", " world"}}}, {"finish_reason", "stop"}}}}};
        std::string rest = "data: " + last.dump() + "\n\n";
        if (terminate) rest += "data: [DONE]\n\n";
        sink.write(rest.data(), rest.size());
        sink.done();
        return true;
      });
}

}  // namespace

TestServer::TestServer() : server_(std::make_unique<httplib::Server>()) {
  server_->new_task_queue = [] { return new httplib::ThreadPool(16); };
  server_->set_keep_alive_timeout(1);
  auto record = [this](const httplib::Request& req) {
    ReceivedRequest r;
    r.path = req.path;
    r.body = req.body;
    for (const auto& [k, v] : req.headers) r.headers.emplace_back(absl::AsciiStrToLower(k), v);
    absl::MutexLock lock(&mu_);
    requests_.push_back(std::move(r));
  };
  server_->Post("/v1/chat/completions", [record](const httplib::Request& req,
                                                 httplib::Response& res) {
    record(req);
    nlohmann::json body = nlohmann::json::parse(req.body, nullptr, false);
    if (body.is_object() && body.value("stream", false)) {
      StreamAnswer(res, /*terminate=*/true);
      return;
    }
    std::string model = body.is_object() ? body.value("model", "") : "";
    nlohmann::json answer = {
        {"id", "chatcmpl-test"},
        {"object", "chat.completion"},
        {"model", model},
        {"choices",
         {{{"index", 0},
           {"message", {{"role", "assistant"}, {"content", "hello"}}},
           {"finish_reason", "stop"}}}},
        {"usage", {{"prompt_tokens", 1000}, {"completion_tokens", 500}, {"total_tokens", 1500}}}};
    res.set_content(answer.dump(), "application/json");
  });
  server_->Post("/hang", [this, record](const httplib::Request& req, httplib::Response& res) {
    record(req);
    absl::MutexLock lock(&mu_);
    ++hanging_;
    mu_.Await(absl::Condition(&released_));
    --hanging_;
    res.status = 503;
    res.set_content("{\"error\":{\"message\":\"released\",\"type\":\"server_error\"}}",
                    "application/json");
  });
  server_->Post("/error", [record](const httplib::Request& req, httplib::Response& res) {
    record(req);
    res.status = 500;
    res.set_content("{\"error\":{\"message\":\"boom\",\"type\":\"server_error\"}}",
                    "application/json");
  });
  server_->Post("/garbage", [record](const httplib::Request& req, httplib::Response& res) {
    record(req);
    res.set_content("this is not an answer", "text/plain");
  });
  server_->Post("/broken-stream", [record](const httplib::Request& req, httplib::Response& res) {
    record(req);
    StreamAnswer(res, /*terminate=*/false);
  });
  port_ = server_->bind_to_any_port("127.0.0.1");
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  while (!server_->is_running()) std::this_thread::yield();
}

TestServer::~TestServer() {
  Release();
  server_->stop();
  thread_.join();
}

std::vector<ReceivedRequest> TestServer::Requests() const {
  absl::MutexLock lock(&mu_);
  return requests_;
}

bool TestServer::WaitForHanging(int n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto enough = [this, n]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return hanging_ >= n; };
  return mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
}

void TestServer::Release() {
  absl::MutexLock lock(&mu_);
  released_ = true;
}

}  // namespace understudy::shadow::testing
