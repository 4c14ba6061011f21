#include "tests/support/test_upstream.h"

#include <httplib.h>

namespace understudy::envoy_driver {

TestUpstream::TestUpstream(std::string name)
    : name_(std::move(name)), server_(std::make_unique<httplib::Server>()) {
  server_->Post("/v1/chat/completions", [this](const httplib::Request& req, httplib::Response& res) {
    ++requests_;
    const bool stream = req.body.find("\"stream\":true") != std::string::npos ||
                        req.body.find("\"stream\": true") != std::string::npos;
    if (!stream) {
      res.set_content("{\"id\":\"c1\",\"object\":\"chat.completion\",\"model\":\"" + name_ +
                          "\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\","
                          "\"content\":\"" + Answer() + "\"},\"finish_reason\":\"stop\"}],"
                          "\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":3,"
                          "\"total_tokens\":8}}",
                      "application/json");
      return;
    }
    res.set_chunked_content_provider(
        "text/event-stream", [this](size_t, httplib::DataSink& sink) {
          const std::string words[] = {"hello", " from", " " + name_};
          for (const std::string& w : words) {
            std::string line = "data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"delta\":"
                               "{\"content\":\"" + w + "\"}}]}\n\n";
            sink.write(line.data(), line.size());
          }
          std::string done = "data: [DONE]\n\n";
          sink.write(done.data(), done.size());
          sink.done();
          return true;
        });
  });
  port_ = server_->bind_to_any_port("127.0.0.1");
  // bind_to_any_port already listens, so connections queue until the
  // accept loop starts.
  thread_ = std::thread([this] { server_->listen_after_bind(); });
}

TestUpstream::~TestUpstream() {
  // stop() before the accept loop runs would be lost.
  while (!server_->is_running()) std::this_thread::yield();
  server_->stop();
  thread_.join();
}

}  // namespace understudy::envoy_driver
